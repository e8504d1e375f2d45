"""The bootloader with an application loaded directly into internal flash or the W25Q64 (as a
factory programmer would), and the K2 button (PC5, active low) that keeps it in DFU mode."""

from __future__ import annotations

import re

import pytest

from peripherals.host import NS_PER_MS

GPIOC_IDR = 0x58020810
K2_PIN = 5
SCB_VTOR = 0xE000ED08
BLINK_PERIOD_NS = 250 * NS_PER_MS
UART_BYTE_NS = 10 * 1_000_000_000 // 115200

APPS = {
    # image: (base, bootloader lines before the jump)
    "app_qspi": (0x90000000, ["BOOT h743 bootloader v1", "BOOT jumping to 0x90000000"]),
    "app_internal": (
        0x08020000,
        [
            "BOOT h743 bootloader v1",
            "BOOT no valid image at 0x90000000 (image_check empty)",  # QSPI is tried first
            "BOOT jumping to 0x08020000",
        ],
    ),
}


@pytest.mark.parametrize("image", sorted(APPS))
def test_bootloader_starts_the_application_at_its_address(boot, image):
    base, boot_lines = APPS[image]
    board = boot("bootloader", image)
    board.wait_for_line(r"^blink 2$", timeout_s=2)
    texts = [t for _, t in board.uart.lines]
    n = len(boot_lines)
    assert texts[:n] == boot_lines
    assert texts[n : n + 4] == [f"APP running from {base:#010x}", "APP version 1", "blink 1", "blink 2"]
    m = board.machine
    assert m.read_u32(SCB_VTOR) == base  # the application's own table
    assert base <= m.cpu_state()["pc"] < base + 0x100000  # executing from its image (XIP for QSPI)
    stamps = [ns for ns, t in board.uart.lines if re.match(r"^blink \d+$", t)]
    assert abs(stamps[1] - stamps[0] - BLINK_PERIOD_NS) < UART_BYTE_NS // 10
    assert board.led.toggles() == 2
    # K2 released: the pull-up holds PC5 high
    assert m.read_u32(GPIOC_IDR) >> K2_PIN & 1 == 1


@pytest.mark.parametrize("image", sorted(APPS))
def test_k2_held_keeps_the_bootloader_in_dfu_mode(boot, image):
    board = boot("bootloader", image, k2=True)
    board.wait_for_line(r"^DFU ready$", timeout_s=2)
    texts = [t for _, t in board.uart.lines]
    assert texts[:2] == ["BOOT h743 bootloader v1", "BOOT K2 held: DFU mode"]
    assert not any(t.startswith(("BOOT jumping", "APP ")) for t in texts)
    assert board.machine.read_u32(GPIOC_IDR) >> K2_PIN & 1 == 0
    # the application was never started: still the bootloader's table and code
    assert board.machine.read_u32(SCB_VTOR) == 0x08000000
    assert 0x08000000 <= board.machine.cpu_state()["pc"] < 0x08020000


def test_cli_k2_flag_holds_pc5_low(firmware, cli, tmp_path):
    proc = cli(
        "run",
        "--elf",
        firmware / "bootloader.elf",
        "--elf",
        firmware / "app_qspi.elf",
        "--k2",
        "--until",
        "DFU ready",
        "--timeout",
        "2",
        "--state",
        tmp_path / "state",
        "--no-save",
    )
    assert proc.returncode == 0, proc.stderr
    assert "BOOT K2 held: DFU mode" in proc.stdout.splitlines()
    assert "APP running" not in proc.stdout
    assert "K2 held: PC5 reads 0" in proc.stderr


def test_cli_without_k2_boots_the_qspi_application(firmware, cli, tmp_path):
    proc = cli(
        "run",
        "--elf",
        firmware / "bootloader.elf",
        "--elf",
        firmware / "app_qspi.elf",
        "--until",
        "APP version",
        "--timeout",
        "2",
        "--state",
        tmp_path / "state",
        "--no-save",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2:] == ["APP running from 0x90000000", "APP version 1"]
    assert "loaded" in proc.stderr and "(QSPI flash)" in proc.stderr
