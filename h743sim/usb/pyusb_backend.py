"""A pyusb backend over :class:`~h743sim.usb.link.UsbLink` devices: ``usb.core.find(backend=...)``.

The backend acts as the host controller plus the kernel's enumeration: when it first sees a link
attached it drives a bus reset, reads the device descriptor (64-byte request, as Linux does), assigns
an address with SET_ADDRESS, reads the device and configuration descriptors, and selects the first
configuration with SET_CONFIGURATION. Everything pyusb later asks for comes from those descriptors or
from real control transfers to the device (strings, GET_CONFIGURATION, SET_INTERFACE, class requests).
Nothing about the device is hard-coded here.

Errors: a STALL becomes ``usb.core.USBError`` errno 32 (EPIPE), a timeout ``usb.core.USBTimeoutError``
errno 110 (ETIMEDOUT), a detached device errno 19 (ENODEV), as libusb reports them.

Threading: the backend calls its links from the calling thread and is not thread-safe. To use it
from another thread than the board's, give it a :class:`~h743sim.usb.dispatch.DispatchedLink`.
"""

from __future__ import annotations

import array
import errno
from dataclasses import dataclass, field

import usb.backend
import usb.core
import usb.util

from h743sim.usb import descriptors as d
from h743sim.usb.link import Disconnected, Setup, Stall, Timeout, UsbLink

# libusb error codes, carried as backend_error_code like pyusb's libusb1 backend does
LIBUSB_ERROR_IO, LIBUSB_ERROR_NO_DEVICE, LIBUSB_ERROR_TIMEOUT, LIBUSB_ERROR_PIPE = -1, -4, -7, -9
LIBUSB_ERROR_NOT_SUPPORTED = -12
ENUMERATION_TIMEOUT_MS = 1000
INFINITE_TIMEOUT_MS = 3_600_000  # pyusb/libusb: 0 means "no timeout"; the link needs a number


class EnumerationError(Exception):
    """The device did not answer the enumeration requests sensibly."""


def stall_error(what: str) -> usb.core.USBError:
    return usb.core.USBError(f"Pipe error ({what} stalled)", LIBUSB_ERROR_PIPE, errno.EPIPE)


def timeout_error(what: str) -> usb.core.USBTimeoutError:
    return usb.core.USBTimeoutError(f"Operation timed out ({what})", LIBUSB_ERROR_TIMEOUT, errno.ETIMEDOUT)


def gone_error(what: str) -> usb.core.USBError:
    return usb.core.USBError(
        f"No such device (it may have been disconnected) ({what})", LIBUSB_ERROR_NO_DEVICE, errno.ENODEV
    )


@dataclass(eq=False)
class VirtualDevice:
    """One port of the virtual root hub, and what enumeration learnt about its device."""

    link: UsbLink
    bus: int
    port: int
    address: int
    enumerated: bool = False
    device: d.DeviceDescriptor | None = None
    configurations: list[d.ConfigurationDescriptor] = field(default_factory=list)
    claimed: set[int] = field(default_factory=set)
    last_error: str | None = None

    def __repr__(self) -> str:
        return f"<VirtualDevice bus {self.bus} port {self.port} address {self.address}>"


def control(
    link: UsbLink, setup: Setup, data: bytes = b"", timeout_ms: int = ENUMERATION_TIMEOUT_MS
) -> bytes:
    """One control transfer with the link's errors turned into pyusb's."""
    what = f"request 0x{setup.bRequest:02X} type 0x{setup.bmRequestType:02X}"
    try:
        return link.control_transfer(setup, data, timeout_ms)
    except Stall:
        raise stall_error(what) from None
    except Timeout:
        raise timeout_error(what) from None
    except Disconnected:
        raise gone_error(what) from None


def get_descriptor(link: UsbLink, kind: int, index: int, length: int, lang: int = 0) -> bytes:
    return control(link, Setup(0x80, d.GET_DESCRIPTOR, (kind << 8) | index, lang, length))


def enumerate_link(link: UsbLink, address: int) -> tuple[d.DeviceDescriptor, list[d.ConfigurationDescriptor]]:
    """What a host does after a device appears: reset, address, read descriptors, configure."""
    link.bus_reset()
    first = get_descriptor(link, d.DT_DEVICE, 0, 64)
    if len(first) < 8 or first[1] != d.DT_DEVICE:
        raise EnumerationError(f"device descriptor read returned {first.hex(' ') or 'nothing'}")
    control(link, Setup(0x00, d.SET_ADDRESS, address, 0, 0))
    device = d.DeviceDescriptor.parse(get_descriptor(link, d.DT_DEVICE, 0, 18))
    configs = []
    for index in range(device.bNumConfigurations):
        header = get_descriptor(link, d.DT_CONFIGURATION, index, 9)
        total = d.total_length(header)
        configs.append(d.parse_configuration(get_descriptor(link, d.DT_CONFIGURATION, index, total)))
    if configs:
        # Linux selects a configuration as part of enumeration; libusb users expect one to be active.
        control(link, Setup(0x00, d.SET_CONFIGURATION, configs[0].bConfigurationValue, 0, 0))
    return device, configs


class VirtualBackend(usb.backend.IBackend):
    """pyusb backend for one or more :class:`UsbLink` devices on a virtual root hub.

    ``VirtualBackend(link)``; port N (from 1) is the Nth link, its device gets USB address N + 1.
    A device is enumerated once per attachment: when its link reports detached, or a transfer
    finds it gone, it is enumerated again the next time pyusb lists devices.
    """

    def __init__(self, *links: UsbLink, bus: int = 1) -> None:
        if not links:
            raise ValueError("VirtualBackend needs at least one UsbLink")
        self.ports = [VirtualDevice(link, bus, port, port + 1) for port, link in enumerate(links, 1)]

    # ---- enumeration ----------------------------------------------------------------------------

    def enumerate_devices(self) -> list[VirtualDevice]:
        found = []
        for dev in self.ports:
            if not dev.link.is_attached():
                dev.enumerated = False
                continue
            if not dev.enumerated:
                try:
                    dev.device, dev.configurations = enumerate_link(dev.link, dev.address)
                except (usb.core.USBError, EnumerationError, d.DescriptorError) as exc:
                    # A host logs "device descriptor read error" and leaves the port alone.
                    dev.last_error = str(exc)
                    continue
                dev.device.bus, dev.device.address = dev.bus, dev.address
                dev.device.port_number, dev.device.port_numbers = dev.port, (dev.port,)
                dev.device.speed = usb.util.SPEED_FULL
                dev.enumerated, dev.last_error = True, None
                dev.claimed.clear()
            found.append(dev)
        return found

    def forget(self) -> None:
        """Enumerate every device again at the next listing (after the board was reset by hand)."""
        for dev in self.ports:
            dev.enumerated = False

    def get_parent(self, dev: VirtualDevice) -> None:
        return None

    def get_device_descriptor(self, dev: VirtualDevice) -> d.DeviceDescriptor:
        assert dev.device is not None, "device not enumerated"
        return dev.device

    def get_configuration_descriptor(self, dev: VirtualDevice, config: int) -> d.ConfigurationDescriptor:
        try:
            return dev.configurations[config]
        except IndexError:
            raise IndexError(f"configuration index {config} out of range") from None

    def get_interface_descriptor(
        self, dev: VirtualDevice, intf: int, alt: int, config: int
    ) -> d.InterfaceDescriptor:
        cfg = self.get_configuration_descriptor(dev, config)
        if intf >= len(cfg.interfaces):
            raise IndexError(f"interface index {intf} out of range")
        alts = cfg.interfaces[intf]
        if alt >= len(alts):
            raise IndexError(f"alternate setting index {alt} out of range")
        return alts[alt]

    def get_endpoint_descriptor(
        self, dev: VirtualDevice, ep: int, intf: int, alt: int, config: int
    ) -> d.EndpointDescriptor:
        endpoints = self.get_interface_descriptor(dev, intf, alt, config).endpoints
        if ep >= len(endpoints):
            raise IndexError(f"endpoint index {ep} out of range")
        return endpoints[ep]

    # ---- handles and standard requests ------------------------------------------------------------

    def open_device(self, dev: VirtualDevice) -> VirtualDevice:
        if not dev.link.is_attached():
            dev.enumerated = False
            raise gone_error("open")
        return dev

    def close_device(self, dev_handle: VirtualDevice) -> None:
        dev_handle.claimed.clear()

    def _request(
        self, handle: VirtualDevice, setup: Setup, data: bytes = b"", timeout: int | None = None
    ) -> bytes:
        try:
            return control(handle.link, setup, data, _timeout(timeout))
        except usb.core.USBError as exc:
            if exc.errno == errno.ENODEV:
                handle.enumerated = False
            raise

    def set_configuration(self, dev_handle: VirtualDevice, config_value: int) -> None:
        self._request(dev_handle, Setup(0x00, d.SET_CONFIGURATION, config_value, 0, 0))

    def get_configuration(self, dev_handle: VirtualDevice) -> int:
        got = self._request(dev_handle, Setup(0x80, d.GET_CONFIGURATION, 0, 0, 1))
        if len(got) != 1:
            raise usb.core.USBError(
                f"GET_CONFIGURATION returned {len(got)} bytes", LIBUSB_ERROR_IO, errno.EIO
            )
        return got[0]

    def set_interface_altsetting(self, dev_handle: VirtualDevice, intf: int, altsetting: int) -> None:
        self._request(dev_handle, Setup(0x01, d.SET_INTERFACE, altsetting, intf, 0))

    def claim_interface(self, dev_handle: VirtualDevice, intf: int) -> None:
        # Claiming is the host OS's bookkeeping; nothing travels on the bus.
        dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle: VirtualDevice, intf: int) -> None:
        dev_handle.claimed.discard(intf)

    def clear_halt(self, dev_handle: VirtualDevice, ep: int) -> None:
        self._request(dev_handle, Setup(0x02, d.CLEAR_FEATURE, 0, ep, 0))

    def reset_device(self, dev_handle: VirtualDevice) -> None:
        """Port reset, then re-address and re-configure as libusb_reset_device does."""
        active = self.get_configuration(dev_handle) if dev_handle.enumerated else 0
        try:
            device, configs = enumerate_link(dev_handle.link, dev_handle.address)
        except (EnumerationError, d.DescriptorError) as exc:
            dev_handle.enumerated = False
            raise usb.core.USBError(
                f"re-enumeration after reset failed: {exc}", LIBUSB_ERROR_NO_DEVICE, errno.ENODEV
            ) from exc
        if dev_handle.device is not None and (device.idVendor, device.idProduct) != (
            dev_handle.device.idVendor,
            dev_handle.device.idProduct,
        ):
            dev_handle.enumerated = False
            raise gone_error("reset: a different device answered")
        if active and configs and active != configs[0].bConfigurationValue:
            self.set_configuration(dev_handle, active)

    def is_kernel_driver_active(self, dev_handle: VirtualDevice, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, dev_handle: VirtualDevice, intf: int) -> None:
        return None

    def attach_kernel_driver(self, dev_handle: VirtualDevice, intf: int) -> None:
        return None

    # ---- transfers ----------------------------------------------------------------------------------

    def ctrl_transfer(
        self,
        dev_handle: VirtualDevice,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array,
        timeout: int | None,
    ) -> int:
        view = memoryview(data).cast("B")
        setup = Setup(bmRequestType, bRequest, wValue, wIndex, len(view))
        if setup.device_to_host:
            got = self._request(dev_handle, setup, b"", timeout)[: len(view)]
            view[: len(got)] = got
            return len(got)
        self._request(dev_handle, setup, view.tobytes(), timeout)
        return len(view)

    def _no_endpoint(self, ep: int) -> usb.core.USBError:
        return usb.core.USBError(
            f"endpoint 0x{ep:02X}: the virtual link carries endpoint 0 only",
            LIBUSB_ERROR_NOT_SUPPORTED,
            errno.ENOSYS,
        )

    def bulk_write(self, dev_handle, ep, intf, data, timeout):  # noqa: ANN001, ANN201
        raise self._no_endpoint(ep)

    def bulk_read(self, dev_handle, ep, intf, buff, timeout):  # noqa: ANN001, ANN201
        raise self._no_endpoint(ep)

    def intr_write(self, dev_handle, ep, intf, data, timeout):  # noqa: ANN001, ANN201
        raise self._no_endpoint(ep)

    def intr_read(self, dev_handle, ep, intf, buff, timeout):  # noqa: ANN001, ANN201
        raise self._no_endpoint(ep)

    def iso_write(self, dev_handle, ep, intf, data, timeout):  # noqa: ANN001, ANN201
        raise self._no_endpoint(ep)

    def iso_read(self, dev_handle, ep, intf, buff, timeout):  # noqa: ANN001, ANN201
        raise self._no_endpoint(ep)


def _timeout(timeout: int | None) -> int:
    return INFINITE_TIMEOUT_MS if not timeout else int(timeout)


def get_backend(*links: UsbLink) -> VirtualBackend:
    """pyusb's backend-module convention."""
    return VirtualBackend(*links)
