/* Host harness entry: wires the DFU class into the standard-request layer as bootloader/main.c does. */
#include "dfu.h"
#include "usb_std.h"

void sim_reset_memory(void);

static const usb_class_t dfu_class = {
    .setup = dfu_usb_setup,
    .reset = dfu_usb_reset,
    .set_alt = dfu_set_alt,
    .get_alt = dfu_get_alt,
};

int sim_start(void)
{
    sim_reset_memory();
    dfu_init();
    return usb_std_init(&dfu_class);
}
