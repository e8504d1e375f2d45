"""The MDMA on the assembled board (platforms/devebox_h743.repl): at 0x52000000, IRQ 122 into the
NVIC, QUADSPI requests on lines 22/23. Driven from the host side (no firmware): register writes
through the bus models, virtual time advanced on the machine's event queue."""

from __future__ import annotations

from h743sim.board import Board

MDMA = 0x5200_0000
C0 = MDMA + 0x40
QSPI = 0x5200_5000
AXI_SRAM = 0x2400_0000


def _w(board: Board, address: int, value: int) -> None:
    board.machine.write_memory(address, value.to_bytes(4, "little"))


def _settle(board: Board) -> None:
    events = board.machine.events
    while (t := events.next_time()) is not None and t < 10**9:
        events.advance_to(t)


def test_software_transfer_raises_irq_122() -> None:
    board = Board()
    assert board.machine.read_u32(C0 + 0x0C) == 0  # C0CR: the model answers, reset value 0
    board.machine.write_memory(AXI_SRAM, bytes(range(64)))
    word_tcr = 2 | 2 << 2 | 2 << 4 | 2 << 6 | 2 << 8 | 2 << 10 | 63 << 18 | 3 << 28 | 1 << 30
    for off, value in ((0x10, word_tcr), (0x14, 64), (0x18, AXI_SRAM), (0x1C, AXI_SRAM + 0x1000)):
        _w(board, C0 + off, value)
    _w(board, C0 + 0x0C, 1 << 2 | 1)  # CTCIE, EN
    _w(board, C0 + 0x0C, 1 << 2 | 1 | 1 << 16)  # SWRQ
    _settle(board)
    assert board.machine.read_memory(AXI_SRAM + 0x1000, 64) == bytes(range(64))
    assert board.machine.read_u32(C0) & 2  # CTCIF
    assert board.machine.read_u32(0xE000E200 + 4 * (122 // 32)) >> (122 % 32) & 1  # NVIC pending


def test_quadspi_page_program_through_request_22() -> None:
    board = Board()
    page = bytes((i * 7 + 3) & 0xFF for i in range(256))
    board.machine.write_memory(AXI_SRAM + 0x100, page)
    _w(board, QSPI + 0x00, 1 << 24 | 3 << 8 | 1)  # PRESCALER, FTHRES 4, EN
    _w(board, QSPI + 0x04, 22 << 16)  # 8 MiB
    _w(board, QSPI + 0x14, 0x06 | 1 << 8)  # write enable
    _w(board, QSPI + 0x0C, 2)  # CTCF
    _w(board, QSPI + 0x10, 255)
    _w(board, QSPI + 0x14, 0x02 | 1 << 8 | 1 << 10 | 2 << 12 | 1 << 24)  # page program 1-1-1
    _w(board, QSPI + 0x18, 0x4000)
    tcr = 2 | 2 << 4 | 2 << 6 | 2 << 8 | 127 << 18  # source words up, destination fixed, TLEN 128
    for off, value in ((0x10, tcr), (0x14, 256), (0x18, AXI_SRAM + 0x100), (0x1C, QSPI + 0x20), (0x28, 22)):
        _w(board, C0 + off, value)
    _w(board, C0 + 0x0C, 1)  # EN: request 22 is already up (FTF)
    _settle(board)
    assert board.machine.read_u32(C0) & 0x3 == 2  # CTCIF, no TEIF
    assert board.machine.read_u32(QSPI + 0x08) & 2  # TCF
    assert bytes(board.qspi_flash.array[0x4000:0x4100]) == page
