"""Reading the board description (`platforms/devebox_h743.repl`, Renode platform syntax).

The embedded engine reads the subset of the .repl syntax the board file uses:

    name: Class.Name @ sysbus 0x40011000           # registration at an address
    name: Class.Name @ sysbus <0x90000000, +0x800000>   # address and size
    name: Class.Name @ qspi                         # a device on another peripheral's bus
        property: value                             # indented properties (numbers, "strings", bools)
        IRQ -> nvic@37                              # interrupt connection
        DmaRequest -> mdma@22                       # output of this model -> input 22 of another

Models Renode does not have (or that replace Renode's) are declared in tagged comment lines,
``//h743sim: <an entry in the same syntax>``: Renode ignores them as comments, while this parser
and the Renode adapter read them. Their class is ``Python.<module>.<Class>``.

A connection whose target is not ``nvic`` links two of our models (see
:func:`h743sim.board_models.build_models`): the named output of the entry's model drives input
``N`` of the target model (``DmaRequest -> mdma@22``: the QUADSPI FIFO-threshold request into
MDMA request line 22).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

TAG = "//h743sim:"
DEFAULT_PLATFORM = Path(__file__).resolve().parent.parent / "platforms" / "devebox_h743.repl"


class PlatformError(Exception):
    """A .repl file this parser cannot accept; the message names file and line."""


@dataclass
class Entry:
    name: str
    cls: str
    bus: str | None  # "sysbus", another entry's name, or None (not on a bus)
    address: int | None
    size: int | None
    properties: dict[str, object] = field(default_factory=dict)
    irqs: list[tuple[str, str, int]] = field(default_factory=list)  # (source, target, line)
    tagged: bool = False
    line: int = 0

    @property
    def connections(self) -> list[tuple[str, str, int]]:
        """Model-to-model lines (output, target entry, input number): targets other than nvic."""
        return [c for c in self.irqs if c[1] != "nvic"]

    @property
    def python_class(self) -> str | None:
        """``module.Class`` when the entry names a CPython model (``Python.module.Class``)."""
        if self.cls.startswith("Python.") and self.cls.count(".") >= 2:
            return self.cls[len("Python.") :]
        return None


@dataclass
class Platform:
    path: Path
    entries: dict[str, Entry]

    def __getitem__(self, name: str) -> Entry:
        return self.entries[name]

    def on_sysbus(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.bus == "sysbus"]


_ENTRY = re.compile(r"^(?P<name>[A-Za-z_][\w]*)\s*:\s*(?P<cls>[A-Za-z_][\w.]*)\s*(?:@\s*(?P<reg>.+?))?\s*$")
_REG = re.compile(
    r"^(?P<bus>[A-Za-z_]\w*)(?:\s+(?:(?P<addr>0x[0-9A-Fa-f]+|\d+)|"
    r"<\s*(?P<base>0x[0-9A-Fa-f]+|\d+)\s*,\s*\+\s*(?P<size>0x[0-9A-Fa-f]+|\d+)\s*>))?$"
)
_PROP = re.compile(r"^(?P<key>[A-Za-z_]\w*)\s*:\s*(?P<value>.+?)\s*$")
_IRQ = re.compile(r"^(?P<src>[A-Za-z_]\w*|\d+)?\s*->\s*(?P<target>[A-Za-z_]\w*)\s*@\s*(?P<line>\d+)\s*$")


def _value(text: str, where: str) -> object:
    t = text.strip()
    if t.startswith('"') and t.endswith('"') and len(t) >= 2:
        return t[1:-1]
    if t in ("true", "false"):
        return t == "true"
    try:
        return int(t, 0)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z_]\w*", t):
        return t  # a reference to another entry (e.g. `nvic: nvic`)
    raise PlatformError(f"{where}: cannot read value {t!r}")


def parse_platform(path: Path | str = DEFAULT_PLATFORM) -> Platform:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlatformError(f"{path}: cannot read platform file: {exc.strerror}") from None
    return parse_platform_text(text, path)


def parse_platform_text(text: str, path: Path | str = "<text>") -> Platform:
    path = Path(path)
    entries: dict[str, Entry] = {}
    current: Entry | None = None
    current_tagged = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        where = f"{path}:{lineno}"
        line = raw.rstrip()
        tagged = False
        stripped = line.lstrip()
        if stripped.startswith(TAG):
            tagged = True
            body = stripped[len(TAG) :].rstrip()
            # one space separates the tag from the entry; more spaces mean "indented property"
            line = body[1:] if body.startswith(" ") else body
            if not line.strip():
                continue
        else:
            if "//" in line:
                line = line[: line.index("//")].rstrip()
        if not line.strip():
            continue
        if line.lstrip().startswith("using "):
            raise PlatformError(
                f"{where}: 'using' is not supported: the board description must be self-contained"
            )
        if line[0] not in " \t":
            m = _ENTRY.match(line)
            if not m:
                raise PlatformError(f"{where}: expected 'name: Class @ bus address', got {raw.strip()!r}")
            bus = addr = size = None
            reg = m.group("reg")
            if reg:
                r = _REG.match(reg.strip())
                if not r:
                    raise PlatformError(f"{where}: cannot read registration {reg!r}")
                bus = r.group("bus")
                if r.group("addr"):
                    addr = int(r.group("addr"), 0)
                elif r.group("base"):
                    addr = int(r.group("base"), 0)
                    size = int(r.group("size"), 0)
            name = m.group("name")
            if name in entries:
                raise PlatformError(
                    f"{where}: '{name}' is declared twice (first on line {entries[name].line})"
                )
            current = Entry(name, m.group("cls"), bus, addr, size, tagged=tagged, line=lineno)
            current_tagged = tagged
            entries[name] = current
            continue
        # indented: a property or an IRQ connection of the current entry
        if current is None:
            raise PlatformError(f"{where}: property outside of any entry: {raw.strip()!r}")
        if tagged != current_tagged and not tagged:
            # an untagged property can extend a tagged entry only if Renode would accept it: refuse
            raise PlatformError(f"{where}: property of tagged entry '{current.name}' must be tagged too")
        body = line.strip()
        mi = _IRQ.match(body)
        if mi:
            current.irqs.append((mi.group("src") or "IRQ", mi.group("target"), int(mi.group("line"))))
            continue
        mp = _PROP.match(body)
        if not mp:
            raise PlatformError(f"{where}: cannot read property line {raw.strip()!r}")
        current.properties[mp.group("key")] = _value(mp.group("value"), where)
    for e in entries.values():
        if e.bus is not None and e.bus != "sysbus" and e.bus not in entries:
            raise PlatformError(f"{path}:{e.line}: '{e.name}' is attached to unknown bus '{e.bus}'")
        for _src, target, _n in e.irqs:
            if target not in entries:
                raise PlatformError(f"{path}:{e.line}: '{e.name}' connects an IRQ to unknown '{target}'")
    return Platform(path, entries)
