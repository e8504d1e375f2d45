/*
 * Reads that may hit a bus error (internal flash words with a double ECC error) without ending
 * in HardFault: used by the boot decision and by DFU uploads/verifies of internal flash.
 */
#include "bus_guard.h"
#include "cm7_core.h"
#include "stm32h743.h"

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

static volatile uint32_t s_guarding;
static volatile uint32_t s_read_faults;

void BusFault_Handler(void);
void bus_guard_fault(uint32_t *frame);

__attribute__((naked)) void BusFault_Handler(void)
{
    __asm volatile("tst lr, #4\n\t"
                   "ite eq\n\t"
                   "mrseq r0, msp\n\t"
                   "mrsne r0, psp\n\t"
                   "b bus_guard_fault\n\t");
}

void bus_guard_fault(uint32_t *frame)
{
    if (!s_guarding || (SCB->CFSR & SCB_CFSR_PRECISERR) == 0u) {
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

void bus_guard_begin(void)
{
    s_read_faults = 0u;
    s_guarding = 1u;
    SCB->SHCSR |= SCB_SHCSR_BUSFAULTENA;
    cm7_dsb();
    cm7_isb();
}

uint32_t bus_guard_end(void)
{
    SCB->SHCSR &= ~SCB_SHCSR_BUSFAULTENA;
    s_guarding = 0u;
    return s_read_faults;
}
