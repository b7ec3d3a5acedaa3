"""The window's rule of linkstack/capture/window_pairing.py, by itself: records and
units (here: a time, a source and a frame) pair by their frame first, in either order;
a record that waited the window goes with the earliest unit near it, where pairing by
time is allowed, else alone; a unit is forgotten two windows on."""

from __future__ import annotations

from dataclasses import dataclass

from linkstack.capture.window_pairing import WindowPairing

WINDOW_S = 1.0


@dataclass(frozen=True, eq=False)
class Thing:
    t_s: float
    frame: bytes
    src: str = "a"


def _same_frame(record: Thing, unit: Thing) -> bool:
    return record.frame == unit.frame


def _pairing() -> WindowPairing[Thing, Thing]:
    return WindowPairing(WINDOW_S, _same_frame)


def _expire(p: WindowPairing[Thing, Thing], before_s: float, by_time: bool = True) -> list:
    out: list = []
    p.expire(before_s, lambda r, u: out.append((r, u)), lambda r: out.append((r, None)), by_time)
    return out


def test_a_record_goes_with_the_unit_of_its_frame_in_either_order_within_the_window():
    p = _pairing()
    first, second = Thing(0.0, b"x"), Thing(0.1, b"y")
    p.wait_unit(first)
    p.wait_unit(second)
    assert p.unit_of(Thing(0.5, b"y")) is second  # not the earlier unit: its frame differs
    assert p.unit_of(Thing(1.5, b"x")) is None  # 1.5 s away: beyond the window
    record = Thing(2.0, b"z")
    p.wait_record(record)
    assert p.record_of(Thing(2.9, b"z")) is record and p.record_of(Thing(2.9, b"z")) is None


def test_a_record_that_waited_goes_with_the_earliest_unit_near_it_or_alone():
    p = _pairing()
    early, late = Thing(0.0, b"u1"), Thing(0.2, b"u2")
    p.wait_unit(early)
    p.wait_unit(late)
    record = Thing(0.5, b"other")
    p.wait_record(record)
    assert _expire(p, 0.5) == []  # not yet past the window
    assert _expire(p, 0.6) == [(record, early)]
    lone = Thing(0.7, b"lone")
    p.wait_record(lone)
    assert _expire(p, 0.8, by_time=False) == [(lone, None)]  # the caller forbids it
    assert p  # the later unit still waits
    assert _expire(p, 0.2 + 2 * WINDOW_S + 0.01) == [] and not p  # forgotten two windows on


def test_a_source_apart_never_pairs():
    p = WindowPairing(WINDOW_S, _same_frame, lambda r, u: r.src == u.src)
    unit = Thing(0.0, b"x", "a")
    p.wait_unit(unit)
    assert p.unit_of(Thing(0.1, b"x", "b")) is None
    record = Thing(0.1, b"x", "b")
    p.wait_record(record)
    assert _expire(p, 5.0) == [(record, None)]


def test_a_unit_taken_by_the_callers_rule_waits_no_more():
    p = _pairing()
    unit = Thing(0.0, b"x")
    p.wait_unit(unit)
    p.take_unit(unit)
    assert not p and p.unit_of(Thing(0.0, b"x")) is None
    p.wait_unit(unit)
    p.forget_units()
    assert not p
