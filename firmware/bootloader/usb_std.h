/* USB chapter-9 standard requests on EP0; class requests go to the class driver given at init. */
#ifndef USB_STD_H
#define USB_STD_H

#include <stdint.h>

#include "usb_otg.h"

typedef struct {
    void (*setup)(const usb_setup_t *setup); /* class request addressed to our interface */
    void (*reset)(void);                      /* bus reset, or a (re)configuration */
    int (*set_alt)(uint8_t alt);              /* 0 ok, nonzero refuses (STALL) */
    uint8_t (*get_alt)(void);
} usb_class_t;

/* Installs the EP0 handlers into the OTG driver; returns usb_otg_init's result. */
int usb_std_init(const usb_class_t *cls);
/* Configuration value set by the host (0 = not configured). */
uint8_t usb_std_configuration(void);

#endif /* USB_STD_H */
