"""What ``linkstack roundtrip-study`` writes: ``study.json`` (every run's figures and
every query's timeline), ``study.md`` (the tables) and the charts
(``roundtrip_by_size.png``: the distribution of the round trip of each Qwen3 size, and
each leg's mean, with and without a satellite in view at submit;
``variants.png``: the round trip's p95 of each variant against 120 s)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from linkstack.runtime.report import REFERENCE_S, timeline_json
from linkstack.tools.roundtrip_study import GROUPS, leg_groups_s

LEG_LABELS = {
    "uplink": "uplink",
    "relay": "laser relay",
    "onboard_queue": "onboard queue",
    "power_wait": "wait for power",
    "inference": "inference",
    "downlink": "downlink",
    "pass_wait": "wait for a pass",
    "other": "other",
}


def _s(value: float | None) -> str:
    """Seconds for a table: '-' for none, 3 significant figures under 10 s."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value < 10:
        return f"{value:.3g}"
    return f"{value:,.0f}"


def _frac(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def to_json(study: dict) -> str:
    doc = {k: v for k, v in study.items() if k != "timelines"}
    doc["timelines"] = {
        name: [{**timeline_json(t), "study_legs_s": leg_groups_s(t)} for t in ts if t.complete]
        for name, ts in study["timelines"].items()
    }
    return json.dumps(doc, indent=1, default=lambda o: None)


def markdown(study: dict) -> str:
    """The results tables: each size (all queries, in view at submit, not), the legs'
    means, and each variant against the target."""
    meta = study["meta"]
    ref = meta["reference_s"]
    lines = [
        f"# Round trip on `{meta['scenario']}`, {meta['queries_per_run']} queries per run "
        f"over {meta['hours']:g} h",
        "",
        f"{meta['scenario_description']}. Queries for any computing satellite, submitted at "
        f"uniformly random instants; {meta['max_new_tokens']} tokens out; inference legs "
        "from the timing model (the emulated figures do not depend on the host).",
        "",
        f"## Each model on {meta['accelerator']} ({meta['precision']})",
        "",
        f"| model | in view at submit | under {ref:g} s | p50 | p95 | p99 | in view: p95, under "
        f"{ref:g} s | not in view: p50, p95, under {ref:g} s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in study["sizes"]:
        a, v, n = s["all"], s["in_view"], s["not_in_view"]
        lines.append(
            f"| {s['model']} | {_frac(s['in_view_fraction'])} | "
            f"{_frac(a['fraction_under_reference'])} | {_s(a['total']['p50_s'])} s | "
            f"{_s(a['total']['p95_s'])} s | {_s(a['total']['p99_s'])} s | "
            f"{_s(v['total']['p95_s'])} s, {_frac(v['fraction_under_reference'])} | "
            f"{_s(n['total']['p50_s'])} s, {_s(n['total']['p95_s'])} s, "
            f"{_frac(n['fraction_under_reference'])} |"
        )
    legs = [g for g in GROUPS if g not in ("other", "power_wait") or _any(study, g)]
    lines += [
        "",
        "Mean of each leg, seconds (in view at submit / not in view):",
        "",
        "| model | " + " | ".join(LEG_LABELS[g] for g in legs) + " |",
        "|---|" + "---|" * len(legs),
    ]
    for s in study["sizes"]:
        cells = [
            f"{_s(s['in_view']['legs'][g]['mean_s'])} / {_s(s['not_in_view']['legs'][g]['mean_s'])}"
            for g in legs
        ]
        lines.append(f"| {s['model']} | " + " | ".join(cells) + " |")
    if not study["variants"]:
        lines += ["", f"Wall time of the whole study on this host: {meta['wall_s']:g} s.", ""]
        return "\n".join(lines)
    lines += [
        "",
        f"## What brings p95 under {ref:g} s for a query submitted at any time",
        "",
        f"| variant | satellites | stations | model | in view at submit | p95 | under {ref:g} s "
        "| reaches it |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [s for s in study["sizes"] if s["model"] == _preset_model(study)] + study["variants"]
    for s in rows:
        a = s["all"]
        p95 = a["total"]["p95_s"]
        name = "reference" if s in study["sizes"] else s["variant"]
        lines.append(
            f"| {name} | {s['satellites']} | {len(s['stations'])} | {s['model']} | "
            f"{_frac(s['in_view_fraction'])} | {_s(p95)} s | "
            f"{_frac(a['fraction_under_reference'])} | "
            f"{'yes' if p95 is not None and p95 < ref else 'no'} |"
        )
    lines += [
        f"| laser ground links | - | - | - | - | - | - | {meta['laser_ground_links']} |",
        "",
        f"Wall time of the whole study on this host: {meta['wall_s']:g} s.",
        "",
    ]
    return "\n".join(lines)


def _any(study: dict, leg: str) -> bool:
    """Whether any size's queries spent time in ``leg`` (a column for it then)."""
    return any((s["all"]["legs"][leg]["mean_s"] or 0.0) > 0 for s in study["sizes"])


def _preset_model(study: dict) -> str | None:
    """The model of the variants (they keep the preset's, but for 'smaller model')."""
    models = [v["model"] for v in study["variants"] if v["variant"] != "smaller model"]
    return models[0] if models else None


def write_charts(study: dict, out_dir: Path) -> dict[str, Path]:
    # imported here: matplotlib costs half a second, and only the charts need it
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # no screen: render to a file
    import matplotlib.pyplot as plt  # noqa: PLC0415

    ref = study["meta"]["reference_s"]
    paths = {"by_size": out_dir / "roundtrip_by_size.png", "variants": out_dir / "variants.png"}
    sizes = study["sizes"]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(19, 5.5))
    for s in sizes:
        totals = sorted(
            t.total_s for t in study["timelines"][s["variant"]] if t.total_s is not None
        )
        if totals:
            ax1.step(totals, [(i + 1) / len(totals) for i in range(len(totals))], where="post",
                     label=s["model"])  # fmt: skip
    ax1.axvline(ref, color="black", linestyle="--", linewidth=1, label=f"{ref:g} s")
    ax1.set_xscale("symlog", linthresh=1.0)
    ax1.set_xlim(left=0)
    ax1.set_xlabel("round trip, s (linear below 1 s, log above)")
    ax1.set_ylabel("fraction of queries")
    ax1.set_title("round trip over the day, each Qwen3 size")
    ax1.legend(fontsize=8)
    for ax, key, title in (
        (ax2, "in_view", "satellite in view at submit"),
        (ax3, "not_in_view", "none in view at submit"),
    ):
        bottom = [0.0] * len(sizes)
        for g in GROUPS:
            means = [s[key]["legs"][g]["mean_s"] or 0.0 for s in sizes]
            if not any(means):
                continue
            ax.bar([s["model"] for s in sizes], means, bottom=bottom, label=LEG_LABELS[g])
            bottom = [b + m for b, m in zip(bottom, means, strict=True)]
        ax.axhline(ref, color="black", linestyle="--", linewidth=1)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylabel("mean of each leg, s (stacked)")
        ax.set_title(f"legs, {title}")
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(paths["by_size"], dpi=100)
    plt.close(fig)

    rows = [s for s in sizes if s["model"] == _preset_model(study)] + study["variants"]
    if not study["variants"]:
        del paths["variants"]
        return paths
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 2))
    names = ["reference" if s in sizes else s["variant"] for s in rows]
    p95 = [s["all"]["total"]["p95_s"] or 0.0 for s in rows]
    ax.barh(names, p95, color=["tab:green" if x < ref else "tab:red" for x in p95])
    ax.axvline(ref, color="black", linestyle="--", linewidth=1, label=f"{ref:g} s")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.invert_yaxis()
    ax.set_xlabel("p95 of the round trip over the day, s")
    ax.set_title("what brings p95 under two minutes (laser ground links: not evaluated)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths["variants"], dpi=100)
    plt.close(fig)
    return paths


def write_study(study: dict, out_dir: Path) -> dict[str, Path]:
    """study.json, study.md and the charts in ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "study.json", "markdown": out_dir / "study.md"}
    paths["json"].write_text(to_json(study))
    paths["markdown"].write_text(markdown(study))
    paths.update(write_charts(study, out_dir))
    return paths


__all__ = ["REFERENCE_S", "markdown", "to_json", "write_charts", "write_study"]
