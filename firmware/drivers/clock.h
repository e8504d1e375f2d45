/*
 * System clock tree: HSI 64 MHz -> PLL1 (M=4, N=50, P=2) -> 400 MHz SYSCLK,
 * HCLK 200 MHz (D1CPRE /1, HPRE /2), every APB 100 MHz (/2), FLASH 2 wait states.
 */
#ifndef CLOCK_H
#define CLOCK_H

#include <stdint.h>

#define CLOCK_HSI_HZ 64000000u
#define CLOCK_CSI_HZ 4000000u
#define CLOCK_HSE_HZ 25000000u /* DevEBox crystal (not used by clock_init) */

/* Configure the tree above. Leaves everything alone when PLL1 already runs as SYSCLK (an
 * application started by the bootloader); never touches QUADSPI or its kernel clock. */
void clock_init(void);
/* HSI48 on and ready (USB kernel clock source). */
void clock_enable_hsi48(void);
/* Frequencies computed from the RCC registers (so they are right whoever configured them). */
uint32_t clock_sysclk_hz(void); /* SYSCLK (before D1CPRE) */
uint32_t clock_core_hz(void);   /* CPU clock = SYSCLK / D1CPRE (SysTick's processor clock) */
uint32_t clock_hclk_hz(void);   /* AXI/AHB clock = core / HPRE (also QUADSPI's rcc_hclk3) */
uint32_t clock_pclk2_hz(void);  /* APB2 = HCLK / D2PPRE2 (USART1 kernel clock) */

#endif /* CLOCK_H */
