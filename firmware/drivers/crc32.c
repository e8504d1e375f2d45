#include "crc32.h"

#define CRC32_POLY_REFLECTED 0xEDB88320u
#define CRC32_XOR 0xFFFFFFFFu

static uint32_t s_table[256];
static int s_table_ready;

static void build_table(void)
{
    for (uint32_t i = 0; i < 256u; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ CRC32_POLY_REFLECTED : c >> 1;
        }
        s_table[i] = c;
    }
    s_table_ready = 1;
}

uint32_t crc32_update(uint32_t crc, const void *data, uint32_t len)
{
    if (!s_table_ready) {
        build_table();
    }
    const volatile uint8_t *p = (const volatile uint8_t *)data; /* may be flash/XIP: read each byte once */
    crc ^= CRC32_XOR;
    while (len-- > 0u) {
        crc = s_table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    }
    return crc ^ CRC32_XOR;
}

uint32_t crc32(const void *data, uint32_t len) { return crc32_update(0u, data, len); }
