"""Things wired to GPIO pins on the DevEBox board: the user LED and the K2 push button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from peripherals.host import Host


class GpioPortLike(Protocol):
    def drive(self, pin: int, level: int | None) -> None: ...

    def output(self, pin: int) -> int | None: ...

    def on_output_change(self, callback: Callable[[int, int], None]) -> None: ...


class Led:
    """An LED on an output pin; records its on/off history in virtual time."""

    def __init__(self, host: Host, port: GpioPortLike, pin: int, activeLow: bool = False) -> None:  # noqa: N803
        self.host = host
        self.port = port
        self.pin = pin
        self.active_low = bool(activeLow)
        self.history: list[tuple[int, bool]] = []  # (virtual ns, lit)
        port.on_output_change(self._changed)

    def _lit_for(self, level: int | None) -> bool:
        if level is None:
            return False
        return (level == 0) if self.active_low else (level == 1)

    @property
    def lit(self) -> bool:
        return self._lit_for(self.port.output(self.pin))

    def _changed(self, pin: int, level: int) -> None:
        if pin != self.pin:
            return
        lit = self._lit_for(level)
        if not self.history or self.history[-1][1] != lit:
            self.history.append((self.host.now_ns(), lit))

    def toggles(self) -> int:
        return max(0, len(self.history) - 1)

    def reset(self) -> None:
        self.history.clear()


class Button:
    """A push button between a pin and ground: pressed drives the pin low, released floats."""

    def __init__(self, host: Host, port: GpioPortLike, pin: int) -> None:
        self.host = host
        self.port = port
        self.pin = pin
        self.pressed = False

    def press(self) -> None:
        self.pressed = True
        self.port.drive(self.pin, 0)

    def release(self) -> None:
        self.pressed = False
        self.port.drive(self.pin, None)

    def reset(self) -> None:
        # a held button stays held across a board reset
        self.port.drive(self.pin, 0 if self.pressed else None)
