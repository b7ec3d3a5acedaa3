"""The contact plan of a scenario (:class:`ContactPlan`, :func:`contact_plan`): its
ground passes and laser-link windows over a span, with node numbers for DTN tools,
and beside them, when asked, each satellite's sunlit and eclipse intervals; as JSON
(:meth:`ContactPlan.to_json`) and as a pass table (:func:`format_table`).
The plans for DTN bundle agents (ION, HDTN) are :mod:`channels.contacts.dtn`'s."""

from __future__ import annotations

import json
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
from channels.contacts.sunlight import (
    DEFAULT_SUNLIGHT_STEP_S,
    SunlightInterval,
    sunlight_intervals,
    sunlight_summary,
)
from channels.contacts.windows import GroundWindow, IslWindow
from channels.geometry import GroundStation
from linkstack.errors import ConfigError

if TYPE_CHECKING:
    from channels.scenarios import Scenario

_PLAN_FORMAT = "linkstack-contact-plan"
_PLAN_VERSION = 1


@dataclass(frozen=True)
class ContactPlan:
    """Every window of a scenario over a span, with node numbers for DTN tools:
    satellites 1..N in scenario order, then stations N+1..N+M. ``sunlight``: each
    satellite's sunlit, penumbra and umbra intervals, when computed
    (``sunlight_step_s`` is then their search step; None: not computed)."""

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
    sunlight: tuple[SunlightInterval, ...] = ()
    sunlight_step_s: float | None = None

    @property
    def nodes(self) -> dict[str, int]:
        names = [*self.satellites, *(s.name for s in self.stations)]
        return {name: i + 1 for i, name in enumerate(names)}

    def utc(self, t_s: float) -> datetime:
        return self.epoch + timedelta(seconds=t_s)

    def sunlight_spans(self, satellite: str) -> list[tuple[float, float, float]]:
        """(start, stop, fraction of the Sun seen) of one satellite's sunlight
        intervals, in order: the spans a power model steps through
        (:class:`payloads.power.PowerModel`). Empty where no sunlight was computed."""
        return [
            (iv.start_t_s, iv.stop_t_s, iv.mean_fraction)
            for iv in self.sunlight
            if iv.satellite == satellite
        ]

    def to_dict(self) -> dict[str, Any]:
        d = {
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
        if self.sunlight_step_s is not None:
            d["sunlight_step_s"] = self.sunlight_step_s
            d["sunlight_intervals"] = [iv.to_dict() for iv in self.sunlight]
        return d

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
            tuple(SunlightInterval.from_dict(iv) for iv in d.get("sunlight_intervals", ())),
            None if d.get("sunlight_step_s") is None else float(d["sunlight_step_s"]),
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
    sunlight: bool = False,
    sunlight_step_s: float = DEFAULT_SUNLIGHT_STEP_S,
) -> ContactPlan:
    """All ground and laser-link windows of a :class:`channels.scenarios.Scenario`,
    each list sorted by start time. Ground links are searched and sampled every
    ``step_s``, laser links every ``isl_step_s``; with ``sunlight``, each
    satellite's sunlit and eclipse intervals too, searched every ``sunlight_step_s``."""
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
    lit: list[SunlightInterval] = []
    if sunlight:
        lit = sunlight_intervals(
            fleet, duration_s=duration_s, start_t_s=start_t_s, step_s=sunlight_step_s
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
        tuple(lit),
        float(sunlight_step_s) if sunlight else None,
    )


# --- exports -----------------------------------------------------------------------


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
    if plan.sunlight_step_s is not None:
        lines += ["", *_sunlight_table(plan)]
    return "\n".join(lines) + "\n"


def _sunlight_table(plan: ContactPlan) -> list[str]:
    """Each eclipse of each satellite (penumbra entry, umbra entry and exit, penumbra
    exit), then each satellite's sunlight over the span."""
    fmt = "%Y-%m-%d %H:%M:%S"

    def utc(t_s: float, clipped: bool) -> str:
        return plan.utc(t_s).strftime(fmt) + ("*" if clipped else "")

    head = (
        f"{'satellite':<16} {'penumbra in (UTC)':<20} {'umbra in':<20} {'umbra out':<20} "
        f"{'penumbra out':<20} {'duration':>9}"
    )
    lines = [head, "-" * len(head)]
    run: list[SunlightInterval] = []
    for iv in [*plan.sunlight, None]:
        if (
            iv is not None
            and iv.state != "sunlit"
            and (not run or run[-1].satellite == iv.satellite)
        ):
            run.append(iv)
            continue
        if run:
            umbra = [u for u in run if u.state == "umbra"]
            u_in = utc(umbra[0].start_t_s, umbra[0].start_clipped) if umbra else "-"
            u_out = utc(umbra[-1].stop_t_s, umbra[-1].stop_clipped) if umbra else "-"
            m, sec = divmod(round(run[-1].stop_t_s - run[0].start_t_s), 60)
            lines.append(
                f"{run[0].satellite:<16} {utc(run[0].start_t_s, run[0].start_clipped):<20} "
                f"{u_in:<20} {u_out:<20} {utc(run[-1].stop_t_s, run[-1].stop_clipped):<20} "
                f"{m:>6d}:{sec:02d}"
            )
        run = [iv] if iv is not None and iv.state != "sunlit" else []
    lines.append("eclipses: penumbra in to penumbra out; * cut by the span")
    lines.append("")
    head = (
        f"{'satellite':<16} {'eclipses':>8} {'longest':>8} {'umbra':>9} {'penumbra':>9} "
        f"{'in shadow':>9}"
    )
    lines += [head, "-" * len(head)]
    for s in sunlight_summary(plan.sunlight):
        m, sec = divmod(round(s.longest_eclipse_s), 60)
        lines.append(
            f"{s.satellite:<16} {s.eclipses:>8d} {m:>5d}:{sec:02d} {s.umbra_s / 60:>7.1f} m "
            f"{s.penumbra_s:>7.0f} s {100 * s.shadow_fraction:>8.1f}%"
        )
    lines.append(
        "longest: the longest eclipse whole in the span (min:s); in shadow: the umbra and "
        "the hidden part of the penumbra, over the span"
    )
    return lines
