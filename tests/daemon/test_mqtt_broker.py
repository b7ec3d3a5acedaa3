"""A real Mosquitto broker for the MQTT tests, and a check of it.

:class:`Broker` starts ``mosquitto -c <conf>`` on a free port of 127.0.0.1 (anonymous,
with persistence in a temporary folder so that sessions survive a restart),
waits until it accepts connections, and stops it (SIGTERM, so that it saves its
state; SIGKILL if it lingers). The ``broker`` fixture gives one per test. Other
test modules make their fixture with :func:`running_broker`. Options add
configuration: ``allow_anonymous``, ``listener_options`` (lines for the listener:
``cafile``, ``certfile``, ``keyfile``, ``require_certificate``) and ``options``
(global lines: ``password_file``); see tests/daemon/test_mqtt_security.py. Run as root,
mosquitto would switch to its own user and could then read nothing in the test's
private temporary folder (not its password file, not its saved state): then the
configuration says ``user root``, which keeps it as it is.

These tests need mosquitto. Without it they FAIL and say how to install it (``make
test`` and ``.ci/run`` install it when they run as root): a skipped check would look
like a pass.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

INSTALL_HINT = (
    "mosquitto (the MQTT broker the daemon tests run against) is not installed. Install it: "
    "`sudo apt-get install mosquitto` on Debian/Ubuntu (`make test` does it by itself when "
    "run as root; stop the service it may start: `systemctl disable --now mosquitto`), "
    "`dnf install mosquitto` on Fedora, `brew install mosquitto` on macOS; then run the "
    "tests again."
)


def mosquitto_path() -> str:
    exe = shutil.which("mosquitto")
    if exe is None:
        for folder in ("/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin"):
            candidate = Path(folder) / "mosquitto"
            if candidate.is_file():
                return str(candidate)
        pytest.fail(INSTALL_HINT, pytrace=False)
    return exe


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Broker:
    """One mosquitto process on ``port`` (the same port across restarts)."""

    def __init__(
        self,
        folder: Path,
        *,
        allow_anonymous: bool = True,
        listener_options: str = "",
        options: str = "",
    ) -> None:
        self.exe = mosquitto_path()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_tcp_port()
        self.conf = folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            *listener_options.splitlines(),  # they apply to the listener above
            f"allow_anonymous {'true' if allow_anonymous else 'false'}",
            *options.splitlines(),
            "user root" if os.geteuid() == 0 else "",  # see the module docstring
            "persistence true",
            f"persistence_location {folder}/",
            "autosave_interval 1",
            f"log_dest file {folder}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        self.conf.write_text("".join(f"{line.strip()}\n" for line in lines if line.strip()))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while not accepts(self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc = None
                pytest.fail(f"mosquitto exited at start: {err}", pytrace=False)
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"mosquitto did not accept connections on {self.port}", pytrace=False)
            time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
        deadline = time.monotonic() + 5.0  # the port is free again before we go on
        while accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def running_broker(folder: Path, **options: Any):
    """A started :class:`Broker` (``options``: see :class:`Broker`), stopped at the end
    (for fixtures in other modules)."""
    b = Broker(folder, **options)
    b.start()
    try:
        yield b
    finally:
        with contextlib.suppress(Exception):
            b.stop()


@pytest.fixture
def broker(tmp_path: Path):
    with running_broker(tmp_path / "broker") as b:
        yield b


def test_the_broker_starts_restarts_on_its_port_and_stops(broker: Broker) -> None:
    assert accepts(broker.port)
    port = broker.port
    broker.restart()
    assert broker.port == port and accepts(port)
    broker.stop()
    assert not accepts(port)
