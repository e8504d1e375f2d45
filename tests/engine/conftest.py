"""Helpers for the engine tests: tiny Thumb programs assembled at test time."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from h743sim.engine import Machine
from h743sim.engine.thumb_asm import assemble, toolchain_available

FLASH = 0x08000000
DTCM = 0x20000000
STACK_TOP = 0x20010000
RESULTS = 0x20000000  # programs store their observations here

SYSTEM_VECTORS = {
    "nmi": 2,
    "hardfault": 3,
    "memmanage": 4,
    "busfault": 5,
    "usagefault": 6,
    "svc": 11,
    "pendsv": 14,
    "systick": 15,
}


def vector_table(
    handlers: dict[str, str] | None = None, irqs: dict[int, str] | None = None, stack: int = STACK_TOP
) -> str:
    """Assembly for a vector table at offset 0: unset entries point at a `default_handler`."""
    words = ["default_handler+1"] * (16 + 150)
    words[0] = f"{stack:#x}"
    words[1] = "reset+1"
    for name, label in (handlers or {}).items():
        words[SYSTEM_VECTORS[name]] = f"{label}+1"
    for n, label in (irqs or {}).items():
        words[16 + n] = f"{label}+1"
    return ".org 0\n" + "\n".join(f" .word {w}" for w in words) + "\n"


DEFAULT_HANDLER = """
default_handler:
  mrs r0, ipsr
  ldr r1, =0x20000ffc
  str r0, [r1]
  b .
"""


@pytest.fixture(scope="session")
def toolchain() -> None:
    if not toolchain_available():
        pytest.skip("arm-none-eabi binutils (as/ld/objcopy) not installed: cannot assemble test programs")


@pytest.fixture
def build(toolchain: None) -> Callable[..., Machine]:
    """build(body, handlers=..., irqs=..., cpu_hz=..., setup=...) -> reset Machine running `body`.

    `body` must define `reset:`; it is placed at 0x400 after the vector table.
    """

    def _build(
        body: str,
        handlers: dict[str, str] | None = None,
        irqs: dict[int, str] | None = None,
        cpu_hz: Callable[[], int] | None = None,
        setup: Callable[[Machine], None] | None = None,
        **machine_kwargs: object,
    ) -> Machine:
        source = vector_table(handlers, irqs) + ".org 0x400\n" + body + "\n" + DEFAULT_HANDLER + "\n.ltorg\n"
        image = assemble(source, FLASH)
        m = Machine(cpu_hz, **machine_kwargs)  # type: ignore[arg-type]
        m.add_ram("flash", FLASH, 0x20000)
        m.add_ram("dtcm", DTCM, 0x20000)
        if setup is not None:
            setup(m)
        m.write_memory(FLASH, image)
        m.reset(FLASH)
        return m

    return _build
