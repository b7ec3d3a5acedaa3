"""Built-in scenarios: what they contain, lookup by name, TLE files, refusals."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from channels.contacts import contact_plan, ground_windows
from channels.scenarios import (
    CROSS_SHELL_MAX_RANGE_M,
    EPOCH,
    PLANNED_SHELLS,
    Scenario,
    default_scenario,
    planned_scenario,
    ring_pairs,
    scenario_by_name,
    some_of,
    stations,
    tle_scenario,
)
from linkstack.errors import ConfigError

TLES = (
    "ISS (ZARYA)\n"
    "1 25544U 98067A   19343.69339541  .00001764  00000-0  38792-4 0  9991\n"
    "2 25544  51.6439 211.2001 0007417  17.6667  85.6398 15.50103472202482\n"
)


def test_default_scenario_resembles_the_reported_constellation():
    sc = default_scenario()
    assert sc.name == "default" and sc.epoch == datetime(2026, 1, 1, tzinfo=UTC)
    assert len(sc.satellites) == 12
    incs = {round(math.degrees(s.satrec.inclo), 6) for s in sc.satellites}
    assert len(incs) == 1 and abs(incs.pop() - 97.40) < 0.01  # one sun-synchronous plane
    alt_km = [s.satrec.a * s.satrec.radiusearthkm - 6378.137 for s in sc.satellites]
    np.testing.assert_allclose(alt_km, 500.0, atol=1e-3)
    assert len(sc.isl_pairs) == 12 and (0, 1) in sc.isl_pairs and (11, 0) in sc.isl_pairs
    assert 3 <= len(sc.stations) <= 5
    assert all(st.min_elevation_deg == 10.0 for st in sc.stations)
    assert scenario_by_name("default") is scenario_by_name("default")  # built once


def test_planned_network_composition():
    sc = planned_scenario()
    assert len(sc.satellites) == 2800 == sum(s.count for s in PLANNED_SHELLS)
    roles = Counter(s.role for s in sc.satellites)
    assert roles == {"inference": 2400, "training": 400}
    alt_km = np.array([s.satrec.a * s.satrec.radiusearthkm - 6378.137 for s in sc.satellites])
    assert alt_km.min() >= 499.9 and alt_km.max() <= 1000.1
    inc = np.degrees([s.satrec.inclo for s in sc.satellites])
    assert np.sum(inc > 97.0) == 1600  # sun-synchronous, dawn-dusk included
    assert set(np.round(inc[inc < 90.0])) == {30.0, 40.0}  # low-inclination shells
    assert len(sc.stations) == 20
    assert len({s.name for s in sc.satellites}) == 2800
    assert Counter(sc.shells) == {s.name: s.count for s in PLANNED_SHELLS}
    assert sc.shell_of["LI800-P03-S07"] == "LI800" and sc.shell_of["TR700-P02-017"] == "TR700"


def _planes(sc):
    """Each satellite's plane: its name less the slot."""
    return [n.rsplit("-", 1)[0] for n in sc.satellite_names]


def test_planned_network_laser_links():
    sc = planned_scenario()
    rings = planned_scenario(cross_plane=False, cross_shell=False)
    grid = planned_scenario(cross_shell=False)
    assert len(rings.isl_pairs) == 2800  # a ring in every plane
    assert set(rings.isl_pairs) <= set(grid.isl_pairs) <= set(sc.isl_pairs)
    assert len(sc.isl_pairs) == 10_708 == len(set(sc.isl_pairs))
    shells, planes = sc.shells, _planes(sc)
    kinds = Counter(
        "ring" if planes[a] == planes[b] else "plane" if shells[a] == shells[b] else "shell"
        for a, b in sc.isl_pairs
    )
    assert kinds == {"ring": 2800, "plane": 2150, "shell": 5758}
    # between planes: neighbours of a shell, Walker shells wrapped round, no SSO plane
    # linked to one 12 h of local time away (the same plane flown the other way)
    plane_links = Counter(
        (planes[a], planes[b])
        for a, b in sc.isl_pairs
        if planes[a] != planes[b] and shells[a] == shells[b]
    )
    assert plane_links[("LI800-P15", "LI800-P01")] == 40
    assert plane_links[("LI1000-P12", "LI1000-P01")] == 50
    assert ("DD500-P03", "DD500-P04") not in plane_links  # 18:20 and 05:40
    assert not any(p.startswith("TR") for p, _ in plane_links)  # 06:00 and 18:00 only
    assert all(n == 100 for (p, _), n in plane_links.items() if p.startswith("DD500"))
    # between shells: only shells next to each other in altitude, each pair in sight
    # and within range at the epoch
    order = [s.name for s in sorted(PLANNED_SHELLS, key=lambda s: s.alt_m)]
    r_m = sc.fleet.ecef(0.0)[0][:, 0, :]
    for a, b in sc.isl_pairs:
        if shells[a] != shells[b]:
            assert abs(order.index(shells[a]) - order.index(shells[b])) == 1
            assert np.linalg.norm(r_m[a] - r_m[b]) <= CROSS_SHELL_MAX_RANGE_M
    # every satellite has its two ring neighbours at least, and the Walker shells four
    degree = Counter(x for pair in sc.isl_pairs for x in pair)
    assert min(degree[i] for i in range(2800)) >= 2
    assert all(degree[i] >= 4 for i in range(2800) if shells[i].startswith("LI"))


def test_planned_network_contacts_over_ten_minutes():
    sc = scenario_by_name("planned-2800")
    ws = list(ground_windows(sc.fleet, sc.stations, duration_s=600.0, samples=False))
    assert len(ws) > 100
    assert all(w.samples is None for w in ws)
    assert all(10.0 <= w.max_elevation_deg <= 90.0 for w in ws)
    assert {w.station for w in ws} >= {"Svalbard", "Troll"}


def test_tle_scenario(tmp_path):
    path = tmp_path / "iss.tle"
    path.write_text(TLES)
    sc = scenario_by_name(str(path))
    assert sc.satellite_names == ("ISS (ZARYA)",)
    assert sc.epoch == datetime(2019, 12, 9, 16, 39, tzinfo=UTC)  # epoch, rounded up
    assert scenario_by_name(f"tle:{path}").satellite_names == ("ISS (ZARYA)",)
    plan = contact_plan(sc, duration_s=86_400.0)
    assert plan.ground and not plan.isl
    fixed = tle_scenario(path, epoch=EPOCH, station_list=stations(["Wallops"]))
    assert fixed.epoch == EPOCH and [s.name for s in fixed.stations] == ["Wallops"]


def test_ring_pairs():
    assert ring_pairs(5, 1) == []
    assert ring_pairs(5, 2) == [(5, 6)]
    assert ring_pairs(0, 4) == [(0, 1), (1, 2), (2, 3), (3, 0)]


def test_refusals():
    with pytest.raises(ConfigError) as exc:
        scenario_by_name("nowhere")
    assert exc.value.field == "name"
    with pytest.raises(ConfigError) as exc:
        stations(["Atlantis"])
    assert exc.value.field == "name"
    sc = default_scenario()
    with pytest.raises(ConfigError) as exc:
        Scenario("x", EPOCH, sc.satellites, sc.stations, ((0, 12),))
    assert exc.value.field == "isl_pairs"
    with pytest.raises(ConfigError) as exc:
        Scenario("x", EPOCH, sc.satellites, sc.stations, ((0, 1), (1, 0)))
    assert exc.value.field == "isl_pairs"
    with pytest.raises(ConfigError) as exc:
        Scenario("x", EPOCH, sc.satellites + sc.satellites[:1], sc.stations)
    assert exc.value.field == "satellites"
    with pytest.raises(ConfigError) as exc:
        Scenario("x", datetime(2026, 1, 1), sc.satellites, sc.stations)
    assert exc.value.field == "epoch"
    with pytest.raises(ConfigError) as exc:
        sc.station("Atlantis")
    assert exc.value.field == "station"


def test_some_of_a_scenario():
    sc = planned_scenario()
    keep = [i for i, s in enumerate(sc.shells) if s in ("DD500", "TR650")][::3]
    part = some_of(sc, keep, "part")
    assert part.name == "part" and part.stations == sc.stations and part.epoch == sc.epoch
    assert part.satellite_names == tuple(sc.satellite_names[i] for i in keep)
    assert part.shells == tuple(sc.shells[i] for i in keep)
    names = part.satellite_names
    kept = {frozenset((names[a], names[b])) for a, b in part.isl_pairs}
    whole = sc.satellite_names
    assert kept == {
        frozenset((whole[a], whole[b]))
        for a, b in sc.isl_pairs
        if whole[a] in names and whole[b] in names
    }
    with pytest.raises(ConfigError, match="indices"):
        some_of(sc, [0, 0], "twice")


def test_shells_one_a_satellite():
    sc = default_scenario()
    assert set(sc.shell_of.values()) == {"default"}
    with pytest.raises(ConfigError, match="shells: one a satellite: 12, got 2"):
        Scenario("x", EPOCH, sc.satellites, sc.stations, shells=("a", "b"))
