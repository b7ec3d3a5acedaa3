"""Running a sweep's variants: serially in process, or as Ray tasks, resumably.

Each (variant, seed) is one Ray task (``num_cpus=1`` and a memory hint) that calls
:func:`linkstack.tools.sweep_run.run_spec`, the function the serial loop calls, so a
row is the same either way. Results stream back as tasks finish (``ray.wait``); each
finished row is written at once to ``done/KEY.json`` under the sweep's folder, KEY a
hash of the variant's scenario, load, seed and the linkstack version
(:attr:`VariantSpec.key`), so a rerun runs only what is not there. A task that fails
is reported with its error and the sweep goes on; a task whose worker died is run
again by Ray (``max_retries``), elsewhere if need be.

Ray reaches the package as installed: on a cluster, every node must have linkstack
(and its ``sweep`` extra) installed at the driver's version; each row carries the
version that computed it and a row from another version is refused.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import linkstack
from linkstack.tools.sweep_file import VariantSpec
from linkstack.tools.sweep_run import run_spec

TASK_MEMORY_B = 512 * 2**20  # a scheduling hint: a small variant's peak is ~300 MiB
TASK_RETRIES = 3  # runs of a task whose worker died


@dataclass
class Outcome:
    """What a sweep gave: rows (one per variant and seed, in the specs' order),
    failures (spec, error text), how many were taken from an earlier run."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[VariantSpec, str]] = field(default_factory=list)
    resumed: int = 0
    wall_s: float = 0.0


class Store:
    """Finished rows on disk, one JSON file per key under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, spec: VariantSpec) -> Path:
        return self.folder / f"{spec.key}.json"

    def get(self, spec: VariantSpec) -> dict[str, Any] | None:
        try:
            row: dict[str, Any] = json.loads(self.path(spec).read_text("utf-8"))
        except (OSError, ValueError):
            return None  # absent, or cut short by a kill: run it again
        return row if row.get("version") == linkstack.__version__ else None

    def put(self, row: dict[str, Any]) -> None:
        tmp = self.folder / f".{row['key']}.tmp"
        tmp.write_text(json.dumps(row), "utf-8")
        tmp.replace(self.folder / f"{row['key']}.json")  # whole or not at all


class Progress:
    """One line, redrawn: a bar, done/total, failures, elapsed time."""

    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.out = out
        self.t0_s = time.perf_counter()

    def step(self, ok: bool, note: str = "") -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        width = 30
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (width - filled)
        fail = f", {self.failed} failed" if self.failed else ""
        elapsed_s = time.perf_counter() - self.t0_s
        self.out.write(
            f"\r[{bar}] {self.done}/{self.total}{fail} {elapsed_s:.0f} s  {note[:40]:<40}"
        )
        if self.done == self.total:
            self.out.write("\n")
        self.out.flush()


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def run_sweep(
    specs: Iterable[VariantSpec],
    store: Store,
    *,
    serial: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: TextIO | None = sys.stderr,
    on_row: Callable[[dict[str, Any], str], None] | None = None,
) -> Outcome:
    """Every spec's row: from ``store`` when it is there, else run (serially in
    process, or on Ray: a local instance of ``num_cpus`` cores, or the cluster at
    ``address``) and stored as it finishes; ``on_row(row, where)`` is told of each
    run as it finishes (``where``: the Ray node's id, or "serial")."""
    specs = list(specs)
    out = Outcome()
    t0_s = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    todo: list[VariantSpec] = []
    for spec in specs:
        row = store.get(spec)
        if row is None:
            todo.append(spec)
        else:
            rows[spec.key] = row
    out.resumed = len(rows)
    bar = Progress(len(todo), progress) if progress is not None and todo else None

    def finished(
        spec: VariantSpec, row: dict[str, Any] | None, error: str | None, where: str
    ) -> None:
        if row is not None:
            store.put(row)
            rows[spec.key] = row
            if on_row is not None:
                on_row(row, where)
        else:
            out.failures.append((spec, error or "failed"))
        if bar is not None:
            bar.step(row is not None, spec.name)

    if serial:
        for spec in todo:
            try:
                finished(spec, run_spec(spec), None, "serial")
            except Exception as exc:  # a variant's failure is its row's, not the sweep's
                finished(spec, None, _error_text(exc), "serial")
    elif todo:
        _run_on_ray(todo, finished, address=address, num_cpus=num_cpus)
    out.rows = [rows[s.key] for s in specs if s.key in rows]
    out.wall_s = time.perf_counter() - t0_s
    return out


def ray_init(address: str | None, num_cpus: int | None) -> None:
    """Join the cluster at ``address``, or start a local Ray of ``num_cpus`` cores
    ("local": never an instance some other ``ray start`` left on this machine)."""
    import ray  # noqa: PLC0415  (Ray takes a second to import; --serial needs none of it)

    if ray.is_initialized():
        return
    common: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False}
    if address:
        # as `ray start` does: token authentication when a token is there (Ray >= 2.52)
        token_file = Path.home() / ".ray" / "auth_token"
        if "RAY_AUTH_MODE" not in os.environ and (
            "RAY_AUTH_TOKEN" in os.environ or token_file.exists()
        ):
            os.environ["RAY_AUTH_MODE"] = "token"
        ray.init(address=address, **common)
    else:
        ray.init(
            address="local",
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            **common,
        )


def _run_on_ray(
    todo: list[VariantSpec],
    finished: Callable[[VariantSpec, dict[str, Any] | None, str | None, str], None],
    *,
    address: str | None,
    num_cpus: int | None,
) -> None:
    import ray  # noqa: PLC0415

    ray_init(address, num_cpus)
    task = ray.remote(num_cpus=1, memory=TASK_MEMORY_B, max_retries=TASK_RETRIES)(_ray_task)
    pending = {task.remote(spec): spec for spec in todo}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            spec = pending.pop(ref)
            try:
                row, node = ray.get(ref)
            except Exception as exc:  # the task's error, or a worker lost past its retries
                finished(spec, None, _error_text(exc), "")
                continue
            if row.get("version") != linkstack.__version__:
                finished(
                    spec, None,
                    f"worker runs linkstack {row.get('version')}, the driver "
                    f"{linkstack.__version__}: install the same version on every node", node,
                )  # fmt: skip
            else:
                finished(spec, row, None, node)


def _ray_task(spec: VariantSpec) -> tuple[dict[str, Any], str]:
    """A Ray task: the row, and the node that ran it (not part of the row)."""
    import ray  # noqa: PLC0415

    return run_spec(spec), ray.get_runtime_context().get_node_id()


def overhead_s(serial_s: float, parallel_s: float, workers: int, variants: int) -> float:
    """Scheduling overhead per variant: the parallel wall time beyond the serial time
    spread perfectly over ``workers``, per variant."""
    ideal_s = serial_s / workers
    return max(parallel_s - ideal_s, 0.0) / max(variants, 1) if math.isfinite(ideal_s) else 0.0
