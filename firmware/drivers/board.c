#include "board.h"

#include "gpio.h"
#include "stm32h743.h"

void board_init_gpio(void)
{
    gpio_enable_clock(GPIOA);
    gpio_enable_clock(GPIOC);
    /* LED off (pin high) before the pin becomes an output, so it never flashes. */
    gpio_write(GPIOA, BOARD_LED_PIN, 1);
    gpio_config(GPIOA, BOARD_LED_PIN, GPIO_MODE_OUTPUT, GPIO_OTYPE_PUSHPULL, GPIO_SPEED_LOW,
                GPIO_PULL_NONE, 0u);
    gpio_config(GPIOC, BOARD_K2_PIN, GPIO_MODE_INPUT, GPIO_OTYPE_PUSHPULL, GPIO_SPEED_LOW, GPIO_PULL_UP,
                0u);
}

void led_set(int on) { gpio_write(GPIOA, BOARD_LED_PIN, !on); /* active low */ }

int led_is_on(void) { return ((GPIOA->ODR >> BOARD_LED_PIN) & 1u) == 0u; }

void led_toggle(void) { led_set(!led_is_on()); }

int k2_pressed(void) { return gpio_read(GPIOC, BOARD_K2_PIN) == 0; }
