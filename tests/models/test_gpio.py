"""GPIO: per-port reset values, IDR from drive/pull/output, BSRR, LCKR, listeners (LED, K2)."""

from __future__ import annotations

import pytest

from peripherals.board_io import Button, Led
from peripherals.exti import Exti
from peripherals.gpio import GpioPort

MODER, OTYPER, OSPEEDR, PUPDR, IDR, ODR, BSRR, LCKR, AFRL, AFRH = (
    0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24,
)  # fmt: skip
LCKK = 1 << 16


def rd(m, off):
    return m.read(off, 4)


def wr(m, off, value):
    m.write(off, 4, value)


def set_mode(port, pin, mode):
    wr(port, MODER, (rd(port, MODER) & ~(3 << 2 * pin)) | (mode << 2 * pin))


def set_pull(port, pin, pull):
    wr(port, PUPDR, (rd(port, PUPDR) & ~(3 << 2 * pin)) | (pull << 2 * pin))


@pytest.mark.parametrize(
    "letter, moder, ospeedr, pupdr",
    [
        ("A", 0xABFF_FFFF, 0x0C00_0000, 0x6400_0000),
        ("B", 0xFFFF_FEBF, 0x0000_00C0, 0x0000_0100),
        ("C", 0xFFFF_FFFF, 0, 0),
        ("K", 0xFFFF_FFFF, 0, 0),
    ],
)
def test_reset_values(host, letter, moder, ospeedr, pupdr):
    port = GpioPort(host, port=letter)
    assert (rd(port, MODER), rd(port, OSPEEDR), rd(port, PUPDR)) == (moder, ospeedr, pupdr)
    for off in (OTYPER, ODR, BSRR, LCKR, AFRL, AFRH):
        assert rd(port, off) == 0


def test_idr_after_reset_shows_only_the_debug_pins_pulls(host):
    a = GpioPort(host, port="A")
    # analog pins read 0; PA13 pull-up, PA14 pull-down, PA15 pull-up (AF mode keeps the input path)
    assert rd(a, IDR) == (1 << 13) | (1 << 15)
    a.drive(0, 1)
    assert rd(a, IDR) & 1 == 0  # PA0 is analog: Schmitt trigger off
    set_mode(a, 0, 0)
    assert rd(a, IDR) & 1 == 1


def test_k2_button_on_pc5_with_pull_up(host):
    c = GpioPort(host, port="C")
    k2 = Button(host, c, 5)
    set_mode(c, 5, 0)  # input
    set_pull(c, 5, 1)  # pull-up, as the bootloader configures it
    assert rd(c, IDR) >> 5 & 1 == 1
    k2.press()
    assert rd(c, IDR) >> 5 & 1 == 0
    k2.release()
    assert rd(c, IDR) >> 5 & 1 == 1
    set_pull(c, 5, 2)  # pull-down
    assert c.input_level(5) == 0
    set_pull(c, 5, 0)  # floating: the configured floating level
    assert c.input_level(5) == 0
    high = GpioPort(host, port="D", floating_level=1)
    set_mode(high, 3, 0)
    assert high.input_level(3) == 1


def test_input_changes_reach_exti(host):
    c = GpioPort(host, port="C")
    exti = Exti(host)
    c.on_input_change(lambda pin, level: exti.signal(pin, level))
    wr(exti, 0x80, rd(exti, 0x80) | (1 << 5))  # unmask line 5
    wr(exti, 0x04, 1 << 5)  # falling edge
    set_mode(c, 5, 0)
    set_pull(c, 5, 1)  # pull-up: rising edge on the line, not selected
    assert rd(exti, 0x88) == 0
    Button(host, c, 5).press()
    assert rd(exti, 0x88) == 1 << 5 and host.irqs[23] is True


def test_output_bsrr_and_led_listener(host):
    a = GpioPort(host, port="A")
    led = Led(host, a, 1, activeLow=True)
    changes = []
    a.on_output_change(lambda pin, level: changes.append((pin, level)))
    assert a.output(1) is None
    set_mode(a, 1, 1)  # output, ODR=0: LED (active low) lights
    assert a.output(1) == 0 and led.lit
    wr(a, BSRR, 1 << 1)  # set
    assert rd(a, ODR) == 1 << 1 and a.output(1) == 1 and not led.lit
    assert rd(a, IDR) >> 1 & 1 == 1
    wr(a, BSRR, 1 << (16 + 1))  # reset
    assert rd(a, ODR) == 0
    wr(a, BSRR, (1 << 1) | (1 << (16 + 1)))  # both: set wins
    assert rd(a, ODR) == 1 << 1
    assert rd(a, BSRR) == 0  # write-only
    a.write(BSRR + 2, 2, 1 << 1)  # half-word write to the BR half
    assert rd(a, ODR) == 0
    assert changes == [(1, 0), (1, 1), (1, 0), (1, 1), (1, 0)]
    assert [lit for _t, lit in led.history] == [True, False, True, False, True]


def test_open_drain_output(host):
    b = GpioPort(host, port="B")
    set_mode(b, 7, 1)
    wr(b, OTYPER, 1 << 7)
    set_pull(b, 7, 1)
    assert b.output(7) == 0 and b.input_level(7) == 0
    wr(b, BSRR, 1 << 7)  # released: the pull-up or the outside decides
    assert b.output(7) is None and b.input_level(7) == 1
    b.drive(7, 0)
    assert b.input_level(7) == 0


def test_lock_sequence_freezes_configuration_until_reset(host):
    a = GpioPort(host, port="A")
    set_mode(a, 1, 1)
    wr(a, LCKR, LCKK | (1 << 1))
    wr(a, LCKR, 1 << 1)
    wr(a, LCKR, LCKK | (1 << 1))
    assert rd(a, LCKR) == LCKK | (1 << 1)  # the read completes the sequence
    assert rd(a, LCKR) & LCKK
    set_mode(a, 1, 0)  # locked pin: refused
    set_mode(a, 2, 1)  # other pins: free
    assert (rd(a, MODER) >> 2) & 3 == 1 and (rd(a, MODER) >> 4) & 3 == 1
    wr(a, LCKR, 0)  # LCKR itself is frozen
    assert rd(a, LCKR) == LCKK | (1 << 1)
    wr(a, BSRR, 1 << 1)  # data is never locked
    assert a.output(1) == 1
    a.reset()
    assert rd(a, LCKR) == 0 and rd(a, MODER) == 0xABFF_FFFF


def test_wrong_lock_sequence_does_not_lock(host):
    a = GpioPort(host, port="A")
    wr(a, LCKR, LCKK | 1)
    wr(a, LCKR, 1)
    wr(a, LCKR, LCKK | 3)  # LCK value changed during the sequence
    assert not rd(a, LCKR) & LCKK
    set_mode(a, 0, 1)
    assert rd(a, MODER) & 3 == 1


def test_alternate_functions_and_byte_access(host):
    a = GpioPort(host, port="A")
    wr(a, AFRH, (7 << 4) | (7 << 8))  # PA9/PA10 USART1 AF7
    wr(a, AFRL, 0xA << 4)
    assert a.alternate_function(9) == 7 and a.alternate_function(10) == 7 and a.alternate_function(1) == 0xA
    a.write(ODR + 1, 1, 0x80)  # byte write: pin 15
    assert a.read(ODR, 2) == 0x8000


def test_bad_arguments(host):
    with pytest.raises(ValueError, match="port"):
        GpioPort(host, port="Z")
    a = GpioPort(host, port="A")
    with pytest.raises(ValueError, match="pin"):
        a.drive(16, 1)
    with pytest.raises(ValueError, match="level"):
        a.drive(3, 2)
