"""The emulator as long-running local processes with real sockets.

``linkstack daemon --scenario FILE ROLE``; the roles:

- ``channel``: the emulated space. It owns every link of the scenario (each
  satellite's S-band uplink and X-band downlink through the station tracking it,
  each direction of each laser link) as a :class:`channels.link.Link` with the
  physics of :mod:`channels.models`: geometry-driven delay, Doppler and receiver
  lock, bit errors in the real octets, losses and contact gaps, in wall-clock
  time. A unit arriving on a link's ingress port is emitted on that link and, if
  the physics lets it through, sent on to the receiver's port after its delay.
- ``ground``: the whole ground segment: mission control with one COP-1 channel
  (FOP-1) per satellite, the stations as its RF front ends, the ground queue (in
  SQLite, :mod:`linkstack.daemon.groundqueue`, surviving restarts) and the MQTT client
  (:mod:`linkstack.daemon.mqtt`) through which outside software asks and is answered.
- ``sat``: satellites: FARM-1 and TM, laser relays, the inference service with
  the scenario's model. All of the scenario's (one process, one model in memory),
  or those named with ``--name CS-01 --name CS-02`` (several sat daemons may
  share the constellation, each with whole ends of the port plan).
- ``all``: the three in one process, still over UDP on loopback.

Units between processes: one UDP datagram per CLTU, TM CADU or AOS CADU, behind a
link header that names its link, on a pair of ports per end (the ground, blocks of
satellites) whatever the number of links (:mod:`linkstack.daemon.wire`: the port plan). Within a
process, :mod:`linkstack.daemon.parts` builds the ground, satellites and channel
from :mod:`linkstack.runtime`'s pieces; :mod:`linkstack.daemon.run` runs a role
(clock, signals, start-up and shutdown); :mod:`linkstack.daemon.status` logs and
serves the status; :mod:`linkstack.daemon.ground` joins MQTT, the queue and the
report to mission control.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from linkstack.daemon.run import ROLES, Options, main

__all__ = ["ROLES", "Options", "main"]


def __getattr__(name: str) -> Any:
    """``run``'s names, imported when first asked for: run.py pulls in every part of the
    daemons (aiohttp, numba, the live view), which the commands that only read one
    small module of this package (broker_config, mqtt, wire) must not pay for at
    start-up (``linkstack replay`` of 40 CADUs: 1.8 s -> 1.5 s on the 2-core VM)."""
    if name in __all__:
        from linkstack.daemon import run  # noqa: PLC0415

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
