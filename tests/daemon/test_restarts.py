"""Crash recovery in seconds, with real processes (issue 13, items 5 and 10).

The channel, sat (tiny model) and ground daemons run as in
tests/daemon/test_daemon_processes.py, with a Mosquitto of the test's own; a
persistent subscriber (``Tally``) counts every answer published per id. Queries are
asked over MQTT (some to CS-08 in view, some to any satellite, one relayed to CS-10),
and once the first answer is down, with the others on board (running, queued, or
their answers on the way), the satellite daemon is killed (SIGKILL) and started
again: every query must be answered, none twice, within ``RECOVERY_S`` of the
daemon's return. Then the same with the channel daemon (what it loses: the units on
its links), within ``CHANNEL_RECOVERY_S``. Without the ground's restart detection the
queries lost on board wait for the client's retry (``retry_after_s``, 900 s) and the
test times out; without the re-send on a CLCW break, the channel's lost answers wait
for the satellite's repetition (about 20 s).

The short form (6 queries, one kill of each) runs in ``make test``; the long form,
marked slow, kills each daemon three times with 12 queries each round.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.daemon.test_daemon_processes import HANG_S, Run, publish_queries, query
from tests.daemon.test_queue_faults import Tally

RECOVERY_S = 30.0  # the target: in-flight queries answered this soon after the return
# a channel restart loses only units on its links; the ground sends the queries in flight
# again when the CLCW stream comes back mid-pass, and the satellite answers again at once
# what it had answered (without that: at its next repetition, repeat_s = 20 s)
# (the test also checks that the ground did send them again on the CLCW break; on a
# loaded 2-core machine the answers have taken up to 20 s, within the 30 s)
CHANNEL_RECOVERY_S = RECOVERY_S
TOKENS = 256  # about 0.6 s of the tiny model per query here: several on board at once


def _queries(tag: str, n: int) -> list[dict]:
    out = []
    for k in range(n):
        qid = f"{tag}-{k}"
        extra = {"target": "CS-08"} if k % 3 == 0 else {}
        if k == n - 1:
            extra = {"target": "CS-10"}  # out of view: relayed over a laser link
        q = query(qid, f"Through a crash {qid}", **extra)
        q["params"]["max_new_tokens"] = TOKENS
        out.append(q)
    return out


async def _kill_and_return(run: Run, tally: Tally, role: str, tag: str, n: int) -> float:
    """Ask ``n`` queries, SIGKILL the ``role`` daemon once the first is answered, start
    it again; the seconds from its return (ready) to the last answer."""
    queries = _queries(tag, n)
    ids = [q["id"] for q in queries]
    proc = next(p for r, p, _ in reversed(run.procs) if r == role and p.poll() is None)
    await publish_queries(tally.port, queries)
    async with asyncio.timeout(HANG_S):
        while not set(ids) & set(tally.counts()):
            await asyncio.sleep(0.02)
    assert run.stop(proc, signal.SIGKILL) == -signal.SIGKILL
    early = set(ids) & set(tally.counts())
    assert len(early) < n, "every query was answered before the kill: nothing in flight"
    await asyncio.sleep(0.5)
    proc = run.start(role)
    await run.ready(proc)
    back_t = time.monotonic()
    async with asyncio.timeout(HANG_S):
        while not set(ids) <= set(tally.counts()):
            await asyncio.sleep(0.05)
    recovery_s = time.monotonic() - back_t
    await asyncio.sleep(1.5)  # time for a second answer, if one were coming
    counts = tally.counts()
    assert {i: counts.get(i, 0) for i in ids} == dict.fromkeys(ids, 1)  # 0 lost, 0 twice
    assert all(tally.of("answer", i)[0]["type"] == "answer" for i in ids)
    print(
        f"\n{role} killed with {n - len(early)} of {n} in flight: all answered "
        f"{recovery_s:.1f} s after its return"
    )
    return recovery_s


async def _crash_rounds(run: Run, broker_port: int, rounds: int, n: int) -> None:
    procs = [run.start(role) for role in ("channel", "sat", "ground")]
    await run.ready(*procs)
    async with Tally(broker_port, name="tally-restarts") as tally:
        for r in range(rounds):
            sat_s = await _kill_and_return(run, tally, "sat", f"s{r}", n)
            assert sat_s < RECOVERY_S
            channel_s = await _kill_and_return(run, tally, "channel", f"c{r}", n)
            assert channel_s < CHANNEL_RECOVERY_S
    ground = next(p for r, p, _ in run.procs if r == "ground")
    events = run.records(ground)
    restarts = [m for m in events if m["msg"] == "satellite restarted"]
    assert restarts and any(m["resent"] for m in restarts), restarts
    assert any(m["resent"] for m in events if m["msg"] == "clcw stream broke")
    live = [p for _, p, _ in run.procs if p.poll() is None]
    run.stop_all(*live)


async def test_sat_and_channel_killed_mid_run_lose_and_repeat_no_answer(run, broker):
    await _crash_rounds(run, broker.port, rounds=1, n=6)


@pytest.mark.slow
async def test_sat_and_channel_killed_three_times_each_lose_and_repeat_no_answer(run, broker):
    await _crash_rounds(run, broker.port, rounds=3, n=12)
