"""``bench scale``: the emulator at the scale of the planned constellation.

Each case runs a constellation in emulated time for a span (24 h by default) while
the users at its ground stations submit queries for "any satellite" as a Poisson
process (the count is fixed, so the instants are uniform order statistics; each
query says which station's user asked, round the stations in turn), answered by a
scripted backend (:class:`linkstack.capture.samples.ScriptedBackend`: canned
answers with fixed compute times, so that the figures are the emulator's, not a
model's). After the span the run goes on until every query is answered, or for at
most :data:`DRAIN_S` more; the bench says how many were not, and exits 1 if any.

The constellations: 12 satellites is the default scenario (one plane, a laser ring,
5 stations, TM/TC/AOS frames); 2,800 is the shipped ``planned-2800`` (its 10,708
laser links, 20 stations, USLP, queries to its 2,400 inference satellites); sizes
between are parts of planned-2800 (:func:`planned_part`): each shell contributes
in proportion to its size, its first satellites plane by plane, with the laser
links among them, the 20 stations and planned-2800's settings.

Each case runs in a fresh process (``python -m linkstack.tools.bench.scale --case
...``) so that its peak memory is its own: the process's peak resident set size
(``ru_maxrss``: imports and the Python heap included, what the machine must have),
and its wall time from the start of the emulation (the contact plan and the nodes
built, the run, the drain) to the last answer, not the imports. The growth of wall
time and memory with satellites (at the full query count) and with queries (at the
full size) is the slope of a least-squares line through their logarithms.

Targets (issue 16): 2,800 satellites, 24 h, 10,000 queries within 10 minutes of wall
time and 4 GiB of memory on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import TextIO

from channels.scenarios import Scenario, some_of
from linkstack.capture.samples import ScriptedBackend
from linkstack.runtime import clock as clk
from linkstack.runtime import scenario as scenario_files
from linkstack.runtime.config import EmulationConfig
from linkstack.runtime.emulation import Emulation
from payloads.client import Pending, QueryRefusedError
from payloads.messages import Params

DRAIN_S = 24 * 3600.0  # after the span, how long the run may go on for the last answers
TARGET_WALL_S = 600.0
TARGET_MEMORY_MIB = 4096.0
FULL_SATELLITES = (12, 192, 700, 2800)
FULL_QUERIES = 10_000
QUERY_SWEEP = (2_500, 5_000)  # and FULL_QUERIES, at the largest size
QUICK_SATELLITES = (12, 40)
QUICK_QUERIES = 12
QUICK_HOURS = 1.0
PROMPT = "User at {station}: is the sky over the station clear at the next pass?"


@dataclass
class ScaleCase:
    """One run: what was asked, what came back, what it cost."""

    satellites: int
    laser_links: int
    stations: int
    queries: int
    hours: float
    answered: int
    unanswered: dict[str, int]  # queries not answered, by why (an error code, "no answer")
    wall_s: float
    peak_rss_mib: float
    emulated_s: float  # the instant the last answer came (or the drain ended)
    setup_s: float  # of wall_s: the emulation built (nodes, links), before the first query

    @property
    def target_met(self) -> bool:
        return self.wall_s <= TARGET_WALL_S and self.peak_rss_mib <= TARGET_MEMORY_MIB


def planned_part(satellites: int) -> tuple[Scenario, EmulationConfig]:
    """``satellites`` of the shipped planned-2800 with its settings (see the module
    docstring); 12: the default scenario; 2,800: planned-2800 itself."""
    if satellites == 12:
        settings = scenario_files.load_default()
        return settings.scenario, settings.emulation
    settings = scenario_files.load("planned-2800")
    whole, config = settings.scenario, settings.emulation
    n = len(whole.satellites)
    if satellites == n:
        return whole, config
    if not 1 <= satellites < n:
        raise ValueError(f"satellites must be 12 or 1..{n}, got {satellites}")
    shells: dict[str, list[int]] = {}
    for i, shell in enumerate(whole.shells):
        shells.setdefault(shell, []).append(i)
    # each shell's share, rounded so that the shares add up (largest remainders first)
    exact = {s: satellites * len(ix) / n for s, ix in shells.items()}
    share = {s: math.floor(x) for s, x in exact.items()}
    for s in sorted(exact, key=lambda s: share[s] - exact[s])[: satellites - sum(share.values())]:
        share[s] += 1
    keep = [i for s, ix in shells.items() for i in ix[: share[s]]]
    part = some_of(whole, keep, f"planned-2800 part ({satellites})")
    computing = tuple(s.name for s in part.satellites if s.role == "inference")
    return part, replace(config, scenario=part, computing=computing or None)


def run_case(satellites: int, queries: int, hours: float, seed: int = 1) -> ScaleCase:
    """One case in this process (:func:`run_cases` runs each in its own)."""
    scenario, config = planned_part(satellites)
    config = replace(config, scenario=scenario, seed=seed)
    backend = ScriptedBackend()
    rng = random.Random(seed)
    span_s = hours * 3600.0
    instants = sorted(rng.uniform(0.0, span_s) for _ in range(queries))
    stations = [s.name for s in scenario.stations]
    params = Params(max_new_tokens=8, seed=seed)
    unanswered: Counter[str] = Counter()
    wall0_s = time.perf_counter()
    setup_s = 0.0

    async def main() -> float:
        nonlocal setup_s
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=backend)
        pending: list[Pending] = []
        async with emu:
            setup_s = time.perf_counter() - wall0_s
            for k, t_s in enumerate(instants):
                await clock.sleep_until(t_s)
                prompt = PROMPT.format(station=stations[k % len(stations)])
                pending.append(emu.client.submit(prompt, params))
            waits = [asyncio.ensure_future(p.result()) for p in pending]
            if waits:
                await asyncio.wait(waits, timeout=max(0.0, span_s + DRAIN_S - clock.now()))
            for w in waits:
                if not w.done():
                    unanswered["no answer"] += 1
                    w.cancel()
                elif isinstance(w.exception(), QueryRefusedError):
                    error = w.exception()
                    assert isinstance(error, QueryRefusedError)
                    unanswered[error.error.code] += 1
                elif w.exception() is not None:
                    raise w.exception()  # type: ignore[misc]
            return clock.now()

    emulated_s = clk.run(main, emulated=True)
    wall_s = time.perf_counter() - wall0_s
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return ScaleCase(
        satellites=len(scenario.satellites),
        laser_links=len(scenario.isl_pairs),
        stations=len(scenario.stations),
        queries=queries,
        hours=hours,
        answered=queries - sum(unanswered.values()),
        unanswered=dict(unanswered),
        wall_s=wall_s,
        peak_rss_mib=peak_mib,
        emulated_s=emulated_s,
        setup_s=setup_s,
    )


def run_isolated(satellites: int, queries: int, hours: float, seed: int = 1) -> ScaleCase:
    """One case in a fresh Python process, so that its peak memory is its own."""
    cmd = [sys.executable, "-m", "linkstack.tools.bench.scale", "--case"]
    cmd += [str(satellites), str(queries), str(hours), str(seed)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench scale case {satellites} satellites failed:\n{done.stderr}")
    return ScaleCase(**json.loads(done.stdout.splitlines()[-1]))


def plan_cases(
    quick: bool, satellites: tuple[int, ...] | None, queries: int | None, hours: float | None
) -> list[tuple[int, int, float]]:
    """(satellites, queries, hours) of each case: the sizes at the full query count,
    then smaller query counts at the largest size."""
    sizes = satellites or (QUICK_SATELLITES if quick else FULL_SATELLITES)
    q = queries or (QUICK_QUERIES if quick else FULL_QUERIES)
    h = hours or (QUICK_HOURS if quick else 24.0)
    cases = [(n, q, h) for n in sizes]
    sweep = (q // 4, q // 2) if quick or queries else QUERY_SWEEP
    cases += [(max(sizes), x, h) for x in sweep if 0 < x < q]
    return cases


def slope(xs: list[float], ys: list[float]) -> float:
    """The least-squares slope of log(y) on log(x): y grows as x to this power (NaN
    for fewer than two distinct x)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len({x for x, _ in pts}) < 2:
        return math.nan
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def growth(cases: list[ScaleCase]) -> dict[str, float]:
    """Exponents of wall time and memory with satellites (at the most queries) and with
    queries (at the most satellites)."""
    most_q = max(c.queries for c in cases)
    most_n = max(c.satellites for c in cases)
    by_n = [c for c in cases if c.queries == most_q]
    by_q = [c for c in cases if c.satellites == most_n]
    return {
        "wall_vs_satellites": slope([c.satellites for c in by_n], [c.wall_s for c in by_n]),
        "memory_vs_satellites": slope([c.satellites for c in by_n], [c.peak_rss_mib for c in by_n]),
        "wall_vs_queries": slope([c.queries for c in by_q], [c.wall_s for c in by_q]),
        "memory_vs_queries": slope([c.queries for c in by_q], [c.peak_rss_mib for c in by_q]),
    }


def print_results(cases: list[ScaleCase], out: TextIO = sys.stdout) -> None:
    print(
        "linkstack bench scale (emulated time, scripted backend, one run a case in a fresh "
        "process; memory: peak RSS, ru_maxrss)",
        file=out,
    )
    head = (
        f"  {'satellites':>10}{'laser':>8}{'stations':>9}{'queries':>9}{'hours':>7}"
        f"{'answered':>10}{'wall s':>9}{'setup s':>9}{'peak MiB':>10}{'emulated/wall':>15}"
    )
    print(head, file=out)
    for c in cases:
        print(
            f"  {c.satellites:>10,}{c.laser_links:>8,}{c.stations:>9}{c.queries:>9,}"
            f"{c.hours:>7g}{c.answered:>10,}{c.wall_s:>9.1f}{c.setup_s:>9.1f}"
            f"{c.peak_rss_mib:>10.0f}{c.emulated_s / c.wall_s:>15,.0f}",
            file=out,
        )
        if c.unanswered:
            why = ", ".join(f"{k} {v}" for k, v in sorted(c.unanswered.items()))
            print(f"  {'':>10}  NOT ANSWERED: {why}", file=out)
    g = growth(cases)
    print(
        "  growth (exponents, least squares on log-log): wall time ~ satellites^"
        f"{g['wall_vs_satellites']:.2f}, memory ~ satellites^{g['memory_vs_satellites']:.2f}"
        f" (at {max(c.queries for c in cases):,} queries); wall time ~ queries^"
        f"{g['wall_vs_queries']:.2f}, memory ~ queries^{g['memory_vs_queries']:.2f}"
        f" (at {max(c.satellites for c in cases):,} satellites)",
        file=out,
    )
    for c in cases:
        if c.satellites == 2800 and c.queries >= FULL_QUERIES and c.hours >= 24.0:
            verdict = "met" if c.target_met else "MISSED"
            print(
                f"  target (2,800 satellites, 24 h, 10,000 queries: <= {TARGET_WALL_S:g} s, "
                f"<= {TARGET_MEMORY_MIB:g} MiB): {verdict} ({c.wall_s:.0f} s, "
                f"{c.peak_rss_mib:.0f} MiB)",
                file=out,
            )


def main(
    quick: bool = False,
    satellites: tuple[int, ...] | None = None,
    queries: int | None = None,
    hours: float | None = None,
) -> int:
    """Run the cases, print the table; 1 if any query was not answered."""
    cases = []
    for n, q, h in plan_cases(quick, satellites, queries, hours):
        print(f"# {n:,} satellites, {q:,} queries over {h:g} h ...", flush=True)
        cases.append(run_isolated(n, q, h))
    print_results(cases)
    return 1 if any(c.unanswered for c in cases) else 0


def _case_main(argv: list[str]) -> int:
    """``--case SATELLITES QUERIES HOURS SEED``: one case, its JSON on the last line."""
    p = argparse.ArgumentParser(prog="python -m linkstack.tools.bench.scale")
    p.add_argument("--case", nargs=4, required=True, metavar=("N", "QUERIES", "HOURS", "SEED"))
    args = p.parse_args(argv)
    n, q, h, seed = args.case
    case = run_case(int(n), int(q), float(h), int(seed))
    print(json.dumps(asdict(case)))
    return 0


if __name__ == "__main__":
    sys.exit(_case_main(sys.argv[1:]))
