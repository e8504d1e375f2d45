"""Direct access to libunicorn for the engine's hot paths.

The unicorn Python binding wraps every callback in three Python frames; registering our own ctypes
callbacks with ``uc_mmio_map``/``uc_hook_add`` halves the cost of an MMIO access (measured 0.9 ->
2.0 million reads/s). Register access on the exception and slice-boundary paths goes straight to
``uc_reg_read``/``uc_reg_write`` and their batch forms too (the binding's per-call overhead was
most of an interrupt round trip). This module is the only place that touches the binding's
internals (``uclib`` and the callback prototypes), so an incompatible binding fails here with a
clear message.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable, Sequence
from typing import Any

from unicorn import UcError
from unicorn import unicorn_const as ucc

try:
    from unicorn.unicorn_py3 import unicorn as _binding

    _uclib = _binding.uclib
    MMIO_READ_CFUNC = _binding.MMIO_READ_CFUNC
    MMIO_WRITE_CFUNC = _binding.MMIO_WRITE_CFUNC
    HOOK_INTR_CFUNC = _binding.HOOK_INTR_CFUNC
    HOOK_CODE_CFUNC = _binding.HOOK_CODE_CFUNC
    HOOK_MEM_INVALID_CFUNC = _binding.HOOK_MEM_INVALID_CFUNC
    HOOK_MEM_ACCESS_CFUNC = _binding.HOOK_MEM_ACCESS_CFUNC
    HOOK_INSN_INVALID_CFUNC = _binding.HOOK_INSN_INVALID_CFUNC
    HOOK_TLB_FILL_CFUNC = _binding.HOOK_TLB_FILL_CFUNC
    _uc_hook_h = _binding.uc_hook_h
    # The same loaded library without declared argument types, for the hot register calls:
    # ctypes then skips per-argument conversion (measured ~2x cheaper per call). Only ctypes
    # objects are ever passed to these (a bare Python int would be truncated to a C int).
    _raw = ctypes.CDLL(_uclib._name, handle=_uclib._handle)
    _reg_read = _raw.uc_reg_read
    _reg_write = _raw.uc_reg_write
    _reg_read_batch = _raw.uc_reg_read_batch
    _reg_write_batch = _raw.uc_reg_write_batch
    for _f in (_reg_read, _reg_write, _reg_read_batch, _reg_write_batch):
        _f.restype = ctypes.c_int
except (ImportError, AttributeError) as exc:  # pragma: no cover - depends on the installed wheel
    raise ImportError(
        "h743sim's engine needs the unicorn 2.1.x Python binding (unicorn.unicorn_py3): " + str(exc)
    ) from exc


def handle(uc: Any) -> Any:
    """The ``uc_engine`` handle of a binding ``Uc`` object."""
    return uc._uch


def check(status: int) -> None:
    if status != ucc.UC_ERR_OK:
        raise UcError(status)


class NativeHooks:
    """Registers raw ctypes callbacks on one engine and keeps them alive."""

    def __init__(self, uc: Any) -> None:
        self._uc = uc
        self._keep: list[object] = []

    def mmio_map(
        self,
        base: int,
        size: int,
        read: Callable[[Any, int, int, Any], int],
        write: Callable[[Any, int, int, int, Any], None],
    ) -> None:
        rcb = MMIO_READ_CFUNC(read)
        wcb = MMIO_WRITE_CFUNC(write)
        check(_uclib.uc_mmio_map(handle(self._uc), base, size, rcb, None, wcb, None))
        self._keep += [rcb, wcb]

    def add(self, htype: int, cfunc: object, begin: int = 1, end: int = 0) -> int:
        """Add a hook with an already built ctypes callback; returns its handle."""
        h = _uc_hook_h()
        check(
            _uclib.uc_hook_add(
                handle(self._uc),
                ctypes.byref(h),
                htype,
                cfunc,
                None,
                ctypes.c_uint64(begin),
                ctypes.c_uint64(end),
            )
        )
        self._keep.append(cfunc)
        return h.value

    def delete(self, hook: int) -> None:
        check(_uclib.uc_hook_del(handle(self._uc), _uc_hook_h(hook)))


class RegisterFile:
    """Single register reads and writes straight through libunicorn.

    The binding's ``reg_read``/``reg_write`` pick a value class per call and wrap it in several
    Python frames (measured 3-5 us each); a preallocated 64-bit slot and one foreign call cost
    well under 1 us. Values are handled exactly as the binding does for plain registers: the
    slot is a ``uint64_t`` (32-bit registers use its low half, D registers all of it).
    """

    def __init__(self, uc: Any) -> None:
        self._uch = handle(uc)
        self._slot = ctypes.c_uint64()
        self._ref = ctypes.byref(self._slot)
        self._read = _reg_read
        self._write = _reg_write

    def read(self, reg_id: int) -> int:
        slot = self._slot
        slot.value = 0  # 32-bit registers fill only the low half
        status = self._read(self._uch, reg_id, self._ref)
        if status:
            raise UcError(status, reg_id)
        return slot.value

    def write(self, reg_id: int, value: int) -> None:
        self._slot.value = value  # c_uint64 wraps modulo 2**64, as the binding's conversion does
        status = self._write(self._uch, reg_id, self._ref)
        if status:
            raise UcError(status, reg_id)


class RegisterBatch:
    """Reads (or writes) a fixed list of 32-bit registers in one libunicorn call.

    libunicorn applies a batch write register by register in list order (one PC-change request at
    the end when PC is among them), so an ordered batch behaves like the same single writes;
    an id may appear several times (mode switches write IPSR and CONTROL more than once).
    """

    def __init__(self, uc: Any, reg_ids: Sequence[int]) -> None:
        self._uch = handle(uc)
        n = len(reg_ids)
        self._n = n
        self._ids = (ctypes.c_int * n)(*reg_ids)
        self._vals = (ctypes.c_uint64 * n)()
        self._ptrs = (ctypes.c_void_p * n)(*[ctypes.addressof(self._vals) + 8 * i for i in range(n)])
        self._count = ctypes.c_int(n)
        self._pack = struct.Struct("<" + "I4x" * n)
        self._read = _reg_read_batch
        self._write = _reg_write_batch

    def read(self) -> list[int]:
        # 32-bit registers fill the low half of each 64-bit slot; the high half stays 0
        # because write() stores 32-bit values only
        status = self._read(self._uch, self._ids, self._ptrs, self._count)
        if status:
            raise UcError(status)
        return self._vals[:]

    def write(self, values: Sequence[int]) -> None:
        try:
            # each value into the low half of its slot, the high half zeroed (read() relies on it)
            self._pack.pack_into(self._vals, 0, *values)
        except struct.error:  # a value outside 0..2**32-1: store it truncated, as unicorn would
            self._pack.pack_into(self._vals, 0, *[v & 0xFFFFFFFF for v in values])
        status = self._write(self._uch, self._ids, self._ptrs, self._count)
        if status:
            raise UcError(status)
