"""The runtime of a scenario: a mission control, computing satellites, and the links between.

::

    client (payloads.client) --submit--> MissionControl: ground queue, routing,
        one FOP-1 per satellite (COP-1 virtual channel) -- CLTUs --> uplink Link
        (S-band, the station that tracks the satellite now) --> SatelliteNode:
        FARM-1, TC reassembly, Space Packets
            -> its InferenceService (payloads.service), if the query is for it
            -> or, in a relay envelope, AOS frames -> CADUs (RS) -> laser Link
               -> the next SatelliteNode on the shortest path -> ...
        answers: InferenceService -> over laser links to the satellite that can
        reach the ground first -> TM frames (with the CLCW) -> CADUs (RS) ->
        downlink Link (X-band) -> MissionControl -> client (ack back up the same way)

Everything here is glue: the protocol work is done by the sans-I/O codecs and state
machines (:mod:`linkstack.ccsds.spp`, :mod:`linkstack.ccsds.tc`, :mod:`linkstack.ccsds.tm`,
:mod:`linkstack.ccsds.aos`, :mod:`linkstack.ccsds.coding.chains`, :mod:`linkstack.ccsds.cop1.fop`,
:mod:`linkstack.ccsds.cop1.farm` through :mod:`linkstack.runtime.cop1_link`'s ``Ground`` and
``Spacecraft``) and by :mod:`linkstack.runtime.routing`; the physics by :mod:`channels`.

How the pieces are modelled:

- **Mission control and stations.** One mission control holds one COP-1 virtual
  channel per satellite: one FOP-1 (``uplink.Ground``) on the ground and one
  FARM-1 (``uplink.Spacecraft``) on board, for the whole run. The stations are its
  RF front ends: each satellite's uplink and downlink are one :class:`Link` each,
  whose model (:class:`SwitchedRfModel`) is the RF link of the station that tracks
  the satellite at the emission time (it keeps a station until its pass ends, then
  takes the visible station whose pass lasts longest). A handover is therefore
  transparent to COP-1: frames in flight and the Sent Queue carry on, the new
  station's receivers acquire, and a frame lost meanwhile is retransmitted. Out of
  contact, FOP-1's T1 is held (``uplink.Ground``), so nothing is given up.
  A station has a transmitter for every satellite it sees (no antenna contention).
- **Passes are scheduled for traffic.** A satellite transmits TM (each frame
  carries FARM-1's CLCW) every ``clcw_interval_s`` while it is in view of a station
  and there is traffic: frames FOP-1 has not had acknowledged, messages waiting to
  go down, and ``linger_s`` after that. Idle frames outside that are modelled, not
  generated (DESIGN.md, principle 3): a 24-hour run costs what its traffic costs.
- **Routing** (:mod:`linkstack.runtime.routing`): queries go up to the target if it can be
  reached, otherwise to the satellite in view nearest to it over laser links,
  which relays; with no satellite in view they wait in the ground queue. Answers
  go to the satellite that reaches the ground first (earliest arrival) and wait
  there for the pass. Relays store and forward whole messages (reassembled from
  their Space Packets, re-segmented on the next link); a message travels in a
  relay envelope on ``RELAY_APID`` except over its last hop.
- **ARQ.** The uplink is COP-1 (go-back-N, exactly once, in order). Laser links
  and the TM downlink have none: the service repeats each answer until the
  ground's Ack reaches it, and the client keeps the first copy; a query lost on a
  laser link is re-sent by the client after its retry time.
- **Measurement.** A :class:`Trace` records each hop of each query and answer (the
  first CLTU, AOS CADU or TM frame that carries it, and the instant it is
  complete at the far end); :meth:`MissionControl.annotate` reads the hops of the
  copy that arrived into the query's :class:`linkstack.runtime.report.Timeline`.

Capture: give :class:`Emulation` a :class:`CaptureSink`; every unit is reported
once, on the sender's side, when the link starts to emit it (CLTUs and their TC
frames, TM and AOS CADUs and their frames), and every Space Packet when it is
handed to the framing layer. Without a sink nothing is kept.

Split across processes (:mod:`linkstack.daemon`): the nodes do not need the
:class:`Emulation`, only a :class:`Site` (the clock, the contact state, the trace,
the capture sink, the station switches and a ``wake``), so a daemon builds
:class:`MissionControl` or :class:`SatelliteNode` on a site of its own and gives
them links whose far end is a UDP socket; the physics (:func:`rf_models`,
:func:`laser_model`) then runs in the channel daemon. There the ground resynchronises
COP-1 from the first CLCW (:class:`Cop1Channel` with ``sync``), since the FARM-1 on
board outlives a restart of the ground, and a satellite transmits TM all through
every pass (:func:`transmit_passes` with a ``busy`` that is always true), since it
cannot see the ground's FOP-1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

from channels.errors import IndependentErrors
from channels.link import Conditions, Delivery, Link, LinkEvent
from channels.models import LaserLinkModel, RfLinkModel
from channels.optical import OPTICAL_ISL_100G, OpticalTerminal
from channels.orbit import IslView, StationView
from channels.rf import S_BAND_UPLINK, X_BAND_DOWNLINK, RfLinkConfig
from channels.scenarios import Scenario, scenario_by_name
from linkstack.ccsds.aos import AosConfig, AosMasterChannel, AosReceiver
from linkstack.ccsds.coding.chains import CaduCoding, CaduReceiver, CaduTransmitter, CltuReceiver
from linkstack.ccsds.coding.randomizer import tm_derandomize
from linkstack.ccsds.cop1.fop import Directive, FopState, Response, TransferResponse, Transmit
from linkstack.ccsds.spp import PacketType, Reassembler, SequenceCounter, SpacePacket, segment
from linkstack.ccsds.tc import TcFrameType
from linkstack.errors import ConfigError, DecodeError
from linkstack.runtime.cop1_link import Ground, Spacecraft, UplinkConfig
from linkstack.runtime.report import Hop, Timeline
from linkstack.runtime.routing import GROUND_NODE, RELAY_APID, ContactState, RelayHeader
from payloads.backends import Backend, make_backend
from payloads.client import Client, ClientConfig
from payloads.messages import ANSWER_APID, QUERY_APID, Answer, ErrorMessage, Query, decode
from payloads.service import InferenceService, ServiceConfig

log = logging.getLogger(__name__)

LAYERS = ("cltu", "tm_cadu", "aos_cadu", "tc_frame", "tm_frame", "aos_frame", "space_packet")
MAX_PACKET_DATA = 4096  # octets of message per Space Packet (longer messages are segmented)
AOS_FRAME_LEN = 1115
PARK_RETRY_S = 10.0  # a relay with no route looks again this often


class CaptureSink(Protocol):
    """Where units go to be captured (``linkstack.capture.pcap.PcapCapture`` is one).

    ``layer`` is one of :data:`LAYERS`; ``src`` and ``dst`` are node names
    (``"ground:Svalbard"``, ``"sat:CS-01"``); ``t_s`` is emulated seconds since the
    scenario epoch."""

    def unit(self, layer: str, t_s: float, src: str, dst: str, data: bytes) -> None: ...

    def close(self) -> None: ...


class Site(Protocol):
    """What the nodes of one process share (an :class:`Emulation` is one; each daemon
    builds its own): ``clock``, ``contacts`` (:class:`ContactState`), ``trace``
    (:class:`Trace`), ``sink`` (a :class:`CaptureSink` or None), ``switches`` (the
    :class:`StationSwitch` of each satellite) and ``wake(satellite)``, which tells a
    satellite's pass loop that there is traffic."""

    clock: Any
    contacts: ContactState
    trace: Trace
    sink: CaptureSink | None
    switches: dict[str, StationSwitch]

    def wake(self, satellite: str) -> None: ...


def sat_node(name: str) -> str:
    return f"sat:{name}"


def ground_node(station: str) -> str:
    return f"ground:{station}"


def rf_ends(model: Any, satellite: str, *, uplink: bool) -> Callable[[], tuple[str, str]]:
    """The capture's (source, destination) of a unit on a satellite's RF link: the
    station is the one the link's model last emitted through (``last_station``)."""

    def ends() -> tuple[str, str]:
        ground, sat = ground_node(model.last_station), sat_node(satellite)
        return (ground, sat) if uplink else (sat, ground)

    return ends


# -- links that know their station, and report what they emit -----------------------------


class StationSwitch:
    """Which station tracks one satellite at a time; shared by its uplink and downlink."""

    def __init__(self, contacts: ContactState, satellite: str) -> None:
        self.contacts = contacts
        self.satellite = satellite
        self._current: Any = None

    def station_at(self, t_s: float) -> str | None:
        cur = self._current
        if cur is not None and cur.aos <= t_s < cur.los:
            return cur.station
        passes = self.contacts.passes(self.satellite, t_s)
        if not passes:
            return None
        self._current = max(passes, key=lambda p: p.los)
        return self._current.station


class SwitchedRfModel:
    """One RF direction of a satellite: the link model of the station tracking it now.

    ``loss`` (a probability per unit) and ``ber_floor`` inject extra frame losses
    and bit errors on top of the link budget (tests, what-if runs)."""

    def __init__(
        self,
        switch: StationSwitch,
        models: dict[str, RfLinkModel],
        rate_bps: float,
        *,
        loss: float = 0.0,
        ber_floor: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.switch = switch
        self.models = models
        self.rate_bps = rate_bps
        self.loss = loss
        self.ber_floor = ber_floor
        self._rng = random.Random(seed)
        self.last_station = ""

    def conditions(self, t_s: float) -> Conditions:
        station = self.switch.station_at(t_s)
        if station is None:
            self.last_station = ""
            return Conditions(False, self.rate_bps, 0.0, 0.0, "no_contact")
        self.last_station = station
        cond = self.models[station].conditions(t_s)
        if cond.up and self.loss and self._rng.random() < self.loss:
            return replace(cond, up=False, reason="injected_loss")
        if cond.up and cond.ber < self.ber_floor:
            return replace(cond, ber=self.ber_floor)
        return cond


class RadioLink(Link):
    """A :class:`Link` that remembers the id of the unit it was last handed and, with
    a capture sink, reports each unit (and the frame inside it) when it is emitted."""

    def __init__(
        self,
        name: str,
        clock: Any,
        model: Any,
        errors: Any = None,
        on_delivery: Callable[[Delivery], object] | None = None,
        *,
        sink: CaptureSink | None = None,
        layers: tuple[str, str] = ("", ""),
        ends: Callable[[], tuple[str, str]] | None = None,
        frame_of: Callable[[bytes], bytes | None] | None = None,
    ) -> None:
        super().__init__(name, clock, model, errors, on_delivery=on_delivery)
        self.last_unit_id: int | None = None
        self.sink = sink
        self.layers = layers
        self.ends = ends
        self.frame_of = frame_of
        self._held: dict[int, bytes] = {}
        if sink is not None:
            self.add_listener(self._capture)

    def send(self, unit: bytes) -> int | None:
        unit_id = super().send(unit)
        self.last_unit_id = unit_id
        if self.sink is not None and unit_id is not None:
            self._held[unit_id] = bytes(unit)
        return unit_id

    def _capture(self, event: LinkEvent) -> None:
        if event.kind != "sent":
            return
        unit = self._held.pop(event.unit_id, None)
        if unit is None or self.sink is None:
            return
        src, dst = self.ends() if self.ends is not None else ("", "")
        unit_layer, frame_layer = self.layers
        self.sink.unit(unit_layer, event.t_s, src, dst, unit)
        frame = self.frame_of(unit) if self.frame_of is not None else None
        if frame is not None:
            self.sink.unit(frame_layer, event.t_s, src, dst, frame)


def cadu_frame_of(frame_len: int, coding: CaduCoding) -> Callable[[bytes], bytes | None]:
    asm = len(coding.asm)

    def frame_of(unit: bytes) -> bytes | None:
        block = unit[asm:]
        if coding.randomize:
            block = tm_derandomize(block)
        return bytes(block[:frame_len])

    return frame_of


def cltu_frame_of(coding: Any) -> Callable[[bytes], bytes | None]:
    rx = CltuReceiver(coding)
    return rx.receive


# -- what happened to each message ----------------------------------------------------------


@dataclass(slots=True)
class HopRecord:
    key: tuple[str, str]
    kind: str  # "uplink", "isl", "downlink"
    src: str
    dst: str
    t_start: float
    t_end: float | None = None
    frames: int = 0  # uplink: CLTUs of the message sent, retransmissions included
    retransmissions: int = 0


class Trace:
    """Each hop of each query and answer, as the nodes report them (an observer that
    only the emulator has; the messages themselves carry the onboard instants)."""

    def __init__(self) -> None:
        self.hops: dict[tuple[str, str], list[HopRecord]] = defaultdict(list)
        self.copies: Counter[tuple[str, str]] = Counter()
        self._open: dict[tuple, deque[HopRecord]] = defaultdict(deque)

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def key(message: bytes) -> tuple[str, str] | None:
        """("q", id) for a query, ("a", id) for an answer or an error, else None."""
        try:
            msg = decode(message)
        except DecodeError:
            return None
        if isinstance(msg, Query):
            return ("q", msg.id)
        if isinstance(msg, Answer | ErrorMessage):
            return ("a", msg.id)
        return None

    def start(
        self, key: tuple[str, str] | None, link: tuple, kind: str, src: str, dst: str, t_s: float
    ) -> HopRecord | None:
        if key is None:
            return None
        record = HopRecord(key, kind, src, dst, t_s)
        self.hops[key].append(record)
        self._open[(key, link)].append(record)
        return record

    def end(self, key: tuple[str, str] | None, link: tuple, t_s: float) -> HopRecord | None:
        if key is None:
            return None
        pending = self._open.get((key, link))
        if not pending:
            return None
        record = pending.popleft()
        record.t_end = t_s
        return record

    def chain(self, key: tuple[str, str], last: HopRecord, first_src_kind: str) -> list[HopRecord]:
        """``last`` and the hops that brought the same message to its source, back to a
        hop whose source is of kind ``first_src_kind`` ("ground" or "sat:NAME")."""
        chain = [last]
        done = [h for h in self.hops[key] if h.t_end is not None]
        while not chain[0].src.startswith(first_src_kind):
            head = chain[0]
            before = [h for h in done if h.dst == head.src and h.t_end <= head.t_start + 1e-9]
            if not before:
                break
            chain.insert(0, max(before, key=lambda h: h.t_end))
        return chain


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


def rf_models(
    scenario: Scenario,
    cfg: EmulationConfig,
    switch: StationSwitch,
    satellite: Any,
    seeds: random.Random,
) -> tuple[SwitchedRfModel, SwitchedRfModel]:
    """The physics of one satellite's uplink and downlink (through the station its
    switch picks), with the configured injected losses and BER floors."""
    views = {st.name: StationView(st, satellite, scenario.epoch) for st in scenario.stations}
    up = SwitchedRfModel(
        switch,
        {s: RfLinkModel(v, cfg.uplink_rf) for s, v in views.items()},
        cfg.uplink_rf.rate_bps,
        loss=cfg.uplink_loss,
        ber_floor=cfg.uplink_ber,
        seed=seeds.getrandbits(32),
    )
    down = SwitchedRfModel(
        switch,
        {s: RfLinkModel(v, cfg.downlink_rf) for s, v in views.items()},
        cfg.downlink_rf.rate_bps,
        loss=cfg.downlink_loss,
        ber_floor=cfg.downlink_ber,
        seed=seeds.getrandbits(32),
    )
    return up, down


def laser_model(
    scenario: Scenario, cfg: EmulationConfig, src: str, dst: str, seeds: random.Random
) -> LaserLinkModel:
    """The physics of the laser link from ``src`` to ``dst``."""
    return LaserLinkModel(
        IslView(scenario.satellite(src), scenario.satellite(dst), scenario.epoch),
        cfg.laser,
        seed=seeds.getrandbits(32),
    )


class Peer(NamedTuple):
    """A satellite of another process, as a laser-link neighbour knows it."""

    name: str
    scid: int


# -- the whole scenario ------------------------------------------------------------------------


@dataclass(frozen=True)
class EmulationConfig:
    """What to emulate. Losses and BER floors are injected on top of the physics."""

    scenario: str | Scenario = "default"
    backend: str = "tiny"  # a make_backend spec (ignored when a Backend is passed)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
    uplink: UplinkConfig = field(default_factory=UplinkConfig)  # scid set per satellite
    uplink_rf: RfLinkConfig = S_BAND_UPLINK
    downlink_rf: RfLinkConfig = X_BAND_DOWNLINK
    laser: OpticalTerminal = OPTICAL_ISL_100G
    linger_s: float = 2.0  # TM keeps coming this long after the last traffic of a pass
    uplink_loss: float = 0.0
    downlink_loss: float = 0.0
    uplink_ber: float = 0.0  # a floor under the link budget's BER
    downlink_ber: float = 0.0
    scid_base: int = 0x40
    seed: int = 0
    computing: tuple[str, ...] | None = None  # satellites with a model (None: all)


class Emulation:
    """A scenario running: mission control, satellites, links, services, a client.

    ``async with Emulation(clock, config) as emu: await emu.client.ask(...)``.
    Pass ``backend`` to share a loaded model (otherwise ``config.backend`` is made
    and loaded on entry); ``capture`` receives every unit (see :class:`CaptureSink`).
    """

    def __init__(
        self,
        clock: Any,
        config: EmulationConfig | None = None,
        *,
        backend: Backend | None = None,
        capture: CaptureSink | None = None,
    ) -> None:
        self.clock = clock
        self.config = config = config or EmulationConfig()
        self.sink = capture
        scenario = config.scenario
        self.scenario = scenario_by_name(scenario) if isinstance(scenario, str) else scenario
        n = len(self.scenario.satellites)
        if config.scid_base + n - 1 > 0xFF:
            raise ConfigError(
                "emulation",
                "scenario",
                f"{n} satellites from SCID {config.scid_base} do not fit the 8-bit AOS SCID",
            )
        self.backend = backend
        self.trace = Trace()
        self.contacts = ContactState(
            self.scenario,
            start_t_s=clock.now(),
            acquisition_s=config.uplink_rf.receiver.acquisition_s,
            pat_s=config.laser.pat_s,
        )
        self.switches: dict[str, StationSwitch] = {}
        self.satellites: dict[str, SatelliteNode] = {}
        self.links: list[RadioLink] = []
        self.mcc = MissionControl(self)
        self.client = Client(self.mcc, clock, config.client, seed=config.seed)
        self.mcc.deliver = self.client.on_message
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._build()

    # -- wiring -----------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.config
        clock = self.clock
        scenario = self.scenario
        seeds = random.Random(cfg.seed)
        computing = set(cfg.computing if cfg.computing is not None else scenario.satellite_names)
        for i, sat in enumerate(scenario.satellites):
            name = sat.name
            scid = cfg.scid_base + i
            node = SatelliteNode(self, name, self.contacts.nodes[name], scid)
            self.satellites[name] = node
            self._wake[name] = asyncio.Event()
            switch = self.switches[name] = StationSwitch(self.contacts, name)
            up_model, down_model = rf_models(scenario, cfg, switch, sat, seeds)
            link_cfg = replace(cfg.uplink, scid=scid)

            holder: dict[str, Any] = {}
            uplink = RadioLink(
                f"uplink {name}",
                clock,
                up_model,
                IndependentErrors(seed=seeds.getrandbits(32)),
                lambda d, h=holder: h["spacecraft"].on_uplink(d),
                sink=self.sink,
                layers=("cltu", "tc_frame"),
                ends=rf_ends(up_model, name, uplink=True),
                frame_of=cltu_frame_of(link_cfg.cltu_coding),
            )
            downlink = RadioLink(
                f"downlink {name}",
                clock,
                down_model,
                IndependentErrors(seed=seeds.getrandbits(32)),
                lambda d, h=holder: h["channel"].on_downlink(d),
                sink=self.sink,
                layers=("tm_cadu", "tm_frame"),
                ends=rf_ends(down_model, name, uplink=False),
                frame_of=cadu_frame_of(link_cfg.tm_frame_length, link_cfg.cadu_coding),
            )
            channel = Cop1Channel(
                link_cfg,
                clock,
                uplink,
                functools.partial(self.mcc.on_packet, name),
                functools.partial(self.mcc.on_frame_sent, name),
            )
            spacecraft = Spacecraft(link_cfg, clock, downlink, node.on_uplink_packet)
            holder["spacecraft"], holder["channel"] = spacecraft, channel
            node.spacecraft = spacecraft
            self.mcc.add_channel(name, channel)
            self.links += [uplink, downlink]
            if name in computing:
                node.service = InferenceService(
                    self.backend if self.backend is not None else _Lazy(self),
                    clock,
                    node.send_to_ground,
                    satellite=name,
                    config=cfg.service,
                )
        names = scenario.satellite_names
        for a, b in scenario.isl_pairs:
            for src, dst in ((names[a], names[b]), (names[b], names[a])):
                s_node, d_node = self.satellites[src], self.satellites[dst]
                model = laser_model(scenario, cfg, src, dst, seeds)
                link = RadioLink(
                    f"isl {src}->{dst}",
                    clock,
                    model,
                    IndependentErrors(seed=seeds.getrandbits(32)),
                    functools.partial(d_node.on_isl, src),
                    sink=self.sink,
                    layers=("aos_cadu", "aos_frame"),
                    ends=lambda s=s_node.node, d=d_node.node: (s, d),
                    frame_of=cadu_frame_of(AOS_FRAME_LEN, CaduCoding()),
                )
                s_node.add_isl(d_node, link)
                d_node.add_isl_rx(s_node)
                self.links.append(link)

    # -- life cycle -----------------------------------------------------------------------------
    async def __aenter__(self) -> Emulation:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self.backend is None:
            self.backend = make_backend(self.config.backend)
            self.backend.load()
        for node in self.satellites.values():
            if node.service is not None:
                if isinstance(node.service.backend, _Lazy):
                    node.service.backend = self.backend
                node.service.start()
        for link in self.links:
            link.start()
        loop = asyncio.get_running_loop()
        for name in self.satellites:
            self._tasks.append(loop.create_task(self._passes(name), name=f"passes {name}"))
        for channel in self.mcc.channels.values():
            channel.start()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.client.close()
        for node in self.satellites.values():
            await node.close()
        self.mcc.close()
        for link in self.links:
            await link.close()

    def wake(self, satellite: str) -> None:
        self._wake[satellite].set()

    # -- passes: TM while there is traffic ---------------------------------------------------
    def _busy(self, name: str) -> bool:
        return self.satellites[name].tm_has_data or self.mcc.channels[name].busy

    async def _passes(self, name: str) -> None:
        await transmit_passes(
            self,
            self.satellites[name],
            functools.partial(self._busy, name),
            self._wake[name],
            self.config.uplink.clcw_interval_s,
            self.config.linger_s,
        )

    # -- figures ----------------------------------------------------------------------------------
    def stats(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {"mcc": Counter(self.mcc.stats)}
        links: Counter[str] = Counter()
        for link in self.links:
            kind = link.name.split()[0]
            for k, v in link.stats.items():
                links[f"{kind}_{k}"] += v
        out["links"] = links
        ground: Counter[str] = Counter()
        for ch in self.mcc.channels.values():
            ground.update(ch.stats)
        out["cop1"] = ground
        sats: Counter[str] = Counter()
        services: Counter[str] = Counter()
        for node in self.satellites.values():
            sats.update(node.stats)
            if node.service is not None:
                services.update(node.service.stats)
        out["satellites"] = sats
        out["services"] = services
        out["client"] = Counter(self.client.stats)
        return out


class _Lazy:
    """Stands for the backend until :meth:`Emulation.start` makes it."""

    def __init__(self, emu: Emulation) -> None:
        self.emu = emu

    def __getattr__(self, name: str) -> Any:  # pragma: no cover - replaced before use
        raise ConfigError("emulation", "backend", "the emulation has not started")
