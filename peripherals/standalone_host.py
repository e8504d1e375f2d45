"""A host without a CPU: virtual time advanced by hand.

Used by the models' unit tests and by tools that drive a model directly (inspection, wear maps).
:class:`EventQueue` is the deterministic virtual-time scheduler; the embedded engine uses it too.

For bus-master models (the MDMA) the host is also a small system bus: RAM added with
:meth:`StandaloneHost.add_ram`, register models with :meth:`StandaloneHost.add_device`, and the
published windows; anything else is a bus error.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from peripherals.host import (
    BusAccessFromBlocks,
    ReadWatchHandler,
    WindowWriteHandler,
    finish_fifo_write,
    read_units,
    write_fifo_by_beats,
    write_units,
)


class PowerCut(Exception):
    """Raised by :class:`StandaloneHost` when a model cuts the power (fault injection)."""


class BusError(Exception):
    """Raised by :class:`StandaloneHost` when a model signals a bus error on an access."""


@dataclass(order=True)
class _Event:
    when: int
    seq: int
    callback: Callable[[], None] = field(compare=False)
    name: str = field(compare=False, default="")
    cancelled: bool = field(compare=False, default=False)

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def pending(self) -> bool:
        return not self.cancelled and self.seq >= 0


class EventQueue:
    """Callbacks ordered by virtual time (ns); ties run in scheduling order (deterministic)."""

    def __init__(self) -> None:
        self.now = 0
        self._heap: list[_Event] = []
        self._seq = itertools.count()

    def schedule(self, delay_ns: int, callback: Callable[[], None], name: str = "") -> _Event:
        ev = _Event(self.now + max(0, int(delay_ns)), next(self._seq), callback, name)
        heapq.heappush(self._heap, ev)
        return ev

    def next_time(self) -> int | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].when if self._heap else None

    def run_due(self) -> int:
        """Run every event due at or before ``now``; returns how many ran."""
        ran = 0
        while True:
            t = self.next_time()
            if t is None or t > self.now:
                return ran
            ev = heapq.heappop(self._heap)
            ev.seq = -1  # no longer pending
            ev.callback()
            ran += 1

    def advance_to(self, t: int) -> None:
        """Move time to ``t``, running events in order as their time comes."""
        while True:
            nt = self.next_time()
            if nt is None or nt > t:
                break
            self.now = max(self.now, nt)
            self.run_due()
        self.now = max(self.now, t)

    def clear(self) -> None:
        self._heap.clear()


class StandaloneHost(BusAccessFromBlocks):
    """A complete :class:`peripherals.host.Host` for driving models without a CPU."""

    def __init__(self) -> None:
        self.events = EventQueue()
        self.irqs: dict[int, bool] = {}
        self.irq_history: list[tuple[int, int, bool]] = []  # (time, irq, level)
        self.windows: dict[str, tuple[int, bytearray, bool, WindowWriteHandler | None]] = {}
        self.enabled_windows: set[str] = set()
        self.invalidations: list[tuple[int, int]] = []
        self.watches: list[tuple[int, int, ReadWatchHandler]] = []
        self.bus_errors: list[tuple[int, str]] = []
        self.powered_off: str | None = None
        self.logs: list[tuple[int, str]] = []
        self.raise_on_power_off = False
        # the system bus seen by bus masters
        self.ram: list[tuple[int, bytearray]] = []
        self.devices: list[tuple[int, int, Any]] = []  # (base, size, model with read/write)
        self._master_errors: list[str] | None = None  # bus_error() during a master access

    # -- Host protocol ---------------------------------------------------------------------
    def now_ns(self) -> int:
        return self.events.now

    def schedule(self, delay_ns: int, callback: Callable[[], None], name: str = "") -> _Event:
        return self.events.schedule(delay_ns, callback, name)

    def set_irq(self, irq: int, level: bool) -> None:
        level = bool(level)
        if self.irqs.get(irq, False) != level:
            self.irq_history.append((self.events.now, irq, level))
        self.irqs[irq] = level

    def map_memory(
        self,
        name: str,
        base: int,
        buffer: bytearray,
        *,
        executable: bool = True,
        on_write: WindowWriteHandler | None = None,
    ) -> None:
        self.windows[name] = (base, buffer, executable, on_write)
        self.enabled_windows.add(name)

    def unmap_memory(self, name: str) -> None:
        self.enabled_windows.discard(name)

    def invalidate(self, base: int, size: int) -> None:
        self.invalidations.append((base, size))

    def watch_reads(self, base: int, size: int, handler: ReadWatchHandler) -> Callable[[], None]:
        entry = (base, size, handler)
        self.watches.append(entry)
        return lambda: self.watches.remove(entry) if entry in self.watches else None

    def bus_error(self, address: int, reason: str) -> None:
        if self._master_errors is not None:  # a model refuses a bus master's access
            self._master_errors.append(reason)
            return
        self.bus_errors.append((address, reason))

    def power_off(self, reason: str) -> None:
        self.powered_off = reason
        if self.raise_on_power_off:
            raise PowerCut(reason)

    def log(self, level: int, message: str) -> None:
        self.logs.append((level, message))

    # -- bus master accesses (Host protocol) ----------------------------------------------
    def bus_read_block(self, address: int, length: int, unit: int = 4) -> bytes:
        out = bytearray()
        addr = address
        end = address + length
        while addr < end:
            hit = self._bus_target(addr)
            if hit is None:
                break
            kind, base, limit, obj = hit
            chunk = min(end, limit) - addr
            if kind == "ram":
                out += obj[addr - base : addr - base + chunk]
            elif kind == "window":
                name, buf = obj
                if name not in self.enabled_windows:
                    break
                pos = 0 if self.watches else chunk
                while pos < chunk:  # read watches (ECC errors) may refuse some accesses
                    size = unit if chunk - pos >= unit else 1
                    if self._watch_refuses(addr + pos, size):
                        break
                    pos += size
                out += buf[addr - base : addr - base + pos]
                if pos < chunk:
                    break
            else:
                got = self._device_read(obj, base, addr, chunk, unit)
                out += got
                if len(got) < chunk:
                    break
            addr += chunk
        return bytes(out)

    def bus_write_block(self, address: int, data: bytes, unit: int = 4) -> int:
        done = 0
        while done < len(data):
            addr = address + done
            hit = self._bus_target(addr)
            if hit is None:
                break
            kind, base, limit, obj = hit
            chunk = min(len(data) - done, limit - addr)
            if kind == "ram":
                obj[addr - base : addr - base + chunk] = data[done : done + chunk]
                n = chunk
            elif kind == "window":
                name, _buf = obj
                on_write = self.windows[name][3]
                if name not in self.enabled_windows or on_write is None:
                    break
                n = self._units(on_write, base, addr, data[done : done + chunk], unit)
            else:
                n = self._units(obj.write, base, addr, data[done : done + chunk], unit)
            done += n
            if n < chunk:
                break
        return done

    def bus_write_fifo(self, address: int, data: bytes, unit: int = 4) -> int:
        # as the embedded engine: a device's write_fifo may take leading beats at once
        hit = self._bus_target(address)
        bulk = getattr(hit[3], "write_fifo", None) if hit is not None and hit[0] == "device" else None
        if bulk is None:
            return write_fifo_by_beats(self.bus_write, address, data, unit)
        with self._serving_master() as errors:
            done = bulk(address - hit[1], unit, bytes(data))
        return finish_fifo_write(done, bool(errors), self.bus_write, address, data, unit)

    def _bus_target(self, address: int) -> tuple[str, int, int, Any] | None:
        """(kind, base, end, object) of what answers a bus master at ``address``."""
        if address < 0 or address >= 0xE000_0000:  # the PPB is private to the CPU
            return None
        for base, buf in self.ram:
            if base <= address < base + len(buf):
                return "ram", base, base + len(buf), buf
        for base, size, model in self.devices:
            if base <= address < base + size:
                return "device", base, base + size, model
        for name, (base, buf, _x, _w) in self.windows.items():
            if base <= address < base + len(buf):
                return "window", base, base + len(buf), (name, buf)
        return None

    def _watch_refuses(self, address: int, length: int) -> bool:
        for base, wsize, handler in list(self.watches):
            lo, hi = max(base, address), min(base + wsize, address + length)
            if lo < hi and handler(lo - base, hi - lo):
                return True
        return False

    @contextlib.contextmanager
    def _serving_master(self) -> Iterator[list[str]]:
        """While a model serves a bus master's access, its bus_error() reports land here."""
        self._master_errors = errors = []
        try:
            yield errors
        finally:
            self._master_errors = None

    def _device_read(self, model: Any, base: int, address: int, length: int, unit: int) -> bytes:
        with self._serving_master() as errors:
            return read_units(model.read, address - base, length, unit, errors)

    def _units(
        self, write: Callable[[int, int, int], None], base: int, address: int, data: bytes, unit: int
    ) -> int:
        """Write ``data`` in ``unit``-byte accesses; returns the bytes accepted."""
        with self._serving_master() as errors:
            return write_units(write, address - base, data, unit, errors)

    # -- test helpers ----------------------------------------------------------------------
    def add_ram(self, base: int, size: int | bytearray) -> bytearray:
        """Plain memory for bus masters at ``base`` (a new zero-filled buffer, or the one given)."""
        buf = size if isinstance(size, bytearray) else bytearray(size)
        self.ram.append((base, buf))
        return buf

    def add_device(self, base: int, size: int, model: Any) -> None:
        """A register model answering bus masters in [base, base+size) (offsets from base)."""
        self.devices.append((base, size, model))

    def advance(self, ns: int) -> None:
        self.events.advance_to(self.events.now + ns)

    def run_until_idle(self, limit_ns: int = 10**12) -> None:
        """Run scheduled events until none remain (or ``limit_ns`` of virtual time passed)."""
        end = self.events.now + limit_ns
        while True:
            t = self.events.next_time()
            if t is None or t > end:
                return
            self.events.advance_to(t)

    def cpu_read(self, address: int, size: int) -> int:
        """A CPU read through the published windows (honours enable state and read watches)."""
        for base, wsize, handler in list(self.watches):
            if base <= address < base + wsize:
                err = handler(address - base, size)
                if err:
                    raise BusError(err)
        for name, (base, buf, _x, _w) in self.windows.items():
            if base <= address < base + len(buf):
                if name not in self.enabled_windows:
                    raise BusError(f"window {name} disabled")
                off = address - base
                return int.from_bytes(buf[off : off + size], "little")
        raise BusError(f"no window at {address:#x}")

    def cpu_write(self, address: int, size: int, value: int) -> None:
        for name, (base, buf, _x, on_write) in self.windows.items():
            if base <= address < base + len(buf):
                if name not in self.enabled_windows or on_write is None:
                    raise BusError(f"write to window {name} refused")
                on_write(address - base, size, value)
                return
        raise BusError(f"no window at {address:#x}")
