"""A sweep's results: Parquet and CSV tables, PNG charts, the terminal's summary.

``results.parquet`` / ``results.csv``: a row per variant and seed (the axis values, the
figures of :func:`linkstack.tools.sweep_file.metric_columns`); ``roundtrips.parquet`` /
``roundtrips.csv``: every answered query's round trip, by variant and seed (the
distribution chart's data); ``metric_vs_AXIS.png`` (the chosen metric against each
axis, a point per seed and the mean line); ``roundtrips.png`` (each variant's round
trips as a box); ``sweep.json`` (:func:`summary_doc`: the axes, the metric and every
row with its round trips), from which ``linkstack report sweep.json`` draws one
figure of all of these (:func:`sweep_figure`) and an HTML page with the tables.
"""

from __future__ import annotations

import json
import math
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
from matplotlib.figure import Figure

from linkstack.errors import DecodeError
from linkstack.runtime.report import REFERENCE_S, leg_text, percentile
from linkstack.runtime.report_chart import figure_png
from linkstack.runtime.report_html import Section, html_page
from linkstack.tools.sweep_file import SweepFile, short

SWEEP_KIND = "linkstack-sweep"  # sweep.json's "kind"


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
    paths["summary"] = out_dir / "sweep.json"
    paths["summary"].write_text(json.dumps(summary_doc(sweep, rows), indent=1), "utf-8")
    if rows:
        paths |= charts(sweep, rows, out_dir)
    return paths


def summary_doc(sweep: SweepFile, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``sweep.json``: what ``linkstack report`` draws a sweep from (the base, the
    axes, the metric, the load and every row with its round trips)."""
    return _json_safe({
        "kind": SWEEP_KIND,
        "source": sweep.source,
        "base": sweep.base,
        "metric": sweep.metric,
        "axes": [{"key": a.key, "values": list(a.values)} for a in sweep.axes],
        "seeds": list(sweep.seeds),
        "load": {
            "queries": sweep.load.queries, "arrival": sweep.load.arrival,
            "hours": sweep.load.hours, "max_new_tokens": sweep.load.max_new_tokens,
        },
        "rows": [dict(r) for r in rows],
    })  # fmt: skip


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def check_doc(doc: object, source: str = "sweep.json") -> dict[str, Any]:
    """``doc`` if it is a sweep summary (:func:`summary_doc`), else a
    :class:`~linkstack.errors.DecodeError` naming the key."""
    if not isinstance(doc, dict):
        raise DecodeError(source, "document", "a JSON object is needed")
    for key, kind in (("metric", str), ("axes", list), ("rows", list)):
        if key not in doc:
            raise DecodeError(source, key, "missing: a sweep summary has metric, axes and rows")
        if not isinstance(doc[key], kind):
            raise DecodeError(source, key, f"a {kind.__name__} is needed")
    for i, axis in enumerate(doc["axes"]):
        if not (isinstance(axis, dict) and isinstance(axis.get("key"), str)
                and isinstance(axis.get("values"), list)):  # fmt: skip
            raise DecodeError(source, f"axes[{i}]", "needs a key (text) and values (a list)")
    for i, row in enumerate(doc["rows"]):
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise DecodeError(source, f"rows[{i}].name", "missing or not a string")
        trips = row.get("round_trips_s")
        ok = isinstance(trips, list) and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in trips
        )
        if not ok:
            raise DecodeError(source, f"rows[{i}].round_trips_s", "not a list of numbers")
        for axis in doc["axes"]:
            if axis["key"] not in row:
                raise DecodeError(source, f"rows[{i}].{axis['key']}", "missing (an axis)")
    return doc


def _metric_panel(
    ax: Any, key: str, values: Sequence[Any], rows: Sequence[dict[str, Any]], metric: str
) -> None:
    """The metric against one axis: a point per row, the mean line."""
    labels = [short(v) for v in values]
    numeric = all(isinstance(v, int | float) for v in values)
    xs_of = {
        lab: (v if numeric else k) for k, (lab, v) in enumerate(zip(labels, values, strict=True))
    }
    by_x: dict[Any, list[float]] = defaultdict(list)
    for r in rows:
        y = r.get(metric)
        if y is None or short(r[key]) not in xs_of:
            continue
        x = xs_of[short(r[key])]
        by_x[x].append(y)
        ax.plot([x], [y], "o", color="tab:blue", alpha=0.4, ms=4)
    xs = sorted(by_x)
    ax.plot(xs, [sum(by_x[x]) / len(by_x[x]) for x in xs], "-", color="tab:blue",
            label="mean over the other axes and seeds")  # fmt: skip
    if not numeric:
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _roundtrips_panel(ax: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Each variant's round trips (its seeds together) as a box, its median written
    on it, the 120-second reference labelled."""
    by_variant: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_variant[r["name"]] += r["round_trips_s"]
    names = list(by_variant)
    ax.boxplot([by_variant[n] or [float("nan")] for n in names], showfliers=True)
    for i, n in enumerate(names, start=1):
        if by_variant[n]:
            median_s = percentile(by_variant[n], 50)
            ax.annotate(f"p50 {leg_text(median_s)}", (i, median_s), xytext=(4, 3),
                        textcoords="offset points", fontsize=7)  # fmt: skip
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right", fontsize=7)
    ax.axhline(REFERENCE_S, color="tab:red", lw=0.8, ls="--")
    ax.text(0.01, REFERENCE_S, f"{REFERENCE_S:g} s reference", color="tab:red", fontsize=8,
            transform=ax.get_yaxis_transform(), va="bottom")  # fmt: skip
    ax.set_ylabel("round trip (s)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)


def charts(sweep: SweepFile, rows: Sequence[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    metric = sweep.metric
    for axis in sweep.axes:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        _metric_panel(ax, axis.key, axis.values, rows, metric)
        fig.tight_layout()
        safe = axis.key.replace(".", "_").replace("[", "_").replace("]", "")
        path = out_dir / f"{metric}_vs_{safe}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out[f"chart {axis.key}"] = path
    names = {r["name"] for r in rows}
    fig, ax = plt.subplots(figsize=(max(6.4, 0.5 * len(names) + 2), 4.4))
    _roundtrips_panel(ax, rows)
    fig.tight_layout()
    out["chart round trips"] = out_dir / "roundtrips.png"
    fig.savefig(out["chart round trips"], dpi=100)
    plt.close(fig)
    return out


def sweep_title(doc: dict[str, Any]) -> str:
    """``sweep of BASE: 4 variants x 2 seeds · metric rt_p95_s · 3 queries over 0.2 h``."""
    rows = doc["rows"]
    variants = len({r["name"] for r in rows})
    seeds = len({r.get("seed") for r in rows})
    load = doc.get("load") if isinstance(doc.get("load"), dict) else {}
    axes = ", ".join(a["key"] for a in doc["axes"]) or "-"
    head = f"sweep of {doc.get('base') or '-'}: {variants} variant(s) x {seeds} seed(s) over {axes}"
    tail = f"metric {doc['metric']}"
    if load:
        tail += f" · {load.get('queries')} queries over {load.get('hours')} h each"
    return f"{head}\n{tail}"


def sweep_figure(doc: dict[str, Any], source: str = "sweep.json") -> Figure:
    """One figure of a sweep summary: the round trips by variant, then the metric
    against each axis."""
    doc = check_doc(doc, source)
    axes = doc["axes"]
    names = {r["name"] for r in doc["rows"]}
    width = max(12.0, 0.5 * len(names) + 4)
    fig = Figure(figsize=(width, 4.6 + 3.8 * math.ceil(len(axes) / 2)), layout="constrained")
    grid = fig.add_gridspec(1 + math.ceil(len(axes) / 2), 2, height_ratios=(
        4.6, *[3.8] * math.ceil(len(axes) / 2)
    ))  # fmt: skip
    _roundtrips_panel(fig.add_subplot(grid[0, :]), doc["rows"])
    for i, axis in enumerate(axes):
        ax = fig.add_subplot(grid[1 + i // 2, i % 2])
        _metric_panel(ax, axis["key"], axis["values"], doc["rows"], doc["metric"])
    fig.suptitle(sweep_title(doc), fontsize=12)
    return fig


def sweep_sections(doc: dict[str, Any]) -> list[Section]:
    """The page's tables: a line per variant (seeds averaged), then every row."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in doc["rows"]:
        groups[r["name"]].append(r)
    skip = {"round_trips_s", "key", "version", "variant", "name", "seed"}
    cols = list(dict.fromkeys(k for r in doc["rows"] for k in r if k not in skip))
    figures = [c for c in cols if all(
        isinstance(r.get(c), int | float | None) and not isinstance(r.get(c), bool)
        for r in doc["rows"]
    )]  # fmt: skip
    means = []
    for name, rs in groups.items():
        cells: list[object] = [name, len(rs)]
        for c in figures:
            vals = [r[c] for r in rs if r.get(c) is not None]
            cells.append(sum(vals) / len(vals) if vals else None)
        means.append(cells)
    every = [[r["name"], r.get("seed"), *(_cell(r.get(c)) for c in cols)] for r in doc["rows"]]
    return [
        Section("Variants (mean over seeds)", ["variant", "seeds", *figures], means),
        Section("Every run", ["variant", "seed", *cols], every, frozenset({0})),
    ]


def write_pages(doc: dict[str, Any], stem: Path, source: str = "sweep.json") -> dict[str, Path]:
    """``STEM.png`` and ``STEM.html`` of a sweep summary; their paths."""
    png = figure_png(sweep_figure(doc, source))
    page = html_page("linkstack " + sweep_title(doc), png, sweep_sections(doc))
    paths = {"chart": stem.with_suffix(".png"), "html": stem.with_suffix(".html")}
    paths["chart"].write_bytes(png)
    paths["html"].write_text(page, "utf-8")
    return paths


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
