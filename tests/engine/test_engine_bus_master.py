"""Bus-master (DMA) accesses through the embedded engine's Host: RAM, registers, windows, errors,
and the MDMA model moving data (and code) under a running CPU."""

from __future__ import annotations

import pytest

from h743sim.engine import Machine
from peripherals.mdma import Mdma

DTCM = 0x2000_0000  # as tests/engine/conftest.py maps it for `build`
RESULTS = 0x2000_0000
DEV = 0x4000_0000
WINDOW = 0x9000_0000
MDMA = 0x5200_0000


class Device:
    """Registers: +0 a latch, +8 refuses writes through host.bus_error (as the FLASH does)."""

    def __init__(self, host):
        self.host = host
        self.latch = 0x1122_3344
        self.accesses: list[tuple[str, int, int]] = []

    def read(self, offset, size):
        self.accesses.append(("r", offset, size))
        return self.latch >> (8 * (offset & 3))

    def write(self, offset, size, value):
        self.accesses.append(("w", offset, size))
        if offset == 8:
            self.host.bus_error(DEV + offset, "write refused")
            return
        self.latch = value

    def reset(self):
        pass


@pytest.fixture
def machine() -> Machine:
    m = Machine()
    m.add_ram("sram", 0x2400_0000, 0x1000)
    return m


def test_ram_reads_and_writes(machine: Machine) -> None:
    host = machine.host_for("dma")
    assert host.bus_write(0x2400_0010, 4, 0xCAFE_F00D)
    assert machine.read_u32(0x2400_0010) == 0xCAFE_F00D
    assert host.bus_read(0x2400_0010, 2) == 0xF00D
    assert host.bus_write_block(0x2400_0100, b"abcdefgh") == 8
    assert host.bus_read_block(0x2400_0100, 8) == b"abcdefgh"
    # the end of RAM: the bytes before the hole, then the error
    assert host.bus_write_block(0x2400_0FFC, b"12345678") == 4
    assert host.bus_read_block(0x2400_0FFC, 8) == b"1234"
    assert host.bus_read(0x2500_0000, 4) is None and not host.bus_write(0x2500_0000, 4, 0)


def test_registers_in_units_and_refused_writes_fail_the_dma_not_the_cpu(machine: Machine) -> None:
    dev = Device(machine.host_for("dev"))
    machine.add_mmio("dev", DEV, 0x400, dev)
    host = machine.host_for("dma")
    assert host.bus_read(DEV, 4) == 0x1122_3344
    assert host.bus_read_block(DEV, 8, unit=2) == bytes.fromhex("44332211") * 2
    assert dev.accesses[-4:] == [("r", 0, 2), ("r", 2, 2), ("r", 4, 2), ("r", 6, 2)]
    assert host.bus_write_block(DEV, bytes(12), unit=4) == 8  # +8 refused
    assert not host.bus_write(DEV + 8, 4, 1)
    assert machine._pending_fault is None  # the CPU is not faulted for a DMA's access
    assert machine.memory.master_errors is None


def test_ppb_is_out_of_reach(machine: Machine) -> None:
    host = machine.host_for("dma")
    assert host.bus_read(0xE000_ED00, 4) is None  # SCB CPUID: the CPU's private bus
    assert not host.bus_write(0xE000_E100, 4, 1)


def test_windows_read_as_the_cpu_sees_them_and_writes_go_to_the_model(machine: Machine) -> None:
    buffer = bytearray(b"\xa5" * 0x1000)
    stores: list[tuple[int, int, int]] = []
    machine.memory.map_window("win", WINDOW, buffer, on_write=lambda o, s, v: stores.append((o, s, v)))
    host = machine.host_for("dma")
    assert host.bus_read(WINDOW + 4, 4) == 0xA5A5_A5A5
    assert host.bus_write_block(WINDOW + 0x10, bytes(range(8)), unit=4) == 8
    assert stores == [(0x10, 4, 0x0302_0100), (0x14, 4, 0x0706_0504)]
    assert buffer[0x10] == 0xA5  # the model decides what the cells hold
    remove = machine.memory.watch_reads(WINDOW + 0x20, 4, lambda off, size: "ECC error")
    assert host.bus_read(WINDOW + 0x20, 4) is None
    assert host.bus_read_block(WINDOW + 0x18, 16) == b"\xa5" * 8
    remove()
    machine.memory.unmap_window("win")
    assert host.bus_read(WINDOW, 4) is None and not host.bus_write(WINDOW, 4, 0)


def thumb_return(value: int) -> bytes:
    """movs r0, #value ; bx lr"""
    return bytes([value & 0xFF, 0x20, 0x70, 0x47])


def test_mdma_copies_data_and_code_under_a_running_cpu(build) -> None:
    code = DTCM + 0x2000
    word = 2 | 2 << 2 | 2 << 4 | 2 << 6 | 2 << 8 | 2 << 10 | 127 << 18 | 3 << 28 | 1 << 30  # words, full, SW
    body = f"""
reset:
  ldr r5, ={code + 1:#x}
  blx r5                    @ the code in DTCM returns 1
  ldr r4, ={RESULTS:#x}
  str r0, [r4]
  ldr r6, ={MDMA + 0x40:#x}  @ channel 0
  ldr r1, =new_code
  str r1, [r6, #0x18]       @ CxSAR
  ldr r1, ={code:#x}
  str r1, [r6, #0x1c]       @ CxDAR
  movs r1, #4
  str r1, [r6, #0x14]       @ CxBNDTR
  ldr r1, ={word:#x}
  str r1, [r6, #0x10]       @ CxTCR
  movs r1, #1
  str r1, [r6, #0x0c]       @ EN
  ldr r1, =0x10001
  str r1, [r6, #0x0c]       @ EN | SWRQ
wait:
  ldr r1, [r6, #0x00]       @ CxISR
  tst r1, #2                @ CTCIF
  beq wait
  blx r5                    @ now the copied code: returns 2
  str r0, [r4, #4]
  str r1, [r4, #8]
done:
  b done
  .align 2
new_code:
  movs r0, #2
  bx lr
"""

    def setup(m: Machine) -> None:
        m.add_mmio("mdma", MDMA, 0x1000, Mdma(m.host_for("mdma")))

    m = build(body, setup=setup)
    m.write_memory(code, thumb_return(1))
    m.run(max_ns=2_000_000)
    assert m.read_u32(RESULTS) == 1
    assert m.read_u32(RESULTS + 4) == 2  # translated code of the old bytes was dropped
    assert m.read_u32(RESULTS + 8) & 0x1F == 0x1E  # TCIF, BTIF, BRTIF, CTCIF
    assert m.read_memory(code, 4) == thumb_return(2)


def test_model_host_implements_the_whole_host_contract(machine: Machine) -> None:
    from peripherals.host import Host

    host = machine.host_for("dma")
    contract = {n for n, v in vars(Host).items() if callable(v) and not n.startswith("_")}
    assert all(callable(getattr(host, n, None)) for n in contract)


class Fifo(Device):
    """A data register that takes DMA beats at once (write_fifo), up to ``room`` bytes."""

    def __init__(self, host, room):
        super().__init__(host)
        self.room = room
        self.bulk: list[bytes] = []

    def write_fifo(self, offset, size, data):
        taken = min(len(data), self.room) // size * size
        self.bulk.append(bytes(data[:taken]))
        return taken


def test_fifo_writes_go_to_one_address(machine: Machine) -> None:
    dev = Device(machine.host_for("dev"))
    machine.add_mmio("dev", DEV, 0x400, dev)
    host = machine.host_for("dma")
    assert host.bus_write_fifo(DEV + 4, bytes(range(10)), unit=4) == 10
    assert dev.accesses == [("w", 4, 4), ("w", 4, 4), ("w", 4, 1), ("w", 4, 1)]  # whole units, then bytes
    assert host.bus_write_fifo(DEV + 8, bytes(8)) == 0  # the first beat is refused
    assert dev.latch == 9  # the last beat that landed
    assert host.bus_read_fifo(DEV, 12, unit=4) == bytes([9, 0, 0, 0]) * 3
    assert dev.accesses[-3:] == [("r", 0, 4)] * 3
    # memory as the destination: every beat lands on the same word, the last one stays
    assert host.bus_write_fifo(0x2400_0040, bytes(range(8)), unit=4) == 8
    assert machine.read_memory(0x2400_0040, 4) == bytes([4, 5, 6, 7])
    assert host.bus_write_fifo(0x2500_0000, bytes(4)) == 0 and host.bus_read_fifo(0x2500_0000, 4) == b""


def test_fifo_writes_let_the_model_take_beats_at_once(machine: Machine) -> None:
    fifo = Fifo(machine.host_for("fifo"), room=8)
    machine.add_mmio("fifo", DEV, 0x400, fifo)
    host = machine.host_for("dma")
    assert host.bus_write_fifo(DEV, bytes(range(16)), unit=4) == 16
    assert fifo.bulk == [bytes(range(8))]  # what it took at once
    assert fifo.accesses == [("w", 0, 4), ("w", 0, 4)]  # the rest, beat by beat
    assert fifo.latch == 0x0F0E_0D0C
