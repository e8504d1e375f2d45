/* USB descriptors of the DFU-mode device (FACTS.md §E.6, §F.3). */
#ifndef USB_DESC_H
#define USB_DESC_H

#include <stdint.h>

#include "dfu_media.h"

#define USB_DESC_TYPE_DEVICE 1u
#define USB_DESC_TYPE_CONFIGURATION 2u
#define USB_DESC_TYPE_STRING 3u
#define USB_DESC_TYPE_INTERFACE 4u
#define USB_DESC_TYPE_DEVICE_QUALIFIER 6u

#define USB_DESC_CONFIGURATION_VALUE 1u
#define USB_DESC_INTERFACE_DFU 0u
#define USB_DESC_ALT_COUNT DFU_MEDIA_COUNT

const uint8_t *usb_desc_device(uint16_t *len);
const uint8_t *usb_desc_configuration(uint16_t *len);
/* The DFU functional descriptor inside the configuration (GET_DESCRIPTOR type 0x21). */
const uint8_t *usb_desc_dfu_functional(uint16_t *len);
/* Builds string descriptor `index` (UTF-16LE) into buf; returns its length, 0 if there is none. */
uint16_t usb_desc_string(uint8_t index, uint8_t *buf, uint16_t size);

#endif /* USB_DESC_H */
