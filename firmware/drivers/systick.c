#include "systick.h"

#include "clock.h"
#include "cm7_core.h"
#include "stm32h743.h"

/* The spin backstop counts polling iterations; one iteration takes at least a few core cycles, so
 * this many per ms never expires before the real timeout at <= 400 MHz. */
#define DEADLINE_SPINS_PER_MS 100000u
#define SYSTICK_PRIORITY_LEVEL 0u
#define MS_PER_SECOND 1000u

void (*volatile systick_hook)(void);

static volatile uint32_t s_ticks;
static volatile uint32_t s_ms;
static uint32_t s_ms_accum;   /* fixed-point remainder: += 1000 per tick, ms++ per tick_hz */
static uint32_t s_tick_hz = MS_PER_SECOND;

void SysTick_Handler(void)
{
    s_ticks++;
    s_ms_accum += MS_PER_SECOND;
    while (s_ms_accum >= s_tick_hz) {
        s_ms_accum -= s_tick_hz;
        s_ms++;
    }
    void (*hook)(void) = systick_hook;
    if (hook != 0) {
        hook();
    }
}

void systick_init(uint32_t core_hz, uint32_t tick_hz)
{
    if (tick_hz == 0u) {
        tick_hz = MS_PER_SECOND;
    }
    uint32_t reload = core_hz / tick_hz;
    if (reload == 0u) {
        reload = 1u;
    }
    if (reload - 1u > SYSTICK_RVR_MAX) {
        reload = SYSTICK_RVR_MAX + 1u;
    }
    SYSTICK->CSR = 0u;
    s_tick_hz = tick_hz;
    s_ms_accum = 0u;
    SCB->SHPR[SCB_SHPR_INDEX(EXC_SYSTICK)] = NVIC_PRIO(SYSTICK_PRIORITY_LEVEL);
    SYSTICK->RVR = reload - 1u;
    SYSTICK->CVR = 0u;
    SYSTICK->CSR = SYSTICK_CSR_CLKSOURCE | SYSTICK_CSR_TICKINT | SYSTICK_CSR_ENABLE;
}

uint32_t systick_ms(void) { return s_ms; }

uint32_t systick_ticks(void) { return s_ticks; }

void systick_stop(void)
{
    SYSTICK->CSR = 0u;
    SCB->ICSR = SCB_ICSR_PENDSTCLR;
    cm7_dsb();
    cm7_isb();
}

static int systick_running(void)
{
    uint32_t want = SYSTICK_CSR_ENABLE | SYSTICK_CSR_TICKINT;
    return (SYSTICK->CSR & want) == want;
}

int systick_can_wake(void)
{
    if (!systick_running() || (cm7_get_primask() & 1u) != 0u) {
        return 0;
    }
    uint32_t prio_mask = NVIC_PRIO(0xFu);
    uint32_t tick_prio = SCB->SHPR[SCB_SHPR_INDEX(EXC_SYSTICK)] & prio_mask;
    uint32_t basepri = cm7_get_basepri() & prio_mask;
    if (basepri != 0u && tick_prio >= basepri) {
        return 0;
    }
    uint32_t exc = cm7_get_ipsr() & SCB_ICSR_VECTACTIVE_Msk;
    if (exc == 0u) {
        return 1; /* thread mode */
    }
    uint32_t cur;
    if (exc >= EXC_IRQ0) {
        cur = NVIC->IP[exc - EXC_IRQ0] & prio_mask;
    } else if (exc >= EXC_MEMMANAGE && exc != EXC_SYSTICK) {
        cur = SCB->SHPR[SCB_SHPR_INDEX(exc)] & prio_mask;
    } else {
        return 0; /* NMI, HardFault (fixed negative priority) or SysTick itself */
    }
    /* The running handler has the highest priority of all active ones (PRIGROUP 0: all bits are
     * group priority), so SysTick pre-empts exactly when its priority is numerically lower. */
    return tick_prio < cur;
}

void systick_idle(void)
{
    if (systick_can_wake()) {
        cm7_wfi();
    }
}

void delay_ms(uint32_t ms)
{
    if (systick_can_wake()) {
        uint32_t start = s_ms;
        while ((uint32_t)(s_ms - start) < ms) {
            cm7_wfi();
        }
        return;
    }
    /* No tick: busy-wait an estimated number of core cycles (about 4 cycles per iteration). */
    uint32_t per_ms = clock_core_hz() / MS_PER_SECOND / 4u;
    for (uint32_t i = 0; i < ms; i++) {
        for (volatile uint32_t n = 0; n < per_ms; n++) {
        }
    }
}

void deadline_start(deadline_t *d, uint32_t timeout_ms)
{
    d->start_ms = s_ms;
    d->timeout_ms = timeout_ms;
    d->spins = 0u;
    d->spin_limit = ((uint64_t)timeout_ms + 1u) * DEADLINE_SPINS_PER_MS;
    d->mode = 0u;
}

int deadline_expired(deadline_t *d)
{
    /* Strictly more than timeout_ms whole ticks: a tick may land right after the start. */
    if ((uint32_t)(s_ms - d->start_ms) > d->timeout_ms) {
        return 1;
    }
    if (d->mode == 0u) {
        d->mode = systick_can_wake() ? 1u : 2u;
    }
    if (d->mode == 1u) {
        return 0;
    }
    d->spins++;
    return d->spins > d->spin_limit;
}
