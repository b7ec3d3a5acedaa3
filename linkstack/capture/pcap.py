"""Packet captures of every link: a streaming pcap writer and a pcap reader.

Every unit the emulator moves (a CLTU, a CADU, a transfer frame, a Space Packet)
can be written to a classic libpcap file as the payload of one Ethernet/IPv4/UDP
datagram, so that Wireshark opens it, with the time stamp ``epoch + t_s``
(emulated or wall time). One UDP port per layer (source and destination port
alike) tells Wireshark, and the reader, what the payload is:

============== ===== ===================================================
layer          port  payload of the datagram
============== ===== ===================================================
cltu           47001 a CLTU (start sequence, BCH codeblocks, tail)
tm_cadu        47002 a TM CADU (ASM + randomized Reed-Solomon codeblock)
aos_cadu       47003 an AOS CADU (the same around an AOS frame)
tc_frame       47011 a TC Transfer Frame
tm_frame       47012 a TM Transfer Frame
aos_frame      47013 an AOS Transfer Frame
space_packet   47020 a Space Packet
============== ===== ===================================================

Wireshark's own ``ccsds`` dissector decodes the Space Packet port with
``-d udp.port==47020,ccsds``; ``wireshark/linkstack.lua`` decodes the others.

Addresses: each node name maps to an IPv4 address and a MAC, ground stations
(``ground:...``) in 10.1.0.0/16, satellites (``sat:...``) in 10.2.0.0/16, any
other name in 10.3.0.0/16. The host part comes from a SHA-256 of the name (the
last octet is never 0 or 255), so a name has the same address in every capture;
should two names of one capture hash to the same host, the later one takes the
next free host (so up to 65,024 names per class never collide) and only then
does an address depend on the order the names first appeared. The MAC is
``02:00`` (locally administered) followed by the four octets of the address.
The capture keeps the registry and writes it, with the epoch and the port
table, next to the pcap as ``<file>.nodes.json`` (on :meth:`PcapCapture.flush`
and :meth:`PcapCapture.close`); :func:`read_units` reads it to give names back.

Units above the MTU (1500 octets by default, so CADUs and TC frames too) go out
as IPv4 fragments, which Wireshark reassembles. A UDP datagram over IPv4 holds
at most 65,507 octets, so the largest Space Packets (65,508 to 65,542 octets)
cannot be captured: such a unit is counted in ``stats["dropped_too_large"]`` and
logged, never written cut. The UDP checksum is 0 (allowed on IPv4); the IPv4
header checksum is computed.

The writer builds the headers with :mod:`struct` from per-(source, destination,
layer) templates: it is on the path of every unit (see ``linkstack bench
capture``). Nothing here reads a clock; time is the caller's ``t_s``.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import logging
import os
import struct
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

from linkstack.errors import ConfigError, DecodeError, EncodeError, TruncatedError

log = logging.getLogger(__name__)

PORTS: dict[str, int] = {
    "cltu": 47001,
    "tm_cadu": 47002,
    "aos_cadu": 47003,
    "tc_frame": 47011,
    "tm_frame": 47012,
    "aos_frame": 47013,
    "space_packet": 47020,
}
LAYERS = frozenset(PORTS)
LAYER_BY_PORT: dict[int, str] = {port: layer for layer, port in PORTS.items()}

NODE_NETWORKS = {"ground:": 1, "sat:": 2}  # name prefix -> second octet of 10.x.0.0/16
OTHER_NETWORK = 3
HOSTS_PER_NETWORK = 256 * 254  # third octet 0..255, last octet 1..254

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_MAGIC = 0x0A0D0D0A
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
SNAPLEN = 262144  # the largest frame Wireshark reads, and what the writer announces

DEFAULT_MTU = 1500
MIN_MTU = 68  # RFC 791: every IPv4 host takes datagrams of 68 octets unfragmented
MAX_MTU = 65535
ETH_HEADER_LEN = 14
IPV4_HEADER_LEN = 20
UDP_HEADER_LEN = 8
MAX_UNIT_LEN = 65535 - IPV4_HEADER_LEN - UDP_HEADER_LEN  # 65,507
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_VLAN_ETHERTYPES = (0x8100, 0x88A8)
IP_PROTO_UDP = 17
TTL = 64

NODES_SUFFIX = ".nodes.json"
NODES_FORMAT = "linkstack-capture-nodes"

_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_IP_UDP = struct.Struct(">HHHHHH8sHHHH")  # IPv4 header (addresses as 8 octets) + UDP header
_IP_FRAG = struct.Struct(">HHHHHH8s")  # IPv4 header of a fragment
_MAX_PENDING_DATAGRAMS = 4096  # fragmented datagrams the reader waits for at once


def _nodes_path(path: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(path) + NODES_SUFFIX)


def _epoch_units(epoch: datetime, per_second: int) -> int:
    """``epoch`` in whole microseconds or nanoseconds since 1970 (naive = UTC)."""
    if not isinstance(epoch, datetime):
        raise ConfigError("capture", "epoch", f"must be a datetime, got {epoch!r}")
    if epoch.tzinfo is None:
        epoch = epoch.replace(tzinfo=UTC)
    delta = epoch - _UNIX_EPOCH
    us = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return us * (per_second // 1_000_000)


def _ones_complement_fold(s: int) -> int:
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
    return ~_ones_complement_fold(s) & 0xFFFF


# -- node names and addresses ---------------------------------------------------------


class Node(NamedTuple):
    name: str
    ip: str
    mac: str


class NodeRegistry:
    """Node names <-> IPv4 addresses and MACs (see the module docstring for the rule)."""

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


# -- the writer -------------------------------------------------------------------------


class PcapCapture:
    """Writes units as Ethernet/IPv4/UDP frames to a classic pcap file, streaming.

    ``path`` is a file name (the node registry goes next to it, in
    ``<path>.nodes.json``) or a binary file object (no side file). ``layers``
    keeps only those layers (None: all); a unit of another known layer is
    skipped and counted in ``stats["filtered"]``. ``nanoseconds`` writes the
    nanosecond-resolution variant of the format (magic a1b23c4d); the default
    is microseconds. ``mtu`` is the IP MTU above which datagrams are fragmented.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | BinaryIO,
        epoch: datetime,
        layers: set[str] | None = None,
        *,
        nanoseconds: bool = False,
        mtu: int = DEFAULT_MTU,
    ) -> None:
        if layers is not None:
            unknown = set(layers) - LAYERS
            if unknown:
                raise ConfigError(
                    "capture",
                    "layers",
                    f"unknown layer(s) {sorted(unknown)}; known: {sorted(LAYERS)}",
                )
        if not isinstance(mtu, int) or not MIN_MTU <= mtu <= MAX_MTU:
            raise ConfigError("capture", "mtu", f"must be {MIN_MTU}..{MAX_MTU}, got {mtu!r}")
        self.per_second = 1_000_000_000 if nanoseconds else 1_000_000
        self._epoch_units = _epoch_units(epoch, self.per_second)
        self.epoch = epoch if epoch.tzinfo is not None else epoch.replace(tzinfo=UTC)
        self.layers = frozenset(layers) if layers is not None else LAYERS
        self.mtu = mtu
        self._frag_len = (mtu - IPV4_HEADER_LEN) & ~7  # IP payload octets per fragment
        self.registry = NodeRegistry()
        self.stats: Counter[str] = Counter()
        self._templates: dict[tuple[str, str, int], tuple[bytes, int, bytes, int]] = {}
        self._ident = 0
        if isinstance(path, str | os.PathLike):
            self.path: Path | None = Path(path)
            self._file: BinaryIO = open(self.path, "wb", buffering=1 << 20)  # noqa: SIM115
            self._owns_file = True
        else:
            self.path = None
            self._file = path
            self._owns_file = False
        self._closed = False
        self._file.write(
            _GLOBAL_HEADER.pack(
                PCAP_MAGIC_NS if nanoseconds else PCAP_MAGIC_US,
                2,
                4,
                0,
                0,
                SNAPLEN,
                LINKTYPE_ETHERNET,
            )
        )

    # -- context manager ---------------------------------------------------------------
    def __enter__(self) -> PcapCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------
    def _template(self, src: str, dst: str, port: int) -> tuple[bytes, int, bytes, int]:
        """(Ethernet header, partial IPv4 checksum sum, the 8 address octets, port)."""
        src_ip, src_mac = self.registry.addresses(src)
        dst_ip, dst_mac = self.registry.addresses(dst)
        eth = dst_mac + src_mac + ETHERTYPE_IPV4.to_bytes(2, "big")
        addrs = src_ip + dst_ip
        partial = 0x4500 + ((TTL << 8) | IP_PROTO_UDP) + sum(struct.unpack(">4H", addrs))
        entry = (eth, partial, addrs, port)
        self._templates[(src, dst, port)] = entry
        return entry

    def unit(self, layer: str, t_s: float, src: str, dst: str, data: bytes) -> None:
        """Write one unit of ``layer`` sent by ``src`` to ``dst`` at ``epoch + t_s``."""
        port = PORTS.get(layer)
        if port is None:
            raise ConfigError(
                "capture", "layer", f"unknown layer {layer!r}; known: {sorted(LAYERS)}"
            )
        if self._closed:
            raise ConfigError("capture", "state", "the capture is closed")
        if layer not in self.layers:
            self.stats["filtered"] += 1
            return
        n = len(data)
        if n > MAX_UNIT_LEN:
            self.stats["dropped_too_large"] += 1
            log.warning(
                "capture: a %d-octet %s unit exceeds the %d octets of a UDP datagram "
                "over IPv4; not captured",
                n,
                layer,
                MAX_UNIT_LEN,
            )
            return
        try:
            ts = self._epoch_units + round(t_s * self.per_second)
        except (ValueError, OverflowError, TypeError):
            raise EncodeError("capture", "t_s", f"must be a finite number, got {t_s!r}") from None
        sec, frac = divmod(ts, self.per_second)
        if not 0 <= sec <= 0xFFFFFFFF:
            raise EncodeError(
                "capture", "t_s", f"epoch + t_s must fall in 1970..2106, got {sec} s since 1970"
            )
        tpl = self._templates.get((src, dst, port)) or self._template(src, dst, port)
        eth, partial, addrs, port = tpl
        ident = self._ident
        self._ident = (ident + 1) & 0xFFFF
        udp_len = UDP_HEADER_LEN + n
        total = IPV4_HEADER_LEN + udp_len
        write = self._file.write
        if total <= self.mtu:
            s = partial + total + ident
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            caplen = ETH_HEADER_LEN + total
            write(_RECORD.pack(sec, frac, caplen, caplen))
            write(eth)
            write(
                _IP_UDP.pack(
                    0x4500,
                    total,
                    ident,
                    0,
                    (TTL << 8) | IP_PROTO_UDP,
                    ~s & 0xFFFF,
                    addrs,
                    port,
                    port,
                    udp_len,
                    0,
                )
            )
            write(data)
            self.stats["frames"] += 1
        else:
            datagram = memoryview(struct.pack(">HHHH", port, port, udp_len, 0) + bytes(data))
            step = self._frag_len
            for off in range(0, udp_len, step):
                chunk = datagram[off : off + step]
                flags = ((off + step < udp_len) << 13) | (off >> 3)
                length = IPV4_HEADER_LEN + len(chunk)
                s = _ones_complement_fold(partial + length + ident + flags)
                caplen = ETH_HEADER_LEN + length
                write(_RECORD.pack(sec, frac, caplen, caplen))
                write(eth)
                write(
                    _IP_FRAG.pack(
                        0x4500,
                        length,
                        ident,
                        flags,
                        (TTL << 8) | IP_PROTO_UDP,
                        ~s & 0xFFFF,
                        addrs,
                    )
                )
                write(chunk)
                self.stats["frames"] += 1
            self.stats["fragmented_units"] += 1
        self.stats["units"] += 1
        self.stats["octets"] += n

    # -- the node registry and closing ------------------------------------------------
    def nodes_document(self) -> dict:
        """What goes into the side file: format, epoch, resolution, ports, nodes."""
        return {
            "format": NODES_FORMAT,
            "version": 1,
            "epoch": self.epoch.isoformat(),
            "timestamp_resolution": "ns" if self.per_second == 1_000_000_000 else "us",
            "ports": dict(PORTS),
            "nodes": [node._asdict() for node in self.registry.nodes()],
        }

    def flush(self) -> None:
        """Push what is buffered to the file and rewrite the side file."""
        if self._closed:
            return
        self._file.flush()
        if self.path is not None:
            side = _nodes_path(self.path)
            tmp = side.with_name(side.name + ".tmp")
            tmp.write_text(json.dumps(self.nodes_document(), indent=1) + "\n")
            tmp.replace(side)

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._owns_file:
            self._file.close()


# -- the reader ---------------------------------------------------------------------------


class CapturedUnit(NamedTuple):
    layer: str
    t_s: float  # seconds since the reader's epoch
    src: str  # node name, or the dotted address when the name is not known
    dst: str
    data: bytes


class _Fragments:
    __slots__ = ("parts", "total")

    def __init__(self) -> None:
        self.parts: dict[int, bytes] = {}
        self.total: int | None = None


def _load_nodes(path: Path) -> tuple[NodeRegistry, datetime | None]:
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict) or doc.get("format") != NODES_FORMAT:
            raise ValueError(f"not a {NODES_FORMAT} document")
        registry = NodeRegistry.from_nodes(doc["nodes"])
        epoch = datetime.fromisoformat(doc["epoch"]) if doc.get("epoch") else None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise DecodeError("pcap", "nodes", f"cannot read {path}: {exc}") from None
    return registry, epoch


class PcapReader:
    """Reads the units back out of a classic pcap file: what :class:`PcapCapture`
    wrote, or any capture of UDP datagrams on the layer ports (Ethernet with or
    without VLAN tags, raw IP, Linux cooked v1/v2, BSD loopback; IPv4, and IPv6
    without extension headers), reassembling IPv4 fragments.

    A datagram whose destination port (else source port) is in the port table is
    a unit of that layer; other traffic is skipped and counted in ``stats``.
    Anything malformed (the file header, a record, an IPv4 header or checksum,
    inconsistent fragments, a UDP length) raises :class:`DecodeError` with layer
    "pcap" naming the record and the rule. A fragmented datagram still
    incomplete at the end of the file is counted (``incomplete_datagrams``).

    ``t_s`` is counted from ``epoch``: by default the epoch of the side file
    ``<path>.nodes.json`` when there is one, else 1970-01-01 UTC. The side file
    also gives node names back; without it, ``src`` and ``dst`` are addresses.
    ``ports`` replaces the port table (port -> layer name) for captures made with
    other ports.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO | bytes,
        epoch: datetime | None = None,
        registry: NodeRegistry | None = None,
        ports: dict[int, str] | None = None,
    ) -> None:
        self.stats: Counter[str] = Counter()
        self._ports = LAYER_BY_PORT if ports is None else ports
        self.registry = registry or NodeRegistry()
        self._source = source
        side_epoch = None
        if isinstance(source, str | os.PathLike) and registry is None:
            side = _nodes_path(source)
            if side.exists():
                self.registry, side_epoch = _load_nodes(side)
        self.epoch = epoch or side_epoch or _UNIX_EPOCH

    def __iter__(self) -> Iterator[CapturedUnit]:
        source = self._source
        if isinstance(source, bytes | bytearray | memoryview):
            yield from self._read(io.BytesIO(bytes(source)))
        elif isinstance(source, str | os.PathLike):
            with open(source, "rb") as f:
                yield from self._read(f)
        else:
            yield from self._read(source)

    # -- the file --------------------------------------------------------------------
    def _read(self, f: BinaryIO) -> Iterator[CapturedUnit]:
        head = f.read(_GLOBAL_HEADER.size)
        if len(head) < 4:
            raise TruncatedError("pcap", "header", f"needs 24 octets, got {len(head)}")
        magic_le = int.from_bytes(head[:4], "little")
        magic_be = int.from_bytes(head[:4], "big")
        if PCAPNG_MAGIC in (magic_le, magic_be):
            raise DecodeError(
                "pcap", "magic", "this is a pcapng file; save it as classic pcap (editcap -F pcap)"
            )
        if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            order = "<"
            magic = magic_le
        elif magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            order = ">"
            magic = magic_be
        else:
            raise DecodeError(
                "pcap", "magic", f"not a pcap file: magic {head[:4].hex()}, expected a1b2c3d4"
            )
        if len(head) < _GLOBAL_HEADER.size:
            raise TruncatedError("pcap", "header", f"needs 24 octets, got {len(head)}")
        _, major, minor, _, _, _, linktype = struct.unpack(order + "IHHiIII", head)
        if major != 2:
            raise DecodeError("pcap", "version", f"format version must be 2.x, got {major}.{minor}")
        linktype &= 0xFFFF  # the upper bits carry FCS information
        if linktype not in _LINK_PARSERS:
            raise DecodeError(
                "pcap",
                "linktype",
                f"link type {linktype} is not supported (Ethernet 1, raw IP 101/228/229, "
                "Linux cooked 113/276, BSD loopback 0)",
            )
        link = _LINK_PARSERS[linktype]
        per_second = 1_000_000_000 if magic == PCAP_MAGIC_NS else 1_000_000
        epoch_units = _epoch_units(self.epoch, per_second)
        record = struct.Struct(order + "IIII")
        pending: dict[tuple, _Fragments] = {}
        index = 0
        while True:
            rh = f.read(record.size)
            if not rh:
                break
            index += 1
            where = f"record {index}"
            if len(rh) < record.size:
                raise TruncatedError(
                    "pcap", "record", f"{where}: header needs 16 octets, the file has {len(rh)}"
                )
            sec, frac, incl, orig = record.unpack(rh)
            if frac >= per_second:
                raise DecodeError(
                    "pcap",
                    "timestamp",
                    f"{where}: fraction {frac} is not below one second ({per_second})",
                )
            if incl > SNAPLEN:
                raise DecodeError(
                    "pcap", "incl_len", f"{where}: {incl} octets, more than {SNAPLEN}"
                )
            if incl > orig:
                raise DecodeError(
                    "pcap", "incl_len", f"{where}: captured {incl} octets of a {orig}-octet frame"
                )
            frame = f.read(incl)
            if len(frame) < incl:
                raise TruncatedError(
                    "pcap", "record", f"{where}: announces {incl} octets, the file has {len(frame)}"
                )
            self.stats["records"] += 1
            got = link(frame)
            if got is None:
                self.stats["not_ip"] += 1
                continue
            version, off = got
            if version == 4:
                datagram = self._ipv4(frame, off, incl < orig, where, pending)
            else:
                datagram = self._ipv6(frame, off, incl < orig, where)
            if datagram is None:
                continue
            src, dst, payload = datagram
            unit = self._udp(payload, where)
            if unit is None:
                continue
            layer, data = unit
            t_s = (sec * per_second + frac - epoch_units) / per_second
            self.stats["units"] += 1
            yield CapturedUnit(layer, t_s, self._name(src), self._name(dst), data)
        self.stats["incomplete_datagrams"] += len(pending)

    def _name(self, ip: bytes) -> str:
        if len(ip) == 4:
            name = self.registry.name_of(ip)
            if name is not None:
                return name
            return str(ipaddress.IPv4Address(ip))
        return str(ipaddress.IPv6Address(ip))

    # -- IP and UDP --------------------------------------------------------------------
    def _ipv4(
        self, frame: bytes, off: int, snapped: bool, where: str, pending: dict[tuple, _Fragments]
    ) -> tuple[bytes, bytes, bytes] | None:
        avail = len(frame) - off
        if avail < IPV4_HEADER_LEN:
            raise TruncatedError(
                "pcap", "ipv4", f"{where}: header needs 20 octets, the frame has {avail}"
            )
        vihl, total, ident, flags_off, proto = (
            frame[off],
            int.from_bytes(frame[off + 2 : off + 4], "big"),
            int.from_bytes(frame[off + 4 : off + 6], "big"),
            int.from_bytes(frame[off + 6 : off + 8], "big"),
            frame[off + 9],
        )
        if proto != IP_PROTO_UDP:
            self.stats["not_udp"] += 1
            return None
        ihl = 4 * (vihl & 0x0F)
        if vihl >> 4 != 4 or ihl < IPV4_HEADER_LEN:
            raise DecodeError(
                "pcap", "ipv4.ihl", f"{where}: version/IHL octet {vihl:#04x}, expected 0x45..0x4f"
            )
        if total < ihl:
            raise DecodeError(
                "pcap", "ipv4.total_length", f"{where}: {total} octets, less than the header {ihl}"
            )
        if total > avail:
            raise TruncatedError(
                "pcap",
                "ipv4.total_length",
                f"{where}: the datagram has {total} octets, the frame holds {avail}"
                + (" (cut by the capture's snap length)" if snapped else ""),
            )
        if ipv4_checksum(frame[off : off + ihl]) != 0:
            raise DecodeError("pcap", "ipv4.checksum", f"{where}: header checksum is wrong")
        src, dst = frame[off + 12 : off + 16], frame[off + 16 : off + 20]
        payload = frame[off + ihl : off + total]
        more = bool(flags_off & 0x2000)
        frag_off = (flags_off & 0x1FFF) * 8
        if flags_off & 0x8000:
            raise DecodeError("pcap", "ipv4.flags", f"{where}: the reserved flag bit is set")
        if not more and frag_off == 0:
            return src, dst, payload
        # a fragment
        if more and len(payload) % 8:
            raise DecodeError(
                "pcap",
                "ipv4.fragment",
                f"{where}: a fragment with more to follow carries {len(payload)} octets, "
                "not a multiple of 8",
            )
        end = frag_off + len(payload)
        if ihl + end > 65535:
            raise DecodeError(
                "pcap", "ipv4.fragment", f"{where}: fragments reach octet {end}, beyond 65,535"
            )
        key = (src, dst, ident, proto)
        entry = pending.get(key)
        if entry is None:
            if len(pending) >= _MAX_PENDING_DATAGRAMS:
                pending.pop(next(iter(pending)))  # the oldest waits no longer
                self.stats["incomplete_datagrams"] += 1
            entry = pending[key] = _Fragments()
        old = entry.parts.get(frag_off)
        if old is not None and old != payload:
            raise DecodeError(
                "pcap", "ipv4.fragment", f"{where}: two fragments at offset {frag_off} differ"
            )
        entry.parts[frag_off] = payload
        if not more:
            if entry.total is not None and entry.total != end:
                raise DecodeError(
                    "pcap",
                    "ipv4.fragment",
                    f"{where}: last fragments disagree on the length ({entry.total}, {end})",
                )
            entry.total = end
        if entry.total is None:
            return None
        assembled = bytearray()
        for start in sorted(entry.parts):
            piece = entry.parts[start]
            if start > len(assembled):
                return None  # a hole: wait for more
            seen = assembled[start : start + len(piece)]
            if piece[: len(seen)] != seen:
                raise DecodeError(
                    "pcap", "ipv4.fragment", f"{where}: overlapping fragments disagree"
                )
            assembled += piece[len(seen) :]
        if len(assembled) != entry.total:
            raise DecodeError(
                "pcap",
                "ipv4.fragment",
                f"{where}: fragments run to octet {len(assembled)}, past the last "
                f"fragment's end {entry.total}",
            )
        del pending[key]
        self.stats["reassembled"] += 1
        return src, dst, bytes(assembled)

    def _ipv6(
        self, frame: bytes, off: int, snapped: bool, where: str
    ) -> tuple[bytes, bytes, bytes] | None:
        avail = len(frame) - off
        if avail < 40:
            raise TruncatedError(
                "pcap", "ipv6", f"{where}: header needs 40 octets, the frame has {avail}"
            )
        if frame[off] >> 4 != 6:
            raise DecodeError("pcap", "ipv6.version", f"{where}: version {frame[off] >> 4}, not 6")
        length = int.from_bytes(frame[off + 4 : off + 6], "big")
        if frame[off + 6] != IP_PROTO_UDP:
            self.stats["not_udp"] += 1  # other protocols, and extension headers
            return None
        if 40 + length > avail:
            raise TruncatedError(
                "pcap",
                "ipv6.payload_length",
                f"{where}: the payload has {length} octets, the frame holds {avail - 40}"
                + (" (cut by the capture's snap length)" if snapped else ""),
            )
        return (
            frame[off + 8 : off + 24],
            frame[off + 24 : off + 40],
            frame[off + 40 : off + 40 + length],
        )

    def _udp(self, payload: bytes, where: str) -> tuple[str, bytes] | None:
        if len(payload) < UDP_HEADER_LEN:
            raise TruncatedError(
                "pcap", "udp", f"{where}: header needs 8 octets, the datagram has {len(payload)}"
            )
        sport, dport, length = struct.unpack_from(">HHH", payload)
        layer = self._ports.get(dport) or self._ports.get(sport)
        if layer is None:
            self.stats["other_ports"] += 1
            return None
        if not UDP_HEADER_LEN <= length <= len(payload):
            raise DecodeError(
                "pcap",
                "udp.length",
                f"{where}: length field {length}, the datagram carries {len(payload)} octets",
            )
        if length == UDP_HEADER_LEN:
            self.stats["empty_datagrams"] += 1
            return None
        return layer, payload[UDP_HEADER_LEN:length]


def _link_ethernet(frame: bytes) -> tuple[int, int] | None:
    off = 12
    for _ in range(3):
        if len(frame) < off + 2:
            return None
        ethertype = int.from_bytes(frame[off : off + 2], "big")
        if ethertype not in _VLAN_ETHERTYPES:
            break
        off += 4
    off += 2
    if ethertype == ETHERTYPE_IPV4:
        return 4, off
    if ethertype == ETHERTYPE_IPV6:
        return 6, off
    return None


def _link_raw(frame: bytes) -> tuple[int, int] | None:
    if not frame:
        return None
    version = frame[0] >> 4
    return (version, 0) if version in (4, 6) else None


def _link_null(frame: bytes) -> tuple[int, int] | None:
    if len(frame) < 4:
        return None
    family = int.from_bytes(frame[:4], "little")
    if family > 0xFFFF:  # written in the other byte order
        family = int.from_bytes(frame[:4], "big")
    if family == 2:
        return 4, 4
    if family in (10, 24, 28, 30):
        return 6, 4
    return None


def _link_sll(frame: bytes) -> tuple[int, int] | None:
    if len(frame) < 16:
        return None
    proto = int.from_bytes(frame[14:16], "big")
    return (4, 16) if proto == ETHERTYPE_IPV4 else (6, 16) if proto == ETHERTYPE_IPV6 else None


def _link_sll2(frame: bytes) -> tuple[int, int] | None:
    if len(frame) < 20:
        return None
    proto = int.from_bytes(frame[0:2], "big")
    return (4, 20) if proto == ETHERTYPE_IPV4 else (6, 20) if proto == ETHERTYPE_IPV6 else None


_LINK_PARSERS = {
    LINKTYPE_ETHERNET: _link_ethernet,
    LINKTYPE_RAW: _link_raw,
    LINKTYPE_IPV4: _link_raw,
    LINKTYPE_IPV6: _link_raw,
    LINKTYPE_NULL: _link_null,
    LINKTYPE_LINUX_SLL: _link_sll,
    LINKTYPE_LINUX_SLL2: _link_sll2,
}


def read_units(
    source: str | os.PathLike[str] | BinaryIO | bytes, epoch: datetime | None = None
) -> Iterator[CapturedUnit]:
    """Every unit of a pcap file, in file order: (layer, t_s, src, dst, data).

    See :class:`PcapReader` (which also keeps counters of what it skipped).
    """
    return iter(PcapReader(source, epoch))
