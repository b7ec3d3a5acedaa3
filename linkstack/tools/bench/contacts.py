"""``linkstack bench contacts``: ground-contact computation at constellation scale.

Cases:
- ground windows for the planned network: 2,800 satellites x 20 stations x 24 h
  at 10 s steps (``--quick``: 2 h), every window streamed out and dropped, one
  core. Units are satellite-station-time samples (2,800 x 20 x 8,641 = 484
  million for a day). The windows carry AOS/LOS refined to 10 ms, the maximum
  elevation and the sampled elevation, range and range rate; a random handful
  are checked against the scalar path (elevation at AOS/LOS equals the mask).
- peak memory of that computation, traced with ``tracemalloc`` in a separate run
  (tracing slows it), for two spans (6 h and 24 h; quick: 1 h and 2 h): the
  figures must not grow with the span.
- laser-link windows of the same network (2,800 in-plane ring pairs).
- the per-unit path the link calls: ``StationView.at`` and ``IslView.at``.
"""

from __future__ import annotations

import random
import resource
import sys
import time
import tracemalloc
from dataclasses import dataclass

from channels.contacts import ground_windows, isl_windows
from channels.orbit import IslView, StationView
from channels.scenarios import planned_scenario
from linkstack.tools.bench.timing import Result, best_of

STEP_S = 10.0


@dataclass
class ContactResult(Result):
    windows: int = 0
    peak_mem_mb: float = float("nan")  # tracemalloc peak of the computation, MB (10^6 octets)


def _ground(scenario, hours: float, check: bool) -> tuple[int, list]:
    rng = random.Random(1)
    n, kept = 0, []
    for w in ground_windows(
        scenario.fleet, scenario.stations, duration_s=hours * 3600.0, step_s=STEP_S
    ):
        n += 1
        if check and len(kept) < 200 and rng.random() < 0.002:
            kept.append(w)
    return n, kept


def _check(scenario, windows) -> None:
    """AOS and LOS must sit on the mask (the scalar path is the reference)."""
    for w in windows:
        st = scenario.station(w.station)
        view = StationView(st, scenario.satellite(w.satellite), scenario.epoch)
        for t, clipped in ((w.aos_t_s, w.aos_clipped), (w.los_t_s, w.los_clipped)):
            el = view.at(t).elevation_deg
            if not clipped and abs(el - st.min_elevation_deg) > 0.01:
                raise RuntimeError(f"contact bench: {w} has elevation {el:.4f} deg at an edge")


def _traced_peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def bench_ground(scenario, hours: float, repeat: int) -> ContactResult:
    n_sats, n_st = len(scenario.satellites), len(scenario.stations)
    samples = n_sats * n_st * (round(hours * 3600.0 / STEP_S) + 1)
    count, kept = _ground(scenario, hours, check=True)  # warm-up, and the check
    _check(scenario, kept)
    seconds = best_of(lambda: _ground(scenario, hours, check=False), repeat)
    case = f"ground windows {n_sats} sats x {n_st} stations x {hours:g} h"
    return ContactResult(case, samples, 0, seconds, windows=count)


def bench_memory(scenario, hours: float) -> ContactResult:
    t0 = time.perf_counter()
    box = []
    peak = _traced_peak_mb(lambda: box.append(_ground(scenario, hours, check=False)[0]))
    seconds = time.perf_counter() - t0
    n = len(scenario.satellites) * len(scenario.stations) * (round(hours * 3600.0 / STEP_S) + 1)
    case = f"  same, {hours:g} h, traced (tracemalloc slows it)"
    return ContactResult(case, n, 0, seconds, windows=box[0], peak_mem_mb=peak)


def bench_isl(scenario, hours: float, repeat: int) -> ContactResult:
    pairs = scenario.isl_pairs
    k = round(hours * 3600.0 / STEP_S) + 1
    box = []

    def run() -> None:
        box[:] = [sum(1 for _ in isl_windows(scenario.fleet, pairs, duration_s=hours * 3600.0))]

    seconds = best_of(run, repeat)
    case = f"laser-link windows {len(pairs)} pairs x {hours:g} h"
    return ContactResult(case, len(pairs) * k, 0, seconds, windows=box[0])


def bench_scalar(scenario, calls: int, repeat: int) -> list[ContactResult]:
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

    return [
        ContactResult(
            "StationView.at (one station, one satellite)", calls, 0, best_of(run_sv, repeat)
        ),
        ContactResult("IslView.at (two satellites)", calls, 0, best_of(run_iv, repeat)),
    ]


def run(quick: bool = False) -> list[ContactResult]:
    scenario = planned_scenario()
    hours = 2.0 if quick else 24.0
    repeat = 1 if quick else 2
    results = [bench_ground(scenario, hours, repeat)]
    for h in (1.0, 2.0) if quick else (6.0, 24.0):
        results.append(bench_memory(scenario, h))
    results.append(bench_isl(scenario, hours, repeat))
    results += bench_scalar(scenario, 20_000 if quick else 200_000, 3)
    return results


def print_results(results: list[ContactResult], out=sys.stdout) -> None:
    width = max(len(r.case) for r in results) + 2
    print("linkstack bench contacts (one core)", file=out)
    print(
        f"  {'case':<{width}}{'seconds':>9}{'units/s':>14}{'windows':>10}{'peak MB':>9}", file=out
    )
    for r in results:
        mem = "" if r.peak_mem_mb != r.peak_mem_mb else f"{r.peak_mem_mb:.1f}"
        win = f"{r.windows:,}" if r.windows else ""
        print(
            f"  {r.case:<{width}}{r.seconds:>9.2f}{r.units_per_s:>14,.0f}{win:>10}{mem:>9}",
            file=out,
        )
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
