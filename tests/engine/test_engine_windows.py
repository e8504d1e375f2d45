"""Model-owned memory windows: XIP coherence, write forwarding, unmapping, read watches."""

from __future__ import annotations

import pytest

from h743sim.engine import Machine, StopKind

RESULTS = 0x20000000
CTL = 0x40000000
WINDOW = 0x90000000


def thumb_return(value: int) -> bytes:
    """movs r0, #value ; bx lr"""
    return bytes([value & 0xFF, 0x20, 0x70, 0x47])


class XipController:
    """Like a QSPI controller: +0 write 1/0 maps/unmaps the window, +4 write reprograms the code."""

    def __init__(self, host, buffer):
        self.host = host
        self.buffer = buffer
        self.writes: list[tuple[int, int, int]] = []
        self.accept_writes = True

    def read(self, offset, size):
        return 0

    def write(self, offset, size, value):
        if offset == 0:
            if value:
                on_write = self._window_write if self.accept_writes else None
                self.host.map_memory("xip", WINDOW, self.buffer, executable=True, on_write=on_write)
            else:
                self.host.unmap_memory("xip")
        elif offset == 4:  # "program" new code while the CPU runs, then make it coherent
            self.buffer[0:4] = thumb_return(value)
            self.host.invalidate(WINDOW, 4)

    def _window_write(self, offset, size, value):
        self.writes.append((offset, size, value))
        if offset == 0x200:  # a write the model acts on: it changes the cells itself
            self.buffer[0x300] = value & 0xFF

    def reset(self):
        pass


@pytest.fixture
def xip_build(build):
    def _build(body, **kw):
        holder = []
        buffer = bytearray(0x10000)
        buffer[0:4] = thumb_return(0x11)

        def setup(m):
            ctl = XipController(m.host_for("qspi"), buffer)
            holder.append(ctl)
            m.add_mmio("qspi", CTL, 0x400, ctl)

        m = build(body, setup=setup, **kw)
        return m, holder[0], buffer

    return _build


XIP_PROGRAM = """
reset:
  ldr r6, =0x40000000
  ldr r4, =0x20000000
  movs r1, #1
  str r1, [r6]                @ memory-mapped mode on (from inside an MMIO write)
  ldr r7, =0x90000001
  blx r7                      @ XIP call: returns 0x11
  str r0, [r4, #0]
  movs r1, #0x22
  str r1, [r6, #4]            @ the model reprograms the function
  blx r7
  str r0, [r4, #4]            @ new code runs, not a stale translation
  movs r1, #0x33
  str r1, [r6, #4]
  blx r7
  str r0, [r4, #8]
  ldr r1, =0x600D
  str r1, [r4, #12]
  b .
"""


def test_code_patched_in_a_window_runs_the_new_version(xip_build):
    m, ctl, buffer = xip_build(XIP_PROGRAM)
    m.run(max_instructions=500)
    assert [m.read_u32(RESULTS + 4 * i) for i in range(4)] == [0x11, 0x22, 0x33, 0x600D]
    # host-side reprogramming between runs is coherent too
    m.write_register("pc", 0x08000400 | 1)
    buffer[0:4] = thumb_return(0x44)
    m.memory.invalidate(WINDOW, 4)
    m.run(max_instructions=500)
    assert m.read_u32(RESULTS) == 0x44


WRITE_PROGRAM = """
reset:
  ldr r6, =0x40000000
  ldr r4, =0x20000000
  movs r1, #1
  str r1, [r6]
  ldr r5, =0x90000100
  ldr r1, =0xDEADBEEF
  ldr r2, =0x01234567
  str r1, [r5]                @ word
  strh r2, [r5, #6]           @ halfword
  strb r2, [r5, #9]           @ byte
  strd r1, r2, [r5, #16]      @ two words
  add r3, r5, #32
  movs r0, #0x77
  stm r3, {r0, r1, r2}        @ three words
  ldr r0, [r5]                @ reads see the model's bytes, not the stored value
  str r0, [r4, #0]
  ldr r1, =0x90000200
  movs r2, #0x5C
  str r2, [r1]                @ the model programs 0x5C at +0x300 itself
  ldr r1, =0x90000300
  ldrb r0, [r1]
  str r0, [r4, #4]
  ldr r1, =0x600D
  str r1, [r4, #8]
  b .
"""


def test_cpu_writes_reach_on_write_and_leave_the_buffer_to_the_model(xip_build):
    m, ctl, buffer = xip_build(WRITE_PROGRAM)
    before = bytes(buffer)
    m.run(max_instructions=500)
    assert m.read_u32(RESULTS + 8) == 0x600D
    assert ctl.writes == [
        (0x100, 4, 0xDEADBEEF),
        (0x106, 2, 0x4567),
        (0x109, 1, 0x67),
        (0x110, 4, 0xDEADBEEF),
        (0x114, 4, 0x01234567),
        (0x120, 4, 0x77),
        (0x124, 4, 0xDEADBEEF),
        (0x128, 4, 0x01234567),
        (0x200, 4, 0x5C),
    ]
    assert m.read_u32(RESULTS) == 0  # the cell still holds what the model has (erased = 0 here)
    assert m.read_u32(RESULTS + 4) == 0x5C
    after = bytearray(before)
    after[0x300] = 0x5C
    assert bytes(buffer) == bytes(after)  # nothing but the model's own change


UNMAP_PROGRAM = """
reset:
  ldr r0, =0xE000ED24
  ldr r1, =0x00070000         @ enable MemManage/BusFault/UsageFault
  str r1, [r0]
  ldr r6, =0x40000000
  movs r1, #1
  str r1, [r6]
  ldr r5, =0x90000000
  ldr r0, [r5]                @ fine while mapped
  ldr r4, =0x20000000
  str r0, [r4, #0]
  movs r1, #0
  str r1, [r6]                @ unmapped: the next access is a bus error
  ldr r0, [r5, #8]
  b .
busfault:
  ldr r4, =0x20000000
  ldr r2, =0xE000ED28
  ldr r1, [r2]
  str r1, [r4, #4]
  ldr r1, [r2, #16]
  str r1, [r4, #8]
  b .
"""


def test_unmapped_window_faults_and_host_can_still_read_it(xip_build):
    m, ctl, buffer = xip_build(UNMAP_PROGRAM, handlers={"busfault": "busfault"})
    m.run(max_instructions=500)
    assert m.read_u32(RESULTS) == int.from_bytes(thumb_return(0x11), "little")
    assert m.read_u32(RESULTS + 4) == (1 << 9) | (1 << 15)
    assert m.read_u32(RESULTS + 8) == WINDOW + 8
    assert m.read_memory(WINDOW, 4) == thumb_return(0x11)  # host access ignores the window state


def test_window_without_on_write_refuses_writes(xip_build):
    body = """
reset:
  ldr r0, =0xE000ED24
  ldr r1, =0x00020000
  str r1, [r0]
  ldr r6, =0x40000000
  movs r1, #1
  str r1, [r6]
  ldr r5, =0x90000040
  str r1, [r5]
  b .
busfault:
  ldr r4, =0x20000000
  ldr r2, =0xE000ED38
  ldr r1, [r2]
  str r1, [r4]
  b .
"""
    m, ctl, buffer = xip_build(body, handlers={"busfault": "busfault"})
    ctl.accept_writes = False
    m.run(max_instructions=500)
    assert m.read_u32(RESULTS) == 0x90000040
    assert buffer[0x40] == 0


def test_fetch_from_unmapped_window_is_an_instruction_bus_error(xip_build):
    body = """
reset:
  ldr r0, =0xE000ED24
  ldr r1, =0x00020000
  str r1, [r0]
  ldr r6, =0x40000000
  movs r1, #1
  str r1, [r6]
  movs r1, #0
  str r1, [r6]
  ldr r7, =0x90000001
  blx r7
  b .
busfault:
  ldr r4, =0x20000000
  ldr r2, =0xE000ED28
  ldr r1, [r2]
  str r1, [r4]
  b .
"""
    m, ctl, buffer = xip_build(body, handlers={"busfault": "busfault"})
    m.run(max_instructions=500)
    assert m.read_u32(RESULTS) == 1 << 8  # IBUSERR


class EccFlash:
    """A window whose read watch refuses one address (a double-bit ECC error)."""

    def __init__(self, host, buffer):
        self.host = host
        self.buffer = buffer
        self.seen: list[tuple[int, int]] = []
        host.map_memory("bank", 0x08100000, buffer, executable=True)
        self.remove = host.watch_reads(0x08100040, 0x20, self._watch)

    def _watch(self, offset, size):
        self.seen.append((offset, size))
        return "double ECC error" if offset == 0x10 else None

    def read(self, offset, size):
        return 0

    def write(self, offset, size, value):
        pass

    def reset(self):
        pass


def test_watch_reads_can_turn_a_read_into_a_bus_error(build):
    holder = []

    def setup(m):
        buf = bytearray(range(256)) * 4
        holder.append(EccFlash(m.host_for("flash_bank2"), buf))

    body = """
reset:
  ldr r0, =0xE000ED24
  ldr r1, =0x00020000
  str r1, [r0]
  ldr r5, =0x08100000
  ldr r4, =0x20000000
  ldr r1, [r5, #0x44]         @ watched, fine
  str r1, [r4, #0]
  ldrb r1, [r5, #0x20]        @ not watched
  movs r2, #0x5A
  ldr r2, [r5, #0x50]         @ refused: r2 keeps 0x5A
  b .
busfault:
  ldr r4, =0x20000000
  str r2, [r4, #8]
  ldr r2, =0xE000ED38
  ldr r1, [r2]
  str r1, [r4, #4]
  b .
"""
    m = build(body, handlers={"busfault": "busfault"}, setup=setup)
    ecc = holder[0]
    m.run(max_instructions=500)
    assert m.read_u32(RESULTS) == int.from_bytes(bytes([0x44, 0x45, 0x46, 0x47]), "little")
    assert ecc.seen == [(0x04, 4), (0x10, 4)]
    assert m.read_u32(RESULTS + 4) == 0x08100050
    assert m.read_u32(RESULTS + 8) == 0x5A  # the refused load did not write r2
    ecc.remove()
    m.write_register("pc", 0x08000400 | 1)
    m.run(max_instructions=30)
    assert ecc.seen == [(0x04, 4), (0x10, 4)]  # no more calls once removed


def test_bad_maps_are_refused_with_clear_errors():
    m = Machine()
    m.add_ram("sram", 0x24000000, 0x80000)
    with pytest.raises(ValueError, match="overlaps ram region 'sram'"):
        m.add_ram("other", 0x24040000, 0x1000)
    with pytest.raises(ValueError, match="multiples of the 1024-byte page"):
        m.add_ram("odd", 0x30000100, 0x1000)
    with pytest.raises(TypeError, match="bytearray"):
        m.memory.map_window("w", 0x90000000, bytes(1024))  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no memory window named 'nope'"):
        m.memory.unmap_window("nope")
    with pytest.raises(TypeError, match="has no read"):
        m.add_mmio("broken", 0x40000000, 0x400, object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nothing mapped at 0x60000000"):
        m.read_memory(0x60000000, 4)
    with pytest.raises(KeyError, match="unknown Cortex-M7 register 'r99'"):
        m.read_register("r99")
    stop = m.run(max_ns=1000)  # no reset yet: the core sits at address 0 with nothing mapped
    assert stop.kind in (StopKind.LOCKUP, StopKind.ERROR)
