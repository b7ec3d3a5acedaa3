"""Routing through the default constellation from its contact plan, and the relay envelope."""

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.scenarios import default_scenario
from linkstack.errors import ConfigError, DecodeError, EncodeError
from linkstack.runtime.routing import (
    ENVELOPE_HEADER_LEN,
    GROUND_NODE,
    ContactState,
    RelayHeader,
    spread_rank,
)

FIRST_PASS_S = 5263.0  # the first pass of the default scenario: Mohe sees CS-06 at ~5263 s
IN_VIEW_S = 5300.0


@pytest.fixture(scope="module")
def contacts() -> ContactState:
    return ContactState(default_scenario())


# -- the envelope ---------------------------------------------------------------------------


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 255), st.binary(min_size=1))
def test_envelope_round_trip(src, dst, hops, message):
    if src == dst:
        return
    raw = RelayHeader(src, dst, hops).wrap(message)
    assert len(raw) == ENVELOPE_HEADER_LEN + len(message)
    assert RelayHeader.unwrap(raw) == (RelayHeader(src, dst, hops), message)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"\x01\x10\x00\x01", "length"),  # no message
        (b"\x02\x10\x00\x01\x00\x02hello", "version"),
        (b"\x01\x10\x00\x03\x00\x03hello", "dst"),  # to itself
    ],
)
def test_malformed_envelopes_are_refused_naming_the_field(raw, field):
    with pytest.raises(DecodeError) as err:
        RelayHeader.unwrap(raw)
    assert err.value.layer == "relay" and err.value.field == field


def test_envelope_refuses_impossible_fields():
    with pytest.raises(EncodeError):
        RelayHeader(-1, 2).wrap(b"x")
    with pytest.raises(EncodeError):
        RelayHeader(1, 2, 256).wrap(b"x")
    with pytest.raises(EncodeError):
        RelayHeader(1, 2).wrap(b"")


# -- passes and routes ----------------------------------------------------------------------


def test_nothing_in_view_at_the_start_so_queries_wait_for_the_first_pass(contacts):
    assert contacts.uplink_route(None, 0.0) is None
    assert contacts.uplink_route("CS-07", 0.0) is None
    t = contacts.next_uplink_time(None, 0.0)
    assert FIRST_PASS_S < t < FIRST_PASS_S + 10.0  # AOS plus the receivers' acquisition
    route = contacts.uplink_route(None, t)
    assert route is not None and route.path == ("CS-06",) and route.station == "Mohe"
    assert contacts.uplink_route(None, t - 0.5) is None


def test_a_satellite_in_view_is_reached_directly(contacts):
    route = contacts.uplink_route(None, IN_VIEW_S)
    assert route.path == ("CS-06",) and route.los_t_s > IN_VIEW_S + contacts.min_pass_left_s
    assert contacts.uplink_route("CS-06", IN_VIEW_S).path == ("CS-06",)


def test_a_satellite_out_of_view_is_reached_over_the_ring(contacts):
    route = contacts.uplink_route("CS-09", IN_VIEW_S)
    assert route.first == "CS-06" and route.target == "CS-09"
    assert route.path == ("CS-06", "CS-07", "CS-08", "CS-09")
    for a, b in itertools.pairwise(route.path):
        assert b in contacts.neighbours(a)
        assert 0.011 < contacts.laser_up(a, b, IN_VIEW_S) < 0.013  # 3,560 km of light time
    # the other way round the ring is longer
    assert len(contacts.path("CS-06", "CS-12", IN_VIEW_S)) == 7


def test_paths_are_symmetric_and_shortest(contacts):
    names = contacts.satellites
    for a, b in itertools.combinations(names, 2):
        p = contacts.path(a, b, IN_VIEW_S)
        q = contacts.path(b, a, IN_VIEW_S)
        assert p == tuple(reversed(q))
        i, j = names.index(a), names.index(b)
        assert len(p) - 1 == min((j - i) % 12, (i - j) % 12)


def test_answers_go_to_the_satellite_that_reaches_the_ground_first(contacts):
    direct = contacts.downlink_route("CS-06", IN_VIEW_S)
    assert direct.path == ("CS-06",) and direct.contact_t_s == IN_VIEW_S
    relayed = contacts.downlink_route("CS-09", IN_VIEW_S)
    assert relayed.path == ("CS-09", "CS-08", "CS-07", "CS-06")
    assert relayed.next_hop == "CS-08"
    assert IN_VIEW_S < relayed.contact_t_s < IN_VIEW_S + 1.0  # light time only
    # out of contact: the answer goes where the next pass begins, and waits there
    waiting = contacts.downlink_route("CS-01", 1000.0)
    assert waiting.path[-1] == "CS-06" and waiting.contact_t_s > FIRST_PASS_S
    assert waiting.station == "Mohe"


def test_unknown_target_is_refused(contacts):
    with pytest.raises(ConfigError):
        contacts.uplink_route("CS-99", IN_VIEW_S)


def test_the_plan_grows_in_chunks_and_joins_passes_cut_by_a_chunk_edge():
    scenario = default_scenario()
    whole = ContactState(scenario, chunk_s=4 * 3600.0)
    pieces = ContactState(scenario, chunk_s=1200.0)
    pieces.extend(4 * 3600.0)
    for sat in scenario.satellite_names:
        a = [(p.station, round(p.aos_t_s, 1), round(p.los_t_s, 1)) for p in whole._passes[sat]]
        b = [(p.station, round(p.aos_t_s, 1), round(p.los_t_s, 1)) for p in pieces._passes[sat]]
        b = [x for x in b if x[1] < 4 * 3600.0]
        a = [x for x in a if x[1] < 4 * 3600.0]
        assert [x[:2] for x in a] == [x[:2] for x in b]
        for x, y in zip(a, b, strict=True):
            assert abs(x[2] - y[2]) < 0.1 or x[2] >= 4 * 3600 - 1
    # far beyond the first chunk
    assert pieces.next_uplink_time(None, 20 * 3600.0) is not None
    assert pieces.horizon_t_s >= 20 * 3600.0


def test_ground_node_is_zero_and_satellites_count_from_one(contacts):
    assert GROUND_NODE == 0
    assert contacts.nodes["CS-01"] == 1 and contacts.nodes["CS-12"] == 12
    assert contacts.names[0] == "ground"


def test_the_links_take_pass_and_window_starts_from_the_same_plan(contacts):
    """What the RF and laser models acquire from (pass_start, window_start) is the plan
    the routes use: a pass in progress gives its AOS over its station and nothing over
    another; a laser window gives its start, or minus infinity if it was up when the
    plan began (its terminals already acquired, as laser_up has it)."""
    t = 10_765.0
    sat = next(s for s in contacts.satellites if contacts.in_view(s, t))
    (p,) = contacts.passes(sat, t)[:1]
    assert contacts.pass_start(sat, p.station, t) == p.aos_t_s
    assert contacts.pass_start(sat, p.station, p.los_t_s + 1.0) is None
    others = [st.name for st in contacts.scenario.stations if st.name != p.station]
    assert all(
        contacts.pass_start(sat, other, t) is None
        for other in others
        if not any(q.station == other for q in contacts.passes(sat, t))
    )
    a, b = "CS-01", "CS-02"
    start = contacts.window_start(a, b, 0.0)
    assert start == -math.inf and contacts.laser_up(a, b, 0.0) is not None
    assert contacts.window_start(a, "CS-07", 0.0) is None  # not neighbours


def test_routes_to_every_satellite_at_once_and_the_spread_rank_at_equal_load(contacts):
    """uplink_routes: straight up to a satellite in view, otherwise from a satellite in
    view over laser links up now; at equal load the spread rank picks what the rule for
    "any satellite" picks, and a lighter load wins over it."""
    names = contacts.satellites
    assert contacts.uplink_routes(names, 1000.0) == {}  # nothing in view yet
    checked = 0
    for t in range(5300, 30_000, 157):
        routes = contacts.uplink_routes(names, t)
        usable = {s for s in names if contacts.usable_pass(s, t) is not None}
        assert bool(routes) == bool(usable)
        if not routes:
            continue
        for sat, route in routes.items():
            assert route.target == sat and route.first in usable
            assert (len(route.path) == 1) == (sat in usable)
            delays = [contacts.laser_up(a, b, t) for a, b in itertools.pairwise(route.path)]
            assert all(delays) and route.relay_s == pytest.approx(sum(delays) + 1e-3 * len(delays))
            assert route.los_t_s == contacts.usable_pass(route.first, t).los_t_s
        ranked = min(routes, key=lambda s: spread_rank(contacts, routes[s], 0))
        assert ranked == contacts.uplink_route(None, t).first
        busier = {s: 1 if s == ranked else 0 for s in routes}
        if len(routes) > 1:
            other = min(routes, key=lambda s: spread_rank(contacts, routes[s], busier[s]))
            assert other != ranked
        checked += 1
    assert checked > 20


def test_laser_windows_end_at_the_scenarios_terminal_reach():
    """The ring's neighbours are 3,560 km apart: up with the default 5,000 km reach,
    never with a 3,000 km terminal; a scenario's reach is the routes' (the links'
    physics has the same), not the default."""
    from linkstack.runtime import clock as clk
    from linkstack.runtime.scenario import loads
    from linkstack.runtime.site import Site

    scenario = default_scenario()
    near = ContactState(scenario, isl_max_range_m=3_000e3)
    far = ContactState(scenario)
    times = [60.0 + 600.0 * k for k in range(12)]
    assert all(near.laser_up("CS-01", "CS-02", t) is None for t in times)
    assert all(far.laser_up("CS-01", "CS-02", t) is not None for t in times)
    config = loads("[links.laser]\nmax_range_m = 3000e3\n").emulation

    async def main() -> ContactState:
        return Site(clk.make_clock(True), config, scenario).contacts

    contacts = clk.run(main, emulated=True)
    assert contacts.isl_max_range_m == 3_000e3
    assert contacts.laser_up("CS-01", "CS-02", 600.0) is None


def test_the_next_uplink_to_any_of_many_is_the_earliest_of_each(contacts):
    """Mission control waits, while no satellite it may send to is reachable, for the
    earliest next uplink among them: one search an instant gives what one per
    satellite gave, before the first pass, in view, and for targets no one reaches."""
    names = contacts.satellites
    for t_s in (0.0, 3000.0, 5300.0, 9000.0, 20_000.0):
        for targets in (names, names[:3], names[6:9], ("CS-11",)):
            each = [contacts.next_uplink_time(s, t_s) for s in targets]
            expected = min((t for t in each if t is not None), default=None)
            assert contacts.next_uplink_time_any(targets, t_s) == expected
    assert contacts.next_uplink_time_any((), 0.0) is None
