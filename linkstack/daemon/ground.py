"""The ground daemon's application side: MQTT in and out, the SQLite queue, the report.

::

    MQTT query --(store: received)--> PUBACK --> client.submit(same id) --(submitted)-->
    mission control (queue for a pass, COP-1 up) ... answer down --> client (acks it
    after ack_delay_s) --(store: answered)--> MQTT answer/<id>, timeline/<id>
    --(published)

A query is stored before the broker hears it was received, and its answer before
the satellite hears it was received; so a daemon killed at any instant loses
nothing when it starts again: :meth:`GroundApp.resume` hands every unanswered row to
mission control again (same id: the satellite runs an id once and re-sends an
answer it still holds), and publishes every answered row not yet published.

**Each answer once.** Answers go out by one path only, the outbox
(:meth:`GroundApp._publisher`, one task): for each ``answered`` row, oldest first,
its timeline, then its answer, each with QoS 1; the row is marked ``published`` as
soon as the broker's PUBACK for the answer is in. A query id seen again (a client
asking again, the broker delivering a query again) is never run again and never
publishes by itself: ``accepted/<id>`` says the row's state (``"repeated": true``);
only a request with ``"resend": true`` asks for a published answer once more, and
that goes through the outbox too (the row back to ``answered``). What remains is
MQTT's own at-least-once: a daemon that dies, or a broker that goes away, after the
broker took an answer and before the PUBACK is in and the row marked (the time of
one round trip to the broker and one SQLite commit) publishes that answer again on
restart. Subscribers keep the first ``answer/<id>`` of each id (``linkstack ask``
does).

**Each client its own.** A query on a client's own topic
(``<base>/client/<user>/query``, which the broker's ACL lets only ``<user>`` publish:
``linkstack broker``) is keyed ``<user>/<id>`` in the queue, on board and in the
report, and everything about it is published under ``<base>/client/<user>/`` with the
id the client gave: so one client's ids never meet another's, and nobody else can
have its answer published again (a ``resend`` names the asker's own key). Queries on
the un-scoped ``<base>/query`` (an open broker) are keyed by their id alone, as before.

**Flat memory.** A daemon runs for ever, so it keeps nothing per query answered: the
client lets a query go once settled and keeps the ids of the last
:data:`SETTLED_REMEMBERED` (a late copy of an older answer is acknowledged and
dropped as unsolicited: the queue has its row answered already, and only the client's
first answer reaches the queue, so it is never published twice), mission control and its
trace forget a query once settled, and the report at shutdown is read back from
the queue (the timelines of the rows answered since this run started).
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
from collections import Counter
from collections.abc import Collection, Coroutine
from pathlib import Path
from typing import Any

from linkstack.daemon.endpoints import MqttUnits
from linkstack.daemon.groundqueue import GroundQueue, QueryRecord
from linkstack.daemon.metrics import ROUND_TRIP_BOUNDS_S, Buckets
from linkstack.daemon.mqtt import (
    MqttBridge,
    Request,
    RequestError,
    Topics,
    answer_json,
    chunk_json,
    dumps,
    new_query_id,
    parse_request,
    scoped_id,
    split_scoped_id,
    stop_tasks,
    valid_username,
)
from linkstack.daemon.status import event
from linkstack.runtime.mission_control import MissionControl
from linkstack.runtime.report import (
    timeline_from_json,
    timeline_json,
    write_report_pages,
    write_reports,
)
from linkstack.runtime.scenario import ScenarioFile
from linkstack.timebase import Clock
from payloads.client import Client, Pending
from payloads.messages import Answer, AnswerChunk, ErrorMessage, Params, decode

log = logging.getLogger("linkstack.daemon.ground")

# ids of settled queries the client remembers, to count the late copies of their
# answers as duplicates: minutes of queries (an answer is repeated until the ack is up)
SETTLED_REMEMBERED = 1024


class GroundApp:
    """Queries from MQTT through the ground segment and back (see the module docstring)."""

    def __init__(
        self,
        settings: ScenarioFile,
        clock: Clock,
        mcc: MissionControl,
        queue: GroundQueue,
        gateway_units: MqttUnits | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.mcc = mcc
        self.queue = queue
        scenario = settings.scenario
        computing = settings.emulation.computing
        self.targets = set(computing if computing is not None else scenario.satellite_names)
        self.topics = Topics(settings.mqtt.prefix, settings.ground.name)
        # each answer is stored as soon as it arrives, before the acknowledgement to
        # the satellite (which waits ack_delay_s)
        self.client = Client(
            mcc,
            clock,
            settings.emulation.client,
            id_prefix="g",
            on_result=self._on_result,
            keep_settled=SETTLED_REMEMBERED,
        )
        mcc.deliver = self.client.on_message
        mcc.on_dispatched = self.client.answer_due
        self.client.on_send_again = self._sending_again
        self.bridge: MqttBridge | None = None
        if settings.mqtt.enabled:
            # the gateway's units over MQTT (the packet bridge) share the connection
            extra = {gateway_units.filter: gateway_units.take} if gateway_units else {}
            self.bridge = MqttBridge(
                settings.mqtt,
                self.topics,
                clock,
                self._on_query,
                self._on_connected,
                extra,
                on_client_query=self._on_client_query,
            )
            if gateway_units is not None:
                gateway_units.publish = self._publish_unit
        self.started_t_s = clock.now()  # the report lists what was answered since
        self.stats: Counter[str] = Counter()
        # the round trips of the queries finished in this run, by outcome ("answer" or
        # the error's code): a few integers each however long it runs (GET /metrics)
        self._round_trips: dict[str, Buckets] = {}
        self._outbox = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._side: set[asyncio.Task[object]] = set()

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.bridge is not None:
            self._tasks.append(loop.create_task(self.bridge.run(), name="mqtt"))
            self._tasks.append(loop.create_task(self._publisher(), name="mqtt publisher"))

    def resume(self) -> int:
        """Hand the unanswered rows of the queue to mission control again; how many."""
        rows = self.queue.unanswered()
        for rec in rows:
            self._submit(rec)
        if self.queue.unpublished():
            self._outbox.set()
        if rows:
            event("resumed the ground queue", resubmitted=len(rows), ids=[r.id for r in rows])
        return len(rows)

    async def close(self) -> None:
        if self.bridge is not None:
            await self.bridge.close()
        stubborn = await stop_tasks([*self._tasks, *self._side])
        if stubborn:
            log.error("ground tasks would not stop: %s", sorted(t.get_name() for t in stubborn))
        for task in [*self._tasks, *self._side]:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("a ground task failed while stopping", exc_info=task.exception())
        self._tasks = []
        self.client.close()

    @property
    def answered(self) -> int:
        """Queries answered (or refused for good) during this run."""
        return self.stats["answers"] + self.stats["errors"]

    def write_report(self, run_dir: Path, charts: bool = True) -> dict[str, Path]:
        """``report.json`` of the queries answered during this run, read back from the
        queue (rows answered since :attr:`started_t_s`, scenario time: a run started
        at an instant before a previous run's answers lists those too), and with
        ``charts`` its ``report.png`` and ``report.html``, into ``run_dir``; their
        paths by ``json``, ``chart``, ``html``. A chart that fails is logged: the
        JSON is written first and stays."""
        meta = {
            "scenario": self.settings.name,
            "source": self.settings.source,
            "ground": self.settings.ground.name,
            "epoch": self.settings.scenario.epoch.isoformat(),
            # the scenario's: the satellites' daemons run it (the answers say theirs)
            "model": self.settings.emulation.backend,
            "inference_timing": self.settings.emulation.service.timing_source,
            "queue": dict(self.queue.counts()),
        }
        timelines = self.queue.timelines_answered_since(self.started_t_s)
        paths = write_reports(
            [timeline_from_json(t) for t in timelines], run_dir, meta, charts=False
        )
        if charts:
            try:
                doc = json.loads(paths["json"].read_text())
                paths |= write_report_pages(doc, run_dir / "report")
            except Exception:
                log.exception("the report's charts (report.json is written)")
        return paths

    # -- queries in -------------------------------------------------------------------------
    def _on_query(self, payload: bytes) -> None:
        """A message on the query topic: store it (this returns before the PUBACK)."""
        try:
            req = parse_request(payload)
        except RequestError as exc:
            self.stats["requests_refused"] += 1
            event("query refused", logging.WARNING, id=exc.query_id, reason=exc.detail)
            self._refuse(exc.query_id, exc.detail)
            return
        self.take(req)

    def _on_client_query(self, user: str, payload: bytes) -> None:
        """A message on a client's own query topic: the query is that user's (the
        broker's ACL lets only it publish there), keyed by user and id."""
        topics = self.topics.of_client(user)
        if not valid_username(user):
            self.stats["requests_refused"] += 1
            event("query refused", logging.WARNING, client=user, reason="unusable user name")
            self._refuse(None, "the user name of this topic cannot name queries", topics)
            return
        try:
            req = parse_request(payload, client=user)
        except RequestError as exc:
            self.stats["requests_refused"] += 1
            event("query refused", logging.WARNING, id=exc.query_id, client=user, reason=exc.detail)
            self._refuse(exc.query_id, exc.detail, topics)
            return
        self.take(req, scoped=True)

    def take(self, req: Request, *, scoped: bool = False) -> str | None:
        """Store and submit a request (also the entry point without MQTT); its key in
        the queue. ``scoped``: it came on its client's own topic (``req.client``, the
        user name): its key is ``<client>/<id>`` and its answers go to that client's
        topics (:func:`~linkstack.daemon.mqtt.scoped_id`)."""
        client = req.client if scoped else None
        local_id = req.id or new_query_id(self.settings.ground.name)
        query_id = scoped_id(client, local_id)
        if req.target is not None and req.target not in self.targets:
            known = _known(self.targets, req.target)
            detail = f"target: no computing satellite named {req.target!r} ({known})"
            self._refuse(local_id, detail, self.topics.of_client(client))
            return None
        params = {
            "max_new_tokens": req.params.max_new_tokens,
            "temperature": req.params.temperature,
            "top_p": req.params.top_p,
            "thinking": req.params.thinking,
            "seed": req.params.seed,
        }
        new = self.queue.add(
            query_id,
            req.prompt,
            params,
            stream=req.stream,
            target=req.target,
            client=req.client,
            t_s=self.clock.now(),
        )
        rec = self.queue.get(query_id)
        assert rec is not None
        if not new:
            self._repeated(rec, resend=req.resend)
            return query_id
        self.stats["queries"] += 1
        event("query stored", id=query_id, target=req.target, stream=req.stream)
        self._submit(rec)
        topics, local_id = self._topics_of(query_id)
        accepted = {"id": local_id, "state": "submitted", "t_s": rec.received_t_s}
        self._spawn(self._publish(topics.accepted(local_id), accepted, qos=1))
        return query_id

    def _topics_of(self, query_id: str) -> tuple[Topics, str]:
        """The topics of a query's client (the base ones for the un-scoped topic), and
        the id that client knows it by."""
        client, local_id = split_scoped_id(query_id)
        return self.topics.of_client(client), local_id

    def _repeated(self, rec: QueryRecord, *, resend: bool) -> None:
        """An id seen before: it is not run again, and its answer is not published
        from here (the outbox publishes each answer once); ``resend`` asks for a
        published answer once more, through the outbox."""
        self.stats["repeated_requests"] += 1
        state = rec.state
        if resend and self.queue.mark_for_publication(rec.id):
            self.stats["resend_requests"] += 1
            state = "answered"
            self._outbox.set()
        event("query repeated", id=rec.id, state=state, resend=resend)
        topics, local_id = self._topics_of(rec.id)
        accepted = {"id": local_id, "state": state, "t_s": rec.received_t_s, "repeated": True}
        self._spawn(self._publish(topics.accepted(local_id), accepted, qos=1))

    def _submit(self, rec: QueryRecord) -> None:
        if rec.id in self.client.pending:
            return
        pending = self.client.submit(
            rec.prompt,
            Params(**rec.params),
            stream=rec.stream,
            target=rec.target,
            query_id=rec.id,
            on_chunk=self._on_chunk if rec.stream else None,
        )
        pending.timeline.submit_t_s = rec.received_t_s  # when the ground first had it
        self.queue.mark_submitted(rec.id)

    def _refuse(self, query_id: str | None, detail: str, topics: Topics | None = None) -> None:
        """An error answer to a request not taken (``query_id``: as its client named it)."""
        topics = topics or self.topics
        body = {"type": "error", "id": query_id, "code": "rejected", "detail": detail}
        body["satellite"] = ""
        topic = topics.answer(query_id) if query_id else topics.rejected
        self._spawn(self._publish(topic, body, qos=1))

    def _sending_again(self, query_id: str, why: str) -> None:
        """A query that left the ground got no answer in time: say where it was (the
        hop still open is where it was lost) before it is sent again."""
        self.stats[f"sent_again_{why}"] += 1
        event(
            "query sent again",
            logging.WARNING,
            id=query_id,
            why=why,
            **self.mcc.whereabouts(query_id),
        )

    # -- answers out ---------------------------------------------------------------------------
    def _on_result(self, pending: Pending) -> None:
        msg, data = pending.result_message, pending.result_data
        if msg is None or data is None:
            return
        kind = "answer" if isinstance(msg, Answer) else "error"
        # published with the id its client knows (the queue and the report keep the key)
        published = answer_json(msg) | {"id": split_scoped_id(pending.id)[1]}
        stored = self.queue.record_answer(
            pending.id,
            kind,
            data,
            self.clock.now(),
            timeline_json(pending.timeline),
            body=dumps(published),
        )
        if stored:
            self.stats[f"{kind}s"] += 1
            outcome = "answer" if isinstance(msg, Answer) else msg.code
            trips = self._round_trips.setdefault(outcome, Buckets(ROUND_TRIP_BOUNDS_S))
            trips.observe(pending.timeline.total_s or 0.0)
            event(
                "answered",
                id=pending.id,
                kind=kind,
                satellite=msg.satellite,
                total_s=round(pending.timeline.total_s or 0.0, 3),
            )
            self._outbox.set()

    def _on_chunk(self, chunk: AnswerChunk) -> None:
        if self.bridge is not None and self.bridge.is_connected:
            topics, local_id = self._topics_of(chunk.id)
            body = chunk_json(chunk) | {"id": local_id}
            self._spawn(self._publish(topics.chunk(local_id), body, qos=0))

    async def _on_connected(self) -> None:
        self._outbox.set()

    async def _publisher(self) -> None:
        """The outbox, the one path answers take to MQTT: publish every answered row,
        whenever there are some and the broker is there (see the module docstring)."""
        assert self.bridge is not None
        while True:
            await self._outbox.wait()
            self._outbox.clear()
            if not self.bridge.is_connected:
                continue  # _on_connected sets the outbox again
            for rec in self.queue.unpublished():
                if not await self._publish_answer(rec):
                    break
                self.stats["published"] += 1

    async def _publish_answer(self, rec: QueryRecord) -> bool:
        """The timeline, then the answer (the last word on a query); the row is marked
        published once the broker has acknowledged the answer."""
        body = rec.body
        if body is None:  # a row stored by a linkstack before schema 2 (never scoped)
            assert rec.answer is not None
            msg = decode(rec.answer)
            assert isinstance(msg, Answer | ErrorMessage)
            body = dumps(answer_json(msg))
        topics, local_id = self._topics_of(rec.id)
        timeline = rec.timeline
        if timeline is not None:
            timeline = timeline | {"query_id": local_id}
            if not await self._publish(topics.timeline(local_id), timeline, qos=1):
                return False
        if not await self._publish_body(topics.answer(local_id), body, qos=1):
            return False
        self.queue.mark_published(rec.id)  # the PUBACK is in
        return True

    async def _publish_unit(self, topic: str, unit: bytes) -> bool:
        return await self._publish_body(topic, unit, qos=1)

    async def _publish(self, topic: str, body: dict[str, Any], qos: int) -> bool:
        return await self._publish_body(topic, dumps(body), qos)

    async def _publish_body(self, topic: str, body: bytes, qos: int) -> bool:
        if self.bridge is None:
            return False
        return await self.bridge.publish(topic, body, qos=qos)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    # -- status -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        if self.bridge is None:
            mqtt = "disabled"
        else:
            mqtt = "connected" if self.bridge.is_connected else "disconnected"
        return {
            "queue": self.queue.counts(),
            "pending": sum(1 for p in self.client.pending.values() if not p.done),
            "mqtt": mqtt,
        }

    def pending(self) -> dict[str, Any]:
        """``GET /pending``: each query on its way (not yet answered), where it is:
        when it was submitted and sent, and what mission control knows of it
        (:meth:`MissionControl.whereabouts`)."""
        now = self.clock.now()
        out = []
        for p in self.client.pending.values():
            if p.done:
                continue
            out.append(
                {
                    "id": p.id,
                    "submit_t_s": p.timeline.submit_t_s,
                    "age_s": round(now - p.timeline.submit_t_s, 3),
                    "sent": p.sent,
                    **self.mcc.whereabouts(p.id),
                }
            )
        return {"t_s": now, "pending": out}

    def round_trips(self) -> dict[str, Buckets]:
        """The histogram of the round trips finished in this run, by outcome."""
        return {
            outcome: Buckets(b.bounds, b.counts, b.sum) for outcome, b in self._round_trips.items()
        }

    def counters(self) -> dict[str, Any]:
        out = {
            "app": dict(self.stats),
            "client": dict(self.client.stats),
            # what must stay bounded however many queries are answered (bench soak)
            "held": {**self.client.held(), **self.mcc.held()},
        }
        if self.bridge is not None:
            out["mqtt"] = dict(self.bridge.stats)
        return out


NAMES_LISTED_MAX = 24  # a refusal lists the computing satellites up to this many


def _known(names: Collection[str], wrong: str = "") -> str:
    """The computing satellites for a refusal: all of them when few, else how many
    and the names closest to ``wrong`` (planned-2800 has 2,400)."""
    if len(names) <= NAMES_LISTED_MAX:
        return ", ".join(sorted(names))
    close = difflib.get_close_matches(wrong, list(names), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"{len(names):,} of them{hint}"
