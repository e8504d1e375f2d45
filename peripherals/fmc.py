"""STM32H743 flexible memory controller registers (FMC) at 0x52004000 (RM0433 chapter 22).

Only the register file: no external memory is attached on the DevEBox board. ST's SystemInit
writes BCR1 (0x000030D2, bank 1 mapping off) while the FMC clock is still gated; the write must be
accepted, so every register here accepts writes regardless of RCC. Reset values per the ST SVD.
"""

from __future__ import annotations

from peripherals.host import Host
from peripherals.registers import Access, Peripheral

_NOR_SRAM_BCR_BITS = (
    (0, 1, "MBKEN"), (1, 1, "MUXEN"), (2, 2, "MTYP"), (4, 2, "MWID"), (6, 1, "FACCEN"),
    (8, 1, "BURSTEN"), (9, 1, "WAITPOL"), (11, 1, "WAITCFG"), (12, 1, "WREN"), (13, 1, "WAITEN"),
    (14, 1, "EXTMOD"), (15, 1, "ASYNCWAIT"), (16, 3, "CPSIZE"), (19, 1, "CBURSTRW"),
)  # fmt: skip
_TIMING_RESET = 0x0FFF_FFFF


class Fmc(Peripheral):
    size = 0x1000

    def __init__(self, host: Host, *, name: str = "FMC") -> None:
        super().__init__(host, name)
        r = self.regs
        for bank in range(1, 5):
            bcr = r.define(8 * (bank - 1), f"BCR{bank}", reset=0x0000_30DB if bank == 1 else 0x0000_30D2)
            for lsb, width, field in _NOR_SRAM_BCR_BITS:
                bcr.field(lsb, width, field)
            if bank == 1:  # global controls live in BCR1 only
                bcr.field(20, 1, "CCLKEN").field(21, 1, "WFDIS").field(24, 2, "BMAP").field(31, 1, "FMCEN")
            r.define(8 * (bank - 1) + 4, f"BTR{bank}", reset=_TIMING_RESET, access=Access.RW)
            r.define(0x104 + 8 * (bank - 1), f"BWTR{bank}", reset=_TIMING_RESET, access=Access.RW)
        r.define(0x80, "PCR", reset=0x0000_0018, access=Access.RW)
        sr = r.define(0x84, "SR", reset=0x0000_0040)
        sr.field(0, 1, "IRS").field(1, 1, "ILS").field(2, 1, "IFS").field(3, 1, "IREN").field(4, 1, "ILEN")
        sr.field(5, 1, "IFEN").field(6, 1, "FEMPT", access=Access.RO)
        r.define(0x88, "PMEM", reset=0xFCFC_FCFC, access=Access.RW)
        r.define(0x8C, "PATT", reset=0xFCFC_FCFC, access=Access.RW)
        r.define(0x94, "ECCR", access=Access.RO)
        for n in (1, 2):
            r.define(0x140 + 4 * (n - 1), f"SDCR{n}", reset=0x0000_02D0, access=Access.RW)
            r.define(0x148 + 4 * (n - 1), f"SDTR{n}", reset=_TIMING_RESET, access=Access.RW)
        r.define(0x150, "SDCMR", access=Access.RW)
        r.define(0x154, "SDRTR", access=Access.RW)
        r.define(0x158, "SDSR", access=Access.RO)
