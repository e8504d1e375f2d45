"""hello.elf: clock tree, USART1, SysTick and WFI on the virtual board, in virtual time."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from peripherals.host import NS_PER_MS

BAUD = 115200
BYTE_NS = 10 * 1_000_000_000 // BAUD  # start + 8 data + stop bits
TICK_PERIOD_NS = 100 * NS_PER_MS
SYST_CSR, SYST_RVR = 0xE000E010, 0xE000E014
SYST_CSR_ENABLE = 1 << 0
CORE_HZ = 400_000_000  # DevEBox clock tree: SYSCLK 400 MHz from PLL1
TICK_HZ = 1000  # hello/main.c

BANNER = re.compile(r"^hello from STM32H743 DevEBox \(virtual\), SYSCLK (\d+) Hz, HCLK (\d+) Hz$")
TICK = re.compile(r"^tick (\d+)$")


@pytest.fixture
def hello(boot):
    board = boot("hello")
    board.wait_for_line(r"^hello done$", timeout_s=2)
    return board


def test_banner_ticks_and_done_in_order(hello):
    texts = [t for _, t in hello.uart.lines]
    assert len(texts) == 7, texts
    banner = BANNER.match(texts[0])
    assert banner, texts[0]
    assert (int(banner[1]), int(banner[2])) == (400_000_000, 200_000_000)
    assert all(TICK.match(t) for t in texts[1:6]), texts
    assert texts[6] == "hello done"
    assert hello.uart.partial == ""
    assert hello.led.toggles() == 5  # one LED toggle per tick line


def test_tick_lines_are_100_ms_apart_in_virtual_time(hello):
    ticks = [(ns, int(TICK.match(t)[1])) for ns, t in hello.uart.lines if TICK.match(t)]
    stamps = [ns for ns, _ in ticks]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    # the same code path runs for every line: the gap is the tick period to well under a UART byte
    assert all(abs(g - TICK_PERIOD_NS) < BYTE_NS // 10 for g in gaps), gaps
    values = [ms for _, ms in ticks]
    assert [b - a for a, b in zip(values, values[1:], strict=False)] == [100] * 4


def test_systick_count_follows_virtual_time(hello, firmware, elf_symbol):
    m = hello.machine
    # SysTick was programmed for 1 kHz from the 400 MHz core clock
    assert m.read_u32(SYST_RVR) == CORE_HZ // TICK_HZ - 1
    # each "tick N" line ends N ms after SysTick started plus the transmission of the line itself
    offsets = {ns - int(TICK.match(t)[1]) * NS_PER_MS for ns, t in hello.uart.lines if TICK.match(t)}
    line_ns = len("tick 106\n") * BYTE_NS
    assert all(line_ns <= off < line_ns + 2 * NS_PER_MS for off in offsets), offsets
    assert max(offsets) - min(offsets) < BYTE_NS // 10
    # the handler's own count agrees with the virtual clock at the end of the run
    ticks = m.read_u32(elf_symbol(firmware / "hello.elf", "s_ticks"))
    started_ns = min(offsets) - line_ns  # when SysTick began counting (within a UART byte or so)
    expected = (m.now_ns() - started_ns) / NS_PER_MS
    assert abs(ticks - expected) <= 1.5, (ticks, expected)


def test_after_done_systick_is_off_and_the_core_sleeps(hello, firmware, elf_symbol):
    m = hello.machine
    hello.run_for(0.05)  # lets the firmware reach systick_stop() and its WFI loop
    ticks_addr = elf_symbol(firmware / "hello.elf", "s_ticks")
    ticks, instructions, start_ns = m.read_u32(ticks_addr), m.instructions_executed, m.now_ns()
    hello.run_for(0.3)
    assert m.now_ns() - start_ns == 300 * NS_PER_MS
    assert m.read_u32(SYST_CSR) & SYST_CSR_ENABLE == 0
    assert m.read_u32(ticks_addr) == ticks  # no more SysTick interrupts
    assert m.sleeping
    assert m.instructions_executed - instructions < 100  # asleep in WFI, not spinning
    assert len(hello.uart.lines) == 7


_RUN_ONCE = """
import json
from h743sim.board import Board
b = Board()
b.load_firmware({elf!r})
b.power_on()
b.wait_for_line("^hello done$", 2)
print(json.dumps({{"lines": b.uart.lines, "instructions": b.machine.instructions_executed,
                  "now_ns": b.machine.now_ns()}}))
"""


def test_two_runs_are_identical(hello, firmware):
    """Same UART bytes at the same virtual times and the same instruction count, also in another
    process with another hash seed (nothing may depend on set/dict order of objects or wall time)."""
    env = dict(os.environ, PYTHONHASHSEED="12345")
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_ONCE.format(elf=str(firmware / "hello.elf"))],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [tuple(x) for x in other["lines"]] == hello.uart.lines
    assert other["instructions"] == hello.machine.instructions_executed
    assert other["now_ns"] == hello.machine.now_ns()
