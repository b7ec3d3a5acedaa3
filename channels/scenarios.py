"""Built-in scenarios: who flies where, who is on the ground, who links to whom.

- ``default``: the constellation of the reported in-orbit Qwen3 run: 12
  computing satellites evenly spaced in one sun-synchronous plane at 500 km,
  each laser-linked to its two neighbours in the plane (a ring), and five real
  ground-station sites (approximate public coordinates).
- ``planned-2800``: one plausible layout of the planned 2,800-satellite network
  (2,400 inference + 400 training, 500-1,000 km, sun-synchronous, dawn-dusk and
  low-inclination shells; the split is ours, see :data:`PLANNED_SHELLS`) with
  twenty ground stations.
- a TLE file: its satellites, the default stations, no laser links.

The operator has not published the plane's local time of the ascending node;
we take 22:30 (a 10:30 descending node, the usual morning sun-synchronous
orbit). The epoch is fixed, 2026-01-01T00:00:00Z, so that runs repeat.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from channels.contacts.laser import DEFAULT_ISL_MARGIN_M
from channels.geometry import EARTH_RADIUS_M, GroundStation
from channels.orbit import Fleet, Satellite, load_tles, sso_plane, walker_delta
from linkstack.errors import ConfigError

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class Scenario:
    """Epoch, satellites, ground stations and laser-link pairs (indices into
    ``satellites``). ``fleet`` propagates them all. ``shells``: the shell (or any
    group) each satellite belongs to, in order, for reports by shell; empty: one
    group, the scenario's name."""

    name: str
    epoch: datetime
    satellites: tuple[Satellite, ...]
    stations: tuple[GroundStation, ...]
    isl_pairs: tuple[tuple[int, int], ...] = ()
    description: str = ""
    shells: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"scenario {self.name!r}"
        if self.epoch.tzinfo is None or self.epoch.utcoffset() is None:
            raise ConfigError(where, "epoch", "must be a timezone-aware UTC datetime")
        if not self.satellites:
            raise ConfigError(where, "satellites", "at least one satellite is needed")
        for label, names in (
            ("satellites", [s.name for s in self.satellites]),
            ("stations", [s.name for s in self.stations]),
        ):
            if len(set(names)) != len(names):
                dup = next(n for n in names if names.count(n) > 1)
                raise ConfigError(where, label, f"name {dup!r} appears more than once")
        n = len(self.satellites)
        seen = set()
        for a, b in self.isl_pairs:
            if not (0 <= a < n and 0 <= b < n) or a == b:
                raise ConfigError(where, "isl_pairs", f"({a}, {b}) must name two of {n} satellites")
            key = (min(a, b), max(a, b))
            if key in seen:
                raise ConfigError(where, "isl_pairs", f"({a}, {b}) is listed twice")
            seen.add(key)
        if self.shells and len(self.shells) != n:
            raise ConfigError(where, "shells", f"one a satellite: {n}, got {len(self.shells)}")

    @functools.cached_property
    def shell_of(self) -> dict[str, str]:
        """Each satellite's shell by name (the scenario's name where none is given)."""
        shells = self.shells or (self.name,) * len(self.satellites)
        return dict(zip(self.satellite_names, shells, strict=True))

    @property
    def satellite_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.satellites)

    @functools.cached_property
    def fleet(self) -> Fleet:
        return Fleet(self.satellites, self.epoch)

    @functools.cached_property
    def _by_name(self) -> dict[str, Satellite]:
        return {s.name: s for s in self.satellites}

    def satellite(self, name: str) -> Satellite:
        # by a dict: every link of a large constellation asks for its two ends
        found = self._by_name.get(name)
        if found is None:
            raise ConfigError(
                f"scenario {self.name!r}", "satellite", f"no satellite named {name!r}"
            )
        return found

    def station(self, name: str) -> GroundStation:
        for s in self.stations:
            if s.name == name:
                return s
        raise ConfigError(f"scenario {self.name!r}", "station", f"no station named {name!r}")


def ring_pairs(first: int, count: int) -> list[tuple[int, int]]:
    """Laser links between in-plane neighbours: i <-> i+1, closing the ring."""
    if count < 2:
        return []
    if count == 2:
        return [(first, first + 1)]
    return [(first + j, first + (j + 1) % count) for j in range(count)]


# --- ground stations ----------------------------------------------------------------

# Real sites, approximate public coordinates (deg, deg, m). High-latitude sites see
# a polar or sun-synchronous satellite on most orbits.
_SITES = {
    "Svalbard": (78.230, 15.400, 500.0),  # SvalSat, Platåberget
    "Kiruna": (67.880, 21.070, 340.0),  # Esrange
    "Mohe": (52.970, 122.530, 300.0),  # northernmost Chinese receiving site
    "Kashgar": (39.500, 76.000, 1300.0),
    "Sanya": (18.300, 109.300, 50.0),
    "Miyun": (40.450, 116.850, 100.0),  # near Beijing
    "Jiamusi": (46.490, 130.770, 100.0),
    "Kunming": (25.030, 102.800, 1900.0),
    "Inuvik": (68.320, -133.550, 100.0),
    "Fairbanks": (64.860, -147.850, 200.0),
    "Wallops": (37.940, -75.460, 10.0),
    "South Point": (19.010, -155.660, 380.0),  # Hawaii
    "Kourou": (5.250, -52.800, 20.0),
    "Cordoba": (-31.520, -64.460, 730.0),
    "Punta Arenas": (-52.940, -70.860, 50.0),
    "Hartebeesthoek": (-25.890, 27.690, 1550.0),
    "Matera": (40.650, 16.700, 540.0),
    "Dongara": (-29.050, 115.350, 250.0),
    "Troll": (-72.010, 2.530, 1270.0),  # Antarctica
    "McMurdo": (-77.840, 166.670, 100.0),  # Antarctica
}

DEFAULT_STATION_NAMES = ("Svalbard", "Kiruna", "Mohe", "Kashgar", "Sanya")


def stations(
    names: Sequence[str] | None = None, min_elevation_deg: float = 10.0
) -> tuple[GroundStation, ...]:
    """Built-in stations by name (all twenty when ``names`` is None)."""
    chosen = list(_SITES) if names is None else list(names)
    out = []
    for n in chosen:
        if n not in _SITES:
            raise ConfigError(
                "stations", "name", f"unknown station {n!r}; known: {', '.join(_SITES)}"
            )
        lat, lon, alt = _SITES[n]
        out.append(GroundStation(n, lat, lon, alt, min_elevation_deg))
    return tuple(out)


# --- the scenarios ------------------------------------------------------------------


def default_scenario(ltan_h: float = 22.5, alt_m: float = 500_000.0) -> Scenario:
    """12 computing satellites, one sun-synchronous plane, a laser ring, 5 stations."""
    sats = sso_plane(EPOCH, count=12, alt_m=alt_m, ltan_h=ltan_h, name_prefix="CS", role="compute")
    return Scenario(
        "default",
        EPOCH,
        tuple(sats),
        stations(DEFAULT_STATION_NAMES),
        tuple(ring_pairs(0, 12)),
        "12 computing satellites in one sun-synchronous plane at "
        f"{alt_m / 1e3:g} km (LTAN {ltan_h:g} h), laser ring, 5 ground stations",
    )


@dataclass(frozen=True)
class Shell:
    """Planes of one kind at one altitude. ``ltans_h``: one sun-synchronous plane
    per local time of the ascending node; otherwise a Walker delta at
    ``inclination_deg`` with ``planes`` planes and phasing ``phasing``."""

    name: str
    role: str
    alt_m: float
    sats_per_plane: int
    ltans_h: tuple[float, ...] = ()
    inclination_deg: float = 0.0
    planes: int = 0
    phasing: int = 1

    @property
    def count(self) -> int:
        return self.sats_per_plane * (len(self.ltans_h) or self.planes)


# Our split of the planned network (the operator gives only the totals, the
# altitude range and the orbit families):
# - inference, dawn-dusk SSO, 500 km: 6 planes around the terminator (LTAN
#   05:40-06:20 and 17:40-18:20) x 100 = 600, in sunlight most of the year: the
#   06:00 planes are eclipsed from about November to mid-February (at the epoch
#   24 % of the time, 23 min an orbit), the 18:00 planes around the June solstice
#   (tests/channels/test_sunlight.py);
# - inference, SSO at 550 km with the node spread over the day (LTAN 06:30 to
#   17:30 every hour) x 50 = 600: every local time is overflown twice a day;
# - inference, low inclination: Walker 600/15/1 at 40 deg, 800 km, and 600/12/1
#   at 30 deg, 1,000 km: dense coverage of the populated mid and low latitudes;
# - training, dawn-dusk SSO at 650 and 700 km: 4 planes x 100 = 400, in sunlight
#   for long training runs outside their eclipse season (06:00 at the epoch: 19-20 %
#   of the time in shadow, 19-20 min an orbit).
_NEAR_TERMINATOR_H = (17 + 2 / 3, 18.0, 18 + 1 / 3, 5 + 2 / 3, 6.0, 6 + 1 / 3)
PLANNED_SHELLS = (
    Shell("DD500", "inference", 500e3, 100, ltans_h=_NEAR_TERMINATOR_H),
    Shell("SSO550", "inference", 550e3, 50, ltans_h=tuple(6.5 + h for h in range(12))),
    Shell("LI800", "inference", 800e3, 40, inclination_deg=40.0, planes=15, phasing=1),
    Shell("LI1000", "inference", 1000e3, 50, inclination_deg=30.0, planes=12, phasing=1),
    Shell("TR650", "training", 650e3, 100, ltans_h=(6.0, 18.0)),
    Shell("TR700", "training", 700e3, 100, ltans_h=(6.0, 18.0)),
)  # fmt: skip


# Laser links of the planned network (see :func:`planned_scenario`).
SEAM_H = 6.0  # SSO planes whose nodes are this many hours of local time apart or more are
# not linked: a plane 12 h away is the same plane flown the other way (satellites would
# pass each other at 15 km/s)
CROSS_SHELL_NEAREST = 2  # each satellite's candidates in each shell next to it in altitude
CROSS_SHELL_MAX_RANGE_M = 4_000_000.0  # ... within this range, in sight, at the epoch


def planned_scenario(cross_plane: bool = True, cross_shell: bool = True) -> Scenario:
    """The planned 2,800-satellite network (see :data:`PLANNED_SHELLS`) and its laser
    links (10,708 pairs with both options, the default):

    - a ring in every plane (2,800);
    - ``cross_plane``: each satellite to the one in the same slot of the next plane of
      its shell (2,150): Walker shells wrap round (the last plane to the first, one slot
      on, where the phasing brings its neighbour), sun-synchronous planes link only
      to a plane whose node is less than :data:`SEAM_H` hours of local time away;
    - ``cross_shell``: each satellite to the :data:`CROSS_SHELL_NEAREST` nearest
      satellites of each shell next to its own in altitude that are in sight (the
      line clears the Earth by the laser search's margin) and within
      :data:`CROSS_SHELL_MAX_RANGE_M` at the epoch (5,758 pairs): the shells drift
      apart, so these links come and go, and the contact plan says when
      (:func:`channels.contacts.laser.isl_windows`: range and line of sight).
    """
    sats: list[Satellite] = []
    shells: list[str] = []
    pairs: list[tuple[int, int]] = []
    spans: list[tuple[Shell, int]] = []  # each shell and its first satellite
    for shell in PLANNED_SHELLS:
        first = len(sats)
        spans.append((shell, first))
        if shell.ltans_h:
            for p, ltan in enumerate(shell.ltans_h):
                sats += sso_plane(
                    EPOCH,
                    count=shell.sats_per_plane,
                    alt_m=shell.alt_m,
                    ltan_h=ltan,
                    name_prefix=f"{shell.name}-P{p + 1:02d}",
                    phase_deg=0.0 if p % 2 == 0 else 180.0 / shell.sats_per_plane,
                    first_catalog_number=len(sats) + 1,
                    role=shell.role,
                )
        else:
            sats += walker_delta(
                EPOCH,
                total=shell.count,
                planes=shell.planes,
                phasing=shell.phasing,
                inclination_deg=shell.inclination_deg,
                alt_m=shell.alt_m,
                name_prefix=shell.name,
                first_catalog_number=len(sats) + 1,
                role=shell.role,
            )
        shells += [shell.name] * shell.count
        per = shell.sats_per_plane
        plane_starts = list(range(first, len(sats), per))
        for s0 in plane_starts:
            pairs += ring_pairs(s0, per)
        if cross_plane:
            pairs += _cross_plane_pairs(shell, plane_starts)
    if cross_shell:
        pairs += _cross_shell_pairs(Fleet(sats, EPOCH), spans)
    return Scenario(
        "planned-2800",
        EPOCH,
        tuple(sats),
        stations(),
        tuple(pairs),
        "2,400 inference + 400 training satellites, 500-1,000 km, sun-synchronous, "
        f"dawn-dusk and low-inclination shells, {len(pairs):,} laser links (rings, "
        "neighbouring planes, neighbouring shells), 20 ground stations",
        shells=tuple(shells),
    )


def _cross_plane_pairs(shell: Shell, plane_starts: list[int]) -> list[tuple[int, int]]:
    """Slot j of each plane to slot j of the next one (see :func:`planned_scenario`)."""
    per = shell.sats_per_plane
    out: list[tuple[int, int]] = []
    if shell.ltans_h:
        for (s0, h0), (s1, h1) in itertools.pairwise(zip(plane_starts, shell.ltans_h, strict=True)):
            apart_h = abs(h1 - h0) % 24.0
            if min(apart_h, 24.0 - apart_h) < SEAM_H:
                out += [(s0 + j, s1 + j) for j in range(per)]
        return out
    for s0, s1 in itertools.pairwise(plane_starts):
        out += [(s0 + j, s1 + j) for j in range(per)]
    if len(plane_starts) > 2:
        # round the Earth, the phasing has moved each slot on by F (P-1)/P of a slot
        shift = round(shell.phasing * (shell.planes - 1) / shell.planes)
        last, first = plane_starts[-1], plane_starts[0]
        out += [(last + j, first + (j + shift) % per) for j in range(per)]
    return out


def _cross_shell_pairs(fleet: Fleet, spans: list[tuple[Shell, int]]) -> list[tuple[int, int]]:
    """Pairs between shells next to each other in altitude (see :func:`planned_scenario`)."""
    r_m = fleet.ecef(0.0)[0][:, 0, :]
    by_alt = sorted(spans, key=lambda span: span[0].alt_m)
    found: set[tuple[int, int]] = set()
    for (lo, lo0), (hi, hi0) in itertools.pairwise(by_alt):
        for a, a0, b, b0 in ((lo, lo0, hi, hi0), (hi, hi0, lo, lo0)):
            pa = r_m[a0 : a0 + a.count][:, None, :]
            pb = r_m[b0 : b0 + b.count][None, :, :]
            d = pb - pa
            # the point of each line nearest the Earth's centre must clear it by the margin
            along = np.clip(-(pa * d).sum(-1) / (d * d).sum(-1), 0.0, 1.0)
            closest_m = np.linalg.norm(pa + along[..., None] * d, axis=-1)
            range_m = np.linalg.norm(d, axis=-1)
            ok = (closest_m >= EARTH_RADIUS_M + DEFAULT_ISL_MARGIN_M) & (
                range_m <= CROSS_SHELL_MAX_RANGE_M
            )
            range_m = np.where(ok, range_m, np.inf)
            nearest = np.argsort(range_m, axis=1, kind="stable")[:, :CROSS_SHELL_NEAREST]
            for i, row in enumerate(nearest):
                for j in row:
                    if np.isfinite(range_m[i, j]):
                        x, y = a0 + i, b0 + int(j)
                        found.add((min(x, y), max(x, y)))
    return sorted(found)


def some_of(scenario: Scenario, indices: Sequence[int], name: str) -> Scenario:
    """The satellites of ``scenario`` at ``indices`` (in that order), with their shells,
    the laser links between two of them, and all its stations: a smaller constellation
    of the same geometry (``linkstack bench scale`` runs such parts of planned-2800)."""
    keep = list(indices)
    if len(set(keep)) != len(keep) or not all(0 <= i < len(scenario.satellites) for i in keep):
        raise ConfigError(f"scenario {name!r}", "indices", "must name satellites once each")
    new = {old: k for k, old in enumerate(keep)}
    return Scenario(
        name,
        scenario.epoch,
        tuple(scenario.satellites[i] for i in keep),
        scenario.stations,
        tuple((new[a], new[b]) for a, b in scenario.isl_pairs if a in new and b in new),
        f"{len(keep)} satellites of {scenario.name}",
        shells=tuple(scenario.shells[i] for i in keep) if scenario.shells else (),
    )


def tle_scenario(
    path: str | os.PathLike[str],
    *,
    epoch: datetime | None = None,
    station_list: Sequence[GroundStation] | None = None,
    isl_pairs: Sequence[tuple[int, int]] = (),
) -> Scenario:
    """Satellites from a TLE file (or TLE text). The epoch defaults to the newest
    element set's epoch, cut to the whole minute: SGP4 is best near its epochs."""
    sats = load_tles(path)
    if epoch is None:
        newest = max(s.epoch for s in sats)
        epoch = newest.replace(second=0, microsecond=0)
        if epoch < newest:
            epoch += timedelta(minutes=1)
    name = Path(path).name if "\n" not in str(path) else "tle"
    return Scenario(
        name,
        epoch,
        tuple(sats),
        tuple(station_list) if station_list is not None else stations(DEFAULT_STATION_NAMES),
        tuple(isl_pairs),
        f"{len(sats)} satellites from TLEs",
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "default": default_scenario,
    "planned-2800": planned_scenario,
}


@functools.lru_cache(maxsize=4)
def _builtin(name: str) -> Scenario:
    return SCENARIOS[name]()


def scenario_by_name(name: str) -> Scenario:
    """A built-in scenario ("default", "planned-2800"), or the satellites of a TLE
    file given by its path (optionally written ``tle:PATH``)."""
    if name in SCENARIOS:
        return _builtin(name)
    path = name.removeprefix("tle:")
    if Path(path).is_file():
        return tle_scenario(path)
    raise ConfigError(
        "scenario",
        "name",
        f"unknown scenario {name!r}: use one of {', '.join(SCENARIOS)} or a TLE file path",
    )
