/*
 * Bootloader entry: boot decision (boot.c), then DFU mode: USB hardware on, DfuSe class on EP0,
 * and a main loop that runs the flash work the USB interrupt queued and sleeps in WFI otherwise.
 */
#include "board.h"
#include "boot.h"
#include "clock.h"
#include "cm7_core.h"
#include "dfu.h"
#include "gpio.h"
#include "log.h"
#include "stm32h743.h"
#include "systick.h"
#include "usb_otg.h"
#include "usb_std.h"

#define USB_DM_PIN 11u /* PA11 OTG_FS_DM */
#define USB_DP_PIN 12u /* PA12 OTG_FS_DP */
#define USB_OTG_FS_AF 10u
#define USB33_READY_TIMEOUT_MS 100u
/* Below SysTick (level 0) so driver timeouts keep counting while the USB handler runs. */
#define USB_IRQ_PRIORITY 8u
#define LEAVE_STATUS_STAGE_MS 10u /* let the host finish the GETSTATUS before we vanish */
#define LEAVE_DISCONNECTED_MS 20u /* D+ pull-up off long enough for the host to see a detach */

static const usb_class_t dfu_class = {
    .setup = dfu_usb_setup,
    .reset = dfu_usb_reset,
    .set_alt = dfu_set_alt,
    .get_alt = dfu_get_alt,
};

/* 48 MHz USB kernel clock from HSI48, VDD33USB supply, OTG_FS bus clock, DM/DP pins. */
static int usb_hardware_on(void)
{
    clock_enable_hsi48();
    RCC->D2CCIP2R = (RCC->D2CCIP2R & ~RCC_D2CCIP2R_USBSEL_Msk) | (RCC_D2CCIP2R_USBSEL_HSI48 << RCC_D2CCIP2R_USBSEL_Pos);

    PWR->CR3 |= PWR_CR3_USB33DEN;
    deadline_t d;
    deadline_start(&d, USB33_READY_TIMEOUT_MS);
    while ((PWR->CR3 & PWR_CR3_USB33RDY) == 0u) {
        if (deadline_expired(&d)) {
            return -1;
        }
    }

    RCC->AHB1ENR |= RCC_AHB1ENR_USB2OTGFSEN;
    (void)RCC->AHB1ENR; /* read back: the clock is on before the first core access */

    gpio_enable_clock(GPIOA);
    gpio_config(GPIOA, USB_DM_PIN, GPIO_MODE_AF, GPIO_OTYPE_PUSHPULL, GPIO_SPEED_VERY_HIGH, GPIO_PULL_NONE,
                USB_OTG_FS_AF);
    gpio_config(GPIOA, USB_DP_PIN, GPIO_MODE_AF, GPIO_OTYPE_PUSHPULL, GPIO_SPEED_VERY_HIGH, GPIO_PULL_NONE,
                USB_OTG_FS_AF);
    return 0;
}

static void halt(const char *why)
{
    log_str(why);
    log_end();
    log_flush();
    for (;;) {
        cm7_wfi();
    }
}

static void system_reset(void)
{
    cm7_dsb();
    SCB->AIRCR = SCB_AIRCR_VECTKEY | (SCB->AIRCR & SCB_AIRCR_PRIGROUP_Msk) | SCB_AIRCR_SYSRESETREQ;
    cm7_dsb();
    for (;;) {
        cm7_nop();
    }
}

/* Not manifestation-tolerant, will-detach (bmAttributes 0x0B): drop off the bus and reset; the
 * boot decision then starts the new image. */
static void leave_dfu(void)
{
    delay_ms(LEAVE_STATUS_STAGE_MS);
    usb_otg_disconnect();
    delay_ms(LEAVE_DISCONNECTED_MS);
    nvic_disable_irq(OTG_FS_IRQn);
    log_flush(); /* the reset would cut a line still in the UART queue */
    system_reset();
}

static void dfu_mode(void)
{
    led_set(1);
    if (usb_hardware_on() != 0) {
        halt("DFU USB supply (USB33RDY) not ready");
    }
    dfu_init();
    if (usb_std_init(&dfu_class) != 0) {
        halt("DFU USB core did not come out of reset");
    }
    nvic_set_priority(OTG_FS_IRQn, USB_IRQ_PRIORITY);
    nvic_clear_pending(OTG_FS_IRQn);
    nvic_enable_irq(OTG_FS_IRQn);
    usb_otg_connect();
    log_str("DFU ready");
    log_end();

    for (;;) {
        (void)dfu_poll();
        if (dfu_leave_requested()) {
            leave_dfu();
        }
        /* No lost wake-up without masking interrupts: an interrupt that queues work after this
         * check returns through an exception return, which sets the event register, so the WFE
         * falls through and the loop looks again. (A PRIMASK + WFI section would hold every wake
         * behind the unmask. Idle gaps here are short, between USB requests: a tickless sleep,
         * as systick_sleep does for flash waits, measured no better.) */
        if (!dfu_has_work()) {
            cm7_dsb();
            cm7_wfe();
        }
    }
}

int main(void)
{
    boot_run();
    dfu_mode();
    return 0;
}
