"""Run each mutant of a module against its tests, in a copy of the tree.

The checkout is never touched: it is copied once per worker (without .git and .venv)
into a temporary folder, a mutant is written into the copy, and pytest runs there in a
fresh process (``PYTHONPATH`` puts the copy ahead of the editable install, so that
processes the tests start import the mutant too). No bytecode is written, so that a
restored module is never read from a stale cache. A mutant is killed when pytest fails
(``-x``: at the first failing test) or runs past the timeout.

Coverage-guided selection (:meth:`Workspace.measure`): the selection runs once under
coverage.py, each test's call phase under its node id (:mod:`.plugin`), in pytest's
process and in the Python processes the tests start; a mutant then runs only the tests
that execute its lines, or those first when its lines run outside a test too
(:meth:`LineMap.tests_for`), those of the first test file alone before the others
(:func:`stages`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import coverage

from linkstack.tools.mutate.mutants import Mutant, mutated_source
from linkstack.tools.mutate.plugin import CONTEXT_ENV, DURATIONS_ENV, FIRST_ENV, ONLY_ENV

# left out of the copy: what the tests neither read nor need (at the top, and anywhere)
NOT_COPIED_TOP = {".git", ".venv", "runs", "out", "build", "dist"}
NOT_COPIED = {"__pycache__", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
PLUGIN = "linkstack.tools.mutate.plugin"
# Read by every Python process of the measured run (the copy is on PYTHONPATH): one a
# test starts measures itself (coverage's own .pth starts it, or this does) in the
# context of that test.
_SITECUSTOMIZE = f"""import os
if os.environ.get("COVERAGE_PROCESS_START") and os.environ.get("{CONTEXT_ENV}"):
    import coverage
    _cov = coverage.process_startup() or coverage.Coverage.current()
    if _cov is not None:
        _cov.switch_context(os.environ["{CONTEXT_ENV}"])
"""
# Tests left out of every selection: the daemon tests start real brokers and processes
# and take minutes; what they exercise of these modules the in-process tests reach too.
EXCLUDED_TESTS = ("tests/daemon/",)


def module_name(path: str) -> str:
    """linkstack/ccsds/tc.py -> linkstack.ccsds.tc"""
    return path.removesuffix(".py").replace("/", ".")


def tests_for(root: Path, module: str) -> list[str]:
    """The module's own test files (the mirrored path), then every other test file that
    imports it, as paths relative to ``root``."""
    name = module_name(module)
    package, _, leaf = name.rpartition(".")
    pattern = re.compile(
        rf"^\s*(from\s+{re.escape(name)}\s+import|import\s+{re.escape(name)}\b"
        rf"|from\s+{re.escape(package)}\s+import\s+[^\n]*\b{re.escape(leaf)}\b)",
        re.MULTILINE,
    )
    own_dir = Path("tests", *Path(module).parts[1:-1])
    if Path(module).parts[0] != "linkstack":
        own_dir = Path("tests", *Path(module).parts[:-1])
    stem = Path(module).stem
    own, others = [], []
    for path in sorted((root / "tests").rglob("test_*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(EXCLUDED_TESTS):
            continue
        is_own = path.parent == root / own_dir and (
            path.stem == f"test_{stem}" or path.stem.startswith(f"test_{stem}_")
        )
        if is_own:
            own.append(rel)
        elif pattern.search(path.read_text(encoding="utf-8")):
            others.append(rel)
    return own + others


@dataclass(frozen=True, slots=True)
class Outcome:
    mutant: Mutant
    killed: bool
    how: str  # "failed", "timeout", "survived", "not covered" (no test executes it)
    seconds: float


@dataclass(frozen=True, slots=True)
class LineMap:
    """Which tests execute each line of the module: node ids, or "" for what runs while
    no test does (imports, collection, fixtures), which any test may depend on."""

    contexts: dict[int, frozenset[str]]
    durations_s: dict[str, float]  # each test's time in the measured run

    def timeout_s(self, tests: list[str], whole_s: float) -> float:
        """Time allowed to ``tests``: thrice their measured time and a minute for
        pytest to start, never more than the whole selection's ``whole_s``."""
        expected_s = sum(self.durations_s.get(t, 0.0) for t in tests)
        return min(whole_s, 60.0 + 3.0 * expected_s)

    def tests_for(self, mutant: Mutant) -> tuple[list[str], bool]:
        """The node ids of the tests that execute ``mutant``'s lines, and whether the
        whole selection must run too (those first): when its lines also run outside a
        test, or in code compiled by numba, which coverage.py cannot see. No ids and
        not the whole: no test executes it."""
        if not mutant.traced:
            return [], True
        first, last = mutant.lines
        found: set[str] = set()
        for line in range(first, last + 1):
            found |= self.contexts.get(line, frozenset())
        return sorted(found - {""}), "" in found


class Measured(NamedTuple):
    """The unmutated run under coverage.py (:meth:`Workspace.measure`)."""

    lines: LineMap | None  # None when a test failed
    seconds: float
    failed: list[str]  # pytest's FAILED and ERROR lines, when one did


# pytest's exit status when no test was collected: the run proved nothing
NO_TESTS_RAN = 5


def stages(
    tests: list[str], ids: list[str], whole: bool
) -> list[tuple[list[str], list[str], bool]]:
    """The pytest runs for a mutant as (files, ids, whole), in order, stopping at the
    first that fails: first the first file of ``tests`` that holds any of ``ids``
    alone (a killed mutant is mostly killed there, and the other files are then never
    collected: seconds each for the capture tests), then the others' ``ids``, or
    (``whole``) the whole selection with ``ids`` first. With no ``ids``: the whole."""
    files = [f for f in tests if any(i.startswith(f"{f}::") for i in ids)]
    if not files:
        return [(tests, [], True)]
    first = files[0]
    mine = [i for i in ids if i.startswith(f"{first}::")]
    plan = [([first], mine, False)]
    if whole:
        plan.append((tests, ids, True))
    elif len(files) > 1:
        plan.append((files[1:], [i for i in ids if i not in mine], False))
    return plan


class Workspace:
    """One copy of the tree that mutants are written into, one at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = Path(tempfile.mkdtemp(prefix="linkstack-mutate-"))
        top = str(root)

        def ignore(folder: str, names: list[str]) -> set[str]:
            skip = NOT_COPIED_TOP if folder == top else set()
            return {n for n in names if n in skip or n in NOT_COPIED or n.endswith(".pyc")}

        shutil.copytree(root, self.dir, ignore=ignore, dirs_exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(self.dir),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def checked(
        self, tests: list[str], timeout_s: float, extra_env: dict[str, str] | None = None
    ) -> tuple[int | None, float, list[str]]:
        """:meth:`pytest` over ``tests`` with its output kept: the exit status, the time,
        and what failed (pytest's FAILED and ERROR lines; a line for a timeout)."""
        with tempfile.TemporaryDirectory(prefix="linkstack-mutate-out-") as folder:
            report = Path(folder) / "pytest.out"
            rc, seconds = self.pytest(tests, timeout_s, extra_env=extra_env, report=report)
            said = report.read_text(encoding="utf-8", errors="replace").splitlines()
        failed = [ln for ln in said if ln.startswith(("FAILED", "ERROR"))]
        if rc is None:
            failed.append(f"(pytest ran past {timeout_s:.0f} s)")
        return rc, seconds, failed

    def pytest(
        self,
        tests: list[str],
        timeout_s: float,
        ids: list[str] | None = None,
        whole: bool = True,
        extra_env: dict[str, str] | None = None,
        report: Path | None = None,
    ) -> tuple[int | None, float]:
        """pytest's exit status over ``tests`` (None past the timeout), and its time;
        ``ids``: the node ids to run first (``whole``) or alone (not ``whole``);
        ``extra_env``: variables set for this run only; ``report``: a file for pytest's
        output (its FAILED and ERROR lines say what failed), else it is dropped."""
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "--no-header",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "--hypothesis-seed=0",
            "-p",
            PLUGIN,
            *tests,
        ]
        env = {**self.env, **(extra_env or {})}
        if ids:
            listed = self.dir / ".mutate-ids"
            listed.write_text("\n".join(ids), encoding="utf-8")
            env = {**env, (FIRST_ENV if whole else ONLY_ENV): str(listed)}
        start = time.monotonic()
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(report.open("w")) if report else subprocess.DEVNULL
            try:
                done = subprocess.run(
                    cmd,
                    cwd=self.dir,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT if report else subprocess.DEVNULL,
                    timeout=timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return None, time.monotonic() - start
        return done.returncode, time.monotonic() - start

    def measure(self, module: str, tests: list[str], timeout_s: float) -> Measured:
        """Run ``tests`` once under coverage.py: which tests execute each line of
        ``module`` (None when a test fails while measured, with pytest's lines that say
        which), and the run's time."""
        data_dir = Path(tempfile.mkdtemp(prefix="linkstack-mutate-cov-"))
        config = data_dir / "coveragerc"
        config.write_text(
            f"[run]\nparallel = true\nsigterm = true\ndata_file = {data_dir / '.coverage'}\n"
            f"include = {self.dir / module}\n",
            encoding="utf-8",
        )
        hook = self.dir / "sitecustomize.py"
        hook.write_text(_SITECUSTOMIZE, encoding="utf-8")
        durations = data_dir / "durations.json"
        measured = {"COVERAGE_PROCESS_START": str(config), DURATIONS_ENV: str(durations)}
        try:
            rc, seconds, failed = self.checked(tests, timeout_s, extra_env=measured)
            if rc != 0:
                return Measured(None, seconds, failed)
            contexts: dict[int, set[str]] = {}
            for path in data_dir.glob(".coverage.*"):
                data = coverage.CoverageData(basename=str(path))
                data.read()
                for line, names in (data.contexts_by_lineno(str(self.dir / module)) or {}).items():
                    contexts.setdefault(line, set()).update(names)
            frozen = {line: frozenset(names) for line, names in contexts.items()}
            durations_s = json.loads(durations.read_text(encoding="utf-8"))
            return Measured(LineMap(frozen, durations_s), seconds, [])
        finally:
            hook.unlink()
            shutil.rmtree(data_dir, ignore_errors=True)

    def run(
        self,
        mutant: Mutant,
        source: str,
        tests: list[str],
        timeout_s: float,
        lines: LineMap | None = None,
    ) -> Outcome:
        """Run ``mutant`` against ``tests``: when ``lines`` says which of them execute
        it, only those, or those first."""
        ids, whole = lines.tests_for(mutant) if lines is not None else ([], True)
        if not ids and not whole:
            return Outcome(mutant, False, "not covered", 0.0)
        path = self.dir / mutant.module
        path.write_text(mutated_source(source, mutant), encoding="utf-8")
        spent_s = 0.0
        try:
            for files, chosen, run_whole in stages(tests, ids, whole):
                limit_s = (
                    timeout_s if lines is None or run_whole else lines.timeout_s(chosen, timeout_s)
                )
                rc, seconds = self.pytest(files, limit_s, chosen, run_whole)
                spent_s += seconds
                if rc is None:
                    return Outcome(mutant, True, "timeout", spent_s)
                if rc not in (0, NO_TESTS_RAN):
                    return Outcome(mutant, True, "failed", spent_s)
        finally:
            path.write_text(source, encoding="utf-8")
        return Outcome(mutant, False, "survived", spent_s)
