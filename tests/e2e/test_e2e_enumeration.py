"""Enumeration of the real bootloader through pyusb: every descriptor as the firmware sends it.

Expected values: firmware/bootloader/README.md (descriptors, layouts) and FACTS.md §F.3/§F.8.
"""

from __future__ import annotations

import usb.util

from h743sim.dfuse.client import find_descriptors
from h743sim.dfuse.layout import parse_layout
from h743sim.usb.link import Setup

ALT0_LAYOUT = "@Internal Flash  /0x08000000/01*128Ka,15*128Kg"
ALT1_LAYOUT = "@QSPI Flash W25Q64 /0x90000000/2048*004Kg"
KIB = 1024


def test_device_descriptor(boot_dfu):
    dfu = boot_dfu()
    dev = dfu.session.device
    assert (dev.idVendor, dev.idProduct, dev.bcdDevice) == (0x0483, 0xDF11, 0x0200)
    assert (dev.bcdUSB, dev.bMaxPacketSize0, dev.bNumConfigurations) == (0x0200, 64, 1)
    assert (dev.bDeviceClass, dev.bDeviceSubClass, dev.bDeviceProtocol) == (0, 0, 0)
    # the raw descriptor, as the firmware sends it (18 bytes)
    raw = dfu.board.usb.control_transfer(Setup(0x80, 6, 0x0100, 0, 64))
    assert raw == bytes.fromhex("12 01 0002 00 00 00 40 8304 11df 0002 01 02 03 01".replace(" ", ""))


def test_configuration_and_alternate_settings(boot_dfu):
    dfu = boot_dfu()
    dev = dfu.session.device
    cfg = dev.get_active_configuration()
    assert cfg.bConfigurationValue == 1
    assert (cfg.bmAttributes, cfg.bMaxPower, cfg.bNumInterfaces) == (0x80, 50, 1)  # bus powered, 100 mA
    assert cfg.wTotalLength == 9 + 2 * 9 + 9
    alts = sorted(cfg, key=lambda i: i.bAlternateSetting)
    assert [(i.bInterfaceNumber, i.bAlternateSetting) for i in alts] == [(0, 0), (0, 1)]
    for intf in alts:
        assert (intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (0xFE, 0x01, 0x02)
        assert intf.bNumEndpoints == 0
    assert [usb.util.get_string(dev, i.iInterface) for i in alts] == [ALT0_LAYOUT, ALT1_LAYOUT]


def test_strings_and_serial_number_from_the_uid(boot_dfu):
    dfu = boot_dfu()
    dev = dfu.session.device
    langids = dfu.board.usb.control_transfer(Setup(0x80, 6, 0x0300, 0, 255))
    assert langids == bytes([4, 3, 0x09, 0x04])  # en-US only
    assert dev.manufacturer == "h743sim"
    assert dev.product == "DevEBox H743 DFU (h743sim)"
    uid = dfu.board.models["systemMemory"].uid
    expected = "".join(f"{int.from_bytes(uid[i : i + 4], 'little'):08X}" for i in range(0, 12, 4))
    assert len(dev.serial_number) == 24
    assert dev.serial_number == expected
    assert all(c in "0123456789ABCDEF" for c in dev.serial_number)


def test_layouts_say_the_bootloader_sector_is_read_only(boot_dfu):
    dfu = boot_dfu()
    internal, qspi = dfu.client.layout(0), dfu.client.layout(1)
    assert internal == parse_layout(ALT0_LAYOUT) and qspi == parse_layout(ALT1_LAYOUT)
    boot_sector, app_sectors = internal.segments
    assert (boot_sector.address, boot_sector.sector_size, boot_sector.sector_count) == (
        0x08000000,
        128 * KIB,
        1,
    )
    assert (boot_sector.readable, boot_sector.erasable, boot_sector.writable) == (True, False, False)
    assert (app_sectors.address, app_sectors.sector_count, app_sectors.end) == (0x08020000, 15, 0x08200000)
    assert (app_sectors.readable, app_sectors.erasable, app_sectors.writable) == (True, True, True)
    (whole,) = qspi.segments
    assert (whole.address, whole.sector_size, whole.sector_count) == (0x90000000, 4 * KIB, 2048)
    assert whole.end == 0x90800000 and whole.erasable and whole.writable


def test_dfu_functional_descriptor(boot_dfu):
    dfu = boot_dfu()
    expected = bytes([9, 0x21, 0x0B, 255, 0, 0x00, 0x08, 0x1A, 0x01])
    cfg_raw = dfu.board.usb.control_transfer(Setup(0x80, 6, 0x0200, 0, 255))
    assert len(cfg_raw) == 36
    assert find_descriptors(cfg_raw, 0x21) == [expected]
    assert cfg_raw[-9:] == expected  # after both alternate settings
    # also readable on its own, addressed to the interface
    assert dfu.board.usb.control_transfer(Setup(0x81, 6, 0x2100, 0, 9)) == expected
    f = dfu.client.functional
    assert (f.transfer_size, f.bcd_dfu, f.detach_timeout_ms) == (2048, 0x011A, 255)
    assert f.can_download and f.can_upload and f.will_detach and not f.manifestation_tolerant


def test_get_commands_lists_the_dfuse_commands(boot_dfu):
    dfu = boot_dfu()
    assert dfu.client.get_commands(alt=1) == bytes([0x00, 0x21, 0x41])
    assert dfu.raw.upload(0, 3) == bytes([0x00, 0x21, 0x41])  # a full frame: dfuUPLOAD-IDLE
    assert dfu.raw.state() == 9
    dfu.raw.abort()
    assert dfu.raw.state() == 2
