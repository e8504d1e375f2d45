"""Benchmarks behind ``h743sim bench``: how fast the virtual board runs, in wall-clock terms.

Each ``bench_<name>()`` returns the lines to print; figures are measured, never asserted.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from h743sim.errors import UserError

# -- storage -------------------------------------------------------------------------------------
STORAGE_BENCH_ELF = "storage_bench.elf"
STORAGE_CONFIG_SYMBOL = "bench_config"  # {u32 bytes, u32 mapped_passes} in flash (storage_bench/main.c)
STORAGE_CHUNK = 4096  # the firmware's size unit
STORAGE_MAX_BYTES = 0x100000
_PHASE_RE = re.compile(r"^BENCH (\w+) (start|done)(?: bytes=(\d+) us=(\d+) rc=(-?\d+))?$")
_DONE_RE = re.compile(r"^BENCH DONE failures=(\d+)")
KIB = 1024
MIB = 1024 * 1024


@dataclass
class StoragePhase:
    """One phase of the storage_bench firmware: bytes moved, virtual and wall-clock duration."""

    name: str
    nbytes: int
    virtual_us: int
    wall_s: float

    def wall_rate(self) -> float:
        return self.nbytes / self.wall_s if self.wall_s > 0 else float("inf")

    def virtual_rate(self) -> float:
        return self.nbytes * 1e6 / self.virtual_us if self.virtual_us > 0 else float("inf")


def _symbol_address(elf: Path, name: str) -> int:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with elf.open("rb") as f:
        for section in ELFFile(f).iter_sections():
            if isinstance(section, SymbolTableSection):
                for sym in section.get_symbol_by_name(name) or []:
                    return int(sym["st_value"])
    raise UserError(f"{elf}: no symbol {name!r} (rebuild the firmware with `make -C firmware`)")


def run_storage_bench(
    elf: Path | str, *, nbytes: int, mapped_passes: int, timing: str, timeout_s: float = 60.0
) -> dict[str, StoragePhase]:
    """Run the storage_bench firmware sized to ``nbytes`` on a fresh board (no state directory)
    and return its phases (erase, program, readback, mapped) timed on the wall clock between the
    firmware's start and done lines. Raises UserError when the firmware reports a failure."""
    from h743sim.board import FLASH_BASE, Board

    elf = Path(elf)
    if not elf.exists():
        raise UserError(f"{elf}: missing; build the firmware with `make -C firmware`")
    if not (0 < nbytes <= STORAGE_MAX_BYTES and nbytes % STORAGE_CHUNK == 0):
        raise UserError(f"storage bench size {nbytes}: must be a multiple of 4 KiB up to 1 MiB")
    if mapped_passes < 1:
        raise UserError(f"storage bench mapped passes {mapped_passes}: must be at least 1")
    starts: dict[str, float] = {}
    phases: dict[str, StoragePhase] = {}
    failures: list[str] = []

    def on_line(text: str) -> None:
        now = time.perf_counter()
        m = _PHASE_RE.match(text)
        if m is None:
            # anything else the firmware says about the bench is a complaint (mismatch, bad config)
            if text.startswith("BENCH ") and not text.startswith(("BENCH start", "BENCH DONE")):
                failures.append(text)
            return
        name, what = m.group(1), m.group(2)
        if what == "start":
            starts[name] = now
            return
        if int(m.group(5)) != 0:
            failures.append(text)
        phases[name] = StoragePhase(name, int(m.group(3)), int(m.group(4)), now - starts.get(name, now))

    board = Board(timing=timing, echo=on_line)
    board.load_firmware(elf)
    config = _symbol_address(elf, STORAGE_CONFIG_SYMBOL) - FLASH_BASE
    struct.pack_into("<II", board.flash.array, config, nbytes, mapped_passes)  # as a programmer would
    board.power_on()
    done = board.wait_for_line(_DONE_RE.pattern, timeout_s)
    if failures or _DONE_RE.match(done).group(1) != "0":  # type: ignore[union-attr]
        raise UserError("storage bench firmware reported a failure: " + "; ".join(failures or [done]))
    missing = {"erase", "program", "readback", "mapped"} - phases.keys()
    if missing:
        raise UserError(f"storage bench: no result for phase(s) {', '.join(sorted(missing))}")
    return phases


def _virtual(phase: StoragePhase) -> str:
    if phase.virtual_us <= 0:
        return "virtual < 0.1 ms"  # below the firmware's SysTick resolution
    return f"virtual {phase.virtual_us / 1000:.1f} ms = {_rate(phase.virtual_rate())}"


def _rate(bytes_per_s: float) -> str:
    if bytes_per_s >= MIB:
        return f"{bytes_per_s / MIB:.1f} MiB/s"
    if bytes_per_s >= KIB:
        return f"{bytes_per_s / KIB:.1f} KiB/s"
    return f"{bytes_per_s:.0f} B/s"


def bench_storage(
    firmware_dir: Path | str = Path("firmware/build"),
    *,
    fast_bytes: int = 64 * KIB,
    datasheet_bytes: int = 8 * KIB,
    mapped_bytes: int = 16 * MIB,
) -> list[str]:
    """W25Q64 throughput through the firmware's drivers (firmware/storage_bench): quad page
    program and indirect read-back in wall-clock bytes/s, and reads of the memory-mapped window
    in MiB/s; with the fast timing profile (the emulation's own cost) and with datasheet timing
    (what a realistic simulation costs: the driver's BUSY polling is emulated instruction by
    instruction). ``mapped_bytes`` is rounded to whole passes over the programmed area."""
    elf = Path(firmware_dir) / STORAGE_BENCH_ELF
    lines = []
    for timing, nbytes in (("fast", fast_bytes), ("datasheet", datasheet_bytes)):
        if nbytes <= 0:
            continue
        t0 = time.perf_counter()
        passes = max(1, mapped_bytes // nbytes)
        p = run_storage_bench(elf, nbytes=nbytes, mapped_passes=passes, timing=timing)
        total = time.perf_counter() - t0
        prog, back, mapped = p["program"], p["readback"], p["mapped"]
        both = prog.nbytes + back.nbytes
        both_wall = prog.wall_s + back.wall_s
        lines += [
            f"storage ({timing} timing, {nbytes // KIB} KiB at W25Q64 0x100000, run {total:.2f} s wall):",
            f"  page program     {prog.nbytes:>8} B in {prog.wall_s:7.3f} s wall = {prog.wall_rate():9.0f} B/s "
            f"({_virtual(prog)})",
            f"  indirect read    {back.nbytes:>8} B in {back.wall_s:7.3f} s wall = {back.wall_rate():9.0f} B/s "
            f"({_virtual(back)})",
            f"  program+readback {both:>8} B in {both_wall:7.3f} s wall = {both / max(both_wall, 1e-9):9.0f} B/s",
            f"  memory-mapped    {mapped.nbytes:>8} B in {mapped.wall_s:7.3f} s wall = "
            f"{mapped.wall_rate() / MIB:.2f} MiB/s ({_virtual(mapped)})",
        ]
    return lines


# -- dfu -----------------------------------------------------------------------------------------
DFU_BENCH_ADDRESS = 0x90000000  # the W25Q64 (alt 1)
DFU_TARGET_KIB_PER_S = 200.0  # the wall-clock goal for a DFU download


def _bench_pattern(nbytes: int) -> bytes:
    """Deterministic bytes with no 0xFF runs, so every page really gets programmed."""
    return bytes((i * 151 + (i >> 8) * 7 + 1) % 255 for i in range(nbytes))


def bench_dfu(
    firmware_dir: Path | str = Path("firmware/build"),
    *,
    nbytes: int = MIB,
    timing: str = "datasheet",
    readback: bool = False,
    progress: bool = True,
) -> list[str]:
    """A DfuSe download of ``nbytes`` into the W25Q64 through the real bootloader, over the virtual USB
    and pyusb: sector erases (one DfuSe Erase per 4 KiB) then 2 KiB DNLOAD blocks, each waited for
    with the device's bwPollTimeout in virtual time (``timing="datasheet"``: W25Q64 typical times).
    Reports wall-clock seconds and KiB/s, and the virtual time the board spent; checks the model's
    array holds the bytes afterwards. ``readback`` also times a DFU UPLOAD of the same range."""
    from h743sim.board import QSPI_BASE, Board
    from h743sim.dfu_session import DfuSession, _Progress

    boot = Path(firmware_dir) / "bootloader.elf"
    if not boot.exists():
        raise UserError(f"{boot}: missing; build the firmware with `make -C firmware`")
    if not 0 < nbytes <= 8 * MIB:
        raise UserError(f"DFU bench size {nbytes}: must be 1 byte .. 8 MiB (the W25Q64)")
    data = _bench_pattern(nbytes)
    board = Board(timing=timing)
    board.load_firmware(boot)
    board.k2.press()
    board.power_on()
    board.wait_for_line(r"^DFU ready$", 5)
    client = DfuSession(board).client
    bar = _Progress(progress)

    phases: list[tuple[str, int, float, int]] = []  # (name, bytes, wall s, virtual ns)

    def timed(name: str, count: int, fn: Callable[[], object]) -> None:
        v0, t0 = board.machine.now_ns(), time.perf_counter()
        fn()
        phases.append((name, count, time.perf_counter() - t0, board.machine.now_ns() - v0))

    try:
        timed("erase", nbytes, lambda: client.erase_range(DFU_BENCH_ADDRESS, nbytes, progress=bar))
        timed("write", nbytes, lambda: client.download(DFU_BENCH_ADDRESS, data, erase=False, progress=bar))
        if readback:
            got: list[bytes] = []
            timed(
                "upload", nbytes, lambda: got.append(client.upload(DFU_BENCH_ADDRESS, nbytes, progress=bar))
            )
            if got[0] != data:
                raise UserError("DFU bench: the UPLOAD did not return the downloaded bytes")
    finally:
        bar.close()
    offset = DFU_BENCH_ADDRESS - QSPI_BASE
    if bytes(board.qspi_flash.array[offset : offset + nbytes]) != data:
        raise UserError("DFU bench: the W25Q64 does not hold the downloaded bytes")

    kib = nbytes / KIB
    download = [p for p in phases if p[0] in ("erase", "write")]
    wall = sum(p[2] for p in download)
    virtual = sum(p[3] for p in download) / 1e9
    rate = kib / wall if wall > 0 else float("inf")
    lines = [
        f"dfu ({timing} timing): {kib:.0f} KiB DfuSe download into the W25Q64 at 0x{DFU_BENCH_ADDRESS:08X} "
        f"(erase + write) in {wall:.3f} s wall = {rate:.1f} KiB/s; virtual board time {virtual:.3f} s "
        f"({kib / virtual:.1f} KiB/s on the virtual board)",
    ]
    for name, count, w, v in phases:
        lines.append(
            f"  {name:<7} {count / KIB:8.0f} KiB in {w:8.2f} s wall = {count / KIB / max(w, 1e-9):8.1f} KiB/s "
            f"(virtual {v / 1e9:.3f} s)"
        )
    verdict = "met" if rate >= DFU_TARGET_KIB_PER_S else "NOT met"
    lines.append(
        f"  target >= {DFU_TARGET_KIB_PER_S:.0f} KiB/s wall-clock: {verdict} ({rate / DFU_TARGET_KIB_PER_S:.0%})"
    )
    return lines


def bench_cpu() -> list[str]:
    """Emulation speed: a compute-bound loop, a load/store loop and MMIO-polling loops (MIPS)."""
    from h743sim.engine import bench as engine_bench

    lines = ["CPU (embedded engine, deterministic count= slices; figures vary with machine load):"]
    lines += [f"  {result}" for result in engine_bench.run_all()]
    return lines
