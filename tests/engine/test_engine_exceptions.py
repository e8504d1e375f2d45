"""Exception entry/return: preemption, tail-chaining, masking, SVC, FP frames, PendSV, NMI."""

from __future__ import annotations

import struct

RESULTS = 0x20000000
LOG = 0x20000100  # handlers append words here; the next free slot pointer lives at LOG-4

# append r0 to the log (clobbers r1, r2)
LOG_HELPER = """
log_r0:
  ldr r1, =0x200000fc
  ldr r2, [r1]
  str r0, [r2], #4
  str r2, [r1]
  bx lr
init_log:
  ldr r1, =0x200000fc
  ldr r2, =0x20000100
  str r2, [r1]
  bx lr
"""


def log_words(m, count):
    return [m.read_u32(LOG + 4 * i) for i in range(count)]


NESTING_PROGRAM = (
    """
reset:
  bl init_log
  ldr r0, =0xE000E100
  movs r1, #0x3E              @ enable IRQ1..5
  str r1, [r0]
  ldr r0, =0xE000E400
  ldr r1, =0x40408040         @ IRQ0=0x40 IRQ1=0x80 IRQ2=0x40 IRQ3=0x40
  str r1, [r0]
  ldr r1, =0x00000080         @ IRQ4=0x80 (IRQ5..7 = 0)
  str r1, [r0, #4]
  ldr r6, =0xE000EF00         @ STIR
  movs r1, #1
  str r1, [r6]                @ IRQ1 (0x80) -> pends IRQ2 (0x40): nested preemption
  nop
  ldr r0, =0xAAAA
  bl log_r0
  movs r1, #2
  str r1, [r6]                @ IRQ2 (0x40) -> pends IRQ1 (0x80): runs after, tail-chained
  nop
  ldr r0, =0xBBBB
  bl log_r0
  cpsid i
  movs r1, #4
  str r1, [r6]                @ pend IRQ4 (0x80), IRQ5 (0x00), IRQ3 (0x40) while masked
  movs r1, #5
  str r1, [r6]
  movs r1, #3
  str r1, [r6]
  ldr r0, =0xCCCC
  bl log_r0
  movs r5, #0
  cpsie i                     @ all three run back to back: IRQ5, IRQ3, IRQ4
  adds r5, #1
  ldr r0, =0xDDDD
  bl log_r0
  b .
irq1:
  push {r4, lr}
  movs r0, #0x11
  bl log_r0
  ldr r6, =0xE000EF00
  movs r1, #2
  ldr r4, =0x20000000
  ldr r3, [r4]
  adds r3, #1
  str r3, [r4]                @ count IRQ1 runs
  cmp r3, #1
  bne 1f
  str r1, [r6]                @ first run: pend IRQ2 (higher priority)
  nop
1:
  movs r0, #0x1E
  bl log_r0
  pop {r4, pc}
irq2:
  push {r4, lr}
  movs r0, #0x21
  bl log_r0
  ldr r4, =0x20000004
  ldr r3, [r4]
  adds r3, #1
  str r3, [r4]
  cmp r3, #2
  bne 1f
  ldr r6, =0xE000EF00
  movs r1, #1
  str r1, [r6]                @ second run: pend IRQ1 (lower priority): must wait
  nop
1:
  movs r0, #0x2E
  bl log_r0
  pop {r4, pc}
irq_rec:
  push {r4, lr}
  mrs r0, ipsr
  bl log_r0
  mov r0, r5                  @ thread counter: unchanged between tail-chained handlers
  bl log_r0
  pop {r4, pc}
"""
    + LOG_HELPER
)


def test_nested_preemption_and_tail_chaining_order(build):
    m = build(NESTING_PROGRAM, irqs={1: "irq1", 2: "irq2", 3: "irq_rec", 4: "irq_rec", 5: "irq_rec"})
    m.run(max_instructions=3000)
    got = log_words(m, 18)
    assert got[:4] == [0x11, 0x21, 0x2E, 0x1E]  # IRQ2 nested inside IRQ1
    assert got[4] == 0xAAAA
    assert got[5:9] == [0x21, 0x2E, 0x11, 0x1E]  # IRQ1 only after IRQ2 returned
    assert got[9] == 0xBBBB
    assert got[10] == 0xCCCC
    # priority order (0x00, 0x40, 0x80); r5 == 0 in all: no thread instruction between them
    assert got[11:17] == [16 + 5, 0, 16 + 3, 0, 16 + 4, 0]
    assert got[17] == 0xDDDD


MASKING_PROGRAM = (
    """
reset:
  bl init_log
  ldr r0, =0xE000E100
  movs r1, #0xC0              @ enable IRQ6, IRQ7
  str r1, [r0]
  ldr r0, =0xE000E404
  ldr r1, =0x20400000         @ IRQ6 = 0x40, IRQ7 = 0x20
  str r1, [r0]
  movs r1, #0x40
  msr basepri, r1             @ blocks priorities >= 0x40
  ldr r6, =0xE000EF00
  movs r1, #6
  str r1, [r6]
  movs r1, #7
  str r1, [r6]                @ IRQ7 (0x20) preempts, IRQ6 stays pending
  nop
  ldr r0, =0xAAAA
  bl log_r0
  cpsid i
  movs r1, #0
  msr basepri, r1             @ IRQ6 now only blocked by PRIMASK
  ldr r0, =0xBBBB
  bl log_r0
  cpsie i
  nop
  ldr r0, =0xCCCC
  bl log_r0
  b .
irq_rec:
  push {r4, lr}
  mrs r0, ipsr
  bl log_r0
  pop {r4, pc}
"""
    + LOG_HELPER
)


def test_primask_and_basepri_mask_interrupts(build):
    m = build(MASKING_PROGRAM, irqs={6: "irq_rec", 7: "irq_rec"})
    m.run(max_instructions=3000)
    assert log_words(m, 5) == [16 + 7, 0xAAAA, 0xBBBB, 16 + 6, 0xCCCC]


SVC_PROGRAM = """
reset:
  movs r0, #1
  svc #42                     @ handler returns the SVC number + r0 in the stacked r0
  ldr r4, =0x20000000
  str r0, [r4, #0]
  ldr r1, =0x20008000
  msr psp, r1
  movs r1, #2
  msr control, r1             @ thread mode on the process stack
  isb
  movs r0, #2
  svc #7
  ldr r4, =0x20000000
  str r0, [r4, #4]
  mrs r1, psp
  str r1, [r4, #8]
  mrs r1, msp
  str r1, [r4, #12]
  b .
svc_handler:
  tst lr, #4
  ite eq
  mrseq r3, msp
  mrsne r3, psp
  ldr r1, [r3, #24]           @ stacked PC
  ldrb r1, [r1, #-2]          @ the SVC immediate
  and r0, r1, #0xF
  ldr r2, =0x20000040
  str lr, [r2, r0, lsl #2]    @ EXC_RETURN seen by this call
  ldr r2, [r3]                @ stacked r0
  add r1, r1, r2, lsl #8
  str r1, [r3]                @ becomes r0 after the return
  bx lr
"""


def test_svc_number_from_stacked_pc_and_process_stack(build):
    m = build(SVC_PROGRAM, handlers={"svc": "svc_handler"})
    m.run(max_instructions=500)
    assert m.read_u32(RESULTS + 0) == 42 + (1 << 8)
    assert m.read_u32(RESULTS + 4) == 7 + (2 << 8)
    assert m.read_u32(RESULTS + 8) == 0x20008000  # PSP balanced after the return
    assert m.read_u32(RESULTS + 12) == 0x20010000  # MSP untouched by the PSP-thread SVC
    assert m.read_u32(0x20000040 + 4 * (42 & 15)) == 0xFFFFFFF9  # thread, MSP, basic frame
    assert m.read_u32(0x20000040 + 4 * 7) == 0xFFFFFFFD  # thread, PSP


FP_PROGRAM = """
reset:
  ldr r0, =0xE000ED88          @ CPACR: enable CP10/CP11 like SystemInit does
  ldr r1, [r0]
  orr r1, r1, #0xF00000
  str r1, [r0]
  ldr r0, =0xE000E010
  ldr r1, =97
  str r1, [r0, #4]             @ SysTick every 98 cycles: lands in the middle of FP code
  movs r1, #0
  str r1, [r0, #8]
  movs r1, #7
  str r1, [r0]
  vmov.f64 d0, #1.0
  vmov.f64 d1, #0.5
  vmov.f64 d7, #0.25
  vmov.f32 s10, #2.0
  movs r4, #0
1:
  vadd.f64 d0, d0, d1
  vadd.f64 d0, d0, d7
  vmul.f32 s10, s10, s10
  vsqrt.f32 s10, s10
  adds r4, #1
  cmp r4, #2000
  bne 1b
  ldr r2, =0x20000000
  vstr d0, [r2]
  vstr s10, [r2, #8]
  vmrs r1, fpscr
  str r1, [r2, #12]
  ldr r1, =0x600D
  str r1, [r2, #16]
  b .
systick:
  ldr r2, =0x20000020
  str lr, [r2]                 @ EXC_RETURN seen by the handler
  vmov.f64 d0, #-2.0            @ clobber every caller-saved FP register
  vmov.f64 d1, #3.0
  vmov.f64 d2, #3.0
  vmov.f64 d3, #3.0
  vmov.f64 d4, #3.0
  vmov.f64 d5, #3.0
  vmov.f64 d6, #3.0
  vmov.f64 d7, #3.0
  vdiv.f64 d0, d0, d1
  vmrs r1, fpscr
  orr r1, r1, #0xF0000000
  vmsr fpscr, r1
  ldr r3, =0x20000024
  ldr r1, [r3]
  adds r1, #1
  str r1, [r3]
  bx lr
"""


def test_fp_extended_frame_preserves_interrupted_fp_state(build):
    m = build(FP_PROGRAM, handlers={"systick": "systick"})
    m.run(max_instructions=40_000)
    assert m.read_u32(RESULTS + 16) == 0x600D
    assert m.read_u32(0x20000024) > 50  # the handler ran many times during the loop
    assert m.read_u32(0x20000020) == 0xFFFFFFE9  # extended frame, thread, MSP
    (total,) = struct.unpack("<d", m.read_memory(RESULTS, 8))
    assert total == 1.0 + 2000 * 0.75
    (s10,) = struct.unpack("<f", m.read_memory(RESULTS + 8, 4))
    assert s10 == 2.0
    assert m.read_u32(RESULTS + 12) >> 28 == 0  # interrupted code's FPSCR flags restored


PENDSV_NMI_PROGRAM = (
    """
reset:
  bl init_log
  ldr r0, =0xE000ED20          @ SHPR3: PendSV lowest (0xF0), SysTick 0x00
  ldr r1, =0x00F00000
  str r1, [r0]
  ldr r0, =0xE000E010
  ldr r1, =199
  str r1, [r0, #4]
  movs r1, #0
  str r1, [r0, #8]
  movs r1, #7
  str r1, [r0]
1: ldr r1, =0x20000000
  ldr r1, [r1]
  cmp r1, #0
  beq 1b
  cpsid i
  ldr r0, =0xE000ED04
  mov r1, #0x80000000          @ NMIPENDSET: taken despite PRIMASK
  str r1, [r0]
  nop
  ldr r0, =0xAAAA
  bl log_r0
  b .
systick:
  push {r4, lr}
  mrs r0, ipsr
  bl log_r0
  ldr r0, =0xE000ED04
  mov r1, #0x10000000          @ PENDSVSET from the SysTick handler
  ldr r2, =0x20000000
  ldr r3, [r2]
  cmp r3, #0
  bne 2f
  str r1, [r0]
  mov r1, #0x02000000          @ PENDSTCLR + stop SysTick
  ldr r0, =0xE000E010
  movs r3, #0
  str r3, [r0]
2:
  ldr r0, =0x5E
  bl log_r0
  pop {r4, pc}
pendsv:
  push {r4, lr}
  mrs r0, ipsr
  bl log_r0
  ldr r2, =0x20000000
  movs r3, #1
  str r3, [r2]
  pop {r4, pc}
nmi:
  push {r4, lr}
  mrs r0, ipsr
  bl log_r0
  pop {r4, pc}
"""
    + LOG_HELPER
)


def test_pendsv_runs_after_systick_and_nmi_ignores_primask(build):
    m = build(PENDSV_NMI_PROGRAM, handlers={"systick": "systick", "pendsv": "pendsv", "nmi": "nmi"})
    m.run(max_instructions=5000)
    assert log_words(m, 5) == [15, 0x5E, 14, 2, 0xAAAA]


UNPRIVILEGED_PROGRAM = """
reset:
  ldr r0, =0xE000E010
  ldr r1, =499
  str r1, [r0, #4]
  movs r1, #0
  str r1, [r0, #8]
  movs r1, #7
  str r1, [r0]                @ SysTick every 500 cycles
  ldr r1, =0x20008000
  msr psp, r1
  movs r1, #3
  msr control, r1             @ unprivileged thread on the process stack
  isb
  movs r5, #0
1: adds r5, #1
  cmp r5, #2000
  bne 1b
  svc #9                      @ the handler reads back the caller's state
  ldr r4, =0x20000000
  mrs r1, control
  str r1, [r4, #8]
  mrs r1, psp                 @ unprivileged code may read PSP? (reads as 0 on M-profile)
  str r5, [r4, #12]
  b .
svc_handler:
  ldr r4, =0x20000000
  mrs r1, psp
  str r1, [r4, #0]            @ the frame sits on the PSP
  str lr, [r4, #4]
  bx lr
systick:
  ldr r4, =0x20000010
  ldr r1, [r4]
  adds r1, #1
  str r1, [r4]
  bx lr
"""


def test_unprivileged_thread_on_psp_takes_interrupts_and_svc(build):
    m = build(UNPRIVILEGED_PROGRAM, handlers={"svc": "svc_handler", "systick": "systick"})
    m.run(until=lambda: m.read_u32(RESULTS + 12) == 2000, max_instructions=20_000)
    assert m.read_register("ipsr") == 0 and m.read_register("control") == 3
    assert m.read_register("psp") == 0x20008000 and m.read_register("msp") == 0x20010000
    m.run(max_instructions=5_000)
    assert m.read_u32(RESULTS + 0) == 0x20008000 - 0x20  # basic frame on the process stack
    assert m.read_u32(RESULTS + 4) == 0xFFFFFFFD
    assert m.read_u32(RESULTS + 8) == 3  # back to unprivileged, PSP
    assert m.read_u32(RESULTS + 12) == 2000  # the loop survived the interrupts intact
    assert m.read_u32(RESULTS + 16) >= 10  # SysTick preempted unprivileged code
    assert m.read_register("msp") == 0x20010000
