"""A GDB remote-serial-protocol server for the virtual board (own implementation).

Single-threaded: while the target runs, the server checks the socket for an interrupt (Ctrl-C,
byte 0x03) between execution slices. Registers follow GDB's ``org.gnu.gdb.arm.m-profile`` feature
(r0-r12, sp, lr, pc, xpsr), announced through ``qXfer:features:read``.
"""

from __future__ import annotations

import logging
import select
import socket
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("h743sim.gdb")

TARGET_XML = """<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
  <architecture>arm</architecture>
  <feature name="org.gnu.gdb.arm.m-profile">
    <reg name="r0" bitsize="32"/><reg name="r1" bitsize="32"/><reg name="r2" bitsize="32"/>
    <reg name="r3" bitsize="32"/><reg name="r4" bitsize="32"/><reg name="r5" bitsize="32"/>
    <reg name="r6" bitsize="32"/><reg name="r7" bitsize="32"/><reg name="r8" bitsize="32"/>
    <reg name="r9" bitsize="32"/><reg name="r10" bitsize="32"/><reg name="r11" bitsize="32"/>
    <reg name="r12" bitsize="32"/>
    <reg name="sp" bitsize="32" type="data_ptr"/>
    <reg name="lr" bitsize="32"/>
    <reg name="pc" bitsize="32" type="code_ptr"/>
    <reg name="xpsr" bitsize="32" regnum="25"/>
  </feature>
</target>
"""

NUM_REGS = 17  # r0..r12, sp, lr, pc, xpsr
XPSR_GDB_REGNUM = 25  # the m-profile feature numbers xpsr 25


class DebugTarget(Protocol):
    """What the server needs from the board."""

    def read_core_registers(self) -> list[int]:
        """r0..r12, sp, lr, pc, xpsr."""
        ...

    def write_core_register(self, index: int, value: int) -> None: ...

    def read_memory(self, address: int, length: int) -> bytes:
        """Raise an exception for unreadable memory."""
        ...

    def write_memory(self, address: int, data: bytes) -> None: ...

    def add_breakpoint(self, address: int) -> None: ...

    def remove_breakpoint(self, address: int) -> None: ...

    def step(self) -> str:
        """Execute one instruction; return a stop reason."""
        ...

    def resume(self, should_stop: Callable[[], bool]) -> str:
        """Run until a breakpoint ('breakpoint'), should_stop() ('interrupted') or an end
        ('fault', 'power_off', 'timeout', ...)."""
        ...


def _checksum(payload: bytes) -> bytes:
    return b"%02x" % (sum(payload) & 0xFF)


def _escape(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        if b in b"#$}*":
            out += bytes([0x7D, b ^ 0x20])
        else:
            out.append(b)
    return bytes(out)


def _unescape(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == 0x7D:
            out.append(next(it) ^ 0x20)
        else:
            out.append(b)
    return bytes(out)


class GdbServer:
    def __init__(self, target: DebugTarget, port: int, host: str = "127.0.0.1") -> None:
        self.target = target
        self.port = port
        self.host = host
        self.sock: socket.socket | None = None
        self.conn: socket.socket | None = None
        self._buf = b""
        self._no_ack = False
        self.detached = False
        self.killed = False

    # -- transport ------------------------------------------------------------------------
    def listen(self) -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(1)
        self.sock = s
        self.port = s.getsockname()[1]
        return self.port

    def accept(self) -> None:
        assert self.sock is not None
        self.conn, addr = self.sock.accept()
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log.info("gdb connected from %s:%d", *addr)

    def close(self) -> None:
        for s in (self.conn, self.sock):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self.conn = self.sock = None

    def _recv_more(self) -> bool:
        assert self.conn is not None
        data = self.conn.recv(4096)
        if not data:
            return False
        self._buf += data
        return True

    def _read_packet(self) -> bytes | None:
        """Next packet payload, b'\\x03' for an interrupt, None when the client went away."""
        while True:
            while self._buf[:1] in (b"+", b"-"):
                self._buf = self._buf[1:]
            if self._buf[:1] == b"\x03":
                self._buf = self._buf[1:]
                return b"\x03"
            start = self._buf.find(b"$")
            if start >= 0:
                end = self._buf.find(b"#", start)
                if end >= 0 and len(self._buf) >= end + 3:
                    payload = self._buf[start + 1 : end]
                    self._buf = self._buf[end + 3 :]
                    if not self._no_ack:
                        self.conn.sendall(b"+")  # type: ignore[union-attr]
                    return _unescape(payload)
            if not self._recv_more():
                return None

    def _send(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        payload = _escape(payload)
        self.conn.sendall(b"$" + payload + b"#" + _checksum(payload))  # type: ignore[union-attr]

    def _interrupt_pending(self) -> bool:
        if b"\x03" in self._buf:
            return True
        assert self.conn is not None
        r, _, _ = select.select([self.conn], [], [], 0)
        if r:
            if not self._recv_more():
                self.killed = True
                return True
            return b"\x03" in self._buf
        return False

    # -- protocol -------------------------------------------------------------------------
    def serve(self) -> None:
        """Serve one client until it detaches, kills or disconnects."""
        if self.conn is None:
            self.accept()
        while not (self.detached or self.killed):
            pkt = self._read_packet()
            if pkt is None:
                log.info("gdb client disconnected")
                return
            if pkt == b"\x03":
                self._send("S02")
                continue
            reply = self.handle(pkt.decode("latin-1"))
            if reply is not None:
                self._send(reply)

    def _stop_reply(self, reason: str) -> str:
        if reason in ("breakpoint", "step", "interrupted"):
            return "S05" if reason != "interrupted" else "S02"
        if reason == "power_off":
            return "W00"
        return "S0b" if reason == "fault" else "S05"

    def handle(self, pkt: str) -> str | None:  # noqa: C901 - a protocol dispatcher
        t = self.target
        cmd = pkt[:1]
        try:
            if pkt.startswith("qSupported"):
                return "PacketSize=4000;qXfer:features:read+;QStartNoAckMode+;swbreak+"
            if pkt == "QStartNoAckMode":
                self._send("OK")
                self._no_ack = True
                return None
            if pkt.startswith("qXfer:features:read:target.xml:"):
                off, length = (int(x, 16) for x in pkt.split(":")[-1].split(","))
                chunk = TARGET_XML[off : off + length]
                return ("l" if off + length >= len(TARGET_XML) else "m") + chunk
            if pkt == "?":
                return "S05"
            if pkt in ("qAttached",):
                return "1"
            if pkt == "qC":
                return "QC1"
            if pkt == "qfThreadInfo":
                return "m1"
            if pkt == "qsThreadInfo":
                return "l"
            if pkt.startswith(("Hg", "Hc", "T")):
                return "OK"
            if cmd == "g":
                return "".join(v.to_bytes(4, "little").hex() for v in t.read_core_registers())
            if cmd == "G":
                data = bytes.fromhex(pkt[1:])
                for i in range(min(NUM_REGS, len(data) // 4)):
                    t.write_core_register(i, int.from_bytes(data[4 * i : 4 * i + 4], "little"))
                return "OK"
            if cmd == "p":
                n = int(pkt[1:], 16)
                idx = 16 if n == XPSR_GDB_REGNUM else n
                if idx >= NUM_REGS:
                    return "E01"
                return t.read_core_registers()[idx].to_bytes(4, "little").hex()
            if cmd == "P":
                n, v = pkt[1:].split("=")
                idx = 16 if int(n, 16) == XPSR_GDB_REGNUM else int(n, 16)
                t.write_core_register(idx, int.from_bytes(bytes.fromhex(v), "little"))
                return "OK"
            if cmd == "m":
                addr, length = (int(x, 16) for x in pkt[1:].split(","))
                return t.read_memory(addr, length).hex()
            if cmd == "M":
                head, data = pkt[1:].split(":")
                addr = int(head.split(",")[0], 16)
                t.write_memory(addr, bytes.fromhex(data))
                return "OK"
            if cmd == "X":
                head, _, data = pkt[1:].partition(":")
                addr = int(head.split(",")[0], 16)
                if data:
                    t.write_memory(addr, data.encode("latin-1"))
                return "OK"
            if cmd in ("Z", "z") and pkt[1:2] in ("0", "1"):
                addr = int(pkt[3:].split(",")[0], 16)
                (t.add_breakpoint if cmd == "Z" else t.remove_breakpoint)(addr)
                return "OK"
            if cmd in ("Z", "z"):
                return ""  # watchpoints not supported
            if cmd == "c" or pkt.startswith("vCont;c"):
                return self._stop_reply(t.resume(self._interrupt_pending))
            if cmd == "s" or pkt.startswith("vCont;s"):
                return self._stop_reply(t.step())
            if pkt == "vCont?":
                return "vCont;c;s"
            if cmd == "D":
                self.detached = True
                return "OK"
            if cmd == "k":
                self.killed = True
                return None
        except Exception as exc:  # a bad request must not end the session
            log.warning("gdb request %r failed: %s", pkt[:40], exc)
            return "E01"
        return ""  # unsupported packet
