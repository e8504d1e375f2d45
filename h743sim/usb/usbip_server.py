"""Export :class:`UsbLink` devices over USB/IP (usbipd-compatible TCP server on 127.0.0.1).

The wire protocol (device list, import, URB submit/unlink) is the ``usbip`` package's
``usbip.protocol``; this module supplies the device object it serves. Every endpoint-0 URB is
forwarded to ``link.control_transfer`` as one whole control transfer, so the firmware supplies its
own descriptors and answers every request. Like usbipd on the machine that owns a real device, the
server enumerates the device when a client imports it: bus reset, SET_ADDRESS (the importing side's
vhci-hcd never forwards SET_ADDRESS), read the descriptors, SET_CONFIGURATION.

Threading model: one accept thread plus one thread per client connection, all inside this server.
They call the link through a :class:`~h743sim.usb.dispatch.LockedLink`, so one transfer runs at a
time. When the board runs its own loop on its own thread, pass a
:class:`~h743sim.usb.dispatch.DispatchedLink` (``LinkDispatcher(board_link).proxy()``) and have the
board's thread call ``dispatcher.serve_pending()``: transfers then execute on the board's thread.
Transfer timeouts are virtual milliseconds (``transfer_timeout_ms``); USB/IP carries no timeout.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from usbip import protocol
from usbip.core import SPEED_FULL, Urb

from h743sim.errors import UserError
from h743sim.usb import descriptors as d
from h743sim.usb.dispatch import LockedLink
from h743sim.usb.link import Disconnected, Setup, Stall, Timeout, UsbLink

log = logging.getLogger(__name__)

DEFAULT_PORT = 3240
USB_RT_PORT = 0x23  # class request to a hub port: how usbip clients ask for a device reset
USB_PORT_FEAT_RESET = 4


class UsbipServerError(UserError):
    """The server cannot start (address in use, bad arguments)."""


@dataclass
class _Identity:
    """What USB/IP's device list says about a device, taken from its own descriptors."""

    vid: int
    pid: int
    bcd_device: int
    device_class: int
    device_subclass: int
    device_protocol: int
    interfaces: list[tuple[int, int, int]]


class ExportedDevice:
    """One exported device, shaped as ``usbip.protocol.serve_connection`` expects."""

    def __init__(self, link: UsbLink, busid: str, devnum: int, transfer_timeout_ms: int) -> None:
        self.link = link
        self.busid = busid
        self.busnum = 1
        self.devnum = devnum
        self.speed = SPEED_FULL
        self.transfer_timeout_ms = transfer_timeout_ms
        self._identity: _Identity | None = None
        self.enumerated = False
        self._ep_map: dict = {}  # read by usbip's capture code; a DFU device has EP0 only

    # ---- identity for OP_REP_DEVLIST / OP_REP_IMPORT -------------------------------------------------

    def refresh(self) -> bool:
        """Make sure the identity is known; enumerate when needed. False when the device is absent."""
        try:
            if not self.link.is_attached():
                self.enumerated = False
                return False
            if not self.enumerated or self._identity is None:
                self.enumerate()
            return True
        except (Stall, Timeout, Disconnected, d.DescriptorError) as exc:
            log.warning("usbip %s: enumeration failed: %s", self.busid, exc)
            self.enumerated = False
            return False
        except Exception:  # never let a broken link take the server down
            log.exception("usbip %s: enumeration failed", self.busid)
            self.enumerated = False
            return False

    def enumerate(self) -> None:
        """Bus reset, address, descriptors, configuration (what the owning host does on attach)."""
        link, t = self.link, self.transfer_timeout_ms
        link.bus_reset()
        link.control_transfer(Setup(0x80, d.GET_DESCRIPTOR, d.DT_DEVICE << 8, 0, 64), b"", t)
        link.control_transfer(Setup(0x00, d.SET_ADDRESS, self.devnum, 0, 0), b"", t)
        dev = d.DeviceDescriptor.parse(
            link.control_transfer(Setup(0x80, d.GET_DESCRIPTOR, d.DT_DEVICE << 8, 0, 18), b"", t)
        )
        header = link.control_transfer(Setup(0x80, d.GET_DESCRIPTOR, d.DT_CONFIGURATION << 8, 0, 9), b"", t)
        total = d.total_length(header)
        cfg = d.parse_configuration(
            link.control_transfer(Setup(0x80, d.GET_DESCRIPTOR, d.DT_CONFIGURATION << 8, 0, total), b"", t)
        )
        link.control_transfer(Setup(0x00, d.SET_CONFIGURATION, cfg.bConfigurationValue, 0, 0), b"", t)
        interfaces = [
            (alts[0].bInterfaceClass, alts[0].bInterfaceSubClass, alts[0].bInterfaceProtocol)
            for alts in cfg.interfaces
        ]
        self._identity = _Identity(
            dev.idVendor,
            dev.idProduct,
            dev.bcdDevice,
            dev.bDeviceClass,
            dev.bDeviceSubClass,
            dev.bDeviceProtocol,
            interfaces,
        )
        self.enumerated = True

    def _id(self) -> _Identity:
        if self._identity is None:
            raise RuntimeError(f"device {self.busid} has not been enumerated")
        return self._identity

    vid = property(lambda self: self._id().vid)
    pid = property(lambda self: self._id().pid)
    bcdDevice = property(lambda self: self._id().bcd_device)
    device_class = property(lambda self: self._id().device_class)
    device_subclass = property(lambda self: self._id().device_subclass)
    device_protocol = property(lambda self: self._id().device_protocol)

    @property
    def num_interfaces(self) -> int:
        return len(self._id().interfaces)

    def interface_triples(self) -> list[tuple[int, int, int]]:
        return list(self._id().interfaces)

    def is_iso(self, ep_number: int, direction: int) -> bool:
        return False

    # ---- URBs ---------------------------------------------------------------------------------------

    def reset_io(self) -> None:
        """A client imported the device: present it freshly enumerated, as a new attach would."""
        try:
            self.enumerate()
        except (Stall, Timeout, Disconnected, d.DescriptorError) as exc:
            log.warning("usbip %s: enumeration on import failed: %s", self.busid, exc)
            self.enumerated = False
        except Exception:
            log.exception("usbip %s: enumeration on import failed", self.busid)
            self.enumerated = False

    def handle_urb(self, urb: Urb, respond: object = None) -> Urb:
        if urb.ep != 0:
            urb.status, urb.actual, urb.buffer = -errno.EPIPE, 0, b""
            return urb
        setup = Setup.unpack(bytes(urb.setup))
        try:
            got = self._control(
                setup, bytes(urb.buffer[: setup.wLength]) if not setup.device_to_host else b""
            )
        except Stall:
            urb.status, urb.actual, urb.buffer = -errno.EPIPE, 0, b""
        except Timeout:
            urb.status, urb.actual, urb.buffer = -errno.ETIMEDOUT, 0, b""
        except Disconnected:
            self.enumerated = False
            urb.status, urb.actual, urb.buffer = -errno.ENODEV, 0, b""
        except Exception:  # a broken link must fail the URB, not kill the connection thread
            log.exception("usbip %s: control transfer %s failed", self.busid, setup)
            urb.status, urb.actual, urb.buffer = -errno.EPROTO, 0, b""
        else:
            urb.status = 0
            if setup.device_to_host:
                urb.buffer, urb.actual = got, len(got)
            else:
                urb.buffer, urb.actual = b"", setup.wLength
        return urb

    def _control(self, setup: Setup, data: bytes) -> bytes:
        if setup.bmRequestType == 0x00 and setup.bRequest == d.SET_ADDRESS:
            return b""  # the server addressed the device at enumeration; vhci assigns its own number
        if (
            setup.bmRequestType == USB_RT_PORT
            and setup.bRequest == d.SET_FEATURE
            and setup.wValue == USB_PORT_FEAT_RESET
        ):
            self.enumerate()  # usbip's way of asking for a device reset
            return b""
        return self.link.control_transfer(setup, data, self.transfer_timeout_ms)


class UsbipServer:
    """USB/IP export of one or more links on ``host:port`` (port 0 picks a free port).

    ``with UsbipServer(link, port=0) as srv: ... srv.port ...``; bus ids are ``1-1``, ``1-2``, ...
    """

    def __init__(
        self,
        links: UsbLink | Sequence[UsbLink],
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        busids: Sequence[str] | None = None,
        transfer_timeout_ms: int = 30_000,
    ) -> None:
        links = list(links) if isinstance(links, (list, tuple)) else [links]
        if not links:
            raise UsbipServerError("nothing to export: no USB link given")
        if busids is not None and len(busids) != len(links):
            raise UsbipServerError(f"{len(links)} links but {len(busids)} bus ids")
        if not 0 <= port <= 0xFFFF:
            raise UsbipServerError(f"TCP port {port} out of range")
        names = list(busids) if busids is not None else [f"1-{i}" for i in range(1, len(links) + 1)]
        self.host = host
        self.requested_port = port
        self.devices = [
            ExportedDevice(LockedLink(link), name, devnum, transfer_timeout_ms)
            for devnum, (link, name) in enumerate(zip(links, names, strict=True), start=2)
        ]
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        if self._sock is None:
            raise UsbipServerError("the server is not running")
        return self._sock.getsockname()[1]

    @property
    def busids(self) -> list[str]:
        return [dev.busid for dev in self.devices]

    def start(self) -> UsbipServer:
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested_port))
            sock.listen(4)
        except OSError as exc:
            sock.close()
            raise UsbipServerError(
                f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}"
            ) from exc
        self._sock = sock
        self._stop.clear()
        for dev in self.devices:
            dev.refresh()  # enumerate what is attached now, so the first device list is quick
        t = threading.Thread(target=self._accept_loop, name=f"usbip-accept-{self.port}", daemon=True)
        t.start()
        self._threads.append(t)
        log.info("USB/IP server on %s:%d exporting %s", self.host, self.port, ", ".join(self.busids))
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> UsbipServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        sock = self._sock
        while not self._stop.is_set():
            # A short select timeout lets stop() end this thread without closing the socket under it.
            ready, _, _ = select.select([sock], [], [], 0.1)
            if not ready:
                continue
            try:
                conn, _addr = sock.accept()
            except OSError:
                break
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve, args=(conn,), name="usbip-conn", daemon=True)
            with self._lock:
                self._conns.add(conn)
                self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            present = [dev for dev in self.devices if dev.refresh()]
            protocol.serve_connection(conn, present)
        finally:
            with self._lock:
                self._conns.discard(conn)
