"""The planned constellation in emulated time: the shipped ``planned-2800`` (USLP, its
20 stations, queries served by inference satellites) answers every query and reports
its route, and its report groups the round trips by shell and by laser hops.

The fast test runs a part of it (each shell's first satellites, its settings, a few
queries over half an hour: a few seconds); the slow one runs all 2,800 satellites and
10,708 laser links through ``linkstack demo --scenario planned-2800`` (about a minute).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from linkstack.capture.samples import ScriptedBackend
from linkstack.runtime import clock as clk
from linkstack.runtime.emulation import Emulation
from linkstack.runtime.report import laser_hops, summarize
from linkstack.tools import demo
from linkstack.tools.bench.scale import planned_part
from payloads.messages import Params


def _routes_ok(timeline, roles) -> None:
    """A route from a station up, over laser links if any, and down to a station, to
    and from an inference satellite."""
    hops = timeline.hops
    assert hops and hops[0].kind == "uplink" and hops[0].src.startswith("ground:")
    assert hops[-1].kind == "downlink" and hops[-1].dst.startswith("ground:")
    assert roles[timeline.satellite] == "inference"
    assert {h.kind for h in hops} <= {"uplink", "isl", "downlink"}


def test_a_part_of_the_planned_constellation_answers_every_query():
    scenario, config = planned_part(150)
    config = replace(config, seed=3)
    roles = {s.name: s.role for s in scenario.satellites}
    assert config.uplink.protocol == "uslp" and len(scenario.stations) == 20

    async def main():
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=ScriptedBackend())
        async with emu:
            await clock.sleep_until(600.0)
            usable = emu.contacts.usable_passes(clock.now())
            # a named inference satellite out of view: the query goes over laser links
            far = next(
                n
                for n in config.computing
                if n not in usable and emu.contacts.uplink_route(n, clock.now()) is not None
            )
            asks = [emu.client.submit(f"q{k}", Params(max_new_tokens=6)) for k in range(3)]
            asks.append(emu.client.submit("far", Params(max_new_tokens=6), target=far))
            done = [await p.result() for p in asks]
        return far, [timeline for _, timeline in done]

    far, timelines = clk.run(main, emulated=True)
    assert len(timelines) == 4 and all(t.complete for t in timelines)
    for t in timelines:
        _routes_ok(t, roles)
    relayed = timelines[-1]
    assert relayed.satellite == far and laser_hops(relayed) >= 1
    assert any(h.kind == "isl" and h.dst == f"sat:{far}" for h in relayed.hops)
    s = summarize(timelines, shell_of=scenario.shell_of)
    assert sum(b["queries"] for b in s["by_shell"].values()) == 4
    assert set(s["by_shell"]) <= set(scenario.shells)
    assert sum(b["answered"] for b in s["by_laser_hops"].values()) == 4
    assert str(laser_hops(relayed)) in s["by_laser_hops"]


@pytest.mark.slow
def test_the_demo_runs_the_whole_planned_constellation(tmp_path):
    lines: list[str] = []
    rc = demo.run(
        scenario="planned-2800",
        queries=6,
        hours=1.0,
        out_dir=tmp_path,
        capture=False,
        backend=ScriptedBackend(),
        say=lines.append,
    )
    assert rc == 0, "\n".join(lines)
    text = "\n".join(lines)
    assert "scenario planned-2800" in text and "6/6 answered" in text
    assert "by a user at" in text
    doc = json.loads((tmp_path / "report.json").read_text())
    summary = doc["summary"]
    assert summary["all"]["answered"] == 6
    assert sum(b["queries"] for b in summary["by_shell"].values()) == 6
    assert sum(b["queries"] for b in summary["by_laser_hops"].values()) == 6
    relayed = [q for q in doc["queries"] if any(h["kind"] == "isl" for h in q["hops"])]
    assert relayed  # the demo names satellites out of view: relayed over laser links
    users = {q["user_station"] for q in doc["meta"]["queries_detail"]}
    assert len(users) == 6  # the stations' users in turn
