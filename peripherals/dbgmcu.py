"""STM32H743 debug MCU block (DBGMCU) at 0x5C001000 (RM0433 chapter 60; FACTS §I).

IDC (IDCODE) holds REV_ID in bits 31:16 and DEV_ID 0x450 in bits 11:0; the HAL reads the revision to
pick register layouts (HSITRIM) and errata paths. Default revision V (0x2003). CR and the APBx
freeze registers are stored (the freeze bits have no effect here: nothing stops under a debugger).
"""

from __future__ import annotations

from peripherals.host import Host
from peripherals.registers import Access, Peripheral

DEV_ID_H743 = 0x450
REV_ID_Y = 0x1003
REV_ID_V = 0x2003
# IDC bits 15:12 read 0x6 on H743 silicon (and in the ST SVD reset value 0x10006450)
_IDC_FIXED = 0x6000

# register -> (offset, "peripheral:bit ..."); field names get the DBG_ prefix of the CMSIS header
_FREEZE_BITS = {
    "APB3FZ1": (0x34, "WWDG1:6"),
    "APB1LFZ1": (
        0x3C,
        "TIM2:0 TIM3:1 TIM4:2 TIM5:3 TIM6:4 TIM7:5 TIM12:6 TIM13:7 TIM14:8 LPTIM1:9 I2C1:21 I2C2:22 I2C3:23",
    ),
    "APB1HFZ1": (0x44, "FDCAN:8"),
    "APB2FZ1": (0x4C, "TIM1:0 TIM8:1 TIM15:16 TIM16:17 TIM17:18 HRTIM:29"),
    "APB4FZ1": (0x54, "I2C4:7 LPTIM2:9 LPTIM3:10 LPTIM4:11 LPTIM5:12 RTC:16 WDGLSD1:18"),
}


class Dbgmcu(Peripheral):
    size = 0x400

    def __init__(
        self, host: Host, *, rev_id: int = REV_ID_V, dev_id: int = DEV_ID_H743, name: str = "DBGMCU"
    ) -> None:
        super().__init__(host, name)
        if not 0 <= rev_id <= 0xFFFF or not 0 <= dev_id <= 0xFFF:
            raise ValueError(f"DBGMCU: rev_id {rev_id:#x} / dev_id {dev_id:#x} do not fit IDC")
        self.idcode = (rev_id << 16) | _IDC_FIXED | dev_id
        r = self.regs
        idc = r.define(0x00, "IDC", reset=self.idcode)
        idc.field(0, 12, "DEV_ID", access=Access.RO).field(16, 16, "REV_ID", access=Access.RO)
        cr = r.define(0x04, "CR")
        for bit, field in (
            (0, "DBGSLEEP_D1"), (1, "DBGSTOP_D1"), (2, "DBGSTBY_D1"), (7, "DBGSTOP_D3"), (8, "DBGSTBY_D3"),
            (20, "TRACECLKEN"), (21, "D1DBGCKEN"), (22, "D3DBGCKEN"), (28, "TRGOEN"),
        ):  # fmt: skip
            cr.field(bit, 1, field)
        for reg_name, (offset, bits) in _FREEZE_BITS.items():
            reg = r.define(offset, reg_name)
            for item in bits.split():
                periph, bit = item.split(":")
                reg.field(int(bit), 1, f"DBG_{periph}")
