"""The Host contract (peripherals/host.py) implemented on a Renode machine.

| Host call | Renode mechanism (EMULATION.md §4) |
|---|---|
| now_ns | ``cpu.SyncTime()`` then ``machine.ElapsedVirtualTime.TimeElapsed`` |
| schedule | ``machine.ScheduleAction(TimeInterval.FromMicroseconds(n), Action[TimeInterval](fn), name)`` |
| set_irq | ``sysbus.nvic.OnGPIO(n, level)`` |
| map_memory | a ``Memory.MappedMemory`` created from a platform string, filled from the model's buffer with ``WriteBytes`` (ctypes + ``Marshal.Copy``), registered/unregistered on the system bus |
| invalidate | copy the changed range again with ``WriteBytes`` (Renode drops stale translated code) |
| watch_reads | ``sysbus.AddWatchpointHook`` per address of the watched words |
| on_write | CPU stores land in Renode's MappedMemory (Renode has write hooks only per address); before each access to the owner model's registers while it expects writes (FLASH: PG set), the adapter compares the memory with the model's buffer, hands every changed word to on_write in address order and restores the memory from the buffer |
| bus_error | logged; Renode's bus has no way for a peripheral to fail an access (documented limit); while a bus master access of ours is served, it fails that access instead |
| power_off | ``emulation.PauseAll()`` from the host thread after the current quantum |
| bus_read/bus_write (+ _block) | the system bus: ``sysbus.WhatIsAt(a)`` (None: bus error), then ``ReadByte/ReadWord/ReadDoubleWord`` / ``Write...`` per access (Renode keeps translated code coherent for sysbus writes); the PPB (>= 0xE0000000) is refused |
"""

from __future__ import annotations

import ctypes
import logging
import math
from collections.abc import Callable
from typing import Any

from h743sim.renode.bridge import guarded
from peripherals.host import BusAccessFromBlocks

log = logging.getLogger("h743sim.renode")


def _interval_ns(interval: Any) -> int:
    for attr, scale in (
        ("TotalMicroseconds", 1_000),
        ("TotalMilliseconds", 1_000_000),
        ("TotalSeconds", 10**9),
    ):
        if hasattr(interval, attr):
            return int(float(getattr(interval, attr)) * scale)
    return int(interval.Ticks) * 1_000  # Renode's TimeInterval ticks are microseconds


class _RenodeTimer:
    def __init__(self) -> None:
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def pending(self) -> bool:
        return not (self.cancelled or self.fired)


class RenodeHost(BusAccessFromBlocks):
    """One per model; shares the machine and the board's power-off flag."""

    def __init__(self, board: Any, model_name: str) -> None:
        self.board = board
        self.name = model_name
        self.logger = logging.getLogger(f"h743sim.model.{model_name}")
        self._keep: list[Any] = []  # delegates must outlive their registration

    # -- time -----------------------------------------------------------------------------
    def now_ns(self) -> int:
        self.board.cpu.SyncTime()
        return _interval_ns(self.board.rmachine.ElapsedVirtualTime.TimeElapsed)

    def schedule(self, delay_ns: int, callback: Callable[[], None], name: str = "") -> _RenodeTimer:
        from Antmicro.Renode.Time import TimeInterval  # type: ignore[import-not-found]
        from System import Action  # type: ignore[import-not-found]

        timer = _RenodeTimer()

        def fire(_when: Any) -> None:
            if timer.cancelled:
                return
            timer.fired = True
            callback()

        action = Action[TimeInterval](guarded(f"{self.name} timer {name}", fire))
        self._keep.append(action)
        us = max(1, math.ceil(delay_ns / 1000))
        self.board.rmachine.ScheduleAction(TimeInterval.FromMicroseconds(us), action, name or self.name)
        return timer

    # -- interrupts -------------------------------------------------------------------------
    def set_irq(self, irq: int, level: bool) -> None:
        self.board.nvic.OnGPIO(int(irq), bool(level))

    # -- memory windows ---------------------------------------------------------------------
    def map_memory(self, name, base, buffer, *, executable=True, on_write=None) -> None:  # noqa: ANN001
        self.board.publish_window(name, base, buffer, on_write, owner=self.name)

    def unmap_memory(self, name: str) -> None:
        self.board.withdraw_window(name)

    def invalidate(self, base: int, size: int) -> None:
        self.board.refresh_window_range(base, size)

    def watch_reads(self, base, size, handler):  # noqa: ANN001
        return self.board.add_read_watch(base, size, handler)

    def bus_error(self, address: int, reason: str) -> None:
        errors = getattr(self.board, "_h743sim_master_errors", None)
        if errors is not None:  # a bus master access of ours (DMA) is being served: it fails
            errors.append(f"{self.name}: {reason}")
            return
        self.logger.error("bus error at %#010x: %s (Renode cannot fail the access itself)", address, reason)

    def power_off(self, reason: str) -> None:
        self.board.request_power_off(reason)

    def log(self, level: int, message: str) -> None:
        self.logger.log(level, message)

    # -- bus master accesses (per access through the system bus: simple, not fast) ----------
    _READERS = {1: "ReadByte", 2: "ReadWord", 4: "ReadDoubleWord"}
    _WRITERS = {1: "WriteByte", 2: "WriteWord", 4: "WriteDoubleWord"}

    def _mapped(self, address: int) -> bool:
        if not 0 <= address < 0xE000_0000:
            return False
        try:
            return self.board.rmachine.SystemBus.WhatIsAt(address) is not None
        except AttributeError:  # a Renode without WhatIsAt: every address counts as mapped
            return True

    def _unit_access(self, address: int, size: int, value: int | None) -> int | None:
        """One access of 1, 2 or 4 bytes; None when it failed (unmapped or refused by a model)."""
        if not self._mapped(address):
            return None
        sysbus = self.board.rmachine.SystemBus
        errors: list[str] = []
        self.board._h743sim_master_errors = errors  # bus_error() of our models lands here
        try:
            if value is None:
                result = int(getattr(sysbus, self._READERS[size])(address))
            else:
                getattr(sysbus, self._WRITERS[size])(address, value)
                result = 0
        finally:
            self.board._h743sim_master_errors = None
        return None if errors else result

    def bus_read_block(self, address: int, length: int, unit: int = 4) -> bytes:
        out = bytearray()
        unit = min(unit, 4)
        while len(out) < length:
            size = unit if length - len(out) >= unit else 1
            value = self._unit_access(address + len(out), size, None)
            if value is None:
                break
            out += (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return bytes(out)

    def bus_write_block(self, address: int, data: bytes, unit: int = 4) -> int:
        pos = 0
        unit = min(unit, 4)
        while pos < len(data):
            size = unit if len(data) - pos >= unit else 1
            value = int.from_bytes(data[pos : pos + size], "little")
            if self._unit_access(address + pos, size, value) is None:
                break
            pos += size
        return pos


def copy_into_memory(memory: Any, offset: int, data: bytearray | memoryview, start: int, length: int) -> None:
    """Copy ``data[start:start+length]`` into a Renode MappedMemory at ``offset`` (fast path)."""
    from System import (  # type: ignore[import-not-found]
        Array,
        Byte,
        IntPtr,  # type: ignore[import-not-found]
    )
    from System.Runtime.InteropServices import Marshal  # type: ignore[import-not-found]

    arr = Array.CreateInstance(Byte, length)
    cbuf = (ctypes.c_char * length).from_buffer(data, start) if not isinstance(data, bytes) else None
    if cbuf is None:
        raise TypeError("window buffers must be writable bytearrays")
    Marshal.Copy(IntPtr(ctypes.addressof(cbuf)), arr, 0, length)
    memory.WriteBytes(offset, arr, 0, length)
