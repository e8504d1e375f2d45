"""The board description parser: the shipped .repl and broken variants."""

import pytest

from h743sim.platform import DEFAULT_PLATFORM, PlatformError, parse_platform, parse_platform_text


def test_shipped_board_parses_with_all_memories_and_models():
    p = parse_platform(DEFAULT_PLATFORM)
    assert p["dtcm"].address == 0x20000000 and p["dtcm"].properties["size"] == 0x20000
    assert p["usart1"].cls == "UART.STM32F7_USART" and ("IRQ", "nvic", 37) in p["usart1"].irqs
    q = p["qspi"]
    assert q.tagged and q.python_class == "peripherals.quadspi.QuadSpi"
    assert (q.address, q.size) == (0x52005000, 0x400) and ("IRQ", "nvic", 92) in q.irqs
    assert p["qspiFlash"].bus == "qspi"
    assert p["usbOtgFs"].size == 0x40000 and ("IRQ", "nvic", 101) in p["usbOtgFs"].irqs
    assert p["k2"].properties["pin"] == 5 and p["k2"].bus == "gpioPortC"


def test_tagged_lines_are_plain_comments_for_renode():
    # every tagged line is a '//' comment, so Renode's parser skips it
    for line in DEFAULT_PLATFORM.read_text().splitlines():
        if "h743sim:" in line and not line.lstrip().startswith("//"):
            pytest.fail(f"tag outside a comment: {line}")


@pytest.mark.parametrize(
    "text, message",
    [
        ("uart: UART.X @ sysbus 0xZZ\n", "board.repl:1:"),
        ("a: Memory.MappedMemory @ sysbus 0x0\n    size 12\n", "board.repl:2:"),
        ('using "platforms/cpus/stm32h7.repl"\n', "self-contained"),
        ("    size: 1\n", "outside of any entry"),
        ("a: X.Y @ sysbus 0x0\na: X.Y @ sysbus 0x4\n", "declared twice"),
        ("a: X.Y @ nobus\n", "unknown bus"),
        ("a: X.Y @ sysbus 0x0\n    IRQ -> nowhere@3\n", "unknown 'nowhere'"),
    ],
)
def test_broken_lines_name_the_line(text, message):
    with pytest.raises(PlatformError) as err:
        parse_platform_text(text, "board.repl")
    assert message in str(err.value)
    assert "board.repl" in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(PlatformError, match="cannot read platform file"):
        parse_platform(tmp_path / "nope.repl")


def test_shipped_board_has_the_mdma_and_the_quadspi_request_lines():
    p = parse_platform(DEFAULT_PLATFORM)
    m = p["mdma"]
    assert m.tagged and m.python_class == "peripherals.mdma.Mdma"
    assert (m.address, m.size) == (0x52000000, 0x1000) and m.irqs == [("IRQ", "nvic", 122)]
    assert p["qspi"].connections == [("DmaRequest", "mdma", 22), ("TcRequest", "mdma", 23)]
    assert p["usart1"].connections == []  # IRQ -> nvic is not a model-to-model line


_LINES_BOARD = """\
usart1: UART.STM32F7_USART @ sysbus 0x40011000
//h743sim: mdma: Python.peripherals.mdma.Mdma @ sysbus <0x52000000, +0x1000>
//h743sim: qspi: Python.peripherals.quadspi.QuadSpi @ sysbus <0x52005000, +0x400>
//h743sim:     {line}
"""


def _build(line: str, **kw):
    from h743sim.board_models import build_models
    from peripherals.standalone_host import StandaloneHost

    host = StandaloneHost()
    platform = parse_platform_text(_LINES_BOARD.format(line=line), "board.repl")
    return build_models(platform, lambda name: host, **kw)


def test_request_lines_are_wired_between_models():
    models = _build("DmaRequest -> mdma@22")
    qspi, mdma = models["qspi"], models["mdma"]
    qspi.write(0x00, 4, 1)  # EN
    qspi.write(0x10, 4, 3)  # DLR: 4 bytes
    qspi.write(0x14, 4, 0x02 | 1 << 8 | 1 << 24)  # indirect write with data: FTF, request up
    assert mdma.line(22) and not mdma.line(23)
    qspi.write(0x20, 4, 0)  # the 4 bytes: TCF, FTF falls
    assert not mdma.line(22)


@pytest.mark.parametrize(
    "line, kw, message",
    [
        ("Bogus -> mdma@22", {}, "has no output 'Bogus'"),
        ("DmaRequest -> qspi@1", {}, "QuadSpi takes no input lines"),
        ("DmaRequest -> usart1@1", {}, "Usart takes no input lines"),
        ("DmaRequest -> usart1@1", {"tagged_only": True}, "'usart1' is not one of our models"),
        ("DmaRequest -> mdma@300", {}, "outside 0..255"),
    ],
)
def test_bad_request_lines_name_the_line(line, kw, message):
    from h743sim.platform import PlatformError as Error

    with pytest.raises(Error) as err:
        _build(line, **kw)
    assert message in str(err.value) and "board.repl:3" in str(err.value)
