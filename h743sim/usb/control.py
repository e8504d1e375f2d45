"""The host controller side of EP0: whole control transfers over the OTG_FS model's host port.

:class:`ControlTransferRunner` implements :class:`h743sim.usb.link.UsbLink`. A control transfer is
split into transactions as a USB host controller does: SETUP, data stage packets of up to the
device's EP0 max packet size, then the zero-length status stage in the opposite direction (IN when
there is no data stage). A NAKed transaction is retried while the firmware runs: ``run_for(ns)``
advances the board between tries, starting at ``nak_retry_ns`` and doubling up to
``max_retry_ns`` while the device keeps NAKing (fewer engine slices during long flash operations,
at most that much extra latency). Each ACKed packet also advances the board by its time on a
12 Mbit/s bus, so transfers take realistic virtual time and the firmware runs while they happen.

Errors: STALL -> :class:`~h743sim.usb.link.Stall`; no completion before ``timeout_ms`` of virtual
time, or three transactions in a row with no handshake (wrong address, FIFO full) ->
:class:`~h743sim.usb.link.Timeout`; device not connected or gone during the transfer ->
:class:`~h743sim.usb.link.Disconnected`.

Like a hub driver, the runner resets a port that is connected but was never reset (a freshly
attached or re-connected device) before its first transfer. Device addresses are handled by the
model's port (it follows SET_ADDRESS the way the bus does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from h743sim.usb.link import Disconnected, Setup, Stall, Timeout, UsbError
from peripherals.host import NS_PER_MS, NS_PER_US
from peripherals.otg_fs import BUS_RESET_NS, NAK, NO_RESPONSE, STALL, OtgFs

T = TypeVar("T")

RESET_RECOVERY_NS = 10 * NS_PER_MS  # USB 2.0 TRSTRCY: the host waits this long after a reset
NO_RESPONSE_LIMIT = 3  # host controllers give up after three transaction errors in a row
FS_BIT_NS = 1000 / 12  # full speed: 12 Mbit/s
PACKET_OVERHEAD_BYTES = 14  # token + SYNC/PID/CRC/EOP of data and handshake + inter-packet gaps
GET_DESCRIPTOR, DT_DEVICE = 6, 1
VALID_EP0_MPS = (8, 16, 32, 64)


class ControlTransferRunner:
    """EP0 control transfers to an :class:`~peripherals.otg_fs.OtgFs` through its host port."""

    def __init__(
        self,
        otg: OtgFs,
        run_for: Callable[[int], None],
        now_ns: Callable[[], int],
        *,
        max_packet: int = 64,
        nak_retry_ns: int = 25 * NS_PER_US,
        max_retry_ns: int = 400 * NS_PER_US,
        bus_time: bool = True,
    ) -> None:
        if max_packet not in VALID_EP0_MPS:
            raise ValueError(f"EP0 max packet size must be one of {VALID_EP0_MPS}, got {max_packet}")
        if nak_retry_ns <= 0 or max_retry_ns < nak_retry_ns:
            raise ValueError("need 0 < nak_retry_ns <= max_retry_ns")
        self.otg = otg
        self.run_for = run_for
        self.now_ns = now_ns
        #: EP0 max packet size the host assumes; learnt from the device descriptor (bMaxPacketSize0)
        self.max_packet = max_packet
        self.nak_retry_ns = nak_retry_ns
        self.max_retry_ns = max_retry_ns
        self.bus_time = bus_time

    # ------------------------------------------------------------------ UsbLink
    def is_attached(self) -> bool:
        return self.otg.host_connected()

    def bus_reset(self) -> None:
        """Drive SE0 for the reset time, wait for enumeration (ENUMDNE) and the recovery time."""
        if not self.otg.host_connected():
            raise Disconnected("bus reset: no device connected")
        self.otg.host_bus_reset()
        self.run_for(BUS_RESET_NS)
        guard = self.now_ns() + BUS_RESET_NS
        while self.otg.host_reset_in_progress() and self.now_ns() < guard:
            self.run_for(self.nak_retry_ns)  # run_for may stop a little short of the reset's end
        self.run_for(RESET_RECOVERY_NS)
        if not self.otg.host_port_enabled():
            raise Disconnected("the device went away during the bus reset")

    @property
    def address(self) -> int:
        """The address the host uses for the device."""
        return self.otg.host_address

    def control_transfer(self, setup: Setup, data: bytes = b"", timeout_ms: int = 5000) -> bytes:
        """See :meth:`UsbLink.control_transfer`; ``timeout_ms <= 0`` waits without limit (libusb's 0)."""
        data = bytes(data)
        if setup.device_to_host:
            if data:
                raise ValueError("an IN control transfer carries no OUT data")
        elif len(data) != setup.wLength:
            raise ValueError(f"OUT control transfer: {len(data)} data bytes for wLength {setup.wLength}")
        if not self.otg.host_connected():
            raise Disconnected("control transfer: no device connected")
        if not self.otg.host_port_enabled():
            self.bus_reset()  # as a hub driver does for a newly connected device
        deadline = self.now_ns() + max(0, timeout_ms) * NS_PER_MS
        packet = setup.pack()
        self._transaction("SETUP", lambda: self.otg.host_setup(packet), deadline, timeout_ms, len(packet))
        if setup.wLength and setup.device_to_host:
            received = self._data_in(setup, deadline, timeout_ms)
            self._transaction("status (OUT)", lambda: self.otg.host_out(0, b""), deadline, timeout_ms)
            self._learn_max_packet(setup, received)
            return received
        if setup.wLength:
            mps = self.max_packet
            for offset in range(0, len(data), mps):
                chunk = data[offset : offset + mps]
                attempt = lambda c=chunk: self.otg.host_out(0, c)  # noqa: E731
                self._transaction("OUT data", attempt, deadline, timeout_ms, len(chunk))
        status = self._transaction("status (IN)", lambda: self.otg.host_in(0), deadline, timeout_ms)
        if status:
            raise UsbError(f"device sent {len(status)} bytes in the status stage (expected a ZLP)")
        return b""

    # ------------------------------------------------------------------ stages
    def _data_in(self, setup: Setup, deadline: int, timeout_ms: int) -> bytes:
        received = bytearray()
        while len(received) < setup.wLength:
            packet = self._transaction("IN data", lambda: self.otg.host_in(0), deadline, timeout_ms)
            if len(packet) > setup.wLength - len(received) or len(packet) > self.max_packet:
                raise UsbError(
                    f"babble: device sent a {len(packet)}-byte packet with {setup.wLength - len(received)} "
                    f"bytes left of wLength and max packet {self.max_packet}"
                )
            received += packet
            if len(packet) < self.max_packet:
                break  # short packet ends the data stage
        return bytes(received)

    def _learn_max_packet(self, setup: Setup, received: bytes) -> None:
        """A host reads bMaxPacketSize0 from the device descriptor before using it."""
        if (
            setup.bmRequestType == 0x80
            and setup.bRequest == GET_DESCRIPTOR
            and setup.wValue >> 8 == DT_DEVICE
        ):
            if len(received) >= 8 and received[7] in VALID_EP0_MPS:
                self.max_packet = received[7]

    def _transaction(
        self, what: str, attempt: Callable[[], T], deadline: int, timeout_ms: int, payload: int = 0
    ) -> T:
        """Run one transaction, retrying NAKs (and up to 3 silent tries) while the board runs.

        ``payload`` is the OUT/SETUP data size (for the bus time); IN results carry their own.
        """
        interval = self.nak_retry_ns
        silent = 0
        while True:
            self._require_port(what)
            result = attempt()
            if result == STALL:
                raise Stall(f"{what} stage STALLed")
            if result == NAK:
                silent = 0
            elif result == NO_RESPONSE:
                silent += 1
                if silent >= NO_RESPONSE_LIMIT:
                    raise Timeout(f"{what}: no handshake from the device ({NO_RESPONSE_LIMIT} tries)")
            else:
                if self.bus_time:
                    self.run_for(self._packet_ns(len(result) if isinstance(result, bytes) else payload))
                return result
            if timeout_ms > 0 and self.now_ns() >= deadline:
                raise Timeout(f"{what}: not completed within {timeout_ms} ms (device kept NAKing)")
            self.run_for(interval)
            interval = min(2 * interval, self.max_retry_ns)

    def _packet_ns(self, payload: int) -> int:
        return int((payload + PACKET_OVERHEAD_BYTES) * 8 * FS_BIT_NS)

    def _require_port(self, what: str) -> None:
        if self.otg.host_port_enabled():
            return  # the usual case, in one call (it implies host_connected())
        if not self.otg.host_connected():
            raise Disconnected(f"{what}: the device disconnected")
        if not self.otg.host_port_enabled():
            raise Disconnected(f"{what}: the port was reset or disabled during the transfer")
