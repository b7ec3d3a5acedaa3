"""The ground segment: the queue, routing, one COP-1 channel per satellite, reception."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from channels.link import LinkEvent
from linkstack.ccsds.cop1.fop import Directive, FopState, Response, TransferResponse, Transmit
from linkstack.ccsds.spp import PacketType, Reassembler, SequenceCounter, SpacePacket, segment
from linkstack.ccsds.tc import TcFrameType
from linkstack.errors import DecodeError
from linkstack.runtime.cop1_link import Ground, UplinkConfig
from linkstack.runtime.radio import RadioLink
from linkstack.runtime.report import Hop, Timeline
from linkstack.runtime.routing import GROUND_NODE, RELAY_APID, RelayHeader
from linkstack.runtime.site import MAX_PACKET_DATA, Site, ground_node, sat_node
from linkstack.runtime.trace import HopRecord, Trace
from payloads.messages import ANSWER_APID, QUERY_APID

# -- the ground ------------------------------------------------------------------------------


class Cop1Channel(Ground):
    """FOP-1 of one satellite, and which query packet each CLTU it sends carries.

    With ``sync`` (the ground daemon), the AD service is not initiated at start but
    from the first CLCW that comes down: "initiate AD service with Set V(R)" to the
    N(R) that FARM-1 reports, so that a ground that restarted (its V(S) back to 0)
    carries on with a FARM-1 that did not; after an Unlock if FARM-1 reports
    Lockout. It does so again whenever FOP-1 is back in its initial state (an
    alert), but not while it is suspended (auto-resume handles that)."""

    def __init__(
        self,
        config: UplinkConfig,
        clock: Any,
        uplink: RadioLink,
        on_packet: Callable[[float, bytes], object],
        on_frame_sent: Callable[[int, bool, float], None],
        *,
        sync: bool = False,
    ) -> None:
        super().__init__(config, clock, uplink, on_packet)
        self.radio = uplink
        self.on_frame_sent = on_frame_sent
        self.sync = sync
        self._unlocking = False
        self._accepted: int | None = None
        self._seq_owner: dict[int, int] = {}
        self._unit_owner: dict[int, tuple[int, bool]] = {}
        uplink.add_listener(self._on_event)

    def start(self) -> None:
        if not self.sync:
            super().start()

    def _on_ocf(self, ocf: bytes, now: float) -> None:
        super()._on_ocf(ocf, now)
        if self.sync and self.last_clcw_t_s == now and self.last_clcw is not None:
            self._resync(self.last_clcw)

    def _resync(self, clcw: Any) -> None:
        fop = self.fop
        if fop.state is FopState.INITIALISING_WITH_BC:
            if clcw.lockout and not self._unlocking:
                # FARM-1 does not execute Set V(R) in Lockout: start over, with an Unlock
                self.stats["sync_restart_in_lockout"] += 1
                self.directive(Directive.TERMINATE_AD)
            elif self._unlocking and not clcw.lockout and clcw.report_value != fop.vs:
                # unlocked, but V(R) is not our V(S): start over, with Set V(R)
                self.stats["sync_restart_after_unlock"] += 1
                self.directive(Directive.TERMINATE_AD)
            else:
                return  # the initiation's own CLCW check completes it
        if fop.state is not FopState.INITIAL or fop.suspend_state:
            return
        if clcw.lockout:
            self._unlocking = True
            self.stats["sync_unlock"] += 1
            self.directive(Directive.INITIATE_AD_WITH_UNLOCK)
            return
        self._unlocking = False
        self.stats["sync_set_vr"] += 1
        self.directive(Directive.INITIATE_AD_WITH_SET_VR, clcw.report_value)

    def _do(self, action: Any) -> None:
        if isinstance(action, TransferResponse) and action.response is Response.ACCEPT:
            self._accepted = getattr(action.tag, "query", None)
        if isinstance(action, Transmit) and action.frame.frame_type is TcFrameType.AD:
            seq = action.frame.seq
            if not action.retransmission and self._accepted is not None:
                # FOP-1 accepts an FDU, then transmits it: this N(S) is that packet's
                self._seq_owner[seq] = self._accepted
                self._accepted = None
            owner = self._seq_owner.get(seq)
            self.radio.last_unit_id = None
            super()._do(action)
            unit_id = self.radio.last_unit_id
            if owner is not None and unit_id is not None:
                self._unit_owner[unit_id] = (owner, action.retransmission)
            return
        super()._do(action)

    def _on_event(self, event: LinkEvent) -> None:
        if event.kind == "sent":
            owner = self._unit_owner.pop(event.unit_id, None)
            if owner is not None:
                self.on_frame_sent(owner[0], owner[1], event.t_s)

    @property
    def busy(self) -> bool:
        fop = self.fop
        return bool(self.backlog or fop.outstanding or fop.wait_queue is not None)


_Channel = Cop1Channel  # the name it had


@dataclass(slots=True)
class _Outgoing:
    message: bytes
    target: str | None
    query_id: str | None
    key: tuple[str, str] | None


@dataclass(slots=True)
class _Transfer:
    """One message handed to one satellite's FOP-1: its packets (Ground.queries indices)."""

    key: tuple[str, str] | None
    satellite: str
    query_id: str | None
    indices: list[int] = field(default_factory=list)
    record: HopRecord | None = None  # the uplink hop, from its first CLTU


class MissionControl:
    """The ground segment: queue, routing, one COP-1 channel per satellite, reception.

    Implements :class:`payloads.client.GroundSegment` for the client.

    ``observes_space`` False (the ground daemon): the trace holds only what the
    ground saw (uplink starts, downlink arrivals); :meth:`annotate` then fills the
    timeline from those and from the instants the answer carries."""

    def __init__(self, emu: Site, *, observes_space: bool = True) -> None:
        self.emu = emu
        self.observes_space = observes_space
        self.channels: dict[str, Cop1Channel] = {}
        self.deliver: Callable[[bytes, float, str], None] | None = None
        self.queue: list[_Outgoing] = []
        self.stats: Counter[str] = Counter()
        self._reassemblers: dict[str, Reassembler] = {}
        self._counters: dict[str, SequenceCounter] = {}
        self._transfers: dict[tuple[str, int], _Transfer] = {}
        self._by_query: dict[str, list[_Transfer]] = defaultdict(list)
        self._timer: Any = None
        self._scheduled = False

    def close(self) -> None:
        """Close every COP-1 channel and stop the dispatch timer."""
        for channel in self.channels.values():
            channel.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def add_channel(self, satellite: str, channel: Cop1Channel) -> None:
        self.channels[satellite] = channel
        self._reassemblers[satellite] = Reassembler()
        self._counters[satellite] = SequenceCounter()

    # -- GroundSegment -----------------------------------------------------------------------
    def submit(self, message: bytes, *, target: str | None, query_id: str | None) -> None:
        self.stats["submitted"] += 1
        self.queue.append(_Outgoing(message, target, query_id, Trace.key(message)))
        self._kick()

    def in_view(self, target: str | None) -> bool:
        """Whether a message for ``target`` could leave now: a satellite is in view of
        a station (its pass usable), and ``target`` is it or reachable from it."""
        return self.emu.contacts.uplink_route(target, self.emu.clock.now()) is not None

    def on_ground(self, query_id: str) -> bool:
        if any(item.query_id == query_id for item in self.queue):
            return True
        transfers = self._by_query.get(query_id)
        if not transfers:
            return False
        last = transfers[-1]
        queries = self.channels[last.satellite].queries
        # a packet negatively confirmed (a COP-1 alert purged it) has left for good
        return any(queries[i].acked_t_s is None and not queries[i].failed for i in last.indices)

    def annotate(self, timeline: Timeline) -> None:
        if not self.observes_space:
            self._annotate_from_ground(timeline)
            return
        trace = self.emu.trace
        qkey, akey = ("q", timeline.query_id), ("a", timeline.query_id)
        hops: list[HopRecord] = []
        board = timeline.query_on_board
        sat = sat_node(timeline.satellite)
        into = [
            h
            for h in trace.hops.get(qkey, ())
            if h.t_end is not None and h.dst == sat and (board is None or h.t_end <= board + 1e-6)
        ]
        if into:
            chain = trace.chain(qkey, max(into, key=lambda h: h.t_end), "ground:")
            if chain[0].kind == "uplink":
                timeline.first_uplink = chain[0].t_start
                timeline.query_on_first_sat = chain[0].t_end
            hops += chain
        ups = [h for h in trace.hops.get(qkey, ()) if h.kind == "uplink"]
        timeline.uplink_frames_sent = sum(h.frames for h in ups)
        timeline.uplink_retransmissions = sum(h.retransmissions for h in ups)
        downs = [
            h for h in trace.hops.get(akey, ()) if h.kind == "downlink" and h.t_end is not None
        ]
        if downs:
            first = min(downs, key=lambda h: h.t_end)
            chain = trace.chain(akey, first, sat)
            timeline.first_downlink = first.t_start
            hops += chain
        timeline.answer_copies = trace.copies.get(akey, 0)
        timeline.hops = [Hop(h.kind, h.src, h.dst, h.t_start, h.t_end) for h in hops]

    def _annotate_from_ground(self, timeline: Timeline) -> None:
        """What a ground alone knows: when the copy of the query that reached the
        satellite began to go up (the last uplink begun before it was on board),
        and, when it went straight up to the satellite that answered, that the
        uplink ended when the query was on board. Relay and downlink hops happen
        in other processes and are not in this trace."""
        hops = self.emu.trace.hops.get(("q", timeline.query_id), ())
        ups = [h for h in hops if h.kind == "uplink"]
        timeline.uplink_frames_sent = sum(h.frames for h in ups)
        timeline.uplink_retransmissions = sum(h.retransmissions for h in ups)
        board = timeline.query_on_board
        before = [h for h in ups if board is None or h.t_start <= board + 1e-6]
        if not before:
            return
        up = max(before, key=lambda h: h.t_start)
        timeline.first_uplink = up.t_start
        if board is not None and up.dst == sat_node(timeline.satellite):
            timeline.query_on_first_sat = board
            timeline.hops = [Hop(up.kind, up.src, up.dst, up.t_start, board)]

    # -- test and tool hooks -----------------------------------------------------------------
    def send_raw(self, satellite: str, payload: bytes, apid: int = QUERY_APID) -> None:
        """Uplink any octets as the data of Space Packets on ``apid`` to ``satellite``
        now, whatever they hold (a malformed query, for instance)."""
        self._send_packets(satellite, payload, apid, _Transfer(None, satellite, None), "")

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
        contacts = self.emu.contacts
        now = self.emu.clock.now()
        waiting = []
        for item in self.queue:
            route = contacts.uplink_route(item.target, now)
            if route is None:
                waiting.append(item)
                continue
            self._uplink(route, item)
        self.queue = waiting
        if waiting:
            targets = {item.target for item in waiting}
            times = [contacts.next_uplink_time(target, now) for target in targets]
            soon = [t for t in times if t is not None]
            wake = min(soon) if soon else now + 3600.0
            self._timer = self.emu.clock.call_at(max(wake, now + 1e-3), self._dispatch)

    def _uplink(self, route: Any, item: _Outgoing) -> None:
        sat = route.first
        emu = self.emu
        if route.target == sat:
            payload, apid = item.message, QUERY_APID
        else:
            header = RelayHeader(GROUND_NODE, emu.contacts.nodes[route.target])
            payload, apid = header.wrap(item.message), RELAY_APID
            self.stats["relayed"] += 1
        transfer = _Transfer(item.key, sat, item.query_id)
        if item.query_id is not None:
            self._by_query[item.query_id].append(transfer)
        self.stats["uplinked"] += 1
        self._send_packets(sat, payload, apid, transfer, route.station)

    def _send_packets(
        self, sat: str, payload: bytes, apid: int, transfer: _Transfer, station: str
    ) -> None:
        emu = self.emu
        channel = self.channels[sat]
        now = emu.clock.now()
        packets = segment(payload, apid, self._counters[sat], MAX_PACKET_DATA, PacketType.TC)
        for packet in packets:
            raw = packet.pack()
            if emu.sink is not None:
                emu.sink.unit("space_packet", now, ground_node(station), sat_node(sat), raw)
            index = channel.send(raw)
            transfer.indices.append(index)
            self._transfers[(sat, index)] = transfer
        emu.wake(sat)

    def on_frame_sent(self, sat: str, index: int, retransmission: bool, t_s: float) -> None:
        transfer = self._transfers.get((sat, index))
        if transfer is None:
            return
        if transfer.record is None:
            station = self.channels[sat].radio.model.last_station
            transfer.record = self.emu.trace.start(
                transfer.key, ("up", sat), "uplink", ground_node(station), sat_node(sat), t_s
            )
        if transfer.record is not None:
            transfer.record.frames += 1
            transfer.record.retransmissions += int(retransmission)

    # -- reception ------------------------------------------------------------------------------
    def on_packet(self, sat: str, t_s: float, raw: bytes) -> None:
        try:
            packet = SpacePacket.unpack(raw)
        except DecodeError:
            self.stats["bad_packets"] += 1
            return
        payload = self._reassemblers[sat].push(packet)
        if payload is None:
            return
        if packet.apid != ANSWER_APID:
            self.stats[f"unexpected_apid_{packet.apid:#x}"] += 1
            return
        self.stats["messages_received"] += 1
        self.emu.trace.end(Trace.key(payload), ("down", sat), t_s)
        if self.deliver is not None:
            self.deliver(payload, t_s, sat)
