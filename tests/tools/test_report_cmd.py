"""``linkstack report``: the demo's, a daemon run's and a sweep's report drawn as PNG and
as a self-contained HTML page; bad files refused naming what is wrong.

The three files under ``tests/tools/reports/`` were written by the real code, not by
hand (a run of each takes 5 to 45 s, too long to repeat here):

- ``demo-report.json``: ``linkstack demo --queries 5 --hours 2 --start-hours 1.0
  --max-new-tokens 8`` (one query in view, one relayed, three waiting for a pass);
- ``daemon-report.json``: the ground's ``report.json`` of
  ``tests/daemon/test_uslp_daemons.py`` (its run folder; ``meta.source`` shortened);
- ``sweep.json``: ``linkstack sweep --serial`` of ``tests/tools/test_sweep.py``'s
  ``SWEEP`` (4 variants x 2 seeds; ``source`` shortened).

``tests/tools/test_demo.py``, ``tests/tools/test_sweep.py`` and
``tests/daemon/test_run_dirs.py`` draw the files of fresh runs too.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.text import Text

from linkstack.errors import DecodeError
from linkstack.runtime.report import leg_text
from linkstack.runtime.report_chart import (
    LINK_LEGS,
    SUBMIT_COLOURS,
    report_timelines,
    roundtrip_figure,
)
from linkstack.runtime.report_html import roundtrip_sections
from linkstack.tools import cli, sweep_report

REPORTS = Path(__file__).parent / "reports"
ROUNDTRIPS = ("demo-report.json", "daemon-report.json")


def load(name: str) -> dict:
    return json.loads((REPORTS / name).read_text())


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its IHDR chunk (which must come first)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR", png[:16]
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def submit_of(q: dict) -> str:
    if q["in_view_at_submit"]:
        return "in view"
    return "relayed" if q["relayed_at_submit"] else "no pass"


@pytest.mark.parametrize("name", ROUNDTRIPS)
def test_the_chart_labels_totals_link_legs_reference_and_in_view_queries(name):
    doc = load(name)
    fig = roundtrip_figure(doc)
    title = fig.get_suptitle()
    meta = doc["meta"]
    assert f"scenario {meta['scenario']}" in title
    assert f"model {meta['model']}" in title and "profile host stopwatch" in title
    ax_total, ax_link = fig.axes[:2]
    assert ax_total.get_xscale() == "symlog" and ax_link.get_xscale() == "linear"
    assert ax_link.get_xlabel() == "milliseconds (linear)"
    # each bar's total at its end, in the units it reads best in
    totals = [t.get_text().strip() for t in ax_total.texts if "reference" not in t.get_text()]
    assert totals == [leg_text(q["total_s"]) for q in doc["queries"]]
    assert any(t.get_text().strip() == "120 s reference" for t in ax_total.texts)
    # the link legs in milliseconds, summed as the report has them
    links = [t.get_text().strip() for t in ax_link.texts]
    sums_ms = [sum(q["legs_s"].get(n, 0.0) for n in LINK_LEGS) * 1e3 for q in doc["queries"]]
    assert links == [f"{x:.1f} ms" for x in sums_ms]
    assert max(sums_ms) < ax_link.get_xlim()[1] < 2 * max(sums_ms)  # not slivers
    # each query says what the ground could do at submit; in view in its colour
    ticks = {t.get_text(): t.get_color() for t in ax_total.get_yticklabels()}
    for q in doc["queries"]:
        label = f"{q['query_id']} · {submit_of(q)}"
        assert ticks[label] == SUBMIT_COLOURS[submit_of(q)], (label, ticks)
    in_view = sum(q["in_view_at_submit"] for q in doc["queries"])
    assert in_view and f"{in_view} submitted in view" in title
    texts = {t.get_text() for t in fig.findobj(Text)}
    assert {"submitted: in view", "uplink", "downlink"} <= texts  # the legend


def check_png_and_page(png_path: Path, page_path: Path) -> str:
    """A PNG of a sensible size, and a page that fetches nothing, with that PNG inline;
    the page's text."""
    png = png_path.read_bytes()
    width, height = png_size(png)
    assert 1000 <= width <= 2500 and 500 <= height <= 2500, (width, height)
    page = page_path.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # nothing fetched: the one reference is the chart, inline, and it is the PNG
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page, re.IGNORECASE)
    assert len(refs) == 1 and refs[0].startswith("data:image/png;base64,"), refs[:3]
    assert base64.b64decode(refs[0].removeprefix("data:image/png;base64,")) == png
    assert not re.search(r"https?://|<script|<link|@import|url\(", page, re.IGNORECASE)
    return page


# the demo's page: tests/tools/test_demo.py checks the one a fresh demo writes
@pytest.mark.parametrize("name", ["daemon-report.json", "sweep.json"])
def test_linkstack_report_writes_a_png_and_a_self_contained_page(name, tmp_path, capsys):
    assert cli.main(["report", str(REPORTS / name), "-o", str(tmp_path)]) == 0
    stem = name.removesuffix(".json")
    out = capsys.readouterr().out
    assert str(tmp_path / f"{stem}.png") in out and str(tmp_path / f"{stem}.html") in out
    page = check_png_and_page(tmp_path / f"{stem}.png", tmp_path / f"{stem}.html")
    doc = load(name)
    if name == "sweep.json":
        assert "sweep of reference: 4 variant(s) x 2 seed(s)" in page
        assert all(r["name"] in page for r in doc["rows"])
    else:
        assert f"scenario {doc['meta']['scenario']}" in page
        assert all(q["query_id"] in page for q in doc["queries"])
        assert "<h2>Percentiles of the answered queries</h2>" in page
        answered = sum(q["total_s"] is not None for q in doc["queries"])
        under = sum(q["total_s"] is not None and q["total_s"] < 120 for q in doc["queries"])
        assert '<td class="text">all</td>' in page and f"{under / answered:.0%}</td>" in page


def test_the_demo_page_lists_the_prompts_escaped():
    doc = load("demo-report.json")
    sections = {s.title: s for s in roundtrip_sections(doc, report_timelines(doc))}
    prompts = [row[3] for row in sections["Prompts"].rows]
    assert prompts == [q["prompt"] for q in doc["meta"]["queries_detail"]]
    doc["meta"]["queries_detail"][0]["prompt"] = "<script>alert(1)</script>"
    from linkstack.runtime.report_html import html_page

    page = html_page("t", b"", roundtrip_sections(doc, report_timelines(doc)))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_sweep_figure_has_its_title_reference_and_variants():
    doc = load("sweep.json")
    fig = sweep_report.sweep_figure(doc)
    assert fig.get_suptitle().startswith("sweep of reference: 4 variant(s) x 2 seed(s)")
    texts = {t.get_text() for t in fig.findobj(Text)}
    assert "120 s reference" in texts
    assert {r["name"] for r in doc["rows"]} <= texts  # one box each, named
    assert sum(t.startswith("p50 ") for t in texts) == 4


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json {", "json: not JSON: Expecting value at line 1 column 1"),
        ("[1, 2]", "document: a JSON object is needed"),
        ('{"kind": "linkstack-weather"}', "kind: unknown report kind 'linkstack-weather'"),
        ('{"hello": 1}', "kind: missing, and the keys are none of a known report"),
        ('{"queries": []}', "meta: missing: a round-trip report has meta and queries"),
        ('{"meta": {}, "queries": {}}', "queries: a JSON list is needed, got an object"),
        (
            '{"meta": {}, "queries": [{"query_id": "a", "submit_t_s": "soon"}]}',
            "queries[0].submit_t_s: not a finite number: 'soon'",
        ),
        (
            '{"meta": {}, "queries": [{"query_id": "a", "submit_t_s": 1, "first_uplink_t_s": []}]}',
            "queries[0].first_uplink_t_s: not a finite number: []",
        ),
        ('{"kind": "linkstack-sweep", "metric": "m", "axes": []}', "rows: missing"),
        (
            '{"kind": "linkstack-sweep", "metric": "m", "axes": [], "rows": [{"name": "v"}]}',
            "rows[0].round_trips_s: not a list of numbers",
        ),
    ],
)
def test_a_file_that_is_not_a_report_is_refused_naming_what_is_wrong(
    tmp_path, capsys, content, words
):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert cli.main(["report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"linkstack report: {bad}: ") and words in err, err
    assert not list(tmp_path.glob("bad.*[!n]"))  # no .png, no .html


def test_a_missing_file_is_refused(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "none.json")]) == 2
    assert "none.json: file: no such file" in capsys.readouterr().err


_JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_DAEMON = load("daemon-report.json")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_damaged_report_is_read_or_refused_with_a_decode_error(data):
    """Any key of a real report replaced by any JSON value: read (and its tables
    built), or a DecodeError; never another exception."""
    doc = json.loads(json.dumps(_DAEMON))
    node = doc
    while isinstance(node, dict | list) and node and data.draw(st.booleans()):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        if not isinstance(node[key], dict | list) or data.draw(st.booleans()):
            node[key] = data.draw(_JSON)
            break
        node = node[key]
    try:
        timelines = report_timelines(doc)
    except DecodeError:
        return
    roundtrip_sections(doc, timelines)
