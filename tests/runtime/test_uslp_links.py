"""USLP on every link kind in emulated time (``[frames] protocol = "uslp"``,
linkstack/runtime/frames.py): the scenario key and its SCIDs, COP-1 exactly once under
30 % loss with its FDUs in USLP frames, forged USLP frames refused by SDLS before
FARM-1, and the default scenario end to end (straight up and relayed over the laser
links) with USLP frames on every link, SDLS on all of them, and satellites whose
SCIDs do not fit 8 bits. What goes on air is read back with the USLP codecs."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace

import pytest

from channels.errors import IndependentErrors
from channels.link import FixedConditions
from channels.scenarios import scenario_by_name
from linkstack.capture.pcap import PcapCapture
from linkstack.ccsds.coding.chains import CaduReceiver, CltuReceiver
from linkstack.ccsds.cop1.farm import FarmState
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.ccsds.uslp import OID_VCID, UslpFrame, frame_ids
from linkstack.ccsds.uslp_cop1 import FDU_SCID, UslpCop1Codec
from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.cop1_link import Cop1Link
from linkstack.runtime.emulation import Emulation, EmulationConfig
from linkstack.runtime.security import SdlsSettings
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.tools.bench.cop1 import (
    DELAY_S,
    DOWNLINK_RATE_BPS,
    UPLINK_RATE_BPS,
    LossyModel,
    random_queries,
    run_queries,
)
from linkstack.tools.link_settings import satellite_settings
from payloads.backends import make_backend
from payloads.messages import Params
from tests.runtime.test_roundtrip import QUERIES, clk_gather, params
from tests.runtime.test_roundtrip import run_queries as run_scenario

USLP_VERSION = 0b1100
SCID_BASE = 3000  # past AOS's 8 bits and TC's and TM's 10 bits
SDLS_OFF = SdlsSettings(enabled=False)

# -- the scenario key ---------------------------------------------------------------------


def test_the_protocol_key_defaults_to_tm_tc_aos_and_reads_uslp():
    assert scenario_file.loads("").emulation.uplink.protocol == "tm-tc-aos"
    assert 'protocol = "tm-tc-aos"' in scenario_file.default_text()
    f = scenario_file.loads('[frames]\nprotocol = "uslp"\nscid_base = 3000')
    assert f.emulation.uplink.protocol == "uslp" and f.emulation.scid_base == SCID_BASE
    with pytest.raises(scenario_file.ScenarioError, match=r"frames\.protocol: .*'uslp'"):
        scenario_file.loads('[frames]\nprotocol = "ax25"')


@pytest.mark.parametrize("table", ["gateway", "radio"])
def test_the_gateway_and_the_radio_refuse_uslp_for_now(table):
    """They speak TC and TM frames to outside software: a USLP scenario with either on
    is refused, naming the key, rather than run with frames they cannot read."""
    with pytest.raises(scenario_file.ScenarioError) as err:
        scenario_file.loads(f'[frames]\nprotocol = "uslp"\n[{table}]\nenabled = true')
    assert "frames.protocol" in str(err.value) and f"[{table}]" in str(err.value)
    assert scenario_file.loads(f"[{table}]\nenabled = true")  # TC and TM: as before
    settings = scenario_file.loads('[frames]\nprotocol = "uslp"')
    with pytest.raises(ConfigError, match="not described yet"):
        satellite_settings(settings, "CS-01")


def test_scids_past_8_bits_are_refused_with_tm_tc_aos_and_taken_with_uslp():
    with pytest.raises(scenario_file.ScenarioError) as err:
        scenario_file.loads("[frames]\nscid_base = 3000")
    assert "frames.scid_base" in str(err.value) and 'frames.protocol = "uslp"' in str(err.value)
    with pytest.raises(scenario_file.ScenarioError, match="16-bit USLP SCID"):
        scenario_file.loads('[frames]\nprotocol = "uslp"\nscid_base = 65530')

    async def build(config: EmulationConfig) -> int:
        return len(Emulation(clk.make_clock(True), config).satellites)

    with pytest.raises(ConfigError, match=r'frames\.protocol = "uslp"'):
        clk.run(lambda: build(EmulationConfig(scid_base=SCID_BASE)), emulated=True)
    uslp = EmulationConfig(uplink=UplinkConfig(protocol="uslp"), scid_base=0xFFFF - 11)
    assert clk.run(lambda: build(uslp), emulated=True) == 12  # the last SCID is 0xFFFF
    with pytest.raises(ConfigError, match="protocol"):
        UplinkConfig(protocol="uslp-2")
    with pytest.raises(ConfigError, match=r"MAP ids are 0\.\.15"):
        UplinkConfig(protocol="uslp", map_id=16)  # TC's go to 63, USLP's to 15


# -- COP-1 over USLP ----------------------------------------------------------------------


@pytest.mark.parametrize("sdls", [SDLS_OFF, SdlsSettings()], ids=["clear", "sdls"])
def test_queries_exactly_once_in_order_under_30_percent_loss_over_uslp(sdls):
    config = UplinkConfig(scid=SCID_BASE, protocol="uslp", sdls=sdls)
    run = run_queries(300, uplink_loss=0.3, downlink_loss=0.3, ber=1e-5, seed=7, config=config)
    print("\n" + run.report())
    assert run.exactly_once_in_order, run.report()
    assert run.alerts == []
    s = run.summary()
    assert s["cltus_lost"] > 0 and s["tm_frames_lost"] > 0  # the losses really happened
    assert s["ad_retransmissions"] > 0 and s["cltus_corrupted"] > 0


def _links(clock: clk.Clock, config: UplinkConfig) -> Cop1Link:
    up = LossyModel(FixedConditions(UPLINK_RATE_BPS, DELAY_S))
    down = LossyModel(FixedConditions(DOWNLINK_RATE_BPS, DELAY_S))
    return Cop1Link(clock, up, down, config, IndependentErrors(seed=1), IndependentErrors(seed=2))


def test_what_goes_up_and_down_is_uslp_frames_of_the_16_bit_scid():
    config = UplinkConfig(scid=SCID_BASE, protocol="uslp", sdls=SDLS_OFF)
    queries = random_queries(20, seed=3)

    async def main() -> tuple[list[bytes], list[bytes]]:
        clock = clk.make_clock(True)
        async with _links(clock, config) as link:
            up: list[bytes] = []
            down: list[bytes] = []
            link.uplink.add_listener(lambda e: e.kind == "sent" and up.append(e.unit))
            link.downlink.add_listener(lambda e: e.kind == "sent" and down.append(e.unit))
            came_down: list[bytes] = []
            link.ground.on_packet = lambda t_s, packet: came_down.append(packet)
            for q in queries:
                link.ground.send(q)
            await link.spacecraft.wait_delivered(len(queries))
            for q in queries[:3]:  # and packets down, in the frames that carry the CLCW
                link.spacecraft.send_tm(q)
            await clock.sleep(1.0)
            assert [p for _, p in link.spacecraft.delivered] == queries
            assert came_down == queries[:3]
        return up, down

    cltus, cadus = clk.run(main, emulated=True)
    codec = config.uslp_codec()
    cltu_rx = CltuReceiver(config.cltu_coding)
    fdus = [codec.unpack(cltu_rx.receive(u) or b"") for u in cltus]
    assert {f.frame_type for f in fdus} == {TcFrameType.AD}
    assert all(f.scid == FDU_SCID for f in fdus)
    assert max(len(cltu_rx.receive(u) or b"") for u in cltus) <= config.tc_max_frame_length
    cadu_rx = CaduReceiver(config.tm_frame_length, config.cadu_coding)
    frames = []
    for cadu in cadus:
        decoded = cadu_rx.receive_cadu(cadu)
        assert decoded is not None
        frames.append(UslpFrame.unpack(decoded.frame, frame_length=config.tm_frame_length))
    assert {(f.scid, f.dest) for f in frames} == {(SCID_BASE, False)}
    assert any(f.is_oid for f in frames) and any(f.vcid == 0 for f in frames)
    clcws = [f.clcw() for f in frames]
    assert all(c is not None for c in clcws)  # the CLCW in every frame, idle ones too
    last = clcws[-1]
    assert last is not None and last.report_value == len({f.seq for f in fdus})  # all taken


def test_forged_and_replayed_uslp_frames_are_refused_before_farm_1():
    config = UplinkConfig(scid=SCID_BASE, protocol="uslp")  # SDLS on (the default)
    queries = random_queries(8, seed=4)

    async def main() -> None:
        clock = clk.make_clock(True)
        async with _links(clock, config) as link:
            ground, craft = link.ground, link.spacecraft
            on_air: list[bytes] = []
            link.uplink.add_listener(lambda e: e.kind == "sent" and on_air.append(e.unit))
            for q in queries[:4]:
                ground.send(q)
            await craft.wait_delivered(4)
            await clock.sleep(1.0)
            assert craft.guard is not None
            farm_before = (craft.farm.vr, dict(craft.farm.stats))
            codec = UslpCop1Codec(SCID_BASE)  # an attacker's, keyless
            forged = [
                TcFrame(FDU_SCID, 0, b"rogue", TcFrameType.BD, 0, 0),
                TcFrame(FDU_SCID, 0, b"rogue", TcFrameType.AD, craft.farm.vr, 0),
                TcFrame(FDU_SCID, 0, bytes([0x82, 0x00, 0x00]), TcFrameType.BC, 0),
            ]
            for frame in forged:
                link.uplink.send(ground.cltu.cltu(codec.pack(frame)))
            for unit in on_air[:2]:  # protected, accepted once already
                link.uplink.send(unit)
            await clock.sleep(2.0)
            stats = craft.guard.stats
            assert sum(v for k, v in stats.items() if k.startswith("refused_")) == 5, stats
            assert stats["refused_replay"] >= 1, stats
            assert (craft.farm.vr, dict(craft.farm.stats)) == farm_before
            assert craft.farm.state is FarmState.OPEN
            for q in queries[4:]:
                ground.send(q)
            await craft.wait_delivered(len(queries))
            assert [p for _, p in craft.delivered] == queries

    clk.run(main, emulated=True)


# -- the scenario end to end --------------------------------------------------------------


class Recorder:
    """A capture sink that keeps each unit, and a real pcap writer behind it."""

    def __init__(self, pcap: PcapCapture) -> None:
        self.pcap = pcap
        self.units: list[tuple[str, str, str, bytes]] = []

    def unit(self, layer: str, t_s: float, src: str, dst: str, data: bytes) -> None:
        self.units.append((layer, src, dst, data))
        self.pcap.unit(layer, t_s, src, dst, data)

    def close(self) -> None:
        self.pcap.close()


@pytest.fixture(scope="module")
def backend():
    b = make_backend("tiny")
    b.load()
    return b


@pytest.fixture(scope="module")
def uslp_run(backend):
    """The round trip test's queries on the default scenario with USLP and SCIDs from
    3000, SDLS on, every unit captured."""
    config = EmulationConfig(uplink=UplinkConfig(protocol="uslp"), scid_base=SCID_BASE)
    recorder = Recorder(PcapCapture(io.BytesIO(), scenario_by_name("default").epoch))

    async def main():
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=backend, capture=recorder)
        async with emu:

            async def one(k, t, target, stream, prompt):
                await clock.sleep_until(t)
                return await emu.client.ask(prompt, params(k), stream=stream, target=target)

            got = await clk_gather(one(k, *q) for k, q in enumerate(QUERIES))
        return got, emu

    got, emu = clk.run(main)
    recorder.close()
    return [a for a, _ in got], [t for _, t in got], emu, recorder


def test_uslp_answers_every_query_as_the_default_protocol_does(backend, uslp_run):
    answers, timelines, emu, _ = uslp_run
    base_answers, base_timelines, _ = run_scenario(backend)
    assert len(answers) == len(QUERIES) and all(t.complete for t in timelines)
    assert [a.text for a in answers] == [a.text for a in base_answers]
    assert [a.satellite for a in answers] == [a.satellite for a in base_answers]
    # the same routes: straight up, and relayed over the laser links
    assert [[h.kind for h in t.hops] for t in timelines] == [
        [h.kind for h in t.hops] for t in base_timelines
    ]
    assert "isl" in [h.kind for h in timelines[2].hops]
    assert emu.client.stats["answers"] == len(QUERIES) and not emu.client.unsolicited


def test_every_link_carries_uslp_frames_protected_by_sdls(uslp_run):
    _, _, emu, recorder = uslp_run
    scids = {emu.site.scid(name) for name in emu.satellites}
    assert min(scids) == SCID_BASE
    seen: dict[str, int] = {}
    for layer, src, dst, frame in recorder.units:
        assert layer in ("cltu", "tm_cadu", "aos_cadu", "uslp_frame", "space_packet"), layer
        if layer == "uslp_frame":  # on every link: the ends say which
            assert frame[0] >> 4 == USLP_VERSION, layer
            scid, vcid, _ = frame_ids(frame)
            assert scid in scids, (layer, scid)
            link = {"gs": "up", "sg": "down", "ss": "laser"}[src[0] + dst[0]]
            if link == "laser":  # a laser frame names its sender
                assert scid == emu.site.scid(src.removeprefix("sat:"))
            seen[link] = seen.get(link, 0) + 1
            if link == "down" and vcid == OID_VCID:
                seen["idle"] = seen.get("idle", 0) + 1
    assert seen.keys() == {"up", "down", "laser", "idle"}, seen
    assert recorder.pcap.nodes_document()["frames"] == "uslp"
    guards = emu.site.guards
    assert guards is not None
    counts = guards.counters()
    assert counts["protected"] > 0 and counts["verified"] > 0
    assert not [k for k in counts if k.startswith("refused_")], counts
    for kind in ("ground:", "sat:", "isl:"):
        made = [g for g in guards.made if g.end.startswith(kind)]
        assert sum(g.stats["verified"] for g in made) > 0, kind
        assert all(g.rx is None or g.rx.kind == "uslp" for g in made)


def test_a_uslp_run_with_sdls_off_answers_too(backend):
    config = EmulationConfig(
        uplink=UplinkConfig(protocol="uslp", sdls=SDLS_OFF), scid_base=SCID_BASE
    )

    async def main() -> list[object]:
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=backend)
        async with emu:
            assert emu.site.guards is None
            await clock.sleep_until(5300.0)
            pendings = [
                emu.client.submit("Straight up?", Params(max_new_tokens=4, seed=1)),
                emu.client.submit(
                    "Over the lasers?", Params(max_new_tokens=4, seed=2), target="CS-09"
                ),
            ]
            return list(await asyncio.gather(*(p.result() for p in pendings)))

    results = clk.run(main)
    assert len(results) == 2 and all(isinstance(r, tuple) for r in results)


def test_the_uplink_config_keeps_the_tm_tc_aos_frames_by_default():
    up = UplinkConfig()
    assert up.protocol == "tm-tc-aos"
    assert up.tc_config().scid == up.scid and up.fop_config().scid == up.scid
    uslp = replace(up, protocol="uslp", scid=SCID_BASE)
    assert uslp.tc_config().scid == FDU_SCID and uslp.fop_config().scid == FDU_SCID
    assert uslp.uslp_codec().scid == SCID_BASE
