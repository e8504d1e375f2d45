/*
 * Sample application, linked twice: app_qspi (executes in place at 0x9000_0000) and app_internal
 * (0x0802_0000). Started by the bootloader: sets VTOR to its own table, keeps the clock tree the
 * bootloader configured (clock_init leaves a running PLL alone; QUADSPI is never touched), prints
 * where it runs from and its version, then toggles the LED every 250 ms, printing "blink <n>" for
 * the first BLINK_PRINT_COUNT toggles, sleeping in WFI in between.
 */
#include <stdint.h>

#include "app_header.h"
#include "board.h"
#include "clock.h"
#include "cm7_core.h"
#include "stm32h743.h"
#include "systick.h"
#include "uart.h"

#ifndef APP_VERSION
#define APP_VERSION 1u
#endif

#define BAUD 115200u
#define TICK_HZ 1000u
#define BLINK_PERIOD_MS 250u
#define BLINK_PRINT_COUNT 20u

typedef void (*vector_t)(void);
extern const vector_t g_vector_table[];
extern const uint32_t __image_start;

/* Filled by tools/fill_header.py after objcopy (image_size, crc32). */
__attribute__((section(".app_header"), used)) const app_header_t g_app_header = {
    .magic = APP_HEADER_MAGIC,
    .header_size = APP_HEADER_SIZE,
    .image_size = 0u,
    .crc32 = 0u,
    .load_address = (uint32_t)&__image_start,
    .version = APP_VERSION,
    .reserved = {0u, 0u},
};

int main(void)
{
    SCB->VTOR = (uint32_t)g_vector_table;
    cm7_dsb();
    cm7_isb();

    clock_init();
    board_init_gpio();
    uart_init(BAUD);
    systick_init(clock_core_hz(), TICK_HZ);

    uart_printf("APP running from 0x%08x\n", SCB->VTOR);
    uart_printf("APP version %u\n", g_app_header.version);

    uint32_t next = systick_ms() + BLINK_PERIOD_MS;
    for (uint32_t n = 1;; n++) {
        while ((int32_t)(systick_ms() - next) < 0) {
            cm7_wfi();
        }
        next += BLINK_PERIOD_MS;
        led_toggle();
        if (n <= BLINK_PRINT_COUNT) {
            uart_printf("blink %u\n", n);
        }
    }
}
