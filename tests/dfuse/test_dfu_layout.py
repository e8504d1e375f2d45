"""DfuSe memory-layout strings (FACTS.md §F.8): the documented examples and malformed strings."""

import pytest

from h743sim.dfuse.layout import LayoutError, parse_layout

KB = 1024


def test_one_region_of_the_whole_h743_flash():
    lay = parse_layout("@Internal Flash  /0x08000000/16*128Kg")
    assert lay.name == "Internal Flash"
    (seg,) = lay.segments
    assert (seg.address, seg.sector_size, seg.sector_count) == (0x08000000, 128 * KB, 16)
    assert (seg.readable, seg.erasable, seg.writable) == (True, True, True)
    assert seg.end == 0x08200000 and lay.end == 0x08200000


def test_protected_bootloader_sector_then_writable_sectors():
    lay = parse_layout("@Internal Flash  /0x08000000/01*128Ka,15*128Kg")
    boot, user = lay.segments
    assert (boot.address, boot.sector_count, boot.readable, boot.erasable, boot.writable) == (
        0x08000000,
        1,
        True,
        False,
        False,
    )
    assert (user.address, user.sector_count, user.access) == (0x08020000, 15, "rew")
    assert lay.segment_at(0x0801FFFF) is boot and lay.segment_at(0x08020000) is user
    assert lay.segment_at(0x08200000) is None


@pytest.mark.parametrize(
    "text, count, size",
    [
        ("@QSPI Flash /0x90000000/128*064Kg", 128, 64 * KB),
        ("@QSPI Flash /0x90000000/2048*004Kg", 2048, 4 * KB),
    ],
)
def test_qspi_flash_in_64k_or_4k_units_covers_8_mb(text, count, size):
    (seg,) = parse_layout(text).segments
    assert (seg.address, seg.sector_count, seg.sector_size, seg.end) == (0x90000000, count, size, 0x90800000)


def test_mixed_sector_sizes_follow_each_other():
    lay = parse_layout("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg")
    assert [(s.address, s.sector_size, s.sector_count) for s in lay.segments] == [
        (0x08000000, 16 * KB, 4),
        (0x08010000, 64 * KB, 1),
        (0x08020000, 128 * KB, 7),
    ]


def test_several_address_blocks_and_the_space_multiplier_means_bytes():
    lay = parse_layout("@Device Feature/0xFFFF0000/01*004 e/0x1FFF7800/01*512 e")
    a, b = lay.segments
    assert (a.address, a.sector_size, a.readable, a.erasable, a.writable) == (
        0xFFFF0000,
        4,
        True,
        False,
        True,
    )
    assert (b.address, b.sector_size) == (0x1FFF7800, 512)


def test_megabyte_and_byte_multipliers():
    assert parse_layout("@X/0x00000000/02*001Mg").segments[0].sector_size == 1024 * 1024
    assert parse_layout("@X/0x00000000/02*100Bg").segments[0].sector_size == 100


@pytest.mark.parametrize(
    "letter, r, e, w",
    [
        ("a", 1, 0, 0),
        ("b", 0, 1, 0),
        ("c", 1, 1, 0),
        ("d", 0, 0, 1),
        ("e", 1, 0, 1),
        ("f", 0, 1, 1),
        ("g", 1, 1, 1),
    ],
)
def test_type_letters_are_the_low_three_bits(letter, r, e, w):
    seg = parse_layout(f"@M/0x20000000/01*001K{letter}").segments[0]
    assert (seg.readable, seg.erasable, seg.writable) == (bool(r), bool(e), bool(w))


def test_trailing_nul_and_blanks_from_a_string_descriptor_are_ignored():
    assert parse_layout("@QSPI /0x90000000/2048*004Kg \x00\x00").segments[0].sector_count == 2048


@pytest.mark.parametrize(
    "text, message",
    [
        ("Internal Flash/0x08000000/16*128Kg", "does not start with '@'"),
        ("@Internal Flash", "needs '@name/0xADDRESS/segments'"),
        ("@Flash/0x08000000/16*128Kg/0x09000000", "has no segment list after it"),
        ("@Flash/08000000/16*128Kg", "bad start address '08000000'"),
        ("@Flash/0x123456789/16*128Kg", "bad start address '0x123456789'"),
        ("@Flash/0x08000000/16*128Kz", "unknown type letter 'z'"),
        ("@Flash/0x08000000/16*128Xg", "unknown size multiplier 'X'"),
        ("@Flash/0x08000000/16x128Kg", "is not 'COUNT*SIZE'"),
        ("@Flash/0x08000000/16*128K", "is not 'COUNT*SIZE'"),
        ("@Flash/0x08000000/00*128Kg", "no sectors or zero-sized sectors"),
        ("@Flash/0x08000000/01*128Kg/0x08010000/01*128Kg", "overlap"),
        ("@Flash/0xFFFF0000/02*064Kg", "runs past 4 GB"),
    ],
)
def test_malformed_strings_are_refused_with_the_reason(text, message):
    with pytest.raises(LayoutError) as info:
        parse_layout(text)
    assert message in str(info.value)


def test_range_checks_name_the_missing_permission_or_the_hole():
    lay = parse_layout("@Internal Flash  /0x08000000/01*128Ka,15*128Kg")
    lay.check(0x08020000, 0x1E0000, read=True, write=True, erase=True)  # all of user flash
    lay.check(0x0801FF00, 0x200, read=True)  # reading across the boundary is fine
    with pytest.raises(LayoutError, match="not writable"):
        lay.check(0x0801FF00, 0x200, write=True)
    with pytest.raises(LayoutError, match="not erasable"):
        lay.check(0x08000000, 4, erase=True)
    with pytest.raises(LayoutError, match=r"address 0x08200000 .* outside the memory 'Internal Flash'"):
        lay.check(0x081FFFF0, 0x20, read=True)
    with pytest.raises(LayoutError, match="outside"):
        lay.check(0x90000000, 1)
    with pytest.raises(LayoutError, match="empty range"):
        lay.check(0x08020000, 0)


def test_a_hole_between_address_blocks_is_outside():
    lay = parse_layout("@M/0x00000000/01*001Kg/0x00001000/01*001Kg")
    assert lay.contains(0x0, 0x400) and lay.contains(0x1000, 0x400)
    assert not lay.contains(0x300, 0x200)  # runs into the gap at 0x400


def test_sectors_touched_by_a_range():
    lay = parse_layout("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg")
    assert lay.sectors(0x0800BFFF, 2) == [(0x08008000, 16 * KB), (0x0800C000, 16 * KB)]
    assert lay.sectors(0x0800F000, 0x12000) == [
        (0x0800C000, 16 * KB),
        (0x08010000, 64 * KB),
        (0x08020000, 128 * KB),
    ]
    assert parse_layout("@Q/0x90000000/2048*004Kg").sectors(0x90000FFF, 1) == [(0x90000000, 4 * KB)]
