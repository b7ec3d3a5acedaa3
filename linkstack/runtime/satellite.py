"""A computing satellite: FARM-1 and its TM channel, laser terminals, the relay, the
inference service; and its TM through the passes.

A :class:`SatelliteNode` is built from its links, whatever their far end: the
downlink it transmits TM on and the laser links it transmits AOS CADUs on are
:class:`~channels.link.Link` objects (with the physics in process, or paced to a
UDP port in a daemon); what comes in is handed to :meth:`SatelliteNode.on_uplink`
and :meth:`SatelliteNode.on_isl`. Messages travel with their key
(:data:`payloads.messages.MessageKey`), which the trace follows: the service hands
it over with each answer, and a relay learns it from the hop that brought the
message.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from channels.link import Delivery, Link
from linkstack.ccsds.coding.chains import CaduReceiver, CaduTransmitter
from linkstack.ccsds.cop1.farm import Farm
from linkstack.ccsds.spp import PacketType, Reassembler, SequenceCounter, SpacePacket, segment
from linkstack.errors import DecodeError
from linkstack.runtime.cop1_link import OUTSIDE_FRAMES, Spacecraft
from linkstack.runtime.frames import FrameReceiver, PacketChannel, laser_channel, laser_receiver
from linkstack.runtime.routing import GROUND_NODE, RELAY_APID, RelayHeader
from linkstack.runtime.security import SDLS_EP_APID, FrameGuard
from linkstack.runtime.site import AOS_FRAME_LEN, MAX_PACKET_DATA, Site, ground_node, sat_node
from linkstack.runtime.trace import LinkId
from linkstack.timebase import TimerHandle
from payloads.backends import Backend
from payloads.messages import ANSWER_APID, QUERY_APID, MessageKey
from payloads.service import InferenceService

if TYPE_CHECKING:
    from linkstack.runtime.sdls_management import OnboardManagement

PARK_RETRY_S = 10.0  # a relay with no route looks again this often
NO_PASS_RETRY_S = 3600.0  # no pass within the contact plan's look-ahead: look again this late

PacketListener = Callable[[str, float, bytes], object]  # (ingress, t_s, Space Packet)


class _IslRx:
    """The receiving end of one laser link: CADUs -> [SDLS] -> AOS (or USLP) frames ->
    packets -> messages. ``frame_length``: the frames as built (shorter by SDLS's
    overhead)."""

    def __init__(
        self, protocol: str, peer_scid: int, frame_length: int, guard: FrameGuard | None
    ) -> None:
        self.cadu = CaduReceiver(AOS_FRAME_LEN)
        self.aos: FrameReceiver = laser_receiver(protocol, peer_scid, frame_length)
        self.reassembler = Reassembler()
        self.guard = guard


@dataclass(slots=True)
class _IslTx:
    """The sending end of one laser link: messages -> packets -> AOS (or USLP) frames
    -> [SDLS] -> CADUs."""

    link: Link
    mc: PacketChannel
    guard: FrameGuard | None = None
    cadu: CaduTransmitter = field(default_factory=lambda: CaduTransmitter(AOS_FRAME_LEN))
    counter: SequenceCounter = field(default_factory=SequenceCounter)


@dataclass(slots=True)
class _Parked:
    header: RelayHeader
    message: bytes
    key: MessageKey | None


class SatelliteNode:
    """One satellite (see the module docstring): FARM-1 and the TM channel
    (:class:`~linkstack.runtime.cop1_link.Spacecraft`) on ``downlink``, a laser
    terminal towards each peer of ``isl_out`` and from each of ``isl_in``, a
    store-and-forward relay, and the inference service once :meth:`start_service`."""

    def __init__(
        self,
        site: Site,
        name: str,
        downlink: Link,
        isl_out: Mapping[str, Link],
        isl_in: Iterable[str],
    ) -> None:
        self.site = site
        self.name = name
        self.node = sat_node(name)
        self.number = site.number(name)
        self.scid = site.scid(name)
        link_cfg = replace(site.config.uplink, scid=self.scid)
        guards = site.guards
        guard = None
        if guards is not None:  # SDLS: TC of linkstack's VC checked, TM protected
            guard = guards.spacecraft(
                name,
                self.number,
                link_cfg.tc_max_frame_length,
                link_cfg.tc_segment_header,
                link_cfg.tm_frame_length,
                link_cfg.vcid,
            )
        self.spacecraft = Spacecraft(
            link_cfg, site.clock, downlink, self.on_uplink_packet, guard=guard
        )
        # SDLS management (355.1): the commands that come up on SDLS_EP_APID
        self.sdls_ep: OnboardManagement | None = None
        if guard is not None:
            from linkstack.runtime.sdls_management import (  # noqa: PLC0415 - SDLS on only
                OnboardManagement,
                uplink_gvcid,
            )

            self.sdls_ep = OnboardManagement.build(
                guard, link_cfg.sdls, uplink_gvcid(link_cfg), self._send_down_ep
            )
        self.service: InferenceService | None = None
        # laser frames as built: shorter by SDLS's overhead, which the guard adds
        aos_len = AOS_FRAME_LEN - site.config.uplink.sdls.aos_overhead
        protocol = link_cfg.protocol
        self._isl_tx = {
            peer: _IslTx(
                link,
                laser_channel(protocol, self.scid, aos_len),
                guards.laser_out(
                    name, peer, guards.laser_link(self.number, site.number(peer)), AOS_FRAME_LEN
                )
                if guards is not None
                else None,
            )
            for peer, link in isl_out.items()
        }
        self._isl_rx = {
            peer: _IslRx(
                protocol,
                site.scid(peer),
                aos_len,
                guards.laser_in(
                    peer, name, guards.laser_link(site.number(peer), self.number), AOS_FRAME_LEN
                )
                if guards is not None
                else None,
            )
            for peer in isl_in
        }
        self._up_reassembler = Reassembler()
        self._tm_counter = SequenceCounter()
        self._tm_pending: list[tuple[MessageKey | None, bytes]] = []
        self.tm_has_data = False
        self.transmitting = False  # in a pass, sending TM (transmit_passes)
        self._traffic = False  # uplink in or TM queued since take_traffic() last asked
        self._parked: deque[_Parked] = deque()
        self._park_timer: TimerHandle | None = None
        self.packet_listeners: list[PacketListener] = []  # each Space Packet that arrives
        self.stats: Counter[str] = Counter()

    @property
    def isl_peers(self) -> tuple[str, ...]:
        return tuple(self._isl_tx)

    @property
    def parked(self) -> int:
        """Messages waiting for a route."""
        return len(self._parked)

    def start_service(self, backend: Backend) -> InferenceService:
        """Run the inference service on ``backend`` (loaded) from now on."""
        cfg = self.site.config.service
        self.service = InferenceService(
            backend,
            self.site.clock,
            self.send_to_ground,
            satellite=self.name,
            config=cfg,
            power=self.site.power(self.name),  # None without [power]
        )
        self.service.start()
        return self.service

    async def restart(self) -> None:
        """The satellite's software starts over (a reboot), as a killed satellite
        daemon does. Lost: FARM-1's state (V(R) back to 0), messages half reassembled,
        those parked for a laser link, TM not yet sent, the service's queries (running
        or queued) and its answers not yet acknowledged; the model, in storage, stays.
        Its TM starts again at once (in a pass, the ground reads the new CLCW)."""
        backend = self.service.backend if self.service is not None else None
        await self.close()
        sc = self.spacecraft
        sc.farm = Farm(sc.config.vcid, sc.config.farm_window)
        sc.flight_farms = {v: Farm(v, sc.config.farm_window) for v in sc.flight_farms}
        sc.mc = sc.config.downlink_channel()  # TM not yet sent
        self._tm_pending = []
        self._up_reassembler = Reassembler()
        for rx in self._isl_rx.values():
            rx.reassembler = Reassembler()
        self.stats["lost_parked_in_restart"] += len(self._parked)
        self._parked.clear()
        self.stats["restarts"] += 1
        if backend is not None:
            self.start_service(backend)
        # its TM starts with the boot: in a pass, the ground has the new CLCW at once
        self.tm_has_data = True
        self.site.wake(self.name)

    async def close(self) -> None:
        """Stop the onboard service and the retry of parked relays."""
        if self.service is not None:
            await self.service.close()
        if self._park_timer is not None:
            self._park_timer.cancel()
            self._park_timer = None

    # -- arrivals -----------------------------------------------------------------------------
    def on_uplink(self, delivery: Delivery) -> None:
        """A CLTU from the ground (FARM-1, TC reassembly, then :meth:`on_uplink_packet`)."""
        self.spacecraft.on_uplink(delivery)
        self._traffic = True
        if self.transmitting:  # an idle pass loop: the new CLCW goes down now, then often
            self.site.wake(self.name)

    def on_uplink_packet(self, t_s: float, raw: bytes) -> None:
        """A Space Packet delivered by FARM-1 and TC reassembly (in order, once)."""
        self._on_packet("up", self._up_reassembler, t_s, raw)

    def on_isl(self, peer: str, delivery: Delivery) -> None:
        """An AOS CADU from ``peer`` over the laser link."""
        rx = self._isl_rx[peer]
        decoded = rx.cadu.receive_cadu(delivery.unit)
        if decoded is None:
            self.stats["isl_cadus_lost"] += 1
            return
        raw = decoded.frame
        if rx.guard is not None:
            checked = rx.guard.check(raw, plain_fecf=False)
            if checked is None:
                return  # refused by SDLS: counted and alarmed there
            raw = checked
        frame = rx.aos.receive(raw, fecf_checked=rx.guard is not None)
        if frame is None:
            return
        t_s = self.site.clock.now()
        for raw in frame.packets:
            self._on_packet(peer, rx.reassembler, t_s, raw)

    def _on_packet(self, ingress: str, reassembler: Reassembler, t_s: float, raw: bytes) -> None:
        for listener in self.packet_listeners:
            listener(ingress, t_s, raw)
        try:
            packet = SpacePacket.unpack(raw)
        except DecodeError:
            self.stats["bad_packets"] += 1
            return
        payload = reassembler.push(packet)
        if payload is not None:
            self._on_payload(ingress, packet.apid, payload, t_s)

    def _link_id(self, ingress: str) -> LinkId:
        return ("up", self.name) if ingress == "up" else ("isl", ingress, self.name)

    def _on_payload(self, ingress: str, apid: int, payload: bytes, t_s: float) -> None:
        trace = self.site.trace
        if apid == QUERY_APID:  # bare: for this satellite, from the ground
            trace.end(self._link_id(ingress), payload, t_s)
            self._to_service(payload, t_s)
        elif apid == RELAY_APID:
            try:
                header, message = RelayHeader.unwrap(payload)
            except DecodeError:
                self.stats["bad_envelopes"] += 1
                return
            hop = trace.end(self._link_id(ingress), message, t_s)
            if header.dst == self.number:
                self._to_service(message, t_s)
            elif header.hop_limit <= 1:
                self.stats["hop_limit_reached"] += 1
            else:
                self.stats["relayed"] += 1
                onward = RelayHeader(header.src, header.dst, header.hop_limit - 1)
                self._forward(onward, message, hop.key if hop is not None else None)
        elif apid == SDLS_EP_APID and ingress == "up" and self.sdls_ep is not None:
            self.sdls_ep.take_payload(payload)  # carried out or refused, and answered
        elif self.packet_listeners:  # someone else's APID: the listeners had it (a bridge)
            self.stats["other_apid_payloads"] += 1
        else:
            self.stats[f"unexpected_apid_{apid:#x}"] += 1

    def _to_service(self, message: bytes, t_s: float) -> None:
        if self.service is None:
            self.stats["no_service"] += 1
            return
        self.service.on_message(message, t_s)

    # -- departures ---------------------------------------------------------------------------
    def send_to_ground(self, message: bytes, key: MessageKey | None) -> float | None:
        """The service's downlink: queue a message (whose key is ``key``) for the ground;
        when it can leave (:data:`payloads.service.SendFn`)."""
        if key is not None and key[0] == "a":
            self.site.trace.count_copy(key)
        return self._forward(RelayHeader(self.number, GROUND_NODE), message, key)

    def _forward(self, header: RelayHeader, message: bytes, key: MessageKey | None) -> float | None:
        contacts = self.site.contacts
        now = self.site.clock.now()
        if header.dst == GROUND_NODE:
            route = contacts.downlink_route(self.name, now)
            if route is None:
                self._park(header, message, key)
                return None
            if route.next_hop is None:
                self._downlink(message, key)
            else:
                self._send_isl(route.next_hop, header.wrap(message), RELAY_APID, message, key)
                self.stats["sent_over_isl"] += 1
            return route.contact_t_s
        dst = contacts.names.get(header.dst)
        if dst is None:
            self.stats["unknown_destination"] += 1
            return None
        hop = contacts.next_hop(self.name, dst, now)
        if hop is None:
            self._park(header, message, key)
            return None
        if hop == dst:
            self._send_isl(hop, message, QUERY_APID, message, key)
        else:
            self._send_isl(hop, header.wrap(message), RELAY_APID, message, key)
        return now

    def _park(self, header: RelayHeader, message: bytes, key: MessageKey | None) -> None:
        self.stats["parked"] += 1
        self._parked.append(_Parked(header, message, key))
        if self._park_timer is None:
            clock = self.site.clock
            self._park_timer = clock.call_at(clock.now() + PARK_RETRY_S, self._unpark)

    def _unpark(self) -> None:
        self._park_timer = None
        parked, self._parked = self._parked, deque()
        for p in parked:
            self._forward(p.header, p.message, p.key)

    def _send_isl(
        self, peer: str, payload: bytes, apid: int, message: bytes, key: MessageKey | None
    ) -> None:
        """Send ``payload`` (a relay envelope, or ``message`` bare on its last hop) to
        ``peer``."""
        site = self.site
        tx = self._isl_tx[peer]
        now = site.clock.now()
        for packet in segment(payload, apid, tx.counter, MAX_PACKET_DATA, PacketType.TM):
            raw = packet.pack()
            if site.sink is not None:
                site.sink.unit("space_packet", now, self.node, sat_node(peer), raw)
            tx.mc.push(0, raw)
        tx.mc.flush()
        frames = tx.mc.drain()
        if tx.guard is not None:
            frames = [tx.guard.protect(frame) for frame in frames]
        for cadu in tx.cadu.cadus(frames):
            tx.link.send(cadu)
        link_id = ("isl", self.name, peer)
        site.trace.start(key, link_id, "isl", self.node, sat_node(peer), now, message)

    def _downlink(self, message: bytes, key: MessageKey | None) -> None:
        site = self.site
        now = site.clock.now()
        station = site.switches[self.name].station_at(now) or ""
        for packet in segment(message, ANSWER_APID, self._tm_counter, MAX_PACKET_DATA):
            raw = packet.pack()
            if site.sink is not None:
                site.sink.unit("space_packet", now, self.node, ground_node(station), raw)
            self.spacecraft.send_tm(raw)
        self._tm_pending.append((key, message))
        self.tm_has_data = True
        self.stats["queued_for_downlink"] += 1
        if self.transmitting:  # the pass is on: the frames go now, not at the next CLCW
            self.emit_tm()
        else:
            site.wake(self.name)

    # -- what flight software of the user's sends down (the radio, daemon/flight_radio.py) ---
    def send_outside_frame(self, frame: bytes, keep_ocf: bool = False) -> None:
        """A TM frame of flight software's own virtual channel: multiplexed into this
        satellite's master channel at the next emission (now, in a pass)."""
        self.spacecraft.send_frame(frame, keep_ocf)
        self._tm_ready()

    def send_outside_packet(self, raw: bytes) -> bool:
        """A Space Packet of flight software's, framed with this satellite's own TM;
        False (and counted) when the TM waiting already fills the radio's buffer."""
        if self.spacecraft.mc.frames_ready >= OUTSIDE_FRAMES:
            self.stats["outside_packets_overflow"] += 1
            return False
        self.spacecraft.send_tm(raw)
        self.stats["outside_packets_down"] += 1
        self._tm_ready()
        return True

    def _send_down_ep(self, raw: bytes) -> None:
        """An SDLS management reply (a TM packet), in this satellite's TM."""
        self.spacecraft.send_tm(raw)
        self._tm_ready()

    def take_traffic(self) -> bool:
        """Whether a CLTU came up or TM was queued since the last call, or TM waits, or
        the service holds queries or unacknowledged answers, or messages are parked:
        what keeps a daemon's pass loop at its busy pace (the ground sees a break in
        its CLCW stream sooner)."""
        service = self.service
        held = service is not None and bool(service.queued or service.unacknowledged)
        had = self._traffic or self.tm_has_data or held or bool(self._parked)
        self._traffic = False
        return had

    def _tm_ready(self) -> None:
        self.tm_has_data = True
        self._traffic = True
        if self.transmitting:
            self.emit_tm()
        else:
            self.site.wake(self.name)

    def emit_tm(self) -> int:
        """Send the TM frames ready now (or one idle frame), each with the CLCW."""
        site = self.site
        now = site.clock.now()
        pending, self._tm_pending = self._tm_pending, []
        self.tm_has_data = False
        frames = self.spacecraft.emit_tm()
        if pending:
            station = ground_node(site.switches[self.name].station_at(now) or "")
            link_id = ("down", self.name)
            for key, message in pending:
                site.trace.start(key, link_id, "downlink", self.node, station, now, message)
        return frames


async def transmit_passes(
    site: Site,
    node: SatelliteNode,
    busy: Callable[[], bool],
    interval_s: float,
    linger_s: float,
    idle_interval_s: float | None = None,
) -> None:
    """A satellite's TM through time: in each usable pass, while ``busy()`` (and
    ``linger_s`` after), a TM frame with the CLCW every ``interval_s``; between,
    wait for the site's wake-up of this satellite (traffic) or for the next pass.

    With ``idle_interval_s`` (the daemons, whose satellites cannot see the ground's
    FOP-1) the TM goes on through the whole pass: while not busy, a frame every
    ``idle_interval_s`` or at once on a wake-up, so that the ground always has a fresh
    CLCW, without a frame every ``interval_s`` from each of the hundreds of idle
    satellites in view of a large constellation."""
    clock = site.clock
    contacts = site.contacts
    name = node.name
    wake = site.wake_event(name)
    while True:
        if idle_interval_s is None and not busy():
            wake.clear()
            await wake.wait()
            continue
        now = clock.now()
        start_t_s = contacts.next_usable(name, now, downlink=True)
        if start_t_s is None:
            await clock.sleep_until(now + NO_PASS_RETRY_S)
            continue
        if start_t_s > now:
            await clock.sleep_until(start_t_s)
            continue
        # a daemon's satellite starts a pass at its idle pace: its first frame tells the
        # ground it is there, and the ground's first CLTU makes it busy (hundreds of
        # satellites in view of a daemon that starts would otherwise all go busy at once)
        last_busy_t_s = now if idle_interval_s is None else -math.inf
        node.transmitting = True
        try:
            while contacts.in_view(name, clock.now()):
                node.emit_tm()
                now = clock.now()
                if busy():
                    last_busy_t_s = now
                elif now - last_busy_t_s >= linger_s:
                    if idle_interval_s is None:
                        break
                    await _woken_or_at(site, wake, now + idle_interval_s)
                    continue
                await clock.sleep_until(now + interval_s)
        finally:
            node.transmitting = False


async def _woken_or_at(site: Site, wake: asyncio.Event, t_s: float) -> None:
    """Until ``wake`` is set or the clock reaches ``t_s``, whichever is first."""
    wake.clear()
    timer = site.clock.call_at(t_s, wake.set)
    try:
        await wake.wait()
    finally:
        timer.cancel()
