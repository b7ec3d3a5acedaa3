"""Built-in scenarios: what they contain, lookup by name, TLE files, refusals."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from channels.contacts import contact_plan, ground_windows
from channels.scenarios import (
    EPOCH,
    PLANNED_SHELLS,
    Scenario,
    default_scenario,
    planned_scenario,
    ring_pairs,
    scenario_by_name,
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
    assert len(sc.isl_pairs) == 2800  # a ring in every plane
    assert len(sc.stations) == 20
    crossed = planned_scenario(cross_plane=True)
    assert len(crossed.isl_pairs) > 2800
    assert len({s.name for s in sc.satellites}) == 2800


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
