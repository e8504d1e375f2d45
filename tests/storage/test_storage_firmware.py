"""storage_test on the virtual board (datasheet timing): its UART report, then the bytes it left."""

from __future__ import annotations

import re
from pathlib import Path

from storage_helpers import erased, lcg_pattern, meta_counts

from h743sim.board import Board
from peripherals.host import NS_PER_MS

STEPS = [
    "w25q_init",
    "jedec",
    "quad_enable",
    "qspi_erase",
    "qspi_program",
    "qspi_mapped_read",
    "xip_call",
    "xip_reprogram",
    "iflash_erase",
    "iflash_program",
    "iflash_misuse",
]
STEP_RE = re.compile(r"^STEP (\S+) (OK|FAIL)\b(.*)$")

# storage_test/main.c constants
QSPI_TEST_ADDR, QSPI_TEST_LEN, QSPI_SEED = 0x80, 300, 0x51
XIP_OFFSET = 0x1000
IFLASH_OFFSET, IFLASH_LEN, IFLASH_SEED = 0x20000, 256 + 20, 0xF1A5
FLASH_WORD = 32
# xip_template_b, encoded by hand (ARMv7-M Thumb-2): movw r0, #0x2222 / movt r0, #0x5a5a / bx lr
XIP_TEMPLATE_B = bytes.fromhex("42f22220c5f65a207047")

# Datasheet typical times the run must have spent in virtual time at least: three 4 KiB W25Q64
# erases (sector 0 once, sector 1 twice) at 45 ms and one 128 KiB internal sector erase at 1 s.
MIN_VIRTUAL_NS = 3 * 45 * NS_PER_MS + 1000 * NS_PER_MS


def run_storage_test(state: Path, timing: str) -> tuple[Board, list[str]]:
    board = Board(state_dir=state, timing=timing)
    board.power_on()
    board.wait_for_line(r"^STORAGE_TEST DONE", 10)
    return board, [t for _ns, t in board.uart.lines]


def test_storage_test_reports_every_step_ok_and_leaves_exactly_its_bytes(
    firmware: Path, tmp_path: Path
) -> None:
    state = tmp_path / "board"
    board = Board(state_dir=state, timing="datasheet")
    board.load_firmware(firmware / "storage_test.elf")
    board.power_on()
    done = board.wait_for_line(r"^STORAGE_TEST DONE", 10)
    lines = [t for _ns, t in board.uart.lines]

    steps = [m.groups() for m in map(STEP_RE.match, lines) if m]
    assert [name for name, _v, _d in steps] == STEPS, lines
    assert [name for name, verdict, _d in steps if verdict != "OK"] == [], lines
    assert done == "STORAGE_TEST DONE failures=0"
    detail = {name: rest for name, _v, rest in steps}
    assert "id=ef4017" in detail["jedec"]  # W25Q64JV JEDEC ID EF 40 17
    assert "sr2=02" in detail["quad_enable"]
    # the same XIP address runs the first routine, then the re-programmed one
    assert "result=a5a51111" in detail["xip_call"]
    assert "result=5a5a2222" in detail["xip_reprogram"]
    assert "SR=00040000" in detail["iflash_misuse"]  # PGSERR for a write with PG=0

    # datasheet timing: erases took their typical time in virtual time, not less
    done_ns = board.uart.lines[-1][0]
    assert done_ns >= MIN_VIRTUAL_NS, f"run ended at {done_ns / NS_PER_MS:.1f} ms of virtual time"

    board.save()
    qspi = (state / "qspi.bin").read_bytes()
    flash = (state / "flash.bin").read_bytes()
    # W25Q64 sector 0: erased, then 300 pattern bytes across the page boundary at 0x100
    end = QSPI_TEST_ADDR + QSPI_TEST_LEN
    assert qspi[:QSPI_TEST_ADDR] == erased(QSPI_TEST_ADDR)
    assert qspi[QSPI_TEST_ADDR:end] == lcg_pattern(QSPI_TEST_LEN, QSPI_SEED)
    assert qspi[end:XIP_OFFSET] == erased(XIP_OFFSET - end)
    # sector 1: the second routine only (the first was erased with the sector)
    code_end = XIP_OFFSET + len(XIP_TEMPLATE_B)
    assert qspi[XIP_OFFSET:code_end] == XIP_TEMPLATE_B
    assert qspi[code_end:] == erased(len(qspi) - code_end)
    # internal flash sector 1: 8 full flash words + a 20-byte FW word padded with 0xFF, rest erased
    words_end = IFLASH_OFFSET + (IFLASH_LEN + FLASH_WORD - 1) // FLASH_WORD * FLASH_WORD
    assert flash[IFLASH_OFFSET : IFLASH_OFFSET + IFLASH_LEN] == lcg_pattern(IFLASH_LEN, IFLASH_SEED)
    assert flash[IFLASH_OFFSET + IFLASH_LEN : words_end] == erased(words_end - IFLASH_OFFSET - IFLASH_LEN)
    assert flash[words_end : 2 * IFLASH_OFFSET] == erased(2 * IFLASH_OFFSET - words_end)
    # erase counts: W25Q64 sector 0 once, sector 1 twice; internal sector 1 once
    q_counts, f_counts = meta_counts(state, "qspi"), meta_counts(state, "flash")
    assert (q_counts[0], q_counts[1], sum(q_counts)) == (1, 2, 3)
    assert f_counts == [0, 1] + [0] * 14

    # a later power-on of the same state directory: the counts go on from the saved ones
    board2, lines2 = run_storage_test(state, "fast")
    assert lines2[-1] == "STORAGE_TEST DONE failures=0", lines2
    board2.save()
    q_counts, f_counts = meta_counts(state, "qspi"), meta_counts(state, "flash")
    assert (q_counts[0], q_counts[1], sum(q_counts)) == (2, 4, 6)
    assert f_counts == [0, 2] + [0] * 14
    assert (state / "qspi.bin").read_bytes() == qspi  # same program, same bytes
