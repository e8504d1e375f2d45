"""The USART's transmitter as it was before it became lazy: one virtual-time event per character.

Kept verbatim (git 1cfc2eb, peripherals/usart.py) as the oracle of tests/models/test_usart_lazy.py,
with two changes only: the class name, and the TX listeners' new signature ``(byte, end_ns)``, where
``end_ns`` is the time of the character's event (its stop bit end). Not a test module itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from peripherals.host import NS_PER_S, WARNING, Host, Timer
from peripherals.registers import Access, Peripheral

FIFO_DEPTH = 16
ISR_RESET = 0x0000_00C0  # TC and TXE
_PRESC_DIVIDERS = (1, 2, 4, 6, 8, 10, 12, 16, 32, 64, 128, 256)
_STOP_BITS = (1.0, 0.5, 2.0, 1.5)
# TXFTCFG / RXFTCFG: fraction of the FIFO depth (101 = empty for TX / full for RX)
_THRESHOLDS = (2, 4, 8, 12, 14, 16)

# ICR bit -> ISR bit it clears
_ICR_CLEARS = {
    "PECF": (0, 0),
    "FECF": (1, 1),
    "NECF": (2, 2),
    "ORECF": (3, 3),
    "IDLECF": (4, 4),
    "TXFECF": (5, 23),
    "TCCF": (6, 6),
    "TCBGTCF": (7, 25),
    "LBDCF": (8, 8),
    "CTSCF": (9, 9),
    "RTOCF": (11, 11),
    "EOBCF": (12, 12),
    "UDRCF": (13, 13),
    "CMCF": (17, 17),
    "WUCF": (20, 20),
}
_ISR_FIELDS = {
    "PE": 0, "FE": 1, "NE": 2, "ORE": 3, "IDLE": 4, "RXNE": 5, "TC": 6, "TXE": 7, "LBDF": 8,
    "CTSIF": 9, "CTS": 10, "RTOF": 11, "EOBF": 12, "UDR": 13, "ABRE": 14, "ABRF": 15, "BUSY": 16,
    "CMF": 17, "SBKF": 18, "RWU": 19, "WUF": 20, "TEACK": 21, "REACK": 22, "TXFE": 23, "RXFF": 24,
    "TCBGT": 25, "RXFT": 26, "TXFT": 27,
}  # fmt: skip
# (interrupt-enable register, field) -> ISR flags it unmasks
_IRQ_SOURCES = (
    ("CR1", "TXEIE", ("TXE",)),
    ("CR1", "TCIE", ("TC",)),
    ("CR1", "RXNEIE", ("RXNE", "ORE")),
    ("CR1", "IDLEIE", ("IDLE",)),
    ("CR1", "PEIE", ("PE",)),
    ("CR1", "CMIE", ("CMF",)),
    ("CR1", "RTOIE", ("RTOF",)),
    ("CR1", "EOBIE", ("EOBF",)),
    ("CR1", "TXFEIE", ("TXFE",)),
    ("CR1", "RXFFIE", ("RXFF",)),
    ("CR2", "LBDIE", ("LBDF",)),
    ("CR3", "EIE", ("FE", "ORE", "NE")),
    ("CR3", "CTSIE", ("CTSIF",)),
    ("CR3", "WUFIE", ("WUF",)),
    ("CR3", "TXFTIE", ("TXFT",)),
    ("CR3", "TCBGTIE", ("TCBGT",)),
    ("CR3", "RXFTIE", ("RXFT",)),
)

TxListener = Callable[[int, int], None]


class EagerUsart(Peripheral):
    """A USART; ``frequency`` is its kernel clock in Hz, or a callable giving it (e.g. from RCC)."""

    size = 0x400

    def __init__(
        self,
        host: Host,
        *,
        irq: int = 37,
        frequency: int | Callable[[], int] = 64_000_000,
        instant: bool = False,
        name: str = "USART1",
    ) -> None:
        super().__init__(host, name)
        if not callable(frequency) and int(frequency) <= 0:
            raise ValueError(f"{name}: kernel clock frequency must be positive, not {frequency!r}")
        self.irq = irq
        self._kernel_hz: Callable[[], int] = frequency if callable(frequency) else (lambda: int(frequency))
        self.instant = instant
        self.tx_log = bytearray()
        self._tx_listeners: list[TxListener] = []
        self._tx_queue: deque[int] = deque()  # TDR (1 entry) or TX FIFO
        self._tx_shift: int | None = None
        self._tx_timer: Timer | None = None
        self._rx_queue: deque[int] = deque()  # RDR (1 entry) or RX FIFO
        self._rx_last = 0
        self._line: deque[int] = deque()  # injected bytes still on their way
        self._rx_timer: Timer | None = None
        self._idle_timer: Timer | None = None
        self._idle_armed = False
        self._break_timer: Timer | None = None
        self._logged: set[str] = set()
        self._define_registers()
        self._update()

    # ------------------------------------------------------------------ register map
    def _define_registers(self) -> None:
        r = self.regs
        off = self._disabled
        cr1 = r.define(0x00, "CR1", on_write=self._cr_written)
        cr1.field(0, 1, "UE").field(1, 1, "UESM").field(2, 1, "RE").field(3, 1, "TE")
        cr1.field(4, 1, "IDLEIE").field(5, 1, "RXNEIE").field(6, 1, "TCIE").field(7, 1, "TXEIE")
        cr1.field(8, 1, "PEIE").field(9, 1, "PS", writable_when=off).field(10, 1, "PCE", writable_when=off)
        cr1.field(11, 1, "WAKE", writable_when=off).field(12, 1, "M0", writable_when=off)
        cr1.field(13, 1, "MME").field(14, 1, "CMIE").field(15, 1, "OVER8", writable_when=off)
        cr1.field(16, 5, "DEDT", writable_when=off).field(21, 5, "DEAT", writable_when=off)
        cr1.field(26, 1, "RTOIE").field(27, 1, "EOBIE").field(28, 1, "M1", writable_when=off)
        cr1.field(29, 1, "FIFOEN", writable_when=off).field(30, 1, "TXFEIE").field(31, 1, "RXFFIE")

        cr2 = r.define(0x04, "CR2", on_write=self._cr_written)
        cr2.field(0, 1, "SLVEN", writable_when=off).field(3, 1, "DIS_NSS", writable_when=off)
        cr2.field(4, 1, "ADDM7", writable_when=off).field(5, 1, "LBDL", writable_when=off)
        cr2.field(6, 1, "LBDIE").field(8, 1, "LBCL", writable_when=off)
        cr2.field(9, 1, "CPHA", writable_when=off).field(10, 1, "CPOL", writable_when=off)
        cr2.field(11, 1, "CLKEN", writable_when=off).field(12, 2, "STOP", writable_when=off)
        cr2.field(14, 1, "LINEN", writable_when=off).field(15, 1, "SWAP", writable_when=off)
        cr2.field(16, 1, "RXINV", writable_when=off).field(17, 1, "TXINV", writable_when=off)
        cr2.field(18, 1, "DATAINV", writable_when=off).field(19, 1, "MSBFIRST", writable_when=off)
        cr2.field(20, 1, "ABREN").field(21, 2, "ABRMOD").field(23, 1, "RTOEN")
        cr2.field(24, 8, "ADD", writable_when=off)

        cr3 = r.define(0x08, "CR3", on_write=self._cr_written)
        cr3.field(0, 1, "EIE").field(1, 1, "IREN", writable_when=off).field(2, 1, "IRLP", writable_when=off)
        cr3.field(3, 1, "HDSEL", writable_when=off).field(4, 1, "NACK", writable_when=off)
        cr3.field(5, 1, "SCEN", writable_when=off).field(6, 1, "DMAR").field(7, 1, "DMAT")
        cr3.field(8, 1, "RTSE", writable_when=off).field(9, 1, "CTSE", writable_when=off)
        cr3.field(10, 1, "CTSIE").field(11, 1, "ONEBIT", writable_when=off)
        cr3.field(12, 1, "OVRDIS", writable_when=off).field(13, 1, "DDRE", writable_when=off)
        cr3.field(14, 1, "DEM", writable_when=off).field(15, 1, "DEP", writable_when=off)
        cr3.field(17, 3, "SCARCNT").field(20, 2, "WUS", writable_when=off).field(22, 1, "WUFIE")
        cr3.field(23, 1, "TXFTIE").field(24, 1, "TCBGTIE").field(25, 3, "RXFTCFG")
        cr3.field(28, 1, "RXFTIE").field(29, 3, "TXFTCFG")

        r.define(0x0C, "BRR").field(0, 16, "BRR", writable_when=off)
        r.define(0x10, "GTPR").field(0, 8, "PSC").field(8, 8, "GT")
        r.define(0x14, "RTOR").field(0, 24, "RTO").field(24, 8, "BLEN")
        rqr = r.define(0x18, "RQR")
        rqr.field(0, 1, "ABRRQ", access=Access.SC, on_write=self._unsupported_request("ABRRQ"))
        rqr.field(1, 1, "SBKRQ", access=Access.SC, on_write=self._send_break)
        rqr.field(2, 1, "MMRQ", access=Access.SC, on_write=self._unsupported_request("MMRQ"))
        rqr.field(3, 1, "RXFRQ", access=Access.SC, on_write=self._flush_rx)
        rqr.field(4, 1, "TXFRQ", access=Access.SC, on_write=self._flush_tx)

        isr = r.define(0x1C, "ISR", reset=ISR_RESET)
        for flag, bit in _ISR_FIELDS.items():
            isr.field(bit, 1, flag, access=Access.RO)
        icr = r.define(0x20, "ICR", on_write=self._icr_written)
        for flag, (bit, _isr_bit) in _ICR_CLEARS.items():
            icr.field(bit, 1, flag, access=Access.WO)
        r.define(0x24, "RDR", on_read=self._rdr_read).field(0, 9, "RDR", access=Access.RO)
        r.define(0x28, "TDR").field(0, 9, "TDR", on_write=self._tdr_written)
        r.define(0x2C, "PRESC").field(0, 4, "PRESCALER", writable_when=off)
        self._compile_status()

    def _compile_status(self) -> None:
        """Masks for _update, which runs after every TDR write and character: taken from the
        field definitions above, so that the layout stays declared once."""
        r = self.regs
        self._cr1, self._isr = r["CR1"], r["ISR"]
        self._m_ue, self._m_re, self._m_te, self._m_fifoen = self._cr1.masks("UE", "RE", "TE", "FIFOEN")
        levels = ("TXE", "RXNE", "TEACK", "REACK", "BUSY", "TXFE", "RXFF", "TXFT", "RXFT")
        (self._m_txe, self._m_rxne, self._m_teack, self._m_reack, self._m_busy, self._m_txfe, self._m_rxff,
         self._m_txft, self._m_rxft) = self._isr.masks(*levels)  # fmt: skip
        self._m_levels = sum(self._isr.masks(*levels))
        self._txftcfg, self._rxftcfg = r["CR3"].reader("TXFTCFG"), r["CR3"].reader("RXFTCFG")
        # per interrupt-enable register: (enable mask, ISR flags it unmasks), in _IRQ_SOURCES order
        groups: dict[str, list[tuple[int, int]]] = {}
        for reg, enable, flags in _IRQ_SOURCES:
            groups.setdefault(reg, []).append((r[reg].fields[enable].mask, sum(self._isr.masks(*flags))))
        self._irq_sources = tuple(
            (r[reg], sum(en for en, _f in pairs), tuple(pairs)) for reg, pairs in groups.items()
        )

    # ------------------------------------------------------------------ host side
    def on_tx(self, callback: TxListener) -> None:
        """Call ``callback(byte, now_ns)`` for each character when its transmission ends."""
        self._tx_listeners.append(callback)

    def inject_rx(self, data: bytes) -> None:
        """Bytes arrive on RX, one frame time apart, after any still on their way."""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{self.name}: inject_rx takes bytes, not {type(data).__name__}")
        self._line.extend(data)
        if self._rx_timer is None and self._line:
            self._schedule_rx()

    @property
    def rx_pending(self) -> int:
        """Injected bytes that have not arrived yet."""
        return len(self._line)

    def frame_ns(self) -> int | None:
        """Duration of one character on the line, or None when the baud rate is not usable."""
        cr1 = self.regs["CR1"]
        brr = self.regs["BRR"]["BRR"]
        presc = self.regs["PRESC"]["PRESCALER"]
        kernel = self._kernel_hz() / _PRESC_DIVIDERS[min(presc, len(_PRESC_DIVIDERS) - 1)]
        if cr1["OVER8"]:
            usartdiv = (brr & 0xFFF0) | ((brr & 0x7) << 1)
            baud = 2 * kernel / usartdiv if usartdiv >= 16 else 0
        else:
            baud = kernel / brr if brr >= 16 else 0
        if baud <= 0:
            return None
        word = {0: 8, 1: 9, 2: 7}.get(cr1["M1"] << 1 | cr1["M0"], 8)
        bits = 1 + word + _STOP_BITS[self.regs["CR2"]["STOP"]]
        return max(1, round(bits * NS_PER_S / baud))

    def baud_rate(self) -> float:
        """Current baud rate (0 when BRR or the kernel clock give none)."""
        frame = self.frame_ns()
        if frame is None:
            return 0.0
        cr1 = self.regs["CR1"]
        word = {0: 8, 1: 9, 2: 7}.get(cr1["M1"] << 1 | cr1["M0"], 8)
        return (1 + word + _STOP_BITS[self.regs["CR2"]["STOP"]]) * NS_PER_S / frame

    # ------------------------------------------------------------------ state helpers
    def _disabled(self) -> bool:
        return not self._cr1.value & self._m_ue

    def _fifo_mode(self) -> bool:
        return bool(self._cr1.value & self._m_fifoen)

    def _capacity(self) -> int:
        return FIFO_DEPTH if self._fifo_mode() else 1

    def _data_mask(self) -> int:
        cr1 = self.regs["CR1"]
        word = {0: 8, 1: 9, 2: 7}.get(cr1["M1"] << 1 | cr1["M0"], 8)
        if cr1["PCE"]:
            word -= 1  # the last bit is the parity bit
        return (1 << word) - 1

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            self.host.log(WARNING, message)

    def _frame_delay(self) -> int:
        if self.instant:
            return 0
        frame = self.frame_ns()
        if frame is None:
            self._log_once(
                "baud",
                f"{self.name}: no usable baud rate (BRR={self.regs['BRR'].value:#x}, "
                f"kernel {self._kernel_hz()} Hz): characters take no time",
            )
            return 0
        return frame

    def _cancel(self, attr: str) -> None:
        timer = getattr(self, attr)
        if timer is not None:
            timer.cancel()
            setattr(self, attr, None)

    # ------------------------------------------------------------------ control
    def _cr_written(self, _old: int, _new: int) -> None:
        if self._disabled():
            self._disable()
        else:
            self._kick_tx()
        self._update()

    def _disable(self) -> None:
        """UE=0: transfers stop, FIFOs empty, every status flag back to its reset value."""
        for attr in ("_tx_timer", "_idle_timer", "_break_timer"):
            self._cancel(attr)
        self._tx_queue.clear()
        self._tx_shift = None
        self._rx_queue.clear()
        self._idle_armed = False
        self.regs["ISR"].value = ISR_RESET

    # ------------------------------------------------------------------ transmit
    def _tdr_written(self, _old: int, value: int) -> None:
        if self._disabled():
            self._log_once("tdr-off", f"{self.name}: TDR written while UE=0: ignored")
            return
        if len(self._tx_queue) >= self._capacity():
            if self._fifo_mode():
                self._log_once("tx-full", f"{self.name}: TDR written with the TX FIFO full: byte lost")
                return
            self._tx_queue.clear()  # TDR overwritten before it reached the shift register
        self._tx_queue.append(value)
        self.regs["ISR"]["TC"] = 0
        self._kick_tx()
        self._update()

    def _kick_tx(self) -> None:
        cr1 = self.regs["CR1"]
        if not (cr1["UE"] and cr1["TE"]) or self._tx_shift is not None or not self._tx_queue:
            return
        self._tx_shift = self._tx_queue.popleft()
        self.regs["ISR"]["TC"] = 0
        delay = self._frame_delay()
        if delay == 0:
            self._tx_done()
        else:
            self._tx_timer = self.host.schedule(delay, self._tx_done, f"{self.name} tx")

    def _tx_done(self) -> None:
        self._tx_timer = None
        if self._tx_shift is None:
            return
        value = self._tx_shift & self._data_mask()
        self._tx_shift = None
        self.tx_log.append(value & 0xFF)
        for cb in list(self._tx_listeners):
            cb(value, self.host.now_ns())
        if self._tx_queue and self.regs["CR1"]["TE"]:
            self._kick_tx()
        else:
            self.regs["ISR"]["TC"] = 1
        self._update()

    def _flush_tx(self, _old: int, request: int) -> None:
        if request:
            self._tx_queue.clear()
            self._update()

    def _send_break(self, _old: int, request: int) -> None:
        if not request or self._disabled():
            return
        self.regs["ISR"]["SBKF"] = 1
        self._cancel("_break_timer")
        delay = self._frame_delay()
        self._break_timer = self.host.schedule(delay, self._break_sent, f"{self.name} break")
        self._update()

    def _break_sent(self) -> None:
        self._break_timer = None
        self.regs["ISR"]["SBKF"] = 0
        self._update()

    def _unsupported_request(self, name: str) -> Callable[[int, int], None]:
        def request(_old: int, value: int) -> None:
            if value:
                self._log_once(name, f"{self.name}: RQR.{name} is not modelled: ignored")

        return request

    # ------------------------------------------------------------------ receive
    def _schedule_rx(self) -> None:
        delay = self._frame_delay()
        self._rx_timer = self.host.schedule(delay, self._rx_arrived, f"{self.name} rx")

    def _rx_arrived(self) -> None:
        self._rx_timer = None
        if not self._line:
            return
        byte = self._line.popleft()
        cr1, isr = self.regs["CR1"], self.regs["ISR"]
        if cr1["UE"] and cr1["RE"]:
            if len(self._rx_queue) >= self._capacity():
                if self.regs["CR3"]["OVRDIS"]:
                    self._rx_queue.pop()  # overrun detection off: the new byte overwrites
                    self._rx_queue.append(byte)
                else:
                    isr["ORE"] = 1  # the new byte is lost, RDR keeps the unread one
            else:
                self._rx_queue.append(byte)
            self._idle_armed = True
            self._cancel("_idle_timer")
        else:
            self._log_once("rx-off", f"{self.name}: byte received while the receiver is off: lost")
        if self._line:
            self._schedule_rx()
        elif self._idle_armed:
            self._idle_timer = self.host.schedule(self._frame_delay(), self._line_idle, f"{self.name} idle")
        self._update()

    def _line_idle(self) -> None:
        self._idle_timer = None
        if self._idle_armed and not self._disabled():
            self._idle_armed = False
            self.regs["ISR"]["IDLE"] = 1
            self._update()

    def _rdr_read(self, _stored: int) -> int:
        if self._rx_queue:
            self._rx_last = self._rx_queue.popleft()
            self._update()
        return self._rx_last & self._data_mask()

    def _flush_rx(self, _old: int, request: int) -> None:
        if request:
            self._rx_queue.clear()
            self._update()

    # ------------------------------------------------------------------ status / IRQ
    def _icr_written(self, _old: int, new: int) -> None:
        self.regs["ICR"].value = 0
        isr = self.regs["ISR"]
        for bit, isr_bit in _ICR_CLEARS.values():
            if new >> bit & 1:
                isr.clear_bits(1 << isr_bit)
        self._update()

    def _update(self) -> None:
        """Recompute the level-type ISR bits and the IRQ line."""
        cr1 = self._cr1.value
        enabled = cr1 & self._m_ue
        fifo = cr1 & self._m_fifoen
        tx_free = (FIFO_DEPTH if fifo else 1) - len(self._tx_queue)
        v = 0
        if tx_free > 0:
            v |= self._m_txe
        if self._rx_queue:
            v |= self._m_rxne
        if enabled:
            if cr1 & self._m_te:
                v |= self._m_teack
            if cr1 & self._m_re:
                v |= self._m_reack
                if self._line:
                    v |= self._m_busy
        if fifo:
            if not self._tx_queue:
                v |= self._m_txfe
            if len(self._rx_queue) >= FIFO_DEPTH:
                v |= self._m_rxff
            if tx_free >= _THRESHOLDS[min(self._txftcfg(), 5)]:
                v |= self._m_txft
            if len(self._rx_queue) >= _THRESHOLDS[min(self._rxftcfg(), 5)]:
                v |= self._m_rxft
        isr = (self._isr.value & ~self._m_levels) | v
        self._isr.value = isr
        level = False
        for reg, enables, pairs in self._irq_sources:
            on = reg.value & enables
            if on and any(on & enable and isr & flags for enable, flags in pairs):
                level = True
                break
        self.host.set_irq(self.irq, level)

    def reset(self) -> None:
        for attr in ("_tx_timer", "_rx_timer", "_idle_timer", "_break_timer"):
            self._cancel(attr)
        self._tx_queue.clear()
        self._tx_shift = None
        self._rx_queue.clear()
        self._line.clear()
        self._idle_armed = False
        self._rx_last = 0
        self.regs.reset()
        self._update()
