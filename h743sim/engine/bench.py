"""Engine throughput: MIPS for compute-bound, memory-bound and MMIO-polling firmware loops, and
interrupt round trips per second (SysTick waking a core that sleeps in WFI).

The loops are assembled at run time (arm-none-eabi binutils) and run deterministically in the
engine's ``count=`` slices. Figures are wall-clock measurements of this machine; the virtual
time they represent is reported too (64 MHz core unless told otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from unicorn import arm_const as arm

from h743sim.engine.cpu import create_cortex_m7
from h743sim.engine.machine import DEFAULT_MAX_SLICE, Machine
from h743sim.engine.thumb_asm import assemble

FLASH = 0x08000000
DTCM = 0x20000000
PERIPH = 0x40000000

_VECTORS = ".org 0\n .word 0x20010000\n .word reset+1\n"

COMPUTE_LOOP = """
reset:
  ldr r1, =0xEDB88320
  movs r0, #0
  movs r2, #0
1: eor r0, r0, r2           @ bitwise CRC-32 step with a counter: register-only work
  lsrs r3, r0, #1
  it cs
  eorcs r3, r3, r1
  mov r0, r3
  adds r2, r2, #3
  add r4, r4, r0, ror #7
  subs r5, r5, #1
  b 1b
"""

MEMORY_LOOP = """
reset:
  ldr r6, =0x20001000
  ldr r7, =0x20008000
1: movs r2, #64
2: ldr r3, [r6], #4         @ word copy with a checksum and a stack round trip
  str r3, [r7], #4
  add r4, r4, r3
  push {r3}
  pop {r5}
  subs r2, #1
  bne 2b
  sub r6, r6, #256
  sub r7, r7, #256
  b 1b
"""

POLL_LOOP = """
reset:
  ldr r6, =0x40000000
1: ldr r1, [r6, #4]          @ status register that never changes: 3 instructions per read
  cmp r1, #1
  bne 1b
  b .
"""

MIXED_LOOP = """
reset:
  ldr r6, =0x40000000
1: movs r2, #32
2: adds r4, r4, r2           @ ~100 instructions of work, then one register read
  eor r5, r5, r4
  subs r2, #1
  bne 2b
  ldr r1, [r6, #4]
  add r4, r4, r1
  b 1b
"""


WAKE_LOOP = """
reset:
  ldr r0, =0xE000E010       @ SysTick: RVR = period - 1, CVR = 0, CSR = CLKSOURCE|TICKINT|ENABLE
  ldr r1, =PERIOD - 1
  str r1, [r0, #4]
  movs r1, #0
  str r1, [r0, #8]
  movs r1, #7
  str r1, [r0]
1: wfi                      @ sleep until the next tick
  b 1b
systick:
  ldr r0, =0x20000000       @ count the ticks in RAM
  ldr r1, [r0]
  adds r1, r1, #1
  str r1, [r0]
  bx lr
"""

_WAKE_VECTORS = ".org 0\n .word 0x20010000\n .word reset+1\n .org 0x3C\n .word systick+1\n"


class _ConstantRegister:
    """A peripheral whose every register reads 0 (and counts the reads)."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, offset: int, size: int) -> int:
        self.reads += 1
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        pass

    def reset(self) -> None:
        pass


@dataclass(frozen=True)
class BenchResult:
    name: str
    instructions: int
    wall_s: float
    virtual_ns: int
    mmio_reads: int

    @property
    def mips(self) -> float:
        return self.instructions / self.wall_s / 1e6 if self.wall_s > 0 else 0.0

    @property
    def mmio_reads_per_s(self) -> float:
        return self.mmio_reads / self.wall_s if self.wall_s > 0 else 0.0

    def __str__(self) -> str:
        virtual = f", {self.virtual_ns / 1e6:.2f} ms virtual" if self.virtual_ns else ""
        extra = f", {self.mmio_reads_per_s / 1e6:.2f} M MMIO reads/s" if self.mmio_reads else ""
        return (
            f"{self.name}: {self.mips:.1f} MIPS ({self.instructions:,} instructions in "
            f"{self.wall_s:.3f} s{virtual}{extra})"
        )


@dataclass(frozen=True)
class WakeResult:
    """Interrupt round trips: wake from WFI, exception entry, handler, return, back to sleep."""

    name: str
    wakes: int
    wall_s: float
    virtual_ns: int

    @property
    def wakes_per_s(self) -> float:
        return self.wakes / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def us_per_wake(self) -> float:
        return self.wall_s / self.wakes * 1e6 if self.wakes else 0.0

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.wakes_per_s:,.0f} round trips/s ({self.wakes:,} wakes in "
            f"{self.wall_s:.3f} s = {self.us_per_wake:.1f} us each, {self.virtual_ns / 1e6:.2f} ms virtual)"
        )


def _machine(
    body: str, max_slice: int | None, cpu_hz: int, vectors: str = _VECTORS
) -> tuple[Machine, _ConstantRegister]:
    image = assemble(vectors + ".org 0x400\n" + body + "\n.ltorg\n", FLASH)
    kwargs = {} if max_slice is None else {"max_slice": max_slice}
    m = Machine(lambda: cpu_hz, **kwargs)
    m.add_ram("flash", FLASH, 0x10000)
    m.add_ram("dtcm", DTCM, 0x20000)
    reg = _ConstantRegister()
    m.add_mmio("bench", PERIPH, 0x400, reg)
    m.write_memory(FLASH, image)
    m.reset(FLASH)
    return m, reg


def run_loop(
    name: str, body: str, instructions: int, *, max_slice: int | None = None, cpu_hz: int = 64_000_000
) -> BenchResult:
    """Run ``body`` (defining ``reset:``) for ``instructions`` instructions and time it."""
    m, reg = _machine(body, max_slice, cpu_hz)
    m.run(max_instructions=min(100_000, instructions))  # warm the translation cache
    start_instr, start_ns, start_reads = m.instructions_executed, m.virtual_time_ns, reg.reads
    t0 = time.perf_counter()
    m.run(max_instructions=instructions)
    wall = time.perf_counter() - t0
    return BenchResult(
        name,
        m.instructions_executed - start_instr,
        wall,
        m.virtual_time_ns - start_ns,
        reg.reads - start_reads,
    )


def compute_bound(instructions: int = 30_000_000, max_slice: int | None = None) -> BenchResult:
    return run_loop("compute-bound", COMPUTE_LOOP, instructions, max_slice=max_slice)


def memory_bound(instructions: int = 20_000_000, max_slice: int | None = None) -> BenchResult:
    return run_loop("load/store-bound", MEMORY_LOOP, instructions, max_slice=max_slice)


def mmio_polling(instructions: int = 3_000_000) -> BenchResult:
    """A loop reading one MMIO register (nothing scheduled, so no idle fast-forward)."""
    return run_loop("MMIO polling (1 read / 3 instructions)", POLL_LOOP, instructions)


def mmio_mixed(instructions: int = 10_000_000) -> BenchResult:
    return run_loop("mixed (1 MMIO read / ~130 instructions)", MIXED_LOOP, instructions)


def interrupt_round_trips(wakes: int = 20_000, period: int = 64_000) -> WakeResult:
    """SysTick every ``period`` cycles (1 ms at 64 MHz) wakes a core sleeping in WFI; a trivial
    handler counts the ticks in RAM. Measures the engine's per-interrupt and per-slice cost."""
    m, _ = _machine(f".equ PERIOD, {period}\n" + WAKE_LOOP, None, 64_000_000, _WAKE_VECTORS)

    def ticks() -> int:
        return int.from_bytes(m.read_memory(DTCM, 4), "little")

    m.run(until=lambda: ticks() >= 100)  # warm the translation cache
    start_ticks, start_ns = ticks(), m.virtual_time_ns
    t0 = time.perf_counter()
    m.run(max_ns=wakes * period * 1_000_000_000 // 64_000_000)
    wall = time.perf_counter() - t0
    return WakeResult(
        "interrupt round trips (SysTick wakes WFI)", ticks() - start_ticks, wall, m.virtual_time_ns - start_ns
    )


def unicorn_reference(instructions: int = 30_000_000, slice_len: int = DEFAULT_MAX_SLICE) -> BenchResult:
    """The compute-bound loop on a bare unicorn Cortex-M7 in the same ``count=`` slices, with no
    engine around it: the ceiling the engine's compute-bound figure can reach on this machine now
    (unicorn's ``count=`` adds a per-instruction hook; EMULATION.md §2). Run next to
    :func:`compute_bound` so both see the same machine load."""
    image = assemble(_VECTORS + ".org 0x400\n" + COMPUTE_LOOP + "\n.ltorg\n", FLASH)
    uc = create_cortex_m7()
    uc.mem_map(FLASH, 0x10000)
    uc.mem_map(DTCM, 0x20000)
    uc.mem_write(FLASH, image)
    pc = int.from_bytes(image[4:8], "little") & ~1
    uc.emu_start(pc | 1, 0xFFFFFFFF, 0, min(100_000, instructions))  # warm the translation cache
    done = 0
    t0 = time.perf_counter()
    while done < instructions:
        n = min(slice_len, instructions - done)
        pc = uc.reg_read(arm.UC_ARM_REG_PC)
        uc.emu_start(pc | 1, 0xFFFFFFFF, 0, n)
        done += n
    wall = time.perf_counter() - t0
    return BenchResult("compute-bound, bare unicorn (reference, no engine)", done, wall, 0, 0)


BENCHMARKS: dict[str, Callable[[], BenchResult | WakeResult]] = {
    "compute": compute_bound,
    "unicorn_reference": unicorn_reference,
    "memory": memory_bound,
    "mmio_poll": mmio_polling,
    "mmio_mixed": mmio_mixed,
    "wake": interrupt_round_trips,
}


def run_all() -> list[BenchResult | WakeResult]:
    return [bench() for bench in BENCHMARKS.values()]


def slice_sweep(
    sizes: tuple[int, ...] = (10_000, 50_000, 200_000, 1_000_000),
) -> list[tuple[int, BenchResult]]:
    """Compute-bound MIPS for several maximum slice lengths (slice tuning)."""
    return [(size, compute_bound(20_000_000, max_slice=size)) for size in sizes]


def main() -> None:
    for result in run_all():
        print(result)
    for size, result in slice_sweep():
        print(f"max_slice={size:>9,}: {result.mips:.1f} MIPS")


if __name__ == "__main__":
    main()
