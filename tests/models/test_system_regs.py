"""SYSCFG, EXTI, DBGMCU, system memory (UID, flash size), FMC and the unmodelled-range model."""

from __future__ import annotations

import pytest

from peripherals.dbgmcu import Dbgmcu
from peripherals.exti import Exti
from peripherals.fmc import Fmc
from peripherals.host import NS_PER_MS, WARNING
from peripherals.syscfg import Syscfg
from peripherals.system_memory import DEFAULT_UID, SystemMemory
from peripherals.unmodelled import Unmodelled


def rd(m, off, size=4):
    return m.read(off, size)


def wr(m, off, value, size=4):
    m.write(off, size, value)


# ---------------------------------------------------------------- SYSCFG
def test_syscfg_reset_values_and_exticr(host):
    s = Syscfg(host)
    for off in (0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x20, 0x24, 0x28, 0x2C, 0x124):
        assert rd(s, off) == 0, hex(off)
    wr(s, 0x08 + 4 * (5 // 4), 2 << (4 * (5 % 4)))  # EXTICR2: line 5 <- port C (K2 on PC5)
    assert s.exti_port(5) == 2 and s.exti_port(4) == 0
    with pytest.raises(ValueError):
        s.exti_port(16)


def test_syscfg_compensation_cell_ready(host, poll):
    s = Syscfg(host)
    wr(s, 0x20, 1)  # CCCSR.EN
    assert not rd(s, 0x20) & (1 << 8)
    poll(lambda: rd(s, 0x20) & (1 << 8), NS_PER_MS)
    assert rd(s, 0x24) != 0  # CCVR holds the cell's codes once ready
    wr(s, 0x20, 0)
    assert not rd(s, 0x20) & (1 << 8)


def test_syscfg_oden_locks_and_option_registers(host):
    s = Syscfg(host, package=0x2, user_options={0: 0x00AA_0000, 17: 0x1})
    wr(s, 0x2C, 1)  # PWRCR.ODEN (VOS0 overdrive)
    assert rd(s, 0x2C) == 1
    wr(s, 0x18, 1 << 3)  # CFGR.FLASHL: set-only
    wr(s, 0x18, 0)
    assert rd(s, 0x18) == 1 << 3
    assert rd(s, 0x124) == 0x2  # PKGR
    wr(s, 0x124, 0xF)
    assert rd(s, 0x124) == 0x2
    assert rd(s, 0x300) == 0x00AA_0000 and rd(s, 0x344) == 0x1
    wr(s, 0x300, 0)
    assert rd(s, 0x300) == 0x00AA_0000  # URx are read-only
    defaults = Syscfg(host)
    assert rd(defaults, 0x308) >> 16 == 0x0800  # UR2.BOOT_ADD0
    with pytest.raises(ValueError, match="UR18"):
        Syscfg(host, user_options={18: 0})


# ---------------------------------------------------------------- EXTI
def test_exti_reset_values(host):
    e = Exti(host)
    assert rd(e, 0x80) == 0xFFC0_0000  # CPUIMR1
    for off in (0x00, 0x04, 0x08, 0x0C, 0x84, 0x88, 0x90, 0x98, 0xA0, 0xA8):
        assert rd(e, off) == 0, hex(off)


def test_exti_software_trigger_and_edges_drive_irqs(host):
    e = Exti(host)
    wr(e, 0x08, 1 << 0)  # SWIER1 line 0, masked
    assert rd(e, 0x88) == 1 and not host.irqs.get(6, False)
    wr(e, 0x80, rd(e, 0x80) | 1)  # unmask line 0
    assert host.irqs[6] is True
    wr(e, 0x88, 1)  # CPUPR1 write-1-to-clear
    assert rd(e, 0x88) == 0 and host.irqs[6] is False
    wr(e, 0x80, rd(e, 0x80) | (1 << 5))
    wr(e, 0x04, 1 << 5)  # falling edge on line 5 (K2 press)
    e.signal(5, 1)
    assert rd(e, 0x88) == 0  # rising edge not selected
    e.signal(5, 0)
    assert rd(e, 0x88) == 1 << 5 and host.irqs[23] is True  # EXTI9_5
    with pytest.raises(ValueError):
        e.signal(40, 1)


# ---------------------------------------------------------------- DBGMCU
def test_dbgmcu_idcode(host):
    d = Dbgmcu(host)
    assert rd(d, 0x00) == 0x2003_6450
    assert rd(d, 0x00) >> 16 == 0x2003 and rd(d, 0x00) & 0xFFF == 0x450  # HAL_GetREVID / GetDEVID
    wr(d, 0x00, 0)
    assert rd(d, 0x00) == 0x2003_6450
    assert rd(Dbgmcu(host, rev_id=0x1003), 0x00) == 0x1003_6450
    wr(d, 0x04, 0x0070_0007)
    assert rd(d, 0x04) == 0x0070_0007
    wr(d, 0x54, 0xFFFF_FFFF)  # APB4FZ1: only defined freeze bits stick
    assert rd(d, 0x54) == (1 << 7) | (0xF << 9) | (1 << 16) | (1 << 18)


# ---------------------------------------------------------------- system memory
def test_uid_and_flash_size(host):
    mem = SystemMemory(host)  # mapped at 0x1FF00000, 128 KiB
    uid = b"".join(rd(mem, 0x1E800 + 4 * i).to_bytes(4, "little") for i in range(3))
    assert uid == DEFAULT_UID
    assert rd(mem, 0x1E880, 2) == 0x0800
    assert rd(mem, 0x1E801, 1) == DEFAULT_UID[1]
    custom = SystemMemory(host, uid=bytes(range(12)), flash_size_kb=1024)
    assert rd(custom, 0x1E808) == 0x0B0A_0908 and rd(custom, 0x1E880, 2) == 1024
    wr(custom, 0x1E800, 0)
    assert rd(custom, 0x1E800) == 0x0302_0100


def test_unmodelled_system_memory_reads_zero_and_logs_once(host):
    mem = SystemMemory(host)
    before = len(host.logs)
    assert rd(mem, 0x0) == 0 and rd(mem, 0x4) == 0
    assert len(host.logs) == before + 1
    with pytest.raises(ValueError, match="12 bytes"):
        SystemMemory(host, uid=b"short")


# ---------------------------------------------------------------- FMC
def test_fmc_reset_values_and_systeminit_write(host):
    f = Fmc(host)
    assert rd(f, 0x000) == 0x0000_30DB and rd(f, 0x008) == 0x0000_30D2
    assert rd(f, 0x004) == 0x0FFF_FFFF and rd(f, 0x104) == 0x0FFF_FFFF
    assert rd(f, 0x080) == 0x18 and rd(f, 0x084) == 0x40 and rd(f, 0x088) == 0xFCFC_FCFC
    assert rd(f, 0x140) == 0x2D0 and rd(f, 0x148) == 0x0FFF_FFFF
    wr(f, 0x000, 0x0000_30D2)  # SystemInit: disable bank 1 (clock still gated)
    assert rd(f, 0x000) == 0x0000_30D2
    wr(f, 0x084, 0)
    assert rd(f, 0x084) & 0x40  # FEMPT is read-only


# ---------------------------------------------------------------- unmodelled ranges
def test_unmodelled_range_logs_once_per_offset(host):
    u = Unmodelled(host, name="TIM2", size=0x400, reset_values={0x0C: 0x1234_5678})
    assert rd(u, 0x0C) == 0x1234_5678
    assert rd(u, 0x0E, 2) == 0x1234
    assert rd(u, 0x10) == 0
    wr(u, 0x0C, 0)
    assert rd(u, 0x0C) == 0x1234_5678  # writes are ignored
    assert rd(u, 0x0C) == 0x1234_5678
    messages = [m for lvl, m in host.logs if lvl == WARNING]
    assert len(messages) == 3  # offsets 0x0C, 0x0E, 0x10: each once
    assert all(m.startswith("TIM2+") for m in messages)
    with pytest.raises(ValueError, match="outside"):
        rd(u, 0x400)
    with pytest.raises(ValueError, match="offset"):
        Unmodelled(host, size=0x10, reset_values={0x20: 1})
