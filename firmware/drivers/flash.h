/*
 * Internal FLASH (2 banks x 8 sectors x 128 KiB, 256-bit flash words), FACTS B.4-B.6.
 * Each call unlocks the bank (key sequence only when LOCK=1), runs the operation, checks and
 * clears the SR error flags, and locks the bank again. Returns 0 or a negative FLASH_ERR_*;
 * flash_last_error() then gives the SR error bits of that operation.
 * Waits use SysTick timeouts (systick.h); erases sleep with WFI between polls when they can.
 * The D-cache is not maintained here: callers with the D-cache on must invalidate the range.
 */
#ifndef FLASH_H
#define FLASH_H

#include <stdint.h>

#define FLASH_BANK1_BASE 0x08000000u
#define FLASH_BANK2_BASE 0x08100000u
#define FLASH_BANK_SIZE 0x00100000u
#define FLASH_SECTOR_SIZE 0x20000u
#define FLASH_SECTORS_PER_BANK 8u
#define FLASH_WORD_BYTES 32u

#define FLASH_OK 0
#define FLASH_ERR_ADDR (-1)    /* address outside the two banks (or range crosses the end) */
#define FLASH_ERR_ALIGN (-2)   /* program address not 32-byte aligned */
#define FLASH_ERR_LOCKED (-3)  /* key sequence did not unlock the bank */
#define FLASH_ERR_TIMEOUT (-4) /* QW did not clear in time */
#define FLASH_ERR_OP (-5)      /* SR error flag(s) set: see flash_last_error() */
#define FLASH_ERR_VERIFY (-6)  /* programmed data reads back differently */
#define FLASH_ERR_PARAM (-7)   /* bad bank number / null data */

/* Timeouts: datasheet maxima with margin (B.7: 2-4 s per sector, 0.58 ms per word) */
#define FLASH_TIMEOUT_SECTOR_ERASE_MS 4000u
#define FLASH_TIMEOUT_BANK_ERASE_MS 32000u
#define FLASH_TIMEOUT_WORD_MS 5u

/* Erase the sector that contains addr (either bank), parallelism x64. */
int flash_erase_sector(uint32_t addr);
/* Erase a whole bank (1 or 2). */
int flash_erase_bank(int bank);
/* Program len bytes at addr (32-byte aligned): full 256-bit words as 8 x 32-bit stores, a partial
 * last word through FW (missing bytes stay 0xFF). The written bytes are verified. */
int flash_program(uint32_t addr, const uint8_t *data, uint32_t len);
/* SR error bits (FLASH_SR_*) recorded by the last operation (0 when it succeeded). */
uint32_t flash_last_error(void);

#endif /* FLASH_H */
