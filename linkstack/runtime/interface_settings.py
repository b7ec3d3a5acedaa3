"""The ``[gateway]`` and ``[radio]`` tables of a scenario file: the interfaces where
outside software meets the daemons (``linkstack/daemon/gateway.py``,
``linkstack/daemon/flight_radio.py``), their settings and how they are read and
checked (ports clear of the daemons' own blocks, APIDs and virtual channels not
linkstack's). The rest of the file: :mod:`linkstack.runtime.scenario`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from linkstack.ccsds.spp import IDLE_APID
from linkstack.runtime.routing import RELAY_APID
from linkstack.runtime.security import SDLS_EP_APID
from linkstack.tomlcheck import Table
from payloads.messages import ANSWER_APID, QUERY_APID

RADIO_TRANSPORTS = ("udp", "tcp")
GATEWAY_TRANSPORTS = (*RADIO_TRANSPORTS, "mqtt")  # MQTT: through the ground daemon's broker
MQTT_REPEAT_WINDOW = 64  # packets of an APID whose repeats a gateway on MQTT drops
GATEWAY_UPLINK_UNITS = ("tc_frame", "cltu", "packet")
GATEWAY_DOWNLINK_UNITS = ("tm_frame", "cadu", "packet")
# queries, answers, relayed messages, idle packets: never outside software's
LINKSTACK_APIDS = frozenset((QUERY_APID, ANSWER_APID, RELAY_APID, SDLS_EP_APID, IDLE_APID))


@dataclass(frozen=True)
class GatewaySettings:
    """``[gateway]``: the ground daemon's interface for an outside mission control
    system, one per satellite (``linkstack/daemon/gateway.py``)."""

    enabled: bool = False
    transport: str = "udp"  # "udp": one unit a datagram; "tcp": back to back; "mqtt": a message
    uplink: str = "tc_frame"  # what the outside system sends: TC frames, CLTUs or packets
    downlink: str = "tm_frame"  # TM frames (after sync, derandomizer, RS), CADUs or packets
    apids: tuple[int, ...] | None = None  # packets: the APIDs that travel (None: any not ours)
    host: str = "127.0.0.1"  # where this end listens, and (UDP) where downlink units go
    port: int = 47600  # satellite k of the scenario: port + k (UDP: TC in; TCP: the stream)
    peer_port: int = 47700  # UDP: downlink units to host:peer_port + k
    satellites: tuple[str, ...] | None = None  # None: every satellite
    # packets: a repeat of one of the last N packets of its APID (the same octets, so
    # the same sequence count) is dropped as a redelivery; None: 64 over MQTT (QoS 1 is
    # at-least-once), 0 (keep every packet) over UDP and TCP
    repeat_window: int | None = None
    # with [sdls] on, frames: "terminate" (the gateway protects the system's TC frames
    # and hands it TM frames verified and decrypted, as a station holding the keys
    # does) or "pass" (frames as on air: the system does SDLS itself, CryptoLib say)
    sdls: str = "terminate"

    def repeats_dropped(self) -> int:
        if self.repeat_window is not None:
            return self.repeat_window
        return MQTT_REPEAT_WINDOW if self.transport == "mqtt" else 0

    def port_of(self, index: int) -> int:
        return self.port + index

    def peer_port_of(self, index: int) -> int:
        return self.peer_port + index


RADIO_UPLINK_UNITS = ("tc_frame", "packet")
RADIO_DOWNLINK_UNITS = ("tm_frame", "packet")


@dataclass(frozen=True)
class RadioSettings:
    """``[radio]``: a satellite's radio for flight software of the user's, in the sat
    daemon (``linkstack/daemon/flight_radio.py``)."""

    enabled: bool = False
    transport: str = "udp"  # "udp": one unit a datagram; "tcp": units back to back
    uplink: str = "tc_frame"  # what flight software gets: TC frames of vcids, or packets
    downlink: str = "tm_frame"  # what it sends: TM frames of vcids, or packets
    vcids: tuple[int, ...] = (1,)  # frames: the flight software's virtual channels
    farm: str = "flight"  # tc_frame: whose FARM-1 takes those channels' frames, or "linkstack"
    apids: tuple[int, ...] | None = None  # packets: the APIDs that travel (None: any not ours)
    host: str = "127.0.0.1"
    port: int = 47800  # satellite k of the scenario: port + k (UDP: TM in; TCP: the stream)
    peer_port: int = 47900  # UDP: TC to host:peer_port + k
    satellites: tuple[str, ...] | None = None  # None: every satellite

    def port_of(self, index: int) -> int:
        return self.port + index


# -- reading ---------------------------------------------------------------------------


DEFAULT_SAT_PORTS = 16  # daemon.sat_ports: how many ends the satellites make at most


def end_count(satellites: int, sat_ports: int) -> int:
    """How many ends (pairs of ports: ``daemon.channel_port + j``, ``daemon.node_port +
    j``) the daemons' port plan has (``linkstack/daemon/wire.py``): the ground's, and
    ``min(sat_ports, satellites)`` blocks of consecutive satellites."""
    return 1 + min(sat_ports, satellites)


def daemon_blocks(
    channel_port: int, node_port: int, http_port: int, ends: int
) -> dict[str, tuple[int, int]]:
    """The port blocks the daemons take themselves, ``ends`` ports each side (the
    scenario reader checks them against each other): the interfaces' blocks are
    claimed against these."""
    taken = {
        "daemon.channel_port": (channel_port, channel_port + ends - 1),
        "daemon.node_port": (node_port, node_port + ends - 1),
    }
    if http_port:
        taken["daemon.http_port"] = (http_port, http_port + 3)
    return taken


def read_gateway(
    t: Table, names: list[str], taken: dict[str, tuple[int, int]], mqtt_enabled: bool
) -> GatewaySettings:
    base = GatewaySettings()
    out = replace(
        base,
        **_interface(
            t, base, GATEWAY_TRANSPORTS, GATEWAY_UPLINK_UNITS, GATEWAY_DOWNLINK_UNITS, names
        ),
        repeat_window=_repeat_window(t),
        sdls=t.choice("sdls", base.sdls, ("terminate", "pass"), "SDLS handling"),
    )
    t.done()
    if out.enabled and out.transport == "mqtt":
        if not mqtt_enabled:
            raise t.error("transport", "mqtt needs [mqtt] enabled = true (the ground's broker)")
    elif out.enabled:
        _claim_ports(t, "gateway", out.transport, out.port, out.peer_port, len(names), taken)
    return out


def read_radio(t: Table, names: list[str], taken: dict[str, tuple[int, int]]) -> RadioSettings:
    base = RadioSettings()
    out = replace(
        base,
        **_interface(t, base, RADIO_TRANSPORTS, RADIO_UPLINK_UNITS, RADIO_DOWNLINK_UNITS, names),
        vcids=_vcids(t, "vcids", base.vcids),
        farm=t.choice("farm", base.farm, ("flight", "linkstack"), "FARM-1"),
    )
    t.done()
    if out.enabled:
        _claim_ports(t, "radio", out.transport, out.port, out.peer_port, len(names), taken)
    return out


def _interface(
    t: Table,
    base: GatewaySettings | RadioSettings,
    transports: tuple[str, ...],
    uplinks: tuple[str, ...],
    downlinks: tuple[str, ...],
    names: list[str],
) -> dict[str, Any]:
    """The keys the gateway's and the radio's tables share."""
    return {
        "enabled": t.boolean("enabled", base.enabled),
        "transport": t.choice("transport", base.transport, transports, "transport"),
        "uplink": t.choice("uplink", base.uplink, uplinks, "uplink unit"),
        "downlink": t.choice("downlink", base.downlink, downlinks, "downlink unit"),
        "apids": _apids(t, "apids", base.apids),
        "host": t.text("host", base.host, empty=False),
        "port": t.integer("port", base.port, 1024, 65535),
        "peer_port": t.integer("peer_port", base.peer_port, 1024, 65535),
        "satellites": _satellites(t, base.satellites, names),
    }


def _repeat_window(t: Table) -> int | None:
    if not t.has("repeat_window"):
        t.raw("repeat_window")
        return None
    return t.integer("repeat_window", 0, 0, 16_384)


def _satellites(
    t: Table, default: tuple[str, ...] | None, names: list[str]
) -> tuple[str, ...] | None:
    out = t.strings("satellites", default, "a list of satellite names")
    for name in out or ():
        if name not in names:
            raise t.error("satellites", f"no satellite {name!r} in this scenario")
    return out


def _claim_ports(
    t: Table,
    table: str,
    transport: str,
    port: int,
    peer_port: int,
    n: int,
    taken: dict[str, tuple[int, int]],
) -> None:
    """Check an interface's blocks of ``n`` ports against those ``taken``, and take them."""
    ours = {"port": (port, port + n - 1)}
    if transport == "udp":
        ours["peer_port"] = (peer_port, peer_port + n - 1)
    for key, (lo, hi) in ours.items():
        if hi > 65535:
            raise t.error(key, f"the {n} satellites need ports {lo}..{hi}, past 65535")
        for other, (olo, ohi) in taken.items():
            if lo <= ohi and olo <= hi:
                raise t.error(key, f"ports {lo}..{hi} overlap {other}'s {olo}..{ohi}")
        taken[f"{table}.{key}"] = (lo, hi)


def _vcids(t: Table, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """Virtual channels of flight software: 1..6 (0 is linkstack's, 7 the idle one)."""
    raw = t.raw(key, default)
    if raw is default:
        return default
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw)
    ):
        raise t.error(key, f"must be a non-empty list of virtual channel ids, got {raw!r}")
    for vcid in raw:
        if not 1 <= vcid <= 6:
            raise t.error(key, f"must be 1..6 (0 is linkstack's, 7 the idle frames'), got {vcid}")
    return tuple(raw)


def _apids(t: Table, key: str, default: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """A list of APIDs of outside software: 0..2046, none of linkstack's own."""
    raw = t.raw(key, default)
    if raw is default:
        return default
    if not isinstance(raw, list) or not all(
        isinstance(a, int) and not isinstance(a, bool) for a in raw
    ):
        raise t.error(key, f"must be a list of APIDs (integers), got {raw!r}")
    for apid in raw:
        if not 0 <= apid <= 0x7FE:
            raise t.error(key, f"an APID is 0..2046 (0x7FF is idle), got {apid}")
        if apid in LINKSTACK_APIDS:
            raise t.error(
                key,
                f"APID {apid:#x} is linkstack's own (queries, answers, relays, SDLS management)",
            )
    return tuple(raw)
