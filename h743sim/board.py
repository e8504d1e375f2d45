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

from h743sim.board_models import build_models
from h743sim.engine.machine import Machine, StopReason
from h743sim.errors import UserError
from h743sim.platform import DEFAULT_PLATFORM, PlatformError, parse_platform
from h743sim.storage import MemoryRegion, StateDir, StateError, import_image
from h743sim.uart_log import UartLog
from h743sim.usb.control import ControlTransferRunner
from peripherals.host import NS_PER_MS, NS_PER_S
from peripherals.power_cut import PowerCutPlan
from peripherals.unmodelled import Unmodelled

log = logging.getLogger("h743sim.board")

FLASH_BASE = 0x08000000
QSPI_BASE = 0x90000000
BOOT_ADDRESS = FLASH_BASE

# Peripheral blocks of the STM32H743 memory map that the board does not model: accesses log once
# and read their reset value (0) so that firmware touching them never crashes the run.
UNMODELLED_BLOCKS: tuple[tuple[str, int, int], ...] = (
    ("TIM2-TIM14", 0x40000000, 0x2400),
    ("LPTIM1/SPI2/SPI3/USART2-UART8", 0x40002400, 0x5C00),
    ("I2C1-I2C3/DAC/CEC/CRS/SWPMI/OPAMP/MDIOS/FDCAN", 0x40005400, 0x6000),
    ("TIM1/TIM8/USART6/SPI1/SPI4/TIM15-17/SPI5/SAI/DFSDM/HRTIM", 0x40010000, 0x1000),
    ("APB2 rest", 0x40011400, 0x6C00),
    ("DMA1/DMA2/DMAMUX1/ADC12", 0x40020000, 0x2400),
    ("USB1_OTG_HS", 0x40040000, 0x40000),
    ("DCMI/CRYP/HASH/RNG/SDMMC2/RAMECC2", 0x48020000, 0x3400),
    ("LTDC/WWDG1", 0x50001000, 0x3000),
    ("GPV AXI matrix", 0x51000000, 0x100000),
    ("MDMA/DMA2D/JPEG", 0x52000000, 0x2000),
    ("Delay block QUADSPI", 0x52006000, 0x1000),
    ("SDMMC1/delay block/RAMECC1", 0x52007000, 0x3000),
    ("EXTI-area rest/LPUART1/SPI6/I2C4/LPTIM2-5/COMP/VREF/RTC/IWDG/SAI4", 0x58000800, 0x4C00),
    ("GPIOF-GPIOK", 0x58021400, 0x1800),
    ("RCC-area neighbours: CRC/BDMA/DMAMUX2/ADC3/HSEM/RAMECC3", 0x58024C00, 0x2800),
    ("DBGMCU rest", 0x5C001400, 0x1C00),
)


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
        self.platform = parse_platform(platform or DEFAULT_PLATFORM)
        self.timing = timing
        self.power_cut = power_cut if power_cut is not None else PowerCutPlan()
        self.uart = UartLog(echo)
        self.machine = Machine(cpu_hz=self._cpu_hz)
        self.models: dict[str, Any] = build_models(
            self.platform, self.machine.host_for, timing=timing, seed=seed, power_cut=self.power_cut
        )
        self._map()
        self.flash = self.models["flash"]
        self.qspi = self.models["qspi"]
        self.qspi_flash = self.models["qspiFlash"]
        self.otg = self.models["usbOtgFs"]
        self.usart = self.models["usart1"]
        self.led = self.models["led"]
        self.k2 = self.models["k2"]
        self.usart.on_tx(lambda b: self.uart.feed(b, self.machine.now_ns()))
        self.machine.on_system_reset(self._system_reset)
        self.state: StateDir | None = None
        if state_dir is not None:
            self.state = StateDir(Path(state_dir))
            try:
                self.state.load_into(self.flash, self.qspi_flash)
            except StateError as exc:
                raise UserError(str(exc)) from None
        self.usb = ControlTransferRunner(self.otg, self.run_for_ns, self.machine.now_ns)
        self.powered = False

    # -- assembly ---------------------------------------------------------------------------
    def _cpu_hz(self) -> int:
        rcc = self.models.get("rcc") if hasattr(self, "models") else None
        return int(rcc.cpu_hz()) if rcc is not None else 64_000_000

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
            self.machine.add_mmio(entry.name, entry.address, size, model)
            covered.append((entry.address, size))
        for name, base, size in UNMODELLED_BLOCKS:
            if any(b < base + size and base < b + s for b, s in covered):
                continue
            host = self.machine.host_for(name)
            self.machine.add_mmio(name, base, size, Unmodelled(host, size=size, name=name))

    # -- loading ----------------------------------------------------------------------------
    def regions(self) -> list[MemoryRegion]:
        return [
            MemoryRegion("internal flash", FLASH_BASE, self.flash.array),
            MemoryRegion("QSPI flash", QSPI_BASE, self.qspi_flash.array),
        ]

    def load_firmware(self, path: Path | str, address: int | None = None) -> list[tuple[str, int, int]]:
        """Write an ELF's loadable segments (or a .bin at ``address``) into the flash images,
        as a factory programmer would. Refuses files that do not fit the board's memories."""
        p = Path(path)
        if not p.exists():
            raise UserError(f"{p}: no such firmware file")
        try:
            return import_image(p, self.regions(), bin_address=address)
        except ValueError as exc:
            raise UserError(str(exc)) from None

    # -- power and reset ----------------------------------------------------------------------
    def power_on(self) -> None:
        """Power-on reset of every model and of the CPU, then the core fetches its vectors."""
        for model in self.models.values():
            por = getattr(model, "power_on_reset", None)
            (por or model.reset)()
        self.machine.reset(BOOT_ADDRESS)
        self.powered = True

    def _system_reset(self) -> None:
        """AIRCR.SYSRESETREQ: peripherals reset (PWR keeps its supply setting), CPU restarts."""
        for model in self.models.values():
            if model is self.k2 or model is self.led:
                continue
            model.reset()
        self.k2.reset()

    def reset(self) -> None:
        self.machine.system_reset()

    def save(self) -> None:
        if self.state is not None:
            self.state.save_from(self.flash, self.qspi_flash)

    # -- running ------------------------------------------------------------------------------
    def run_for_ns(self, ns: int) -> StopReason:
        stop = self.machine.run(max_ns=ns)
        self._check(stop, allow=("timeout",))
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
        self._check(stop, allow=())
        raise BoardError(self.describe_failure(f"no UART line matching {pattern!r} within {timeout_s} s"))

    def _check(self, stop: StopReason, allow: tuple[str, ...]) -> None:
        if stop.kind in allow or stop.kind in ("until", "stop_requested"):
            return
        if stop.kind == "power_off":
            self.powered = False
            raise BoardError(self.describe_failure(f"power cut: {stop.detail}"))
        if stop.kind == "timeout":
            raise BoardError(self.describe_failure("timeout"))
        raise BoardError(self.describe_failure(f"{stop.kind}: {stop.detail}"))

    def describe_failure(self, what: str) -> str:
        state = self.machine.cpu_state()
        regs = " ".join(f"{k}={v:#010x}" for k, v in state.items())
        tail = "\n  ".join(self.uart.tail(8)) or "(nothing)"
        return (
            f"{what} (virtual time {self.machine.now_ns() / NS_PER_MS:.3f} ms)\n"
            f"CPU: {regs}\nlast UART lines:\n  {tail}"
        )
