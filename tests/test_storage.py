"""State directory: round trip, atomic saves, recovery of interrupted saves, refusal of bad state."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest

from h743sim import storage
from h743sim.storage import (
    FLASH_IMAGE_SIZE,
    QSPI_IMAGE_SIZE,
    MemoryRegion,
    StateDir,
    StateError,
    export_image,
    import_image,
    load_image,
)
from peripherals.flash_interface import FLASH_BASE, FlashInterface
from peripherals.standalone_host import StandaloneHost

QSPI_BASE = 0x9000_0000


class FakeQspi:
    """Stands in for the W25Q64 model: the three attributes the state directory uses."""

    def __init__(self) -> None:
        self.array = bytearray(b"\xff" * QSPI_IMAGE_SIZE)
        self.erase_counts = [0] * 2048

    def to_metadata(self) -> dict:
        return {
            "model": "fake-w25q64",
            "erase_counts": {str(i): c for i, c in enumerate(self.erase_counts) if c},
        }

    def load_metadata(self, meta: dict) -> None:
        if meta.get("model") != "fake-w25q64":
            raise ValueError(f"not a fake-w25q64 record: {meta.get('model')!r}")
        counts = [0] * 2048
        for k, v in meta["erase_counts"].items():
            counts[int(k)] = v
        self.erase_counts = counts


def board() -> tuple[FlashInterface, FakeQspi]:
    return FlashInterface(StandaloneHost()), FakeQspi()


def populated() -> tuple[FlashInterface, FakeQspi]:
    flash, qspi = board()
    flash.array[0:8] = b"\x00\x01\x02\x03\x04\x05\x06\x07"
    flash.array[-4:] = b"\x12\x34\x56\x78"
    flash.erase_counts[2] = 41
    flash.set_write_protection(0, True)
    qspi.array[0x1000:0x1004] = b"QSPI"
    qspi.erase_counts[1] = 7
    return flash, qspi


def files_in(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


# ================================================================================================
# creation and round trip
# ================================================================================================
def test_missing_directory_is_created_with_erased_images(tmp_path: Path) -> None:
    d = StateDir(tmp_path / "boards" / "one")
    flash, qspi = board()
    flash.array[0] = 0  # whatever the models held, a new board starts erased
    result = d.load_into(flash, qspi)
    assert result.created and result.recovered == []
    assert files_in(d.path) == ["flash.bin", "meta.json", "qspi.bin"]
    assert (d.path / "flash.bin").read_bytes() == b"\xff" * FLASH_IMAGE_SIZE == bytes(flash.array)
    assert (d.path / "qspi.bin").stat().st_size == QSPI_IMAGE_SIZE
    meta = json.loads((d.path / "meta.json").read_text())
    assert meta["format"] == "h743sim-state" and meta["version"] == 1
    assert meta["memories"]["flash"]["sha256"] == hashlib.sha256(b"\xff" * FLASH_IMAGE_SIZE).hexdigest()
    assert meta["memories"]["flash"]["metadata"] == flash.to_metadata()
    assert meta["memories"]["qspi"]["size"] == QSPI_IMAGE_SIZE


def test_round_trip_restores_images_and_metadata(tmp_path: Path) -> None:
    d = StateDir(tmp_path)
    flash, qspi = populated()
    d.save_from(flash, qspi)
    flash2, qspi2 = board()
    result = d.load_into(flash2, qspi2)
    assert not result.created and result.recovered == []
    assert flash2.array == flash.array and qspi2.array == qspi.array
    assert flash2.erase_counts[2] == 41 and qspi2.erase_counts[1] == 7
    assert flash2.read(0x38, 4) == 0xFE  # WPSN_CUR1 from the saved option bytes
    assert flash2.to_metadata() == flash.to_metadata()


def test_save_leaves_no_temp_files_and_removes_stale_ones(tmp_path: Path) -> None:
    d = StateDir(tmp_path)
    flash, qspi = populated()
    d.save_from(flash, qspi)
    assert files_in(tmp_path) == ["flash.bin", "meta.json", "qspi.bin"]
    (tmp_path / ".flash.bin.abc123.tmp").write_bytes(b"left by a killed save")
    flash.array[100] = 0
    d.save_from(flash, qspi)
    assert files_in(tmp_path) == ["flash.bin", "meta.json", "qspi.bin"]
    assert (tmp_path / "flash.bin").read_bytes()[100] == 0


def test_unchanged_image_is_not_rewritten(tmp_path: Path) -> None:
    d = StateDir(tmp_path)
    flash, qspi = populated()
    d.save_from(flash, qspi)
    inode = (tmp_path / "qspi.bin").stat().st_ino
    flash.array[5] = 0x55
    d.save_from(flash, qspi)
    assert (tmp_path / "qspi.bin").stat().st_ino == inode
    assert (tmp_path / "flash.bin").read_bytes()[5] == 0x55


# ================================================================================================
# interrupted saves
# ================================================================================================
def _fail_replace_to(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    real = os.replace

    def replace(src, dst) -> None:
        if Path(dst).name == target:
            raise OSError(f"simulated crash before renaming to {target}")
        real(src, dst)

    monkeypatch.setattr(storage.os, "replace", replace)


def test_save_interrupted_before_any_rename_keeps_old_state(tmp_path: Path, monkeypatch) -> None:
    d = StateDir(tmp_path)
    flash, qspi = populated()
    d.save_from(flash, qspi)
    before = {n: (tmp_path / n).read_bytes() for n in files_in(tmp_path)}
    flash.array[0:4] = b"\0\0\0\0"
    flash.erase_counts[2] = 99
    qspi.array[0] = 0
    _fail_replace_to(monkeypatch, "meta.json")
    with pytest.raises(OSError, match="simulated crash"):
        d.save_from(flash, qspi)
    monkeypatch.undo()
    assert files_in(tmp_path) == ["flash.bin", "meta.json", "qspi.bin"]  # temps cleaned up
    assert {n: (tmp_path / n).read_bytes() for n in files_in(tmp_path)} == before
    flash2, qspi2 = board()
    assert d.load_into(flash2, qspi2).recovered == []
    assert flash2.array[0:4] == b"\x00\x01\x02\x03" and flash2.erase_counts[2] == 41
    assert qspi2.array[0] == 0xFF


def test_save_interrupted_between_renames_recovers_each_memory(tmp_path: Path, monkeypatch) -> None:
    d = StateDir(tmp_path)
    flash, qspi = populated()
    d.save_from(flash, qspi)
    old_flash = bytes(flash.array)
    flash.array[0:4] = b"\0\0\0\0"
    flash.erase_counts[2] = 99
    qspi.array[0] = 0x11
    qspi.erase_counts[1] = 8
    _fail_replace_to(monkeypatch, "flash.bin")  # meta.json and qspi.bin renamed, flash.bin not
    with pytest.raises(OSError):
        d.save_from(flash, qspi)
    monkeypatch.undo()
    assert files_in(tmp_path) == ["flash.bin", "meta.json", "qspi.bin"]
    flash2, qspi2 = board()
    result = d.load_into(flash2, qspi2)
    assert result.recovered == ["flash"]
    assert bytes(flash2.array) == old_flash and flash2.erase_counts[2] == 41  # old, consistent
    assert qspi2.array[0] == 0x11 and qspi2.erase_counts[1] == 8  # new, consistent
    # the next save starts from what is really on disk
    d.save_from(flash2, qspi2)
    assert d.load_into(*board()).recovered == []


# ================================================================================================
# refusals
# ================================================================================================
@pytest.fixture
def saved(tmp_path: Path) -> StateDir:
    d = StateDir(tmp_path)
    d.save_from(*populated())
    return d


def _assert_refused(d: StateDir, message: str) -> None:
    flash, qspi = board()
    flash.array[7] = 0x77
    before = (bytes(flash.array), flash.to_metadata(), bytes(qspi.array))
    with pytest.raises(StateError) as err:
        d.load_into(flash, qspi)
    assert message in str(err.value)
    assert (bytes(flash.array), flash.to_metadata(), bytes(qspi.array)) == before


def test_truncated_image_is_refused_not_padded(saved: StateDir) -> None:
    p = saved.path / "flash.bin"
    p.write_bytes(p.read_bytes()[:-1])
    _assert_refused(saved, f"{p}: truncated: {FLASH_IMAGE_SIZE - 1} bytes, expected {FLASH_IMAGE_SIZE}")
    assert p.stat().st_size == FLASH_IMAGE_SIZE - 1


def test_oversized_image_is_refused(saved: StateDir) -> None:
    p = saved.path / "qspi.bin"
    with p.open("ab") as f:
        f.write(b"\xff")
    _assert_refused(saved, f"{p}: wrong size: {QSPI_IMAGE_SIZE + 1} bytes, expected {QSPI_IMAGE_SIZE}")


def test_corrupted_image_is_refused_by_hash(saved: StateDir) -> None:
    p = saved.path / "flash.bin"
    data = bytearray(p.read_bytes())
    data[1000] ^= 0x01
    p.write_bytes(data)
    _assert_refused(saved, f"{p}: SHA-256 mismatch")
    assert p.read_bytes() == data


def test_missing_image_is_refused(saved: StateDir) -> None:
    (saved.path / "qspi.bin").unlink()
    _assert_refused(saved, "qspi.bin: missing")


@pytest.mark.parametrize(
    "content,message",
    [
        (b"{not json", "invalid JSON"),
        (b"[]", "not an h743sim state file"),
        (b'{"format": "h743sim-state", "version": 2, "memories": {}}', "format version 2 not supported"),
        (b'{"format": "h743sim-state", "version": 1}', '"memories" missing'),
        (b"\xff\xfe\x00", "cannot read"),
    ],
)
def test_bad_meta_json_is_refused(saved: StateDir, content: bytes, message: str) -> None:
    saved.meta_path.write_bytes(content)
    _assert_refused(saved, f"{saved.meta_path}: {message}")


def test_meta_entry_with_wrong_size_is_refused(saved: StateDir) -> None:
    meta = json.loads(saved.meta_path.read_text())
    meta["memories"]["flash"]["size"] = 1024
    saved.meta_path.write_text(json.dumps(meta))
    _assert_refused(saved, "memories.flash.size is 1024, expected 2097152")


def test_metadata_rejected_by_model_is_refused(saved: StateDir) -> None:
    meta = json.loads(saved.meta_path.read_text())
    meta["memories"]["flash"]["metadata"]["erase_counts"] = [0, 1]
    saved.meta_path.write_text(json.dumps(meta))
    _assert_refused(saved, "flash metadata rejected: flash metadata: erase_counts")


def test_images_without_meta_json_are_refused(saved: StateDir) -> None:
    saved.meta_path.unlink()
    _assert_refused(saved, "missing while qspi.bin, flash.bin exist")
    assert files_in(saved.path) == ["flash.bin", "qspi.bin"]


def test_save_refuses_to_overwrite_invalid_meta_json(saved: StateDir) -> None:
    saved.meta_path.write_text("garbage")
    with pytest.raises(StateError, match="invalid JSON"):
        saved.save_from(*board())
    assert saved.meta_path.read_text() == "garbage"


def test_model_with_wrong_array_size_is_refused(tmp_path: Path) -> None:
    flash, qspi = board()
    qspi.array = bytearray(1024)
    with pytest.raises(StateError, match="qspi model has a 1024-byte array"):
        StateDir(tmp_path / "x").save_from(flash, qspi)
    assert not (tmp_path / "x" / "meta.json").exists()


# ================================================================================================
# image import / export
# ================================================================================================
def test_load_image_checks_range() -> None:
    mem = bytearray(b"\xff" * 64)
    load_image(mem, 0x0800_0000, b"\x01\x02", 0x0800_003E)
    assert mem[62:] == b"\x01\x02"
    with pytest.raises(ValueError, match="0x0800003f..0x08000040 do not fit in 0x08000000..0x0800003f"):
        load_image(mem, 0x0800_0000, b"\x01\x02", 0x0800_003F)
    with pytest.raises(ValueError, match="do not fit"):
        load_image(mem, 0x0800_0000, b"\x01", 0x07FF_FFFF)
    assert mem[62:] == b"\x01\x02"


def _elf32(segments: list[tuple[int, int, bytes]]) -> bytes:
    """A minimal little-endian ARM ELF32 executable: (vaddr, paddr, data) PT_LOAD segments."""
    ehsize, phentsize = 52, 32
    phoff = ehsize
    data_off = phoff + phentsize * len(segments)
    header = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    header += struct.pack(
        "<HHIIIIIHHHHHH", 2, 40, 1, 0x0800_0000, phoff, 0, 0, ehsize, phentsize, len(segments), 40, 0, 0
    )
    phdrs = b""
    blobs = b""
    for vaddr, paddr, blob in segments:
        phdrs += struct.pack("<IIIIIIII", 1, data_off + len(blobs), vaddr, paddr, len(blob), len(blob), 5, 4)
        blobs += blob
    return header + phdrs + blobs


def test_import_elf_uses_load_addresses(tmp_path: Path) -> None:
    flash, qspi = board()
    regions = [MemoryRegion("flash", FLASH_BASE, flash.array), MemoryRegion("qspi", QSPI_BASE, qspi.array)]
    elf = tmp_path / "app.elf"
    # .text in QSPI, .data linked for RAM but loaded right after it (LMA in QSPI)
    elf.write_bytes(_elf32([(QSPI_BASE, QSPI_BASE, b"TEXT"), (0x2400_0000, QSPI_BASE + 4, b"DATA")]))
    assert import_image(elf, regions) == [("qspi", QSPI_BASE, 4), ("qspi", QSPI_BASE + 4, 4)]
    assert qspi.array[:8] == b"TEXTDATA"
    assert flash.array[:8] == b"\xff" * 8


def test_import_refuses_segment_outside_memories_and_writes_nothing(tmp_path: Path) -> None:
    flash, qspi = board()
    regions = [MemoryRegion("flash", FLASH_BASE, flash.array), MemoryRegion("qspi", QSPI_BASE, qspi.array)]
    elf = tmp_path / "bad.elf"
    elf.write_bytes(_elf32([(FLASH_BASE, FLASH_BASE, b"GOOD"), (0x2400_0000, 0x2400_0000, b"RAM!")]))
    with pytest.raises(ValueError, match="segment 0x24000000..0x24000003 lies in no memory"):
        import_image(elf, regions)
    assert flash.array[:4] == b"\xff" * 4


def test_import_raw_binary_needs_an_address(tmp_path: Path) -> None:
    flash, _ = board()
    regions = [MemoryRegion("flash", FLASH_BASE, flash.array)]
    binary = tmp_path / "boot.bin"
    binary.write_bytes(b"\x00\x00\x02\x24\x01\x02\x00\x08")
    with pytest.raises(ValueError, match="needs a load address"):
        import_image(binary, regions)
    assert import_image(binary, regions, bin_address=0x0802_0000) == [("flash", 0x0802_0000, 8)]
    assert flash.array[0x20000:0x20008] == binary.read_bytes()


def test_export_image_writes_requested_range(tmp_path: Path) -> None:
    flash, _ = populated()
    region = MemoryRegion("flash", FLASH_BASE, flash.array)
    out = tmp_path / "dump.bin"
    export_image(region, out, FLASH_BASE, 8)
    assert out.read_bytes() == b"\x00\x01\x02\x03\x04\x05\x06\x07"
    export_image(region, out)
    assert out.read_bytes() == bytes(flash.array)
    with pytest.raises(ValueError, match="outside"):
        export_image(region, out, FLASH_BASE + FLASH_IMAGE_SIZE - 4, 8)
    assert files_in(tmp_path) == ["dump.bin"]
