/* Progress lines on USART1 through the uart driver's output queue: the pieces of a line are queued
 * and log_end starts it (interrupt-driven, the caller does not wait for the wire); log_flush
 * waits until everything is out. Numbers formatted here. */
#include "log.h"

#include "uart.h"

#define HEX_DIGITS 8u
#define DEC_DIGITS_MAX 10u

void log_str(const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    uart_queue(s, n);
}

void log_hex32(uint32_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    char text[2u + HEX_DIGITS] = {'0', 'x'};
    for (uint32_t i = 0; i < HEX_DIGITS; i++) {
        text[2u + i] = hex[(v >> (4u * (HEX_DIGITS - 1u - i))) & 0xFu];
    }
    uart_queue(text, sizeof(text));
}

void log_dec(uint32_t v)
{
    char digits[DEC_DIGITS_MAX];
    uint32_t n = DEC_DIGITS_MAX;
    do {
        digits[--n] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u && n > 0u);
    uart_queue(&digits[n], DEC_DIGITS_MAX - n);
}

void log_end(void)
{
    uart_write("\n", 1u); /* the uart driver sends CR LF */
}

void log_flush(void)
{
    uart_flush();
}
