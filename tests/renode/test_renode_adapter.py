"""What of the Renode host can be checked without Renode: the board description it reads, the
models it registers, and the message when Renode is missing. The suites that need Renode itself
run with ENGINE=renode (see README) and are skipped here."""

import importlib.util
import inspect

import pytest

from h743sim.board_models import build_tagged_models
from h743sim.platform import DEFAULT_PLATFORM, parse_platform
from h743sim.renode.availability import missing_reason
from peripherals.standalone_host import StandaloneHost

RENODE_PRESENT = missing_reason() is None


def _tagged_models():
    platform = parse_platform(DEFAULT_PLATFORM)

    class FakeGpio:  # stands for Renode's GPIO port the LED and K2 attach to
        def drive(self, pin, level):
            self.driven = (pin, level)

        def output(self, pin):
            return 1

        def on_output_change(self, cb):
            self.cb = cb

    host = StandaloneHost()
    models = build_tagged_models(platform, lambda name: host, native=lambda name: FakeGpio())
    return platform, models


def test_renode_sees_only_native_entries_and_tags_are_comments():
    platform = parse_platform(DEFAULT_PLATFORM)
    native = {e.name for e in platform.entries.values() if not e.tagged}
    assert {"cpu", "nvic", "usart1", "dtcm", "gpioPortC"} <= native
    tagged = {e.name for e in platform.entries.values() if e.tagged}
    # the models Renode lacks or gets wrong for this board are ours
    assert {"qspi", "qspiFlash", "flash", "usbOtgFs", "pwr", "rcc"} <= tagged


def test_every_tagged_bus_model_offers_the_renode_bridge_interface():
    platform, models = _tagged_models()
    for entry in platform.entries.values():
        if not entry.tagged or entry.bus != "sysbus":
            continue
        model = models[entry.name]
        for method in ("read", "write", "reset"):
            assert callable(getattr(model, method)), f"{entry.name} lacks {method}()"
        params = inspect.signature(model.read).parameters
        assert len(params) == 2, f"{entry.name}.read(offset, size)"
        assert entry.size and entry.size >= getattr(model, "size", 0), f"{entry.name}: .repl size too small"
        # a register read of offset 0 must not raise (Renode would die on an escaping exception)
        model.read(0, 4)


def test_w25q64_is_attached_to_the_quadspi_and_pins_to_gpio():
    _platform, models = _tagged_models()
    assert models["qspiFlash"] is not None
    models["k2"].press()
    assert models["k2"].port.driven == (5, 0)


@pytest.mark.skipif(RENODE_PRESENT, reason="Renode is installed: the message for its absence is not shown")
def test_missing_renode_is_one_clear_line():
    reason = missing_reason()
    assert reason is not None and "\n" not in reason
    assert "Renode host unavailable" in reason and "pyrenode3" in reason


@pytest.mark.skipif(not RENODE_PRESENT, reason="needs Renode 1.16.1+ and pyrenode3 (see README, Renode)")
def test_board_boots_bootloader_on_renode(tmp_path):  # pragma: no cover - needs Renode
    from h743sim.renode.board import RenodeBoard

    board = RenodeBoard(state_dir=tmp_path / "state")
    assert "qspi" in board.models


def test_adapter_modules_import_lazily():
    # importing the package and its availability check must not need pythonnet
    assert importlib.util.find_spec("h743sim.renode.board") is not None
    import h743sim.renode.availability  # noqa: F401


def test_flash_window_writes_are_expected_only_while_pg_is_set():
    # the Renode adapter delivers CPU stores into the flash window only while programming
    from h743sim.renode.board import _writes_expected
    from peripherals.flash_interface import FlashInterface

    host = StandaloneHost()
    flash = FlashInterface(host)
    assert not _writes_expected(flash)
    cr2 = 0x10C
    flash.write(0x104, 4, 0x45670123)  # KEYR2 unlock sequence (FACTS §B.4)
    flash.write(0x104, 4, 0xCDEF89AB)
    flash.write(cr2, 4, flash.read(cr2, 4) | 0x2)  # PG
    assert _writes_expected(flash)
    flash.write(cr2, 4, flash.read(cr2, 4) & ~0x2)
    assert not _writes_expected(flash)


def test_renode_host_implements_the_whole_host_contract():
    # h743sim.renode.host needs pythonnet to import: compare the method names in its source
    import ast
    from pathlib import Path

    from peripherals import host as host_module
    from peripherals.host import Host

    tree = ast.parse((Path(__file__).resolve().parents[2] / "h743sim" / "renode" / "host.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RenodeHost")
    defined = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    for base in cls.bases:  # shared pieces of the contract it inherits from peripherals.host
        if isinstance(base, ast.Name) and base.id in vars(host_module):
            defined |= {
                name for name, value in vars(getattr(host_module, base.id)).items() if callable(value)
            }
    contract = {name for name, value in vars(Host).items() if callable(value) and not name.startswith("_")}
    assert {"bus_read", "bus_write", "bus_read_block", "bus_write_block"} <= contract
    assert contract <= defined, contract - defined


def test_tagged_mdma_is_wired_to_the_quadspi_requests():
    _platform, models = _tagged_models()
    qspi, mdma = models["qspi"], models["mdma"]
    qspi.write(0x00, 4, 1)  # EN
    qspi.write(0x14, 4, 0x02 | 1 << 8 | 1 << 24)  # indirect write with data armed: FTF
    assert mdma.line(22)
