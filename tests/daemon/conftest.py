"""Fixtures of the daemon tests that run real processes: a Mosquitto broker of the
test's own, and the daemons of one test (tests/daemon/test_daemon_processes.py: Run)."""

from __future__ import annotations

import pytest

from tests.daemon.test_daemon_processes import Run
from tests.daemon.test_mqtt_broker import running_broker


@pytest.fixture
def broker(tmp_path):
    with running_broker(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def run(tmp_path, broker):
    r = Run(tmp_path, broker)
    try:
        yield r
    finally:
        r.kill_all()
