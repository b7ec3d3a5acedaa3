"""Contact windows: a closed-form overhead pass, agreement with brute force and
with the scalar path, independence from chunking, the default scenario's day,
laser links, and the exports (JSON, table; the DTN plans are test_contacts_dtn.py's)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from channels.contacts import (
    ContactPlan,
    contact_plan,
    format_table,
    ground_windows,
    isl_windows,
)
from channels.geometry import (
    MU_EARTH_M3PS2,
    OMEGA_EARTH_RADPS,
    WGS84_A_M,
    GroundStation,
    earth_central_angle_rad,
    ecef_to_geodetic,
    look_angles,
    slant_range_m,
)
from channels.orbit import (
    Fleet,
    IslView,
    StationView,
    satellite_from_elements,
    sso_inclination_deg,
)
from channels.scenarios import default_scenario
from linkstack.errors import ConfigError

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def scenario():
    return default_scenario()


@pytest.fixture(scope="module")
def day_plan(scenario):
    return contact_plan(scenario, duration_s=86_400.0)


def test_overhead_pass_at_550_km_lasts_about_8_minutes():
    """A circular SSO orbit at 550 km passing straight over a station (10 deg mask).

    Closed form: the visibility circle has an Earth-central half-angle
    lambda = acos(R cos e / (R + h)) - e = 14.96 deg; on a non-rotating Earth the
    pass lasts 2 lambda / n = 476.9 s (7.9 min). The Earth turns under the orbit:
    the station moves at w_E against the satellite's n, at the angle i between
    the two rotation axes, so the relative rate is
    n sqrt(1 + k^2 - 2 k cos i) with k = w_E / n = 0.067; for the retrograde
    i = 97.6 deg that is 1.1 % faster, 471.7 s. SGP4's osculating altitude over
    the node is ~6 km above the 550 km mean, which lengthens the pass by ~4 s, so
    we allow +/-10 s.
    """
    alt_m = 550e3
    inc = sso_inclination_deg(alt_m)
    sat = satellite_from_elements("over", EPOCH, alt_m=alt_m, inclination_deg=inc)
    fleet = Fleet([sat], EPOCH)
    r, _ = fleet.ecef([0.0])  # at the ascending node: over the equator
    lat, lon, _ = ecef_to_geodetic(r[0, 0])
    station = GroundStation("under", float(lat), float(lon), 0.0, 10.0)
    (w,) = ground_windows(fleet, [station], duration_s=1800.0, start_t_s=-900.0)
    assert w.max_elevation_deg > 89.9
    assert abs(w.max_elevation_t_s) < 0.05
    lam = float(earth_central_angle_rad(alt_m, 10.0))
    n = math.sqrt(MU_EARTH_M3PS2 / (WGS84_A_M + alt_m) ** 3)
    k = OMEGA_EARTH_RADPS / n
    expected = 2 * lam / (n * math.sqrt(1 + k * k - 2 * k * math.cos(math.radians(inc))))
    assert expected == pytest.approx(471.7, abs=0.1)
    assert w.duration_s == pytest.approx(expected, abs=10.0)
    assert 7.5 * 60 < w.duration_s < 8.5 * 60
    # The longest slant range of a pass is at the mask (closed form for 10 deg);
    # the sampled maximum is up to one 10 s step inside, ~5 km/s short of it.
    at_mask = float(slant_range_m(556e3, 10.0))
    assert at_mask - 60e3 < w.max_range_m < at_mask + 5e3


def test_windows_agree_with_brute_force_and_the_scalar_path(scenario):
    span = 4 * 3600.0
    windows = list(ground_windows(scenario.fleet, scenario.stations, duration_s=span))
    # Brute force: every second, straight from SGP4.
    t = np.arange(0.0, span + 1.0, 1.0)
    r, _ = scenario.fleet.ecef(t)
    brute = []
    for st in scenario.stations:
        vis = look_angles(st, r).elevation_deg >= st.min_elevation_deg
        for b, name in enumerate(scenario.fleet.names):
            edges = np.flatnonzero(np.diff(vis[b].astype(np.int8)))
            on = list(t[edges + 1][vis[b, edges + 1]])
            off = list(t[edges][~vis[b, edges + 1]])
            if vis[b, 0]:
                on.insert(0, 0.0)
            if vis[b, -1]:
                off.append(span)
            brute += [(st.name, name, a, o) for a, o in zip(on, off, strict=True)]
    assert len(windows) == len(brute) > 20
    ours = sorted((w.station, w.satellite, w.aos_t_s, w.los_t_s) for w in windows)
    for (s1, n1, a1, o1), (s2, n2, a2, o2) in zip(ours, sorted(brute), strict=True):
        assert (s1, n1) == (s2, n2)
        assert a1 == pytest.approx(a2, abs=1.0) and o1 == pytest.approx(o2, abs=1.0)
    # The edges sit on the mask (10 ms in time is ~0.001 deg of elevation).
    for w in windows:
        st = scenario.station(w.station)
        view = StationView(st, scenario.satellite(w.satellite), scenario.epoch)
        for t_edge, clipped in ((w.aos_t_s, w.aos_clipped), (w.los_t_s, w.los_clipped)):
            if not clipped:
                assert view.at(t_edge).elevation_deg == pytest.approx(10.0, abs=0.003)
        # The maximum elevation beats a 0.5 s scan of the pass, and is where it says.
        scan = max(view.at(x).elevation_deg for x in np.arange(w.aos_t_s, w.los_t_s, 0.5))
        assert scan - 1e-4 <= w.max_elevation_deg <= scan + 0.05
        peak = view.at(w.max_elevation_t_s).elevation_deg
        assert peak == pytest.approx(w.max_elevation_deg, abs=1e-4)  # interpolated orbit


def test_windows_do_not_depend_on_chunks_blocks_or_the_coarse_grid(scenario):
    kw = {"duration_s": 6 * 3600.0}
    ref = sorted(ground_windows(scenario.fleet, scenario.stations, **kw), key=_key)
    small = sorted(
        ground_windows(scenario.fleet, scenario.stations, chunk_s=600.0, block_sats=5, **kw),
        key=_key,
    )
    fine = sorted(
        ground_windows(scenario.fleet, scenario.stations, coarse_step_s=10.0, **kw), key=_key
    )
    assert len(ref) == len(small) == len(fine)
    for a, b, c in zip(ref, small, fine, strict=True):
        assert (a.station, a.satellite) == (b.station, b.satellite) == (c.station, c.satellite)
        assert a.aos_t_s == pytest.approx(b.aos_t_s, abs=1e-9)
        assert a.los_t_s == pytest.approx(b.los_t_s, abs=1e-9)
        assert a.max_elevation_deg == pytest.approx(b.max_elevation_deg, abs=1e-9)
        np.testing.assert_array_equal(a.samples.t_s, b.samples.t_s)
        np.testing.assert_allclose(a.samples.range_m, b.samples.range_m, atol=1e-6)
        # Propagating every 10 s instead of interpolating from 60 s: sub-metre.
        assert a.aos_t_s == pytest.approx(c.aos_t_s, abs=0.02)
        assert a.los_t_s == pytest.approx(c.los_t_s, abs=0.02)
        np.testing.assert_allclose(a.samples.range_m, c.samples.range_m, atol=1.0)
        np.testing.assert_allclose(a.samples.range_rate_mps, c.samples.range_rate_mps, atol=0.05)


def _key(w):
    return (w.station, w.satellite, w.aos_t_s)


def test_samples_match_the_scalar_path(scenario):
    w = next(
        w
        for w in ground_windows(scenario.fleet, scenario.stations, duration_s=3 * 3600.0)
        if not w.aos_clipped and not w.los_clipped
    )
    view = StationView(scenario.station(w.station), scenario.satellite(w.satellite), EPOCH)
    s = w.samples
    assert len(s.t_s) == len(s.range_m) == len(s.range_rate_mps) == len(s.elevation_deg) > 10
    assert np.all(np.diff(s.t_s) == 10.0) and w.aos_t_s <= s.t_s[0] and s.t_s[-1] <= w.los_t_s
    for i in range(0, len(s.t_s), 7):
        look = view.at(float(s.t_s[i]))
        assert s.elevation_deg[i] == pytest.approx(look.elevation_deg, abs=1e-4)
        assert s.range_m[i] == pytest.approx(look.range_m, abs=1.0)
        assert s.range_rate_mps[i] == pytest.approx(look.range_rate_mps, abs=0.05)
    assert w.min_range_m == pytest.approx(s.range_m.min()) and w.max_range_m == s.range_m.max()


def test_default_scenario_day_is_plausible(scenario, day_plan):
    plan = day_plan
    by_station = {st.name: [w for w in plan.ground if w.station == st.name] for st in plan.stations}
    for name, ws in by_station.items():
        assert len(ws) >= 12, name  # every station sees passes every day
    # High latitude sees a sun-synchronous plane on more orbits than low latitude.
    assert len(by_station["Svalbard"]) > len(by_station["Sanya"])
    full = [w for w in plan.ground if not (w.aos_clipped or w.los_clipped)]
    assert all(0 < w.duration_s < 12 * 60 for w in full)
    assert max(w.duration_s for w in full) > 7 * 60  # some passes come close to overhead
    assert all(10.0 <= w.max_elevation_deg <= 90.0 for w in plan.ground)
    longest_link = float(slant_range_m(540e3, 10.0))  # the orbit reaches ~530 km over the poles
    for w in plan.ground:
        assert w.aos_t_s < w.max_elevation_t_s < w.los_t_s or w.aos_clipped or w.los_clipped
        assert np.all(w.samples.elevation_deg >= 10.0)
        assert 500e3 < w.min_range_m <= w.max_range_m < longest_link
    assert [w.aos_t_s for w in plan.ground] == sorted(w.aos_t_s for w in plan.ground)
    # The laser ring: 12 links, up all day, ~3,560 km.
    assert len(plan.isl) == 12
    for w in plan.isl:
        assert w.start_clipped and w.stop_clipped and w.duration_s == 86_400.0
        assert 3_500e3 < w.min_range_m <= w.max_range_m < 3_620e3
        assert len(w.samples.t_s) == 86_400 / 60 + 1


def test_isl_edges_sit_on_the_blockage_limit():
    # Two satellites in planes 90 deg apart: they see each other over the Earth's
    # limb and lose each other behind it, over and over.
    a = satellite_from_elements("a", EPOCH, alt_m=700e3, inclination_deg=90.0)
    b = satellite_from_elements(
        "b", EPOCH, alt_m=700e3, inclination_deg=90.0, raan_deg=90.0, mean_anomaly_deg=37.0
    )
    fleet = Fleet([a, b], EPOCH)
    windows = list(
        isl_windows(fleet, [(0, 1)], duration_s=6 * 3600.0, max_range_m=1e8, step_s=10.0)
    )
    assert len(windows) >= 4
    view = IslView(a, b, EPOCH)
    edges = 0
    for w in windows:
        for t, clipped in ((w.start_t_s, w.start_clipped), (w.stop_t_s, w.stop_clipped)):
            if not clipped:
                # 10 ms at up to ~10 km/s of closing speed: tens of metres.
                assert abs(view.at(t).clearance_m) < 200.0
                edges += 1
        mid = 0.5 * (w.start_t_s + w.stop_t_s)
        assert view.at(mid).clear
    assert edges >= 6
    # A maximum range below the distance means no window at all.
    assert list(isl_windows(fleet, [(0, 1)], duration_s=3600.0, max_range_m=100e3)) == []


def test_isl_range_limit_edges():
    a = satellite_from_elements("a", EPOCH, alt_m=600e3, inclination_deg=53.0)
    b = satellite_from_elements("b", EPOCH, alt_m=600e3, inclination_deg=53.0, raan_deg=20.0)
    fleet = Fleet([a, b], EPOCH)
    windows = list(isl_windows(fleet, [(0, 1)], duration_s=3 * 3600.0, max_range_m=1_500e3))
    assert windows
    view = IslView(a, b, EPOCH)
    for w in windows:
        assert w.max_range_m <= 1_500e3
        for t, clipped in ((w.start_t_s, w.start_clipped), (w.stop_t_s, w.stop_clipped)):
            if not clipped:
                assert view.at(t).range_m == pytest.approx(1_500e3, abs=100.0)


# --- exports -----------------------------------------------------------------------


def test_json_round_trip(day_plan):
    text = day_plan.to_json()
    back = ContactPlan.from_json(text)
    assert back.to_json() == text
    assert back.epoch == day_plan.epoch and back.nodes == day_plan.nodes
    assert back.stations == day_plan.stations
    assert len(back.ground) == len(day_plan.ground) and len(back.isl) == len(day_plan.isl)
    w0, b0 = day_plan.ground[0], back.ground[0]
    assert b0.aos_t_s == pytest.approx(w0.aos_t_s, abs=1e-3)
    np.testing.assert_allclose(b0.samples.elevation_deg, w0.samples.elevation_deg, atol=1e-4)
    d = json.loads(text)
    assert d["epoch"] == "2026-01-01T00:00:00Z" and d["format"] == "linkstack-contact-plan"
    with pytest.raises(ConfigError) as exc:
        ContactPlan.from_json("{not json")
    assert exc.value.field == "json"
    with pytest.raises(ConfigError) as exc:
        ContactPlan.from_json('{"format": "other"}')
    assert exc.value.field == "format"


def test_pass_table(day_plan):
    text = format_table(day_plan)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["station", "satellite", "AOS"]
    assert len(lines) == len(day_plan.ground) + 3
    w = day_plan.ground[5]
    row = lines[2 + 5]
    assert row.startswith(w.station) and w.satellite in row
    assert day_plan.utc(w.aos_t_s).strftime("%H:%M:%S") in row
    assert f"{w.max_elevation_deg:.1f}" in row
    assert "passes over 5 stations in 24 h" in lines[-1]


# --- refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"duration_s": 95.0}, "duration_s"),  # not a whole number of 10 s steps
        ({"duration_s": 0.0}, "duration_s"),
        ({"step_s": 0.0}, "step_s"),
        ({"step_s": math.nan}, "step_s"),
        ({"coarse_step_s": -1.0}, "coarse_step_s"),
        ({"block_sats": 0}, "block_sats"),
    ],
)
def test_ground_search_refuses_bad_parameters(scenario, kwargs, field):
    args = {"duration_s": 600.0}
    args.update(kwargs)
    with pytest.raises(ConfigError) as exc:
        list(ground_windows(scenario.fleet, scenario.stations, **args))
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("pairs", "kwargs", "field"),
    [
        ([(0, 0)], {}, "pairs"),
        ([(0, 99)], {}, "pairs"),
        ([(0, 1)], {"margin_m": -5.0}, "margin_m"),
        ([(0, 1)], {"max_range_m": 0.0}, "max_range_m"),
        ([(0, 1)], {"block_pairs": 0}, "block_pairs"),
    ],
)
def test_isl_search_refuses_bad_parameters(scenario, pairs, kwargs, field):
    with pytest.raises(ConfigError) as exc:
        list(isl_windows(scenario.fleet, pairs, duration_s=600.0, **kwargs))
    assert exc.value.field == field
