"""The contract between a peripheral model and whatever hosts it (embedded engine or Renode).

A model receives a :class:`Host` at construction and uses nothing else of its environment.
Virtual time is an integer number of nanoseconds since power-on.

Bus-master models (the MDMA) also read and write the system bus through the host
(:meth:`Host.bus_read` and friends): RAM directly, registers through the owning model's
``read``/``write``, published windows as the CPU would see them. A bus error is reported in the
return value (None, False, a short result), never as an exception or a CPU fault.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

# Logging levels used by models (the stdlib's).
DEBUG = logging.DEBUG
INFO = logging.INFO
WARNING = logging.WARNING
ERROR = logging.ERROR

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000

# on_write(offset_in_window, size_in_bytes, value) for writes into a published window.
WindowWriteHandler = Callable[[int, int, int], None]
# on_read(offset_in_window, size_in_bytes) -> None, or a string: the access ends in a bus error.
ReadWatchHandler = Callable[[int, int], "str | None"]


class Timer(Protocol):
    """A callback scheduled in virtual time."""

    def cancel(self) -> None: ...

    @property
    def pending(self) -> bool: ...


class Host(Protocol):
    """What a hosting engine offers a model."""

    def now_ns(self) -> int:
        """Current virtual time in nanoseconds."""
        ...

    def schedule(self, delay_ns: int, callback: Callable[[], None], name: str = "") -> Timer:
        """Call ``callback`` once, ``delay_ns`` of virtual time from now (on the CPU thread)."""
        ...

    def set_irq(self, irq: int, level: bool) -> None:
        """Drive NVIC interrupt line ``irq`` (IRQn, 0-based) high or low (level-sensitive)."""
        ...

    def map_memory(
        self,
        name: str,
        base: int,
        buffer: bytearray,
        *,
        executable: bool = True,
        on_write: WindowWriteHandler | None = None,
    ) -> None:
        """Publish ``buffer`` (owned by the model, never resized) at ``base``.

        CPU reads and instruction fetches see the buffer directly. CPU writes do not change it:
        they are handed to ``on_write`` (or end in a bus error when ``on_write`` is None).
        Publishing a name again re-enables a window that :meth:`unmap_memory` disabled.
        """
        ...

    def unmap_memory(self, name: str) -> None:
        """Make a published window inaccessible: any access ends in a bus error."""
        ...

    def invalidate(self, base: int, size: int) -> None:
        """The model changed bytes of a published window: drop stale translated code/caches."""
        ...

    def watch_reads(self, base: int, size: int, handler: ReadWatchHandler) -> Callable[[], None]:
        """Call ``handler`` on every CPU read in [base, base+size); returns a function removing it.

        The handler may return a reason string to make the read end in a bus error (used for
        double-bit ECC errors). Keep ranges small: watched reads are slow.
        """
        ...

    def bus_error(self, address: int, reason: str) -> None:
        """The register access being served must end in a bus error (BusFault / HardFault)."""
        ...

    def power_off(self, reason: str) -> None:
        """Power is cut now (fault injection): the board stops at the end of the current access."""
        ...

    def log(self, level: int, message: str) -> None:
        """Log a message attributed to the calling model."""
        ...

    # -- bus master (DMA) accesses ---------------------------------------------------------
    def bus_read(self, address: int, size: int) -> int | None:
        """One ``size``-byte (1, 2, 4 or 8) little-endian read by a bus master; None: bus error.

        RAM is read directly, a register through its model's ``read`` (8 bytes as two 4-byte
        accesses), an enabled window from its buffer (disabled, or a read watch refusing: error).
        Unmapped addresses and the CPU-private PPB (0xE0000000 and up) are bus errors.
        """
        ...

    def bus_write(self, address: int, size: int, value: int) -> bool:
        """One ``size``-byte write by a bus master; False: bus error (nothing written).

        RAM is written keeping translated code coherent, a register through its model's
        ``write``, a window through its ``on_write`` handler as a CPU store would be (no handler,
        or the window disabled: error). A model that signals :meth:`bus_error` while serving
        the access makes it fail (the CPU is not faulted).
        """
        ...

    def bus_read_block(self, address: int, length: int, unit: int = 4) -> bytes:
        """``length`` bytes from ``address`` (memory semantics); registers are read in ``unit``-byte
        accesses. A result shorter than ``length`` means the access at ``address + len(result)``
        ended in a bus error."""
        ...

    def bus_write_block(self, address: int, data: bytes, unit: int = 4) -> int:
        """Write ``data`` at ``address`` (registers and windows in ``unit``-byte accesses); returns
        how many bytes were written: less than ``len(data)`` means the access at
        ``address + result`` ended in a bus error (the bytes before it are written)."""
        ...

    def bus_write_fifo(self, address: int, data: bytes, unit: int = 4) -> int:
        """Write ``data`` as consecutive ``unit``-byte accesses all to ``address`` (a data register
        fed by a DMA with a fixed destination); returns the bytes written, as
        :meth:`bus_write_block`. A model may take the beats in one call (``write_fifo``)."""
        ...

    def bus_read_fifo(self, address: int, length: int, unit: int = 4) -> bytes:
        """``length`` bytes read as consecutive ``unit``-byte accesses all from ``address`` (a data
        register a DMA empties); a short result means that beat failed."""
        ...


def read_units(
    read: Callable[[int, int], int], offset: int, length: int, unit: int, errors: list[str]
) -> bytes:
    """``length`` bytes from a model in ``unit``-byte reads from ``offset`` on (single bytes for a
    tail); stops before the first read after which ``errors`` is not empty (a bus error the model
    signalled while serving it)."""
    out = bytearray()
    pos = 0
    while pos < length:
        size = unit if length - pos >= unit else 1
        value = read(offset + pos, size)
        if errors:
            break
        out += (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        pos += size
    return bytes(out)


def write_units(
    write: Callable[[int, int, int], None], offset: int, data: bytes, unit: int, errors: list[str]
) -> int:
    """Write ``data`` to a model in ``unit``-byte accesses from ``offset`` on; returns the bytes
    accepted (the access after which ``errors`` is not empty did not land)."""
    pos = 0
    while pos < len(data):
        size = unit if len(data) - pos >= unit else 1
        write(offset + pos, size, int.from_bytes(data[pos : pos + size], "little"))
        if errors:
            break
        pos += size
    return pos


def write_fifo_by_beats(
    bus_write: Callable[[int, int, int], bool], address: int, data: bytes, unit: int
) -> int:
    """:meth:`Host.bus_write_fifo` from single bus writes (hosts without a faster path)."""
    pos = 0
    while pos < len(data):
        size = unit if len(data) - pos >= unit else 1
        if not bus_write(address, size, int.from_bytes(data[pos : pos + size], "little")):
            break
        pos += size
    return pos


def finish_fifo_write(
    taken: int, failed: bool, bus_write: Callable[[int, int, int], bool], address: int, data: bytes, unit: int
) -> int:
    """:meth:`Host.bus_write_fifo` after a model's ``write_fifo`` took ``taken`` leading bytes
    at once: a bus error it signalled fails its last beat (a model must not take a failing
    beat); otherwise the rest goes beat by beat. Returns the bytes written."""
    if failed:
        return max(0, taken - unit)
    return taken + write_fifo_by_beats(bus_write, address, data[taken:], unit)


def read_fifo_by_beats(
    bus_read: Callable[[int, int], int | None], address: int, length: int, unit: int
) -> bytes:
    """:meth:`Host.bus_read_fifo` from single bus reads (hosts without a faster path)."""
    out = bytearray()
    while len(out) < length:
        size = unit if length - len(out) >= unit else 1
        value = bus_read(address, size)
        if value is None:
            break
        out += value.to_bytes(size, "little")
    return bytes(out)


class BusAccessFromBlocks:
    """:meth:`Host.bus_read`/:meth:`Host.bus_write` and the FIFO forms (beat by beat) for a host
    that implements ``bus_read_block``/``bus_write_block``."""

    def bus_read_block(self, address: int, length: int, unit: int = 4) -> bytes:
        raise NotImplementedError

    def bus_write_block(self, address: int, data: bytes, unit: int = 4) -> int:
        raise NotImplementedError

    def bus_read(self, address: int, size: int) -> int | None:
        data = self.bus_read_block(address, size, min(size, 4))
        return int.from_bytes(data, "little") if len(data) == size else None

    def bus_write(self, address: int, size: int, value: int) -> bool:
        data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return self.bus_write_block(address, data, min(size, 4)) == size

    def bus_write_fifo(self, address: int, data: bytes, unit: int = 4) -> int:
        return write_fifo_by_beats(self.bus_write, address, data, min(unit, 4))

    def bus_read_fifo(self, address: int, length: int, unit: int = 4) -> bytes:
        return read_fifo_by_beats(self.bus_read, address, length, min(unit, 4))
