"""Test scaffolding: a pure-Python DfuSe device behind the UsbLink contract.

It behaves like ST's DfuSe middleware as FACTS.md §F describes it, independently of the host code
under test (it builds its own descriptors and layout strings, and never parses them):
- USB: answers nothing before the first bus reset; SET_CONFIGURATION only once addressed; one
  interface with one alternate setting per memory, DFU functional descriptor after them.
- DFU: states/status of §F.2; DNLOAD goes to dfuDNLOAD-SYNC, the next GETSTATUS answers dfuDNBUSY with
  bwPollTimeout and the work happens after that reply; the device stays busy for bwPollTimeout of
  virtual time, and a request arriving earlier is held (NAKed) until then (counted in
  ``early_requests``), or times out. Requests in the wrong state STALL and enter dfuERROR/errSTALLEDPKT.
- DfuSe commands of §F.4 (Get Commands, Set Address, Erase, Mass Erase), blocks >= 2 at
  pointer + (block - 2) * wTransferSize, leave by zero-length DNLOAD (dfuMANIFEST, then detach).
- Memories are NOR-like: erased bytes read 0xFF, programming only clears bits, and a program that
  does not read back (not erased first) fails with errVERIFY.
Virtual time only moves through :meth:`FakeDfuseDevice.advance` (the client's ``sleep_ms``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from h743sim.usb.link import Disconnected, Setup, Stall, Timeout

VID, PID = 0x0483, 0xDF11
KB = 1024

# DFU states / statuses (FACTS.md §F.2), spelled out here so the fake does not lean on the client.
APP_IDLE, DFU_IDLE, DNLOAD_SYNC, DNBUSY, DNLOAD_IDLE = 0, 2, 3, 4, 5
MANIFEST_SYNC, MANIFEST, MANIFEST_WAIT_RESET, UPLOAD_IDLE, DFU_ERROR = 6, 7, 8, 9, 10
OK, ERR_TARGET, ERR_WRITE, ERR_ERASE, ERR_VERIFY, ERR_UNKNOWN, ERR_STALLEDPKT = 0, 1, 3, 4, 7, 0x0E, 0x0F
ERR_PROG, ERR_VENDOR = 6, 0x0B


@dataclass(frozen=True)
class FakeSegment:
    address: int
    sector_size: int
    count: int
    access: str  # letters from "rew"

    @property
    def end(self) -> int:
        return self.address + self.sector_size * self.count

    def type_letter(self) -> str:
        bits = ("r" in self.access) * 1 + ("e" in self.access) * 2 + ("w" in self.access) * 4
        return chr(0x60 + bits)


@dataclass
class FakeMemory:
    name: str
    segments: list[FakeSegment]
    erase_ms: int
    mass_erase_ms: int
    program_ms: int
    sectors: dict[int, bytearray] = field(default_factory=dict)  # absent sector = erased
    erase_counts: dict[int, int] = field(default_factory=dict)

    def layout_string(self) -> str:
        out = f"@{self.name}"
        prev_end = None
        for seg in self.segments:
            size = seg.sector_size
            if size % (KB * KB) == 0:
                text = f"{size // (KB * KB):03d}M"
            elif size % KB == 0:
                text = f"{size // KB:03d}K"
            else:
                text = f"{size:03d}B"
            item = f"{seg.count:02d}*{text}{seg.type_letter()}"
            out += ("," if seg.address == prev_end else f"/0x{seg.address:08X}/") + item
            prev_end = seg.end
        return out

    def segment_at(self, address: int) -> FakeSegment | None:
        return next((s for s in self.segments if s.address <= address < s.end), None)

    def allows(self, address: int, length: int, what: str) -> bool:
        pos = address
        while pos < address + length:
            seg = self.segment_at(pos)
            if seg is None or what not in seg.access:
                return False
            pos = seg.end
        return True

    def _sector(self, address: int) -> tuple[int, int]:
        seg = self.segment_at(address)
        assert seg is not None
        start = seg.address + (address - seg.address) // seg.sector_size * seg.sector_size
        return start, seg.sector_size

    def peek(self, address: int, length: int) -> bytes:
        out = bytearray()
        pos = address
        while pos < address + length:
            start, size = self._sector(pos)
            n = min(start + size, address + length) - pos
            data = self.sectors.get(start)
            out += data[pos - start : pos - start + n] if data is not None else b"\xff" * n
            pos += n
        return bytes(out)

    def poke(self, address: int, data: bytes) -> None:
        """Set bytes directly (test set-up; no NOR rule)."""
        for i, b in enumerate(data):
            start, size = self._sector(address + i)
            self.sectors.setdefault(start, bytearray(b"\xff" * size))[address + i - start] = b

    def program(self, address: int, data: bytes) -> bool:
        """NOR program (AND); True when the bytes read back as written."""
        for i, b in enumerate(data):
            start, size = self._sector(address + i)
            sector = self.sectors.setdefault(start, bytearray(b"\xff" * size))
            sector[address + i - start] &= b
        return self.peek(address, len(data)) == bytes(data)

    def erase_sector(self, address: int) -> int:
        start, _ = self._sector(address)
        self.sectors.pop(start, None)
        self.erase_counts[start] = self.erase_counts.get(start, 0) + 1
        return start

    def mass_erase(self) -> None:
        for seg in self.segments:
            if "e" in seg.access:
                for i in range(seg.count):
                    self.erase_sector(seg.address + i * seg.sector_size)


def devebox_memories() -> list[FakeMemory]:
    """Alt 0: H743 internal flash with the bootloader sector read-only; alt 1: W25Q64 in 4 KB sectors."""
    return [
        FakeMemory(
            "Internal Flash  ",
            [FakeSegment(0x08000000, 128 * KB, 1, "r"), FakeSegment(0x08020000, 128 * KB, 15, "rew")],
            erase_ms=2000,
            mass_erase_ms=30000,
            program_ms=20,
        ),
        FakeMemory(
            "QSPI Flash ",
            [FakeSegment(0x90000000, 4 * KB, 2048, "rew")],
            erase_ms=45,
            mass_erase_ms=20000,
            program_ms=2,
        ),
    ]


def _string(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return bytes([len(raw) + 2, 3]) + raw


@dataclass
class Transfer:
    setup: Setup
    data: bytes
    at_ms: int
    outcome: str = "ok"


class FakeDfuseDevice:
    """A DfuSe device implementing :class:`h743sim.usb.link.UsbLink` (see the module doc)."""

    def __init__(
        self,
        *,
        transfer_size: int = 1024,
        memories: list[FakeMemory] | None = None,
        attributes: int = 0x0B,
        manifestation_tolerant: bool = False,
        reattach_after_leave_ms: int | None = None,
        mass_erase_supported: bool = True,
        serial: str = "3868345F3331",
        interface_protocol: int = 0x02,
    ) -> None:
        self.interface_protocol = interface_protocol
        self.transfer_size = transfer_size
        self.memories = memories if memories is not None else devebox_memories()
        self.attributes = attributes | (0x04 if manifestation_tolerant else 0)
        self.reattach_after_leave_ms = reattach_after_leave_ms
        self.mass_erase_supported = mass_erase_supported
        self.strings = {1: "STMicroelectronics", 2: "DFU in FS Mode", 3: serial}
        for alt, mem in enumerate(self.memories):
            self.strings[4 + alt] = mem.layout_string()
        # bus
        self.attached = True
        self.was_reset = False
        self.usb_address = 0
        self.configuration = 0
        self.alt = 0
        # time and records
        self.now_ms = 0
        self.busy_until_ms = 0
        self.early_requests = 0
        self.transfers: list[Transfer] = []
        self.commands: list[tuple] = []
        self.threads: set[int] = set()
        self.bus_resets = 0
        self.reattach_at_ms: int | None = None
        self.left_with_pointer: int | None = None
        # fault injection
        self.fail_next_write: int | None = None
        self.hang_next = False
        self._dfu_reset()

    # ---- descriptors ----------------------------------------------------------------------------

    def device_descriptor(self) -> bytes:
        return (
            bytes([18, 1, 0x00, 0x02, 0, 0, 0, 64])
            + b"".join(v.to_bytes(2, "little") for v in (VID, PID, 0x0200))
            + bytes([1, 2, 3, 1])
        )

    def config_descriptor(self) -> bytes:
        body = b"".join(
            bytes([9, 4, 0, alt, 0, 0xFE, 0x01, self.interface_protocol, 4 + alt])
            for alt in range(len(self.memories))
        )
        functional = (
            bytes([9, 0x21, self.attributes, 0xFF, 0x00])
            + self.transfer_size.to_bytes(2, "little")
            + bytes([0x1A, 0x01])
        )
        total = 9 + len(body) + len(functional)
        return bytes([9, 2]) + total.to_bytes(2, "little") + bytes([1, 1, 0, 0xC0, 50]) + body + functional

    # ---- time -------------------------------------------------------------------------------------

    def advance(self, ms: int) -> None:
        """Virtual time passes (what the client's sleep_ms does)."""
        assert ms >= 0
        self.now_ms += ms
        self._maybe_reattach()

    def _maybe_reattach(self) -> None:
        if not self.attached and self.reattach_at_ms is not None and self.now_ms >= self.reattach_at_ms:
            self.attached, self.was_reset, self.reattach_at_ms = True, False, None
            self._dfu_reset()

    # ---- UsbLink --------------------------------------------------------------------------------

    def is_attached(self) -> bool:
        self.threads.add(threading.get_ident())
        self._maybe_reattach()
        return self.attached

    def bus_reset(self) -> None:
        self.threads.add(threading.get_ident())
        if not self.attached:
            return
        self.bus_resets += 1
        self.was_reset = True
        self.usb_address = 0
        self.configuration = 0
        self.alt = 0
        self._dfu_reset()

    def control_transfer(self, setup: Setup, data: bytes = b"", timeout_ms: int = 5000) -> bytes:
        self.threads.add(threading.get_ident())
        self._maybe_reattach()
        record = Transfer(setup, bytes(data), self.now_ms)
        self.transfers.append(record)
        if not self.attached:
            record.outcome = "gone"
            raise Disconnected("device detached")
        if not setup.device_to_host and len(data) != setup.wLength:
            raise ValueError(f"OUT transfer: wLength {setup.wLength} but {len(data)} bytes given")
        if not self.was_reset or self.hang_next:
            self.hang_next = False
            self.now_ms += timeout_ms
            record.outcome = "timeout"
            raise Timeout("no answer")
        if self.now_ms < self.busy_until_ms:
            # The firmware is busy in its interrupt handler: EP0 NAKs until the operation ends.
            self.early_requests += 1
            if self.busy_until_ms - self.now_ms > timeout_ms:
                self.now_ms += timeout_ms
                record.outcome = "timeout"
                raise Timeout("device busy")
            self.now_ms = self.busy_until_ms
        try:
            if setup.bmRequestType & 0x60 == 0:
                out = self._standard(setup, data)
            elif setup.bmRequestType & 0x60 == 0x20 and setup.bmRequestType & 0x1F == 1:
                out = self._dfu(setup, data)
            else:
                raise Stall("unsupported request type")
        except Stall:
            record.outcome = "stall"
            raise
        return out[: setup.wLength] if setup.device_to_host else b""

    # ---- standard requests ------------------------------------------------------------------------

    def _standard(self, s: Setup, data: bytes) -> bytes:
        if s.bRequest == 6 and s.bmRequestType == 0x80:  # GET_DESCRIPTOR
            kind, index = s.wValue >> 8, s.wValue & 0xFF
            if kind == 1:
                return self.device_descriptor()
            if kind == 2 and index == 0:
                return self.config_descriptor()
            if kind == 3 and index == 0:
                return bytes([4, 3, 0x09, 0x04])
            if kind == 3 and index in self.strings:
                return _string(self.strings[index])
            raise Stall("no such descriptor")
        if s.bRequest == 5 and s.bmRequestType == 0x00:  # SET_ADDRESS
            self.usb_address = s.wValue & 0x7F
            return b""
        if s.bRequest == 9 and s.bmRequestType == 0x00:  # SET_CONFIGURATION
            if self.usb_address == 0 or s.wValue not in (0, 1):
                raise Stall("SET_CONFIGURATION in default state or bad value")
            self.configuration = s.wValue
            return b""
        if s.bRequest == 8 and s.bmRequestType == 0x80:  # GET_CONFIGURATION
            return bytes([self.configuration])
        if s.bRequest == 11 and s.bmRequestType == 0x01:  # SET_INTERFACE
            if self.configuration == 0 or s.wIndex != 0 or s.wValue >= len(self.memories):
                raise Stall("bad SET_INTERFACE")
            self.alt = s.wValue
            return b""
        if s.bRequest == 10 and s.bmRequestType == 0x81:  # GET_INTERFACE
            return bytes([self.alt])
        if s.bRequest == 0 and s.bmRequestType in (0x80, 0x81, 0x82):  # GET_STATUS
            return b"\x00\x00"
        raise Stall("unsupported standard request")

    # ---- DFU ----------------------------------------------------------------------------------------

    def _dfu_reset(self) -> None:
        self.state = DFU_IDLE
        self.status = OK
        self.pointer = 0x08000000  # AN2662: assumed when no pointer was set
        self.pending: tuple[int, bytes] | None = None

    @property
    def memory(self) -> FakeMemory:
        return self.memories[self.alt]

    def _stall(self, why: str) -> Stall:
        self.state, self.status = DFU_ERROR, ERR_STALLEDPKT
        return Stall(why)

    def _status_reply(self, poll_ms: int, state: int) -> bytes:
        return bytes([self.status]) + poll_ms.to_bytes(3, "little") + bytes([state, 0])

    def _dfu(self, s: Setup, data: bytes) -> bytes:
        if self.configuration == 0 or s.wIndex != 0:
            raise Stall("class request to an unconfigured device or a wrong interface")
        req = s.bRequest
        if req == 1 and not s.device_to_host:  # DNLOAD
            if self.state not in (DFU_IDLE, DNLOAD_IDLE):
                raise self._stall(f"DNLOAD in state {self.state}")
            if s.wLength == 0:
                self.state = MANIFEST_SYNC
            else:
                self.state, self.pending = DNLOAD_SYNC, (s.wValue, bytes(data))
            return b""
        if req == 2 and s.device_to_host:  # UPLOAD
            return self._upload(s)
        if req == 3 and s.device_to_host:  # GETSTATUS
            return self._get_status()
        if req == 4 and not s.device_to_host:  # CLRSTATUS
            if self.state == DFU_ERROR:
                self.state, self.status = DFU_IDLE, OK
            else:
                self.state, self.status = DFU_ERROR, ERR_UNKNOWN
            return b""
        if req == 5 and s.device_to_host:  # GETSTATE
            return bytes([self.state])
        if req == 6 and not s.device_to_host:  # ABORT
            if self.state in (DFU_IDLE, DNLOAD_SYNC, DNLOAD_IDLE, MANIFEST_SYNC, UPLOAD_IDLE):
                self.state, self.status, self.pending = DFU_IDLE, OK, None
            return b""
        raise self._stall(f"unsupported DFU request {req}")

    def _get_status(self) -> bytes:
        if self.state == DNLOAD_SYNC and self.pending is not None:
            block, payload = self.pending
            self.pending = None
            poll = self._poll_for(block, payload)
            reply = self._status_reply(poll, DNBUSY)
            # ST executes after this reply went out; the device is busy for the poll time.
            self.state = DNLOAD_SYNC
            self._execute(block, payload)
            self.busy_until_ms = self.now_ms + poll
            return reply
        if self.state == DNLOAD_SYNC:
            self.state = DNLOAD_IDLE
            return self._status_reply(0, DNLOAD_IDLE)
        if self.state == MANIFEST_SYNC:
            reply = self._status_reply(1, MANIFEST)
            if self.attributes & 0x04:
                self.state = DFU_IDLE
            else:
                self.state = MANIFEST_WAIT_RESET
                self.left_with_pointer = self.pointer
                self.attached = False  # the device resets into the application
                if self.reattach_after_leave_ms is not None:
                    self.reattach_at_ms = self.now_ms + self.reattach_after_leave_ms
            return reply
        return self._status_reply(0, self.state)

    def _poll_for(self, block: int, payload: bytes) -> int:
        if block == 0 and payload[:1] == b"\x41":
            return self.memory.erase_ms if len(payload) == 5 else self.memory.mass_erase_ms
        if block >= 2:
            return self.memory.program_ms
        return 0

    def _fail(self, status: int) -> None:
        self.state, self.status = DFU_ERROR, status

    def _execute(self, block: int, payload: bytes) -> None:
        mem = self.memory
        if block == 0:
            cmd = payload[0]
            if len(payload) == 1 and cmd == 0x00:
                self.commands.append(("get_commands",))
            elif len(payload) == 5 and cmd == 0x21:
                address = int.from_bytes(payload[1:5], "little")
                self.commands.append(("set_address", address))
                if mem.segment_at(address) is None:
                    self._fail(ERR_TARGET)
                else:
                    self.pointer = address
            elif len(payload) == 5 and cmd == 0x41:
                address = int.from_bytes(payload[1:5], "little")
                self.commands.append(("erase", address))
                if not mem.allows(address, 1, "e"):
                    self._fail(ERR_TARGET)
                else:
                    mem.erase_sector(address)
            elif len(payload) == 1 and cmd == 0x41:
                self.commands.append(("mass_erase",))
                if self.mass_erase_supported:
                    mem.mass_erase()
                else:
                    self._fail(ERR_UNKNOWN)
            else:
                self.commands.append(("unknown", payload))
                self._fail(ERR_UNKNOWN)
            return
        if block == 1:
            return  # received, nothing written (ST)
        address = self.pointer + (block - 2) * self.transfer_size
        self.commands.append(("write", address, len(payload), block))
        if not mem.allows(address, len(payload), "w"):
            self._fail(ERR_TARGET)
        elif self.fail_next_write is not None:
            self._fail(self.fail_next_write)
            self.fail_next_write = None
        elif not mem.program(address, payload):
            self._fail(ERR_VERIFY)

    def _upload(self, s: Setup) -> bytes:
        if self.state not in (DFU_IDLE, UPLOAD_IDLE):
            raise self._stall(f"UPLOAD in state {self.state}")
        block = s.wValue
        if s.wLength == 0:
            self.state = DFU_IDLE
            return b""
        if block == 0:
            self.state = DFU_IDLE if s.wLength > 3 else UPLOAD_IDLE
            return b"\x00\x21\x41"
        if block == 1:
            raise self._stall("UPLOAD block 1")
        address = self.pointer + (block - 2) * self.transfer_size
        mem = self.memory
        if not mem.allows(address, 1, "r"):
            self.state, self.status = DFU_ERROR, ERR_TARGET
            raise Stall("UPLOAD from an unreadable address")
        length = s.wLength
        while length and not mem.allows(address, length, "r"):
            length -= 1  # a short frame at the end of readable memory
        self.commands.append(("read", address, length, block))
        self.state = UPLOAD_IDLE if length == s.wLength else DFU_IDLE
        return mem.peek(address, length)
