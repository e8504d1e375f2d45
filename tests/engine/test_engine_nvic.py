"""NVIC and SCB register rules, exercised by firmware through the bus and on the model."""

from __future__ import annotations

from h743sim.engine.nvic import FIRST_IRQ, Nvic
from peripherals.standalone_host import StandaloneHost

RESULTS = 0x20000000

NVIC_PROGRAM = """
reset:
  ldr r4, =0x20000000
  ldr r0, =0xE000E100        @ ISER0
  ldr r1, =0x00000031        @ IRQ0, IRQ4, IRQ5
  str r1, [r0]
  ldr r1, [r0]
  str r1, [r4, #0]
  ldr r2, =0xE000E180        @ ICER0
  movs r1, #0x10             @ disable IRQ4
  str r1, [r2]
  ldr r1, [r0]
  str r1, [r4, #4]
  ldr r1, [r2]               @ ICER reads the enable state too
  str r1, [r4, #8]
  mov r1, #-1
  str r1, [r0, #16]          @ ISER4: IRQ128..159, only 128..149 exist
  ldr r1, [r0, #16]
  str r1, [r4, #12]
  mov r1, #-1
  str r1, [r0, #20]          @ ISER5: no IRQs there
  ldr r1, [r0, #20]
  str r1, [r4, #16]
  ldr r3, =0xE000E405        @ IPR byte of IRQ5
  movs r1, #0xFF
  strb r1, [r3]
  ldrb r1, [r3]
  str r1, [r4, #20]
  ldr r3, =0xE000E404        @ IPR1 = IRQ4..7
  ldr r1, =0x12345678
  str r1, [r3]
  ldr r1, [r3]
  str r1, [r4, #24]
  cpsid i
  ldr r3, =0xE000EF00        @ STIR
  movs r1, #5
  str r1, [r3]
  ldr r5, =0xE000E200        @ ISPR0
  ldr r1, [r5]
  str r1, [r4, #28]
  ldr r6, =0xE000ED04        @ ICSR
  ldr r1, [r6]
  str r1, [r4, #32]
  ldr r7, =0xE000E280        @ ICPR0
  movs r1, #0x20
  str r1, [r7]
  ldr r1, [r5]
  str r1, [r4, #36]
  movs r1, #37               @ IRQ37 is not enabled: it only becomes pending
  str r1, [r3]
  ldr r1, [r5, #4]
  str r1, [r4, #40]
  ldr r3, =0xE000ED0C        @ AIRCR
  ldr r1, [r3]
  str r1, [r4, #44]
  ldr r1, =0x05FA0300
  str r1, [r3]
  ldr r1, [r3]
  str r1, [r4, #48]
  ldr r1, =0x00000500        @ no VECTKEY: ignored
  str r1, [r3]
  ldr r1, [r3]
  str r1, [r4, #52]
  ldr r3, =0xE000ED23        @ SHPR3 byte 3 = SysTick priority
  movs r1, #0x45
  strb r1, [r3]
  ldr r3, =0xE000ED20
  ldr r1, [r3]
  str r1, [r4, #56]
  ldr r3, =0xE000EF00
  movs r1, #5
  str r1, [r3]               @ pend IRQ5 again, now taken once interrupts are enabled
  cpsie i
  nop
  nop
  ldr r1, =0x600D
  str r1, [r4, #72]
  b .
irq5:
  ldr r4, =0x20000000
  ldr r0, =0xE000E300        @ IABR0
  ldr r1, [r0]
  str r1, [r4, #60]
  ldr r0, =0xE000ED04
  ldr r1, [r0]
  str r1, [r4, #64]
  mrs r1, ipsr
  str r1, [r4, #68]
  bx lr
"""


def test_nvic_registers_follow_armv7m_rules(build):
    m = build(NVIC_PROGRAM, irqs={5: "irq5"})
    stop = m.run(max_instructions=2000)
    r = [m.read_u32(RESULTS + 4 * i) for i in range(19)]
    assert r[0] == 0x31  # ISER read-back
    assert r[1] == 0x21 and r[2] == 0x21  # ICER cleared IRQ4; ICER reads the same state
    assert r[3] == (1 << 22) - 1  # only IRQ128..149 implemented
    assert r[4] == 0  # ISER5: no IRQs
    assert r[5] == 0xF0  # 4 priority bits: low nibble reads 0
    assert r[6] == 0x10305070
    assert r[7] == 1 << 5  # STIR pended IRQ5
    icsr = r[8]
    assert (icsr >> 12) & 0x1FF == 16 + 5  # VECTPENDING ignores PRIMASK
    assert icsr & (1 << 22)  # ISRPENDING
    assert icsr & 0x1FF == 0  # thread mode
    assert r[9] == 0  # ICPR cleared it
    assert r[10] == 1 << 5  # IRQ37 pending in ISPR1
    assert r[11] == 0xFA050000
    assert r[12] == 0xFA050300  # PRIGROUP written with the key
    assert r[13] == 0xFA050300  # write without the key ignored
    assert r[14] == 0x40000000  # byte write kept other lanes, low nibble dropped
    assert r[15] == 1 << 5  # IABR inside the handler
    assert r[16] & 0x1FF == 21 and r[16] & (1 << 11)  # VECTACTIVE, RETTOBASE
    assert r[17] == 21
    assert r[18] == 0x600D, stop
    assert m.exceptions.entries == 1


def test_level_sensitive_line_repends_while_high():
    nvic = Nvic(StandaloneHost())
    exc = FIRST_IRQ + 7
    nvic.set_irq(7, True)
    assert exc in nvic.pending
    nvic.activate(exc)
    assert exc not in nvic.pending
    nvic.set_irq(7, True)  # still high: no new edge while active
    assert exc not in nvic.pending
    nvic.deactivate(exc)  # handler returned with the line still high
    assert exc in nvic.pending
    nvic.unpend(exc)  # ICPR while the line is high and the handler not running: stays pending
    assert exc in nvic.pending
    nvic.set_irq(7, False)
    nvic.unpend(exc)
    assert exc not in nvic.pending
    nvic.activate(exc)
    nvic.deactivate(exc)
    assert exc not in nvic.pending  # line low at return: done


def test_priority_grouping_decides_preemption():
    nvic = Nvic(StandaloneHost())
    a, b = FIRST_IRQ + 1, FIRST_IRQ + 2
    nvic.write(0x300, 4, 0x00_40_50_00)  # IRQ1 = 0x50, IRQ2 = 0x40
    assert nvic.priority(a) == 0x50 and nvic.priority(b) == 0x40
    nvic.activate(a)
    assert nvic.can_preempt(b, nvic.execution_priority(0, 0, 0))
    nvic.prigroup = 5  # group = bits 7:6 -> 0x40 for both: no preemption
    assert not nvic.can_preempt(b, nvic.execution_priority(0, 0, 0))
    nvic.prigroup = 0
    assert not nvic.can_preempt(b, nvic.execution_priority(1, 0, 0))  # PRIMASK
    assert not nvic.can_preempt(b, nvic.execution_priority(0, 0x40, 0))  # BASEPRI = its priority
    assert nvic.can_preempt(b, nvic.execution_priority(0, 0x50, 0))
    assert nvic.highest_pending() is None
    nvic.write(0x000, 4, 0b110)  # enable IRQ1, IRQ2
    nvic.pend(a)
    nvic.pend(b)
    assert nvic.highest_pending() == b  # lower value = higher priority
