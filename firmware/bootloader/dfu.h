/*
 * DfuSe class: the DFU 1.1 state machine (FACTS.md §F.2) with ST's DfuSe extensions (§F.4-F.7).
 *
 * Requests are decoded in the USB interrupt; flash work (erase, program, verify, QSPI reads) runs in
 * the main loop through dfu_poll(), after the GETSTATUS that reported dfuDNBUSY has been sent. A
 * GETSTATUS that arrives while the work is still running is answered when it finishes (the core
 * NAKs the host meanwhile), so hosts that do not wait bwPollTimeout still see the true result.
 */
#ifndef DFU_H
#define DFU_H

#include <stdint.h>

#include "usb_otg.h"

void dfu_init(void);

/* Hooks for the USB standard-request layer. */
void dfu_usb_setup(const usb_setup_t *setup); /* class request to the DFU interface */
void dfu_usb_reset(void);                     /* bus reset or SET_CONFIGURATION */
int dfu_set_alt(uint8_t alt);                 /* 0, or -1 to refuse (unknown alt, work in flight) */
uint8_t dfu_get_alt(void);

/* Main loop. dfu_poll runs queued work and prints its log lines; returns nonzero when it did
 * something. dfu_has_work tells whether sleeping now would delay anything (call with interrupts
 * off before WFI). dfu_leave_requested: the host asked to leave (manifestation or DETACH) and the
 * reply has been sent; the caller disconnects and resets. */
int dfu_poll(void);
int dfu_has_work(void);
int dfu_leave_requested(void);

#endif /* DFU_H */
