"""h743sim: a virtual STM32H743 DevEBox board (W25Q64 QSPI NOR, USB DFU bootloader)."""

__version__ = "0.1.0"
