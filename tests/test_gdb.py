"""`h743sim run --gdb PORT` against Debian's gdb-multiarch in batch mode."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "firmware" / "build" / "hello.elf"

pytestmark = [
    pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="gdb-multiarch not installed"),
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"),
]


@pytest.fixture(scope="module")
def hello() -> Path:
    subprocess.run(["make", "-s", "-C", str(ROOT / "firmware")], check=True)
    return HELLO


def test_gdb_break_continue_read_step_detach(hello, tmp_path):
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "h743sim.cli",
            "run",
            "--elf",
            str(hello),
            "--state",
            str(tmp_path / "st"),
            "--gdb",
            "0",
            "--timeout",
            "5",
            "--no-save",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        for line in server.stderr:
            m = re.search(r"listening on 127.0.0.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "the GDB server did not report its port"
        gdb = subprocess.run(
            [
                "gdb-multiarch",
                "-batch",
                "-nx",
                "-ex",
                "set architecture armv7e-m",
                "-ex",
                f"file {hello}",
                "-ex",
                f"target remote 127.0.0.1:{port}",
                "-ex",
                "break main",
                "-ex",
                "continue",
                "-ex",
                "info registers pc",
                "-ex",
                "break SysTick_Handler",
                "-ex",
                "continue",
                "-ex",
                "continue",
                "-ex",
                "print s_ticks",
                "-ex",
                "stepi",
                "-ex",
                "info registers pc",
                "-ex",
                "detach",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        out = gdb.stdout + gdb.stderr
        main_addr = subprocess.run(
            ["arm-none-eabi-nm", str(hello)], capture_output=True, text=True, check=True
        ).stdout
        main_pc = int(re.search(r"^([0-9a-f]+) T main$", main_addr, re.M).group(1), 16)
        assert f"pc             {main_pc:#x}" in out, out
        assert "Breakpoint 2, SysTick_Handler" in out, out
        # stopped at the second SysTick entry: the handler incremented the tick once before
        assert re.search(r"\$1 = 1\b", out), out
        pcs = [int(x, 16) for x in re.findall(r"^pc\s+(0x[0-9a-f]+)", out, re.M)]
        assert len(pcs) == 2 and pcs[1] != main_pc, out
        assert "detached" in out, out
    finally:
        server.wait(timeout=60)
    assert server.returncode == 0
