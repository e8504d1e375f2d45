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
