"""``bench roundtrip``: how fast the emulator runs whole round trips of the default scenario.

Queries are submitted at random instants over a span of emulated time (half for
whichever satellite is in view, half for a named satellite, relayed when it is out
of view) and answered by the tiny Qwen3 (random weights, 16 tokens: the model runs
for real, but briefly, so that the figures are the emulator's). Reported: emulated
round trips per wall-clock second, wall-clock seconds per emulated hour, how much of
the wall time the model took, and the run's round-trip percentiles, so that the
emulator's own cost can be told apart from the physics it reproduces. Each case runs
several times (5, or 3 for the longer ones) and is reported by its median run (by
wall time), with the spread of the runs' rates.

The cases: 50 queries over 6 h, 200 over 6 h (a load: the first pass comes after
1.5 h, so some 50 queries wait for it and leave together) and 200 over 24 h. Every
query should be answered: the ground paces what it sends each satellite by what its
service holds and sends again a query a satellite refused ``busy``. The report says
how many ``busy`` refusals the ground retried, and names every query refused for
good with its code (a refusal the ground made itself, ``ground_queue_full`` or
``deadline_exceeded``, would be a fault of this run's settings, not of the load).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass

from linkstack.runtime import clock as clk
from linkstack.runtime.emulation import Emulation, EmulationConfig
from linkstack.runtime.report import Timeline, summarize
from linkstack.tools.bench.timing import format_spread
from payloads.backends import Backend, GenerationParams, make_backend
from payloads.client import QueryRefusedError
from payloads.messages import Params

PROMPT = "Satellite, report the cloud cover over 45N 7E at the next pass, briefly."


@dataclass
class RoundtripRun:
    label: str
    queries: int
    emulated_s: float
    wall_s: float
    model_s: float  # compute time the backend reported, summed
    timelines: list[Timeline]
    stats: dict[str, Counter[str]]  # the emulation's counters (Emulation.stats())

    @property
    def answered(self) -> int:
        return sum(1 for t in self.timelines if t.complete)

    @property
    def refused(self) -> Counter[str]:
        """Queries refused for good, by error code."""
        return Counter(t.error for t in self.timelines if t.error)

    @property
    def busy_retried(self) -> int:
        """Busy refusals from satellites that the ground queued again."""
        return self.stats["client"]["busy"]

    @property
    def per_wall_s(self) -> float:
        return self.answered / self.wall_s

    @property
    def wall_per_hour_s(self) -> float:
        return self.wall_s / (self.emulated_s / 3600.0)


def run_roundtrips(
    count: int,
    hours: float,
    *,
    seed: int = 0,
    backend: Backend | None = None,
    max_new_tokens: int = 16,
    config: EmulationConfig | None = None,
) -> RoundtripRun:
    backend = backend or make_backend("tiny")
    backend.load()
    rng = random.Random(seed)
    span = hours * 3600.0
    times = sorted(rng.uniform(0.0, span) for _ in range(count))
    config = config or EmulationConfig(seed=seed)
    model_s = 0.0

    async def main() -> tuple[list[Timeline], float, dict[str, Counter[str]]]:
        nonlocal model_s
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=backend)
        names = emu.contacts.satellites

        async def one(k: int, t: float) -> None:
            nonlocal model_s
            await clock.sleep_until(t)
            target = None if k % 2 == 0 else names[rng.randrange(len(names))]
            params = Params(max_new_tokens=max_new_tokens, temperature=0.7, seed=k)
            try:
                answer, _ = await emu.client.ask(PROMPT, params, target=target)
                model_s += answer.times.generate_s or 0.0
            except QueryRefusedError:
                pass

        async with emu:
            await asyncio.gather(*(one(k, t) for k, t in enumerate(times)))
            end = clock.now()
        return emu.client.timelines, end, emu.stats()

    wall0 = time.perf_counter()
    timelines, end, stats = clk.run(main, emulated=True)
    wall = time.perf_counter() - wall0
    label = f"{count} queries over {hours:g} h"
    return RoundtripRun(label, count, end, wall, model_s, timelines, stats)


@dataclass
class RoundtripCase:
    """The runs of one case (same queries, same seed); reported by the median run."""

    runs: list[RoundtripRun]

    @property
    def wall_runs_s(self) -> list[float]:
        return [r.wall_s for r in self.runs]

    @property
    def median(self) -> RoundtripRun:
        """The run of median wall time (the lower middle one for an even count)."""
        ranked = sorted(self.runs, key=lambda r: r.wall_s)
        return ranked[(len(ranked) - 1) // 2]


def run(quick: bool = False) -> list[RoundtripCase]:
    backend = make_backend("tiny")
    backend.load()
    backend.generate("warm up", GenerationParams(4))
    # (queries, emulated hours, runs): a day of emulation takes ~10 s a run
    cases = [(10, 6.0, 5)] if quick else [(50, 6.0, 5), (200, 6.0, 3), (200, 24.0, 3)]
    return [
        RoundtripCase([run_roundtrips(n, h, seed=1, backend=backend) for _ in range(repeat)])
        for n, h, repeat in cases
    ]


def print_results(cases: list[RoundtripCase]) -> None:
    print("linkstack bench roundtrip (default scenario, tiny model, emulated time)")
    print(
        "  (N runs a case, reported by the run of median wall time; spread: the slowest "
        "and the fastest run against the median)"
    )
    print(
        f"  {'case':<28}{'N':>3}{'answered':>9}{'emulated h':>11}{'wall s':>8}{'model s':>8}"
        f"{'trips/wall-s':>13}{'spread':>15}{'wall s/emul. h':>15}"
    )
    for c in cases:
        r = c.median
        print(
            f"  {r.label:<28}{len(c.runs):>3}{r.answered:>9}{r.emulated_s / 3600:>11.2f}"
            f"{r.wall_s:>8.2f}{r.model_s:>8.2f}{r.per_wall_s:>13.1f}"
            f"{format_spread(c.wall_runs_s):>15}{r.wall_per_hour_s:>15.2f}"
        )
    for c in cases:
        r = c.median
        counts = [run.answered for run in c.runs]
        refused = sum((run.refused for run in c.runs), Counter[str]())
        busy = [run.busy_retried for run in c.runs]
        print(
            f"  {r.label}: answered {min(counts)}-{max(counts)} of {r.queries} over the "
            f"{len(c.runs)} runs; busy refusals retried by the ground {min(busy)}-{max(busy)}; "
            "refused for good: "
            + (", ".join(f"{code} {n}" for code, n in sorted(refused.items())) or "none")
        )
    for c in cases:
        r = c.median
        s = summarize(r.timelines)
        for label, key in (("all", "all"), ("in view at submit", "in_view_at_submit")):
            b = s[key]
            tot = b["total"]
            frac = b["fraction_under_reference"]
            print(
                f"  {r.label}, {label}: {b['answered']}/{b['queries']} answered, round trip "
                f"p50 {tot['p50_s']:.1f} s, p95 {tot['p95_s']:.1f} s, p99 {tot['p99_s']:.1f} s, "
                f"under 120 s {frac:.0%}"
                if b["answered"]
                else f"  {r.label}, {label}: none"
            )
