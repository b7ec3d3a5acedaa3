"""The daemons' port plan as a capture's port table: which link, layer and view each
UDP port of a scenario carries.

A capture of running daemons (``tshark -i lo``) holds their units on the ports of the
port plan (:mod:`linkstack.daemon.wire`), one pair of ports per end (the ground, a
block of satellites), not on the one port per layer of linkstack's own captures, and
every address is 127.0.0.1. The port and the datagram's link header say it all: link
``k`` of the scenario is an uplink (CLTUs), a downlink (TM CADUs) or a laser link (AOS
CADUs) from one node to another, and its units are seen twice, going to the
channel's port of its sender's end (``daemon.channel_port + j``) as the sender
emitted them (view ``sent``) and to its receiver's end's node port
(``daemon.node_port + j``) as the channel delivered them, after the link's bit
errors and losses (view ``delivered``): each such port is a
:class:`~linkstack.capture.reader.LinkPorts`, link index -> role. With ``[gateway]``
on UDP and frames (not
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

from linkstack.capture.reader import LinkPorts, PortRole

SENT, DELIVERED = "sent", "delivered"
VIEWS = (SENT, DELIVERED)
DEFAULT_VIEW = SENT
_UNIT_LAYER = {"uplink": "cltu", "downlink": "tm_cadu", "isl": "aos_cadu"}


class PlanPorts(NamedTuple):
    """A scenario's port table: ``ports`` (port -> :class:`LinkPorts` on the daemons'
    ports, :class:`PortRole` on the gateway's) and a line that says where it came from."""

    ports: dict[int, PortRole | LinkPorts]
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
    plan = PortPlan.of(settings.scenario, d)
    ground = f"ground:{settings.ground.name}"

    def node(name: str) -> str:
        return ground if name == GROUND else f"sat:{name}"

    sent: dict[int, dict[int, PortRole]] = {}
    delivered: dict[int, dict[int, PortRole]] = {}
    for spec in plan.links:
        layer = _UNIT_LAYER[spec.kind]
        ends = (node(spec.src), node(spec.dst))
        sent.setdefault(spec.channel_port, {})[spec.index] = PortRole(layer, *ends, SENT)
        delivered.setdefault(spec.node_port, {})[spec.index] = PortRole(layer, *ends, DELIVERED)
    ports: dict[int, PortRole | LinkPorts] = {
        port: LinkPorts(links) for port, links in (sent | delivered).items()
    }
    ranges = plan.ranges()
    (c0, c1), (n0, n1) = ranges["channel_port"], ranges["node_port"]
    text = (
        f"port plan of {settings.source}: {len(plan.links)} links on {len(plan.ends)} ends, "
        f"sent to {c0}-{c1}, delivered to {n0}-{n1}"
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
