/*
 * hello: the smallest end-to-end check of clock, GPIO, USART1, SysTick and WFI.
 * Prints a banner, then "tick <ms>" every 100 ms for 5 lines, then "hello done"; sleeps in WFI.
 */
#include <stdint.h>

#include "board.h"
#include "clock.h"
#include "cm7_core.h"
#include "systick.h"
#include "uart.h"

#define TICK_HZ 1000u
#define TICK_PERIOD_MS 100u
#define TICK_LINES 5u
#define BAUD 115200u

int main(void)
{
    clock_init();
    board_init_gpio();
    uart_init(BAUD);
    systick_init(clock_core_hz(), TICK_HZ);
    uart_printf("hello from STM32H743 DevEBox (virtual), SYSCLK %u Hz, HCLK %u Hz\n", clock_sysclk_hz(),
                clock_hclk_hz());

    uint32_t next = systick_ms() + TICK_PERIOD_MS;
    for (uint32_t n = 0; n < TICK_LINES; n++) {
        while ((int32_t)(systick_ms() - next) < 0) {
            cm7_wfi();
        }
        led_toggle();
        uart_printf("tick %u\n", systick_ms());
        next += TICK_PERIOD_MS;
    }
    uart_puts("hello done\n");
    systick_stop();
    for (;;) {
        cm7_wfi();
    }
}
