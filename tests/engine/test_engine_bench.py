"""The benchmark runs its loops for the requested instruction counts and reports figures."""

from __future__ import annotations

from h743sim.engine import bench


def test_benchmarks_run_the_requested_work(toolchain):
    compute = bench.compute_bound(200_000)
    assert compute.instructions == 200_000 and compute.mips > 0
    assert compute.virtual_ns == 200_000 * 1_000_000_000 // 64_000_000  # one cycle per instruction
    memory = bench.memory_bound(100_000)
    assert memory.instructions == 100_000 and memory.mmio_reads == 0
    poll = bench.mmio_polling(30_000)
    assert poll.instructions == 30_000
    assert abs(poll.mmio_reads - 10_000) <= 1  # one register read every 3 instructions
    assert "MIPS" in str(poll) and "MMIO reads/s" in str(poll)


def test_interrupt_round_trip_benchmark_counts_every_wake(toolchain):
    wake = bench.interrupt_round_trips(200, period=6_400)
    assert wake.wakes == 200
    assert wake.virtual_ns == 200 * 6_400 * 1_000_000_000 // 64_000_000
    assert "round trips/s" in str(wake) and wake.us_per_wake > 0


def test_unicorn_reference_runs_the_same_loop_without_the_engine(toolchain):
    ref = bench.unicorn_reference(300_000, slice_len=100_000)
    assert ref.instructions == 300_000 and ref.wall_s > 0 and ref.mips > 0
    assert "bare unicorn" in str(ref) and "virtual" not in str(ref)
