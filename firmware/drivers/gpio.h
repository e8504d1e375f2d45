/* GPIO pin configuration helpers (ports A..E). */
#ifndef GPIO_H
#define GPIO_H

#include <stdint.h>

#include "stm32h743.h"

/* Enable the AHB4 clock of a port (GPIOA..GPIOE). */
void gpio_enable_clock(gpio_regs_t *port);
/* Configure one pin: mode (GPIO_MODE_*), output type (GPIO_OTYPE_*), speed (GPIO_SPEED_*),
 * pull (GPIO_PULL_*), alternate function number (0..15, used when mode is GPIO_MODE_AF). */
void gpio_config(gpio_regs_t *port, uint32_t pin, uint32_t mode, uint32_t otype, uint32_t speed,
                 uint32_t pull, uint32_t af);
void gpio_write(gpio_regs_t *port, uint32_t pin, int high);
int gpio_read(gpio_regs_t *port, uint32_t pin);

#endif /* GPIO_H */
