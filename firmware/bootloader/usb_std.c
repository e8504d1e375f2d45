/*
 * USB standard requests (USB 2.0 chapter 9, FACTS.md §E.6) for a device with one configuration and
 * one interface: descriptors, address, configuration, interface alternate settings, status and
 * features. Class requests addressed to the interface go to the class driver.
 */
#include "usb_std.h"

#include "dfu_proto.h"
#include "usb_desc.h"

#define REQ_DIR_IN 0x80u
#define REQ_TYPE_MSK 0x60u
#define REQ_TYPE_STANDARD 0x00u
#define REQ_TYPE_CLASS 0x20u
#define REQ_RECIP_MSK 0x1Fu
#define REQ_RECIP_DEVICE 0x00u
#define REQ_RECIP_INTERFACE 0x01u
#define REQ_RECIP_ENDPOINT 0x02u

#define STD_GET_STATUS 0u
#define STD_CLEAR_FEATURE 1u
#define STD_SET_FEATURE 3u
#define STD_SET_ADDRESS 5u
#define STD_GET_DESCRIPTOR 6u
#define STD_GET_CONFIGURATION 8u
#define STD_SET_CONFIGURATION 9u
#define STD_GET_INTERFACE 10u
#define STD_SET_INTERFACE 11u

#define FEATURE_ENDPOINT_HALT 0u
#define FEATURE_DEVICE_REMOTE_WAKEUP 1u

#define USB_ADDRESS_MAX 127u
#define ENDPOINT_NUMBER_MSK 0x7Fu
#define LOW_BYTE_MSK 0xFFu
#define STRING_DESC_MAX 255u
#define STATUS_REPLY_BYTES 2u

static const usb_class_t *cls;
static volatile uint8_t configuration;
static uint8_t string_buf[STRING_DESC_MAX];
static uint8_t reply[STATUS_REPLY_BYTES];

static void on_bus_reset(void)
{
    configuration = 0;
    if (cls != 0 && cls->reset != 0) {
        cls->reset();
    }
}

static void get_descriptor(const usb_setup_t *s, uint8_t recipient)
{
    uint8_t type = (uint8_t)(s->wValue >> 8);
    uint8_t index = (uint8_t)(s->wValue & LOW_BYTE_MSK);
    const uint8_t *desc = 0;
    uint16_t len = 0;

    if (recipient == REQ_RECIP_INTERFACE) {
        /* Only the class descriptor of our interface can be asked for on its own. */
        if (type == DFU_DESC_TYPE_FUNCTIONAL && s->wIndex == USB_DESC_INTERFACE_DFU) {
            desc = usb_desc_dfu_functional(&len);
        }
    } else if (recipient != REQ_RECIP_DEVICE) {
        desc = 0;
    } else if (type == USB_DESC_TYPE_DEVICE && index == 0u) {
        desc = usb_desc_device(&len);
    } else if (type == USB_DESC_TYPE_CONFIGURATION && index == 0u) {
        desc = usb_desc_configuration(&len);
    } else if (type == USB_DESC_TYPE_STRING) {
        len = usb_desc_string(index, string_buf, sizeof(string_buf));
        desc = len != 0u ? string_buf : 0;
    }
    /* DEVICE_QUALIFIER / OTHER_SPEED: a full-speed-only device STALLs them, as does anything else. */
    if (desc == 0) {
        usb_ctrl_stall();
        return;
    }
    usb_ctrl_send(desc, len, 0);
}

static void get_status(const usb_setup_t *s, uint8_t recipient)
{
    reply[0] = 0; /* device: bus powered, no remote wakeup; interface: reserved; EP0: not halted */
    reply[1] = 0;
    if ((recipient == REQ_RECIP_INTERFACE && s->wIndex != USB_DESC_INTERFACE_DFU) ||
        (recipient == REQ_RECIP_ENDPOINT && (s->wIndex & ENDPOINT_NUMBER_MSK) != 0u) ||
        recipient > REQ_RECIP_ENDPOINT) {
        usb_ctrl_stall();
        return;
    }
    usb_ctrl_send(reply, STATUS_REPLY_BYTES, 0);
}

static void standard_request(const usb_setup_t *s)
{
    uint8_t recipient = s->bmRequestType & REQ_RECIP_MSK;
    int in = (s->bmRequestType & REQ_DIR_IN) != 0u;

    switch (s->bRequest) {
    case STD_GET_DESCRIPTOR:
        if (in) {
            get_descriptor(s, recipient);
            return;
        }
        break;
    case STD_SET_ADDRESS:
        if (!in && recipient == REQ_RECIP_DEVICE && s->wValue <= USB_ADDRESS_MAX && s->wLength == 0u) {
            /* DCFG.DAD takes the address at once; the core answers the status stage on the old one. */
            usb_otg_set_address((uint8_t)s->wValue);
            usb_ctrl_ack(0);
            return;
        }
        break;
    case STD_SET_CONFIGURATION:
        if (!in && recipient == REQ_RECIP_DEVICE && s->wValue <= USB_DESC_CONFIGURATION_VALUE) {
            configuration = (uint8_t)s->wValue;
            if (cls != 0 && cls->reset != 0) {
                cls->reset();
            }
            usb_ctrl_ack(0);
            return;
        }
        break;
    case STD_GET_CONFIGURATION:
        if (in && recipient == REQ_RECIP_DEVICE) {
            reply[0] = configuration;
            usb_ctrl_send(reply, 1, 0);
            return;
        }
        break;
    case STD_GET_STATUS:
        if (in) {
            get_status(s, recipient);
            return;
        }
        break;
    case STD_CLEAR_FEATURE:
        /* Nothing to clear: no remote wakeup, and EP0 is never halted by SET_FEATURE. */
        if (!in && ((recipient == REQ_RECIP_DEVICE && s->wValue == FEATURE_DEVICE_REMOTE_WAKEUP) ||
                    (recipient == REQ_RECIP_ENDPOINT && s->wValue == FEATURE_ENDPOINT_HALT &&
                     (s->wIndex & ENDPOINT_NUMBER_MSK) == 0u))) {
            usb_ctrl_ack(0);
            return;
        }
        break;
    case STD_GET_INTERFACE:
        if (in && recipient == REQ_RECIP_INTERFACE && configuration != 0u && s->wIndex == USB_DESC_INTERFACE_DFU) {
            reply[0] = cls != 0 && cls->get_alt != 0 ? cls->get_alt() : 0u;
            usb_ctrl_send(reply, 1, 0);
            return;
        }
        break;
    case STD_SET_INTERFACE:
        if (!in && recipient == REQ_RECIP_INTERFACE && configuration != 0u && s->wIndex == USB_DESC_INTERFACE_DFU &&
            s->wValue < USB_DESC_ALT_COUNT && cls != 0 && cls->set_alt != 0 && cls->set_alt((uint8_t)s->wValue) == 0) {
            usb_ctrl_ack(0);
            return;
        }
        break;
    default:
        break; /* SET_FEATURE (no remote wakeup, no test modes at full speed), SET_DESCRIPTOR, ... */
    }
    usb_ctrl_stall();
}

static void on_setup(const usb_setup_t *s)
{
    uint8_t type = s->bmRequestType & REQ_TYPE_MSK;
    uint8_t recipient = s->bmRequestType & REQ_RECIP_MSK;

    if (type == REQ_TYPE_STANDARD) {
        standard_request(s);
    } else if (type == REQ_TYPE_CLASS && recipient == REQ_RECIP_INTERFACE &&
               (s->wIndex & LOW_BYTE_MSK) == USB_DESC_INTERFACE_DFU && cls != 0 && cls->setup != 0) {
        cls->setup(s);
    } else {
        usb_ctrl_stall();
    }
}

static const usb_otg_handlers_t handlers = {
    .bus_reset = on_bus_reset,
    .setup = on_setup,
};

int usb_std_init(const usb_class_t *c)
{
    cls = c;
    configuration = 0;
    return usb_otg_init(&handlers);
}

uint8_t usb_std_configuration(void)
{
    return configuration;
}
