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
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from channels.errors import IndependentErrors
from channels.optical import OPTICAL_ISL_100G, OpticalTerminal
from channels.rf import S_BAND_UPLINK, X_BAND_DOWNLINK, RfLinkConfig
from channels.scenarios import Scenario, scenario_by_name
from linkstack.ccsds.coding.chains import CaduCoding
from linkstack.errors import ConfigError
from linkstack.runtime.cop1_link import Spacecraft, UplinkConfig
from linkstack.runtime.mission_control import Cop1Channel, MissionControl
from linkstack.runtime.radio import (
    RadioLink,
    StationSwitch,
    cadu_frame_of,
    cltu_frame_of,
    laser_model,
    rf_ends,
    rf_models,
)
from linkstack.runtime.routing import ContactState
from linkstack.runtime.satellite import SatelliteNode, transmit_passes
from linkstack.runtime.site import AOS_FRAME_LEN, CaptureSink
from linkstack.runtime.trace import Trace
from payloads.backends import Backend, make_backend
from payloads.client import Client, ClientConfig
from payloads.service import InferenceService, ServiceConfig

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
