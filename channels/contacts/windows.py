"""The results of a contact search: a :class:`GroundWindow` (a pass of a satellite
over a station), an :class:`IslWindow` (a time when two laser-linked satellites see
each other), and the :class:`Samples` of the link that either may carry; each to and
from plain dicts, as the JSON contact plan holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Samples:
    """The link sampled every ``step_s`` over a window (arrays of one length).
    ``elevation_deg`` is None for laser links."""

    t_s: np.ndarray
    range_m: np.ndarray
    range_rate_mps: np.ndarray
    elevation_deg: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "t_s": _rounded(self.t_s, 3),
            "range_m": _rounded(self.range_m, 1),
            "range_rate_mps": _rounded(self.range_rate_mps, 3),
        }
        if self.elevation_deg is not None:
            d["elevation_deg"] = _rounded(self.elevation_deg, 4)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Samples:
        el = d.get("elevation_deg")
        return cls(
            np.asarray(d["t_s"], dtype=float),
            np.asarray(d["range_m"], dtype=float),
            np.asarray(d["range_rate_mps"], dtype=float),
            None if el is None else np.asarray(el, dtype=float),
        )


def _rounded(a: np.ndarray, digits: int) -> list[float]:
    return [round(float(x), digits) for x in a]


@dataclass(frozen=True)
class GroundWindow:
    """A pass of ``satellite`` over ``station`` above the station's mask.
    ``aos_clipped`` / ``los_clipped``: the pass was already on at the start of the
    span, or still on at its end, so that edge is the span's, not the pass's."""

    station: str
    satellite: str
    aos_t_s: float
    los_t_s: float
    max_elevation_deg: float
    max_elevation_t_s: float
    min_range_m: float  # sampled, every step_s
    max_range_m: float
    aos_clipped: bool = False
    los_clipped: bool = False
    samples: Samples | None = field(default=None, compare=False, repr=False)

    @property
    def duration_s(self) -> float:
        return self.los_t_s - self.aos_t_s

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "station": self.station,
            "satellite": self.satellite,
            "aos_t_s": round(self.aos_t_s, 3),
            "los_t_s": round(self.los_t_s, 3),
            "max_elevation_deg": round(self.max_elevation_deg, 4),
            "max_elevation_t_s": round(self.max_elevation_t_s, 3),
            "min_range_m": round(self.min_range_m, 1),
            "max_range_m": round(self.max_range_m, 1),
            "aos_clipped": self.aos_clipped,
            "los_clipped": self.los_clipped,
        }
        if self.samples is not None:
            d["samples"] = self.samples.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GroundWindow:
        s = d.get("samples")
        return cls(
            d["station"],
            d["satellite"],
            float(d["aos_t_s"]),
            float(d["los_t_s"]),
            float(d["max_elevation_deg"]),
            float(d["max_elevation_t_s"]),
            float(d["min_range_m"]),
            float(d["max_range_m"]),
            bool(d["aos_clipped"]),
            bool(d["los_clipped"]),
            None if s is None else Samples.from_dict(s),
        )


@dataclass(frozen=True)
class IslWindow:
    """A time when laser-linked satellites ``sat_a`` and ``sat_b`` see each other."""

    sat_a: str
    sat_b: str
    start_t_s: float
    stop_t_s: float
    min_range_m: float
    max_range_m: float
    start_clipped: bool = False
    stop_clipped: bool = False
    samples: Samples | None = field(default=None, compare=False, repr=False)

    @property
    def duration_s(self) -> float:
        return self.stop_t_s - self.start_t_s

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "sat_a": self.sat_a,
            "sat_b": self.sat_b,
            "start_t_s": round(self.start_t_s, 3),
            "stop_t_s": round(self.stop_t_s, 3),
            "min_range_m": round(self.min_range_m, 1),
            "max_range_m": round(self.max_range_m, 1),
            "start_clipped": self.start_clipped,
            "stop_clipped": self.stop_clipped,
        }
        if self.samples is not None:
            d["samples"] = self.samples.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IslWindow:
        s = d.get("samples")
        return cls(
            d["sat_a"],
            d["sat_b"],
            float(d["start_t_s"]),
            float(d["stop_t_s"]),
            float(d["min_range_m"]),
            float(d["max_range_m"]),
            bool(d["start_clipped"]),
            bool(d["stop_clipped"]),
            None if s is None else Samples.from_dict(s),
        )
