"""Winbond W25Q64JV serial NOR flash (8 MiB; single, dual and quad SPI), engine-agnostic.

Facts: reference/FACTS.md §D (IDs, status registers, command set, page wrap, timings).

Bus interface
-------------
A controller drives one transaction per CS# low period, one call per bus phase::

    flash.begin()                                 # CS# falls
    flash.instruction(0xEB, lines=1)              # opcode (absent in continuous-read mode)
    flash.address(0x001000, nbytes=3, lines=4)
    flash.alternate(0xFF, nbytes=1, lines=4)      # e.g. the M7-0 mode bits
    flash.dummy(4)                                # dummy clocks
    data = flash.read_data(16, lines=4)           # or flash.write_data(b"..", lines=1)
    flash.end()                                   # CS# rises: programs/erases start here

:class:`Transaction` + :meth:`W25Q64.transfer` do the same in one call.

Between the instruction and the data the chip only counts clocks: a phase of ``n`` bytes on
``L`` lines lasts ``8n/L`` clocks. The clocks must add up to what the command needs (address
bits, mode bits, dummy clocks), and the address and mode bits must arrive on the command's line
count; which controller phase carried them does not matter (the 3 dummy bytes of ABh may come
as an address phase or as 24 dummy cycles). Mode bits sent as dummy clocks read as 1s (lines
float high), so they never select continuous-read mode. Anything else the datasheet does not
allow (wrong line count, wrong dummy count, quad command with QE=0, unknown opcode, command
while BUSY or in power-down) makes the chip ignore the transaction: its output lines float and
read as 0xFF, and writes/erases do nothing. Each such case is logged once.

Timing and faults
-----------------
Programs, erases and non-volatile status writes keep BUSY=1 for the typical time of §D.5 in
virtual time (``timing="fast"`` makes them instant). The array content changes when an
operation completes. With a :class:`~peripherals.power_cut.PowerCutPlan` every such operation is
announced (``qspi.page_program``, ``qspi.sector_erase``, ``qspi.block_erase_32k``,
``qspi.block_erase_64k``, ``qspi.chip_erase``, ``qspi.write_status``, ``qspi.security_program``,
``qspi.security_erase``); with the fast profile the plan sees the typical duration, so a cut tears
the same way in both profiles. A torn operation is left like this (fraction ``f`` of its
duration elapsed):

* page program: the first ``floor(f * n)`` of its ``n`` bytes (in programming order, from the
  start address, wrapping inside the page) are programmed, the rest keep their old value;
* erase: the covered sectors are erased one after the other in ascending address order; the
  first ``floor(f * size)`` bytes of the range read 0xFF, the rest keep their old content, and
  every sector with at least one erased byte counts one erase cycle;
* status-register write: the non-volatile bits keep their old value.

Wear: each 4 KiB sector counts erase cycles. Once a sector's count exceeds ``endurance``, each of
its erases leaves ``8 * (count - endurance)`` bits at 0 and each program leaves as many bits at 1
(when they should have been programmed), chosen deterministically from ``(seed, sector, count)``.
No status flag reports it, as on real NOR.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from peripherals.host import NS_PER_MS, NS_PER_S, NS_PER_US, WARNING, Host, Timer
from peripherals.power_cut import PowerCutPlan

SIZE = 8 * 1024 * 1024
PAGE_SIZE = 256
SECTOR_SIZE = 4 * 1024
BLOCK32_SIZE = 32 * 1024
BLOCK64_SIZE = 64 * 1024
SECTOR_COUNT = SIZE // SECTOR_SIZE
SECURITY_REGISTER_SIZE = 256
SECURITY_REGISTER_COUNT = 3
SFDP_SIZE = 256

MANUFACTURER_ID = 0xEF
DEVICE_ID = 0x16
JEDEC_ID = bytes((0xEF, 0x40, 0x17))
DEFAULT_UNIQUE_ID = 0xD2631C478B553021
DEFAULT_ENDURANCE = 100_000

# Status register 1
SR1_BUSY = 0x01
SR1_WEL = 0x02
SR1_BP = 0x1C  # BP2..BP0
SR1_TB = 0x20
SR1_SEC = 0x40
SR1_SRP = 0x80
# Status register 2
SR2_SRL = 0x01
SR2_QE = 0x02
SR2_LB = 0x38  # LB3..LB1 (LB1 = bit 3), one-time programmable
SR2_CMP = 0x40
SR2_SUS = 0x80
# Status register 3 (bit positions [U], FACTS §D.2)
SR3_WPS = 0x04
SR3_DRV = 0x60

# Bits a status write can change (the others are read-only or reserved).
_SR_WRITABLE = (SR1_SRP | SR1_SEC | SR1_TB | SR1_BP, SR2_CMP | SR2_LB | SR2_QE | SR2_SRL, SR3_DRV | SR3_WPS)
# Factory state: nothing protected, DRV = 11 (25 %).
_SR_FACTORY = (0x00, 0x00, SR3_DRV)

# Operation names announced to the power-cut plan.
OP_PAGE_PROGRAM = "qspi.page_program"
OP_SECTOR_ERASE = "qspi.sector_erase"
OP_BLOCK_ERASE_32K = "qspi.block_erase_32k"
OP_BLOCK_ERASE_64K = "qspi.block_erase_64k"
OP_CHIP_ERASE = "qspi.chip_erase"
OP_WRITE_STATUS = "qspi.write_status"
OP_SECURITY_PROGRAM = "qspi.security_program"
OP_SECURITY_ERASE = "qspi.security_erase"


@dataclass(frozen=True)
class Timing:
    """Durations in virtual nanoseconds (FACTS §D.5, typical column; max where no typical)."""

    write_status_ns: int = 10 * NS_PER_MS
    page_program_ns: int = 400 * NS_PER_US
    sector_erase_ns: int = 45 * NS_PER_MS
    block_erase_32k_ns: int = 120 * NS_PER_MS
    block_erase_64k_ns: int = 150 * NS_PER_MS
    chip_erase_ns: int = 20 * NS_PER_S
    suspend_ns: int = 20 * NS_PER_US
    reset_ns: int = 30 * NS_PER_US
    power_down_ns: int = 3 * NS_PER_US
    release_ns: int = 3 * NS_PER_US


TYPICAL = Timing()
FAST = Timing(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
TIMING_PROFILES: dict[str, Timing] = {"typical": TYPICAL, "fast": FAST}


@dataclass
class Transaction:
    """One CS# low period, for :meth:`W25Q64.transfer` (phases with None / 0 are skipped)."""

    instruction: int | None
    instruction_lines: int = 1
    address: int | None = None
    address_bytes: int = 3
    address_lines: int = 1
    alternate: int | None = None
    alternate_bytes: int = 1
    alternate_lines: int = 1
    dummy_cycles: int = 0
    data_lines: int = 1
    write: bytes = b""
    read: int = 0


@dataclass(frozen=True)
class _Command:
    name: str
    address_lines: int = 0  # 0: no address field
    mode_bits: bool = False  # M7-0 follow the address on the address lines
    dummy_clocks: int = 0  # after address / mode bits
    data: str = ""  # "", "read" (chip drives data) or "write" (controller drives data)
    data_lines: int = 1
    quad: bool = False  # needs QE=1 (IO2/IO3)
    while_busy: bool = False  # accepted while BUSY=1
    while_suspended: bool = True  # accepted while SUS=1

    @property
    def pre_data_clocks(self) -> int:
        clocks = self.dummy_clocks
        if self.address_lines:
            clocks += 24 // self.address_lines
            if self.mode_bits:
                clocks += 8 // self.address_lines
        return clocks


_READ = "read"
_WRITE = "write"

# FACTS §D.3 (W25Q64JV, SPI only: no QPI). Opcode -> what the chip expects after it.
COMMANDS: dict[int, _Command] = {
    0x06: _Command("write_enable"),
    0x50: _Command("volatile_sr_write_enable"),
    0x04: _Command("write_disable"),
    0x05: _Command("read_status_1", data=_READ, while_busy=True),
    0x35: _Command("read_status_2", data=_READ, while_busy=True),
    0x15: _Command("read_status_3", data=_READ, while_busy=True),
    0x01: _Command("write_status_1", data=_WRITE, while_suspended=False),
    0x31: _Command("write_status_2", data=_WRITE, while_suspended=False),
    0x11: _Command("write_status_3", data=_WRITE, while_suspended=False),
    0x03: _Command("read_data", address_lines=1, data=_READ),
    0x0B: _Command("fast_read", address_lines=1, dummy_clocks=8, data=_READ),
    0x3B: _Command("fast_read_dual_output", address_lines=1, dummy_clocks=8, data=_READ, data_lines=2),
    0x6B: _Command(
        "fast_read_quad_output", address_lines=1, dummy_clocks=8, data=_READ, data_lines=4, quad=True
    ),
    0xBB: _Command("fast_read_dual_io", address_lines=2, mode_bits=True, data=_READ, data_lines=2),
    0xEB: _Command(
        "fast_read_quad_io",
        address_lines=4,
        mode_bits=True,
        dummy_clocks=4,
        data=_READ,
        data_lines=4,
        quad=True,
    ),
    # 24 dummy bits on 4 lines (6 clocks), then W7-0 on 4 lines
    0x77: _Command("set_burst_with_wrap", dummy_clocks=6, data=_WRITE, data_lines=4, quad=True),
    0x02: _Command("page_program", address_lines=1, data=_WRITE),
    0x32: _Command("quad_page_program", address_lines=1, data=_WRITE, data_lines=4, quad=True),
    0x20: _Command("sector_erase", address_lines=1, while_suspended=False),
    0x52: _Command("block_erase_32k", address_lines=1, while_suspended=False),
    0xD8: _Command("block_erase_64k", address_lines=1, while_suspended=False),
    0xC7: _Command("chip_erase", while_suspended=False),
    0x60: _Command("chip_erase", while_suspended=False),
    0x75: _Command("erase_program_suspend", while_busy=True),
    0x7A: _Command("erase_program_resume"),
    0xB9: _Command("power_down"),
    # 3 dummy bytes then the device ID; ABh alone (no clocks after it) only releases power-down
    0xAB: _Command("release_power_down_id", dummy_clocks=24, data=_READ),
    0x90: _Command("manufacturer_device_id", address_lines=1, data=_READ),
    0x92: _Command(
        "manufacturer_device_id_dual_io", address_lines=2, mode_bits=True, data=_READ, data_lines=2
    ),
    0x94: _Command(
        "manufacturer_device_id_quad_io",
        address_lines=4,
        mode_bits=True,
        dummy_clocks=4,
        data=_READ,
        data_lines=4,
        quad=True,
    ),
    0x9F: _Command("jedec_id", data=_READ),
    0x4B: _Command("read_unique_id", dummy_clocks=32, data=_READ),
    0x5A: _Command("read_sfdp", address_lines=1, dummy_clocks=8, data=_READ),
    0x44: _Command("erase_security_register", address_lines=1, while_suspended=False),
    0x42: _Command("program_security_register", address_lines=1, data=_WRITE, while_suspended=False),
    0x48: _Command("read_security_register", address_lines=1, dummy_clocks=8, data=_READ),
    0x36: _Command("individual_block_lock", address_lines=1),
    0x39: _Command("individual_block_unlock", address_lines=1),
    0x3D: _Command("read_block_lock", address_lines=1, data=_READ),
    0x7E: _Command("global_block_lock"),
    0x98: _Command("global_block_unlock"),
    0x66: _Command("enable_reset"),
    0x99: _Command("reset_device"),
}

# Reads that return array[address...] linearly (EBh only while burst wrap is off).
_ARRAY_READS = frozenset((0x03, 0x0B, 0x3B, 0x6B, 0xBB, 0xEB))

# Individual block locks (WPS=1): the first and last 64 KiB blocks lock per 4 KiB sector,
# the 126 blocks between them per block.
_LOCK_UNITS = 16 + (SIZE // BLOCK64_SIZE - 2) + 16


def _lock_unit(addr: int) -> int:
    block = addr // BLOCK64_SIZE
    if block == 0:
        return (addr // SECTOR_SIZE) & 15
    if block == SIZE // BLOCK64_SIZE - 1:
        return 16 + (SIZE // BLOCK64_SIZE - 2) + ((addr // SECTOR_SIZE) & 15)
    return 16 + block - 1


def _build_sfdp() -> bytes:
    """A JESD216 (v1.0) SFDP space: header, one parameter header, 9-DWORD basic flash table."""
    space = bytearray(b"\xff" * SFDP_SIZE)
    # signature "SFDP", minor 0 / major 1, NPH = 0 (one header), unused 0xFF
    space[0:8] = b"SFDP" + bytes((0x00, 0x01, 0x00, 0xFF))
    # JEDEC basic flash parameter header: ID LSB 0, v1.0, 9 DWORDs at 0x000080, ID MSB 0xFF
    space[8:16] = bytes((0x00, 0x00, 0x01, 9, 0x80, 0x00, 0x00, 0xFF))
    bfpt = (
        0xFFF120E5,  # 4 KB erase 20h, 3-byte address, 1-1-2 / 1-2-2 / 1-4-4 / 1-1-4 supported
        0x03FFFFFF,  # density: 64 Mbit - 1
        0x6B08EB44,  # 1-4-4 EBh: 2 mode + 4 dummy clocks; 1-1-4 6Bh: 8 dummy clocks
        0xBB803B08,  # 1-1-2 3Bh: 8 dummy clocks; 1-2-2 BBh: 4 mode clocks, no dummy
        0xFFFFFFEE,  # no 2-2-2, no 4-4-4
        0x0000FFFF,
        0x0000FFFF,
        0x520F200C,  # erase types: 4 KB 20h, 32 KB 52h
        0x0000D810,  # 64 KB D8h
    )
    space[0x80 : 0x80 + 4 * len(bfpt)] = b"".join(d.to_bytes(4, "little") for d in bfpt)
    return bytes(space)


SFDP_TABLE = _build_sfdp()


@dataclass
class _Segment:
    """Clocks between instruction and data, as the chip sees them."""

    lines: int  # 0 for dummy cycles
    clocks: int
    bits: int | None  # MSB first, ``clocks * lines`` bits; None: nothing driven (reads as 1s)


@dataclass
class _Operation:
    name: str  # power-cut operation name
    duration_ns: int  # in the active timing profile
    nominal_ns: int  # typical duration (what the power-cut plan sees in the fast profile)
    apply: Callable[[float], None]  # leave the result of ``fraction`` of the work (1.0 = done)
    suspendable: bool = False
    erase_range: tuple[int, int] | None = None  # [start, end) of an erase (suspend rules)
    cut_fraction: float | None = None
    cut_offset_ns: int | None = None
    elapsed_ns: int = 0
    run_start_ns: int = 0
    timer: Timer | None = None

    def elapsed_at(self, now: int, running: bool) -> int:
        return self.elapsed_ns + (now - self.run_start_ns if running else 0)


ArrayListener = Callable[[int, int], None]


class W25Q64:
    """The W25Q64JV chip: array, status registers, command decoder, timing, wear and faults."""

    SIZE = SIZE
    PAGE_SIZE = PAGE_SIZE
    SECTOR_SIZE = SECTOR_SIZE
    SECTOR_COUNT = SECTOR_COUNT

    def __init__(
        self,
        host: Host,
        *,
        name: str = "W25Q64",
        timing: str | Timing = "typical",
        endurance: int = DEFAULT_ENDURANCE,
        seed: int = 0,
        unique_id: int = DEFAULT_UNIQUE_ID,
        power_cut: PowerCutPlan | None = None,
        quad_enable_factory: bool = True,
    ) -> None:
        """``quad_enable_factory``: QE as shipped (True for the -IQ/-JQ parts whose JEDEC ID is
        EF 40 17; the -IM/-JM parts ship with QE=0)."""
        self.host = host
        self.name = name
        self.timing = self._timing(timing)
        if endurance < 1:
            raise ValueError(f"{name}: endurance must be >= 1, got {endurance}")
        if not 0 <= unique_id < 1 << 64:
            raise ValueError(f"{name}: unique_id must fit in 64 bits, got {unique_id:#x}")
        self.endurance = int(endurance)
        self.seed = int(seed)
        self.unique_id = int(unique_id)
        self.power_cut = power_cut
        self.array = bytearray(b"\xff" * SIZE)
        self.erase_counts: list[int] = [0] * SECTOR_COUNT
        self.stuck_bits: list[tuple[int, int, int]] = []  # (address, bit, value)
        self.security_registers = [bytearray(b"\xff" * SECURITY_REGISTER_SIZE) for _ in range(3)]
        factory = list(_SR_FACTORY)
        if quad_enable_factory:
            factory[1] |= SR2_QE
        self._sr_nv = factory
        self._sr = list(factory)  # volatile copies of the writable bits
        self._listeners: list[ArrayListener] = []
        self._logged: set[str] = set()
        self._wear_cache: dict[tuple[int, int, str], dict[int, int]] = {}
        self._handlers: dict[int, Callable[[], None]] = {
            0x06: self._write_enable,
            0x50: self._volatile_sr_write_enable,
            0x04: self._write_disable,
            0x01: lambda: self._write_status(0),
            0x31: lambda: self._write_status(1),
            0x11: lambda: self._write_status(2),
            0xBB: self._continuous_mode_update,
            0xEB: self._continuous_mode_update,
            0x77: self._set_burst_wrap,
            0x02: self._page_program,
            0x32: self._page_program,
            0x20: lambda: self._erase(SECTOR_SIZE, OP_SECTOR_ERASE, self.timing.sector_erase_ns),
            0x52: lambda: self._erase(BLOCK32_SIZE, OP_BLOCK_ERASE_32K, self.timing.block_erase_32k_ns),
            0xD8: lambda: self._erase(BLOCK64_SIZE, OP_BLOCK_ERASE_64K, self.timing.block_erase_64k_ns),
            0xC7: self._chip_erase,
            0x60: self._chip_erase,
            0x75: self._suspend,
            0x7A: self._resume,
            0xB9: self._power_down,
            0xAB: self._release_power_down,
            0x44: self._erase_security_register,
            0x42: self._program_security_register,
            0x36: lambda: self._block_lock(True),
            0x39: lambda: self._block_lock(False),
            0x7E: lambda: self._global_lock(True),
            0x98: lambda: self._global_lock(False),
            0x99: self._reset_device,
        }
        self._readers: dict[int, Callable[[int], bytes]] = {
            0x05: lambda n: bytes((self.status_register(1),)) * n,
            0x35: lambda n: bytes((self.status_register(2),)) * n,
            0x15: lambda n: bytes((self.status_register(3),)) * n,
            0x03: self._read_linear,
            0x0B: self._read_linear,
            0x3B: self._read_linear,
            0x6B: self._read_linear,
            0xBB: self._read_linear,
            0xEB: self._read_quad_io,
            0xAB: lambda n: bytes((DEVICE_ID,)) * n,
            0x90: self._read_ids,
            0x92: self._read_ids,
            0x94: self._read_ids,
            0x9F: lambda n: self._cyclic(JEDEC_ID, n),
            0x4B: self._read_unique_id,
            0x5A: self._read_sfdp,
            0x48: self._read_security_register,
            0x3D: lambda n: bytes((int(self._locked(self._addr)),)) * n,
        }
        self._active: _Operation | None = None
        self._suspended: _Operation | None = None
        self._power_up_state()
        self._reset_transaction()

    @staticmethod
    def _timing(timing: str | Timing) -> Timing:
        if isinstance(timing, Timing):
            return timing
        if timing not in TIMING_PROFILES:
            raise ValueError(f"unknown timing profile {timing!r}; expected one of {sorted(TIMING_PROFILES)}")
        return TIMING_PROFILES[timing]

    # ---------------------------------------------------------------- power and reset
    def _power_up_state(self) -> None:
        self.powered = True
        self._sr = list(self._sr_nv)
        self._wel = False
        self._vsr_enabled = False
        self._busy_until = 0
        self._ready_at = 0
        self._powered_down = False
        self._continuous: int | None = None
        self._wrap: int | None = None  # burst wrap length in bytes, None = off (W4=1)
        self._reset_enabled = False
        self._locks = bytearray(b"\x01" * _LOCK_UNITS)  # all locked at power-up
        self._last_array_read = False

    def power_on_reset(self) -> None:
        """Power returns (or the board power-cycles the chip): power-up state.

        An operation still in flight is cut where it stands (torn as described in the module doc).
        """
        self._abandon_operations()
        self._power_up_state()
        self._reset_transaction()

    def _abandon_operations(self) -> None:
        now = self.host.now_ns()
        for op, running in ((self._active, True), (self._suspended, False)):
            if op is None:
                continue
            if op.timer is not None:
                op.timer.cancel()
            if op.duration_ns:
                op.apply(min(1.0, op.elapsed_at(now, running) / op.duration_ns))
        self._active = None
        self._suspended = None

    # ---------------------------------------------------------------- status
    @property
    def busy(self) -> bool:
        return self._active is not None or self.host.now_ns() < self._busy_until

    @property
    def suspended(self) -> bool:
        return self._suspended is not None

    @property
    def write_enabled(self) -> bool:
        return self._wel

    @property
    def powered_down(self) -> bool:
        return self._powered_down

    @property
    def continuous_read(self) -> int | None:
        """The read opcode the chip is in continuous-read mode for (BBh/EBh), or None."""
        return self._continuous

    @property
    def burst_wrap(self) -> int | None:
        """Burst-with-wrap length in bytes set by 77h, or None when off."""
        return self._wrap

    @property
    def quad_enabled(self) -> bool:
        return bool(self._sr[1] & SR2_QE)

    def status_register(self, index: int) -> int:
        """Current value of SR1/SR2/SR3 (``index`` 1..3) as a read status command returns it."""
        if index == 1:
            return (self._sr[0] & _SR_WRITABLE[0]) | (SR1_WEL if self._wel else 0) | int(self.busy)
        if index == 2:
            return (self._sr[1] & _SR_WRITABLE[1]) | (SR2_SUS if self._suspended is not None else 0)
        if index == 3:
            return self._sr[2] & _SR_WRITABLE[2]
        raise ValueError(f"{self.name}: status register index must be 1..3, got {index}")

    def nonvolatile_status(self) -> tuple[int, int, int]:
        return (self._sr_nv[0], self._sr_nv[1], self._sr_nv[2])

    def next_internal_event_ns(self) -> int | None:
        """When the chip's status may next change by itself (operation end, tSUS, tRST...).

        None: nothing pending; the status stays as it is until the next command.
        """
        now = self.host.now_ns()
        times = [t for t in (self._busy_until, self._ready_at) if t > now]
        op = self._active
        if op is not None:
            end = op.run_start_ns + op.duration_ns - op.elapsed_ns
            if op.cut_offset_ns is not None:
                end = min(end, op.run_start_ns + op.cut_offset_ns - op.elapsed_ns)
            times.append(max(end, now))
        return min(times) if times else None

    # ---------------------------------------------------------------- listeners and logging
    def add_array_listener(self, callback: ArrayListener) -> None:
        """``callback(offset, size)`` runs after the chip changed bytes of :attr:`array`."""
        if callback not in self._listeners:
            self._listeners.append(callback)

    def remove_array_listener(self, callback: ArrayListener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _notify(self, offset: int, size: int) -> None:
        if size <= 0:
            return
        for cb in list(self._listeners):
            cb(offset, size)

    def _log_once(self, key: str, message: str) -> None:
        if key in self._logged:
            return
        self._logged.add(key)
        self.host.log(WARNING, f"{self.name}: {message}")

    # ---------------------------------------------------------------- bus: transaction phases
    def _reset_transaction(self) -> None:
        self._cs_low = False
        self._stage = "idle"  # idle | instruction | pre | data
        self._opcode: int | None = None
        self._cmd: _Command | None = None
        self._continuous_tx = False
        self._segments: list[_Segment] = []
        self._invalid: str | None = None
        self._addr = 0
        self._mode = 0xFF
        self._out = bytearray()
        self._read_count = 0
        self._had_data = False
        self._write_lines: int | None = None  # lines of the accepted write data phase in progress

    def begin(self) -> None:
        """CS# falls: a new transaction starts."""
        if self._cs_low:
            self._log_once("begin-twice", "begin() while CS# already low: previous transaction ended")
            self.end()
        self._reset_transaction()
        self._cs_low = True
        self._stage = "instruction"
        if self._continuous is not None:
            # Continuous-read mode: the chip expects the address right away.
            self._opcode = self._continuous
            self._cmd = COMMANDS[self._continuous]
            self._continuous_tx = True
            self._stage = "pre"

    def instruction(self, opcode: int, lines: int = 1) -> None:
        self._require_cs("instruction")
        if not 0 <= opcode <= 0xFF:
            raise ValueError(f"{self.name}: instruction {opcode:#x} is not a byte")
        if self._continuous_tx:
            # The opcode clocks reach the chip as address bits; IO1-IO3 idle high, so the mode
            # bits read M5-4 = 11: this is the datasheet's mode-bit reset, nothing else happens.
            self._continuous = None
            self._invalidate(f"instruction {opcode:#04x} while in continuous-read mode (mode-bit reset)")
            self._stage = "pre"
            return
        if self._stage != "instruction":
            self._invalidate("instruction phase after other phases")
            return
        self._stage = "pre"
        self._opcode = opcode
        if lines != 1:
            self._invalidate(f"instruction {opcode:#04x} on {lines} lines (the W25Q64JV has no QPI mode)")
            return
        cmd = COMMANDS.get(opcode)
        if cmd is None:
            self._invalidate(f"unknown instruction {opcode:#04x}")
            return
        self._cmd = cmd
        reason = self._refusal(opcode, cmd)
        if reason is not None:
            self._invalidate(reason)

    def address(self, value: int, nbytes: int = 3, lines: int = 1) -> None:
        self._pre_data_phase("address", value, nbytes, lines)

    def alternate(self, value: int, nbytes: int = 1, lines: int = 1) -> None:
        self._pre_data_phase("alternate", value, nbytes, lines)

    def dummy(self, cycles: int) -> None:
        """``cycles`` clocks during which the chip ignores its inputs."""
        self._require_cs("dummy")
        if cycles < 0:
            raise ValueError(f"{self.name}: negative dummy cycle count {cycles}")
        if self._check_pre_data_order("dummy") and cycles:
            self._segments.append(_Segment(0, cycles, None))

    def write_data(self, data: bytes, lines: int = 1) -> None:
        """Data clocked into the chip."""
        if lines == self._write_lines:
            # more bytes of a data phase already accepted: the checks below would pass again
            self._out += data
            return
        self._require_cs("write_data")
        if not self._enter_data_phase(_WRITE, lines):
            return
        self._out += data
        self._write_lines = lines

    def read_data(self, n: int, lines: int = 1) -> bytes:
        """``n`` data bytes clocked out of the chip (0xFF where the chip drives nothing)."""
        self._require_cs("read_data")
        if n < 0:
            raise ValueError(f"{self.name}: cannot read {n} bytes")
        if not self._enter_data_phase(_READ, lines):
            return b"\xff" * n
        assert self._opcode is not None
        out = self._readers[self._opcode](n)
        self._read_count += n
        return out

    def end(self) -> bool:
        """CS# rises. Returns True when the chip accepted the transaction."""
        if not self._cs_low:
            self._log_once("end-idle", "end() without begin(): ignored")
            return False
        if self._stage == "instruction" or (
            self._continuous_tx and not self._segments and not self._had_data
        ):
            self._reset_transaction()  # CS# pulsed without clocks: nothing happens
            return False
        self._finish_prologue(for_data=False)
        opcode, cmd, invalid = self._opcode, self._cmd, self._invalid
        continuous_tx = self._continuous_tx
        reset_was_enabled = self._reset_enabled
        self._reset_enabled = False
        self._last_array_read = False
        if invalid is not None or cmd is None or opcode is None:
            if continuous_tx:
                self._continuous = None
            self._log_once(f"ignored:{opcode}:{invalid}", f"transaction ignored: {invalid}")
            self._reset_transaction()
            return False
        if opcode in _ARRAY_READS:
            self._last_array_read = not (opcode == 0xEB and self._wrap is not None)
        if opcode == 0x66:
            self._reset_enabled = True
        elif opcode == 0x99 and not reset_was_enabled:
            self._log_once("reset-not-enabled", "99h without a preceding 66h: ignored")
            self._reset_transaction()
            return False
        handler = self._handlers.get(opcode)
        if handler is not None:
            handler()
        self._reset_transaction()
        return True

    def transfer(self, tx: Transaction) -> bytes:
        """Run one whole transaction; returns the bytes read (b"" when none)."""
        self.begin()
        if tx.instruction is not None:
            self.instruction(tx.instruction, tx.instruction_lines)
        if tx.address is not None:
            self.address(tx.address, tx.address_bytes, tx.address_lines)
        if tx.alternate is not None:
            self.alternate(tx.alternate, tx.alternate_bytes, tx.alternate_lines)
        if tx.dummy_cycles:
            self.dummy(tx.dummy_cycles)
        if tx.write:
            self.write_data(tx.write, tx.data_lines)
        data = self.read_data(tx.read, tx.data_lines) if tx.read else b""
        self.end()
        return data

    def array_view(self) -> bytearray | None:
        """:attr:`array` when the last transaction was an accepted linear read of it, else None.

        A memory-mapped controller uses it to know whether its read command returns the array.
        """
        return self.array if self._last_array_read else None

    # -- phase helpers
    def _require_cs(self, phase: str) -> None:
        if not self._cs_low:
            raise RuntimeError(f"{self.name}: {phase} phase without begin() (CS# high)")

    def _invalidate(self, reason: str) -> None:
        self._write_lines = None
        if self._invalid is None:
            self._invalid = reason

    def _check_pre_data_order(self, phase: str) -> bool:
        if self._stage == "instruction":
            self._invalidate(f"{phase} phase without an instruction")
            self._stage = "pre"
            return False
        if self._stage == "data":
            self._invalidate(f"{phase} phase after the data phase")
            return False
        return True

    def _pre_data_phase(self, phase: str, value: int, nbytes: int, lines: int) -> None:
        self._require_cs(phase)
        if nbytes not in (1, 2, 3, 4) or lines not in (1, 2, 4):
            raise ValueError(f"{self.name}: {phase} of {nbytes} bytes on {lines} lines is not a bus phase")
        if self._check_pre_data_order(phase):
            bits = value & ((1 << (8 * nbytes)) - 1)
            self._segments.append(_Segment(lines, 8 * nbytes // lines, bits))

    def _enter_data_phase(self, direction: str, lines: int) -> bool:
        if self._stage == "instruction":
            self._invalidate("data phase without an instruction")
        self._finish_prologue(for_data=True)
        self._stage = "data"
        self._had_data = True
        cmd = self._cmd
        if self._invalid is not None or cmd is None:
            return False
        if cmd.data != direction:
            self._invalidate(f"{cmd.name} has no {direction} data phase")
            return False
        if lines != cmd.data_lines:
            self._invalidate(f"{cmd.name} data on {lines} line(s), the chip uses {cmd.data_lines}")
            return False
        return True

    def _refusal(self, opcode: int, cmd: _Command) -> str | None:
        now = self.host.now_ns()
        if not self.powered:
            return "no power"
        if now < self._ready_at:
            return f"{cmd.name} during reset / power-down transition"
        if self._powered_down and opcode != 0xAB:
            return f"{cmd.name} in power-down (only ABh is accepted)"
        if self.busy and not cmd.while_busy:
            return f"{cmd.name} while BUSY"
        if cmd.quad and not self.quad_enabled:
            return f"{cmd.name} with QE=0 (IO2/IO3 are /WP and /HOLD)"
        if self._suspended is not None and not cmd.while_suspended:
            return f"{cmd.name} while suspended"
        return None

    def _finish_prologue(self, for_data: bool) -> None:
        if self._stage != "pre":
            return
        self._stage = "data" if for_data else "pre-done"
        cmd, opcode = self._cmd, self._opcode
        if self._invalid is not None or cmd is None or opcode is None:
            return
        if self._continuous_tx:
            reason = self._refusal(opcode, cmd)
            if reason is not None:
                self._invalidate(reason)
                return
        total = sum(s.clocks for s in self._segments)
        need = cmd.pre_data_clocks
        if opcode == 0xAB and total == 0 and not for_data:
            need = 0  # plain release from power-down
        if total != need:
            self._invalidate(f"{cmd.name}: {total} clocks between instruction and data, expected {need}")
            return
        pos = 0
        lines = cmd.address_lines
        if lines:
            value, floating, ok = self._bits(pos, 24 // lines, lines)
            if not ok or floating:
                self._invalidate(f"{cmd.name}: address not sent on {lines} line(s)")
                return
            self._addr = value
            pos += 24 // lines
            if cmd.mode_bits:
                value, _floating, ok = self._bits(pos, 8 // lines, lines)
                if not ok:
                    self._invalidate(f"{cmd.name}: mode bits not sent on {lines} line(s)")
                    return
                self._mode = value

    def _bits(self, start: int, count: int, lines: int) -> tuple[int, bool, bool]:
        """Bits the chip samples on ``lines`` lines during clocks [start, start+count).

        Returns (value, some clocks were undriven, all driven clocks used ``lines`` lines).
        """
        value = 0
        floating = False
        clock = 0
        chunk_mask = (1 << lines) - 1
        for seg in self._segments:
            seg_end = clock + seg.clocks
            for c in range(max(start, clock), min(start + count, seg_end)):
                if seg.bits is None:
                    chunk = chunk_mask
                    floating = True
                elif seg.lines != lines:
                    return 0, floating, False
                else:
                    shift = (seg.clocks - 1 - (c - clock)) * seg.lines
                    chunk = (seg.bits >> shift) & chunk_mask
                value = (value << lines) | chunk
            clock = seg_end
            if clock >= start + count:
                break
        return value, floating, True

    # ---------------------------------------------------------------- read streams
    def _read_array(self, addr: int, n: int) -> bytes:
        addr %= SIZE
        if addr + n <= SIZE:
            return bytes(self.array[addr : addr + n])
        out = bytearray()
        while n:
            k = min(n, SIZE - addr)
            out += self.array[addr : addr + k]
            n -= k
            addr = 0
        return bytes(out)

    def _read_linear(self, n: int) -> bytes:
        return self._read_array(self._addr + self._read_count, n)

    def _read_quad_io(self, n: int) -> bytes:
        wrap = self._wrap
        if wrap is None:
            return self._read_linear(n)
        start = self._addr % SIZE
        base = start & ~(wrap - 1)
        first = start - base + self._read_count
        return bytes(self.array[base + (first + i) % wrap] for i in range(n))

    @staticmethod
    def _cyclic(pattern: bytes, n: int, start: int = 0) -> bytes:
        return bytes(pattern[(start + i) % len(pattern)] for i in range(n))

    def _read_ids(self, n: int) -> bytes:
        # 90h/92h/94h: address 000000h gives MF first, 000001h the device ID first.
        pair = bytes((MANUFACTURER_ID, DEVICE_ID))
        return self._cyclic(pair, n, (self._addr & 1) + self._read_count)

    def _read_unique_id(self, n: int) -> bytes:
        uid = self.unique_id.to_bytes(8, "big")
        pos = self._read_count
        return bytes(uid[pos + i] if pos + i < 8 else 0xFF for i in range(n))

    def _read_sfdp(self, n: int) -> bytes:
        start = self._addr + self._read_count
        return bytes(SFDP_TABLE[(start + i) % SFDP_SIZE] for i in range(n))

    def _security_index(self, addr: int) -> int | None:
        """Security register 0..2 addressed by A15-12 = 1..3 (other address bits 23-16, 11-8 = 0)."""
        number = (addr >> 12) & 0xF
        if addr & 0xFF0F00 or not 1 <= number <= SECURITY_REGISTER_COUNT:
            return None
        return number - 1

    def _read_security_register(self, n: int) -> bytes:
        index = self._security_index(self._addr)
        if index is None:
            return b"\xff" * n
        reg = self.security_registers[index]
        start = (self._addr & 0xFF) + self._read_count
        return bytes(reg[(start + i) % SECURITY_REGISTER_SIZE] for i in range(n))

    # ---------------------------------------------------------------- simple commands
    def _write_enable(self) -> None:
        self._wel = True
        self._vsr_enabled = False

    def _volatile_sr_write_enable(self) -> None:
        self._vsr_enabled = True

    def _write_disable(self) -> None:
        self._wel = False
        self._vsr_enabled = False

    def _continuous_mode_update(self) -> None:
        # M5-4 = 10 keeps the chip in continuous-read mode; anything else leaves it.
        assert self._opcode is not None
        self._continuous = self._opcode if (self._mode >> 4) & 3 == 0b10 else None

    def _set_burst_wrap(self) -> None:
        if len(self._out) != 1:
            self._log_once("wrap-len", "77h needs exactly one W7-0 byte: ignored")
            return
        w = self._out[0]
        self._wrap = None if w & 0x10 else 8 << ((w >> 5) & 3)

    def _power_down(self) -> None:
        self._powered_down = True
        self._continuous = None
        self._ready_at = self.host.now_ns() + self.timing.power_down_ns

    def _release_power_down(self) -> None:
        if self._powered_down:
            self._powered_down = False
            self._ready_at = self.host.now_ns() + self.timing.release_ns

    def _reset_device(self) -> None:
        # Only reachable while not BUSY: a suspended operation is abandoned where it stands.
        self._abandon_operations()
        self._power_up_state()
        self._ready_at = self.host.now_ns() + self.timing.reset_ns

    def _locked(self, addr: int) -> bool:
        return bool(self._locks[_lock_unit(addr % SIZE)])

    def _block_lock(self, lock: bool) -> None:
        if not self._wel:
            self._log_once("lock-wel", "block lock/unlock with WEL=0: ignored")
            return
        self._locks[_lock_unit(self._addr % SIZE)] = int(lock)
        self._wel = False

    def _global_lock(self, lock: bool) -> None:
        if not self._wel:
            self._log_once("glock-wel", "global block lock/unlock with WEL=0: ignored")
            return
        self._locks[:] = bytes((int(lock),)) * _LOCK_UNITS
        self._wel = False

    # ---------------------------------------------------------------- protection
    def protected_range(self) -> tuple[int, int]:
        """[start, end) selected by SEC/TB/BP2-0 with CMP=0 (FACTS §D.2 table)."""
        sr1 = self._sr[0]
        bp = (sr1 & SR1_BP) >> 2
        if bp == 0:
            return (0, 0)
        if bp == 7:
            return (0, SIZE)
        if sr1 & SR1_SEC:
            # 4/8/16/32 KB; BP=101 and (assumed) BP=110 also give 32 KB
            size = SECTOR_SIZE << (min(bp, 4) - 1)
        else:
            size = (128 * 1024) << (bp - 1)  # 128 KB .. 4 MB
        return (0, size) if sr1 & SR1_TB else (SIZE - size, SIZE)

    def is_protected(self, start: int, length: int = 1) -> bool:
        """True when any byte of [start, start+length) is write-protected."""
        if length <= 0:
            return False
        end = start + length
        if self._sr[2] & SR3_WPS:
            a = start - start % SECTOR_SIZE
            while a < end:
                if self._locked(a):
                    return True
                a += SECTOR_SIZE
            return False
        lo, hi = self.protected_range()
        inside = start < hi and lo < end
        if not self._sr[1] & SR2_CMP:
            return inside
        # CMP=1: everything outside [lo, hi) is protected
        return start < lo or end > hi

    # ---------------------------------------------------------------- status register writes
    def _write_status(self, first: int) -> None:
        data = bytes(self._out)
        allowed = (1, 2) if first == 0 else (1,)
        if len(data) not in allowed:
            self._log_once(f"wrsr-len{first}", f"write status {first + 1} with {len(data)} bytes: ignored")
            return
        if self._sr[1] & SR2_SRL:
            self._log_once("srl", "status registers locked (SRL=1): write ignored")
            return
        regs = list(range(first, first + len(data)))
        if self._vsr_enabled:
            self._vsr_enabled = False
            for reg, byte in zip(regs, data, strict=True):
                # LB bits are one-time programmable: only a non-volatile write sets them
                mask = _SR_WRITABLE[reg] & ~(SR2_LB if reg == 1 else 0)
                self._sr[reg] = (self._sr[reg] & ~mask) | (byte & mask)
            return
        if not self._wel:
            self._log_once("wrsr-wel", "write status register with WEL=0: ignored")
            return
        new = list(self._sr_nv)
        for reg, byte in zip(regs, data, strict=True):
            mask = _SR_WRITABLE[reg]
            new[reg] = (new[reg] & ~mask) | (byte & mask)
            if reg == 1:
                new[1] |= self._sr_nv[1] & SR2_LB  # OTP: once set, LB bits stay set

        def apply(fraction: float) -> None:
            if fraction >= 1.0:
                self._sr_nv = list(new)
                for reg in regs:
                    self._sr[reg] = new[reg]

        self._start(_Operation(OP_WRITE_STATUS, self.timing.write_status_ns, TYPICAL.write_status_ns, apply))

    # ---------------------------------------------------------------- program / erase
    def _page_program(self) -> None:
        data = bytes(self._out)
        addr = self._addr % SIZE
        if not data:
            self._log_once("pp-empty", "page program without data: ignored")
            return
        if not self._wel:
            self._log_once("pp-wel", "page program with WEL=0: ignored")
            return
        page = addr - addr % PAGE_SIZE
        if self._suspended is not None:
            region = self._suspended.erase_range
            if region is None or region[0] <= page < region[1]:
                self._log_once("pp-sus", "page program while program-suspended or inside the suspended erase")
                return
        if self.is_protected(page, PAGE_SIZE):
            self._log_once("pp-prot", f"page program of protected page {page:#08x}: ignored")
            return
        # FACTS §D.4: addressing wraps inside the page; only the last 256 bytes sent are kept.
        first = max(0, len(data) - PAGE_SIZE)
        kept = data[first:]
        offset = (addr + first) % PAGE_SIZE  # where the first kept byte lands

        def apply(fraction: float) -> None:
            # a cut program leaves the first bytes sent programmed (prefix of the kept bytes)
            self._program_page(page, offset, kept, int(len(kept) * fraction) if fraction < 1.0 else len(kept))

        self._start(
            _Operation(
                OP_PAGE_PROGRAM, self.timing.page_program_ns, TYPICAL.page_program_ns, apply, suspendable=True
            )
        )

    def _erase(self, size: int, name: str, duration: int) -> None:
        start = (self._addr % SIZE) & ~(size - 1)
        if not self._wel:
            self._log_once(f"erase-wel-{size}", f"{name} with WEL=0: ignored")
            return
        if self.is_protected(start, size):
            self._log_once(f"erase-prot-{size}", f"{name} of protected range {start:#08x}: ignored")
            return
        nominal = {
            SECTOR_SIZE: TYPICAL.sector_erase_ns,
            BLOCK32_SIZE: TYPICAL.block_erase_32k_ns,
            BLOCK64_SIZE: TYPICAL.block_erase_64k_ns,
        }[size]
        op = _Operation(
            name,
            duration,
            nominal,
            lambda f: self._erase_prefix(start, size, f),
            suspendable=True,
            erase_range=(start, start + size),
        )
        self._start(op)

    def _chip_erase(self) -> None:
        if not self._wel:
            self._log_once("ce-wel", "chip erase with WEL=0: ignored")
            return
        if self.is_protected(0, SIZE):
            self._log_once("ce-prot", "chip erase while part of the array is protected: ignored")
            return
        self._start(
            _Operation(
                OP_CHIP_ERASE,
                self.timing.chip_erase_ns,
                TYPICAL.chip_erase_ns,
                lambda f: self._erase_prefix(0, SIZE, f),
            )
        )

    def _erase_security_register(self) -> None:
        index = self._security_index(self._addr)
        if not self._security_writable(index, "erase"):
            return
        assert index is not None
        reg = self.security_registers[index]

        def apply(fraction: float) -> None:
            n = SECURITY_REGISTER_SIZE if fraction >= 1.0 else int(SECURITY_REGISTER_SIZE * fraction)
            reg[:n] = b"\xff" * n

        self._start(
            _Operation(OP_SECURITY_ERASE, self.timing.sector_erase_ns, TYPICAL.sector_erase_ns, apply)
        )

    def _program_security_register(self) -> None:
        index = self._security_index(self._addr)
        data = bytes(self._out)
        if not data or not self._security_writable(index, "program"):
            return
        assert index is not None
        reg = self.security_registers[index]
        offset = self._addr & 0xFF
        first = max(0, len(data) - SECURITY_REGISTER_SIZE)
        items = [((offset + i) % SECURITY_REGISTER_SIZE, data[i]) for i in range(first, len(data))]

        def apply(fraction: float) -> None:
            for pos, value in items if fraction >= 1.0 else items[: int(len(items) * fraction)]:
                reg[pos] &= value

        self._start(
            _Operation(OP_SECURITY_PROGRAM, self.timing.page_program_ns, TYPICAL.page_program_ns, apply)
        )

    def _security_writable(self, index: int | None, what: str) -> bool:
        if index is None:
            self._log_once(f"sec-addr-{what}", f"security register {what} at an invalid address: ignored")
            return False
        if not self._wel:
            self._log_once(f"sec-wel-{what}", f"security register {what} with WEL=0: ignored")
            return False
        if self._sr[1] & (0x08 << index):
            self._log_once(f"sec-lb-{what}", f"security register {index + 1} is locked (LB): {what} ignored")
            return False
        return True

    # -- operation lifecycle
    def _start(self, op: _Operation) -> None:
        now = self.host.now_ns()
        plan_ns = op.duration_ns or op.nominal_ns
        if self.power_cut is not None:
            offset = self.power_cut.on_operation(op.name, now, plan_ns)
            if offset is not None:
                op.cut_fraction = offset / max(plan_ns, 1)
                op.cut_offset_ns = min(offset, op.duration_ns)
        if op.duration_ns == 0:
            if op.cut_fraction is not None:
                self._cut(op)
            else:
                self._finish(op)
            return
        self._active = op
        self._run(op)

    def _run(self, op: _Operation) -> None:
        now = self.host.now_ns()
        op.run_start_ns = now
        if op.cut_offset_ns is not None:
            op.timer = self.host.schedule(
                op.cut_offset_ns - op.elapsed_ns, lambda: self._cut(op), op.name + " cut"
            )
        else:
            op.timer = self.host.schedule(op.duration_ns - op.elapsed_ns, lambda: self._finish(op), op.name)

    def _finish(self, op: _Operation) -> None:
        if self._active is op:
            self._active = None
        op.apply(1.0)
        self._wel = False

    def _cut(self, op: _Operation) -> None:
        if self._active is op:
            self._active = None
        assert op.cut_fraction is not None
        op.apply(op.cut_fraction)
        self._abandon_operations()  # a suspended operation stops where it stands as well
        self.powered = False
        self._continuous = None
        self.host.power_off(f"{self.name}: power cut during {op.name} at {op.cut_fraction:.0%}")

    def _suspend(self) -> None:
        op = self._active
        if op is None or not op.suspendable or self._suspended is not None:
            self._log_once("sus-none", "75h with nothing suspendable in progress: ignored")
            return
        now = self.host.now_ns()
        if op.timer is not None:
            op.timer.cancel()
        op.elapsed_ns = op.elapsed_at(now, True)
        self._active = None
        self._suspended = op
        self._busy_until = now + self.timing.suspend_ns  # BUSY falls within tSUS

    def _resume(self) -> None:
        op = self._suspended
        if op is None:
            self._log_once("resume-none", "7Ah while not suspended: ignored")
            return
        self._suspended = None
        self._active = op
        self._run(op)

    # -- array changes (wear and stuck bits applied here)
    def _program_page(self, page: int, offset: int, data: bytes, count: int) -> None:
        """Program ``data[:count]`` into ``page`` from byte ``offset`` on, wrapping in the page.

        Same result as :meth:`_program` of the (address, byte) pairs; the common case (no wrap,
        sector not worn) ANDs the bytes as one integer instead of byte by byte.
        """
        if count <= 0:
            return
        sector = page // SECTOR_SIZE  # a page lies inside one sector
        if offset + count > PAGE_SIZE or self.erase_counts[sector] > self.endurance:
            self._program([(page + (offset + i) % PAGE_SIZE, data[i]) for i in range(count)])
            return
        lo = page + offset
        hi = lo + count
        arr = self.array
        cells = int.from_bytes(arr[lo:hi], "little") & int.from_bytes(data[:count], "little")
        arr[lo:hi] = cells.to_bytes(count, "little")
        self._apply_stuck(lo, hi)
        self._notify(lo, count)

    def _program(self, items: list[tuple[int, int]]) -> None:
        if not items:
            return
        lo = min(a for a, _ in items)
        hi = max(a for a, _ in items) + 1
        arr = self.array
        for addr, value in items:
            old = arr[addr]
            new = old & value
            sector = addr // SECTOR_SIZE
            cycle = self.erase_counts[sector]
            if cycle > self.endurance:
                # worn cell: some bits that should go 1 -> 0 stay 1
                fail = self._wear_bits(sector, cycle, "program").get(addr % SECTOR_SIZE, 0)
                new |= old & ~value & fail
            arr[addr] = new
        self._apply_stuck(lo, hi)
        self._notify(lo, hi - lo)

    def _erase_prefix(self, start: int, length: int, fraction: float) -> None:
        done = length if fraction >= 1.0 else int(length * fraction)
        if done <= 0:
            return
        arr = self.array
        for sector_start in range(start, start + length, SECTOR_SIZE):
            n = min(SECTOR_SIZE, done - (sector_start - start))
            if n <= 0:
                break
            sector = sector_start // SECTOR_SIZE
            self.erase_counts[sector] += 1
            arr[sector_start : sector_start + n] = b"\xff" * n
            cycle = self.erase_counts[sector]
            if cycle > self.endurance:
                # worn cell: some bits stay 0 after the erase
                for off, bits in self._wear_bits(sector, cycle, "erase").items():
                    if off < n:
                        arr[sector_start + off] &= ~bits & 0xFF
        self._apply_stuck(start, start + done)
        self._notify(start, done)

    def _wear_bits(self, sector: int, cycle: int, kind: str) -> dict[int, int]:
        """Failing bits of a worn sector at a cycle: {byte offset in sector: bit mask}."""
        key = (sector, cycle, kind)
        bits = self._wear_cache.get(key)
        if bits is None:
            count = min(SECTOR_SIZE * 8, 8 * (cycle - self.endurance))
            rng = random.Random(f"w25q64-wear:{self.seed}:{sector}:{cycle}:{kind}")
            bits = {}
            for pos in rng.sample(range(SECTOR_SIZE * 8), count):
                bits[pos >> 3] = bits.get(pos >> 3, 0) | (1 << (pos & 7))
            if len(self._wear_cache) > 256:
                self._wear_cache.clear()
            self._wear_cache[key] = bits
        return bits

    def _apply_stuck(self, lo: int, hi: int) -> None:
        for addr, bit, value in self.stuck_bits:
            if lo <= addr < hi:
                if value:
                    self.array[addr] |= 1 << bit
                else:
                    self.array[addr] &= ~(1 << bit) & 0xFF

    # ---------------------------------------------------------------- fault injection
    @staticmethod
    def _check_bit(addr: int, bit: int) -> None:
        if not 0 <= addr < SIZE:
            raise ValueError(f"address {addr:#x} outside the 8 MiB array")
        if not 0 <= bit <= 7:
            raise ValueError(f"bit {bit} is not 0..7")

    def inject_stuck_bit(self, addr: int, bit: int, value: int) -> None:
        """Bit ``bit`` of byte ``addr`` ends every later program/erase of that byte at ``value``."""
        self._check_bit(addr, bit)
        if value not in (0, 1):
            raise ValueError(f"stuck bit value must be 0 or 1, got {value}")
        self.stuck_bits = [s for s in self.stuck_bits if (s[0], s[1]) != (addr, bit)]
        self.stuck_bits.append((addr, bit, value))

    def clear_stuck_bits(self) -> None:
        self.stuck_bits = []

    def inject_bit_flip(self, addr: int, bit: int) -> None:
        """Flip one stored bit now (a one-shot disturb)."""
        self._check_bit(addr, bit)
        self.array[addr] ^= 1 << bit
        self._notify(addr, 1)

    def is_worn(self, sector: int) -> bool:
        return self.erase_counts[sector] > self.endurance

    def load_array(self, data: bytes, offset: int = 0) -> None:
        """Replace array bytes (e.g. from a saved image); listeners are told."""
        if offset < 0 or offset + len(data) > SIZE:
            raise ValueError(f"{len(data)} bytes at {offset:#x} do not fit the 8 MiB array")
        self.array[offset : offset + len(data)] = data
        self._notify(offset, len(data))

    # ---------------------------------------------------------------- persistence
    def to_metadata(self) -> dict[str, Any]:
        """JSON-serialisable non-volatile state besides :attr:`array`."""
        return {
            "model": "W25Q64JV",
            "format": 1,
            "status_registers": list(self._sr_nv),
            "unique_id": f"{self.unique_id:016x}",
            "endurance": self.endurance,
            "seed": self.seed,
            "stuck_bits": [list(s) for s in self.stuck_bits],
            "erase_counts": list(self.erase_counts),
            "security_registers": [bytes(r).hex() for r in self.security_registers],
        }

    def load_metadata(self, meta: dict[str, Any]) -> None:
        """Restore what :meth:`to_metadata` produced (keys may be missing: kept as they are).

        Everything is checked before anything changes. The volatile status bits are reloaded
        from the non-volatile ones, as at power-up.
        """
        if not isinstance(meta, dict):
            raise ValueError(f"{self.name} metadata must be a dict, got {type(meta).__name__}")
        model = meta.get("model", "W25Q64JV")
        if model != "W25Q64JV":
            raise ValueError(f"{self.name} metadata is for {model!r}, not W25Q64JV")
        updates: dict[str, Any] = {}
        if "status_registers" in meta:
            sr = meta["status_registers"]
            if not (isinstance(sr, list) and len(sr) == 3 and all(_is_int(v, 0, 0xFF) for v in sr)):
                raise ValueError(f"{self.name} metadata: status_registers must be 3 bytes, got {sr!r}")
            updates["sr"] = [v & m for v, m in zip(sr, _SR_WRITABLE, strict=True)]
        if "unique_id" in meta:
            uid = meta["unique_id"]
            try:
                uid = int(uid, 16) if isinstance(uid, str) else uid
            except ValueError:
                uid = None
            if not _is_int(uid, 0, (1 << 64) - 1):
                raise ValueError(
                    f"{self.name} metadata: unique_id must be a 64-bit value, got {meta['unique_id']!r}"
                )
            updates["unique_id"] = uid
        if "endurance" in meta:
            if not _is_int(meta["endurance"], 1, None):
                raise ValueError(f"{self.name} metadata: endurance must be >= 1, got {meta['endurance']!r}")
            updates["endurance"] = meta["endurance"]
        if "seed" in meta:
            if not _is_int(meta["seed"], None, None):
                raise ValueError(f"{self.name} metadata: seed must be an integer, got {meta['seed']!r}")
            updates["seed"] = meta["seed"]
        if "stuck_bits" in meta:
            stuck = []
            for entry in meta["stuck_bits"]:
                ok = isinstance(entry, list | tuple) and len(entry) == 3
                if not (
                    ok and _is_int(entry[0], 0, SIZE - 1) and _is_int(entry[1], 0, 7) and entry[2] in (0, 1)
                ):
                    raise ValueError(
                        f"{self.name} metadata: bad stuck bit {entry!r} (want [address, bit, 0|1])"
                    )
                stuck.append((int(entry[0]), int(entry[1]), int(entry[2])))
            updates["stuck_bits"] = stuck
        if "erase_counts" in meta:
            counts = meta["erase_counts"]
            if not (
                isinstance(counts, list)
                and len(counts) == SECTOR_COUNT
                and all(_is_int(c, 0, None) for c in counts)
            ):
                raise ValueError(
                    f"{self.name} metadata: erase_counts must be {SECTOR_COUNT} non-negative integers"
                )
            updates["erase_counts"] = counts
        if "security_registers" in meta:
            regs = meta["security_registers"]
            try:
                decoded = [bytes.fromhex(r) for r in regs]
            except (TypeError, ValueError):
                decoded = []
            if len(decoded) != SECURITY_REGISTER_COUNT or any(
                len(r) != SECURITY_REGISTER_SIZE for r in decoded
            ):
                raise ValueError(
                    f"{self.name} metadata: security_registers must be 3 hex strings of 256 bytes"
                )
            updates["security_registers"] = decoded
        # all checked: apply
        if "sr" in updates:
            self._sr_nv = updates["sr"]
            self._sr = list(self._sr_nv)
        for key in ("unique_id", "endurance", "seed", "stuck_bits"):
            if key in updates:
                setattr(self, key, updates[key])
        if "erase_counts" in updates:
            self.erase_counts[:] = [int(c) for c in updates["erase_counts"]]
        if "security_registers" in updates:
            for reg, data in zip(self.security_registers, updates["security_registers"], strict=True):
                reg[:] = data
        self._wear_cache.clear()

    def describe(self) -> str:
        worn = sum(1 for c in self.erase_counts if c > self.endurance)
        return (
            f"{self.name}: SR={self.status_register(1):02x} {self.status_register(2):02x} "
            f"{self.status_register(3):02x}, max erase count {max(self.erase_counts)}, {worn} worn sectors"
        )


def _is_int(value: object, lo: int | None, hi: int | None) -> bool:
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    return (lo is None or value >= lo) and (hi is None or value <= hi)
