"""Assemble small Thumb-2 programs with the Arm GNU toolchain (tests and benchmarks).

``assemble(source, base)`` returns the flat binary of ``source`` linked at ``base``. Sections are
placed in order in one ``.text`` output section, so ``.org`` offsets are relative to ``base``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

TOOLS = ("arm-none-eabi-as", "arm-none-eabi-ld", "arm-none-eabi-objcopy")
PREAMBLE = ".syntax unified\n.cpu cortex-m7\n.fpu fpv5-d16\n.thumb\n"


class ToolchainMissing(RuntimeError):
    """arm-none-eabi binutils are not on PATH."""


def toolchain_available() -> bool:
    return all(shutil.which(t) for t in TOOLS)


def assemble(source: str, base: int = 0x08000000) -> bytes:
    """Assemble Thumb ``source`` (unified syntax, Cortex-M7, FPv5-D16) linked at ``base``."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise ToolchainMissing(f"Arm toolchain not found on PATH: {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="h743sim-asm-") as tmp:
        d = Path(tmp)
        src, obj, elf, binary = d / "prog.s", d / "prog.o", d / "prog.elf", d / "prog.bin"
        src.write_text(PREAMBLE + source + "\n")
        script = d / "link.ld"
        script.write_text(f"SECTIONS {{ . = {base:#x}; .text : {{ *(.text*) *(.rodata*) *(.data*) }} }}\n")
        _run(["arm-none-eabi-as", "-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-o", str(obj), str(src)])
        _run(["arm-none-eabi-ld", "-T", str(script), "-o", str(elf), str(obj)])
        _run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binary)])
        return binary.read_bytes()


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed:\n{proc.stderr.strip()}")
