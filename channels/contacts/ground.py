"""Ground passes: when each station sees each satellite above its elevation mask
(:func:`ground_windows`), found with the machinery of :mod:`channels.contacts.search`
after an angular prefilter on the coarse grid throws away the (satellite, station,
interval) triples that cannot be in view."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

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
from channels.contacts.windows import GroundWindow, Samples
from channels.geometry import GroundStation
from channels.orbit import Fleet
from linkstack.errors import ConfigError

DEFAULT_STEP_S = 10.0
DEFAULT_BLOCK_SATS = 512


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
    counts: SearchCounts | None = None,
) -> Iterator[GroundWindow]:
    """Every pass of every satellite of ``fleet`` above every station's mask in
    [start_t_s, start_t_s + duration_s], streamed as each window closes (order:
    by satellite block, then by closing time; sort if you need another).

    Memory is bounded by ``block_sats`` x stations x ``chunk_s`` / ``coarse_step_s``
    plus the windows open at one time. ``counts``, if given, counts the work done.
    """
    grid = Grid(start_t_s, duration_s, step_s, coarse_step_s, chunk_s)
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
    hw = hermite_w(u)  # (4, c)
    hdw = hermite_du(u)
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

        tracker = Tracker(len(block) * n_st, grid, make, samples)
        for j0, j1 in grid.chunks():
            co = Coarse(fleet, block, grid, j0, j1, counts)
            yield from tracker.feed(
                *_ground_chunk(co, st, grid, j0, j1, hw, hdw), *_ground_fns(co, st)
            )
        yield from tracker.finish()


def _ground_fns(co: Coarse, st: dict[str, np.ndarray]) -> tuple[PairFunction, PairFunction]:
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
    co: Coarse,
    st: dict[str, np.ndarray],
    grid: Grid,
    j0: int,
    j1: int,
    hw: np.ndarray,
    hdw: np.ndarray,
) -> ChunkSamples:
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
    if co.counts is not None:
        co.counts.candidate_intervals += len(cb)
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
