/*
 * Application image header.
 *
 * A 32-byte little-endian struct at image offset 0x300 (right after the 166-word vector table),
 * placed by the linker (section .app_header, see ld/common.ld). The application defines it with
 * image_size = 0 and crc32 = 0; tools/fill_header.py patches both after objcopy, in the .bin and
 * in the ELF, so the two stay byte-identical:
 *   image_size = bytes from the image start (the vector table) to the end of the .bin
 *   crc32      = zlib CRC-32 over image bytes [0, image_size) with the 4 crc32 bytes read as 0
 */
#ifndef APP_HEADER_H
#define APP_HEADER_H

#include <stdint.h>

#define APP_HEADER_MAGIC 0x48374150u /* "PA7H" in memory order */
#define APP_HEADER_OFFSET 0x300u
#define APP_HEADER_SIZE 32u

typedef struct {
    uint32_t magic;        /* +0x00 APP_HEADER_MAGIC */
    uint32_t header_size;  /* +0x04 APP_HEADER_SIZE */
    uint32_t image_size;   /* +0x08 filled by fill_header.py */
    uint32_t crc32;        /* +0x0C filled by fill_header.py */
    uint32_t load_address; /* +0x10 link address of the image (its vector table) */
    uint32_t version;      /* +0x14 application version */
    uint32_t reserved[2];  /* +0x18 zero */
} app_header_t;

_Static_assert(sizeof(app_header_t) == APP_HEADER_SIZE, "app header is 32 bytes");
#define APP_HEADER_CRC_OFFSET 0x0Cu /* offset of crc32 inside the header */

#endif /* APP_HEADER_H */
