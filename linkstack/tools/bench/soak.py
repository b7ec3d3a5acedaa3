"""``linkstack bench soak``: the daemons for an hour, answering queries, memory flat.

A Mosquitto broker of its own (``mosquitto``, on a free port of 127.0.0.1, anonymous,
nothing kept on disk) and the daemons: ``linkstack daemon all``, or with
``--separate`` the channel, sat and ground daemons sharing one emulated sky; the tiny
model, no capture, from the scenario instant 10,765 s (``--start-t-s``), where the
default constellation's passes over Mohe and Sanya overlap for 77 minutes (a longer
soak meets gaps: queries then wait for a pass, which is fine, but the last ones may
wait longer than the bench's ``drain_s``). One MQTT client publishes queries (QoS 1)
at ``--rate`` per second, for any satellite or ``--target`` (relayed when it is out
of view), and counts the ``answer/<id>`` messages that come back for each id.

Every ``--sample-s`` seconds it reads each daemon's resident set size (``VmRSS`` in
``/proc/PID/status``) and prints a progress line. At the end it waits for the last
answers, reads the ground's ``/counters`` (``held``: what the ground holds per query,
which must not grow with the queries answered) and, for each query still without an
answer, where it is (the ground's ``/pending``: its queue state, its uplinks, the
trace's hops, an open one being a message sent on a link that never arrived), and
what the laser links dropped, by reason (the channel's ``/counters``); then it stops
the daemons and reports, per daemon, the RSS series and the slope of a least-squares
line through the samples of the second half (MB/min; the first half has the start's
growth: the allocator's arenas, caches, the bounded structures filling up), and the
same growth counted only between samples with the same number of threads (a thread
that starts, such as a satellite's model thread at its first query, brings its stack
and malloc arena: a step, not a leak), and the queries answered once, lost (no
answer) and duplicated (more than one answer message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from linkstack.tools.bench.processes import free_ports, stop
from linkstack.tools.bench.timing import describe_machine

START_T_S = 10_765.0  # passes over Mohe and Sanya overlap from here for 77 minutes
PREFIX, GROUND = "soak", "mcc"  # MQTT topics: soak/mcc/...
HTTP_OFFSET = {"ground": 0, "channel": 1, "sat": 2, "all": 3}  # daemon.http_port + this
LINK_PORTS = 64  # UDP ports per block (the default scenario has 48 links)
READY_S = 120.0  # a daemon loads the model and the contact plan before it is ready


@dataclass
class SoakResult:
    minutes: float
    rate_per_s: float
    roles: list[str]
    sent: int
    answers: Counter[str]  # answer messages per query id
    errors: int  # of them, error answers (the satellite's or the ground's refusals)
    rss_mb: dict[str, list[tuple[float, float]]]  # role -> (minutes since start, MB)
    held: dict[str, int]  # the ground's /counters "held", at the end
    exit_codes: dict[str, int | None]
    ids: list[str] = field(default_factory=list)
    threads: dict[str, list[int]] = field(default_factory=dict)  # role -> at each sample
    unanswered: list[dict[str, Any]] = field(default_factory=list)  # the ground's /pending
    isl: dict[str, int] = field(default_factory=dict)  # the laser links' counters, at the end
    client: dict[str, int] = field(default_factory=dict)  # the ground client's, at the end

    @property
    def answered_once(self) -> int:
        return sum(1 for qid in self.ids if self.answers[qid] == 1)

    @property
    def lost(self) -> int:
        return sum(1 for qid in self.ids if self.answers[qid] == 0)

    @property
    def duplicated(self) -> int:
        return sum(1 for qid in self.ids if self.answers[qid] > 1)

    def slope_mb_per_min(self, role: str) -> float:
        """The least-squares slope of ``role``'s RSS over the second half of the run."""
        return second_half_slope(self.rss_mb[role])

    def steady_mb_per_min(self, role: str) -> float:
        """``role``'s RSS growth over the second half between samples with the same
        threads: what grows with the queries, not with threads starting."""
        return steady_growth(self.rss_mb[role], self.threads[role])


def second_half_slope(series: list[tuple[float, float]]) -> float:
    """MB/min of a least-squares line through the samples of the second half."""
    if len(series) < 2:
        return float("nan")
    end = series[-1][0]
    half = [(t, mb) for t, mb in series if t >= end / 2] or series[-2:]
    if len(half) < 2:
        half = series[-2:]
    n = len(half)
    mean_t = sum(t for t, _ in half) / n
    mean_mb = sum(mb for _, mb in half) / n
    var = sum((t - mean_t) ** 2 for t, _ in half)
    cov = sum((t - mean_t) * (mb - mean_mb) for t, mb in half)
    return cov / var if var > 0 else float("nan")


def steady_growth(series: list[tuple[float, float]], threads: list[int]) -> float:
    """MB/min over the second half, counting only the intervals between two samples
    with the same number of threads (a thread that starts brings its stack and its
    malloc arena: in ``daemon all``, a satellite's model thread at its first query)."""
    end = series[-1][0] if series else 0.0
    grown_mb = span_min = 0.0
    for k in range(1, len(series)):
        (t0, mb0), (t1, mb1) = series[k - 1], series[k]
        if t0 >= end / 2 and threads[k] == threads[k - 1]:
            grown_mb += mb1 - mb0
            span_min += t1 - t0
    return grown_mb / span_min if span_min > 0 else float("nan")


def rss_and_threads(pid: int) -> tuple[float, int]:
    """The resident set size of a process, in MB, and its threads (Linux /proc)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


# -- the broker ------------------------------------------------------------------------------


def _mosquitto() -> str:
    exe = shutil.which("mosquitto") or next(
        (
            str(p)
            for p in (Path(d) / "mosquitto" for d in ("/usr/sbin", "/usr/local/sbin"))
            if p.is_file()
        ),
        None,
    )
    if exe is None:
        raise RuntimeError(
            "bench soak needs mosquitto (the MQTT broker): apt-get install mosquitto"
        )
    return exe


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def broker(folder: Path) -> Iterator[int]:
    """A mosquitto of our own for the run; its port."""
    port = _free_tcp_port()
    conf = folder / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence false",
        f"log_dest file {folder}/mosquitto.log",
    ]
    if os.geteuid() == 0:  # or it would switch to its own user, who cannot write here
        lines.append("user root")
    conf.write_text("".join(f"{line}\n" for line in lines))
    with open(folder / "mosquitto.out", "wb") as out:
        proc = subprocess.Popen([_mosquitto(), "-c", str(conf)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 20.0
        while not _accepts(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bench soak: mosquitto did not start (see {folder})")
            time.sleep(0.05)
        yield port
    finally:
        stop(proc)


# -- the daemons ----------------------------------------------------------------------------


class Daemons:
    """The daemon processes of one soak, their scenario file and logs."""

    def __init__(
        self, work: Path, mqtt_port: int, roles: list[str], start_t_s: float = START_T_S
    ) -> None:
        self.work = work
        self.start_t_s = start_t_s
        self.roles = roles
        channel_port = free_ports(2 * LINK_PORTS, tcp=4, first=31_000)
        node_port, self.http_port = channel_port + LINK_PORTS, channel_port + 2 * LINK_PORTS
        self.scenario = work / "soak.toml"
        self.scenario.write_text(
            f'format = 1\nname = "bench-soak"\n'
            f'[ground]\nname = "{GROUND}"\n'
            "[capture]\nenabled = false\n"
            f'[mqtt]\nport = {mqtt_port}\nprefix = "{PREFIX}"\n'
            f"[daemon]\nchannel_port = {channel_port}\nnode_port = {node_port}\n"
            f'http_port = {self.http_port}\nstatus_interval_s = 60.0\nout_dir = "{work}/out"\n'
            # the ground's report in the soak's folder; no chart (a benchmark, not a demo)
            f'runs_dir = "{work}/runs"\nreport_charts = false\n'
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def log(self, role: str) -> Path:
        return self.work / f"{role}.log"

    def start(self) -> None:
        anchor = f"{time.time():.6f}"  # one emulated sky for every daemon
        for role in self.roles:
            cmd = [sys.executable, "-m", "linkstack", "daemon", "--scenario", str(self.scenario)]
            cmd += ["--start", f"+{self.start_t_s}", "--anchor", anchor, role]
            with open(self.log(role), "wb") as err:
                self.procs[role] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + READY_S
        for role, proc in self.procs.items():
            while '"msg":"ready"' not in self.log(role).read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"bench soak: the {role} daemon did not start, see {self.log(role)}"
                    )
                time.sleep(0.1)

    def sample(self) -> dict[str, tuple[float, int]]:
        """Each daemon's RSS (MB) and threads."""
        return {role: rss_and_threads(proc.pid) for role, proc in self.procs.items()}

    def get(self, part: str, path: str) -> dict[str, Any]:
        """``GET path`` of the daemon that runs ``part`` (ground or channel)."""
        role = "all" if "all" in self.roles else part
        url = f"http://127.0.0.1:{self.http_port + HTTP_OFFSET[role]}{path}"
        with urllib.request.urlopen(url, timeout=10) as reply:
            doc: dict[str, Any] = json.load(reply)
        return doc

    def counters(self) -> dict[str, Any]:
        """The ground's (or the all-in-one daemon's) ``GET /counters``."""
        return self.get("ground", "/counters")

    def stop(self) -> dict[str, int | None]:
        """SIGTERM to each (the ground writes its report), then their exit codes."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for role, proc in self.procs.items():
            try:
                codes[role] = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                codes[role] = None
        return codes


# -- the run ----------------------------------------------------------------------------------


async def _soak(
    daemons: Daemons,
    mqtt_port: int,
    seconds: float,
    rate_per_s: float,
    sample_s: float,
    drain_s: float,
    tokens: int,
    target: str | None,
) -> tuple[
    list[str], Counter[str], int, dict[str, list[tuple[float, float]]], dict[str, list[int]]
]:
    base = f"{PREFIX}/{GROUND}"
    answers: Counter[str] = Counter()
    errors = 0
    ids: list[str] = []
    series: dict[str, list[tuple[float, float]]] = {role: [] for role in daemons.roles}
    threads: dict[str, list[int]] = {role: [] for role in daemons.roles}

    online = asyncio.Event()
    async with aiomqtt.Client("127.0.0.1", mqtt_port, identifier="linkstack-soak") as client:
        await client.subscribe(f"{base}/answer/+", qos=1)
        await client.subscribe(f"{base}/online", qos=1)

        async def listen() -> None:
            nonlocal errors
            async for message in client.messages:
                if message.topic.matches(f"{base}/online"):
                    if message.payload == b"true":
                        online.set()
                    continue
                qid = str(message.topic).rsplit("/", 1)[1]
                answers[qid] += 1
                if json.loads(bytes(message.payload)).get("type") != "answer":
                    errors += 1

        listener = asyncio.get_running_loop().create_task(listen())
        async with asyncio.timeout(READY_S):  # the ground subscribed to queries
            await online.wait()
        t0 = time.monotonic()

        def sample() -> None:
            minutes = (time.monotonic() - t0) / 60
            for role, (mb, n_threads) in daemons.sample().items():
                series[role].append((minutes, mb))
                threads[role].append(n_threads)
            rss = "  ".join(
                f"{role} {series[role][-1][1]:.1f} MB {threads[role][-1]} threads"
                for role in daemons.roles
            )
            done = sum(1 for qid in ids if answers[qid])
            print(
                f"  {minutes:5.1f} min  sent {len(ids):>5}  answered {done:>5}  rss {rss}",
                flush=True,
            )

        sample()
        next_sample = t0 + sample_s
        n = 0
        while (now := time.monotonic()) < t0 + seconds:
            if now >= next_sample:
                sample()
                next_sample += sample_s
            due = t0 + n / rate_per_s
            if now >= due:
                qid = f"soak-{n:06d}"
                body: dict[str, Any] = {
                    "id": qid,
                    "prompt": f"Soak query {n}?",
                    "params": {"max_new_tokens": tokens},
                }
                if target is not None:
                    body["target"] = target
                await client.publish(f"{base}/query", json.dumps(body).encode(), qos=1)
                ids.append(qid)
                n += 1
            await asyncio.sleep(max(0.0, min(due, next_sample) - time.monotonic()))
        sample()  # the last of the series: the end of the publishing
        drain_until = time.monotonic() + drain_s
        while any(answers[qid] == 0 for qid in ids) and time.monotonic() < drain_until:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # a duplicate would come within this
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    return ids, answers, errors, series, threads


def run(
    minutes: float,
    rate_per_s: float,
    *,
    separate: bool = False,
    sample_s: float = 60.0,
    drain_s: float = 300.0,
    tokens: int = 4,
    target: str | None = None,
    work: Path | None = None,
    start_t_s: float = START_T_S,
) -> SoakResult:
    """A soak of ``minutes`` at ``rate_per_s`` queries a second (see the module
    docstring), for ``target`` (None: any satellite), from scenario instant
    ``start_t_s``."""
    roles = ["channel", "sat", "ground"] if separate else ["all"]
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        work.mkdir(parents=True, exist_ok=True)
        mqtt_port = stack.enter_context(broker(work))
        daemons = Daemons(work, mqtt_port, roles, start_t_s)
        try:
            daemons.start()
            ids, answers, errors, series, threads = asyncio.run(
                _soak(
                    daemons, mqtt_port, minutes * 60, rate_per_s, sample_s, drain_s, tokens, target
                )
            )
            app = daemons.counters()["app"]
            held, client = app["held"], app["client"]
            unanswered = daemons.get("ground", "/pending")["pending"]
            isl = daemons.get("channel", "/counters")["channel"].get("isl", {})
        finally:
            codes = daemons.stop()
    return SoakResult(
        minutes,
        rate_per_s,
        roles,
        len(ids),
        answers,
        errors,
        series,
        held,
        codes,
        ids,
        threads,
        unanswered,
        isl,
        client,
    )


def describe_unanswered(query: dict[str, Any]) -> list[str]:
    """Lines that say where a query without an answer is (one entry of ``/pending``)."""
    state = "waiting in the ground queue" if query["queued"] else "left the ground"
    lines = [
        f"{query['id']}: submitted at t {query['submit_t_s']:.3f} s, {query['age_s']:.0f} s "
        f"ago, sent {query['sent']} time(s), {state}; target {query['target'] or 'any'}, "
        f"in flight on {', '.join(query['in_flight_on']) or 'none'}"
    ]
    for t in query["transfers"]:
        first = t["first_cltu_t_s"]
        lines.append(
            f"  uplink through {t['satellite']}: first CLTU at "
            + (f"t {first:.3f} s" if first is not None else "(not yet)")
            + (", COP-1 still holds a packet" if t["on_ground"] else ", acknowledged by COP-1")
        )
    for h in query["hops"]:
        end = h["end_t_s"]
        lines.append(
            f"  {'query ' if h['message'] == 'q' else 'answer'} {h['kind']:8} "
            f"{h['src']} -> {h['dst']}: left t {h['start_t_s']:.3f} s, "
            + (f"arrived t {end:.3f} s" if end is not None else "OPEN (never arrived)")
        )
    return lines


def print_results(r: SoakResult) -> None:
    print(
        f"\n# linkstack bench soak: {r.minutes:g} min at {r.rate_per_s:g} queries/s "
        f"({describe_machine()})"
    )
    print(
        f"queries {r.sent}: answered once {r.answered_once}, lost {r.lost}, "
        f"duplicated {r.duplicated} (error answers {r.errors})"
    )
    for role, points in r.rss_mb.items():
        first, last = points[0][1], points[-1][1]
        n_threads = r.threads.get(role) or [0]
        print(
            f"{role}: RSS {first:.1f} MB at start, {last:.1f} MB at the end; "
            f"slope over the second half {r.slope_mb_per_min(role):+.3f} MB/min "
            f"({r.steady_mb_per_min(role):+.3f} between samples with the same threads); "
            f"threads {n_threads[0]} at start, {n_threads[-1]} at the end"
        )
        print("  series (min, MB): " + ", ".join(f"({t:.1f}, {mb:.1f})" for t, mb in points))
    print(f"held by the ground at the end: {r.held}")
    dropped = {k: v for k, v in sorted(r.isl.items()) if k.startswith("dropped")}
    print(f"laser links: {r.isl.get('sent', 0)} units sent, dropped {dropped or 0}")
    sent_again = {k: r.client.get(k, 0) for k in ("resent_overdue", "retries", "duplicates")}
    print(f"ground client: queries sent again {sent_again}")
    if r.unanswered:
        print(f"without an answer at the end ({len(r.unanswered)}):")
        for query in r.unanswered:
            print("\n".join(f"  {line}" for line in describe_unanswered(query)))
    print(f"exit codes: {r.exit_codes}")


def main(
    minutes: float,
    rate_per_s: float,
    *,
    separate: bool = False,
    sample_s: float = 60.0,
    target: str | None = None,
    start_t_s: float = START_T_S,
) -> int:
    """``linkstack bench soak``: run, print; 1 if a query was lost or duplicated or a
    daemon did not exit cleanly."""
    what = "channel, sat and ground daemons" if separate else "linkstack daemon all"
    to = f" for {target}" if target is not None else ""
    print(
        f"# soak: {what}, {minutes:g} min at {rate_per_s:g} queries/s{to}, "
        f"RSS every {sample_s:g} s, from scenario instant {start_t_s:g} s",
        flush=True,
    )
    r = run(
        minutes,
        rate_per_s,
        separate=separate,
        sample_s=sample_s,
        target=target,
        start_t_s=start_t_s,
    )
    print_results(r)
    ok = r.lost == 0 and r.duplicated == 0 and all(code == 0 for code in r.exit_codes.values())
    return 0 if ok else 1
