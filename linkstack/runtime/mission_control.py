"""The ground segment: the queue, routing, one COP-1 channel per satellite, reception.

:class:`MissionControl` is built from the uplink of each satellite, whatever its far
end (the physics in process, a UDP port in a daemon); what comes down is handed to
:meth:`MissionControl.on_downlink`. Each satellite's uplink is one COP-1 virtual
channel, a :class:`~linkstack.runtime.cop1_link.Ground` (FOP-1) for the whole run;
the stations are its RF front ends, so a handover is invisible to COP-1.

A message's progress lives in one place: each of its Space Packets is a
:class:`~linkstack.runtime.cop1_link.SentPacket` of its satellite's COP-1 channel,
which carries the message's :class:`_Transfer` as its tag; the channel reports each
CLTU that starts to radiate with that tag (:class:`~linkstack.runtime.cop1_link.Transmitted`),
which is when the uplink hop of the trace begins.

Queries are dispatched by load (:class:`~linkstack.runtime.config.DispatchConfig`):

- **Accounting.** The mission control counts, per computing satellite, the queries
  in flight there: uplinked to it (as their computing target, straight up or
  relayed), not yet answered (the client says when with :meth:`MissionControl.settled`).
- **Pacing.** A satellite is given at most its capacity in flight (what its service
  holds: ``concurrency + max_queued``); the rest wait in the ground queue. A query
  for "any satellite" goes to the computing satellite, among those it can reach
  now (straight up or relayed), that has room and the fewest in flight; at equal
  load the present rule decides (straight up, the pass that lasts longest:
  :func:`~linkstack.runtime.routing.spread_rank`). A query for a named satellite
  waits for room there. A query sent again by the client (it may have been lost)
  goes back to a satellite that has it in flight, without taking a second place.
- **Busy.** A ``busy`` refusal (:meth:`MissionControl.refused_busy`) frees the
  query's place, puts the query back in the queue (same id) and holds the
  satellite that refused: nothing new for ``busy_hold_s``, doubled each time it
  refuses again after a hold, until one of its answers comes down (the refusals
  of one burst make one hold). An "any" query goes elsewhere if there is room, a
  named one waits and tries its satellite again.
- **Refusals.** The ground queue holds at most ``max_waiting`` queries; a new one
  beyond that is refused (:class:`payloads.client.GroundQueueFullError`, which the
  client turns into a ``ground_queue_full`` answer). Acks are never refused or paced.

A satellite that restarts loses what it held: the queries it was running or had
queued, the messages parked on it for a laser link, half-reassembled ones. Its COP-1
channel tells (:class:`~linkstack.runtime.cop1_link.FarmReset`: FARM-1 is not where
the ground left it), and the mission control sends again at once, same id, every query
in flight on it or whose last uplink went through it (relayed onwards), and lifts its
busy hold (its service starts empty); what no one on the ground can see (a laser unit
lost in a pointing fade, a relay further along that restarts out of view) is made up
for when the query's answer is overdue: at each uplink of a query the mission control
tells the client (``on_dispatched``) when its answer should be down
(:meth:`MissionControl.answer_due_t_s`, :mod:`linkstack.runtime.expectations`: the
route, the target's recent compute times,
the next contact down, ``DispatchConfig.answer_margin_s``), and the client sends it
again then, same id, if it left the ground and no answer came. With ``continuous_tm``
(the daemons, whose satellites send TM all through every pass), a CLCW stream that
stops in the middle of a pass and comes back
(:class:`~linkstack.runtime.cop1_link.ClcwResumed`: the satellite or the channel
between restarted) does the same, without lifting the hold: the satellite runs an id
once, and answers at once a query it has the answer of, so what a restart of the
channel lost comes down in seconds. ``on_restart`` hears each of these (satellite,
reason, the ids sent again).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from channels.link import Delivery, Link
from linkstack.ccsds.spp import PacketType, Reassembler, SequenceCounter, SpacePacket, segment
from linkstack.errors import ConfigError, DecodeError
from linkstack.runtime.cop1_link import (
    FarEndSignal,
    FarmReset,
    Ground,
    SentPacket,
    Transmitted,
)
from linkstack.runtime.dispatch_plan import DispatchPlan
from linkstack.runtime.expectations import Expectations
from linkstack.runtime.report import Hop, Timeline
from linkstack.runtime.routing import (
    GROUND_NODE,
    RELAY_APID,
    RelayHeader,
    UplinkRoute,
)
from linkstack.runtime.site import MAX_PACKET_DATA, Site, ground_node, sat_node
from linkstack.runtime.trace import HopRecord
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.timebase import TimerHandle
from payloads.client import GroundQueueFullError
from payloads.messages import (
    ANSWER_APID,
    QUERY_APID,
    MessageKey,
    answer_key,
    query_key,
)

if TYPE_CHECKING:
    from linkstack.runtime.sdls_management import GroundManagement

NO_ROUTE_RETRY_S = 3600.0  # no satellite reachable within the plan's look-ahead: look again
# a busy refusal made this long before the query's last uplink to its satellite is a
# late copy of an earlier refusal (a busy hold lasts longer than this)
STALE_REFUSAL_S = 0.5


@dataclass(slots=True)
class _Outgoing:
    message: bytes
    target: str | None
    query_id: str | None


@dataclass(slots=True)
class _Query:
    """A query the ground has admitted and not yet seen settled."""

    message: bytes
    target: str | None
    on: set[str] = field(default_factory=set)  # computing satellites it is in flight on


@dataclass(slots=True, eq=False)
class _Transfer:
    """One message handed to one satellite's COP-1 channel, and its packets there."""

    key: MessageKey | None
    message: bytes
    satellite: str
    query_id: str | None
    packets: list[SentPacket] = field(default_factory=list)
    record: HopRecord | None = None  # the uplink hop, from its first CLTU
    target: str = ""  # where the message goes: the first satellite, or over laser links
    relay_s: float = 0.0  # over the laser links to the target (UplinkRoute.relay_s)
    ahead: int = 0  # queries in flight on the target before this one, at its dispatch
    dispatch_t_s: float = 0.0

    @property
    def on_ground(self) -> bool:
        """Some packet neither acknowledged nor given up (a packet negatively
        confirmed, when a COP-1 alert purged it, has left for good)."""
        return any(p.acked_t_s is None and not p.failed for p in self.packets)


class MissionControl:
    """The ground segment (see the module docstring).

    Implements :class:`payloads.client.GroundSegment` for the client; every message
    that comes down goes to ``deliver(message, t_s, satellite)``. ``cop1`` is the
    COP-1 configuration of every channel (default: the site's; the SCID is each
    satellite's).

    ``observes_space`` False (the ground daemon): the trace holds only what the
    ground saw (uplink starts, downlink arrivals); :meth:`annotate` then fills the
    timeline from those and from the instants the answer carries; and, with
    ``[power]`` on, it keeps its own copy of each computing satellite's battery
    (the site's power model in the ground's process), corrected by the charge each
    answer reports (:attr:`payloads.messages.Answer.battery_wh`), which the
    "earliest_completion" dispatch asks."""

    def __init__(
        self,
        site: Site,
        uplinks: Mapping[str, Link],
        *,
        cop1: UplinkConfig | None = None,
        observes_space: bool = True,
        continuous_tm: bool = False,
    ) -> None:
        self.site = site
        self.observes_space = observes_space
        self.continuous_tm = continuous_tm  # satellites send TM all through every pass
        self.deliver: Callable[[bytes, float, str], object] | None = None
        # (satellite, reason, ids sent again) at each restart seen on board
        self.on_restart: Callable[[str, str, list[str]], object] | None = None
        # (satellite, t_s, packet) for each downlink packet of an APID not linkstack's
        self.on_other_packet: Callable[[str, float, bytes], object] | None = None
        # (satellite, transmitted) for each frame of a packet someone else sent (a bridge)
        self.on_other_transmitted: Callable[[str, Transmitted], object] | None = None
        self.queue: list[_Outgoing] = []
        self.stats: Counter[str] = Counter()
        self.channels: dict[str, Ground] = {}
        cop1 = site.config.uplink if cop1 is None else cop1
        for name, link in uplinks.items():
            channel = replace(cop1, scid=site.scid(name))
            guard = None
            if site.guards is not None:  # SDLS: TC protected, TM checked
                guard = site.guards.ground(
                    name,
                    site.number(name),
                    channel.tc_max_frame_length,
                    channel.tc_segment_header,
                    channel.tm_frame_length,
                )
            self.channels[name] = Ground(
                channel,
                site.clock,
                link,
                functools.partial(self.on_packet, name),
                on_transmitted=functools.partial(self._on_transmitted, name),
                on_far_end=functools.partial(self._on_far_end, name),
                guard=guard,
            )
        if not observes_space:  # the ground's copies of the batteries start with the run
            for name in site.powered():
                site.power(name)
        self._sdls_management: dict[str, GroundManagement] = {}
        self._reassemblers = {name: Reassembler() for name in uplinks}
        self._counters = {name: SequenceCounter() for name in uplinks}
        self._by_query: dict[str, list[_Transfer]] = defaultdict(list)
        self._timer: TimerHandle | None = None
        self._scheduled = False
        # dispatch by load (see the module docstring)
        self.dispatch = site.config.dispatch
        service = site.config.service
        self.capacity = self.dispatch.capacity or service.concurrency + service.max_queued
        computing = site.config.computing
        self._in_flight: dict[str, dict[str, float]] = {
            name: {} for name in uplinks if computing is None or name in computing
        }  # computing satellite -> {query id: when it was last uplinked to it}
        self._queries: dict[str, _Query] = {}
        self._queued: set[str] = set()  # ids of the queries waiting in the queue
        self._held: dict[str, float] = {}  # satellite -> nothing new for it before this
        self._busy_in_a_row: Counter[str] = Counter()
        # (satellite, t_s) of the message being delivered (on_packet), for annotate
        self._arrival: tuple[str, float] | None = None
        # compute times and batteries learnt from the answers, the instants expected
        self.expect = Expectations(site, self.dispatch.answer_margin_s)
        # (query id, the instant its answer is due) at each dispatch of a query: the
        # client's cue to send it again if no answer has come by then (answer_due_t_s)
        self.on_dispatched: Callable[[str, float], object] | None = None  # Client.answer_due

    def sdls_management(self, satellite: str) -> GroundManagement:
        """SDLS SA and key management of ``satellite``'s link (355.1: key rotation,
        over-the-air rekeying; :mod:`linkstack.runtime.sdls_management`), made at the
        first call; ``ConfigError`` when SDLS is off."""
        made = self._sdls_management.get(satellite)
        if made is None:
            from linkstack.runtime.sdls_management import (  # noqa: PLC0415 - SDLS on only
                GroundManagement,
                uplink_gvcid,
            )

            channel = self.channels[satellite]
            if channel.guard is None:
                raise ConfigError("sdls", "enabled", "SDLS is off: there is nothing to manage")
            made = self._sdls_management[satellite] = GroundManagement(
                channel,
                channel.guard,
                self.site.clock,
                channel.config.sdls,
                uplink_gvcid(channel.config),
                link=self.site.number(satellite),
            )
        return made

    def start(self) -> None:
        """Initiate each channel's AD service as configured."""
        for channel in self.channels.values():
            channel.start()

    def close(self) -> None:
        """Close every COP-1 channel and stop the dispatch timer."""
        for channel in self.channels.values():
            channel.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def busy(self, satellite: str) -> bool:
        """Whether ``satellite``'s COP-1 channel has anything to send or to have
        acknowledged (its TM must keep coming)."""
        return self.channels[satellite].busy

    def in_flight(self, satellite: str) -> int:
        """Queries uplinked to ``satellite`` (a computing one) and not yet answered."""
        return len(self._in_flight.get(satellite, ()))

    @property
    def waiting(self) -> int:
        """Queries waiting in the ground queue."""
        return len(self._queued)

    def held(self) -> dict[str, int]:
        """How much it holds per query (what must stay bounded in a process that runs
        for ever), its trace's included."""
        return {
            "queries": len(self._queries),
            "queries_with_transfers": len(self._by_query),
            "queue": len(self.queue),
            **{f"trace_{k}": v for k, v in self.site.trace.held().items()},
        }

    def whereabouts(self, query_id: str) -> dict[str, object]:
        """Where a query is, as the ground knows it (read only; a soak's end report):
        waiting in the queue or not, its target, the computing satellites it is in
        flight on, each uplink of it (through which satellite, when its first CLTU
        left, whether COP-1 still holds a packet of it), and each hop the trace has
        of the query and of its answer (``end_t_s`` None: the hop is still open)."""
        query = self._queries.get(query_id)
        trace = self.site.trace
        return {
            "queued": query_id in self._queued,
            "answer_due_t_s": self.answer_due_t_s(query_id),
            "target": query.target if query is not None else None,
            "in_flight_on": sorted(query.on) if query is not None else [],
            "transfers": [
                {
                    "satellite": t.satellite,
                    "first_cltu_t_s": t.record.start_t_s if t.record is not None else None,
                    "on_ground": t.on_ground,
                }
                for t in self._by_query.get(query_id, ())
            ],
            "hops": [
                {
                    "message": key[0],
                    "kind": h.kind,
                    "src": h.src,
                    "dst": h.dst,
                    "start_t_s": h.start_t_s,
                    "end_t_s": h.end_t_s,
                }
                for key in (query_key(query_id), answer_key(query_id))
                for h in trace.hops.get(key, ())
            ],
        }

    # -- GroundSegment -----------------------------------------------------------------------
    def submit(self, message: bytes, *, target: str | None, query_id: str | None) -> None:
        if query_id is not None:
            query = self._queries.get(query_id)
            if query is None:
                waiting = self.waiting
                if waiting >= self.dispatch.max_waiting:
                    self.stats["refused_ground_queue_full"] += 1
                    raise GroundQueueFullError(
                        f"{waiting} queries already wait on the ground, the most it holds "
                        "(DispatchConfig.max_waiting)"
                    )
                query = self._queries[query_id] = _Query(message, target)
            elif query_id in self._queued:  # already waiting: once is enough
                self.stats["submitted_again_while_queued"] += 1
                return
            self._queued.add(query_id)
        self.stats["submitted"] += 1
        self.queue.append(_Outgoing(message, target, query_id))
        self._kick()

    def refused_busy(self, query_id: str, satellite: str, t_s: float | None) -> None:
        """``satellite`` had no room for the query after all: free its place there,
        hold the satellite a while, and queue the query again (same id)."""
        query = self._queries.get(query_id)
        flights = self._in_flight.get(satellite)
        if query is None or flights is None or query_id not in flights:
            self.stats["busy_not_in_flight"] += 1  # a late copy, or not ours
            return
        if t_s is not None and t_s < flights[query_id] - STALE_REFUSAL_S:
            self.stats["busy_stale"] += 1  # refused before its last uplink there
            return
        self.stats["busy"] += 1
        del flights[query_id]
        query.on.discard(satellite)
        now = self.site.clock.now()
        if self._held.get(satellite, -1.0) <= now:  # not already held: a new try failed
            self._busy_in_a_row[satellite] += 1
            hold_s = min(
                self.dispatch.busy_hold_s * 2.0 ** (self._busy_in_a_row[satellite] - 1),
                self.dispatch.max_busy_hold_s,
            )
            self._held[satellite] = now + hold_s
        if not query.on and query_id not in self._queued:
            self.stats["requeued_busy"] += 1
            self._queued.add(query_id)
            self.queue.append(_Outgoing(query.message, query.target, query_id))
        self._kick()

    def settled(self, query_id: str, satellite: str) -> None:
        """The query has its answer (or the ground gave up): forget it."""
        self._by_query.pop(query_id, None)  # COP-1 holds its packets until acknowledged
        query = self._queries.pop(query_id, None)
        if query is None:
            return
        for sat in query.on:
            self._in_flight[sat].pop(query_id, None)
        if satellite in query.on:  # it answers: it is not busy
            self._busy_in_a_row.pop(satellite, None)
        if query_id in self._queued:
            self._queued.discard(query_id)
            self.queue = [item for item in self.queue if item.query_id != query_id]
        if self.queue:  # a place came free
            self._kick()

    def in_view(self, target: str | None) -> bool:
        """Whether a query for ``target`` could go straight up now: ``target`` (None:
        some computing satellite) has a usable pass."""
        usable = self.site.contacts.usable_passes(self.site.clock.now())
        names = self._in_flight if target is None else (target,)
        return any(name in usable for name in names)

    def relayed(self, target: str | None) -> bool:
        """Whether a query for ``target`` (None: any computing satellite) could leave now
        only to be relayed: none is in view, and a satellite in view reaches one over
        laser links."""
        if self.in_view(target):
            return False
        contacts, now = self.site.contacts, self.site.clock.now()
        if target is None:
            return bool(contacts.uplink_routes(self._in_flight, now))
        return contacts.uplink_route(target, now) is not None

    def on_ground(self, query_id: str) -> bool:
        if query_id in self._queued:
            return True
        transfers = self._by_query.get(query_id)
        if not transfers:
            return False
        return transfers[-1].on_ground

    def answer_due_t_s(self, query_id: str) -> float | None:
        """When the answer of the query's last uplink should be on the ground if nothing
        was lost, or None: unknown (never uplinked, still held by COP-1, no compute time
        of its target seen yet, no contact in the plan's look-ahead).

        The round trip expected from its route: on board the first satellite when COP-1
        acknowledged it; over the laser links to the target (``relay_s``); there, behind
        the queries the ground had in flight on it at dispatch, each taking the longest
        of the target's recent compute times (``concurrency`` at once); then down from
        the earliest contact the plan gives from that instant
        (:meth:`ContactState.downlink_route`); plus ``DispatchConfig.answer_margin_s``
        (when COP-1 gave its frames up instead, an alert, from its dispatch).
        Laser links and relays have no retransmission: a query lost there (a pointing
        fade, a relay that restarted) is sent again by the client once this is past
        (:meth:`payloads.client.Client.answer_due`), not after ``retry_after_s``."""
        transfers = self._by_query.get(query_id)
        if not transfers or transfers[-1].on_ground:
            return None
        transfer = transfers[-1]
        acked = [p.acked_t_s for p in transfer.packets if p.acked_t_s is not None]
        # none acknowledged: COP-1 gave its frames up (an alert purged them, they may or
        # may not have reached FARM-1): as if on board when it was dispatched
        return self._due_from(transfer, max(acked) if acked else transfer.dispatch_t_s)

    def _due_from(self, transfer: _Transfer, aboard_t_s: float) -> float | None:
        return self.expect.answer_due_t_s(
            transfer.target, aboard_t_s, transfer.relay_s, transfer.ahead
        )

    def annotate(self, timeline: Timeline) -> None:
        """Fill the timeline from the trace, then forget the query's hops: the
        timeline is all that is kept of them (a long run must not grow)."""
        qkey, akey = ("q", timeline.query_id), ("a", timeline.query_id)
        self.expect.learn(timeline, battery=not self.observes_space)
        if self.observes_space:
            self._annotate_from_trace(timeline)
        else:
            self._annotate_from_ground(timeline)
        self.site.trace.forget(qkey, akey)

    def _annotate_from_trace(self, timeline: Timeline) -> None:
        """What the whole emulation saw: the hops that brought the query on board and
        the answer down, from one trace."""
        trace = self.site.trace
        qkey, akey = ("q", timeline.query_id), ("a", timeline.query_id)
        hops: list[HopRecord] = []
        board_t_s = timeline.query_on_board_t_s
        sat = sat_node(timeline.satellite)
        into = [
            h
            for h in trace.hops.get(qkey, ())
            if h.end_t_s is not None
            and h.dst == sat
            and (board_t_s is None or h.end_t_s <= board_t_s + 1e-6)
        ]
        if into:
            chain = trace.chain(qkey, max(into, key=_end_t_s), "ground:")
            if chain[0].kind == "uplink":
                timeline.first_uplink_t_s = chain[0].start_t_s
                timeline.query_on_first_sat_t_s = chain[0].end_t_s
            hops += chain
        ups = [h for h in trace.hops.get(qkey, ()) if h.kind == "uplink"]
        timeline.uplink_frames_sent = sum(h.frames for h in ups)
        timeline.uplink_retransmissions = sum(h.retransmissions for h in ups)
        downs = [
            h for h in trace.hops.get(akey, ()) if h.kind == "downlink" and h.end_t_s is not None
        ]
        if downs:
            first = min(downs, key=_end_t_s)
            chain = trace.chain(akey, first, sat)
            timeline.first_downlink_t_s = first.start_t_s
            hops += chain
        timeline.answer_copies = trace.copies.get(akey, 0)
        # every hop of a chain has ended (the last by choice, the others by Trace.chain)
        timeline.hops = [
            Hop(h.kind, h.src, h.dst, h.start_t_s, end_t_s)
            for h in hops
            if (end_t_s := h.end_t_s) is not None
        ]

    def _annotate_from_ground(self, timeline: Timeline) -> None:
        """What a ground alone knows (a daemon: the satellites are in other processes).

        Seen here: when the copy of the query that reached the satellite began to go
        up (the last uplink begun before it was on board) and to which satellite, and
        when and from which satellite the answer came down (:meth:`on_packet`); the
        answer says when the query was on board. The laser hops between are the
        routes of the contact plan the satellites route by (the same plan, the same
        rules: :class:`~linkstack.runtime.routing.ContactState`), with their
        instants where one of these saw them and None elsewhere. When the query went
        straight up to the satellite that answered, its uplink ended when it was on
        board. The copies of the answer are the same octets, sent in another
        process: not counted (None)."""
        contacts = self.site.contacts
        hops = self.site.trace.hops.get(("q", timeline.query_id), ())
        ups = [h for h in hops if h.kind == "uplink"]
        timeline.uplink_frames_sent = sum(h.frames for h in ups)
        timeline.uplink_retransmissions = sum(h.retransmissions for h in ups)
        timeline.answer_copies = None
        board_t_s = timeline.query_on_board_t_s
        target = timeline.satellite
        route: list[Hop] = []
        before = [h for h in ups if board_t_s is None or h.start_t_s <= board_t_s + 1e-6]
        if before:
            up = max(before, key=lambda h: h.start_t_s)
            timeline.first_uplink_t_s = up.start_t_s
            first = up.dst.removeprefix("sat:")
            path = (first,) if first == target else contacts.path(first, target, up.start_t_s)
            if path is None or not target:  # no laser path now: the uplink alone
                path = (first,)
            if path[-1] == target:
                timeline.query_on_first_sat_t_s = board_t_s if len(path) == 1 else None
            route.append(Hop("uplink", up.src, up.dst, up.start_t_s, None))
            route += _isl_hops(path)
            if path[-1] == target:
                route[-1].end_t_s = board_t_s
        arrival = self._arrival
        if arrival is not None and timeline.answer_on_ground_t_s == arrival[1]:
            down_sat, t_s = arrival
            route += _isl_hops(self._downlink_path(timeline, down_sat))
            station = self.site.switches[down_sat].station_at(t_s) or ""
            route.append(Hop("downlink", sat_node(down_sat), ground_node(station), None, t_s))
        timeline.hops = route

    def _downlink_path(self, timeline: Timeline, down_sat: str) -> tuple[str, ...]:
        """The laser path an answer took from the satellite that made it to
        ``down_sat``, which sent it down: the route the satellite chose when the
        answer was ready (or, if that one ends elsewhere, the shortest path when it
        came down)."""
        src = timeline.satellite
        if not src or src == down_sat:
            return (down_sat,)
        contacts = self.site.contacts
        ready_t_s = timeline.inference_end_t_s
        if ready_t_s is not None:
            route = contacts.downlink_route(src, ready_t_s)
            if route is not None and route.path[-1] == down_sat:
                return route.path
        assert timeline.answer_on_ground_t_s is not None
        path = contacts.path(src, down_sat, timeline.answer_on_ground_t_s)
        return path if path is not None else (down_sat,)

    # -- test and tool hooks -----------------------------------------------------------------
    def send_raw(self, satellite: str, payload: bytes, apid: int = QUERY_APID) -> None:
        """Uplink any octets as the data of Space Packets on ``apid`` to ``satellite``
        now, whatever they hold (a malformed query, for instance)."""
        transfer = _Transfer(None, payload, satellite, None)
        self._send_packets(satellite, payload, apid, transfer, "")

    # -- dispatch ------------------------------------------------------------------------------
    def _kick(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._scheduled = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self.site.clock.now()
        completion = floor = None
        if self.dispatch.policy == "earliest_completion":
            completion = functools.partial(self.expect.completion_t_s, now_t_s=now)
            floor = functools.partial(self.expect.completion_floor_t_s, now_t_s=now)
        plan = DispatchPlan(
            self.site.contacts, self._in_flight, self._held, self.capacity, now, completion, floor
        )
        waiting = []
        no_route: set[str | None] = set()  # targets (None: any) waiting for a route
        for_room = False  # some query waits for a satellite with room
        for item in self.queue:
            query = self._queries.get(item.query_id) if item.query_id is not None else None
            if query is None:  # an ack (or raw octets): not paced
                route = plan.route(item.target)
            else:
                route = self._route_query(plan, query)
                if route is None and not self._reachable(plan, query):
                    no_route.add(query.target)
                elif route is None:
                    for_room = True
            if route is None:
                if query is None:
                    no_route.add(item.target)
                waiting.append(item)
                continue
            if query is not None and item.query_id is not None:
                self._queued.discard(item.query_id)
                if route.target in self._in_flight:
                    self._in_flight[route.target][item.query_id] = now
                    query.on.add(route.target)
            self._uplink(route, item)
        self.queue = waiting
        if waiting:
            wake_t_s = self._wake_t_s(no_route, for_room, now)
            self._timer = self.site.clock.call_at(max(wake_t_s, now + 1e-3), self._dispatch)

    def _route_query(self, plan: DispatchPlan, query: _Query) -> UplinkRoute | None:
        """Where a waiting query goes now, or None (no route, or no room)."""
        for sat in sorted(query.on):  # sent again: where it is in flight, if reachable
            route = plan.route(sat)
            if route is not None:
                self.stats["sent_again_in_flight"] += 1
                return route
        target = query.target
        if target is not None:
            if target in self._in_flight and not plan.has_room(target):
                return None
            return plan.route(target)
        if plan.full:
            return None
        route = plan.pick()
        plan.full = route is None
        return route

    def _reachable(self, plan: DispatchPlan, query: _Query) -> bool:
        """Whether the query could go somewhere now but for room."""
        if query.target is not None:
            return plan.route(query.target) is not None
        return bool(plan.spread)

    def _wake_t_s(self, no_route: set[str | None], for_room: bool, now: float) -> float:
        """When to look at the queue again: the next route for what has none, the end
        of a satellite's busy hold, and a recheck while queries wait for room (an
        answer coming down makes room at once)."""
        contacts = self.site.contacts
        times_t_s: list[float | None] = []
        for target in no_route:
            if target is None and len(self._in_flight) < len(self.channels):
                times_t_s.append(contacts.next_uplink_time_any(self._in_flight, now))
            else:
                times_t_s.append(contacts.next_uplink_time(target, now))
        if for_room:
            times_t_s.append(now + self.dispatch.recheck_s)
            times_t_s += [t for t in self._held.values() if t > now]
        soon_t_s = [t for t in times_t_s if t is not None]
        return min(soon_t_s) if soon_t_s else now + NO_ROUTE_RETRY_S

    def _uplink(self, route: UplinkRoute, item: _Outgoing) -> None:
        sat = route.first
        if route.target == sat:
            payload, apid = item.message, QUERY_APID
        else:
            header = RelayHeader(GROUND_NODE, self.site.number(route.target))
            payload, apid = header.wrap(item.message), RELAY_APID
            self.stats["relayed"] += 1
        key = query_key(item.query_id) if item.query_id is not None else None  # acks: None
        transfer = _Transfer(key, item.message, sat, item.query_id, target=route.target)
        transfer.relay_s, transfer.dispatch_t_s = route.relay_s, self.site.clock.now()
        if item.query_id is not None:
            self._by_query[item.query_id].append(transfer)
            flights = self._in_flight.get(route.target, {})
            transfer.ahead = max(len(flights) - (item.query_id in flights), 0)
        self.stats["uplinked"] += 1
        self._send_packets(sat, payload, apid, transfer, route.station)
        if item.query_id is not None and self.on_dispatched is not None:
            # as if on board at once: the client looks then, and finds the due instant
            # later if COP-1 took longer (answer_due_t_s counts from its acknowledgement)
            due_t_s = self._due_from(transfer, transfer.dispatch_t_s)
            if due_t_s is not None:
                self.on_dispatched(item.query_id, due_t_s)

    def _send_packets(
        self, sat: str, payload: bytes, apid: int, transfer: _Transfer, station: str
    ) -> None:
        site = self.site
        channel = self.channels[sat]
        now = site.clock.now()
        packets = segment(payload, apid, self._counters[sat], MAX_PACKET_DATA, PacketType.TC)
        for packet in packets:
            raw = packet.pack()
            if site.sink is not None:
                site.sink.unit("space_packet", now, ground_node(station), sat_node(sat), raw)
            transfer.packets.append(channel.send(raw, tag=transfer))
        site.wake(sat)

    def _on_transmitted(self, sat: str, sent: Transmitted) -> None:
        transfer = sent.tag
        if not isinstance(transfer, _Transfer):  # a packet of someone else's (a bridge)
            if self.on_other_transmitted is not None:
                self.on_other_transmitted(sat, sent)
            return
        if transfer.record is None:
            station = sent.conditions.via if sent.conditions is not None else ""
            transfer.record = self.site.trace.start(
                transfer.key,
                ("up", sat),
                "uplink",
                ground_node(station),
                sat_node(sat),
                sent.t_s,
                transfer.message,
            )
        if transfer.record is not None:
            transfer.record.frames += 1
            transfer.record.retransmissions += int(sent.retransmission)

    # -- restarts on board (see the module docstring) ---------------------------------------
    def _on_far_end(self, sat: str, signal: FarEndSignal) -> None:
        if isinstance(signal, FarmReset):
            self.stats["satellite_restarts"] += 1
            self._held.pop(sat, None)  # its service starts empty: the hold was the old one's
            self._busy_in_a_row.pop(sat, None)
            self.resend_in_flight(sat, f"farm_{signal.reason}")
        elif self.continuous_tm and self._one_pass(sat, signal.since_t_s, signal.t_s):
            self.stats["clcw_breaks_in_pass"] += 1
            self.resend_in_flight(sat, "clcw_break_in_pass")

    def _one_pass(self, sat: str, from_t_s: float, to_t_s: float) -> bool:
        """Whether one pass of ``sat`` lasts from ``from_t_s`` to ``to_t_s``."""
        return any(p.los_t_s > to_t_s for p in self.site.contacts.passes(sat, from_t_s))

    def resend_in_flight(self, sat: str, reason: str) -> list[str]:
        """Queue again now (same id) every query in flight on ``sat`` or whose last
        uplink went through it, and not already waiting; their ids."""
        ids = [
            query_id
            for query_id, query in self._queries.items()
            if query_id not in self._queued and self._went_through(query_id, query, sat)
        ]
        for query_id in ids:
            query = self._queries[query_id]
            self._queued.add(query_id)  # query.on kept: back where it is, no second place
            self.queue.append(_Outgoing(query.message, query.target, query_id))
        self.stats["resent_after_restart"] += len(ids)
        if self.on_restart is not None:
            self.on_restart(sat, reason, ids)
        if ids:
            self._kick()
        return ids

    def _went_through(self, query_id: str, query: _Query, sat: str) -> bool:
        if sat in query.on:
            return True
        transfers = self._by_query.get(query_id)
        return bool(transfers and transfers[-1].satellite == sat)

    # -- reception ------------------------------------------------------------------------------
    def on_downlink(self, satellite: str, delivery: Delivery) -> None:
        """A TM CADU from ``satellite`` (through whichever station received it)."""
        self.channels[satellite].on_downlink(delivery)

    def on_packet(self, sat: str, t_s: float, raw: bytes) -> None:
        try:
            packet = SpacePacket.unpack(raw)
        except DecodeError:
            self.stats["bad_packets"] += 1
            return
        if packet.apid != ANSWER_APID:  # not linkstack's: someone else's (a bridge), or none's
            if self.on_other_packet is not None:
                self.stats["other_packets"] += 1
                self.on_other_packet(sat, t_s, raw)
            else:
                self.stats[f"unexpected_apid_{packet.apid:#x}"] += 1
            return
        payload = self._reassemblers[sat].push(packet)
        if payload is None:
            return
        self.stats["messages_received"] += 1
        self.site.trace.end(("down", sat), payload, t_s)
        if self.deliver is not None:
            # the client decodes it and, if it is an answer, has its timeline annotated
            # now: what a ground alone knows of the downlink (_annotate_from_ground)
            self._arrival = (sat, t_s)
            try:
                self.deliver(payload, t_s, sat)
            finally:
                self._arrival = None


def _isl_hops(path: tuple[str, ...]) -> list[Hop]:
    """The laser hops along ``path``, their instants not seen."""
    return [Hop("isl", sat_node(a), sat_node(b), None, None) for a, b in itertools.pairwise(path)]


def _end_t_s(hop: HopRecord) -> float:
    return hop.end_t_s if hop.end_t_s is not None else float("inf")
