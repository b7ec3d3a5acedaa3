"""``linkstack replay``: captures fed back into the receive chains.

- A short run of the emulator (tiny Qwen3, in-process) is captured; replaying the
  capture decodes, from the CLTUs and CADUs through the real receivers, exactly
  the Space Packets each receiver of the run got, link by link, in order, and the
  messages the ground got; the capture's frame and space_packet layers agree.
- Foreign captures: other ports, other CCSDS codings, IPv6, pcapng, truncated and
  random units, damaged records, a file that is no pcap: decoded where possible,
  refused with the layer, field and rule where not, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import struct
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap, wrpcapng

from channels.scenarios import scenario_by_name
from linkstack.capture import replay_cli, replay_link
from linkstack.capture.pcap import LAYERS, PORTS, CapturedUnit, PcapCapture, read_units
from linkstack.capture.replay import Replayer
from linkstack.capture.replay_cli import CaptureFileError, replay_file
from linkstack.capture.replay_link import DOWNLINK, LASER, UPLINK
from linkstack.ccsds.aos import AosConfig, AosMasterChannel
from linkstack.ccsds.coding.chains import CaduCoding, CaduTransmitter, CltuCoding, CltuTransmitter
from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.spp import PacketType, SequenceCounter, segment
from linkstack.ccsds.tc import TcConfig, TcVirtualChannel
from linkstack.ccsds.tm import TmConfig, TmMasterChannel
from linkstack.runtime import clock as clk
from linkstack.runtime.emulation import Emulation, EmulationConfig
from linkstack.runtime.security import SdlsSettings
from linkstack.runtime.uplink_config import UplinkConfig
from payloads.backends import make_backend
from payloads.messages import ANSWER_APID, QUERY_APID, Answer, Params, Query, decode, encode

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "pcaps"
EPOCH = datetime(2025, 6, 1, tzinfo=UTC)


SDLS_OFF = SdlsSettings(enabled=False)


def run_replay(path, **kw) -> tuple[replay_cli.ReplayResult, list[str]]:
    lines: list[str] = []
    result = replay_file(path, say=lines.append, **kw)
    return result, lines


# -- a run of the emulator, captured, then replayed --------------------------------------------


@pytest.fixture(scope="module")
def captured_run(tmp_path_factory):
    """A direct query and one relayed to CS-09 over three laser hops; what each receiver
    of the run delivered, per link, and the capture."""
    backend = make_backend("tiny")
    backend.load()
    path = tmp_path_factory.mktemp("run") / "run.pcap"
    delivered: dict[tuple, list[bytes]] = defaultdict(list)
    ground_messages: list[bytes] = []

    async def main():
        scenario = scenario_by_name("default")
        clock = clk.make_clock(True, scenario.epoch, 5295.0)
        capture = PcapCapture(path, scenario.epoch)
        # a clear run (SDLS's own replay: tests/capture/test_sdls_replay.py)
        config = EmulationConfig(scenario=scenario, uplink=UplinkConfig(sdls=SDLS_OFF))
        emu = Emulation(clock, config, backend=backend, capture=capture)
        for node in emu.satellites.values():  # what each satellite's receivers deliver

            def on_packet(ingress, t_s, raw, node=node):
                if ingress == "up":
                    delivered[(UPLINK, (node.node,))].append(bytes(raw))
                else:
                    delivered[(LASER, (f"sat:{ingress}", node.node))].append(bytes(raw))

            node.packet_listeners.append(on_packet)
        for name, channel in emu.mcc.channels.items():  # and the ground's, per satellite

            def on_down(t_s, raw, name=name, orig=channel.on_packet):
                delivered[(DOWNLINK, (f"sat:{name}",))].append(bytes(raw))
                return orig(t_s, raw)

            channel.on_packet = on_down
        deliver = emu.mcc.deliver

        def to_client(message, t_s, sat):
            ground_messages.append(bytes(message))
            return deliver(message, t_s, sat)

        emu.mcc.deliver = to_client
        async with emu:

            async def ask(t, target, prompt):
                await clock.sleep_until(t)
                return await emu.client.ask(prompt, Params(max_new_tokens=12), target=target)

            answers = await asyncio.gather(
                ask(5300.0, None, "What is the period at 500 km?"),
                ask(5310.0, "CS-09", "Is a ship in tile 12?"),
            )
            await clock.sleep_until(5325.0)
        capture.close()
        return [a for a, _ in answers]

    answers = clk.run(main)
    return path, delivered, ground_messages, answers


def test_replaying_a_run_decodes_what_every_receiver_of_the_run_delivered(captured_run):
    path, delivered, ground_messages, answers = captured_run
    result, lines = run_replay(path)
    r = result.replayer
    assert result.exit_status == 0, "\n".join(lines)
    decoded: dict[tuple, list[bytes]] = defaultdict(list)
    for p in r.packets:
        decoded[(p.family, p.link)].append(p.raw)
    assert {k[0] for k in delivered} == {UPLINK, DOWNLINK, LASER}
    assert decoded == delivered  # the same packets on every link, in the same order
    # the messages the ground received, one for one
    down = [m.message for m in r.messages if m.family == DOWNLINK]
    assert down == [decode(m) for m in ground_messages]
    replayed = [m for m in down if isinstance(m, Answer) and m.id in {a.id for a in answers}]
    assert [m.text for m in replayed[:2]] == [a.text for a in answers]
    # the capture's upper layers agree with what was decoded from the units
    checks = r.checks
    assert checks["space_packet:equal"] == checks["space_packet:recorded"] == len(r.packets)
    for layer in ("tc_frame", "tm_frame", "aos_frame"):
        assert checks[f"{layer}:equal"] == r.units_by_layer[layer] > 0
    assert not r.refused and not r.drops
    assert "result    every unit decoded, every check passed" in lines


def _rewrite(src: Path, dst: Path, keep=lambda u: True, change=lambda u: u) -> Path:
    """A copy of a linkstack capture with some units dropped or changed."""
    units = list(read_units(src))
    with PcapCapture(dst, datetime(1970, 1, 1, tzinfo=UTC)) as cap:
        for u in units:
            if keep(u):
                cap.unit(*change(u))
    return dst


def test_frames_alone_or_packets_alone_give_the_same_packets(captured_run, tmp_path):
    path = captured_run[0]
    full = run_replay(path)[0].replayer
    want = Counter((p.family, p.link, p.raw) for p in full.packets)
    frames = _rewrite(path, tmp_path / "frames.pcap", lambda u: u.layer.endswith("_frame"))
    packets = _rewrite(path, tmp_path / "spp.pcap", lambda u: u.layer == "space_packet")
    for copy, source in ((frames, "tc_frame"), (packets, "space_packet")):
        result, lines = run_replay(copy)
        r = result.replayer
        assert r.sources[UPLINK] == source
        assert result.exit_status == 0, "\n".join(lines)
        got = Counter((p.family, p.link, p.raw) for p in r.packets)
        if source == "space_packet":  # the uplink packets are keyed by receiver only
            assert sorted(p.raw for p in r.packets) == sorted(p.raw for p in full.packets)
        else:
            assert got == want


def test_a_changed_frame_or_packet_layer_fails_the_check(captured_run, tmp_path):
    path = captured_run[0]
    done = {"tm_frame": False, "space_packet": False}

    def change(u: CapturedUnit) -> CapturedUnit:
        if u.layer in done and not done[u.layer] and len(u.data) > 20:
            done[u.layer] = True
            data = bytearray(u.data)
            data[-5] ^= 0xFF
            return u._replace(data=bytes(data))
        return u

    result, lines = run_replay(_rewrite(path, tmp_path / "t.pcap", change=change))
    assert result.exit_status == 1
    text = "\n".join(lines)
    assert "differs from the frame decoded from its unit" in text
    assert "differ from the capture's space_packet units" in text
    assert "tm_frame" in text and "DIFFERENT" in text


# -- the samples, sides, pacing -------------------------------------------------------------------


def test_as_ground_and_as_sat_split_the_directions():
    sample = SAMPLES / "laser-relay.pcap"
    both = run_replay(sample)[0].replayer
    ground, lines_g = run_replay(sample, side="ground")
    sat, lines_s = run_replay(sample, side="sat")
    assert {p.family for p in ground.replayer.packets} == {DOWNLINK}
    assert {p.family for p in sat.replayer.packets} == {UPLINK, LASER}
    assert sorted(p.raw for p in both.packets) == sorted(
        p.raw for p in ground.replayer.packets + sat.replayer.packets
    )
    assert all("  ground  " in ln for ln in lines_g if ln.startswith(" " * 3 + "53"))
    assert "units for the other side (--as)" in "\n".join(lines_s)


def _tm_units(messages: list[bytes], scid: int = 42, coding=None, frame_length=1115):
    """TM CADUs (with the CLCW) carrying ``messages`` on ANSWER_APID, each message
    ending its frame."""
    mc = TmMasterChannel(TmConfig(frame_length=frame_length, scid=scid, ocf=True))
    mc.ocf = Clcw(0, 0).pack()
    tx = CaduTransmitter(frame_length, coding)
    counter = SequenceCounter()
    for m in messages:
        for p in segment(m, ANSWER_APID, counter, 4096):
            mc.push(0, p.pack())
        mc.flush()
    return [tx.cadu(f) for f in mc.drain()]


def _tc_units(messages: list[bytes], randomize: bool = True, first_seq: int = 0):
    vc = TcVirtualChannel(TcConfig(scid=42), 0)
    vc.next_seq = first_seq
    tx = CltuTransmitter(CltuCoding(randomize=randomize))
    counter = SequenceCounter()
    frames = []
    for m in messages:
        packets = [p.pack() for p in segment(m, QUERY_APID, counter, 4096, PacketType.TC)]
        frames += vc.frames(packets)
    return [tx.cltu(f.pack()) for f in frames]


def _answer(k: int) -> bytes:
    return encode(Answer(f"a{k}", f"answer number {k}", 5, 3, "stop", "ext", "m", False, "X"))


def _query(k: int) -> bytes:
    return encode(Query(f"q{k}", f"question number {k} " + "x" * (k * 300)))


def _write(path: Path, datagrams, t0: float = 1_700_000_000.0, step: float = 0.01, ng=False):
    """A pcap (or pcapng) of UDP datagrams: (payload, port[, ip version]) each."""
    pkts = []
    for i, d in enumerate(datagrams):
        data, port = d[0], d[1]
        ip = (
            IPv6(src="fd00::1", dst="fd00::2")
            if len(d) > 2 and d[2] == 6
            else IP(src="192.0.2.1", dst="192.0.2.2")
        )
        pkt = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / ip
            / UDP(sport=port, dport=port)
        )
        pkt = pkt / Raw(data)
        pkt.time = t0 + i * step
        pkts.append(pkt)
    (wrpcapng if ng else wrpcap)(str(path), pkts)
    return path


def test_realtime_replays_the_same_as_fast(tmp_path):
    path = _write(tmp_path / "rt.pcap", [(u, 47002) for u in _tm_units([_answer(1)])])
    fast = run_replay(path)[0].replayer
    real, lines = run_replay(path, realtime=True)
    assert "wall-clock time (--realtime)" in lines[1]
    assert [m.message for m in real.replayer.messages] == [m.message for m in fast.messages]
    assert [m.message.id for m in fast.messages] == ["a1"]


# -- foreign captures ------------------------------------------------------------------------------


def test_units_on_other_ports_need_port_options(tmp_path):
    units = _tm_units([_answer(1), _answer(2)])
    path = _write(tmp_path / "p.pcap", [(u, 5000) for u in units] + [(b"dns?", 53)])
    result, lines = run_replay(path)
    assert result.replayer.stats["units"] == 0 and result.exit_status == 1
    text = "\n".join(lines)
    assert f"UDP on other ports (see --port LAYER=PORT) {len(units) + 1}" in text
    assert "no unit of a known layer" in text
    result, lines = run_replay(path, ports={"tm_cadu": 5000})
    assert [m.message.id for m in result.replayer.messages] == ["a1", "a2"]
    assert result.exit_status == 0, "\n".join(lines)
    assert "no side file: addresses" in lines[0] and "192.0.2.1 -> 192.0.2.2" in "\n".join(lines)


def test_other_ccsds_codings_are_found_from_the_first_units(tmp_path):
    rs239 = CaduCoding(rs_e=8, rs_depth=1, randomize=False)
    tm = _tm_units([_answer(k) for k in range(3)], coding=rs239, frame_length=239)
    tc = _tc_units([_query(k) for k in range(3)], randomize=False)
    mc = AosMasterChannel(AosConfig(frame_length=400, scid=7, count_cycle=False))
    counter = SequenceCounter()
    for k in range(2):
        for p in segment(_answer(10 + k), ANSWER_APID, counter, 4096):
            mc.push(0, p.pack())
    mc.flush()
    aos = mc.drain()
    datagrams = [(u, 47002) for u in tm] + [(u, 47001) for u in tc] + [(f, 47013) for f in aos]
    result, lines = run_replay(_write(tmp_path / "c.pcap", datagrams))
    text = "\n".join(lines)
    assert result.exit_status == 0, text
    ids = Counter(m.message.id for m in result.replayer.messages)
    assert ids == Counter(["a0", "a1", "a2", "q0", "q1", "q2", "a10", "a11"])
    assert "tm_cadus of this link: RS(255,239) x 1, not randomized, 239-octet frames" in text


def test_ipv6_and_pcapng_read_like_ipv4_pcap(tmp_path):
    units = [(u, 47002, 6) for u in _tm_units([_answer(1)])]
    units += [(u, 47001) for u in _tc_units([_query(1)])]
    want = None
    for name, ng in (("a.pcap", False), ("a.pcapng", True)):
        result, lines = run_replay(_write(tmp_path / name, units, ng=ng))
        assert result.exit_status == 0, "\n".join(lines)
        got = [(m.family, m.message) for m in result.replayer.messages]
        assert len(got) == 2
        want = want or got
        assert got == want
    assert "(pcapng; " in lines[0]
    # a pcapng cut inside its last block: what came before is replayed, then it stops
    path = tmp_path / "a.pcapng"
    path.write_bytes(path.read_bytes()[:-50])
    result, lines = run_replay(path)
    assert [m.family for m in result.replayer.messages] == [DOWNLINK]
    assert "pcapng: block_length" in "\n".join(lines) and "reading stops here" in "\n".join(lines)
    assert result.exit_status == 1
    path.write_bytes(b"\n\r\r\n" + bytes(40))  # a section header and nothing sane
    with pytest.raises(CaptureFileError, match="pcapng"):
        run_replay(path)


def test_a_capture_that_starts_mid_session(tmp_path):
    cltus = _tc_units([_query(k) for k in range(3)], first_seq=250)  # N(S) 250.. wraps
    result, lines = run_replay(_write(tmp_path / "mid.pcap", [(u, 47001) for u in cltus]))
    text = "\n".join(lines)
    assert "starts at V(R) 250" in text
    assert [m.message.id for m in result.replayer.messages] == ["q0", "q1", "q2"]
    assert result.exit_status == 0, text


def test_reed_solomon_corrections_are_said(tmp_path):
    (cadu,) = _tm_units([_answer(1)])
    hit = bytearray(cadu)
    for i in range(100, 400, 30):
        hit[i] ^= 0x5A
    result, lines = run_replay(_write(tmp_path / "rs.pcap", [(bytes(hit), 47002)]))
    assert "Reed-Solomon corrected 10 symbol(s)" in "\n".join(lines)
    assert [m.message.id for m in result.replayer.messages] == ["a1"]


def test_truncated_and_random_units_are_refused_with_their_reasons(tmp_path):
    rng = random.Random(5)
    good_tm = _tm_units([_answer(k) for k in range(4)])
    good_tc = _tc_units([_query(1)])
    datagrams = [
        (good_tm[0], 47002),
        (good_tm[1][:600], 47002),  # a CADU cut short
        (good_tm[2], 47002),
        (rng.randbytes(1279), 47002),  # noise of the right length: no ASM
        (good_tc[0][:40], 47001),  # a CLTU cut short
        (b"\x00\x01" + rng.randbytes(60), 47001),  # no start sequence
        (rng.randbytes(90), 47011),  # a TC frame that is noise
        (b"\xff" * 20, 47012),  # a TM frame of 20 octets
        (rng.randbytes(1115), 47013),  # an AOS frame that is noise
        (good_tm[3], 47002),
    ]
    result, lines = run_replay(_write(tmp_path / "bad.pcap", datagrams))
    text = "\n".join(lines)
    r = result.replayer
    assert result.exit_status == 1
    assert [m.message.id for m in r.messages] == ["a0", "a2", "a3"]  # the good ones
    refused = set(r.refused)
    assert {"tm_cadu: length", "tm_cadu: asm", "cltu: start_sequence"} <= refused, refused
    assert "tm: frame_length" in refused, refused
    assert any(k.startswith("cltu:") and k != "cltu: start_sequence" for k in refused)
    assert any(k.startswith("tc:") for k in refused) and any(k.startswith("aos:") for k in refused)
    assert "refused: tm_cadu: length: 600 octets; this link's CADUs are 1279" in text
    assert r.stats["units_refused"] + r.stats["units_decoded"] == r.stats["units"]
    assert "  refused   " in text and "result    some units could not be used" in text
    assert "spp: missing_packets +1" in text  # the answer lost with the cut CADU: a gap


def test_a_capture_of_space_packets_alone(tmp_path):
    counter = SequenceCounter()
    packets = [p.pack() for p in segment(_query(4), QUERY_APID, counter, 500, PacketType.TC)]
    assert len(packets) > 2
    datagrams = [(p, 47020) for p in packets]  # a segmented query, decoded and joined
    datagrams += [
        (packets[0][:-9], 47020),  # cut short
        (b"\xe0" + packets[0][1:], 47020),  # version 7
        (segment(_answer(3), ANSWER_APID, counter, 4096)[0].pack(), 47020),
        (segment(b"\xa1\x61\x76\x00", QUERY_APID, counter, 4096)[0].pack(), 47020),  # v 0
    ]
    result, lines = run_replay(_write(tmp_path / "spp.pcap", datagrams))
    r = result.replayer
    text = "\n".join(lines)
    assert r.sources[UPLINK] == "space_packet" and "uplink from space_packet" in lines[1]
    assert {"spp: data_length", "spp: version"} <= set(r.refused), r.refused
    assert [type(m.message).__name__ for m in r.messages] == ["Query", "Answer"]
    # 192.0.2.x is no linkstack node: a payload on APID 0x100 that is no linkstack message
    # is another mission's packet, not a refusal (issue 20)
    assert "msg: v" not in r.refused and r.stats["payloads_foreign"] == 1
    assert "foreign   1 payloads on linkstack's APIDs" in text
    assert result.exit_status == 1


def _records(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of every record of a classic little-endian pcap."""
    data = path.read_bytes()
    out, pos = [], 24
    while pos < len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        out.append((pos, 16 + incl))
        pos += 16 + incl
    return out


def test_damaged_records_are_skipped_and_a_cut_file_stops_the_reading(tmp_path):
    units = _tm_units([_answer(k) for k in range(4)])
    path = _write(tmp_path / "d.pcap", [(u, 47002) for u in units])
    data = bytearray(path.read_bytes())
    off, _ = _records(path)[1]
    data[off + 16 + 14 + 10] ^= 0xFF  # the IPv4 header checksum of record 2
    path.write_bytes(bytes(data))
    result, lines = run_replay(path)
    text = "\n".join(lines)
    assert "record 2: pcap: ipv4.checksum: record 2: header checksum is wrong; skipped" in text
    assert [m.message.id for m in result.replayer.messages] == ["a0", "a2", "a3"]
    assert result.exit_status == 1
    # cut inside the last record: what came before is replayed, then reading stops
    off, _ = _records(path)[3]
    path.write_bytes(bytes(data[: off + 100]))
    result, lines = run_replay(path)
    assert "reading stops here" in "\n".join(lines)
    assert [m.message.id for m in result.replayer.messages] == ["a0", "a2"]


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is a text file\n" * 4, b"\xa1\xb2\xc3\xd4" + b"\x00" * 10, b"PK\x03\x04"],
)
def test_a_file_that_is_no_capture_exits_2(tmp_path, capsys, content):
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    parser = argparse.ArgumentParser()
    replay_cli.add_replay_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["replay", str(path)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("linkstack replay: ") and "Traceback" not in err
    with pytest.raises(CaptureFileError):
        replay_file(path, say=lambda s: None)


def test_missing_file_and_bad_options(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    replay_cli.add_replay_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["replay", str(tmp_path / "nope.pcap")])
    assert args.func(args) == 2
    assert "cannot read" in capsys.readouterr().err
    args = parser.parse_args(["replay", "f.pcap", "--port", "tm_cadu=5000", "--as", "sat"])
    assert args.port == [("tm_cadu", 5000)] and args.side == "sat" and not args.realtime
    for bad in (["--port", "tm=5000"], ["--port", "cltu=0"], ["--realtime", "--fast"]):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["replay", "f.pcap", *bad])
        assert exc.value.code == 2


def test_the_command_replays_a_sample(capsys):
    parser = argparse.ArgumentParser()
    replay_cli.add_replay_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["replay", str(SAMPLES / "lossy-cop1.pcap"), "--fast"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "discarded: a repeat of a frame already accepted (E4)" in out
    assert "CLCW VC 0: N(R) 2 [retransmit]" in out


# -- never a traceback ----------------------------------------------------------------------

_LAYERS = sorted(LAYERS)


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_LAYERS),
            st.sampled_from(["ground:A", "sat:B", "sat:C", "10.9.0.1"]),
            st.sampled_from(["ground:A", "sat:B", "sat:C", "10.9.0.1"]),
            st.binary(max_size=1400),
        ),
        max_size=8,
    )
)
def test_the_replayer_never_raises_on_any_units(units):
    r = Replayer(LAYERS, verbose=True)
    for i, (layer, src, dst, data) in enumerate(units):
        for event in r.feed(CapturedUnit(layer, float(i), src, dst, data)):
            assert event.format()
    r.finish()
    assert r.stats["units"] == len(units) and not r.stats["internal_errors"]


def test_units_cut_at_every_length_never_raise():
    (cadu,) = _tm_units([_answer(1)])
    (cltu,) = _tc_units([_query(1)])
    for layer, unit in (("tm_cadu", cadu), ("aos_cadu", cadu), ("cltu", cltu)):
        r = Replayer(LAYERS)
        for n in range(0, len(unit), 7):
            r.feed(CapturedUnit(layer, 0.0, "sat:B", "ground:A", unit[:n]))
        assert r.stats["units"] == len(range(0, len(unit), 7))
        assert not r.stats["internal_errors"]


def test_every_layer_of_the_port_table_has_a_place():
    assert set(replay_link.FAMILY_OF_LAYER) | {"space_packet", replay_link.USLP_FRAME} == set(PORTS)
