#include "clock.h"

#include "cm7_core.h"
#include "stm32h743.h"

/* Target configuration */
#define PLL1_DIVM 4u  /* 64 MHz / 4 = 16 MHz reference */
#define PLL1_DIVN 50u /* VCO 800 MHz (wide range) */
#define PLL1_DIVP 2u  /* 400 MHz SYSCLK */
#define PLL1_DIVQ 4u  /* 200 MHz pll1_q (available as a kernel clock) */
#define PLL1_DIVR 2u
#define FLASH_LATENCY_WS 2u /* 200 MHz AXI clock at VOS1 (FACTS A.1) */
#define FLASH_WRHIGHFREQ 2u

static uint32_t ahb_divider(uint32_t code)
{
    /* 0xxx = /1; 1000 /2, 1001 /4, 1010 /8, 1011 /16, 1100 /64, 1101 /128, 1110 /256, 1111 /512 */
    if ((code & RCC_AHB_PRESC_DIV_BIT) == 0u) {
        return 1u;
    }
    uint32_t shift = (code & 7u) + 1u;
    if (shift >= 5u) {
        shift++; /* /32 does not exist */
    }
    return 1u << shift;
}

static uint32_t apb_divider(uint32_t code)
{
    /* 0xx = /1; 100 /2, 101 /4, 110 /8, 111 /16 */
    if ((code & RCC_APB_PRESC_DIV_BIT) == 0u) {
        return 1u;
    }
    return 1u << ((code & 3u) + 1u);
}

static uint32_t hsi_hz(void) { return CLOCK_HSI_HZ >> ((RCC->CR & RCC_CR_HSIDIV_Msk) >> RCC_CR_HSIDIV_Pos); }

static uint32_t pll1_p_hz(void)
{
    uint32_t cksel = RCC->PLLCKSELR;
    uint32_t divm = (cksel & RCC_PLLCKSELR_DIVM1_Msk) >> RCC_PLLCKSELR_DIVM1_Pos;
    uint32_t in;
    switch ((cksel & RCC_PLLCKSELR_PLLSRC_Msk) >> RCC_PLLCKSELR_PLLSRC_Pos) {
    case RCC_PLLCKSELR_PLLSRC_HSI:
        in = hsi_hz();
        break;
    case RCC_PLLCKSELR_PLLSRC_CSI:
        in = CLOCK_CSI_HZ;
        break;
    case RCC_PLLCKSELR_PLLSRC_HSE:
        in = CLOCK_HSE_HZ;
        break;
    default:
        return 0u;
    }
    if (divm == 0u) {
        return 0u; /* prescaler disabled */
    }
    uint32_t divr = RCC->PLL1DIVR;
    uint32_t n = ((divr & RCC_PLL1DIVR_DIVN1_Msk) >> RCC_PLL1DIVR_DIVN1_Pos) + 1u;
    uint32_t p = ((divr & RCC_PLL1DIVR_DIVP1_Msk) >> RCC_PLL1DIVR_DIVP1_Pos) + 1u;
    /* Fractional part ignored (clock_init leaves FRACN1 = 0). */
    return (uint32_t)(((uint64_t)(in / divm) * n) / p);
}

uint32_t clock_sysclk_hz(void)
{
    switch ((RCC->CFGR & RCC_CFGR_SWS_Msk) >> RCC_CFGR_SWS_Pos) {
    case RCC_CFGR_SW_HSI:
        return hsi_hz();
    case RCC_CFGR_SW_CSI:
        return CLOCK_CSI_HZ;
    case RCC_CFGR_SW_HSE:
        return CLOCK_HSE_HZ;
    case RCC_CFGR_SW_PLL1:
        return pll1_p_hz();
    default:
        return 0u;
    }
}

uint32_t clock_core_hz(void)
{
    uint32_t d1cpre = (RCC->D1CFGR & RCC_D1CFGR_D1CPRE_Msk) >> RCC_D1CFGR_D1CPRE_Pos;
    return clock_sysclk_hz() / ahb_divider(d1cpre);
}

uint32_t clock_hclk_hz(void)
{
    uint32_t hpre = (RCC->D1CFGR & RCC_D1CFGR_HPRE_Msk) >> RCC_D1CFGR_HPRE_Pos;
    return clock_core_hz() / ahb_divider(hpre);
}

uint32_t clock_pclk2_hz(void)
{
    uint32_t ppre2 = (RCC->D2CFGR & RCC_D2CFGR_D2PPRE2_Msk) >> RCC_D2CFGR_D2PPRE2_Pos;
    return clock_hclk_hz() / apb_divider(ppre2);
}

static int pll1_is_sysclk(void)
{
    return ((RCC->CFGR & RCC_CFGR_SWS_Msk) >> RCC_CFGR_SWS_Pos) == RCC_CFGR_SW_PLL1 &&
           (RCC->CR & RCC_CR_PLL1RDY) != 0u;
}

static void power_init(void)
{
    /* Supply: LDO. PWR_CR3 is write-once per power-on: SCUEN=1 means not chosen yet. When it is
     * already chosen (after a system reset) the value must be kept as it is. */
    if ((PWR->CR3 & PWR_CR3_SCUEN) != 0u) {
        PWR->CR3 = (PWR->CR3 & ~PWR_CR3_SUPPLY_Msk) | PWR_CR3_LDOEN;
    }
    while ((PWR->CSR1 & PWR_CSR1_ACTVOSRDY) == 0u) {
    }
    /* Voltage scale 1 (needed for 400 MHz), wait for the regulator. */
    PWR->D3CR = (PWR->D3CR & ~PWR_D3CR_VOS_Msk) | (PWR_D3CR_VOS_SCALE1 << PWR_D3CR_VOS_Pos);
    (void)PWR->D3CR;
    while ((PWR->D3CR & PWR_D3CR_VOSRDY) == 0u) {
    }
}

static void flash_latency_set(uint32_t ws, uint32_t wrhighfreq)
{
    uint32_t want = (ws << FLASH_ACR_LATENCY_Pos) | (wrhighfreq << FLASH_ACR_WRHIGHFREQ_Pos);
    FLASH_ACR = (FLASH_ACR & ~(FLASH_ACR_LATENCY_Msk | FLASH_ACR_WRHIGHFREQ_Msk)) | want;
    /* The new latency is in force once it reads back. */
    while ((FLASH_ACR & (FLASH_ACR_LATENCY_Msk | FLASH_ACR_WRHIGHFREQ_Msk)) != want) {
    }
}

void clock_init(void)
{
    if (pll1_is_sysclk()) {
        return; /* configured by whoever started us: keep QUADSPI/USB/UART clocks stable */
    }

    power_init();

    /* HSI on, undivided (64 MHz). */
    RCC->CR |= RCC_CR_HSION;
    while ((RCC->CR & RCC_CR_HSIRDY) == 0u) {
    }
    if ((RCC->CR & RCC_CR_HSIDIV_Msk) != 0u) {
        RCC->CR &= ~RCC_CR_HSIDIV_Msk;
        while ((RCC->CR & RCC_CR_HSIDIVF) == 0u) {
        }
    }

    /* Run from HSI while PLL1 is reprogrammed (it cannot change while it is on). */
    if (((RCC->CFGR & RCC_CFGR_SWS_Msk) >> RCC_CFGR_SWS_Pos) != RCC_CFGR_SW_HSI) {
        RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW_Msk) | (RCC_CFGR_SW_HSI << RCC_CFGR_SW_Pos);
        while (((RCC->CFGR & RCC_CFGR_SWS_Msk) >> RCC_CFGR_SWS_Pos) != RCC_CFGR_SW_HSI) {
        }
    }
    RCC->CR &= ~RCC_CR_PLL1ON;
    while ((RCC->CR & RCC_CR_PLL1RDY) != 0u) {
    }

    RCC->PLLCKSELR = (RCC->PLLCKSELR & ~(RCC_PLLCKSELR_PLLSRC_Msk | RCC_PLLCKSELR_DIVM1_Msk)) |
                     (RCC_PLLCKSELR_PLLSRC_HSI << RCC_PLLCKSELR_PLLSRC_Pos) |
                     (PLL1_DIVM << RCC_PLLCKSELR_DIVM1_Pos);
    RCC->PLL1DIVR = ((PLL1_DIVN - 1u) << RCC_PLL1DIVR_DIVN1_Pos) | ((PLL1_DIVP - 1u) << RCC_PLL1DIVR_DIVP1_Pos) |
                    ((PLL1_DIVQ - 1u) << RCC_PLL1DIVR_DIVQ1_Pos) | ((PLL1_DIVR - 1u) << RCC_PLL1DIVR_DIVR1_Pos);
    RCC->PLL1FRACR = 0u;
    RCC->PLLCFGR = (RCC->PLLCFGR & ~(RCC_PLLCFGR_PLL1FRACEN | RCC_PLLCFGR_PLL1VCOSEL | RCC_PLLCFGR_PLL1RGE_Msk)) |
                   (RCC_PLLCFGR_PLLRGE_8_16MHZ << RCC_PLLCFGR_PLL1RGE_Pos) | RCC_PLLCFGR_DIVP1EN |
                   RCC_PLLCFGR_DIVQ1EN | RCC_PLLCFGR_DIVR1EN;
    RCC->CR |= RCC_CR_PLL1ON;
    while ((RCC->CR & RCC_CR_PLL1RDY) == 0u) {
    }

    /* Flash wait states for the 200 MHz AXI clock before the clock goes up. */
    flash_latency_set(FLASH_LATENCY_WS, FLASH_WRHIGHFREQ);

    /* Bus prescalers: APBs /2 first, then HPRE /2, D1CPRE /1. */
    RCC->D1CFGR = (RCC->D1CFGR & ~RCC_D1CFGR_D1PPRE_Msk) | (RCC_APB_PRESC_DIV2 << RCC_D1CFGR_D1PPRE_Pos);
    RCC->D2CFGR = (RCC->D2CFGR & ~(RCC_D2CFGR_D2PPRE1_Msk | RCC_D2CFGR_D2PPRE2_Msk)) |
                  (RCC_APB_PRESC_DIV2 << RCC_D2CFGR_D2PPRE1_Pos) | (RCC_APB_PRESC_DIV2 << RCC_D2CFGR_D2PPRE2_Pos);
    RCC->D3CFGR = (RCC->D3CFGR & ~RCC_D3CFGR_D3PPRE_Msk) | (RCC_APB_PRESC_DIV2 << RCC_D3CFGR_D3PPRE_Pos);
    RCC->D1CFGR = (RCC->D1CFGR & ~RCC_D1CFGR_HPRE_Msk) | (RCC_AHB_PRESC_DIV2 << RCC_D1CFGR_HPRE_Pos);
    RCC->D1CFGR = (RCC->D1CFGR & ~RCC_D1CFGR_D1CPRE_Msk) | (RCC_AHB_PRESC_DIV1 << RCC_D1CFGR_D1CPRE_Pos);

    /* Switch SYSCLK to PLL1. */
    RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW_Msk) | (RCC_CFGR_SW_PLL1 << RCC_CFGR_SW_Pos);
    while (((RCC->CFGR & RCC_CFGR_SWS_Msk) >> RCC_CFGR_SWS_Pos) != RCC_CFGR_SW_PLL1) {
    }
}

void clock_enable_hsi48(void)
{
    RCC->CR |= RCC_CR_HSI48ON;
    while ((RCC->CR & RCC_CR_HSI48RDY) == 0u) {
    }
}
