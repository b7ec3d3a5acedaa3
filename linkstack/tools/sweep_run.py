"""One variant of a sweep, run: its scenario in process, in emulated time, and its row.

:func:`run_spec` is what a Ray task, the serial loop and the tests all call, so a
variant's row is the same wherever it runs (the emulation is deterministic for a seed;
only ``wall_s`` depends on the host). The queries go through
:func:`linkstack.tools.query_run.run_queries`, as ``roundtrip-study``'s do.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import linkstack
from linkstack.runtime import scenario as scenario_files
from linkstack.runtime.report import REFERENCE_S, percentile
from linkstack.tools.query_run import run_queries
from linkstack.tools.roundtrip_study import leg_groups_s
from linkstack.tools.sweep_file import Load, VariantSpec, pct_label


def submit_times(load: Load, seed: int) -> list[float]:
    """The instants the queries are submitted at (seconds after the epoch): uniformly
    at random over the span, or a Poisson process of rate queries/span (its gaps
    exponential), both drawn from ``seed``."""
    rng = random.Random(seed)
    span_s = load.hours * 3600.0
    if load.arrival == "uniform":
        return sorted(rng.uniform(0.0, span_s) for _ in range(load.queries))
    rate_per_s = load.queries / span_s
    out: list[float] = []
    t_s = 0.0
    for _ in range(load.queries):
        t_s += rng.expovariate(rate_per_s)
        out.append(t_s)
    return out


def run_spec(spec: VariantSpec) -> dict[str, Any]:
    """Run one variant with its seed; its row (axis values, figures, the round trips)."""
    wall0_s = time.perf_counter()
    sf = scenario_files.from_data(
        spec.scenario, source=f"variant {spec.name}", base_dir=Path(spec.base_dir)
    )
    config = replace(sf.emulation, seed=spec.seed)
    times = submit_times(spec.load, spec.seed)
    run = run_queries(
        config, times, max_new_tokens=spec.load.max_new_tokens, prompts=spec.load.prompts
    )
    done = [t for t in run.timelines if t.total_s is not None]
    totals = [t.total_s for t in done if t.total_s is not None]
    legs = [leg_groups_s(t) for t in done]
    row: dict[str, Any] = {
        "variant": spec.index,
        "name": spec.name,
        **{k: v for k, v in spec.axes},
        "seed": spec.seed,
        "key": spec.key,
        "version": linkstack.__version__,
    }
    for p in spec.percentiles:
        row[f"rt_{pct_label(p)}_s"] = percentile(totals, p) if totals else None
    for leg in spec.legs:
        values = [g[leg] for g in legs]
        for p in spec.percentiles:
            row[f"{leg}_{pct_label(p)}_s"] = percentile(values, p) if values else None
    energy = [f["served_wh"] for f in run.onboard.values() if "served_wh" in f]
    row |= {
        "under_120s": sum(1 for x in totals if x < REFERENCE_S) / len(totals) if totals else None,
        "queries": len(run.timelines),
        "answered": len(done),
        "refused": sum(1 for t in run.timelines if t.error),
        "retransmitted_frames": sum(t.uplink_retransmissions or 0 for t in run.timelines),
        "energy_wh": sum(energy) if energy else None,
        "round_trips_s": totals,
        "wall_s": time.perf_counter() - wall0_s,
    }
    return row
