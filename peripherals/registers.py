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
from collections.abc import Callable, Iterable, Iterator
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
    # Derived from lsb/width once: field lookups run on every modelled register access.
    wmask: int = dc_field(init=False, repr=False, compare=False)  # (1 << width) - 1
    mask: int = dc_field(init=False, repr=False, compare=False)  # wmask << lsb

    def __post_init__(self) -> None:
        self.wmask = (1 << self.width) - 1
        self.mask = self.wmask << self.lsb

    def extract(self, value: int) -> int:
        return (value >> self.lsb) & self.wmask


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
        self._rplan: _ReadPlan | None = None  # built at the first bus access (see _read_plan)
        self._wplan: _WritePlan | None = None

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
        return (self.value >> f.lsb) & f.wmask

    def __setitem__(self, name: str, v: int) -> None:
        """Set a field's stored value from the model (no callbacks, no access rules)."""
        f = self.fields[name]
        self.value = (self.value & ~f.mask) | ((v << f.lsb) & f.mask)

    def masks(self, *names: str) -> tuple[int, ...]:
        """The bit masks of the named fields, for models that test several fields at once."""
        return tuple(self.fields[name].mask for name in names)

    def reader(self, name: str) -> Callable[[], int]:
        """A function returning field ``name``'s stored value: ``reg[name]`` without the
        name lookup, for paths that run on every bus access."""
        f = self.fields[name]
        lsb, wmask = f.lsb, f.wmask
        return lambda: (self.value >> lsb) & wmask

    def set_bits(self, mask: int) -> None:
        self.value |= mask

    def clear_bits(self, mask: int) -> None:
        self.value &= ~mask & self.full_mask

    def do_reset(self) -> None:
        self.value = self.reset

    # -- bus-side access -----------------------------------------------------------------
    # The access rules of the fields are folded into integer masks once per definition (the
    # plans are rebuilt when a field is added; like the rest of the definition, a field's
    # access and callbacks are expected to be set before the first bus access).
    def _read_plan(self) -> _ReadPlan:
        plan = self._rplan
        if plan is None or plan.nfields != len(self.fields):
            plan = self._rplan = _ReadPlan(self)
        return plan

    def _write_plan(self) -> _WritePlan:
        plan = self._wplan
        if plan is None or plan.nfields != len(self.fields):
            plan = self._wplan = _WritePlan(self)
        return plan

    def bus_read(self) -> int:
        plan = self._rplan
        if plan is None or plan.nfields != len(self.fields):
            plan = self._read_plan()
        if plan.static and self.on_read is None:
            return self.value & plan.visible
        v = self.value & plan.visible
        for mask, lsb, on_read in plan.dynamic:
            v = (v & ~mask) | ((on_read() << lsb) & mask)
        if self.on_read is not None:
            v = self.on_read(v)
        if plan.rc:
            self.value &= ~plan.rc
        return v & plan.full

    def bus_write(self, value: int, lanes: int) -> None:
        """Apply a write of ``value`` on the byte lanes selected by the bit mask ``lanes``."""
        plan = self._wplan
        if plan is None or plan.nfields != len(self.fields):
            plan = self._write_plan()
        old = self.value
        # fields without callbacks or guards, all at once
        set_mask = plan.replace & lanes
        new = (old & ~set_mask) | (value & set_mask)
        if plan.simple and self.default_access is not Access.RW:
            # nothing else to apply: plain RW/WO fields, bits that ignore writes
            self.value = new & plan.full
            if self.on_write is not None:
                self.on_write(old, self.value)
            return
        if plan.w1c or plan.w1s:
            new &= ~(value & plan.w1c & lanes)
            new |= value & plan.w1s & lanes
        # guarded fields without callbacks: one guard call per distinct guard
        for guard, g_any, g_replace, g_w1c, g_w1s in plan.guarded:
            if g_any & lanes and guard():
                set_mask = g_replace & lanes
                new = (new & ~set_mask) | (value & set_mask)
                new &= ~(value & g_w1c & lanes)
                new |= value & g_w1s & lanes
        callbacks: list[tuple[FieldWrite, int, int]] | None = None
        for f in plan.special:
            fmask = f.mask & lanes
            if not fmask:
                continue
            if f.writable_when is not None and not f.writable_when():
                continue
            written = value & fmask
            acc = f.access
            if acc is Access.SC:
                # trigger: the stored value is left for the callback to manage
                if f.on_write is not None:
                    if callbacks is None:
                        callbacks = []
                    callbacks.append((f.on_write, (old >> f.lsb) & f.wmask, (written >> f.lsb) & f.wmask))
                continue
            if acc is Access.W1C:
                new &= ~written
            elif acc is Access.W1S:
                new |= written
            else:  # RW, WO
                new = (new & ~fmask) | written
            if f.on_write is not None:
                if callbacks is None:
                    callbacks = []
                callbacks.append((f.on_write, (old >> f.lsb) & f.wmask, (new >> f.lsb) & f.wmask))
        if self.default_access is Access.RW:
            free = lanes & plan.uncovered
            new = (new & ~free) | (value & free)
        self.value = new & plan.full
        if callbacks is not None:
            for on_write, fold, fnew in callbacks:
                on_write(fold, fnew)
        if self.on_write is not None:
            self.on_write(old, self.value)


class _ReadPlan:
    """What a bus read of a register does, as masks: computed once per definition."""

    __slots__ = ("nfields", "dynamic", "visible", "rc", "full", "static")

    def __init__(self, reg: Register) -> None:
        fields = reg.fields.values()
        self.nfields = len(reg.fields)
        self.dynamic = [(f.mask, f.lsb, f.on_read) for f in fields if f.on_read is not None]
        wo = sum(f.mask for f in fields if f.on_read is None and f.access is Access.WO)
        self.rc = sum(f.mask for f in fields if f.access is Access.RC)
        self.full = reg.full_mask
        self.visible = ~wo & self.full
        # nothing but the stored value (the register's own on_read is checked at read time)
        self.static = not self.dynamic and not self.rc


class _WritePlan:
    """What a bus write to a register does: plain fields as masks, the others one by one."""

    __slots__ = ("nfields", "replace", "w1c", "w1s", "guarded", "special", "uncovered", "full", "simple")

    def __init__(self, reg: Register) -> None:
        self.nfields = len(reg.fields)
        self.full = reg.full_mask
        self.replace, self.w1c, self.w1s = _access_masks(
            f for f in reg.fields.values() if f.on_write is None and f.writable_when is None
        )
        # writable_when guards are pure predicates: fields sharing one are decided by one call
        by_guard: dict[Callable[[], bool], list[Field]] = {}
        for f in reg.fields.values():
            if f.on_write is None and f.writable_when is not None:
                by_guard.setdefault(f.writable_when, []).append(f)
        self.guarded: list[tuple[Callable[[], bool], int, int, int, int]] = []
        for guard, fields in by_guard.items():
            replace, w1c, w1s = _access_masks(fields)
            if replace | w1c | w1s:
                self.guarded.append((guard, replace | w1c | w1s, replace, w1c, w1s))
        # fields with a callback, in definition order (the callbacks run in that order); an SC
        # trigger without a callback does nothing, RO and RC fields ignore writes
        self.special = [
            f
            for f in reg.fields.values()
            if f.on_write is not None and f.access is not Access.RO and f.access is not Access.RC
        ]
        covered = 0
        for f in reg.fields.values():
            covered |= f.mask
        self.uncovered = ~covered & self.full
        # only callback-free RW/WO fields: bus_write may stop after the replace mask
        self.simple = not (self.w1c or self.w1s or self.guarded or self.special)


def _access_masks(fields: Iterable[Field]) -> tuple[int, int, int]:
    """(replace, write-1-to-clear, write-1-to-set) masks of callback-free fields."""
    replace = w1c = w1s = 0
    for f in fields:
        if f.access is Access.RW or f.access is Access.WO:
            replace |= f.mask
        elif f.access is Access.W1C:
            w1c |= f.mask
        elif f.access is Access.W1S:
            w1s |= f.mask
    return replace, w1c, w1s


class RegisterBank:
    """The registers of one peripheral, addressed by byte offset."""

    def __init__(self, owner: str, host: Host | None = None) -> None:
        self.owner = owner
        self.host = host
        self._by_offset: dict[int, Register] = {}
        self._by_name: dict[str, Register] = {}
        self._logged: set[tuple[str, int]] = set()
        # offset -> (register or None, byte shift, register width in bytes, access size that
        # covers exactly the whole register or -1): _locate is on every access, its answer
        # only changes with define()/alias()
        self._located: dict[int, tuple[Register | None, int, int, int]] = {}

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
        self._located.clear()
        return reg

    def alias(self, offset: int, name: str) -> None:
        """Make ``offset`` a second address of the already defined register ``name``."""
        self._by_offset[offset] = self._by_name[name]
        self._located.clear()

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

    def _located_at(self, offset: int) -> tuple[Register | None, int, int, int]:
        loc = self._located.get(offset)
        if loc is None:
            reg, shift = self._locate(offset, 0)
            if reg is None:
                loc = (None, 0, 0, -1)
            else:
                whole = reg.width // 8 if shift == 0 and reg.width % 8 == 0 else -1
                loc = (reg, shift, reg.width // 8, whole)
            self._located[offset] = loc
        return loc

    def read(self, offset: int, size: int) -> int:
        reg, shift, nbytes, whole = self._located.get(offset) or self._located_at(offset)
        if size == whole and reg is not None:  # the whole register: bus_read masks to its width
            return reg.bus_read()
        if reg is None:
            self._log_once("r", offset, f"{self.owner}: read of unmodelled offset {offset:#05x} -> 0")
            return 0
        if shift + size > nbytes:
            self._log_once("r", offset, f"{self.owner}.{reg.name}: access crosses register")
        return (reg.bus_read() >> (8 * shift)) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        reg, shift, nbytes, whole = self._located.get(offset) or self._located_at(offset)
        if reg is None:
            self._log_once(
                "w", offset, f"{self.owner}: write {value:#x} to unmodelled offset {offset:#05x} ignored"
            )
            return
        full = reg.full_mask
        if size == whole:  # the whole register: all lanes
            reg.bus_write(value & full, full)
            return
        lanes = (((1 << (8 * size)) - 1) << (8 * shift)) & full
        if self.host is not None and size * 8 < reg.width:
            self.host.log(DEBUG, f"{self.owner}.{reg.name}: {size}-byte write at +{shift}")
        reg.bus_write((value << (8 * shift)) & full, lanes)


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
