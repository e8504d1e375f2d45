/*
 * DWC2 (USB2_OTG_FS) device driver: core bring-up and the EP0 control-transfer state machine.
 * Sequences follow FACTS.md §E.5 (what the hardware expects, as the LL/HAL flow shows it); the
 * code is our own. Slave mode (no DMA): SETUP and OUT data are popped from the RX FIFO on RXFLVL,
 * IN data is pushed into TX FIFO 0 one packet at a time right after the endpoint is enabled.
 */
#include "usb_otg.h"

#include "systick.h"
#include "usb_otg_regs.h"

#define OTG_RX_FIFO_WORDS 128u
#define OTG_TX0_FIFO_WORDS 64u
#define OTG_CORE_RESET_TIMEOUT_MS 10u
#define OTG_FORCE_MODE_SETTLE_MS 10u /* first look at CMOD after this, as the LL driver does */
#define OTG_FORCE_MODE_TIMEOUT_MS 200u
/* Bounded spins for bits that self-clear within a few PHY clocks (used inside the IRQ too). */
#define OTG_SPIN_LIMIT 100000u
/* Endpoint disable takes effect at the next IN token at the latest: a shorter bound. */
#define OTG_EPDIS_SPIN_LIMIT 1000u
/* RX FIFO entries popped per RXFLVL service before giving other interrupts a turn. */
#define OTG_RX_POPS_PER_IRQ 16u
/* Handler passes (one GINTSTS snapshot each) before returning with work left: the NVIC re-enters. */
#define OTG_IRQ_PASSES 4u
/* Core interrupts this driver serves: GINTMSK, set once by device_init before GAHBCFG.GINT, so the
 * handler uses the constant instead of reading the register back. */
#define OTG_GINT_SERVED                                                                                          \
    (OTG_GINT_RXFLVL | OTG_GINT_USBSUSP | OTG_GINT_USBRST | OTG_GINT_ENUMDNE | OTG_GINT_IEPINT | OTG_GINT_OEPINT | \
     OTG_GINT_WKUINT)
/* EP0 interrupts unmasked at bus reset; only EP0 is ever unmasked in DAINTMSK, so IEPINT/OEPINT
 * always mean EP0 and its DIEPINT/DOEPINT are read directly. */
#define OTG_EP0_DIEPMSK (OTG_DIEPMSK_TOM | OTG_DIEPMSK_XFRCM | OTG_DIEPMSK_EPDM)
#define OTG_EP0_DOEPMSK (OTG_DOEPMSK_STUPM | OTG_DOEPMSK_XFRCM | OTG_DOEPMSK_EPDM)
/* SETUP buffer size programmed into DOEPTSIZ0.XFRSIZ: 3 back-to-back SETUPs of 8 bytes. */
#define OTG_EP0_SETUP_XFRSIZ (OTG_DOEPTSIZ_STUPCNT_MAX * USB_SETUP_PACKET_BYTES)
#define WORD_BYTES 4u

typedef enum {
    EP0_IDLE,        /* waiting for a SETUP */
    EP0_ANSWER,      /* SETUP decoded, the layer above has not answered yet (deferred) */
    EP0_IN_DATA,     /* sending the IN data stage */
    EP0_STATUS_OUT,  /* IN data sent, waiting for the host's zero-length OUT status */
    EP0_OUT_DATA,    /* receiving the OUT data stage */
    EP0_STATUS_IN,   /* our zero-length IN status is queued */
    EP0_STALLED,     /* both directions stalled until the next SETUP */
} ep0_stage_t;

static struct {
    const usb_otg_handlers_t *handlers;
    uint32_t setup_words[USB_SETUP_PACKET_BYTES / WORD_BYTES];
    usb_setup_t setup;
    volatile ep0_stage_t stage;
    volatile uint32_t token;
    const uint8_t *in_ptr;
    uint16_t in_left;
    uint8_t in_zlp_pending;
    uint8_t *out_buf;
    uint16_t out_len;
    uint16_t out_got;
    uint16_t out_last;
    usb_ctrl_done_fn done;
    usb_ctrl_out_fn on_out;
    volatile uint32_t enum_count;
} ep0;

/* ---- small register helpers -------------------------------------------------------------------- */

static int spin_until_clear(volatile uint32_t *reg, uint32_t mask)
{
    for (uint32_t i = 0; i < OTG_SPIN_LIMIT; i++) {
        if ((*reg & mask) == 0u) {
            return 0;
        }
    }
    return -1;
}

static int spin_until_set(volatile uint32_t *reg, uint32_t mask)
{
    for (uint32_t i = 0; i < OTG_SPIN_LIMIT; i++) {
        if ((*reg & mask) == mask) {
            return 0;
        }
    }
    return -1;
}

static int wait_ms_until(volatile uint32_t *reg, uint32_t mask, uint32_t want, uint32_t timeout_ms)
{
    deadline_t d;
    deadline_start(&d, timeout_ms);
    while ((*reg & mask) != want) {
        if (deadline_expired(&d)) {
            return -1;
        }
    }
    return 0;
}

static void flush_tx_fifo(uint32_t fifo_num)
{
    (void)spin_until_set(&OTG_GRSTCTL, OTG_GRSTCTL_AHBIDL);
    OTG_GRSTCTL = OTG_GRSTCTL_TXFFLSH | ((fifo_num << OTG_GRSTCTL_TXFNUM_POS) & OTG_GRSTCTL_TXFNUM_MSK);
    (void)spin_until_clear(&OTG_GRSTCTL, OTG_GRSTCTL_TXFFLSH);
}

static void flush_rx_fifo(void)
{
    (void)spin_until_set(&OTG_GRSTCTL, OTG_GRSTCTL_AHBIDL);
    OTG_GRSTCTL = OTG_GRSTCTL_RXFFLSH;
    (void)spin_until_clear(&OTG_GRSTCTL, OTG_GRSTCTL_RXFFLSH);
}

/* Pop `bytes` bytes of one RX FIFO packet; keep at most `room` of them in dst (NULL: drop all). */
static void read_rx_packet(uint8_t *dst, uint32_t room, uint32_t bytes)
{
    uint32_t words = (bytes + WORD_BYTES - 1u) / WORD_BYTES;
    uint32_t pos = 0;
    for (uint32_t w = 0; w < words; w++) {
        uint32_t word = OTG_DFIFO(0);
        for (uint32_t b = 0; b < WORD_BYTES && pos < bytes; b++, pos++) {
            if (dst != 0 && pos < room) {
                dst[pos] = (uint8_t)(word >> (8u * b));
            }
        }
    }
}

/* ---- EP0 primitives ------------------------------------------------------------------------------ */

/* Arm EP0 OUT so the core keeps accepting SETUP packets (no EPENA needed for SETUPs in slave mode). */
static void ep0_out_setup_ready(void)
{
    OTG_DOEPTSIZ(0) = (OTG_DOEPTSIZ_STUPCNT_MAX << OTG_DOEPTSIZ_STUPCNT_POS) | (1u << OTG_DEPTSIZ_PKTCNT_POS) |
                      OTG_EP0_SETUP_XFRSIZ;
}

/* Accept one OUT packet (data stage or zero-length status) on EP0. */
static void ep0_out_arm(void)
{
    OTG_DOEPTSIZ(0) = (OTG_DOEPTSIZ_STUPCNT_MAX << OTG_DOEPTSIZ_STUPCNT_POS) | (1u << OTG_DEPTSIZ_PKTCNT_POS) |
                      USB_EP0_MAX_PACKET;
    OTG_DOEPCTL(0) |= OTG_DEPCTL_CNAK | OTG_DEPCTL_EPENA;
}

/* Queue one IN packet of n <= 64 bytes on EP0: size the transfer, enable, then fill TX FIFO 0. */
static void ep0_in_packet(const uint8_t *data, uint32_t n)
{
    uint32_t words = (n + WORD_BYTES - 1u) / WORD_BYTES;
    OTG_DIEPTSIZ(0) = (1u << OTG_DEPTSIZ_PKTCNT_POS) | n;
    OTG_DIEPCTL(0) |= OTG_DEPCTL_CNAK | OTG_DEPCTL_EPENA;
    for (uint32_t i = 0; i < OTG_SPIN_LIMIT; i++) {
        if ((OTG_DTXFSTS(0) & OTG_DTXFSTS_INEPTFSAV_MSK) >= words) {
            break;
        }
    }
    for (uint32_t w = 0; w < words; w++) {
        uint32_t word = 0;
        for (uint32_t b = 0; b < WORD_BYTES; b++) {
            uint32_t pos = w * WORD_BYTES + b;
            if (pos < n) {
                word |= (uint32_t)data[pos] << (8u * b);
            }
        }
        OTG_DFIFO(0) = word;
    }
}

static void ep0_in_next(void)
{
    uint32_t n = ep0.in_left < USB_EP0_MAX_PACKET ? ep0.in_left : USB_EP0_MAX_PACKET;
    const uint8_t *p = ep0.in_ptr;
    ep0.in_ptr += n;
    ep0.in_left = (uint16_t)(ep0.in_left - n);
    ep0_in_packet(p, n);
}

/* An IN transfer the host abandoned (new SETUP) may still sit in TX FIFO 0: disable and flush. */
static void ep0_in_cancel(void)
{
    if ((OTG_DIEPCTL(0) & OTG_DEPCTL_EPENA) != 0u) {
        OTG_DIEPCTL(0) |= OTG_DEPCTL_SNAK | OTG_DEPCTL_EPDIS;
        for (uint32_t i = 0; i < OTG_EPDIS_SPIN_LIMIT && (OTG_DIEPCTL(0) & OTG_DEPCTL_EPENA) != 0u; i++) {
        }
    }
    flush_tx_fifo(0);
    OTG_DIEPINT(0) = OTG_DIEPINT_XFRC | OTG_DIEPINT_EPDISD;
}

static void call_done(void)
{
    usb_ctrl_done_fn fn = ep0.done;
    ep0.done = 0;
    if (fn != 0) {
        fn();
    }
}

/* ---- answers to a SETUP --------------------------------------------------------------------------- */

void usb_ctrl_send(const void *data, uint16_t len, usb_ctrl_done_fn done)
{
    if (ep0.stage != EP0_ANSWER) {
        return;
    }
    if (ep0.setup.wLength == 0u) {
        usb_ctrl_ack(done);
        return;
    }
    if (len > ep0.setup.wLength) {
        len = ep0.setup.wLength;
    }
    ep0.in_ptr = (const uint8_t *)data;
    ep0.in_left = len;
    /* A transfer shorter than asked that ends on a full packet needs a zero-length packet. */
    ep0.in_zlp_pending = (len != 0u && len < ep0.setup.wLength && (len % USB_EP0_MAX_PACKET) == 0u) ? 1u : 0u;
    ep0.done = done;
    ep0.stage = EP0_IN_DATA;
    ep0_in_next();
}

void usb_ctrl_receive(void *buf, uint16_t len, usb_ctrl_out_fn on_data)
{
    if (ep0.stage != EP0_ANSWER) {
        return;
    }
    if (ep0.setup.wLength == 0u) {
        if (on_data((const uint8_t *)buf, 0) == 0) {
            usb_ctrl_ack(0);
        } else {
            usb_ctrl_stall();
        }
        return;
    }
    ep0.out_buf = (uint8_t *)buf;
    ep0.out_len = len < ep0.setup.wLength ? len : ep0.setup.wLength;
    ep0.out_got = 0;
    ep0.out_last = 0;
    ep0.on_out = on_data;
    ep0.stage = EP0_OUT_DATA;
    ep0_out_arm();
}

void usb_ctrl_ack(usb_ctrl_done_fn done)
{
    if (ep0.stage != EP0_ANSWER) {
        return;
    }
    ep0.done = done;
    ep0.stage = EP0_STATUS_IN;
    ep0_in_packet(0, 0);
}

void usb_ctrl_stall(void)
{
    if (ep0.stage != EP0_ANSWER) {
        return;
    }
    ep0.done = 0;
    ep0.stage = EP0_STALLED;
    OTG_DIEPCTL(0) |= OTG_DEPCTL_STALL;
    OTG_DOEPCTL(0) |= OTG_DEPCTL_STALL;
    ep0_out_setup_ready();
}

uint32_t usb_ctrl_defer_token(void)
{
    return ep0.token;
}

int usb_ctrl_token_valid(uint32_t token)
{
    return token == ep0.token && ep0.stage == EP0_ANSWER;
}

/* ---- interrupt services ----------------------------------------------------------------------------- */

static void on_bus_reset(void)
{
    OTG_DCTL &= ~OTG_DCTL_RWUSIG;
    flush_tx_fifo(OTG_GRSTCTL_TXFNUM_ALL);
    for (uint32_t n = 0; n < OTG_FS_EP_COUNT; n++) {
        OTG_DIEPINT(n) = OTG_DEPINT_CLEAR_ALL;
        OTG_DOEPINT(n) = OTG_DEPINT_CLEAR_ALL;
        OTG_DIEPCTL(n) &= ~OTG_DEPCTL_STALL;
        OTG_DOEPCTL(n) &= ~OTG_DEPCTL_STALL;
        OTG_DOEPCTL(n) |= OTG_DEPCTL_SNAK;
    }
    OTG_DAINTMSK = OTG_DAINT_IN(0) | OTG_DAINT_OUT(0);
    OTG_DOEPMSK = OTG_EP0_DOEPMSK;
    OTG_DIEPMSK = OTG_EP0_DIEPMSK;
    OTG_DCFG &= ~OTG_DCFG_DAD_MSK;
    ep0_out_setup_ready();
    OTG_GINTSTS = OTG_GINT_USBRST;

    ep0.token++;
    ep0.stage = EP0_IDLE;
    ep0.done = 0;
    ep0.on_out = 0;
    if (ep0.handlers != 0 && ep0.handlers->bus_reset != 0) {
        ep0.handlers->bus_reset();
    }
}

static void on_enum_done(void)
{
    /* EP0 max packet 64 (encoding 00), clear the global IN NAK, full-speed turnaround time. */
    OTG_DIEPCTL(0) &= ~OTG_DEPCTL_MPSIZ_MSK;
    OTG_DIEPCTL(0) |= OTG_DEPCTL_EP0_MPSIZ_64;
    OTG_DCTL |= OTG_DCTL_CGINAK;
    OTG_GUSBCFG = (OTG_GUSBCFG & ~OTG_GUSBCFG_TRDT_MSK) | (OTG_TRDT_FS_HCLK_GE_32MHZ << OTG_GUSBCFG_TRDT_POS);
    OTG_GINTSTS = OTG_GINT_ENUMDNE;
    ep0.enum_count++;
}

/* Pop RX FIFO entries while RXFLVL stays set (at most OTG_RX_POPS_PER_IRQ); returns the last
 * GINTSTS read, taken after the pops (they raise STUP / OUT XFRC). No RXFLVL masking around it:
 * the handler cannot pre-empt itself. */
static uint32_t on_rx_fifo(void)
{
    uint32_t sts;
    uint32_t i = 0;
    do {
        uint32_t status = OTG_GRXSTSP;
        uint32_t ep = status & OTG_GRXSTS_EPNUM_MSK;
        uint32_t bcnt = (status & OTG_GRXSTS_BCNT_MSK) >> OTG_GRXSTS_BCNT_POS;
        uint32_t pktsts = (status & OTG_GRXSTS_PKTSTS_MSK) >> OTG_GRXSTS_PKTSTS_POS;

        if (pktsts == OTG_PKTSTS_SETUP_DATA && ep == 0u) {
            read_rx_packet((uint8_t *)ep0.setup_words, sizeof(ep0.setup_words), bcnt);
        } else if (pktsts == OTG_PKTSTS_OUT_DATA && ep == 0u && ep0.stage == EP0_OUT_DATA) {
            uint32_t room = ep0.out_len > ep0.out_got ? (uint32_t)(ep0.out_len - ep0.out_got) : 0u;
            read_rx_packet(ep0.out_buf + ep0.out_got, room, bcnt);
            ep0.out_got = (uint16_t)(ep0.out_got + (bcnt < room ? bcnt : room));
            ep0.out_last = (uint16_t)bcnt;
        } else if (pktsts == OTG_PKTSTS_OUT_DATA || pktsts == OTG_PKTSTS_SETUP_DATA) {
            read_rx_packet(0, 0, bcnt); /* status ZLP or a packet nobody waits for */
        }
        /* OUT_DONE / SETUP_DONE / GLOBAL_OUT_NAK carry no data: their interrupts follow. */
        sts = OTG_GINTSTS;
        i++;
    } while (i < OTG_RX_POPS_PER_IRQ && (sts & OTG_GINT_RXFLVL) != 0u);
    return sts;
}

static void on_setup_packet(void)
{
    const uint8_t *raw = (const uint8_t *)ep0.setup_words;
    ep0_stage_t previous = ep0.stage;

    if (previous == EP0_IN_DATA || previous == EP0_STATUS_IN) {
        ep0_in_cancel();
    }
    /* The core clears EP0 STALL on a SETUP; clearing it here too is harmless. */
    OTG_DIEPCTL(0) &= ~OTG_DEPCTL_STALL;
    OTG_DOEPCTL(0) &= ~OTG_DEPCTL_STALL;

    ep0.setup.bmRequestType = raw[0];
    ep0.setup.bRequest = raw[1];
    ep0.setup.wValue = (uint16_t)(raw[2] | (raw[3] << 8));
    ep0.setup.wIndex = (uint16_t)(raw[4] | (raw[5] << 8));
    ep0.setup.wLength = (uint16_t)(raw[6] | (raw[7] << 8));
    ep0.token++;
    ep0.done = 0;
    ep0.on_out = 0;
    ep0.stage = EP0_ANSWER;
    ep0_out_setup_ready();
    if (ep0.handlers != 0 && ep0.handlers->setup != 0) {
        ep0.handlers->setup(&ep0.setup);
    } else {
        usb_ctrl_stall();
    }
}

static void on_ep0_out_complete(void)
{
    if (ep0.stage == EP0_OUT_DATA) {
        if (ep0.out_got < ep0.out_len && ep0.out_last == USB_EP0_MAX_PACKET) {
            ep0_out_arm(); /* more packets to come */
            return;
        }
        usb_ctrl_out_fn fn = ep0.on_out;
        ep0.on_out = 0;
        ep0.stage = EP0_ANSWER;
        if (fn != 0 && fn(ep0.out_buf, ep0.out_got) == 0) {
            usb_ctrl_ack(0);
        } else {
            usb_ctrl_stall();
        }
    } else if (ep0.stage == EP0_STATUS_OUT) {
        ep0.stage = EP0_IDLE; /* control read finished */
        ep0_out_setup_ready();
    }
}

static void on_out_endpoints(void)
{
    uint32_t flags = OTG_DOEPINT(0);
    OTG_DOEPINT(0) = flags; /* write-1-to-clear what we are about to handle */
    if ((flags & OTG_DOEPINT_XFRC) != 0u) {
        on_ep0_out_complete();
    }
    if ((flags & OTG_DOEPINT_STUP) != 0u) {
        on_setup_packet();
    }
}

static void on_ep0_in_complete(void)
{
    if (ep0.stage == EP0_IN_DATA) {
        if (ep0.in_left > 0u) {
            ep0_in_next();
        } else if (ep0.in_zlp_pending != 0u) {
            ep0.in_zlp_pending = 0;
            ep0_in_packet(0, 0);
        } else {
            ep0.stage = EP0_STATUS_OUT;
            ep0_out_arm(); /* for the host's zero-length status packet */
            call_done();
        }
    } else if (ep0.stage == EP0_STATUS_IN) {
        ep0.stage = EP0_IDLE;
        call_done();
    }
}

static void on_in_endpoints(void)
{
    uint32_t flags = OTG_DIEPINT(0) & (OTG_EP0_DIEPMSK | OTG_DIEPINT_XFRC);
    OTG_DIEPINT(0) = flags;
    if ((flags & OTG_DIEPINT_XFRC) != 0u) {
        on_ep0_in_complete();
    }
}

/* One GINTSTS read per pass; the passes repeat until nothing is pending, so work raised while the
 * handler runs is served without a new interrupt entry. */
void OTG_FS_IRQHandler(void)
{
    uint32_t sts = OTG_GINTSTS;
    for (uint32_t pass = 0; pass < OTG_IRQ_PASSES; pass++) {
        if ((sts & OTG_GINT_CMOD) != 0u) {
            return; /* host mode: not ours */
        }
        uint32_t pending = sts & OTG_GINT_SERVED;
        if (pending == 0u) {
            return;
        }
        if ((pending & OTG_GINT_USBRST) != 0u) {
            on_bus_reset();
        }
        if ((pending & OTG_GINT_ENUMDNE) != 0u) {
            on_enum_done();
        }
        /* Pops first: STUP and OUT XFRC are raised when their RX FIFO entries are popped, so the
         * endpoint bits come from the GINTSTS read after the pops. IN before OUT: an IN completion
         * (e.g. the status ZLP of the previous request) always predates a SETUP popped in this
         * pass, so it must not be mistaken for a packet of the new transfer. */
        if ((pending & OTG_GINT_RXFLVL) != 0u) {
            uint32_t after = on_rx_fifo() & OTG_GINT_SERVED;
            pending = (pending & ~(OTG_GINT_IEPINT | OTG_GINT_OEPINT)) | (after & (OTG_GINT_IEPINT | OTG_GINT_OEPINT));
        }
        if ((pending & OTG_GINT_IEPINT) != 0u) {
            on_in_endpoints();
        }
        if ((pending & OTG_GINT_OEPINT) != 0u) {
            on_out_endpoints();
        }
        if ((pending & (OTG_GINT_USBSUSP | OTG_GINT_WKUINT)) != 0u) {
            OTG_GINTSTS = pending & (OTG_GINT_USBSUSP | OTG_GINT_WKUINT);
        }
        sts = OTG_GINTSTS;
    }
}

/* ---- bring-up ------------------------------------------------------------------------------------------ */

static int core_reset(void)
{
    if (wait_ms_until(&OTG_GRSTCTL, OTG_GRSTCTL_AHBIDL, OTG_GRSTCTL_AHBIDL, OTG_CORE_RESET_TIMEOUT_MS) != 0) {
        return -1;
    }
    OTG_GRSTCTL |= OTG_GRSTCTL_CSRST;
    return wait_ms_until(&OTG_GRSTCTL, OTG_GRSTCTL_CSRST, 0u, OTG_CORE_RESET_TIMEOUT_MS);
}

static int force_device_mode(void)
{
    OTG_GUSBCFG = (OTG_GUSBCFG & ~(OTG_GUSBCFG_FHMOD | OTG_GUSBCFG_FDMOD)) | OTG_GUSBCFG_FDMOD;
    delay_ms(OTG_FORCE_MODE_SETTLE_MS);
    return wait_ms_until(&OTG_GINTSTS, OTG_GINT_CMOD, 0u, OTG_FORCE_MODE_TIMEOUT_MS);
}

static void device_init(void)
{
    for (uint32_t n = 1; n <= OTG_FS_DIEPTXF_COUNT; n++) {
        OTG_DIEPTXF(n) = 0;
    }
    /* No VBUS sensing on this board: override B-session valid, stay disconnected for now. */
    OTG_DCTL |= OTG_DCTL_SDIS;
    OTG_GCCFG &= ~OTG_GCCFG_VBDEN;
    OTG_GOTGCTL |= OTG_GOTGCTL_BVALOEN | OTG_GOTGCTL_BVALOVAL;
    OTG_PCGCCTL = 0;
    OTG_DCFG = (OTG_DCFG & ~OTG_DCFG_DSPD_MSK) | OTG_DCFG_DSPD_FS_INTERNAL_PHY;

    flush_tx_fifo(OTG_GRSTCTL_TXFNUM_ALL);
    flush_rx_fifo();

    OTG_DIEPMSK = 0;
    OTG_DOEPMSK = 0;
    OTG_DAINTMSK = 0;
    for (uint32_t n = 0; n < OTG_FS_EP_COUNT; n++) {
        uint32_t disable = n == 0u ? OTG_DEPCTL_SNAK : (OTG_DEPCTL_EPDIS | OTG_DEPCTL_SNAK);
        OTG_DIEPCTL(n) = (OTG_DIEPCTL(n) & OTG_DEPCTL_EPENA) != 0u ? disable : 0u;
        OTG_DIEPTSIZ(n) = 0;
        OTG_DIEPINT(n) = OTG_DEPINT_CLEAR_ALL;
        OTG_DOEPCTL(n) = (OTG_DOEPCTL(n) & OTG_DEPCTL_EPENA) != 0u ? disable : 0u;
        OTG_DOEPTSIZ(n) = 0;
        OTG_DOEPINT(n) = OTG_DEPINT_CLEAR_ALL;
    }

    OTG_GINTMSK = 0;
    OTG_GINTSTS = OTG_GINTSTS_CLEAR_ALL;
    OTG_GINTMSK = OTG_GINT_SERVED;

    /* FIFO RAM: RX FIFO at word 0, TX FIFO 0 right after it. */
    OTG_GRXFSIZ = OTG_RX_FIFO_WORDS;
    OTG_DIEPTXF0 = (OTG_TX0_FIFO_WORDS << OTG_TXF_DEPTH_POS) | OTG_RX_FIFO_WORDS;
}

int usb_otg_init(const usb_otg_handlers_t *handlers)
{
    ep0.handlers = handlers;
    ep0.stage = EP0_IDLE;
    ep0.enum_count = 0;

    OTG_GAHBCFG &= ~OTG_GAHBCFG_GINT;
    OTG_GUSBCFG |= OTG_GUSBCFG_PHYSEL;
    if (core_reset() != 0) {
        return -1;
    }
    OTG_GCCFG |= OTG_GCCFG_PWRDWN;
    if (force_device_mode() != 0) {
        return -2;
    }
    device_init();
    OTG_GAHBCFG |= OTG_GAHBCFG_GINT;
    return 0;
}

void usb_otg_connect(void)
{
    OTG_PCGCCTL &= ~(OTG_PCGCCTL_STOPCLK | OTG_PCGCCTL_GATECLK);
    OTG_DCTL &= ~OTG_DCTL_SDIS;
}

void usb_otg_disconnect(void)
{
    OTG_DCTL |= OTG_DCTL_SDIS;
}

void usb_otg_set_address(uint8_t address)
{
    OTG_DCFG = (OTG_DCFG & ~OTG_DCFG_DAD_MSK) | (((uint32_t)address << OTG_DCFG_DAD_POS) & OTG_DCFG_DAD_MSK);
}

uint32_t usb_otg_enum_count(void)
{
    return ep0.enum_count;
}
