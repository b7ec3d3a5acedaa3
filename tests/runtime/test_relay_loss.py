"""A query lost on a laser link, in emulated time over the default scenario with the
tiny model: laser links and relays have no retransmission of their own, so the ground
sends the query again (same id) as soon as its answer is overdue against the round
trip its route makes expected, not after the flat ``retry_after_s`` (900 s); and a
query that is only slow (a queue on board) is not sent again.

This is how a ``bench soak`` of the daemons lost two relayed queries for CS-08 in an
hour: each had one hop open in the trace and no answer hop (lost before the service),
and the flat retry came after the bench had stopped waiting.
"""

import asyncio
import dataclasses

import pytest

from linkstack.runtime import clock as clk
from linkstack.runtime.emulation import Emulation, EmulationConfig
from payloads.backends import GenerationParams, make_backend
from payloads.messages import Params

RELAYED_T_S = 5310.0  # CS-06 in view over Mohe, CS-09 out of view: up to CS-06, 3 laser hops


class Fade:
    """A link model that loses every unit emitted in [start, stop) (a pointing fade)."""

    def __init__(self, base, start: float, stop: float) -> None:
        self.base, self.start, self.stop = base, start, stop

    def conditions(self, t_s):
        cond = self.base.conditions(t_s)
        if self.start <= t_s < self.stop:
            return dataclasses.replace(cond, up=False, reason="fade")
        return cond


@pytest.fixture(scope="module")
def backend():
    b = make_backend("tiny")
    b.load()
    b.generate("warm up", GenerationParams(2))
    return b


def ask_cs09(backend, instants, fade=None):
    """Queries for CS-09 (relayed) submitted at ``instants``; ``fade`` (start, stop)
    on the laser link CS-08 -> CS-09. Returns (timelines, emulation)."""

    async def main():
        clock = clk.make_clock(True)
        emu = Emulation(clock, EmulationConfig(), backend=backend)
        async with emu:
            if fade is not None:
                link = next(x for x in emu.links if x.name == "isl CS-08->CS-09")
                link.model = Fade(link.model, *fade)

            async def one(k, t_s):
                await clock.sleep_until(t_s)
                params = Params(max_new_tokens=4, seed=k)
                return await emu.client.ask(f"Relayed query {k}?", params, target="CS-09")

            got = await asyncio.gather(*(one(k, t) for k, t in enumerate(instants)))
        return [t for _, t in got], emu

    return clk.run(main)


def test_a_query_lost_on_a_laser_link_is_sent_again_when_its_answer_is_overdue(backend):
    # the first query teaches the ground CS-09's compute time; the second's only copy
    # is lost between CS-08 and CS-09
    second_t_s = RELAYED_T_S + 10.0
    timelines, emu = ask_cs09(backend, [RELAYED_T_S, second_t_s], (second_t_s, second_t_s + 2))
    stats = emu.stats()
    assert stats["links"]["isl_dropped_fade"] >= 1
    first, second = timelines
    assert first.complete and first.total_s < 5.0
    assert second.complete and second.satellite == "CS-09"
    # sent again once, some 30 s (answer_margin_s) after its answer was due: before the
    # fix it waited for retry_after_s, 900 s
    assert emu.client.stats["resent_overdue"] == 1 and emu.client.stats["retries"] == 0
    assert 20.0 < second.total_s < 60.0
    assert emu.client.stats["answers"] == 2 and stats["services"]["inferences"] == 2


def test_a_query_only_slow_on_board_is_not_sent_again(backend):
    # sixteen at once for CS-09 (with the first, what its service holds): the last
    # waits behind fifteen on board, and the ground's expected round trip counts them
    # (it had them in flight at dispatch)
    instants = [RELAYED_T_S] + [RELAYED_T_S + 10.0] * 16
    timelines, emu = ask_cs09(backend, instants)
    assert all(t.complete for t in timelines)
    assert emu.client.stats["resent_overdue"] == 0 and emu.client.stats["retries"] == 0
    assert emu.stats()["services"]["duplicate_queries"] == 0


def test_the_ground_says_where_a_lost_query_is_and_when_its_answer_was_due(backend):
    """``whereabouts`` (the daemons' ``GET /pending``): the uplink acknowledged, the
    laser hop that never arrived still open; ``answer_due_t_s`` from the route."""
    second_t_s = RELAYED_T_S + 10.0

    async def main():
        clock = clk.make_clock(True)
        emu = Emulation(clock, EmulationConfig(), backend=backend)
        async with emu:
            link = next(x for x in emu.links if x.name == "isl CS-08->CS-09")
            link.model = Fade(link.model, second_t_s, second_t_s + 2.0)
            await clock.sleep_until(RELAYED_T_S)
            assert emu.mcc.answer_due_t_s("none such") is None
            await emu.client.ask("Teach me.", Params(max_new_tokens=4), target="CS-09")
            await clock.sleep_until(second_t_s)
            pending = emu.client.submit("Where?", Params(max_new_tokens=4), target="CS-09")
            await clock.sleep_until(second_t_s + 5.0)
            where = emu.mcc.whereabouts(pending.id)
            await pending.result()
        return where, pending.timeline

    where, timeline = clk.run(main)
    assert where["target"] == "CS-09" and where["in_flight_on"] == ["CS-09"]
    assert not where["queued"]
    assert [(t["satellite"], t["on_ground"]) for t in where["transfers"]] == [("CS-06", False)]
    hops = [(h["kind"], h["src"], h["dst"], h["end_t_s"] is None) for h in where["hops"]]
    assert hops == [
        ("uplink", hops[0][1], "sat:CS-06", False),
        ("isl", "sat:CS-06", "sat:CS-07", False),
        ("isl", "sat:CS-07", "sat:CS-08", False),
        ("isl", "sat:CS-08", "sat:CS-09", True),  # lost in the fade: never arrived
    ]
    due = where["answer_due_t_s"]
    margin_s = EmulationConfig().dispatch.answer_margin_s
    # in contact all along: due a few seconds after it left, plus the margin; sent
    # again then, and answered
    assert second_t_s + margin_s < due < second_t_s + margin_s + 5.0
    assert due < timeline.answer_on_ground_t_s < due + 5.0
