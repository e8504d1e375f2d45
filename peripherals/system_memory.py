"""STM32H743 system memory (0x1FF00000-0x1FF1FFFF): the read-only words firmware reads from it.

Modelled: the 96-bit unique device ID at 0x1FF1E800 (USB serial numbers are built from it) and the
flash size word at 0x1FF1E880 (0x0800 = 2048 KiB). The ST ROM bootloader and the rest of the area
are not modelled: they read 0 (the first such read is logged) and writes are ignored.
"""

from __future__ import annotations

from peripherals.host import WARNING, Host
from peripherals.registers import Access, Peripheral

SYSTEM_MEMORY_BASE = 0x1FF0_0000
UID_ADDRESS = 0x1FF1_E800
FLASH_SIZE_ADDRESS = 0x1FF1_E880
# An arbitrary but plausible ID (X/Y wafer coordinates, wafer number, lot number in ASCII).
DEFAULT_UID = bytes.fromhex("2d002400") + bytes([0x12]) + b"Q704851"


class SystemMemory(Peripheral):
    """``uid``: 12 bytes (or an int < 2**96, little-endian); ``flash_size_kb``: the flash size word."""

    def __init__(
        self,
        host: Host,
        *,
        base: int = SYSTEM_MEMORY_BASE,
        size: int = 0x20000,
        uid: bytes | int | None = None,
        flash_size_kb: int = 2048,
        name: str = "SystemMemory",
    ) -> None:
        super().__init__(host, name)
        self.size = size
        if isinstance(uid, int):
            if not 0 <= uid < 1 << 96:
                raise ValueError(f"{name}: uid {uid:#x} does not fit 96 bits")
            uid = uid.to_bytes(12, "little")
        uid = DEFAULT_UID if uid is None else bytes(uid)
        if len(uid) != 12:
            raise ValueError(f"{name}: uid must be 12 bytes, got {len(uid)}")
        if not 0 <= flash_size_kb <= 0xFFFF:
            raise ValueError(f"{name}: flash_size_kb {flash_size_kb} does not fit the 16-bit word")
        uid_off, fs_off = UID_ADDRESS - base, FLASH_SIZE_ADDRESS - base
        if not (0 <= uid_off and fs_off + 2 <= size):
            raise ValueError(f"{name}: the range {base:#x}+{size:#x} does not hold the UID and flash size")
        self.uid = uid
        self.flash_size_kb = flash_size_kb
        for i in range(3):
            word = int.from_bytes(uid[4 * i : 4 * i + 4], "little")
            self.regs.define(uid_off + 4 * i, f"UID{i}", reset=word, access=Access.RO)
        self.regs.define(fs_off, "FLASH_SIZE", reset=flash_size_kb, width=16, access=Access.RO)
        self._logged = False

    def read(self, offset: int, size: int) -> int:
        if self.regs.at(offset - offset % 4) is None and self.regs.at(offset - offset % 2) is None:
            if not self._logged:
                self._logged = True
                self.host.log(WARNING, f"{self.name}: read at {offset:#x} outside the modelled words -> 0")
            return 0
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self.host.log(WARNING, f"{self.name}: write {value:#x} at {offset:#x} to read-only memory ignored")
