/*
 * storage_bench: W25Q64 throughput through the drivers, for `h743sim bench storage`.
 *
 * Erases bench_config.bytes of the W25Q64 (64 KiB blocks, then 4 KiB sectors), programs them with
 * a pattern (quad page program, 256-byte pages), reads them back in indirect mode (quad output
 * fast read) and compares, then reads the memory-mapped window bench_config.mapped_passes times
 * with 32-bit loads and checks the sum. bench_config sits in flash: the host may patch it in the
 * image before power-on (h743sim.bench does) to size the run. Each phase prints, with its
 * duration in virtual time (SysTick):
 *   BENCH <phase> start
 *   BENCH <phase> done bytes=<n> us=<virtual us> rc=<rc>
 * and the run ends with "BENCH DONE failures=<n>". The host times the lines on the wall clock.
 */
#include <stdint.h>

#include "board.h"
#include "clock.h"
#include "cm7_core.h"
#include "stm32h743.h"
#include "systick.h"
#include "uart.h"
#include "w25q64.h"

#define BAUD 115200u
#define TICK_HZ 10000u /* 100 us ticks: fine enough for per-phase timing */
#define US_PER_TICK (1000000u / TICK_HZ)

#define BENCH_OFFSET 0x100000u  /* 1 MiB into the array, 64 KiB aligned */
#define BENCH_MAX_BYTES 0x100000u /* at most 1 MiB of the array */
#define CHUNK_BYTES 4096u       /* program/read in 4 KiB calls (16 pages); the size unit */
#define DEFAULT_BYTES 0x10000u  /* 64 KiB = 256 pages */
#define DEFAULT_PASSES 16u      /* 16 x 64 KiB = 1 MiB read through the window */
#define LCG_MUL 1103515245u
#define LCG_ADD 12345u
#define PATTERN_SEED 0xBE7Cu

typedef struct {
    uint32_t bytes;         /* multiple of CHUNK_BYTES, 1..BENCH_MAX_BYTES/CHUNK_BYTES chunks */
    uint32_t mapped_passes; /* reads of the whole area through the memory-mapped window */
} bench_config_t;

/* In flash (.rodata); read through a volatile pointer so a patched image takes effect. */
__attribute__((used)) const bench_config_t bench_config = {DEFAULT_BYTES, DEFAULT_PASSES};

static uint32_t s_failures;
static uint8_t s_chunk[CHUNK_BYTES];
static uint8_t s_back[CHUNK_BYTES];
static uint32_t s_lcg;

/* The pattern is a continuous LCG stream over the whole bench area, generated chunk by chunk. */
static void next_chunk(uint8_t *p)
{
    for (uint32_t i = 0; i < CHUNK_BYTES; i++) {
        s_lcg = s_lcg * LCG_MUL + LCG_ADD;
        p[i] = (uint8_t)(s_lcg >> 16);
    }
}

static uint32_t word_sum(const uint8_t *p, uint32_t len)
{
    uint32_t sum = 0u;
    for (uint32_t i = 0; i < len; i += 4u) {
        sum += (uint32_t)p[i] | ((uint32_t)p[i + 1u] << 8) | ((uint32_t)p[i + 2u] << 16) |
               ((uint32_t)p[i + 3u] << 24);
    }
    return sum;
}

static uint32_t phase_start(const char *name)
{
    uart_printf("BENCH %s start\n", name);
    return systick_ticks();
}

static void phase_done(const char *name, uint32_t t0, uint32_t bytes, int rc)
{
    uint32_t us = (systick_ticks() - t0) * US_PER_TICK;
    if (rc != 0) {
        s_failures++;
    }
    uart_printf("BENCH %s done bytes=%u us=%u rc=%d\n", name, bytes, us, rc);
}

int main(void)
{
    clock_init();
    board_init_gpio();
    uart_init(BAUD);
    systick_init(clock_core_hz(), TICK_HZ);
    uart_puts("BENCH start\n");

    int rc = w25q_init();
    if (rc == W25Q_OK) {
        rc = w25q_enable_quad();
    }
    if (rc != W25Q_OK) {
        uart_printf("BENCH DONE failures=1 init rc=%d\n", rc);
        for (;;) {
            cm7_wfi();
        }
    }

    const volatile bench_config_t *config = &bench_config;
    uint32_t total = config->bytes;
    uint32_t passes = config->mapped_passes;
    if (total == 0u || total > BENCH_MAX_BYTES || total % CHUNK_BYTES != 0u) {
        uart_printf("BENCH DONE failures=1 bad config bytes=%u\n", total);
        for (;;) {
            cm7_wfi();
        }
    }

    uint32_t t0 = phase_start("erase");
    for (uint32_t off = 0; off < total && rc == W25Q_OK;) {
        if (total - off >= W25Q_BLOCK64_SIZE) {
            rc = w25q_erase_block64(BENCH_OFFSET + off);
            off += W25Q_BLOCK64_SIZE;
        } else {
            rc = w25q_erase_sector(BENCH_OFFSET + off);
            off += W25Q_SECTOR_SIZE;
        }
    }
    phase_done("erase", t0, total, rc);

    /* Expected sum of the whole area as 32-bit little-endian words, for the mapped reads. */
    uint32_t expected_sum = 0u;
    s_lcg = PATTERN_SEED;
    t0 = phase_start("program");
    rc = W25Q_OK;
    for (uint32_t off = 0; off < total && rc == W25Q_OK; off += CHUNK_BYTES) {
        next_chunk(s_chunk);
        expected_sum += word_sum(s_chunk, CHUNK_BYTES);
        rc = w25q_program(BENCH_OFFSET + off, s_chunk, CHUNK_BYTES);
    }
    phase_done("program", t0, total, rc);

    s_lcg = PATTERN_SEED;
    t0 = phase_start("readback");
    rc = W25Q_OK;
    for (uint32_t off = 0; off < total && rc == W25Q_OK; off += CHUNK_BYTES) {
        next_chunk(s_chunk);
        rc = w25q_read(BENCH_OFFSET + off, s_back, CHUNK_BYTES);
        for (uint32_t i = 0; i < CHUNK_BYTES && rc == W25Q_OK; i++) {
            if (s_back[i] != s_chunk[i]) {
                uart_printf("BENCH readback mismatch at 0x%06x\n", BENCH_OFFSET + off + i);
                rc = W25Q_ERR_VERIFY;
            }
        }
    }
    phase_done("readback", t0, total, rc);

    rc = w25q_memory_mapped();
    t0 = phase_start("mapped");
    uint32_t bytes = 0u;
    for (uint32_t pass = 0; pass < passes && rc == W25Q_OK; pass++) {
        const volatile uint32_t *w = (const volatile uint32_t *)(QSPI_MEM_BASE + BENCH_OFFSET);
        uint32_t sum = 0u;
        for (uint32_t i = 0; i < total / 4u; i++) {
            sum += w[i];
        }
        bytes += total;
        if (sum != expected_sum) {
            uart_printf("BENCH mapped sum %08x, expected %08x\n", sum, expected_sum);
            rc = W25Q_ERR_VERIFY;
        }
    }
    phase_done("mapped", t0, bytes, rc);
    (void)w25q_leave_memory_mapped();

    uart_printf("BENCH DONE failures=%u\n", s_failures);
    systick_stop();
    for (;;) {
        cm7_wfi();
    }
}
