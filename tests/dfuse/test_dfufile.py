"""DfuSe .dfu files and DFU suffixes (FACTS.md §F.9), checked byte by byte and against dfu-util's tools."""

import shutil
import struct
import subprocess

import pytest

from h743sim.dfuse.dfufile import (
    DfuElement,
    DfuFile,
    DfuFileError,
    DfuSuffix,
    DfuTarget,
    RawDfuFile,
    dfu_crc,
    parse_dfu_bytes,
    read_dfu_file,
)


def bitwise_crc(data: bytes) -> int:
    """CRC-32, reflected polynomial 0xEDB88320, register starts at 0xFFFFFFFF, no final inversion."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc


def with_crc(body_and_suffix_head: bytes) -> bytes:
    return body_and_suffix_head + struct.pack("<I", bitwise_crc(body_and_suffix_head))


def hand_built_file() -> bytes:
    """One target (alt 0, named 'ST...'), one 4-byte element at 0x08020000; VID/PID 0483:DF11."""
    element = bytes([0x00, 0x00, 0x02, 0x08, 0x04, 0x00, 0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xEF])
    name = b"ST..." + b"\x00" * 250
    target = b"Target" + b"\x00" + b"\x01\x00\x00\x00" + name + bytes([12, 0, 0, 0]) + bytes([1, 0, 0, 0])
    assert len(target) == 274
    image_size = 11 + len(target) + len(element)  # 297
    prefix = b"DfuSe" + b"\x01" + bytes([image_size & 0xFF, image_size >> 8, 0, 0]) + b"\x01"
    suffix_head = bytes([0x00, 0x00, 0x11, 0xDF, 0x83, 0x04, 0x1A, 0x01]) + b"UFD" + bytes([16])
    return with_crc(prefix + target + element + suffix_head)


def test_crc_check_value_from_the_fact_sheet():
    assert dfu_crc(b"123456789") == 0x340BC6D9
    assert bitwise_crc(b"123456789") == 0x340BC6D9


def test_reads_a_file_built_by_hand():
    dfu = DfuFile.from_bytes(hand_built_file())
    assert (dfu.id_vendor, dfu.id_product, dfu.bcd_device) == (0x0483, 0xDF11, 0x0000)
    (target,) = dfu.targets
    assert (target.alt_setting, target.name, target.named) == (0, "ST...", True)
    assert target.elements == [DfuElement(0x08020000, b"\xde\xad\xbe\xef")]


def test_writes_exactly_the_hand_built_bytes():
    dfu = DfuFile([DfuTarget(0, "ST...", [DfuElement(0x08020000, b"\xde\xad\xbe\xef")])])
    assert dfu.to_bytes() == hand_built_file()


def test_round_trip_with_several_targets_and_elements(tmp_path):
    dfu = DfuFile(
        [
            DfuTarget(
                0,
                "Internal Flash",
                [DfuElement(0x08020000, bytes(range(256)) * 4), DfuElement(0x08040000, b"x")],
            ),
            DfuTarget(1, "", [DfuElement(0x90000000, b"\x00\xff" * 3000)]),
        ],
        id_vendor=0x1209,
        id_product=0x0001,
        bcd_device=0x2200,
    )
    path = tmp_path / "app.dfu"
    dfu.write(path)
    back = DfuFile.read(path)
    assert back == dfu
    raw = path.read_bytes()
    assert raw[:5] == b"DfuSe" and struct.unpack_from("<I", raw, 6)[0] == len(raw) - 16
    assert raw[-8:-5] == b"UFD" and struct.unpack_from("<I", raw, len(raw) - 4)[0] == bitwise_crc(raw[:-4])
    assert back.targets[1].named is False
    assert read_dfu_file(path) == dfu


def _refuse(data: bytes) -> str:
    with pytest.raises(DfuFileError) as info:
        DfuFile.from_bytes(data)
    return str(info.value)


def _body(data: bytes) -> bytes:
    """The file without its suffix CRC (to edit and re-CRC)."""
    return data[:-4]


def _patch(data: bytes, offset: int, new: bytes) -> bytes:
    """Change bytes and give the file a correct CRC again, so that the check after the CRC is reached."""
    body = bytearray(_body(data))
    body[offset : offset + len(new)] = new
    return with_crc(bytes(body))


GOOD = hand_built_file()


def test_bad_crc_is_refused():
    broken = bytearray(GOOD)
    broken[300] ^= 0x01  # a data byte
    assert "DFU suffix CRC mismatch: file says 0x" in _refuse(bytes(broken))


def test_bad_prefix_signature_is_refused():
    msg = _refuse(_patch(GOOD, 0, b"DfuSx"))
    assert "not a DfuSe file: it starts with b'DfuSx'" in msg and "bcdDFU 0x011A" in msg


def test_bad_suffix_signature_is_refused():
    assert "no DFU suffix: signature bytes are b'XFD'" in _refuse(_patch(GOOD, len(GOOD) - 8, b"X"))


@pytest.mark.parametrize(
    "length, message", [(15, "below the minimum of 16"), (20, "DfuSe requires exactly 16")]
)
def test_bad_suffix_length_is_refused(length, message):
    assert message in _refuse(_patch(GOOD, len(GOOD) - 5, bytes([length])))


def test_suffix_length_larger_than_the_file_is_refused():
    small = RawDfuFile(b"abc", DfuSuffix(bcd_dfu=0x0100)).to_bytes()  # 19 bytes
    with pytest.raises(DfuFileError, match="bLength 200 is larger than the whole file"):
        parse_dfu_bytes(_patch(small, len(small) - 5, bytes([200])))


def test_truncated_file_has_no_suffix_left():
    assert "no DFU suffix" in _refuse(GOOD[:200])
    assert "too short for the 16-byte DFU suffix" in _refuse(GOOD[:10])


def test_image_size_that_disagrees_with_the_file_is_refused():
    msg = _refuse(_patch(GOOD, 6, struct.pack("<I", 296)))
    assert "DFUImageSize is 296 but the file holds 297 bytes" in msg


def test_more_targets_announced_than_present_is_truncation():
    assert "truncated target 1" in _refuse(_patch(GOOD, 10, b"\x02"))


def test_wrong_target_signature_is_refused():
    assert "target 0 at offset 11 starts with b'Tarxet'" in _refuse(_patch(GOOD, 11, b"Tarxet"))


def test_target_size_larger_than_the_image_is_refused():
    msg = _refuse(_patch(GOOD, 11 + 266, struct.pack("<I", 13)))
    assert "dwTargetSize 13 but only 12 bytes remain" in msg


def test_target_size_smaller_than_its_elements_is_refused():
    assert "element 0 at 0x08020000 says 4 bytes but only 3 remain" in _refuse(
        _patch(GOOD, 11 + 266, struct.pack("<I", 11))
    )


def test_element_size_beyond_the_target_is_refused():
    assert "says 5 bytes but only 4 remain" in _refuse(_patch(GOOD, 11 + 274 + 4, struct.pack("<I", 5)))


def test_more_elements_announced_than_fit_is_refused():
    assert "element 1 header runs past dwTargetSize 12" in _refuse(
        _patch(GOOD, 11 + 270, struct.pack("<I", 2))
    )


def test_bytes_after_the_last_target_are_refused():
    # One extra byte inside the image, with DFUImageSize grown to match.
    body = bytearray(GOOD[:-16])
    body += b"\x00"
    struct.pack_into("<I", body, 6, len(body))
    suffix_head = GOOD[-16:-4]
    assert "1 unexpected bytes after the last of 1 targets" in _refuse(with_crc(bytes(body) + suffix_head))


def test_unknown_version_and_non_dfuse_bcd_are_refused():
    assert "unsupported DfuSe version 2" in _refuse(_patch(GOOD, 5, b"\x02"))
    assert "requires 0x011A" in _refuse(_patch(GOOD, len(GOOD) - 10, b"\x10\x01"))


def test_unrepresentable_files_are_refused_when_writing():
    with pytest.raises(DfuFileError, match="at most 254 fit"):
        DfuFile([DfuTarget(0, "n" * 255)]).to_bytes()
    with pytest.raises(DfuFileError, match="runs past the 4 GB"):
        DfuElement(0xFFFFFFF0, b"\x00" * 32)
    with pytest.raises(DfuFileError, match="does not fit in a byte"):
        DfuFile([DfuTarget(256)]).to_bytes()


def test_a_plain_binary_with_a_suffix():
    raw = RawDfuFile(b"\x01\x02\x03", DfuSuffix(0x0100, 0xDF11, 0x0483, 0x0110))
    data = raw.to_bytes()
    assert data == with_crc(b"\x01\x02\x03" + bytes([0, 1, 0x11, 0xDF, 0x83, 4, 0x10, 1]) + b"UFD\x10")
    back = parse_dfu_bytes(data)
    assert isinstance(back, RawDfuFile)
    assert back.payload == b"\x01\x02\x03" and back.prefix is None
    assert (back.suffix.bcd_device, back.suffix.id_product, back.suffix.id_vendor, back.suffix.bcd_dfu) == (
        0x0100,
        0xDF11,
        0x0483,
        0x0110,
    )


def test_a_dfuse_suffix_on_a_plain_binary_is_refused():
    data = RawDfuFile(b"\x00\x00\x02\x20", DfuSuffix(bcd_dfu=0x011A)).to_bytes()
    with pytest.raises(DfuFileError, match="the suffix says DfuSe"):
        parse_dfu_bytes(data)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DfuFileError, match="cannot read .*nope.dfu"):
        read_dfu_file(tmp_path / "nope.dfu")


# ---- cross-checks with dfu-util's own tools -------------------------------------------------------

needs_dfu_suffix = pytest.mark.skipif(
    shutil.which("dfu-suffix") is None, reason="dfu-suffix (dfu-util) not installed"
)
needs_dfu_prefix = pytest.mark.skipif(
    shutil.which("dfu-prefix") is None, reason="dfu-prefix (dfu-util) not installed"
)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


@needs_dfu_suffix
def test_dfu_suffix_accepts_our_dfuse_file(tmp_path):
    path = tmp_path / "ours.dfu"
    DfuFile([DfuTarget(1, "QSPI", [DfuElement(0x90000000, bytes(range(200)))])], bcd_device=0x2200).write(
        path
    )
    out = _run("dfu-suffix", "-c", str(path))
    assert out.returncode == 0, out.stderr
    crc = struct.unpack_from("<I", path.read_bytes(), path.stat().st_size - 4)[0]
    for line in (
        "BCD device:\t0x2200",
        "Product ID:\t0xDF11",
        "Vendor ID:\t0x0483",
        "BCD DFU:\t0x011A",
        f"CRC:\t\t0x{crc:08X}",
    ):
        assert line in out.stdout


@needs_dfu_suffix
def test_dfu_suffix_accepts_our_plain_file(tmp_path):
    path = tmp_path / "plain.bin"
    path.write_bytes(RawDfuFile(b"hello", DfuSuffix(0x1234, 0xDF11, 0x0483, 0x0100)).to_bytes())
    out = _run("dfu-suffix", "-c", str(path))
    assert out.returncode == 0 and "BCD device:\t0x1234" in out.stdout


@needs_dfu_suffix
def test_dfu_suffix_sees_the_corruption_we_refuse(tmp_path):
    path = tmp_path / "bad.dfu"
    broken = bytearray(GOOD)
    broken[300] ^= 1
    path.write_bytes(bytes(broken))
    out = _run("dfu-suffix", "-c", str(path))
    assert "CRC does not match" in out.stderr
    with pytest.raises(DfuFileError, match="CRC mismatch"):
        read_dfu_file(path)


@needs_dfu_suffix
def test_we_read_a_file_suffixed_by_dfu_suffix(tmp_path):
    path = tmp_path / "app.bin"
    payload = bytes(range(256)) * 3
    path.write_bytes(payload)
    out = _run("dfu-suffix", "-a", str(path), "-v", "0483", "-p", "df11", "-d", "0x2200")
    assert out.returncode == 0, out.stderr
    parsed = read_dfu_file(path)
    assert isinstance(parsed, RawDfuFile)
    assert parsed.payload == payload
    assert (parsed.suffix.id_vendor, parsed.suffix.id_product, parsed.suffix.bcd_device) == (
        0x0483,
        0xDF11,
        0x2200,
    )
    assert parsed.suffix.bcd_dfu == 0x0100  # dfu-suffix's default DFU version


@needs_dfu_suffix
def test_we_read_a_dfuse_file_resuffixed_by_dfu_suffix(tmp_path):
    # dfu-suffix -a can add a DfuSe suffix to a prefix+targets image that we wrote without one.
    path = tmp_path / "image.dfu"
    full = DfuFile([DfuTarget(0, "", [DfuElement(0x08020000, b"\x11\x22\x33")])]).to_bytes()
    path.write_bytes(full[:-16])
    out = _run("dfu-suffix", "-a", str(path), "-v", "0483", "-p", "df11", "-d", "0x0000", "-S", "0x011a")
    assert out.returncode == 0, out.stderr
    assert path.read_bytes() == full
    assert read_dfu_file(path).targets[0].elements == [DfuElement(0x08020000, b"\x11\x22\x33")]


@needs_dfu_prefix
@needs_dfu_suffix
def test_we_read_files_prefixed_by_dfu_prefix(tmp_path):
    payload = bytes(range(40))
    stellaris = tmp_path / "stellaris.bin"
    stellaris.write_bytes(payload)
    assert _run("dfu-prefix", "-s", "0x8000", "-a", str(stellaris)).returncode == 0
    assert _run("dfu-suffix", "-a", str(stellaris)).returncode == 0
    parsed = read_dfu_file(stellaris)
    assert isinstance(parsed, RawDfuFile)
    assert parsed.prefix is not None and parsed.prefix.kind == "stellaris" and parsed.prefix.address == 0x8000
    assert parsed.payload == payload

    lpc = tmp_path / "lpc.bin"
    lpc.write_bytes(payload)
    assert _run("dfu-prefix", "-L", "-a", str(lpc)).returncode == 0
    assert _run("dfu-suffix", "-a", str(lpc)).returncode == 0
    parsed = read_dfu_file(lpc)
    assert parsed.prefix is not None and parsed.prefix.kind == "lpc" and len(parsed.prefix.raw) == 16
    assert parsed.payload == payload
