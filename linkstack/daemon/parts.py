"""The pieces a daemon runs: the ground segment, satellites, the channel.

Each piece is built on a :class:`ProcessSite` (the process's clock, contact state,
trace, capture sink and station switches, :class:`linkstack.runtime.site.Site`) and a
:class:`linkstack.daemon.wire.Wire`, and is wired to the others only through UDP
(:class:`linkstack.daemon.wire.PortPlan`), whether they run in one process (role
``all``) or in several:

- :class:`GroundPart`: :class:`linkstack.runtime.mission_control.MissionControl` with one
  :class:`linkstack.runtime.mission_control.Cop1Channel` (FOP-1) per satellite, synchronised on the
  first CLCW; CLTUs out on each satellite's uplink port, TM CADUs in on its
  downlink port.
- :class:`SatellitePart`: one or more :class:`linkstack.runtime.satellite.SatelliteNode` with
  FARM-1 and the TM channel (:class:`linkstack.runtime.cop1_link.Spacecraft`), the laser
  terminals, the relay and the inference service; TM frames all through every
  pass.
- :class:`ChannelPart`: the emulated space: one :class:`channels.link.Link` per
  link direction with the physics of :func:`linkstack.runtime.radio.rf_models` and
  :func:`linkstack.runtime.radio.laser_model` (geometry-driven delay, Doppler and lock,
  bit errors, losses, contact gaps), in wall-clock time.

Each has ``status()`` (what the status line, the HTTP endpoint and MQTT report)
and ``counters()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from channels.errors import IndependentErrors
from channels.link import Delivery, Link, LinkEvent
from channels.orbit import StationView
from channels.rf import doppler_hz, ebn0_db
from linkstack.ccsds.coding.chains import CaduCoding
from linkstack.daemon.wire import ModemModel, PortPlan, Wire, WireLink, arrival
from linkstack.runtime.cop1_link import Spacecraft
from linkstack.runtime.mission_control import Cop1Channel, MissionControl
from linkstack.runtime.radio import (
    StationSwitch,
    cadu_frame_of,
    cltu_frame_of,
    laser_model,
    rf_ends,
    rf_models,
)
from linkstack.runtime.routing import ContactState
from linkstack.runtime.satellite import Peer, SatelliteNode, transmit_passes
from linkstack.runtime.site import AOS_FRAME_LEN, CaptureSink, sat_node
from linkstack.runtime.trace import Trace
from payloads.backends import Backend
from payloads.service import InferenceService

# The contact plan of a daemon begins this long before it starts, so that a pass in
# progress at start has its real AOS (and is usable at once if it began long enough
# ago), as the channel's receivers, which look back for the start of a pass, have it.
CONTACT_LOOKBACK_S = 1800.0


class ProcessSite:
    """The :class:`linkstack.runtime.site.Site` of one daemon process."""

    def __init__(self, clock: Any, config: Any, sink: CaptureSink | None) -> None:
        self.clock = clock
        self.config = config
        self.scenario = config.scenario
        self.sink = sink
        self.trace = Trace()
        self.contacts = ContactState(
            self.scenario,
            start_t_s=clock.now() - CONTACT_LOOKBACK_S,
            acquisition_s=config.uplink_rf.receiver.acquisition_s,
            pat_s=config.laser.pat_s,
        )
        self.switches = {
            name: StationSwitch(self.contacts, name) for name in self.scenario.satellite_names
        }
        self._views: dict[tuple[str, str], StationView] = {}

    def wake(self, satellite: str) -> None:
        """Daemon satellites transmit through every pass: nothing to wake."""

    def scid(self, satellite: str) -> int:
        return self.config.scid_base + self.scenario.satellite_names.index(satellite)

    def look(self, satellite: str, t_s: float) -> dict[str, Any]:
        """Where ``satellite`` is for the station tracking it at ``t_s``: elevation,
        range, Eb/N0 and Doppler of both RF directions (pure geometry and budget)."""
        station = self.switches[satellite].station_at(t_s)
        if station is None:
            return {"satellite": satellite, "aos": False}
        view = self._views.get((satellite, station))
        if view is None:
            view = StationView(
                self.scenario.station(station),
                self.scenario.satellite(satellite),
                self.scenario.epoch,
            )
            self._views[(satellite, station)] = view
        look = view.at(t_s)
        up, down = self.config.uplink_rf, self.config.downlink_rf
        return {
            "satellite": satellite,
            "aos": True,
            "station": station,
            "elevation_deg": round(look.elevation_deg, 2),
            "range_km": round(look.range_m / 1e3, 1),
            "ebn0_up_db": round(ebn0_db(up, look.range_m, max(look.elevation_deg, 0.0)), 2),
            "ebn0_down_db": round(ebn0_db(down, look.range_m, max(look.elevation_deg, 0.0)), 2),
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


def _ratio(bad: float, total: float) -> float | None:
    return round(bad / total, 4) if total > 0 else None


# -- the ground ------------------------------------------------------------------------------


class GroundPart:
    """Mission control and the stations' RF front ends, one COP-1 channel per satellite."""

    def __init__(self, site: ProcessSite, wire: Wire, plan: PortPlan) -> None:
        self.site = site
        self.wire = wire
        self.plan = plan
        cfg = site.config
        clock = site.clock
        self.mcc = MissionControl(site, observes_space=False)
        self.radios: dict[str, WireLink] = {}
        self._rates = Rates()
        for name in site.scenario.satellite_names:
            link_cfg = replace(cfg.uplink, scid=site.scid(name), initiate=None)
            spec = plan.uplink(name)
            model = ModemModel(cfg.uplink_rf.rate_bps, site.switches[name])

            radio = WireLink(
                spec.name,
                clock,
                model,
                wire.sender(spec.channel_port),
                sink=site.sink,
                layers=("cltu", "tc_frame"),
                ends=rf_ends(model, name, uplink=True),
                frame_of=cltu_frame_of(link_cfg.cltu_coding),
            )
            channel = Cop1Channel(
                link_cfg,
                clock,
                radio,
                functools.partial(self.mcc.on_packet, name),
                functools.partial(self.mcc.on_frame_sent, name),
                sync=True,
            )
            self.mcc.add_channel(name, channel)
            self.radios[name] = radio

    async def open(self) -> None:
        for name, channel in self.mcc.channels.items():
            spec = self.plan.downlink(name)
            await self.wire.listen(
                spec.node_port,
                functools.partial(self._on_unit, channel),
                f"node_port ({spec.name})",
            )

    def _on_unit(self, channel: Cop1Channel, unit: bytes) -> None:
        channel.on_downlink(arrival(unit, self.site.clock.now()))

    def start(self) -> None:
        for radio in self.radios.values():
            radio.start()
        for channel in self.mcc.channels.values():
            channel.start()

    async def close(self) -> None:
        self.mcc.close()
        for radio in self.radios.values():
            await radio.close()

    def status(self) -> dict[str, Any]:
        now = self.site.clock.now()
        links = []
        for name, ch in self.mcc.channels.items():
            look = self.site.look(name, now)
            frames = ch.tm_rx.stats["frames"]
            lost = ch.tm_rx.stats["mc_frames_lost"] + ch.cadu_rx.stats["rs_uncorrectable"]
            d_frames = self._rates.delta(f"{name}.frames", frames, now)
            d_lost = self._rates.delta(f"{name}.lost", lost, now)
            cltus = self.radios[name].stats["sent"]
            entry = {
                **look,
                "fop": ch.fop.state.name.lower(),
                "in_contact": ch.in_contact(now),
                "tm_frames_per_s": round(self._rates.rate(f"{name}.fps", frames, now), 2),
                "tm_frame_error_rate": _ratio(d_lost, d_frames + d_lost),
                "cltus_per_s": round(self._rates.rate(f"{name}.cltus", cltus, now), 2),
                "backlog": ch.backlog,
                "outstanding": ch.fop.outstanding,
            }
            if look["aos"] or ch.busy:
                links.append(entry)
        return {"links": links, "ground_queue": len(self.mcc.queue)}

    def counters(self) -> dict[str, Any]:
        cop1: Counter[str] = Counter()
        down: Counter[str] = Counter()
        for ch in self.mcc.channels.values():
            cop1.update(ch.stats)
            down.update({f"cadu_{k}": v for k, v in ch.cadu_rx.stats.items()})
            down.update({f"tm_{k}": v for k, v in ch.tm_rx.stats.items()})
        up: Counter[str] = Counter()
        for radio in self.radios.values():
            up.update(radio.stats)
        return {
            "mcc": dict(self.mcc.stats),
            "cop1": dict(cop1),
            "downlink": dict(down),
            "uplink": dict(up),
        }


# -- the satellites ----------------------------------------------------------------------------


class SatellitePart:
    """Satellites ``names`` of the scenario: FARM-1 and TM, laser terminals, the relay,
    the inference service on ``backend``; TM all through every pass."""

    def __init__(
        self,
        site: ProcessSite,
        wire: Wire,
        plan: PortPlan,
        names: list[str],
        backend: Backend | None,
    ) -> None:
        self.site = site
        self.wire = wire
        self.plan = plan
        cfg = site.config
        clock = site.clock
        scenario = site.scenario
        computing = set(cfg.computing if cfg.computing is not None else scenario.satellite_names)
        self.nodes: dict[str, SatelliteNode] = {}
        self.links: list[WireLink] = []
        self._inputs: list[tuple[int, Any, str]] = []  # (port, handler, what)
        self._tasks: list[asyncio.Task[None]] = []
        self._rates = Rates()
        all_names = scenario.satellite_names
        for name in names:
            scid = site.scid(name)
            node = SatelliteNode(site, name, site.contacts.nodes[name], scid)
            link_cfg = replace(cfg.uplink, scid=scid)
            spec = plan.downlink(name)
            model = ModemModel(cfg.downlink_rf.rate_bps, site.switches[name])

            downlink = WireLink(
                spec.name,
                clock,
                model,
                wire.sender(spec.channel_port),
                sink=site.sink,
                layers=("tm_cadu", "tm_frame"),
                ends=rf_ends(model, name, uplink=False),
                frame_of=cadu_frame_of(link_cfg.tm_frame_length, link_cfg.cadu_coding),
            )
            node.spacecraft = Spacecraft(link_cfg, clock, downlink, node.on_uplink_packet)
            self.links.append(downlink)
            up = plan.uplink(name)
            self._inputs.append(
                (up.node_port, functools.partial(self._on_uplink, node), f"node_port ({up.name})")
            )
            if name in computing and backend is not None:
                node.service = InferenceService(
                    backend, clock, node.send_to_ground, satellite=name, config=cfg.service
                )
            self.nodes[name] = node
        for a, b in scenario.isl_pairs:
            for src, dst in ((all_names[a], all_names[b]), (all_names[b], all_names[a])):
                if src in self.nodes:
                    spec = plan.isl(src, dst)
                    link = WireLink(
                        spec.name,
                        clock,
                        ModemModel(cfg.laser.rate_bps),
                        wire.sender(spec.channel_port),
                        sink=site.sink,
                        layers=("aos_cadu", "aos_frame"),
                        ends=_fixed_ends(sat_node(src), sat_node(dst)),
                        frame_of=cadu_frame_of(AOS_FRAME_LEN, CaduCoding()),
                    )
                    self.nodes[src].add_isl(Peer(dst, site.scid(dst)), link)
                    self.links.append(link)
                if dst in self.nodes:
                    spec = plan.isl(src, dst)
                    self.nodes[dst].add_isl_rx(Peer(src, site.scid(src)))
                    handler = functools.partial(self._on_isl, self.nodes[dst], src)
                    self._inputs.append((spec.node_port, handler, f"node_port ({spec.name})"))

    def _on_uplink(self, node: SatelliteNode, unit: bytes) -> None:
        assert node.spacecraft is not None
        node.spacecraft.on_uplink(arrival(unit, self.site.clock.now()))

    def _on_isl(self, node: SatelliteNode, peer: str, unit: bytes) -> None:
        node.on_isl(peer, arrival(unit, self.site.clock.now()))

    async def open(self) -> None:
        for port, handler, what in self._inputs:
            await self.wire.listen(port, handler, what)

    def start(self) -> None:
        cfg = self.site.config
        loop = asyncio.get_running_loop()
        for link in self.links:
            link.start()
        for name, node in self.nodes.items():
            if node.service is not None:
                node.service.start()
            self._tasks.append(
                loop.create_task(
                    transmit_passes(
                        self.site,
                        node,
                        _always,
                        asyncio.Event(),
                        cfg.uplink.clcw_interval_s,
                        cfg.linger_s,
                    ),
                    name=f"passes {name}",
                )
            )

    async def close(self) -> None:
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

    def status(self) -> dict[str, Any]:
        now = self.site.clock.now()
        sats = []
        for name, node in self.nodes.items():
            sc = node.spacecraft
            assert sc is not None
            look = self.site.look(name, now)
            cltus = sc.cltu_rx.stats["cltus"]
            bad = sc.cltu_rx.stats["frame_incomplete"]
            d_cltus = self._rates.delta(f"{name}.cltus", cltus, now)
            d_bad = self._rates.delta(f"{name}.bad", bad, now)
            service = node.service
            entry = {
                **look,
                "transmitting": node.transmitting,
                "farm": sc.farm.state.name.lower(),
                "vr": sc.farm.vr,
                "tm_frames_per_s": round(
                    self._rates.rate(f"{name}.tm", sc.stats["tm_frames"], now), 2
                ),
                "uplink_frame_error_rate": _ratio(d_bad, d_cltus),
                "model_queue": service.queued if service is not None else None,
                "unacknowledged": len(service.unacknowledged) if service is not None else None,
                "parked": len(node._parked),
            }
            if look["aos"] or entry["unacknowledged"] or entry["parked"]:
                sats.append(entry)
        return {"satellites": sats, "hosted": len(self.nodes)}

    def counters(self) -> dict[str, Any]:
        sats: Counter[str] = Counter()
        services: Counter[str] = Counter()
        farm: Counter[str] = Counter()
        for node in self.nodes.values():
            sats.update(node.stats)
            assert node.spacecraft is not None
            farm.update(node.spacecraft.farm.stats)
            if node.service is not None:
                services.update(node.service.stats)
        return {"satellites": dict(sats), "farm": dict(farm), "services": dict(services)}


def _always() -> bool:
    return True


# -- the channel -------------------------------------------------------------------------------


class ChannelPart:
    """Every link of the scenario, with its physics, between the nodes' UDP ports.

    With ``capture``, each unit is written to the site's sink as it is delivered
    (after the link's bit errors; lost units are not): what the receivers got."""

    def __init__(self, site: ProcessSite, wire: Wire, plan: PortPlan, *, capture: bool) -> None:
        self.site = site
        self.wire = wire
        self.plan = plan
        self.capture = capture and site.sink is not None
        cfg = site.config
        scenario = site.scenario
        seeds = random.Random(cfg.seed)
        self.links: dict[int, Link] = {}
        self._last: dict[int, Any] = {}
        self._rates = Rates()
        names = scenario.satellite_names
        for sat in scenario.satellites:
            up_model, down_model = rf_models(scenario, cfg, site.switches[sat.name], sat, seeds)
            up, down = plan.uplink(sat.name), plan.downlink(sat.name)
            self._add(up, up_model, seeds, "cltu", rf_ends(up_model, sat.name, uplink=True))
            self._add(
                down, down_model, seeds, "tm_cadu", rf_ends(down_model, sat.name, uplink=False)
            )
        for a, b in scenario.isl_pairs:
            for src, dst in ((names[a], names[b]), (names[b], names[a])):
                model = laser_model(scenario, cfg, src, dst, seeds)
                ends = _fixed_ends(sat_node(src), sat_node(dst))
                self._add(plan.isl(src, dst), model, seeds, "aos_cadu", ends)

    def _add(
        self,
        spec: Any,
        model: Any,
        seeds: random.Random,
        layer: str,
        ends: Callable[[], tuple[str, str]],
    ) -> None:
        send = self.wire.sender(spec.node_port)
        # the ends of each unit in flight, as they were when it left: the station
        # tracking the satellite may change (handover, LOS) before it arrives
        in_flight: dict[int, tuple[str, str]] = {}

        def deliver(d: Delivery) -> None:
            send(d.unit)
            if self.capture:
                src, dst = in_flight.pop(d.unit_id, None) or ends()
                self.site.sink.unit(layer, d.arrival_t_s, src, dst, d.unit)

        def note_ends(event: LinkEvent) -> None:
            if not self.capture:
                return
            if event.kind == "sent":
                in_flight[event.unit_id] = ends()
            elif event.kind == "dropped":
                in_flight.pop(event.unit_id, None)

        link = Link(
            spec.name,
            self.site.clock,
            model,
            IndependentErrors(seed=seeds.getrandbits(32)),
            on_delivery=deliver,
        )
        link.add_listener(functools.partial(self._note, spec.index))
        link.add_listener(note_ends)
        self.links[spec.index] = link

    def _note(self, index: int, event: LinkEvent) -> None:
        if event.kind == "sent" and event.conditions is not None:
            self._last[index] = event.conditions

    async def open(self) -> None:
        for spec in self.plan.links:
            link = self.links[spec.index]
            await self.wire.listen(spec.channel_port, link.send, f"channel_port ({spec.name})")

    def start(self) -> None:
        for link in self.links.values():
            link.start()

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()

    def status(self) -> dict[str, Any]:
        now = self.site.clock.now()
        out = []
        for spec in self.plan.links:
            link = self.links[spec.index]
            st = link.stats
            sent = st["sent"]
            d_sent = self._rates.delta(f"{spec.index}.sent", sent, now)
            d_dropped = self._rates.delta(f"{spec.index}.dropped", st["dropped"], now)
            d_corrupted = self._rates.delta(f"{spec.index}.corrupted", st["corrupted"], now)
            rate = self._rates.rate(f"{spec.index}.rate", sent, now)
            if not d_sent:
                continue
            cond = self._last.get(spec.index)
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
            out.append(entry)
        in_view = [
            self.site.look(name, now)
            for name in self.site.scenario.satellite_names
            if self.site.contacts.in_view(name, now)
        ]
        return {"links": out, "in_view": in_view}

    def counters(self) -> dict[str, Any]:
        kinds: dict[str, Counter[str]] = {}
        for spec in self.plan.links:
            kinds.setdefault(spec.kind, Counter()).update(self.links[spec.index].stats)
        return {kind: dict(c) for kind, c in kinds.items()}


def _fixed_ends(src: str, dst: str) -> Callable[[], tuple[str, str]]:
    return lambda: (src, dst)
