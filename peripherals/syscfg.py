"""STM32H743 system configuration controller (SYSCFG) at 0x58000400 (RM0433 chapter 12).

PMCR, EXTICR1-4 (GPIO port of each EXTI line), CFGR (write-once lock bits), the I/O compensation
cell (CCCSR/CCVR/CCCR: READY follows EN after a short settling time), PWRCR.ODEN (VOS0 overdrive,
used by the HAL), PKGR and UR0..UR17 (read-only copies of the package and user option bytes).
Reset values follow the ST SVD (all 0).
"""

from __future__ import annotations

from peripherals.host import NS_PER_US, Host, Timer
from peripherals.registers import Access, Peripheral

_COMPENSATION_READY_NS = 10 * NS_PER_US
# CCVR once the cell is ready: mid-scale NMOS/PMOS codes (the real value depends on the die)
_COMPENSATION_CODES = 0x88
_UR_OFFSET = 0x300
_UR_COUNT = 18
# Factory option bytes as the UR registers show them [U]: RDP level 0 (0xAA) in UR0[23:16],
# BOOT_ADD0 0x0800 in UR2[31:16], BOOT_ADD1 0x1FF0 in UR3[31:16].
DEFAULT_USER_OPTIONS = {0: 0x00AA_0000, 2: 0x0800_0000, 3: 0x1FF0_0000}
_PMCR_BITS = (
    (0, 1, "I2C1FMP"), (1, 1, "I2C2FMP"), (2, 1, "I2C3FMP"), (3, 1, "I2C4FMP"), (4, 1, "PB6FMP"),
    (5, 1, "PB7FMP"), (6, 1, "PB8FMP"), (7, 1, "PB9FMP"), (8, 1, "BOOSTE"), (9, 1, "BOOSTVDDSEL"),
    (21, 3, "EPIS"), (24, 1, "PA0SO"), (25, 1, "PA1SO"), (26, 1, "PC2SO"), (27, 1, "PC3SO"),
)  # fmt: skip
_CFGR_LOCKS = (
    (2, "PVDL"), (3, "FLASHL"), (6, "CM7L"), (7, "BKRAML"), (9, "SRAM4L"), (10, "SRAM2L"),
    (11, "SRAM1L"), (12, "DTCML"), (13, "ITCML"), (14, "AXISRAML"),
)  # fmt: skip


class Syscfg(Peripheral):
    """SYSCFG; ``package`` is PKGR.PKG, ``user_options`` maps n -> URn value."""

    size = 0x400

    def __init__(
        self,
        host: Host,
        *,
        package: int = 0,
        user_options: dict[int, int] | None = None,
        instant: bool = False,
        name: str = "SYSCFG",
    ) -> None:
        super().__init__(host, name)
        options = dict(DEFAULT_USER_OPTIONS if user_options is None else user_options)
        bad = [n for n in options if not 0 <= n < _UR_COUNT]
        if bad:
            raise ValueError(f"SYSCFG: no user option register UR{bad[0]} (UR0..UR17)")
        if not 0 <= package <= 0xF:
            raise ValueError(f"SYSCFG: package code {package} does not fit PKGR.PKG[3:0]")
        self.instant = instant
        self._timer: Timer | None = None
        r = self.regs
        pmcr = r.define(0x04, "PMCR")
        for lsb, width, field in _PMCR_BITS:
            pmcr.field(lsb, width, field)
        for i in range(4):
            reg = r.define(0x08 + 4 * i, f"EXTICR{i + 1}")
            for j in range(4):
                reg.field(4 * j, 4, f"EXTI{4 * i + j}")
        cfgr = r.define(0x18, "CFGR")
        for bit, field in _CFGR_LOCKS:
            cfgr.field(bit, 1, field, access=Access.W1S)  # cleared only by a system reset
        cccsr = r.define(0x20, "CCCSR", on_write=self._cccsr_written)
        cccsr.field(0, 1, "EN").field(1, 1, "CS").field(8, 1, "READY", access=Access.RO).field(16, 1, "HSLV")
        r.define(0x24, "CCVR").field(0, 4, "NCV", access=Access.RO).field(4, 4, "PCV", access=Access.RO)
        r.define(0x28, "CCCR").field(0, 4, "NCC").field(4, 4, "PCC")
        r.define(0x2C, "PWRCR").field(0, 1, "ODEN")
        r.define(0x124, "PKGR", reset=package).field(0, 4, "PKG", access=Access.RO)
        for n in range(_UR_COUNT):
            r.define(_UR_OFFSET + 4 * n, f"UR{n}", reset=options.get(n, 0) & 0xFFFF_FFFF, access=Access.RO)

    def exti_port(self, line: int) -> int:
        """GPIO port index (0 = A) routed to EXTI line 0..15 by EXTICRn."""
        if not 0 <= line < 16:
            raise ValueError(f"SYSCFG: EXTI line {line} has no EXTICR selection (0..15)")
        return self.regs[f"EXTICR{line // 4 + 1}"][f"EXTI{line}"]

    def _cccsr_written(self, _old: int, _new: int) -> None:
        cccsr = self.regs["CCCSR"]
        if cccsr["EN"] and not cccsr["READY"] and self._timer is None:
            if self.instant:
                self._compensation_ready()
            else:
                self._timer = self.host.schedule(
                    _COMPENSATION_READY_NS, self._compensation_ready, "SYSCFG CC"
                )
        elif not cccsr["EN"]:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            cccsr["READY"] = 0

    def _compensation_ready(self) -> None:
        self._timer = None
        if self.regs["CCCSR"]["EN"]:
            self.regs["CCCSR"]["READY"] = 1
            self.regs["CCVR"].value = _COMPENSATION_CODES

    def reset(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.regs.reset()
