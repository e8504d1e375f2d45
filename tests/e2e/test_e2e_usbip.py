"""The board's USB device exported over USB/IP (the `h743sim serve --usbip` machinery).

The board runs on its own thread and serves every USB transfer through a LinkDispatcher, as
`h743sim serve` does; the clients are pyusb with pyusb-usbip-backend (a DFU download and upload of
app_qspi, then leave and boot) and Debian's `usbip list -r`.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import usb.core
import usb.util
from usbip_backend import USBIPBackend

from h743sim.dfuse.client import DfuseClient, DfuState
from h743sim.dfuse.images import load_elf, plan_download
from h743sim.usb.dispatch import LinkDispatcher
from h743sim.usb.usbip_server import UsbipServer
from peripherals.host import NS_PER_MS

QSPI_BASE = 0x90000000


class ServedBoard:
    """A board in DFU mode whose own thread serves USB/IP transfers until :meth:`stop`."""

    def __init__(self, board: Any) -> None:
        self.board = board
        self.dispatcher = LinkDispatcher(board.usb)
        self._stop = threading.Event()
        self.thread = threading.Thread(
            target=self.dispatcher.serve_forever, args=(self._stop,), name="board", daemon=True
        )

    def on_board(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the board's thread (the only thread that may touch the board)."""
        return self.dispatcher.call(lambda _link: fn(), timeout_s=120)

    def sleep_ms(self, ms: int) -> None:
        self.on_board(lambda: self.board.run_for_ns(max(0, ms) * NS_PER_MS))

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture
def served(make_board) -> Iterator[tuple[ServedBoard, UsbipServer]]:
    board = make_board()
    board.k2.press()
    board.power_on()
    board.wait_for_line(r"^DFU ready$", 5)
    sb = ServedBoard(board)
    sb.start()
    try:
        with UsbipServer([sb.dispatcher.proxy()], port=0) as server:
            yield sb, server
    finally:
        sb.stop()


def test_dfu_download_upload_and_leave_over_usbip(served, firmware):
    sb, server = served
    board = sb.board
    image = (firmware / "app_qspi.bin").read_bytes()
    dev = usb.core.find(backend=USBIPBackend("127.0.0.1", server.port), idVendor=0x0483, idProduct=0xDF11)
    assert dev is not None
    assert (dev.bcdDevice, dev.bMaxPacketSize0) == (0x0200, 64)
    # this backend reports string indexes as 0: read them by the firmware's indexes
    uid = board.models["systemMemory"].uid
    serial = "".join(f"{int.from_bytes(uid[i : i + 4], 'little'):08X}" for i in range(0, 12, 4))
    assert [usb.util.get_string(dev, i) for i in (1, 2, 3)] == [
        "h743sim",
        "DevEBox H743 DFU (h743sim)",
        serial,
    ]

    client = DfuseClient(dev, sleep_ms=sb.sleep_ms)
    assert client.transfer_size == 2048 and client.functional.bcd_dfu == 0x011A
    parts = plan_download(load_elf(firmware / "app_qspi.elf"), client.layouts)
    assert [(p.alt, p.address) for p in parts] == [(1, QSPI_BASE)]
    client.download_parts(parts)
    assert client.upload(QSPI_BASE, len(image)) == image
    assert sb.on_board(lambda: bytes(board.qspi_flash.array[: len(image)])) == image

    sb.on_board(board.k2.release)
    report = client.leave()
    assert report is not None and report.state == DfuState.DFU_MANIFEST
    sb.stop()  # the board is ours again
    assert board.wait_for_line(r"^APP running from", 2) == "APP running from 0x90000000"
    assert not board.otg.host_connected()


@pytest.mark.skipif(shutil.which("usbip") is None, reason="Debian's usbip tool is not installed")
def test_debian_usbip_lists_the_board(served):
    _sb, server = served
    out = subprocess.run(
        ["usbip", "--tcp-port", str(server.port), "list", "-r", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "0483:df11" in out.stdout
    assert "1-1:" in out.stdout and "(fe/01/02)" in out.stdout
