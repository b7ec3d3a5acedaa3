"""Where queries for "any satellite" go: the dispatch ranks the satellites in view first
and searches the laser graph for relayed ones only when one could rank better; its
picks must be those of the whole ranking (every reachable satellite, :func:`spread_rank`)
at random instants, loads, holds and capacities, on a part of planned-2800."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.scenarios import planned_scenario, some_of
from linkstack.runtime.dispatch_plan import DispatchPlan
from linkstack.runtime.routing import ContactState, spread_rank

SPAN_S = 4 * 3600.0


@pytest.fixture(scope="module")
def contacts() -> ContactState:
    whole = planned_scenario()
    keep = [i for i, n in enumerate(whole.satellite_names) if n.startswith(("LI800-", "TR700-"))]
    return ContactState(some_of(whole, keep[::2], "part"), chunk_s=1800.0)


def whole_ranking(contacts, in_flight, held, capacity, now, count):
    """The picks by the plain rule: each time the lowest rank among every reachable
    satellite with room, its load counted as the query is sent there."""
    spread = contacts.uplink_routes(in_flight, now)
    out = []
    for k in range(count):
        room = [s for s in spread if len(in_flight[s]) < capacity and held.get(s, -1.0) <= now]
        if not room:
            out.append(None)
            continue
        best = min(room, key=lambda s: spread_rank(contacts, spread[s], len(in_flight[s])))
        in_flight[best][f"w{k}"] = now
        out.append(spread[best])
    return out


@settings(max_examples=25, deadline=None)
@given(st.floats(0.0, SPAN_S), st.integers(0, 2**32), st.integers(1, 4))
def test_picks_are_those_of_the_whole_ranking(contacts, now, seed, capacity):
    rnd = random.Random(seed)
    names = contacts.satellites
    computing = [n for n in names if rnd.random() < 0.8]
    loads = {n: rnd.choice((0, 0, 0, 1, 2, capacity)) for n in computing}
    if rnd.random() < 0.5:  # the satellites in view busier than those a relay reaches
        usable = contacts.usable_passes(now)
        loads |= {n: rnd.choice((1, capacity)) for n in computing if n in usable}
    held = {n: now + 10.0 for n in computing if rnd.random() < 0.1}
    count = rnd.randrange(1, 40)

    def fresh():
        return {n: {f"q{n}{i}": 0.0 for i in range(min(loads[n], capacity))} for n in computing}

    expected = whole_ranking(contacts, fresh(), held, capacity, now, count)
    in_flight = fresh()
    plan = DispatchPlan(contacts, in_flight, held, capacity, now)
    got = []
    for k in range(count):
        if plan.full:
            got.append(None)
            continue
        route = plan.pick()
        plan.full = route is None
        if route is not None:
            in_flight[route.target][f"w{k}"] = now  # as mission control sends it
        got.append(route)
    assert got == expected


def _synthetic_completion(rnd, now, computing):
    """A floor (10 s for a relay, 5 s a query ahead and 5 s of compute: whole seconds,
    so that many tie and the rank decides, a relayed idle one tying with a busier one
    in view that waits 5 s more) and an expected completion at or after it:
    some answers at their floor, some later by a battery's wait or a wait for the way
    down, some never."""
    extra = {n: rnd.choice((0.0, 0.0, 0.0004, 5.0, 10.0, 400.0, None)) for n in computing}

    def floor(route, load):
        return now + (10.0 if route.relay_s > 0 else 0.0) + load * 5.0 + 5.0

    def completion(route, load):
        more = extra[route.target]
        return None if more is None else floor(route, load) + more

    return floor, completion


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, SPAN_S), st.integers(0, 2**32))
def test_the_earliest_completion_weighs_from_the_floor_and_picks_as_weighing_all(
    contacts, now, seed
):
    rnd = random.Random(seed)
    # a few computing satellites, so that the best is often not the first weighed
    computing = rnd.sample(contacts.satellites, rnd.randrange(2, 25))
    loads = {n: rnd.choice((0, 0, 1, 2)) for n in computing}
    if rnd.random() < 0.5:  # the satellites in view busier than those a relay reaches
        loads |= {n: rnd.choice((1, 2)) for n in computing if n in contacts.usable_passes(now)}
    in_flight = {n: {f"q{n}{i}": 0.0 for i in range(loads[n])} for n in computing}
    held = {n: now + 10.0 for n in computing if rnd.random() < 0.1}
    floor, completion = _synthetic_completion(rnd, now, computing)
    calls = []

    def counted(route, load):
        calls.append(route.target)
        return completion(route, load)

    spread = contacts.uplink_routes(in_flight, now)
    room = [s for s in spread if len(in_flight[s]) < 4 and held.get(s, -1.0) <= now]
    weighed = [
        ((round(done, 3), spread_rank(contacts, spread[s], len(in_flight[s]))), s)
        for s in room
        if (done := completion(spread[s], len(in_flight[s]))) is not None
    ]
    expected = spread[min(weighed)[1]] if weighed else None
    plan = DispatchPlan(contacts, in_flight, held, 4, now, counted, floor)
    assert plan.pick() == expected
    assert len(calls) <= len(room)


def test_the_earliest_completion_weighs_few_of_many():
    """On half of planned-2800 (1,200 satellites, 405 in view) with every answer at
    its floor, the first weighed is the best: one weighing, not 1,200."""
    part = ContactState(
        some_of(planned_scenario(), list(range(0, 2400, 2)), "half"), chunk_s=1800.0
    )
    now = 1000.0
    in_flight = {n: {} for n in part.satellites}
    calls = []

    def completion(route, load):
        calls.append(route.target)
        return now + route.relay_s + 5.0

    plan = DispatchPlan(
        part, in_flight, {}, 4, now, completion, lambda r, load: now + r.relay_s + 5.0
    )
    route = plan.pick()
    in_view = part.usable_passes(now)
    assert route is not None and route.target in in_view
    assert len(in_view) == 405 and calls == [route.target]
