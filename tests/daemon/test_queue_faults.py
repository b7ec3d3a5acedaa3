"""Damaged ground queues against real ground daemons (issue 13, items 6 and 10).

Each damage of ``tests/daemon/test_groundqueue.py`` (a zero-length file, 8 KiB of
garbage in the middle or over the last pages, a truncated file, a file that is not
SQLite, a newer schema, a database that is not a queue) is put in the way of a
``linkstack daemon ground`` process: it must exit 2 with one line that names the
key, the file, what is wrong and how to go on, and leave the file as it was. With
``--queue-recover`` it must salvage, say what it kept and lost (lost: only rows that
were on damaged pages), keep the damaged file beside the new one, start, hand the
kept unanswered rows to mission control and publish each kept answer that was not
yet published, once. A second ground daemon on a queue file in use is refused; the
lock goes with the first when it is killed (SIGKILL).

The refusals run side by side (each process exits in about a second); the
recoveries run against one real Mosquitto, each with a ground of its own name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import pytest

from linkstack.daemon.groundqueue import STATES
from tests.daemon.test_groundqueue import DAMAGES, ROWS, make_queue
from tests.daemon.test_mqtt_broker import running_broker
from tests.ports import free_block

LINKS = 48  # ports per block (the default scenario's links)
HANG_S = 60.0  # against hangs only


def scenario(folder: Path, ground: str = "mcc", broker: int | None = None) -> Path:
    """A scenario file for one ground daemon: ports of its own, MQTT to ``broker``
    (None: off), its out folder in ``folder``."""
    base = free_block(2 * LINKS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scenario.toml"
    mqtt = f"port = {broker}\nreconnect_min_s = 0.2\n" if broker else "enabled = false\n"
    path.write_text(
        f'[ground]\nname = "{ground}"\n'
        f"[mqtt]\n{mqtt}"
        f"[daemon]\nchannel_port = {base}\nnode_port = {base + LINKS}\nhttp_port = 0\n"
        f'out_dir = "{folder / "out"}"\n'
        f'runs_dir = "{folder / "runs"}"\nreport_charts = false\n'
        "[capture]\nenabled = false\n"
    )
    return path


def ground(scenario_file: Path, queue: Path, *extra: str, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "linkstack", "daemon", "--scenario", str(scenario_file)]
    cmd += ["--start", "+10765", "--queue", str(queue), *extra, "ground"]
    with open(log, "wb") as err:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)


def records(log: Path) -> list[dict]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def wait_for_record(proc: subprocess.Popen, log: Path, msg: str) -> dict:
    deadline = time.monotonic() + HANG_S
    while True:
        found = [r for r in records(log) if r.get("msg") == msg]
        if found:
            return found[0]
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no {msg!r} from the ground:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(HANG_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("a ground daemon did not stop")


def files(folder: Path) -> dict[str, bytes]:
    """The queue's files as they are (the lock file aside: it is the daemon's)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix != ".lock"}


# -- refused -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Every damage against its own ground daemon, all at once: per case, the exit
    status, what it wrote on stderr, the queue file, and its folder before and after."""
    started = {}
    for case, (damage, _, _) in DAMAGES.items():
        folder = tmp_path_factory.mktemp(case)
        queue_dir = folder / "queue"
        queue_dir.mkdir()
        queue = queue_dir / "q.sqlite"
        make_queue(queue, 40)
        damage(queue)
        before = files(queue_dir)
        log = folder / "ground.log"
        started[case] = (ground(scenario(folder), queue, log=log), log, queue, before)
    out = {}
    for case, (proc, log, queue, before) in started.items():
        try:
            status = proc.wait(HANG_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            status = None
        out[case] = (status, log.read_text(errors="replace"), queue, before, files(queue.parent))
    return out


def _refusal_problems(case: str, refusal: tuple) -> list[str]:
    """What is wrong with one case's refusal (nothing, when it is right)."""
    status, stderr, queue, before, after = refusal
    _, what, recoverable = DAMAGES[case]
    if status != 2:
        return [f"exit status {status}, not 2:\n{stderr[-3000:]}"]
    last = stderr.strip().splitlines()[-1]
    checks = [
        (last.startswith(f"linkstack daemon: ground.queue: {queue}: "), "names the queue"),
        (what in last, f"says {what!r}"),
        (("--queue-recover" in last) is recoverable, f"--queue-recover offered: {recoverable}"),
        ('"msg":"ready"' not in stderr, "never ready"),
        (after == before, "not a byte changed, nothing made beside it"),
    ]
    return [f"{why}: {last}" for ok, why in checks if not ok]


def test_a_ground_daemon_refuses_each_damaged_queue_exits_2_and_leaves_it(refusals):
    # One test over every damage, so that the daemons start once (all at once), not
    # once per pytest worker that a parametrized test would be spread over.
    problems = {case: _refusal_problems(case, refusals[case]) for case in DAMAGES}
    assert set(refusals) == set(DAMAGES)
    assert not {case: p for case, p in problems.items() if p}


def test_a_second_ground_daemon_on_a_queue_in_use_is_refused_and_the_lock_dies_with_the_first(
    tmp_path,
):
    queue = tmp_path / "q.sqlite"
    first_log, second_log, third_log = (tmp_path / f"ground-{i}.log" for i in range(3))
    first = ground(scenario(tmp_path / "a"), queue, log=first_log)
    try:
        wait_for_record(first, first_log, "ground queue")
        second = ground(scenario(tmp_path / "b"), queue, log=second_log)
        assert stop(second, 0) == 2
        last = second_log.read_text().strip().splitlines()[-1]
        assert last.startswith(f"linkstack daemon: ground.queue: {queue}: in use by another "), last
        assert f"pid {first.pid} holds {queue}.lock" in last, last
        assert stop(first, signal.SIGKILL) == -signal.SIGKILL  # no clean-up of its own
        third = ground(scenario(tmp_path / "c"), queue, log=third_log)
        wait_for_record(third, third_log, "ready")
        assert stop(third) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


# -- recovered -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    with running_broker(tmp_path_factory.mktemp("broker")) as b:
        yield b


class Tally:
    """A subscriber that keeps what a ground publishes about queries (``answer``,
    ``timeline``, ``accepted``), with a persistent session of its own (what is
    published while it is away waits for it), so that each message can be counted."""

    def __init__(self, port: int, ground_name: str = "mcc", name: str = "tally") -> None:
        self.port = port
        self.base = f"linkstack/{ground_name}/"
        self.name = name
        self.messages: list[tuple[str, str, dict]] = []  # (kind, id, body)
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1", self.port, identifier=self.name, clean_session=False
                ) as client:
                    for kind in ("answer", "timeline", "accepted"):
                        await client.subscribe(f"{self.base}{kind}/+", qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        kind, _, qid = str(message.topic).removeprefix(self.base).partition("/")
                        self.messages.append((kind, qid, json.loads(bytes(message.payload))))
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.1)

    async def __aenter__(self) -> Tally:
        self._task = asyncio.get_running_loop().create_task(self._run())
        async with asyncio.timeout(HANG_S):
            await self.subscribed.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def of(self, kind: str, qid: str) -> list[dict]:
        return [body for k, i, body in self.messages if (k, i) == (kind, qid)]

    def counts(self, kind: str = "answer") -> dict[str, int]:
        out: dict[str, int] = {}
        for k, qid, _ in self.messages:
            if k == kind:
                out[qid] = out.get(qid, 0) + 1
        return out

    async def until(self, ids: set[str], settle_s: float = 1.0) -> dict[str, int]:
        """Wait until each of ``ids`` has an answer, then ``settle_s`` more (time for a
        second one, if one were coming); the answers counted by id."""
        async with asyncio.timeout(HANG_S):
            while not ids <= set(self.counts()):
                await asyncio.sleep(0.05)
        await asyncio.sleep(settle_s)
        return self.counts()


RECOVERED = ["garbage-middle", "garbage-last-page", "truncated", "zero-length", "not-sqlite"]


@pytest.mark.parametrize("case", RECOVERED)
async def test_queue_recover_keeps_what_it_can_read_starts_and_publishes_each_answer_once(
    tmp_path, broker, case
):
    queue_dir = tmp_path / "queue"
    queue_dir.mkdir()
    queue = queue_dir / "q.sqlite"
    rows = make_queue(queue)  # rows: (id, prompt, params, stream, target, client, state, ...)
    DAMAGES[case][0](queue)
    damaged = queue.read_bytes()
    name = f"rec{RECOVERED.index(case)}"
    log = tmp_path / "ground.log"
    async with Tally(broker.port, name, f"tally-{name}") as tally:
        proc = ground(scenario(tmp_path, name, broker.port), queue, "--queue-recover", log=log)
        try:
            await asyncio.to_thread(wait_for_record, proc, log, "ready")
            rec = next(r for r in records(log) if r["msg"] == "ground queue recovered")
            assert rec["level"] == "warning" and rec["path"] == str(queue)
            assert Path(rec["damaged_file"]) == queue_dir / "q.sqlite.damaged-1"
            assert (queue_dir / "q.sqlite.damaged-1").read_bytes() == damaged
            kept = states_of(queue)
            assert rec["kept"] == len(kept)
            if case in ("zero-length", "not-sqlite"):  # SQLite could read nothing of it
                assert (rec["kept"], rec["lost"]) == (0, None)
                assert "how many were lost is unknown" in rec["summary"]
                assert await asyncio.to_thread(stop, proc) == 0
                return
            lost = set(rows) - set(kept)
            assert rec["lost"] == len(lost) and 0 < len(lost) < ROWS // 4  # a page or two
            assert set(rec["lost_ids"]) <= lost
            # each kept in the state it had (or further on: the daemon is running)
            assert all(STATES.index(kept[i]) >= STATES.index(rows[i][6]) for i in kept)
            # what was answered is published, once; what was published is not again
            to_publish = {i for i in kept if rows[i][6] == "answered"}
            counts = await tally.until(to_publish)
            assert set(counts) == to_publish, "an answer published before is not again"
            assert all(n == 1 for n in counts.values()), {i: n for i, n in counts.items() if n > 1}
            resumed = next(r for r in records(log) if r["msg"] == "resumed the ground queue")
            assert set(resumed["ids"]) == {
                i for i in kept if rows[i][6] in ("received", "submitted")
            }
            assert await asyncio.to_thread(stop, proc) == 0
            after = states_of(queue)
            assert {i for i, s in after.items() if s == "published"} == {
                i for i in kept if rows[i][6] in ("answered", "published")
            }
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def states_of(queue: Path) -> dict[str, str]:
    db = sqlite3.connect(f"file:{queue}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT id, state FROM queries"))
    finally:
        db.close()
