"""A "tagged" address range: any access is logged once per offset and reads its reset value.

The board maps this over peripherals it does not model (other D1/D2/D3 blocks), so firmware that
touches them keeps running: writes are ignored, reads return the configured reset value of the
addressed 32-bit word (``reset_values`` by word offset, else ``reset_value``).
"""

from __future__ import annotations

from peripherals.host import WARNING, Host
from peripherals.registers import Peripheral


class Unmodelled(Peripheral):
    def __init__(
        self,
        host: Host,
        *,
        size: int = 0x400,
        reset_value: int = 0,
        reset_values: dict[int, int] | None = None,
        name: str = "unmodelled",
    ) -> None:
        super().__init__(host, name)
        if size <= 0:
            raise ValueError(f"{name}: size must be positive, not {size}")
        self.size = size
        self.reset_value = reset_value & 0xFFFF_FFFF
        self.reset_values = {off: v & 0xFFFF_FFFF for off, v in (reset_values or {}).items()}
        for off in self.reset_values:
            if off % 4 or not 0 <= off < size:
                raise ValueError(f"{name}: reset value offset {off:#x} is not a word inside the range")
        self.logged: set[int] = set()

    def _check(self, offset: int, size: int) -> None:
        if size not in (1, 2, 4) or not 0 <= offset <= self.size - size:
            raise ValueError(f"{self.name}: access of {size} bytes at offset {offset:#x} outside the range")

    def _note(self, offset: int, what: str) -> None:
        if offset not in self.logged:
            self.logged.add(offset)
            self.host.log(WARNING, f"{self.name}+{offset:#05x}: {what} (unmodelled)")

    def read(self, offset: int, size: int) -> int:
        self._check(offset, size)
        word = self.reset_values.get(offset & ~3, self.reset_value)
        value = (word >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)
        self._note(offset, f"read -> {value:#x}")
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        self._check(offset, size)
        self._note(offset, f"write {value:#x} ignored")

    def reset(self) -> None:
        """Nothing is stored; the log-once memory survives resets (each offset is logged once)."""
