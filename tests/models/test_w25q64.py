"""W25Q64JV model driven directly through its bus interface (no controller)."""

from __future__ import annotations

import json

import pytest

from peripherals.host import NS_PER_MS, NS_PER_US
from peripherals.power_cut import PowerCutPlan
from peripherals.standalone_host import StandaloneHost
from peripherals.w25q64 import SFDP_TABLE, SIZE, W25Q64, Transaction


@pytest.fixture
def flash(host: StandaloneHost) -> W25Q64:
    return W25Q64(host)


def cmd(flash: W25Q64, opcode: int, **kw: object) -> bytes:
    return flash.transfer(Transaction(opcode, **kw))  # type: ignore[arg-type]


def read(flash: W25Q64, addr: int, n: int) -> bytes:
    return cmd(flash, 0x03, address=addr, read=n)


def wren(flash: W25Q64) -> None:
    cmd(flash, 0x06)


def program(flash: W25Q64, host: StandaloneHost, addr: int, data: bytes) -> None:
    wren(flash)
    cmd(flash, 0x02, address=addr, write=data)
    host.run_until_idle()


def erase(flash: W25Q64, host: StandaloneHost, opcode: int, addr: int | None) -> None:
    """20h/52h/D8h with an address; C7h/60h take none (addr=None)."""
    wren(flash)
    cmd(flash, opcode, address=addr)
    host.run_until_idle()


def sr(flash: W25Q64, opcode: int = 0x05) -> int:
    return cmd(flash, opcode, read=1)[0]


def quad_io_read(flash: W25Q64, addr: int, n: int, mode: int = 0xFF, instruction: int | None = 0xEB) -> bytes:
    return flash.transfer(
        Transaction(
            instruction,
            address=addr,
            address_lines=4,
            alternate=mode,
            alternate_lines=4,
            dummy_cycles=4,
            data_lines=4,
            read=n,
        )
    )


# ------------------------------------------------------------------------------ identification
def test_identification_commands(flash: W25Q64) -> None:
    assert cmd(flash, 0x9F, read=3) == bytes.fromhex("ef4017")
    assert cmd(flash, 0x90, address=0, read=4) == bytes.fromhex("ef16ef16")
    assert cmd(flash, 0x90, address=1, read=2) == bytes.fromhex("16ef")
    # 92h: 1-2-2 with M7-0 on two lines (4 clocks), no dummy
    dual = Transaction(
        0x92, address=0, address_lines=2, alternate=0xFF, alternate_lines=2, data_lines=2, read=2
    )
    assert flash.transfer(dual) == bytes.fromhex("ef16")
    # 94h: 1-4-4, M7-0 + 4 dummy clocks
    quad = Transaction(
        0x94,
        address=0,
        address_lines=4,
        alternate=0xFF,
        alternate_lines=4,
        dummy_cycles=4,
        data_lines=4,
        read=2,
    )
    assert flash.transfer(quad) == bytes.fromhex("ef16")
    # ABh: 3 dummy bytes, given as 24 dummy clocks or as a 24-bit address phase
    assert cmd(flash, 0xAB, dummy_cycles=24, read=3) == b"\x16\x16\x16"
    assert cmd(flash, 0xAB, address=0, read=1) == b"\x16"
    assert cmd(flash, 0x4B, dummy_cycles=32, read=8) == bytes.fromhex("d2631c478b553021")


def test_unique_id_is_configurable(host: StandaloneHost) -> None:
    flash = W25Q64(host, unique_id=0x0102030405060708)
    assert cmd(flash, 0x4B, dummy_cycles=32, read=8) == bytes(range(1, 9))


def test_sfdp_table(flash: W25Q64) -> None:
    head = cmd(flash, 0x5A, address=0, dummy_cycles=8, read=16)
    assert head[:4] == b"SFDP"
    assert head[5] == 1  # JESD216 major revision 1
    ptr = int.from_bytes(head[12:15], "little")
    words = head[11]
    table = cmd(flash, 0x5A, address=ptr, dummy_cycles=8, read=4 * words)
    dwords = [int.from_bytes(table[i : i + 4], "little") for i in range(0, len(table), 4)]
    assert dwords[1] + 1 == 64 * 1024 * 1024  # density in bits
    assert (dwords[0] >> 8) & 0xFF == 0x20  # 4 KB erase opcode
    assert (dwords[2] >> 8) & 0xFF == 0xEB and dwords[2] & 0x1F == 4 and (dwords[2] >> 5) & 7 == 2
    assert dwords[7] & 0xFF == 12 and (dwords[7] >> 8) & 0xFF == 0x20
    assert SFDP_TABLE[:4] == b"SFDP"


# ------------------------------------------------------------------------------ line modes
def test_commands_in_wrong_line_modes_return_ff_and_are_logged_once(
    flash: W25Q64, host: StandaloneHost
) -> None:
    flash.load_array(b"\x11\x22\x33\x44", 0x100)
    assert cmd(flash, 0x6B, address=0x100, dummy_cycles=8, data_lines=4, read=4) == bytes.fromhex("11223344")
    # 6Bh with data on 1 line
    assert cmd(flash, 0x6B, address=0x100, dummy_cycles=8, data_lines=1, read=4) == b"\xff" * 4
    assert cmd(flash, 0x6B, address=0x100, dummy_cycles=8, data_lines=1, read=4) == b"\xff" * 4
    # EBh with a wrong dummy count (M7-0 + 2 instead of + 4)
    bad = Transaction(
        0xEB,
        address=0x100,
        address_lines=4,
        alternate=0xFF,
        alternate_lines=4,
        dummy_cycles=2,
        data_lines=4,
        read=4,
    )
    assert flash.transfer(bad) == b"\xff" * 4
    # fast read without its 8 dummy clocks
    assert cmd(flash, 0x0B, address=0x100, read=2) == b"\xff\xff"
    # instruction on 4 lines (no QPI on the JV)
    assert cmd(flash, 0x9F, instruction_lines=4, read=3) == b"\xff" * 3
    # 0Bh with its 8 dummy clocks given as one alternate byte on 1 line is fine
    assert cmd(flash, 0x0B, address=0x100, alternate=0, read=2) == bytes.fromhex("1122")
    warnings = [m for _, m in host.logs if "6Bh" in m or "fast_read_quad_output" in m]
    assert len(warnings) == 1


def test_quad_commands_need_qe(host: StandaloneHost) -> None:
    flash = W25Q64(host, quad_enable_factory=False)
    flash.load_array(b"\xab\xcd", 0)
    assert not flash.quad_enabled
    assert quad_io_read(flash, 0, 2) == b"\xff\xff"
    wren(flash)
    cmd(flash, 0x32, address=0x200, write=b"\x00", data_lines=4)
    host.run_until_idle()
    assert flash.array[0x200] == 0xFF and flash.write_enabled  # ignored, WEL untouched
    # set QE with the non-volatile write of SR2 (tW = 10 ms)
    cmd(flash, 0x31, write=b"\x02")
    assert sr(flash) & 1
    host.advance(10 * NS_PER_MS)
    assert sr(flash) & 3 == 0 and sr(flash, 0x35) & 0x02
    assert quad_io_read(flash, 0, 2) == b"\xab\xcd"


def test_mode_bits_as_dummy_clocks_read_as_ones(flash: W25Q64) -> None:
    flash.load_array(b"\x5a\xa5", 0x40)
    tx = Transaction(0xEB, address=0x40, address_lines=4, dummy_cycles=6, data_lines=4, read=2)
    assert flash.transfer(tx) == b"\x5a\xa5"
    assert flash.continuous_read is None


def test_continuous_read_mode(flash: W25Q64, host: StandaloneHost) -> None:
    flash.load_array(bytes(range(64)), 0x1000)
    assert quad_io_read(flash, 0x1000, 4, mode=0xA0) == bytes(range(4))
    assert flash.continuous_read == 0xEB
    # next transaction: no instruction phase
    assert quad_io_read(flash, 0x1010, 4, mode=0xA0, instruction=None) == bytes(range(16, 20))
    assert flash.continuous_read == 0xEB
    # an instruction while in continuous mode is a mode-bit reset and nothing else
    assert cmd(flash, 0x9F, read=3) == b"\xff" * 3
    assert flash.continuous_read is None
    assert cmd(flash, 0x9F, read=3) == bytes.fromhex("ef4017")
    # leaving with M5-4 != 10 on the last continuous read
    quad_io_read(flash, 0x1000, 1, mode=0x20)
    assert flash.continuous_read == 0xEB
    assert quad_io_read(flash, 0x1004, 2, mode=0xFF, instruction=None) == bytes((4, 5))
    assert flash.continuous_read is None


def test_burst_with_wrap(flash: W25Q64) -> None:
    flash.load_array(bytes(range(64)), 0x2000)
    set_wrap = Transaction(0x77, dummy_cycles=6, write=bytes((0b0010_0000,)), data_lines=4)  # W4=0, 16 bytes
    flash.transfer(set_wrap)
    assert flash.burst_wrap == 16
    assert quad_io_read(flash, 0x200C, 8) == bytes((12, 13, 14, 15, 0, 1, 2, 3))
    assert read(flash, 0x200C, 8) == bytes(range(12, 20))  # only EBh wraps
    flash.transfer(Transaction(0x77, dummy_cycles=6, write=b"\x10", data_lines=4))
    assert flash.burst_wrap is None
    assert quad_io_read(flash, 0x200C, 8) == bytes(range(12, 20))


# ------------------------------------------------------------------------------ status registers
def test_power_up_status(flash: W25Q64) -> None:
    assert sr(flash, 0x05) == 0x00
    assert sr(flash, 0x35) == 0x02  # QE factory-set on -IQ parts (JEDEC EF 40 17)
    assert sr(flash, 0x15) == 0x60  # DRV = 11
    wren(flash)
    assert sr(flash) == 0x02
    cmd(flash, 0x04)
    assert sr(flash) == 0x00


def test_nonvolatile_status_write_is_timed_and_survives_power_cycle(
    flash: W25Q64, host: StandaloneHost
) -> None:
    cmd(flash, 0x01, write=b"\x04")  # WEL=0: ignored
    host.run_until_idle()
    assert sr(flash) == 0
    wren(flash)
    cmd(flash, 0x01, write=bytes((0x0C, 0x42)))  # 01h with two bytes: SR1 and SR2
    assert sr(flash) == 0x03  # BUSY and WEL during tW; new bits land at the end
    host.advance(10 * NS_PER_MS - 1)
    assert sr(flash) == 0x03
    host.advance(1)
    assert sr(flash) == 0x0C and sr(flash, 0x35) == 0x42
    flash.power_on_reset()
    assert sr(flash) == 0x0C and sr(flash, 0x35) == 0x42


def test_volatile_status_write(flash: W25Q64, host: StandaloneHost) -> None:
    cmd(flash, 0x50)
    cmd(flash, 0x11, write=b"\x64")  # WPS=1, volatile: instant, no BUSY, WEL stays 0
    assert sr(flash, 0x15) == 0x64 and sr(flash) == 0 and not flash.busy
    assert flash.nonvolatile_status()[2] == 0x60
    flash.power_on_reset()
    assert sr(flash, 0x15) == 0x60


def test_status_write_byte_count_rules(flash: W25Q64, host: StandaloneHost) -> None:
    wren(flash)
    cmd(flash, 0x31, write=b"\x02\x00")  # 31h takes exactly one byte
    host.run_until_idle()
    assert flash.write_enabled and not flash.busy
    cmd(flash, 0x01, write=b"\x04\x02\x00")  # three bytes: ignored
    assert not flash.busy


def test_lb_bits_are_one_time_programmable(flash: W25Q64, host: StandaloneHost) -> None:
    wren(flash)
    cmd(flash, 0x31, write=bytes((0x02 | 0x08,)))  # LB1
    host.run_until_idle()
    assert sr(flash, 0x35) & 0x08
    wren(flash)
    cmd(flash, 0x31, write=b"\x02")
    host.run_until_idle()
    assert sr(flash, 0x35) & 0x08


def test_srl_locks_status_registers(flash: W25Q64, host: StandaloneHost) -> None:
    cmd(flash, 0x50)
    cmd(flash, 0x31, write=b"\x03")  # volatile SRL=1 (and QE)
    wren(flash)
    cmd(flash, 0x01, write=b"\x1c")
    host.run_until_idle()
    assert sr(flash) & 0x1C == 0
    flash.power_on_reset()  # volatile lock gone
    wren(flash)
    cmd(flash, 0x01, write=b"\x1c")
    host.run_until_idle()
    assert sr(flash) & 0x1C == 0x1C


# ------------------------------------------------------------------------------ program / erase
def test_page_program_and_semantics_wrap_and_timing(flash: W25Q64, host: StandaloneHost) -> None:
    cmd(flash, 0x02, address=0x100, write=b"\x00")  # WEL=0: ignored
    assert not flash.busy
    wren(flash)
    cmd(flash, 0x02, address=0x3FC, write=bytes((0xF0, 0x0F, 0x33, 0x44, 0x55, 0x66)))
    assert flash.busy and sr(flash) == 0x03
    assert read(flash, 0x3FC, 1) == b"\xff"  # reads ignored while BUSY
    host.advance(400 * NS_PER_US - 1)
    assert flash.busy and flash.array[0x3FC] == 0xFF
    host.advance(1)
    assert not flash.busy and not flash.write_enabled
    # wrapped to the start of the same page
    assert read(flash, 0x3FC, 4) == bytes((0xF0, 0x0F, 0x33, 0x44))
    assert read(flash, 0x300, 2) == bytes((0x55, 0x66))
    assert flash.array[0x400] == 0xFF
    program(flash, host, 0x3FC, bytes((0x3C,)))
    assert flash.array[0x3FC] == 0xF0 & 0x3C  # program only clears bits


def test_page_program_keeps_last_256_bytes(flash: W25Q64, host: StandaloneHost) -> None:
    data = bytes(i & 0xFF for i in range(300))
    program(flash, host, 0x500, data)
    expected = bytearray(256)
    for i, b in enumerate(data):
        expected[i % 256] = b
    assert bytes(flash.array[0x500:0x600]) == bytes(expected)


def test_erase_sizes_timing_and_counts(flash: W25Q64, host: StandaloneHost) -> None:
    flash.load_array(b"\x00" * 0x20000, 0)
    wren(flash)
    cmd(flash, 0x20, address=0x1234)
    host.advance(45 * NS_PER_MS - 1)
    assert flash.busy and flash.array[0x1000] == 0
    host.advance(1)
    assert not flash.busy
    assert (
        flash.array[0x1000:0x2000] == b"\xff" * 0x1000
        and flash.array[0xFFF] == 0
        and flash.array[0x2000] == 0
    )
    assert flash.erase_counts[:3] == [0, 1, 0]
    wren(flash)
    cmd(flash, 0x52, address=0x8000)
    host.advance(120 * NS_PER_MS)
    assert not flash.busy and flash.array[0x8000:0x10000] == b"\xff" * 0x8000 and flash.array[0x10000] == 0
    wren(flash)
    cmd(flash, 0xD8, address=0x10000)
    host.advance(150 * NS_PER_MS)
    assert not flash.busy and flash.array[0x10000:0x20000] == b"\xff" * 0x10000
    assert flash.erase_counts[8:32] == [1] * 24 and flash.erase_counts[7] == 0
    wren(flash)
    cmd(flash, 0xC7)
    host.advance(20 * 1000 * NS_PER_MS - 1)
    assert flash.busy
    host.advance(1)
    assert flash.array == b"\xff" * SIZE
    assert flash.erase_counts[1] == 2 and flash.erase_counts[2047] == 1 and flash.erase_counts[0] == 1


def test_fast_profile_is_instant(host: StandaloneHost) -> None:
    flash = W25Q64(host, timing="fast")
    program(flash, host, 0, b"\x12")
    assert flash.array[0] == 0x12 and not flash.busy
    wren(flash)
    cmd(flash, 0x20, address=0)
    assert flash.array[0] == 0xFF and host.now_ns() == 0
    with pytest.raises(ValueError, match="timing profile"):
        W25Q64(host, timing="quick")


def test_only_status_reads_while_busy(flash: W25Q64, host: StandaloneHost) -> None:
    wren(flash)
    cmd(flash, 0x20, address=0)
    assert cmd(flash, 0x9F, read=3) == b"\xff" * 3
    cmd(flash, 0x04)  # write disable ignored while busy
    assert sr(flash) == 0x03 and sr(flash, 0x35) == 0x02 and sr(flash, 0x15) == 0x60


def test_array_listener_notifications(flash: W25Q64, host: StandaloneHost) -> None:
    seen: list[tuple[int, int]] = []
    flash.add_array_listener(lambda off, size: seen.append((off, size)))
    program(flash, host, 0x2010, b"\x00\x01")
    erase(flash, host, 0x20, 0x2000)
    flash.inject_bit_flip(0x10, 3)
    assert seen == [(0x2010, 2), (0x2000, 0x1000), (0x10, 1)]


# ------------------------------------------------------------------------------ suspend / resume
def test_erase_suspend_resume(flash: W25Q64, host: StandaloneHost) -> None:
    flash.load_array(b"\x00" * 0x2000, 0)
    flash.load_array(b"\x77", 0x5000)
    wren(flash)
    cmd(flash, 0x20, address=0x1000)
    host.advance(10 * NS_PER_MS)
    cmd(flash, 0x75)
    assert sr(flash) & 1 and sr(flash, 0x35) & 0x80
    host.advance(20 * NS_PER_US)
    assert sr(flash) & 1 == 0 and sr(flash, 0x35) & 0x80 and flash.suspended
    assert read(flash, 0x5000, 1) == b"\x77"  # reads work while suspended
    # page program outside the suspended sector is allowed, inside it is not
    wren(flash)
    cmd(flash, 0x02, address=0x5000, write=b"\x07")
    host.advance(400 * NS_PER_US)
    assert flash.array[0x5000] == 0x07
    wren(flash)
    cmd(flash, 0x02, address=0x1000, write=b"\x00")
    cmd(flash, 0x20, address=0x0000)  # erase while suspended: refused
    assert not flash.busy
    cmd(flash, 0x7A)
    assert flash.busy and not flash.suspended
    host.advance(35 * NS_PER_MS - 1)
    assert flash.busy
    host.advance(1)
    assert not flash.busy and flash.array[0x1000:0x2000] == b"\xff" * 0x1000 and flash.array[0] == 0


def test_suspend_ignored_for_chip_erase(flash: W25Q64, host: StandaloneHost) -> None:
    wren(flash)
    cmd(flash, 0xC7)
    host.advance(NS_PER_MS)
    cmd(flash, 0x75)
    host.advance(NS_PER_MS)
    assert flash.busy and not flash.suspended


# ------------------------------------------------------------------------------ reset, power-down
def test_software_reset(flash: W25Q64, host: StandaloneHost) -> None:
    cmd(flash, 0x50)
    cmd(flash, 0x01, write=b"\x1c")
    wren(flash)
    cmd(flash, 0x99)  # without 66h: ignored
    assert sr(flash) == 0x1E
    cmd(flash, 0x66)
    cmd(flash, 0x99)
    assert cmd(flash, 0x05, read=1) == b"\xff"  # nothing accepted during tRST
    host.advance(30 * NS_PER_US)
    assert sr(flash) == 0x00  # volatile BP bits reloaded, WEL cleared
    cmd(flash, 0x66)
    cmd(flash, 0x06)  # anything between 66h and 99h cancels the reset enable
    cmd(flash, 0x99)
    assert sr(flash) == 0x02


def test_power_down_and_release(flash: W25Q64, host: StandaloneHost) -> None:
    cmd(flash, 0xB9)
    host.advance(3 * NS_PER_US)
    assert flash.powered_down
    assert cmd(flash, 0x9F, read=3) == b"\xff" * 3
    assert sr(flash) == 0xFF
    cmd(flash, 0xAB)
    assert not flash.powered_down
    assert cmd(flash, 0x9F, read=3) == b"\xff" * 3  # tRES1 not yet over
    host.advance(3 * NS_PER_US)
    assert cmd(flash, 0x9F, read=3) == bytes.fromhex("ef4017")
    # ABh with its dummy bytes also reads the ID out of power-down
    cmd(flash, 0xB9)
    host.advance(3 * NS_PER_US)
    assert cmd(flash, 0xAB, dummy_cycles=24, read=1) == b"\x16"
    assert not flash.powered_down


# ------------------------------------------------------------------------------ protection
@pytest.mark.parametrize(
    ("sr1", "sr2", "protected", "free"),
    [
        (0x04, 0x02, [0x7E0000, 0x7FFFFF], [0x7DFFFF, 0]),  # BP=001 top 128 KB
        (0x18, 0x02, [0x400000], [0x3FFFFF]),  # BP=110 upper 4 MB
        (0x24, 0x02, [0x000000, 0x01FFFF], [0x020000]),  # TB=1 BP=001 bottom 128 KB
        (0x44, 0x02, [0x7FF000], [0x7FEFFF]),  # SEC=1 BP=001 top 4 KB
        (0x64, 0x02, [0x000FFF], [0x001000]),  # SEC=1 TB=1 bottom 4 KB
        (0x04, 0x42, [0x7DFFFF, 0], [0x7E0000]),  # CMP=1 inverts
        (0x1C, 0x02, [0, 0x7FFFFF], []),  # BP=111 all
        (0x1C, 0x42, [], [0, 0x7FFFFF]),  # BP=111 CMP=1 none
    ],
)
def test_block_protection_table(
    flash: W25Q64, host: StandaloneHost, sr1: int, sr2: int, protected: list[int], free: list[int]
) -> None:
    wren(flash)
    cmd(flash, 0x01, write=bytes((sr1, sr2)))
    host.run_until_idle()
    for addr in protected:
        program(flash, host, addr, b"\x00")
        assert flash.array[addr] == 0xFF, hex(addr)
        assert flash.write_enabled  # the ignored command leaves WEL alone
        cmd(flash, 0x04)
    for addr in free:
        program(flash, host, addr, b"\x00")
        assert flash.array[addr] == 0x00, hex(addr)


def test_bp_110_range(flash: W25Q64) -> None:
    flash._sr[0] = 0x18  # BP=110
    assert flash.protected_range() == (0x400000, SIZE)


def test_erase_and_chip_erase_respect_protection(flash: W25Q64, host: StandaloneHost) -> None:
    flash.load_array(b"\x00" * SIZE)
    wren(flash)
    cmd(flash, 0x01, write=b"\x04")  # top 128 KB protected
    host.run_until_idle()
    erase(flash, host, 0x20, 0x7F0000)
    assert flash.array[0x7F0000] == 0
    erase(flash, host, 0xD8, 0x7D0000)  # 64 KB block just below: free
    assert flash.array[0x7D0000] == 0xFF
    erase(flash, host, 0xC7, None)
    assert flash.array[0] == 0 and not flash.busy and flash.write_enabled  # ignored
    wren(flash)
    cmd(flash, 0x01, write=b"\x00")
    host.run_until_idle()
    erase(flash, host, 0xC7, None)
    assert flash.array == b"\xff" * SIZE


def test_individual_block_locks(flash: W25Q64, host: StandaloneHost) -> None:
    cmd(flash, 0x50)
    cmd(flash, 0x11, write=b"\x64")  # WPS=1: everything locked at power-up
    program(flash, host, 0x300000, b"\x00")
    assert flash.array[0x300000] == 0xFF
    assert cmd(flash, 0x3D, address=0x300000, read=1) == b"\x01"
    wren(flash)
    cmd(flash, 0x98)  # global unlock
    assert cmd(flash, 0x3D, address=0x300000, read=1) == b"\x00"
    wren(flash)
    cmd(flash, 0x36, address=0x001000)  # lock sector 1 of the bottom block
    program(flash, host, 0x001000, b"\x00")
    program(flash, host, 0x002000, b"\x00")
    assert flash.array[0x1000] == 0xFF and flash.array[0x2000] == 0x00
    erase(flash, host, 0xD8, 0)  # the block holds a locked sector: ignored
    assert flash.array[0x2000] == 0x00
    erase(flash, host, 0xC7, None)
    assert flash.array[0x2000] == 0x00 and flash.write_enabled  # ignored: a sector is locked
    wren(flash)
    cmd(flash, 0x39, address=0x001000)
    erase(flash, host, 0xD8, 0)
    assert flash.array[0x2000] == 0xFF
    wren(flash)
    cmd(flash, 0x36, address=0x450000)  # middle blocks lock per 64 KB
    assert cmd(flash, 0x3D, address=0x45F000, read=1) == b"\x01"
    assert cmd(flash, 0x3D, address=0x460000, read=1) == b"\x00"


# ------------------------------------------------------------------------------ security registers
def test_security_registers(flash: W25Q64, host: StandaloneHost) -> None:
    def read_sec(addr: int, n: int) -> bytes:
        return cmd(flash, 0x48, address=addr, dummy_cycles=8, read=n)

    wren(flash)
    cmd(flash, 0x42, address=0x2010, write=b"\xde\xad")
    host.advance(400 * NS_PER_US)
    assert read_sec(0x2010, 2) == b"\xde\xad" and read_sec(0x1010, 2) == b"\xff\xff"
    assert read_sec(0x2FF, 1) == b"\xff"  # not a security register address
    wren(flash)
    cmd(flash, 0x44, address=0x2000)
    host.advance(45 * NS_PER_MS)
    assert read_sec(0x2010, 2) == b"\xff\xff"
    wren(flash)
    cmd(flash, 0x31, write=bytes((0x02 | 0x10,)))  # LB2 locks register 2
    host.run_until_idle()
    wren(flash)
    cmd(flash, 0x42, address=0x2000, write=b"\x00")
    host.run_until_idle()
    assert read_sec(0x2000, 1) == b"\xff" and flash.write_enabled


# ------------------------------------------------------------------------------ wear and faults
def worn_flash(host: StandaloneHost, seed: int) -> W25Q64:
    flash = W25Q64(host, timing="fast", endurance=3, seed=seed)
    for _ in range(4):
        erase(flash, host, 0x20, 0x3000)
    return flash


def test_wear_out_erase_leaves_zero_bits_deterministically(host: StandaloneHost) -> None:
    flash = W25Q64(host, timing="fast", endurance=3, seed=7)
    for _ in range(3):
        erase(flash, host, 0x20, 0x3000)
    assert flash.array[0x3000:0x4000] == b"\xff" * 0x1000 and not flash.is_worn(3)
    erase(flash, host, 0x20, 0x3000)  # 4th cycle: past endurance
    assert flash.erase_counts[3] == 4 and flash.is_worn(3)
    sector = bytes(flash.array[0x3000:0x4000])
    zero_bits = sum(8 - bin(b).count("1") for b in sector)
    assert zero_bits == 8
    assert sector == bytes(worn_flash(StandaloneHost(), 7).array[0x3000:0x4000])
    assert sector != bytes(worn_flash(StandaloneHost(), 8).array[0x3000:0x4000])
    assert flash.array[0x2FFF] == 0xFF and flash.array[0x4000] == 0xFF
    assert sr(flash) == 0 and sr(flash, 0x35) == 0x02  # no status flag reports it
    erase(flash, host, 0x20, 0x3000)  # worse with every cycle
    assert sum(8 - bin(b).count("1") for b in flash.array[0x3000:0x4000]) == 16


def test_wear_out_program_leaves_one_bits(host: StandaloneHost) -> None:
    flash = worn_flash(host, 1)
    flash.load_array(b"\xff" * 0x1000, 0x3000)
    program(flash, host, 0x3000, b"\x00" * 256)
    for page in range(1, 16):
        program(flash, host, 0x3000 + page * 256, b"\x00" * 256)
    ones = sum(bin(b).count("1") for b in flash.array[0x3000:0x4000])
    assert ones == 8  # 8 bits failed to program
    fresh = W25Q64(host, timing="fast", endurance=3, seed=1)
    program(fresh, host, 0x3000, b"\x00" * 256)
    assert fresh.array[0x3000:0x3100] == b"\x00" * 256


def test_stuck_bits_apply_to_later_operations(flash: W25Q64, host: StandaloneHost) -> None:
    flash.inject_stuck_bit(0x10, 2, 0)
    flash.inject_stuck_bit(0x11, 0, 1)
    assert flash.array[0x10] == 0xFF  # nothing changes until the cell is rewritten
    erase(flash, host, 0x20, 0)
    assert flash.array[0x10] == 0xFB and flash.array[0x11] == 0xFF
    program(flash, host, 0x10, b"\xff\x00")
    assert flash.array[0x10] == 0xFB and flash.array[0x11] == 0x01
    assert flash.stuck_bits == [(0x10, 2, 0), (0x11, 0, 1)]
    with pytest.raises(ValueError, match="bit 9"):
        flash.inject_stuck_bit(0, 9, 1)
    with pytest.raises(ValueError, match="outside"):
        flash.inject_bit_flip(SIZE, 0)


def test_bit_flip_is_one_shot(flash: W25Q64, host: StandaloneHost) -> None:
    flash.inject_bit_flip(0x20, 7)
    assert flash.array[0x20] == 0x7F
    erase(flash, host, 0x20, 0)
    assert flash.array[0x20] == 0xFF


# ------------------------------------------------------------------------------ power cut
def test_power_cut_during_page_program(host: StandaloneHost) -> None:
    plan = PowerCutPlan(on_event="qspi.page_program", fraction=0.5)
    flash = W25Q64(host, power_cut=plan)
    wren(flash)
    cmd(flash, 0x02, address=0x1000, write=bytes(100 - i for i in range(100)))
    host.advance(200 * NS_PER_US - 1)
    assert host.powered_off is None
    host.advance(1)
    assert host.powered_off and "page_program" in host.powered_off
    expected = bytes(100 - i for i in range(50)) + b"\xff" * 50
    assert bytes(flash.array[0x1000:0x1064]) == expected
    assert cmd(flash, 0x9F, read=3) == b"\xff" * 3  # no power
    flash.power_on_reset()
    assert cmd(flash, 0x9F, read=3) == bytes.fromhex("ef4017") and sr(flash) == 0


def test_power_cut_during_page_program_wrapping(host: StandaloneHost) -> None:
    flash = W25Q64(host, power_cut=PowerCutPlan(after_ops=0, fraction=0.75))
    wren(flash)
    cmd(flash, 0x02, address=0x10FC, write=bytes((1, 2, 3, 4, 5, 6, 7, 8)))
    host.run_until_idle()
    # 6 of 8 bytes programmed in programming order: 10FC..10FF, then 1000, 1001
    assert bytes(flash.array[0x10FC:0x1100]) == bytes((1, 2, 3, 4))
    assert bytes(flash.array[0x1000:0x1004]) == bytes((5, 6, 0xFF, 0xFF))


def test_power_cut_during_sector_erase(host: StandaloneHost) -> None:
    flash = W25Q64(host, power_cut=PowerCutPlan(on_event="qspi.sector_erase", fraction=0.25))
    content = bytes((i * 7) & 0xFF for i in range(0x1000))
    flash.load_array(content, 0x7000)
    wren(flash)
    cmd(flash, 0x20, address=0x7000)
    host.run_until_idle()
    assert host.now_ns() == 45 * NS_PER_MS // 4
    assert host.powered_off
    assert bytes(flash.array[0x7000:0x7400]) == b"\xff" * 0x400
    assert bytes(flash.array[0x7400:0x8000]) == content[0x400:]
    assert flash.erase_counts[7] == 1


def test_power_cut_during_block_erase_spans_sectors(host: StandaloneHost) -> None:
    flash = W25Q64(host, power_cut=PowerCutPlan(at_ns=150 * NS_PER_MS * 3 // 10))
    flash.load_array(b"\x00" * 0x10000, 0x20000)
    wren(flash)
    cmd(flash, 0xD8, address=0x20000)
    host.run_until_idle()
    done = int(0x10000 * 0.3)
    assert bytes(flash.array[0x20000 : 0x20000 + done]) == b"\xff" * done
    assert bytes(flash.array[0x20000 + done : 0x30000]) == b"\x00" * (0x10000 - done)
    assert flash.erase_counts[0x20:0x30] == [1] * 5 + [0] * 11  # sectors 0..4 touched (4.8 sectors)


def test_power_cut_fast_profile_tears_the_same_way(host: StandaloneHost) -> None:
    flash = W25Q64(host, timing="fast", power_cut=PowerCutPlan(on_event="qspi.page_program", fraction=0.5))
    wren(flash)
    cmd(flash, 0x02, address=0, write=b"\x00" * 10)
    assert host.powered_off and host.now_ns() == 0
    assert bytes(flash.array[:10]) == b"\x00" * 5 + b"\xff" * 5


def test_power_cut_during_status_write_keeps_old_bits(host: StandaloneHost) -> None:
    plan = PowerCutPlan(on_event="qspi.write_status")
    flash = W25Q64(host, power_cut=plan)
    wren(flash)
    cmd(flash, 0x01, write=b"\x1c")
    host.run_until_idle()
    assert host.powered_off and plan.log == ["qspi.write_status"]
    flash.power_on_reset()
    assert sr(flash) == 0


def test_operations_are_announced_to_the_plan(host: StandaloneHost) -> None:
    plan = PowerCutPlan()
    flash = W25Q64(host, timing="fast", power_cut=plan)
    program(flash, host, 0, b"\x00")
    erase(flash, host, 0x20, 0)
    erase(flash, host, 0x52, 0)
    erase(flash, host, 0xD8, 0)
    erase(flash, host, 0xC7, None)
    assert plan.log == [
        "qspi.page_program",
        "qspi.sector_erase",
        "qspi.block_erase_32k",
        "qspi.block_erase_64k",
        "qspi.chip_erase",
    ]


# ------------------------------------------------------------------------------ persistence
def test_metadata_round_trip(host: StandaloneHost) -> None:
    flash = W25Q64(host, timing="fast", endurance=500, seed=42, unique_id=0x1122334455667788)
    wren(flash)
    cmd(flash, 0x01, write=bytes((0x24, 0x4A)))  # TB, BP0, CMP, LB1, QE
    erase(flash, host, 0x20, 0x5000)
    flash.inject_stuck_bit(0x123, 4, 0)
    wren(flash)
    cmd(flash, 0x42, address=0x3000, write=b"key")
    meta = json.loads(json.dumps(flash.to_metadata()))
    other = W25Q64(StandaloneHost(), quad_enable_factory=False)
    other.load_metadata(meta)
    assert other.to_metadata() == flash.to_metadata()
    assert other.status_register(1) == 0x24 and other.status_register(2) == 0x4A
    assert other.erase_counts[5] == 1 and other.endurance == 500 and other.seed == 42
    assert cmd(other, 0x4B, dummy_cycles=32, read=8) == bytes.fromhex("1122334455667788")
    assert cmd(other, 0x48, address=0x3000, dummy_cycles=8, read=3) == b"key"


def test_bad_metadata_is_rejected_and_changes_nothing(flash: W25Q64) -> None:
    before = flash.to_metadata()
    bad = dict(before, endurance=500, erase_counts=[0] * 10)
    with pytest.raises(ValueError, match="erase_counts"):
        flash.load_metadata(bad)
    with pytest.raises(ValueError, match="stuck bit"):
        flash.load_metadata({"stuck_bits": [[0, 8, 1]]})
    with pytest.raises(ValueError, match="not W25Q64JV"):
        flash.load_metadata({"model": "MX25L"})
    assert flash.to_metadata() == before


def test_power_on_reset_state(flash: W25Q64, host: StandaloneHost) -> None:
    quad_io_read(flash, 0, 1, mode=0xA0)
    assert flash.continuous_read == 0xEB
    flash.power_on_reset()
    assert flash.continuous_read is None
    wren(flash)
    cmd(flash, 0xB9)
    assert flash.powered_down and flash.write_enabled
    flash.power_on_reset()
    assert not flash.powered_down and flash.continuous_read is None
    assert not flash.write_enabled and not flash.busy and sr(flash) == 0


def test_bus_misuse_raises_clear_errors(flash: W25Q64) -> None:
    with pytest.raises(RuntimeError, match="without begin"):
        flash.read_data(1)
    flash.begin()
    with pytest.raises(ValueError, match="not a bus phase"):
        flash.address(0, 5, 1)
    flash.end()


# -- bulk program path (_program_page) against the per-byte path it replaces -------------------


def _reference_program(flash: W25Q64, addr: int, data: bytes, fraction: float) -> None:
    """The per-byte program of a page program: the (address, byte) pairs of FACTS §D.4
    (wrap inside the page, last 256 bytes kept), prefix ``fraction``, through ``_program``."""
    page, offset = addr - addr % 256, addr % 256
    first = max(0, len(data) - 256)
    items = [(page + (offset + i) % 256, data[i]) for i in range(first, len(data))]
    flash._program(items[: int(len(items) * fraction)] if fraction < 1.0 else items)


@pytest.mark.parametrize("seed", range(6))
def test_bulk_page_program_matches_per_byte_path(seed: int) -> None:
    import random

    rng = random.Random(seed)
    for _case in range(40):
        fraction = rng.choice((1.0, 1.0, 0.0, 0.01, 0.3, 0.5, 0.77, 0.999))
        plan = PowerCutPlan(after_ops=0, fraction=fraction) if fraction < 1.0 else None
        fast_host, ref_host = StandaloneHost(), StandaloneHost()
        fast = W25Q64(fast_host, endurance=2, seed=seed, power_cut=plan)
        ref = W25Q64(ref_host, endurance=2, seed=seed)
        sector = rng.randrange(4)
        base = sector * 0x1000
        content = bytes(rng.randrange(256) for _ in range(0x1000))
        cycles = rng.choice((0, 2, 3, 9))  # above 2: worn, some bits fail to program
        stuck = [
            (base + rng.randrange(0x1000), rng.randrange(8), rng.randrange(2))
            for _ in range(rng.randrange(3))
        ]
        notes: dict[str, list[tuple[int, int]]] = {"fast": [], "ref": []}
        for chip, key in ((fast, "fast"), (ref, "ref")):
            chip.load_array(content, base)
            chip.erase_counts[sector] = cycles
            for a, bit, value in stuck:
                chip.inject_stuck_bit(a, bit, value)
            chip.add_array_listener(lambda off, size, log=notes[key]: log.append((off, size)))
        addr = base + rng.randrange(0x1000)
        length = rng.choice((1, 4, 255, 256, 257, 300, rng.randrange(1, 400)))
        data = bytes(rng.randrange(256) for _ in range(length))
        wren(fast)
        cmd(fast, 0x02, address=addr, write=data)
        fast_host.run_until_idle()
        _reference_program(ref, addr, data, fraction)
        assert bytes(fast.array[base : base + 0x1000]) == bytes(ref.array[base : base + 0x1000]), (
            seed,
            _case,
            hex(addr),
            length,
            fraction,
            cycles,
        )
        assert notes["fast"] == notes["ref"]


def test_write_data_in_pieces_equals_one_call(host: StandaloneHost) -> None:
    """Later write_data calls of an accepted data phase skip the phase checks: same bytes kept,
    and a phase broken in between (wrong lines, a read, a dummy) still voids the program."""
    data = bytes(range(40, 140))

    def program_in(pieces: list[int], breaker: str | None = None) -> bytes:
        chip = W25Q64(StandaloneHost())
        wren(chip)
        chip.begin()
        chip.instruction(0x32)  # quad page program
        chip.address(0x2010)
        pos = 0
        for i, n in enumerate(pieces):
            chip.write_data(data[pos : pos + n], lines=4)
            pos += n
            if i == 1 and breaker == "lines":
                chip.write_data(b"\x00", lines=1)
            elif i == 1 and breaker == "read":
                chip.read_data(1, lines=4)
            elif i == 1 and breaker == "dummy":
                chip.dummy(2)
        chip.end()
        chip.host.run_until_idle()  # type: ignore[attr-defined]
        return bytes(chip.array[0x2000:0x2100])

    whole = program_in([len(data)])
    assert whole[0x10 : 0x10 + len(data)] == data
    assert program_in([4] * 25) == whole
    assert program_in([1, 3, 4, 92]) == whole
    for breaker in ("lines", "read", "dummy"):
        assert program_in([4] * 25, breaker) == b"\xff" * 256, breaker
