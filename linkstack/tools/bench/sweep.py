"""``linkstack bench sweep``: what Ray buys a sweep on this machine.

16 variants of the reference scenario (4 station sets x 4 Qwen3 sizes, one seed,
``QUERIES`` queries over ``HOURS`` h each; ``--quick``: 4 variants, fewer queries) run
three ways: serially in this process, then as Ray tasks on a local Ray of every core
(the start of Ray timed apart; its worker processes start with the first tasks,
each importing linkstack and building its own contact plans), again on those
workers (warm), then one after another through that Ray (a task's own cost).
Reported: the wall times, the speed-up of Ray over serial (with and without Ray's
start), and the scheduling overhead per variant: Ray's wall time beyond the serial
time spread perfectly over the cores, per variant. Each figure is the median of
``--runs`` passes (default 3), each pass from nothing (a Ray of its own), with their
span. Every row of the Ray runs must equal the serial one (but its wall time), or the
bench exits 1.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from linkstack.tools import sweep_exec, sweep_file

QUERIES = 200
HOURS = 24.0
STATION_SETS = (
    '["Miyun", "Kashgar", "Sanya", "Mohe", "Jiamusi", "Kunming"]',
    '["Miyun", "Kashgar", "Sanya", "Mohe", "Jiamusi", "Kunming", "Svalbard", "Kiruna"]',
    '["Miyun", "Sanya"]',
    '["Svalbard", "Kiruna", "Miyun"]',
)
SIZES = ("qwen3-0.6b", "qwen3-4b", "qwen3-8b", "qwen3-32b")


def sweep_text(quick: bool) -> str:
    stations = STATION_SETS[:2] if quick else STATION_SETS
    sizes = SIZES[:2] if quick else SIZES
    return f"""
[sweep]
base = "reference"
seeds = 1
[load]
queries = {5 if quick else QUERIES}
hours = {HOURS}
max_new_tokens = 64
[[axes]]
key = "stations"
values = [{", ".join(stations)}]
[[axes]]
key = "model.profile"
values = [{", ".join(repr(s).replace("'", '"') for s in sizes)}]
"""


def _bare(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


@dataclass
class Figures:
    """One pass of the bench: wall times (s) and whether Ray's rows equal serial's."""

    serial_s: float
    start_s: float
    fresh_s: float
    warm_s: float
    one_by_one_s: float
    run_s: float  # the serial variants' own wall times, summed
    same: bool


def one_pass(quick: bool, cores: int) -> Figures:
    """Serial, Ray's start, Ray on fresh workers, again warm, one task at a time."""
    import ray  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        sweep = sweep_file.loads(sweep_text(quick), here=Path(tmp))
        t0 = time.perf_counter()
        serial = sweep_exec.run_sweep(
            sweep.specs, sweep_exec.Store(Path(tmp) / "s"), serial=True, progress=None
        )
        serial_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        sweep_exec.ray_init(None, cores)
        start_s = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            par = sweep_exec.run_sweep(
                sweep.specs, sweep_exec.Store(Path(tmp) / "r"), num_cpus=cores, progress=None
            )
            fresh_s = time.perf_counter() - t0
            t0 = time.perf_counter()  # again, on the workers the first pass started
            warm = sweep_exec.run_sweep(
                sweep.specs, sweep_exec.Store(Path(tmp) / "w"), num_cpus=cores, progress=None
            )
            warm_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for spec in sweep.specs:  # one at a time: a task's own round trip
                sweep_exec.run_sweep(
                    [spec], sweep_exec.Store(Path(tmp) / "one"), num_cpus=cores, progress=None
                )
            one_by_one_s = time.perf_counter() - t0
        finally:
            ray.shutdown()  # the next pass starts a Ray of its own, with fresh workers
    same = (
        not serial.failures
        and not par.failures
        and not warm.failures
        and _bare(serial.rows) == _bare(par.rows) == _bare(warm.rows)
    )
    run_s = sum(r["wall_s"] for r in serial.rows)
    return Figures(serial_s, start_s, fresh_s, warm_s, one_by_one_s, run_s, same)


def _span(values: list[float], fmt: str) -> str:
    """ "(a-b over N runs)" when there is more than one."""
    if len(values) < 2:
        return ""
    return f"  ({format(min(values), fmt)}-{format(max(values), fmt)} over {len(values)} runs)"


def main(quick: bool = False, runs: int = 3) -> int:
    """``runs`` passes, each from nothing (a Ray of its own); medians reported, with
    the span of the runs."""
    cores = os.cpu_count() or 1
    n = len(sweep_file.loads(sweep_text(quick)).specs)
    queries = 5 if quick else QUERIES
    print(f"# {n} variants of reference, {queries} queries over {HOURS:g} h each; "
          f"{cores} cores; medians of {runs} runs", flush=True)  # fmt: skip
    passes: list[Figures] = []
    for i in range(runs):
        passes.append(one_pass(quick, cores))
        f = passes[-1]
        print(f"  run {i + 1}: serial {f.serial_s:.1f} s, Ray {f.fresh_s:.1f} s fresh, "
              f"{f.warm_s:.1f} s warm", flush=True)  # fmt: skip

    def col(name: str) -> list[float]:
        return [getattr(f, name) for f in passes]

    def row(label: str, values: list[float], unit: str, fmt: str = ".1f", note: str = "") -> None:
        median = format(statistics.median(values), "8" + fmt)
        print(f"{label:<38}{median} {unit:<3}{note}{_span(values, fmt)}")

    row("serial, in process", col("serial_s"), "s",
        note=f"  ({statistics.median(col('run_s')) / n:.2f} s a variant)")  # fmt: skip
    row(f"Ray start (local, {cores} cores)", col("start_s"), "s")
    row(f"Ray, {n} tasks (fresh workers)", col("fresh_s"), "s")
    row(f"Ray, {n} tasks (workers warm)", col("warm_s"), "s")
    fresh = [f.serial_s / f.fresh_s for f in passes]
    with_start = [f.serial_s / (f.fresh_s + f.start_s) for f in passes]
    row("speed-up over serial, fresh workers", fresh, "x", ".2f",
        f"  ({statistics.median(with_start):.2f} x with Ray's start)")  # fmt: skip
    row("speed-up over serial, workers warm", [f.serial_s / f.warm_s for f in passes], "x", ".2f")
    over = [1000 * sweep_exec.overhead_s(f.serial_s, f.fresh_s, cores, n) for f in passes]
    row("scheduling overhead per variant", over, "ms", ".0f",
        "  (fresh workers: Ray's wall beyond serial / cores, per variant)")  # fmt: skip
    warm_over = [1000 * sweep_exec.overhead_s(f.serial_s, f.warm_s, cores, n) for f in passes]
    row("  the same, workers warm", warm_over, "ms", ".0f")
    alone = [1000 * (f.one_by_one_s - f.serial_s) / n for f in passes]
    row("a task alone, beyond its run", alone, "ms", ".0f",
        "  (the same variants one at a time through Ray)")  # fmt: skip
    same = all(f.same for f in passes)
    print(f"{'rows equal to serial (but wall time)':<38}{'yes' if same else 'NO':>8}")
    return 0 if same else 1
