"""The "earliest_completion" dispatch, in a constructed case over the default scenario:
two computing satellites at 10,950 s, CS-06 in view and CS-08 out of view (reached
over laser links), both sunlit since their eclipse, whose small battery (200 Wh, a
10 % depth-of-discharge limit) the umbra took under its floor. CS-08 came out of the
shadow ~940 s before CS-06, so its battery is back above the floor and CS-06's is
not. The "load" policy sends an "any" query straight up, to CS-06, where it waits
for power; "earliest_completion" weighs the power wait and relays it to CS-08, whose
answer is down sooner (over the laser links to a satellite in view)."""

from __future__ import annotations

import dataclasses

import pytest

from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from linkstack.runtime.config import DispatchConfig, EmulationConfig
from linkstack.runtime.emulation import Emulation
from linkstack.runtime.power_settings import PowerSettings, with_accelerator
from linkstack.runtime.scenario import ScenarioError, loads
from payloads.messages import Params
from payloads.power import PowerParams
from payloads.service import ServiceConfig
from payloads.timing import make_timing

SUBMIT_T_S = 10_950.0
TIMING = make_timing("jetson-agx-orin-64gb", "qwen3-0.6b", "bf16")
PARAMS = with_accelerator(PowerParams(battery_capacity_wh=200.0, dod_limit=0.1), TIMING)


def ask(backend, policy):
    config = EmulationConfig(
        service=ServiceConfig(inline=True, timing=TIMING),
        computing=("CS-06", "CS-08"),
        power=PowerSettings(enabled=True, params=PARAMS),
        dispatch=DispatchConfig(policy=policy),
    )

    async def main():
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=backend)
        async with emu:
            await clock.sleep_until(SUBMIT_T_S)
            routes = emu.contacts.uplink_routes(("CS-06", "CS-08"), SUBMIT_T_S)
            expected = {
                sat: emu.mcc.expect.completion_t_s(route, 0, now_t_s=SUBMIT_T_S)
                for sat, route in routes.items()
            }
            pending = emu.client.submit("Is tile 9 cloudy?", Params(max_new_tokens=8))
            answer, timeline = await pending.result()
        return answer, timeline, routes, expected

    return clk.run(main)


def test_the_earliest_expected_completion_takes_the_power_wait_into_account(tiny):
    answer_load, tl_load, routes, expected = ask(tiny, "load")
    # the load policy's rule: straight up before relayed
    assert routes["CS-06"].path == ("CS-06",) and len(routes["CS-08"].path) > 1
    assert answer_load.satellite == "CS-06"
    assert tl_load.leg_durations_s()["power_wait"] > 100.0
    # what the ground expects: CS-06 not before its battery is back at the floor,
    # CS-08 at once (no answer seen yet: the profile's prior, under a second here)
    assert expected["CS-08"] == pytest.approx(SUBMIT_T_S, abs=1.0)
    assert expected["CS-06"] > SUBMIT_T_S + 100.0
    assert expected["CS-06"] == pytest.approx(tl_load.inference_start_t_s, abs=1.0)

    answer, timeline, _, _ = ask(tiny, "earliest_completion")
    assert answer.satellite == "CS-08"
    assert timeline.leg_durations_s()["power_wait"] == pytest.approx(0.0, abs=1e-6)
    assert timeline.total_s < tl_load.total_s - 100.0


def test_the_policy_is_checked_and_read_from_the_ground_table():
    with pytest.raises(ConfigError, match="policy"):
        DispatchConfig(policy="fastest")
    assert loads("").emulation.dispatch.policy == "load"
    chosen = loads('[ground]\ndispatch = "earliest_completion"\n').emulation.dispatch
    assert chosen == dataclasses.replace(DispatchConfig(), policy="earliest_completion")
    with pytest.raises(ScenarioError) as err:
        loads('[ground]\ndispatch = "fastest"\n')
    assert err.value.key == "ground.dispatch" and "earliest_completion" in err.value.rule


TIMING_8B = make_timing("reference-744", "qwen3-8b", "int8")


def burst_of(backend, n, *, timing):
    """``n`` "any" queries at once at SUBMIT_T_S under earliest_completion, power off,
    CS-06 in view and CS-08 relayed; which satellite answered each, and the prior."""
    config = EmulationConfig(
        service=ServiceConfig(inline=True, timing=timing),
        computing=("CS-06", "CS-08"),
        dispatch=DispatchConfig(policy="earliest_completion"),
    )

    async def main():
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=backend)
        async with emu:
            await clock.sleep_until(SUBMIT_T_S)
            route = emu.contacts.uplink_routes(("CS-06",), SUBMIT_T_S)["CS-06"]
            alone = emu.mcc.expect.completion_t_s(route, 0, now_t_s=SUBMIT_T_S)
            behind_two = emu.mcc.expect.completion_t_s(route, 2, now_t_s=SUBMIT_T_S)
            pendings = [
                emu.client.submit(f"Is tile {k} cloudy?", Params(max_new_tokens=8))
                for k in range(n)
            ]
            answers = [(await p.result())[0].satellite for p in pendings]
        return answers, emu.mcc.expect.prior_s, behind_two - alone

    return clk.run(main)


def test_before_any_answer_the_queries_ahead_cost_the_profiles_compute_time(tiny):
    """Queries that waited on the ground go up together when a pass opens: before any
    answer has taught the ground a compute time, the timing profile's time for a query
    of the default size stands in, so they spread instead of all going straight up to
    the one satellite in view (whose queue looked free: the reference study's onboard
    queue of Qwen3-8B queries went from 22 s to 17 s mean with it)."""
    answers, prior_s, two_ahead_s = burst_of(tiny, 6, timing=TIMING_8B)
    assert prior_s == pytest.approx(TIMING_8B.generation_s(64, Params().max_new_tokens)[1])
    assert prior_s > 1.0
    assert two_ahead_s == pytest.approx(2 * prior_s)
    assert set(answers) == {"CS-06", "CS-08"}
    # on the host's stopwatch nothing is known before the first answer: all straight up
    answers, prior_s, two_ahead_s = burst_of(tiny, 6, timing=None)
    assert prior_s == 0.0 and two_ahead_s == 0.0
    assert set(answers) == {"CS-06"}
