"""The search machinery that ground passes and laser-link windows share.

How the windows are found (the same for ground and laser links):

1. Orbits are propagated with SGP4 on a coarse grid (``coarse_step_s``, 60 s by
   default), positions and velocities in ECEF, one chunk of time and one block of
   satellites at a time, so memory depends on the chunk and block sizes, never on
   the product satellites x stations x duration (:class:`Grid`, :class:`Coarse`).
2. Positions between grid points come from cubic Hermite interpolation of
   position and velocity. Its error is about r (w h)^4 / 384: 0.35 m for a LEO
   orbit (w = 1.1e-3 rad/s) at h = 60 s, far below anything that matters here.
3. Visibility is sampled every ``step_s`` (10 s by default for ground links,
   60 s for laser links). For ground links a cheap test on the coarse grid first
   throws away every (satellite, station, interval) whose Earth-central angle
   stays larger than the visibility circle (with a bound on how far the satellite
   can move in the interval); only the rest, a few percent, are sampled
   (:mod:`channels.contacts.ground`, :mod:`channels.contacts.laser`).
4. AOS and LOS are refined by bisection on the interpolated orbit to 10 ms
   (:func:`bisect`), and the maximum elevation by a golden-section search to a few
   milliseconds (:func:`golden_max`); the :class:`Tracker` joins the visible
   samples of each chunk into windows across chunks.

A window shorter than ``step_s`` that falls between two samples is missed: the
step is the resolution of the search, not of the edges.

The names here are the package's own; its public API is what
:mod:`channels.contacts` exports (of this module, the defaults and
:class:`SearchCounts`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from channels.contacts.windows import GroundWindow, IslWindow
from channels.geometry import Real
from channels.orbit import Fleet
from linkstack.errors import ConfigError

DEFAULT_COARSE_STEP_S = 60.0
DEFAULT_CHUNK_S = 3600.0
EDGE_TOLERANCE_S = 0.01


@dataclass
class SearchCounts:
    """What a search computes, counted as it runs: pass one as ``counts=`` to
    :func:`~channels.contacts.ground_windows` or :func:`~channels.contacts.isl_windows`
    and read it afterwards (the counts add up over the searches it is given to).
    For benchmarks: counting changes no result and costs next to nothing."""

    sgp4_states: int = 0
    """(satellite, coarse point) states propagated with SGP4, the interval each
    chunk carries in front of it included."""
    candidate_intervals: int = 0
    """Ground search: (satellite, station, coarse interval) triples that pass the
    angular prefilter, each then sampled every ``step_s``."""
    refine_points: int = 0
    """Satellite positions interpolated by the AOS/LOS bisections and the peak
    searches (a laser-link evaluation interpolates both satellites: two)."""


# --- the time grid -----------------------------------------------------------------


class Grid:
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


def hermite_w(u: np.ndarray) -> np.ndarray:
    """Cubic Hermite basis at u in [0, 1] (array ``(4, ...)``): the weights of
    r0, h v0, r1, h v1 in the position."""
    u2 = u * u
    u3 = u2 * u
    return np.stack([2 * u3 - 3 * u2 + 1, u3 - 2 * u2 + u, -2 * u3 + 3 * u2, u3 - u2])


def hermite_du(u: np.ndarray) -> np.ndarray:
    """d/du of the basis: velocity = sum(w' X) / h."""
    u2 = u * u
    return np.stack([6 * u2 - 6 * u, 3 * u2 - 4 * u + 1, 6 * u - 6 * u2, 3 * u2 - 2 * u])


class Coarse:
    """ECEF states of some satellites on the coarse points of one chunk, with one
    extra interval in front (the edges of the previous chunk's last samples are
    refined on it), as Hermite coefficients per interval: ``X[b, i]`` is the
    ``(3, 4)`` array [r0, h v0, r1, h v1] of satellite b on interval i, so that a
    position is ``X @ w(u)``."""

    def __init__(
        self,
        fleet: Fleet,
        indices: np.ndarray,
        grid: Grid,
        j0: int,
        j1: int,
        counts: SearchCounts | None = None,
    ) -> None:
        self.counts = counts
        self.jstart = max(j0 - 1, 0)
        jj = np.arange(self.jstart, j1 + 1)
        self.T0 = grid.t0 + self.jstart * grid.dtc
        self.h = grid.dtc
        self.r, self.v = fleet.ecef(grid.t0 + jj * grid.dtc, indices)
        self.n_t = len(jj)
        r, hv = self.r, self.v * self.h
        self.X = np.stack([r[:, :-1], hv[:, :-1], r[:, 1:], hv[:, 1:]], axis=3)
        if counts is not None:
            counts.sgp4_states += len(indices) * self.n_t

    def at(self, b: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated (position, velocity) of local satellites ``b`` at times ``t``."""
        if self.counts is not None:
            self.counts.refine_points += len(b)
        x = (t - self.T0) / self.h
        li = np.clip(np.floor(x).astype(np.intp), 0, self.n_t - 2)
        u = x - li
        xg = self.X[b, li]  # (E, 3, 4)
        pos = np.einsum("ekw,we->ek", xg, hermite_w(u))
        vel = np.einsum("ekw,we->ek", xg, hermite_du(u)) / self.h
        return pos, vel


# f(pairs, t): a quantity of each pair (array of pair indices) at its time t
PairFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def bisect(
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


def golden_max(
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


class MakeWindow(Protocol[_Window_co]):
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
ChunkSamples = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]


class Tracker(Generic[Window]):
    """Joins visible samples into windows across chunks.

    Each chunk hands in its visible samples sorted by (pair, k) with a score (the
    quantity whose peak is reported) and columns (t, range, range rate, ...). Runs
    of consecutive k are window pieces; a piece that starts where an open window
    stopped at the end of the previous chunk continues it. Edges and peaks are
    refined while the chunk's orbits are still in memory. An open window keeps
    its columns only if ``keep`` (samples were asked for), its range extremes
    always, so memory without samples is bounded by the windows open at once.
    """

    def __init__(self, n_pairs: int, grid: Grid, make: MakeWindow[Window], keep: bool) -> None:
        self.grid = grid
        self.keep = keep
        self.open: dict[int, _Open] = {}
        self.open_mask = np.zeros(n_pairs, dtype=bool)
        # make(pair, aos, los, aos_clipped, los_clipped, best_v, best_t, rmin, rmax, cols)
        self.make: MakeWindow[Window] = make

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
            los = bisect(edge_fn, stale, lo, lo + g.step, False, EDGE_TOLERANCE_S)
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
        aos[sel] = bisect(edge_fn, rp[sel], t(k0[sel] - 1), t(k0[sel]), True, EDGE_TOLERANCE_S)
        los = np.full(len(rp), np.nan)
        sel = np.flatnonzero(closes)
        los[sel] = bisect(edge_fn, rp[sel], t(k1[sel]), t(k1[sel] + 1), False, EDGE_TOLERANCE_S)
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
                pt, pv = golden_max(peak_fn, rp[ok], lo[ok], hi[ok])
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
