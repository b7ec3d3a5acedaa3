"""The attacks of issue 15 against running daemons with SDLS on: real channel, sat and
ground processes, a real Mosquitto, every frame protected (AES-256-GCM both ways).

An attacker on the host builds CLTUs with linkstack's own encoders and sends them
straight to the satellite's uplink port, bypassing the ground, the channel and MQTT
(the scenario takes units from any source port, ``check_source = false``: what an
attacker who spoofs the channel's port, root on the host, gets anyway):
- a forged Type-BD frame carrying a query,
- a forged Type-AD frame with N(S) set to the V(R) the satellite's FARM-1 reports,
- a forged Set V(R) (Type-BC), then a replay of a CLTU the satellite already took
  (read out of the channel's own capture).
And a forged TM frame (plain, a CADU made with linkstack's encoder) sent to the
ground's downlink port.

Each is refused by SDLS before FARM-1 or COP-1 sees it, counted by reason, alarmed
(a warning in the log, ``sdls`` in the status, and on the ground an MQTT message on
``<prefix>/<ground>/alarm``); no inference runs for them and no answer comes of them.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket

import aiomqtt
import httpx

from linkstack.capture.link_header import link_header
from linkstack.capture.network import nodes_path
from linkstack.capture.reader import read_units
from linkstack.capture.sdls_view import capture_links, from_uplink
from linkstack.ccsds.coding.chains import CaduTransmitter, CltuTransmitter
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.ccsds.tm import TmConfig, TmMasterChannel
from linkstack.daemon.wire import PortPlan
from linkstack.runtime import scenario as scenario_file
from tests.daemon.test_daemon_processes import HANG_S, TOPICS, Listener, publish_queries, query
from tests.daemon.test_gateway import _query_packet

SATELLITE = "CS-08"


async def _json(url: str) -> dict:
    async with httpx.AsyncClient() as http:
        return (await http.get(url, timeout=5)).json()


async def test_forged_replayed_and_spoofed_frames_are_refused_alarmed_and_never_run(
    run, broker, tmp_path
):
    with run.scenario.open("a") as f:
        f.write(
            f'check_source = false\n[sdls]\nenabled = true\nkey_file = "{tmp_path}/keys.json"\n'
        )
    settings = scenario_file.load(run.scenario)
    d = settings.daemon
    plan = PortPlan.of(settings.scenario, d)
    up = settings.emulation.uplink
    scid = settings.emulation.scid_base + list(settings.scenario.satellite_names).index(SATELLITE)
    procs = [run.start(role) for role in ("channel", "sat", "ground")]
    await run.ready(*procs)
    sat_log = run.log_of(procs[1])
    assert '"msg":"sdls on"' in sat_log
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    # the real thing works with SDLS on: a query answered
    async with Listener(broker.port, "test-listener-sdls") as listener:
        await publish_queries(broker.port, [query("honest-1", "Hello", target=SATELLITE)])
        (answer,) = (await listener.answers(["honest-1"])).values()
    assert answer["type"] == "answer"
    # CS-06's pass becomes usable at t_s 10775.4, and the ground's Set V(R) to it moves
    # the FARM-1 counters (summed over the satellites): read them once that is done
    async with asyncio.timeout(HANG_S):
        while not any(
            link["satellite"] == "CS-06" and link["fop"] == "active"
            for link in (await _json(f"http://127.0.0.1:{run.http_port}/status"))["ground"]["links"]
        ):
            await asyncio.sleep(0.2)
    sat_url = f"http://127.0.0.1:{run.http_port + 2}"
    before = await _json(f"{sat_url}/counters")
    services_before = before["satellites"].get("services", {})

    # the attacker's units, built with linkstack's own encoders and no keys
    cltu = CltuTransmitter(up.cltu_coding)
    plain = up.tc_config()
    vr = before["satellites"]["farm"].get("accepted", 0)  # what FARM-1 took so far
    forged = [
        TcFrame(scid, 0, _query_packet("forged-bd"), TcFrameType.BD, 0, 0),
        TcFrame(scid, 0, _query_packet("forged-ad"), TcFrameType.AD, vr % 256, 0),
        TcFrame(scid, 0, bytes([0x82, 0x00, 0x00]), TcFrameType.BC, 0, None),
    ]
    units = [cltu.cltu(frame.pack(plain.fecf)) for frame in forged]
    taken: list[bytes] = []
    async with asyncio.timeout(HANG_S):  # the channel flushes its capture every status line
        while not taken:
            await asyncio.sleep(0.2)
            taken = [u.data for u in read_units(run.out / "channel.pcap") if u.layer == "cltu"]
    units.append(taken[-1])  # a replay of a CLTU the satellite took
    # the channel's capture says by itself which SAs protect its frames, and holds no key
    assert capture_links(run.out / "channel.pcap") == from_uplink(up)
    side = nodes_path(run.out / "channel.pcap").read_text()
    assert not re.findall(r"[0-9a-fA-F]{64}", side)
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for unit in units:
        spec = plan.uplink(SATELLITE)  # the link header is no secret
        attacker.sendto(link_header(spec.index) + unit, ("127.0.0.1", spec.node_port))
    # a forged TM frame, plain, to the ground's downlink port
    mc = TmMasterChannel(TmConfig(frame_length=up.tm_frame_length, scid=scid, ocf=True))
    mc.ocf = bytes(4)
    cadu = CaduTransmitter(up.tm_frame_length, up.cadu_coding).cadu(mc.idle_frame())
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="alarm-watch") as watch:
        await watch.subscribe(f"{TOPICS.base}/alarm", qos=1)
        spec = plan.downlink(SATELLITE)
        attacker.sendto(link_header(spec.index) + cadu, ("127.0.0.1", spec.node_port))
        async with asyncio.timeout(HANG_S):
            async for message in watch.messages:
                alarm = json.loads(bytes(message.payload))
                break
    assert alarm["kind"] == "sdls_refused" and alarm["end"] == f"ground:{SATELLITE}"
    attacker.close()
    await asyncio.sleep(1.5)  # anything that would have run, would have started
    after = await _json(f"{sat_url}/counters")
    refused = {k: v for k, v in after["sdls"].items() if k.startswith("refused_")}
    assert sum(refused.values()) == 4, after["sdls"]
    assert refused.get("refused_replay") == 1, refused
    # FARM-1 saw none of them: what it took since are the ground's own frames (the
    # answer's acknowledgement), each verified by SDLS first
    farm_before, farm_after = before["satellites"]["farm"], after["satellites"]["farm"]
    moved = {k for k in farm_after if farm_after[k] != farm_before.get(k)}
    assert moved <= {"E1", "accepted"}, (farm_before, farm_after)
    took = farm_after.get("accepted", 0) - farm_before.get("accepted", 0)
    assert took == after["sdls"]["verified"] - before["sdls"]["verified"]
    services = after["satellites"].get("services", {})
    assert services.get("queries") == services_before["queries"] == 1  # the honest one only
    assert services.get("inferences") == services_before["inferences"] == 1
    status = await _json(f"{sat_url}/status")
    assert status["sdls"]["alarms"] == 4
    assert "SDLS refused a frame" in run.log_of(procs[1])
    ground = await _json(f"http://127.0.0.1:{run.http_port}/counters")
    assert ground["sdls"].get("refused_spi_unknown", 0) + ground["sdls"].get("refused_mac", 0) >= 1
    assert (
        "unsolicited" not in json.dumps(ground["app"]) or ground["app"]["held"]["unsolicited"] == 0
    )
    run.stop_all(*procs)
