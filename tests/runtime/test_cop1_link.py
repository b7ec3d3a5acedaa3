"""COP-1 on emulated links: 1,000 queries through FOP-1, CLTUs with bit errors and
losses, FARM-1 and reassembly, with the CLCW coming back in every TM frame's OCF.

Each run prints its figures (frames sent and retransmitted, latency percentiles):
``pytest -s tests/runtime/test_cop1_link.py`` shows them. Everything runs in emulated time.
"""

import gc
from dataclasses import replace

import pytest

from channels.errors import IndependentErrors
from channels.link import FixedConditions
from linkstack.ccsds.cop1.farm import Farm, FarmState
from linkstack.ccsds.cop1.fop import AlertCode, Directive, FopState, Response
from linkstack.ccsds.spp import SpacePacket
from linkstack.ccsds.tc import TcFrame, TcFrameType, TcReassembler
from linkstack.runtime import clock as clk
from linkstack.runtime.cop1_link import Cop1Link, Ground, SentPacket
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

QUERIES = 1000


@pytest.mark.parametrize(
    ("uplink_loss", "downlink_loss", "ber"),
    [(0.01, 0.01, 1e-5), (0.10, 0.10, 0.0), (0.30, 0.30, 1e-5)],
    ids=["loss 1%, BER 1e-5", "loss 10%", "loss 30%, BER 1e-5"],
)
def test_queries_delivered_exactly_once_in_order(uplink_loss, downlink_loss, ber):
    run = run_queries(
        QUERIES, uplink_loss=uplink_loss, downlink_loss=downlink_loss, ber=ber, seed=7
    )
    print("\n" + run.report())
    assert run.exactly_once_in_order, run.report()
    assert run.alerts == []
    s = run.summary()
    assert s["cltus_lost"] > 0 and s["tm_frames_lost"] > 0  # the losses really happened
    assert s["ad_retransmissions"] >= s["cltus_lost"] * 0.5
    if ber:
        assert s["cltus_corrupted"] > 0  # and the bit errors, corrected by BCH/RS


def test_contact_gap_holds_the_queue_and_delivers_after_acquisition():
    gap = (120.0, 720.0)  # ten minutes without either link
    run = run_queries(QUERIES, uplink_loss=0.05, downlink_loss=0.05, gap=gap, seed=3)
    print("\n" + run.report())
    assert run.exactly_once_in_order, run.report()
    s = run.summary()
    assert run.alerts == [] and s["suspends"] == 0
    assert s["t1_held"] > 0  # T1 expiries came out of contact and were held back
    # queries sent during the gap arrived after it, none was lost or given up
    during = [t0 for t0 in run.sent_t_s if gap[0] <= t0 < gap[1]]
    assert len(during) > 100
    arrivals = [t for t, _ in run.delivered]
    assert not [t for t in arrivals if gap[0] + 1.0 < t < gap[1]]
    assert s["latency_max_s"] >= 500.0


def test_a_low_transmission_limit_suspends_and_the_ground_resumes():
    config = UplinkConfig(transmission_limit=2, timeout_type=1, t1_initial_s=0.5)
    run = run_queries(
        150, uplink_loss=0.3, downlink_loss=0.3, seed=5, config=config, mean_interval_s=0.5
    )
    print("\n" + run.report())
    assert run.exactly_once_in_order, run.report()
    assert run.stats["suspends"] > 0 and run.stats["auto_resumes"] > 0
    assert run.alerts == []


def _links(clock, config=None, **kwargs):
    up = LossyModel(FixedConditions(UPLINK_RATE_BPS, DELAY_S), **kwargs)
    down = LossyModel(FixedConditions(DOWNLINK_RATE_BPS, DELAY_S), **kwargs)
    return Cop1Link(clock, up, down, config, IndependentErrors(seed=1), IndependentErrors(seed=2))


def test_lockout_over_the_link_is_reported_and_unlock_recovers():
    queries = random_queries(20, seed=4)

    async def main():
        clock = clk.make_clock(True)
        # the rogue frame stands for a valid one out of FARM-1's windows: no SDLS to stop it
        async with _links(clock, UplinkConfig(sdls=SdlsSettings(enabled=False))) as link:
            ground, craft = link.ground, link.spacecraft
            for q in queries[:10]:
                ground.send(q)
            await craft.wait_delivered(10)
            await clock.sleep(1.0)
            # a rogue Type-AD frame far outside FARM-1's windows, straight onto the uplink
            rogue = TcFrame(ground.config.scid, 0, b"rogue", TcFrameType.AD, 200, 0)
            link.uplink.send(ground.cltu.cltu(rogue.pack()))
            await clock.sleep(1.0)
            assert craft.farm.state is FarmState.LOCKOUT
            assert ground.last_clcw.lockout  # the CLCW in the TM frames says so
            assert [a.code for _, a in ground.alerts] == [AlertCode.LOCKOUT]
            assert ground.fop.state is FopState.INITIAL
            for q in queries[10:]:  # queued meanwhile: held until the service is back
                ground.send(q)
            await clock.sleep(2.0)
            assert len(craft.delivered) == 10
            actions = ground.directive(Directive.INITIATE_AD_WITH_UNLOCK)
            assert any(getattr(a, "response", None) is Response.ACCEPT for a in actions)
            await craft.wait_delivered(20)
            assert craft.farm.state is FarmState.OPEN and ground.fop.state is FopState.ACTIVE
            confirms = [r for _, r in ground.directives if r.response is Response.POSITIVE_CONFIRM]
            assert confirms[-1].directive is Directive.INITIATE_AD_WITH_UNLOCK
            return [p for _, p in craft.delivered]

    assert clk.run(main, emulated=True) == queries


def test_initiate_with_set_vr_and_tm_packets_coming_back():
    config = UplinkConfig(initiate=Directive.INITIATE_AD_WITH_SET_VR, initiate_value=250)
    queries = random_queries(30, seed=6)
    answers = [SpacePacket(0x42, bytes([i]) * 500).pack() for i in range(5)]

    async def main():
        clock = clk.make_clock(True)
        link = _links(clock, config, loss=0.05, seed=9)
        got_down = []
        link.ground.on_packet = lambda t, p: got_down.append(p)
        link.spacecraft.farm.vr = 13  # out of step with the ground until Set V(R)
        async with link:
            for q in queries:
                link.ground.send(q)
            await link.spacecraft.wait_delivered(len(queries))
            for a in answers:
                link.spacecraft.send_tm(a)
            await clock.sleep(5.0)
            tm = link.spacecraft.stats["tm_frames"]
            return [p for _, p in link.spacecraft.delivered], got_down, tm, clock.now(), link

    delivered, got_down, tm_frames, now, link = clk.run(main, emulated=True)
    assert delivered == queries
    assert link.ground.fop.vs == (250 + link.ground.fop.stats["ad_frames"]) % 256
    # idle frames keep the CLCW flowing: about one per interval, each read by the ground
    assert tm_frames >= now / config.clcw_interval_s - 1
    assert link.ground.stats["clcws"] >= 0.9 * tm_frames
    assert all(a in got_down for a in answers[:4])  # answers come down in the TM frames


def test_bd_frames_bypass_cop1_even_without_the_ad_service():
    config = UplinkConfig(initiate=None)  # FOP-1 stays in S6 (Initial)
    packets = random_queries(3, seed=8, max_data=2500)

    async def main():
        clock = clk.make_clock(True)
        async with _links(clock, config) as link:
            for p in packets:
                link.ground.send_bd(p)
            await link.spacecraft.wait_delivered(3)
            await clock.sleep(0.5)
            assert link.ground.fop.state is FopState.INITIAL
            farm = link.spacecraft.farm
            bd_frames = farm.stats["E6"]
            assert bd_frames >= 3 and link.ground.last_clcw.farm_b_counter == bd_frames % 4
            return [p for _, p in link.spacecraft.delivered]

    assert clk.run(main, emulated=True) == packets


def test_each_packet_carries_its_tag_to_every_cltu_that_radiates_and_to_its_ack():
    """The caller follows its packets through data, not tables: send() returns a
    SentPacket with the tag, each Type-AD CLTU that starts to radiate is reported to
    on_transmitted with the tag of the packet its frame belongs to (retransmissions
    flagged), and the SentPacket is acknowledged once FARM-1 has it all."""
    queries = random_queries(40, seed=11)

    async def main():
        clock = clk.make_clock(True)
        async with _links(clock, loss=0.2, seed=12) as link:
            reports = []
            link.ground.on_transmitted = reports.append
            sent = [link.ground.send(q, tag=("query", i)) for i, q in enumerate(queries)]
            await link.spacecraft.wait_delivered(len(queries))
            await clock.sleep(5.0)
            return sent, reports, link.ground.fop.stats

    sent, reports, fop_stats = clk.run(main, emulated=True)
    assert [s.tag for s in sent] == [("query", i) for i in range(len(queries))]
    assert all(s.acked_t_s is not None and not s.failed for s in sent)
    assert {r.tag for r in reports} == {s.tag for s in sent}
    # one report per AD CLTU that radiated: first transmissions and retransmissions
    assert sum(not r.retransmission for r in reports) == fop_stats["ad_frames"]
    assert sum(r.retransmission for r in reports) == fop_stats["ad_retransmissions"] > 0
    assert len({r.unit_id for r in reports}) == len(reports)
    # a packet's first CLTU radiated after it was sent, and before it was acknowledged
    first = {}
    for r in reports:
        first.setdefault(r.tag, r.t_s)
    assert all(s.sent_t_s <= first[s.tag] <= s.acked_t_s for s in sent)


def test_the_ends_keep_nothing_of_packets_acknowledged_and_taken():
    """A ground and a spacecraft that run for ever: once a packet is acknowledged the
    ground holds no record of it (its caller has the SentPacket), and a spacecraft whose
    packets someone takes keeps none of them."""
    queries = random_queries(50, seed=5)

    async def main():
        clock = clk.make_clock(True)
        async with _links(clock) as link:
            taken = []
            link.spacecraft.on_packet = lambda t_s, packet: taken.append(packet)
            sent = [link.ground.send(q) for q in queries]
            await link.spacecraft.wait_delivered(len(queries))
            await clock.sleep(5.0)  # the CLCW acknowledges the last frames
            acked = all(p.acked_t_s is not None for p in sent)
            del sent
            gc.collect()
            alive = sum(type(o) is SentPacket for o in gc.get_objects())  # no attribute access
            return taken, acked, alive, list(link.spacecraft.delivered)

    taken, acked, alive, kept = clk.run(main)
    assert taken == queries and acked
    assert alive == 0 and kept == []


def test_a_flight_virtual_channel_with_a_farm_on_board_gets_each_frame_once_in_order():
    """Flight software's virtual channel 1 with linkstack's FARM-1 (the radio's
    ``farm = "linkstack"``): an outside FOP-1 on VC 1 and linkstack's on VC 0 share the
    lossy uplink; the flight software gets VC 1's frames accepted once and in order,
    both FOPs see their own CLCWs (the OCF takes turns) and have everything
    acknowledged, and VC 0's packets still reach linkstack's end."""
    config = UplinkConfig(sdls=SdlsSettings(enabled=False))  # the outside FOP-1 has no keys
    ours, theirs = random_queries(20, seed=3), random_queries(20, seed=4)

    async def main():
        clock = clk.make_clock(True)
        async with _links(clock, config, loss=0.2) as link:
            flight: list[bytes] = []
            sc = link.spacecraft
            sc.flight_farms = {1: Farm(1, config.farm_window)}
            sc.on_other_vc = flight.append
            outside = Ground(replace(config, vcid=1), clock, link.uplink)
            link.downlink.connect(lambda d: (link.ground.on_downlink(d), outside.on_downlink(d)))
            outside.start()
            sent = [outside.send(p) for p in theirs] + [link.ground.send(p) for p in ours]
            while not all(s.acked_t_s is not None for s in sent):
                await clock.sleep(0.5)
            outside.close()
            return flight, sc, outside, link.ground

    flight, sc, outside, ground = clk.run(main, emulated=True)
    frames = [TcFrame.unpack(f) for f in flight]
    assert [f.seq for f in frames] == list(range(len(frames)))  # in order, each once
    assert all(f.vcid == 1 and f.frame_type is TcFrameType.AD for f in frames)
    joined = TcReassembler()  # the flight software's own reassembly of the segments
    assert [out.packet for f in frames for out in joined.push(f)] == theirs
    assert [p for _, p in sc.delivered] == ours  # VC 0: linkstack's, untouched
    assert sc.flight_farms[1].stats["accepted"] == len(frames)
    assert sc.flight_farms[1].stats["discarded"] > 0  # the loss made retransmissions
    assert outside.stats["clcws"] > 0 and ground.stats["clcws"] > 0
    assert outside.stats["clcw_other_vc"] > 0 and ground.stats["clcw_other_vc"] > 0  # turns
