"""Round-trip timelines of inference queries, their statistics, and the report files.

A :class:`Timeline` holds the instants (``..._t_s``) one query went through, from
the ground application's submit to the answer complete on the ground. Its
:meth:`Timeline.legs` are contiguous intervals that tile that span, so their
durations (:meth:`Timeline.leg_durations_s`) add up to the total exactly:

=================  ==========================================================
leg                from -> to (the Timeline attribute of the instant)
=================  ==========================================================
contact_wait       submit (``submit_t_s``) -> first uplink frame sent
                   (``first_uplink_t_s``; no satellite in view)
uplink             -> query complete on the first satellite
                   (``query_on_first_sat_t_s``; serialisation, propagation,
                   COP-1 retransmissions)
relay_up           -> query complete on the computing satellite
                   (``query_on_board_t_s``; laser hops)
onboard_queue      -> the power model asked (``power_asked_t_s``), or without one
                   the inference start
power_wait         -> inference start (``inference_start_t_s``): the battery could
                   not carry the inference before (only with ``[power]`` on)
inference_ttft     -> first token (``first_token_t_s``)
generation         -> last token (``inference_end_t_s``)
downlink_wait      -> first downlink frame of the answer sent
                   (``first_downlink_t_s``; waiting for a contact, laser hops
                   back towards a station)
downlink           -> answer complete on the ground (``answer_on_ground_t_s``)
=================  ==========================================================

A leg whose end is unknown is skipped and its time goes to the next known leg,
so the sum still equals the total (a daemon's ground does not see a relayed query
reach its first satellite, nor the answer's first downlink frame leave: its
``uplink`` and ``downlink_wait`` are in ``relay_up`` and ``downlink``).
:func:`summarize` computes, per run, the count, p50/p95/p99 of the total and of
each leg, the fraction under the 120-second reference, and the same for the
queries by what the ground could do with them at submit: straight up to a
satellite in view (``in_view_at_submit``), relayed at once to one out of view
(``relayed_at_submit``), or wait for a pass (``waited_for_a_pass``); and grouped by
the laser hops of the round trip (``by_laser_hops``: :func:`laser_hops`, the ``isl``
hops of the query's trace, up and down) and, given each satellite's shell
(``shell_of``: :attr:`channels.scenarios.Scenario.shell_of`), by the shell of the
computing satellite (``by_shell``).
:func:`write_reports` writes the JSON (each query: its timeline's fields,
``total_s`` and ``legs_s``, the duration of each leg), the PNG chart
(:mod:`linkstack.runtime.report_chart`) and an HTML page with the chart inline and
the tables (:mod:`linkstack.runtime.report_html`); :func:`write_report_pages` draws
the last two from a report's JSON alone (``linkstack report``).

The same names everywhere: the legs are :data:`LEGS`' names and the hops their
``kind`` (``uplink``, ``isl``, ``downlink``) in the JSON, in the terminal table and
in the lines :func:`timeline_lines` writes for ``linkstack demo`` and ``linkstack
ask``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import TypeGuard

from payloads.timeline import LEGS, REFERENCE_S, Hop, Timeline

__all__ = [
    "LEGS",
    "REFERENCE_S",
    "Hop",
    "Timeline",
    "distribution",
    "format_table",
    "laser_hops",
    "leg_text",
    "legs_text",
    "percentile",
    "route_text",
    "satellites_text",
    "summarize",
    "timeline_json",
    "timeline_lines",
]


REPORT_KIND = "linkstack-roundtrips"  # report.json's "kind" (older ones have none)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def distribution(values: list[float]) -> dict[str, float]:
    """Count, p50, p95, p99 and max of ``values`` (seconds; NaN for none)."""
    return {
        "count": len(values),
        "p50_s": percentile(values, 50),
        "p95_s": percentile(values, 95),
        "p99_s": percentile(values, 99),
        "max_s": max(values) if values else math.nan,
    }


def _totals(timelines: list[Timeline]) -> list[float]:
    """The round trips of the answered queries, in their order."""
    return [t.total_s for t in timelines if t.total_s is not None]


def laser_hops(timeline: Timeline) -> int:
    """The laser hops of a query's round trip: the ``isl`` hops of its trace, the
    query's way up to its computing satellite and its answer's way down."""
    return sum(1 for h in timeline.hops if h.kind == "isl")


def summarize(
    timelines: list[Timeline],
    reference_s: float = REFERENCE_S,
    shell_of: Mapping[str, str] | None = None,
) -> dict:
    """Run statistics (see the module docstring); ``by_shell`` with ``shell_of``."""

    def block(group: list[Timeline]) -> dict:
        done = [t for t in group if t.complete]
        totals = _totals(done)
        legs = {
            name: distribution([t.leg_durations_s().get(name, 0.0) for t in done])
            for name, _ in LEGS
        }
        under = sum(1 for x in totals if x < reference_s)
        return {
            "queries": len(group),
            "answered": len(done),
            "total": distribution(totals),
            "legs": legs,
            "under_reference": under,
            "fraction_under_reference": under / len(done) if done else math.nan,
        }

    by_hops: dict[int, list[Timeline]] = {}
    for t in timelines:
        by_hops.setdefault(laser_hops(t), []).append(t)
    out = {
        "reference_s": reference_s,
        "all": block(timelines),
        "in_view_at_submit": block([t for t in timelines if t.in_view_at_submit]),
        "relayed_at_submit": block([t for t in timelines if t.relayed_at_submit]),
        "waited_for_a_pass": block(
            [t for t in timelines if not (t.in_view_at_submit or t.relayed_at_submit)]
        ),
        "by_laser_hops": {str(n): block(by_hops[n]) for n in sorted(by_hops)},
    }
    if shell_of is not None:
        out["by_shell"] = {
            shell: block(group) for shell, group in sorted(_by_shell(timelines, shell_of).items())
        }
    return out


def _by_shell(timelines: list[Timeline], shell_of: Mapping[str, str]) -> dict[str, list[Timeline]]:
    """The timelines by the shell of their computing satellite (``-``: none known)."""
    out: dict[str, list[Timeline]] = {}
    for t in timelines:
        out.setdefault(shell_of.get(t.satellite, "-"), []).append(t)
    return out


def _json_safe(obj: object) -> object:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def timeline_json(timeline: Timeline) -> dict:
    """One query's timeline as JSON: its fields, ``total_s`` and ``legs_s`` (leg ->
    seconds)."""
    return asdict(timeline) | {"total_s": timeline.total_s, "legs_s": timeline.leg_durations_s()}


def timeline_from_json(doc: dict) -> Timeline:
    """A timeline back from :func:`timeline_json` (what it derives is dropped, and so
    is what it does not know: a timeline of another version)."""
    names = {f.name for f in fields(Timeline)}
    values = {k: v for k, v in doc.items() if k in names}
    values["hops"] = [hop for hop in map(_hop_of, doc.get("hops") or ()) if hop is not None]
    return Timeline(**values)


def route_text(hops: list[Hop]) -> str:
    """``ground:Mohe -[uplink 12.0 ms]-> sat:CS-05 -[isl]-> sat:CS-06 ...``: each hop's
    kind, and its duration where both its instants were seen."""
    if not hops:
        return "-"
    parts = [hops[0].src]
    for h in hops:
        if h.src != parts[-1]:  # a gap nobody saw
            parts.append(f"... {h.src}")
        d = h.duration_s
        label = h.kind if d is None else f"{h.kind} {leg_text(d)}"
        parts.append(f"-[{label}]->")
        parts.append(h.dst)
    return " ".join(parts)


def leg_text(seconds: float) -> str:
    """A leg's duration: ``12.4 ms`` under a second (the links' legs are milliseconds),
    ``3.21 s`` above."""
    return f"{seconds * 1e3:.1f} ms" if abs(seconds) < 1.0 else f"{seconds:.2f} s"


def legs_text(legs_s: dict[str, float]) -> str:
    """``contact_wait 992.30 s, uplink 13.0 ms, ...``: the known legs, in milliseconds
    under a second."""
    return ", ".join(f"{name} {leg_text(v)}" for name, v in legs_s.items())


def timeline_lines(t: Timeline | dict, reference_s: float = REFERENCE_S) -> list[str]:
    """The route and the legs of one query, as ``linkstack demo`` and ``linkstack ask``
    print them: from a timeline, or from its JSON (:func:`timeline_json`, as the ground
    daemon publishes it; what it lacks is left out)."""
    doc = timeline_json(t) if isinstance(t, Timeline) else t
    hops = [hop for hop in map(_hop_of, doc.get("hops") or ()) if hop is not None]
    legs = doc.get("legs_s")
    legs_s = {
        k: float(v)
        for k, v in (legs.items() if isinstance(legs, dict) else ())
        if _number(v) and isinstance(k, str)
    }
    total = doc.get("total_s")
    notes = []
    if _number(total):
        notes.append(f"under {reference_s:g} s: {'yes' if total < reference_s else 'no'}")
    if isinstance(doc.get("in_view_at_submit"), bool):
        notes.append(f"at submit: {submit_text(doc)}")
    frames, again = doc.get("uplink_frames_sent"), doc.get("uplink_retransmissions")
    if isinstance(frames, int) and isinstance(again, int):
        notes.append(f"uplink frames {frames}, retransmitted {again}")
    if "answer_copies" in doc:
        copies = doc["answer_copies"]
        notes.append(f"answer copies {copies if isinstance(copies, int) else '-'}")
    timing = doc.get("inference_timing")
    if isinstance(timing, str) and timing:
        notes.append(f"inference legs: {timing}")  # as the answer says: modelled or measured
    total_text = leg_text(total) if _number(total) else "-"
    legs_line = f"legs   {legs_text(legs_s) or '-'}  =  {total_text}"
    if notes:
        legs_line += f"  ({'; '.join(notes)})"
    return [f"route  {route_text(hops)}", legs_line]


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _hop_of(doc: object) -> Hop | None:
    """A hop from its JSON, or None if it is not one."""
    if not isinstance(doc, dict):
        return None
    kind, src, dst = doc.get("kind"), doc.get("src"), doc.get("dst")
    if not all(isinstance(x, str) for x in (kind, src, dst)):
        return None
    start, end = doc.get("start_t_s"), doc.get("end_t_s")
    return Hop(
        str(kind),
        str(src),
        str(dst),
        float(start) if _number(start) else None,
        float(end) if _number(end) else None,
    )


def submit_text(t: Timeline | dict) -> str:
    """What the ground could do with the query at submit: ``in view`` (straight up),
    ``relayed`` (up at once, then over laser links) or ``no pass`` (it waited)."""
    if isinstance(t, Timeline):
        in_view, relayed = t.in_view_at_submit, t.relayed_at_submit
    else:
        in_view, relayed = bool(t.get("in_view_at_submit")), bool(t.get("relayed_at_submit"))
    if in_view:
        return "in view"
    return "relayed" if relayed else "no pass"


def to_json(
    timelines: list[Timeline],
    meta: dict | None = None,
    shell_of: Mapping[str, str] | None = None,
    satellites: Mapping[str, dict] | None = None,
) -> str:
    doc = {
        "kind": REPORT_KIND,
        "meta": meta or {},
        "summary": summarize(timelines, shell_of=shell_of),
        "queries": [timeline_json(t) for t in timelines],
    }
    if satellites is not None:  # each computing satellite's load and energy
        doc["satellites"] = dict(satellites)
    return json.dumps(_json_safe(doc), indent=1)


def satellites_text(satellites: Mapping[str, dict], limit: int = 24) -> str:
    """One line a computing satellite that ran an inference: its inferences, busy
    fraction and, with a power model, its power wait, energy and battery (the first
    ``limit``, then a count)."""
    lines = []
    ran = {name: f for name, f in satellites.items() if f.get("inferences")}
    for name, f in list(ran.items())[:limit]:
        line = f"  {name}: {f['inferences']} inferences, busy {f['utilisation']:.2%}"
        if "generated_wh" in f:
            line += (
                f"; power wait {f['power_wait_s']:.0f} s; generated {f['generated_wh']:.0f} Wh, "
                f"served {f['served_wh']:.0f} Wh; battery {f['soc_wh']:.0f} Wh "
                f"(lowest {f['min_soc_wh']:.0f}, floor {f['floor_wh']:.0f})"
            )
        lines.append(line)
    if len(ran) > limit:
        lines.append(f"  ... and {len(ran) - limit} more")
    idle = len(satellites) - len(ran)
    if idle:
        lines.append(f"  {idle} computing satellites ran no inference")
    return "\n".join(lines)


def _cell_text(seconds: float) -> str:
    """A leg in the table: seconds, or milliseconds (``12.4ms``) under a second, where
    one decimal of a second would show the links' legs as 0.0."""
    if seconds == 0:
        return "0"
    return f"{seconds * 1e3:.1f}ms" if abs(seconds) < 1.0 else f"{seconds:.1f}"


def format_table(
    timelines: list[Timeline],
    reference_s: float = REFERENCE_S,
    shell_of: Mapping[str, str] | None = None,
    rows: bool = True,
) -> str:
    """A terminal table: one line a query (``rows``: its legs in seconds, ``ms`` under
    one), then the run's percentiles, by laser hops and by shell (``shell_of``) where
    there is more than one group."""
    widths = [max(len(name) + 1, 8) for name, _ in LEGS]
    qw = max([10, *(len(t.query_id) + 1 for t in timelines)])
    sw = max([10, *(len(t.satellite) + 1 for t in timelines)])
    head = (
        f"{'query':<{qw}}{'satellite':<{sw}}{'submit':>8}"
        + "".join(f"{name:>{w}}" for (name, _), w in zip(LEGS, widths, strict=True))
        + f"{'total':>10}  <{reference_s:g}s"
    )
    lines = [head, "-" * len(head)] if rows else []
    for t in timelines if rows else ():
        d = t.leg_durations_s()
        cells = "".join(
            f"{_cell_text(d[name]):>{w}}" if name in d else f"{'-':>{w}}"
            for (name, _), w in zip(LEGS, widths, strict=True)
        )
        total_s = t.total_s
        total = f"{_cell_text(total_s):>10}" if total_s is not None else f"{t.error or 'lost':>10}"
        ok = "yes" if total_s is not None and total_s < reference_s else "no"
        lines.append(
            f"{t.query_id:<{qw}}{t.satellite:<{sw}}{submit_text(t):>8}{cells}{total}  {ok}"
        )
    s = summarize(timelines, reference_s, shell_of)
    blocks = [(label, s[key]) for label, key in (
        ("all", "all"),
        ("in view", "in_view_at_submit"),
        ("relayed", "relayed_at_submit"),
    ) if key == "all" or s[key]["queries"]]  # fmt: skip
    for title, key in (("laser hops", "by_laser_hops"), ("shell", "by_shell")):
        groups = s.get(key, {})
        if len(groups) > 1:
            blocks += [(f"{title} {name}", b) for name, b in groups.items()]
    for label, b in blocks:
        tot = b["total"]
        frac = b["fraction_under_reference"]
        lines.append(
            f"{label}: {b['answered']}/{b['queries']} answered; total p50 "
            f"{tot['p50_s']:.1f} s, p95 {tot['p95_s']:.1f} s, p99 {tot['p99_s']:.1f} s; "
            f"under {reference_s:g} s: {'-' if math.isnan(frac) else f'{frac:.0%}'}"
        )
    return "\n".join(lines)


def write_reports(
    timelines: list[Timeline],
    out_dir: Path,
    meta: dict | None = None,
    shell_of: Mapping[str, str] | None = None,
    satellites: Mapping[str, dict] | None = None,
    charts: bool = True,
) -> dict[str, Path]:
    """Write report.json, and with ``charts`` report.png and report.html (the chart
    inline, the tables), into ``out_dir``; return their paths by ``json``, ``chart``,
    ``html`` (the round trips by shell too, given each satellite's ``shell_of``; each
    computing satellite's load and energy, given ``satellites``:
    :meth:`~linkstack.runtime.emulation.Emulation.onboard_figures`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json"}
    text = to_json(timelines, meta, shell_of, satellites)
    paths["json"].write_text(text)
    if charts:
        paths |= write_report_pages(json.loads(text), out_dir / "report", shell_of=shell_of)
    return paths


def write_report_pages(
    doc: dict,
    stem: Path,
    shell_of: Mapping[str, str] | None = None,
    source: str = "report",
) -> dict[str, Path]:
    """``STEM.png`` and ``STEM.html`` of a round-trip report document (its JSON, as
    :func:`to_json` writes it); their paths by ``chart`` and ``html``. A document that
    is not a round-trip report raises :class:`~linkstack.errors.DecodeError`."""
    # imported here: the chart imports matplotlib (half a second), and this module
    # is imported by everything that prints a timeline
    from linkstack.runtime.report_chart import (  # noqa: PLC0415
        figure_png,
        report_timelines,
        report_title,
        roundtrip_figure,
    )
    from linkstack.runtime.report_html import html_page, roundtrip_sections  # noqa: PLC0415

    timelines = report_timelines(doc, source)
    png = figure_png(roundtrip_figure(doc, shell_of=shell_of, source=source))
    page = html_page(
        "linkstack round trips: " + report_title(doc["meta"], timelines),
        png,
        roundtrip_sections(doc, timelines, shell_of),
    )
    paths = {"chart": stem.with_suffix(".png"), "html": stem.with_suffix(".html")}
    paths["chart"].write_bytes(png)
    paths["html"].write_text(page, "utf-8")
    return paths
