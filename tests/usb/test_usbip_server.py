"""USB/IP export of a UsbLink: pyusb-usbip-backend and Debian's usbip as clients, DFU through it."""

import shutil
import socket
import subprocess
import threading

import pytest
import usb.core
import usb.util
from fake_dfu_device import FakeDfuseDevice
from usbip import protocol
from usbip_backend import USBIPBackend

from h743sim.dfuse.client import DfuseClient
from h743sim.usb.dispatch import LinkDispatcher
from h743sim.usb.usbip_server import UsbipServer, UsbipServerError

QSPI = 0x90000000


@pytest.fixture
def fake():
    return FakeDfuseDevice()


@pytest.fixture
def server(fake):
    with UsbipServer(fake, port=0) as srv:
        yield srv


def devlist(port: int) -> list[dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return protocol.client_devlist(sock)


def test_device_list_comes_from_the_firmware_descriptors(server):
    (entry,) = devlist(server.port)
    assert entry["busid"] == "1-1"
    assert (entry["idVendor"], entry["idProduct"], entry["bcdDevice"]) == (0x0483, 0xDF11, 0x0200)
    assert entry["interfaces"] == [(0xFE, 0x01, 0x02)]
    assert entry["speed"] == 2  # full speed on the wire


def test_pyusb_over_usbip_reads_descriptors_and_strings(fake, server):
    dev = usb.core.find(backend=USBIPBackend("127.0.0.1", server.port), idVendor=0x0483, idProduct=0xDF11)
    assert dev is not None
    # pyusb-usbip-backend reports string indexes as 0: read them by explicit index
    assert usb.util.get_string(dev, 1) == "STMicroelectronics"
    assert usb.util.get_string(dev, 2) == "DFU in FS Mode"
    cfg = dev.get_active_configuration()
    alts = list(cfg)
    assert [usb.util.get_string(dev, a.iInterface) for a in alts] == [
        "@Internal Flash  /0x08000000/01*128Ka,15*128Kg",
        "@QSPI Flash /0x90000000/2048*004Kg",
    ]
    assert fake.usb_address == 2 and fake.configuration == 1  # enumerated by the server on import


def test_dfu_download_and_upload_through_usbip(fake, server):
    dev = usb.core.find(backend=USBIPBackend("127.0.0.1", server.port), idVendor=0x0483, idProduct=0xDF11)
    client = DfuseClient(dev, sleep_ms=fake.advance)
    assert client.transfer_size == 1024  # found by reading the configuration (this backend drops extras)
    data = bytes(range(256)) * 12
    client.download(QSPI + 0x3000, data)
    assert fake.memories[1].peek(QSPI + 0x3000, len(data)) == data
    assert client.upload(QSPI + 0x3000, len(data)) == data
    assert fake.early_requests == 0
    report = client.leave()
    assert report is not None and report.state_name == "dfuMANIFEST" and not fake.attached


def test_set_address_from_a_client_is_not_forwarded(fake, server):
    dev = usb.core.find(backend=USBIPBackend("127.0.0.1", server.port))
    assert dev.ctrl_transfer(0x80, 0, 0, 0, 2).tolist() == [0, 0]  # imports (and enumerates) the device
    before = len(fake.transfers)
    dev.ctrl_transfer(0x00, 5, 9, 0, None)
    assert fake.usb_address == 2 and len(fake.transfers) == before


def test_stall_reaches_the_client_as_epipe(server):
    dev = usb.core.find(backend=USBIPBackend("127.0.0.1", server.port))
    with pytest.raises(usb.core.USBError) as info:
        dev.ctrl_transfer(0x80, 6, 0x0600, 0, 10)
    assert info.value.errno == 32


def test_a_detached_device_is_not_listed(fake, server):
    fake.attached = False
    assert devlist(server.port) == []


@pytest.mark.skipif(shutil.which("usbip") is None, reason="Debian's usbip tool not installed")
def test_debian_usbip_lists_the_device(server):
    out = subprocess.run(
        ["usbip", "--tcp-port", str(server.port), "list", "-r", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "1-1:" in out.stdout and "(0483:df11)" in out.stdout
    assert "(fe/01/02)" in out.stdout


def test_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(UsbipServerError, match=f"cannot listen on 127.0.0.1:{port}"):
            UsbipServer(FakeDfuseDevice(), port=port).start()


def test_two_devices_get_two_bus_ids():
    with UsbipServer([FakeDfuseDevice(serial="A"), FakeDfuseDevice(serial="B")], port=0) as srv:
        assert [d["busid"] for d in devlist(srv.port)] == ["1-1", "1-2"]
        backend = USBIPBackend("127.0.0.1", srv.port)
        serials = sorted(usb.util.get_string(d, 3) for d in usb.core.find(find_all=True, backend=backend))
        assert serials == ["A", "B"]


def test_board_thread_model_every_link_call_runs_on_the_board_thread():
    """The documented model: transfers are queued to the board's thread, which serves them."""
    fake = FakeDfuseDevice()
    dispatcher = LinkDispatcher(fake)
    stop = threading.Event()
    board_thread = threading.Thread(target=dispatcher.serve_forever, args=(stop,), name="board")
    board_thread.start()
    try:
        with UsbipServer(dispatcher.proxy(), port=0) as srv:
            dev = usb.core.find(backend=USBIPBackend("127.0.0.1", srv.port), idVendor=0x0483)
            client = DfuseClient(dev, sleep_ms=lambda ms: dispatcher.call(lambda link: link.advance(ms)))
            client.download(QSPI, b"\x5a" * 3000)
            assert client.upload(QSPI, 3000) == b"\x5a" * 3000
    finally:
        stop.set()
        board_thread.join(timeout=10)
    assert fake.threads == {board_thread.ident}
    assert fake.early_requests == 0


def test_bad_arguments():
    with pytest.raises(UsbipServerError, match="2 links but 1 bus ids"):
        UsbipServer([FakeDfuseDevice(), FakeDfuseDevice()], busids=["1-1"])
    with pytest.raises(UsbipServerError, match="out of range"):
        UsbipServer(FakeDfuseDevice(), port=70000)
