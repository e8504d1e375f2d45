"""Which way the bootloader goes at reset, with images that arrived over DFU.

K2 held -> DFU mode even when a valid image is present; no valid image (erased, or a CRC that does
not match) -> `BOOT no valid application: DFU mode`, with the USB device ready for a new download.
"""

from __future__ import annotations

from h743sim.dfu_session import DfuSession

QSPI_BASE, APP_BASE = 0x90000000, 0x08020000
HEADER_OFFSET = 0x300  # firmware/include/app_header.h


def boot_lines(board) -> list[str]:
    """The UART lines since the last `BOOT h743 bootloader v1`."""
    lines = [text for _, text in board.uart.lines]
    start = max(i for i, text in enumerate(lines) if text == "BOOT h743 bootloader v1")
    return lines[start:]


def test_k2_held_forces_dfu_mode_although_a_valid_app_is_present(boot_dfu, firmware):
    dfu = boot_dfu()
    board = dfu.board
    image = (firmware / "app_qspi.bin").read_bytes()
    dfu.session.download_file(firmware / "app_qspi.elf")

    dfu.client.leave()  # K2 still held through the reset
    board.wait_for_line(r"^DFU ready$", 2)
    assert boot_lines(board) == ["BOOT h743 bootloader v1", "BOOT K2 held: DFU mode", "DFU ready"]
    assert board.led.lit  # the LED is on in DFU mode
    # the device is back on the bus: a new session finds it and reads the image it kept
    again = DfuSession(board)
    assert again.upload(QSPI_BASE, len(image)) == image

    board.k2.release()
    board.run_for(0.01)  # let the last DFU log line finish on the UART before pressing reset
    board.reset()
    assert board.wait_for_line(r"^APP running from", 2) == "APP running from 0x90000000"
    assert boot_lines(board)[:2] == ["BOOT h743 bootloader v1", "BOOT jumping to 0x90000000"]


def test_erased_memories_fall_back_to_dfu_mode(make_board):
    board = make_board()
    board.power_on()  # K2 released
    board.wait_for_line(r"^DFU ready$", 5)
    assert boot_lines(board) == [
        "BOOT h743 bootloader v1",
        "BOOT no valid image at 0x90000000 (image_check empty)",
        "BOOT no valid image at 0x08020000 (image_check empty)",
        "BOOT no valid application: DFU mode",
        "DFU ready",
    ]
    assert board.led.lit
    session = DfuSession(board)
    assert session.device.idProduct == 0xDF11
    assert session.client.get_commands() == b"\x00\x21\x41"


def test_image_with_a_bad_crc_is_not_started(boot_dfu, firmware, tmp_path):
    dfu = boot_dfu()
    board = dfu.board
    image = bytearray((firmware / "app_qspi.bin").read_bytes())
    image[-1] ^= 0x01  # one bit of the last byte: vector table and header still look right
    assert len(image) > HEADER_OFFSET + 0x20
    (tmp_path / "bad.bin").write_bytes(image)
    dfu.session.download_file(tmp_path / "bad.bin", address=QSPI_BASE)
    assert bytes(board.qspi_flash.array[: len(image)]) == image  # DFU writes what it is given

    board.k2.release()
    dfu.client.leave()
    board.wait_for_line(r"^DFU ready$", 2)
    assert boot_lines(board) == [
        "BOOT h743 bootloader v1",
        "BOOT no valid image at 0x90000000 (image_check rejected)",
        "BOOT no valid image at 0x08020000 (image_check empty)",
        "BOOT no valid application: DFU mode",
        "DFU ready",
    ]

    # with a good image in internal flash, the bad QSPI one is skipped and the internal one runs
    session = DfuSession(board)
    session.download_file(firmware / "app_internal.elf")
    session.client.leave()
    assert board.wait_for_line(r"^APP running from", 2) == "APP running from 0x08020000"
    assert boot_lines(board)[:3] == [
        "BOOT h743 bootloader v1",
        "BOOT no valid image at 0x90000000 (image_check rejected)",
        "BOOT jumping to 0x08020000",
    ]
