"""A DfuSe host client over any pyusb device (the virtual board's backend, USB/IP, or a real board).

Protocol (FACTS.md §F): class requests on the DFU interface, DfuSe special commands in DNLOAD block 0
(Set Address Pointer 0x21, Erase 0x41, Mass Erase 0x41 alone), data in blocks numbered from 2 at
``pointer + (block - 2) * wTransferSize``, GETSTATUS after every DNLOAD with a wait of bwPollTimeout
while the device reports dfuDNBUSY. Waits go through the injectable ``sleep_ms`` so a virtual board
can advance virtual time instead of the wall clock. Every range is checked against the alternate
setting's layout string before the device is touched.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum

import usb.core
import usb.util

from h743sim.dfuse.layout import LayoutError, MemoryLayout, parse_layout
from h743sim.errors import UserError

# --- protocol constants (FACTS.md §F.1-F.4) --------------------------------------------------------

DFU_DETACH, DFU_DNLOAD, DFU_UPLOAD, DFU_GETSTATUS, DFU_CLRSTATUS, DFU_GETSTATE, DFU_ABORT = range(7)
REQUEST_NAMES = {
    DFU_DETACH: "DFU_DETACH",
    DFU_DNLOAD: "DFU_DNLOAD",
    DFU_UPLOAD: "DFU_UPLOAD",
    DFU_GETSTATUS: "DFU_GETSTATUS",
    DFU_CLRSTATUS: "DFU_CLRSTATUS",
    DFU_GETSTATE: "DFU_GETSTATE",
    DFU_ABORT: "DFU_ABORT",
}
_OUT = 0x21  # host to device, class, interface
_IN = 0xA1  # device to host, class, interface

DFU_INTERFACE_CLASS = 0xFE
DFU_INTERFACE_SUBCLASS = 0x01
DFU_PROTOCOL_DFU_MODE = 0x02
DFU_FUNCTIONAL_DESCRIPTOR = 0x21
_GET_DESCRIPTOR_TYPE, _GET_DESCRIPTOR = 0x80, 0x06  # standard, device-to-host
_DT_CONFIGURATION, _DT_INTERFACE = 0x02, 0x04
CMD_GET_COMMANDS = 0x00
CMD_SET_ADDRESS = 0x21
CMD_ERASE = 0x41
FIRST_DATA_BLOCK = 2
MAX_BLOCK = 0xFFFF


class DfuState(IntEnum):
    APP_IDLE = 0
    APP_DETACH = 1
    DFU_IDLE = 2
    DFU_DNLOAD_SYNC = 3
    DFU_DNBUSY = 4
    DFU_DNLOAD_IDLE = 5
    DFU_MANIFEST_SYNC = 6
    DFU_MANIFEST = 7
    DFU_MANIFEST_WAIT_RESET = 8
    DFU_UPLOAD_IDLE = 9
    DFU_ERROR = 10


STATE_NAMES = {
    0: "appIDLE",
    1: "appDETACH",
    2: "dfuIDLE",
    3: "dfuDNLOAD-SYNC",
    4: "dfuDNBUSY",
    5: "dfuDNLOAD-IDLE",
    6: "dfuMANIFEST-SYNC",
    7: "dfuMANIFEST",
    8: "dfuMANIFEST-WAIT-RESET",
    9: "dfuUPLOAD-IDLE",
    10: "dfuERROR",
}


class DfuStatus(IntEnum):
    OK = 0x00
    ERR_TARGET = 0x01
    ERR_FILE = 0x02
    ERR_WRITE = 0x03
    ERR_ERASE = 0x04
    ERR_CHECK_ERASED = 0x05
    ERR_PROG = 0x06
    ERR_VERIFY = 0x07
    ERR_ADDRESS = 0x08
    ERR_NOTDONE = 0x09
    ERR_FIRMWARE = 0x0A
    ERR_VENDOR = 0x0B
    ERR_USBR = 0x0C
    ERR_POR = 0x0D
    ERR_UNKNOWN = 0x0E
    ERR_STALLEDPKT = 0x0F


STATUS_NAMES = {
    0x00: "OK",
    0x01: "errTARGET",
    0x02: "errFILE",
    0x03: "errWRITE",
    0x04: "errERASE",
    0x05: "errCHECK_ERASED",
    0x06: "errPROG",
    0x07: "errVERIFY",
    0x08: "errADDRESS",
    0x09: "errNOTDONE",
    0x0A: "errFIRMWARE",
    0x0B: "errVENDOR",
    0x0C: "errUSBR",
    0x0D: "errPOR",
    0x0E: "errUNKNOWN",
    0x0F: "errSTALLEDPKT",
}
STATUS_MEANINGS = {
    0x01: "the address or target is not usable",
    0x02: "the file is not for this device",
    0x03: "the device could not write the memory",
    0x04: "the memory erase failed",
    0x05: "the memory was not erased where it was written",
    0x06: "programming the memory failed",
    0x07: "the written data did not read back the same",
    0x08: "the address is out of range",
    0x09: "the download ended before the device expected",
    0x0A: "the firmware is corrupt",
    0x0B: "vendor-specific error (ST: read protection active, or a media hook failed)",
    0x0C: "the device saw an unexpected USB reset",
    0x0D: "the device saw an unexpected power-on reset",
    0x0E: "unknown error",
    0x0F: "the device stalled an unexpected request",
}


def state_name(state: int) -> str:
    return STATE_NAMES.get(state, f"state {state}")


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"status 0x{status:02X}")


# --- errors ---------------------------------------------------------------------------------------


class DfuseClientError(UserError):
    """Base of the client's errors (a failed DFU operation, explained in the message)."""


class DfuError(DfuseClientError):
    """The device reported an error status (it was cleared back to dfuIDLE before raising)."""

    def __init__(self, status: int, state: int, context: str = "") -> None:
        self.status = status
        self.state = state
        self.status_name = status_name(status)
        self.state_name = state_name(state)
        self.context = context
        meaning = STATUS_MEANINGS.get(status, "")
        text = f"device reported {self.status_name} in {self.state_name}" + (
            f" ({meaning})" if meaning else ""
        )
        super().__init__(f"{context}: {text}" if context else text)


class DfuStallError(DfuseClientError):
    """The device stalled a request (a request in the wrong state, or one it does not support)."""

    def __init__(self, request: str, state_after: DfuStatusReport | None = None) -> None:
        self.request = request
        self.state_after = state_after
        after = (
            f"; afterwards it reports {state_after.status_name} in {state_after.state_name}"
            if state_after is not None
            else ""
        )
        super().__init__(f"the device stalled {request}{after}")


class DfuDeviceGone(DfuseClientError):
    """The device disappeared (disconnected, reset, powered off)."""


class DfuTimeoutError(DfuseClientError):
    """A transfer timed out, or the device stayed busy longer than allowed."""


class DfuProtocolError(DfuseClientError):
    """The device answered something the protocol does not allow at this point."""


class DfuVerifyError(DfuseClientError):
    """Data read back after a download differs from what was written."""


# --- descriptors and status -----------------------------------------------------------------------


@dataclass(frozen=True)
class DfuStatusReport:
    """The 6 bytes of DFU_GETSTATUS."""

    status: int
    poll_timeout_ms: int
    state: int
    string_index: int

    @classmethod
    def parse(cls, raw: bytes) -> DfuStatusReport:
        if len(raw) < 6:
            raise DfuProtocolError(f"DFU_GETSTATUS returned {len(raw)} bytes, expected 6")
        return cls(raw[0], int.from_bytes(raw[1:4], "little"), raw[4], raw[5])

    @property
    def status_name(self) -> str:
        return status_name(self.status)

    @property
    def state_name(self) -> str:
        return state_name(self.state)


@dataclass(frozen=True)
class DfuFunctionalDescriptor:
    """DFU functional descriptor (type 0x21): attributes, detach timeout, transfer size, DFU version."""

    attributes: int
    detach_timeout_ms: int
    transfer_size: int
    bcd_dfu: int

    @classmethod
    def parse(cls, raw: bytes) -> DfuFunctionalDescriptor:
        # DFU 1.0 devices send 7 bytes (no bcdDFUVersion); treat them as 1.0.
        if len(raw) < 7 or raw[1] != DFU_FUNCTIONAL_DESCRIPTOR:
            raise DfuProtocolError(f"not a DFU functional descriptor: {bytes(raw).hex(' ')}")
        bcd = int.from_bytes(raw[7:9], "little") if len(raw) >= 9 else 0x0100
        return cls(raw[2], int.from_bytes(raw[3:5], "little"), int.from_bytes(raw[5:7], "little"), bcd)

    @property
    def can_download(self) -> bool:
        return bool(self.attributes & 0x01)

    @property
    def can_upload(self) -> bool:
        return bool(self.attributes & 0x02)

    @property
    def manifestation_tolerant(self) -> bool:
        return bool(self.attributes & 0x04)

    @property
    def will_detach(self) -> bool:
        return bool(self.attributes & 0x08)

    @property
    def is_dfuse(self) -> bool:
        return self.bcd_dfu == 0x011A


@dataclass(frozen=True)
class AltSetting:
    """One alternate setting of the DFU interface and the memory its string describes."""

    alt: int
    name: str
    layout: MemoryLayout | None
    layout_error: str | None = None


def find_descriptors(raw: bytes | Sequence[int], descriptor_type: int | None) -> list[bytes]:
    """Every descriptor of ``descriptor_type`` (None: all) in a run of concatenated descriptors."""
    data = bytes(raw)
    out: list[bytes] = []
    pos = 0
    while pos + 2 <= len(data):
        length = data[pos]
        if length < 2:
            break
        if descriptor_type is None or data[pos + 1] == descriptor_type:
            out.append(data[pos : pos + length])
        pos += length
    return out


Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: phase is 'erase', 'download' or 'upload'; done/total in bytes."""


def _wall_sleep_ms(ms: int) -> None:
    time.sleep(ms / 1000.0)


def is_dfu_device(dev: usb.core.Device) -> bool:
    """True when any configuration has a DFU-mode interface (class 0xFE, subclass 1, protocol 2)."""
    try:
        for cfg in dev:
            for intf in cfg:
                if (
                    intf.bInterfaceClass == DFU_INTERFACE_CLASS
                    and intf.bInterfaceSubClass == DFU_INTERFACE_SUBCLASS
                    and intf.bInterfaceProtocol == DFU_PROTOCOL_DFU_MODE
                ):
                    return True
    except usb.core.USBError:
        return False
    return False


def find_dfu_devices(backend: object | None = None, vid: int | None = None, pid: int | None = None) -> list:
    """All DFU-mode devices pyusb sees through ``backend`` (None: the system's libusb)."""
    kwargs: dict[str, object] = {}
    if vid is not None:
        kwargs["idVendor"] = vid
    if pid is not None:
        kwargs["idProduct"] = pid
    found = usb.core.find(find_all=True, backend=backend, custom_match=is_dfu_device, **kwargs)
    return list(found or [])


# --- the client -----------------------------------------------------------------------------------


class DfuseClient:
    """DfuSe operations on one pyusb device in DFU mode.

    ``sleep_ms(ms)`` is called for every wait the protocol asks for (bwPollTimeout); pass the virtual
    board's time advance for deterministic runs. Timeouts are in milliseconds as pyusb takes them.
    """

    def __init__(
        self,
        device: usb.core.Device,
        *,
        interface: int | None = None,
        sleep_ms: Callable[[int], None] | None = None,
        timeout_ms: int = 5000,
        status_timeout_ms: int = 20000,
        busy_limit_ms: int = 300_000,
        max_busy_polls: int = 10_000,
        address_every_block: bool = False,
    ) -> None:
        self.device = device
        self.sleep_ms = sleep_ms or _wall_sleep_ms
        self.timeout_ms = timeout_ms
        self.status_timeout_ms = status_timeout_ms
        self.busy_limit_ms = busy_limit_ms
        self.max_busy_polls = max_busy_polls
        # pydfu and dfu-util 0.8 send Set Address before every chunk and always use block 2.
        self.address_every_block = address_every_block
        self._current_alt: int | None = None
        self._claimed = False
        self._left = False
        self._configure()
        self.interface = self._choose_interface(interface)
        self.alt_settings = self._read_alt_settings()
        self.functional = self._read_functional_descriptor()
        usb.util.claim_interface(self.device, self.interface)
        self._claimed = True

    @classmethod
    def find(
        cls,
        backend: object | None = None,
        *,
        vid: int | None = None,
        pid: int | None = None,
        **kwargs: object,
    ) -> DfuseClient:
        """Open the first DFU-mode device ``backend`` shows (optionally with this VID/PID)."""
        devices = find_dfu_devices(backend, vid, pid)
        if not devices:
            which = f" {vid or 0:04x}:{pid or 0:04x}" if vid is not None or pid is not None else ""
            raise DfuDeviceGone(f"no DFU device{which} found")
        return cls(devices[0], **kwargs)  # type: ignore[arg-type]

    # ---- set-up ----------------------------------------------------------------------------------

    def _configure(self) -> None:
        try:
            self._config = self.device.get_active_configuration()
        except usb.core.USBError:
            # A kernel configures a new device; a bare backend may not have: do what it would.
            try:
                self.device.set_configuration()
                self._config = self.device.get_active_configuration()
            except usb.core.USBError as exc:
                raise self._usb_error("SET_CONFIGURATION", exc) from exc

    def _dfu_interfaces(self) -> list:
        return [
            intf
            for intf in self._config
            if intf.bInterfaceClass == DFU_INTERFACE_CLASS
            and intf.bInterfaceSubClass == DFU_INTERFACE_SUBCLASS
        ]

    def _choose_interface(self, wanted: int | None) -> int:
        intfs = self._dfu_interfaces()
        if not intfs:
            raise DfuProtocolError("the device has no DFU interface (class 0xFE, subclass 0x01)")
        numbers = sorted({i.bInterfaceNumber for i in intfs})
        if wanted is not None and wanted not in numbers:
            raise DfuProtocolError(f"interface {wanted} is not a DFU interface (DFU interfaces: {numbers})")
        number = wanted if wanted is not None else numbers[0]
        protocols = {i.bInterfaceProtocol for i in intfs if i.bInterfaceNumber == number}
        if DFU_PROTOCOL_DFU_MODE not in protocols:
            raise DfuProtocolError(
                f"interface {number} is a DFU runtime interface (protocol {sorted(protocols)}); "
                "the device must be in DFU mode (bootloader) first"
            )
        return number

    def _read_alt_settings(self) -> list[AltSetting]:
        alts: list[AltSetting] = []
        for intf in self._config:
            if intf.bInterfaceNumber != self.interface:
                continue
            name = ""
            if intf.iInterface:
                try:
                    name = usb.util.get_string(self.device, intf.iInterface) or ""
                except (usb.core.USBError, ValueError) as exc:
                    raise DfuProtocolError(
                        f"cannot read string {intf.iInterface} of alt {intf.bAlternateSetting}: {exc}"
                    ) from exc
            layout, error = None, None
            if name.startswith("@"):
                try:
                    layout = parse_layout(name)
                except LayoutError as exc:
                    error = str(exc)
            else:
                error = f"alt {intf.bAlternateSetting} string {name!r} is not a DfuSe layout"
            alts.append(AltSetting(intf.bAlternateSetting, name, layout, error))
        return sorted(alts, key=lambda a: a.alt)

    def _read_functional_descriptor(self) -> DfuFunctionalDescriptor:
        # libusb puts class descriptors in the interface's (or configuration's) extra bytes; some
        # backends (pyusb-usbip-backend) drop them, so fall back to reading the configuration itself.
        for holder in [*(i for i in self._config if i.bInterfaceNumber == self.interface), self._config]:
            extra = getattr(holder, "extra_descriptors", None) or b""
            found = find_descriptors(extra, DFU_FUNCTIONAL_DESCRIPTOR)
            if found:
                return DfuFunctionalDescriptor.parse(found[0])
        raw = self._control_in(
            _GET_DESCRIPTOR_TYPE,
            _GET_DESCRIPTOR,
            (_DT_CONFIGURATION << 8) | self._config.index,
            0,
            self._config.wTotalLength,
            "GET_DESCRIPTOR(CONFIGURATION)",
        )
        # Only class descriptors that follow our interface count (a HID descriptor is type 0x21 too).
        current = None
        for desc in find_descriptors(raw, None):
            if desc[1] == _DT_INTERFACE and len(desc) >= 3:
                current = desc[2]
            elif desc[1] == DFU_FUNCTIONAL_DESCRIPTOR and current == self.interface:
                return DfuFunctionalDescriptor.parse(desc)
        raise DfuProtocolError("the configuration has no DFU functional descriptor (type 0x21)")

    @property
    def transfer_size(self) -> int:
        return self.functional.transfer_size

    @property
    def layouts(self) -> dict[int, MemoryLayout | None]:
        return {a.alt: a.layout for a in self.alt_settings}

    def alt_setting(self, alt: int) -> AltSetting:
        for a in self.alt_settings:
            if a.alt == alt:
                return a
        raise DfuProtocolError(
            f"alternate setting {alt} does not exist (the device has {[a.alt for a in self.alt_settings]})"
        )

    def layout(self, alt: int) -> MemoryLayout:
        a = self.alt_setting(alt)
        if a.layout is None:
            raise LayoutError(f"alternate setting {alt} has no usable memory layout: {a.layout_error}")
        return a.layout

    def alt_for(self, address: int, length: int = 1) -> int:
        """The alternate setting whose memory holds the whole range."""
        for a in self.alt_settings:
            if a.layout is not None and a.layout.contains(address, length):
                return a.alt
        memories = "; ".join(
            f"alt {a.alt} {a.layout.describe_extent()}" for a in self.alt_settings if a.layout
        )
        raise LayoutError(
            f"0x{address:08X}..0x{address + max(length, 1) - 1:08X} is not inside any memory of the device ({memories})"
        )

    def close(self) -> None:
        if self._claimed:
            try:
                usb.util.release_interface(self.device, self.interface)
            except usb.core.USBError:
                pass  # the device may be gone (after leave)
            self._claimed = False
        usb.util.dispose_resources(self.device)

    def __enter__(self) -> DfuseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transfers -------------------------------------------------------------------------------

    def _usb_error(self, what: str, exc: usb.core.USBError) -> DfuseClientError:
        code = exc.errno
        if isinstance(exc, usb.core.USBTimeoutError) or code == errno.ETIMEDOUT:
            return DfuTimeoutError(f"{what} timed out")
        if code == errno.ENODEV:
            return DfuDeviceGone(f"the device disappeared during {what}")
        if code == errno.EPIPE:
            return DfuStallError(what)
        return DfuseClientError(f"{what} failed: {exc}")

    def _control_in(
        self,
        rtype: int,
        request: int,
        value: int,
        index: int,
        length: int,
        what: str,
        timeout: int | None = None,
    ) -> bytes:
        try:
            return bytes(
                self.device.ctrl_transfer(rtype, request, value, index, length, timeout or self.timeout_ms)
            )
        except usb.core.USBError as exc:
            raise self._usb_error(what, exc) from exc

    def _class_out(self, request: int, value: int, data: bytes, what: str) -> None:
        try:
            self.device.ctrl_transfer(_OUT, request, value, self.interface, data, self.timeout_ms)
        except usb.core.USBError as exc:
            raise self._stall_with_state(what, exc) from exc

    def _class_in(
        self, request: int, value: int, length: int, what: str, timeout: int | None = None
    ) -> bytes:
        try:
            return bytes(
                self.device.ctrl_transfer(
                    _IN, request, value, self.interface, length, timeout or self.timeout_ms
                )
            )
        except usb.core.USBError as exc:
            raise self._stall_with_state(what, exc) from exc

    def _stall_with_state(self, what: str, exc: usb.core.USBError) -> DfuseClientError:
        err = self._usb_error(what, exc)
        if isinstance(err, DfuStallError):
            # The next SETUP clears an EP0 stall; ask what the device thinks happened.
            try:
                report = DfuStatusReport.parse(
                    bytes(
                        self.device.ctrl_transfer(
                            _IN, DFU_GETSTATUS, 0, self.interface, 6, self.status_timeout_ms
                        )
                    )
                )
            except (usb.core.USBError, DfuProtocolError):
                report = None
            return DfuStallError(what, report)
        return err

    # ---- DFU requests ----------------------------------------------------------------------------

    def get_status(self) -> DfuStatusReport:
        return DfuStatusReport.parse(
            self._class_in(DFU_GETSTATUS, 0, 6, "DFU_GETSTATUS", self.status_timeout_ms)
        )

    def get_state(self) -> int:
        raw = self._class_in(DFU_GETSTATE, 0, 1, "DFU_GETSTATE")
        if len(raw) != 1:
            raise DfuProtocolError(f"DFU_GETSTATE returned {len(raw)} bytes, expected 1")
        return raw[0]

    def clear_status(self) -> None:
        self._class_out(DFU_CLRSTATUS, 0, b"", "DFU_CLRSTATUS")

    def abort(self) -> None:
        self._class_out(DFU_ABORT, 0, b"", "DFU_ABORT")

    def select_alt(self, alt: int) -> None:
        self.alt_setting(alt)  # exists?
        try:
            self.device.set_interface_altsetting(interface=self.interface, alternate_setting=alt)
        except usb.core.USBError as exc:
            raise self._usb_error(f"SET_INTERFACE(alt {alt})", exc) from exc
        self._current_alt = alt

    def recover_to_idle(self) -> DfuStatusReport:
        """Bring the device to dfuIDLE the way pydfu does: up to 4 rounds of GETSTATUS, then ABORT
        (from an idle-like state) or CLRSTATUS (from anything else)."""
        report = self.get_status()
        for _ in range(4):
            if report.state == DfuState.DFU_IDLE:
                return report
            if report.state in (DfuState.DFU_DNLOAD_IDLE, DfuState.DFU_UPLOAD_IDLE):
                self.abort()
            elif report.state in (DfuState.DFU_DNBUSY, DfuState.DFU_DNLOAD_SYNC, DfuState.DFU_MANIFEST_SYNC):
                self.sleep_ms(report.poll_timeout_ms)
                self.abort()
            else:
                self.clear_status()
            report = self.get_status()
        if report.state != DfuState.DFU_IDLE:
            raise DfuProtocolError(
                f"could not bring the device back to dfuIDLE; it stays in {report.state_name}"
            )
        return report

    def _prepare(self, alt: int) -> None:
        if self._left:
            raise DfuDeviceGone("the device left DFU mode; open it again after it re-enumerates")
        if self._current_alt != alt:
            self.select_alt(alt)
        self.recover_to_idle()

    def _dnload(self, block: int, data: bytes, what: str) -> None:
        self._class_out(DFU_DNLOAD, block, data, what)

    def _wait_done(self, what: str) -> DfuStatusReport:
        """GETSTATUS after a DNLOAD, sleeping bwPollTimeout while the device is busy; errors raise."""
        report = self.get_status()
        waited, polls = 0, 0
        while (
            report.state in (DfuState.DFU_DNBUSY, DfuState.DFU_DNLOAD_SYNC) and report.status == DfuStatus.OK
        ):
            if polls >= self.max_busy_polls or waited > self.busy_limit_ms:
                raise DfuTimeoutError(
                    f"{what}: the device stayed busy ({report.state_name}) for {waited} ms / {polls} polls"
                )
            self.sleep_ms(report.poll_timeout_ms)
            waited += report.poll_timeout_ms
            polls += 1
            report = self.get_status()
        if report.state == DfuState.DFU_ERROR or report.status != DfuStatus.OK:
            self._clear_and_raise(report, what)
        if report.state != DfuState.DFU_DNLOAD_IDLE:
            raise DfuProtocolError(
                f"{what}: expected dfuDNLOAD-IDLE after the command, the device is in {report.state_name}"
            )
        return report

    def _clear_and_raise(self, report: DfuStatusReport, what: str) -> None:
        try:
            if report.state == DfuState.DFU_ERROR:
                self.clear_status()
            else:
                self.abort()
        except DfuseClientError:
            pass  # the error itself is what matters
        raise DfuError(report.status, report.state, what)

    def _command(self, payload: bytes, what: str) -> None:
        self._dnload(0, payload, what)
        self._wait_done(what)

    # ---- DfuSe commands --------------------------------------------------------------------------

    def get_commands(self, alt: int = 0) -> bytes:
        """The command bytes the device supports (UPLOAD block 0)."""
        self._prepare(alt)
        data = self._class_in(DFU_UPLOAD, 0, 64, "DFU_UPLOAD block 0 (Get Commands)")
        self.recover_to_idle()
        return data

    def set_address(self, address: int, alt: int | None = None) -> None:
        """Set Address Pointer (0x21). The address must lie in the alternate setting's memory."""
        alt = self._resolve_alt(alt, address, 1)
        self.layout(alt).check(address, 1)  # LayoutError when outside the memory
        self._prepare(alt)
        self._set_address(address)

    def _set_address(self, address: int) -> None:
        self._command(
            bytes([CMD_SET_ADDRESS]) + address.to_bytes(4, "little"), f"Set Address 0x{address:08X}"
        )

    def erase(self, address: int, alt: int | None = None) -> tuple[int, int]:
        """Erase the sector holding ``address``; returns (sector start, sector size)."""
        alt = self._resolve_alt(alt, address, 1)
        layout = self.layout(alt)
        layout.check(address, 1, erase=True)
        (start, size) = layout.sectors(address, 1)[0]
        self._prepare(alt)
        self._erase_sector(start)
        return start, size

    def erase_range(
        self, address: int, length: int, alt: int | None = None, progress: Progress | None = None
    ) -> list[tuple[int, int]]:
        """Erase every sector the range touches; returns their (start, size)."""
        alt = self._resolve_alt(alt, address, length)
        layout = self.layout(alt)
        layout.check(address, length, erase=True)
        sectors = layout.sectors(address, length)
        self._prepare(alt)
        self._erase_sectors(sectors, progress)
        return sectors

    def _erase_sectors(self, sectors: list[tuple[int, int]], progress: Progress | None) -> None:
        total = sum(size for _, size in sectors)
        done = 0
        for start, size in sectors:
            self._erase_sector(start)
            done += size
            if progress:
                progress("erase", done, total)

    def _erase_sector(self, start: int) -> None:
        self._command(bytes([CMD_ERASE]) + start.to_bytes(4, "little"), f"Erase sector 0x{start:08X}")

    def mass_erase(self, alt: int = 0) -> None:
        """Mass erase (0x41 alone): the device erases all of the alternate setting's erasable memory."""
        layout = self.layout(alt)
        if not any(s.erasable for s in layout):
            raise LayoutError(f"memory '{layout.name}' of alt {alt} has no erasable segment")
        self._prepare(alt)
        self._command(bytes([CMD_ERASE]), "Mass erase")

    def download(
        self,
        address: int,
        data: bytes,
        *,
        alt: int | None = None,
        erase: bool = True,
        verify: bool = False,
        progress: Progress | None = None,
    ) -> None:
        """Write ``data`` at ``address`` in wTransferSize blocks (erasing the touched sectors first
        unless ``erase`` is False, e.g. after a mass erase)."""
        data = bytes(data)
        if not data:
            raise ValueError("nothing to download (empty data)")
        alt = self._resolve_alt(alt, address, len(data))
        layout = self.layout(alt)
        layout.check(address, len(data), write=True, erase=erase)
        if not self.functional.can_download:
            raise DfuProtocolError("the device's DFU descriptor says it cannot download (bitCanDnload = 0)")
        self._prepare(alt)
        if erase:
            self._erase_sectors(layout.sectors(address, len(data)), progress)
        self._write(address, data, progress)
        if verify:
            readback = self.upload(address, len(data), alt=alt)
            if readback != data:
                first = next(i for i, (a, b) in enumerate(zip(readback, data, strict=True)) if a != b)
                raise DfuVerifyError(
                    f"verify failed at 0x{address + first:08X}: wrote 0x{data[first]:02X}, read 0x{readback[first]:02X}"
                )

    def _write(self, address: int, data: bytes, progress: Progress | None) -> None:
        size = self.transfer_size
        done = 0
        for base, block, chunk in self._blocks(address, len(data), size):
            if block == FIRST_DATA_BLOCK or self.address_every_block:
                self._set_address(base)
            payload = data[done : done + chunk]
            what = (
                f"DFU_DNLOAD block {block} (0x{base + (block - FIRST_DATA_BLOCK) * size:08X}, {chunk} bytes)"
            )
            self._dnload(block, payload, what)
            self._wait_done(what)
            done += chunk
            if progress:
                progress("download", done, len(data))

    def _blocks(self, address: int, length: int, size: int) -> Iterator[tuple[int, int, int]]:
        """(pointer, block number, chunk length): blocks 2.. from each pointer, a new pointer before the
        16-bit block number would wrap (or before every block with address_every_block)."""
        per_pointer = 1 if self.address_every_block else MAX_BLOCK - FIRST_DATA_BLOCK + 1
        offset = 0
        while offset < length:
            base = address + offset
            for i in range(per_pointer):
                pos = offset + i * size
                if pos >= length:
                    break
                yield base, FIRST_DATA_BLOCK + i, min(size, length - pos)
            offset += per_pointer * size

    def upload(
        self, address: int, length: int, *, alt: int | None = None, progress: Progress | None = None
    ) -> bytes:
        """Read ``length`` bytes from ``address`` (UPLOAD blocks 2.. after Set Address, then ABORT)."""
        if length <= 0:
            raise ValueError(f"upload length must be positive, got {length}")
        alt = self._resolve_alt(alt, address, length)
        self.layout(alt).check(address, length, read=True)
        if not self.functional.can_upload:
            raise DfuProtocolError("the device's DFU descriptor says it cannot upload (bitCanUpload = 0)")
        self._prepare(alt)
        size = self.transfer_size
        out = bytearray()
        pointer = None
        for base, block, chunk in self._blocks(address, length, size):
            if base != pointer:
                if pointer is not None:
                    self.abort()
                self._set_address(base)
                self.abort()  # UPLOAD is only allowed from dfuIDLE / dfuUPLOAD-IDLE
                pointer = base
            what = (
                f"DFU_UPLOAD block {block} (0x{base + (block - FIRST_DATA_BLOCK) * size:08X}, {chunk} bytes)"
            )
            got = self._class_in(DFU_UPLOAD, block, chunk, what)
            out += got
            if progress:
                progress("upload", len(out), length)
            if len(got) < chunk:
                self.recover_to_idle()
                raise DfuProtocolError(
                    f"{what}: the device returned only {len(got)} bytes (upload ended early)"
                )
        self.abort()
        return bytes(out)

    def leave(self, address: int | None = None, alt: int = 0) -> DfuStatusReport | None:
        """Leave DFU mode: optional Set Address (the jump address), a zero-length DNLOAD, and one
        GETSTATUS that should say dfuMANIFEST. The device may vanish at any point after the DNLOAD;
        that is success. Returns the last status seen, or None when the device was already gone."""
        if address is not None:
            self.layout(alt).check(address, 1)
        self._prepare(alt)
        if address is not None:
            self._set_address(address)
        try:
            self._dnload(0, b"", "DFU_DNLOAD (leave)")
        except (DfuDeviceGone, DfuTimeoutError):
            self._left = True
            return None  # it went away at once: that is what leaving means
        self._left = True
        try:
            report = self.get_status()
        except (DfuDeviceGone, DfuStallError, DfuTimeoutError):
            return None
        if report.state == DfuState.DFU_ERROR or report.status != DfuStatus.OK:
            self._left = False
            self._clear_and_raise(report, "leave")
        if report.state not in (
            DfuState.DFU_MANIFEST_SYNC,
            DfuState.DFU_MANIFEST,
            DfuState.DFU_MANIFEST_WAIT_RESET,
            DfuState.DFU_IDLE,
        ):
            raise DfuProtocolError(
                f"leave: expected dfuMANIFEST after the zero-length DNLOAD, got {report.state_name}"
            )
        return report

    def _resolve_alt(self, alt: int | None, address: int, length: int) -> int:
        if not 0 <= address <= 0xFFFFFFFF:
            raise LayoutError(f"address {address:#x} does not fit in 32 bits")
        if alt is None:
            return self.alt_for(address, length)
        self.alt_setting(alt)
        return alt

    def download_parts(
        self, parts: Sequence, *, erase: bool = True, verify: bool = False, progress: Progress | None = None
    ) -> None:
        """Download :class:`~h743sim.dfuse.images.DownloadPart` items. All of them are checked against
        the layouts before anything is sent; each touched sector is erased once (two parts sharing a
        sector must not erase each other), then the parts are written."""
        for part in parts:
            self.layout(part.alt).check(part.address, len(part.data), write=True, erase=erase)
        by_alt: dict[int, list] = {}
        for part in parts:
            by_alt.setdefault(part.alt, []).append(part)
        for alt, alt_parts in by_alt.items():
            layout = self.layout(alt)
            self._prepare(alt)
            if erase:
                sectors = sorted({s for p in alt_parts for s in layout.sectors(p.address, len(p.data))})
                self._erase_sectors(sectors, progress)
            for part in alt_parts:
                self.download(part.address, part.data, alt=alt, erase=False, verify=verify, progress=progress)
