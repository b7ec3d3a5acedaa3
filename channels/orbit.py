"""Where the satellites are: SGP4 satellites from TLEs or from orbital elements,
constellations (Walker delta, sun-synchronous planes), and propagation into the
Earth-fixed frame, vectorized for planning and scalar for the link's hot path.

Every orbit is an SGP4 element set on the WGS-72 gravity model, as TLEs are
(mixing models in one fleet would make generated and catalogued satellites
disagree for no gain). Generated orbits are set from an altitude defined as the
SGP4 mean semi-major axis minus the WGS-84 equatorial radius; the real distance
to the ellipsoid then swings by about +/-10 km over an orbit (J2 short-period
terms) and by up to 21 km more with latitude (the Earth's flattening).

Time is ``t_s``, seconds since a scenario epoch (timezone-aware UTC datetime),
and UTC stands in for UT1 (see ``geometry.py`` for what that costs).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from sgp4.api import WGS72, Satrec, SatrecArray

from channels.geometry import (
    J2_EARTH,
    MU_EARTH_M3PS2,
    OMEGA_EARTH_RADPS,
    WGS84_A_M,
    GroundStation,
    gmst_rad,
    julian_date,
    segment_clearance_m,
    teme_to_ecef,
)
from linkstack.errors import ConfigError, LinkstackError

TROPICAL_YEAR_S = 365.2422 * 86_400.0
SSO_NODAL_RATE_RADPS = 2.0 * math.pi / TROPICAL_YEAR_S  # the Sun's mean motion
_JD_1949_DEC_31 = 2_433_281.5  # sgp4init counts its epoch in days from here
_DAY_S = 86_400.0
_MIN_ALT_M = 150_000.0  # SGP4 gives up on orbits that dip into the atmosphere
_MAX_ALT_M = 50_000_000.0


class PropagationError(LinkstackError, RuntimeError):
    """SGP4 could not place a satellite (decayed, eccentricity out of range...)."""

    def __init__(self, satellite: str, t_s: float, code: int) -> None:
        self.satellite, self.t_s, self.code = satellite, t_s, code
        super().__init__(f"sgp4: {satellite}: error code {code} at t_s={t_s:.3f}")

    def __reduce__(self) -> tuple[type[PropagationError], tuple[str, float, int]]:
        return (type(self), (self.satellite, self.t_s, self.code))


@dataclass(frozen=True, eq=False)
class Satellite:
    """A named SGP4 element set. ``role`` is free text ("inference", "training")."""

    name: str
    satrec: Satrec
    role: str = ""

    @property
    def epoch(self) -> datetime:
        """Epoch of the element set (UTC)."""
        days = (self.satrec.jdsatepoch - _JD_1949_DEC_31) + self.satrec.jdsatepochF
        return datetime(1949, 12, 31, tzinfo=UTC) + timedelta(days=days)


# --- satellites from elements ----------------------------------------------------


def _number(where: str, field: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(where, field, f"must be a number, got {value!r}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(where, field, f"must be in {lo:g}..{hi:g}, got {value!r}")
    return float(value)


def _count(where: str, field: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(where, field, f"must be an integer >= {lo}, got {value!r}")
    return value


def satellite_from_elements(
    name: str,
    epoch: datetime,
    *,
    alt_m: float,
    inclination_deg: float,
    raan_deg: float = 0.0,
    mean_anomaly_deg: float = 0.0,
    eccentricity: float = 0.0,
    arg_perigee_deg: float = 0.0,
    bstar: float = 0.0,
    catalog_number: int = 1,
    role: str = "",
) -> Satellite:
    """An SGP4 satellite from mean elements, without TLE text (``sgp4init``).

    ``alt_m`` is the mean semi-major axis above the WGS-84 equatorial radius. SGP4
    takes a Kozai mean motion and derives its own (Brouwer) semi-major axis from
    it with a J2 correction; we adjust the input until that axis is the one asked
    for (two rounds reach a micrometre). ``bstar`` 0 means no drag: an emulated
    day should not depend on a guessed atmosphere.
    """
    where = f"satellite {name!r}"
    alt = _number(where, "alt_m", alt_m, _MIN_ALT_M, _MAX_ALT_M)
    inc = _number(where, "inclination_deg", inclination_deg, 0.0, 180.0)
    ecc = _number(where, "eccentricity", eccentricity, 0.0, 0.99)
    _number(where, "raan_deg", raan_deg, -1e6, 1e6)
    _number(where, "mean_anomaly_deg", mean_anomaly_deg, -1e6, 1e6)
    _number(where, "arg_perigee_deg", arg_perigee_deg, -1e6, 1e6)
    if (WGS84_A_M + alt) * (1.0 - ecc) < WGS84_A_M + _MIN_ALT_M:
        raise ConfigError(where, "eccentricity", "perigee below 150 km: SGP4 cannot fly it")
    if not 1 <= catalog_number <= 339_999:
        raise ConfigError(where, "catalog_number", f"must be in 1..339999, got {catalog_number}")
    jd, fr = julian_date(epoch)
    epoch_days = (jd - _JD_1949_DEC_31) + fr
    sat = Satrec()
    target_a_km = (WGS84_A_M + alt) / 1000.0
    # First guess from Kepler with SGP4's own constants, then correct for J2.
    no_kozai = 60.0 * math.sqrt(398_600.8 / target_a_km**3)  # rad/min
    for _ in range(3):
        sat.sgp4init(
            WGS72,
            "i",
            catalog_number,
            epoch_days,
            bstar,
            0.0,
            0.0,
            ecc,
            math.radians(arg_perigee_deg % 360.0),
            math.radians(inc),
            math.radians(mean_anomaly_deg % 360.0),
            no_kozai,
            math.radians(raan_deg % 360.0),
        )
        a_km = sat.a * sat.radiusearthkm
        no_kozai *= (a_km / target_a_km) ** 1.5
    if sat.error:
        raise ConfigError(where, "elements", f"sgp4init refused them (error {sat.error})")
    return Satellite(name, sat, role)


def sso_inclination_deg(alt_m: float, eccentricity: float = 0.0) -> float:
    """Inclination that makes the J2 nodal precession follow the mean Sun
    (360 deg per tropical year of 365.2422 days):

        dRAAN/dt = -3/2 n J2 (R/a)^2 cos(i) / (1-e^2)^2  =  2 pi / year

    with R the WGS-84 equatorial radius, a = R + alt_m, n = sqrt(mu/a^3).
    About 97.4 deg at 500 km and 97.6 deg at 550 km.
    """
    alt = _number("sun-synchronous orbit", "alt_m", alt_m, _MIN_ALT_M, _MAX_ALT_M)
    ecc = _number("sun-synchronous orbit", "eccentricity", eccentricity, 0.0, 0.99)
    a = WGS84_A_M + alt
    n = math.sqrt(MU_EARTH_M3PS2 / a**3)
    cos_i = (
        -SSO_NODAL_RATE_RADPS * (1.0 - ecc * ecc) ** 2 / (1.5 * n * J2_EARTH * (WGS84_A_M / a) ** 2)
    )
    if cos_i < -1.0:
        raise ConfigError(
            "sun-synchronous orbit", "alt_m", f"no sun-synchronous orbit exists at {alt / 1e3:g} km"
        )
    return math.degrees(math.acos(cos_i))


def raan_for_ltan_deg(epoch: datetime, ltan_h: float) -> float:
    """RAAN that puts the ascending node at local mean solar time ``ltan_h`` at
    ``epoch``. The mean Sun's Greenwich hour angle is UT - 12 h, so its right
    ascension is GMST - 15 deg/h (UT - 12 h), and RAAN = GMST + 15 deg/h (LTAN - UT).
    (The true Sun wanders +/-16 min from the mean one over a year: the equation
    of time.) 06:00 and 18:00 are the dawn-dusk planes.
    """
    ltan = _number("sun-synchronous orbit", "ltan_h", ltan_h, 0.0, 24.0)
    jd, fr = julian_date(epoch)
    ut_h = fr * 24.0
    return (math.degrees(gmst_rad(jd, fr)) + 15.0 * (ltan - ut_h)) % 360.0


def sso_plane(
    epoch: datetime,
    *,
    count: int,
    alt_m: float,
    ltan_h: float,
    name_prefix: str = "SSO",
    phase_deg: float = 0.0,
    first_catalog_number: int = 1,
    role: str = "",
) -> list[Satellite]:
    """``count`` satellites evenly spaced in one circular sun-synchronous plane."""
    count = _count("sun-synchronous plane", "count", count, 1)
    inc = sso_inclination_deg(alt_m)
    raan = raan_for_ltan_deg(epoch, ltan_h)
    width = max(2, len(str(count)))
    return [
        satellite_from_elements(
            f"{name_prefix}-{j + 1:0{width}d}",
            epoch,
            alt_m=alt_m,
            inclination_deg=inc,
            raan_deg=raan,
            mean_anomaly_deg=phase_deg + 360.0 * j / count,
            catalog_number=first_catalog_number + j,
            role=role,
        )
        for j in range(count)
    ]


def walker_delta(
    epoch: datetime,
    *,
    total: int,
    planes: int,
    phasing: int,
    inclination_deg: float,
    alt_m: float,
    raan0_deg: float = 0.0,
    name_prefix: str = "W",
    first_catalog_number: int = 1,
    role: str = "",
) -> list[Satellite]:
    """A Walker-delta constellation i:T/P/F: T satellites in P planes whose nodes
    are spread over 360 deg, S = T/P per plane evenly spaced, and satellite j of
    plane p at mean anomaly 360 (j/S + p F / T) (phasing F in 0..P-1).

    Names are ``PREFIX-Ppp-Sss``; order is plane by plane.
    """
    where = "walker constellation"
    total = _count(where, "total", total, 1)
    planes = _count(where, "planes", planes, 1)
    if total % planes:
        raise ConfigError(where, "planes", f"must divide total ({total}), got {planes}")
    if isinstance(phasing, bool) or not isinstance(phasing, int) or not 0 <= phasing < planes:
        raise ConfigError(
            where, "phasing", f"must be an integer in 0..{planes - 1}, got {phasing!r}"
        )
    per_plane = total // planes
    wp, ws = max(2, len(str(planes))), max(2, len(str(per_plane)))
    sats = []
    for p in range(planes):
        for j in range(per_plane):
            sats.append(
                satellite_from_elements(
                    f"{name_prefix}-P{p + 1:0{wp}d}-S{j + 1:0{ws}d}",
                    epoch,
                    alt_m=alt_m,
                    inclination_deg=inclination_deg,
                    raan_deg=raan0_deg + 360.0 * p / planes,
                    mean_anomaly_deg=360.0 * (j / per_plane + p * phasing / total),
                    catalog_number=first_catalog_number + p * per_plane + j,
                    role=role,
                )
            )
    return sats


# --- satellites from TLEs ----------------------------------------------------------


_DIGITS = "0123456789"  # not str.isdigit(): that also accepts "²", which int() refuses


def _tle_checksum_ok(line: str) -> bool:
    total = sum(_DIGITS.index(c) if c in _DIGITS else (1 if c == "-" else 0) for c in line[:68])
    return line[68] in _DIGITS and total % 10 == _DIGITS.index(line[68])


_NUMBER_CHARS = frozenset("0123456789+-. ")
# (line, first column, last column, field, low, high): 1-based columns of the TLE format
_TLE_FIELDS = (
    (1, 19, 32, "epoch", 0.0, 99_366.99999999),
    (2, 9, 16, "inclination", 0.0, 180.0),
    (2, 18, 25, "raan", 0.0, 360.0),
    (2, 35, 42, "argument of perigee", 0.0, 360.0),
    (2, 44, 51, "mean anomaly", 0.0, 360.0),
    (2, 53, 63, "mean motion", 0.05, 17.0),  # rev/day: above 17 the orbit is underground
)

# the blank columns between fields: sgp4's C reader splits line 2 on them, so a
# character there shifts every field after it (a zero mean motion, accepted)
_TLE_BLANKS = {1: (2, 9, 18, 33, 44, 53, 62, 64), 2: (2, 8, 17, 26, 34, 43, 52)}


def _check_tle_fields(where: str, l1: str, l2: str) -> None:
    """Refuse a field that is not a number in its columns, or out of its range.

    sgp4's own reader is lenient: it reads a damaged field partly and goes on,
    so a corrupted TLE would turn into a wrong satellite instead of an error.
    """
    lines = {1: l1, 2: l2}
    for line, columns in _TLE_BLANKS.items():
        for col in columns:
            if lines[line][col - 1] != " ":
                raise ConfigError(
                    where,
                    f"line {line}",
                    f"column {col} must be blank between fields, holds {lines[line][col - 1]!r}",
                )
    for line, first, last, field_name, lo, hi in _TLE_FIELDS:
        text = lines[line][first - 1 : last]
        if not text.strip() or not set(text) <= _NUMBER_CHARS:
            raise ConfigError(where, field_name, f"columns {first}-{last} hold {text!r}")
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(where, field_name, f"{text!r} is not a number") from None
        if not lo <= value <= hi:
            raise ConfigError(where, field_name, f"{value:g} is outside {lo:g}..{hi:g}")
    ecc = l2[26:33]
    if not ecc.isascii() or not ecc.isdigit():
        raise ConfigError(where, "eccentricity", f"columns 27-33 hold {ecc!r}, 7 digits expected")


def parse_tles(text: str, role: str = "") -> list[Satellite]:
    """Satellites from TLE text: 3-line sets (a name line, which may start with
    "0 ", then lines 1 and 2) or bare 2-line sets (named ``NORAD-<number>``).
    Blank lines and lines starting with '#' are skipped; checksums are checked."""
    lines = [ln.rstrip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    sats: list[Satellite] = []
    name: str | None = None
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("1 ") and i + 1 < len(lines) and lines[i + 1].startswith("2 "):
            l1, l2 = ln, lines[i + 1]
            where = f"TLE {name or l1[2:7].strip()!r}"
            for no, tle_line in ((1, l1), (2, l2)):
                if len(tle_line) < 69:
                    raise ConfigError(where, f"line {no}", "shorter than 69 characters")
                if not _tle_checksum_ok(tle_line):
                    raise ConfigError(where, f"line {no} checksum", "modulo-10 checksum mismatch")
            if l1[2:7] != l2[2:7]:
                raise ConfigError(where, "catalog number", "lines 1 and 2 disagree")
            _check_tle_fields(where, l1, l2)
            try:
                rec = Satrec.twoline2rv(l1, l2, WGS72)
            except (ValueError, IndexError) as exc:
                raise ConfigError(where, "elements", f"not a valid TLE: {exc}") from None
            # one propagation at the epoch: sgp4 checks the orbit itself (decay, ecc)
            err = rec.error or rec.sgp4(rec.jdsatepoch, rec.jdsatepochF)[0]
            if err:
                raise ConfigError(where, "elements", f"sgp4 refused them (error {err})")
            if not rec.no_kozai > 0:  # whatever slipped past the column checks
                raise ConfigError(where, "mean motion", f"sgp4 read {rec.no_kozai!r} rad/min")
            sats.append(Satellite(name or f"NORAD-{l1[2:7].strip()}", rec, role))
            name = None
            i += 2
            continue
        if name is not None:
            raise ConfigError(f"TLE {name!r}", "lines", "name line without lines 1 and 2")
        name = ln[2:].strip() if ln.startswith("0 ") else ln.strip()
        i += 1
    if name is not None:
        raise ConfigError(f"TLE {name!r}", "lines", "name line without lines 1 and 2")
    if not sats:
        raise ConfigError("TLE", "text", "no two-line element set found")
    names = [s.name for s in sats]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError("TLE", "name", f"{dup!r} appears more than once")
    return sats


def load_tles(source: str | os.PathLike[str], role: str = "") -> list[Satellite]:
    """Satellites from a TLE file path, or from TLE text given as a string
    (anything with a line break is taken as text)."""
    if isinstance(source, str) and "\n" in source:
        return parse_tles(source, role)
    path = Path(source)
    if not path.is_file():
        raise ConfigError("TLE", "path", f"no such file: {str(path)!r}")
    return parse_tles(path.read_text(encoding="utf-8", errors="replace"), role)


# --- propagation -------------------------------------------------------------------


def _split_days(jd0: float, fr0: float, t_s: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(jd, fr) arrays for times ``t_s`` after (jd0, fr0), whole days moved into jd
    so that fr stays in [0, 1) and keeps its precision."""
    f = fr0 + np.asarray(t_s, dtype=float) / _DAY_S
    whole = np.floor(f)
    return jd0 + whole, f - whole


class Fleet:
    """Many satellites propagated together with ``SatrecArray`` (C++ loop over
    satellites and times): positions and velocities in TEME or ECEF, metres."""

    def __init__(self, satellites: Sequence[Satellite], epoch: datetime) -> None:
        self.satellites = tuple(satellites)
        self.names = tuple(s.name for s in self.satellites)
        self.epoch = epoch
        self._jd0, self._fr0 = julian_date(epoch)
        self._array = SatrecArray([s.satrec for s in self.satellites]) if satellites else None

    def __len__(self) -> int:
        return len(self.satellites)

    def _subset(self, indices: Iterable[int] | None) -> SatrecArray:
        if indices is None:
            return self._array
        return SatrecArray([self.satellites[i].satrec for i in indices])

    def teme(
        self, t_s: ArrayLike, indices: Iterable[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(r_m, v_mps), each ``(n_sats, n_times, 3)`` in TEME; NaN where SGP4 fails."""
        jd, fr = _split_days(self._jd0, self._fr0, np.atleast_1d(t_s))
        err, r, v = self._subset(indices).sgp4(jd, fr)
        bad = err != 0
        r *= 1000.0
        v *= 1000.0
        if bad.any():
            r[bad] = np.nan
            v[bad] = np.nan
        return r, v

    def ecef(
        self, t_s: ArrayLike, indices: Iterable[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(r_m, v_mps), each ``(n_sats, n_times, 3)`` in the Earth-fixed frame."""
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        r, v = self.teme(t, indices)
        jd, fr = _split_days(self._jd0, self._fr0, t)
        return teme_to_ecef(r, v, gmst_rad(jd, fr))


# --- the per-unit path: one satellite, one time, no numpy ---------------------------


class _Clock:
    """Scalar (jd, fr) and GMST for t_s after an epoch, without numpy."""

    __slots__ = ("_fr0", "_jd0")

    def __init__(self, epoch: datetime) -> None:
        self._jd0, self._fr0 = julian_date(epoch)

    def state_ecef(self, sat: Satellite, t_s: float) -> tuple[float, ...]:
        f = self._fr0 + t_s / _DAY_S
        whole = math.floor(f)
        jd, fr = self._jd0 + whole, f - whole
        err, (x, y, z), (vx, vy, vz) = sat.satrec.sgp4(jd, fr)
        if err:
            raise PropagationError(sat.name, t_s, err)
        g = gmst_rad(jd, fr)
        c, s = math.cos(g), math.sin(g)
        xe, ye = c * x + s * y, c * y - s * x
        return (
            xe * 1000.0,
            ye * 1000.0,
            z * 1000.0,
            (c * vx + s * vy) * 1000.0 + OMEGA_EARTH_RADPS * ye * 1000.0,
            (c * vy - s * vx) * 1000.0 - OMEGA_EARTH_RADPS * xe * 1000.0,
            vz * 1000.0,
        )


def state_ecef(satellite: Satellite, epoch: datetime, t_s: float) -> tuple[float, ...]:
    """(x, y, z, vx, vy, vz) of one satellite at one time, ECEF, m and m/s."""
    return _Clock(epoch).state_ecef(satellite, t_s)


class Look(NamedTuple):
    elevation_deg: float
    azimuth_deg: float
    range_m: float
    range_rate_mps: float  # positive: moving away
    range_accel_mps2: float  # d(range_rate)/dt, for the Doppler rate


def _accel_ecef(
    x: float, y: float, z: float, vx: float, vy: float, vz: float
) -> tuple[float, float, float]:
    """Acceleration in the rotating frame: gravity with J2, Coriolis, centrifugal.
    (Higher harmonics, drag and third bodies are below 1e-5 of it; the range
    acceleration is therefore good to about 1e-4 m/s^2.)"""
    r2 = x * x + y * y + z * z
    r = math.sqrt(r2)
    g = -MU_EARTH_M3PS2 / (r2 * r)
    k = 1.5 * J2_EARTH * WGS84_A_M * WGS84_A_M / r2
    zz = 5.0 * z * z / r2
    gxy = g * (1.0 + k * (1.0 - zz))
    w = OMEGA_EARTH_RADPS
    return (
        gxy * x + 2.0 * w * vy + w * w * x,
        gxy * y - 2.0 * w * vx + w * w * y,
        g * (1.0 + k * (3.0 - zz)) * z,
    )


class StationView:
    """One station looking at one satellite, one time at a time: what the link
    asks for every unit it sends. One ``Satrec.sgp4`` call plus plain float math
    (a few microseconds; numpy would cost more than the work on 3-vectors)."""

    __slots__ = ("_clock", "_enu", "_sat", "_st", "station")

    def __init__(self, station: GroundStation, satellite: Satellite, epoch: datetime) -> None:
        self.station = station
        self._sat = satellite
        self._clock = _Clock(epoch)
        self._st = station.ecef_m
        self._enu = station.enu

    def at(self, t_s: float) -> Look:
        x, y, z, vx, vy, vz = self._clock.state_ecef(self._sat, t_s)
        sx, sy, sz = self._st
        dx, dy, dz = x - sx, y - sy, z - sz
        rng = math.sqrt(dx * dx + dy * dy + dz * dz)
        (ex, ey, ez), (nx, ny, nz), (ux, uy, uz) = self._enu
        u = (dx * ux + dy * uy + dz * uz) / rng
        az = math.degrees(math.atan2(dx * ex + dy * ey + dz * ez, dx * nx + dy * ny + dz * nz))
        rr = (vx * dx + vy * dy + vz * dz) / rng
        ax, ay, az_ = _accel_ecef(x, y, z, vx, vy, vz)
        ra = (ax * dx + ay * dy + az_ * dz + vx * vx + vy * vy + vz * vz - rr * rr) / rng
        return Look(math.degrees(math.asin(max(-1.0, min(1.0, u)))), az % 360.0, rng, rr, ra)


class IslLook(NamedTuple):
    range_m: float
    range_rate_mps: float
    range_accel_mps2: float
    clearance_m: float  # how far the line of sight passes above Earth + margin

    @property
    def clear(self) -> bool:
        return self.clearance_m >= 0.0


class IslView:
    """A laser link between two satellites, one time at a time (see StationView)."""

    __slots__ = ("_a", "_b", "_clock", "_limit_m")

    def __init__(
        self,
        sat_a: Satellite,
        sat_b: Satellite,
        epoch: datetime,
        margin_m: float = 80_000.0,
        radius_m: float = WGS84_A_M,
    ) -> None:
        _number("inter-satellite link", "margin_m", margin_m, 0.0, 1e7)
        self._a, self._b = sat_a, sat_b
        self._clock = _Clock(epoch)
        self._limit_m = radius_m + margin_m

    def at(self, t_s: float) -> IslLook:
        ax, ay, az, avx, avy, avz = self._clock.state_ecef(self._a, t_s)
        bx, by, bz, bvx, bvy, bvz = self._clock.state_ecef(self._b, t_s)
        dx, dy, dz = bx - ax, by - ay, bz - az
        ux, uy, uz = bvx - avx, bvy - avy, bvz - avz
        rng = math.sqrt(dx * dx + dy * dy + dz * dz)
        if rng == 0.0:
            return IslLook(
                0.0, 0.0, 0.0, segment_clearance_m(ax, ay, az, bx, by, bz, self._limit_m)
            )
        rr = (ux * dx + uy * dy + uz * dz) / rng
        aax, aay, aaz = _accel_ecef(ax, ay, az, avx, avy, avz)
        bax, bay, baz = _accel_ecef(bx, by, bz, bvx, bvy, bvz)
        ra = (bax - aax) * dx + (bay - aay) * dy + (baz - aaz) * dz + ux * ux + uy * uy + uz * uz
        return IslLook(
            rng,
            rr,
            (ra - rr * rr) / rng,
            segment_clearance_m(ax, ay, az, bx, by, bz, self._limit_m),
        )
