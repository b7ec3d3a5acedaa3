"""Small helpers shared by the benchmarks: N timed runs, one-core pinning, tables.

Every case runs N times and is reported by its median run, with the spread of the
N runs: the rates of the slowest and of the fastest run, relative to the median.
The fastest run alone reads 20-30 % above the median on a shared VM, and it is not
what a user of the code gets.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

SPREAD_NOTE = "median of N runs; spread: the slowest and the fastest run against the median"


@dataclass
class Result:
    case: str
    units: int  # packets, frames or codewords handled per run
    octets: int  # payload octets handled per run
    run_s: list[float]  # wall time of each timed run, in the order they ran

    @property
    def runs(self) -> int:
        return len(self.run_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.run_s)

    @property
    def units_per_s(self) -> float:
        """Units per second of the median run."""
        return self.units / self.median_s

    @property
    def mb_per_s(self) -> float:
        return self.octets / self.median_s / 1e6

    @property
    def spread(self) -> tuple[float, float]:
        """Rate of the slowest and of the fastest run relative to the median's, e.g.
        (-0.08, +0.03); (0, 0) for one run."""
        return spread(self.run_s)


def spread(run_s: list[float]) -> tuple[float, float]:
    """(slowest, fastest) rate of runs of the same work relative to the median rate."""
    med = statistics.median(run_s)
    return med / max(run_s) - 1.0, med / min(run_s) - 1.0


def format_spread(run_s: list[float]) -> str:
    """``-8 % +3 %``: the slowest and the fastest run against the median ('' for one run)."""
    if len(run_s) < 2:
        return ""
    lo, hi = spread(run_s)
    return f"{100 * lo:+.0f} % {100 * hi:+.0f} %"


def time_runs(fn: Callable[[], object], repeat: int, warmup: int = 0) -> list[float]:
    """Wall time of each of ``repeat`` calls of ``fn``, after ``warmup`` untimed calls
    (compilation, caches, page faults)."""
    for _ in range(warmup):
        fn()
    run_s = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        run_s.append(time.perf_counter() - t0)
    return run_s


def pin_one_core() -> str:
    """Pin this process to one CPU so that figures are per core; say which."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    return f"pinned to CPU {cpus[-1]} of {len(cpus)}"


def describe_machine() -> str:
    return (
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}"
    )


def print_table(
    title: str, results: list[Result], unit_name: str, out: TextIO = sys.stdout
) -> None:
    """One line a case: N, the median run's rate and MB/s, and the spread of the N runs."""
    width = max(len(r.case) for r in results) + 2
    print(f"{title} ({SPREAD_NOTE})", file=out)
    print(f"  {'case':<{width}}{'N':>4}{unit_name + '/s':>14}{'MB/s':>10}{'spread':>15}", file=out)
    for r in results:
        print(
            f"  {r.case:<{width}}{r.runs:>4}{r.units_per_s:>14,.0f}{r.mb_per_s:>10.1f}"
            f"{format_spread(r.run_s):>15}",
            file=out,
        )
