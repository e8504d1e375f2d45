#include "w25q64.h"

#include "cm7_core.h"
#include "qspi.h"
#include "stm32h743.h" /* QSPI_MEM_BASE: the memory-mapped window */
#include "systick.h"

/* QSPI_ERR_* values are the first W25Q_ERR_* values, so they pass through unchanged. */
_Static_assert(W25Q_ERR_TIMEOUT == QSPI_ERR_TIMEOUT && W25Q_ERR_TRANSFER == QSPI_ERR_TRANSFER &&
                   W25Q_ERR_PARAM == QSPI_ERR_PARAM,
               "QSPI errors pass through");

/* Opcodes (FACTS D.3) */
#define W25Q_OP_WRITE_ENABLE 0x06u
#define W25Q_OP_WRITE_SR2 0x31u
#define W25Q_OP_JEDEC_ID 0x9Fu
#define W25Q_OP_SECTOR_ERASE 0x20u
#define W25Q_OP_BLOCK64_ERASE 0xD8u
#define W25Q_OP_CHIP_ERASE 0xC7u
#define W25Q_OP_QUAD_PAGE_PROGRAM 0x32u
#define W25Q_OP_FAST_READ_QUAD_OUT 0x6Bu
#define W25Q_OP_FAST_READ_QUAD_IO 0xEBu
#define W25Q_OP_ENABLE_RESET 0x66u
#define W25Q_OP_RESET 0x99u


#define W25Q_QUAD_OUT_DUMMY 8u
#define W25Q_QUAD_IO_DUMMY 4u   /* after the mode byte sent as alternate (2 clocks on 4 lines) */
#define W25Q_MODE_BYTE 0xFFu    /* M5-4 != 10: no continuous-read mode */
#define W25Q_WEL_TIMEOUT_MS 10u
#define W25Q_RESET_WAIT_MS 1u   /* >= tRST 30 us */
#define W25Q_ERASED_WORD 0xFFFFFFFFu
#define W25Q_ERASED_BYTE 0xFFu
#define WORD_BYTES 4u

static int simple_cmd(uint8_t opcode)
{
    qspi_cmd_t c = {.instruction = opcode, .imode = QSPI_LINES_1};
    return qspi_command(&c);
}

int w25q_read_status(uint8_t opcode, uint8_t *value)
{
    qspi_cmd_t c = {.instruction = opcode, .imode = QSPI_LINES_1, .dmode = QSPI_LINES_1, .length = 1u};
    return qspi_read(&c, value);
}

static int wait_ready(uint32_t timeout_ms)
{
    qspi_cmd_t c = {.instruction = W25Q_OP_READ_SR1, .imode = QSPI_LINES_1, .dmode = QSPI_LINES_1, .length = 1u};
    return qspi_autopoll(&c, W25Q_SR1_BUSY, 0u, timeout_ms);
}

static int write_enable(void)
{
    int rc = simple_cmd(W25Q_OP_WRITE_ENABLE);
    if (rc != W25Q_OK) {
        return rc;
    }
    qspi_cmd_t c = {.instruction = W25Q_OP_READ_SR1, .imode = QSPI_LINES_1, .dmode = QSPI_LINES_1, .length = 1u};
    rc = qspi_autopoll(&c, W25Q_SR1_WEL, W25Q_SR1_WEL, W25Q_WEL_TIMEOUT_MS);
    return rc == QSPI_ERR_TIMEOUT ? W25Q_ERR_WEL : rc;
}

int w25q_read_jedec(uint8_t id[3])
{
    qspi_cmd_t c = {.instruction = W25Q_OP_JEDEC_ID, .imode = QSPI_LINES_1, .dmode = QSPI_LINES_1, .length = 3u};
    return qspi_read(&c, id);
}

int w25q_enable_quad(void)
{
    uint8_t sr2;
    int rc = w25q_read_status(W25Q_OP_READ_SR2, &sr2);
    if (rc != W25Q_OK) {
        return rc;
    }
    if ((sr2 & W25Q_SR2_QE) != 0u) {
        return W25Q_OK;
    }
    rc = write_enable();
    if (rc != W25Q_OK) {
        return rc;
    }
    uint8_t value = (uint8_t)(sr2 | W25Q_SR2_QE);
    qspi_cmd_t c = {.instruction = W25Q_OP_WRITE_SR2, .imode = QSPI_LINES_1, .dmode = QSPI_LINES_1, .length = 1u};
    rc = qspi_write(&c, &value);
    if (rc != W25Q_OK) {
        return rc;
    }
    rc = wait_ready(W25Q_TIMEOUT_WRITE_SR_MS);
    if (rc != W25Q_OK) {
        return rc;
    }
    rc = w25q_read_status(W25Q_OP_READ_SR2, &sr2);
    if (rc != W25Q_OK) {
        return rc;
    }
    return (sr2 & W25Q_SR2_QE) != 0u ? W25Q_OK : W25Q_ERR_QE;
}

int w25q_init(void)
{
    int rc = qspi_init();
    if (rc != QSPI_OK) {
        return rc;
    }
    /* Software reset: ends any suspended/continuous state left by a previous run. */
    rc = simple_cmd(W25Q_OP_ENABLE_RESET);
    if (rc == W25Q_OK) {
        rc = simple_cmd(W25Q_OP_RESET);
    }
    if (rc != W25Q_OK) {
        return rc;
    }
    delay_ms(W25Q_RESET_WAIT_MS);
    uint8_t id[3];
    rc = w25q_read_jedec(id);
    if (rc != W25Q_OK) {
        return rc;
    }
    if (id[0] != W25Q_JEDEC_MANUFACTURER || id[2] != W25Q_JEDEC_CAPACITY_64MBIT) {
        return W25Q_ERR_ID;
    }
    return w25q_enable_quad();
}

static int range_ok(uint32_t addr, uint32_t len)
{
    return addr < W25Q_SIZE && len <= W25Q_SIZE - addr;
}

static int erase(uint8_t opcode, uint32_t addr, uint32_t timeout_ms)
{
    if (!range_ok(addr, 1u)) {
        return W25Q_ERR_RANGE;
    }
    int rc = write_enable();
    if (rc != W25Q_OK) {
        return rc;
    }
    qspi_cmd_t c = {.instruction = opcode,
                    .imode = QSPI_LINES_1,
                    .admode = QSPI_LINES_1,
                    .adsize = QSPI_SIZE_24,
                    .address = addr};
    rc = qspi_command(&c);
    if (rc != W25Q_OK) {
        return rc;
    }
    return wait_ready(timeout_ms);
}

int w25q_erase_sector(uint32_t addr)
{
    return erase(W25Q_OP_SECTOR_ERASE, addr & ~(W25Q_SECTOR_SIZE - 1u), W25Q_TIMEOUT_SECTOR_ERASE_MS);
}

int w25q_erase_block64(uint32_t addr)
{
    return erase(W25Q_OP_BLOCK64_ERASE, addr & ~(W25Q_BLOCK64_SIZE - 1u), W25Q_TIMEOUT_BLOCK64_ERASE_MS);
}

int w25q_erase_chip(void)
{
    int rc = write_enable();
    if (rc != W25Q_OK) {
        return rc;
    }
    rc = simple_cmd(W25Q_OP_CHIP_ERASE);
    if (rc != W25Q_OK) {
        return rc;
    }
    return wait_ready(W25Q_TIMEOUT_CHIP_ERASE_MS);
}

int w25q_program(uint32_t addr, const uint8_t *data, uint32_t len)
{
    if (data == 0 && len != 0u) {
        return W25Q_ERR_PARAM;
    }
    if (!range_ok(addr, len)) {
        return W25Q_ERR_RANGE;
    }
    /* WEL is set as CS# rises after WREN (no delay), so polling it only proves the chip answers:
     * once per call is enough. Every caller reads the data back. */
    int first_page = 1;
    while (len > 0u) {
        /* Never cross a page: the device would wrap to the page start (D.4). */
        uint32_t chunk = W25Q_PAGE_SIZE - (addr & (W25Q_PAGE_SIZE - 1u));
        if (chunk > len) {
            chunk = len;
        }
        int rc = first_page ? write_enable() : simple_cmd(W25Q_OP_WRITE_ENABLE);
        first_page = 0;
        if (rc != W25Q_OK) {
            return rc;
        }
        qspi_cmd_t c = {.instruction = W25Q_OP_QUAD_PAGE_PROGRAM,
                        .imode = QSPI_LINES_1,
                        .admode = QSPI_LINES_1,
                        .adsize = QSPI_SIZE_24,
                        .dmode = QSPI_LINES_4,
                        .address = addr,
                        .length = chunk};
        rc = qspi_write(&c, data);
        if (rc != W25Q_OK) {
            return rc;
        }
        rc = wait_ready(W25Q_TIMEOUT_PAGE_PROGRAM_MS);
        if (rc != W25Q_OK) {
            return rc;
        }
        addr += chunk;
        data += chunk;
        len -= chunk;
    }
    return W25Q_OK;
}

int w25q_read(uint32_t addr, uint8_t *data, uint32_t len)
{
    if (data == 0 && len != 0u) {
        return W25Q_ERR_PARAM;
    }
    if (!range_ok(addr, len)) {
        return W25Q_ERR_RANGE;
    }
    if (len == 0u) {
        return W25Q_OK;
    }
    qspi_cmd_t c = {.instruction = W25Q_OP_FAST_READ_QUAD_OUT,
                    .imode = QSPI_LINES_1,
                    .admode = QSPI_LINES_1,
                    .adsize = QSPI_SIZE_24,
                    .dmode = QSPI_LINES_4,
                    .dummy = W25Q_QUAD_OUT_DUMMY,
                    .address = addr,
                    .length = len};
    return qspi_read(&c, data);
}

/* Compare len bytes of the array at addr with data, or with the erased value when data is NULL,
 * through the memory-mapped window (EBh): the controller fetches at bus speed with no FIFO or status
 * register access per word, where an indirect read costs a DR and an SR access per word. The chip
 * must be idle (every erase/program waits for BUSY=0). The controller stays memory-mapped: the next
 * indirect command aborts that mode first (qspi.c). */
static int mapped_compare(uint32_t addr, const uint8_t *data, uint32_t len, int mismatch)
{
    int rc = w25q_memory_mapped();
    if (rc != W25Q_OK) {
        return rc;
    }
    uint32_t base = QSPI_MEM_BASE + addr;
    cm7_dcache_invalidate_range(base, len); /* cached lines may predate the program/erase */
    uint32_t i = 0;
    if (((base | (uint32_t)(uintptr_t)data) % WORD_BYTES) == 0u) {
        const volatile uint32_t *words = (const volatile uint32_t *)(uintptr_t)base;
        for (; len - i >= WORD_BYTES; i += WORD_BYTES) {
            uint32_t want = W25Q_ERASED_WORD;
            if (data != 0) {
                __builtin_memcpy(&want, data + i, WORD_BYTES);
            }
            if (words[i / WORD_BYTES] != want) {
                return mismatch;
            }
        }
    }
    const volatile uint8_t *bytes = (const volatile uint8_t *)(uintptr_t)base;
    for (; i < len; i++) {
        if (bytes[i] != (data != 0 ? data[i] : W25Q_ERASED_BYTE)) {
            return mismatch;
        }
    }
    return W25Q_OK;
}

int w25q_verify(uint32_t addr, const uint8_t *data, uint32_t len)
{
    if (data == 0 && len != 0u) {
        return W25Q_ERR_PARAM;
    }
    if (!range_ok(addr, len)) {
        return W25Q_ERR_RANGE;
    }
    if (len == 0u) {
        return W25Q_OK;
    }
    return mapped_compare(addr, data, len, W25Q_ERR_VERIFY);
}

int w25q_check_erased(uint32_t addr, uint32_t len)
{
    if (!range_ok(addr, len)) {
        return W25Q_ERR_RANGE;
    }
    if (len == 0u) {
        return W25Q_OK;
    }
    return mapped_compare(addr, 0, len, W25Q_ERR_NOT_ERASED);
}

int w25q_memory_mapped(void)
{
    qspi_cmd_t c = {.instruction = W25Q_OP_FAST_READ_QUAD_IO,
                    .imode = QSPI_LINES_1,
                    .admode = QSPI_LINES_4,
                    .adsize = QSPI_SIZE_24,
                    .abmode = QSPI_LINES_4,
                    .absize = QSPI_SIZE_8,
                    .dmode = QSPI_LINES_4,
                    .dummy = W25Q_QUAD_IO_DUMMY,
                    .alternate = W25Q_MODE_BYTE};
    return qspi_memory_mapped(&c);
}

int w25q_leave_memory_mapped(void) { return qspi_abort(); }
