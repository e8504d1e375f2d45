"""Images to download: raw binaries, .dfu files, ELF files; merging and placement by layout."""

import shutil
import struct
import subprocess

import pytest

from h743sim.dfuse.dfufile import DfuElement, DfuFile, DfuSuffix, DfuTarget, RawDfuFile
from h743sim.dfuse.images import (
    DownloadPart,
    ImageError,
    Region,
    load_bin,
    load_dfu,
    load_elf,
    load_image,
    merge_regions,
    plan_download,
)
from h743sim.dfuse.layout import LayoutError, parse_layout

LAYOUTS = {
    0: parse_layout("@Internal Flash  /0x08000000/01*128Ka,15*128Kg"),
    1: parse_layout("@QSPI Flash /0x90000000/2048*004Kg"),
}

PT_LOAD = 1


def tiny_elf(segments: list[tuple[int, int, bytes, int]], entry: int = 0x90000009) -> bytes:
    """An ELF32 little-endian ARM executable with only program headers.

    ``segments``: (p_vaddr, p_paddr, file bytes, p_memsz) for each PT_LOAD.
    """
    header_size, ph_size = 52, 32
    offset = header_size + ph_size * len(segments)
    phdrs, blobs = b"", b""
    for vaddr, paddr, data, memsz in segments:
        phdrs += struct.pack("<IIIIIIII", PT_LOAD, offset + len(blobs), vaddr, paddr, len(data), memsz, 5, 4)
        blobs += data
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    ehdr = ident + struct.pack(
        "<HHIIIIIHHHHHH",
        2,
        40,
        1,
        entry,
        header_size,
        0,
        0x05000000,
        header_size,
        ph_size,
        len(segments),
        40,
        0,
        0,
    )
    return ehdr + phdrs + blobs


def test_hand_built_elf_uses_physical_addresses_and_skips_bss(tmp_path):
    text = bytes(range(64))
    data = b"\x78\x56\x34\x12"
    path = tmp_path / "app.elf"
    path.write_bytes(
        tiny_elf(
            [
                (0x90000000, 0x90000000, text, len(text)),
                (0x24000000, 0x90000040, data, len(data)),  # .data: runs from RAM, loaded after .text
                (0x24000004, 0x24000004, b"", 0x100),  # .bss: nothing to load
            ]
        )
    )
    assert load_elf(path) == [Region(0x90000000, text + data)]
    assert load_image(path) == [Region(0x90000000, text + data)]


def test_elf_with_separate_segments_gives_separate_regions(tmp_path):
    path = tmp_path / "two.elf"
    path.write_bytes(
        tiny_elf([(0x90000000, 0x90000000, b"\x01" * 8, 8), (0x90010000, 0x90010000, b"\x02" * 4, 4)])
    )
    assert load_elf(path) == [Region(0x90000000, b"\x01" * 8), Region(0x90010000, b"\x02" * 4)]


def test_elf_errors_are_clear(tmp_path):
    empty = tmp_path / "bss_only.elf"
    empty.write_bytes(tiny_elf([(0x24000000, 0x24000000, b"", 64)]))
    with pytest.raises(ImageError, match="no PT_LOAD segment with file contents"):
        load_elf(empty)
    broken = tmp_path / "broken.elf"
    broken.write_bytes(b"\x7fELF\x01\x01\x01" + b"\x00" * 5)
    with pytest.raises(ImageError, match="not a readable ELF file"):
        load_elf(broken)


LINKER_SCRIPT = """
MEMORY { QSPI (rx) : ORIGIN = 0x90000000, LENGTH = 8M
         RAM (rwx) : ORIGIN = 0x24000000, LENGTH = 512K }
ENTRY(Reset_Handler)
SECTIONS {
  .text : { KEEP(*(.isr_vector)) *(.text*) *(.rodata*) } > QSPI
  .data : { *(.data*) } > RAM AT > QSPI
  .bss : { *(.bss*) *(COMMON) } > RAM
}
"""

APP_C = """
extern void Reset_Handler(void);
__attribute__((section(".isr_vector"), used))
const unsigned int vectors[2] = {0x24080000u, (unsigned int)&Reset_Handler};
volatile unsigned int counter = 0x12345678u;
volatile unsigned int zeroed;
void Reset_Handler(void) { for (;;) { counter++; zeroed++; } }
"""


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_elf_built_by_the_arm_toolchain_matches_objcopy(tmp_path):
    (tmp_path / "app.c").write_text(APP_C)
    (tmp_path / "link.ld").write_text(LINKER_SCRIPT)
    elf, binary = tmp_path / "app.elf", tmp_path / "app.bin"
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-Os", "-nostdlib", "-Wl,--no-warn-rwx-segments"]
        + ["-T", str(tmp_path / "link.ld"), "-o", str(elf), str(tmp_path / "app.c")],
        check=True,
        capture_output=True,
    )
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binary)], check=True)
    regions = load_image(elf)
    assert regions[0].address == 0x90000000
    # objcopy -O binary lays the load image out flat from the lowest load address, zero-filling gaps.
    flat = bytearray()
    for r in regions:
        flat += b"\x00" * (r.address - 0x90000000 - len(flat)) + r.data
    assert bytes(flat) == binary.read_bytes()
    assert struct.pack("<I", 0x12345678) in flat  # .data's initial value travels with the image
    assert all(0x90000000 <= r.address and r.end <= 0x90800000 for r in regions)
    assert flat[:4] == struct.pack("<I", 0x24080000)


LINKER_SCRIPT_WITH_HEADERS = """
ENTRY(Reset_Handler)
PHDRS { text PT_LOAD FILEHDR PHDRS; data PT_LOAD; }
SECTIONS {
  .text 0x90000000 + SIZEOF_HEADERS : { KEEP(*(.isr_vector)) *(.text*) *(.rodata*) } :text
  .data 0x24000000 : AT(ADDR(.text) + SIZEOF(.text)) { *(.data*) } :data
}
"""


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_elf_headers_inside_a_load_segment_are_not_downloaded(tmp_path):
    (tmp_path / "app.c").write_text(APP_C)
    (tmp_path / "link.ld").write_text(LINKER_SCRIPT_WITH_HEADERS)
    elf, binary = tmp_path / "app.elf", tmp_path / "app.bin"
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-Os", "-nostdlib", "-Wl,--no-warn-rwx-segments"]
        + ["-T", str(tmp_path / "link.ld"), "-o", str(elf), str(tmp_path / "app.c")],
        check=True,
        capture_output=True,
    )
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binary)], check=True)
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as fh:
        first = next(ELFFile(fh).iter_segments())
        assert first["p_offset"] == 0 and first["p_paddr"] == 0x90000000  # the segment maps the headers
        text_at = ELFFile(fh).get_section_by_name(".text")["sh_addr"]
    (region,) = load_elf(elf)
    assert region.address == text_at > 0x90000000
    assert region.data == binary.read_bytes()
    assert region.data[:4] == struct.pack("<I", 0x24080000) and not region.data.startswith(b"\x7fELF")


def test_raw_binary_at_an_address(tmp_path):
    path = tmp_path / "app.bin"
    path.write_bytes(b"\x00\x00\x08\x24\x09\x00\x00\x90")
    assert load_bin(path, 0x90000000) == [Region(0x90000000, b"\x00\x00\x08\x24\x09\x00\x00\x90")]
    assert load_image(path, 0x90000000) == load_bin(path, 0x90000000)


def test_raw_binary_with_a_plain_suffix_loses_the_suffix(tmp_path):
    path = tmp_path / "app.bin"
    path.write_bytes(RawDfuFile(b"\x01\x02\x03\x04", DfuSuffix(bcd_dfu=0x0100)).to_bytes())
    assert load_bin(path, 0x08020000) == [Region(0x08020000, b"\x01\x02\x03\x04")]


def test_raw_binary_errors(tmp_path):
    path = tmp_path / "app.bin"
    path.write_bytes(b"\x01\x02")
    with pytest.raises(ImageError, match="is a raw binary: give the address"):
        load_image(path)
    with pytest.raises(ImageError, match="run past the 4 GB"):
        load_bin(path, 0xFFFFFFFF)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ImageError, match="the binary is empty"):
        load_bin(tmp_path / "empty.bin", 0x90000000)
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "missing.bin", 0x90000000)
    dfuse_suffixed = tmp_path / "odd.bin"
    dfuse_suffixed.write_bytes(RawDfuFile(b"\x01\x02", DfuSuffix(bcd_dfu=0x011A)).to_bytes())
    with pytest.raises(ImageError, match="has a DfuSe suffix"):
        load_bin(dfuse_suffixed, 0x90000000)


def test_dfu_file_regions_keep_their_alternate_setting(tmp_path):
    path = tmp_path / "both.dfu"
    DfuFile(
        [
            DfuTarget(
                0, "Internal", [DfuElement(0x08020000, b"\xaa" * 8), DfuElement(0x08020008, b"\xbb" * 8)]
            ),
            DfuTarget(1, "QSPI", [DfuElement(0x90000000, b"\xcc" * 4)]),
        ]
    ).write(path)
    assert load_dfu(path) == [
        Region(0x08020000, b"\xaa" * 8 + b"\xbb" * 8, 0),
        Region(0x90000000, b"\xcc" * 4, 1),
    ]
    with pytest.raises(ImageError, match="carries its own addresses"):
        load_image(path, 0x90000000)


def test_corrupt_dfu_file_is_an_image_error(tmp_path):
    path = tmp_path / "bad.dfu"
    data = bytearray(DfuFile([DfuTarget(0, "", [DfuElement(0x08020000, b"\x01")])]).to_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="bad.dfu: DFU suffix CRC mismatch"):
        load_image(path)


def test_merge_touching_regions_refuse_overlaps_fill_small_gaps():
    a, b, c = Region(0x100, b"\x01\x02"), Region(0x102, b"\x03"), Region(0x105, b"\x04")
    assert merge_regions([c, b, a]) == [Region(0x100, b"\x01\x02\x03"), c]
    assert merge_regions([a, b, c], fill_gaps=2) == [Region(0x100, b"\x01\x02\x03\xff\xff\x04")]
    with pytest.raises(ImageError, match="overlap"):
        merge_regions([a, Region(0x101, b"\x09")])
    # the same addresses in two alternate settings are not merged or compared
    assert len(merge_regions([Region(0x0, b"\x01", 0), Region(0x1, b"\x02", 1)])) == 2


def test_plan_places_regions_by_layout():
    parts = plan_download([Region(0x90001000, b"q" * 10), Region(0x08020000, b"i" * 10)], LAYOUTS)
    assert parts == [
        DownloadPart(0, 0x08020000, b"i" * 10, "Internal Flash"),
        DownloadPart(1, 0x90001000, b"q" * 10, "QSPI Flash"),
    ]


def test_plan_refuses_the_read_only_bootloader_sector_and_unknown_addresses():
    with pytest.raises(LayoutError, match=r"cannot download 0x0801FFF0.*not writable"):
        plan_download([Region(0x0801FFF0, b"x" * 32)], LAYOUTS)
    with pytest.raises(
        ImageError, match=r"not inside any memory of the device .*alt 1 'QSPI Flash' 0x90000000-0x907FFFFF"
    ):
        plan_download([Region(0xA0000000, b"x")], LAYOUTS)
    with pytest.raises(ImageError, match="outside the memory of alt 0"):
        plan_download([Region(0x90000000, b"x")], LAYOUTS, alt=0)
    with pytest.raises(ImageError, match="names alternate setting 5"):
        plan_download([Region(0x90000000, b"x", 5)], LAYOUTS)
    with pytest.raises(ImageError, match="alternate setting 7 does not exist"):
        plan_download([Region(0x90000000, b"x")], LAYOUTS, alt=7)
    with pytest.raises(ImageError, match="not inside any memory"):
        plan_download([Region(0x907FFFF0, b"x" * 32)], LAYOUTS)  # runs past the end of QSPI
