"""Finds how far ahead the next instruction that can unmask interrupts is.

``cpsie`` and ``msr primask/basepri/faultmask`` run inside unicorn without any callback (and
per-address code hooks are no answer: each bounded ``UC_HOOK_CODE`` adds a check to every
instruction unicorn executes - measured 170 -> 46 MIPS with ten of them). So while an interrupt
waits only for a mask, the run loop decodes the straight-line code after PC and ends the next slice
just after the first such instruction; the interrupt is then taken where hardware takes it.

Encodings (ARMv7-M A7.7.22, A7.7.82): CPSIE T1 ``0xB660 | A<<2 | I<<1 | F`` (im = 0); MSR T1
``0xF380 | Rn`` then ``0x8800 | SYSm`` with SYSm 16-19 (PRIMASK, BASEPRI, BASEPRI_MAX, FAULTMASK).
The scan stops at unconditional control flow (B, B.W, BL, BX/BLX, POP {pc}).
"""

from __future__ import annotations

SCAN_INSTRUCTIONS = 64
SCAN_BYTES = 4 * SCAN_INSTRUCTIONS


def instructions_until_unmask(code: bytes, limit: int = SCAN_INSTRUCTIONS) -> int | None:
    """Instructions to execute, counting from the first of ``code``, to run the first unmasking
    instruction on the straight-line path; None when none is found before control flow leaves it."""
    i = 0
    n = 0
    while n < limit and i + 2 <= len(code):
        hw = code[i] | code[i + 1] << 8
        n += 1
        if 0xB661 <= hw <= 0xB667:
            return n
        if hw >> 11 in (0x1D, 0x1E, 0x1F):  # 32-bit encoding
            if i + 4 > len(code):
                return None
            hw2 = code[i + 2] | code[i + 3] << 8
            if hw & 0xFFF0 == 0xF380 and hw2 & 0xFFFC == 0x8810:
                return n
            if hw & 0xF800 == 0xF000 and hw2 & 0xD000 in (0x9000, 0xD000):
                return None  # B.W / BL
            i += 4
        else:
            if hw & 0xF800 == 0xE000 or hw & 0xFF00 in (0x4700, 0xBD00):
                return None  # B, BX/BLX, POP {..., pc}
            i += 2
    return None
