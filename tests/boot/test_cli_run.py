"""`h743sim run` as a user meets it: good runs, timeouts, and bad input (one line, no traceback)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from h743sim.platform import DEFAULT_PLATFORM


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("h743sim") and "error:" in lines[0], lines[0]
    assert proc.stdout == ""  # nothing ran
    return lines[0]


def test_until_prints_the_banner_and_exits_0(firmware, cli, tmp_path):
    proc = cli("run", "--elf", firmware / "hello.elf", "--until", "hello", "--state", tmp_path / "s")
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"^hello from STM32H743 DevEBox \(virtual\), SYSCLK 400000000 Hz", proc.stdout)
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "s" / "meta.json").exists()  # the state directory was written


def test_timeout_exits_1_with_last_lines_and_cpu_state(firmware, cli, tmp_path):
    args = ["--until", "never printed", "--timeout", "0.35", "--state", tmp_path / "s", "--no-save"]
    proc = cli("run", "--elf", firmware / "hello.elf", *args)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    err = proc.stderr
    assert "no UART line matching 'never printed' within 0.35 s" in err
    assert "virtual time 350.000 ms" in err
    for reg in ("pc", "lr", "sp", "xpsr", "cfsr", "hfsr", "bfar"):
        assert re.search(rf"\b{reg}=0x[0-9a-f]{{8}}\b", err), reg
    tail = err[err.index("last UART lines:") :].splitlines()[1:]
    assert [t.strip() for t in tail] == proc.stdout.splitlines()[-len(tail) :]
    assert tail[-1].strip() == "tick 306"


def test_state_directory_remembers_the_firmware(firmware, cli, tmp_path):
    state = tmp_path / "s"
    assert cli("run", "--elf", firmware / "hello.elf", "--until", "hello", "--state", state).returncode == 0
    proc = cli("run", "--until", "tick 106", "--state", state, "--no-save")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "tick 106"


# -- bad input ------------------------------------------------------------------------------------
def _broken_repl(tmp_path, old: str, new: str):
    text = DEFAULT_PLATFORM.read_text()
    assert old in text
    broken = text.replace(old, new, 1)
    path = tmp_path / "board.repl"
    path.write_text(broken)
    line = broken[: broken.index(new)].count("\n") + 1
    return path, line


def test_missing_firmware_file(cli, tmp_path):
    err = _one_line_error(cli("run", "--elf", tmp_path / "nope.elf", "--state", tmp_path / "s"))
    assert "nope.elf" in err and "no such firmware file" in err


def test_not_an_elf_file(cli, tmp_path):
    bogus = tmp_path / "notes.elf"
    bogus.write_text("this is not firmware\n")
    err = _one_line_error(cli("run", "--elf", bogus, "--state", tmp_path / "s"))
    assert "notes.elf" in err and "not an ELF file" in err


def test_truncated_elf_is_refused(firmware, cli, tmp_path):
    cut = tmp_path / "cut.elf"
    cut.write_bytes((firmware / "hello.elf").read_bytes()[:3000])
    err = _one_line_error(cli("run", "--elf", cut, "--state", tmp_path / "s"))
    assert "cut.elf" in err and "truncated ELF" in err


def test_elf_for_another_architecture_is_refused(cli, tmp_path):
    foreign = tmp_path / "host.elf"
    foreign.write_bytes(Path(sys.executable).resolve().read_bytes())
    err = _one_line_error(cli("run", "--elf", foreign, "--state", tmp_path / "s"))
    assert "not for Arm" in err


def test_elf_linked_outside_the_board_memories_loses_nothing(firmware, cli, tmp_path):
    gcc = shutil.which("arm-none-eabi-gcc")
    assert gcc is not None  # the firmware fixture has checked it
    src = tmp_path / "fsmc.c"
    src.write_text("void _start(void) { for (;;) { } }\n")
    elf = tmp_path / "fsmc.elf"
    subprocess.run(
        [
            gcc,
            "-mcpu=cortex-m7",
            "-mthumb",
            "-nostdlib",
            "-Wl,-Ttext=0x60000000",
            "-Wl,-e,_start",
            "-o",
            elf,
            src,
        ],
        check=True,
        capture_output=True,
    )
    state = tmp_path / "s"
    assert cli("run", "--elf", firmware / "hello.elf", "--until", "hello", "--state", state).returncode == 0
    before = {p.name: p.read_bytes() for p in state.iterdir() if p.is_file()}
    err = _one_line_error(cli("run", "--elf", elf, "--state", state))
    assert "fsmc.elf" in err and "0x60000000" in err and "lies in no memory" in err
    assert {p.name: p.read_bytes() for p in state.iterdir() if p.is_file()} == before


def test_broken_repl_line_names_file_and_line(firmware, cli, tmp_path):
    repl, line = _broken_repl(
        tmp_path,
        "usart1: UART.STM32F7_USART @ sysbus 0x40011000",
        "usart1 UART.STM32F7_USART sysbus 0x40011000",
    )
    err = _one_line_error(
        cli("run", "--elf", firmware / "hello.elf", "--platform", repl, "--state", tmp_path / "s")
    )
    assert f"{repl}:{line}:" in err


def test_unknown_class_in_repl(firmware, cli, tmp_path):
    repl, line = _broken_repl(tmp_path, "UART.STM32F7_USART @", "UART.NoSuchUart @")
    err = _one_line_error(
        cli("run", "--elf", firmware / "hello.elf", "--platform", repl, "--state", tmp_path / "s")
    )
    assert f"{repl}:{line}:" in err and "unknown class UART.NoSuchUart" in err


def test_unknown_property_in_repl(firmware, cli, tmp_path):
    repl, line = _broken_repl(tmp_path, "    endurance: 10000\n", "    endurence: 10000\n")
    err = _one_line_error(
        cli("run", "--elf", firmware / "hello.elf", "--platform", repl, "--state", tmp_path / "s")
    )
    # the entry's line (the flash controller, just above its property)
    assert f"{repl}:{line - 1}:" in err and "'flash'" in err and "no property 'endurence'" in err


def test_missing_platform_file(firmware, cli, tmp_path):
    err = _one_line_error(
        cli(
            "run",
            "--elf",
            firmware / "hello.elf",
            "--platform",
            tmp_path / "x.repl",
            "--state",
            tmp_path / "s",
        )
    )
    assert "x.repl" in err and "cannot read platform file" in err


def test_bad_until_regex(firmware, cli, tmp_path):
    err = _one_line_error(
        cli("run", "--elf", firmware / "hello.elf", "--until", "tick (", "--state", tmp_path / "s")
    )
    assert "--until" in err and "regular expression" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["run", "--timeout", "-1"], "--timeout: must be positive: '-1'"),
        (["run", "--timeout", "soon"], "--timeout: not a number: 'soon'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors(cli, tmp_path, args, expected):
    proc = cli(*args, "--state", tmp_path / "s") if args[0] == "run" else cli(*args)
    err = _one_line_error(proc)
    assert proc.returncode == 2
    assert expected in err


def test_nothing_to_boot(cli, tmp_path):
    err = _one_line_error(cli("run", "--state", tmp_path / "empty"))
    assert "nothing to boot" in err and "--elf" in err
