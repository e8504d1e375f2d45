"""What to download: regions of bytes from a .dfu file, a raw binary at an address, or an ELF file.

Regions are merged when they touch, then assigned to alternate settings by the layouts the device
announces; every check (inside a memory, writable) is made here, before the device is touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from h743sim.dfuse.dfufile import (
    BCD_DFUSE,
    SUFFIX_LENGTH,
    SUFFIX_SIGNATURE,
    DfuFile,
    DfuFileError,
    RawDfuFile,
    parse_dfu_bytes,
    split_suffix,
)
from h743sim.dfuse.layout import LayoutError, MemoryLayout
from h743sim.errors import UserError

ELF_MAGIC = b"\x7fELF"
_PT_LOAD = "PT_LOAD"


class ImageError(UserError, ValueError):
    """An image that cannot be loaded or placed in the device's memories."""


@dataclass(frozen=True)
class Region:
    """Bytes to place at ``address``; ``alt`` is set when the file names the alternate setting (.dfu)."""

    address: int
    data: bytes
    alt: int | None = None

    @property
    def end(self) -> int:
        return self.address + len(self.data)

    def __str__(self) -> str:
        where = f" (alt {self.alt})" if self.alt is not None else ""
        return f"0x{self.address:08X}..0x{self.end - 1:08X} ({len(self.data)} bytes){where}"


@dataclass(frozen=True)
class DownloadPart:
    """A region assigned to the alternate setting whose memory holds it."""

    alt: int
    address: int
    data: bytes
    memory: str = ""

    @property
    def end(self) -> int:
        return self.address + len(self.data)


def merge_regions(regions: Iterable[Region], *, fill_gaps: int = 0, fill_byte: int = 0xFF) -> list[Region]:
    """Sort regions and merge those that touch (or are at most ``fill_gaps`` bytes apart, padding the
    gap with ``fill_byte``, the erased value of NOR flash). Overlapping regions are an error."""
    ordered = sorted(
        (r for r in regions if r.data), key=lambda r: (r.alt if r.alt is not None else -1, r.address)
    )
    out: list[Region] = []
    for r in ordered:
        if out and out[-1].alt == r.alt:
            last = out[-1]
            if r.address < last.end:
                raise ImageError(f"regions {last} and {r} overlap")
            gap = r.address - last.end
            if gap <= fill_gaps:
                out[-1] = Region(last.address, last.data + bytes([fill_byte]) * gap + r.data, last.alt)
                continue
        out.append(r)
    return out


def load_bin(path: str | os.PathLike[str], address: int) -> list[Region]:
    """A raw binary (a DFU suffix, if any, is checked and removed) placed at ``address``."""
    data = _read(path)
    if not 0 <= address <= 0xFFFFFFFF:
        raise ImageError(f"address {address:#x} does not fit in 32 bits")
    payload = _strip_plain_suffix(data, path)
    if not payload:
        raise ImageError(f"{path}: the binary is empty")
    if address + len(payload) > 1 << 32:
        raise ImageError(f"{path}: {len(payload)} bytes at 0x{address:08X} run past the 4 GB address space")
    return [Region(address, payload)]


def load_dfu(path: str | os.PathLike[str]) -> list[Region]:
    """Every element of a DfuSe file, tagged with its target's alternate setting."""
    try:
        dfu = DfuFile.from_bytes(_read(path))
    except DfuFileError as exc:
        raise ImageError(f"{path}: {exc}") from exc
    regions = [Region(e.address, e.data, alt) for alt, e in dfu.elements if e.data]
    if not regions:
        raise ImageError(f"{path}: the DfuSe file holds no data")
    return merge_regions(regions)


def load_elf(path: str | os.PathLike[str]) -> list[Region]:
    """The file contents of an ELF's PT_LOAD segments, placed at their physical (load) addresses.

    When the file has section headers, each segment is trimmed to the allocated sections it holds,
    as ``objcopy -O binary`` does: a segment that also maps the ELF and program headers (linker
    scripts with FILEHDR/PHDRS, or a text segment starting one page low) must not write them.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    regions: list[Region] = []
    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            sections = [
                s
                for s in elf.iter_sections()
                if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_type"] != "SHT_NOBITS" and s["sh_size"] > 0
            ]
            for seg in elf.iter_segments():
                if seg["p_type"] != _PT_LOAD or seg["p_filesz"] == 0:
                    continue
                data = seg.data()[: seg["p_filesz"]]
                if len(data) != seg["p_filesz"]:
                    raise ImageError(
                        f"{path}: PT_LOAD segment at 0x{seg['p_paddr']:08X} is truncated in the file"
                    )
                start, end = 0, len(data)
                if sections:
                    inside = [s for s in sections if seg.section_in_segment(s)]
                    if not inside:
                        continue  # only headers or padding
                    start = min(s["sh_offset"] for s in inside) - seg["p_offset"]
                    end = max(s["sh_offset"] + s["sh_size"] for s in inside) - seg["p_offset"]
                regions.append(Region(seg["p_paddr"] + start, data[start:end]))
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ELFError as exc:
        raise ImageError(f"{path}: not a readable ELF file: {exc}") from exc
    if not regions:
        raise ImageError(f"{path}: the ELF file has no PT_LOAD segment with file contents")
    for r in regions:
        if r.end > 1 << 32:
            raise ImageError(f"{path}: segment {r} is beyond the 32-bit address space")
    return merge_regions(regions)


def load_image(path: str | os.PathLike[str], address: int | None = None) -> list[Region]:
    """Load by content: ELF (magic), DfuSe (prefix + suffix), else a raw binary that needs ``address``."""
    data = _read(path)
    if not data:
        raise ImageError(f"{path}: the file is empty")
    if data.startswith(ELF_MAGIC):
        _no_address(address, path, "an ELF file")
        return load_elf(path)
    if data.startswith(b"DfuSe") or (address is None and _says_dfuse(data)):
        # a DfuSe suffix on a file whose prefix is damaged: let the DfuSe parser say what is wrong
        # (rather than "give the address", which would treat a broken .dfu file as a raw binary)
        _no_address(address, path, "a DfuSe file")
        return load_dfu(path)
    if address is None:
        raise ImageError(
            f"{path} is a raw binary: give the address to load it at (e.g. --address 0x90000000)"
        )
    return load_bin(path, address)


def plan_download(
    regions: Sequence[Region], layouts: Mapping[int, MemoryLayout | None], *, alt: int | None = None
) -> list[DownloadPart]:
    """Assign each region to an alternate setting and check it fits writable memory there.

    ``alt`` forces one alternate setting for regions that do not name theirs. Raises
    :class:`ImageError` (outside every memory) or :class:`LayoutError` (read-only part).
    """
    if alt is not None and alt not in layouts:
        raise ImageError(f"alternate setting {alt} does not exist (the device has {_alt_list(layouts)})")
    parts: list[DownloadPart] = []
    for region in merge_regions(regions):
        chosen = region.alt if region.alt is not None else alt
        if chosen is not None:
            layout = layouts.get(chosen)
            if chosen not in layouts:
                raise ImageError(f"region {region} names alternate setting {chosen}, which the device lacks")
            if layout is None:
                raise ImageError(
                    f"alternate setting {chosen} has no DfuSe memory layout; cannot place {region}"
                )
            if not layout.contains(region.address, len(region.data)):
                raise ImageError(
                    f"region {region} is outside the memory of alt {chosen} '{layout.name}' ({layout.describe_extent()})"
                )
        else:
            chosen = _alt_holding(region, layouts)
            layout = layouts[chosen]
            assert layout is not None
        try:
            layout.check(region.address, len(region.data), write=True)
        except LayoutError as exc:
            raise LayoutError(f"cannot download {region}: {exc}") from exc
        parts.append(DownloadPart(chosen, region.address, region.data, layout.name))
    return parts


def _alt_holding(region: Region, layouts: Mapping[int, MemoryLayout | None]) -> int:
    for alt in sorted(layouts):
        layout = layouts[alt]
        if layout is not None and layout.contains(region.address, len(region.data)):
            return alt
    memories = "; ".join(
        f"alt {a} '{lay.name}' {lay.describe_extent()}"
        for a, lay in sorted(layouts.items())
        if lay is not None
    )
    raise ImageError(f"region {region} is not inside any memory of the device ({memories or 'no layouts'})")


def _alt_list(layouts: Mapping[int, MemoryLayout | None]) -> str:
    return "alt " + ", ".join(str(a) for a in sorted(layouts)) if layouts else "no alternate settings"


def _says_dfuse(data: bytes) -> bool:
    """The last 16 bytes look like a DFU suffix with bcdDFU 0x011A (DfuSe); its CRC is not checked here."""
    if len(data) < SUFFIX_LENGTH:
        return False
    tail = data[-SUFFIX_LENGTH:]
    return tail[8:11] == SUFFIX_SIGNATURE and int.from_bytes(tail[6:8], "little") == BCD_DFUSE


def _strip_plain_suffix(data: bytes, path: str | os.PathLike[str]) -> bytes:
    """dfu-util removes a valid DFU suffix before a raw download and refuses a DfuSe one there."""
    try:
        body, suffix = split_suffix(data)
    except DfuFileError:
        return data  # no (valid) suffix: the whole file is the image
    if body.startswith(b"DfuSe") or suffix.bcd_dfu == BCD_DFUSE:
        raise ImageError(f"{path} has a DfuSe suffix (bcdDFU 0x011A); it is not a raw binary")
    parsed = parse_dfu_bytes(data)
    assert isinstance(parsed, RawDfuFile)
    if parsed.prefix is not None:
        raise ImageError(f"{path} carries a {parsed.prefix.kind} DFU prefix, which this device does not use")
    return parsed.payload


def _no_address(address: int | None, path: str | os.PathLike[str], what: str) -> None:
    if address is not None:
        raise ImageError(
            f"{path} is {what}, which carries its own addresses; the address option is for raw binaries"
        )


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from exc
