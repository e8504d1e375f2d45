"""MDMA (peripherals/mdma.py) driven through its registers, on a StandaloneHost system bus.

Memory-to-memory transfers use RAM added to the host; the QUADSPI tests attach a W25Q64 as in
test_quadspi.py and connect the QUADSPI request outputs to MDMA request lines 22 and 23, the way
platforms/devebox_h743.repl wires them.
"""

from __future__ import annotations

import functools

import pytest

from peripherals.mdma import BEAT_NS, STEP_BYTES, Mdma
from peripherals.quadspi import QuadSpi
from peripherals.standalone_host import StandaloneHost
from peripherals.w25q64 import W25Q64

MDMA_BASE = 0x5200_0000
QSPI_BASE = 0x5200_5000
RAM = 0x2400_0000
RAM_SIZE = 0x8000
IRQ = 122

# channel register offsets
ISR, IFCR, ESR, CR, TCR, BNDTR, SAR, DAR, BRUR, LAR, TBR, MAR, MDR = (
    0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x30, 0x34,
)  # fmt: skip
CHANNEL_REGS = (ISR, IFCR, ESR, CR, TCR, BNDTR, SAR, DAR, BRUR, LAR, TBR, MAR, MDR)
# CxISR / CxCR bits
TEIF, CTCIF, BRTIF, BTIF, TCIF, CRQA = 1, 2, 4, 8, 16, 1 << 16
EN, TEIE, CTCIE, BRTIE, BTIE, TCIE = 1, 2, 4, 8, 16, 32
ALL_IE = TEIE | CTCIE | BRTIE | BTIE | TCIE
SWRQ = 1 << 16
# CxESR bits
TED, TELD, TEMD, ASE, BSE = 1 << 7, 1 << 8, 1 << 9, 1 << 10, 1 << 11
FIXED, INC, DEC = 0, 2, 3
BYTE, HALF, WORD, DWORD = 0, 1, 2, 3
BUFFER, BLOCK, REPEATED, CHANNEL = 0, 1, 2, 3

# QUADSPI registers and bits
Q_CR, Q_DCR, Q_SR, Q_FCR, Q_DLR, Q_CCR, Q_AR, Q_DR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x20
Q_TCF, Q_FTF, Q_BUSY = 2, 4, 0x20


def reg(ch: int, off: int) -> int:
    return 0x40 + 0x40 * ch + off


def tcr(
    *,
    sinc: int = INC,
    dinc: int = INC,
    ssize: int = WORD,
    dsize: int = WORD,
    sincos: int | None = None,
    dincos: int | None = None,
    tlen: int = 128,
    pke: int = 0,
    trgm: int = CHANNEL,
    swrm: int = 1,
) -> int:
    """A CxTCR value; ``tlen`` in bytes (1..128)."""
    sincos = ssize if sincos is None else sincos
    dincos = dsize if dincos is None else dincos
    return (
        sinc
        | dinc << 2
        | ssize << 4
        | dsize << 6
        | sincos << 8
        | dincos << 10
        | (tlen - 1) << 18
        | pke << 25
        | trgm << 28
        | swrm << 30
    )


class Dma:
    """Register-level driving of one MDMA, the way firmware (or HAL_MDMA_Start_IT) does it."""

    def __init__(self, mdma: Mdma, host: StandaloneHost) -> None:
        self.m = mdma
        self.host = host

    def w(self, ch: int, off: int, value: int) -> None:
        self.m.write(reg(ch, off), 4, value)

    def r(self, ch: int, off: int) -> int:
        return self.m.read(reg(ch, off), 4)

    def config(
        self,
        ch: int,
        *,
        tcr_value: int,
        bndt: int,
        sar: int,
        dar: int,
        brc: int = 0,
        brsum: int = 0,
        brdum: int = 0,
        suv: int = 0,
        duv: int = 0,
        lar: int = 0,
        tsel: int = 0,
        mar: int = 0,
        mdr: int = 0,
    ) -> None:
        self.w(ch, TCR, tcr_value)
        self.w(ch, BNDTR, bndt | brsum << 18 | brdum << 19 | brc << 20)
        self.w(ch, SAR, sar)
        self.w(ch, DAR, dar)
        self.w(ch, BRUR, suv | duv << 16)
        self.w(ch, LAR, lar)
        self.w(ch, TBR, tsel)
        self.w(ch, MAR, mar)
        self.w(ch, MDR, mdr)
        self.w(ch, IFCR, 0x1F)

    def start(self, ch: int, *, pl: int = 0, ie: int = ALL_IE, swrq: bool = True) -> None:
        self.w(ch, CR, ie | pl << 6 | EN)
        if swrq:
            self.w(ch, CR, self.r(ch, CR) | SWRQ)


@pytest.fixture
def ram(host: StandaloneHost) -> bytearray:
    return host.add_ram(RAM, RAM_SIZE)


@pytest.fixture
def mdma(host: StandaloneHost) -> Mdma:
    m = Mdma(host, irq=IRQ)
    host.add_device(MDMA_BASE, m.size, m)
    return m


@pytest.fixture
def dma(mdma: Mdma, host: StandaloneHost, ram: bytearray) -> Dma:
    return Dma(mdma, host)


def pattern(n: int, seed: int = 1) -> bytes:
    return bytes((seed * 37 + i * 11 + (i >> 8)) & 0xFF for i in range(n))


# ------------------------------------------------------------------------------ registers
def test_every_register_resets_to_zero(mdma: Mdma, host: StandaloneHost) -> None:
    assert mdma.size == 0x1000
    assert mdma.read(0x00, 4) == 0  # GISR0
    for ch in range(16):
        for off in CHANNEL_REGS:
            assert mdma.read(reg(ch, off), 4) == 0, (ch, hex(off))
    # dirty every writable register, then reset
    for ch in range(16):
        for off in (TCR, BNDTR, SAR, DAR, BRUR, LAR, TBR, MAR, MDR):
            mdma.write(reg(ch, off), 4, 0xFFFF_FFFF)
        mdma.write(reg(ch, CR), 4, 0x70FE)
    mdma.reset()
    for ch in range(16):
        for off in CHANNEL_REGS:
            assert mdma.read(reg(ch, off), 4) == 0, (ch, hex(off))
    assert host.irqs.get(IRQ) is False


def test_field_masks_and_access_types(dma: Dma, mdma: Mdma) -> None:
    masks = {
        TCR: 0xFFFF_FFFF,
        BNDTR: 0xFFFD_FFFF,  # BNDT[16:0], BRSUM 18, BRDUM 19, BRC[31:20]
        SAR: 0xFFFF_FFFF,
        DAR: 0xFFFF_FFFF,
        BRUR: 0xFFFF_FFFF,
        LAR: 0xFFFF_FFFF,
        TBR: 0x0003_00FF,  # TSEL[7:0], SBUS 16, DBUS 17
        MAR: 0xFFFF_FFFF,
        MDR: 0xFFFF_FFFF,
    }
    for off, mask in masks.items():
        dma.w(3, off, 0xFFFF_FFFF)
        assert dma.r(3, off) == mask, hex(off)
    # read-only and write-only registers
    for off in (ISR, ESR, IFCR):
        dma.w(3, off, 0xFFFF_FFFF)
        assert dma.r(3, off) == 0, hex(off)
    mdma.write(0x00, 4, 0xFFFF)  # GISR0 is read-only
    assert mdma.read(0x00, 4) == 0
    # CxCR: EN, the five enables, PL, BEX/HEX/WEX; SWRQ reads 0
    dma.w(4, CR, 0x70FE | SWRQ)
    assert dma.r(4, CR) == 0x70FE


def test_configuration_is_write_protected_while_enabled(dma: Dma) -> None:
    dma.config(0, tcr_value=tcr(trgm=BUFFER, swrm=0), bndt=16, sar=RAM, dar=RAM + 0x100, tsel=5)
    dma.w(0, CR, 2 << 6 | EN)  # hardware request 5, never raised: the channel waits
    before = {off: dma.r(0, off) for off in (TCR, BNDTR, SAR, DAR, BRUR, LAR, TBR, MAR, MDR)}
    for off in before:
        dma.w(0, off, 0x1234_5678)
    assert {off: dma.r(0, off) for off in before} == before
    dma.w(0, CR, EN | CTCIE)  # PL protected, enables are not
    assert dma.r(0, CR) == 2 << 6 | EN | CTCIE
    dma.w(0, CR, 0)
    dma.w(0, SAR, 0x1234_5678)
    assert dma.r(0, SAR) == 0x1234_5678


def test_ifcr_clears_flags_one_by_one_and_isr_writes_are_ignored(
    dma: Dma, ram: bytearray, host: StandaloneHost
) -> None:
    ram[0:32] = pattern(32)
    dma.config(1, tcr_value=tcr(trgm=CHANNEL), bndt=32, sar=RAM, dar=RAM + 0x100)
    dma.start(1)
    host.run_until_idle()
    flags = TCIF | BTIF | BRTIF | CTCIF
    assert dma.r(1, ISR) == flags
    dma.w(1, ISR, 0xFFFF_FFFF)  # read-only
    assert dma.r(1, ISR) == flags
    for bit in (CTCIF, BTIF, TCIF, BRTIF):
        dma.w(1, IFCR, bit)
        flags &= ~bit
        assert dma.r(1, ISR) == flags
    assert host.irqs[IRQ] is False


# ------------------------------------------------------------------------------ memory to memory
def test_block_transfer_with_swrq(dma: Dma, mdma: Mdma, ram: bytearray, host: StandaloneHost) -> None:
    data = pattern(200)
    ram[0:200] = data
    dma.config(0, tcr_value=tcr(trgm=BLOCK, tlen=64), bndt=200, sar=RAM, dar=RAM + 0x1000)
    dma.start(0)
    assert dma.r(0, ISR) & CRQA  # requested, not served yet
    assert bytes(ram[0x1000:0x10C8]) == bytes(200)
    host.run_until_idle()
    assert bytes(ram[0x1000:0x10C8]) == data
    assert dma.r(0, BNDTR) == 0
    assert dma.r(0, SAR) == RAM + 200 and dma.r(0, DAR) == RAM + 0x1000 + 200
    assert dma.r(0, ISR) == TCIF | BTIF | BRTIF | CTCIF  # CRQA dropped with the request served
    assert not dma.r(0, CR) & EN  # the channel disabled itself
    assert mdma.read(0x00, 4) == 1  # GISR0: channel 0
    assert host.irqs[IRQ] is True
    dma.w(0, IFCR, 0x1F)
    assert mdma.read(0x00, 4) == 0 and host.irqs[IRQ] is False


def test_buffer_mode_moves_tlen_bytes_per_software_request(
    dma: Dma, ram: bytearray, host: StandaloneHost
) -> None:
    ram[0:64] = pattern(64)
    dma.config(2, tcr_value=tcr(trgm=BUFFER, tlen=16), bndt=40, sar=RAM, dar=RAM + 0x200)
    dma.start(2, ie=0)
    host.run_until_idle()
    assert dma.r(2, BNDTR) == 24 and dma.r(2, ISR) == TCIF
    assert bytes(ram[0x200:0x210]) == pattern(64)[:16] and ram[0x210] == 0
    for _ in range(2):
        dma.w(2, CR, dma.r(2, CR) | SWRQ)
        host.run_until_idle()
    # 16 + 16 + the 8 left in the block
    assert dma.r(2, BNDTR) == 0 and bytes(ram[0x200:0x228]) == pattern(64)[:40]
    assert dma.r(2, ISR) == TCIF | BTIF | BRTIF | CTCIF
    assert host.irqs.get(IRQ, False) is False  # no interrupt enabled


def test_sizes_packing_strides_and_decrement(dma: Dma, ram: bytearray, host: StandaloneHost) -> None:
    # bytes packed into words (PKE)
    ram[0:8] = bytes(range(1, 9))
    dma.config(0, tcr_value=tcr(ssize=BYTE, dsize=WORD, pke=1), bndt=8, sar=RAM, dar=RAM + 0x100)
    dma.start(0)
    # half-words gathered every 4 bytes (SINCOS = word), written as contiguous half-words
    ram[0x400:0x410] = bytes.fromhex("1122aaaa3344bbbb5566cccc7788dddd")
    dma.config(
        1, tcr_value=tcr(ssize=HALF, dsize=HALF, sincos=WORD), bndt=8, sar=RAM + 0x400, dar=RAM + 0x500
    )
    dma.start(1)
    # words written downwards (DINC decrement) from a fixed source word
    ram[0x600:0x604] = bytes.fromhex("deadbeef")
    dma.config(2, tcr_value=tcr(sinc=FIXED, dinc=DEC), bndt=12, sar=RAM + 0x600, dar=RAM + 0x708)
    dma.start(2)
    host.run_until_idle()
    assert bytes(ram[0x100:0x108]) == bytes(range(1, 9))
    assert bytes(ram[0x500:0x508]) == bytes.fromhex("1122334455667788")
    assert dma.r(1, SAR) == RAM + 0x410  # 4 beats of SINCOS=4
    assert bytes(ram[0x700:0x70C]) == bytes.fromhex("deadbeef") * 3
    assert dma.r(2, SAR) == RAM + 0x600 and dma.r(2, DAR) == RAM + 0x6FC


def test_endianness_exchange_on_destination_words(dma: Dma, ram: bytearray, host: StandaloneHost) -> None:
    ram[0:8] = bytes.fromhex("0011223344556677")
    dma.config(0, tcr_value=tcr(), bndt=8, sar=RAM, dar=RAM + 0x10)
    dma.w(0, CR, 1 << 12 | 1 << 13 | EN)  # BEX + HEX: byte order of each word reversed
    dma.w(0, CR, dma.r(0, CR) | SWRQ)
    host.run_until_idle()
    assert bytes(ram[0x10:0x18]) == bytes.fromhex("3322110077665544")


def test_repeated_block_updates_addresses_between_blocks(
    dma: Dma, ram: bytearray, host: StandaloneHost
) -> None:
    src = pattern(64)
    ram[0:64] = src
    # 3 blocks of 8 bytes: source skips 8 bytes after each block, destination steps back 24
    dma.config(
        0,
        tcr_value=tcr(trgm=REPEATED, tlen=8),
        bndt=8,
        brc=2,
        sar=RAM,
        dar=RAM + 0x1100,
        suv=8,
        duv=24,
        brdum=1,
    )
    dma.start(0, ie=0)
    host.run_until_idle()
    assert bytes(ram[0x1100:0x1108]) == src[0:8]
    assert bytes(ram[0x10F0:0x10F8]) == src[16:24]  # DAR 0x1108 - 24
    assert bytes(ram[0x10E0:0x10E8]) == src[32:40]
    assert dma.r(0, BNDTR) & 0xFFF0_0000 == 0  # BRC counted down
    assert dma.r(0, ISR) == TCIF | BTIF | BRTIF | CTCIF


def test_repeated_block_counts_blocks_per_request(dma: Dma, ram: bytearray, host: StandaloneHost) -> None:
    ram[0:32] = pattern(32)
    dma.config(0, tcr_value=tcr(trgm=BLOCK), bndt=8, brc=3, sar=RAM, dar=RAM + 0x200)
    dma.start(0, ie=0)
    host.run_until_idle()
    assert dma.r(0, BNDTR) == 2 << 20 | 8  # one block done, BNDT reloaded, BRC 3 -> 2
    assert dma.r(0, ISR) == TCIF | BTIF and dma.r(0, CR) & EN
    for _ in range(3):
        dma.w(0, CR, dma.r(0, CR) | SWRQ)
        host.run_until_idle()
    assert bytes(ram[0x200:0x220]) == pattern(32)
    assert dma.r(0, ISR) == TCIF | BTIF | BRTIF | CTCIF and not dma.r(0, CR) & EN


def test_linked_list_reloads_the_channel_from_memory(dma: Dma, ram: bytearray, host: StandaloneHost) -> None:
    ram[0:16] = pattern(16, 1)
    ram[0x40:0x60] = pattern(32, 2)
    node = 0x800
    node_words = (
        tcr(ssize=HALF, dsize=HALF, trgm=CHANNEL),  # CTCR
        32,  # CBNDTR
        RAM + 0x40,  # CSAR
        RAM + 0x3000,  # CDAR
        0,  # CBRUR
        0,  # CLAR: last node
        0,  # CTBR
        0xFFFF_FFFF,  # reserved word: not loaded anywhere
        0,  # CMAR
        0x5A5A_5A5A,  # CMDR
    )
    ram[node : node + 40] = b"".join(w.to_bytes(4, "little") for w in node_words)
    dma.config(0, tcr_value=tcr(trgm=CHANNEL), bndt=16, sar=RAM, dar=RAM + 0x2000, lar=RAM + node)
    dma.start(0)
    host.run_until_idle()
    assert bytes(ram[0x2000:0x2010]) == pattern(16, 1)
    assert bytes(ram[0x3000:0x3020]) == pattern(32, 2)
    assert dma.r(0, TCR) == node_words[0] and dma.r(0, LAR) == 0 and dma.r(0, MDR) == 0x5A5A_5A5A
    assert dma.r(0, DAR) == RAM + 0x3020
    assert dma.r(0, ISR) == TCIF | BTIF | BRTIF | CTCIF and not dma.r(0, CR) & EN


def test_circular_linked_list_never_starves_the_cpu(dma: Dma, ram: bytearray, host: StandaloneHost) -> None:
    ram[0:0x1000] = pattern(0x1000)
    node = 0x7000
    node_words = (tcr(trgm=CHANNEL), 0x1000, RAM, RAM + 0x2000, 0, RAM + node, 0, 0, 0, 0)
    ram[node : node + 40] = b"".join(w.to_bytes(4, "little") for w in node_words)
    dma.config(0, tcr_value=node_words[0], bndt=0x1000, sar=RAM, dar=RAM + 0x2000, lar=RAM + node)
    dma.start(0, ie=0)
    for _ in range(5):  # every step is followed by time for the CPU, then the next step
        t = host.events.next_time()
        assert t is not None
        host.events.advance_to(t)
        gap = host.events.next_time() - host.now_ns()
        assert gap >= (STEP_BYTES // 4) * 2 * BEAT_NS  # a word read + a word write per 4 bytes
    assert bytes(ram[0x2000:0x3000]) == pattern(0x1000)
    assert dma.r(0, CR) & EN and not dma.r(0, ISR) & CTCIF  # still running
    dma.w(0, CR, 0)  # software disable: suspended, CTCIF tells it
    assert dma.r(0, ISR) & CTCIF
    host.run_until_idle(limit_ns=10**9)
    assert host.events.next_time() is None


# ------------------------------------------------------------------------------ errors
def test_write_error_on_unmapped_address(dma: Dma, ram: bytearray, host: StandaloneHost) -> None:
    ram[0:64] = pattern(64)
    dar = RAM + RAM_SIZE - 24  # the last 24 bytes of RAM, then nothing
    dma.config(0, tcr_value=tcr(tlen=64), bndt=64, sar=RAM, dar=dar)
    dma.start(0)
    host.run_until_idle()
    assert bytes(ram[RAM_SIZE - 24 :]) == pattern(64)[:24]  # the bytes before the error landed
    assert dma.r(0, ISR) & (TEIF | CTCIF) == TEIF
    assert dma.r(0, ESR) == TED | ((RAM + RAM_SIZE) & 0x7F)
    assert not dma.r(0, CR) & EN
    assert dma.r(0, DAR) == dar and dma.r(0, BNDTR) == 64  # left at the failing buffer's start
    assert host.irqs[IRQ] is True
    dma.w(0, IFCR, TEIF)  # clearing TEIF clears CxESR
    assert dma.r(0, ESR) == 0 and dma.r(0, ISR) == 0


def test_read_error_and_link_error(dma: Dma, ram: bytearray, host: StandaloneHost) -> None:
    dma.config(0, tcr_value=tcr(sinc=FIXED), bndt=4, sar=0x1000_0000 + 0x44, dar=RAM)  # nothing there
    dma.start(0)
    dma.config(1, tcr_value=tcr(), bndt=4, sar=RAM, dar=RAM + 0x10, lar=0x6000_0008)
    dma.start(1)
    dma.config(2, tcr_value=tcr(ssize=WORD), bndt=8, sar=RAM + 2, dar=RAM + 0x20)  # misaligned
    dma.start(2)
    dma.config(3, tcr_value=tcr(ssize=WORD), bndt=6, sar=RAM, dar=RAM + 0x20)  # 6 not a word multiple
    dma.start(3)
    host.run_until_idle()
    assert dma.r(0, ESR) == 0x44 and dma.r(0, ISR) & TEIF  # TED=0: a read
    assert dma.r(1, ESR) == TELD | 0x08 and dma.r(1, ISR) & (TEIF | BTIF) == TEIF | BTIF
    assert dma.r(2, ESR) == ASE and dma.r(3, ESR) == BSE
    for ch in range(4):
        assert not dma.r(ch, CR) & EN


def test_ppb_is_not_reachable_by_a_bus_master(host: StandaloneHost) -> None:
    class Probe:
        def read(self, offset: int, size: int) -> int:
            raise AssertionError("the PPB must not be reached")

        write = read

    host.add_device(0xE000_E000, 0x1000, Probe())
    assert host.bus_read(0xE000_E010, 4) is None
    assert host.bus_write(0xE000_E010, 4, 1) is False


# ------------------------------------------------------------------------------ priority
def test_priority_level_then_channel_number(dma: Dma, ram: bytearray, host: StandaloneHost) -> None:
    size = 2 * STEP_BYTES
    ram[0:size] = pattern(size)
    dma.config(0, tcr_value=tcr(), bndt=size, sar=RAM, dar=RAM + 0x4000)
    dma.config(5, tcr_value=tcr(), bndt=size, sar=RAM, dar=RAM + 0x4000)
    dma.config(1, tcr_value=tcr(), bndt=size, sar=RAM, dar=RAM + 0x4000)
    dma.start(0, pl=1, ie=0)
    dma.start(5, pl=3, ie=0)
    dma.start(1, pl=1, ie=0)
    order = []
    while host.events.next_time() is not None:
        host.events.advance_to(host.events.next_time())
        order.append(tuple(dma.r(ch, BNDTR) for ch in (5, 0, 1)))
    # very high first, then channel 0 before channel 1 (same level), a step at a time
    assert order[:6] == [
        (STEP_BYTES, size, size),
        (0, size, size),
        (0, STEP_BYTES, size),
        (0, 0, size),
        (0, 0, STEP_BYTES),
        (0, 0, 0),
    ]


# ------------------------------------------------------------------------------ QUADSPI
@pytest.fixture
def qspi(host: StandaloneHost, mdma: Mdma) -> tuple[QuadSpi, W25Q64]:
    flash = W25Q64(host)
    q = QuadSpi(host, kernel_hz=200_000_000)
    q.attach(flash)
    host.add_device(QSPI_BASE, q.size, q)
    # the board's wiring: DmaRequest -> mdma@22, TcRequest -> mdma@23
    q.connect_output("DmaRequest", functools.partial(mdma.on_gpio, 22))
    q.connect_output("TcRequest", functools.partial(mdma.on_gpio, 23))
    q.write(Q_CR, 4, 1 << 24 | (4 - 1) << 8 | 1)  # PRESCALER 1, FTHRES 4 bytes, EN
    q.write(Q_DCR, 4, 22 << 16 | 5 << 8)  # 8 MiB
    return q, flash


def qccr(instruction: int, *, admode: int = 0, dmode: int = 0, fmode: int = 0) -> int:
    """Single-line instruction, 24-bit address on ``admode`` (0/1) lines, data on ``dmode``."""
    return instruction | 1 << 8 | admode << 10 | 2 << 12 | dmode << 24 | fmode << 26


def write_enable(q: QuadSpi) -> None:
    q.write(Q_CCR, 4, qccr(0x06))  # instruction only: runs at once
    assert q.read(Q_SR, 4) & Q_TCF
    q.write(Q_FCR, 4, Q_TCF)


def test_page_program_fed_by_mdma_fifo_threshold_request(
    qspi: tuple[QuadSpi, W25Q64], dma: Dma, ram: bytearray, host: StandaloneHost
) -> None:
    q, flash = qspi
    page = pattern(256, 7)
    ram[0x100:0x200] = page
    write_enable(q)
    # HAL_QSPI_Command (page program 0x02, 1-1-1) then HAL_QSPI_Transmit_DMA
    q.write(Q_DLR, 4, 255)
    q.write(Q_CCR, 4, qccr(0x02, admode=1, dmode=1))
    q.write(Q_AR, 4, 0x1200)
    assert q.read(Q_SR, 4) & Q_FTF  # the FIFO threshold request is up
    writes = []
    real_write = q.write

    def counting_write(offset: int, size: int, value: int) -> None:
        writes.append((offset, size))
        real_write(offset, size, value)

    q.write = counting_write  # type: ignore[method-assign]
    dma.config(
        0,
        tcr_value=tcr(dinc=FIXED, trgm=BUFFER, tlen=128, swrm=0),
        bndt=256,
        sar=RAM + 0x100,
        dar=QSPI_BASE + Q_DR,
        tsel=22,
    )
    dma.start(0, pl=2, ie=TEIE | CTCIE, swrq=False)
    q.write(Q_CR, 4, q.read(Q_CR, 4) | 1 << 2)  # DMAEN, as HAL sets it (no effect on H7)
    writes.clear()
    host.run_until_idle()
    # the beat that starts the transfer and the one that completes it go through write(); the
    # QUADSPI takes the 62 between at once (write_fifo)
    assert writes == [(Q_DR, 4), (Q_DR, 4)]
    assert q.read(Q_SR, 4) & (Q_TCF | Q_FTF) == Q_TCF
    assert dma.r(0, ISR) & (CTCIF | TEIF) == CTCIF and dma.r(0, BNDTR) == 0
    assert host.irqs[IRQ] is True
    assert bytes(flash.array[0x1200:0x1300]) == page


def test_indirect_read_into_ram_through_mdma(
    qspi: tuple[QuadSpi, W25Q64], dma: Dma, ram: bytearray, host: StandaloneHost
) -> None:
    q, flash = qspi
    data = pattern(256, 9)
    flash.array[0x3000:0x3100] = data
    # HAL_QSPI_Command (read 0x03) then HAL_QSPI_Receive_DMA: FMODE=01, AR rewritten, MDMA on
    q.write(Q_DLR, 4, 255)
    q.write(Q_CCR, 4, qccr(0x03, admode=1, dmode=1, fmode=1))
    q.write(Q_AR, 4, 0x3000)
    dma.config(
        1,
        tcr_value=tcr(sinc=FIXED, trgm=BUFFER, tlen=4, swrm=0),  # one FIFO threshold per request
        bndt=256,
        sar=QSPI_BASE + Q_DR,
        dar=RAM + 0x400,
        tsel=22,
    )
    dma.start(1, ie=TEIE | CTCIE, swrq=False)
    host.run_until_idle()
    assert bytes(ram[0x400:0x500]) == data
    assert q.read(Q_SR, 4) & (Q_TCF | Q_BUSY) == Q_TCF and q.fifo_level == 0
    assert dma.r(1, ISR) & (CTCIF | TEIF) == CTCIF


def test_transfer_complete_request_and_mask_write_acknowledge(
    qspi: tuple[QuadSpi, W25Q64], dma: Dma, ram: bytearray, host: StandaloneHost
) -> None:
    q, _flash = qspi
    ram[0:4] = b"TCF!"
    # on QUADSPI TCF (request 23): copy a word, then write CTCF to QUADSPI_FCR (CxMAR/CxMDR)
    dma.config(
        2,
        tcr_value=tcr(trgm=BUFFER, swrm=0),
        bndt=4,
        sar=RAM,
        dar=RAM + 0x10,
        tsel=23,
        mar=QSPI_BASE + Q_FCR,
        mdr=Q_TCF,
    )
    dma.start(2, swrq=False)
    host.run_until_idle()
    assert ram[0x10:0x14] == bytes(4)  # no request yet
    q.write(Q_CCR, 4, qccr(0x06))  # write enable: TCF rises
    assert q.read(Q_SR, 4) & Q_TCF
    host.run_until_idle()
    assert ram[0x10:0x14] == b"TCF!"
    assert not q.read(Q_SR, 4) & Q_TCF  # acknowledged by the MDMA's mask write
    assert dma.r(2, ISR) & CTCIF


def test_software_request_ignores_hardware_lines(
    qspi: tuple[QuadSpi, W25Q64], dma: Dma, ram: bytearray, host: StandaloneHost, mdma: Mdma
) -> None:
    q, _flash = qspi
    dma.config(0, tcr_value=tcr(trgm=BUFFER, swrm=1), bndt=4, sar=RAM, dar=RAM + 0x10, tsel=23)
    dma.start(0, swrq=False)
    q.write(Q_CCR, 4, qccr(0x06))
    host.run_until_idle()
    assert dma.r(0, BNDTR) == 4 and not dma.r(0, ISR) & CRQA
    assert mdma.line(23)


# ------------------------------------------------------------------------------ the host's bus
def test_standalone_host_bus_windows_watches_and_refusals(host: StandaloneHost) -> None:
    from peripherals.host import Host

    contract = {n for n, v in vars(Host).items() if callable(v) and not n.startswith("_")}
    assert all(callable(getattr(host, n, None)) for n in contract)
    window = bytearray(b"\x5a" * 64)
    stores: list[tuple[int, int, int]] = []
    host.map_memory("w", 0x9000_0000, window, on_write=lambda o, s, v: stores.append((o, s, v)))
    assert host.bus_read(0x9000_0004, 4) == 0x5A5A_5A5A
    assert host.bus_write_block(0x9000_0008, bytes(range(6)), unit=2) == 6
    assert stores == [(8, 2, 0x0100), (10, 2, 0x0302), (12, 2, 0x0504)] and window[8] == 0x5A
    remove = host.watch_reads(0x9000_0010, 4, lambda off, size: "double ECC error")
    assert host.bus_read_block(0x9000_0008, 16) == b"\x5a" * 8
    remove()
    host.unmap_memory("w")
    assert host.bus_read(0x9000_0000, 1) is None

    class Refusing:
        def read(self, offset: int, size: int) -> int:
            return 0

        def write(self, offset: int, size: int, value: int) -> None:
            if offset >= 8:
                host.bus_error(0x4000_0000 + offset, "refused")

    host.add_device(0x4000_0000, 0x400, Refusing())
    assert host.bus_write_block(0x4000_0000, bytes(16)) == 8
    assert host.bus_errors == []  # a DMA's refused access is not a CPU bus error
