"""Wear-out and stuck bits seen through the firmware: the DFU bootloader and storage_test.

Worn sectors are made with the command line (`h743sim inject wear ...` on a state directory), as a
user would; the firmware then meets them on the next power-on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from storage_helpers import (
    FLASH_ENDURANCE,
    FLASH_SECTOR,
    QSPI_ENDURANCE,
    QSPI_SECTOR,
    boot_to_dfu,
    lcg_pattern,
    meta_counts,
    new_state,
    run_cli,
    uart_lines,
)

from h743sim.board import Board
from h743sim.dfuse.client import DfuError, DfuStatus

WORN_QSPI = 0x90010000  # W25Q64 sector 16
WORN_SECTOR = 16
# one erase past endurance + EXTRA: each erase then leaves 8 * (count - endurance) bits at 0
EXTRA = 99
FAILING_BITS = 8 * (EXTRA + 1)


def filled_sector(tmp_path: Path) -> Path:
    """A raw 128 KiB pattern for internal flash sector 1: an incomplete erase shows anywhere in it."""
    path = tmp_path / "sector1.bin"
    if not path.exists():
        path.write_bytes(lcg_pattern(FLASH_SECTOR, 0x5EC7))
    return path


def new_state_with_sector1(state: Path, tmp_path: Path, image: Path, seed: int) -> Path:
    new_state(state, image, seed=seed)
    board = Board(state_dir=state, timing="fast")
    board.load_firmware(filled_sector(tmp_path), address=0x08020000)
    board.save()
    return state


def zero_bits(data: bytes) -> int:
    return sum(8 - bin(b).count("1") for b in data)


def inject(state: Path, *args: str) -> str:
    proc = run_cli("inject", "--state", state, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def worn_qspi_download(firmware: Path, state: Path, seed: int, payload: Path) -> bytes:
    """DFU-download a full sector into a W25Q64 sector worn past its endurance; the sector's
    bytes as read back over DFU afterwards."""
    new_state(state, firmware / "bootloader.elf", seed=seed)
    said = inject(state, "wear", "qspi", "--address", hex(WORN_QSPI), "--cycles", str(QSPI_ENDURANCE + EXTRA))
    assert said == f"W25Q64 sector {WORN_SECTOR} now at {QSPI_ENDURANCE + EXTRA} erases"

    board = Board(state_dir=state, timing="fast")
    session = boot_to_dfu(board)
    with pytest.raises(DfuError) as err:
        session.download_file(payload, address=WORN_QSPI)
    # the erase "succeeds" (NOR reports nothing), the erased-check before programming does not
    assert err.value.status == DfuStatus.ERR_CHECK_ERASED
    board.wait_for_line(rf"^DFU erase {WORN_QSPI:#010x} ok$", 1)
    board.wait_for_line(rf"^DFU write {WORN_QSPI:#010x} 2048 errCHECK_ERASED$", 1)

    back = session.upload(WORN_QSPI, QSPI_SECTOR)
    assert back != payload.read_bytes()
    # nothing was programmed: the sector is "erased" except for the bits wear left at 0
    assert zero_bits(back) == FAILING_BITS
    board.save()
    assert meta_counts(state, "qspi")[WORN_SECTOR] == QSPI_ENDURANCE + EXTRA + 1
    return back


def test_worn_qspi_sector_fails_dfu_download_deterministically(firmware: Path, tmp_path: Path) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(lcg_pattern(QSPI_SECTOR, 0x3A))
    first = worn_qspi_download(firmware, tmp_path / "a", 5, payload)
    again = worn_qspi_download(firmware, tmp_path / "b", 5, payload)
    other = worn_qspi_download(firmware, tmp_path / "c", 6, payload)
    assert first == again  # same seed: the same bits fail
    assert first != other  # another seed: other bits


def test_stuck_bit_makes_dfu_verify_fail(firmware: Path, tmp_path: Path) -> None:
    state = new_state(tmp_path / "board", firmware / "bootloader.elf")
    target = 0x90020005
    assert inject(state, "stuck-bit", "qspi", "--address", hex(target), "--bit", "3", "--value", "1") == (
        f"qspi bit 3 at {target:#010x} stuck at 1"
    )
    payload = bytes(range(256))  # byte 5 = 0x05: bit 3 must be programmed to 0
    (tmp_path / "p.bin").write_bytes(payload)

    board = Board(state_dir=state, timing="fast")
    session = boot_to_dfu(board)
    with pytest.raises(DfuError) as err:
        session.download_file(tmp_path / "p.bin", address=0x90020000)
    assert err.value.status == DfuStatus.ERR_VERIFY
    board.wait_for_line(r"^DFU write 0x90020000 256 errVERIFY$", 1)
    back = session.upload(0x90020000, 256)
    assert back == payload[:5] + bytes([0x0D]) + payload[6:]


def test_worn_internal_sector_reports_operr_to_the_firmware(firmware: Path, tmp_path: Path) -> None:
    # internal flash sector 1 is full of data (so an incomplete erase shows), and is worn out
    state = new_state_with_sector1(tmp_path / "board", tmp_path, firmware / "bootloader.elf", seed=0)
    assert inject(state, "wear", "flash", "--address", "0x08020000", "--cycles", str(FLASH_ENDURANCE)) == (
        f"flash sector 1 now at {FLASH_ENDURANCE} erases"
    )
    before = (state / "flash.bin").read_bytes()[0x20000:0x40000]
    board = Board(state_dir=state, timing="fast")
    session = boot_to_dfu(board)
    with pytest.raises(DfuError) as err:
        session.erase(0x08020000)
    assert err.value.status == DfuStatus.ERR_ERASE
    board.wait_for_line(r"^DFU erase 0x08020000 errERASE$", 1)
    board.save()
    after = (state / "flash.bin").read_bytes()[0x20000:0x40000]
    assert meta_counts(state, "flash")[1] == FLASH_ENDURANCE + 1
    # the worn erase left some of the old 0 bits: neither erased nor the old data, and no bit
    # went from 1 to 0
    assert after != before and after != b"\xff" * len(after)
    assert all(a | b == a for a, b in zip(after, before, strict=True))


def worn_storage_test(firmware: Path, state: Path, tmp_path: Path) -> tuple[list[str], bytes, bytes]:
    new_state_with_sector1(state, tmp_path, firmware / "storage_test.elf", seed=11)
    inject(state, "wear", "flash", "--address", "0x08020000", "--cycles", str(FLASH_ENDURANCE))
    inject(state, "wear", "qspi", "--address", "0x90000000", "--cycles", str(QSPI_ENDURANCE + EXTRA))
    board = Board(state_dir=state, timing="fast")
    board.power_on()
    board.wait_for_line(r"^STORAGE_TEST DONE", 10)
    board.save()
    return uart_lines(board), (state / "qspi.bin").read_bytes(), (state / "flash.bin").read_bytes()


def test_storage_test_sees_worn_sectors_of_both_memories(firmware: Path, tmp_path: Path) -> None:
    lines, qspi, flash = worn_storage_test(firmware, tmp_path / "a", tmp_path)
    verdict = {ln.split()[1]: ln for ln in lines if ln.startswith("STEP ")}
    # W25Q64 sector 0: the erase completes without an error, but does not read back as 0xFF
    assert verdict["qspi_erase"].startswith("STEP qspi_erase FAIL"), lines
    assert "reads 0xFF: 0 rc=0" in verdict["qspi_erase"]
    # internal sector 1: the FLASH interface ends the erase and the program with OPERR (bit 22)
    assert verdict["iflash_erase"].startswith("STEP iflash_erase FAIL"), lines
    assert "erased=0 rc=-5 sr_errors=00400000" in verdict["iflash_erase"]
    assert verdict["iflash_program"].startswith("STEP iflash_program FAIL"), lines
    assert "rc=-5" in verdict["iflash_program"]
    # what does not touch a worn sector still works
    for step in ("jedec", "quad_enable", "xip_call", "xip_reprogram", "iflash_misuse"):
        assert verdict[step].startswith(f"STEP {step} OK"), verdict[step]
    assert meta_counts(tmp_path / "a", "flash")[1] == FLASH_ENDURANCE + 1
    # the same state and seed again: the same failures, the same bytes
    lines2, qspi2, flash2 = worn_storage_test(firmware, tmp_path / "b", tmp_path)
    assert [ln for ln in lines2 if ln.startswith("STEP")] == [ln for ln in lines if ln.startswith("STEP")]
    assert qspi2[:QSPI_SECTOR] == qspi[:QSPI_SECTOR]
    assert flash2 == flash
