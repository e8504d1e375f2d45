"""`bench_storage()`: the storage_bench firmware runs its phases, and the figures come out.

The wall-clock rates are printed by `h743sim bench storage`, never asserted; what is asserted is
that the firmware moved the bytes it was sized for, checked them, and spent datasheet time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from h743sim.bench import bench_storage, run_storage_bench
from h743sim.errors import UserError

PAGE_PROGRAM_US = 400  # W25Q64 tPP typical


def test_storage_bench_phases_move_and_check_the_configured_bytes(firmware: Path) -> None:
    elf = firmware / "storage_bench.elf"
    slow = run_storage_bench(elf, nbytes=4096, mapped_passes=3, timing="datasheet")
    assert {name: p.nbytes for name, p in slow.items()} == {
        "erase": 4096,
        "program": 4096,
        "readback": 4096,
        "mapped": 3 * 4096,
    }
    # 16 pages at the datasheet's typical 0.4 ms each, in virtual time (SysTick: 100 us steps)
    assert slow["program"].virtual_us >= 16 * PAGE_PROGRAM_US
    assert slow["erase"].virtual_us >= 45_000  # one 4 KiB sector erase, 45 ms
    assert all(p.wall_s > 0 for p in slow.values())
    fast = run_storage_bench(elf, nbytes=4096, mapped_passes=1, timing="fast")
    assert fast["program"].virtual_us < slow["program"].virtual_us
    assert fast["erase"].virtual_us < slow["erase"].virtual_us


def test_bench_storage_prints_both_profiles(firmware: Path) -> None:
    lines = bench_storage(firmware, fast_bytes=4096, datasheet_bytes=4096, mapped_bytes=16384)
    text = "\n".join(lines)
    assert text.count("storage (") == 2 and "fast timing" in text and "datasheet timing" in text
    for label in ("page program", "indirect read", "program+readback", "memory-mapped"):
        assert len(re.findall(rf"^  {re.escape(label)} .*B/s", text, re.M)) == 2, text
    assert "16384 B in" in text  # 4 passes of 4 KiB through the mapped window


def test_storage_bench_refuses_bad_sizes(firmware: Path, tmp_path: Path) -> None:
    elf = firmware / "storage_bench.elf"
    with pytest.raises(UserError, match="multiple of 4 KiB"):
        run_storage_bench(elf, nbytes=1000, mapped_passes=1, timing="fast")
    with pytest.raises(UserError, match="missing"):
        run_storage_bench(tmp_path / "none.elf", nbytes=4096, mapped_passes=1, timing="fast")
