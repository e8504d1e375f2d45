"""The pyusb backend over UsbLink: enumeration by real requests, descriptors, strings, errors."""

import array
import errno

import pytest
import usb.core
import usb.util
from fake_dfu_device import FakeDfuseDevice

from h743sim.usb.link import Setup
from h743sim.usb.pyusb_backend import VirtualBackend


@pytest.fixture
def fake():
    return FakeDfuseDevice()


@pytest.fixture
def dev(fake):
    found = usb.core.find(backend=VirtualBackend(fake), idVendor=0x0483, idProduct=0xDF11)
    assert found is not None
    return found


def _requests(fake, start=0):
    return [
        (t.setup.bmRequestType, t.setup.bRequest, t.setup.wValue, t.setup.wIndex, t.setup.wLength)
        for t in fake.transfers[start:]
    ]


def test_enumeration_is_reset_address_descriptors_configuration(fake, dev):
    assert fake.bus_resets == 1
    assert _requests(fake)[:6] == [
        (0x80, 6, 0x0100, 0, 64),  # device descriptor, as Linux asks first
        (0x00, 5, 2, 0, 0),  # SET_ADDRESS 2
        (0x80, 6, 0x0100, 0, 18),
        (0x80, 6, 0x0200, 0, 9),  # configuration header -> wTotalLength
        (0x80, 6, 0x0200, 0, len(fake.config_descriptor())),
        (0x00, 9, 1, 0, 0),  # SET_CONFIGURATION 1
    ]
    assert (fake.usb_address, fake.configuration) == (2, 1)


def test_device_identity_and_position_on_the_bus(dev):
    assert (dev.idVendor, dev.idProduct, dev.bcdDevice, dev.bMaxPacketSize0) == (0x0483, 0xDF11, 0x0200, 64)
    assert (dev.bus, dev.address, dev.port_number, dev.port_numbers, dev.speed) == (
        1,
        2,
        1,
        (1,),
        usb.util.SPEED_FULL,
    )


def test_strings_come_from_the_device(fake, dev):
    before = len(fake.transfers)
    assert (dev.manufacturer, dev.product, dev.serial_number) == (
        "STMicroelectronics",
        "DFU in FS Mode",
        "3868345F3331",
    )
    string_reads = [r for r in _requests(fake, before) if r[1] == 6 and r[2] >> 8 == 3]
    assert string_reads[0][:4] == (0x80, 6, 0x0300, 0)  # the LANGID table first
    assert any(r[2] == 0x0302 and r[3] == 0x0409 for r in string_reads)


def test_configuration_interfaces_alternate_settings_and_dfu_functional_descriptor(fake, dev):
    cfg = dev.get_active_configuration()
    assert (cfg.bConfigurationValue, cfg.bNumInterfaces, cfg.wTotalLength) == (
        1,
        1,
        len(fake.config_descriptor()),
    )
    alts = list(cfg)
    assert [
        (
            i.bInterfaceNumber,
            i.bAlternateSetting,
            i.bInterfaceClass,
            i.bInterfaceSubClass,
            i.bInterfaceProtocol,
        )
        for i in alts
    ] == [
        (0, 0, 0xFE, 1, 2),
        (0, 1, 0xFE, 1, 2),
    ]
    names = [usb.util.get_string(dev, i.iInterface) for i in alts]
    assert names == ["@Internal Flash  /0x08000000/01*128Ka,15*128Kg", "@QSPI Flash /0x90000000/2048*004Kg"]
    # libusb's rule: a class descriptor belongs to the interface descriptor it follows (the last alt here)
    assert alts[0].extra_descriptors == []
    assert bytes(alts[1].extra_descriptors) == bytes([9, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x04, 0x1A, 0x01])


def test_set_interface_altsetting_and_get_configuration_are_real_requests(fake):
    backend = VirtualBackend(fake)
    dev = usb.core.find(backend=backend)
    before = len(fake.transfers)
    dev.set_interface_altsetting(interface=0, alternate_setting=1)
    assert fake.alt == 1
    assert (0x01, 11, 1, 0, 0) in _requests(fake, before)
    handle = backend.ports[0]
    assert backend.get_configuration(handle) == 1
    fake.configuration = 0  # the device forgot its configuration: the backend must ask, not remember
    assert backend.get_configuration(handle) == 0
    assert _requests(fake)[-1] == (0x80, 8, 0, 0, 1)


def test_ctrl_transfer_fills_the_callers_array_in_place(fake, dev):
    buf = array.array("B", [0xEE] * 8)
    n = dev.ctrl_transfer(0xA1, 3, 0, 0, buf)  # DFU_GETSTATUS asks 8, device sends 6
    assert n == 6
    assert list(buf[:6]) == [0, 0, 0, 0, 2, 0] and list(buf[6:]) == [0xEE, 0xEE]
    assert dev.ctrl_transfer(0xA1, 5, 0, 0, 1).tolist() == [2]  # GETSTATE by length
    assert dev.ctrl_transfer(0x21, 6, 0, 0, b"") == 0  # ABORT, OUT with no data


def test_out_data_reaches_the_device(fake, dev):
    dev.ctrl_transfer(0x21, 1, 0, 0, b"\x21\x00\x00\x00\x90")  # Set Address Pointer
    dev.ctrl_transfer(0xA1, 3, 0, 0, 6)
    assert fake.commands[-1] == ("set_address", 0x90000000)


def test_stall_is_epipe(dev):
    with pytest.raises(usb.core.USBError) as info:
        dev.ctrl_transfer(0x80, 6, 0x0600, 0, 10)  # device qualifier: a full-speed device stalls it
    assert info.value.errno == errno.EPIPE == 32


def test_timeout_is_usb_timeout_error(fake, dev):
    fake.hang_next = True
    with pytest.raises(usb.core.USBTimeoutError) as info:
        dev.ctrl_transfer(0xA1, 3, 0, 0, 6, timeout=250)
    assert info.value.errno == errno.ETIMEDOUT == 110
    assert fake.now_ms == 250  # the link's timeout is the caller's, in virtual ms


def test_disconnect_is_enodev_and_reattach_enumerates_again(fake):
    backend = VirtualBackend(fake)
    dev = usb.core.find(backend=backend)
    assert usb.core.find(backend=backend) is not None and fake.bus_resets == 1  # no re-enumeration
    fake.attached = False
    with pytest.raises(usb.core.USBError) as info:
        dev.ctrl_transfer(0xA1, 3, 0, 0, 6)
    assert info.value.errno == errno.ENODEV == 19
    assert usb.core.find(backend=backend) is None
    fake.attached, fake.was_reset = True, False  # plugged in again, not yet reset
    again = usb.core.find(backend=backend)
    assert again is not None and fake.bus_resets == 2 and fake.usb_address == 2


def test_a_device_that_never_answers_is_not_listed(fake):
    class Mute(FakeDfuseDevice):
        def bus_reset(self):  # the reset never reaches it: EP0 stays dead
            self.bus_resets += 1

    mute = Mute()
    backend = VirtualBackend(mute)
    assert usb.core.find(backend=backend) is None
    assert "timed out" in backend.ports[0].last_error


def test_two_links_are_two_devices_on_two_ports():
    a, b = FakeDfuseDevice(serial="AAA"), FakeDfuseDevice(serial="BBB")
    devs = list(usb.core.find(find_all=True, backend=VirtualBackend(a, b)))
    assert [(d.port_number, d.address, d.serial_number) for d in devs] == [(1, 2, "AAA"), (2, 3, "BBB")]


def test_reset_device_reenumerates_and_keeps_the_configuration(fake, dev):
    dev.set_interface_altsetting(interface=0, alternate_setting=1)
    dev.reset()
    assert fake.bus_resets == 2 and fake.alt == 0 and (fake.usb_address, fake.configuration) == (2, 1)


def test_non_control_endpoints_are_refused_clearly(dev):
    backend = dev._ctx.backend
    with pytest.raises(usb.core.USBError, match="endpoint 0 only"):
        backend.bulk_read(dev._ctx.dev, 0x81, 0, array.array("B", [0] * 4), 100)


def test_setup_round_trip():
    s = Setup(0xA1, 3, 0x1234, 0x0001, 6)
    assert Setup.unpack(s.pack()) == s
