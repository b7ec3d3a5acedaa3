"""A daemon run's own folder: ``RUNS/2026-12-07T01-23-45Z-ground/``, never reused.

The name is the UTC instant the run ended (colons would trouble some file systems,
so ``-``) and the role. The folder is made with ``mkdir`` that refuses an existing
one, so two runs that end in the same second, in one process or two, still get
two folders: the second takes ``...-ground-2`` (then ``-3``...). An earlier run's
report is never overwritten.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from linkstack.errors import ConfigError

MAX_SAME_SECOND = 1000  # runs of one role ending in the same second, at most


def run_dir_name(ended: datetime, role: str) -> str:
    """``2026-12-07T01-23-45Z-ground`` for a run of ``role`` that ended at ``ended``."""
    return f"{ended.astimezone(UTC):%Y-%m-%dT%H-%M-%SZ}-{role}"


def new_run_dir(runs: Path, role: str, ended: datetime | None = None) -> Path:
    """Make a new folder for a run under ``runs`` (made if missing); its absolute path."""
    base = run_dir_name(ended or datetime.now(UTC), role)
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("daemon", "runs_dir", f"cannot make {runs}: {exc.strerror}") from None
    for n in range(1, MAX_SAME_SECOND + 1):
        path = runs / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError("daemon", "runs_dir", f"cannot make {path}: {exc.strerror}") from None
        return path.resolve()
    raise ConfigError("daemon", "runs_dir", f"{MAX_SAME_SECOND} runs named {base} already")
