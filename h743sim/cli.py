"""The `h743sim` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from h743sim import __version__
from h743sim.errors import UserError


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return v


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit status 2), pointing at --help instead of the
    multi-line usage text; subcommand parsers inherit it (argparse creates them with this class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _board_options(p: argparse.ArgumentParser, *, after_action: bool = False) -> None:
    """The options that say which board to use. ``after_action``: the same options once more on an
    action's parser, so `h743sim dfu download FILE --state DIR` works as well as `h743sim dfu --state
    DIR download FILE`; they have no defaults there (SUPPRESS), so they only override when given."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if after_action else value

    shown = "" if after_action else " [default: %(default)s]"
    p.add_argument(
        "--state",
        type=Path,
        default=default(Path("state/board")),
        metavar="DIR",
        help="board state directory (flash images + wear metadata; created erased if missing)" + shown,
    )
    p.add_argument(
        "--timing",
        choices=("datasheet", "fast"),
        default=default("datasheet"),
        help="flash operation times: datasheet typical values in virtual time, or instant",
    )
    p.add_argument("--seed", type=_int, default=default(0), help="seed for deterministic wear failures")
    p.add_argument("--platform", type=Path, default=default(None), help="board description (.repl)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="h743sim",
        description="Virtual STM32H743 DevEBox board (W25Q64 QSPI NOR) running a USB DFU bootloader.",
    )
    parser.add_argument("--version", action="version", version=f"h743sim {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # run ---------------------------------------------------------------------------------
    p = sub.add_parser(
        "run",
        help="boot the board and stream USART1 to stdout",
        description="Boot the board from the firmware in the state directory's flash image (or from "
        "--elf, loaded into flash first) and stream USART1 to stdout.",
    )
    _board_options(p)
    p.add_argument(
        "--elf",
        type=Path,
        action="append",
        help="load this firmware ELF into the board's memories first (repeatable: e.g. the "
        "bootloader and an application)",
    )
    p.add_argument("--k2", action="store_true", help="hold K2 (PC5 low) through reset")
    p.add_argument("--until", metavar="REGEX", help="exit 0 as soon as a UART line matches REGEX")
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="virtual seconds to run before giving up [default: %(default)s]",
    )
    p.add_argument("--gdb", type=int, metavar="PORT", help="serve the GDB remote protocol on 127.0.0.1:PORT")
    p.add_argument("--no-save", action="store_true", help="do not write the state directory back")

    # demo --------------------------------------------------------------------------------
    p = sub.add_parser(
        "demo",
        help="the main job: DFU-download the sample app into QSPI and boot it in place",
        description="Put the bootloader into internal flash, boot with K2 held, download the XIP sample "
        "application into the W25Q64 over USB DFU, reset without K2, show the application running "
        "from 0x90000000.",
    )
    _board_options(p)
    p.set_defaults(state=Path("state/demo"))
    p.add_argument("--firmware-dir", type=Path, default=Path("firmware/build"), help="built firmware")

    # dfu ---------------------------------------------------------------------------------
    p = sub.add_parser(
        "dfu",
        help="DfuSe operations on the virtual board (boots it with K2 held, saves the state after)",
        description="One-shot DfuSe operations: boot the board from the state directory with K2 held, "
        "run the transfer in-process over the virtual USB, save the state.",
    )
    _board_options(p)
    dsub = p.add_subparsers(dest="dfu_command", metavar="ACTION", required=True)
    dsub.add_parser("list", help="list the DFU device and its alternate settings")
    d = dsub.add_parser("download", help="download a .dfu, .bin (with --address) or .elf file")
    d.add_argument("file", type=Path, help="DfuSe .dfu file, raw .bin (give --address) or ELF")
    d.add_argument("--address", type=_int, help="load address for a raw .bin")
    d.add_argument("--alt", type=int, help="alternate setting (default: chosen from the address)")
    d.add_argument("--mass-erase", action="store_true", help="mass erase the target memory first")
    d.add_argument("--leave", action="store_true", help="leave DFU mode (reset) after the download")
    d = dsub.add_parser("upload", help="read memory into a file")
    d.add_argument("file", type=Path, help="where to write the bytes read")
    d.add_argument("--address", type=_int, required=True, help="first address (e.g. 0x90000000)")
    d.add_argument("--length", type=_int, required=True, help="number of bytes")
    d = dsub.add_parser("erase", help="erase the sector containing ADDRESS, or everything with --mass")
    d.add_argument("--address", type=_int, help="an address inside the sector to erase")
    d.add_argument(
        "--mass",
        action="store_true",
        help="erase every writable sector of the memory chosen by --alt (default 1: QSPI)",
    )
    d.add_argument("--alt", type=int, default=None)
    dsub.add_parser("leave", help="leave DFU mode (zero-length DNLOAD, then the board resets)")
    for action in dsub.choices.values():
        _board_options(action, after_action=True)

    # serve -------------------------------------------------------------------------------
    p = sub.add_parser("serve", help="export the board's USB device over USB/IP on 127.0.0.1")
    _board_options(p)
    p.add_argument("--usbip", action="store_true", required=True, help="serve USB/IP (the only transport)")
    p.add_argument("--port", type=int, default=3240, help="TCP port [default: %(default)s]")
    p.add_argument("--k2", action="store_true", default=True, help=argparse.SUPPRESS)

    # wear-map ----------------------------------------------------------------------------
    p = sub.add_parser("wear-map", help="draw erase counts per sector of both memories as a PNG heat map")
    p.add_argument("--state", type=Path, default=Path("state/board"), metavar="DIR")
    p.add_argument("-o", "--output", type=Path, default=Path("wear.png"))

    # inject / state ----------------------------------------------------------------------
    p = sub.add_parser("state", help="inspect a state directory (sizes, erase counts, injected faults)")
    p.add_argument("--state", type=Path, default=Path("state/board"), metavar="DIR")
    p = sub.add_parser("inject", help="inject a fault into a state directory's memories")
    p.add_argument("--state", type=Path, default=Path("state/board"), metavar="DIR")
    isub = p.add_subparsers(dest="fault", metavar="FAULT", required=True)
    i = isub.add_parser("wear", help="add erase cycles to a sector (to reach or pass its endurance)")
    i.add_argument("memory", choices=("qspi", "flash"))
    i.add_argument("--address", type=_int, required=True, help="address in the memory (e.g. 0x90001000)")
    i.add_argument("--cycles", type=_int, required=True)
    i = isub.add_parser("stuck-bit", help="a bit that stays at VALUE whatever is programmed or erased")
    i.add_argument("memory", choices=("qspi", "flash"))
    i.add_argument("--address", type=_int, required=True)
    i.add_argument("--bit", type=int, required=True, choices=range(8))
    i.add_argument("--value", type=int, required=True, choices=(0, 1))
    i = isub.add_parser("ecc", help="an ECC error on the internal flash word at ADDRESS")
    i.add_argument("--address", type=_int, required=True)
    i.add_argument("--double", action="store_true", help="double-bit (uncorrectable) instead of single")

    # bench -------------------------------------------------------------------------------
    p = sub.add_parser("bench", help="measure emulation speed (MIPS), flash and DFU throughput")
    p.add_argument(
        "which", nargs="*", default=["cpu"], choices=("cpu", "storage", "dfu", "all"), help="which benchmarks"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from h743sim import commands  # heavy imports only after the arguments are valid

    try:
        return commands.dispatch(args)
    except UserError as exc:
        print(f"h743sim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("h743sim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
