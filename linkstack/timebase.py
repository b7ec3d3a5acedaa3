"""The one clock interface that every layer codes against (DESIGN.md, principle 2).

Times are ``t_s``: float seconds since the scenario epoch. The implementations are in
:mod:`linkstack.runtime.clock` (emulated time and wall-clock time, both read from the
running asyncio loop); the physics (:mod:`channels`) and the applications
(:mod:`payloads`) take any object that has these methods, so they never import the
runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    """A call scheduled with :meth:`Clock.call_at`."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Read the time, sleep until an instant, call something at an instant."""

    def now(self) -> float: ...

    async def sleep_until(self, t_s: float) -> None: ...

    def call_at(
        self, t_s: float, callback: Callable[..., object], *args: object
    ) -> TimerHandle: ...
