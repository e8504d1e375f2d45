"""A host without a CPU: virtual time advanced by hand.

Used by the models' unit tests and by tools that drive a model directly (inspection, wear maps).
:class:`EventQueue` is the deterministic virtual-time scheduler; the embedded engine uses it too.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from peripherals.host import ReadWatchHandler, WindowWriteHandler


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


class StandaloneHost:
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
        self.bus_errors.append((address, reason))

    def power_off(self, reason: str) -> None:
        self.powered_off = reason
        if self.raise_on_power_off:
            raise PowerCut(reason)

    def log(self, level: int, message: str) -> None:
        self.logs.append((level, message))

    # -- test helpers ----------------------------------------------------------------------
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
