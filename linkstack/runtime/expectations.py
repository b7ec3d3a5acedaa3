"""What the ground expects of each computing satellite, and when answers should be down.

The ground learns each satellite's compute time from the answers that come down (the
longest of the last :data:`COMPUTE_SAMPLES`), and, in the ground daemon, which does
not observe space, keeps a copy of each satellite's battery that the charge each
answer reports corrects. From these, the route and the contact plan it works out two
instants: when an answer to a query sent now by a route should be down (the
"earliest_completion" dispatch weighs the satellites by it), and when the answer of a
query already sent is overdue (the client sends the query again then). A
:class:`~linkstack.runtime.mission_control.MissionControl` holds one, as ``expect``.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from typing import TYPE_CHECKING

from linkstack.runtime.report import Timeline
from linkstack.runtime.routing import UplinkRoute
from payloads.messages import Params

if TYPE_CHECKING:
    from linkstack.runtime.site import Site

# compute times (inference start to end) remembered per satellite, the longest counts
COMPUTE_SAMPLES = 32
# the prompt of the query the timing profile's prior is taken for (Expectations.prior_s)
PRIOR_PROMPT_TOKENS = 64
# the next contact down, per (target, whole second): computed once for every query due
# from that second (a burst), forgotten past this many entries
DOWN_CACHE_ENTRIES = 4096


class Expectations:
    """The ground's expectations of the computing satellites of ``site``."""

    def __init__(self, site: Site, answer_margin_s: float) -> None:
        self.site = site
        self.answer_margin_s = answer_margin_s
        # satellite -> its last compute times (s), learned from the answers (learn)
        self._compute_s: dict[str, deque[float]] = {}
        self._down_t_s: dict[tuple[str, int], float | None] = {}  # see DOWN_CACHE_ENTRIES

    def learn(self, timeline: Timeline, *, battery: bool) -> None:
        """Take what an answer's timeline tells: its satellite's compute time, and with
        ``battery`` (a ground that does not observe space: the daemon's) the charge it
        reported at the inference's end, into the ground's copy of that battery (in
        process the model is the satellite's own, already where the answer left it)."""
        start, end = timeline.inference_start_t_s, timeline.inference_end_t_s
        if start is None or end is None or not timeline.satellite:
            return
        samples = self._compute_s.get(timeline.satellite)
        if samples is None:
            samples = self._compute_s[timeline.satellite] = deque(maxlen=COMPUTE_SAMPLES)
        samples.append(max(end - start, 0.0))
        if battery and timeline.battery_wh is not None:
            power = self.site.power(timeline.satellite)
            if power is not None:
                power.observe(end, timeline.battery_wh)

    def compute_s(self, target: str) -> float:
        """The longest of ``target``'s recent compute times; before its first answer,
        the longest any satellite has taken; before any, the timing profile's time for
        a query of the default size where the satellites run one (:attr:`prior_s`),
        else 0. Without the prior, the queries that waited on the ground for a pass all
        look free to run at once and go up to the same satellite together."""
        computes = self._compute_s.get(target)
        if computes:
            return max(computes)
        return max((max(c) for c in self._compute_s.values() if c), default=self.prior_s)

    @functools.cached_property
    def prior_s(self) -> float:
        """What a query of the default size (``PRIOR_PROMPT_TOKENS`` in, ``Params()``'s
        ``max_new_tokens`` out) takes on board under the scenario's timing profile; 0
        without one (the host's stopwatch: nothing known before the first answer)."""
        timing = self.site.config.service.timing
        if timing is None:
            return 0.0
        return timing.generation_s(PRIOR_PROMPT_TOKENS, Params().max_new_tokens)[1]

    def completion_t_s(self, route: UplinkRoute, ahead: int, *, now_t_s: float) -> float | None:
        """When an answer to a query sent now by ``route`` should be on the ground,
        ``ahead`` queries in flight on its target before it (the "earliest_completion"
        dispatch): on board after the laser hops; its turn after those ahead, each
        taking the target's expected compute time (:meth:`compute_s`, ``concurrency``
        at once); its start when the battery allows (with ``[power]`` on, asked of the
        satellite's power model without booking: in process, where the ground and the
        satellites share one, the model itself; in the ground daemon, the ground's copy
        of it as the last answer from there reported it, stepped idle since); then down
        from the first contact the plan gives *from the instant the answer is ready*
        (:meth:`ContactState.downlink_route`). Taken at dispatch instead, the way down
        of every satellite in view is "now", and a satellite at the end of its pass,
        whose answer would have to wait for the next pass or go round over laser links,
        looks as good as one rising. None: no way down within the plan's look-ahead, or
        a battery that cannot carry it."""
        target = route.target
        compute_s = self.compute_s(target)
        ready_t_s = self._turn_t_s(route, ahead, compute_s, now_t_s)
        power = self.site.power(target)
        if power is not None:
            start_t_s = power.probe_start(ready_t_s, compute_s)
            if start_t_s is None:
                return None
            ready_t_s = start_t_s
        ready_t_s += compute_s
        down_t_s = self.next_down_t_s(target, ready_t_s)
        return None if down_t_s is None else max(down_t_s, ready_t_s)

    def completion_floor_t_s(self, route: UplinkRoute, ahead: int, *, now_t_s: float) -> float:
        """An instant :meth:`completion_t_s` cannot be before (the same sums in the same
        order, without the battery's wait or the way down), for the dispatch to weigh
        the satellites from the most promising and stop early."""
        compute_s = self.compute_s(route.target)
        return self._turn_t_s(route, ahead, compute_s, now_t_s) + compute_s

    def _turn_t_s(self, route: UplinkRoute, ahead: int, compute_s: float, now_t_s: float) -> float:
        """When the query's turn comes on ``route``'s target: on board after the laser
        hops, after those ``ahead`` of it (``concurrency`` at once)."""
        concurrency = self.site.config.service.concurrency
        return now_t_s + route.relay_s + (ahead // concurrency) * compute_s

    def answer_due_t_s(
        self, target: str, aboard_t_s: float, relay_s: float, ahead: int
    ) -> float | None:
        """When the answer to a query on board its first satellite at ``aboard_t_s``
        should be down: over the laser links to ``target`` (``relay_s``), behind the
        ``ahead`` queries in flight there, each taking the longest of the target's
        recent compute times, then down from the earliest contact after, plus the
        margin. None before an answer of ``target`` was seen, or with no contact in
        the plan's look-ahead."""
        computes = self._compute_s.get(target)
        if not computes:
            return None
        concurrency = self.site.config.service.concurrency
        ready_t_s = aboard_t_s + relay_s + (ahead // concurrency + 1) * max(computes)
        contact_t_s = self.next_down_t_s(target, ready_t_s)
        if contact_t_s is None:
            return None
        return max(contact_t_s, ready_t_s) + self.answer_margin_s

    def next_down_t_s(self, target: str, t_s: float) -> float | None:
        """When an answer ready on ``target`` at ``t_s`` (to the second) can go down."""
        key = (target, math.floor(t_s))
        if key not in self._down_t_s:
            if len(self._down_t_s) >= DOWN_CACHE_ENTRIES:
                self._down_t_s.clear()
            route = self.site.contacts.downlink_route(target, float(key[1]))
            self._down_t_s[key] = None if route is None else route.contact_t_s
        return self._down_t_s[key]
