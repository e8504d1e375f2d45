/* CRC-32 as zlib computes it (reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF).
 * crc32_update continues a running value: crc32_update(crc32_update(0, a, n), b, m) equals the CRC
 * of a followed by b, and crc32_update(0, d, n) == crc32(d, n) == zlib.crc32(d). */
#ifndef CRC32_H
#define CRC32_H

#include <stdint.h>

uint32_t crc32_update(uint32_t crc, const void *data, uint32_t len);
uint32_t crc32(const void *data, uint32_t len);

#endif /* CRC32_H */
