#include "flash.h"

#include "cm7_core.h"
#include "stm32h743.h"
#include "systick.h"

#define FLASH_WORD_U32 (FLASH_WORD_BYTES / 4u)

static uint32_t s_last_error;

uint32_t flash_last_error(void) { return s_last_error; }

/* Bank (1/2) holding addr, 0 if outside user flash. */
static int bank_of(uint32_t addr)
{
    if (addr >= FLASH_BANK1_BASE && addr < FLASH_BANK1_BASE + FLASH_BANK_SIZE) {
        return 1;
    }
    if (addr >= FLASH_BANK2_BASE && addr < FLASH_BANK2_BASE + FLASH_BANK_SIZE) {
        return 2;
    }
    return 0;
}

static uint32_t bank_base(int bank) { return bank == 1 ? FLASH_BANK1_BASE : FLASH_BANK2_BASE; }

static int unlock(flash_bank_regs_t *b)
{
    /* Writing the keys to an unlocked bank would lock it until reset (B.4): only when LOCK=1. */
    if ((b->CR & FLASH_CR_LOCK) != 0u) {
        b->KEYR = FLASH_KEY1;
        b->KEYR = FLASH_KEY2;
        if ((b->CR & FLASH_CR_LOCK) != 0u) {
            return FLASH_ERR_LOCKED;
        }
    }
    return FLASH_OK;
}

static void lock(flash_bank_regs_t *b) { b->CR |= FLASH_CR_LOCK; }

static int wait_queue_empty(flash_bank_regs_t *b, uint32_t timeout_ms, int sleep)
{
    deadline_t d;
    deadline_start(&d, timeout_ms);
    while ((b->SR & FLASH_SR_QW) != 0u) {
        if (deadline_expired(&d)) {
            return FLASH_ERR_TIMEOUT;
        }
        if (sleep) {
            systick_idle();
        }
    }
    return FLASH_OK;
}

/* Record and clear the error flags (and EOP) of the finished operation. */
static int check_errors(flash_bank_regs_t *b)
{
    uint32_t sr = b->SR;
    b->CCR = sr & FLASH_CCR_CLR_ALL;
    uint32_t errors = sr & FLASH_SR_ALL_ERRORS;
    if (errors != 0u) {
        s_last_error = errors;
        return FLASH_ERR_OP;
    }
    return FLASH_OK;
}

/* Wait for an idle bank, clear stale flags, unlock. */
static int begin(flash_bank_regs_t *b, uint32_t timeout_ms)
{
    int rc = wait_queue_empty(b, timeout_ms, 1);
    if (rc != FLASH_OK) {
        return rc;
    }
    b->CCR = FLASH_CCR_CLR_ALL;
    return unlock(b);
}

static int erase(int bank, uint32_t cr_bits, uint32_t timeout_ms)
{
    flash_bank_regs_t *b = FLASH_BANK(bank);
    s_last_error = 0u;
    int rc = begin(b, timeout_ms);
    if (rc != FLASH_OK) {
        return rc;
    }
    b->CR = (b->CR & ~(FLASH_CR_PSIZE_Msk | FLASH_CR_SNB_Msk | FLASH_CR_SER | FLASH_CR_BER | FLASH_CR_PG)) |
            cr_bits | (FLASH_CR_PSIZE_X64 << FLASH_CR_PSIZE_Pos);
    b->CR |= FLASH_CR_START;
    cm7_dsb();
    rc = wait_queue_empty(b, timeout_ms, 1);
    int err = check_errors(b);
    b->CR &= ~(FLASH_CR_SER | FLASH_CR_BER | FLASH_CR_SNB_Msk);
    lock(b);
    return rc != FLASH_OK ? rc : err;
}

int flash_erase_sector(uint32_t addr)
{
    int bank = bank_of(addr);
    if (bank == 0) {
        s_last_error = 0u;
        return FLASH_ERR_ADDR;
    }
    uint32_t snb = (addr - bank_base(bank)) / FLASH_SECTOR_SIZE;
    return erase(bank, FLASH_CR_SER | (snb << FLASH_CR_SNB_Pos), FLASH_TIMEOUT_SECTOR_ERASE_MS);
}

int flash_erase_bank(int bank)
{
    if (bank != 1 && bank != 2) {
        s_last_error = 0u;
        return FLASH_ERR_PARAM;
    }
    return erase(bank, FLASH_CR_BER, FLASH_TIMEOUT_BANK_ERASE_MS);
}

/* Program one flash word at addr from n (1..32) bytes of src. */
static int program_word(flash_bank_regs_t *b, uint32_t addr, const uint8_t *src, uint32_t n)
{
    int rc = wait_queue_empty(b, FLASH_TIMEOUT_WORD_MS, 0);
    if (rc != FLASH_OK) {
        return rc;
    }
    b->CR |= FLASH_CR_PG;
    cm7_isb();
    cm7_dsb();
    volatile uint32_t *dst32 = (volatile uint32_t *)addr;
    uint32_t full = n / 4u;
    for (uint32_t i = 0; i < full; i++) {
        uint32_t w = (uint32_t)src[4u * i] | ((uint32_t)src[4u * i + 1u] << 8) |
                     ((uint32_t)src[4u * i + 2u] << 16) | ((uint32_t)src[4u * i + 3u] << 24);
        dst32[i] = w;
    }
    if (n < FLASH_WORD_BYTES) {
        volatile uint8_t *dst8 = (volatile uint8_t *)addr;
        for (uint32_t i = full * 4u; i < n; i++) {
            dst8[i] = src[i];
        }
        cm7_dsb();
        /* Partial word: force the write; the unwritten bytes are programmed as 0xFF. */
        b->CR |= FLASH_CR_FW;
    }
    cm7_isb();
    cm7_dsb();
    rc = wait_queue_empty(b, FLASH_TIMEOUT_WORD_MS, 0);
    int err = check_errors(b);
    b->CR &= ~FLASH_CR_PG;
    if (rc != FLASH_OK) {
        return rc;
    }
    return err;
}

int flash_program(uint32_t addr, const uint8_t *data, uint32_t len)
{
    s_last_error = 0u;
    if (len == 0u) {
        return FLASH_OK;
    }
    if (data == 0) {
        return FLASH_ERR_PARAM;
    }
    if ((addr & (FLASH_WORD_BYTES - 1u)) != 0u) {
        return FLASH_ERR_ALIGN;
    }
    if (bank_of(addr) == 0 || bank_of(addr + len - 1u) == 0 || addr + len < addr) {
        return FLASH_ERR_ADDR;
    }
    int rc = FLASH_OK;
    int unlocked_bank = 0;
    uint32_t a = addr;
    uint32_t left = len;
    const uint8_t *src = data;
    while (left > 0u && rc == FLASH_OK) {
        int bank = bank_of(a);
        flash_bank_regs_t *b = FLASH_BANK(bank);
        if (bank != unlocked_bank) {
            if (unlocked_bank != 0) {
                lock(FLASH_BANK(unlocked_bank));
            }
            rc = begin(b, FLASH_TIMEOUT_WORD_MS);
            if (rc != FLASH_OK) {
                break;
            }
            unlocked_bank = bank;
        }
        uint32_t n = left < FLASH_WORD_BYTES ? left : FLASH_WORD_BYTES;
        rc = program_word(b, a, src, n);
        a += n;
        src += n;
        left -= n;
    }
    if (unlocked_bank != 0) {
        lock(FLASH_BANK(unlocked_bank));
    }
    if (rc != FLASH_OK) {
        return rc;
    }
    /* Read back what was written (the padding of a partial word is not ours to check). */
    const volatile uint8_t *rd = (const volatile uint8_t *)addr;
    for (uint32_t i = 0; i < len; i++) {
        if (rd[i] != data[i]) {
            return FLASH_ERR_VERIFY;
        }
    }
    return FLASH_OK;
}
