"""Sunlight and eclipse: when each satellite is sunlit, in the penumbra or in the
umbra of the Earth (:func:`sunlight_intervals`), and what that adds up to per
satellite (:func:`sunlight_summary`).

Found with the machinery of :mod:`channels.contacts.search`, as passes are: orbits
propagated with SGP4 on the coarse grid one chunk and block of satellites at a
time, Hermite-interpolated to every ``step_s``, the shadow state (:mod:`channels.sun`)
sampled there for all satellites at once, and each change of state refined by
bisection on the interpolated orbit to 10 ms (:func:`~channels.contacts.search.bisect`).
A penumbra interval carries the mean fraction of the Sun's disc seen over it
(Gauss-Legendre on the SGP4 orbit), so that the energy it brings is exact to that
quadrature. As for passes, the step is the resolution of the search: a dip into
the penumbra shorter than ``step_s`` that falls between two samples is missed
(it can happen only where the orbit grazes the shadow).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from channels.contacts.search import (
    DEFAULT_CHUNK_S,
    EDGE_TOLERANCE_S,
    Coarse,
    Grid,
    SearchCounts,
    bisect,
    hermite_w,
)
from channels.orbit import Fleet
from channels.sun import (
    PENUMBRA,
    STATE_NAMES,
    SUNLIT,
    UMBRA,
    SunEcef,
    illuminated_fraction,
    shadow_margins_rad,
)
from linkstack.errors import ConfigError

DEFAULT_SUNLIGHT_STEP_S = 10.0
# The shadow wants less of the orbit than a pass: Hermite on a 120 s grid is within
# about 5 m, which moves an edge by under a millisecond where the orbit crosses the
# shadow (against the 60 s grid of passes: 99.9 % of planned-2800's edges within
# 20 ms, the worst 0.21 s, on a grazing dip into the penumbra), at half the SGP4 work.
DEFAULT_SUNLIGHT_COARSE_STEP_S = 120.0
DEFAULT_SUNLIGHT_BLOCK_SATS = 512
_QUADRATURE_NODES = 8


@dataclass(frozen=True)
class SunlightInterval:
    """A time when ``satellite`` is in one ``state``: "sunlit", "penumbra" or
    "umbra". ``mean_fraction``: the fraction of the Sun's disc it sees, averaged
    over the interval (1 sunlit, 0 umbra). ``*_clipped``: that edge is the span's."""

    satellite: str
    state: str
    start_t_s: float
    stop_t_s: float
    mean_fraction: float
    start_clipped: bool = False
    stop_clipped: bool = False

    @property
    def duration_s(self) -> float:
        return self.stop_t_s - self.start_t_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "satellite": self.satellite,
            "state": self.state,
            "start_t_s": round(self.start_t_s, 3),
            "stop_t_s": round(self.stop_t_s, 3),
            "mean_fraction": round(self.mean_fraction, 4),
            "start_clipped": self.start_clipped,
            "stop_clipped": self.stop_clipped,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SunlightInterval:
        state = d["state"]
        if state not in STATE_NAMES:
            raise ConfigError("sunlight interval", "state", f"one of {STATE_NAMES}, got {state!r}")
        return cls(
            d["satellite"],
            state,
            float(d["start_t_s"]),
            float(d["stop_t_s"]),
            float(d["mean_fraction"]),
            bool(d["start_clipped"]),
            bool(d["stop_clipped"]),
        )


def sunlight_intervals(
    fleet: Fleet,
    *,
    duration_s: float,
    start_t_s: float = 0.0,
    step_s: float = DEFAULT_SUNLIGHT_STEP_S,
    coarse_step_s: float = DEFAULT_SUNLIGHT_COARSE_STEP_S,
    chunk_s: float = DEFAULT_CHUNK_S,
    block_sats: int = DEFAULT_SUNLIGHT_BLOCK_SATS,
    counts: SearchCounts | None = None,
) -> list[SunlightInterval]:
    """Every satellite's sunlit, penumbra and umbra intervals over
    [start_t_s, start_t_s + duration_s], which they tile without gap; ordered by
    satellite (fleet order), then time."""
    grid = Grid(start_t_s, duration_s, step_s, coarse_step_s, chunk_s)
    if isinstance(block_sats, bool) or not isinstance(block_sats, int) or block_sats < 1:
        raise ConfigError(
            "sunlight search", "block_sats", f"must be an integer >= 1, got {block_sats!r}"
        )
    sun = SunEcef(fleet.epoch)
    out: list[SunlightInterval] = []
    for b0 in range(0, len(fleet), block_sats):
        block = np.arange(b0, min(len(fleet), b0 + block_sats))
        first, events = _block_events(fleet, block, grid, sun, counts)
        out += _intervals(fleet, block, grid, sun, first, events)
    return out


# (local satellite, t, state entered) for each change of state
_Events = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def _block_events(
    fleet: Fleet, block: np.ndarray, grid: Grid, sun: SunEcef, counts: SearchCounts | None
) -> tuple[np.ndarray, _Events]:
    """The state of each satellite of ``block`` at the span's start, and every
    change of state after it, each edge bisected."""
    c = grid.c
    hw = hermite_w(np.arange(c) / c)  # (4, c)
    prev: np.ndarray | None = None  # the state at the last sample of the previous chunk
    first = np.zeros(len(block), dtype=np.int8)
    events: _Events = []
    for j0, j1 in grid.chunks():
        co = Coarse(fleet, block, grid, j0, j1, counts)
        o = j0 - co.jstart
        kc0 = j0 * c
        kc1 = min(j1 * c, grid.K + 1)
        # positions at the fine samples kc0..kc1-1: (B, n, 3)
        pos = np.einsum("bjkw,ws->bjsk", co.X[:, o : o + (j1 - j0)], hw).reshape(len(block), -1, 3)
        pos = pos[:, : kc1 - kc0]
        ks = np.arange(kc0, kc1)
        pen, umb = shadow_margins_rad(pos, sun.at(grid.t(ks.astype(float)))[None, :, :])
        state = np.where(pen >= 0.0, SUNLIT, np.where(umb >= 0.0, PENUMBRA, UMBRA)).astype(np.int8)
        if prev is None:
            first = state[:, 0].copy()
            before = state[:, :-1]
            after = state[:, 1:]
            k_after = ks[1:]
        else:
            before = np.concatenate([prev[:, None], state[:, :-1]], axis=1)
            after = state
            k_after = ks
        prev = state[:, -1].copy()
        b_idx, col = np.nonzero(before != after)
        if not len(b_idx):
            continue
        s0 = before[b_idx, col].astype(int)
        s1 = after[b_idx, col].astype(int)
        hi = grid.t(k_after[col].astype(float))
        lo = hi - grid.step

        def pen_fn(b: np.ndarray, t: np.ndarray, co: Coarse = co) -> np.ndarray:
            p, _ = co.at(b, t)
            return shadow_margins_rad(p, sun.at(t))[0]

        def umb_fn(b: np.ndarray, t: np.ndarray, co: Coarse = co) -> np.ndarray:
            p, _ = co.at(b, t)
            return shadow_margins_rad(p, sun.at(t))[1]

        # The penumbra's outer edge lies between sunlit and the rest, the umbra's
        # between umbra and the rest; a jump from sunlit to umbra in one step
        # crosses both (in that order going in, the other way coming out).
        crosses_pen = (s0 == SUNLIT) != (s1 == SUNLIT)
        crosses_umb = (s0 == UMBRA) != (s1 == UMBRA)
        for crosses, fn, lit_side in ((crosses_pen, pen_fn, SUNLIT), (crosses_umb, umb_fn, UMBRA)):
            sel = np.flatnonzero(crosses)
            if not len(sel):
                continue
            if lit_side == SUNLIT:
                rising = s1[sel] == SUNLIT  # margin goes up through 0 coming out
                entered = np.where(rising, SUNLIT, PENUMBRA)
            else:
                rising = s0[sel] == UMBRA  # the umbra margin rises leaving the umbra
                entered = np.where(rising, PENUMBRA, UMBRA)
            t_edge = np.empty(len(sel))
            for direction in (True, False):
                part = np.flatnonzero(rising == direction)
                if len(part):
                    t_edge[part] = bisect(
                        fn,
                        b_idx[sel[part]],
                        lo[sel[part]],
                        hi[sel[part]],
                        direction,
                        EDGE_TOLERANCE_S,
                    )
            events.append((b_idx[sel], t_edge, entered.astype(np.int8)))
    return first, events


def _intervals(
    fleet: Fleet,
    block: np.ndarray,
    grid: Grid,
    sun: SunEcef,
    first: np.ndarray,
    events: _Events,
) -> list[SunlightInterval]:
    """The events of a block turned into each satellite's intervals."""
    by_sat: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for b, t, s in events:
        for bi, ti, si in zip(b.tolist(), t.tolist(), s.tolist(), strict=True):
            by_sat[bi].append((ti, si))
    raw: list[tuple[int, int, float, float, bool, bool]] = []
    for bi in range(len(block)):
        # two edges crossed in one step are sorted by time; an edge pair that
        # bisection put in the wrong order (10 ms apart at most) keeps the order
        # of the states
        evs = sorted(by_sat.get(bi, []))
        state, start, clipped = int(first[bi]), grid.t0, True
        for t_edge, entered in evs:
            t_s = min(max(t_edge, start), grid.end)
            if entered == state:
                continue
            raw.append((bi, state, start, t_s, clipped, False))
            state, start, clipped = entered, t_s, False
        raw.append((bi, state, start, grid.end, clipped, True))
    spans = [(r[0], r[2], r[3]) for r in raw if r[1] == PENUMBRA]
    fractions = _penumbra_fractions(fleet, block, sun, spans)
    out: list[SunlightInterval] = []
    fi = iter(fractions)
    for bi, state, start, stop, c0, c1 in raw:
        mean = 1.0 if state == SUNLIT else 0.0 if state == UMBRA else next(fi)
        out.append(
            SunlightInterval(
                fleet.names[int(block[bi])], STATE_NAMES[state], start, stop, mean, c0, c1
            )
        )
    return out


def _penumbra_fractions(
    fleet: Fleet, block: np.ndarray, sun: SunEcef, spans: Sequence[tuple[int, float, float]]
) -> list[float]:
    """The mean visible fraction of the Sun over each (local satellite, start, stop),
    by Gauss-Legendre on the SGP4 orbit (in TEME, the Sun's frame here)."""
    if not spans:
        return []
    x, w = np.polynomial.legendre.leggauss(_QUADRATURE_NODES)
    out = np.full(len(spans), 0.5)
    by_sat: dict[int, list[int]] = defaultdict(list)
    for i, (bi, _, _) in enumerate(spans):
        by_sat[bi].append(i)
    for bi, rows in by_sat.items():
        lo = np.array([spans[i][1] for i in rows])
        hi = np.array([spans[i][2] for i in rows])
        t = (0.5 * (lo + hi))[:, None] + (0.5 * (hi - lo))[:, None] * x[None, :]
        r, _ = fleet.teme(t.ravel(), [int(block[bi])])
        lit = illuminated_fraction(r[0], sun.mod(t.ravel())).reshape(t.shape)
        out[rows] = 0.5 * (lit @ w)
    result: list[float] = out.tolist()
    return result


@dataclass(frozen=True)
class SunlightSummary:
    """What a satellite's intervals add up to over the span: time in each state,
    the time in shadow weighted by how much of the Sun is hidden
    (``shadow_equivalent_s``: the umbra plus the hidden part of the penumbra; what the
    solar array loses), and its eclipses (a run of penumbra and umbra between two
    sunlit intervals; ``longest_eclipse_s`` counts only those whole in the span)."""

    satellite: str
    span_s: float
    sunlit_s: float
    penumbra_s: float
    umbra_s: float
    shadow_equivalent_s: float
    eclipses: int
    longest_eclipse_s: float

    @property
    def shadow_fraction(self) -> float:
        return self.shadow_equivalent_s / self.span_s if self.span_s > 0 else 0.0


def sunlight_summary(intervals: Iterable[SunlightInterval]) -> list[SunlightSummary]:
    """One :class:`SunlightSummary` per satellite, in the order they first appear."""
    per: dict[str, list[SunlightInterval]] = {}
    for iv in intervals:
        per.setdefault(iv.satellite, []).append(iv)
    out = []
    for name, ivs in per.items():
        ivs.sort(key=lambda iv: iv.start_t_s)
        total = {s: 0.0 for s in STATE_NAMES}
        hidden = 0.0
        eclipses, longest = 0, 0.0
        run, run_start_clipped = 0.0, False
        in_run = False
        for iv in ivs:
            total[iv.state] += iv.duration_s
            hidden += iv.duration_s * (1.0 - iv.mean_fraction)
            if iv.state == "sunlit":
                if in_run:
                    eclipses += 1
                    if not run_start_clipped:
                        longest = max(longest, run)
                in_run = False
            else:
                if not in_run:
                    in_run, run, run_start_clipped = True, 0.0, iv.start_clipped
                run += iv.duration_s
        if in_run:
            eclipses += 1
        span = ivs[-1].stop_t_s - ivs[0].start_t_s
        out.append(
            SunlightSummary(
                name,
                span,
                total["sunlit"],
                total["penumbra"],
                total["umbra"],
                hidden,
                eclipses,
                longest,
            )
        )
    return out
