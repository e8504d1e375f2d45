"""Declarative register definitions, in the style of Renode's peripheral models.

Each register is named once with its offset, width and reset value; each field once with its bit
position, width, reset value and access. Behaviour hangs off small callbacks::

    regs = RegisterBank("FLASH", host)
    regs.define(0x0C, "CR1", reset=0x31) \\
        .field(0, 1, "LOCK", access=Access.W1S, on_write=self._relock) \\
        .field(1, 1, "PG", writable_when=self._unlocked) \\
        .field(7, 1, "START", access=Access.SC, on_write=self._start)

Sub-word accesses read or write the addressed byte lanes of the containing register. Offsets with
no register read as 0, ignore writes and are logged once (never a crash).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field

from peripherals.host import DEBUG, WARNING, Host


class Access(enum.Enum):
    RW = "rw"  # read/write
    RO = "ro"  # read-only: writes ignored
    WO = "wo"  # write-only: reads 0; on_write sees the written value
    W1C = "w1c"  # write 1 to clear
    W1S = "w1s"  # write 1 to set (writing 0 has no effect)
    RC = "rc"  # read clears
    SC = "sc"  # self-clearing trigger: written value goes to on_write, reads back the stored
    #            value (0 unless the model sets it, e.g. to show a reset in progress)


FieldWrite = Callable[[int, int], None]  # (old, new)
FieldRead = Callable[[], int]


@dataclass
class Field:
    name: str
    lsb: int
    width: int
    access: Access = Access.RW
    reset: int = 0
    on_write: FieldWrite | None = None
    on_read: FieldRead | None = None
    writable_when: Callable[[], bool] | None = None

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def extract(self, value: int) -> int:
        return (value >> self.lsb) & ((1 << self.width) - 1)


@dataclass
class Register:
    name: str
    offset: int
    width: int = 32
    reset: int = 0
    fields: dict[str, Field] = dc_field(default_factory=dict)
    value: int = 0
    on_read: Callable[[int], int] | None = None  # (stored) -> value seen by the bus
    on_write: FieldWrite | None = None  # (old, new) after all fields were applied
    # Bits not covered by any field: how they behave.
    default_access: Access = Access.RO

    def __post_init__(self) -> None:
        self.value = self.reset

    # -- definition (fluent) -------------------------------------------------------------
    def field(
        self,
        lsb: int,
        width: int,
        name: str,
        *,
        access: Access = Access.RW,
        reset: int | None = None,
        on_write: FieldWrite | None = None,
        on_read: FieldRead | None = None,
        writable_when: Callable[[], bool] | None = None,
    ) -> Register:
        if name in self.fields:
            raise ValueError(f"{self.name}: field {name} defined twice")
        if lsb + width > self.width:
            raise ValueError(f"{self.name}.{name}: bits {lsb}+{width} beyond {self.width}-bit register")
        f = Field(name, lsb, width, access, 0, on_write, on_read, writable_when)
        for other in self.fields.values():
            if other.mask & f.mask:
                raise ValueError(f"{self.name}.{name} overlaps {other.name}")
        f.reset = f.extract(self.reset) if reset is None else reset
        if reset is not None:
            self.reset = (self.reset & ~f.mask) | ((reset << lsb) & f.mask)
            self.value = self.reset
        self.fields[name] = f
        return self

    @property
    def full_mask(self) -> int:
        return (1 << self.width) - 1

    # -- model-side access ---------------------------------------------------------------
    def __getitem__(self, name: str) -> int:
        f = self.fields[name]
        return f.extract(self.value)

    def __setitem__(self, name: str, v: int) -> None:
        """Set a field's stored value from the model (no callbacks, no access rules)."""
        f = self.fields[name]
        self.value = (self.value & ~f.mask) | ((v << f.lsb) & f.mask)

    def set_bits(self, mask: int) -> None:
        self.value |= mask

    def clear_bits(self, mask: int) -> None:
        self.value &= ~mask & self.full_mask

    def do_reset(self) -> None:
        self.value = self.reset

    # -- bus-side access -----------------------------------------------------------------
    def _read_plan(self) -> tuple[list[tuple[int, int, FieldRead]], int, int]:
        """(dynamic fields, write-only mask, read-clear mask), computed once per definition."""
        plan = self.__dict__.get("_plan")
        if plan is None or plan[0] != len(self.fields):
            dynamic = [(f.mask, f.lsb, f.on_read) for f in self.fields.values() if f.on_read is not None]
            wo = sum(f.mask for f in self.fields.values() if f.on_read is None and f.access is Access.WO)
            rc = sum(f.mask for f in self.fields.values() if f.access is Access.RC)
            plan = (len(self.fields), dynamic, wo, rc)
            self.__dict__["_plan"] = plan
        return plan[1], plan[2], plan[3]

    def bus_read(self) -> int:
        dynamic, wo_mask, rc_mask = self._read_plan()
        v = self.value & ~wo_mask
        for mask, lsb, on_read in dynamic:
            v = (v & ~mask) | ((on_read() << lsb) & mask)
        if self.on_read is not None:
            v = self.on_read(v)
        if rc_mask:
            self.value &= ~rc_mask
        return v & self.full_mask

    def bus_write(self, value: int, lanes: int) -> None:
        """Apply a write of ``value`` on the byte lanes selected by the bit mask ``lanes``."""
        old = self.value
        new = old
        covered = 0
        callbacks: list[tuple[Field, int, int]] = []
        for f in self.fields.values():
            covered |= f.mask
            if not (f.mask & lanes):
                continue
            if f.writable_when is not None and not f.writable_when():
                continue
            fmask = f.mask & lanes
            written = value & fmask
            fold = f.extract(old)
            acc = f.access
            if acc is Access.RO or acc is Access.RC:
                continue
            if acc is Access.RW:
                new = (new & ~fmask) | written
            elif acc is Access.W1C:
                new &= ~written
            elif acc is Access.W1S:
                new |= written
            elif acc is Access.WO:
                new = (new & ~fmask) | written
            elif acc is Access.SC:
                # trigger: the stored value is left for the callback to manage
                if f.on_write is not None:
                    callbacks.append((f, fold, f.extract(written)))
                continue
            if f.on_write is not None:
                callbacks.append((f, fold, f.extract(new)))
        if self.default_access is Access.RW:
            free = lanes & ~covered
            new = (new & ~free) | (value & free)
        self.value = new & self.full_mask
        for f, fold, fnew in callbacks:
            f.on_write(fold, fnew)
        if self.on_write is not None:
            self.on_write(old, self.value)


class RegisterBank:
    """The registers of one peripheral, addressed by byte offset."""

    def __init__(self, owner: str, host: Host | None = None) -> None:
        self.owner = owner
        self.host = host
        self._by_offset: dict[int, Register] = {}
        self._by_name: dict[str, Register] = {}
        self._logged: set[tuple[str, int]] = set()

    def define(
        self,
        offset: int,
        name: str,
        *,
        reset: int = 0,
        width: int = 32,
        access: Access | None = None,
        on_read: Callable[[int], int] | None = None,
        on_write: FieldWrite | None = None,
    ) -> Register:
        """Define a register. ``access`` given: one field spanning the whole register."""
        if offset in self._by_offset:
            raise ValueError(f"{self.owner}: offset {offset:#x} defined twice")
        if name in self._by_name:
            raise ValueError(f"{self.owner}: register {name} defined twice")
        if offset % (width // 8):
            raise ValueError(f"{self.owner}.{name}: offset {offset:#x} not aligned")
        reg = Register(name, offset, width, reset, on_read=on_read, on_write=on_write)
        if access is not None:
            reg.field(0, width, name, access=access)
        self._by_offset[offset] = reg
        self._by_name[name] = reg
        return reg

    def alias(self, offset: int, name: str) -> None:
        """Make ``offset`` a second address of the already defined register ``name``."""
        self._by_offset[offset] = self._by_name[name]

    def __getitem__(self, name: str) -> Register:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Register]:
        return iter(self._by_name.values())

    def at(self, offset: int) -> Register | None:
        return self._by_offset.get(offset)

    def reset(self) -> None:
        for reg in self._by_name.values():
            reg.do_reset()

    def _locate(self, offset: int, size: int) -> tuple[Register | None, int]:
        for width_bytes in (4, 2, 1):
            base = offset - (offset % width_bytes)
            reg = self._by_offset.get(base)
            if reg is not None and reg.width // 8 == width_bytes:
                return reg, offset - base
        return None, 0

    def _log_once(self, kind: str, offset: int, message: str) -> None:
        if (kind, offset) in self._logged:
            return
        self._logged.add((kind, offset))
        if self.host is not None:
            self.host.log(WARNING, message)

    def read(self, offset: int, size: int) -> int:
        reg, shift = self._locate(offset, size)
        if reg is None:
            self._log_once("r", offset, f"{self.owner}: read of unmodelled offset {offset:#05x} -> 0")
            return 0
        if shift + size > reg.width // 8:
            self._log_once("r", offset, f"{self.owner}.{reg.name}: access crosses register")
        return (reg.bus_read() >> (8 * shift)) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        reg, shift = self._locate(offset, size)
        if reg is None:
            self._log_once(
                "w", offset, f"{self.owner}: write {value:#x} to unmodelled offset {offset:#05x} ignored"
            )
            return
        lanes = (((1 << (8 * size)) - 1) << (8 * shift)) & reg.full_mask
        if self.host is not None and size * 8 < reg.width:
            self.host.log(DEBUG, f"{self.owner}.{reg.name}: {size}-byte write at +{shift}")
        reg.bus_write((value << (8 * shift)) & reg.full_mask, lanes)


class Peripheral:
    """Base of the register-based models: a bank of registers and the host context."""

    #: size of the register block on the bus, in bytes
    size: int = 0x400

    def __init__(self, host: Host, name: str | None = None) -> None:
        self.host = host
        self.name = name or type(self).__name__
        self.regs = RegisterBank(self.name, host)

    def read(self, offset: int, size: int) -> int:
        return self.regs.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self.regs.write(offset, size, value)

    def reset(self) -> None:
        self.regs.reset()
