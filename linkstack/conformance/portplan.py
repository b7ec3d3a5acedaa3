"""The daemons' port plan as a capture's port table: which link, layer and view each
UDP port of a scenario carries.

A capture of running daemons (``tshark -i lo``) holds their units on the ports of the
port plan (:mod:`linkstack.daemon.wire`), one port per link and end, not on the one
port per layer of linkstack's own captures, and every address is 127.0.0.1. The port
says it all: link ``k`` of the scenario is an uplink (CLTUs), a downlink (TM CADUs)
or a laser link (AOS CADUs) from one node to another, and its units are seen twice,
going to ``daemon.channel_port + k`` as the sender emitted them (view ``sent``) and
to ``daemon.node_port + k`` as the channel delivered them, after the link's bit
errors and losses (view ``delivered``). With ``[gateway]`` on UDP and frames (not
CLTUs or CADUs, which the link's own ports show already), the frames the ground
daemon exchanges with an outside mission control system are frame records of those
links: TC frames in on ``gateway.port + k`` (before their CLTU goes up), TM frames
out to ``gateway.peer_port + k`` (after their CADU came down), satellite ``k``, in
either view.

Names are those of linkstack's captures: ``sat:NAME``, and ``ground:GROUND`` (the
scenario's ``[ground] name``: the port plan does not say which station radiated).

``linkstack conform --scenario FILE`` and ``linkstack replay --scenario FILE`` read
captures with it (the replay is handed :func:`plan_ports` by the command line, as the
capture layer may not import the daemons'). The daemons' modules are imported when
a plan is made, so that importing this module costs the command line nothing.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from linkstack.capture.reader import PortRole

SENT, DELIVERED = "sent", "delivered"
VIEWS = (SENT, DELIVERED)
DEFAULT_VIEW = SENT
_UNIT_LAYER = {"uplink": "cltu", "downlink": "tm_cadu", "isl": "aos_cadu"}


class PlanPorts(NamedTuple):
    """A scenario's port table: ``ports`` (port -> :class:`PortRole`) and a line that
    says where it came from."""

    ports: dict[int, PortRole]
    text: str


def plan_ports(scenario: str | os.PathLike[str] | None) -> PlanPorts:
    """The port table of a scenario file's daemons (None: the shipped default).
    Raises :class:`~linkstack.errors.ConfigError` (a scenario error) when the file
    cannot be read."""
    from linkstack.daemon.wire import GROUND, PortPlan  # noqa: PLC0415 - see the docstring
    from linkstack.runtime import scenario as scenario_file  # noqa: PLC0415

    settings = (
        scenario_file.load(scenario) if scenario is not None else scenario_file.load_default()
    )
    d = settings.daemon
    plan = PortPlan(settings.scenario, d.host, d.channel_port, d.node_port)
    ground = f"ground:{settings.ground.name}"

    def node(name: str) -> str:
        return ground if name == GROUND else f"sat:{name}"

    ports: dict[int, PortRole] = {}
    for spec in plan.links:
        layer = _UNIT_LAYER[spec.kind]
        ends = (node(spec.src), node(spec.dst))
        ports[spec.channel_port] = PortRole(layer, *ends, SENT)
        ports[spec.node_port] = PortRole(layer, *ends, DELIVERED)
    last = len(plan.links) - 1
    text = (
        f"port plan of {settings.source}: {len(plan.links)} links, "
        f"sent to {d.channel_port}-{d.channel_port + last}, "
        f"delivered to {d.node_port}-{d.node_port + last}"
    )
    gw = settings.gateway
    if gw.enabled and gw.transport == "udp":
        names = list(settings.scenario.satellite_names)
        up, down = gw.uplink == "tc_frame", gw.downlink == "tm_frame"
        for name in gw.satellites or names:
            k, sat = names.index(name), node(name)
            if up:
                ports[gw.port_of(k)] = PortRole("tc_frame", ground, sat)
            if down:
                ports[gw.peer_port_of(k)] = PortRole("tm_frame", sat, ground)
        if up:
            text += f"; gateway TC frames in on {gw.port}+k"
        if down:
            text += f"; gateway TM frames out to {gw.peer_port}+k"
    return PlanPorts(ports, text)
