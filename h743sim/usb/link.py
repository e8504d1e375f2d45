"""The contract between host-side USB code (pyusb backend, USB/IP export) and a USB device.

The virtual board implements it on top of the OTG_FS model's host port, running the CPU while a
transfer is in flight; tests may implement it with a pure-Python device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class UsbError(Exception):
    """Base of the link's errors."""


class Stall(UsbError):
    """The device answered a stage of the transfer with STALL (USB 'pipe error', errno 32)."""


class Timeout(UsbError):
    """The device did not complete the transfer within the timeout (virtual milliseconds)."""


class Disconnected(UsbError):
    """The device is not attached (soft-disconnected, reset, powered off)."""


@dataclass(frozen=True)
class Setup:
    bmRequestType: int
    bRequest: int
    wValue: int
    wIndex: int
    wLength: int

    def pack(self) -> bytes:
        return bytes([self.bmRequestType & 0xFF, self.bRequest & 0xFF]) + b"".join(
            v.to_bytes(2, "little") for v in (self.wValue, self.wIndex, self.wLength)
        )

    @classmethod
    def unpack(cls, raw: bytes) -> Setup:
        if len(raw) != 8:
            raise ValueError(f"a SETUP packet is 8 bytes, got {len(raw)}")
        return cls(raw[0], raw[1], *(int.from_bytes(raw[i : i + 2], "little") for i in (2, 4, 6)))

    @property
    def device_to_host(self) -> bool:
        return bool(self.bmRequestType & 0x80)


class UsbLink(Protocol):
    """One USB device as seen from the host's controller, endpoint 0 only."""

    def is_attached(self) -> bool:
        """True when the device presents itself on the bus (pull-up on, powered)."""
        ...

    def bus_reset(self) -> None:
        """Drive a USB bus reset and let the device finish enumeration speed detection."""
        ...

    def control_transfer(self, setup: Setup, data: bytes = b"", timeout_ms: int = 5000) -> bytes:
        """Run a whole control transfer on EP0 (SETUP, data stage in 64-byte packets, status).

        IN transfers return the bytes the device sent (at most ``setup.wLength``); OUT transfers
        send ``data`` (``len(data) == setup.wLength``) and return b"". Raises :class:`Stall`,
        :class:`Timeout` or :class:`Disconnected`. ``timeout_ms`` is virtual time.
        """
        ...
