"""The sky of a scenario as a map draws it: where each satellite is over the Earth,
how far it sees, its ground track, and whether it is in the Sun.

What the live view (:mod:`linkstack.daemon.live_view`) and ``linkstack view`` send to
the page: plain lists, rounded to what a map shows (0.01 deg is about a kilometre),
so that planned-2800's 2,800 satellites are a few tens of kilobytes a snapshot.
Pure geometry: SGP4 for every satellite at once (:class:`channels.orbit.Fleet`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from channels.constants import EARTH_EQUATORIAL_RADIUS_M as R_EARTH_M
from channels.geometry import ecef_to_geodetic
from channels.orbit import Fleet
from channels.scenarios import Scenario
from channels.sun import SunEcef, shadow_state

TRACK_BEFORE_S = 20 * 60.0  # a ground track from this long ago...
TRACK_AFTER_S = 40 * 60.0  # ...to this far ahead
TRACK_STEP_S = 120.0
SHADOW_NAMES = ("sunlit", "penumbra", "umbra")


def footprint_deg(alt_m: np.ndarray, mask_deg: float) -> np.ndarray:
    """The Earth central angle from a satellite's nadir to the edge of what sees it
    above ``mask_deg`` of elevation (a spherical Earth): the footprint's radius."""
    e = math.radians(mask_deg)
    ratio = np.clip(R_EARTH_M / (R_EARTH_M + np.maximum(alt_m, 0.0)) * math.cos(e), -1.0, 1.0)
    return np.degrees(np.arccos(ratio) - e)


class Sky:
    """Positions, footprints, tracks and shadow of ``scenario``'s satellites."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.names = tuple(scenario.satellite_names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.fleet = Fleet(scenario.satellites, scenario.epoch)
        self.sun = SunEcef(scenario.epoch)
        stations = scenario.stations
        self.mask_deg = min((s.min_elevation_deg for s in stations), default=10.0)

    def meta(self) -> dict[str, Any]:
        """What does not change: the names and the stations (name, lat, lon)."""
        return {
            "scenario": self.scenario.name,
            "satellites": list(self.names),
            "stations": [
                [s.name, round(s.lat_deg, 3), round(s.lon_deg, 3)] for s in self.scenario.stations
            ],
        }

    def positions(self, t_s: float, shadow_of: Iterable[str] = ()) -> dict[str, Any]:
        """Every satellite at ``t_s``: ``lat``, ``lon`` (deg), ``alt_km``, footprint
        radius ``fp_deg`` (null where SGP4 failed), and ``shadow`` (0 sunlit, 1
        penumbra, 2 umbra) for the satellites of ``shadow_of``, null for the others."""
        r_m, _ = self.fleet.ecef(t_s)
        r = r_m[:, 0, :]
        lat, lon, alt = ecef_to_geodetic(r)
        fp = footprint_deg(alt, self.mask_deg)
        shadow: list[int | None] = [None] * len(self.names)
        wanted = [self.index[n] for n in shadow_of if n in self.index]
        if wanted:
            state = shadow_state(r[wanted], np.reshape(self.sun.at(t_s), 3))
            for i, s in zip(wanted, state.tolist(), strict=True):
                shadow[i] = int(s)
        return {
            "lat": _rounded(lat, 2),
            "lon": _rounded(lon, 2),
            "alt_km": _rounded(alt / 1e3, 0),
            "fp_deg": _rounded(fp, 1),
            "shadow": shadow,
        }

    def tracks(self, t_s: float, names: Iterable[str]) -> list[list[Any]]:
        """The ground tracks of ``names`` around ``t_s``: ``[index, lats, lons]``."""
        indices = [self.index[n] for n in names if n in self.index]
        if not indices:
            return []
        times = np.arange(t_s - TRACK_BEFORE_S, t_s + TRACK_AFTER_S + 1.0, TRACK_STEP_S)
        r_m, _ = self.fleet.ecef(times, indices)
        lat, lon, _ = ecef_to_geodetic(r_m)
        return [[i, _rounded(lat[k], 2), _rounded(lon[k], 2)] for k, i in enumerate(indices)]


def _rounded(values: np.ndarray, digits: int) -> list[float | None]:
    """A JSON-ready list: rounded, NaN as None."""
    arr = np.round(np.asarray(values, dtype=float), digits)
    return [None if math.isnan(v) else v for v in arr.tolist()]
