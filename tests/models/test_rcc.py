"""RCC: reset values, the ready bits ST's HAL waits on, PLL/clock switch rules, computed clocks."""

from __future__ import annotations

import pytest

from peripherals.host import NS_PER_MS
from peripherals.rcc import Rcc

CR, CFGR, D1CFGR, D2CFGR, D3CFGR = 0x00, 0x10, 0x18, 0x1C, 0x20
PLLCKSELR, PLLCFGR, PLL1DIVR, PLL1FRACR = 0x28, 0x2C, 0x30, 0x34
D1CCIPR, D2CCIP2R, CIER, CIFR, CICR, BDCR, RSR = 0x4C, 0x54, 0x60, 0x64, 0x68, 0x70, 0xD0
AHB3RSTR, AHB3ENR, AHB1ENR, AHB4ENR, APB2ENR, APB4ENR = 0x7C, 0xD4, 0xD8, 0xE0, 0xF0, 0xF4

HSION, HSIRDY, HSI48ON, HSI48RDY = 1 << 0, 1 << 2, 1 << 12, 1 << 13
HSEON, HSERDY, PLL1ON, PLL1RDY = 1 << 16, 1 << 17, 1 << 24, 1 << 25
# HAL timeouts (ms) for the oscillators and the PLL
HSI48_TIMEOUT, HSE_TIMEOUT, PLL_TIMEOUT = 2 * NS_PER_MS, 100 * NS_PER_MS, 2 * NS_PER_MS


def rd(m, off):
    return m.read(off, 4)


def wr(m, off, value):
    m.write(off, 4, value)


def modify(m, off, clear, set_):
    wr(m, off, (rd(m, off) & ~clear) | set_)


def configure_pll1_devebox(rcc):
    """HAL_RCC_OscConfig for PLL1 from HSI: DIVM1=4, N=50, P=2, Q=4, R=2 (16 MHz ref, 800 MHz VCO)."""
    modify(rcc, CR, PLL1ON, 0)
    assert not rd(rcc, CR) & PLL1RDY
    modify(rcc, PLLCKSELR, 0x3 | (0x3F << 4), (0 << 0) | (4 << 4))  # PLLSRC=HSI, DIVM1=4
    wr(rcc, PLL1DIVR, (50 - 1) | ((2 - 1) << 9) | ((4 - 1) << 16) | ((2 - 1) << 24))
    modify(rcc, PLLCFGR, 0x1, 0)  # PLL1FRACEN=0
    wr(rcc, PLL1FRACR, 0)
    modify(rcc, PLLCFGR, 0xF, 3 << 2)  # PLL1RGE=8-16 MHz, wide VCO
    modify(rcc, PLLCFGR, 0, 0x7 << 16)  # DIVP1EN, DIVQ1EN, DIVR1EN
    modify(rcc, CR, 0, PLL1ON)


def test_reset_values_match_facts_and_svd(host):
    rcc = Rcc(host)
    assert rd(rcc, CR) == 0x0000_0025  # HSION, HSIRDY, HSIDIVF (FACTS §I)
    assert rd(rcc, 0x04) == 0x4000_0000  # HSICFGR
    assert rd(rcc, 0x0C) == 0x2000_0000  # CSICFGR
    assert rd(rcc, PLLCKSELR) == 0x0202_0200
    assert rd(rcc, PLLCFGR) == 0x01FF_0000
    for off in (0x30, 0x38, 0x40):
        assert rd(rcc, off) == 0x0101_0280  # PLLxDIVR
    for off in (CFGR, D1CFGR, D2CFGR, D3CFGR, D1CCIPR, 0x50, D2CCIP2R, 0x58, CIER, CIFR, BDCR, 0x74):
        assert rd(rcc, off) == 0, hex(off)
    for off in range(0x7C, 0xA0, 4):  # *RSTR
        assert rd(rcc, off) == 0, hex(off)
    for off in range(0xD4, 0x120, 4):  # *ENR, *LPENR
        assert rd(rcc, off) == 0, hex(off)
    # after power-on: POR, BOR, pin, D1, D2 and CPU reset flags
    assert rd(rcc, RSR) == 0x00FA_0000
    assert rcc.sysclk_hz() == 64_000_000 and rcc.hclk_hz() == 64_000_000


def test_clock_enable_bits_at_facts_positions(host):
    rcc = Rcc(host)
    wr(rcc, AHB3ENR, 1 << 14)
    wr(rcc, AHB1ENR, 1 << 27)
    wr(rcc, AHB4ENR, (1 << 0) | (1 << 2))
    wr(rcc, APB2ENR, 1 << 4)
    wr(rcc, APB4ENR, 1 << 1)
    assert rcc.is_enabled("QSPIEN") and rcc.is_enabled("USB2OTGFSEN")
    assert rcc.is_enabled("GPIOAEN") and rcc.is_enabled("GPIOCEN") and not rcc.is_enabled("GPIOBEN")
    assert rcc.is_enabled("USART1EN") and rcc.is_enabled("SYSCFGEN")
    assert not rcc.is_enabled("USB1OTGHSEN")
    # the C1_ registers of the single-core part are the same registers
    assert rd(rcc, AHB3ENR + 0x60) == 1 << 14
    wr(rcc, AHB1ENR + 0x60, 0)
    assert not rcc.is_enabled("USB2OTGFSEN")
    # reserved bits stay 0
    wr(rcc, AHB3ENR, 0xFFFF_FFFF)
    assert rd(rcc, AHB3ENR) == (1 << 0) | (1 << 4) | (1 << 5) | (1 << 12) | (1 << 14) | (1 << 16)
    with pytest.raises(ValueError, match="NOPEEN"):
        rcc.is_enabled("NOPEEN")


def test_hsi48_ready_follows_hsi48on_within_hal_timeout(host, poll):
    rcc = Rcc(host)
    modify(rcc, CR, 0, HSI48ON)
    assert not rd(rcc, CR) & HSI48RDY  # an oscillator needs its start-up time
    took = poll(lambda: rd(rcc, CR) & HSI48RDY, HSI48_TIMEOUT)
    assert 0 < took < HSI48_TIMEOUT
    modify(rcc, CR, HSI48ON, 0)
    assert not rd(rcc, CR) & HSI48RDY


def test_hse_ready_only_when_the_board_has_one(host, poll):
    rcc = Rcc(host, hse_hz=25_000_000)
    modify(rcc, CR, 0, HSEON)
    poll(lambda: rd(rcc, CR) & HSERDY, HSE_TIMEOUT)
    bare = Rcc(host, hse_hz=None)
    modify(bare, CR, 0, HSEON)
    host.advance(HSE_TIMEOUT)
    assert not rd(bare, CR) & HSERDY


def test_pll1_locks_then_drops_when_switched_off(host, poll):
    rcc = Rcc(host)
    configure_pll1_devebox(rcc)
    assert not rd(rcc, CR) & PLL1RDY
    poll(lambda: rd(rcc, CR) & PLL1RDY, PLL_TIMEOUT)
    modify(rcc, CR, PLL1ON, 0)
    assert not rd(rcc, CR) & PLL1RDY  # FACTS §I: PLL1RDY must drop after PLL1ON=0


def test_pll_configuration_is_frozen_while_the_pll_runs(host, poll):
    rcc = Rcc(host)
    configure_pll1_devebox(rcc)
    poll(lambda: rd(rcc, CR) & PLL1RDY, PLL_TIMEOUT)
    before = rd(rcc, PLL1DIVR)
    wr(rcc, PLL1DIVR, 0x0101_0280)
    assert rd(rcc, PLL1DIVR) == before
    modify(rcc, PLLCKSELR, 0x3, 2)  # PLLSRC: only while all PLLs are off
    assert rd(rcc, PLLCKSELR) & 0x3 == 0
    modify(rcc, CR, PLL1ON, 0)
    wr(rcc, PLL1DIVR, 0x0101_0280)
    assert rd(rcc, PLL1DIVR) == 0x0101_0280


def test_pll_waits_for_its_source_oscillator(host, poll):
    rcc = Rcc(host)
    modify(rcc, PLLCKSELR, 0x3 | (0x3F << 4), 2 | (5 << 4))  # HSE / 5 = 5 MHz
    modify(rcc, CR, 0, PLL1ON)
    host.advance(5 * NS_PER_MS)
    assert not rd(rcc, CR) & PLL1RDY  # HSE is off: no reference, no lock
    modify(rcc, CR, 0, HSEON)
    poll(lambda: rd(rcc, CR) & PLL1RDY, HSE_TIMEOUT)
    assert rd(rcc, CR) & HSERDY


def test_devebox_clock_tree_400_200_100_mhz(host, poll):
    rcc = Rcc(host)
    configure_pll1_devebox(rcc)
    poll(lambda: rd(rcc, CR) & PLL1RDY, PLL_TIMEOUT)
    # HAL_RCC_ClockConfig: D1CPRE /1, HPRE /2, D1PPRE /2, D2PPRE1 /2, D2PPRE2 /2, D3PPRE /2, SW=PLL1
    modify(rcc, D1CFGR, 0xFFF, (0 << 8) | (0b1000 << 0) | (0b100 << 4))
    modify(rcc, D2CFGR, 0x770, (0b100 << 4) | (0b100 << 8))
    modify(rcc, D3CFGR, 0x70, 0b100 << 4)
    modify(rcc, CFGR, 0x7, 3)
    assert (rd(rcc, CFGR) >> 3) & 0x7 == 3  # SWS follows SW at once: PLL1 is ready
    assert rcc.sysclk_hz() == 400_000_000
    assert rcc.cpu_hz() == 400_000_000
    assert rcc.hclk_hz() == 200_000_000
    assert rcc.pclk1_hz() == 100_000_000 and rcc.pclk2_hz() == 100_000_000
    assert rcc.pclk3_hz() == 100_000_000 and rcc.pclk4_hz() == 100_000_000
    assert rcc.pll_hz(1, "q") == 200_000_000 and rcc.pll_hz(1, "r") == 400_000_000
    assert rcc.usart16_kernel_hz() == 100_000_000  # USART16SEL reset = pclk2
    # kernel clock selectors
    assert rcc.qspi_kernel_hz() == 200_000_000  # QSPISEL=00: hclk3
    modify(rcc, D1CCIPR, 0x30, 1 << 4)
    assert rcc.qspi_kernel_hz() == 200_000_000  # pll1_q
    modify(rcc, D1CCIPR, 0x30, 3 << 4)
    assert rcc.qspi_kernel_hz() == 64_000_000  # per_ck = hsi_ker
    assert rcc.usb_kernel_hz() == 0  # USBSEL=00: disabled
    modify(rcc, D2CCIP2R, 0x3 << 20, 3 << 20)
    assert rcc.usb_kernel_hz() == 0  # HSI48 not running yet
    modify(rcc, CR, 0, HSI48ON)
    poll(lambda: rd(rcc, CR) & HSI48RDY, HSI48_TIMEOUT)
    assert rcc.usb_kernel_hz() == 48_000_000
    # and the PLL feeding the system clock cannot be stopped
    modify(rcc, CR, PLL1ON, 0)
    assert rd(rcc, CR) & PLL1ON and rd(rcc, CR) & PLL1RDY
    modify(rcc, CR, HSION, 0)  # HSI is PLL1's reference
    assert rd(rcc, CR) & HSION


def test_fractional_pll(host, poll):
    rcc = Rcc(host)
    configure_pll1_devebox(rcc)
    modify(rcc, CR, PLL1ON, 0)
    wr(rcc, PLL1FRACR, 4096 << 3)  # +0.5
    modify(rcc, PLLCFGR, 0, 1)  # PLL1FRACEN
    modify(rcc, CR, 0, PLL1ON)
    poll(lambda: rd(rcc, CR) & PLL1RDY, PLL_TIMEOUT)
    assert rcc.pll_hz(1, "p") == 404_000_000  # 16 MHz * 50.5 / 2


def test_switch_to_a_source_that_is_not_ready_waits_for_it(host, poll):
    rcc = Rcc(host)
    modify(rcc, CFGR, 0x7, 2)  # HSE, still off
    assert (rd(rcc, CFGR) >> 3) & 7 == 0  # SWS: still HSI
    assert rcc.sysclk_hz() == 64_000_000
    modify(rcc, CR, 0, HSEON)
    poll(lambda: (rd(rcc, CFGR) >> 3) & 7 == 2, HSE_TIMEOUT)
    assert rcc.sysclk_hz() == 25_000_000
    modify(rcc, CR, HSEON, 0)  # sysclk source: refused
    assert rd(rcc, CR) & HSEON
    modify(rcc, CR, HSION, 0)  # HSI no longer used: may stop
    assert not rd(rcc, CR) & (HSION | HSIRDY)


def test_hsi_divider_changes_hsi_frequency(host, poll):
    rcc = Rcc(host)
    modify(rcc, CR, 0x3 << 3, 1 << 3)  # HSIDIV /2
    assert not rd(rcc, CR) & (1 << 5)  # HSIDIVF drops until the new ratio applies
    poll(lambda: rd(rcc, CR) & (1 << 5), NS_PER_MS)
    assert rcc.sysclk_hz() == 32_000_000


def test_ready_interrupts(host, poll):
    rcc = Rcc(host)
    wr(rcc, CIER, 1 << 5)  # HSI48RDYIE
    modify(rcc, CR, 0, HSI48ON)
    poll(lambda: host.irqs.get(5, False), HSI48_TIMEOUT)
    assert rd(rcc, CIFR) == 1 << 5
    wr(rcc, CICR, 1 << 5)
    assert rd(rcc, CIFR) == 0 and host.irqs[5] is False
    assert rd(rcc, CICR) == 0


def test_reset_flags_and_rmvf(host):
    rcc = Rcc(host)
    assert rcc.reset_flags == {"PORRSTF", "BORRSTF", "PINRSTF", "D1RSTF", "D2RSTF", "CPURSTF"}
    modify(rcc, RSR, 0, 1 << 16)  # RMVF
    assert rd(rcc, RSR) & ~(1 << 16) == 0
    rcc.reset()
    rcc.note_reset("software")  # SYSRESETREQ
    assert rd(rcc, RSR) == (1 << 24) | (1 << 22) | (1 << 17)
    rcc.reset()
    rcc.note_reset("watchdog")
    assert rcc.reset_flags == {"SFTRSTF", "IWDG1RSTF", "PINRSTF", "CPURSTF"}  # flags accumulate
    with pytest.raises(ValueError, match="unknown reset kind"):
        rcc.note_reset("brownout!")
    wr(rcc, RSR, 0)  # flags are read-only
    assert rcc.reset_flags == {"SFTRSTF", "IWDG1RSTF", "PINRSTF", "CPURSTF"}


def test_system_reset_restores_registers_but_keeps_flags_and_backup_domain(host, poll):
    dbp = {"on": False}
    rcc = Rcc(host, backup_writable=lambda: dbp["on"])
    wr(rcc, BDCR, 1)  # LSEON while the backup domain is write-protected: ignored
    assert rd(rcc, BDCR) == 0
    dbp["on"] = True
    wr(rcc, BDCR, 1)
    configure_pll1_devebox(rcc)
    poll(lambda: rd(rcc, CR) & PLL1RDY, PLL_TIMEOUT)
    wr(rcc, AHB3ENR, 1 << 14)
    rcc.reset()
    assert rd(rcc, CR) == 0x25 and rd(rcc, PLL1DIVR) == 0x0101_0280 and rd(rcc, AHB3ENR) == 0
    assert rd(rcc, BDCR) & 1  # LSEON survives
    assert rd(rcc, RSR) == 0x00FA_0000
    rcc.reset("por")
    assert rd(rcc, BDCR) == 0
    with pytest.raises(ValueError, match="unknown reset kind"):
        rcc.reset("warm")


def test_reset_lines_are_reported(host):
    rcc = Rcc(host)
    seen = []
    rcc.on_reset_line(lambda name, asserted: seen.append((name, asserted)))
    modify(rcc, AHB3RSTR, 0, 1 << 14)
    assert rcc.in_reset("QSPI")
    modify(rcc, AHB3RSTR, 1 << 14, 0)
    assert seen == [("QSPIRST", True), ("QSPIRST", False)]


def test_instant_timing_profile(host):
    rcc = Rcc(host, instant=True)
    modify(rcc, CR, 0, HSI48ON | HSEON)
    assert rd(rcc, CR) & HSI48RDY and rd(rcc, CR) & HSERDY


def test_bad_hse_frequency_is_refused(host):
    with pytest.raises(ValueError, match="hse_hz"):
        Rcc(host, hse_hz=100_000_000)
