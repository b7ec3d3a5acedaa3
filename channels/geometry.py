"""Frames, ground stations and the geometry between things that see each other.

Pure math on positions; nothing here propagates an orbit (that is ``orbit.py``).

Frames. Satellites come out of SGP4 in TEME (true equator, mean equinox of date).
We turn TEME into an Earth-fixed frame with one rotation about z by the Greenwich
mean sidereal angle (GMST, IAU-82, Vallado's formula). That frame is the
pseudo-Earth-fixed frame (PEF): ITRF without polar motion. We call it "ECEF"
throughout. What this leaves out, and how much it costs:

- polar motion (under 0.6 arcsec): under 20 m at the satellite, the same order
  for a station;
- UT1-UTC (under 0.9 s; we feed UTC where GMST wants UT1): the Earth turned by
  up to 0.9 s x 7.29e-5 rad/s = 6.6e-5 rad, so a satellite is placed up to
  460 m east or west of where it is (a fraction of a second of AOS);
- the equation of the equinoxes is not needed: TEME is referred to the mean
  equinox already, so GMST (not apparent sidereal time) is the right angle
  (Vallado et al. 2006, "Revisiting Spacetrack Report #3"); only its tiny
  post-1997 kinematic terms (a few milliarcseconds, centimetres) are dropped.

Ground stations sit on the WGS-84 ellipsoid; elevation is measured from the
plane normal to the ellipsoid (geodetic horizon); refraction is ignored (it
lifts a satellite by about 0.1 degree at 10 degrees of elevation, so real AOS
comes a second or two earlier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from channels.constants import (
    EARTH_EQUATORIAL_RADIUS_M,
    EARTH_J2,
    EARTH_MU_M3_S2,
    EARTH_ROTATION_RAD_S,
    SPEED_OF_LIGHT_M_S,
    WGS84_FLATTENING,
)
from linkstack.errors import ConfigError

# WGS-84 ellipsoid and Earth constants (SI).
# The values live in channels/constants.py; these are the names the geometry uses.
WGS84_A_M = EARTH_EQUATORIAL_RADIUS_M
WGS84_F = WGS84_FLATTENING
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
WGS84_B_M = WGS84_A_M * (1.0 - WGS84_F)
MU_EARTH_M3PS2 = EARTH_MU_M3_S2
J2_EARTH = EARTH_J2
OMEGA_EARTH_RADPS = EARTH_ROTATION_RAD_S
C_MPS = SPEED_OF_LIGHT_M_S
EARTH_RADIUS_M = WGS84_A_M  # the sphere used for Earth blockage (see isl_geometry)

_TWO_PI = 2.0 * math.pi
_SEC_TO_RAD = _TWO_PI / 86_400.0
_JD_J2000 = 2_451_545.0
_JD_ORDINAL_OFFSET = 1_721_424.5  # JD of proleptic Gregorian day 0, midnight

# A float in, a float out; an array in, an array out (the functions that only do
# arithmetic serve the per-unit path and the vectorized one alike).
Real = TypeVar("Real", float, np.ndarray)


# --- time and frames -------------------------------------------------------------


def julian_date(epoch: datetime) -> tuple[float, float]:
    """(jd, fr) of a timezone-aware datetime: jd ends in .5 (the midnight before),
    fr is the fraction of the day; kept apart so that no precision is lost."""
    if not isinstance(epoch, datetime) or epoch.utcoffset() is None:
        raise ConfigError("time", "epoch", f"must be a timezone-aware datetime, got {epoch!r}")
    u = epoch.astimezone(UTC)
    secs = u.hour * 3600 + u.minute * 60 + u.second + u.microsecond * 1e-6
    return u.toordinal() + _JD_ORDINAL_OFFSET, secs / 86_400.0


def gmst_rad(jd: Real, fr: Real | float = 0.0) -> Real:
    """Greenwich mean sidereal angle (IAU-82, Vallado eq. 3-47) at UT1 = jd + fr.

    Works on floats and on numpy arrays alike (only arithmetic, no numpy calls).
    """
    t = ((jd - _JD_J2000) + fr) / 36_525.0
    s = 67_310.54841 + (876_600.0 * 3600.0 + 8_640_184.812866) * t + (0.093104 - 6.2e-6 * t) * t * t
    return (s % 86_400.0) * _SEC_TO_RAD


def teme_to_ecef(
    r_teme: ArrayLike, v_teme: ArrayLike, gmst: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate TEME positions and velocities (arrays ``(..., 3)``) into the Earth-fixed
    frame at the sidereal angles ``gmst`` (shape ``r[..., 0]`` or broadcastable).

    The velocity gets the Earth-rotation term: v_ecef = R v_teme - omega x r_ecef.
    Units pass through (m in, m out; km in, km out).
    """
    r_teme = np.asarray(r_teme, dtype=float)
    v_teme = np.asarray(v_teme, dtype=float)
    c = np.cos(gmst)
    s = np.sin(gmst)
    x, y = r_teme[..., 0], r_teme[..., 1]
    r = np.empty(np.broadcast_shapes(r_teme.shape, (*np.shape(c), 3)))
    r[..., 0] = c * x + s * y
    r[..., 1] = c * y - s * x
    r[..., 2] = r_teme[..., 2]
    vx, vy = v_teme[..., 0], v_teme[..., 1]
    v = np.empty_like(r)
    v[..., 0] = c * vx + s * vy + OMEGA_EARTH_RADPS * r[..., 1]
    v[..., 1] = c * vy - s * vx - OMEGA_EARTH_RADPS * r[..., 0]
    v[..., 2] = v_teme[..., 2]
    return r, v


# --- the ellipsoid -----------------------------------------------------------------


def geodetic_to_ecef(lat_deg: ArrayLike, lon_deg: ArrayLike, alt_m: ArrayLike) -> np.ndarray:
    """WGS-84 geodetic latitude, longitude, height -> ECEF metres (arrays welcome)."""
    lat = np.radians(lat_deg)
    lon = np.radians(lon_deg)
    alt = np.asarray(alt_m, dtype=float)
    sl = np.sin(lat)
    n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sl * sl)
    x = (n + alt) * np.cos(lat) * np.cos(lon)
    y = (n + alt) * np.cos(lat) * np.sin(lon)
    z = (n * (1.0 - WGS84_E2) + alt) * sl
    return np.stack([x, y, z], axis=-1)


def ecef_to_geodetic(r_m: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ECEF metres -> (lat_deg, lon_deg, alt_m) on WGS-84; a few fixed-point
    iterations, converged to well under a millimetre for anything above 100 km
    from the centre."""
    r = np.asarray(r_m, dtype=float)
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    p = np.hypot(x, y)
    lon = np.arctan2(y, x)
    lat = np.arctan2(z, p * (1.0 - WGS84_E2))
    for _ in range(5):
        sl = np.sin(lat)
        n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sl * sl)
        lat = np.arctan2(z + WGS84_E2 * n * sl, p)
    sl = np.sin(lat)
    # Height along the normal; this form is stable at every latitude, poles included.
    alt = p * np.cos(lat) + z * sl - WGS84_A_M * np.sqrt(1.0 - WGS84_E2 * sl * sl)
    return np.degrees(lat), np.degrees(lon), alt


def enu_basis(lat_deg: float, lon_deg: float) -> np.ndarray:
    """Rows east, north, up (geodetic) at a point, as a 3x3 array."""
    lat = math.radians(lat_deg)
    lon = math.radians(lon_deg)
    sl, cl, so, co = math.sin(lat), math.cos(lat), math.sin(lon), math.cos(lon)
    return np.array(
        [
            [-so, co, 0.0],
            [-sl * co, -sl * so, cl],
            [cl * co, cl * so, sl],
        ]
    )


# --- ground stations ---------------------------------------------------------------


@dataclass(frozen=True)
class GroundStation:
    """A ground station on the WGS-84 ellipsoid with its elevation mask.

    The ECEF position and the local east/north/up axes are computed once here,
    because every look angle needs them.
    """

    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    min_elevation_deg: float = 10.0
    ecef_m: tuple[float, float, float] = field(init=False, repr=False, compare=False)
    enu: tuple[tuple[float, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"ground station {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("ground station", "name", "must be a non-empty string")
        for fname, lo, hi in (
            ("lat_deg", -90.0, 90.0),
            ("lon_deg", -180.0, 360.0),
            ("alt_m", -500.0, 100_000.0),
            ("min_elevation_deg", 0.0, 90.0),
        ):
            value = getattr(self, fname)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(where, fname, f"must be a number, got {value!r}")
            if not math.isfinite(value) or not lo <= value <= hi:
                raise ConfigError(where, fname, f"must be in {lo:g}..{hi:g}, got {value!r}")
        ecef = geodetic_to_ecef(self.lat_deg, self.lon_deg, self.alt_m)
        object.__setattr__(self, "ecef_m", tuple(float(c) for c in ecef))
        basis = enu_basis(self.lat_deg, self.lon_deg)
        object.__setattr__(self, "enu", tuple(tuple(float(c) for c in row) for row in basis))


class LookAngles(NamedTuple):
    """What a station sees: arrays (or floats) of one shape."""

    elevation_deg: np.ndarray
    azimuth_deg: np.ndarray
    range_m: np.ndarray
    range_rate_mps: np.ndarray


def look_angles(
    station: GroundStation, r_ecef_m: ArrayLike, v_ecef_mps: ArrayLike | None = None
) -> LookAngles:
    """Elevation, azimuth (from north, clockwise), slant range and range rate
    (positive when the satellite moves away) from ``station`` to ECEF positions
    ``(..., 3)``; vectorized over any leading shape."""
    r = np.asarray(r_ecef_m, dtype=float)
    d = r - np.asarray(station.ecef_m)
    enu = np.asarray(station.enu)
    e, n, u = d @ enu[0], d @ enu[1], d @ enu[2]
    rng = np.sqrt(np.einsum("...i,...i->...", d, d))
    el = np.degrees(np.arcsin(np.clip(u / rng, -1.0, 1.0)))
    az = np.degrees(np.arctan2(e, n)) % 360.0
    if v_ecef_mps is None:
        rr = np.full_like(rng, np.nan)
    else:
        rr = np.einsum("...i,...i->...", np.asarray(v_ecef_mps, dtype=float), d) / rng
    return LookAngles(el, az, rng, rr)


# --- closed forms (spherical Earth) -----------------------------------------------


def slant_range_m(
    alt_m: ArrayLike, elevation_deg: ArrayLike, radius_m: float = WGS84_A_M
) -> np.ndarray:
    """Distance from a station on a sphere of ``radius_m`` to a satellite at
    ``alt_m`` above it seen at ``elevation_deg``: the longest link of a pass at that
    mask. rho = sqrt((R+h)^2 - (R cos e)^2) - R sin e."""
    e = np.radians(elevation_deg)
    rs = radius_m + np.asarray(alt_m, dtype=float)
    return np.sqrt(rs * rs - (radius_m * np.cos(e)) ** 2) - radius_m * np.sin(e)


def earth_central_angle_rad(
    alt_m: ArrayLike, elevation_deg: ArrayLike, radius_m: float = WGS84_A_M
) -> np.ndarray:
    """Angle at the Earth's centre between a station and a satellite at ``alt_m``
    seen at ``elevation_deg`` (the radius of the visibility circle, as an angle)."""
    e = np.radians(elevation_deg)
    return np.arccos(radius_m * np.cos(e) / (radius_m + np.asarray(alt_m, dtype=float))) - e


# --- satellite to satellite --------------------------------------------------------


class IslGeometry(NamedTuple):
    """Range, range rate and how far the line of sight clears Earth + margin
    (negative: blocked). Arrays or floats."""

    range_m: np.ndarray
    range_rate_mps: np.ndarray
    clearance_m: np.ndarray

    @property
    def clear(self) -> np.ndarray:
        return self.clearance_m >= 0.0


def isl_geometry(
    r_a_m: ArrayLike,
    v_a_mps: ArrayLike,
    r_b_m: ArrayLike,
    v_b_mps: ArrayLike,
    margin_m: float = 80_000.0,
    radius_m: float = EARTH_RADIUS_M,
) -> IslGeometry:
    """Geometry of a laser link between satellites a and b (arrays ``(..., 3)``).

    The Earth is a sphere of the WGS-84 equatorial radius (6,378.137 km): never
    smaller than the real Earth, so a link it calls clear is clear; near the poles
    that adds up to 21 km to the margin. A link is clear when the whole segment
    a-b stays at least ``radius_m + margin_m`` from the centre (default margin
    80 km: the beam stays above most of the atmosphere's refraction and absorption).
    """
    a = np.asarray(r_a_m, dtype=float)
    b = np.asarray(r_b_m, dtype=float)
    d = b - a
    dd = np.einsum("...i,...i->...", d, d)
    rng = np.sqrt(dd)
    dv = np.asarray(v_b_mps, dtype=float) - np.asarray(v_a_mps, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rr = np.where(rng > 0.0, np.einsum("...i,...i->...", dv, d) / rng, 0.0)
        t = np.where(dd > 0.0, -np.einsum("...i,...i->...", a, d) / dd, 0.0)
    t = np.clip(t, 0.0, 1.0)
    p = a + t[..., None] * d
    closest = np.sqrt(np.einsum("...i,...i->...", p, p))
    return IslGeometry(rng, rr, closest - (radius_m + margin_m))


def segment_clearance_m(
    ax: float, ay: float, az: float, bx: float, by: float, bz: float, limit_m: float
) -> float:
    """Scalar twin of the blockage test: distance from the Earth's centre to the
    segment a-b minus ``limit_m`` (no numpy, for the per-unit path)."""
    dx, dy, dz = bx - ax, by - ay, bz - az
    dd = dx * dx + dy * dy + dz * dz
    t = 0.0 if dd == 0.0 else -(ax * dx + ay * dy + az * dz) / dd
    t = min(max(t, 0.0), 1.0)
    px, py, pz = ax + t * dx, ay + t * dy, az + t * dz
    return math.sqrt(px * px + py * py + pz * pz) - limit_m
