"""The planned 2,800-satellite constellation as daemons (issue 16, items 3 and 5).

Real channel, sat (tiny model) and ground processes and a real Mosquitto, on the
shipped ``planned-2800`` (``linkstack/runtime/scenarios/planned-2800.toml``: 10,708
laser links, USLP frames with 16-bit SCIDs, only the inference satellites computing):
a handful of queries over MQTT, to any satellite (straight up and down) and to a named
one out of view (relayed over laser links), each answered once, with its route in its
timeline (``linkstack ask --json``) and in the ground's report. At this scale the
status lists are cut (about 1,000 satellites are in view of the 20 stations) and still
count everything, and the downlink's counters are USLP's.

planned-2800 takes 40-75 s here with three processes of 2,800 satellites each (about
2.3 GB in all), so it is marked slow (``make test-slow``); ``make test`` runs the same
test on 240 satellites in 4 planes with USLP (past the 192 that AOS's 8-bit SCIDs
name), in 10-20 s.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from pathlib import Path

import pytest

from channels.scenarios import planned_scenario
from linkstack.daemon.status import STATUS_LIST_MAX
from linkstack.runtime import scenario as scenario_module
from tests.daemon.test_daemon_processes import HANG_S, Listener, Run, publish_queries, query

START_S = 10_765.0  # the daemon tests' --start
PLANNED_READY_S = 600.0  # three processes building 2,800 satellites on 2 loaded cores

WALKER_240 = (
    '[frames]\nprotocol = "uslp"\n'
    "[constellation]\n"
    'isl = "ring"\n'
    "[[constellation.planes]]\n"
    'kind = "walker"\ntotal = 240\nplanes = 4\nphasing = 1\n'
    'inclination_deg = 53.0\naltitude_km = 550.0\nname_prefix = "W"\n'
)


SHIPPED = Path(scenario_module.__file__).parent / "scenarios" / "planned-2800.toml"


def _planned() -> str:
    """The shipped planned-2800 file itself (``--scenario planned-2800``)."""
    return SHIPPED.read_text()


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=HANG_S) as resp:
        return json.loads(resp.read())


def _relay_target(ground: dict, computing: set[str]) -> str:
    """A computing satellite out of view whose neighbour in its ring is in view: one
    laser hop or a few from a satellite the ground reaches (routes on a ring)."""
    in_view = {link["satellite"] for link in ground["links"] if link.get("aos")}
    names = sorted(computing)
    for k, name in enumerate(names):
        neighbours = names[max(k - 1, 0) : k + 2]
        if name not in in_view and any(n in in_view for n in neighbours if n != name):
            return name
    pytest.fail(f"no computing satellite out of view next to one in view: {sorted(in_view)}")


def _inference() -> set[str]:
    return {s.name for s in planned_scenario().satellites if s.role == "inference"}


def _walker() -> set[str]:
    return {f"W-P{p:02d}-S{k:02d}" for p in range(1, 5) for k in range(1, 61)}


@pytest.mark.parametrize(
    ("constellation", "computing", "satellites"),
    [
        pytest.param(_planned, _inference, 2800, marks=pytest.mark.slow, id="planned-2800"),
        pytest.param(lambda: WALKER_240, _walker, 240, id="walker-240"),
    ],
)
async def test_a_large_constellation_as_daemons_answers_each_query_once_with_its_route(
    run: Run, broker, constellation, computing, satellites
):
    # the constellation's file first (its top-level keys come before any table), then
    # the test's broker, ports and output folder
    run.scenario.write_text(
        constellation() + "\n" + run.scenario.read_text() + "[capture]\nenabled = false\n"
    )
    computing = computing()
    procs = {role: run.start(role) for role in ("channel", "sat", "ground")}
    deadline = PLANNED_READY_S if satellites > 1000 else HANG_S
    async with asyncio.timeout(deadline):
        for proc in procs.values():
            while '"msg":"ready"' not in run.log_of(proc):
                assert proc.poll() is None, run.log_of(proc)[-3000:]
                await asyncio.sleep(0.2)
    await run.ready(*procs.values())
    ground = _get(run.http_port, "/status/all")["ground"]
    target = _relay_target(ground, computing)

    async with Listener(broker.port, "test-listener-planned") as listener:
        # straight up and down, as a user asks: three to any satellite, in JSON lines
        ask = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "linkstack", "ask", "--scenario", str(run.scenario)),
            *("--json", "--count", "3", "--interval", "0.2", "--id", "p-any"),
            *("--max-new-tokens", "8", "--timeout", str(HANG_S), "Which satellite answers?"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        # and one to a satellite out of view, relayed over the laser links
        await publish_queries(broker.port, [query("p-relay", "Relayed?", target=target)])
        out, err = await asyncio.wait_for(ask.communicate(), HANG_S)
        assert ask.returncode == 0, err.decode()[-3000:]
        ids = ["p-any-1", "p-any-2", "p-any-3", "p-relay"]
        got = await listener.answers(ids)
        await asyncio.sleep(1.0)  # time for a second answer, if one were coming
        assert {i: len(listener.of("answer", i)) for i in ids} == dict.fromkeys(ids, 1)
    lines = [json.loads(line) for line in out.decode().splitlines()]
    timelines = {line["id"]: line["timeline"] for line in lines if "timeline" in line}
    timelines["p-relay"] = listener.of("timeline", "p-relay")[0]
    assert sorted(timelines) == ids
    for qid, t in timelines.items():
        assert got[qid]["type"] == "answer" and got[qid]["satellite"] in computing, got[qid]
        kinds = [h["kind"] for h in t["hops"]]  # the route: up, laser hops, down
        assert kinds[0] == "uplink" and kinds[-1] == "downlink", (qid, kinds)
        assert set(kinds[1:-1]) <= {"isl"}, (qid, kinds)
        assert t["hops"][0]["src"].startswith("ground:") and t["hops"][-1]["dst"].startswith(
            "ground:"
        )
    assert got["p-relay"]["satellite"] == target
    assert "isl" in [h["kind"] for h in timelines["p-relay"]["hops"]]  # relayed
    assert any("isl" not in [h["kind"] for h in t["hops"]] for t in timelines.values())

    # the status at scale: lists cut, everything counted
    status = _get(run.http_port, "/status")["ground"]
    listed = status["links"]
    assert len(listed) <= STATUS_LIST_MAX
    assert status["in_view_count"] >= sum(1 for x in listed if x.get("aos")) > 0
    if satellites > 1000:  # ~1,000 in view of the 20 stations: 24 listed, all counted
        assert len(listed) == STATUS_LIST_MAX < 500 < status["in_view_count"], status
    counters = _get(run.http_port, "/counters")
    down = counters["ground"]["downlink"]
    assert down["uslp_frames"] > 0 and not [k for k in down if k.startswith("tm_")], down

    run.stop_all(*procs.values())
    report = run.report()
    routes = {q["query_id"]: q for q in report["queries"]}
    assert sorted(routes) == ids
    assert all(routes[i]["answer_on_ground_t_s"] is not None for i in ids)
    assert [h["kind"] for h in routes["p-relay"]["hops"]] == [
        h["kind"] for h in timelines["p-relay"]["hops"]
    ]
    ready = json.loads(
        next(line for line in run.log_of(procs["channel"]).splitlines() if '"msg":"ready"' in line)
    )
    assert ready["links"] >= 2 * satellites and ready["ports"] == 1 + min(16, satellites)
