"""What the nodes of one process share, and how nodes are named in captures and traces.

A :class:`Site` is built once per process (the in-process :class:`Emulation`, or one
daemon) and handed to every node: the clock, the run's configuration and scenario,
the contact state, the :class:`~linkstack.runtime.routing.StationSwitch` of each
satellite (the one place that says which station tracks it), the trace, the capture
sink, a wake-up event per satellite for its pass loop, and, with SDLS on, the
:class:`~linkstack.runtime.security.Guards` its nodes' links take theirs from.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from channels.scenarios import Scenario
from linkstack.runtime.config import EmulationConfig
from linkstack.runtime.onboard_power import OnboardPower
from linkstack.runtime.routing import DEFAULT_CHUNK_S, ContactState, StationSwitch
from linkstack.runtime.security import Guards, ephemeral_keys

if TYPE_CHECKING:
    from linkstack.ccsds.sdls import Keyring
from linkstack.runtime.trace import Trace
from linkstack.timebase import Clock

MAX_PACKET_DATA = 4096  # octets of message per Space Packet (longer messages are segmented)
AOS_FRAME_LEN = 1115
LAYERS = (
    "cltu",
    "tm_cadu",
    "aos_cadu",
    "tc_frame",
    "tm_frame",
    "aos_frame",
    "uslp_frame",
    "space_packet",
)


class CaptureSink(Protocol):
    """Where units go to be captured (``linkstack.capture.pcap.PcapCapture`` is one).

    ``layer`` is one of :data:`LAYERS`; ``src`` and ``dst`` are node names
    (``"ground:Svalbard"``, ``"sat:CS-01"``); ``t_s`` is emulated seconds since the
    scenario epoch."""

    def unit(self, layer: str, t_s: float, src: str, dst: str, data: bytes) -> None: ...

    def close(self) -> None: ...


def sat_node(name: str) -> str:
    return f"sat:{name}"


def ground_node(station: str) -> str:
    return f"ground:{station}"


class Site:
    """The shared state of the nodes of one process (see the module docstring).

    ``contacts_from_t_s``: where the contact plan begins (a daemon starts it before
    its own start, so that a pass in progress has its real AOS); ``contacts_chunk_s``:
    how much of it is computed at a time (a daemon takes small chunks, ahead of need:
    a 6-hour chunk of the default scenario takes ~60 ms, during which nothing moves);
    ``keep_trace`` False: a process whose trace nobody reads keeps none."""

    def __init__(
        self,
        clock: Clock,
        config: EmulationConfig,
        scenario: Scenario,
        *,
        sink: CaptureSink | None = None,
        contacts_from_t_s: float | None = None,
        contacts_chunk_s: float = DEFAULT_CHUNK_S,
        keep_trace: bool = True,
        keys: Keyring | None = None,
    ) -> None:
        self.clock = clock
        self.config = config
        sdls = config.uplink.sdls
        # SDLS: the keys of a key file (daemons), or made for this run (in process)
        self.guards: Guards | None = None
        if sdls.enabled:
            keys = keys or ephemeral_keys(sdls)
            self.guards = Guards(sdls, keys, clock.now, protocol=config.uplink.protocol)
        self.scenario = scenario
        self.sink = sink
        self.trace = Trace(keep=keep_trace)
        self.contacts = ContactState(
            scenario,
            start_t_s=clock.now() if contacts_from_t_s is None else contacts_from_t_s,
            acquisition_s=config.uplink_rf.receiver.acquisition_s,
            pat_s=config.laser.pat_s,
            isl_max_range_m=config.laser.max_range_m,
            chunk_s=contacts_chunk_s,
            sunlight_of=self.powered(),
        )
        names = scenario.satellite_names
        self.switches = {name: StationSwitch(self.contacts, name) for name in names}
        self._scids = {name: config.scid_base + i for i, name in enumerate(names)}
        self._wake = {name: asyncio.Event() for name in names}
        self._power: dict[str, OnboardPower] = {}

    def powered(self) -> tuple[str, ...]:
        """The satellites whose battery gates their inferences: the computing ones,
        with ``[power]`` on; none otherwise."""
        if not self.config.power.enabled:
            return ()
        computing = self.config.computing
        return tuple(
            name for name in self.scenario.satellite_names if computing is None or name in computing
        )

    def power(self, satellite: str) -> OnboardPower | None:
        """``satellite``'s power system, made on first asking and kept for the run (a
        restart on board does not recharge the battery); None where it has none."""
        held = self._power.get(satellite)
        if held is None and satellite in self.contacts.sunlight_satellites:
            held = self._power[satellite] = OnboardPower(
                self.contacts, satellite, self.config.power, self.clock.now()
            )
        return held

    def scid(self, satellite: str) -> int:
        """The spacecraft id of ``satellite`` (``scid_base`` + its index in the scenario)."""
        return self._scids[satellite]

    def number(self, satellite: str) -> int:
        """Its node number in relay envelopes (1..N; the ground is 0)."""
        return self.contacts.nodes[satellite]

    def wake(self, satellite: str) -> None:
        """Tell ``satellite``'s pass loop that there is traffic."""
        self._wake[satellite].set()

    def wake_event(self, satellite: str) -> asyncio.Event:
        return self._wake[satellite]
