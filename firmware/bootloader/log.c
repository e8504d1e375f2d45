/* Progress lines on USART1 through the uart driver; numbers formatted here. */
#include "log.h"

#include "uart.h"

#define HEX_DIGITS 8u
#define DEC_DIGITS_MAX 10u

void log_str(const char *s)
{
    uart_puts(s);
}

void log_hex32(uint32_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    uart_puts("0x");
    for (uint32_t i = 0; i < HEX_DIGITS; i++) {
        uart_putc(hex[(v >> (4u * (HEX_DIGITS - 1u - i))) & 0xFu]);
    }
}

void log_dec(uint32_t v)
{
    char digits[DEC_DIGITS_MAX];
    uint32_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u && n < DEC_DIGITS_MAX);
    while (n > 0u) {
        uart_putc(digits[--n]);
    }
}

void log_end(void)
{
    uart_puts("\n"); /* the uart driver sends CR LF */
}
