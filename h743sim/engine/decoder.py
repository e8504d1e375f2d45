"""Routes accesses inside one MMIO region to the sub-blocks that live there.

The Cortex-M private peripheral bus packs many small register blocks (SysTick, NVIC, SCB, MPU,
DWT, ...) into pages that unicorn can only map whole; a decoder gives each block its own model.
Offsets nobody claims go to a fallback model, or read as zero and are logged once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from h743sim.engine.memory import BusModel


@dataclass(frozen=True)
class _Slot:
    start: int
    end: int
    model: BusModel
    name: str


class AddressDecoder:
    """A :class:`BusModel` that forwards each access to the block covering its offset."""

    def __init__(self, name: str, fallback: BusModel | None = None, logger: logging.Logger | None = None):
        self.name = name
        self._slots: list[_Slot] = []
        self._fallback = fallback
        self._log = logger or logging.getLogger(f"h743sim.engine.{name}")
        self._logged: set[tuple[str, int]] = set()

    def add(self, start: int, size: int, model: BusModel, name: str) -> None:
        """Route offsets [start, start+size) to ``model`` (which sees offsets from ``start``)."""
        end = start + size
        for s in self._slots:
            if start < s.end and s.start < end:
                raise ValueError(f"{self.name}: {name} [{start:#x}, {end:#x}) overlaps {s.name}")
        self._slots.append(_Slot(start, end, model, name))
        self._slots.sort(key=lambda s: s.start)

    def _find(self, offset: int) -> _Slot | None:
        for s in self._slots:
            if s.start <= offset < s.end:
                return s
        return None

    def read(self, offset: int, size: int) -> int:
        s = self._find(offset)
        if s is not None:
            return s.model.read(offset - s.start, size)
        if self._fallback is not None:
            return self._fallback.read(offset, size)
        self._log_once("r", offset, f"{self.name}: read of unmodelled offset {offset:#x} -> 0")
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        s = self._find(offset)
        if s is not None:
            s.model.write(offset - s.start, size, value)
        elif self._fallback is not None:
            self._fallback.write(offset, size, value)
        else:
            self._log_once(
                "w", offset, f"{self.name}: write {value:#x} to unmodelled offset {offset:#x} ignored"
            )

    def reset(self) -> None:
        for s in self._slots:
            s.model.reset()
        if self._fallback is not None:
            self._fallback.reset()

    def _log_once(self, kind: str, offset: int, message: str) -> None:
        if (kind, offset) not in self._logged:
            self._logged.add((kind, offset))
            self._log.warning(message)
