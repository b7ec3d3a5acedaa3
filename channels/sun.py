"""The Sun and Earth's shadow: where the Sun is, and how much of its disc a
satellite sees (sunlit, penumbra, umbra).

The Sun. A low-precision series (the Astronomical Almanac's, as in Vallado,
"Fundamentals of Astrodynamics", algorithm 29): the mean longitude and anomaly,
the equation of centre to 2M, the distance to 2M, the mean obliquity of date.
It gives the Sun in the mean equator and equinox of date, which we take for TEME
(they differ by nutation, under 20 arcsec); ``tests/channels/test_sunlight.py``
holds it to JPL's DE421 through skyfield (the apparent Sun seen from the geocentre):
within 0.011 deg in direction and 0.012 % in distance from 2000 to 2050, which
moves a shadow edge of a LEO orbit by a fraction of a second (the edges of sample
orbits agree with skyfield's to under 1 s, same test). UTC stands in for TT (69 s:
the Sun moves 0.0008 deg). No ephemeris file is read, and a day of 2,800
satellites costs milliseconds of Sun.

The shadow. Earth is a sphere of the WGS-84 equatorial radius (skyfield's
``is_sunlit`` takes the same sphere; the polar flattening, 21 km, and the
atmosphere, which darkens and bends sunlight some 20-50 km up, are left out: each
moves a shadow edge by a few seconds at most). Seen from the satellite, the Sun is
a disc of angular radius ``a`` = asin(R_sun / |sun - sat|) and the Earth a disc of
angular radius ``b`` = asin(R_earth / |sat|), their centres ``c`` apart. That is the
conical shadow model (Montenbruck and Gill, "Satellite Orbits", 3.4.2):

- sunlit: c >= a + b (the discs do not overlap);
- umbra: c <= b - a (the Sun wholly behind the Earth);
- penumbra in between, where the visible fraction of the Sun's disc is one minus
  the overlap of the two discs over the Sun's area (limb darkening left out).

Positions are in any Earth-centred frame, the same for the satellite and the Sun
(ECEF: both rotated by the same sidereal angle), in metres.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from numpy.typing import ArrayLike

from channels.geometry import WGS84_A_M, gmst_rad, julian_date

AU_M = 149_597_870_700.0  # IAU 2012, exact
SUN_RADIUS_M = 695_700_000.0  # IAU 2015 nominal solar radius
SHADOW_EARTH_RADIUS_M = WGS84_A_M  # the sphere that casts the shadow (see above)

SUNLIT, PENUMBRA, UMBRA = 0, 1, 2
STATE_NAMES = ("sunlit", "penumbra", "umbra")

_JD_J2000 = 2_451_545.0
_DAY_S = 86_400.0


def sun_mod_m(jd: ArrayLike, fr: ArrayLike = 0.0) -> np.ndarray:
    """The Sun's geocentric position at UTC ``jd + fr`` (arrays broadcast), mean
    equator and equinox of date (taken for TEME), metres, shape ``(..., 3)``."""
    t = ((np.asarray(jd, dtype=float) - _JD_J2000) + np.asarray(fr, dtype=float)) / 36_525.0
    mean_lon = np.radians(280.460 + 36_000.771 * t)
    m = np.radians(357.5291092 + 35_999.05034 * t)
    lon = mean_lon + np.radians(1.914666471 * np.sin(m) + 0.019994643 * np.sin(2.0 * m))
    r_au = 1.000140612 - 0.016708617 * np.cos(m) - 0.000139589 * np.cos(2.0 * m)
    eps = np.radians(23.439291 - 0.0130042 * t)
    r = r_au * AU_M
    out = np.empty((*np.shape(t), 3))
    out[..., 0] = r * np.cos(lon)
    out[..., 1] = r * np.cos(eps) * np.sin(lon)
    out[..., 2] = r * np.sin(eps) * np.sin(lon)
    return out


class SunEcef:
    """The Sun in the Earth-fixed frame at times ``t_s`` after an epoch (rotated by
    the same GMST as the satellites in :mod:`channels.orbit`)."""

    def __init__(self, epoch: datetime) -> None:
        self.epoch = epoch
        self._jd0, self._fr0 = julian_date(epoch)

    def _days(self, t_s: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        f = self._fr0 + np.asarray(t_s, dtype=float) / _DAY_S
        whole = np.floor(f)
        return self._jd0 + whole, f - whole

    def mod(self, t_s: ArrayLike) -> np.ndarray:
        """The Sun in the mean equator and equinox of date (TEME, as the SGP4
        positions of :meth:`channels.orbit.Fleet.teme`), ``(..., 3)``, metres."""
        return sun_mod_m(*self._days(t_s))

    def at(self, t_s: ArrayLike) -> np.ndarray:
        """Positions ``(..., 3)`` in the Earth-fixed frame, metres."""
        jd, fr = self._days(t_s)
        s = sun_mod_m(jd, fr)
        g = gmst_rad(jd, fr)
        c, sn = np.cos(g), np.sin(g)
        out = np.empty_like(s)
        out[..., 0] = c * s[..., 0] + sn * s[..., 1]
        out[..., 1] = c * s[..., 1] - sn * s[..., 0]
        out[..., 2] = s[..., 2]
        return out


def _norm(v: np.ndarray) -> np.ndarray:
    n: np.ndarray = np.sqrt(np.einsum("...k,...k->...", v, v))
    return n


def disc_angles(sat_m: ArrayLike, sun_m: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, c) in radians, as seen from the satellite: the Sun's angular radius,
    the Earth's, and the angle between their centres (arrays ``(..., 3)`` in,
    ``(...)`` out)."""
    r = np.asarray(sat_m, dtype=float)
    d = np.asarray(sun_m, dtype=float) - r
    rn, dn = _norm(r), _norm(d)
    a = np.arcsin(np.minimum(SUN_RADIUS_M / dn, 1.0))
    b = np.arcsin(np.minimum(SHADOW_EARTH_RADIUS_M / rn, 1.0))
    cos_c = -np.einsum("...k,...k->...", r, d) / (rn * dn)
    c = np.arccos(np.clip(cos_c, -1.0, 1.0))
    return a, b, c


def shadow_margins_rad(sat_m: ArrayLike, sun_m: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(penumbra, umbra) margins: c - (a + b), >= 0 outside the penumbra's cone
    (sunlit), and c - (b - a), < 0 inside the umbra's. Each changes sign at its
    shadow edge, smoothly in time: what the edge search bisects."""
    a, b, c = disc_angles(sat_m, sun_m)
    pen: np.ndarray = c - (a + b)
    umb: np.ndarray = c - (b - a)
    return pen, umb


def shadow_state(sat_m: ArrayLike, sun_m: ArrayLike) -> np.ndarray:
    """SUNLIT, PENUMBRA or UMBRA (0, 1, 2) for each position."""
    pen, umb = shadow_margins_rad(sat_m, sun_m)
    state: np.ndarray = np.where(pen >= 0.0, SUNLIT, np.where(umb >= 0.0, PENUMBRA, UMBRA))
    return state


def illuminated_fraction(sat_m: ArrayLike, sun_m: ArrayLike) -> np.ndarray:
    """The fraction of the Sun's disc the satellite sees, 0 (umbra) to 1 (sunlit):
    one minus the area where the Earth's disc overlaps the Sun's, over the Sun's
    (the area of intersection of two circles; limb darkening left out)."""
    a, b, c = disc_angles(sat_m, sun_m)
    with np.errstate(invalid="ignore", divide="ignore"):
        # the lens of two circles of radii a and b, centres c apart
        x = np.clip((c * c + a * a - b * b) / (2.0 * c * a), -1.0, 1.0)
        y = np.clip((c * c + b * b - a * a) / (2.0 * c * b), -1.0, 1.0)
        lens = (
            a * a * np.arccos(x)
            + b * b * np.arccos(y)
            - 0.5 * np.sqrt(np.maximum((-c + a + b) * (c + a - b) * (c - a + b) * (c + a + b), 0.0))
        )
        hidden = lens / (np.pi * a * a)
    hidden = np.where(c >= a + b, 0.0, np.where(c <= b - a, 1.0, hidden))
    # a Sun larger than the Earth's disc (never in LEO): the ring left around it
    hidden = np.where(c <= a - b, (b * b) / (a * a), hidden)
    lit: np.ndarray = np.clip(1.0 - hidden, 0.0, 1.0)
    return lit
