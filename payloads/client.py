"""The ground application's side: ask a question, get exactly one answer and its timeline.

::

    client = Client(ground, clock)
    answer, timeline = await client.ask("What is the orbital period at 500 km?")
    answer, timeline = await client.ask("...", target="CS-07", stream=True, on_chunk=print)

A :class:`Client` talks to a *ground segment* (:class:`GroundSegment`: in the
emulator, the mission control of :mod:`linkstack.runtime`), which queues each message
until a satellite can be reached, uplinks it and, for a target out of view, has
it relayed over the laser links. The ground segment hands every message that comes
down back to :meth:`Client.on_message`.

- **Targets.** ``target=None`` asks whichever computing satellite the ground can
  reach that has room: the ground segment spreads such queries over them, least
  loaded first by its own count of queries in flight (at equal load, the one in
  view whose pass lasts longest); a name (``"CS-07"``) asks that computing
  satellite, straight up when it is in view, relayed over laser links through a
  satellite in view when it is not. A query waits on the ground while no satellite
  can be reached, and while the satellites it may go to have no room: the ground
  uplinks to a satellite at most what its onboard queue and model can hold.
- **Busy is not an answer.** A satellite that refuses a query ``busy`` (its queue
  was full after all) is acknowledged, and the query goes back to the ground
  segment's queue (:meth:`GroundSegment.refused_busy`), with the same id, to be
  sent elsewhere or later; the query keeps waiting for its first real answer.
- **Final refusals from the ground.** The ground gives up on a query in two cases
  only, each with an :class:`ErrorMessage` of its own (satellite ``""``) as the
  query's answer: ``ground_queue_full`` when the ground segment's queue had no room
  for it at submission (:class:`GroundQueueFullError`), ``deadline_exceeded`` when
  no answer came within ``deadline_s`` of its submission.
- **Exactly one answer.** The satellite repeats each answer until acknowledged;
  the client keeps the first copy of each (an :class:`Answer` or an
  :class:`ErrorMessage`), acknowledges every copy it sees (acks are batched for
  ``ack_delay_s`` per satellite), and drops the rest. Streamed chunks arriving
  before the answer go to ``on_chunk`` and to :meth:`Pending.chunks`, once each.
- **Retries.** Laser links and relays have no retransmission of their own (the
  uplink is COP-1, which does not lose): a query lost after COP-1 delivered it (a
  laser unit lost in a pointing fade, a relay that restarted out of view) is sent
  again with the same id when its answer is overdue. The ground segment says, at
  each uplink of a query, when its answer should be on the ground if nothing was
  lost (:meth:`GroundSegment.answer_due_t_s`: from the route, the target's recent
  compute times and the next contact down); the client looks then, and sends the
  query again if it left the ground and no answer came (:meth:`Client.answer_due`).
  Where the ground has no such estimate, a query that left the ground and got no
  answer within ``retry_after_s`` is sent again, the interval doubling. Either way
  at most ``max_retries`` times; the satellite runs a query id once and re-sends its
  answer to a repeated query, and the client keeps the first answer.
- **Timelines.** Each query has a :class:`payloads.timeline.Timeline`: the client
  sets the submit instant, the onboard instants the answer carries and the
  arrival; the ground segment fills what it observed (contact wait, the uplink's
  frames and retransmissions, relay hops, the downlink) through
  :meth:`GroundSegment.annotate`.
- **Memory.** By default the client keeps every query it was asked and every
  timeline (an emulation's report reads them all). A client that runs for ever (the
  ground daemon) passes ``keep_settled``: it then lets a query go once it is settled
  (:attr:`Client.pending` holds those on their way only), keeps the ids of the last
  that many settled (to drop the late copies of their answers as duplicates) and no
  list of timelines; a copy of an older answer is still acknowledged, and counted
  ``unsolicited``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from linkstack.errors import ConfigError, DecodeError, LinkstackError
from linkstack.timebase import Clock, TimerHandle
from payloads.backends import GenerationParams
from payloads.messages import (
    TRANSIENT_ERROR_CODES,
    Ack,
    Answer,
    AnswerChunk,
    ErrorMessage,
    Params,
    Query,
    decode,
    encode,
)
from payloads.timeline import Timeline

# a query still on the ground when its answer was due (COP-1 holds it: a pass ended,
# retransmissions) is looked at again this often
ON_GROUND_RECHECK_S = 30.0


class GroundSegment(Protocol):
    """What the client needs from the ground: a queue to the satellites and what it saw."""

    def submit(self, message: bytes, *, target: str | None, query_id: str | None) -> None:
        """Queue one message (a query, or an ack when ``query_id`` is None) for
        ``target`` (None: any satellite). Raises :class:`GroundQueueFullError` when
        the queue has no room for a query it does not know yet."""
        ...

    def refused_busy(self, query_id: str, satellite: str, t_s: float | None) -> None:
        """``satellite`` refused the query ``busy`` at ``t_s`` (its own clock): queue
        it again, same id, for another satellite with room or for later."""
        ...

    def settled(self, query_id: str, satellite: str) -> None:
        """The query has its final answer (or refusal) from ``satellite`` (``""``: the
        ground gave up): nothing more to send, no longer in flight."""
        ...

    def in_view(self, target: str | None) -> bool:
        """Whether a message for ``target`` (None: any satellite) could go straight up
        now: the satellite is in view."""
        ...

    def relayed(self, target: str | None) -> bool:
        """Whether a message for ``target`` could leave now only to be relayed over
        laser links: it is out of view, a satellite in view reaches it."""
        ...

    def on_ground(self, query_id: str) -> bool:
        """Whether the last copy of this query is still on the ground (queued, or not
        yet acknowledged by COP-1)."""
        ...

    def answer_due_t_s(self, query_id: str) -> float | None:
        """When the answer to the query's last copy that left the ground should be
        on the ground if nothing was lost on the way, or None if unknown."""
        ...

    def annotate(self, timeline: Timeline) -> None:
        """Fill what the ground segment observed of this query's round trip."""
        ...


@dataclass(frozen=True)
class ClientConfig:
    ack_delay_s: float = 0.2
    retry_after_s: float = 900.0
    max_retries: int = 3
    # the ground gives up on a query with no answer this long after its submission
    deadline_s: float = 86_400.0

    def __post_init__(self) -> None:
        if not self.ack_delay_s >= 0:
            raise ConfigError("ClientConfig", "ack_delay_s", "must be >= 0")
        if not self.retry_after_s > 0:
            raise ConfigError("ClientConfig", "retry_after_s", "must be positive")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError("ClientConfig", "max_retries", "must be an integer >= 0")
        if not self.deadline_s > 0:
            raise ConfigError("ClientConfig", "deadline_s", "must be positive")


class GroundQueueFullError(LinkstackError):
    """The ground segment's queue has no room for another query (raised by
    :meth:`GroundSegment.submit`; the client turns it into the query's
    ``ground_queue_full`` refusal)."""


class QueryRefusedError(LinkstackError):
    """The query was refused for good: ``error`` is the :class:`ErrorMessage`, from
    the satellite or (satellite ``""``) from the ground."""

    def __init__(self, error: ErrorMessage, timeline: Timeline) -> None:
        self.error = error
        self.timeline = timeline
        by = error.satellite or "the ground"
        super().__init__(f"query {error.id} refused by {by}: {error.code}: {error.detail}")


class Pending:
    """A query on its way: its id, its timeline, its chunks, then its answer."""

    def __init__(self, query: Query, target: str | None, timeline: Timeline) -> None:
        self.query = query
        self.target = target
        self.timeline = timeline
        self.id = query.id
        self.chunks_seen: dict[int, AnswerChunk] = {}
        self.result_message: Answer | ErrorMessage | None = None
        self.result_data: bytes | None = None  # the answer's octets, as they came down
        self._done = asyncio.get_running_loop().create_future()
        self._chunk_queue: asyncio.Queue[AnswerChunk | None] = asyncio.Queue()
        self.on_chunk: Callable[[AnswerChunk], object] | None = None
        self.sent = 1
        self.retry_timer: TimerHandle | None = None
        self.due_timer: TimerHandle | None = None  # the ground's expected answer instant
        self.deadline_timer: TimerHandle | None = None

    @property
    def done(self) -> bool:
        return self._done.done()

    async def result(self) -> tuple[Answer, Timeline]:
        """The answer and the timeline; raises :class:`QueryRefusedError` on an error answer."""
        msg = await asyncio.shield(self._done)
        if isinstance(msg, ErrorMessage):
            raise QueryRefusedError(msg, self.timeline)
        return msg, self.timeline

    async def chunks(self) -> AsyncIterator[AnswerChunk]:
        """Streamed chunks as they arrive, until the answer does."""
        while True:
            chunk = await self._chunk_queue.get()
            if chunk is None:
                return
            yield chunk

    def _chunk(self, chunk: AnswerChunk) -> bool:
        if self.done or chunk.seq in self.chunks_seen:
            return False
        self.chunks_seen[chunk.seq] = chunk
        self._chunk_queue.put_nowait(chunk)
        if self.on_chunk is not None:
            self.on_chunk(chunk)
        return True

    def _finish(self, msg: Answer | ErrorMessage, data: bytes) -> None:
        self.result_message = msg
        self.result_data = data
        self._chunk_queue.put_nowait(None)
        if not self._done.done():
            self._done.set_result(msg)


class Client:
    """A ground application's client (see the module docstring).

    ``keep_settled``: how many ids of settled queries it remembers (None: every query
    whole, and every timeline in :attr:`timelines`; see "Memory" in the module
    docstring)."""

    def __init__(
        self,
        ground: GroundSegment,
        clock: Clock,
        config: ClientConfig | None = None,
        *,
        id_prefix: str = "q",
        seed: int | None = None,
        on_result: Callable[[Pending], object] | None = None,
        keep_settled: int | None = None,
    ) -> None:
        if keep_settled is not None and keep_settled < 0:
            raise ConfigError("client", "keep_settled", f"must be >= 0, got {keep_settled}")
        self.ground = ground
        self.clock = clock
        self.config = config or ClientConfig()
        self.on_result = on_result  # each query, once its answer (or error) is in
        # (query id, why: "overdue" or "retry") just before a query is sent again
        self.on_send_again: Callable[[str, str], object] | None = None
        self.keep_settled = keep_settled
        tag = random.Random(seed).getrandbits(16)
        self._ids = (f"{id_prefix}{n:03d}-{tag:04x}" for n in itertools.count(1))
        self.pending: dict[str, Pending] = {}  # asked (settled too, if keep_settled None)
        self.timelines: list[Timeline] = []  # every query's (keep_settled None only)
        # answers to no query of ours (the last keep_settled of them, if bounded)
        self.unsolicited: deque[Answer | ErrorMessage] = deque(maxlen=keep_settled)
        self._settled: OrderedDict[str, None] = OrderedDict()  # ids, oldest first (bounded)
        self.stats: Counter[str] = Counter()
        self._acks: dict[str, list[str]] = {}
        self._ack_timer: TimerHandle | None = None

    # -- asking -----------------------------------------------------------------------------
    def submit(
        self,
        prompt: str,
        params: Params | GenerationParams | None = None,
        *,
        stream: bool = False,
        target: str | None = None,
        on_chunk: Callable[[AnswerChunk], object] | None = None,
        query_id: str | None = None,
    ) -> Pending:
        """Queue a query now; await :meth:`Pending.result` for the answer."""
        if isinstance(params, GenerationParams):
            params = Params(
                params.max_new_tokens,
                params.temperature,
                params.top_p,
                params.thinking,
                params.seed,
            )
        params = params or Params()
        now_t_s = self.clock.now()
        query = Query(query_id or next(self._ids), prompt, params, stream, now_t_s)
        if query.id in self.pending or query.id in self._settled:
            raise ConfigError("client", "query_id", f"{query.id!r} is already in use")
        data = encode(query)  # refuses a bad id before anything is queued
        timeline = Timeline(
            query.id,
            now_t_s,
            satellite=target or "",
            in_view_at_submit=self.ground.in_view(target),
            relayed_at_submit=self.ground.relayed(target),
        )
        pending = Pending(query, target, timeline)
        pending.on_chunk = on_chunk
        self.pending[query.id] = pending
        if self.keep_settled is None:
            self.timelines.append(timeline)
        self.stats["queries"] += 1
        try:
            self.ground.submit(data, target=target, query_id=query.id)
        except GroundQueueFullError as exc:  # refused at once, answered on the next turn
            self.clock.call_at(now_t_s, self._give_up, pending, "ground_queue_full", str(exc))
            return pending
        self._arm_retry(pending, self.config.retry_after_s)
        pending.deadline_timer = self.clock.call_at(
            now_t_s + self.config.deadline_s, self._deadline, pending
        )
        return pending

    async def ask(
        self,
        prompt: str,
        params: Params | GenerationParams | None = None,
        *,
        stream: bool = False,
        target: str | None = None,
        on_chunk: Callable[[AnswerChunk], object] | None = None,
    ) -> tuple[Answer, Timeline]:
        """Ask and wait: the answer and its timeline, or :class:`QueryRefusedError`."""
        pending = self.submit(prompt, params, stream=stream, target=target, on_chunk=on_chunk)
        return await pending.result()

    def _arm_retry(self, pending: Pending, after_s: float) -> None:
        pending.retry_timer = self.clock.call_at(
            self.clock.now() + after_s, self._retry, pending, after_s
        )

    def _retry(self, pending: Pending, interval_s: float) -> None:
        pending.retry_timer = None
        if pending.done:
            return
        if self.ground.on_ground(pending.id):  # still waiting to leave: not lost
            self._arm_retry(pending, interval_s)
            return
        if pending.sent > self.config.max_retries:
            return
        if self.on_send_again is not None:
            self.on_send_again(pending.id, "retry")
        try:
            self.ground.submit(encode(pending.query), target=pending.target, query_id=pending.id)
        except GroundQueueFullError:  # no room on the ground now: look again later
            self._arm_retry(pending, interval_s)
            return
        pending.sent += 1
        self.stats["retries"] += 1
        self._arm_retry(pending, 2 * interval_s)

    def answer_due(self, query_id: str, due_t_s: float) -> None:
        """The ground segment uplinked the query and expects its answer by ``due_t_s``
        (its ``on_dispatched``): look then (:meth:`_overdue`)."""
        pending = self.pending.get(query_id)
        if pending is None or pending.done:
            return
        if pending.due_timer is not None:
            pending.due_timer.cancel()
        pending.due_timer = self.clock.call_at(due_t_s, self._overdue, pending)

    def _overdue(self, pending: Pending) -> None:
        pending.due_timer = None
        if pending.done:
            return
        now = self.clock.now()
        if self.ground.on_ground(pending.id):  # COP-1 still holds it: not lost
            pending.due_timer = self.clock.call_at(
                now + ON_GROUND_RECHECK_S, self._overdue, pending
            )
            return
        due_t_s = self.ground.answer_due_t_s(pending.id)
        if due_t_s is None:  # no estimate: the flat retry stands
            return
        if due_t_s > now:  # COP-1 took longer than allowed at dispatch: the trip starts later
            pending.due_timer = self.clock.call_at(due_t_s, self._overdue, pending)
            return
        if pending.sent > self.config.max_retries:
            return
        if self.on_send_again is not None:
            self.on_send_again(pending.id, "overdue")
        try:
            self.ground.submit(encode(pending.query), target=pending.target, query_id=pending.id)
        except GroundQueueFullError:
            pending.due_timer = self.clock.call_at(
                now + ON_GROUND_RECHECK_S, self._overdue, pending
            )
            return
        pending.sent += 1
        self.stats["resent_overdue"] += 1
        if pending.retry_timer is not None:  # the flat retry counts from this copy
            pending.retry_timer.cancel()
        self._arm_retry(pending, self.config.retry_after_s)

    def _deadline(self, pending: Pending) -> None:
        pending.deadline_timer = None
        if pending.done:
            return
        where = (
            "it was still waiting on the ground"
            if self.ground.on_ground(pending.id)
            else "it left the ground and no answer came down"
        )
        self.ground.settled(pending.id, "")
        detail = f"no answer within {self.config.deadline_s:g} s of its submission ({where})"
        self._give_up(pending, "deadline_exceeded", detail)

    def _give_up(self, pending: Pending, code: str, detail: str) -> None:
        """The ground's own final refusal of a query."""
        if pending.done:
            return
        self.stats[code] += 1
        error = ErrorMessage(pending.id, code, detail[:500], "", self.clock.now())
        pending.timeline.error = code
        self._settle(pending, error, encode(error))

    # -- what comes down -------------------------------------------------------------------
    def on_message(self, data: bytes, t_s: float, satellite: str = "") -> None:
        """A complete message from the downlink of ``satellite``, arrived at ``t_s``."""
        try:
            msg = decode(data)
        except DecodeError:
            self.stats["malformed"] += 1
            return
        if isinstance(msg, AnswerChunk):
            pending = self.pending.get(msg.id)
            if pending is not None and pending._chunk(msg):
                self.stats["chunks"] += 1
            return
        if not isinstance(msg, Answer | ErrorMessage):
            self.stats["unexpected"] += 1
            return
        self._ack(msg.satellite or satellite, msg.id)
        pending = self.pending.get(msg.id)
        if pending is None and msg.id in self._settled:  # let go of once settled
            self.stats["duplicates"] += 1
            return
        if pending is None:
            self.stats["unsolicited"] += 1
            self.unsolicited.append(msg)
            return
        if pending.done:
            self.stats["duplicates"] += 1
            return
        if isinstance(msg, ErrorMessage) and msg.code in TRANSIENT_ERROR_CODES:
            self.stats[msg.code] += 1  # not an answer: the ground sends the query again
            self.ground.refused_busy(msg.id, msg.satellite or satellite, msg.t_s)
            return
        self.stats["answers" if isinstance(msg, Answer) else "errors"] += 1
        self.ground.settled(msg.id, msg.satellite or satellite)
        timeline = pending.timeline
        timeline.satellite = msg.satellite or timeline.satellite
        if isinstance(msg, Answer):
            times = msg.times
            timeline.query_on_board_t_s = times.query_complete_t_s
            timeline.power_asked_t_s = times.power_asked_t_s
            timeline.inference_timing = msg.inference_timing
            timeline.battery_wh = msg.battery_wh
            timeline.inference_start_t_s = times.inference_start_t_s
            timeline.first_token_t_s = times.first_token_t_s
            timeline.inference_end_t_s = times.inference_end_t_s
            timeline.answer_on_ground_t_s = t_s
        else:
            timeline.error = msg.code
        self._settle(pending, msg, bytes(data))

    def _settle(self, pending: Pending, msg: Answer | ErrorMessage, data: bytes) -> None:
        """The query's first real answer (or final refusal) is in: hand it over once."""
        for timer in (pending.retry_timer, pending.due_timer, pending.deadline_timer):
            if timer is not None:
                timer.cancel()
        pending.retry_timer = pending.due_timer = pending.deadline_timer = None
        self.ground.annotate(pending.timeline)
        pending._finish(msg, data)
        if self.on_result is not None:
            self.on_result(pending)
        self._remember_settled(pending.id)

    def _remember_settled(self, query_id: str) -> None:
        """A bounded client lets the query go and keeps its id, the last
        ``keep_settled`` of them."""
        if self.keep_settled is None:
            return
        del self.pending[query_id]
        self._settled[query_id] = None
        while len(self._settled) > self.keep_settled:
            self._settled.popitem(last=False)

    def held(self) -> dict[str, int]:
        """How much it holds (what must stay bounded in a process that runs for ever)."""
        return {
            "pending": len(self.pending),
            "settled_ids": len(self._settled),
            "timelines": len(self.timelines),
            "unsolicited": len(self.unsolicited),
        }

    def _ack(self, satellite: str, msg_id: str) -> None:
        self._acks.setdefault(satellite, [])
        if msg_id not in self._acks[satellite]:
            self._acks[satellite].append(msg_id)
        if self._ack_timer is None:
            self._ack_timer = self.clock.call_at(
                self.clock.now() + self.config.ack_delay_s, self._flush_acks
            )

    def _flush_acks(self) -> None:
        self._ack_timer = None
        acks, self._acks = self._acks, {}
        for satellite, ids in acks.items():
            for i in range(0, len(ids), 256):
                self.stats["acks_sent"] += 1
                data = encode(Ack(tuple(ids[i : i + 256])))
                self.ground.submit(data, target=satellite or None, query_id=None)

    def close(self) -> None:
        for pending in self.pending.values():
            for timer in (pending.retry_timer, pending.due_timer, pending.deadline_timer):
                if timer is not None:
                    timer.cancel()
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
