"""exc_test.elf: Cortex-M7 exception behaviour checked by firmware on the board (firmware/exc_test).

Each firmware test prints `TEST <name> PASS|FAIL <details>`; the run ends with a deliberate read
of 0x9000_0000 while QUADSPI is disabled, which must be a precise bus fault escalated to HardFault
(BusFault is not enabled in SHCSR), reported as `HARDFAULT CFSR=.. HFSR=.. BFAR=..`.
"""

from __future__ import annotations

import math
import re
import struct

import pytest

# ARMv7-M B3.2.15 / B3.2.16 / B3.2.18
CFSR_PRECISERR = 1 << 9
CFSR_BFARVALID = 1 << 15
HFSR_FORCED = 1 << 30
QSPI_WINDOW = 0x90000000

FIRMWARE_TESTS = (
    "svc",
    "primask",
    "basepri",
    "nested_preemption",
    "tail_chain",
    "fp_context",
    "vtor_internal",
    "vtor_qspi",
    "bad_access",
)


@pytest.fixture(scope="module")
def exc_run(firmware):
    """One run of exc_test to EXC_TEST DONE; the tests below read its UART log and final state."""
    from h743sim.board import Board

    board = Board()
    board.load_firmware(firmware / "exc_test.elf")
    board.power_on()
    board.wait_for_line(r"^EXC_TEST DONE$", timeout_s=5)
    return board


def _texts(board) -> list[str]:
    return [t for _, t in board.uart.lines]


def _result(board, name: str) -> str:
    lines = [t for t in _texts(board) if t.startswith(f"TEST {name} ")]
    assert len(lines) == 1, f"expected one 'TEST {name}' line, got {lines}; log:\n" + "\n".join(_texts(board))
    return lines[0]


def test_run_order_and_no_unexpected_fault(exc_run):
    texts = _texts(exc_run)
    assert texts[0] == "EXC_TEST start"
    assert texts[-1] == "EXC_TEST DONE"
    assert [t.split()[1] for t in texts if t.startswith("TEST ")] == list(FIRMWARE_TESTS)
    assert not any("unexpected_fault" in t for t in texts)
    assert sum(t.startswith("HARDFAULT CFSR=") for t in texts) == 1


@pytest.mark.parametrize("name", FIRMWARE_TESTS)
def test_firmware_check_passes(exc_run, name):
    line = _result(exc_run, name)
    assert line.split()[2] == "PASS", line


def test_svc_number_and_return_value(exc_run):
    line = _result(exc_run, "svc")
    assert "number=42 calls=1 r0=12 " in line, line


def test_nested_preemption_order(exc_run):
    line = _result(exc_run, "nested_preemption")
    # IRQ10 (low) pended IRQ11 (high), which ran inside it with IRQ10 still active; IPSR = 16 + 11
    assert "order=LHl " in line and "low_active_in_high=1 " in line and "ipsr_in_high=27" in line, line


def test_tail_chain_runs_both_without_thread_code_between(exc_run):
    line = _result(exc_run, "tail_chain")
    assert "order=AB " in line and "marker_in_a=0 marker_in_b=0" in line, line


def test_primask_and_basepri_release_the_pending_interrupt_at_once(exc_run):
    assert "masked_runs=0 pending=1 after_cpsie=1" in _result(exc_run, "primask")
    line = _result(exc_run, "basepri")
    assert "low_masked_runs=0 low_pending=1 high_runs=1 low_after_unmask=1" in line, line


def test_fp_context_values_compared(exc_run):
    line = _result(exc_run, "fp_context")
    m = re.search(r"ref=([0-9a-f]{16}) irq=([0-9a-f]{16}) isr_runs=(\d+)", line)
    assert m, line
    ref, got, runs = m[1], m[2], int(m[3])
    assert got == ref  # bit-identical result with FP-using interrupts landing in the computation
    value = struct.unpack(">d", bytes.fromhex(ref))[0]
    assert math.isfinite(value) and value != 0.0
    assert runs >= 10  # SysTick at 10 kHz really interrupted it


def test_vtor_relocation_to_flash_and_qspi(exc_run):
    internal = _result(exc_run, "vtor_internal")
    assert "vtor=08020000 handler=2 after_restore=1" in internal, internal
    qspi = _result(exc_run, "vtor_qspi")
    assert "vtor=90000000 handler=3" in qspi, qspi


def test_bad_access_is_a_precise_bus_fault_escalated_to_hardfault(exc_run):
    texts = _texts(exc_run)
    fault = next(t for t in texts if t.startswith("HARDFAULT CFSR="))
    m = re.fullmatch(r"HARDFAULT CFSR=([0-9a-f]{8}) HFSR=([0-9a-f]{8}) BFAR=([0-9a-f]{8})", fault)
    assert m, fault
    cfsr, hfsr, bfar = (int(x, 16) for x in m.groups())
    assert cfsr == CFSR_PRECISERR | CFSR_BFARVALID  # nothing else: no MemManage/UsageFault bits
    assert hfsr == HFSR_FORCED
    assert bfar == QSPI_WINDOW
    # the engine's view agrees with what the firmware read
    state = exc_run.machine.cpu_state()
    assert (state["cfsr"], state["hfsr"], state["bfar"]) == (cfsr, hfsr, bfar)


def test_stacked_pc_is_the_faulting_load(exc_run):
    frame = next(t for t in _texts(exc_run) if t.startswith("HARDFAULT PC="))
    m = re.fullmatch(r"HARDFAULT PC=([0-9a-f]{8}) LR=([0-9a-f]{8})", frame)
    assert m, frame
    pc = int(m[1], 16)
    assert 0x08000000 <= pc < 0x08100000 and pc % 2 == 0
    half = int.from_bytes(exc_run.machine.read_memory(pc, 2), "little")
    word = half | int.from_bytes(exc_run.machine.read_memory(pc + 2, 2), "little") << 16
    # a precise fault stacks the address of the load itself: LDR (immediate) T1 or T3 (LDR.W)
    assert (half & 0xF800) == 0x6800 or (word & 0xFFF0) == 0xF8D0, f"{pc:#x}: {word:#010x}"


def test_after_done_the_core_sleeps_in_the_handler(exc_run):
    m = exc_run.machine
    before = m.instructions_executed
    exc_run.run_for(0.1)
    assert m.sleeping
    assert m.instructions_executed - before < 100
    assert m.ipsr() == 3  # still in the HardFault handler's WFI loop
