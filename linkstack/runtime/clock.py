"""The one clock: emulated time and wall-clock time behind one interface.

Nothing in linkstack reads the time except through a clock: the interface is
:class:`linkstack.timebase.Clock`, and these are its implementations. Both take their
time from the running asyncio event loop (:class:`LoopClock`) and differ only in the
loop:

- :class:`WallClock` runs on an ordinary event loop: one emulated second is a
  second, for daemons that talk to software outside the process;
- :class:`EmulatedClock` runs on a virtual-time event loop (the ``looptime``
  library): whenever every task is waiting for a timer, the loop jumps straight
  to the next timer instead of sleeping, so a 24-hour scenario runs as fast as
  the CPU allows. Work done between two waits takes no emulated time.

So the same coroutine code (``await clock.sleep_until(t_s)``,
``clock.call_at(t_s, fn)``) runs in both. Times are ``t_s``: float seconds since
the scenario epoch, a UTC instant (:attr:`LoopClock.epoch`). :func:`run` builds the
right loop, runs a coroutine to completion and closes the loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import math
import selectors
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, TypeVar

from linkstack.errors import ConfigError

T = TypeVar("T")

DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class LoopClock:
    """Time of one emulation run, read from the running event loop.

    ``t_s`` = 0 at the moment the clock is created (inside the loop), which is
    the UTC instant ``epoch``.
    """

    emulated: bool = False

    def __init__(self, epoch: datetime = DEFAULT_EPOCH, start_t_s: float = 0.0) -> None:
        if epoch.tzinfo is None:
            raise ConfigError("clock", "epoch", "needs a timezone-aware datetime (UTC)")
        self.epoch = epoch.astimezone(UTC)
        self._loop = asyncio.get_running_loop()
        self._origin = self._loop.time() - start_t_s

    def now(self) -> float:
        """Seconds since the epoch."""
        return self._loop.time() - self._origin

    def utc(self, t_s: float | None = None) -> datetime:
        """The UTC instant of ``t_s`` (default: now)."""
        return self.epoch + timedelta(seconds=self.now() if t_s is None else t_s)

    async def sleep(self, dt_s: float) -> None:
        await asyncio.sleep(max(dt_s, 0.0))

    async def sleep_until(self, t_s: float) -> None:
        await asyncio.sleep(max(t_s - self.now(), 0.0))

    def call_at(
        self, t_s: float, callback: Callable[..., object], *args: object
    ) -> asyncio.TimerHandle:
        """Call ``callback(*args)`` at ``t_s`` (at once if that is past)."""
        return self._loop.call_at(self._origin + t_s, callback, *args)

    def call_later(
        self, dt_s: float, callback: Callable[..., object], *args: object
    ) -> asyncio.TimerHandle:
        return self._loop.call_at(self._loop.time() + max(dt_s, 0.0), callback, *args)


class WallClock(LoopClock):
    """Real time: use inside an ordinary event loop."""

    emulated = False


class EmulatedClock(LoopClock):
    """Virtual time: use inside the loop that :func:`new_emulated_loop` makes."""

    emulated = True

    def __init__(self, epoch: datetime = DEFAULT_EPOCH, start_t_s: float = 0.0) -> None:
        super().__init__(epoch, start_t_s)
        if not getattr(self._loop, "looptime_on", False):
            raise ConfigError(
                "clock",
                "loop",
                "EmulatedClock needs a virtual-time loop: use clock.run(..., emulated=True)",
            )


def new_emulated_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose time jumps to the next timer when every task waits.

    Time resolution is one microsecond (looptime keeps integer time, so that
    long runs do not accumulate floating-point drift). looptime idles for 42 loop
    cycles before each jump by default; asyncio only waits on its selector once
    every ready callback has run, so one idle cycle is enough here and makes a
    jump about eight times cheaper (~60 us of wall time instead of ~480). Its timers
    run beyond 2**24 s of loop time too (see :data:`CLOCK_RESOLUTION_S`).
    """
    loop = _looptime().new_event_loop(start=0.0, resolution=1e-6, noop_cycles=1)
    loop.__class__ = _far_time_class(type(loop))
    return loop


# asyncio runs a timer when it is due within the monotonic clock's resolution
# (_clock_resolution, 1 ns). Past 2**24 s of loop time (194 days), 1 ns is less than
# half a float step, so loop time + 1 ns == loop time, and a timer due exactly at the
# loop time is never run: the loop spins at that instant for ever (the emulated clock
# hung in sleep_until there). A step of the float is the resolution from then on; below
# 2**24 s, time + 1 ns and time + one step are the same float, so nothing else changes.
# A run's loop starts at 0 whatever its scenario instant (the clock's origin takes that):
# only a run of over 194 days of emulated time in one loop met this.
CLOCK_RESOLUTION_S = 1e-9


_FAR_TIME_CLASSES: dict[type, type] = {}


def _far_time_class(base: type) -> type:
    """``base`` with the resolution above (one class per base, as looptime does)."""
    if base not in _FAR_TIME_CLASSES:

        def resolution(self: asyncio.AbstractEventLoop) -> float:
            return max(CLOCK_RESOLUTION_S, math.ulp(self.time()))

        attrs = {"_clock_resolution": property(resolution)}
        _FAR_TIME_CLASSES[base] = type(f"FarTime{base.__name__}", (base,), attrs)
    return _FAR_TIME_CLASSES[base]


def _looptime() -> ModuleType:
    """The looptime package, imported without pytest: looptime defines a pytest fixture
    whenever pytest is importable, which would make every emulated run import a test
    framework (about a quarter of a second, and a test tool in production)."""
    if "looptime" in sys.modules or "pytest" in sys.modules:
        import looptime  # noqa: PLC0415

        return looptime
    sys.modules["pytest"] = None  # type: ignore[assignment]  # "import pytest" now fails
    try:
        import looptime  # noqa: PLC0415
    finally:
        del sys.modules["pytest"]
    return looptime


# select() takes file descriptors below FD_SETSIZE; a process with more uses epoll
FINE_TIMERS_MAX_FDS = 1000
TIMER_SLACK_NS = 1000


def new_wall_loop(fine_timers: bool = True) -> asyncio.AbstractEventLoop:
    """An ordinary event loop for wall-clock time. With ``fine_timers`` its timers
    keep to tens of microseconds instead of a millisecond: it waits with select(),
    whose timeout is in microseconds (epoll, asyncio's default, takes milliseconds,
    so a unit due in 0.2 ms would wait 1 ms), and it sets the process's timer slack
    to 1 us (Linux lets a sleep overrun by 50 us by default). Measured on the 2-CPU
    VM, 2,000 timers at random sub-ms delays: lateness p50/p99 66/143 us, against
    614/1,128 us with epoll. select() serves descriptors below 1024: for a process
    with more sockets, pass ``fine_timers=False``."""
    if not fine_timers:
        return asyncio.new_event_loop()
    set_timer_slack(TIMER_SLACK_NS)
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


def set_timer_slack(ns: int) -> None:
    """prctl(PR_SET_TIMERSLACK): how late the kernel may wake this process's sleeps."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(29, ns, 0, 0, 0)  # 29: PR_SET_TIMERSLACK
    except (OSError, AttributeError):  # no libc with prctl: the default slack stays
        pass


def run(
    main: Callable[[], Coroutine[Any, Any, T]] | Awaitable[T],
    emulated: bool = True,
    *,
    fine_timers: bool = True,
) -> T:
    """Run a coroutine (or a coroutine function) on a fresh loop of the right kind
    (:func:`new_emulated_loop` or :func:`new_wall_loop`)."""
    loop = new_emulated_loop() if emulated else new_wall_loop(fine_timers)
    try:
        asyncio.set_event_loop(loop)
        coro = main() if callable(main) else main
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def make_clock(
    emulated: bool, epoch: datetime = DEFAULT_EPOCH, start_t_s: float = 0.0
) -> LoopClock:
    """The clock that matches the running loop's kind (call inside the loop)."""
    return (EmulatedClock if emulated else WallClock)(epoch, start_t_s)
