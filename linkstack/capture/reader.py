"""The one capture reader: the units out of a classic pcap or a pcapng file, read directly.

:class:`PcapReader` reads what :class:`~linkstack.capture.pcap.PcapCapture` writes, or
any capture of UDP datagrams on the layer ports (:data:`~linkstack.capture.network.PORTS`):

- **the file**: classic pcap (either byte order, microsecond or nanosecond time
  stamps) or pcapng, tshark's default (every section, either byte order; Enhanced,
  Simple and the obsolete Packet Blocks; the link type, time-stamp resolution and
  offset of each interface, so that ``tshark -i any -i lo`` reads too).
- **the link layer**: Ethernet with or without VLAN tags, raw IP, Linux cooked v1/v2,
  BSD loopback;
- **IP**: IPv4, reassembling fragments, and IPv6 without extension headers;
- **UDP**: a datagram whose destination port (else source port) is in the port
  table is a unit of that layer; other traffic is skipped and counted in ``stats``.
  A port may also name the link it carries (a :class:`PortRole`: the layer, the
  sending and receiving node, and the view): its units get those names whatever
  their addresses, and the units of a view the reader was not asked for (``views``)
  are skipped. A port of the daemons' port plan carries several links (a
  :class:`LinkPorts`): each datagram starts with the link header
  (:mod:`linkstack.capture.link_header`), whose link index picks the role, and the
  unit is what follows it; a datagram without a header, or of a link the port does
  not carry, is skipped and counted.

Anything malformed raises :class:`DecodeError` naming the place and the rule: layer
"pcap" for the pcap file, a record ("record N" counts the packets of either format
from 1), an IPv4 or IPv6 header, the fragments or UDP; layer "pcapng" for the blocks
of a pcapng ("block N at octet P"). :meth:`PcapReader.read` with ``resume=True``
goes on where it can instead: a record read whole whose IP or UDP headers are
damaged is reported as a :class:`ReadProblem` and skipped (the fragments waiting
for their datagram are dropped with it), and where the file cannot be read further
the last :class:`ReadProblem` says so (``fatal``) and the reading ends; only a file
that is no capture at all (its pcap header, or a pcapng's blocks before its first
interface) still raises.

Nothing here writes; the only files read are the capture and its side file.
"""

from __future__ import annotations

import io
import ipaddress
import os
import struct
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime
from typing import BinaryIO, Literal, NamedTuple, overload

from linkstack.capture.link_header import LINK_HEADER_LEN, link_of
from linkstack.capture.network import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IP_PROTO_UDP,
    IPV4_HEADER_LEN,
    LAYER_BY_PORT,
    UDP_HEADER_LEN,
    UNIX_EPOCH,
    NodeRegistry,
    epoch_ticks,
    ipv4_checksum,
    load_nodes,
    nodes_path,
)
from linkstack.errors import DecodeError, TruncatedError

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_MAGIC = 0x0A0D0D0A  # the block type of a pcapng Section Header Block
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
SNAPLEN = 262144  # the largest frame Wireshark reads, and what the writer announces

PCAPNG_SHB_LE = b"\x4d\x3c\x2b\x1a"  # the byte-order magic of a Section Header Block
PCAPNG_SHB_BE = b"\x1a\x2b\x3c\x4d"
PCAPNG_IDB = 1  # Interface Description Block
PCAPNG_PB = 2  # Packet Block (obsolete)
PCAPNG_SPB = 3  # Simple Packet Block
PCAPNG_EPB = 6  # Enhanced Packet Block
PCAPNG_OPT_END, PCAPNG_IF_TSRESOL, PCAPNG_IF_TSOFFSET = 0, 9, 14

_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_VLAN_ETHERTYPES = (0x8100, 0x88A8)
_MAX_PENDING_DATAGRAMS = 4096  # fragmented datagrams the reader waits for at once
_NS = 1_000_000_000
_CHUNK = 1 << 20  # a pcapng block is read in pieces of at most this, whatever it announces


PAIR_WINDOW_S = 1.0
"""How far apart in time a frame record and the CLTU or CADU that carried it may be
(either first): linkstack writes them at the same instant, other tools when they
decoded the unit (tens of milliseconds later). Replay and conform pair them by link
and content within this window."""

Link = Callable[[bytes], tuple[int, int] | None]  # a frame -> (IP version, IP offset)


class CapturedUnit(NamedTuple):
    layer: str
    t_s: float  # seconds since the reader's epoch
    src: str  # node name, or the dotted address when the name is not known
    dst: str
    data: bytes


class PortRole(NamedTuple):
    """What one UDP port carries when it is one link's (the daemons' port plan): the
    unit's layer, its sending and receiving nodes, and the view (``sent``: into the
    channel, as the sender emitted it; ``delivered``: out of it, as the receiver got it)."""

    layer: str
    src: str
    dst: str
    view: str = ""


class LinkPorts(NamedTuple):
    """What one UDP port of the daemons' port plan carries: several links, each
    datagram behind a link header that names its link (index -> :class:`PortRole`)."""

    links: Mapping[int, PortRole]


PortTable = Mapping[int, "str | PortRole | LinkPorts"]


class ReadProblem(NamedTuple):
    """A record that could not be read: skipped, or (``fatal``) where reading stops.
    ``record``: how many records had been read whole when it was found."""

    record: int
    error: DecodeError
    fatal: bool


class _Fragments:
    __slots__ = ("parts", "total")

    def __init__(self) -> None:
        self.parts: dict[int, bytes] = {}
        self.total: int | None = None


class _Ended(Exception):  # noqa: N818 - a signal inside the reader, never seen outside
    """A pcapng whose blocks break after its first interface: the packets before
    stand, and the reading ends there as at the end of the file."""

    def __init__(self, error: DecodeError) -> None:
        super().__init__(str(error))
        self.error = error


class _Prefixed:
    """A file read again from its start, the octets already taken put back in front."""

    def __init__(self, head: bytes, f: BinaryIO) -> None:
        self._head = head
        self._f = f

    def read(self, n: int) -> bytes:
        if self._head:
            part, self._head = self._head[:n], self._head[n:]
            if len(part) < n:
                part += self._f.read(n - len(part))
            return part
        return self._f.read(n)


def _read_upto(f: BinaryIO | _Prefixed, n: int) -> bytes:
    """Up to ``n`` octets of ``f`` (fewer at its end), read in bounded pieces."""
    if n <= _CHUNK:
        return f.read(n)
    parts = []
    while n > 0:
        part = f.read(min(n, _CHUNK))
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def _octets_left(f: BinaryIO | _Prefixed) -> int:
    n = 0
    while part := f.read(_CHUNK):
        n += len(part)
    return n


class PcapReader:
    """Reads the units back out of a pcap or pcapng file (see the module docstring).

    Iterating gives the :class:`CapturedUnit` of every datagram on a layer port, in
    file order, and raises :class:`DecodeError` at the first thing malformed;
    :meth:`read` can go on past damaged records instead. A fragmented datagram still
    incomplete at the end of the file is counted (``incomplete_datagrams``).

    ``source``: a path, a binary file or the file's octets. ``t_s`` is counted from
    ``epoch``: by default the epoch of the side file ``<path>.nodes.json`` when there
    is one, else 1970-01-01 UTC. The side file also gives node names back; without
    it, ``src`` and ``dst`` are addresses. ``ports`` replaces the port table (port ->
    layer name, -> :class:`PortRole`, or -> :class:`LinkPorts`) for captures made with
    other ports; with
    ``views``, a unit of a :class:`PortRole` of another view is skipped and counted
    (``other_view``; a role of no view is always read).
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO | bytes,
        epoch: datetime | None = None,
        registry: NodeRegistry | None = None,
        ports: PortTable | None = None,
        views: Collection[str] | None = None,
    ) -> None:
        self.stats: Counter[str] = Counter()
        self._ports: PortTable = LAYER_BY_PORT if ports is None else ports
        self._views = None if views is None else frozenset(views)
        self.registry = registry or NodeRegistry()
        self._source = source
        side_epoch = None
        if isinstance(source, str | os.PathLike) and registry is None:
            side = nodes_path(source)
            if side.exists():
                self.registry, side_epoch = load_nodes(side)
        self.epoch = epoch or side_epoch or UNIX_EPOCH
        self.format: str | None = None  # "pcap" or "pcapng", once the file is open
        # set by the format's header: how a record's frame and time stamp are read
        self._opened = False
        self._link: Link = _link_ethernet
        self._per_second = 1_000_000
        self._epoch_ticks = 0

    def __iter__(self) -> Iterator[CapturedUnit]:
        return self.read()

    @overload
    def read(self, *, resume: Literal[False] = False) -> Iterator[CapturedUnit]: ...  # units only

    @overload
    def read(self, *, resume: bool) -> Iterator[CapturedUnit | ReadProblem]: ...

    def read(self, *, resume: bool = False) -> Iterator[CapturedUnit | ReadProblem]:
        """The units, in file order. With ``resume``, what is damaged is said in a
        :class:`ReadProblem` instead of raised (see the module docstring): only a
        file that is no capture at all raises :class:`DecodeError`."""
        source = self._source
        if isinstance(source, bytes | bytearray | memoryview):
            yield from self._read(io.BytesIO(bytes(source)), resume)
        elif isinstance(source, str | os.PathLike):
            with open(source, "rb") as f:
                yield from self._read(f, resume)
        else:
            yield from self._read(source, resume)

    # -- records, then units ---------------------------------------------------------
    def _read(self, f: BinaryIO, resume: bool) -> Iterator[CapturedUnit | ReadProblem]:
        pending: dict[tuple, _Fragments] = {}
        records = self._records(f)
        while True:
            try:
                where, stamp, frame, snapped, link = next(records)
            except StopIteration:
                break
            except _Ended as end:
                self.stats["incomplete_datagrams"] += len(pending)
                if not resume:
                    raise end.error from None
                yield ReadProblem(self.stats["records"], end.error, True)
                return
            except DecodeError as exc:
                if not resume or not self._opened:
                    raise
                yield ReadProblem(self.stats["records"], exc, True)
                return
            self.stats["records"] += 1
            try:
                unit = self._unit(where, stamp, frame, snapped, link, pending)
            except DecodeError as exc:
                if not resume:
                    raise
                pending.clear()  # a fresh start after the damaged record
                yield ReadProblem(self.stats["records"], exc, False)
                continue
            if unit is not None:
                self.stats["units"] += 1
                yield unit
        self.stats["incomplete_datagrams"] += len(pending)

    def _records(self, f: BinaryIO) -> Iterator[tuple[str, int, bytes, bool, Link]]:
        """(where, time stamp in ticks, frame, cut by the snap length, the parser of its
        link layer) of every record."""
        self._opened = False
        head = f.read(_GLOBAL_HEADER.size)
        if len(head) < 4:
            raise TruncatedError("pcap", "header", f"needs 24 octets, got {len(head)}")
        if PCAPNG_MAGIC in (int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big")):
            self.format = "pcapng"
            return self._pcapng_records(_Prefixed(head, f))
        self.format = "pcap"
        return self._pcap_records(head, f)

    def _unit(
        self,
        where: str,
        stamp: int,
        frame: bytes,
        snapped: bool,
        link: Link,
        pending: dict[tuple, _Fragments],
    ) -> CapturedUnit | None:
        got = link(frame)
        if got is None:
            self.stats["not_ip"] += 1
            return None
        version, off = got
        if version == 4:
            datagram = self._ipv4(frame, off, snapped, where, pending)
        else:
            datagram = self._ipv6(frame, off, snapped, where)
        if datagram is None:
            return None
        src, dst, payload = datagram
        unit = self._udp(payload, where)
        if unit is None:
            return None
        role, data = unit
        t_s = (stamp - self._epoch_ticks) / self._per_second
        if isinstance(role, PortRole):
            return CapturedUnit(role.layer, t_s, role.src, role.dst, data)
        return CapturedUnit(role, t_s, self._name(src), self._name(dst), data)

    def _open(self, linktype: int, per_second: int) -> None:
        """The header is read: frames of ``linktype``, time stamps in 1/``per_second`` s."""
        self._link = _link_parser(linktype)
        self._per_second = per_second
        self._epoch_ticks = epoch_ticks(self.epoch, per_second)
        self._opened = True

    # -- classic pcap ------------------------------------------------------------------
    def _pcap_records(
        self, head: bytes, f: BinaryIO
    ) -> Iterator[tuple[str, int, bytes, bool, Link]]:
        magic_le = int.from_bytes(head[:4], "little")
        magic_be = int.from_bytes(head[:4], "big")
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
        per_second = 1_000_000_000 if magic == PCAP_MAGIC_NS else 1_000_000
        self._open(linktype & 0xFFFF, per_second)  # the upper bits carry FCS information
        record = struct.Struct(order + "IIII")
        index = 0
        while True:
            rh = f.read(record.size)
            if not rh:
                return
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
            yield where, sec * per_second + frac, frame, incl < orig, self._link

    # -- pcapng ------------------------------------------------------------------------
    def _pcapng_records(self, f: _Prefixed) -> Iterator[tuple[str, int, bytes, bool, Link]]:
        """The packets of every section, time stamps in nanoseconds, each with the link
        layer of its interface. A block that breaks the format ends the reading
        (:class:`_Ended`) once an interface is known; before, it is raised: the file is
        no pcapng we can read."""
        linktype: int | None = None  # the first interface's
        interfaces: list[tuple[int, int]] = []  # (ticks per second, offset in s) of a section
        links: list[Link] = []  # the link layer of each interface of a section
        order = "<"
        pos = index = records = 0
        while True:
            head = f.read(12)
            if not head:
                break
            index += 1
            where = f"block {index} at octet {pos}"
            try:
                if len(head) < 12:
                    raise TruncatedError(
                        "pcapng", "block", f"{where}: {len(head)} octets left, need 12"
                    )
                btype = struct.unpack_from(order + "I", head)[0]
                if btype == PCAPNG_MAGIC:
                    magic = head[8:12]
                    if magic == PCAPNG_SHB_LE:
                        order = "<"
                    elif magic == PCAPNG_SHB_BE:
                        order = ">"
                    else:
                        raise DecodeError(
                            "pcapng", "byte_order_magic", f"{where}: got {magic.hex()}"
                        )
                    interfaces = []
                    links = []
                length = struct.unpack_from(order + "I", head, 4)[0]
                if length < 12 or length % 4:
                    left = 12 + _octets_left(f)
                    raise DecodeError(
                        "pcapng", "block_length", f"{where}: length {length} (the file has {left})"
                    )
                rest = _read_upto(f, length - 12)
                if len(rest) < length - 12:
                    raise DecodeError(
                        "pcapng",
                        "block_length",
                        f"{where}: length {length} (the file has {12 + len(rest)})",
                    )
                block = head + rest
                if struct.unpack_from(order + "I", block, length - 4)[0] != length:
                    raise DecodeError(
                        "pcapng", "block_length", f"{where}: the trailing length differs"
                    )
                body = block[8 : length - 4]
                pos += length
                if btype == PCAPNG_IDB:
                    lt, interface = _pcapng_interface(body, order, where)
                    if linktype is None:
                        self._open(lt, _NS)
                        linktype = lt
                    links.append(_link_parser(lt))
                    interfaces.append(interface)
                    continue
                if btype not in (PCAPNG_EPB, PCAPNG_PB, PCAPNG_SPB):
                    continue  # name resolution, statistics, custom blocks...
                iface, ns, frame, orig = _pcapng_packet(btype, body, order, interfaces, where)
            except DecodeError as exc:
                if linktype is None:
                    raise
                raise _Ended(exc) from None
            records += 1
            record = f"record {records}"
            if len(frame) > SNAPLEN:
                raise DecodeError(
                    "pcap", "incl_len", f"{record}: {len(frame)} octets, more than {SNAPLEN}"
                )
            yield record, ns, frame, len(frame) < orig, links[iface]
        if linktype is None:
            raise DecodeError("pcapng", "interfaces", "no Interface Description Block: no packets")

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

    def _udp(self, payload: bytes, where: str) -> tuple[str | PortRole, bytes] | None:
        if len(payload) < UDP_HEADER_LEN:
            raise TruncatedError(
                "pcap", "udp", f"{where}: header needs 8 octets, the datagram has {len(payload)}"
            )
        sport, dport, length = struct.unpack_from(">HHH", payload)
        ports = self._ports
        # the destination port first: in the daemons' port plan a sender sends from
        # the port it receives on
        role = ports[dport] if dport in ports else ports.get(sport)
        if role is None:
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
        data = payload[UDP_HEADER_LEN:length]
        if isinstance(role, LinkPorts):
            index = link_of(data)
            if index is None:
                self.stats["no_link_header"] += 1
                return None
            if index not in role.links:
                self.stats["other_links"] += 1
                return None
            role, data = role.links[index], data[LINK_HEADER_LEN:]
        views = self._views
        if (
            isinstance(role, PortRole)
            and role.view
            and views is not None
            and role.view not in views
        ):
            self.stats["other_view"] += 1
            return None
        return role, data


# -- the blocks of a pcapng ---------------------------------------------------------------


def _pcapng_interface(body: bytes, order: str, where: str) -> tuple[int, tuple[int, int]]:
    """An Interface Description Block: (link type, (ticks per second, offset in s))."""
    if len(body) < 8:
        raise TruncatedError("pcapng", "idb", f"{where}: {len(body)} octets")
    linktype = struct.unpack_from(order + "H", body)[0]
    ticks, offset = 1_000_000, 0
    opt = 8
    while opt + 4 <= len(body):
        code, olen = struct.unpack_from(order + "HH", body, opt)
        value = body[opt + 4 : opt + 4 + olen]
        if code == PCAPNG_OPT_END:
            break
        if code == PCAPNG_IF_TSRESOL and olen == 1 == len(value):
            v = value[0]
            ticks = 2 ** (v & 0x7F) if v & 0x80 else 10 ** min(v, 18)
        elif code == PCAPNG_IF_TSOFFSET and olen == 8 == len(value):
            offset = struct.unpack(order + "q", value)[0]
        opt += 4 + olen + (-olen % 4)
    return linktype, (ticks, offset)


def _pcapng_packet(
    btype: int, body: bytes, order: str, interfaces: list[tuple[int, int]], where: str
) -> tuple[int, int, bytes, int]:
    """An Enhanced, Simple or (obsolete) Packet Block: (its interface, time stamp in
    nanoseconds, frame, the frame's length on the wire)."""
    if btype == PCAPNG_SPB:
        if len(body) < 4 or not interfaces:
            raise DecodeError("pcapng", "spb", f"{where}: no interface or no length")
        orig = struct.unpack_from(order + "I", body)[0]
        frame = body[4 : 4 + min(orig, len(body) - 4)]
        iface, ts = 0, 0
    else:
        head = order + ("IIIII" if btype == PCAPNG_EPB else "HHIIII")
        size = struct.calcsize(head)
        if len(body) < size:
            raise TruncatedError("pcapng", "epb", f"{where}: {len(body)} octets")
        fields = struct.unpack_from(head, body)
        iface = fields[0]
        hi, lo, caplen, orig = fields[-4:]
        ts = hi << 32 | lo
        if caplen > len(body) - size:
            raise TruncatedError("pcapng", "captured_length", f"{where}: {caplen} octets announced")
        frame = body[size : size + caplen]
    if iface >= len(interfaces):
        raise DecodeError("pcapng", "interface_id", f"{where}: no interface {iface}")
    ticks, offset = interfaces[iface]
    ns = max(ts * _NS // ticks + offset * _NS, 0)
    if ns // _NS > 0xFFFFFFFF:
        raise DecodeError("pcapng", "timestamp", f"{where}: beyond 2106")
    return iface, ns, frame, max(orig, len(frame))


# -- link layers: (IP version, offset of the IP header) or None ----------------------------


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


_LINK_PARSERS: dict[int, Link] = {
    LINKTYPE_ETHERNET: _link_ethernet,
    LINKTYPE_RAW: _link_raw,
    LINKTYPE_IPV4: _link_raw,
    LINKTYPE_IPV6: _link_raw,
    LINKTYPE_NULL: _link_null,
    LINKTYPE_LINUX_SLL: _link_sll,
    LINKTYPE_LINUX_SLL2: _link_sll2,
}


def _link_parser(linktype: int) -> Link:
    """The parser of a link type; :class:`DecodeError` for one we do not read."""
    parser = _LINK_PARSERS.get(linktype)
    if parser is None:
        raise DecodeError(
            "pcap",
            "linktype",
            f"link type {linktype} is not supported (Ethernet 1, raw IP 101/228/229, "
            "Linux cooked 113/276, BSD loopback 0)",
        )
    return parser


def read_units(
    source: str | os.PathLike[str] | BinaryIO | bytes, epoch: datetime | None = None
) -> Iterator[CapturedUnit]:
    """Every unit of a pcap or pcapng file, in file order: (layer, t_s, src, dst, data).

    See :class:`PcapReader` (which also keeps counters of what it skipped).
    """
    return iter(PcapReader(source, epoch))
