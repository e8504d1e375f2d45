"""The DevEBox board on Renode 1.16.1 through pyrenode3, with our CPython models on its bus.

Renode loads `platforms/devebox_h743.repl` itself (CPU, NVIC, memories, GPIO, USART: Renode's own
models). The entries tagged `//h743sim:` are created here with :mod:`h743sim.board_models`, the
same builder the embedded engine uses, and registered on Renode's system bus as CPython
peripherals. Not runnable on machines without Renode: :func:`availability.missing_reason` tells.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from h743sim.errors import UserError
from h743sim.platform import DEFAULT_PLATFORM, parse_platform
from h743sim.renode.availability import missing_reason

log = logging.getLogger("h743sim.renode")


def _prepare_process() -> None:
    # Without preemptive suspend, Mono's GC and the GIL deadlock (EMULATION.md §4).
    os.environ.setdefault("MONO_THREADS_SUSPEND", "preemptive")
    # Renode deletes every $TMPDIR/renode-* it does not own: give it a directory of its own.
    if "H743SIM_RENODE_TMP" not in os.environ:
        d = tempfile.mkdtemp(prefix="h743sim-renode-tmp-")
        os.environ["H743SIM_RENODE_TMP"] = d
        os.environ["TMPDIR"] = d


class RenodeBoard:
    """A Renode machine running the board; the windows of our models are Renode memories."""

    def __init__(
        self,
        platform: Path = DEFAULT_PLATFORM,
        *,
        timing: str = "datasheet",
        seed: int = 0,
        state_dir: Path | None = None,
    ) -> None:
        reason = missing_reason()
        if reason:
            raise UserError(reason)
        _prepare_process()
        from pyrenode3.wrappers import Emulation  # type: ignore[import-not-found]

        from h743sim import board_models
        from h743sim.renode.bridge import ModelPeripheral
        from h743sim.renode.host import RenodeHost

        self.platform = parse_platform(platform)
        self.emulation = Emulation()
        self.mach = self.emulation.add_mach("devebox")
        self.mach.load_repl(str(Path(platform).resolve()))
        self.machine = self.mach.internal
        self.cpu = self.mach.sysbus.cpu.internal
        self.nvic = self.mach.sysbus.nvic.internal
        self.windows: dict[str, dict[str, Any]] = {}
        self.powered_off: str | None = None
        self._hooks: list[Any] = []

        self.models = board_models.build_tagged_models(
            self.platform,
            host_factory=lambda name: RenodeHost(self, name),
            timing=timing,
            seed=seed,
            native=self._native_parent,
        )
        from Antmicro.Renode.Peripherals.Bus import BusRangeRegistration  # type: ignore[import-not-found]

        self._bridges = []
        for entry in self.platform.entries.values():
            model = self.models.get(entry.name)
            if model is None or entry.bus != "sysbus" or entry.address is None:
                continue
            bridge = ModelPeripheral(model, entry.size)
            self._bridges.append(bridge)
            self.machine.SystemBus.Register(bridge, BusRangeRegistration(entry.address, entry.size))
            self.machine.SetLocalName(bridge, entry.name)
        if state_dir is not None:
            from h743sim.storage import StateDir

            self.state = StateDir(Path(state_dir))
            self.state.load_into(self.models["flash"], self.models["qspiFlash"])
        else:
            self.state = None

    # -- wiring to Renode-native peripherals ------------------------------------------------
    def _native_parent(self, name: str) -> Any:
        """A Renode peripheral a tagged entry attaches to (the LED and K2 on GPIO ports)."""
        return _RenodeGpioPort(getattr(self.mach.sysbus, name).internal)

    # -- windows ----------------------------------------------------------------------------
    def publish_window(self, name: str, base: int, buffer: bytearray, on_write: Any) -> None:
        from h743sim.renode.host import copy_into_memory

        w = self.windows.get(name)
        if w is None:
            desc = f"{name}: Memory.MappedMemory @ sysbus {base:#x}\n    size: {len(buffer):#x}\n"
            self.machine.LoadPlatformDescriptionFromString(desc)
            mem = getattr(self.mach.sysbus, name).internal
            w = {"base": base, "buffer": buffer, "memory": mem, "registered": True, "on_write": on_write}
            self.windows[name] = w
        elif not w["registered"]:
            from Antmicro.Renode.Peripherals.Bus import BusRangeRegistration  # type: ignore[import-not-found]

            self.machine.SystemBus.Register(w["memory"], BusRangeRegistration(base, len(buffer)))
            w["registered"] = True
        copy_into_memory(w["memory"], 0, buffer, 0, len(buffer))

    def withdraw_window(self, name: str) -> None:
        w = self.windows.get(name)
        if w and w["registered"]:
            self.machine.SystemBus.Unregister(w["memory"])
            w["registered"] = False

    def refresh_window_range(self, base: int, size: int) -> None:
        from h743sim.renode.host import copy_into_memory

        for w in self.windows.values():
            start = max(base, w["base"])
            end = min(base + size, w["base"] + len(w["buffer"]))
            if start < end and w["registered"]:
                copy_into_memory(w["memory"], start - w["base"], w["buffer"], start - w["base"], end - start)

    def add_read_watch(self, base: int, size: int, handler: Any) -> Any:
        from Antmicro.Renode.Peripherals.Bus import Access, SysbusAccessWidth  # type: ignore[import-not-found]

        from h743sim.renode.bridge import guarded

        sysbus = self.machine.SystemBus
        hooks = []
        for addr in range(base, base + size, 4):

            def hook(_cpu, address, _width, _value, _a=addr):  # noqa: ANN001
                reason = handler(int(address) - base, 4)
                if reason:
                    log.error("read of %#010x: %s", int(address), reason)

            h = guarded("read watch", hook)
            sysbus.AddWatchpointHook(addr, SysbusAccessWidth.DoubleWord, Access.Read, h)
            hooks.append((addr, h))
        self._hooks.extend(hooks)

        def remove() -> None:
            for addr, h in hooks:
                sysbus.RemoveWatchpointHook(addr, h)

        return remove

    def request_power_off(self, reason: str) -> None:
        self.powered_off = reason
        self.emulation.PauseAll()

    # -- running ----------------------------------------------------------------------------
    def load_elf(self, path: Path) -> None:
        self.mach.load_elf(str(path))
        # Renode takes the vector table from the first loaded section: set it explicitly.
        self.cpu.VectorTableOffset = 0x08000000

    def save(self) -> None:
        if self.state is not None:
            self.state.save_from(self.models["flash"], self.models["qspiFlash"])


class _RenodeGpioPort:
    """The subset of our GPIO port interface the LED and button need, on Renode's GPIO port."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self._listeners: list[Any] = []

    def drive(self, pin: int, level: int | None) -> None:
        # a floating input reads 1 with the firmware's pull-up: Renode has no pulls, drive high
        self.port.OnGPIO(pin, bool(1 if level is None else level))

    def output(self, pin: int) -> int | None:
        return int(bool(self.port.Connections[pin].IsSet))

    def on_output_change(self, callback: Any) -> None:
        self._listeners.append(callback)
