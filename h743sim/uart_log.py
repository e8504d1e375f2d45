"""What the board prints on a USART, as lines, with positions for "wait for the next match"."""

from __future__ import annotations

import re
from collections.abc import Callable


class UartLog:
    """Collects transmitted bytes; complete lines are kept with the virtual time they ended.

    ``sync``, when set, is called before the bytes of an unfinished line are read (``partial``,
    ``raw``, ``tail``): a USART that delivers them lazily hands over those already sent by now.
    Complete lines need no sync (the USART delivers a line when its newline ends)."""

    def __init__(self, echo=None) -> None:  # noqa: ANN001 - a callable(str) or None
        self.lines: list[tuple[int, str]] = []  # (virtual ns, text without line ending)
        self._partial = bytearray()
        self.cursor = 0  # index of the first line not yet consumed by a wait
        self.echo = echo
        self._raw = bytearray()
        self.sync: Callable[[], None] | None = None

    @property
    def raw(self) -> bytearray:
        if self.sync is not None:
            self.sync()
        return self._raw

    def feed(self, byte: int, now_ns: int) -> None:
        """One transmitted byte; ``now_ns`` is the virtual time its stop bit ended."""
        self._raw.append(byte)
        if byte == 0x0A:
            text = self._partial.decode("utf-8", "replace").rstrip("\r")
            self._partial.clear()
            self.lines.append((now_ns, text))
            if self.echo is not None:
                self.echo(text)
        else:
            self._partial.append(byte)

    @property
    def partial(self) -> str:
        if self.sync is not None:
            self.sync()
        return self._partial.decode("utf-8", "replace")

    def find(self, pattern: re.Pattern[str], *, consume: bool = True) -> str | None:
        """First line at or after the cursor matching ``pattern`` (the cursor moves past it)."""
        for i in range(self.cursor, len(self.lines)):
            if pattern.search(self.lines[i][1]):
                if consume:
                    self.cursor = i + 1
                return self.lines[i][1]
        return None

    def tail(self, n: int = 10) -> list[str]:
        if self.sync is not None:
            self.sync()
        out = [t for _, t in self.lines[-n:]]
        if self._partial:
            out.append(self.partial + " <no newline yet>")
        return out

    def text(self) -> str:
        return "\n".join(t for _, t in self.lines)

    def clear(self) -> None:
        self.lines.clear()
        self._partial.clear()
        self.cursor = 0
        self._raw.clear()
