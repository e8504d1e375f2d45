"""Virtual time: core cycles since power-on, mapped to nanoseconds at the current core clock.

One executed instruction is one cycle; sleeping (WFI) and provably idle polling add cycles without
instructions. The core clock may change (the firmware switches to the PLL): the mapping is then
re-based at the current cycle so time stays continuous and integer-exact (no float drift).
"""

from __future__ import annotations

NS_PER_S = 1_000_000_000


class VirtualClock:
    """Converts between the core cycle count and virtual nanoseconds."""

    def __init__(self, hz: int) -> None:
        if hz <= 0:
            raise ValueError(f"core clock must be positive, got {hz} Hz")
        self.hz = int(hz)
        self._base_cycles = 0
        self._base_ns = 0

    def ns_at(self, cycles: int) -> int:
        """Virtual time (ns) when the cycle counter reads ``cycles`` (at the current clock)."""
        return self._base_ns + (cycles - self._base_cycles) * NS_PER_S // self.hz

    def cycles_at(self, ns: int) -> int:
        """The first cycle count whose time is at or after ``ns``."""
        delta = ns - self._base_ns
        if delta <= 0:
            return self._base_cycles + (delta * self.hz) // NS_PER_S
        return self._base_cycles + -(-(delta * self.hz) // NS_PER_S)

    def set_hz(self, hz: int, at_cycles: int) -> bool:
        """Change the clock from cycle ``at_cycles`` on; returns True when it changed."""
        hz = int(hz)
        if hz <= 0:
            raise ValueError(f"core clock must be positive, got {hz} Hz")
        if hz == self.hz:
            return False
        self._base_ns = self.ns_at(at_cycles)
        self._base_cycles = at_cycles
        self.hz = hz
        return True
