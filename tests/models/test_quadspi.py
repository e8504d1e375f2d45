"""QUADSPI + W25Q64 driven through registers the way firmware does (HAL order and RM order)."""

from __future__ import annotations

import random

import pytest

from peripherals.host import NS_PER_MS, NS_PER_S
from peripherals.power_cut import PowerCutPlan
from peripherals.quadspi import XIP_BASE, QuadSpi
from peripherals.standalone_host import BusError, StandaloneHost
from peripherals.w25q64 import W25Q64

IRQ = 92
KERNEL_HZ = 200_000_000

# register offsets
CR, DCR, SR, FCR, DLR, CCR, AR, ABR, DR, PSMKR, PSMAR, PIR, LPTR = range(0, 0x34, 4)
# SR / FCR bits
TEF, TCF, FTF, SMF, TOF, BUSY = 1, 2, 4, 8, 0x10, 0x20
# CR bits
EN, ABORT, TCEN = 1, 2, 8
TEIE, TCIE, FTIE, SMIE, TOIE = 1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20
APMS, PMM = 1 << 22, 1 << 23
LINES = {0: 0, 1: 1, 2: 2, 4: 3}
FMODE_MASK = 3 << 26
WRITE, READ, POLL, MMAP = 0, 1, 2, 3


def ccr(
    instruction: int,
    *,
    imode: int = 1,
    admode: int = 0,
    adsize: int = 3,
    abmode: int = 0,
    absize: int = 1,
    dcyc: int = 0,
    dmode: int = 0,
    fmode: int = WRITE,
    sioo: int = 0,
    ddrm: int = 0,
) -> int:
    """CCR value; modes given as line counts (0/1/2/4), sizes in bytes."""
    return (
        instruction
        | LINES[imode] << 8
        | LINES[admode] << 10
        | (adsize - 1) << 12
        | LINES[abmode] << 14
        | (absize - 1) << 16
        | dcyc << 18
        | LINES[dmode] << 24
        | fmode << 26
        | sioo << 28
        | ddrm << 31
    )


class Hal:
    """Register sequences in the order ST's HAL driver uses them (FACTS §C.3, §I)."""

    def __init__(self, q: QuadSpi, host: StandaloneHost) -> None:
        self.q = q
        self.host = host

    def w(self, off: int, value: int, size: int = 4) -> None:
        self.q.write(off, size, value)

    def r(self, off: int, size: int = 4) -> int:
        return self.q.read(off, size)

    def wait(self, mask: int, set_: bool = True, limit_ns: int = 60 * NS_PER_S) -> None:
        """Busy-wait on SR the way firmware does, letting virtual time run to the next event."""
        end = self.host.now_ns() + limit_ns
        while bool(self.r(SR) & mask) != set_:
            nxt = self.host.events.next_time()
            assert nxt is not None and nxt <= end, f"SR {self.r(SR):#x}: waiting for {mask:#x}={set_} forever"
            self.host.events.advance_to(nxt)

    def init(self, prescaler: int = 1, fifo_threshold: int = 4, fsize: int = 22, csht: int = 5) -> None:
        self.wait(BUSY, False)
        self.w(CR, prescaler << 24 | (fifo_threshold - 1) << 8)
        self.w(DCR, fsize << 16 | csht << 8)
        self.w(CR, self.r(CR) | EN)

    def _config(self, value: int, fmode: int, nbytes: int, address: int | None, abr: int | None) -> None:
        if fmode != MMAP:
            self.w(DLR, nbytes - 1)
        if abr is not None:
            self.w(ABR, abr)
        self.w(CCR, value | fmode << 26)
        if address is not None and fmode != MMAP:
            self.w(AR, address)

    def command(
        self, value: int, address: int | None = None, nbytes: int = 0, abr: int | None = None
    ) -> None:
        """HAL_QSPI_Command: configure in indirect-write mode; no data -> wait TCF and clear."""
        self.wait(BUSY, False)
        self._config(value & ~FMODE_MASK, WRITE, max(nbytes, 1), address, abr)
        if (value >> 24) & 3 == 0:
            self.wait(TCF)
            self.w(FCR, TCF)

    def transmit(self, data: bytes) -> None:
        self.w(CCR, self.r(CCR) & ~FMODE_MASK)
        for b in data:
            self.wait(FTF)
            self.w(DR, b, 1)
        self.wait(TCF)
        self.w(FCR, TCF)

    def receive(self, n: int) -> bytes:
        address = self.r(AR)
        self.w(CCR, (self.r(CCR) & ~FMODE_MASK) | READ << 26)
        self.w(AR, address)  # re-writing AR launches the read
        out = bytearray()
        for _ in range(n):
            self.wait(FTF | TCF)
            out.append(self.r(DR, 1))
        self.wait(TCF)
        self.w(FCR, TCF)
        return bytes(out)

    def autopoll(self, value: int, match: int, mask: int, interval: int = 0x10, nbytes: int = 1) -> int:
        """HAL_QSPI_AutoPolling (automatic stop); returns the virtual time of the match."""
        self.wait(BUSY, False)
        self.w(PSMAR, match)
        self.w(PSMKR, mask)
        self.w(PIR, interval)
        self.w(CR, (self.r(CR) & ~PMM) | APMS)
        self._config(value & ~FMODE_MASK, POLL, nbytes, None, None)
        self.wait(SMF)
        t = self.host.now_ns()
        self.w(FCR, SMF)
        return t

    def memory_mapped(self, value: int, abr: int | None = None, timeout: int | None = None) -> None:
        self.wait(BUSY, False)
        if timeout is not None:
            self.w(CR, self.r(CR) | TCEN)
            self.w(LPTR, timeout)
            self.w(FCR, TOF)
        self._config(value & ~FMODE_MASK, MMAP, 1, None, abr)

    def abort(self) -> None:
        self.w(CR, self.r(CR) | ABORT)
        self.wait(TCF)
        self.w(FCR, TCF)
        self.wait(BUSY, False)
        self.w(CCR, self.r(CCR) & ~FMODE_MASK)

    # W25Q64 helpers built on the HAL calls
    def write_enable(self) -> None:
        self.command(ccr(0x06))
        self.autopoll(ccr(0x05, dmode=1), match=0x02, mask=0x02)

    def wait_ready(self) -> int:
        return self.autopoll(ccr(0x05, dmode=1), match=0x00, mask=0x01)

    def read(self, addr: int, n: int) -> bytes:
        self.command(ccr(0x03, admode=1, dmode=1), addr, n)
        return self.receive(n)

    def page_program(self, addr: int, data: bytes) -> None:
        self.write_enable()
        self.command(ccr(0x02, admode=1, dmode=1), addr, len(data))
        self.transmit(data)
        self.wait_ready()

    def sector_erase(self, addr: int) -> None:
        self.write_enable()
        self.command(ccr(0x20, admode=1), addr)
        self.wait_ready()


XIP_EBH = 0x0F10_EDEB  # FACTS §C.4: EBh 1-4-4, 1 alternate byte on 4 lines, 4 dummy, FMODE=11


@pytest.fixture
def flash(host: StandaloneHost) -> W25Q64:
    return W25Q64(host)


@pytest.fixture
def qspi(host: StandaloneHost, flash: W25Q64) -> QuadSpi:
    q = QuadSpi(host, irq=IRQ, kernel_hz=KERNEL_HZ)
    q.attach(flash)
    return q


@pytest.fixture
def hal(qspi: QuadSpi, host: StandaloneHost) -> Hal:
    h = Hal(qspi, host)
    h.init()
    return h


def poll_period_ns(hal: Hal, data_bytes: int = 1, instruction_lines: int = 1) -> int:
    """One automatic-polling period: command clocks + max(PIR, CSHT+1), at kernel/(PRESCALER+1)."""
    clk = KERNEL_HZ // ((hal.r(CR) >> 24) + 1)
    clocks = 8 // instruction_lines + 8 * data_bytes + max(hal.r(PIR), ((hal.r(DCR) >> 8) & 7) + 1)
    return -(-clocks * NS_PER_S // clk)


# ------------------------------------------------------------------------------ registers
def test_reset_values_and_unmodelled_offsets(qspi: QuadSpi, host: StandaloneHost) -> None:
    for off in range(0, 0x34, 4):
        assert qspi.read(off, 4) == 0, hex(off)
    assert qspi.read(0x100, 4) == 0
    qspi.write(0x100, 4, 0x1234)
    assert any("0x100" in m for _, m in host.logs)
    qspi.write(DLR, 4, 0x12345678)
    assert qspi.read(DLR, 4) == 0x12345678
    assert qspi.read(DLR + 2, 2) == 0x1234  # sub-word access reads the lane
    qspi.write(FCR, 4, 0x1B)
    assert qspi.read(FCR, 4) == 0  # FCR is write-only


def test_fields_writable_only_while_not_busy(hal: Hal, flash: W25Q64, host: StandaloneHost) -> None:
    hal.write_enable()
    hal.command(ccr(0x20, admode=1), 0x0)  # sector erase: the flash is busy for 45 ms
    hal.w(PSMKR, 1)
    hal.w(PSMAR, 0)
    hal.w(CR, hal.r(CR) | APMS)
    hal.w(DLR, 0)
    hal.w(CCR, ccr(0x05, dmode=1, fmode=POLL))  # polling runs: BUSY=1
    assert hal.r(SR) & BUSY
    before = {off: hal.r(off) for off in (DCR, DLR, CCR, AR, ABR, PSMKR, PSMAR, PIR, LPTR)}
    for off in before:
        hal.w(off, 0xFFFF_FFFF)
    assert {off: hal.r(off) for off in before} == before
    hal.w(CR, hal.r(CR) | 0xFF << 24 | PMM | 0x1F << 8)  # PRESCALER, PMM guarded; FTHRES is not
    assert hal.r(CR) >> 24 == 1 and not hal.r(CR) & PMM and (hal.r(CR) >> 8) & 0x1F == 0x1F
    hal.wait(SMF)
    assert not hal.r(SR) & BUSY
    hal.w(PIR, 0x20)
    assert hal.r(PIR) == 0x20


def test_dual_flash_dlr_bit0_stuck(hal: Hal) -> None:
    hal.w(CR, hal.r(CR) | 1 << 6)  # DFM
    hal.w(DLR, 4)
    assert hal.r(DLR) == 5


# ------------------------------------------------------------------------------ indirect mode
def test_jedec_id_hal_order(hal: Hal) -> None:
    hal.command(ccr(0x9F, dmode=1), nbytes=3)
    assert not hal.r(SR) & BUSY  # a CCR write that starts nothing leaves BUSY at 0
    assert hal.receive(3) == bytes.fromhex("ef4017")
    assert hal.r(SR) & (BUSY | TCF) == 0


def test_jedec_id_rm_order(qspi: QuadSpi, hal: Hal) -> None:
    # RM: DLR -> CCR (FMODE=01, no address: CCR starts) -> read DR
    hal.w(DLR, 2)
    hal.w(CCR, ccr(0x9F, dmode=1, fmode=READ))
    # 3 bytes < threshold 4, but the transfer is complete: leftover data sets FTF
    assert hal.r(SR) & (BUSY | TCF | FTF) == BUSY | TCF | FTF
    assert (hal.r(SR) >> 8) & 0x3F == 3
    assert hal.r(DR, 1) == 0xEF
    assert hal.r(DR, 2) == 0x1740  # 16-bit access pops two bytes
    assert hal.r(SR) & BUSY == 0 and qspi.fifo_level == 0


def test_qe_set_with_write_enable_write_sr2_and_autopoll(host: StandaloneHost) -> None:
    flash = W25Q64(host, quad_enable_factory=False)
    q = QuadSpi(host, kernel_hz=KERNEL_HZ)
    q.attach(flash)
    hal = Hal(q, host)
    hal.init()
    hal.command(ccr(0x06))
    t_wel = hal.autopoll(ccr(0x05, dmode=1), match=0x02, mask=0x02)
    assert t_wel == 0 and flash.write_enabled
    hal.command(ccr(0x31, dmode=1), nbytes=1)
    hal.transmit(b"\x02")
    t_start = host.now_ns()
    t_ready = hal.wait_ready()
    period = poll_period_ns(hal)
    assert t_start + 10 * NS_PER_MS <= t_ready < t_start + 10 * NS_PER_MS + period
    hal.command(ccr(0x35, dmode=1), nbytes=1)
    assert hal.receive(1) == b"\x02"
    assert flash.quad_enabled and flash.nonvolatile_status()[1] == 0x02


def test_sector_erase_keeps_flash_busy_45ms(hal: Hal, flash: W25Q64, host: StandaloneHost) -> None:
    flash.load_array(b"\x00" * 0x2000, 0x3000)
    hal.write_enable()
    t0 = host.now_ns()
    hal.command(ccr(0x20, admode=1), 0x3000)
    assert flash.busy
    host.advance(44 * NS_PER_MS)
    hal.command(ccr(0x05, dmode=1), nbytes=1)
    assert hal.receive(1) == b"\x03"  # BUSY and WEL
    t_poll = host.now_ns()
    t_ready = hal.wait_ready()
    period = poll_period_ns(hal)
    done = t0 + 45 * NS_PER_MS
    # the first poll slot at or after the end of the erase sees BUSY=0
    assert t_ready == t_poll + -(-(done - t_poll) // period) * period
    assert hal.read(0x3000, 4) == b"\xff" * 4 and hal.read(0x4000, 2) == b"\x00\x00"


def test_page_program_wrap_and_and_semantics(hal: Hal, flash: W25Q64) -> None:
    hal.page_program(0x10FE, bytes((0xF0, 0x0F, 0xAA, 0x55)))
    assert hal.read(0x10FE, 2) == bytes((0xF0, 0x0F))
    assert hal.read(0x1000, 2) == bytes((0xAA, 0x55))  # wrapped inside the page
    assert hal.read(0x1100, 1) == b"\xff"
    hal.page_program(0x10FE, bytes((0x3C,)))
    assert hal.read(0x10FE, 1) == bytes((0xF0 & 0x3C,))


def test_quad_output_and_quad_io_reads(hal: Hal, flash: W25Q64) -> None:
    data = bytes(range(40))
    hal.page_program(0x2000, data)
    hal.command(ccr(0x6B, admode=1, dcyc=8, dmode=4), 0x2000, 40)
    assert hal.receive(40) == data
    hal.command(ccr(0xEB, admode=4, abmode=4, absize=1, dcyc=4, dmode=4), 0x2004, 8, abr=0xFF)
    assert hal.receive(8) == data[4:12]
    hal.command(ccr(0x6B, admode=1, dcyc=8, dmode=1), 0x2000, 4)  # wrong data lines
    assert hal.receive(4) == b"\xff" * 4


def test_fifo_threshold_flevel_and_tcf_with_long_read(qspi: QuadSpi, hal: Hal, flash: W25Q64) -> None:
    data = bytes((i * 3) & 0xFF for i in range(100))
    flash.load_array(data, 0x4000)
    hal.w(CR, (hal.r(CR) & ~(0x1F << 8)) | 7 << 8)  # FTHRES=7: threshold 8 bytes
    hal.w(DLR, 99)
    hal.w(CCR, ccr(0x0B, admode=1, dcyc=8, dmode=1, fmode=READ))
    assert hal.r(SR) & BUSY == 0  # needs the address
    hal.w(AR, 0x4000)
    sr = hal.r(SR)
    assert sr & (BUSY | FTF | TCF) == BUSY | FTF and (sr >> 8) & 0x3F == 32
    out = bytearray([hal.r(DR, 1)])
    assert (hal.r(SR) >> 8) & 0x3F == 31  # paused read resumes once 4 bytes are free
    out += bytes([hal.r(DR, 1) for _ in range(3)])
    assert (hal.r(SR) >> 8) & 0x3F == 32
    while len(out) < 92:
        out += hal.r(DR, 4).to_bytes(4, "little")
    sr = hal.r(SR)
    assert sr & TCF and (sr >> 8) & 0x3F == 8 and sr & FTF and sr & BUSY
    out += hal.r(DR, 4).to_bytes(4, "little")
    sr = hal.r(SR)
    assert (sr >> 8) & 0x3F == 4 and sr & FTF  # below threshold, but the leftover data sets FTF
    out += hal.r(DR, 4).to_bytes(4, "little")
    assert bytes(out) == data
    assert hal.r(SR) & (BUSY | FTF) == 0 and hal.r(SR) & TCF


def test_indirect_write_fifo_and_32bit_dr(hal: Hal, flash: W25Q64, host: StandaloneHost) -> None:
    hal.write_enable()
    hal.w(DLR, 7)
    hal.w(CCR, ccr(0x02, admode=1, dmode=1, fmode=WRITE))
    assert hal.r(SR) & (FTF | BUSY) == FTF  # waiting for DR: FIFO free
    hal.w(AR, 0x6000)
    assert hal.r(SR) & BUSY == 0  # AR does not start a write with data
    hal.w(ABR, 0x12)
    assert hal.r(SR) & BUSY == 0  # ABR never starts anything
    hal.w(DR, 0x44332211)  # first DR write starts the command
    assert hal.r(SR) & BUSY and (hal.r(SR) >> 8) & 0x3F == 0
    hal.w(DR, 0x8877, 2)
    hal.w(DR, 0x99, 1)
    assert hal.r(SR) & BUSY
    hal.w(DR, 0xAA, 1)
    assert hal.r(SR) & (BUSY | TCF | FTF) == TCF
    hal.w(FCR, TCF)
    hal.wait_ready()
    assert bytes(flash.array[0x6000:0x6009]) == bytes.fromhex("11223344 7788 99 aa ff")


def test_transfer_error_beyond_fsize(hal: Hal, qspi: QuadSpi, host: StandaloneHost) -> None:
    hal.w(CR, hal.r(CR) | TEIE)
    hal.w(CR, hal.r(CR) & ~EN)
    hal.w(DCR, 20 << 16)  # FSIZE=20: 2 MiB
    hal.w(CR, hal.r(CR) | EN)
    hal.w(DLR, 3)
    hal.w(CCR, ccr(0x03, admode=1, dmode=1, fmode=READ))
    hal.w(AR, 0x200000)
    assert hal.r(SR) & (TEF | BUSY) == TEF and host.irqs[IRQ]
    hal.w(FCR, TEF)
    assert hal.r(SR) & TEF == 0 and not host.irqs[IRQ]
    hal.w(AR, 0x1FFFFE)  # address + length beyond FSIZE
    assert hal.r(SR) & (TEF | BUSY) == TEF
    hal.w(FCR, TEF)
    hal.w(AR, 0x1FFFFC)  # the last 4 bytes: fine
    assert hal.r(SR) & (TEF | TCF) == TCF
    for _ in range(4):
        hal.r(DR, 1)
    hal.w(FCR, TCF)
    hal.w(DLR, 0)  # automatic polling of an addressed status (3Dh block lock) beyond FSIZE
    hal.w(CCR, ccr(0x3D, admode=1, dmode=1, fmode=POLL))
    hal.w(AR, 0x200000)
    assert hal.r(SR) & (TEF | BUSY) == TEF


def test_dlr_all_ones_reads_to_end_of_flash(hal: Hal, flash: W25Q64) -> None:
    flash.load_array(bytes(range(16)), 0x7FFFF0)
    hal.w(DLR, 0xFFFF_FFFF)
    hal.w(CCR, ccr(0x03, admode=1, dmode=1, fmode=READ))
    hal.w(AR, 0x7FFFF0)
    assert (hal.r(SR) >> 8) & 0x3F == 16 and hal.r(SR) & TCF
    assert bytes(hal.r(DR, 1) for _ in range(16)) == bytes(range(16))
    assert hal.r(SR) & BUSY == 0


def test_sioo_sends_the_instruction_once(hal: Hal, flash: W25Q64) -> None:
    flash.load_array(bytes(range(8)), 0x100)
    cont = ccr(0xEB, admode=4, abmode=4, absize=1, dcyc=4, dmode=4, fmode=READ, sioo=1)
    hal.w(ABR, 0xA0)  # M5-4 = 10: the flash stays in continuous-read mode
    hal.w(DLR, 3)
    hal.w(CCR, cont)
    hal.w(AR, 0x100)
    assert bytes(hal.r(DR, 1) for _ in range(4)) == bytes(range(4))
    hal.w(AR, 0x104)  # second command: no instruction phase
    assert bytes(hal.r(DR, 1) for _ in range(4)) == bytes(range(4, 8))
    assert flash.continuous_read == 0xEB
    hal.w(ABR, 0xFF)
    hal.w(CCR, cont)  # CCR write: the opcode goes out again, into a flash in continuous mode:
    hal.w(AR, 0x100)  # that is a mode-bit reset, and this read returns nothing
    assert bytes(hal.r(DR, 1) for _ in range(4)) == b"\xff" * 4
    assert flash.continuous_read is None
    hal.w(CCR, cont)
    hal.w(AR, 0x100)
    assert bytes(hal.r(DR, 1) for _ in range(4)) == bytes(range(4))
    hal.w(AR, 0x104)  # SIOO without continuous mode: the flash takes the address as opcode
    assert bytes(hal.r(DR, 1) for _ in range(4)) == b"\xff" * 4


def test_empty_bank_reads_ff(hal: Hal) -> None:
    hal.w(CR, hal.r(CR) & ~EN)
    hal.w(CR, hal.r(CR) | 1 << 7 | EN)  # FSEL: bank 2, nothing attached
    hal.command(ccr(0x9F, dmode=1), nbytes=3)
    assert hal.receive(3) == b"\xff" * 3


def test_command_while_disabled_does_not_start(qspi: QuadSpi, hal: Hal, host: StandaloneHost) -> None:
    hal.w(CR, hal.r(CR) & ~EN)
    hal.w(CCR, ccr(0x06))
    assert hal.r(SR) & (BUSY | TCF) == 0
    assert any("EN=0" in m for _, m in host.logs)


# ------------------------------------------------------------------------------ polling
def test_polling_period_and_skip_are_exact(hal: Hal, flash: W25Q64, host: StandaloneHost) -> None:
    hal.w(CR, hal.r(CR) & ~EN)
    hal.w(CR, (hal.r(CR) & 0x00FF_FFFF) | 4 << 24 | EN)  # 200 MHz / 5 = 40 MHz
    hal.write_enable()
    hal.command(ccr(0x20, admode=1), 0)
    t0 = host.now_ns()  # the erase started at this instant
    host.advance(123_457)
    t_ready = hal.autopoll(ccr(0x05, dmode=1), match=0, mask=1, interval=0x100)
    period = poll_period_ns(hal)
    assert period == -(-(16 + 0x100) * NS_PER_S // 40_000_000)
    t_poll = t0 + 123_457
    assert t_ready == t_poll + -(-(t0 + 45 * NS_PER_MS - t_poll) // period) * period


def test_polling_without_automatic_stop_and_or_match(hal: Hal, flash: W25Q64, host: StandaloneHost) -> None:
    hal.w(PSMKR, 0x03)
    hal.w(PSMAR, 0x02)
    hal.w(PIR, 0x10)
    hal.w(CR, hal.r(CR) | PMM | SMIE)  # OR: any unmasked bit matching; no APMS
    hal.w(DLR, 0)
    hal.w(CCR, ccr(0x05, dmode=1, fmode=POLL))
    # SR1 = 0x00: bit0 (0) matches PSMAR bit0 (0) -> OR match at once
    assert hal.r(SR) & (SMF | BUSY | FTF) == SMF | BUSY | FTF and host.irqs[IRQ]
    assert hal.r(DR, 1) == 0x00  # reading the status clears FTF
    assert hal.r(SR) & FTF == 0
    t = host.now_ns()
    period = poll_period_ns(hal)
    hal.w(FCR, SMF)
    assert hal.r(SR) & SMF == 0 and not host.irqs[IRQ]
    host.advance(period - 1)
    assert hal.r(SR) & SMF == 0
    host.advance(1)
    assert hal.r(SR) & (SMF | FTF | BUSY) == SMF | FTF | BUSY and host.now_ns() == t + period
    hal.w(CR, hal.r(CR) | ABORT)
    assert hal.r(SR) & (BUSY | TCF) == TCF
    host.advance(10 * period)
    hal.w(FCR, SMF)
    host.advance(10 * period)
    assert hal.r(SR) & SMF == 0  # no more polls after ABORT


def test_polling_and_match_mode(hal: Hal, flash: W25Q64, host: StandaloneHost) -> None:
    hal.command(ccr(0x06))
    hal.w(PSMKR, 0x03)
    hal.w(PSMAR, 0x01)  # AND: WEL=0 and BUSY=1 -> never while idle with WEL=1
    hal.w(PIR, 0x10)
    hal.w(CR, hal.r(CR) | APMS)
    hal.w(DLR, 0)
    hal.w(CCR, ccr(0x05, dmode=1, fmode=POLL))
    host.advance(NS_PER_MS)
    assert hal.r(SR) & (BUSY | SMF) == BUSY
    hal.w(CR, hal.r(CR) & ~EN)  # EN=0 stops polling: BUSY falls, no TCF
    assert hal.r(SR) & (BUSY | TCF | SMF) == 0


# ------------------------------------------------------------------------------ interrupts
def test_interrupt_lines_follow_flags(hal: Hal, host: StandaloneHost) -> None:
    hal.w(CR, hal.r(CR) | TCIE)
    hal.w(CCR, ccr(0x06))
    assert hal.r(SR) & TCF and host.irqs[IRQ]
    hal.w(FCR, TCF)
    assert not host.irqs[IRQ]
    hal.w(CR, (hal.r(CR) & ~TCIE) | FTIE)
    hal.w(DLR, 9)
    hal.w(CCR, ccr(0x9F, dmode=1, fmode=READ))  # 10 bytes >= threshold 4: FTF
    assert host.irqs[IRQ]
    for _ in range(10):
        hal.r(DR, 1)
    assert not host.irqs[IRQ]
    levels = [lvl for _, irq, lvl in host.irq_history if irq == IRQ]
    assert levels == [True, False, True, False]


# ------------------------------------------------------------------------------ abort / disable
def test_abort_in_indirect_read_flushes_fifo(qspi: QuadSpi, hal: Hal) -> None:
    hal.w(DLR, 99)
    hal.w(CCR, ccr(0x03, admode=1, dmode=1, fmode=READ))
    hal.w(AR, 0)
    assert (hal.r(SR) >> 8) & 0x3F == 32
    hal.w(CR, hal.r(CR) | ABORT)
    assert hal.r(SR) & (BUSY | TCF) == TCF and qspi.fifo_level == 0
    assert hal.r(CR) & ABORT == 0  # self-clearing


def test_abort_mid_page_program_programs_what_was_sent(hal: Hal, flash: W25Q64, host: StandaloneHost) -> None:
    hal.write_enable()
    hal.command(ccr(0x02, admode=1, dmode=1), 0x8000, 16)
    for b in b"\x01\x02\x03":
        hal.w(DR, b, 1)
    assert hal.r(SR) & BUSY
    hal.abort()
    assert hal.r(SR) & BUSY == 0
    host.run_until_idle()
    assert bytes(flash.array[0x8000:0x8004]) == b"\x01\x02\x03\xff"


def test_abort_when_idle_sets_tcf(hal: Hal) -> None:
    hal.w(CR, hal.r(CR) | ABORT)
    assert hal.r(SR) & (TCF | BUSY) == TCF


# ------------------------------------------------------------------------------ memory-mapped
def test_memory_mapped_window(qspi: QuadSpi, hal: Hal, flash: W25Q64, host: StandaloneHost) -> None:
    with pytest.raises(BusError):
        host.cpu_read(XIP_BASE, 4)  # never published yet
    hal.page_program(0x0, bytes.fromhex("00000220 41000090"))
    hal.memory_mapped(XIP_EBH, abr=0xFF)
    assert qspi.window_published and qspi.window_shows_flash
    base, buf, executable, _w = host.windows["qspi_xip"]
    assert base == XIP_BASE and buf is flash.array and executable
    assert host.cpu_read(XIP_BASE, 4) == 0x20020000 and host.cpu_read(XIP_BASE + 4, 4) == 0x90000041
    assert hal.r(SR) & BUSY and hal.r(DR) == 0
    hal.w(AR, 0x1234)  # ignored in memory-mapped mode
    assert hal.r(AR) == 0
    host.cpu_write(XIP_BASE + 8, 4, 0)  # writes end in a bus error
    assert host.bus_errors and host.bus_errors[0][0] == XIP_BASE + 8
    hal.w(CCR, ccr(0x03))  # BUSY=1: CCR cannot change
    assert hal.r(CCR) == XIP_EBH
    # ABORT stops the prefetch; the window stays readable while FMODE=11
    hal.w(CR, hal.r(CR) | ABORT)
    assert hal.r(SR) & (TCF | BUSY) == TCF and qspi.window_published
    assert host.cpu_read(XIP_BASE, 4) == 0x20020000
    hal.w(FCR, TCF)
    hal.w(CCR, hal.r(CCR) & ~FMODE_MASK)  # leave memory-mapped mode
    assert not qspi.window_published
    with pytest.raises(BusError):
        host.cpu_read(XIP_BASE, 4)


def test_window_invalidated_on_program_and_erase(hal: Hal, flash: W25Q64, host: StandaloneHost) -> None:
    hal.memory_mapped(XIP_EBH, abr=0xFF)
    hal.abort()
    host.invalidations.clear()
    hal.page_program(0x1F0, b"\x00" * 8)
    assert host.invalidations == [(XIP_BASE + 0x1F0, 8)]
    hal.sector_erase(0x0)
    assert host.invalidations[-1] == (XIP_BASE, 0x1000)
    hal.memory_mapped(XIP_EBH, abr=0xFF)
    assert host.cpu_read(XIP_BASE + 0x1F0, 4) == 0xFFFFFFFF
    flash.inject_bit_flip(0x1F0, 0)
    assert host.invalidations[-1] == (XIP_BASE + 0x1F0, 1)
    assert host.cpu_read(XIP_BASE + 0x1F0, 1) == 0xFE


def test_enable_off_unpublishes_and_on_republishes(qspi: QuadSpi, hal: Hal, host: StandaloneHost) -> None:
    hal.memory_mapped(XIP_EBH, abr=0xFF)
    hal.w(CR, hal.r(CR) & ~EN)
    assert not qspi.window_published and hal.r(SR) & (BUSY | TCF) == 0
    with pytest.raises(BusError):
        host.cpu_read(XIP_BASE, 1)
    hal.w(CR, hal.r(CR) | EN)
    assert qspi.window_published and host.cpu_read(XIP_BASE, 1) == 0xFF


def test_memory_mapped_command_the_flash_does_not_serve_shows_ff(
    qspi: QuadSpi, hal: Hal, flash: W25Q64, host: StandaloneHost
) -> None:
    flash.load_array(b"\x12\x34\x56\x78", 0)
    hal.memory_mapped(ccr(0x6B, admode=1, dcyc=8, dmode=1))  # 6Bh needs 4 data lines
    assert qspi.window_published and not qspi.window_shows_flash
    assert host.cpu_read(XIP_BASE, 4) == 0xFFFFFFFF
    hal.abort()
    hal.memory_mapped(ccr(0x6B, admode=1, dcyc=8, dmode=4))
    assert qspi.window_shows_flash and host.cpu_read(XIP_BASE, 4) == 0x78563412
    assert (XIP_BASE, len(flash.array)) in host.invalidations  # the buffer behind the window changed


def test_memory_mapped_with_quad_disabled_shows_ff(host: StandaloneHost) -> None:
    flash = W25Q64(host, quad_enable_factory=False)
    q = QuadSpi(host, kernel_hz=KERNEL_HZ)
    q.attach(flash)
    hal = Hal(q, host)
    hal.init()
    hal.memory_mapped(XIP_EBH, abr=0xFF)
    assert host.cpu_read(XIP_BASE, 4) == 0xFFFFFFFF


def test_memory_mapped_while_flash_busy_recovers(
    qspi: QuadSpi, hal: Hal, flash: W25Q64, host: StandaloneHost
) -> None:
    hal.write_enable()
    hal.command(ccr(0x02, admode=1, dmode=1), 0, 2)
    hal.transmit(b"\xab\xcd")
    hal.memory_mapped(XIP_EBH, abr=0xFF)  # firmware forgot to wait for the program
    assert host.cpu_read(XIP_BASE, 2) == 0xFFFF
    host.advance(400_000)
    assert qspi.window_shows_flash and host.cpu_read(XIP_BASE, 2) == 0xCDAB


def test_memory_mapped_continuous_read_needs_sioo(
    qspi: QuadSpi, hal: Hal, flash: W25Q64, host: StandaloneHost
) -> None:
    flash.load_array(b"\xc0\xde", 0)
    hal.memory_mapped(XIP_EBH | 1 << 28, abr=0xA0)  # SIOO + M5-4 = 10
    assert qspi.window_shows_flash and flash.continuous_read == 0xEB
    assert host.cpu_read(XIP_BASE, 2) == 0xDEC0
    hal.abort()
    flash.power_on_reset()
    hal.memory_mapped(XIP_EBH, abr=0xA0)  # continuous mode but the opcode on every access
    assert not qspi.window_shows_flash
    hal.abort()
    flash.power_on_reset()
    hal.memory_mapped(XIP_EBH | 1 << 28, abr=0xFF)  # SIOO without continuous mode
    assert not qspi.window_shows_flash


def test_memory_mapped_timeout(qspi: QuadSpi, hal: Hal, host: StandaloneHost) -> None:
    hal.w(CR, hal.r(CR) | TOIE)
    hal.memory_mapped(XIP_EBH, abr=0xFF, timeout=100)  # 100 CLK at 100 MHz = 1 us
    assert hal.r(SR) & (BUSY | TOF) == BUSY
    host.advance(999)
    assert hal.r(SR) & TOF == 0
    host.advance(1)
    assert hal.r(SR) & (BUSY | TOF) == TOF and host.irqs[IRQ]
    assert qspi.window_published
    hal.w(FCR, TOF)
    assert hal.r(SR) & TOF == 0 and not host.irqs[IRQ]


def test_peripheral_reset(qspi: QuadSpi, hal: Hal, host: StandaloneHost) -> None:
    hal.w(CR, hal.r(CR) | TCIE)
    hal.memory_mapped(XIP_EBH, abr=0xFF)
    hal.w(CR, hal.r(CR) | ABORT)
    assert host.irqs[IRQ]
    qspi.reset()
    assert not qspi.window_published and not host.irqs[IRQ]
    assert all(qspi.read(off, 4) == 0 for off in range(0, 0x34, 4))


def test_ddr_mode_is_logged(hal: Hal, host: StandaloneHost) -> None:
    hal.w(CCR, ccr(0x06, ddrm=1))
    assert any("DDR" in m for _, m in host.logs)


def test_kernel_clock_callable(host: StandaloneHost, flash: W25Q64) -> None:
    clock = {"hz": 100_000_000}
    q = QuadSpi(host, kernel_hz=lambda: clock["hz"])
    q.attach(flash)
    hal = Hal(q, host)
    hal.init(prescaler=0)
    hal.memory_mapped(XIP_EBH, abr=0xFF, timeout=50)  # 50 cycles at 100 MHz
    host.advance(500)
    assert hal.r(SR) & TOF
    hal.abort()
    clock["hz"] = 10_000_000
    hal.memory_mapped(XIP_EBH, abr=0xFF, timeout=50)
    host.advance(4_999)
    assert not hal.r(SR) & TOF
    host.advance(1)
    assert hal.r(SR) & TOF


# ------------------------------------------------------------------------------ faults via the controller
def test_power_cut_during_page_program_through_qspi(host: StandaloneHost) -> None:
    flash = W25Q64(host, power_cut=PowerCutPlan(on_event="qspi.page_program", fraction=0.25))
    q = QuadSpi(host, kernel_hz=KERNEL_HZ)
    q.attach(flash)
    hal = Hal(q, host)
    hal.init()
    hal.write_enable()
    hal.command(ccr(0x02, admode=1, dmode=1), 0x100, 16)
    hal.transmit(bytes(range(16)))
    host.run_until_idle()
    assert host.powered_off and host.now_ns() == 100_000
    assert bytes(flash.array[0x100:0x110]) == bytes(range(4)) + b"\xff" * 12


def test_power_cut_during_sector_erase_through_qspi(host: StandaloneHost) -> None:
    flash = W25Q64(host, power_cut=PowerCutPlan(on_event="qspi.sector_erase", fraction=0.5))
    flash.load_array(bytes(0x1000), 0x2000)
    q = QuadSpi(host, kernel_hz=KERNEL_HZ)
    q.attach(flash)
    hal = Hal(q, host)
    hal.init()
    hal.write_enable()
    hal.command(ccr(0x20, admode=1), 0x2000)
    host.run_until_idle()
    assert host.powered_off
    assert bytes(flash.array[0x2000:0x2800]) == b"\xff" * 0x800
    assert bytes(flash.array[0x2800:0x3000]) == b"\x00" * 0x800


def test_wear_out_through_qspi_is_deterministic(host: StandaloneHost) -> None:
    def run(seed: int) -> bytes:
        h = StandaloneHost()
        flash = W25Q64(h, timing="fast", endurance=2, seed=seed)
        q = QuadSpi(h, kernel_hz=KERNEL_HZ)
        q.attach(flash)
        hal = Hal(q, h)
        hal.init()
        for _ in range(3):
            hal.sector_erase(0x5000)
        return hal.read(0x5000, 0x1000)

    first = run(3)
    assert first != b"\xff" * 0x1000 and sum(8 - bin(b).count("1") for b in first) == 8
    assert run(3) == first and run(4) != first


# ---------------------------------------- DR writes straight to the chip, against the FIFO path
def _write_via_dr_write(q: QuadSpi, offset: int, size: int, value: int) -> None:
    """QuadSpi.write without its shortcut for DR: every DR access through _dr_write."""
    if offset & ~3 == DR:
        q._dr_write(size, value, offset & 3)
    else:
        q.regs.write(offset, size, value)
    q._update_irq()


@pytest.mark.parametrize("seed", range(4))
def test_dr_write_shortcut_matches_the_fifo_path(seed: int) -> None:
    def run(reference: bool) -> list[object]:
        rng = random.Random(seed)
        host = StandaloneHost()
        flash = W25Q64(host)
        q = QuadSpi(host, irq=IRQ, kernel_hz=KERNEL_HZ)
        q.attach(flash)
        if reference:
            q.write = lambda off, size, value: _write_via_dr_write(q, off, size, value)  # type: ignore[method-assign]
        hal = Hal(q, host)
        hal.init(fifo_threshold=rng.choice((1, 4, 8)))
        trace: list[object] = []
        for _ in range(12):
            addr = rng.randrange(0, 0x4000)
            n = rng.choice((1, 3, 4, 64, 255, 256, 300, rng.randrange(1, 400)))
            quad = rng.random() < 0.5
            hal.write_enable()
            hal.command(ccr(0x32 if quad else 0x02, admode=1, dmode=4 if quad else 1), addr, n)
            hal.w(CCR, hal.r(CCR) & ~FMODE_MASK)
            sent = 0
            while sent < n:  # the last access may carry bytes beyond DLR+1 (discarded)
                size = rng.choice((1, 2, 4, 4, 4))
                hal.w(DR + (1 if rng.random() < 0.05 else 0), rng.getrandbits(8 * size), size)
                sent += size
                trace.append((hal.r(SR), q.fifo_level))
            if rng.random() < 0.2:
                hal.abort()  # waits for and clears TCF itself
            else:
                hal.wait(TCF)
                hal.w(FCR, TCF)
            trace.append(hal.wait_ready())
        trace.append(bytes(flash.array[:0x4200]))
        trace.append(list(host.irq_history))
        return trace

    assert run(reference=False) == run(reference=True)


# ---------------------------------------- DMA beats taken at once (write_fifo), against write()
@pytest.mark.parametrize("seed", range(4))
def test_write_fifo_matches_beat_by_beat_writes(seed: int) -> None:
    """A bus master feeding DR: write_fifo takes what it can at once, the host sends the rest beat
    by beat; chip contents, SR, FIFO level and the IRQ line match plain per-beat writes."""

    def run(bulk: bool) -> list[object]:
        rng = random.Random(seed)
        host = StandaloneHost()
        flash = W25Q64(host)
        q = QuadSpi(host, irq=IRQ, kernel_hz=KERNEL_HZ)
        q.attach(flash)
        hal = Hal(q, host)
        hal.init(fifo_threshold=rng.choice((1, 4, 8)))
        trace: list[object] = []
        taken_total = 0
        for _ in range(10):
            addr = rng.randrange(0, 0x4000)
            n = rng.choice((4, 8, 64, 256, 252, rng.randrange(1, 300)))
            size = rng.choice((1, 2, 4, 4))
            quad = rng.random() < 0.5
            hal.write_enable()
            hal.command(ccr(0x32 if quad else 0x02, admode=1, dmode=4 if quad else 1), addr, n)
            hal.w(CCR, hal.r(CCR) & ~FMODE_MASK)
            data = rng.randbytes(-(-n // size) * size)
            if rng.random() < 0.3:  # a CPU write first: the transfer is already running
                hal.w(DR, int.from_bytes(data[:size], "little"), size)
                data = data[size:]
            done = q.write_fifo(DR, size, data) if bulk else 0
            taken_total += done
            for pos in range(done, len(data), size):
                hal.w(DR, int.from_bytes(data[pos : pos + size], "little"), size)
            trace.append((hal.r(SR), q.fifo_level))
            hal.wait(TCF)
            hal.w(FCR, TCF)
            trace.append(hal.wait_ready())
        assert q.write_fifo(SR, 4, bytes(8)) == 0  # only DR takes beats at once
        trace.append(bytes(flash.array[:0x4200]))
        trace.append(list(host.irq_history))
        if bulk:
            assert taken_total > 0
        return trace

    assert run(bulk=True) == run(bulk=False)
