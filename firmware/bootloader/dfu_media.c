/*
 * DFU memories: internal flash (alt 0) and the W25Q64 behind QUADSPI (alt 1).
 *
 * Each memory is a segment table (the layout string is generated from it, so what the host is
 * told and what the device enforces cannot drift apart) plus the driver calls that erase, program,
 * read and verify it. Internal flash is read straight from its address; the W25Q64 in indirect
 * mode through w25q_read for UPLOAD, while the erased check and the read-back verification of a
 * download compare through its memory-mapped window (w25q_check_erased / w25q_verify).
 */
#include "dfu_media.h"
#include "bus_guard.h"

#include "dfu_proto.h"
#include "flash.h"
#include "stm32h743.h" /* QSPI_MEM_BASE: the W25Q64 window */
#include "w25q64.h"

#define INTERNAL_SECTOR_COUNT 16u /* 2 banks x 8 sectors of 128 KiB */
#define BOOTLOADER_SECTORS 1u     /* sector 0 of bank 1 holds this bootloader: read-only */
#define QSPI_SECTOR_COUNT (W25Q_SIZE / W25Q_SECTOR_SIZE)

/* Datasheet typical times (FACTS §B.7, §D.5) used for bwPollTimeout. */
#define INTERNAL_SECTOR_ERASE_MS 1000u /* tERASE128KB at x64 parallelism (2 s at x8) */
#define INTERNAL_WORD_PROGRAM_US 100u  /* tprog of one 256-bit word at x64 (PSIZE reset value) */
#define QSPI_SECTOR_ERASE_MS 45u       /* tSE */
#define QSPI_CHIP_ERASE_MS 20000u      /* tCE */
#define QSPI_PAGE_PROGRAM_US 400u      /* tPP */
#define POLL_MARGIN_MS 2u              /* read-back checks and command overhead */
#define US_PER_MS 1000u

#define ERASED_BYTE 0xFFu
#define SCRATCH_BYTES 256u
#define KIB 1024u
#define MIN_COUNT_DIGITS 2u /* UM0290 layout: NN*SSS */
#define MIN_SIZE_DIGITS 3u
#define ADDRESS_HEX_DIGITS 8u
#define LAYOUT_TYPE_BASE 0x60u /* 'a' - 1: the type letter's low 3 bits are the access bits */

typedef struct {
    uint32_t start;
    uint32_t sector_size;
    uint32_t sector_count;
    uint32_t access;
} dfu_segment_t;

struct dfu_media {
    const char *short_name;
    const char *layout_name;
    const dfu_segment_t *segments;
    uint32_t segment_count;
    uint32_t write_align;
    uint32_t erase_ms;
    uint32_t mass_erase_ms;
    uint32_t program_unit;    /* bytes programmed per program_unit_us */
    uint32_t program_unit_us;
    int (*prepare)(void);
    int (*erase_sector)(uint32_t addr);
    int (*erase_all)(void); /* NULL: erase the erasable segments sector by sector */
    int (*program)(uint32_t addr, const uint8_t *data, uint32_t len);
    int (*read)(uint32_t addr, uint8_t *buf, uint32_t len);
    int (*verify)(uint32_t addr, const uint8_t *data, uint32_t len);
    /* 0: every byte reads erased, 1: one does not, negative: could not be read */
    int (*check_erased)(uint32_t addr, uint32_t len);
};

static uint8_t scratch[SCRATCH_BYTES];

/* ---- internal flash ----------------------------------------------------------------------------- */

static const dfu_segment_t internal_segments[] = {
    {FLASH_BANK1_BASE, FLASH_SECTOR_SIZE, BOOTLOADER_SECTORS, DFU_MEDIA_READ},
    {FLASH_BANK1_BASE + BOOTLOADER_SECTORS * FLASH_SECTOR_SIZE, FLASH_SECTOR_SIZE,
     INTERNAL_SECTOR_COUNT - BOOTLOADER_SECTORS, DFU_MEDIA_READ | DFU_MEDIA_ERASE | DFU_MEDIA_WRITE},
};

static int internal_prepare(void)
{
    return 0;
}

static int internal_erase_sector(uint32_t addr)
{
    return flash_erase_sector(addr);
}

/* Calls never cross a sector (hence never a bank) boundary; the driver programs a partial last
 * 256-bit word through FW, leaving its missing bytes erased. */
static int internal_program(uint32_t addr, const uint8_t *data, uint32_t len)
{
    while (len > 0u) {
        uint32_t sector_left = FLASH_SECTOR_SIZE - (addr % FLASH_SECTOR_SIZE);
        uint32_t chunk = len < sector_left ? len : sector_left;
        if (flash_program(addr, data, chunk) != 0) {
            return -1;
        }
        addr += chunk;
        data += chunk;
        len -= chunk;
    }
    return 0;
}

static int internal_read(uint32_t addr, uint8_t *buf, uint32_t len)
{
    const volatile uint8_t *src = (const volatile uint8_t *)(uintptr_t)addr;
    bus_guard_begin(); /* a torn word (double ECC error) must fail the read, not hang the board */
    for (uint32_t i = 0; i < len; i++) {
        buf[i] = src[i];
    }
    return bus_guard_end() == 0u ? 0 : -1;
}

static int internal_verify(uint32_t addr, const uint8_t *data, uint32_t len)
{
    const volatile uint8_t *src = (const volatile uint8_t *)(uintptr_t)addr;
    for (uint32_t i = 0; i < len; i++) {
        if (src[i] != data[i]) {
            return -1;
        }
    }
    return 0;
}

static int internal_check_erased(uint32_t addr, uint32_t len)
{
    for (uint32_t pos = addr; pos < addr + len;) {
        uint32_t n = addr + len - pos < SCRATCH_BYTES ? addr + len - pos : SCRATCH_BYTES;
        if (internal_read(pos, scratch, n) != 0) {
            return -1;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (scratch[i] != ERASED_BYTE) {
                return 1;
            }
        }
        pos += n;
    }
    return 0;
}

static const struct dfu_media internal_media = {
    .short_name = "internal",
    .layout_name = "Internal Flash  ",
    .segments = internal_segments,
    .segment_count = sizeof(internal_segments) / sizeof(internal_segments[0]),
    .write_align = FLASH_WORD_BYTES,
    .erase_ms = INTERNAL_SECTOR_ERASE_MS,
    .mass_erase_ms = 0, /* computed: one sector erase per writable sector */
    .program_unit = FLASH_WORD_BYTES,
    .program_unit_us = INTERNAL_WORD_PROGRAM_US,
    .prepare = internal_prepare,
    .erase_sector = internal_erase_sector,
    .erase_all = 0,
    .program = internal_program,
    .read = internal_read,
    .verify = internal_verify,
    .check_erased = internal_check_erased,
};

/* ---- QSPI NOR (W25Q64) ---------------------------------------------------------------------------- */

static const dfu_segment_t qspi_segments[] = {
    {QSPI_MEM_BASE, W25Q_SECTOR_SIZE, QSPI_SECTOR_COUNT, DFU_MEDIA_READ | DFU_MEDIA_ERASE | DFU_MEDIA_WRITE},
};

static int qspi_ready;

static int qspi_prepare(void)
{
    if (!qspi_ready) {
        if (w25q_init() != 0) {
            return -1;
        }
        qspi_ready = 1;
    }
    return 0;
}

static int qspi_erase_sector(uint32_t addr)
{
    return w25q_erase_sector(addr - QSPI_MEM_BASE);
}

static int qspi_erase_all(void)
{
    return w25q_erase_chip();
}

static int qspi_program(uint32_t addr, const uint8_t *data, uint32_t len)
{
    return w25q_program(addr - QSPI_MEM_BASE, data, len);
}

static int qspi_read(uint32_t addr, uint8_t *buf, uint32_t len)
{
    return w25q_read(addr - QSPI_MEM_BASE, buf, len);
}

static int qspi_verify(uint32_t addr, const uint8_t *data, uint32_t len)
{
    return w25q_verify(addr - QSPI_MEM_BASE, data, len);
}

static int qspi_check_erased(uint32_t addr, uint32_t len)
{
    int rc = w25q_check_erased(addr - QSPI_MEM_BASE, len);
    return rc == W25Q_OK ? 0 : rc == W25Q_ERR_NOT_ERASED ? 1 : -1;
}

static const struct dfu_media qspi_media = {
    .short_name = "qspi",
    .layout_name = "QSPI Flash W25Q64 ",
    .segments = qspi_segments,
    .segment_count = sizeof(qspi_segments) / sizeof(qspi_segments[0]),
    .write_align = 1,
    .erase_ms = QSPI_SECTOR_ERASE_MS,
    .mass_erase_ms = QSPI_CHIP_ERASE_MS,
    .program_unit = W25Q_PAGE_SIZE,
    .program_unit_us = QSPI_PAGE_PROGRAM_US,
    .prepare = qspi_prepare,
    .erase_sector = qspi_erase_sector,
    .erase_all = qspi_erase_all,
    .program = qspi_program,
    .read = qspi_read,
    .verify = qspi_verify,
    .check_erased = qspi_check_erased,
};

static const dfu_media_t *const media_by_alt[] = {&internal_media, &qspi_media};
_Static_assert(sizeof(media_by_alt) / sizeof(media_by_alt[0]) == DFU_MEDIA_COUNT, "alt table size");

/* ---- table queries ------------------------------------------------------------------------------------ */

uint8_t dfu_media_count(void)
{
    return (uint8_t)(sizeof(media_by_alt) / sizeof(media_by_alt[0]));
}

const dfu_media_t *dfu_media_for_alt(uint8_t alt)
{
    return alt < dfu_media_count() ? media_by_alt[alt] : 0;
}

const char *dfu_media_short_name(const dfu_media_t *m)
{
    return m->short_name;
}

uint32_t dfu_media_start(const dfu_media_t *m)
{
    return m->segments[0].start;
}

static uint64_t segment_end(const dfu_segment_t *s)
{
    return (uint64_t)s->start + (uint64_t)s->sector_size * s->sector_count;
}

uint32_t dfu_media_end(const dfu_media_t *m)
{
    return (uint32_t)segment_end(&m->segments[m->segment_count - 1u]);
}

static const dfu_segment_t *segment_at(const dfu_media_t *m, uint64_t addr)
{
    for (uint32_t i = 0; i < m->segment_count; i++) {
        const dfu_segment_t *s = &m->segments[i];
        if (addr >= s->start && addr < segment_end(s)) {
            return s;
        }
    }
    return 0;
}

uint8_t dfu_media_check(const dfu_media_t *m, uint32_t addr, uint32_t len, uint32_t access)
{
    const dfu_segment_t *first = segment_at(m, addr);
    if (first == 0 || (first->access & access) != access) {
        return DFU_STATUS_ERR_TARGET;
    }
    if ((access & DFU_MEDIA_WRITE) != 0u && (addr % m->write_align) != 0u) {
        return DFU_STATUS_ERR_ADDRESS;
    }
    uint64_t end = (uint64_t)addr + len;
    uint64_t pos = segment_end(first);
    while (pos < end) {
        const dfu_segment_t *s = segment_at(m, pos);
        if (s == 0) {
            return DFU_STATUS_ERR_ADDRESS; /* runs past the end of the memory */
        }
        if ((s->access & access) != access) {
            return DFU_STATUS_ERR_TARGET;
        }
        pos = segment_end(s);
    }
    return DFU_STATUS_OK;
}

uint32_t dfu_media_readable(const dfu_media_t *m, uint32_t addr, uint32_t want)
{
    uint64_t end = (uint64_t)addr + want;
    uint64_t pos = addr;
    while (pos < end) {
        const dfu_segment_t *s = segment_at(m, pos);
        if (s == 0 || (s->access & DFU_MEDIA_READ) == 0u) {
            break;
        }
        pos = segment_end(s);
    }
    if (pos > end) {
        pos = end;
    }
    return (uint32_t)(pos - addr);
}

uint32_t dfu_media_sector_start(const dfu_media_t *m, uint32_t addr)
{
    const dfu_segment_t *s = segment_at(m, addr);
    if (s == 0) {
        return addr;
    }
    return s->start + (addr - s->start) / s->sector_size * s->sector_size;
}

/* ---- layout string --------------------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    uint32_t size;
    uint32_t len;
} text_t;

static void put_char(text_t *t, char c)
{
    if (t->len + 1u < t->size) {
        t->buf[t->len] = c;
    }
    t->len++;
}

static void put_str(text_t *t, const char *s)
{
    while (*s != '\0') {
        put_char(t, *s++);
    }
}

static void put_dec(text_t *t, uint32_t v, uint32_t min_digits)
{
    char digits[10];
    uint32_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u && n < sizeof(digits));
    while (n < min_digits) {
        put_char(t, '0');
        min_digits--;
    }
    while (n > 0u) {
        put_char(t, digits[--n]);
    }
}

static void put_hex32(text_t *t, uint32_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    put_str(t, "0x");
    for (uint32_t i = 0; i < ADDRESS_HEX_DIGITS; i++) {
        put_char(t, hex[(v >> (4u * (ADDRESS_HEX_DIGITS - 1u - i))) & 0xFu]);
    }
}

uint32_t dfu_media_layout(const dfu_media_t *m, char *buf, uint32_t size)
{
    text_t t = {buf, size, 0};
    put_char(&t, '@');
    put_str(&t, m->layout_name);
    for (uint32_t i = 0; i < m->segment_count; i++) {
        const dfu_segment_t *s = &m->segments[i];
        int contiguous = i > 0u && segment_end(&m->segments[i - 1u]) == s->start;
        if (contiguous) {
            put_char(&t, ',');
        } else {
            put_char(&t, '/');
            put_hex32(&t, s->start);
            put_char(&t, '/');
        }
        put_dec(&t, s->sector_count, MIN_COUNT_DIGITS);
        put_char(&t, '*');
        if (s->sector_size % KIB == 0u) {
            put_dec(&t, s->sector_size / KIB, MIN_SIZE_DIGITS);
            put_char(&t, 'K');
        } else {
            put_dec(&t, s->sector_size, MIN_SIZE_DIGITS);
            put_char(&t, 'B');
        }
        put_char(&t, (char)(LAYOUT_TYPE_BASE | s->access));
    }
    if (size > 0u) {
        buf[t.len < size ? t.len : size - 1u] = '\0';
    }
    return t.len;
}

/* ---- timing ------------------------------------------------------------------------------------------------ */

uint32_t dfu_media_erase_ms(const dfu_media_t *m)
{
    return m->erase_ms + POLL_MARGIN_MS;
}

uint32_t dfu_media_mass_erase_ms(const dfu_media_t *m)
{
    if (m->erase_all != 0) {
        return m->mass_erase_ms + POLL_MARGIN_MS;
    }
    uint32_t sectors = 0;
    for (uint32_t i = 0; i < m->segment_count; i++) {
        if ((m->segments[i].access & DFU_MEDIA_ERASE) != 0u) {
            sectors += m->segments[i].sector_count;
        }
    }
    return sectors * m->erase_ms + POLL_MARGIN_MS;
}

uint32_t dfu_media_write_ms(const dfu_media_t *m, uint32_t addr, uint32_t len)
{
    if (len == 0u) {
        return POLL_MARGIN_MS;
    }
    /* Program units touched (pages of the NOR, 256-bit words of the internal flash). */
    uint32_t units = (addr + len - 1u) / m->program_unit - addr / m->program_unit + 1u;
    return (units * m->program_unit_us + US_PER_MS - 1u) / US_PER_MS + POLL_MARGIN_MS;
}

/* ---- operations --------------------------------------------------------------------------------------------- */

uint8_t dfu_media_erase(const dfu_media_t *m, uint32_t addr)
{
    uint8_t st = dfu_media_check(m, addr, 0, DFU_MEDIA_ERASE);
    if (st != DFU_STATUS_OK) {
        return st;
    }
    if (m->prepare() != 0 || m->erase_sector(dfu_media_sector_start(m, addr)) != 0) {
        return DFU_STATUS_ERR_ERASE;
    }
    return DFU_STATUS_OK;
}

uint8_t dfu_media_mass_erase(const dfu_media_t *m)
{
    if (m->prepare() != 0) {
        return DFU_STATUS_ERR_ERASE;
    }
    if (m->erase_all != 0) {
        return m->erase_all() == 0 ? DFU_STATUS_OK : DFU_STATUS_ERR_ERASE;
    }
    for (uint32_t i = 0; i < m->segment_count; i++) {
        const dfu_segment_t *s = &m->segments[i];
        if ((s->access & DFU_MEDIA_ERASE) == 0u) {
            continue;
        }
        for (uint32_t n = 0; n < s->sector_count; n++) {
            if (m->erase_sector(s->start + n * s->sector_size) != 0) {
                return DFU_STATUS_ERR_ERASE;
            }
        }
    }
    return DFU_STATUS_OK;
}

/* Every byte the program operation will touch must read as erased. For the internal flash that is
 * the whole 256-bit words (reprogramming a word corrupts its ECC even where bytes stay 0xFF). */
static uint8_t check_erased(const dfu_media_t *m, uint32_t addr, uint32_t len)
{
    uint32_t start = addr - addr % m->write_align;
    uint32_t end = addr + len;
    if (end % m->write_align != 0u) {
        end += m->write_align - end % m->write_align;
    }
    int rc = m->check_erased(start, end - start);
    if (rc < 0) {
        return DFU_STATUS_ERR_WRITE;
    }
    return rc == 0 ? DFU_STATUS_OK : DFU_STATUS_ERR_CHECK_ERASED;
}

uint8_t dfu_media_write(const dfu_media_t *m, uint32_t addr, const uint8_t *data, uint32_t len)
{
    uint8_t st = dfu_media_check(m, addr, len, DFU_MEDIA_WRITE);
    if (st != DFU_STATUS_OK) {
        return st;
    }
    if (m->prepare() != 0) {
        return DFU_STATUS_ERR_WRITE;
    }
    st = check_erased(m, addr, len);
    if (st != DFU_STATUS_OK) {
        return st;
    }
    if (m->program(addr, data, len) != 0) {
        return DFU_STATUS_ERR_WRITE;
    }
    if (m->verify(addr, data, len) != 0) {
        return DFU_STATUS_ERR_VERIFY;
    }
    return DFU_STATUS_OK;
}

uint8_t dfu_media_read(const dfu_media_t *m, uint32_t addr, uint8_t *buf, uint32_t len)
{
    if (dfu_media_readable(m, addr, len) != len) {
        return DFU_STATUS_ERR_TARGET;
    }
    if (m->prepare() != 0 || m->read(addr, buf, len) != 0) {
        return DFU_STATUS_ERR_UNKNOWN;
    }
    return DFU_STATUS_OK;
}
