/*
 * exc_test: Cortex-M7 exception behaviour the engine must reproduce. Each test prints one line
 *   TEST <name> PASS|FAIL <details>
 * and the run ends with a deliberate bus fault (read of 0x9000_0000 with QUADSPI disabled) whose
 * HardFault handler prints
 *   HARDFAULT CFSR=%08x HFSR=%08x BFAR=%08x
 *   HARDFAULT PC=%08x LR=%08x
 *   TEST bad_access PASS|FAIL <details>
 *   EXC_TEST DONE
 * and stops (SysTick off, WFI loop). An unexpected fault earlier prints the same HARDFAULT lines,
 * "TEST unexpected_fault FAIL" and EXC_TEST DONE.
 *
 * Software-pended IRQs (NVIC STIR) are IRQ 10..17: on the H743 they belong to peripherals this
 * image never enables, so only the test pends them.
 */
#include <stdint.h>

#include "board.h"
#include "clock.h"
#include "cm7_core.h"
#include "qspi.h"
#include "stm32h743.h"
#include "systick.h"
#include "uart.h"
#include "w25q64.h"

#define BAUD 115200u
#define TICK_HZ 1000u
#define FP_TICK_HZ 10000u       /* SysTick rate during the FP context test */
#define FP_ITERATIONS 100000u   /* about 50 SysTick interrupts at 10 kHz */
#define FP_MIN_ISR_RUNS 10u
#define SVC_TEST_NUMBER 42
#define SVC_ARG0 5u
#define SVC_ARG1 7u
#define VTOR_ALT_BASE 0x08020000u

#define IRQ_NEST_LOW 10u
#define IRQ_NEST_HIGH 11u
#define IRQ_TAIL_A 12u
#define IRQ_TAIL_B 13u
#define IRQ_MASK_LOW 14u
#define IRQ_MASK_HIGH 15u
#define IRQ_VTOR_ALT 16u
#define IRQ_VTOR_QSPI 17u

#define PRIO_HIGH 4u   /* NVIC priority levels (0 = highest, 15 = lowest) */
#define PRIO_MID 8u
#define PRIO_LOW 12u

#define FPSCR_RMODE_Pos 22u
#define FPSCR_RMODE_Msk (3u << FPSCR_RMODE_Pos)
#define FPSCR_RMODE_RZ 3u

typedef void (*vector_t)(void);

extern uint32_t _estack;
void Reset_Handler(void);
void Default_Handler(void);
void NMI_Handler(void);
void HardFault_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);
void SVC_Handler(void);
void DebugMon_Handler(void);
void PendSV_Handler(void);
void SysTick_Handler(void);
void IRQ10_Handler(void);
void IRQ11_Handler(void);
void IRQ12_Handler(void);
void IRQ13_Handler(void);
void IRQ14_Handler(void);
void IRQ15_Handler(void);
void IRQ16_Handler(void);
void IRQ17_Handler(void);
void vtor_alt_irq_handler(void);
void vtor_qspi_irq_handler(void);

/* ---- event log shared by handlers ------------------------------------------------------- */
#define LOG_MAX 16u
static volatile char s_log[LOG_MAX + 1u];
static volatile uint32_t s_log_len;

static void log_reset(void)
{
    s_log_len = 0u;
    for (uint32_t i = 0; i <= LOG_MAX; i++) {
        s_log[i] = '\0';
    }
}

static void log_event(char ev)
{
    if (s_log_len < LOG_MAX) {
        s_log[s_log_len++] = ev;
    }
}

static int log_is(const char *want)
{
    uint32_t i = 0;
    for (; want[i] != '\0'; i++) {
        if (i >= s_log_len || s_log[i] != want[i]) {
            return 0;
        }
    }
    return i == s_log_len;
}

static const char *log_str(void)
{
    static char copy[LOG_MAX + 1u];
    uint32_t n = s_log_len;
    for (uint32_t i = 0; i < n; i++) {
        copy[i] = s_log[i];
    }
    copy[n] = '\0';
    return n ? copy : "-";
}

static void pend(uint32_t irq)
{
    NVIC->STIR = irq;
    cm7_dsb();
    cm7_isb();
}

static void irq_setup(uint32_t irq, uint32_t level)
{
    nvic_disable_irq(irq);
    nvic_clear_pending(irq);
    nvic_set_priority(irq, level);
    nvic_enable_irq(irq);
}

static void report(const char *name, int pass, const char *fmt_details)
{
    uart_printf("TEST %s %s %s\n", name, pass ? "PASS" : "FAIL", fmt_details);
}

/* ---- SVC -------------------------------------------------------------------------------- */
static volatile uint32_t s_svc_number;
static volatile uint32_t s_svc_count;

/* Stacked frame: r0 r1 r2 r3 r12 lr pc xpsr (the FP part of an extended frame follows). */
__attribute__((used)) void svc_dispatch(uint32_t *frame)
{
    const uint16_t *pc = (const uint16_t *)frame[6];
    s_svc_number = pc[-1] & 0xFFu; /* SVC #imm8: low byte of the instruction before the return PC */
    s_svc_count++;
    frame[0] = frame[0] + frame[1]; /* return value in the stacked r0 */
}

__attribute__((naked)) void SVC_Handler(void)
{
    __asm volatile("tst lr, #4\n\t"
                   "ite eq\n\t"
                   "mrseq r0, msp\n\t"
                   "mrsne r0, psp\n\t"
                   "b svc_dispatch\n\t");
}

static void test_svc(void)
{
    s_svc_count = 0u;
    s_svc_number = 0u;
    register uint32_t r0 __asm("r0") = SVC_ARG0;
    register uint32_t r1 __asm("r1") = SVC_ARG1;
    __asm volatile("svc %[n]" : "+r"(r0) : "r"(r1), [n] "I"(SVC_TEST_NUMBER) : "memory");
    uint32_t result = r0;
    int pass = s_svc_count == 1u && s_svc_number == (uint32_t)SVC_TEST_NUMBER && result == SVC_ARG0 + SVC_ARG1;
    uart_printf("TEST svc %s number=%u calls=%u r0=%u (want number=%u calls=1 r0=%u)\n", pass ? "PASS" : "FAIL",
                s_svc_number, s_svc_count, result, (uint32_t)SVC_TEST_NUMBER, SVC_ARG0 + SVC_ARG1);
}

/* ---- PRIMASK / BASEPRI ------------------------------------------------------------------ */
static volatile uint32_t s_count14;
static volatile uint32_t s_count15;

void IRQ14_Handler(void) { s_count14++; }
void IRQ15_Handler(void) { s_count15++; }

static void test_primask(void)
{
    s_count14 = 0u;
    irq_setup(IRQ_MASK_LOW, PRIO_MID);
    cm7_irq_disable();
    pend(IRQ_MASK_LOW);
    cm7_nop();
    cm7_nop();
    uint32_t while_masked = s_count14;
    int pending = nvic_is_pending(IRQ_MASK_LOW);
    cm7_irq_enable();
    cm7_isb();
    uint32_t after = s_count14;
    int pass = while_masked == 0u && pending && after == 1u;
    uart_printf("TEST primask %s masked_runs=%u pending=%d after_cpsie=%u\n", pass ? "PASS" : "FAIL",
                while_masked, pending, after);
}

static void test_basepri(void)
{
    s_count14 = 0u;
    s_count15 = 0u;
    irq_setup(IRQ_MASK_LOW, PRIO_MID);
    irq_setup(IRQ_MASK_HIGH, PRIO_HIGH);
    cm7_set_basepri(NVIC_PRIO(PRIO_MID)); /* masks priority levels >= PRIO_MID */
    cm7_isb();
    pend(IRQ_MASK_LOW);
    uint32_t low_masked = s_count14;
    int low_pending = nvic_is_pending(IRQ_MASK_LOW);
    pend(IRQ_MASK_HIGH);
    uint32_t high_taken = s_count15;
    cm7_set_basepri(0u);
    cm7_isb();
    uint32_t low_after = s_count14;
    int pass = low_masked == 0u && low_pending && high_taken == 1u && low_after == 1u;
    uart_printf("TEST basepri %s low_masked_runs=%u low_pending=%d high_runs=%u low_after_unmask=%u\n",
                pass ? "PASS" : "FAIL", low_masked, low_pending, high_taken, low_after);
}

/* ---- nested pre-emption ------------------------------------------------------------------ */
static volatile uint32_t s_low_active_seen;
static volatile uint32_t s_high_ipsr;

void IRQ10_Handler(void)
{
    log_event('L');
    pend(IRQ_NEST_HIGH); /* higher priority: must pre-empt right here */
    log_event('l');
}

void IRQ11_Handler(void)
{
    log_event('H');
    s_low_active_seen = (uint32_t)nvic_is_active(IRQ_NEST_LOW);
    s_high_ipsr = cm7_get_ipsr();
}

static void test_nested(void)
{
    log_reset();
    s_low_active_seen = 0u;
    s_high_ipsr = 0u;
    irq_setup(IRQ_NEST_LOW, PRIO_LOW);
    irq_setup(IRQ_NEST_HIGH, PRIO_HIGH);
    pend(IRQ_NEST_LOW);
    int pass = log_is("LHl") && s_low_active_seen == 1u && s_high_ipsr == EXC_IRQ0 + IRQ_NEST_HIGH;
    uart_printf("TEST nested_preemption %s order=%s (want LHl) low_active_in_high=%u ipsr_in_high=%u\n",
                pass ? "PASS" : "FAIL", log_str(), s_low_active_seen, s_high_ipsr);
}

/* ---- tail-chaining ----------------------------------------------------------------------- */
static volatile uint32_t s_thread_marker;
static volatile uint32_t s_marker_in_a;
static volatile uint32_t s_marker_in_b;

void IRQ12_Handler(void)
{
    log_event('A');
    s_marker_in_a = s_thread_marker;
}

void IRQ13_Handler(void)
{
    log_event('B');
    s_marker_in_b = s_thread_marker;
}

static void test_tail_chain(void)
{
    log_reset();
    s_thread_marker = 0u;
    s_marker_in_a = 0xFFu;
    s_marker_in_b = 0xFFu;
    irq_setup(IRQ_TAIL_A, PRIO_MID);
    irq_setup(IRQ_TAIL_B, PRIO_MID);
    cm7_irq_disable();
    pend(IRQ_TAIL_B);
    pend(IRQ_TAIL_A);
    /* Both pending, same priority: the lower IRQ number first, then the other without running
     * a single thread instruction in between (the marker store below must come after both). */
    cm7_irq_enable();
    cm7_isb();
    s_thread_marker = 1u;
    int pass = log_is("AB") && s_marker_in_a == 0u && s_marker_in_b == 0u;
    const char *why = pass ? "" : (s_marker_in_a == 1u ? " (taken late: thread ran after cpsie+isb)"
                                  : s_marker_in_b == 1u ? " (returned to thread between A and B)" : "");
    uart_printf("TEST tail_chain %s order=%s (want AB) marker_in_a=%u marker_in_b=%u%s\n", pass ? "PASS" : "FAIL",
                log_str(), s_marker_in_a, s_marker_in_b, why);
}

/* ---- FP context across an FP-using ISR ---------------------------------------------------- */
static volatile uint32_t s_fp_isr_runs;
static volatile double s_isr_sink = 1.0;
static const double s_garbage[8] = {-1.5e300, 3.25, -7.0e-300, 42.0, 1.0e10, -0.125, 9.9e99, -2.0};

static void fp_isr_work(void)
{
    /* Overwrite every caller-saved FP register and the rounding mode; only a correct extended
     * frame (s0-s15 + FPSCR) restores what the interrupted code had there. */
    __asm volatile("vldmia %0, {d0-d7}" ::"r"(s_garbage) : "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7",
                   "memory");
    uint32_t fpscr;
    __asm volatile("vmrs %0, fpscr" : "=r"(fpscr));
    fpscr = (fpscr & ~FPSCR_RMODE_Msk) | (FPSCR_RMODE_RZ << FPSCR_RMODE_Pos);
    __asm volatile("vmsr fpscr, %0" ::"r"(fpscr) : "memory");
    double x = s_isr_sink;
    for (int i = 0; i < 4; i++) {
        x = x * 1.5 + 0.25;
        if (x > 1.0e6) {
            x = 1.0;
        }
    }
    s_isr_sink = x;
    s_fp_isr_runs++;
}

/* A computation that keeps many FP values live in registers for a long time. */
__attribute__((noipa)) static double fp_workload(uint32_t n, double seed)
{
    double a = seed, b = 0.5, c = 1.0;
    float f = 1.0f, g = 0.25f;
    for (uint32_t i = 0; i < n; i++) {
        a = a * 1.0000001 + b;
        b = b * 0.9999993 - 1.0e-7 * a;
        c = c + a * 1.0e-9 - b * 3.0e-9;
        f = f * 1.0001f + g;
        g = g * 0.9999f + 1.0e-6f;
        if (a > 1.0e6) {
            a = a * 1.0e-6;
        }
        if (f > 1.0e4f) {
            f = f * 1.0e-4f;
        }
    }
    return a + b + c + (double)f + (double)g;
}

typedef union {
    double d;
    uint32_t w[2];
} double_bits_t;

static void test_fp_context(void)
{
    static volatile uint32_t iterations = FP_ITERATIONS;
    static volatile double seed = 0.75;

    uint32_t primask = cm7_irq_save();
    double_bits_t ref = {.d = fp_workload(iterations, seed)};
    cm7_irq_restore(primask);

    s_fp_isr_runs = 0u;
    systick_hook = fp_isr_work;
    systick_init(clock_core_hz(), FP_TICK_HZ);
    double_bits_t got = {.d = fp_workload(iterations, seed)};
    uint32_t runs = s_fp_isr_runs;
    systick_init(clock_core_hz(), TICK_HZ);
    systick_hook = 0;

    int pass = got.w[0] == ref.w[0] && got.w[1] == ref.w[1] && runs >= FP_MIN_ISR_RUNS;
    uart_printf("TEST fp_context %s ref=%08x%08x irq=%08x%08x isr_runs=%u (min %u)\n", pass ? "PASS" : "FAIL",
                ref.w[1], ref.w[0], got.w[1], got.w[0], runs, FP_MIN_ISR_RUNS);
}

/* ---- VTOR relocation ----------------------------------------------------------------------- */
#define HIT_NONE 0u
#define HIT_MAIN 1u
#define HIT_ALT 2u
#define HIT_QSPI 3u
static volatile uint32_t s_vtor_hit;

void IRQ16_Handler(void) { s_vtor_hit = HIT_MAIN; }
void IRQ17_Handler(void) { s_vtor_hit = HIT_MAIN; }
void vtor_alt_irq_handler(void) { s_vtor_hit = HIT_ALT; }
void vtor_qspi_irq_handler(void) { s_vtor_hit = HIT_QSPI; }

/* A complete table (every exception still works while it is active) that differs from the main
 * one in a single IRQ entry. */
#define RELOCATED_TABLE(irq, handler)                                                              \
    {                                                                                              \
        [0] = (vector_t)&_estack, [1] = Reset_Handler, [2] = NMI_Handler, [3] = HardFault_Handler, \
        [4] = MemManage_Handler, [5] = BusFault_Handler, [6] = UsageFault_Handler,                 \
        [11] = SVC_Handler, [12] = DebugMon_Handler, [14] = PendSV_Handler,                        \
        [15] = SysTick_Handler, [EXC_IRQ0 ... VECTOR_COUNT - 1u] = Default_Handler,                \
        [EXC_IRQ0 + (irq)] = (handler),                                                            \
    }

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
__attribute__((section(".vectors_alt"), used)) const vector_t g_vectors_alt[VECTOR_COUNT] =
    RELOCATED_TABLE(IRQ_VTOR_ALT, vtor_alt_irq_handler);
__attribute__((section(".vectors_qspi"), used)) const vector_t g_vectors_qspi[VECTOR_COUNT] =
    RELOCATED_TABLE(IRQ_VTOR_QSPI, vtor_qspi_irq_handler);
#pragma GCC diagnostic pop

/* Pend irq with VTOR = table; returns which handler ran. VTOR is restored afterwards. */
static uint32_t run_with_vtor(uint32_t table, uint32_t irq, uint32_t *vtor_read)
{
    uint32_t old = SCB->VTOR;
    s_vtor_hit = HIT_NONE;
    irq_setup(irq, PRIO_MID);
    SCB->VTOR = table;
    cm7_dsb();
    cm7_isb();
    *vtor_read = SCB->VTOR;
    pend(irq);
    SCB->VTOR = old;
    cm7_dsb();
    cm7_isb();
    return s_vtor_hit;
}

static void test_vtor_internal(void)
{
    uint32_t vtor_read = 0u;
    uint32_t hit_alt = run_with_vtor(VTOR_ALT_BASE, IRQ_VTOR_ALT, &vtor_read);
    uint32_t dummy;
    uint32_t hit_main = run_with_vtor(SCB->VTOR, IRQ_VTOR_ALT, &dummy);
    int pass = hit_alt == HIT_ALT && hit_main == HIT_MAIN && vtor_read == VTOR_ALT_BASE;
    uart_printf("TEST vtor_internal %s vtor=%08x handler=%u after_restore=%u (want %u then %u)\n",
                pass ? "PASS" : "FAIL", vtor_read, hit_alt, hit_main, HIT_ALT, HIT_MAIN);
}

static void test_vtor_qspi(void)
{
    int rc = w25q_init();
    if (rc == W25Q_OK) {
        rc = w25q_memory_mapped();
    }
    if (rc != W25Q_OK) {
        uart_printf("TEST vtor_qspi FAIL w25q setup error %d\n", rc);
        return;
    }
    const volatile uint32_t *table = (const volatile uint32_t *)QSPI_MEM_BASE;
    uint32_t word0 = table[0];
    uint32_t entry = table[EXC_IRQ0 + IRQ_VTOR_QSPI];
    if (word0 != (uint32_t)&_estack || entry != (uint32_t)vtor_qspi_irq_handler) {
        uart_printf("TEST vtor_qspi FAIL table not in W25Q64: word0=%08x irq%u=%08x (want %08x %08x)\n", word0,
                    IRQ_VTOR_QSPI, entry, (uint32_t)&_estack, (uint32_t)vtor_qspi_irq_handler);
        return;
    }
    uint32_t vtor_read = 0u;
    uint32_t hit = run_with_vtor(QSPI_MEM_BASE, IRQ_VTOR_QSPI, &vtor_read);
    int pass = hit == HIT_QSPI && vtor_read == QSPI_MEM_BASE;
    uart_printf("TEST vtor_qspi %s vtor=%08x handler=%u (want %u)\n", pass ? "PASS" : "FAIL", vtor_read, hit,
                HIT_QSPI);
}

/* ---- deliberate bus fault ---------------------------------------------------------------------- */
static volatile uint32_t s_expect_fault;

__attribute__((used)) void hardfault_report(const uint32_t *frame)
{
    uint32_t cfsr = SCB->CFSR;
    uint32_t hfsr = SCB->HFSR;
    uint32_t bfar = SCB->BFAR;
    uart_printf("HARDFAULT CFSR=%08x HFSR=%08x BFAR=%08x\n", cfsr, hfsr, bfar);
    uart_printf("HARDFAULT PC=%08x LR=%08x\n", frame[6], frame[5]);
    if (s_expect_fault) {
        uint32_t want_cfsr = SCB_CFSR_PRECISERR | SCB_CFSR_BFARVALID;
        int pass = (cfsr & want_cfsr) == want_cfsr && (hfsr & SCB_HFSR_FORCED) != 0u && bfar == QSPI_MEM_BASE;
        uart_printf("TEST bad_access %s precise bus fault escalated to HardFault at %08x (want CFSR bits %08x, "
                    "HFSR.FORCED, BFAR=%08x)\n",
                    pass ? "PASS" : "FAIL", bfar, want_cfsr, QSPI_MEM_BASE);
    } else {
        uart_puts("TEST unexpected_fault FAIL\n");
    }
    uart_puts("EXC_TEST DONE\n");
    systick_stop();
    for (;;) {
        cm7_wfi();
    }
}

__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile("tst lr, #4\n\t"
                   "ite eq\n\t"
                   "mrseq r0, msp\n\t"
                   "mrsne r0, psp\n\t"
                   "b hardfault_report\n\t");
}

static void test_bad_access(void)
{
    (void)qspi_abort();
    QUADSPI->CR &= ~QUADSPI_CR_EN;
    cm7_dsb();
    cm7_isb();
    uart_printf("bad access: reading 0x%08x with QUADSPI disabled\n", QSPI_MEM_BASE);
    s_expect_fault = 1u;
    (void)*(const volatile uint32_t *)QSPI_MEM_BASE;
    s_expect_fault = 0u;
    report("bad_access", 0, "no fault on a read of the disabled QSPI window");
    uart_puts("EXC_TEST DONE\n");
}

int main(void)
{
    clock_init();
    board_init_gpio();
    uart_init(BAUD);
    systick_init(clock_core_hz(), TICK_HZ);
    uart_puts("EXC_TEST start\n");

    test_svc();
    test_primask();
    test_basepri();
    test_nested();
    test_tail_chain();
    test_fp_context();
    test_vtor_internal();
    test_vtor_qspi();
    test_bad_access();

    systick_stop();
    for (;;) {
        cm7_wfi();
    }
}
