/*
 * The memories DFU can reach, one per alternate setting (alt 0 internal flash, alt 1 QSPI NOR),
 * described by segment tables from which the DfuSe layout strings are generated.
 *
 * Checks (dfu_media_check, dfu_media_readable, ...) are pure: they touch no hardware and may be
 * called from the USB interrupt. Operations (erase, write, read) drive the flash hardware and are
 * called from the main loop only. Every function returning uint8_t returns a DFU bStatus code.
 */
#ifndef DFU_MEDIA_H
#define DFU_MEDIA_H

#include <stdint.h>

#define DFU_MEDIA_READ 0x1u  /* same bits as the type letter of a layout string */
#define DFU_MEDIA_ERASE 0x2u
#define DFU_MEDIA_WRITE 0x4u

#define DFU_MEDIA_COUNT 2u /* alternate settings: 0 internal flash, 1 QSPI */

typedef struct dfu_media dfu_media_t;

uint8_t dfu_media_count(void);
const dfu_media_t *dfu_media_for_alt(uint8_t alt); /* NULL for an unknown alternate setting */
const char *dfu_media_short_name(const dfu_media_t *m);
uint32_t dfu_media_start(const dfu_media_t *m); /* lowest address: the default address pointer */
uint32_t dfu_media_end(const dfu_media_t *m);   /* first address after the memory */

/* Writes the DfuSe layout string ("@name/0xADDR/NN*SSSKt,...") NUL-terminated; returns its length. */
uint32_t dfu_media_layout(const dfu_media_t *m, char *buf, uint32_t size);

/* DFU_STATUS_OK when [addr, addr+len) lies in segments allowing `access`; errTARGET when addr is
 * outside the memory or in a segment without that access; errADDRESS when the range runs past the
 * end, or a write start is not aligned to the memory's program unit. */
uint8_t dfu_media_check(const dfu_media_t *m, uint32_t addr, uint32_t len, uint32_t access);
/* Bytes readable from addr, at most `want` (0 when addr is not readable). */
uint32_t dfu_media_readable(const dfu_media_t *m, uint32_t addr, uint32_t want);
/* Start of the erase sector holding addr (addr must pass dfu_media_check for erase). */
uint32_t dfu_media_sector_start(const dfu_media_t *m, uint32_t addr);

/* Datasheet typical durations for bwPollTimeout, in milliseconds. */
uint32_t dfu_media_erase_ms(const dfu_media_t *m);
uint32_t dfu_media_mass_erase_ms(const dfu_media_t *m);
uint32_t dfu_media_write_ms(const dfu_media_t *m, uint32_t addr, uint32_t len);

/* Main-loop operations. */
uint8_t dfu_media_erase(const dfu_media_t *m, uint32_t addr);   /* the sector holding addr */
uint8_t dfu_media_mass_erase(const dfu_media_t *m);             /* every erasable segment */
uint8_t dfu_media_write(const dfu_media_t *m, uint32_t addr, const uint8_t *data, uint32_t len);
uint8_t dfu_media_read(const dfu_media_t *m, uint32_t addr, uint8_t *buf, uint32_t len);

#endif /* DFU_MEDIA_H */
