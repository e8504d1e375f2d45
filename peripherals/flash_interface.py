"""STM32H743 embedded flash interface: FLASH registers (0x52002000, IRQ 4) and the two 1 MiB banks.

Facts: reference/FACTS.md §A.1 (memory map), §B (registers, keys, sequences, misuse, timing) and
§I (what ST's HAL polls). The model owns the 2 MiB array and publishes it at 0x08000000; CPU reads
see it directly, CPU writes arrive at :meth:`FlashInterface._axi_write` and go through the 256-bit
write buffer of the addressed bank exactly as the RM describes.

Choices where the RM leaves room (each one is marked "model choice" where it is implemented):

* Programming a non-virgin flash word (not all 0xFF, data not all 0xFF and not equal to the stored
  word) stores ``old AND new`` and marks the word's ECC inconsistent as a *double* error: later
  reads set DBECCERR and end in a bus error (the RM only says "may give an inconsistent ECC").
* INCERR (different flash word or a burst crossing a 32-byte boundary) discards the partly filled
  buffer: nothing is programmed.
* Worn sectors (cycle number above ``endurance``): the operation ends with OPERR instead of EOP;
  a deterministic (seeded) subset of bits is not programmed / not erased. The ECC stays consistent
  with what is stored, so read-back verification sees wrong bits rather than a bus fault.
* Power cut: program leaves the first ``32 * fraction`` bytes programmed and the word's ECC
  inconsistent (double); sector/bank erase leaves a prefix of whole flash words erased (bank erase
  runs its sectors in order). Registers lose power, so OPERR is *not* reported after the next
  power-on; the torn data (and the ECC error of a torn word) is what remains. A system reset
  (``reset()``) while an operation is executing tears it the same way and then sets OPERR in that
  bank (RM: "write/erase error ... interrupted operation").
* Bank erase time = 8 x sector erase time (DS12110 gives no figure; FACTS §B.7 [U]).
* Stuck bits are forced on every later program/erase result; they raise no ECC flag.
* ECC_FA latches the first failing word (flash-word index in its bank) while no ECC flag is set;
  a double error overrides a latched single one; it reads 0 again once both ECC flags are cleared.
* Option bytes: OPTSTART applies OPTSR_PRG/WPSN_PRG/PRAR_PRG/SCAR_PRG/BOOT_PRG at once. Changes of
  RDP, SECURITY or SWAP_BANK_OPT are not modelled and are refused with OPTCHANGEERR (logged).
* The CRC unit's registers exist and hold their values, but no CRC is computed (logged once).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from peripherals.host import DEBUG, INFO, NS_PER_MS, NS_PER_US, WARNING, Host, Timer
from peripherals.power_cut import PowerCutPlan
from peripherals.registers import Access, Peripheral, Register

# -- geometry (FACTS §A.1) ----------------------------------------------------------------------
REGISTER_BASE = 0x5200_2000
FLASH_IRQ = 4
FLASH_BASE = 0x0800_0000
BANK_SIZE = 0x10_0000
NUM_BANKS = 2
FLASH_SIZE = BANK_SIZE * NUM_BANKS
SECTOR_SIZE = 0x2_0000
SECTORS_PER_BANK = BANK_SIZE // SECTOR_SIZE
NUM_SECTORS = SECTORS_PER_BANK * NUM_BANKS
WORD_SIZE = 32  # one 256-bit flash word
WORDS_PER_BANK = BANK_SIZE // WORD_SIZE
WORDS_PER_SECTOR = SECTOR_SIZE // WORD_SIZE
BANK_REG_STRIDE = 0x100  # bank-2 registers sit 0x100 above bank 1's
ERASED = 0xFF
_WORD_ONES = (1 << (8 * WORD_SIZE)) - 1
_ALL_LANES = (1 << WORD_SIZE) - 1

# -- keys (FACTS §B.4) --------------------------------------------------------------------------
KEY1, KEY2 = 0x4567_0123, 0xCDEF_89AB
OPTKEY1, OPTKEY2 = 0x0819_2A3B, 0x4C5D_6E7F

# -- FLASH_SRx bits; CRx has the matching xxxIE bit, CCRx the matching CLR_xxx bit (FACTS §B.3) ---
SR_BSY = 1 << 0
SR_WBNE = 1 << 1
SR_QW = 1 << 2
SR_CRC_BUSY = 1 << 3
SR_FLAGS: dict[str, int] = {
    "EOP": 16,
    "WRPERR": 17,
    "PGSERR": 18,
    "STRBERR": 19,
    "INCERR": 21,
    "OPERR": 22,
    "RDPERR": 23,
    "RDSERR": 24,
    "SNECCERR": 25,
    "DBECCERR": 26,
    "CRCEND": 27,
    "CRCRDERR": 28,
}
EOP = 1 << SR_FLAGS["EOP"]
WRPERR = 1 << SR_FLAGS["WRPERR"]
PGSERR = 1 << SR_FLAGS["PGSERR"]
STRBERR = 1 << SR_FLAGS["STRBERR"]
INCERR = 1 << SR_FLAGS["INCERR"]
OPERR = 1 << SR_FLAGS["OPERR"]
SNECCERR = 1 << SR_FLAGS["SNECCERR"]
DBECCERR = 1 << SR_FLAGS["DBECCERR"]
SR_IRQ_FLAGS = sum(1 << bit for bit in SR_FLAGS.values())
LOCK_BIT = 1 << 0  # LOCK in CRx, OPTLOCK in OPTCR

# -- option bytes (FACTS §B.1; factory values: model choice where the RM gives none) -------------
OPTSR_OPT_BUSY = 1 << 0
OPTSR_OPTCHANGEERR = 1 << 30
OPTSR_RDP = 0xFF << 8
OPTSR_SECURITY = 1 << 21
OPTSR_SWAP_BANK_OPT = 1 << 31
# BOR_LEV, IWDG1_SW, NRST_STOP_D1, NRST_STBY_D1, RDP, FZ_IWDG_*, ST_RAM_SIZE, SECURITY, IO_HSLV, SWAP
OPTSR_USER_MASK = 0xA03E_FFDC
OPTSR_NOT_MODELLED = OPTSR_RDP | OPTSR_SECURITY | OPTSR_SWAP_BANK_OPT
FACTORY_OPTSR = 0x0006_AAD0  # RDP level 0 (0xAA), IWDG by software, no reset on Stop/Standby [U]
FACTORY_WPSN = 0xFF  # active-low: 1 = sector not protected
FACTORY_PRAR = 0x0000_00FF  # start > end: no PCROP area [U]
FACTORY_SCAR = 0x0000_00FF  # start > end: no secure area [U]
FACTORY_BOOT = 0x1FF0_0800  # BOOT_ADD0 = 0x0800 (0x08000000), BOOT_ADD1 = 0x1FF0 (system memory)
AREA_UNIT = 0x100  # PRAR/SCAR start/end granularity (bytes)

# -- timing (FACTS §B.7, typical values, indexed by PSIZE: x8, x16, x32, x64) -------------------
TPROG_NS = (290 * NS_PER_US, 180 * NS_PER_US, 130 * NS_PER_US, 100 * NS_PER_US)
TERASE_SECTOR_NS = (2000 * NS_PER_MS, 1800 * NS_PER_MS, 1100 * NS_PER_MS, 1000 * NS_PER_MS)
BANK_ERASE_SECTOR_TIMES = SECTORS_PER_BANK  # [U] bank erase = 8 sector erases
TIMING_PROFILES = ("datasheet", "fast")

DEFAULT_ENDURANCE = 10_000

ECC_SINGLE = "single"
ECC_DOUBLE = "double"
METADATA_MODEL = "stm32h743-flash"
METADATA_VERSION = 1


class KeyLock:
    """A lock opened by writing two keys in order (FLASH_KEYRx, FLASH_OPTKEYR), FACTS §B.4.

    Any mistake (wrong key, a key while already unlocked, a sub-word key write, another register
    of the same group written between the keys) freezes the lock until the next reset; the caller
    turns the returned reason into a bus error.
    """

    def __init__(self, name: str, keys: tuple[int, int]) -> None:
        self.name = name
        self.keys = keys
        self.reset()

    def reset(self) -> None:
        self.locked = True
        self.expecting_second = False
        self.frozen = False

    def key_write(self, value: int, size: int) -> str | None:
        """Apply a write to the key register; returns a bus-error reason or None."""
        if self.frozen:
            return self._fail("key written while locked until reset")
        if size != 4:
            return self._fail(f"{8 * size}-bit key write (keys must be written as 32-bit words)")
        if not self.locked:
            return self._fail("key written while already unlocked")
        expected = self.keys[1] if self.expecting_second else self.keys[0]
        if value != expected:
            return self._fail(f"wrong key {value:#010x} (expected {expected:#010x})")
        if self.expecting_second:
            self.locked = False
            self.expecting_second = False
        else:
            self.expecting_second = True
        return None

    def interrupt(self, register: str) -> str | None:
        """Another register of the group was written; fatal between the two keys."""
        if self.expecting_second:
            return self._fail(f"{register} written between the two keys")
        return None

    def relock(self) -> None:
        self.locked = True
        self.expecting_second = False

    def _fail(self, why: str) -> str:
        self.locked = True
        self.expecting_second = False
        self.frozen = True
        return f"{self.name}: {why}; locked until reset"


@dataclass
class WriteBuffer:
    """The 256-bit write buffer of one bank."""

    word: int | None = None  # flash word index (global) being collected
    data: bytearray = field(default_factory=lambda: bytearray([ERASED] * WORD_SIZE))
    written: int = 0  # one bit per byte lane already written

    def clear(self) -> None:
        self.word = None
        self.data[:] = bytes([ERASED] * WORD_SIZE)
        self.written = 0

    @property
    def empty(self) -> bool:
        return self.written == 0

    @property
    def full(self) -> bool:
        return self.written == _ALL_LANES


@dataclass
class Operation:
    """One program or erase operation queued or executing in a bank."""

    kind: str  # "program" | "sector_erase" | "bank_erase" (also the PowerCutPlan name suffix)
    bank: int  # 0 or 1
    offset: int  # first byte (array offset) it affects
    length: int
    duration_ns: int
    data: bytes = b""  # program only
    started_ns: int = 0
    timer: Timer | None = None
    #: typical duration, what the power-cut plan sees (duration_ns is 0 in the fast profile)
    nominal_ns: int = 0
    #: where a planned power cut tears it, as a fraction of its duration
    cut_fraction: float | None = None

    @property
    def name(self) -> str:
        return f"flash.{self.kind}"


@dataclass
class OptionBytes:
    """The non-volatile option bytes; they survive resets (and are saved with the board)."""

    optsr: int = FACTORY_OPTSR
    wpsn: list[int] = field(default_factory=lambda: [FACTORY_WPSN] * NUM_BANKS)
    prar: list[int] = field(default_factory=lambda: [FACTORY_PRAR] * NUM_BANKS)
    scar: list[int] = field(default_factory=lambda: [FACTORY_SCAR] * NUM_BANKS)
    boot: int = FACTORY_BOOT

    def to_json(self) -> dict:
        return {
            "optsr": self.optsr,
            "wpsn": list(self.wpsn),
            "prar": list(self.prar),
            "scar": list(self.scar),
            "boot": self.boot,
        }

    @classmethod
    def from_json(cls, d: object) -> OptionBytes:
        if not isinstance(d, dict):
            raise ValueError("option_bytes must be an object")
        try:
            ob = cls(
                optsr=_u32(d["optsr"], "option_bytes.optsr") & OPTSR_USER_MASK,
                wpsn=_u32_list(d["wpsn"], "option_bytes.wpsn", 0xFF),
                prar=_u32_list(d["prar"], "option_bytes.prar", 0xFFFF_FFFF),
                scar=_u32_list(d["scar"], "option_bytes.scar", 0xFFFF_FFFF),
                boot=_u32(d["boot"], "option_bytes.boot"),
            )
        except KeyError as e:
            raise ValueError(f"option_bytes: missing {e.args[0]!r}") from None
        return ob


def _u32(v: object, what: str, limit: int = 0xFFFF_FFFF) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
        raise ValueError(f"{what}: expected an integer 0..{limit:#x}, got {v!r}")
    return v


def _u32_list(v: object, what: str, limit: int) -> list[int]:
    if not isinstance(v, list) or len(v) != NUM_BANKS:
        raise ValueError(f"{what}: expected a list of {NUM_BANKS} integers, got {v!r}")
    return [_u32(x, what, limit) for x in v]


def _area_contains(reg: int, bank_offset: int, length: int) -> bool:
    """Does a PRAR/SCAR area (start/end in 256-byte units, start > end = none) overlap the range?"""
    start = reg & 0xFFF
    end = (reg >> 16) & 0xFFF
    if start > end:
        return False
    lo, hi = start * AREA_UNIT, (end + 1) * AREA_UNIT
    return bank_offset < hi and lo < bank_offset + length


class FlashInterface(Peripheral):
    """STM32H743 FLASH interface with both banks (see the module docstring for model choices)."""

    size = 0x400

    def __init__(
        self,
        host: Host,
        irq: int = FLASH_IRQ,
        *,
        timing: str = "datasheet",
        endurance: int = DEFAULT_ENDURANCE,
        seed: int = 0,
        power_cut: PowerCutPlan | None = None,
        name: str = "FLASH",
    ) -> None:
        super().__init__(host, name)
        if timing not in TIMING_PROFILES:
            raise ValueError(f"{name}: timing profile must be one of {TIMING_PROFILES}, got {timing!r}")
        if endurance < 0:
            raise ValueError(f"{name}: endurance must be >= 0, got {endurance}")
        self.irq = irq
        self.timing = timing
        self.endurance = endurance
        self.seed = seed
        self.power_cut = power_cut
        self.array = bytearray([ERASED] * FLASH_SIZE)
        self.erase_counts = [0] * NUM_SECTORS
        self.option_bytes = OptionBytes()
        #: byte offset -> {bit: value}
        self.stuck_bits: dict[int, dict[int, int]] = {}
        #: global flash-word index -> ECC_SINGLE / ECC_DOUBLE
        self.ecc_errors: dict[int, str] = {}
        self._ecc_unwatch: dict[int, Callable[[], None]] = {}
        self._locks = [KeyLock(f"{name}.KEYR{b + 1}", (KEY1, KEY2)) for b in range(NUM_BANKS)]
        self._optlock = KeyLock(f"{name}.OPTKEYR", (OPTKEY1, OPTKEY2))
        self._buffers = [WriteBuffer() for _ in range(NUM_BANKS)]
        self._queues: list[deque[Operation]] = [deque() for _ in range(NUM_BANKS)]
        self._running: list[Operation | None] = [None] * NUM_BANKS
        self._irq_level = False
        # key register offset -> its lock; register offset -> the lock whose key sequence a write
        # to that register interrupts (bank registers: KEYRx; option registers: OPTKEYR)
        self._key_of_offset: dict[int, KeyLock] = {}
        self._group_of_offset: dict[int, KeyLock] = {}
        # register offset -> the key lock whose LOCK bit (bit 0) it holds
        self._lock_bit_of_offset: dict[int, KeyLock] = {}
        self._logged: set[str] = set()
        self._define_registers()
        self._load_option_registers()
        host.map_memory("flash", FLASH_BASE, self.array, executable=True, on_write=self._axi_write)

    # ============================================================================================
    # register definitions
    # ============================================================================================
    def _define_registers(self) -> None:
        r = self.regs
        opt = self._optlock

        def opt_unlocked() -> bool:
            return not opt.locked

        r.define(0x000, "ACR", reset=0x37).field(0, 4, "LATENCY").field(4, 2, "WRHIGHFREQ")
        r.alias(0x100, "ACR")

        r.define(0x008, "OPTKEYR", access=Access.WO)
        r.alias(0x108, "OPTKEYR")
        self._key_of_offset[0x008] = self._key_of_offset[0x108] = opt

        optcr = r.define(0x018, "OPTCR", reset=0x1, on_write=lambda _o, _n: self._update_irq())
        # LOCK/OPTLOCK read the key lock's state; setting them is handled in write()
        optcr.field(0, 1, "OPTLOCK", access=Access.RO, on_read=lambda: int(opt.locked))
        optcr.field(1, 1, "OPTSTART", access=Access.SC, on_write=self._optstart)
        optcr.field(4, 1, "MER", access=Access.SC, on_write=self._mass_erase)
        optcr.field(30, 1, "OPTCHANGEERRIE", writable_when=opt_unlocked)
        optcr.field(31, 1, "SWAP_BANK", access=Access.RO)
        r.alias(0x118, "OPTCR")
        self._lock_bit_of_offset[0x018] = self._lock_bit_of_offset[0x118] = opt

        user_fields = (
            (2, 2, "BOR_LEV"),
            (4, 1, "IWDG1_SW"),
            (6, 1, "NRST_STOP_D1"),
            (7, 1, "NRST_STBY_D1"),
            (8, 8, "RDP"),
            (17, 1, "FZ_IWDG_STOP"),
            (18, 1, "FZ_IWDG_SDBY"),
            (19, 2, "ST_RAM_SIZE"),
            (21, 1, "SECURITY"),
            (29, 1, "IO_HSLV"),
            (31, 1, "SWAP_BANK_OPT"),
        )
        cur = r.define(0x01C, "OPTSR_CUR")
        cur.field(0, 1, "OPT_BUSY", access=Access.RO).field(30, 1, "OPTCHANGEERR", access=Access.RO)
        prg = r.define(0x020, "OPTSR_PRG")
        for lsb, width, fname in user_fields:
            cur.field(lsb, width, fname, access=Access.RO)
            prg.field(lsb, width, fname, writable_when=opt_unlocked)
        r.alias(0x11C, "OPTSR_CUR")
        r.alias(0x120, "OPTSR_PRG")

        r.define(0x024, "OPTCCR").field(
            30, 1, "CLR_OPTCHANGEERR", access=Access.WO, on_write=self._clr_optchangeerr
        )
        r.alias(0x124, "OPTCCR")

        r.define(0x040, "BOOT_CUR").field(0, 16, "BOOT_ADD0", access=Access.RO).field(
            16, 16, "BOOT_ADD1", access=Access.RO
        )
        r.define(0x044, "BOOT_PRG").field(0, 16, "BOOT_ADD0", writable_when=opt_unlocked).field(
            16, 16, "BOOT_ADD1", writable_when=opt_unlocked
        )
        for off in (0x018, 0x020, 0x024, 0x044, 0x118, 0x120, 0x124):
            self._group_of_offset[off] = opt

        for b in range(NUM_BANKS):
            self._define_bank(b)

    def _define_bank(self, b: int) -> None:
        r = self.regs
        n = b + 1
        base = BANK_REG_STRIDE * b
        lock = self._locks[b]
        opt = self._optlock

        def unlocked() -> bool:
            return not lock.locked

        def opt_unlocked() -> bool:
            return not opt.locked

        r.define(base + 0x04, f"KEYR{n}", access=Access.WO)
        self._key_of_offset[base + 0x04] = lock

        cr = r.define(base + 0x0C, f"CR{n}", reset=0x31, on_write=lambda _o, _n: self._update_irq())
        cr.field(0, 1, "LOCK", access=Access.RO, on_read=lambda: int(lock.locked))
        cr.field(1, 1, "PG", writable_when=unlocked, on_write=self._pg_write(b))
        cr.field(2, 1, "SER", writable_when=unlocked)
        cr.field(3, 1, "BER", writable_when=unlocked)
        cr.field(4, 2, "PSIZE", writable_when=unlocked)
        cr.field(6, 1, "FW", access=Access.SC, writable_when=unlocked, on_write=self._fw_write(b))
        cr.field(7, 1, "START", access=Access.SC, writable_when=unlocked, on_write=self._start_write(b))
        cr.field(8, 3, "SNB", writable_when=unlocked)
        cr.field(15, 1, "CRC_EN", writable_when=unlocked)
        for flag, bit in SR_FLAGS.items():
            cr.field(bit, 1, f"{flag}IE", writable_when=unlocked)
        self._lock_bit_of_offset[base + 0x0C] = lock

        sr = r.define(base + 0x10, f"SR{n}")
        sr.field(0, 1, "BSY", access=Access.RO).field(1, 1, "WBNE", access=Access.RO)
        sr.field(2, 1, "QW", access=Access.RO).field(3, 1, "CRC_BUSY", access=Access.RO)
        ccr = r.define(base + 0x14, f"CCR{n}", on_write=self._ccr_write(b))
        for flag, bit in SR_FLAGS.items():
            sr.field(bit, 1, flag, access=Access.RO)
            ccr.field(bit, 1, f"CLR_{flag}", access=Access.WO)

        for off, reg_name in ((0x28, "PRAR"), (0x30, "SCAR")):
            key = "PROT" if reg_name == "PRAR" else "SEC"
            last = "DMEP" if reg_name == "PRAR" else "DMES"
            r.define(base + off, f"{reg_name}_CUR{n}").field(
                0, 12, f"{key}_AREA_START", access=Access.RO
            ).field(16, 12, f"{key}_AREA_END", access=Access.RO).field(31, 1, last, access=Access.RO)
            r.define(base + off + 4, f"{reg_name}_PRG{n}").field(
                0, 12, f"{key}_AREA_START", writable_when=opt_unlocked
            ).field(16, 12, f"{key}_AREA_END", writable_when=opt_unlocked).field(
                31, 1, last, writable_when=opt_unlocked
            )
            self._group_of_offset[base + off + 4] = opt
        r.define(base + 0x38, f"WPSN_CUR{n}").field(0, 8, "WRPSN", access=Access.RO)
        r.define(base + 0x3C, f"WPSN_PRG{n}").field(0, 8, "WRPSN", writable_when=opt_unlocked)
        self._group_of_offset[base + 0x3C] = opt

        crccr = r.define(base + 0x50, f"CRCCR{n}")
        crccr.field(0, 3, "CRC_SECT").field(8, 1, "CRC_BY_SECT")
        crccr.field(9, 1, "ADD_SECT", access=Access.SC).field(10, 1, "CLEAN_SECT", access=Access.SC)
        crccr.field(16, 1, "START_CRC", access=Access.SC, on_write=self._crc_start)
        crccr.field(17, 1, "CLEAN_CRC", access=Access.SC)
        crccr.field(20, 2, "CRC_BURST").field(22, 1, "ALL_BANK")
        r.define(base + 0x54, f"CRCSADD{n}", access=Access.RW)
        r.define(base + 0x58, f"CRCEADD{n}", access=Access.RW)
        r.define(base + 0x5C, "CRCDATA" if n == 1 else f"CRCDATA{n}", access=Access.RO)
        r.define(base + 0x60, f"ECC_FA{n}").field(0, 15, "FAIL_ECC_ADDR", access=Access.RO)

        for off in (0x04, 0x0C, 0x10, 0x14, 0x28, 0x2C, 0x30, 0x34, 0x38, 0x3C, 0x50, 0x54, 0x58, 0x5C, 0x60):
            self._group_of_offset.setdefault(base + off, lock)

    # ============================================================================================
    # bus access
    # ============================================================================================
    def write(self, offset: int, size: int, value: int) -> None:
        # Key registers need the access size (a <32-bit key write is a sequence error), which the
        # register framework does not pass on: they are served here.
        aligned = offset - offset % 4
        lock = self._key_of_offset.get(aligned)
        if lock is not None:
            self._report(lock.key_write(value & 0xFFFF_FFFF, size), offset)
            return
        reg = self.regs.at(aligned)
        group = self._group_of_offset.get(aligned)
        if group is not None and reg is not None:
            self._report(group.interrupt(reg.name), offset)
        lock_bit = self._lock_bit_of_offset.get(aligned)
        if lock_bit is not None and offset % 4 == 0 and value & LOCK_BIT:
            if lock_bit is self._optlock:
                super().write(offset, size, value)  # e.g. OPTSTART with OPTLOCK in one write
            # RM: when LOCK goes 0 -> 1 the other CR bits do not change
            lock_bit.relock()
            return
        super().write(offset, size, value)

    def _report(self, reason: str | None, offset: int) -> None:
        if reason is not None:
            self.host.log(WARNING, reason)
            self.host.bus_error(REGISTER_BASE + offset, reason)

    # -- register callbacks ----------------------------------------------------------------------
    def _pg_write(self, b: int) -> Callable[[int, int], None]:
        def cb(old: int, new: int) -> None:
            if old and not new and not self._buffers[b].empty:
                # clearing PG discards data not yet queued (FACTS §B.2)
                self._buffers[b].clear()
                self._update_status(b)

        return cb

    def _fw_write(self, b: int) -> Callable[[int, int], None]:
        def cb(_old: int, new: int) -> None:
            if new:
                self._force_write(b)

        return cb

    def _start_write(self, b: int) -> Callable[[int, int], None]:
        def cb(_old: int, new: int) -> None:
            if new:
                self._start_erase(b)

        return cb

    def _ccr_write(self, b: int) -> Callable[[int, int], None]:
        def cb(_old: int, new: int) -> None:
            sr = self._sr(b)
            sr.clear_bits(new & SR_IRQ_FLAGS)
            if not sr.value & (SNECCERR | DBECCERR):
                self._reg(b, "ECC_FA")["FAIL_ECC_ADDR"] = 0
            self._reg(b, "CCR").value = 0
            self._update_irq()

        return cb

    def _clr_optchangeerr(self, _old: int, new: int) -> None:
        if new:
            self.regs["OPTSR_CUR"].clear_bits(OPTSR_OPTCHANGEERR)
            self.regs["OPTCCR"].value = 0
            self._update_irq()

    def _crc_start(self, _old: int, new: int) -> None:
        if new:
            self._log_once("crc", WARNING, f"{self.name}: CRC unit not modelled; CRCDATA stays 0")

    # ============================================================================================
    # programming (FACTS §B.5, §B.6)
    # ============================================================================================
    def _axi_write(self, offset: int, size: int, value: int) -> None:
        """A CPU write into the flash window: fills the write buffer of the addressed bank."""
        if size not in (1, 2, 4, 8) or not 0 <= offset <= FLASH_SIZE - size:
            self._log_once(
                f"axi{size}", WARNING, f"{self.name}: odd {size}-byte write at +{offset:#x} ignored"
            )
            return
        b = offset // BANK_SIZE
        cr, sr, buf = self._cr(b), self._sr(b), self._buffers[b]
        if not cr["PG"]:
            # rejected without bus error (FACTS §B.6)
            self._raise(b, PGSERR)
            return
        if sr.value & (PGSERR | INCERR):
            # programming blocked until PGSERR is cleared; a write while INCERR is set is a PGSERR
            buf.clear()
            self._raise(b, PGSERR)
            self._update_status(b)
            return
        word = offset // WORD_SIZE
        if (offset + size - 1) // WORD_SIZE != word or (buf.word is not None and buf.word != word):
            buf.clear()  # model choice: the partly filled word is dropped
            self._raise(b, INCERR)
            self._update_status(b)
            return
        if self._write_protected(word * WORD_SIZE, WORD_SIZE):
            buf.clear()
            self._raise(b, WRPERR)
            self._update_status(b)
            return
        lane = offset % WORD_SIZE
        lanes = ((1 << size) - 1) << lane
        if buf.written & lanes:
            self._raise(b, STRBERR)  # not aborted: the new bytes replace the old ones
        buf.word = word
        buf.data[lane : lane + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        buf.written |= lanes
        if buf.full:
            self._queue_program(b)
        self._update_status(b)

    def _force_write(self, b: int) -> None:
        buf = self._buffers[b]
        if buf.empty:
            return
        if all(x == ERASED for x in buf.data):
            # RM: FW has no effect when nothing in the buffer is 0
            self.host.log(DEBUG, f"{self.name}: FW{b + 1} with an all-ones buffer has no effect")
            return
        self._queue_program(b)
        self._update_status(b)

    def _queue_program(self, b: int) -> None:
        buf = self._buffers[b]
        assert buf.word is not None
        psize = self._cr(b)["PSIZE"]
        op = Operation(
            "program",
            b,
            buf.word * WORD_SIZE,
            WORD_SIZE,
            self._time(TPROG_NS[psize]),
            bytes(buf.data),
            nominal_ns=TPROG_NS[psize],
        )
        buf.clear()
        self._enqueue(op)

    # ============================================================================================
    # erase
    # ============================================================================================
    def _start_erase(self, b: int) -> None:
        cr = self._cr(b)
        if cr["BER"]:
            self._bank_erase(b)
        elif cr["SER"]:
            offset = b * BANK_SIZE + cr["SNB"] * SECTOR_SIZE
            if self._write_protected(offset, SECTOR_SIZE):
                self._raise(b, WRPERR)
                return
            nominal = TERASE_SECTOR_NS[cr["PSIZE"]]
            self._enqueue(
                Operation("sector_erase", b, offset, SECTOR_SIZE, self._time(nominal), nominal_ns=nominal)
            )
        else:
            self.host.log(WARNING, f"{self.name}: START{b + 1} without SER or BER ignored")

    def _bank_erase(self, b: int) -> None:
        if self._write_protected(b * BANK_SIZE, BANK_SIZE):
            self._raise(b, WRPERR)  # any protected sector aborts the whole bank erase
            return
        nominal = TERASE_SECTOR_NS[self._cr(b)["PSIZE"]] * BANK_ERASE_SECTOR_TIMES
        self._enqueue(
            Operation("bank_erase", b, b * BANK_SIZE, BANK_SIZE, self._time(nominal), nominal_ns=nominal)
        )

    def _mass_erase(self, _old: int, new: int) -> None:
        if not new:
            return
        if self._optlock.locked or any(lock.locked for lock in self._locks):
            self.host.log(WARNING, f"{self.name}: OPTCR.MER ignored: OPTCR, CR1 and CR2 must all be unlocked")
            return
        for b in range(NUM_BANKS):
            self._cr(b)["BER"] = 1  # RM: MER sets BER1/BER2 and START1/START2
            self._bank_erase(b)

    # ============================================================================================
    # operation queue and execution in virtual time
    # ============================================================================================
    def _time(self, ns: int) -> int:
        return 0 if self.timing == "fast" else ns

    def _enqueue(self, op: Operation) -> None:
        self._queues[op.bank].append(op)
        if self._running[op.bank] is None:
            self._start_next(op.bank)
        self._update_status(op.bank)

    def _start_next(self, b: int) -> None:
        if not self._queues[b]:
            self._running[b] = None
            return
        op = self._queues[b].popleft()
        op.started_ns = self.host.now_ns()
        self._running[b] = op
        cut = None
        # The plan sees the typical duration in both profiles, so a cut tears the same way with
        # the fast profile (where the operation itself takes no time), as in the W25Q64 model.
        plan_ns = op.nominal_ns or op.duration_ns
        if self.power_cut is not None:
            cut = self.power_cut.on_operation(op.name, op.started_ns, plan_ns)
        if cut is None:
            op.timer = self.host.schedule(op.duration_ns, lambda: self._finish(op), op.name)
        else:
            op.cut_fraction = cut / max(plan_ns, 1)
            delay = int(op.duration_ns * op.cut_fraction)
            op.timer = self.host.schedule(delay, lambda: self._power_cut_now(op), op.name + " (power cut)")

    def _finish(self, op: Operation) -> None:
        b = op.bank
        if self._running[b] is not op:
            return
        ok = self._apply(op, 1.0)
        self._running[b] = None
        self._raise(b, EOP if ok else OPERR)
        self._start_next(b)
        self._update_status(b)

    def _power_cut_now(self, op: Operation) -> None:
        if self._running[op.bank] is not op:
            return
        self._abort_all()
        reason = f"power cut during {op.name} at {FLASH_BASE + op.offset:#010x}"
        self.host.log(INFO, f"{self.name}: {reason}")
        self.host.power_off(reason)

    def _abort_all(self) -> list[int]:
        """Tear every executing operation at its current progress; drop queued ones and buffers."""
        interrupted = []
        now = self.host.now_ns()
        for b in range(NUM_BANKS):
            op = self._running[b]
            if op is not None:
                if op.timer is not None:
                    op.timer.cancel()
                if op.cut_fraction is not None and now - op.started_ns >= int(
                    op.duration_ns * op.cut_fraction
                ):
                    fraction = op.cut_fraction  # the planned cut point (also when duration_ns is 0)
                else:
                    fraction = min(max((now - op.started_ns) / max(op.duration_ns, 1), 0.0), 1.0)
                self._apply(op, fraction, torn=True)
                interrupted.append(b)
            self._running[b] = None
            self._queues[b].clear()
            self._buffers[b].clear()
            self._update_status(b)
        return interrupted

    def _apply(self, op: Operation, fraction: float, torn: bool = False) -> bool:
        """Change the array as ``op`` does up to ``fraction`` of its duration; False = OPERR."""
        if op.kind == "program":
            nbytes = int(WORD_SIZE * fraction) if torn else WORD_SIZE
            return self._program_word(op.offset, op.data, nbytes, torn)
        # erases run sector by sector, in order; a torn one stops inside the sector it reached
        total = op.length // WORD_SIZE
        words = int(total * fraction) if torn else total
        ok = True
        first = op.offset // SECTOR_SIZE
        for i in range(op.length // SECTOR_SIZE):
            if i > 0 and words <= i * WORDS_PER_SECTOR:
                break
            ok &= self._erase_sector(first + i, min(words - i * WORDS_PER_SECTOR, WORDS_PER_SECTOR))
        return ok

    # ============================================================================================
    # what the cells do
    # ============================================================================================
    def _program_word(self, offset: int, data: bytes, nbytes: int, torn: bool) -> bool:
        sector = offset // SECTOR_SIZE
        old = bytes(self.array[offset : offset + WORD_SIZE])
        old_v = int.from_bytes(old, "little")
        data_v = int.from_bytes(data, "little")
        new_v = old_v & data_v
        worn = self.erase_counts[sector] > self.endurance
        if worn:
            new_v |= self._unprogrammed_bits(offset, old_v & ~data_v)
        new = new_v.to_bytes(WORD_SIZE, "little")
        self.array[offset : offset + nbytes] = new[:nbytes]
        self._apply_stuck(offset, WORD_SIZE)
        word = offset // WORD_SIZE
        virgin = old_v == _WORD_ONES
        if torn or not (virgin or data_v == _WORD_ONES or data_v == old_v):
            self._mark_ecc(word, ECC_DOUBLE)  # model choice: inconsistent ECC = double error
        self.host.invalidate(FLASH_BASE + offset, WORD_SIZE)
        return not worn

    def _unprogrammed_bits(self, offset: int, to_clear: int) -> int:
        """Worn sector: the seeded subset of the bits to program that stay 1."""
        sector = offset // SECTOR_SIZE
        rng = random.Random(f"{self.seed}:program:{offset}:{self.erase_counts[sector]}")
        stay = to_clear & rng.getrandbits(256) & rng.getrandbits(256)
        if to_clear and not stay:
            bits = [i for i in range(256) if to_clear >> i & 1]
            stay = 1 << rng.choice(bits)
        return stay

    def _erase_sector(self, sector: int, words: int) -> bool:
        """Erase the first ``words`` flash words of ``sector`` (all of them unless torn)."""
        self.erase_counts[sector] += 1
        worn = self.erase_counts[sector] > self.endurance
        base = sector * SECTOR_SIZE
        n = words * WORD_SIZE
        old = bytes(self.array[base : base + n]) if worn else b""
        self.array[base : base + n] = bytes([ERASED]) * n
        if worn:
            self._unerased_bits(sector, base, old)
        for word in [w for w in self.ecc_errors if base <= w * WORD_SIZE < base + n]:
            self._unmark_ecc(word)
        self._apply_stuck(base, n)
        self.host.invalidate(FLASH_BASE + base, SECTOR_SIZE)
        return not worn

    def _unerased_bits(self, sector: int, base: int, old: bytes) -> None:
        """Worn sector: a seeded handful of flash words keep some of their old bits."""
        rng = random.Random(f"{self.seed}:erase:{sector}:{self.erase_counts[sector]}")
        for w in sorted(rng.sample(range(WORDS_PER_SECTOR), 1 + rng.randrange(8))):
            mask = rng.getrandbits(256) & rng.getrandbits(256) or 1 << rng.randrange(256)
            lo = w * WORD_SIZE
            if lo >= len(old):
                continue
            old_v = int.from_bytes(old[lo : lo + WORD_SIZE], "little")
            v = (_WORD_ONES & ~mask) | (old_v & mask)
            self.array[base + lo : base + lo + WORD_SIZE] = v.to_bytes(WORD_SIZE, "little")

    def _apply_stuck(self, offset: int, length: int) -> None:
        for addr, bits in self.stuck_bits.items():
            if offset <= addr < offset + length:
                v = self.array[addr]
                for bit, level in bits.items():
                    v = v | (1 << bit) if level else v & ~(1 << bit)
                self.array[addr] = v

    def _write_protected(self, offset: int, length: int) -> bool:
        """WRPS-protected sector (bit = 0), PCROP or secure area in [offset, offset+length)."""
        b = offset // BANK_SIZE
        first = (offset % BANK_SIZE) // SECTOR_SIZE
        last = (offset % BANK_SIZE + length - 1) // SECTOR_SIZE
        wpsn = self.option_bytes.wpsn[b]
        if any(not wpsn >> s & 1 for s in range(first, last + 1)):
            return True
        bank_off = offset % BANK_SIZE
        return _area_contains(self.option_bytes.prar[b], bank_off, length) or _area_contains(
            self.option_bytes.scar[b], bank_off, length
        )

    # ============================================================================================
    # ECC
    # ============================================================================================
    def _mark_ecc(self, word: int, kind: str) -> None:
        if self.ecc_errors.get(word) == ECC_DOUBLE:
            return
        self.ecc_errors[word] = kind
        if word not in self._ecc_unwatch:
            self._ecc_unwatch[word] = self.host.watch_reads(
                FLASH_BASE + word * WORD_SIZE, WORD_SIZE, lambda _off, _size: self._ecc_read(word)
            )

    def _unmark_ecc(self, word: int) -> None:
        self.ecc_errors.pop(word, None)
        unwatch = self._ecc_unwatch.pop(word, None)
        if unwatch is not None:
            unwatch()

    def _ecc_read(self, word: int) -> str | None:
        kind = self.ecc_errors.get(word)
        if kind is None:
            return None
        b = word // WORDS_PER_BANK
        sr = self._sr(b)
        flag = DBECCERR if kind == ECC_DOUBLE else SNECCERR
        if not sr.value & (SNECCERR | DBECCERR) or (flag == DBECCERR and not sr.value & DBECCERR):
            self._reg(b, "ECC_FA")["FAIL_ECC_ADDR"] = word % WORDS_PER_BANK
        self._raise(b, flag)
        if kind == ECC_DOUBLE:
            return f"{self.name}: double ECC error in flash word {FLASH_BASE + word * WORD_SIZE:#010x}"
        return None

    # ============================================================================================
    # option bytes
    # ============================================================================================
    def _load_option_registers(self) -> None:
        """CUR registers (and PRG copies) from the option bytes, as after a reset/OPTSTART."""
        ob = self.option_bytes
        r = self.regs
        cur = r["OPTSR_CUR"]
        cur.value = (cur.value & (OPTSR_OPT_BUSY | OPTSR_OPTCHANGEERR)) | ob.optsr
        r["OPTSR_PRG"].value = ob.optsr
        r["OPTCR"]["SWAP_BANK"] = ob.optsr >> 31
        r["BOOT_CUR"].value = r["BOOT_PRG"].value = ob.boot
        for b in range(NUM_BANKS):
            n = b + 1
            r[f"WPSN_CUR{n}"].value = r[f"WPSN_PRG{n}"].value = ob.wpsn[b]
            r[f"PRAR_CUR{n}"].value = r[f"PRAR_PRG{n}"].value = ob.prar[b] & 0x8FFF_0FFF
            r[f"SCAR_CUR{n}"].value = r[f"SCAR_PRG{n}"].value = ob.scar[b] & 0x8FFF_0FFF

    def _optstart(self, _old: int, new: int) -> None:
        if not new:
            return
        if self._optlock.locked:
            self.host.log(WARNING, f"{self.name}: OPTSTART ignored while OPTLOCK is set")
            return
        r = self.regs
        ob = self.option_bytes
        optsr = r["OPTSR_PRG"].value & OPTSR_USER_MASK
        if (optsr ^ ob.optsr) & OPTSR_NOT_MODELLED:
            self.host.log(
                WARNING,
                f"{self.name}: option change {ob.optsr:#010x} -> {optsr:#010x} touches RDP/SECURITY/"
                "SWAP_BANK_OPT, which are not modelled: refused with OPTCHANGEERR",
            )
            r["OPTSR_CUR"].set_bits(OPTSR_OPTCHANGEERR)
            self._update_irq()
            return
        ob.optsr = optsr
        ob.boot = r["BOOT_PRG"].value
        for b in range(NUM_BANKS):
            n = b + 1
            ob.wpsn[b] = r[f"WPSN_PRG{n}"].value & 0xFF
            ob.prar[b] = r[f"PRAR_PRG{n}"].value
            ob.scar[b] = r[f"SCAR_PRG{n}"].value
        self._load_option_registers()

    def set_write_protection(self, sector: int, protected: bool) -> None:
        """Set a sector's WRPS option bit directly (as a programming tool would), 0..15."""
        if not 0 <= sector < NUM_SECTORS:
            raise ValueError(f"{self.name}: sector must be 0..{NUM_SECTORS - 1}, got {sector}")
        b, s = divmod(sector, SECTORS_PER_BANK)
        if protected:
            self.option_bytes.wpsn[b] &= ~(1 << s) & 0xFF
        else:
            self.option_bytes.wpsn[b] |= 1 << s
        self._load_option_registers()

    # ============================================================================================
    # status, flags, IRQ
    # ============================================================================================
    def _reg(self, b: int, stem: str) -> Register:
        return self.regs[f"{stem}{b + 1}"]

    def _cr(self, b: int) -> Register:
        return self._reg(b, "CR")

    def _sr(self, b: int) -> Register:
        return self._reg(b, "SR")

    def _raise(self, b: int, flags: int) -> None:
        self._sr(b).set_bits(flags)
        self._update_irq()

    def _update_status(self, b: int) -> None:
        sr = self._sr(b)
        running = self._running[b] is not None
        sr["BSY"] = int(running)
        sr["QW"] = int(running or bool(self._queues[b]))
        sr["WBNE"] = int(not self._buffers[b].empty)

    def _update_irq(self) -> None:
        level = any(self._sr(b).value & self._cr(b).value & SR_IRQ_FLAGS for b in range(NUM_BANKS))
        level |= bool(self.regs["OPTSR_CUR"].value & self.regs["OPTCR"].value & OPTSR_OPTCHANGEERR)
        if level != self._irq_level:
            self._irq_level = level
            self.host.set_irq(self.irq, level)

    def _log_once(self, key: str, level: int, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            self.host.log(level, message)

    # ============================================================================================
    # reset
    # ============================================================================================
    def reset(self) -> None:
        """System reset: an executing operation is torn and reported with OPERR afterwards."""
        interrupted = self._abort_all()
        super().reset()
        for lock in (*self._locks, self._optlock):
            lock.reset()
        self._load_option_registers()
        for b in interrupted:
            self._sr(b).set_bits(OPERR)
        self._irq_level = False
        self.host.set_irq(self.irq, False)
        self._update_irq()

    # ============================================================================================
    # fault injection and inspection
    # ============================================================================================
    def _offset_of(self, address: int) -> int:
        off = address - FLASH_BASE
        if not 0 <= off < FLASH_SIZE:
            raise ValueError(
                f"{self.name}: address {address:#010x} outside flash "
                f"{FLASH_BASE:#010x}..{FLASH_BASE + FLASH_SIZE - 1:#010x}"
            )
        return off

    def sector_of(self, address: int) -> int:
        """Global sector number (0..15; 8..15 = bank 2) of a flash address."""
        return self._offset_of(address) // SECTOR_SIZE

    def inject_ecc_error(self, address: int, double: bool = False) -> None:
        """Later CPU reads of the flash word holding ``address`` report SNECCERR (data corrected)
        or DBECCERR (+ bus error). Cleared by erasing the word's sector."""
        word = self._offset_of(address) // WORD_SIZE
        self._mark_ecc(word, ECC_DOUBLE if double else ECC_SINGLE)

    def inject_stuck_bit(self, address: int, bit: int, value: int) -> None:
        """Bit ``bit`` of the byte at ``address`` reads ``value`` after every later program/erase."""
        off = self._offset_of(address)
        if not 0 <= bit <= 7 or value not in (0, 1):
            raise ValueError(
                f"{self.name}: stuck bit needs bit 0..7 and value 0/1, got bit={bit} value={value}"
            )
        self.stuck_bits.setdefault(off, {})[bit] = value

    def busy(self) -> bool:
        """Is any operation queued or executing?"""
        return any(op is not None for op in self._running) or any(self._queues)

    # ============================================================================================
    # persistence (JSON-serialisable; the storage layer writes the files)
    # ============================================================================================
    def to_metadata(self) -> dict:
        return {
            "model": METADATA_MODEL,
            "version": METADATA_VERSION,
            "endurance": self.endurance,
            "seed": self.seed,
            "erase_counts": list(self.erase_counts),
            "stuck_bits": [
                [FLASH_BASE + off, bit, level]
                for off, bits in sorted(self.stuck_bits.items())
                for bit, level in sorted(bits.items())
            ],
            "ecc_errors": [[FLASH_BASE + w * WORD_SIZE, kind] for w, kind in sorted(self.ecc_errors.items())],
            "option_bytes": self.option_bytes.to_json(),
        }

    def load_metadata(self, meta: dict) -> None:
        """Restore what :meth:`to_metadata` saved; raises ValueError (model unchanged) if invalid."""
        if not isinstance(meta, dict):
            raise ValueError("flash metadata must be an object")
        if meta.get("model") != METADATA_MODEL or meta.get("version") != METADATA_VERSION:
            raise ValueError(
                f"flash metadata: expected model {METADATA_MODEL!r} version {METADATA_VERSION}, "
                f"got {meta.get('model')!r} version {meta.get('version')!r}"
            )
        try:
            endurance = _u32(meta["endurance"], "endurance")
            seed = meta["seed"]
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise ValueError(f"seed: expected an integer, got {seed!r}")
            counts = meta["erase_counts"]
            if not isinstance(counts, list) or len(counts) != NUM_SECTORS:
                raise ValueError(f"erase_counts: expected {NUM_SECTORS} integers, got {counts!r}")
            counts = [_u32(c, "erase_counts") for c in counts]
            stuck: dict[int, dict[int, int]] = {}
            for item in meta["stuck_bits"]:
                if not (isinstance(item, list) and len(item) == 3):
                    raise ValueError(f"stuck_bits: expected [address, bit, value], got {item!r}")
                off = self._offset_of(_u32(item[0], "stuck_bits address"))
                bit, level = _u32(item[1], "stuck_bits bit", 7), _u32(item[2], "stuck_bits value", 1)
                stuck.setdefault(off, {})[bit] = level
            ecc: dict[int, str] = {}
            for item in meta["ecc_errors"]:
                if not (isinstance(item, list) and len(item) == 2 and item[1] in (ECC_SINGLE, ECC_DOUBLE)):
                    raise ValueError(f"ecc_errors: expected [address, 'single'|'double'], got {item!r}")
                ecc[self._offset_of(_u32(item[0], "ecc_errors address")) // WORD_SIZE] = item[1]
            ob = OptionBytes.from_json(meta["option_bytes"])
        except KeyError as e:
            raise ValueError(f"flash metadata: missing {e.args[0]!r}") from None
        except ValueError as e:
            raise ValueError(f"flash metadata: {e}") from None
        self.endurance, self.seed, self.erase_counts = endurance, seed, counts
        self.stuck_bits = stuck
        for word in list(self.ecc_errors):
            self._unmark_ecc(word)
        for word, kind in ecc.items():
            self._mark_ecc(word, kind)
        self.option_bytes = ob
        self._load_option_registers()
