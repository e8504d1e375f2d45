"""The assembled board seen through its bus right after power-on: each model answers at the
FACTS.md address with its reset value, and IRQ lines reach the NVIC input FACTS.md §A.4 names.

(Register behaviour of each model is tested on its own in tests/models, and NVIC/SCB/SysTick in
tests/engine; this checks the board description wires them where the firmware expects them.)
"""

from __future__ import annotations

import pytest

from h743sim.board import Board

RESET_VALUES = {
    # name: (address, value, FACTS.md source)
    "RCC_CR": (0x58024400, 0x00000025, "§I: HSION, HSIRDY, HSIDIV=1 after reset"),
    "PWR_CR3": (0x5802480C, 0x00000006, "§I: SCUEN, LDOEN"),
    "FLASH_ACR": (0x52002000, 0x00000037, "§A.1: 7 wait states, WRHIGHFREQ=3"),
    "USART1_ISR": (0x4001101C, 0x000000C0, "§A.3: TC, TXE"),
    "GPIOA_MODER": (0x58020000, 0xABFFFFFF, "§A.3 [V]: PA13/PA14/PA15 debug pins"),
    "GPIOC_MODER": (0x58020800, 0xFFFFFFFF, "§A.3: all analog"),
    "QUADSPI_CR": (0x52005000, 0x00000000, "§C.1: all resets 0"),
    "QUADSPI_SR": (0x52005008, 0x00000000, "§C.1"),
    "OTG_GSNPSID": (0x40080040, 0x4F54330A, "§I"),
    "SCB_VTOR": (0xE000ED08, 0x08000000, "§G.1: BOOT_ADD0 factory value"),
}


@pytest.fixture(scope="module")
def board(firmware):
    b = Board()
    b.load_firmware(firmware / "hello.elf")
    b.power_on()  # no instruction has run yet
    return b


@pytest.mark.parametrize("name", sorted(RESET_VALUES))
def test_reset_value_at_facts_address(board, name):
    address, value, source = RESET_VALUES[name]
    got = board.machine.read_u32(address)
    assert got == value, f"{name} @ {address:#010x} = {got:#010x}, want {value:#010x} ({source})"


def test_dbgmcu_idcode_names_the_h743():
    b = Board()
    assert b.machine.read_u32(0x5C001000) & 0xFFF == 0x450  # §I: device id 0x450


def test_cpuid_is_cortex_m7_r1p1(board):
    cpuid = board.machine.read_u32(0xE000ED00)
    # implementer Arm, variant 1, PARTNO Cortex-M7, revision 1 (§A.4: __CM7_REV 0x0101)
    assert (cpuid >> 24, cpuid >> 20 & 0xF, cpuid >> 4 & 0xFFF, cpuid & 0xF) == (0x41, 1, 0xC27, 1)


def test_unmodelled_peripheral_reads_zero_without_stopping_the_board(board):
    assert board.machine.read_u32(0x40000000) == 0  # TIM2_CR1: no model, logs once, reads reset value


def _write(board: Board, address: int, value: int) -> None:
    board.machine.write_memory(address, value.to_bytes(4, "little"))


def _set_bits(board: Board, address: int, bits: int) -> None:
    _write(board, address, board.machine.read_u32(address) | bits)


def _nvic_pending(board: Board, irq: int) -> bool:
    return bool(board.machine.read_u32(0xE000E200 + 4 * (irq // 32)) >> (irq % 32) & 1)


def test_usart1_interrupt_reaches_nvic_line_37(firmware):
    b = Board()
    b.load_firmware(firmware / "hello.elf")
    b.power_on()
    assert not _nvic_pending(b, 37)
    _set_bits(b, 0x580244F0, 1 << 4)  # RCC_APB2ENR.USART1EN
    _write(b, 0x40011000, 1 << 0 | 1 << 3 | 1 << 7)  # CR1: UE, TE, TXEIE (TXE is set: IRQ high)
    assert _nvic_pending(b, 37)
    assert b.machine.read_u32(0xE000E204) == 1 << 5  # ISPR1 bit 5, and nothing else


def test_quadspi_interrupt_reaches_nvic_line_92(firmware):
    b = Board()
    b.load_firmware(firmware / "hello.elf")
    b.power_on()
    assert not _nvic_pending(b, 92)
    _set_bits(b, 0x580244D4, 1 << 14)  # RCC_AHB3ENR.QSPIEN
    _write(b, 0x52005000, 1 << 17 | 1 << 0)  # CR: TCIE, EN
    _set_bits(b, 0x52005000, 1 << 1)  # CR.ABORT: sets TCF in every mode (§I); nothing to abort
    assert b.machine.read_u32(0x52005008) & 1 << 1  # SR.TCF
    assert _nvic_pending(b, 92)
    assert b.machine.read_u32(0xE000E208) == 1 << 28  # ISPR2 bit 28
