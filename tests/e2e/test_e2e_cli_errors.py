"""Malformed .dfu files given to `h743sim dfu download`: refused with one line naming the problem,
a non-zero exit status, and the board's state directory left exactly as it was."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from h743sim import cli
from h743sim.board import Board
from h743sim.dfuse.dfufile import DfuElement, DfuFile, DfuSuffix, DfuTarget

SUFFIX = 16
PAYLOAD = bytes(range(256)) * 8


def good_dfu() -> bytes:
    return DfuFile([DfuTarget(1, "QSPI Flash", [DfuElement(0x90000000, PAYLOAD)])]).to_bytes()


def with_suffix(body: bytes) -> bytes:
    """``body`` with a fresh, valid DfuSe suffix (so only the damage we made is wrong)."""
    return body + DfuSuffix().pack(body)


def _bad_crc() -> bytes:
    data = bytearray(good_dfu())
    data[-1] ^= 0xFF
    return bytes(data)


def _truncated_target() -> bytes:
    body = bytearray(good_dfu()[:-SUFFIX][:600])
    struct.pack_into("<I", body, 6, len(body))  # DFUImageSize consistent with the cut
    return with_suffix(bytes(body))


MALFORMED = {
    "bad CRC": (_bad_crc, "DFU suffix CRC mismatch"),
    "bad prefix signature": (lambda: with_suffix(b"DfuSx" + good_dfu()[5:-SUFFIX]), "not a DfuSe file"),
    "bad prefix version": (
        lambda: with_suffix(b"DfuSe\x02" + good_dfu()[6:-SUFFIX]),
        "unsupported DfuSe version 2",
    ),
    "bad prefix size": (
        lambda: with_suffix(good_dfu()[:6] + struct.pack("<I", 99) + good_dfu()[10:-SUFFIX]),
        "DFUImageSize is 99",
    ),
    "truncated file": (lambda: good_dfu()[:1000], "no DFU suffix"),
    "truncated target": (_truncated_target, "says dwTargetSize 2056 but only 315 bytes remain"),
    "empty file": (lambda: b"", "the file is empty"),
}


def state_snapshot(state: Path) -> dict[str, tuple[str, int]]:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(state.iterdir())
    }


@pytest.fixture(scope="module")
def state(firmware, tmp_path_factory) -> Path:
    """A state directory holding the bootloader, shared by the refusals (none may change it)."""
    directory = tmp_path_factory.mktemp("board") / "state"
    board = Board(timing="fast", state_dir=directory)
    board.load_firmware(firmware / "bootloader.elf")
    board.save()
    return directory


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_dfu_file_is_refused_and_the_state_kept(case, state, tmp_path, capsys):
    make, problem = MALFORMED[case]
    bad = tmp_path / "bad.dfu"
    bad.write_bytes(make())
    before = state_snapshot(state)

    rc = cli.main(["dfu", "download", str(bad), "--state", str(state), "--timing", "fast"])

    out, err = capsys.readouterr()
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("h743sim: error: ") and str(bad) in lines[0]
    assert problem in lines[0]
    assert state_snapshot(state) == before


def test_the_installed_command_exits_non_zero_with_one_line(state, tmp_path):
    bad = tmp_path / "bad.dfu"
    bad.write_bytes(_bad_crc())
    before = state_snapshot(state)
    exe = Path(sys.executable).with_name("h743sim")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "h743sim.cli"]
    out = subprocess.run(
        [*cmd, "dfu", "download", str(bad), "--state", str(state), "--timing", "fast"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert "DFU suffix CRC mismatch" in out.stderr
    assert state_snapshot(state) == before


def test_dfu_without_a_bootloader_says_so(tmp_path, capsys):
    empty = tmp_path / "empty-board"
    rc = cli.main(["dfu", "list", "--state", str(empty), "--timing", "fast"])
    _out, err = capsys.readouterr()
    assert rc == 2
    assert err.strip().splitlines() == [err.strip()]
    assert "no bootloader in" in err and "0x08000000 is erased" in err
