"""USB2_OTG_FS of the STM32H743 (0x4008_0000, IRQ 101): a Synopsys DWC2 core in device mode.

Registers, bits and the HAL bring-up sequence: reference/FACTS.md §E; what ST's HAL busy-waits on:
§I. Reset values follow the H743 SVD except where the silicon is known to differ: CID 0x2300,
GSNPSID 0x4F54330A (core v3.30a) and GHWCFG1-4 (FACTS §E.1), GRSTCTL.AHBIDL reads 1.

The core runs in slave mode (GAHBCFG.DMAEN is stored but DMA is not modelled): the firmware pops
received packets through GRXSTSP and the FIFO windows, and pushes IN packets into the TX FIFO of
the endpoint (dedicated FIFOs, 9 endpoints, 1024 words of FIFO RAM of which GHWCFG3 reports 952).

The other side of the cable is the *host port*: methods named ``host_*``, called on the CPU thread
between engine slices, that play the USB host's part transaction by transaction (SETUP, OUT, IN, bus
reset, suspend, detach). Transactions are addressed: the port keeps the host's view of the device
address (0 after a bus reset, the SET_ADDRESS value once its status stage completed), and the core
answers only tokens for its own address.

Modelling choices (each one checked by tests/models/test_otg_fs.py):

- SETUP: always ACKed when the RX FIFO has room (4 words), never NAKed; both entries of §E.4
  (PKTSTS 6 with the 8 bytes, then PKTSTS 4) are queued at once. DOEPINT0.STUP is raised when the
  "SETUP complete" entry is popped; STPKTRX (cores > 3.00a) when the SETUP arrives, left for the
  firmware to clear. A SETUP clears STALL and sets NAK on IN and OUT EP0, and counts down
  DOEPTSIZ0.STUPCNT; B2BSTUP is raised for a SETUP that follows another SETUP once STUPCNT ran out.
- OUT: accepted only when DOEPCTL.EPENA=1, NAKSTS=0, no STALL, no global OUT NAK and the RX FIFO has
  room; XFRSIZ/PKTCNT count down; the transfer ends on PKTCNT=0 or a short packet, which queues the
  PKTSTS 3 entry; popping it raises XFRC, clears EPENA and sets NAK (RM: "the core can also set this
  bit on a Transfer Completed interrupt"). Further OUT tokens are NAKed until then.
- IN: one packet of min(MPS, XFRSIZ) bytes per token, taken from the endpoint's TX FIFO (DIEPCTL.TXFNUM)
  when it holds the whole packet, else NAK (+ ITTXFE); XFRC and EPENA=0 when PKTCNT reaches 0. TXFE is
  a read-only level (half or completely empty per GAHBCFG.TXFELVL) on active endpoints (USBAEP=1;
  EP0 is always active), gated into DAINT by DIEPEMPMSK.
- Interrupts: DAINT bit = DxEPINT & DxEPMSK (TXFE through DIEPEMPMSK); GINTSTS.IEPINT/OEPINT/RXFLVL/
  OTGINT/GINAKEFF/BOUTNAKEFF/CMOD are levels; the IRQ line is GAHBCFG.GINT && GINTSTS & GINTMSK.
  The dedicated EP1 lines (IRQ 98/99) and the wakeup line (100) are not driven.
- Mode: CMOD follows GUSBCFG.FHMOD/FDMOD 25 ms (DWC2 databook) after they change; without forcing,
  the ID pin (CIDSTS=1, B-device) selects device mode, so CMOD=0 from reset. Host mode registers are
  not modelled: accessing them in device mode raises MMIS.
- GRSTCTL: AHBIDL always 1; CSRST, RXFFLSH, TXFFLSH act at once and read back 0. CSRST clears the
  interrupts, the FIFOs and the device/endpoint CSRs (DCFG keeps DSPD), and keeps the configuration
  registers (GOTGCTL, GAHBCFG, GUSBCFG, GCCFG, CID, FIFO sizes, GLPMCFG, GDFIFOCFG, PCGCCTL), as
  RM "Core soft reset" and the DWC2 drivers that rely on it (PHYSEL, force mode) expect.
- Connection (the D+ pull-up): device mode, GCCFG.PWRDWN=1, DCTL.SDIS=0 and a valid B-session
  (GOTGCTL.BVALOEN ? BVALOVAL : GCCFG.VBDEN && VBUS). The host sees it only while VBUS is present
  (cable plugged: ``host_attach``/``host_detach``).
- Bus reset: USBRST at once, then after BUS_RESET_NS (10 ms of SE0) ENUMDNE with DSTS.ENUMSPD=3;
  USBAEP of EP1..8 is cleared; DCFG.DAD is left to the firmware (HAL clears it).
- SET_ADDRESS: DCFG.DAD written while the SET_ADDRESS transfer is in flight takes effect when its
  status stage (IN ZLP) completes, as on the bus; written at any other time it applies at once.
- SOF: frames are derived from virtual time (one per FRAME_NS while the port is enabled and not
  suspended): DSTS.FNSOF advances and GINTSTS.SOF is set; a timer is armed only when the SOF
  interrupt is unmasked, so an idle core costs no events.
- Suspend, resume and detach take effect at once (the 3 ms idle detection is not timed). A bus
  reset of a suspended core also raises WKUINT and RSTDET, so firmware that stopped the PHY clock
  (PCGCCTL.STPPCLK, during which the core answers no token) restarts it.
"""

from __future__ import annotations

import struct
from collections import deque
from functools import partial
from itertools import repeat
from typing import Final, Literal

from peripherals.host import NS_PER_MS, WARNING, Host, Timer
from peripherals.registers import Access, Peripheral, Register

RW, RO, WO, W1C, W1S, SC = Access.RW, Access.RO, Access.WO, Access.W1C, Access.W1S, Access.SC

BASE_ADDRESS: Final = 0x4008_0000
IRQ: Final = 101
NUM_EPS: Final = 9  # GHWCFG2.NUMDEVEPS = 8 plus EP0; GHWCFG4 dedicated TX FIFOs for 9 IN endpoints
FIFO_RAM_WORDS: Final = 1024  # 4 KiB of FIFO RAM
DFIFO_DEPTH_WORDS: Final = 952  # GHWCFG3.DFIFODEPTH: the part the core reports as usable
FRAME_NS: Final = NS_PER_MS  # one full-speed frame
BUS_RESET_NS: Final = 10 * NS_PER_MS  # SE0 driven by the host (USB 2.0 TDRST, minimum)
FORCE_MODE_NS: Final = 25 * NS_PER_MS  # DWC2: a forced mode takes effect after at most 25 ms

GSNPSID_VALUE: Final = 0x4F54_330A
CID_RESET: Final = 0x0000_2300
GHWCFG_VALUES: Final = (0x0000_0000, 0x229F_E190, 0x03B8_D2E8, 0xE3F0_0030)

# Handshakes on the host port (what the host controller sees).
ACK: Final = "ACK"
NAK: Final = "NAK"
STALL: Final = "STALL"
NO_RESPONSE: Final = "NO_RESPONSE"  # no handshake at all: wrong address, not connected, babble
Handshake = Literal["ACK", "NAK", "STALL", "NO_RESPONSE"]

# Register offsets (FACTS §E.1-E.3)
GOTGCTL, GOTGINT, GAHBCFG, GUSBCFG, GRSTCTL = 0x000, 0x004, 0x008, 0x00C, 0x010
GINTSTS, GINTMSK, GRXSTSR, GRXSTSP, GRXFSIZ, DIEPTXF0 = 0x014, 0x018, 0x01C, 0x020, 0x024, 0x028
GCCFG = 0x038
DCFG, DCTL, DSTS = 0x800, 0x804, 0x808
PCGCCTL = 0xE00
HOST_REGS = range(0x400, 0x800)
DEVICE_REGS = range(0x800, 0xE00)
FIFO_WINDOWS = range(0x1000, 0x11000)  # 16 windows of 4 KiB: push TX FIFO n / pop the RX FIFO
IN_EP_BASE, OUT_EP_BASE, EP_STRIDE = 0x900, 0xB00, 0x20
# Registers whose writes can change the D+ pull-up (_pullup_on); GRSTCTL: a core soft reset
# resets DCTL. Mode and VBUS changes update the connection where they happen.
_CONNECTION_REGS: Final = frozenset((GOTGCTL, GCCFG, DCTL, GRSTCTL))

# GINTSTS / GINTMSK
CMOD, MMIS, OTGINT, SOF, RXFLVL = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4
GINAKEFF, BOUTNAKEFF = 1 << 6, 1 << 7
ESUSP, USBSUSP, USBRST, ENUMDNE = 1 << 10, 1 << 11, 1 << 12, 1 << 13
IEPINT, OEPINT, RSTDET, SRQINT, WKUINT = 1 << 18, 1 << 19, 1 << 23, 1 << 30, 1 << 31
# GOTGINT
SEDET = 1 << 2
# GAHBCFG
GINT, DMAEN, TXFELVL = 1 << 0, 1 << 5, 1 << 7
# GUSBCFG
FHMOD, FDMOD = 1 << 29, 1 << 30
# GCCFG
PWRDWN, BCDEN, DCDEN, VBDEN = 1 << 16, 1 << 17, 1 << 18, 1 << 21
# GOTGCTL
BVALOEN, BVALOVAL = 1 << 6, 1 << 7
# DCTL
RWUSIG, SDIS, GINSTS, GONSTS = 1 << 0, 1 << 1, 1 << 2, 1 << 3
SGINAK, CGINAK, SGONAK, CGONAK = 1 << 7, 1 << 8, 1 << 9, 1 << 10
# PCGCCTL
STPPCLK, GATEHCLK = 1 << 0, 1 << 1
# DIEPCTL / DOEPCTL
USBAEP, NAKSTS, EP_STALL = 1 << 15, 1 << 17, 1 << 21
CNAK, SNAK, SD0PID, SODDFRM, EPDIS, EPENA = 1 << 26, 1 << 27, 1 << 28, 1 << 29, 1 << 30, 1 << 31
# DIEPINT
XFRC, EPDISD, ITTXFE, INEPNE, TXFE, EP_NAK = 1 << 0, 1 << 1, 1 << 4, 1 << 6, 1 << 7, 1 << 13
# DOEPINT
STUP, OTEPDIS, B2BSTUP, BERR, STPKTRX = 1 << 3, 1 << 4, 1 << 6, 1 << 12, 1 << 15
# GRXSTSP.PKTSTS (FACTS §E.4)
PKTSTS_OUT_DATA, PKTSTS_OUT_DONE, PKTSTS_SETUP_DONE, PKTSTS_SETUP_DATA = 2, 3, 4, 6
DPID_DATA0, DPID_DATA1 = 0, 2
ENUMSPD_FS_48MHZ = 3
EP0_MPS_BYTES = (64, 32, 16, 8)  # DIEPCTL0.MPSIZ encoding

# GINTSTS: (bit, name, access); the level bits are computed when read.
_GINTSTS_FIELDS = (
    (0, "CMOD", RO), (1, "MMIS", W1C), (2, "OTGINT", RO), (3, "SOF", W1C), (4, "RXFLVL", RO),
    (5, "NPTXFE", RO), (6, "GINAKEFF", RO), (7, "BOUTNAKEFF", RO), (10, "ESUSP", W1C),
    (11, "USBSUSP", W1C), (12, "USBRST", W1C), (13, "ENUMDNE", W1C), (14, "ISOODRP", W1C),
    (15, "EOPF", W1C), (18, "IEPINT", RO), (19, "OEPINT", RO), (20, "IISOIXFR", W1C),
    (21, "IPXFR_INCOMPISOOUT", W1C), (22, "DATAFSUSP", W1C), (23, "RSTDET", W1C), (24, "HPRTINT", RO),
    (25, "HCINT", RO), (26, "PTXFE", RO), (27, "LPMINT", W1C), (28, "CIDSCHG", W1C),
    (29, "DISCINT", W1C), (30, "SRQINT", W1C), (31, "WKUINT", W1C),
)  # fmt: skip
_GINTSTS_LEVELS = CMOD | OTGINT | RXFLVL | GINAKEFF | BOUTNAKEFF | IEPINT | OEPINT
_DIEPINT_FIELDS = (
    (0, "XFRC"), (1, "EPDISD"), (2, "AHBERR"), (3, "TOC"), (4, "ITTXFE"), (5, "INEPNM"), (6, "INEPNE"),
    (8, "TXFIFOUDRN"), (9, "BNA"), (11, "PKTDRPSTS"), (12, "BERR"), (13, "NAK"),
)  # fmt: skip
_DOEPINT_FIELDS = (
    (0, "XFRC"), (1, "EPDISD"), (2, "AHBERR"), (3, "STUP"), (4, "OTEPDIS"), (5, "OTEPSPR"),
    (6, "B2BSTUP"), (8, "OUTPKTERR"), (9, "BNA"), (12, "BERR"), (13, "NAK"), (14, "NYET"),
    (15, "STPKTRX"),
)  # fmt: skip
_DIEPMSK_FIELDS = (
    (0, "XFRCM"), (1, "EPDM"), (2, "AHBERRM"), (3, "TOM"), (4, "ITTXFEMSK"), (5, "INEPNMM"),
    (6, "INEPNEM"), (8, "TXFURM"), (9, "BIM"), (13, "NAKM"),
)  # fmt: skip
_DOEPMSK_FIELDS = (
    (0, "XFRCM"), (1, "EPDM"), (2, "AHBERRM"), (3, "STUPM"), (4, "OTEPDM"), (5, "OTEPSPRM"),
    (6, "B2BSTUP"), (8, "OPEM"), (9, "BOIM"), (12, "BERRM"), (13, "NAKM"), (14, "NYETM"),
)  # fmt: skip


_EP_BITS = (1 << NUM_EPS) - 1  # one DAINT half
_ALL_EP_BITS = _EP_BITS << 16 | _EP_BITS
_EpList = tuple[tuple[int, Register], ...]  # (endpoint number, its DIEPINT or DOEPINT)


class OtgPortError(RuntimeError):
    """The host port was driven in a way the bus cannot do (e.g. a bus reset with no device)."""


def rx_status(pktsts: int, epnum: int, bcnt: int = 0, dpid: int = DPID_DATA0) -> int:
    """A GRXSTSP word: EPNUM[3:0], BCNT[14:4], DPID[16:15], PKTSTS[20:17]."""
    return (epnum & 0xF) | (bcnt & 0x7FF) << 4 | (dpid & 3) << 15 | (pktsts & 0xF) << 17


def _check_ep(ep: int) -> None:
    if not 0 <= ep <= 15:
        raise ValueError(f"USB endpoint numbers are 0..15, got {ep}")


class OtgFs(Peripheral):
    """The DWC2 core of USB2_OTG_FS with a host port (see the module docstring)."""

    size = 0x4_0000  # registers 0x000-0xE00, FIFO windows 0x1000-0x10FFF, debug RAM window beyond

    def __init__(self, host: Host, irq: int = IRQ, *, name: str | None = None, vbus: bool = True) -> None:
        super().__init__(host, name or "OTG_FS")
        self.irq = irq
        self._vbus = vbus  # the cable is plugged into a powered host port
        self._logged: set[str] = set()
        self._mode_timer: Timer | None = None
        self._reset_timer: Timer | None = None
        self._sof_timer: Timer | None = None
        self._in_toggle = [0] * NUM_EPS  # data toggle per endpoint (1 = DATA1 next)
        self._out_toggle = [0] * NUM_EPS
        self._define_global_registers()
        self._define_device_registers()
        self._define_endpoint_registers()
        # handles of the registers the per-access paths (GINTSTS, DAINT, the IRQ line) use
        r = self.regs
        self._r_gintsts, self._r_gintmsk, self._r_gahbcfg = r["GINTSTS"], r["GINTMSK"], r["GAHBCFG"]
        self._r_gotgint, self._r_dctl, self._r_daintmsk = r["GOTGINT"], r["DCTL"], r["DAINTMSK"]
        self._r_gotgctl, self._r_gccfg = r["GOTGCTL"], r["GCCFG"]
        self._r_diepmsk, self._r_doepmsk, self._r_diepempmsk = r["DIEPMSK"], r["DOEPMSK"], r["DIEPEMPMSK"]
        self._in_eps: list[_EpList | None] = [None] * (1 << NUM_EPS)
        self._out_eps: list[_EpList | None] = [None] * (1 << NUM_EPS)
        self._init_state()
        self._update_irq()

    # ------------------------------------------------------------------ register definitions
    def _define_global_registers(self) -> None:
        r = self.regs
        g = r.define(GOTGCTL, "GOTGCTL", reset=0x0000_0800, on_read=self._gotgctl_read)
        for lsb, name, acc in (
            (0, "SRQSCS", RO), (1, "SRQ", RW), (2, "VBVALOEN", RW), (3, "VBVALOVAL", RW),
            (4, "AVALOEN", RW), (5, "AVALOVAL", RW), (6, "BVALOEN", RW), (7, "BVALOVAL", RW),
            (8, "HNGSCS", RO), (9, "HNPRQ", RW), (10, "HSHNPEN", RW), (11, "DHNPEN", RW), (12, "EHEN", RW),
            (16, "CIDSTS", RO), (17, "DBCT", RO), (18, "ASVLD", RO), (19, "BSVLD", RO), (20, "OTGVER", RW),
            (21, "CURMOD", RO),
        ):  # fmt: skip
            g.field(lsb, 1, name, access=acc)
        g = r.define(GOTGINT, "GOTGINT")
        for lsb, name in ((2, "SEDET"), (8, "SRSSCHG"), (9, "HNSSCHG"), (17, "HNGDET"), (18, "ADTOCHG"),
                          (19, "DBCDNE"), (20, "IDCHNG")):  # fmt: skip
            g.field(lsb, 1, name, access=W1C)
        g = r.define(GAHBCFG, "GAHBCFG", on_write=self._gahbcfg_written)
        g.field(0, 1, "GINT").field(1, 4, "HBSTLEN").field(5, 1, "DMAEN").field(7, 1, "TXFELVL")
        g.field(8, 1, "PTXFELVL")
        g = r.define(GUSBCFG, "GUSBCFG", reset=0x0000_0A00, on_write=self._gusbcfg_written)
        g.field(0, 3, "TOCAL").field(6, 1, "PHYSEL").field(8, 1, "SRPCAP").field(9, 1, "HNPCAP")
        g.field(10, 4, "TRDT").field(15, 1, "PHYLPCS")
        for lsb, name in ((17, "ULPIFSLS"), (18, "ULPIAR"), (19, "ULPICSM"), (20, "ULPIEVBUSD"),
                          (21, "ULPIEVBUSI"), (22, "TSDPS"), (23, "PCCI"), (24, "PTCI"), (25, "ULPIIPD"),
                          (29, "FHMOD"), (30, "FDMOD")):  # fmt: skip
            g.field(lsb, 1, name)
        g = r.define(GRSTCTL, "GRSTCTL", reset=0x8000_0000)
        g.field(0, 1, "CSRST", access=SC, on_write=lambda _o, n: n and self._core_soft_reset())
        g.field(1, 1, "HSRST", access=SC)  # AHB-domain pipeline reset: nothing to model
        g.field(2, 1, "FCRST", access=SC)  # host frame counter: host mode only
        g.field(4, 1, "RXFFLSH", access=SC, on_write=lambda _o, n: n and self._flush_rx())
        g.field(5, 1, "TXFFLSH", access=SC, on_write=lambda _o, n: n and self._flush_tx_selected())
        g.field(6, 5, "TXFNUM").field(30, 1, "DMAREQ", access=RO).field(31, 1, "AHBIDL", access=RO)
        g = r.define(GINTSTS, "GINTSTS", reset=0x0400_0020, on_read=self._gintsts_read)
        for lsb, name, acc in _GINTSTS_FIELDS:
            g.field(lsb, 1, name, access=acc)
        g = r.define(GINTMSK, "GINTMSK")
        for lsb, name, _acc in _GINTSTS_FIELDS:
            if lsb:  # same positions as GINTSTS, "M" suffix (bit 0 reserved)
                g.field(lsb, 1, f"{name}M")
        for off, name, pop in ((GRXSTSR, "GRXSTSR", False), (GRXSTSP, "GRXSTSP", True)):
            g = r.define(off, name, on_read=partial(self._rx_status_read, pop))
            g.field(0, 4, "EPNUM", access=RO).field(4, 11, "BCNT", access=RO).field(15, 2, "DPID", access=RO)
            g.field(17, 4, "PKTSTS", access=RO).field(21, 4, "FRMNUM", access=RO)
        r.define(GRXFSIZ, "GRXFSIZ", reset=0x200, on_write=self._layout_written).field(0, 16, "RXFD")
        g = r.define(DIEPTXF0, "DIEPTXF0", reset=0x200, on_write=self._layout_written)
        g.field(0, 16, "TX0FSA").field(16, 16, "TX0FD")
        r.define(0x02C, "HNPTXSTS", reset=0x0008_0200, access=RO)  # host mode queue status
        g = r.define(GCCFG, "GCCFG", on_read=self._gccfg_read)
        for lsb, name, acc in ((0, "DCDET", RO), (1, "PDET", RO), (2, "SDET", RO), (3, "PS2DET", RO),
                               (16, "PWRDWN", RW), (17, "BCDEN", RW), (18, "DCDEN", RW), (19, "PDEN", RW),
                               (20, "SDEN", RW), (21, "VBDEN", RW)):  # fmt: skip
            g.field(lsb, 1, name, access=acc)
        r.define(0x03C, "CID", reset=CID_RESET, access=RW)
        r.define(0x040, "GSNPSID", reset=GSNPSID_VALUE, access=RO)
        for i, value in enumerate(GHWCFG_VALUES):
            r.define(0x044 + 4 * i, f"GHWCFG{i + 1}", reset=value, access=RO)
        g = r.define(0x054, "GLPMCFG")
        for lsb, width, name, acc in (
            (0, 1, "LPMEN", RW), (1, 1, "LPMACK", RW), (2, 4, "BESL", RO), (6, 1, "REMWAKE", RO),
            (7, 1, "L1SSEN", RW), (8, 4, "BESLTHRS", RW), (12, 1, "L1DSEN", RW), (13, 2, "LPMRST", RO),
            (15, 1, "SLPSTS", RO), (16, 1, "L1RSMOK", RO), (17, 4, "LPMCHIDX", RW), (21, 3, "LPMRCNT", RW),
            (24, 1, "SNDLPM", RW), (25, 3, "LPMRCNTSTS", RO), (28, 1, "ENBESL", RW),
        ):  # fmt: skip
            g.field(lsb, width, name, access=acc)
        # [U] DWC2: both fields reset to the data FIFO depth (GHWCFG3)
        g = r.define(0x05C, "GDFIFOCFG", reset=DFIFO_DEPTH_WORDS << 16 | DFIFO_DEPTH_WORDS)
        g.field(0, 16, "GDFIFOCFG").field(16, 16, "EPINFOBASEADDR")
        r.define(0x100, "HPTXFSIZ", reset=0x0200_0600).field(0, 16, "PTXSA").field(16, 16, "PTXFD")
        for n in range(1, 16):
            off = 0x104 + 4 * (n - 1)
            if n < NUM_EPS:
                g = r.define(
                    off, f"DIEPTXF{n}", reset=0x0200_0000 | 0x200 * (n + 1), on_write=self._layout_written
                )
                g.field(0, 16, "INEPTXSA").field(16, 16, "INEPTXFD")
            else:  # endpoint not implemented on H743 (HAL still writes 0 there): reserved
                r.define(off, f"DIEPTXF{n}_RESERVED", access=RO)

    def _define_device_registers(self) -> None:
        r = self.regs
        g = r.define(DCFG, "DCFG", reset=0x0220_0000, on_write=self._dcfg_written)
        g.field(0, 2, "DSPD").field(2, 1, "NZLSOHSK").field(4, 7, "DAD").field(11, 2, "PFIVL")
        g.field(14, 1, "XCVRDLY").field(15, 1, "ERRATIM").field(24, 2, "PERSCHIVL")
        g = r.define(DCTL, "DCTL", on_write=self._dctl_written)
        g.field(0, 1, "RWUSIG").field(1, 1, "SDIS").field(2, 1, "GINSTS", access=RO)
        g.field(3, 1, "GONSTS", access=RO).field(4, 3, "TCTL")
        for lsb, name in ((7, "SGINAK"), (8, "CGINAK"), (9, "SGONAK"), (10, "CGONAK")):
            g.field(lsb, 1, name, access=WO)
        g.field(11, 1, "POPRGDNE")
        g = r.define(DSTS, "DSTS", reset=0x0000_0010, on_read=self._dsts_read)
        g.field(0, 1, "SUSPSTS", access=RO).field(1, 2, "ENUMSPD", access=RO).field(3, 1, "EERR", access=RO)
        g.field(8, 14, "FNSOF", access=RO)
        for off, name, fields in ((0x810, "DIEPMSK", _DIEPMSK_FIELDS), (0x814, "DOEPMSK", _DOEPMSK_FIELDS),
                                  (0x844, "DINEP1MSK", _DIEPMSK_FIELDS),
                                  (0x884, "DOUTEP1MSK", _DOEPMSK_FIELDS)):  # fmt: skip
            g = r.define(off, name)
            for lsb, fname in fields:
                g.field(lsb, 1, fname)
        r.define(0x818, "DAINT", access=RO, on_read=lambda _s: self._daint())
        r.define(0x81C, "DAINTMSK").field(0, 16, "IEPM").field(16, 16, "OEPM")
        r.define(0x828, "DVBUSDIS", reset=0x17D7).field(0, 16, "VBUSDT")
        r.define(0x82C, "DVBUSPULSE", reset=0x05B8).field(0, 12, "DVBUSP")
        g = r.define(0x830, "DTHRCTL")
        g.field(0, 1, "NONISOTHREN").field(1, 1, "ISOTHREN").field(2, 9, "TXTHRLEN").field(16, 1, "RXTHREN")
        g.field(17, 9, "RXTHRLEN").field(27, 1, "ARPEN")
        r.define(0x834, "DIEPEMPMSK").field(0, 16, "INEPTXFEM")
        g = r.define(0x838, "DEACHINT", on_read=lambda _s: self._deachint())
        g.field(1, 1, "IEP1INT", access=RO).field(17, 1, "OEP1INT", access=RO)
        r.define(0x83C, "DEACHINTMSK").field(1, 1, "IEP1INTM").field(17, 1, "OEP1INTM")
        g = r.define(PCGCCTL, "PCGCCTL", on_read=self._pcgcctl_read)
        g.field(0, 1, "STPPCLK").field(1, 1, "GATEHCLK").field(4, 1, "PHYSUSP", access=RO)
        g.field(5, 1, "ENL1GTG").field(6, 1, "PHYSLEEP", access=RO).field(7, 1, "SUSP", access=RO)

    def _define_endpoint_registers(self) -> None:
        r = self.regs
        self._diepctl: list[Register] = []
        self._diepint: list[Register] = []
        self._dieptsiz: list[Register] = []
        self._doepctl: list[Register] = []
        self._doepint: list[Register] = []
        self._doeptsiz: list[Register] = []
        for n in range(NUM_EPS):
            ib, ob = IN_EP_BASE + EP_STRIDE * n, OUT_EP_BASE + EP_STRIDE * n
            # IN endpoint n
            c = r.define(
                ib, f"DIEPCTL{n}", reset=USBAEP if n == 0 else 0, on_write=partial(self._diepctl_written, n)
            )
            self._ep_ctl_common(c, n, is_in=True)
            self._diepctl.append(c)
            i = r.define(ib + 0x08, f"DIEPINT{n}", on_read=partial(self._diepint_read, n))
            for lsb, name in _DIEPINT_FIELDS:
                i.field(lsb, 1, name, access=W1C)
            i.field(7, 1, "TXFE", access=RO)
            self._diepint.append(i)
            t = r.define(ib + 0x10, f"DIEPTSIZ{n}")
            if n == 0:
                t.field(0, 7, "XFRSIZ").field(19, 2, "PKTCNT")
            else:
                t.field(0, 19, "XFRSIZ").field(19, 10, "PKTCNT").field(29, 2, "MULCNT")
            self._dieptsiz.append(t)
            r.define(ib + 0x14, f"DIEPDMA{n}", access=RW)
            r.define(ib + 0x18, f"DTXFSTS{n}", access=RO, on_read=partial(self._dtxfsts_read, n))
            # OUT endpoint n
            c = r.define(
                ob, f"DOEPCTL{n}", reset=USBAEP if n == 0 else 0, on_write=partial(self._doepctl_written, n)
            )
            self._ep_ctl_common(c, n, is_in=False)
            self._doepctl.append(c)
            i = r.define(ob + 0x08, f"DOEPINT{n}")
            for lsb, name in _DOEPINT_FIELDS:
                i.field(lsb, 1, name, access=W1C)
            self._doepint.append(i)
            t = r.define(ob + 0x10, f"DOEPTSIZ{n}")
            if n == 0:
                t.field(0, 7, "XFRSIZ").field(19, 1, "PKTCNT").field(29, 2, "STUPCNT")
            else:
                t.field(0, 19, "XFRSIZ").field(19, 10, "PKTCNT").field(29, 2, "RXDPID_STUPCNT")
            self._doeptsiz.append(t)
            r.define(ob + 0x14, f"DOEPDMA{n}", access=RW)
        # Registers of endpoints 9..15 do not exist on H743; HAL's loops still touch some: reserved.
        for n in range(NUM_EPS, 16):
            for base, kind in ((IN_EP_BASE, "DIEP"), (OUT_EP_BASE, "DOEP")):
                for off, name in ((0x00, "CTL"), (0x08, "INT"), (0x10, "TSIZ")):
                    r.define(base + EP_STRIDE * n + off, f"{kind}{name}{n}_RESERVED", access=RO)

    def _ep_ctl_common(self, c: Register, n: int, *, is_in: bool) -> None:
        """Fields of DIEPCTLn / DOEPCTLn; EP0's control endpoint differs (FACTS §E.3)."""
        if n == 0:
            if is_in:
                c.field(0, 2, "MPSIZ")
            else:  # DOEPCTL0.MPSIZ mirrors DIEPCTL0.MPSIZ, read-only
                c.field(0, 2, "MPSIZ", access=RO, on_read=lambda: self._diepctl[0].value & 3)
            c.field(15, 1, "USBAEP", access=RO).field(17, 1, "NAKSTS", access=RO)
            c.field(18, 2, "EPTYP", access=RO)
            if not is_in:
                c.field(20, 1, "SNPM")
            c.field(21, 1, "STALL", access=W1S)  # EP0: set by software, cleared by the core on SETUP
        else:
            toggles = self._in_toggle if is_in else self._out_toggle
            c.field(0, 11, "MPSIZ").field(15, 1, "USBAEP")
            c.field(16, 1, "EONUM_DPID", access=RO, on_read=lambda: toggles[n])
            c.field(17, 1, "NAKSTS", access=RO).field(18, 2, "EPTYP")
            if not is_in:
                c.field(20, 1, "SNPM")
            c.field(21, 1, "STALL")
        if is_in:
            c.field(22, 4, "TXFNUM")
        c.field(26, 1, "CNAK", access=WO).field(27, 1, "SNAK", access=WO)
        c.field(28, 1, "SD0PID_SEVNFRM", access=WO).field(29, 1, "SODDFRM", access=WO)
        if n == 0 and not is_in:
            c.field(30, 1, "EPDIS", access=RO)  # control OUT endpoint 0 cannot be disabled
        else:
            c.field(30, 1, "EPDIS", access=W1S)
        c.field(31, 1, "EPENA", access=W1S)

    # ------------------------------------------------------------------ state
    def _init_state(self) -> None:
        for timer in (self._mode_timer, self._reset_timer, self._sof_timer):
            if timer is not None:
                timer.cancel()
        self._mode_timer = self._reset_timer = self._sof_timer = None
        self._mode_host = False
        self._mode_target = False  # the mode GUSBCFG.FHMOD/FDMOD ask for
        self._rx: deque[tuple[int, bool]] = deque()  # (word, is_status): status words and data share it
        self._rx_statuses = 0
        self._tx: list[deque[int]] = [deque() for _ in range(NUM_EPS)]
        self._in_toggle[:] = [0] * NUM_EPS
        self._out_toggle[:] = [0] * NUM_EPS
        self._out_done_pending = [False] * NUM_EPS
        self._layout_checked = False
        self._enum_speed = 0
        self._setups_in_row = 0
        # host port
        self._connected = False
        self._port_enabled = False
        self._in_reset = False
        self._suspended = False
        self._host_addr = 0
        self._dev_addr = 0
        self._set_address_to: int | None = None  # SET_ADDRESS in flight: the host's next address
        self._sof_epoch: int | None = None
        self._sof_epoch_frame = 0
        self._sof_seen = 0
        self._frame = 0
        self._irq_level = False

    def reset(self) -> None:
        """System reset: registers to reset values, FIFOs empty; the host sees the device go away."""
        self.regs.reset()
        self._init_state()
        self.host.set_irq(self.irq, False)

    def _log_once(self, key: str, message: str, level: int = WARNING) -> None:
        if key not in self._logged:
            self._logged.add(key)
            self.host.log(level, f"{self.name}: {message}")

    # ------------------------------------------------------------------ bus access
    def read(self, offset: int, size: int) -> int:
        # With GINTSTS.SOF already set a read cannot raise it: skip asking for the time. The frame
        # count (_sof_seen) catches up at the next full sync, which every path that can clear
        # SOF (a bus write, a reset) does first, so SOF timing does not change.
        changed = self._sync_sof() if not self._r_gintsts.value & SOF else False
        if offset in FIFO_WINDOWS:
            value = self._fifo_read(offset, size)
            if changed:  # popping a data word changes no interrupt input (RXFLVL counts statuses)
                self._update_irq()
            return value
        if offset >= FIFO_WINDOWS.stop:
            self._log_once(
                f"dbg{offset:x}", f"read of reserved/debug FIFO RAM area +{offset:#x} not modelled -> 0"
            )
            return 0
        if self._mode_mismatch(offset):
            return 0
        value = self.regs.read(offset, size)
        if changed or offset & ~3 == GRXSTSP:
            self._update_irq()
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        self._sync_sof()
        if offset in FIFO_WINDOWS:
            self._fifo_write(offset, size, value)
        elif offset >= FIFO_WINDOWS.stop:
            self._log_once(f"dbg{offset:x}", f"write to reserved/debug FIFO RAM area +{offset:#x} ignored")
        elif not self._mode_mismatch(offset):
            self.regs.write(offset, size, value)
            if offset & ~3 in _CONNECTION_REGS:  # the only writes that move the pull-up inputs
                self._update_connection()
        self._update_irq()

    def _mode_mismatch(self, offset: int) -> bool:
        """Host registers in device mode (and device registers in host mode) raise MMIS."""
        if offset in HOST_REGS:
            if not self._mode_host:
                self._gintsts().set_bits(MMIS)
                self._log_once(
                    f"mmis{offset:x}", f"host-mode register +{offset:#05x} accessed in device mode (MMIS)"
                )
            else:
                self._log_once(f"host{offset:x}", f"host-mode register +{offset:#05x} not modelled")
            return True
        if offset in DEVICE_REGS and self._mode_host:
            self._gintsts().set_bits(MMIS)
        return False

    def _gintsts(self) -> Register:
        return self._r_gintsts

    # ------------------------------------------------------------------ FIFOs
    def _rx_capacity(self) -> int:
        return max(0, min(self.regs["GRXFSIZ"].value & 0xFFFF, FIFO_RAM_WORDS))

    def _tx_region(self, fifo: int) -> tuple[int, int]:
        """(start, depth) in words of TX FIFO ``fifo`` as programmed."""
        v = self.regs["DIEPTXF0" if fifo == 0 else f"DIEPTXF{fifo}"].value
        return v & 0xFFFF, v >> 16

    def _tx_capacity(self, fifo: int) -> int:
        start, depth = self._tx_region(fifo)
        return max(0, min(depth, FIFO_RAM_WORDS - start))

    def _tx_free(self, fifo: int) -> int:
        return max(0, self._tx_capacity(fifo) - len(self._tx[fifo]))

    def _fifo_of(self, ep: int) -> int:
        return (self._diepctl[ep].value >> 22) & 0xF

    def _layout_written(self, _old: int, _new: int) -> None:
        self._layout_checked = False

    def _check_layout(self) -> None:
        """Log (once per problem) a FIFO layout the RAM cannot hold, when the core first uses it."""
        if self._layout_checked:
            return
        self._layout_checked = True
        regions = [("RX", 0, self.regs["GRXFSIZ"].value & 0xFFFF)]
        regions += [(f"TX{k}", *self._tx_region(k)) for k in range(NUM_EPS) if self._tx_region(k)[1]]
        end = max(start + depth for _n, start, depth in regions)
        if end > FIFO_RAM_WORDS:
            self._log_once(
                f"ram{end}", f"FIFO layout ends at word {end}, beyond the {FIFO_RAM_WORDS}-word FIFO RAM"
            )
        elif end > DFIFO_DEPTH_WORDS:
            self._log_once(
                f"dfifo{end}", f"FIFO layout ends at word {end}; GHWCFG3 reports {DFIFO_DEPTH_WORDS}"
            )
        for i, (na, sa, da) in enumerate(regions):
            for nb, sb, db in regions[i + 1 :]:
                if sa < sb + db and sb < sa + da:
                    self._log_once(
                        f"ovl{na}{nb}{sa}{sb}", f"FIFO {na} [{sa},+{da}) overlaps {nb} [{sb},+{db})"
                    )

    def _fifo_write(self, offset: int, size: int, value: int) -> None:
        ep = (offset - FIFO_WINDOWS.start) >> 12
        if size != 4:
            self._log_once(f"txsize{size}", f"{size}-byte write to TX FIFO window {ep}: pushed as one word")
        if ep >= NUM_EPS:
            self._log_once(
                f"txwin{ep}", f"write to FIFO window {ep}: no IN endpoint {ep} on this core, dropped"
            )
            return
        fifo = self._fifo_of(ep)
        if fifo >= NUM_EPS:
            self._log_once(f"txfnum{fifo}", f"DIEPCTL{ep}.TXFNUM={fifo}: no such TX FIFO, word dropped")
            return
        self._check_layout()
        if self._tx_free(fifo) == 0:
            self._log_once(f"txfull{fifo}", f"TX FIFO {fifo} overflow: word {value:#010x} lost")
            return
        self._tx[fifo].append(value & 0xFFFF_FFFF)

    def _fifo_read(self, offset: int, size: int) -> int:
        if size != 4:
            self._log_once(f"rxsize{size}", f"{size}-byte read of the RX FIFO pops a whole word")
        if not self._rx or self._rx[0][1]:
            self._log_once("rxempty", "RX FIFO data read with no popped packet data pending -> 0")
            return 0
        word = self._rx.popleft()[0]
        shift = 8 * (offset & 3)
        return (word >> shift) & ((1 << (8 * size)) - 1)

    def _rx_free(self) -> int:
        return max(0, self._rx_capacity() - len(self._rx))

    def _rx_push(self, status: int, payload: bytes = b"") -> None:
        self._rx.append((status, True))
        self._rx_statuses += 1
        if payload:
            nwords = (len(payload) + 3) // 4
            words = struct.unpack(f"<{nwords}I", payload.ljust(4 * nwords, b"\0"))
            self._rx.extend(zip(words, repeat(False)))

    def _rx_status_read(self, pop: bool, _stored: int) -> int:
        dropped = 0
        while self._rx and not self._rx[0][1]:  # the firmware left data words unread
            if not pop:
                return self._rx[0][0]  # the head of the FIFO is what the status read sees
            self._rx.popleft()
            dropped += 1
        if dropped:
            self._log_once(
                "rxskip", f"GRXSTSP popped with {dropped} unread data word(s) of the last packet; dropped"
            )
        if not self._rx:
            return 0
        status = self._rx[0][0]
        if pop:
            self._rx.popleft()
            self._rx_statuses -= 1
            self._status_popped(status)
        return status

    def _status_popped(self, status: int) -> None:
        """Popping a 'complete' entry is what raises STUP / XFRC (FACTS §E.4)."""
        ep, pktsts = status & 0xF, (status >> 17) & 0xF
        if ep >= NUM_EPS:
            return
        if pktsts == PKTSTS_SETUP_DONE:
            self._doepint[ep].set_bits(STUP)
        elif pktsts == PKTSTS_OUT_DONE:
            self._out_done_pending[ep] = False
            self._doepctl[ep].clear_bits(EPENA)
            self._doepctl[ep].set_bits(NAKSTS)
            self._doepint[ep].set_bits(XFRC)

    def _flush_rx(self) -> None:
        self._rx.clear()
        self._rx_statuses = 0
        self._out_done_pending = [False] * NUM_EPS

    def _flush_tx_selected(self) -> None:
        num = (self.regs["GRSTCTL"].value >> 6) & 0x1F
        for k in range(NUM_EPS) if num == 0x10 else [num]:
            if k < NUM_EPS:
                self._tx[k].clear()

    # ------------------------------------------------------------------ register callbacks
    def _gotgctl_read(self, stored: int) -> int:
        dyn = 1 << 16 | (self._session_valid() << 19) | (self._mode_host << 21)  # CIDSTS=1: B-device
        return (stored & ~(0xF << 16 | 1 << 21)) | dyn

    def _gahbcfg_written(self, _old: int, new: int) -> None:
        if new & DMAEN:
            self._log_once("dma", "GAHBCFG.DMAEN set: DMA is not modelled, the core stays in slave mode")

    def _gusbcfg_written(self, _old: int, new: int) -> None:
        want_host = bool(new & FHMOD) and not new & FDMOD
        if want_host == self._mode_target:
            return  # other GUSBCFG fields changed: a pending mode change keeps its time
        self._mode_target = want_host
        if self._mode_timer is not None:
            self._mode_timer.cancel()
            self._mode_timer = None
        if want_host != self._mode_host:
            self._mode_timer = self.host.schedule(
                FORCE_MODE_NS, partial(self._apply_mode, want_host), "otg-mode"
            )

    def _apply_mode(self, host_mode: bool) -> None:
        self._mode_timer = None
        self._mode_host = host_mode
        if host_mode:
            self._log_once(
                "hostmode", "host mode selected: host-mode registers and the host port are not modelled"
            )
        self._update_connection()
        self._update_irq()

    def _core_soft_reset(self) -> None:
        keep = {"GOTGCTL", "GAHBCFG", "GUSBCFG", "GRSTCTL", "GCCFG", "CID", "GRXFSIZ", "DIEPTXF0", "HPTXFSIZ",
                "GLPMCFG", "GDFIFOCFG", "PCGCCTL", "DCFG"} | {f"DIEPTXF{n}" for n in range(1, NUM_EPS)}  # fmt: skip
        for reg in self.regs:
            if reg.name not in keep:
                reg.do_reset()
        dcfg = self.regs["DCFG"]
        dcfg.value = (dcfg.reset & ~3) | (dcfg.value & 3)  # DSPD survives (RM)
        self._flush_rx()
        for fifo in self._tx:
            fifo.clear()
        self._in_toggle[:] = [0] * NUM_EPS
        self._out_toggle[:] = [0] * NUM_EPS
        self._enum_speed = 0
        self._setups_in_row = 0
        self._dev_addr = 0  # the core's USB state is gone; the host still believes its address

    def _gintsts_levels(self) -> int:
        return self._core_levels() | self._endpoint_levels()

    def _core_levels(self) -> int:
        """The level bits of GINTSTS but IEPINT/OEPINT."""
        v = CMOD if self._mode_host else 0
        if self._r_gotgint.value:
            v |= OTGINT
        if self._rx_statuses:
            v |= RXFLVL
        dctl = self._r_dctl.value
        if dctl & GINSTS:
            v |= GINAKEFF
        if dctl & GONSTS:
            v |= BOUTNAKEFF
        return v

    def _endpoint_levels(self) -> int:
        """IEPINT/OEPINT: the endpoint scan, the costly part of GINTSTS."""
        v = 0
        daintmsk = self._r_daintmsk.value
        pending = self._daint(daintmsk) & daintmsk
        if pending & 0xFFFF:
            v |= IEPINT
        if pending >> 16:
            v |= OEPINT
        return v

    def _gintsts_read(self, stored: int) -> int:
        return (stored & ~_GINTSTS_LEVELS) | self._gintsts_levels()

    def _gccfg_read(self, stored: int) -> int:
        dcdet = self._vbus and stored & BCDEN and stored & DCDEN  # data pins contacted
        return (stored & ~0xF) | (1 if dcdet else 0)

    def _dcfg_written(self, _old: int, new: int) -> None:
        if self._set_address_to is None:
            self._dev_addr = (new >> 4) & 0x7F  # otherwise it applies after the SET_ADDRESS status stage

    def _dctl_written(self, _old: int, new: int) -> None:
        dctl = self.regs["DCTL"]
        if new & SGINAK:
            dctl.set_bits(GINSTS)
        if new & CGINAK:
            dctl.clear_bits(GINSTS)
        if new & SGONAK:
            dctl.set_bits(GONSTS)
        if new & CGONAK:
            dctl.clear_bits(GONSTS)
        dctl.clear_bits(SGINAK | CGINAK | SGONAK | CGONAK)
        if new & RWUSIG and self._suspended:
            self._log_once(
                "rwusig", "remote wakeup signalling is not modelled (the host resumes with host_resume)"
            )

    def _dsts_read(self, stored: int) -> int:
        dyn = int(self._suspended) | self._enum_speed << 1 | self._fnsof() << 8
        return (stored & ~(0x3FFF << 8 | 0xF)) | dyn

    def _pcgcctl_read(self, stored: int) -> int:
        return (stored & ~(1 << 4)) | (stored & STPPCLK) << 4  # PHY suspended while its clock is stopped

    def _ep_mps(self, ep: int, is_in: bool) -> int:
        if ep == 0:
            return EP0_MPS_BYTES[self._diepctl[0].value & 3]
        return (self._diepctl[ep] if is_in else self._doepctl[ep]).value & 0x7FF

    def _txfe(self, ep: int) -> bool:
        if not self._diepctl[ep].value & USBAEP and ep != 0:
            return False
        fifo = self._fifo_of(ep)
        if fifo >= NUM_EPS:
            return False
        used = len(self._tx[fifo])
        if self.regs["GAHBCFG"].value & TXFELVL:
            return used == 0
        return 2 * used <= self._tx_capacity(fifo)

    def _diepint_value(self, ep: int) -> int:
        return self._diepint[ep].value | (TXFE if self._txfe(ep) else 0)

    def _diepint_read(self, ep: int, stored: int) -> int:
        return (stored & ~TXFE) | (TXFE if self._txfe(ep) else 0)

    def _dtxfsts_read(self, ep: int, _stored: int) -> int:
        fifo = self._fifo_of(ep)
        return self._tx_free(fifo) if fifo < NUM_EPS else 0

    def _in_ep_pending(self, ep: int, mask: int) -> bool:
        if self._r_diepempmsk.value >> ep & 1:
            mask |= TXFE
        if self._diepint[ep].value & mask:
            return True
        # TXFE is computed from the FIFO: only when it is unmasked (this runs on every IRQ update)
        return bool(mask & TXFE) and self._txfe(ep)

    def _daint(self, select: int = _ALL_EP_BITS) -> int:
        """DAINT; only the bits in ``select`` are computed (the others read 0)."""
        # Same result as _in_ep_pending per endpoint, with the masks read once; the TX FIFO
        # level (TXFE) is only looked at for endpoints that DIEPEMPMSK selects.
        v = 0
        in_sel = select & _EP_BITS
        if in_sel:
            diepmsk, empmsk = self._r_diepmsk.value, self._r_diepempmsk.value
            for n, reg in self._in_eps[in_sel] or self._endpoints(in_sel, self._diepint, self._in_eps):
                if reg.value & diepmsk or (empmsk >> n & 1 and (reg.value & TXFE or self._txfe(n))):
                    v |= 1 << n
        out_sel = (select >> 16) & _EP_BITS
        if out_sel:
            doepmsk = self._r_doepmsk.value
            for n, reg in self._out_eps[out_sel] or self._endpoints(out_sel, self._doepint, self._out_eps):
                if reg.value & doepmsk:
                    v |= 1 << (16 + n)
        return v

    @staticmethod
    def _endpoints(selection: int, regs: list[Register], memo: list[_EpList | None]) -> _EpList:
        """(n, regs[n]) for the endpoints whose bit is set in ``selection``, memoised in
        ``memo[selection]``: GINTSTS only needs the endpoints DAINTMSK unmasks, usually few."""
        found = tuple((n, regs[n]) for n in range(NUM_EPS) if selection >> n & 1)
        memo[selection] = found
        return found

    def _deachint(self) -> int:
        v = 2 if self._in_ep_pending(1, self.regs["DINEP1MSK"].value) else 0
        if self._doepint[1].value & self.regs["DOUTEP1MSK"].value:
            v |= 1 << 17
        return v

    def _diepctl_written(self, ep: int, old: int, new: int) -> None:
        c = self._diepctl[ep]
        if new & SNAK:
            c.set_bits(NAKSTS)
            self._diepint[ep].set_bits(INEPNE)
        if new & CNAK:
            c.clear_bits(NAKSTS)
        self._ctl_common_written(ep, c, new, self._in_toggle, self._diepint[ep])

    def _doepctl_written(self, ep: int, old: int, new: int) -> None:
        c = self._doepctl[ep]
        if new & SNAK:
            c.set_bits(NAKSTS)
        if new & CNAK:
            c.clear_bits(NAKSTS)
        self._ctl_common_written(ep, c, new, self._out_toggle, self._doepint[ep])

    def _ctl_common_written(self, ep: int, c: Register, new: int, toggles: list[int], eint: Register) -> None:
        if ep and new & SD0PID:
            toggles[ep] = 0
        if ep and new & SODDFRM:
            toggles[ep] = 1
        if new & EPDIS:
            if new & EPENA:  # disabling takes effect at once; the firmware waits for EPDISD
                c.clear_bits(EPENA)
                eint.set_bits(EPDISD)
            c.clear_bits(EPDIS)
        c.clear_bits(CNAK | SNAK | SD0PID | SODDFRM)

    # ------------------------------------------------------------------ interrupt line
    def _gintsts_value(self) -> int:
        return (self._gintsts().value & ~_GINTSTS_LEVELS) | self._gintsts_levels()

    def _update_irq(self) -> None:
        # Runs after most accesses: stop at the first term that decides the level (the terms
        # are side-effect free), the endpoint scan last.
        gintmsk = self._r_gintmsk.value
        level = bool(
            self._r_gahbcfg.value & GINT
            and (
                self._r_gintsts.value & ~_GINTSTS_LEVELS & gintmsk
                or self._core_levels() & gintmsk
                or (gintmsk & (IEPINT | OEPINT) and self._endpoint_levels() & gintmsk)
            )
        )
        self._arm_sof_timer(gintmsk)
        if level != self._irq_level:
            self._irq_level = level
            self.host.set_irq(self.irq, level)

    @property
    def irq_level(self) -> bool:
        """The level this model drives on its interrupt line."""
        return self._irq_level

    # ------------------------------------------------------------------ SOF (derived from virtual time)
    def _fnsof(self) -> int:
        if self._sof_epoch is None:
            return self._frame
        return (self._sof_epoch_frame + (self.host.now_ns() - self._sof_epoch) // FRAME_NS) & 0x7FF

    def _sync_sof(self) -> bool:
        """Raise GINTSTS.SOF for frames that started since last looked; True when it was raised."""
        if self._sof_epoch is None:
            return False
        frames = (self.host.now_ns() - self._sof_epoch) // FRAME_NS
        if frames <= self._sof_seen:
            return False
        self._sof_seen = frames
        gintsts = self._gintsts()
        raised = not gintsts.value & SOF
        gintsts.set_bits(SOF)
        return raised

    def _start_sof(self) -> None:
        self._sof_epoch = self.host.now_ns()
        self._sof_epoch_frame = self._frame
        self._sof_seen = 0

    def _stop_sof(self) -> None:
        if self._sof_epoch is not None:
            self._sync_sof()
            self._frame = self._fnsof()
            self._sof_epoch = None
        if self._sof_timer is not None:
            self._sof_timer.cancel()
            self._sof_timer = None

    def _arm_sof_timer(self, gintmsk: int) -> None:
        """Wake at the next frame only when a SOF interrupt could be delivered then."""
        want = (
            self._sof_epoch is not None
            and gintmsk & SOF
            and self._r_gahbcfg.value & GINT
            and not self._r_gintsts.value & SOF
        )
        if not want:
            if self._sof_timer is not None:
                self._sof_timer.cancel()
                self._sof_timer = None
            return
        if self._sof_timer is None or not self._sof_timer.pending:
            assert self._sof_epoch is not None
            due = self._sof_epoch + (self._sof_seen + 1) * FRAME_NS
            self._sof_timer = self.host.schedule(max(0, due - self.host.now_ns()), self._sof_tick, "otg-sof")

    def _sof_tick(self) -> None:
        self._sof_timer = None
        self._sync_sof()
        self._update_irq()

    # ------------------------------------------------------------------ connection
    def _session_valid(self) -> bool:
        otg = self._r_gotgctl.value
        if otg & BVALOEN:
            return bool(otg & BVALOVAL)
        return bool(self._r_gccfg.value & VBDEN) and self._vbus

    def _pullup_on(self) -> bool:  # after every write (_update_connection)
        return (
            not self._mode_host
            and bool(self._r_gccfg.value & PWRDWN)
            and not self._r_dctl.value & SDIS
            and self._session_valid()
        )

    def _update_connection(self) -> None:
        connected = self.host_connected()
        if self._connected and not connected:
            self._host_forgets_device()
        self._connected = connected

    def _host_forgets_device(self) -> None:
        self._port_enabled = False
        self._in_reset = False
        if self._reset_timer is not None:
            self._reset_timer.cancel()
            self._reset_timer = None
        self._stop_sof()
        self._host_addr = 0
        self._set_address_to = None

    # ------------------------------------------------------------------ host port: state
    def host_connected(self) -> bool:
        """The host sees the device: cable plugged (VBUS) and the D+ pull-up on."""
        return self._vbus and self._pullup_on()

    def host_port_enabled(self) -> bool:
        """Connected, bus reset done since the connection: transactions can be addressed to it."""
        return self._port_enabled and self.host_connected()

    @property
    def host_address(self) -> int:
        """The address the host uses for this device (0 after a bus reset)."""
        return self._host_addr

    @property
    def device_address(self) -> int:
        """The address the core currently answers to."""
        return self._dev_addr

    @property
    def vbus(self) -> bool:
        return self._vbus

    @property
    def suspended(self) -> bool:
        return self._suspended

    # ------------------------------------------------------------------ host port: bus events
    def host_bus_reset(self) -> None:
        """Start a bus reset: USBRST now, ENUMDNE (full speed) BUS_RESET_NS later."""
        if not self.host_connected():
            raise OtgPortError("bus reset on a port with no device connected")
        self._sync_sof()
        if self._suspended:
            # [U] bus activity ends the suspend: firmware that gated the PHY clock in its suspend
            # handler (CubeMX's usbd_conf.c does) ungates it on WKUINT; RSTDET flags the reset.
            self._gintsts().set_bits(RSTDET | WKUINT)
        self._stop_sof()
        self._suspended = False
        self._port_enabled = False
        self._in_reset = True
        self._host_addr = 0
        self._set_address_to = None
        self._dev_addr = (self.regs["DCFG"].value >> 4) & 0x7F
        self._setups_in_row = 0
        for n in range(1, NUM_EPS):  # DWC2: USBAEP of every endpoint but EP0 is cleared by a USB reset
            self._diepctl[n].clear_bits(USBAEP)
            self._doepctl[n].clear_bits(USBAEP)
        self._in_toggle[:] = [0] * NUM_EPS
        self._out_toggle[:] = [0] * NUM_EPS
        self._gintsts().set_bits(USBRST)
        if self._reset_timer is not None:
            self._reset_timer.cancel()
        self._reset_timer = self.host.schedule(BUS_RESET_NS, self._bus_reset_done, "otg-bus-reset")
        self._update_irq()

    def host_reset_in_progress(self) -> bool:
        return self._in_reset

    def _bus_reset_done(self) -> None:
        self._reset_timer = None
        self._in_reset = False
        if not self.host_connected():
            return
        self._enum_speed = ENUMSPD_FS_48MHZ
        self._gintsts().set_bits(ENUMDNE)
        self._port_enabled = True
        self._start_sof()
        self._update_irq()

    def host_suspend(self) -> None:
        """The host stops sending SOFs: early suspend, then USB suspend (DSTS.SUSPSTS=1)."""
        if not self.host_port_enabled():
            raise OtgPortError("suspend on a port that is not enabled")
        self._stop_sof()
        self._suspended = True
        self._gintsts().set_bits(ESUSP | USBSUSP)
        self._update_irq()

    def host_resume(self) -> None:
        """The host resumes the bus: WKUINT, SUSPSTS=0, SOFs again."""
        if not self._suspended:
            raise OtgPortError("resume on a port that is not suspended")
        self._suspended = False
        self._gintsts().set_bits(WKUINT)
        if self.host_port_enabled():
            self._start_sof()
        self._update_irq()

    def host_detach(self) -> None:
        """Unplug the cable: VBUS drops, the host forgets the device, the bus goes idle."""
        was_enabled = self.host_port_enabled()
        self._sync_sof()
        self._vbus = False
        if self.regs["GCCFG"].value & VBDEN:
            self.regs["GOTGINT"].set_bits(SEDET)  # VBUS sensing sees the session end
        self._update_connection()
        if was_enabled:  # no more SOFs: the core detects an idle (suspended) bus
            self._gintsts().set_bits(ESUSP | USBSUSP)
            self._suspended = True
        self._update_irq()

    def host_attach(self) -> None:
        """Plug the cable: VBUS present (the host must then reset the port)."""
        if self._vbus:
            return
        self._vbus = True  # the bus stays idle (a suspended core stays so) until the host resets it
        if self.regs["GCCFG"].value & VBDEN:
            self._gintsts().set_bits(SRQINT)  # new session detected
        self._update_connection()
        self._update_irq()

    # ------------------------------------------------------------------ host port: transactions
    def _addressed(self, addr: int | None) -> bool:
        """The core answers the token: enabled port, running clocks, its own address."""
        if not self.host_port_enabled() or self._suspended or self._in_reset:
            return False
        if self.regs["PCGCCTL"].value & (STPPCLK | GATEHCLK):
            return False
        return (self._host_addr if addr is None else addr) == self._dev_addr

    def _ep_active(self, ep: int, ctl: list[Register]) -> bool:
        return 0 <= ep < NUM_EPS and bool(ctl[ep].value & USBAEP or ep == 0)

    def host_setup(self, packet: bytes, *, addr: int | None = None) -> Handshake:
        """A SETUP transaction to EP0 (8 bytes). DWC2 never NAKs a SETUP."""
        packet = bytes(packet)
        if len(packet) != 8:
            raise ValueError(f"a SETUP packet is 8 bytes, got {len(packet)}")
        self._sync_sof()
        if not self._addressed(addr):
            return NO_RESPONSE
        self._check_layout()
        if self._rx_free() < 4:  # status + 2 data words + 'SETUP complete'
            self._log_once("setupdrop", "SETUP dropped: no room in the RX FIFO (the host will retry)")
            return NO_RESPONSE
        tsiz, stupcnt = self._doeptsiz[0], (self._doeptsiz[0].value >> 29) & 3
        if stupcnt == 0 and self._setups_in_row:
            self._doepint[0].set_bits(B2BSTUP)
        tsiz.value = (tsiz.value & ~(3 << 29)) | max(0, stupcnt - 1) << 29
        for c in (self._diepctl[0], self._doepctl[0]):
            c.clear_bits(EP_STALL)
            c.set_bits(NAKSTS)
        self._in_toggle[0] = self._out_toggle[0] = 1  # data and status stages start with DATA1
        self._doepint[0].set_bits(STPKTRX)
        self._rx_push(rx_status(PKTSTS_SETUP_DATA, 0, 8, DPID_DATA0), packet)
        self._rx_push(rx_status(PKTSTS_SETUP_DONE, 0))
        self._setups_in_row += 1
        bm_request_type, b_request = packet[0], packet[1]
        self._set_address_to = packet[2] & 0x7F if bm_request_type == 0x00 and b_request == 5 else None
        self._update_irq()
        return ACK

    def host_out(self, ep: int, data: bytes, *, addr: int | None = None) -> Handshake:
        """An OUT transaction carrying ``data`` (at most the endpoint's max packet size)."""
        data = bytes(data)
        _check_ep(ep)
        self._sync_sof()
        if not self._addressed(addr) or not self._ep_active(ep, self._doepctl):
            return NO_RESPONSE
        if ep == 0:
            self._setups_in_row = 0
        ctl, eint, tsiz = self._doepctl[ep], self._doepint[ep], self._doeptsiz[ep]
        result: Handshake
        mps = self._ep_mps(ep, is_in=False)
        if ctl.value & EP_STALL:
            result = STALL
        elif len(data) > mps:
            eint.set_bits(BERR)  # babble: the core does not hand-shake
            self._log_once(
                f"babble{ep}", f"OUT packet of {len(data)} bytes on EP{ep} exceeds its {mps}-byte MPS"
            )
            result = NO_RESPONSE
        elif not ctl.value & EPENA:
            eint.set_bits(OTEPDIS | EP_NAK)
            result = NAK
        elif ctl.value & NAKSTS or self.regs["DCTL"].value & GONSTS or self._out_done_pending[ep]:
            eint.set_bits(EP_NAK)
            result = NAK
        else:
            result = self._accept_out(ep, data, mps, tsiz)
        self._update_irq()
        return result

    def _accept_out(self, ep: int, data: bytes, mps: int, tsiz: Register) -> Handshake:
        pktcnt = tsiz["PKTCNT"]
        if pktcnt == 0:
            self._log_once(f"outpkt0{ep}", f"OUT EP{ep} enabled with DOEPTSIZ.PKTCNT=0: NAKed")
            return NAK
        completes = pktcnt == 1 or len(data) < mps
        self._check_layout()
        if self._rx_free() < 1 + (len(data) + 3) // 4 + (1 if completes else 0):
            self._doepint[ep].set_bits(EP_NAK)
            return NAK
        dpid = DPID_DATA1 if self._out_toggle[ep] else DPID_DATA0
        self._rx_push(rx_status(PKTSTS_OUT_DATA, ep, len(data), dpid), data)
        tsiz["XFRSIZ"] = max(0, tsiz["XFRSIZ"] - len(data))
        tsiz["PKTCNT"] = pktcnt - 1
        self._out_toggle[ep] ^= 1
        if completes:
            self._rx_push(rx_status(PKTSTS_OUT_DONE, ep))
            self._out_done_pending[ep] = True
        return ACK

    def host_in(self, ep: int, *, addr: int | None = None) -> bytes | Handshake:
        """An IN transaction: the packet's bytes (ACKed by the host), or NAK / STALL / NO_RESPONSE."""
        _check_ep(ep)
        self._sync_sof()
        if not self._addressed(addr) or not self._ep_active(ep, self._diepctl):
            return NO_RESPONSE
        if ep == 0:
            self._setups_in_row = 0
        ctl, eint, tsiz = self._diepctl[ep], self._diepint[ep], self._dieptsiz[ep]
        result: bytes | Handshake
        if ctl.value & EP_STALL:
            result = STALL
        elif not ctl.value & EPENA or ctl.value & NAKSTS or self.regs["DCTL"].value & GINSTS:
            eint.set_bits(EP_NAK)
            result = NAK
        else:
            result = self._send_in(ep, ctl, eint, tsiz)
        self._update_irq()
        return result

    def _send_in(self, ep: int, ctl: Register, eint: Register, tsiz: Register) -> bytes | Handshake:
        pktcnt = tsiz["PKTCNT"]
        if pktcnt == 0:
            self._log_once(f"inpkt0{ep}", f"IN EP{ep} enabled with DIEPTSIZ.PKTCNT=0: NAKed")
            return NAK
        size = min(self._ep_mps(ep, is_in=True), tsiz["XFRSIZ"])
        words = (size + 3) // 4
        fifo = self._fifo_of(ep)
        if fifo >= NUM_EPS or len(self._tx[fifo]) < words:
            eint.set_bits(ITTXFE | EP_NAK)  # IN token with the packet not (fully) in the FIFO
            return NAK
        raw = b"".join(self._tx[fifo].popleft().to_bytes(4, "little") for _ in range(words))
        tsiz["XFRSIZ"] = tsiz["XFRSIZ"] - size
        tsiz["PKTCNT"] = pktcnt - 1
        self._in_toggle[ep] ^= 1
        if pktcnt == 1:
            ctl.clear_bits(EPENA)
            eint.set_bits(XFRC)
        if ep == 0 and size == 0 and self._set_address_to is not None:
            # status stage of SET_ADDRESS done: both ends move to the new address
            self._host_addr = self._set_address_to
            self._set_address_to = None
            self._dev_addr = (self.regs["DCFG"].value >> 4) & 0x7F
        return raw[:size]

    # ------------------------------------------------------------------ inspection
    def rx_fifo_words(self) -> int:
        """Words (status and data) in the RX FIFO."""
        return len(self._rx)

    def tx_fifo_words(self, fifo: int) -> int:
        """Words queued in TX FIFO ``fifo``."""
        return len(self._tx[fifo])
