/* Small UART formatting helpers for the bootloader's progress lines (no printf format needed). */
#ifndef BOOT_LOG_H
#define BOOT_LOG_H

#include <stdint.h>

void log_str(const char *s);
void log_hex32(uint32_t v); /* "0x0800ABCD" */
void log_dec(uint32_t v);
void log_end(void);         /* line end: the line starts going out, the call does not wait */
void log_flush(void);       /* every line logged so far is on the wire (before a reset or a jump) */

#endif /* BOOT_LOG_H */
