#ifndef BUS_GUARD_H
#define BUS_GUARD_H

#include <stdint.h>

/* Between begin and end, a precise bus error on a data read (e.g. a flash word with a double ECC
 * error) is counted and the faulting load skipped instead of escalating to HardFault. */
void bus_guard_begin(void);
/* Returns how many reads faulted since bus_guard_begin(). */
uint32_t bus_guard_end(void);

#endif
