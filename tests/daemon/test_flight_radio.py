"""The radio for flight software (issue 14, item 2) and the packet bridge for users'
own APIDs (item 3): linkstack/daemon/flight_radio.py with the gateway
(linkstack/daemon/gateway.py), through real channel, sat and ground daemons.

Both ends are independent implementations, never linkstack's codecs:
- frames: the mission control system is F Prime's GDS (``fprime-gds`` 4.4.1, its TC
  framer and TM deframer, at the gateway over TCP); the flight software frames its
  telemetry with ``spacepackets``' TM transfer frame (and ``fastcrc`` for the FECF),
  at the radio over UDP. F Prime's TC frame must reach the flight software exactly as
  F Prime made it; the flight software's TM frame, multiplexed by the satellite with
  its own, must give F Prime's deframer the flight software's packet, and the ground
  must see one unbroken master channel.
- packets: a ground application and flight software exchange Space Packets built and
  parsed by ``spacepackets``, on APIDs of their own, up through linkstack's FOP-1 and
  FARM-1 and down in the satellite's TM, beside the inference traffic; a packet on
  linkstack's own APIDs is refused at both ends. The ground application is on UDP, or
  on MQTT (a real Mosquitto, QoS 1: a redelivered packet is dropped once). Each
  packet's timeline comes from ``linkstack packets`` on the two ends' records.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys

import aiomqtt
import fastcrc
import pytest
from fprime_gds.common.communication.ccsds import space_data_link as fprime_sdl
from spacepackets.ccsds.spacepacket import PacketType, SpacePacket, SpacePacketHeader
from spacepackets.ccsds.tm_frame import (
    MasterChannelId,
    TmFramePrimaryHeader,
    TmTransferFrame,
    TransferFrameDataFieldStatus,
)

from linkstack.ccsds.spp import SpacePacket as OurPacket
from linkstack.runtime import scenario as scenario_file
from linkstack.tools.link_settings import satellite_settings
from tests.daemon.test_daemon_processes import HANG_S, LINKS, TOPICS, Run
from tests.daemon.test_gateway import (
    INDEX,
    SATELLITE,
    SCID,
    TM_FRAME_LEN,
    FprimeDownlink,
    _counters,
)
from tests.ports import free_block

FLIGHT_VC = 1  # F Prime's default virtual channel
TC_APID, TM_APID = 0x20, 0x21


def _scenario(run: Run, gateway: dict[str, str], radio: dict[str, str]) -> dict[str, int]:
    """The gateway and the radio of CS-08 in the scenario; their ports for CS-08."""
    taken = set(range(run.channel_port, run.node_port + LINKS))
    while True:  # blocks of 12 (one port a satellite) clear of the daemons' own
        udp, tcp = free_block(4 * 12), free_block(0, 2 * 12)
        if not taken & ({*range(udp, udp + 48)} | {*range(tcp, tcp + 24)}):
            break
    ports = {
        "gw": tcp if gateway["transport"] == "tcp" else udp,
        "gw_peer": udp + 12,
        "radio": tcp + 12 if radio["transport"] == "tcp" else udp + 24,
        "radio_peer": udp + 36,
    }

    def table(name: str, keys: dict[str, str], port: int, peer: int) -> str:
        body = "".join(f'{k} = "{v}"\n' for k, v in keys.items())
        return (
            f"[{name}]\nenabled = true\n{body}port = {port}\npeer_port = {peer}\n"
            f'satellites = ["{SATELLITE}"]\n'
        )

    with run.scenario.open("a") as f:
        f.write("[frames]\ntc_segment_header = false\n")
        f.write(table("gateway", gateway, ports["gw"], ports["gw_peer"]))
        f.write(table("radio", radio, ports["radio"], ports["radio_peer"]))
    return {k: v + INDEX for k, v in ports.items()}


def _listening(port: int) -> socket.socket:
    """The test's own end of a UDP interface: where the daemon sends to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def _telemetry_frame(vc_count: int, payload: bytes, frame_len: int = TM_FRAME_LEN) -> bytes:
    """The flight software's TM frame, by spacepackets: one packet at the start of
    the data field, an idle packet after it, an OCF of zeros (no FARM of its own:
    the satellite puts its CLCW there), the FECF."""
    packet = SpacePacket(
        SpacePacketHeader(PacketType.TM, TM_APID, 0, len(payload) - 1), None, payload
    ).pack()
    room = frame_len - 6 - 4 - 2 - len(packet)
    idle = SpacePacket(
        SpacePacketHeader(PacketType.TM, 0x7FF, 0, room - 7), None, bytes(room - 6)
    ).pack()
    header = TmFramePrimaryHeader(
        MasterChannelId(0, SCID),
        FLIGHT_VC,
        True,
        0,
        vc_count,
        TransferFrameDataFieldStatus(False, False, False, 0b11, 0),
    )
    body = header.pack() + packet + idle + bytes(4)
    fecf = fastcrc.crc16.ibm_3740(bytes(body)).to_bytes(2, "big")
    return TmTransferFrame(frame_len, header, None, packet + idle, bytes(4), fecf).pack()


# under SDLS in make test-slow (SDLS through real daemons: test_sdls_attacks, test_active_sdls)
@pytest.mark.parametrize(
    "sdls", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["clear", "sdls"]
)
async def test_fprime_gds_and_flight_software_frames_meet_through_gateway_radio_and_channel(
    run, sdls, tmp_path
):
    """With SDLS on, the gateway terminates it (F Prime knows none) and the satellite
    protects the flight software's TM frames with its own: both sides build frames of
    the plain length that ``linkstack settings`` prints, and on air every frame is
    protected (the channel's capture holds no clear frame)."""
    ports = _scenario(
        run,
        {"transport": "tcp", "uplink": "tc_frame", "downlink": "tm_frame"},
        {"transport": "udp", "uplink": "tc_frame", "downlink": "tm_frame"},
    )
    with run.scenario.open("a") as f:
        f.write(f'[sdls]\nenabled = {str(sdls).lower()}\nkey_file = "{tmp_path}/keys.json"\n')
    procs = [run.start(role) for role in ("channel", "sat", "ground")]
    await run.ready(*procs)
    loop = asyncio.get_running_loop()
    flight = _listening(ports["radio_peer"])
    # F Prime configured as `linkstack settings` says (its options for this gateway)
    settings = satellite_settings(scenario_file.load(run.scenario), SATELLITE)
    said, tm_len = settings["fprime_gds"], settings["tm"]["frame_length"]
    assert tm_len == (TM_FRAME_LEN - 30 if sdls else TM_FRAME_LEN)  # SPI, IV and MAC
    option = {
        arg: (said[k + 1] if k + 1 < len(said) and not said[k + 1].startswith("--") else "")
        for k, arg in enumerate(said)
        if arg.startswith("--")
    }
    assert option["--ip-port"] == str(ports["gw"]) and "--ip-client" in option
    assert (option["--scid"], option["--vcid"]) == (str(SCID), str(FLIGHT_VC))
    reader, writer = await asyncio.open_connection(option["--ip-address"], ports["gw"])
    framer = fprime_sdl.SpaceDataLinkFramerDeframer(
        int(option["--scid"]), int(option["--vcid"]), int(option["--frame-size"])
    )
    command = SpacePacket(SpacePacketHeader(PacketType.TC, TC_APID, 7, 4 - 1), None, b"ping").pack()
    tc_frame = framer.frame(bytes(command))
    writer.write(tc_frame)
    await writer.drain()
    async with asyncio.timeout(HANG_S):
        got = await loop.sock_recv(flight, 65_536)
    assert got == tc_frame  # the flight software has F Prime's frame as F Prime made it
    # the flight software answers in its own TM frames, three of them
    replies = [f"pong {k}".encode() for k in range(3)]
    for k, reply in enumerate(replies):
        flight.sendto(_telemetry_frame(k, reply, tm_len), ("127.0.0.1", ports["radio"]))
    fprime = FprimeDownlink(FLIGHT_VC, tm_len)
    seen = fprime.packets  # the flight software's own, as F Prime's GDS has them
    async with asyncio.timeout(HANG_S):
        while len(seen) < len(replies):
            data = await reader.read(65_536)
            assert data, "the gateway closed the connection"
            fprime.feed(data)
    assert [bytes(p[6:]) for p in seen] == replies
    assert {SpacePacketHeader.unpack(p).apid for p in seen} == {TM_APID}
    counters = await _counters(run)
    assert counters["ground"]["downlink"].get("tm_mc_frames_lost", 0) == 0  # one master channel
    writer.close()
    flight.close()
    run.stop_all(*procs)
    sat = next(m for m in run.records(procs[1]) if m["msg"] == "stopped")
    radio = sat["counters"]["satellites"]["radio"]
    assert radio["stats"]["tc_frames_up"] == 1 and radio["stats"]["tm_frames_down"] == 3
    assert radio["refused"] == {}
    if sdls:  # every frame was protected and verified, none refused
        ground = next(m for m in run.records(procs[2]) if m["msg"] == "stopped")
        for counts in (sat["counters"]["sdls"], ground["counters"]["sdls"]):
            assert counts["protected"] > 0 and counts["verified"] > 0, counts
            assert not [k for k in counts if k.startswith("refused_")], counts


async def test_packets_of_users_apids_travel_both_ways_beside_the_inference_traffic(run):
    ports = _scenario(
        run,
        {"transport": "udp", "uplink": "packet", "downlink": "packet"},
        {"transport": "tcp", "uplink": "packet", "downlink": "packet"},
    )
    procs = [run.start(role) for role in ("channel", "sat", "ground")]
    await run.ready(*procs)
    loop = asyncio.get_running_loop()
    ground_app = _listening(ports["gw_peer"])
    reader, writer = await asyncio.open_connection("127.0.0.1", ports["radio"])
    commands = [
        SpacePacket(SpacePacketHeader(PacketType.TC, TC_APID, k, 9), None, bytes([k]) * 10).pack()
        for k in range(5)
    ]
    ours = SpacePacket(SpacePacketHeader(PacketType.TC, 0x100, 0, 0), None, b"q").pack()
    ground_app.sendto(bytes(ours), ("127.0.0.1", ports["gw"]))  # linkstack's APID: refused
    for c in commands:
        ground_app.sendto(bytes(c), ("127.0.0.1", ports["gw"]))
    got = b""
    async with asyncio.timeout(HANG_S):
        while len(got) < sum(map(len, commands)):
            got += await reader.read(65_536)
    assert got == b"".join(commands)  # in order, once (COP-1 and FARM-1 between)
    telemetry = [
        SpacePacket(SpacePacketHeader(PacketType.TM, TM_APID, k, 19), None, bytes([k]) * 20).pack()
        for k in range(5)
    ]
    refused = SpacePacket(SpacePacketHeader(PacketType.TM, 0x101, 0, 0), None, b"a").pack()
    stream = bytes(refused) + b"".join(telemetry)
    writer.write(stream[:13])  # cut anywhere: the radio finds each by its length field
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(stream[13:])
    await writer.drain()
    down: list[bytes] = []
    async with asyncio.timeout(HANG_S):
        while len(down) < len(telemetry):
            down.append(await loop.sock_recv(ground_app, 65_536))
    assert down == [bytes(t) for t in telemetry]
    writer.close()
    ground_app.close()
    run.stop_all(*procs)
    ground = next(m for m in run.records(procs[2]) if m["msg"] == "stopped")
    gateway = ground["counters"]["ground"]["gateway"]
    assert gateway["refused"] == {"packet_apid_linkstack": 1}
    assert gateway["stats"]["packets_up"] == 5 and gateway["stats"]["packets_down"] == 5
    sat = next(m for m in run.records(procs[1]) if m["msg"] == "stopped")
    radio = sat["counters"]["satellites"]["radio"]
    assert radio["refused"] == {"packet_apid_linkstack": 1}
    assert radio["stats"]["packets_up"] == 5 and radio["stats"]["packets_down"] == 5
    _check_timelines(_packet_timelines(run), commands, telemetry)


async def test_packets_over_mqtt_travel_once_though_the_broker_and_the_uplink_repeat(run, broker):
    ports = _scenario(
        run,
        {"transport": "mqtt", "uplink": "packet", "downlink": "packet"},
        {"transport": "udp", "uplink": "packet", "downlink": "packet"},
    )
    with run.scenario.open("a") as f:  # COP-1 retransmits what the uplink loses
        f.write("[links.uplink]\nloss = 0.3\n")
    procs = [run.start(role) for role in ("channel", "sat", "ground")]
    await run.ready(*procs)
    loop = asyncio.get_running_loop()
    flight = _listening(ports["radio_peer"])
    up_topic = f"{TOPICS.base}/gateway/{SATELLITE}/up"
    commands = [
        SpacePacket(SpacePacketHeader(PacketType.TC, TC_APID, k, 9), None, bytes([k]) * 10).pack()
        for k in range(12)
    ]
    telemetry = [
        SpacePacket(SpacePacketHeader(PacketType.TM, TM_APID, k, 19), None, bytes([k]) * 20).pack()
        for k in range(5)
    ]
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="ground-app") as app:
        await app.subscribe(f"{TOPICS.base}/gateway/{SATELLITE}/down", qos=1)
        for k, c in enumerate(commands):
            await app.publish(up_topic, bytes(c), qos=1)
            if k == 2:  # what a QoS 1 redelivery looks like: the same packet again
                await app.publish(up_topic, bytes(c), qos=1)
        got: list[bytes] = []
        async with asyncio.timeout(HANG_S):
            while len(got) < len(commands):
                got.append(await loop.sock_recv(flight, 65_536))
        assert got == [bytes(c) for c in commands]  # once each, in order
        for t in telemetry:
            flight.sendto(bytes(t), ("127.0.0.1", ports["radio"]))
        down: list[bytes] = []
        async with asyncio.timeout(HANG_S):
            async for message in app.messages:
                down.append(bytes(message.payload))
                if len(down) == len(telemetry):
                    break
    assert down == [bytes(t) for t in telemetry]
    flight.close()
    run.stop_all(*procs)
    ground = next(m for m in run.records(procs[2]) if m["msg"] == "stopped")
    stats = ground["counters"]["ground"]["gateway"]["stats"]
    assert (stats["packets_up"], stats["packet_repeats_dropped"], stats["units_in"]) == (12, 1, 13)
    assert (stats["packets_down"], stats["units_out"]) == (5, 5)
    doc = _packet_timelines(run)
    _check_timelines(doc, commands, telemetry)
    up = [p for p in doc["packets"] if p["way"] == "up"]
    assert sum(p["retransmissions"] for p in up) > 0  # the uplink lost some CLTUs
    assert all(p["frames"] == 1 + p["retransmissions"] for p in up)


def _packet_timelines(run: Run) -> dict:
    """``linkstack packets --json`` on the records both ends wrote, as a user runs it."""
    files = sorted(str(p) for p in run.out.glob("*-packets.jsonl"))
    assert len(files) == 2, files  # the ground's and the satellites'
    out = subprocess.run(
        [sys.executable, "-m", "linkstack", "packets", "--json", *files],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def _check_timelines(doc: dict, up: list[bytes], down: list[bytes]) -> None:
    """Every packet seen at both ends, in order, with legs that add up."""
    by_way = {w: [p for p in doc["packets"] if p["way"] == w] for w in ("up", "down")}
    for way, sent in (("up", up), ("down", down)):
        got = by_way[way]
        assert [(p["apid"], p["seq"], p["octets"]) for p in got] == [
            (OurPacket.unpack(bytes(raw)).apid, k, len(raw)) for k, raw in enumerate(sent)
        ]
        assert all(sorted(p["ends"]) == ["ground", "sat"] for p in got)
        for p in got:
            legs = p["legs_s"]
            assert all(v is not None and v >= 0 for v in legs.values()), p
            assert p["total_s"] == pytest.approx(
                sum(v for k, v in legs.items() if k != "acknowledgement"), abs=1e-5
            )
        assert doc["summary"][way]["complete"] == len(sent)
    assert all(p["legs_s"]["uplink"] > 0 and not p["failed"] for p in by_way["up"])
