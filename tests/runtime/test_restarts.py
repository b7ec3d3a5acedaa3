"""A satellite that restarts, seen from the ground, in emulated time (issue 13, item 5).

The ground's COP-1 channel tells a restart from the CLCW alone (FARM-1 is not where
FOP-1 left it), and never takes its own start for one; mission control then sends
every query in flight there again at once, same id, and each is answered once. The
same with real processes (SIGKILL of the satellite daemon, of the channel daemon):
tests/daemon/test_restarts.py.
"""

import asyncio
from dataclasses import replace

from channels.errors import IndependentErrors
from channels.link import FixedConditions
from linkstack.ccsds.cop1.farm import Farm
from linkstack.ccsds.cop1.fop import FopState
from linkstack.runtime import clock as clk
from linkstack.runtime.cop1_link import ClcwResumed, Cop1Link, FarmReset
from linkstack.runtime.emulation import Emulation, EmulationConfig
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.tools.bench.cop1 import (
    DELAY_S,
    DOWNLINK_RATE_BPS,
    UPLINK_RATE_BPS,
    LossyModel,
    random_queries,
)
from payloads.messages import Params
from tests.runtime.test_dispatch import SlowerOnboard

RESYNC = UplinkConfig(initiate=None, resync_from_clcw=True)  # as the ground daemon runs it
IN_VIEW_T_S = 10_935.0  # CS-06 and CS-07 in view, their passes usable for minutes more


def _link(clock):
    up = LossyModel(FixedConditions(UPLINK_RATE_BPS, DELAY_S))
    down = LossyModel(FixedConditions(DOWNLINK_RATE_BPS, DELAY_S))
    return Cop1Link(clock, up, down, RESYNC, IndependentErrors(seed=1), IndependentErrors(seed=2))


def test_a_farm_that_starts_over_is_one_restart_and_cop1_resyncs():
    """FARM-1 replaced by a fresh one (the spacecraft rebooted) with everything sent
    acknowledged: one FarmReset (V(R) 0 is outside [NN(R), V(S)], both V(S)), the
    resync, and what is sent next arrives."""
    queries = random_queries(20, seed=5)

    async def main():
        clock = clk.make_clock(True)
        async with _link(clock) as link:
            ground, craft = link.ground, link.spacecraft
            signals = []
            ground.on_far_end = signals.append
            for q in queries[:10]:
                ground.send(q)
            await craft.wait_delivered(10)
            await clock.sleep(2.0)
            assert ground.fop.state is FopState.ACTIVE and not ground.busy
            vs = ground.fop.vs
            craft.farm = Farm(craft.config.vcid, craft.config.farm_window)  # the reboot
            await clock.sleep(2.0)
            for q in queries[10:]:
                ground.send(q)
            await craft.wait_delivered(20)
            await clock.sleep(2.0)
            return signals, ground, craft, vs

    signals, ground, craft, vs = clk.run(main, emulated=True)
    resets = [s for s in signals if isinstance(s, FarmReset)]
    assert len(resets) == 1, signals
    assert (resets[0].reason, resets[0].report_value, resets[0].vs) == ("vr_out_of_window", 0, vs)
    assert not [s for s in signals if isinstance(s, ClcwResumed)]  # the CLCW never stopped
    assert [p for _, p in craft.delivered] == queries
    assert ground.stats["sync_set_vr"] == 2 and ground.fop.state is FopState.ACTIVE


def test_a_ground_that_starts_against_a_farm_already_going_sees_no_restart():
    """A fresh ground (V(S) unknown) and a FARM-1 at V(R) = 77 from a previous ground:
    it syncs with Set V(R), and that is no restart of the spacecraft."""
    queries = random_queries(5, seed=6)

    async def main():
        clock = clk.make_clock(True)
        link = _link(clock)
        link.spacecraft.farm.vr = 77
        signals = []
        link.ground.on_far_end = signals.append
        async with link:
            for q in queries:
                link.ground.send(q)
            await link.spacecraft.wait_delivered(len(queries))
            await clock.sleep(2.0)
            return signals, link.ground

    signals, ground = clk.run(main, emulated=True)
    assert signals == []
    frames = ground.stats["AD_sent"]
    assert ground.stats["sync_set_vr"] == 1 and ground.fop.vs == (77 + frames) % 256


def test_a_restart_with_frames_outstanding_is_one_restart():
    """The reboot while frames are still unacknowledged (a long uplink queue): one
    restart, whatever the CLCW says first (Lockout, or V(R) out of the window)."""
    queries = random_queries(40, seed=7)

    async def main():
        clock = clk.make_clock(True)
        async with _link(clock) as link:
            ground, craft = link.ground, link.spacecraft
            signals = []
            ground.on_far_end = signals.append
            for q in queries:
                ground.send(q)
            await craft.wait_delivered(5)
            assert ground.fop.outstanding
            craft.farm = Farm(craft.config.vcid, craft.config.farm_window)
            await clock.sleep(20.0)
            return signals, ground

    signals, ground = clk.run(main, emulated=True)
    assert len([s for s in signals if isinstance(s, FarmReset)]) == 1, signals
    assert ground.fop.state is FopState.ACTIVE  # in step again


def _reboot_mid_inference(backend, *, reboot: bool, protocol: str = "tm-tc-aos"):
    """Four queries to CS-06, run one at a time (each 300 times slower than here:
    seconds of compute); CS-06 rebooted once the first answer is down (the next on
    the model, the others queued). The answers, the instant of the reboot, the stats.
    ``protocol`` "uslp": USLP frames on every link, SCIDs from 3000."""
    uslp = protocol == "uslp"
    config = EmulationConfig(
        uplink=replace(RESYNC, protocol=protocol), scid_base=3000 if uslp else 0x40
    )

    async def main():
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=SlowerOnboard(backend, 300.0))
        async with emu:
            await clock.sleep_until(IN_VIEW_T_S)
            pendings = [
                emu.client.submit(f"Reboot {k}", Params(max_new_tokens=8, seed=k), target="CS-06")
                for k in range(4)
            ]
            await pendings[0].result()
            reboot_t_s = clock.now()
            service = emu.satellites["CS-06"].service
            assert service is not None and service.queued >= 2  # in flight on board
            if reboot:
                await emu.satellites["CS-06"].restart()
            results = await asyncio.gather(*(p.result() for p in pendings[1:]))
            return [a for a, _ in results], reboot_t_s, emu.stats(), emu.client

    return clk.run(main)


def test_queries_in_flight_on_a_rebooted_satellite_are_sent_again_at_once(tiny):
    answers, reboot_t_s, stats, client = _reboot_mid_inference(tiny, reboot=True)
    mcc, services = stats["mcc"], stats["services"]
    assert mcc["satellite_restarts"] == 1 and mcc["resent_after_restart"] == 3
    assert client.stats["retries"] == 0  # not the client's retry (900 s)
    # each answered once, by the new service, within the compute it takes again
    assert len({a.id for a in answers}) == 3 and client.stats["duplicates"] == 0
    compute_s = max(a.times.generate_s for a in answers)
    late_s = max(t.answer_on_ground_t_s for t in client.timelines) - reboot_t_s
    assert late_s < 3 * compute_s + 30.0, (late_s, compute_s)
    assert stats["satellites"]["restarts"] == 1
    assert services["inferences"] == 3  # the new service ran the three again
    print(f"\nanswered {late_s:.1f} s after the reboot (compute {compute_s:.1f} s a query)")


def test_a_rebooted_satellite_is_seen_in_the_clcw_over_uslp_too(tiny):
    """The restart on board (a new FARM-1 and a new USLP downlink channel) is read from
    the CLCW in the USLP frames' OCF, and the queries in flight are sent again."""
    answers, _, stats, client = _reboot_mid_inference(tiny, reboot=True, protocol="uslp")
    assert stats["mcc"]["satellite_restarts"] == 1 and stats["mcc"]["resent_after_restart"] == 3
    assert len({a.id for a in answers}) == 3 and client.stats["duplicates"] == 0
    assert stats["services"]["inferences"] == 3


def test_without_the_reboot_nothing_is_sent_again(tiny):
    _, _, stats, client = _reboot_mid_inference(tiny, reboot=False)
    assert stats["mcc"]["satellite_restarts"] == 0 and stats["mcc"]["resent_after_restart"] == 0
    assert client.stats["retries"] == 0 and stats["services"]["duplicate_queries"] == 0
