/* DevEBox STM32H7XX_M board pins: LED on PA1 (active low), K2 button on PC5 (pressed = low). */
#ifndef BOARD_H
#define BOARD_H

#define BOARD_LED_PIN 1u /* GPIOA */
#define BOARD_K2_PIN 5u  /* GPIOC */

/* Enable GPIOA/GPIOC clocks, LED pin as push-pull output (LED off), K2 as input with pull-up. */
void board_init_gpio(void);
void led_set(int on);
void led_toggle(void);
int led_is_on(void);
int k2_pressed(void);

#endif /* BOARD_H */
