"""The run loop: a Cortex-M7 core, its system peripherals, the models, and virtual time.

The CPU runs in deterministic ``count=`` slices. A slice ends exactly when the next scheduled
event is due (or earlier, when a callback asks for it: an IRQ was raised, a window was written,
a reset was requested); between slices the engine runs due events, takes pending exceptions and
applies faults. Virtual time is core cycles (one per instruction, plus sleep and provably idle
polling) at the clock ``cpu_hz()`` returns, re-read at every slice boundary (keep it cheap: the
board's comes from the RCC model, which caches it until a clock register changes).

Idle time is skipped, never executed: WFI/WFE sleep, a branch-to-self (``b .``) found at a slice
end, and firmware proven to be just polling one register (:mod:`h743sim.engine.polling`) all jump
to the next event. While an interrupt waits only for PRIMASK/BASEPRI, slices end right after the
unmasking instruction when it can be found ahead (:mod:`h743sim.engine.unmask_scan`), else the
core is stepped finely so the interrupt is taken where hardware would take it.

WFE follows the event register: exception entry and return set it, a WFE with it set clears it and
goes on, one without it sleeps until an interrupt would be taken. SEV is executed by unicorn as a
NOP the engine never sees, so it does not set the register: the common idiom ``sev; wfe; wfe``
(clear the event, then sleep) still sleeps once until the next interrupt, but code that expects a
lone ``sev; wfe`` to fall through sleeps there instead.

Rules from EMULATION.md §2 that shape it: ``emu_stop()`` is never used to end a slice from an
MMIO callback for an access that completed (the access would run again) - the slice's
instruction budget is lowered instead (:mod:`h743sim.engine.counter`); ``emu_stop()`` is used only
to abandon an access that must fault, which is exactly the precise-fault behaviour wanted.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from unicorn import UcError
from unicorn import arm_const as arm
from unicorn import unicorn_const as ucc

from h743sim.engine.clock import VirtualClock
from h743sim.engine.counter import FaultAddress, InstructionCounter
from h743sim.engine.cpu import CoreRegisters, create_cortex_m7
from h743sim.engine.debug import CoreDebug, Dwt, Itm
from h743sim.engine.decoder import AddressDecoder
from h743sim.engine.exceptions import ExceptionUnit, FaultKind, Lockup
from h743sim.engine.memory import BusModel, MemoryMap
from h743sim.engine.model_host import ModelHost
from h743sim.engine.mpu import Mpu
from h743sim.engine.native import (
    HOOK_CODE_CFUNC,
    HOOK_INSN_INVALID_CFUNC,
    HOOK_INTR_CFUNC,
    NativeHooks,
    RegisterBatch,
    RegisterFile,
)
from h743sim.engine.nvic import SYSTICK, Nvic
from h743sim.engine.polling import PollDetector
from h743sim.engine.scb import Scb
from h743sim.engine.stop import EngineError, StopKind, StopReason
from h743sim.engine.systick import SysTick
from h743sim.engine.unmask_scan import SCAN_BYTES, instructions_until_unmask
from peripherals.host import Timer
from peripherals.standalone_host import EventQueue

log = logging.getLogger("h743sim.engine")

DEFAULT_CPU_HZ = 64_000_000  # HSI after reset
DEFAULT_BOOT_ADDRESS = 0x08000000  # BOOT_ADD0 factory value (FACTS.md G.1)
DEFAULT_MAX_SLICE = 200_000  # instructions; bounds how late until() is noticed
# while an interrupt waits for CPSIE/MSR and none is in sight on the straight-line path: single
# steps first, then slices of 16, 32, ... 4096 instructions
MASKED_SINGLE_STEPS = 256
MASKED_SLICE_MIN = 16
MASKED_SLICE_MAX = 4096
MAX_RESETS_PER_BOUNDARY = 100
NUM_IRQS = 150
PPB_BASE = 0xE0000000
PPB_SIZE = 0x00100000

# QEMU exception numbers unicorn passes to UC_HOOK_INTR
EXCP_SWI, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT, EXCP_BKPT, EXCP_EXCEPTION_EXIT = 2, 3, 4, 7, 8
_INTR_FAULTS = {
    17: FaultKind.NOCP,
    18: FaultKind.INVSTATE,
    22: FaultKind.UNALIGNED,
    23: FaultKind.DIVBYZERO,
    EXCP_PREFETCH_ABORT: FaultKind.MEM_FETCH,
    EXCP_DATA_ABORT: FaultKind.BUS_DATA,
}
_WFI_T1, _WFE_T1, _YIELD_T1 = 0xBF30, 0xBF20, 0xBF10
_WFI_T2, _WFE_T2, _YIELD_T2 = 0x8003F3AF, 0x8002F3AF, 0x8001F3AF  # as little-endian words
_SELF_BRANCH_T2, _SELF_BRANCH_T4 = 0xE7FE, 0xBFFEF7FF  # b.n . / b.w .
# unicorn reads these as 0 (and ignores writes) in unprivileged thread mode
_PRIVILEGED_REGISTERS = frozenset({"msp", "psp", "primask", "basepri", "faultmask"})


def _execute_never(address: int) -> bool:
    """ARMv7-M default memory map: Peripheral, Device and System regions are execute-never."""
    return 0x40000000 <= address < 0x60000000 or address >= 0xA0000000


class _CycleTimer:
    """A timer due at a core-cycle count (re-timed when the core clock changes)."""

    def __init__(self, machine: Machine, cycle: int, callback: Callable[[], None], name: str) -> None:
        self._machine = machine
        self.cycle = cycle
        self._callback = callback
        self._name = name
        self._event: Timer | None = None
        self._done = False
        self.arm()

    def arm(self) -> None:
        if self._event is not None:
            self._event.cancel()
        m = self._machine
        delay = m.clock.ns_at(self.cycle) - m.now_ns()
        self._event = m.schedule(max(0, delay), self._fire, self._name)
        m._cycle_timers[self] = None

    def _fire(self) -> None:
        self._done = True
        self._machine._cycle_timers.pop(self, None)
        self._callback()

    def cancel(self) -> None:
        self._done = True
        if self._event is not None:
            self._event.cancel()
        self._machine._cycle_timers.pop(self, None)

    @property
    def pending(self) -> bool:
        return not self._done


class Machine:
    """A Cortex-M7 with NVIC/SCB/SysTick, RAM, MMIO models and windows, in virtual time."""

    def __init__(
        self,
        cpu_hz: Callable[[], int] | None = None,
        *,
        num_irqs: int = NUM_IRQS,
        max_slice: int = DEFAULT_MAX_SLICE,
    ) -> None:
        if max_slice < 1:
            raise ValueError(f"max_slice must be at least 1, got {max_slice}")
        self._cpu_hz = cpu_hz or (lambda: DEFAULT_CPU_HZ)
        self.max_slice = max_slice
        self.uc = create_cortex_m7()
        self._regs = RegisterFile(self.uc)  # PC/IPSR reads on the hot paths, bypassing the binding
        # every stop carries these (one call: a run per USB packet makes stops frequent)
        self._stop_regs = RegisterBatch(
            self.uc, (arm.UC_ARM_REG_PC, arm.UC_ARM_REG_LR, arm.UC_ARM_REG_SP, arm.UC_ARM_REG_XPSR)
        )
        self.counter = InstructionCounter(self.uc)
        self._fault_address = FaultAddress(self.uc)
        self.registers = CoreRegisters(self.uc)
        self.events = EventQueue()
        self.clock = VirtualClock(self._cpu_hz())
        self.memory = MemoryMap(self.uc, self)
        # insertion-ordered (a set would re-arm in address order: not deterministic)
        self._cycle_timers: dict[_CycleTimer, None] = {}

        self.nvic = Nvic(self.host_for("nvic"), num_irqs)
        self.nvic.on_change = self._exception_state_changed
        self.scb = Scb(self.host_for("scb"), self.nvic, self)
        # read on every stop (StopReason.cpu_state): the register objects, looked up once
        self._fault_regs = tuple(self.scb.regs[name] for name in ("CFSR", "HFSR", "BFAR", "MMFAR"))
        self.systick = SysTick(self.host_for("systick"), self, lambda: self.nvic.pend(SYSTICK))
        self.mpu = Mpu(self.host_for("mpu"))
        self.core_debug = CoreDebug(self.host_for("coredebug"))
        self.dwt = Dwt(self.host_for("dwt"), self.now_cycles, self.core_debug)
        self.itm = Itm(self.host_for("itm"))
        scs = AddressDecoder("SCS", fallback=self.scb)
        scs.add(0x010, 0x010, self.systick, "SysTick")
        scs.add(0x100, 0xC00, self.nvic, "NVIC")
        scs.add(0xD90, 0x02C, self.mpu, "MPU")
        scs.add(0xDF0, 0x010, self.core_debug, "CoreDebug")
        scs.add(0xF00, 0x004, self.nvic.stir, "STIR")
        ppb = AddressDecoder("PPB")
        ppb.add(0x00000, 0x1000, self.itm, "ITM")
        ppb.add(0x01000, 0x1000, self.dwt, "DWT")
        ppb.add(0x0E000, 0x1000, scs, "SCS")
        self.memory.add_mmio("ppb", PPB_BASE, PPB_SIZE, ppb)

        self.exceptions = ExceptionUnit(self.uc, self.memory, self.nvic, self.scb)
        self._poll = PollDetector(self.registers.snapshot)
        self._native = NativeHooks(self.uc)
        self._native.add(ucc.UC_HOOK_INTR, HOOK_INTR_CFUNC(self._on_interrupt))
        self._native.add(ucc.UC_HOOK_INSN_INVALID, HOOK_INSN_INVALID_CFUNC(self._on_invalid_instruction))

        #: called (no arguments) after every reset, before SP/PC are fetched (board-level reset)
        self.reset_hooks: list[Callable[[], None]] = []
        #: BKPT stops the run (for a debugger) instead of escalating to HardFault
        self.halt_on_bkpt = False
        #: when a list, every exception entry is appended as (time_ns, instructions, number)
        self.exception_log: list[tuple[int, int, int]] | None = None
        self.boot_address = DEFAULT_BOOT_ADDRESS
        self.reset_count = 0
        self.idle_cycles = 0

        self._breakpoints: dict[int, int] = {}
        self._breakpoint_hook = HOOK_CODE_CFUNC(self._on_breakpoint)
        self._breakpoint_skip: int | None = None
        self._running = False
        self._cycles = 0
        self._instructions = 0
        self._slice_start_cycles = 0
        self._slice_extra_cycles = 0
        self._slice_instructions_before = 0
        self._deadline_ns: int | None = None
        self._skip_target = False  # is there an event or deadline idle polling could jump to?
        self._clear_run_state()

    def _clear_run_state(self) -> None:
        self._idle_mode: str | None = None
        self._masked_streak = 0
        self._event_register = False
        self._boundary_requested = False
        self._requested: str | None = None
        self._reset_request: str | None = None
        self._power_off: str | None = None
        self._lockup: Lockup | None = None
        self._error: tuple[BaseException, str] | None = None
        self._pending_fault: tuple[FaultKind, int | None, str] | None = None
        self._breakpoint: int | None = None
        self._invalid: tuple[FaultKind, int] | None = None
        self._wfe_sleep = False
        self._last_hint: tuple[int, int] | None = None
        self._counting = False  # the current run has an instruction budget

    # -- building the board --------------------------------------------------------------------
    def host_for(self, name: str, irq_offset: int = 0) -> ModelHost:
        """The Host a model named ``name`` receives (its IRQ n drives NVIC line n + irq_offset)."""
        return ModelHost(self, name, irq_offset)

    def add_ram(self, name: str, base: int, size: int) -> None:
        self.memory.add_ram(name, base, size)

    def add_mmio(self, name: str, base: int, size: int, model: BusModel) -> None:
        self.memory.add_mmio(name, base, size, model)

    # -- time ----------------------------------------------------------------------------------
    def now_cycles(self) -> int:
        if self._running:
            return self._slice_start_cycles + self.counter.executed() + self._slice_extra_cycles
        return self._cycles

    def now_ns(self) -> int:
        # now_cycles() inlined: models ask for the time on most register accesses
        if self._running:
            cycles = self._slice_start_cycles + self.counter.executed() + self._slice_extra_cycles
        else:
            cycles = self._cycles
        return self.clock.ns_at(cycles)

    @property
    def virtual_time_ns(self) -> int:
        return self.now_ns()

    @property
    def instructions_executed(self) -> int:
        if self._running:
            return self._slice_instructions_before + self.counter.executed()
        return self._instructions

    def schedule(self, delay_ns: int, callback: Callable[[], None], name: str = "") -> Timer:
        """Run ``callback`` ``delay_ns`` of virtual time from now (at a slice boundary)."""
        self.events.now = max(self.events.now, self.now_ns())
        event = self.events.schedule(delay_ns, callback, name)
        self._skip_target = True
        if self._running:
            self._end_slice_at_ns(event.when)
        return event

    def schedule_at_cycle(self, cycle: int, callback: Callable[[], None], name: str = "") -> Timer:
        """Run ``callback`` when the core cycle counter reaches ``cycle``."""
        return _CycleTimer(self, cycle, callback, name)

    def _end_slice_at_ns(self, when: int) -> None:
        target = self.clock.cycles_at(when) - self._slice_start_cycles - self._slice_extra_cycles
        self.counter.stop_at(max(1, target))

    def _request_boundary(self) -> None:
        if self._running:
            self._boundary_requested = True
            self.counter.stop_after_current()

    def set_cpu_hz_source(self, cpu_hz: Callable[[], int]) -> None:
        """Where the core clock comes from from now on (e.g. the RCC model's ``cpu_hz``); it is
        read at every slice boundary, so it must be cheap."""
        self._cpu_hz = cpu_hz

    # -- signals from models and host code -----------------------------------------------------
    def set_irq(self, irq: int, level: bool) -> None:
        self.nvic.set_irq(irq, level)

    def _exception_state_changed(self) -> None:
        self._request_boundary()

    def request_stop(self, reason: str = "stop requested") -> None:
        """Make :meth:`run` return (after the current instruction when called from a callback)."""
        self._requested = reason
        self._request_boundary()

    def request_system_reset(self, reason: str) -> None:
        self._reset_request = reason
        self._request_boundary()

    def power_off(self, reason: str) -> None:
        self._power_off = reason
        self._request_boundary()

    def bus_error(self, address: int, reason: str) -> None:
        """A model refuses the access it is serving (precise) or reports a later error (imprecise)."""
        if self._running and self.memory.access_address is not None:
            self._pending_fault = (FaultKind.BUS_DATA, self.memory.access_address, reason)
            self.uc.emu_stop()  # abandons the access: the fault's stacked PC is its instruction
        else:
            self._pending_fault = (FaultKind.BUS_IMPRECISE, None, reason)
            self._request_boundary()

    # -- BusListener (memory map callbacks) ----------------------------------------------------
    def mmio_read(self, address: int, value: int) -> None:
        # idle polling can only be skipped towards something: an event or the run's deadline
        if self._skip_target and self._poll.read(address, value):
            self._fast_forward()

    def mmio_write(self, address: int) -> None:
        self._poll.other_access()

    def window_written(self) -> None:
        self._poll.other_access()
        self._request_boundary()

    def read_refused(self, address: int, reason: str) -> None:
        self._pending_fault = (FaultKind.BUS_DATA, address, reason)
        self.uc.emu_stop()

    def callback_error(self, exc: BaseException, where: str) -> None:
        if self._error is None:
            self._error = (exc, where)
        log.error("error in %s: %s", where, "".join(traceback.format_exception(exc)).rstrip())
        self.uc.emu_stop()

    def _fast_forward(self) -> None:
        """The firmware is idle-polling: jump to the next event (or the run's deadline)."""
        targets = [t for t in (self.events.next_time(), self._deadline_ns) if t is not None]
        if not targets or not self._running:
            return
        target = self.clock.cycles_at(min(targets))
        now = self.now_cycles()
        if target > now:
            self._slice_extra_cycles += target - now
            self.idle_cycles += target - now
            self._request_boundary()

    # -- CoreView (SCB) ------------------------------------------------------------------------
    def ipsr(self) -> int:
        return self._regs.read(arm.UC_ARM_REG_IPSR)

    def masks(self) -> tuple[int, int, int]:
        return self.exceptions.masks()

    # -- unicorn hooks -------------------------------------------------------------------------
    def _on_interrupt(self, _h: Any, intno: int, _u: Any) -> None:
        try:
            self.memory.restore_windows()
            pc = self._regs.read(arm.UC_ARM_REG_PC)
            self._event_register = True
            if intno == EXCP_EXCEPTION_EXIT:
                back_to_thread = self.exceptions.exception_return(pc | 1)
                if back_to_thread and self.scb.sleep_on_exit:
                    self._idle_mode = "wfi"
                    self._request_boundary()
                elif self.exceptions.blocked_by_mask():
                    self._request_boundary()  # now only a mask holds it back: watch for the unmask
            elif intno == EXCP_SWI:
                self.exceptions.take_svc(pc)
                self._log_entry()
            elif intno == EXCP_BKPT:
                if self.halt_on_bkpt:
                    self._breakpoint = pc
                    self.uc.emu_stop()
                else:
                    self.exceptions.fault(FaultKind.DEBUG, pc)
                    self._log_entry()
            elif intno in _INTR_FAULTS:
                self.exceptions.fault(_INTR_FAULTS[intno], pc)
                self._log_entry()
            else:
                raise EngineError(f"unicorn raised unexpected CPU exception {intno} at pc={pc:#010x}")
        except Lockup as lockup:
            self._lockup = lockup
            self.uc.emu_stop()
        except BaseException as exc:
            self.callback_error(exc, f"CPU exception {intno}")

    def _on_invalid_instruction(self, _h: Any, _u: Any) -> bool:
        """UDF/undefined encodings, a clear Thumb bit, and the WFE/YIELD hints all land here.

        Returning True resumes at PC: right for the hints (PC is already past them), an endless
        loop for the others (PC is on them), which therefore return False and become faults.
        A second call at the same PC one instruction later means the bytes before PC only
        looked like a hint.
        """
        try:
            pc = self._regs.read(arm.UC_ARM_REG_PC)
            if not self._regs.read(arm.UC_ARM_REG_XPSR) & (1 << 24):
                self._invalid = (FaultKind.INVSTATE, pc)
                return False
            # absolute instruction number: the per-slice counter restarts with every slice, so a
            # hint that began one slice must not look like a repeat when it runs again later
            number = self._instructions + self.counter.counter
            if self._last_hint != (pc, number - 1):
                if self._follows(_WFE_T1, _WFE_T2):
                    self._last_hint = (pc, number)
                    if self._event_register:
                        self._event_register = False
                    else:
                        self._wfe_sleep = True
                        self._request_boundary()
                    return True
                if self._follows(_YIELD_T1, _YIELD_T2):
                    self._last_hint = (pc, number)
                    return True
            self._invalid = (FaultKind.UNDEFINED, pc)
            return False
        except BaseException as exc:
            self.callback_error(exc, "invalid-instruction hook")
            return False

    # -- breakpoints -----------------------------------------------------------------------------
    def add_breakpoint(self, address: int) -> None:
        """Stop :meth:`run` (``StopKind.BREAKPOINT``) before the instruction at ``address`` runs.

        A bounded code hook, so flash stays untouched; each breakpoint adds a little to every
        instruction's cost, keep them few.
        """
        address &= 0xFFFFFFFE
        if address not in self._breakpoints:
            self._breakpoints[address] = self._native.add(
                ucc.UC_HOOK_CODE, self._breakpoint_hook, address, address
            )

    def remove_breakpoint(self, address: int) -> None:
        hook = self._breakpoints.pop(address & 0xFFFFFFFE, None)
        if hook is not None:
            self._native.delete(hook)

    def _on_breakpoint(self, _h: Any, address: int, _size: int, _u: Any) -> None:
        if address == self._breakpoint_skip:
            self._breakpoint_skip = None  # resuming from this breakpoint: let it run once
            return
        self._breakpoint = address
        self.uc.emu_stop()

    # -- reset ---------------------------------------------------------------------------------
    def reset(self, boot_address: int = DEFAULT_BOOT_ADDRESS) -> None:
        """Power-on/system reset: all models, NVIC/SCB/SysTick, then SP and PC from the vector table."""
        if self._running:
            raise EngineError("reset() called while the CPU runs; use request_system_reset()")
        self.boot_address = boot_address & 0xFFFFFFFF
        self._clear_run_state()
        self._reset_models_and_core()

    def _reset_models_and_core(self) -> None:
        self.memory.restore_windows()
        self.scb.vtor_reset = self.boot_address
        self.memory.reset_models()
        for hook in self.reset_hooks:
            hook()
        self._poll.reset()
        sp = self.memory.cpu_read(self.boot_address, 4)
        pc = self.memory.cpu_read(self.boot_address + 4, 4)
        if sp is None or pc is None:
            raise EngineError(
                f"reset: no readable vector table at boot address {self.boot_address:#010x} "
                "(load the firmware / map the flash window first)"
            )
        initial_pc = int.from_bytes(pc, "little")
        self.exceptions.reset_core(int.from_bytes(sp, "little"), initial_pc)
        if not initial_pc & 1:
            self._pending_fault = (FaultKind.INVSTATE, None, "reset vector without the Thumb bit")

    def _system_reset(self, reason: str) -> None:
        self.reset_count += 1
        log.info("system reset #%d (%s)", self.reset_count, reason)
        self._clear_run_state()
        self._reset_models_and_core()

    # -- running -------------------------------------------------------------------------------
    def run(
        self,
        until: Callable[[], bool] | None = None,
        max_ns: int | None = None,
        max_instructions: int | None = None,
    ) -> StopReason:
        """Run until ``until()`` holds (checked between slices), a budget is spent, or something stops it."""
        if self._running:
            raise EngineError("Machine.run() is not re-entrant (called from a callback?)")
        if max_ns is not None and max_ns < 0:
            raise ValueError(f"max_ns must not be negative, got {max_ns}")
        if max_instructions is not None and max_instructions < 0:
            raise ValueError(f"max_instructions must not be negative, got {max_instructions}")
        self._deadline_ns = None if max_ns is None else self.now_ns() + int(max_ns)
        limit = None if max_instructions is None else self._instructions + int(max_instructions)
        self._counting = limit is not None
        pc = self._regs.read(arm.UC_ARM_REG_PC)
        self._breakpoint_skip = pc if pc in self._breakpoints else None
        try:
            while True:
                stop = self._boundary(until)
                if stop is not None:
                    return stop
                if self._idle_mode is not None:
                    stop = self._idle()
                    if stop is not None:
                        return stop
                    continue
                budget = self._plan_slice(limit)
                if isinstance(budget, StopReason):
                    return budget
                self._run_slice(budget)
        finally:
            self._deadline_ns = None
            self._counting = False

    def _stop(
        self, kind: StopKind, message: str, error: BaseException | None = None, **details: Any
    ) -> StopReason:
        return StopReason(kind, message, self.now_ns(), self._instructions, self.cpu_state(), error, details)

    def _boundary(self, until: Callable[[], bool] | None) -> StopReason | None:
        self.memory.restore_windows()
        for _ in range(MAX_RESETS_PER_BOUNDARY):
            stop = self._pending_stop()
            if stop is not None:
                return stop
            if self._reset_request is not None:
                try:
                    self._system_reset(self._reset_request)
                except EngineError as exc:
                    return self._stop(StopKind.ERROR, str(exc), exc)
            if self.clock.set_hz(self._cpu_hz(), self._cycles):
                for timer in list(self._cycle_timers):
                    timer.arm()
            self.events.now = max(self.events.now, self.now_ns())
            self.events.run_due()
            if self._reset_request is None:  # else an event asked for another reset
                break
        else:
            return self._stop(StopKind.ERROR, "system reset requested again and again at the same instant")
        stop = self._pending_stop()
        if stop is not None:
            return stop
        if until is not None and until():
            return self._stop(StopKind.CONDITION, "until() condition met")
        try:
            self._deliver_faults_and_exceptions()
        except Lockup as lockup:
            self._lockup = lockup
            return self._pending_stop()
        return None

    def _pending_stop(self) -> StopReason | None:
        if self._error is not None:
            exc, where = self._error
            self._error = None
            return self._stop(StopKind.ERROR, f"{where}: {type(exc).__name__}: {exc}", exc)
        if self._lockup is not None:
            return self._stop(StopKind.LOCKUP, str(self._lockup), lockup_pc=self._lockup.pc)
        if self._power_off is not None:
            return self._stop(StopKind.POWER_OFF, self._power_off)
        if self._breakpoint is not None:
            pc, self._breakpoint = self._breakpoint, None
            return self._stop(StopKind.BREAKPOINT, f"breakpoint at {pc:#010x}", pc=pc)
        if self._requested is not None:
            reason, self._requested = self._requested, None
            return self._stop(StopKind.REQUESTED, reason)
        return None

    def _deliver_faults_and_exceptions(self) -> None:
        # PC is read only when something is taken (most boundaries take nothing)
        if self._pending_fault is not None:
            pc = self._regs.read(arm.UC_ARM_REG_PC)
            kind, address, reason = self._pending_fault
            self._pending_fault = None
            log.info("bus fault at pc=%#010x: %s", pc, reason)
            self.exceptions.fault(kind, pc, address)
            self._after_entry()
        for _ in range(self.nvic.num_exceptions):
            exc = self.exceptions.deliverable()
            if exc is None:
                return
            self.exceptions.take(exc, self._regs.read(arm.UC_ARM_REG_PC))
            self._after_entry()

    def _after_entry(self) -> None:
        self._idle_mode = None
        self._event_register = True
        self._log_entry()

    def _log_entry(self) -> None:
        if self.exception_log is not None:
            self.exception_log.append((self.now_ns(), self.instructions_executed, self.ipsr()))

    def _plan_slice(self, limit: int | None) -> int | StopReason:
        now = self._cycles
        budget = self.max_slice
        if limit is not None:
            remaining = limit - self._instructions
            if remaining <= 0:
                return self._stop(StopKind.INSTRUCTION_LIMIT, "max_instructions executed")
            budget = min(budget, remaining)
        if self._deadline_ns is not None:
            until_deadline = self.clock.cycles_at(self._deadline_ns) - now
            if until_deadline <= 0:
                return self._stop(StopKind.TIMEOUT, "max_ns of virtual time elapsed")
            budget = min(budget, until_deadline)
        next_event = self.events.next_time()
        if next_event is not None:
            budget = min(budget, max(1, self.clock.cycles_at(next_event) - now))
        if self.exceptions.blocked_by_mask():
            budget = min(budget, self._masked_budget())
        else:
            self._masked_streak = 0
        return budget

    def _masked_budget(self) -> int:
        """Slice length while a pending interrupt waits only for PRIMASK/BASEPRI/FAULTMASK.

        Straight-line code is decoded to end the slice right after the unmasking instruction.
        Otherwise the core is stepped one instruction at a time for the first
        ``MASKED_SINGLE_STEPS`` boundaries (critical sections are short), then in growing slices.
        """
        pc = self._regs.read(arm.UC_ARM_REG_PC)
        code = self.memory.cpu_read(pc, SCAN_BYTES) or self.memory.cpu_read(pc, 16)
        ahead = instructions_until_unmask(code) if code else None
        streak = self._masked_streak
        self._masked_streak += 1
        if ahead is not None:
            return ahead
        if streak < MASKED_SINGLE_STEPS:
            return 1
        return min(MASKED_SLICE_MAX, MASKED_SLICE_MIN << min(streak - MASKED_SINGLE_STEPS, 16))

    def _run_slice(self, budget: int) -> None:
        pc = self._regs.read(arm.UC_ARM_REG_PC)
        self._slice_start_cycles = self._cycles
        self._slice_extra_cycles = 0
        self._slice_instructions_before = self._instructions
        self._boundary_requested = False
        self._skip_target = self._deadline_ns is not None or self.events.next_time() is not None
        error: UcError | None = None
        self._running = True
        try:
            self.uc.emu_start(pc | 1, 0xFFFFFFFF, 0, budget)
        except UcError as exc:
            error = exc
        finally:
            self._running = False
        executed = self.counter.executed()
        self._instructions += executed
        self._cycles = self._slice_start_cycles + executed + self._slice_extra_cycles
        self.memory.restore_windows()
        if self._error is not None or self._lockup is not None:
            return
        if self._invalid is not None:
            kind, pc = self._invalid
            self._invalid = None
            self._fault(kind, pc)
        elif error is not None:
            self._handle_memory_error(error)
        elif self._wfe_sleep:
            self._wfe_sleep = False
            self._wait_for_interrupt()
        elif (
            self.counter.counter <= self.counter.limit  # stopped by the core, not by the budget
            and not self._boundary_requested
            and self._pending_fault is None
            and self._breakpoint is None
            and self._follows(_WFI_T1, _WFI_T2)
        ):
            self._wait_for_interrupt()
        elif not self._counting and self.counter.counter > self.counter.limit and self._at_self_branch():
            # "b ." changes nothing until an exception is taken: skip its cycles like a sleep
            # (not under an instruction budget: there it executes, so the budget can end the run)
            self._idle_mode = "spin"

    def _at_self_branch(self) -> bool:
        pc = self._regs.read(arm.UC_ARM_REG_PC)
        code = self.memory.cpu_read(pc, 4) or self.memory.cpu_read(pc, 2)
        if code is None:
            return False
        return int.from_bytes(code[:2], "little") == _SELF_BRANCH_T2 or (
            len(code) == 4 and int.from_bytes(code, "little") == _SELF_BRANCH_T4
        )

    def _follows(self, t1: int, t2: int) -> bool:
        """True when the instruction just before PC is the given 16-bit or 32-bit encoding."""
        pc = self._regs.read(arm.UC_ARM_REG_PC)
        # one read covers both encodings when [pc-4, pc) is readable (then so is [pc-2, pc))
        word = self.memory.cpu_read(pc - 4, 4)
        if word is not None:
            return int.from_bytes(word[2:], "little") == t1 or int.from_bytes(word, "little") == t2
        half = self.memory.cpu_read(pc - 2, 2)
        return half is not None and int.from_bytes(half, "little") == t1

    def _wait_for_interrupt(self) -> None:
        if not self.exceptions.wakes_from_sleep():
            self._idle_mode = "wfi"

    def _handle_memory_error(self, error: UcError) -> None:
        pc = self._regs.read(arm.UC_ARM_REG_PC)
        code = error.errno
        info = self.memory.last_fault
        self.memory.last_fault = None
        address = info.address if info is not None else self._fault_address.read()
        if code in (ucc.UC_ERR_FETCH_UNMAPPED, ucc.UC_ERR_FETCH_PROT):
            kind = FaultKind.MEM_FETCH if _execute_never(pc) else FaultKind.BUS_FETCH
            self._fault(kind, pc)
        elif code in (
            ucc.UC_ERR_READ_UNMAPPED,
            ucc.UC_ERR_WRITE_UNMAPPED,
            ucc.UC_ERR_READ_PROT,
            ucc.UC_ERR_WRITE_PROT,
        ):
            self._fault(FaultKind.BUS_DATA, pc, address)
        elif code in (ucc.UC_ERR_READ_UNALIGNED, ucc.UC_ERR_WRITE_UNALIGNED, ucc.UC_ERR_FETCH_UNALIGNED):
            self._fault(FaultKind.UNALIGNED, pc)
        elif code == ucc.UC_ERR_INSN_INVALID:
            self._fault(FaultKind.UNDEFINED, pc)
        else:
            self._error = (error, f"unicorn stopped at pc={pc:#010x}")

    def _fault(self, kind: FaultKind, pc: int, address: int | None = None) -> None:
        try:
            self.exceptions.fault(kind, pc, address)
            self._after_entry()
        except Lockup as lockup:
            self._lockup = lockup

    def _idle(self) -> StopReason | None:
        """The core sleeps (WFI/WFE) or spins on ``b .``: jump to what can change that."""
        if self._idle_mode == "wfi":
            woken = self.exceptions.wakes_from_sleep()
        else:
            woken = self.exceptions.deliverable() is not None
        if woken:
            self._idle_mode = None
            return None
        next_event = self.events.next_time()
        what = "WFI" if self._idle_mode == "wfi" else "a branch-to-self loop"
        if next_event is None and self._deadline_ns is None:
            return self._stop(
                StopKind.SLEEPING, f"core idle in {what} with nothing pending or scheduled to wake it"
            )
        target_ns = min(t for t in (next_event, self._deadline_ns) if t is not None)
        target = self.clock.cycles_at(target_ns)
        if target > self._cycles:
            self.idle_cycles += target - self._cycles
            self._cycles = target
        if next_event is None or (self._deadline_ns is not None and self._deadline_ns < next_event):
            return self._stop(StopKind.TIMEOUT, f"max_ns of virtual time elapsed (core idle in {what})")
        return None

    # -- inspection ----------------------------------------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        """Host-side read of RAM, windows (enabled or not) and MMIO models; never faults the CPU."""
        return self.memory.host_read(address, size)

    def read_u32(self, address: int) -> int:
        """Host-side little-endian 32-bit read (see :meth:`read_memory`)."""
        return int.from_bytes(self.memory.host_read(address, 4), "little")

    def write_memory(self, address: int, data: bytes) -> None:
        """Host-side write (RAM, window buffers, MMIO models); translated code is kept coherent."""
        self.memory.host_write(address, data)

    def read_register(self, name: str) -> int:
        """A core register by name (r0-r12, sp, lr, pc, xpsr, msp, psp, primask, control, s0, d0...)."""
        if name.lower() in _PRIVILEGED_REGISTERS:
            with self.exceptions.privileged():
                return self.registers.read(name)
        return self.registers.read(name)

    def write_register(self, name: str, value: int) -> None:
        if self._running:
            raise EngineError("registers can only be written between runs")
        if name.lower() in _PRIVILEGED_REGISTERS:
            with self.exceptions.privileged():
                self.registers.write(name, value)
        else:
            self.registers.write(name, value)
        self._idle_mode = None  # the core may be somewhere else now: let it run

    def cpu_state(self) -> dict[str, int]:
        """PC, LR, SP, xPSR and the fault status registers, for error messages."""
        pc, lr, sp, xpsr = self._stop_regs.read()
        cfsr, hfsr, bfar, mmfar = self._fault_regs
        return {
            "pc": pc,
            "lr": lr,
            "sp": sp,
            "xpsr": xpsr,
            "cfsr": cfsr.value,
            "hfsr": hfsr.value,
            "bfar": bfar.value,
            "mmfar": mmfar.value,
        }

    @property
    def sleeping(self) -> bool:
        """True while the core waits in WFI/WFE or spins on a branch-to-self."""
        return self._idle_mode is not None

    @property
    def locked_up(self) -> bool:
        return self._lockup is not None
