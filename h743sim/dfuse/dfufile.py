"""DFU files: ST DfuSe v1 (.dfu, UM0391) and plain binaries with a DFU suffix (FACTS.md §F.9).

DfuSe layout, little-endian::

    prefix   "DfuSe" | bVersion=1 | DFUImageSize (u32, file length without the suffix) | bTargets
    target   "Target" | bAlternateSetting | bTargetNamed (u32) | szTargetName[255] | dwTargetSize | dwNbElements
    element  dwElementAddress | dwElementSize | data
    suffix   bcdDevice | idProduct | idVendor | bcdDFU=0x011A | "UFD" | bLength=16 | dwCRC

dwCRC is the reflected CRC-32 (poly 0xEDB88320, init 0xFFFFFFFF, no final inversion) of every byte
before it. A plain DFU file is any payload followed by the same 16-byte suffix with another bcdDFU;
dfu-util's ``dfu-prefix`` may also put a TI Stellaris (8-byte) or NXP LPC (16-byte) prefix in front.
Every malformed file raises :class:`DfuFileError` naming what is wrong; nothing is guessed.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from h743sim.errors import UserError

DFUSE_SIGNATURE = b"DfuSe"
DFUSE_VERSION = 1
TARGET_SIGNATURE = b"Target"
SUFFIX_SIGNATURE = b"UFD"  # stored in the file as 'U','F','D' (the spec's "DFU" reversed)
SUFFIX_LENGTH = 16
BCD_DFUSE = 0x011A
BCD_DFU_1_1 = 0x0110
ST_VENDOR_ID = 0x0483
ST_DFU_PRODUCT_ID = 0xDF11

_PREFIX = struct.Struct("<5sBIB")  # 11 bytes
_TARGET = struct.Struct("<6sBI255sII")  # 274 bytes
_ELEMENT = struct.Struct("<II")  # 8 bytes
_SUFFIX = struct.Struct("<HHHH3sBI")  # 16 bytes
TARGET_NAME_SIZE = 255
STELLARIS_PREFIX_LENGTH = 8
LPC_PREFIX_LENGTH = 16


class DfuFileError(UserError, ValueError):
    """A DFU file that is malformed or cannot be represented."""


def dfu_crc(data: bytes) -> int:
    """DFU suffix CRC: zlib's CRC-32 without its final inversion (check value 0x340BC6D9)."""
    return ~zlib.crc32(data) & 0xFFFFFFFF


@dataclass
class DfuSuffix:
    """The 16-byte DFU suffix. ``0xFFFF`` in an id field means 'any' (dfu-util's wildcard)."""

    bcd_device: int = 0x0000
    id_product: int = ST_DFU_PRODUCT_ID
    id_vendor: int = ST_VENDOR_ID
    bcd_dfu: int = BCD_DFUSE
    length: int = SUFFIX_LENGTH
    crc: int | None = None  # as read from a file; computed on write

    def pack(self, body: bytes) -> bytes:
        """The suffix for a file whose bytes before the suffix are ``body``."""
        for name in ("bcd_device", "id_product", "id_vendor", "bcd_dfu"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFFFF:
                raise DfuFileError(f"suffix field {name} = {value:#x} does not fit in 16 bits")
        head = _SUFFIX.pack(
            self.bcd_device, self.id_product, self.id_vendor, self.bcd_dfu, SUFFIX_SIGNATURE, SUFFIX_LENGTH, 0
        )[:-4]
        return head + struct.pack("<I", dfu_crc(body + head))


def split_suffix(data: bytes) -> tuple[bytes, DfuSuffix]:
    """Check the DFU suffix of a whole file and return (bytes before the suffix, suffix)."""
    if len(data) < SUFFIX_LENGTH:
        raise DfuFileError(f"file is {len(data)} bytes, too short for the {SUFFIX_LENGTH}-byte DFU suffix")
    bcd_device, pid, vid, bcd_dfu, sig, length, crc = _SUFFIX.unpack_from(data, len(data) - SUFFIX_LENGTH)
    if sig != SUFFIX_SIGNATURE:
        raise DfuFileError(
            f"no DFU suffix: signature bytes are {sig!r}, expected {SUFFIX_SIGNATURE!r} 16 bytes before the end"
        )
    computed = dfu_crc(data[:-4])
    if crc != computed:
        raise DfuFileError(f"DFU suffix CRC mismatch: file says 0x{crc:08X}, contents give 0x{computed:08X}")
    if length < SUFFIX_LENGTH:
        raise DfuFileError(f"DFU suffix bLength is {length}, below the minimum of {SUFFIX_LENGTH}")
    if length > len(data):
        raise DfuFileError(f"DFU suffix bLength {length} is larger than the whole file ({len(data)} bytes)")
    suffix = DfuSuffix(bcd_device, pid, vid, bcd_dfu, length, crc)
    return data[: len(data) - length], suffix


@dataclass
class DfuElement:
    """One contiguous block of bytes to place at ``address``."""

    address: int
    data: bytes

    @property
    def end(self) -> int:
        return self.address + len(self.data)

    def __post_init__(self) -> None:
        self.data = bytes(self.data)
        if not 0 <= self.address <= 0xFFFFFFFF:
            raise DfuFileError(f"element address {self.address:#x} does not fit in 32 bits")
        if self.end > 1 << 32:
            raise DfuFileError(
                f"element at 0x{self.address:08X} of {len(self.data)} bytes runs past the 4 GB address space"
            )


@dataclass
class DfuTarget:
    """The images for one alternate setting."""

    alt_setting: int
    name: str = ""
    elements: list[DfuElement] = field(default_factory=list)

    @property
    def named(self) -> bool:
        return bool(self.name)

    def pack(self) -> bytes:
        if not 0 <= self.alt_setting <= 0xFF:
            raise DfuFileError(f"alternate setting {self.alt_setting} does not fit in a byte")
        name = self.name.encode("latin-1", errors="strict") if self.name else b""
        if len(name) >= TARGET_NAME_SIZE:
            raise DfuFileError(f"target name is {len(name)} bytes; at most {TARGET_NAME_SIZE - 1} fit")
        body = b"".join(_ELEMENT.pack(e.address, len(e.data)) + e.data for e in self.elements)
        head = _TARGET.pack(
            TARGET_SIGNATURE, self.alt_setting, 1 if name else 0, name, len(body), len(self.elements)
        )
        return head + body


@dataclass
class DfuFile:
    """A DfuSe v1 file: targets (one per alternate setting) plus the suffix's device identity."""

    targets: list[DfuTarget] = field(default_factory=list)
    id_vendor: int = ST_VENDOR_ID
    id_product: int = ST_DFU_PRODUCT_ID
    bcd_device: int = 0x0000

    def to_bytes(self) -> bytes:
        if len(self.targets) > 0xFF:
            raise DfuFileError(f"{len(self.targets)} targets; a DfuSe file holds at most 255")
        body = b"".join(t.pack() for t in self.targets)
        prefix = _PREFIX.pack(DFUSE_SIGNATURE, DFUSE_VERSION, _PREFIX.size + len(body), len(self.targets))
        whole = prefix + body
        suffix = DfuSuffix(self.bcd_device, self.id_product, self.id_vendor, BCD_DFUSE)
        return whole + suffix.pack(whole)

    @classmethod
    def from_bytes(cls, data: bytes) -> DfuFile:
        body, suffix = split_suffix(bytes(data))
        if not body.startswith(DFUSE_SIGNATURE):
            raise DfuFileError(
                f"not a DfuSe file: it starts with {body[:5]!r}, expected {DFUSE_SIGNATURE!r}"
                + (" although the suffix says bcdDFU 0x011A" if suffix.bcd_dfu == BCD_DFUSE else "")
            )
        return _parse_dfuse(body, suffix)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> DfuFile:
        return cls.from_bytes(_read(path))

    def write(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_bytes(self.to_bytes())

    @property
    def elements(self) -> list[tuple[int, DfuElement]]:
        """Every element with the alternate setting of its target."""
        return [(t.alt_setting, e) for t in self.targets for e in t.elements]


@dataclass
class DfuPrefix:
    """A vendor prefix that dfu-util's dfu-prefix puts in front of a plain payload."""

    kind: str  # "stellaris" or "lpc"
    raw: bytes
    address: int | None = None  # Stellaris: load address (a multiple of 1 KB)


@dataclass
class RawDfuFile:
    """A plain payload with a DFU suffix (not DfuSe): it has no addresses of its own."""

    payload: bytes
    suffix: DfuSuffix
    prefix: DfuPrefix | None = None

    def to_bytes(self) -> bytes:
        body = (self.prefix.raw if self.prefix else b"") + self.payload
        suffix = DfuSuffix(
            self.suffix.bcd_device, self.suffix.id_product, self.suffix.id_vendor, self.suffix.bcd_dfu
        )
        return body + suffix.pack(body)


def parse_dfu_bytes(data: bytes) -> DfuFile | RawDfuFile:
    """A whole file with a DFU suffix: DfuSe when it starts with 'DfuSe', else a plain payload."""
    body, suffix = split_suffix(bytes(data))
    if body.startswith(DFUSE_SIGNATURE):
        return _parse_dfuse(body, suffix)
    if suffix.bcd_dfu == BCD_DFUSE:
        raise DfuFileError(
            f"the suffix says DfuSe (bcdDFU 0x011A) but the file starts with {body[:5]!r}, not {DFUSE_SIGNATURE!r}"
        )
    prefix = _probe_prefix(body)
    payload = body[len(prefix.raw) :] if prefix else body
    return RawDfuFile(payload=payload, suffix=suffix, prefix=prefix)


def read_dfu_file(path: str | os.PathLike[str]) -> DfuFile | RawDfuFile:
    return parse_dfu_bytes(_read(path))


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DfuFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _probe_prefix(body: bytes) -> DfuPrefix | None:
    # dfu-util's probe_prefix, plus a length check for Stellaris so a raw image that happens to begin
    # with 01 00 is not taken for one.
    if len(body) >= STELLARIS_PREFIX_LENGTH and body[0] == 0x01 and body[1] == 0x00:
        length = int.from_bytes(body[4:8], "little")
        if length == len(body) - STELLARIS_PREFIX_LENGTH:
            address = 1024 * int.from_bytes(body[2:4], "little")
            return DfuPrefix("stellaris", body[:STELLARIS_PREFIX_LENGTH], address)
    if len(body) >= LPC_PREFIX_LENGTH and (body[0] & 0x3F) == 0x1A and (body[1] & 0x3F) == 0x3F:
        return DfuPrefix("lpc", body[:LPC_PREFIX_LENGTH])
    return None


def _parse_dfuse(body: bytes, suffix: DfuSuffix) -> DfuFile:
    if suffix.length != SUFFIX_LENGTH:
        raise DfuFileError(f"DfuSe suffix bLength is {suffix.length}, DfuSe requires exactly {SUFFIX_LENGTH}")
    if suffix.bcd_dfu != BCD_DFUSE:
        raise DfuFileError(
            f"DfuSe file whose suffix says bcdDFU 0x{suffix.bcd_dfu:04X}; DfuSe requires 0x011A"
        )
    if len(body) < _PREFIX.size:
        raise DfuFileError(
            f"truncated DfuSe prefix: {len(body)} bytes before the suffix, need {_PREFIX.size}"
        )
    _sig, version, image_size, n_targets = _PREFIX.unpack_from(body, 0)
    if version != DFUSE_VERSION:
        raise DfuFileError(f"unsupported DfuSe version {version} (only version {DFUSE_VERSION} exists)")
    if image_size != len(body):
        raise DfuFileError(
            f"DfuSe prefix DFUImageSize is {image_size} but the file holds {len(body)} bytes before its suffix"
        )
    pos = _PREFIX.size
    targets: list[DfuTarget] = []
    for index in range(n_targets):
        if pos + _TARGET.size > len(body):
            raise DfuFileError(
                f"truncated target {index}: its {_TARGET.size}-byte prefix needs bytes {pos}..{pos + _TARGET.size - 1}"
                f" but the image ends at {len(body)} ({n_targets} targets announced)"
            )
        sig, alt, named, raw_name, target_size, n_elements = _TARGET.unpack_from(body, pos)
        if sig != TARGET_SIGNATURE:
            raise DfuFileError(
                f"target {index} at offset {pos} starts with {sig!r}, expected {TARGET_SIGNATURE!r}"
            )
        pos += _TARGET.size
        if pos + target_size > len(body):
            raise DfuFileError(
                f"target {index} (alt {alt}) says dwTargetSize {target_size} but only {len(body) - pos} bytes remain"
            )
        end = pos + target_size
        elements: list[DfuElement] = []
        for e in range(n_elements):
            if pos + _ELEMENT.size > end:
                raise DfuFileError(
                    f"target {index} (alt {alt}): element {e} header runs past dwTargetSize {target_size}"
                    f" ({n_elements} elements announced)"
                )
            address, size = _ELEMENT.unpack_from(body, pos)
            pos += _ELEMENT.size
            if pos + size > end:
                raise DfuFileError(
                    f"target {index} (alt {alt}): element {e} at 0x{address:08X} says {size} bytes but only "
                    f"{end - pos} remain in the target"
                )
            elements.append(DfuElement(address, body[pos : pos + size]))
            pos += size
        if pos != end:
            raise DfuFileError(
                f"target {index} (alt {alt}): dwTargetSize {target_size} but its {n_elements} elements take "
                f"{target_size - (end - pos)} bytes"
            )
        name = raw_name.split(b"\x00", 1)[0].decode("latin-1") if named else ""
        targets.append(DfuTarget(alt, name, elements))
    if pos != len(body):
        raise DfuFileError(
            f"{len(body) - pos} unexpected bytes after the last of {n_targets} targets (offset {pos})"
        )
    return DfuFile(targets, suffix.id_vendor, suffix.id_product, suffix.bcd_device)
