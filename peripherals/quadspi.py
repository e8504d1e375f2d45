"""STM32H7 QUADSPI controller (RM0433/RM0399 "Quad-SPI interface"), one flash per bank.

Facts: reference/FACTS.md §C (registers, encodings, start rules), §G.3 (XIP), EMULATION.md §2.

What starts a command (FACTS §C.3): in indirect write (FMODE=00) a write to DR when the command has
data, else a write to CCR (no address) or AR; in indirect read (01) and automatic polling (10) a
write to CCR (no address) or AR. ABR never starts anything; AR and BUSY=0-only fields are ignored
while BUSY=1. Transfers on the bus take no virtual time: the FIFO fills and drains at once (an
indirect read fills the 32-byte FIFO and refills it when 4 bytes are free). In indirect-write mode
FTF is asserted only while a write command is configured or running: SR reads 0 after reset, and
HAL's transmit, which waits for FTF before its first DR write, proceeds.

Automatic polling repeats every ``transaction clocks + max(PIR, CSHT+1)`` QUADSPI clocks
(``kernel_hz / (PRESCALER+1)``). Polls that cannot change anything (the flash reports no pending
internal event, FTF/SMF already set) are skipped in simulation, without changing the virtual
time at which a match is seen.

Memory-mapped mode (FMODE=11 with EN=1) publishes the flash array as the RAM-backed window
``qspi_xip`` at 0x90000000; writes into it end in a bus error. It is published on entering the
mode, since the model cannot see individual AXI reads: BUSY rises then (as after a first access)
and, with TCEN=1, TOF is set LPTR clocks later (BUSY falls). The window is unpublished (accesses
fault) when leaving the mode: FMODE changed by a CCR write, EN=0, or peripheral reset. ABORT
stops the prefetch (TCF=1, BUSY=0) but, as on hardware, leaves FMODE=11: the window stays
readable (the next access would restart the read). Approximations:

* the whole flash array is mapped; accesses beyond FSIZE but inside the device do not fault;
* on entering the mode the configured read command is run twice on the flash (as two AXI reads
  would, honouring SIOO and continuous-read mode bits); unless both return the array linearly
  (command, line modes, dummy cycles, QE, chip idle), the window shows what the chip drives:
  nothing, i.e. a 0xFF-filled buffer published under the same name (re-checked when a busy chip
  becomes ready). Whenever the buffer behind the name changes, the whole window is invalidated
  (the host's ``map_memory`` must accept a new buffer for a name already published);
* DDR (DDRM), dual-flash (DFM) and the sample shift are stored but not simulated (logged once).

The flash device tells the controller when its array changes (``add_array_listener``); the
controller then calls ``host.invalidate`` for the matching part of the window, published or not.

MDMA requests (outputs wired in the board description, see :meth:`QuadSpi.connect_output`):
``DmaRequest`` (MDMA request 22, "QUADSPI FIFO threshold") is high while FTF is set in an
indirect mode (FMODE 00/01), ``TcRequest`` (MDMA request 23, "transfer complete") while TCF is
set. CR.DMAEN is stored but gates nothing: on the H7 the bit is reserved and the MDMA requests
exist regardless (ST's H7 HAL sets it anyway: "DMAEN bit is 'reserved' but no impact on H7 HW",
``stm32h7xx_hal_qspi.c``, HAL_QSPI_Transmit_DMA/Receive_DMA). An MDMA channel pushing a page
into DR (fixed address, 32-bit beats) costs one ``write`` per beat: DR writes of a running
indirect write go straight to the chip, so the 32-byte FIFO stays empty and FTF (free space >=
FTHRES+1) stays set until DLR+1 bytes were sent, as on hardware where the MDMA's AHB writes
would wait for FIFO room instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from peripherals.host import NS_PER_S, WARNING, Host, Timer
from peripherals.registers import Access, Peripheral

BASE = 0x5200_5000
XIP_BASE = 0x9000_0000
IRQ = 92
FIFO_SIZE = 32
WINDOW_NAME = "qspi_xip"

DR_OFFSET = 0x20

FMODE_INDIRECT_WRITE = 0
FMODE_INDIRECT_READ = 1
FMODE_AUTO_POLLING = 2
FMODE_MEMORY_MAPPED = 3

_LINES = (0, 1, 2, 4)  # IMODE/ADMODE/ABMODE/DMODE encoding -> data lines
_SIZE_MASKS = (0, 0xFF, 0xFFFF, 0xFF_FFFF, 0xFFFF_FFFF)  # access size in bytes -> value mask
_IRQ_SOURCES = (("TEF", "TEIE"), ("TCF", "TCIE"), ("FTF", "FTIE"), ("SMF", "SMIE"), ("TOF", "TOIE"))
#: request outputs a board description can connect (``DmaRequest -> mdma@22``)
OUTPUTS = ("DmaRequest", "TcRequest")


class QspiFlash(Protocol):
    """What the controller needs from a flash device (see :mod:`peripherals.w25q64`)."""

    array: bytearray

    def begin(self) -> None: ...
    def instruction(self, opcode: int, lines: int = 1) -> None: ...
    def address(self, value: int, nbytes: int = 3, lines: int = 1) -> None: ...
    def alternate(self, value: int, nbytes: int = 1, lines: int = 1) -> None: ...
    def dummy(self, cycles: int) -> None: ...
    def write_data(self, data: bytes, lines: int = 1) -> None: ...
    def read_data(self, n: int, lines: int = 1) -> bytes: ...
    def end(self) -> bool: ...
    def array_view(self) -> bytearray | None: ...
    def next_internal_event_ns(self) -> int | None: ...
    def add_array_listener(self, callback: Callable[[int, int], None]) -> None: ...
    def remove_array_listener(self, callback: Callable[[int, int], None]) -> None: ...


class _NoFlash:
    """An empty bank: nothing drives the data lines (reads 0xFF), writes go nowhere."""

    array = bytearray()

    def begin(self) -> None:
        pass

    def instruction(self, opcode: int, lines: int = 1) -> None:
        pass

    def address(self, value: int, nbytes: int = 3, lines: int = 1) -> None:
        pass

    def alternate(self, value: int, nbytes: int = 1, lines: int = 1) -> None:
        pass

    def dummy(self, cycles: int) -> None:
        pass

    def write_data(self, data: bytes, lines: int = 1) -> None:
        pass

    def read_data(self, n: int, lines: int = 1) -> bytes:
        return b"\xff" * n

    def end(self) -> bool:
        return False

    def array_view(self) -> bytearray | None:
        return None

    def next_internal_event_ns(self) -> int | None:
        return None


class QuadSpi(Peripheral):
    """The QUADSPI register block (size 0x400 at 0x52005000) with its FIFO and XIP window."""

    size = 0x400

    def __init__(
        self,
        host: Host,
        *,
        irq: int = IRQ,
        kernel_hz: int | Callable[[], int] = 200_000_000,
        name: str = "QUADSPI",
        xip_base: int = XIP_BASE,
        window_name: str = WINDOW_NAME,
    ) -> None:
        """``kernel_hz``: the QUADSPI kernel clock (rcc_hclk3 / pll / per_ck), a value or a
        callable read whenever a polling interval or timeout is computed."""
        super().__init__(host, name)
        self.irq = irq
        self.xip_base = xip_base
        self.window_name = window_name
        self._kernel_hz = kernel_hz
        self._banks: dict[int, QspiFlash] = {}
        self._logged: set[str] = set()
        self._fifo = bytearray()
        self._ff_window: bytearray | None = None
        self._last_window: bytearray | None = None  # last buffer published under window_name
        self._irq_level = False
        # request outputs: sinks per output, last level driven (see connect_output)
        self._sinks: dict[str, list[Callable[[bool], None]]] = {}
        self._out_levels = dict.fromkeys(OUTPUTS, False)
        self._ft_out = self._tc_out = False  # the same two levels, for the per-access check
        self._init_state()
        self._define_registers()

    def _init_state(self) -> None:
        self._busy = False
        self._phase = "idle"  # idle | write | read | poll | mmap
        self._tx_armed = False  # an indirect write waits for / moves DR data (FTF meaningful)
        self._remaining = 0
        self._tx_lines = 0  # data lines of the indirect write in progress
        self._device: QspiFlash | None = None  # the one with CS# low
        self._instruction_sent = False  # SIOO bookkeeping, reset by a CCR write
        self._poll_timer: Timer | None = None
        self._poll_last_ns = 0
        self._poll_period_ns = 1
        self._poll_nbytes = 0
        self._poll_value = 0
        self._ftf_latch = False
        self._mm_timer: Timer | None = None
        self._xip_recheck: Timer | None = None
        self._window: bytearray | None = None  # published buffer, None when unpublished

    # ---------------------------------------------------------------- registers
    def _define_registers(self) -> None:
        r = self.regs
        idle = self._not_busy
        r.define(0x00, "CR").field(0, 1, "EN", on_write=self._en_written).field(
            1, 1, "ABORT", access=Access.SC, on_write=self._abort_written
        ).field(2, 1, "DMAEN").field(3, 1, "TCEN", writable_when=idle).field(
            4, 1, "SSHIFT", writable_when=idle
        ).field(6, 1, "DFM", writable_when=idle).field(7, 1, "FSEL", writable_when=idle).field(
            8, 5, "FTHRES"
        ).field(16, 1, "TEIE").field(17, 1, "TCIE").field(18, 1, "FTIE").field(19, 1, "SMIE").field(
            20, 1, "TOIE"
        ).field(22, 1, "APMS", writable_when=idle).field(23, 1, "PMM", writable_when=idle).field(
            24, 8, "PRESCALER", writable_when=idle
        )
        r.define(0x04, "DCR").field(0, 1, "CKMODE", writable_when=idle).field(
            8, 3, "CSHT", writable_when=idle
        ).field(16, 5, "FSIZE", writable_when=idle)
        r.define(0x08, "SR").field(0, 1, "TEF", access=Access.RO).field(1, 1, "TCF", access=Access.RO).field(
            2, 1, "FTF", access=Access.RO, on_read=self._ftf
        ).field(3, 1, "SMF", access=Access.RO).field(4, 1, "TOF", access=Access.RO).field(
            5, 1, "BUSY", access=Access.RO, on_read=lambda: int(self._busy)
        ).field(8, 6, "FLEVEL", access=Access.RO, on_read=self._flevel)
        r.define(0x0C, "FCR").field(0, 1, "CTEF", access=Access.WO, on_write=self._clearer("TEF")).field(
            1, 1, "CTCF", access=Access.WO, on_write=self._clearer("TCF")
        ).field(3, 1, "CSMF", access=Access.WO, on_write=self._clearer("SMF")).field(
            4, 1, "CTOF", access=Access.WO, on_write=self._clearer("TOF")
        )
        r.define(0x10, "DLR", on_read=self._dlr_seen).field(0, 32, "DL", writable_when=idle)
        r.define(0x14, "CCR", on_write=self._ccr_written).field(
            0, 8, "INSTRUCTION", writable_when=idle
        ).field(8, 2, "IMODE", writable_when=idle).field(10, 2, "ADMODE", writable_when=idle).field(
            12, 2, "ADSIZE", writable_when=idle
        ).field(14, 2, "ABMODE", writable_when=idle).field(16, 2, "ABSIZE", writable_when=idle).field(
            18, 5, "DCYC", writable_when=idle
        ).field(24, 2, "DMODE", writable_when=idle).field(26, 2, "FMODE", writable_when=idle).field(
            28, 1, "SIOO", writable_when=idle
        ).field(29, 1, "FRCM", writable_when=idle).field(30, 1, "DHHC", writable_when=idle).field(
            31, 1, "DDRM", writable_when=idle
        )
        r.define(0x18, "AR", on_write=self._ar_written).field(
            0, 32, "ADDRESS", writable_when=self._ar_writable
        )
        r.define(0x1C, "ABR").field(0, 32, "ALTERNATE", writable_when=idle)
        # DR is served by read()/write() below (the access size decides how many bytes move).
        r.define(DR_OFFSET, "DR").field(0, 32, "DATA")
        r.define(0x24, "PSMKR").field(0, 32, "MASK", writable_when=idle)
        r.define(0x28, "PSMAR").field(0, 32, "MATCH", writable_when=idle)
        r.define(0x2C, "PIR").field(0, 16, "INTERVAL", writable_when=idle)
        r.define(0x30, "LPTR").field(0, 16, "TIMEOUT", writable_when=idle)
        # Handles and field positions for the per-access paths (DR, SR, the IRQ line), taken
        # from the definitions above so that the layout stays declared once.
        self._cr, self._sr, self._ccr = r["CR"], r["SR"], r["CCR"]
        self._ccr_views: dict[int, dict[str, int]] = {}  # CCR value -> its fields (_ccr_view)
        self._fmode = self._ccr.reader("FMODE")
        self._dmode = self._ccr.reader("DMODE")
        self._fthres = self._cr.reader("FTHRES")
        self._ftf_mask = self._sr.fields["FTF"].mask
        self._tcf_mask = self._sr.fields["TCF"].mask
        self._fmode_lsb = self._ccr.fields["FMODE"].lsb
        # (SR flag mask, CR enable mask) for each interrupt source
        self._irq_sources = tuple(
            (self._sr.fields[flag].mask, self._cr.fields[enable].mask) for flag, enable in _IRQ_SOURCES
        )
        self._irq_enables = sum(enable for _flag, enable in self._irq_sources)

    def _ccr_view(self) -> dict[str, int]:
        """CCR's fields by name, decoded once per CCR value: the command paths read most of them."""
        value = self._ccr.value
        view = self._ccr_views.get(value)
        if view is None:
            if len(self._ccr_views) >= 64:
                self._ccr_views.clear()
            view = self._ccr_views[value] = {name: f.extract(value) for name, f in self._ccr.fields.items()}
        return view

    def _not_busy(self) -> bool:
        return not self._busy

    def _ar_writable(self) -> bool:
        return not self._busy and self.regs["CCR"]["FMODE"] != FMODE_MEMORY_MAPPED

    def _clearer(self, flag: str) -> Callable[[int, int], None]:
        def clear(_old: int, written: int) -> None:
            if written:
                self._sr[flag] = 0
                if flag == "SMF":
                    self._poll_wake()  # with APMS=0 the next poll sets it again

        return clear

    def _dlr_seen(self, value: int) -> int:
        # DL[0] is stuck at 1 in dual-flash mode
        return value | 1 if self.regs["CR"]["DFM"] else value

    # ---------------------------------------------------------------- bus access
    def read(self, offset: int, size: int) -> int:
        if offset & ~3 == DR_OFFSET:
            value = self._dr_read(size, offset & 3)
        else:
            value = self.regs.read(offset, size)
        self._update_irq()
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == DR_OFFSET and self._phase == "write":
            # The bulk of a page program: CS# low, FMODE=00 (write-protected while BUSY), FIFO
            # empty; the bytes go straight to the chip (what _drain_tx would do, without the FIFO).
            device = self._device
            if device is not None and size < self._remaining and not self._fifo:
                device.write_data((value & _SIZE_MASKS[size]).to_bytes(size, "little"), self._tx_lines)
                self._remaining -= size
                self._update_irq()
                return
        if offset & ~3 == DR_OFFSET:
            self._dr_write(size, value, offset & 3)
        else:
            self.regs.write(offset, size, value)
        self._update_irq()

    def write_fifo(self, offset: int, size: int, data: bytes) -> int:
        """Leading ``size``-byte beats of a DMA feeding DR, taken at once (Host.bus_write_fifo).

        The first beat goes through :meth:`write` when it is what starts the transfer; then, during
        an indirect write with an empty FIFO, the beats reach the chip exactly as :meth:`write`
        passes them one by one. The beat that completes the transfer, and every other case, is
        left to :meth:`write` (called by the host). Returns the bytes taken."""
        if offset != DR_OFFSET or len(data) < size:
            return 0
        taken = 0
        if self._phase != "write":  # the first beat may start the transfer (FACTS C.3)
            self.write(offset, size, int.from_bytes(data[:size], "little"))
            taken = size
        device = self._device
        if self._phase != "write" or device is None or self._fifo:
            return taken
        bulk = min((len(data) - taken) // size, (self._remaining - 1) // size) * size
        if bulk <= 0:
            return taken
        device.write_data(data[taken : taken + bulk], self._tx_lines)
        self._remaining -= bulk
        self._update_irq()
        return taken + bulk

    def reset(self) -> None:
        """Peripheral reset (RCC): registers to reset values, FIFO flushed, window unpublished.

        The flash chip is not reset: it keeps its own state (continuous-read mode included).
        """
        self._stop_sequence()
        self._fifo.clear()
        self._unpublish()
        super().reset()
        self._init_state()
        self._irq_level = False
        self.host.set_irq(self.irq, False)
        if self._sinks:
            self._update_requests()

    # ---------------------------------------------------------------- request outputs
    def connect_output(self, name: str, sink: Callable[[bool], None]) -> None:
        """Drive ``sink(level)`` from output ``name`` (one of :data:`OUTPUTS`), now and on change."""
        if name not in OUTPUTS:
            raise ValueError(f"{self.name} has no output {name!r} (outputs: {', '.join(OUTPUTS)})")
        self._sinks.setdefault(name, []).append(sink)
        sink(self._out_levels[name])

    def _update_requests(self) -> None:
        # after every access while something is connected: the common cases without calls
        fmode = (self._ccr.value >> self._fmode_lsb) & 3
        if fmode == FMODE_INDIRECT_WRITE and not self._fifo:
            ft = self._tx_armed  # an empty FIFO is always above the threshold
        elif fmode <= FMODE_INDIRECT_READ:
            ft = bool(self._ftf())
        else:
            ft = False
        tc = bool(self._sr.value & self._tcf_mask)
        if ft is self._ft_out and tc is self._tc_out:
            return
        for name, level in (("DmaRequest", ft), ("TcRequest", tc)):
            if self._out_levels[name] != level:
                self._out_levels[name] = level
                for sink in self._sinks.get(name, ()):
                    sink(level)
        self._ft_out, self._tc_out = ft, tc

    # ---------------------------------------------------------------- devices
    def attach(self, device: QspiFlash, bank: int = 1) -> None:
        """Connect ``device`` to flash bank 1 (BK1, FSEL=0) or 2 (FSEL=1)."""
        if bank not in (1, 2):
            raise ValueError(f"{self.name}: bank must be 1 or 2, got {bank}")
        self.detach(bank)
        self._banks[bank] = device
        device.add_array_listener(self._array_changed)

    def detach(self, bank: int = 1) -> None:
        old = self._banks.pop(bank, None)
        if old is not None:
            old.remove_array_listener(self._array_changed)

    def _array_changed(self, offset: int, size: int) -> None:
        # Whether or not the window is published now: the engine may hold translated code.
        self.host.invalidate(self.xip_base + offset, size)

    def _flash(self) -> QspiFlash:
        cr = self._cr
        if cr["DFM"]:
            self._log_once("dfm", "dual-flash mode not simulated: bank 1 only")
            return self._banks.get(1) or _NoFlash()
        return self._banks.get(2 if cr["FSEL"] else 1) or _NoFlash()

    @property
    def window_published(self) -> bool:
        return self._window is not None

    @property
    def window_shows_flash(self) -> bool:
        """True when the published window is the flash array (not the 0xFF stand-in)."""
        return self._window is not None and self._window is not self._ff_window

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def fifo_level(self) -> int:
        return len(self._fifo)

    # ---------------------------------------------------------------- helpers
    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            self.host.log(WARNING, f"{self.name}: {message}")

    def _clk_hz(self) -> int:
        hz = self._kernel_hz() if callable(self._kernel_hz) else self._kernel_hz
        if hz <= 0:
            self._log_once("clk", f"kernel clock {hz} Hz: using 1 Hz")
            hz = 1
        return max(1, hz // (self.regs["CR"]["PRESCALER"] + 1))

    def _cycles_ns(self, cycles: int) -> int:
        hz = self._clk_hz()
        return max(1, -(-cycles * NS_PER_S // hz))

    def _flash_size(self) -> int:
        return 1 << (self.regs["DCR"]["FSIZE"] + 1)

    def _ftf(self) -> int:
        fmode = self._fmode()
        level = len(self._fifo)
        threshold = self._fthres() + 1
        if fmode == FMODE_INDIRECT_WRITE:
            # only while a write command is configured or running (SR reads 0 after reset)
            return int(self._tx_armed and FIFO_SIZE - level >= threshold)
        if fmode == FMODE_INDIRECT_READ:
            leftover = self._phase == "read" and self._remaining == 0 and level > 0
            return int(level >= threshold or leftover)
        if fmode == FMODE_AUTO_POLLING:
            return int(self._ftf_latch)
        return 0

    def _flevel(self) -> int:
        return len(self._fifo)

    def _update_irq(self) -> None:
        # runs after every access: raw masks, and FTF (computed) only when FTIE is set
        cr = self._cr.value
        level = False
        if cr & self._irq_enables:
            sr = self._sr.value
            for flag, enable in self._irq_sources:
                if cr & enable and (self._ftf() if flag == self._ftf_mask else sr & flag):
                    level = True
                    break
        if level != self._irq_level:
            self._irq_level = level
            self.host.set_irq(self.irq, level)
        if self._sinks:
            self._update_requests()

    # ---------------------------------------------------------------- CR
    def _en_written(self, old: int, new: int) -> None:
        if old == new:
            return
        if new:
            if self.regs["CCR"]["FMODE"] == FMODE_MEMORY_MAPPED:
                self._enter_memory_mapped()
        else:
            self._disable()

    def _abort_written(self, _old: int, written: int) -> None:
        if written:
            self._abort()

    def _abort(self) -> None:
        """Stop the sequence, flush the FIFO; TCF=1 in every mode; BUSY falls."""
        self._end_transfer()
        self._phase = "mmap" if self._phase == "mmap" else "idle"
        self.regs["SR"]["TCF"] = 1

    def _disable(self) -> None:
        """EN=0: any sequence stops (no TCF), the FIFO is flushed and the window faults."""
        self._end_transfer()
        self._phase = "idle"
        self._unpublish()

    def _end_transfer(self) -> None:
        """What ABORT and EN=0 share: the sequence stops, the FIFO empties, BUSY falls."""
        self._stop_sequence()
        self._fifo.clear()
        self._remaining = 0
        self._busy = False
        self._tx_armed = False

    def _stop_sequence(self) -> None:
        for timer in (self._poll_timer, self._mm_timer):
            if timer is not None:
                timer.cancel()
        self._poll_timer = self._mm_timer = None
        self._release_cs()

    def _release_cs(self) -> None:
        if self._device is not None:
            device, self._device = self._device, None
            device.end()

    # ---------------------------------------------------------------- CCR / AR / DR triggers
    def _ccr_written(self, _old: int, _new: int) -> None:
        if self._busy:
            return  # the fields were write-protected: nothing changed
        ccr = self._ccr_view()
        self._instruction_sent = False
        self._tx_armed = False
        if ccr["DDRM"]:
            self._log_once("ddr", "DDR mode not simulated: transfers run as SDR")
        fmode = ccr["FMODE"]
        if fmode == FMODE_MEMORY_MAPPED:
            if self.regs["CR"]["EN"]:
                self._enter_memory_mapped()
            return
        self._unpublish()
        if self._phase == "mmap":
            self._phase = "idle"
        needs_address = ccr["ADMODE"] != 0
        if fmode == FMODE_INDIRECT_WRITE and ccr["DMODE"] != 0:
            self._tx_armed = True
            return  # waits for the first DR write
        if not needs_address:
            if ccr["IMODE"] or ccr["ABMODE"] or ccr["DMODE"] or ccr["DCYC"]:
                self._start()

    def _ar_written(self, _old: int, _new: int) -> None:
        if not self._ar_writable():
            return
        ccr = self._ccr_view()
        if ccr["ADMODE"] == 0:
            return
        if ccr["FMODE"] == FMODE_INDIRECT_WRITE and ccr["DMODE"] != 0:
            return  # waits for DR
        self._start()

    def _dr_write(self, size: int, value: int, lane: int) -> None:
        if lane:
            self._log_once("dr-lane", "DR accessed at a byte offset: treated as an access at DR")
        if self._fmode() != FMODE_INDIRECT_WRITE:
            self._log_once("dr-w-mode", "DR write outside indirect-write mode ignored")
            return
        data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        if self._phase == "write":  # (write() sends the common case straight to the chip)
            self._fifo += data
            self._drain_tx()
            return
        ccr = self._ccr
        self._tx_armed = True
        free = FIFO_SIZE - len(self._fifo)
        if len(data) > free:
            self._log_once("fifo-full", "DR write into a full FIFO (the bus would stall): bytes dropped")
            data = data[:free]
        self._fifo += data
        if ccr["DMODE"] != 0 and not self._busy:
            self._start()

    def _dr_read(self, size: int, lane: int) -> int:
        if lane:
            self._log_once("dr-lane", "DR accessed at a byte offset: treated as an access at DR")
        fmode = self._fmode()
        if fmode == FMODE_AUTO_POLLING:
            # the last status read; reading it clears FTF
            self._ftf_latch = False
            self._poll_wake()
            return self._poll_value & ((1 << (8 * size)) - 1)
        if fmode != FMODE_INDIRECT_READ:
            return 0  # memory-mapped and indirect write: DR reads 0
        if len(self._fifo) < size:
            self._log_once("fifo-empty", "DR read with fewer bytes in the FIFO than the access size")
        # missing bytes read as 0: the high end of a little-endian value
        value = int.from_bytes(self._fifo[:size], "little")
        del self._fifo[:size]
        self._fill_rx()
        self._finish_read_if_drained()
        return value

    # ---------------------------------------------------------------- starting a command
    def _start(self) -> None:
        cr, ccr = self.regs["CR"], self._ccr_view()
        if not cr["EN"]:
            self._log_once("en0", "command written while EN=0: not started")
            return
        fmode = ccr["FMODE"]
        size = self._flash_size()
        address = self.regs["AR"].value if ccr["ADMODE"] else 0
        dlr = self.regs["DLR"].bus_read()
        if fmode == FMODE_AUTO_POLLING:
            n = min(dlr + 1, 4) if ccr["DMODE"] else 0
        elif ccr["DMODE"] == 0:
            n = 0
        else:
            n = size - address if dlr == 0xFFFF_FFFF else dlr + 1
        if ccr["ADMODE"] and (address >= size or address + n > size):
            self.regs["SR"]["TEF"] = 1
            self._log_once("tef", f"address {address:#x} (+{n}) beyond FSIZE ({size:#x} bytes): TEF")
            return
        self._busy = True
        flash = self._flash()
        if fmode == FMODE_AUTO_POLLING:
            self._phase = "poll"
            self._poll_nbytes = n
            self._poll_period_ns = self._cycles_ns(
                self._command_clocks(n) + max(self.regs["PIR"].value, self.regs["DCR"]["CSHT"] + 1)
            )
            self._poll()
            return
        self._send_prologue(flash, address)
        self._remaining = n
        if fmode == FMODE_INDIRECT_READ:
            self._phase = "read"
            if n == 0:
                self._complete_transfer()
                return
            self._fill_rx()
            self._finish_read_if_drained()
        else:
            self._phase = "write"
            self._tx_lines = _LINES[ccr["DMODE"]]  # DMODE is write-protected while BUSY
            self._drain_tx()

    def _send_prologue(self, flash: QspiFlash, address: int) -> None:
        """CS# low, then instruction (SIOO permitting), address, alternate bytes, dummy cycles."""
        ccr = self._ccr_view()
        self._release_cs()
        self._device = flash
        flash.begin()
        if ccr["IMODE"] and not (ccr["SIOO"] and self._instruction_sent):
            flash.instruction(ccr["INSTRUCTION"], _LINES[ccr["IMODE"]])
            self._instruction_sent = True
        if ccr["ADMODE"]:
            nbytes = ccr["ADSIZE"] + 1
            flash.address(address & ((1 << (8 * nbytes)) - 1), nbytes, _LINES[ccr["ADMODE"]])
        if ccr["ABMODE"]:
            nbytes = ccr["ABSIZE"] + 1
            flash.alternate(self.regs["ABR"].value & ((1 << (8 * nbytes)) - 1), nbytes, _LINES[ccr["ABMODE"]])
        if ccr["DCYC"]:
            flash.dummy(ccr["DCYC"])

    def _command_clocks(self, data_bytes: int) -> int:
        ccr = self._ccr_view()
        clocks = ccr["DCYC"]
        if ccr["IMODE"]:
            clocks += 8 // _LINES[ccr["IMODE"]]
        if ccr["ADMODE"]:
            clocks += 8 * (ccr["ADSIZE"] + 1) // _LINES[ccr["ADMODE"]]
        if ccr["ABMODE"]:
            clocks += 8 * (ccr["ABSIZE"] + 1) // _LINES[ccr["ABMODE"]]
        if ccr["DMODE"]:
            clocks += 8 * data_bytes // _LINES[ccr["DMODE"]]
        return clocks

    def _complete_transfer(self) -> None:
        """All programmed bytes moved: CS# rises, TCF=1."""
        self._release_cs()
        self.regs["SR"]["TCF"] = 1
        self._tx_armed = False
        if self._phase == "write" or not self._fifo:
            self._busy = False
            self._phase = "idle"

    # ---------------------------------------------------------------- indirect write / read
    def _drain_tx(self) -> None:
        device = self._device
        if device is None:
            return
        lines = _LINES[self._dmode()]
        if self._fifo and self._remaining:
            k = min(len(self._fifo), self._remaining)
            device.write_data(bytes(self._fifo[:k]), lines)
            del self._fifo[:k]
            self._remaining -= k
        if self._remaining == 0:
            if self._fifo:
                self._log_once("tx-extra", "bytes written to DR beyond DLR+1 discarded")
                self._fifo.clear()
            self._complete_transfer()

    def _fill_rx(self) -> None:
        device = self._device
        if self._phase != "read" or self._remaining == 0 or device is None:
            return
        free = FIFO_SIZE - len(self._fifo)
        # RM: a paused read resumes once 4 bytes are free (or the rest fits)
        if free < min(4, self._remaining):
            return
        k = min(free, self._remaining)
        self._fifo += device.read_data(k, _LINES[self._dmode()])
        self._remaining -= k
        if self._remaining == 0:
            self._release_cs()
            self.regs["SR"]["TCF"] = 1

    def _finish_read_if_drained(self) -> None:
        if self._phase == "read" and self._remaining == 0 and not self._fifo:
            self._busy = False
            self._phase = "idle"

    # ---------------------------------------------------------------- automatic polling
    def _poll(self) -> None:
        self._poll_timer = None
        ccr, cr = self._ccr_view(), self.regs["CR"]
        flash = self._flash()
        self._send_prologue(flash, self.regs["AR"].value)
        n = self._poll_nbytes
        data = flash.read_data(n, _LINES[ccr["DMODE"]]) if n else b""
        self._release_cs()
        value = int.from_bytes(data, "little")
        self._poll_value = value
        self._ftf_latch = True
        self._poll_last_ns = self.host.now_ns()
        width = (1 << (8 * n)) - 1
        mask = self.regs["PSMKR"].value & width
        diff = (value ^ self.regs["PSMAR"].value) & mask
        matched = diff != mask if cr["PMM"] else diff == 0  # OR: any unmasked bit matches
        if matched:
            self.regs["SR"]["SMF"] = 1
            if cr["APMS"]:
                self._busy = False
                self._phase = "idle"
                self._update_irq()
                return
        self._schedule_poll(skip_identical=True)
        self._update_irq()

    def _schedule_poll(self, skip_identical: bool) -> None:
        period = self._poll_period_ns
        now = self.host.now_ns()
        steps = max(1, -(-(now + 1 - self._poll_last_ns) // period))
        when = self._poll_last_ns + steps * period
        if skip_identical:
            # Until the flash changes by itself, every poll would repeat this one (FTF and SMF
            # are already set): jump to the first poll slot at or after that change.
            change = self._flash().next_internal_event_ns()
            if change is None:
                return  # still polling (BUSY=1), but nothing can change: no event needed
            if change > when:
                when = self._poll_last_ns + -(-(change - self._poll_last_ns) // period) * period
        self._poll_timer = self.host.schedule(when - now, self._poll, f"{self.name} poll")

    def _poll_wake(self) -> None:
        """FTF or SMF was cleared: the next poll is observable again."""
        if self._phase != "poll":
            return
        if self._poll_timer is not None:
            self._poll_timer.cancel()
        self._schedule_poll(skip_identical=False)

    # ---------------------------------------------------------------- memory-mapped mode
    def _enter_memory_mapped(self) -> None:
        self._stop_sequence()
        self._fifo.clear()
        self._phase = "mmap"
        self._busy = True  # as after the first AXI access
        self._publish(self._probe_xip())
        cr = self.regs["CR"]
        if cr["TCEN"]:
            delay = self._cycles_ns(self.regs["LPTR"].value)
            self._mm_timer = self.host.schedule(delay, self._mm_timeout, f"{self.name} timeout")

    def _probe_xip(self) -> bytearray | None:
        """Run the read command as two AXI reads would; the array if both return it linearly."""
        flash = self._flash()
        ccr = self.regs["CCR"]
        if self._xip_recheck is not None:
            self._xip_recheck.cancel()
            self._xip_recheck = None
        served = ccr["DMODE"] != 0
        for _ in range(2):
            self._send_prologue(flash, 0)
            if ccr["DMODE"]:
                flash.read_data(4, _LINES[ccr["DMODE"]])
            self._release_cs()
            served = served and flash.array_view() is not None
        if served:
            return flash.array_view()
        self._log_once(
            f"xip-{self.regs['CCR'].value:#x}",
            f"memory-mapped command {ccr['INSTRUCTION']:#04x} (CCR={self.regs['CCR'].value:#010x}) "
            "does not read the flash array: the window reads 0xFF",
        )
        change = flash.next_internal_event_ns()
        if change is not None:
            # the chip is busy or waking up: look again once it is ready
            self._xip_recheck = self.host.schedule(
                change - self.host.now_ns(), self._recheck_xip, f"{self.name} xip recheck"
            )
        return None

    def _recheck_xip(self) -> None:
        self._xip_recheck = None
        if self._phase == "mmap" and self.regs["CR"]["EN"]:
            self._publish(self._probe_xip())

    def _publish(self, view: bytearray | None) -> None:
        if view is None:
            size = len(self._flash().array) or len(self._banks.get(1, _NoFlash()).array)
            if not size:
                self._log_once("xip-noflash", "memory-mapped mode without a flash: window left faulting")
                self._unpublish()
                return
            if self._ff_window is None or len(self._ff_window) != size:
                self._ff_window = bytearray(b"\xff" * size)
            view = self._ff_window
        if self._window is view:
            return
        # A different buffer behind the same name: code translated from the old one is stale.
        changed = self._last_window is not None and self._last_window is not view
        self._window = self._last_window = view
        self.host.map_memory(self.window_name, self.xip_base, view, executable=True, on_write=self._xip_write)
        if changed:
            self.host.invalidate(self.xip_base, len(view))

    def _unpublish(self) -> None:
        if self._xip_recheck is not None:
            self._xip_recheck.cancel()
            self._xip_recheck = None
        if self._window is not None:
            self._window = None
            self.host.unmap_memory(self.window_name)

    def _xip_write(self, offset: int, size: int, value: int) -> None:
        self.host.bus_error(
            self.xip_base + offset,
            f"{self.name}: write of {size} byte(s) ({value:#x}) into the memory-mapped window (read-only)",
        )

    def _mm_timeout(self) -> None:
        self._mm_timer = None
        if self._phase != "mmap":
            return
        self.regs["SR"]["TOF"] = 1
        self._busy = False  # NCS released
        self._update_irq()
