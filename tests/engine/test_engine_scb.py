"""System control space seen from firmware: SCB identification, caches, CPACR, MPU, DWT, ITM."""

from __future__ import annotations

import logging

RESULTS = 0x20000000

SCB_PROGRAM = """
reset:
  ldr r4, =0x20000000
  ldr r0, =0xE000ED00
  ldr r1, [r0]                @ CPUID
  str r1, [r4, #0]
  ldr r1, [r0, #0x14]         @ CCR reset value
  str r1, [r4, #4]
  ldr r2, =0xE000ED84         @ CSSELR: data cache
  movs r1, #0
  str r1, [r2]
  ldr r1, [r2, #-4]           @ CCSIDR
  str r1, [r4, #8]
  movs r1, #1                 @ instruction cache
  str r1, [r2]
  ldr r1, [r2, #-4]
  str r1, [r4, #12]
  ldr r2, =0xE000ED88         @ CPACR: CP10/CP11 full access, other bits stay 0
  mov r1, #-1
  str r1, [r2]
  ldr r1, [r2]
  str r1, [r4, #16]
  ldr r2, =0xE000EF34         @ FPCCR reset: ASPEN | LSPEN
  ldr r1, [r2]
  str r1, [r4, #20]
  ldr r2, =0xE000EF60         @ DCISW: set/way maintenance is accepted
  str r1, [r2]
  ldr r2, =0xE000ED90         @ MPU: TYPE, then region 3 via RBAR.VALID, region 5 via RNR
  ldr r1, [r2]
  str r1, [r4, #24]
  ldr r1, =0x24000013         @ ADDR | VALID | REGION 3
  str r1, [r2, #0xC]
  ldr r1, =0x0306002B
  str r1, [r2, #0x10]
  movs r1, #5
  str r1, [r2, #8]
  ldr r1, =0x90000000
  str r1, [r2, #0xC]
  movs r1, #3
  str r1, [r2, #8]            @ back to region 3: its values are still there
  ldr r1, [r2, #0xC]
  str r1, [r4, #28]
  ldr r1, [r2, #0x18]         @ RASR alias A1
  str r1, [r4, #32]
  ldr r2, =0xE000EDFC         @ DEMCR.TRCENA then DWT CYCCNTENA: the cycle counter runs
  mov r1, #0x01000000
  str r1, [r2]
  ldr r2, =0xE0001000
  movs r1, #0
  str r1, [r2, #4]
  movs r1, #1
  str r1, [r2]
  ldr r5, [r2, #4]
  nop
  nop
  nop
  ldr r6, [r2, #4]
  sub r1, r6, r5
  str r1, [r4, #36]
  ldr r2, =0xE000EE00         @ an SCS hole: reads 0, logged once
  ldr r1, [r2]
  str r1, [r4, #40]
  ldr r1, [r2]
  ldr r2, =0xE0000E80         @ ITM: enable, then print "ok" on port 0
  movs r1, #1
  str r1, [r2]
  ldr r2, =0xE0000E00
  str r1, [r2]
  ldr r2, =0xE0000000
  ldr r3, [r2]                @ FIFO ready
  str r3, [r4, #44]
  movs r1, #'o'
  strb r1, [r2]
  movs r1, #'k'
  strb r1, [r2]
  ldr r1, =0x600D
  str r1, [r4, #48]
  b .
"""


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_scb_mpu_dwt_itm_from_firmware(build):
    m = build(SCB_PROGRAM)
    logger = logging.getLogger("h743sim.model.scb")  # other code may raise the model loggers' level
    collect = _Collect()
    old_level = logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.WARNING)
    try:
        m.run(max_instructions=1000)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(old_level)
    r = [m.read_u32(RESULTS + 4 * i) for i in range(13)]
    assert r[12] == 0x600D
    assert r[0] == 0x411FC271  # Cortex-M7 r1p1
    assert r[1] == 0x00040200  # BP | STKALIGN
    assert r[2] == 0xF00FE019 and r[3] == 0xF01FE009  # 16 KB D-cache 4-way, I-cache 2-way, 32 B lines
    assert r[4] == 0x00F00000  # only CP10/CP11 implemented
    assert r[5] == 0xC0000000
    assert r[6] == 16 << 8  # 16 MPU regions
    assert r[7] == 0x24000003 and r[8] == 0x0306002B  # region 3 kept its RBAR/RASR
    assert r[9] == 4  # three nops and the second load: 4 cycles
    assert r[10] == 0
    assert r[11] == 1
    assert bytes(m.itm.output[0]) == b"ok"
    holes = [msg for msg in collect.messages if "0xe00" in msg]
    assert len(holes) == 1  # logged once although read twice


def test_irq_offset_of_a_model_host(build):
    m = build("reset:\n  b .\n")
    host = m.host_for("dma", irq_offset=11)
    host.set_irq(3, True)
    assert 16 + 14 in m.nvic.pending
