"""Helpers shared by the storage integration tests (loaded by conftest.py as ``storage_helpers``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from h743sim.board import Board
from h743sim.dfu_session import DfuSession

REPO = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO / "firmware"
BUILD_DIR = FIRMWARE_DIR / "build"

QSPI_BASE = 0x90000000
FLASH_BASE = 0x08000000
QSPI_SECTOR = 4096
FLASH_SECTOR = 0x20000
ERASED = 0xFF
QSPI_ENDURANCE = 100_000  # W25Q64 default (DESIGN.md)
FLASH_ENDURANCE = 10_000  # STM32H743 internal flash


def lcg_pattern(length: int, seed: int) -> bytes:
    """storage_test's make_pattern(): x = x * 1103515245 + 12345 (mod 2^32), byte = bits 16..23."""
    out = bytearray()
    x = seed
    for _ in range(length):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append((x >> 16) & 0xFF)
    return bytes(out)


def erased(length: int) -> bytes:
    return bytes([ERASED]) * length


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`h743sim ARGS...` in a child process (the real entry point, exit code and stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "h743sim.cli", *map(str, args)], capture_output=True, text=True, cwd=REPO
    )


def new_state(path: Path, *images: Path, seed: int = 0) -> Path:
    """A fresh state directory holding ``images`` as a factory programmer would write them."""
    board = Board(state_dir=path, timing="fast", seed=seed)
    for image in images:
        board.load_firmware(image)
    board.save()
    return path


def meta_counts(state: Path, memory: str) -> list[int]:
    """Per-sector erase counts of ``memory`` ("qspi" or "flash") as saved in meta.json."""
    meta = json.loads((state / "meta.json").read_text())
    return meta["memories"][memory]["metadata"]["erase_counts"]


def boot_to_dfu(board: Board, *, hold_k2: bool = True) -> DfuSession:
    """Power on (K2 held unless told otherwise), wait for DFU mode, open a DfuSe session."""
    if hold_k2:
        board.k2.press()
    board.power_on()
    board.wait_for_line(r"^DFU ready$", 5)
    return DfuSession(board)


def uart_lines(board: Board) -> list[str]:
    return [text for _t, text in board.uart.lines]
