"""``linkstack sweep`` files: a base scenario, the axes that vary its keys, the load.

A sweep file is TOML, read like a scenario file (:mod:`linkstack.tomlcheck`: every
refusal names its key, an unknown key is refused with the closest known one)::

    [sweep]
    base = "reference"            # a scenario file (relative to this file) or a shipped name
    seeds = [1, 2]                # or a count: seeds = 3 is 1, 2, 3
    metric = "rt_p95_s"           # the plots' y axis: a column of the results
    out = "out/sweep"             # relative to this file

    [load]
    queries = 40                  # per variant and seed
    arrival = "uniform"           # or "poisson" (exponential gaps, rate queries/span)
    hours = 24.0                  # the span they are submitted over
    max_new_tokens = 256
    prompts = "prompts.txt"       # optional: one prompt a line, asked in turn

    [metrics]
    percentiles = [50, 95, 99]
    legs = ["uplink", "relay", "inference", "pass_wait"]   # default: every leg

    [[axes]]
    key = "model.profile"         # any scenario key, by its dotted path
    values = ["qwen3-0.6b", "qwen3-8b"]

    [[axes]]
    key = "links.laser.rate_bps"
    range = { start = 1e9, stop = 1e11, num = 3 }          # num points, ends included
    # or: random = { low = 1e9, high = 1e11, count = 4, seed = 7 }  (integer = true: whole)

An axis key is a dotted path as scenario errors name it (``links.uplink.band``,
``constellation.planes[0].count``); a key whose base value is an array of tables
(``stations``) takes a list of names, each becoming ``{ name = ... }``. The variants
are the product of the axes; each variant's scenario is read and checked before
anything runs, so a bad value fails at once naming the variant and the key.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import itertools
import json
import random
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import linkstack
from linkstack.errors import ConfigError
from linkstack.runtime import scenario as scenario_files
from linkstack.tomlcheck import Table, TomlError, kind_of, parse
from linkstack.tools.query_run import PROMPT
from linkstack.tools.roundtrip_study import GROUPS

ARRIVALS = ("uniform", "poisson")
_STEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)(?:\[(\d+)\])?$")


class SweepError(TomlError):
    """A sweep file refused: ``where`` names the file, ``field`` the key."""


@dataclass(frozen=True)
class Axis:
    key: str  # a scenario key's dotted path
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Load:
    queries: int
    arrival: str
    hours: float
    max_new_tokens: int
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class VariantSpec:
    """One run to make: a variant's scenario (as TOML data) with one seed. Plain data,
    so that it travels to a Ray worker as it is."""

    index: int  # the variant's place in the product of the axes
    axes: tuple[tuple[str, Any], ...]  # (key, value), in the file's order
    seed: int
    scenario: dict[str, Any]
    base_dir: str
    load: Load
    percentiles: tuple[float, ...]
    legs: tuple[str, ...]

    @property
    def name(self) -> str:
        return ", ".join(f"{k}={short(v)}" for k, v in self.axes) or "base"

    @property
    def key(self) -> str:
        """What identifies its result: a hash of its scenario, load, seed, metrics and
        the linkstack version (a finished run with this key need not run again)."""
        doc = {
            "scenario": self.scenario,
            "load": self.load.__dict__,
            "seed": self.seed,
            "percentiles": self.percentiles,
            "legs": self.legs,
            "version": linkstack.__version__,
        }
        text = json.dumps(doc, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepFile:
    source: str
    base: str
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    load: Load
    percentiles: tuple[float, ...]
    legs: tuple[str, ...]
    metric: str
    out_dir: Path
    specs: tuple[VariantSpec, ...]  # every variant and seed, validated


def pct_label(p: float) -> str:
    return f"p{p:g}"


def metric_columns(percentiles: tuple[float, ...], legs: tuple[str, ...]) -> list[str]:
    """The figures of a result row, by column name (the round trip's percentiles
    ``rt_p95_s``, each leg's ``uplink_p95_s``, the counts, the energy, the wall time)."""
    cols = [f"rt_{pct_label(p)}_s" for p in percentiles]
    cols += [f"{leg}_{pct_label(p)}_s" for leg in legs for p in percentiles]
    return [
        *cols, "under_120s", "queries", "answered", "refused", "retransmitted_frames",
        "energy_wh", "wall_s",
    ]  # fmt: skip


def short(value: Any) -> str:
    """A value as a variant's name shows it (a long list by its length)."""
    if isinstance(value, list):
        return f"[{len(value)}]" if len(value) > 3 else "+".join(short(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def set_key(data: dict[str, Any], key: str, value: Any, error: Any) -> None:
    """Set the dotted ``key`` (``a.b[2].c``) of the TOML document ``data`` to ``value``;
    missing tables are made. A list of names for an array of tables becomes tables."""
    steps = key.split(".")
    node: Any = data
    for n, step in enumerate(steps):
        m = _STEP.match(step)
        if m is None:
            raise error(key, f"is not a dotted key path (step {step!r})")
        name, index = m.group(1), m.group(2)
        last = n == len(steps) - 1
        if not isinstance(node, dict):
            raise error(key, f"{'.'.join(steps[:n])} is not a table")
        if index is not None:
            items = node.get(name)
            if not isinstance(items, list) or int(index) >= len(items):
                raise error(key, f"the base has no {name}[{index}]")
            if last:
                items[int(index)] = value
                return
            node = items[int(index)]
        elif last:
            old = node.get(name)
            if (
                isinstance(old, list)
                and old
                and isinstance(old[0], dict)
                and isinstance(value, list)
                and all(isinstance(v, str) for v in value)
            ):
                value = [{"name": v} for v in value]
            node[name] = value
        else:
            node = node.setdefault(name, {})


def _axis(t: Table) -> Axis:
    key = t.text("key", "", empty=False)
    given = [k for k in ("values", "range", "random") if t.has(k)]
    if len(given) != 1:
        raise t.error("", f"needs exactly one of values, range, random; got {given or 'none'}")
    if t.has("values"):
        values = t.raw("values")
        if not isinstance(values, list) or not values:
            raise t.error("values", f"must be a non-empty array, got {kind_of(values)}")
        return Axis(key, tuple(values))
    if t.has("range"):
        r = t.table("range")
        start, stop = r.number("start", 0.0), r.number("stop", 0.0)
        integer = r.boolean("integer", False)
        if r.has("num") == r.has("step"):
            raise r.error("", "needs exactly one of num, step")
        if r.has("num"):
            num = r.integer("num", 2, 1, 10_000)
            pts = [start + (stop - start) * k / max(num - 1, 1) for k in range(num)]
        else:
            step = r.number("step", 1.0, 0.0, lo_open=True)
            pts = [start + step * k for k in range(int((stop - start) / step + 1e-9) + 1)]
        r.done()
        if not pts:
            raise r.error("stop", "the range is empty")
        return Axis(key, tuple(round(p) if integer else p for p in pts))
    r = t.table("random")
    low, high = r.number("low", 0.0), r.number("high", 1.0)
    if high < low:
        raise r.error("high", f"must be >= low ({low:g}), got {high:g}")
    count = r.integer("count", 1, 1, 10_000)
    rng = random.Random(r.integer("seed", 0))
    integer = r.boolean("integer", False)
    r.done()
    pts = [
        rng.randint(round(low), round(high)) if integer else rng.uniform(low, high)
        for _ in range(count)
    ]
    return Axis(key, tuple(pts))


def _base_data(base: str, here: Path, error: Any) -> tuple[dict[str, Any], Path]:
    """The base scenario's TOML document and the folder its relative paths are from."""
    path = here / base
    if path.exists():
        try:
            return tomllib.loads(path.read_text("utf-8")), path.parent
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise error("sweep.base", f"cannot be read: {exc}") from None
    if base in scenario_files.SHIPPED:
        return tomllib.loads(scenario_files.shipped_text(base)), here
    raise error(
        "sweep.base",
        f"no file {path} and no shipped scenario {base!r} "
        f"(shipped: {', '.join(scenario_files.SHIPPED)})",
    )


def loads(text: str, *, source: str = "<string>", here: Path | None = None) -> SweepFile:
    """Read and check a sweep given as TOML text; relative paths are from ``here``."""
    here = here or Path.cwd()
    error = functools.partial(SweepError, source)
    top = Table(parse(text, error), error)
    sw = top.table("sweep")
    base = sw.text("base", "reference", empty=False)
    raw_seeds = sw.raw("seeds", 1)
    if isinstance(raw_seeds, int) and not isinstance(raw_seeds, bool) and 1 <= raw_seeds <= 1000:
        seeds = tuple(range(1, raw_seeds + 1))
    elif (
        isinstance(raw_seeds, list)
        and raw_seeds
        and all(isinstance(s, int) and not isinstance(s, bool) for s in raw_seeds)
        and len(set(raw_seeds)) == len(raw_seeds)
    ):
        seeds = tuple(raw_seeds)
    else:
        raise sw.error(
            "seeds", f"must be a count in 1..1000 or distinct integers, got {raw_seeds!r}"
        )
    metric = sw.text("metric", "rt_p95_s", empty=False)
    out_dir = here / sw.text("out", "out/sweep", empty=False)
    sw.done()

    ld = top.table("load")
    prompts_file = ld.text("prompts", "")
    prompts: tuple[str, ...] = ()
    if prompts_file:
        try:
            lines = (here / prompts_file).read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ld.error("prompts", f"cannot be read: {exc}") from None
        prompts = tuple(line for line in lines if line.strip())
        if not prompts:
            raise ld.error("prompts", f"{prompts_file} holds no prompt")
    load = Load(
        queries=ld.integer("queries", 40, 1, 1_000_000),
        arrival=ld.choice("arrival", "uniform", ARRIVALS, "arrival process"),
        hours=ld.number("hours", 24.0, 0.0, 24.0 * 30, lo_open=True),
        max_new_tokens=ld.integer("max_new_tokens", 256, 1, 32768),
        prompts=prompts or (PROMPT,),
    )
    ld.done()

    mt = top.table("metrics")
    pcts = mt.raw("percentiles", [50, 95, 99])
    if (
        not isinstance(pcts, list)
        or not pcts
        or not all(isinstance(p, int | float) and not isinstance(p, bool) for p in pcts)
        or not all(0 <= p <= 100 for p in pcts)
    ):
        raise mt.error("percentiles", f"must be numbers in 0..100, got {pcts!r}")
    legs = mt.strings("legs", GROUPS)
    for leg in legs:
        if leg not in GROUPS:
            raise mt.unknown(leg, GROUPS, "leg")
    mt.done()

    known = metric_columns(tuple(float(p) for p in pcts), legs)
    if metric not in known:
        close = difflib.get_close_matches(metric, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise sw.error("metric", f"unknown column {metric!r}{hint}; known: {', '.join(known)}")
    axes = tuple(_axis(t) for t in top.tables("axes"))
    keys = [a.key for a in axes]
    for k in keys:
        if keys.count(k) > 1:
            raise top.error("axes", f"the key {k!r} is swept twice")
    top.done()

    base_data, base_dir = _base_data(base, here, error)
    specs: list[VariantSpec] = []
    for index, values in enumerate(itertools.product(*(a.values for a in axes))):
        data = copy.deepcopy(base_data)
        pairs = tuple(zip(keys, values, strict=True))
        name = ", ".join(f"{k}={short(v)}" for k, v in pairs) or "base"
        for k, v in pairs:
            set_key(data, k, v, lambda key, rule, n=name: error(key, f"variant {n}: {rule}"))
        try:
            sf = scenario_files.from_data(
                data, source=f"{source} variant {name}", base_dir=base_dir
            )
        except ConfigError as exc:
            raise SweepError(f"{source} variant {name}", exc.field, exc.rule) from None
        if sf.emulation.service.timing is None:
            raise SweepError(
                f"{source} variant {name}",
                "model.accelerator",
                "a sweep's inference legs are an accelerator's timing model: name one",
            )
        specs += [
            VariantSpec(
                index,
                pairs,
                seed,
                data,
                str(base_dir),
                load,
                tuple(float(p) for p in pcts),
                tuple(legs),
            )
            for seed in seeds
        ]
    return SweepFile(
        source, base, axes, seeds, load, tuple(float(p) for p in pcts), tuple(legs),
        metric, out_dir, tuple(specs),
    )  # fmt: skip


def load(path: str | Path) -> SweepFile:
    """Read and check the sweep file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(str(path), "(file)", f"cannot be read: {exc}") from None
    return loads(text, source=str(path), here=path.parent)
