"""The Cortex-M7 core as unicorn provides it, and named access to its registers.

EMULATION.md §2: ``UC_MODE_MCLASS`` silently gives a Cortex-M33 (no double-precision VFP); the
working recipe is ``Uc(UC_ARCH_ARM, UC_MODE_THUMB)`` then ``ctl_set_cpu_model(CORTEX_M7)``.
The engine also switches unicorn to its virtual TLB (see :mod:`h743sim.engine.memory`): with the
default TLB every store to RAM takes unicorn 2.1.4's slow path (measured 30-60 MIPS for
store-heavy code against 160-175 MIPS with the virtual TLB).
"""

from __future__ import annotations

from typing import Any

from unicorn import UC_ARCH_ARM, UC_MODE_THUMB, Uc
from unicorn import arm_const as arm
from unicorn import unicorn_const as ucc

from h743sim.engine.native import RegisterBatch

CORTEX_M7_CPUID = 0x411FC271  # r1p1, as on the STM32H743 (FACTS.md A.4: __CM7_REV 0x0101)
PAGE_SIZE = 0x400  # unicorn's ARM target page (mmio_map/mem_map granularity)

_REGS: dict[str, int] = {f"r{i}": getattr(arm, f"UC_ARM_REG_R{i}") for i in range(13)}
_REGS.update(
    {
        "sp": arm.UC_ARM_REG_SP,
        "r13": arm.UC_ARM_REG_SP,
        "lr": arm.UC_ARM_REG_LR,
        "r14": arm.UC_ARM_REG_LR,
        "pc": arm.UC_ARM_REG_PC,
        "r15": arm.UC_ARM_REG_PC,
        "xpsr": arm.UC_ARM_REG_XPSR,
        "apsr": arm.UC_ARM_REG_APSR,
        "ipsr": arm.UC_ARM_REG_IPSR,
        "msp": arm.UC_ARM_REG_MSP,
        "psp": arm.UC_ARM_REG_PSP,
        "primask": arm.UC_ARM_REG_PRIMASK,
        "basepri": arm.UC_ARM_REG_BASEPRI,
        "faultmask": arm.UC_ARM_REG_FAULTMASK,
        "control": arm.UC_ARM_REG_CONTROL,
        "fpscr": arm.UC_ARM_REG_FPSCR,
    }
)
_REGS.update({f"s{i}": arm.UC_ARM_REG_S0 + i for i in range(32)})
_DOUBLE_REGS: dict[str, int] = {f"d{i}": arm.UC_ARM_REG_D0 + i for i in range(32)}

REGISTER_NAMES: tuple[str, ...] = tuple(_REGS) + tuple(_DOUBLE_REGS)

# The integer state compared by the polling detector (PC included).
SNAPSHOT_REGS: tuple[int, ...] = tuple(_REGS[f"r{i}"] for i in range(13)) + (
    arm.UC_ARM_REG_SP,
    arm.UC_ARM_REG_LR,
    arm.UC_ARM_REG_PC,
    arm.UC_ARM_REG_XPSR,
)


def create_cortex_m7() -> Any:
    """A unicorn engine configured as the H743's Cortex-M7 (Thumb-2, FPv5 double precision)."""
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
    uc.ctl_set_cpu_model(arm.UC_CPU_ARM_CORTEX_M7)
    model = uc.ctl_get_cpu_model()
    if model != arm.UC_CPU_ARM_CORTEX_M7:
        raise RuntimeError(f"unicorn refused the Cortex-M7 model (got CPU model {model})")
    uc.ctl_set_tlb_mode(ucc.UC_TLB_VIRTUAL)
    return uc


class CoreRegisters:
    """Registers by name (``r0``..``r12``, ``sp``, ``lr``, ``pc``, ``xpsr``, ``msp``, ``s0``, ``d0``...)."""

    def __init__(self, uc: Any) -> None:
        self._uc = uc
        self._snapshot = RegisterBatch(uc, SNAPSHOT_REGS)

    @staticmethod
    def reg_id(name: str) -> int:
        key = name.lower()
        if key in _REGS:
            return _REGS[key]
        if key in _DOUBLE_REGS:
            return _DOUBLE_REGS[key]
        raise KeyError(f"unknown Cortex-M7 register {name!r}; known: {', '.join(REGISTER_NAMES)}")

    def read(self, name: str) -> int:
        return int(self._uc.reg_read(self.reg_id(name)))

    def write(self, name: str, value: int) -> None:
        key = name.lower()
        rid = self.reg_id(key)
        if key in _DOUBLE_REGS:
            self._uc.reg_write(rid, value & 0xFFFFFFFFFFFFFFFF)
        else:
            self._uc.reg_write(rid, value & 0xFFFFFFFF)

    def snapshot(self) -> tuple[int, ...]:
        """r0-r12, sp, lr, pc, xpsr in one call (cheap enough for the polling detector)."""
        return tuple(self._snapshot.read())
