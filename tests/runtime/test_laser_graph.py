"""The live laser graph (linkstack/runtime/laser_graph.py) against a search from scratch.

The routes of :class:`~linkstack.runtime.routing.ContactState` now come from the
laser links kept from contact change to contact change, with trees cached until the
graph changes and one multi-source search for the routes to many satellites. Here
an independent search from scratch (Dijkstra asking the contact plan's windows for
every edge, one tree per usable satellite, every pass scanned: what routing.py did
before) must give the same links, trees, routes and contact instants at many random
instants, visited in random order (so the graph moves backwards as well as
forwards, and the plan grows chunk by chunk under it), on the default scenario and
on 320 satellites of planned-2800 with their cross-shell links, which come
and go.
"""

import heapq
import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.scenarios import Scenario, default_scenario, planned_scenario
from linkstack.runtime.laser_graph import LaserGraph, LinkWindow
from linkstack.runtime.routing import HOP_COST_S, ContactState, UplinkRoute

DEFAULT_SPAN_S = 12 * 3600.0
PLANNED_SPAN_S = 2 * 3600.0


# -- the search from scratch ---------------------------------------------------------------


def reference_tree(cs: ContactState, source: str, t_s: float) -> dict:
    dist = {source: (0.0, None)}
    heap = [(0.0, source)]
    done = set()
    while heap:
        cost, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        for peer in cs.neighbours(node):
            delay_s = cs.laser_up(node, peer, t_s)
            if delay_s is None:
                continue
            c = cost + delay_s + HOP_COST_S
            if peer not in dist or c < dist[peer][0]:
                dist[peer] = (c, node)
                heapq.heappush(heap, (c, peer))
    return dist


def walk(dist: dict, node: str) -> tuple[str, ...]:
    out = [node]
    while (prev := dist[out[-1]][1]) is not None:
        out.append(prev)
    return tuple(out)


def reference_next_usable(cs: ContactState, sat: str, t_s: float, downlink: bool) -> float | None:
    left_s = cs.min_downlink_left_s if downlink else cs.min_pass_left_s
    if cs.usable_pass(sat, t_s, downlink) is not None:
        return t_s
    cs.extend(t_s + cs.lookahead_s)
    begins = [
        max(p.aos_t_s + cs.acquisition_s, t_s)
        for p in cs.planned_passes(sat)
        if p.los_t_s - left_s >= max(p.aos_t_s + cs.acquisition_s, t_s)
    ]
    return min(begins, default=None)


def reference_uplink_routes(cs: ContactState, t_s: float) -> dict[str, UplinkRoute]:
    usable = {s: p for s in cs.satellites if (p := cs.usable_pass(s, t_s)) is not None}
    trees = {first: reference_tree(cs, first, t_s) for first in usable}
    out = {}
    for target in cs.satellites:
        if target in usable:
            p = usable[target]
            out[target] = UplinkRoute(p.station, (target,), p.los_t_s)
            continue
        reachable = [first for first, tree in trees.items() if target in tree]
        if not reachable:
            continue
        first = min(reachable, key=lambda f: (trees[f][target][0], -usable[f].los_t_s))
        path = tuple(reversed(walk(trees[first], target)))
        p = usable[first]
        out[target] = UplinkRoute(p.station, path, p.los_t_s, trees[first][target][0])
    return out


def reference_downlink(cs: ContactState, src: str, t_s: float):
    dist = reference_tree(cs, src, t_s)
    best = None
    for sat, (cost_s, _) in dist.items():
        contact_t_s = reference_next_usable(cs, sat, t_s + cost_s, True)
        if contact_t_s is not None and (best is None or (contact_t_s, cost_s) < best[:2]):
            best = (contact_t_s, cost_s, sat)
    if best is None:
        return None
    return tuple(reversed(walk(dist, best[2]))), best[0]


# -- the scenarios ---------------------------------------------------------------------------


def planned_part() -> Scenario:
    """The training shell at 700 km (two sun-synchronous planes of 100) and three planes
    of 40 at 800 km (40 deg), with their ring, cross-plane and cross-shell links (the
    shells cross each other: those come and go), and the twenty stations of
    planned-2800."""
    whole = planned_scenario()
    names = whole.satellite_names
    prefixes = ("TR700-", "LI800-P01-", "LI800-P02-", "LI800-P03-")
    keep = [i for i, n in enumerate(names) if n.startswith(prefixes)]
    index = {old: new for new, old in enumerate(keep)}
    pairs = tuple((index[a], index[b]) for a, b in whole.isl_pairs if a in index and b in index)
    return Scenario(
        "planned-part",
        whole.epoch,
        tuple(whole.satellites[i] for i in keep),
        whole.stations,
        pairs,
    )


@pytest.fixture(scope="module")
def default_contacts() -> ContactState:
    return ContactState(default_scenario(), chunk_s=3 * 3600.0)


@pytest.fixture(scope="module")
def planned_contacts() -> ContactState:
    return ContactState(planned_part(), chunk_s=1800.0)


def check_instant(cs: ContactState, t_s: float, sources: list[str]) -> None:
    graph = cs.laser_graph(t_s)
    expected = {pair: d for pair in cs.laser_pairs if (d := cs.laser_up(*pair, t_s)) is not None}
    assert graph.up_links(t_s) == expected
    for src in sources:
        assert cs.distances(src, t_s) == reference_tree(cs, src, t_s)
        assert cs.distances(src, t_s) is cs.distances(src, t_s)  # kept, not searched again
        route = cs.downlink_route(src, t_s)
        ref = reference_downlink(cs, src, t_s)
        assert (route.path, route.contact_t_s) == ref if route is not None else ref is None
        for downlink in (False, True):
            assert cs.next_usable(src, t_s, downlink) == reference_next_usable(
                cs, src, t_s, downlink
            )
    assert_usable_as_each_satellite_has_it(cs, t_s)
    assert cs.uplink_routes(cs.satellites, t_s) == reference_uplink_routes(cs, t_s)


def assert_usable_as_each_satellite_has_it(cs: ContactState, t_s: float) -> None:
    usable = cs.usable_passes(t_s)
    expected = {s: p for s in cs.satellites if (p := cs.usable_pass(s, t_s)) is not None}
    assert list(usable.items()) == list(expected.items())


# -- the checks --------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, DEFAULT_SPAN_S), st.randoms(use_true_random=False))
def test_default_scenario_routes_as_a_search_from_scratch(default_contacts, t_s, rnd):
    check_instant(default_contacts, t_s, rnd.sample(default_contacts.satellites, 3))


@settings(max_examples=6, deadline=None)  # 0.6 s each on planned-2800
@given(st.floats(0.0, PLANNED_SPAN_S), st.randoms(use_true_random=False))
def test_planned_constellation_routes_as_a_search_from_scratch(planned_contacts, t_s, rnd):
    check_instant(planned_contacts, t_s, rnd.sample(planned_contacts.satellites, 3))


def test_the_planned_part_has_links_that_come_and_go(planned_contacts):
    """The check above is worth something only if the graph changes in its span."""
    graph = planned_contacts.laser_graph(PLANNED_SPAN_S)
    up = [frozenset(graph.up_links(t)) for t in range(0, int(PLANNED_SPAN_S), 300)]
    # the cross-shell links' windows last minutes to an hour: not a new graph every
    # five minutes, but many graphs in the span
    assert len(set(up)) >= len(up) // 3 and graph.changes() > 1000


def test_the_graph_moves_both_ways_through_the_changes():
    """Links come up at their window's start plus acquisition and go down at its end;
    at one instant a link goes down before its next window comes up; moving back
    restores what was."""
    graph = LaserGraph([("a", "b"), ("b", "c"), ("a", "c")], hop_cost_s=0.0)
    graph.load(
        [
            LinkWindow(0, 10.0, 20.0, 1.0),
            LinkWindow(0, 20.0, 30.0, 2.0),  # the same link, next window, same instant
            LinkWindow(1, 0.0, 50.0, 1.0),
            LinkWindow(2, 15.0, 15.0, 9.0),  # too short to acquire: never up
        ]
    )
    expect = {
        5.0: {("b", "c"): 1.0},
        10.0: {("a", "b"): 1.0, ("b", "c"): 1.0},
        19.999: {("a", "b"): 1.0, ("b", "c"): 1.0},
        20.0: {("a", "b"): 2.0, ("b", "c"): 1.0},
        30.0: {("b", "c"): 1.0},
        60.0: {},
    }
    order = list(expect) * 3
    random.Random(7).shuffle(order)
    for t_s in order:
        assert graph.up_links(t_s) == expect[t_s]
    assert graph.tree("a", 12.0) == {"a": (0.0, None), "b": (1.0, "a"), "c": (2.0, "b")}
    assert graph.tree("a", 40.0) == {"a": (0.0, None)}
    found = graph.nearest({"a": (0.0, 1), "c": (0.0, 2)}, 12.0)
    assert {n: (f[2], f[0], f[3]) for n, f in found.items()} == {
        "a": ("a", 0.0, ("a",)),
        "c": ("c", 0.0, ("c",)),
        "b": ("a", 1.0, ("a", "b")),  # equal cost from a and c: the lower rank wins
    }


def test_every_link_of_the_ring_is_in_the_graph(default_contacts):
    pairs = set(default_contacts.laser_graph(0.0).pairs)
    ring = {tuple(sorted(p)) for p in itertools.pairwise([*default_contacts.satellites, "CS-01"])}
    assert pairs == ring


def test_who_is_usable_falls_alike_on_the_edges_of_passes(default_contacts):
    """The satellites usable at an instant, found in one slice of every pass, are
    those each satellite's own passes give, on the very edges of passes too."""
    cs = default_contacts
    cs.extend(DEFAULT_SPAN_S)
    passes = sorted(
        (p for s in cs.satellites for p in cs.planned_passes(s)), key=lambda p: p.aos_t_s
    )
    assert len(passes) > 20
    for p in passes[:40]:
        for edge_t_s in (p.aos_t_s + cs.acquisition_s, p.los_t_s - cs.min_pass_left_s):
            for t_s in (
                math.nextafter(edge_t_s, -math.inf),
                edge_t_s,
                math.nextafter(edge_t_s, math.inf),
            ):
                assert_usable_as_each_satellite_has_it(cs, t_s)
