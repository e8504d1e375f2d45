"""One virtual board as the H743Board Robot library drives it: engine choice, USB host, DfuSe client.

The keyword library (``H743Board.py``) stays thin; what the keywords do to the board lives here, on
top of the board API of :class:`h743sim.board.Board` (the embedded engine). ``ENGINE=renode`` opens
:class:`h743sim.renode.board.RenodeBoard` instead and uses it through the same API; what that adapter
does not provide yet is named in the error, never imitated.

Additions over ``Board`` (small, kept here rather than in the board):

* power cycle: save the images to the state directory and power on a new board built from them;
* a pyusb host (``VirtualBackend`` over ``board.usb``) and a :class:`DfuseClient` whose waits
  advance the board's virtual time, reopened after every reset;
* raw DFU requests that bypass the client's own checks, to show what the *device* does with bad
  requests (its error status, or a STALL);
* memory comparison, snapshots, wear and stuck-bit injection, power-cut arming, LED timing.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import usb.core

from h743sim.dfuse.client import (
    DFU_GETSTATUS,
    REQUEST_NAMES,
    DfuseClient,
    DfuState,
    DfuStatus,
    DfuStatusReport,
    state_name,
    status_name,
)
from h743sim.dfuse.dfufile import DfuElement, DfuFile, DfuTarget
from h743sim.dfuse.images import Region, load_image, plan_download
from h743sim.errors import UserError
from h743sim.usb.pyusb_backend import VirtualBackend
from peripherals.power_cut import PowerCutPlan

ENGINES = ("embedded", "renode")
TIMINGS = ("datasheet", "fast")
ST_VENDOR_ID, DFU_PRODUCT_ID = 0x0483, 0xDF11
CLASS_OUT, CLASS_IN = 0x21, 0xA1  # class request to the DFU interface, per direction
DFU_INTERFACE = 0
CMD_SET_ADDRESS, CMD_ERASE = 0x21, 0x41
FIRST_DATA_BLOCK = 2
RAW_TIMEOUT_MS = 25_000  # longer than the slowest job (W25Q64 chip erase, 20 s typical)
# What the keywords use of a board; RenodeBoard must offer the same before its suites can run.
REQUIRED_BOARD_API = (
    "power_on",
    "reset",
    "run_for",
    "wait_for_line",
    "describe_failure",
    "save",
    "load_firmware",
    "uart",
    "usb",
    "usart",
    "k2",
    "led",
    "flash",
    "qspi_flash",
    "power_cut",
    "machine",
    "powered",
)
# Requests that carry data to the device (OUT) or ask for data (IN).
IN_REQUESTS = {"DFU_UPLOAD", "DFU_GETSTATUS", "DFU_GETSTATE"}
REQUEST_CODES = {name: code for code, name in REQUEST_NAMES.items()}


class BoardFailure(AssertionError):
    """A check or an operation failed; the message already holds the board's state."""

    ROBOT_SUPPRESS_NAME = True


class EngineUnavailable(Exception):
    """The chosen engine cannot run here; the message is the one line saying what is missing."""


@dataclass(frozen=True)
class Memory:
    """One of the board's two flash memories as the keywords name it."""

    key: str
    name: str
    base: int
    size: int
    sector_size: int
    attribute: str  # board attribute holding the model
    absolute_fault_addresses: bool  # inject_stuck_bit takes a bus address (else an array offset)

    @property
    def end(self) -> int:
        return self.base + self.size

    def check_range(self, address: int, length: int = 1) -> int:
        """Offset of ``address`` in the memory; fails when the range leaves it."""
        if length < 0 or not (self.base <= address and address + length <= self.end):
            raise BoardFailure(
                f"0x{address:08X} (+{length} bytes) is outside {self.name} 0x{self.base:08X}..0x{self.end - 1:08X}"
            )
        return address - self.base

    def sector_of(self, address: int) -> int:
        return self.check_range(address) // self.sector_size


MEMORIES = {
    "internal": Memory("internal", "internal flash", 0x08000000, 2 * 1024 * 1024, 128 * 1024, "flash", True),
    "qspi": Memory("qspi", "QSPI flash", 0x90000000, 8 * 1024 * 1024, 4 * 1024, "qspi_flash", False),
}
MEMORY_ALIASES = {
    "internal": "internal",
    "internal flash": "internal",
    "flash": "internal",
    "qspi": "qspi",
    "qspi flash": "qspi",
    "w25q64": "qspi",
}


def memory_named(name: str) -> Memory:
    key = MEMORY_ALIASES.get(str(name).strip().lower())
    if key is None:
        raise BoardFailure(f"unknown memory {name!r}: use 'internal' (internal flash) or 'qspi' (W25Q64)")
    return MEMORIES[key]


def memory_at(address: int, length: int = 1) -> Memory:
    for mem in MEMORIES.values():
        if mem.base <= address and address + length <= mem.end:
            return mem
    raise BoardFailure(f"0x{address:08X} (+{length} bytes) is in neither internal flash nor QSPI flash")


def choose_engine(engine: str | None) -> str:
    """The engine asked for (argument, else the ENGINE environment variable, else 'embedded')."""
    chosen = (engine or os.environ.get("ENGINE") or "embedded").strip().lower()
    if chosen not in ENGINES:
        raise UserError(f"ENGINE must be one of {', '.join(ENGINES)}, got {chosen!r}")
    return chosen


def engine_missing_reason(engine: str) -> str | None:
    """One line saying why ``engine`` cannot run here, or None."""
    if engine == "renode":
        from h743sim.renode.availability import missing_reason

        return missing_reason()
    return None


def open_board(
    engine: str, *, state_dir: Path, timing: str, seed: int, echo: Callable[[str], None] | None
) -> Any:
    """A powered-off board on ``engine`` whose flash images come from ``state_dir``."""
    reason = engine_missing_reason(engine)
    if reason:
        raise EngineUnavailable(reason)
    plan = PowerCutPlan()
    if engine == "embedded":
        from h743sim.board import Board  # imports the engine: only when a board is really wanted

        return Board(state_dir=state_dir, timing=timing, seed=seed, power_cut=plan, echo=echo)
    from h743sim.renode.board import RenodeBoard

    wanted = {"state_dir": state_dir, "timing": timing, "seed": seed, "power_cut": plan, "echo": echo}
    accepted = inspect.signature(RenodeBoard).parameters
    board = RenodeBoard(**{k: v for k, v in wanted.items() if k in accepted})
    missing = [name for name in REQUIRED_BOARD_API if not hasattr(board, name)]
    if missing:
        raise UserError(
            "the Renode adapter (h743sim.renode.board.RenodeBoard) does not provide "
            f"{', '.join(missing)} yet; the H743Board keywords need the API of h743sim.board.Board"
        )
    return board


def parse_hex_bytes(text: str) -> bytes:
    """'41 00 00 02 08' or '0x41' or '4100000208' -> bytes."""
    cleaned = re.sub(r"0x", "", str(text), flags=re.IGNORECASE).replace(" ", "").replace(",", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise BoardFailure(f"{text!r} is not a byte string in hex (e.g. '41 00 00 02 08')") from None


def request_code(request: str | int) -> int:
    if isinstance(request, int):
        return request
    text = str(request).strip().upper()
    if not text.startswith("DFU_") and text.isalpha():
        text = "DFU_" + text
    if text in REQUEST_CODES:
        return REQUEST_CODES[text]
    try:
        return int(text, 0)
    except ValueError:
        raise BoardFailure(
            f"unknown DFU request {request!r}: use one of {', '.join(REQUEST_CODES)} or a number"
        ) from None


def build_dfuse_file(output: str | os.PathLike[str], specs: Sequence[str]) -> DfuFile:
    """Write a DfuSe file from ``alt:address:file`` (raw binary) or ``alt:file`` (ELF) items."""
    targets: dict[int, DfuTarget] = {}
    for spec in specs:
        parts = str(spec).split(":", 2)
        if len(parts) == 2:
            alt_text, address_text, path = parts[0], None, parts[1]
        elif len(parts) == 3:
            alt_text, address_text, path = parts
        else:
            raise BoardFailure(f"{spec!r}: give 'alt:address:file.bin' or 'alt:file.elf'")
        try:
            alt = int(alt_text, 0)
            address = int(address_text, 0) if address_text is not None else None
        except ValueError:
            raise BoardFailure(f"{spec!r}: the alternate setting and address must be numbers") from None
        target = targets.setdefault(alt, DfuTarget(alt, f"alt {alt}"))
        for region in load_image(path, address):
            target.elements.append(DfuElement(region.address, region.data))
    dfu = DfuFile(targets=[targets[a] for a in sorted(targets)])
    dfu.write(output)
    return dfu


class BoardSession:
    """One board (replaced by a new one at each power cycle) and the host side talking to it."""

    def __init__(
        self,
        engine: str,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        timing: str = "datasheet",
        seed: int = 0,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        if timing not in TIMINGS:
            raise BoardFailure(f"timing profile must be one of {', '.join(TIMINGS)}, got {timing!r}")
        self.engine = engine
        self.timing = timing
        self.seed = int(seed)
        self.echo = echo
        self._own_state_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="h743-board-"))
        self.board = open_board(engine, state_dir=self.state_dir, timing=timing, seed=self.seed, echo=echo)
        self.backend: VirtualBackend | None = None
        self.client: DfuseClient | None = None
        self.snapshots: dict[str, tuple[Memory, int, bytes]] = {}
        self.power_cycles = 0

    # -- life cycle ----------------------------------------------------------------------------
    def close(self) -> None:
        self.drop_usb()
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def failure(self, what: str) -> BoardFailure:
        """A failure whose message shows the recent UART lines and the CPU state."""
        if "last UART lines" in what:
            return BoardFailure(what)
        try:
            return BoardFailure(self.board.describe_failure(what))
        except Exception as exc:  # noqa: BLE001 - the state is a courtesy, the failure is the point
            return BoardFailure(f"{what} (board state unavailable: {exc})")

    def guarded(self, what: str, action: Callable[[], Any]) -> Any:
        """Run ``action``; user-level errors (bad file, DFU error, power cut) become failures."""
        try:
            return action()
        except BoardFailure:
            raise
        except (UserError, ValueError, usb.core.USBError) as exc:
            if not self.board.powered:
                self.drop_usb()
            raise self.failure(f"{what}: {exc}") from None

    def power_on(self) -> None:
        self.drop_usb()
        self.board.power_on()

    def reset(self) -> None:
        self.drop_usb()
        self.board.reset()

    def power_cycle(self) -> None:
        """Save the flash images, throw the board away and power on a new one built from them.

        The K2 button keeps its position (a held button stays held); an armed power cut is gone.
        """
        held = bool(getattr(self.board.k2, "pressed", False))
        self.drop_usb()
        self.board.save()
        self.board = open_board(
            self.engine, state_dir=self.state_dir, timing=self.timing, seed=self.seed, echo=self.echo
        )
        self.power_cycles += 1
        if held:
            self.board.k2.press()
        self.board.power_on()

    def run_for(self, seconds: float) -> None:
        self.guarded(f"running for {seconds} s", lambda: self.board.run_for(seconds))

    # -- USB host side -------------------------------------------------------------------------
    def drop_usb(self) -> None:
        """Forget the USB device (after a reset, a power cut or a leave it enumerates again)."""
        if self.client is not None:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001 - the device may be gone; nothing to release then
                pass
        self.client = None
        self.backend = None

    def _sleep_ms(self, ms: int) -> None:
        if ms > 0:
            self.board.run_for(ms / 1000)

    def dfu(self) -> DfuseClient:
        """The DfuSe client, opened on the first DFU keyword after (re)enumeration."""
        if self.client is not None:
            return self.client
        if self.backend is None:
            self.backend = VirtualBackend(self.board.usb)
        dev = self.guarded(
            "USB enumeration",
            lambda: usb.core.find(backend=self.backend, idVendor=ST_VENDOR_ID, idProduct=DFU_PRODUCT_ID),
        )
        if dev is None:
            why = self.backend.ports[0].last_error
            raise self.failure(
                "no DFU device 0483:DF11 on the virtual USB bus"
                + (
                    f" (enumeration failed: {why})"
                    if why
                    else " (the board is not connected to USB: wait for 'DFU ready' first)"
                )
            )
        self.client = self.guarded(
            "opening the DFU device", lambda: DfuseClient(dev, sleep_ms=self._sleep_ms)
        )
        return self.client

    def dfu_present(self) -> bool:
        """Is a DFU device on the bus now (enumerating it if it is new)?"""
        if self.client is not None and self.board.usb.is_attached():
            return True
        self.drop_usb()
        self.backend = VirtualBackend(self.board.usb)
        found = usb.core.find(backend=self.backend, idVendor=ST_VENDOR_ID, idProduct=DFU_PRODUCT_ID)
        return found is not None

    # -- DFU through the client (host checks first, errors cleared) ------------------------------
    def download(
        self, path: str, address: int | None, alt: int | None, verify: bool
    ) -> list[tuple[int, int, int]]:
        """Download a .dfu/.bin/.elf; returns (alt, address, length) of each part written."""
        client = self.dfu()

        def run() -> list[tuple[int, int, int]]:
            parts = plan_download(load_image(path, address), client.layouts, alt=alt)
            client.download_parts(parts, verify=verify)
            return [(p.alt, p.address, len(p.data)) for p in parts]

        return self.guarded(f"DFU download of {path}", run)

    def upload(self, address: int, length: int, alt: int | None) -> bytes:
        client = self.dfu()
        return self.guarded(
            f"DFU upload of {length} bytes at 0x{address:08X}",
            lambda: client.upload(address, length, alt=alt),
        )

    def erase(self, address: int | None, alt: int | None) -> None:
        client = self.dfu()
        if address is None:
            self.guarded("DFU mass erase", lambda: client.mass_erase(alt if alt is not None else 0))
        else:
            self.guarded(f"DFU erase at 0x{address:08X}", lambda: client.erase(address, alt=alt))

    def set_address(self, address: int, alt: int | None) -> None:
        client = self.dfu()
        self.guarded(f"DFU Set Address 0x{address:08X}", lambda: client.set_address(address, alt=alt))

    def leave(self, address: int | None, alt: int) -> DfuStatusReport | None:
        client = self.dfu()
        report = self.guarded("DFU leave", lambda: client.leave(address, alt=alt))
        self.drop_usb()  # the device detaches and resets; it enumerates anew if it comes back
        return report

    def status(self) -> DfuStatusReport:
        client = self.dfu()
        return self.guarded("DFU_GETSTATUS", client.get_status)

    def clear_status(self) -> None:
        client = self.dfu()
        self.guarded("DFU_CLRSTATUS", client.clear_status)

    def abort(self) -> None:
        client = self.dfu()
        self.guarded("DFU_ABORT", client.abort)

    # -- raw DFU requests (no host-side checks, errors left for the test to see) -----------------
    def _raw_prepare(self, alt: int) -> DfuseClient:
        client = self.dfu()
        self.guarded(f"selecting alt {alt}", lambda: client.select_alt(alt))
        self.guarded("bringing the device to dfuIDLE", client.recover_to_idle)
        return client

    def raw_request(self, request: int, value: int, data_or_length: bytes | int) -> bytes | None:
        """One class request to the DFU interface; None when the device STALLs it."""
        client = self.dfu()
        name = REQUEST_NAMES.get(request, f"request {request}")
        direction_in = isinstance(data_or_length, int)
        rtype = CLASS_IN if direction_in else CLASS_OUT

        def send() -> bytes | None:
            try:
                got = client.device.ctrl_transfer(
                    rtype, request, value, DFU_INTERFACE, data_or_length, RAW_TIMEOUT_MS
                )
            except usb.core.USBError as exc:
                if exc.errno == 32:  # EPIPE: the device stalled EP0
                    return None
                raise
            return bytes(got) if direction_in else b""

        return self.guarded(f"{name} (wValue {value})", send)

    def raw_status(self) -> DfuStatusReport:
        raw = self.raw_request(DFU_GETSTATUS, 0, 6)
        if raw is None:
            raise self.failure("the device stalled DFU_GETSTATUS")
        return DfuStatusReport.parse(raw)

    def _raw_dnload_and_wait(self, block: int, payload: bytes, what: str) -> DfuStatusReport:
        if self.raw_request(REQUEST_CODES["DFU_DNLOAD"], block, payload) is None:
            raise self.failure(f"{what}: the device stalled the DFU_DNLOAD")
        report = self.raw_status()
        for _ in range(10_000):
            if report.status != DfuStatus.OK or report.state not in (
                DfuState.DFU_DNBUSY,
                DfuState.DFU_DNLOAD_SYNC,
            ):
                break
            self.guarded(what, lambda r=report: self._sleep_ms(r.poll_timeout_ms))
            report = self.raw_status()
        return report

    def raw_command(self, payload: bytes, alt: int) -> DfuStatusReport:
        """A DfuSe block-0 command as it is, then GETSTATUS until the device is no longer busy."""
        self._raw_prepare(alt)
        return self._raw_dnload_and_wait(0, payload, f"DfuSe command {payload.hex(' ')}")

    def raw_write(self, address: int, data: bytes, alt: int) -> DfuStatusReport:
        """Set Address then data blocks from 2 (no erase), stopping at the first error status."""
        self._raw_prepare(alt)
        report = self._raw_dnload_and_wait(
            0, bytes([CMD_SET_ADDRESS]) + address.to_bytes(4, "little"), f"Set Address 0x{address:08X}"
        )
        size = self.dfu().transfer_size
        for i, offset in enumerate(range(0, len(data), size)):
            if report.status != DfuStatus.OK:
                break
            block = FIRST_DATA_BLOCK + i
            report = self._raw_dnload_and_wait(
                block, data[offset : offset + size], f"DFU_DNLOAD block {block}"
            )
        return report

    # -- memories -------------------------------------------------------------------------------
    def model(self, mem: Memory) -> Any:
        return getattr(self.board, mem.attribute)

    def read(self, mem: Memory, address: int, length: int) -> bytes:
        offset = mem.check_range(address, length)
        return bytes(self.model(mem).array[offset : offset + length])

    def regions_of(self, path: str, address: int | None) -> list[Region]:
        return self.guarded(f"reading {path}", lambda: load_image(path, address))

    def compare(self, mem: Memory, expected: bytes, address: int, what: str) -> None:
        actual = self.read(mem, address, len(expected))
        if actual == expected:
            return
        diffs = [i for i, (a, b) in enumerate(zip(actual, expected, strict=True)) if a != b]
        first = diffs[0]
        raise self.failure(
            f"{mem.name} differs from {what}: {len(diffs)} of {len(expected)} bytes, first at "
            f"0x{address + first:08X} (memory 0x{actual[first]:02X}, expected 0x{expected[first]:02X})"
        )

    def inject_wear(self, mem: Memory, address: int, cycles: int) -> int:
        if cycles < 0:
            raise BoardFailure(f"wear cycles must be >= 0, got {cycles}")
        model = self.model(mem)
        sector = mem.sector_of(address)
        model.erase_counts[sector] += int(cycles)
        return model.erase_counts[sector]

    def inject_stuck_bit(self, mem: Memory, address: int, bit: int, value: int) -> None:
        offset = mem.check_range(address)
        target = address if mem.absolute_fault_addresses else offset
        self.guarded("stuck bit", lambda: self.model(mem).inject_stuck_bit(target, bit, value))

    # -- power cuts -----------------------------------------------------------------------------
    def arm_power_cut(
        self, *, after_ops: int | None = None, on_event: str | None = None, fraction: float = 0.5
    ) -> PowerCutPlan:
        """Arm the board's shared plan; ``after_ops`` counts operations from now."""
        if not 0.0 <= fraction < 1.0:
            raise BoardFailure(f"fraction must be in [0, 1), got {fraction}")
        plan = self.board.power_cut
        plan.fired = False
        plan.after_ops = None if after_ops is None else plan.operations_seen + int(after_ops)
        plan.on_event = on_event
        plan.at_ns = None
        plan.fraction = float(fraction)
        return plan

    # -- CPU ------------------------------------------------------------------------------------
    def pc(self) -> int:
        state = {k.lower(): v for k, v in self.board.machine.cpu_state().items()}
        for key in ("pc", "r15"):
            if key in state:
                return int(state[key])
        raise self.failure(f"the engine's CPU state has no PC (keys: {', '.join(sorted(state))})")


def describe_status(report: DfuStatusReport) -> str:
    return f"{status_name(report.status)} in {state_name(report.state)} (bwPollTimeout {report.poll_timeout_ms} ms)"
