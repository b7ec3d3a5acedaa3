"""``linkstack bench contacts``: ground-contact computation at constellation scale.

Cases:
- ground windows for the planned network: 2,800 satellites x 20 stations x 24 h
  at 10 s steps (``--quick``: 2 h), every window streamed out and dropped, one
  core. The windows carry AOS/LOS refined to 10 ms, the maximum elevation and the
  sampled elevation, range and range rate; a random handful are checked against
  the scalar path (elevation at AOS/LOS equals the mask).
- peak memory of that computation, traced with ``tracemalloc`` in a separate run
  (tracing slows it), for two spans (6 h and 24 h; quick: 1 h and 2 h): the
  figures must not grow with the span.
- laser-link windows of the same network (2,800 in-plane ring pairs).
- the per-unit path the link calls: ``StationView.at`` and ``IslView.at``.

Two rates a case, because the search does not evaluate every sample:
- equivalent samples/s: the (satellite, station or pair, time) samples a
  brute-force search on the same 10-s grid would evaluate (2,800 x 20 x 8,641 =
  484 million for a day), over the time taken. It compares the search with the
  brute force; it is not what the code computes.
- computed/s: what one run really evaluates, counted by the search itself
  (``channels.contacts.SearchCounts``) in a separate untimed run (the check run):
  for ground windows, the angular prefilter's (satellite, station, 60-s point)
  tests, the elevation samples at 10 s of the (satellite, station, 60-s interval)
  candidates that pass it, and the elevation evaluations of the AOS/LOS bisections
  and peak searches; for laser links, every (pair, 60-s step) sample and the
  evaluations of the edge bisections. SGP4 runs only on the 60-s grid: its state
  count is printed with the breakdown below the table.
Times are the median of N runs (N in the table), with the slowest and the fastest
run against the median.
"""

from __future__ import annotations

import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from channels.contacts import (
    DEFAULT_COARSE_STEP_S,
    DEFAULT_ISL_STEP_S,
    GroundWindow,
    SearchCounts,
    ground_windows,
    isl_windows,
)
from channels.orbit import IslView, StationView
from channels.scenarios import Scenario, planned_scenario
from linkstack.tools.bench.timing import Result, format_spread, time_runs

STEP_S = 10.0  # the ground search step, and the grid of the "equivalent samples"


@dataclass
class ContactResult(Result):
    windows: int = 0
    peak_mem_mb: float = float("nan")  # tracemalloc peak of the computation, MB (10^6 octets)
    computed: int = 0  # samples the code evaluates a run (see the module docstring); 0: not counted
    # what one run computes, by kind: (what, count, counted in ``computed``)
    work: list[tuple[str, int, bool]] = field(default_factory=list)

    @property
    def computed_per_s(self) -> float:
        return self.computed / self.median_s


def _ground(
    scenario: Scenario, hours: float, check: bool, counts: SearchCounts | None = None
) -> tuple[int, list[GroundWindow]]:
    rng = random.Random(1)
    n, kept = 0, list[GroundWindow]()
    for w in ground_windows(
        scenario.fleet,
        scenario.stations,
        duration_s=hours * 3600.0,
        step_s=STEP_S,
        counts=counts,
    ):
        n += 1
        if check and len(kept) < 200 and rng.random() < 0.002:
            kept.append(w)
    return n, kept


def _check(scenario: Scenario, windows: list[GroundWindow]) -> None:
    """AOS and LOS must sit on the mask (the scalar path is the reference)."""
    for w in windows:
        st = scenario.station(w.station)
        view = StationView(st, scenario.satellite(w.satellite), scenario.epoch)
        for t, clipped in ((w.aos_t_s, w.aos_clipped), (w.los_t_s, w.los_clipped)):
            el = view.at(t).elevation_deg
            if not clipped and abs(el - st.min_elevation_deg) > 0.01:
                raise RuntimeError(f"contact bench: {w} has elevation {el:.4f} deg at an edge")


def _traced_peak_mb(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def bench_ground(scenario: Scenario, hours: float, repeat: int) -> ContactResult:
    n_sats, n_st = len(scenario.satellites), len(scenario.stations)
    samples = n_sats * n_st * (round(hours * 3600.0 / STEP_S) + 1)
    counts = SearchCounts()  # warm-up, the check, and the count of the work
    count, kept = _ground(scenario, hours, check=True, counts=counts)
    _check(scenario, kept)
    c = round(DEFAULT_COARSE_STEP_S / STEP_S)  # 10-s samples per 60-s interval
    candidates = counts.candidate_intervals
    samples_10s = candidates * c
    work = [
        ("SGP4 states (satellite x 60-s point)", counts.sgp4_states, False),
        ("prefilter tests (satellite x station x 60-s point)", counts.sgp4_states * n_st, True),
        (
            f"elevation samples at {STEP_S:g} s, {candidates:,} candidate intervals "
            f"({samples_10s / samples:.1%} of the grid)",
            samples_10s,
            True,
        ),
        ("elevations evaluated refining AOS/LOS and peaks", counts.refine_points, True),
    ]
    computed = sum(n for _, n, counted in work if counted)
    run_s = time_runs(lambda: _ground(scenario, hours, check=False), repeat)
    case = f"ground windows {n_sats} sats x {n_st} stations x {hours:g} h"
    return ContactResult(case, samples, 0, run_s, windows=count, computed=computed, work=work)


def bench_memory(scenario: Scenario, hours: float) -> ContactResult:
    t0 = time.perf_counter()
    box: list[int] = []
    peak = _traced_peak_mb(lambda: box.append(_ground(scenario, hours, check=False)[0]))
    seconds = time.perf_counter() - t0
    n = len(scenario.satellites) * len(scenario.stations) * (round(hours * 3600.0 / STEP_S) + 1)
    case = f"  same, {hours:g} h, traced (tracemalloc slows it)"
    return ContactResult(case, n, 0, [seconds], windows=box[0], peak_mem_mb=peak)


def bench_isl(scenario: Scenario, hours: float, repeat: int) -> ContactResult:
    pairs = scenario.isl_pairs
    k = round(hours * 3600.0 / STEP_S) + 1
    box: list[int] = []

    def run(counts: SearchCounts | None = None) -> None:
        windows = isl_windows(scenario.fleet, pairs, duration_s=hours * 3600.0, counts=counts)
        box[:] = [sum(1 for _ in windows)]

    counts = SearchCounts()  # warm-up, and the count of the work
    run(counts)
    k_isl = round(hours * 3600.0 / DEFAULT_ISL_STEP_S) + 1
    work = [
        ("SGP4 states (satellite x 60-s point)", counts.sgp4_states, False),
        # every pair at every step (no prefilter)
        (f"pair samples, every pair every {DEFAULT_ISL_STEP_S:g} s", len(pairs) * k_isl, True),
        # the edge bisections interpolate both satellites of a pair for each evaluation
        ("pair evaluations refining the edges", counts.refine_points // 2, True),
    ]
    run_s = time_runs(run, repeat)
    case = f"laser-link windows {len(pairs)} pairs x {hours:g} h"
    return ContactResult(
        case,
        len(pairs) * k,
        0,
        run_s,
        windows=box[0],
        computed=sum(n for _, n, counted in work if counted),
        work=work,
    )


def bench_scalar(scenario: Scenario, calls: int, repeat: int) -> list[ContactResult]:
    st = scenario.stations[0]
    a, b = scenario.isl_pairs[0]
    sv = StationView(st, scenario.satellites[a], scenario.epoch)
    iv = IslView(scenario.satellites[a], scenario.satellites[b], scenario.epoch)
    times = [i * 0.37 for i in range(calls)]

    def run_sv() -> None:
        at = sv.at
        for t in times:
            at(t)

    def run_iv() -> None:
        at = iv.at
        for t in times:
            at(t)

    # one look is one sample, computed: equivalent and computed are the same
    return [
        ContactResult(
            "StationView.at (one station, one satellite)",
            calls,
            0,
            time_runs(run_sv, repeat),
            computed=calls,
        ),
        ContactResult(
            "IslView.at (two satellites)", calls, 0, time_runs(run_iv, repeat), computed=calls
        ),
    ]


def run(quick: bool = False) -> list[ContactResult]:
    scenario = planned_scenario()
    hours = 2.0 if quick else 24.0
    # a day of ground windows takes ~10 s a run: 3 runs; the traced runs, 1 each
    results = [bench_ground(scenario, hours, 3)]
    for h in (1.0, 2.0) if quick else (6.0, 24.0):
        results.append(bench_memory(scenario, h))
    results.append(bench_isl(scenario, hours, 3 if quick else 5))
    results += bench_scalar(scenario, 20_000 if quick else 200_000, 5)
    return results


def print_results(results: list[ContactResult], out: TextIO = sys.stdout) -> None:
    width = max(len(r.case) for r in results) + 2
    print(
        "linkstack bench contacts (one core; median of N runs; spread: the slowest and the "
        "fastest run against the median)",
        file=out,
    )
    print(
        f"  {'case':<{width}}{'N':>3}{'seconds':>9}{'spread':>15}{'equiv. samples/s':>18}"
        f"{'computed/s':>14}{'windows':>10}{'peak MB':>9}",
        file=out,
    )
    for r in results:
        mem = "" if r.peak_mem_mb != r.peak_mem_mb else f"{r.peak_mem_mb:.1f}"
        win = f"{r.windows:,}" if r.windows else ""
        done = f"{r.computed_per_s:,.0f}" if r.computed else ""
        print(
            f"  {r.case:<{width}}{r.runs:>3}{r.median_s:>9.2f}{format_spread(r.run_s):>15}"
            f"{r.units_per_s:>18,.0f}{done:>14}{win:>10}{mem:>9}",
            file=out,
        )
    print(
        f"  equiv. samples/s: the samples a brute-force search on a {STEP_S:g}-s grid would "
        "evaluate (satellite x station or pair x step), over the median time;\n"
        "  computed/s: the samples the search really evaluates, over the same time:",
        file=out,
    )
    for r in results:
        if not r.work:
            continue
        print(f"    {r.case}, one run (counted in an untimed run):", file=out)
        lw = max(len(what) for what, _, _ in r.work) + 2
        for what, n, counted in r.work:
            note = "" if counted else "  (not in computed)"
            print(f"      {what:<{lw}}{n:>14,}{n / r.median_s:>14,.0f}/s{note}", file=out)
        print(f"      {'computed':<{lw}}{r.computed:>14,}{r.computed_per_s:>14,.0f}/s", file=out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"  process peak RSS {rss:.0f} MiB (interpreter, numpy, scenario included)", file=out)


def main(argv: list[str] | None = None) -> int:
    from linkstack.tools.bench.timing import describe_machine, pin_one_core  # noqa: PLC0415

    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    print(f"# {describe_machine()}; {pin_one_core()}", flush=True)
    print_results(run(quick=quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
