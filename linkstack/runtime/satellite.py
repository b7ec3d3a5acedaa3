"""A computing satellite: FARM-1 and its TM channel, laser terminals, the relay, the
inference service; and its TM through the passes."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, NamedTuple

from channels.link import Delivery
from linkstack.ccsds.aos import AosConfig, AosMasterChannel, AosReceiver
from linkstack.ccsds.coding.chains import CaduReceiver, CaduTransmitter
from linkstack.ccsds.spp import PacketType, Reassembler, SequenceCounter, SpacePacket, segment
from linkstack.errors import DecodeError
from linkstack.runtime.cop1_link import Spacecraft
from linkstack.runtime.radio import RadioLink
from linkstack.runtime.routing import GROUND_NODE, RELAY_APID, RelayHeader
from linkstack.runtime.site import AOS_FRAME_LEN, MAX_PACKET_DATA, Site, ground_node, sat_node
from linkstack.runtime.trace import Trace
from payloads.messages import ANSWER_APID, QUERY_APID
from payloads.service import InferenceService

PARK_RETRY_S = 10.0  # a relay with no route looks again this often


# -- the satellites --------------------------------------------------------------------------


class _IslRx:
    """The receiving end of one laser link: CADUs -> AOS frames -> packets -> messages."""

    def __init__(self, peer_scid: int) -> None:
        self.cadu = CaduReceiver(AOS_FRAME_LEN)
        self.aos = AosReceiver(AosConfig(frame_length=AOS_FRAME_LEN, scid=peer_scid))
        self.reassembler = Reassembler()


class SatelliteNode:
    """One satellite: FARM-1 and the TM channel (``uplink.Spacecraft``), its laser
    terminals, a store-and-forward relay, and the inference service if it computes."""

    def __init__(self, emu: Site, name: str, number: int, scid: int) -> None:
        self.emu = emu
        self.name = name
        self.node = sat_node(name)
        self.number = number
        self.scid = scid
        self.spacecraft: Spacecraft | None = None
        self.service: InferenceService | None = None
        self.isl_links: dict[str, RadioLink] = {}
        self._isl_tx: dict[str, tuple[AosMasterChannel, CaduTransmitter, SequenceCounter]] = {}
        self._isl_rx: dict[str, _IslRx] = {}
        self._up_reassembler = Reassembler()
        self._tm_counter = SequenceCounter()
        self._tm_pending: list[tuple[str, str] | None] = []
        self.tm_has_data = False
        self.transmitting = False  # in a pass, sending TM (Emulation._passes)
        self._parked: deque[tuple[RelayHeader, bytes]] = deque()
        self._park_timer: Any = None
        self.stats: Counter[str] = Counter()

    # -- wiring ----------------------------------------------------------------------------
    def add_isl(self, peer: SatelliteNode | Peer, link: RadioLink) -> None:
        self.isl_links[peer.name] = link
        mc = AosMasterChannel(AosConfig(frame_length=AOS_FRAME_LEN, scid=self.scid))
        self._isl_tx[peer.name] = (mc, CaduTransmitter(AOS_FRAME_LEN), SequenceCounter())

    def add_isl_rx(self, peer: SatelliteNode | Peer) -> None:
        self._isl_rx[peer.name] = _IslRx(peer.scid)

    # -- arrivals -----------------------------------------------------------------------------
    def on_uplink_packet(self, t_s: float, raw: bytes) -> None:
        """A Space Packet delivered by FARM-1 and TC reassembly (in order, once)."""
        self._on_packet("up", self._up_reassembler, t_s, raw)

    def on_isl(self, peer: str, delivery: Delivery) -> None:
        rx = self._isl_rx[peer]
        decoded = rx.cadu.receive_cadu(delivery.unit)
        if decoded is None:
            self.stats["isl_cadus_lost"] += 1
            return
        frame = rx.aos.receive(decoded.frame)
        if frame is None:
            return
        t_s = self.emu.clock.now()
        for raw in frame.packets:
            self._on_packet(peer, rx.reassembler, t_s, raw)

    def _on_packet(self, ingress: str, reassembler: Reassembler, t_s: float, raw: bytes) -> None:
        try:
            packet = SpacePacket.unpack(raw)
        except DecodeError:
            self.stats["bad_packets"] += 1
            return
        payload = reassembler.push(packet)
        if payload is not None:
            self._on_payload(ingress, packet.apid, payload, t_s)

    def _link_id(self, ingress: str) -> tuple:
        return ("up", self.name) if ingress == "up" else ("isl", ingress, self.name)

    def _on_payload(self, ingress: str, apid: int, payload: bytes, t_s: float) -> None:
        trace = self.emu.trace
        if apid == QUERY_APID:  # bare: for this satellite, from the ground
            trace.end(Trace.key(payload), self._link_id(ingress), t_s)
            self._to_service(payload, t_s)
        elif apid == RELAY_APID:
            try:
                header, message = RelayHeader.unwrap(payload)
            except DecodeError:
                self.stats["bad_envelopes"] += 1
                return
            trace.end(Trace.key(message), self._link_id(ingress), t_s)
            if header.dst == self.number:
                self._to_service(message, t_s)
            elif header.hop_limit <= 1:
                self.stats["hop_limit_reached"] += 1
            else:
                self.stats["relayed"] += 1
                self._forward(RelayHeader(header.src, header.dst, header.hop_limit - 1), message)
        else:
            self.stats[f"unexpected_apid_{apid:#x}"] += 1

    def _to_service(self, message: bytes, t_s: float) -> None:
        if self.service is None:
            self.stats["no_service"] += 1
            return
        self.service.on_message(message, t_s)

    # -- departures ---------------------------------------------------------------------------
    def send_to_ground(self, message: bytes) -> float | None:
        """The service's downlink: queue a message for the ground; when it can leave."""
        key = Trace.key(message)
        if key is not None and key[0] == "a":
            self.emu.trace.copies[key] += 1
        return self._forward(RelayHeader(self.number, GROUND_NODE), message)

    def _forward(self, header: RelayHeader, message: bytes) -> float | None:
        contacts = self.emu.contacts
        now = self.emu.clock.now()
        if header.dst == GROUND_NODE:
            route = contacts.downlink_route(self.name, now)
            if route is None:
                self._park(header, message)
                return None
            if route.next_hop is None:
                self._downlink(message)
            else:
                self._send_isl(route.next_hop, header.wrap(message), key_message=message)
                self.stats["sent_over_isl"] += 1
            return route.contact_t_s
        dst = contacts.names.get(header.dst)
        if dst is None:
            self.stats["unknown_destination"] += 1
            return None
        hop = contacts.next_hop(self.name, dst, now)
        if hop is None:
            self._park(header, message)
            return None
        if hop == dst:
            self._send_isl(hop, message, QUERY_APID, key_message=message)
        else:
            self._send_isl(hop, header.wrap(message), key_message=message)
        return now

    def _park(self, header: RelayHeader, message: bytes) -> None:
        self.stats["parked"] += 1
        self._parked.append((header, message))
        if self._park_timer is None:
            clock = self.emu.clock
            self._park_timer = clock.call_at(clock.now() + PARK_RETRY_S, self._unpark)

    async def close(self) -> None:
        """Stop the onboard service and the retry of parked relays."""
        if self.service is not None:
            await self.service.close()
        if self._park_timer is not None:
            self._park_timer.cancel()
            self._park_timer = None

    def _unpark(self) -> None:
        self._park_timer = None
        parked, self._parked = self._parked, deque()
        for header, message in parked:
            self._forward(header, message)

    def _send_isl(
        self,
        peer: str,
        payload: bytes,
        apid: int = RELAY_APID,
        *,
        key_message: bytes,
    ) -> None:
        """Send ``payload`` (a relay envelope, or a bare message on its last hop) to
        ``peer``; ``key_message`` is the message inside, for the trace."""
        emu = self.emu
        mc, cadu_tx, counter = self._isl_tx[peer]
        now = emu.clock.now()
        for packet in segment(payload, apid, counter, MAX_PACKET_DATA, PacketType.TM):
            raw = packet.pack()
            if emu.sink is not None:
                emu.sink.unit("space_packet", now, self.node, sat_node(peer), raw)
            mc.push(0, raw)
        mc.flush()
        link = self.isl_links[peer]
        for cadu in cadu_tx.cadus(mc.drain()):
            link.send(cadu)
        emu.trace.start(
            Trace.key(key_message), ("isl", self.name, peer), "isl", self.node, sat_node(peer), now
        )

    def _downlink(self, message: bytes) -> None:
        emu = self.emu
        assert self.spacecraft is not None
        now = emu.clock.now()
        station = emu.switches[self.name].station_at(now) or ""
        for packet in segment(message, ANSWER_APID, self._tm_counter, MAX_PACKET_DATA):
            raw = packet.pack()
            if emu.sink is not None:
                emu.sink.unit("space_packet", now, self.node, ground_node(station), raw)
            self.spacecraft.send_tm(raw)
        self._tm_pending.append(Trace.key(message))
        self.tm_has_data = True
        self.stats["queued_for_downlink"] += 1
        if self.transmitting:  # the pass is on: the frames go now, not at the next CLCW
            self.emit_tm()
        else:
            emu.wake(self.name)

    def emit_tm(self) -> int:
        """Send the TM frames ready now (or one idle frame), each with the CLCW."""
        assert self.spacecraft is not None
        emu = self.emu
        now = emu.clock.now()
        pending, self._tm_pending = self._tm_pending, []
        self.tm_has_data = False
        frames = self.spacecraft.emit_tm()
        if pending:
            station = ground_node(emu.switches[self.name].station_at(now) or "")
            for key in pending:
                emu.trace.start(key, ("down", self.name), "downlink", self.node, station, now)
        return frames


# -- pieces shared with the daemons -----------------------------------------------------------


async def transmit_passes(
    site: Site,
    node: SatelliteNode,
    busy: Callable[[], bool],
    wake: asyncio.Event,
    interval_s: float,
    linger_s: float,
) -> None:
    """A satellite's TM through time: in each usable pass, while ``busy()`` (and
    ``linger_s`` after), a TM frame with the CLCW every ``interval_s``; between,
    wait for ``wake`` (set when traffic appears) or for the next pass."""
    clock = site.clock
    contacts = site.contacts
    name = node.name
    while True:
        if not busy():
            wake.clear()
            await wake.wait()
            continue
        now = clock.now()
        start = contacts.next_usable(name, now, downlink=True)
        if start is None:
            await clock.sleep_until(now + 3600.0)
            continue
        if start > now:
            await clock.sleep_until(start)
            continue
        last_busy = now
        node.transmitting = True
        try:
            while contacts.in_view(name, clock.now()):
                node.emit_tm()
                now = clock.now()
                if busy():
                    last_busy = now
                elif now - last_busy >= linger_s:
                    break
                await clock.sleep_until(now + interval_s)
        finally:
            node.transmitting = False


class Peer(NamedTuple):
    """A satellite of another process, as a laser-link neighbour knows it."""

    name: str
    scid: int
