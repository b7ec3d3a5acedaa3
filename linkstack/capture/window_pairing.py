"""Frame records and the units they record, waiting for each other, sans-I/O.

A capture can hold a frame twice: inside its unit (a CLTU or CADU) and as a frame
record of its own. linkstack writes the record beside its unit; other tools write it
when they decoded the unit, some milliseconds later, or before the unit went out. A
replay that decodes the units checks each record against its unit's frame instead of
decoding it a second time, and so must pair them across a window of time either way.

:class:`WindowPairing` holds what waits (records whose unit has not come, units whose
record has not come) and the window's rule:

- a unit that comes goes with the first waiting record whose frame it carries;
- a record that comes goes with the first waiting unit that carries its frame;
- a record that waited a window goes with the earliest waiting unit near it, where the
  caller allows pairing by time alone, and is on its own otherwise;
- a unit waits two windows (a record waits one, and may go with it at the end of its
  wait), then is forgotten: a unit needs no record.

The caller says what the waiting things are: ``same_frame`` (does this unit carry
this record's frame) and ``same_source`` (may they go together at all, beside their
times). It decides when a unit is searched for its record, and pairs by rules of its
own on top (:meth:`WindowPairing.take_unit`). The general replay keeps one per link
(:mod:`linkstack.capture.replay`), the mission replay one for its downlink, whose
records go with CADUs of their own source (:mod:`linkstack.capture.mission_replay`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Generic, Protocol, TypeVar


class Timed(Protocol):
    """Anything that waits: it has a time, in seconds."""

    @property
    def t_s(self) -> float: ...


R = TypeVar("R", bound=Timed)  # a frame record
U = TypeVar("U", bound=Timed)  # a unit that carries a frame


def _any_source(record: object, unit: object) -> bool:
    return True


T = TypeVar("T")


def _take_first(waiting: deque[T], matches: Callable[[T], bool]) -> T | None:
    """The first of ``waiting`` that ``matches``, taken out (None: none does)."""
    for item in waiting:
        if matches(item):
            waiting.remove(item)
            return item
    return None


class WindowPairing(Generic[R, U]):
    """Records and units waiting for each other within ``window_s`` either way.

    ``same_frame(record, unit)``: ``unit`` carries ``record``'s frame;
    ``same_source(record, unit)``: they may go together at all (default: any two)."""

    def __init__(
        self,
        window_s: float,
        same_frame: Callable[[R, U], bool],
        same_source: Callable[[R, U], bool] = _any_source,
    ) -> None:
        self.window_s = window_s
        self._same_frame = same_frame
        self._same_source = same_source
        self._records: deque[R] = deque()  # in the order they came
        self._units: deque[U] = deque()

    def __bool__(self) -> bool:
        """Something waits."""
        return bool(self._records or self._units)

    def _near(self, record: R, unit: U) -> bool:
        return abs(record.t_s - unit.t_s) <= self.window_s and self._same_source(record, unit)

    def _pairs(self, record: R, unit: U) -> bool:
        return self._near(record, unit) and self._same_frame(record, unit)

    def record_of(self, unit: U) -> R | None:
        """The first waiting record near ``unit`` whose frame it carries, taken out."""
        return _take_first(self._records, lambda record: self._pairs(record, unit))

    def unit_of(self, record: R) -> U | None:
        """The first waiting unit near ``record`` that carries its frame, taken out."""
        return _take_first(self._units, lambda unit: self._pairs(record, unit))

    def wait_record(self, record: R) -> None:
        self._records.append(record)

    def wait_unit(self, unit: U) -> None:
        self._units.append(unit)

    def take_unit(self, unit: U) -> None:
        """``unit`` (waiting) out: the caller paired it by a rule of its own."""
        self._units.remove(unit)

    def expire(
        self,
        before_s: float,
        paired: Callable[[R, U], None],
        alone: Callable[[R], None],
        by_time: bool = True,
    ) -> None:
        """The records that came before ``before_s`` (the window has passed for them),
        each in turn to ``paired`` with the earliest waiting unit near it (``by_time``:
        the caller allows it), else to ``alone``; then the units no record can reach
        any more are forgotten."""
        while self._records and self._records[0].t_s < before_s:
            record = self._records.popleft()
            near = None
            if by_time:
                near = _take_first(self._units, partial(self._near, record))
            if near is not None:
                paired(record, near)
            else:
                alone(record)
        while self._units and self._units[0].t_s < before_s - self.window_s:
            self._units.popleft()

    def forget_units(self) -> None:
        self._units.clear()
