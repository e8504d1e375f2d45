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
from typing import Any

from unicorn import arm_const as arm

from h743sim.engine.memory import MemoryMap
from h743sim.engine.native import RegisterBatch, RegisterFile
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

# The integer registers of a stack frame, in frame order (xPSR and the return address aside).
_FRAME_INT_REGS = (
    arm.UC_ARM_REG_R0,
    arm.UC_ARM_REG_R1,
    arm.UC_ARM_REG_R2,
    arm.UC_ARM_REG_R3,
    arm.UC_ARM_REG_R12,
    arm.UC_ARM_REG_LR,
)
# Read in one call at exception entry (APSR_NZCV last: see _CONTEXT_REGS).
_ENTRY_REGS = _FRAME_INT_REGS + (
    arm.UC_ARM_REG_XPSR,
    arm.UC_ARM_REG_CONTROL,
    arm.UC_ARM_REG_IPSR,
    arm.UC_ARM_REG_MSP,
    arm.UC_ARM_REG_PSP,
    arm.UC_ARM_REG_APSR_NZCV,
)
# Read in one call at exception return (all of them readable in handler mode).
_RETURN_REGS = (
    arm.UC_ARM_REG_IPSR,
    arm.UC_ARM_REG_CONTROL,
    arm.UC_ARM_REG_MSP,
    arm.UC_ARM_REG_PSP,
    arm.UC_ARM_REG_PRIMASK,
    arm.UC_ARM_REG_BASEPRI,
    arm.UC_ARM_REG_FAULTMASK,
    arm.UC_ARM_REG_APSR_NZCV,
)
_FP_REGS = tuple(arm.UC_ARM_REG_S0 + i for i in range(16)) + (arm.UC_ARM_REG_FPSCR,)
_MASK_REGS = (arm.UC_ARM_REG_PRIMASK, arm.UC_ARM_REG_BASEPRI, arm.UC_ARM_REG_FAULTMASK)
# IPSR and CONTROL first: they tell whether the masks just read are real (privileged) or zeros.
_MODE_AND_MASK_REGS = (arm.UC_ARM_REG_IPSR, arm.UC_ARM_REG_CONTROL) + _MASK_REGS
# The mode switch as one ordered batch write (see _context_values): handler mode, CONTROL with
# nPRIV clear, privileged thread mode, the stack pointers, CONTROL, the target IPSR, then the
# flags written back to themselves to rebuild QEMU's cached translation flags.
_CONTEXT_REGS = (
    arm.UC_ARM_REG_IPSR,
    arm.UC_ARM_REG_CONTROL,
    arm.UC_ARM_REG_IPSR,
    arm.UC_ARM_REG_MSP,
    arm.UC_ARM_REG_PSP,
    arm.UC_ARM_REG_CONTROL,
    arm.UC_ARM_REG_IPSR,
    arm.UC_ARM_REG_APSR_NZCV,
)
_ENTER_REGS = _CONTEXT_REGS + (arm.UC_ARM_REG_LR, arm.UC_ARM_REG_PC)
# unstacking: frame registers, the mode switch, xPSR, the flags again (rebuild), PC
_RETURN_TAIL_REGS = (arm.UC_ARM_REG_XPSR_NZCVQG, arm.UC_ARM_REG_APSR_NZCV, arm.UC_ARM_REG_PC)
_UNSTACK_REGS = _FRAME_INT_REGS + _CONTEXT_REGS + _RETURN_TAIL_REGS
_UNSTACK_FP_REGS = _FRAME_INT_REGS + _FP_REGS + _CONTEXT_REGS + _RETURN_TAIL_REGS
_TAIL_CHAIN_REGS = (
    arm.UC_ARM_REG_IPSR,
    arm.UC_ARM_REG_CONTROL,
    arm.UC_ARM_REG_APSR_NZCV,
    arm.UC_ARM_REG_LR,
    arm.UC_ARM_REG_PC,
)
_NZCV_MASK = 0xF0000000
_BASIC_WORDS = struct.Struct(f"<{BASIC_FRAME // 4}I")
_EXTENDED_WORDS = struct.Struct(f"<{EXTENDED_FRAME // 4}I")


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


class ExceptionUnit:
    """Takes and returns from exceptions on one core."""

    def __init__(self, uc: Any, memory: MemoryMap, nvic: Nvic, scb: Scb) -> None:
        self._uc = uc
        self._memory = memory
        self.nvic = nvic
        self.scb = scb
        # Register traffic goes straight to libunicorn in as few calls as possible: it is most of
        # the cost of an interrupt round trip (see native.py).
        self._regs = RegisterFile(uc)
        self._entry = RegisterBatch(uc, _ENTRY_REGS)
        self._return = RegisterBatch(uc, _RETURN_REGS)
        self._fp = RegisterBatch(uc, _FP_REGS)
        self._masks = RegisterBatch(uc, _MASK_REGS)
        self._mode_masks = RegisterBatch(uc, _MODE_AND_MASK_REGS)
        self._mode = RegisterBatch(uc, (arm.UC_ARM_REG_IPSR, arm.UC_ARM_REG_CONTROL))
        self._stacks = RegisterBatch(uc, (arm.UC_ARM_REG_MSP, arm.UC_ARM_REG_PSP))
        self._context = RegisterBatch(uc, _CONTEXT_REGS)
        self._enter = RegisterBatch(uc, _ENTER_REGS)
        self._unstack = RegisterBatch(uc, _UNSTACK_REGS)
        self._unstack_fp = RegisterBatch(uc, _UNSTACK_FP_REGS)
        self._tail = RegisterBatch(uc, _TAIL_CHAIN_REGS)
        #: exceptions taken since reset (diagnostics and tests)
        self.entries = 0

    # -- priorities --------------------------------------------------------------------------
    def masks(self) -> tuple[int, int, int]:
        ipsr, control, p, b, f = self._mode_masks.read()
        if ipsr or not control & CONTROL_NPRIV:
            return p, b, f  # privileged: the values just read are the real ones
        p, b, f = self._privileged_read(self._masks)
        return p, b, f

    def _privileged_read(self, batch: RegisterBatch) -> list[int]:
        with self.privileged():
            return batch.read()

    @contextlib.contextmanager
    def privileged(self) -> Iterator[None]:
        """Access special registers, which unicorn reads as 0 and ignores writes to from
        unprivileged thread mode, by passing through handler mode (the SP banking follows)."""
        ipsr, control = self._mode.read()
        if ipsr or not control & CONTROL_NPRIV:
            yield
            return
        self._regs.write(arm.UC_ARM_REG_IPSR, 1)
        try:
            yield
        finally:
            self._regs.write(arm.UC_ARM_REG_IPSR, 0)
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
        r0, r1, r2, r3, r12, lr, xpsr, control, ipsr, msp, psp, nzcv = self._entry.read()
        if ipsr == 0 and control & CONTROL_NPRIV:
            msp, psp = self._privileged_read(self._stacks)
        fpca = bool(control & CONTROL_FPCA)
        thread = ipsr == 0
        use_psp = thread and bool(control & CONTROL_SPSEL)
        sp = psp if use_psp else msp
        size = EXTENDED_FRAME if fpca else BASIC_FRAME
        frame = (sp - size) & 0xFFFFFFFF
        aligned = frame & 4
        frame &= ~7
        stacked_xpsr = (xpsr & ~XPSR_ALIGN) | (XPSR_ALIGN if aligned else 0)
        words = [r0, r1, r2, r3, r12, lr, return_address & ~1, stacked_xpsr]
        if fpca:
            fp = self._fp.read()
            words += fp[:16] + [fp[16], 0]
        data = (_EXTENDED_WORDS if fpca else _BASIC_WORDS).pack(*words)  # 32-bit register values
        exc_return = EXC_RETURN_BASE | (0 if fpca else 0x10) | (8 if thread else 0) | (4 if use_psp else 0)
        msp, psp = (msp, frame) if use_psp else (frame, psp)
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
        # mode switch, LR and PC in one ordered write; CONTROL and the flags are as read above
        # (nothing since changed them: IPSR writes only swap the banked SP)
        new_control = control & ~(CONTROL_SPSEL | CONTROL_FPCA)
        values = _context_values(exc, new_control, msp, psp, control, nzcv)
        values += (exc_return, vector | 1)
        self._enter.write(values)
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
        # every register this needs, read at once (in handler mode all of them are readable)
        ipsr, control, msp, psp, primask, basepri, faultmask, nzcv = self._return.read()
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
            self._regs.write(arm.UC_ARM_REG_FAULTMASK, 0)  # cleared on return from anything but NMI
            faultmask = 0
        pending = self.nvic.highest_pending()
        if pending is not None and self.nvic.can_preempt(
            pending, self.nvic.execution_priority(primask, basepri, faultmask)
        ):
            self._tail_chain(pending, exc_return, control, nzcv)
            return False
        use_psp = bool(exc_return & 4)
        extended = not exc_return & 0x10
        size = EXTENDED_FRAME if extended else BASIC_FRAME
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
        target_ipsr = 0 if to_thread else stacked_xpsr & 0x1FF
        new_control = control & ~(CONTROL_SPSEL | CONTROL_FPCA)
        if to_thread and use_psp:
            new_control |= CONTROL_SPSEL
        if extended:
            new_control |= CONTROL_FPCA
        xpsr = (stacked_xpsr & ~(XPSR_ALIGN | 0x1FF)) | target_ipsr | XPSR_T
        # One ordered write: r0-r3, r12, lr (and s0-s15, FPSCR), the mode switch, xPSR, the
        # flags rewritten (the xPSR write just set them to its own NZCV bits), then PC.
        values = words[:6]
        if extended:
            values += words[8:25]
        values += _context_values(target_ipsr, new_control, msp, psp, control, nzcv)
        values += (xpsr, xpsr & _NZCV_MASK, words[6] | 1)
        (self._unstack_fp if extended else self._unstack).write(values)
        if not stacked_xpsr & XPSR_T:
            self.fault(FaultKind.INVSTATE, words[6] & ~1)
            return False
        return to_thread

    def _tail_chain(self, exc: int, exc_return: int, control: int, nzcv: int) -> None:
        vector = self._vector(exc)
        if vector is None:
            self.scb.record_fault(hfsr=HFSR_VECTTBL)
            exc = HARDFAULT
            vector = self._vector(HARDFAULT)
            if vector is None:
                raise Lockup("HardFault vector unreadable", exc_return)
        self.nvic.activate(exc)
        # IPSR, CONTROL without FPCA, the flags rewritten (rebuild), LR, PC in one ordered write
        self._tail.write((exc, control & ~CONTROL_FPCA, nzcv, exc_return, vector | 1))
        self.entries += 1

    # -- mode switching ----------------------------------------------------------------------
    def _set_context(self, ipsr: int, control: int, msp: int, psp: int) -> None:
        """Switch to IPSR ``ipsr`` / CONTROL ``control`` with the given stack pointers."""
        current = self._regs.read(arm.UC_ARM_REG_CONTROL)
        nzcv = self._regs.read(arm.UC_ARM_REG_APSR_NZCV)
        self._context.write(_context_values(ipsr, control, msp, psp, current, nzcv))

    def _refresh_flags(self) -> None:
        # rebuilds QEMU's cached translation flags after an IPSR change (see module docstring)
        self._regs.write(arm.UC_ARM_REG_APSR_NZCV, self._regs.read(arm.UC_ARM_REG_APSR_NZCV))

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


def _context_values(ipsr: int, control: int, msp: int, psp: int, current: int, nzcv: int) -> tuple[int, ...]:
    """Values for ``_CONTEXT_REGS``: switch to IPSR ``ipsr`` / CONTROL ``control`` with the given
    stack pointers, from CONTROL ``current`` and flags ``nzcv``.

    Handler mode first (privileged whatever CONTROL.nPRIV says) to clear nPRIV, then privileged
    thread mode where every CONTROL bit and both stack pointers are writable, then the target
    IPSR (writing 0 when already 0 changes nothing), then the flags written back to themselves.
    """
    return (1, current & ~CONTROL_NPRIV, 0, msp, psp, control, ipsr, nzcv)
