"""End-to-end fixtures: the real bootloader and applications on the virtual board, driven over USB.

The firmware is built once per test module with ``make -C firmware`` (a no-op when it is up to date);
the tests are skipped only when the Arm toolchain is missing. A build failure fails the tests.

Helpers reach the tests through fixtures (pytest runs in importlib mode, so test folders are not
importable): ``boot_dfu(...)`` gives a :class:`DfuBoard` (a board in DFU mode with K2 held, a pyusb
:class:`~h743sim.dfu_session.DfuSession`, raw DFU requests and flash snapshots).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from h743sim.board import Board
from h743sim.dfu_session import DfuSession
from h743sim.dfuse.client import (
    DFU_ABORT,
    DFU_CLRSTATUS,
    DFU_DNLOAD,
    DFU_GETSTATE,
    DFU_GETSTATUS,
    DFU_UPLOAD,
    DfuState,
    DfuStatusReport,
)
from h743sim.usb.link import Setup
from peripherals.host import NS_PER_MS

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
BUILD = FIRMWARE / "build"

CLASS_OUT, CLASS_IN = 0x21, 0xA1  # class request to / from interface 0
SET_INTERFACE = 11
DFU_INTERFACE = 0


@pytest.fixture(scope="module")
def firmware() -> Path:
    """The firmware build directory, built (or brought up to date) once per module."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed: the bootloader and apps cannot be built")
    out = subprocess.run(["make", "-C", str(FIRMWARE)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"make -C firmware failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    for name in ("bootloader", "app_qspi", "app_internal"):
        assert (BUILD / f"{name}.elf").exists(), f"make -C firmware did not produce {name}.elf"
    return BUILD


class RawDfu:
    """DFU class requests sent as bare control transfers on the board's USB link.

    For requests a well-behaved client refuses to send (wrong state, bad block numbers, oversized
    blocks). A STALL raises :class:`h743sim.usb.link.Stall`.
    """

    def __init__(self, board: Board) -> None:
        self.board = board
        self.link = board.usb

    def out(self, request: int, value: int = 0, data: bytes = b"", timeout_ms: int = 5000) -> None:
        self.link.control_transfer(
            Setup(CLASS_OUT, request, value, DFU_INTERFACE, len(data)), data, timeout_ms
        )

    def into(self, request: int, value: int, length: int, timeout_ms: int = 5000) -> bytes:
        return self.link.control_transfer(
            Setup(CLASS_IN, request, value, DFU_INTERFACE, length), b"", timeout_ms
        )

    def dnload(self, block: int, data: bytes) -> None:
        self.out(DFU_DNLOAD, block, data)

    def upload(self, block: int, length: int) -> bytes:
        return self.into(DFU_UPLOAD, block, length)

    def status(self, timeout_ms: int = 30_000) -> DfuStatusReport:
        return DfuStatusReport.parse(self.into(DFU_GETSTATUS, 0, 6, timeout_ms))

    def state(self) -> int:
        (value,) = self.into(DFU_GETSTATE, 0, 1)
        return value

    def clrstatus(self) -> None:
        self.out(DFU_CLRSTATUS)

    def abort(self) -> None:
        self.out(DFU_ABORT)

    def set_alt(self, alt: int) -> None:
        self.link.control_transfer(Setup(0x01, SET_INTERFACE, alt, DFU_INTERFACE, 0))

    def settle(self) -> DfuStatusReport:
        """GETSTATUS until the device is no longer busy, waiting bwPollTimeout (virtual) each time."""
        report = self.status()
        for _ in range(100):
            if report.state not in (DfuState.DFU_DNBUSY, DfuState.DFU_DNLOAD_SYNC) or report.status:
                return report
            self.board.run_for_ns(report.poll_timeout_ms * NS_PER_MS)
            report = self.status()
        raise AssertionError(f"device stayed busy: {report}")

    def command(self, payload: bytes) -> DfuStatusReport:
        """A DfuSe block-0 command, followed by GETSTATUS until it has run."""
        self.dnload(0, payload)
        return self.settle()

    def set_pointer(self, address: int) -> DfuStatusReport:
        return self.command(b"\x21" + address.to_bytes(4, "little"))


class DfuBoard:
    """A board running the bootloader in DFU mode (K2 held), with the host-side tools attached."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.session = DfuSession(board)  # enumerates and configures the device through pyusb
        self.client = self.session.client
        self.raw = RawDfu(board)

    def snapshot(self) -> tuple[bytes, bytes]:
        """Copies of both flash arrays (internal, QSPI) to compare after a request."""
        return bytes(self.board.flash.array), bytes(self.board.qspi_flash.array)

    def assert_untouched(self, before: tuple[bytes, bytes]) -> None:
        flash, qspi = self.snapshot()
        for name, old, new in (("internal flash", before[0], flash), ("QSPI flash", before[1], qspi)):
            if old != new:
                first = next(i for i in range(len(old)) if old[i] != new[i])
                raise AssertionError(
                    f"{name} changed at offset {first:#x}: {old[first]:#04x} -> {new[first]:#04x}"
                )

    def lines(self) -> list[str]:
        return [text for _, text in self.board.uart.lines]

    def expect_lines(self, *texts: str, timeout_s: float = 1.0) -> None:
        """Run until each of ``texts`` has been printed as a whole line, in this order (the main
        loop prints its DFU log lines at 115200 baud, after the request that caused them)."""
        for text in texts:
            self.board.wait_for_line(f"^{re.escape(text)}$", timeout_s)


def new_board(firmware: Path, *, timing: str = "fast", state_dir: Path | None = None) -> Board:
    board = Board(timing=timing, state_dir=state_dir)
    board.load_firmware(firmware / "bootloader.elf")
    return board


@pytest.fixture
def make_board(firmware: Path) -> Callable[..., Board]:
    """``make_board(timing="fast", state_dir=None)``: a board with the bootloader in sector 0, off."""

    def make(*, timing: str = "fast", state_dir: Path | None = None) -> Board:
        return new_board(firmware, timing=timing, state_dir=state_dir)

    return make


@pytest.fixture
def boot_dfu(firmware: Path) -> Callable[..., DfuBoard]:
    """``boot_dfu(timing="fast", board=None)``: power on with K2 held, wait for ``DFU ready``."""

    def boot(*, timing: str = "fast", board: Board | None = None) -> DfuBoard:
        b = board if board is not None else new_board(firmware, timing=timing)
        b.k2.press()
        b.power_on()
        b.wait_for_line(r"^DFU ready$", 5)
        return DfuBoard(b)

    return boot
