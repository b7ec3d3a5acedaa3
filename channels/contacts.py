"""Contact windows: when each station sees each satellite, when linked satellites
see each other, and the contact plan that lists them (JSON, NASA ION, a table).

How the windows are found (the same for ground and laser links):

1. Orbits are propagated with SGP4 on a coarse grid (``coarse_step_s``, 60 s by
   default), positions and velocities in ECEF, one chunk of time and one block of
   satellites at a time, so memory depends on the chunk and block sizes, never on
   the product satellites x stations x duration.
2. Positions between grid points come from cubic Hermite interpolation of
   position and velocity. Its error is about r (w h)^4 / 384: 0.35 m for a LEO
   orbit (w = 1.1e-3 rad/s) at h = 60 s, far below anything that matters here.
3. Visibility is sampled every ``step_s`` (10 s by default for ground links,
   60 s for laser links, see :func:`isl_windows`). For ground links a
   cheap test on the coarse grid first throws away every (satellite, station,
   interval) whose Earth-central angle stays larger than the visibility circle
   (with a bound on how far the satellite can move in the interval); only the
   rest, a few percent, are sampled.
4. AOS and LOS are refined by bisection on the interpolated orbit to 10 ms, and
   the maximum elevation by a golden-section search to a few milliseconds.

A window shorter than ``step_s`` that falls between two samples is missed: the
step is the resolution of the search, not of the edges.

Laser links are visible when the line of sight clears the Earth sphere plus a
margin (80 km by default) and the range is at most ``isl_max_range_m`` (5,000 km
by default: above the 3,560 km between neighbours of a 12-satellite ring at
500 km, and within the several thousand kilometres LEO laser terminals are
built for).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

import numpy as np

from channels.geometry import C_MPS, EARTH_RADIUS_M, GroundStation, Real
from channels.orbit import Fleet
from linkstack.errors import ConfigError

if TYPE_CHECKING:
    from channels.scenarios import Scenario

DEFAULT_STEP_S = 10.0
DEFAULT_COARSE_STEP_S = 60.0
DEFAULT_CHUNK_S = 3600.0
DEFAULT_BLOCK_SATS = 512
DEFAULT_BLOCK_PAIRS = 1024
DEFAULT_ISL_STEP_S = 60.0
DEFAULT_ISL_MARGIN_M = 80_000.0
DEFAULT_ISL_MAX_RANGE_M = 5_000_000.0
EDGE_TOLERANCE_S = 0.01

# Placeholder data rates for ION plans (bytes/s) until the RF and optical link
# budgets supply their own: an X-band downlink of 300 Mbit/s, a 256 kbit/s TC
# uplink, a 10 Gbit/s laser link.
DEFAULT_DOWNLINK_BYTES_PER_S = 37_500_000
DEFAULT_UPLINK_BYTES_PER_S = 32_000
DEFAULT_ISL_BYTES_PER_S = 1_250_000_000

_PLAN_FORMAT = "linkstack-contact-plan"
_PLAN_VERSION = 1


# --- results -----------------------------------------------------------------------


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


# --- the time grid -----------------------------------------------------------------


class _Grid:
    """Fine samples t_k = start + k step (k = 0..K, t_K = end) and coarse
    propagation points every c fine steps, cut into chunks of coarse intervals."""

    def __init__(
        self,
        start_t_s: float,
        duration_s: float,
        step_s: float,
        coarse_step_s: float,
        chunk_s: float,
    ) -> None:
        where = "contact search"
        for name, value, lo, hi in (
            ("start_t_s", start_t_s, -1e10, 1e10),
            ("duration_s", duration_s, 1e-3, 1e9),
            ("step_s", step_s, 1e-3, 3600.0),
            ("coarse_step_s", coarse_step_s, 1e-3, 600.0),
            ("chunk_s", chunk_s, 1e-3, 1e9),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(where, name, f"must be a number, got {value!r}")
            if not math.isfinite(value) or not lo <= value <= hi:
                raise ConfigError(where, name, f"must be in {lo:g}..{hi:g}, got {value!r}")
        self.K = round(duration_s / step_s)
        if self.K < 1 or abs(self.K * step_s - duration_s) > 1e-6 * step_s:
            raise ConfigError(
                where,
                "duration_s",
                f"must be a whole number of steps of {step_s:g} s, got {duration_s!r}",
            )
        self.t0 = float(start_t_s)
        self.step = float(step_s)
        self.end = self.t0 + self.K * self.step
        self.c = max(1, round(coarse_step_s / step_s))
        self.dtc = self.c * self.step
        self.J = self.K // self.c + 1  # coarse intervals; J c > K
        self.chunk_j = max(1, round(chunk_s / self.dtc))

    def t(self, k: Real) -> Real:
        """The time of fine sample(s) ``k``."""
        return self.t0 + k * self.step

    def chunks(self) -> Iterator[tuple[int, int]]:
        for j0 in range(0, self.J, self.chunk_j):
            yield j0, min(self.J, j0 + self.chunk_j)


def _hermite_w(u: np.ndarray) -> np.ndarray:
    """Cubic Hermite basis at u in [0, 1] (array ``(4, ...)``): the weights of
    r0, h v0, r1, h v1 in the position."""
    u2 = u * u
    u3 = u2 * u
    return np.stack([2 * u3 - 3 * u2 + 1, u3 - 2 * u2 + u, -2 * u3 + 3 * u2, u3 - u2])


def _hermite_du(u: np.ndarray) -> np.ndarray:
    """d/du of the basis: velocity = sum(w' X) / h."""
    u2 = u * u
    return np.stack([6 * u2 - 6 * u, 3 * u2 - 4 * u + 1, 6 * u - 6 * u2, 3 * u2 - 2 * u])


class _Coarse:
    """ECEF states of some satellites on the coarse points of one chunk, with one
    extra interval in front (the edges of the previous chunk's last samples are
    refined on it), as Hermite coefficients per interval: ``X[b, i]`` is the
    ``(3, 4)`` array [r0, h v0, r1, h v1] of satellite b on interval i, so that a
    position is ``X @ w(u)``."""

    def __init__(self, fleet: Fleet, indices: np.ndarray, grid: _Grid, j0: int, j1: int) -> None:
        self.jstart = max(j0 - 1, 0)
        jj = np.arange(self.jstart, j1 + 1)
        self.T0 = grid.t0 + self.jstart * grid.dtc
        self.h = grid.dtc
        self.r, self.v = fleet.ecef(grid.t0 + jj * grid.dtc, indices)
        self.n_t = len(jj)
        r, hv = self.r, self.v * self.h
        self.X = np.stack([r[:, :-1], hv[:, :-1], r[:, 1:], hv[:, 1:]], axis=3)

    def at(self, b: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated (position, velocity) of local satellites ``b`` at times ``t``."""
        x = (t - self.T0) / self.h
        li = np.clip(np.floor(x).astype(np.intp), 0, self.n_t - 2)
        u = x - li
        xg = self.X[b, li]  # (E, 3, 4)
        pos = np.einsum("ekw,we->ek", xg, _hermite_w(u))
        vel = np.einsum("ekw,we->ek", xg, _hermite_du(u)) / self.h
        return pos, vel


# f(pairs, t): a quantity of each pair (array of pair indices) at its time t
PairFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _bisect(
    f: PairFunction, pairs: np.ndarray, lo: np.ndarray, hi: np.ndarray, rising: bool, tol: float
) -> np.ndarray:
    """Crossing times of f(pairs, t) = 0 inside [lo, hi] for all pairs at once;
    ``rising``: f < 0 at lo and >= 0 at hi (an AOS), else the other way (a LOS)."""
    if len(pairs) == 0:
        return np.empty(0)
    lo = np.asarray(lo, dtype=float).copy()
    hi = np.asarray(hi, dtype=float).copy()
    span = float(np.max(hi - lo))
    for _ in range(max(1, math.ceil(math.log2(max(span, tol) / tol)))):
        mid = 0.5 * (lo + hi)
        on = f(pairs, mid) >= 0.0
        if rising:
            hi = np.where(on, mid, hi)
            lo = np.where(on, lo, mid)
        else:
            lo = np.where(on, mid, lo)
            hi = np.where(on, hi, mid)
    crossing: np.ndarray = 0.5 * (lo + hi)
    return crossing


_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0


def _golden_max(
    f: PairFunction, pairs: np.ndarray, lo: np.ndarray, hi: np.ndarray, iterations: int = 18
) -> tuple[np.ndarray, np.ndarray]:
    """Arg-max and max of f(pairs, t) on [lo, hi] by golden-section search, for all
    pairs at once (f unimodal on the bracket: a pass has one culmination)."""
    a = np.asarray(lo, dtype=float)
    b = np.asarray(hi, dtype=float)
    c = b - _INV_PHI * (b - a)
    d = a + _INV_PHI * (b - a)
    fc, fd = f(pairs, c), f(pairs, d)
    for _ in range(iterations):
        left = fc > fd
        a = np.where(left, a, c)
        b = np.where(left, d, b)
        c_new = np.where(left, b - _INV_PHI * (b - a), d)
        d_new = np.where(left, c, a + _INV_PHI * (b - a))
        x = np.where(left, c_new, d_new)
        fx = f(pairs, x)
        fc, fd = np.where(left, fx, fd), np.where(left, fc, fx)
        c, d = c_new, d_new
    left = fc > fd
    return np.where(left, c, d), np.where(left, fc, fd)


# --- turning samples into windows --------------------------------------------------


class _Open:
    __slots__ = ("aos_clipped", "aos_t", "best_t", "best_v", "parts", "rmax", "rmin")

    def __init__(self, aos_t: float, aos_clipped: bool) -> None:
        self.aos_t = aos_t
        self.aos_clipped = aos_clipped
        self.best_v = -math.inf
        self.best_t = aos_t
        self.rmin = math.inf
        self.rmax = -math.inf
        self.parts: list[np.ndarray] = []


Window = TypeVar("Window", GroundWindow, IslWindow)
_Window_co = TypeVar("_Window_co", GroundWindow, IslWindow, covariant=True)


class _MakeWindow(Protocol[_Window_co]):
    """make(pair, start, stop, start_clipped, stop_clipped, best_v, best_t, rmin,
    rmax, cols): the window of one pair; ``cols`` its samples (None: not kept)."""

    def __call__(
        self,
        pair: int,
        start: float,
        stop: float,
        start_clipped: bool,
        stop_clipped: bool,
        best_v: float,
        best_t: float,
        rmin: float,
        rmax: float,
        cols: np.ndarray | None,
        /,
    ) -> _Window_co: ...


# (pairs, ks, score, cols, kc0, kc1): the visible samples of one chunk
_Chunk = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]


class _Tracker(Generic[Window]):
    """Joins visible samples into windows across chunks.

    Each chunk hands in its visible samples sorted by (pair, k) with a score (the
    quantity whose peak is reported) and columns (t, range, range rate, ...). Runs
    of consecutive k are window pieces; a piece that starts where an open window
    stopped at the end of the previous chunk continues it. Edges and peaks are
    refined while the chunk's orbits are still in memory. An open window keeps
    its columns only if ``keep`` (samples were asked for), its range extremes
    always, so memory without samples is bounded by the windows open at once.
    """

    def __init__(self, n_pairs: int, grid: _Grid, make: _MakeWindow[Window], keep: bool) -> None:
        self.grid = grid
        self.keep = keep
        self.open: dict[int, _Open] = {}
        self.open_mask = np.zeros(n_pairs, dtype=bool)
        # make(pair, aos, los, aos_clipped, los_clipped, best_v, best_t, rmin, rmax, cols)
        self.make: _MakeWindow[Window] = make

    def _finish(self, pair: int, w: _Open, los_t: float, los_clipped: bool) -> Window | None:
        g = self.grid
        if w.aos_t >= g.end:
            return None
        if los_t >= g.end:
            los_t, los_clipped = g.end, True
        cols = None
        if self.keep:
            cols = np.concatenate(w.parts) if len(w.parts) > 1 else w.parts[0]
        best_t = min(max(w.best_t, w.aos_t), los_t)
        return self.make(
            pair, w.aos_t, los_t, w.aos_clipped, los_clipped, w.best_v, best_t, w.rmin, w.rmax, cols
        )

    def feed(
        self,
        pairs: np.ndarray,
        ks: np.ndarray,
        score: np.ndarray,
        cols: np.ndarray,
        kc0: int,
        kc1: int,
        edge_fn: PairFunction,
        peak_fn: PairFunction | None,
    ) -> list[Window]:
        g = self.grid
        out: list[Window] = []
        t = g.t
        # Windows open at the end of the previous chunk and not visible at kc0
        # ended between samples kc0 - 1 and kc0.
        if len(pairs):
            first_of_pair = np.r_[True, pairs[1:] != pairs[:-1]]
            cont_pairs = pairs[first_of_pair & (ks == kc0)]
        else:
            cont_pairs = pairs
        was_open = np.flatnonzero(self.open_mask)
        stale = np.setdiff1d(was_open, cont_pairs, assume_unique=False)
        if len(stale):
            lo = np.full(len(stale), t(kc0 - 1))
            los = _bisect(edge_fn, stale, lo, lo + g.step, False, EDGE_TOLERANCE_S)
            for p, lt in zip(stale.tolist(), los.tolist(), strict=True):
                w = self.open.pop(p)
                self.open_mask[p] = False
                if (win := self._finish(p, w, lt, False)) is not None:
                    out.append(win)
        if not len(pairs):
            return out
        brk = np.flatnonzero((pairs[1:] != pairs[:-1]) | (ks[1:] != ks[:-1] + 1)) + 1
        starts = np.r_[0, brk]
        ends = np.r_[brk, len(pairs)]
        rp = pairs[starts]
        k0 = ks[starts]
        k1 = ks[ends - 1]
        cont = (k0 == kc0) & self.open_mask[rp]
        need_aos = ~cont & (k0 > 0)
        closes = k1 < kc1 - 1
        aos = np.full(len(rp), np.nan)
        sel = np.flatnonzero(need_aos)
        aos[sel] = _bisect(edge_fn, rp[sel], t(k0[sel] - 1), t(k0[sel]), True, EDGE_TOLERANCE_S)
        los = np.full(len(rp), np.nan)
        sel = np.flatnonzero(closes)
        los[sel] = _bisect(edge_fn, rp[sel], t(k1[sel]), t(k1[sel] + 1), False, EDGE_TOLERANCE_S)
        # Peak of each run: the best sample, then a search around it.
        run_max = np.maximum.reduceat(score, starts)
        hits = np.flatnonzero(score == np.repeat(run_max, ends - starts))
        run_of = np.searchsorted(starts, hits, side="right") - 1
        first = hits[np.r_[True, run_of[1:] != run_of[:-1]]]
        peak_t = t(ks[first]).astype(float)
        peak_v = run_max.astype(float)
        if peak_fn is not None:
            lo = np.maximum(t(ks[first] - 1), g.t0)
            hi = np.minimum(t(ks[first] + 1), g.end)
            ok = hi > lo
            if ok.any():
                pt, pv = _golden_max(peak_fn, rp[ok], lo[ok], hi[ok])
                better = pv > peak_v[ok]
                idx = np.flatnonzero(ok)[better]
                peak_t[idx], peak_v[idx] = pt[better], pv[better]
        rmin = np.minimum.reduceat(cols[:, 1], starts).tolist()
        rmax = np.maximum.reduceat(cols[:, 1], starts).tolist()
        keep = self.keep
        for i, p in enumerate(rp.tolist()):
            if cont[i]:
                w = self.open[p]
            else:
                clipped = bool(k0[i] == 0)
                w = _Open(g.t0 if clipped else float(aos[i]), clipped)
                self.open[p] = w
                self.open_mask[p] = True
            if keep:
                w.parts.append(cols[starts[i] : ends[i]])
            w.rmin = min(w.rmin, rmin[i])
            w.rmax = max(w.rmax, rmax[i])
            if peak_v[i] > w.best_v:
                w.best_v, w.best_t = float(peak_v[i]), float(peak_t[i])
            if closes[i]:
                del self.open[p]
                self.open_mask[p] = False
                if (win := self._finish(p, w, float(los[i]), False)) is not None:
                    out.append(win)
        return out

    def finish(self) -> list[Window]:
        """Close what is still open at the end of the span (clipped)."""
        out: list[Window] = []
        for p, w in sorted(self.open.items()):
            if (win := self._finish(p, w, self.grid.end, True)) is not None:
                out.append(win)
        self.open.clear()
        self.open_mask[:] = False
        return out


# --- ground windows ----------------------------------------------------------------


def _station_arrays(stations: Sequence[GroundStation]) -> dict[str, np.ndarray]:
    s = np.array([st.ecef_m for st in stations], dtype=float).reshape(-1, 3)
    up = np.array([st.enu[2] for st in stations], dtype=float).reshape(-1, 3)
    rho = np.linalg.norm(s, axis=1)
    s_hat = s / rho[:, None]
    mask = np.radians([st.min_elevation_deg for st in stations])
    # Angle between the geodetic up and the geocentric direction (<= 0.19 deg):
    # the geocentric elevation differs from the geodetic one by at most this.
    delta = np.arccos(np.clip(np.sum(up * s_hat, axis=1), -1.0, 1.0))
    return {
        "s": s,
        "up": up,
        "s_hat": s_hat,
        "rho": rho,
        "sin_mask": np.sin(mask),
        "e_geo": mask - delta - np.radians(0.01),
    }


_PREFILTER_GUARD_RAD = math.radians(0.5)


def ground_windows(
    fleet: Fleet,
    stations: Sequence[GroundStation],
    *,
    duration_s: float,
    start_t_s: float = 0.0,
    step_s: float = DEFAULT_STEP_S,
    coarse_step_s: float = DEFAULT_COARSE_STEP_S,
    chunk_s: float = DEFAULT_CHUNK_S,
    block_sats: int = DEFAULT_BLOCK_SATS,
    samples: bool = True,
) -> Iterator[GroundWindow]:
    """Every pass of every satellite of ``fleet`` above every station's mask in
    [start_t_s, start_t_s + duration_s], streamed as each window closes (order:
    by satellite block, then by closing time; sort if you need another).

    Memory is bounded by ``block_sats`` x stations x ``chunk_s`` / ``coarse_step_s``
    plus the windows open at one time.
    """
    grid = _Grid(start_t_s, duration_s, step_s, coarse_step_s, chunk_s)
    if isinstance(block_sats, bool) or not isinstance(block_sats, int) or block_sats < 1:
        raise ConfigError(
            "contact search", "block_sats", f"must be an integer >= 1, got {block_sats!r}"
        )
    stations = tuple(stations)
    if not stations or not len(fleet):
        return
    st = _station_arrays(stations)
    n_st = len(stations)
    c = grid.c
    u = np.arange(c) / c
    hw = _hermite_w(u)  # (4, c)
    hdw = _hermite_du(u)
    for b0 in range(0, len(fleet), block_sats):
        block = np.arange(b0, min(len(fleet), b0 + block_sats))
        names = [fleet.names[i] for i in block]

        def make(
            pair: int,
            aos: float,
            los: float,
            aos_c: bool,
            los_c: bool,
            best_v: float,
            best_t: float,
            rmin: float,
            rmax: float,
            cols: np.ndarray | None,
            names: list[str] = names,
        ) -> GroundWindow:
            b, m = divmod(pair, n_st)
            smp = None
            if cols is not None:
                smp = Samples(*(cols[:, i].copy() for i in range(4)))
            el = math.degrees(math.asin(min(1.0, max(-1.0, best_v))))
            return GroundWindow(
                stations[m].name, names[b], aos, los, el, best_t, rmin, rmax, aos_c, los_c, smp
            )

        tracker = _Tracker(len(block) * n_st, grid, make, samples)
        for j0, j1 in grid.chunks():
            co = _Coarse(fleet, block, grid, j0, j1)
            yield from tracker.feed(
                *_ground_chunk(co, st, grid, j0, j1, hw, hdw), *_ground_fns(co, st)
            )
        yield from tracker.finish()


def _ground_fns(co: _Coarse, st: dict[str, np.ndarray]) -> tuple[PairFunction, PairFunction]:
    n_st = len(st["rho"])

    def sin_el(pairs: np.ndarray, t: np.ndarray) -> np.ndarray:
        b, m = np.divmod(pairs, n_st)
        pos, _ = co.at(b, t)
        d = pos - st["s"][m]
        sines: np.ndarray = np.einsum("ij,ij->i", d, st["up"][m]) / np.sqrt(
            np.einsum("ij,ij->i", d, d)
        )
        return sines

    def edge(pairs: np.ndarray, t: np.ndarray) -> np.ndarray:
        above: np.ndarray = sin_el(pairs, t) - st["sin_mask"][pairs % n_st]
        return above

    return edge, sin_el


def _ground_chunk(
    co: _Coarse,
    st: dict[str, np.ndarray],
    grid: _Grid,
    j0: int,
    j1: int,
    hw: np.ndarray,
    hdw: np.ndarray,
) -> _Chunk:
    """Visible samples of one chunk: (pairs, ks, score, cols, kc0, kc1)."""
    c = grid.c
    n_st = len(st["rho"])
    r, v = co.r, co.v
    o = j0 - co.jstart  # 1 when the chunk carries a leading overlap interval
    with np.errstate(invalid="ignore", divide="ignore"):
        rn = np.sqrt(np.einsum("btk,btk->bt", r, r))
        vn = np.sqrt(np.einsum("btk,btk->bt", v, v))
        r_max = np.where(np.isnan(rn), 0.0, rn).max(axis=1)
        w_max = 1.05 * np.where(np.isnan(rn), 0.0, vn / rn).max(axis=1)
        # Largest Earth-central angle at which a satellite at r_max can clear the
        # mask (spherical, with the geodetic/geocentric difference taken off the
        # mask), plus how far it can move in half a coarse interval.
        x = st["rho"][None, :] * np.cos(st["e_geo"])[None, :] / np.maximum(r_max, 1.0)[:, None]
        lam = np.arccos(np.clip(x, -1.0, 1.0)) - st["e_geo"][None, :]
        ang = lam + (w_max * (0.5 * grid.dtc))[:, None] + _PREFILTER_GUARD_RAD
        thr = np.cos(np.minimum(ang, math.pi))  # (B, M)
        cos_psi = np.einsum("btk,mk->btm", r / rn[..., None], st["s_hat"])  # (B, Tc, M)
    near = np.maximum(cos_psi[:, o:-1], cos_psi[:, o + 1 :]) >= thr[:, None, :]  # (B, nJ, M)
    cb, cm, cj = np.nonzero(near.transpose(0, 2, 1))  # sorted by (b, m, j)
    kc0 = j0 * c
    kc1 = min(j1 * c, grid.K + 1)
    if len(cb) == 0:
        e = np.empty(0, dtype=np.intp)
        return e, e, np.empty(0), np.empty((0, 4)), kc0, kc1
    xg = co.X[cb, cj + o]  # (C, 3, 4)
    # Positions at the c fine samples of each candidate interval, (C, 3, c).
    # (einsum, not a BLAS product: BLAS would start threads, and the search is
    # meant to run on one core.)
    d = np.einsum("ckw,ws->cks", xg, hw)
    d -= st["s"][cm][:, :, None]
    rng = np.sqrt(np.einsum("cks,cks->cs", d, d))
    sin_el = np.einsum("cks,ck->cs", d, st["up"][cm]) / rng
    ks = (j0 + cj)[:, None] * c + np.arange(c)[None, :]
    vis = (sin_el >= st["sin_mask"][cm][:, None]) & (ks <= grid.K)
    ci, si = np.nonzero(vis)  # sorted by (candidate, sub-step) = (pair, k)
    # Velocities only where visible (range rate).
    vel = np.einsum("ekw,we->ek", xg[ci], hdw[:, si]) / grid.dtc
    dv = d[ci, :, si]
    rv = rng[ci, si]
    s_el = sin_el[ci, si]
    k = ks[ci, si]
    cols = np.empty((len(ci), 4))
    cols[:, 0] = grid.t(k)
    cols[:, 1] = rv
    cols[:, 2] = np.einsum("ek,ek->e", vel, dv) / rv
    cols[:, 3] = np.degrees(np.arcsin(np.clip(s_el, -1.0, 1.0)))
    pairs = cb[ci] * n_st + cm[ci]
    return pairs, k, s_el, cols, kc0, kc1


# --- laser-link windows ------------------------------------------------------------


def isl_windows(
    fleet: Fleet,
    pairs: Sequence[tuple[int, int]],
    *,
    duration_s: float,
    start_t_s: float = 0.0,
    step_s: float = DEFAULT_ISL_STEP_S,
    coarse_step_s: float = DEFAULT_COARSE_STEP_S,
    chunk_s: float = DEFAULT_CHUNK_S,
    block_pairs: int = DEFAULT_BLOCK_PAIRS,
    margin_m: float = DEFAULT_ISL_MARGIN_M,
    max_range_m: float = DEFAULT_ISL_MAX_RANGE_M,
    samples: bool = True,
) -> Iterator[IslWindow]:
    """Windows when the satellites of each pair (fleet indices) see each other:
    line of sight above the Earth sphere + ``margin_m`` and range at most
    ``max_range_m``; streamed as windows close, block of pairs by block.

    Searched every 60 s by default (edges still refined to 10 ms): a laser
    terminal needs tens of seconds to acquire, so a shorter window carries
    nothing, and links between neighbours are up for hours.
    """
    grid = _Grid(start_t_s, duration_s, step_s, coarse_step_s, chunk_s)
    where = "laser link search"
    for name, value, lo, hi in (
        ("margin_m", margin_m, 0.0, 1e7),
        ("max_range_m", max_range_m, 1.0, 1e9),
    ):
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise ConfigError(where, name, f"must be in {lo:g}..{hi:g}, got {value!r}")
    if isinstance(block_pairs, bool) or not isinstance(block_pairs, int) or block_pairs < 1:
        raise ConfigError(where, "block_pairs", f"must be an integer >= 1, got {block_pairs!r}")
    pr_all = np.asarray(pairs, dtype=np.intp).reshape(-1, 2)
    if len(pr_all) == 0:
        return
    if pr_all.min() < 0 or pr_all.max() >= len(fleet) or np.any(pr_all[:, 0] == pr_all[:, 1]):
        raise ConfigError(where, "pairs", "indices must name two different satellites")
    limit = EARTH_RADIUS_M + margin_m
    for p0 in range(0, len(pr_all), block_pairs):
        pr = pr_all[p0 : p0 + block_pairs]
        involved, local = np.unique(pr, return_inverse=True)
        la, lb = local.reshape(-1, 2).T

        def make(
            p: int,
            start: float,
            stop: float,
            s_c: bool,
            e_c: bool,
            best_v: float,
            best_t: float,
            rmin: float,
            rmax: float,
            cols: np.ndarray | None,
            pr: np.ndarray = pr,
        ) -> IslWindow:
            a, b = pr[p]
            smp = None if cols is None else Samples(*(cols[:, i].copy() for i in range(3)))
            return IslWindow(fleet.names[a], fleet.names[b], start, stop, rmin, rmax, s_c, e_c, smp)

        tracker = _Tracker(len(pr), grid, make, samples)
        for j0, j1 in grid.chunks():
            co = _Coarse(fleet, involved, grid, j0, j1)
            yield from tracker.feed(
                *_isl_chunk(co, grid, j0, j1, la, lb, limit, max_range_m),
                _isl_fn(co, la, lb, limit, max_range_m),
                None,
            )
        yield from tracker.finish()


def _isl_fn(
    co: _Coarse, la: np.ndarray, lb: np.ndarray, limit_m: float, max_range_m: float
) -> PairFunction:
    def f(p: np.ndarray, t: np.ndarray) -> np.ndarray:
        pa, _ = co.at(la[p], t)
        pb, _ = co.at(lb[p], t)
        return _isl_margin(pa, pb, limit_m, max_range_m)[0]

    return f


def _isl_chunk(
    co: _Coarse,
    grid: _Grid,
    j0: int,
    j1: int,
    la: np.ndarray,
    lb: np.ndarray,
    limit_m: float,
    max_range_m: float,
) -> _Chunk:
    """Samples of one chunk where the links are up: (pairs, ks, score, cols, kc0, kc1)."""
    c = grid.c
    kc0, kc1 = j0 * c, min(j1 * c, grid.K + 1)
    k = np.arange(kc0, kc1)
    li = k // c - co.jstart
    if c == 1:  # samples on the propagation grid: no interpolation
        pos, vel = co.r[:, li], co.v[:, li]
    else:
        u = (k % c) / c
        xg = co.X[:, li]  # (U, n, 3, 4)
        pos = np.einsum("unkw,wn->unk", xg, _hermite_w(u))
        vel = np.einsum("unkw,wn->unk", xg, _hermite_du(u)) / grid.dtc
    f, rng, rr = _isl_margin(pos[la], pos[lb], limit_m, max_range_m, vel[la], vel[lb])
    pi, ki = np.nonzero(f >= 0.0)
    cols = np.stack([grid.t(k[ki]), rng[pi, ki], rr[pi, ki]], axis=1)
    return pi, k[ki], np.zeros(len(pi)), cols, kc0, kc1


@overload
def _isl_margin(
    pa: np.ndarray, pb: np.ndarray, limit_m: float, max_range_m: float
) -> tuple[np.ndarray, np.ndarray, None]: ...
@overload
def _isl_margin(
    pa: np.ndarray,
    pb: np.ndarray,
    limit_m: float,
    max_range_m: float,
    va: np.ndarray,
    vb: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def _isl_margin(
    pa: np.ndarray,
    pb: np.ndarray,
    limit_m: float,
    max_range_m: float,
    va: np.ndarray | None = None,
    vb: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """min(line-of-sight clearance above ``limit_m``, range headroom), metres, >= 0
    when the link is up; also range and range rate if velocities are given."""
    d = pb - pa
    dd = np.einsum("...k,...k->...", d, d)
    rng = np.sqrt(dd)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(np.where(dd > 0, -np.einsum("...k,...k->...", pa, d) / dd, 0.0), 0.0, 1.0)
    q = pa + t[..., None] * d
    clearance = np.sqrt(np.einsum("...k,...k->...", q, q)) - limit_m
    f = np.minimum(clearance, max_range_m - rng)
    if va is None or vb is None:
        return f, rng, None
    with np.errstate(invalid="ignore", divide="ignore"):
        rr = np.einsum("...k,...k->...", vb - va, d) / rng
    return f, rng, rr


# --- the contact plan --------------------------------------------------------------


@dataclass(frozen=True)
class ContactPlan:
    """Every window of a scenario over a span, with node numbers for DTN tools:
    satellites 1..N in scenario order, then stations N+1..N+M."""

    scenario: str
    epoch: datetime
    start_t_s: float
    duration_s: float
    step_s: float
    stations: tuple[GroundStation, ...]
    satellites: tuple[str, ...]
    ground: tuple[GroundWindow, ...]
    isl: tuple[IslWindow, ...]
    isl_step_s: float = DEFAULT_ISL_STEP_S
    isl_margin_m: float = DEFAULT_ISL_MARGIN_M
    isl_max_range_m: float = DEFAULT_ISL_MAX_RANGE_M

    @property
    def nodes(self) -> dict[str, int]:
        names = [*self.satellites, *(s.name for s in self.stations)]
        return {name: i + 1 for i, name in enumerate(names)}

    def utc(self, t_s: float) -> datetime:
        return self.epoch + timedelta(seconds=t_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _PLAN_FORMAT,
            "version": _PLAN_VERSION,
            "scenario": self.scenario,
            "epoch": _iso(self.epoch),
            "start_t_s": self.start_t_s,
            "duration_s": self.duration_s,
            "step_s": self.step_s,
            "isl_step_s": self.isl_step_s,
            "isl_margin_m": self.isl_margin_m,
            "isl_max_range_m": self.isl_max_range_m,
            "nodes": self.nodes,
            "satellites": list(self.satellites),
            "stations": [
                {
                    "name": s.name,
                    "lat_deg": s.lat_deg,
                    "lon_deg": s.lon_deg,
                    "alt_m": s.alt_m,
                    "min_elevation_deg": s.min_elevation_deg,
                }
                for s in self.stations
            ],
            "ground_windows": [w.to_dict() for w in self.ground],
            "isl_windows": [w.to_dict() for w in self.isl],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContactPlan:
        if d.get("format") != _PLAN_FORMAT or d.get("version") != _PLAN_VERSION:
            raise ConfigError("contact plan", "format", f"expected {_PLAN_FORMAT} v{_PLAN_VERSION}")
        return cls(
            d["scenario"],
            datetime.fromisoformat(d["epoch"].replace("Z", "+00:00")),
            float(d["start_t_s"]),
            float(d["duration_s"]),
            float(d["step_s"]),
            tuple(GroundStation(**s) for s in d["stations"]),
            tuple(d["satellites"]),
            tuple(GroundWindow.from_dict(w) for w in d["ground_windows"]),
            tuple(IslWindow.from_dict(w) for w in d["isl_windows"]),
            float(d["isl_step_s"]),
            float(d["isl_margin_m"]),
            float(d["isl_max_range_m"]),
        )

    @classmethod
    def from_json(cls, text: str) -> ContactPlan:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("contact plan", "json", str(exc)) from None
        return cls.from_dict(d)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def contact_plan(
    scenario: Scenario,
    *,
    duration_s: float = 86_400.0,
    start_t_s: float = 0.0,
    step_s: float = DEFAULT_STEP_S,
    samples: bool = True,
    isl: bool = True,
    isl_step_s: float = DEFAULT_ISL_STEP_S,
    isl_margin_m: float = DEFAULT_ISL_MARGIN_M,
    isl_max_range_m: float = DEFAULT_ISL_MAX_RANGE_M,
) -> ContactPlan:
    """All ground and laser-link windows of a :class:`channels.scenarios.Scenario`,
    each list sorted by start time. Ground links are searched and sampled every
    ``step_s``, laser links every ``isl_step_s``."""
    fleet = scenario.fleet
    ground = sorted(
        ground_windows(
            fleet,
            scenario.stations,
            step_s=step_s,
            duration_s=duration_s,
            start_t_s=start_t_s,
            samples=samples,
        ),
        key=lambda w: (w.aos_t_s, w.station, w.satellite),
    )
    links: list[IslWindow] = []
    if isl and scenario.isl_pairs:
        links = sorted(
            isl_windows(
                fleet,
                scenario.isl_pairs,
                step_s=isl_step_s,
                margin_m=isl_margin_m,
                max_range_m=isl_max_range_m,
                duration_s=duration_s,
                start_t_s=start_t_s,
                samples=samples,
            ),
            key=lambda w: (w.start_t_s, w.sat_a, w.sat_b),
        )
    return ContactPlan(
        scenario.name,
        scenario.epoch,
        float(start_t_s),
        float(duration_s),
        float(step_s),
        tuple(scenario.stations),
        tuple(fleet.names),
        tuple(ground),
        tuple(links),
        float(isl_step_s),
        float(isl_margin_m),
        float(isl_max_range_m),
    )


# --- exports -----------------------------------------------------------------------


def to_ion(
    plan: ContactPlan,
    *,
    downlink_bytes_per_s: int = DEFAULT_DOWNLINK_BYTES_PER_S,
    uplink_bytes_per_s: int = DEFAULT_UPLINK_BYTES_PER_S,
    isl_bytes_per_s: int = DEFAULT_ISL_BYTES_PER_S,
) -> str:
    """The plan as ionadmin commands: ``a contact +START +STOP FROM TO RATE`` for
    each direction of each window and one ``a range +START +STOP FROM TO OWLT``.

    Times are whole seconds from the epoch (ION has no fractions): the start is
    rounded up and the stop down, so a contact never claims time the link does
    not have; a window shorter than that is left out. One-way light time is the
    window's longest range over c rounded up to whole seconds, so every LEO
    link says 1 s (the smallest non-zero figure ION takes). Rates are bytes/s.
    """
    for name, value in (
        ("downlink_bytes_per_s", downlink_bytes_per_s),
        ("uplink_bytes_per_s", uplink_bytes_per_s),
        ("isl_bytes_per_s", isl_bytes_per_s),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError("ION export", name, f"must be an integer >= 1, got {value!r}")
    nodes = plan.nodes
    rows: list[tuple[int, int, int, int, str, int]] = []  # start, stop, from, to, kind, value

    def add(
        start: float, stop: float, a: str, b: str, rate_ab: int, rate_ba: int, range_m: float
    ) -> None:
        s, e = math.ceil(start - 1e-6), math.floor(stop + 1e-6)
        if e <= s:
            return
        na, nb = nodes[a], nodes[b]
        owlt = max(1, math.ceil(range_m / C_MPS))
        rows.append((s, e, na, nb, "contact", rate_ab))
        rows.append((s, e, nb, na, "contact", rate_ba))
        rows.append((s, e, min(na, nb), max(na, nb), "range", owlt))

    for w in plan.ground:
        down, up = downlink_bytes_per_s, uplink_bytes_per_s
        add(w.aos_t_s, w.los_t_s, w.satellite, w.station, down, up, w.max_range_m)
    for link in plan.isl:
        rate = isl_bytes_per_s
        add(link.start_t_s, link.stop_t_s, link.sat_a, link.sat_b, rate, rate, link.max_range_m)
    rows.sort(key=lambda r: (r[0], r[4] != "contact", r[2], r[3], r[1]))
    lines = [
        f"# linkstack contact plan: scenario {plan.scenario}",
        f"# times in seconds from the epoch {_iso(plan.epoch)}; rates in bytes/s; OWLT in s",
    ]
    lines += [f"# node {n} {name}" for name, n in nodes.items()]
    lines += [f"a {kind} +{s} +{e} {a} {b} {val}" for s, e, a, b, kind, val in rows]
    return "\n".join(lines) + "\n"


def format_table(plan: ContactPlan) -> str:
    """A plain-text pass table: station, satellite, AOS and LOS (UTC), duration,
    maximum elevation; passes cut by the span's edges are marked with '*'."""
    head = (
        f"{'station':<16} {'satellite':<16} {'AOS (UTC)':<20} {'LOS (UTC)':<20} "
        f"{'duration':>9} {'max el':>7}"
    )
    lines = [head, "-" * len(head)]
    fmt = "%Y-%m-%d %H:%M:%S"
    for w in plan.ground:
        aos = plan.utc(w.aos_t_s).strftime(fmt) + ("*" if w.aos_clipped else "")
        los = plan.utc(w.los_t_s).strftime(fmt) + ("*" if w.los_clipped else "")
        m, s = divmod(round(w.duration_s), 60)
        lines.append(
            f"{w.station:<16} {w.satellite:<16} {aos:<20} {los:<20} "
            f"{m:>6d}:{s:02d} {w.max_elevation_deg:>7.1f}"
        )
    hours = plan.duration_s / 3600.0
    lines.append(
        f"{len(plan.ground)} passes over {len(plan.stations)} stations in {hours:g} h from "
        f"{plan.utc(plan.start_t_s).strftime(fmt)} UTC; max el in degrees; * cut by the span"
    )
    return "\n".join(lines) + "\n"
