"""The bootloader's DFU class, standard requests and descriptors, compiled for the host.

firmware/bootloader/{dfu,dfu_media,usb_std,usb_desc,log}.c are built into a shared library with
stand-ins for the hardware layers (tests/bootloader/host): the EP0 answer API of usb_otg.c, the
flash/W25Q64/UART drivers (memories with erase = 0xFF and program = AND, internal flash mapped at
its real address 0x08000000), so the test plays the USB host request by request and checks DFU
states and status codes (FACTS.md §F.2), DfuSe commands and addressing (§F.4, §F.5), bwPollTimeout
(§F.7), the layout strings (§F.8) and that flash is only ever changed where the host asked.

The register-level USB driver (usb_otg.c) and boot.c/main.c need the emulated board; they are not
covered here.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from h743sim.dfuse.layout import parse_layout

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
HOST = Path(__file__).resolve().parent / "host"
SOURCES = [
    FIRMWARE / "bootloader" / f"{name}.c" for name in ("dfu", "dfu_media", "usb_std", "usb_desc", "log")
]

# fake_usb_otg.c results
R_PENDING, R_IN, R_ACK, R_STALL, R_OUT = range(5)
# fake_drivers.c operation kinds
OP_FLASH_ERASE, OP_FLASH_PROGRAM, OP_QSPI_ERASE, OP_QSPI_CHIP_ERASE, OP_QSPI_PROGRAM = 1, 2, 3, 4, 5
OP_QSPI_VERIFY, OP_QSPI_INIT, OP_QSPI_READ = 6, 7, 8

# DFU numbers (FACTS §F.1, §F.2)
DETACH, DNLOAD, UPLOAD, GETSTATUS, CLRSTATUS, GETSTATE, ABORT = range(7)
IDLE, DNLOAD_SYNC, DNBUSY, DNLOAD_IDLE, MANIFEST_SYNC, MANIFEST, MANIFEST_WAIT_RESET = 2, 3, 4, 5, 6, 7, 8
UPLOAD_IDLE, ERROR = 9, 10
OK, ERR_TARGET, ERR_WRITE, ERR_ERASE, ERR_CHECK_ERASED = 0x00, 0x01, 0x03, 0x04, 0x05
ERR_VERIFY, ERR_ADDRESS, ERR_UNKNOWN, ERR_STALLEDPKT = 0x07, 0x08, 0x0E, 0x0F

XFER = 2048
INTERNAL_BASE, APP_BASE, INTERNAL_END = 0x08000000, 0x08020000, 0x08200000
QSPI_BASE, QSPI_SIZE = 0x90000000, 0x800000


class Stall(Exception):
    """The device STALLed the request."""


class Pending(Exception):
    """The device left the request unanswered (the host would see NAKs)."""


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no host C compiler (cc/gcc) to build the bootloader's DFU layers for the host")
    out = tmp_path_factory.mktemp("dfu_host") / "libdfu_host.so"
    cmd = [
        cc, "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-std=gnu11",
        f"-I{HOST / 'shim'}", f"-I{FIRMWARE / 'include'}", f"-I{FIRMWARE / 'drivers'}",
        f"-I{FIRMWARE / 'bootloader'}", *map(str, SOURCES), *map(str, sorted(HOST.glob("*.c"))), "-o", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    so = ctypes.CDLL(str(out))
    if so.sim_init() != 0:
        pytest.skip("cannot map the internal-flash / UID pages at their real addresses in this process")
    so.sim_internal.restype = ctypes.POINTER(ctypes.c_uint8)
    so.sim_qspi.restype = ctypes.POINTER(ctypes.c_uint8)
    so.sim_uart.restype = ctypes.c_char_p
    return so


class Board:
    """The USB host's side of EP0, plus the bootloader's main loop (dfu_poll)."""

    def __init__(self, so: ctypes.CDLL) -> None:
        self.so = so
        assert so.sim_start() == 0

    # ---- USB control transfers ----
    def control(
        self, bm: int, req: int, value: int = 0, index: int = 0, length: int = 0, data: bytes = b""
    ) -> bytes:
        result = self.so.sim_setup(bm, req, value, index, length)
        if result == R_OUT:
            result = self.so.sim_out_data(data, len(data))
        if result == R_PENDING:
            raise Pending(f"request {req} left waiting")
        return self._finish(result)

    def _finish(self, result: int) -> bytes:
        if result == R_STALL:
            raise Stall
        buf = (ctypes.c_uint8 * 4096)()
        n = self.so.sim_in_data(buf) if result == R_IN else 0
        self.so.sim_complete()  # the IN stage reached the host
        return bytes(buf[:n])

    def answer_after_main_loop(self) -> bytes:
        """The main loop runs; then the request that was left waiting must have its answer."""
        self.main_loop()
        result = self.so.sim_result()
        if result == R_PENDING:
            raise Pending("still no answer after the main loop ran")
        return self._finish(result)

    def main_loop(self) -> None:
        for _ in range(100):
            if not self.so.dfu_poll():
                return
        raise AssertionError("dfu_poll keeps finding work")

    # ---- standard requests ----
    def get_descriptor(self, dtype: int, index: int = 0, length: int = 255, lang: int = 0) -> bytes:
        return self.control(0x80, 6, (dtype << 8) | index, lang, length)

    def string(self, index: int) -> str:
        raw = self.get_descriptor(3, index, lang=0x0409)
        assert raw[0] == len(raw) and raw[1] == 3
        return raw[2:].decode("utf-16-le")

    def enumerate(self, alt: int = 0) -> None:
        self.so.sim_bus_reset()
        self.control(0x00, 5, 7)
        self.control(0x00, 9, 1)
        self.control(0x01, 11, alt, 0)

    # ---- DFU requests ----
    def get_status(self) -> tuple[int, int, int]:
        """(bStatus, bwPollTimeout, bState)"""
        return self._status(self.control(0xA1, GETSTATUS, 0, 0, 6))

    @staticmethod
    def _status(raw: bytes) -> tuple[int, int, int]:
        assert len(raw) == 6 and raw[5] == 0
        return raw[0], int.from_bytes(raw[1:4], "little"), raw[4]

    def get_state(self) -> int:
        return self.control(0xA1, GETSTATE, 0, 0, 1)[0]

    def dnload(self, block: int, data: bytes) -> None:
        self.control(0x21, DNLOAD, block, 0, len(data), data)

    def upload(self, block: int, length: int) -> bytes:
        try:
            return self.control(0xA1, UPLOAD, block, 0, length)
        except Pending:
            return self.answer_after_main_loop()

    def clear_status(self) -> None:
        self.control(0x21, CLRSTATUS)

    def abort(self) -> None:
        self.control(0x21, ABORT)

    def command(self, payload: bytes) -> tuple[int, int, int]:
        """DfuSe block-0 command as dfu-util runs it: DNLOAD, GETSTATUS (dfuDNBUSY expected), wait the
        poll timeout (the main loop runs), GETSTATUS. Returns the first status when it is not
        dfuDNBUSY, else the second one."""
        self.dnload(0, payload)
        first = self.get_status()
        if first[2] != DNBUSY:
            return first
        self.main_loop()
        return self.get_status()

    def write(self, block: int, data: bytes) -> tuple[int, int, int]:
        self.dnload(block, data)
        first = self.get_status()
        if first[2] != DNBUSY:
            return first
        self.main_loop()
        return self.get_status()

    def set_pointer(self, addr: int) -> tuple[int, int, int]:
        return self.command(b"\x21" + addr.to_bytes(4, "little"))

    def erase(self, addr: int) -> tuple[int, int, int]:
        return self.command(b"\x41" + addr.to_bytes(4, "little"))

    # ---- what the drivers saw ----
    def ops(self) -> list[tuple[int, int, int]]:
        op, addr, n = ctypes.c_int(), ctypes.c_uint32(), ctypes.c_uint32()
        out = []
        for i in range(self.so.sim_op_count()):
            self.so.sim_op(i, ctypes.byref(op), ctypes.byref(addr), ctypes.byref(n))
            out.append((op.value, addr.value, n.value))
        return out

    def changes(self, kinds: set[int]) -> list[tuple[int, int, int]]:
        return [o for o in self.ops() if o[0] in kinds]

    def internal(self, addr: int, n: int) -> bytes:
        return ctypes.string_at(ctypes.addressof(self.so.sim_internal().contents) + addr - INTERNAL_BASE, n)

    def qspi(self, addr: int, n: int) -> bytes:
        return ctypes.string_at(ctypes.addressof(self.so.sim_qspi().contents) + addr - QSPI_BASE, n)

    def poke_internal(self, addr: int, data: bytes) -> None:
        ctypes.memmove(
            ctypes.addressof(self.so.sim_internal().contents) + addr - INTERNAL_BASE, data, len(data)
        )

    def poke_qspi(self, addr: int, data: bytes) -> None:
        ctypes.memmove(ctypes.addressof(self.so.sim_qspi().contents) + addr - QSPI_BASE, data, len(data))

    def uart_lines(self) -> list[str]:
        self.main_loop()
        return self.so.sim_uart().decode().splitlines()


WRITES = {OP_FLASH_ERASE, OP_FLASH_PROGRAM, OP_QSPI_ERASE, OP_QSPI_CHIP_ERASE, OP_QSPI_PROGRAM}


@pytest.fixture
def board(lib: ctypes.CDLL) -> Iterator[Board]:
    b = Board(lib)
    b.enumerate(alt=0)
    yield b


def pattern(n: int, seed: int = 1) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


# ---- descriptors and standard requests ---------------------------------------------------------


def test_device_descriptor(board: Board) -> None:
    d = board.get_descriptor(1, length=18)
    assert len(d) == 18 and d[:2] == bytes([18, 1])
    assert int.from_bytes(d[2:4], "little") == 0x0200  # bcdUSB
    assert d[7] == 64  # bMaxPacketSize0
    assert int.from_bytes(d[8:10], "little") == 0x0483
    assert int.from_bytes(d[10:12], "little") == 0xDF11
    assert int.from_bytes(d[12:14], "little") == 0x0200  # bcdDevice
    assert d[17] == 1
    assert board.string(d[15]) == "DevEBox H743 DFU (h743sim)"
    # UID words 0x00380021, 0x3131510A, 0x36383430 as 24 hex digits
    assert board.string(d[16]) == "003800213131510A36383430"


def test_configuration_descriptor_dfu_interface(board: Board) -> None:
    c = board.get_descriptor(2, length=255)
    assert c[:2] == bytes([9, 2]) and int.from_bytes(c[2:4], "little") == len(c) == 36
    assert board.get_descriptor(2, length=9) == c[:9]  # host reads the header first
    intf0, intf1, func = c[9:18], c[18:27], c[27:36]
    for alt, intf in enumerate((intf0, intf1)):
        assert intf[:5] == bytes([9, 4, 0, alt, 0])
        assert intf[5:8] == bytes([0xFE, 0x01, 0x02])
    assert func[:3] == bytes([9, 0x21, 0x0B])
    assert int.from_bytes(func[3:5], "little") == 255
    assert int.from_bytes(func[5:7], "little") == XFER
    assert int.from_bytes(func[7:9], "little") == 0x011A
    # The functional descriptor on its own (GET_DESCRIPTOR to the interface)
    assert board.control(0x81, 6, 0x2100, 0, 9) == func
    layouts = [board.string(intf0[8]), board.string(intf1[8])]
    assert layouts == [
        "@Internal Flash  /0x08000000/01*128Ka,15*128Kg",
        "@QSPI Flash W25Q64 /0x90000000/2048*004Kg",
    ]
    internal = parse_layout(layouts[0])
    assert [(s.address, s.size, s.writable) for s in internal] == [
        (0x08000000, 0x20000, False),
        (0x08020000, 15 * 0x20000, True),
    ]
    qspi = parse_layout(layouts[1])
    assert (qspi.start, qspi.end) == (QSPI_BASE, QSPI_BASE + QSPI_SIZE)


def test_standard_requests(board: Board) -> None:
    assert board.string(0) == "\u0409"
    assert board.so.sim_address() == 7
    assert board.control(0x80, 8, 0, 0, 1) == b"\x01"  # GET_CONFIGURATION
    assert board.control(0x80, 0, 0, 0, 2) == b"\x00\x00"  # GET_STATUS device
    assert board.control(0x82, 0, 0, 0x80, 2) == b"\x00\x00"  # GET_STATUS EP0 IN
    board.control(0x01, 11, 1, 0)
    assert board.control(0x81, 10, 0, 0, 1) == b"\x01"  # GET_INTERFACE
    for bad in (
        lambda: board.get_descriptor(6, length=10),  # DEVICE_QUALIFIER: full-speed only
        lambda: board.get_descriptor(3, 9),  # no such string
        lambda: board.control(0x01, 11, 2, 0),  # no alternate setting 2
        lambda: board.control(0x00, 9, 2),  # no configuration 2
        lambda: board.control(0x00, 3, 1),  # SET_FEATURE remote wakeup: not supported
        lambda: board.control(0x82, 0, 0, 0x81, 2),  # GET_STATUS of a missing endpoint
        lambda: board.control(0x21, DNLOAD, 2, 1, 4, b"abcd"),  # class request to interface 1
    ):
        with pytest.raises(Stall):
            bad()
    assert board.control(0x81, 10, 0, 0, 1) == b"\x01"


# ---- DfuSe commands and downloads ----------------------------------------------------------------


def test_get_commands(board: Board) -> None:
    assert board.upload(0, 3) == bytes([0x00, 0x21, 0x41])
    assert board.get_status() == (OK, 0, UPLOAD_IDLE)
    board.abort()
    assert board.upload(0, 64) == bytes([0x00, 0x21, 0x41])
    assert board.get_state() == IDLE  # short frame ends the upload
    assert board.command(b"\x00") == (OK, 0, DNLOAD_IDLE)


def test_qspi_erase_write_leave(board: Board) -> None:
    board.control(0x01, 11, 1, 0)

    board.dnload(0, b"\x41" + QSPI_BASE.to_bytes(4, "little"))
    assert board.get_state() == DNLOAD_SYNC
    assert board.get_status() == (OK, 45 + 2, DNBUSY)  # tSE typ + margin
    assert board.changes(WRITES) == []  # the main loop has not run yet
    board.main_loop()
    assert board.changes(WRITES) == [(OP_QSPI_ERASE, 0, 4096)]
    assert board.get_status() == (OK, 0, DNLOAD_IDLE)

    assert board.set_pointer(QSPI_BASE) == (OK, 0, DNLOAD_IDLE)
    data = pattern(XFER)
    board.dnload(2, data)
    status = board.get_status()
    assert status == (OK, 4 + 2, DNBUSY)  # 8 pages x 0.4 ms rounded up + margin
    board.main_loop()
    assert board.get_status() == (OK, 0, DNLOAD_IDLE)
    assert board.qspi(QSPI_BASE, XFER) == data
    assert board.qspi(QSPI_BASE + XFER, 16) == b"\xff" * 16
    assert (OP_QSPI_VERIFY, 0, XFER) in board.ops()  # QSPI writes are read back

    # block 3 continues at pointer + 2048
    board.dnload(3, data[:100])
    assert board.get_status()[2] == DNBUSY
    board.main_loop()
    assert board.get_status() == (OK, 0, DNLOAD_IDLE)
    assert board.qspi(QSPI_BASE + XFER, 100) == data[:100]
    assert board.changes({OP_QSPI_PROGRAM}) == [
        (OP_QSPI_PROGRAM, 0, XFER),
        (OP_QSPI_PROGRAM, XFER, 100),
    ]

    board.dnload(2, b"")  # leave: zero-length DNLOAD
    assert board.get_state() == MANIFEST_SYNC
    assert not board.so.dfu_leave_requested()
    assert board.get_status() == (OK, 10, MANIFEST)
    assert board.so.dfu_leave_requested()  # after the reply: main.c disconnects and resets
    with pytest.raises(Stall):
        board.dnload(2, b"x")
    lines = board.uart_lines()
    assert "DFU erase 0x90000000 ok" in lines
    assert "DFU pointer 0x90000000 ok" in lines
    assert "DFU write 0x90000000 2048 ok" in lines
    assert "DFU write 0x90000800 100 ok" in lines
    assert lines[-1] == "DFU leave"


def test_getstatus_during_work_is_answered_when_it_ends(board: Board) -> None:
    """pydfu asks for the second status at once: the answer waits for the erase (host sees NAKs)."""
    board.dnload(0, b"\x41" + APP_BASE.to_bytes(4, "little"))
    assert board.get_status() == (OK, 1000 + 2, DNBUSY)  # 128 KiB sector erase at x64
    with pytest.raises(Pending):
        board.get_status()
    assert board.so.dfu_get_alt() == 0
    status = Board._status(board.answer_after_main_loop())
    assert status == (OK, 0, DNLOAD_IDLE)
    assert board.changes(WRITES) == [(OP_FLASH_ERASE, APP_BASE, 0x20000)]


def test_work_starts_only_after_the_dnbusy_reply_is_sent(board: Board) -> None:
    board.dnload(0, b"\x41" + APP_BASE.to_bytes(4, "little"))
    assert board.so.sim_setup(0xA1, GETSTATUS, 0, 0, 6) == R_IN  # reply queued, not yet delivered
    board.main_loop()
    assert board.changes(WRITES) == []
    board.so.sim_complete()  # the IN stage reached the host
    board.main_loop()
    assert board.changes(WRITES) == [(OP_FLASH_ERASE, APP_BASE, 0x20000)]


def test_lost_dnbusy_reply(board: Board) -> None:
    # The host never got the dfuDNBUSY reply and asks again: that is the go-ahead too.
    board.dnload(0, b"\x41" + APP_BASE.to_bytes(4, "little"))
    assert board.so.sim_setup(0xA1, GETSTATUS, 0, 0, 6) == R_IN
    with pytest.raises(Pending):
        board.get_status()
    assert Board._status(board.answer_after_main_loop()) == (OK, 0, DNLOAD_IDLE)
    assert len(board.changes(WRITES)) == 1
    # A bus reset instead of the second request: the job never starts, the session is fresh.
    board.dnload(0, b"\x41" + (APP_BASE + 0x20000).to_bytes(4, "little"))
    assert board.so.sim_setup(0xA1, GETSTATUS, 0, 0, 6) == R_IN
    board.enumerate(alt=0)
    board.main_loop()
    assert len(board.changes(WRITES)) == 1
    assert board.get_status() == (OK, 0, IDLE)


def test_internal_flash_write_and_upload(board: Board) -> None:
    assert board.erase(APP_BASE + 0x1234) == (OK, 0, DNLOAD_IDLE)  # sector containing the address
    assert board.changes(WRITES) == [(OP_FLASH_ERASE, APP_BASE, 0x20000)]
    assert board.set_pointer(APP_BASE) == (OK, 0, DNLOAD_IDLE)
    data = pattern(XFER, seed=3)
    board.dnload(2, data)
    assert board.get_status() == (OK, 7 + 2, DNBUSY)  # 64 words x 0.1 ms rounded up + margin
    board.main_loop()
    assert board.get_status() == (OK, 0, DNLOAD_IDLE)
    assert board.internal(APP_BASE, XFER) == data
    # a short last block with a partial 256-bit word
    assert board.write(3, data[:40]) == (OK, 0, DNLOAD_IDLE)
    assert board.internal(APP_BASE + XFER, 48) == data[:40] + b"\xff" * 8
    assert board.so.sim_reprogrammed() == 0
    board.abort()

    # read back (blocks from the pointer), and the bootloader sector is readable
    assert board.set_pointer(APP_BASE)[0] == OK
    board.abort()
    assert board.upload(2, XFER) == data
    assert board.get_state() == UPLOAD_IDLE
    board.abort()
    board.poke_internal(INTERNAL_BASE, b"BOOT")
    assert board.set_pointer(INTERNAL_BASE)[0] == OK
    board.abort()
    assert board.upload(2, 8) == b"BOOT" + b"\xff" * 4
    # reading past the end of the memory returns the bytes up to the end (short frame -> idle)
    board.abort()
    assert board.set_pointer(INTERNAL_END - 16)[0] == OK
    board.abort()
    assert board.upload(2, XFER) == b"\xff" * 16
    assert board.get_state() == IDLE


def test_qspi_upload_uses_the_driver(board: Board) -> None:
    board.control(0x01, 11, 1, 0)
    board.poke_qspi(QSPI_BASE + 0x7FF000, pattern(4096, 9))
    assert board.set_pointer(QSPI_BASE + 0x7FF000)[0] == OK
    board.abort()
    assert board.upload(2, XFER) + board.upload(3, XFER) == pattern(4096, 9)
    assert board.upload(4, XFER) == b""  # right after the end: a zero-length frame ends the upload
    assert board.get_state() == IDLE


def test_upload_outside_memory_stalls_with_errtarget(board: Board) -> None:
    board.control(0x01, 11, 1, 0)
    assert board.set_pointer(QSPI_BASE + QSPI_SIZE - XFER)[0] == OK
    board.abort()
    assert len(board.upload(2, XFER)) == XFER
    with pytest.raises(Stall):
        board.upload(4, XFER)  # starts 2 KiB after the end of the memory
    assert board.get_status() == (ERR_TARGET, 0, ERROR)


def test_mass_erase_per_alternate_setting(board: Board) -> None:
    board.dnload(0, b"\x41")
    assert board.get_status() == (OK, 15 * 1000 + 2, DNBUSY)
    board.main_loop()
    assert board.get_status() == (OK, 0, DNLOAD_IDLE)
    erased = board.changes(WRITES)
    assert erased == [(OP_FLASH_ERASE, APP_BASE + n * 0x20000, 0x20000) for n in range(15)]  # never sector 0
    board.abort()
    board.control(0x01, 11, 1, 0)
    board.dnload(0, b"\x41")
    assert board.get_status() == (OK, 20000 + 2, DNBUSY)  # tCE typ
    board.main_loop()
    assert board.get_status() == (OK, 0, DNLOAD_IDLE)
    assert board.changes({OP_QSPI_CHIP_ERASE}) == [(OP_QSPI_CHIP_ERASE, 0, QSPI_SIZE)]
    assert "DFU mass-erase qspi ok" in board.uart_lines()


# ---- refused requests: error status, no flash change -------------------------------------------


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"\x41" + INTERNAL_BASE.to_bytes(4, "little"), ERR_TARGET),  # bootloader sector
        (b"\x41" + (APP_BASE - 1).to_bytes(4, "little"), ERR_TARGET),
        (b"\x41" + QSPI_BASE.to_bytes(4, "little"), ERR_TARGET),  # other alt's memory
        (b"\x41" + INTERNAL_END.to_bytes(4, "little"), ERR_TARGET),
        (b"\x21" + QSPI_BASE.to_bytes(4, "little"), ERR_TARGET),
        (b"\x21" + INTERNAL_END.to_bytes(4, "little"), ERR_TARGET),
        (b"\x92", ERR_UNKNOWN),  # read unprotect: ROM bootloader only
        (b"\x55", ERR_UNKNOWN),
        (b"\x21\x00\x00", ERR_UNKNOWN),  # truncated Set Address Pointer
        (b"\x41\x00\x00\x02\x08\x00", ERR_UNKNOWN),  # 6-byte erase
    ],
)
def test_bad_commands(board: Board, payload: bytes, status: int) -> None:
    assert board.command(payload) == (status, 0, ERROR)
    assert board.get_state() == ERROR
    assert board.changes(WRITES) == []
    with pytest.raises(Stall):  # only GETSTATUS / GETSTATE / CLRSTATUS in dfuERROR
        board.dnload(0, b"\x41")
    assert board.get_status() == (status, 0, ERROR)  # the first error is kept
    board.clear_status()
    assert board.get_status() == (OK, 0, IDLE)


def test_write_refusals(board: Board) -> None:
    def write_at(addr: int, data: bytes) -> tuple[int, int, int]:
        assert board.set_pointer(addr)[0] == OK
        result = board.write(2, data)
        if result[2] == ERROR:
            board.clear_status()
        return result

    data = pattern(XFER)
    assert write_at(INTERNAL_BASE, data) == (ERR_TARGET, 0, ERROR)  # read-only bootloader sector
    assert write_at(APP_BASE - XFER, data) == (ERR_TARGET, 0, ERROR)
    assert write_at(APP_BASE + 0x10, data) == (ERR_ADDRESS, 0, ERROR)  # not on a 256-bit word
    assert write_at(INTERNAL_END - 1024, data) == (ERR_ADDRESS, 0, ERROR)  # runs past the end
    assert board.changes(WRITES) == []

    board.poke_internal(APP_BASE + 0x100, b"\x00")
    assert write_at(APP_BASE, data) == (ERR_CHECK_ERASED, 0, ERROR)
    assert write_at(APP_BASE + 0x100 - 0x20, data[:32]) == (OK, 0, DNLOAD_IDLE)  # the word before
    board.abort()
    assert write_at(APP_BASE + 0x100, data[:1]) == (ERR_CHECK_ERASED, 0, ERROR)
    assert board.changes(WRITES) == [(OP_FLASH_PROGRAM, APP_BASE + 0xE0, 32)]

    # the highest block number lands far outside the memory
    assert board.set_pointer(INTERNAL_END - XFER)[0] == OK
    assert board.write(0xFFFF, data) == (ERR_TARGET, 0, ERROR)
    board.clear_status()

    # QSPI: writing over programmed bytes is refused too
    board.control(0x01, 11, 1, 0)
    board.poke_qspi(QSPI_BASE + 5, b"\x7f")
    assert write_at(QSPI_BASE, data[:16]) == (ERR_CHECK_ERASED, 0, ERROR)
    assert write_at(QSPI_BASE + QSPI_SIZE - 8, data[:16]) == (ERR_ADDRESS, 0, ERROR)
    assert write_at(QSPI_BASE + 7, data[:16]) == (OK, 0, DNLOAD_IDLE)  # QSPI has no alignment rule
    assert board.qspi(QSPI_BASE + 7, 16) == data[:16]


@pytest.mark.parametrize(
    ("fail", "status"),
    [(OP_QSPI_PROGRAM, ERR_WRITE), (OP_QSPI_VERIFY, ERR_VERIFY), (OP_QSPI_READ, ERR_WRITE)],
)
def test_qspi_driver_failures(board: Board, fail: int, status: int) -> None:
    board.control(0x01, 11, 1, 0)
    assert board.set_pointer(QSPI_BASE)[0] == OK
    board.so.sim_fail_next(fail)
    assert board.write(2, pattern(256)) == (status, 0, ERROR)
    lines = board.uart_lines()
    names = {ERR_WRITE: "errWRITE", ERR_VERIFY: "errVERIFY"}
    assert f"DFU write 0x90000000 256 {names[status]}" in lines


def test_erase_failures(board: Board) -> None:
    board.so.sim_fail_next(OP_FLASH_ERASE)
    assert board.erase(APP_BASE) == (ERR_ERASE, 0, ERROR)
    board.clear_status()
    board.so.sim_fail_next(OP_FLASH_PROGRAM)
    assert board.set_pointer(APP_BASE)[0] == OK
    assert board.write(2, pattern(64)) == (ERR_WRITE, 0, ERROR)
    board.clear_status()
    board.control(0x01, 11, 1, 0)
    board.so.sim_fail_next(OP_QSPI_CHIP_ERASE)
    assert board.command(b"\x41") == (ERR_ERASE, 0, ERROR)
    assert "DFU erase 0x08020000 errERASE" in board.uart_lines()


def test_requests_in_the_wrong_state(board: Board) -> None:
    with pytest.raises(Stall):
        board.clear_status()  # only valid in dfuERROR
    assert board.get_status() == (ERR_STALLEDPKT, 0, ERROR)
    board.clear_status()

    assert board.set_pointer(APP_BASE)[0] == OK  # dfuDNLOAD-IDLE
    with pytest.raises(Stall):
        board.upload(2, 16)
    assert board.get_status() == (ERR_STALLEDPKT, 0, ERROR)
    board.clear_status()

    assert board.upload(0, 3)  # dfuUPLOAD-IDLE
    with pytest.raises(Stall):
        board.dnload(2, b"1234")
    assert board.get_status() == (ERR_STALLEDPKT, 0, ERROR)
    with pytest.raises(Stall):
        board.abort()  # not from dfuERROR
    board.clear_status()

    with pytest.raises(Stall):
        board.dnload(0, bytes(XFER + 1))  # larger than wTransferSize
    board.clear_status()
    with pytest.raises(Stall):
        board.dnload(1, b"1234")  # block 1 is not used by DfuSe
    board.clear_status()
    with pytest.raises(Stall):
        board.control(0x21, 9)  # not a DFU request
    board.clear_status()
    assert board.get_status() == (OK, 0, IDLE)
    assert board.changes(WRITES) == []


def test_abort_drops_an_unsolicited_block(board: Board) -> None:
    assert board.set_pointer(APP_BASE)[0] == OK
    board.dnload(2, pattern(256))
    assert board.get_state() == DNLOAD_SYNC
    board.abort()
    assert board.get_status() == (OK, 0, IDLE)
    board.main_loop()
    assert board.changes(WRITES) == []


def test_busy_device_refuses_other_requests(board: Board) -> None:
    board.dnload(0, b"\x41" + APP_BASE.to_bytes(4, "little"))
    assert board.get_status()[2] == DNBUSY
    for req in (lambda: board.abort(), lambda: board.control(0x01, 11, 1, 0), lambda: board.upload(0, 3)):
        with pytest.raises(Stall):
            req()
    assert board.get_state() == DNBUSY
    board.main_loop()
    assert board.get_status() == (OK, 0, DNLOAD_IDLE)
    assert board.changes(WRITES) == [(OP_FLASH_ERASE, APP_BASE, 0x20000)]


def test_alt_switch_resets_pointer_and_bus_reset_resets_session(board: Board) -> None:
    board.control(0x01, 11, 1, 0)
    assert board.upload(2, 4) == b"\xff" * 4  # default pointer: start of the QSPI memory
    board.abort()
    assert board.set_pointer(QSPI_BASE + 0x1000)[0] == OK
    board.control(0x01, 11, 1, 0)  # the same alternate setting again changes nothing
    assert board.get_state() == DNLOAD_IDLE
    board.abort()
    board.poke_qspi(QSPI_BASE + 0x1000, b"\x5a")
    assert board.upload(2, 1) == b"\x5a"
    board.abort()
    board.control(0x01, 11, 0, 0)  # back to internal flash: pointer 0x08000000
    assert board.get_state() == IDLE
    board.poke_internal(INTERNAL_BASE, b"\x12\x34")
    assert board.upload(2, 2) == b"\x12\x34"
    board.abort()
    assert board.command(b"\x92")[2] == ERROR
    board.enumerate(alt=0)
    assert board.get_status() == (OK, 0, IDLE)


def test_detach_requests_leave(board: Board) -> None:
    board.control(0x21, DETACH, 1000)
    assert board.so.dfu_leave_requested()
    assert board.uart_lines()[-1] == "DFU detach"
