"""Why :meth:`h743sim.engine.machine.Machine.run` returned."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class StopKind(enum.Enum):
    CONDITION = "condition"  # the until() callable returned true
    REQUESTED = "requested"  # host code called Machine.request_stop()
    TIMEOUT = "timeout"  # max_ns of virtual time elapsed
    INSTRUCTION_LIMIT = "instruction_limit"  # max_instructions executed
    SLEEPING = "sleeping"  # WFI with nothing scheduled that could ever wake the core
    LOCKUP = "lockup"  # fault while a fault could not be taken (ARMv7-M lockup)
    POWER_OFF = "power_off"  # a model cut the power (fault injection)
    BREAKPOINT = "breakpoint"  # BKPT executed with Machine.halt_on_bkpt set
    ERROR = "error"  # a model or the engine raised; the run cannot continue


@dataclass(frozen=True)
class StopReason:
    kind: StopKind
    message: str
    time_ns: int
    instructions: int
    cpu: dict[str, int] = field(default_factory=dict)
    error: BaseException | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True for the stops a caller asks for (condition, request, time or instruction budget)."""
        return self.kind in (
            StopKind.CONDITION,
            StopKind.REQUESTED,
            StopKind.TIMEOUT,
            StopKind.INSTRUCTION_LIMIT,
        )

    def __str__(self) -> str:
        regs = " ".join(f"{k}={v:#010x}" for k, v in self.cpu.items())
        return (
            f"{self.kind.value} at {self.time_ns} ns after {self.instructions} instructions: {self.message}"
            + (f" [{regs}]" if regs else "")
        )


class EngineError(RuntimeError):
    """Misuse of the engine API (bad argument, impossible state)."""
