#!/usr/bin/env python3
"""Check a linked firmware image: vector table, extra vector tables, header, ELF/.bin agreement.

Usage: check_image.py IMAGE.elf [--bin IMAGE.bin] [--base ADDR] [--require-header]
                      [--table SECTION@ADDR ...]

Checks (each failure is reported and makes the exit status 1):
  * g_vector_table is at the image start (__image_start, and --base when given) and is 166 words;
    word 0 is _estack, word 1 is Reset_Handler|1, every other entry is 0 (reserved slots only) or
    an odd (Thumb) address;
  * each --table SECTION@ADDR: that section exists at ADDR and holds a 166-word table of the same
    kind (word 0 _estack, word 1 Reset_Handler|1);
  * with --bin: the .bin is exactly the ELF's loadable bytes from the image start, with no holes,
    and its length is __image_size;
  * the header at +0x300 (required with --require-header, else checked when its magic is there):
    header_size 32, image_size = .bin length, load_address = image start, crc32 correct.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from elf32 import Elf32, ElfError  # noqa: E402

VECTOR_WORDS = 166
RESERVED_SLOTS = {7, 8, 9, 10, 13}
HEADER_OFFSET = 0x300
MAGIC = 0x48374150


def check_table(elf: Elf32, addr: int, label: str, errors: list[str]) -> None:
    try:
        words = struct.unpack(f"<{VECTOR_WORDS}I", elf.read(addr, VECTOR_WORDS * 4))
    except ElfError as exc:
        errors.append(f"{label}: {exc}")
        return
    estack = elf.symbol("_estack").value
    reset = elf.symbol("Reset_Handler").value | 1
    if words[0] != estack:
        errors.append(f"{label}: word 0 {words[0]:#010x} != _estack {estack:#010x}")
    if words[1] != reset:
        errors.append(f"{label}: word 1 {words[1]:#010x} != Reset_Handler|1 {reset:#010x}")
    for i, w in enumerate(words[2:], start=2):
        if w == 0 and i in RESERVED_SLOTS:
            continue
        if w & 1 == 0:
            errors.append(f"{label}: vector {i} = {w:#010x} is not a Thumb address")


def check_header(image: bytes, base: int, errors: list[str]) -> str:
    magic, hsize, isize, crc, load, version = struct.unpack_from("<6I", image, HEADER_OFFSET)
    if magic != MAGIC:
        errors.append(f"header: magic {magic:#010x} != {MAGIC:#010x}")
        return "no header"
    if hsize != 32:
        errors.append(f"header: header_size {hsize} != 32")
    if isize != len(image):
        errors.append(f"header: image_size {isize} != image length {len(image)}")
    if load != base:
        errors.append(f"header: load_address {load:#010x} != {base:#010x}")
    crc_at = HEADER_OFFSET + 12
    want = zlib.crc32(image[:crc_at] + b"\0\0\0\0" + image[crc_at + 4 :]) & 0xFFFFFFFF
    if crc != want:
        errors.append(f"header: crc32 {crc:#010x} != computed {want:#010x}")
    return f"header ok (size {isize}, crc {crc:#010x}, version {version})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elf", type=Path)
    parser.add_argument("--bin", type=Path)
    parser.add_argument("--base", type=lambda s: int(s, 0))
    parser.add_argument("--require-header", action="store_true")
    parser.add_argument("--table", action="append", default=[], metavar="SECTION@ADDR")
    args = parser.parse_args(argv)
    errors: list[str] = []
    try:
        elf = Elf32(args.elf)
        start = elf.symbol("__image_start").value
        table = elf.symbol("g_vector_table")
        if args.base is not None and start != args.base:
            errors.append(f"image start {start:#010x} != expected {args.base:#010x}")
        if table.value != start:
            errors.append(f"g_vector_table at {table.value:#010x}, image starts at {start:#010x}")
        if table.size != VECTOR_WORDS * 4:
            errors.append(f"g_vector_table is {table.size} bytes, want {VECTOR_WORDS * 4}")
        check_table(elf, table.value, "vector table", errors)
        for spec in args.table:
            name, _, addr_text = spec.partition("@")
            addr = int(addr_text, 0)
            sec = elf.section(name)
            if sec is None or sec.addr != addr or sec.size != VECTOR_WORDS * 4:
                found = "missing" if sec is None else f"at {sec.addr:#010x}, {sec.size} bytes"
                errors.append(f"{name}: want {VECTOR_WORDS * 4} bytes at {addr:#010x}, {found}")
                continue
            check_table(elf, addr, name, errors)
        summary = "no .bin checked"
        if args.bin is not None:
            image = args.bin.read_bytes()
            size = elf.symbol("__image_size").value
            if len(image) != size:
                errors.append(f"{args.bin.name}: {len(image)} bytes, __image_size is {size}")
            elf_image, holes = elf.image(start, len(image))
            if holes:
                errors.append(f"ELF image has holes: {[(hex(a), n) for a, n in holes]}")
            if elf_image != image:
                errors.append(f"{args.bin.name} differs from the ELF's loadable bytes")
            magic = struct.unpack_from("<I", image, HEADER_OFFSET)[0] if len(image) >= 0x320 else 0
            if args.require_header or magic == MAGIC:
                summary = check_header(image, start, errors)
            else:
                summary = "no header"
    except (ElfError, OSError) as exc:
        errors.append(str(exc))
    for e in errors:
        print(f"check_image: {args.elf.name}: {e}", file=sys.stderr)
    if errors:
        return 1
    extra = f", tables {', '.join(args.table)}" if args.table else ""
    print(f"check_image: {args.elf.name}: 166 vectors at {start:#010x}{extra}; {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
