/*
 * MDMA (master DMA, base 0x5200_0000): one channel moves a word-aligned buffer from memory into
 * a fixed peripheral register, one buffer transfer (up to 128 bytes) per hardware request. Used
 * for QUADSPI indirect writes (request 22, FIFO threshold), so page data reaches QUADSPI_DR
 * without a CPU store per word.
 */
#ifndef MDMA_H
#define MDMA_H

#include <stdint.h>

#define MDMA_OK 0
#define MDMA_ERR_PARAM (-1)    /* unaligned buffer, length not a word multiple or too long */
#define MDMA_ERR_TRANSFER (-2) /* TEIF: a bus error on the source or destination */
#define MDMA_ERR_TIMEOUT (-3)  /* no completion in time (the channel was stopped) */

/* 1 when buf/len can go through mdma_to_register (word-aligned, whole words, fits BNDT). */
int mdma_fits(const void *buf, uint32_t len);
/* Arm `channel` to copy len bytes from src to the 32-bit register dst, one buffer transfer per
 * hardware request `request` (TSEL). Cleans the source from the D-cache first. */
int mdma_to_register(uint32_t channel, const void *src, volatile uint32_t *dst, uint32_t len, uint32_t request);
/* Wait for the channel's transfer to complete (CTCIF) or fail (TEIF); the channel is left
 * disabled with its flags cleared. */
int mdma_wait(uint32_t channel, uint32_t timeout_ms);
/* Disable the channel (e.g. after the peripheral side failed) and clear its flags. */
void mdma_stop(uint32_t channel);

#endif /* MDMA_H */
