"""STM32H743 extended interrupt and event controller (EXTI) at 0x58000000 (RM0433 chapter 20).

Minimal but faithful where it acts: every register is stored with its SVD reset value; a
configurable line (0..21) gets its CPU pending bit from the selected edge of :meth:`signal` or from a
software trigger (SWIER1 write), CPUPR1 is write-1-to-clear, and lines 0..15 drive the NVIC lines
EXTI0..EXTI4, EXTI9_5 and EXTI15_10 while pending and unmasked. Lines 22..88 (direct and other
configurable events) are stored only.
"""

from __future__ import annotations

from peripherals.host import Host
from peripherals.registers import Access, Peripheral

CONFIGURABLE_LINES = 22
# NVIC line of EXTI lines 0..15
LINE_IRQS = (6, 7, 8, 9, 10) + (23,) * 5 + (40,) * 6


class Exti(Peripheral):
    size = 0x400

    def __init__(self, host: Host, *, name: str = "EXTI") -> None:
        super().__init__(host, name)
        self._levels = [0] * CONFIGURABLE_LINES
        r = self.regs
        for n, base in ((1, 0x00), (2, 0x20), (3, 0x40)):
            r.define(base + 0x00, f"RTSR{n}", access=Access.RW)
            r.define(base + 0x04, f"FTSR{n}", access=Access.RW)
            if n == 1:
                r.define(base + 0x08, "SWIER1", on_write=self._swier1_written).field(
                    0, CONFIGURABLE_LINES, "SWIER", access=Access.WO
                )
            else:
                r.define(base + 0x08, f"SWIER{n}", access=Access.RW)
            r.define(base + 0x0C, f"D3PMR{n}", access=Access.RW)
            if n != 3:  # D3PCR3L does not exist
                r.define(base + 0x10, f"D3PCR{n}L", access=Access.RW)
            r.define(base + 0x14, f"D3PCR{n}H", access=Access.RW)
        for n, base, imr_reset in ((1, 0x80, 0xFFC0_0000), (2, 0x90, 0), (3, 0xA0, 0)):
            r.define(base + 0x0, f"CPUIMR{n}", reset=imr_reset, access=Access.RW)
            r.define(base + 0x4, f"CPUEMR{n}", access=Access.RW)
            r.define(base + 0x8, f"CPUPR{n}", access=Access.W1C)
        r["CPUIMR1"].on_write = lambda o, n: self._update_irqs()
        r["CPUPR1"].on_write = lambda o, n: self._update_irqs()

    def signal(self, line: int, level: int) -> None:
        """The input of configurable line ``line`` (e.g. a GPIO routed by SYSCFG) is now ``level``."""
        if not 0 <= line < CONFIGURABLE_LINES:
            raise ValueError(f"EXTI: line {line} is not a configurable line (0..21)")
        old, self._levels[line] = self._levels[line], 1 if level else 0
        if old == self._levels[line]:
            return
        edge_reg = "RTSR1" if self._levels[line] else "FTSR1"
        if self.regs[edge_reg].value >> line & 1:
            self._trigger(1 << line)

    def _swier1_written(self, _old: int, new: int) -> None:
        self.regs["SWIER1"].value = 0
        self._trigger(new)

    def _trigger(self, lines: int) -> None:
        self.regs["CPUPR1"].set_bits(lines & ((1 << CONFIGURABLE_LINES) - 1))
        self._update_irqs()

    def _update_irqs(self) -> None:
        active = self.regs["CPUPR1"].value & self.regs["CPUIMR1"].value
        levels: dict[int, bool] = {}
        for line, irq in enumerate(LINE_IRQS):
            levels[irq] = levels.get(irq, False) or bool(active >> line & 1)
        for irq, level in levels.items():
            self.host.set_irq(irq, level)

    def reset(self) -> None:
        self.regs.reset()
        self._levels = [0] * CONFIGURABLE_LINES
        self._update_irqs()
