"""Renode-facing wrappers: a CPython model as a Renode bus peripheral, and callback safety.

Facts this follows (EMULATION.md §4): the class must list the whole interface chain and be
defined once per process (module level); any exception escaping a callback that Renode calls on
an emulation thread kills the process, so every callback catches, logs and returns a safe value.
Importing this module requires pyrenode3 to be loaded first (see :mod:`h743sim.renode.board`).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from Antmicro.Renode.Core import IPeripheral  # type: ignore[import-not-found]  # noqa: F401
from Antmicro.Renode.Peripherals import IKnownSize  # type: ignore[import-not-found]
from Antmicro.Renode.Peripherals.Bus import (  # type: ignore[import-not-found]
    IBusPeripheral,
    IBytePeripheral,
    IDoubleWordPeripheral,
    IWordPeripheral,
)

log = logging.getLogger("h743sim.renode")


def guarded(what: str, fn: Callable[..., Any], default: Any = None) -> Callable[..., Any]:
    """Wrap a callback Renode will call so that no Python exception can escape into Mono."""

    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - an escaping exception would kill Renode
            log.error("%s failed:\n%s", what, traceback.format_exc())
            return default

    return call


class ModelPeripheral(IBytePeripheral, IWordPeripheral, IDoubleWordPeripheral, IBusPeripheral, IKnownSize):
    """Routes Renode bus accesses of every width to ``model.read/write(offset, size, value)``."""

    __namespace__ = "H743Sim.Peripherals"

    def __init__(self, model: Any, size: int, before_access: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._model = model
        self._size = size
        name = type(model).__name__
        sync = before_access or (lambda: None)

        def read(off: int, n: int) -> int:
            sync()
            return int(model.read(int(off), n)) & ((1 << (8 * n)) - 1)

        def write(off: int, n: int, v: int) -> None:
            sync()
            model.write(int(off), n, int(v))

        self._read = guarded(f"{name} read", read, 0)
        self._write = guarded(f"{name} write", write)
        self._reset = guarded(f"{name} reset", model.reset)

    # IKnownSize
    @property
    def Size(self) -> int:  # noqa: N802 - Renode's name
        return self._size

    def Reset(self) -> None:  # noqa: N802
        self._reset()

    def ReadByte(self, offset):  # noqa: N802
        return self._read(offset, 1)

    def WriteByte(self, offset, value):  # noqa: N802
        self._write(offset, 1, value)

    def ReadWord(self, offset):  # noqa: N802
        return self._read(offset, 2)

    def WriteWord(self, offset, value):  # noqa: N802
        self._write(offset, 2, value)

    def ReadDoubleWord(self, offset):  # noqa: N802
        return self._read(offset, 4)

    def WriteDoubleWord(self, offset, value):  # noqa: N802
        self._write(offset, 4, value)
