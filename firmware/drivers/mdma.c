#include "mdma.h"

#include "cm7_core.h"
#include "stm32h743.h"
#include "systick.h"

#define WORD_BYTES 4u

static int in_tcm(uint32_t addr)
{
    return (addr - ITCM_BASE < ITCM_SIZE) || (addr - DTCM_BASE < DTCM_SIZE);
}

int mdma_fits(const void *buf, uint32_t len)
{
    uint32_t addr = (uint32_t)buf;
    return buf != 0 && (addr % WORD_BYTES) == 0u && len != 0u && (len % WORD_BYTES) == 0u &&
           len <= MDMA_BNDTR_BNDT_Msk;
}

int mdma_to_register(uint32_t channel, const void *src, volatile uint32_t *dst, uint32_t len, uint32_t request)
{
    if (channel >= MDMA_CHANNELS || dst == 0 || !mdma_fits(src, len) || request > MDMA_TBR_TSEL_Msk) {
        return MDMA_ERR_PARAM;
    }
    RCC->AHB3ENR |= RCC_AHB3ENR_MDMAEN;
    (void)RCC->AHB3ENR; /* the clock is on before the first MDMA access */
    cm7_dcache_clean_range((uint32_t)src, len);

    mdma_channel_regs_t *ch = MDMA_CHANNEL(channel);
    ch->CR = 0u; /* TCR, BNDTR and the addresses are writable only while EN=0 */
    ch->IFCR = MDMA_IFCR_ALL;
    uint32_t tlen = len < MDMA_TLEN_MAX ? len : MDMA_TLEN_MAX;
    ch->TCR = (MDMA_INC_UP << MDMA_TCR_SINC_Pos) | (MDMA_INC_FIXED << MDMA_TCR_DINC_Pos) |
              (MDMA_SIZE_WORD << MDMA_TCR_SSIZE_Pos) | (MDMA_SIZE_WORD << MDMA_TCR_DSIZE_Pos) |
              (MDMA_SIZE_WORD << MDMA_TCR_SINCOS_Pos) | ((tlen - 1u) << MDMA_TCR_TLEN_Pos) |
              (MDMA_TRGM_BUFFER << MDMA_TCR_TRGM_Pos);
    ch->BNDTR = len; /* one block, no repeat (BRC = 0) */
    ch->SAR = (uint32_t)src;
    ch->DAR = (uint32_t)dst;
    ch->BRUR = 0u;
    ch->LAR = 0u; /* no linked list */
    ch->MAR = 0u;
    ch->MDR = 0u;
    /* A TCM source is reached through the AHBS bus */
    ch->TBR = request | (in_tcm((uint32_t)src) ? MDMA_TBR_SBUS : 0u);
    ch->CR = MDMA_CR_EN;
    return MDMA_OK;
}

void mdma_stop(uint32_t channel)
{
    if (channel >= MDMA_CHANNELS) {
        return;
    }
    mdma_channel_regs_t *ch = MDMA_CHANNEL(channel);
    ch->CR = 0u;
    ch->IFCR = MDMA_IFCR_ALL;
}

int mdma_wait(uint32_t channel, uint32_t timeout_ms)
{
    if (channel >= MDMA_CHANNELS) {
        return MDMA_ERR_PARAM;
    }
    mdma_channel_regs_t *ch = MDMA_CHANNEL(channel);
    deadline_t d;
    deadline_start(&d, timeout_ms);
    int rc;
    for (;;) {
        uint32_t isr = ch->ISR;
        if ((isr & MDMA_ISR_TEIF) != 0u) {
            rc = MDMA_ERR_TRANSFER;
            break;
        }
        if ((isr & MDMA_ISR_CTCIF) != 0u) {
            rc = MDMA_OK;
            break;
        }
        if (deadline_expired(&d)) {
            rc = MDMA_ERR_TIMEOUT;
            break;
        }
    }
    mdma_stop(channel);
    return rc;
}
