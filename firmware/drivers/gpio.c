#include "gpio.h"

#include "cm7_core.h"

void gpio_enable_clock(gpio_regs_t *port)
{
    /* Ports are 0x400 apart from GPIOA and the enable bits follow the port index. */
    uint32_t index = ((uint32_t)port - GPIOA_BASE) / (GPIOB_BASE - GPIOA_BASE);
    RCC->AHB4ENR |= RCC_AHB4ENR_GPIOAEN << index;
    (void)RCC->AHB4ENR; /* read back: the clock is running before the first port access */
    cm7_dsb();
}

void gpio_config(gpio_regs_t *port, uint32_t pin, uint32_t mode, uint32_t otype, uint32_t speed,
                 uint32_t pull, uint32_t af)
{
    /* AF number first, then speed/type/pull, mode last: the pin switches once, configured. */
    uint32_t afr = port->AFR[pin >> 3];
    afr = (afr & ~GPIO_AF_Msk(pin)) | ((af & 0xFu) << GPIO_AF_Pos(pin));
    port->AFR[pin >> 3] = afr;
    port->OSPEEDR = (port->OSPEEDR & ~GPIO_2BIT_Msk(pin)) | (speed << GPIO_2BIT_Pos(pin));
    port->OTYPER = (port->OTYPER & ~(1u << pin)) | (otype << pin);
    port->PUPDR = (port->PUPDR & ~GPIO_2BIT_Msk(pin)) | (pull << GPIO_2BIT_Pos(pin));
    port->MODER = (port->MODER & ~GPIO_2BIT_Msk(pin)) | (mode << GPIO_2BIT_Pos(pin));
}

void gpio_write(gpio_regs_t *port, uint32_t pin, int high)
{
    port->BSRR = high ? GPIO_BSRR_SET(pin) : GPIO_BSRR_RESET(pin);
}

int gpio_read(gpio_regs_t *port, uint32_t pin) { return (port->IDR >> pin) & 1u; }
