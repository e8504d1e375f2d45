/*
 * storage_test: the W25Q64 through QUADSPI (indirect and memory-mapped, code executed in place
 * and re-programmed) and the internal FLASH interface (erase, 256-bit and FW-partial programming,
 * one misuse). Each step prints
 *   STEP <name> OK|FAIL <details>
 * and the run ends with "STORAGE_TEST DONE". A failing step does not stop the following ones,
 * except that the XIP steps need the earlier QSPI steps.
 */
#include <stdint.h>

#include "board.h"
#include "clock.h"
#include "cm7_core.h"
#include "flash.h"
#include "stm32h743.h"
#include "systick.h"
#include "uart.h"
#include "w25q64.h"

#define BAUD 115200u
#define TICK_HZ 1000u

#define QSPI_TEST_ADDR 0x000080u  /* inside sector 0, program crosses the page boundary at 0x100 */
#define QSPI_TEST_LEN 300u
#define XIP_FUNC_OFFSET 0x1000u   /* sector 1 */
#define XIP_RESULT_A 0xA5A51111u
#define XIP_RESULT_B 0x5A5A2222u

#define IFLASH_TEST_ADDR 0x08020000u /* bank 1 sector 1 (test images stay below it) */
#define IFLASH_FULL_BYTES 256u        /* 8 flash words */
#define IFLASH_PARTIAL_BYTES 20u      /* plus a partial word written with FW */
#define IFLASH_MISUSE_OFFSET 0x400u   /* an erased word that the misuse write must leave alone */
#define ERASED_BYTE 0xFFu
#define ERASED_WORD 0xFFFFFFFFu
#define MISUSE_PATTERN 0x12345678u

/* Position-independent routines (Thumb machine code produced by the assembler, kept as data):
 * each returns a constant in r0. They are copied into the W25Q64 and executed from 0x9000_1000. */
__asm__(".section .rodata.xip_templates,\"a\"\n"
        ".syntax unified\n"
        ".thumb\n"
        ".balign 4\n"
        ".global xip_template_a, xip_template_a_end, xip_template_b, xip_template_b_end\n"
        "xip_template_a:\n"
        "    movw r0, #0x1111\n"
        "    movt r0, #0xA5A5\n"
        "    bx lr\n"
        "xip_template_a_end:\n"
        ".balign 4\n"
        "xip_template_b:\n"
        "    movw r0, #0x2222\n"
        "    movt r0, #0x5A5A\n"
        "    bx lr\n"
        "xip_template_b_end:\n"
        ".text\n");
extern const uint8_t xip_template_a[], xip_template_a_end[];
extern const uint8_t xip_template_b[], xip_template_b_end[];

typedef uint32_t (*xip_func_t)(void);

static uint32_t s_failures;
static uint8_t s_buf[512];
static uint8_t s_pattern[512];

static void step_rc(const char *name, int rc)
{
    if (rc != 0) {
        s_failures++;
    }
    uart_printf("STEP %s %s rc=%d\n", name, rc == 0 ? "OK" : "FAIL", rc);
}

static void make_pattern(uint8_t *p, uint32_t len, uint32_t seed)
{
    uint32_t x = seed;
    for (uint32_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u; /* LCG: a byte pattern with no repeats at page distance */
        p[i] = (uint8_t)(x >> 16);
    }
}

static int all_erased(const uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        if (p[i] != ERASED_BYTE) {
            return 0;
        }
    }
    return 1;
}

static int first_difference(const volatile uint8_t *a, const uint8_t *b, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        if (a[i] != b[i]) {
            return (int)i;
        }
    }
    return -1;
}

/* Call the routine at the XIP address through a volatile pointer: the call really happens. */
static uint32_t call_xip(void)
{
    xip_func_t volatile fn = (xip_func_t)(QSPI_MEM_BASE + XIP_FUNC_OFFSET + 1u); /* Thumb */
    return fn();
}

/* Erase the XIP sector, program a template, verify, map, invalidate the I-cache, call. */
static int xip_install_and_call(const uint8_t *start, const uint8_t *end, uint32_t *result)
{
    uint32_t len = (uint32_t)(end - start);
    int rc = w25q_leave_memory_mapped();
    if (rc == W25Q_OK) {
        rc = w25q_erase_sector(XIP_FUNC_OFFSET);
    }
    if (rc == W25Q_OK) {
        rc = w25q_program(XIP_FUNC_OFFSET, start, len);
    }
    if (rc == W25Q_OK) {
        rc = w25q_verify(XIP_FUNC_OFFSET, start, len);
    }
    if (rc == W25Q_OK) {
        rc = w25q_memory_mapped();
    }
    if (rc != W25Q_OK) {
        return rc;
    }
    int diff = first_difference((const volatile uint8_t *)(QSPI_MEM_BASE + XIP_FUNC_OFFSET), start, len);
    if (diff >= 0) {
        return W25Q_ERR_VERIFY;
    }
    cm7_icache_invalidate();
    *result = call_xip();
    return W25Q_OK;
}

static int qspi_steps(void)
{
    int rc = w25q_init();
    step_rc("w25q_init", rc);
    if (rc != W25Q_OK) {
        return rc;
    }

    uint8_t id[3] = {0u, 0u, 0u};
    rc = w25q_read_jedec(id);
    int ok = rc == W25Q_OK && id[0] == W25Q_JEDEC_MANUFACTURER && id[2] == W25Q_JEDEC_CAPACITY_64MBIT;
    if (!ok) {
        s_failures++;
    }
    uart_printf("STEP jedec %s id=%02x%02x%02x rc=%d\n", ok ? "OK" : "FAIL", id[0], id[1], id[2], rc);

    uint8_t sr2 = 0u;
    rc = w25q_enable_quad();
    if (rc == W25Q_OK) {
        rc = w25q_read_status(W25Q_OP_READ_SR2, &sr2);
    }
    ok = rc == W25Q_OK && (sr2 & W25Q_SR2_QE) != 0u;
    if (!ok) {
        s_failures++;
    }
    uart_printf("STEP quad_enable %s sr2=%02x rc=%d\n", ok ? "OK" : "FAIL", sr2, rc);

    rc = w25q_erase_sector(0u);
    int erased = 1;
    for (uint32_t off = 0; off < W25Q_SECTOR_SIZE && rc == W25Q_OK && erased; off += sizeof(s_buf)) {
        rc = w25q_read(off, s_buf, sizeof(s_buf));
        erased = all_erased(s_buf, sizeof(s_buf));
    }
    ok = rc == W25Q_OK && erased;
    if (!ok) {
        s_failures++;
    }
    uart_printf("STEP qspi_erase %s sector 0 (4 KiB) reads 0xFF: %d rc=%d\n", ok ? "OK" : "FAIL", erased, rc);

    make_pattern(s_pattern, QSPI_TEST_LEN, 0x51u);
    rc = w25q_program(QSPI_TEST_ADDR, s_pattern, QSPI_TEST_LEN);
    for (uint32_t i = 0; i < sizeof(s_buf); i++) {
        s_buf[i] = 0u;
    }
    if (rc == W25Q_OK) {
        rc = w25q_read(QSPI_TEST_ADDR, s_buf, QSPI_TEST_LEN);
    }
    int diff = first_difference(s_buf, s_pattern, QSPI_TEST_LEN);
    ok = rc == W25Q_OK && diff < 0;
    if (!ok) {
        s_failures++;
    }
    uart_printf("STEP qspi_program %s %u bytes at 0x%06x across a page boundary, first_diff=%d rc=%d\n",
                ok ? "OK" : "FAIL", QSPI_TEST_LEN, QSPI_TEST_ADDR, diff, rc);

    rc = w25q_memory_mapped();
    diff = rc == W25Q_OK
               ? first_difference((const volatile uint8_t *)(QSPI_MEM_BASE + QSPI_TEST_ADDR), s_pattern, QSPI_TEST_LEN)
               : 0;
    ok = rc == W25Q_OK && diff < 0;
    if (!ok) {
        s_failures++;
    }
    uart_printf("STEP qspi_mapped_read %s first_diff=%d rc=%d\n", ok ? "OK" : "FAIL", diff, rc);

    uint32_t result = 0u;
    rc = xip_install_and_call(xip_template_a, xip_template_a_end, &result);
    ok = rc == W25Q_OK && result == XIP_RESULT_A;
    if (!ok) {
        s_failures++;
    }
    uart_printf("STEP xip_call %s result=%08x (want %08x) rc=%d\n", ok ? "OK" : "FAIL", result, XIP_RESULT_A, rc);

    result = 0u;
    rc = xip_install_and_call(xip_template_b, xip_template_b_end, &result);
    ok = rc == W25Q_OK && result == XIP_RESULT_B;
    if (!ok) {
        s_failures++;
    }
    uart_printf("STEP xip_reprogram %s result=%08x (want %08x) rc=%d\n", ok ? "OK" : "FAIL", result, XIP_RESULT_B,
                rc);

    return w25q_leave_memory_mapped();
}

static void iflash_steps(void)
{
    flash_bank_regs_t *bank1 = FLASH_BANK(1);
    const volatile uint8_t *mem = (const volatile uint8_t *)IFLASH_TEST_ADDR;

    int rc = flash_erase_sector(IFLASH_TEST_ADDR);
    int erased = 1;
    /* Checked whatever rc says: a failed (e.g. worn, OPERR) erase reports what it left. */
    for (uint32_t i = 0; i < FLASH_SECTOR_SIZE; i += 4u) {
        if (*(const volatile uint32_t *)(IFLASH_TEST_ADDR + i) != ERASED_WORD) {
            erased = 0;
            break;
        }
    }
    int ok = rc == FLASH_OK && erased;
    if (!ok) {
        s_failures++;
    }
    uart_printf("STEP iflash_erase %s sector 0x%08x erased=%d rc=%d sr_errors=%08x\n", ok ? "OK" : "FAIL",
                IFLASH_TEST_ADDR, erased, rc, flash_last_error());

    uint32_t len = IFLASH_FULL_BYTES + IFLASH_PARTIAL_BYTES;
    make_pattern(s_pattern, len, 0xF1A5u);
    rc = flash_program(IFLASH_TEST_ADDR, s_pattern, len);
    int diff = first_difference(mem, s_pattern, len);
    int pad_ok = 1;
    for (uint32_t i = len; i < IFLASH_FULL_BYTES + FLASH_WORD_BYTES; i++) {
        if (mem[i] != ERASED_BYTE) {
            pad_ok = 0;
        }
    }
    uint32_t sr_errors = bank1->SR & FLASH_SR_ALL_ERRORS;
    ok = rc == FLASH_OK && diff < 0 && pad_ok && sr_errors == 0u && (bank1->CR & FLASH_CR_LOCK) != 0u;
    if (!ok) {
        s_failures++;
    }
    uart_printf("STEP iflash_program %s %u+%u bytes (FW partial word) first_diff=%d pad_ff=%d sr_errors=%08x "
                "rc=%d\n",
                ok ? "OK" : "FAIL", IFLASH_FULL_BYTES, IFLASH_PARTIAL_BYTES, diff, pad_ok, sr_errors, rc);

    /* Misuse: a write to flash with PG=0 is rejected with PGSERR (no bus error), data unchanged. */
    volatile uint32_t *target = (volatile uint32_t *)(IFLASH_TEST_ADDR + IFLASH_MISUSE_OFFSET);
    bank1->CCR = FLASH_CCR_CLR_ALL;
    *target = MISUSE_PATTERN;
    cm7_dsb();
    cm7_isb();
    uint32_t sr_after = bank1->SR;
    uint32_t value = *target;
    bank1->CCR = FLASH_CCR_CLR_PGSERR;
    uint32_t sr_cleared = bank1->SR;
    ok = (sr_after & FLASH_SR_PGSERR) != 0u && value == ERASED_WORD && (sr_cleared & FLASH_SR_PGSERR) == 0u;
    if (!ok) {
        s_failures++;
    }
    uart_printf("STEP iflash_misuse %s write with PG=0: SR=%08x value=%08x, after CCR SR=%08x\n",
                ok ? "OK" : "FAIL", sr_after, value, sr_cleared);
}

int main(void)
{
    clock_init();
    board_init_gpio();
    uart_init(BAUD);
    systick_init(clock_core_hz(), TICK_HZ);
    cm7_icache_enable(); /* code fetched from the QSPI window is cached like on hardware */
    uart_puts("STORAGE_TEST start\n");

    int rc = qspi_steps();
    if (rc != W25Q_OK) {
        uart_printf("qspi: leaving memory-mapped mode failed rc=%d\n", rc);
    }
    iflash_steps();

    uart_printf("STORAGE_TEST DONE failures=%u\n", s_failures);
    systick_stop();
    for (;;) {
        cm7_wfi();
    }
}
