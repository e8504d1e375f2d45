"""Nested vectored interrupt controller: exception state and the NVIC register block.

State for every exception number (1..15 system, 16+n for IRQn): pending, active, priority, and
for IRQs the enable bit and the input line level. Lines are level-sensitive (ARMv7-M): a rising
line sets pending; taking the interrupt clears pending; if the line is still high when the
handler returns (or when software clears pending while the handler is not running) the interrupt
is pending again.

Registers (offsets from 0xE000E100; ARMv7-M B3.4): ISER 0x000, ICER 0x080, ISPR 0x100, ICPR 0x180,
IABR 0x200 (8 words each, bits beyond the implemented IRQs read 0), IPR bytes from 0x300 (only the
top ``prio_bits`` bits exist). STIR (0xE000EF00) is :attr:`Nvic.stir`.
"""

from __future__ import annotations

from collections.abc import Callable

from peripherals.host import Host
from peripherals.registers import Access, Peripheral, Register

RESET, NMI, HARDFAULT, MEMMANAGE, BUSFAULT, USAGEFAULT = 1, 2, 3, 4, 5, 6
SVCALL, DEBUGMON, PENDSV, SYSTICK = 11, 12, 14, 15
FIRST_IRQ = 16
_FIXED_PRIORITY = {RESET: -3, NMI: -2, HARDFAULT: -1}
# system exceptions whose priority SHPR1-3 hold
CONFIGURABLE_SYSTEM = (MEMMANAGE, BUSFAULT, USAGEFAULT, SVCALL, DEBUGMON, PENDSV, SYSTICK)
NO_PRIORITY = 256  # "no exception active": lower than any real priority
_WORDS = 8  # ISER0..7 etc. as in CMSIS (ARMv7-M allows up to 16)


class Nvic(Peripheral):
    size = 0xC00

    def __init__(self, host: Host, num_irqs: int = 150, prio_bits: int = 4) -> None:
        super().__init__(host, "NVIC")
        if not 1 <= num_irqs <= 32 * _WORDS:
            raise ValueError(f"NVIC: {num_irqs} IRQs unsupported (1..{32 * _WORDS})")
        if not 2 <= prio_bits <= 8:
            raise ValueError(f"NVIC: {prio_bits} priority bits unsupported (2..8)")
        self.num_irqs = num_irqs
        self.num_exceptions = FIRST_IRQ + num_irqs
        self.prio_mask = (0xFF << (8 - prio_bits)) & 0xFF
        #: called whenever something may have become deliverable (the machine ends the slice)
        self.on_change: Callable[[], None] = lambda: None
        self.prigroup = 0
        self._enabled = [False] * self.num_exceptions
        self._line = [False] * num_irqs
        self._priority = [0] * self.num_exceptions
        self.pending: set[int] = set()
        self.active: set[int] = set()
        self._define_registers()
        self.stir = _Stir(self)
        self.reset()

    # -- registers -----------------------------------------------------------------------------
    def _define_registers(self) -> None:
        for i in range(_WORDS):
            self._bit_array(0x000 + 4 * i, f"ISER{i}", i, self._read_enabled, self._set_enabled_bits)
            self._bit_array(0x080 + 4 * i, f"ICER{i}", i, self._read_enabled, self._clear_enabled_bits)
            self._bit_array(0x100 + 4 * i, f"ISPR{i}", i, self._read_pending, self._set_pending_bits)
            self._bit_array(0x180 + 4 * i, f"ICPR{i}", i, self._read_pending, self._clear_pending_bits)
            self._bit_array(0x200 + 4 * i, f"IABR{i}", i, self._read_active, None)
        for i in range((self.num_irqs + 3) // 4):
            reg = self.regs.define(0x300 + 4 * i, f"IPR{i}", on_write=self._ipr_written(i))
            for lane in range(4):
                if 4 * i + lane < self.num_irqs:
                    reg.field(8 * lane, 8, f"PRI_{4 * i + lane}")
            self._mask_ipr(reg)

    def _mask_ipr(self, reg: Register) -> None:
        # only the implemented (top) bits of each byte hold a value; the rest read as zero
        for f in reg.fields.values():
            keep = self.prio_mask << f.lsb
            f.on_read = _masked_reader(reg, f.lsb, keep)

    def _bit_array(
        self,
        offset: int,
        name: str,
        word: int,
        reader: Callable[[int], int],
        writer: Callable[[int, int], None] | None,
    ) -> None:
        valid = self._valid_mask(word)
        if writer is None:
            self.regs.define(offset, name, access=Access.RO, on_read=lambda _v: reader(word) & valid)
            return
        reg: Register

        def on_write(_old: int, new: int) -> None:
            reg.value = 0  # W1S/W1C: the written ones act, nothing is stored
            writer(word, new & valid)

        reg = self.regs.define(
            offset, name, access=Access.WO, on_read=lambda _v: reader(word) & valid, on_write=on_write
        )

    def _valid_mask(self, word: int) -> int:
        first = 32 * word
        count = max(0, min(32, self.num_irqs - first))
        return (1 << count) - 1

    def _bits(self, word: int, predicate: Callable[[int], bool]) -> int:
        v = 0
        for b in range(32):
            irq = 32 * word + b
            if irq < self.num_irqs and predicate(FIRST_IRQ + irq):
                v |= 1 << b
        return v

    def _read_enabled(self, word: int) -> int:
        return self._bits(word, lambda e: self._enabled[e])

    def _read_pending(self, word: int) -> int:
        return self._bits(word, lambda e: e in self.pending)

    def _read_active(self, word: int) -> int:
        return self._bits(word, lambda e: e in self.active)

    def _each(self, word: int, bits: int) -> list[int]:
        return [FIRST_IRQ + 32 * word + b for b in range(32) if bits >> b & 1]

    def _set_enabled_bits(self, word: int, bits: int) -> None:
        for e in self._each(word, bits):
            self._enabled[e] = True
        if bits:
            self.on_change()

    def _clear_enabled_bits(self, word: int, bits: int) -> None:
        for e in self._each(word, bits):
            self._enabled[e] = False

    def _set_pending_bits(self, word: int, bits: int) -> None:
        for e in self._each(word, bits):
            self.pend(e)

    def _clear_pending_bits(self, word: int, bits: int) -> None:
        for e in self._each(word, bits):
            self.unpend(e)

    def _ipr_written(self, index: int) -> Callable[[int, int], None]:
        def on_write(_old: int, new: int) -> None:
            for lane in range(4):
                irq = 4 * index + lane
                if irq < self.num_irqs:
                    self._priority[FIRST_IRQ + irq] = (new >> (8 * lane)) & self.prio_mask
            self.on_change()

        return on_write

    def reset(self) -> None:
        super().reset()
        self.prigroup = 0
        self._enabled = [False] * self.num_exceptions
        for e in (NMI, HARDFAULT, SVCALL, PENDSV, SYSTICK):
            self._enabled[e] = True
        self._line = [False] * self.num_irqs
        self._priority = [0] * self.num_exceptions
        for e, p in _FIXED_PRIORITY.items():
            self._priority[e] = p
        self.pending.clear()
        self.active.clear()

    # -- state used by the SCB, the exception unit and the hosts -------------------------------
    def set_irq(self, irq: int, level: bool) -> None:
        """Drive interrupt line ``irq`` (IRQn) to ``level``."""
        if not 0 <= irq < self.num_irqs:
            raise ValueError(f"NVIC: IRQ {irq} out of range (0..{self.num_irqs - 1})")
        level = bool(level)
        was = self._line[irq]
        self._line[irq] = level
        if level and not was:
            self.pend(FIRST_IRQ + irq)

    def line(self, irq: int) -> bool:
        return self._line[irq]

    def pend(self, exc: int) -> None:
        if exc not in self.pending:
            self.pending.add(exc)
            self.on_change()

    def unpend(self, exc: int) -> None:
        if exc >= FIRST_IRQ and self._line[exc - FIRST_IRQ] and exc not in self.active:
            return  # a level-sensitive line that is still high keeps its interrupt pending
        self.pending.discard(exc)

    def activate(self, exc: int) -> None:
        self.pending.discard(exc)
        self.active.add(exc)

    def deactivate(self, exc: int) -> None:
        self.active.discard(exc)
        if exc >= FIRST_IRQ and self._line[exc - FIRST_IRQ]:
            self.pending.add(exc)

    def enabled(self, exc: int) -> bool:
        return self._enabled[exc]

    def set_enabled(self, exc: int, on: bool) -> None:
        """Enable bit of an IRQ (ISER/ICER) or of MemManage/BusFault/UsageFault (SHCSR)."""
        self._enabled[exc] = bool(on)
        if on:
            self.on_change()

    def priority(self, exc: int) -> int:
        return self._priority[exc]

    def set_priority(self, exc: int, value: int) -> None:
        if exc in _FIXED_PRIORITY:
            return
        self._priority[exc] = value & self.prio_mask
        self.on_change()

    def group_priority(self, value: int) -> int:
        """The preemption part of a priority value under the current PRIGROUP."""
        if value < 0:
            return value
        return value & ~((2 << self.prigroup) - 1) & 0xFF

    def execution_priority(
        self, primask: int, basepri: int, faultmask: int, *, with_primask: bool = True
    ) -> int:
        prio = NO_PRIORITY
        for e in self.active:
            prio = min(prio, self.group_priority(self._priority[e]))
        bp = basepri & self.prio_mask
        if bp:
            prio = min(prio, self.group_priority(bp))
        if with_primask and primask & 1:
            prio = min(prio, 0)
        if faultmask & 1:
            prio = min(prio, -1)
        return prio

    def highest_pending(self) -> int | None:
        """The pending, enabled exception that would be taken first (priority, then number)."""
        best = None
        best_key = None
        for e in self.pending:
            if not self._enabled[e]:
                continue
            key = (self._priority[e], e)
            if best_key is None or key < best_key:
                best, best_key = e, key
        return best

    def can_preempt(self, exc: int, execution_priority: int) -> bool:
        return self.group_priority(self._priority[exc]) < execution_priority

    def any_irq_pending(self) -> bool:
        return any(e >= FIRST_IRQ for e in self.pending)


class _Stir:
    """Software trigger interrupt register (0xE000EF00): writing INTID pends IRQ INTID."""

    def __init__(self, nvic: Nvic) -> None:
        self._nvic = nvic

    def read(self, offset: int, size: int) -> int:
        return 0  # write-only

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == 0:
            irq = value & 0x1FF
            if irq < self._nvic.num_irqs:
                self._nvic.pend(FIRST_IRQ + irq)

    def reset(self) -> None:
        pass


def _masked_reader(reg: Register, lsb: int, keep: int) -> Callable[[], int]:
    return lambda: (reg.value & keep) >> lsb
