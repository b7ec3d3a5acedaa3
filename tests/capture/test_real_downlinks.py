"""Issue 20: real spacecraft downlinks replayed and judged by their mission profiles.

The recordings (Meteor-M2 LRPT CADUs, Mars 2020 AOS frames; provenance and licence in
``../shared/realdata/SOURCES.md``) are read in place beside the checkout, never copied
into the project; without them these tests skip and say why. Every count
``linkstack replay --profile`` reports is checked against the project's own classes
configured by hand here, and ``conform`` must find exactly the missions' known
departures from CCSDS.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from linkstack.capture.mission_cli import run
from linkstack.capture.mission_detect import detect_file
from linkstack.capture.mission_replay import MissionReplay
from linkstack.capture.raw_units import raw_units
from linkstack.ccsds.aos import AosConfig, AosReceiver
from linkstack.ccsds.coding.chains import CaduCoding, CaduReceiver
from linkstack.ccsds.spp import SpacePacket
from linkstack.conformance.passive.checker import check_capture
from linkstack.runtime.mission_profile import load_profile
from linkstack.tools import cli
from tests.capture.test_replay import _answer, _tm_units

ROOT = Path(__file__).resolve().parents[2]
REALDATA = ROOT.parent / "shared" / "realdata"
METEOR, MARS = REALDATA / "meteor_m2.cadu", REALDATA / "mars2020_frames.u8"


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"the real recording {path} is absent (CI has ../shared/realdata)")
    return path


def _by_hand(frames: list[bytes], config: AosConfig, shared: bool) -> dict:
    """Frames through an AosReceiver, the VC and sequence gaps counted here."""
    rx = AosReceiver(config, check_scid=False)
    apids: Counter[int] = Counter()
    vc_lost = seq_gaps = 0
    last_count = None
    last_seq: dict[object, int] = {}
    for frame in frames:
        got = rx.receive(frame)
        if got is None:
            continue
        if last_count is not None and got.vc_count != last_count + 1:
            vc_lost += got.vc_count - last_count - 1
        last_count = got.vc_count
        for raw in got.packets:
            pk = SpacePacket.unpack(raw)
            apids[pk.apid] += 1
            key = "shared" if shared else pk.apid
            if key in last_seq and (last_seq[key] + 1) % 16384 != pk.seq_count:
                seq_gaps += 1
            last_seq[key] = pk.seq_count
    return {"apids": apids, "vc_lost": vc_lost, "seq_gaps": seq_gaps, "stats": rx.all_stats()}


def _replay_json(*args: str, capsys: pytest.CaptureFixture[str]) -> dict:
    """``linkstack replay ... --json`` through the command line's main, in this process."""
    assert cli.main(["replay", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_meteor_replayed_by_the_command_line_as_by_hand(tmp_path, capsys):
    """The whole recording through the command line's main in this process; one real
    process on a slice of it (40 CADUs) must print what main prints for that slice."""
    path = _need(METEOR)
    doc = _replay_json("--profile", "meteor-m2-lrpt", str(path), capsys=capsys)
    part = _write(tmp_path / "part.cadu", path.read_bytes()[: 40 * 1024])
    command = ["replay", "--profile", "meteor-m2-lrpt", str(part), "--json"]
    out = subprocess.run(
        [sys.executable, "-m", "linkstack", *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    in_process = _replay_json("--profile", "meteor-m2-lrpt", str(part), capsys=capsys)
    assert json.loads(out.stdout) == in_process and in_process["cadu"]["frames"] == 40
    data = path.read_bytes()
    rx = CaduReceiver(892, CaduCoding(rs_e=16, rs_depth=4, dual_basis=False, randomize=False))
    frames = [
        g.frame for i in range(0, len(data), 1024) if (g := rx.receive_cadu(data[i : i + 1024]))
    ]
    assert len(frames) == 886  # every CADU decoded
    hand = _by_hand(frames, AosConfig(892, insert_zone_len=2, fecf=False, count_cycle=False), True)
    assert doc["cadu"]["cadus"] == doc["cadu"]["frames"] == 886
    assert doc["cadu"]["rs_codewords"] == 886 * 4 and not doc["cadu"].get("rs_uncorrectable")
    assert doc["frames"]["frames"] == 886
    assert doc["virtual_channels"]["5"]["lost"] == hand["vc_lost"] == 2
    assert {int(k): v["packets"] for k, v in doc["apids"].items()} == dict(hand["apids"])
    assert sum(hand["apids"].values()) == 3464
    assert doc["sequence_gaps"] == hand["seq_gaps"] == 1
    assert doc["linkstack_messages"] == {}


def test_mars2020_replayed_as_by_hand(tmp_path):
    path = _need(MARS)
    lines: list[str] = []
    status = run(path, "mars2020", export=tmp_path / "out", say=lines.append)
    assert status == 1  # 4 frames whose FECF does not check, said so
    data = path.read_bytes()
    frames = [data[i : i + 1115] for i in range(0, len(data), 1115)]
    hand = _by_hand(frames, AosConfig(1115, fecf=True, count_cycle=False), False)
    text = "\n".join(lines)
    assert hand["stats"]["frames"] == 946 and hand["stats"]["bad_fecf"] == 4
    assert "frames 946" in text and "bad_fecf 4" in text
    assert f"{hand['vc_lost']} frames missing" in text and hand["vc_lost"] == 17
    for apid, n in hand["apids"].items():
        assert f"APID {apid:#05x} {n:,} packets" in text
    assert f"gaps {hand['seq_gaps']}, " in text
    # the export: per APID the packets back to back, and an index into them
    bin9 = (tmp_path / "out" / "apid_0x009.bin").read_bytes()
    index = (tmp_path / "out" / "apid_0x009.csv").read_text().splitlines()
    assert len(index) - 1 == hand["apids"][9]
    _, offset, length, *_ = index[2].split(",")
    assert SpacePacket.unpack(bin9[int(offset) : int(offset) + int(length)]).apid == 9


@pytest.mark.parametrize(
    ("path", "profile", "departures"),
    [
        # one counter shared by the APIDs, no "last segment" flag; two frames lost
        (METEOR, "meteor-m2-lrpt", {"SPP-SEQ-02", "SPP-SEG-01", "AOS-VC-01"}),
        # idle packets with the secondary header flag; frames lost, 4 with a bad FECF
        (MARS, "mars2020", {"SPP-IDLE-02", "AOS-VC-01", "AOS-FECF-01"}),
    ],
    ids=["meteor", "mars2020"],
)
def test_conform_finds_the_missions_departures_and_no_more(path, profile, departures):
    report = check_capture(_need(path), profile)
    failed = {r.rule.id for r in report.results if r.status == "fail"}
    assert failed == departures
    passed = {r.rule.id for r in report.results if r.status == "pass"}
    # none on the frames after a lost frame: the FHP is followed as a receiver does
    assert {"AOS-FHP-01", "SPP-SEQ-01", "RS-01"} & passed >= {"AOS-FHP-01", "SPP-SEQ-01"}
    for r in report.results:
        if r.status == "fail":
            assert r.rule.standard.startswith("CCSDS ") and r.rule.section.startswith("§")


@pytest.mark.parametrize(("path", "name"), [(METEOR, "meteor-m2-lrpt"), (MARS, "mars2020")])
def test_detect_finds_the_shipped_profile(path, name, tmp_path):
    toml = tmp_path / "found.toml"
    toml.write_text(detect_file(_need(path)).toml())
    found, shipped = load_profile(toml), load_profile(name)
    assert found.mission.raw_unit == shipped.mission.raw_unit
    assert found.mission.downlink == shipped.mission.downlink == "aos"
    assert found.mission.packet_counter == shipped.mission.packet_counter
    keys = ("frame_length", "insert_zone_len", "fecf", "rs_e", "dual_basis", "randomize")
    assert [getattr(found.aos, k) for k in keys] == [getattr(shipped.aos, k) for k in keys]
    if shipped.aos.rs_e:
        assert found.aos.rs_depth == shipped.aos.rs_depth


def test_a_bit_stream_shifted_and_inverted_is_synchronized(tmp_path):
    """The first 40 CADUs as a demodulator might give them: 5 bits late and inverted."""
    data = _need(METEOR).read_bytes()[: 40 * 1024]
    bits = 8 * len(data) + 8
    value = (int.from_bytes(data, "big") << 3) ^ ((1 << bits) - 1)
    stream = value.to_bytes(bits // 8, "big")
    toml = tmp_path / "stream.toml"
    toml.write_text('extends = "meteor-m2-lrpt"\n[mission]\nraw_unit = "stream"\n')
    replay = MissionReplay(load_profile(toml))
    for unit in raw_units(stream, replay.profile):
        replay.feed(unit)
    replay.finish()
    assert replay.counts.cadu["frames"] >= 39 and not replay.counts.cadu.get("rs_uncorrectable")
    assert detect_file(_write(tmp_path / "s.bin", stream)).raw_unit == "stream"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_another_missions_packets_on_linkstacks_apids_are_not_its_messages(tmp_path):
    """A raw file of TM CADUs with a linkstack answer on APID 0x101: read as a message
    under linkstack's profile, and as another mission's packet under a foreign one."""
    raw = _write(tmp_path / "tm.cadu", b"".join(_tm_units([_answer(1), _answer(2)])))
    own = tmp_path / "own.toml"
    own.write_text('extends = "linkstack"\n[tm]\nscids = []\n')
    foreign = tmp_path / "foreign.toml"
    foreign.write_text('extends = "linkstack"\n[mission]\nlinkstack_apids = []\n')
    counts = {}
    for name, spec in (("own", own), ("foreign", foreign)):
        replay = MissionReplay(load_profile(spec))
        for unit in raw_units(raw.read_bytes(), replay.profile):
            replay.feed(unit)
        replay.finish()
        counts[name] = replay.counts
    assert counts["own"].messages == {"Answer": 2}
    assert counts["foreign"].messages == {}
    assert counts["foreign"].apids[0x101].packets == counts["own"].apids[0x101].packets > 0
