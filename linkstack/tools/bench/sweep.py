"""``linkstack bench sweep``: what Ray buys a sweep on this machine.

16 variants of the reference scenario (4 station sets x 4 Qwen3 sizes, one seed,
``QUERIES`` queries over ``HOURS`` h each; ``--quick``: 4 variants, fewer queries) run
three ways: serially in this process, then as Ray tasks on a local Ray of every core
(the start of Ray timed apart; its worker processes start with the first tasks,
each importing linkstack and building its own contact plans), again on those
workers (warm), then one after another through that Ray (a task's own cost).
Reported: the wall times, the speed-up of Ray over serial (with and without Ray's
start), and the scheduling overhead per variant: Ray's wall time beyond the serial
time spread perfectly over the cores, per variant. Every row of the Ray runs must
equal the serial one (but its wall time), or the bench exits 1.
"""

from __future__ import annotations

import os
import tempfile
import time
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


def main(quick: bool = False) -> int:
    import ray  # noqa: PLC0415

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        sweep = sweep_file.loads(sweep_text(quick), here=Path(tmp))
        n = len(sweep.specs)
        print(f"# {n} variants of reference, {sweep.load.queries} queries over "
              f"{HOURS:g} h each; {cores} cores", flush=True)  # fmt: skip
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
            ray_s = time.perf_counter() - t0
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
            ray.shutdown()
    same = (
        not serial.failures
        and not par.failures
        and not warm.failures
        and _bare(serial.rows) == _bare(par.rows) == _bare(warm.rows)
    )
    run_s = sum(r["wall_s"] for r in serial.rows)
    print(f"{'serial, in process':<38}{serial_s:8.1f} s   ({run_s / n:.2f} s a variant)")
    print(f"{'Ray start (local, ' + str(cores) + ' cores)':<38}{start_s:8.1f} s")
    print(f"{'Ray, ' + str(n) + ' tasks (fresh workers)':<38}{ray_s:8.1f} s")
    print(f"{'Ray, ' + str(n) + ' tasks (workers warm)':<38}{warm_s:8.1f} s")
    print(f"{'speed-up over serial, fresh workers':<38}{serial_s / ray_s:8.2f} x   "
          f"({serial_s / (ray_s + start_s):.2f} x with Ray's start)")  # fmt: skip
    print(f"{'speed-up over serial, workers warm':<38}{serial_s / warm_s:8.2f} x")
    overhead = sweep_exec.overhead_s(serial_s, ray_s, cores, n)
    print(f"{'scheduling overhead per variant':<38}{overhead * 1000:8.0f} ms  "
          "(fresh workers: Ray's wall beyond serial / cores, per variant)")  # fmt: skip
    overhead = sweep_exec.overhead_s(serial_s, warm_s, cores, n)
    print(f"{'  the same, workers warm':<38}{overhead * 1000:8.0f} ms")
    per_task = (one_by_one_s - serial_s) / n
    print(f"{'a task alone, beyond its run':<38}{per_task * 1000:8.0f} ms  "
          "(the same variants one at a time through Ray)")  # fmt: skip
    print(f"{'rows equal to serial (but wall time)':<38}{'yes' if same else 'NO':>8}")
    return 0 if same else 1
