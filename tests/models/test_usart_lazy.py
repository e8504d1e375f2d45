"""The lazy USART transmitter against the per-character-event model it replaced.

The oracle (usart_eager_reference.py, beside this file) is the previous model, one event per
character. The same random scripts of register accesses, virtual-time steps and host calls drive
both; every register value read, the IRQ line's history, ``tx_log`` and what the TX listeners get
must be identical, while the lazy model schedules far fewer events. On the board, the UART lines of
real firmware must end at the same virtual times.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import peripherals.usart
from peripherals.standalone_host import StandaloneHost
from peripherals.usart import Usart


def _load_reference() -> Any:
    name = "usart_eager_reference"
    if name not in sys.modules:  # importlib mode: no test folder on sys.path
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


EagerUsart = _load_reference().EagerUsart

CR1, CR2, CR3, BRR, RQR, ISR, ICR, RDR, TDR = 0x00, 0x04, 0x08, 0x0C, 0x18, 0x1C, 0x20, 0x24, 0x28
UE, RE, TE, IDLEIE, RXNEIE, TCIE, TXEIE, M0 = 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 12
PCE, FIFOEN, TXFEIE = 1 << 10, 1 << 29, 1 << 30
TXFTIE, TXFTCFG_SHIFT = 1 << 23, 29
TC, TXE, TXFE = 1 << 6, 1 << 7, 1 << 23
TCCF = 1 << 6
TXFRQ, SBKRQ, RXFRQ = 1 << 4, 1 << 1, 1 << 3
KERNEL_HZ = 100_000_000
BRR_115200 = 868
FRAME_NS = 86_800  # 10 bits at 100 MHz / 868
IRQ = 37
REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "firmware" / "build"


class Rig:
    """One model on its own StandaloneHost, with everything observable recorded."""

    def __init__(
        self, cls: type, *, instant: bool = False, listeners: int = 1, frequency: Any = KERNEL_HZ
    ) -> None:
        self.host = StandaloneHost()
        self.schedules: list[str] = []
        schedule = self.host.schedule

        def counting(delay_ns: int, callback: Callable[[], None], name: str = "") -> Any:
            self.schedules.append(name)
            return schedule(delay_ns, callback, name)

        self.host.schedule = counting  # type: ignore[method-assign]
        self.u = cls(self.host, frequency=frequency, instant=instant)
        self.reads: list[tuple[int, int, int, int]] = []  # (time, offset, size, value)
        self.sent: list[list[tuple[int, int, int]]] = [[] for _ in range(listeners)]
        for i in range(listeners):
            self.u.on_tx(lambda b, end, i=i: self.sent[i].append((b, end, self.host.now_ns())))

    def rd(self, offset: int, size: int = 4) -> int:
        value = self.u.read(offset, size)
        self.reads.append((self.host.now_ns(), offset, size, value))
        return value

    def wr(self, offset: int, value: int, size: int = 4) -> None:
        self.u.write(offset, size, value)

    def deliveries(self) -> list[list[tuple[int, int]]]:
        """What each listener got: (byte, end_ns), without the time of the call."""
        return [[(b, end) for b, end, _at in calls] for calls in self.sent]


def hal_init(rig: Rig, cr1: int = 0, brr: int = BRR_115200) -> None:
    rig.wr(CR1, 0)
    rig.wr(CR1, TE | RE | cr1)
    rig.wr(BRR, brr)
    rig.wr(CR1, TE | RE | UE | cr1)


# ---------------------------------------------------------------------------- random scripts
def random_script(rng: random.Random, steps: int) -> list[tuple]:
    """Operations for both models: accesses, time steps (many on byte boundaries), host calls."""
    ops: list[tuple] = []
    for _ in range(steps):
        r = rng.random()
        if r < 0.30:
            byte = 0x0A if rng.random() < 0.2 else rng.randrange(0x200)
            ops.append(("tdr", byte, rng.choice((4, 4, 4, 2, 1))))
        elif r < 0.52:
            step = rng.choice(
                (0, 1, FRAME_NS - 1, FRAME_NS, FRAME_NS + 1, 2 * FRAME_NS, rng.randrange(4 * FRAME_NS))
            )
            ops.append(("advance", step))
        elif r < 0.66:
            ops.append(("read", ISR, rng.choice((4, 4, 4, 1, 2)), rng.randrange(1, 4)))  # polls
        elif r < 0.74:
            bits = rng.choice((TE, TXEIE, TCIE, TXFEIE, RXNEIE, IDLEIE, TE | TXEIE))
            ops.append(("cr1_toggle", bits))
        elif r < 0.78:
            value = rng.randrange(8) << TXFTCFG_SHIFT | (TXFTIE if rng.random() < 0.5 else 0)
            ops.append(("cr3", value))
        elif r < 0.82:
            ops.append(("icr", rng.choice((TCCF, TCCF, 0xFFFFFFFF))))
        elif r < 0.85:
            ops.append(("rqr", rng.choice((TXFRQ, SBKRQ, RXFRQ))))
        elif r < 0.88:
            # UE=0 (everything stops), then a new frame format and FIFO mode, UE=1 again
            cr1 = TE | RE | rng.choice((0, FIFOEN)) | rng.choice((0, M0, PCE, M0 | PCE))
            ops.append(("reconfigure", cr1, rng.choice((BRR_115200, BRR_115200, 100, 0))))
        elif r < 0.91:
            ops.append(("rx", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))))
        elif r < 0.94:
            ops.append(("read", RDR, 4, 1))
        elif r < 0.96:
            ops.append(("tx_log",))
        elif r < 0.97:
            ops.append(("reset",))
        else:
            ops.append(("burst", bytes(rng.randrange(256) for _ in range(rng.randrange(2, 20)))))
    return ops


def apply(rig: Rig, op: tuple) -> object:
    """Run one operation; returns what it observed (compared between the two models)."""
    u, kind = rig.u, op[0]
    if kind == "tdr":
        rig.wr(TDR, op[1], op[2])
    elif kind == "burst":
        for byte in op[1]:
            rig.wr(TDR, byte)
    elif kind == "advance":
        rig.host.advance(op[1])
    elif kind == "read":
        _, offset, size, times = op
        return [rig.rd(offset, size) for _ in range(times)]
    elif kind == "cr1_toggle":
        cr1 = rig.rd(CR1)
        rig.wr(CR1, cr1 ^ op[1])
    elif kind == "cr3":
        rig.wr(CR3, op[1])
    elif kind == "icr":
        rig.wr(ICR, op[1])
    elif kind == "rqr":
        rig.wr(RQR, op[1])
    elif kind == "reconfigure":
        _, cr1, brr = op
        rig.wr(CR1, rig.rd(CR1) & ~UE)
        rig.wr(CR1, cr1)
        rig.wr(BRR, brr)
        rig.wr(CR1, cr1 | UE)
    elif kind == "rx":
        u.inject_rx(op[1])
    elif kind == "tx_log":
        return bytes(u.tx_log)
    elif kind == "reset":
        u.reset()
        hal_init(rig)
    return None


def run_pair(
    seed: int, steps: int = 400, *, instant: bool = False, cr1: int = 0, listeners: int = 1
) -> tuple[Rig, Rig]:
    rng = random.Random(seed)
    eager = Rig(EagerUsart, instant=instant, listeners=listeners)
    lazy = Rig(Usart, instant=instant, listeners=listeners)
    for rig in (eager, lazy):
        hal_init(rig, cr1)
    for i, op in enumerate(random_script(rng, steps)):
        seen_eager, seen_lazy = apply(eager, op), apply(lazy, op)
        where = f"seed {seed}, step {i} {op!r} at {eager.host.now_ns()} ns"
        assert seen_lazy == seen_eager, where
        assert lazy.host.now_ns() == eager.host.now_ns(), where
        assert lazy.host.irq_history == eager.host.irq_history, where
    for rig in (eager, lazy):
        rig.host.run_until_idle()  # the lazy model may have nothing left to schedule earlier
    end = max(eager.host.now_ns(), lazy.host.now_ns())
    for rig in (eager, lazy):
        rig.host.events.advance_to(end)
    assert lazy.rd(ISR) == eager.rd(ISR), seed
    return eager, lazy


def assert_same(eager: Rig, lazy: Rig) -> None:
    assert lazy.reads == eager.reads
    assert lazy.host.irq_history == eager.host.irq_history
    assert bytes(lazy.u.tx_log) == bytes(eager.u.tx_log)
    assert lazy.deliveries() == eager.deliveries()
    assert {m for _l, m in lazy.host.logs} == {m for _l, m in eager.host.logs}
    for calls in lazy.sent:
        for byte, end, at in calls:
            assert at >= end  # never before the stop bit ends
            if byte == 0x0A:
                assert at == end, "a newline reaches the listeners when it ends"


@pytest.mark.parametrize("seed", range(40))
def test_random_scripts_match_the_per_character_model(seed):
    # FIFO mode or not; no TX listener (events only for the IRQ line and polling), one, two
    eager, lazy = run_pair(seed, cr1=FIFOEN if seed % 2 else 0, listeners=seed % 3)
    assert_same(eager, lazy)
    assert len(eager.u.tx_log) > 0


@pytest.mark.parametrize("seed", range(5))
def test_random_scripts_instant(seed):
    eager, lazy = run_pair(1000 + seed, 200, instant=True, cr1=FIFOEN if seed % 2 else 0)
    assert_same(eager, lazy)


def test_polling_isr_gets_an_event_at_each_change():
    """A firmware loop reading the same ISR value again and again may be skipped by the engine
    up to the next event: the lazy model puts one at the next change of ISR."""
    rig = Rig(Usart, listeners=0)
    hal_init(rig)
    rig.wr(TDR, ord("a"))
    rig.wr(TDR, ord("b"))  # TDR full: TXE is 0 until "a" ends
    assert not rig.rd(ISR) & TXE
    assert rig.host.events.next_time() is None  # nobody needs an event yet
    assert not rig.rd(ISR) & TXE  # the same value again: looks like polling
    assert rig.host.events.next_time() == FRAME_NS  # TXE rises when "a" ends
    rig.host.events.advance_to(rig.host.events.next_time())
    assert rig.rd(ISR) & TXE and not rig.rd(ISR) & TC
    assert rig.host.events.next_time() == 2 * FRAME_NS  # now waiting for TC


def _interrupt_driven_line(rig: Rig, line: bytes) -> None:
    """The firmware's uart_write(): feed the TX FIFO (16 per TXFE, else 1 per TXFNF), let the TX
    FIFO empty interrupt continue; the host plays the NVIC by running the handler on the IRQ."""
    pending = bytearray(line)

    def feed() -> None:
        while pending:
            isr = rig.rd(ISR)
            room = 16 if isr & TXFE else 1 if isr & TXE else 0
            if not room:
                return
            for _ in range(min(room, len(pending))):
                rig.wr(TDR, pending.pop(0))

    feed()
    rig.wr(CR1, rig.rd(CR1) | TXFEIE)
    events = rig.host.events
    while (t := events.next_time()) is not None:
        events.advance_to(t)
        if rig.host.irqs.get(IRQ):
            feed()
            if not pending:
                rig.wr(CR1, rig.rd(CR1) & ~TXFEIE)


def test_a_logged_line_needs_a_few_events_instead_of_one_per_character():
    line = b"DFU write 0x90000800 2048 ok\r\n"  # the bootloader's per-block line: 30 characters
    rigs = {}
    for cls in (EagerUsart, Usart):
        rig = rigs[cls] = Rig(cls)
        hal_init(rig, FIFOEN)
        rig.schedules.clear()
        _interrupt_driven_line(rig, line)
        assert bytes(rig.u.tx_log) == line
    eager, lazy = rigs[EagerUsart], rigs[Usart]
    assert_same(eager, lazy)
    assert len(eager.schedules) == len(line)
    # the TX FIFO empty interrupt and the newline, plus one re-planning check per burst of writes
    assert len(lazy.schedules) <= 4, lazy.schedules
    assert lazy.sent[0][-1] == (0x0A, len(line) * FRAME_NS, len(line) * FRAME_NS)


def test_tx_log_and_listeners_catch_up_from_the_host_side():
    rig = Rig(Usart)
    hal_init(rig, FIFOEN)
    for byte in b"abc":
        rig.wr(TDR, byte)
    rig.host.advance(2 * FRAME_NS)  # "a" and "b" have ended, no access since
    assert bytes(rig.u.tx_log) == b"ab"
    assert rig.deliveries() == [[(ord("a"), FRAME_NS), (ord("b"), 2 * FRAME_NS)]]
    rig.host.run_until_idle()
    assert rig.sent[0][-1] == (ord("c"), 3 * FRAME_NS, 3 * FRAME_NS)  # the last one: on time


def test_kernel_clock_is_read_as_each_byte_starts():
    """A byte's frame time comes from the kernel clock as it enters the shift register (here at a
    catch-up that happens after the clock changed: the per-character model agrees)."""
    clock = {"hz": KERNEL_HZ}
    rigs = [Rig(cls, frequency=lambda: clock["hz"]) for cls in (EagerUsart, Usart)]
    eager, lazy = rigs
    for rig in rigs:
        clock["hz"] = KERNEL_HZ
        hal_init(rig)
        rig.wr(TDR, 1)
        rig.wr(TDR, 2)
        rig.host.advance(FRAME_NS // 2)
        clock["hz"] = KERNEL_HZ // 2  # "2" will start at FRAME_NS with this clock: 2 frames long
        rig.host.advance(FRAME_NS)
        rig.rd(ISR)
        rig.host.run_until_idle()
    assert eager.deliveries() == lazy.deliveries() == [[(1, FRAME_NS), (2, 3 * FRAME_NS)]]


# ---------------------------------------------------------------------------- on the board
def _board_lines(monkeypatch: pytest.MonkeyPatch, model: type, script: Callable[[Any], None]) -> Any:
    from h743sim.board import Board

    with monkeypatch.context() as m:
        m.setattr(peripherals.usart, "Usart", model)  # what build_models instantiates for USART1
        board = Board(timing="datasheet")
    assert isinstance(board.usart, model)
    counted: list[str] = []
    schedule = board.usart.host.schedule

    def counting(delay_ns: int, callback: Callable[[], None], name: str = "") -> Any:
        counted.append(name)
        return schedule(delay_ns, callback, name)

    board.usart.host.schedule = counting
    board.tx_events = counted
    script(board)
    return board


def _eager_as_board_model() -> type:
    # named "Usart": build_models gives that class its kernel clock; nothing to catch up
    return type("Usart", (EagerUsart,), {"catch_up": lambda self: None})


def _need(elf: str) -> Path:
    path = BUILD / elf
    if not path.exists():
        pytest.skip(f"{path} not built (make -C firmware)")
    return path


# The eager (per-character event) model's line times for this hello.elf, recorded before the
# transmitter became lazy; they hold for the ELF with this digest.
HELLO_SHA256 = "6855ed175cff31d09871c8af5183b11fbac361d5f14ce62367e379f20169cb4c"
HELLO_EAGER_LINES = [
    (7031510, "hello from STM32H743 DevEBox (virtual), SYSCLK 400000000 Hz, HCLK 200000000 Hz"),
    (106955178, "tick 106"),
    (206955175, "tick 206"),
    (306955178, "tick 306"),
    (406955175, "tick 406"),
    (506955178, "tick 506"),
    (507996913, "hello done"),
]
HELLO_EAGER_END_NS = 557996913


def test_hello_lines_end_at_the_same_virtual_times(monkeypatch):
    elf = _need("hello.elf")

    def run(board: Any) -> None:
        board.load_firmware(elf)
        board.power_on()
        board.wait_for_line(r"^hello done$", timeout_s=2)
        board.run_for(0.05)

    lazy = _board_lines(monkeypatch, Usart, run)
    eager = _board_lines(monkeypatch, _eager_as_board_model(), run)
    assert lazy.uart.lines == eager.uart.lines
    assert bytes(lazy.usart.tx_log) == bytes(eager.usart.tx_log)
    assert lazy.machine.now_ns() == eager.machine.now_ns()
    assert len(lazy.tx_events) < len(eager.tx_events) == len(eager.usart.tx_log)
    if hashlib.sha256(elf.read_bytes()).hexdigest() == HELLO_SHA256:
        assert lazy.uart.lines == HELLO_EAGER_LINES
        assert lazy.machine.now_ns() == HELLO_EAGER_END_NS


def test_dfu_bootloader_log_lines_unchanged_with_few_events(monkeypatch):
    """The bootloader logs one line per 2 KiB DFU block through its interrupt-driven queue."""
    from h743sim.bench import _bench_pattern
    from h743sim.dfu_session import DfuSession

    elf = _need("bootloader.elf")
    blocks = 4

    def run(board: Any) -> None:
        board.load_firmware(elf)
        board.k2.press()
        board.power_on()
        board.wait_for_line(r"^DFU ready$", 5)
        client = DfuSession(board).client
        client.erase_range(0x90000000, blocks * 2048)
        board.tx_events_before = len(board.tx_events)
        client.download(0x90000000, _bench_pattern(blocks * 2048), erase=False)
        board.run_for(0.01)

    lazy = _board_lines(monkeypatch, Usart, run)
    eager = _board_lines(monkeypatch, _eager_as_board_model(), run)
    assert lazy.uart.lines == eager.uart.lines
    assert sum("write" in text for _t, text in lazy.uart.lines) == blocks
    assert lazy.machine.now_ns() == eager.machine.now_ns()
    per_block_lazy = (len(lazy.tx_events) - lazy.tx_events_before) / blocks
    per_block_eager = (len(eager.tx_events) - eager.tx_events_before) / blocks
    assert per_block_eager >= 30
    assert per_block_lazy <= 5, per_block_lazy


def test_uart_log_sync_shows_the_unfinished_line_up_to_now():
    from h743sim.uart_log import UartLog

    rig = Rig(Usart, listeners=0)
    log = UartLog()
    rig.u.on_tx(log.feed)
    log.sync = rig.u.catch_up  # as the board wires it
    hal_init(rig, FIFOEN)
    for byte in b"ok> ":
        rig.wr(TDR, byte)
    rig.host.advance(FRAME_NS + FRAME_NS // 2)  # "o" has ended, "k" is on the line
    assert log.partial == "o" and bytes(log.raw) == b"o"
    rig.host.run_until_idle()  # the prompt's last byte is an event: delivered when it ends
    assert log._partial == bytearray(b"ok> ") and rig.host.now_ns() == 4 * FRAME_NS
