"""PMSAv7 memory protection unit registers (0xE000ED90, ARMv7-M B3.5), stored not enforced.

TYPE reports 16 data regions (the H743's M7). RBAR/RASR are banked by RNR; a write to RBAR with
VALID=1 first selects the region given in its REGION field. The A1-A3 aliases reach the same
registers. Accesses are not checked against the regions: unicorn's own MPU is not driven.
"""

from __future__ import annotations

from peripherals.host import Host
from peripherals.registers import Access, Peripheral

REGIONS = 16


class Mpu(Peripheral):
    size = 0x2C

    def __init__(self, host: Host) -> None:
        super().__init__(host, "MPU")
        self.rbar = [0] * REGIONS
        self.rasr = [0] * REGIONS
        self.regs.define(0x00, "TYPE", reset=REGIONS << 8, access=Access.RO)
        self.regs.define(0x04, "CTRL").field(0, 1, "ENABLE").field(1, 1, "HFNMIENA").field(2, 1, "PRIVDEFENA")
        self.regs.define(0x08, "RNR").field(0, 8, "REGION")
        for suffix, rbar_off, rasr_off in (
            ("", 0x0C, 0x10),
            ("_A1", 0x14, 0x18),
            ("_A2", 0x1C, 0x20),
            ("_A3", 0x24, 0x28),
        ):
            self.regs.define(
                rbar_off,
                "RBAR" + suffix,
                access=Access.RW,
                on_read=self._read_rbar,
                on_write=self._write_rbar,
            )
            self.regs.define(
                rasr_off,
                "RASR" + suffix,
                access=Access.RW,
                on_read=self._read_rasr,
                on_write=self._write_rasr,
            )

    def write(self, offset: int, size: int, value: int) -> None:
        # banked registers: sub-word writes must merge with the selected region's value
        reg = self.regs.at(offset & ~3)
        if reg is not None and reg.name.startswith("RBAR"):
            reg.value = self._read_rbar(0)
        elif reg is not None and reg.name.startswith("RASR"):
            reg.value = self._read_rasr(0)
        super().write(offset, size, value)

    def reset(self) -> None:
        super().reset()
        self.rbar = [0] * REGIONS
        self.rasr = [0] * REGIONS

    def _region(self) -> int:
        return self.regs["RNR"]["REGION"] % REGIONS

    def _read_rbar(self, _stored: int) -> int:
        n = self._region()
        return (self.rbar[n] & 0xFFFFFFE0) | n

    def _write_rbar(self, _old: int, new: int) -> None:
        if new & 0x10:  # VALID: the REGION field selects the region
            self.regs["RNR"]["REGION"] = new & 0xF
        self.rbar[self._region()] = new & 0xFFFFFFE0

    def _read_rasr(self, _stored: int) -> int:
        return self.rasr[self._region()]

    def _write_rasr(self, _old: int, new: int) -> None:
        self.rasr[self._region()] = new & 0xFFFFFFFF

    @property
    def enabled(self) -> bool:
        return bool(self.regs["CTRL"]["ENABLE"])
