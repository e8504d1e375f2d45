/*
 * QUADSPI controller (FACTS C), single flash on bank 1, DevEBox pins:
 *   PB2 CLK (AF9), PB6 BK1_NCS (AF10), PD11 IO0, PD12 IO1, PE2 IO2, PD13 IO3 (AF9).
 * Kernel clock rcc_hclk3 (200 MHz), PRESCALER 1 -> 100 MHz CLK, FSIZE 22 (8 MiB), CSHT 5 (6 cycles).
 *
 * Every transfer follows the start rules of FACTS C.3: DLR -> ABR -> CCR -> AR -> DR. Byte data
 * goes through 8-bit DR accesses. An indirect/polling command issued while the controller is in
 * memory-mapped mode aborts memory-mapped mode first.
 * Timeouts use SysTick (systick.h); without a running SysTick a spin-count backstop applies.
 */
#ifndef QSPI_H
#define QSPI_H

#include <stdint.h>

/* Line modes (IMODE/ADMODE/ABMODE/DMODE encodings) */
#define QSPI_LINES_NONE 0u
#define QSPI_LINES_1 1u
#define QSPI_LINES_2 2u
#define QSPI_LINES_4 3u
/* Address / alternate-byte sizes (ADSIZE/ABSIZE encodings) */
#define QSPI_SIZE_8 0u
#define QSPI_SIZE_16 1u
#define QSPI_SIZE_24 2u
#define QSPI_SIZE_32 3u

/* Errors (all negative) */
#define QSPI_OK 0
#define QSPI_ERR_TIMEOUT (-1)  /* a flag did not come in time (the command was aborted) */
#define QSPI_ERR_TRANSFER (-2) /* TEF: address/length outside FSIZE */
#define QSPI_ERR_PARAM (-3)    /* invalid command description */

/* Default wait for controller flags (BUSY, FTF, TCF) */
#define QSPI_TIMEOUT_MS 100u
#define QSPI_FSIZE 22u
#define QSPI_PRESCALER 1u
#define QSPI_CSHT 5u
#define QSPI_POLL_INTERVAL 0x10u /* PIR: CLK cycles between automatic status reads */

typedef struct {
    uint8_t instruction; /* opcode */
    uint8_t imode;       /* QSPI_LINES_* for the instruction phase (NONE = no instruction) */
    uint8_t admode;      /* QSPI_LINES_* for the address phase */
    uint8_t adsize;      /* QSPI_SIZE_* */
    uint8_t abmode;      /* QSPI_LINES_* for the alternate bytes */
    uint8_t absize;      /* QSPI_SIZE_* */
    uint8_t dmode;       /* QSPI_LINES_* for data (and dummy cycles) */
    uint8_t dummy;       /* dummy cycles 0..31 */
    uint32_t address;
    uint32_t alternate;
    uint32_t length; /* data bytes (indirect read/write, polling: 1..4) */
} qspi_cmd_t;

/* Clock, pins, controller configuration; aborts a transfer in progress. Returns 0. */
int qspi_init(void);
/* Command without data (instruction, optional address/alternate), indirect-write mode. */
int qspi_command(const qspi_cmd_t *c);
/* Indirect write of c->length bytes from buf. */
int qspi_write(const qspi_cmd_t *c, const uint8_t *buf);
/* Indirect read of c->length bytes into buf. */
int qspi_read(const qspi_cmd_t *c, uint8_t *buf);
/* Automatic status polling (AND match, stop on match) until (status & mask) == match. Waits of
 * timeout_ms >= 10 that do not match at once sleep (systick_sleep) and are woken by the
 * status-match interrupt (CR.SMIE, IRQ 92, QUADSPI_IRQHandler here), in thread mode only. */
int qspi_autopoll(const qspi_cmd_t *c, uint32_t mask, uint32_t match, uint32_t timeout_ms);
/* Enter memory-mapped mode with command c (reads at 0x9000_0000 + offset). */
int qspi_memory_mapped(const qspi_cmd_t *c);
/* Abort whatever runs (memory-mapped included), wait until the controller is idle. */
int qspi_abort(void);
/* 1 when the controller is enabled in memory-mapped mode. */
int qspi_is_memory_mapped(void);

#endif /* QSPI_H */
