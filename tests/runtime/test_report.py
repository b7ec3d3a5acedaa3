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
    laser_hops,
    percentile,
    route_text,
    summarize,
    timeline_from_json,
    timeline_json,
    timeline_lines,
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


def test_summary_separates_queries_by_what_the_ground_could_do_at_submit():
    tls = [_timeline(f"q{i}", 100.0 * i, 20.0 + i, True) for i in range(10)]
    tls += [_timeline(f"w{i}", 100.0 * i, 3000.0 + i, False) for i in range(5)]
    relayed = [_timeline(f"r{i}", 100.0 * i, 30.0 + i, False) for i in range(3)]
    for t in relayed:
        t.relayed_at_submit = True
    tls += relayed
    tls.append(Timeline("lost", 0.0, error="rejected"))
    s = summarize(tls)
    assert s["all"]["queries"] == 19 and s["all"]["answered"] == 18
    assert s["in_view_at_submit"]["fraction_under_reference"] == 1.0
    assert s["in_view_at_submit"]["queries"] == 10
    assert s["relayed_at_submit"]["queries"] == 3
    assert s["relayed_at_submit"]["total"]["p50_s"] == pytest.approx(31.0)
    assert s["waited_for_a_pass"]["queries"] == 6  # the lost one had no route either
    assert s["waited_for_a_pass"]["fraction_under_reference"] == 0.0
    assert s["all"]["under_reference"] == 13
    assert s["in_view_at_submit"]["total"]["p50_s"] == pytest.approx(24.5)
    assert s["all"]["legs"]["contact_wait"]["max_s"] == pytest.approx(1502.0)
    table = format_table(tls)
    assert "relayed: 3/3 answered" in table and "in view: 10/10 answered" in table
    assert table.splitlines()[0].split()[3 : 3 + len(LEGS)] == [name for name, _ in LEGS]


def test_round_trips_by_laser_hops_and_by_shell():
    tls = []
    for i in range(9):
        t = _timeline(f"q{i}", 100.0 * i, 20.0 + 10 * (i % 3), True)
        t.satellite = ("LI800-P01-S01", "DD500-P02-003", "CS-01")[i % 3]
        t.hops = [Hop("uplink", "ground:A", "sat:X", 0.0, 1.0)]
        t.hops += [Hop("isl", "sat:X", "sat:Y", 1.0, 1.1)] * (i % 3)  # 0, 1 or 2 laser hops
        tls.append(t)
    assert [laser_hops(t) for t in tls[:3]] == [0, 1, 2]
    shell_of = {"LI800-P01-S01": "LI800", "DD500-P02-003": "DD500"}
    s = summarize(tls, shell_of=shell_of)
    assert list(s["by_laser_hops"]) == ["0", "1", "2"]
    assert [b["total"]["p50_s"] for b in s["by_laser_hops"].values()] == [20.0, 30.0, 40.0]
    assert {k: b["queries"] for k, b in s["by_shell"].items()} == {"-": 3, "DD500": 3, "LI800": 3}
    assert s["by_shell"]["DD500"]["total"]["max_s"] == 30.0
    assert "by_shell" not in summarize(tls)  # no shells given, none reported
    table = format_table(tls, shell_of=shell_of)
    assert "laser hops 2: 3/3 answered; total p50 40.0 s" in table
    assert "shell LI800: 3/3 answered; total p50 20.0 s" in table
    assert "q0" not in format_table(tls, rows=False)
    one = [t for t in tls if t.satellite.startswith("LI")]  # one group: no group lines
    assert "laser hops" not in format_table(one, shell_of=shell_of)
    assert "shell" not in format_table(one, shell_of=shell_of)


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


def test_a_timeline_with_hops_nobody_saw_comes_back_from_its_json():
    """A daemon's ground sees the ends of a relayed route, not the laser hops between."""
    t = Timeline("q3", 10.0, "CS-10", relayed_at_submit=True)
    t.hops = [
        Hop("uplink", "ground:Sanya", "sat:CS-08", 10.5, None),
        Hop("isl", "sat:CS-08", "sat:CS-09", None, None),
        Hop("isl", "sat:CS-09", "sat:CS-10", None, 10.6),
    ]
    t.answer_copies = None
    doc = json.loads(json.dumps(timeline_json(t)))
    assert doc["hops"][1] == {
        "kind": "isl",
        "src": "sat:CS-08",
        "dst": "sat:CS-09",
        "start_t_s": None,
        "end_t_s": None,
    }
    assert timeline_from_json(doc) == t
    doc["hops"].append({"kind": "downlink", "src": "sat:CS-08", "dst": "ground:Sanya", "x": 1})
    assert timeline_from_json(doc).hops[-1] == Hop(
        "downlink", "sat:CS-08", "ground:Sanya", None, None
    )


def test_the_demo_and_ask_print_a_timeline_with_the_same_names():
    t = _timeline("q1", 100.0, 20.0, True)
    t.hops = [
        Hop("uplink", "ground:Mohe", "sat:CS-05", 100.0, 100.012),
        Hop("isl", "sat:CS-05", "sat:CS-06", None, None),
        Hop("downlink", "sat:CS-06", "ground:Mohe", 119.994, 120.0),
    ]
    t.uplink_frames_sent, t.answer_copies = 2, None
    lines = timeline_lines(t)
    assert lines == timeline_lines(json.loads(json.dumps(timeline_json(t))))  # ask's input
    route, legs = lines
    assert route == (
        "route  ground:Mohe -[uplink 12.0 ms]-> sat:CS-05 -[isl]-> sat:CS-06 "
        "-[downlink 6.0 ms]-> ground:Mohe"
    )
    names = [part.split()[0] for part in legs.removeprefix("legs   ").split("  =  ")[0].split(", ")]
    # every leg but power_wait: no power model on board, the queue ends at the start
    assert names == [name for name, _ in LEGS if name != "power_wait"]
    assert legs.endswith(
        "=  20.00 s  (under 120 s: yes; at submit: in view; uplink frames 2, retransmitted 0; "
        "answer copies -)"
    )
    # what a ground of another kind publishes: what it lacks is left out
    bare = timeline_lines({"legs_s": {"uplink": 0.01, "generation": 0.5}, "total_s": 0.51})
    assert bare == [
        "route  -",
        "legs   uplink 10.0 ms, generation 500.0 ms  =  510.0 ms  (under 120 s: yes)",
    ]
    assert route_text(
        [Hop("isl", "sat:A", "sat:B", 1.0, 1.5), Hop("isl", "sat:C", "sat:D", None, None)]
    ) == ("sat:A -[isl 500.0 ms]-> sat:B ... sat:C -[isl]-> sat:D")
