"""The Sun, Earth's shadow and the sunlit/penumbra/umbra intervals of satellites,
checked against skyfield (JPL's DE421 from the skyfield-data package; no download)
computed independently here: the Sun's position, the shadow edges of sample orbits
(skyfield's satellite and Sun positions with the shadow cones written out here, and
skyfield's own ``is_sunlit``), the eclipse fraction of a 500 km orbit at several
local times against the closed form, and the dawn-dusk eclipse season."""

from __future__ import annotations

import importlib.resources
import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skyfield.api import EarthSatellite, load, load_file
from skyfield.searchlib import find_discrete
from skyfield.sgp4lib import TEME

from channels.contacts import (
    ContactPlan,
    SunlightInterval,
    contact_plan,
    format_table,
    sunlight_intervals,
    sunlight_summary,
)
from channels.geometry import WGS84_A_M, julian_date
from channels.orbit import Fleet, satellite_from_elements, sso_plane, walker_delta
from channels.scenarios import default_scenario
from channels.sun import SHADOW_EARTH_RADIUS_M, SUN_RADIUS_M, illuminated_fraction, sun_mod_m
from linkstack.errors import ConfigError

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def sky():
    path = importlib.resources.files("skyfield_data") / "data" / "de421.bsp"
    eph = load_file(str(path))
    return load.timescale(builtin=True), eph


def test_the_sun_within_0_011_deg_of_de421_from_2000_to_2050(sky):
    ts, eph = sky
    earth, sun = eph["earth"], eph["sun"]
    when = [
        datetime(2000, 1, 1, tzinfo=UTC) + timedelta(days=d, hours=d % 24)
        for d in range(0, 50 * 365, 11)
    ]
    t = ts.from_datetimes(when)
    ref = earth.at(t).observe(sun).apparent().frame_xyz(TEME).m.T
    jd_fr = np.array([julian_date(w) for w in when])
    mine = sun_mod_m(jd_fr[:, 0], jd_fr[:, 1])
    cos = np.sum(ref * mine, axis=1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(mine, axis=1)
    angle_deg = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    assert angle_deg.max() < 0.011
    assert np.abs(np.linalg.norm(mine, axis=1) / np.linalg.norm(ref, axis=1) - 1).max() < 1.2e-4


def _cone_state(sat_m: np.ndarray, sun_m: np.ndarray) -> np.ndarray:
    """0 sunlit, 1 penumbra, 2 umbra from the shadow cones (Vallado's SHADOW: the
    umbra's cone converging behind the Earth, the penumbra's diverging from a
    vertex towards the Sun), written independently of channels.sun's disc angles."""
    s_n = np.linalg.norm(sun_m, axis=0)
    axis = -sun_m / s_n
    x = np.sum(sat_m * axis, axis=0)  # along the shadow axis, > 0 behind the Earth
    d = np.linalg.norm(sat_m - x * axis, axis=0)
    r_e = WGS84_A_M
    sin_u = (SUN_RADIUS_M - r_e) / s_n
    sin_p = (SUN_RADIUS_M + r_e) / s_n
    # each cone touches the Earth's sphere: its surface is r_e / cos(half-angle)
    # from the axis in the plane through the Earth's centre
    umbra_r = r_e / np.sqrt(1 - sin_u**2) - x * np.tan(np.arcsin(sin_u))
    penumbra_r = r_e / np.sqrt(1 - sin_p**2) + x * np.tan(np.arcsin(sin_p))
    behind = x > 0
    return np.where(behind & (d < umbra_r), 2, np.where(behind & (d < penumbra_r), 1, 0))


SAMPLE_ORBITS = {
    "sso-500-ltan-22.5": dict(alt_m=500e3, ltan_h=22.5),
    "dawn-dusk-500": dict(alt_m=500e3, ltan_h=6.0),
    "dawn-dusk-700": dict(alt_m=700e3, ltan_h=5 + 2 / 3),
    "sso-550-noon": dict(alt_m=550e3, ltan_h=12.5),
}


def _sample_fleet() -> Fleet:
    sats = []
    for i, (name, kw) in enumerate(SAMPLE_ORBITS.items()):
        sats += sso_plane(
            EPOCH, count=1, name_prefix=name, first_catalog_number=i + 1, phase_deg=37.0 * i, **kw
        )
    sats += walker_delta(
        EPOCH,
        total=1,
        planes=1,
        phasing=0,
        inclination_deg=53.0,
        alt_m=550e3,
        name_prefix="W53",
        first_catalog_number=9,
    )
    return Fleet(sats, EPOCH)


@pytest.fixture(scope="module")
def sample_day():
    fleet = _sample_fleet()
    return fleet, sunlight_intervals(fleet, duration_s=6 * 3600.0)


def test_shadow_edges_within_1_s_of_skyfield(sky, sample_day):
    """Every penumbra and umbra edge over 6 h of five orbits, against skyfield's
    SGP4 satellite and DE421 Sun (in GCRS) through the cones above (largest
    difference 0.10 s), and the middle of each penumbra against skyfield's own
    is_sunlit, the geometric Sun's centre on the limb (0.38 s)."""
    ts, eph = sky
    earth, sun = eph["earth"], eph["sun"]
    fleet, intervals = sample_day
    t0 = ts.from_datetime(EPOCH)
    t1 = ts.from_datetime(EPOCH + timedelta(hours=6))
    checked = 0
    for sat in fleet.satellites:
        es = EarthSatellite.from_satrec(sat.satrec, ts)

        def cone(t, es=es):
            return _cone_state(es.at(t).position.m, earth.at(t).observe(sun).apparent().position.m)

        cone.step_days = 5.0 / 86_400.0

        def lit(t, es=es):
            return es.at(t).is_sunlit(eph).astype(int)

        lit.step_days = 5.0 / 86_400.0
        times, states = find_discrete(t0, t1, cone, epsilon=1e-3 / 86_400.0)
        ref = [((tt - t0) * 86_400.0, int(s)) for tt, s in zip(times, states, strict=True)]
        mine = [iv for iv in intervals if iv.satellite == sat.name]
        got = [(iv.start_t_s, ("sunlit", "penumbra", "umbra").index(iv.state)) for iv in mine[1:]]
        assert [s for _, s in got] == [s for _, s in ref], sat.name
        for (t_mine, _), (t_ref, _) in zip(got, ref, strict=True):
            # the issue asks for 1 s; they agree to 0.1 s (the low-precision Sun's
            # 0.01 deg), so a quarter second still catches a model gone wrong
            assert abs(t_mine - t_ref) < 0.25, (sat.name, t_mine, t_ref)
            checked += 1
        # skyfield's own geometry: the Sun's centre goes behind the limb mid-penumbra
        times, _ = find_discrete(t0, t1, lit, epsilon=1e-3 / 86_400.0)
        centre = [(tt - t0) * 86_400.0 for tt in times]
        mids = [0.5 * (iv.start_t_s + iv.stop_t_s) for iv in mine if iv.state == "penumbra"]
        assert len(centre) == len(mids), sat.name
        assert np.abs(np.array(centre) - np.array(mids)).max() < 1.0, sat.name
    assert checked >= 40


def test_intervals_tile_the_span_and_penumbra_fraction_is_the_discs_overlap(sample_day):
    fleet, intervals = sample_day
    for name in fleet.names:
        mine = [iv for iv in intervals if iv.satellite == name]
        assert mine[0].start_t_s == 0.0 and mine[0].start_clipped
        assert mine[-1].stop_t_s == 6 * 3600.0 and mine[-1].stop_clipped
        for a, b in itertools.pairwise(mine):
            assert a.stop_t_s == b.start_t_s and a.state != b.state
        for iv in mine:
            if iv.state == "penumbra":
                # entering or leaving the umbra, about half the disc on average
                assert 0.45 < iv.mean_fraction < 0.55
                assert 5.0 < iv.duration_s < 30.0
    assert SunlightInterval.from_dict(intervals[1].to_dict()) == _rounded(intervals[1])


def _rounded(iv: SunlightInterval) -> SunlightInterval:
    d = iv.to_dict()
    return SunlightInterval(
        iv.satellite,
        iv.state,
        d["start_t_s"],
        d["stop_t_s"],
        d["mean_fraction"],
        iv.start_clipped,
        iv.stop_clipped,
    )


def test_illuminated_fraction_known_values():
    sun = np.array([1.496e11, 0.0, 0.0])
    r = WGS84_A_M + 500e3
    assert illuminated_fraction(np.array([r, 0, 0]), sun) == 1.0  # day side
    assert illuminated_fraction(np.array([-r, 0, 0]), sun) == 0.0  # midnight
    # at the limb's tangent from the Sun's centre, half the disc (to the curvature)
    y = WGS84_A_M  # the line to the Sun's centre grazes the Earth
    x = -math.sqrt(r * r - y * y)
    half = float(illuminated_fraction(np.array([x, y, 0.0]), sun))
    assert abs(half - 0.5) < 0.01


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 1.0), st.sampled_from([0.5, 2.0, 60.0, 247.0]))
def test_the_fraction_seen_is_the_discs_overlap_counted_on_the_sphere(depth, b_over_a):
    """The planar lens formula against a brute count on the sphere: directions on a
    fine grid over the Sun's disc that fall outside the Earth's (angle to the
    Earth's centre over b), with the Sun's centre ``depth`` of the way from first to
    inner contact; Earth discs from half the Sun's (an annular eclipse, never in
    LEO) to a LEO satellite's 66 deg (b / a = 247)."""
    a = 0.00465  # the Sun's angular radius seen from near the Earth, rad
    b = a * b_over_a
    c = (a + b) - depth * 2 * min(a, b)
    # a satellite and a Sun whose discs are a and b wide and c apart
    sat = np.array([SHADOW_EARTH_RADIUS_M / math.sin(b), 0.0, 0.0])
    towards_sun = np.array([-math.cos(c), math.sin(c), 0.0])
    lit = float(illuminated_fraction(sat, sat + SUN_RADIUS_M / math.sin(a) * towards_sun))
    u = np.linspace(-a, a, 601)
    x, y = np.meshgrid(u, u)
    inside = x * x + y * y <= a * a
    # directions around the Sun's centre (1, 0, 0); the Earth's centre c away in x-y
    v = np.stack([np.ones_like(x), x, y])
    v /= np.linalg.norm(v, axis=0)
    earth = np.array([math.cos(c), math.sin(c), 0.0])
    hidden = np.einsum("k,kij->ij", earth, v) >= math.cos(b)
    counted = 1.0 - (inside & hidden).sum() / inside.sum()
    assert lit == pytest.approx(counted, abs=0.005)


def _beta_rad(fleet: Fleet, t_s: float) -> float:
    r, v = fleet.teme(t_s)
    h = np.cross(r[0, 0], v[0, 0])
    jd, fr = julian_date(EPOCH + timedelta(seconds=t_s))
    s = sun_mod_m(jd, fr)
    return math.asin(float(np.dot(h, s) / np.linalg.norm(h) / np.linalg.norm(s)))


@pytest.mark.parametrize("ltan_h", [22.5, 0.0, 3.0, 9.0, 10.5, 13.5, 16.5])
def test_eclipse_fraction_of_a_500_km_orbit_against_the_closed_form(ltan_h):
    """fraction = acos(sqrt(h^2 + 2 R h) / ((R + h) cos beta)) / pi for |beta| < beta*
    (cylindrical shadow, circular orbit): the umbra plus the hidden part of the
    penumbra over five whole orbits, with beta and R + h taken from the SGP4 orbit."""
    sat = sso_plane(EPOCH, count=1, alt_m=500e3, ltan_h=ltan_h)[0]
    fleet = Fleet([sat], EPOCH)
    period_s = 2 * math.pi / sat.satrec.no_kozai * 60.0
    span = 5 * period_s
    span = round(span / 10.0) * 10.0
    (summary,) = sunlight_summary(sunlight_intervals(fleet, duration_s=span))
    t = np.linspace(0.0, span, 500)
    r_mean = float(np.linalg.norm(fleet.teme(t)[0][0], axis=1).mean())
    h = r_mean - WGS84_A_M
    beta = _beta_rad(fleet, span / 2)
    closed = math.acos(math.sqrt(h * h + 2 * WGS84_A_M * h) / (r_mean * math.cos(beta))) / math.pi

    assert summary.shadow_fraction == pytest.approx(closed, abs=0.002)
    assert summary.eclipses in (5, 6)  # 6 where the span starts and ends in one


def _dawn_dusk(epoch: datetime, alt_m: float, ltan_h: float) -> tuple[float, float]:
    """(shadow fraction, longest eclipse in minutes) of one satellite over a day."""
    sat = sso_plane(epoch, count=1, alt_m=alt_m, ltan_h=ltan_h)[0]
    fleet = Fleet([sat], epoch)
    (s,) = sunlight_summary(sunlight_intervals(fleet, duration_s=86_400.0))
    return s.shadow_fraction, s.longest_eclipse_s / 60.0


def test_dawn_dusk_eclipse_season():
    """The 06:00 planes are shadowed around the December solstice (the scenarios'
    epoch, 2026-01-01), the 18:00 planes around the June solstice; both are in
    sunlight at the equinoxes. Around the epoch, 500-700 km: 18-24 % of the time,
    up to 23 min an orbit."""
    jan = EPOCH
    for alt_m, lo, hi, longest_min in ((500e3, 0.22, 0.24, 22.7), (700e3, 0.175, 0.195, 18.8)):
        fraction, longest = _dawn_dusk(jan, alt_m, 6.0)
        assert lo < fraction < hi, (alt_m, fraction)
        assert longest == pytest.approx(longest_min, abs=0.3)
        assert _dawn_dusk(jan, alt_m, 18.0) == (0.0, 0.0)
    june = datetime(2026, 6, 21, tzinfo=UTC)
    assert _dawn_dusk(june, 500e3, 18.0)[0] > 0.15
    assert _dawn_dusk(june, 500e3, 6.0) == (0.0, 0.0)
    for equinox in (datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 9, 23, tzinfo=UTC)):
        for ltan in (6.0, 18.0):
            assert _dawn_dusk(equinox, 500e3, ltan) == (0.0, 0.0)


def test_the_contact_plan_carries_the_sunlight_and_its_json_keeps_it():
    scenario = default_scenario()
    plan = contact_plan(scenario, duration_s=7200.0, isl=False, sunlight=True)
    assert plan.sunlight == tuple(sunlight_intervals(scenario.fleet, duration_s=7200.0))
    back = ContactPlan.from_json(plan.to_json())
    assert back.sunlight_step_s == 10.0
    assert [iv.to_dict() for iv in back.sunlight] == [iv.to_dict() for iv in plan.sunlight]
    table = format_table(plan)
    assert "penumbra in (UTC)" in table and "in shadow" in table
    spans = plan.sunlight_spans("CS-03")
    assert spans[0][0] == 0.0 and spans[-1][1] == 7200.0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert {f for _, _, f in spans} >= {0.0, 1.0}
    # not asked for: not computed, not in the JSON, not in the table
    bare = contact_plan(scenario, duration_s=7200.0, isl=False)
    assert bare.sunlight == () and "sunlight_intervals" not in bare.to_dict()
    assert ContactPlan.from_json(bare.to_json()).sunlight_step_s is None
    assert "penumbra" not in format_table(bare)


def test_sunlight_search_refuses_bad_arguments():
    fleet = Fleet([satellite_from_elements("X", EPOCH, alt_m=500e3, inclination_deg=97.4)], EPOCH)
    with pytest.raises(ConfigError, match="block_sats"):
        sunlight_intervals(fleet, duration_s=600.0, block_sats=0)
    with pytest.raises(ConfigError, match="duration_s"):
        sunlight_intervals(fleet, duration_s=605.0)
    with pytest.raises(ConfigError, match="state"):
        SunlightInterval.from_dict({"satellite": "X", "state": "dusk"})
