"""Recognises firmware that is provably just polling one MMIO register.

The proof: the same register read returns the same value again and again, no other MMIO access
happens in between, and the integer registers (r0-r12, sp, lr, pc, xpsr) are identical at each
read. Code that satisfies that is a loop whose state does not change until the register does, so
virtual time can jump to the next event without changing what the firmware observes. The register
snapshot is only taken once the cheap conditions hold, and less and less often in loops that
turned out to change state (for example a timeout counter), so ordinary code pays almost nothing.
"""

from __future__ import annotations

from collections.abc import Callable

STREAK_BEFORE_SNAPSHOT = 2  # identical reads before registers are compared
CONFIRMATIONS = 2  # further identical register snapshots needed
MAX_BACKOFF = 1024  # after a busy loop was seen, snapshot only every n-th identical read


class PollDetector:
    def __init__(self, snapshot: Callable[[], tuple[int, ...]]) -> None:
        self._snapshot = snapshot
        self._backoff = 0
        self._skip = 0
        self._restart()

    def reset(self) -> None:
        self._backoff = 0
        self._skip = 0
        self._restart()

    def _restart(self) -> None:
        self._address = -1
        self._value = -1
        self._streak = 0
        self._regs: tuple[int, ...] | None = None
        self._confirmed = 0

    def other_access(self) -> None:
        """Any MMIO write or window access breaks the pattern."""
        if self._streak:
            self._restart()
        else:
            self._address = -1

    def read(self, address: int, value: int) -> bool:
        """An MMIO read completed; True when the firmware is provably idle-polling it."""
        if address != self._address or value != self._value:
            # _restart() inlined: this is the common case, once per MMIO read
            if address != self._address:
                self._backoff = self._skip = 0  # another register, another loop
            self._address = address
            self._value = value
            if self._streak:
                self._streak = 0
                self._regs = None
                self._confirmed = 0
            return False
        self._streak += 1
        if self._streak < STREAK_BEFORE_SNAPSHOT:
            return False
        if self._skip:
            self._skip -= 1
            return False
        regs = self._snapshot()
        if self._regs is not None and regs == self._regs:
            self._confirmed += 1
        else:
            if self._regs is not None:
                # the loop changes state between reads: look again later, less and less often
                self._backoff = min(MAX_BACKOFF, 2 * self._backoff or 1)
                self._skip = self._backoff
            self._confirmed = 0
        self._regs = regs
        if self._confirmed >= CONFIRMATIONS:
            self._backoff = 0
            self._restart()
            return True
        return False
