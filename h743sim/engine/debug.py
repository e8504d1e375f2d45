"""Debug components firmware touches without a debugger: DWT, ITM and CoreDebug.

* DWT (0xE0001000): CTRL (4 comparators, cycle counter present), CYCCNT counting core cycles while
  DEMCR.TRCENA and CTRL.CYCCNTENA are set (delay loops use it), comparators stored, LAR/LSR.
* ITM (0xE0000000): stimulus ports read 1 (FIFO ready, so ``ITM_SendChar`` never waits); bytes
  written to enabled ports are collected per port and can be observed with :attr:`Itm.on_char`.
* CoreDebug (0xE000EDF0): DHCSR (key 0xA05F guarded, no debugger: halting is not modelled),
  DCRSR/DCRDR stored, DEMCR (TRCENA gates the DWT counter).
"""

from __future__ import annotations

from collections.abc import Callable

from peripherals.host import Host
from peripherals.registers import Access, Peripheral

LAR_KEY = 0xC5ACCE55
DHCSR_KEY = 0xA05F
DWT_CTRL_RESET = 0x40000000  # NUMCOMP = 4


class CoreDebug(Peripheral):
    size = 0x10

    def __init__(self, host: Host) -> None:
        super().__init__(host, "CoreDebug")
        self.regs.define(0x0, "DHCSR", on_write=self._dhcsr_written).field(0, 6, "C_BITS")
        self.regs.define(0x4, "DCRSR", access=Access.WO)
        self.regs.define(0x8, "DCRDR", access=Access.RW)
        demcr = self.regs.define(0xC, "DEMCR")
        demcr.field(0, 1, "VC_CORERESET").field(4, 1, "VC_MMERR").field(5, 1, "VC_NOCPERR")
        demcr.field(6, 1, "VC_CHKERR").field(7, 1, "VC_STATERR").field(8, 1, "VC_BUSERR")
        demcr.field(9, 1, "VC_INTERR").field(10, 1, "VC_HARDERR").field(16, 1, "MON_EN")
        demcr.field(17, 1, "MON_PEND").field(18, 1, "MON_STEP").field(19, 1, "MON_REQ")
        demcr.field(24, 1, "TRCENA")

    def _dhcsr_written(self, old: int, new: int) -> None:
        # writes without DBGKEY in 31:16 are ignored (ARMv7-M C1.6.2)
        if new >> 16 != DHCSR_KEY:
            self.regs["DHCSR"].value = old & 0x3F
        else:
            self.regs["DHCSR"].value = new & 0x3F

    @property
    def trace_enabled(self) -> bool:
        return bool(self.regs["DEMCR"]["TRCENA"])


class Dwt(Peripheral):
    size = 0x1000

    def __init__(self, host: Host, cycles: Callable[[], int], core_debug: CoreDebug) -> None:
        super().__init__(host, "DWT")
        self._cycles = cycles
        self._core_debug = core_debug
        ctrl = self.regs.define(0x000, "CTRL", reset=DWT_CTRL_RESET, on_write=self._ctrl_written)
        ctrl.field(0, 1, "CYCCNTENA").field(1, 4, "POSTPRESET").field(5, 4, "POSTINIT")
        ctrl.field(9, 1, "CYCTAP").field(10, 2, "SYNCTAP").field(12, 1, "PCSAMPLENA")
        ctrl.field(16, 1, "EXCTRCENA").field(17, 1, "CPIEVTENA").field(18, 1, "EXCEVTENA")
        ctrl.field(19, 1, "SLEEPEVTENA").field(20, 1, "LSUEVTENA").field(21, 1, "FOLDEVTENA")
        ctrl.field(22, 1, "CYCEVTENA")
        self.regs.define(
            0x004, "CYCCNT", access=Access.RW, on_read=lambda _v: self.cyccnt(), on_write=self._cyccnt_written
        )
        for offset, name in (
            (0x008, "CPICNT"),
            (0x00C, "EXCCNT"),
            (0x010, "SLEEPCNT"),
            (0x014, "LSUCNT"),
            (0x018, "FOLDCNT"),
        ):
            self.regs.define(offset, name, access=Access.RW)
        self.regs.define(0x01C, "PCSR", access=Access.RO)
        for n in range(4):
            self.regs.define(0x020 + 16 * n, f"COMP{n}", access=Access.RW)
            self.regs.define(0x024 + 16 * n, f"MASK{n}").field(0, 5, "MASK")
            self.regs.define(0x028 + 16 * n, f"FUNCTION{n}").field(0, 4, "FUNCTION").field(5, 1, "EMITRANGE")
        self.regs.define(0xFB0, "LAR", access=Access.WO, on_write=self._lar_written)
        self.regs.define(0xFB4, "LSR", reset=0x3, access=Access.RO)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self._base_value = 0
        self._base_cycles = 0
        self._counting = False

    def _enabled(self) -> bool:
        return bool(self.regs["CTRL"]["CYCCNTENA"]) and self._core_debug.trace_enabled

    def cyccnt(self) -> int:
        if not self._counting:
            if self._enabled():  # TRCENA may have been set after CYCCNTENA
                self._start(self._base_value)
            return self._base_value & 0xFFFFFFFF
        if not self._enabled():
            self._base_value = (self._base_value + self._cycles() - self._base_cycles) & 0xFFFFFFFF
            self._counting = False
            return self._base_value
        return (self._base_value + self._cycles() - self._base_cycles) & 0xFFFFFFFF

    def _start(self, value: int) -> None:
        self._base_value = value & 0xFFFFFFFF
        self._base_cycles = self._cycles()
        self._counting = True

    def _ctrl_written(self, _old: int, _new: int) -> None:
        value = self.cyccnt()
        if self._enabled():
            self._start(value)
        else:
            self._base_value = value
            self._counting = False

    def _cyccnt_written(self, _old: int, new: int) -> None:
        if self._enabled():
            self._start(new)
        else:
            self._base_value = new & 0xFFFFFFFF
            self._counting = False

    def _lar_written(self, _old: int, new: int) -> None:
        self.regs["LSR"].value = 0x1 if new == LAR_KEY else 0x3


class Itm(Peripheral):
    size = 0x1000

    def __init__(self, host: Host) -> None:
        super().__init__(host, "ITM")
        #: called with (port, byte) for each byte written to an enabled stimulus port
        self.on_char: Callable[[int, int], None] | None = None
        self.output: dict[int, bytearray] = {}
        for port in range(32):
            self.regs.define(
                4 * port, f"STIM{port}", access=Access.RW, on_read=lambda _v: 1, on_write=self._stim(port)
            )
        self.regs.define(0xE00, "TER", access=Access.RW)
        self.regs.define(0xE40, "TPR").field(0, 4, "PRIVMASK")
        tcr = self.regs.define(0xE80, "TCR")
        tcr.field(0, 1, "ITMENA").field(1, 1, "TSENA").field(2, 1, "SYNCENA").field(3, 1, "TXENA")
        tcr.field(4, 1, "SWOENA").field(8, 2, "TSPrescale").field(10, 2, "GTSFREQ").field(16, 7, "TraceBusID")
        tcr.field(23, 1, "BUSY", access=Access.RO)
        self.regs.define(0xFB0, "LAR", access=Access.WO, on_write=self._lar_written)
        self.regs.define(0xFB4, "LSR", reset=0x3, access=Access.RO)

    def _stim(self, port: int) -> Callable[[int, int], None]:
        def on_write(_old: int, new: int) -> None:
            if not (self.regs["TCR"]["ITMENA"] and self.regs["TER"].value >> port & 1):
                return
            byte = new & 0xFF
            self.output.setdefault(port, bytearray()).append(byte)
            if self.on_char is not None:
                self.on_char(port, byte)

        return on_write

    def _lar_written(self, _old: int, new: int) -> None:
        self.regs["LSR"].value = 0x1 if new == LAR_KEY else 0x3
