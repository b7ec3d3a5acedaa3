"""The link through emulated (and once, wall-clock) time, with synthetic physics."""

import asyncio
import math
import random
import time
import tracemalloc

import pytest

from channels.errors import IndependentErrors
from channels.link import (
    LATENESS_BOUNDS_S,
    Conditions,
    Delivery,
    FixedConditions,
    Lateness,
    Link,
    LinkEvent,
)
from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk


class FlipFirstBits:
    """A deterministic error source: flips round(ber * bits) leading bits."""

    def inject(self, unit: bytes, ber: float) -> tuple[bytes, int]:
        n = round(ber * 8 * len(unit))
        value = int.from_bytes(unit, "big") ^ (((1 << n) - 1) << (8 * len(unit) - n))
        return value.to_bytes(len(unit), "big"), n


class Windowed:
    """Up only inside [start, stop) windows; delay follows a given function."""

    def __init__(self, windows, rate_bps=8_000.0, delay=lambda t: 0.01, ber=0.0):
        self.windows, self.rate_bps, self.delay, self.ber = windows, rate_bps, delay, ber

    def conditions(self, t_s):
        up = any(a <= t_s < b for a, b in self.windows)
        return Conditions(up, self.rate_bps, self.delay(t_s), self.ber, "" if up else "no_contact")


def emulated(coro_fn):
    return clk.run(coro_fn, emulated=True)


def collecting(model, realtime=False, errors=None):
    """A link on an emulated clock (call inside the loop), its deliveries kept in a list."""
    clock = clk.make_clock(True)
    got: list[Delivery] = []
    return clock, Link("t", clock, model, errors, realtime=realtime, on_delivery=got.append), got


def test_serialisation_and_propagation_delay_add_up_exactly():
    async def main():
        clock = clk.make_clock(True)
        got: list[Delivery] = []
        async with Link(
            "down", clock, FixedConditions(8_000, 0.25), on_delivery=got.append
        ) as link:
            for _ in range(3):
                link.send(bytes(100))  # 0.1 s each at 8 kbit/s
            await link.drain()
        return [(d.sent_t_s, d.arrival_t_s) for d in got]

    times = emulated(main)
    flat = [t for pair in times for t in pair]
    assert flat == pytest.approx([0.0, 0.35, 0.1, 0.45, 0.2, 0.55])


def test_units_arrive_in_order_even_when_the_delay_drops():
    async def main():
        clock = clk.make_clock(True)
        # delay falls by 0.5 s at t = 0.15: the later unit would overtake the earlier
        model = Windowed([(0, 100)], 8_000, lambda t: 1.0 if t < 0.15 else 0.5)
        got = []
        async with Link("up", clock, model, on_delivery=got.append) as link:
            for i in range(4):
                link.send(bytes([i]) * 100)
            await link.drain()
        return got

    for _ in range(20):  # equal arrival times: the timer heap must not reorder them
        got = emulated(main)
        assert [d.unit[0] for d in got] == [0, 1, 2, 3]
    arrivals = [d.arrival_t_s for d in got]
    assert arrivals == sorted(arrivals) and arrivals[2] == arrivals[1]


def test_units_outside_contact_are_dropped_with_the_reason():
    async def main():
        clock = clk.make_clock(True)
        events: list[LinkEvent] = []
        model = Windowed([(10, 20), (40, 50)])
        async with Link("down", clock, model) as link:
            link.add_listener(events.append)
            for t in range(0, 60, 5):
                await clock.sleep_until(t)
                link.send(b"unit-%d" % t)
            await link.drain()
            delivered = []
            while not link._received.empty():
                delivered.append((await link.recv()).unit)
        return events, delivered, link.stats

    events, delivered, stats = emulated(main)
    assert delivered == [b"unit-10", b"unit-15", b"unit-40", b"unit-45"]
    dropped = [e for e in events if e.kind == "dropped"]
    assert len(dropped) == 8 and {e.reason for e in dropped} == {"no_contact"}
    assert stats["sent"] == 12 and stats["delivered"] == 4 and stats["dropped_no_contact"] == 8


def test_bit_errors_are_applied_to_the_real_octets_and_reported():
    async def main():
        clock = clk.make_clock(True)
        got = []
        model = FixedConditions(1e6, 0.001, ber=0.01)
        async with Link("down", clock, model, FlipFirstBits(), on_delivery=got.append) as link:
            link.send(bytes(100))
            await link.drain()
        return got[0], link.stats

    delivery, stats = emulated(main)
    assert delivery.bit_errors == 8 and delivery.unit == b"\xff" + bytes(99)
    assert stats["corrupted"] == 1 and stats["bit_errors"] == 8


def test_a_full_queue_drops_and_counts():
    async def main():
        clock = clk.make_clock(True)
        async with Link("up", clock, FixedConditions(8_000), max_queue_units=3) as link:
            ids = [link.send(bytes(100)) for _ in range(5)]
            await link.drain()
        return ids, link.stats

    ids, stats = emulated(main)
    assert ids[3:] == [None, None]
    assert stats["dropped_queue_full"] == 2 and stats["delivered"] == 3


def test_a_day_of_emulated_time_runs_in_a_moment():
    async def main():
        clock = clk.make_clock(True)
        count = 0

        def on_delivery(d):
            nonlocal count
            count += 1

        rng = random.Random(1)
        model = Windowed([(h * 3600, h * 3600 + 600) for h in range(24)], 1e6, lambda t: 0.005)
        async with Link("down", clock, model, on_delivery=on_delivery) as link:
            for t in range(0, 86_400, 20):
                await clock.sleep_until(t + rng.random())
                link.send(bytes(1115))
            await link.drain()
        return count, clock.now(), link.stats

    t0 = time.perf_counter()
    count, now, stats = emulated(main)
    wall = time.perf_counter() - t0
    assert now >= 86_380 and count == stats["delivered"] == 24 * 30
    assert stats["dropped_no_contact"] == 86_400 // 20 - 24 * 30
    assert wall < 60  # a sanity bound only (a day of real time would be 86,400 s)


def test_the_same_link_code_runs_on_the_wall_clock():
    async def main():
        clock = clk.make_clock(False)
        got = []
        t0 = time.monotonic()
        async with Link("down", clock, FixedConditions(1e6, 0.05), on_delivery=got.append) as link:
            link.send(b"x" * 100)
            await link.drain()
        return got, time.monotonic() - t0

    got, elapsed = clk.run(main, emulated=False)
    assert len(got) == 1 and got[0].arrival_t_s == pytest.approx(0.0508, abs=0.01)
    assert elapsed >= 0.05  # real time did pass


@pytest.mark.parametrize("realtime", [False, True])
def test_a_failing_model_surfaces_in_drain_and_stops_the_transmitter(realtime):
    """The model's error comes out of ``drain``, every time it is asked, and the
    transmitter stops: a unit sent afterwards waits in the queue, the model is not
    asked again, and ``drain`` raises at once instead of waiting for it."""
    calls = []

    class Broken:
        def conditions(self, t_s):
            calls.append(t_s)
            raise RuntimeError("model exploded")

    async def main():
        clock = clk.make_clock(True)
        raised = []
        async with Link("x", clock, Broken(), realtime=realtime) as link:
            link.send(b"unit")
            for _ in range(2):
                with pytest.raises(RuntimeError, match="model exploded"):
                    await link.drain()
                raised.append(link.stats["failed"])
                link.send(b"after")
        return raised, link.queued, link.stats

    raised, queued, stats = emulated(main)
    assert len(calls) == 1 and raised == [1, 1] and stats["failed"] == 1
    assert queued == 2  # the two units sent after the failure, never transmitted


def test_impossible_conditions_and_parameters_are_refused():
    with pytest.raises(ConfigError, match="rate_bps"):
        Conditions(True, 0)
    with pytest.raises(ConfigError, match="ber"):
        Conditions(True, 1e6, ber=0.7)
    with pytest.raises(ConfigError, match="ber"):
        Conditions(True, 1e6, ber=-0.5)
    with pytest.raises(ConfigError, match="delay_s"):
        Conditions(True, 1e6, delay_s=-1)

    async def main():
        Link("x", clk.make_clock(True), FixedConditions(1e6), max_queue_units=0)

    with pytest.raises(ConfigError, match="max_queue_units"):
        emulated(main)


def test_emulated_clock_needs_a_virtual_loop():
    async def main():
        clk.EmulatedClock()

    with pytest.raises(ConfigError, match="virtual-time loop"):
        clk.run(main, emulated=False)


def test_clock_reports_utc_and_calls_at_times():
    async def main():
        clock = clk.make_clock(True)
        fired = []
        clock.call_at(100.0, lambda: fired.append(clock.now()))
        clock.call_later(50.0, lambda: fired.append(clock.now()))
        await clock.sleep(200)
        return fired, clock.utc(3600).isoformat(), clock.now()

    fired, utc, now = emulated(main)
    assert fired == [50.0, 100.0] and now == 200.0
    assert utc == "2026-01-01T01:00:00+00:00"


def test_timers_across_many_tasks_fire_in_time_order():
    async def main():
        clock = clk.make_clock(True)
        log = []

        async def worker(i):
            for k in range(5):
                await clock.sleep_until(10 * k + i)
                log.append((clock.now(), i))

        await asyncio.gather(*(worker(i) for i in range(3)))
        return log

    log = emulated(main)
    assert log == sorted(log) and len(log) == 15


def test_the_sender_tag_and_the_octets_ride_with_every_event_and_delivery():
    """Listeners learn what a unit holds from the event itself (no table of their own):
    the tag given to send() and the octets, in "sent", "dropped" and "delivered"."""

    async def main():
        clock = clk.make_clock(True)
        events: list[LinkEvent] = []
        got: list[Delivery] = []
        link = Link("t", clock, Windowed([(0.0, 1.0)]), max_queue_units=2)
        link.connect(got.append)
        link.add_listener(events.append)
        async with link:
            link.send(b"first", tag=("q", 1))
            link.send(b"second", tag=("q", 2))
            assert link.send(b"third", tag=("q", 3)) is None  # the queue is full
            await link.drain()
            await clock.sleep_until(2.0)
            link.send(b"late", tag="out of the window")
            await link.drain()
        seen = [(e.kind, e.tag, e.unit) for e in events]
        assert ("dropped", ("q", 3), b"third") in seen
        assert ("sent", ("q", 1), b"first") in seen and ("delivered", ("q", 1), b"first") in seen
        assert ("dropped", "out of the window", b"late") in seen
        assert [(d.tag, d.unit) for d in got] == [(("q", 1), b"first"), (("q", 2), b"second")]

    emulated(main)


@pytest.mark.parametrize("seed", range(4))
def test_the_real_time_engine_gives_every_unit_the_fate_and_times_of_the_task(seed):
    """The two ways of driving a link (a task, one unit at a time, for emulated runs;
    timers that take every unit due at each wake, for the daemons) give the same
    fates, emission starts and arrival times, unit by unit."""
    rng = random.Random(seed)
    sends = sorted((rng.uniform(0.0, 2.0), rng.randrange(50, 400)) for _ in range(300))
    windows = [(0.0, 0.7), (0.9, 3.0)]

    def run(realtime: bool):
        async def main():
            clock = clk.make_clock(True)
            got: list[Delivery] = []
            model = Windowed(windows, delay=lambda t: 0.01 + 0.002 * t, ber=0.001)
            link = Link("t", clock, model, IndependentErrors(seed=seed), realtime=realtime)
            link.connect(got.append)
            async with link:
                for t_s, size in sends:
                    await clock.sleep_until(t_s)
                    link.send(bytes(size))
                await link.drain()
            return [(d.unit_id, d.sent_t_s, d.arrival_t_s, d.unit) for d in got], link.stats

        return emulated(main)

    task, task_stats = run(False)
    timers, timer_stats = run(True)
    assert timers == task and timer_stats == task_stats
    assert task_stats["dropped_no_contact"] > 0 and task_stats["corrupted"] > 0


def test_the_real_time_engine_keeps_to_the_wall_clock():
    """In wall-clock time, every unit arrives at or after its deadline, in order, and
    the link's lateness says by how much (a few hundred microseconds at most here)."""

    async def main():
        clock = clk.make_clock(False)
        got: list[tuple[Delivery, float]] = []
        link = Link("t", clock, FixedConditions(8e6, 0.002), realtime=True)
        link.connect(lambda d: got.append((d, clock.now())))
        async with link:
            t0 = clock.now()
            for k in range(200):
                await clock.sleep_until(t0 + k * 0.0005)
                link.send(bytes(100))
            await link.drain()
        return got, link.lateness

    got, lateness = clk.run(main, emulated=False)
    assert [d.unit_id for d, _ in got] == list(range(200))
    assert all(at >= d.arrival_t_s for d, at in got)
    assert lateness.count == 200 and lateness.max_s >= 0.0
    p50, p99 = lateness.percentiles(0.5, 0.99)
    assert 0.0 <= p50 <= p99 < 0.05


def test_a_bounded_backlog_refuses_what_it_could_not_send_in_time():
    """With ``max_backlog_s``, a burst fills the transmitter's queue up to that much of
    its own time, and no further: the rest is refused at once (``queue_full``), so a
    unit accepted is never kept waiting longer than the bound."""

    async def main():
        clock = clk.make_clock(True)
        got: list[Delivery] = []
        # 100 octets at 8 kbit/s: 0.1 s each; a bound of 0.35 s takes 3 and a bit
        link = Link("t", clock, FixedConditions(8000.0), max_backlog_s=0.35, rate_bps=8000.0)
        link.connect(got.append)
        async with link:
            ids = [link.send(bytes(100)) for _ in range(10)]
            await clock.sleep(0.22)  # two have left the queue: room for two more
            ids += [link.send(bytes(100)) for _ in range(3)]
            await link.drain()
        return ids, got, link.stats

    ids, got, stats = emulated(main)
    assert ids[:3] == [0, 1, 2] and ids[3:10] == [None] * 7
    assert ids[10:12] == [10, 11] and ids[12] is None
    assert stats["dropped_queue_full"] == 8 and len(got) == 5
    assert max(d.sent_t_s - 0.0 for d in got[:3]) <= 0.35
    with pytest.raises(ConfigError, match="max_backlog_s"):
        Link("t", None, FixedConditions(8000.0), max_backlog_s=1.0)
    for bound in (0.0, -0.1):
        with pytest.raises(ConfigError, match="max_backlog_s"):
            Link("t", None, FixedConditions(8000.0), max_backlog_s=bound, rate_bps=8000.0)
    for rate in (0.0, -8000.0):
        with pytest.raises(ConfigError, match="max_backlog_s"):
            Link("t", None, FixedConditions(8000.0), max_backlog_s=1.0, rate_bps=rate)


def test_a_backlog_filled_exactly_to_its_bound_is_accepted():
    """The bound counts every octet queued: 100 octets at 8 kbit/s fill 0.1 s exactly,
    so 60 + 40 octets are taken and one octet more is refused."""

    async def main():
        clock = clk.make_clock(True)
        link = Link("t", clock, FixedConditions(8000.0), max_backlog_s=0.1, rate_bps=8000.0)
        return [link.send(bytes(n)) for n in (60, 40, 1)], link.stats

    ids, stats = emulated(main)
    assert ids == [0, 1, None] and stats["dropped_queue_full"] == 1


@pytest.mark.parametrize("realtime", [False, True])
def test_a_unit_handed_over_earlier_starts_from_then_never_before(realtime):
    """``send(at_t_s=...)``: a daemon hands the instant the kernel had the datagram,
    so the time its process took to read it is not added to the link's. A unit
    starts at that instant when the transmitter was free, after the one before it
    otherwise, and never later than now (an instant in the future counts as now)."""

    async def main():
        clock, link, got = collecting(FixedConditions(8000.0, 0.25), realtime)
        async with link:
            await clock.sleep_until(1.0)
            link.send(bytes(100), at_t_s=0.97)  # read 30 ms late: starts at 0.97
            link.send(bytes(100), at_t_s=0.98)  # the transmitter is busy until 1.07
            await clock.sleep_until(2.0)
            link.send(bytes(100), at_t_s=2.5)  # not yet: taken as now
            await link.drain()
        return [t for d in got for t in (d.sent_t_s, d.arrival_t_s)]

    times = emulated(main)
    assert times == pytest.approx([0.97, 1.32, 1.07, 1.42, 2.0, 2.35])


def test_lateness_keeps_the_last_window_of_values_in_a_few_octets_each():
    """Percentiles over the last ``window`` units, and a daemon's link that runs for ever
    holds 8 octets a unit of that window, allocated at its first unit (a link that
    carries nothing holds none): what it carries afterwards allocates nothing (its
    memory does not creep while the ring fills)."""
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        lateness = Lateness(window=1000)
        idle, _ = tracemalloc.get_traced_memory()
        lateness.record(0.0)
        before, _ = tracemalloc.get_traced_memory()
        for k in range(1, 5000):
            lateness.record(k * 1e-6)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert idle - start < 1000  # no ring before the first unit
    assert 8 * 1000 <= before - idle < 12 * 1000  # 1,000 doubles and the array's overhead
    assert lateness.count == 5000 and lateness.max_s == pytest.approx(4999e-6)
    p0, p50, p100 = lateness.percentiles(0.0, 0.5, 1.0)  # over units 4000..4999
    assert (p0, p100) == pytest.approx((4000e-6, 4999e-6))
    assert p50 == pytest.approx(4500e-6, abs=1e-6)
    assert after - before < 1000  # nothing more once it exists
    assert all(math.isnan(p) for p in Lateness().percentiles(0.5, 0.99))  # none yet
    partial = Lateness(window=1000)
    partial.record(3e-6)
    partial.record(1e-6)
    assert partial.percentiles(0.0, 1.0) == pytest.approx([1e-6, 3e-6])  # those two only


def test_lateness_keeps_the_last_4096_units_by_default():
    """A link's lateness percentiles are over its last 4,096 units (the default window):
    a late unit counts until 4,096 more have come."""
    lateness = Lateness()
    lateness.record(100.0)
    for _ in range(4095):
        lateness.record(1.0)
    assert lateness.percentiles(1.0) == [100.0]  # 4,096 units: still in the window
    lateness.record(1.0)
    assert lateness.percentiles(1.0) == [1.0]  # the 4,097th pushed it out
    assert lateness.max_s == 100.0  # the run's maximum keeps it


def test_lateness_counts_each_unit_in_the_first_bound_it_is_at_or_under():
    """The run's histogram (Prometheus's ``le`` buckets, not cumulative here): a value
    on a bound counts in that bound's bucket, one past the last in the overflow one."""
    lateness = Lateness()
    assert lateness.bucket_counts == []  # nothing allocated before the first unit
    values = [0.0, LATENESS_BOUNDS_S[0], 0.0003, LATENESS_BOUNDS_S[-1], 7.5]
    for late_s in values:
        lateness.record(late_s)
    expected = [0] * (len(LATENESS_BOUNDS_S) + 1)
    expected[0] = 2  # 0 and the first bound itself
    expected[1] = 1  # 0.3 ms: under 0.5 ms
    expected[-2] = 1  # the last bound
    expected[-1] = 1  # past every bound
    assert lateness.bucket_counts == expected
    assert lateness.sum_s == pytest.approx(sum(values))
    assert sum(lateness.bucket_counts) == lateness.count == len(values)


def test_only_a_corrupted_unit_reports_bit_errors():
    """``sent``, ``dropped`` and ``delivered`` events say no bit errors; a ``corrupted``
    one says how many (the count a capture or a log shows for each fate)."""

    async def main():
        clock = clk.make_clock(True)
        events: list[LinkEvent] = []
        link = Link("t", clock, Windowed([(0.0, 1.0)], ber=0.01), FlipFirstBits())
        link.add_listener(events.append)
        async with link:
            link.send(bytes(100))  # corrupted: 8 bits at 0.01
            await link.drain()
            await clock.sleep_until(2.0)
            link.send(bytes(100))  # out of the window: dropped
            await link.drain()
        clean = Link("c", clock, FixedConditions(8000.0))
        clean.add_listener(events.append)
        async with clean:
            clean.send(bytes(10))
            await clean.drain()
        return [(e.kind, e.bit_errors) for e in events]

    assert emulated(main) == [
        ("sent", 0),
        ("corrupted", 8),
        ("sent", 0),
        ("dropped", 0),
        ("sent", 0),
        ("delivered", 0),
    ]


@pytest.mark.parametrize("realtime", [False, True])
def test_a_closed_link_transmits_nothing_more(realtime):
    """After close(), a unit handed to send() stays queued: no emission, no event, no
    delivery, whichever engine drives the link."""

    async def main():
        clock = clk.make_clock(True)
        events: list[LinkEvent] = []
        got: list[Delivery] = []
        link = Link("t", clock, FixedConditions(8000.0, 0.01), realtime=realtime)
        link.connect(got.append)
        link.add_listener(events.append)
        async with link:
            link.send(bytes(10))
            await link.drain()
        link.send(bytes(10))
        await clock.sleep(1.0)
        return [e.kind for e in events], len(got), link.queued

    assert emulated(main) == (["sent", "delivered"], 1, 1)


def test_the_real_time_engine_hands_each_unit_over_at_its_own_arrival():
    """Units in flight together are each handed over at their arrival time, not when
    a later one arrives: the receive timer is set for the oldest unit pending."""

    async def main():
        clock = clk.make_clock(True)
        handed: list[tuple[float, float]] = []
        link = Link("t", clock, FixedConditions(8000.0, 0.25), realtime=True)
        link.connect(lambda d: handed.append((d.arrival_t_s, clock.now())))
        async with link:
            for _ in range(3):
                link.send(bytes(100))  # 0.1 s each: all three in flight at 0.35 s
            await link.drain()
        return handed, link.lateness.max_s

    handed, max_late_s = emulated(main)
    assert [a for a, _ in handed] == pytest.approx([0.35, 0.45, 0.55])
    assert [now for _, now in handed] == pytest.approx([0.35, 0.45, 0.55])
    assert max_late_s == pytest.approx(0.0, abs=1e-9)


def test_lateness_rings_of_any_window_keep_exactly_the_last_values():
    """The ring holds ``window`` doubles whatever the window (one not a multiple of 8
    included), and the percentiles read the last ``window`` values only."""
    for window in (1, 3, 5):
        lateness = Lateness(window=window)
        for k in range(1, 8):
            lateness.record(k * 1e-3)
        last = [k * 1e-3 for k in range(8 - window, 8)]
        assert lateness.percentiles(0.0, 1.0) == pytest.approx([last[0], last[-1]])
        assert lateness.count == 7


def test_a_fresh_link_has_no_last_conditions_until_it_emits():
    """``last_conditions`` (what a daemon's status shows of a link) is None before the
    first unit, then the conditions that unit was emitted in."""

    async def main():
        clock = clk.make_clock(True)
        link = Link("t", clock, FixedConditions(8000.0, 0.01))
        before = link.last_conditions
        async with link:
            link.send(bytes(10))
            await link.drain()
        return before, link.last_conditions

    before, after = emulated(main)
    assert before is None
    assert after is not None and after.up and after.rate_bps == 8000.0


def test_a_unit_sent_from_a_listener_waits_for_the_emission_under_way():
    """Real time: a listener that sends from inside an emission (a daemon answering a
    ``sent`` event) does not start a second transmitter loop there. With three units
    due at one wake, the one being emitted still arrives first and the new unit last:
    deliveries keep the order of emission."""

    async def main():
        clock = clk.make_clock(True)
        got: list[Delivery] = []
        link = Link("t", clock, FixedConditions(8e6, 0.01), realtime=True)
        link.connect(got.append)

        def on_event(event: LinkEvent) -> None:
            if event.kind == "sent" and event.tag == "a":
                link.send(bytes(10), tag="d")

        link.add_listener(on_event)
        await clock.sleep_until(10.0)
        for tag in "abc":  # all three handed over at 9 s: due at once when it starts
            link.send(bytes(10), tag=tag, at_t_s=9.0)
        async with link:
            await link.drain()
        return [d.tag for d in got], [d.arrival_t_s for d in got]

    tags, arrivals = emulated(main)
    assert tags == ["a", "b", "c", "d"]
    assert arrivals == sorted(arrivals)


def test_a_link_given_no_delay_delivers_as_serialisation_ends():
    """``delay_s`` defaults to zero in both the fixed model and in any model's
    conditions: a 100-octet unit at 8 kbit/s arrives 0.1 s after it starts."""

    class NoDelayGiven:
        def conditions(self, t_s):
            return Conditions(True, 8000.0)

    async def main(model):
        clock = clk.make_clock(True)
        got: list[Delivery] = []
        async with Link("t", clock, model, on_delivery=got.append) as link:
            link.send(bytes(100))
            await link.drain()
        return [(d.sent_t_s, d.arrival_t_s) for d in got]

    for model in (FixedConditions(8000.0), NoDelayGiven()):
        assert emulated(lambda m=model: main(m)) == [(0.0, pytest.approx(0.1))]


def test_the_limits_of_the_physics_and_of_the_queue_are_inclusive_where_they_say_so():
    """Any positive rate is a rate (a beacon at half a bit per second), a BER of one
    half is a valid (useless) channel, a queue of one unit holds one, and a bounded
    backlog applies at any positive rate."""
    assert Conditions(True, 0.5).rate_bps == 0.5
    assert Conditions(True, 1e6, ber=0.5).ber == 0.5

    async def main():
        clock = clk.make_clock(True)
        one = Link("one", clock, FixedConditions(8000.0), max_queue_units=1)
        slow = Link("slow", clock, FixedConditions(1.0), max_backlog_s=100.0, rate_bps=1.0)
        # 12 octets at 1 bit/s: 96 s of the 100 s bound; one octet more would be 104 s
        return [one.send(b"a"), one.send(b"b")], [slow.send(bytes(12)), slow.send(b"x")]

    one_ids, slow_ids = emulated(main)
    assert one_ids == [0, None]
    assert slow_ids == [0, None]


def test_the_default_queue_holds_ten_thousand_units():
    async def main():
        link = Link("t", clk.make_clock(True), FixedConditions(8000.0))
        ids = [link.send(b"u") for _ in range(10_001)]
        return ids, link.queued, link.stats["dropped_queue_full"]

    ids, queued, refused = emulated(main)
    assert ids[:10_000] == list(range(10_000)) and ids[10_000] is None
    assert queued == 10_000 and refused == 1


def test_the_lateness_histogram_bounds_step_one_two_five_from_a_tenth_of_a_ms_to_a_second():
    """The bounds are the ``le`` labels of ``linkstack_link_lateness_seconds`` on every
    daemon's ``/metrics``: dashboards and alert rules name them, so they are part of
    the interface. A value on each bound counts in that bound's own bucket."""
    documented = [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0]
    for k, bound in enumerate(documented):
        lateness = Lateness()
        lateness.record(bound)
        assert lateness.bucket_counts.index(1) == k, bound
    assert list(LATENESS_BOUNDS_S) == documented


def test_a_link_with_nothing_sent_is_drained_at_once():
    """``drain`` on a fresh link, started or not, returns without waiting."""

    async def main():
        clock = clk.make_clock(True)
        link = Link("t", clock, FixedConditions(8000.0))
        await asyncio.wait_for(link.drain(), 1.0)
        async with link:
            await asyncio.wait_for(link.drain(), 1.0)
        return clock.now()

    assert emulated(main) == 0.0


@pytest.mark.parametrize("realtime", [False, True])
def test_close_leaves_no_task_and_a_closed_link_starts_again(realtime):
    """``close`` returns with the transmitter's task gone (a daemon shutting down
    leaves nothing running), and ``start`` after it sends again."""

    async def main():
        _, link, got = collecting(FixedConditions(8000.0, 0.01), realtime)
        async with link:
            link.send(b"first")
            await link.drain()
        left = asyncio.all_tasks() - {asyncio.current_task()}
        async with link:
            link.send(b"again")
            await asyncio.wait_for(link.drain(), 10.0)
        return left, [d.unit for d in got]

    left, units = emulated(main)
    assert left == set()
    assert units == [b"first", b"again"]


@pytest.mark.parametrize("realtime", [False, True])
def test_units_in_flight_at_close_are_abandoned_by_either_engine(realtime):
    """A unit still in flight when the link closes never arrives, whichever engine
    drives the link, ``drain`` does not wait for it, and a link started again carries
    the units sent after."""

    async def main():
        clock, link, got = collecting(FixedConditions(8000.0, 1.0), realtime)
        events: list[str] = []
        link.add_listener(lambda e: events.append(e.kind))
        async with link:
            link.send(bytes(10), tag="lost")  # arrives at 1.01 s: the link closes first
            await clock.sleep_until(0.5)
        await clock.sleep_until(3.0)
        await asyncio.wait_for(link.drain(), 1.0)
        async with link:
            link.send(bytes(10), tag="after")
            await asyncio.wait_for(link.drain(), 10.0)
        return events, [d.tag for d in got], clock.now()

    events, tags, now = emulated(main)
    assert events == ["sent", "sent", "delivered"]
    assert tags == ["after"]
    assert now == pytest.approx(4.01)


def test_a_closed_link_is_freed_at_once_not_held_by_its_timers():
    """Real time: ``close`` cancels the transmit and receive timers, so nothing holds
    the link once its owner lets go (a daemon replacing a link whose units would have
    been in flight for seconds)."""
    import gc
    import weakref

    async def main():
        clock = clk.make_clock(True)
        link = Link("t", clock, FixedConditions(8000.0, 10.0), realtime=True)
        link.start()
        for _ in range(3):  # one in flight until 10.1 s, two waiting for the transmitter
            link.send(bytes(100))
        await clock.sleep_until(0.05)
        await link.close()
        ref = weakref.ref(link)
        del link
        gc.collect()
        return ref()

    assert emulated(main) is None


def test_a_unit_is_copied_when_sent_so_the_sender_may_reuse_its_buffer():
    async def main():
        _, link, got = collecting(FixedConditions(8000.0))
        buffer = bytearray(b"first")
        link.send(buffer)  # queued: the link has not started
        buffer[:] = b"later"
        async with link:
            await link.drain()
        return got[0].unit

    assert emulated(main) == b"first"


def test_a_clean_unit_draws_nothing_from_the_error_stream():
    """The error source is asked only for units the physics can damage: a unit sent
    at BER 0 between two noisy ones leaves the noisy ones' errors as the seed gave
    them, so a replay whose clean stretches differ sees the same bit errors."""

    def ber_at(t_s):
        return 0.0 if 1.0 <= t_s < 2.0 else 0.01

    class Stretches:
        def conditions(self, t_s):
            return Conditions(True, 1e6, 0.0, ber_at(t_s))

    async def main(send_times):
        clock, link, got = collecting(Stretches(), errors=IndependentErrors(seed=5))
        async with link:
            for t in send_times:
                await clock.sleep_until(t)
                link.send(bytes(1000))
            await link.drain()
        return {d.sent_t_s: d.unit for d in got if ber_at(d.sent_t_s) > 0}

    without = emulated(lambda: main([0.0, 2.0]))
    with_clean = emulated(lambda: main([0.0, 1.5, 2.0]))
    assert with_clean == without
    assert all(unit != bytes(1000) for unit in without.values())


@pytest.mark.parametrize("realtime", [False, True])
def test_the_head_of_the_queue_starts_from_its_own_hand_over_instant(realtime):
    """Units handed over at different instants before the transmitter starts: each
    starts at its own instant or when the one before it ends, not at a later unit's."""

    async def main():
        clock, link, got = collecting(FixedConditions(8000.0), realtime)
        await clock.sleep_until(10.0)
        link.send(bytes(100), at_t_s=9.0)  # 0.1 s on the air
        link.send(bytes(100), at_t_s=9.5)
        async with link:
            await link.drain()
        return [d.sent_t_s for d in got]

    assert emulated(main) == [9.0, 9.5]


@pytest.mark.parametrize("realtime", [False, True])
def test_units_in_flight_when_the_model_fails_still_arrive(realtime):
    """A model that fails stops the transmitter; a unit that had already left still
    arrives, in either engine, and ``drain`` reports the failure."""

    class FailsSecond:
        calls = 0

        def conditions(self, t_s):
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("model exploded")
            return Conditions(True, 8000.0, 1.0)

    async def main():
        clock, link, got = collecting(FailsSecond(), realtime)
        async with link:
            link.send(bytes(100), tag="left")
            link.send(bytes(100), tag="never")
            with pytest.raises(RuntimeError, match="exploded"):
                await link.drain()
            await clock.sleep_until(5.0)
        return [(d.tag, d.arrival_t_s) for d in got], link.stats["failed"]

    delivered, failed = emulated(main)
    assert delivered == [("left", pytest.approx(1.1))] and failed == 1
