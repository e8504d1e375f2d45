#!/usr/bin/env python3
"""Fill image_size and crc32 of the application header (include/app_header.h).

Usage: fill_header.py IMAGE.elf IMAGE.bin

IMAGE.bin is the `objcopy -O binary` output of IMAGE.elf (it starts at the vector table). The
header at offset 0x300 gets image_size = len(IMAGE.bin) and crc32 = zlib CRC-32 of the .bin with
the 4 crc32 bytes taken as zero. The same 8 bytes are patched into the ELF (in the PT_LOAD bytes
that hold the header), so loading the ELF or writing the .bin puts identical bytes in flash. The
ELF is written first, then the .bin; each through a temporary file and a rename. Running the tool
again on its own output changes nothing.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from elf32 import Elf32, ElfError  # noqa: E402

HEADER_OFFSET = 0x300
HEADER_SIZE = 32
MAGIC = 0x48374150
SIZE_FIELD = 8  # offsets inside the header
CRC_FIELD = 12
LOAD_ADDRESS_FIELD = 16


class HeaderError(Exception):
    """The image has no usable header, or the ELF and .bin disagree."""


def image_crc(image: bytes) -> int:
    """zlib CRC-32 over the image with the header's crc32 field read as zero."""
    crc_at = HEADER_OFFSET + CRC_FIELD
    return zlib.crc32(image[:crc_at] + b"\0\0\0\0" + image[crc_at + 4 :]) & 0xFFFFFFFF


def fill(image: bytes) -> bytes:
    """Return the image with image_size and crc32 filled in."""
    if len(image) < HEADER_OFFSET + HEADER_SIZE:
        raise HeaderError(f"image is {len(image)} bytes: too short to hold a header at {HEADER_OFFSET:#x}")
    magic, header_size = struct.unpack_from("<II", image, HEADER_OFFSET)
    if magic != MAGIC:
        raise HeaderError(f"no header magic at {HEADER_OFFSET:#x} (found {magic:#010x}, want {MAGIC:#010x})")
    if header_size != HEADER_SIZE:
        raise HeaderError(f"header_size is {header_size}, want {HEADER_SIZE}")
    out = bytearray(image)
    struct.pack_into("<II", out, HEADER_OFFSET + SIZE_FIELD, len(out), 0)
    struct.pack_into("<I", out, HEADER_OFFSET + CRC_FIELD, image_crc(bytes(out)))
    return bytes(out)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fill_files(elf_path: Path, bin_path: Path) -> tuple[int, int]:
    """Patch both files; returns (image_size, crc32)."""
    elf = Elf32(elf_path)
    image = bin_path.read_bytes()
    base = elf.symbol("__image_start").value
    load_address = struct.unpack_from("<I", image, HEADER_OFFSET + LOAD_ADDRESS_FIELD)[0]
    if load_address != base:
        raise HeaderError(f"header load_address {load_address:#010x} != image start {base:#010x}")
    # The .bin must be the ELF's image (apart from the two fields this tool owns).
    elf_image, holes = elf.image(base, len(image))
    if holes:
        raise HeaderError(f"ELF has holes in the image: {[(hex(a), n) for a, n in holes]}")
    fields = slice(HEADER_OFFSET + SIZE_FIELD, HEADER_OFFSET + CRC_FIELD + 4)
    if elf_image[: fields.start] != image[: fields.start] or elf_image[fields.stop :] != image[fields.stop :]:
        raise HeaderError(f"{bin_path} is not the objcopy image of {elf_path}")
    filled = fill(image)
    off = elf.file_offset_of(base + fields.start, fields.stop - fields.start)
    elf.data[off : off + (fields.stop - fields.start)] = filled[fields]
    _write_atomic(elf_path, bytes(elf.data))
    _write_atomic(bin_path, filled)
    size, crc = struct.unpack_from("<II", filled, HEADER_OFFSET + SIZE_FIELD)
    return size, crc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elf", type=Path)
    parser.add_argument("bin", type=Path)
    args = parser.parse_args(argv)
    try:
        size, crc = fill_files(args.elf, args.bin)
    except (HeaderError, ElfError, OSError) as exc:
        print(f"fill_header: {exc}", file=sys.stderr)
        return 1
    print(f"fill_header: {args.bin.name}: image_size={size} crc32={crc:#010x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
