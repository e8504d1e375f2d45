"""Power cuts during DFU work: the torn flash contents, byte for byte, and what the bootloader does
with them on the next power-on (from the saved state directory, on a new Board)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from storage_helpers import (
    FLASH_SECTOR,
    QSPI_SECTOR,
    boot_to_dfu,
    erased,
    meta_counts,
    new_state,
)

from h743sim.board import Board, BoardError
from h743sim.dfu_session import DfuSession
from peripherals.power_cut import PowerCutPlan

PAGE = 256
FLASH_WORD = 32
HEADER_OFFSET = 0x300  # firmware/include/app_header.h
HEADER_MAGIC = 0x48374150
CRC_FIELD = HEADER_OFFSET + 0x0C
APP_QSPI = 0x90000000
APP_INTERNAL = 0x08020000


def arm(
    plan: PowerCutPlan, *, after: int | None = None, on_event: str | None = None, fraction: float
) -> None:
    """Arm the board's shared plan; ``after`` counts flash operations from now."""
    plan.fired = False
    plan.after_ops = None if after is None else plan.operations_seen + after
    plan.on_event = on_event
    plan.at_ns = None
    plan.fraction = fraction


def image_crc(image: bytes) -> int:
    """The header's CRC rule: CRC-32 over the image with the 4 crc32 bytes read as zero."""
    return zlib.crc32(image[:CRC_FIELD] + bytes(4) + image[CRC_FIELD + 4 :])


def cut_download(board: Board, session: DfuSession, image: Path, address: int) -> BoardError:
    with pytest.raises(BoardError, match="power cut") as err:
        session.download_file(image, address=address)
    assert board.power_cut.fired and not board.powered
    return err.value


def reboot_into_dfu(state: Path, rejected: str) -> Board:
    """A new board from the saved state, powered on without K2: the bootloader must refuse the
    image and fall back to DFU mode on its own."""
    board = Board(state_dir=state, timing="fast")
    board.power_on()
    board.wait_for_line(rf"^BOOT no valid image at {rejected}", 5)
    board.wait_for_line(r"^BOOT no valid application: DFU mode$", 5)
    board.wait_for_line(r"^DFU ready$", 5)
    return board


def recover(board: Board, image: Path, address: int) -> None:
    """A second download over the same USB, leave DFU: the application boots."""
    session = DfuSession(board)
    session.download_file(image, address=address)
    session.leave()
    board.wait_for_line(rf"^APP running from {address:#010x}$", 5)


def test_cut_during_qspi_page_program_tears_the_page_and_fails_the_crc(
    firmware: Path, tmp_path: Path
) -> None:
    app = firmware / "app_qspi.bin"
    image = app.read_bytes()
    state = new_state(tmp_path / "board", firmware / "bootloader.elf")
    board = Board(state_dir=state, timing="fast")
    session = boot_to_dfu(board)
    # the download erases sectors 0 and 1, then programs page after page: cut page 5 half-way
    arm(board.power_cut, after=2 + 5, fraction=0.5)
    cut_download(board, session, app, APP_QSPI)
    assert board.power_cut.log[-8:] == ["qspi.sector_erase"] * 2 + ["qspi.page_program"] * 6
    board.save()

    qspi = (state / "qspi.bin").read_bytes()
    torn = 5 * PAGE + PAGE // 2  # pages 0-4 whole, then the first half of page 5
    assert qspi[:torn] == image[:torn]
    assert qspi[torn : 2 * QSPI_SECTOR] == erased(2 * QSPI_SECTOR - torn)
    # the header (page 3) made it: its CRC, right for the full image, is wrong for this one
    magic, _size, length, crc = struct.unpack_from("<4I", qspi, HEADER_OFFSET)
    assert (magic, length, crc) == (HEADER_MAGIC, len(image), image_crc(image))
    assert image_crc(qspi[: len(image)]) != crc

    board2 = reboot_into_dfu(state, rejected=r"0x90000000 \(image_check rejected\)")
    recover(board2, app, APP_QSPI)
    assert bytes(board2.qspi_flash.array[: len(image)]) == image


def test_cut_during_first_page_leaves_an_image_the_bootloader_refuses(firmware: Path, tmp_path: Path) -> None:
    app = firmware / "app_qspi.bin"
    image = app.read_bytes()
    state = new_state(tmp_path / "board", firmware / "bootloader.elf")
    board = Board(state_dir=state, timing="fast")
    session = boot_to_dfu(board)
    arm(board.power_cut, on_event="qspi.page_program", fraction=0.25)
    cut_download(board, session, app, APP_QSPI)
    board.save()

    qspi = (state / "qspi.bin").read_bytes()
    # a quarter of page 0: a sane initial SP and reset vector, nothing else (no header yet)
    assert qspi[: PAGE // 4] == image[: PAGE // 4]
    assert qspi[PAGE // 4 : 2 * QSPI_SECTOR] == erased(2 * QSPI_SECTOR - PAGE // 4)
    # so the vector table alone must not make it bootable: the reset handler is erased
    board2 = reboot_into_dfu(state, rejected=r"0x90000000 \(image_check rejected\)")
    recover(board2, app, APP_QSPI)


def test_cut_during_qspi_sector_erase_leaves_a_partly_erased_sector(firmware: Path, tmp_path: Path) -> None:
    app = firmware / "app_qspi.bin"
    image = app.read_bytes()
    assert QSPI_SECTOR < len(image) < 2 * QSPI_SECTOR  # the image ends in sector 1
    state = new_state(tmp_path / "board", firmware / "bootloader.elf")
    board = Board(state_dir=state, timing="fast")
    session = boot_to_dfu(board)
    session.download_file(app, address=APP_QSPI)
    # a DfuSe erase of sector 1 that loses power 3 % into the 45 ms erase
    fraction = 0.03
    arm(board.power_cut, on_event="qspi.sector_erase", fraction=fraction)
    with pytest.raises(BoardError, match="power cut"):
        session.erase(APP_QSPI + QSPI_SECTOR)
    board.save()

    qspi = (state / "qspi.bin").read_bytes()
    cut = QSPI_SECTOR + int(QSPI_SECTOR * fraction)  # the first 122 bytes of sector 1 are erased
    assert qspi[:QSPI_SECTOR] == image[:QSPI_SECTOR]
    assert qspi[QSPI_SECTOR:cut] == erased(cut - QSPI_SECTOR)
    assert qspi[cut : len(image)] == image[cut:]
    assert qspi[len(image) : 2 * QSPI_SECTOR] == erased(2 * QSPI_SECTOR - len(image))
    assert meta_counts(state, "qspi")[:3] == [1, 2, 0]  # the torn erase counts as a cycle

    board2 = reboot_into_dfu(state, rejected=r"0x90000000 \(image_check rejected\)")
    recover(board2, app, APP_QSPI)


def test_cut_during_internal_sector_erase_leaves_erased_words_then_old_data(
    firmware: Path, tmp_path: Path
) -> None:
    app = firmware / "app_internal.bin"
    image = app.read_bytes()
    # an application is installed in sector 1 (factory programmed), a new download starts
    state = new_state(tmp_path / "board", firmware / "bootloader.elf", firmware / "app_internal.elf")
    board = Board(state_dir=state, timing="fast")
    session = boot_to_dfu(board)
    fraction = 0.02  # 20 ms into the 1 s typical sector erase
    arm(board.power_cut, on_event="flash.sector_erase", fraction=fraction)
    cut_download(board, session, app, APP_INTERNAL)
    assert board.power_cut.log[-1] == "flash.sector_erase"
    board.save()

    flash = (state / "flash.bin").read_bytes()
    sector = flash[FLASH_SECTOR : 2 * FLASH_SECTOR]
    cut = int(FLASH_SECTOR // FLASH_WORD * fraction) * FLASH_WORD  # whole 256-bit words: 2592 bytes
    assert sector[:cut] == erased(cut)
    assert sector[cut : len(image)] == image[cut:]
    assert sector[len(image) :] == erased(FLASH_SECTOR - len(image))
    assert meta_counts(state, "flash")[:3] == [0, 1, 0]

    board2 = reboot_into_dfu(state, rejected=r"0x08020000 \(image_check empty\)")
    recover(board2, app, APP_INTERNAL)
    assert bytes(board2.flash.array[FLASH_SECTOR : FLASH_SECTOR + len(image)]) == image


def test_cut_during_internal_program_leaves_an_ecc_error_the_bootloader_survives(
    firmware: Path, tmp_path: Path
) -> None:
    app = firmware / "app_internal.bin"
    image = app.read_bytes()
    state = new_state(tmp_path / "board", firmware / "bootloader.elf")
    board = Board(state_dir=state, timing="fast")
    session = boot_to_dfu(board)
    # the download erases sector 1, then programs 256-bit words: cut word 40 (past the header and
    # the reset handler, so only the CRC check reads it) half-way
    word = 40
    arm(board.power_cut, after=1 + word, fraction=0.5)
    cut_download(board, session, app, APP_INTERNAL)
    assert board.power_cut.log[-(word + 2) :] == ["flash.sector_erase"] + ["flash.program"] * (word + 1)
    board.save()

    flash = (state / "flash.bin").read_bytes()
    torn = FLASH_SECTOR + word * FLASH_WORD + FLASH_WORD // 2
    assert flash[FLASH_SECTOR:torn] == image[: torn - FLASH_SECTOR]
    assert flash[torn : 2 * FLASH_SECTOR] == erased(2 * FLASH_SECTOR - torn)
    # the torn word's ECC no longer matches: every read of it is a bus error
    ecc = json.loads((state / "meta.json").read_text())["memories"]["flash"]["metadata"]["ecc_errors"]
    assert ecc == [[APP_INTERNAL + word * FLASH_WORD, "double"]]

    # the bootloader's image check reads that word: it must reject the image, not lock up
    board2 = Board(state_dir=state, timing="fast")
    board2.power_on()
    board2.wait_for_line(r"^BOOT bus error reading the image at 0x08020000$", 5)
    board2.wait_for_line(r"^BOOT no valid image at 0x08020000 \(image_check rejected\)$", 1)
    board2.wait_for_line(r"^DFU ready$", 5)
    recover(board2, app, APP_INTERNAL)
    assert board2.flash.ecc_errors == {}  # the erase before the new download cleared it
