/*
 * Boot decision. The order in which application slots are tried is the single table below; each
 * slot says how to make its image readable at its address (QSPI needs the W25Q64 memory-mapped)
 * and how to undo that when the image is rejected.
 */
#include "boot.h"

#include "board.h"
#include "bus_guard.h"
#include "clock.h"
#include "cm7_core.h"
#include "image.h"
#include "log.h"
#include "stm32h743.h"
#include "systick.h"
#include "uart.h"
#include "w25q64.h"

#define CONSOLE_BAUD 115200u
#define SYSTICK_HZ 1000u
#define INTERNAL_APP_BASE 0x08020000u /* internal flash after the bootloader's sector */
#define INTERNAL_APP_SIZE 0x001E0000u /* up to the end of bank 2 */

typedef struct {
    const char *name;
    uint32_t base;
    uint32_t size;
    int (*open)(void);   /* make the image readable at base: 0 on success; NULL = always readable */
    void (*close)(void); /* undo open when the image is not started */
} boot_slot_t;

static int qspi_open(void)
{
    if (w25q_init() != 0) {
        log_str("BOOT QSPI flash not responding");
        log_end();
        return -1;
    }
    return w25q_memory_mapped();
}

static void qspi_close(void)
{
    (void)w25q_leave_memory_mapped(); /* DFU drives the W25Q64 in indirect mode */
}

/* image_check with unreadable words (bus errors, e.g. flash ECC) counted as a rejection. */
static int check_slot(uint32_t base, uint32_t size)
{
    bus_guard_begin();
    int verdict = image_check(base, size);
    if (bus_guard_end() != 0u) {
        log_str("BOOT bus error reading the image at ");
        log_hex32(base);
        log_end();
        return IMAGE_ERR_CRC;
    }
    return verdict;
}

/* The boot order: first valid image wins. */
static const boot_slot_t boot_order[] = {
    {"QSPI", QSPI_MEM_BASE, W25Q_SIZE, qspi_open, qspi_close},
    {"internal", INTERNAL_APP_BASE, INTERNAL_APP_SIZE, 0, 0},
};

static void start(const boot_slot_t *slot)
{
    log_str("BOOT jumping to ");
    log_hex32(slot->base);
    log_end();
    /* USB was never started on this path; image_jump masks and clears the NVIC, sets VTOR and
     * the stack pointer. QUADSPI stays memory-mapped for an XIP image. */
    log_flush(); /* the application re-initialises USART1: every queued line goes out first */
    systick_stop();
    image_jump(slot->base);
}

void boot_run(void)
{
    clock_init();
    systick_init(clock_core_hz(), SYSTICK_HZ);
    board_init_gpio();
    uart_init(CONSOLE_BAUD);
    log_str("BOOT h743 bootloader v1");
    log_end();

    if (k2_pressed()) {
        log_str("BOOT K2 held: DFU mode");
        log_end();
        return;
    }
    for (uint32_t i = 0; i < sizeof(boot_order) / sizeof(boot_order[0]); i++) {
        const boot_slot_t *slot = &boot_order[i];
        if (slot->open != 0 && slot->open() != 0) {
            if (slot->close != 0) {
                slot->close();
            }
            continue;
        }
        int verdict = check_slot(slot->base, slot->size);
        if (verdict == IMAGE_OK) {
            start(slot);
        }
        log_str("BOOT no valid image at ");
        log_hex32(slot->base);
        log_str(" (image_check ");
        log_str(verdict == IMAGE_ERR_EMPTY ? "empty" : "rejected");
        log_str(")");
        log_end();
        if (slot->close != 0) {
            slot->close();
        }
    }
    log_str("BOOT no valid application: DFU mode");
    log_end();
}
