"""A flood on every port of running daemons, while queries flow (real processes).

The channel, sat and ground daemons run as in tests/daemon/test_daemon_processes.py,
with a real Mosquitto broker. A thread sends datagrams at 10,000 a second to every
UDP port of the three (the channel's ingress ports and the ends' ports): random
octets of every length, and well-formed units (CLTUs, TM and AOS CADUs, some of them
with bits flipped, bare and behind a link header) from a port that is no end's peer.
Queries asked during the flood must be answered with at most a second more than
without it, nothing the flood sent may change the state of COP-1 (no alert, no
resynchronisation), every datagram of it is refused and counted, and the daemons'
memory stays flat.

The short form runs in ``make test`` (50,000 datagrams); the long form, marked slow,
sends 1,000,000 (100 s).
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from linkstack.capture.link_header import link_header
from linkstack.ccsds.coding.chains import CaduTransmitter
from linkstack.ccsds.coding.cltu import encode_cltu
from linkstack.runtime.interface_settings import DEFAULT_SAT_PORTS, end_count
from tests.daemon.test_daemon_processes import (
    LINKS,
    SATELLITES,
    Listener,
    Run,
    publish_queries,
    query,
)

RATE_PER_S = 10_000
EXTRA_DELAY_S = 1.0
RSS_GROWTH_MB = 20.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _counters(run: Run, offset: int) -> dict:
    import json
    import urllib.request

    url = f"http://127.0.0.1:{run.http_port + offset}/counters"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


class Flood:
    """``count`` datagrams at RATE_PER_S to every port, from a stranger's port."""

    def __init__(self, run: Run, count: int, seed: int = 1) -> None:
        rng = random.Random(seed)
        ends = end_count(SATELLITES, DEFAULT_SAT_PORTS)  # the ground's and one a satellite
        self.ports = [run.channel_port + k for k in range(ends)]
        self.ports += [run.node_port + k for k in range(ends)]
        cadu = CaduTransmitter(1115)
        shaped = [encode_cltu(rng.randbytes(200), randomize=True) for _ in range(8)]
        shaped += cadu.cadus([rng.randbytes(1115) for _ in range(8)])
        # as the daemons send them, behind the link header of any link, and bare
        shaped += [link_header(rng.randrange(LINKS)) + unit for unit in shaped]
        flipped = []
        for unit in shaped:
            damaged = bytearray(unit)
            for _ in range(3):
                damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            flipped.append(bytes(damaged))
        self.units = shaped + flipped + [rng.randbytes(rng.randrange(1, 1400)) for _ in range(64)]
        self.count = count
        self.sent = 0
        self._rng = rng
        self._thread = threading.Thread(target=self._send, name="flood", daemon=True)

    def _send(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rng, units, ports = self._rng, self.units, self.ports
        batch = RATE_PER_S // 100
        t0 = time.monotonic()
        while self.sent < self.count:
            for _ in range(min(batch, self.count - self.sent)):
                # a port nobody listens on reports ECONNREFUSED at a later send
                with contextlib.suppress(OSError):
                    sock.sendto(rng.choice(units), ("127.0.0.1", rng.choice(ports)))
                self.sent += 1
            ahead = t0 + self.sent / RATE_PER_S - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        sock.close()

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


async def _ask(run_broker_port: int, listener: Listener, qid: str) -> float:
    t0 = time.monotonic()
    await publish_queries(run_broker_port, [query(qid, f"During the flood, {qid}?")])
    await listener.answers([qid])
    return time.monotonic() - t0


def _cop1(counters: dict) -> Counter:
    """The ground's COP-1 events a flood could cause (alerts, resyncs, resumes, a
    satellite restart read in the CLCW)."""
    c = counters["ground"]["cop1"]
    return Counter(
        {k: v for k, v in c.items() if k.startswith(("alert_", "sync_", "auto_", "farm_reset_"))}
    )


# CS-08 (over Sanya) and CS-06 (rising over Mohe) are the two satellites in contact in
# this window: the ground synchronises COP-1 once with each, at its first CLCW
LEGITIMATE = Counter(sync_set_vr=2)


async def _flood_while_asking(run: Run, broker_port: int, count: int) -> None:
    procs = {role: run.start(role) for role in ("channel", "sat", "ground")}
    await run.ready(*procs.values())
    async with Listener(broker_port) as listener:
        quiet_s = await _ask(broker_port, listener, "q-before")
        rss0 = {role: _rss_mb(p.pid) for role, p in procs.items()}
        cop1_before = _cop1(_counters(run, 0))
        flood = Flood(run, count)
        flood.start()
        delays = []
        while flood.running:
            delays.append(await _ask(broker_port, listener, f"q-flood-{len(delays)}"))
        flood.join()
        time.sleep(1.0)  # what was in flight settles
        after = {role: _counters(run, offset) for role, offset in (("ground", 0), ("channel", 1))}
        after["sat"] = _counters(run, 2)
        rss1 = {role: _rss_mb(p.pid) for role, p in procs.items()}
        answers = await listener.answers(
            ["q-before", *(f"q-flood-{i}" for i in range(len(delays)))]
        )
    assert all(a.get("type") != "error" for a in answers.values()), answers
    assert delays and max(delays) <= quiet_s + EXTRA_DELAY_S, (quiet_s, delays)
    # nothing the flood sent reached COP-1: no alert, no other resync, no resume
    assert cop1_before <= LEGITIMATE and _cop1(after["ground"]) <= LEGITIMATE
    refused = sum(sum(c.values()) for doc in after.values() for c in doc["refused"].values())
    assert refused >= 0.99 * flood.sent, (refused, flood.sent)  # some hit unbound ports
    for role in procs:
        assert rss1[role] - rss0[role] <= RSS_GROWTH_MB, (role, rss0, rss1)
    run.stop_all(*procs.values())


async def test_a_flood_on_every_port_is_refused_while_queries_are_answered(run, broker):
    await _flood_while_asking(run, broker.port, 50_000)


@pytest.mark.slow
async def test_a_million_datagram_flood_leaves_memory_flat(run, broker):
    await _flood_while_asking(run, broker.port, 1_000_000)
