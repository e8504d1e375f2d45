/*
 * Cortex-M7 core helpers: barriers, special registers, interrupt masking, L1 cache maintenance.
 * Our own inline-assembly wrappers (no CMSIS); register names come from stm32h743.h.
 */
#ifndef CM7_CORE_H
#define CM7_CORE_H

#include <stdint.h>

#include "stm32h743.h"

static inline void cm7_dsb(void) { __asm volatile("dsb 0xF" ::: "memory"); }
static inline void cm7_isb(void) { __asm volatile("isb 0xF" ::: "memory"); }
static inline void cm7_dmb(void) { __asm volatile("dmb 0xF" ::: "memory"); }
static inline void cm7_wfi(void) { __asm volatile("wfi" ::: "memory"); }
/* Sleeps unless the event register is set; every exception return sets it (ARMv7-M B1.5.18). */
static inline void cm7_wfe(void) { __asm volatile("wfe" ::: "memory"); }
static inline void cm7_nop(void) { __asm volatile("nop"); }
static inline void cm7_irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void cm7_irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }

static inline uint32_t cm7_get_primask(void)
{
    uint32_t v;
    __asm volatile("mrs %0, primask" : "=r"(v)::"memory");
    return v;
}

static inline void cm7_set_primask(uint32_t v) { __asm volatile("msr primask, %0" ::"r"(v) : "memory"); }

static inline uint32_t cm7_get_basepri(void)
{
    uint32_t v;
    __asm volatile("mrs %0, basepri" : "=r"(v)::"memory");
    return v;
}

static inline void cm7_set_basepri(uint32_t v) { __asm volatile("msr basepri, %0" ::"r"(v) : "memory"); }

static inline uint32_t cm7_get_ipsr(void)
{
    uint32_t v;
    __asm volatile("mrs %0, ipsr" : "=r"(v));
    return v;
}

static inline uint32_t cm7_get_control(void)
{
    uint32_t v;
    __asm volatile("mrs %0, control" : "=r"(v)::"memory");
    return v;
}

static inline uint32_t cm7_get_msp(void)
{
    uint32_t v;
    __asm volatile("mrs %0, msp" : "=r"(v));
    return v;
}

/* Save PRIMASK and mask interrupts; restore with cm7_irq_restore(). */
static inline uint32_t cm7_irq_save(void)
{
    uint32_t v = cm7_get_primask();
    cm7_irq_disable();
    return v;
}

static inline void cm7_irq_restore(uint32_t primask) { cm7_set_primask(primask); }

/* ---- NVIC helpers --------------------------------------------------------------------- */
static inline void nvic_enable_irq(uint32_t irq) { NVIC->ISER[NVIC_WORD(irq)] = NVIC_BIT(irq); }
static inline void nvic_disable_irq(uint32_t irq)
{
    NVIC->ICER[NVIC_WORD(irq)] = NVIC_BIT(irq);
    cm7_dsb();
    cm7_isb();
}
static inline void nvic_clear_pending(uint32_t irq) { NVIC->ICPR[NVIC_WORD(irq)] = NVIC_BIT(irq); }
static inline int nvic_is_pending(uint32_t irq) { return (NVIC->ISPR[NVIC_WORD(irq)] & NVIC_BIT(irq)) != 0u; }
static inline int nvic_is_active(uint32_t irq) { return (NVIC->IABR[NVIC_WORD(irq)] & NVIC_BIT(irq)) != 0u; }
static inline void nvic_set_priority(uint32_t irq, uint32_t level) { NVIC->IP[irq] = NVIC_PRIO(level); }

/* ---- L1 caches (ARMv7-M cache maintenance by set/way) ------------------------------------ */
static inline void cm7_icache_invalidate(void)
{
    cm7_dsb();
    cm7_isb();
    SCB->ICIALLU = 0u;
    cm7_dsb();
    cm7_isb();
}

static inline void cm7_icache_enable(void)
{
    cm7_icache_invalidate();
    SCB->CCR |= SCB_CCR_IC;
    cm7_dsb();
    cm7_isb();
}

static inline void cm7_icache_disable(void)
{
    cm7_dsb();
    cm7_isb();
    SCB->CCR &= ~SCB_CCR_IC;
    SCB->ICIALLU = 0u;
    cm7_dsb();
    cm7_isb();
}

/* Clean and invalidate the whole L1 D-cache by set/way (geometry read from CCSIDR). */
static inline void cm7_dcache_clean_invalidate_all(void)
{
    SCB->CSSELR = SCB_CSSELR_L1_DATA;
    cm7_dsb();
    uint32_t ccsidr = SCB->CCSIDR;
    uint32_t sets = ((ccsidr & SCB_CCSIDR_NUMSETS_Msk) >> SCB_CCSIDR_NUMSETS_Pos) + 1u;
    uint32_t ways = ((ccsidr & SCB_CCSIDR_ASSOC_Msk) >> SCB_CCSIDR_ASSOC_Pos) + 1u;
    uint32_t set_shift = (ccsidr & SCB_CCSIDR_LINESIZE_Msk) + 4u; /* log2(line bytes) */
    uint32_t way_shift = (ways > 1u) ? (uint32_t)__builtin_clz(ways - 1u) : 0u;
    for (uint32_t set = 0; set < sets; set++) {
        for (uint32_t way = 0; way < ways; way++) {
            SCB->DCCISW = (set << set_shift) | (way << way_shift);
        }
    }
    cm7_dsb();
    cm7_isb();
}

/* Write the address of every D-cache line covering [addr, addr+len) to the by-address
 * maintenance register `op` (DCIMVAC, DCCMVAC...), when the D-cache is on. */
static inline void cm7_dcache_range_op(volatile uint32_t *op, uint32_t addr, uint32_t len)
{
    if ((SCB->CCR & SCB_CCR_DC) == 0u || len == 0u) {
        return;
    }
    SCB->CSSELR = SCB_CSSELR_L1_DATA;
    cm7_dsb();
    uint32_t line = 1u << ((SCB->CCSIDR & SCB_CCSIDR_LINESIZE_Msk) + 4u);
    uint32_t end = addr + len;
    for (uint32_t a = addr & ~(line - 1u); a < end && a >= (addr & ~(line - 1u)); a += line) {
        *op = a;
    }
    cm7_dsb();
    cm7_isb();
}

/* Invalidate the D-cache lines covering [addr, addr+len): memory that changed behind the core
 * (e.g. the QSPI window after a program) must be read afresh. Only for read-only memory: dirty
 * lines in the range would be lost. */
static inline void cm7_dcache_invalidate_range(uint32_t addr, uint32_t len)
{
    cm7_dcache_range_op(&SCB->DCIMVAC, addr, len);
}

/* Clean (write back) the D-cache lines covering [addr, addr+len): a DMA master reading that
 * memory must see what the core wrote. */
static inline void cm7_dcache_clean_range(uint32_t addr, uint32_t len)
{
    cm7_dcache_range_op(&SCB->DCCMVAC, addr, len);
}

static inline void cm7_dcache_disable(void)
{
    SCB->CCR &= ~SCB_CCR_DC;
    cm7_dsb();
    cm7_dcache_clean_invalidate_all();
}

#endif /* CM7_CORE_H */
