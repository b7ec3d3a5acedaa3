"""A link that carries byte units from one endpoint to another through time.

One :class:`Link` is one direction (an uplink, a downlink, one way of a laser
link). Units handed to :meth:`Link.send` wait in a bounded queue for the
transmitter; each is serialised at the link's data rate, and its fate is
decided from the physics at the instant its first bit leaves (the *emission
time*): the :class:`LinkModel` says whether the link is up there (in contact,
receiver locked, line of sight...) and gives the propagation delay and the bit
error rate, which a :class:`BitErrorSource` applies to the real octets. The unit
arrives at emission + serialisation + delay, never before the unit sent ahead of
it, and is handed to the receiving side, damaged or not. Units the physics
refuses are dropped with the reason.

Every fate is an event (``sent``, ``delivered``, ``corrupted`` with its bit
error count, ``dropped`` with its reason) for listeners that log, count or
capture, and a counter in :attr:`Link.stats`.

The link reads time only from the clock it is given (see linkstack/runtime/clock.py),
so the same code runs in emulated time and in wall-clock time.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
from array import array
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from linkstack.errors import ConfigError
from linkstack.timebase import Clock, TimerHandle

NAN = math.nan


@dataclass(frozen=True, slots=True)
class Conditions:
    """The physics of one direction of a link at one instant.

    ``up`` False means a unit emitted now is lost, for ``reason`` (for example
    ``no_contact``, ``acquiring``, ``doppler_rate``, ``low_ebn0``, ``blocked``).
    The geometry and budget fields are for status lines and events; NaN when
    the model has no such notion. ``via`` names the station of an RF link, so that
    whoever sees the unit (a capture, a trace) knows where it went through.
    """

    up: bool
    rate_bps: float
    delay_s: float = 0.0
    ber: float = 0.0
    reason: str = ""
    range_m: float = NAN
    range_rate_mps: float = NAN
    elevation_deg: float = NAN
    doppler_hz: float = NAN
    ebn0_db: float = NAN
    via: str = ""  # the ground station an RF unit goes through ("" for other links)

    def __post_init__(self) -> None:
        if not self.rate_bps > 0:
            raise ConfigError("link", "rate_bps", f"must be positive, got {self.rate_bps}")
        if not self.delay_s >= 0:
            raise ConfigError("link", "delay_s", f"must be zero or positive, got {self.delay_s}")
        if not 0 <= self.ber <= 0.5:
            raise ConfigError("link", "ber", f"must be in 0..0.5, got {self.ber}")


class LinkModel(Protocol):
    def conditions(self, t_s: float) -> Conditions: ...


class BitErrorSource(Protocol):
    def inject(self, unit: bytes, ber: float) -> tuple[bytes, int]:
        """The unit with bit errors at ``ber``, and how many bits were flipped."""
        ...


@dataclass(frozen=True, slots=True)
class FixedConditions:
    """A link model whose conditions never change (tests, cable-like links)."""

    rate_bps: float
    delay_s: float = 0.0
    ber: float = 0.0

    def conditions(self, t_s: float) -> Conditions:
        return Conditions(True, self.rate_bps, self.delay_s, self.ber)


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """One fate of one unit. ``unit`` is the octets (as they arrive, for ``delivered``
    and ``corrupted``) and ``tag`` what the sender gave :meth:`Link.send` with them, so
    that listeners need no table of their own to know what a unit holds."""

    kind: str  # "sent", "delivered", "corrupted", "dropped"
    link: str
    unit_id: int
    t_s: float
    octets: int
    bit_errors: int = 0
    reason: str = ""
    conditions: Conditions | None = None
    unit: bytes = b""
    tag: object = None


# Upper bounds of the lateness histogram, seconds: a scheduler on time is well under a
# millisecond late, a busy event loop tens of milliseconds, a stalled one seconds.
LATENESS_BOUNDS_S = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class Lateness:
    """How late a link hands units over against their deadlines (emission start +
    serialisation + propagation): zero in emulated time, the scheduler's delay in
    wall-clock time. ``count`` and ``max_s`` over the whole run; percentiles over the
    last ``window`` units, kept in a ring of 8-octet doubles allocated whole at the
    first unit (a daemon's hundred links filling deques of float objects grew by
    megabytes over a soak; rings that grew as units came made its memory creep for an
    hour), not before: most of planned-2800's 27,016 links carry nothing for hours,
    and 32 KiB each was 0.8 GiB per daemon.

    Over the whole run it also counts each unit in the first of :data:`LATENESS_BOUNDS_S`
    it is at or under (``bucket_counts``, one more for those past the last) and sums
    them (``sum_s``): a histogram that merges across links and runs for ever in a few
    integers (the daemons' ``/metrics``)."""

    def __init__(self, window: int = 4096) -> None:
        self.count = 0
        self.max_s = 0.0
        self.sum_s = 0.0
        self.bucket_counts: list[int] = []  # allocated with the ring, at the first unit
        self.window = window
        self._recent: array[float] | None = None

    def record(self, late_s: float) -> None:
        if self._recent is None:
            self._recent = array("d", bytes(8 * self.window))
            self.bucket_counts = [0] * (len(LATENESS_BOUNDS_S) + 1)
        self._recent[self.count % self.window] = late_s  # the oldest value is there
        self.count += 1
        self.max_s = max(self.max_s, late_s)
        self.sum_s += late_s
        self.bucket_counts[bisect.bisect_left(LATENESS_BOUNDS_S, late_s)] += 1

    def percentiles(self, *q: float) -> list[float]:
        """The ``q`` quantiles (0..1) of the recent lateness, in seconds (NaN when none)."""
        if self._recent is None:  # nothing recorded yet
            return [NAN for _ in q]
        values = sorted(self._recent[: min(self.count, self.window)])
        last = len(values) - 1
        return [values[min(last, round(x * last))] for x in q]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A unit as it arrives: the octets (damaged if ``bit_errors``), its times, the
    conditions it was emitted in, and the sender's ``tag``."""

    unit: bytes
    unit_id: int
    sent_t_s: float
    arrival_t_s: float
    bit_errors: int
    conditions: Conditions
    tag: object = None


class Link:
    """One direction of a link, driven by a clock (see the module docstring).

    Use as ``async with Link(...) as link:``, or call :meth:`start` and
    :meth:`close`. Delivered units go to ``on_delivery`` when given, otherwise
    into a queue read with :meth:`recv`.
    """

    def __init__(
        self,
        name: str,
        clock: Clock,
        model: LinkModel,
        errors: BitErrorSource | None = None,
        max_queue_units: int = 10_000,
        on_delivery: Callable[[Delivery], object] | None = None,
        *,
        realtime: bool = False,
        max_backlog_s: float | None = None,
        rate_bps: float | None = None,
    ) -> None:
        if max_queue_units < 1:
            raise ConfigError(
                "link", "max_queue_units", f"must be at least 1, got {max_queue_units}"
            )
        if max_backlog_s is not None and not (
            max_backlog_s > 0 and rate_bps is not None and rate_bps > 0
        ):
            raise ConfigError(
                "link", "max_backlog_s", "must be positive, with the link's rate_bps to apply it"
            )
        self.name = name
        self.clock = clock
        self.model = model
        self.errors = errors
        self.max_queue_units = max_queue_units
        self.on_delivery = on_delivery
        self.realtime = realtime
        # at most this much transmitter time queued (at rate_bps): a flood can never
        # make the units behind it wait longer than that
        self.max_backlog_s = max_backlog_s
        self._backlog_rate_bps = rate_bps or 1.0
        self._queued_octets = 0
        self.stats: Counter[str] = Counter()
        self.lateness = Lateness()
        self.last_conditions: Conditions | None = None  # of the last unit emitted
        self._queue: deque[tuple[int, bytes, object, float]] = deque()  # id, unit, tag, when queued
        self._wakeup = asyncio.Event()
        self._received: asyncio.Queue[Delivery] = asyncio.Queue()
        self._listeners: list[Callable[[LinkEvent], object]] = []
        self._task: asyncio.Task[None] | None = None
        self._next_id = 0
        self._busy_until = -math.inf  # when the transmitter is free again
        self._last_arrival = -math.inf
        self._idle = asyncio.Event()
        self._idle.set()
        self._failure: BaseException | None = None
        self._pending: deque[Delivery] = deque()  # in flight, in arrival order
        self._running = False  # started and not closed (nor failed, in real time)
        # real time: the transmitter is a timer, not a task
        self._transmitting = False
        self._tx_timer: TimerHandle | None = None
        # both engines: one timer hands over every unit due, then waits for the next
        self._rx_timer: TimerHandle | None = None

    # -- life cycle -------------------------------------------------------------------
    async def __aenter__(self) -> Link:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        self._running = True
        if self.realtime:
            self._transmit_due()
        elif self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._transmitter(), name=f"link {self.name}"
            )

    async def close(self) -> None:
        """Stop the transmitter. Units in flight are abandoned, whichever the engine;
        units still queued stay queued, for a :meth:`start` again."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._running = False
        for timer in (self._tx_timer, self._rx_timer):
            if timer is not None:
                timer.cancel()
        self._tx_timer = self._rx_timer = None
        self._pending.clear()
        if not self._queue:
            self._idle.set()

    async def drain(self) -> None:
        """Wait until every unit sent so far has been delivered or dropped.

        Raises the error that stopped the transmitter, if one did (a model that
        raised), at once and each time it is asked: a broken link must not look like
        a quiet one, nor make its caller wait for units it will never send.
        """
        if self._failure is None:  # after one, nothing sent will ever be delivered
            await self._idle.wait()
        if self._failure is not None:
            raise self._failure

    # -- sending and receiving ------------------------------------------------------------
    def connect(self, receiver: Callable[[Delivery], object]) -> None:
        """Deliver units to ``receiver`` (the far end, when it exists only after the link)."""
        self.on_delivery = receiver

    def add_listener(self, listener: Callable[[LinkEvent], object]) -> None:
        self._listeners.append(listener)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def send(self, unit: bytes, tag: object = None, at_t_s: float | None = None) -> int | None:
        """Queue a unit for transmission; its id, or None when the queue is full
        (the unit is dropped and counted as ``queue_full``). ``tag`` travels with the
        unit in every event about it and in its :class:`Delivery`. ``at_t_s``: when
        the unit reached the transmitter, if earlier than now (a daemon hands the
        instant the kernel had the datagram, so the time this process took to read
        it is not added to the link's)."""
        unit_id = self._next_id
        self._next_id += 1
        unit = bytes(unit)
        now = self.clock.now()
        if len(self._queue) >= self.max_queue_units or self._over_backlog(now, len(unit)):
            self._emit("dropped", unit_id, now, unit, tag, reason="queue_full")
            return None
        queued_t_s = now if at_t_s is None else min(at_t_s, now)
        self._queue.append((unit_id, unit, tag, queued_t_s))
        self._queued_octets += len(unit)
        self._idle.clear()
        if self.realtime:
            if self._tx_timer is None:  # else the timer set takes it (and stopped: none)
                self._transmit_due()
        else:
            self._wakeup.set()
        return unit_id

    def _over_backlog(self, now: float, octets: int) -> bool:
        if self.max_backlog_s is None:
            return False
        busy_s = max(self._busy_until - now, 0.0)
        queued_s = 8 * (self._queued_octets + octets) / self._backlog_rate_bps
        return busy_s + queued_s > self.max_backlog_s

    async def recv(self) -> Delivery:
        """The next delivered unit (only when no ``on_delivery`` callback is set)."""
        return await self._received.get()

    # -- fates -------------------------------------------------------------------------------
    def _emit(
        self,
        kind: str,
        unit_id: int,
        t_s: float,
        unit: bytes,
        tag: object,
        cond: Conditions | None = None,
        reason: str = "",
        bit_errors: int = 0,
    ) -> None:
        stats = self.stats
        stats[kind] += 1
        if kind == "dropped":
            stats[f"dropped_{reason}"] += 1
        elif kind == "corrupted":
            stats["bit_errors"] += bit_errors
        if self._listeners:  # an event is built only for someone to hear it
            event = LinkEvent(
                kind, self.name, unit_id, t_s, len(unit), bit_errors, reason, cond, unit, tag
            )
            for listener in self._listeners:
                listener(event)

    def _emit_head(self, start: float) -> None:
        """The unit at the head of the queue starts to radiate at ``start``: its fate,
        from the physics at that instant; a unit that will arrive joins ``_pending``."""
        unit_id, unit, tag, _ = self._queue.popleft()
        self._queued_octets -= len(unit)
        cond = self.model.conditions(start)
        self.last_conditions = cond
        serial_s = 8 * len(unit) / cond.rate_bps
        self._busy_until = start + serial_s
        self._emit("sent", unit_id, start, unit, tag, cond)
        if not cond.up:
            self._emit("dropped", unit_id, start, unit, tag, cond, cond.reason)
            return
        bit_errors = 0
        if cond.ber > 0 and self.errors is not None:
            unit, bit_errors = self.errors.inject(unit, cond.ber)
        # in order per direction: never before the unit sent ahead of it
        arrival = max(start + serial_s + cond.delay_s, self._last_arrival)
        self._last_arrival = arrival
        self._pending.append(Delivery(unit, unit_id, start, arrival, bit_errors, cond, tag))

    def _hand_over(self, delivery: Delivery) -> None:
        self.lateness.record(self.clock.now() - delivery.arrival_t_s)
        kind = "corrupted" if delivery.bit_errors else "delivered"
        self._emit(
            kind,
            delivery.unit_id,
            delivery.arrival_t_s,
            delivery.unit,
            delivery.tag,
            delivery.conditions,
            bit_errors=delivery.bit_errors,
        )
        if self.on_delivery is not None:
            self.on_delivery(delivery)
        else:
            self._received.put_nowait(delivery)
        if not self._pending and not self._queue:
            self._idle.set()

    # -- the transmitter, in emulated time: a task, one unit at a time ---------------------
    async def _transmitter(self) -> None:
        try:
            await self._transmit_forever()
        except Exception as exc:  # the model or the error source failed: surface it
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self._failure = exc
        self.stats["failed"] += 1
        self._idle.set()

    async def _transmit_forever(self) -> None:
        clock = self.clock
        while True:
            if not self._queue:
                if not self._pending:
                    self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # a unit starts to radiate when it was handed over, or when the transmitter
            # is free: a transmitter that wakes late catches up without waiting again
            start = max(self._queue[0][3], self._busy_until)
            if start > clock.now():
                await clock.sleep_until(start)
            self._emit_head(start)
            self._watch_arrivals()

    # -- the transmitter, in real time: timers, every unit that is due at each wake -------
    def _transmit_due(self) -> None:
        """Emit every queued unit whose start has come, then wait (one timer) for the
        next; deliveries likewise. A wake that comes late costs lateness once, not a
        sleep per unit; units are never emitted or delivered before their time."""
        self._tx_timer = None
        if self._transmitting or not self._running:
            return  # a listener sent from inside an emission: the loop below takes it
        self._transmitting = True
        clock = self.clock
        try:
            now = clock.now()
            while self._queue:
                start = max(self._queue[0][3], self._busy_until)
                if start > now:
                    self._tx_timer = clock.call_at(start, self._transmit_due)
                    break
                self._emit_head(start)
                self._watch_arrivals()
        except Exception as exc:  # the model or the error source failed: surface it
            self._running = False
            self._fail(exc)
        finally:
            self._transmitting = False
        if not self._queue and not self._pending:
            self._idle.set()

    def _deliver_due(self) -> None:
        """Hand over every unit whose arrival has come, in arrival order (one timer
        for all: timers at equal times may fire in any order), then wait for the next.
        Units in flight when a model fails still arrive: they had left."""
        self._rx_timer = None
        now = self.clock.now()
        pending = self._pending
        while pending and pending[0].arrival_t_s <= now:
            self._hand_over(pending.popleft())
        self._watch_arrivals()

    def _watch_arrivals(self) -> None:
        """Set the receive timer for the oldest unit in flight, unless one is set."""
        if self._pending and self._rx_timer is None:
            self._rx_timer = self.clock.call_at(self._pending[0].arrival_t_s, self._deliver_due)
