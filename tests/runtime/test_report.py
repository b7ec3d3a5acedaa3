"""Timelines, their legs, the run statistics and the report files."""

import itertools
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.runtime.report import (
    LEGS,
    Timeline,
    format_table,
    percentile,
    summarize,
    timeline_from_json,
    timeline_json,
    write_reports,
)
from payloads.timeline import Hop

ATTRS = [attr for _, attr in LEGS]


@given(
    st.floats(0, 1e5),
    st.lists(st.one_of(st.none(), st.floats(0, 500)), min_size=len(ATTRS), max_size=len(ATTRS)),
)
def test_legs_are_contiguous_and_add_up_to_the_total(submit_t_s, steps_s):
    t = Timeline("q", submit_t_s)
    t_s = submit_t_s
    for attr, step_s in zip(ATTRS, steps_s, strict=True):
        if step_s is not None:
            t_s += step_s
            setattr(t, attr, t_s)
    legs = t.legs()
    assert all(a[2] == b[1] for a, b in itertools.pairwise(legs))
    if legs:
        assert legs[0][1] == submit_t_s
    if t.complete:
        assert sum(t.leg_durations_s().values()) == pytest.approx(t.total_s, abs=1e-6)


def test_percentiles():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10], 99) == 10
    assert math.isnan(percentile([], 50))


def _timeline(qid, submit_t_s, total_s, in_view):
    t = Timeline(qid, submit_t_s, "CS-01", in_view)
    t.first_uplink_t_s = submit_t_s + (0 if in_view else total_s * 0.5)
    t.query_on_first_sat_t_s = t.first_uplink_t_s + 0.5
    t.query_on_board_t_s = t.query_on_first_sat_t_s
    t.inference_start_t_s = t.query_on_board_t_s + 0.1
    t.first_token_t_s = t.inference_start_t_s + 0.2
    t.inference_end_t_s = t.first_token_t_s + 1.0
    t.first_downlink_t_s = t.inference_end_t_s + 0.1
    t.answer_on_ground_t_s = submit_t_s + total_s
    return t


def test_summary_separates_queries_submitted_in_view():
    tls = [_timeline(f"q{i}", 100.0 * i, 20.0 + i, True) for i in range(10)]
    tls += [_timeline(f"w{i}", 100.0 * i, 3000.0 + i, False) for i in range(5)]
    tls.append(Timeline("lost", 0.0, error="rejected"))
    s = summarize(tls)
    assert s["all"]["queries"] == 16 and s["all"]["answered"] == 15
    assert s["in_view_at_submit"]["fraction_under_reference"] == 1.0
    assert s["not_in_view_at_submit"]["fraction_under_reference"] == 0.0
    assert s["all"]["under_reference"] == 10
    assert s["in_view_at_submit"]["total"]["p50_s"] == pytest.approx(24.5)
    assert s["all"]["legs"]["contact_wait"]["max_s"] == pytest.approx(1502.0)


def test_reports_are_written(tmp_path):
    tls = [_timeline(f"q{i}", 100.0 * i, 20.0 + i, i % 2 == 0) for i in range(6)]
    tls.append(Timeline("lost", 0.0, error="rejected"))
    paths = write_reports(tls, tmp_path, {"scenario": "default"})
    doc = json.loads(paths["json"].read_text())
    assert doc["meta"]["scenario"] == "default" and len(doc["queries"]) == 7
    q0 = doc["queries"][0]
    assert q0["legs_s"]["uplink"] == pytest.approx(0.5)
    assert q0["submit_t_s"] == 0.0 and q0["answer_on_ground_t_s"] == pytest.approx(20.0)
    png = paths["chart"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    table = format_table(tls)
    assert "q0" in table and "rejected" in table and "under 120 s: 100%" in table


def test_a_timeline_comes_back_whole_from_its_json():
    """The ground daemon's report is read back from the timelines its queue stored."""
    t = Timeline("q1", 10.0, "CS-03", True, 11.0, 12.0, 12.0, 13.0, 13.5, 15.0, 15.0, 16.0)
    t.hops = [Hop("uplink", "ground:A", "sat:CS-03", 11.0, 12.0)]
    t.uplink_frames_sent, t.answer_copies = 3, 2
    back = timeline_from_json(json.loads(json.dumps(timeline_json(t))))
    assert back == t and back.total_s == 6.0
    refused = Timeline("q2", 10.0, error="deadline_exceeded")
    assert timeline_from_json(json.loads(json.dumps(timeline_json(refused)))) == refused
