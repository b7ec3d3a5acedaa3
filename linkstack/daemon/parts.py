"""The pieces a daemon runs: the ground segment, satellites, the channel.

They are the in-process emulation's own nodes and links, assembled the same way
(:class:`~linkstack.runtime.mission_control.MissionControl` and
:class:`~linkstack.runtime.satellite.SatelliteNode` built from links,
:class:`~linkstack.runtime.radio.PhysicalLinks` for the physics), on a
:class:`~linkstack.runtime.site.Site` of the process (:func:`process_site`); only the
far ends differ: each piece talks to the others through UDP
(:class:`linkstack.daemon.wire.PortPlan`), whether they run in one process (role
``all``) or in several.

- :class:`GroundPart`: mission control, one COP-1 channel (FOP-1) per satellite,
  resynchronised from FARM-1's CLCW; CLTUs out on each satellite's uplink port
  (:func:`linkstack.daemon.wire.wire_link`), TM CADUs in on its downlink port.
- :class:`SatellitePart`: one or more satellites with FARM-1 and the TM channel,
  the laser terminals, the relay and the inference service; TM frames all through
  every pass.
- :class:`ChannelPart`: the emulated space: every link of the scenario with its
  physics (geometry-driven delay, Doppler and lock, bit errors, losses, contact
  gaps), in wall-clock time.

Each has ``status(limit)`` (what the status line, the HTTP endpoint and MQTT report:
at most ``limit`` satellites or links of each list, the busiest first, and how many
there are; a constellation of thousands has hundreds in view) and ``counters()``;
:class:`Looks` gives them the geometry of a satellite for the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from channels.link import LATENESS_BOUNDS_S, Delivery, Link
from channels.orbit import StationView
from channels.rf import doppler_hz, ebn0_db
from channels.scenarios import Scenario
from linkstack.ccsds.coding.chains import CaduCoding, CltuTransmitter
from linkstack.daemon.flight_radio import FlightRadio
from linkstack.daemon.gateway import Gateway, GatewayEnd
from linkstack.daemon.metrics import Buckets
from linkstack.daemon.packet_log import PacketLog
from linkstack.daemon.status import event
from linkstack.daemon.wire import (
    GROUND,
    LinkSpec,
    ModemModel,
    OnUnit,
    PortPlan,
    UnitCheck,
    Wire,
    arrival,
    unit_shape_fault,
    wire_link,
)
from linkstack.runtime.config import EmulationConfig
from linkstack.runtime.cop1_link import Ground
from linkstack.runtime.frames import USLP
from linkstack.runtime.mission_control import MissionControl
from linkstack.runtime.radio import (
    Ends,
    PhysicalLinks,
    cadu_frame_of,
    capture_emissions,
    cltu_frame_of,
    downlink_ends,
    fixed_ends,
    uplink_ends,
)
from linkstack.runtime.satellite import SatelliteNode, transmit_passes
from linkstack.runtime.scenario import GatewaySettings, RadioSettings
from linkstack.runtime.site import AOS_FRAME_LEN, CaptureSink, Site, sat_node
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.timebase import Clock
from payloads.backends import Backend

if TYPE_CHECKING:
    from linkstack.ccsds.sdls import Keyring

# The contact plan of a daemon begins this long before it starts (longer than any
# pass), so that a pass in progress at start has its real AOS: the routes and the
# channel's receivers, which acquire from it, both read it from this one plan.
CONTACT_LOOKBACK_S = 1800.0
CONTACT_CHUNK_S = 900.0  # computed a chunk at a time, ...
CONTACT_AHEAD_S = 1800.0  # ... and this far ahead of now
# A daemon's satellite cannot see the ground's FOP-1, so it sends TM all through every
# pass: at the CLCW interval while it has traffic (and linger_s after), and a frame this
# often while it has none, or at once when a CLTU comes up. A frame every CLCW interval
# from each idle satellite in view was ~5,000 frames/s on planned-2800 (~1,000 in view
# of its 20 stations), more than a core.
IDLE_TM_INTERVAL_S = 1.0
# The ground calls a contact gone after this many idle intervals without a CLCW (one
# idle frame lost does not end it), unless uplink.contact_timeout_s is given.
IDLE_FRAMES_PER_CONTACT_TIMEOUT = 2.5


def process_site(
    clock: Clock,
    config: EmulationConfig,
    sink: CaptureSink | None,
    *,
    keep_trace: bool,
    keys: Keyring | None = None,
) -> Site:
    """The :class:`~linkstack.runtime.site.Site` of one daemon process: its contact
    plan begins :data:`CONTACT_LOOKBACK_S` before it starts; only a process with a
    ground keeps a trace (the ground's timelines read it)."""
    scenario = config.scenario
    assert isinstance(scenario, Scenario), "a scenario file resolves its scenario"
    site = Site(
        clock,
        config,
        scenario,
        sink=sink,
        contacts_from_t_s=clock.now() - CONTACT_LOOKBACK_S,
        contacts_chunk_s=CONTACT_CHUNK_S,
        keep_trace=keep_trace,
        keys=keys,
    )
    site.contacts.extend(clock.now() + CONTACT_AHEAD_S)
    return site


async def keep_contacts_ahead(site: Site) -> None:
    """Extend the contact plan before anyone needs it, a small chunk at a time (1-2 ms
    each for the default scenario), so that no unit waits for it."""
    while True:
        site.contacts.extend(site.clock.now() + CONTACT_AHEAD_S)
        await site.clock.sleep_until(site.clock.now() + CONTACT_AHEAD_S / 10)


class Looks:
    """Where a satellite is for the station tracking it (status lines): elevation,
    range, Eb/N0 and Doppler of both RF directions (pure geometry and budget)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._views: dict[tuple[str, str], StationView] = {}

    def at(self, satellite: str, t_s: float) -> dict[str, Any]:
        site = self.site
        station = site.switches[satellite].station_at(t_s)
        if station is None:
            return {"satellite": satellite, "aos": False}
        view = self._views.get((satellite, station))
        if view is None:
            scenario = site.scenario
            view = StationView(
                scenario.station(station), scenario.satellite(satellite), scenario.epoch
            )
            self._views[(satellite, station)] = view
        look = view.at(t_s)
        up, down = site.config.uplink_rf, site.config.downlink_rf
        elevation = max(look.elevation_deg, 0.0)
        return {
            "satellite": satellite,
            "aos": True,
            "station": station,
            "elevation_deg": round(look.elevation_deg, 2),
            "range_km": round(look.range_m / 1e3, 1),
            "ebn0_up_db": round(ebn0_db(up, look.range_m, elevation), 2),
            "ebn0_down_db": round(ebn0_db(down, look.range_m, elevation), 2),
            "doppler_up_hz": round(doppler_hz(up.freq_hz, look.range_rate_mps), 1),
            "doppler_down_hz": round(doppler_hz(down.freq_hz, look.range_rate_mps), 1),
        }


class Rates:
    """Per-second rates and increments of counters over the last ``window_s`` (the
    status interval by default), whoever asks and however often: an HTTP poll between
    two status lines neither resets nor skews them."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def _base(self, key: str, value: float, t_s: float) -> tuple[float, float]:
        """The oldest sample of ``key`` still in the window, after noting this one."""
        q = self._samples.get(key)
        if q is None:  # counters start at zero: the first increment is the count so far
            q = self._samples[key] = deque([(t_s, 0.0)])
        q.append((t_s, value))
        while len(q) > 2 and q[1][0] <= t_s - self.window_s:
            q.popleft()
        return q[0]

    def rate(self, key: str, value: float, t_s: float) -> float:
        t0, v0 = self._base(key, value, t_s)
        return 0.0 if t_s <= t0 else (value - v0) / (t_s - t0)

    def delta(self, key: str, value: float, t_s: float) -> float:
        return value - self._base(key, value, t_s)[1]

    def seed(self, key: str, value: float, t_s: float) -> None:
        """``key`` was ``value`` at ``t_s`` (a counter that was not sampled since)."""
        self._samples[key] = deque([(t_s, value)])

    def forget(self, *keys: str) -> None:
        """Drop the samples of ``keys`` (counters idle for a window: nothing to rate)."""
        for key in keys:
            self._samples.pop(key, None)


_LINK_RATE_KEYS = ("sent", "dropped", "corrupted", "rate")  # the channel's samples per link


# Frames missing from a receiver's count: TM's master channel frame count, USLP's
# virtual channel frame count (a receiver has one of them)
FRAME_GAP_COUNTERS = ("mc_frames_lost", "vc_frames_lost")


def downlink_frames_lost(stats: Counter[str]) -> int:
    """The frames a downlink receiver (TM or USLP) saw missing from its count."""
    return sum(stats[key] for key in FRAME_GAP_COUNTERS)


def frame_label(protocol: str, tm_tc: str) -> str:
    """The prefix of a frame receiver's counters: ``tm_tc`` ("tm" or "tc") for TM and
    TC frames, "uslp" for USLP frames (their counters are not TM's or TC's)."""
    return "uslp" if protocol == USLP else tm_tc


def _add(total: Counter[str], stats: Mapping[str, int], prefix: str = "") -> None:
    """``stats`` added into ``total``, each key after ``prefix`` (the counters of
    thousands of nodes are summed every status: a plain loop, nothing for empty ones)."""
    for key, value in stats.items():
        total[prefix + key] += value


def _ratio(bad: float, total: float) -> float | None:
    return round(bad / total, 4) if total > 0 else None


# -- the ground ------------------------------------------------------------------------------


class GroundPart:
    """Mission control and the stations' RF front ends, one COP-1 channel per satellite,
    each resynchronised from FARM-1's CLCW (the FARM-1 on board outlives a restart of
    the ground)."""

    def __init__(
        self,
        site: Site,
        wire: Wire,
        plan: PortPlan,
        looks: Looks,
        gateway: GatewaySettings | None = None,
        packet_log: PacketLog | None = None,
        mqtt_base: str = "linkstack/mcc",
    ) -> None:
        self.site = site
        self.wire = wire
        self.plan = plan
        self.looks = looks
        cfg = site.config
        self.radios = {
            name: wire_link(
                plan.uplink(name).name,
                site.clock,
                ModemModel(cfg.uplink_rf.rate_bps, site.switches[name]),
                _sender(wire, plan.uplink(name)),
            )
            for name in site.scenario.satellite_names
        }
        cop1 = replace(
            cfg.uplink,
            initiate=None,
            resync_from_clcw=True,
            contact_timeout_s=daemon_contact_timeout_s(cfg.uplink),
            idle_clcw_interval_s=idle_tm_interval_s(cfg.uplink),
        )
        self.mcc = MissionControl(
            site, self.radios, cop1=cop1, observes_space=False, continuous_tm=True
        )
        self.mcc.on_restart = self._on_restart
        if site.sink is not None:
            for name, radio in self.radios.items():
                capture_emissions(
                    radio,
                    site.sink,
                    ("cltu", "tc_frame"),
                    uplink_ends(name),
                    cltu_frame_of(cfg.uplink.cltu_coding),
                )
        self._rates = Rates()
        self.gateway = (
            self._gateway(gateway, packet_log, mqtt_base)
            if gateway is not None and gateway.enabled
            else None
        )
        self._cadus_out = self.gateway is not None and self.gateway.settings.downlink == "cadu"

    def _gateway(
        self, settings: GatewaySettings, packet_log: PacketLog | None, mqtt_base: str
    ) -> Gateway:
        """The interface for an outside mission control system: each satellite's uplink
        radio takes its units; what the station decodes (or receives) goes to it."""
        names = list(self.site.scenario.satellite_names)
        coding = self.site.config.uplink.cltu_coding
        terminate = settings.sdls == "terminate"  # SDLS ends here, or passes to the system
        ends = [
            GatewayEnd(
                name,
                names.index(name),
                self.radios[name],
                self.mcc.channels[name].config.tc_config(),
                CltuTransmitter(coding),
                self.mcc.channels[name].send,
                self.mcc.channels[name].protect if terminate else bytes,
            )
            for name in settings.satellites or names
        ]
        gateway = Gateway(settings, ends, self.site.clock, packet_log, mqtt_base)
        if settings.uplink == "packet":  # each packet's passage, for its timeline
            self.mcc.on_other_transmitted = gateway.transmitted
            for end in ends:
                self.mcc.channels[end.satellite].on_settled = gateway.settled
        if settings.downlink == "tm_frame":
            for end in ends:
                channel = self.mcc.channels[end.satellite]
                channel.on_frame = functools.partial(gateway.downlink, end.satellite)
                channel.on_plain_frame = terminate
        elif settings.downlink == "packet":
            self.mcc.on_other_packet = gateway.downlink_packet
        return gateway

    async def open(self) -> None:
        if self.gateway is not None:
            await self.gateway.open()
        end = self.plan.end_of(GROUND)
        links: dict[int, tuple[OnUnit, UnitCheck | None]] = {
            self.plan.downlink(name).index: (functools.partial(self._on_unit, name), None)
            for name in self.mcc.channels
        }
        await self.wire.listen(
            end.node_port, links, f"node_port ({end.name})", self.plan.peer_of_node(end)
        )

    def _on_unit(self, satellite: str, unit: bytes, t_s: float) -> None:
        if self._cadus_out:
            assert self.gateway is not None
            self.gateway.downlink(satellite, unit)
        self.mcc.on_downlink(satellite, arrival(unit, t_s))

    def _on_restart(self, satellite: str, reason: str, resent: list[str]) -> None:
        what = "satellite restarted" if reason.startswith("farm_") else "clcw stream broke"
        # a break with nothing in flight is news only when looking closely (a daemon
        # stalled for a second breaks the streams of the hundreds of satellites in view)
        level = logging.INFO if resent or what == "satellite restarted" else logging.DEBUG
        event(what, level, satellite=satellite, reason=reason, resent=resent)

    def start(self) -> None:
        for radio in self.radios.values():
            radio.start()
        self.mcc.start()

    async def close(self) -> None:
        if self.gateway is not None:
            self.gateway.close()
        self.mcc.close()
        for radio in self.radios.values():
            await radio.close()

    def status(self, limit: int | None = None) -> dict[str, Any]:
        """Each satellite's link in view or busy (the busy first), at most ``limit``;
        ``in_view_count`` counts those in view, ``busy`` those with frames to send or
        outstanding."""
        now = self.site.clock.now()
        switches = self.site.switches
        rows = []
        in_view = 0
        for name, ch in self.mcc.channels.items():
            aos = switches[name].station_at(now) is not None
            in_view += aos
            if aos or ch.busy:
                rows.append((not ch.busy, name, ch))
        busy = sum(not idle for idle, _, _ in rows)
        if limit is not None and len(rows) > limit:
            rows = sorted(rows, key=lambda row: row[0])[:limit]
        links = [self._link_status(name, ch, now) for _, name, ch in rows]
        return {
            "links": links,
            "in_view_count": in_view,
            "busy": busy,
            "ground_queue": len(self.mcc.queue),
        }

    def _link_status(self, name: str, ch: Ground, now: float) -> dict[str, Any]:
        look = self.looks.at(name, now)
        frames = ch.tm_rx.stats["frames"]
        lost = downlink_frames_lost(ch.tm_rx.stats) + ch.cadu_rx.stats["rs_uncorrectable"]
        d_frames = self._rates.delta(f"{name}.frames", frames, now)
        d_lost = self._rates.delta(f"{name}.lost", lost, now)
        cltus = self.radios[name].stats["sent"]
        return {
            **look,
            "fop": ch.fop.state.name.lower(),
            "in_contact": ch.in_contact(now),
            "tm_frames_per_s": round(self._rates.rate(f"{name}.fps", frames, now), 2),
            "tm_frame_error_rate": _ratio(d_lost, d_frames + d_lost),
            "cltus_per_s": round(self._rates.rate(f"{name}.cltus", cltus, now), 2),
            "backlog": ch.backlog,
            "outstanding": ch.fop.outstanding,
        }

    def counters(self) -> dict[str, Any]:
        cop1: Counter[str] = Counter()
        down: Counter[str] = Counter()
        frames = frame_label(self.site.config.uplink.protocol, "tm")
        for ch in self.mcc.channels.values():
            _add(cop1, ch.stats)
            _add(down, ch.cadu_rx.stats, "cadu_")
            _add(down, ch.tm_rx.stats, f"{frames}_")
        up: Counter[str] = Counter()
        for radio in self.radios.values():
            _add(up, radio.stats)
        out: dict[str, Any] = {
            "mcc": dict(self.mcc.stats),
            "cop1": dict(cop1),
            "downlink": dict(down),
            "uplink": dict(up),
        }
        if self.gateway is not None:
            out["gateway"] = self.gateway.counters()
        return out


# -- the satellites ----------------------------------------------------------------------------


class SatellitePart:
    """Satellites ``names`` of the scenario: FARM-1 and TM, laser terminals, the relay,
    the inference service on ``backend``; TM all through every pass (a satellite
    cannot see the ground's FOP-1)."""

    def __init__(
        self,
        site: Site,
        wire: Wire,
        plan: PortPlan,
        looks: Looks,
        names: list[str],
        backend: Backend | None,
        radio: RadioSettings | None = None,
        packet_log: PacketLog | None = None,
    ) -> None:
        self.site = site
        self.wire = wire
        self.plan = plan
        self.looks = looks
        self.backend = backend
        cfg = site.config
        clock = site.clock
        self.nodes: dict[str, SatelliteNode] = {}
        self.links: list[Link] = []
        self._inputs: list[tuple[LinkSpec, Callable[[bytes, float], None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._rates = Rates()
        isl_from: dict[str, list[LinkSpec]] = {}  # each satellite's laser links out, and in
        isl_to: dict[str, list[LinkSpec]] = {}
        for spec in plan.links:
            if spec.kind == "isl":
                isl_from.setdefault(spec.src, []).append(spec)
                isl_to.setdefault(spec.dst, []).append(spec)
        for name in names:
            spec = plan.downlink(name)
            model = ModemModel(cfg.downlink_rf.rate_bps, site.switches[name])
            downlink = wire_link(spec.name, clock, model, _sender(wire, spec))
            isl_out = {
                isl.dst: wire_link(
                    isl.name,
                    clock,
                    ModemModel(cfg.laser.rate_bps),
                    _sender(wire, isl),
                )
                for isl in isl_from.get(name, [])
            }
            isl_in = [isl.src for isl in isl_to.get(name, [])]
            node = SatelliteNode(site, name, downlink, isl_out, isl_in)
            self.nodes[name] = node
            self.links += [downlink, *isl_out.values()]
            if site.sink is not None:
                coding = cfg.uplink
                capture_emissions(
                    downlink,
                    site.sink,
                    ("tm_cadu", "tm_frame"),
                    downlink_ends(name),
                    cadu_frame_of(coding.tm_frame_length, coding.cadu_coding),
                )
                for peer, link in isl_out.items():
                    capture_emissions(
                        link,
                        site.sink,
                        ("aos_cadu", "aos_frame"),
                        fixed_ends(sat_node(name), sat_node(peer)),
                        cadu_frame_of(AOS_FRAME_LEN, CaduCoding()),
                    )
            self._inputs.append((plan.uplink(name), functools.partial(self._on_uplink, node)))
            for isl in isl_to.get(name, []):
                self._inputs.append((isl, functools.partial(self._on_isl, node, isl.src)))
        self.radio = self._radio(radio, packet_log) if radio is not None and radio.enabled else None

    def _radio(self, settings: RadioSettings, packet_log: PacketLog | None) -> FlightRadio | None:
        """The radio for flight software of the satellites it names that run here."""
        order = list(self.site.scenario.satellite_names)
        wanted = settings.satellites or order
        nodes = {n: (order.index(n), self.nodes[n]) for n in wanted if n in self.nodes}
        return FlightRadio(settings, nodes, self.site.clock, packet_log) if nodes else None

    def _on_uplink(self, node: SatelliteNode, unit: bytes, t_s: float) -> None:
        node.on_uplink(arrival(unit, t_s))

    def _on_isl(self, node: SatelliteNode, peer: str, unit: bytes, t_s: float) -> None:
        node.on_isl(peer, arrival(unit, t_s))

    async def open(self) -> None:
        if self.radio is not None:
            await self.radio.open()
        by_end: dict[int, dict[int, tuple[OnUnit, UnitCheck | None]]] = {}
        for spec, handler in self._inputs:
            by_end.setdefault(spec.dst_end, {})[spec.index] = (handler, None)
        for end in self.plan.ends_of(self.nodes):
            what = f"node_port ({end.name})"
            await self.wire.listen(
                end.node_port, by_end[end.index], what, self.plan.peer_of_node(end)
            )

    def start(self) -> None:
        cfg = self.site.config
        computing = cfg.computing
        loop = asyncio.get_running_loop()
        for link in self.links:
            link.start()
        for name, node in self.nodes.items():
            if self.backend is not None and (computing is None or name in computing):
                node.start_service(self.backend)
            passes = transmit_passes(
                self.site,
                node,
                node.take_traffic,
                cfg.uplink.clcw_interval_s,
                cfg.linger_s,
                idle_interval_s=idle_tm_interval_s(cfg.uplink),
            )
            self._tasks.append(loop.create_task(passes, name=f"passes {name}"))

    async def close(self) -> None:
        if self.radio is not None:
            self.radio.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for node in self.nodes.values():
            await node.close()
        for link in self.links:
            await link.close()

    def status(self, limit: int | None = None) -> dict[str, Any]:
        """Each satellite in view, or with answers unacknowledged or messages parked
        (those first), at most ``limit``; ``in_view_count`` counts those in view."""
        now = self.site.clock.now()
        switches = self.site.switches
        rows = []
        in_view = 0
        for name, node in self.nodes.items():
            aos = switches[name].station_at(now) is not None
            in_view += aos
            service = node.service
            held = bool(node.parked or (service is not None and service.unacknowledged))
            if aos or held:
                rows.append((not held, name, node))
        if limit is not None and len(rows) > limit:
            rows = sorted(rows, key=lambda row: row[0])[:limit]
        sats = [self._satellite_status(name, node, now) for _, name, node in rows]
        return {"satellites": sats, "in_view_count": in_view, "hosted": len(self.nodes)}

    def _satellite_status(self, name: str, node: SatelliteNode, now: float) -> dict[str, Any]:
        sc = node.spacecraft
        look = self.looks.at(name, now)
        cltus = sc.cltu_rx.stats["cltus"]
        bad = sc.cltu_rx.stats["frame_incomplete"]
        d_cltus = self._rates.delta(f"{name}.cltus", cltus, now)
        d_bad = self._rates.delta(f"{name}.bad", bad, now)
        service = node.service
        out = {
            **look,
            "transmitting": node.transmitting,
            "farm": sc.farm.state.name.lower(),
            "vr": sc.farm.vr,
            "tm_frames_per_s": round(self._rates.rate(f"{name}.tm", sc.stats["tm_frames"], now), 2),
            "uplink_frame_error_rate": _ratio(d_bad, d_cltus),
            "model_queue": service.queued if service is not None else None,
            "unacknowledged": len(service.unacknowledged) if service is not None else None,
            "parked": node.parked,
            "busy_s": round(service.busy_s, 3) if service is not None else None,
        }
        power = self.site.power(name) if service is not None else None  # the service's own
        if power is not None:  # the battery now, as an idle copy of its model finds it
            out["battery_soc_wh"] = round(power.soc_wh_at(now), 3)
            out["battery_capacity_wh"] = power.params.battery_capacity_wh
        return out

    def counters(self) -> dict[str, Any]:
        sats: Counter[str] = Counter()
        services: Counter[str] = Counter()
        farm: Counter[str] = Counter()
        up: Counter[str] = Counter()  # what the satellites' receivers made of the uplink
        frames = frame_label(self.site.config.uplink.protocol, "tc")
        for node in self.nodes.values():
            _add(sats, node.stats)
            _add(farm, node.spacecraft.farm.stats)
            _add(up, node.spacecraft.cltu_rx.stats, "cltu_")
            _add(up, node.spacecraft.tc_rx.stats, f"{frames}_")
            if node.service is not None:
                _add(services, node.service.stats)
        out: dict[str, Any] = {
            "satellites": dict(sats),
            "farm": dict(farm),
            "uplink": dict(up),
            "services": dict(services),
        }
        if self.radio is not None:
            out["radio"] = self.radio.counters()
        return out


def idle_tm_interval_s(uplink: UplinkConfig) -> float:
    """How often a daemon's satellite with no traffic sends TM in a pass."""
    return max(IDLE_TM_INTERVAL_S, uplink.clcw_interval_s)


def daemon_contact_timeout_s(uplink: UplinkConfig) -> float:
    """How long the ground daemon waits for a CLCW before it calls a contact gone: the
    scenario's ``contact_timeout_s``, else long enough for idle satellites' TM."""
    if uplink.contact_timeout_s is not None:
        return uplink.contact_timeout_s
    idle_s = idle_tm_interval_s(uplink)
    return max(uplink.effective_contact_timeout_s, IDLE_FRAMES_PER_CONTACT_TIMEOUT * idle_s)


def _sender(wire: Wire, spec: LinkSpec) -> Callable[[bytes], None]:
    """A node's sending of ``spec``'s units into the channel, from its end's port."""
    return wire.sender(spec.channel_port, spec.index, spec.source_port)


# -- the channel -------------------------------------------------------------------------------


class ChannelPart:
    """Every link of the scenario, with its physics (the same
    :class:`~linkstack.runtime.radio.PhysicalLinks` as in process), between the nodes'
    UDP ports.

    With ``capture``, each unit is written to the site's sink as it is delivered
    (after the link's bit errors; lost units are not): what the receivers got, with
    the ends it had when it left (the station tracking the satellite may change
    before it arrives)."""

    def __init__(
        self, site: Site, wire: Wire, plan: PortPlan, looks: Looks, *, capture: bool
    ) -> None:
        self.site = site
        self.wire = wire
        self.plan = plan
        self.looks = looks
        self.capture = capture and site.sink is not None
        physical = PhysicalLinks(site, realtime=True)
        self.links: dict[int, Link] = {}
        self._rates = Rates()
        # each link's (sent, dropped, corrupted), when they last changed, whether idle since
        self._last_counts: dict[int, tuple[tuple[int, int, int], float, bool]] = {}
        self._status_t_s: float | None = None
        # the links that ever took a unit: what the status and counters walk (a few
        # thousand of planned-2800's 27,016 links in a day)
        self._carried: set[int] = set()
        self._kinds = list(dict.fromkeys(spec.kind for spec in plan.links))
        for spec in plan.links:
            if spec.kind == "uplink":
                link, layer, ends = physical.uplinks[spec.dst], "cltu", uplink_ends(spec.dst)
            elif spec.kind == "downlink":
                link, layer, ends = physical.downlinks[spec.src], "tm_cadu", downlink_ends(spec.src)
            else:
                link = physical.isls[(spec.src, spec.dst)]
                layer, ends = "aos_cadu", fixed_ends(sat_node(spec.src), sat_node(spec.dst))
            send = wire.sender(spec.node_port, spec.index, spec.delivered_from)
            link.connect(self._deliverer(send, layer, ends))
            self.links[spec.index] = link
        coding = site.config.uplink
        self._shape = {
            kind: unit_shape_fault(kind, cadu_coding, frame_length)
            for kind, cadu_coding, frame_length in (
                ("uplink", coding.cadu_coding, coding.tm_frame_length),
                ("downlink", coding.cadu_coding, coding.tm_frame_length),
                ("isl", CaduCoding(), AOS_FRAME_LEN),
            )
        }

    def _deliverer(
        self, send: Callable[[bytes], None], layer: str, ends: Ends
    ) -> Callable[[Delivery], None]:
        sink = self.site.sink if self.capture else None

        def deliver(d: Delivery) -> None:
            send(d.unit)
            if sink is not None:
                src, dst = ends(d.conditions)
                sink.unit(layer, d.arrival_t_s, src, dst, d.unit)

        return deliver

    def _transmit(self, index: int, link: Link, unit: bytes, t_s: float) -> None:
        self._carried.add(index)
        link.send(unit, at_t_s=t_s)  # from the instant the kernel had it

    async def open(self) -> None:
        plan = self.plan
        for end in plan.ends:
            links: dict[int, tuple[OnUnit, UnitCheck | None]] = {
                spec.index: (
                    functools.partial(self._transmit, spec.index, self.links[spec.index]),
                    self._shape[spec.kind],
                )
                for spec in plan.sent_by(end)
            }
            if links:
                what = f"channel_port ({end.name})"
                await self.wire.listen(end.channel_port, links, what, plan.peer_of_channel(end))

    def start(self) -> None:
        for link in self.links.values():
            link.start()

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()

    def status(self, limit: int | None = None) -> dict[str, Any]:
        """Each link that carried units in the last rate window, and each satellite in
        view, at most ``limit`` of each; ``active`` and ``in_view_count`` count them
        all. Only the links that ever carried a unit are looked at, and one idle since
        before the window costs a compare, not a rate (planned-2800 has 27,016 links, a
        thousand of them busy at rest)."""
        now = self.site.clock.now()
        window_s = self._rates.window_s
        before_t_s, self._status_t_s = self._status_t_s, now
        out: list[dict[str, Any]] = []
        active = 0
        for index in sorted(self._carried):
            spec = self.plan.links[index]
            link = self.links[index]
            st = link.stats
            counts = (st["sent"], st["dropped"], st["corrupted"])
            seen = self._last_counts.get(spec.index)
            if seen is None or seen[0] != counts:
                if seen is not None and seen[2] and before_t_s is not None:
                    # idle until the last status: its rates start from then
                    for key, value in zip(_LINK_RATE_KEYS, (*seen[0], seen[0][0]), strict=True):
                        self._rates.seed(f"{spec.index}.{key}", value, before_t_s)
                seen = self._last_counts[spec.index] = (counts, now, False)
            if not counts[0]:
                continue
            if now - seen[1] > window_s:  # idle for a window: its rates are all 0
                if not seen[2]:
                    self._rates.forget(*(f"{spec.index}.{key}" for key in _LINK_RATE_KEYS))
                    self._last_counts[spec.index] = (counts, seen[1], True)
                continue
            entry = self._link_status(spec, link, now, whole=limit is None or len(out) < limit)
            if entry is None:
                continue
            active += 1
            if entry:
                out.append(entry)
        in_view_names = [
            name
            for name in self.site.scenario.satellite_names
            if self.site.contacts.in_view(name, now)
        ]
        shown = in_view_names if limit is None else in_view_names[:limit]
        return {
            "links": out,
            "active": active,
            "in_view": [self.looks.at(name, now) for name in shown],
            "in_view_count": len(in_view_names),
        }

    def _link_status(
        self, spec: LinkSpec, link: Link, now: float, whole: bool
    ) -> dict[str, Any] | None:
        """The link's rates (kept up to date whatever is shown), and its entry: None if
        it carried nothing in the window, empty unless ``whole``."""
        st = link.stats
        sent = st["sent"]
        d_sent = self._rates.delta(f"{spec.index}.sent", sent, now)
        d_dropped = self._rates.delta(f"{spec.index}.dropped", st["dropped"], now)
        d_corrupted = self._rates.delta(f"{spec.index}.corrupted", st["corrupted"], now)
        rate = self._rates.rate(f"{spec.index}.rate", sent, now)
        if not d_sent:
            return None
        if not whole:
            return {}
        cond = link.last_conditions
        entry: dict[str, Any] = {
            "link": spec.name,
            "units_per_s": round(rate, 2),
            "loss_rate": _ratio(d_dropped, d_sent),
            "corrupted_rate": _ratio(d_corrupted, d_sent),
        }
        if cond is not None:
            entry["up"] = cond.up
            if not cond.up:
                entry["reason"] = cond.reason
            for key in ("elevation_deg", "ebn0_db", "doppler_hz", "range_m"):
                value = getattr(cond, key)
                if not math.isnan(value):
                    entry[key] = round(value, 2)
        if spec.kind != "isl":
            sat = spec.dst if spec.kind == "uplink" else spec.src
            entry["station"] = self.site.switches[sat].station_at(now)
        if link.lateness.count:  # units handed over after their deadline, recent ones
            p50, p99 = link.lateness.percentiles(0.5, 0.99)
            entry["late_p50_ms"] = round(p50 * 1e3, 3)
            entry["late_p99_ms"] = round(p99 * 1e3, 3)
        return entry

    def counters(self) -> dict[str, Any]:
        kinds: dict[str, Counter[str]] = {kind: Counter() for kind in self._kinds}
        late_max_s = dict.fromkeys(self._kinds, 0.0)
        for index in self._carried:
            spec = self.plan.links[index]
            link = self.links[index]
            _add(kinds[spec.kind], link.stats)
            late_max_s[spec.kind] = max(late_max_s.get(spec.kind, 0.0), link.lateness.max_s)
        out: dict[str, Any] = {kind: dict(c) for kind, c in kinds.items()}
        for kind, late_s in late_max_s.items():
            out[kind]["late_max_ms"] = round(late_s * 1e3, 3)
        return out

    def lateness(self) -> dict[str, Buckets]:
        """Each link kind's lateness over the run, its links' histograms summed."""
        out = {kind: Buckets(LATENESS_BOUNDS_S) for kind in self._kinds}
        for index in self._carried:
            late = self.links[index].lateness
            if late.count:
                out[self.plan.links[index].kind].add(late.bucket_counts, late.sum_s)
        return out
