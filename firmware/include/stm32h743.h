/*
 * STM32H743 register definitions for this project (our own, written from
 * /work/shared/reference/FACTS.md and the ARMv7-M architecture; no vendor header copied).
 *
 * Conventions
 *  - One struct per register block, members named after the reference manual, offsets checked
 *    with _Static_assert so a missing reserved word cannot shift a register silently.
 *  - Bit macros: <BLOCK>_<REG>_<FIELD> for single bits, <...>_Pos / <...>_Msk for fields, and a
 *    value helper <...>_VAL(x) where a field takes a number.
 *  - Core (SCS) blocks: SCB, NVIC, SysTick, MPU at their ARMv7-M addresses.
 */
#ifndef STM32H743_H
#define STM32H743_H

#include <stddef.h>
#include <stdint.h>

#define REG32 volatile uint32_t
#define REG8 volatile uint8_t

/* ------------------------------------------------------------------------------------------
 * Memory map (FACTS A.1)
 * ---------------------------------------------------------------------------------------- */
#define ITCM_BASE 0x00000000u
#define ITCM_SIZE 0x00010000u
#define FLASH_MEM_BASE 0x08000000u
#define FLASH_MEM_SIZE 0x00200000u
#define SYSMEM_BASE 0x1FF00000u
#define UID_BASE 0x1FF1E800u
#define FLASHSIZE_BASE 0x1FF1E880u
#define DTCM_BASE 0x20000000u
#define DTCM_SIZE 0x00020000u
#define AXISRAM_BASE 0x24000000u
#define AXISRAM_SIZE 0x00080000u
#define SRAM123_BASE 0x30000000u
#define SRAM123_SIZE 0x00048000u
#define SRAM4_BASE 0x38000000u
#define SRAM4_SIZE 0x00010000u
#define BKPSRAM_BASE 0x38800000u
#define QSPI_MEM_BASE 0x90000000u

/* Peripheral bases (FACTS A.2) */
#define USART1_BASE 0x40011000u
#define MDMA_BASE 0x52000000u
#define FLASH_R_BASE 0x52002000u
#define QUADSPI_BASE 0x52005000u
#define EXTI_BASE 0x58000000u
#define SYSCFG_BASE 0x58000400u
#define GPIOA_BASE 0x58020000u
#define GPIOB_BASE 0x58020400u
#define GPIOC_BASE 0x58020800u
#define GPIOD_BASE 0x58020C00u
#define GPIOE_BASE 0x58021000u
#define RCC_BASE 0x58024400u
#define PWR_BASE 0x58024800u
#define DBGMCU_BASE 0x5C001000u

/* Cortex-M7 system control space */
#define SCS_BASE 0xE000E000u
#define SYSTICK_BASE 0xE000E010u
#define NVIC_BASE 0xE000E100u
#define SCB_BASE 0xE000ED00u
#define MPU_BASE 0xE000ED90u

/* ------------------------------------------------------------------------------------------
 * RCC (base 0x5802_4400)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 CR;          /* 0x000 */
    REG32 HSICFGR;     /* 0x004 */
    REG32 CRRCR;       /* 0x008 */
    REG32 CSICFGR;     /* 0x00C */
    REG32 CFGR;        /* 0x010 */
    REG32 RESERVED0;   /* 0x014 */
    REG32 D1CFGR;      /* 0x018 */
    REG32 D2CFGR;      /* 0x01C */
    REG32 D3CFGR;      /* 0x020 */
    REG32 RESERVED1;   /* 0x024 */
    REG32 PLLCKSELR;   /* 0x028 */
    REG32 PLLCFGR;     /* 0x02C */
    REG32 PLL1DIVR;    /* 0x030 */
    REG32 PLL1FRACR;   /* 0x034 */
    REG32 PLL2DIVR;    /* 0x038 */
    REG32 PLL2FRACR;   /* 0x03C */
    REG32 PLL3DIVR;    /* 0x040 */
    REG32 PLL3FRACR;   /* 0x044 */
    REG32 RESERVED2;   /* 0x048 */
    REG32 D1CCIPR;     /* 0x04C */
    REG32 D2CCIP1R;    /* 0x050 */
    REG32 D2CCIP2R;    /* 0x054 */
    REG32 D3CCIPR;     /* 0x058 */
    REG32 RESERVED3;   /* 0x05C */
    REG32 CIER;        /* 0x060 */
    REG32 CIFR;        /* 0x064 */
    REG32 CICR;        /* 0x068 */
    REG32 RESERVED4;   /* 0x06C */
    REG32 BDCR;        /* 0x070 */
    REG32 CSR;         /* 0x074 */
    REG32 RESERVED5;   /* 0x078 */
    REG32 AHB3RSTR;    /* 0x07C */
    REG32 AHB1RSTR;    /* 0x080 */
    REG32 AHB2RSTR;    /* 0x084 */
    REG32 AHB4RSTR;    /* 0x088 */
    REG32 APB3RSTR;    /* 0x08C */
    REG32 APB1LRSTR;   /* 0x090 */
    REG32 APB1HRSTR;   /* 0x094 */
    REG32 APB2RSTR;    /* 0x098 */
    REG32 APB4RSTR;    /* 0x09C */
    REG32 GCR;         /* 0x0A0 */
    REG32 RESERVED6;   /* 0x0A4 */
    REG32 D3AMR;       /* 0x0A8 */
    REG32 RESERVED7[9]; /* 0x0AC-0x0CC */
    REG32 RSR;         /* 0x0D0 */
    REG32 AHB3ENR;     /* 0x0D4 */
    REG32 AHB1ENR;     /* 0x0D8 */
    REG32 AHB2ENR;     /* 0x0DC */
    REG32 AHB4ENR;     /* 0x0E0 */
    REG32 APB3ENR;     /* 0x0E4 */
    REG32 APB1LENR;    /* 0x0E8 */
    REG32 APB1HENR;    /* 0x0EC */
    REG32 APB2ENR;     /* 0x0F0 */
    REG32 APB4ENR;     /* 0x0F4 */
} rcc_regs_t;
_Static_assert(offsetof(rcc_regs_t, CFGR) == 0x10, "RCC CFGR offset");
_Static_assert(offsetof(rcc_regs_t, PLLCKSELR) == 0x28, "RCC PLLCKSELR offset");
_Static_assert(offsetof(rcc_regs_t, D1CCIPR) == 0x4C, "RCC D1CCIPR offset");
_Static_assert(offsetof(rcc_regs_t, D3CCIPR) == 0x58, "RCC D3CCIPR offset");
_Static_assert(offsetof(rcc_regs_t, AHB3RSTR) == 0x7C, "RCC AHB3RSTR offset");
_Static_assert(offsetof(rcc_regs_t, APB4RSTR) == 0x9C, "RCC APB4RSTR offset");
_Static_assert(offsetof(rcc_regs_t, RSR) == 0xD0, "RCC RSR offset");
_Static_assert(offsetof(rcc_regs_t, AHB4ENR) == 0xE0, "RCC AHB4ENR offset");
_Static_assert(offsetof(rcc_regs_t, APB4ENR) == 0xF4, "RCC APB4ENR offset");
#define RCC ((rcc_regs_t *)RCC_BASE)

/* RCC_CR (reset 0x0000_0025: HSION, HSIRDY, HSIDIVF) */
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIKERON (1u << 1)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_HSIDIV_Pos 3u
#define RCC_CR_HSIDIV_Msk (3u << RCC_CR_HSIDIV_Pos) /* 00 /1 (64 MHz), 01 /2, 10 /4, 11 /8 */
#define RCC_CR_HSIDIVF (1u << 5)
#define RCC_CR_CSION (1u << 7)
#define RCC_CR_CSIRDY (1u << 8)
#define RCC_CR_CSIKERON (1u << 9)
#define RCC_CR_HSI48ON (1u << 12)
#define RCC_CR_HSI48RDY (1u << 13)
#define RCC_CR_D1CKRDY (1u << 14)
#define RCC_CR_D2CKRDY (1u << 15)
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_HSEBYP (1u << 18)
#define RCC_CR_HSECSSON (1u << 19)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CR_PLL2ON (1u << 26)
#define RCC_CR_PLL2RDY (1u << 27)
#define RCC_CR_PLL3ON (1u << 28)
#define RCC_CR_PLL3RDY (1u << 29)

/* RCC_CFGR */
#define RCC_CFGR_SW_Pos 0u
#define RCC_CFGR_SW_Msk (7u << RCC_CFGR_SW_Pos)
#define RCC_CFGR_SWS_Pos 3u
#define RCC_CFGR_SWS_Msk (7u << RCC_CFGR_SWS_Pos)
#define RCC_CFGR_SW_HSI 0u /* values of SW and SWS */
#define RCC_CFGR_SW_CSI 1u
#define RCC_CFGR_SW_HSE 2u
#define RCC_CFGR_SW_PLL1 3u

/* RCC_D1CFGR: HPRE and D1CPRE are 4-bit "0xxx = /1, 1000 = /2, 1001 = /4 ..." codes,
 * D1PPRE is a 3-bit "0xx = /1, 100 = /2, 101 = /4, 110 = /8, 111 = /16" code. */
#define RCC_D1CFGR_HPRE_Pos 0u
#define RCC_D1CFGR_HPRE_Msk (0xFu << RCC_D1CFGR_HPRE_Pos)
#define RCC_D1CFGR_D1PPRE_Pos 4u
#define RCC_D1CFGR_D1PPRE_Msk (7u << RCC_D1CFGR_D1PPRE_Pos)
#define RCC_D1CFGR_D1CPRE_Pos 8u
#define RCC_D1CFGR_D1CPRE_Msk (0xFu << RCC_D1CFGR_D1CPRE_Pos)
#define RCC_D2CFGR_D2PPRE1_Pos 4u
#define RCC_D2CFGR_D2PPRE1_Msk (7u << RCC_D2CFGR_D2PPRE1_Pos)
#define RCC_D2CFGR_D2PPRE2_Pos 8u
#define RCC_D2CFGR_D2PPRE2_Msk (7u << RCC_D2CFGR_D2PPRE2_Pos)
#define RCC_D3CFGR_D3PPRE_Pos 4u
#define RCC_D3CFGR_D3PPRE_Msk (7u << RCC_D3CFGR_D3PPRE_Pos)
#define RCC_AHB_PRESC_DIV1 0x0u /* 4-bit bus prescaler codes (HPRE, D1CPRE) */
#define RCC_AHB_PRESC_DIV2 0x8u
#define RCC_AHB_PRESC_DIV_BIT 0x8u /* set = divided */
#define RCC_APB_PRESC_DIV1 0x0u /* 3-bit APB prescaler codes */
#define RCC_APB_PRESC_DIV2 0x4u
#define RCC_APB_PRESC_DIV_BIT 0x4u

/* RCC_PLLCKSELR (reset 0x0202_0200) */
#define RCC_PLLCKSELR_PLLSRC_Pos 0u
#define RCC_PLLCKSELR_PLLSRC_Msk (3u << RCC_PLLCKSELR_PLLSRC_Pos)
#define RCC_PLLCKSELR_PLLSRC_HSI 0u
#define RCC_PLLCKSELR_PLLSRC_CSI 1u
#define RCC_PLLCKSELR_PLLSRC_HSE 2u
#define RCC_PLLCKSELR_PLLSRC_NONE 3u
#define RCC_PLLCKSELR_DIVM1_Pos 4u
#define RCC_PLLCKSELR_DIVM1_Msk (0x3Fu << RCC_PLLCKSELR_DIVM1_Pos)

/* RCC_PLLCFGR (reset 0x01FF_0000) */
#define RCC_PLLCFGR_PLL1FRACEN (1u << 0)
#define RCC_PLLCFGR_PLL1VCOSEL (1u << 1) /* 0 = wide VCO 192-836 MHz, 1 = medium 150-420 MHz */
#define RCC_PLLCFGR_PLL1RGE_Pos 2u
#define RCC_PLLCFGR_PLL1RGE_Msk (3u << RCC_PLLCFGR_PLL1RGE_Pos)
#define RCC_PLLCFGR_PLLRGE_1_2MHZ 0u
#define RCC_PLLCFGR_PLLRGE_2_4MHZ 1u
#define RCC_PLLCFGR_PLLRGE_4_8MHZ 2u
#define RCC_PLLCFGR_PLLRGE_8_16MHZ 3u
#define RCC_PLLCFGR_DIVP1EN (1u << 16)
#define RCC_PLLCFGR_DIVQ1EN (1u << 17)
#define RCC_PLLCFGR_DIVR1EN (1u << 18)

/* RCC_PLL1DIVR (reset 0x0101_0280): each divider stores value-1 */
#define RCC_PLL1DIVR_DIVN1_Pos 0u
#define RCC_PLL1DIVR_DIVN1_Msk (0x1FFu << RCC_PLL1DIVR_DIVN1_Pos)
#define RCC_PLL1DIVR_DIVP1_Pos 9u
#define RCC_PLL1DIVR_DIVP1_Msk (0x7Fu << RCC_PLL1DIVR_DIVP1_Pos)
#define RCC_PLL1DIVR_DIVQ1_Pos 16u
#define RCC_PLL1DIVR_DIVQ1_Msk (0x7Fu << RCC_PLL1DIVR_DIVQ1_Pos)
#define RCC_PLL1DIVR_DIVR1_Pos 24u
#define RCC_PLL1DIVR_DIVR1_Msk (0x7Fu << RCC_PLL1DIVR_DIVR1_Pos)
#define RCC_PLL1FRACR_FRACN1_Pos 3u
#define RCC_PLL1FRACR_FRACN1_Msk (0x1FFFu << RCC_PLL1FRACR_FRACN1_Pos)

/* Kernel clock selections */
#define RCC_D1CCIPR_QSPISEL_Pos 4u
#define RCC_D1CCIPR_QSPISEL_Msk (3u << RCC_D1CCIPR_QSPISEL_Pos) /* 00 = rcc_hclk3 */
#define RCC_D2CCIP2R_USART16SEL_Pos 3u
#define RCC_D2CCIP2R_USART16SEL_Msk (7u << RCC_D2CCIP2R_USART16SEL_Pos) /* 000 = rcc_pclk2 */
#define RCC_D2CCIP2R_USBSEL_Pos 20u
#define RCC_D2CCIP2R_USBSEL_Msk (3u << RCC_D2CCIP2R_USBSEL_Pos)
#define RCC_D2CCIP2R_USBSEL_HSI48 3u

/* Reset and enable bits (FACTS A.3) */
#define RCC_AHB3ENR_MDMAEN (1u << 0)
#define RCC_AHB3ENR_QSPIEN (1u << 14)
#define RCC_AHB3RSTR_QSPIRST (1u << 14)
#define RCC_AHB1ENR_USB1OTGHSEN (1u << 25)
#define RCC_AHB1ENR_USB2OTGFSEN (1u << 27)
#define RCC_AHB1ENR_USB2OTGFSULPIEN (1u << 28)
#define RCC_AHB1RSTR_USB2OTGFSRST (1u << 27)
#define RCC_AHB4ENR_GPIOAEN (1u << 0)
#define RCC_AHB4ENR_GPIOBEN (1u << 1)
#define RCC_AHB4ENR_GPIOCEN (1u << 2)
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_AHB4ENR_GPIOEEN (1u << 4)
#define RCC_APB2ENR_USART1EN (1u << 4)
#define RCC_APB2RSTR_USART1RST (1u << 4)
#define RCC_APB4ENR_SYSCFGEN (1u << 1)

/* ------------------------------------------------------------------------------------------
 * PWR (base 0x5802_4800)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 CR1;       /* 0x00 */
    REG32 CSR1;      /* 0x04 */
    REG32 CR2;       /* 0x08 */
    REG32 CR3;       /* 0x0C */
    REG32 CPUCR;     /* 0x10 */
    REG32 RESERVED0; /* 0x14 */
    REG32 D3CR;      /* 0x18 */
    REG32 RESERVED1; /* 0x1C */
    REG32 WKUPCR;    /* 0x20 */
    REG32 WKUPFR;    /* 0x24 */
    REG32 WKUPEPR;   /* 0x28 */
} pwr_regs_t;
_Static_assert(offsetof(pwr_regs_t, D3CR) == 0x18, "PWR D3CR offset");
#define PWR ((pwr_regs_t *)PWR_BASE)

#define PWR_CR1_DBP (1u << 8)
#define PWR_CSR1_ACTVOSRDY (1u << 13)
/* PWR_CR3: reset 0x0000_0006 (SCUEN | LDOEN); the supply choice is write-once per power-on */
#define PWR_CR3_BYPASS (1u << 0)
#define PWR_CR3_LDOEN (1u << 1)
#define PWR_CR3_SCUEN (1u << 2)
#define PWR_CR3_SUPPLY_Msk (PWR_CR3_BYPASS | PWR_CR3_LDOEN | PWR_CR3_SCUEN)
#define PWR_CR3_USB33DEN (1u << 24)
#define PWR_CR3_USBREGEN (1u << 25)
#define PWR_CR3_USB33RDY (1u << 26)
#define PWR_D3CR_VOSRDY (1u << 13)
#define PWR_D3CR_VOS_Pos 14u
#define PWR_D3CR_VOS_Msk (3u << PWR_D3CR_VOS_Pos)
#define PWR_D3CR_VOS_SCALE3 1u
#define PWR_D3CR_VOS_SCALE2 2u
#define PWR_D3CR_VOS_SCALE1 3u

/* ------------------------------------------------------------------------------------------
 * GPIO (ports A..E, stride 0x400)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 MODER;   /* 0x00: 2 bits/pin */
    REG32 OTYPER;  /* 0x04 */
    REG32 OSPEEDR; /* 0x08: 2 bits/pin */
    REG32 PUPDR;   /* 0x0C: 2 bits/pin */
    REG32 IDR;     /* 0x10 */
    REG32 ODR;     /* 0x14 */
    REG32 BSRR;    /* 0x18: low half sets, high half resets */
    REG32 LCKR;    /* 0x1C */
    REG32 AFR[2];  /* 0x20 AFRL, 0x24 AFRH: 4 bits/pin */
} gpio_regs_t;
_Static_assert(offsetof(gpio_regs_t, AFR) == 0x20, "GPIO AFR offset");
#define GPIOA ((gpio_regs_t *)GPIOA_BASE)
#define GPIOB ((gpio_regs_t *)GPIOB_BASE)
#define GPIOC ((gpio_regs_t *)GPIOC_BASE)
#define GPIOD ((gpio_regs_t *)GPIOD_BASE)
#define GPIOE ((gpio_regs_t *)GPIOE_BASE)

#define GPIO_MODE_INPUT 0u
#define GPIO_MODE_OUTPUT 1u
#define GPIO_MODE_AF 2u
#define GPIO_MODE_ANALOG 3u
#define GPIO_SPEED_LOW 0u
#define GPIO_SPEED_MEDIUM 1u
#define GPIO_SPEED_HIGH 2u
#define GPIO_SPEED_VERY_HIGH 3u
#define GPIO_PULL_NONE 0u
#define GPIO_PULL_UP 1u
#define GPIO_PULL_DOWN 2u
#define GPIO_OTYPE_PUSHPULL 0u
#define GPIO_OTYPE_OPENDRAIN 1u
#define GPIO_2BIT_Pos(pin) ((uint32_t)(pin) * 2u)
#define GPIO_2BIT_Msk(pin) (3u << GPIO_2BIT_Pos(pin))
#define GPIO_AF_Pos(pin) (((uint32_t)(pin) & 7u) * 4u)
#define GPIO_AF_Msk(pin) (0xFu << GPIO_AF_Pos(pin))
#define GPIO_BSRR_SET(pin) (1u << (pin))
#define GPIO_BSRR_RESET(pin) (1u << ((pin) + 16u))

/* ------------------------------------------------------------------------------------------
 * USART1 (base 0x4001_1000)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 CR1;   /* 0x00 */
    REG32 CR2;   /* 0x04 */
    REG32 CR3;   /* 0x08 */
    REG32 BRR;   /* 0x0C */
    REG32 GTPR;  /* 0x10 */
    REG32 RTOR;  /* 0x14 */
    REG32 RQR;   /* 0x18 */
    REG32 ISR;   /* 0x1C (reset 0x0000_00C0) */
    REG32 ICR;   /* 0x20 */
    REG32 RDR;   /* 0x24 */
    REG32 TDR;   /* 0x28 */
    REG32 PRESC; /* 0x2C */
} usart_regs_t;
_Static_assert(offsetof(usart_regs_t, PRESC) == 0x2C, "USART PRESC offset");
#define USART1 ((usart_regs_t *)USART1_BASE)

#define USART_CR1_UE (1u << 0)
#define USART_CR1_UESM (1u << 1)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_IDLEIE (1u << 4)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_TCIE (1u << 6)
#define USART_CR1_TXEIE (1u << 7)
#define USART_CR1_PCE (1u << 10)
#define USART_CR1_M0 (1u << 12)
#define USART_CR1_OVER8 (1u << 15)
#define USART_CR1_M1 (1u << 28)
#define USART_CR1_FIFOEN (1u << 29)
#define USART_CR1_TXFEIE (1u << 30) /* TX FIFO empty interrupt (FIFOEN=1) */
#define USART_CR2_STOP_Pos 12u
#define USART_CR2_STOP_Msk (3u << USART_CR2_STOP_Pos) /* 00 = 1 stop bit */
#define USART_ISR_PE (1u << 0)
#define USART_ISR_FE (1u << 1)
#define USART_ISR_NE (1u << 2)
#define USART_ISR_ORE (1u << 3)
#define USART_ISR_IDLE (1u << 4)
#define USART_ISR_RXNE (1u << 5) /* RXFNE when FIFOEN=1 */
#define USART_ISR_TC (1u << 6)
#define USART_ISR_TXE (1u << 7) /* TXFNF when FIFOEN=1 */
#define USART_ISR_BUSY (1u << 16)
#define USART_ISR_TEACK (1u << 21)
#define USART_ISR_REACK (1u << 22)
#define USART_ISR_TXFE (1u << 23) /* TX FIFO empty (FIFOEN=1) */
#define USART_ICR_PECF (1u << 0)
#define USART_ICR_FECF (1u << 1)
#define USART_ICR_NECF (1u << 2)
#define USART_ICR_ORECF (1u << 3)
#define USART_ICR_IDLECF (1u << 4)
#define USART_ICR_TCCF (1u << 6)
#define USART_FIFO_DEPTH 16u /* TX and RX FIFO entries (FIFOEN=1) */

/* ------------------------------------------------------------------------------------------
 * SYSCFG (base 0x5800_0400)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 RESERVED0; /* 0x00 */
    REG32 PMCR;      /* 0x04 */
    REG32 EXTICR[4]; /* 0x08-0x14 */
    REG32 RESERVED1[2];
    REG32 CCCSR; /* 0x20 */
    REG32 CCVR;  /* 0x24 */
    REG32 CCCR;  /* 0x28 */
    REG32 PWRCR; /* 0x2C */
} syscfg_regs_t;
_Static_assert(offsetof(syscfg_regs_t, CCCSR) == 0x20, "SYSCFG CCCSR offset");
#define SYSCFG ((syscfg_regs_t *)SYSCFG_BASE)
#define SYSCFG_PWRCR_ODEN (1u << 0)

/* ------------------------------------------------------------------------------------------
 * FLASH interface (base 0x5200_2000), FACTS B.1-B.3. Bank registers are described once
 * (flash_bank_regs_t) and reached through FLASH_BANK(b).
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 ACR_ALIAS; /* +0x00: ACR (bank 1 block) or its alias (bank 2 block, 0x100) */
    REG32 KEYR;      /* +0x04 */
    REG32 OPTKEYR;   /* +0x08 (alias at 0x108) */
    REG32 CR;        /* +0x0C */
    REG32 SR;        /* +0x10 */
    REG32 CCR;       /* +0x14 */
    REG32 OPTCR;     /* +0x18 (alias at 0x118) */
    REG32 OPTSR_CUR; /* +0x1C */
    REG32 OPTSR_PRG; /* +0x20 */
    REG32 OPTCCR;    /* +0x24 */
    REG32 PRAR_CUR;  /* +0x28 */
    REG32 PRAR_PRG;  /* +0x2C */
    REG32 SCAR_CUR;  /* +0x30 */
    REG32 SCAR_PRG;  /* +0x34 */
    REG32 WPSN_CUR;  /* +0x38 */
    REG32 WPSN_PRG;  /* +0x3C */
    REG32 BOOT_CUR;  /* +0x40 (bank 1 block only) */
    REG32 BOOT_PRG;  /* +0x44 */
    REG32 RESERVED0[2];
    REG32 CRCCR;   /* +0x50 */
    REG32 CRCSADD; /* +0x54 */
    REG32 CRCEADD; /* +0x58 */
    REG32 CRCDATA; /* +0x5C */
    REG32 ECC_FA;  /* +0x60 */
    REG32 RESERVED1[39];
} flash_bank_regs_t;
_Static_assert(offsetof(flash_bank_regs_t, CR) == 0x0C, "FLASH CR offset");
_Static_assert(offsetof(flash_bank_regs_t, WPSN_CUR) == 0x38, "FLASH WPSN offset");
_Static_assert(offsetof(flash_bank_regs_t, ECC_FA) == 0x60, "FLASH ECC_FA offset");
_Static_assert(sizeof(flash_bank_regs_t) == 0x100, "FLASH bank block size");

typedef struct {
    flash_bank_regs_t BANK[2]; /* 0x000 bank 1, 0x100 bank 2 */
} flash_regs_t;
#define FLASH_REGS ((flash_regs_t *)FLASH_R_BASE)
#define FLASH_BANK(b) (&FLASH_REGS->BANK[(b) - 1]) /* b = 1 or 2 */
#define FLASH_ACR (FLASH_REGS->BANK[0].ACR_ALIAS)  /* 0x5200_2000, reset 0x37 */

#define FLASH_ACR_LATENCY_Pos 0u
#define FLASH_ACR_LATENCY_Msk (0xFu << FLASH_ACR_LATENCY_Pos)
#define FLASH_ACR_WRHIGHFREQ_Pos 4u
#define FLASH_ACR_WRHIGHFREQ_Msk (3u << FLASH_ACR_WRHIGHFREQ_Pos)

#define FLASH_KEY1 0x45670123u
#define FLASH_KEY2 0xCDEF89ABu
#define FLASH_OPTKEY1 0x08192A3Bu
#define FLASH_OPTKEY2 0x4C5D6E7Fu

/* FLASH_CRx (reset 0x0000_0031) */
#define FLASH_CR_LOCK (1u << 0)
#define FLASH_CR_PG (1u << 1)
#define FLASH_CR_SER (1u << 2)
#define FLASH_CR_BER (1u << 3)
#define FLASH_CR_PSIZE_Pos 4u
#define FLASH_CR_PSIZE_Msk (3u << FLASH_CR_PSIZE_Pos)
#define FLASH_CR_PSIZE_X8 0u
#define FLASH_CR_PSIZE_X16 1u
#define FLASH_CR_PSIZE_X32 2u
#define FLASH_CR_PSIZE_X64 3u
#define FLASH_CR_FW (1u << 6)
#define FLASH_CR_START (1u << 7)
#define FLASH_CR_SNB_Pos 8u
#define FLASH_CR_SNB_Msk (7u << FLASH_CR_SNB_Pos)
#define FLASH_CR_CRC_EN (1u << 15)
#define FLASH_CR_EOPIE (1u << 16)

/* FLASH_SRx / FLASH_CCRx (same bit positions; CCR bits are write-1-to-clear) */
#define FLASH_SR_BSY (1u << 0)
#define FLASH_SR_WBNE (1u << 1)
#define FLASH_SR_QW (1u << 2)
#define FLASH_SR_CRC_BUSY (1u << 3)
#define FLASH_SR_EOP (1u << 16)
#define FLASH_SR_WRPERR (1u << 17)
#define FLASH_SR_PGSERR (1u << 18)
#define FLASH_SR_STRBERR (1u << 19)
#define FLASH_SR_INCERR (1u << 21)
#define FLASH_SR_OPERR (1u << 22)
#define FLASH_SR_RDPERR (1u << 23)
#define FLASH_SR_RDSERR (1u << 24)
#define FLASH_SR_SNECCERR (1u << 25)
#define FLASH_SR_DBECCERR (1u << 26)
#define FLASH_SR_CRCEND (1u << 27)
#define FLASH_SR_CRCRDERR (1u << 28)
#define FLASH_SR_ALL_ERRORS                                                                        \
    (FLASH_SR_WRPERR | FLASH_SR_PGSERR | FLASH_SR_STRBERR | FLASH_SR_INCERR | FLASH_SR_OPERR |     \
     FLASH_SR_RDPERR | FLASH_SR_RDSERR | FLASH_SR_SNECCERR | FLASH_SR_DBECCERR | FLASH_SR_CRCRDERR)
#define FLASH_CCR_CLR_EOP FLASH_SR_EOP
#define FLASH_CCR_CLR_PGSERR FLASH_SR_PGSERR
#define FLASH_CCR_CLR_ALL (FLASH_SR_EOP | FLASH_SR_ALL_ERRORS | FLASH_SR_CRCEND)

/* ------------------------------------------------------------------------------------------
 * MDMA (base 0x5200_0000): GISR0, then 16 channels of 0x40 bytes from +0x40 (RM0433 MDMA
 * chapter, as in ST's CMSIS device header)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 ISR;   /* +0x00 */
    REG32 IFCR;  /* +0x04 */
    REG32 ESR;   /* +0x08 */
    REG32 CR;    /* +0x0C */
    REG32 TCR;   /* +0x10 */
    REG32 BNDTR; /* +0x14 */
    REG32 SAR;   /* +0x18 */
    REG32 DAR;   /* +0x1C */
    REG32 BRUR;  /* +0x20 */
    REG32 LAR;   /* +0x24 */
    REG32 TBR;   /* +0x28 */
    REG32 RESERVED0;
    REG32 MAR;   /* +0x30 */
    REG32 MDR;   /* +0x34 */
    REG32 RESERVED1[2];
} mdma_channel_regs_t;
_Static_assert(sizeof(mdma_channel_regs_t) == 0x40, "MDMA channel block size");
_Static_assert(offsetof(mdma_channel_regs_t, MDR) == 0x34, "MDMA CxMDR offset");
#define MDMA_GISR0 (*(REG32 *)MDMA_BASE)
#define MDMA_CHANNELS 16u
#define MDMA_CHANNEL(x) ((mdma_channel_regs_t *)(MDMA_BASE + 0x40u + 0x40u * (uint32_t)(x)))

#define MDMA_ISR_TEIF (1u << 0)
#define MDMA_ISR_CTCIF (1u << 1)
#define MDMA_ISR_BRTIF (1u << 2)
#define MDMA_ISR_BTIF (1u << 3)
#define MDMA_ISR_TCIF (1u << 4)
#define MDMA_ISR_CRQA (1u << 16)
#define MDMA_IFCR_ALL 0x1Fu /* CTEIF, CCTCIF, CBRTIF, CBTIF, CLTCIF */

#define MDMA_CR_EN (1u << 0)
#define MDMA_CR_TEIE (1u << 1)
#define MDMA_CR_CTCIE (1u << 2)
#define MDMA_CR_PL_Pos 6u
#define MDMA_CR_SWRQ (1u << 16)

#define MDMA_TCR_SINC_Pos 0u  /* 0 fixed, 2 increment, 3 decrement */
#define MDMA_TCR_DINC_Pos 2u
#define MDMA_TCR_SSIZE_Pos 4u /* 0 byte, 1 half-word, 2 word, 3 double word */
#define MDMA_TCR_DSIZE_Pos 6u
#define MDMA_TCR_SINCOS_Pos 8u
#define MDMA_TCR_DINCOS_Pos 10u
#define MDMA_TCR_TLEN_Pos 18u /* buffer transfer length - 1 (7 bits) */
#define MDMA_TCR_TRGM_Pos 28u /* 0 buffer, 1 block, 2 repeated block, 3 whole channel per request */
#define MDMA_TCR_SWRM (1u << 30)
#define MDMA_INC_FIXED 0u
#define MDMA_INC_UP 2u
#define MDMA_SIZE_WORD 2u
#define MDMA_TRGM_BUFFER 0u
#define MDMA_TLEN_MAX 128u

#define MDMA_BNDTR_BNDT_Msk 0x1FFFFu
#define MDMA_TBR_TSEL_Msk 0xFFu
#define MDMA_TBR_SBUS (1u << 16) /* source on the AHB/TCM bus (ITCM/DTCM) */
#define MDMA_TBR_DBUS (1u << 17)

/* MDMA hardware requests (TSEL) */
#define MDMA_REQ_QUADSPI_FIFO 22u /* QUADSPI FIFO threshold (FTF) */
#define MDMA_REQ_QUADSPI_TC 23u   /* QUADSPI transfer complete */

/* ------------------------------------------------------------------------------------------
 * QUADSPI (base 0x5200_5000), FACTS C.1-C.2
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 CR;    /* 0x00 */
    REG32 DCR;   /* 0x04 */
    REG32 SR;    /* 0x08 */
    REG32 FCR;   /* 0x0C */
    REG32 DLR;   /* 0x10 */
    REG32 CCR;   /* 0x14 */
    REG32 AR;    /* 0x18 */
    REG32 ABR;   /* 0x1C */
    REG32 DR;    /* 0x20: use QUADSPI_DR8 for byte accesses */
    REG32 PSMKR; /* 0x24 */
    REG32 PSMAR; /* 0x28 */
    REG32 PIR;   /* 0x2C */
    REG32 LPTR;  /* 0x30 */
} quadspi_regs_t;
_Static_assert(offsetof(quadspi_regs_t, LPTR) == 0x30, "QUADSPI LPTR offset");
#define QUADSPI ((quadspi_regs_t *)QUADSPI_BASE)
#define QUADSPI_DR8 (*(REG8 *)(QUADSPI_BASE + 0x20u)) /* 8-bit access pushes/pops one byte */

#define QUADSPI_CR_EN (1u << 0)
#define QUADSPI_CR_ABORT (1u << 1)
#define QUADSPI_CR_DMAEN (1u << 2)
#define QUADSPI_CR_TCEN (1u << 3)
#define QUADSPI_CR_SSHIFT (1u << 4)
#define QUADSPI_CR_DFM (1u << 6)
#define QUADSPI_CR_FSEL (1u << 7)
#define QUADSPI_CR_FTHRES_Pos 8u
#define QUADSPI_CR_FTHRES_Msk (0x1Fu << QUADSPI_CR_FTHRES_Pos)
#define QUADSPI_CR_TEIE (1u << 16)
#define QUADSPI_CR_TCIE (1u << 17)
#define QUADSPI_CR_FTIE (1u << 18)
#define QUADSPI_CR_SMIE (1u << 19)
#define QUADSPI_CR_TOIE (1u << 20)
#define QUADSPI_CR_APMS (1u << 22)
#define QUADSPI_CR_PMM (1u << 23)
#define QUADSPI_CR_PRESCALER_Pos 24u
#define QUADSPI_CR_PRESCALER_Msk (0xFFu << QUADSPI_CR_PRESCALER_Pos)

#define QUADSPI_DCR_CKMODE (1u << 0)
#define QUADSPI_DCR_CSHT_Pos 8u
#define QUADSPI_DCR_CSHT_Msk (7u << QUADSPI_DCR_CSHT_Pos)
#define QUADSPI_DCR_FSIZE_Pos 16u
#define QUADSPI_DCR_FSIZE_Msk (0x1Fu << QUADSPI_DCR_FSIZE_Pos)

#define QUADSPI_SR_TEF (1u << 0)
#define QUADSPI_SR_TCF (1u << 1)
#define QUADSPI_SR_FTF (1u << 2)
#define QUADSPI_SR_SMF (1u << 3)
#define QUADSPI_SR_TOF (1u << 4)
#define QUADSPI_SR_BUSY (1u << 5)
#define QUADSPI_SR_FLEVEL_Pos 8u
#define QUADSPI_SR_FLEVEL_Msk (0x3Fu << QUADSPI_SR_FLEVEL_Pos)

#define QUADSPI_FCR_CTEF (1u << 0)
#define QUADSPI_FCR_CTCF (1u << 1)
#define QUADSPI_FCR_CSMF (1u << 3)
#define QUADSPI_FCR_CTOF (1u << 4)
#define QUADSPI_FCR_ALL (QUADSPI_FCR_CTEF | QUADSPI_FCR_CTCF | QUADSPI_FCR_CSMF | QUADSPI_FCR_CTOF)

#define QUADSPI_CCR_INSTRUCTION_Pos 0u
#define QUADSPI_CCR_INSTRUCTION_Msk (0xFFu << QUADSPI_CCR_INSTRUCTION_Pos)
#define QUADSPI_CCR_IMODE_Pos 8u
#define QUADSPI_CCR_IMODE_Msk (3u << QUADSPI_CCR_IMODE_Pos)
#define QUADSPI_CCR_ADMODE_Pos 10u
#define QUADSPI_CCR_ADMODE_Msk (3u << QUADSPI_CCR_ADMODE_Pos)
#define QUADSPI_CCR_ADSIZE_Pos 12u
#define QUADSPI_CCR_ADSIZE_Msk (3u << QUADSPI_CCR_ADSIZE_Pos)
#define QUADSPI_CCR_ABMODE_Pos 14u
#define QUADSPI_CCR_ABMODE_Msk (3u << QUADSPI_CCR_ABMODE_Pos)
#define QUADSPI_CCR_ABSIZE_Pos 16u
#define QUADSPI_CCR_ABSIZE_Msk (3u << QUADSPI_CCR_ABSIZE_Pos)
#define QUADSPI_CCR_DCYC_Pos 18u
#define QUADSPI_CCR_DCYC_Msk (0x1Fu << QUADSPI_CCR_DCYC_Pos)
#define QUADSPI_CCR_DMODE_Pos 24u
#define QUADSPI_CCR_DMODE_Msk (3u << QUADSPI_CCR_DMODE_Pos)
#define QUADSPI_CCR_FMODE_Pos 26u
#define QUADSPI_CCR_FMODE_Msk (3u << QUADSPI_CCR_FMODE_Pos)
#define QUADSPI_CCR_SIOO (1u << 28)
#define QUADSPI_CCR_DHHC (1u << 30)
#define QUADSPI_CCR_DDRM (1u << 31)
#define QUADSPI_FMODE_INDIRECT_WRITE 0u
#define QUADSPI_FMODE_INDIRECT_READ 1u
#define QUADSPI_FMODE_AUTO_POLL 2u
#define QUADSPI_FMODE_MEMORY_MAPPED 3u

/* ------------------------------------------------------------------------------------------
 * DBGMCU (base 0x5C00_1000)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 IDC; /* 0x00: REV_ID[31:16], DEV_ID[11:0] (0x450) */
    REG32 CR;  /* 0x04 */
} dbgmcu_regs_t;
#define DBGMCU ((dbgmcu_regs_t *)DBGMCU_BASE)
#define DBGMCU_IDC_DEV_ID_Msk 0xFFFu
#define DBGMCU_IDC_REV_ID_Pos 16u
#define DBGMCU_CR_DBGSLEEP_D1 (1u << 0)
#define DBGMCU_CR_DBGSTOP_D1 (1u << 1)
#define DBGMCU_CR_DBGSTBY_D1 (1u << 2)

/* ------------------------------------------------------------------------------------------
 * Cortex-M7 SCB (0xE000_ED00)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 CPUID;      /* 0x000 */
    REG32 ICSR;       /* 0x004 */
    REG32 VTOR;       /* 0x008 */
    REG32 AIRCR;      /* 0x00C */
    REG32 SCR;        /* 0x010 */
    REG32 CCR;        /* 0x014 */
    REG8 SHPR[12];    /* 0x018-0x023: priority of exception 4+i */
    REG32 SHCSR;      /* 0x024 */
    REG32 CFSR;       /* 0x028: MMFSR[7:0] BFSR[15:8] UFSR[31:16] */
    REG32 HFSR;       /* 0x02C */
    REG32 DFSR;       /* 0x030 */
    REG32 MMFAR;      /* 0x034 */
    REG32 BFAR;       /* 0x038 */
    REG32 AFSR;       /* 0x03C */
    REG32 ID_PFR[2];  /* 0x040 */
    REG32 ID_DFR;     /* 0x048 */
    REG32 ID_AFR;     /* 0x04C */
    REG32 ID_MMFR[4]; /* 0x050 */
    REG32 ID_ISAR[5]; /* 0x060 */
    REG32 RESERVED0;  /* 0x074 */
    REG32 CLIDR;      /* 0x078 */
    REG32 CTR;        /* 0x07C */
    REG32 CCSIDR;     /* 0x080 */
    REG32 CSSELR;     /* 0x084 */
    REG32 CPACR;      /* 0x088 */
    REG32 RESERVED1[93];
    REG32 STIR; /* 0x200 (0xE000_EF00) */
    REG32 RESERVED2[12];
    REG32 FPCCR;  /* 0x234 */
    REG32 FPCAR;  /* 0x238 */
    REG32 FPDSCR; /* 0x23C */
    REG32 MVFR0;  /* 0x240 */
    REG32 MVFR1;  /* 0x244 */
    REG32 MVFR2;  /* 0x248 */
    REG32 RESERVED3;
    REG32 ICIALLU; /* 0x250 */
    REG32 RESERVED4;
    REG32 ICIMVAU;  /* 0x258 */
    REG32 DCIMVAC;  /* 0x25C */
    REG32 DCISW;    /* 0x260 */
    REG32 DCCMVAU;  /* 0x264 */
    REG32 DCCMVAC;  /* 0x268 */
    REG32 DCCSW;    /* 0x26C */
    REG32 DCCIMVAC; /* 0x270 */
    REG32 DCCISW;   /* 0x274 */
    REG32 BPIALL;   /* 0x278 */
} scb_regs_t;
_Static_assert(offsetof(scb_regs_t, SHCSR) == 0x24, "SCB SHCSR offset");
_Static_assert(offsetof(scb_regs_t, BFAR) == 0x38, "SCB BFAR offset");
_Static_assert(offsetof(scb_regs_t, CCSIDR) == 0x80, "SCB CCSIDR offset");
_Static_assert(offsetof(scb_regs_t, CPACR) == 0x88, "SCB CPACR offset");
_Static_assert(offsetof(scb_regs_t, STIR) == 0x200, "SCB STIR offset");
_Static_assert(offsetof(scb_regs_t, FPCCR) == 0x234, "SCB FPCCR offset");
_Static_assert(offsetof(scb_regs_t, ICIALLU) == 0x250, "SCB ICIALLU offset");
_Static_assert(offsetof(scb_regs_t, DCCISW) == 0x274, "SCB DCCISW offset");
#define SCB ((scb_regs_t *)SCB_BASE)

#define SCB_ICSR_VECTACTIVE_Msk 0x1FFu
#define SCB_ICSR_PENDSTCLR (1u << 25)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_ICSR_PENDSVCLR (1u << 27)
#define SCB_ICSR_PENDSVSET (1u << 28)
#define SCB_ICSR_NMIPENDSET (1u << 31)
#define SCB_VTOR_ALIGN 0x400u /* 166 vectors -> 1 KiB alignment (FACTS G.1) */
#define SCB_AIRCR_VECTKEY (0x05FAu << 16)
#define SCB_AIRCR_VECTKEY_Msk (0xFFFFu << 16)
#define SCB_AIRCR_SYSRESETREQ (1u << 2)
#define SCB_AIRCR_PRIGROUP_Pos 8u
#define SCB_AIRCR_PRIGROUP_Msk (7u << SCB_AIRCR_PRIGROUP_Pos)
#define SCB_SCR_SLEEPDEEP (1u << 2)
#define SCB_CCR_UNALIGN_TRP (1u << 3)
#define SCB_CCR_DIV_0_TRP (1u << 4)
#define SCB_CCR_STKALIGN (1u << 9)
#define SCB_CCR_DC (1u << 16)
#define SCB_CCR_IC (1u << 17)
#define SCB_CCR_BP (1u << 18)
#define SCB_SHPR_INDEX(exc) ((exc) - 4u) /* SHPR[] index of system exception number exc */
#define SCB_SHCSR_MEMFAULTENA (1u << 16)
#define SCB_SHCSR_BUSFAULTENA (1u << 17)
#define SCB_SHCSR_USGFAULTENA (1u << 18)
#define SCB_CFSR_IACCVIOL (1u << 0)
#define SCB_CFSR_DACCVIOL (1u << 1)
#define SCB_CFSR_MUNSTKERR (1u << 3)
#define SCB_CFSR_MSTKERR (1u << 4)
#define SCB_CFSR_MLSPERR (1u << 5)
#define SCB_CFSR_MMARVALID (1u << 7)
#define SCB_CFSR_IBUSERR (1u << 8)
#define SCB_CFSR_PRECISERR (1u << 9)
#define SCB_CFSR_IMPRECISERR (1u << 10)
#define SCB_CFSR_UNSTKERR (1u << 11)
#define SCB_CFSR_STKERR (1u << 12)
#define SCB_CFSR_LSPERR (1u << 13)
#define SCB_CFSR_BFARVALID (1u << 15)
#define SCB_CFSR_UNDEFINSTR (1u << 16)
#define SCB_CFSR_INVSTATE (1u << 17)
#define SCB_CFSR_INVPC (1u << 18)
#define SCB_CFSR_NOCP (1u << 19)
#define SCB_CFSR_UNALIGNED (1u << 24)
#define SCB_CFSR_DIVBYZERO (1u << 25)
#define SCB_HFSR_VECTTBL (1u << 1)
#define SCB_HFSR_FORCED (1u << 30)
#define SCB_HFSR_DEBUGEVT (1u << 31)
#define SCB_CPACR_CP10_Pos 20u
#define SCB_CPACR_CP11_Pos 22u
#define SCB_CPACR_FULL_ACCESS 3u
#define SCB_CPACR_FPU_FULL                                                                         \
    ((SCB_CPACR_FULL_ACCESS << SCB_CPACR_CP10_Pos) | (SCB_CPACR_FULL_ACCESS << SCB_CPACR_CP11_Pos))
#define SCB_FPCCR_LSPACT (1u << 0)
#define SCB_FPCCR_LSPEN (1u << 30)
#define SCB_FPCCR_ASPEN (1u << 31)
#define SCB_CCSIDR_LINESIZE_Msk 7u /* log2(words per line) - 2 */
#define SCB_CCSIDR_ASSOC_Pos 3u
#define SCB_CCSIDR_ASSOC_Msk (0x3FFu << SCB_CCSIDR_ASSOC_Pos)
#define SCB_CCSIDR_NUMSETS_Pos 13u
#define SCB_CCSIDR_NUMSETS_Msk (0x7FFFu << SCB_CCSIDR_NUMSETS_Pos)
#define SCB_CSSELR_L1_DATA 0u

/* System exception numbers */
#define EXC_NMI 2u
#define EXC_HARDFAULT 3u
#define EXC_MEMMANAGE 4u
#define EXC_BUSFAULT 5u
#define EXC_USAGEFAULT 6u
#define EXC_SVCALL 11u
#define EXC_DEBUGMON 12u
#define EXC_PENDSV 14u
#define EXC_SYSTICK 15u
#define EXC_IRQ0 16u

/* ------------------------------------------------------------------------------------------
 * SysTick (0xE000_E010)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 CSR;   /* 0x00 */
    REG32 RVR;   /* 0x04 */
    REG32 CVR;   /* 0x08 */
    REG32 CALIB; /* 0x0C */
} systick_regs_t;
#define SYSTICK ((systick_regs_t *)SYSTICK_BASE)
#define SYSTICK_CSR_ENABLE (1u << 0)
#define SYSTICK_CSR_TICKINT (1u << 1)
#define SYSTICK_CSR_CLKSOURCE (1u << 2) /* 1 = processor clock */
#define SYSTICK_CSR_COUNTFLAG (1u << 16)
#define SYSTICK_RVR_MAX 0x00FFFFFFu

/* ------------------------------------------------------------------------------------------
 * NVIC (0xE000_E100)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 ISER[8]; /* 0x000 */
    REG32 RESERVED0[24];
    REG32 ICER[8]; /* 0x080 */
    REG32 RESERVED1[24];
    REG32 ISPR[8]; /* 0x100 */
    REG32 RESERVED2[24];
    REG32 ICPR[8]; /* 0x180 */
    REG32 RESERVED3[24];
    REG32 IABR[8]; /* 0x200 */
    REG32 RESERVED4[56];
    REG8 IP[240]; /* 0x300: one priority byte per IRQ */
    REG32 RESERVED5[644];
    REG32 STIR; /* 0xE00 */
} nvic_regs_t;
_Static_assert(offsetof(nvic_regs_t, ICPR) == 0x180, "NVIC ICPR offset");
_Static_assert(offsetof(nvic_regs_t, IP) == 0x300, "NVIC IP offset");
_Static_assert(offsetof(nvic_regs_t, STIR) == 0xE00, "NVIC STIR offset");
#define NVIC ((nvic_regs_t *)NVIC_BASE)
#define NVIC_PRIO_BITS 4u
#define NVIC_PRIO(level) ((uint8_t)((level) << (8u - NVIC_PRIO_BITS))) /* level 0..15 */
#define NVIC_REG_WORDS 8u
#define NVIC_ALL_BITS 0xFFFFFFFFu
#define NVIC_WORD(irq) ((uint32_t)(irq) >> 5)
#define NVIC_BIT(irq) (1u << ((uint32_t)(irq) & 31u))

/* H743 IRQ numbers (FACTS A.4) */
#define IRQ_COUNT 150u
#define VECTOR_COUNT (16u + IRQ_COUNT) /* 166 words */
#define FLASH_IRQn 4u
#define USART1_IRQn 37u
#define OTG_HS_IRQn 77u
#define QUADSPI_IRQn 92u
#define MDMA_IRQn 122u
#define OTG_FS_EP1_OUT_IRQn 98u
#define OTG_FS_EP1_IN_IRQn 99u
#define OTG_FS_WKUP_IRQn 100u
#define OTG_FS_IRQn 101u

/* ------------------------------------------------------------------------------------------
 * MPU (0xE000_ED90)
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    REG32 TYPE;    /* 0x00 */
    REG32 CTRL;    /* 0x04 */
    REG32 RNR;     /* 0x08 */
    REG32 RBAR;    /* 0x0C */
    REG32 RASR;    /* 0x10 */
    REG32 RBAR_A1; /* 0x14 */
    REG32 RASR_A1; /* 0x18 */
    REG32 RBAR_A2; /* 0x1C */
    REG32 RASR_A2; /* 0x20 */
    REG32 RBAR_A3; /* 0x24 */
    REG32 RASR_A3; /* 0x28 */
} mpu_regs_t;
#define MPU ((mpu_regs_t *)MPU_BASE)
#define MPU_CTRL_ENABLE (1u << 0)
#define MPU_CTRL_HFNMIENA (1u << 1)
#define MPU_CTRL_PRIVDEFENA (1u << 2)
#define MPU_RBAR_REGION_Msk 0xFu
#define MPU_RBAR_VALID (1u << 4)
#define MPU_RASR_ENABLE (1u << 0)
#define MPU_RASR_SIZE_Pos 1u /* region size = 2^(SIZE+1) bytes */
#define MPU_RASR_SIZE_Msk (0x1Fu << MPU_RASR_SIZE_Pos)
#define MPU_RASR_SRD_Pos 8u
#define MPU_RASR_B (1u << 16)
#define MPU_RASR_C (1u << 17)
#define MPU_RASR_S (1u << 18)
#define MPU_RASR_TEX_Pos 19u
#define MPU_RASR_AP_Pos 24u
#define MPU_RASR_AP_NONE 0u
#define MPU_RASR_AP_RW 3u
#define MPU_RASR_AP_RO 6u
#define MPU_RASR_XN (1u << 28)

#endif /* STM32H743_H */
