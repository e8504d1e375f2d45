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
static uint32_t s_tick_cycles = 1u; /* counts per tick: RVR + 1 */
/* Ticks the running SysTick period spans while systick_sleep has stretched it (0: one tick). */
static volatile uint32_t s_stretch_ticks;
/* The last systick_sleep was ended by the tick: the core is idle, stretch the next one. */
static uint8_t s_idle;

static void count_ticks(uint32_t n)
{
    s_ticks += n;
    s_ms_accum += MS_PER_SECOND * n;
    while (s_ms_accum >= s_tick_hz) {
        s_ms_accum -= s_tick_hz;
        s_ms++;
    }
}

#define SYSTICK_CSR_STOPPED (SYSTICK_CSR_CLKSOURCE | SYSTICK_CSR_TICKINT)
#define SYSTICK_CSR_RUNNING (SYSTICK_CSR_CLKSOURCE | SYSTICK_CSR_TICKINT | SYSTICK_CSR_ENABLE)
#define SYSTICK_MIN_PERIOD 2u /* RVR 0 would stop the counter */
#define SYSTICK_SLEEP_MIN_TICKS 2u

/* Stop the counter, start a period of `cycles` counts from now. RVR is only ever written with the
 * counter stopped, so the value it counts from is never in doubt. */
static void start_period(uint32_t cycles)
{
    SYSTICK->CSR = SYSTICK_CSR_STOPPED;
    SYSTICK->RVR = cycles - 1u;
    SYSTICK->CVR = 0u; /* clears the counter: it loads RVR on the next count */
    SYSTICK->CSR = SYSTICK_CSR_RUNNING;
}

void SysTick_Handler(void)
{
    uint32_t n = s_stretch_ticks;
    if (n != 0u) {
        /* The end of a period systick_sleep stretched (or of the partial tick it left): back to
         * one tick per period, from now. */
        s_stretch_ticks = 0u;
        start_period(s_tick_cycles);
    } else {
        n = 1u;
    }
    count_ticks(n);
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
    s_tick_cycles = reload;
    s_stretch_ticks = 0u;
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
    uint32_t basepri = cm7_get_basepri() & prio_mask;
    uint32_t exc = cm7_get_ipsr() & SCB_ICSR_VECTACTIVE_Msk;
    if (basepri == 0u && exc == 0u) {
        return 1; /* thread mode, nothing masked: no priority to compare (saves the SHPR read) */
    }
    uint32_t tick_prio = SCB->SHPR[SCB_SHPR_INDEX(EXC_SYSTICK)] & prio_mask;
    if (basepri != 0u && tick_prio >= basepri) {
        return 0;
    }
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

void systick_sleep(uint32_t max_ms, int (*still_idle)(void))
{
    uint32_t ticks = max_ms; /* stretching is only done at 1 kHz: one tick per ms */
    uint32_t fit = (SYSTICK_RVR_MAX + 1u) / s_tick_cycles;
    if (ticks > fit) {
        ticks = fit;
    }
    if (!s_idle || ticks < SYSTICK_SLEEP_MIN_TICKS || s_tick_hz != MS_PER_SECOND || systick_hook != 0) {
        /* Busy lately: an ordinary sleep, as systick_idle (the running tick bounds it, also when
         * an interrupt after the caller's check already did the work); if the tick ends it, the
         * core is idle. */
        uint32_t before = s_ticks;
        cm7_dsb();
        cm7_wfi();
        s_idle = s_ticks != before;
        return;
    }
    /* Tickless idle: one SysTick period up to the end of the `ticks`-th tick from now. Interrupts
     * are masked from the last look at the caller's condition to the WFI, which a pending
     * interrupt still ends. */
    uint32_t primask = cm7_irq_save();
    if (!still_idle()) {
        cm7_irq_restore(primask);
        return;
    }
    SYSTICK->CSR = SYSTICK_CSR_STOPPED; /* hold the count while it is reprogrammed */
    uint32_t left = SYSTICK->CVR;       /* counts to the end of the current tick */
    if (left == 0u || (SCB->ICSR & SCB_ICSR_PENDSTSET) != 0u) {
        SYSTICK->CSR = SYSTICK_CSR_RUNNING; /* a tick is due: count it the ordinary way */
        cm7_irq_restore(primask);
        return;
    }
    uint32_t period = left + (ticks - 1u) * s_tick_cycles;
    s_stretch_ticks = ticks;
    start_period(period);
    cm7_dsb();
    cm7_wfi();
    cm7_irq_restore(primask); /* the waking handler runs now (the stretched tick's counts itself) */

    primask = cm7_irq_save();
    if (s_stretch_ticks == 0u) {
        s_idle = 1u; /* the stretched tick ended the sleep */
    } else {
        s_idle = 0u;
        SYSTICK->CSR = SYSTICK_CSR_STOPPED;
        if ((SCB->ICSR & SCB_ICSR_PENDSTSET) != 0u) {
            SYSTICK->CSR = SYSTICK_CSR_RUNNING; /* it just ended: the handler counts it on unmask */
        } else {
            /* Woken early: count the whole ticks that passed since the start of the tick that was
             * running when the sleep began; the rest of the current one becomes a 1-tick period
             * (the handler restores the normal period at its end). */
            uint32_t since = period - SYSTICK->CVR + (s_tick_cycles - left);
            uint32_t to_next = s_tick_cycles - since % s_tick_cycles;
            count_ticks(since / s_tick_cycles);
            s_stretch_ticks = 1u;
            start_period(to_next < SYSTICK_MIN_PERIOD ? SYSTICK_MIN_PERIOD : to_next);
        }
    }
    cm7_irq_restore(primask);
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

uint32_t deadline_remaining_ms(const deadline_t *d)
{
    uint32_t used = s_ms - d->start_ms;
    return used < d->timeout_ms ? d->timeout_ms - used + 1u : 1u;
}
