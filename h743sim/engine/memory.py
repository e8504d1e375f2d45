"""The CPU's address space: RAM, MMIO models and model-owned memory windows.

Measured facts this module is built on (unicorn 2.1.4, see also EMULATION.md §2):

* The engine runs with unicorn's virtual TLB and fills it itself: data pages get read/write
  permission only, pages that were ever fetched from (and window pages) read/write/execute. With
  the default TLB every RAM store takes the slow "not dirty" path (30-60 MIPS on store-heavy
  code); without execute permission in the TLB entry stores stay on the fast path, while pages
  holding code keep the slow path that discards stale translations (self-modifying code stays
  correct). Unicorn still enforces the region permissions given to ``mem_map``/``mem_protect``.
* A window is the model's ``bytearray`` mapped with ``mem_map_ptr`` (read/execute). A CPU store
  into it raises ``UC_HOOK_MEM_WRITE_PROT`` once per bus word (STRD/STM deliver every word); when
  the hook accepts, unicorn then writes the value into the buffer anyway. So the hook passes the
  write to the model's ``on_write``, snapshots the bytes the model wants there, and those bytes
  are put back before any model code or host code can look (next MMIO access, hook, or slice
  boundary); the machine also ends the slice after the storing instruction.
* ``mem_protect(NONE)`` on a window makes reads/writes/fetches fail with precise PCs.
* ``ctl_remove_cache`` over a changed range makes execute-in-place coherent, also mid-run.
* Any unbounded invalid-memory hook, and any ``UC_HOOK_MEM_READ`` hook even on a small range,
  sends every load/store through unicorn's slow path (load/store code 100 -> 22-24 MIPS). So
  there is no such hook (the machine reads the faulting address from unicorn instead), and a
  :meth:`MemoryMap.watch_reads` costs that while it is installed.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from unicorn import unicorn_const as ucc

from h743sim.engine.cpu import PAGE_SIZE
from h743sim.engine.native import (
    HOOK_MEM_ACCESS_CFUNC,
    HOOK_MEM_INVALID_CFUNC,
    HOOK_TLB_FILL_CFUNC,
    NativeHooks,
)
from peripherals.host import (
    ReadWatchHandler,
    WindowWriteHandler,
    finish_fifo_write,
    read_fifo_by_beats,
    read_units,
    write_units,
)

_PAGE_MASK = PAGE_SIZE - 1
_SIZE_MASK = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: 0xFFFFFFFFFFFFFFFF}
_PERM_RW = ucc.UC_PROT_READ | ucc.UC_PROT_WRITE
_PERM_RWX = ucc.UC_PROT_ALL
PPB_LIMIT = 0xE000_0000  # bus masters other than the CPU cannot reach the PPB and above


class BusModel(Protocol):
    """What an MMIO region dispatches to (the peripheral model contract)."""

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...

    def reset(self) -> None: ...


class BusListener(Protocol):
    """The machine's side of CPU accesses (time, polling detection, faults, errors)."""

    def mmio_read(self, address: int, value: int) -> None: ...

    def mmio_write(self, address: int) -> None: ...

    def window_written(self) -> None: ...

    def read_refused(self, address: int, reason: str) -> None: ...

    def callback_error(self, exc: BaseException, where: str) -> None: ...


@dataclass
class Region:
    name: str
    base: int
    size: int
    kind: str  # "ram" | "mmio" | "window"
    model: BusModel | None = None
    # RAM contents (the buffer unicorn maps): the engine reads vectors, stack frames and
    # instruction bytes from it without a libunicorn call
    data: memoryview | None = field(default=None, compare=False, repr=False)
    pin: Any = field(default=None, compare=False, repr=False)  # pins the buffer while mapped
    end: int = field(init=False, compare=False, repr=False)  # base + size (a region never moves)

    def __post_init__(self) -> None:
        self.end = self.base + self.size

    def contains(self, address: int, length: int = 1) -> bool:
        return self.base <= address and address + length <= self.end


@dataclass
class Window:
    name: str
    base: int
    buffer: bytearray
    executable: bool
    on_write: WindowWriteHandler | None
    enabled: bool = True
    view: Any = None  # ctypes array pinning the buffer (a bytearray cannot be resized while viewed)
    hook: int | None = None

    @property
    def end(self) -> int:
        return self.base + len(self.buffer)


@dataclass
class FaultInfo:
    """The last failed access unicorn reported through a memory hook."""

    access: int
    address: int
    size: int


@dataclass
class _Watch:
    base: int
    size: int
    handler: ReadWatchHandler
    hook: int | None = None
    removed: bool = field(default=False)


class MemoryMap:
    """Owns every mapping of one unicorn engine."""

    def __init__(self, uc: Any, listener: BusListener) -> None:
        self._uc = uc
        self._listener = listener
        self._hooks = NativeHooks(uc)
        self.regions: list[Region] = []
        self._last_region: Region | None = None  # region_at() cache; regions never overlap
        self.windows: dict[str, Window] = {}
        self._watches: list[_Watch] = []
        self.code_pages: set[int] = set()
        self._restore: list[tuple[Window, int, bytes]] = []
        #: address of the MMIO/window access a model is serving right now (None between accesses)
        self.access_address: int | None = None
        #: while a bus master's access is served: the reasons models gave to bus_error()
        self.master_errors: list[str] | None = None
        self.last_fault: FaultInfo | None = None
        # No unbounded invalid-memory hook: it would put every load/store on unicorn's slow path.
        self._hooks.add(ucc.UC_HOOK_TLB_FILL, HOOK_TLB_FILL_CFUNC(self._tlb_fill))
        self._flush_tlb()  # entries made before our fill hook existed

    # -- building the map --------------------------------------------------------------------
    def add_ram(self, name: str, base: int, size: int) -> None:
        """Plain read/write/execute memory (SRAM, TCM), zero-filled."""
        self._check_new(name, base, size)
        # a buffer of ours mapped in place (as unicorn's own RAM would be): CPU stores land in it
        # directly, so reading it is coherent; writes still go through mem_write, which keeps
        # translated code coherent
        buffer = bytearray(size)
        pin = (ctypes.c_char * size).from_buffer(buffer)
        self._uc.mem_map_ptr(base, size, ucc.UC_PROT_ALL, ctypes.addressof(pin))
        self.regions.append(Region(name, base, size, "ram", data=memoryview(buffer), pin=pin))

    def add_mmio(self, name: str, base: int, size: int, model: BusModel) -> None:
        """Route CPU accesses in [base, base+size) to ``model.read/write`` (offsets from base)."""
        for attr in ("read", "write", "reset"):
            if not callable(getattr(model, attr, None)):
                raise TypeError(f"MMIO model {name!r} has no {attr}() method")
        size = (size + _PAGE_MASK) & ~_PAGE_MASK
        self._check_new(name, base, size)
        region = Region(name, base, size, "mmio", model)
        read_cb, write_cb = self._mmio_callbacks(region, model)
        self._hooks.mmio_map(base, size, read_cb, write_cb)
        self.regions.append(region)

    def _check_new(self, name: str, base: int, size: int) -> None:
        if size <= 0:
            raise ValueError(f"region {name!r}: size must be positive, got {size:#x}")
        if base & _PAGE_MASK or size & _PAGE_MASK:
            raise ValueError(
                f"region {name!r} at {base:#010x} size {size:#x}: base and size must be multiples "
                f"of the {PAGE_SIZE}-byte page"
            )
        if base < 0 or base + size > 1 << 32:
            raise ValueError(f"region {name!r} at {base:#x} size {size:#x} is outside 32-bit space")
        for r in self.regions:
            if r.name == name:
                raise ValueError(f"a region named {name!r} already exists")
            if base < r.end and r.base < base + size:
                raise ValueError(
                    f"region {name!r} [{base:#010x}, {base + size:#010x}) overlaps {r.kind} region "
                    f"{r.name!r} [{r.base:#010x}, {r.end:#010x})"
                )

    def region_at(self, address: int) -> Region | None:
        r = self._last_region  # exception entry/return and WFI checks hit the same few regions
        if r is not None and r.base <= address < r.base + r.size:
            return r
        for r in self.regions:
            if r.base <= address < r.base + r.size:
                self._last_region = r
                return r
        return None

    # -- MMIO ----------------------------------------------------------------------------------
    def _mmio_callbacks(self, region: Region, model: BusModel) -> tuple[Callable, Callable]:
        read = model.read
        write = model.write
        base = region.base
        listener = self._listener
        name = region.name

        def read_cb(_h: Any, offset: int, size: int, _u: Any) -> int:
            try:
                if self._restore:
                    self.restore_windows()
                address = base + offset
                self.access_address = address
                value = read(offset, size) & _SIZE_MASK[size]
                self.access_address = None
                listener.mmio_read(address, value)
                return value
            except BaseException as exc:  # never let an exception unwind into C
                self.access_address = None
                listener.callback_error(exc, f"{name}: read of offset {offset:#x} ({size} bytes)")
                return 0

        def write_cb(_h: Any, offset: int, size: int, value: int, _u: Any) -> None:
            try:
                if self._restore:
                    self.restore_windows()
                address = base + offset
                self.access_address = address
                write(offset, size, value & _SIZE_MASK[size])
                self.access_address = None
                listener.mmio_write(address)
            except BaseException as exc:
                self.access_address = None
                listener.callback_error(
                    exc, f"{name}: write of {value:#x} to offset {offset:#x} ({size} bytes)"
                )

        return read_cb, write_cb

    # -- windows -------------------------------------------------------------------------------
    def map_window(
        self,
        name: str,
        base: int,
        buffer: bytearray,
        *,
        executable: bool = True,
        on_write: WindowWriteHandler | None = None,
    ) -> None:
        """Publish a model-owned buffer (see :meth:`peripherals.host.Host.map_memory`)."""
        if not isinstance(buffer, bytearray):
            raise TypeError(f"window {name!r}: buffer must be a bytearray, got {type(buffer).__name__}")
        old = self.windows.get(name)
        if old is not None and (old.base != base or old.buffer is not buffer):
            self._drop_window(old)
            old = None
        if old is not None:
            old.executable = executable
            old.on_write = on_write
            old.enabled = True
            self._uc.mem_protect(base, len(buffer), self._window_perms(old))
            # the model may have changed bytes while the window was off
            self._uc.ctl_remove_cache(base, old.end)
            self._flush_tlb()
            return
        self._check_new(name, base, len(buffer))
        view = (ctypes.c_char * len(buffer)).from_buffer(buffer)
        win = Window(name, base, buffer, executable, on_write, True, view)
        self._uc.mem_map_ptr(base, len(buffer), self._window_perms(win), ctypes.addressof(view))
        win.hook = self._hooks.add(
            ucc.UC_HOOK_MEM_WRITE_PROT,
            HOOK_MEM_INVALID_CFUNC(self._window_write_cb(win)),
            base,
            win.end - 1,
        )
        self.windows[name] = win
        self.regions.append(Region(name, base, len(buffer), "window"))
        self._flush_tlb()

    @staticmethod
    def _window_perms(win: Window) -> int:
        return ucc.UC_PROT_READ | (ucc.UC_PROT_EXEC if win.executable else 0)

    def _drop_window(self, win: Window) -> None:
        self.restore_windows()
        if win.hook is not None:
            self._hooks.delete(win.hook)
        self._uc.mem_unmap(win.base, len(win.buffer))
        self._uc.ctl_remove_cache(win.base, win.end)
        self.regions = [r for r in self.regions if r.name != win.name]
        self._last_region = None
        del self.windows[win.name]
        self._flush_tlb()

    def unmap_window(self, name: str) -> None:
        """Disable a window: every CPU access to it now ends in a bus error."""
        win = self.windows.get(name)
        if win is None:
            raise KeyError(f"no memory window named {name!r} (known: {', '.join(self.windows) or 'none'})")
        self.restore_windows()
        win.enabled = False
        self._uc.mem_protect(win.base, len(win.buffer), ucc.UC_PROT_NONE)
        self._flush_tlb()

    def invalidate(self, base: int, size: int) -> None:
        """Bytes in [base, base+size) changed behind the CPU's back: drop translated code."""
        if size <= 0:
            return
        lo = max(0, base)
        hi = min(1 << 32, base + size)
        if lo < hi:
            self._uc.ctl_remove_cache(lo, hi)

    def _window_write_cb(self, win: Window) -> Callable:
        listener = self._listener

        def cb(_h: Any, access: int, address: int, size: int, value: int, _u: Any) -> bool:
            try:
                if self._restore:
                    self.restore_windows()
                if not win.enabled or win.on_write is None:
                    self.last_fault = FaultInfo(access, address, size)
                    return False
                offset = address - win.base
                self.access_address = address
                win.on_write(offset, size, value & _SIZE_MASK.get(size, 0xFFFFFFFF))
                self.access_address = None
                # unicorn stores the value into the buffer after we return: keep the model's bytes
                self._restore.append((win, offset, bytes(win.buffer[offset : offset + size])))
                listener.window_written()
                return True
            except BaseException as exc:
                self.access_address = None
                listener.callback_error(exc, f"window {win.name}: write at {address:#010x}")
                return True

        return cb

    def restore_windows(self) -> None:
        """Put back the model's bytes over CPU stores that landed in window buffers."""
        pending, self._restore = self._restore, []
        for win, offset, data in pending:
            win.buffer[offset : offset + len(data)] = data
            if win.executable:
                self._uc.ctl_remove_cache(win.base + offset, win.base + offset + len(data))

    # -- read watches --------------------------------------------------------------------------
    def watch_reads(self, base: int, size: int, handler: ReadWatchHandler) -> Callable[[], None]:
        if size <= 0:
            raise ValueError(f"watch_reads: size must be positive, got {size}")
        watch = _Watch(base, size, handler)
        listener = self._listener

        def cb(_h: Any, access: int, address: int, asize: int, value: int, _u: Any) -> None:
            try:
                if self._restore:
                    self.restore_windows()
                reason = handler(address - base, asize)
                if reason:
                    listener.read_refused(address, str(reason))
            except BaseException as exc:
                listener.callback_error(exc, f"read watch at {address:#010x}")

        watch.hook = self._hooks.add(ucc.UC_HOOK_MEM_READ, HOOK_MEM_ACCESS_CFUNC(cb), base, base + size - 1)
        self._watches.append(watch)

        def remove() -> None:
            if not watch.removed and watch.hook is not None:
                watch.removed = True
                self._hooks.delete(watch.hook)
                self._watches.remove(watch)

        return remove

    # -- unicorn hooks -------------------------------------------------------------------------
    def _tlb_fill(self, _h: Any, vaddr: int, access: int, entry: Any, _u: Any) -> bool:
        page = vaddr & ~_PAGE_MASK & 0xFFFFFFFF
        if access == ucc.UC_MEM_FETCH:
            self.code_pages.add(page)
            perms = _PERM_RWX
        elif page in self.code_pages:
            perms = _PERM_RWX
        else:
            perms = _PERM_RW
            for w in self.windows.values():
                if w.base <= page < w.end:
                    perms = _PERM_RWX  # keeps window stores on the hooked slow path
                    break
        e = entry.contents
        e.paddr = page
        e.perms = perms
        return True

    def _flush_tlb(self) -> None:
        self._uc.ctl(ucc.UC_CTL_TLB_FLUSH, ucc.UC_CTL_IO_WRITE)

    # -- accesses on behalf of the engine ------------------------------------------------------
    def ram_covers(self, address: int, length: int) -> bool:
        """True when [address, address+length) lies in one RAM region (stack frames)."""
        r = self.region_at(address)
        return r is not None and r.kind == "ram" and r.contains(address, length)

    def cpu_read(self, address: int, length: int) -> bytes | None:
        """Bytes the CPU could read from RAM or an enabled window, else None (bus error)."""
        r = self.region_at(address)
        if r is None or not (r.base <= address and address + length <= r.end):
            return None
        if r.data is not None:  # RAM
            off = address - r.base
            return r.data[off : off + length].tobytes()
        if r.kind == "window":
            win = self.windows[r.name]
            if not win.enabled:
                return None
            off = address - win.base
            return bytes(win.buffer[off : off + length])
        return None

    def write_ram(self, address: int, data: bytes) -> None:
        self._uc.mem_write(address, bytes(data))

    # -- host-side accesses (debugger, loaders, tests) -----------------------------------------
    def host_read(self, address: int, length: int) -> bytes:
        """Read any mapped bytes, ignoring window state; MMIO through the model (side effects!)."""
        self.restore_windows()
        out = bytearray()
        addr = address
        end = address + length
        while addr < end:
            r = self.region_at(addr)
            if r is None:
                raise ValueError(f"read_memory: nothing mapped at {addr:#010x}")
            chunk = min(end, r.end) - addr
            if r.kind == "ram":
                out += self._uc.mem_read(addr, chunk)
            elif r.kind == "window":
                off = addr - r.base
                out += self.windows[r.name].buffer[off : off + chunk]
            else:
                out += _mmio_host_read(r, addr - r.base, chunk)
            addr += chunk
        return bytes(out)

    def host_write(self, address: int, data: bytes) -> None:
        """Write mapped bytes: RAM directly, windows into the model's buffer, MMIO via the model."""
        self.restore_windows()
        data = bytes(data)
        addr = address
        pos = 0
        while pos < len(data):
            r = self.region_at(addr)
            if r is None:
                raise ValueError(f"write_memory: nothing mapped at {addr:#010x}")
            chunk = min(len(data) - pos, r.end - addr)
            piece = data[pos : pos + chunk]
            if r.kind == "ram":
                self._uc.mem_write(addr, piece)
            elif r.kind == "window":
                off = addr - r.base
                self.windows[r.name].buffer[off : off + chunk] = piece
            else:
                _mmio_host_write(r, addr - r.base, piece)
            self._uc.ctl_remove_cache(addr, addr + chunk)
            addr += chunk
            pos += chunk

    # -- bus master (DMA) accesses, see peripherals.host.Host.bus_read ------------------------
    def master_read(self, address: int, length: int, unit: int = 4) -> bytes:
        """Bytes a bus master reads; shorter than ``length``: the access after them failed."""
        if self._restore:
            self.restore_windows()
        out = bytearray()
        addr = address
        end = address + length
        while addr < end:
            r = self._master_region(addr)
            if r is None:
                break
            chunk = min(end, r.end) - addr
            if r.data is not None:  # RAM: CPU stores land in this buffer directly
                off = addr - r.base
                out += r.data[off : off + chunk]
            elif r.kind == "window":
                win = self.windows[r.name]
                if not win.enabled:
                    break
                off = addr - win.base
                if self._watches:  # read watches (ECC errors) may refuse some accesses
                    pos = 0
                    while pos < chunk:
                        size = unit if chunk - pos >= unit else 1
                        if self._watch_refuses(addr + pos, size):
                            break
                        pos += size
                    out += win.buffer[off : off + pos]
                    if pos < chunk:
                        break
                else:
                    out += win.buffer[off : off + chunk]
            else:
                got = self._master_mmio(r, addr, chunk, unit)
                out += got
                if len(got) < chunk:
                    break
            addr += chunk
        return bytes(out)

    def master_write(self, address: int, data: bytes, unit: int = 4) -> int:
        """Write for a bus master; returns the bytes written (fewer: the next access failed)."""
        if self._restore:
            self.restore_windows()
        data = bytes(data)
        done = 0
        while done < len(data):
            addr = address + done
            r = self._master_region(addr)
            if r is None:
                break
            chunk = min(len(data) - done, r.end - addr)
            piece = data[done : done + chunk]
            if r.data is not None:
                self._uc.mem_write(addr, piece)
                first, last = addr & ~_PAGE_MASK, (addr + chunk - 1) & ~_PAGE_MASK
                if any(page in self.code_pages for page in range(first, last + 1, PAGE_SIZE)):
                    self._uc.ctl_remove_cache(addr, addr + chunk)  # mem_write alone leaves stale code
                n = chunk
            elif r.kind == "window":
                win = self.windows[r.name]
                if not win.enabled or win.on_write is None:
                    break
                # as a CPU store: the model decides what the buffer holds (and invalidates)
                n = self._master_units(win.on_write, win.base, addr, piece, unit)
            else:
                assert r.model is not None
                n = self._master_units(r.model.write, r.base, addr, piece, unit)
            done += n
            if n < chunk:
                break
        return done

    def master_write_fifo(self, address: int, data: bytes, unit: int = 4) -> int:
        """``unit``-byte writes of ``data`` all to ``address`` (a DMA with a fixed destination);
        returns the bytes written. A model's ``write_fifo(offset, size, data)`` may take leading
        beats at once (it returns how many bytes it took); the rest go beat by beat."""
        if self._restore:
            self.restore_windows()
        r = self._master_region(address)
        done = 0
        bulk = getattr(r.model, "write_fifo", None) if r is not None and r.kind == "mmio" else None
        errors: list[str] = []
        if bulk is not None:
            assert r is not None
            with self._serving_master() as errors:
                done = bulk(address - r.base, unit, bytes(data))
        return finish_fifo_write(done, bool(errors), self._master_write_one, address, data, unit)

    def master_read_fifo(self, address: int, length: int, unit: int = 4) -> bytes:
        """``unit``-byte reads all from ``address`` (a DMA with a fixed source); short: failed."""
        return read_fifo_by_beats(self._master_read_one, address, length, unit)

    def _master_write_one(self, address: int, size: int, value: int) -> bool:
        return self.master_write(address, (value & _SIZE_MASK[size]).to_bytes(size, "little"), size) == size

    def _master_read_one(self, address: int, size: int) -> int | None:
        data = self.master_read(address, size, size)
        return int.from_bytes(data, "little") if len(data) == size else None

    def _master_region(self, address: int) -> Region | None:
        if not 0 <= address < PPB_LIMIT:  # the PPB (SCS, NVIC...) is private to the CPU
            return None
        return self.region_at(address)

    def _watch_refuses(self, address: int, length: int) -> bool:
        for w in self._watches:
            lo, hi = max(w.base, address), min(w.base + w.size, address + length)
            if lo < hi and w.handler(lo - w.base, hi - lo):
                return True
        return False

    @contextlib.contextmanager
    def _serving_master(self) -> Iterator[list[str]]:
        """While a model serves a bus master's access, its bus_error() reports land here."""
        self.master_errors = errors = []
        try:
            yield errors
        finally:
            self.master_errors = None

    def _master_mmio(self, region: Region, address: int, length: int, unit: int) -> bytes:
        assert region.model is not None
        with self._serving_master() as errors:
            return read_units(region.model.read, address - region.base, length, unit, errors)

    def _master_units(
        self, write: Callable[[int, int, int], None], base: int, address: int, data: bytes, unit: int
    ) -> int:
        with self._serving_master() as errors:
            return write_units(write, address - base, data, unit, errors)

    def reset_models(self) -> None:
        for r in self.regions:
            if r.kind == "mmio" and r.model is not None:
                r.model.reset()


def _mmio_host_read(region: Region, offset: int, length: int) -> bytes:
    assert region.model is not None
    out = bytearray()
    end = offset + length
    while offset < end:
        size = 4 if offset % 4 == 0 and end - offset >= 4 else 1
        out += (region.model.read(offset, size) & _SIZE_MASK[size]).to_bytes(size, "little")
        offset += size
    return bytes(out)


def _mmio_host_write(region: Region, offset: int, data: bytes) -> None:
    assert region.model is not None
    pos = 0
    while pos < len(data):
        size = 4 if (offset + pos) % 4 == 0 and len(data) - pos >= 4 else 1
        region.model.write(offset + pos, size, int.from_bytes(data[pos : pos + size], "little"))
        pos += size


__all__ = ["BusListener", "BusModel", "FaultInfo", "MemoryMap", "Region"]
