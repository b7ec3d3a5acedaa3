"""The round-trip report's chart, drawn from the report's JSON document.

One figure (:func:`roundtrip_figure`), four panels:

- each query's legs as a horizontal stacked bar on a log axis (linear below 1 s), its
  total written at the end of the bar, the 120-second reference line labelled, and
  each query's label saying what the ground could do at submit (``in view``,
  ``relayed``, ``no pass``), in view in green;
- beside it, on the same rows, the link legs alone (``uplink``, ``relay_up``,
  ``downlink``) on a linear millisecond axis, where the log axis makes them slivers;
- the distribution of the round trips (one curve a shell where there are several);
- the round trips by laser hops.

The title names the scenario, the model and the inference profile (the accelerator
the inference legs are modelled on, or ``host stopwatch``). It is drawn from the
document (:func:`linkstack.runtime.report.to_json`), not from live objects, so a
finished run's file (``linkstack report``) and a run that has just ended draw the
same chart. :func:`report_timelines` reads the queries back, refusing a document that
is not a round-trip report with a :class:`~linkstack.errors.DecodeError` that names
the key.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeGuard

from linkstack.errors import DecodeError
from linkstack.runtime.report import leg_text, summarize, timeline_from_json
from payloads.timeline import REFERENCE_S, Timeline

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_ROWS = 40  # queries drawn as bars; past this the panels say how many are left out
LINK_LEGS = ("uplink", "relay_up", "downlink")  # what the link emulator's links take
COLOURS = {
    "contact_wait": "#bbbbbb",
    "uplink": "#1f77b4",
    "relay_up": "#9467bd",
    "onboard_queue": "#8c564b",
    "power_wait": "#e6c200",
    "inference_ttft": "#d62728",
    "generation": "#ff7f0e",
    "downlink_wait": "#7f7f7f",
    "downlink": "#2ca02c",
}
SUBMIT_COLOURS = {"in view": "#1a7f37", "relayed": "#6f42c1", "no pass": "#555555"}
REQUIRED_KEYS = ("meta", "queries")

_INSTANTS = tuple(
    f.name for f in fields(Timeline) if f.name.endswith("_t_s") and f.name != "submit_t_s"
)


def report_timelines(doc: object, source: str = "report") -> list[Timeline]:
    """The queries of a round-trip report document, as timelines; a document that is
    not one raises :class:`DecodeError` naming ``source`` and the key."""
    if not isinstance(doc, dict):
        raise DecodeError(source, "document", f"a JSON object is needed, got {_kind(doc)}")
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        raise DecodeError(
            source, ", ".join(missing), "missing: a round-trip report has meta and queries"
        )
    if not isinstance(doc["meta"], dict):
        raise DecodeError(source, "meta", f"a JSON object is needed, got {_kind(doc['meta'])}")
    queries = doc["queries"]
    if not isinstance(queries, list):
        raise DecodeError(source, "queries", f"a JSON list is needed, got {_kind(queries)}")
    out = []
    for i, q in enumerate(queries):
        where = f"queries[{i}]"
        if not isinstance(q, dict):
            raise DecodeError(source, where, f"a JSON object is needed, got {_kind(q)}")
        if not isinstance(q.get("query_id"), str):
            raise DecodeError(source, f"{where}.query_id", "missing or not a string")
        for key in ("submit_t_s", *_INSTANTS):
            value = q.get(key)
            if (key == "submit_t_s" or value is not None) and not finite(value):
                raise DecodeError(source, f"{where}.{key}", f"not a finite number: {value!r}")
        try:
            out.append(timeline_from_json(q))
        except (TypeError, ValueError) as exc:
            raise DecodeError(source, where, f"not a query's timeline: {exc}") from None
    return out


def report_summary(
    doc: Mapping[str, Any], timelines: list[Timeline], shell_of: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The run statistics, computed again from the queries (the file's ``summary`` is
    derived from them; only its ``reference_s`` is taken): what the chart and the page
    show agrees with the rows whatever a file's summary says. ``by_shell`` needs
    ``shell_of``, which a file does not keep."""
    stored = mapping_of(doc, "summary").get("reference_s")
    reference_s = float(stored) if finite(stored) and stored > 0 else REFERENCE_S
    return summarize(timelines, reference_s, shell_of)


def report_title(meta: Mapping[str, Any], timelines: list[Timeline]) -> str:
    """``scenario X · model Y · profile Z · 7/8 answered, 3 submitted in view``."""
    profiles = sorted({t.inference_timing for t in timelines if t.inference_timing})
    profile = meta.get("inference_timing") or ", ".join(profiles) or "-"
    model = meta.get("model") or meta.get("backend") or "-"
    parts = [f"scenario {meta.get('scenario') or '-'}"]
    if meta.get("ground"):
        parts.append(f"ground {meta['ground']}")
    parts += [f"model {model}", f"profile {profile}"]
    done = sum(1 for t in timelines if t.complete)
    in_view = sum(1 for t in timelines if t.in_view_at_submit)
    head = " · ".join(parts)
    return f"{head}\n{done}/{len(timelines)} answered, {in_view} submitted in view"


def _submit_label(t: Timeline) -> str:
    if t.in_view_at_submit:
        return "in view"
    return "relayed" if t.relayed_at_submit else "no pass"


def roundtrip_figure(
    doc: dict,
    shell_of: Mapping[str, str] | None = None,
    max_rows: int = MAX_ROWS,
    source: str = "report",
) -> Figure:
    """The chart of a round-trip report document (see the module docstring)."""
    # imported here: matplotlib costs half a second, and only the charts need it
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.patches import Patch  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    timelines = report_timelines(doc, source)
    summary = report_summary(doc, timelines, shell_of)
    reference_s = float(summary["reference_s"])
    shown = timelines[:max_rows]
    rows_in = max(2.5, 0.34 * len(shown) + 1.2)
    fig = Figure(figsize=(17, rows_in + 4.6), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=(rows_in, 4.0), width_ratios=(3, 2))
    ax_total = fig.add_subplot(grid[0, 0])
    ax_link = fig.add_subplot(grid[0, 1], sharey=ax_total)
    ax_cdf = fig.add_subplot(grid[1, 0])
    ax_hops = fig.add_subplot(grid[1, 1])
    fig.suptitle(report_title(doc["meta"], timelines), fontsize=12)

    # -- each query, leg by leg, on the log axis; its total at the end of its bar
    longest_s = 1.0
    for row, t in enumerate(shown):
        for name, start_t_s, end_t_s in t.legs():
            ax_total.barh(
                row, end_t_s - start_t_s, left=start_t_s - t.submit_t_s,
                color=COLOURS.get(name, "#000000"), height=0.6,
            )  # fmt: skip
        total_s = t.total_s
        end_s = total_s if total_s is not None else _last_known_s(t)
        longest_s = max(longest_s, end_s)
        label = leg_text(total_s) if total_s is not None else (t.error or "no answer")
        ax_total.text(end_s, row, f" {label}", va="center", ha="left", fontsize=8)
    ax_total.set_yticks(range(len(shown)), [f"{t.query_id} · {_submit_label(t)}" for t in shown])
    for tick, t in zip(ax_total.get_yticklabels(), shown, strict=True):
        tick.set_color(SUBMIT_COLOURS[_submit_label(t)])
        if t.in_view_at_submit:
            tick.set_fontweight("bold")
    ax_total.set_ylim(len(shown) - 0.5, -0.5)  # the first query on top
    ax_total.set_xscale("symlog", linthresh=1.0)
    # room for the labels past the longest bar (a decade more on the log part)
    ax_total.set_xlim(0, max(longest_s, reference_s) * 8)
    _reference_line(ax_total, reference_s, vertical=True)
    ax_total.set_xlabel("seconds after submit (linear below 1 s, log above)")
    left_out = len(timelines) - len(shown)
    more = f" (the first {len(shown)} of {len(timelines)})" if left_out else ""
    ax_total.set_title(f"round trip of each query, leg by leg{more}", fontsize=10, loc="left")
    handles = [Patch(color=c, label=name) for name, c in COLOURS.items()]
    handles += [Patch(color=c, label=f"submitted: {w}") for w, c in SUBMIT_COLOURS.items()]
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncol=6)

    # -- the link legs alone, in milliseconds on a linear axis, on the same rows
    widest_ms = 0.0
    for row, t in enumerate(shown):
        legs_s = t.leg_durations_s()
        left_ms = 0.0
        for name in LINK_LEGS:
            width_ms = legs_s.get(name, 0.0) * 1e3
            if width_ms > 0:
                ax_link.barh(row, width_ms, left=left_ms, color=COLOURS[name], height=0.6)
            left_ms += width_ms
        if any(name in legs_s for name in LINK_LEGS):
            ax_link.text(left_ms, row, f" {left_ms:.1f} ms", va="center", ha="left", fontsize=8)
        widest_ms = max(widest_ms, left_ms)
    ax_link.set_xlim(0, max(widest_ms, 1.0) * 1.3)
    ax_link.tick_params(axis="y", labelleft=False)
    ax_link.set_xlabel("milliseconds (linear)")
    ax_link.set_title("link legs: uplink + relay_up + downlink", fontsize=10)
    ax_link.grid(axis="x", alpha=0.3)

    # -- the distribution of the round trips, one curve a shell where there are several
    done = [t for t in timelines if t.complete]
    groups: dict[str, list[Timeline]] = {}
    for t in done:
        groups.setdefault((shell_of or {}).get(t.satellite, "-"), []).append(t)
    curves = sorted(groups.items()) if len(groups) > 1 else [("all", done)]
    for shell, group in curves:
        totals = sorted(t.total_s for t in group if t.total_s is not None)
        if totals:
            ys = [(i + 1) / len(totals) for i in range(len(totals))]
            ax_cdf.step(totals, ys, where="post", label=f"{shell} ({len(totals)})")
    _reference_line(ax_cdf, reference_s, vertical=True)
    ax_cdf.set_xscale("symlog", linthresh=1.0)
    ax_cdf.set_xlim(0, max(longest_s, reference_s) * 2)
    ax_cdf.set_ylim(0, 1.05)
    ax_cdf.set_xlabel("round trip, s (linear below 1 s, log above)")
    ax_cdf.set_ylabel("fraction of queries")
    ax_cdf.set_title(
        _percentiles_text(summary) or "distribution of round trips", fontsize=10, loc="left"
    )
    if done:
        ax_cdf.legend(fontsize=8, loc="lower right")
    ax_cdf.grid(alpha=0.3)

    # -- round trips by laser hops
    for shell, group in sorted(groups.items()):
        hops = [sum(1 for h in t.hops if h.kind == "isl") for t in group]
        totals = [t.total_s for t in group if t.total_s is not None]
        ax_hops.scatter(hops, totals, s=14, label=shell if len(groups) > 1 else None)
    _reference_line(ax_hops, reference_s, vertical=False)
    ax_hops.set_yscale("symlog", linthresh=1.0)
    ax_hops.set_ylim(0, max(longest_s, reference_s) * 2)
    ax_hops.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_hops.set_xlabel("laser hops of the round trip")
    ax_hops.set_ylabel("round trip, s")
    ax_hops.set_title("round trips by laser hops", fontsize=10)
    if len(groups) > 1:
        ax_hops.legend(fontsize=7)
    ax_hops.grid(alpha=0.3)
    return fig


def _reference_line(ax: Any, reference_s: float, *, vertical: bool) -> None:
    """The reference as a dashed line with its label on it."""
    text = f"{reference_s:g} s reference"
    if vertical:
        ax.axvline(reference_s, color="black", linestyle="--", linewidth=1)
        # above the frame, where no bar or total label covers it (the titles sit left)
        ax.text(
            reference_s, 1.005, text, transform=ax.get_xaxis_transform(),
            ha="center", va="bottom", fontsize=8,
        )  # fmt: skip
    else:
        ax.axhline(reference_s, color="black", linestyle="--", linewidth=1)
        ax.text(
            0.01, reference_s, text, transform=ax.get_yaxis_transform(),
            ha="left", va="bottom", fontsize=8,
        )  # fmt: skip


def _percentiles_text(summary: Mapping[str, Any]) -> str:
    total = mapping_of(mapping_of(summary, "all"), "total")
    if not all(finite(total.get(k)) for k in ("p50_s", "p95_s", "p99_s")):
        return ""
    return (
        f"round trips: p50 {leg_text(total['p50_s'])}, p95 {leg_text(total['p95_s'])}, "
        f"p99 {leg_text(total['p99_s'])}"
    )


def _last_known_s(t: Timeline) -> float:
    legs = t.legs()
    return legs[-1][2] - t.submit_t_s if legs else 0.0


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def mapping_of(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``doc[key]`` where it is a JSON object, else an empty one."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def finite(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: object) -> str:
    names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)
