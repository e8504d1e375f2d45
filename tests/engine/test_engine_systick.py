"""SysTick: reload period, CVR consistency, COUNTFLAG, exception timing in virtual time."""

from __future__ import annotations

from h743sim.engine import StopKind

RESULTS = 0x20000000
PROBE = 0x40000000


class Probe:
    """An MMIO block that timestamps every write (cycle count of the storing instruction)."""

    def __init__(self, machine):
        self.machine = machine
        self.writes: list[tuple[int, int, int]] = []  # (cycles, ns, value)

    def read(self, offset, size):
        return 0

    def write(self, offset, size, value):
        self.writes.append((self.machine.now_cycles(), self.machine.now_ns(), value))

    def reset(self):
        pass


def with_probe(store):
    def setup(m):
        probe = Probe(m)
        store.append(probe)
        m.add_mmio("probe", PROBE, 0x400, probe)

    return setup


SYSTICK_IRQ_PROGRAM = """
reset:
  ldr r0, =0xE000E010
  ldr r1, =999
  str r1, [r0, #4]           @ RVR: period 1000 cycles
  movs r1, #0
  str r1, [r0, #8]           @ CVR cleared
  ldr r2, =0x40000000
  movs r1, #7
  str r1, [r0]               @ ENABLE | TICKINT | CLKSOURCE(core)
  str r1, [r2]               @ probe: one cycle after the enable
1: adds r5, #1
  b 1b
systick:
  ldr r3, =0x20000000
  ldr r1, [r3]
  adds r1, #1
  str r1, [r3]
  bx lr
"""


def test_systick_exception_period_and_first_wrap(build):
    probes: list[Probe] = []
    m = build(SYSTICK_IRQ_PROGRAM, handlers={"systick": "systick"}, setup=with_probe(probes))
    m.exception_log = []
    stop = m.run(max_ns=100_000)  # 100 us at 64 MHz = 6400 cycles
    assert stop.kind.value == "timeout"
    enable_cycle = probes[0].writes[0][0] - 1
    entries = [(t, n) for t, n, exc in m.exception_log if exc == 15]
    assert len(entries) == 6  # wraps at +1000, +2000, ... +6000 cycles
    assert m.read_u32(RESULTS) == 6
    # an entry happens exactly at the wrap (the slice ends there): cycles -> ns at 64 MHz
    for k, (t, _n) in enumerate(entries, start=1):
        assert t == (enable_cycle + 1000 * k) * 1_000_000_000 // 64_000_000
    # the core slept nowhere: instructions == cycles
    assert m.instructions_executed == m.now_cycles()


COUNTFLAG_PROGRAM = """
reset:
  ldr r0, =0xE000E010
  ldr r4, =0x20000000
  movs r1, #99
  str r1, [r0, #4]           @ RVR = 99: period 100
  movs r1, #0
  str r1, [r0, #8]
  movs r1, #5
  str r1, [r0]               @ ENABLE | CLKSOURCE, no interrupt
  ldr r1, [r0, #8]           @ two back-to-back CVR reads
  ldr r2, [r0, #8]
  str r1, [r4, #0]
  str r2, [r4, #4]
  ldr r1, [r0]               @ COUNTFLAG not yet set
  str r1, [r4, #8]
1: ldr r1, [r0]              @ poll COUNTFLAG (bit 16)
  tst r1, #0x10000
  beq 1b
  ldr r2, [r0]               @ reading CSR cleared it
  str r2, [r4, #12]
  ldr r1, [r0, #8]
  str r1, [r4, #16]
  str r1, [r0, #8]           @ any CVR write clears the counter and COUNTFLAG
  ldr r1, [r0, #8]
  str r1, [r4, #20]
  movs r1, #0
  str r1, [r0]               @ disable: the value freezes
  ldr r1, [r0, #8]
  nop
  nop
  ldr r2, [r0, #8]
  str r1, [r4, #24]
  str r2, [r4, #28]
  ldr r1, =0x600D
  str r1, [r4, #32]
  b .
"""


def test_cvr_reads_are_consistent_and_countflag_clears_on_read(build):
    m = build(COUNTFLAG_PROGRAM)
    m.run(max_instructions=5000)
    r = [m.read_u32(RESULTS + 4 * i) for i in range(9)]
    assert r[8] == 0x600D
    assert r[0] - r[1] == 1  # one instruction = one tick apart
    assert 0 < r[0] <= 99
    assert not r[2] & 0x10000
    assert r[3] & 0x10000 == 0  # second read after the flag was seen
    assert 0 <= r[4] <= 99
    assert r[5] in (0, 99)  # cleared (or already reloaded on the next tick)
    assert r[6] == r[7]  # disabled: frozen


def test_external_clock_source_counts_core_clock_over_8(build):
    body = SYSTICK_IRQ_PROGRAM.replace("movs r1, #7", "movs r1, #3")  # CLKSOURCE = external
    probes: list[Probe] = []
    m = build(body, handlers={"systick": "systick"}, setup=with_probe(probes))
    m.exception_log = []
    m.run(max_ns=300_000)  # 19200 cycles
    entries = [t for t, _n, exc in m.exception_log if exc == 15]
    assert len(entries) == 2
    period_ns = entries[1] - entries[0]
    assert period_ns == 8000 * 1_000_000_000 // 64_000_000  # 1000 ticks of core/8


def _ticking_machine(build, hz: list[int]):
    """SYSTICK_IRQ_PROGRAM on a core whose clock is hz[0], logging exception entries."""
    probes: list[Probe] = []
    m = build(
        SYSTICK_IRQ_PROGRAM, handlers={"systick": "systick"}, cpu_hz=lambda: hz[0], setup=with_probe(probes)
    )
    m.exception_log = []
    return m


def test_core_clock_change_retimes_systick(build):
    hz = [64_000_000]
    m = _ticking_machine(build, hz)
    m.run(max_ns=50_000)
    hz[0] = 128_000_000  # e.g. the firmware switched to the PLL
    m.run(max_ns=50_000)
    entries = _assert_periods_at_64_then_128_mhz(m)
    assert m.read_u32(RESULTS) == len(entries)


def _assert_periods_at_64_then_128_mhz(m) -> list[int]:
    """SysTick entry times show a 1000-cycle period at 64 MHz and one at 128 MHz."""
    entries = [t for t, _n, exc in m.exception_log if exc == 15]
    gaps = [b - a for a, b in zip(entries, entries[1:], strict=False)]
    assert 15625 in gaps  # 1000 cycles at 64 MHz
    assert 7812 in gaps or 7813 in gaps  # 1000 cycles at 128 MHz
    return entries


def test_core_clock_change_by_a_model_event_mid_run(build):
    # cpu_hz() is re-read after model code ran (here a scheduled event), not only between runs
    hz = [64_000_000]
    m = _ticking_machine(build, hz)
    m.schedule(50_000, lambda: hz.__setitem__(0, 128_000_000), "pll switch")
    m.run(max_ns=100_000)
    _assert_periods_at_64_then_128_mhz(m)


RVR_WHILE_COUNTING_PROGRAM = """
reset:
  ldr r0, =0xE000E010
  ldr r1, =999
  str r1, [r0, #4]           @ RVR: period 1000 cycles
  movs r1, #0
  str r1, [r0, #8]
  movs r1, #5
  str r1, [r0]               @ ENABLE | CLKSOURCE(core), no interrupt
  ldr r4, =0x20000000
  ldr r2, =1500              @ ~3000 cycles: the counter has reloaded a few times
1: subs r2, #1
  bne 1b
  ldr r1, [r0, #8]           @ CVR just before the new RVR
  ldr r3, =4999
  str r3, [r0, #4]           @ RVR: period 5000, while counting
  ldr r5, [r0, #8]           @ CVR just after
  str r1, [r4]
  str r5, [r4, #4]
  ldr r2, =600               @ ~1200 cycles: past the next reload, not past the one after
2: subs r2, #1
  bne 2b
  ldr r5, [r0, #8]
  str r5, [r4, #8]
  ldr r1, =0x600D
  str r1, [r4, #12]
3: b 3b
"""


def test_rvr_written_while_counting_applies_at_the_next_reload(build):
    """ARMv7-M B3.3: writing RVR does not change the count in progress (FreeRTOS's tickless
    idle relies on it: new RVR, then the old one restored while the counter runs)."""
    m = build(RVR_WHILE_COUNTING_PROGRAM)
    m.run(until=lambda: m.read_u32(RESULTS + 12) == 0x600D, max_ns=1_000_000)
    before, after, later, done = (m.read_u32(RESULTS + 4 * i) for i in range(4))
    assert done == 0x600D
    assert before <= 999 and after <= 999  # still the old period's count
    assert 0 < before - after <= 4  # a few instructions apart, counting down
    assert 999 < later <= 4999  # the reload after the write used the new value


NO_TICKINT_PROGRAM = """
reset:
  ldr r0, =0xE000E010
  ldr r1, =999
  str r1, [r0, #4]
  movs r1, #0
  str r1, [r0, #8]
  movs r1, #5
  str r1, [r0]               @ ENABLE | CLKSOURCE(core), no TICKINT
  movs r5, #0
1: adds r5, #1
  ldr r1, [r0]               @ poll COUNTFLAG
  tst r1, #0x10000
  beq 1b
  ldr r4, =0x20000000
  str r5, [r4]
  ldr r1, [r0]               @ read again: cleared by the previous read
  str r1, [r4, #4]
  wfi                        @ nothing can wake the core
  b .
"""


def test_countflag_without_tickint_schedules_nothing(build):
    """COUNTFLAG is seen by polling although no SysTick event is scheduled; the WFI after it has
    nothing to wake it, so even a run bounded only by instructions ends as SLEEPING."""
    m = build(NO_TICKINT_PROGRAM)
    stop = m.run(max_instructions=1_000_000)
    assert stop.kind is StopKind.SLEEPING, stop.message
    loops = m.read_u32(RESULTS)
    assert 200 <= loops <= 260  # ~4 cycles per loop until the first 1 -> 0 after ~1000 cycles
    assert not m.read_u32(RESULTS + 4) & 0x10000
