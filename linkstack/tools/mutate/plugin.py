"""The mutation driver's pytest plugin (``-p linkstack.tools.mutate.plugin``).

Two jobs, each switched on by an environment variable the driver sets:

- while coverage.py measures the selection (``COVERAGE_PROCESS_START``), each test's
  call phase is recorded under its node id as coverage's dynamic context, in this
  process and in the Python processes the test starts (they read the id from
  ``LINKSTACK_MUTATE_CONTEXT``); collection, imports and fixtures stay in the empty
  context, which the driver reads as "any test may depend on this line";
- ``LINKSTACK_MUTATE_ONLY`` names a file of node ids, one a line: only those tests run,
  in their collection order; ``LINKSTACK_MUTATE_FIRST``: those run first, then the rest;
- ``LINKSTACK_MUTATE_DURATIONS`` names a file where each test's time (setup, call and
  teardown, seconds) is written as JSON at the end of the session.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import coverage
import pytest

CONTEXT_ENV = "LINKSTACK_MUTATE_CONTEXT"
ONLY_ENV = "LINKSTACK_MUTATE_ONLY"
FIRST_ENV = "LINKSTACK_MUTATE_FIRST"
DURATIONS_ENV = "LINKSTACK_MUTATE_DURATIONS"
_durations: dict[str, float] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    only, first = os.environ.get(ONLY_ENV), os.environ.get(FIRST_ENV)
    if only:
        wanted = set(Path(only).read_text(encoding="utf-8").splitlines())
        items[:] = [item for item in items if item.nodeid in wanted]
    elif first:
        wanted = set(Path(first).read_text(encoding="utf-8").splitlines())
        items.sort(key=lambda item: item.nodeid not in wanted)  # stable: else as collected


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(DURATIONS_ENV)
    if path:
        Path(path).write_text(json.dumps(_durations), encoding="utf-8")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    cov = _coverage()
    if cov is None:
        yield
        return
    cov.switch_context(item.nodeid)
    os.environ[CONTEXT_ENV] = item.nodeid
    try:
        yield
    finally:
        os.environ.pop(CONTEXT_ENV, None)
        cov.switch_context("")


def _coverage() -> coverage.Coverage | None:
    """The running coverage.py measurement, if the driver started one."""
    if not os.environ.get("COVERAGE_PROCESS_START"):
        return None
    return coverage.Coverage.current()
