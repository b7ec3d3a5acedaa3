"""Packet captures of every link: the streaming pcap writer.

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
uslp_frame     47014 a USLP Transfer Frame (uplink, downlink and laser alike)
space_packet   47020 a Space Packet
============== ===== ===================================================

A run with ``frames.protocol = "uslp"`` writes its CLTUs and CADUs on the same ports
and the USLP frames inside them, on every kind of link, on ``uslp_frame``: the units'
ends say which link a frame is on. Its side file says ``"frames": "uslp"`` (absent:
TC, TM and AOS frames) and lists the ports of the layers of the run's protocol.

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
When the run's links were under SDLS, the side file also records their security
associations (``"sdls"``: each SA's public parameters and the managed parameters that
place its fields, never a key; :func:`linkstack.capture.sdls_view.links_document`), so
that ``linkstack replay`` and ``linkstack conform`` open the frames without being told.

Units above the MTU (1500 octets by default, so CADUs and TC frames too) go out
as IPv4 fragments, which Wireshark reassembles. A UDP datagram over IPv4 holds
at most 65,507 octets, so the largest Space Packets (65,508 to 65,542 octets)
cannot be captured: such a unit is counted in ``stats["dropped_too_large"]`` and
logged, never written cut. The UDP checksum is 0 (allowed on IPv4); the IPv4
header checksum is computed.

The writer builds the headers with :mod:`struct` from per-(source, destination,
layer) templates: it is on the path of every unit (see ``linkstack bench
capture``). Nothing here reads a clock; time is the caller's ``t_s``.

The port table, the node registry and the checksum live in
:mod:`linkstack.capture.network`, shared with the reader; the one reader, of pcap
and pcapng files, is :mod:`linkstack.capture.reader`. Both are importable from
here as well (:class:`PcapReader`, :func:`read_units`, :class:`CapturedUnit`, ...).
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from linkstack.capture.network import (
    DEFAULT_FRAMES,
    ETH_HEADER_LEN,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    FRAME_LAYERS,
    HOSTS_PER_NETWORK,
    IP_PROTO_UDP,
    IPV4_HEADER_LEN,
    LAYER_BY_PORT,
    LAYERS,
    MAX_UNIT_LEN,
    NODE_NETWORKS,
    NODES_FORMAT,
    NODES_SUFFIX,
    OTHER_NETWORK,
    PORTS,
    UDP_HEADER_LEN,
    USLP_FRAME_LAYER,
    Node,
    NodeRegistry,
    epoch_ticks,
    ipv4_checksum,
    nodes_path,
    ones_complement_fold,
    protocol_ports,
)
from linkstack.capture.reader import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PCAPNG_MAGIC,
    SNAPLEN,
    CapturedUnit,
    PcapReader,
    ReadProblem,
    read_units,
)
from linkstack.errors import ConfigError, EncodeError

if TYPE_CHECKING:
    from linkstack.capture.sdls_view import LinkSecurity

__all__ = [  # the writer, and what was always importable from here (the reader's too)
    "DEFAULT_MTU",
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "ETH_HEADER_LEN",
    "HOSTS_PER_NETWORK",
    "IPV4_HEADER_LEN",
    "IP_PROTO_UDP",
    "LAYERS",
    "LAYER_BY_PORT",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "MAX_MTU",
    "MAX_UNIT_LEN",
    "MIN_MTU",
    "NODES_FORMAT",
    "NODES_SUFFIX",
    "NODE_NETWORKS",
    "OTHER_NETWORK",
    "PCAPNG_MAGIC",
    "PCAP_MAGIC_NS",
    "PCAP_MAGIC_US",
    "PORTS",
    "SNAPLEN",
    "TTL",
    "UDP_HEADER_LEN",
    "CapturedUnit",
    "Node",
    "NodeRegistry",
    "PcapCapture",
    "PcapReader",
    "ReadProblem",
    "ipv4_checksum",
    "read_units",
]

log = logging.getLogger(__name__)

DEFAULT_MTU = 1500
MIN_MTU = 68  # RFC 791: every IPv4 host takes datagrams of 68 octets unfragmented
MAX_MTU = 65535
TTL = 64

_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_IP_UDP = struct.Struct(">HHHHHH8sHHHH")  # IPv4 header (addresses as 8 octets) + UDP header
_IP_FRAG = struct.Struct(">HHHHHH8s")  # IPv4 header of a fragment


# -- the writer -------------------------------------------------------------------------


class PcapCapture:
    """Writes units as Ethernet/IPv4/UDP frames to a classic pcap file, streaming.

    ``path`` is a file name (the node registry goes next to it, in
    ``<path>.nodes.json``) or a binary file object (no side file). ``layers``
    keeps only those layers (None: all); a unit of another known layer is
    skipped and counted in ``stats["filtered"]``. ``nanoseconds`` writes the
    nanosecond-resolution variant of the format (magic a1b23c4d); the default
    is microseconds. ``mtu`` is the IP MTU above which datagrams are fragmented.
    ``sdls``: the run's security associations per kind of link (what
    :func:`~linkstack.capture.sdls_view.from_uplink` gives; None: SDLS off), recorded
    in the side file without their keys. ``frames``: the run's frames protocol
    (``frames.protocol``), for the side file; the first ``uslp_frame`` unit says
    ``"uslp"`` too, so that a writer not told learns it.

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
        time_base: str = "scenario",
        scenario_epoch: datetime | None = None,
        sdls: Mapping[str, LinkSecurity] | None = None,
        frames: str = DEFAULT_FRAMES,
    ) -> None:
        if frames not in FRAME_LAYERS:
            raise ConfigError(
                "capture", "frames", f"must be one of {sorted(FRAME_LAYERS)}, got {frames!r}"
            )
        self.frames = frames
        if time_base not in ("scenario", "wall"):
            raise ConfigError("capture", "time", f"must be 'scenario' or 'wall', got {time_base!r}")
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
        self._epoch_units = epoch_ticks(epoch, self.per_second)
        self.epoch = epoch if epoch.tzinfo is not None else epoch.replace(tzinfo=UTC)
        # what the time stamps are: the scenario's instants, or the wall clock's when
        # they happened (a daemon run at another instant than its scenario's: ``epoch``
        # is then the wall-clock instant of t_s = 0, and ``scenario_epoch`` the scenario's)
        self.time_base = time_base
        self.scenario_epoch = scenario_epoch or self.epoch
        # the run's SDLS associations (kind -> LinkSecurity), for the side file: made
        # into JSON once (no key in it), and only when SDLS is on (the codec loads then)
        self._sdls_document: dict[str, Any] | None = None
        if sdls:
            from linkstack.capture.sdls_view import links_document  # noqa: PLC0415

            self._sdls_document = links_document(sdls)
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
        if layer == USLP_FRAME_LAYER:
            self.frames = "uslp"
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
                s = ones_complement_fold(partial + length + ident + flags)
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
        """What goes into the side file: format, epoch, resolution, ports, nodes, and the
        SDLS associations when there are any."""
        return {
            "format": NODES_FORMAT,
            "version": 1,
            "epoch": self.epoch.isoformat(),
            "time_base": self.time_base,
            "scenario_epoch": self.scenario_epoch.isoformat(),
            "timestamp_resolution": "ns" if self.per_second == 1_000_000_000 else "us",
            "ports": protocol_ports(self.frames),
            **({"frames": self.frames} if self.frames != DEFAULT_FRAMES else {}),
            "nodes": [node._asdict() for node in self.registry.nodes()],
            **({"sdls": self._sdls_document} if self._sdls_document is not None else {}),
        }

    def flush(self) -> None:
        """Push what is buffered to the file and rewrite the side file."""
        if self._closed:
            return
        self._file.flush()
        if self.path is not None:
            side = nodes_path(self.path)
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
