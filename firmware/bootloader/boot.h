/*
 * Reset-time decision of the bootloader: K2 held -> DFU mode; otherwise the first valid image of
 * the boot order (QSPI XIP at 0x9000_0000, then internal flash at 0x0802_0000) is started; with
 * none valid -> DFU mode.
 */
#ifndef BOOT_H
#define BOOT_H

/* Clock, GPIO, console and SysTick bring-up, then the decision above. Returns only when DFU mode
 * must run (clocks, console and SysTick are then up; QUADSPI, if it was touched, is left in
 * indirect mode). */
void boot_run(void);

#endif /* BOOT_H */
