/*
 * USART1 console on PA9 (TX) / PA10 (RX), AF7, 8N1, oversampling 16, kernel clock rcc_pclk2.
 * FIFO mode (16-byte TX FIFO). Output: '\n' is sent as "\r\n"; uart_putc/puts/printf wait for TC
 * after it (and at their end), so a line is fully on the wire when the call returns; uart_write
 * queues and returns at once (interrupt-driven).
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
/* Queue n bytes ('\n' sent as "\r\n") and return: the TX FIFO is fed now and from the TX FIFO
 * empty interrupt (USART1 IRQ) until the queue is empty; waits only while the 512-byte queue is
 * full. Queued bytes always go out before later uart_putc/puts/printf output. */
void uart_write(const char *s, uint32_t n);
/* Queue only: the bytes start with the next uart_write (or uart_flush). Lets a line be assembled
 * in pieces and handed to the FIFO in 16-byte loads. */
void uart_queue(const char *s, uint32_t n);
/* Send everything queued, then wait until the last byte has left the shift register (ISR.TC):
 * call it before a reset or a jump to another image. */
void uart_flush(void);

#endif /* UART_H */
