"""STM32H743 MDMA, the master DMA of domain D1 (RM0433 chapter "MDMA"): 16 channels.

Facts used (source: what it gave)
---------------------------------
* STMicroelectronics/cmsis_device_h7 ``Include/stm32h743xx.h``: ``MDMA_IRQn = 122``; the block
  (``MDMA_TypeDef``: GISR0 at 0x00) and the channel layout (``MDMA_Channel_TypeDef``): channel x
  at 0x40 + 0x40*x with CxISR +0x00, CxIFCR +0x04, CxESR +0x08, CxCR +0x0C, CxTCR +0x10,
  CxBNDTR +0x14, CxSAR +0x18, CxDAR +0x1C, CxBRUR +0x20, CxLAR +0x24, CxTBR +0x28, reserved
  +0x2C, CxMAR +0x30, CxMDR +0x34; every bit position below (``MDMA_GISR0_GIFx``,
  ``MDMA_CISR_*``, ``MDMA_CIFCR_*``, ``MDMA_CESR_*``, ``MDMA_CCR_*``, ``MDMA_CTCR_*``,
  ``MDMA_CBNDTR_*``, ``MDMA_CBRUR_*``, ``MDMA_CTBR_*``). The base 0x52000000 is the
  AHB3 address of the RM memory map (stm32-rs register tables: "MDMA 0x52000000").
* The SVD field descriptions (docs.rs ``stm32h7`` / ``stm32h7x3`` PACs, generated from ST's
  SVD): every reset value is 0; TCR fields, CR.PL and BNDTR.BRSUM/BRDUM/BRC "are protected and
  can be written only if EN is 0"; BRC is "the number of repetitions of the current block (0 to
  4095) ... decrements after each complete block transfer ... can be reloaded from memory in
  Linked List mode"; SWRQ "Writing a 1 into this bit sets the CRQAx in MDMA_ISRy register,
  activating the request on Channel x ... In case of a SW request, acknowledge is not generated
  (neither HW signal, nor CxMAR write access)"; TRGM=11 needs the same TRGM/SWRM in every node;
  in linked-list mode the registers are "loaded from memory (from address given by current
  LAR + 0x00)".
* ST HAL (``stm32h7xx_hal_mdma.h/.c``): TRGM 00 buffer / 01 block / 10 repeated block / 11 full
  transfer ("or a linked list transfer if any"); TLEN = bytes - 1 (1 to 128); SINC/DINC 10 =
  increment (with SINCOS/DINCOS the step: byte, half-word, word), 00 = fixed; the linked-list
  node ``MDMA_LinkNodeTypeDef`` = CTCR, CBNDTR, CSAR, CDAR, CBRUR, CLAR, CTBR, reserved, CMAR,
  CMDR (the register order from CxTCR on); ``MDMA_SetConfig``: BNDT = block bytes, BRC = blocks
  - 1, SBUS/DBUS from the address; ``MDMA_Init``: a negative block offset sets BRSUM/BRDUM with
  the magnitude in SUV/DUV ("from where the last block ends"); the IRQ handler checks GISR0,
  then each flag with its enable, reads TED (0 read, 1 write), TELD, TEMD, ASE, BSE;
  ``HAL_MDMA_Abort_IT`` waits for CTCIF after clearing EN.
* Request lines (``MDMA_REQUEST_QUADSPI_FIFO_TH`` 0x16 = 22, ``MDMA_REQUEST_QUADSPI_TC`` 0x17 =
  23; ChibiOS ``hal_wspi_lld.c`` and CubeMX QUADSPI examples).

Behaviour
---------
A channel runs while EN=1 and a request is active: a software request (SWRM=1; SWRQ sets CRQA)
or the hardware request line selected by CxTBR.TSEL (SWRM=0; lines are driven by other models
through :meth:`Mdma.on_gpio`, level-sensitive). One request triggers the unit TRGM selects: a
buffer (TLEN+1 bytes, or what is left of the block), a block (BNDT bytes), a repeated block
(BRC+1 blocks, SAR/DAR moved by +/-SUV/DUV between blocks) or the whole channel (linked-list
nodes included). At the end of a block with BRC=0, a nonzero CxLAR reloads CxTCR..CxMDR from
the 40-byte node at LAR; otherwise CTCIF is set and EN cleared. After a hardware-triggered unit,
CxMDR is written to CxMAR when CxMAR != 0 (the request acknowledge). Flags: TCIF per buffer,
BTIF per block, BRTIF per repeated block, CTCIF at the end (or when software clears EN), TEIF
on errors. GISR0 bit x is the OR of channel x's enabled flags; the IRQ line is their OR.

Data moves through the host's bus-master access (:meth:`peripherals.host.Host.bus_read`) in the
configured beat sizes: a contiguous increment is one block access (the host splits it for
registers), a fixed address one FIFO access (``bus_read_fifo``/``bus_write_fifo``: the
peripheral may take the beats at once), a strided address one access per beat; SAR/DAR/BNDT are updated per buffer.
Errors: a failing read/write sets TEIF, CxESR.TEA = the 7 low address bits and TED (0 read,
1 write), clears EN; the bytes before the failing beat are written; SAR/DAR/BNDT stay at the
start of the failing buffer (TEA is meant to be added to them). A failing node fetch sets TELD,
a failing CxMAR write TEMD. At the start of a block, an address not aligned on its beat size
sets ASE and a BNDT that is not a multiple of both beat sizes BSE (TEIF, EN cleared).

Channel priority: PL (higher first), then the lower channel number; the choice is made again
after every buffer. Timing: a request (SWRQ, a request line rising, EN set while one is up) is
served by a scheduled service step, never inside the register or line callback (so a DR write
of the MDMA never re-enters the QUADSPI): the first step runs at the next event boundary after
zero delay. A step moves up to :data:`STEP_BYTES` (whole buffers, at most :data:`STEP_BUFFERS`)
at once, in zero virtual time (flags appear then); the MDMA is then busy for ``(source beats +
destination beats) *`` :data:`BEAT_NS` before the next step: the CPU runs between steps, so an
endless memory-to-memory transfer (circular linked list) cannot starve it. Deterministic (no
wall clock).

Not simulated (logged once when used): PKE=0 with SSIZE != DSIZE (PAM padding/truncation: the
bytes move as a packed stream), the reserved SINC/DINC value 01 (treated as fixed), bursts
(SBURST/DBURST), BWM and the SBUS/DBUS port choice (stored only).
"""

from __future__ import annotations

import struct

from peripherals.host import WARNING, Host, Timer
from peripherals.registers import Access, Peripheral, Register

BASE = 0x5200_0000
IRQ = 122
NUM_CHANNELS = 16
CHANNEL_BASE = 0x40
CHANNEL_STRIDE = 0x40
REQUEST_QUADSPI_FIFO_TH = 22
REQUEST_QUADSPI_TC = 23

# channel register offsets (from the channel's base)
ISR, IFCR, ESR, CR, TCR, BNDTR, SAR, DAR, BRUR, LAR, TBR, MAR, MDR = (
    0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x30, 0x34,
)  # fmt: skip

#: virtual time one bus beat (read or write) occupies the MDMA: one 200 MHz AXI/AHB cycle
BEAT_NS = 5
#: bytes moved per service step before the CPU runs again (whole buffers: at least one)
STEP_BYTES = 4096
#: buffers (or zero-length node loads) per service step, whatever their size
STEP_BUFFERS = 256
NODE_BYTES = 40  # CTCR, CBNDTR, CSAR, CDAR, CBRUR, CLAR, CTBR, reserved, CMAR, CMDR

# CxISR / CxCR bits (stm32h743xx.h)
TEIF, CTCIF, BRTIF, BTIF, TCIF = 1, 2, 4, 8, 16
CRQA = 1 << 16
EN = 1
SWRQ = 1 << 16
# CxESR bits
TED, TELD, TEMD, ASE, BSE = 1 << 7, 1 << 8, 1 << 9, 1 << 10, 1 << 11
# CxTCR
SWRM = 1 << 30
INC_FIXED, INC_RESERVED, INC_UP, INC_DOWN = 0, 1, 2, 3
TRGM_BUFFER, TRGM_BLOCK, TRGM_REPEATED_BLOCK, TRGM_CHANNEL = 0, 1, 2, 3

_MASK32 = 0xFFFF_FFFF


class _Channel:
    """The registers and transfer state of one channel."""

    def __init__(self, mdma: Mdma, index: int) -> None:
        self.mdma = mdma
        self.index = index
        base = CHANNEL_BASE + CHANNEL_STRIDE * index
        p = f"C{index}"
        r = mdma.regs
        idle = self.idle
        self.isr = (
            r.define(base + ISR, p + "ISR")
            .field(0, 1, "TEIF", access=Access.RO)
            .field(1, 1, "CTCIF", access=Access.RO)
            .field(2, 1, "BRTIF", access=Access.RO)
            .field(3, 1, "BTIF", access=Access.RO)
            .field(4, 1, "TCIF", access=Access.RO)
            .field(16, 1, "CRQA", access=Access.RO, on_read=self.crqa)
        )
        self.ifcr = (
            r.define(base + IFCR, p + "IFCR", on_write=self._ifcr_written)
            .field(0, 1, "CTEIF", access=Access.WO)
            .field(1, 1, "CCTCIF", access=Access.WO)
            .field(2, 1, "CBRTIF", access=Access.WO)
            .field(3, 1, "CBTIF", access=Access.WO)
            .field(4, 1, "CLTCIF", access=Access.WO)
        )
        self.esr = (
            r.define(base + ESR, p + "ESR")
            .field(0, 7, "TEA", access=Access.RO)
            .field(7, 1, "TED", access=Access.RO)
            .field(8, 1, "TELD", access=Access.RO)
            .field(9, 1, "TEMD", access=Access.RO)
            .field(10, 1, "ASE", access=Access.RO)
            .field(11, 1, "BSE", access=Access.RO)
        )
        self.cr = (
            r.define(base + CR, p + "CR", on_write=lambda _o, _n: mdma.update_irq())
            .field(0, 1, "EN", on_write=self._en_written)
            .field(1, 1, "TEIE")
            .field(2, 1, "CTCIE")
            .field(3, 1, "BRTIE")
            .field(4, 1, "BTIE")
            .field(5, 1, "TCIE")
            .field(6, 2, "PL", writable_when=idle)
            .field(12, 1, "BEX")
            .field(13, 1, "HEX")
            .field(14, 1, "WEX")
            .field(16, 1, "SWRQ", access=Access.SC, on_write=self._swrq_written)
        )
        self.tcr = (
            r.define(base + TCR, p + "TCR")
            .field(0, 2, "SINC", writable_when=idle)
            .field(2, 2, "DINC", writable_when=idle)
            .field(4, 2, "SSIZE", writable_when=idle)
            .field(6, 2, "DSIZE", writable_when=idle)
            .field(8, 2, "SINCOS", writable_when=idle)
            .field(10, 2, "DINCOS", writable_when=idle)
            .field(12, 3, "SBURST", writable_when=idle)
            .field(15, 3, "DBURST", writable_when=idle)
            .field(18, 7, "TLEN", writable_when=idle)
            .field(25, 1, "PKE", writable_when=idle)
            .field(26, 2, "PAM", writable_when=idle)
            .field(28, 2, "TRGM", writable_when=idle)
            .field(30, 1, "SWRM", writable_when=idle)
            .field(31, 1, "BWM", writable_when=idle)
        )
        self.bndtr = (
            r.define(base + BNDTR, p + "BNDTR")
            .field(0, 17, "BNDT", writable_when=idle)
            .field(18, 1, "BRSUM", writable_when=idle)
            .field(19, 1, "BRDUM", writable_when=idle)
            .field(20, 12, "BRC", writable_when=idle)
        )
        self.sar = r.define(base + SAR, p + "SAR").field(0, 32, "SAR", writable_when=idle)
        self.dar = r.define(base + DAR, p + "DAR").field(0, 32, "DAR", writable_when=idle)
        self.brur = (
            r.define(base + BRUR, p + "BRUR")
            .field(0, 16, "SUV", writable_when=idle)
            .field(16, 16, "DUV", writable_when=idle)
        )
        self.lar = r.define(base + LAR, p + "LAR").field(0, 32, "LAR", writable_when=idle)
        self.tbr = (
            r.define(base + TBR, p + "TBR")
            .field(0, 8, "TSEL", writable_when=idle)
            .field(16, 1, "SBUS", writable_when=idle)
            .field(17, 1, "DBUS", writable_when=idle)
        )
        self.mar = r.define(base + MAR, p + "MAR").field(0, 32, "MAR", writable_when=idle)
        self.mdr = r.define(base + MDR, p + "MDR").field(0, 32, "MDR", writable_when=idle)
        # registers a linked-list node reloads, in node order (None: the reserved word)
        self.node_regs: tuple[Register | None, ...] = (
            self.tcr, self.bndtr, self.sar, self.dar, self.brur, self.lar, self.tbr, None, self.mar, self.mdr,
        )  # fmt: skip
        self.reset_state()

    def reset_state(self) -> None:
        self.in_unit = False  # a request was taken: its unit (per TRGM) is being transferred
        self.sw_pending = False  # CRQA of a software request, until its unit ends
        self.bndt_reload = 0  # BNDT as programmed (reloaded for each block of a repeat)
        self.block_start = True

    # ---------------------------------------------------------------- register behaviour
    def idle(self) -> bool:
        return not self.cr.value & EN

    def crqa(self) -> int:
        if self.sw_pending or self.in_unit:
            return 1
        if self.cr.value & EN and not self.tcr.value & SWRM:
            return int(self.mdma.line(self.tbr.value & 0xFF))
        return 0

    def _ifcr_written(self, _old: int, new: int) -> None:
        clear = new & 0x1F
        if clear & TEIF:
            self.esr.value = 0  # CxESR is cleared with TEIF
        self.isr.clear_bits(clear)
        self.ifcr.value = 0
        self.mdma.update_irq()

    def _en_written(self, old: int, new: int) -> None:
        if new and not old:
            self.in_unit = False
            self.sw_pending = False
            self.bndt_reload = self.bndtr.value & 0x1FFFF
            self.block_start = True
            self.mdma.kick()
        elif old and not new:
            # software disable: the channel is suspended, CTCIF tells it is (HAL_MDMA_Abort_IT)
            self.in_unit = False
            self.sw_pending = False
            self.isr.set_bits(CTCIF)

    def _swrq_written(self, _old: int, written: int) -> None:
        if not written:
            return
        if not self.cr.value & EN:
            self.mdma.log_once("swrq-off", f"C{self.index}: SWRQ written while EN=0: ignored")
            return
        if not self.tcr.value & SWRM:
            self.mdma.log_once(
                "swrq-hw", f"C{self.index}: SWRQ written with SWRM=0 (hardware requests): ignored"
            )
            return
        self.sw_pending = True
        self.mdma.kick()

    # ---------------------------------------------------------------- transfer
    def ready(self) -> bool:
        if not self.cr.value & EN:
            return False
        if self.in_unit or self.sw_pending:
            return True
        return not self.tcr.value & SWRM and self.mdma.line(self.tbr.value & 0xFF)

    def step(self) -> tuple[int, int]:
        """One buffer transfer and the block/channel boundaries it reaches.

        Returns (bytes written, bus beats used)."""
        self.in_unit = True
        tcr = self.tcr.value
        trgm = (tcr >> 28) & 3
        hw_request = not tcr & SWRM
        bndt = self.bndtr.value & 0x1FFFF
        beats = 0
        moved = 0
        if self.block_start:
            self.block_start = False
            if self._config_error(tcr, bndt):
                return 0, 1
        level = 0  # the largest unit that ended: 1 buffer, 2 block, 3 repeated block, 4 channel
        if bndt:
            n = min(((tcr >> 18) & 0x7F) + 1, bndt)
            moved, beats, failed = self._move(n, tcr)
            if failed:
                return moved, max(beats, 1)
            bndt -= n
            self.bndtr.value = (self.bndtr.value & ~0x1FFFF) | bndt
            self.isr.set_bits(TCIF)
            level = 1
        else:
            self.mdma.log_once(f"bndt0-{self.index}", f"C{self.index}: block of BNDT=0 bytes: ends at once")
        if bndt == 0:
            level, extra = self._block_end()
            beats += extra
            if level < 0:
                return moved, max(beats, 1)
        if level >= trgm + 1:
            self._unit_end(hw_request)
        return moved, max(beats, 1)

    def _config_error(self, tcr: int, bndt: int) -> bool:
        ssize = 1 << ((tcr >> 4) & 3)
        dsize = 1 << ((tcr >> 6) & 3)
        if self.sar.value % ssize or self.dar.value % dsize:
            self._fail(ASE)
            return True
        if bndt % ssize or bndt % dsize:
            self._fail(BSE)
            return True
        tlen = ((tcr >> 18) & 0x7F) + 1
        if tlen % ssize or tlen % dsize:
            self.mdma.log_once(
                f"tlen-{self.index}", f"C{self.index}: TLEN+1={tlen} not a multiple of the beat sizes"
            )
        return False

    def _block_end(self) -> tuple[int, int]:
        """BTIF, then the next block of a repeat, or the next node, or the channel's end.

        Returns (level reached, extra beats); level -1 after an error."""
        self.isr.set_bits(BTIF)
        self.block_start = True
        bndtr = self.bndtr.value
        brc = bndtr >> 20
        if brc:
            brur = self.brur.value
            suv, duv = brur & 0xFFFF, brur >> 16
            self.sar.value = (self.sar.value + (-suv if bndtr & (1 << 18) else suv)) & _MASK32
            self.dar.value = (self.dar.value + (-duv if bndtr & (1 << 19) else duv)) & _MASK32
            self.bndtr.value = ((brc - 1) << 20) | (bndtr & 0xC0000) | self.bndt_reload
            return 2, 0
        self.isr.set_bits(BRTIF)
        link = self.lar.value
        if link:
            if not self._load_node(link):
                return -1, 1
            return 3, NODE_BYTES // 4
        self.isr.set_bits(CTCIF)
        self.cr.value &= ~EN
        self.in_unit = False
        self.sw_pending = False
        return 4, 0

    def _load_node(self, address: int) -> bool:
        data = self.mdma.host.bus_read_block(address, NODE_BYTES, 4)
        if len(data) < NODE_BYTES:
            self._fail(TELD | ((address + len(data)) & 0x7F))
            return False
        for reg, value in zip(self.node_regs, struct.unpack("<10I", data), strict=True):
            if reg is not None:
                reg.value = value & self.mdma.defined_mask(reg)
        self.bndt_reload = self.bndtr.value & 0x1FFFF
        return True

    def _unit_end(self, hw_request: bool) -> None:
        self.in_unit = False
        self.sw_pending = False
        mar = self.mar.value
        if hw_request and mar:
            # the request acknowledge: CxMDR written to CxMAR (e.g. to clear the peripheral flag)
            if not self.mdma.host.bus_write(mar, 4, self.mdr.value):
                self._fail(TEMD | TED | (mar & 0x7F))

    def _fail(self, esr: int) -> None:
        self.esr.value = esr
        self.isr.set_bits(TEIF)
        self.cr.value &= ~EN
        self.in_unit = False
        self.sw_pending = False

    def _move(self, n: int, tcr: int) -> tuple[int, int, bool]:
        """Move one buffer of ``n`` bytes; returns (bytes written, beats, failed)."""
        mdma = self.mdma
        host = mdma.host
        ssize = 1 << ((tcr >> 4) & 3)
        dsize = 1 << ((tcr >> 6) & 3)
        sinc, dinc = tcr & 3, (tcr >> 2) & 3
        sstep = mdma.step_of(sinc, 1 << ((tcr >> 8) & 3), "SINC")
        dstep = mdma.step_of(dinc, 1 << ((tcr >> 10) & 3), "DINC")
        if ssize != dsize and not tcr & (1 << 25):
            mdma.log_once(
                "pam", "PKE=0 with SSIZE != DSIZE (PAM padding/truncation) not simulated: bytes packed"
            )
        sar, dar = self.sar.value, self.dar.value
        # ---- source
        want = -(-n // ssize) * ssize
        fail_read: int | None = None
        if sstep == ssize:  # contiguous increment: one block access
            data = host.bus_read_block(sar, want, ssize)
            if len(data) < want:
                fail_read = sar + len(data)
                data = data[: len(data) - len(data) % ssize]
        elif sstep == 0:  # fixed source (a peripheral data register): one FIFO access
            data = host.bus_read_fifo(sar, want, ssize)
            if len(data) < want:
                fail_read = sar
                data = data[: len(data) - len(data) % ssize]
        else:
            chunks = []
            addr = sar
            for _ in range(want // ssize):
                value = host.bus_read(addr, ssize)
                if value is None:
                    fail_read = addr
                    break
                chunks.append(value.to_bytes(ssize, "little"))
                addr = (addr + sstep) & _MASK32
            data = b"".join(chunks)
        beats = len(data) // ssize
        data = data[:n]
        cr = self.cr.value
        if cr & 0x7000 and dsize > 1:
            data = _exchange(data, dsize, cr)
        # ---- destination
        fail_write: int | None = None
        if dstep == dsize:
            written = host.bus_write_block(dar, data, dsize)
            if written < len(data):
                fail_write = dar + written
        elif dstep == 0:  # fixed destination (e.g. QUADSPI_DR): one FIFO access
            written = host.bus_write_fifo(dar, data, dsize)
            if written < len(data):
                fail_write = dar
        else:
            written = 0
            addr = dar
            for pos in range(0, len(data), dsize):
                beat = data[pos : pos + dsize]
                if not host.bus_write(addr, len(beat), int.from_bytes(beat, "little")):
                    fail_write = addr
                    break
                written += len(beat)
                addr = (addr + dstep) & _MASK32
        beats += -(-written // dsize)
        if fail_read is not None:
            self._fail(fail_read & 0x7F)
            return written, beats, True
        if fail_write is not None:
            self._fail(TED | (fail_write & 0x7F))
            return written, beats, True
        self.sar.value = (sar + sstep * (want // ssize)) & _MASK32
        self.dar.value = (dar + dstep * -(-n // dsize)) & _MASK32
        return written, beats, False


def _exchange(data: bytes, dsize: int, cr: int) -> bytes:
    """CxCR.BEX/HEX/WEX: swap bytes in half-words, half-words in words, words in double words
    of each destination beat (each only when the beat is at least that wide)."""
    b = bytearray(data)
    even = len(b) - len(b) % 2
    if cr & (1 << 12) and dsize >= 2:
        b[0:even:2], b[1:even:2] = b[1:even:2], b[0:even:2]
    if cr & (1 << 13) and dsize >= 4:
        for i in range(0, len(b) - 3, 4):
            b[i : i + 4] = b[i + 2 : i + 4] + b[i : i + 2]
    if cr & (1 << 14) and dsize >= 8:
        for i in range(0, len(b) - 7, 8):
            b[i : i + 8] = b[i + 4 : i + 8] + b[i : i + 4]
    return bytes(b)


class Mdma(Peripheral):
    """The MDMA register block (0x1000 bytes at 0x52000000) and its 16 channels."""

    size = 0x1000

    def __init__(self, host: Host, *, irq: int = IRQ, name: str = "MDMA") -> None:
        super().__init__(host, name)
        self.irq = irq
        self._logged: set[str] = set()
        self._lines: dict[int, bool] = {}  # hardware request inputs (TSEL numbers)
        self._event: Timer | None = None
        self._in_service = False
        self._busy_until = 0
        self._irq_level = False
        self._defined: dict[str, int] = {}
        self.regs.define(0x00, "GISR0", on_read=lambda _stored: self.gisr0())
        for x in range(NUM_CHANNELS):
            self.regs["GISR0"].field(x, 1, f"GIF{x}", access=Access.RO)
        self.channels = [_Channel(self, x) for x in range(NUM_CHANNELS)]

    # ---------------------------------------------------------------- wiring
    def on_gpio(self, line: int, level: bool) -> None:
        """Hardware request input ``line`` (the number CxTBR.TSEL selects) driven to ``level``."""
        if not 0 <= line <= 0xFF:
            raise ValueError(f"{self.name}: request line {line} outside 0..255")
        level = bool(level)
        if self._lines.get(line, False) == level:
            return
        self._lines[line] = level
        if level:
            self.kick()

    def line(self, number: int) -> bool:
        return self._lines.get(number, False)

    # ---------------------------------------------------------------- bus access
    def reset(self) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None
        super().reset()
        for ch in self.channels:
            ch.reset_state()
        self._busy_until = 0
        self._irq_level = False
        self.host.set_irq(self.irq, False)

    # ---------------------------------------------------------------- interrupts
    def gisr0(self) -> int:
        value = 0
        for ch in self.channels:
            if ch.isr.value & (ch.cr.value >> 1) & 0x1F:
                value |= 1 << ch.index
        return value

    def update_irq(self) -> None:
        level = self.gisr0() != 0
        if level != self._irq_level:
            self._irq_level = level
            self.host.set_irq(self.irq, level)

    # ---------------------------------------------------------------- scheduling
    def kick(self) -> None:
        """A channel may have work: make sure a service step is scheduled."""
        if self._in_service or (self._event is not None and self._event.pending):
            return
        if not any(ch.ready() for ch in self._enabled()):
            return
        delay = max(0, self._busy_until - self.host.now_ns())
        self._event = self.host.schedule(delay, self._service, f"{self.name} transfer")

    def _enabled(self) -> list[_Channel]:
        # only an enabled channel can be ready: skip the method call for the idle ones
        return [ch for ch in self.channels if ch.cr.value & EN]

    def _pick(self) -> _Channel | None:
        best: _Channel | None = None
        best_pl = -1
        for ch in self._enabled():  # ascending numbers: a tie keeps the lower channel
            if ch.ready():
                pl = (ch.cr.value >> 6) & 3
                if pl > best_pl:
                    best, best_pl = ch, pl
        return best

    def _service(self) -> None:
        self._event = None
        self._in_service = True
        beats = 0
        moved_steps = 0
        try:
            budget = STEP_BYTES
            while budget > 0 and moved_steps < STEP_BUFFERS:
                ch = self._pick()
                if ch is None:
                    break
                moved, used = ch.step()
                beats += used
                budget -= max(1, moved)
                moved_steps += 1
        finally:
            self._in_service = False
        self.update_irq()
        if moved_steps:
            self._busy_until = self.host.now_ns() + beats * BEAT_NS
        if any(ch.ready() for ch in self._enabled()):
            delay = max(1, self._busy_until - self.host.now_ns())
            self._event = self.host.schedule(delay, self._service, f"{self.name} transfer")

    @property
    def active(self) -> bool:
        """True while a service step is scheduled (some channel has a request to serve)."""
        return self._event is not None and self._event.pending

    # ---------------------------------------------------------------- helpers
    def step_of(self, inc: int, offset: int, what: str) -> int:
        """Address change per beat for an SINC/DINC value with its SINCOS/DINCOS offset."""
        if inc == INC_UP:
            return offset
        if inc == INC_DOWN:
            return -offset
        if inc == INC_RESERVED:
            self.log_once(f"inc-{what}", f"{what}=01 is reserved: the address stays fixed")
        return 0

    def defined_mask(self, reg: Register) -> int:
        mask = self._defined.get(reg.name)
        if mask is None:
            mask = self._defined[reg.name] = sum(f.mask for f in reg.fields.values())
        return mask

    def log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            self.host.log(WARNING, f"{self.name}: {message}")


__all__ = ["BASE", "IRQ", "Mdma", "REQUEST_QUADSPI_FIFO_TH", "REQUEST_QUADSPI_TC"]
