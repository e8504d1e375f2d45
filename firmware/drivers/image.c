#include "image.h"

#include "app_header.h"
#include "cm7_core.h"
#include "crc32.h"
#include "stm32h743.h"

#define ERASED_WORD 0xFFFFFFFFu
#define ERASED_HALFWORD 0xFFFFu
#define VECTOR_TABLE_BYTES (VECTOR_COUNT * 4u)
#define STACK_ALIGN 8u

static uint32_t read32(uint32_t addr) { return *(const volatile uint32_t *)addr; }

static uint32_t read16(uint32_t addr) { return *(const volatile uint16_t *)addr; }

static int in_range(uint32_t v, uint32_t base, uint32_t size) { return v - base < size; }

static int sp_valid(uint32_t sp)
{
    if ((sp & (STACK_ALIGN - 1u)) != 0u) {
        return 0;
    }
    /* sp - 1 is the first byte pushed: the top-of-RAM address itself is valid. */
    uint32_t first = sp - 1u;
    return in_range(first, DTCM_BASE, DTCM_SIZE) || in_range(first, AXISRAM_BASE, AXISRAM_SIZE) ||
           in_range(first, SRAM123_BASE, SRAM123_SIZE) || in_range(first, SRAM4_BASE, SRAM4_SIZE);
}

int image_header_info(uint32_t base, uint32_t *version, uint32_t *size)
{
    const volatile app_header_t *h = (const volatile app_header_t *)(base + APP_HEADER_OFFSET);
    if (h->magic != APP_HEADER_MAGIC) {
        return 0;
    }
    if (version != 0) {
        *version = h->version;
    }
    if (size != 0) {
        *size = h->image_size;
    }
    return 1;
}

int image_check(uint32_t base, uint32_t region_size)
{
    if (region_size < VECTOR_TABLE_BYTES) {
        return IMAGE_ERR_PARAM;
    }
    uint32_t sp = read32(base);
    uint32_t reset = read32(base + 4u);
    if (sp == ERASED_WORD && reset == ERASED_WORD) {
        return IMAGE_ERR_EMPTY;
    }
    if (!sp_valid(sp)) {
        return IMAGE_ERR_SP;
    }
    if ((reset & 1u) == 0u || !in_range(reset & ~1u, base, region_size)) {
        return IMAGE_ERR_RESET;
    }
    /* An erased reset handler (0xFFFF starts no valid M7 instruction) means an incomplete image,
     * e.g. a download that lost power after the first page: its header may not be written yet,
     * so without this the vector table alone would let it boot. */
    if (read16(reset & ~1u) == ERASED_HALFWORD) {
        return IMAGE_ERR_RESET;
    }
    if (region_size < APP_HEADER_OFFSET + APP_HEADER_SIZE) {
        return IMAGE_OK; /* no room for a header: vector table only */
    }
    const volatile app_header_t *h = (const volatile app_header_t *)(base + APP_HEADER_OFFSET);
    if (h->magic != APP_HEADER_MAGIC) {
        return IMAGE_OK; /* documented: no header -> vector-table check decides */
    }
    uint32_t size = h->image_size;
    if (h->header_size != APP_HEADER_SIZE || size < APP_HEADER_OFFSET + APP_HEADER_SIZE ||
        size > region_size) {
        return IMAGE_ERR_HEADER;
    }
    if (h->load_address != base) {
        return IMAGE_ERR_ADDRESS;
    }
    if (!in_range(reset & ~1u, base, size)) {
        return IMAGE_ERR_RESET;
    }
    /* CRC over the image with the 4 crc bytes taken as zero. */
    static const uint8_t zero_crc[4];
    uint32_t crc_field = APP_HEADER_OFFSET + APP_HEADER_CRC_OFFSET;
    uint32_t crc = crc32_update(0u, (const void *)base, crc_field);
    crc = crc32_update(crc, zero_crc, sizeof(zero_crc));
    crc = crc32_update(crc, (const void *)(base + crc_field + 4u), size - crc_field - 4u);
    return crc == h->crc32 ? IMAGE_OK : IMAGE_ERR_CRC;
}

void image_jump(uint32_t base)
{
    cm7_irq_disable();

    SYSTICK->CSR = 0u;
    SCB->ICSR = SCB_ICSR_PENDSTCLR | SCB_ICSR_PENDSVCLR;
    for (uint32_t i = 0; i < NVIC_REG_WORDS; i++) {
        NVIC->ICER[i] = NVIC_ALL_BITS;
        NVIC->ICPR[i] = NVIC_ALL_BITS;
    }
    cm7_dsb();
    cm7_isb();

    if ((SCB->CCR & SCB_CCR_DC) != 0u) {
        cm7_dcache_disable(); /* disables, then cleans and invalidates every line */
    }
    if ((SCB->CCR & SCB_CCR_IC) != 0u) {
        cm7_icache_disable();
    }

    cm7_set_basepri(0u);
    SCB->VTOR = base;
    cm7_dsb();
    cm7_isb();

    uint32_t sp = read32(base);
    uint32_t entry = read32(base + 4u);
    /* CONTROL = 0 (MSP, privileged, FPCA clear), new MSP, PRIMASK clear as after reset, go. */
    __asm volatile("msr control, %[zero]\n\t"
                   "isb\n\t"
                   "msr msp, %[sp]\n\t"
                   "isb\n\t"
                   "cpsie i\n\t"
                   "bx %[entry]\n\t"
                   :
                   : [zero] "r"(0u), [sp] "r"(sp), [entry] "r"(entry)
                   : "memory");
    __builtin_unreachable();
}
