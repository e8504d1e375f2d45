"""ControlTransferRunner against the OTG_FS model driven by a HAL-like Python "firmware".

``HalPcdDevice`` below is test scaffolding, not product: it drives the model's registers the way
ST's LL/HAL PCD driver (stm32h7xx_ll_usb.c / hal_pcd.c, non-DMA, embedded FS PHY, FACTS.md §E.5)
and the USB device library's EP0 state machine do, with the IRQ handler called whenever the OTG_FS
interrupt line is high while the board "runs".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest

from h743sim.usb.control import ControlTransferRunner
from h743sim.usb.link import Disconnected, Setup, Stall, Timeout, UsbError, UsbLink
from peripherals.host import NS_PER_MS, NS_PER_US
from peripherals.otg_fs import OtgFs
from peripherals.standalone_host import StandaloneHost

# ---- registers (FACTS §E) ----------------------------------------------------------------------
GOTGCTL, GAHBCFG, GUSBCFG, GRSTCTL, GINTSTS, GINTMSK = 0x000, 0x008, 0x00C, 0x010, 0x014, 0x018
GRXSTSP, GRXFSIZ, DIEPTXF0, GCCFG, GSNPSID = 0x020, 0x024, 0x028, 0x038, 0x040
DCFG, DCTL, DSTS, DIEPMSK, DOEPMSK = 0x800, 0x804, 0x808, 0x810, 0x814
DAINT, DAINTMSK, DIEPEMPMSK = 0x818, 0x81C, 0x834
PCGCCTL = 0xE00


def DIEPTXF(n: int) -> int:  # CMSIS DIEPTXF[n-1]
    return 0x104 + 4 * (n - 1)


def DIEPCTL(n: int) -> int:
    return 0x900 + 0x20 * n


def DIEPINT(n: int) -> int:
    return 0x908 + 0x20 * n


def DIEPTSIZ(n: int) -> int:
    return 0x910 + 0x20 * n


def DTXFSTS(n: int) -> int:
    return 0x918 + 0x20 * n


def DOEPCTL(n: int) -> int:
    return 0xB00 + 0x20 * n


def DOEPINT(n: int) -> int:
    return 0xB08 + 0x20 * n


def DOEPTSIZ(n: int) -> int:
    return 0xB10 + 0x20 * n


def DFIFO(n: int) -> int:
    return 0x1000 + 0x1000 * n


GAHBCFG_GINT = 1 << 0
GUSBCFG_PHYSEL, GUSBCFG_TRDT, GUSBCFG_FHMOD, GUSBCFG_FDMOD = 1 << 6, 0xF << 10, 1 << 29, 1 << 30
GRSTCTL_CSRST, GRSTCTL_RXFFLSH, GRSTCTL_TXFFLSH, GRSTCTL_AHBIDL = 1 << 0, 1 << 4, 1 << 5, 1 << 31
GINTSTS_CMOD, GINTSTS_MMIS, GINTSTS_SOF, GINTSTS_RXFLVL = 1 << 0, 1 << 1, 1 << 3, 1 << 4
GINTSTS_USBSUSP, GINTSTS_USBRST, GINTSTS_ENUMDNE = 1 << 11, 1 << 12, 1 << 13
GINTSTS_IEPINT, GINTSTS_OEPINT, GINTSTS_WKUINT = 1 << 18, 1 << 19, 1 << 31
GINTMSK_DEVICE = (1 << 11) | (1 << 12) | (1 << 13) | (1 << 18) | (1 << 19) | (1 << 20) | (1 << 21) | (1 << 31)
GCCFG_PWRDWN, GCCFG_VBDEN = 1 << 16, 1 << 21
GOTGCTL_BVALOEN, GOTGCTL_BVALOVAL = 1 << 6, 1 << 7
DCTL_RWUSIG, DCTL_SDIS, DCTL_CGINAK = 1 << 0, 1 << 1, 1 << 8
DCFG_DAD = 0x7F << 4
PCGCCTL_STOPCLK, PCGCCTL_GATECLK = 1 << 0, 1 << 1
EPCTL_MPSIZ, EPCTL_USBAEP, EPCTL_STALL = 0x7FF, 1 << 15, 1 << 21
EPCTL_CNAK, EPCTL_SNAK, EPCTL_EPDIS, EPCTL_EPENA = 1 << 26, 1 << 27, 1 << 30, 1 << 31
TSIZ_XFRSIZ, TSIZ_PKTCNT, DOEPTSIZ_STUPCNT = 0x7FFFF, 0x3FF << 19, 3 << 29
DIEPINT_XFRC, DIEPINT_EPDISD, DIEPINT_TOC, DIEPINT_ITTXFE = 1 << 0, 1 << 1, 1 << 3, 1 << 4
DIEPINT_INEPNE, DIEPINT_TXFE = 1 << 6, 1 << 7
DOEPINT_XFRC, DOEPINT_EPDISD, DOEPINT_STUP, DOEPINT_OTEPDIS = 1 << 0, 1 << 1, 1 << 3, 1 << 4
DOEPINT_OTEPSPR, DOEPINT_NAK, DOEPINT_STPKTRX = 1 << 5, 1 << 13, 1 << 15
DOEPMSK_RESET = (1 << 3) | (1 << 0) | (1 << 1) | (1 << 5) | (1 << 13)  # STUPM XFRCM EPDM OTEPSPRM NAKM
DIEPMSK_RESET = (1 << 3) | (1 << 0) | (1 << 1)  # TOM XFRCM EPDM
STS_DATA_UPDT, STS_SETUP_UPDT = 2, 6
USB_OTG_CORE_ID_300A = 0x4F54_300A
DEV_ENDPOINTS = 9
EP0_MPS = 64

# ---- the device this firmware presents -------------------------------------------------------
DEVICE_DESCRIPTOR = bytes(
    [18, 1, 0x00, 0x02, 0, 0, 0, EP0_MPS, 0x83, 0x04, 0x11, 0xDF, 0x00, 0x02, 1, 2, 3, 1]
)
CONFIG_DESCRIPTOR = bytes([9, 2, 18, 0, 1, 1, 0, 0xC0, 50]) + bytes([9, 4, 0, 0, 0, 0xFE, 1, 2, 0])


def string_descriptor(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return bytes([2 + len(raw), 3]) + raw


STRINGS = {
    0: bytes([4, 3, 0x09, 0x04]),
    1: string_descriptor("h743sim test"),
    2: string_descriptor("EP0 scaffolding device, a product string longer than one packet"),  # > 64 B
    3: string_descriptor("0123456789ABCDEF0123456789ABCDE"),  # exactly 64 bytes: needs a ZLP
}
VENDOR_OUT, VENDOR_IN, VENDOR_HANG = 0x01, 0x02, 0x03


@dataclass
class Ep:
    """PCD_EPTypeDef: what HAL keeps per endpoint."""

    maxpacket: int = EP0_MPS
    xfer_buff: bytearray = field(default_factory=bytearray)
    xfer_pos: int = 0  # xfer_buff pointer, as an offset
    xfer_len: int = 0
    xfer_count: int = 0
    xfer_size: int = 0
    total_length: int = 0
    rem_length: int = 0


class HalPcdDevice:
    """HAL PCD + USBD-core EP0 behaviour on the model's registers (test scaffolding)."""

    IDLE, SETUP, DATA_IN, DATA_OUT, STATUS_IN, STATUS_OUT = range(6)

    def __init__(self, otg: OtgFs, delay_ms, *, write_dad: bool = True) -> None:
        self.otg = otg
        self.delay_ms = delay_ms
        self.write_dad = write_dad
        self.setup = bytes(8)
        self.in_ep = [Ep() for _ in range(DEV_ENDPOINTS)]
        self.out_ep = [Ep() for _ in range(DEV_ENDPOINTS)]
        self.ep0_state = self.IDLE
        self.ep0_data_len = 0
        self.dev_state = "default"
        self.dev_address = 0
        self.dev_config = 0
        self.vendor_data = b""
        self.events: list[str] = []
        self.speed: int | None = None

    # -- register access ---------------------------------------------------------------------
    def rd(self, off: int) -> int:
        return self.otg.read(off, 4)

    def wr(self, off: int, value: int) -> None:
        self.otg.write(off, 4, value & 0xFFFF_FFFF)

    def setb(self, off: int, bits: int) -> None:
        self.wr(off, self.rd(off) | bits)

    def clrb(self, off: int, bits: int) -> None:
        self.wr(off, self.rd(off) & ~bits)

    def _poll(self, cond, what: str) -> None:
        for _ in range(200_000):
            if cond():
                return
        raise AssertionError(f"HAL timeout waiting for {what}")

    # -- LL (stm32h7xx_ll_usb.c) ---------------------------------------------------------------
    def core_reset(self) -> None:
        self._poll(lambda: self.rd(GRSTCTL) & GRSTCTL_AHBIDL, "AHBIDL")
        self.setb(GRSTCTL, GRSTCTL_CSRST)
        self._poll(lambda: not self.rd(GRSTCTL) & GRSTCTL_CSRST, "CSRST")

    def flush_tx(self, num: int) -> None:
        self._poll(lambda: self.rd(GRSTCTL) & GRSTCTL_AHBIDL, "AHBIDL")
        self.wr(GRSTCTL, GRSTCTL_TXFFLSH | num << 6)
        self._poll(lambda: not self.rd(GRSTCTL) & GRSTCTL_TXFFLSH, "TXFFLSH")

    def flush_rx(self) -> None:
        self._poll(lambda: self.rd(GRSTCTL) & GRSTCTL_AHBIDL, "AHBIDL")
        self.wr(GRSTCTL, GRSTCTL_RXFFLSH)
        self._poll(lambda: not self.rd(GRSTCTL) & GRSTCTL_RXFFLSH, "RXFFLSH")

    def set_current_mode_device(self) -> None:
        self.clrb(GUSBCFG, GUSBCFG_FHMOD | GUSBCFG_FDMOD)
        self.setb(GUSBCFG, GUSBCFG_FDMOD)
        for _ in range(50):
            self.delay_ms(1)
            if self.rd(GINTSTS) & GINTSTS_CMOD == 0:
                return
        raise AssertionError("device mode never selected")

    def dev_init(self) -> None:
        for i in range(15):
            self.wr(DIEPTXF(i + 1), 0)
        self.setb(DCTL, DCTL_SDIS)  # VBUS sensing disabled
        self.clrb(GCCFG, GCCFG_VBDEN)
        self.setb(GOTGCTL, GOTGCTL_BVALOEN)
        self.setb(GOTGCTL, GOTGCTL_BVALOVAL)
        self.wr(PCGCCTL, 0)
        self.setb(DCFG, 3)  # USB_OTG_SPEED_FULL
        self.flush_tx(0x10)
        self.flush_rx()
        self.wr(DIEPMSK, 0)
        self.wr(DOEPMSK, 0)
        self.wr(DAINTMSK, 0)
        for i in range(DEV_ENDPOINTS):
            for ctl, tsiz, eint in (
                (DIEPCTL(i), DIEPTSIZ(i), DIEPINT(i)),
                (DOEPCTL(i), DOEPTSIZ(i), DOEPINT(i)),
            ):
                if self.rd(ctl) & EPCTL_EPENA:
                    self.wr(ctl, EPCTL_SNAK if i == 0 else EPCTL_EPDIS | EPCTL_SNAK)
                else:
                    self.wr(ctl, 0)
                self.wr(tsiz, 0)
                self.wr(eint, 0xFB7F)
        self.clrb(DIEPMSK, 1 << 8)
        self.wr(GINTMSK, 0)
        self.wr(GINTSTS, 0xBFFF_FFFF)
        self.setb(GINTMSK, GINTSTS_RXFLVL)
        self.setb(GINTMSK, GINTMSK_DEVICE)

    def dev_connect(self) -> None:
        self.clrb(PCGCCTL, PCGCCTL_STOPCLK | PCGCCTL_GATECLK)
        self.clrb(DCTL, DCTL_SDIS)

    def dev_disconnect(self) -> None:
        self.clrb(PCGCCTL, PCGCCTL_STOPCLK | PCGCCTL_GATECLK)
        self.setb(DCTL, DCTL_SDIS)

    def set_tx_fifo(self, fifo: int, size: int) -> None:  # HAL_PCDEx_SetTxFiFo
        offset = self.rd(GRXFSIZ)
        if fifo == 0:
            self.wr(DIEPTXF0, size << 16 | offset)
            return
        offset += self.rd(DIEPTXF0) >> 16
        for i in range(1, fifo):
            offset += self.rd(DIEPTXF(i)) >> 16
        self.wr(DIEPTXF(fifo), size << 16 | offset)

    def ep0_out_start(self) -> None:
        if self.rd(GSNPSID) > USB_OTG_CORE_ID_300A and self.rd(DOEPCTL(0)) & EPCTL_EPENA:
            return
        self.wr(DOEPTSIZ(0), 0)
        self.setb(DOEPTSIZ(0), 1 << 19)
        self.setb(DOEPTSIZ(0), 3 * 8)
        self.setb(DOEPTSIZ(0), DOEPTSIZ_STUPCNT)

    def ep_start_xfer(self, epnum: int, is_in: bool) -> None:
        if is_in:
            ep = self.in_ep[epnum]
            if ep.xfer_len == 0:
                self.clrb(DIEPTSIZ(epnum), TSIZ_PKTCNT)
                self.setb(DIEPTSIZ(epnum), 1 << 19)
                self.clrb(DIEPTSIZ(epnum), TSIZ_XFRSIZ)
            else:
                self.clrb(DIEPTSIZ(epnum), TSIZ_XFRSIZ)
                self.clrb(DIEPTSIZ(epnum), TSIZ_PKTCNT)
                if epnum == 0:
                    ep.xfer_len = min(ep.xfer_len, ep.maxpacket)
                    self.setb(DIEPTSIZ(epnum), 1 << 19)
                else:
                    self.setb(DIEPTSIZ(epnum), ((ep.xfer_len + ep.maxpacket - 1) // ep.maxpacket) << 19)
                self.setb(DIEPTSIZ(epnum), ep.xfer_len)
            self.setb(DIEPCTL(epnum), EPCTL_CNAK | EPCTL_EPENA)
            if ep.xfer_len > 0:
                self.setb(DIEPEMPMSK, 1 << epnum)
        else:
            ep = self.out_ep[epnum]
            self.clrb(DOEPTSIZ(epnum), TSIZ_XFRSIZ)
            self.clrb(DOEPTSIZ(epnum), TSIZ_PKTCNT)
            if ep.xfer_len > 0:
                ep.xfer_len = ep.maxpacket
            ep.xfer_size = ep.maxpacket
            self.setb(DOEPTSIZ(epnum), ep.xfer_size)
            self.setb(DOEPTSIZ(epnum), 1 << 19)
            self.setb(DOEPCTL(epnum), EPCTL_CNAK | EPCTL_EPENA)

    def write_packet(self, data: bytes, epnum: int) -> None:
        padded = data.ljust((len(data) + 3) // 4 * 4, b"\0")
        for i in range(0, len(padded), 4):
            self.wr(DFIFO(epnum), int.from_bytes(padded[i : i + 4], "little"))

    def read_packet(self, length: int) -> bytes:
        out = b"".join(self.rd(DFIFO(0)).to_bytes(4, "little") for _ in range((length + 3) // 4))
        return out[:length]

    def ep_set_stall(self, ep_addr: int) -> None:  # HAL_PCD_EP_SetStall
        num = ep_addr & 0x7F
        if ep_addr & 0x80:
            if not self.rd(DIEPCTL(num)) & EPCTL_EPENA and num:
                self.clrb(DIEPCTL(num), EPCTL_EPDIS)
            self.setb(DIEPCTL(num), EPCTL_STALL)
        else:
            if not self.rd(DOEPCTL(num)) & EPCTL_EPENA and num:
                self.clrb(DOEPCTL(num), EPCTL_EPDIS)
            self.setb(DOEPCTL(num), EPCTL_STALL)
        if num == 0:
            self.ep0_out_start()

    # -- HAL_PCD_Init / HAL_PCD_Start ----------------------------------------------------------
    def init(self) -> None:
        self.clrb(GAHBCFG, GAHBCFG_GINT)
        self.setb(GUSBCFG, GUSBCFG_PHYSEL)  # USB_CoreInit, embedded FS PHY
        self.core_reset()
        self.setb(GCCFG, GCCFG_PWRDWN)
        self.set_current_mode_device()
        self.dev_init()
        self.dev_disconnect()
        self.wr(GRXFSIZ, 0x80)  # USBD_LL_Init: HAL_PCDEx_SetRxFiFo / SetTxFiFo
        self.set_tx_fifo(0, 0x40)
        self.set_tx_fifo(1, 0x80)
        self.setb(GAHBCFG, GAHBCFG_GINT)  # HAL_PCD_Start
        self.dev_connect()

    # -- HAL_PCD_IRQHandler --------------------------------------------------------------------
    def irq_handler(self) -> None:
        if self.rd(GINTSTS) & GINTSTS_CMOD:
            return
        if self.rd(GINTSTS) & self.rd(GINTMSK) == 0:
            return
        flags = lambda: self.rd(GINTSTS) & self.rd(GINTMSK)  # noqa: E731
        _frame = (self.rd(DSTS) >> 8) & 0x3FFF
        if flags() & GINTSTS_MMIS:
            self.wr(GINTSTS, GINTSTS_MMIS)
        if flags() & GINTSTS_RXFLVL:
            self.clrb(GINTMSK, GINTSTS_RXFLVL)
            reg = self.rd(GRXSTSP)
            ep = self.out_ep[reg & 0xF]
            pktsts, bcnt = (reg >> 17) & 0xF, (reg >> 4) & 0x7FF
            if pktsts == STS_DATA_UPDT and bcnt:
                data = self.read_packet(bcnt)
                ep.xfer_buff[ep.xfer_pos : ep.xfer_pos + bcnt] = data
                ep.xfer_pos += bcnt
                ep.xfer_count += bcnt
            elif pktsts == STS_SETUP_UPDT:
                self.setup = self.read_packet(8)
                ep.xfer_count += bcnt
            self.setb(GINTMSK, GINTSTS_RXFLVL)
        if flags() & GINTSTS_OEPINT:
            ep_intr = (self.rd(DAINT) & self.rd(DAINTMSK)) >> 16
            epnum = 0
            while ep_intr:
                if ep_intr & 1:
                    epint = self.rd(DOEPINT(epnum)) & self.rd(DOEPMSK)
                    if epint & DOEPINT_XFRC:
                        self.wr(DOEPINT(epnum), DOEPINT_XFRC)
                        if epnum == 0 and self.out_ep[0].xfer_len == 0:
                            self.ep0_out_start()  # ZLP: prepare EP0 for the next SETUP
                        self.data_out_stage(epnum)
                    if epint & DOEPINT_STUP:
                        self.wr(DOEPINT(epnum), DOEPINT_STUP)
                        if (
                            self.rd(GSNPSID) > USB_OTG_CORE_ID_300A
                            and self.rd(DOEPINT(epnum)) & DOEPINT_STPKTRX
                        ):
                            self.wr(DOEPINT(epnum), DOEPINT_STPKTRX)
                        self.setup_stage()
                    for bit in (DOEPINT_OTEPDIS, DOEPINT_EPDISD, DOEPINT_OTEPSPR, DOEPINT_NAK):
                        if epint & bit:
                            self.wr(DOEPINT(epnum), bit)
                epnum += 1
                ep_intr >>= 1
        if flags() & GINTSTS_IEPINT:
            ep_intr = self.rd(DAINT) & self.rd(DAINTMSK) & 0xFFFF
            epnum = 0
            while ep_intr:
                if ep_intr & 1:
                    msk = self.rd(DIEPMSK) | ((self.rd(DIEPEMPMSK) >> epnum) & 1) << 7
                    epint = self.rd(DIEPINT(epnum)) & msk
                    if epint & DIEPINT_XFRC:
                        self.clrb(DIEPEMPMSK, 1 << epnum)
                        self.wr(DIEPINT(epnum), DIEPINT_XFRC)
                        self.data_in_stage(epnum)
                    for bit in (DIEPINT_TOC, DIEPINT_ITTXFE, DIEPINT_INEPNE):
                        if epint & bit:
                            self.wr(DIEPINT(epnum), bit)
                    if epint & DIEPINT_EPDISD:
                        self.flush_tx(epnum)
                        self.wr(DIEPINT(epnum), DIEPINT_EPDISD)
                    if epint & DIEPINT_TXFE:
                        self.write_empty_tx_fifo(epnum)
                epnum += 1
                ep_intr >>= 1
        if flags() & GINTSTS_WKUINT:
            self.clrb(DCTL, DCTL_RWUSIG)
            self.wr(GINTSTS, GINTSTS_WKUINT)
        if flags() & GINTSTS_USBSUSP:
            self.events.append("suspend")
            self.wr(GINTSTS, GINTSTS_USBSUSP)
        if flags() & GINTSTS_USBRST:
            self.clrb(DCTL, DCTL_RWUSIG)
            self.flush_tx(0x10)
            for i in range(DEV_ENDPOINTS):
                self.wr(DIEPINT(i), 0xFB7F)
                self.clrb(DIEPCTL(i), EPCTL_STALL)
                self.wr(DOEPINT(i), 0xFB7F)
                self.clrb(DOEPCTL(i), EPCTL_STALL)
                self.setb(DOEPCTL(i), EPCTL_SNAK)
            self.setb(DAINTMSK, 0x10001)
            self.setb(DOEPMSK, DOEPMSK_RESET)
            self.setb(DIEPMSK, DIEPMSK_RESET)
            self.clrb(DCFG, DCFG_DAD)
            self.ep0_out_start()
            self.wr(GINTSTS, GINTSTS_USBRST)
            self.events.append("reset")
        if flags() & GINTSTS_ENUMDNE:
            self.clrb(DIEPCTL(0), EPCTL_MPSIZ)  # USB_ActivateSetup
            self.setb(DCTL, DCTL_CGINAK)
            self.speed = (self.rd(DSTS) >> 1) & 3
            self.clrb(GUSBCFG, GUSBCFG_TRDT)
            self.setb(GUSBCFG, 6 << 10)
            self.usbd_reset()
            self.wr(GINTSTS, GINTSTS_ENUMDNE)
            self.events.append("enumdone")
        if flags() & GINTSTS_SOF:
            self.wr(GINTSTS, GINTSTS_SOF)

    def write_empty_tx_fifo(self, epnum: int) -> None:  # PCD_WriteEmptyTxFifo
        ep = self.in_ep[epnum]
        if ep.xfer_count > ep.xfer_len:
            return
        length = min(ep.xfer_len - ep.xfer_count, ep.maxpacket)
        while (
            self.rd(DTXFSTS(epnum)) & 0xFFFF >= (length + 3) // 4
            and ep.xfer_count < ep.xfer_len
            and ep.xfer_len != 0
        ):
            length = min(ep.xfer_len - ep.xfer_count, ep.maxpacket)
            self.write_packet(bytes(ep.xfer_buff[ep.xfer_pos : ep.xfer_pos + length]), epnum)
            ep.xfer_pos += length
            ep.xfer_count += length
        if ep.xfer_len <= ep.xfer_count:
            self.clrb(DIEPEMPMSK, 1 << epnum)

    # -- HAL_PCD_EP_Transmit / Receive ---------------------------------------------------------
    def transmit(self, epnum: int, buf: bytes, length: int, pos: int = 0) -> None:
        ep = self.in_ep[epnum]
        ep.xfer_buff, ep.xfer_pos, ep.xfer_len, ep.xfer_count = bytearray(buf), pos, length, 0
        self.ep_start_xfer(epnum, is_in=True)

    def receive(self, epnum: int, buf: bytearray | None, length: int, pos: int = 0) -> None:
        ep = self.out_ep[epnum]
        ep.xfer_buff = buf if buf is not None else bytearray()
        ep.xfer_pos, ep.xfer_len, ep.xfer_count = pos, length, 0
        self.ep_start_xfer(epnum, is_in=False)

    # -- USBD core (usbd_core.c / usbd_ctlreq.c / usbd_ioreq.c), EP0 only ------------------------
    def usbd_reset(self) -> None:
        self.in_ep[0].maxpacket = self.out_ep[0].maxpacket = EP0_MPS  # USBD_LL_OpenEP(0x00/0x80)
        self.setb(DAINTMSK, 1 | 1 << 16)
        self.dev_state, self.ep0_state, self.dev_config = "default", self.IDLE, 0

    def ctl_send_data(self, data: bytes) -> None:
        self.ep0_state = self.DATA_IN
        self.in_ep[0].total_length = self.in_ep[0].rem_length = len(data)
        self.transmit(0, data, len(data))

    def ctl_send_status(self) -> None:
        self.ep0_state = self.STATUS_IN
        self.transmit(0, b"", 0)

    def ctl_receive_status(self) -> None:
        self.ep0_state = self.STATUS_OUT
        self.receive(0, None, 0)

    def ctl_error(self) -> None:
        self.ep_set_stall(0x80)
        self.ep_set_stall(0x00)

    def setup_stage(self) -> None:
        bm, req, value, index, length = struct.unpack("<BBHHH", self.setup)
        self.ep0_state, self.ep0_data_len = self.SETUP, length
        self.events.append(f"setup {bm:02x}:{req:02x}")
        kind, recipient = (bm >> 5) & 3, bm & 0x1F
        if kind == 2 and recipient == 0:
            self.vendor_request(bm, req, length)
        elif kind == 0 and recipient == 0:
            self.standard_request(req, value, index, length)
        else:
            self.ctl_error()

    def standard_request(self, req: int, value: int, index: int, length: int) -> None:
        if req == 6:  # GET_DESCRIPTOR
            kind, idx = value >> 8, value & 0xFF
            desc = {1: DEVICE_DESCRIPTOR, 2: CONFIG_DESCRIPTOR}.get(kind) if kind != 3 else STRINGS.get(idx)
            if desc is None or length == 0:
                self.ctl_error()
            else:
                self.ctl_send_data(desc[:length])
        elif req == 5 and index == 0 and length == 0 and value < 128:  # SET_ADDRESS
            if self.dev_state == "configured":
                self.ctl_error()
                return
            self.dev_address = value & 0x7F
            if self.write_dad:  # USBD_LL_SetUSBAddress: at once, before the status stage
                self.clrb(DCFG, DCFG_DAD)
                self.setb(DCFG, self.dev_address << 4)
            self.ctl_send_status()
            self.dev_state = "addressed" if self.dev_address else "default"
        elif req == 9 and (value & 0xFF) <= 1 and self.dev_state in ("addressed", "configured"):
            self.dev_config = value & 0xFF
            self.dev_state = "configured" if self.dev_config else "addressed"
            self.ctl_send_status()
        elif req == 8 and length == 1:  # GET_CONFIGURATION
            self.ctl_send_data(bytes([self.dev_config]))
        else:
            self.ctl_error()

    def vendor_request(self, bm: int, req: int, length: int) -> None:
        if req == VENDOR_OUT and not bm & 0x80 and length:
            self.ep0_state = self.DATA_OUT  # USBD_CtlPrepareRx
            self.out_ep[0].total_length = self.out_ep[0].rem_length = length
            self.rx_buffer = bytearray(length)
            self.receive(0, self.rx_buffer, length)
        elif req == VENDOR_IN and bm & 0x80 and length:
            self.ctl_send_data(self.vendor_data[:length])
        elif req == VENDOR_HANG:
            self.events.append("busy")  # never answers: the host must time out
        else:
            self.ctl_error()

    def data_out_stage(self, epnum: int) -> None:
        if epnum != 0:
            return
        ep = self.out_ep[0]
        if self.ep0_state == self.DATA_OUT:
            if ep.rem_length > ep.maxpacket:
                ep.rem_length -= ep.maxpacket
                self.receive(0, self.rx_buffer, min(ep.rem_length, ep.maxpacket), ep.xfer_pos)
            else:
                self.vendor_data = bytes(self.rx_buffer)  # class EP0_RxReady
                self.ctl_send_status()
        elif self.ep0_state == self.STATUS_OUT:
            self.ep0_state = self.IDLE

    def data_in_stage(self, epnum: int) -> None:
        if epnum != 0:
            return
        ep = self.in_ep[0]
        if self.ep0_state == self.DATA_IN:
            if ep.rem_length > ep.maxpacket:
                ep.rem_length -= ep.maxpacket
                self.transmit(0, ep.xfer_buff, ep.rem_length, ep.xfer_pos)  # USBD_CtlContinueSendData
                self.receive(0, None, 0)  # prepare EP0 OUT for a premature end of the transfer
            elif (
                ep.maxpacket == ep.rem_length
                and ep.total_length >= ep.maxpacket
                and (ep.total_length < self.ep0_data_len)
            ):
                self.transmit(0, b"", 0)  # last packet was a full one: send a ZLP
                self.ep0_data_len = 0
                self.receive(0, None, 0)
            else:
                self.ep_set_stall(0x80)
                self.ctl_receive_status()
        elif self.ep0_state == self.STATUS_IN:
            self.ep0_state = self.IDLE


class Bench:
    """A board without a CPU: StandaloneHost time plus the Python driver as 'firmware'."""

    def __init__(self, **device_options) -> None:
        self.host = StandaloneHost()
        self.otg = OtgFs(self.host)
        self.dev = HalPcdDevice(self.otg, self.delay_ms, **device_options)
        self.runner = ControlTransferRunner(self.otg, self.run_for, self.host.now_ns)
        self.irq_calls = 0

    def delay_ms(self, ms: int) -> None:
        self.run_for(ms * NS_PER_MS)

    def service_irq(self) -> None:
        for _ in range(10_000):
            if not self.host.irqs.get(101, False):
                return
            self.irq_calls += 1
            self.dev.irq_handler()
        raise AssertionError("OTG_FS interrupt line stuck high")

    def run_for(self, ns: int) -> None:
        end = self.host.now_ns() + ns
        while True:
            self.service_irq()
            if self.host.now_ns() >= end:
                return
            nxt = self.host.events.next_time()
            self.host.events.advance_to(end if nxt is None else min(end, nxt))

    def get_descriptor(self, kind: int, index: int, length: int) -> bytes:
        return self.runner.control_transfer(
            Setup(0x80, 6, kind << 8 | index, 0x0409 if kind == 3 else 0, length)
        )


@pytest.fixture
def bench() -> Bench:
    b = Bench()
    b.dev.init()
    return b


def test_runner_is_a_usb_link(bench: Bench) -> None:
    link: UsbLink = bench.runner
    assert link.is_attached()


def test_full_enumeration_against_a_hal_driven_core(bench: Bench) -> None:
    b = bench
    assert b.runner.is_attached()
    b.runner.bus_reset()
    assert b.dev.events[:2] == ["reset", "enumdone"] and b.dev.speed == 3
    assert b.otg.host_port_enabled()

    # Linux-style first read: 64 bytes asked, the 18-byte descriptor returned (short packet)
    assert b.get_descriptor(1, 0, 64) == DEVICE_DESCRIPTOR
    assert b.otg.read(DIEPCTL(0), 4) & EPCTL_STALL  # USBD stalls IN EP0 after the data stage

    b.runner.control_transfer(Setup(0x00, 5, 7, 0, 0))  # SET_ADDRESS
    assert b.runner.address == 7 and b.otg.device_address == 7
    assert (b.otg.read(DCFG, 4) >> 4) & 0x7F == 7
    assert not b.otg.read(DIEPCTL(0), 4) & EPCTL_STALL  # the SETUP cleared the EP0 STALL

    assert b.get_descriptor(1, 0, 18) == DEVICE_DESCRIPTOR
    header = b.get_descriptor(2, 0, 9)
    assert header == CONFIG_DESCRIPTOR[:9]
    total = int.from_bytes(header[2:4], "little")
    assert b.get_descriptor(2, 0, total) == CONFIG_DESCRIPTOR
    assert b.get_descriptor(3, 0, 255) == STRINGS[0]
    assert b.get_descriptor(3, 1, 255) == STRINGS[1]
    long = b.get_descriptor(3, 2, 255)  # 2 packets: 64 + the rest
    assert long == STRINGS[2] and len(long) > 64
    assert b.get_descriptor(3, 3, 255) == STRINGS[3]  # 64 bytes, then a ZLP ends the data stage
    assert b.get_descriptor(3, 2, 10) == STRINGS[2][:10]  # wLength shorter than the descriptor

    b.runner.control_transfer(Setup(0x00, 9, 1, 0, 0))  # SET_CONFIGURATION 1
    assert b.dev.dev_state == "configured"
    assert b.runner.control_transfer(Setup(0x80, 8, 0, 0, 1)) == b"\x01"

    payload = bytes((i * 7) & 0xFF for i in range(100))  # OUT data stage: 64 + 36
    assert b.runner.control_transfer(Setup(0x40, VENDOR_OUT, 0, 0, len(payload)), payload) == b""
    assert b.dev.vendor_data == payload
    exact = bytes(range(128))  # OUT data stage of exactly 2 full packets
    b.runner.control_transfer(Setup(0x40, VENDOR_OUT, 0, 0, 128), exact)
    assert b.dev.vendor_data == exact
    assert b.runner.control_transfer(Setup(0xC0, VENDOR_IN, 0, 0, 128)) == exact  # ends at wLength

    with pytest.raises(Stall):
        b.runner.control_transfer(Setup(0x80, 6, 0x0F << 8, 0, 64))  # BOS: not supported
    with pytest.raises(Stall):
        b.runner.control_transfer(Setup(0x21, 0x42, 0, 0, 0))  # class request to an interface
    assert b.get_descriptor(1, 0, 18) == DEVICE_DESCRIPTOR  # works again after the STALL
    assert b.host.bus_errors == [] and b.otg.read(GINTSTS, 4) & (1 << 1) == 0  # no MMIS


def test_transfers_take_bus_time_and_the_runner_learns_bmaxpacketsize0(bench: Bench) -> None:
    b = bench
    b.runner.bus_reset()
    b.runner.max_packet = 32  # a host's guess before it has read the device descriptor
    assert b.get_descriptor(1, 0, 64) == DEVICE_DESCRIPTOR  # 18 bytes: one short packet either way
    assert b.runner.max_packet == EP0_MPS  # bMaxPacketSize0 learnt from the descriptor
    b.runner.max_packet = 8
    with pytest.raises(UsbError, match="babble"):  # packets larger than the host's max packet
        b.get_descriptor(1, 0, 18)
    b.runner.max_packet = 64
    t0 = b.host.now_ns()
    assert b.get_descriptor(3, 2, 255) == STRINGS[2]
    # SETUP + 2 IN packets + status at 12 Mbit/s: well over 100 us of bus time
    assert b.host.now_ns() - t0 >= 100 * NS_PER_US


def test_a_device_that_never_answers_times_out_in_virtual_time(bench: Bench) -> None:
    b = bench
    b.runner.bus_reset()
    t0 = b.host.now_ns()
    with pytest.raises(Timeout, match="NAK"):
        b.runner.control_transfer(Setup(0x40, VENDOR_HANG, 0, 0, 0), timeout_ms=50)
    elapsed = b.host.now_ns() - t0
    assert 50 * NS_PER_MS <= elapsed < 51 * NS_PER_MS
    assert "busy" in b.dev.events
    assert b.get_descriptor(1, 0, 18) == DEVICE_DESCRIPTOR  # the next SETUP recovers EP0


def test_firmware_that_does_not_apply_the_address_stops_answering() -> None:
    b = Bench(write_dad=False)
    b.dev.init()
    b.runner.bus_reset()
    b.runner.control_transfer(Setup(0x00, 5, 12, 0, 0))
    assert b.runner.address == 12 and b.otg.device_address == 0
    with pytest.raises(Timeout, match="no handshake"):
        b.get_descriptor(1, 0, 18)


def test_disconnect_and_automatic_reset_on_reconnect(bench: Bench) -> None:
    b = bench
    b.runner.bus_reset()
    b.runner.control_transfer(Setup(0x00, 5, 3, 0, 0))
    b.dev.dev_disconnect()
    assert not b.runner.is_attached()
    with pytest.raises(Disconnected):
        b.get_descriptor(1, 0, 18)
    with pytest.raises(Disconnected):
        b.runner.bus_reset()
    b.dev.dev_connect()
    assert b.runner.is_attached() and not b.otg.host_port_enabled()
    events = len(b.dev.events)
    assert b.get_descriptor(1, 0, 18) == DEVICE_DESCRIPTOR  # reset first, like a hub driver
    assert "reset" in b.dev.events[events:] and b.runner.address == 0


def test_cable_unplugged(bench: Bench) -> None:
    b = bench
    b.runner.bus_reset()
    b.otg.host_detach()
    assert not b.runner.is_attached()
    with pytest.raises(Disconnected):
        b.get_descriptor(1, 0, 18)
    b.run_for(5 * NS_PER_MS)
    assert "suspend" in b.dev.events


def test_bad_requests_are_rejected_before_touching_the_bus(bench: Bench) -> None:
    b = bench
    b.runner.bus_reset()
    with pytest.raises(ValueError, match="wLength"):
        b.runner.control_transfer(Setup(0x40, VENDOR_OUT, 0, 0, 4), b"12")
    with pytest.raises(ValueError, match="no OUT data"):
        b.runner.control_transfer(Setup(0x80, 6, 0x100, 0, 18), b"x")
    with pytest.raises(ValueError):
        ControlTransferRunner(b.otg, b.run_for, b.host.now_ns, max_packet=10)
