"""The storage side of the command line: `state`, `inject`, `wear-map`, and `run` on a bad state."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image
from storage_helpers import FLASH_ENDURANCE, QSPI_ENDURANCE, meta_counts, new_state, run_cli

from h743sim import wear_map


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("h743sim: error: "), stderr
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return new_state(tmp_path / "board")


def test_state_reports_sizes_counts_and_faults(state: Path) -> None:
    proc = run_cli("state", "--state", state)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"W25Q64: 8388608 bytes, endurance {QSPI_ENDURANCE}, 0 sectors erased at least once" in out
    assert "stuck bits 0" in out
    assert f"internal flash: 2097152 bytes, endurance {FLASH_ENDURANCE}, erase counts {[0] * 16}" in out
    assert "ECC errors 0" in out


def test_inject_each_fault_kind_lands_in_the_state(state: Path) -> None:
    steps = [
        (("wear", "qspi", "--address", "0x90003000", "--cycles", "7"), "W25Q64 sector 3 now at 7 erases"),
        (("wear", "qspi", "--address", "0x90003FFF", "--cycles", "5"), "W25Q64 sector 3 now at 12 erases"),
        (("wear", "flash", "--address", "0x08140000", "--cycles", "9"), "flash sector 10 now at 9 erases"),
        (
            ("stuck-bit", "qspi", "--address", "0x90000010", "--bit", "2", "--value", "0"),
            "qspi bit 2 at 0x90000010 stuck at 0",
        ),
        (
            ("stuck-bit", "flash", "--address", "0x08020001", "--bit", "7", "--value", "1"),
            "flash bit 7 at 0x08020001 stuck at 1",
        ),
        (("ecc", "--address", "0x08020040"), "single-bit ECC error at 0x08020040"),
        (("ecc", "--address", "0x08020080", "--double"), "double-bit ECC error at 0x08020080"),
    ]
    for args, said in steps:
        proc = run_cli("inject", "--state", state, *args)
        assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, said, ""), args

    q_counts, f_counts = meta_counts(state, "qspi"), meta_counts(state, "flash")
    assert q_counts[3] == 12 and sum(q_counts) == 12
    assert f_counts[10] == 9 and sum(f_counts) == 9
    meta = json.loads((state / "meta.json").read_text())["memories"]
    assert meta["qspi"]["metadata"]["stuck_bits"] == [[0x10, 2, 0]]
    assert meta["flash"]["metadata"]["stuck_bits"] == [[0x08020001, 7, 1]]
    assert meta["flash"]["metadata"]["ecc_errors"] == [[0x08020040, "single"], [0x08020080, "double"]]

    proc = run_cli("state", "--state", state)
    assert proc.returncode == 0, proc.stderr
    assert "1 sectors erased at least once, max 12 erases, stuck bits 1" in proc.stdout
    assert "ECC errors 2" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("wear", "qspi", "--address", "0x08000000", "--cycles", "1"),  # internal flash address for qspi
        ("wear", "qspi", "--address", "0x90800000", "--cycles", "1"),  # one past the W25Q64
        ("wear", "flash", "--address", "0x08200000", "--cycles", "1"),  # one past bank 2
        ("stuck-bit", "qspi", "--address", "0x80000000", "--bit", "0", "--value", "1"),
        ("stuck-bit", "flash", "--address", "0x90000000", "--bit", "0", "--value", "1"),
        ("ecc", "--address", "0x90000000"),
        ("wear", "flash", "--address", "0x08020000", "--cycles", "-5"),  # would make the state unloadable
    ],
)
def test_inject_refuses_bad_input_in_one_line_and_changes_nothing(state: Path, args: tuple[str, ...]) -> None:
    before = {p.name: digest(p) for p in state.iterdir()}
    proc = run_cli("inject", "--state", state, *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    line = one_line_error(proc.stderr)
    assert "outside" in line or "--cycles" in line, line
    assert {p.name: digest(p) for p in state.iterdir()} == before
    assert run_cli("state", "--state", state).returncode == 0  # still loadable


def test_inject_without_state_directory_is_a_one_line_error(tmp_path: Path) -> None:
    proc = run_cli(
        "inject", "--state", tmp_path / "nope", "wear", "qspi", "--address", "0x90000000", "--cycles", "1"
    )
    assert proc.returncode == 2
    assert "no meta.json" in one_line_error(proc.stderr)
    assert not (tmp_path / "nope").exists()


def cell_pixel(image: Image.Image, qspi_sector: int) -> tuple[int, int, int]:
    """Colour inside a W25Q64 sector's cell (layout of h743sim.wear_map)."""
    x = 10 + (qspi_sector % wear_map.QSPI_COLUMNS) * wear_map.CELL + wear_map.CELL // 2 - 1
    y = 20 + (qspi_sector // wear_map.QSPI_COLUMNS) * wear_map.CELL + wear_map.CELL // 2 - 1
    return image.getpixel((x, y))


def test_wear_map_writes_a_png_where_worn_sectors_stand_out(state: Path, tmp_path: Path) -> None:
    for args in (
        (
            "wear",
            "qspi",
            "--address",
            "0x90005000",
            "--cycles",
            str(QSPI_ENDURANCE + 1),
        ),  # sector 5: worn out
        ("wear", "qspi", "--address", "0x90007000", "--cycles", str(QSPI_ENDURANCE // 2)),  # sector 7: half
    ):
        assert run_cli("inject", "--state", state, *args).returncode == 0
    out = tmp_path / "x.png"
    proc = run_cli("wear-map", "--state", state, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {out}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as img:
        img.load()
        assert img.format == "PNG"
        rows = 2048 // wear_map.QSPI_COLUMNS  # 2048 sectors of 4 KiB
        width = max(wear_map.QSPI_COLUMNS * wear_map.CELL, 8 * wear_map.FLASH_CELL) + 20
        height = 30 + rows * wear_map.CELL + 50 + 2 * wear_map.FLASH_CELL + 40
        assert img.size == (width, height)
        rgb = img.convert("RGB")
        fresh, half, worn = cell_pixel(rgb, 6), cell_pixel(rgb, 7), cell_pixel(rgb, 5)
    assert len({fresh, half, worn}) == 3
    assert fresh == cell_pixel(rgb, 2047)  # every never-erased sector looks the same


def test_run_refuses_a_truncated_image_and_leaves_it_alone(state: Path, firmware: Path) -> None:
    qspi = state / "qspi.bin"
    qspi.write_bytes(qspi.read_bytes()[:4096])
    before = {p.name: digest(p) for p in state.iterdir()}
    proc = run_cli(
        "run", "--state", state, "--elf", firmware / "hello.elf", "--until", "hello done", "--timeout", "2"
    )
    assert proc.returncode != 0
    line = one_line_error(proc.stderr)
    assert str(qspi) in line and "truncated" in line, line
    assert "hello" not in proc.stdout  # the board never ran
    assert {p.name: digest(p) for p in state.iterdir()} == before
    assert qspi.stat().st_size == 4096
