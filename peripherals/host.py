"""The contract between a peripheral model and whatever hosts it (embedded engine or Renode).

A model receives a :class:`Host` at construction and uses nothing else of its environment.
Virtual time is an integer number of nanoseconds since power-on.
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
