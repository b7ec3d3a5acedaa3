"""The sample captures of ``pcaps/``: made again byte for byte, decoded by the real
tshark with the Lua dissector, and replayed.

If a change to the emulator changes what the scenes send, the first test fails and
says so: look at the difference (``linkstack replay`` on the old and new files),
and if it is right, regenerate them with ``make pcaps`` and commit them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from channels.scenarios import EPOCH
from linkstack.capture import samples
from linkstack.capture.network import protocol_ports
from linkstack.capture.pcap import PORTS, read_units
from linkstack.capture.replay_cli import replay_file
from linkstack.capture.replay_link import DOWNLINK, LASER, UPLINK
from payloads.backends import GenerationParams
from payloads.messages import Ack, Answer, Query

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
LUA = ROOT / "wireshark" / "linkstack.lua"
NAMES = [s.name for s in samples.SAMPLES]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    samples.generate(out, say=lambda line: None)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_samples_regenerate_byte_identical(regenerated, name):
    for filename in (f"{name}.pcap", f"{name}.pcap.nodes.json"):
        new, old = (regenerated / filename).read_bytes(), (PCAPS / filename).read_bytes()
        assert new == old, (
            f"pcaps/{filename} is no longer what `linkstack capture-samples` makes: if the "
            "change is meant, regenerate the samples (make pcaps) and commit them"
        )


def test_samples_are_small_dated_by_emulated_time_and_documented():
    readme = (PCAPS / "README.md").read_text()
    assert "linkstack capture-samples" in readme and "make pcaps" in readme
    expected = {"README.md"}
    epoch_s = int(EPOCH.timestamp())
    for sample in samples.SAMPLES:
        path = PCAPS / sample.filename
        expected |= {sample.filename, sample.filename + ".nodes.json"}
        assert path.stat().st_size < 200_000
        assert f"`{sample.filename}`" in readme
        side = json.loads((PCAPS / (sample.filename + ".nodes.json")).read_text())
        assert side["epoch"] == EPOCH.isoformat()
        assert side.get("frames", "tm-tc-aos") == sample.frames
        assert side["ports"] == protocol_ports(sample.frames)
        assert side["ports"].items() <= PORTS.items()
        data = path.read_bytes()
        pos = 24
        while pos < len(data):  # every time stamp: the epoch plus the scene's emulated time
            sec, frac, incl = struct.unpack_from("<III", data, pos)
            t_s = sec - epoch_s + frac / 1e6
            assert sample.start_t_s <= t_s <= sample.stop_t_s
            pos += 16 + incl
    assert {p.name for p in PCAPS.iterdir()} == expected


def test_the_command_writes_a_sample(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    samples.add_samples_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["capture-samples", "--out", str(tmp_path), "--only", "laser-relay"])
    assert args.func(args) == 0
    assert "laser-relay.pcap" in capsys.readouterr().out
    assert (tmp_path / "laser-relay.pcap").read_bytes() == (PCAPS / "laser-relay.pcap").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "laser-relay.pcap",
        "laser-relay.pcap.nodes.json",
    ]
    with pytest.raises(SystemExit):
        parser.parse_args(["capture-samples", "--only", "nope"])


def test_the_scripted_backend_is_the_same_every_time():
    backend = samples.ScriptedBackend({"q": "one two three"})
    a = backend.generate("q", GenerationParams(max_new_tokens=2))
    b = backend.generate("q", GenerationParams(max_new_tokens=2))
    assert a == b and a.text == "one two" and a.finish_reason == "length"
    pieces: list[str] = []
    full = backend.generate("q", GenerationParams(), pieces.append)
    assert "".join(pieces) == full.text == "one two three" and full.finish_reason == "stop"


# -- replayed ------------------------------------------------------------------------------------


def _replay(name: str, **kw):
    lines: list[str] = []
    result = replay_file(PCAPS / f"{name}.pcap", say=lines.append, **kw)
    assert result.exit_status == 0, "\n".join(lines)
    return result.replayer, "\n".join(lines)


def test_replay_of_the_round_trip():
    r, text = _replay("demo-roundtrip")
    kinds = Counter((m.family, type(m.message).__name__) for m in r.messages)
    assert kinds == {(UPLINK, "Query"): 2, (UPLINK, "Ack"): 2, (DOWNLINK, "Answer"): 2}
    answers = [m.message for m in r.messages if isinstance(m.message, Answer)]
    assert answers[0].text.startswith("About 94.6 minutes") and answers[0].satellite == "CS-06"
    assert "CLCW VC 0: N(R) 4" in text and not r.refused and not r.drops


def test_replay_of_the_lossy_pass_shows_cop1_at_work():
    r, text = _replay("lossy-cop1")
    farm = r.counters()[UPLINK]["farm-1"]
    assert farm["E1"] == 5 and farm["E4"] == 3  # five frames, three repeats discarded
    assert "CLCW VC 0: N(R) 2 [retransmit]" in text
    assert text.count("TC AD frame N(S) 3 ") == 3
    queries = [m.message for m in r.messages if isinstance(m.message, Query)]
    assert len(queries) == 1 and len(queries[0].prompt) > 3000  # delivered once, whole


def test_replay_of_the_laser_relay_unwraps_the_envelopes():
    r, text = _replay("laser-relay")
    laser = [m for m in r.messages if m.family == LASER]
    assert {(m.src, m.dst) for m in laser} >= {
        ("sat:CS-06", "sat:CS-07"),
        ("sat:CS-09", "sat:CS-08"),
    }
    relayed = [m for m in laser if m.relay is not None]
    assert {m.relay.dst for m in relayed} == {9, 0} and all(m.apid == 0x102 for m in relayed)
    last_hop = [m for m in laser if m.dst == "sat:CS-09"]
    assert all(m.relay is None and m.apid == 0x100 for m in last_hop)
    assert {type(m.message) for m in last_hop} == {Query, Ack}
    answer = next(m.message for m in r.messages if m.family == DOWNLINK)
    assert isinstance(answer, Answer) and answer.satellite == "CS-09"
    assert "relay ground -> node 9 (hop limit 16): query" in text


# -- tshark and the Lua dissector ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tshark(tmp_path_factory):
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail(
            "tshark is not installed, and these checks run it: `sudo apt-get install tshark` "
            "(make test installs it when run as root)",
            pytrace=False,
        )
    home = tmp_path_factory.mktemp("home")  # no user plugins or preferences
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))

    def run(name: str, *fields: str, display: str = "") -> list[list[str]]:
        args = [exe, "-r", str(PCAPS / f"{name}.pcap"), "-X", f"lua_script:{LUA}"]
        args += ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
        if display:
            args += ["-Y", display]
        for f in fields:
            args += ["-e", f]
        proc = subprocess.run(
            args, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert "Lua" not in proc.stderr or "Error" not in proc.stderr, proc.stderr
        return [line.split("\t") for line in proc.stdout.splitlines()]

    return run


def test_tshark_shows_the_repeated_n_s_of_the_lossy_pass(tshark):
    rows = tshark(
        "lossy-cop1",
        "linkstack.tc.ns",
        "linkstack.tc.in_sequence",
        "linkstack.tc.fecf.status",
        display="udp.port == 47011",
    )
    ns = [int(r[0]) for r in rows]
    assert ns == [0, 1, 2, 3, 2, 3, 3, 4]
    assert [r[1] for r in rows] == ["1", "1", "1", "1", "0", "0", "0", "1"]
    assert {r[2] for r in rows} == {"1"}  # every FECF good
    clcws = tshark(
        "lossy-cop1",
        "linkstack.clcw.report_value",
        "linkstack.clcw.retransmit",
        display="udp.port == 47012",
    )
    assert ["2", "1"] in clcws  # N(R) 2 with the retransmit flag: the gap FARM-1 found


def test_tshark_shows_the_aos_frames_of_the_laser_relay(tshark):
    rows = tshark(
        "laser-relay",
        "ip.src",
        "ip.dst",
        "linkstack.aos.scid",
        "ccsds.apid",
        display="udp.port == 47013",
    )
    assert len(rows) == len(
        [u for u in read_units(PCAPS / "laser-relay.pcap") if u.layer == "aos_frame"]
    )
    assert {r[2] for r in rows} == {"69", "70", "71", "72"}  # CS-06 .. CS-09 send
    apids = {a for r in rows for a in r[3].split("|")}
    assert {"256", "258"} <= apids  # bare on the last hop, enveloped before


def test_tshark_shows_the_round_trip(tshark):
    rows = tshark("demo-roundtrip", "ccsds.apid", display="udp.port == 47020")
    assert [r[0] for r in rows] == ["256", "257", "256", "256", "257", "256"]
    cadus = tshark("demo-roundtrip", "linkstack.clcw.report_value", display="udp.port == 47002")
    values = [int(r[0]) for r in cadus]
    assert values == sorted(values) and values[-1] == 4  # N(R) climbs as frames are accepted
