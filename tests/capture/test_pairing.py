"""``linkstack replay`` of captures it did not write: frame records that do not sit
beside their units, and running daemons on their port plan.

- Frame records written when another tool decoded the unit, 10 ms after its CLTU or
  CADU (500 ms, and 10 ms before it, too): the project's samples and the conformance
  session so re-timed replay exactly as they are, packet for packet, counter for
  counter, check for check. Before, each late frame record was decoded a second time
  (laser-relay.pcap, 10 ms late: 2,415,919,095 AOS and 3,570 TM frames "lost").
- A late frame record that differs from its unit's frame, or follows a refused unit,
  is still told; one that goes with no unit is still decoded on its own.
- ``tshark -i lo`` of the daemons (tests/capture/foreign.py puts a sample's units on
  the port plan of a scenario, each twice: into the channel and out of it):
  ``--scenario`` replays one view and gives what the sample's units give.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from linkstack.capture.pcap import PcapCapture, PcapReader
from linkstack.capture.replay_cli import ReplayResult, replay_file
from linkstack.capture.replay_link import DOWNLINK, LASER, UPLINK
from linkstack.conformance.portplan import plan_ports
from linkstack.tools import cli
from tests.capture.foreign import frames_late, laser_relay_on_plan

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "conformance" / "broken"
CAPTURES = [*sorted((ROOT / "pcaps").glob("*.pcap")), BROKEN / "good.pcap"]


def replay(path: Path, **kw: object) -> tuple[ReplayResult, str]:
    lines: list[str] = []
    result = replay_file(path, say=lines.append, **kw)  # type: ignore[arg-type]
    return result, "\n".join(lines)


def outcome(result: ReplayResult) -> dict[str, object]:
    """Everything a replay decoded and counted, but the times."""
    r = result.replayer
    return {
        "exit": result.exit_status,
        "packets": [(p.family, p.link, p.raw) for p in r.packets],
        "messages": [(m.family, m.link, m.message, m.copy) for m in r.messages],
        "counters": r.counters(),
        "checks": r.checks,
        "refused": r.refused,
        "drops": r.drops,
        "stats": r.stats,
    }


@pytest.mark.parametrize("delay_s", [0.010, -0.010, 0.5])
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_frame_records_away_from_their_units_replay_as_beside_them(path, delay_s, tmp_path):
    want, _ = replay(path)
    got, text = replay(frames_late(path, tmp_path / "late.pcap", delay_s))
    assert outcome(got) == outcome(want), text
    r = got.replayer
    for layer in ("tc_frame", "tm_frame", "aos_frame"):  # each checked against its unit
        assert r.checks[f"{layer}:equal"] == want.replayer.checks[f"{layer}:equal"]
    if path.parent.name == "pcaps":
        assert got.exit_status == 0 and not r.drops, text
        assert all(r.checks[f"{layer}:equal"] == r.units_by_layer[layer] for layer in r.checks)


def test_a_late_frame_record_that_differs_from_its_units_frame_is_told(tmp_path):
    late = frames_late(ROOT / "pcaps" / "demo-roundtrip.pcap", tmp_path / "late.pcap", 0.010)
    reader = PcapReader(late)
    units = list(reader)
    changed = next(i for i, u in enumerate(units) if u.layer == "tm_frame")
    data = bytearray(units[changed].data)
    data[-5] ^= 0xFF
    units[changed] = units[changed]._replace(data=bytes(data))
    with PcapCapture(tmp_path / "changed.pcap", reader.epoch) as cap:
        for u in units:
            cap.unit(*u)
    result, text = replay(tmp_path / "changed.pcap")
    r = result.replayer
    assert result.exit_status == 1
    assert r.checks["tm_frame:different"] == 1
    assert r.checks["tm_frame:equal"] == r.units_by_layer["tm_frame"] - 1
    assert "differs from the frame decoded from its unit" in text
    assert not r.drops  # and it is not decoded a second time


@pytest.mark.parametrize("delay_s", [0.0, 0.010, -0.010])
def test_a_frame_record_after_a_refused_unit_or_alone_is_told(delay_s, tmp_path):
    # a CADU beyond Reed-Solomon's reach, its frame record beside it (or 10 ms away)
    path = frames_late(BROKEN / "rs_uncorrectable.pcap", tmp_path / "rs.pcap", delay_s)
    result, text = replay(path)
    r = result.replayer
    assert r.refused == Counter({"tm_cadu: reed_solomon": 1}), text
    assert r.checks["tm_frame:unit_refused"] == 1 and r.checks["tm_frame:equal"] == 1
    # a TM frame on the frame port only (no CADU can hold it): decoded on its own
    path = frames_late(BROKEN / "tm_frame_short.pcap", tmp_path / "short.pcap", delay_s)
    result, text = replay(path)
    r = result.replayer
    assert r.refused == Counter({"tm: frame_length": 1}), text
    assert r.checks["tm_frame:equal"] == 2 and sum(r.checks.values()) == 2


# -- the daemons' port plan -------------------------------------------------------------------


@pytest.fixture(scope="module")
def on_plan(tmp_path_factory) -> tuple[Path, Path, Path]:
    return laser_relay_on_plan(tmp_path_factory.mktemp("plan"))


@pytest.mark.parametrize("view", ["sent", "delivered"])
def test_the_port_plan_replays_each_link_as_its_units_do(on_plan, view):
    pcapng, scenario, units = on_plan
    plan = plan_ports(scenario)
    got, text = replay(pcapng, links=plan.ports, view=view, ports_text=plan.text)
    want, _ = replay(units)
    assert got.exit_status == 0, text
    g, w = got.replayer, want.replayer
    assert {p.family for p in g.packets} == {UPLINK, DOWNLINK, LASER}
    # the same packets link by link (the ground's end is the ground segment, not a station)
    assert Counter((p.family, p.link[-1], p.raw) for p in g.packets) == Counter(
        (p.family, p.link[-1], p.raw) for p in w.packets
    )
    assert [m.message for m in g.messages] == [m.message for m in w.messages]
    assert g.stats["units"] == w.stats["units"] == got.read_stats["other_view"]
    assert "(pcapng; " in text and "node names from the port plan" in text
    assert f"view {view}" in text and "ground:mcc -> sat:CS-06" in text


def test_the_port_plan_through_the_command_line(on_plan, capsys):
    pcapng, scenario, _ = on_plan
    assert cli.main(["replay", str(pcapng)]) == 1  # nothing on the layer ports
    out = capsys.readouterr().out
    assert "nothing decoded" in out and "UDP on other ports" in out
    assert cli.main(["replay", str(pcapng), "--scenario", str(scenario)]) == 0
    out = capsys.readouterr().out
    assert "every unit decoded, every check passed" in out
    assert "units of the other view (--view)" in out
    with pytest.raises(SystemExit):
        cli.main(["replay", str(pcapng), "--scenario", str(scenario), "--view", "x"])
    assert "invalid choice" in capsys.readouterr().err
    assert cli.main(["replay", str(pcapng), "--scenario", str(scenario.parent / "no.toml")]) == 2
    assert "no.toml" in capsys.readouterr().err
