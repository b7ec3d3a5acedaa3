"""Each answer once on MQTT (issue 13, items 7 and 10), with real daemons and a real
Mosquitto started here: a ground killed (SIGKILL) with answers stored but not yet
published, a broker that goes away while answers come down, ids asked again. A
persistent subscriber counts what is published: every query answered (0 lost), no
answer published twice (0 duplicated); the timeline of a query comes before its
answer; each query runs once on board.

The daemons share one emulated sky as in tests/daemon/test_daemon_processes.py
(whose ``Run`` starts them), so that nothing waits for a pass.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from tests.daemon.test_daemon_processes import HANG_S, Run, publish_queries, query
from tests.daemon.test_queue_faults import Tally


async def states(run: Run, ids: list[str], state: str) -> None:
    """Wait until every one of ``ids`` is in ``state`` in the ground's queue."""
    async with asyncio.timeout(HANG_S):
        while run.queue_states() != dict.fromkeys(ids, state):
            await asyncio.sleep(0.05)


def repeated(tally: Tally, qid: str) -> list[dict]:
    return [body for body in tally.of("accepted", qid) if body.get("repeated")]


def timeline_first(tally: Tally, qid: str) -> bool:
    kinds = [kind for kind, i, _ in tally.messages if i == qid and kind != "accepted"]
    return kinds == ["timeline", "answer"]


async def test_a_ground_killed_with_answers_not_yet_published_publishes_each_once(run, broker):
    """The queries stored, the broker stopped, the answers down and stored (answered,
    not published: no broker to take them), the ground killed; the broker and the
    ground started again: each answer published once. Asked again (the same ids, as a
    client that retries): nothing more; ``resend``: one more copy, of that id only."""
    sat = run.start("sat")
    ground = run.start("ground")
    await run.ready(ground)
    ids = [f"k{i}" for i in range(4)]
    async with Tally(broker.port) as tally:
        await publish_queries(broker.port, [query(i, f"Killed {i}") for i in ids])
        await states(run, ids, "submitted")
        await asyncio.to_thread(broker.stop)
        channel = run.start("channel")  # now the queries go up and the answers come down
        await run.ready(sat, channel)
        await states(run, ids, "answered")
        assert run.stop(ground, signal.SIGKILL) == -signal.SIGKILL
        await asyncio.to_thread(broker.start)
        ground = run.start("ground")
        await run.ready(ground)
        counts = await tally.until(set(ids))
        assert counts == dict.fromkeys(ids, 1), counts  # none lost, none twice
        assert all(tally.of("answer", i)[0]["type"] == "answer" for i in ids)
        assert all(timeline_first(tally, i) for i in ids), tally.messages
        await states(run, ids, "published")

        # asked again, as a client that did not hear the PUBACK would (the broker may
        # have delivered some again already: those that it had not had the PUBACK of
        # when it stopped)
        before = {i: len(repeated(tally, i)) for i in ids}
        await publish_queries(broker.port, [query(i, f"Killed {i}") for i in ids])
        async with asyncio.timeout(HANG_S):
            while not all(len(repeated(tally, i)) > before[i] for i in ids):
                await asyncio.sleep(0.05)
        assert all(repeated(tally, i)[-1]["state"] == "published" for i in ids)
        for i in ids:
            # (accepted/<id> is said once and not kept: the first may be lost with the
            # broker, or come twice, the broker stopped with it on its way to us)
            accepted = tally.of("accepted", i)
            assert {(a["id"], a["t_s"]) for a in accepted} == {(i, accepted[0]["t_s"])}
            assert all(a["state"] == "submitted" for a in accepted if "repeated" not in a)
            assert all(a["state"] in ("answered", "published") for a in repeated(tally, i))
        await asyncio.sleep(1.0)
        assert tally.counts() == dict.fromkeys(ids, 1)

        # asked for once more, explicitly: one more copy of that answer
        await publish_queries(broker.port, [query(ids[0], "Killed 0", resend=True)])
        async with asyncio.timeout(HANG_S):
            while tally.counts()[ids[0]] < 2:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        assert tally.counts() == {ids[0]: 2} | dict.fromkeys(ids[1:], 1)
        assert tally.of("answer", ids[0])[0] == tally.of("answer", ids[0])[1]
    await states(run, ids, "published")
    run.stop_all(ground, sat, channel)
    stopped = next(m for m in run.records(sat) if m["msg"] == "stopped")
    assert stopped["counters"]["satellites"]["services"]["inferences"] == len(ids)


async def test_answers_that_come_down_while_the_broker_is_away_are_published_once(run, broker):
    """The broker stopped with queries stored (one from ``linkstack ask``), the answers
    come down meanwhile, the broker back: each answer published once, and ``ask`` (its
    session kept by the broker, its query published again when it reconnects: a
    repeated id) prints its answer once."""
    sat = run.start("sat")
    ground = run.start("ground")
    await run.ready(ground)
    ids = [f"b{i}" for i in range(3)]
    async with Tally(broker.port) as tally:
        ask = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "linkstack", "ask", "--scenario", str(run.scenario)),
            *("--id", "q-ask", "--max-new-tokens", "8", "--timeout", str(HANG_S)),
            "Through a broker outage, from the command line",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await publish_queries(broker.port, [query(i, f"Through an outage {i}") for i in ids])
        everyone = [*ids, "q-ask"]
        await states(run, everyone, "submitted")
        await asyncio.to_thread(broker.stop)
        channel = run.start("channel")
        await run.ready(sat, channel)
        await states(run, everyone, "answered")
        await asyncio.sleep(0.5)
        assert run.queue_states() == dict.fromkeys(everyone, "answered")  # held: no broker
        await asyncio.to_thread(broker.start)  # back, on the same port, its sessions kept
        counts = await tally.until(set(everyone))
        out, err = await asyncio.wait_for(ask.communicate(), HANG_S)
        assert counts == dict.fromkeys(everyone, 1), counts  # none lost, none twice
        assert all(timeline_first(tally, i) for i in everyone), tally.messages
    assert ask.returncode == 0, err.decode()
    assert out.decode().count("answer from CS-") == 1, out.decode()
    assert "retrying" in err.decode()  # it did see the broker go
    await states(run, everyone, "published")
    warnings = [m for m in run.records(ground) if m["msg"] == "mqtt broker unreachable"]
    assert warnings, "the daemon saw the broker go"
    run.stop_all(ground, sat, channel)
