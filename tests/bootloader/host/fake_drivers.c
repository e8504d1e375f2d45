/*
 * Host stand-ins for the drivers the DFU layers call: internal flash (2 MiB mapped at its real
 * address 0x08000000 so the bootloader reads it directly, as on the chip), the W25Q64 (8 MiB
 * buffer), the UART (text buffer) and the device UID. NOR/flash rules: erase sets 0xFF, program
 * ANDs. Every erase/program is logged so tests can check nothing outside the request changed;
 * faults can be injected per operation kind.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "flash.h"
#include "stm32h743.h"
#include "uart.h"
#include "w25q64.h"

#define INTERNAL_SIZE 0x200000u
#define UID_PAGE 0x1FF1E000u
#define PAGE 4096u
#define LOG_MAX 4096

enum { OP_FLASH_ERASE = 1, OP_FLASH_PROGRAM, OP_QSPI_ERASE, OP_QSPI_CHIP_ERASE, OP_QSPI_PROGRAM,
       OP_QSPI_VERIFY, OP_QSPI_INIT, OP_QSPI_READ };

typedef struct {
    int op;
    uint32_t addr;
    uint32_t len;
} op_t;

static uint8_t *internal;
static uint8_t qspi[W25Q_SIZE];
static op_t ops[LOG_MAX];
static int op_count;
static int fail_op;       /* operation kind that fails next (0 = none) */
static int reprogrammed;  /* internal flash words programmed while not erased */
static char uart_text[65536];
static size_t uart_len;

static void record(int op, uint32_t addr, uint32_t len)
{
    if (op_count < LOG_MAX) {
        ops[op_count].op = op;
        ops[op_count].addr = addr;
        ops[op_count].len = len;
        op_count++;
    }
}

static int should_fail(int op)
{
    if (fail_op == op) {
        fail_op = 0;
        return 1;
    }
    return 0;
}

/* ---- harness ---- */

int sim_init(void)
{
    void *p = mmap((void *)(uintptr_t)FLASH_BANK1_BASE, INTERNAL_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)(uintptr_t)FLASH_BANK1_BASE) return -1;
    internal = p;
    uint32_t *uid = mmap((void *)(uintptr_t)UID_PAGE, PAGE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (uid != (void *)(uintptr_t)UID_PAGE) return -2;
    uid[(UID_BASE - UID_PAGE) / 4u + 0u] = 0x00380021u;
    uid[(UID_BASE - UID_PAGE) / 4u + 1u] = 0x3131510Au;
    uid[(UID_BASE - UID_PAGE) / 4u + 2u] = 0x36383430u;
    return 0;
}

void sim_reset_memory(void)
{
    memset(internal, 0xFF, INTERNAL_SIZE);
    memset(qspi, 0xFF, sizeof(qspi));
    op_count = 0;
    fail_op = 0;
    reprogrammed = 0;
    uart_len = 0;
    uart_text[0] = '\0';
}

uint8_t *sim_internal(void) { return internal; }
uint8_t *sim_qspi(void) { return qspi; }
int sim_op_count(void) { return op_count; }
void sim_op(int i, int *op, uint32_t *addr, uint32_t *len) { *op = ops[i].op; *addr = ops[i].addr; *len = ops[i].len; }
void sim_fail_next(int op) { fail_op = op; }
int sim_reprogrammed(void) { return reprogrammed; }
const char *sim_uart(void) { return uart_text; }

/* ---- flash.h ---- */

int flash_erase_sector(uint32_t addr)
{
    if (addr < FLASH_BANK1_BASE || addr >= FLASH_BANK1_BASE + INTERNAL_SIZE) return FLASH_ERR_ADDR;
    uint32_t start = addr - addr % FLASH_SECTOR_SIZE;
    record(OP_FLASH_ERASE, start, FLASH_SECTOR_SIZE);
    if (should_fail(OP_FLASH_ERASE)) return FLASH_ERR_OP;
    memset(internal + (start - FLASH_BANK1_BASE), 0xFF, FLASH_SECTOR_SIZE);
    return 0;
}

int flash_erase_bank(int bank)
{
    (void)bank;
    return FLASH_ERR_PARAM; /* the bootloader never erases a whole bank */
}

int flash_program(uint32_t addr, const uint8_t *data, uint32_t len)
{
    if (addr % FLASH_WORD_BYTES != 0u) return FLASH_ERR_ALIGN;
    if (addr < FLASH_BANK1_BASE || addr + len > FLASH_BANK1_BASE + INTERNAL_SIZE) return FLASH_ERR_ADDR;
    record(OP_FLASH_PROGRAM, addr, len);
    if (should_fail(OP_FLASH_PROGRAM)) return FLASH_ERR_OP;
    uint8_t *dst = internal + (addr - FLASH_BANK1_BASE);
    for (uint32_t w = 0; w < len; w += FLASH_WORD_BYTES) {
        for (uint32_t i = 0; i < FLASH_WORD_BYTES; i++) {
            if (dst[w + i] != 0xFFu) reprogrammed++;
        }
    }
    for (uint32_t i = 0; i < len; i++) dst[i] &= data[i];
    return 0;
}

uint32_t flash_last_error(void) { return 0; }

/* ---- w25q64.h ---- */

int w25q_init(void)
{
    record(OP_QSPI_INIT, 0, 0);
    return should_fail(OP_QSPI_INIT) ? W25Q_ERR_ID : 0;
}
int w25q_read_jedec(uint8_t id[3]) { id[0] = 0xEF; id[1] = 0x40; id[2] = 0x17; return 0; }
int w25q_enable_quad(void) { return 0; }
int w25q_read_status(uint8_t opcode, uint8_t *value) { (void)opcode; *value = 0; return 0; }

int w25q_erase_sector(uint32_t addr)
{
    if (addr >= W25Q_SIZE) return W25Q_ERR_RANGE;
    uint32_t start = addr - addr % W25Q_SECTOR_SIZE;
    record(OP_QSPI_ERASE, start, W25Q_SECTOR_SIZE);
    if (should_fail(OP_QSPI_ERASE)) return W25Q_ERR_TIMEOUT;
    memset(qspi + start, 0xFF, W25Q_SECTOR_SIZE);
    return 0;
}

int w25q_erase_block64(uint32_t addr) { (void)addr; return W25Q_ERR_PARAM; }

int w25q_erase_chip(void)
{
    record(OP_QSPI_CHIP_ERASE, 0, W25Q_SIZE);
    if (should_fail(OP_QSPI_CHIP_ERASE)) return W25Q_ERR_TIMEOUT;
    memset(qspi, 0xFF, sizeof(qspi));
    return 0;
}

int w25q_program(uint32_t addr, const uint8_t *data, uint32_t len)
{
    if (addr + len > W25Q_SIZE) return W25Q_ERR_RANGE;
    record(OP_QSPI_PROGRAM, addr, len);
    if (should_fail(OP_QSPI_PROGRAM)) return W25Q_ERR_TIMEOUT;
    for (uint32_t i = 0; i < len; i++) qspi[addr + i] &= data[i];
    return 0;
}

int w25q_read(uint32_t addr, uint8_t *data, uint32_t len)
{
    if (addr + len > W25Q_SIZE) return W25Q_ERR_RANGE;
    if (should_fail(OP_QSPI_READ)) return W25Q_ERR_TIMEOUT;
    memcpy(data, qspi + addr, len);
    return 0;
}

int w25q_verify(uint32_t addr, const uint8_t *data, uint32_t len)
{
    if (addr + len > W25Q_SIZE) return W25Q_ERR_RANGE;
    record(OP_QSPI_VERIFY, addr, len);
    if (should_fail(OP_QSPI_VERIFY)) return W25Q_ERR_VERIFY;
    return memcmp(qspi + addr, data, len) == 0 ? 0 : W25Q_ERR_VERIFY;
}

int w25q_check_erased(uint32_t addr, uint32_t len)
{
    if (addr + len > W25Q_SIZE) return W25Q_ERR_RANGE;
    if (should_fail(OP_QSPI_READ)) return W25Q_ERR_TIMEOUT;
    for (uint32_t i = 0; i < len; i++) {
        if (qspi[addr + i] != 0xFFu) return W25Q_ERR_NOT_ERASED;
    }
    return 0;
}

int w25q_memory_mapped(void) { return 0; }
int w25q_leave_memory_mapped(void) { return 0; }

/* ---- uart.h ---- */

void uart_init(uint32_t baud) { (void)baud; }

void uart_putc(char c)
{
    if (c == '\n' && uart_len + 1u < sizeof(uart_text)) uart_text[uart_len++] = '\r';
    if (uart_len + 1u < sizeof(uart_text)) {
        uart_text[uart_len++] = c;
        uart_text[uart_len] = '\0';
    }
}

void uart_puts(const char *s)
{
    while (*s) uart_putc(*s++);
}

void uart_printf(const char *fmt, ...) { uart_puts(fmt); }
void uart_queue(const char *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) uart_putc(s[i]);
}
void uart_write(const char *s, uint32_t n) { uart_queue(s, n); }
int uart_getc_nonblock(void) { return -1; }
void uart_flush(void) {}

/* bus_guard.h: host memory never raises bus errors */
#include "bus_guard.h"
void bus_guard_begin(void) {}
uint32_t bus_guard_end(void) { return 0u; }
