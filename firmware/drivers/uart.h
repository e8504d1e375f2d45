/*
 * USART1 console on PA9 (TX) / PA10 (RX), AF7, 8N1, oversampling 16, kernel clock rcc_pclk2.
 * Output: '\n' is sent as "\r\n" and the driver waits for TC after it (and at the end of
 * uart_puts / uart_printf), so a line is fully on the wire when the call returns.
 */
#ifndef UART_H
#define UART_H

#include <stdint.h>

void uart_init(uint32_t baud);
void uart_putc(char c);
void uart_puts(const char *s);
/* Minimal printf: %s %c %d %i %u %x %X %p %%, flags '0' and '-', a field width, and the length
 * modifiers 'l'/'h' (ignored: int, long and uint32_t are all 32-bit here). %p prints 0x%08x. */
void uart_printf(const char *fmt, ...);
/* One received byte (0..255), or -1 when none. Clears overrun/framing/noise errors. */
int uart_getc_nonblock(void);
/* Wait until the last byte has left the shift register (ISR.TC). */
void uart_flush(void);

#endif /* UART_H */
