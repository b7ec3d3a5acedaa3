"""Small helpers shared by the benchmarks: best-of-N timing, one-core pinning, tables."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Result:
    case: str
    units: int  # packets, frames or codewords handled per run
    octets: int  # payload octets handled per run
    seconds: float  # best run

    @property
    def units_per_s(self) -> float:
        return self.units / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.octets / self.seconds / 1e6


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Wall time of the fastest of ``repeat`` calls of ``fn`` (the least disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


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


def print_table(title: str, results: list[Result], unit_name: str, out=sys.stdout) -> None:
    width = max(len(r.case) for r in results) + 2
    print(title, file=out)
    print(f"  {'case':<{width}}{unit_name + '/s':>14}{'MB/s':>10}", file=out)
    for r in results:
        print(f"  {r.case:<{width}}{r.units_per_s:>14,.0f}{r.mb_per_s:>10.1f}", file=out)
