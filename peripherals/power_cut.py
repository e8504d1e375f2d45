"""When the board loses power during flash operations (fault injection).

One :class:`PowerCutPlan` is shared by all memory models of a board. Each model announces every
program/erase operation it starts; the plan answers whether power fails while it is in flight and
at which offset into it. The model then leaves the operation torn at that point (see its own
docs for the pattern) and calls ``host.power_off``.

Operation names are ``<memory>.<kind>``: ``qspi.page_program``, ``qspi.sector_erase``,
``qspi.block_erase_32k``, ``qspi.block_erase_64k``, ``qspi.chip_erase``, ``qspi.write_status``,
``flash.program``, ``flash.sector_erase``, ``flash.bank_erase``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field


@dataclass
class PowerCutPlan:
    #: cut during the operation that follows ``after_ops`` completed operations (0 = the first)
    after_ops: int | None = None
    #: cut at this virtual time (ns); the board powers off then even if nothing is in flight
    at_ns: int | None = None
    #: cut during the first operation whose name matches this glob (e.g. ``qspi.*erase*``)
    on_event: str | None = None
    #: where inside the chosen operation the cut falls, as a fraction of its duration
    fraction: float = 0.5
    operations_seen: int = 0
    fired: bool = False
    log: list[str] = field(default_factory=list)

    @property
    def armed(self) -> bool:
        return not self.fired and (
            self.after_ops is not None or self.at_ns is not None or self.on_event is not None
        )

    def on_operation(self, name: str, start_ns: int, duration_ns: int) -> int | None:
        """A model starts operation ``name`` lasting ``duration_ns``.

        Returns None when it completes normally, else the offset (ns, ``0 <= offset <
        max(duration_ns, 1)``) at which power fails.
        """
        index = self.operations_seen
        self.operations_seen += 1
        self.log.append(name)
        if self.fired:
            return None
        offset: int | None = None
        dur = max(int(duration_ns), 1)
        if self.after_ops is not None and index == self.after_ops:
            offset = int(dur * self.fraction)
        elif self.on_event is not None and fnmatch.fnmatchcase(name, self.on_event):
            offset = int(dur * self.fraction)
        elif self.at_ns is not None and start_ns <= self.at_ns < start_ns + dur:
            offset = self.at_ns - start_ns
        if offset is None:
            return None
        self.fired = True
        return min(max(offset, 0), dur - 1)

    def describe(self) -> str:
        parts = []
        if self.after_ops is not None:
            parts.append(f"after {self.after_ops} flash operations")
        if self.at_ns is not None:
            parts.append(f"at t={self.at_ns} ns")
        if self.on_event is not None:
            parts.append(f"on {self.on_event}")
        return "power cut " + (" or ".join(parts) if parts else "not armed")
