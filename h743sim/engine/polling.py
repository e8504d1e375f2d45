"""Recognises firmware that is provably just polling one MMIO register.

The proof: the same register read returns the same value again and again, no other MMIO access
happens in between, the same number of instructions separates the reads, and the integer
registers (r0-r12, sp, lr, pc, xpsr) are identical at each read. Code that satisfies that is a
loop whose state does not change until the register does, so virtual time can jump to the next
event without changing what the firmware observes. The register snapshot is only taken once the
cheap conditions hold, so ordinary code pays almost nothing.
"""

from __future__ import annotations

from collections.abc import Callable

STREAK_BEFORE_SNAPSHOT = 2  # identical reads before registers are compared
CONFIRMATIONS = 2  # identical register snapshots needed


class PollDetector:
    def __init__(self, snapshot: Callable[[], tuple[int, ...]], instructions: Callable[[], int]) -> None:
        self._snapshot = snapshot
        self._instructions = instructions
        self.reset()

    def reset(self) -> None:
        self._address = -1
        self._value = -1
        self._streak = 0
        self._regs: tuple[int, ...] | None = None
        self._at = 0
        self._gap = -1
        self._confirmed = 0

    def other_access(self) -> None:
        """Any MMIO write or window access breaks the pattern."""
        if self._streak:
            self.reset()
        else:
            self._address = -1

    def read(self, address: int, value: int) -> bool:
        """An MMIO read completed; True when the firmware is provably idle-polling it."""
        if address != self._address or value != self._value:
            self._address = address
            self._value = value
            self._streak = 0
            self._regs = None
            self._confirmed = 0
            return False
        self._streak += 1
        if self._streak < STREAK_BEFORE_SNAPSHOT:
            return False
        regs = self._snapshot()
        now = self._instructions()
        gap = now - self._at
        if self._regs is not None and regs == self._regs and gap == self._gap:
            self._confirmed += 1
        else:
            self._confirmed = 0
        self._regs = regs
        self._gap = gap
        self._at = now
        if self._confirmed >= CONFIRMATIONS:
            self.reset()
            return True
        return False
