"""The ground under load, in emulated time over the default scenario with the tiny model:
queries spread over the computing satellites by the ground's own count of queries in
flight, paced by what each satellite holds, busy refusals retried, and the only final
refusals the ground's own (a full ground queue, a deadline).

``pytest -s tests/runtime/test_dispatch.py`` prints the figures of each run.
"""

import asyncio
import dataclasses
from collections import Counter

import pytest

from linkstack.runtime import clock as clk
from linkstack.runtime.config import DispatchConfig
from linkstack.runtime.emulation import Emulation, EmulationConfig
from payloads.backends import Backend
from payloads.client import ClientConfig, QueryRefusedError
from payloads.messages import Params
from payloads.service import ServiceConfig

BURST_T_S = 10_935.0  # CS-06 and CS-07 in view (their passes usable for minutes more)
NO_CONTACT_T_S = 1000.0  # nothing in view before 5263 s


class SlowerOnboard(Backend):
    """The tiny model, run for real, on satellites whose compute time is a fixed cost
    per answer and per token (``factor`` x 10 ms + 1 ms a token) instead of this
    machine's stopwatch, so that compute outweighs the COP-1 uplink as it does with
    real models, and the shares do not follow the load of the machine running the
    test (a stopwatch under load made one satellite's share fall short)."""

    def __init__(self, inner: Backend, factor: float) -> None:
        self.inner = inner
        self.factor = factor
        self.name, self.model = inner.name, inner.model
        self.random_weights = inner.random_weights

    def load(self):
        return self.inner.load()

    def count_tokens(self, prompt, thinking=False):
        return self.inner.count_tokens(prompt, thinking)

    @property
    def max_prompt_tokens(self):
        return self.inner.max_prompt_tokens

    def generate(self, prompt, params, on_text=None):
        g = self.inner.generate(prompt, params, on_text)
        ttft_s = self.factor * 0.010
        generate_s = ttft_s + self.factor * 0.001 * g.completion_tokens
        return dataclasses.replace(g, ttft_s=ttft_s, generate_s=generate_s)

    def close(self):
        self.inner.close()


def burst(backend, config, at_t_s, n, *, target=None, within_s=1.0, tokens=2):
    """Submit ``n`` queries over ``within_s`` from ``at_t_s``; wait for every result.
    Returns (results: answer or QueryRefusedError, end t_s, emulation, routes at_t_s)."""

    async def main():
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=backend)
        async with emu:
            await clock.sleep_until(at_t_s)
            routes = emu.contacts.uplink_routes(emu.contacts.satellites, at_t_s)
            pendings = []
            for k in range(n):
                await clock.sleep_until(at_t_s + within_s * k / n)
                params = Params(max_new_tokens=tokens, temperature=0.7, seed=k)
                prompt = f"Query {k}: the cloud cover over tile {k}?"
                pendings.append(emu.client.submit(prompt, params, target=target))
            results = await asyncio.gather(*(p.result() for p in pendings), return_exceptions=True)
            end_t_s = clock.now()
        return results, end_t_s, emu, routes

    results, end_t_s, emu, routes = clk.run(main)
    for r in results:
        if not isinstance(r, tuple | QueryRefusedError):
            raise r
    return results, end_t_s, emu, routes


def answers_of(results):
    return [r[0] for r in results if isinstance(r, tuple)]


def test_a_burst_of_queries_at_once_is_spread_paced_and_answered_once_each(tiny):
    """400 queries within 1 s (more than every satellite in reach holds at once), two
    satellites in view: every computing satellite in reach (straight up or over laser
    links) gets a share, none is sent more than it holds, nothing is refused, each
    query is run once and answered once, and the whole takes what the busiest
    satellite's compute takes."""
    n = 400
    backend = SlowerOnboard(tiny, 20.0)
    results, end_t_s, emu, routes = burst(backend, EmulationConfig(), BURST_T_S, n)
    answers = answers_of(results)
    in_view = [s for s in emu.contacts.satellites if emu.contacts.usable_pass(s, BURST_T_S)]
    assert len(in_view) >= 2
    stats = emu.stats()
    client, services, mcc = stats["client"], stats["services"], stats["mcc"]
    # every answer, none busy, each exactly once (run once on board, kept once on the ground)
    assert len(answers) == n and len({a.id for a in answers}) == n
    assert all(t.complete and not t.error for t in emu.client.timelines)
    assert client["answers"] == n and client["errors"] == 0 and client["busy"] == 0
    assert services["refused_busy"] == 0 and mcc["busy"] == 0
    assert services["inferences"] == n and services["answers"] == n
    assert services["duplicate_queries"] == 0 and not emu.client.unsolicited
    # spread over every computing satellite in reach, evenly
    per_sat = Counter(a.satellite for a in answers)
    assert set(per_sat) == set(routes) == set(emu.contacts.satellites)
    assert min(per_sat.values()) >= 0.7 * n / len(routes)
    # the total is the busiest satellite's compute, and little more
    compute_s = Counter()
    for a in answers:
        compute_s[a.satellite] += a.times.inference_end_t_s - a.times.inference_start_t_s
    busiest_s = max(compute_s.values())
    total_s = end_t_s - BURST_T_S
    assert busiest_s <= total_s <= 1.1 * busiest_s + 2.0
    assert emu.mcc.waiting == 0 and all(emu.mcc.in_flight(s) == 0 for s in per_sat)
    print(
        f"\n{n} queries in 1 s at {BURST_T_S:g} s, in view {in_view}: {len(answers)} answered, "
        f"0 busy, over {len(per_sat)} satellites ({min(per_sat.values())}-"
        f"{max(per_sat.values())} each); total {total_s:.1f} s, busiest satellite's compute "
        f"{busiest_s:.1f} s, mean {sum(compute_s.values()) / len(compute_s):.1f} s; "
        f"{mcc['relayed']} of {mcc['uplinked']} uplinks relayed"
    )


def test_light_load_chooses_as_before_the_satellite_whose_pass_lasts_longest(tiny):
    results, _, emu, _ = burst(tiny, EmulationConfig(), BURST_T_S, 1)
    best = emu.contacts.uplink_route(None, BURST_T_S)
    assert answers_of(results)[0].satellite == best.first == "CS-07"
    assert [h.kind for h in emu.client.timelines[0].hops] == ["uplink", "downlink"]


# The ground believes a satellite holds 40 queries; it holds 1 + 4. Compute is a
# fixed 200 ms + 20 ms a token (SlowerOnboard): with the host's stopwatch, a fast or a
# quiet machine answered each query before the next came up and none was refused busy.
SLOW = 20.0
OVERCOUNT = EmulationConfig(
    service=ServiceConfig(concurrency=1, max_queued=4),
    dispatch=DispatchConfig(capacity=40, busy_hold_s=1.0),
)


def test_busy_refusals_go_back_to_the_ground_queue_and_elsewhere(tiny):
    config = dataclasses.replace(OVERCOUNT, computing=("CS-06", "CS-07"))
    results, _, emu, _ = burst(SlowerOnboard(tiny, SLOW), config, BURST_T_S, 60, within_s=0.0)
    answers = answers_of(results)
    stats = emu.stats()
    assert stats["services"]["refused_busy"] > 0 and stats["mcc"]["requeued_busy"] > 0
    assert len(answers) == 60 and len({a.id for a in answers}) == 60
    assert {a.satellite for a in answers} == {"CS-06", "CS-07"}
    assert stats["client"]["answers"] == 60 and stats["client"]["errors"] == 0
    assert stats["services"]["answers"] == 60  # a refused id, sent again, is run once
    print(f"\nbusy refusals {stats['services']['refused_busy']}, all retried: 60/60 answered")


def test_a_named_target_that_is_busy_is_tried_again_with_backoff(tiny):
    backend = SlowerOnboard(tiny, SLOW)
    results, _, emu, _ = burst(backend, OVERCOUNT, BURST_T_S, 30, target="CS-09", within_s=0.0)
    answers = answers_of(results)
    stats = emu.stats()
    assert stats["services"]["refused_busy"] > 0
    assert len(answers) == 30 and {a.satellite for a in answers} == {"CS-09"}
    assert stats["services"]["answers"] == 30 and stats["client"]["errors"] == 0
    # later copies of a busy refusal (repeated until acknowledged) change nothing
    assert stats["mcc"]["busy"] == stats["mcc"]["requeued_busy"]


def test_a_full_ground_queue_refuses_new_queries_and_says_so(tiny):
    config = EmulationConfig(dispatch=DispatchConfig(max_waiting=5))
    results, _, emu, _ = burst(tiny, config, NO_CONTACT_T_S, 8)
    refused = [r for r in results if isinstance(r, QueryRefusedError)]
    assert len(answers_of(results)) == 5 and len(refused) == 3
    assert all(r.error.code == "ground_queue_full" and r.error.satellite == "" for r in refused)
    assert "5 queries already wait on the ground" in refused[0].error.detail
    assert emu.stats()["mcc"]["refused_ground_queue_full"] == 3


def test_a_query_past_its_deadline_is_refused_and_forgotten_by_the_ground(tiny):
    config = EmulationConfig(client=ClientConfig(deadline_s=600.0))
    results, end_t_s, emu, _ = burst(tiny, config, NO_CONTACT_T_S, 3)
    assert all(isinstance(r, QueryRefusedError) for r in results)
    assert {r.error.code for r in results} == {"deadline_exceeded"}
    assert "still waiting on the ground" in results[0].error.detail
    assert end_t_s == pytest.approx(NO_CONTACT_T_S + 600.0, abs=1.0)
    assert emu.mcc.waiting == 0 and emu.stats()["mcc"]["uplinked"] == 0
