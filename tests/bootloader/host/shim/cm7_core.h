/* Host stand-in for firmware/include/cm7_core.h: the bootloader's DFU/USB layers compiled for the
 * host test harness need only the interrupt-masking and barrier helpers, as no-ops. */
#ifndef CM7_CORE_H
#define CM7_CORE_H

#include <stdint.h>

#include "stm32h743.h"

static inline uint32_t cm7_irq_save(void) { return 0; }
static inline void cm7_irq_restore(uint32_t primask) { (void)primask; }
static inline void cm7_dsb(void) {}
static inline void cm7_isb(void) {}
static inline void cm7_wfi(void) {}

#endif /* CM7_CORE_H */
