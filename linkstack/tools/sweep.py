"""``linkstack sweep SWEEP.toml``: many variants of a scenario, on Ray or in process.

The file (:mod:`linkstack.tools.sweep_file`) names a base scenario, the axes that vary
its keys, the query load and the seeds; every variant is checked before anything runs.
Each variant and seed is one emulated-time run (:mod:`linkstack.tools.sweep_run`),
run as a Ray task on this machine's cores, on a cluster (``--address``), or in this
process (``--serial``) (:mod:`linkstack.tools.sweep_exec`); the results go to Parquet,
CSV and PNG charts (:mod:`linkstack.tools.sweep_report`). A rerun does only the
variants not finished yet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _cmd(args: argparse.Namespace) -> int:
    from linkstack.tools import sweep_exec, sweep_file, sweep_report  # noqa: PLC0415

    sweep = sweep_file.load(args.file)
    if args.num_cpus is not None and args.num_cpus < 1:
        print("linkstack sweep: --num-cpus must be at least 1", file=sys.stderr)
        return 2
    out_dir = Path(args.out) if args.out else sweep.out_dir
    where = (
        "in this process" if args.serial
        else f"on the Ray cluster at {args.address}" if args.address
        else "on a local Ray"
    )  # fmt: skip
    variants = len(sweep.specs) // max(len(sweep.seeds), 1)
    print(
        f"linkstack sweep {args.file}: {variants} variant(s) x {len(sweep.seeds)} seed(s) of "
        f"{sweep.base}, {sweep.load.queries} queries over {sweep.load.hours:g} h each, {where}",
        flush=True,
    )
    store = sweep_exec.Store(out_dir / "done")
    outcome = sweep_exec.run_sweep(
        sweep.specs, store, serial=args.serial, address=args.address, num_cpus=args.num_cpus
    )
    if outcome.resumed:
        print(f"{outcome.resumed} run(s) already finished, kept from {store.folder}")
    paths = sweep_report.write(sweep, outcome.rows, out_dir)
    print()
    print(sweep_report.summary_text(sweep, outcome.rows))
    for spec, error in outcome.failures:
        print(f"FAILED {spec.name} seed {spec.seed}: {error}", file=sys.stderr)
    print()
    width = max(len(w) for w in paths) + 2
    for what, path in paths.items():
        print(f"  {what:<{width}}{path}")
    print(f"  {len(outcome.rows)} row(s), {len(outcome.failures)} failed, {outcome.wall_s:.1f} s")
    return 1 if outcome.failures else 0


def add_sweep_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="run many variants of a scenario (axes over its keys, seeds) on Ray, resumably",
        description="Read SWEEP.toml (a base scenario, axes over its keys, the query load, "
        "seeds, metrics; see linkstack/tools/sweep_file.py and the README), check every "
        "variant, run each variant and seed as one emulated-time run on a local Ray (this "
        "machine's cores), a Ray cluster (--address) or in this process (--serial), and "
        "write results.parquet, results.csv, roundtrips.parquet and PNG charts. Finished "
        "runs are kept under OUT/done: a rerun does only the rest. Exit 1 if a run failed.",
    )
    p.add_argument("file", help="the sweep file (TOML)")
    p.add_argument("--address", help="a running Ray cluster (ray start --head prints it)")
    p.add_argument("--serial", action="store_true", help="in this process, one run at a time")
    p.add_argument("--num-cpus", type=int, help="a local Ray's cores (default: all)")
    p.add_argument("--out", help="where the results go (default: the file's sweep.out)")
    p.set_defaults(func=_cmd)
