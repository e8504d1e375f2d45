"""STM32H743 FLASH interface model: registers, keys, programming, erase, misuse, wear, ECC, power cut.

Register offsets, bits, keys and timings are FACTS.md §B; sequences follow §B.5 (as ST's HAL does).
"""

from __future__ import annotations

import json

import pytest

from peripherals.flash_interface import (
    BANK_SIZE,
    DBECCERR,
    EOP,
    FLASH_BASE,
    FLASH_SIZE,
    INCERR,
    KEY1,
    KEY2,
    OPERR,
    OPTKEY1,
    OPTKEY2,
    PGSERR,
    REGISTER_BASE,
    SECTOR_SIZE,
    SNECCERR,
    SR_BSY,
    SR_QW,
    SR_WBNE,
    STRBERR,
    WRPERR,
    FlashInterface,
)
from peripherals.power_cut import PowerCutPlan
from peripherals.standalone_host import BusError, StandaloneHost

US = 1_000
MS = 1_000_000
S = 1_000_000_000

ACR, KEYR1, OPTKEYR, CR1, SR1, CCR1, OPTCR, OPTSR_CUR, OPTSR_PRG = (
    0x00,
    0x04,
    0x08,
    0x0C,
    0x10,
    0x14,
    0x18,
    0x1C,
    0x20,
)
WPSN_CUR1, WPSN_PRG1, BOOT_CUR, ECC_FA1 = 0x38, 0x3C, 0x40, 0x60
KEYR2, CR2, SR2, CCR2, WPSN_CUR2, ECC_FA2 = 0x104, 0x10C, 0x110, 0x114, 0x138, 0x160

# CR bits
LOCK, PG, SER, BER, FW, START = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 6, 1 << 7
PSIZE_X8, PSIZE_X64 = 0 << 4, 3 << 4
EOPIE, PGSERRIE, OPERRIE, DBECCERRIE = 1 << 16, 1 << 18, 1 << 22, 1 << 26
# OPTCR bits
OPTLOCK, OPTSTART, MER = 1 << 0, 1 << 1, 1 << 4
ALL_ERRORS = 0x17EE0000  # HAL's FLASH_FLAG_ALL_ERRORS_BANK1 | CRCRDERR
WORD = bytes(range(0x10, 0x30))  # 32 distinct bytes, every one has zero bits


def set_bits(flash: FlashInterface, offset: int, bits: int) -> None:
    """SET_BIT(reg, bits): read-modify-write, as the HAL does."""
    flash.write(offset, 4, flash.read(offset, 4) | bits)


def snb(n: int) -> int:
    return n << 8


@pytest.fixture
def flash(host: StandaloneHost) -> FlashInterface:
    return FlashInterface(host)


def unlock(flash: FlashInterface, bank: int = 1) -> None:
    keyr = KEYR1 if bank == 1 else KEYR2
    flash.write(keyr, 4, KEY1)
    flash.write(keyr, 4, KEY2)


def cr(bank: int) -> int:
    return CR1 if bank == 1 else CR2


def sr(bank: int) -> int:
    return SR1 if bank == 1 else SR2


def write_bytes(host: StandaloneHost, address: int, data: bytes, size: int = 4) -> None:
    for i in range(0, len(data), size):
        host.cpu_write(address + i, size, int.from_bytes(data[i : i + size], "little"))


def program(host: StandaloneHost, flash: FlashInterface, address: int, data: bytes, bank: int = 1) -> None:
    """HAL_FLASH_Program for one flash word (PG, 8 x 32-bit stores, wait QW, PG off)."""
    flash.write(cr(bank), 4, flash.read(cr(bank), 4) | PG)
    write_bytes(host, address, data)
    host.run_until_idle()
    flash.write(cr(bank), 4, flash.read(cr(bank), 4) & ~PG)


def erase_sector(host: StandaloneHost, flash: FlashInterface, bank: int, sector: int) -> None:
    flash.write(cr(bank), 4, (flash.read(cr(bank), 4) & ~0x730) | SER | PSIZE_X64 | snb(sector) | START)
    host.run_until_idle()


def flash_bytes(flash: FlashInterface, address: int, n: int) -> bytes:
    off = address - FLASH_BASE
    return bytes(flash.array[off : off + n])


# ================================================================================================
# reset values, window, ACR
# ================================================================================================
def test_reset_values_per_reference_manual(flash: FlashInterface) -> None:
    assert flash.read(ACR, 4) == 0x37
    assert flash.read(0x100, 4) == 0x37  # ACR alias
    assert flash.read(CR1, 4) == 0x31 and flash.read(CR2, 4) == 0x31
    assert flash.read(SR1, 4) == 0 and flash.read(SR2, 4) == 0
    assert flash.read(OPTCR, 4) == OPTLOCK and flash.read(0x118, 4) == OPTLOCK
    assert (flash.read(OPTSR_CUR, 4) >> 8) & 0xFF == 0xAA  # RDP level 0
    assert flash.read(OPTSR_PRG, 4) == flash.read(OPTSR_CUR, 4)
    assert flash.read(WPSN_CUR1, 4) == 0xFF and flash.read(WPSN_CUR2, 4) == 0xFF
    assert flash.read(BOOT_CUR, 4) == 0x1FF0_0800
    assert flash.read(KEYR1, 4) == 0 and flash.read(ECC_FA1, 4) == 0


def test_banks_published_as_executable_window_of_erased_bytes(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    base, buf, executable, on_write = host.windows["flash"]
    assert base == FLASH_BASE and buf is flash.array and len(buf) == FLASH_SIZE == 2 * 1024 * 1024
    assert executable and on_write is not None
    assert host.cpu_read(FLASH_BASE, 4) == 0xFFFF_FFFF
    assert host.cpu_read(FLASH_BASE + FLASH_SIZE - 4, 4) == 0xFFFF_FFFF


def test_acr_reads_back_written_latency_at_once(flash: FlashInterface) -> None:
    flash.write(ACR, 4, 0x24)  # LATENCY 4, WRHIGHFREQ 2 (HAL at 480 MHz)
    assert flash.read(ACR, 4) == 0x24
    assert flash.read(0x100, 4) == 0x24
    flash.reset()
    assert flash.read(ACR, 4) == 0x37


# ================================================================================================
# keys and locks
# ================================================================================================
def test_unlock_sequence_clears_lock_of_that_bank_only(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash, 1)
    assert flash.read(CR1, 4) & LOCK == 0
    assert flash.read(CR2, 4) & LOCK == 1
    unlock(flash, 2)
    assert flash.read(CR2, 4) & LOCK == 0
    assert host.bus_errors == []


def test_setting_lock_relocks_and_leaves_other_bits(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash)
    flash.write(CR1, 4, PG | PSIZE_X64 | EOPIE)
    flash.write(CR1, 4, LOCK | SER)  # LOCK 0 -> 1: the other bits do not change
    assert flash.read(CR1, 4) == LOCK | PG | PSIZE_X64 | EOPIE
    flash.write(CR1, 4, 0)  # locked: PG cannot be cleared
    assert flash.read(CR1, 4) == LOCK | PG | PSIZE_X64 | EOPIE
    unlock(flash)  # a fresh sequence unlocks again
    assert flash.read(CR1, 4) & LOCK == 0
    assert host.bus_errors == []


def test_cr_bits_other_than_lock_ignore_writes_while_locked(flash: FlashInterface) -> None:
    flash.write(CR1, 4, PG | SER | EOPIE | PSIZE_X8)
    assert flash.read(CR1, 4) == 0x31


def _wrong_first_key(f: FlashInterface) -> None:
    f.write(KEYR1, 4, KEY2)


def _wrong_second_key(f: FlashInterface) -> None:
    f.write(KEYR1, 4, KEY1)
    f.write(KEYR1, 4, KEY1)


def _third_key(f: FlashInterface) -> None:
    unlock(f)
    f.write(KEYR1, 4, KEY1)


def _register_between_keys(f: FlashInterface) -> None:
    f.write(KEYR1, 4, KEY1)
    f.write(CCR1, 4, EOP)
    f.write(KEYR1, 4, KEY2)


def _halfword_key(f: FlashInterface) -> None:
    f.write(KEYR1, 2, KEY1 & 0xFFFF)


def _byte_key_in_upper_lane(f: FlashInterface) -> None:
    f.write(KEYR1, 4, KEY1)
    f.write(KEYR1 + 3, 1, KEY2 >> 24)


@pytest.mark.parametrize(
    "mistake,where",
    [
        (_wrong_first_key, KEYR1),
        (_wrong_second_key, KEYR1),
        (_third_key, KEYR1),
        (_register_between_keys, CCR1),
        (_halfword_key, KEYR1),
        (_byte_key_in_upper_lane, KEYR1 + 3),
    ],
)
def test_key_mistake_locks_until_reset_with_bus_error(
    host: StandaloneHost, flash: FlashInterface, mistake, where: int
) -> None:
    mistake(flash)
    assert flash.read(CR1, 4) & LOCK
    assert host.bus_errors[0][0] == REGISTER_BASE + where
    errors = len(host.bus_errors)
    unlock(flash)  # the right sequence no longer helps
    assert flash.read(CR1, 4) & LOCK
    assert len(host.bus_errors) > errors
    assert flash.read(CR2, 4) & LOCK  # bank 2 untouched, still unlockable
    unlock(flash, 2)
    assert flash.read(CR2, 4) & LOCK == 0
    flash.reset()
    errors = len(host.bus_errors)
    unlock(flash)
    assert flash.read(CR1, 4) & LOCK == 0
    assert len(host.bus_errors) == errors


def test_writing_other_bank_between_keys_is_not_a_sequence_error(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    flash.write(KEYR1, 4, KEY1)
    flash.write(KEYR2, 4, KEY1)
    flash.write(KEYR2, 4, KEY2)
    flash.write(KEYR1, 4, KEY2)
    assert flash.read(CR1, 4) & LOCK == 0 and flash.read(CR2, 4) & LOCK == 0
    assert host.bus_errors == []


def test_option_key_unlocks_optcr_through_either_address(host: StandaloneHost, flash: FlashInterface) -> None:
    flash.write(OPTKEYR, 4, OPTKEY1)
    flash.write(0x108, 4, OPTKEY2)
    assert flash.read(OPTCR, 4) & OPTLOCK == 0
    flash.write(OPTCR, 4, OPTLOCK)
    assert flash.read(OPTCR, 4) & OPTLOCK
    assert host.bus_errors == []


def test_wrong_option_key_locks_until_reset(host: StandaloneHost, flash: FlashInterface) -> None:
    flash.write(OPTKEYR, 4, KEY1)
    assert host.bus_errors[-1][0] == REGISTER_BASE + OPTKEYR
    flash.write(OPTKEYR, 4, OPTKEY1)
    flash.write(OPTKEYR, 4, OPTKEY2)
    assert flash.read(OPTCR, 4) & OPTLOCK
    flash.reset()
    flash.write(OPTKEYR, 4, OPTKEY1)
    flash.write(OPTKEYR, 4, OPTKEY2)
    assert flash.read(OPTCR, 4) & OPTLOCK == 0


def test_option_register_written_between_option_keys_locks_until_reset(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    flash.write(OPTKEYR, 4, OPTKEY1)
    flash.write(OPTSR_PRG, 4, flash.read(OPTSR_PRG, 4))
    flash.write(OPTKEYR, 4, OPTKEY2)
    assert flash.read(OPTCR, 4) & OPTLOCK
    assert host.bus_errors[0][0] == REGISTER_BASE + OPTSR_PRG


def test_sr_is_read_only_and_ccr_reads_zero(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash)
    flash.write(SR1, 4, 0xFFFF_FFFF)
    assert flash.read(SR1, 4) == 0
    host.cpu_write(FLASH_BASE, 4, 0)  # PG = 0: PGSERR
    assert flash.read(SR1, 4) == PGSERR
    flash.write(CCR1, 4, STRBERR)  # clearing another flag leaves PGSERR
    assert flash.read(SR1, 4) == PGSERR
    flash.write(CCR1, 4, PGSERR)
    assert flash.read(SR1, 4) == 0
    assert flash.read(CCR1, 4) == 0


# ================================================================================================
# programming
# ================================================================================================
def test_program_word_takes_100us_at_reset_psize_and_sets_eop(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    unlock(flash)
    set_bits(flash, CR1, PG)  # HAL keeps the reset PSIZE (x64)
    addr = FLASH_BASE + 0x20000
    write_bytes(host, addr, WORD[:28])
    assert flash.read(SR1, 4) == SR_WBNE  # partially filled, nothing queued
    write_bytes(host, addr + 28, WORD[28:])
    assert flash.read(SR1, 4) == SR_QW | SR_BSY
    assert flash_bytes(flash, addr, 32) == b"\xff" * 32  # not yet
    host.advance(100 * US - 1)
    assert flash.read(SR1, 4) & SR_QW
    host.advance(1)
    assert flash.read(SR1, 4) == EOP
    assert flash_bytes(flash, addr, 32) == WORD
    assert host.cpu_read(addr, 4) == int.from_bytes(WORD[:4], "little")
    assert (addr, 32) in host.invalidations


@pytest.mark.parametrize("psize,tprog_us", [(0, 290), (1, 180), (2, 130), (3, 100)])
def test_program_time_follows_psize(
    host: StandaloneHost, flash: FlashInterface, psize: int, tprog_us: int
) -> None:
    unlock(flash)
    flash.write(CR1, 4, PG | psize << 4)
    write_bytes(host, FLASH_BASE, WORD)
    host.advance(tprog_us * US - 1)
    assert flash.read(SR1, 4) & SR_QW
    host.advance(1)
    assert flash.read(SR1, 4) == EOP


@pytest.mark.parametrize("size", [1, 2, 8])
def test_any_access_size_fills_the_buffer(host: StandaloneHost, flash: FlashInterface, size: int) -> None:
    unlock(flash)
    set_bits(flash, CR1, PG)
    write_bytes(host, FLASH_BASE + 0x40, WORD, size)
    host.run_until_idle()
    assert flash_bytes(flash, FLASH_BASE + 0x40, 32) == WORD
    assert flash.read(SR1, 4) == EOP


def test_bank2_programs_through_its_own_registers(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash, 2)
    addr = FLASH_BASE + BANK_SIZE + 0x60
    program(host, flash, addr, WORD, bank=2)
    assert flash_bytes(flash, addr, 32) == WORD
    assert flash.read(SR2, 4) == EOP and flash.read(SR1, 4) == 0


def test_second_word_queues_behind_first(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash)
    set_bits(flash, CR1, PG)
    write_bytes(host, FLASH_BASE, WORD)
    host.advance(10 * US)
    write_bytes(host, FLASH_BASE + 32, WORD)
    host.advance(90 * US)  # first done, second started at 100 us
    assert flash_bytes(flash, FLASH_BASE, 32) == WORD
    assert flash.read(SR1, 4) & SR_QW
    host.advance(100 * US)
    assert flash_bytes(flash, FLASH_BASE + 32, 32) == WORD
    assert flash.read(SR1, 4) & SR_QW == 0


def test_programming_ands_with_old_content_and_marks_ecc(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash)
    a = bytes([0xF0] * 32)
    b = bytes([0x3C] * 32)
    program(host, flash, FLASH_BASE, a)
    program(host, flash, FLASH_BASE, b)  # not virgin: AND, ECC now inconsistent
    assert flash_bytes(flash, FLASH_BASE, 32) == bytes([0x30] * 32)
    with pytest.raises(BusError):
        host.cpu_read(FLASH_BASE + 4, 4)
    assert flash.read(SR1, 4) & DBECCERR


@pytest.mark.parametrize("second", [bytes([0xF0] * 32), b"\xff" * 32])
def test_reprogramming_same_data_or_ones_keeps_ecc_consistent(
    host: StandaloneHost, flash: FlashInterface, second: bytes
) -> None:
    unlock(flash)
    program(host, flash, FLASH_BASE, bytes([0xF0] * 32))
    set_bits(flash, CR1, PG)
    write_bytes(host, FLASH_BASE, second)
    host.run_until_idle()
    assert flash_bytes(flash, FLASH_BASE, 32) == bytes([0xF0] * 32)
    assert host.cpu_read(FLASH_BASE, 4) == 0xF0F0F0F0
    assert flash.read(SR1, 4) & (DBECCERR | SNECCERR) == 0


def test_force_write_programs_partial_word_with_ones(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash)
    set_bits(flash, CR1, PG)
    write_bytes(host, FLASH_BASE + 0x100, WORD[:8])
    set_bits(flash, CR1, FW)
    assert flash.read(SR1, 4) == SR_QW | SR_BSY
    assert flash.read(CR1, 4) & FW == 0  # self-clearing
    host.advance(100 * US)
    assert flash_bytes(flash, FLASH_BASE + 0x100, 32) == WORD[:8] + b"\xff" * 24
    assert flash.read(SR1, 4) == EOP


def test_force_write_without_zero_bits_has_no_effect(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash)
    set_bits(flash, CR1, PG)
    host.cpu_write(FLASH_BASE, 4, 0xFFFF_FFFF)
    set_bits(flash, CR1, FW)
    assert flash.read(SR1, 4) == SR_WBNE
    host.run_until_idle()
    assert flash.read(SR1, 4) & EOP == 0


def test_clearing_pg_discards_unqueued_data(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash)
    set_bits(flash, CR1, PG)
    write_bytes(host, FLASH_BASE, WORD[:16])
    flash.write(CR1, 4, flash.read(CR1, 4) & ~PG)
    assert flash.read(SR1, 4) == 0
    set_bits(flash, CR1, PG)
    write_bytes(host, FLASH_BASE + 16, WORD[16:])  # a new word: only its second half was written
    assert flash.read(SR1, 4) == SR_WBNE
    host.run_until_idle()
    assert flash_bytes(flash, FLASH_BASE, 32) == b"\xff" * 32


# ================================================================================================
# misuse (FACTS §B.6)
# ================================================================================================
def test_write_with_pg_clear_sets_pgserr_without_bus_error(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    unlock(flash)
    set_bits(flash, CR1, PGSERRIE)
    host.cpu_write(FLASH_BASE, 4, 0)
    assert flash.read(SR1, 4) == PGSERR
    assert host.bus_errors == []
    assert flash_bytes(flash, FLASH_BASE, 4) == b"\xff" * 4
    assert host.irqs[4] is True


def test_same_byte_twice_sets_strberr_and_new_value_wins(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash)
    set_bits(flash, CR1, PG)
    host.cpu_write(FLASH_BASE, 4, 0x11111111)
    host.cpu_write(FLASH_BASE + 2, 1, 0x22)
    assert flash.read(SR1, 4) == STRBERR | SR_WBNE
    write_bytes(host, FLASH_BASE + 4, WORD[4:])
    host.run_until_idle()
    assert flash_bytes(flash, FLASH_BASE, 4) == bytes([0x11, 0x11, 0x22, 0x11])
    assert flash.read(SR1, 4) == STRBERR | EOP


def test_different_word_before_full_sets_incerr_and_blocks(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    unlock(flash)
    set_bits(flash, CR1, PG)
    host.cpu_write(FLASH_BASE, 4, 0)
    host.cpu_write(FLASH_BASE + 0x40, 4, 0)
    assert flash.read(SR1, 4) == INCERR  # buffer dropped
    host.cpu_write(FLASH_BASE + 0x40, 4, 0)  # write while INCERR is set
    assert flash.read(SR1, 4) == INCERR | PGSERR
    flash.write(CCR1, 4, INCERR)
    host.cpu_write(FLASH_BASE + 0x40, 4, 0)  # PGSERR still blocks programming
    assert flash.read(SR1, 4) == PGSERR
    flash.write(CCR1, 4, PGSERR)
    write_bytes(host, FLASH_BASE + 0x40, WORD)
    host.run_until_idle()
    assert flash_bytes(flash, FLASH_BASE, 32) == b"\xff" * 32
    assert flash_bytes(flash, FLASH_BASE + 0x40, 32) == WORD
    assert flash.read(SR1, 4) == EOP


def test_burst_crossing_flash_word_sets_incerr(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash)
    set_bits(flash, CR1, PG)
    host.cpu_write(FLASH_BASE + 28, 8, 0)
    assert flash.read(SR1, 4) == INCERR
    host.run_until_idle()
    assert flash_bytes(flash, FLASH_BASE, 64) == b"\xff" * 64


def test_write_protected_sector_refuses_program_and_erase(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    flash.set_write_protection(1, True)
    assert flash.read(WPSN_CUR1, 4) == 0xFD
    unlock(flash)
    addr = FLASH_BASE + SECTOR_SIZE
    program(host, flash, addr, WORD)
    assert flash.read(SR1, 4) & WRPERR
    assert flash_bytes(flash, addr, 32) == b"\xff" * 32
    flash.write(CCR1, 4, ALL_ERRORS | EOP)
    flash.array[SECTOR_SIZE : SECTOR_SIZE + 4] = b"\0\0\0\0"  # pretend it holds data
    erase_sector(host, flash, 1, 1)
    assert flash.read(SR1, 4) == WRPERR
    assert flash_bytes(flash, addr, 4) == b"\0\0\0\0"
    assert flash.erase_counts[1] == 0
    # WRPERR does not block other sectors
    program(host, flash, FLASH_BASE + 2 * SECTOR_SIZE, WORD)
    assert flash_bytes(flash, FLASH_BASE + 2 * SECTOR_SIZE, 32) == WORD


def test_bank_erase_with_a_protected_sector_is_refused(host: StandaloneHost, flash: FlashInterface) -> None:
    flash.set_write_protection(8 + 7, True)  # bank 2, sector 7
    flash.array[BANK_SIZE : BANK_SIZE + 4] = b"\0\0\0\0"
    unlock(flash, 2)
    flash.write(CR2, 4, BER | PSIZE_X64 | START)
    assert flash.read(SR2, 4) == WRPERR
    host.run_until_idle()
    assert flash_bytes(flash, FLASH_BASE + BANK_SIZE, 4) == b"\0\0\0\0"


def test_write_protection_through_option_registers(host: StandaloneHost, flash: FlashInterface) -> None:
    flash.write(WPSN_PRG1, 4, 0xFB)  # OPTLOCK set: ignored
    assert flash.read(WPSN_PRG1, 4) == 0xFF
    flash.write(OPTKEYR, 4, OPTKEY1)
    flash.write(OPTKEYR, 4, OPTKEY2)
    flash.write(WPSN_PRG1, 4, 0xFB)  # protect sector 2
    assert flash.read(WPSN_CUR1, 4) == 0xFF
    flash.write(OPTCR, 4, OPTSTART)
    assert flash.read(WPSN_CUR1, 4) == 0xFB
    assert flash.read(OPTSR_CUR, 4) & 1 == 0  # OPT_BUSY clear
    assert flash.option_bytes.wpsn[0] == 0xFB
    unlock(flash)
    erase_sector(host, flash, 1, 2)
    assert flash.read(SR1, 4) == WRPERR
    flash.reset()  # option bytes are non-volatile
    assert flash.read(WPSN_CUR1, 4) == 0xFB and flash.read(WPSN_PRG1, 4) == 0xFB


def test_unmodelled_option_change_is_refused_with_optchangeerr(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    flash.write(OPTKEYR, 4, OPTKEY1)
    flash.write(OPTKEYR, 4, OPTKEY2)
    flash.write(OPTCR, 4, 1 << 30)  # OPTCHANGEERRIE
    flash.write(OPTSR_PRG, 4, flash.read(OPTSR_PRG, 4) | 1 << 31)  # SWAP_BANK_OPT
    flash.write(OPTCR, 4, (1 << 30) | OPTSTART)
    assert flash.read(OPTSR_CUR, 4) & (1 << 30)
    assert flash.read(OPTSR_CUR, 4) & (1 << 31) == 0
    assert host.irqs[4] is True
    flash.write(0x24, 4, 1 << 30)  # OPTCCR.CLR_OPTCHANGEERR
    assert flash.read(OPTSR_CUR, 4) & (1 << 30) == 0
    assert host.irqs[4] is False


# ================================================================================================
# erase
# ================================================================================================
def test_sector_erase_takes_one_second_and_erases_only_that_sector(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    flash.array[3 * SECTOR_SIZE : 5 * SECTOR_SIZE] = bytes(2 * SECTOR_SIZE)
    unlock(flash)
    flash.write(CR1, 4, SER | PSIZE_X64 | snb(3) | START)  # HAL's single OR-write
    assert flash.read(SR1, 4) == SR_QW | SR_BSY
    assert flash.read(CR1, 4) & START == 0
    host.advance(S - 1)
    assert flash.read(SR1, 4) & SR_QW
    assert flash.array[3 * SECTOR_SIZE] == 0
    host.advance(1)
    assert flash.read(SR1, 4) == EOP
    assert flash.array[3 * SECTOR_SIZE : 4 * SECTOR_SIZE] == b"\xff" * SECTOR_SIZE
    assert flash.array[4 * SECTOR_SIZE : 5 * SECTOR_SIZE] == bytes(SECTOR_SIZE)
    assert flash.array[3 * SECTOR_SIZE - 1] == 0xFF
    assert flash.erase_counts == [0, 0, 0, 1] + [0] * 12
    assert (FLASH_BASE + 3 * SECTOR_SIZE, SECTOR_SIZE) in host.invalidations


@pytest.mark.parametrize("psize,seconds", [(0, 2.0), (1, 1.8), (2, 1.1), (3, 1.0)])
def test_sector_erase_time_follows_psize(
    host: StandaloneHost, flash: FlashInterface, psize: int, seconds
) -> None:
    unlock(flash, 2)
    flash.write(CR2, 4, SER | psize << 4 | snb(5) | START)
    t = round(seconds * S)
    host.advance(t - 1)
    assert flash.read(SR2, 4) & SR_QW
    host.advance(1)
    assert flash.read(SR2, 4) == EOP
    assert flash.erase_counts[8 + 5] == 1


def test_bank_erase_erases_whole_bank_in_eight_sector_times(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    flash.array[:] = bytes(FLASH_SIZE)
    unlock(flash)
    flash.write(CR1, 4, BER | PSIZE_X64 | START)
    host.advance(8 * S - 1)
    assert flash.read(SR1, 4) & SR_QW
    host.advance(1)
    assert flash.read(SR1, 4) == EOP
    assert flash.array[:BANK_SIZE] == b"\xff" * BANK_SIZE
    assert flash.array[BANK_SIZE:] == bytes(BANK_SIZE)
    assert flash.erase_counts == [1] * 8 + [0] * 8


def test_mass_erase_needs_optcr_unlocked_and_erases_both_banks(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    flash.array[:] = bytes(FLASH_SIZE)
    unlock(flash, 1)
    unlock(flash, 2)
    flash.write(CR1, 4, PSIZE_X64)
    flash.write(CR2, 4, PSIZE_X64)
    flash.write(OPTCR, 4, MER)  # OPTLOCK still set: nothing happens
    assert flash.read(SR1, 4) == 0 and flash.read(SR2, 4) == 0
    flash.write(OPTKEYR, 4, OPTKEY1)
    flash.write(OPTKEYR, 4, OPTKEY2)
    flash.write(OPTCR, 4, MER)
    assert flash.read(SR1, 4) & SR_QW and flash.read(SR2, 4) & SR_QW
    assert flash.read(OPTCR, 4) & MER == 0
    host.advance(8 * S)
    assert flash.read(SR1, 4) == EOP and flash.read(SR2, 4) == EOP
    assert flash.array == b"\xff" * FLASH_SIZE
    assert flash.erase_counts == [1] * 16


def test_mass_erase_with_a_locked_bank_does_nothing(host: StandaloneHost, flash: FlashInterface) -> None:
    flash.array[0] = 0
    unlock(flash, 1)  # CR2 stays locked
    flash.write(OPTKEYR, 4, OPTKEY1)
    flash.write(OPTKEYR, 4, OPTKEY2)
    flash.write(OPTCR, 4, MER)
    host.run_until_idle()
    assert flash.read(SR1, 4) == 0 and flash.read(SR2, 4) == 0
    assert flash.array[0] == 0 and flash.erase_counts == [0] * 16


def test_hal_style_erase_then_program_sequence(host: StandaloneHost, flash: FlashInterface) -> None:
    """HAL_FLASH_Unlock, HAL_FLASHEx_Erase(sector 1), HAL_FLASH_Program(0x08020000), as §B.5 lists."""
    flash.array[SECTOR_SIZE : SECTOR_SIZE + 32] = bytes(32)
    if flash.read(CR1, 4) & LOCK:
        unlock(flash)
    if flash.read(CR2, 4) & LOCK:
        unlock(flash, 2)
    assert flash.read(SR1, 4) & SR_QW == 0
    v = flash.read(CR1, 4) & ~(0x30 | 0x700)
    flash.write(CR1, 4, v | SER | PSIZE_X64 | snb(1) | START)
    while flash.read(SR1, 4) & SR_QW:
        host.advance(MS)
    assert flash.read(SR1, 4) & ALL_ERRORS == 0
    flash.write(CCR1, 4, EOP | ALL_ERRORS)
    flash.write(CR1, 4, flash.read(CR1, 4) & ~(SER | 0x700))
    flash.write(CR1, 4, flash.read(CR1, 4) | PG)
    write_bytes(host, FLASH_BASE + SECTOR_SIZE, WORD)
    while flash.read(SR1, 4) & SR_QW:
        host.advance(10 * US)
    assert flash.read(SR1, 4) == EOP
    flash.write(CCR1, 4, EOP)
    flash.write(CR1, 4, flash.read(CR1, 4) & ~PG)
    flash.write(CR1, 4, LOCK)
    assert flash.read(CR1, 4) == 0x31
    assert flash_bytes(flash, FLASH_BASE + SECTOR_SIZE, 32) == WORD
    assert host.events.now == 1 * S + 100 * US


def test_fast_profile_completes_without_delay(host: StandaloneHost) -> None:
    flash = FlashInterface(host, timing="fast")
    unlock(flash)
    set_bits(flash, CR1, PG)
    write_bytes(host, FLASH_BASE, WORD)
    host.advance(0)
    assert flash.read(SR1, 4) == EOP
    assert flash_bytes(flash, FLASH_BASE, 32) == WORD


def test_bad_timing_profile_is_refused(host: StandaloneHost) -> None:
    with pytest.raises(ValueError, match="timing profile"):
        FlashInterface(host, timing="slow")


# ================================================================================================
# wear
# ================================================================================================
def _worn_program(seed: int) -> bytes:
    host = StandaloneHost()
    flash = FlashInterface(host, endurance=1, seed=seed, timing="fast")
    unlock(flash)
    erase_sector(host, flash, 1, 2)  # cycle 1: fine
    assert flash.read(SR1, 4) == EOP
    flash.write(CCR1, 4, EOP)
    erase_sector(host, flash, 1, 2)  # cycle 2 > endurance
    assert flash.read(SR1, 4) == OPERR
    flash.write(CCR1, 4, OPERR)
    program(host, flash, FLASH_BASE + 2 * SECTOR_SIZE, bytes(32))
    assert flash.read(SR1, 4) == OPERR
    assert flash.erase_counts[2] == 2
    return flash_bytes(flash, FLASH_BASE + 2 * SECTOR_SIZE, 32)


def test_worn_sector_program_fails_with_operr_deterministically() -> None:
    first = _worn_program(seed=7)
    assert first != bytes(32)  # some bits stayed 1
    assert _worn_program(seed=7) == first
    assert _worn_program(seed=8) != first


def _worn_erase(seed: int) -> bytes:
    host = StandaloneHost()
    flash = FlashInterface(host, endurance=3, seed=seed, timing="fast")
    flash.erase_counts[4] = 3
    flash.array[4 * SECTOR_SIZE : 5 * SECTOR_SIZE] = bytes(SECTOR_SIZE)
    unlock(flash)
    set_bits(flash, CR1, OPERRIE)
    erase_sector(host, flash, 1, 4)
    assert flash.read(SR1, 4) == OPERR
    assert host.irqs[4] is True
    return bytes(flash.array[4 * SECTOR_SIZE : 5 * SECTOR_SIZE])


def test_worn_sector_erase_leaves_some_bits_unerased_per_seed() -> None:
    result = _worn_erase(seed=1)
    bad_words = [i for i in range(0, SECTOR_SIZE, 32) if result[i : i + 32] != b"\xff" * 32]
    assert 1 <= len(bad_words) <= 8
    assert result.count(0xFF) > SECTOR_SIZE - 8 * 32
    assert _worn_erase(seed=1) == result
    assert _worn_erase(seed=2) != result


# ================================================================================================
# ECC
# ================================================================================================
def test_single_ecc_error_is_corrected_and_reported(host: StandaloneHost, flash: FlashInterface) -> None:
    addr = FLASH_BASE + 0x1234_0 + 8
    flash.array[addr - FLASH_BASE] = 0x5A
    flash.inject_ecc_error(addr, double=False)
    assert flash.read(SR1, 4) == 0  # nothing until it is read
    assert host.cpu_read(addr, 1) == 0x5A
    assert flash.read(SR1, 4) == SNECCERR
    assert flash.read(ECC_FA1, 4) == (addr - FLASH_BASE) // 32
    assert host.bus_errors == []
    flash.write(CCR1, 4, SNECCERR)
    assert flash.read(SR1, 4) == 0 and flash.read(ECC_FA1, 4) == 0


def test_double_ecc_error_in_bank2_ends_read_in_bus_error(
    host: StandaloneHost, flash: FlashInterface
) -> None:
    addr = FLASH_BASE + BANK_SIZE + 0x40020
    unlock(flash, 2)
    set_bits(flash, CR2, DBECCERRIE)
    flash.inject_ecc_error(addr + 5, double=True)
    assert host.cpu_read(addr - 4, 4) == 0xFFFF_FFFF  # the neighbouring word reads fine
    with pytest.raises(BusError, match="double ECC"):
        host.cpu_read(addr + 28, 4)
    assert flash.read(SR2, 4) == DBECCERR and flash.read(SR1, 4) == 0
    assert flash.read(ECC_FA2, 4) == 0x40020 // 32
    assert host.irqs[4] is True
    flash.write(CCR2, 4, DBECCERR)
    assert host.irqs[4] is False


def test_ecc_fa_keeps_first_error(host: StandaloneHost, flash: FlashInterface) -> None:
    flash.inject_ecc_error(FLASH_BASE + 0x100)
    flash.inject_ecc_error(FLASH_BASE + 0x200)
    host.cpu_read(FLASH_BASE + 0x100, 4)
    host.cpu_read(FLASH_BASE + 0x200, 4)
    assert flash.read(ECC_FA1, 4) == 0x100 // 32


def test_erase_clears_ecc_errors(host: StandaloneHost, flash: FlashInterface) -> None:
    flash.inject_ecc_error(FLASH_BASE + 0x40, double=True)
    unlock(flash)
    erase_sector(host, flash, 1, 0)
    assert host.cpu_read(FLASH_BASE + 0x40, 4) == 0xFFFF_FFFF
    assert flash.read(SR1, 4) == EOP


def test_stuck_bits_apply_to_later_program_and_erase(host: StandaloneHost, flash: FlashInterface) -> None:
    flash.inject_stuck_bit(FLASH_BASE + 3, 0, 0)
    flash.inject_stuck_bit(FLASH_BASE + 5, 7, 1)
    assert flash.array[3] == 0xFF  # only later results are affected
    unlock(flash)
    erase_sector(host, flash, 1, 0)
    assert flash.array[3] == 0xFE
    program(host, flash, FLASH_BASE, bytes(32))
    assert flash.array[3] == 0x00 and flash.array[5] == 0x80 and flash.array[4] == 0x00
    with pytest.raises(ValueError, match="outside flash"):
        flash.inject_stuck_bit(0x2000_0000, 0, 0)


# ================================================================================================
# IRQ line
# ================================================================================================
def test_irq_is_or_of_enabled_flags_over_both_banks(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash, 1)
    unlock(flash, 2)
    set_bits(flash, CR1, PG)
    write_bytes(host, FLASH_BASE, WORD)
    host.run_until_idle()
    assert host.irqs.get(4, False) is False  # EOP set but EOPIE clear
    set_bits(flash, CR1, EOPIE)  # enabling with the flag pending raises the line
    assert host.irqs[4] is True
    set_bits(flash, CR2, PG | EOPIE)
    write_bytes(host, FLASH_BASE + BANK_SIZE, WORD)
    host.run_until_idle()
    flash.write(CCR1, 4, EOP)
    assert host.irqs[4] is True  # bank 2 still pending
    flash.write(CCR2, 4, EOP)
    assert host.irqs[4] is False
    times = [t for t, irq, level in host.irq_history if irq == 4 and level]
    assert times == [100 * US]


# ================================================================================================
# power cut and reset during operations
# ================================================================================================
def test_power_cut_during_program_leaves_half_word_and_bad_ecc(host: StandaloneHost) -> None:
    plan = PowerCutPlan(on_event="flash.program", fraction=0.5)
    flash = FlashInterface(host, power_cut=plan)
    unlock(flash)
    set_bits(flash, CR1, PG)
    write_bytes(host, FLASH_BASE + 0x80, WORD)
    host.advance(50 * US - 1)
    assert host.powered_off is None
    host.advance(1)
    assert host.powered_off is not None and "flash.program" in host.powered_off
    assert flash_bytes(flash, FLASH_BASE + 0x80, 32) == WORD[:16] + b"\xff" * 16
    assert plan.log == ["flash.program"]
    flash.reset()  # power-on: registers lost, no OPERR; the torn word is what remains
    assert flash.read(SR1, 4) == 0
    host.advance(S)
    assert flash_bytes(flash, FLASH_BASE + 0x80, 32) == WORD[:16] + b"\xff" * 16
    with pytest.raises(BusError):
        host.cpu_read(FLASH_BASE + 0x80, 4)
    assert flash.read(SR1, 4) == DBECCERR


def test_power_cut_during_sector_erase_leaves_erased_prefix(host: StandaloneHost) -> None:
    plan = PowerCutPlan(after_ops=0, fraction=0.25)
    flash = FlashInterface(host, power_cut=plan)
    flash.array[:] = bytes(FLASH_SIZE)
    unlock(flash)
    erase_sector(host, flash, 1, 6)
    assert host.powered_off is not None
    assert host.events.now == 250 * MS
    s = 6 * SECTOR_SIZE
    assert flash.array[s : s + SECTOR_SIZE // 4] == b"\xff" * (SECTOR_SIZE // 4)
    assert flash.array[s + SECTOR_SIZE // 4 : s + SECTOR_SIZE] == bytes(3 * SECTOR_SIZE // 4)
    assert flash.array[s - 1] == 0 and flash.array[s + SECTOR_SIZE] == 0
    assert flash.erase_counts[6] == 1
    assert flash.read(SR1, 4) & (SR_QW | SR_BSY | EOP) == 0


@pytest.mark.parametrize(
    "fraction,done,counts",
    [
        (0.5 + 1 / 64, BANK_SIZE // 2 + SECTOR_SIZE // 8, [1, 1, 1, 1, 1, 0, 0, 0]),
        (1 / 32, SECTOR_SIZE // 4, [1, 0, 0, 0, 0, 0, 0, 0]),
    ],
)
def test_power_cut_during_bank_erase_erases_sectors_in_order(
    host: StandaloneHost, fraction: float, done: int, counts: list[int]
) -> None:
    plan = PowerCutPlan(on_event="flash.bank_erase", fraction=fraction)
    flash = FlashInterface(host, power_cut=plan)
    flash.array[:] = bytes(FLASH_SIZE)
    unlock(flash)
    flash.write(CR1, 4, BER | PSIZE_X64 | START)
    host.run_until_idle()
    assert host.powered_off is not None
    assert flash.array[:done] == b"\xff" * done
    assert flash.array[done:] == bytes(FLASH_SIZE - done)
    assert flash.erase_counts == counts + [0] * 8


def test_reset_during_program_tears_it_and_reports_operr(host: StandaloneHost, flash: FlashInterface) -> None:
    unlock(flash)
    set_bits(flash, CR1, PG)
    write_bytes(host, FLASH_BASE, WORD)
    host.advance(25 * US)
    flash.reset()
    assert flash.read(SR1, 4) == OPERR
    assert flash.read(CR1, 4) == 0x31
    assert flash_bytes(flash, FLASH_BASE, 32) == WORD[:8] + b"\xff" * 24
    host.run_until_idle()
    assert flash.read(SR1, 4) == OPERR  # the cancelled operation never completes


# ================================================================================================
# metadata
# ================================================================================================
def test_metadata_round_trip(host: StandaloneHost) -> None:
    flash = FlashInterface(host, endurance=5000, seed=42)
    flash.erase_counts[3] = 17
    flash.erase_counts[15] = 9
    flash.inject_stuck_bit(FLASH_BASE + 0x100, 2, 0)
    flash.inject_ecc_error(FLASH_BASE + BANK_SIZE + 0x40, double=True)
    flash.inject_ecc_error(FLASH_BASE + 0x20, double=False)
    flash.set_write_protection(0, True)
    meta = json.loads(json.dumps(flash.to_metadata()))

    host2 = StandaloneHost()
    other = FlashInterface(host2)
    other.load_metadata(meta)
    assert other.to_metadata() == meta
    assert other.endurance == 5000 and other.seed == 42
    assert other.read(WPSN_CUR1, 4) == 0xFE
    with pytest.raises(BusError):
        host2.cpu_read(FLASH_BASE + BANK_SIZE + 0x40, 4)
    host2.cpu_read(FLASH_BASE + 0x20, 4)
    assert other.read(SR1, 4) == SNECCERR


@pytest.mark.parametrize(
    "patch,message",
    [
        ({"erase_counts": [0] * 15}, "erase_counts"),
        ({"version": 99}, "version"),
        ({"stuck_bits": [[0x2000_0000, 0, 0]]}, "outside flash"),
        ({"ecc_errors": [[FLASH_BASE, "triple"]]}, "ecc_errors"),
        ({"option_bytes": {"optsr": 0}}, "wpsn"),
    ],
)
def test_bad_metadata_is_refused_and_changes_nothing(host: StandaloneHost, patch: dict, message: str) -> None:
    flash = FlashInterface(host)
    flash.erase_counts[0] = 3
    before = flash.to_metadata()
    bad = {**before, **patch}
    with pytest.raises(ValueError, match=message):
        flash.load_metadata(bad)
    assert flash.to_metadata() == before
