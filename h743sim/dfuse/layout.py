"""DfuSe memory-layout strings (the alternate setting's iInterface string, FACTS.md §F.8).

``@Internal Flash  /0x08000000/01*128Ka,15*128Kg`` names a memory and lists its segments: count of
sectors, sector size with a multiplier (B, K = 1024, M = 1024², space = bytes) and a type letter whose
low three bits say readable (bit 0), erasable (bit 1) and writable (bit 2). Another ``/0xADDR/`` starts
a new list of segments at another address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from h743sim.errors import UserError

_MULTIPLIERS = {"B": 1, " ": 1, "K": 1024, "M": 1024 * 1024}
_ADDRESS = re.compile(r"0[xX]([0-9a-fA-F]{1,8})")
# pydfu's grammar: count "*" size, one multiplier char (not a digit: the size takes them all), one type char.
_SEGMENT = re.compile(r"(\d+)\*(\d+)(\D)(.)")


class LayoutError(UserError, ValueError):
    """A layout string that cannot be parsed, or an address range the layout does not allow."""


@dataclass(frozen=True)
class Segment:
    """``sector_count`` sectors of ``sector_size`` bytes from ``address``, with one access type."""

    address: int
    sector_size: int
    sector_count: int
    readable: bool
    erasable: bool
    writable: bool

    @property
    def size(self) -> int:
        return self.sector_size * self.sector_count

    @property
    def end(self) -> int:
        """First address after the segment."""
        return self.address + self.size

    def contains(self, address: int) -> bool:
        return self.address <= address < self.end

    def sector_start(self, address: int) -> int:
        """Start of the sector holding ``address`` (which must be inside the segment)."""
        return self.address + (address - self.address) // self.sector_size * self.sector_size

    @property
    def access(self) -> str:
        """'r', 'e', 'w' letters for the allowed operations (for messages and listings)."""
        return "".join(
            c for c, ok in (("r", self.readable), ("e", self.erasable), ("w", self.writable)) if ok
        )

    def __str__(self) -> str:
        return (
            f"0x{self.address:08X}-0x{self.end - 1:08X} ({self.sector_count} x {_size_text(self.sector_size)}, "
            f"{self.access or 'no access'})"
        )


@dataclass(frozen=True)
class MemoryLayout:
    """One alternate setting's memory as its layout string describes it."""

    name: str
    segments: tuple[Segment, ...]
    text: str = ""

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    @property
    def start(self) -> int:
        return min(s.address for s in self.segments)

    @property
    def end(self) -> int:
        return max(s.end for s in self.segments)

    def segment_at(self, address: int) -> Segment | None:
        for seg in self.segments:
            if seg.contains(address):
                return seg
        return None

    def contains(self, address: int, length: int = 1) -> bool:
        """True when every byte of the range lies in some segment (access not checked)."""
        try:
            self._cover(address, length)
        except LayoutError:
            return False
        return True

    def check(
        self, address: int, length: int, *, read: bool = False, write: bool = False, erase: bool = False
    ) -> None:
        """Raise :class:`LayoutError` unless every byte of the range allows the requested accesses."""
        for seg in self._cover(address, length):
            for wanted, ok, verb in (
                (read, seg.readable, "readable"),
                (write, seg.writable, "writable"),
                (erase, seg.erasable, "erasable"),
            ):
                if wanted and not ok:
                    raise LayoutError(
                        f"0x{address:08X}..0x{address + length - 1:08X} touches segment {seg} of "
                        f"'{self.name}', which is not {verb}"
                    )

    def sectors(self, address: int, length: int) -> list[tuple[int, int]]:
        """``(start, size)`` of every sector the range touches, in address order."""
        out: list[tuple[int, int]] = []
        end = address + length
        for seg in self._cover(address, length):
            pos = seg.sector_start(max(address, seg.address))
            while pos < min(end, seg.end):
                out.append((pos, seg.sector_size))
                pos += seg.sector_size
        return out

    def _cover(self, address: int, length: int) -> list[Segment]:
        """The segments covering [address, address+length) in order; error on any hole."""
        if length <= 0:
            raise LayoutError(f"empty range at 0x{address:08X} (length {length})")
        out: list[Segment] = []
        pos, end = address, address + length
        while pos < end:
            seg = self.segment_at(pos)
            if seg is None:
                raise LayoutError(
                    f"address 0x{pos:08X} (range 0x{address:08X}..0x{end - 1:08X}) is outside the memory "
                    f"'{self.name}' ({self.describe_extent()})"
                )
            out.append(seg)
            pos = seg.end
        return out

    def describe_extent(self) -> str:
        return ", ".join(f"0x{s.address:08X}-0x{s.end - 1:08X}" for s in self.segments)

    def __str__(self) -> str:
        return f"{self.name}: " + ", ".join(str(s) for s in self.segments)


def _size_text(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n % 1024 == 0:
        return f"{n // 1024} KB"
    return f"{n} B"


def is_layout_string(text: str) -> bool:
    return text.startswith("@")


def parse_layout(text: str) -> MemoryLayout:
    """Parse one DfuSe layout string; :class:`LayoutError` names the part that is wrong."""
    raw = text
    text = text.rstrip("\x00").rstrip()
    if not text.startswith("@"):
        raise LayoutError(f"layout string {raw!r} does not start with '@' (not a DfuSe memory description)")
    parts = text[1:].split("/")
    if len(parts) < 3:
        raise LayoutError(f"layout string {raw!r} needs '@name/0xADDRESS/segments'")
    if len(parts) % 2 == 0:
        raise LayoutError(f"layout string {raw!r}: start address {parts[-1]!r} has no segment list after it")
    name = parts[0].strip()
    segments: list[Segment] = []
    for i in range(1, len(parts), 2):
        addr_text, seg_list = parts[i].strip(), parts[i + 1]
        m = _ADDRESS.fullmatch(addr_text)
        if m is None:
            raise LayoutError(
                f"layout string {raw!r}: bad start address {addr_text!r} (expected 0x followed by 1-8 hex digits)"
            )
        address = int(m.group(1), 16)
        for item in seg_list.split(","):
            seg = _parse_segment(item, address, raw)
            address = seg.end
            segments.append(seg)
    _check_no_overlap(segments, raw)
    return MemoryLayout(name=name, segments=tuple(segments), text=text)


def _parse_segment(item: str, address: int, raw: str) -> Segment:
    # A trailing space is a legal multiplier (bytes), so only leading blanks are dropped.
    body = item.lstrip()
    m = _SEGMENT.fullmatch(body)
    if m is None:
        raise LayoutError(
            f"layout string {raw!r}: segment {item!r} is not 'COUNT*SIZE' followed by a multiplier "
            "(B, K, M or space) and a type letter (a-g)"
        )
    count, size, mult, kind = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
    if mult.upper() not in _MULTIPLIERS:
        raise LayoutError(f"layout string {raw!r}: segment {item!r} has unknown size multiplier {mult!r}")
    if kind.lower() not in "abcdefg":
        raise LayoutError(
            f"layout string {raw!r}: segment {item!r} has unknown type letter {kind!r} (a..g: bit0 read, "
            "bit1 erase, bit2 write)"
        )
    if count == 0 or size == 0:
        raise LayoutError(f"layout string {raw!r}: segment {item!r} has no sectors or zero-sized sectors")
    bits = ord(kind) & 7
    seg = Segment(
        address=address,
        sector_size=size * _MULTIPLIERS[mult.upper()],
        sector_count=count,
        readable=bool(bits & 1),
        erasable=bool(bits & 2),
        writable=bool(bits & 4),
    )
    if seg.end > 1 << 32:
        raise LayoutError(f"layout string {raw!r}: segment {item!r} at 0x{address:08X} runs past 4 GB")
    return seg


def _check_no_overlap(segments: list[Segment], raw: str) -> None:
    ordered = sorted(segments, key=lambda s: s.address)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.address < a.end:
            raise LayoutError(f"layout string {raw!r}: segments {a} and {b} overlap")
