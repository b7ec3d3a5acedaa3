"""``linkstack roundtrip-study``: the reported two minutes, explained leg by leg.

The reference system (the shipped ``reference`` scenario: 12 computing satellites
in one sun-synchronous plane at 500 km, a 100 Gbit/s laser ring, six Chinese
ground stations, 744 TOPS a satellite) answers queries submitted at uniformly
random instants over a day of emulated time, once for each Qwen3 size on the
reference accelerator; then the variants that could bring the 95th percentile of
the round trip under 120 s for a query submitted at any time: more stations, more
planes, a smaller model.

Every run is the in-process emulation (:class:`linkstack.runtime.emulation.Emulation`,
emulated time): real CCSDS frames over the scenario's links, the contact plan's
passes, COP-1, the laser relays, the onboard queue. The answers' text comes from
:class:`ScriptedBackend` (a fixed answer of ``max_new_tokens`` tokens, at once: no
model runs on this host) and the inference legs from the timing model of the
accelerator and the model profile (:mod:`payloads.timing`), so the figures are the
same on any machine; only the wall time depends on it.

Each query's round trip is cut into the legs the brief asks for (:data:`GROUPS`):
the uplink, the laser relays (the query's way to its computing satellite and the
answer's hops back), the onboard queue, the inference (time to first token and
generation), the downlink, and the waits for a pass (before the uplink, and the
answer's wait at the satellite that reaches a station first). They tile the round
trip, so they add up to its total.

Laser links to the ground are not modelled by linkstack (its ground links are S-band
up and X-band down), so that variant is reported as not evaluated.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from channels import scenarios as builtin
from channels.orbit import sso_plane
from linkstack.errors import ConfigError
from linkstack.runtime import scenario as scenario_files
from linkstack.runtime.config import EmulationConfig
from linkstack.runtime.power_settings import PowerSettings, with_accelerator
from linkstack.runtime.report import REFERENCE_S, Timeline, percentile
from linkstack.tools.query_run import PROMPT, ScriptedBackend, run_queries
from payloads.model_profiles import PROFILES
from payloads.power import PowerParams
from payloads.timing import InferenceTiming

PRESET = "reference"
QWEN3_SIZES = (
    "qwen3-0.6b",
    "qwen3-1.7b",
    "qwen3-4b",
    "qwen3-8b",
    "qwen3-14b",
    "qwen3-30b-a3b",
    "qwen3-32b",
)
LASER_GROUND_LINKS = (
    "not evaluated: channels/optical.py has a model of an optical ground link (10 Gbit/s, a "
    "pass clouded out with probability 0.5), but the runtime's ground links are S-band up "
    "and X-band down and no scenario key selects it; it would shorten the uplink and "
    "downlink legs (tens of ms here), not the waits for a pass that make the p95"
)

# The legs of the study (what the brief names), from the timeline's legs
# (payloads.timeline.LEGS). The answer's laser hops are taken out of downlink_wait
# into "relay" (see leg_groups_s); a leg not named here (a newer one) goes to "other".
GROUPS = (
    "uplink",
    "relay",
    "onboard_queue",
    "power_wait",
    "inference",
    "downlink",
    "pass_wait",
    "other",
)
_GROUP_OF = {
    "contact_wait": "pass_wait",
    "uplink": "uplink",
    "relay_up": "relay",
    "onboard_queue": "onboard_queue",
    "power_wait": "power_wait",
    "inference_ttft": "inference",
    "generation": "inference",
    "downlink_wait": "pass_wait",
    "downlink": "downlink",
}


# -- what is run ----------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One run: a constellation with its stations, and the model on its accelerator."""

    name: str
    what: str  # in words, for the table
    scenario: builtin.Scenario
    timing: InferenceTiming
    power: PowerSettings | None = None  # None: the scenario's


def with_profile(timing: InferenceTiming, profile: str) -> InferenceTiming:
    """The same accelerator and settings running another model profile."""
    return replace(timing, model=PROFILES[profile])


def with_stations(
    scenario: builtin.Scenario, names: Sequence[str] | None, label: str
) -> builtin.Scenario:
    """``scenario`` seen from the built-in sites ``names`` (None: all twenty)."""
    return replace(scenario, name=label, stations=builtin.stations(names))


def with_planes(scenario: builtin.Scenario, planes: int, label: str) -> builtin.Scenario:
    """The reference plane scaled to ``planes`` sun-synchronous planes of the same
    size, altitude and spacing, their nodes spread evenly over 12 hours of local time
    from the reference's (22:30), each a laser ring, every satellite computing."""
    first = scenario.satellites
    per = len(first)
    alt_m = 500e3
    sats = list(first)
    pairs = list(scenario.isl_pairs)
    for k in range(1, planes):
        ltan_h = (22.5 + 12.0 * k / planes) % 24.0
        start = len(sats)
        sats += sso_plane(
            scenario.epoch, count=per, alt_m=alt_m, ltan_h=ltan_h, name_prefix=f"P{k + 1}",
            phase_deg=180.0 * k / (planes * per), first_catalog_number=start + 1, role="compute",
        )  # fmt: skip
        pairs += builtin.ring_pairs(start, per)
    return replace(scenario, name=label, satellites=tuple(sats), isl_pairs=tuple(pairs), shells=())


def variants(base: builtin.Scenario, timing: InferenceTiming) -> list[Variant]:
    """What could bring p95 under 120 s, with the preset's model unless said."""
    every = builtin.stations()
    chinese = [s.name for s in base.stations]
    return [
        Variant(
            "20 stations",
            f"the reference plane, all {len(every)} built-in sites worldwide",
            with_stations(base, None, "reference+stations"),
            timing,
        ),
        Variant(
            "+ Svalbard, Kiruna",
            "the reference plane, the six Chinese sites and two polar ones",
            with_stations(base, (*chinese, "Svalbard", "Kiruna"), "reference+polar"),
            timing,
        ),
        *(
            Variant(f"{p} planes", f"{p} planes of 12 ({12 * p} satellites), the six Chinese sites",
                    with_planes(base, p, f"reference x{p}"), timing)
            for p in (2, 3, 4, 6)
        ),
        Variant("2 planes + 20 stations", "2 planes of 12 (24 satellites), all 20 sites",
                with_stations(with_planes(base, 2, "x2"), None, "reference x2+stations"), timing),
        Variant("smaller model", "the reference system running Qwen3-0.6B",
                base, with_profile(timing, "qwen3-0.6b")),
        Variant("power on", "the reference with [power] on (its defaults: 1.2 m2 of array, "
                "600 Wh; reference-744 draws 300 W busy, 60 W idle)", base, timing,
                PowerSettings(True, with_accelerator(PowerParams(), timing))),
    ]  # fmt: skip


# -- running ---------------------------------------------------------------------------


def submit_times(count: int, hours: float, seed: int) -> list[float]:
    """``count`` instants uniformly at random over ``hours`` (seconds after the epoch)."""
    rng = random.Random(seed)
    return sorted(rng.uniform(0.0, hours * 3600.0) for _ in range(count))


def run_variant(
    variant: Variant,
    base: EmulationConfig,
    times: Sequence[float],
    *,
    max_new_tokens: int,
    seed: int,
) -> list[Timeline]:
    """Every query of ``times`` through ``variant``, for any computing satellite;
    the timelines in submit order (a query refused keeps its timeline, incomplete)."""
    config = replace(
        base,
        scenario=variant.scenario,
        service=replace(base.service, timing=variant.timing),
        computing=None,
        seed=seed,
    )
    return run_queries(config, times, max_new_tokens=max_new_tokens).timelines


# -- figures ---------------------------------------------------------------------------


def leg_groups_s(t: Timeline) -> dict[str, float]:
    """The study's legs (:data:`GROUPS`) of one answered query; they add up to its
    total. The answer's laser hops (those that start once the inference has ended,
    before its first downlink frame) move from the downlink wait to the relay."""
    out = dict.fromkeys(GROUPS, 0.0)
    legs = t.leg_durations_s()
    for name, seconds in legs.items():
        out[_GROUP_OF.get(name, "other")] += seconds
    if t.inference_end_t_s is not None and t.first_downlink_t_s is not None:
        hops_s = sum(
            h.duration_s or 0.0
            for h in t.hops
            if h.kind == "isl"
            and h.start_t_s is not None
            and t.inference_end_t_s <= h.start_t_s < t.first_downlink_t_s
        )
        moved = min(hops_s, legs.get("downlink_wait", 0.0))
        out["pass_wait"] -= moved
        out["relay"] += moved
    return out


def in_view(t: Timeline) -> bool:
    """A computing satellite could be reached at submit: straight up, or relayed."""
    return t.in_view_at_submit or t.relayed_at_submit


def block(timelines: Sequence[Timeline], reference_s: float = REFERENCE_S) -> dict:
    """Count, answered, the round trip's p50/p95/p99/max, the fraction under
    ``reference_s``, and each leg's mean and p95, of ``timelines``."""
    done = [t for t in timelines if t.total_s is not None]
    totals = [t.total_s for t in done if t.total_s is not None]
    legs = [leg_groups_s(t) for t in done]
    out: dict = {
        "queries": len(timelines),
        "answered": len(done),
        "fraction_under_reference": (
            sum(1 for x in totals if x < reference_s) / len(totals) if totals else None
        ),
        "total": {
            "p50_s": percentile(totals, 50) if totals else None,
            "p95_s": percentile(totals, 95) if totals else None,
            "p99_s": percentile(totals, 99) if totals else None,
            "max_s": max(totals) if totals else None,
            "mean_s": sum(totals) / len(totals) if totals else None,
        },
        "legs": {},
    }
    for g in GROUPS:
        values = [leg[g] for leg in legs]
        out["legs"][g] = {
            "mean_s": sum(values) / len(values) if values else None,
            "p95_s": percentile(values, 95) if values else None,
        }
    return out


def summary(variant: Variant, timelines: Sequence[Timeline], wall_s: float) -> dict:
    """One run's figures: all queries, those with a satellite in view at submit, the
    others; the profile's inference figures; the wall time it took here."""
    seen = [t for t in timelines if in_view(t)]
    unseen = [t for t in timelines if not in_view(t)]
    return {
        "variant": variant.name,
        "what": variant.what,
        "scenario": variant.scenario.name,
        "satellites": len(variant.scenario.satellites),
        "stations": [s.name for s in variant.scenario.stations],
        "inference_timing": variant.timing.label,
        "model": variant.timing.model.name,
        "in_view_fraction": len(seen) / len(timelines) if timelines else None,
        "all": block(timelines),
        "in_view": block(seen),
        "not_in_view": block(unseen),
        "wall_s": round(wall_s, 2),
    }


@dataclass(frozen=True)
class StudySettings:
    queries: int = 400  # per run
    hours: float = 24.0
    max_new_tokens: int = 256
    seed: int = 1
    sizes: tuple[str, ...] = QWEN3_SIZES
    with_variants: bool = True


QUICK = StudySettings(
    queries=8, hours=3.0, max_new_tokens=64, sizes=("qwen3-0.6b", "qwen3-8b", "qwen3-32b"),
    with_variants=True,
)  # fmt: skip


def run_study(
    settings: StudySettings,
    *,
    progress: TextIO = sys.stderr,
    scenario: str = PRESET,
) -> dict:
    """Every Qwen3 size on the preset, then the variants (with the preset's model);
    the figures of each run and the queries' timelines by run."""
    sf = scenario_files.load(scenario)
    base = sf.emulation
    timing = base.service.timing
    if timing is None:  # the inference legs must be an accelerator's, not this host's
        raise ConfigError(
            "roundtrip-study", "scenario", f"{scenario!r} names no [model] accelerator"
        )
    times = submit_times(settings.queries, settings.hours, settings.seed)
    runs: list[Variant] = [
        Variant(size, f"{sf.name}, {size}", sf.scenario, with_profile(timing, size))
        for size in settings.sizes
    ]
    if settings.with_variants:
        runs += variants(sf.scenario, timing)
    sizes_out: list[dict] = []
    variants_out: list[dict] = []
    timelines_out: dict[str, list[Timeline]] = {}
    wall0_s = time.perf_counter()
    for k, v in enumerate(runs):
        t0 = time.perf_counter()
        progress.write(
            f"[{k + 1}/{len(runs)}] {v.name}: {len(times)} queries over {settings.hours:g} h, "
            f"{len(v.scenario.satellites)} satellites, {len(v.scenario.stations)} stations ... "
        )
        progress.flush()
        timelines = run_variant(
            v, base, times, max_new_tokens=settings.max_new_tokens, seed=settings.seed
        )
        s = summary(v, timelines, time.perf_counter() - t0)
        a = s["all"]
        progress.write(
            f"p95 {a['total']['p95_s']:.0f} s, under {REFERENCE_S:g} s "
            f"{a['fraction_under_reference']:.0%} ({s['wall_s']:.1f} s wall, "
            f"{time.perf_counter() - wall0_s:.0f} s so far)\n"
        )
        progress.flush()
        (sizes_out if k < len(settings.sizes) else variants_out).append(s)
        timelines_out[v.name] = timelines
    return {
        "meta": {
            "scenario": sf.name,
            "scenario_description": sf.description,
            "accelerator": timing.accelerator.name,
            "precision": timing.precision,
            "queries_per_run": settings.queries,
            "hours": settings.hours,
            "max_new_tokens": settings.max_new_tokens,
            "prompt": PROMPT,
            "seed": settings.seed,
            "reference_s": REFERENCE_S,
            "backend": ScriptedBackend.model,
            "laser_ground_links": LASER_GROUND_LINKS,
            "wall_s": round(time.perf_counter() - wall0_s, 1),
        },
        "sizes": sizes_out,
        "variants": variants_out,
        "timelines": timelines_out,
    }


# -- the command -----------------------------------------------------------------------


def _cmd(args: argparse.Namespace) -> int:
    from linkstack.tools.roundtrip_study_report import markdown, write_study  # noqa: PLC0415

    settings = QUICK if args.quick else StudySettings()
    if args.queries is not None:
        if args.queries < 1:
            raise ConfigError("roundtrip-study", "--queries", f"must be >= 1, got {args.queries}")
        settings = replace(settings, queries=args.queries)
    if args.hours is not None:
        if not 0 < args.hours <= 24 * 7:
            raise ConfigError(
                "roundtrip-study", "--hours", f"must be in (0, 168], got {args.hours}"
            )
        settings = replace(settings, hours=args.hours)
    if args.max_new_tokens is not None:
        settings = replace(settings, max_new_tokens=args.max_new_tokens)
    if args.sizes:
        sizes = tuple(s.strip() for s in args.sizes.split(",") if s.strip())
        unknown = [s for s in sizes if s not in PROFILES]
        if unknown or not sizes:
            raise ConfigError(
                "roundtrip-study", "--sizes", f"unknown {unknown}; known: {', '.join(PROFILES)}"
            )
        settings = replace(settings, sizes=sizes)
    settings = replace(settings, seed=args.seed, with_variants=not args.no_variants)
    print(
        f"linkstack roundtrip-study: {settings.queries} queries over {settings.hours:g} h of "
        f"emulated time per run, {len(settings.sizes)} model profile(s)"
        + (", then the variants" if settings.with_variants else "")
        + f" on {args.scenario}; inference legs from the timing model",
        flush=True,
    )
    study = run_study(settings, scenario=args.scenario)
    paths = write_study(study, Path(args.out))
    print()
    print(markdown(study))
    for what, path in paths.items():
        print(f"  {what:<9}{path}")
    return 0


def add_roundtrip_study_parser(sub: Any) -> None:
    p = sub.add_parser(
        "roundtrip-study",
        help="the two minutes explained: the round trip of each Qwen3 size over a day, leg "
        "by leg, and what brings its p95 under 120 s",
        description="Queries for any computing satellite, submitted at uniformly random "
        "instants over a day of emulated time, through the in-process emulation of the "
        "reference scenario, once for each Qwen3 size on the reference accelerator (the "
        "inference legs are the timing model's, the text a scripted answer: the figures do "
        "not depend on this host), then the variants: 20 stations, 2 and 4 planes, both, a "
        "smaller model (laser ground links are not modelled). Writes study.json, study.md "
        "and two charts. A few minutes; --quick: seconds.",
    )
    p.add_argument("--quick", action="store_true", help="8 queries over 3 h, 3 sizes (a test)")
    p.add_argument("--queries", type=int, help="queries per run (default 400)")
    p.add_argument("--hours", type=float, help="emulated hours they are spread over (default 24)")
    p.add_argument(
        "--max-new-tokens", type=int, help="tokens in each answer (default 256; --quick 64)"
    )
    p.add_argument("--sizes", help="comma-separated model profiles (default: the Qwen3 family)")
    p.add_argument("--no-variants", action="store_true", help="the sizes only")
    p.add_argument(
        "--scenario", default=PRESET, help="a scenario naming an accelerator (default reference)"
    )
    p.add_argument("--seed", type=int, default=1, help="the submit instants (default 1)")
    p.add_argument("--out", default="out/roundtrip-study", help="where the files go")
    p.set_defaults(func=_cmd)
