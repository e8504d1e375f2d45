"""Unicorn internals the engine needs: the instruction counter and the last invalid address.

Exact instruction counts for unicorn's ``count=`` slices, readable and adjustable mid-slice:

``emu_start(..., count=N)`` makes unicorn count instructions in ``uc_struct.emu_counter`` and
stop when it passes ``uc_struct.emu_count``. The binding exposes neither, but both are plain
64-bit fields next to each other in the engine handle. Reading them tells how many instructions
ran when a slice ends early (WFI, fault, stop request) and what "now" is inside an MMIO callback;
lowering ``emu_count`` from a callback ends the slice cleanly after the current instruction, which
``emu_stop()`` cannot do (EMULATION.md §2: the access would be executed again).

Their offset is found at start-up by running a one-instruction loop with two known counts and
looking for the pair (N+1, N) in the handle; the offset is checked twice, so an unexpected layout
fails loudly instead of corrupting memory.

The address of a failed access (``uc_struct.invalid_addr``) is found the same way. Reading it
replaces unicorn's invalid-memory hooks, which must not be installed: any such hook sends every
load and store through unicorn's slow path (measured 100 -> 22 MIPS on load/store code).
"""

from __future__ import annotations

import ctypes
from typing import Any

from unicorn import UcError
from unicorn import arm_const as arm
from unicorn import unicorn_const as ucc

from h743sim.engine.native import handle

_SCAN_BYTES = 2048
_SCRATCH_BASE = 0x0
_SCRATCH_SIZE = 0x400
_LOOP = b"\xfe\xe7"  # b .


class CounterUnavailable(RuntimeError):
    """The running unicorn build does not keep its instruction counter where expected."""


class FaultAddress:
    """The address of the last access unicorn refused (unmapped or protected)."""

    def __init__(self, uc: Any) -> None:
        self._field = _locate_invalid_address(uc)

    def read(self) -> int:
        return self._field[0] & 0xFFFFFFFF


class InstructionCounter:
    """View of unicorn's per-``emu_start`` instruction counter and limit."""

    def __init__(self, uc: Any) -> None:
        self._fields = _locate(uc)

    @property
    def counter(self) -> int:
        """Instructions begun in the current/last slice (the one being executed included)."""
        return self._fields[0]

    @property
    def limit(self) -> int:
        return self._fields[1]

    @limit.setter
    def limit(self, value: int) -> None:
        # 0 means "no limit" to unicorn: never write it.
        self._fields[1] = max(1, int(value))

    def executed(self) -> int:
        """Instructions completed so far in the current/last slice."""
        c, lim = self._fields[0], self._fields[1]
        return c if c <= lim else lim

    def stop_after_current(self) -> None:
        """End the running slice after the instruction now executing (safe inside callbacks)."""
        c = self._fields[0]
        if c < self._fields[1]:
            self._fields[1] = max(1, c)

    def stop_at(self, instructions: int) -> None:
        """End the running slice once ``instructions`` have completed (never later than planned)."""
        target = max(self._fields[0], int(instructions), 1)
        if target < self._fields[1]:
            self._fields[1] = target


def _locate(uc: Any) -> Any:
    base = handle(uc).value
    if not base:
        raise CounterUnavailable("unicorn engine handle is null")
    uc.mem_map(_SCRATCH_BASE, _SCRATCH_SIZE, ucc.UC_PROT_ALL)
    try:
        uc.mem_write(_SCRATCH_BASE, _LOOP)
        words = (ctypes.c_uint64 * (_SCAN_BYTES // 8)).from_address(base)
        first, second = 0x13579, 0x2468A
        _run(uc, first)
        candidates = [i for i in range(len(words) - 1) if words[i] == first + 1 and words[i + 1] == first]
        _run(uc, second)
        found = [i for i in candidates if words[i] == second + 1 and words[i + 1] == second]
        if len(found) != 1:
            raise CounterUnavailable(
                f"could not locate unicorn's instruction counter ({len(found)} candidates); "
                "this unicorn build is not the 2.1.x layout the engine was written for"
            )
        return (ctypes.c_uint64 * 2).from_address(base + 8 * found[0])
    finally:
        uc.mem_unmap(_SCRATCH_BASE, _SCRATCH_SIZE)
        uc.ctl_flush_tb()
        uc.reg_write(arm.UC_ARM_REG_PC, 0)


def _run(uc: Any, count: int) -> None:
    try:
        uc.emu_start(_SCRATCH_BASE | 1, 0xFFFFFFFF, 0, count)
    except UcError as exc:
        raise CounterUnavailable(f"calibration run failed: {exc}") from exc


_PROBE_LOAD = b"\x01\x49\x0a\x68\xfe\xe7\x00\xbf"  # ldr r1, [pc, #4]; ldr r2, [r1]; b .; nop
_PROBE_STORE = b"\x01\x49\x0a\x60\xfe\xe7\x00\xbf"  # ldr r1, [pc, #4]; str r2, [r1]; b .; nop


def _locate_invalid_address(uc: Any) -> Any:
    base = handle(uc).value
    uc.mem_map(_SCRATCH_BASE, _SCRATCH_SIZE, ucc.UC_PROT_ALL)
    try:
        words = (ctypes.c_uint64 * (_SCAN_BYTES // 8)).from_address(base)
        found: set[int] | None = None
        for code, probe in ((_PROBE_LOAD, 0x5A5A5A40), (_PROBE_STORE, 0x3C3C3C30)):
            uc.mem_write(_SCRATCH_BASE, code + probe.to_bytes(4, "little"))
            uc.ctl_remove_cache(_SCRATCH_BASE, _SCRATCH_BASE + _SCRATCH_SIZE)
            try:
                uc.emu_start(_SCRATCH_BASE | 1, 0xFFFFFFFF, 0, 10)
            except UcError:
                pass  # expected: the probe address is not mapped
            hits = {i for i in range(len(words)) if words[i] == probe}
            found = hits if found is None else found & hits
        if not found or len(found) != 1:
            raise CounterUnavailable(
                "could not locate unicorn's invalid-address field (unexpected unicorn build)"
            )
        return (ctypes.c_uint64 * 1).from_address(base + 8 * found.pop())
    finally:
        uc.mem_unmap(_SCRATCH_BASE, _SCRATCH_SIZE)
        uc.ctl_flush_tb()
        uc.reg_write(arm.UC_ARM_REG_PC, 0)
