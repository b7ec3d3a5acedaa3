"""``linkstack ask``: a client of the ground daemon's MQTT topics (:mod:`linkstack.daemon.mqtt`).

One query, or a batch: ``count`` queries ``interval_s`` apart (ids ``ID-1`` ...
``ID-N``), each printed as it is answered, with progress on stderr and, at the end,
p50/p95/p99 of the round trip and of each leg. Text (the answer, then the route and
the legs: :func:`linkstack.runtime.report.timeline_lines`, as ``linkstack demo``
prints them) or JSON lines (``json_lines``: one object per query, then one with the
batch's ``summary``).

**Fail fast.** The first connection to the broker must succeed (exit 4 if it cannot
be reached, 2 if it refuses us: see :func:`~linkstack.daemon.mqtt.refusal`); one
lost afterwards is retried with the backoff. Then the ground's retained ``online``
status must say ``true``: ``false`` (it stopped; the broker published its will) or
nothing retained (no ground of that name ever connected to this broker) is said at
once (exit 5) rather than after the timeout. ``ask`` knows the status is absent,
and not just late, when a probe it publishes to itself after subscribing comes back
(the broker sends what it retains on a subscription before it handles the next
packet); :data:`ONLINE_CHECK_S` bounds the wait where the probe cannot return. A
ground that goes offline while the queries wait is waited for ``offline_grace_s``
(restarted, it answers every query it stored), then given up (exit 5).

**Each answer once**, the subscriber's part (see :mod:`linkstack.daemon.mqtt`): a
persistent session of its own (:func:`ask_identifier`), so that what is published
while the broker or the connection is away waits for it; each query's topics
subscribed before the query goes out (again on each connection, with the query: a
repeated id is neither run nor answered again); the first answer of an id kept, a
repeated one ignored. If the ground says an id was answered and published and no
answer came (the broker lost the session), it asks for it once more (``resend``).
The session is removed at the end.

**Only the ground's word.** With a user name (the scenario's ``mqtt.username`` or
``--username``), ``ask`` asks on its own topics (``<base>/client/<user>/...``: a
broker configured by ``linkstack broker`` lets only that user publish its queries and
read what answers them, and only the ground publish the answers). Whatever the
broker, it takes an answer, timeline, chunk or acknowledgement only on the topics of
a query it asked, and ignores, with a warning on stderr, one that is retained (the
ground never retains them: someone else left it there, before the question) and one
whose id is not the query's.

Exit status: 0 every query answered, 1 one refused (an error answer), 2 the broker
will not have us, 3 one got no answer in time, 4 the broker cannot be reached, 5 the
ground is offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TextIO, TypeGuard

import aiomqtt

from linkstack.daemon.mqtt import (
    Request,
    Topics,
    dumps,
    make_client,
    new_query_id,
    refusal,
    scoped_id,
    stop_tasks,
)
from linkstack.runtime.report import LEGS, distribution, timeline_lines
from linkstack.text import escape

if TYPE_CHECKING:
    from linkstack.runtime.daemon_settings import MqttSettings

ANSWERED, REFUSED, BROKER_REFUSED, NO_ANSWER, BROKER_UNREACHABLE, GROUND_OFFLINE = range(6)

ONLINE_CHECK_S = 5.0  # the longest wait for the ground's retained status after connecting
OFFLINE_GRACE_S = 60.0  # a ground offline this long while queries wait: given up
_TIMELINE_GRACE_S = 3.0  # an answer without its timeline: how long more to wait for it
_TICK_S = 0.05  # how often the queries' deadlines and the schedule are looked at
_NO_LIMIT = 1 << 30  # escape() cuts nothing shorter


def ask_identifier(query_id: str) -> str:
    """``ask``'s MQTT client id for a query (a batch: its id prefix): the same for the
    same id (a second ``ask --id`` finds what the broker kept for the first), 22
    characters (every broker takes 23)."""
    return "lsask-" + hashlib.sha256(query_id.encode()).hexdigest()[:16]


def batch_ids(base: str, count: int) -> list[str]:
    """The ids of a query (``count`` 1: ``base`` itself) or of a batch."""
    return [base] if count == 1 else [f"{base}-{k}" for k in range(1, count + 1)]


class _FailedError(Exception):
    """``ask`` cannot go on: its exit status and what to say."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(eq=False)
class _Asked:
    """One query of the run and what came back for it."""

    index: int  # 1..count
    request: Request
    published_at: float | None = None  # the loop's time when it was due and sent
    answer: dict[str, Any] | None = None
    answered_at: float | None = None
    timeline: dict[str, Any] | None = None
    chunks: set[int] = field(default_factory=set)
    resent: bool = False
    outcome: str | None = None  # answered, refused, no_answer, offline: once reported

    @property
    def id(self) -> str:
        assert self.request.id is not None
        return self.request.id


class _Asker:
    """One run of ``ask`` (see the module docstring)."""

    def __init__(
        self,
        settings: MqttSettings,
        topics: Topics,
        asked: list[_Asked],
        identifier: str,
        *,
        timeout_s: float,
        interval_s: float,
        offline_grace_s: float,
        json_lines: bool,
        out: TextIO,
        err: TextIO,
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.asked = asked
        self.identifier = identifier
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self.offline_grace_s = offline_grace_s
        self.json_lines = json_lines
        self.out = out
        self.err = err
        self.batch = len(asked) > 1
        # one query, in text, streamed: its chunks are printed as they come
        self.print_chunks = not json_lines and not self.batch and asked[0].request.stream
        self.printed_chunk = False
        self.by_topic: dict[str, tuple[str, _Asked]] = {}
        for q in asked:
            for kind in ("answer", "chunk", "timeline", "accepted"):
                self.by_topic[getattr(topics, kind)(q.id)] = (kind, q)
        self.probe_topic = topics.probe(identifier)
        self.ignored = 0  # messages on our topics that were not the ground's answer
        self.broker = f"{settings.host}:{settings.port}"
        self.client: aiomqtt.Client | None = None
        self.connected_once = False
        self.probed = False
        self.online: bool | None = None  # the ground's retained status; None: none heard
        self.offline_since: float | None = None
        self.reported = 0

    # -- the connection ------------------------------------------------------------------
    async def session(self) -> None:
        """Connect (the first time or fail), subscribe, (re)send the queries due, take
        what comes; reconnect with the backoff once connected once."""
        s = self.settings
        delay_s = s.reconnect_min_s
        while True:
            try:
                client = make_client(s, identifier=self.identifier, clean_session=False)
                async with client:
                    first = not self.connected_once
                    self.connected_once = True
                    self.client = client
                    await client.subscribe(self.topics.online, qos=1)
                    if first:
                        await client.subscribe(self.probe_topic, qos=1)
                        await client.publish(self.probe_topic, b"probe", qos=1)
                    for q in self.asked:
                        if q.published_at is not None and q.outcome is None:
                            await self._send(client, q)
                    delay_s = s.reconnect_min_s
                    async for message in client.messages:
                        await self._on_message(client, message)
            except aiomqtt.MqttError as exc:
                self.client = None
                hint = refusal(exc)
                if hint is not None:
                    raise _FailedError(
                        BROKER_REFUSED, f"broker {self.broker}: {exc}; {hint}"
                    ) from None
                if not self.connected_once:
                    raise _FailedError(
                        BROKER_UNREACHABLE,
                        f"broker {self.broker} cannot be reached: {exc} (is it running? "
                        "the scenario's mqtt.host and mqtt.port, or --host and --port)",
                    ) from None
                self.err.write(f"broker {self.broker}: {exc}; retrying in {delay_s:g} s\n")
                self.err.flush()
                await asyncio.sleep(delay_s)
                delay_s = min(2 * delay_s, s.reconnect_max_s)
            finally:
                self.client = None

    async def _send(self, client: aiomqtt.Client, q: _Asked) -> None:
        """Subscribe to the query's topics, then publish it."""
        topics = [(getattr(self.topics, kind)(q.id), 1) for kind in ("answer", "chunk")]
        topics += [(getattr(self.topics, kind)(q.id), 1) for kind in ("timeline", "accepted")]
        await client.subscribe(topics)
        await client.publish(self.topics.query, dumps(q.request.to_json()), qos=1)

    async def _on_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        payload = bytes(message.payload) if message.payload is not None else b""
        now = asyncio.get_running_loop().time()
        if topic == self.topics.online:
            self._on_online(payload.strip(), now)
            return
        if topic == self.probe_topic:
            self.probed = True
            return
        entry = self.by_topic.get(topic)
        if entry is None:
            return
        kind, q = entry
        if message.retain:  # the ground never retains these: left there by someone else
            self._ignore(topic, "it is retained (the ground never retains answers)")
            return
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._ignore(topic, "it is not JSON")
            return
        if not isinstance(body, dict):
            self._ignore(topic, "it is not a JSON object")
            return
        said = body.get("query_id" if kind == "timeline" else "id")
        if said != q.id:
            self._ignore(topic, f"its id {escape(repr(said), 80)} is not the query's")
            return
        if kind == "chunk":
            seq = body.get("seq")
            if isinstance(seq, int) and seq not in q.chunks and q.answer is None:
                q.chunks.add(seq)
                if self.print_chunks:
                    self.out.write(escape(str(body.get("text", "")), _NO_LIMIT))
                    self.out.flush()
                    self.printed_chunk = True
        elif kind == "answer":
            if q.answer is None:  # a repeated one is the same answer again
                q.answer, q.answered_at = body, now
        elif kind == "timeline":
            q.timeline = q.timeline or body
        elif (
            body.get("repeated")
            and body.get("state") == "published"
            and q.answer is None
            and not q.resent
        ):  # answered while no session of ours was there to hear it
            q.resent = True
            again = replace(q.request, resend=True)
            await client.publish(self.topics.query, dumps(again.to_json()), qos=1)

    def _ignore(self, topic: str, why: str) -> None:
        self.ignored += 1
        self.err.write(f"warning: ignored a message on {topic}: {why}\n")
        self.err.flush()

    def _on_online(self, payload: bytes, now: float) -> None:
        was = self.online
        self.online = {b"true": True, b"false": False}.get(payload)  # b"": cleared
        if not self.probed:
            return  # the check at the start says it
        if self.online is not True and was is True:
            self.offline_since = now
            self.err.write(
                f"the ground went offline ({self.topics.online}); waiting up to "
                f"{self.offline_grace_s:g} s for it to come back\n"
            )
        elif self.online is True and self.offline_since is not None:
            self.offline_since = None
            self.err.write("the ground is back online\n")
        self.err.flush()

    # -- the run --------------------------------------------------------------------------
    async def run(self) -> int:
        session = asyncio.get_running_loop().create_task(self.session(), name="ask mqtt")
        try:
            return await self._drive(session)
        except _FailedError as exc:
            if self.printed_chunk:
                self.out.write("\n")
            self.err.write(exc.message + "\n")
            self.err.flush()
            return exc.status
        finally:
            await stop_tasks([session])
            if self.connected_once:
                await _forget_session(self.settings, self.identifier)

    async def _wait(self, session: asyncio.Task[None]) -> None:
        """A tick, or less if the session ends (it raises what ended it)."""
        await asyncio.wait({session}, timeout=_TICK_S)
        if session.done():
            session.result()  # _FailedError
            raise _FailedError(BROKER_UNREACHABLE, f"broker {self.broker}: the session ended")

    async def _drive(self, session: asyncio.Task[None]) -> int:
        loop = asyncio.get_running_loop()
        while not self.connected_once:
            await self._wait(session)
        until = loop.time() + ONLINE_CHECK_S
        while not self.probed and loop.time() < until:
            await self._wait(session)
        self._check_online()
        start = loop.time()
        due = 0
        n = len(self.asked)
        while self.reported < n:
            now = loop.time()
            while due < n and now >= start + due * self.interval_s:
                q = self.asked[due]
                q.published_at = now
                due += 1
                client = self.client
                if client is not None:  # else the session sends it when it is back
                    with contextlib.suppress(aiomqtt.MqttError):
                        await self._send(client, q)
            for q in self.asked[:due]:
                if q.outcome is None:
                    self._settle(q, loop.time())
            if self.offline_since is not None and now - self.offline_since >= self.offline_grace_s:
                for q in self.asked:
                    if q.outcome is None:
                        self._report(q, "offline")
                break
            await self._wait(session)
        if self.batch:
            self._summary()
        outcomes = {q.outcome for q in self.asked}
        for outcome, status in (
            ("offline", GROUND_OFFLINE),
            ("no_answer", NO_ANSWER),
            ("refused", REFUSED),
        ):
            if outcome in outcomes:
                if outcome == "offline":
                    self.err.write(
                        f"the ground stayed offline for {self.offline_grace_s:g} s: "
                        "gave up on what it had not answered\n"
                    )
                return status
        return ANSWERED

    def _check_online(self) -> None:
        ground = self.topics.ground
        if self.online is True:
            return
        if self.online is False:
            raise _FailedError(
                GROUND_OFFLINE,
                f"the ground daemon {ground!r} is offline: {self.topics.online} says false "
                "(it stopped, or lost the broker); start it, then ask again",
            )
        raise _FailedError(
            GROUND_OFFLINE,
            f"no ground daemon {ground!r} on broker {self.broker}: nothing is retained on "
            f"{self.topics.online} (is the ground running, with this broker, mqtt.prefix and "
            "ground name?)",
        )

    def _settle(self, q: _Asked, now: float) -> None:
        """Report ``q`` if it is finished: answered (with its timeline, or without it
        after a grace), refused, or past its timeout."""
        assert q.published_at is not None
        answer = q.answer
        if answer is not None:
            refused = answer.get("type") == "error"
            assert q.answered_at is not None
            if q.timeline is not None or refused or now - q.answered_at >= _TIMELINE_GRACE_S:
                self._report(q, "refused" if refused else "answered")
        elif now - q.published_at >= self.timeout_s:
            self._report(q, "no_answer")

    # -- what it prints -----------------------------------------------------------------------
    def _report(self, q: _Asked, outcome: str) -> None:
        q.outcome = outcome
        self.reported += 1
        round_trip_s = (
            q.answered_at - q.published_at
            if q.answered_at is not None and q.published_at is not None
            else None
        )
        detail = {
            "no_answer": f"no answer within {self.timeout_s:g} s",
            "offline": "the ground went offline and did not come back",
        }.get(outcome)
        if self.json_lines:
            line: dict[str, Any] = {
                "id": q.id,
                "index": q.index,
                "outcome": outcome,
                "client_round_trip_s": round_trip_s,
                "chunks": len(q.chunks),
                "answer": q.answer,
                "timeline": q.timeline,
            }
            if detail is not None:
                line["detail"] = detail
            self.out.write(dumps(line).decode() + "\n")
        else:
            self._print_text(q, detail)
        self.out.flush()
        if self.batch:
            took = f" in {round_trip_s:.2f} s" if round_trip_s is not None else ""
            self.err.write(
                f"[{self.reported}/{len(self.asked)}] {q.id}: {outcome.replace('_', ' ')}{took}\n"
            )
            self.err.flush()

    def _print_text(self, q: _Asked, detail: str | None) -> None:
        out = self.out
        if self.printed_chunk:
            out.write("\n")
            self.printed_chunk = False
        if self.batch:
            out.write(f"[{q.index}/{len(self.asked)}] {q.id}\n")
        answer = q.answer
        if answer is None:
            if self.batch:
                out.write(f"{detail}\n")
            else:
                self.err.write(f"{q.id}: {detail}\n")
            return
        if answer.get("type") == "error":
            out.write(
                f"refused by {answer.get('satellite') or 'the ground'}: {answer.get('code')}: "
                f"{escape(str(answer.get('detail')), _NO_LIMIT)}\n"
            )
        else:
            noise = " (random weights: noise)" if answer.get("random_weights") else ""
            out.write(
                f"answer from {answer.get('satellite')} ({answer.get('completion_tokens')} "
                f"tokens, {answer.get('finish_reason')}; {answer.get('model')}{noise}):\n"
            )
            out.write(escape(str(answer.get("text", "")), _NO_LIMIT) + "\n")
        if q.timeline is not None:
            for line in timeline_lines(q.timeline):
                out.write(line + "\n")

    def _summary(self) -> None:
        summary = batch_summary(self.asked)
        if self.json_lines:
            self.out.write(dumps({"summary": summary}).decode() + "\n")
        else:
            self.out.write(format_summary(summary) + "\n")
        self.out.flush()


def batch_summary(asked: list[_Asked]) -> dict[str, Any]:
    """A batch's counts, and p50/p95/p99 of its round trips and legs (seconds)."""
    answered = [q for q in asked if q.outcome == "answered"]
    timelines = [q.timeline for q in answered if q.timeline is not None]
    totals = [t["total_s"] for t in timelines if _number(t.get("total_s"))]
    client = [
        q.answered_at - q.published_at
        for q in answered
        if q.answered_at is not None and q.published_at is not None
    ]
    legs = {}
    for name, _ in LEGS:
        values = []
        for t in timelines:
            raw = t.get("legs_s")
            legs_s = raw if isinstance(raw, dict) else {}
            value = legs_s.get(name, 0.0)  # a leg not seen: its time is in the next one
            values.append(float(value) if _number(value) else 0.0)
        legs[name] = distribution(values)
    return {
        "queries": len(asked),
        "answered": len(answered),
        "refused": sum(1 for q in asked if q.outcome == "refused"),
        "no_answer": sum(1 for q in asked if q.outcome == "no_answer"),
        "offline": sum(1 for q in asked if q.outcome == "offline"),
        # the ground's: from the query on MQTT to the answer on the ground
        "round_trip_s": distribution(totals),
        # ask's: from publishing the query to the answer on MQTT (the broker included)
        "client_round_trip_s": distribution(client),
        "legs_s": legs,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The batch summary as text: one line of counts, then a line a distribution."""

    def row(label: str, d: dict[str, Any]) -> str:
        if not d["count"]:
            return f"  {label:<22} -"
        return (
            f"  {label:<22} p50 {d['p50_s']:9.3f}  p95 {d['p95_s']:9.3f}  "
            f"p99 {d['p99_s']:9.3f}  max {d['max_s']:9.3f}"
        )

    counts = ", ".join(
        f"{summary[k]} {k.replace('_', ' ')}"
        for k in ("answered", "refused", "no_answer", "offline")
        if summary[k] or k == "answered"
    )
    lines = [f"batch: {summary['queries']} queries, {counts}; seconds:"]
    lines.append(row("round trip (ground)", summary["round_trip_s"]))
    lines.append(row("round trip (ask)", summary["client_round_trip_s"]))
    lines += [row(name, d) for name, d in summary["legs_s"].items()]
    return "\n".join(lines)


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


async def _forget_session(settings: MqttSettings, identifier: str) -> None:
    """Remove ``ask``'s persistent session from the broker (a clean connection with its
    client id); a broker that is away keeps it, with nothing more to deliver."""
    with contextlib.suppress(aiomqtt.MqttError, TimeoutError, OSError):
        async with asyncio.timeout(5.0):
            async with make_client(settings, identifier=identifier, clean_session=True):
                pass


async def ask(
    settings: MqttSettings,
    ground: str,
    request: Request,
    *,
    timeout_s: float = 600.0,
    count: int = 1,
    interval_s: float = 1.0,
    json_lines: bool = False,
    offline_grace_s: float = OFFLINE_GRACE_S,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Publish a query (``count`` > 1: a batch, ``interval_s`` apart), print what comes
    back; the exit status (see the module docstring). ``timeout_s`` is each query's,
    from when it is sent."""
    if count < 1 or not interval_s >= 0 or not timeout_s > 0:
        raise ValueError("count >= 1, interval_s >= 0 and timeout_s > 0")
    user = settings.username or None  # with one, the client's own topics
    topics = Topics(settings.prefix, ground, user)
    base = request.id or new_query_id("ask")
    ids = batch_ids(base, count)
    if user is not None:  # the ground takes the asker's name from the topic
        request = replace(request, client=user)
    asked = [_Asked(k, replace(request, id=i)) for k, i in enumerate(ids, 1)]
    if count == 1:
        err.write(f"query {base} -> {topics.query}\n")
    else:
        err.write(
            f"{count} queries {ids[0]} .. {ids[-1]}, {interval_s:g} s apart -> {topics.query}\n"
        )
    err.flush()
    asker = _Asker(
        settings,
        topics,
        asked,
        ask_identifier(scoped_id(user, base)),
        timeout_s=timeout_s,
        interval_s=interval_s,
        offline_grace_s=offline_grace_s,
        json_lines=json_lines,
        out=out,
        err=err,
    )
    return await asker.run()
