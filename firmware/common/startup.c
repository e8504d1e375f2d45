/*
 * Start-up code for every image: the 166-entry vector table (16 system exceptions + 150 IRQs)
 * and Reset_Handler.
 *
 * Handler names: the system handlers use the usual names (NMI_Handler, HardFault_Handler, ...,
 * SVC_Handler, PendSV_Handler, SysTick_Handler). IRQ n uses IRQ<n>_Handler, except the IRQs this
 * project names (FACTS A.4; MDMA's 122 as in ST's device header): FLASH_IRQHandler (4),
 * USART1_IRQHandler (37), OTG_HS_IRQHandler (77), QUADSPI_IRQHandler (92),
 * OTG_FS_EP1_OUT_IRQHandler (98), OTG_FS_EP1_IN_IRQHandler (99), OTG_FS_WKUP_IRQHandler (100),
 * OTG_FS_IRQHandler (101), MDMA_IRQHandler (122). Every one is a weak alias of Default_Handler,
 * so defining a function with that name installs it.
 */
#include <stdint.h>

#include "cm7_core.h"
#include "stm32h743.h"

typedef void (*vector_t)(void);

/* Linker-provided symbols (ld/common.ld) */
extern uint32_t _estack;
extern uint32_t _sidata, _sdata, _edata;
extern uint32_t _sbss, _ebss;
extern uint32_t _saxisram, _eaxisram;

int main(void);
void Reset_Handler(void);
void Default_Handler(void);

/* Exception number of the last exception that reached Default_Handler (0 = none): readable
 * from a debugger or the engine after a hang. */
volatile uint32_t g_unhandled_exception;

void Default_Handler(void)
{
    g_unhandled_exception = cm7_get_ipsr() & SCB_ICSR_VECTACTIVE_Msk;
    for (;;) {
        cm7_wfi();
    }
}

#define WEAK_ALIAS __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) WEAK_ALIAS;
void HardFault_Handler(void) WEAK_ALIAS;
void MemManage_Handler(void) WEAK_ALIAS;
void BusFault_Handler(void) WEAK_ALIAS;
void UsageFault_Handler(void) WEAK_ALIAS;
void SVC_Handler(void) WEAK_ALIAS;
void DebugMon_Handler(void) WEAK_ALIAS;
void PendSV_Handler(void) WEAK_ALIAS;
void SysTick_Handler(void) WEAK_ALIAS;

/* Named IRQs: the generic IRQ<n>_Handler token is rewritten to the project name. */
#define IRQ4_Handler FLASH_IRQHandler
#define IRQ37_Handler USART1_IRQHandler
#define IRQ77_Handler OTG_HS_IRQHandler
#define IRQ92_Handler QUADSPI_IRQHandler
#define IRQ98_Handler OTG_FS_EP1_OUT_IRQHandler
#define IRQ99_Handler OTG_FS_EP1_IN_IRQHandler
#define IRQ100_Handler OTG_FS_WKUP_IRQHandler
#define IRQ101_Handler OTG_FS_IRQHandler
#define IRQ122_Handler MDMA_IRQHandler

#define IRQ_NAME(n) IRQ##n##_Handler
#define IRQ_DECL(n) void IRQ_NAME(n)(void) WEAK_ALIAS;
#define IRQ_DECL10(d)                                                                              \
    IRQ_DECL(d##0)                                                                                 \
    IRQ_DECL(d##1)                                                                                 \
    IRQ_DECL(d##2)                                                                                 \
    IRQ_DECL(d##3)                                                                                 \
    IRQ_DECL(d##4)                                                                                 \
    IRQ_DECL(d##5)                                                                                 \
    IRQ_DECL(d##6)                                                                                 \
    IRQ_DECL(d##7)                                                                                 \
    IRQ_DECL(d##8)                                                                                 \
    IRQ_DECL(d##9)
#define IRQ_ENTRY10(d)                                                                             \
    IRQ_NAME(d##0), IRQ_NAME(d##1), IRQ_NAME(d##2), IRQ_NAME(d##3), IRQ_NAME(d##4),              \
        IRQ_NAME(d##5), IRQ_NAME(d##6), IRQ_NAME(d##7), IRQ_NAME(d##8), IRQ_NAME(d##9)

/* IRQ 0..149 */
IRQ_DECL10()
IRQ_DECL10(1)
IRQ_DECL10(2)
IRQ_DECL10(3)
IRQ_DECL10(4)
IRQ_DECL10(5)
IRQ_DECL10(6)
IRQ_DECL10(7)
IRQ_DECL10(8)
IRQ_DECL10(9)
IRQ_DECL10(10)
IRQ_DECL10(11)
IRQ_DECL10(12)
IRQ_DECL10(13)
IRQ_DECL10(14)

__attribute__((section(".isr_vector"), used)) const vector_t g_vector_table[VECTOR_COUNT] = {
    (vector_t)&_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0,
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    IRQ_ENTRY10(),
    IRQ_ENTRY10(1),
    IRQ_ENTRY10(2),
    IRQ_ENTRY10(3),
    IRQ_ENTRY10(4),
    IRQ_ENTRY10(5),
    IRQ_ENTRY10(6),
    IRQ_ENTRY10(7),
    IRQ_ENTRY10(8),
    IRQ_ENTRY10(9),
    IRQ_ENTRY10(10),
    IRQ_ENTRY10(11),
    IRQ_ENTRY10(12),
    IRQ_ENTRY10(13),
    IRQ_ENTRY10(14),
};
_Static_assert(sizeof(g_vector_table) == VECTOR_COUNT * sizeof(vector_t), "166 vectors");

/* The copy/zero loops must not be turned into memcpy/memset calls: nothing is set up yet. */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) void Reset_Handler(void)
{
    /* Our own table, whatever VTOR was at reset (the H7 boot address, or 0 on hosts that reset it
     * that way) or whoever jumped here. */
    SCB->VTOR = (uint32_t)g_vector_table;
    /* FPU first: the compiler may use FP registers anywhere (hard-float ABI). */
    SCB->CPACR |= SCB_CPACR_FPU_FULL;
    cm7_dsb();
    cm7_isb();

    const uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
    for (uint32_t *dst = &_saxisram; dst < &_eaxisram;) {
        *dst++ = 0u;
    }
    cm7_dsb();
    cm7_isb();

    (void)main();
    for (;;) {
        cm7_wfi();
    }
}
