"""Bad DFU requests to the real bootloader: each ends in the documented status/state (or a STALL)
and leaves both flash arrays byte-for-byte as they were.

The requests go out as bare control transfers (RawDfu) because the DfuSe client checks layouts and
states itself and would refuse to send most of them. Expected results: firmware/bootloader/README.md
(state machine, error mapping).
"""

from __future__ import annotations

import pytest

from h743sim.dfuse.client import DfuState, DfuStatus
from h743sim.dfuse.layout import LayoutError
from h743sim.usb.link import Setup, Stall

QSPI_BASE, QSPI_END = 0x90000000, 0x90800000
FLASH_BASE, APP_BASE, FLASH_END = 0x08000000, 0x08020000, 0x08200000
XFER = 2048
CMD_SET_ADDRESS, CMD_ERASE = 0x21, 0x41


def le32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def expect(report, state: DfuState, status: DfuStatus) -> None:
    assert (DfuState(report.state), DfuStatus(report.status)) == (state, status)


@pytest.fixture
def dfu(boot_dfu):
    d = boot_dfu()
    d.before = d.snapshot()
    yield d
    d.assert_untouched(d.before)  # every test here: nothing written, nothing erased


def test_write_and_erase_in_the_bootloader_sector_are_errtarget(dfu):
    raw = dfu.raw
    raw.set_alt(0)
    expect(raw.set_pointer(FLASH_BASE), DfuState.DFU_DNLOAD_IDLE, DfuStatus.OK)  # readable: allowed
    raw.dnload(2, b"\x00" * 32)
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_TARGET)
    assert raw.state() == DfuState.DFU_ERROR
    raw.clrstatus()
    for address in (FLASH_BASE, FLASH_BASE + 0x1FFFF):
        expect(raw.command(bytes([CMD_ERASE]) + le32(address)), DfuState.DFU_ERROR, DfuStatus.ERR_TARGET)
        raw.clrstatus()
    dfu.expect_lines(
        "DFU write 0x08000000 32 errTARGET",
        "DFU erase 0x08000000 errTARGET",
        "DFU erase 0x0801FFFF errTARGET",
    )
    # the client refuses the same before sending anything
    with pytest.raises(LayoutError):
        dfu.client.erase(FLASH_BASE)
    with pytest.raises(LayoutError):
        dfu.client.download(FLASH_BASE, b"\x00" * 32)


def test_addresses_outside_every_memory_are_errtarget(dfu):
    raw = dfu.raw
    raw.set_alt(1)
    expect(raw.set_pointer(QSPI_BASE + 0x1000), DfuState.DFU_DNLOAD_IDLE, DfuStatus.OK)
    raw.abort()
    cases = [
        (1, bytes([CMD_SET_ADDRESS]) + le32(QSPI_END)),  # one past the W25Q64
        (1, bytes([CMD_SET_ADDRESS]) + le32(APP_BASE)),  # another alt's memory
        (1, bytes([CMD_SET_ADDRESS]) + le32(0x24000000)),  # AXI SRAM: no memory of ours
        (1, bytes([CMD_ERASE]) + le32(QSPI_END)),
        (0, bytes([CMD_SET_ADDRESS]) + le32(FLASH_END)),
        (0, bytes([CMD_ERASE]) + le32(QSPI_BASE)),
        (0, bytes([CMD_ERASE]) + le32(0xFFFFFFFF)),
    ]
    for alt, payload in cases:
        raw.set_alt(alt)
        expect(raw.command(payload), DfuState.DFU_ERROR, DfuStatus.ERR_TARGET)
        raw.clrstatus()
        expect(raw.status(), DfuState.DFU_IDLE, DfuStatus.OK)
    # a data block whose address (pointer + (block - 2) * 2048) lies past the memory
    raw.set_alt(1)
    expect(raw.set_pointer(QSPI_END - XFER), DfuState.DFU_DNLOAD_IDLE, DfuStatus.OK)
    raw.dnload(3, b"\x00" * 16)
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_TARGET)


def test_refused_set_address_keeps_the_old_pointer(dfu):
    raw = dfu.raw
    raw.set_alt(1)
    pattern = bytes(range(256)) * 8
    dfu.board.qspi_flash.array[0x3000 : 0x3000 + XFER] = pattern
    dfu.before = dfu.snapshot()
    raw.set_pointer(QSPI_BASE + 0x3000)
    raw.abort()
    expect(raw.set_pointer(QSPI_END), DfuState.DFU_ERROR, DfuStatus.ERR_TARGET)
    raw.clrstatus()
    assert raw.upload(2, XFER) == pattern  # still reads from 0x90003000


def test_range_past_the_end_and_unaligned_writes_are_erraddress(dfu):
    raw = dfu.raw
    raw.set_alt(1)
    expect(raw.set_pointer(QSPI_END - 1024), DfuState.DFU_DNLOAD_IDLE, DfuStatus.OK)
    raw.dnload(2, b"\x00" * XFER)  # starts inside, runs 1024 bytes past the end
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_ADDRESS)
    raw.clrstatus()
    raw.set_alt(0)
    expect(raw.set_pointer(APP_BASE + 0x10), DfuState.DFU_DNLOAD_IDLE, DfuStatus.OK)
    raw.dnload(2, b"\x00" * 32)  # internal flash programs whole 32-byte flash words
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_ADDRESS)
    dfu.expect_lines("DFU write 0x907FFC00 2048 errADDRESS", "DFU write 0x08020010 32 errADDRESS")


def test_writing_over_programmed_bytes_is_errcheck_erased(dfu):
    dfu.board.qspi_flash.array[0x2000:0x2010] = b"\x00" * 16  # not erased
    dfu.before = dfu.snapshot()
    raw = dfu.raw
    raw.set_alt(1)
    raw.set_pointer(QSPI_BASE + 0x2000)
    raw.dnload(2, b"\xa5" * 64)
    report = raw.status()
    assert report.state == DfuState.DFU_DNBUSY  # the check runs on the hardware, in the main loop
    expect(raw.settle(), DfuState.DFU_ERROR, DfuStatus.ERR_CHECK_ERASED)


def test_oversized_blocks_are_stalled(dfu):
    raw = dfu.raw
    raw.set_alt(1)
    raw.set_pointer(QSPI_BASE)
    raw.abort()
    with pytest.raises(Stall):
        raw.dnload(2, b"\x00" * (XFER + 1))
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_STALLEDPKT)
    raw.clrstatus()
    with pytest.raises(Stall):
        raw.upload(2, 2 * XFER)
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_STALLEDPKT)


def test_block_number_1_is_stalled(dfu):
    raw = dfu.raw
    raw.set_alt(1)
    raw.set_pointer(QSPI_BASE)
    raw.abort()
    with pytest.raises(Stall):
        raw.dnload(1, b"\x00" * 64)
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_STALLEDPKT)
    raw.clrstatus()
    with pytest.raises(Stall):
        raw.upload(1, 64)
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_STALLEDPKT)


def test_dnload_in_the_wrong_state_is_stalled(dfu):
    raw = dfu.raw
    raw.set_alt(1)
    assert raw.upload(0, 3) == b"\x00\x21\x41"  # a full frame: dfuUPLOAD-IDLE
    assert raw.state() == DfuState.DFU_UPLOAD_IDLE
    with pytest.raises(Stall):
        raw.dnload(2, b"\x00" * 64)
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_STALLEDPKT)
    dfu.expect_lines("DFU request 1 refused in state 9 errSTALLEDPKT")

    # from dfuERROR: stalled too, and the first error is the one reported
    raw.clrstatus()
    expect(raw.set_pointer(QSPI_END), DfuState.DFU_ERROR, DfuStatus.ERR_TARGET)
    with pytest.raises(Stall):
        raw.dnload(0, bytes([CMD_SET_ADDRESS]) + le32(QSPI_BASE))
    with pytest.raises(Stall):
        raw.upload(2, 64)
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_TARGET)

    # wrong direction: DNLOAD as an IN request
    raw.clrstatus()
    with pytest.raises(Stall):
        dfu.board.usb.control_transfer(Setup(0xA1, 1, 2, 0, 64))
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_STALLEDPKT)


def test_unknown_dfuse_commands_are_errunknown(dfu):
    raw = dfu.raw
    raw.set_alt(1)
    for payload in (b"\x92", b"\x92\x00\x00\x00\x90", bytes([CMD_SET_ADDRESS, 0, 0, 0]), b"\x41\x00"):
        expect(raw.command(payload), DfuState.DFU_ERROR, DfuStatus.ERR_UNKNOWN)
        raw.clrstatus()
    dfu.expect_lines("DFU command 0x00000092 len 1 errUNKNOWN")


def test_clrstatus_recovers_and_the_next_download_works(dfu):
    raw = dfu.raw
    raw.set_alt(1)
    expect(raw.command(b"\x92"), DfuState.DFU_ERROR, DfuStatus.ERR_UNKNOWN)
    assert raw.state() == DfuState.DFU_ERROR
    raw.clrstatus()
    expect(raw.status(), DfuState.DFU_IDLE, DfuStatus.OK)

    data = bytes((i * 13) & 0xFF for i in range(XFER))
    expect(raw.command(bytes([CMD_ERASE]) + le32(QSPI_BASE + 0x7000)), DfuState.DFU_DNLOAD_IDLE, DfuStatus.OK)
    expect(raw.set_pointer(QSPI_BASE + 0x7000), DfuState.DFU_DNLOAD_IDLE, DfuStatus.OK)
    raw.dnload(2, data)
    busy = raw.status()
    expect(busy, DfuState.DFU_DNBUSY, DfuStatus.OK)
    assert busy.poll_timeout_ms == 6  # 8 W25Q64 pages x 0.4 ms, rounded up, + 2 ms
    dfu.board.run_for(busy.poll_timeout_ms / 1000)
    assert raw.state() == DfuState.DFU_DNLOAD_SYNC  # block done; GETSTATE does not move the state
    expect(raw.status(), DfuState.DFU_DNLOAD_IDLE, DfuStatus.OK)
    assert bytes(dfu.board.qspi_flash.array[0x7000 : 0x7000 + XFER]) == data
    dfu.before = dfu.snapshot()  # that write was the point; nothing else may change


def test_upload_at_and_past_the_end_of_the_memory(dfu):
    raw = dfu.raw
    array = dfu.board.qspi_flash.array
    array[-3 * XFER :] = bytes((i * 7) & 0xFF for i in range(3 * XFER))
    dfu.before = dfu.snapshot()
    raw.set_alt(1)
    raw.set_pointer(QSPI_END - 2 * XFER)
    raw.abort()
    assert raw.upload(2, XFER) == bytes(array[-2 * XFER : -XFER])
    assert raw.state() == DfuState.DFU_UPLOAD_IDLE
    assert raw.upload(3, XFER) == bytes(array[-XFER:])
    assert raw.upload(4, XFER) == b""  # exactly at the end: a zero-length frame ends the upload
    assert raw.state() == DfuState.DFU_IDLE
    # a block that starts inside and runs past the end is cut short
    raw.set_pointer(QSPI_END - 1024)
    raw.abort()
    assert raw.upload(2, XFER) == bytes(array[-1024:])
    assert raw.state() == DfuState.DFU_IDLE
    # a block that starts beyond the end
    with pytest.raises(Stall):
        raw.upload(3, XFER)
    expect(raw.status(), DfuState.DFU_ERROR, DfuStatus.ERR_TARGET)
    # internal flash: the last bytes of bank 2
    raw.clrstatus()
    raw.set_alt(0)
    raw.set_pointer(FLASH_END - 512)
    raw.abort()
    assert raw.upload(2, XFER) == bytes(dfu.board.flash.array[-512:])


def test_upload_of_a_word_with_a_double_ecc_error_fails_without_hanging(dfu):
    # a flash word torn by a power cut reads as a double ECC error: a bus error on every read
    base = 0x08020000
    dfu.board.flash.inject_ecc_error(base + 0x40, double=True)
    raw = dfu.raw
    raw.set_alt(0)
    raw.set_pointer(base)
    raw.abort()
    with pytest.raises(Stall):
        raw.upload(2, 256)
    report = raw.status()
    assert report.state == DfuState.DFU_ERROR and report.status != DfuStatus.OK
    # the bootloader is still serving requests: clear, then read a good word elsewhere
    raw.clrstatus()
    raw.set_pointer(base + 0x1000)
    raw.abort()
    assert raw.upload(2, 64) == bytes(dfu.board.flash.array[0x21000 : 0x21000 + 64])
