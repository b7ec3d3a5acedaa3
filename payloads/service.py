"""The onboard inference endpoint: queries in, answers out, on a computing satellite.

:class:`InferenceService` sits above the packet layer of a satellite node. The node
hands it each complete message that arrived for it (``QUERY_APID``: queries and
acks, already reassembled from their Space Packets) with :meth:`on_message`, and the
service hands back the messages for the ground (answers, chunks, errors) through
the ``send`` callable it was given, which queues them for the downlink (directly,
or over laser links to a satellite in view of a station) and says when they can
leave for the ground.

- **One inference at a time** by default (``ServiceConfig.concurrency``); queries
  wait in a FIFO queue of at most ``max_queued``, beyond which they are refused
  with ``busy``. The model runs in a worker thread (``run_in_executor``), so the
  node keeps receiving, relaying and acknowledging while it computes.
- **Timings.** The onboard instants (query complete, inference start, first token,
  inference end, answer queued) are ``t_s`` of the node's clock. The compute
  durations come from the backend's own stopwatch (``Generation.ttft_s``,
  ``generate_s``), or, with ``ServiceConfig.timing`` (an accelerator and a model
  profile, :mod:`payloads.timing`), from the timing model for the generation's
  prompt (counted with Qwen3's own tokenizer where it is installed,
  :mod:`payloads.qwen_tokenizer`) and completion tokens, while the text still comes
  from the backend (a backend of random weights, the tiny model, writes its noise in
  Qwen3's tokens then, so that the answer has the size Qwen3's would:
  :class:`payloads.modelled.Qwen3SizedText`; ``timing_source`` says which, and so
  does each answer: :attr:`payloads.messages.Answer.timing_source`); they are placed
  on the clock from the instant the model started: the first token at start + TTFT,
  the end at start + generation time, and the answer leaves when the clock reaches
  that end. In emulated time (a looptime
  loop, which moves its clock during an executor wait only in steps that nothing
  else interrupts) this is what keeps the inference legs equal to the compute time
  really spent; in wall-clock time the clock is already there and nothing waits.
- **Power.** Given a :class:`PowerGate` (the satellite's battery, with the
  scenario's ``[power]`` on), the endpoint asks it, once the generation's compute
  time is known, when the inference may start: the battery must carry it above its
  depth-of-discharge limit. Under a timing profile the accelerator's draw follows
  its utilisation over the generation (:meth:`payloads.timing.InferenceTiming.
  utilisation`: it grows with the batch), else it is the busy power. The inference
  starts then (``power_asked_t_s`` to ``inference_start_t_s`` is the answer's
  ``power_wait``), streamed chunks held until then; a battery that can never carry
  it refuses it (``model_unavailable``).
- **Streaming.** With ``Query.stream`` the text goes down as :class:`AnswerChunk`
  messages while it is produced, one every ``chunk_interval_s`` of compute at most,
  each at the instant its last piece was produced; the final :class:`Answer` still
  carries the whole text. Chunks are sent once (a lost chunk costs a preview).
- **Refusals** never stop the endpoint: malformed CBOR, an unknown version or
  message type (``malformed`` / ``rejected``), parameters the backend refuses
  (``rejected``), a prompt longer than ``backend.max_prompt_tokens``
  (``prompt_too_long``), a full queue (``busy``), a backend that fails to load or
  to generate (``model_unavailable``) each give one :class:`ErrorMessage`, and the
  next query is served. ``busy`` is the one transient refusal: it is repeated until
  acknowledged like the others, but it is not the id's answer. The same id arriving
  again (the ground retries it) drops a ``busy`` not yet acknowledged and is
  considered afresh, and an acknowledged ``busy`` is not remembered.
- **Exactly one answer on the ground.** The downlink has no retransmission of its
  own: every answer (and error) is repeated until an :class:`Ack` names it. The
  first repetition is due ``repeat_s`` after the instant the ``send`` callable
  said the copy could leave for the ground (so a copy waiting for a pass is not
  repeated behind itself), later ones back off by ``repeat_backoff`` up to
  ``max_repeat_s``. A query that arrives again (the ground retried) is not run
  again: a pending answer is re-sent at once, a running or queued one is left to
  finish (a pending ``busy`` is no answer: see above).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import cbor2

from linkstack.errors import ConfigError, DecodeError
from linkstack.timebase import Clock, TimerHandle
from payloads.backends import Backend, Generation, GenerationParams, ModelUnavailableError
from payloads.messages import (
    HOST_TIMING,
    MAX_ID_LEN,
    Ack,
    Answer,
    AnswerChunk,
    ErrorMessage,
    MessageKey,
    OnboardTimes,
    Query,
    answer_key,
    decode,
    encode,
)
from payloads.modelled import Qwen3SizedText, modelled_generation, timing_prompt_tokens
from payloads.qwen_tokenizer import count_chat_tokens
from payloads.timing import InferenceTiming

log = logging.getLogger(__name__)

HOST_STOPWATCH = HOST_TIMING

# Queue a message for the ground, with its key (None for a chunk); return the instant
# it can leave for the ground (now if the satellite, or the relay it goes through, is
# in contact), or None if no route to the ground is known.
SendFn = Callable[[bytes, MessageKey | None], float | None]


class PowerGate(Protocol):
    """The satellite's power system, as the endpoint asks it before an inference
    (the runtime's ``OnboardPower`` over a :class:`payloads.power.PowerModel`)."""

    def inference_start(
        self, t_s: float, duration_s: float, utilisation: float = 1.0
    ) -> float | None:
        """When an inference of ``duration_s`` asked for at ``t_s``, the accelerator
        working at ``utilisation`` (0..1: its draw between idle and busy power), can
        start (>= ``t_s``), booked; None if the battery can never carry it."""
        ...

    def soc_wh_at(self, t_s: float) -> float:
        """The battery's charge at ``t_s`` with what is booked (the answer reports it)."""
        ...


@dataclass(frozen=True)
class ServiceConfig:
    concurrency: int = 1  # inferences at once
    max_queued: int = 16  # queries waiting for the model; more are refused "busy"
    repeat_s: float = 20.0  # first repetition of an unacknowledged answer
    repeat_backoff: float = 1.5
    max_repeat_s: float = 300.0
    chunk_interval_s: float = 0.5  # of compute time, between two streamed chunks
    keep_acked: int = 1024  # ids of acknowledged answers remembered (duplicates ignored)
    # run the model in the loop's own thread: a virtual-time loop then cannot move while
    # it runs, which makes runs with a scripted backend reproducible (linkstack.capture.samples)
    inline: bool = False
    # the accelerator and model whose compute time the inference legs take (None: the
    # backend's own stopwatch on this host)
    timing: InferenceTiming | None = None

    @property
    def timing_source(self) -> str:
        """What the inference legs measure: ``modelled: ACC/MODEL/PRECISION`` or
        ``host stopwatch``."""
        return self.timing.label if self.timing is not None else HOST_STOPWATCH

    def __post_init__(self) -> None:
        where = "ServiceConfig"
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ConfigError(where, "concurrency", f"must be >= 1, got {self.concurrency!r}")
        if not isinstance(self.max_queued, int) or self.max_queued < 0:
            raise ConfigError(where, "max_queued", f"must be >= 0, got {self.max_queued!r}")
        for name in ("repeat_s", "max_repeat_s", "chunk_interval_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(where, name, f"must be positive, got {getattr(self, name)!r}")
        if not self.repeat_backoff >= 1.0:
            raise ConfigError(where, "repeat_backoff", "must be >= 1")


@dataclass(slots=True)
class _Job:
    query: Query
    params: GenerationParams
    complete_t_s: float  # the query's last segment arrived


@dataclass(slots=True)
class _Pending:
    """An answer (or error) sent and not yet acknowledged."""

    data: bytes
    final: bool = True  # False for a transient refusal (busy): not the id's answer
    copies: int = 0
    interval_s: float = 0.0
    timer: TimerHandle | None = None


@dataclass(slots=True, eq=False)
class _ScheduledChunk:
    """A chunk of a streamed answer, sent by ``timer`` when it is due (``offset_s``
    of compute after the inference's start)."""

    chunk: AnswerChunk
    offset_s: float
    timer: TimerHandle | None = None


@dataclass(slots=True)
class _Stream:
    """Pieces of a streamed answer, cut into chunks by compute time."""

    query_id: str
    start_t_s: float
    interval_s: float
    seq: int = 0
    text: list[str] = field(default_factory=list)
    window_start_s: float = 0.0  # compute time at which the current chunk's first piece came
    last_offset_s: float = 0.0  # compute time of the last piece
    scheduled: deque[_ScheduledChunk] = field(default_factory=deque)  # not yet sent
    # False while the start is not known (a power model to ask): chunks are held, no timer
    armed: bool = True


class InferenceService:
    """A computing satellite's inference endpoint (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        clock: Clock,
        send: SendFn,
        *,
        satellite: str = "",
        config: ServiceConfig | None = None,
        power: PowerGate | None = None,
    ) -> None:
        self.backend = backend
        self.power = power
        self.clock = clock
        self.send_fn = send
        self.satellite = satellite
        self.config = config or ServiceConfig()
        self.stats: Counter[str] = Counter()
        self._queue: asyncio.Queue[_Job] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._known: set[str] = set()  # queued or running
        self._pending: dict[str, _Pending] = {}
        self._acked: OrderedDict[str, None] = OrderedDict()
        self._running = 0
        self._malformed = itertools.count(1)
        self._load_error: str | None = None
        self.busy_s = 0.0  # compute time of the inferences run (utilisation)

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the workers (inside the running loop). Load the backend first if you
        do not want the first query to pay for it (``backend.load()``)."""
        if self._workers:
            return
        if self.config.timing is not None:  # read Qwen3's vocabulary now, not on a query
            count_chat_tokens("")
        self._queue = asyncio.Queue()
        if not self.config.inline:
            self._executor = ThreadPoolExecutor(
                self.config.concurrency, thread_name_prefix=f"model-{self.satellite}"
            )
        loop = asyncio.get_running_loop()
        self._workers = [
            loop.create_task(self._worker(), name=f"service {self.satellite} #{i}")
            for i in range(self.config.concurrency)
        ]

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    @property
    def queued(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    @property
    def unacknowledged(self) -> tuple[str, ...]:
        return tuple(self._pending)

    # -- what arrives ----------------------------------------------------------------------
    def on_message(self, data: bytes, t_s: float | None = None) -> None:
        """One complete message from the packet layer; ``t_s`` when its last segment
        arrived (default: now). Never raises."""
        t_s = self.clock.now() if t_s is None else t_s
        try:
            self._on_message(data, t_s)
        except Exception:  # the endpoint must keep serving whatever happens
            log.exception("service %s: unexpected error on a message", self.satellite)
            self.stats["internal_errors"] += 1

    def _on_message(self, data: bytes, t_s: float) -> None:
        self.stats["messages"] += 1
        try:
            msg = decode(data)
        except DecodeError as exc:
            self.stats["malformed"] += 1
            self._refuse(self._salvage_id(data), "malformed", str(exc))
            return
        if isinstance(msg, Ack):
            self._on_ack(msg)
        elif isinstance(msg, Query):
            self._on_query(msg, t_s)
        else:
            self.stats["rejected"] += 1
            self._refuse(msg.id, "rejected", f"a {type(msg).__name__} is not for the satellite")

    def _salvage_id(self, data: bytes) -> str:
        """The id of a malformed message if it has a usable one, else a fresh one."""
        with contextlib.suppress(Exception):
            body = cbor2.loads(bytes(data))
            msg_id = body.get("id") if isinstance(body, dict) else None
            if isinstance(msg_id, str) and 0 < len(msg_id) <= MAX_ID_LEN:
                return msg_id
        return f"malformed-{self.satellite or 'sat'}-{next(self._malformed)}"[:MAX_ID_LEN]

    def _on_ack(self, ack: Ack) -> None:
        self.stats["acks"] += 1
        for msg_id in ack.ids:
            pending = self._pending.pop(msg_id, None)
            if pending is None:
                continue
            if pending.timer is not None:
                pending.timer.cancel()
            if not pending.final:  # the ground knows; the id may come again
                self.stats["refusals_acknowledged"] += 1
                continue
            self.stats["answers_acknowledged"] += 1
            self._acked[msg_id] = None
            while len(self._acked) > self.config.keep_acked:
                self._acked.popitem(last=False)

    def _on_query(self, query: Query, t_s: float) -> None:
        self.stats["queries"] += 1
        pending = self._pending.get(query.id)
        if pending is not None and not pending.final:  # refused busy before: try again
            self.stats["queries_again_after_busy"] += 1
            del self._pending[query.id]
            if pending.timer is not None:
                pending.timer.cancel()
        elif pending is not None:  # the ground asked again: send the answer again
            self.stats["duplicate_queries"] += 1
            self._send_copy(query.id)
            return
        if query.id in self._known or query.id in self._acked:
            self.stats["duplicate_queries"] += 1
            return
        try:
            p = query.params
            params = GenerationParams(p.max_new_tokens, p.temperature, p.top_p, p.thinking, p.seed)
        except ConfigError as exc:
            self._refuse(query.id, "rejected", str(exc))
            return
        try:
            tokens = self.backend.count_tokens(query.prompt, params.thinking)
            limit = self.backend.max_prompt_tokens
        except Exception as exc:  # the backend did not load: nothing can be answered
            self._refuse(query.id, "model_unavailable", _reason(exc))
            return
        if tokens > limit:
            self._refuse(
                query.id,
                "prompt_too_long",
                f"{tokens} tokens after the chat template, more than the {limit} of "
                f"{self.backend.name} {self.backend.model}",
            )
            return
        assert self._queue is not None, "call start() first"
        if self._queue.qsize() + self._running >= self.config.concurrency + self.config.max_queued:
            self._refuse(
                query.id, "busy", f"{self._queue.qsize()} queries already wait", final=False
            )
            return
        self._known.add(query.id)
        self._queue.put_nowait(_Job(query, params, t_s))

    # -- the model ---------------------------------------------------------------------------
    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            self._running += 1
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one query stop the endpoint
                log.exception("service %s: query %s failed", self.satellite, job.query.id)
                self.stats["internal_errors"] += 1
                self._refuse(job.query.id, "model_unavailable", _reason(exc))
            finally:
                self._running -= 1
                self._known.discard(job.query.id)

    async def _run(self, job: _Job) -> None:
        query = job.query
        loop = asyncio.get_running_loop()
        picked_t_s = self.clock.now()
        stream = (
            _Stream(query.id, picked_t_s, self.config.chunk_interval_s, armed=self.power is None)
            if query.stream
            else None
        )
        backend = self.backend
        timing = self.config.timing
        if timing is not None and self.config.concurrency > 1:
            # decoded together with the others running now: a batch of that many
            timing = dataclasses.replace(timing, batch=max(timing.batch, self._running))

        utilisation = [1.0]  # the host's stopwatch: flat out, as far as anyone knows
        # a backend of random weights under a profile: its noise re-written in Qwen3's
        # tokens, so that the downlink carries what the modelled model would send
        sized = Qwen3SizedText.for_backend(backend) if timing is not None else None

        def work() -> Generation:
            t0 = time.perf_counter()
            prompt_tokens, ticks = 0, None
            if timing is not None:  # a streamed piece is a decoded token, at its modelled instant
                prompt_tokens = timing_prompt_tokens(backend, query.prompt, job.params.thinking)
                ticks = timing.iter_token_offsets_s(prompt_tokens)

            def emit(piece: str) -> None:
                if stream is None:
                    return
                offset_s = time.perf_counter() - t0 if ticks is None else next(ticks)
                if self._executor is None:  # config.inline: already in the loop's thread
                    self._piece(stream, offset_s, piece)
                else:
                    loop.call_soon_threadsafe(self._piece, stream, offset_s, piece)

            def on_text(piece: str) -> None:
                emit(piece if sized is None else sized.piece(piece))

            gen = backend.generate(query.prompt, job.params, on_text)
            if timing is None:
                return gen
            if sized is not None:  # noise in Qwen3's tokens: the size of Qwen3's answer
                tail = sized.top_up(gen)
                if tail:
                    emit(tail)
                gen = dataclasses.replace(gen, text=sized.text)
            utilisation[0] = timing.utilisation(prompt_tokens, gen.completion_tokens)
            return modelled_generation(gen, timing, prompt_tokens)

        self.stats["inferences"] += 1
        try:
            if self._executor is None:  # config.inline
                gen = work()
            else:
                gen = await loop.run_in_executor(self._executor, work)
        except (ModelUnavailableError, ConfigError) as exc:
            code = "prompt_too_long" if getattr(exc, "field", "") == "prompt" else None
            self.stats["model_errors"] += 1
            self._refuse(query.id, code or "model_unavailable", _reason(exc))
            return
        except Exception as exc:
            self.stats["model_errors"] += 1
            self._refuse(query.id, "model_unavailable", _reason(exc))
            return
        # The compute starts when the worker picks the query and lasts what the backend's
        # stopwatch says (which excludes any wait for a model shared with other workers
        # or, in the emulator, other satellites: each satellite has its own hardware).
        # With a power model, it starts when the battery can carry it (the power wait).
        start_t_s = picked_t_s
        if self.power is not None:
            # the draw follows how hard the accelerator works (the batch, under a profile)
            allowed = self.power.inference_start(picked_t_s, gen.generate_s, utilisation[0])
            if allowed is None:
                self.stats["refused_power"] += 1
                self._refuse(
                    query.id,
                    "model_unavailable",
                    f"power: the battery cannot carry {gen.generate_s:.1f} s of inference",
                )
                return
            start_t_s = max(allowed, picked_t_s)
            if start_t_s > picked_t_s:
                self.stats["power_waits"] += 1
        end_t_s = start_t_s + gen.generate_s
        self.busy_s += gen.generate_s
        if stream is not None:
            stream.start_t_s = start_t_s
            self._close_window(stream)
            self._arm(stream)
        await self.clock.sleep_until(end_t_s)
        if stream is not None:  # chunks not yet due go before the answer, in order
            while stream.scheduled:
                entry = stream.scheduled.popleft()
                if entry.timer is not None:
                    entry.timer.cancel()
                self._send_chunk(entry.chunk)
        times = OnboardTimes(
            query_complete_t_s=job.complete_t_s,
            inference_start_t_s=start_t_s,
            first_token_t_s=start_t_s + gen.ttft_s if gen.completion_tokens else None,
            inference_end_t_s=end_t_s,
            answer_queued_t_s=self.clock.now(),
            ttft_s=gen.ttft_s,
            generate_s=gen.generate_s,
            tokens_per_s=gen.tokens_per_s,
            power_asked_t_s=picked_t_s if self.power is not None else None,
        )
        answer = Answer(
            query.id,
            gen.text,
            gen.prompt_tokens,
            gen.completion_tokens,
            gen.finish_reason if gen.finish_reason in ("stop", "length") else "error",
            gen.backend,
            gen.model,
            gen.random_weights,
            self.satellite,
            times,
            # said in the answer (version 3) when a profile gave the legs; left out
            # (the host's stopwatch) otherwise, so such a run sends version 1 as before
            self.config.timing.label if self.config.timing is not None else "",
            # the charge left, for a ground that cannot see the battery (another process)
            self.power.soc_wh_at(end_t_s) if self.power is not None else None,
        )
        self.stats["answers"] += 1
        self._deliver(query.id, encode(answer))

    # -- streaming ---------------------------------------------------------------------------
    def _piece(self, stream: _Stream, offset_s: float, piece: str) -> None:
        if stream.text and offset_s >= stream.window_start_s + stream.interval_s:
            self._close_window(stream)
        if not stream.text:
            stream.window_start_s = offset_s
        stream.text.append(piece)
        stream.last_offset_s = offset_s

    def _close_window(self, stream: _Stream) -> None:
        if not stream.text:
            return
        chunk = AnswerChunk(stream.query_id, stream.seq, "".join(stream.text))
        stream.seq += 1
        stream.text = []
        entry = _ScheduledChunk(chunk, stream.last_offset_s)
        if stream.armed:
            due_t_s = stream.start_t_s + entry.offset_s
            entry.timer = self.clock.call_at(due_t_s, self._chunk_due, stream, entry)
        stream.scheduled.append(entry)

    def _arm(self, stream: _Stream) -> None:
        """The start is known: the chunks held get their timers."""
        if stream.armed:
            return
        stream.armed = True
        for entry in stream.scheduled:
            due_t_s = stream.start_t_s + entry.offset_s
            entry.timer = self.clock.call_at(due_t_s, self._chunk_due, stream, entry)

    def _chunk_due(self, stream: _Stream, entry: _ScheduledChunk) -> None:
        for i, scheduled in enumerate(stream.scheduled):
            if scheduled is entry:
                del stream.scheduled[i]
                self._send_chunk(entry.chunk)
                return

    def _send_chunk(self, chunk: AnswerChunk) -> None:
        chunk = AnswerChunk(chunk.id, chunk.seq, chunk.text, self.clock.now())
        self.stats["chunks"] += 1
        self._call_send(encode(chunk), None)

    # -- answers until acknowledged ------------------------------------------------------
    def _refuse(self, msg_id: str, code: str, detail: str, *, final: bool = True) -> None:
        self.stats[f"refused_{code}"] += 1
        err = ErrorMessage(msg_id, code, detail[:500], self.satellite, self.clock.now())
        self._deliver(msg_id, encode(err), final=final)

    def _deliver(self, msg_id: str, data: bytes, *, final: bool = True) -> None:
        old = self._pending.pop(msg_id, None)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        self._pending[msg_id] = _Pending(data, final, interval_s=self.config.repeat_s)
        self._send_copy(msg_id)

    def _send_copy(self, msg_id: str) -> None:
        pending = self._pending.get(msg_id)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        pending.copies += 1
        if pending.copies > 1:
            self.stats["answer_repeats"] += 1
        now = self.clock.now()
        leaves = self._call_send(pending.data, answer_key(msg_id))
        if leaves is None:  # no route to the ground known: look again later
            due = now + self.config.max_repeat_s
        else:
            due = max(now, leaves) + pending.interval_s
            pending.interval_s = min(
                pending.interval_s * self.config.repeat_backoff, self.config.max_repeat_s
            )
        pending.timer = self.clock.call_at(due, self._repeat, msg_id)

    def _repeat(self, msg_id: str) -> None:
        try:
            self._send_copy(msg_id)
        except Exception:
            log.exception("service %s: repeating %s failed", self.satellite, msg_id)
            self.stats["internal_errors"] += 1

    def _call_send(self, data: bytes, key: MessageKey | None) -> float | None:
        try:
            return self.send_fn(data, key)
        except Exception:
            log.exception("service %s: the downlink refused a message", self.satellite)
            self.stats["send_errors"] += 1
            return None


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
