"""DfuSe (.dfu) files with both alternate settings, the `h743sim dfu` command line, mass erase, leave.

A .dfu file built with h743sim.dfuse.dfufile carries app_internal (alt 0, 0x08020000) and app_qspi
(alt 1, 0x90000000); it is downloaded in-process and through the CLI on a state directory. Mass
erase runs with datasheet timing: the device's bwPollTimeout must cover the W25Q64 chip erase
(20 s typical) and the host's wait is virtual time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from h743sim import cli
from h743sim.board import Board
from h743sim.dfuse.dfufile import DfuElement, DfuFile, DfuTarget
from h743sim.dfuse.images import load_elf
from peripherals.host import NS_PER_MS, NS_PER_S

QSPI_BASE, APP_BASE, FLASH_BASE = 0x90000000, 0x08020000, 0x08000000
QSPI_SIZE, FLASH_SECTOR = 8 * 1024 * 1024, 128 * 1024


def build_dfu(firmware: Path, path: Path) -> tuple[bytes, bytes]:
    """Write a two-target .dfu file; returns the (internal, qspi) image bytes it carries."""
    (internal,) = load_elf(firmware / "app_internal.elf")
    (qspi,) = load_elf(firmware / "app_qspi.elf")
    assert (internal.address, qspi.address) == (APP_BASE, QSPI_BASE)
    DfuFile(
        [
            DfuTarget(0, "Internal Flash", [DfuElement(internal.address, internal.data)]),
            DfuTarget(1, "QSPI Flash", [DfuElement(qspi.address, qspi.data)]),
        ]
    ).write(path)
    return internal.data, qspi.data


def state_with_bootloader(firmware: Path, directory: Path) -> Path:
    """A board state directory whose internal flash holds the bootloader (as after `h743sim run --elf`)."""
    board = Board(timing="fast", state_dir=directory)
    board.load_firmware(firmware / "bootloader.elf")
    board.save()
    return directory


def digests(directory: Path) -> dict[str, tuple[str, int]]:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(directory.iterdir())
    }


def test_dfu_file_with_both_alt_settings(boot_dfu, firmware, tmp_path):
    internal, qspi = build_dfu(firmware, tmp_path / "apps.dfu")
    dfu = boot_dfu()
    board = dfu.board

    parts = dfu.session.download_file(tmp_path / "apps.dfu")

    assert [(p.alt, p.address, len(p.data)) for p in parts] == [
        (0, APP_BASE, len(internal)),
        (1, QSPI_BASE, len(qspi)),
    ]
    off = APP_BASE - FLASH_BASE
    assert bytes(board.flash.array[off : off + len(internal)]) == internal
    assert bytes(board.qspi_flash.array[: len(qspi)]) == qspi
    assert dfu.session.upload(APP_BASE, len(internal)) == internal
    assert dfu.session.upload(QSPI_BASE, len(qspi)) == qspi

    board.k2.release()
    dfu.client.leave()
    # both slots hold a valid image: the boot order picks QSPI first
    assert board.wait_for_line(r"^BOOT jumping", 2) == "BOOT jumping to 0x90000000"
    assert board.wait_for_line(r"^APP running from", 2) == "APP running from 0x90000000"


def test_cli_downloads_a_dfu_file_into_the_state_directory(firmware, tmp_path, capsys):
    internal, qspi = build_dfu(firmware, tmp_path / "apps.dfu")
    state = state_with_bootloader(firmware, tmp_path / "state")

    # the documented form: board options after the action
    rc = cli.main(
        ["dfu", "download", str(tmp_path / "apps.dfu"), "--leave", "--state", str(state), "--timing", "fast"]
    )

    captured = capsys.readouterr()
    assert rc == 0, captured.err
    flash = (state / "flash.bin").read_bytes()
    off = APP_BASE - FLASH_BASE
    assert flash[off : off + len(internal)] == internal
    assert (state / "qspi.bin").read_bytes()[: len(qspi)] == qspi
    # and a later boot of the saved state runs the application in place
    board = Board(timing="fast", state_dir=state)
    board.power_on()
    assert board.wait_for_line(r"^APP running from", 2) == "APP running from 0x90000000"


def test_mass_erase_qspi_waits_the_datasheet_chip_erase_time(boot_dfu, firmware):
    dfu = boot_dfu(timing="datasheet")
    board = dfu.board
    board.qspi_flash.array[0x1000:0x1010] = bytes(range(16))
    board.qspi_flash.array[QSPI_SIZE - 16 :] = bytes(16)
    internal_before = bytes(board.flash.array)
    waits: list[int] = []
    advance = dfu.client.sleep_ms
    dfu.client.sleep_ms = lambda ms: (waits.append(ms), advance(ms))[1]

    start = board.machine.now_ns()
    dfu.session.mass_erase(1)
    elapsed = board.machine.now_ns() - start

    assert waits[-1] == 20_000 + 2  # bwPollTimeout: tCE typical + margin
    assert 20 * NS_PER_S <= elapsed < 20 * NS_PER_S + 100 * NS_PER_MS
    assert not board.qspi_flash.busy
    assert board.qspi_flash.array == b"\xff" * QSPI_SIZE
    assert bytes(board.flash.array) == internal_before
    assert board.wait_for_line(r"^DFU mass-erase", 1) == "DFU mass-erase qspi ok"


def test_mass_erase_internal_keeps_the_bootloader(boot_dfu, firmware):
    dfu = boot_dfu()
    board = dfu.board
    dfu.session.download_file(firmware / "app_internal.elf")
    board.flash.array[0x1E0000:0x1E0004] = b"\x00\x11\x22\x33"  # last sector of bank 2
    bootloader = bytes(board.flash.array[:FLASH_SECTOR])
    qspi_before = bytes(board.qspi_flash.array)
    waits: list[int] = []
    advance = dfu.client.sleep_ms
    # fast timing: the erase is instant, and the device NAKs GETSTATUS until it is done, so the host
    # may poll before bwPollTimeout (15 s of virtual idle would only cost wall-clock time here)
    dfu.client.sleep_ms = lambda ms: (waits.append(ms), advance(min(ms, 20)))[1]

    dfu.session.mass_erase(0)

    assert waits[-1] == 15 * 1000 + 2  # 15 application sectors at 1 s each (datasheet figures)
    assert bytes(board.flash.array[:FLASH_SECTOR]) == bootloader
    assert board.flash.array[FLASH_SECTOR:] == b"\xff" * (len(board.flash.array) - FLASH_SECTOR)
    assert bytes(board.qspi_flash.array) == qspi_before
    assert board.wait_for_line(r"^DFU mass-erase", 1) == "DFU mass-erase internal ok"
    # with nothing left to boot, the next reset falls back to DFU mode
    board.k2.release()
    dfu.client.leave()
    assert board.wait_for_line(r"^BOOT no valid application", 2) == "BOOT no valid application: DFU mode"
