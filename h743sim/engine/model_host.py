"""The :class:`peripherals.host.Host` the embedded engine gives each model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from peripherals.host import BusAccessFromBlocks, ReadWatchHandler, Timer, WindowWriteHandler

if TYPE_CHECKING:
    from h743sim.engine.machine import Machine


class ModelHost(BusAccessFromBlocks):
    """Host context of one model; IRQ numbers are shifted by ``irq_offset`` before the NVIC."""

    def __init__(self, machine: Machine, name: str, irq_offset: int = 0) -> None:
        self._machine = machine
        self.name = name
        self.irq_offset = irq_offset
        self.logger = logging.getLogger(f"h743sim.model.{name}")
        # bound directly: models read the time on many register accesses
        self.now_ns: Callable[[], int] = machine.now_ns

    def schedule(self, delay_ns: int, callback: Callable[[], None], name: str = "") -> Timer:
        return self._machine.schedule(delay_ns, callback, name or self.name)

    def set_irq(self, irq: int, level: bool) -> None:
        self._machine.set_irq(irq + self.irq_offset, level)

    def map_memory(
        self,
        name: str,
        base: int,
        buffer: bytearray,
        *,
        executable: bool = True,
        on_write: WindowWriteHandler | None = None,
    ) -> None:
        self._machine.memory.map_window(name, base, buffer, executable=executable, on_write=on_write)

    def unmap_memory(self, name: str) -> None:
        self._machine.memory.unmap_window(name)

    def invalidate(self, base: int, size: int) -> None:
        self._machine.memory.invalidate(base, size)

    def watch_reads(self, base: int, size: int, handler: ReadWatchHandler) -> Callable[[], None]:
        return self._machine.memory.watch_reads(base, size, handler)

    def bus_error(self, address: int, reason: str) -> None:
        errors = self._machine.memory.master_errors
        if errors is not None:  # serving a bus master (DMA): its access fails, not the CPU's
            errors.append(f"{self.name}: {reason}")
            return
        self._machine.bus_error(address, f"{self.name}: {reason}")

    def power_off(self, reason: str) -> None:
        self._machine.power_off(f"{self.name}: {reason}")

    def log(self, level: int, message: str) -> None:
        self.logger.log(level, message)

    # -- bus master accesses: MemoryMap.master_read/master_write ----------------------------
    def bus_read_block(self, address: int, length: int, unit: int = 4) -> bytes:
        return self._machine.memory.master_read(address, length, min(unit, 4))

    def bus_write_block(self, address: int, data: bytes, unit: int = 4) -> int:
        return self._machine.memory.master_write(address, data, min(unit, 4))

    def bus_write_fifo(self, address: int, data: bytes, unit: int = 4) -> int:
        return self._machine.memory.master_write_fifo(address, data, min(unit, 4))

    def bus_read_fifo(self, address: int, length: int, unit: int = 4) -> bytes:
        return self._machine.memory.master_read_fifo(address, length, min(unit, 4))
