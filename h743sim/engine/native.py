"""Direct access to libunicorn for the engine's hot paths.

The unicorn Python binding wraps every callback in three Python frames; registering our own ctypes
callbacks with ``uc_mmio_map``/``uc_hook_add`` halves the cost of an MMIO access (measured 0.9 ->
2.0 million reads/s). This module is the only place that touches the binding's internals
(``uclib`` and the callback prototypes), so an incompatible binding fails here with a clear message.
"""

from __future__ import annotations

import ctypes
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


class RegisterBatch:
    """Reads (or writes) a fixed list of 32-bit registers in one libunicorn call."""

    def __init__(self, uc: Any, reg_ids: Sequence[int]) -> None:
        self._uch = handle(uc)
        n = len(reg_ids)
        self._n = n
        self._ids = (ctypes.c_int * n)(*reg_ids)
        self._vals = (ctypes.c_uint64 * n)()
        self._ptrs = (ctypes.c_void_p * n)(*[ctypes.addressof(self._vals) + 8 * i for i in range(n)])

    def read(self) -> list[int]:
        # 32-bit registers fill the low half of each zero-initialised 64-bit slot
        check(_uclib.uc_reg_read_batch(self._uch, self._ids, self._ptrs, self._n))
        return list(self._vals)

    def write(self, values: Sequence[int]) -> None:
        for i, v in enumerate(values):
            self._vals[i] = v & 0xFFFFFFFF
        check(_uclib.uc_reg_write_batch(self._uch, self._ids, self._ptrs, self._n))
