"""A sweep's results: Parquet and CSV tables, PNG charts, the terminal's summary.

``results.parquet`` / ``results.csv``: a row per variant and seed (the axis values, the
figures of :func:`linkstack.tools.sweep_file.metric_columns`); ``roundtrips.parquet`` /
``roundtrips.csv``: every answered query's round trip, by variant and seed (the
distribution chart's data); ``metric_vs_AXIS.png`` (the chosen metric against each
axis, a point per seed and the mean line); ``roundtrips.png`` (each variant's round
trips as a box).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linkstack.tools.sweep_file import SweepFile, short


def _cell(value: Any) -> Any:
    """An axis value as a column holds it: a list (stations) as its names joined."""
    return "+".join(str(v) for v in value) if isinstance(value, list) else value


def tables(sweep: SweepFile, rows: Sequence[dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
    """The results table (no round trips) and the round trips' long table."""
    flat = [{k: _cell(v) for k, v in r.items() if k != "round_trips_s"} for r in rows]
    long: dict[str, list[Any]] = {"variant": [], "name": [], "seed": [], "round_trip_s": []}
    for r in rows:
        for x in r["round_trips_s"]:
            long["variant"].append(r["variant"])
            long["name"].append(r["name"])
            long["seed"].append(r["seed"])
            long["round_trip_s"].append(x)
    return pa.Table.from_pylist(flat), pa.table(long)


def write(sweep: SweepFile, rows: Sequence[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    """Every file of the sweep's results under ``out_dir``; their paths by what."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results, long = tables(sweep, rows)
    paths = {
        "parquet": out_dir / "results.parquet",
        "csv": out_dir / "results.csv",
        "roundtrips": out_dir / "roundtrips.parquet",
    }
    pq.write_table(results, paths["parquet"])
    pacsv.write_csv(results, paths["csv"])
    pq.write_table(long, paths["roundtrips"])
    pacsv.write_csv(long, out_dir / "roundtrips.csv")
    if rows:
        paths |= charts(sweep, rows, out_dir)
    return paths


def charts(sweep: SweepFile, rows: Sequence[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    metric = sweep.metric
    for axis in sweep.axes:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        labels = [short(v) for v in axis.values]
        numeric = all(isinstance(v, int | float) for v in axis.values)
        xs_of = {
            lab: (v if numeric else k)
            for k, (lab, v) in enumerate(zip(labels, axis.values, strict=True))
        }
        by_x: dict[Any, list[float]] = defaultdict(list)
        for r in rows:
            y = r.get(metric)
            if y is None:
                continue
            x = xs_of[short(r[axis.key])]
            by_x[x].append(y)
            ax.plot([x], [y], "o", color="tab:blue", alpha=0.4, ms=4)
        xs = sorted(by_x)
        ax.plot(xs, [sum(by_x[x]) / len(by_x[x]) for x in xs], "-", color="tab:blue",
                label="mean over the other axes and seeds")  # fmt: skip
        if not numeric:
            ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_xlabel(axis.key)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        safe = axis.key.replace(".", "_").replace("[", "_").replace("]", "")
        path = out_dir / f"{metric}_vs_{safe}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out[f"chart {axis.key}"] = path
    by_variant: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_variant[r["name"]] += r["round_trips_s"]
    names = list(by_variant)
    fig, ax = plt.subplots(figsize=(max(6.4, 0.5 * len(names) + 2), 4.4))
    ax.boxplot([by_variant[n] or [float("nan")] for n in names], showfliers=True)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right", fontsize=7)
    ax.axhline(120.0, color="tab:red", lw=0.8, ls="--", label="120 s")
    ax.set_ylabel("round trip (s)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out["chart round trips"] = out_dir / "roundtrips.png"
    fig.savefig(out["chart round trips"], dpi=100)
    plt.close(fig)
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def summary_text(sweep: SweepFile, rows: Sequence[dict[str, Any]]) -> str:
    """A line per variant (its seeds averaged): the metric, the p95, under 120 s,
    answered of queries."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["name"]].append(r)
    cols = [sweep.metric, "rt_p50_s", "rt_p95_s", "under_120s", "answered", "queries", "refused"]
    cols = [c for c in cols if any(c in r for r in rows)]
    cols = list(dict.fromkeys(cols))
    width = max([len("variant"), *(len(n) for n in groups)])
    lines = [f"{'variant':<{width}}  seeds  " + "  ".join(f"{c:>12}" for c in cols)]
    for name, rs in groups.items():
        cells = []
        for c in cols:
            vals = [r[c] for r in rs if r.get(c) is not None]
            cells.append(_fmt(sum(vals) / len(vals)) if vals else "-")
        lines.append(f"{name:<{width}}  {len(rs):>5}  " + "  ".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)
