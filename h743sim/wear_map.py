"""Erase counts per sector of both memories as a PNG heat map."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

CELL = 6  # pixels per W25Q64 sector cell
QSPI_COLUMNS = 64  # 2048 sectors -> 64 x 32 grid (one row = 256 KiB)
FLASH_CELL = 40


def _color(count: int, endurance: int) -> tuple[int, int, int]:
    """Dark blue (never erased) through green/yellow to red at the endurance limit; purple past it."""
    if count <= 0:
        return (20, 24, 60)
    if count > endurance:
        return (170, 0, 200)
    f = count / endurance
    if f < 0.5:
        g = f / 0.5
        return (int(40 + 200 * g), int(160 + 60 * g), 40)
    g = (f - 0.5) / 0.5
    return (240, int(220 - 200 * g), 30)


def render(
    qspi_counts: list[int], qspi_endurance: int, flash_counts: list[int], flash_endurance: int, path: Path
) -> None:
    rows = (len(qspi_counts) + QSPI_COLUMNS - 1) // QSPI_COLUMNS
    width = max(QSPI_COLUMNS * CELL, 8 * FLASH_CELL) + 20
    height = 30 + rows * CELL + 50 + 2 * FLASH_CELL + 40
    img = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.text((10, 5), f"W25Q64 4 KiB sectors (endurance {qspi_endurance}), row = 256 KiB", fill=(0, 0, 0))
    top = 20
    for i, c in enumerate(qspi_counts):
        x, y = 10 + (i % QSPI_COLUMNS) * CELL, top + (i // QSPI_COLUMNS) * CELL
        d.rectangle([x, y, x + CELL - 2, y + CELL - 2], fill=_color(c, qspi_endurance))
    top += rows * CELL + 15
    d.text((10, top), f"STM32H743 flash 128 KiB sectors (endurance {flash_endurance})", fill=(0, 0, 0))
    top += 15
    for i, c in enumerate(flash_counts):
        x, y = 10 + (i % 8) * FLASH_CELL, top + (i // 8) * FLASH_CELL
        d.rectangle([x, y, x + FLASH_CELL - 3, y + FLASH_CELL - 3], fill=_color(c, flash_endurance))
        d.text((x + 3, y + 3), f"{i // 8 + 1}.{i % 8}", fill=(255, 255, 255))
        d.text((x + 3, y + 20), str(c), fill=(255, 255, 255))
    top += 2 * FLASH_CELL + 10
    worn_q = sum(1 for c in qspi_counts if c > qspi_endurance)
    worn_f = sum(1 for c in flash_counts if c > flash_endurance)
    d.text(
        (10, top),
        f"max erases: QSPI {max(qspi_counts, default=0)}, flash {max(flash_counts, default=0)}; "
        f"worn out: QSPI {worn_q}, flash {worn_f}",
        fill=(0, 0, 0),
    )
    img.save(path, "PNG")
