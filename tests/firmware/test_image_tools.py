"""Firmware image format: the application header tools and the firmware's own CRC-32.

- tools/fill_header.py on synthetic images (size/CRC rules, idempotence, refusals);
- drivers/crc32.c compiled for the host (ctypes) against zlib;
- a real build of the images into a temporary directory (needs arm-none-eabi-gcc; skipped without
  it): vector tables where the linker scripts put them, header filled identically in ELF and .bin,
  and check_image.py rejecting a corrupted image.
"""

from __future__ import annotations

import ctypes
import importlib.util
import random
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
TOOLS = FIRMWARE / "tools"
HEADER_OFFSET = 0x300
MAGIC = 0x48374150


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(TOOLS))
    try:
        spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(TOOLS))


fill_header = _load("fill_header")
elf32 = _load("elf32")


def _synthetic_image(size: int = 0x1000, version: int = 3) -> bytes:
    rng = random.Random(size)
    img = bytearray(rng.randbytes(size))
    struct.pack_into("<8I", img, HEADER_OFFSET, MAGIC, 32, 0, 0, 0x90000000, version, 0, 0)
    return bytes(img)


def test_fill_sets_size_and_crc_over_image_with_crc_field_zero() -> None:
    img = _synthetic_image()
    out = fill_header.fill(img)
    magic, hsize, isize, crc = struct.unpack_from("<4I", out, HEADER_OFFSET)
    assert (magic, hsize, isize) == (MAGIC, 32, len(img))
    zeroed = bytearray(out)
    zeroed[HEADER_OFFSET + 12 : HEADER_OFFSET + 16] = b"\0\0\0\0"
    assert crc == zlib.crc32(bytes(zeroed))
    # only the two fields changed
    assert out[: HEADER_OFFSET + 8] == img[: HEADER_OFFSET + 8]
    assert out[HEADER_OFFSET + 16 :] == img[HEADER_OFFSET + 16 :]


def test_fill_is_idempotent_and_detects_one_flipped_bit() -> None:
    out = fill_header.fill(_synthetic_image())
    assert fill_header.fill(out) == out
    corrupted = bytearray(out)
    corrupted[0x800] ^= 0x10
    stored = struct.unpack_from("<I", out, HEADER_OFFSET + 12)[0]
    assert fill_header.image_crc(bytes(corrupted)) != stored


@pytest.mark.parametrize(
    ("patch", "message"),
    [((0, 0x12345678), "no header magic"), ((4, 16), "header_size is 16")],
)
def test_fill_refuses_bad_header(patch: tuple[int, int], message: str) -> None:
    img = bytearray(_synthetic_image())
    struct.pack_into("<I", img, HEADER_OFFSET + patch[0], patch[1])
    with pytest.raises(fill_header.HeaderError, match=message):
        fill_header.fill(bytes(img))


def test_fill_refuses_image_too_short_for_a_header() -> None:
    with pytest.raises(fill_header.HeaderError, match="too short"):
        fill_header.fill(b"\0" * 0x310)


@pytest.fixture(scope="module")
def crc_lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no host C compiler (cc/gcc) to build drivers/crc32.c")
    out = tmp_path_factory.mktemp("crc") / "libcrc32.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{FIRMWARE / 'drivers'}",
         str(FIRMWARE / "drivers" / "crc32.c"), "-o", str(out)],
        check=True,
    )  # fmt: skip
    lib = ctypes.CDLL(str(out))
    lib.crc32_update.restype = ctypes.c_uint32
    lib.crc32_update.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32]
    lib.crc32.restype = ctypes.c_uint32
    lib.crc32.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
    return lib


def test_firmware_crc32_matches_zlib(crc_lib: ctypes.CDLL) -> None:
    assert crc_lib.crc32(b"123456789", 9) == 0xCBF43926
    assert crc_lib.crc32(b"", 0) == 0
    rng = random.Random(7)
    for size in (1, 31, 256, 4097):
        data = rng.randbytes(size)
        assert crc_lib.crc32(data, size) == zlib.crc32(data)


def test_firmware_crc32_update_chains_like_zlib(crc_lib: ctypes.CDLL) -> None:
    data = random.Random(11).randbytes(1000)
    crc = crc_lib.crc32_update(0, data[:300], 300)
    crc = crc_lib.crc32_update(crc, data[300:], 700)
    assert crc == zlib.crc32(data) == zlib.crc32(data[300:], zlib.crc32(data[:300]))


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None:
        pytest.skip("arm-none-eabi-gcc or make not installed: firmware images cannot be built")
    out = tmp_path_factory.mktemp("fwbuild")
    targets = [str(out / f"{n}.bin") for n in ("app_qspi", "app_internal", "exc_test", "hello")]
    result = subprocess.run(
        ["make", "-C", str(FIRMWARE), f"BUILD={out}", *targets], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _vector_words(elf: object, addr: int) -> tuple[int, ...]:
    return struct.unpack("<166I", elf.read(addr, 166 * 4))  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "base"), [("app_qspi", 0x90000000), ("app_internal", 0x08020000)])
def test_application_images(build: Path, name: str, base: int) -> None:
    elf = elf32.Elf32(build / f"{name}.elf")
    image = (build / f"{name}.bin").read_bytes()
    table = elf.symbol("g_vector_table")
    assert (table.value, table.size) == (base, 166 * 4)
    words = _vector_words(elf, base)
    assert words[0] == 0x20020000  # top of DTCM
    assert words[1] == elf.symbol("Reset_Handler").value | 1
    magic, hsize, isize, crc, load, version = struct.unpack_from("<6I", image, HEADER_OFFSET)
    assert (magic, hsize, isize, load, version) == (MAGIC, 32, len(image), base, 1)
    assert crc == fill_header.image_crc(image)
    # the ELF carries the same filled header and the same bytes
    elf_image, holes = elf.image(base, len(image))
    assert holes == [] and elf_image == image


def test_exc_test_extra_vector_tables(build: Path) -> None:
    elf = elf32.Elf32(build / "exc_test.elf")
    main = _vector_words(elf, 0x08000000)
    alt = _vector_words(elf, 0x08020000)
    qspi = _vector_words(elf, 0x90000000)
    # same reset/stack/system handlers, one IRQ entry differs (IRQ 16 resp. 17)
    assert alt[:16] == main[:16] and qspi[:16] == main[:16]
    assert alt[16 + 16] == elf.symbol("vtor_alt_irq_handler").value | 1 != main[16 + 16]
    assert qspi[16 + 17] == elf.symbol("vtor_qspi_irq_handler").value | 1 != main[16 + 17]
    # the test image's .bin stops before 0x08020000 (the extra tables live in the ELF only)
    assert len((build / "exc_test.bin").read_bytes()) < 0x20000


def test_check_image_rejects_a_corrupted_application(build: Path, tmp_path: Path) -> None:
    check = [sys.executable, str(TOOLS / "check_image.py")]
    elf, good = build / "app_qspi.elf", build / "app_qspi.bin"
    ok = subprocess.run(
        [*check, str(elf), "--bin", str(good), "--require-header"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.bin"
    data = bytearray(good.read_bytes())
    data[0x400] ^= 0x01
    bad.write_bytes(bytes(data))
    res = subprocess.run(
        [*check, str(elf), "--bin", str(bad), "--require-header"], capture_output=True, text=True
    )
    assert res.returncode == 1
    assert "crc32" in res.stderr and "differs from the ELF" in res.stderr
