"""One STM32H743 GPIO port (GPIOA..GPIOK at 0x58020000 + 0x400 * n; RM0433 chapter 11).

Registers: MODER, OTYPER, OSPEEDR, PUPDR, IDR, ODR, BSRR, LCKR, AFRL, AFRH. Reset values differ per
port: A and B come out of reset with their debug pins (PA13/PA14/PA15, PB3/PB4) in alternate
function with pulls; every other pin is analog (FACTS §A.3).

The outside world (board wiring, tests) uses:
- :meth:`drive` — an external circuit drives a pin high/low, or lets it float (None);
- :meth:`output` — what the port drives on a pin: 0/1, or None when it does not drive it;
- :meth:`on_output_change` — ``callback(pin, level)`` each time :meth:`output` of a pin changes.

IDR per pin: analog pins read 0 (Schmitt trigger off); a push-pull output reads its ODR bit; an
open-drain output reads 0 while pulling low, else the line; inputs (and alternate-function pins)
read the external drive, else the pull-up (1) / pull-down (0), else ``floating_level``.
"""

from __future__ import annotations

from collections.abc import Callable

from peripherals.host import WARNING, Host
from peripherals.registers import Access, Peripheral

PINS = 16
MODE_INPUT, MODE_OUTPUT, MODE_AF, MODE_ANALOG = 0, 1, 2, 3
PULL_NONE, PULL_UP, PULL_DOWN = 0, 1, 2

# (MODER, OSPEEDR, PUPDR) reset values; ports not listed use (0xFFFFFFFF, 0, 0).
_RESET_VALUES = {
    "A": (0xABFF_FFFF, 0x0C00_0000, 0x6400_0000),  # PA13 SWDIO, PA14 SWCLK, PA15 JTDI
    "B": (0xFFFF_FEBF, 0x0000_00C0, 0x0000_0100),  # PB3 JTDO/SWO, PB4 NJTRST
}
_PORTS = "ABCDEFGHIJK"
LCKK = 1 << 16

OutputListener = Callable[[int, "int | None"], None]
InputListener = Callable[[int, int], None]


class GpioPort(Peripheral):
    """One GPIO port; ``port`` is the letter A..K (it selects the reset values)."""

    size = 0x400

    def __init__(
        self,
        host: Host,
        *,
        port: str = "A",
        floating_level: int = 0,
        numberOfAFs: int = 16,  # noqa: N803 (Renode's property name)
        name: str | None = None,
    ) -> None:
        port = str(port).upper()
        if port not in _PORTS or len(port) != 1:
            raise ValueError(f"GPIO: port {port!r} does not exist on the STM32H743 (A..K)")
        if floating_level not in (0, 1):
            raise ValueError(f"GPIO{port}: floating_level must be 0 or 1, not {floating_level!r}")
        if numberOfAFs != 16:
            raise ValueError(f"GPIO{port}: the STM32H743 has 16 alternate functions, not {numberOfAFs}")
        super().__init__(host, name or f"GPIO{port}")
        self.port = port
        self.floating_level = floating_level
        self._external: list[int | None] = [None] * PINS
        self._listeners: list[OutputListener] = []
        self._input_listeners: list[InputListener] = []
        self._locked = 0  # pins whose configuration LCKR froze
        self._lock_step = 0  # progress through the LCKR key sequence
        self._lock_value = 0
        self._contention_logged: set[int] = set()
        self._define_registers()
        self._last_outputs = self._outputs()
        self._last_idr = self._idr()

    # ------------------------------------------------------------------ register map
    def _define_registers(self) -> None:
        moder, ospeedr, pupdr = _RESET_VALUES.get(self.port, (0xFFFF_FFFF, 0, 0))
        r = self.regs
        config = self._config_written
        for offset, name, reset, width in (
            (0x00, "MODER", moder, 2),
            (0x04, "OTYPER", 0, 1),
            (0x08, "OSPEEDR", ospeedr, 2),
            (0x0C, "PUPDR", pupdr, 2),
            (0x20, "AFRL", 0, 4),
            (0x24, "AFRH", 0, 4),
        ):
            reg = r.define(offset, name, reset=reset, on_write=lambda o, n, name=name: config(name, o, n))
            first_pin = 8 if name == "AFRH" else 0
            pins = 8 if name in ("AFRL", "AFRH") else PINS
            for i in range(pins):
                reg.field(i * width, width, f"{name}{first_pin + i}")
        r.define(0x10, "IDR", on_read=lambda _stored: self._idr()).field(0, 16, "IDR", access=Access.RO)
        r.define(0x14, "ODR", on_write=lambda o, n: self._outputs_may_change()).field(0, 16, "ODR")
        bsrr = r.define(0x18, "BSRR", on_write=self._bsrr_written)
        bsrr.field(0, 16, "BS", access=Access.WO).field(16, 16, "BR", access=Access.WO)
        lckr = r.define(0x1C, "LCKR", on_write=self._lckr_written)
        lckr.field(0, 16, "LCK", writable_when=lambda: not self.lock_active)
        lckr.field(16, 1, "LCKK", writable_when=lambda: not self.lock_active, on_read=self._lckk_read)

    # ------------------------------------------------------------------ external side
    def _check_pin(self, pin: int) -> int:
        if not isinstance(pin, int) or not 0 <= pin < PINS:
            raise ValueError(f"{self.name}: pin {pin!r} out of range 0..15")
        return pin

    def drive(self, pin: int, level: int | None) -> None:
        """An external circuit drives ``pin`` to ``level`` (0/1), or releases it (None)."""
        self._check_pin(pin)
        if level not in (0, 1, None):
            raise ValueError(f"{self.name}: drive level must be 0, 1 or None, not {level!r}")
        self._external[pin] = level
        self._inputs_may_change()

    def output(self, pin: int) -> int | None:
        """The level the port drives on ``pin``, or None when the pin is not driven by the port."""
        self._check_pin(pin)
        if self.mode(pin) != MODE_OUTPUT:
            return None
        level = (self.regs["ODR"].value >> pin) & 1
        if self.regs["OTYPER"].value >> pin & 1 and level:
            return None  # open drain released
        return level

    def on_output_change(self, callback: OutputListener) -> None:
        """Call ``callback(pin, level)`` whenever :meth:`output` of a pin changes."""
        self._listeners.append(callback)

    def on_input_change(self, callback: InputListener) -> None:
        """Call ``callback(pin, level)`` whenever the IDR bit of a pin changes (e.g. to feed EXTI)."""
        self._last_idr = self._idr()
        self._input_listeners.append(callback)

    def mode(self, pin: int) -> int:
        """MODER of a pin: 0 input, 1 output, 2 alternate function, 3 analog."""
        return (self.regs["MODER"].value >> (2 * self._check_pin(pin))) & 3

    def alternate_function(self, pin: int) -> int:
        """AFRL/AFRH number selected for a pin."""
        self._check_pin(pin)
        reg = self.regs["AFRL" if pin < 8 else "AFRH"]
        return (reg.value >> (4 * (pin % 8))) & 0xF

    def input_level(self, pin: int) -> int:
        """The level IDR shows for ``pin``."""
        return (self._idr() >> self._check_pin(pin)) & 1

    @property
    def lock_active(self) -> bool:
        return bool(self._locked) or self._lock_step == 4

    # ------------------------------------------------------------------ behaviour
    def _line_level(self, pin: int) -> int:
        ext = self._external[pin]
        if ext is not None:
            return ext
        pull = (self.regs["PUPDR"].value >> (2 * pin)) & 3
        if pull == PULL_UP:
            return 1
        if pull == PULL_DOWN:
            return 0
        return self.floating_level

    def _idr(self) -> int:
        value = 0
        for pin in range(PINS):
            mode = self.mode(pin)
            if mode == MODE_ANALOG:
                continue
            driven = self.output(pin) if mode == MODE_OUTPUT else None
            ext = self._external[pin]
            if (
                driven is not None
                and ext is not None
                and ext != driven
                and pin not in self._contention_logged
            ):
                self._contention_logged.add(pin)
                self.host.log(
                    WARNING, f"{self.name}: pin {pin} driven {driven} by the port and {ext} outside"
                )
            level = driven if driven is not None else self._line_level(pin)
            value |= level << pin
        return value

    def _outputs(self) -> list[int | None]:
        return [self.output(pin) for pin in range(PINS)]

    def _outputs_may_change(self) -> None:
        now = self._outputs()
        before, self._last_outputs = self._last_outputs, now
        for pin in range(PINS):
            if now[pin] != before[pin]:
                for cb in list(self._listeners):
                    cb(pin, now[pin])
        self._inputs_may_change()

    def _inputs_may_change(self) -> None:
        if not self._input_listeners:
            return
        now = self._idr()
        changed, self._last_idr = now ^ self._last_idr, now
        for pin in range(PINS):
            if changed >> pin & 1:
                for cb in list(self._input_listeners):
                    cb(pin, now >> pin & 1)

    def _config_written(self, name: str, old: int, new: int) -> None:
        if self._locked:
            # configuration bits of locked pins keep their value until reset
            width = {"MODER": 2, "OSPEEDR": 2, "PUPDR": 2, "OTYPER": 1}.get(name, 4)
            first = 8 if name == "AFRH" else 0
            frozen = 0
            for pin in range(PINS):
                if self._locked >> pin & 1 and first <= pin < first + 32 // width:
                    frozen |= ((1 << width) - 1) << ((pin - first) * width)
            self.regs[name].value = (new & ~frozen) | (old & frozen)
        if name in ("MODER", "OTYPER"):
            self._outputs_may_change()
        elif name == "PUPDR":
            self._inputs_may_change()

    def _bsrr_written(self, _old: int, new: int) -> None:
        odr = self.regs["ODR"]
        set_bits, reset_bits = new & 0xFFFF, (new >> 16) & 0xFFFF
        # BS has priority over BR for the same pin
        odr.value = ((odr.value & ~reset_bits) | set_bits) & 0xFFFF
        self.regs["BSRR"].value = 0
        self._outputs_may_change()

    # LCKR key: write LCKK=1+LCK, write LCKK=0+LCK, write LCKK=1+LCK, read -> locked.
    def _lckr_written(self, _old: int, new: int) -> None:
        if self.lock_active:
            return
        lck, lckk = new & 0xFFFF, bool(new & LCKK)
        step = self._lock_step
        if step in (0, 3) or (lckk and step != 2):
            step = 1 if lckk else 0
        elif step == 1 and not lckk and lck == self._lock_value:
            step = 2
        elif step == 2 and lckk and lck == self._lock_value:
            step = 3
        else:
            step = 0
        self._lock_step = step
        self._lock_value = lck

    def _lckk_read(self) -> int:
        if self._lock_step == 3:
            # the read completing the key sequence activates the lock
            self._lock_step = 4
            self._locked = self._lock_value
            self.regs["LCKR"].value = LCKK | self._lock_value
        return 1 if self.lock_active else 0

    def reset(self) -> None:
        self.regs.reset()
        self._locked = 0
        self._lock_step = 0
        self._lock_value = 0
        self._outputs_may_change()
