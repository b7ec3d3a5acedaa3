"""``make mutate``: mutation testing of the codecs, the state machines and the channels.

    python -m linkstack.tools.mutate [MODULE ...] [--sample N --seed S] [--lines L] [--jobs J]

Each module's mutants (:mod:`linkstack.tools.mutate.mutants`) run against its own tests
and every test file that imports it (:func:`linkstack.tools.mutate.runner.tests_for`),
or rather against those of its tests that execute the mutant's lines: the selection
runs once under coverage.py to find which (``--all-tests`` runs them all). A mutant no
test executes survives without a run ("not covered").
Prints each module's score, killed / (mutants - reviewed equivalents), and the
surviving mutants that are not in the reviewed list (``equivalents.toml`` beside this
file: each entry names a mutant by its key and says why it cannot change behaviour),
so that a rerun shows only new survivors. Exits 1 when a module scores under its
target (95 % for the codecs and state machines, 90 % for channels/).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from linkstack.tools.mutate.mutants import Mutant, mutants
from linkstack.tools.mutate.runner import Outcome, Workspace, tests_for

ROOT = Path(__file__).resolve().parents[3]
EQUIVALENTS = Path(__file__).with_name("equivalents.toml")

# The codec and state-machine modules, then the channel models.
MODULES = (
    "linkstack/ccsds/tc.py",
    "linkstack/ccsds/tm.py",
    "linkstack/ccsds/aos.py",
    "linkstack/ccsds/uslp.py",
    "linkstack/ccsds/packet_zone.py",
    "linkstack/ccsds/spp.py",
    "linkstack/ccsds/coding/chains.py",
    "linkstack/ccsds/coding/cltu.py",
    "linkstack/ccsds/coding/randomizer.py",
    "linkstack/ccsds/coding/rs.py",
    "linkstack/ccsds/coding/sync.py",
    "linkstack/ccsds/cop1/farm.py",
    "linkstack/ccsds/cop1/fop.py",
    "linkstack/ccsds/cop1/clcw.py",
    "channels/rf.py",
    "channels/link.py",
    "channels/models.py",
)


def target_percent(module: str) -> float:
    return 90.0 if module.startswith("channels/") else 95.0


def load_equivalents(path: Path = EQUIVALENTS) -> dict[str, dict[str, str]]:
    """module -> {mutant key: reason}, from the reviewed list."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out: dict[str, dict[str, str]] = {}
    for entry in data.get("equivalent", []):
        module, key, reason = entry["module"], entry["key"], entry.get("reason", "").strip()
        if not reason:
            raise SystemExit(f"{path}: the equivalent {key!r} of {module} gives no reason")
        out.setdefault(module, {})[key] = reason
    return out


def parse_lines(text: str) -> set[int]:
    """'80,160-170' -> {80, 160, ..., 170}; ValueError on anything else."""
    out: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        lo, hi = int(first), int(last or first)
        if lo < 1 or hi < lo:
            raise ValueError(part)
        out.update(range(lo, hi + 1))
    return out


def describe(m: Mutant, uncovered: bool = False) -> str:
    """The survivor's place, and the key an equivalents.toml entry names it by."""
    where = m.scope or "<module>"
    note = " (not covered: no test executes it)" if uncovered else ""
    return (
        f"  {m.module}:{m.line} [{where}] {m.operator} {m.description}: {m.line_text}{note}\n"
        f"      key = {m.key!r}"
    )


def score_module(
    module: str,
    workspaces: list[Workspace],
    reviewed: dict[str, str],
    sample: int | None,
    seed: int,
    guided: bool = True,
    lines_only: set[int] | None = None,
) -> tuple[float | None, list[Outcome]]:
    source = (ROOT / module).read_text(encoding="utf-8")
    every = mutants(module, source)
    chosen = every
    if sample is not None and sample < len(every):
        chosen = sorted(random.Random(seed).sample(every, sample), key=lambda m: m.index)
    if lines_only is not None:  # after the sample, so that a sample's survivors can be rerun
        chosen = [m for m in chosen if m.line in lines_only]
        if not chosen:
            print(f"{module}: no mutants on the lines asked for; not scored")
            return None, []
    tests = tests_for(ROOT, module)
    if not tests:
        print(f"{module}: no tests import it; not scored")
        return None, []
    todo = [m for m in chosen if m.key not in reviewed]
    equivalent = len(chosen) - len(todo)
    # The unmutated run: measured under coverage.py when guided (which tests execute
    # each line; slower than a plain run, so the timeout below is looser), plain else.
    lines, baseline_s = None, 0.0
    if guided and todo:
        lines, baseline_s, failed = workspaces[0].measure(module, tests, timeout_s=1800)
        if lines is None:
            print(f"{module}: a test failed under coverage; every mutant runs them all")
            for line in failed:
                print(f"  {line}")
    if lines is None:
        rc, baseline_s, failed = workspaces[0].checked(tests, timeout_s=1800)
        if rc != 0:
            print(f"{module}: its tests fail without any mutant (pytest exit {rc}); not scored")
            for line in failed:
                print(f"  {line}")
            return None, []
    timeout_s = max(30.0, 3.0 * baseline_s)
    how = "under coverage" if lines is not None else "unmutated"
    print(
        f"{module}: {len(chosen)} of {len(every)} mutants, {len(tests)} test files "
        f"({baseline_s:.0f} s {how}), timeout {timeout_s:.0f} s",
        flush=True,
    )

    lock = threading.Lock()
    ran = survived = 0
    last_report = time.monotonic()

    def run(i: int, m: Mutant) -> Outcome:
        nonlocal ran, survived, last_report
        outcome = workspaces[i % len(workspaces)].run(m, source, tests, timeout_s, lines)
        with lock:  # progress on long runs, at most once a minute, to stderr
            ran += 1
            survived += not outcome.killed
            if time.monotonic() - last_report >= 60 and ran < len(todo):
                last_report = time.monotonic()
                print(
                    f"  {module}: {ran} of {len(todo)} run, {survived} survived so far",
                    file=sys.stderr,
                    flush=True,
                )
        return outcome

    with ThreadPoolExecutor(max_workers=len(workspaces)) as pool:
        # one mutant per workspace at a time: split the list among them
        chunks = [todo[i :: len(workspaces)] for i in range(len(workspaces))]
        futures = [
            pool.submit(lambda i, ms: [run(i, m) for m in ms], i, ms) for i, ms in enumerate(chunks)
        ]
        outcomes = sorted((o for f in futures for o in f.result()), key=lambda o: o.mutant.index)
    killed = sum(o.killed for o in outcomes)
    survivors = [o for o in outcomes if not o.killed]
    scored = len(chosen) - equivalent
    score = 100.0 * killed / scored if scored else 100.0
    stale = set(reviewed) - {m.key for m in every}
    print(
        f"{module}: score {score:.1f} % (killed {killed} of {scored}; "
        f"{equivalent} reviewed equivalents left out; {len(survivors)} survived)"
    )
    for o in survivors:
        print(describe(o.mutant, o.how == "not covered"))
    for key in sorted(stale):
        print(f"  (equivalents.toml names a mutant that no longer exists: {key})")
    return score, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m linkstack.tools.mutate",
        description="Mutation testing: inject small bugs one at a time into each module "
        "and check that its tests notice.",
    )
    parser.add_argument(
        "modules", nargs="*", help="module paths (default: the codecs, COP-1 and channels/)"
    )
    parser.add_argument("--sample", type=int, help="score a random sample of N mutants a module")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="mutants run at once, one tree copy each (default 1)"
    )
    parser.add_argument(
        "--all-tests",
        action="store_true",
        help="run every mutant against the module's whole selection, not only the tests "
        "that execute its lines (slower; no coverage measurement)",
    )
    parser.add_argument(
        "--lines",
        help="only the mutants on these lines of each module, e.g. 80,160-170 (after "
        "--sample: reruns a sample's survivors)",
    )
    parser.add_argument("--list", action="store_true", help="print the mutants and their keys")
    args = parser.parse_args(argv)
    try:
        lines_only = parse_lines(args.lines) if args.lines else None
    except ValueError:
        parser.error(f"--lines takes line numbers and ranges like 80,160-170, not {args.lines!r}")
    modules = args.modules or list(MODULES)
    for module in modules:
        if not (ROOT / module).is_file():
            parser.error(f"no module {module} (give paths like linkstack/ccsds/tc.py)")
    if args.sample is not None and args.sample < 1:
        parser.error("--sample must be >= 1")
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    if args.list:
        for module in modules:
            for m in mutants(module, (ROOT / module).read_text(encoding="utf-8")):
                if lines_only is not None and m.line not in lines_only:
                    continue
                print(f"{module}:{m.line}\t{m.key}")
        return 0
    equivalents = load_equivalents()
    started = time.monotonic()
    workspaces = [Workspace(ROOT) for _ in range(args.jobs)]
    scores: dict[str, float | None] = {}
    try:
        for module in modules:
            scores[module], _ = score_module(
                module,
                workspaces,
                equivalents.get(module, {}),
                args.sample,
                args.seed,
                guided=not args.all_tests,
                lines_only=lines_only,
            )
    finally:
        for w in workspaces:
            w.close()
    sampled = f", sample {args.sample} a module, seed {args.seed}" if args.sample else ""
    sampled += f", lines {args.lines}" if args.lines else ""
    print(
        f"\nmutation scores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC{sampled}, "
        f"{time.monotonic() - started:.0f} s:"
    )
    below = []
    for module, score in scores.items():
        goal = target_percent(module)
        mark = "not scored" if score is None else f"{score:5.1f} %"
        print(f"  {module:40s} {mark}  (target {goal:.0f} %)")
        if score is not None and score < goal:
            below.append(module)
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
