"""The contact plan of a scenario (:class:`ContactPlan`, :func:`contact_plan`): its
ground passes and laser-link windows over a span, with node numbers for DTN tools,
and its exports: JSON (:meth:`ContactPlan.to_json`), NASA ION contact-plan lines
(:func:`to_ion`) and a pass table (:func:`format_table`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from channels.contacts.ground import DEFAULT_STEP_S, ground_windows
from channels.contacts.laser import (
    DEFAULT_ISL_MARGIN_M,
    DEFAULT_ISL_MAX_RANGE_M,
    DEFAULT_ISL_STEP_S,
    isl_windows,
)
from channels.contacts.windows import GroundWindow, IslWindow
from channels.geometry import C_MPS, GroundStation
from linkstack.errors import ConfigError

if TYPE_CHECKING:
    from channels.scenarios import Scenario

# Placeholder data rates for ION plans (bytes/s) until the RF and optical link
# budgets supply their own: an X-band downlink of 300 Mbit/s, a 256 kbit/s TC
# uplink, a 10 Gbit/s laser link.
DEFAULT_DOWNLINK_BYTES_PER_S = 37_500_000
DEFAULT_UPLINK_BYTES_PER_S = 32_000
DEFAULT_ISL_BYTES_PER_S = 1_250_000_000

_PLAN_FORMAT = "linkstack-contact-plan"
_PLAN_VERSION = 1


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
