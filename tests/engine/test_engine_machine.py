"""Run loop and virtual time: WFI, idle-poll fast-forward, resets, stops, determinism."""

from __future__ import annotations

import pytest

from h743sim.engine import StopKind
from h743sim.engine.machine import DEFAULT_MAX_SLICE

RESULTS = 0x20000000
ALARM = 0x40000000
NS_PER_CYCLE_64MHZ = 1_000_000_000 / 64_000_000


class Alarm:
    """Test peripheral: +0 write = start a delay (ns), +4 read = fired flag, +8 write = clear.

    Raises IRQ 3 when the delay expires (level, until cleared). Counts resets.
    """

    def __init__(self, host):
        self.host = host
        self.fired = 0
        self.resets = 0
        self.starts: list[int] = []
        self.on_write = None

    def read(self, offset, size):
        return self.fired if offset == 4 else 0

    def write(self, offset, size, value):
        if offset == 0:
            self.starts.append(self.host.now_ns())
            self.host.schedule(value, self._fire, "alarm")
        elif offset == 8:
            self.fired = 0
            self.host.set_irq(3, False)
        if self.on_write is not None:
            self.on_write(offset, value)

    def _fire(self):
        self.fired = 1
        self.host.set_irq(3, True)

    def reset(self):
        self.resets += 1
        self.fired = 0


@pytest.fixture
def alarm_build(build):
    def _build(body, **kw):
        holder = []

        def setup(m):
            a = Alarm(m.host_for("alarm"))
            holder.append(a)
            m.add_mmio("alarm", ALARM, 0x400, a)

        m = build(body, setup=setup, **kw)
        return m, holder[0]

    return _build


WFI_PROGRAM = """
reset:
  ldr r0, =0xE000E100
  movs r1, #8                 @ enable IRQ3
  str r1, [r0]
  ldr r6, =0x40000000
  ldr r1, =1000000            @ alarm in 1 ms
  str r1, [r6]
  wfi
  ldr r4, =0x20000000
  ldr r1, =0x600D
  str r1, [r4]
  wfi                         @ nothing else will ever happen
  b .
alarm_irq:
  ldr r6, =0x40000000
  movs r1, #1
  str r1, [r6, #8]            @ clear: line low
  ldr r4, =0x20000000
  str r1, [r4, #4]
  bx lr
"""


def test_wfi_jumps_to_the_next_event_then_sleeps_forever(alarm_build):
    m, alarm = alarm_build(WFI_PROGRAM, irqs={3: "alarm_irq"})
    m.exception_log = []
    stop = m.run()
    assert stop.kind is StopKind.SLEEPING and m.sleeping
    assert m.read_u32(RESULTS) == 0x600D and m.read_u32(RESULTS + 4) == 1
    assert m.instructions_executed < 40  # the millisecond was slept, not executed
    ((t, _n, exc),) = m.exception_log
    assert exc == 16 + 3
    assert alarm.starts[0] + 1_000_000 <= t < alarm.starts[0] + 1_000_000 + NS_PER_CYCLE_64MHZ
    assert m.idle_cycles >= 63_900
    # with a deadline the sleep ends in a timeout at exactly that time
    start = m.virtual_time_ns
    stop = m.run(max_ns=5_000_000)
    assert stop.kind is StopKind.TIMEOUT and m.virtual_time_ns == start + 5_000_000


POLL_PROGRAM = """
reset:
  ldr r6, =0x40000000
  ldr r1, =10000000           @ 10 ms
  str r1, [r6]
1: ldr r1, [r6, #4]           @ idle poll: nothing else changes
  cmp r1, #0
  beq 1b
  ldr r4, =0x20000000
  ldr r1, =0x600D
  str r1, [r4]
  movs r1, #1
  str r1, [r6, #8]
  ldr r1, =1000000            @ 1 ms
  str r1, [r6]
  movs r5, #0
2: ldr r1, [r6, #4]           @ not idle: r5 counts iterations
  adds r5, #1
  cmp r1, #0
  beq 2b
  str r5, [r4, #4]
  b .
"""


def test_idle_polling_is_fast_forwarded_but_busy_loops_are_not(alarm_build):
    m, alarm = alarm_build(POLL_PROGRAM)
    stop = m.run(until=lambda: m.read_u32(RESULTS + 4) != 0, max_ns=50_000_000)
    assert stop.kind is StopKind.CONDITION
    assert m.read_u32(RESULTS) == 0x600D
    assert m.virtual_time_ns >= 11_000_000
    # the 10 ms poll took a handful of iterations, the 1 ms counting loop all 64000 cycles
    iterations = m.read_u32(RESULTS + 4)
    assert 64_000 // 4 - 10 <= iterations <= 64_000 // 4 + 10
    # 11 ms at 64 MHz would be 704000 instructions; the final "b ." runs until the slice ends
    assert m.instructions_executed < 64_000 + DEFAULT_MAX_SLICE + 1_000
    assert m.idle_cycles >= 10_000_000 // NS_PER_CYCLE_64MHZ - 100


RESET_PROGRAM = """
reset:
  ldr r4, =0x20000100         @ boot counter survives a system reset (SRAM keeps its content)
  ldr r1, [r4]
  ldr r2, =0xE000ED08
  ldr r3, [r2]                @ VTOR after each reset
  add r5, r4, #4
  str r3, [r5, r1, lsl #2]
  adds r1, #1
  str r1, [r4]
  cmp r1, #3
  bhs 1f
  ldr r3, =0x20000000
  str r3, [r2]                @ move VTOR away, then reset
  ldr r2, =0xE000ED0C
  ldr r3, =0x05FA0004         @ VECTKEY | SYSRESETREQ
  dsb
  str r3, [r2]
  b .
1:
  ldr r1, =0x600D
  str r1, [r4, #-4]
  b .
"""


def test_aircr_sysresetreq_resets_the_board_and_continues(alarm_build):
    m, alarm = alarm_build(RESET_PROGRAM)
    hook_calls = []
    m.reset_hooks.append(lambda: hook_calls.append(m.virtual_time_ns))
    stop = m.run(until=lambda: m.read_u32(0x200000FC) == 0x600D, max_ns=1_000_000)
    assert stop.kind is StopKind.CONDITION
    assert m.reset_count == 2
    assert alarm.resets == 3  # power-on reset + two system resets
    assert len(hook_calls) == 2
    assert m.read_u32(0x20000100) == 3
    assert [m.read_u32(0x20000104 + 4 * i) for i in range(3)] == [0x08000000] * 3


DETERMINISM_PROGRAM = """
reset:
  ldr r0, =0xE000E100
  movs r1, #8
  str r1, [r0]
  ldr r0, =0xE000E010
  ldr r1, =12345
  str r1, [r0, #4]
  movs r1, #0
  str r1, [r0, #8]
  movs r1, #7
  str r1, [r0]
  ldr r6, =0x40000000
  ldr r1, =777777
  str r1, [r6]
1: adds r5, #3
  eor r5, r5, r5, lsl #5
  ldr r1, [r6, #4]
  cmp r5, #0
  bne 1b
  wfi
  b 1b
alarm_irq:
  ldr r6, =0x40000000
  movs r1, #1
  str r1, [r6, #8]
  ldr r1, =333333
  str r1, [r6]
  bx lr
systick:
  add r7, #1
  bx lr
"""


def test_two_runs_are_identical(alarm_build):
    outcomes = []
    for _ in range(2):
        m, alarm = alarm_build(DETERMINISM_PROGRAM, irqs={3: "alarm_irq"}, handlers={"systick": "systick"})
        m.exception_log = []
        m.run(max_ns=20_000_000)
        outcomes.append(
            (
                m.instructions_executed,
                m.virtual_time_ns,
                m.idle_cycles,
                tuple(m.exception_log),
                tuple(alarm.starts),
                tuple(m.read_register(f"r{i}") for i in range(13)),
            )
        )
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0][3]) > 100  # SysTick and alarm interrupts really happened


def test_request_stop_power_off_until_and_instruction_budget(alarm_build):
    m, alarm = alarm_build(
        """
reset:
  ldr r6, =0x40000000
  movs r1, #1
  b 1f
.ltorg
.org 0x480
1: str r1, [r6, #0xC]        @ 0x08000480
  movs r2, #2
  movs r3, #3
  str r1, [r6, #0x10]
2: adds r4, #1
  b 2b
"""
    )

    def on_write(offset, value):
        if offset == 0xC:
            m.request_stop("model saw the write")
        if offset == 0x10:
            alarm.host.power_off("power cut")

    alarm.on_write = on_write
    stop = m.run()
    assert stop.kind is StopKind.REQUESTED and stop.message == "model saw the write"
    assert m.read_register("r2") == 0 and m.read_register("pc") == 0x08000482  # right after the store
    stop = m.run()
    assert stop.kind is StopKind.POWER_OFF and "alarm: power cut" in stop.message
    assert m.read_register("r3") == 3
    assert m.run().kind is StopKind.POWER_OFF  # stays off until reset
    m.reset()
    alarm.on_write = None
    before = m.instructions_executed
    stop = m.run(max_instructions=12_345)
    assert stop.kind is StopKind.INSTRUCTION_LIMIT and m.instructions_executed == before + 12_345
    stop = m.run(until=lambda: m.read_register("r4") >= 1000, max_instructions=10**6)
    assert stop.kind is StopKind.CONDITION


def test_event_scheduled_mid_slice_fires_at_its_exact_time(alarm_build):
    m, alarm = alarm_build(
        """
reset:
  ldr r0, =0xE000E100
  movs r1, #8
  str r1, [r0]
  ldr r6, =0x40000000
  movs r1, #100              @ 100 ns = 6.4 cycles
  str r1, [r6]
1: adds r4, #1
  b 1b
alarm_irq:
  movs r1, #1
  str r1, [r6, #8]
  bx lr
""",
        irqs={3: "alarm_irq"},
    )
    m.exception_log = []
    m.run(max_ns=10_000)
    ((t, _n, _exc),) = m.exception_log
    assert alarm.starts[0] + 100 <= t < alarm.starts[0] + 100 + NS_PER_CYCLE_64MHZ


def test_model_exception_stops_the_run_with_an_error(alarm_build):
    m, alarm = alarm_build(
        """
reset:
  ldr r6, =0x40000000
  str r1, [r6, #0x14]
  b .
"""
    )

    def on_write(offset, value):
        raise ValueError("model is broken")

    alarm.on_write = on_write
    stop = m.run(max_ns=1000)
    assert stop.kind is StopKind.ERROR
    assert "alarm" in stop.message and "model is broken" in stop.message
    assert isinstance(stop.error, ValueError)


def test_breakpoints_stop_before_the_instruction_and_resume(alarm_build):
    m, alarm = alarm_build(
        """
reset:
  movs r4, #0
  b 1f
.org 0x480
1: adds r4, #1               @ 0x08000480
  adds r5, #1                @ 0x08000482
  b 1b
"""
    )
    m.add_breakpoint(0x08000482)
    stop = m.run(max_instructions=1000)
    assert stop.kind is StopKind.BREAKPOINT and m.read_register("pc") == 0x08000482
    assert (m.read_register("r4"), m.read_register("r5")) == (1, 0)
    stop = m.run(max_instructions=1000)  # resumes over the breakpoint it sits on
    assert stop.kind is StopKind.BREAKPOINT and m.read_register("pc") == 0x08000482
    assert (m.read_register("r4"), m.read_register("r5")) == (2, 1)
    m.remove_breakpoint(0x08000482)
    assert m.run(max_instructions=300).kind is StopKind.INSTRUCTION_LIMIT


def test_branch_to_self_is_skipped_like_a_sleep(alarm_build):
    m, alarm = alarm_build(
        """
reset:
  ldr r0, =0xE000E100
  movs r1, #8
  str r1, [r0]
  ldr r6, =0x40000000
  ldr r1, =50000000           @ 50 ms
  str r1, [r6]
  b .
alarm_irq:
  movs r1, #1
  str r1, [r6, #8]
  ldr r4, =0x20000000
  str r1, [r4]
  bx lr
""",
        irqs={3: "alarm_irq"},
    )
    stop = m.run(max_ns=100_000_000)
    assert stop.kind is StopKind.TIMEOUT and m.virtual_time_ns == 100_000_000
    assert m.read_u32(RESULTS) == 1  # the interrupt was taken out of the idle loop
    assert m.instructions_executed < 3 * DEFAULT_MAX_SLICE  # one slice per visit, not 6.4 million
    stop = m.run()
    assert stop.kind is StopKind.SLEEPING and "branch-to-self" in stop.message


SLEEP_ON_EXIT_PROGRAM = """
reset:
  ldr r0, =0xE000E100
  movs r1, #8
  str r1, [r0]
  ldr r0, =0xE000ED10
  movs r1, #2                 @ SCR.SLEEPONEXIT
  str r1, [r0]
  ldr r6, =0x40000000
  ldr r1, =1000000
  str r1, [r6]
  wfi
1: adds r5, #1                @ never reached: the core sleeps again after each handler
  b 1b
alarm_irq:
  ldr r6, =0x40000000
  movs r1, #1
  str r1, [r6, #8]
  ldr r1, =1000000
  str r1, [r6]                @ next alarm in 1 ms
  ldr r4, =0x20000000
  ldr r1, [r4]
  adds r1, #1
  str r1, [r4]
  bx lr
"""


def test_sleep_on_exit_keeps_thread_code_asleep(alarm_build):
    m, alarm = alarm_build(SLEEP_ON_EXIT_PROGRAM, irqs={3: "alarm_irq"})
    stop = m.run(max_ns=10_500_000)
    assert stop.kind is StopKind.TIMEOUT
    assert m.read_u32(RESULTS) == 10
    assert m.read_register("r5") == 0
    assert m.instructions_executed < 200


def test_reset_requested_by_an_event_happens_before_more_code_runs(alarm_build):
    m, alarm = alarm_build("reset:\n1: adds r4, #1\n  b 1b\n")
    m.schedule(1_000, lambda: m.request_system_reset("watchdog"), "iwdg")
    stop = m.run(max_ns=2_000)
    assert stop.kind is StopKind.TIMEOUT and m.reset_count == 1 and alarm.resets == 2
    cycles_after_reset = (2_000 - 1_000) * 64 // 1000
    assert abs(m.read_register("r4") - cycles_after_reset // 2) <= 2  # r4 restarted from 0 at 1 us


def test_reset_without_a_vector_table_is_a_clear_error():
    from h743sim.engine import EngineError, Machine

    m = Machine()
    with pytest.raises(EngineError, match="no readable vector table at boot address 0x08000000"):
        m.reset()


WFE_PROGRAM = """
reset:
  ldr r0, =0xE000E100
  movs r1, #8                 @ enable IRQ3
  str r1, [r0]
  ldr r4, =0x20000000
  movs r5, #0
1: svc #0                     @ the exception return sets the event register:
  wfe                         @ so this WFE falls through
  adds r5, #1
  cmp r5, #4
  bne 1b
  str r5, [r4]
  ldr r6, =0x40000000
  ldr r1, =1000000            @ alarm in 1 ms
  str r1, [r6]
  wfe                         @ event register clear: sleeps until the interrupt
  ldr r1, =0x600D
  str r1, [r4, #8]
2: wfi
  b 2b
alarm_irq:
  ldr r6, =0x40000000
  movs r1, #1
  str r1, [r6, #8]
  str r1, [r4, #4]
  bx lr
svc_handler:
  bx lr
"""


def test_wfe_consumes_the_event_register_or_sleeps_until_an_interrupt(alarm_build):
    m, alarm = alarm_build(WFE_PROGRAM, irqs={3: "alarm_irq"}, handlers={"svc": "svc_handler"})
    stop = m.run(until=lambda: m.read_u32(RESULTS + 8) != 0, max_ns=10_000_000)
    assert stop.kind is StopKind.CONDITION
    assert m.read_u32(RESULTS) == 4 and m.read_u32(RESULTS + 4) == 1
    # the WFE slept through the millisecond instead of executing it
    assert m.instructions_executed < 60 and m.idle_cycles >= 63_000


def test_wfe_is_a_hint_wherever_a_slice_starts(alarm_build):
    """Slices cut the loop at different places: the same WFE starts one slice and is the second
    instruction of another; it stays a hint (was taken for an undefined instruction)."""
    m, _alarm = alarm_build(WFE_PROGRAM, irqs={3: "alarm_irq"}, handlers={"svc": "svc_handler"})
    for budget in (6, 1, 1, 2, 1, 1, 3, 2, 2, 1, 4, 1, 1, 2):
        stop = m.run(max_instructions=budget)
        assert stop.kind is StopKind.INSTRUCTION_LIMIT, stop.message
    stop = m.run(until=lambda: m.read_u32(RESULTS + 8) != 0, max_ns=10_000_000)
    assert stop.kind is StopKind.CONDITION, stop.message
    assert m.read_u32(RESULTS) == 4


def test_instruction_budget_ends_a_branch_to_self_while_timers_run(build):
    """With only an instruction budget, ``b .`` executes (it is not skipped like a sleep), so the
    budget ends the run even while a timer keeps scheduling events (was an endless host loop)."""
    m = build(
        """
reset:
  ldr r0, =0xE000E010
  ldr r1, =999
  str r1, [r0, #4]
  movs r1, #5                 @ SysTick counting, no interrupt: an event every 1000 cycles
  str r1, [r0]
  b .
"""
    )
    before = m.instructions_executed
    stop = m.run(max_instructions=50_000)
    assert stop.kind is StopKind.INSTRUCTION_LIMIT
    assert m.instructions_executed == before + 50_000
