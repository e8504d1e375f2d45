"""DFU downloads of the sample applications, read back over UPLOAD, then booted by the bootloader.

app_qspi goes to the W25Q64 (alt 1) and runs in place at 0x90000000; app_internal goes to internal
flash sector 1 (alt 0, 0x08020000). The model arrays are the ground truth for what was written.
"""

from __future__ import annotations

from h743sim.dfuse.client import DfuState
from peripherals.host import NS_PER_MS

QSPI_BASE, QSPI_SECTOR = 0x90000000, 4096
FLASH_BASE, APP_BASE, FLASH_SECTOR = 0x08000000, 0x08020000, 128 * 1024
BLINK_MS = 250


def _round_up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def _assert_blinks(board, since_ns: int, count: int) -> None:
    """The LED toggles every 250 ms (virtual) after ``since_ns``, and the app says so."""
    before = board.led.toggles()
    board.wait_for_line(rf"^blink {count}$", 5)
    assert board.led.toggles() - before == count  # one toggle per "blink n" line
    toggles = [t for t, _lit in board.led.history if t >= since_ns]
    assert len(toggles) >= count
    gaps = [(b - a) / NS_PER_MS for a, b in zip(toggles, toggles[1:], strict=False)]
    assert all(abs(g - BLINK_MS) < 2 for g in gaps), gaps
    states = [lit for t, lit in board.led.history if t >= since_ns]
    assert all(a != b for a, b in zip(states, states[1:], strict=False))  # each entry is a change


def test_app_qspi_download_upload_and_execute_in_place(boot_dfu, firmware):
    dfu = boot_dfu()
    board = dfu.board
    image = (firmware / "app_qspi.bin").read_bytes()
    internal_before = bytes(board.flash.array)

    parts = dfu.session.download_file(firmware / "app_qspi.elf")

    assert [(p.alt, p.address, len(p.data)) for p in parts] == [(1, QSPI_BASE, len(image))]
    qspi = board.qspi_flash.array
    assert bytes(qspi[: len(image)]) == image
    touched = _round_up(len(image), QSPI_SECTOR)
    assert bytes(qspi[len(image) : touched]) == b"\xff" * (touched - len(image))  # erased, not written
    assert bytes(board.flash.array) == internal_before  # alt 1 never touches internal flash
    assert dfu.session.upload(QSPI_BASE, len(image)) == image
    assert dfu.session.upload(QSPI_BASE, touched) == bytes(qspi[:touched])
    lines = dfu.lines()
    assert "DFU erase 0x90000000 ok" in lines and "DFU erase 0x90001000 ok" in lines
    assert "DFU write 0x90000000 2048 ok" in lines
    assert f"DFU write 0x{QSPI_BASE + len(image) // 2048 * 2048:08x} {len(image) % 2048} ok" in lines

    board.k2.release()
    report = dfu.client.leave()
    assert report is not None and report.state == DfuState.DFU_MANIFEST
    assert board.wait_for_line(r"^DFU leave$", 1)
    assert board.wait_for_line(r"^BOOT jumping", 1) == "BOOT jumping to 0x90000000"
    assert board.wait_for_line(r"^APP running from", 2) == "APP running from 0x90000000"
    started = board.machine.now_ns()
    assert board.wait_for_line(r"^APP version", 1) == "APP version 1"
    assert 0x90000000 <= board.machine.cpu_state()["pc"] < 0x90000000 + len(image)  # in place
    assert not board.otg.host_connected()  # the application does not start USB
    _assert_blinks(board, started, 4)


def test_app_internal_download_upload_and_boot(boot_dfu, firmware):
    dfu = boot_dfu()
    board = dfu.board
    image = (firmware / "app_internal.bin").read_bytes()
    qspi_before = bytes(board.qspi_flash.array)
    bootloader = bytes(board.flash.array[:FLASH_SECTOR])

    parts = dfu.session.download_file(firmware / "app_internal.elf")

    assert [(p.alt, p.address, len(p.data)) for p in parts] == [(0, APP_BASE, len(image))]
    flash = board.flash.array
    off = APP_BASE - FLASH_BASE
    assert bytes(flash[off : off + len(image)]) == image
    # the last, partial 256-bit flash word is padded with erased bytes; the rest of the sector is erased
    assert bytes(flash[off + len(image) : off + FLASH_SECTOR]) == b"\xff" * (FLASH_SECTOR - len(image))
    assert bytes(flash[:FLASH_SECTOR]) == bootloader
    assert bytes(board.qspi_flash.array) == qspi_before
    assert dfu.session.upload(APP_BASE, len(image)) == image
    assert "DFU erase 0x08020000 ok" in dfu.lines()

    board.k2.release()
    dfu.session.leave()
    assert board.wait_for_line(r"^BOOT no valid image at 0x90000000", 2) == (
        "BOOT no valid image at 0x90000000 (image_check empty)"
    )
    assert board.wait_for_line(r"^BOOT jumping", 1) == "BOOT jumping to 0x08020000"
    assert board.wait_for_line(r"^APP running from", 2) == "APP running from 0x08020000"
    started = board.machine.now_ns()
    assert APP_BASE <= board.machine.cpu_state()["pc"] < APP_BASE + len(image)
    _assert_blinks(board, started, 3)


def test_upload_of_a_whole_region_matches_the_model(boot_dfu):
    """UPLOAD returns what the arrays hold, including data that DFU did not write."""
    dfu = boot_dfu()
    pattern = bytes((i * 37 + 11) & 0xFF for i in range(3 * 4096 + 100))
    dfu.board.qspi_flash.array[0x5000 : 0x5000 + len(pattern)] = pattern  # as a programmer would
    got = dfu.session.upload(QSPI_BASE + 0x5000, len(pattern))
    assert got == pattern
    bootloader = dfu.session.upload(FLASH_BASE, 8192)  # alt 0: the read-only sector is readable
    assert bootloader == bytes(dfu.board.flash.array[:8192])
