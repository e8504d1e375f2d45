"""The register framework's precompiled read/write plans against the field-by-field rules.

``_reference_write`` / ``_reference_read`` restate the access rules one field at a time (the
framework's original algorithm); random registers and accesses must give the same stored values,
bus values and callback sequences.
"""

from __future__ import annotations

import random

import pytest

from peripherals.registers import Access, Field, Register, RegisterBank
from peripherals.standalone_host import StandaloneHost

_ACCESSES = list(Access)


def _reference_write(reg: Register, value: int, lanes: int, calls: list[tuple[object, ...]]) -> None:
    old = reg.value
    new = old
    covered = 0
    pending: list[tuple[Field, int, int]] = []
    for f in reg.fields.values():
        covered |= f.mask
        if not f.mask & lanes:
            continue
        if f.writable_when is not None and not f.writable_when():
            continue
        fmask = f.mask & lanes
        written = value & fmask
        acc = f.access
        if acc in (Access.RO, Access.RC):
            continue
        if acc in (Access.RW, Access.WO):
            new = (new & ~fmask) | written
        elif acc is Access.W1C:
            new &= ~written
        elif acc is Access.W1S:
            new |= written
        else:  # SC
            if f.on_write is not None:
                pending.append((f, f.extract(old), f.extract(written)))
            continue
        if f.on_write is not None:
            pending.append((f, f.extract(old), f.extract(new)))
    if reg.default_access is Access.RW:
        free = lanes & ~covered
        new = (new & ~free) | (value & free)
    reg.value = new & reg.full_mask
    for f, fold, fnew in pending:
        calls.append((f.name, fold, fnew))
    if reg.on_write is not None:
        calls.append(("<reg>", old, reg.value))


def _reference_read(reg: Register) -> int:
    v = reg.value
    for f in reg.fields.values():
        if f.on_read is not None:
            v = (v & ~f.mask) | ((f.on_read() << f.lsb) & f.mask)
        elif f.access is Access.WO:
            v &= ~f.mask
    if reg.on_read is not None:
        v = reg.on_read(v)
    for f in reg.fields.values():
        if f.access is Access.RC:
            reg.value &= ~f.mask
    return v & reg.full_mask


def _random_register(rng: random.Random, calls: list[tuple[object, ...]], guards: list[bool]) -> Register:
    width = rng.choice((8, 16, 32))
    reg = Register("R", 0, width, reset=rng.getrandbits(width))
    if rng.random() < 0.3:
        reg.on_write = lambda old, new: calls.append(("<reg>", old, new))
    if rng.random() < 0.2:
        reg.on_read = lambda v: v ^ 0x5
    if rng.random() < 0.3:
        reg.default_access = Access.RW
    shared = [lambda i=i: guards[i] for i in range(len(guards))]  # guards shared by several fields
    lsb = rng.randrange(3)
    n = 0
    while lsb < width:
        fwidth = rng.randint(1, min(6, width - lsb))
        name = f"F{n}"
        on_write = None
        if rng.random() < 0.4:
            on_write = lambda old, new, name=name: calls.append((name, old, new))  # noqa: E731
        constant = rng.getrandbits(fwidth)
        on_read = (lambda k=constant: k) if rng.random() < 0.15 else None
        guard = rng.choice(shared) if rng.random() < 0.4 else None
        reg.field(
            lsb,
            fwidth,
            name,
            access=rng.choice(_ACCESSES),
            on_write=on_write,
            on_read=on_read,
            writable_when=guard,
        )
        n += 1
        lsb += fwidth + rng.randrange(3)
    return reg


def _compare_random_accesses(
    rng: random.Random,
    reg: Register,
    ref: Register,
    calls_a: list[tuple[object, ...]],
    calls_b: list[tuple[object, ...]],
    *,
    read_share: float,
    guards: list[bool] | None = None,
) -> None:
    """200 random reads and byte-lane writes: ``reg`` through its plans, ``ref`` through the
    reference rules; values and callback calls must stay identical."""
    for _ in range(200):
        if guards is not None:
            guards[:] = [rng.random() < 0.5 for _ in guards]
        if rng.random() < read_share:
            assert reg.bus_read() == _reference_read(ref)
        else:
            value = rng.getrandbits(reg.width)
            lanes = rng.choice((reg.full_mask, 0xFF, 0xFF00, 0xFFFF_0000, 0x00FF_0000)) & reg.full_mask
            reg.bus_write(value & lanes, lanes)
            _reference_write(ref, value & lanes, lanes, calls_b)
        assert reg.value == ref.value
        assert calls_a == calls_b


@pytest.mark.parametrize("seed", range(40))
def test_plans_follow_the_field_rules(seed: int) -> None:
    rng = random.Random(seed)
    calls_a: list[tuple[object, ...]] = []
    calls_b: list[tuple[object, ...]] = []
    guards = [True, False, True]
    # two identical registers (same seed): one through the plans, one through the reference
    reg = _random_register(random.Random(seed), calls_a, guards)
    ref = _random_register(random.Random(seed), calls_b, guards)
    _compare_random_accesses(rng, reg, ref, calls_a, calls_b, read_share=0.3, guards=guards)


@pytest.mark.parametrize("seed", range(20))
def test_plain_registers_follow_the_field_rules(seed: int) -> None:
    """Registers of callback-free, unguarded RW/WO/RO/RC fields take bus_write's short path;
    the default access and a register-level on_write still apply."""
    rng = random.Random(seed)
    calls_a: list[tuple[object, ...]] = []
    calls_b: list[tuple[object, ...]] = []

    def plain(calls: list[tuple[object, ...]], r: random.Random) -> Register:
        width = r.choice((8, 16, 32))
        reg = Register("P", 0, width, reset=r.getrandbits(width))
        if r.random() < 0.5:
            reg.on_write = lambda old, new: calls.append(("<reg>", old, new))
        if r.random() < 0.3:
            reg.default_access = Access.RW
        lsb = r.randrange(3)
        n = 0
        while lsb < width:
            fwidth = r.randint(1, min(6, width - lsb))
            reg.field(lsb, fwidth, f"F{n}", access=r.choice((Access.RW, Access.WO, Access.RO, Access.RC)))
            n += 1
            lsb += fwidth + r.randrange(3)
        return reg

    reg = plain(calls_a, random.Random(seed))
    ref = plain(calls_b, random.Random(seed))
    _compare_random_accesses(rng, reg, ref, calls_a, calls_b, read_share=0.2)


def test_a_field_added_after_an_access_is_honoured() -> None:
    reg = Register("R", 0, 32)
    reg.field(0, 8, "A")
    reg.bus_write(0xFFFF_FFFF, 0xFFFF_FFFF)
    assert reg.value == 0xFF
    reg.field(8, 8, "B", access=Access.WO)
    reg.bus_write(0xFFFF_FFFF, 0xFFFF_FFFF)
    assert reg.value == 0xFFFF
    assert reg.bus_read() == 0xFF  # write-only bits read 0


def test_bank_lookup_follows_later_definitions() -> None:
    host = StandaloneHost()
    bank = RegisterBank("T", host)
    bank.define(0x0, "A", reset=0x1234_5678)
    assert bank.read(0x4, 4) == 0  # unmodelled (logged once)
    assert bank.read(0x2, 2) == 0x1234
    bank.define(0x4, "B", reset=0xCAFE, access=Access.RW)
    assert bank.read(0x4, 4) == 0xCAFE
    bank.alias(0x8, "B")
    bank.write(0x8, 4, 0xBEEF)
    assert bank.read(0x4, 4) == 0xBEEF
    bank.write(0x5, 1, 0x12)  # one byte lane
    assert bank.read(0x4, 4) == 0x12EF
    assert bank.read(0x3, 1) == 0x12
