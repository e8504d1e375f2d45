"""Creating and wiring the board's Python models from the board description.

Used by both hosts: the embedded engine builds every entry (Renode classes are mapped to our
models by :data:`NATIVE_CLASSES`), the Renode adapter only the tagged `Python.*` entries.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from h743sim.errors import UserError
from h743sim.platform import Entry, Platform, PlatformError
from h743sim.storage import MemoryRegion, StateDir, StateError, import_image
from peripherals.host import Host
from peripherals.power_cut import PowerCutPlan

# Renode classes of the .repl that the embedded engine serves with a model of ours.
NATIVE_CLASSES: dict[str, str] = {
    "UART.STM32F7_USART": "peripherals.usart.Usart",
    "GPIOPort.STM32_GPIOPort": "peripherals.gpio.GpioPort",
    "Miscellaneous.STM32_SYSCFG": "peripherals.syscfg.Syscfg",
    "IRQControllers.STM32H7_EXTI": "peripherals.exti.Exti",
}
# Renode classes the engine implements itself (CPU, NVIC and plain memory).
ENGINE_CLASSES = ("CPU.CortexM", "IRQControllers.NVIC", "Memory.MappedMemory")

# built first: other models take their clocks from it
CLOCK_SOURCES = ("rcc", "pwr")


def _where(entry: Entry, path: object = None) -> str:
    """``file:line`` of an entry for error messages (``line N`` when the file is not known)."""
    return f"{path}:{entry.line}" if path is not None else f"line {entry.line}"


def _import(dotted: str, entry: Entry, path: object = None) -> type:
    module_name, _, cls_name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, cls_name)
    except (ImportError, AttributeError) as exc:
        raise PlatformError(
            f"{_where(entry, path)}: '{entry.name}': cannot load model {dotted}: {exc}"
        ) from None


def model_class(entry: Entry, *, tagged_only: bool = False, path: object = None) -> type | None:
    """The Python class serving ``entry`` (None for classes the engine itself implements).

    ``path`` (the .repl file) only makes error messages name the file."""
    if entry.python_class:
        return _import(entry.python_class, entry, path)
    if tagged_only:
        return None
    if entry.cls in ENGINE_CLASSES:
        return None
    if entry.cls in NATIVE_CLASSES:
        return _import(NATIVE_CLASSES[entry.cls], entry, path)
    raise PlatformError(
        f"{_where(entry, path)}: '{entry.name}': unknown class {entry.cls} "
        f"(known: {', '.join(sorted([*NATIVE_CLASSES, *ENGINE_CLASSES]))}, Python.<module>.<Class>)"
    )


def _kwargs_for(cls: type, entry: Entry, extras: dict[str, Any], path: object = None) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs: dict[str, Any] = {}
    for key, value in entry.properties.items():
        name = key  # .repl properties are the models' keyword arguments, spelled the same
        if name in params or accepts_any:
            kwargs[name] = value
        elif key not in ("numberOfAFs", "frequency", "size"):
            raise PlatformError(
                f"{_where(entry, path)}: '{entry.name}': {cls.__name__} has no property '{key}'"
            )
    for src, target, line in entry.irqs:
        if target == "nvic" and src in ("IRQ", "irq"):
            kwargs["irq"] = line
    for key, value in extras.items():
        if (key in params or accepts_any) and key not in kwargs:
            kwargs[key] = value
    return kwargs


def build_models(
    platform: Platform,
    host_factory: Callable[[str], Host],
    *,
    timing: str = "datasheet",
    seed: int = 0,
    power_cut: PowerCutPlan | None = None,
    tagged_only: bool = False,
    native: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Create the models of ``platform`` and wire them (buses, clocks, pins).

    ``native(name)`` resolves a parent entry that is not one of ours (Renode's GPIO ports).
    """
    plan = power_cut if power_cut is not None else PowerCutPlan()
    models: dict[str, Any] = {}
    where = platform.path
    pending = [
        e
        for e in platform.entries.values()
        if model_class(e, tagged_only=tagged_only, path=where) is not None
    ]
    # parents first: an entry on another entry's bus needs that model
    pending.sort(key=lambda e: (e.name not in CLOCK_SOURCES, e.bus not in (None, "sysbus")))
    for entry in pending:
        cls = model_class(entry, tagged_only=tagged_only, path=where)
        assert cls is not None
        extras: dict[str, Any] = {"seed": seed, "power_cut": plan, "name": entry.name}
        params = inspect.signature(cls.__init__).parameters
        if "timing" in params:
            extras["timing"] = _timing_for(cls, timing)
        if "port" in params and cls.__name__ == "GpioPort":
            extras["port"] = entry.name[-1]  # gpioPortA -> "A"
        if entry.bus not in (None, "sysbus"):
            parent = models.get(entry.bus)
            if parent is None and native is not None:
                parent = native(entry.bus)
            if parent is None:
                raise PlatformError(f"{_where(entry, where)}: '{entry.name}': bus '{entry.bus}' has no model")
            if "port" in params and cls.__name__ != "GpioPort":
                extras["port"] = parent
        kwargs = _kwargs_for(cls, entry, extras, where)
        kwargs.update(_clock_inputs(cls, models))  # the RCC's computed clocks win over fixed values
        try:
            model = cls(host_factory(entry.name), **kwargs)
        except (TypeError, ValueError) as exc:  # a property value the model refuses
            raise PlatformError(f"{_where(entry, where)}: '{entry.name}': {cls.__name__}: {exc}") from None
        if entry.bus not in (None, "sysbus") and hasattr(models.get(entry.bus), "attach"):
            models[entry.bus].attach(model)
        models[entry.name] = model
    rcc, pwr = models.get("rcc"), models.get("pwr")
    if rcc is not None and pwr is not None and hasattr(rcc, "backup_writable"):
        rcc.backup_writable = lambda: pwr.backup_domain_writable
    connect_lines(platform, models)
    return models


def connect_lines(platform: Platform, models: dict[str, Any]) -> None:
    """Wire the model-to-model lines of the description (``<Output> -> <entry>@<n>``).

    The source model offers ``connect_output(name, sink)`` and calls ``sink(level)`` whenever the
    output changes; the target offers ``on_gpio(n, level)`` (Renode's name for a GPIO input).
    Entries without a model of ours (Renode-native ones, the NVIC's ``-> cpu@0``) are skipped.
    """
    where = platform.path
    for entry in platform.entries.values():
        source = models.get(entry.name)
        if source is None:
            continue
        for output, target, number in entry.connections:
            what = f"{_where(entry, where)}: '{entry.name}': {output} -> {target}@{number}"
            sink_model = models.get(target)
            if sink_model is None:
                raise PlatformError(
                    f"{what}: '{target}' is not one of our models (only they take such lines)"
                )
            connect = getattr(source, "connect_output", None)
            if connect is None:
                raise PlatformError(f"{what}: {type(source).__name__} has no outputs")
            on_gpio = getattr(sink_model, "on_gpio", None)
            if on_gpio is None:
                raise PlatformError(f"{what}: {type(sink_model).__name__} takes no input lines")
            try:
                connect(output, functools.partial(on_gpio, number))
            except ValueError as exc:
                raise PlatformError(f"{what}: {exc}") from None


def build_tagged_models(platform: Platform, host_factory: Callable[[str], Host], **kw: Any) -> dict[str, Any]:
    return build_models(platform, host_factory, tagged_only=True, **kw)


def _timing_for(cls: type, timing: str) -> str:
    """Map the board's timing profile name to the one a model knows."""
    module = inspect.getmodule(cls)
    profiles = getattr(module, "TIMING_PROFILES", None)
    if profiles is not None and timing not in profiles and timing == "datasheet":
        return "typical"
    return timing


def _clock_inputs(cls: type, models: dict[str, Any]) -> dict[str, Any]:
    """Kernel-clock callables for models that consume a clock computed by the RCC."""
    rcc = models.get("rcc")
    if rcc is None:
        return {}
    params = inspect.signature(cls.__init__).parameters
    if cls.__name__ == "Usart" and "frequency" in params:
        return {"frequency": rcc.usart16_kernel_hz}
    if cls.__name__ == "QuadSpi" and "kernel_hz" in params:
        return {"kernel_hz": rcc.qspi_kernel_hz}
    return {}


# -- what both hosts do with the memory models ----------------------------------------------------
FLASH_BASE = 0x08000000
QSPI_BASE = 0x90000000


def open_state(state_dir: Path | str | None, flash: Any, qspi_flash: Any) -> StateDir | None:
    """Load the flash images of a state directory into the two memory models (None: no state)."""
    if state_dir is None:
        return None
    state = StateDir(Path(state_dir))
    try:
        state.load_into(flash, qspi_flash)
    except StateError as exc:
        raise UserError(str(exc)) from None
    return state


def load_firmware_into(
    flash: Any, qspi_flash: Any, path: Path | str, address: int | None = None
) -> list[tuple[str, int, int]]:
    """Write an ELF's loadable segments (or a .bin at ``address``) into the flash images, as a
    factory programmer would. Refuses files that do not fit the board's memories."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such firmware file")
    regions = [
        MemoryRegion("internal flash", FLASH_BASE, flash.array),
        MemoryRegion("QSPI flash", QSPI_BASE, qspi_flash.array),
    ]
    try:
        return import_image(p, regions, bin_address=address)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def power_on_reset(models: dict[str, Any]) -> None:
    """Every model that has a power-on state distinct from its system reset goes to it."""
    for model in models.values():
        por = getattr(model, "power_on_reset", None)
        if por is not None:
            por()
