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
machines of :mod:`linkstack.ccsds` (through :mod:`linkstack.runtime.cop1_link`'s
``Ground`` and ``Spacecraft``) and by :mod:`linkstack.runtime.routing`; the physics by
:mod:`channels`.

How the pieces are modelled:

- **Mission control and stations.** One mission control holds one COP-1 virtual
  channel per satellite: one FOP-1 (``cop1_link.Ground``) on the ground and one
  FARM-1 (``cop1_link.Spacecraft``) on board, for the whole run. The stations are
  its RF front ends: each satellite's uplink and downlink are one :class:`Link`
  each, whose model (:class:`~linkstack.runtime.radio.SwitchedRfModel`) is the RF
  link of the station that tracks the satellite at the emission time
  (:class:`~linkstack.runtime.routing.StationSwitch`: it keeps a station until its
  pass ends, then takes the visible station whose pass lasts longest). A handover
  is therefore transparent to COP-1: frames in flight and the Sent Queue carry on,
  the new station's receivers acquire, and a frame lost meanwhile is retransmitted.
  Out of contact, FOP-1's T1 is held (``cop1_link.Ground``), so nothing is given up.
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
  laser link is sent again by the client once its answer is overdue against the round
  trip its route makes expected (``MissionControl.answer_due_t_s``).
- **Measurement.** A :class:`~linkstack.runtime.trace.Trace` records each hop of
  each query and answer (the first CLTU, AOS CADU or TM frame that carries it, and
  the instant it is complete at the far end); messages carry their key, handed
  over by whoever made them, and nobody decodes a message to follow it;
  :meth:`MissionControl.annotate` reads the hops of the copy that arrived into the
  query's :class:`payloads.timeline.Timeline`.

Capture: give :class:`Emulation` a :class:`CaptureSink`; every unit is reported
once, on the sender's side, when the link starts to emit it (CLTUs and their TC
frames, TM and AOS CADUs and their frames: :func:`~linkstack.runtime.radio.capture_emissions`),
and every Space Packet when it is handed to the framing layer. Without a sink
nothing is kept.

One assembly (:mod:`linkstack.daemon.parts` uses the same): a
:class:`~linkstack.runtime.site.Site` holds what the nodes of a process share;
:class:`SatelliteNode` and :class:`MissionControl` are built from their links;
:class:`~linkstack.runtime.radio.PhysicalLinks` builds every link with its physics
(here, connected to the nodes; in the channel daemon, to UDP ports). In the daemons
the nodes' links are paced transmitters to UDP instead, the ground resynchronises
COP-1 from FARM-1's CLCW (``UplinkConfig.resync_from_clcw``: the FARM-1 on board
outlives a restart of the ground), and a satellite transmits TM all through every
pass (:func:`transmit_passes` with an ``idle_interval_s``: at its busy pace while it
has traffic, a frame a second otherwise), since it cannot see the ground's FOP-1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import Counter
from typing import Any

from channels.link import Link
from channels.scenarios import scenario_by_name
from linkstack.ccsds.coding.chains import CaduCoding
from linkstack.errors import ConfigError
from linkstack.runtime.config import EmulationConfig
from linkstack.runtime.frames import check_scids
from linkstack.runtime.mission_control import MissionControl
from linkstack.runtime.radio import (
    PhysicalLinks,
    cadu_frame_of,
    capture_emissions,
    cltu_frame_of,
    downlink_ends,
    fixed_ends,
    uplink_ends,
)
from linkstack.runtime.satellite import SatelliteNode, transmit_passes
from linkstack.runtime.site import AOS_FRAME_LEN, CaptureSink, Site, sat_node
from linkstack.timebase import Clock
from payloads.backends import Backend, make_backend
from payloads.client import Client

__all__ = ["Emulation", "EmulationConfig"]


class Emulation:
    """A scenario running: mission control, satellites, links, services, a client.

    ``async with Emulation(clock, config) as emu: await emu.client.ask(...)``.
    Pass ``backend`` to share a loaded model (otherwise ``config.backend`` is made
    and loaded on entry); ``capture`` receives every unit (see :class:`CaptureSink`).
    """

    def __init__(
        self,
        clock: Clock,
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
        scid_refusal = check_scids(config.uplink.protocol, config.scid_base, n)
        if scid_refusal is not None:
            raise ConfigError("emulation", "scenario", scid_refusal)
        self.backend = backend
        self.site = site = Site(clock, config, self.scenario, sink=capture)
        self.trace = site.trace
        self.contacts = site.contacts
        links = PhysicalLinks(site)
        self.links = links.all
        names = self.scenario.satellite_names
        # each satellite's laser links out and in, grouped once (not a pass over every
        # link per satellite: 2,800 x 21,416 on planned-2800)
        isl_out: dict[str, dict[str, Link]] = {name: {} for name in names}
        isl_in: dict[str, list[str]] = {name: [] for name in names}
        for (src, dst), link in links.isls.items():
            isl_out[src][dst] = link
            isl_in[dst].append(src)
        self.satellites = {
            name: SatelliteNode(site, name, links.downlinks[name], isl_out[name], isl_in[name])
            for name in names
        }
        self.mcc = MissionControl(site, links.uplinks)
        self.client = Client(self.mcc, clock, config.client, seed=config.seed)
        self.mcc.deliver = self.client.on_message
        self.mcc.on_dispatched = self.client.answer_due
        # the far ends
        for name, node in self.satellites.items():
            links.uplinks[name].connect(node.on_uplink)
            links.downlinks[name].connect(functools.partial(self.mcc.on_downlink, name))
        for (src, dst), link in links.isls.items():
            link.connect(functools.partial(self.satellites[dst].on_isl, src))
        if capture is not None:
            self._capture(links, capture)
        self._tasks: list[asyncio.Task[None]] = []

    def _capture(self, links: PhysicalLinks, sink: CaptureSink) -> None:
        """Every unit and its frame, when it starts to radiate (the sender's side)."""
        uplink = self.config.uplink
        for name in self.satellites:
            capture_emissions(
                links.uplinks[name],
                sink,
                ("cltu", "tc_frame"),
                uplink_ends(name),
                cltu_frame_of(uplink.cltu_coding),
            )
            capture_emissions(
                links.downlinks[name],
                sink,
                ("tm_cadu", "tm_frame"),
                downlink_ends(name),
                cadu_frame_of(uplink.tm_frame_length, uplink.cadu_coding),
            )
        for (src, dst), link in links.isls.items():
            capture_emissions(
                link,
                sink,
                ("aos_cadu", "aos_frame"),
                fixed_ends(sat_node(src), sat_node(dst)),
                cadu_frame_of(AOS_FRAME_LEN, CaduCoding()),
            )

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
        computing = self.config.computing
        for name, node in self.satellites.items():
            if computing is None or name in computing:
                node.start_service(self.backend)
        for link in self.links:
            link.start()
        loop = asyncio.get_running_loop()
        for name, node in self.satellites.items():
            passes = transmit_passes(
                self.site,
                node,
                functools.partial(self._busy, name),
                self.config.uplink.clcw_interval_s,
                self.config.linger_s,
            )
            self._tasks.append(loop.create_task(passes, name=f"passes {name}"))
        self.mcc.start()

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

    def _busy(self, name: str) -> bool:
        """A satellite transmits TM while it has data or its COP-1 channel is busy."""
        return self.satellites[name].tm_has_data or self.mcc.busy(name)

    # -- figures ----------------------------------------------------------------------------------
    def onboard_figures(self, t_s: float) -> dict[str, dict[str, Any]]:
        """Each computing satellite's inferences, their compute time and its busy
        fraction from the start of the run to ``t_s``; with ``[power]`` on, its
        battery and energy too (:meth:`OnboardPower.figures`)."""
        out: dict[str, dict[str, Any]] = {}
        span_s = t_s - self.site.contacts.start_t_s
        for name, node in self.satellites.items():
            service = node.service
            if service is None:
                continue
            busy_s = service.busy_s
            figures: dict[str, Any] = {
                "inferences": service.stats["inferences"],
                "busy_s": busy_s,
                # of the time its inference slots (ServiceConfig.concurrency) were there
                "utilisation": (
                    busy_s / (span_s * service.config.concurrency) if span_s > 0 else 0.0
                ),
            }
            power = self.site.power(name)
            if power is not None:
                figures |= power.figures(t_s)
            out[name] = figures
        return out

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
