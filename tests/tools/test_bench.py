"""The benchmarks' helpers: the median and spread of N runs, and the contact bench's
count of what the search computes, and the daemon bench's two peers speaking the link
header. Arithmetic only: speed is never asserted here."""

import io
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from channels.contacts import SearchCounts, ground_windows, isl_windows
from channels.scenarios import default_scenario
from linkstack.tools.bench import contacts
from linkstack.tools.bench.timing import Result, format_spread, print_table, time_runs
from tests.ports import free_block


def test_result_reports_the_median_run_and_the_spread():
    r = Result("case", units=100, octets=1_000_000, run_s=[2.0, 1.0, 4.0, 1.6, 2.5])
    assert r.runs == 5 and r.median_s == 2.0
    assert r.units_per_s == 50.0 and r.mb_per_s == 0.5
    slowest, fastest = r.spread
    assert slowest == pytest.approx(-0.5) and fastest == pytest.approx(1.0)
    assert format_spread(r.run_s) == "-50 % +100 %"
    assert format_spread([1.0]) == ""


def test_time_runs_times_each_run_after_the_warm_up():
    calls = []
    run_s = time_runs(lambda: calls.append(1), repeat=5, warmup=2)
    assert len(calls) == 7 and len(run_s) == 5 and all(t >= 0 for t in run_s)


def test_print_table_says_n_and_the_spread():
    out = io.StringIO()
    print_table("title", [Result("a case", 10, 100, [1.0, 2.0, 3.0])], "frames", out=out)
    text = out.getvalue()
    assert "median of N runs" in text and "frames/s" in text and "spread" in text
    assert "a case" in text and "-33 % +100 %" in text


def test_the_contact_count_leaves_the_search_as_it_was():
    sc = default_scenario()
    args = {"duration_s": 7200.0, "step_s": contacts.STEP_S}  # the first pass is at 1.5 h
    plain = list(ground_windows(sc.fleet, sc.stations, **args))
    counts = SearchCounts()
    counted = list(ground_windows(sc.fleet, sc.stations, counts=counts, **args))
    assert [w.to_dict() for w in counted] == [w.to_dict() for w in plain]
    # 12 satellites x the 60-s points of each hour's chunk, with one interval in
    # front from the second on: 61 + 62, and 3 for the last interval, which closes
    # on the end
    assert counts.sgp4_states == 12 * (61 + 62 + 3)
    samples_10s = counts.candidate_intervals * 6
    brute_force = 12 * len(sc.stations) * 721
    assert plain and 0 < samples_10s < brute_force
    assert counts.refine_points > 0  # every pass has its AOS/LOS bisected
    # the counts add up over the searches a SearchCounts is given to
    before = (counts.sgp4_states, counts.candidate_intervals, counts.refine_points)
    list(ground_windows(sc.fleet, sc.stations, counts=counts, **args))
    assert (counts.sgp4_states, counts.candidate_intervals, counts.refine_points) == tuple(
        2 * n for n in before
    )


def test_the_laser_count_leaves_the_search_as_it_was():
    sc = default_scenario()
    pairs = sc.isl_pairs
    plain = list(isl_windows(sc.fleet, pairs, duration_s=7200.0))
    counts = SearchCounts()
    counted = list(isl_windows(sc.fleet, pairs, duration_s=7200.0, counts=counts))
    assert [w.to_dict() for w in counted] == [w.to_dict() for w in plain]
    involved = len({i for pair in pairs for i in pair})
    assert counts.sgp4_states == involved * (61 + 62 + 3)
    assert counts.candidate_intervals == 0  # a ground-search count
    assert counts.refine_points % 2 == 0  # both satellites of a pair, each evaluation


def test_bench_daemon_lateness_of_a_full_link_is_the_daemons_not_rounding(tmp_path):
    """A link loaded to its full rate for 10 s at a Unix-time anchor: units that
    arrive exactly on time have zero lateness, the last as the first (a chain of
    emission starts kept in Unix seconds gathered a millisecond of float rounding)."""
    from channels.geometry import C_MPS
    from channels.orbit import StationView
    from linkstack.runtime import scenario as scenario_file
    from linkstack.tools.bench import daemon as bench_daemon

    rate_bps = 150e6
    sc_path = tmp_path / "s.toml"
    sc_path.write_text(
        bench_daemon.scenario_text(1, rate_bps, (47100, 47400), bench_daemon.START_T_S + 5)
    )
    scenario = scenario_file.load(sc_path).scenario
    name = scenario.satellite_names[0]
    view = StationView(scenario.station("B1"), scenario.satellite(name), scenario.epoch)
    serial_s = 8 * bench_daemon.CADU_OCTETS / rate_bps
    anchor = 1_796_565_200.123456
    n = int(10 / serial_s)
    sends_rel = [k * serial_s * 0.999 for k in range(n)]  # a little faster than the link
    arrivals = []
    free = -1.0
    for s in sends_rel:
        start = max(s, free)
        free = start + serial_s
        light = view.at(bench_daemon.START_T_S + start).range_m / C_MPS
        arrivals.append(anchor + start + serial_s + light)
    sent_at = np.array([[anchor + s for s in sends_rel]])
    got = np.array([[0, k, a] for k, a in enumerate(arrivals)])
    late = bench_daemon.lateness(scenario, [name], sent_at, got, rate_bps, anchor)
    assert late.size == n
    assert np.abs(late).max() < 1e-6


def test_bench_daemon_peers_speak_the_link_header(tmp_path):
    """The bench's sender and receiver (real processes, no daemon between them): each
    unit goes behind its link's header from the link's own port, and the receiver
    names it by that header, in order."""
    base = free_block(3)
    recv_out, sent_out = tmp_path / "got.npy", tmp_path / "sent.npy"
    peers = [sys.executable, "-m", "linkstack.tools.bench.daemon_peers"]
    receiver = subprocess.Popen(
        [*peers, "receive", str(recv_out), str(base)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        links = (f"{base}:{base + 1}:3", f"{base}:{base + 2}:7")  # two links to one port
        subprocess.run([*peers, "send", str(sent_out), "200", "0.1", *links], check=True)
        time.sleep(0.3)
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(30)
    sent, got = np.load(sent_out), np.load(recv_out)
    assert sent.shape == (2, 20)
    for link in (3, 7):
        assert got[got[:, 0] == link, 1].tolist() == list(range(20))
    assert len(got) == 40
