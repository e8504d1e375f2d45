"""A DfuSe session with the virtual board: pyusb over the board's USB, the DfuSe client, progress.

Waits asked for by the device (bwPollTimeout) advance the board's virtual time, never the wall
clock, so the firmware really runs while the host waits.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import usb.core

from h743sim.dfuse.client import DfuseClient
from h743sim.dfuse.images import load_image, plan_download
from h743sim.errors import UserError
from h743sim.usb.pyusb_backend import VirtualBackend
from peripherals.host import NS_PER_MS

ST_VID, DFU_PID = 0x0483, 0xDF11


class _Progress:
    """A tqdm bar per phase (erase/download/upload), or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(phase)
        if bar is None:
            self.close()  # one bar at a time: the previous phase is over
            bar = self.bars[phase] = tqdm(
                total=total, desc=f"{phase:>8}", unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr
            )
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


class DfuSession:
    def __init__(self, board: Any, *, sleep_ms: Callable[[int], None] | None = None) -> None:
        self.board = board
        self.backend = VirtualBackend(board.usb)
        dev = usb.core.find(backend=self.backend, idVendor=ST_VID, idProduct=DFU_PID)
        if dev is None:
            raise UserError("no DFU device 0483:df11 on the virtual USB bus (is the bootloader in DFU mode?)")
        self.device = dev
        self.client = DfuseClient(dev, sleep_ms=sleep_ms or self._advance_ms)

    def _advance_ms(self, ms: int) -> None:
        self.board.run_for_ns(max(0, int(ms)) * NS_PER_MS)

    def describe(self) -> list[str]:
        d = self.device
        lines = [
            f"{d.idVendor:04x}:{d.idProduct:04x} '{d.manufacturer}' '{d.product}' serial {d.serial_number}",
            f"DFU: bcdDFU {self.client.functional.bcd_dfu:#06x}, wTransferSize {self.client.transfer_size}",
        ]
        for alt in self.client.alt_settings:
            lines.append(f"  alt {alt.alt}: {alt.name}")
        return lines

    def download_file(
        self,
        path: Path | str,
        *,
        address: int | None = None,
        alt: int | None = None,
        mass_erase: bool = False,
        progress: bool = False,
        verify: bool = False,
    ) -> list[Any]:
        regions = load_image(path, address)
        parts = plan_download(regions, self.client.layouts, alt=alt)
        bar = _Progress(progress)
        try:
            if mass_erase:
                for a in sorted({p.alt for p in parts}):
                    self.client.mass_erase(a)
            self.client.download_parts(parts, erase=not mass_erase, verify=verify, progress=bar)
        finally:
            bar.close()
        return parts

    def upload(self, address: int, length: int, *, progress: bool = False) -> bytes:
        bar = _Progress(progress)
        try:
            return self.client.upload(address, length, progress=bar)
        finally:
            bar.close()

    def erase(self, address: int) -> tuple[int, int]:
        return self.client.erase(address)

    def mass_erase(self, alt: int) -> None:
        self.client.mass_erase(alt)

    def leave(self) -> None:
        self.client.leave()
