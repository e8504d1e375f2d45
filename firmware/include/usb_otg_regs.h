/*
 * USB2_OTG_FS (Synopsys DWC2 core, embedded full-speed PHY) of the STM32H743: register offsets and
 * bit fields used in device mode. Written from FACTS.md §E (offsets from the CMSIS device header,
 * bit positions from the LL driver and the SVD); our own names, one definition per field.
 */
#ifndef USB_OTG_REGS_H
#define USB_OTG_REGS_H

#include <stdint.h>

#define OTG_FS_BASE 0x40080000u
#define OTG_FS_IRQN 101u /* global interrupt of USB2_OTG_FS (vector index 117) */

/* Device endpoints of this core: EP0 + 8 (GHWCFG2.NUMDEVEPS on the H743). */
#define OTG_FS_EP_COUNT 9u
/* TX FIFOs that exist besides TX FIFO 0 (DIEPTXF1..DIEPTXF15 registers). */
#define OTG_FS_DIEPTXF_COUNT 15u

#define OTG_REG(off) (*(volatile uint32_t *)(OTG_FS_BASE + (uint32_t)(off)))

/* ---- global registers ------------------------------------------------------------------------ */
#define OTG_GOTGCTL OTG_REG(0x000u)
#define OTG_GOTGCTL_BVALOEN (1u << 6)
#define OTG_GOTGCTL_BVALOVAL (1u << 7)

#define OTG_GAHBCFG OTG_REG(0x008u)
#define OTG_GAHBCFG_GINT (1u << 0)
#define OTG_GAHBCFG_TXFELVL (1u << 7)

#define OTG_GUSBCFG OTG_REG(0x00Cu)
#define OTG_GUSBCFG_PHYSEL (1u << 6)
#define OTG_GUSBCFG_TRDT_POS 10u
#define OTG_GUSBCFG_TRDT_MSK (0xFu << OTG_GUSBCFG_TRDT_POS)
#define OTG_GUSBCFG_FHMOD (1u << 29)
#define OTG_GUSBCFG_FDMOD (1u << 30)
/* Turnaround time for a full-speed PHY when HCLK >= 32 MHz (LL driver table). */
#define OTG_TRDT_FS_HCLK_GE_32MHZ 6u

#define OTG_GRSTCTL OTG_REG(0x010u)
#define OTG_GRSTCTL_CSRST (1u << 0)
#define OTG_GRSTCTL_RXFFLSH (1u << 4)
#define OTG_GRSTCTL_TXFFLSH (1u << 5)
#define OTG_GRSTCTL_TXFNUM_POS 6u
#define OTG_GRSTCTL_TXFNUM_MSK (0x1Fu << OTG_GRSTCTL_TXFNUM_POS)
#define OTG_GRSTCTL_TXFNUM_ALL 0x10u /* TXFNUM value selecting every TX FIFO */
#define OTG_GRSTCTL_AHBIDL (1u << 31)

/* GINTSTS and GINTMSK share bit positions. */
#define OTG_GINTSTS OTG_REG(0x014u)
#define OTG_GINTMSK OTG_REG(0x018u)
#define OTG_GINT_CMOD (1u << 0) /* GINTSTS only: 1 = host mode */
#define OTG_GINT_MMIS (1u << 1)
#define OTG_GINT_OTGINT (1u << 2)
#define OTG_GINT_SOF (1u << 3)
#define OTG_GINT_RXFLVL (1u << 4)
#define OTG_GINT_NPTXFE (1u << 5)
#define OTG_GINT_GINAKEFF (1u << 6)
#define OTG_GINT_BOUTNAKEFF (1u << 7)
#define OTG_GINT_ESUSP (1u << 10)
#define OTG_GINT_USBSUSP (1u << 11)
#define OTG_GINT_USBRST (1u << 12)
#define OTG_GINT_ENUMDNE (1u << 13)
#define OTG_GINT_ISOODRP (1u << 14)
#define OTG_GINT_EOPF (1u << 15)
#define OTG_GINT_IEPINT (1u << 18)
#define OTG_GINT_OEPINT (1u << 19)
#define OTG_GINT_IISOIXFR (1u << 20)
#define OTG_GINT_INCOMPISOOUT (1u << 21)
#define OTG_GINT_RSTDET (1u << 23)
#define OTG_GINT_LPMINT (1u << 27)
#define OTG_GINT_CIDSCHG (1u << 28)
#define OTG_GINT_DISCINT (1u << 29)
#define OTG_GINT_SRQINT (1u << 30)
#define OTG_GINT_WKUINT (1u << 31)
/* Write-1-to-clear value that clears every clearable GINTSTS flag (bit 30 SRQINT kept, as LL does). */
#define OTG_GINTSTS_CLEAR_ALL 0xBFFFFFFFu

#define OTG_GRXSTSR OTG_REG(0x01Cu)
#define OTG_GRXSTSP OTG_REG(0x020u) /* read pops the RX FIFO status entry */
#define OTG_GRXSTS_EPNUM_MSK 0xFu
#define OTG_GRXSTS_BCNT_POS 4u
#define OTG_GRXSTS_BCNT_MSK (0x7FFu << OTG_GRXSTS_BCNT_POS)
#define OTG_GRXSTS_PKTSTS_POS 17u
#define OTG_GRXSTS_PKTSTS_MSK (0xFu << OTG_GRXSTS_PKTSTS_POS)
/* PKTSTS codes in device mode (FACTS §E.4). */
#define OTG_PKTSTS_GLOBAL_OUT_NAK 1u
#define OTG_PKTSTS_OUT_DATA 2u
#define OTG_PKTSTS_OUT_DONE 3u
#define OTG_PKTSTS_SETUP_DONE 4u
#define OTG_PKTSTS_SETUP_DATA 6u

#define OTG_GRXFSIZ OTG_REG(0x024u) /* RX FIFO depth in 32-bit words */
#define OTG_DIEPTXF0 OTG_REG(0x028u) /* TX FIFO 0: start address [15:0], depth [31:16], in words */
#define OTG_TXF_DEPTH_POS 16u

#define OTG_GCCFG OTG_REG(0x038u)
#define OTG_GCCFG_PWRDWN (1u << 16) /* 1 = FS transceiver powered */
#define OTG_GCCFG_VBDEN (1u << 21)

#define OTG_CID OTG_REG(0x03Cu)
#define OTG_GSNPSID OTG_REG(0x040u)

/* DIEPTXFn for n = 1..15 (TX FIFO n). */
#define OTG_DIEPTXF(n) OTG_REG(0x104u + 4u * ((uint32_t)(n) - 1u))

/* ---- device registers ------------------------------------------------------------------------ */
#define OTG_DCFG OTG_REG(0x800u)
#define OTG_DCFG_DSPD_MSK 0x3u
#define OTG_DCFG_DSPD_FS_INTERNAL_PHY 0x3u
#define OTG_DCFG_DAD_POS 4u
#define OTG_DCFG_DAD_MSK (0x7Fu << OTG_DCFG_DAD_POS)

#define OTG_DCTL OTG_REG(0x804u)
#define OTG_DCTL_RWUSIG (1u << 0)
#define OTG_DCTL_SDIS (1u << 1)
#define OTG_DCTL_CGINAK (1u << 8)
#define OTG_DCTL_CGONAK (1u << 10)

#define OTG_DSTS OTG_REG(0x808u)
#define OTG_DSTS_ENUMSPD_POS 1u
#define OTG_DSTS_ENUMSPD_MSK (0x3u << OTG_DSTS_ENUMSPD_POS)
#define OTG_DSTS_ENUMSPD_FS_48MHZ 0x3u

#define OTG_DIEPMSK OTG_REG(0x810u)
#define OTG_DIEPMSK_XFRCM (1u << 0)
#define OTG_DIEPMSK_EPDM (1u << 1)
#define OTG_DIEPMSK_TOM (1u << 3)
#define OTG_DIEPMSK_TXFURM (1u << 8)

#define OTG_DOEPMSK OTG_REG(0x814u)
#define OTG_DOEPMSK_XFRCM (1u << 0)
#define OTG_DOEPMSK_EPDM (1u << 1)
#define OTG_DOEPMSK_STUPM (1u << 3)

#define OTG_DAINT OTG_REG(0x818u)
#define OTG_DAINTMSK OTG_REG(0x81Cu)
#define OTG_DAINT_IN(n) (1u << (n))
#define OTG_DAINT_OUT(n) (1u << (16u + (n)))

#define OTG_DIEPEMPMSK OTG_REG(0x834u)

/* ---- endpoint registers ---------------------------------------------------------------------- */
#define OTG_DIEPCTL(n) OTG_REG(0x900u + 0x20u * (uint32_t)(n))
#define OTG_DIEPINT(n) OTG_REG(0x908u + 0x20u * (uint32_t)(n))
#define OTG_DIEPTSIZ(n) OTG_REG(0x910u + 0x20u * (uint32_t)(n))
#define OTG_DTXFSTS(n) OTG_REG(0x918u + 0x20u * (uint32_t)(n))
#define OTG_DOEPCTL(n) OTG_REG(0xB00u + 0x20u * (uint32_t)(n))
#define OTG_DOEPINT(n) OTG_REG(0xB08u + 0x20u * (uint32_t)(n))
#define OTG_DOEPTSIZ(n) OTG_REG(0xB10u + 0x20u * (uint32_t)(n))

/* DIEPCTLx / DOEPCTLx */
#define OTG_DEPCTL_MPSIZ_MSK 0x7FFu
#define OTG_DEPCTL_EP0_MPSIZ_64 0x0u /* EP0 encoding: 00 = 64 bytes */
#define OTG_DEPCTL_USBAEP (1u << 15)
#define OTG_DEPCTL_NAKSTS (1u << 17)
#define OTG_DEPCTL_STALL (1u << 21)
#define OTG_DEPCTL_TXFNUM_POS 22u
#define OTG_DEPCTL_CNAK (1u << 26)
#define OTG_DEPCTL_SNAK (1u << 27)
#define OTG_DEPCTL_EPDIS (1u << 30)
#define OTG_DEPCTL_EPENA (1u << 31)

/* DIEPINTx */
#define OTG_DIEPINT_XFRC (1u << 0)
#define OTG_DIEPINT_EPDISD (1u << 1)
#define OTG_DIEPINT_TOC (1u << 3)
#define OTG_DIEPINT_TXFE (1u << 7)
/* DOEPINTx */
#define OTG_DOEPINT_XFRC (1u << 0)
#define OTG_DOEPINT_EPDISD (1u << 1)
#define OTG_DOEPINT_STUP (1u << 3)
#define OTG_DOEPINT_OTEPDIS (1u << 4)
#define OTG_DOEPINT_OTEPSPR (1u << 5)
#define OTG_DOEPINT_B2BSTUP (1u << 6)
#define OTG_DOEPINT_STPKTRX (1u << 15)
/* Write-1-to-clear value the LL driver uses to clear every endpoint interrupt flag. */
#define OTG_DEPINT_CLEAR_ALL 0xFB7Fu

/* DIEPTSIZx / DOEPTSIZx */
#define OTG_DEPTSIZ_XFRSIZ_MSK 0x7FFFFu
#define OTG_DEPTSIZ_PKTCNT_POS 19u
#define OTG_DEPTSIZ_PKTCNT_MSK (0x3FFu << OTG_DEPTSIZ_PKTCNT_POS)
#define OTG_DOEPTSIZ_STUPCNT_POS 29u
#define OTG_DOEPTSIZ_STUPCNT_MSK (0x3u << OTG_DOEPTSIZ_STUPCNT_POS)
#define OTG_DOEPTSIZ_STUPCNT_MAX 3u /* back-to-back SETUPs EP0 may receive */

/* DTXFSTSx */
#define OTG_DTXFSTS_INEPTFSAV_MSK 0xFFFFu

/* ---- power and clock gating ------------------------------------------------------------------ */
#define OTG_PCGCCTL OTG_REG(0xE00u)
#define OTG_PCGCCTL_STOPCLK (1u << 0)
#define OTG_PCGCCTL_GATECLK (1u << 1)

/* ---- data FIFO windows: writes push TX FIFO n, reads pop the RX FIFO ------------------------- */
#define OTG_DFIFO(n) OTG_REG(0x1000u * ((uint32_t)(n) + 1u))

#endif /* USB_OTG_REGS_H */
