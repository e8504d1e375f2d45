"""Minimal little-endian ELF32 reader (stdlib only) for the firmware build tools."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

PT_LOAD = 1
SHT_SYMTAB = 2
SHT_NOBITS = 8
_EHDR = struct.Struct("<HHIIIIIHHHHHH")  # fields after e_ident
_PHDR = struct.Struct("<IIIIIIII")
_SHDR = struct.Struct("<IIIIIIIIII")
_SYM = struct.Struct("<IIIBBH")


class ElfError(Exception):
    """The file is not an ELF32 little-endian image, or lacks what the caller asked for."""


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    addr: int
    offset: int
    size: int
    link: int


@dataclass(frozen=True)
class Segment:
    type: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int


class Elf32:
    """Sections, PT_LOAD segments and symbols of one ELF32 file held in memory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data = bytearray(self.path.read_bytes())
        if self.data[:4] != b"\x7fELF" or len(self.data) < 52 or self.data[4] != 1 or self.data[5] != 1:
            raise ElfError(f"{self.path}: not a little-endian ELF32 file")
        fields = _EHDR.unpack_from(self.data, 16)
        self.entry = fields[3]
        phoff, shoff = fields[4], fields[5]
        phentsize, phnum, shentsize, shnum, shstrndx = fields[8:13]
        self.segments = [
            Segment(*_PHDR.unpack_from(self.data, phoff + i * phentsize)[:6]) for i in range(phnum)
        ]
        raw = [_SHDR.unpack_from(self.data, shoff + i * shentsize) for i in range(shnum)]
        names_off = raw[shstrndx][4] if shnum else 0
        self.sections = [Section(self._cstr(names_off + r[0]), r[1], r[3], r[4], r[5], r[6]) for r in raw]
        self.symbols: dict[str, Symbol] = {}
        for sec in self.sections:
            if sec.type != SHT_SYMTAB:
                continue
            strtab = self.sections[sec.link].offset
            for pos in range(sec.offset, sec.offset + sec.size, _SYM.size):
                st_name, st_value, st_size, _info, _other, _shndx = _SYM.unpack_from(self.data, pos)
                if st_name:
                    name = self._cstr(strtab + st_name)
                    self.symbols.setdefault(name, Symbol(name, st_value, st_size))

    def _cstr(self, off: int) -> str:
        end = self.data.index(b"\0", off)
        return self.data[off:end].decode("ascii", "replace")

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def symbol(self, name: str) -> Symbol:
        try:
            return self.symbols[name]
        except KeyError:
            raise ElfError(f"{self.path}: symbol {name!r} not found") from None

    def load_segments(self) -> list[Segment]:
        return [s for s in self.segments if s.type == PT_LOAD and s.filesz > 0]

    def file_offset_of(self, address: int, length: int) -> int:
        """File offset of `length` bytes at load address `address` (inside one PT_LOAD segment)."""
        for s in self.load_segments():
            if s.paddr <= address and address + length <= s.paddr + s.filesz:
                return s.offset + (address - s.paddr)
        raise ElfError(f"{self.path}: no loadable bytes at {address:#010x}+{length}")

    def read(self, address: int, length: int) -> bytes:
        off = self.file_offset_of(address, length)
        return bytes(self.data[off : off + length])

    def image(self, base: int, size: int) -> tuple[bytes, list[tuple[int, int]]]:
        """Bytes [base, base+size) built from PT_LOAD segments (by load address), and the holes."""
        buf = bytearray(b"\xff" * size)
        covered = bytearray(size)
        for s in self.load_segments():
            lo = max(s.paddr, base)
            hi = min(s.paddr + s.filesz, base + size)
            if lo < hi:
                src = s.offset + (lo - s.paddr)
                buf[lo - base : hi - base] = self.data[src : src + (hi - lo)]
                covered[lo - base : hi - base] = b"\x01" * (hi - lo)
        holes: list[tuple[int, int]] = []
        i = 0
        while i < size:
            if covered[i]:
                i += 1
                continue
            j = i
            while j < size and not covered[j]:
                j += 1
            holes.append((base + i, j - i))
            i = j
        return bytes(buf), holes
