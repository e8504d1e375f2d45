#include "uart.h"

#include <stdarg.h>

#include "clock.h"
#include "cm7_core.h"
#include "gpio.h"
#include "stm32h743.h"

#define UART_TX_PIN 9u  /* PA9 */
#define UART_RX_PIN 10u /* PA10 */
#define UART_AF 7u
/* Queued output of uart_write(): a power of two, so the free-running indices wrap cleanly. */
#define UART_TX_QUEUE_BYTES 512u
/* Below the USB interrupt: console output is the least urgent work. */
#define UART_IRQ_PRIORITY 12u

/* uart_write() queue: the writer advances head, whoever feeds the TX FIFO (writer or the TX FIFO
 * empty interrupt, always with interrupts masked) advances tail. */
static char s_txq[UART_TX_QUEUE_BYTES];
static volatile uint32_t s_txq_head;
static volatile uint32_t s_txq_tail;
static uint8_t s_irq_on;

void uart_init(uint32_t baud)
{
    gpio_enable_clock(GPIOA);
    gpio_config(GPIOA, UART_TX_PIN, GPIO_MODE_AF, GPIO_OTYPE_PUSHPULL, GPIO_SPEED_MEDIUM, GPIO_PULL_NONE,
                UART_AF);
    gpio_config(GPIOA, UART_RX_PIN, GPIO_MODE_AF, GPIO_OTYPE_PUSHPULL, GPIO_SPEED_MEDIUM, GPIO_PULL_UP,
                UART_AF);

    RCC->APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC->APB2ENR;
    /* Kernel clock: rcc_pclk2 (the reset selection). */
    RCC->D2CCIP2R &= ~RCC_D2CCIP2R_USART16SEL_Msk;

    USART1->CR1 = 0u; /* UE=0: configuration registers are writable */
    USART1->CR2 = 0u; /* 1 stop bit */
    USART1->CR3 = 0u;
    USART1->PRESC = 0u;
    /* Oversampling 16: BRR = kernel / baud, rounded. */
    uint32_t kernel = clock_pclk2_hz();
    USART1->BRR = (kernel + baud / 2u) / baud;
    USART1->ICR = USART_ICR_PECF | USART_ICR_FECF | USART_ICR_NECF | USART_ICR_ORECF | USART_ICR_IDLECF |
                  USART_ICR_TCCF;
    /* FIFO mode: 16 bytes can be handed over per status read (TXFE) instead of one (TXE). */
    USART1->CR1 = USART_CR1_FIFOEN | USART_CR1_TE | USART_CR1_RE | USART_CR1_UE;
    while ((USART1->ISR & (USART_ISR_TEACK | USART_ISR_REACK)) != (USART_ISR_TEACK | USART_ISR_REACK)) {
    }
}

/* Move queued bytes into the TX FIFO while it takes them: all 16 entries per ISR read when it is
 * empty (TXFE), else one per TXFNF. Returns with interrupts as they were; callers mask them. */
static void txq_feed(void)
{
    uint32_t tail = s_txq_tail;
    uint32_t head = s_txq_head;
    while (tail != head) {
        uint32_t isr = USART1->ISR;
        uint32_t room = (isr & USART_ISR_TXFE) != 0u ? USART_FIFO_DEPTH : (isr & USART_ISR_TXE) != 0u ? 1u : 0u;
        if (room == 0u) {
            break;
        }
        for (; room != 0u && tail != head; room--, tail++) {
            USART1->TDR = (uint8_t)s_txq[tail % UART_TX_QUEUE_BYTES];
        }
    }
    s_txq_tail = tail;
}

/* Feed the FIFO; while bytes stay queued, let the TX FIFO empty interrupt continue. */
static void txq_kick(void)
{
    uint32_t primask = cm7_irq_save();
    txq_feed();
    if (s_txq_tail != s_txq_head) {
        if (!s_irq_on) {
            nvic_set_priority(USART1_IRQn, UART_IRQ_PRIORITY);
            nvic_enable_irq(USART1_IRQn);
            s_irq_on = 1u;
        }
        USART1->CR1 |= USART_CR1_TXFEIE;
    }
    cm7_irq_restore(primask);
}

void USART1_IRQHandler(void)
{
    txq_feed();
    if (s_txq_tail == s_txq_head) {
        USART1->CR1 &= ~USART_CR1_TXFEIE;
    }
}

/* One feeding pass by hand, with interrupts masked as txq_feed requires. */
static void txq_feed_masked(void)
{
    uint32_t primask = cm7_irq_save();
    txq_feed();
    cm7_irq_restore(primask);
}

/* Feed the FIFO by polling until the queue is empty (callable with interrupts masked). */
static void txq_drain(void)
{
    while (s_txq_tail != s_txq_head) {
        txq_feed_masked();
    }
}

static void txq_put(char c)
{
    while (s_txq_head - s_txq_tail >= UART_TX_QUEUE_BYTES) {
        txq_feed_masked(); /* full: make room by hand, nothing is dropped */
    }
    s_txq[s_txq_head % UART_TX_QUEUE_BYTES] = c;
    s_txq_head = s_txq_head + 1u;
}

void uart_queue(const char *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            txq_put('\r');
        }
        txq_put(s[i]);
    }
}

void uart_write(const char *s, uint32_t n)
{
    uart_queue(s, n);
    txq_kick();
}

void uart_flush(void)
{
    txq_drain();
    if ((USART1->CR1 & USART_CR1_TXFEIE) != 0u) {
        USART1->CR1 &= ~USART_CR1_TXFEIE; /* nothing left for the interrupt */
    }
    while ((USART1->ISR & USART_ISR_TC) == 0u) {
    }
}

static void put_raw(char c)
{
    txq_drain(); /* queued uart_write() output goes first */
    while ((USART1->ISR & USART_ISR_TXE) == 0u) {
    }
    USART1->TDR = (uint8_t)c;
}

void uart_putc(char c)
{
    if (c == '\n') {
        put_raw('\r');
        put_raw('\n');
        uart_flush();
        return;
    }
    put_raw(c);
}

void uart_puts(const char *s)
{
    while (*s != '\0') {
        uart_putc(*s++);
    }
    uart_flush();
}

int uart_getc_nonblock(void)
{
    uint32_t isr = USART1->ISR;
    uint32_t errors = isr & (USART_ISR_ORE | USART_ISR_FE | USART_ISR_NE | USART_ISR_PE);
    if (errors != 0u) {
        USART1->ICR = USART_ICR_ORECF | USART_ICR_FECF | USART_ICR_NECF | USART_ICR_PECF;
    }
    if ((isr & USART_ISR_RXNE) == 0u) {
        return -1;
    }
    return (int)(USART1->RDR & 0xFFu);
}

static void put_padded(const char *s, uint32_t len, uint32_t width, int left, char pad)
{
    if (!left) {
        for (uint32_t i = len; i < width; i++) {
            uart_putc(pad);
        }
    }
    for (uint32_t i = 0; i < len; i++) {
        uart_putc(s[i]);
    }
    if (left) {
        for (uint32_t i = len; i < width; i++) {
            uart_putc(' ');
        }
    }
}

/* Digits of v in base 10 or 16 into the end of buf; returns the first digit. */
static char *format_unsigned(char *end, uint32_t v, uint32_t base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char *p = end;
    do {
        *--p = digits[v % base];
        v /= base;
    } while (v != 0u);
    return p;
}

void uart_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[16];
    char *end = buf + sizeof(buf);
    while (*fmt != '\0') {
        char c = *fmt++;
        if (c != '%') {
            uart_putc(c);
            continue;
        }
        int left = 0;
        char pad = ' ';
        uint32_t width = 0;
        for (;; fmt++) {
            if (*fmt == '-') {
                left = 1;
            } else if (*fmt == '0') {
                pad = '0';
            } else {
                break;
            }
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10u + (uint32_t)(*fmt++ - '0');
        }
        while (*fmt == 'l' || *fmt == 'h') {
            fmt++;
        }
        char conv = *fmt;
        if (conv == '\0') {
            break;
        }
        fmt++;
        char *p;
        switch (conv) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (s == 0) {
                s = "(null)";
            }
            uint32_t n = 0;
            while (s[n] != '\0') {
                n++;
            }
            put_padded(s, n, width, left, ' ');
            break;
        }
        case 'c': {
            char ch = (char)va_arg(ap, int);
            put_padded(&ch, 1u, width, left, ' ');
            break;
        }
        case 'd':
        case 'i': {
            int v = va_arg(ap, int);
            uint32_t mag = (v < 0) ? (uint32_t)0u - (uint32_t)v : (uint32_t)v;
            p = format_unsigned(end, mag, 10u, 0);
            if (v < 0) {
                if (pad == '0' && !left) {
                    uart_putc('-'); /* sign before zero padding */
                    width = (width > 0u) ? width - 1u : 0u;
                } else {
                    *--p = '-';
                }
            }
            put_padded(p, (uint32_t)(end - p), width, left, left ? ' ' : pad);
            break;
        }
        case 'u':
            p = format_unsigned(end, va_arg(ap, unsigned int), 10u, 0);
            put_padded(p, (uint32_t)(end - p), width, left, left ? ' ' : pad);
            break;
        case 'x':
        case 'X':
            p = format_unsigned(end, va_arg(ap, unsigned int), 16u, conv == 'X');
            put_padded(p, (uint32_t)(end - p), width, left, left ? ' ' : pad);
            break;
        case 'p':
            p = format_unsigned(end, (uint32_t)va_arg(ap, void *), 16u, 0);
            uart_putc('0');
            uart_putc('x');
            put_padded(p, (uint32_t)(end - p), 8u, 0, '0');
            break;
        case '%':
            uart_putc('%');
            break;
        default: /* unknown conversion: print it as written */
            uart_putc('%');
            uart_putc(conv);
            break;
        }
    }
    va_end(ap);
    uart_flush();
}
