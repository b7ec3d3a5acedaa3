"""Orbits: SGP4 against published reference output, frames, sun-synchronous and
Walker constellations, TLE parsing, the per-unit path against the vectorized one."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from channels.geometry import (
    MU_EARTH_M3PS2,
    GroundStation,
    gmst_rad,
    julian_date,
    look_angles,
    teme_to_ecef,
)
from channels.orbit import (
    SSO_NODAL_RATE_RADPS,
    Fleet,
    IslView,
    PropagationError,
    StationView,
    load_tles,
    parse_tles,
    raan_for_ltan_deg,
    satellite_from_elements,
    sso_inclination_deg,
    sso_plane,
    state_ecef,
    walker_delta,
)
from linkstack.errors import ConfigError

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

# Vallado's SGP4 verification satellite 00005 (SGP4-VER.TLE) and its published
# TEME output (tcppver.out, WGS-72): tsince minutes -> r km, v km/s.
TLE_00005 = (
    "1 00005U 58002B   00179.78495062  .00000023  00000-0  28098-4 0  4753\n"
    "2 00005  34.2682 348.7242 1859667 331.7664  19.3264 10.82419157413667\n"
)
REF_00005 = {
    0.0: (
        (7022.46529266, -1400.08296755, 0.03995155),
        (1.893841015, 6.405893759, 4.534807250),
    ),
    360.0: (
        (-7154.03120202, -3783.17682504, -3536.19412294),
        (4.741887409, -4.151817765, -2.093935425),
    ),
    720.0: (
        (-7134.59340119, 6531.68641334, 3260.27186483),
        (-4.113793027, -2.911922039, -2.557327851),
    ),
}

ISS_TLE = (
    "ISS (ZARYA)\n"
    "1 25544U 98067A   19343.69339541  .00001764  00000-0  38792-4 0  9991\n"
    "2 25544  51.6439 211.2001 0007417  17.6667  85.6398 15.50103472202482\n"
)


# --- SGP4 and frames ------------------------------------------------------------


def test_propagation_matches_published_sgp4_reference():
    (sat,) = parse_tles(TLE_00005)
    rec = sat.satrec
    # Epoch exactly at the element set's epoch: (jd, fr) straight from the record.
    epoch = datetime(1949, 12, 31, tzinfo=UTC) + timedelta(
        days=(rec.jdsatepoch - 2433281.5) + rec.jdsatepochF
    )
    fleet = Fleet([sat], epoch)
    t_s = np.array(sorted(REF_00005)) * 60.0
    r, v = fleet.teme(t_s)
    for i, minutes in enumerate(sorted(REF_00005)):
        r_ref, v_ref = REF_00005[minutes]
        # The epoch passes through a datetime (microsecond resolution): <= 0.5 us,
        # i.e. a few millimetres along track. Published figures have 0.01 m.
        np.testing.assert_allclose(r[0, i], np.array(r_ref) * 1000.0, atol=0.02)
        np.testing.assert_allclose(v[0, i], np.array(v_ref) * 1000.0, atol=1e-4)
        # And the same as calling the library directly.
        err, r_lib, v_lib = rec.sgp4_tsince(minutes)
        assert err == 0
        np.testing.assert_allclose(r[0, i], np.array(r_lib) * 1000.0, atol=0.02)
        np.testing.assert_allclose(v[0, i], np.array(v_lib) * 1000.0, atol=1e-4)


def test_gmst_matches_vallado_example_3_5():
    # 1992 August 20, 12:14 UT1 -> GMST 152.578787810 deg (IAU-82).
    jd, fr = julian_date(datetime(1992, 8, 20, 12, 14, tzinfo=UTC))
    assert math.degrees(gmst_rad(jd, fr)) == pytest.approx(152.578787810, abs=1e-6)


def test_julian_date_and_refusal_of_naive_datetimes():
    assert sum(julian_date(datetime(2000, 1, 1, 12, tzinfo=UTC))) == 2451545.0
    jd, fr = julian_date(datetime(2026, 1, 1, 6, tzinfo=UTC))
    assert jd == 2461041.5 and fr == 0.25
    with pytest.raises(ConfigError) as exc:
        julian_date(datetime(2026, 1, 1))
    assert exc.value.field == "epoch"


def test_teme_to_ecef_matches_vallado_2006_example():
    # Vallado et al. 2006 (Revisiting Spacetrack Report #3), TEME -> PEF at
    # 2004-04-06 07:51:28.386009 UTC with UT1-UTC = -0.4399619 s.
    r_teme = np.array([5094.18016210, 6127.64465950, 6380.34453270]) * 1000.0
    v_teme = np.array([-4.746131487, 0.785818041, 5.531931288]) * 1000.0
    ut1 = datetime(2004, 4, 6, 7, 51, 28, 386009, tzinfo=UTC) + timedelta(seconds=-0.4399619)
    r, v = teme_to_ecef(r_teme, v_teme, gmst_rad(*julian_date(ut1)))
    r_pef = np.array([-1033.4750312, 7901.3055856, 6380.3445328]) * 1000.0
    v_pef = np.array([-3.225632747, -2.872442511, 5.531931288]) * 1000.0
    np.testing.assert_allclose(r, r_pef, atol=0.02)  # 2 cm
    np.testing.assert_allclose(v, v_pef, atol=1e-4)  # 0.1 mm/s
    # ITRF adds polar motion (0.33 arcsec here): we ignore it, a 10-20 m error.
    r_itrf = np.array([-1033.4793830, 7901.2952754, 6380.3565958]) * 1000.0
    assert np.linalg.norm(r - r_itrf) < 20.0


def test_ecef_velocity_includes_earth_rotation():
    sat = satellite_from_elements("s", EPOCH, alt_m=550e3, inclination_deg=53.0)
    fleet = Fleet([sat], EPOCH)
    t = np.array([100.0, 100.5, 101.0])
    r, v = fleet.ecef(t)
    # Central difference of ECEF positions equals the ECEF velocity.
    fd = (r[0, 2] - r[0, 0]) / 1.0
    np.testing.assert_allclose(v[0, 1], fd, atol=0.01)


# --- orbits from elements --------------------------------------------------------


@pytest.mark.parametrize(("alt_km", "expected_deg"), [(500, 97.40), (550, 97.59), (800, 98.60)])
def test_sso_inclination_standard_values(alt_km, expected_deg):
    assert sso_inclination_deg(alt_km * 1e3) == pytest.approx(expected_deg, abs=0.01)


def test_sso_inclination_gives_the_suns_nodal_rate():
    alt_m = 550e3
    a = 6_378_137.0 + alt_m
    n = math.sqrt(MU_EARTH_M3PS2 / a**3)
    cos_i = math.cos(math.radians(sso_inclination_deg(alt_m)))
    rate = -1.5 * n * 1.08262668e-3 * (6_378_137.0 / a) ** 2 * cos_i
    assert rate == pytest.approx(2 * math.pi / (365.2422 * 86400), rel=1e-12)
    # SGP4's own secular node rate (WGS-72, with J2^2 and J4 terms) agrees to 0.5 %.
    sat = satellite_from_elements(
        "s", EPOCH, alt_m=alt_m, inclination_deg=sso_inclination_deg(alt_m)
    )
    assert sat.satrec.nodedot / 60.0 == pytest.approx(SSO_NODAL_RATE_RADPS, rel=5e-3)


def test_sso_refuses_altitudes_without_a_solution():
    with pytest.raises(ConfigError) as exc:
        sso_inclination_deg(7_000e3)
    assert exc.value.field == "alt_m"


def test_ltan_places_the_node_relative_to_the_mean_sun():
    # Mean Sun's right ascension at 2026-01-01 00:00 UT: mean longitude
    # L = 280.460 + 0.9856474 d (d days from J2000) = 280.76 deg (Astronomical
    # Almanac low-precision formula; the mean Sun's RA agrees to ~0.1 deg).
    noon = raan_for_ltan_deg(EPOCH, 12.0)
    assert noon == pytest.approx(280.76, abs=0.2)
    assert (raan_for_ltan_deg(EPOCH, 18.0) - noon) % 360.0 == pytest.approx(90.0)
    assert (raan_for_ltan_deg(EPOCH, 6.0) - noon) % 360.0 == pytest.approx(270.0)
    # The same local time a day later: the node moved with the mean Sun (~0.986 deg).
    later = raan_for_ltan_deg(EPOCH + timedelta(days=1), 12.0)
    assert (later - noon) % 360.0 == pytest.approx(360.0 / 365.2422, abs=1e-3)


def test_generated_orbit_has_the_requested_mean_altitude():
    sat = satellite_from_elements("s", EPOCH, alt_m=500e3, inclination_deg=97.4)
    assert sat.satrec.a * sat.satrec.radiusearthkm * 1000.0 == pytest.approx(6_878_137.0, abs=1.0)
    r, _ = Fleet([sat], EPOCH).teme(np.arange(0.0, 5700.0, 30.0))
    radius = np.linalg.norm(r[0], axis=1)
    # Short-period J2 terms move the osculating radius by ~10 km around the mean.
    assert abs(radius.mean() - 6_878_137.0) < 10e3
    assert radius.max() - radius.min() < 30e3


def test_sso_plane_is_evenly_spaced():
    sats = sso_plane(EPOCH, count=12, alt_m=500e3, ltan_h=18.0, name_prefix="CS")
    assert [s.name for s in sats][:2] == ["CS-01", "CS-02"]
    mo = np.degrees([s.satrec.mo for s in sats])
    np.testing.assert_allclose(np.diff(mo), 30.0, atol=1e-9)
    assert len({round(s.satrec.nodeo, 12) for s in sats}) == 1
    assert math.degrees(sats[0].satrec.inclo) == pytest.approx(97.40, abs=0.01)


def test_walker_delta_pattern():
    sats = walker_delta(
        EPOCH, total=24, planes=3, phasing=1, inclination_deg=53.0, alt_m=550e3, name_prefix="W"
    )
    assert len(sats) == 24 and sats[0].name == "W-P01-S01" and sats[8].name == "W-P02-S01"
    raan = np.degrees([s.satrec.nodeo for s in sats]).reshape(3, 8)
    np.testing.assert_allclose(raan[:, 0], [0.0, 120.0, 240.0], atol=1e-9)
    mo = np.degrees([s.satrec.mo for s in sats]).reshape(3, 8)
    np.testing.assert_allclose(np.diff(mo[0]), 45.0, atol=1e-9)
    # Phasing F=1: each plane is 360 F / T = 15 deg ahead of the previous one.
    np.testing.assert_allclose(mo[1, 0] - mo[0, 0], 15.0, atol=1e-9)
    np.testing.assert_allclose(mo[2, 0] - mo[0, 0], 30.0, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"planes": 5}, "planes"),
        ({"phasing": 3}, "phasing"),
        ({"total": 0}, "total"),
        ({"alt_m": 50e3}, "alt_m"),
        ({"inclination_deg": 190.0}, "inclination_deg"),
    ],
)
def test_walker_refuses_impossible_parameters(kwargs, field):
    args = {"total": 24, "planes": 3, "phasing": 1, "inclination_deg": 53.0, "alt_m": 550e3}
    args.update(kwargs)
    with pytest.raises(ConfigError) as exc:
        walker_delta(EPOCH, **args)
    assert exc.value.field == field


def test_elements_refuse_impossible_orbits():
    with pytest.raises(ConfigError) as exc:
        satellite_from_elements("s", EPOCH, alt_m=500e3, inclination_deg=97.0, eccentricity=1.2)
    assert exc.value.field == "eccentricity"
    with pytest.raises(ConfigError) as exc:
        satellite_from_elements("s", EPOCH, alt_m=500e3, inclination_deg=97.0, eccentricity=0.1)
    assert exc.value.field == "eccentricity"  # perigee inside the atmosphere


# --- TLEs --------------------------------------------------------------------------


def test_tle_two_and_three_line_sets(tmp_path):
    text = ISS_TLE + "0 VALLADO 5\n" + TLE_00005 + "\n# a comment\n"
    sats = parse_tles(text)
    assert [s.name for s in sats] == ["ISS (ZARYA)", "VALLADO 5"]
    assert sats[1].satrec.satnum == 5
    assert sats[0].epoch.date() == datetime(2019, 12, 9, tzinfo=UTC).date()
    bare = parse_tles(TLE_00005)
    assert bare[0].name == "NORAD-00005"
    path = tmp_path / "sats.tle"
    path.write_text(text)
    assert [s.name for s in load_tles(path)] == ["ISS (ZARYA)", "VALLADO 5"]
    assert [s.name for s in load_tles(str(path))] == ["ISS (ZARYA)", "VALLADO 5"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (ISS_TLE.replace("9991\n", "9992\n"), "line 1 checksum"),
        ("just a name\n", "lines"),
        ("", "text"),
        ("A\nB\n" + TLE_00005, "lines"),
        (ISS_TLE + ISS_TLE, "name"),
    ],
)
def test_tle_refusals(text, field):
    with pytest.raises(ConfigError) as exc:
        parse_tles(text)
    assert exc.value.field == field


def test_tle_missing_file():
    with pytest.raises(ConfigError) as exc:
        load_tles("/nonexistent/file.tle")
    assert exc.value.field == "path"


# --- the per-unit path ---------------------------------------------------------------


def test_station_view_matches_the_vectorized_path():
    sat = satellite_from_elements("s", EPOCH, alt_m=500e3, inclination_deg=97.4, raan_deg=20.0)
    st = GroundStation("Kiruna", 67.88, 21.07, 340.0)
    fleet = Fleet([sat], EPOCH)
    t = np.array([0.0, 1234.5, 40_000.25, 86_399.0])
    r, v = fleet.ecef(t)
    la = look_angles(st, r[0], v[0])
    view = StationView(st, sat, EPOCH)
    for i, ts in enumerate(t):
        look = view.at(float(ts))
        assert look.elevation_deg == pytest.approx(la.elevation_deg[i], abs=1e-9)
        assert look.azimuth_deg == pytest.approx(la.azimuth_deg[i], abs=1e-8)
        assert look.range_m == pytest.approx(la.range_m[i], abs=1e-4)
        assert look.range_rate_mps == pytest.approx(la.range_rate_mps[i], abs=1e-7)
        state = state_ecef(sat, EPOCH, float(ts))
        np.testing.assert_allclose(state[:3], r[0, i], atol=1e-4)


def test_range_acceleration_is_the_derivative_of_range_rate():
    a = satellite_from_elements("a", EPOCH, alt_m=500e3, inclination_deg=97.4)
    b = satellite_from_elements("b", EPOCH, alt_m=500e3, inclination_deg=97.4, mean_anomaly_deg=30)
    view = StationView(GroundStation("eq", 0.0, 10.0), a, EPOCH)
    isl = IslView(a, b, EPOCH)
    for t in (300.0, 2000.0, 5000.0):
        fd = (view.at(t + 0.5).range_rate_mps - view.at(t - 0.5).range_rate_mps) / 1.0
        assert view.at(t).range_accel_mps2 == pytest.approx(fd, abs=2e-4)
        fd = (isl.at(t + 0.5).range_rate_mps - isl.at(t - 0.5).range_rate_mps) / 1.0
        assert isl.at(t).range_accel_mps2 == pytest.approx(fd, abs=2e-4)


def test_propagation_error_is_reported():
    # 200 km with heavy drag: SGP4 gives up within days (error code 1).
    sat = satellite_from_elements("d", EPOCH, alt_m=200e3, inclination_deg=51.6, bstar=0.01)
    view = StationView(GroundStation("x", 0.0, 0.0), sat, EPOCH)
    view.at(0.0)
    with pytest.raises(PropagationError) as exc:
        view.at(10 * 86400.0)
    assert exc.value.satellite == "d"
    r, _ = Fleet([sat], EPOCH).ecef([0.0, 10 * 86400.0])
    assert np.isfinite(r[0, 0]).all() and np.isnan(r[0, 1]).all()


def test_tle_with_a_non_ascii_digit_is_refused_cleanly():
    # found by the fuzzer: "²" passes str.isdigit() but int() refuses it
    text = (
        "ISS (ZARYA)\n"
        "1 2\u00b2544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9005\n"
        "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.50377579432925"
    )
    with pytest.raises(ConfigError):
        parse_tles(text)


def _with_checksum(line: str) -> str:
    total = sum(int(c) if c.isascii() and c.isdigit() else c == "-" for c in line[:68])
    return line[:68] + str(total % 10)


@pytest.mark.parametrize(
    "col, text, field",
    [
        (52, "1x.50377", "mean motion"),  # sgp4 alone would read "1" rev/day and go on
        (52, "25.50377", "mean motion"),  # below the surface
        (8, "191.6416", "inclination"),
        (26, "00 6703", "eccentricity"),
        # found by the fuzzer: a character in a blank column shifted sgp4's reading of
        # line 2 and gave a zero mean motion, which was accepted
        (7, "0", "line 2"),
        (51, "$", "line 2"),
    ],
)
def test_tle_with_a_damaged_field_and_a_valid_checksum_is_refused(col, text, field):
    l1 = "1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9005"
    l2 = "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.50377579432925"
    assert parse_tles(f"{_with_checksum(l1)}\n{_with_checksum(l2)}")  # the intact one loads
    bad = _with_checksum(l2[:col] + text + l2[col + len(text) :])
    with pytest.raises(ConfigError) as err:
        parse_tles(f"{_with_checksum(l1)}\n{bad}")
    assert err.value.field == field
