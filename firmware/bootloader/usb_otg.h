/*
 * USB device driver for the DWC2 core of USB2_OTG_FS (device mode, EP0 only, no DMA).
 *
 * The driver runs the EP0 control-transfer state machine (SETUP, IN/OUT data stage in 64-byte
 * packets, status stage, STALL). The layer above answers each SETUP with exactly one of
 * usb_ctrl_send / usb_ctrl_receive / usb_ctrl_ack / usb_ctrl_stall, either from its setup callback
 * (inside OTG_FS_IRQHandler) or later: a SETUP left unanswered is "deferred", the core NAKs the
 * host meanwhile, and usb_ctrl_defer_token() / usb_ctrl_token_valid() tell the late answerer
 * whether that request is still the current one. Late answers must be made with interrupts off.
 */
#ifndef USB_OTG_H
#define USB_OTG_H

#include <stdint.h>

#define USB_EP0_MAX_PACKET 64u
#define USB_SETUP_PACKET_BYTES 8u

typedef struct {
    uint8_t bmRequestType;
    uint8_t bRequest;
    uint16_t wValue;
    uint16_t wIndex;
    uint16_t wLength;
} usb_setup_t;

/* Called when the last IN packet of a control transfer (data stage, or the status ZLP of a
 * no-data/OUT request) has been sent. */
typedef void (*usb_ctrl_done_fn)(void);
/* Called when the OUT data stage is complete; return 0 to acknowledge (status ZLP) or nonzero to
 * STALL the status stage. */
typedef int (*usb_ctrl_out_fn)(const uint8_t *data, uint16_t len);

typedef struct {
    void (*bus_reset)(void);                      /* USB reset seen: address 0, unconfigured */
    void (*setup)(const usb_setup_t *setup);      /* a SETUP packet to answer */
} usb_otg_handlers_t;

/* Core init, forced device mode, device init, FIFO sizing; leaves the device soft-disconnected.
 * Needs the USB kernel clock, VDD33USB and the OTG AHB clock on. Returns 0, or negative when the
 * core does not come out of reset or device mode. */
int usb_otg_init(const usb_otg_handlers_t *handlers);
void usb_otg_connect(void);    /* DCTL.SDIS = 0: D+ pull-up on */
void usb_otg_disconnect(void); /* DCTL.SDIS = 1 */
void usb_otg_set_address(uint8_t address);
/* Number of bus resets / enumerations seen since init (for progress messages). */
uint32_t usb_otg_enum_count(void);

/* Answers to the current SETUP. len is clipped to wLength; data must stay valid until done. */
void usb_ctrl_send(const void *data, uint16_t len, usb_ctrl_done_fn done);
void usb_ctrl_receive(void *buf, uint16_t len, usb_ctrl_out_fn on_data);
void usb_ctrl_ack(usb_ctrl_done_fn done);
void usb_ctrl_stall(void);
/* Identity of the SETUP being answered; a later SETUP or a bus reset invalidates it. */
uint32_t usb_ctrl_defer_token(void);
int usb_ctrl_token_valid(uint32_t token);

void OTG_FS_IRQHandler(void);

#endif /* USB_OTG_H */
