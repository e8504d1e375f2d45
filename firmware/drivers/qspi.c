#include "qspi.h"

#include "cm7_core.h"
#include "gpio.h"
#include "mdma.h"
#include "stm32h743.h"
#include "systick.h"

#define QSPI_AF9 9u
#define QSPI_AF10 10u
#define QSPI_MAX_DUMMY 31u
#define QSPI_MAX_POLL_BYTES 4u
#define QSPI_MDMA_CHANNEL 0u /* MDMA channel this driver owns */
#define QSPI_FIFO_THRESHOLD 1u /* FTF means "at least one byte" (read) / "one free byte" (write) */
/* Long automatic polls (erase, status write) sleep between checks instead of spinning. */
#define QSPI_POLL_SLEEP_MIN_MS 10u
/* Status-match interrupt: only wakes a sleeping poll; the USB interrupt (8) may pre-empt it. */
#define QSPI_IRQ_PRIORITY 10u

typedef struct {
    gpio_regs_t *port;
    uint8_t pin;
    uint8_t af;
} qspi_pin_t;

static const qspi_pin_t s_pins[] = {
    {GPIOB, 2u, QSPI_AF9},   /* CLK */
    {GPIOB, 6u, QSPI_AF10},  /* BK1_NCS */
    {GPIOD, 11u, QSPI_AF9},  /* BK1_IO0 */
    {GPIOD, 12u, QSPI_AF9},  /* BK1_IO1 */
    {GPIOE, 2u, QSPI_AF9},   /* BK1_IO2 */
    {GPIOD, 13u, QSPI_AF9},  /* BK1_IO3 */
};

static int wait_flags_clear(uint32_t flags, uint32_t timeout_ms)
{
    deadline_t d;
    deadline_start(&d, timeout_ms);
    while ((QUADSPI->SR & flags) != 0u) {
        if (deadline_expired(&d)) {
            return QSPI_ERR_TIMEOUT;
        }
    }
    return QSPI_OK;
}

static int ccr_memory_mapped(void)
{
    return ((QUADSPI->CCR & QUADSPI_CCR_FMODE_Msk) >> QUADSPI_CCR_FMODE_Pos) == QUADSPI_FMODE_MEMORY_MAPPED;
}

int qspi_is_memory_mapped(void)
{
    return (QUADSPI->CR & QUADSPI_CR_EN) != 0u && ccr_memory_mapped();
}

int qspi_abort(void)
{
    QUADSPI->CR |= QUADSPI_CR_ABORT;
    deadline_t d;
    deadline_start(&d, QSPI_TIMEOUT_MS);
    while ((QUADSPI->CR & QUADSPI_CR_ABORT) != 0u) { /* self-clearing */
        if (deadline_expired(&d)) {
            return QSPI_ERR_TIMEOUT;
        }
    }
    int rc = wait_flags_clear(QUADSPI_SR_BUSY, QSPI_TIMEOUT_MS);
    QUADSPI->FCR = QUADSPI_FCR_ALL; /* the abort sets TCF */
    return rc;
}

int qspi_init(void)
{
    RCC->D1CCIPR &= ~RCC_D1CCIPR_QSPISEL_Msk; /* kernel clock rcc_hclk3 (the reset choice) */
    RCC->AHB3ENR |= RCC_AHB3ENR_QSPIEN;
    (void)RCC->AHB3ENR;
    cm7_dsb();
    for (uint32_t i = 0; i < sizeof(s_pins) / sizeof(s_pins[0]); i++) {
        gpio_enable_clock(s_pins[i].port);
        gpio_config(s_pins[i].port, s_pins[i].pin, GPIO_MODE_AF, GPIO_OTYPE_PUSHPULL, GPIO_SPEED_VERY_HIGH,
                    GPIO_PULL_NONE, s_pins[i].af);
    }
    if ((QUADSPI->SR & QUADSPI_SR_BUSY) != 0u) {
        (void)qspi_abort();
    }
    QUADSPI->CR = 0u; /* disabled while configured */
    QUADSPI->FCR = QUADSPI_FCR_ALL;
    QUADSPI->DCR = (QSPI_FSIZE << QUADSPI_DCR_FSIZE_Pos) | (QSPI_CSHT << QUADSPI_DCR_CSHT_Pos);
    QUADSPI->CR = (QSPI_PRESCALER << QUADSPI_CR_PRESCALER_Pos) |
                  ((QSPI_FIFO_THRESHOLD - 1u) << QUADSPI_CR_FTHRES_Pos);
    QUADSPI->CR |= QUADSPI_CR_EN;
    return QSPI_OK;
}

static uint32_t build_ccr(const qspi_cmd_t *c, uint32_t fmode)
{
    return ((uint32_t)c->instruction << QUADSPI_CCR_INSTRUCTION_Pos) |
           ((uint32_t)c->imode << QUADSPI_CCR_IMODE_Pos) | ((uint32_t)c->admode << QUADSPI_CCR_ADMODE_Pos) |
           ((uint32_t)c->adsize << QUADSPI_CCR_ADSIZE_Pos) | ((uint32_t)c->abmode << QUADSPI_CCR_ABMODE_Pos) |
           ((uint32_t)c->absize << QUADSPI_CCR_ABSIZE_Pos) | ((uint32_t)c->dummy << QUADSPI_CCR_DCYC_Pos) |
           ((uint32_t)c->dmode << QUADSPI_CCR_DMODE_Pos) | (fmode << QUADSPI_CCR_FMODE_Pos);
}

static int cmd_valid(const qspi_cmd_t *c)
{
    return c != 0 && c->imode <= QSPI_LINES_4 && c->admode <= QSPI_LINES_4 && c->abmode <= QSPI_LINES_4 &&
           c->dmode <= QSPI_LINES_4 && c->adsize <= QSPI_SIZE_32 && c->absize <= QSPI_SIZE_32 &&
           c->dummy <= QSPI_MAX_DUMMY;
}

/* Common preamble: leave memory-mapped mode, wait idle, clear flags, set DLR and ABR. */
static int prepare(const qspi_cmd_t *c, uint32_t length)
{
    if (!cmd_valid(c)) {
        return QSPI_ERR_PARAM;
    }
    uint32_t cr = QUADSPI->CR;
    if ((cr & QUADSPI_CR_EN) == 0u) {
        QUADSPI->CR = cr | QUADSPI_CR_EN;
    }
    if (ccr_memory_mapped()) {
        int rc = qspi_abort();
        if (rc != QSPI_OK) {
            return rc;
        }
    }
    int rc = wait_flags_clear(QUADSPI_SR_BUSY, QSPI_TIMEOUT_MS);
    if (rc != QSPI_OK) {
        return rc;
    }
    QUADSPI->FCR = QUADSPI_FCR_ALL;
    if (length != 0u) {
        QUADSPI->DLR = length - 1u;
    }
    if (c->abmode != QSPI_LINES_NONE) {
        QUADSPI->ABR = c->alternate;
    }
    return QSPI_OK;
}

/* Wait for one of `flags`; TEF ends the wait with a transfer error. */
#define QSPI_FIFO_BYTES 32u /* H7 QUADSPI FIFO depth */

static uint32_t fifo_level(uint32_t sr)
{
    return (sr & QUADSPI_SR_FLEVEL_Msk) >> QUADSPI_SR_FLEVEL_Pos;
}

/* *sr_out: the SR value that showed the flag (FLEVEL, BUSY of the same instant). */
static int wait_flag(uint32_t flags, uint32_t timeout_ms, uint32_t *sr_out)
{
    deadline_t d;
    deadline_start(&d, timeout_ms);
    for (;;) {
        uint32_t sr = QUADSPI->SR;
        if ((sr & QUADSPI_SR_TEF) != 0u) {
            QUADSPI->FCR = QUADSPI_FCR_CTEF;
            (void)qspi_abort();
            return QSPI_ERR_TRANSFER;
        }
        if ((sr & flags) != 0u) {
            *sr_out = sr;
            return QSPI_OK;
        }
        if (deadline_expired(&d)) {
            (void)qspi_abort();
            return QSPI_ERR_TIMEOUT;
        }
    }
}

static int finish(void)
{
    uint32_t sr;
    int rc = wait_flag(QUADSPI_SR_TCF, QSPI_TIMEOUT_MS, &sr);
    if (rc != QSPI_OK) {
        return rc;
    }
    QUADSPI->FCR = QUADSPI_FCR_CTCF;
    /* BUSY already clear in the SR read that showed TCF: the controller is idle. */
    return (sr & QUADSPI_SR_BUSY) == 0u ? QSPI_OK : wait_flags_clear(QUADSPI_SR_BUSY, QSPI_TIMEOUT_MS);
}

int qspi_command(const qspi_cmd_t *c)
{
    if (c == 0 || c->dmode != QSPI_LINES_NONE) {
        return QSPI_ERR_PARAM;
    }
    int rc = prepare(c, 0u);
    if (rc != QSPI_OK) {
        return rc;
    }
    /* No data: the CCR write starts it, or the AR write when there is an address. */
    QUADSPI->CCR = build_ccr(c, QUADSPI_FMODE_INDIRECT_WRITE);
    if (c->admode != QSPI_LINES_NONE) {
        QUADSPI->AR = c->address;
    }
    return finish();
}

int qspi_write(const qspi_cmd_t *c, const uint8_t *buf)
{
    if (c == 0 || buf == 0 || c->length == 0u || c->dmode == QSPI_LINES_NONE) {
        return QSPI_ERR_PARAM;
    }
    int rc = prepare(c, c->length);
    if (rc != QSPI_OK) {
        return rc;
    }
    QUADSPI->CCR = build_ccr(c, QUADSPI_FMODE_INDIRECT_WRITE);
    if (c->admode != QSPI_LINES_NONE) {
        QUADSPI->AR = c->address;
    }
    if (mdma_fits(buf, c->length)) {
        /* Whole words from an aligned buffer (page programs): MDMA feeds DR on the FIFO-threshold
           request; its first write starts the transfer. */
        rc = mdma_to_register(QSPI_MDMA_CHANNEL, buf, &QUADSPI->DR, c->length, MDMA_REQ_QUADSPI_FIFO);
        if (rc == MDMA_OK) {
            rc = mdma_wait(QSPI_MDMA_CHANNEL, QSPI_TIMEOUT_MS);
        }
        if (rc != MDMA_OK) {
            (void)qspi_abort();
            return rc == MDMA_ERR_TIMEOUT ? QSPI_ERR_TIMEOUT : QSPI_ERR_TRANSFER;
        }
        return finish();
    }
    /* The first DR write starts the transfer. The SR read that shows FTF also tells how much of
       the FIFO is free; fill that much, a word at a time where 4 bytes remain. */
    uint32_t i = 0;
    while (i < c->length) {
        uint32_t sr;
        rc = wait_flag(QUADSPI_SR_FTF, QSPI_TIMEOUT_MS, &sr);
        if (rc != QSPI_OK) {
            return rc;
        }
        uint32_t room = QSPI_FIFO_BYTES - fifo_level(sr);
        while (room != 0u && i < c->length) {
            if (room >= 4u && c->length - i >= 4u) {
                QUADSPI->DR = (uint32_t)buf[i] | ((uint32_t)buf[i + 1u] << 8) | ((uint32_t)buf[i + 2u] << 16) |
                              ((uint32_t)buf[i + 3u] << 24);
                i += 4u;
                room -= 4u;
            } else {
                QUADSPI_DR8 = buf[i];
                i++;
                room--;
            }
        }
    }
    return finish();
}

int qspi_read(const qspi_cmd_t *c, uint8_t *buf)
{
    if (c == 0 || buf == 0 || c->length == 0u || c->dmode == QSPI_LINES_NONE) {
        return QSPI_ERR_PARAM;
    }
    int rc = prepare(c, c->length);
    if (rc != QSPI_OK) {
        return rc;
    }
    /* Starts on the CCR write, or on the AR write when there is an address. */
    QUADSPI->CCR = build_ccr(c, QUADSPI_FMODE_INDIRECT_READ);
    if (c->admode != QSPI_LINES_NONE) {
        QUADSPI->AR = c->address;
    }
    /* Empty what the FIFO holds per SR read, a word at a time where 4 bytes are there. */
    uint32_t i = 0;
    while (i < c->length) {
        uint32_t sr;
        rc = wait_flag(QUADSPI_SR_FTF | QUADSPI_SR_TCF, QSPI_TIMEOUT_MS, &sr);
        if (rc != QSPI_OK) {
            return rc;
        }
        uint32_t level = fifo_level(sr);
        if (level == 0u) {
            level = 1u; /* FTF/TCF without a level: pop one byte as before */
        }
        while (level != 0u && i < c->length) {
            if (level >= 4u && c->length - i >= 4u) {
                uint32_t w = QUADSPI->DR;
                buf[i] = (uint8_t)w;
                buf[i + 1u] = (uint8_t)(w >> 8);
                buf[i + 2u] = (uint8_t)(w >> 16);
                buf[i + 3u] = (uint8_t)(w >> 24);
                i += 4u;
                level -= 4u;
            } else {
                buf[i] = QUADSPI_DR8;
                i++;
                level--;
            }
        }
    }
    return finish();
}

/* systick_sleep condition: no status match yet. */
static int poll_running(void)
{
    return (QUADSPI->SR & QUADSPI_SR_SMF) == 0u;
}

int qspi_autopoll(const qspi_cmd_t *c, uint32_t mask, uint32_t match, uint32_t timeout_ms)
{
    if (c == 0 || c->length == 0u || c->length > QSPI_MAX_POLL_BYTES || c->dmode == QSPI_LINES_NONE) {
        return QSPI_ERR_PARAM;
    }
    int rc = prepare(c, c->length);
    if (rc != QSPI_OK) {
        return rc;
    }
    QUADSPI->PSMKR = mask;
    QUADSPI->PSMAR = match;
    QUADSPI->PIR = QSPI_POLL_INTERVAL;
    QUADSPI->CR = (QUADSPI->CR & ~QUADSPI_CR_PMM) | QUADSPI_CR_APMS; /* AND match, stop on match */
    QUADSPI->CCR = build_ccr(c, QUADSPI_FMODE_AUTO_POLL);
    if (c->admode != QSPI_LINES_NONE) {
        QUADSPI->AR = c->address;
    }
    deadline_t d;
    deadline_start(&d, timeout_ms);
    int sleep = timeout_ms >= QSPI_POLL_SLEEP_MIN_MS && systick_can_wake();
    int wake_on_match = 0;
    for (;;) {
        uint32_t sr = QUADSPI->SR;
        if ((sr & QUADSPI_SR_SMF) != 0u) {
            break;
        }
        if ((sr & QUADSPI_SR_TEF) != 0u) {
            QUADSPI->FCR = QUADSPI_FCR_CTEF;
            (void)qspi_abort();
            rc = QSPI_ERR_TRANSFER;
            break;
        }
        if (deadline_expired(&d)) {
            (void)qspi_abort();
            rc = QSPI_ERR_TIMEOUT;
            break;
        }
        if (sleep) {
            if (!wake_on_match) {
                /* Not matched at once (erase, status write): the status match wakes the core, so
                 * the sleep need not end every tick. Enabled only now: quick matches (WEL) stay
                 * free of interrupts. */
                wake_on_match = 1;
                nvic_set_priority(QUADSPI_IRQn, QSPI_IRQ_PRIORITY);
                nvic_enable_irq(QUADSPI_IRQn);
                QUADSPI->CR |= QUADSPI_CR_SMIE;
            }
            systick_sleep(deadline_remaining_ms(&d), poll_running);
        }
    }
    if (wake_on_match) {
        QUADSPI->CR &= ~QUADSPI_CR_SMIE;
    }
    if (rc != QSPI_OK) {
        return rc;
    }
    QUADSPI->FCR = QUADSPI_FCR_CSMF;
    /* APMS: BUSY drops after the match. */
    return wait_flags_clear(QUADSPI_SR_BUSY, QSPI_TIMEOUT_MS);
}

/* Status match while a poll sleeps: mask the source (the line drops; SMF stays set for the poller,
 * which the wake-up sends back to its SR check). */
void QUADSPI_IRQHandler(void)
{
    QUADSPI->CR &= ~QUADSPI_CR_SMIE;
}

int qspi_memory_mapped(const qspi_cmd_t *c)
{
    if (c == 0 || c->dmode == QSPI_LINES_NONE) {
        return QSPI_ERR_PARAM;
    }
    int rc = prepare(c, 0u);
    if (rc != QSPI_OK) {
        return rc;
    }
    QUADSPI->CR &= ~QUADSPI_CR_TCEN; /* keep NCS handling simple: no timeout counter */
    QUADSPI->CCR = build_ccr(c, QUADSPI_FMODE_MEMORY_MAPPED);
    cm7_dsb();
    cm7_isb();
    return QSPI_OK;
}
