"""The board's state directory: the two flash images and their metadata, saved atomically.

A state directory holds::

    qspi.bin    8 MiB  W25Q64 contents
    flash.bin   2 MiB  STM32H743 internal flash (both banks)
    meta.json   format/version, and per memory: file, size, SHA-256, the model's to_metadata()

Every file is replaced atomically (temp file in the same directory, fsync, rename, fsync of the
directory). A save renames meta.json *before* the images and records, per memory, the entry that
describes the image still on disk as ``previous``; so a save interrupted between two renames
leaves each image matching either its new or its previous entry, and loading picks the matching
one (reported in :attr:`LoadResult.recovered`). Anything else that does not match -- a missing,
truncated or resized image, a hash mismatch, an unreadable or invalid meta.json -- is refused with
a :class:`StateError` naming the file and the problem; nothing is padded or overwritten.

The helpers at the end load ELF or raw binaries into memory images with range checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from peripherals.flash_interface import FLASH_SIZE as FLASH_IMAGE_SIZE

FORMAT_NAME = "h743sim-state"
FORMAT_VERSION = 1
META_FILE = "meta.json"
FLASH_FILE = "flash.bin"
QSPI_FILE = "qspi.bin"
QSPI_IMAGE_SIZE = 8 * 1024 * 1024  # W25Q64: 64 Mbit (FACTS §D.1)
ERASED = 0xFF
_TMP_SUFFIX = ".tmp"


class StateError(Exception):
    """The state directory cannot be used as it is (the message names the file and the problem)."""


class PersistentMemory(Protocol):
    """What a memory model offers to be saved: its array and its JSON-serialisable metadata."""

    array: bytearray

    def to_metadata(self) -> dict: ...

    def load_metadata(self, meta: dict) -> None: ...


@dataclass(frozen=True)
class MemorySpec:
    key: str  # name in meta.json
    file: str
    size: int


MEMORIES = (MemorySpec("qspi", QSPI_FILE, QSPI_IMAGE_SIZE), MemorySpec("flash", FLASH_FILE, FLASH_IMAGE_SIZE))


@dataclass
class LoadResult:
    #: the directory did not exist (or was empty) and was created with erased images
    created: bool = False
    #: memories whose image matched the previous entry (a save was interrupted mid-way)
    recovered: list[str] = field(default_factory=list)


def _sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: Path, final_name: str, data: bytes) -> Path:
    """Write ``data`` to a fresh temp file next to ``final_name`` and fsync it."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=f".{final_name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def atomic_write(path: str | Path, data: bytes | bytearray) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync directory)."""
    path = Path(path)
    tmp = _write_temp(path.parent, path.name, bytes(data))
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


class StateDir:
    """One board's state directory (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def meta_path(self) -> Path:
        return self.path / META_FILE

    def image_path(self, spec: MemorySpec) -> Path:
        return self.path / spec.file

    def exists(self) -> bool:
        return self.meta_path.exists()

    # -- load ------------------------------------------------------------------------------------
    def load_into(self, flash: PersistentMemory, qspi: PersistentMemory) -> LoadResult:
        """Fill the models from the directory; a missing or empty directory is created erased."""
        models = {"flash": flash, "qspi": qspi}
        self._check_models(models)
        if self._is_fresh():
            for spec in MEMORIES:
                models[spec.key].array[:] = bytes([ERASED]) * spec.size
            self.save_from(flash, qspi)
            return LoadResult(created=True)
        meta = self.read_meta()
        result = LoadResult()
        images: dict[str, bytes] = {}
        chosen: dict[str, dict] = {}
        for spec in MEMORIES:
            images[spec.key], chosen[spec.key], recovered = self._read_image(spec, meta["memories"][spec.key])
            if recovered:
                result.recovered.append(spec.key)
        # everything read and checked: now apply, restoring the models if one refuses its metadata
        snapshots = {key: model.to_metadata() for key, model in models.items()}
        for spec in MEMORIES:
            try:
                models[spec.key].load_metadata(chosen[spec.key]["metadata"])
            except (ValueError, TypeError, KeyError) as e:
                for key, snap in snapshots.items():
                    models[key].load_metadata(snap)
                raise StateError(f"{self.meta_path}: {spec.key} metadata rejected: {e}") from None
        for spec in MEMORIES:
            models[spec.key].array[:] = images[spec.key]
        return result

    def _is_fresh(self) -> bool:
        if not self.path.exists():
            return True
        if not self.path.is_dir():
            raise StateError(f"{self.path}: not a directory")
        if self.meta_path.exists():
            return False
        present = [spec.file for spec in MEMORIES if self.image_path(spec).exists()]
        if present:
            raise StateError(
                f"{self.meta_path}: missing while {', '.join(present)} exist(s); refusing to guess "
                "their metadata (restore meta.json or move the images away)"
            )
        return True

    def read_meta(self) -> dict:
        """meta.json, parsed and checked (StateError naming the problem otherwise)."""
        p = self.meta_path
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise StateError(f"{p}: cannot read: {e}") from None
        try:
            meta = json.loads(text)
        except json.JSONDecodeError as e:
            raise StateError(f"{p}: invalid JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise StateError(f'{p}: not an h743sim state file (no "format": "{FORMAT_NAME}")')
        if meta.get("version") != FORMAT_VERSION:
            raise StateError(
                f"{p}: format version {meta.get('version')!r} not supported (expected {FORMAT_VERSION})"
            )
        memories = meta.get("memories")
        if not isinstance(memories, dict):
            raise StateError(f'{p}: "memories" missing or not an object')
        for spec in MEMORIES:
            entry = memories.get(spec.key)
            where = f"{p}: memories.{spec.key}"
            if not isinstance(entry, dict):
                raise StateError(f"{where} missing or not an object")
            if entry.get("file") != spec.file:
                raise StateError(f"{where}.file is {entry.get('file')!r}, expected {spec.file!r}")
            self._check_entry(entry, spec, where)
            if entry.get("previous") is not None:
                self._check_entry(entry["previous"], spec, f"{where}.previous")
        return meta

    @staticmethod
    def _check_entry(entry: object, spec: MemorySpec, where: str) -> None:
        if not isinstance(entry, dict):
            raise StateError(f"{where} is not an object")
        if entry.get("size") != spec.size:
            raise StateError(f"{where}.size is {entry.get('size')!r}, expected {spec.size}")
        sha = entry.get("sha256")
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise StateError(f"{where}.sha256 is not a SHA-256 hex digest: {sha!r}")
        if not isinstance(entry.get("metadata"), dict):
            raise StateError(f"{where}.metadata missing or not an object")

    def _read_image(self, spec: MemorySpec, entry: dict) -> tuple[bytes, dict, bool]:
        """The image's bytes, the meta entry describing them, and whether that is ``previous``."""
        p = self.image_path(spec)
        if not p.exists():
            raise StateError(f"{p}: missing (meta.json lists it)")
        try:
            data = p.read_bytes()
        except OSError as e:
            raise StateError(f"{p}: cannot read: {e}") from None
        if len(data) < spec.size:
            raise StateError(f"{p}: truncated: {len(data)} bytes, expected {spec.size}")
        if len(data) != spec.size:
            raise StateError(f"{p}: wrong size: {len(data)} bytes, expected {spec.size}")
        sha = _sha256(data)
        if sha == entry["sha256"]:
            return data, entry, False
        previous = entry.get("previous")
        if previous is not None and sha == previous["sha256"]:
            return data, previous, True
        raise StateError(
            f"{p}: SHA-256 mismatch: the file hashes to {sha[:16]}..., meta.json records "
            f"{entry['sha256'][:16]}...; the image was changed outside h743sim or is corrupted"
        )

    # -- save ------------------------------------------------------------------------------------
    def save_from(self, flash: PersistentMemory, qspi: PersistentMemory) -> None:
        """Write both images (only those that changed) and meta.json atomically."""
        models = {"flash": flash, "qspi": qspi}
        self._check_models(models)
        self.path.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temps()
        old = self.read_meta() if self.meta_path.exists() else None  # refuse to clobber a bad one
        pending: list[tuple[Path, Path]] = []
        try:
            memories = {}
            for spec in MEMORIES:
                data = bytes(models[spec.key].array)
                sha = _sha256(data)
                on_disk = self._disk_sha(spec)
                memories[spec.key] = {
                    "file": spec.file,
                    "size": spec.size,
                    "sha256": sha,
                    "metadata": models[spec.key].to_metadata(),
                    "previous": self._entry_matching(old, spec, on_disk),
                }
                if sha != on_disk:
                    pending.append((_write_temp(self.path, spec.file, data), self.image_path(spec)))
            meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "memories": memories}
            meta_bytes = (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode()
            pending.insert(0, (_write_temp(self.path, META_FILE, meta_bytes), self.meta_path))
            # meta.json first: its "previous" entries describe the images until they are renamed
            for tmp, final in pending:
                os.replace(tmp, final)
                _fsync_dir(self.path)
        finally:
            for tmp, _final in pending:
                tmp.unlink(missing_ok=True)

    def _disk_sha(self, spec: MemorySpec) -> str | None:
        p = self.image_path(spec)
        try:
            if p.stat().st_size != spec.size:
                return None
            return _sha256(p.read_bytes())
        except OSError:
            return None

    @staticmethod
    def _entry_matching(old: dict | None, spec: MemorySpec, sha: str | None) -> dict | None:
        """The old entry (current or previous) that describes the image now on disk."""
        if old is None or sha is None:
            return None
        entry = old["memories"][spec.key]
        for candidate in (entry, entry.get("previous")):
            if candidate is not None and candidate["sha256"] == sha:
                return {"size": candidate["size"], "sha256": sha, "metadata": candidate["metadata"]}
        return None

    def _remove_stale_temps(self) -> None:
        """Temp files left by a save that was killed before it could clean up."""
        for name in (META_FILE, *(spec.file for spec in MEMORIES)):
            for stale in self.path.glob(f".{name}.*{_TMP_SUFFIX}"):
                stale.unlink(missing_ok=True)

    @staticmethod
    def _check_models(models: dict[str, PersistentMemory]) -> None:
        for spec in MEMORIES:
            size = len(models[spec.key].array)
            if size != spec.size:
                raise StateError(f"{spec.key} model has a {size}-byte array, {spec.file} holds {spec.size}")


# ================================================================================================
# importing and exporting images
# ================================================================================================
@dataclass
class MemoryRegion:
    """A memory image as the CPU sees it: ``array`` starts at bus address ``base``."""

    name: str
    base: int
    array: bytearray

    @property
    def end(self) -> int:
        return self.base + len(self.array)

    def contains(self, address: int, length: int) -> bool:
        return self.base <= address and address + length <= self.end


def load_image(array: bytearray, base: int, data: bytes, addr: int) -> None:
    """Copy ``data`` into ``array`` (which starts at bus address ``base``) at bus address ``addr``.

    A raw copy, as a factory programmer writing an erased part would leave it.
    """
    end = addr + len(data)
    if addr < base or end > base + len(array):
        raise ValueError(
            f"{len(data)} bytes at {addr:#010x}..{end - 1:#010x} do not fit in "
            f"{base:#010x}..{base + len(array) - 1:#010x}"
        )
    array[addr - base : end - base] = data


def read_image_segments(path: str | Path, bin_address: int | None = None) -> list[tuple[int, bytes]]:
    """(load address, bytes) of an ELF's loadable segments, or of a raw binary at ``bin_address``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e}") from None
    if data[:4] != b"\x7fELF":
        if bin_address is None:
            raise ValueError(f"{path}: not an ELF file; a raw binary needs a load address")
        return [(bin_address, data)]
    from io import BytesIO

    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(BytesIO(data))
        if elf["e_machine"] != "EM_ARM":
            raise ValueError(f"{path}: an ELF for {elf['e_machine']}, not for Arm")
        segments = []
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD" or seg["p_filesz"] == 0:
                continue
            body = seg.data()[: seg["p_filesz"]]
            if len(body) < seg["p_filesz"]:
                raise ValueError(
                    f"{path}: truncated ELF: segment at {seg['p_paddr']:#010x} needs {seg['p_filesz']} bytes, "
                    f"the file holds {len(body)}"
                )
            segments.append((seg["p_paddr"], body))
    except ELFError as e:
        raise ValueError(f"{path}: invalid ELF file: {e}") from None
    if not segments:
        raise ValueError(f"{path}: ELF file has no loadable segment with contents")
    return segments


def import_image(
    path: str | Path, regions: Sequence[MemoryRegion], bin_address: int | None = None
) -> list[tuple[str, int, int]]:
    """Load an ELF/.bin into the regions holding its segments; returns (region, address, length).

    Every segment is checked before anything is written: a segment outside all regions leaves
    every region unchanged.
    """
    plan = []
    for addr, data in read_image_segments(path, bin_address):
        region = next((r for r in regions if r.contains(addr, len(data))), None)
        if region is None:
            known = ", ".join(f"{r.name} {r.base:#010x}..{r.end - 1:#010x}" for r in regions)
            raise ValueError(
                f"{path}: segment {addr:#010x}..{addr + len(data) - 1:#010x} lies in no memory ({known})"
            )
        plan.append((region, addr, data))
    for region, addr, data in plan:
        load_image(region.array, region.base, data, addr)
    return [(region.name, addr, len(data)) for region, addr, data in plan]


def export_image(
    region: MemoryRegion, path: str | Path, address: int | None = None, length: int | None = None
) -> None:
    """Write ``length`` bytes of ``region`` from bus ``address`` (default: all of it) to a file."""
    start = region.base if address is None else address
    n = region.end - start if length is None else length
    if n < 0 or not region.contains(start, n):
        raise ValueError(
            f"{region.name}: {n} bytes at {start:#010x} outside {region.base:#010x}..{region.end - 1:#010x}"
        )
    atomic_write(path, region.array[start - region.base : start - region.base + n])
