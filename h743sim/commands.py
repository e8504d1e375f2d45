"""What each `h743sim` subcommand does (argument parsing is in :mod:`h743sim.cli`)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from h743sim.errors import UserError
from peripherals.host import NS_PER_S

QSPI_BASE = 0x90000000
FLASH_BASE = 0x08000000


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose == 0:
        # models log unmodelled registers once: interesting with -v, noise otherwise
        logging.getLogger("h743sim.model").setLevel(logging.ERROR)


def _echo(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)  # keeps UART lines clear of an active progress bar


def _board(args: argparse.Namespace, *, echo: bool = True, state: Path | None = None) -> Any:
    from h743sim.board import Board

    return Board(
        platform=args.platform,
        state_dir=state if state is not None else args.state,
        timing=args.timing,
        seed=args.seed,
        echo=_echo if echo else None,
    )


def dispatch(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
    handler = {
        "run": cmd_run,
        "demo": cmd_demo,
        "dfu": cmd_dfu,
        "serve": cmd_serve,
        "wear-map": cmd_wear_map,
        "state": cmd_state,
        "inject": cmd_inject,
        "bench": cmd_bench,
    }[args.command]
    return handler(args)


# -- run ------------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from h743sim.board import BOOT_ADDRESS, BoardError

    if args.until:
        try:
            re.compile(args.until)
        except re.error as exc:
            raise UserError(f"--until: bad regular expression: {exc}") from None
    board = _board(args)
    for elf in args.elf or ():
        loaded = board.load_firmware(elf)
        for region, addr, n in loaded:
            print(f"loaded {n} bytes at {addr:#010x} ({region})", file=sys.stderr)
    if args.gdb is None and board.boot_vector_erased():
        # an erased vector table only locks the core up at once: say what is missing instead
        where = f"the state directory {args.state}" if not args.elf else "the loaded ELF files"
        raise UserError(
            f"nothing to boot: the internal flash at {BOOT_ADDRESS:#010x} is erased "
            f"(no firmware in {where}); load one with --elf FILE"
        )
    if args.k2:
        board.k2.press()
    board.power_on()
    if args.k2:
        k2 = board.models["gpioPortC"].input_level(5)
        print(f"K2 held: PC5 reads {k2}", file=sys.stderr)
    if args.gdb is not None:
        from h743sim.debug_target import BoardDebugTarget
        from h743sim.gdbserver import GdbServer

        server = GdbServer(BoardDebugTarget(board, timeout_ns=int(args.timeout * NS_PER_S)), args.gdb)
        port = server.listen()
        print(f"GDB server listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        try:
            server.serve()
        finally:
            server.close()
        if not args.no_save:
            board.save()
        return 0
    status = 0
    try:
        if args.until:
            board.wait_for_line(args.until, args.timeout)
        else:
            board.run_for(args.timeout)
    except BoardError as exc:
        print(f"h743sim: {exc}", file=sys.stderr)
        status = 1
    if not args.no_save and board.powered is not None:
        board.save()
    return status


# -- demo -----------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from h743sim.dfu_session import DfuSession

    fw = Path(args.firmware_dir)
    boot = fw / "bootloader.elf"
    app = fw / "app_qspi.elf"
    for f in (boot, app):
        if not f.exists():
            raise UserError(f"{f}: missing; build the firmware with `make -C firmware`")
    t0 = time.monotonic()
    board = _board(args)
    print(f"== 1. factory-programming the bootloader into internal flash: {boot}")
    board.load_firmware(boot)
    print("== 2. power on with K2 held: the bootloader enters DFU mode")
    board.k2.press()
    board.power_on()
    board.wait_for_line(r"DFU ready", 5)
    print(f"== 3. DFU download of {app} into the W25Q64 (alt 1) over the virtual USB")
    session = DfuSession(board)
    session.download_file(app, progress=True)
    print("== 4. leave DFU; release K2; the board resets and boots the application in place")
    board.k2.release()
    session.leave()
    line = board.wait_for_line(r"APP running from 0x90000000", 10)
    board.wait_for_line(r"blink 3", 5)
    board.save()
    pc = board.machine.cpu_state()["pc"]
    elapsed = time.monotonic() - t0
    print(
        f"== done: '{line}' (PC={pc:#010x}, executing in place from the QSPI window); "
        f"LED toggled {board.led.toggles()} times; virtual time {board.machine.now_ns() / NS_PER_S:.3f} s, "
        f"wall {elapsed:.1f} s; state saved in {args.state}"
    )
    return 0


# -- dfu ------------------------------------------------------------------------------------------
def _boot_in_dfu_mode(board: Any, state: Path) -> None:
    """Power on with K2 held and wait for the bootloader's DFU mode."""
    if board.boot_vector_erased():
        raise UserError(
            f"no bootloader in {state}: the internal flash at 0x08000000 is erased "
            "(put one there with `h743sim run --elf firmware/build/bootloader.elf --state DIR`)"
        )
    board.k2.press()
    board.power_on()
    board.wait_for_line(r"DFU ready", 5)


def cmd_dfu(args: argparse.Namespace) -> int:
    from h743sim.dfu_session import DfuSession

    board = _board(args, echo=args.verbose > 0)
    _boot_in_dfu_mode(board, args.state)
    session = DfuSession(board)
    action = args.dfu_command
    if action == "list":
        for line in session.describe():
            print(line)
    elif action == "download":
        session.download_file(
            args.file, address=args.address, alt=args.alt, mass_erase=args.mass_erase, progress=True
        )
        if args.leave:
            board.k2.release()
            session.leave()
    elif action == "upload":
        data = session.upload(args.address, args.length, progress=True)
        args.file.write_bytes(data)
        print(f"uploaded {len(data)} bytes from {args.address:#010x} to {args.file}")
    elif action == "erase":
        if args.mass:
            session.mass_erase(args.alt if args.alt is not None else 1)
        elif args.address is None:
            raise UserError("dfu erase: give --address ADDRESS or --mass")
        else:
            start, size = session.erase(args.address)
            print(f"erased {size} bytes at {start:#010x}")
    elif action == "leave":
        board.k2.release()
        session.leave()
    board.save()
    return 0


# -- serve ----------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    import threading

    from h743sim.usb.dispatch import LinkDispatcher
    from h743sim.usb.usbip_server import UsbipServer

    board = _board(args)
    _boot_in_dfu_mode(board, args.state)
    dispatcher = LinkDispatcher(board.usb)
    stop = threading.Event()
    with UsbipServer([dispatcher.proxy()], port=args.port) as server:
        print(
            f"USB/IP: exporting 0483:df11 as busid {server.busids[0]} on 127.0.0.1:{server.port} "
            "(Ctrl-C to stop; `usbip attach -r 127.0.0.1 -b BUSID` on a host with vhci-hcd)",
            flush=True,
        )
        try:
            dispatcher.serve_forever(stop, idle=lambda: board.run_for_ns(1_000_000))
        except KeyboardInterrupt:
            stop.set()
    board.save()
    return 0


# -- state, inject, wear-map ----------------------------------------------------------------------
def _offline_memories(state: Path) -> tuple[Any, Any, Any]:
    """The two memory models loaded from a state directory, without a board or CPU."""
    from h743sim.storage import StateDir, StateError
    from peripherals.flash_interface import FlashInterface
    from peripherals.standalone_host import StandaloneHost
    from peripherals.w25q64 import W25Q64

    if not (state / "meta.json").exists():
        raise UserError(f"{state}: not a board state directory (no meta.json)")
    host = StandaloneHost()
    flash = FlashInterface(host)
    qspi = W25Q64(host)
    sd = StateDir(state)
    try:
        sd.load_into(flash, qspi)
    except StateError as exc:
        raise UserError(str(exc)) from None
    return sd, flash, qspi


def cmd_state(args: argparse.Namespace) -> int:
    _sd, flash, qspi = _offline_memories(args.state)
    q_used = [i for i, c in enumerate(qspi.erase_counts) if c]
    print(f"state directory {args.state}")
    print(
        f"  W25Q64: {len(qspi.array)} bytes, endurance {qspi.endurance}, {len(q_used)} sectors erased at least "
        f"once, max {max(qspi.erase_counts)} erases, stuck bits {len(qspi.stuck_bits)}"
    )
    print(
        f"  internal flash: {len(flash.array)} bytes, endurance {flash.endurance}, erase counts "
        f"{flash.erase_counts}, ECC errors {len(flash.ecc_errors)}"
    )
    return 0


def cmd_inject(args: argparse.Namespace) -> int:
    sd, flash, qspi = _offline_memories(args.state)
    # A negative count would be saved, and meta.json then refuses to load (counts are >= 0).
    if args.fault == "wear" and args.cycles < 1:
        raise UserError(f"--cycles must be at least 1, got {args.cycles}")
    if args.fault == "wear":
        if args.memory == "qspi":
            off = _offset(args.address, QSPI_BASE, len(qspi.array))
            qspi.erase_counts[off // 4096] += args.cycles
            what = f"W25Q64 sector {off // 4096} now at {qspi.erase_counts[off // 4096]} erases"
        else:
            off = _offset(args.address, FLASH_BASE, len(flash.array))
            flash.erase_counts[off // 0x20000] += args.cycles
            what = f"flash sector {off // 0x20000} now at {flash.erase_counts[off // 0x20000]} erases"
    elif args.fault == "stuck-bit":
        mem = qspi if args.memory == "qspi" else flash
        base = QSPI_BASE if args.memory == "qspi" else FLASH_BASE
        off = _offset(args.address, base, len(mem.array))
        mem.inject_stuck_bit(off if args.memory == "qspi" else args.address, args.bit, args.value)
        what = f"{args.memory} bit {args.bit} at {args.address:#010x} stuck at {args.value}"
    else:
        _offset(args.address, FLASH_BASE, len(flash.array))
        flash.inject_ecc_error(args.address, double=args.double)
        what = f"{'double' if args.double else 'single'}-bit ECC error at {args.address:#010x}"
    sd.save_from(flash, qspi)
    print(what)
    return 0


def _offset(address: int, base: int, size: int) -> int:
    if not base <= address < base + size:
        raise UserError(f"address {address:#010x} is outside {base:#010x}..{base + size - 1:#010x}")
    return address - base


def cmd_wear_map(args: argparse.Namespace) -> int:
    from h743sim.wear_map import render

    _sd, flash, qspi = _offline_memories(args.state)
    render(qspi.erase_counts, qspi.endurance, flash.erase_counts, flash.endurance, args.output)
    print(f"wrote {args.output}")
    return 0


# -- bench ----------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from h743sim import bench

    which = {"cpu", "storage", "dfu"} if "all" in args.which else set(args.which)
    for name in ("cpu", "storage", "dfu"):
        if name in which:
            for line in getattr(bench, f"bench_{name}")():
                print(line, flush=True)
    return 0
