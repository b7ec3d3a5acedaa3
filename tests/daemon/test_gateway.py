"""The ground-station interface for an outside mission control system (issue 14,
item 1): linkstack/daemon/gateway.py.

The interoperability tests put an independent implementation of CCSDS TC and TM
framing in the mission control system's seat: F Prime's ground data system
(``fprime-gds`` 4.4.1, ``SpaceDataLinkFramerDeframer``: TC frames Type-BD, no segment
header, with FECF; TM deframing of fixed-length frames with FECF and First Header
Pointer; ``SpacePacketSplitterFramerDeframer`` for the packets), with the Space
Packet inside built by ``spacepackets`` (robamu). Through real channel, sat and
ground daemons on loopback, over UDP and over TCP: F Prime's TC frame carries a
query up, the satellite's model answers, and F Prime's deframer gets the answer out
of the TM frames the ground station hands it.
"""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
from fprime_gds.common.communication.ccsds import space_data_link as fprime_sdl
from fprime_gds.common.communication.ccsds import space_packet_splitter as fprime_split
from hypothesis import given
from hypothesis import strategies as st
from spacepackets.ccsds.spacepacket import PacketType, SpacePacketHeader
from spacepackets.ccsds.spacepacket import SpacePacket as SpPacket

from linkstack.ccsds.coding.chains import CaduCoding, CaduReceiver
from linkstack.ccsds.coding.cltu import encode_cltu
from linkstack.ccsds.spp import Reassembler, SpacePacket
from linkstack.ccsds.tc import TcConfig, TcFrameType, TcVirtualChannel
from linkstack.daemon.endpoints import StreamFramingError, UnitStream
from linkstack.daemon.gateway import uplink_check
from linkstack.runtime import scenario as scenario_file
from payloads.messages import ANSWER_APID, QUERY_APID, Answer, Params, Query, decode, encode
from tests.daemon.test_daemon_processes import HANG_S, Run
from tests.ports import free_block

SATELLITE = "CS-08"  # over Sanya at the tests' start (tests/daemon/test_daemon_processes.py)
INDEX = 7  # its place in the scenario: its gateway ports are port + 7, peer_port + 7
SCID = 64 + INDEX  # frames.scid_base + its index
TM_FRAME_LEN = 1115


# -- cutting a stream into units (sans-I/O) ------------------------------------------------


def _tc_frames(payloads: list[bytes], segment_header: bool) -> list[bytes]:
    vc = TcVirtualChannel(TcConfig(scid=SCID, segment_header=segment_header), 0)
    return [f.pack() for f in vc.frames(payloads, 0, TcFrameType.BD)]


@given(
    payloads=st.lists(st.binary(min_size=1, max_size=900), min_size=1, max_size=6),
    segment_header=st.booleans(),
    cltu=st.booleans(),
    cuts=st.lists(st.integers(1, 60), min_size=1, max_size=40),  # mostly inside a unit
)
def test_a_stream_of_units_is_cut_back_into_the_same_units_whatever_its_chunks(
    payloads, segment_header, cltu, cuts
):
    units = _tc_frames(payloads, segment_header)
    if cltu:
        units = [encode_cltu(u, True) for u in units]
    stream = b"".join(units)
    splitter = UnitStream("cltu" if cltu else "tc_frame")
    got, at = [], 0
    for n in cuts:
        got += splitter.feed(stream[at : at + n])
        at += n
    got += splitter.feed(stream[at:])
    assert got == units
    assert splitter.pending == 0


def test_fixed_length_units_and_a_stream_that_lost_its_framing():
    splitter = UnitStream("tm_frame", length=5)
    assert splitter.feed(b"abcdefg") == [b"abcde"]
    assert splitter.feed(b"hij") == [b"fghij"]
    cltus = UnitStream("cltu")
    good = encode_cltu(_tc_frames([b"x"], False)[0], True)
    assert cltus.feed(good + good[:3]) == [good]
    assert cltus.feed(good[3:]) == [good]
    # what follows is no CLTU: the stream cannot be trusted any more
    with pytest.raises(StreamFramingError) as err:
        UnitStream("cltu").feed(b"\x00" * 20)
    assert "start_sequence" in str(err.value)
    packets = UnitStream("packet")
    one = SpacePacket(0x20, b"abc").pack()
    assert packets.feed(one + one[:2]) == [one] and packets.feed(one[2:]) == [one]
    for kind, junk, words in [
        ("packet", b"\xe0" + bytes(7), "version"),
        ("tc_frame", b"\x40" + bytes(7), "version"),
        ("tc_frame", bytes([0, 0, 0, 3]), "frame_length"),
    ]:
        with pytest.raises(StreamFramingError, match=words):
            UnitStream(kind).feed(junk)
    endless = UnitStream("cltu")
    assert endless.feed(good[:-8]) == []  # no tail yet: waits for more
    with pytest.raises(StreamFramingError) as err:
        endless.feed(b"\x00" * 1200)  # longer than any CLTU, and still no tail
    assert "tail_sequence" in str(err.value)


def test_the_fprime_framer_makes_frames_the_check_takes_and_damage_it_refuses():
    framer = fprime_sdl.SpaceDataLinkFramerDeframer(SCID, 0, TM_FRAME_LEN)
    frame = framer.frame(b"\x18\x00\xc0\x00\x00\x00\x01")
    check = uplink_check("tc_frame", TcConfig(scid=SCID, segment_header=False))
    assert check(frame) is None
    assert check(frame[:-1] + bytes([frame[-1] ^ 1])) == "tc_fecf"
    other = fprime_sdl.SpaceDataLinkFramerDeframer(SCID + 1, 0, TM_FRAME_LEN).frame(b"\x18\x00")
    assert check(other) == "tc_wrong_scid"
    assert uplink_check("cltu", TcConfig())(frame) == "cltu_start_sequence"


# -- scenario keys -----------------------------------------------------------------------------


def test_the_gateway_is_off_by_default_and_its_ports_are_checked():
    assert not scenario_file.load_default().gateway.enabled
    # the repeat rule: on by default over MQTT only (QoS 1 redelivers), and settable
    windows = {
        '[gateway]\ntransport = "mqtt"\nenabled = true\nport = 47400': 64,
        '[gateway]\ntransport = "udp"': 0,
        '[gateway]\ntransport = "tcp"\nrepeat_window = 8': 8,
        '[gateway]\ntransport = "mqtt"\nrepeat_window = 0': 0,
    }
    for text, window in windows.items():
        assert scenario_file.loads(text).gateway.repeats_dropped() == window, text
    s = scenario_file.loads('[gateway]\nenabled = true\ntransport = "tcp"\nsatellites = ["CS-03"]')
    assert (s.gateway.transport, s.gateway.satellites, s.gateway.port_of(2)) == (
        "tcp",
        ("CS-03",),
        47602,
    )
    bad = {
        "[gateway]\nenabled = true\nport = 47400": "overlap daemon.node_port",
        "[gateway]\nenabled = true\npeer_port = 47605": "peer_port: ports 47605..47616 overlap",
        '[gateway]\nsatellites = ["CS-99"]': "no satellite 'CS-99'",
        '[gateway]\nuplink = "aos_frame"': "uplink",
        "[gateway]\napids = [0x101]": "linkstack's own",
        "[gateway]\napids = [2047]": "0..2046",
        '[gateway]\napids = ["0x20"]': "list of APIDs",
        '[gateway]\ntransport = "serial"': "transport",
        '[mqtt]\nenabled = false\n[gateway]\nenabled = true\ntransport = "mqtt"': "[mqtt] enabled",
        "[gateway]\nrepeat_window = -1": "repeat_window",
        '[radio]\ntransport = "mqtt"': "unknown transport 'mqtt'",
    }
    for text, words in bad.items():
        with pytest.raises(scenario_file.ScenarioError) as err:
            scenario_file.loads(text)
        assert words in str(err.value), (text, str(err.value))


# -- interoperability: F Prime's GDS as the mission control system -----------------------------


def _query_packet(qid: str) -> bytes:
    """The query as F Prime's GDS would uplink a packet: one unsegmented TC Space
    Packet built by spacepackets, our CBOR message inside."""
    message = encode(Query(qid, f"From F Prime {qid}", Params(max_new_tokens=8, seed=1)))
    header = SpacePacketHeader(
        packet_type=PacketType.TC, apid=QUERY_APID, seq_count=0, data_len=len(message) - 1
    )
    return SpPacket(header, sec_header=None, user_data=message).pack()


class FprimeDownlink:
    """F Prime's TM deframing chain: frames -> packets (its deframer), packets -> one
    whole packet at a time (its splitter); then our messages out of them."""

    def __init__(self, vcid: int = 0, frame_len: int = TM_FRAME_LEN) -> None:
        self.deframer = fprime_sdl.SpaceDataLinkFramerDeframer(SCID, vcid, frame_len)
        self.splitter = fprime_split.SpacePacketSplitterFramerDeframer()
        self.rest = b""
        self.reassembler = Reassembler()
        self.answers: dict[str, Answer] = {}
        self.packets: list[bytes] = []  # every whole packet but idle ones
        self.frames = 0

    def feed(self, data: bytes) -> None:
        data = self.rest + data
        while True:
            packets, data, _ = self.deframer.deframe(data)
            if packets is None:
                break
            self.frames += 1
            while packets:
                packet, packets, _ = self.splitter.deframe(packets)
                if packet is None:
                    break
                self._packet(bytes(packet))
        self.rest = data

    def _packet(self, raw: bytes) -> None:
        self.packets.append(raw)
        packet = SpacePacket.unpack(raw)
        if packet.apid != ANSWER_APID:
            return
        payload = self.reassembler.push(packet)
        if payload is None:
            return
        message = decode(payload)
        if isinstance(message, Answer):
            self.answers[message.id] = message


def _gateway_scenario(run: Run, transport: str, uplink: str, downlink: str) -> tuple[int, int]:
    base = free_block(2 * 12) if transport == "udp" else free_block(0, 12)
    port, peer_port = base, base + 12
    with run.scenario.open("a") as f:
        f.write(
            "[sdls]\n"
            "enabled = false\n"  # F Prime does no SDLS, and codes its own CLTUs here
            "[frames]\n"
            "tc_segment_header = false\n"  # F Prime frames packets without a segment header
            "[gateway]\n"
            "enabled = true\n"
            f'transport = "{transport}"\n'
            f'uplink = "{uplink}"\n'
            f'downlink = "{downlink}"\n'
            f"port = {port}\n"
            f"peer_port = {peer_port if transport == 'udp' else port + 40}\n"
            f'satellites = ["{SATELLITE}"]\n'
        )
    return port + INDEX, peer_port + INDEX


def _uplink_unit(qid: str, uplink: str) -> bytes:
    frame = fprime_sdl.SpaceDataLinkFramerDeframer(SCID, 0, TM_FRAME_LEN).frame(_query_packet(qid))
    return frame if uplink == "tc_frame" else encode_cltu(frame, True)


class CaduStation:
    """For ``downlink = "cadu"``: the outside system is the station; our receive chain
    makes the frames F Prime's deframer then reads."""

    def __init__(self, downlink: FprimeDownlink) -> None:
        self.rx = CaduReceiver(TM_FRAME_LEN, CaduCoding())
        self.downlink = downlink

    def feed(self, cadu: bytes) -> None:
        decoded = self.rx.receive_cadu(cadu)
        if decoded is not None:
            self.downlink.feed(decoded.frame)


async def _counters(run: Run) -> dict:
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"http://127.0.0.1:{run.http_port}/counters", timeout=5)
    return reply.json()


async def test_fprime_gds_commands_the_satellite_and_reads_its_telemetry_through_the_gateway(run):
    """Over UDP, with CLTUs and CADUs (the system codes them itself): F Prime's TC
    frames in our CLTUs, F Prime's deframer behind our CADU receiver. TCP with TC and
    TM frames is tests/daemon/test_flight_radio.py's first test (F Prime's GDS at
    this gateway, flight software at the radio); three daemons a case, so no more."""
    transport, uplink, downlink = "udp", "cltu", "cadu"
    port, peer_port = _gateway_scenario(run, transport, uplink, downlink)
    procs = [run.start(role) for role in ("channel", "sat", "ground")]
    await run.ready(*procs)
    fprime = FprimeDownlink()
    station = CaduStation(fprime)
    ids = [f"fp-{transport}-{k}" for k in range(2)]
    loop = asyncio.get_running_loop()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", peer_port))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for qid in ids:
        tx.sendto(_uplink_unit(qid, uplink), ("127.0.0.1", port))
    async with asyncio.timeout(HANG_S):
        while set(fprime.answers) < set(ids):
            station.feed(await loop.sock_recv(rx, 65_536))
    rx.close()
    tx.close()
    for qid in ids:
        answer = fprime.answers[qid]
        assert answer.satellite == SATELLITE and answer.completion_tokens == 8
    gateway = (await _counters(run))["ground"]["gateway"]
    assert gateway["stats"]["cltus_up"] == len(ids), gateway
    assert gateway["refused"] == {}, gateway
    assert gateway["stats"]["units_out"] >= fprime.frames > 0
    run.stop_all(*procs)
    ground = run.records(procs[2])
    assert any(m["msg"] == "stopped" for m in ground), json.dumps(ground[-3:])
