"""The DevEBox STM32H743 board on the embedded engine: models, memories, wiring, state.

Built from `platforms/devebox_h743.repl` (see :mod:`h743sim.platform`): memories become RAM of the
engine, peripherals become models on its bus, tagged entries become our CPython models.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from h743sim.board_models import (
    FLASH_BASE,
    build_models,
    load_firmware_into,
    open_state,
    power_on_reset,
)
from h743sim.board_models import QSPI_BASE as QSPI_BASE  # re-exported for callers
from h743sim.engine.machine import Machine
from h743sim.engine.stop import StopKind, StopReason
from h743sim.errors import UserError
from h743sim.platform import DEFAULT_PLATFORM, PlatformError, parse_platform
from h743sim.storage import StateDir
from h743sim.uart_log import UartLog
from h743sim.usb.control import ControlTransferRunner
from peripherals.host import NS_PER_MS, NS_PER_S
from peripherals.power_cut import PowerCutPlan
from peripherals.unmodelled import Unmodelled

log = logging.getLogger("h743sim.board")

BOOT_ADDRESS = FLASH_BASE

# Peripheral areas of the STM32H743 memory map (RM0433 §2.3). The parts the board does not model
# are served by Unmodelled: accesses log once and read their reset value (0), so firmware touching
# another peripheral never crashes the run.
PERIPHERAL_AREAS: tuple[tuple[str, int, int], ...] = (
    ("APB1 (D2)", 0x40000000, 0x4000D400),
    ("APB2 (D2)", 0x40010000, 0x40017800),
    ("AHB1 (D2)", 0x40020000, 0x400C0000),
    ("AHB2 (D2)", 0x48020000, 0x48023400),
    ("APB3 (D1)", 0x50000000, 0x50004000),
    ("AHB3 (D1)", 0x52000000, 0x5200A000),
    ("APB4 (D3)", 0x58000000, 0x58006800),
    ("AHB4 (D3)", 0x58020000, 0x58027400),
    ("GPV (AXI interconnect)", 0x51000000, 0x51100000),
)


def uncovered(start: int, end: int, covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sub-ranges of [start, end) not covered by any (base, size) in ``covered``."""
    gaps = [(start, end)]
    for base, size in covered:
        nxt = []
        for lo, hi in gaps:
            if base + size <= lo or base >= hi:
                nxt.append((lo, hi))
                continue
            if lo < base:
                nxt.append((lo, base))
            if base + size < hi:
                nxt.append((base + size, hi))
        gaps = nxt
    return gaps


class BoardError(UserError):
    """A run ended badly; the message carries the recent UART lines and the CPU state."""


class Board:
    """One virtual DevEBox board on the embedded engine."""

    def __init__(
        self,
        *,
        platform: Path | str | None = None,
        state_dir: Path | str | None = None,
        timing: str = "datasheet",
        seed: int = 0,
        power_cut: PowerCutPlan | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.timing = timing
        self.power_cut = power_cut if power_cut is not None else PowerCutPlan()
        self.uart = UartLog(echo)
        try:  # a bad board description is the user's input: one clear line, not a traceback
            self.platform = parse_platform(platform or DEFAULT_PLATFORM)
            self.machine = Machine()  # HSI clock until the RCC model exists
            self.models: dict[str, Any] = build_models(
                self.platform, self.machine.host_for, timing=timing, seed=seed, power_cut=self.power_cut
            )
            if "rcc" in self.models:
                self.machine.set_cpu_hz_source(self.models["rcc"].cpu_hz)
            self._map()
        except PlatformError as exc:
            raise UserError(str(exc)) from None
        self.flash = self.models["flash"]
        self.qspi = self.models["qspi"]
        self.qspi_flash = self.models["qspiFlash"]
        self.otg = self.models["usbOtgFs"]
        self.usart = self.models["usart1"]
        self.led = self.models["led"]
        self.k2 = self.models["k2"]
        self.usart.on_tx(self.uart.feed)  # (byte, the time its stop bit ended)
        self.uart.sync = self.usart.catch_up  # bytes of a line not yet ended are delivered lazily
        self.machine.reset_hooks.append(self._after_reset)
        self.state: StateDir | None = open_state(state_dir, self.flash, self.qspi_flash)
        self.usb = ControlTransferRunner(self.otg, self.run_for_ns, self.machine.now_ns)
        self.powered = False

    # -- assembly ---------------------------------------------------------------------------
    def _map(self) -> None:
        covered: list[tuple[int, int]] = []
        for entry in self.platform.entries.values():
            if entry.bus != "sysbus" or entry.address is None:
                continue
            if entry.cls == "Memory.MappedMemory":
                size = int(entry.properties.get("size", 0))
                if size <= 0:
                    raise PlatformError(
                        f"{self.platform.path}:{entry.line}: memory '{entry.name}' has no size"
                    )
                self.machine.add_ram(entry.name, entry.address, size)
                continue
            model = self.models.get(entry.name)
            if model is None:
                continue
            size = entry.size or getattr(model, "size", 0x400)
            self.machine.add_mmio(f"{entry.name} registers", entry.address, size, model)
            covered.append((entry.address, size))
        for area, start, end in PERIPHERAL_AREAS:
            for lo, hi in uncovered(start, end, covered):
                name = f"unmodelled {area} {lo:#010x}"
                self.machine.add_mmio(
                    name, lo, hi - lo, Unmodelled(self.machine.host_for(name), size=hi - lo, name=name)
                )

    # -- loading ----------------------------------------------------------------------------
    def load_firmware(self, path: Path | str, address: int | None = None) -> list[tuple[str, int, int]]:
        """Write an ELF (or a .bin at ``address``) into the flash images; see load_firmware_into."""
        return load_firmware_into(self.flash, self.qspi_flash, path, address)

    def boot_vector_erased(self) -> bool:
        """True when the initial SP and reset vector at the boot address are erased flash."""
        off = BOOT_ADDRESS - FLASH_BASE
        return bytes(self.flash.array[off : off + 8]) == b"\xff" * 8

    # -- power and reset ----------------------------------------------------------------------
    def power_on(self) -> None:
        """Power-on reset: every model to its power-on state, then the core fetches its vectors."""
        power_on_reset(self.models)
        self.machine.reset(BOOT_ADDRESS)  # also resets the bus models (system-reset state)
        self.powered = True

    def _after_reset(self) -> None:
        """After any reset (power-on or AIRCR): external parts keep their state (the W25Q64 is
        not on the MCU's reset line); a held button is still held."""
        self.k2.reset()

    def reset(self) -> None:
        """A system reset (as NRST or AIRCR.SYSRESETREQ): peripherals and core, not the W25Q64."""
        self.machine.reset(BOOT_ADDRESS)
        self.powered = True

    def save(self) -> None:
        if self.state is not None:
            self.state.save_from(self.flash, self.qspi_flash)

    # -- running ------------------------------------------------------------------------------
    def run_for_ns(self, ns: int) -> StopReason:
        stop = self.machine.run(max_ns=ns)
        self._check(stop, allow=(StopKind.TIMEOUT,))
        return stop

    def run_for(self, seconds: float) -> StopReason:
        return self.run_for_ns(int(seconds * NS_PER_S))

    def wait_for_line(self, pattern: str, timeout_s: float = 5.0) -> str:
        """Run until a UART line at or after the read cursor matches ``pattern`` (virtual time)."""
        rx = re.compile(pattern)
        found: list[str] = []

        def seen() -> bool:
            line = self.uart.find(rx)
            if line is not None:
                found.append(line)
                return True
            return False

        if seen():
            return found[0]
        stop = self.machine.run(until=seen, max_ns=int(timeout_s * NS_PER_S))
        if found:
            return found[0]
        # a timeout is reported as what was waited for; any other stop (fault, lockup) as itself
        self._check(stop, allow=(StopKind.TIMEOUT,))
        raise BoardError(self.describe_failure(f"no UART line matching {pattern!r} within {timeout_s} s"))

    def _check(self, stop: StopReason, allow: tuple[StopKind, ...]) -> None:
        if stop.kind in allow or stop.kind in (StopKind.CONDITION, StopKind.REQUESTED):
            return
        if stop.kind is StopKind.POWER_OFF:
            self.powered = False
            raise BoardError(self.describe_failure(f"power cut: {stop.message}"))
        if stop.kind is StopKind.TIMEOUT:
            raise BoardError(self.describe_failure("timeout"))
        raise BoardError(self.describe_failure(f"{stop.kind.value}: {stop.message}"))

    def describe_failure(self, what: str) -> str:
        state = self.machine.cpu_state()
        regs = " ".join(f"{k}={v:#010x}" for k, v in state.items())
        tail = "\n  ".join(self.uart.tail(8)) or "(nothing)"
        return (
            f"{what} (virtual time {self.machine.now_ns() / NS_PER_MS:.3f} ms)\n"
            f"CPU: {regs}\nlast UART lines:\n  {tail}"
        )
