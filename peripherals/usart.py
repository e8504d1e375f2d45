"""STM32H7 USART (USART1 at 0x40011000, IRQ 37; RM0433 chapter 48, FACTS §A.3, §I).

Timing (the faithful option, still fast): each character occupies the line for one frame time,
computed from the kernel clock, PRESC, BRR, OVER8, the word length and the stop bits. A byte
written to TDR moves at once into the shift register when that is free (TXE/TXFNF stays 1), the
byte reaches the :meth:`on_tx` listeners and ``tx_log`` when its stop bit ends, and TC rises then
if nothing else is waiting. Received bytes (:meth:`inject_rx`) arrive one frame time apart; RXNE
rises at the end of each frame, ORE when the previous byte was not read (RDR keeps the old byte),
IDLE one frame time after the last byte. With ``instant=True`` every frame takes no time.

Transmission is lazy: the bytes on their way are kept as a pipeline with the time each one's stop
bit ends (the byte in the shift register; the next ones follow back to back, each taking the frame
time computed when it enters the shift register). Every register access, every event of the model
and the host-side readers (``tx_log``, :meth:`catch_up`) first retire the bytes whose end time has
come, in order, exactly as one event per character would have; so a register read at any instant
shows what the per-character model showed. One timer is kept, at the earliest byte end that
something outside the model must see at its exact time:

* the IRQ line would rise: an enabled TX interrupt (TXE/TXFNF, TC, TXFE, TXFT) gets its flag;
* with TX listeners: the end of each newline (0x0A) and of the last byte on its way (a line, or
  a prompt without newline, is delivered when it ends); the other bytes are delivered at the next
  catch-up, with their own end time;
* once the firmware seems to poll ISR (the same value read twice in a row, no other USART access
  in between), every change of ISR until the line is idle: an engine that skips idle polling
  ahead to the next event then skips no further than the change.

Corner cases that differ from one event per character:
* a byte's frame time comes from the kernel clock as the model starts the byte; a byte following
  another back to back is started at the next catch-up, so a kernel clock change (RCC) between its
  start and that catch-up gives it the new clock's frame time (the per-character model: the old);
* on the embedded engine, time advances in core cycles and a register access sees
  ``now_ns()`` at the end of its instruction: the per-character event of a byte ending in the
  last cycle of an instruction ran after that instruction, so an access made by exactly that
  instruction saw the byte not yet done, where the pipeline shows it done; and each event ran at
  the first cycle at or after the byte's end and started the next byte from there, while the
  pipeline chains the exact nanoseconds (the same whenever a frame is a whole number of cycles, as
  for 115200 baud from a 100 MHz kernel clock with a 400 MHz core);
* fewer events means fewer engine slice boundaries: an idle-polling firmware executes fewer
  instructions while it waits (virtual time and what it reads are the same).

FIFO mode (CR1.FIFOEN) has 16-entry TX and RX FIFOs with TXFNF/RXFNE/TXFE/RXFF and the TXFT/RXFT
thresholds of CR3. Status flags are reset when UE is cleared, as on silicon. Not modelled: LIN,
smartcard, IrDA, synchronous mode, auto baud rate, receiver timeout, modem lines, wake-up.
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

# listener(byte, end_ns): the character (masked to the word length) and the virtual time its stop
# bit ended (listeners may be called later than that, at the model's next catch-up)
TxListener = Callable[[int, int], None]
_ISR_OFFSET, _RDR_OFFSET = 0x1C, 0x24


class Usart(Peripheral):
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
        self._tx_log = bytearray()
        self._tx_listeners: list[TxListener] = []
        self._tx_queue: deque[int] = deque()  # TDR (1 entry) or TX FIFO, values masked to the word
        self._tx_shift: int | None = None  # the byte in the shift register (masked)
        self._tx_end = 0  # when its stop bit ends (ns), valid while _tx_shift is not None
        self._tx_timer: Timer | None = None  # the one TX event (see _plan_tx)
        self._tx_timer_at = 0
        self._last_read: tuple[int, int, int] | None = None  # (offset, size, value) of the last access
        self._watch = False  # the firmware seems to poll ISR: each change of it is an event
        self._irq_level = False
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
        (self._m_tc,) = self._isr.masks("TC")
        self._m_txeie, self._m_tcie, self._m_txfeie = self._cr1.masks("TXEIE", "TCIE", "TXFEIE")
        self._cr3 = r["CR3"]
        (self._m_txftie,) = self._cr3.masks("TXFTIE")
        self._txftcfg, self._rxftcfg = r["CR3"].reader("TXFTCFG"), r["CR3"].reader("RXFTCFG")
        # per interrupt-enable register: (enable mask, ISR flags it unmasks), in _IRQ_SOURCES order
        groups: dict[str, list[tuple[int, int]]] = {}
        for reg, enable, flags in _IRQ_SOURCES:
            groups.setdefault(reg, []).append((r[reg].fields[enable].mask, sum(self._isr.masks(*flags))))
        self._irq_sources = tuple(
            (r[reg], sum(en for en, _f in pairs), tuple(pairs)) for reg, pairs in groups.items()
        )

    # ------------------------------------------------------------------ bus side
    # Every access first retires the characters whose stop bit has ended (see the module notes).
    def read(self, offset: int, size: int) -> int:
        if self._tx_shift is not None and self._tx_end <= self.host.now_ns():
            self._catch_up()
        value = self.regs.read(offset, size)
        if offset & ~3 == _ISR_OFFSET:
            key = (offset, size, value)
            if key == self._last_read and self._tx_shift is not None and not self._watch:
                # the same ISR value twice in a row: maybe a polling loop; until the line is idle,
                # every change of ISR gets an event (an engine skips idle polling to the next one)
                self._watch = True
                self._plan_tx()
            self._last_read = key
        else:
            self._last_read = None
            if offset & ~3 == _RDR_OFFSET:
                self._plan_tx()  # the IRQ line may have fallen
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        if self._tx_shift is not None and self._tx_end <= self.host.now_ns():
            self._catch_up()
        self._last_read = None
        self.regs.write(offset, size, value)
        self._plan_tx()

    # ------------------------------------------------------------------ host side
    def on_tx(self, callback: TxListener) -> None:
        """Call ``callback(byte, end_ns)`` for each character, ``end_ns`` being the virtual time
        its stop bit ended. A newline (0x0A), and the last character on its way, are handed over
        when they end; the others may come later (at the model's next register access or event),
        still in order and with their own end time. Listeners must not act on this model."""
        self._tx_listeners.append(callback)

    @property
    def tx_log(self) -> bytearray:
        """Every character transmitted so far (low 8 bits), up to the current virtual time."""
        self.catch_up()
        return self._tx_log

    def catch_up(self) -> None:
        """Retire the characters whose transmission has ended by now (host-side readers)."""
        if self._tx_shift is not None and self._tx_end <= self.host.now_ns():
            self._catch_up()
            self._plan_tx()

    def inject_rx(self, data: bytes) -> None:
        """Bytes arrive on RX, one frame time apart, after any still on their way."""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{self.name}: inject_rx takes bytes, not {type(data).__name__}")
        self.catch_up()  # the characters sent so far saw the line before these bytes (ISR.BUSY)
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
        self._watch = False
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
        # masked now: the word length and parity can only change with UE=0, which empties the queue
        self._tx_queue.append(value & self._data_mask())
        self._isr.value &= ~self._m_tc
        self._kick_tx()
        self._update()

    def _kick_tx(self) -> None:
        """The shift register is free and TE is on: the next byte starts now."""
        cr1 = self._cr1.value
        if not (cr1 & self._m_ue and cr1 & self._m_te) or self._tx_shift is not None or not self._tx_queue:
            return
        now = self.host.now_ns()
        self._start_byte(now)
        self._retire(now)  # a frame of no time (instant, no usable baud rate) ends at once

    def _start_byte(self, start: int) -> None:
        self._tx_shift = self._tx_queue.popleft()
        self._isr.value &= ~self._m_tc
        self._tx_end = start + self._frame_delay()  # the frame time as the byte starts

    def _retire(self, now: int) -> bool:
        """Retire, in order, every byte whose stop bit ended at or before ``now``: tx_log, the
        listeners, then the next byte starts at that end (TE on) or TC rises. True if any did."""
        retired = False
        while self._tx_shift is not None and self._tx_end <= now:
            end, value = self._tx_end, self._tx_shift
            self._tx_shift = None
            self._tx_log.append(value & 0xFF)
            retired = True
            for cb in list(self._tx_listeners):
                cb(value, end)
            if self._tx_shift is not None:
                break  # a listener wrote TDR and started a byte itself: that state wins
            if self._tx_queue and self._cr1.value & self._m_te:
                self._start_byte(end)
            else:
                self._isr.value |= self._m_tc
        return retired

    def _catch_up(self) -> None:
        if self._retire(self.host.now_ns()):
            if self._tx_shift is None:
                self._watch = False  # the line is idle: the polling it watched is over
            self._update()

    def _tx_event(self) -> None:
        self._tx_timer = None
        self._catch_up()
        self._plan_tx()

    def _plan_tx(self) -> None:
        """Keep one timer at the earliest byte end something outside the model must observe at its
        exact time (see the module notes); byte k (0: the shift register, then the queue in order)
        ends at ``_tx_end + k * frame``. A pending timer that is not later is kept: it re-plans."""
        shift = self._tx_shift
        if shift is None:
            if self._tx_timer is not None:
                self._cancel("_tx_timer")
            self._watch = False
            return
        if self._tx_timer is not None and self._tx_timer_at <= self._tx_end:
            return  # nothing can need an event before the shift register's byte ends
        cr1 = self._cr1.value
        queue = self._tx_queue
        n = len(queue)
        te = cr1 & self._m_te
        last = n if te else 0  # the last byte that will go out (TE=0: the queue stays)
        k: int | None = None
        if self._tx_listeners:
            k = last
            if shift == 0x0A:
                k = 0
            elif te and 0x0A in queue:
                k = min(k, queue.index(0x0A) + 1)
        watch = self._watch
        isr = self._isr.value
        if k != 0 and (watch or not self._irq_level):
            # TX flags now 0 that rise at the end of byte k; TX progress never lowers a flag
            rises: list[tuple[int, int]] = []
            if not isr & self._m_tc:
                rises.append((self._m_tc, last))
            if te:
                if not isr & self._m_txe:  # TDR / FIFO full: a place frees at the first end
                    rises.append((self._m_txe, 0))
                if cr1 & self._m_fifoen and n:
                    if not isr & self._m_txfe:
                        rises.append((self._m_txfe, n - 1))
                    if not isr & self._m_txft:
                        threshold = _THRESHOLDS[min(self._txftcfg(), 5)]
                        rises.append((self._m_txft, n - 1 - FIFO_DEPTH + threshold))
            if not watch:  # only rises of enabled interrupt flags matter (the line is low)
                enabled = 0
                if cr1 & self._m_txeie:
                    enabled |= self._m_txe
                if cr1 & self._m_tcie:
                    enabled |= self._m_tc
                if cr1 & self._m_txfeie:
                    enabled |= self._m_txfe
                if self._cr3.value & self._m_txftie:
                    enabled |= self._m_txft
                rises = [(m, i) for m, i in rises if m & enabled]
            for _mask, i in rises:
                if k is None or i < k:
                    k = i
        if k is None:
            if self._tx_timer is not None:
                self._cancel("_tx_timer")
            return
        when = self._tx_end
        if k:
            when += k * self._projected_frame()
        if self._tx_timer is not None:
            if self._tx_timer_at <= when:
                return
            self._cancel("_tx_timer")
        self._tx_timer_at = when
        delay = max(0, when - self.host.now_ns())
        self._tx_timer = self.host.schedule(delay, self._tx_event, f"{self.name} tx")

    def _projected_frame(self) -> int:
        """The frame time of bytes still waiting, as the clock is now (no warning logged)."""
        if self.instant:
            return 0
        return self.frame_ns() or 0

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
        self._catch_up()
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
        self._catch_up()
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
        self._catch_up()
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
        self._irq_level = level
        self.host.set_irq(self.irq, level)

    def reset(self) -> None:
        self.catch_up()  # what ended before the reset was sent
        for attr in ("_tx_timer", "_rx_timer", "_idle_timer", "_break_timer"):
            self._cancel(attr)
        self._tx_queue.clear()
        self._tx_shift = None
        self._last_read = None
        self._watch = False
        self._rx_queue.clear()
        self._line.clear()
        self._idle_armed = False
        self._rx_last = 0
        self.regs.reset()
        self._update()
