/*
 * Host stand-in for bootloader/usb_otg.c: the EP0 answer API (usb_ctrl_*) recorded for a test that
 * plays the USB host through the sim_* functions (called with ctypes).
 */
#include <string.h>

#include "usb_otg.h"

enum { R_PENDING = 0, R_IN = 1, R_ACK = 2, R_STALL = 3, R_OUT = 4 };

static const usb_otg_handlers_t *handlers;
static usb_setup_t cur;
static int answering; /* the current SETUP has no answer yet */
static int result;
static uint32_t token;
static uint8_t in_data[4096];
static uint16_t in_len;
static usb_ctrl_done_fn done_fn;
static usb_ctrl_out_fn out_fn;
static uint8_t *out_buf;
static uint16_t out_len;
static uint8_t address;
static int connected;

int usb_otg_init(const usb_otg_handlers_t *h) { handlers = h; return 0; }
void usb_otg_connect(void) { connected = 1; }
void usb_otg_disconnect(void) { connected = 0; }
void usb_otg_set_address(uint8_t a) { address = a; }
uint32_t usb_otg_enum_count(void) { return 0; }
void OTG_FS_IRQHandler(void) {}

void usb_ctrl_send(const void *data, uint16_t len, usb_ctrl_done_fn done)
{
    if (!answering) return;
    if (len > cur.wLength) len = cur.wLength;
    memcpy(in_data, data, len);
    in_len = len;
    done_fn = done;
    answering = 0;
    result = R_IN;
}

void usb_ctrl_receive(void *buf, uint16_t len, usb_ctrl_out_fn on_data)
{
    if (!answering) return;
    out_buf = buf;
    out_len = len < cur.wLength ? len : cur.wLength;
    out_fn = on_data;
    answering = 0;
    result = R_OUT;
}

void usb_ctrl_ack(usb_ctrl_done_fn done)
{
    if (!answering) return;
    done_fn = done;
    in_len = 0;
    answering = 0;
    result = R_ACK;
}

void usb_ctrl_stall(void)
{
    if (!answering) return;
    done_fn = 0;
    answering = 0;
    result = R_STALL;
}

uint32_t usb_ctrl_defer_token(void) { return token; }
int usb_ctrl_token_valid(uint32_t t) { return t == token && answering; }

/* ---- harness side ---- */

int sim_setup(uint8_t bm, uint8_t req, uint16_t value, uint16_t index, uint16_t length)
{
    cur.bmRequestType = bm;
    cur.bRequest = req;
    cur.wValue = value;
    cur.wIndex = index;
    cur.wLength = length;
    token++;
    answering = 1;
    result = R_PENDING;
    done_fn = 0;
    handlers->setup(&cur);
    return result;
}

/* OUT data stage: the driver acknowledges or stalls the status stage from the callback's verdict. */
int sim_out_data(const uint8_t *data, uint16_t len)
{
    if (result != R_OUT) return -1;
    uint16_t n = len < out_len ? len : out_len;
    memcpy(out_buf, data, n);
    answering = 1;
    result = R_PENDING;
    if (out_fn(out_buf, n) == 0) {
        usb_ctrl_ack(0);
    } else {
        usb_ctrl_stall();
    }
    return result;
}

int sim_result(void) { return result; }
int sim_in_data(uint8_t *dst) { memcpy(dst, in_data, in_len); return in_len; }

/* The IN stage (data, or the status ZLP) has been delivered to the host. */
void sim_complete(void)
{
    usb_ctrl_done_fn fn = done_fn;
    done_fn = 0;
    if (fn) fn();
}

void sim_bus_reset(void)
{
    token++;
    answering = 0;
    handlers->bus_reset();
}

int sim_address(void) { return address; }
int sim_connected(void) { return connected; }
