"""PWR: reset values and the supply / voltage-scaling sequence of ST's HAL (FACTS §I)."""

from __future__ import annotations

import pytest

from peripherals.host import NS_PER_MS, NS_PER_S
from peripherals.pwr import Pwr

CR1, CSR1, CR2, CR3, CPUCR, D3CR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x18
BYPASS, LDOEN, SCUEN = 1 << 0, 1 << 1, 1 << 2
USB33DEN, USBREGEN, USB33RDY = 1 << 24, 1 << 25, 1 << 26
ACTVOSRDY, VOSRDY = 1 << 13, 1 << 13
VOS_MASK, VOS1, VOS3 = 3 << 14, 3 << 14, 1 << 14
SUPPLY_MASK = SCUEN | LDOEN | BYPASS  # PWR_SUPPLY_CONFIG_MASK of the HAL (no SMPS)


def rd(m, off):
    return m.read(off, 4)


def wr(m, off, value):
    m.write(off, 4, value)


def hal_config_supply_ldo(pwr, poll):
    """HAL_PWREx_ConfigSupply(PWR_LDO_SUPPLY); returns 'OK' or 'ERROR' as the HAL would."""
    if not rd(pwr, CR3) & SCUEN:
        return "OK" if rd(pwr, CR3) & SUPPLY_MASK == LDOEN else "ERROR"
    wr(pwr, CR3, (rd(pwr, CR3) & ~SUPPLY_MASK) | LDOEN)
    poll(lambda: rd(pwr, CSR1) & ACTVOSRDY, 1 * NS_PER_S)
    return "OK"


def test_reset_values(host):
    pwr = Pwr(host)
    expected = {CR1: 0xF000_C000, CSR1: 0x0000_4000, CR2: 0, CR3: 0x0000_0006, CPUCR: 0, D3CR: 0x0000_4000}
    for off, value in expected.items():
        assert rd(pwr, off) == value, hex(off)
    for off in (0x20, 0x24, 0x28):  # WKUPCR, WKUPFR, WKUPEPR
        assert rd(pwr, off) == 0


def test_hal_supply_configuration_then_voltage_scaling(host, poll):
    pwr = Pwr(host)
    wr(pwr, CR3, (rd(pwr, CR3) & ~SUPPLY_MASK) | LDOEN)
    assert rd(pwr, CR3) & SUPPLY_MASK == LDOEN  # SCUEN reads 0: locked
    assert not rd(pwr, CSR1) & ACTVOSRDY  # the regulator needs a moment
    took = poll(lambda: rd(pwr, CSR1) & ACTVOSRDY, 1 * NS_PER_S)
    assert took < NS_PER_MS
    # __HAL_PWR_VOLTAGESCALING_CONFIG(PWR_REGULATOR_VOLTAGE_SCALE1); while (!VOSRDY) {}
    wr(pwr, D3CR, (rd(pwr, D3CR) & ~VOS_MASK) | VOS1)
    assert rd(pwr, D3CR) & VOS_MASK == VOS1
    assert not rd(pwr, D3CR) & VOSRDY
    poll(lambda: rd(pwr, D3CR) & VOSRDY, NS_PER_MS)
    assert (rd(pwr, CSR1) >> 14) & 3 == 3  # ACTVOS mirrors the applied VOS


def test_supply_choice_is_write_once_until_power_on_reset(host, poll):
    pwr = Pwr(host)
    assert hal_config_supply_ldo(pwr, poll) == "OK"
    wr(pwr, CR3, BYPASS | SCUEN)  # a second choice is ignored
    assert rd(pwr, CR3) & SUPPLY_MASK == LDOEN
    wr(pwr, CR3, rd(pwr, CR3) | USB33DEN)  # other CR3 bits stay writable
    assert rd(pwr, CR3) & USB33DEN
    pwr.reset()  # system reset (e.g. AIRCR.SYSRESETREQ from the DFU bootloader)
    assert rd(pwr, CR3) & SUPPLY_MASK == LDOEN  # FACTS §I: still reads LDOEN=1, BYPASS=0
    assert rd(pwr, CSR1) & ACTVOSRDY
    assert not rd(pwr, CR3) & USB33DEN
    assert hal_config_supply_ldo(pwr, poll) == "OK"  # the HAL's "already configured" path
    wr(pwr, D3CR, (rd(pwr, D3CR) & ~VOS_MASK) | VOS1)
    poll(lambda: rd(pwr, D3CR) & VOSRDY, NS_PER_MS)
    pwr.reset("por")
    assert rd(pwr, CR3) == 0x0000_0006 and not rd(pwr, CSR1) & ACTVOSRDY
    wr(pwr, CR3, BYPASS)  # writable again after a power-on reset
    assert rd(pwr, CR3) & SUPPLY_MASK == BYPASS
    poll(lambda: rd(pwr, CSR1) & ACTVOSRDY, NS_PER_MS)


def test_invalid_supply_choice_never_gets_ready(host):
    pwr = Pwr(host)
    wr(pwr, CR3, LDOEN | BYPASS)
    host.advance(10 * NS_PER_MS)
    assert not rd(pwr, CSR1) & ACTVOSRDY
    assert any("invalid supply" in msg for _lvl, msg in host.logs)


def test_usb_regulator_ready(host, poll):
    pwr = Pwr(host)
    wr(pwr, CR3, rd(pwr, CR3) | USB33DEN | USBREGEN)
    assert not rd(pwr, CR3) & USB33RDY
    poll(lambda: rd(pwr, CR3) & USB33RDY, NS_PER_MS)
    wr(pwr, CR3, rd(pwr, CR3) & ~USB33DEN)
    assert not rd(pwr, CR3) & USB33RDY
    no_usb = Pwr(host, vdd33usb_present=False)
    wr(no_usb, CR3, rd(no_usb, CR3) | USB33DEN)
    host.advance(10 * NS_PER_MS)
    assert not rd(no_usb, CR3) & USB33RDY


def test_backup_regulator_and_dbp(host, poll):
    pwr = Pwr(host)
    assert not pwr.backup_domain_writable
    wr(pwr, CR1, rd(pwr, CR1) | (1 << 8))
    assert pwr.backup_domain_writable
    wr(pwr, CR2, 1)  # BREN
    poll(lambda: rd(pwr, CR2) & (1 << 16), NS_PER_MS)
    wr(pwr, CSR1, 0xFFFF_FFFF)  # CSR1 is read-only
    assert rd(pwr, CSR1) == 0x0000_4000


def test_instant_profile_and_bad_reset_kind(host):
    pwr = Pwr(host, instant=True)
    wr(pwr, CR3, LDOEN)
    assert rd(pwr, CSR1) & ACTVOSRDY
    wr(pwr, D3CR, VOS1)
    assert rd(pwr, D3CR) & VOSRDY
    with pytest.raises(ValueError, match="unknown reset kind"):
        pwr.reset("warm")
