"""``GET /metrics``: the collector on a small in-process state, read back with
prometheus-client's own parser; and a daemon of each kind scraped over HTTP during a
run, its metrics checked against its own ``/counters`` and report."""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request
from pathlib import Path

import aiomqtt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from linkstack.daemon.metrics import (
    CONTENT_TYPE,
    FRAME_GAPS,
    ROUND_TRIP_BOUNDS_S,
    Buckets,
    DaemonMetrics,
    Snapshot,
)
from linkstack.daemon.parts import FRAME_GAP_COUNTERS
from linkstack.daemon.status import STATUS_LIST_MAX
from tests.daemon.test_daemon_processes import HANG_S, TOPICS, Listener, publish_queries, query

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples_of(text: str) -> Samples:
    """Every sample of the exposition, by name and sorted labels."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def families_of(text: str) -> dict[str, str]:
    """Each family's name and type."""
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


# -- the collector, in process ------------------------------------------------------------------


def test_buckets_count_each_value_at_its_first_bound_and_cumulate_for_prometheus():
    b = Buckets((1.0, 10.0))
    for v in (0.2, 1.0, 3.0, 10.0, 11.0, 4000.0):
        b.observe(v)
    assert b.counts == [2, 2, 2] and b.count == 6 and b.sum == pytest.approx(4025.2)
    assert b.cumulative() == [("1.0", 2.0), ("10.0", 4.0), ("+Inf", 6.0)]
    b.add([1, 0, 0], 0.5)
    assert b.counts == [3, 2, 2] and b.sum == pytest.approx(4025.7)
    with pytest.raises(ValueError, match="2 counts for 2 bounds"):
        Buckets((1.0, 10.0), [1, 2])


def _small_state() -> Snapshot:
    """An ``all`` daemon's state, shaped as its /counters and /status are."""
    lateness = Buckets((0.001, 0.01))
    for late_s in (0.0002, 0.004, 0.2):
        lateness.observe(late_s)
    trips = {
        "answer": Buckets(ROUND_TRIP_BOUNDS_S),
        "model_unavailable": Buckets(ROUND_TRIP_BOUNDS_S),
    }
    for total_s in (1.4, 95.0, 2500.0):
        trips["answer"].observe(total_s)
    trips["model_unavailable"].observe(0.3)
    counters = {
        "channel": {
            "uplink": {"sent": 10, "delivered": 7, "corrupted": 1, "dropped": 2,
                       "dropped_no_contact": 2, "bit_errors": 3, "late_max_ms": 200.0},
            "downlink": {"sent": 3, "delivered": 3, "late_max_ms": 1.0},
        },
        "ground": {
            "cop1": {"AD_sent": 5, "AD_retransmitted": 2, "BC_sent": 1, "alert_T1": 1,
                     "suspends": 0, "event_E1": 4, "clcws": 9},
            "downlink": {"cadu_cadus": 20, "cadu_frames": 19, "cadu_rs_uncorrectable": 1,
                         "tm_frames": 19, "tm_idle_frames": 15, "tm_mc_frames_lost": 2},
        },
        "satellites": {
            "uplink": {"cltu_cltus": 8, "cltu_frame_incomplete": 1},
            "services": {"inferences": 4},
        },
        "app": {"app": {"queries": 6, "requests_refused": 1, "published": 3}},
        "sdls": {"protected": 4, "refused_bad_mac": 2},
    }  # fmt: skip
    status = {
        "scenario": "default",
        "channel": {"links": [], "active": 2},
        "ground": {"links": [
            {"satellite": "CS-06", "tm_frame_error_rate": 0.1, "backlog": 4},
            {"satellite": "CS-08", "tm_frame_error_rate": None, "backlog": 0},
        ]},
        "satellites": {
            "satellites": [
                {"satellite": "CS-06", "model_queue": 2, "unacknowledged": 1, "parked": 0,
                 "uplink_frame_error_rate": 0.125, "busy_s": 12.5,
                 "battery_soc_wh": 150.0, "battery_capacity_wh": 200.0},
                {"satellite": "CS-09", "model_queue": None, "unacknowledged": None,
                 "parked": 3, "busy_s": None},
            ],
            "in_view_count": 2, "hosted": 12,
        },
        "app": {"queue": {"received": 1, "submitted": 2, "answered": 0, "published": 3}},
    }  # fmt: skip
    return Snapshot("all", counters, status, {"uplink": lateness}, trips)


def test_the_collector_turns_the_daemons_state_into_prometheus_families():
    body, content_type = DaemonMetrics(_small_state).render()
    assert content_type == CONTENT_TYPE and content_type.startswith("text/plain; version=0.0.4")
    text = body.decode()
    s = samples_of(text)
    kinds = families_of(text)
    assert kinds["linkstack_link_units_sent"] == "counter"
    assert kinds["linkstack_link_lateness_seconds"] == "histogram"
    assert kinds["linkstack_query_round_trip_seconds"] == "histogram"
    assert kinds["linkstack_satellite_model_queue_queries"] == "gauge"
    assert all(name.startswith("linkstack_") for name in kinds)
    # links by kind: fates, losses by reason, bit errors
    assert value(s, "linkstack_link_units_sent_total", kind="uplink") == 10
    assert value(s, "linkstack_link_units_delivered_total", kind="uplink") == 7
    assert value(s, "linkstack_link_units_corrupted_total", kind="uplink") == 1
    assert value(s, "linkstack_link_units_lost_total", kind="uplink", reason="no_contact") == 2
    assert value(s, "linkstack_link_bit_errors_total", kind="uplink") == 3
    assert value(s, "linkstack_link_units_corrupted_total", kind="downlink") == 0
    late = "linkstack_link_lateness_seconds"
    buckets = [value(s, f"{late}_bucket", kind="uplink", le=le) for le in ("0.001", "0.01", "+Inf")]
    assert buckets == [1, 2, 3]
    assert value(s, f"{late}_count", kind="uplink") == 3
    assert value(s, f"{late}_sum", kind="uplink") == pytest.approx(0.2042)
    assert not any(n == f"{late}_count" and dict(lb)["kind"] == "downlink" for n, lb in s)
    assert value(s, "linkstack_links_active") == 2
    # COP-1 and the downlink frames
    assert value(s, "linkstack_cop1_frames_sent_total", frame_type="AD") == 5
    assert value(s, "linkstack_cop1_frames_sent_total", frame_type="BC") == 1
    assert value(s, "linkstack_cop1_retransmissions_total", frame_type="AD") == 2
    assert value(s, "linkstack_cop1_alerts_total", code="T1") == 1
    assert value(s, "linkstack_downlink_frames_received_total") == 19  # not the idle ones twice
    assert value(s, "linkstack_downlink_frames_lost_total", reason="count_gap") == 2
    assert FRAME_GAPS == FRAME_GAP_COUNTERS  # the receivers' gap counters, named twice
    assert value(s, "linkstack_downlink_frames_lost_total", reason="rs_uncorrectable") == 1
    assert value(s, "linkstack_downlink_frame_error_ratio", satellite="CS-06") == 0.1
    assert ("linkstack_downlink_frame_error_ratio", (("satellite", "CS-08"),)) not in s  # none
    assert value(s, "linkstack_ground_backlog_frames", satellite="CS-06") == 4
    # the satellites: receivers, and the listed ones' gauges (only what each has)
    assert value(s, "linkstack_uplink_cltus_received_total") == 8
    assert value(s, "linkstack_uplink_cltus_failed_total") == 1
    assert value(s, "linkstack_satellite_inferences_total") == 4
    assert value(s, "linkstack_satellites_hosted") == 12
    assert value(s, "linkstack_satellite_model_queue_queries", satellite="CS-06") == 2
    assert value(s, "linkstack_satellite_parked_messages", satellite="CS-09") == 3
    assert value(s, "linkstack_satellite_busy_seconds_total", satellite="CS-06") == 12.5
    assert value(s, "linkstack_satellite_battery_charge_watt_hours", satellite="CS-06") == 150
    assert value(s, "linkstack_satellite_battery_capacity_watt_hours", satellite="CS-06") == 200
    assert ("linkstack_satellite_model_queue_queries", (("satellite", "CS-09"),)) not in s
    assert value(s, "linkstack_uplink_frame_error_ratio", satellite="CS-06") == 0.125
    # the queries: in, refused, finished by outcome, their round trips, the queue
    assert value(s, "linkstack_queries_received_total") == 6
    assert value(s, "linkstack_queries_refused_total") == 1
    assert value(s, "linkstack_queries_published_total") == 3
    assert value(s, "linkstack_queries_finished_total", outcome="answer") == 3
    assert value(s, "linkstack_queries_finished_total", outcome="model_unavailable") == 1
    trip = "linkstack_query_round_trip_seconds"
    assert value(s, f"{trip}_bucket", outcome="answer", le="1.0") == 0
    assert value(s, f"{trip}_bucket", outcome="answer", le="2.0") == 1
    assert value(s, f"{trip}_bucket", outcome="answer", le="120.0") == 2
    assert value(s, f"{trip}_bucket", outcome="answer", le="3600.0") == 3
    assert value(s, f"{trip}_bucket", outcome="answer", le="+Inf") == 3
    assert value(s, f"{trip}_sum", outcome="answer") == pytest.approx(2596.4)
    assert value(s, f"{trip}_bucket", outcome="model_unavailable", le="0.5") == 1
    assert value(s, "linkstack_ground_queue_queries", state="submitted") == 2
    assert value(s, "linkstack_daemon_info", role="all", scenario="default") == 1
    assert value(s, "linkstack_sdls_refused_frames_total", reason="bad_mac") == 2


def test_a_channel_daemon_exports_its_links_and_nothing_of_the_ground():
    """What a daemon does not run it does not export (no empty query families)."""
    full = _small_state()
    snap = Snapshot("channel", {"channel": full.counters["channel"]}, {"scenario": "x"})
    kinds = families_of(DaemonMetrics(lambda: snap).render()[0].decode())
    assert "linkstack_link_units_sent" in kinds and "linkstack_daemon_info" in kinds
    others = ("linkstack_quer", "linkstack_cop1", "linkstack_satellite")
    assert not any(n.startswith(others) for n in kinds)


def test_each_scrape_reads_the_state_again_in_a_registry_of_its_own():
    state = {"n": 1}

    def read() -> Snapshot:
        counters = {"app": {"app": {"queries": state["n"]}}}
        return Snapshot("ground", counters, {})

    one, two = DaemonMetrics(read), DaemonMetrics(read)  # two daemons in one process
    assert value(samples_of(one.render()[0].decode()), "linkstack_queries_received_total") == 1
    state["n"] = 5
    assert value(samples_of(two.render()[0].decode()), "linkstack_queries_received_total") == 5
    assert one.registry is not two.registry


# -- real daemons, scraped over HTTP ------------------------------------------------------------


def http_get(port: int, path: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
        return reply.read(), reply.headers["Content-Type"]


def counters_of(port: int) -> dict:
    return json.loads(http_get(port, "/counters")[0])


def scrape(port: int) -> tuple[dict, Samples, dict]:
    """/counters, /metrics, /counters: each counter of the scrape lies between the two
    (the links carry idle TM all through a pass, so they never stand still)."""
    before = counters_of(port)
    body, content_type = http_get(port, "/metrics")
    assert content_type == CONTENT_TYPE
    return before, samples_of(body.decode()), counters_of(port)


def between(before: dict, after: dict, key: str, got: float, *path: str) -> None:
    for part in path:
        before, after = before.get(part, {}), after.get(part, {})
    assert before.get(key, 0) <= got <= after.get(key, 0), (path, key, got)


async def test_an_all_daemon_scraped_during_a_run_agrees_with_its_counters_and_report(run, broker):
    # the battery modelled (an accelerator's power draw: its inference legs are modelled)
    with run.scenario.open("a") as f:
        f.write('[model]\naccelerator = "jetson-agx-orin-64gb"\n[power]\nenabled = true\n')
    proc = run.start("all")
    await run.ready(proc)
    port = run.http_port + 3  # the all daemon's
    ids = ["m-in-view", "m-relayed"]
    async with Listener(broker.port) as listener:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish(TOPICS.query, b"not a query", qos=1)  # refused
        await publish_queries(
            broker.port, [query(ids[0], "Anyone?"), query(ids[1], "CS-10?", target="CS-10")]
        )
        await listener.answers(ids)
    deadline = time.monotonic() + HANG_S  # the queries settle: published, refused counted
    while (app := counters_of(port)["app"]["app"]).get("published", 0) < 2 or not app.get(
        "requests_refused"
    ):
        assert time.monotonic() < deadline, app
        await asyncio.sleep(0.05)
    before, s, after = scrape(port)

    for kind, counts in after["channel"].items():
        for fate in ("sent", "delivered", "corrupted"):
            got = value(s, f"linkstack_link_units_{fate}_total", kind=kind)
            between(before, after, fate, got, "channel", kind)
        for key in counts:
            if key.startswith("dropped_"):
                got = value(s, "linkstack_link_units_lost_total", kind=kind, reason=key[8:])
                between(before, after, key, got, "channel", kind)
        handed = value(s, "linkstack_link_lateness_seconds_count", kind=kind)  # each unit once
        b, a = before["channel"].get(kind, {}), counts
        assert b.get("delivered", 0) + b.get("corrupted", 0) <= handed
        assert handed <= a.get("delivered", 0) + a.get("corrupted", 0)
        assert value(s, "linkstack_link_lateness_seconds_bucket", kind=kind, le="+Inf") == handed
    assert value(s, "linkstack_link_units_sent_total", kind="isl") > 0  # the relayed query
    for key in after["ground"]["cop1"]:
        if key.endswith("_sent"):
            got = value(s, "linkstack_cop1_frames_sent_total", frame_type=key[:-5])
            between(before, after, key, got, "ground", "cop1")
    assert value(s, "linkstack_cop1_frames_sent_total", frame_type="AD") >= 2  # the queries
    got = value(s, "linkstack_downlink_frames_received_total")
    between(before, after, "tm_frames", got, "ground", "downlink")
    got = value(s, "linkstack_uplink_cltus_received_total")
    between(before, after, "cltu_cltus", got, "satellites", "uplink")
    inferences = after["satellites"]["services"]["inferences"]
    assert value(s, "linkstack_satellite_inferences_total") == inferences == 2
    # the queries stand still once settled: equal, not between
    app = after["app"]["app"]
    assert value(s, "linkstack_queries_received_total") == app["queries"] == 2
    assert value(s, "linkstack_queries_refused_total") == app["requests_refused"] == 1
    assert value(s, "linkstack_queries_published_total") == app["published"] == 2
    assert value(s, "linkstack_queries_finished_total", outcome="answer") == app["answers"] == 2
    assert value(s, "linkstack_ground_queue_queries", state="published") == 2
    assert value(s, "linkstack_daemon_info", role="all", scenario="default") == 1
    listed = {dict(lb)["satellite"] for n, lb in s if n == "linkstack_satellite_parked_messages"}
    assert listed and len(listed) <= STATUS_LIST_MAX
    assert listed <= {f"CS-{i:02d}" for i in range(1, 13)}
    assert value(s, "linkstack_satellites_hosted") == 12
    capacity = "linkstack_satellite_battery_capacity_watt_hours"
    charged = {dict(lb)["satellite"]: v for (n, lb), v in s.items() if n == capacity}
    assert charged and set(charged) <= listed and set(charged.values()) == {600.0}
    for name in charged:  # the default [power]: 600 Wh, full at the start, 30 % the floor
        charge = value(s, "linkstack_satellite_battery_charge_watt_hours", satellite=name)
        assert 0.7 * 600.0 <= charge <= 600.0, (name, charge)

    # the round trips against the report the daemon writes as it stops
    run.stop_all(proc)
    written = next(r for r in run.records(proc) if r.get("msg") == "report written")
    path = Path(written["path"])  # the report, or the run's folder that holds it
    report = json.loads((path / "report.json" if path.is_dir() else path).read_text())
    totals = [q["total_s"] for q in report["queries"]]
    assert sorted(q["query_id"] for q in report["queries"]) == sorted(ids)
    expected = Buckets(ROUND_TRIP_BOUNDS_S)
    for total_s in totals:
        expected.observe(total_s)
    trip = "linkstack_query_round_trip_seconds"
    for le, count in expected.cumulative():
        assert value(s, f"{trip}_bucket", outcome="answer", le=le) == count, le
    assert value(s, f"{trip}_sum", outcome="answer") == pytest.approx(sum(totals), rel=1e-9)
    assert all(math.isfinite(t) and t > 0 for t in totals)
    # each answer came down (messages version 3) saying what timed its inference legs
    # and the battery's charge at its end, which the ground's copy of the battery takes
    for q in report["queries"]:
        assert q["inference_timing"].startswith("modelled: jetson-agx-orin-64gb/"), q
        assert 0.7 * 600.0 <= q["battery_wh"] <= 600.0, q


@pytest.mark.slow  # 8 s of two more processes; the all daemon above runs every part
async def test_a_ground_and_a_channel_daemon_each_serve_their_own_metrics(run, broker):
    procs = {role: run.start(role) for role in ("channel", "ground")}
    await run.ready(*procs.values())
    await publish_queries(broker.port, [query("m-waits", "Nobody on board?")])
    ground_port, channel_port = run.http_port, run.http_port + 1
    deadline = time.monotonic() + HANG_S
    while not counters_of(ground_port)["app"]["app"].get("queries"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    before, s, after = scrape(ground_port)
    assert value(s, "linkstack_daemon_info", role="ground", scenario="default") == 1
    assert value(s, "linkstack_queries_received_total") == 1
    for key in after["ground"]["cop1"]:
        if key.endswith("_sent"):
            got = value(s, "linkstack_cop1_frames_sent_total", frame_type=key[:-5])
            between(before, after, key, got, "ground", "cop1")
    assert not any(n.startswith("linkstack_link_units") for n, _ in s)  # the channel's
    before, s, after = scrape(channel_port)
    assert value(s, "linkstack_daemon_info", role="channel", scenario="default") == 1
    for kind in ("uplink", "downlink", "isl"):
        got = value(s, "linkstack_link_units_sent_total", kind=kind)
        between(before, after, "sent", got, "channel", kind)
    assert not any(n.startswith(("linkstack_quer", "linkstack_cop1")) for n, _ in s)
    run.stop_all(*procs.values())
