/*
 * Boot decision. The order in which application slots are tried is the single table below; each
 * slot says how to make its image readable at its address (QSPI needs the W25Q64 memory-mapped)
 * and how to undo that when the image is rejected.
 */
#include "boot.h"

#include "board.h"
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

/* A double ECC error in internal flash (e.g. a word torn by a power cut while it was programmed)
 * makes every read of that word a precise bus error (RM0433 4.3.9), which would end the boot in
 * HardFault with no way back to DFU but K2. While a slot is checked, BusFault is enabled and the
 * handler below counts such an error and resumes after the faulting load; the slot is then
 * rejected. Any other bus fault stops as the default handler does. */
#define THUMB32_PREFIX_MIN 0x1Du /* halfword bits [15:11] >= 0b11101: a 32-bit Thumb-2 encoding */
#define THUMB_HALFWORD_SHIFT 11u
#define FRAME_PC 6u /* stacked PC: r0-r3, r12, lr, pc, xpsr */
#define BFSR_ALL (SCB_CFSR_IBUSERR | SCB_CFSR_PRECISERR | SCB_CFSR_IMPRECISERR | SCB_CFSR_UNSTKERR | \
                  SCB_CFSR_STKERR | SCB_CFSR_LSPERR | SCB_CFSR_BFARVALID)

static volatile uint32_t s_checking;
static volatile uint32_t s_read_faults;

void BusFault_Handler(void);
void boot_bus_fault(uint32_t *frame);

__attribute__((naked)) void BusFault_Handler(void)
{
    __asm volatile("tst lr, #4\n\t"
                   "ite eq\n\t"
                   "mrseq r0, msp\n\t"
                   "mrsne r0, psp\n\t"
                   "b boot_bus_fault\n\t");
}

void boot_bus_fault(uint32_t *frame)
{
    if (!s_checking || (SCB->CFSR & SCB_CFSR_PRECISERR) == 0u) {
        for (;;) {
            cm7_wfi();
        }
    }
    s_read_faults++;
    uint32_t insn = *(const volatile uint16_t *)frame[FRAME_PC];
    frame[FRAME_PC] += (insn >> THUMB_HALFWORD_SHIFT) >= THUMB32_PREFIX_MIN ? 4u : 2u;
    SCB->CFSR = BFSR_ALL; /* W1C */
    FLASH_BANK(1)->CCR = FLASH_CCR_CLR_ALL;
    FLASH_BANK(2)->CCR = FLASH_CCR_CLR_ALL;
}

/* image_check with unreadable words (bus errors, e.g. flash ECC) counted as a rejection. */
static int check_slot(uint32_t base, uint32_t size)
{
    s_read_faults = 0u;
    s_checking = 1u;
    SCB->SHCSR |= SCB_SHCSR_BUSFAULTENA;
    cm7_dsb();
    cm7_isb();
    int verdict = image_check(base, size);
    SCB->SHCSR &= ~SCB_SHCSR_BUSFAULTENA;
    s_checking = 0u;
    if (s_read_faults != 0u) {
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
