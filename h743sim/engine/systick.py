"""SysTick: the Cortex-M 24-bit down-counter (0xE000E010, ARMv7-M B3.3).

The counter is not stepped: its value is derived from the core cycle count, so CVR reads are
exact at any instruction. With TICKINT each 1 -> 0 transition is a scheduled event that pends
exception 15; COUNTFLAG is derived from the count too (a transition since it was last cleared),
so a counter without TICKINT schedules nothing and cannot keep a sleeping core's run alive.
Counting from 0 reloads RVR on the next tick (period RVR+1); RVR = 0 stops the counter at 0. Writing CVR clears it and COUNTFLAG. CLKSOURCE=1 counts core
cycles; CLKSOURCE=0 the external reference, which the STM32H7 RCC derives as core clock / 8 [U].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from peripherals.host import Host, Timer
from peripherals.registers import Access, Peripheral

EXTERNAL_DIVIDER = 8
CSR_RESET = 0x00000004  # CLKSOURCE = processor clock [U: ST PM0253 reset value]
CALIB_VALUE = 0x40000000  # NOREF=0, SKEW=1, TENMS=0 (no calibration value given) [U]
_MAX = 0xFFFFFF


class CycleTime(Protocol):
    """The machine's core-cycle clock."""

    def now_cycles(self) -> int: ...

    def schedule_at_cycle(self, cycle: int, callback: Callable[[], None], name: str = "") -> Timer: ...


class SysTick(Peripheral):
    size = 0x10

    def __init__(self, host: Host, clock: CycleTime, pend: Callable[[], None]) -> None:
        super().__init__(host, "SysTick")
        self._clock = clock
        self._pend = pend
        self._timer: Timer | None = None
        csr = self.regs.define(0x0, "CSR", reset=CSR_RESET, on_write=self._csr_written)
        csr.field(0, 1, "ENABLE").field(1, 1, "TICKINT").field(2, 1, "CLKSOURCE")
        csr.field(16, 1, "COUNTFLAG", access=Access.RO, on_read=self._read_countflag)
        self.regs.define(0x4, "RVR", on_write=self._rvr_written).field(0, 24, "RELOAD")
        self.regs.define(0x8, "CVR", on_read=lambda _v: self.current(), on_write=self._cvr_written).field(
            0, 24, "CURRENT"
        )
        self.regs.define(0xC, "CALIB", reset=CALIB_VALUE, access=Access.RO)
        self.reset()

    def reset(self) -> None:
        super().reset()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._running = False
        self._ext = False
        self._anchor_tick = 0
        self._anchor_value = 0
        self._held = 0
        self._countflag = False
        self._flag_from_tick = 0  # transitions after this tick set COUNTFLAG

    # -- time base -----------------------------------------------------------------------------
    def _ticks(self, cycles: int) -> int:
        return cycles // EXTERNAL_DIVIDER if self._ext else cycles

    def _cycle_of_tick(self, tick: int) -> int:
        return tick * EXTERNAL_DIVIDER if self._ext else tick

    def _reload(self) -> int:
        return self.regs["RVR"]["RELOAD"]

    def _value_at(self, tick: int, reload: int | None = None) -> int:
        k = tick - self._anchor_tick
        v0 = self._anchor_value
        if k <= v0:
            return v0 - k
        rvr = self._reload() if reload is None else reload
        if rvr == 0:
            return 0
        return rvr - (k - v0 - 1) % (rvr + 1)

    def _next_wrap(self, after_tick: int) -> int | None:
        """First tick > ``after_tick`` at which the counter goes from 1 to 0."""
        first = self._anchor_tick + self._anchor_value if self._anchor_value > 0 else None
        if first is not None and first > after_tick:
            return first
        rvr = self._reload()
        if rvr == 0:
            return None
        start = self._anchor_tick + self._anchor_value + 1 + rvr  # first wrap after a reload
        if start > after_tick:
            return start
        period = rvr + 1
        n = (after_tick - start) // period + 1
        return start + n * period

    def current(self) -> int:
        if not self._running:
            return self._held
        return self._value_at(self._now_tick())

    def _now_tick(self) -> int:
        return self._ticks(self._clock.now_cycles())

    def _fold_countflag(self) -> None:
        """Latch COUNTFLAG for the transitions since it was last looked at; call before the
        count's anchor changes (the next-wrap arithmetic follows the current anchor)."""
        now = self._now_tick()
        if self._running and not self._countflag:
            wrap = self._next_wrap(self._flag_from_tick)
            if wrap is not None and wrap <= now:
                self._countflag = True
        self._flag_from_tick = now

    def _anchor(self, value: int) -> None:
        self._anchor_tick = self._now_tick()
        self._anchor_value = value & _MAX
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not (self._running and self.regs["CSR"]["TICKINT"]):
            return  # nothing to deliver: COUNTFLAG is computed when read
        tick = self._next_wrap(self._now_tick())
        if tick is not None:
            self._timer = self._clock.schedule_at_cycle(self._cycle_of_tick(tick), self._wrapped, "systick")

    def _wrapped(self) -> None:
        # scheduled only with TICKINT (every CSR write reschedules); COUNTFLAG is derived
        self._timer = None
        self._pend()
        self._schedule()

    def clock_changed(self) -> None:
        """The core clock changed: the next wrap falls at another virtual time."""
        self._schedule()

    # -- register callbacks ----------------------------------------------------------------
    def _read_countflag(self) -> int:
        self._fold_countflag()
        flag = int(self._countflag)
        self._countflag = False  # COUNTFLAG clears when CSR is read
        return flag

    def _csr_written(self, old: int, new: int) -> None:
        self._fold_countflag()
        value = self.current()
        self._running = bool(new & 1)
        self._ext = not (new & 4)
        self._flag_from_tick = self._now_tick()  # in the (possibly new) clock source's ticks
        if self._running:
            self._anchor(value)
        else:
            self._held = value
            self._schedule()

    def _rvr_written(self, old: int, _new: int) -> None:
        # a new RELOAD takes effect at the next reload: the count in progress (reloads done
        # so far included) still follows the old value
        if self._running:
            self._fold_countflag()
            self._anchor(self._value_at(self._now_tick(), old & _MAX))

    def _cvr_written(self, _old: int, _new: int) -> None:
        self._countflag = False
        self._flag_from_tick = self._now_tick()
        self.regs["CVR"].value = 0
        self._held = 0
        if self._running:
            self._anchor(0)
