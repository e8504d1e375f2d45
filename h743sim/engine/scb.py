"""System control block and the other core registers of the system control space.

Offsets are from the SCS base 0xE000E000 (this model is the SCS decoder's fallback, so SysTick,
NVIC, MPU, CoreDebug and STIR are routed elsewhere). ARMv7-M B3.2 and the Cortex-M7 TRM:
ICTR 0x004, ACTLR 0x008, CPUID 0xD00, ICSR 0xD04, VTOR 0xD08, AIRCR 0xD0C, SCR 0xD10, CCR 0xD14,
SHPR1-3 0xD18-0xD20, SHCSR 0xD24, CFSR 0xD28 (MMFSR/BFSR/UFSR), HFSR 0xD2C, DFSR 0xD30,
MMFAR 0xD34, BFAR 0xD38, AFSR 0xD3C, ID registers 0xD40-0xD70, CLIDR 0xD78, CTR 0xD7C,
CCSIDR 0xD80, CSSELR 0xD84, CPACR 0xD88, FPCCR/FPCAR/FPDSCR 0xF34-0xF3C, MVFR0-2 0xF40-0xF48,
cache maintenance 0xF50-0xF78 (accepted, no effect: the engine keeps memory coherent itself),
and the M7 TCM/cache control registers 0xF90-0xFA8 (stored).

ICSR, SHCSR and AIRCR read live state; before a write their stored value is refreshed from that
state so sub-word writes keep the other byte lanes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from h743sim.engine.cpu import CORTEX_M7_CPUID
from h743sim.engine.nvic import (
    BUSFAULT,
    DEBUGMON,
    FIRST_IRQ,
    MEMMANAGE,
    NMI,
    PENDSV,
    SVCALL,
    SYSTICK,
    USAGEFAULT,
    Nvic,
)
from peripherals.host import INFO, Host
from peripherals.registers import Access, Peripheral, Register

AIRCR_VECTKEY = 0x05FA
AIRCR_VECTKEYSTAT = 0xFA05
CCR_RESET = 0x00040200  # BP (RAO on M7) | STKALIGN
FPCCR_RESET = 0xC0000000  # ASPEN | LSPEN
# Cortex-M7 cache geometry on the H743: 16 KB I-cache (2-way) and 16 KB D-cache (4-way), 32-byte lines
CLIDR_VALUE = 0x09000003
CTR_VALUE = 0x8303C003
CCSIDR_DCACHE = 0xF00FE019
CCSIDR_ICACHE = 0xF01FE009
# Cortex-M7 identification registers [U: Cortex-M7 TRM values from general knowledge]
ID_REGISTERS = {
    0xD40: ("ID_PFR0", 0x00000030),
    0xD44: ("ID_PFR1", 0x00000200),
    0xD48: ("ID_DFR0", 0x00100000),
    0xD4C: ("ID_AFR0", 0x00000000),
    0xD50: ("ID_MMFR0", 0x00100030),
    0xD54: ("ID_MMFR1", 0x00000000),
    0xD58: ("ID_MMFR2", 0x01000000),
    0xD5C: ("ID_MMFR3", 0x00000000),
    0xD60: ("ID_ISAR0", 0x01101110),
    0xD64: ("ID_ISAR1", 0x02112000),
    0xD68: ("ID_ISAR2", 0x20232231),
    0xD6C: ("ID_ISAR3", 0x01111131),
    0xD70: ("ID_ISAR4", 0x01310132),
    0xF40: ("MVFR0", 0x10110221),
    0xF44: ("MVFR1", 0x12000011),
    0xF48: ("MVFR2", 0x00000040),
}
CACHE_OPS = {
    0xF50: "ICIALLU",
    0xF58: "ICIMVAU",
    0xF5C: "DCIMVAC",
    0xF60: "DCISW",
    0xF64: "DCCMVAU",
    0xF68: "DCCMVAC",
    0xF6C: "DCCSW",
    0xF70: "DCCIMVAC",
    0xF74: "DCCISW",
    0xF78: "BPIALL",
}
M7_CONTROL = {
    0xF90: "ITCMCR",
    0xF94: "DTCMCR",
    0xF98: "AHBPCR",
    0xF9C: "CACR",
    0xFA0: "AHBSCR",
    0xFA8: "ABFSR",
}

# CFSR bits (MMFSR 7:0, BFSR 15:8, UFSR 31:16)
IACCVIOL, DACCVIOL, MUNSTKERR, MSTKERR, MLSPERR, MMARVALID = 1 << 0, 1 << 1, 1 << 3, 1 << 4, 1 << 5, 1 << 7
IBUSERR, PRECISERR, IMPRECISERR, UNSTKERR, STKERR, LSPERR, BFARVALID = (
    1 << 8,
    1 << 9,
    1 << 10,
    1 << 11,
    1 << 12,
    1 << 13,
    1 << 15,
)
UNDEFINSTR, INVSTATE, INVPC, NOCP, UNALIGNED, DIVBYZERO = 1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 24, 1 << 25
CFSR_BITS = (
    IACCVIOL | DACCVIOL | MUNSTKERR | MSTKERR | MLSPERR | MMARVALID
    | IBUSERR | PRECISERR | IMPRECISERR | UNSTKERR | STKERR | LSPERR | BFARVALID
    | UNDEFINSTR | INVSTATE | INVPC | NOCP | UNALIGNED | DIVBYZERO
)  # fmt: skip
HFSR_VECTTBL, HFSR_FORCED, HFSR_DEBUGEVT = 1 << 1, 1 << 30, 1 << 31

# SHCSR: (bit, exception) for the active and pended flags
_SHCSR_ACTIVE = (
    (0, MEMMANAGE),
    (1, BUSFAULT),
    (3, USAGEFAULT),
    (7, SVCALL),
    (8, DEBUGMON),
    (10, PENDSV),
    (11, SYSTICK),
)
_SHCSR_PENDED = ((12, USAGEFAULT), (13, MEMMANAGE), (14, BUSFAULT), (15, SVCALL))
_SHCSR_ENABLE = ((16, MEMMANAGE), (17, BUSFAULT), (18, USAGEFAULT))


class CoreView(Protocol):
    """The CPU state the SCB reflects and the actions it triggers."""

    def ipsr(self) -> int: ...

    def masks(self) -> tuple[int, int, int]: ...  # PRIMASK, BASEPRI, FAULTMASK

    def request_system_reset(self, reason: str) -> None: ...


class Scb(Peripheral):
    size = 0x1000

    def __init__(self, host: Host, nvic: Nvic, core: CoreView, *, vtor_reset: int = 0x08000000) -> None:
        super().__init__(host, "SCB")
        self.nvic = nvic
        self.core = core
        self.vtor_reset = vtor_reset
        self._live: dict[int, Callable[[], int]] = {}
        self._define()
        self.reset()

    # -- definition ------------------------------------------------------------------------
    def _define(self) -> None:
        r = self.regs
        lines = (self.nvic.num_irqs + 31) // 32 - 1
        r.define(0x004, "ICTR", reset=lines, access=Access.RO)
        r.define(0x008, "ACTLR", access=Access.RW)
        r.define(0xD00, "CPUID", reset=CORTEX_M7_CPUID, access=Access.RO)
        icsr = r.define(0xD04, "ICSR", on_read=lambda _v: self._icsr_value(), on_write=self._icsr_written)
        for bit, name in (
            (31, "NMIPENDSET"),
            (28, "PENDSVSET"),
            (27, "PENDSVCLR"),
            (26, "PENDSTSET"),
            (25, "PENDSTCLR"),
        ):
            icsr.field(bit, 1, name)
        self._live[0xD04] = self._icsr_value
        self._vtor = r.define(0xD08, "VTOR").field(7, 25, "TBLOFF")
        aircr = r.define(0xD0C, "AIRCR", on_read=lambda _v: self._aircr_value(), on_write=self._aircr_written)
        aircr.default_access = Access.RW
        self._live[0xD0C] = self._aircr_value
        scr = self._scr = r.define(0xD10, "SCR")
        scr.field(1, 1, "SLEEPONEXIT").field(2, 1, "SLEEPDEEP").field(4, 1, "SEVONPEND")
        self._sleeponexit = scr.fields["SLEEPONEXIT"].mask
        ccr = r.define(0xD14, "CCR", reset=CCR_RESET)
        for bit, name in ((0, "NONBASETHRDENA"), (1, "USERSETMPEND"), (3, "UNALIGN_TRP"), (4, "DIV_0_TRP"),
                          (8, "BFHFNMIGN"), (9, "STKALIGN"), (16, "DC"), (17, "IC")):  # fmt: skip
            ccr.field(bit, 1, name)
        ccr.field(18, 1, "BP", access=Access.RO)
        for i, offset in enumerate((0xD18, 0xD1C, 0xD20)):
            self._define_shpr(offset, f"SHPR{i + 1}", 4 + 4 * i)
        shcsr = r.define(0xD24, "SHCSR", on_read=lambda _v: self._shcsr_value(), on_write=self._shcsr_written)
        for bit, _e in _SHCSR_ACTIVE + _SHCSR_PENDED + _SHCSR_ENABLE:
            shcsr.field(bit, 1, f"B{bit}")
        self._live[0xD24] = self._shcsr_value
        r.define(0xD28, "CFSR").field(0, 32, "CFSR", access=Access.W1C)
        r.define(0xD2C, "HFSR").field(1, 1, "VECTTBL", access=Access.W1C).field(
            30, 1, "FORCED", access=Access.W1C
        ).field(31, 1, "DEBUGEVT", access=Access.W1C)
        r.define(0xD30, "DFSR").field(0, 5, "DFSR", access=Access.W1C)
        r.define(0xD34, "MMFAR", access=Access.RW)
        r.define(0xD38, "BFAR", access=Access.RW)
        r.define(0xD3C, "AFSR", access=Access.RW)
        for offset, (name, value) in ID_REGISTERS.items():
            r.define(offset, name, reset=value, access=Access.RO)
        r.define(0xD78, "CLIDR", reset=CLIDR_VALUE, access=Access.RO)
        r.define(0xD7C, "CTR", reset=CTR_VALUE, access=Access.RO)
        r.define(0xD80, "CCSIDR", access=Access.RO, on_read=lambda _v: self._ccsidr())
        r.define(0xD84, "CSSELR").field(0, 1, "InD").field(1, 3, "Level")
        r.define(0xD88, "CPACR").field(20, 2, "CP10").field(22, 2, "CP11")
        fpccr = r.define(0xF34, "FPCCR", reset=FPCCR_RESET)
        for bit, name in ((0, "LSPACT"), (1, "USER"), (3, "THREAD"), (4, "HFRDY"), (5, "MMRDY"), (6, "BFRDY"),
                          (8, "MONRDY"), (30, "LSPEN"), (31, "ASPEN")):  # fmt: skip
            fpccr.field(bit, 1, name)
        r.define(0xF38, "FPCAR").field(3, 29, "ADDRESS")
        r.define(0xF3C, "FPDSCR").field(22, 2, "RMode").field(24, 1, "FZ").field(25, 1, "DN").field(
            26, 1, "AHP"
        )
        for offset, name in CACHE_OPS.items():
            r.define(offset, name, access=Access.WO)
        for offset, name in M7_CONTROL.items():
            r.define(offset, name, access=Access.RW)

    def _define_shpr(self, offset: int, name: str, first_exc: int) -> None:
        reg: Register

        def on_write(_old: int, new: int) -> None:
            for lane in range(4):
                exc = first_exc + lane
                if exc in _CONFIGURABLE:
                    self.nvic.set_priority(exc, (new >> (8 * lane)) & 0xFF)

        reg = self.regs.define(offset, name, on_write=on_write)
        for lane in range(4):
            if first_exc + lane in _CONFIGURABLE:
                reg.field(
                    8 * lane + (8 - _prio_bits(self.nvic)), _prio_bits(self.nvic), f"PRI_{first_exc + lane}"
                )

    # -- bus -------------------------------------------------------------------------------
    def write(self, offset: int, size: int, value: int) -> None:
        live = self._live.get(offset & ~3)
        if live is not None:
            reg = self.regs.at(offset & ~3)
            if reg is not None:
                reg.value = live()
        super().write(offset, size, value)

    def reset(self) -> None:
        super().reset()
        self.regs["VTOR"].value = self.vtor_reset & 0xFFFFFF80

    # -- live registers --------------------------------------------------------------------
    def _icsr_value(self) -> int:
        n = self.nvic
        v = self.core.ipsr() & 0x1FF
        primask, basepri, faultmask = self.core.masks()
        masked = n.execution_priority(0, basepri, faultmask, with_primask=False)
        pending = n.highest_pending()
        if pending is not None and n.group_priority(n.priority(pending)) < masked:
            v |= (pending & 0x1FF) << 12
        if n.any_irq_pending():
            v |= 1 << 22
        if v & 0x1FF and len(n.active) <= 1:
            v |= 1 << 11  # RETTOBASE
        if NMI in n.pending:
            v |= 1 << 31
        if PENDSV in n.pending:
            v |= 1 << 28
        if SYSTICK in n.pending:
            v |= 1 << 26
        return v

    def _icsr_written(self, _old: int, new: int) -> None:
        n = self.nvic
        if new & (1 << 31):
            n.pend(NMI)
        if new & (1 << 28):
            n.pend(PENDSV)
        elif new & (1 << 27):
            n.unpend(PENDSV)
        if new & (1 << 26):
            n.pend(SYSTICK)
        elif new & (1 << 25):
            n.unpend(SYSTICK)

    def _aircr_value(self) -> int:
        return (AIRCR_VECTKEYSTAT << 16) | (self.nvic.prigroup << 8)

    def _aircr_written(self, _old: int, new: int) -> None:
        if new >> 16 != AIRCR_VECTKEY:
            self.host.log(INFO, f"AIRCR write {new:#010x} without VECTKEY 0x05FA ignored")
            return
        if self.nvic.prigroup != (new >> 8) & 7:
            self.nvic.prigroup = (new >> 8) & 7
            self.nvic.on_change()
        if new & (1 << 2):
            self.core.request_system_reset("AIRCR.SYSRESETREQ")
        elif new & 1:
            self.host.log(INFO, "AIRCR.VECTRESET (debug-only) treated as a system reset request")
            self.core.request_system_reset("AIRCR.VECTRESET")

    def _shcsr_value(self) -> int:
        n = self.nvic
        v = 0
        for bit, exc in _SHCSR_ACTIVE:
            if exc in n.active:
                v |= 1 << bit
        for bit, exc in _SHCSR_PENDED:
            if exc in n.pending:
                v |= 1 << bit
        for bit, exc in _SHCSR_ENABLE:
            if n.enabled(exc):
                v |= 1 << bit
        return v

    def _shcsr_written(self, _old: int, new: int) -> None:
        n = self.nvic
        for bit, exc in _SHCSR_ENABLE:
            n.set_enabled(exc, bool(new >> bit & 1))
        for bit, exc in _SHCSR_PENDED:
            if new >> bit & 1:
                n.pend(exc)
            else:
                n.pending.discard(exc)
        for bit, exc in _SHCSR_ACTIVE:
            if new >> bit & 1:
                n.active.add(exc)
            else:
                n.active.discard(exc)

    def _ccsidr(self) -> int:
        return CCSIDR_ICACHE if self.regs["CSSELR"]["InD"] else CCSIDR_DCACHE

    # -- used by the exception unit and the machine ----------------------------------------
    # (registers held directly: these run on every exception entry and return)
    @property
    def vtor(self) -> int:
        return self._vtor.value & 0xFFFFFF80

    @property
    def sleep_on_exit(self) -> bool:
        return bool(self._scr.value & self._sleeponexit)

    @property
    def nonbase_thread_enabled(self) -> bool:
        return bool(self.regs["CCR"]["NONBASETHRDENA"])

    def record_fault(
        self, cfsr: int = 0, hfsr: int = 0, *, bfar: int | None = None, mmfar: int | None = None
    ) -> None:
        if cfsr:
            self.regs["CFSR"].set_bits(cfsr)
        if hfsr:
            self.regs["HFSR"].set_bits(hfsr)
        if bfar is not None:
            self.regs["BFAR"].value = bfar & 0xFFFFFFFF
        if mmfar is not None:
            self.regs["MMFAR"].value = mmfar & 0xFFFFFFFF

    def set_fpcar(self, address: int) -> None:
        self.regs["FPCAR"].value = address & 0xFFFFFFF8


_CONFIGURABLE = (MEMMANAGE, BUSFAULT, USAGEFAULT, SVCALL, DEBUGMON, PENDSV, SYSTICK)


def _prio_bits(nvic: Nvic) -> int:
    return bin(nvic.prio_mask).count("1")


__all__ = ["FIRST_IRQ", "Scb", "CoreView"]
