"""ARMv7-M exception entry, return, tail-chaining and fault escalation, done in Python.

Unicorn does not implement Cortex-M exception entry (EMULATION.md §2). Entry (at slice boundaries,
or inside unicorn's interrupt hook for SVC and synchronous faults): pick the stack (PSP only from
thread mode with CONTROL.SPSEL), push the 8-word basic frame or, when CONTROL.FPCA is set, the
26-word extended frame (s0-s15, FPSCR, reserved) with 8-byte alignment recorded in xPSR bit 9,
set IPSR, LR = EXC_RETURN, clear CONTROL.SPSEL/FPCA and jump to the vector at VTOR + 4n.
Return: a ``bx lr``/``pop {pc}`` with an EXC_RETURN value raises unicorn interrupt 8; the frame
is unstacked here, or the next pending exception is tail-chained without unstacking.

Trap (measured): QEMU caches translation flags; after every IPSR change the APSR_NZCV register is
written back to itself, which rebuilds them, or ``bx lr`` is not seen as an exception return.
Unicorn's IPSR write swaps the banked stack pointers, but it ignores CONTROL.SPSEL writes in
handler mode and privileged writes (MSP, PSP, CONTROL) in unprivileged thread mode; the mode
changes below therefore pass through privileged thread mode in a fixed order.
"""

from __future__ import annotations

import contextlib
import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from unicorn import arm_const as arm

from h743sim.engine.memory import MemoryMap
from h743sim.engine.native import RegisterBatch
from h743sim.engine.nvic import BUSFAULT, HARDFAULT, MEMMANAGE, NMI, SVCALL, USAGEFAULT, Nvic
from h743sim.engine.scb import (
    BFARVALID,
    DIVBYZERO,
    HFSR_DEBUGEVT,
    HFSR_FORCED,
    HFSR_VECTTBL,
    IACCVIOL,
    IBUSERR,
    IMPRECISERR,
    INVPC,
    INVSTATE,
    NOCP,
    PRECISERR,
    STKERR,
    UNALIGNED,
    UNDEFINSTR,
    UNSTKERR,
    Scb,
)

CONTROL_NPRIV, CONTROL_SPSEL, CONTROL_FPCA = 1, 2, 4
XPSR_ALIGN = 1 << 9
XPSR_T = 1 << 24
BASIC_FRAME = 0x20
EXTENDED_FRAME = 0x68
EXC_RETURN_BASE = 0xFFFFFFE1

_ENTRY_REGS = (
    arm.UC_ARM_REG_R0,
    arm.UC_ARM_REG_R1,
    arm.UC_ARM_REG_R2,
    arm.UC_ARM_REG_R3,
    arm.UC_ARM_REG_R12,
    arm.UC_ARM_REG_LR,
    arm.UC_ARM_REG_XPSR,
    arm.UC_ARM_REG_CONTROL,
    arm.UC_ARM_REG_IPSR,
    arm.UC_ARM_REG_MSP,
    arm.UC_ARM_REG_PSP,
)
_FP_REGS = tuple(arm.UC_ARM_REG_S0 + i for i in range(16)) + (arm.UC_ARM_REG_FPSCR,)
_FRAME_INT_REGS = (
    arm.UC_ARM_REG_R0,
    arm.UC_ARM_REG_R1,
    arm.UC_ARM_REG_R2,
    arm.UC_ARM_REG_R3,
    arm.UC_ARM_REG_R12,
    arm.UC_ARM_REG_LR,
)
_MASK_REGS = (arm.UC_ARM_REG_PRIMASK, arm.UC_ARM_REG_BASEPRI, arm.UC_ARM_REG_FAULTMASK)


class FaultKind(enum.Enum):
    BUS_DATA = "precise data bus error"
    BUS_IMPRECISE = "imprecise data bus error"
    BUS_FETCH = "instruction fetch bus error"
    MEM_FETCH = "instruction fetch from a never-execute region"
    UNDEFINED = "undefined instruction"
    INVSTATE = "invalid state (Thumb bit clear)"
    INVPC = "invalid EXC_RETURN"
    NOCP = "coprocessor access"
    UNALIGNED = "unaligned access"
    DIVBYZERO = "division by zero"
    DEBUG = "breakpoint without debugger"


# kind -> (handler, CFSR bits, HFSR bits)
_FAULTS: dict[FaultKind, tuple[int, int, int]] = {
    FaultKind.BUS_DATA: (BUSFAULT, PRECISERR, 0),
    FaultKind.BUS_IMPRECISE: (BUSFAULT, IMPRECISERR, 0),
    FaultKind.BUS_FETCH: (BUSFAULT, IBUSERR, 0),
    FaultKind.MEM_FETCH: (MEMMANAGE, IACCVIOL, 0),
    FaultKind.UNDEFINED: (USAGEFAULT, UNDEFINSTR, 0),
    FaultKind.INVSTATE: (USAGEFAULT, INVSTATE, 0),
    FaultKind.INVPC: (USAGEFAULT, INVPC, 0),
    FaultKind.NOCP: (USAGEFAULT, NOCP, 0),
    FaultKind.UNALIGNED: (USAGEFAULT, UNALIGNED, 0),
    FaultKind.DIVBYZERO: (USAGEFAULT, DIVBYZERO, 0),
    FaultKind.DEBUG: (HARDFAULT, 0, HFSR_DEBUGEVT),
}


class Lockup(Exception):
    """The core locked up (ARMv7-M B1.5.15): a fault it could not take."""

    def __init__(self, message: str, pc: int) -> None:
        super().__init__(message)
        self.pc = pc


@dataclass
class _EntryState:
    r0: int
    r1: int
    r2: int
    r3: int
    r12: int
    lr: int
    xpsr: int
    control: int
    ipsr: int
    msp: int
    psp: int


class ExceptionUnit:
    """Takes and returns from exceptions on one core."""

    def __init__(self, uc: Any, memory: MemoryMap, nvic: Nvic, scb: Scb) -> None:
        self._uc = uc
        self._memory = memory
        self.nvic = nvic
        self.scb = scb
        self._entry = RegisterBatch(uc, _ENTRY_REGS)
        self._fp = RegisterBatch(uc, _FP_REGS)
        self._frame_regs = RegisterBatch(uc, _FRAME_INT_REGS)
        self._masks = RegisterBatch(uc, _MASK_REGS)
        self._stacks = RegisterBatch(uc, (arm.UC_ARM_REG_MSP, arm.UC_ARM_REG_PSP))
        #: exceptions taken since reset (diagnostics and tests)
        self.entries = 0

    # -- priorities --------------------------------------------------------------------------
    def masks(self) -> tuple[int, int, int]:
        p, b, f = self._privileged_read(self._masks)
        return p, b, f

    def _privileged_read(self, batch: RegisterBatch) -> list[int]:
        with self.privileged():
            return batch.read()

    @contextlib.contextmanager
    def privileged(self) -> Iterator[None]:
        """Access special registers, which unicorn reads as 0 and ignores writes to from
        unprivileged thread mode, by passing through handler mode (the SP banking follows)."""
        uc = self._uc
        if uc.reg_read(arm.UC_ARM_REG_IPSR) or not uc.reg_read(arm.UC_ARM_REG_CONTROL) & CONTROL_NPRIV:
            yield
            return
        uc.reg_write(arm.UC_ARM_REG_IPSR, 1)
        try:
            yield
        finally:
            uc.reg_write(arm.UC_ARM_REG_IPSR, 0)
            self._refresh_flags()

    def execution_priority(self, *, with_primask: bool = True) -> int:
        p, b, f = self.masks()
        return self.nvic.execution_priority(p, b, f, with_primask=with_primask)

    def deliverable(self) -> int | None:
        """The pending exception that preempts the running code now, if any."""
        exc = self.nvic.highest_pending()
        if exc is None:
            return None
        return exc if self.nvic.can_preempt(exc, self.execution_priority()) else None

    def blocked_by_mask(self) -> bool:
        """Something pending would preempt if PRIMASK/BASEPRI/FAULTMASK were clear."""
        exc = self.nvic.highest_pending()
        if exc is None:
            return False
        unmasked = self.nvic.execution_priority(0, 0, 0)
        return self.nvic.can_preempt(exc, unmasked) and not self.nvic.can_preempt(
            exc, self.execution_priority()
        )

    def wakes_from_sleep(self) -> bool:
        """WFI wake-up: a pending exception that would preempt if PRIMASK were clear."""
        exc = self.nvic.highest_pending()
        return exc is not None and self.nvic.can_preempt(exc, self.execution_priority(with_primask=False))

    # -- entry -------------------------------------------------------------------------------
    def take(self, exc: int, return_address: int) -> None:
        """Take exception ``exc``; ``return_address`` is the instruction to resume at."""
        vector = self._vector(exc)
        if vector is None:
            if exc == HARDFAULT:
                raise Lockup("HardFault vector unreadable", return_address)
            self.scb.record_fault(hfsr=HFSR_VECTTBL)
            self._check_hardfault_possible(return_address, f"vector of exception {exc} unreadable")
            exc = HARDFAULT
            vector = self._vector(HARDFAULT)
            if vector is None:
                raise Lockup("HardFault vector unreadable", return_address)
        st = _EntryState(*self._entry.read())
        if st.ipsr == 0 and st.control & CONTROL_NPRIV:
            st.msp, st.psp = self._privileged_read(self._stacks)
        fpca = bool(st.control & CONTROL_FPCA)
        thread = st.ipsr == 0
        use_psp = thread and bool(st.control & CONTROL_SPSEL)
        sp = st.psp if use_psp else st.msp
        size = EXTENDED_FRAME if fpca else BASIC_FRAME
        frame = (sp - size) & 0xFFFFFFFF
        aligned = frame & 4
        frame &= ~7
        stacked_xpsr = (st.xpsr & ~XPSR_ALIGN) | (XPSR_ALIGN if aligned else 0)
        words = [st.r0, st.r1, st.r2, st.r3, st.r12, st.lr, return_address & ~1, stacked_xpsr]
        if fpca:
            fp = self._fp.read()
            words += fp[:16] + [fp[16], 0]
        data = struct.pack(f"<{len(words)}I", *[w & 0xFFFFFFFF for w in words])
        exc_return = EXC_RETURN_BASE | (0 if fpca else 0x10) | (8 if thread else 0) | (4 if use_psp else 0)
        msp, psp = (st.msp, frame) if use_psp else (frame, st.psp)
        if self._memory.ram_covers(frame, len(data)):
            self._memory.write_ram(frame, data)
            if fpca:
                self.scb.set_fpcar(frame + BASIC_FRAME)
        else:
            # derived BusFault: the fault handler is entered instead, on the (unwritten) frame
            self.scb.record_fault(cfsr=STKERR)
            exc = self._fault_handler(BUSFAULT, return_address, f"stacking to {frame:#010x} failed")
            vector = self._vector(exc)
            if vector is None:
                raise Lockup("fault vector unreadable after a stacking error", return_address)
        self.nvic.activate(exc)
        self._set_context(exc, st.control & ~(CONTROL_SPSEL | CONTROL_FPCA), msp, psp)
        self._uc.reg_write(arm.UC_ARM_REG_LR, exc_return)
        self._uc.reg_write(arm.UC_ARM_REG_PC, vector | 1)
        self.entries += 1
        if not vector & 1:
            self.fault(FaultKind.INVSTATE, vector & ~1)

    def take_svc(self, return_address: int) -> None:
        """SVC executed: SVCall if it can preempt, else escalated to HardFault."""
        if self.nvic.can_preempt(SVCALL, self.execution_priority()):
            self.take(SVCALL, return_address)
            return
        self._check_hardfault_possible(return_address, "SVC at insufficient priority")
        self.scb.record_fault(hfsr=HFSR_FORCED)
        self.take(HARDFAULT, return_address)

    def fault(self, kind: FaultKind, return_address: int, address: int | None = None) -> int:
        """A synchronous fault: set the status registers and take the (escalated) handler.

        Returns the exception taken; raises :class:`Lockup` when no handler can run.
        """
        handler, cfsr, hfsr = _FAULTS[kind]
        if address is not None and kind is FaultKind.BUS_DATA:
            self.scb.record_fault(cfsr=cfsr | BFARVALID, bfar=address)
        else:
            self.scb.record_fault(cfsr=cfsr)
        if hfsr:
            self.scb.record_fault(hfsr=hfsr)
        exc = self._fault_handler(handler, return_address, kind.value)
        self.take(exc, return_address)
        return exc

    def _fault_handler(self, handler: int, pc: int, what: str) -> int:
        if handler != HARDFAULT:
            if self.nvic.enabled(handler) and self.nvic.can_preempt(handler, self.execution_priority()):
                return handler
            self.scb.record_fault(hfsr=HFSR_FORCED)
        self._check_hardfault_possible(pc, what)
        return HARDFAULT

    def _check_hardfault_possible(self, pc: int, what: str) -> None:
        if not self.nvic.can_preempt(HARDFAULT, self.execution_priority()):
            active = (
                "HardFault"
                if HARDFAULT in self.nvic.active
                else "NMI"
                if NMI in self.nvic.active
                else "FAULTMASK"
            )
            raise Lockup(f"{what} while {active} is active/set: lockup", pc)

    def _vector(self, exc: int) -> int | None:
        raw = self._memory.cpu_read(self.scb.vtor + 4 * exc, 4)
        return None if raw is None else int.from_bytes(raw, "little")

    # -- return ------------------------------------------------------------------------------
    def exception_return(self, exc_return: int) -> bool:
        """Handle an EXC_RETURN branch; returns True when execution is back in thread mode."""
        uc = self._uc
        ipsr = uc.reg_read(arm.UC_ARM_REG_IPSR)
        valid = (exc_return & 0x0FFFFFE0) == 0x0FFFFFE0 and (exc_return & 0xF) in (0x1, 0x9, 0xD)
        to_thread = bool(exc_return & 8)
        if (
            not valid
            or ipsr == 0
            or ipsr not in self.nvic.active
            or (to_thread and len(self.nvic.active) > 1 and not self.scb.nonbase_thread_enabled)
            or (not to_thread and exc_return & 4)
        ):
            self.fault(FaultKind.INVPC, exc_return)
            return False
        self.nvic.deactivate(ipsr)
        if ipsr != NMI:
            uc.reg_write(arm.UC_ARM_REG_FAULTMASK, 0)  # cleared on return from anything but NMI
        pending = self.nvic.highest_pending()
        if pending is not None and self.nvic.can_preempt(pending, self.execution_priority()):
            self._tail_chain(pending, exc_return)
            return False
        use_psp = bool(exc_return & 4)
        extended = not exc_return & 0x10
        size = EXTENDED_FRAME if extended else BASIC_FRAME
        control = uc.reg_read(arm.UC_ARM_REG_CONTROL)
        msp = uc.reg_read(arm.UC_ARM_REG_MSP)
        psp = uc.reg_read(arm.UC_ARM_REG_PSP)
        sp = psp if use_psp else msp
        raw = self._memory.cpu_read(sp, size)
        if raw is None:
            self.nvic.active.add(ipsr)  # the return did not happen
            self.scb.record_fault(cfsr=UNSTKERR)
            exc = self._fault_handler(BUSFAULT, exc_return, f"unstacking from {sp:#010x} failed")
            self.take(exc, exc_return)
            return False
        words = struct.unpack(f"<{size // 4}I", raw)
        stacked_xpsr = words[7]
        new_sp = (sp + size + (4 if stacked_xpsr & XPSR_ALIGN else 0)) & 0xFFFFFFFF
        if use_psp:
            psp = new_sp
        else:
            msp = new_sp
        self._frame_regs.write(words[:6])
        if extended:
            self._fp.write(list(words[8:24]) + [words[24]])
        target_ipsr = 0 if to_thread else stacked_xpsr & 0x1FF
        new_control = control & ~(CONTROL_SPSEL | CONTROL_FPCA)
        if to_thread and use_psp:
            new_control |= CONTROL_SPSEL
        if extended:
            new_control |= CONTROL_FPCA
        self._set_context(target_ipsr, new_control, msp, psp)
        xpsr = (stacked_xpsr & ~(XPSR_ALIGN | 0x1FF)) | target_ipsr | XPSR_T
        uc.reg_write(arm.UC_ARM_REG_XPSR_NZCVQG, xpsr)
        self._refresh_flags()
        uc.reg_write(arm.UC_ARM_REG_PC, words[6] | 1)
        if not stacked_xpsr & XPSR_T:
            self.fault(FaultKind.INVSTATE, words[6] & ~1)
            return False
        return to_thread

    def _tail_chain(self, exc: int, exc_return: int) -> None:
        vector = self._vector(exc)
        if vector is None:
            self.scb.record_fault(hfsr=HFSR_VECTTBL)
            exc = HARDFAULT
            vector = self._vector(HARDFAULT)
            if vector is None:
                raise Lockup("HardFault vector unreadable", exc_return)
        uc = self._uc
        self.nvic.activate(exc)
        uc.reg_write(arm.UC_ARM_REG_IPSR, exc)
        control = uc.reg_read(arm.UC_ARM_REG_CONTROL)
        uc.reg_write(arm.UC_ARM_REG_CONTROL, control & ~CONTROL_FPCA)
        self._refresh_flags()
        uc.reg_write(arm.UC_ARM_REG_LR, exc_return)
        uc.reg_write(arm.UC_ARM_REG_PC, vector | 1)
        self.entries += 1

    # -- mode switching ----------------------------------------------------------------------
    def _set_context(self, ipsr: int, control: int, msp: int, psp: int) -> None:
        """Switch to IPSR ``ipsr`` / CONTROL ``control`` with the given stack pointers."""
        w = self._uc.reg_write
        w(arm.UC_ARM_REG_IPSR, 1)  # handler mode: privileged whatever CONTROL.nPRIV says
        current = self._uc.reg_read(arm.UC_ARM_REG_CONTROL)
        w(arm.UC_ARM_REG_CONTROL, current & ~CONTROL_NPRIV)
        w(arm.UC_ARM_REG_IPSR, 0)  # privileged thread mode: every CONTROL bit is writable
        w(arm.UC_ARM_REG_MSP, msp)
        w(arm.UC_ARM_REG_PSP, psp)
        w(arm.UC_ARM_REG_CONTROL, control)
        if ipsr:
            w(arm.UC_ARM_REG_IPSR, ipsr)
        self._refresh_flags()

    def _refresh_flags(self) -> None:
        # rebuilds QEMU's cached translation flags after an IPSR change (see module docstring)
        self._uc.reg_write(arm.UC_ARM_REG_APSR_NZCV, self._uc.reg_read(arm.UC_ARM_REG_APSR_NZCV))

    # -- reset -------------------------------------------------------------------------------
    def reset_core(self, msp: int, pc: int) -> None:
        """ARMv7-M reset: thread mode, privileged, MSP, no masks, Thumb, registers cleared."""
        uc = self._uc
        self._set_context(0, 0, msp & ~3, 0)
        for i in range(13):
            uc.reg_write(arm.UC_ARM_REG_R0 + i, 0)
        for reg in _MASK_REGS:
            uc.reg_write(reg, 0)
        for i in range(32):
            uc.reg_write(arm.UC_ARM_REG_S0 + i, 0)
        uc.reg_write(arm.UC_ARM_REG_FPSCR, 0)
        uc.reg_write(arm.UC_ARM_REG_XPSR_NZCVQG, XPSR_T)
        self._refresh_flags()
        uc.reg_write(arm.UC_ARM_REG_LR, 0xFFFFFFFF)
        uc.reg_write(arm.UC_ARM_REG_PC, pc | 1)
        self.entries = 0
