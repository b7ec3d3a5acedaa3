"""Laser-link windows: when linked satellites see each other (:func:`isl_windows`),
found with the machinery of :mod:`channels.contacts.search`.

A laser link is up when the line of sight clears the Earth sphere plus a margin
(80 km by default) and the range is at most ``max_range_m`` (5,000 km by default:
above the 3,560 km between neighbours of a 12-satellite ring at 500 km, and within
the several thousand kilometres LEO laser terminals are built for).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np

from channels.contacts.search import (
    DEFAULT_CHUNK_S,
    DEFAULT_COARSE_STEP_S,
    ChunkSamples,
    Coarse,
    Grid,
    PairFunction,
    SearchCounts,
    Tracker,
    hermite_du,
    hermite_w,
)
from channels.contacts.windows import IslWindow, Samples
from channels.geometry import EARTH_RADIUS_M
from channels.orbit import Fleet
from linkstack.errors import ConfigError

DEFAULT_ISL_STEP_S = 60.0
DEFAULT_BLOCK_PAIRS = 1024
DEFAULT_ISL_MARGIN_M = 80_000.0
DEFAULT_ISL_MAX_RANGE_M = 5_000_000.0


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
    counts: SearchCounts | None = None,
) -> Iterator[IslWindow]:
    """Windows when the satellites of each pair (fleet indices) see each other:
    line of sight above the Earth sphere + ``margin_m`` and range at most
    ``max_range_m``; streamed as windows close, block of pairs by block.

    Searched every 60 s by default (edges still refined to 10 ms): a laser
    terminal needs tens of seconds to acquire, so a shorter window carries
    nothing, and links between neighbours are up for hours. ``counts``, if given,
    counts the work done.
    """
    grid = Grid(start_t_s, duration_s, step_s, coarse_step_s, chunk_s)
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

        tracker = Tracker(len(pr), grid, make, samples)
        for j0, j1 in grid.chunks():
            co = Coarse(fleet, involved, grid, j0, j1, counts)
            yield from tracker.feed(
                *_isl_chunk(co, grid, j0, j1, la, lb, limit, max_range_m),
                _isl_fn(co, la, lb, limit, max_range_m),
                None,
            )
        yield from tracker.finish()


def _isl_fn(
    co: Coarse, la: np.ndarray, lb: np.ndarray, limit_m: float, max_range_m: float
) -> PairFunction:
    def f(p: np.ndarray, t: np.ndarray) -> np.ndarray:
        pa, _ = co.at(la[p], t)
        pb, _ = co.at(lb[p], t)
        return _isl_margin(pa, pb, limit_m, max_range_m)[0]

    return f


def _isl_chunk(
    co: Coarse,
    grid: Grid,
    j0: int,
    j1: int,
    la: np.ndarray,
    lb: np.ndarray,
    limit_m: float,
    max_range_m: float,
) -> ChunkSamples:
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
        pos = np.einsum("unkw,wn->unk", xg, hermite_w(u))
        vel = np.einsum("unkw,wn->unk", xg, hermite_du(u)) / grid.dtc
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
