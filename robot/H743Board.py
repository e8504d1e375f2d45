"""Robot Framework keywords for the virtual STM32H743 DevEBox board (see the class docstring)."""

from __future__ import annotations

import re
from pathlib import Path

from board_session import (
    REQUEST_CODES,
    BoardFailure,
    BoardSession,
    EngineUnavailable,
    build_dfuse_file,
    choose_engine,
    describe_status,
    engine_missing_reason,
    memory_named,
    parse_hex_bytes,
    request_code,
)
from robot.api import SkipExecution, logger
from robot.api.deco import keyword, library

from h743sim.dfuse.client import DfuStatus, state_name, status_name
from h743sim.errors import UserError
from peripherals.host import NS_PER_MS, NS_PER_S

__version__ = "1.0"


@library(scope="SUITE", version=__version__, doc_format="ROBOT")
class H743Board:
    """Drives one virtual DevEBox STM32H743 board (W25Q64 QSPI NOR, DfuSe bootloader).

    = Engines =

    The engine is chosen by the library argument ``engine`` or, when it is not given, by the
    ``ENGINE`` environment variable: ``embedded`` (default: the unicorn-based engine of h743sim)
    or ``renode`` (the Renode host adapter of ``h743sim/renode``). When Renode is not usable here,
    `Require Engine` and `Create Board` stop at once with one line saying what is missing, and the
    suite is reported SKIPPED with that reason.

    = Time =

    Every wait and duration is in *virtual* seconds of the board (time advances with the executed
    instructions and jumps over sleeps and flash operations), never wall-clock time. Flash operations
    take their datasheet times with the ``datasheet`` timing profile; the ``fast`` profile makes them
    instant, for tests that are about logic only.

    = Keyword names =

    Keywords that mean the same as in Renode's own Robot library keep Renode's names
    (`Reset Emulation`, `Start Emulation`, `Create Terminal Tester`, `Wait For Line On Uart`,
    `Write Line To Uart`, `Should Not Be On Uart`, `PC Should Be Equal`); the others are this board's.

    = Addresses and memories =

    Addresses are bus addresses and accept ``0x`` hex. ``memory`` arguments are ``internal`` (the
    2 MiB internal flash at 0x08000000, 128 KiB sectors) or ``qspi`` (the 8 MiB W25Q64 at
    0x90000000, 4 KiB sectors).

    = Failures =

    A failing keyword says what went wrong, then the virtual time, the CPU registers and the last
    UART lines of the board.

    = DFU =

    DFU keywords talk to the board's USB device through pyusb and the h743sim DfuSe client, as a
    host program would. The device must be in DFU mode (its UART says ``DFU ready``). The client
    checks every range against the device's layout strings before it sends anything and clears
    device errors before it fails; to show what the *device* does with a bad request, use
    ``host_checks=False`` (errors are then left in place for `DFU Status Should Be`),
    `DFU Send Command` or `DFU Request Should Stall`.
    """

    def __init__(self, engine: str | None = None) -> None:
        """``engine``: ``embedded`` or ``renode``; when empty the ``ENGINE`` environment variable
        decides, and without it the embedded engine is used."""
        self._engine_arg = engine or None
        self._session: BoardSession | None = None
        self._uart_timeout = 5.0

    # ==================================================================================== engine
    def _engine(self) -> str:
        try:
            return choose_engine(self._engine_arg)
        except UserError as exc:
            raise BoardFailure(str(exc)) from None

    @keyword
    def require_engine(self) -> str:
        """Checks that the chosen engine can run here and returns its name.

        With ``renode`` and no usable Renode installation, raises a skip with the one-line reason
        from ``h743sim.renode.availability.missing_reason()``: used as suite setup, every test of
        the suite is then reported SKIPPED with that reason. Fails when ``ENGINE`` names an
        unknown engine.
        """
        engine = self._engine()
        reason = engine_missing_reason(engine)
        if reason:
            raise SkipExecution(reason)
        return engine

    @property
    def session(self) -> BoardSession:
        if self._session is None:
            raise BoardFailure("no board: call Create Board first")
        return self._session

    @keyword
    def create_board(self, state_dir: str | None = None, timing: str = "datasheet", seed: int = 0) -> str:
        """Creates a powered-off board (any previous one of this suite is discarded).

        ``state_dir``: directory holding the flash images (``flash.bin``, ``qspi.bin``,
        ``meta.json``); an existing one is loaded, a new one is created. Empty: a fresh temporary
        directory, removed by `Reset Emulation`. ``timing``: ``datasheet`` (flash operations take
        their typical datasheet time in virtual time) or ``fast`` (instant). ``seed``: seed of the
        deterministic fault patterns (wear).

        Returns the state directory. Fails when the state directory is unusable or the profile is
        unknown; skips (as `Require Engine`) when the engine is unavailable.
        """
        engine = self.require_engine()
        self.reset_emulation()
        try:
            self._session = BoardSession(
                engine, state_dir=state_dir, timing=timing, seed=seed, echo=self._echo
            )
        except EngineUnavailable as exc:
            raise SkipExecution(str(exc)) from None
        except UserError as exc:
            raise BoardFailure(f"cannot create the board: {exc}") from None
        logger.info(
            f"board on the {engine} engine, timing {timing}, seed {seed}, state in {self.session.state_dir}"
        )
        return str(self.session.state_dir)

    @staticmethod
    def _echo(line: str) -> None:
        logger.info(f"UART | {line}")

    @keyword
    def reset_emulation(self) -> None:
        """Discards the board (as Renode's keyword removes all machines) and its temporary state
        directory. Does nothing when there is no board. Never fails."""
        if self._session is not None:
            self._session.close()
            self._session = None

    @keyword
    def load_firmware_into_flash(self, path: str, address: int | None = None) -> None:
        """Writes a firmware file into the flash images as a factory programmer would.

        ``path``: an ELF (its loadable segments go to their load addresses) or a raw ``.bin``,
        which needs ``address`` (e.g. ``0x08000000``). The board may be powered off or on; the
        CPU is not reset. Fails when the file is missing or does not fit the internal flash or
        the QSPI flash; nothing is written then.
        """
        placed = self.session.guarded(
            f"loading {path}", lambda: self.session.board.load_firmware(path, address=address)
        )
        for name, addr, length in placed:
            logger.info(f"{path}: {length} bytes at 0x{addr:08X} ({name})")

    @keyword
    def start_emulation(self) -> None:
        """Powers the board on: every model gets its power-on reset and the core fetches its stack
        pointer and reset vector from 0x08000000. Nothing runs until a waiting keyword runs the
        board."""
        self.session.power_on()

    @keyword
    def reset_board(self) -> None:
        """System reset (as AIRCR.SYSRESETREQ or the NRST pin): the CPU and the peripherals restart,
        flash contents and a held K2 stay. The USB host forgets the device."""
        self.session.reset()

    @keyword
    def power_cycle(self) -> None:
        """Saves the flash images to the state directory, discards the board and powers on a new
        board built from the saved images (a real power-off/power-on, including after a power
        cut). K2 keeps its position; an armed power cut is not carried over."""
        self.session.guarded("power cycle", self.session.power_cycle)

    @keyword
    def run_for(self, seconds: float) -> None:
        """Runs the board for ``seconds`` of virtual time. Fails when the run ends otherwise (power
        cut, CPU lockup, engine error)."""
        self.session.run_for(seconds)

    @keyword
    def board_should_be_powered_off(self) -> None:
        """Passes when the board lost power (an armed power cut fired). Fails when it is still
        powered, naming the flash operations seen."""
        board = self.session.board
        plan = board.power_cut
        if board.powered:
            raise self.session.failure(
                f"the board is still powered ({plan.describe()}; {plan.operations_seen} flash "
                f"operations seen, last: {', '.join(plan.log[-5:]) or 'none'})"
            )
        if plan.fired and plan.log:
            logger.info(f"power was cut during flash operation #{len(plan.log) - 1} ({plan.log[-1]})")

    @keyword
    def log_board_state(self) -> None:
        """Logs the UART output, the CPU state and the power-cut log of the board (for teardowns).
        Does nothing when there is no board."""
        if self._session is None:
            return
        board = self._session.board
        logger.info("UART output:\n" + (board.uart.text() or "(nothing)"))
        logger.info(board.describe_failure("board state at the end"))
        logger.info(
            f"{board.power_cut.describe()}; operations: {', '.join(board.power_cut.log[-20:]) or 'none'}"
        )

    # ====================================================================================== UART
    @keyword
    def create_terminal_tester(self, uart: str = "sysbus.usart1", timeout: float = 5.0) -> int:
        """Selects the ``uart`` that `Wait For Line On Uart` watches and its default ``timeout``
        (virtual seconds). The board has one console UART, ``sysbus.usart1`` (``usart1``);
        others fail. Returns the tester id (0)."""
        if uart.split(".")[-1].lower() != "usart1":
            raise BoardFailure(f"{uart}: the DevEBox console is sysbus.usart1; no other UART is captured")
        self._uart_timeout = float(timeout)
        return 0

    def _pattern(self, content: str, treat_as_regex: bool) -> str:
        if not treat_as_regex:
            return re.escape(content)
        try:
            re.compile(content)
        except re.error as exc:
            raise BoardFailure(f"bad regular expression {content!r}: {exc}") from None
        return content

    @keyword
    def wait_for_line_on_uart(
        self,
        content: str,
        timeout: float | None = None,
        treatAsRegex: bool = False,
        testerId: int | None = None,
    ) -> str:
        """Runs the board until a UART line *after the previous match* contains ``content`` and
        returns that line.

        ``treatAsRegex``: ``content`` is a Python regular expression searched in the line.
        ``timeout``: virtual seconds (default: the terminal tester's, 5 s). ``testerId`` is
        accepted for Renode compatibility (there is one tester). Fails when no such line comes in
        time, or the board stops (power cut, lockup), with the recent UART lines and CPU state.
        """
        del testerId
        wait = self._uart_timeout if timeout is None else float(timeout)
        pattern = self._pattern(content, treatAsRegex)
        kind = "matching the regex" if treatAsRegex else "containing"
        return self.session.guarded(
            f"no UART line {kind} {content!r} within {wait} s",
            lambda: self.session.board.wait_for_line(pattern, wait),
        )

    @keyword
    def should_not_be_on_uart(
        self,
        content: str,
        timeout: float | None = None,
        treatAsRegex: bool = False,
        testerId: int | None = None,
    ) -> None:
        """Runs the board for ``timeout`` virtual seconds (default: the tester's) and fails if a
        UART line after the previous match contains ``content`` (a regex with ``treatAsRegex``),
        quoting the line. ``testerId`` is accepted for Renode compatibility."""
        del testerId
        wait = self._uart_timeout if timeout is None else float(timeout)
        pattern = re.compile(self._pattern(content, treatAsRegex))
        board = self.session.board
        start_line = board.uart.cursor
        self.session.run_for(wait)
        for _, text in board.uart.lines[start_line:]:
            if pattern.search(text):
                raise self.session.failure(f"UART line {text!r} matches {content!r}, which must not appear")

    @keyword
    def write_line_to_uart(self, content: str) -> None:
        """Sends ``content`` followed by a carriage return to the board's USART1 receiver (at the
        configured baud rate, in virtual time), as Renode's terminal tester does."""
        data = (content + "\r").encode()
        self.session.guarded("UART input", lambda: self.session.board.usart.inject_rx(data))

    # ======================================================================================= CPU
    @keyword("PC Should Be Equal")
    def pc_should_be_equal(self, value: int) -> None:
        """Fails unless the CPU's program counter equals ``value`` (e.g. ``0x080001f8``)."""
        pc = self.session.pc()
        if pc != value:
            raise self.session.failure(f"PC is 0x{pc:08X}, expected 0x{value:08X}")

    @keyword("PC Should Be In Range")
    def pc_should_be_in_range(self, low: int, high: int) -> None:
        """Fails unless ``low <= PC <= high`` (e.g. the QSPI window 0x90000000 0x907FFFFF while an
        application executes in place)."""
        pc = self.session.pc()
        if not low <= pc <= high:
            raise self.session.failure(f"PC is 0x{pc:08X}, expected 0x{low:08X}..0x{high:08X}")

    @keyword
    def get_symbol_address(self, elf: str, symbol: str) -> int:
        """Returns the address of ``symbol`` in the ELF file ``elf`` (Thumb bit cleared for
        functions). Fails when the file or the symbol does not exist."""
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        try:
            with open(elf, "rb") as fh:
                table = ELFFile(fh).get_section_by_name(".symtab")
                found = table.get_symbol_by_name(symbol) if table is not None else None
                if not found:
                    raise BoardFailure(f"{elf} has no symbol {symbol!r}")
                sym = found[0]
                value = sym["st_value"]
                return value & ~1 if sym["st_info"]["type"] == "STT_FUNC" else value
        except (OSError, ELFError) as exc:
            raise BoardFailure(f"cannot read {elf}: {exc}") from None

    # =============================================================================== button, LED
    @keyword
    def hold_k2(self) -> None:
        """Presses the K2 button (PC5 pulled to ground) and keeps it pressed, also across resets and
        `Power Cycle`, until `Release K2`."""
        self.session.board.k2.press()

    @keyword
    def release_k2(self) -> None:
        """Releases the K2 button (PC5 floats; the firmware's pull-up reads 1)."""
        self.session.board.k2.release()

    @keyword("LED Should Be Lit")
    def led_should_be_lit(self) -> None:
        """Fails unless the user LED is lit now (the bootloader lights it in DFU mode)."""
        if not self.session.board.led.lit:
            raise self.session.failure("the LED is off, expected lit")

    @keyword("LED Should Have Blinked")
    def led_should_have_blinked(self, min_toggles: int) -> int:
        """Fails unless the LED changed state at least ``min_toggles`` times since power-on;
        returns the count."""
        toggles = self.session.board.led.toggles()
        if toggles < min_toggles:
            raise self.session.failure(f"the LED toggled {toggles} times, expected at least {min_toggles}")
        return toggles

    @keyword("LED Blink Period Should Be")
    def led_blink_period_should_be(self, period_ms: float, tolerance_ms: float = 1.0, last: int = 6) -> None:
        """Checks the virtual time between the ``last`` most recent LED changes: each interval must
        be ``period_ms`` +- ``tolerance_ms`` (milliseconds). Fails with the measured intervals, or
        when fewer than ``last`` + 1 changes were seen."""
        history = self.session.board.led.history
        if len(history) < last + 1:
            raise self.session.failure(f"only {len(history)} LED changes recorded, need {last + 1}")
        times = [t for t, _ in history[-(last + 1) :]]
        intervals = [(b - a) / NS_PER_MS for a, b in zip(times, times[1:], strict=False)]
        wrong = [i for i in intervals if abs(i - period_ms) > tolerance_ms]
        logger.info("LED intervals (ms): " + ", ".join(f"{i:.3f}" for i in intervals))
        if wrong:
            raise self.session.failure(
                f"LED intervals {', '.join(f'{i:.3f}' for i in intervals)} ms; expected {period_ms} +- {tolerance_ms} ms"
            )

    # ======================================================================================= DFU
    @keyword("DFU Device Should Be Present")
    def dfu_device_should_be_present(self) -> None:
        """Enumerates the virtual USB bus and fails unless a DFU device 0483:DF11 is on it."""
        if not self.session.dfu_present():
            raise self.session.failure("no DFU device 0483:DF11 on the virtual USB bus")

    @keyword("DFU Device Should Not Be Present")
    def dfu_device_should_not_be_present(self) -> None:
        """Fails when a DFU device 0483:DF11 is on the virtual USB bus (e.g. after the board left
        DFU mode or booted an application)."""
        if self.session.dfu_present():
            raise self.session.failure("a DFU device 0483:DF11 is on the virtual USB bus")

    @keyword("DFU Layout Should Be")
    def dfu_layout_should_be(self, alt: int, layout: str) -> None:
        """Fails unless the string of alternate setting ``alt`` (its DfuSe memory layout) is exactly
        ``layout``."""
        client = self.session.dfu()
        actual = client.alt_setting(alt).name if alt in client.layouts else None
        if actual != layout:
            raise self.session.failure(f"alt {alt} string is {actual!r}, expected {layout!r}")

    @keyword("DFU Download File")
    def dfu_download_file(
        self,
        path: str,
        address: int | None = None,
        alt: int | None = None,
        verify: bool = False,
        host_checks: bool = True,
    ) -> None:
        """Downloads a file to the board over DFU, erasing the sectors it touches first.

        ``path``: a DfuSe ``.dfu`` (its targets name their alternate settings), an ELF, or a raw
        ``.bin`` that needs ``address``. ``alt``: force the alternate setting (default: the one
        whose memory holds each region). ``verify``: upload and compare afterwards.

        Fails with the device's DFU status (e.g. ``errVERIFY``), a STALL, a layout refusal by the
        host, a timeout, or a power cut during the download.

        ``host_checks=False``: no host-side layout check and no erase: Set Address Pointer then
        data blocks from 2, as given; the keyword fails at the first error status and leaves the
        device in dfuERROR for `DFU Status Should Be`.
        """
        if host_checks:
            for alt_, addr, length in self.session.download(path, address, alt, verify):
                logger.info(f"downloaded {length} bytes at 0x{addr:08X} (alt {alt_})")
            return
        regions = self.session.regions_of(path, address)
        for region in regions:
            chosen = alt if alt is not None else self._alt_for(region.address)
            report = self.session.raw_write(region.address, region.data, chosen)
            if report.status != DfuStatus.OK or report.state == 10:
                raise self.session.failure(
                    f"DFU write of {len(region.data)} bytes at 0x{region.address:08X}: device reported "
                    f"{describe_status(report)}; the error is left in place"
                )

    def _alt_for(self, address: int) -> int:
        client = self.session.dfu()
        return self.session.guarded("choosing the alternate setting", lambda: client.alt_for(address))

    @keyword("DFU Upload To File")
    def dfu_upload_to_file(self, path: str, address: int, length: int, alt: int | None = None) -> None:
        """Reads ``length`` bytes from ``address`` over DFU (UPLOAD) and writes them to ``path``.
        ``alt`` defaults to the alternate setting whose memory holds the range. Fails with the
        device's status or a STALL."""
        data = self.session.upload(address, length, alt)
        Path(path).write_bytes(data)
        logger.info(f"uploaded {len(data)} bytes from 0x{address:08X} to {path}")

    @keyword("DFU Erase")
    def dfu_erase(self, address: str = "mass", alt: int | None = None, host_checks: bool = True) -> None:
        """Erases the sector holding ``address``, or with ``address=mass`` every erasable sector of
        alternate setting ``alt`` (default 0; the bootloader sector is never erased).

        Fails with the device's DFU status (e.g. ``errERASE``) or a host-side layout refusal. With
        ``host_checks=False`` the Erase command goes to the device as it is and an error status is
        left in place (see `DFU Status Should Be`).
        """
        target = None if str(address).strip().lower() == "mass" else self._number(address)
        if host_checks:
            self.session.erase(target, alt)
            return
        payload = bytes([0x41]) + (target.to_bytes(4, "little") if target is not None else b"")
        chosen = alt if alt is not None else (self._alt_for(target) if target is not None else 0)
        report = self.session.raw_command(payload, chosen)
        if report.status != DfuStatus.OK:
            raise self.session.failure(f"DFU erase: device reported {describe_status(report)}; left in place")

    @staticmethod
    def _number(text: str | int) -> int:
        try:
            return text if isinstance(text, int) else int(str(text), 0)
        except ValueError:
            raise BoardFailure(f"{text!r} is not a number") from None

    @keyword("DFU Set Address")
    def dfu_set_address(self, address: int, alt: int | None = None) -> None:
        """Sends Set Address Pointer (0x21) with ``address`` on alternate setting ``alt`` (default:
        the one whose memory holds it). The device is in dfuDNLOAD-IDLE afterwards. Fails with the
        device's status or a host-side layout refusal."""
        self.session.set_address(address, alt)

    @keyword("DFU Send Command")
    def dfu_send_command(self, payload: str, alt: int = 0) -> str:
        """Sends the DfuSe command ``payload`` (DNLOAD block 0) exactly as given in hex, e.g. ``92``
        (Read Unprotect) or ``21 00 00 02 08``, to alternate setting ``alt``, then GETSTATUS until
        the device is not busy. Returns the status name. Fails when the device reports an error,
        leaving it in place."""
        report = self.session.raw_command(parse_hex_bytes(payload), alt)
        if report.status != DfuStatus.OK:
            raise self.session.failure(f"DfuSe command {payload}: device reported {describe_status(report)}")
        return status_name(report.status)

    @keyword("DFU Request Should Stall")
    def dfu_request_should_stall(self, request: str, value: int = 0, length: int = 0) -> None:
        """Sends a DFU class request and fails unless the device answers with a STALL.

        ``request``: ``DFU_DNLOAD``, ``DFU_UPLOAD``, ``DFU_GETSTATUS``, ``DFU_CLRSTATUS``,
        ``DFU_GETSTATE``, ``DFU_ABORT``, ``DFU_DETACH`` (the ``DFU_`` may be left out) or a request
        number. ``value``: wValue (the block number). ``length``: bytes asked for (IN requests) or
        sent, as 0xFF filler (OUT requests).
        """
        code = request_code(request)
        name = {v: k for k, v in REQUEST_CODES.items()}.get(code, f"request {code}")
        data_or_length: bytes | int = (
            length if name in ("DFU_UPLOAD", "DFU_GETSTATUS", "DFU_GETSTATE") else b"\xff" * length
        )
        answer = self.session.raw_request(code, value, data_or_length)
        if answer is not None:
            raise self.session.failure(
                f"{name} (wValue {value}) was accepted ({len(answer)} bytes), expected a STALL"
            )

    @keyword("DFU Leave")
    def dfu_leave(self, address: int | None = None) -> None:
        """Leaves DFU mode: optional Set Address Pointer (the jump address), a zero-length DNLOAD and
        GETSTATUS; the bootloader then detaches and resets the board. Fails with the device's
        status when it refuses."""
        self.session.leave(address, 0)

    @keyword("DFU Status Should Be")
    def dfu_status_should_be(self, state: str, status: str = "OK") -> None:
        """Sends DFU_GETSTATUS and fails unless the device reports ``state`` (e.g. ``dfuIDLE``,
        ``dfuERROR``, ``dfuDNLOAD-IDLE``) and ``status`` (e.g. ``OK``, ``errTARGET``,
        ``errSTALLEDPKT``); names are compared without regard to case."""
        report = self.session.status()
        got_state, got_status = state_name(report.state), status_name(report.status)
        if got_state.lower() != state.lower() or got_status.lower() != status.lower():
            raise self.session.failure(
                f"device reports {got_status} in {got_state}, expected {status} in {state}"
            )

    @keyword("DFU Clear Status")
    def dfu_clear_status(self) -> None:
        """Sends DFU_CLRSTATUS (dfuERROR -> dfuIDLE). Fails when the device stalls it."""
        self.session.clear_status()

    @keyword("DFU Abort")
    def dfu_abort(self) -> None:
        """Sends DFU_ABORT (back to dfuIDLE). Fails when the device stalls it."""
        self.session.abort()

    @keyword("Create DfuSe File")
    def create_dfuse_file(self, output: str, *elements: str) -> None:
        """Writes the DfuSe (.dfu) file ``output`` with one target per alternate setting.

        Each of the ``elements`` is ``alt:address:file.bin`` (a raw binary at ``address``) or ``alt:file.elf``
        (an ELF at its own addresses), e.g. ``0:0x08020000:app_internal.bin``
        ``1:0x90000000:app_qspi.bin``. Fails when a file is missing or malformed.
        """
        if not elements:
            raise BoardFailure("give at least one element 'alt:address:file' or 'alt:file.elf'")
        try:
            dfu = build_dfuse_file(output, elements)
        except UserError as exc:
            raise BoardFailure(f"cannot build {output}: {exc}") from None
        for alt, element in dfu.elements:
            logger.info(f"{output}: alt {alt} 0x{element.address:08X} {len(element.data)} bytes")

    # ==================================================================================== memory
    def _expect_file(self, memory: str, path: str, address: int | None) -> None:
        mem = memory_named(memory)
        for region in self.session.regions_of(path, address):
            self.session.compare(mem, region.data, region.address, f"{path} at 0x{region.address:08X}")

    @keyword
    def flash_contents_should_equal_file(self, path: str, address: int | None = None) -> None:
        """Fails unless the internal flash holds the bytes of ``path`` (an ELF at its addresses, or a
        ``.bin`` at ``address``), naming the first differing address and the count of differences."""
        self._expect_file("internal", path, address)

    @keyword("QSPI Contents Should Equal File")
    def qspi_contents_should_equal_file(self, path: str, address: int | None = None) -> None:
        """Fails unless the QSPI flash holds the bytes of ``path`` (an ELF at its addresses, or a
        ``.bin`` at ``address``), naming the first differing address and the count of differences."""
        self._expect_file("qspi", path, address)

    @keyword
    def memory_should_be_erased(self, memory: str, address: int, length: int) -> None:
        """Fails unless every byte of ``memory`` in ``address`` .. ``address + length - 1`` reads
        0xFF (erased NOR)."""
        mem = memory_named(memory)
        self.session.compare(mem, b"\xff" * length, address, "erased (0xFF)")

    @keyword
    def take_memory_snapshot(self, name: str, memory: str, address: int, length: int) -> None:
        """Remembers ``length`` bytes of ``memory`` from ``address`` under ``name`` for
        `Memory Should Match Snapshot`."""
        mem = memory_named(memory)
        self.session.snapshots[name] = (mem, address, self.session.read(mem, address, length))

    @keyword
    def memory_should_match_snapshot(self, name: str) -> None:
        """Fails unless the memory range of snapshot ``name`` still holds the same bytes, byte for
        byte (naming the first difference)."""
        if name not in self.session.snapshots:
            raise BoardFailure(f"no snapshot named {name!r}")
        mem, address, data = self.session.snapshots[name]
        self.session.compare(mem, data, address, f"snapshot {name!r}")

    @keyword
    def files_should_be_identical(self, first: str, second: str) -> None:
        """Fails unless the files ``first`` and ``second`` have the same bytes (naming the sizes or
        the first difference)."""
        a, b = Path(first).read_bytes(), Path(second).read_bytes()
        if a == b:
            return
        if len(a) != len(b):
            raise BoardFailure(f"{first} is {len(a)} bytes, {second} is {len(b)} bytes")
        i = next(i for i in range(len(a)) if a[i] != b[i])
        raise BoardFailure(f"{first} and {second} differ first at offset {i} (0x{a[i]:02X} vs 0x{b[i]:02X})")

    @keyword
    def erase_count_of_sector_should_be(self, memory: str, address: int, count: int) -> None:
        """Fails unless the sector of ``memory`` holding ``address`` has been erased ``count`` times
        (the model's wear counter, which persists with the images)."""
        mem = memory_named(memory)
        sector = mem.sector_of(address)
        actual = self.session.model(mem).erase_counts[sector]
        if actual != count:
            raise self.session.failure(
                f"{mem.name} sector {sector} (0x{mem.base + sector * mem.sector_size:08X}) was erased "
                f"{actual} times, expected {count}"
            )

    @keyword
    def inject_wear(self, memory: str, address: int, cycles: int) -> int:
        """Adds ``cycles`` erase cycles to the wear counter of the sector holding ``address``, as if
        it had been erased that often; returns the new count. Past the memory's endurance (W25Q64:
        100,000; internal flash: 10,000) erases and programs fail as the model describes."""
        mem = memory_named(memory)
        count = self.session.inject_wear(mem, address, cycles)
        logger.info(f"{mem.name} sector {mem.sector_of(address)}: {count} erase cycles")
        return count

    @keyword
    def inject_stuck_bit(self, memory: str, address: int, bit: int, value: int) -> None:
        """Makes bit ``bit`` (0..7) of the byte at ``address`` end every later program or erase at
        ``value`` (0 or 1). Fails for an address outside ``memory`` or a bad bit/value."""
        mem = memory_named(memory)
        self.session.inject_stuck_bit(mem, address, bit, value)

    # ===================================================================================== power
    @keyword
    def cut_power_after_flash_operations(self, count: int, fraction: float = 0.5) -> None:
        """Arms a power cut during the flash operation that follows ``count`` more completed
        program/erase operations (counted from now, both memories; 0 = the next one), at
        ``fraction`` of its duration. The operation is left torn and the board powers off; see
        `Board Should Be Powered Off` and `Power Cycle`."""
        if count < 0:
            raise BoardFailure(f"count must be >= 0, got {count}")
        self.session.arm_power_cut(after_ops=count, fraction=fraction)

    @keyword
    def cut_power_at_event(self, event: str, fraction: float = 0.5) -> None:
        """Arms a power cut during the first flash operation whose name matches the glob ``event``
        (``qspi.page_program``, ``qspi.sector_erase``, ``qspi.chip_erase``, ``flash.program``,
        ``flash.sector_erase``, ``flash.bank_erase``, or e.g. ``qspi.*erase*``), at ``fraction`` of
        its duration."""
        self.session.arm_power_cut(on_event=event, fraction=fraction)

    @keyword
    def get_virtual_time(self) -> float:
        """Returns the board's virtual clock in seconds (it restarts with each new board, e.g. after
        `Power Cycle`). Use two readings to check how long something took in virtual time."""
        return self.session.board.machine.now_ns() / NS_PER_S
