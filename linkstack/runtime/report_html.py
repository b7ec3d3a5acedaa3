"""Reports as one self-contained HTML page: the chart as a ``data:`` URI, then tables.

Nothing on the page is fetched: no scripts, no fonts, no style sheets but its own,
so the file can be mailed, archived or opened offline. Every text from the run (query
ids, prompts, scenario names) is escaped. :func:`html_page` builds any page;
:func:`roundtrip_sections` gives a round-trip report's tables (its percentiles, its
groups, one row a query).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from linkstack.runtime.report import leg_text
from linkstack.runtime.report_chart import finite, mapping_of, report_summary
from payloads.timeline import LEGS, Timeline

MAX_QUERY_ROWS = 1000  # a long run's page stays a few hundred KB; the JSON has them all

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
"""


@dataclass(frozen=True)
class Section:
    """A table under a heading; ``text_columns``: the columns aligned left."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[object]]
    text_columns: frozenset[int] = frozenset({0})


def html_page(title: str, png: bytes, sections: Sequence[Section]) -> str:
    """A whole HTML page: ``title``, the PNG inline, each section's table."""
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title.splitlines()[0])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{'<br>'.join(html.escape(line) for line in title.splitlines())}</h1>",
        f'<img alt="the chart of this report" src="{uri}">',
    ]
    for s in sections:
        out.append(f"<h2>{html.escape(s.title)}</h2>")
        out.append("<table><tr>" + "".join(
            f'<th class="{_align(i, s)}">{html.escape(h)}</th>' for i, h in enumerate(s.header)
        ) + "</tr>")  # fmt: skip
        for row in s.rows:
            cells = "".join(
                f'<td class="{_align(i, s)}">{html.escape(cell_text(v))}</td>'
                for i, v in enumerate(row)
            )
            out.append(f"<tr>{cells}</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _align(column: int, section: Section) -> str:
    return "text" if column in section.text_columns else "num"


def cell_text(value: object) -> str:
    """A table cell: numbers to 4 significant digits, nothing as ``-``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _percent(fraction: object) -> str | None:
    return f"{fraction:.0%}" if finite(fraction) else None


def _dist_row(label: str, dist: Mapping[str, Any]) -> list[object]:
    cells: list[object] = [label, dist.get("count")]
    for key in ("p50_s", "p95_s", "p99_s", "max_s"):
        value = dist.get(key)
        cells.append(leg_text(value) if finite(value) else None)
    return cells


def roundtrip_sections(
    doc: Mapping[str, Any], timelines: list[Timeline], shell_of: Mapping[str, str] | None = None
) -> list[Section]:
    """The tables of a round-trip report: the percentiles of the round trip and of
    each leg, the groups (at submit, by laser hops, by shell with ``shell_of``), one
    row a query, the prompts where the report lists them, and the run's settings."""
    summary = report_summary(doc, timelines, shell_of)
    sections = []
    every = mapping_of(summary, "all")
    if every:
        rows = [_dist_row("round trip", mapping_of(every, "total"))]
        legs = mapping_of(every, "legs")
        rows += [_dist_row(name, mapping_of(legs, name)) for name, _ in LEGS if name in legs]
        head = ["", "count", "p50", "p95", "p99", "max"]
        sections.append(Section("Percentiles of the answered queries", head, rows))
    groups = []
    for label, key in (
        ("all", "all"),
        ("in view at submit", "in_view_at_submit"),
        ("relayed at submit", "relayed_at_submit"),
        ("waited for a pass", "waited_for_a_pass"),
    ):
        if mapping_of(summary, key):
            groups.append((label, mapping_of(summary, key)))
    for title, key in (("laser hops", "by_laser_hops"), ("shell", "by_shell")):
        by = mapping_of(summary, key)
        groups += [(f"{title} {name}", mapping_of(by, name)) for name in by]
    if groups:
        rows = []
        for label, b in groups:
            tot = mapping_of(b, "total")
            rows.append([
                label, b.get("queries"), b.get("answered"),
                *_dist_row("", tot)[2:5], _percent(b.get("fraction_under_reference")),
            ])  # fmt: skip
        ref = summary.get("reference_s", 120.0)
        head = ["group", "queries", "answered", "p50", "p95", "p99", f"under {ref:g} s"]
        sections.append(Section("Round trips by group", head, rows))
    names = [name for name, _ in LEGS]
    rows = []
    for t in timelines[:MAX_QUERY_ROWS]:
        legs = t.leg_durations_s()
        total_s = t.total_s
        submit = (
            "in view" if t.in_view_at_submit else "relayed" if t.relayed_at_submit else "no pass"
        )
        rows.append([
            t.query_id, t.satellite or "-", submit,
            leg_text(total_s) if total_s is not None else (t.error or "no answer"),
            *(leg_text(legs[n]) if n in legs else None for n in names),
        ])  # fmt: skip
    left_out = len(timelines) - MAX_QUERY_ROWS
    sections.append(
        Section(
            "Queries"
            + (f" (the first {MAX_QUERY_ROWS} of {len(timelines)})" if left_out > 0 else ""),
            ["query", "satellite", "at submit", "total", *names],
            rows,
            frozenset({0, 1, 2}),
        )
    )
    meta = mapping_of(doc, "meta")
    detail = meta.get("queries_detail")
    if isinstance(detail, list) and detail:
        rows = [
            [q.get("id"), q.get("target"), q.get("why"), q.get("prompt")]
            for q in detail
            if isinstance(q, Mapping)
        ]
        sections.append(
            Section("Prompts", ["query", "for", "why", "prompt"], rows, frozenset({0, 1, 2, 3}))
        )
    settings = [[k, v] for k, v in meta.items() if not isinstance(v, list | dict)]
    settings += [[k, str(v)] for k, v in meta.items() if isinstance(v, dict)]
    if settings:
        sections.append(Section("Run", ["setting", "value"], settings, frozenset({0, 1})))
    return sections
