/*
 * SysTick time base: a millisecond counter driven by the SysTick interrupt (any tick rate), plus
 * the timeout helpers every driver uses.
 */
#ifndef SYSTICK_H
#define SYSTICK_H

#include <stdint.h>

/* Called from SysTick_Handler on every tick when non-null (after the counter update). */
extern void (*volatile systick_hook)(void);

/* Start SysTick on the processor clock (core_hz, see clock_core_hz()) at tick_hz, interrupt at
 * the highest priority (0) so timeouts run inside any other handler. The ms counter keeps its
 * value across re-initialisation. */
void systick_init(uint32_t core_hz, uint32_t tick_hz);
/* Milliseconds counted since the first systick_init (wraps after ~49 days). */
uint32_t systick_ms(void);
/* Ticks since the first systick_init. */
uint32_t systick_ticks(void);
/* Wait ms milliseconds; sleeps with WFI when the SysTick interrupt can wake us (see below),
 * otherwise busy-waits (also when SysTick is stopped: then the wait is estimated from the core
 * clock). */
void delay_ms(uint32_t ms);
/* Stop SysTick and clear a pending SysTick exception. */
void systick_stop(void);
/* 1 when the SysTick interrupt is running and would pre-empt the current context (PRIMASK clear,
 * BASEPRI and the active exception's priority lower than SysTick's): WFI then wakes within a tick. */
int systick_can_wake(void);
/* WFI when systick_can_wake(), else return at once: for long polling loops. */
void systick_idle(void);
/* Sleep until an interrupt, for idle waits in thread mode with interrupts enabled (the caller
 * checks systick_can_wake() once) that loop on their own condition (it may return early).
 * Ordinarily a WFI (the running tick ends it). Tickless idle: once a sleep has been ended by the tick (nothing else going
 * on), the next one re-checks still_idle() with interrupts masked, programs SysTick for a single
 * period up to max_ms ticks (bounded by the 24-bit reload) and sleeps in WFI; woken earlier, it
 * counts the whole ticks that passed from the counter and resumes the tick in phase, so
 * systick_ms() stays exact (a stretched period that runs out restarts the 1-tick period from its
 * handler: the entry latency, a few dozen cycles, is the only drift). During such a sleep, interrupt handlers see systick_ms() stand still. */
void systick_sleep(uint32_t max_ms, int (*still_idle)(void));

/* Timeout helper: expires after timeout_ms on the SysTick clock; when the ms counter cannot move
 * (SysTick stopped or masked) a spin count backstop expires it instead, so no wait is endless. */
typedef struct {
    uint32_t start_ms;
    uint32_t timeout_ms;
    uint64_t spins;
    uint64_t spin_limit;
    uint32_t mode; /* 0 unknown, 1 the tick ends the wait, 2 spin backstop */
} deadline_t;
void deadline_start(deadline_t *d, uint32_t timeout_ms);
/* Call once per polling iteration; returns 1 once the deadline has passed. */
int deadline_expired(deadline_t *d);
/* Whole ms left before deadline_expired(d) can return 1 (at least 1). */
uint32_t deadline_remaining_ms(const deadline_t *d);

#endif /* SYSTICK_H */
