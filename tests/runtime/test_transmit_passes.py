"""A satellite's TM through a pass (runtime/satellite.py: transmit_passes), in emulated
time: the in-process emulation's satellite sends while busy and stops after linger_s;
a daemon's (``idle_interval_s``) sends all through the pass, at its busy pace while
there is traffic and linger_s after, a frame every idle interval otherwise, and at once
when woken by a CLTU.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from linkstack.runtime import clock as clk
from linkstack.runtime.satellite import transmit_passes

INTERVAL_S = 0.2
LINGER_S = 2.0
IDLE_S = 1.0
LOS_T_S = 30.0  # the one pass: from 0 to here


class OnePass:
    """The contact state of a satellite in view from 0 to LOS_T_S."""

    def next_usable(self, name: str, t_s: float, downlink: bool = False) -> float | None:
        return t_s if t_s < LOS_T_S else None

    def in_view(self, name: str, t_s: float) -> bool:
        return t_s < LOS_T_S


class Site:
    def __init__(self, clock) -> None:
        self.clock = clock
        self.contacts = OnePass()
        self.event = asyncio.Event()

    def wake_event(self, name: str) -> asyncio.Event:
        return self.event


class Node:
    """Records when it emitted; busy once after each traffic (as take_traffic)."""

    name = "S"

    def __init__(self, clock) -> None:
        self.clock = clock
        self.transmitting = False
        self.emitted: list[float] = []
        self.traffic = False

    def emit_tm(self) -> int:
        self.emitted.append(round(self.clock.now(), 6))
        return 1

    def busy(self) -> bool:
        had, self.traffic = self.traffic, False
        return had

    def cltu(self, site: Site) -> None:
        """A CLTU comes up: traffic, and the pass loop woken."""
        self.traffic = True
        site.event.set()


def _run(idle_interval_s: float | None, traffic: bool, wake_t_s: list[float]):
    async def main():
        clock = clk.make_clock(True)
        site = Site(clock)
        node = Node(clock)
        node.traffic = traffic
        for t in wake_t_s:
            clock.call_at(t, node.cltu, site)
        task = asyncio.get_running_loop().create_task(
            transmit_passes(site, node, node.busy, INTERVAL_S, LINGER_S, idle_interval_s)
        )
        await clock.sleep_until(LOS_T_S + 5.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return node.emitted

    return clk.run(main, emulated=True)


def _gaps(emitted: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(emitted)]


def test_an_idle_daemon_satellite_sends_a_frame_every_idle_interval_all_through_the_pass():
    emitted = _run(IDLE_S, False, [])
    # a frame at AOS (the ground learns it is there), then one a second until LOS
    assert emitted[0] == 0.0 and emitted[-1] < LOS_T_S
    assert set(_gaps(emitted)) == {IDLE_S} and len(emitted) == LOS_T_S / IDLE_S


def test_a_daemon_satellite_with_traffic_at_aos_sends_at_the_busy_pace():
    emitted = _run(IDLE_S, True, [])
    busy = [t for t in emitted if t <= LINGER_S]
    assert _gaps(busy) == [INTERVAL_S] * (len(busy) - 1) and busy[-1] == LINGER_S
    assert set(_gaps([t for t in emitted if t >= LINGER_S])) == {IDLE_S}


def test_a_cltu_wakes_an_idle_daemon_satellite_at_once_and_keeps_it_busy_for_linger_s():
    wake_t_s = 10.5  # between two idle frames (10 and 11)
    emitted = _run(IDLE_S, False, [wake_t_s])
    assert wake_t_s in emitted  # the new CLCW goes down at once
    after = [t for t in emitted if wake_t_s <= t <= wake_t_s + LINGER_S]
    assert _gaps(after) == [INTERVAL_S] * (len(after) - 1)  # then at the busy pace
    late = [t for t in emitted if t >= wake_t_s + LINGER_S + INTERVAL_S]
    assert late and set(_gaps(late)) == {IDLE_S}  # and idle again


def test_the_emulation_satellite_stops_when_idle_and_starts_when_woken():
    emitted = _run(None, True, [10.5])
    assert emitted[0] == 0.0 and max(t for t in emitted if t < 10.0) <= LINGER_S + INTERVAL_S
    assert 10.5 in emitted and emitted[-1] <= 10.5 + LINGER_S + INTERVAL_S
