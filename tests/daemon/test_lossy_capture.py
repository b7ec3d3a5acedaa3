"""Replaying a lossy daemon capture gives exactly what the receivers got (issue 14,
item 5).

The channel daemon writes each unit as it delivers it, after the link's bit errors,
and never a unit the link lost: the receivers' view. Real channel, sat and ground
daemons with a lossy, noisy uplink and downlink answer queries for the satellite in
view; once nothing moves, they stop, each saying what its receivers counted; then
``replay`` of ``channel.pcap`` must count the same CLTUs and TM CADUs, decode the same
frames, correct the same Reed-Solomon symbols and refuse the same units, link family
by link family, as the satellites' and the ground's own receivers did.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import httpx

from linkstack.capture.reader import read_units
from linkstack.capture.replay_cli import replay_file
from linkstack.capture.replay_link import DOWNLINK, UPLINK
from tests.daemon.test_daemon_processes import Listener, publish_queries, query


def _stopped(run, proc) -> dict:
    return next(m for m in run.records(proc) if m["msg"] == "stopped")["counters"]


async def _uplink_quiet(run, quiet_s: float = 3.0) -> None:
    """Until the channel has taken no CLTU for ``quiet_s`` (longer than COP-1's T1 of
    2 s, so a retransmission still to come would have come): the ground has nothing
    more to send, and stopping the satellites loses no CLTU on its way."""
    url = f"http://127.0.0.1:{run.http_port + 1}/counters"  # the channel's (+1)
    last, since = None, asyncio.get_running_loop().time()
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while True:
            sent = (await http.get(url, timeout=5)).json()["channel"]["uplink"].get("sent")
            now = asyncio.get_running_loop().time()
            if sent != last:
                last, since = sent, now
            elif now - since >= quiet_s:
                return
            await asyncio.sleep(0.25)


async def test_replaying_the_channels_capture_of_a_lossy_run_counts_what_the_receivers_got(
    run, broker
):
    with run.scenario.open("a") as f:
        f.write("[links.uplink]\nloss = 0.2\nber = 1e-3\n")
        f.write("[links.downlink]\nloss = 0.1\nber = 3e-5\n")
    channel = run.start("channel")
    await run.ready(channel)
    ground = run.start("ground")  # listening before the first TM comes down
    await run.ready(ground)
    sat = run.start("sat")
    await run.ready(sat)
    ids = [f"lossy-{k}" for k in range(4)]
    async with Listener(broker.port, "test-listener-lossy") as listener:
        await publish_queries(broker.port, [query(i, f"Lossy {i}", target="CS-08") for i in ids])
        got = await listener.answers(ids)
    assert all(got[i]["type"] == "answer" for i in ids)
    await _uplink_quiet(run)  # acknowledgements and retransmissions settle
    # the sources stop before their receivers: the satellites (TM), then the ground
    assert run.stop(sat, signal.SIGTERM) == 0
    await asyncio.sleep(1.0)  # the last CADUs reach the ground
    assert run.stop(ground, signal.SIGTERM) == 0
    assert run.stop(channel, signal.SIGTERM) == 0
    up = _stopped(run, sat)["satellites"]["uplink"]
    down = _stopped(run, ground)["ground"]["downlink"]
    lost = _stopped(run, channel)["channel"]
    path = run.out / "channel.pcap"
    units = Counter(u.layer for u in read_units(path))
    # (the replay runs a loop of its own: not in this test's)
    result = await asyncio.to_thread(replay_file, path, say=lambda _: None)
    links = result.replayer.links.values()

    def summed(family: str, of: str) -> Counter[str]:
        total: Counter[str] = Counter()
        for link in links:
            rx = getattr(link, of)
            if link.family == family and rx is not None:
                total.update(rx.stats)
        return total

    cltu, cadu = summed(UPLINK, "cltu"), summed(DOWNLINK, "cadu")
    # every unit the channel delivered was received, and is in the capture once
    assert up["cltu_cltus"] == units["cltu"] == cltu["cltus"] > 0
    assert down["cadu_cadus"] == units["tm_cadu"] == cadu["cadus"] > 0
    # the replay decodes them as the receivers did, damage and all
    assert {k: v for k, v in up.items() if k.startswith("cltu_") and v} == {
        f"cltu_{k}": v for k, v in cltu.items() if v
    }
    assert {k: v for k, v in down.items() if k.startswith("cadu_") and v} == {
        f"cadu_{k}": v for k, v in cadu.items() if v
    }
    assert up["cltu_bits_corrected"] > 0 and down["cadu_rs_symbols_corrected"] > 0  # noisy
    # and what the links lost is in the channel's counters, not in the file
    for kind, layer in (("uplink", "cltu"), ("downlink", "tm_cadu")):
        links_of = lost[kind]
        assert links_of["dropped"] > 0, links_of
        assert links_of.get("delivered", 0) + links_of.get("corrupted", 0) == units[layer]
