"""The board as a GDB target (:class:`h743sim.gdbserver.DebugTarget`) on the embedded engine.

Breakpoints are unicorn code hooks on single addresses: the hook stops the CPU before the
instruction executes (the engine's breakpoint stop), so nothing is written into flash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import unicorn.unicorn_const as ucc

from h743sim.engine.stop import StopKind

CORE_REGISTERS = (
    "r0",
    "r1",
    "r2",
    "r3",
    "r4",
    "r5",
    "r6",
    "r7",
    "r8",
    "r9",
    "r10",
    "r11",
    "r12",
    "sp",
    "lr",
    "pc",
)
RUN_STEP_NS = 5_000_000  # between two checks for a GDB interrupt: 5 ms of virtual time


class BoardDebugTarget:
    def __init__(self, board: Any, *, timeout_ns: int | None = None) -> None:
        self.board = board
        self.machine = board.machine
        self.timeout_ns = timeout_ns
        self._hooks: dict[int, int] = {}
        self._skip_pc: int | None = None

    # -- registers and memory ---------------------------------------------------------------
    def read_core_registers(self) -> list[int]:
        regs = [self.machine.read_register(n) for n in CORE_REGISTERS]
        return [*regs, self.machine.read_register("xpsr")]

    def write_core_register(self, index: int, value: int) -> None:
        name = (*CORE_REGISTERS, "xpsr")[index]
        self.machine.write_register(name, value & 0xFFFFFFFF)

    def read_memory(self, address: int, length: int) -> bytes:
        return self.machine.read_memory(address, length)

    def write_memory(self, address: int, data: bytes) -> None:
        self.machine.write_memory(address, data)

    # -- breakpoints --------------------------------------------------------------------------
    def _hit(self, uc: Any, address: int, _size: int, _user: Any) -> None:
        if address == self._skip_pc:
            return
        self.machine._breakpoint = address  # the engine's own breakpoint stop
        uc.emu_stop()

    def add_breakpoint(self, address: int) -> None:
        address &= ~1
        if address not in self._hooks:
            self._hooks[address] = self.machine.uc.hook_add(
                ucc.UC_HOOK_CODE, self._hit, begin=address, end=address
            )

    def remove_breakpoint(self, address: int) -> None:
        handle = self._hooks.pop(address & ~1, None)
        if handle is not None:
            self.machine.uc.hook_del(handle)

    # -- execution ----------------------------------------------------------------------------
    def _reason(self, kind: StopKind) -> str:
        return {
            StopKind.BREAKPOINT: "breakpoint",
            StopKind.INSTRUCTION_LIMIT: "step",
            StopKind.POWER_OFF: "power_off",
            StopKind.LOCKUP: "fault",
            StopKind.ERROR: "fault",
        }.get(kind, "interrupted")

    def step(self) -> str:
        self._skip_pc = self.machine.read_register("pc") & ~1
        try:
            stop = self.machine.run(max_instructions=1)
        finally:
            self._skip_pc = None
        return self._reason(stop.kind)

    def resume(self, should_stop: Callable[[], bool]) -> str:
        pc = self.machine.read_register("pc") & ~1
        if pc in self._hooks:  # leave the breakpoint we are sitting on
            reason = self.step()
            if reason != "step":
                return reason
        spent = 0
        while True:
            stop = self.machine.run(max_ns=RUN_STEP_NS)
            spent += RUN_STEP_NS
            if stop.kind is not StopKind.TIMEOUT:
                return self._reason(stop.kind)
            if should_stop():
                return "interrupted"
            if self.timeout_ns is not None and spent >= self.timeout_ns:
                return "interrupted"
