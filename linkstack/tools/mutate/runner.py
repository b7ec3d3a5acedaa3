"""Run each mutant of a module against its tests, in a copy of the tree.

The checkout is never touched: it is copied once per worker (without .git and .venv)
into a temporary folder, a mutant is written into the copy, and pytest runs there in a
fresh process (``PYTHONPATH`` puts the copy ahead of the editable install, so that
processes the tests start import the mutant too). No bytecode is written, so that a
restored module is never read from a stale cache. A mutant is killed when pytest fails
(``-x``: at the first failing test) or runs past the timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from linkstack.tools.mutate.mutants import Mutant, mutated_source

# left out of the copy: what the tests neither read nor need (at the top, and anywhere)
NOT_COPIED_TOP = {".git", ".venv", "runs", "out", "build", "dist"}
NOT_COPIED = {"__pycache__", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
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
    how: str  # "failed", "timeout", "survived"
    seconds: float


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

    def failures(self, tests: list[str], timeout_s: float) -> list[str]:
        """The FAILED and ERROR lines of pytest over ``tests`` (why a baseline fails)."""
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
        try:
            done = subprocess.run(
                [*cmd, "--hypothesis-seed=0", *tests],
                cwd=self.dir,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return [f"(pytest ran past {timeout_s:.0f} s)"]
        return [ln for ln in done.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]

    def pytest(self, tests: list[str], timeout_s: float) -> tuple[int | None, float]:
        """pytest's exit status over ``tests`` (None past the timeout), and its time."""
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
            *tests,
        ]
        start = time.monotonic()
        try:
            done = subprocess.run(
                cmd,
                cwd=self.dir,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - start
        return done.returncode, time.monotonic() - start

    def run(self, mutant: Mutant, source: str, tests: list[str], timeout_s: float) -> Outcome:
        path = self.dir / mutant.module
        path.write_text(mutated_source(source, mutant), encoding="utf-8")
        try:
            rc, seconds = self.pytest(tests, timeout_s)
        finally:
            path.write_text(source, encoding="utf-8")
        if rc is None:
            return Outcome(mutant, True, "timeout", seconds)
        return Outcome(mutant, rc != 0, "failed" if rc else "survived", seconds)
