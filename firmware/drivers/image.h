/*
 * Application image validation and hand-over.
 *
 * image_check(base, region_size) returns 0 when the image at base looks bootable:
 *   1. word 0 (initial SP) lies in DTCM, AXI SRAM, SRAM1-3 or SRAM4 (the end address included:
 *      the stack is full-descending) and is 8-byte aligned;
 *   2. word 1 (reset vector) is odd (Thumb), its address lies in [base, base + region_size),
 *      and the reset handler is not erased (first halfword 0xFFFF: an incomplete image);
 *   3. if the header magic (app_header.h) is present at base + 0x300: header_size is 32,
 *      load_address equals base, image_size covers the vector table + header and fits in the
 *      region, the reset vector lies inside the image, and the CRC-32 over [0, image_size) with
 *      the crc32 field read as zero matches.
 *   Without the magic, the vector-table checks alone decide (a plain vector-table image is
 *   accepted; it has no integrity check).
 * The image must be readable at base (QSPI: memory-mapped mode on).
 */
#ifndef IMAGE_H
#define IMAGE_H

#include <stdint.h>

#define IMAGE_OK 0
#define IMAGE_ERR_EMPTY (-1)   /* words 0 and 1 are erased (0xFFFFFFFF) */
#define IMAGE_ERR_SP (-2)      /* initial SP outside RAM or misaligned */
#define IMAGE_ERR_RESET (-3)   /* reset vector even, outside the region/image, or erased */
#define IMAGE_ERR_HEADER (-4)  /* header present but header_size / image_size not sane */
#define IMAGE_ERR_ADDRESS (-5) /* header load_address differs from base */
#define IMAGE_ERR_CRC (-6)     /* CRC mismatch */
#define IMAGE_ERR_PARAM (-7)   /* region too small to hold a vector table */

int image_check(uint32_t base, uint32_t region_size);
/* Read the header at base + 0x300: 1 when the magic is present (then *version / *size set). */
int image_header_info(uint32_t base, uint32_t *version, uint32_t *size);
/* Hand over to the image at base (FACTS G.2): mask IRQs, stop SysTick and clear its pending bit,
 * disable and clear every NVIC IRQ, clean+disable the D-cache and disable+invalidate the I-cache
 * when they are on, BASEPRI=0, CONTROL=0 (MSP, no FP context), VTOR=base, DSB/ISB, MSP=word 0,
 * unmask IRQs (PRIMASK=0 as after a reset; nothing is enabled) and branch to word 1.
 * Peripherals (USB...) must be shut down by the caller first. The MPU is left as it is. */
__attribute__((noreturn)) void image_jump(uint32_t base);

#endif /* IMAGE_H */
