"""The daemons as separate processes, over UDP on loopback, with a real MQTT broker.

Each test starts ``linkstack daemon`` processes (channel, sat with the tiny model,
ground) on ports of their own, sharing one emulated sky: the same ``--start`` (a
few seconds before Mohe acquires CS-06 at 02:59:31, ``t_s`` 10771, in the
continuous coverage of Mohe and Sanya that lasts past 04:00) and the same
``--anchor``, so that the tests wait for no pass. They run in wall-clock time;
the only time limits are generous timeouts against hangs.

They need mosquitto and tshark: without them they fail and say how to install
them (``make test`` does as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiomqtt
import pytest
from scapy.utils import rdpcap

from linkstack.capture.pcap import read_units
from linkstack.daemon.mqtt import Topics
from linkstack.runtime.report import LEGS
from tests.capture.test_wireshark import LUA, fields
from tests.daemon.test_mqtt_broker import Broker
from tests.ports import free_block

START = "+10765"  # 2026-01-01T02:59:25Z: CS-08 over Sanya, CS-06 about to rise over Mohe
TOPICS = Topics("linkstack", "mcc")
SATELLITES = 12
LINKS = 2 * SATELLITES + 2 * 12  # uplinks, downlinks, both ways of the 12 laser pairs
HANG_S = 90.0  # against hangs only
MQTT_ROLES = ("ground", "all")  # the roles that subscribe to the broker


def free_ports() -> tuple[int, int, int]:
    """Bases of two blocks of LINKS free UDP ports and of 4 free TCP ports."""
    base = free_block(2 * LINKS, 4)
    return base, base + LINKS, base + 2 * LINKS


class Run:
    """The daemons of one test: their scenario file, processes and logs."""

    def __init__(self, folder: Path, broker: Broker) -> None:
        self.folder = folder
        self.out = folder / "out"
        self.runs = folder / "runs"  # each ground run's report in a folder of its own
        self.channel_port, self.node_port, self.http_port = free_ports()
        self.scenario = folder / "scenario.toml"
        self.scenario.write_text(
            "[mqtt]\n"
            f"port = {broker.port}\n"
            "reconnect_min_s = 0.2\n"
            "reconnect_max_s = 1.0\n"
            "[daemon]\n"
            f"channel_port = {self.channel_port}\n"
            f"node_port = {self.node_port}\n"
            f"http_port = {self.http_port}\n"
            "status_interval_s = 1.0\n"
            f'out_dir = "{self.out}"\n'
            f'runs_dir = "{self.runs}"\n'
            "report_charts = false\n"  # a second a ground; test_run_dirs.py draws them
        )
        self.anchor = f"{time.time():.6f}"
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, role: str) -> subprocess.Popen:
        log = self.folder / f"{role}-{len(self.procs)}.log"
        cmd = [sys.executable, "-m", "linkstack", "daemon", "--scenario", str(self.scenario)]
        cmd += ["--start", START, "--anchor", self.anchor, role]
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        self.procs.append((role, proc, log))
        return proc

    def report(self) -> dict:
        """report.json of the last ground run (its folder under :attr:`runs`)."""
        dirs = sorted(self.runs.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        assert dirs, f"no run folder under {self.runs}"
        return json.loads((dirs[-1] / "report.json").read_text())

    def log_of(self, proc: subprocess.Popen) -> str:
        log = next(path for _, p, path in self.procs if p is proc)
        return log.read_text(errors="replace")

    def records(self, proc: subprocess.Popen) -> list[dict]:
        out = []
        for line in self.log_of(proc).splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    async def ready(self, *procs: subprocess.Popen) -> None:
        """Until each daemon says it is ready, and a ground that it is subscribed to
        its broker too (it may say ready first: a query published before that would
        reach no one)."""
        deadline = time.monotonic() + HANG_S
        for proc in procs:
            role = next(r for r, p, _ in self.procs if p is proc)
            marks = ['"msg":"ready"'] + (['"msg":"mqtt connected"'] if role in MQTT_ROLES else [])
            while not all(mark in self.log_of(proc) for mark in marks):
                if proc.poll() is not None:
                    pytest.fail(f"a daemon exited at start:\n{self.log_of(proc)[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"a daemon is not ready:\n{self.log_of(proc)[-3000:]}")
                await asyncio.sleep(0.05)

    def stop(self, proc: subprocess.Popen, sig: int | None = signal.SIGTERM) -> int:
        """Send ``sig`` (None: none) and wait for the exit status."""
        if sig is not None:
            proc.send_signal(sig)
        try:
            return proc.wait(HANG_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"a daemon did not stop:\n{self.log_of(proc)[-3000:]}")

    def stop_all(self, *procs: subprocess.Popen) -> None:
        """SIGTERM to all at once; each must exit 0."""
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert self.stop(proc, None) == 0, self.log_of(proc)[-3000:]

    def kill_all(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def queue_states(self) -> dict[str, str]:
        path = self.out / "mcc-queue.sqlite"
        if not path.exists():
            return {}
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return dict(con.execute("SELECT id, state FROM queries"))
        except sqlite3.OperationalError:
            return {}
        finally:
            con.close()


class Listener:
    """An MQTT client that keeps every answer, chunk and timeline it hears, with a
    persistent session (it gets what was published while it was away)."""

    def __init__(self, port: int, name: str = "test-listener") -> None:
        self.port = port
        self.name = name
        self.messages: list[tuple[str, dict]] = []
        self._task: asyncio.Task | None = None
        self.subscribed = asyncio.Event()

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1", self.port, identifier=self.name, clean_session=False
                ) as c:
                    for what in ("answer", "chunk", "timeline"):
                        await c.subscribe(f"{TOPICS.base}/{what}/+", qos=1)
                    self.subscribed.set()
                    async for m in c.messages:
                        self.messages.append((str(m.topic), json.loads(bytes(m.payload))))
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.2)

    async def __aenter__(self) -> Listener:
        self._task = asyncio.get_running_loop().create_task(self._run())
        async with asyncio.timeout(HANG_S):
            await self.subscribed.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def of(self, kind: str, query_id: str) -> list[dict]:
        topic = f"{TOPICS.base}/{kind}/{query_id}"
        return [body for t, body in self.messages if t == topic]

    async def answers(self, ids: list[str]) -> dict[str, dict]:
        async with asyncio.timeout(HANG_S):
            while not all(self.of("answer", i) and self.of("timeline", i) for i in ids):
                await asyncio.sleep(0.05)
        return {i: self.of("answer", i)[0] for i in ids}


async def publish_queries(port: int, queries: list[dict]) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as c:
        for q in queries:
            await c.publish(TOPICS.query, json.dumps(q).encode(), qos=1)


def query(qid: str, prompt: str, **extra) -> dict:
    return {"id": qid, "prompt": prompt, "params": {"max_new_tokens": 8, "seed": 1}, **extra}


def linkstack_ask(run: Run, *args: str) -> list[str]:
    """``linkstack ask`` of this run's scenario, as a user runs it."""
    return [sys.executable, "-m", "linkstack", "ask", "--scenario", str(run.scenario), *args]


async def test_three_daemons_answer_over_mqtt_and_leave_captures_tshark_reads(run, broker):
    began_unix_s = time.time()
    procs = {role: run.start(role) for role in ("channel", "sat", "ground")}
    await run.ready(*procs.values())
    async with Listener(broker.port) as listener:
        # a batch of three relayed to CS-10 (out of view: up to a satellite in view,
        # then over laser links), in JSON lines
        batch = await asyncio.create_subprocess_exec(
            *linkstack_ask(run, "--json", "--count", "3", "--interval", "0.2", "--id", "q-batch"),
            *("--target", "CS-10", "--max-new-tokens", "8", "--timeout", str(HANG_S)),
            "Relayed in a batch?",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        ask = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "linkstack",
            "ask",
            "--scenario",
            str(run.scenario),
            "--id",
            "q-ask",
            "--stream",
            "--max-new-tokens",
            "8",
            "--timeout",
            str(HANG_S),
            "A question from the command line",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await publish_queries(
            broker.port,
            [
                query("q-any", "Which satellite answers?"),
                query("q-relay", "Relayed to CS-10?", target="CS-10", stream=True),
            ],
        )
        got = await listener.answers(["q-any", "q-relay", "q-ask"])
        out, err = await asyncio.wait_for(ask.communicate(), HANG_S)
        batch_out, batch_err = await asyncio.wait_for(batch.communicate(), HANG_S)
    assert ask.returncode == 0, err.decode()
    text = out.decode()
    assert (
        "answer from CS-" in text
        and "\nroute  ground:" in text
        and "\nlegs   contact_wait " in text
    )
    assert batch.returncode == 0, batch_err.decode()
    lines = [json.loads(line) for line in batch_out.decode().splitlines()]
    batched = relayed_timelines_are_whole(lines[:-1], ["q-batch-1", "q-batch-2", "q-batch-3"])
    assert batch_err.decode().count("answered in") == 3  # progress, one line a query
    summary = lines[-1]["summary"]
    assert summary["queries"] == summary["answered"] == 3
    assert summary["round_trip_s"]["count"] == 3 == summary["client_round_trip_s"]["count"]
    assert summary["round_trip_s"]["p50_s"] <= summary["round_trip_s"]["p99_s"]
    assert list(summary["legs_s"]) == [name for name, _ in LEGS]
    relayed_timelines_are_whole([{"timeline": listener.of("timeline", "q-relay")[0]}], None)
    for qid, answer in got.items():
        assert answer["type"] == "answer" and answer["id"] == qid, answer
        assert answer["random_weights"] and answer["completion_tokens"] > 0
    assert got["q-relay"]["satellite"] == "CS-10"
    assert listener.of("chunk", "q-relay"), "a streamed query sends chunks"
    timeline = listener.of("timeline", "q-any")[0]
    assert timeline["total_s"] == pytest.approx(sum(timeline["legs_s"].values()))
    run.stop_all(*procs.values())

    # stopped, the ground's will says offline: ask says so at once
    started = time.monotonic()
    offline = subprocess.run(
        linkstack_ask(run, "anyone?"), capture_output=True, text=True, check=False
    )
    assert time.monotonic() - started < 15.0  # the start of a Python process, not the timeout
    assert offline.returncode == 5, offline.stderr
    assert "the ground daemon 'mcc' is offline" in offline.stderr

    # the route each relayed timeline gives is the one the satellites took: the laser
    # hops of the Space Packets that carried its query and its answer (sat.pcap)
    isl = Counter()
    for unit in read_units(run.out / "sat.pcap"):
        if unit.layer == "space_packet" and unit.src.startswith("sat:"):
            for qid in batched:
                if qid.encode() in unit.data and unit.dst.startswith("sat:"):
                    isl[(qid, unit.src, unit.dst)] += 1
    for qid, timeline in batched.items():
        hops = {(h["src"], h["dst"]) for h in timeline["hops"] if h["kind"] == "isl"}
        assert hops == {(s, d) for q, s, d in isl if q == qid}, (qid, isl)

    report = run.report()
    assert sorted(q["query_id"] for q in report["queries"]) == [
        "q-any",
        "q-ask",
        "q-batch-1",
        "q-batch-2",
        "q-batch-3",
        "q-relay",
    ]
    assert all(q["answer_on_ground_t_s"] is not None for q in report["queries"])
    assert {m["msg"] for m in run.records(procs["ground"])} >= {"ready", "status", "stopped"}
    # the test's broker lets anyone in, and the ground said so at start, loudly
    opened = [m for m in run.records(procs["ground"]) if m["msg"].startswith("the MQTT broker")]
    assert [m["level"] for m in opened] == ["warning"] and "is open" in opened[0]["msg"], opened

    home = run.folder / "tshark-home"
    home.mkdir()
    tc = fields(
        run.out / "ground.pcap",
        ["linkstack.tc.scid", "linkstack.tc.type", "linkstack.tc.fecf.status"],
        "-X",
        f"lua_script:{LUA}",
        "-Y",
        "linkstack.tc",
        home=home,
    )
    kinds = Counter(v["linkstack.tc.type"][-1] for v in tc.values())
    assert kinds["AD"] >= 3 and kinds["BC"] >= 1, kinds  # queries and acks; Set V(R)
    assert all(v["linkstack.tc.fecf.status"][-1] == "1" for v in tc.values())
    tm = fields(
        run.out / "sat.pcap",
        ["linkstack.tm.scid", "linkstack.tm.fhp"],
        "-X",
        f"lua_script:{LUA}",
        "-Y",
        "linkstack.tm",
        home=home,
    )
    assert len(tm) > 10 and {v["linkstack.tm.scid"][-1] for v in tm.values()} <= {
        str(0x40 + k) for k in range(SATELLITES)
    }
    delivered = Counter(u.layer for u in read_units(run.out / "channel.pcap"))
    assert delivered["cltu"] and delivered["tm_cadu"] and delivered["aos_cadu"], delivered

    # stamped in wall time, as the logs are (the scenario runs at 2026-01-01T02:59:25),
    # the side file saying so; the units' t_s stay the scenario's
    for name in ("ground", "sat", "channel"):
        side = json.loads((run.out / f"{name}.pcap.nodes.json").read_text())
        assert side["time_base"] == "wall" and side["scenario_epoch"].startswith("2026-01-01")
        first = next(iter(rdpcap(str(run.out / f"{name}.pcap"), count=1)))
        assert began_unix_s - 1 <= float(first.time) <= time.time(), (name, float(first.time))
        assert 10_765 <= next(iter(read_units(run.out / f"{name}.pcap"))).t_s < 10_765 + HANG_S

    # and each capture passes every applicable rule of the conformance suite
    from linkstack.conformance.passive.checker import check_capture
    from linkstack.conformance.passive.report import format_text

    for name in ("ground", "sat", "channel"):
        conformance = check_capture(run.out / f"{name}.pcap")
        assert conformance.exit_code == 0, format_text(conformance)


def relayed_timelines_are_whole(lines: list[dict], ids: list[str] | None) -> dict[str, dict]:
    """Each line (as ``ask --json`` prints them) has the timeline of a query relayed to
    CS-10, out of view at submit, with its whole route; the timelines by id."""
    if ids is not None:
        assert sorted(line["id"] for line in lines) == ids
        assert all(line["outcome"] == "answered" for line in lines)
        assert all(line["answer"]["satellite"] == "CS-10" for line in lines)
    out = {}
    for line in lines:
        t = line["timeline"]
        assert t["satellite"] == "CS-10" and t["total_s"] == pytest.approx(
            sum(t["legs_s"].values())
        )
        assert not t["in_view_at_submit"] and t["relayed_at_submit"], t
        assert t["answer_copies"] is None  # the ground cannot count them
        hops = t["hops"]
        kinds = [h["kind"] for h in hops]
        assert kinds[0] == "uplink" and kinds[-1] == "downlink" and set(kinds[1:-1]) == {"isl"}
        assert all(a["dst"] == b["src"] for a, b in itertools.pairwise(hops)), hops
        assert hops[0]["src"].startswith("ground:") and hops[-1]["dst"].startswith("ground:")
        # up to CS-10 (the uplink went to another satellite), then back to one in view
        on_board = [k for k, h in enumerate(hops) if h["dst"] == "sat:CS-10"]
        assert on_board and on_board[0] >= 1, hops
        assert hops[on_board[0]]["end_t_s"] == t["query_on_board_t_s"]
        assert hops[0]["start_t_s"] == t["first_uplink_t_s"] is not None
        assert hops[-1]["end_t_s"] == t["answer_on_ground_t_s"] is not None
        assert t["query_on_first_sat_t_s"] is None and "uplink" not in t["legs_s"]
        out[t["query_id"]] = t
    return out


async def test_a_killed_ground_answers_every_queued_query_once_after_a_restart(run, broker):
    """SIGKILL with queries stored and queued (no channel yet: nothing can go up), then
    a restart: each query is answered, once, and run once on board."""
    sat = run.start("sat")
    ground = run.start("ground")
    await run.ready(ground)
    ids = [f"k{i}" for i in range(3)]
    async with Listener(broker.port) as listener:
        await publish_queries(broker.port, [query(i, f"Queued {i}") for i in ids])
        async with asyncio.timeout(HANG_S):
            while sorted(run.queue_states().items()) != [(i, "submitted") for i in ids]:
                await asyncio.sleep(0.05)
        assert run.stop(ground, signal.SIGKILL) == -signal.SIGKILL
        channel = run.start("channel")
        ground = run.start("ground")
        await run.ready(sat, channel, ground)
        got = await listener.answers(ids)
        await asyncio.sleep(1.5)  # time for a second answer, if one were coming
        for i in ids:
            assert len(listener.of("answer", i)) == 1, listener.of("answer", i)
            assert got[i]["type"] == "answer"
    assert run.queue_states() == dict.fromkeys(ids, "published")
    resumed = [m for m in run.records(ground) if m["msg"] == "resumed the ground queue"]
    assert resumed and sorted(resumed[0]["ids"]) == ids
    run.stop_all(ground, sat, channel)
    stopped = next(m for m in run.records(sat) if m["msg"] == "stopped")
    services = stopped["counters"]["satellites"]["services"]
    assert services["inferences"] == len(ids), services  # each query ran once on board


@pytest.mark.slow  # make test runs the same outage counted exactly once: test_exactly_once
async def test_answers_that_come_while_the_broker_is_down_are_published_when_it_is_back(
    run, broker
):
    sat = run.start("sat")
    ground = run.start("ground")
    await run.ready(ground)
    ids = [f"b{i}" for i in range(3)]
    async with Listener(broker.port, "test-listener-b") as listener:
        await publish_queries(broker.port, [query(i, f"Through a broker outage {i}") for i in ids])
        async with asyncio.timeout(HANG_S):
            while sorted(run.queue_states().items()) != [(i, "submitted") for i in ids]:
                await asyncio.sleep(0.05)
        await asyncio.to_thread(broker.stop)  # the broker goes away with the queries queued
        channel = run.start("channel")  # now they can go up; the answers come down
        await run.ready(sat, channel)
        async with asyncio.timeout(HANG_S):
            while sorted(run.queue_states().items()) != [(i, "answered") for i in ids]:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert run.queue_states() == dict.fromkeys(ids, "answered")  # held: no broker
        await asyncio.to_thread(broker.start)  # back, on the same port
        got = await listener.answers(ids)
        assert all(got[i]["type"] == "answer" for i in ids)
        # the broker may pass an answer on before the daemon has its PUBACK
        async with asyncio.timeout(HANG_S):
            while run.queue_states() != dict.fromkeys(ids, "published"):
                await asyncio.sleep(0.05)
    warnings = [m for m in run.records(ground) if m["msg"] == "mqtt broker unreachable"]
    assert warnings, "the daemon saw the broker go"
    run.stop_all(ground, sat, channel)
