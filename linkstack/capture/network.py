"""The network a capture is drawn on, shared by the writer and the reader.

One UDP port per layer (:data:`PORTS`, the table of :mod:`linkstack.capture.pcap`), one
IPv4 address and MAC per node name (:class:`NodeRegistry`, the rule is in
:mod:`linkstack.capture.pcap`), the RFC 791 header checksum, and the side file
``<capture>.nodes.json`` that keeps the names and the epoch next to a capture.
Pure functions and a registry; the only file this module reads is the side file,
in :func:`load_nodes`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from linkstack.errors import ConfigError, DecodeError
from linkstack.runtime.capture_ports import PORTS

LAYERS = frozenset(PORTS)
USLP_FRAME_LAYER = "uslp_frame"
# the frame layers of each frames protocol (runtime.frames.PROTOCOLS): a capture's side
# file lists the ports of its run's own, so that the default's stays as it was
FRAME_LAYERS: dict[str, frozenset[str]] = {
    "tm-tc-aos": frozenset({"tc_frame", "tm_frame", "aos_frame"}),
    "uslp": frozenset({USLP_FRAME_LAYER}),
}
DEFAULT_FRAMES = "tm-tc-aos"
USLP_VERSION = 0b1100  # a USLP frame's first four bits (TC and TM frames: 00.., AOS: 01..)


def is_uslp_frame(frame: bytes | bytearray | memoryview) -> bool:
    """Whether ``frame`` starts as a USLP frame does (its version number, 1100)."""
    return len(frame) > 0 and frame[0] >> 4 == USLP_VERSION


def protocol_ports(frames: str) -> dict[str, int]:
    """The ports of the layers a run of ``frames`` protocol writes (the side file's)."""
    others = set().union(*(v for k, v in FRAME_LAYERS.items() if k != frames))
    return {layer: port for layer, port in PORTS.items() if layer not in others}


LAYER_BY_PORT: dict[int, str] = {port: layer for layer, port in PORTS.items()}

NODE_NETWORKS = {"ground:": 1, "sat:": 2}  # name prefix -> second octet of 10.x.0.0/16
OTHER_NETWORK = 3
HOSTS_PER_NETWORK = 256 * 254  # third octet 0..255, last octet 1..254

ETH_HEADER_LEN = 14
IPV4_HEADER_LEN = 20
UDP_HEADER_LEN = 8
MAX_UNIT_LEN = 65535 - IPV4_HEADER_LEN - UDP_HEADER_LEN  # 65,507
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
IP_PROTO_UDP = 17

NODES_SUFFIX = ".nodes.json"
NODES_FORMAT = "linkstack-capture-nodes"

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def nodes_path(path: str | os.PathLike[str]) -> Path:
    """The side file of the capture at ``path``."""
    return Path(os.fspath(path) + NODES_SUFFIX)


def epoch_ticks(epoch: datetime, per_second: int) -> int:
    """``epoch`` in whole microseconds or nanoseconds since 1970 (naive = UTC)."""
    if not isinstance(epoch, datetime):
        raise ConfigError("capture", "epoch", f"must be a datetime, got {epoch!r}")
    if epoch.tzinfo is None:
        epoch = epoch.replace(tzinfo=UTC)
    delta = epoch - UNIX_EPOCH
    us = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return us * (per_second // 1_000_000)


def ones_complement_fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ipv4_checksum(header: bytes | bytearray | memoryview) -> int:
    """The RFC 791 header checksum of ``header`` (its checksum field read as is:
    0 while computing it, the stored value when checking, where 0 means right)."""
    n = len(header)
    s = sum(struct.unpack_from(f">{n // 2}H", header))
    if n % 2:
        s += header[-1] << 8
    return ~ones_complement_fold(s) & 0xFFFF


# -- node names and addresses ---------------------------------------------------------


class Node(NamedTuple):
    name: str
    ip: str
    mac: str


class NodeRegistry:
    """Node names <-> IPv4 addresses and MACs (see :mod:`linkstack.capture.pcap` for
    the rule)."""

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[bytes, bytes]] = {}
        self._by_ip: dict[bytes, str] = {}

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @staticmethod
    def network(name: str) -> int:
        """The second octet of the node's 10.x.0.0/16 network."""
        for prefix, net in NODE_NETWORKS.items():
            if name.startswith(prefix):
                return net
        return OTHER_NETWORK

    @staticmethod
    def preferred_host(name: str) -> int:
        """The host index (0..65,023) the name hashes to."""
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") % HOSTS_PER_NETWORK

    def addresses(self, name: str) -> tuple[bytes, bytes]:
        """(4-octet IPv4 address, 6-octet MAC) of ``name``, registering it if new."""
        got = self._by_name.get(name)
        if got is not None:
            return got
        if not isinstance(name, str):
            raise ConfigError("capture", "node", f"a node name must be a str, got {name!r}")
        net = self.network(name)
        host = self.preferred_host(name)
        for _ in range(HOSTS_PER_NETWORK):
            ip = bytes((10, net, host // 254, host % 254 + 1))
            if ip not in self._by_ip:
                break
            host = (host + 1) % HOSTS_PER_NETWORK
        else:
            raise ConfigError(
                "capture", "node", f"10.{net}.0.0/16 is full ({HOSTS_PER_NETWORK} nodes)"
            )
        mac = b"\x02\x00" + ip
        self._by_name[name] = (ip, mac)
        self._by_ip[ip] = name
        return ip, mac

    def ip(self, name: str) -> str:
        return str(ipaddress.IPv4Address(self.addresses(name)[0]))

    def mac(self, name: str) -> str:
        return self.addresses(name)[1].hex(":")

    def name_of(self, ip: str | bytes) -> str | None:
        """The node name of an address (dotted or 4 octets), or None."""
        if isinstance(ip, str):
            try:
                ip = ipaddress.IPv4Address(ip).packed
            except ValueError:
                return None
        return self._by_ip.get(bytes(ip))

    def nodes(self) -> list[Node]:
        return [
            Node(name, str(ipaddress.IPv4Address(ip)), mac.hex(":"))
            for name, (ip, mac) in self._by_name.items()
        ]

    @classmethod
    def from_nodes(cls, nodes: list[Node] | list[dict]) -> NodeRegistry:
        """Rebuild a registry from its :meth:`nodes` (as written to the side file)."""
        reg = cls()
        for node in nodes:
            name, ip = (node["name"], node["ip"]) if isinstance(node, dict) else node[:2]
            packed = ipaddress.IPv4Address(ip).packed
            reg._by_name[name] = (packed, b"\x02\x00" + packed)
            reg._by_ip[packed] = name
        return reg


def load_nodes(path: Path) -> tuple[NodeRegistry, datetime | None]:
    """The registry and the epoch of a side file; :class:`DecodeError` (layer "pcap",
    field "nodes") when it cannot be read."""
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict) or doc.get("format") != NODES_FORMAT:
            raise ValueError(f"not a {NODES_FORMAT} document")
        registry = NodeRegistry.from_nodes(doc["nodes"])
        epoch = datetime.fromisoformat(doc["epoch"]) if doc.get("epoch") else None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise DecodeError("pcap", "nodes", f"cannot read {path}: {exc}") from None
    return registry, epoch
