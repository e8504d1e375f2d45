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

BOOT_ADDRESS = 0x08000000


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
        power_cut: Any = None,
        echo: Any = None,
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
        self.rmachine = self.mach.internal
        self.cpu = self.mach.sysbus.cpu.internal
        self.nvic = self.mach.sysbus.nvic.internal
        self.windows: dict[str, dict[str, Any]] = {}
        self.powered_off: str | None = None
        self._hooks: list[Any] = []

        from peripherals.power_cut import PowerCutPlan

        self.power_cut = power_cut if power_cut is not None else PowerCutPlan()
        self.models = board_models.build_tagged_models(
            self.platform,
            host_factory=lambda name: RenodeHost(self, name),
            timing=timing,
            seed=seed,
            power_cut=self.power_cut,
            native=self._native_parent,
        )
        from Antmicro.Renode.Peripherals.Bus import BusRangeRegistration  # type: ignore[import-not-found]

        self._bridges = []
        for entry in self.platform.entries.values():
            model = self.models.get(entry.name)
            if model is None or entry.bus != "sysbus" or entry.address is None:
                continue
            bridge = ModelPeripheral(model, entry.size, before_access=self._sync_hook(entry.name, model))
            self._bridges.append(bridge)
            self.rmachine.SystemBus.Register(bridge, BusRangeRegistration(entry.address, entry.size))
            self.rmachine.SetLocalName(bridge, entry.name)
        self.flash = self.models["flash"]
        self.qspi_flash = self.models["qspiFlash"]
        self.k2 = self.models["k2"]
        self.led = self.models["led"]
        self.state = board_models.open_state(state_dir, self.flash, self.qspi_flash)
        from h743sim.uart_log import UartLog
        from h743sim.usb.control import ControlTransferRunner

        self.uart = UartLog(echo)
        self.usart = _RenodeUsart(self.mach.sysbus.usart1.internal, self.uart, self.now_ns)
        self.usb = ControlTransferRunner(self.models["usbOtgFs"], self.run_for_ns, self.now_ns)
        self.machine = _RenodeMachineView(self)
        self.powered = False
        self._watch_resets()

    # -- wiring to Renode-native peripherals ------------------------------------------------
    def _native_parent(self, name: str) -> Any:
        """A Renode peripheral a tagged entry attaches to (the LED and K2 on GPIO ports)."""
        return _RenodeGpioPort(getattr(self.mach.sysbus, name).internal)

    # -- windows ----------------------------------------------------------------------------
    def _sync_hook(self, owner: str, model: Any) -> Any:
        """Before an access to ``owner``'s registers: deliver CPU stores into its windows."""

        def sync() -> None:
            if _writes_expected(model):
                self.deliver_window_writes(owner)

        return sync

    def deliver_window_writes(self, owner: str) -> None:
        """Hand the words the CPU stored into ``owner``'s windows to on_write, then restore them."""
        from h743sim.renode.host import copy_into_memory

        for w in self.windows.values():
            if w.get("owner") != owner or w["on_write"] is None or not w["registered"]:
                continue
            buf = w["buffer"]
            seen = bytes(w["memory"].ReadBytes(0, len(buf)))
            if seen == bytes(buf):
                continue
            changed = []
            for start in range(0, len(buf), 4096):
                if seen[start : start + 4096] == buf[start : start + 4096]:
                    continue
                for off in range(start, min(start + 4096, len(buf)), 4):
                    if seen[off : off + 4] != buf[off : off + 4]:
                        changed.append((off, int.from_bytes(seen[off : off + 4], "little")))
            for off, _value in changed:
                copy_into_memory(w["memory"], off, buf, off, 4)  # the model's bytes are the truth
            for off, value in changed:
                w["on_write"](off, 4, value)

    def publish_window(
        self, name: str, base: int, buffer: bytearray, on_write: Any, owner: str | None = None
    ) -> None:
        from h743sim.renode.host import copy_into_memory

        w = self.windows.get(name)
        if w is None:
            desc = f"{name}: Memory.MappedMemory @ sysbus {base:#x}\n    size: {len(buffer):#x}\n"
            self.rmachine.LoadPlatformDescriptionFromString(desc)
            mem = getattr(self.mach.sysbus, name).internal
            w = {
                "base": base,
                "buffer": buffer,
                "memory": mem,
                "registered": True,
                "on_write": on_write,
                "owner": owner,
            }
            self.windows[name] = w
        elif not w["registered"]:
            from Antmicro.Renode.Peripherals.Bus import BusRangeRegistration  # type: ignore[import-not-found]

            self.rmachine.SystemBus.Register(w["memory"], BusRangeRegistration(base, len(buffer)))
            w["registered"] = True
        copy_into_memory(w["memory"], 0, buffer, 0, len(buffer))

    def withdraw_window(self, name: str) -> None:
        w = self.windows.get(name)
        if w and w["registered"]:
            self.rmachine.SystemBus.Unregister(w["memory"])
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

        sysbus = self.rmachine.SystemBus
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

    # -- running (stepped: the emulation is paused between RunFor calls, EMULATION.md §4) --------
    MIN_STEP_NS = 100_000  # Renode's first RunFor after a pause must cover one 100 us quantum

    def now_ns(self) -> int:
        from h743sim.renode.host import _interval_ns

        return _interval_ns(self.machine_time())

    def machine_time(self) -> Any:
        self.cpu.SyncTime()
        return self.mach.internal.ElapsedVirtualTime.TimeElapsed

    def _set_vector_table(self) -> None:
        # Machine.Reset() puts VectorTableOffset back to 0: the board boots from flash
        self.cpu.VectorTableOffset = BOOT_ADDRESS

    def _watch_resets(self) -> None:
        from System import Action  # type: ignore[import-not-found]

        from h743sim.renode.bridge import guarded

        def after_reset(*_args: Any) -> None:
            self._set_vector_table()
            self.k2.reset()

        handler = Action[type(self.mach.internal)](guarded("machine reset", after_reset))
        self._hooks.append(handler)
        try:
            self.mach.internal.MachineReset += handler
        except Exception as exc:  # noqa: BLE001 - older Renode: no event, VTOR set on power_on only
            log.warning("cannot follow machine resets (%s): VTOR is set on power-on only", exc)

    def load_firmware(self, path: Path | str, address: int | None = None) -> list[tuple[str, int, int]]:
        from h743sim.board_models import load_firmware_into

        loaded = load_firmware_into(self.flash, self.qspi_flash, path, address)
        self.refresh_window_range(0x08000000, len(self.flash.array))
        return loaded

    def power_on(self) -> None:
        from h743sim.board_models import power_on_reset

        power_on_reset(self.models)
        self.mach.internal.Reset()
        self._set_vector_table()
        self.k2.reset()
        self.powered = True

    def reset(self) -> None:
        self.mach.internal.Reset()
        self._set_vector_table()
        self.k2.reset()

    def run_for_ns(self, ns: int) -> None:
        from Antmicro.Renode.Time import TimeInterval  # type: ignore[import-not-found]

        if self.powered_off is not None:
            from h743sim.board import BoardError

            raise BoardError(self.describe_failure(f"power cut: {self.powered_off}"))
        us = max(self.MIN_STEP_NS, int(ns)) // 1000
        self.emulation.internal.RunFor(TimeInterval.FromMicroseconds(us))
        if self.powered_off is not None:
            self.powered = False
            from h743sim.board import BoardError

            raise BoardError(self.describe_failure(f"power cut: {self.powered_off}"))

    def run_for(self, seconds: float) -> None:
        self.run_for_ns(int(seconds * 1e9))

    def wait_for_line(self, pattern: str, timeout_s: float = 5.0) -> str:
        import re

        from h743sim.board import BoardError

        rx = re.compile(pattern)
        end = self.now_ns() + int(timeout_s * 1e9)
        while True:
            line = self.uart.find(rx)
            if line is not None:
                return line
            if self.now_ns() >= end:
                raise BoardError(
                    self.describe_failure(f"no UART line matching {pattern!r} within {timeout_s} s")
                )
            self.run_for_ns(10_000_000)

    def describe_failure(self, what: str) -> str:
        regs = " ".join(f"{k}={v:#010x}" for k, v in self.machine.cpu_state().items())
        tail = "\n  ".join(self.uart.tail(8)) or "(nothing)"
        return f"{what} (Renode, virtual time {self.now_ns() / 1e6:.3f} ms)\nCPU: {regs}\nlast UART lines:\n  {tail}"

    def save(self) -> None:
        if self.state is not None:
            self.state.save_from(self.flash, self.qspi_flash)


def _writes_expected(model: Any) -> bool:
    """Adapter glue: does this model expect CPU stores into its window now? (FLASH: PG set.)"""
    regs = getattr(model, "regs", None)
    if regs is None or "CR1" not in regs:
        return False
    return any("PG" in regs[cr].fields and regs[cr]["PG"] for cr in ("CR1", "CR2") if cr in regs)


class _RenodeMachineView:
    """The part of the engine's Machine API the keywords use (CPU state, virtual time)."""

    def __init__(self, board: RenodeBoard) -> None:
        self.board = board

    def now_ns(self) -> int:
        return self.board.now_ns()

    def cpu_state(self) -> dict[str, int]:
        cpu = self.board.cpu
        out = {"pc": int(cpu.PC.RawValue)}
        for name in ("LR", "SP"):
            try:
                out[name.lower()] = int(cpu.GetRegisterUnsafe(name).RawValue)
            except Exception:  # noqa: BLE001 - names differ between Renode versions
                pass
        return out


class _RenodeUsart:
    """USART1 of Renode seen through our Usart's host-side API (TX listeners, RX injection)."""

    def __init__(self, usart: Any, uart_log: Any, now_ns: Any) -> None:
        from System import Action, Byte  # type: ignore[import-not-found]

        from h743sim.renode.bridge import guarded

        self.usart = usart
        # listener(byte, end_ns) as with our Usart: Renode reports each character as it ends
        self._listeners: list[Any] = [uart_log.feed]
        self._handler = Action[Byte](
            guarded("usart1 TX", lambda b: [cb(int(b), now_ns()) for cb in list(self._listeners)])
        )
        usart.CharReceived += self._handler

    def on_tx(self, callback: Any) -> None:
        """Call ``callback(byte, end_ns)`` for each transmitted character."""
        self._listeners.append(callback)

    def inject_rx(self, data: bytes) -> None:
        for b in data:
            self.usart.WriteChar(b)


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
