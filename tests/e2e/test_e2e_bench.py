"""`h743sim bench dfu` (h743sim.bench.bench_dfu), run small: its figures are measured, its result checked."""

from __future__ import annotations

import re

import pytest

from h743sim.bench import bench_dfu
from h743sim.errors import UserError


def test_bench_dfu_reports_wall_and_virtual_figures(firmware):
    lines = bench_dfu(firmware, nbytes=8 * 1024, timing="fast", readback=True, progress=False)

    head = re.match(
        r"dfu \(fast timing\): 8 KiB DfuSe download into the W25Q64 at 0x90000000 \(erase \+ write\) in "
        r"([\d.]+) s wall = ([\d.]+) KiB/s; virtual board time ([\d.]+) s",
        lines[0],
    )
    assert head is not None, lines[0]
    wall, rate, virtual = (float(g) for g in head.groups())
    assert wall > 0 and rate == pytest.approx(8 / wall, rel=0.02)
    # 2 sector erases (bwPollTimeout 47 ms each) + 4 blocks (6 ms each) + USB: the device's own figures
    assert 2 * 0.047 + 4 * 0.006 < virtual < 1.0
    assert [line.split()[0] for line in lines[1:4]] == ["erase", "write", "upload"]
    assert re.match(r"  target >= 200 KiB/s wall-clock: (met|NOT met) \(\d+%\)$", lines[4])


def test_bench_dfu_refuses_bad_arguments(firmware, tmp_path):
    with pytest.raises(UserError, match="must be 1 byte .. 8 MiB"):
        bench_dfu(firmware, nbytes=0, progress=False)
    with pytest.raises(UserError, match="bootloader.elf: missing"):
        bench_dfu(tmp_path, nbytes=1024, progress=False)
