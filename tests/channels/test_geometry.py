"""Geometry: the ellipsoid, look angles against closed forms, Earth blockage of
laser links, ground-station validation."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from channels.geometry import (
    C_MPS,
    WGS84_A_M,
    WGS84_B_M,
    GroundStation,
    earth_central_angle_rad,
    ecef_to_geodetic,
    geodetic_to_ecef,
    isl_geometry,
    look_angles,
    segment_clearance_m,
    slant_range_m,
)
from channels.orbit import Fleet, IslView, satellite_from_elements, sso_plane
from linkstack.errors import ConfigError

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def test_geodetic_to_ecef_known_points_and_round_trip():
    np.testing.assert_allclose(geodetic_to_ecef(0.0, 0.0, 0.0), [WGS84_A_M, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(geodetic_to_ecef(90.0, 0.0, 0.0), [0.0, 0.0, WGS84_B_M], atol=1e-6)
    np.testing.assert_allclose(
        geodetic_to_ecef(0.0, 90.0, 1000.0), [0.0, WGS84_A_M + 1000.0, 0.0], atol=1e-6
    )
    lat = np.array([-89.99, -45.0, 0.0, 12.3, 78.23, 90.0])
    lon = np.array([-179.0, 10.0, 0.0, 100.0, 15.4, 0.0])
    alt = np.array([0.0, -400.0, 550e3, 1e6, 500.0, 7e6])
    la, lo, al = ecef_to_geodetic(geodetic_to_ecef(lat, lon, alt))
    np.testing.assert_allclose(la, lat, atol=1e-9)
    np.testing.assert_allclose(lo[:-1], lon[:-1], atol=1e-9)  # longitude undefined at the pole
    np.testing.assert_allclose(al, alt, atol=1e-4)


def test_max_slant_range_closed_form_550_km_5_deg():
    # rho = sqrt((R+h)^2 - (R cos e)^2) - R sin e = 2,205.9 km, 7.36 ms one way.
    rho = float(slant_range_m(550e3, 5.0))
    assert rho == pytest.approx(2_206e3, abs=1e3)
    assert rho / C_MPS == pytest.approx(7.36e-3, abs=0.01e-3)


@pytest.mark.parametrize(("alt_m", "el_deg"), [(550e3, 5.0), (500e3, 10.0), (1000e3, 30.0)])
def test_look_angles_agree_with_the_closed_form(alt_m, el_deg):
    # In the equatorial plane the ellipsoid is a circle of radius a and its normal
    # is radial, so the spherical closed form is exact for a station at (0, 0, 0).
    st = GroundStation("eq", 0.0, 0.0, 0.0, min_elevation_deg=0.0)
    lam = float(earth_central_angle_rad(alt_m, el_deg))
    r = (WGS84_A_M + alt_m) * np.array([math.cos(lam), math.sin(lam), 0.0])
    la = look_angles(st, r)
    assert float(la.elevation_deg) == pytest.approx(el_deg, abs=1e-9)
    assert float(la.azimuth_deg) == pytest.approx(90.0, abs=1e-9)  # due east
    assert float(la.range_m) == pytest.approx(float(slant_range_m(alt_m, el_deg)), abs=1e-6)


def test_look_angles_range_rate_sign_and_zenith():
    st = GroundStation("pole", 90.0, 0.0, 0.0)
    r = np.array([0.0, 0.0, WGS84_B_M + 500e3])
    la = look_angles(st, r, np.array([0.0, 0.0, 10.0]))
    assert float(la.elevation_deg) == pytest.approx(90.0)
    assert float(la.range_m) == pytest.approx(500e3)
    assert float(la.range_rate_mps) == pytest.approx(10.0)  # moving away: positive


# --- Earth blockage -----------------------------------------------------------------


def test_antipodal_satellites_are_blocked():
    a = np.array([WGS84_A_M + 500e3, 0.0, 0.0])
    g = isl_geometry(a, np.zeros(3), -a, np.zeros(3))
    assert not g.clear
    assert float(g.clearance_m) == pytest.approx(-(WGS84_A_M + 80e3), abs=1e-6)
    assert float(g.range_m) == pytest.approx(2 * (WGS84_A_M + 500e3))


def test_neighbours_and_close_satellites_are_clear():
    a = np.array([WGS84_A_M + 500e3, 0.0, 0.0])
    b = a + np.array([0.0, 1000.0, 0.0])  # one kilometre apart
    g = isl_geometry(a, np.zeros(3), b, np.zeros(3))
    assert g.clear and float(g.clearance_m) == pytest.approx(500e3 - 80e3, abs=1.0)
    same = isl_geometry(a, np.zeros(3), a, np.zeros(3))  # co-located: no division by zero
    assert same.clear and float(same.range_m) == 0.0


@pytest.mark.parametrize(("closest_km", "clear"), [(50.0, False), (79.9, False), (80.1, True)])
def test_margin_is_respected(closest_km, clear):
    # A symmetric chord whose midpoint passes ``closest_km`` above the sphere.
    x = WGS84_A_M + closest_km * 1e3
    a, b = np.array([x, -2e6, 0.0]), np.array([x, 2e6, 0.0])
    g = isl_geometry(a, np.zeros(3), b, np.zeros(3), margin_m=80e3)
    assert bool(g.clear) is clear
    assert float(g.clearance_m) == pytest.approx((closest_km - 80.0) * 1e3, abs=1e-6)
    limit = WGS84_A_M + 80e3
    assert segment_clearance_m(*a, *b, limit) == pytest.approx(float(g.clearance_m), abs=1e-6)


def test_real_orbits_ring_neighbours_clear_antipodes_blocked():
    sats = sso_plane(EPOCH, count=12, alt_m=500e3, ltan_h=22.5)
    fleet = Fleet(sats, EPOCH)
    t = np.arange(0.0, 6000.0, 60.0)
    r, v = fleet.ecef(t)
    neighbours = isl_geometry(r[0], v[0], r[1], v[1])
    antipodes = isl_geometry(r[0], v[0], r[6], v[6])
    assert neighbours.clear.all() and (~antipodes.clear).all()
    # 30 deg apart at ~6,878 km: a 3,560 km chord passing ~6,644 km from the centre.
    assert np.all(np.abs(neighbours.range_m - 3_560e3) < 30e3)
    view = IslView(sats[0], sats[1], EPOCH)
    look = view.at(1234.0)
    r1, v1 = fleet.ecef([1234.0], [0, 1])
    g = isl_geometry(r1[0, 0], v1[0, 0], r1[1, 0], v1[1, 0])
    assert look.range_m == pytest.approx(float(g.range_m), abs=1e-3)
    assert look.range_rate_mps == pytest.approx(float(g.range_rate_mps), abs=1e-6)
    assert look.clearance_m == pytest.approx(float(g.clearance_m), abs=1e-3)
    assert look.clear and not IslView(sats[0], sats[6], EPOCH).at(1234.0).clear


def test_isl_view_refuses_negative_margin():
    s = satellite_from_elements("s", EPOCH, alt_m=500e3, inclination_deg=97.4)
    with pytest.raises(ConfigError) as exc:
        IslView(s, s, EPOCH, margin_m=-1.0)
    assert exc.value.field == "margin_m"


# --- ground stations --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lat_deg": 91.0}, "lat_deg"),
        ({"lat_deg": -90.5}, "lat_deg"),
        ({"lat_deg": math.nan}, "lat_deg"),
        ({"lon_deg": 400.0}, "lon_deg"),
        ({"alt_m": -600.0}, "alt_m"),
        ({"min_elevation_deg": -1.0}, "min_elevation_deg"),
        ({"min_elevation_deg": 90.5}, "min_elevation_deg"),
        ({"min_elevation_deg": "10"}, "min_elevation_deg"),
        ({"name": ""}, "name"),
    ],
)
def test_ground_station_refuses_impossible_parameters(kwargs, field):
    args = {"name": "gs", "lat_deg": 10.0, "lon_deg": 20.0, "alt_m": 0.0}
    args.update(kwargs)
    with pytest.raises(ConfigError) as exc:
        GroundStation(**args)
    assert exc.value.field == field


def test_ground_station_defaults_and_frames():
    st = GroundStation("Svalbard", 78.23, 15.40, 500.0)
    assert st.min_elevation_deg == 10.0
    up = np.array(st.enu[2])
    np.testing.assert_allclose(np.linalg.norm(np.array(st.enu), axis=1), 1.0)
    # Up is the ellipsoid normal: it differs from the geocentric direction (by
    # < 0.2 deg) and points out of the Earth.
    geocentric = np.array(st.ecef_m) / np.linalg.norm(st.ecef_m)
    assert 0.0 < math.degrees(math.acos(up @ geocentric)) < 0.2
