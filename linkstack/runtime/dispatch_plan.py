"""One dispatch pass of the mission control: which satellite each query goes to now.

A :class:`DispatchPlan` is what one pass knows at its instant (the routes, the places
left on each computing satellite, their busy holds), built afresh by each pass of
:class:`~linkstack.runtime.mission_control.MissionControl`; it picks the satellite an
"any" query goes to by load (:func:`~linkstack.runtime.routing.spread_rank` at equal
load) or, with ``completion``, by the earliest answer expected on the ground.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

from linkstack.runtime.routing import ContactState, UplinkRoute, spread_rank


class DispatchPlan:
    """What one dispatch pass knows at its instant: routes, places left, holds."""

    def __init__(
        self,
        contacts: ContactState,
        in_flight: dict[str, dict[str, float]],
        held: dict[str, float],
        capacity: int,
        now: float,
        completion: Callable[[UplinkRoute, int], float | None] | None = None,
        completion_floor: Callable[[UplinkRoute, int], float] | None = None,
    ) -> None:
        self.contacts = contacts
        # earliest_completion: when an answer sent by this route, with this many ahead of
        # it on the target, is expected on the ground (None: never); and an instant it
        # cannot come before, cheap to compute (None: no bound, every one is weighed)
        self.completion = completion
        self.completion_floor = completion_floor
        self.in_flight = in_flight  # satellite -> queries in flight there (shared, live)
        self.held = held  # satellite -> nothing new for it before this instant
        self.capacity = capacity
        self.now = now
        self._routes: dict[str | None, UplinkRoute | None] = {}
        self._spread: dict[str, UplinkRoute] | None = None
        self._heap: list[tuple[tuple[int, float, float, int], str]] | None = None
        self._picks: dict[str, UplinkRoute] = {}  # the routes of the satellites in the heap
        self._floor: int | None = None  # see pick; -1: not known yet; None: no need
        self.full = False  # no satellite an "any" query may go to has room

    def route(self, target: str | None) -> UplinkRoute | None:
        """The present route to ``target`` (None: any satellite), as it always was."""
        if target not in self._routes:
            self._routes[target] = self.contacts.uplink_route(target, self.now)
        return self._routes[target]

    def has_room(self, sat: str) -> bool:
        return len(self.in_flight[sat]) < self.capacity and self.held.get(sat, -1.0) <= self.now

    @property
    def spread(self) -> dict[str, UplinkRoute]:
        """The computing satellites that can be reached now, and how."""
        if self._spread is None:
            self._spread = self.contacts.uplink_routes(self.in_flight, self.now)
        return self._spread

    def pick(self) -> UplinkRoute | None:
        """The route to the satellite an "any" query goes to now (the lowest
        :func:`spread_rank` among those with room), counting it as sent there.

        The satellites in view are ranked first; the relayed ones (one search of the
        laser graph, :attr:`spread`) are added only when one of them could rank
        better: it has fewer queries in flight than the best in view (at equal load,
        straight up ranks before relayed). On a large constellation with room in
        view, most queries need no search."""
        if self.completion is not None:
            return self._pick_earliest(self.completion)
        in_flight = self.in_flight
        if self._heap is None:
            usable = self.contacts.usable_passes(self.now)
            self._picks = {
                sat: UplinkRoute(p.station, (sat,), p.los_t_s)  # as uplink_routes' own
                for sat, p in usable.items()
                if sat in in_flight
            }
            self._heap = [
                (spread_rank(self.contacts, route, len(in_flight[sat])), sat)
                for sat, route in self._picks.items()
                if self.has_room(sat)
            ]
            heapq.heapify(self._heap)
            self._floor = -1  # not known yet: only a busy best in view asks (below)
        heap = self._heap
        while True:
            if not heap:
                if self._add_relayed():
                    continue
                return None
            rank, sat = heap[0]
            if not self.has_room(sat):
                heapq.heappop(heap)
                continue
            load = len(in_flight[sat])
            if rank[0] != load:  # a named query took a place there meanwhile
                heapq.heapreplace(heap, ((load, *rank[1:]), sat))
                continue
            if load > 0 and self._floor is not None and self._floor < load:
                if self._floor < 0:
                    # the fewest queries in flight on a satellite out of view with room
                    # (only named queries add to it meanwhile: a bound from below)
                    self._floor = min(
                        (
                            len(q)
                            for sat, q in in_flight.items()
                            if sat not in self._picks and self.has_room(sat)
                        ),
                        default=None,
                    )
                    continue
                if self._add_relayed():
                    continue
            heapq.heapreplace(heap, ((load + 1, *rank[1:]), sat))
            return self._picks[sat]

    def _pick_earliest(
        self, completion: Callable[[UplinkRoute, int], float | None]
    ) -> UplinkRoute | None:
        """The reachable satellite with room whose answer is expected on the ground
        first, to the millisecond; at equal instants, the lowest :func:`spread_rank`
        (so a lightly loaded run chooses as the "load" policy does).

        The satellites are weighed in the order of their :attr:`completion_floor`
        (an instant the answer cannot come before: the laser hops, the queue and the
        compute, without the battery or the way down) to the millisecond, then their
        rank, and the weighing stops at the first whose (floor, rank) comes after the
        best (expected instant, rank) so far: its own expected instant is no earlier
        than its floor, and every one after it likewise. So the choice is that of
        weighing them all, but a large constellation weighs a few, not its thousands."""
        floor_of = self.completion_floor
        candidates = []
        for sat, route in self.spread.items():
            if not self.has_room(sat):
                continue
            load = len(self.in_flight[sat])
            floor_t_s = round(floor_of(route, load), 3) if floor_of is not None else -math.inf
            candidates.append(((floor_t_s, spread_rank(self.contacts, route, load)), route, load))
        candidates.sort(key=lambda c: c[0])
        best: tuple[tuple[float, tuple[int, float, float, int]], UplinkRoute] | None = None
        for bound, route, load in candidates:
            if best is not None and bound > best[0]:
                break  # its key >= its bound, and every one after it likewise
            done_t_s = completion(route, load)
            if done_t_s is None:
                continue
            key = (round(done_t_s, 3), spread_rank(self.contacts, route, load))
            if best is None or key < best[0]:
                best = (key, route)
        return None if best is None else best[1]

    def _add_relayed(self) -> bool:
        """Put the satellites reached over laser links into the pick's heap, once;
        whether this call added them (not when none out of view has room)."""
        if self._floor is None:
            return False
        if self._floor < 0:  # not known: is there one out of view with room?
            out_of_view = (s for s in self.in_flight if s not in self._picks)
            if not any(self.has_room(s) for s in out_of_view):
                self._floor = None
                return False
        self._floor = None
        assert self._heap is not None
        for sat, route in self.spread.items():
            if sat not in self._picks and self.has_room(sat):
                self._picks[sat] = route
                rank = spread_rank(self.contacts, route, len(self.in_flight[sat]))
                heapq.heappush(self._heap, (rank, sat))
        return True
