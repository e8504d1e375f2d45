"""Faults: bus errors, undefined instructions, escalation to HardFault, lockup."""

from __future__ import annotations

from h743sim.engine import StopKind

RESULTS = 0x20000000
BAD = 0x08000600  # every faulting instruction sits here (.org 0x600)

FAULT_HANDLER = """
fault_handler:
  ldr r0, =0x20000000
  mrs r1, ipsr
  str r1, [r0, #0]
  ldr r2, =0xE000ED28
  ldr r1, [r2]                @ CFSR
  str r1, [r0, #4]
  ldr r1, [r2, #4]            @ HFSR
  str r1, [r0, #8]
  ldr r1, [r2, #16]           @ BFAR
  str r1, [r0, #12]
  tst lr, #4
  ite eq
  mrseq r3, msp
  mrsne r3, psp
  ldr r1, [r3, #24]           @ stacked PC
  str r1, [r0, #16]
  str lr, [r0, #20]
  str r5, [r0, #24]           @ r5 must still hold what it had before the faulting load
  b .
"""

ALL_FAULTS = {name: "fault_handler" for name in ("hardfault", "memmanage", "busfault", "usagefault")}


def program(setup: str, bad: str) -> str:
    return f"""
reset:
  movs r5, #0x5A
{setup}
  b bad
.ltorg
.org 0x600
bad:
{bad}
  movs r5, #0x77
  b .
{FAULT_HANDLER}
"""


ENABLE_FAULTS = """
  ldr r0, =0xE000ED24        @ SHCSR: MEMFAULTENA | BUSFAULTENA | USGFAULTENA
  ldr r1, =0x00070000
  str r1, [r0]
"""


def results(m):
    return {
        k: m.read_u32(RESULTS + 4 * i)
        for i, k in enumerate(("ipsr", "cfsr", "hfsr", "bfar", "stacked_pc", "exc_return", "r5"))
    }


def test_unmapped_read_escalates_to_hardfault_with_bfar(build):
    m = build(program("  ldr r6, =0x60000010", "  ldr r5, [r6]"), handlers=ALL_FAULTS)
    m.run(max_instructions=200)
    r = results(m)
    assert r["ipsr"] == 3
    assert r["cfsr"] == (1 << 9) | (1 << 15)  # PRECISERR | BFARVALID
    assert r["hfsr"] == 1 << 30  # FORCED: BusFault is disabled
    assert r["bfar"] == 0x60000010
    assert r["stacked_pc"] == BAD  # precise: the load itself
    assert r["r5"] == 0x5A  # the load did not complete
    state = m.cpu_state()
    assert state["cfsr"] == r["cfsr"] and state["bfar"] == 0x60000010 and state["hfsr"] == 1 << 30


def test_enabled_busfault_is_taken_without_escalation(build):
    m = build(program(ENABLE_FAULTS + "  ldr r6, =0x60000000", "  str r5, [r6, #8]"), handlers=ALL_FAULTS)
    m.run(max_instructions=200)
    r = results(m)
    assert r["ipsr"] == 5 and r["hfsr"] == 0
    assert r["cfsr"] == (1 << 9) | (1 << 15) and r["bfar"] == 0x60000008
    assert r["stacked_pc"] == BAD


def test_undefined_instruction(build):
    m = build(program(ENABLE_FAULTS, "  udf #3"), handlers=ALL_FAULTS)
    m.run(max_instructions=200)
    r = results(m)
    assert r["ipsr"] == 6 and r["cfsr"] == 1 << 16 and r["stacked_pc"] == BAD  # UNDEFINSTR
    m = build(program("", "  udf #3"), handlers=ALL_FAULTS)
    m.run(max_instructions=200)
    r = results(m)
    assert r["ipsr"] == 3 and r["cfsr"] == 1 << 16 and r["hfsr"] == 1 << 30


def test_branch_without_thumb_bit_is_invstate(build):
    m = build(program(ENABLE_FAULTS + "  ldr r6, =0x08000700", "  bx r6"), handlers=ALL_FAULTS)
    m.run(max_instructions=200)
    r = results(m)
    assert r["ipsr"] == 6 and r["cfsr"] == 1 << 17 and r["stacked_pc"] == 0x08000700


def test_fetch_from_peripheral_space_is_memmanage(build):
    m = build(program(ENABLE_FAULTS + "  ldr r6, =0xE0000001", "  bx r6"), handlers=ALL_FAULTS)
    m.run(max_instructions=200)
    r = results(m)
    assert r["ipsr"] == 4 and r["cfsr"] == 1  # IACCVIOL
    assert r["stacked_pc"] == 0xE0000000


def test_fault_in_hardfault_is_a_lockup_stop(build):
    body = (
        program("  ldr r6, =0x60000000", "  ldr r5, [r6]")
        + """
bad_hardfault:
  ldr r0, =0x70000000
  ldr r0, [r0]
  b .
"""
    )
    m = build(body, handlers={"hardfault": "bad_hardfault"})
    stop = m.run(max_instructions=1000)
    assert stop.kind is StopKind.LOCKUP
    assert "HardFault" in stop.message
    assert stop.cpu["cfsr"] & (1 << 15) and stop.cpu["bfar"] == 0x70000000
    assert stop.cpu["hfsr"] == 1 << 30
    assert m.locked_up
    again = m.run(max_instructions=10)
    assert again.kind is StopKind.LOCKUP and again.instructions == stop.instructions


def test_stacking_error_enters_the_fault_handler(build):
    body = program("  ldr r6, =0x60000100\n  mov sp, r6", "  svc #0")
    body += """
fault_handler_nostack:
  ldr r0, =0x20000000
  mrs r1, ipsr
  str r1, [r0, #0]
  ldr r2, =0xE000ED28
  ldr r1, [r2]
  str r1, [r0, #4]
  ldr r1, [r2, #4]
  str r1, [r0, #8]
  mrs r1, msp
  str r1, [r0, #12]
  b .
"""
    m = build(body, handlers={"hardfault": "fault_handler_nostack", "svc": "fault_handler"})
    m.run(max_instructions=200)
    assert m.read_u32(RESULTS) == 3
    assert m.read_u32(RESULTS + 4) == 1 << 12  # STKERR
    assert m.read_u32(RESULTS + 8) == 1 << 30
    assert m.read_u32(RESULTS + 12) == 0x60000100 - 0x20  # SP moved as if the frame was pushed


class Refusing:
    """A register block whose offset 0x10 read fails with a bus error; 0x20 fails later."""

    def __init__(self, host):
        self.host = host
        self.reads = 0

    def read(self, offset, size):
        self.reads += 1
        if offset == 0x10:
            self.host.bus_error(0x40000010, "refused")
        return 0x1234

    def write(self, offset, size, value):
        if offset == 0x20:
            self.host.schedule(100, lambda: self.host.bus_error(0x40000020, "late write error"))

    def reset(self):
        pass


def test_model_bus_error_is_precise(build):
    models = []

    def setup(m):
        models.append(Refusing(m.host_for("refusing")))
        m.add_mmio("refusing", 0x40000000, 0x400, models[0])

    m = build(
        program(ENABLE_FAULTS + "  ldr r6, =0x40000000", "  ldr r5, [r6, #0x10]"),
        handlers=ALL_FAULTS,
        setup=setup,
    )
    m.run(max_instructions=200)
    r = results(m)
    assert r["ipsr"] == 5 and r["cfsr"] == (1 << 9) | (1 << 15) and r["bfar"] == 0x40000010
    assert r["stacked_pc"] == BAD and r["r5"] == 0x5A
    assert models[0].reads == 1  # the refused read is not repeated


def test_later_bus_error_is_imprecise(build):
    models = []

    def setup(m):
        models.append(Refusing(m.host_for("refusing")))
        m.add_mmio("refusing", 0x40000000, 0x400, models[0])

    body = program(ENABLE_FAULTS + "  ldr r6, =0x40000000", "  str r5, [r6, #0x20]\n" + "  nop\n" * 20)
    m = build(body, handlers=ALL_FAULTS, setup=setup)
    m.run(max_instructions=300)
    r = results(m)
    assert r["ipsr"] == 5 and r["cfsr"] == 1 << 10  # IMPRECISERR, no BFAR
    assert BAD < r["stacked_pc"] <= BAD + 4 + 2 * 20
