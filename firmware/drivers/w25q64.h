/*
 * Winbond W25Q64 (8 MiB QSPI NOR, FACTS D) on the QUADSPI controller (qspi.h).
 * Addresses are flash offsets 0..W25Q_SIZE-1 (the memory-mapped window adds 0x9000_0000).
 * Every call returns 0 or a negative W25Q_ERR_* code. Erase/program/status-write waits use the
 * datasheet maximum times (D.5) as timeouts; they need SysTick running (systick.h) to sleep.
 */
#ifndef W25Q64_H
#define W25Q64_H

#include <stdint.h>

#define W25Q_SIZE 0x800000u
#define W25Q_PAGE_SIZE 256u
#define W25Q_SECTOR_SIZE 4096u
#define W25Q_BLOCK64_SIZE 65536u

/* Status registers (FACTS D.2): read opcodes for w25q_read_status() and their bits */
#define W25Q_OP_READ_SR1 0x05u
#define W25Q_OP_READ_SR2 0x35u
#define W25Q_OP_READ_SR3 0x15u
#define W25Q_SR1_BUSY 0x01u
#define W25Q_SR1_WEL 0x02u
#define W25Q_SR2_QE 0x02u

#define W25Q_JEDEC_MANUFACTURER 0xEFu /* Winbond */
#define W25Q_JEDEC_CAPACITY_64MBIT 0x17u

/* Errors: -1..-3 are the QUADSPI errors passed through (qspi.h). */
#define W25Q_OK 0
#define W25Q_ERR_TIMEOUT (-1)  /* QSPI_ERR_TIMEOUT: flash stayed BUSY / controller flag missing */
#define W25Q_ERR_TRANSFER (-2) /* QSPI_ERR_TRANSFER */
#define W25Q_ERR_PARAM (-3)    /* QSPI_ERR_PARAM or bad argument */
#define W25Q_ERR_RANGE (-4)    /* address/length outside the 8 MiB array */
#define W25Q_ERR_ID (-5)       /* JEDEC ID is not a Winbond 64 Mbit part */
#define W25Q_ERR_QE (-6)       /* QE bit did not stick */
#define W25Q_ERR_WEL (-7)      /* write enable latch did not set (write-protected or no device) */
#define W25Q_ERR_VERIFY (-8)   /* read-back differs */
#define W25Q_ERR_NOT_ERASED (-9) /* w25q_check_erased: a byte is not 0xFF */

/* Datasheet maximum times (D.5), used as timeouts */
#define W25Q_TIMEOUT_WRITE_SR_MS 15u
#define W25Q_TIMEOUT_PAGE_PROGRAM_MS 3u
#define W25Q_TIMEOUT_SECTOR_ERASE_MS 400u
#define W25Q_TIMEOUT_BLOCK64_ERASE_MS 2000u
#define W25Q_TIMEOUT_CHIP_ERASE_MS 100000u

/* qspi_init, reset (66h/99h), JEDEC check, QE on. Leaves the controller in indirect mode. */
int w25q_init(void);
int w25q_read_jedec(uint8_t id[3]);
/* Set SR2.QE (non-volatile) if it is not set yet. */
int w25q_enable_quad(void);
int w25q_read_status(uint8_t opcode, uint8_t *value); /* 05h, 35h or 15h */
/* Erase the 4 KiB sector / 64 KiB block containing addr. */
int w25q_erase_sector(uint32_t addr);
int w25q_erase_block64(uint32_t addr);
int w25q_erase_chip(void);
/* Program len bytes (quad input page program 32h), split at 256-byte page boundaries. */
int w25q_program(uint32_t addr, const uint8_t *data, uint32_t len);
/* Read len bytes with Fast Read Quad Output (6Bh). */
int w25q_read(uint32_t addr, uint8_t *data, uint32_t len);
/* Compare len bytes at addr with data; W25Q_ERR_VERIFY on a difference. Reads through the
 * memory-mapped window (EBh) and leaves the controller memory-mapped: any later command leaves
 * that mode first. */
int w25q_verify(uint32_t addr, const uint8_t *data, uint32_t len);
/* W25Q_OK when len bytes at addr all read 0xFF, else W25Q_ERR_NOT_ERASED (memory-mapped, as above). */
int w25q_check_erased(uint32_t addr, uint32_t len);
/* Memory-mapped Quad I/O read EBh (1-4-4, mode byte 0xFF as alternate, 4 dummy): CCR 0x0F10EDEB. */
int w25q_memory_mapped(void);
/* Abort memory-mapped mode (back to indirect mode). */
int w25q_leave_memory_mapped(void);

#endif /* W25Q64_H */
