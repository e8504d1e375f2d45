"""USART1: HAL init handshake, TX/TC timing in virtual time, RX/RXNE/ORE/IDLE, IRQ, ICR, FIFO."""

from __future__ import annotations

import pytest

from peripherals.usart import Usart

CR1, CR2, CR3, BRR, RQR, ISR, ICR, RDR, TDR, PRESC = (
    0x00,
    0x04,
    0x08,
    0x0C,
    0x18,
    0x1C,
    0x20,
    0x24,
    0x28,
    0x2C,
)
UE, RE, TE, IDLEIE, RXNEIE, TCIE, TXEIE, FIFOEN = 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 29
PE, ORE, IDLE, RXNE, TC, TXE, TEACK, REACK, TXFE = (
    1,
    1 << 3,
    1 << 4,
    1 << 5,
    1 << 6,
    1 << 7,
    1 << 21,
    1 << 22,
    1 << 23,
)
KERNEL_HZ = 100_000_000
BRR_115200 = round(KERNEL_HZ / 115_200)  # 868
FRAME_NS = round(10 * 1e9 * BRR_115200 / KERNEL_HZ)  # start + 8 data + stop = 86.8 us
IRQ = 37


def rd(m, off):
    return m.read(off, 4)


def wr(m, off, value):
    m.write(off, 4, value)


def hal_uart_init(u, extra_cr1=0):
    """HAL_UART_Init: disable, UART_SetConfig, enable, UART_CheckIdleState (TEACK, REACK)."""
    wr(u, CR1, rd(u, CR1) & ~UE)
    wr(u, CR1, TE | RE | extra_cr1)
    wr(u, CR2, 0)
    wr(u, CR3, 0)
    wr(u, PRESC, 0)
    wr(u, BRR, BRR_115200)
    wr(u, CR1, rd(u, CR1) | UE)
    isr = rd(u, ISR)
    assert isr & TEACK and isr & REACK


@pytest.fixture
def uart(host):
    u = Usart(host, frequency=KERNEL_HZ)
    hal_uart_init(u)
    return u


def test_reset_values(host):
    u = Usart(host)
    assert rd(u, ISR) == 0x0000_00C0
    for off in (CR1, CR2, CR3, BRR, 0x10, 0x14, RQR, ICR, RDR, TDR, PRESC):
        assert rd(u, off) == 0, hex(off)
    assert host.irqs.get(IRQ, False) is False


def test_teack_reack_follow_te_re(host, uart):
    wr(uart, CR1, rd(uart, CR1) & ~RE)
    assert rd(uart, ISR) & TEACK and not rd(uart, ISR) & REACK
    wr(uart, CR1, rd(uart, CR1) & ~UE)  # UE=0: every status flag back to reset
    assert rd(uart, ISR) == 0xC0


def test_configuration_locked_while_enabled(host, uart):
    wr(uart, BRR, 0x10)
    assert rd(uart, BRR) == BRR_115200
    wr(uart, CR1, rd(uart, CR1) | (1 << 12))  # M0 needs UE=0
    assert not rd(uart, CR1) & (1 << 12)
    assert uart.frame_ns() == FRAME_NS
    assert uart.baud_rate() == pytest.approx(115_207, rel=1e-4)


def test_transmit_byte_timing_and_listener(host, uart):
    sent = []
    uart.on_tx(lambda b, end_ns: sent.append((end_ns, b)))
    assert rd(uart, ISR) & TXE
    wr(uart, TDR, ord("H"))
    assert not rd(uart, ISR) & TC  # on the line now
    assert rd(uart, ISR) & TXE  # TDR already moved to the shift register
    wr(uart, TDR, ord("i"))
    assert not rd(uart, ISR) & TXE  # TDR holds the second byte
    host.advance(FRAME_NS - 1)
    assert not rd(uart, ISR) & TC and sent == []
    host.advance(1)
    assert rd(uart, ISR) & TXE and not rd(uart, ISR) & TC
    # "H" is neither a newline nor the last byte: handed over at the next access, with its end time
    assert sent == [(FRAME_NS, ord("H"))]
    host.advance(FRAME_NS)
    assert sent[-1] == (2 * FRAME_NS, ord("i"))  # the last byte: delivered when it ends
    assert rd(uart, ISR) & TC
    assert bytes(uart.tx_log) == b"Hi"


def test_hal_polling_transmit_of_a_line(host, uart, poll):
    for ch in b"boot ok\r\n":
        poll(lambda: rd(uart, ISR) & TXE, 1_000_000_000)
        wr(uart, TDR, ch)
    took = poll(lambda: rd(uart, ISR) & TC, 1_000_000_000, step_ns=100)
    assert bytes(uart.tx_log) == b"boot ok\r\n"
    assert 8 * FRAME_NS <= host.now_ns() <= 9 * FRAME_NS + 1000 and took > 0


def test_tx_irq_levels_and_icr(host, uart):
    wr(uart, CR1, rd(uart, CR1) | TXEIE)
    assert host.irqs[IRQ] is True  # TXE is 1
    wr(uart, CR1, rd(uart, CR1) & ~TXEIE | TCIE)
    assert host.irqs[IRQ] is True  # TC is 1 after reset
    wr(uart, ICR, 1 << 6)  # TCCF
    assert not rd(uart, ISR) & TC and host.irqs[IRQ] is False
    wr(uart, TDR, 0x55)
    host.advance(FRAME_NS)
    assert host.irqs[IRQ] is True
    assert (FRAME_NS, IRQ, True) in host.irq_history


def test_receive_rxne_overrun_and_idle(host, uart):
    uart.inject_rx(b"ab")
    assert not rd(uart, ISR) & RXNE
    host.advance(FRAME_NS)
    assert rd(uart, ISR) & RXNE
    host.advance(FRAME_NS)  # 'b' arrives while 'a' is unread
    assert rd(uart, ISR) & ORE
    assert rd(uart, RDR) == ord("a")  # RDR kept the unread byte
    assert not rd(uart, ISR) & RXNE
    wr(uart, ICR, 1 << 3)  # ORECF
    assert not rd(uart, ISR) & ORE
    assert not rd(uart, ISR) & IDLE
    host.advance(FRAME_NS)  # one idle frame after the last byte
    assert rd(uart, ISR) & IDLE
    wr(uart, ICR, 1 << 4)
    assert not rd(uart, ISR) & IDLE


def test_rx_irq_and_rdr_read(host, uart):
    wr(uart, CR1, rd(uart, CR1) | RXNEIE)
    assert host.irqs[IRQ] is False
    uart.inject_rx(b"x")
    host.advance(FRAME_NS)
    assert host.irqs[IRQ] is True
    assert rd(uart, RDR) == ord("x")
    assert host.irqs[IRQ] is False


def test_overrun_disabled_overwrites(host):
    u = Usart(host, frequency=KERNEL_HZ)
    hal_uart_init(u)
    wr(u, CR3, 1 << 12)  # OVRDIS can only be written while UE=0
    assert rd(u, CR3) == 0
    u2 = Usart(host, frequency=KERNEL_HZ)
    wr(u2, CR1, TE | RE)
    wr(u2, CR3, 1 << 12)
    wr(u2, BRR, BRR_115200)
    wr(u2, CR1, TE | RE | UE)
    u2.inject_rx(b"12")
    host.advance(2 * FRAME_NS)
    assert not rd(u2, ISR) & ORE and rd(u2, RDR) == ord("2")


def test_receiver_off_loses_bytes(host, uart):
    wr(uart, CR1, rd(uart, CR1) & ~RE)
    uart.inject_rx(b"z")
    host.advance(2 * FRAME_NS)
    assert not rd(uart, ISR) & RXNE
    assert uart.rx_pending == 0


def test_fifo_mode(host):
    u = Usart(host, frequency=KERNEL_HZ)
    hal_uart_init(u, extra_cr1=FIFOEN)
    sent = []
    u.on_tx(lambda b, _end_ns: sent.append(b))
    assert rd(u, ISR) & TXFE
    for ch in b"0123456789ABCDEF":  # shift register + 16 FIFO entries: all accepted
        assert rd(u, ISR) & TXE  # TXFNF
        wr(u, TDR, ch)
    assert rd(u, ISR) & TXE  # one went to the shift register, FIFO has 15
    wr(u, TDR, ord("G"))
    assert not rd(u, ISR) & TXE and not rd(u, ISR) & TXFE
    host.advance(17 * FRAME_NS)
    assert bytes(sent) == b"0123456789ABCDEFG"
    assert rd(u, ISR) & TXFE and rd(u, ISR) & TC
    u.inject_rx(b"hello")
    host.advance(5 * FRAME_NS)
    assert not rd(u, ISR) & ORE
    assert bytes(rd(u, RDR) for _ in range(5)) == b"hello"
    assert not rd(u, ISR) & RXNE


def test_instant_profile_and_input_checks(host):
    u = Usart(host, frequency=KERNEL_HZ, instant=True)
    hal_uart_init(u)
    wr(u, TDR, ord("!"))
    assert rd(u, ISR) & TC and bytes(u.tx_log) == b"!"
    with pytest.raises(TypeError):
        u.inject_rx("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="frequency"):
        Usart(host, frequency=0)


def test_kernel_clock_callable_sets_the_baud_rate(host):
    clock = {"hz": KERNEL_HZ}
    u = Usart(host, frequency=lambda: clock["hz"])
    hal_uart_init(u)
    clock["hz"] = KERNEL_HZ // 2
    assert u.frame_ns() == 2 * FRAME_NS
