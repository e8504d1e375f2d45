"""QSPI page programs through MDMA: the bootloader feeds QUADSPI_DR with MDMA channel 0 when a
page's data is whole words at a word-aligned place of its buffer, and with CPU writes otherwise.
Both paths must put the same bytes into the W25Q64 (the model array is the ground truth)."""

from __future__ import annotations

MDMA_C0 = 0x5200_0040
C0_SAR, C0_DAR, C0_TBR, C0_BNDTR = 0x18, 0x1C, 0x28, 0x14
QUADSPI_DR = 0x5200_5020
REQ_QUADSPI_FIFO = 22


def _pattern(n: int, seed: int) -> bytes:
    return bytes((i * 131 + seed * 7 + (i >> 8)) & 0xFF for i in range(n))


def test_aligned_pages_go_through_mdma(boot_dfu):
    dfu = boot_dfu()
    board = dfu.board
    m = board.machine
    data = _pattern(2048, 1)
    dfu.session.client.download(0x9001_0000, data)  # erases its sector first
    assert bytes(board.qspi_flash.array[0x1_0000:0x1_0800]) == data
    # the last page of the block went through channel 0: into QUADSPI_DR on request 22
    assert m.read_u32(MDMA_C0 + C0_DAR) == QUADSPI_DR
    assert m.read_u32(MDMA_C0 + C0_TBR) & 0xFF == REQ_QUADSPI_FIFO
    assert m.read_u32(MDMA_C0 + C0_BNDTR) & 0x1FFFF == 0  # the whole block went out
    sar = m.read_u32(MDMA_C0 + C0_SAR)
    assert sar % 4 == 0 and m.read_memory(sar - 256, 256) == data[-256:]  # SAR ends after the page
    assert dfu.session.upload(0x9001_0000, len(data)) == data


def test_unaligned_pieces_take_the_cpu_path_and_land_the_same(boot_dfu):
    dfu = boot_dfu()
    board = dfu.board
    m = board.machine
    before_dar = m.read_u32(MDMA_C0 + C0_DAR)
    data = _pattern(700, 2)  # from an odd address: 253-byte first piece, then unaligned buffer offsets
    dfu.session.client.download(0x9002_0003, data)
    array = board.qspi_flash.array
    assert bytes(array[0x2_0003 : 0x2_0003 + len(data)]) == data
    assert bytes(array[0x2_0000:0x2_0003]) == b"\xff" * 3  # erased, not written
    assert bytes(array[0x2_0003 + len(data) : 0x2_1000]) == b"\xff" * (0x1000 - 3 - len(data))
    assert m.read_u32(MDMA_C0 + C0_DAR) == before_dar  # no page fitted MDMA: channel 0 untouched
    assert dfu.session.upload(0x9002_0003, len(data)) == data
