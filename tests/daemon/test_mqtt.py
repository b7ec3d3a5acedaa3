"""linkstack.daemon.mqtt: the request format, and the bridge and ``ask`` against a real broker."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json

import aiomqtt
import pytest

from linkstack.daemon import mqtt
from linkstack.daemon.ask import ask, ask_identifier
from linkstack.daemon.mqtt import (
    MqttBridge,
    Request,
    RequestError,
    Topics,
    answer_json,
    dumps,
    parse_request,
)
from linkstack.runtime import clock as clk
from linkstack.runtime.daemon_settings import MqttSettings
from payloads.messages import Answer, ErrorMessage, Params
from tests.daemon.test_mqtt_broker import Broker, running_broker

TOPICS = Topics("linkstack", "mcc")


@pytest.fixture
def broker(tmp_path):
    with running_broker(tmp_path / "broker") as b:
        yield b


# -- requests -------------------------------------------------------------------------------


def test_a_full_request_is_read():
    req = parse_request(
        json.dumps(
            {
                "prompt": "hi",
                "id": "q-1",
                "target": "CS-07",
                "stream": True,
                "params": {"max_new_tokens": 8, "temperature": 0.5, "seed": 3, "thinking": True},
                "client": "me",
            }
        ).encode()
    )
    assert req == Request("hi", "q-1", "CS-07", True, Params(8, 0.5, 1.0, True, 3), "me")
    assert parse_request(b'{"prompt": "x"}') == Request("x")


@pytest.mark.parametrize(
    ("payload", "where", "has_id"),
    [
        (b"not json", "not JSON", False),
        (b"[1, 2]", "JSON object", False),
        (b'{"id": "a/b", "prompt": "x"}', "id:", False),
        (b'{"id": "q", "prompt": ""}', "prompt:", True),
        (b'{"id": "q", "prompt": "x", "promt": "y"}', "promt: unknown key", True),
        (b'{"id": "q", "prompt": "x", "stream": 1}', "stream:", True),
        (b'{"id": "q", "prompt": "x", "params": {"max_new_tokens": 0}}', "max_new_tokens", True),
        (b'{"id": "q", "prompt": "x", "params": {"temperature": "hot"}}', "temperature", True),
        (b'{"id": "q", "prompt": "x", "params": {"top_p": 0}}', "top_p", True),
        (b'{"id": "q", "prompt": "x", "params": {"beam": 2}}', "params.beam", True),
        (b'{"id": "q", "prompt": "x", "target": 7}', "target", True),
    ],
)
def test_a_bad_request_is_refused_naming_what_is_wrong(payload, where, has_id):
    with pytest.raises(RequestError) as info:
        parse_request(payload)
    assert where in info.value.detail
    assert (info.value.query_id == "q") is has_id


def test_answers_go_out_as_json():
    a = Answer("q", "text", 3, 4, "stop", "tiny", "m", True, "CS-01")
    assert answer_json(a)["type"] == "answer" and answer_json(a)["text"] == "text"
    e = ErrorMessage("q", "busy", "later", "CS-01")
    assert answer_json(e) == {
        "type": "error",
        "id": "q",
        "code": "busy",
        "detail": "later",
        "satellite": "CS-01",
        "t_s": None,
    }
    assert json.loads(dumps({"x": float("nan")})) == {"x": None}


# -- against a broker --------------------------------------------------------------------------


def settings(port: int) -> MqttSettings:
    return MqttSettings(port=port, reconnect_min_s=0.1, reconnect_max_s=0.5)


async def wait_for(predicate, timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_the_bridge_takes_queries_and_reconnects_after_the_broker_restarts(
    broker: Broker,
):
    clock = clk.WallClock()
    got: list[bytes] = []
    connects = 0

    async def on_connected() -> None:
        nonlocal connects
        connects += 1

    bridge = MqttBridge(settings(broker.port), TOPICS, clock, got.append, on_connected)
    task = asyncio.get_running_loop().create_task(bridge.run())
    try:
        await wait_for(lambda: bridge.is_connected)
        async with aiomqtt.Client("127.0.0.1", broker.port) as peer:
            await peer.subscribe(TOPICS.online, qos=1)
            await peer.publish(TOPICS.query, b'{"prompt": "one"}', qos=1)
            await wait_for(lambda: len(got) == 1)
            async with asyncio.timeout(5):
                async for message in peer.messages:  # retained: online
                    assert bytes(message.payload) == b"true"
                    break
        assert await bridge.publish("x/y", b"z", qos=1)
        await asyncio.to_thread(broker.stop)
        await wait_for(lambda: not bridge.is_connected)
        assert not await bridge.publish("x/y", b"z", qos=1)  # offline: refused, no raise
        await asyncio.to_thread(broker.start)
        await wait_for(lambda: bridge.is_connected)
        async with aiomqtt.Client("127.0.0.1", broker.port) as peer:
            await peer.publish(TOPICS.query, b'{"prompt": "two"}', qos=1)
            await wait_for(lambda: len(got) == 2)
        assert [json.loads(g)["prompt"] for g in got] == ["one", "two"]
        assert connects == 2 and bridge.stats["disconnections"] >= 1
        await bridge.close()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_queries_published_while_the_daemon_is_away_wait_for_it(broker: Broker):
    """A persistent session: QoS 1 queries sent while the bridge is disconnected are
    delivered when it comes back."""
    clock = clk.WallClock()
    got: list[bytes] = []
    bridge = MqttBridge(settings(broker.port), TOPICS, clock, got.append)
    task = asyncio.get_running_loop().create_task(bridge.run())
    await wait_for(lambda: bridge.is_connected)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with aiomqtt.Client("127.0.0.1", broker.port) as peer:
        await peer.publish(TOPICS.query, b'{"prompt": "while away"}', qos=1)
    bridge = MqttBridge(settings(broker.port), TOPICS, clock, got.append)
    task = asyncio.get_running_loop().create_task(bridge.run())
    try:
        await wait_for(lambda: len(got) == 1)
        assert json.loads(got[0])["prompt"] == "while away"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_ask_prints_the_streamed_answer_and_its_timeline(broker: Broker):
    """``ask`` against a stand-in ground that answers on the documented topics."""

    async def ground() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as c:
            await c.publish(TOPICS.online, b"true", qos=1, retain=True)
            await c.subscribe(TOPICS.query, qos=1)
            async for message in c.messages:
                req = json.loads(bytes(message.payload))
                qid = req["id"]
                for seq, text in enumerate(["Hel", "lo"]):
                    body = {"type": "chunk", "id": qid, "seq": seq, "text": text, "t_s": 1.0}
                    await c.publish(TOPICS.chunk(qid), dumps(body))
                answer = Answer(qid, "Hello", 2, 2, "stop", "tiny", "m", True, "CS-03")
                await c.publish(TOPICS.answer(qid), dumps(answer_json(answer)), qos=1)
                timeline = {
                    "query_id": qid,
                    "legs_s": {"uplink": 0.01, "generation": 0.5},
                    "total_s": 0.51,
                }
                await c.publish(TOPICS.timeline(qid), dumps(timeline), qos=1)
                return

    task = asyncio.get_running_loop().create_task(ground())
    await asyncio.sleep(0.2)  # subscribed
    out, err = io.StringIO(), io.StringIO()
    status = await ask(
        settings(broker.port),
        "mcc",
        Request("hello?", "ask-1", stream=True),
        timeout_s=15,
        out=out,
        err=err,
    )
    await task
    text = out.getvalue()
    assert status == 0, err.getvalue()
    assert text.startswith("Hello\nanswer from CS-03 (2 tokens, stop; m (random weights: noise)):")
    assert "legs   uplink 10.0 ms, generation 500.0 ms  =  510.0 ms" in text


async def say_online(port: int, payload: bytes) -> None:
    """What a ground's bridge leaves retained on ``online`` (its will says false)."""
    async with aiomqtt.Client("127.0.0.1", port) as c:
        await c.publish(TOPICS.online, payload, qos=1, retain=True)


async def test_ask_says_when_no_answer_comes(broker: Broker):
    await say_online(broker.port, b"true")  # online, and never answers
    out, err = io.StringIO(), io.StringIO()
    status = await ask(
        settings(broker.port), "mcc", Request("anyone?", "ask-0"), timeout_s=0.5, out=out, err=err
    )
    assert status == 3 and "ask-0: no answer within 0.5 s" in err.getvalue()


@pytest.mark.parametrize(
    ("online", "said"),
    [
        (None, "no ground daemon 'mcc' on broker 127.0.0.1:"),  # none ever connected
        (b"false", "the ground daemon 'mcc' is offline: linkstack/mcc/online says false"),
    ],
)
async def test_ask_says_at_once_that_the_ground_is_not_online(broker: Broker, online, said):
    if online is not None:
        await say_online(broker.port, online)
    out, err = io.StringIO(), io.StringIO()
    loop = asyncio.get_running_loop()
    start = loop.time()
    status = await ask(
        settings(broker.port), "mcc", Request("anyone?"), timeout_s=1800, out=out, err=err
    )
    assert loop.time() - start < 5.0  # not the timeout, nor ONLINE_CHECK_S: the probe
    assert status == 5 and said in err.getvalue(), err.getvalue()
    assert out.getvalue() == ""


async def test_ask_says_at_once_that_the_broker_cannot_be_reached(tmp_path):
    with running_broker(tmp_path / "gone") as gone:
        port = gone.port  # a port where a broker was, and is no more
    out, err = io.StringIO(), io.StringIO()
    loop = asyncio.get_running_loop()
    start = loop.time()
    status = await ask(settings(port), "mcc", Request("anyone?"), timeout_s=1800, out=out, err=err)
    assert loop.time() - start < 5.0
    assert status == 4, err.getvalue()
    assert f"broker 127.0.0.1:{port} cannot be reached" in err.getvalue()
    assert "Traceback" not in err.getvalue()


async def test_ask_keeps_waiting_through_a_broker_restart_and_sends_its_query_again(
    broker: Broker,
):
    """The broker restarts while the query waits: ``ask`` reconnects, subscribes and
    publishes the query again (the ground runs an id once), and gets its answer."""
    await say_online(broker.port, b"true")
    requests: list[dict] = []

    async def ground(answer: bool) -> None:  # a persistent session, as the daemon's
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, identifier="stand-in", clean_session=False
        ) as c:
            await c.subscribe(TOPICS.query, qos=1)
            async for message in c.messages:
                requests.append(json.loads(bytes(message.payload)))
                if answer:
                    qid = requests[-1]["id"]
                    timeline = {"query_id": qid, "legs_s": {"uplink": 0.01}, "total_s": 0.01}
                    await c.publish(TOPICS.timeline(qid), dumps(timeline), qos=1)
                    await c.publish(TOPICS.answer(qid), dumps(answer_of(qid)), qos=1)
                return

    first = asyncio.get_running_loop().create_task(ground(answer=False))
    await asyncio.sleep(0.2)
    out, err = io.StringIO(), io.StringIO()
    asking = asyncio.get_running_loop().create_task(
        ask(settings(broker.port), "mcc", Request("hi", "ask-7"), timeout_s=30, out=out, err=err)
    )
    await first  # the query is in; no answer yet
    await asyncio.to_thread(broker.restart)
    await ground(answer=True)  # the query again, from ask, kept by the broker for us
    status = await asking
    assert status == 0, err.getvalue()
    assert "retrying" in err.getvalue() and "answer from CS-03" in out.getvalue()
    assert [r["id"] for r in requests] == ["ask-7", "ask-7"]


async def test_ask_gives_up_on_a_ground_that_goes_offline_and_stays_away(broker: Broker):
    """Online at the start, its will published while the query waits: given up after
    the grace (here 0.5 s), not at the timeout."""
    await say_online(broker.port, b"true")

    async def dies() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as c:
            await c.subscribe(TOPICS.query, qos=1)
            async for _ in c.messages:
                await c.publish(TOPICS.online, b"false", qos=1, retain=True)
                return

    task = asyncio.get_running_loop().create_task(dies())
    await asyncio.sleep(0.2)
    out, err = io.StringIO(), io.StringIO()
    status = await ask(
        settings(broker.port),
        "mcc",
        Request("anyone?", "ask-6"),
        timeout_s=1800,
        offline_grace_s=0.5,
        out=out,
        err=err,
    )
    await task
    assert status == 5, err.getvalue()
    assert "the ground went offline" in err.getvalue()
    assert "ask-6: the ground went offline and did not come back" in err.getvalue()


def test_resend_is_a_yes_or_no():
    assert parse_request(b'{"id": "q", "prompt": "x", "resend": true}').resend
    assert not parse_request(b'{"id": "q", "prompt": "x"}').resend
    with pytest.raises(RequestError, match="resend: must be true or false"):
        parse_request(b'{"id": "q", "prompt": "x", "resend": 1}')
    assert Request("x", "q", resend=True).to_json()["resend"] is True
    assert "resend" not in Request("x", "q").to_json()


async def stand_in_ground(port: int, answer_requests, requests: list[dict]) -> None:
    """A ground on the documented topics: each request is kept in ``requests`` and
    answered with what ``answer_requests(request, n)`` (n: its rank) says to publish,
    as (topic, body) pairs, until it says None."""
    async with aiomqtt.Client("127.0.0.1", port) as c:
        await c.publish(TOPICS.online, b"true", qos=1, retain=True)
        await c.subscribe(TOPICS.query, qos=1)
        async for message in c.messages:
            requests.append(json.loads(bytes(message.payload)))
            replies = answer_requests(requests[-1], len(requests))
            if replies is None:
                return
            for topic, body in replies:
                await c.publish(topic, dumps(body), qos=1)


def timeline_of(qid: str) -> dict:
    return {"query_id": qid, "legs_s": {}, "total_s": 0.0}


def answer_of(qid: str) -> dict:
    return answer_json(Answer(qid, "Hello", 2, 2, "stop", "tiny", "m", True, "CS-03"))


async def test_ask_keeps_the_first_answer_of_its_id(broker: Broker):
    """Timeline, answer, and the same answer again (a ground that died between the
    broker's PUBACK and marking it published): printed once."""
    requests: list[dict] = []

    def replies(req: dict, n: int):
        qid = req["id"]
        timeline = {"query_id": qid, "legs_s": {"uplink": 0.01}, "total_s": 0.01}
        return [
            (TOPICS.timeline(qid), timeline),
            (TOPICS.answer(qid), answer_of(qid)),
            (TOPICS.answer(qid), answer_of(qid)),
        ]

    task = asyncio.get_running_loop().create_task(stand_in_ground(broker.port, replies, requests))
    await asyncio.sleep(0.2)
    out, err = io.StringIO(), io.StringIO()
    status = await ask(
        settings(broker.port), "mcc", Request("hi", "ask-2"), timeout_s=15, out=out, err=err
    )
    task.cancel()
    assert status == 0, err.getvalue()
    assert out.getvalue().count("answer from CS-03") == 1
    assert out.getvalue().count("Hello") == 1


async def test_ask_asks_again_with_resend_when_the_ground_published_before_it_was_there(
    broker: Broker,
):
    requests: list[dict] = []

    def replies(req: dict, n: int):
        qid = req["id"]
        if not req.get("resend"):  # answered and published: this id is not run again
            body = {"id": qid, "state": "published", "t_s": 1.0, "repeated": True}
            return [(TOPICS.accepted(qid), body)]
        return [
            (TOPICS.timeline(qid), {"query_id": qid, "legs_s": {}, "total_s": 0.0}),
            (TOPICS.answer(qid), answer_of(qid)),
        ]

    task = asyncio.get_running_loop().create_task(stand_in_ground(broker.port, replies, requests))
    await asyncio.sleep(0.2)
    out, err = io.StringIO(), io.StringIO()
    status = await ask(
        settings(broker.port), "mcc", Request("hi", "ask-3"), timeout_s=15, out=out, err=err
    )
    task.cancel()
    assert status == 0, err.getvalue()
    assert [r.get("resend", False) for r in requests] == [False, True]


async def test_ask_returns_at_a_refusal_without_waiting_for_a_timeline(broker: Broker):
    def replies(req: dict, n: int):
        body = {
            "type": "error",
            "id": req["id"],
            "code": "rejected",
            "detail": "no",
            "satellite": "",
        }
        return [(TOPICS.answer(req["id"]), body)]

    task = asyncio.get_running_loop().create_task(stand_in_ground(broker.port, replies, []))
    await asyncio.sleep(0.2)
    out, err = io.StringIO(), io.StringIO()
    started = asyncio.get_running_loop().time()
    status = await ask(
        settings(broker.port), "mcc", Request("hi", "ask-4"), timeout_s=60, out=out, err=err
    )
    task.cancel()
    assert status == 1 and "refused by the ground: rejected: no" in out.getvalue()
    assert asyncio.get_running_loop().time() - started < 10


async def test_ask_refuses_a_retained_fake_answer_and_one_of_another_id(broker: Broker):
    """An attacker on an open broker leaves a fake answer, timeline and chunk retained
    on the topics of the id ``ask`` will use, then sends a live answer of another id
    on them: ``ask`` ignores each (a warning on stderr), and prints the ground's."""
    qid = "ask-retained"
    fake = answer_json(Answer(qid, "SPOOFED", 1, 1, "stop", "evil", "m", False, "CS-99"))
    async with aiomqtt.Client("127.0.0.1", broker.port) as attacker:
        for topic, body in (
            (TOPICS.answer(qid), fake),
            (TOPICS.timeline(qid), timeline_of(qid)),
            (TOPICS.chunk(qid), {"type": "chunk", "id": qid, "seq": 0, "text": "SPOOF"}),
        ):
            await attacker.publish(topic, dumps(body), qos=1, retain=True)

    def replies(req: dict, n: int):
        other = answer_json(Answer("not-" + qid, "SPOOFED", 1, 1, "stop", "e", "m", False, "X"))
        return [
            (TOPICS.answer(qid), other),  # live, but not the query's id
            (TOPICS.timeline(qid), timeline_of(qid)),
            (TOPICS.answer(qid), answer_of(qid)),
        ]

    task = asyncio.get_running_loop().create_task(stand_in_ground(broker.port, replies, []))
    await asyncio.sleep(0.2)
    out, err = io.StringIO(), io.StringIO()
    status = await ask(
        settings(broker.port), "mcc", Request("hi", qid, stream=True), timeout_s=15, out=out,
        err=err,
    )  # fmt: skip
    task.cancel()
    assert status == 0, err.getvalue()
    assert "SPOOF" not in out.getvalue()
    assert "answer from CS-03 (2 tokens, stop; m (random weights: noise)):\nHello" in out.getvalue()
    said = err.getvalue()
    for kind in ("answer", "timeline", "chunk"):
        assert (
            f"warning: ignored a message on {TOPICS.base}/{kind}/{qid}: it is retained (the "
            "ground never retains answers)" in said
        ), said
    assert (
        f"warning: ignored a message on {TOPICS.answer(qid)}: its id 'not-{qid}' is not the "
        "query's" in said
    ), said


async def test_ask_leaves_no_session_at_the_broker(broker: Broker):
    """Its persistent session is removed at the end: what is published for its id
    afterwards is kept for nobody."""
    task = asyncio.get_running_loop().create_task(
        stand_in_ground(
            broker.port,
            lambda req, n: [
                (TOPICS.timeline(req["id"]), timeline_of(req["id"])),
                (TOPICS.answer(req["id"]), answer_of(req["id"])),
            ],
            [],
        )
    )
    await asyncio.sleep(0.2)
    status = await ask(
        settings(broker.port),
        "mcc",
        Request("hi", "ask-5"),
        timeout_s=15,
        out=io.StringIO(),
        err=io.StringIO(),
    )
    task.cancel()
    assert status == 0
    async with aiomqtt.Client("127.0.0.1", broker.port) as c:
        await c.publish(TOPICS.answer("ask-5"), b"{}", qos=1)
    got: list[bytes] = []
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, identifier=ask_identifier("ask-5"), clean_session=False
    ) as c:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for message in c.messages:  # a kept session would get it now
                    got.append(bytes(message.payload))
    assert got == []
    assert len(ask_identifier("ask-5")) <= 23


async def test_stop_tasks_cancels_again_a_task_that_lost_its_cancellation(monkeypatch):
    """As a task in Python 3.11's asyncio.wait_for does when what it waits for comes
    with the cancellation (aiomqtt waits for the broker with it): cancelled again."""
    monkeypatch.setattr(mqtt, "_CANCEL_WAIT_S", 0.05)

    async def loses_one() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        await asyncio.sleep(30)  # goes on as if nothing was asked

    released = False

    async def never_stops() -> None:  # until the test lets it
        while not released:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.01)

    loop = asyncio.get_running_loop()
    task = loop.create_task(loses_one())
    await asyncio.sleep(0)
    assert await mqtt.stop_tasks([task]) == set() and task.cancelled()
    stubborn = loop.create_task(never_stops())
    await asyncio.sleep(0)
    assert await mqtt.stop_tasks([stubborn]) == {stubborn}  # said, not waited for ever
    released = True
    await stubborn
