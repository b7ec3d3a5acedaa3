"""``linkstack packets``: joining the two ends' records of the packet bridge
(linkstack/tools/packet_timelines.py). The records are what PacketLog writes
(linkstack/daemon/packet_log.py); the daemons' own run is in
tests/daemon/test_flight_radio.py."""

from __future__ import annotations

import json

import pytest

from linkstack.ccsds.spp import PacketType, SpacePacket
from linkstack.daemon.packet_log import PacketLog
from linkstack.errors import ConfigError
from linkstack.tools.cli import main
from linkstack.tools.packet_timelines import join, read_records, summary


def _packet(seq: int, data: bytes = b"cmd") -> bytes:
    return SpacePacket(0x20, data, PacketType.TC, seq_count=seq).pack()


def _logs(tmp_path):
    ground = PacketLog("ground", tmp_path / "mcc-packets.jsonl")
    sat = PacketLog("sat", tmp_path / "sat-packets.jsonl")
    return ground, sat


def test_each_packet_is_joined_across_the_two_ends_and_its_legs_add_up(tmp_path):
    ground, sat = _logs(tmp_path)
    same = _packet(7)  # sent twice on purpose (same octets): paired in order, not merged
    for k, t0 in enumerate((10.0, 20.0)):
        ground.record(
            "up",
            "CS-01",
            same,
            received_s=t0,
            radiated_s=t0 + 1,
            acknowledged_s=t0 + 4,
            failed=False,
            frames=1,
            retransmissions=0,
        )
        sat.record("up", "CS-01", same, onboard_s=t0 + 1.5 + k)
    sat.record("down", "CS-01", _packet(1, b"tm"), from_flight_s=5.0)
    ground.record("down", "CS-01", _packet(1, b"tm"), on_ground_s=8.0, handed_out_s=8.25)
    ground.record(
        "up",
        "CS-02",
        _packet(0),
        received_s=30.0,
        radiated_s=31.0,
        acknowledged_s=None,
        failed=True,
        frames=3,
        retransmissions=2,
    )  # no record on board: it never got there
    ground.close(), sat.close()
    timelines = join(read_records(sorted(tmp_path.glob("*.jsonl"))))
    assert [(t.way, t.key["satellite"], t.start_s()) for t in timelines] == [
        ("down", "CS-01", 5.0),
        ("up", "CS-01", 10.0),
        ("up", "CS-01", 20.0),
        ("up", "CS-02", 30.0),
    ]
    down, first, second, lost = timelines
    assert down.legs_s() == {"downlink": 3.0, "handout": 0.25} and down.total_s() == 3.25
    assert first.legs_s() == {"contact_wait": 1.0, "uplink": 0.5, "acknowledgement": 2.5}
    assert second.legs_s() == {"contact_wait": 1.0, "uplink": 1.5, "acknowledgement": 1.5}
    assert (first.total_s(), second.total_s()) == (1.5, 2.5)
    assert not lost.complete() and lost.legs_s()["uplink"] is None and lost.total_s() is None
    s = summary(timelines)
    assert (s["up"]["packets"], s["up"]["complete"], s["up"]["failed"]) == (3, 2, 1)
    assert s["up"]["legs"]["uplink"]["count"] == 2 and s["up"]["total"]["p50_s"] == 2.0
    assert s["down"]["legs"]["downlink"]["p50_s"] == 3.0


def test_the_cli_prints_json_without_nan_and_refuses_what_is_not_a_record(tmp_path, capsys):
    ground, _ = _logs(tmp_path)
    ground.record("down", "CS-01", _packet(3), on_ground_s=1.0, handed_out_s=1.5)
    ground.close()
    path = tmp_path / "mcc-packets.jsonl"
    assert main(["packets", "--json", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)  # strict JSON: no NaN for the missing legs
    assert doc["packets"][0]["legs_s"] == {"downlink": None, "handout": 0.5}
    assert doc["summary"]["down"]["legs"]["downlink"]["p50_s"] is None
    assert main(["packets", "--each", str(path)]) == 0
    out = capsys.readouterr().out
    assert "down CS-01 apid 0x020 seq     3: downlink -  handout 0.500" in out
    assert "(only the ground's record)" in out
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["packets", str(empty)]) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(path.read_text() + '{"at": "sat", "way": "up"}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: not a packet record \(no satellite"):
        read_records([bad])
    bad.write_text("not json\n")
    assert main(["packets", str(bad)]) == 2
    assert "bad.jsonl:1: not JSON" in capsys.readouterr().err
