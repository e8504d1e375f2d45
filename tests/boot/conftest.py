"""Firmware-level tests: the real images from `make -C firmware` booted on the virtual board."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from h743sim.board import Board

REPO = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO / "firmware"
BUILD_DIR = FIRMWARE_DIR / "build"


@pytest.fixture(scope="module")
def firmware() -> Path:
    """The firmware build directory, freshly made (make only rebuilds what changed)."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not on PATH: the firmware under test cannot be built")
    proc = subprocess.run(["make", "-C", str(FIRMWARE_DIR)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"make -C firmware failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return BUILD_DIR


@pytest.fixture
def boot(firmware: Path) -> Callable[..., Board]:
    """boot("bootloader", "app_qspi", k2=False) -> a powered-on Board with those ELFs loaded."""

    def _boot(*images: str, k2: bool = False) -> Board:
        board = Board()
        for name in images:
            board.load_firmware(firmware / f"{name}.elf")
        if k2:
            board.k2.press()
        board.power_on()
        return board

    return _boot


def _run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "h743sim.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """cli("run", "--elf", ...) runs `h743sim` as a separate process: exit status, stdout and
    stderr exactly as a user sees them."""
    return _run_cli


def _elf_symbol(path: Path, name: str) -> int:
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        matches = symtab.get_symbol_by_name(name) if symtab is not None else None
        if not matches:
            raise KeyError(f"{path.name}: no symbol {name!r}")
        return int(matches[0]["st_value"])


@pytest.fixture
def elf_symbol() -> Callable[[Path, str], int]:
    """elf_symbol(path, name): address of a symbol (static ones included) in an ELF."""
    return _elf_symbol
