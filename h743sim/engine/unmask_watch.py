"""Notices the instructions that can unmask a pending interrupt, so it is taken right after them.

``cpsie`` and ``msr primask/basepri/faultmask`` run inside unicorn without any callback, so a
pending interrupt held back by PRIMASK or BASEPRI would otherwise wait for the next slice
boundary. Every code page is scanned when the CPU first fetches from it (and again when its bytes
are invalidated) for these encodings; each candidate address gets a bounded ``UC_HOOK_CODE`` that
unicorn calls only when that instruction executes (unicorn's instruction counter already makes
every instruction call its hook helper, so these hooks cost nothing elsewhere). The hook asks the
machine to end the slice after the instruction when something is pending.

Encodings (ARMv7-M A7.7.22, A7.7.82): CPSIE T1 ``0xB660 | A<<2 | I<<1 | F`` (im = 0);
MSR T1 ``0xF380 | Rn`` then ``0x8800 | SYSm`` with SYSm 16-19 (PRIMASK, BASEPRI, BASEPRI_MAX,
FAULTMASK). A match inside data is harmless: its hook never runs or only ends a slice early.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from unicorn import unicorn_const as ucc

from h743sim.engine.native import HOOK_CODE_CFUNC, NativeHooks

_CPSIE = re.compile(rb"[\x61-\x67]\xb6")
_MSR_MASK = re.compile(rb"[\x80-\x8f]\xf3[\x10-\x13]\x88")


def find_unmasking(code: bytes, base: int) -> list[int]:
    """Halfword-aligned addresses in ``code`` (at ``base``) that hold CPSIE or MSR-to-mask encodings."""
    found = []
    for pattern in (_CPSIE, _MSR_MASK):
        pos = 0
        while True:
            m = pattern.search(code, pos)
            if m is None:
                break
            start = m.start()
            if (base + start) % 2 == 0:
                found.append(base + start)
            pos = start + 1
    return sorted(found)


class UnmaskWatch:
    def __init__(self, uc: Any, on_unmask: Callable[[], None]) -> None:
        self._hooks = NativeHooks(uc)
        self._on_unmask = on_unmask
        self._cfunc = HOOK_CODE_CFUNC(self._executed)
        self._by_page: dict[int, dict[int, int]] = {}  # page -> {address: hook}
        #: how many candidate instructions are hooked (diagnostics)
        self.hooked = 0

    def scan(self, page: int, code: bytes | None) -> None:
        """(Re)scan one page whose bytes are ``code`` (None: nothing executable there)."""
        old = self._by_page.pop(page, {})
        for hook in old.values():
            self._hooks.delete(hook)
        self.hooked -= len(old)
        if not code:
            return
        hooks = {}
        for address in find_unmasking(code, page):
            hooks[address] = self._hooks.add(ucc.UC_HOOK_CODE, self._cfunc, address, address)
        if hooks:
            self._by_page[page] = hooks
            self.hooked += len(hooks)

    def _executed(self, _h: Any, address: int, size: int, _u: Any) -> None:
        try:
            self._on_unmask()
        except BaseException:  # pragma: no cover - the callback only sets flags
            pass
