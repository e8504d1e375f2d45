"""STM32H743 power control (PWR) at 0x58024800 (RM0433 chapter 6, FACTS §A.3, §I).

What ST's HAL waits on, and how the model produces it:
- supply configuration (CR3 LDOEN/BYPASS/SCUEN, reset 0x00000006): the first write that touches
  them after a power-on reset chooses the supply and locks it (SCUEN reads 0 afterwards); later writes
  to those bits are ignored until the next power-on reset. A *system* reset keeps the choice, so
  ``HAL_PWREx_ConfigSupply`` sees SCUEN=0 and compares CR3 with its request instead of waiting.
- CSR1.ACTVOSRDY rises a short time after a valid supply choice (LDO or bypass) and stays set
  through system resets; CSR1.ACTVOS shows the voltage scale actually applied.
- D3CR.VOS write -> VOSRDY drops, then rises after the regulator settles (HAL loops on it forever).
- CR3.USB33DEN -> USB33RDY (bit 26) when the board supplies VDD33USB; CR2.BREN -> BRRDY.
Use :meth:`reset` for a system reset and :meth:`power_on_reset` when power returns.
"""

from __future__ import annotations

from collections.abc import Callable

from peripherals.host import INFO, NS_PER_US, WARNING, Host, Timer
from peripherals.registers import Access, Peripheral

_SUPPLY_SETTLE_NS = 10 * NS_PER_US
_VOS_SETTLE_NS = 10 * NS_PER_US
_USB33_SETTLE_NS = 10 * NS_PER_US
_BACKUP_REGULATOR_NS = 10 * NS_PER_US
_SUPPLY_FIELDS = ("BYPASS", "LDOEN", "SCUEN")


class Pwr(Peripheral):
    """The PWR block of the STM32H743 (no SMPS)."""

    size = 0x400

    def __init__(
        self,
        host: Host,
        *,
        vdd33usb_present: bool = True,
        instant: bool = False,
        name: str = "PWR",
    ) -> None:
        super().__init__(host, name)
        self.vdd33usb_present = vdd33usb_present
        self.instant = instant
        self._timers: dict[str, Timer] = {}
        self._supply_locked = False
        self._supply_write_seen = False
        self._define_registers()
        self.power_on_reset()

    # ------------------------------------------------------------------ register map
    def _define_registers(self) -> None:
        r = self.regs
        cr1 = r.define(0x00, "CR1", reset=0xF000_C000)
        cr1.field(0, 1, "LPDS").field(4, 1, "PVDE").field(5, 3, "PLS").field(8, 1, "DBP")
        cr1.field(9, 1, "FLPS").field(14, 2, "SVOS").field(16, 1, "AVDEN").field(17, 2, "ALS")
        cr1.field(28, 4, "RESERVED_ONES", access=Access.RO)  # reads 1 per the SVD reset value

        csr1 = r.define(0x04, "CSR1", reset=0x0000_4000)
        csr1.field(4, 1, "PVDO", access=Access.RO).field(13, 1, "ACTVOSRDY", access=Access.RO)
        csr1.field(14, 2, "ACTVOS", access=Access.RO).field(16, 1, "AVDO", access=Access.RO)

        cr2 = r.define(0x08, "CR2", on_write=self._cr2_written)
        cr2.field(0, 1, "BREN").field(4, 1, "MONEN").field(16, 1, "BRRDY", access=Access.RO)
        for bit, flag in ((20, "VBATL"), (21, "VBATH"), (22, "TEMPL"), (23, "TEMPH")):
            cr2.field(bit, 1, flag, access=Access.RO)

        cr3 = r.define(0x0C, "CR3", reset=0x0000_0006, on_write=self._cr3_written)
        for bit, supply_field in enumerate(_SUPPLY_FIELDS):
            cr3.field(
                bit, 1, supply_field, writable_when=self._supply_unlocked, on_write=self._supply_touched
            )
        cr3.field(8, 1, "VBE").field(9, 1, "VBRS").field(24, 1, "USB33DEN").field(25, 1, "USBREGEN")
        cr3.field(26, 1, "USB33RDY", access=Access.RO)

        cpucr = r.define(0x10, "CPUCR", on_write=self._cpucr_written)
        cpucr.field(0, 1, "PDDS_D1").field(1, 1, "PDDS_D2").field(2, 1, "PDDS_D3")
        cpucr.field(5, 1, "STOPF", access=Access.RO).field(6, 1, "SBF", access=Access.RO)
        cpucr.field(7, 1, "SBF_D1", access=Access.RO).field(8, 1, "SBF_D2", access=Access.RO)
        cpucr.field(9, 1, "CSSF", access=Access.WO).field(11, 1, "RUN_D3")

        d3cr = r.define(0x18, "D3CR", reset=0x0000_4000)
        d3cr.field(13, 1, "VOSRDY", access=Access.RO).field(14, 2, "VOS", on_write=self._vos_written)

        r.define(0x20, "WKUPCR", on_write=self._wkupcr_written).field(0, 6, "WKUPC", access=Access.WO)
        r.define(0x24, "WKUPFR").field(0, 6, "WKUPF", access=Access.RO)
        r.define(0x28, "WKUPEPR").field(0, 6, "WKUPEN").field(8, 6, "WKUPP").field(16, 12, "WKUPPUPD")

    # ------------------------------------------------------------------ resets
    def _cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def power_on_reset(self) -> None:
        """Power returns: every register to its reset value, the supply choice unlocked again."""
        self._cancel_timers()
        self.regs.reset()
        self._supply_locked = False

    def reset(self, kind: str = "system") -> None:
        """A reset; ``kind="system"`` keeps the supply choice (CR3) and its ready state."""
        if kind == "por":
            self.power_on_reset()
            return
        if kind != "system":
            raise ValueError(f"PWR: unknown reset kind {kind!r}; expected 'system' or 'por'")
        cr3 = self.regs["CR3"]
        supply_bits = sum(cr3.fields[f].mask for f in _SUPPLY_FIELDS)
        kept_supply = cr3.value & supply_bits
        actvosrdy = self.regs["CSR1"]["ACTVOSRDY"]
        self._cancel_timers()
        self.regs.reset()
        if self._supply_locked:
            cr3.value = (cr3.value & ~supply_bits) | kept_supply
            self.regs["CSR1"]["ACTVOSRDY"] = actvosrdy
            # the regulator is already settled at the reset scale (VOS3)
            self.regs["D3CR"]["VOSRDY"] = actvosrdy

    @property
    def supply_locked(self) -> bool:
        """True once firmware chose the supply configuration (until the next power-on reset)."""
        return self._supply_locked

    @property
    def backup_domain_writable(self) -> bool:
        """CR1.DBP: RCC_BDCR and the backup domain accept writes (wire to the RCC model)."""
        return bool(self.regs["CR1"]["DBP"])

    # ------------------------------------------------------------------ behaviour
    def _after(self, key: str, delay_ns: int, callback: Callable[[], None]) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        if self.instant:
            callback()
        else:
            self._timers[key] = self.host.schedule(delay_ns, callback, f"PWR {key}")

    def _stop(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _supply_unlocked(self) -> bool:
        return not self._supply_locked

    def _supply_touched(self, _old: int, _new: int) -> None:
        self._supply_write_seen = True

    def _cr3_written(self, _old: int, _new: int) -> None:
        cr3 = self.regs["CR3"]
        if self._supply_write_seen:
            self._supply_write_seen = False
            self._supply_locked = True
            cr3["SCUEN"] = 0
            ldo, bypass = cr3["LDOEN"], cr3["BYPASS"]
            if ldo != bypass:
                self.host.log(INFO, f"PWR: supply configured ({'LDO' if ldo else 'bypass'}), now locked")
                self._after("ACTVOS", _SUPPLY_SETTLE_NS, self._supply_ready)
            else:
                self.host.log(
                    WARNING,
                    f"PWR: invalid supply configuration LDOEN={ldo} BYPASS={bypass}; ACTVOSRDY stays 0",
                )
        if cr3["USB33DEN"]:
            if not self.vdd33usb_present:
                self.host.log(WARNING, "PWR: USB33DEN=1 but the board has no VDD33USB: USB33RDY stays 0")
            elif not cr3["USB33RDY"] and "USB33" not in self._timers:
                self._after("USB33", _USB33_SETTLE_NS, self._usb33_ready)
        else:
            self._stop("USB33")
            cr3["USB33RDY"] = 0

    def _supply_ready(self) -> None:
        self._timers.pop("ACTVOS", None)
        csr1 = self.regs["CSR1"]
        csr1["ACTVOSRDY"] = 1
        csr1["ACTVOS"] = self.regs["D3CR"]["VOS"]
        if "VOS" not in self._timers:
            self.regs["D3CR"]["VOSRDY"] = 1

    def _usb33_ready(self) -> None:
        self._timers.pop("USB33", None)
        if self.regs["CR3"]["USB33DEN"]:
            self.regs["CR3"]["USB33RDY"] = 1

    def _vos_written(self, _old: int, new: int) -> None:
        if new == 0:
            self.host.log(WARNING, "PWR: D3CR.VOS=00 is reserved")
        self.regs["D3CR"]["VOSRDY"] = 0
        self._after("VOS", _VOS_SETTLE_NS, self._vos_ready)

    def _vos_ready(self) -> None:
        self._timers.pop("VOS", None)
        self.regs["D3CR"]["VOSRDY"] = 1
        self.regs["CSR1"]["ACTVOS"] = self.regs["D3CR"]["VOS"]

    def _cr2_written(self, _old: int, _new: int) -> None:
        cr2 = self.regs["CR2"]
        if cr2["BREN"] and not cr2["BRRDY"]:
            self._after("BREN", _BACKUP_REGULATOR_NS, lambda: self._set_ready("CR2", "BRRDY", "BREN"))
        elif not cr2["BREN"]:
            self._stop("BREN")
            cr2["BRRDY"] = 0

    def _set_ready(self, reg: str, ready: str, enable: str) -> None:
        self._timers.pop(enable, None)
        if self.regs[reg][enable]:
            self.regs[reg][ready] = 1

    def _cpucr_written(self, _old: int, _new: int) -> None:
        cpucr = self.regs["CPUCR"]
        if cpucr["CSSF"]:
            # clear standby and stop flags
            for flag in ("STOPF", "SBF", "SBF_D1", "SBF_D2"):
                cpucr[flag] = 0
            cpucr["CSSF"] = 0

    def _wkupcr_written(self, _old: int, new: int) -> None:
        self.regs["WKUPCR"].value = 0
        self.regs["WKUPFR"].clear_bits(new & 0x3F)
