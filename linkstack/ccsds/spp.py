"""Space Packet Protocol, CCSDS 133.0-B-2.

A Space Packet is a 6-octet primary header (version, type, secondary header
flag, APID, sequence flags, sequence count, data length) and a packet data field
of 1 to 65,536 octets: an optional secondary header (here typically a CUC time
code, :mod:`linkstack.ccsds.cuc`) and the user data.

Everything here is sans-I/O: :class:`SpacePacket` packs and unpacks,
:func:`segment` and :class:`Reassembler` split and join payloads larger than one
packet, :class:`PacketStreamParser` cuts a byte stream into packets.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from linkstack.ccsds.cuc import CucFormat
from linkstack.errors import DecodeError, EncodeError, TruncatedError, check_range

PRIMARY_HEADER_LEN = 6
MAX_APID = 0x7FF
IDLE_APID = 0x7FF
SEQ_COUNT_MODULO = 1 << 14
MIN_DATA_LEN = 1
MAX_DATA_LEN = 1 << 16
MIN_PACKET_LEN = PRIMARY_HEADER_LEN + MIN_DATA_LEN
MAX_PACKET_LEN = PRIMARY_HEADER_LEN + MAX_DATA_LEN
IDLE_FILL = 0x55  # the idle data pattern is mission-defined; 0x55 is a common choice

_HEADER = struct.Struct(">HHH")


class PacketType(IntEnum):
    TM = 0  # telemetry / reporting
    TC = 1  # telecommand / requesting


class SeqFlags(IntEnum):
    CONTINUATION = 0b00
    FIRST = 0b01
    LAST = 0b10
    UNSEGMENTED = 0b11


class PrimaryHeader(NamedTuple):
    """The six header fields as they are on the wire (no validation beyond the version)."""

    version: int
    packet_type: int
    sec_header_flag: bool
    apid: int
    seq_flags: int
    seq_count: int
    data_length_field: int  # packet data field length minus one

    @property
    def packet_length(self) -> int:
        return PRIMARY_HEADER_LEN + self.data_length_field + 1


def parse_primary_header(buf: bytes | bytearray | memoryview, offset: int = 0) -> PrimaryHeader:
    """Read the primary header at ``offset``; refuse a short buffer or a version other than 0."""
    if len(buf) - offset < PRIMARY_HEADER_LEN:
        raise TruncatedError(
            "spp",
            "primary_header",
            f"needs {PRIMARY_HEADER_LEN} octets, {max(len(buf) - offset, 0)} remain",
        )
    word0, word1, length_field = _HEADER.unpack_from(buf, offset)
    version = word0 >> 13
    if version != 0:
        raise DecodeError(
            "spp", "version", f"packet version number must be 0 (000), got {version:03b}"
        )
    return PrimaryHeader(
        version,
        (word0 >> 12) & 1,
        bool(word0 & 0x0800),
        word0 & 0x07FF,
        word1 >> 14,
        word1 & 0x3FFF,
        length_field,
    )


SecondaryHeaderSpec = int | CucFormat
"""How long the secondary header is when the flag is set: a fixed octet count, or
a CUC format (its P-field, when it has one, gives the length)."""


def _secondary_header_len(spec: SecondaryHeaderSpec, data_field: bytes) -> int:
    if isinstance(spec, CucFormat):
        _, n = spec.unpack(data_field)  # raises TruncatedError/DecodeError ("cuc")
        return n
    if spec > len(data_field):
        raise TruncatedError(
            "spp",
            "secondary_header",
            f"expected {spec} octets, the packet data field has {len(data_field)}",
        )
    return spec


@dataclass(frozen=True, slots=True)
class SpacePacket:
    """One Space Packet. ``data`` is the user data field; ``secondary_header``
    holds the secondary header octets when they were split off (on encode, or on
    decode when the caller said how long the secondary header is)."""

    apid: int
    data: bytes
    packet_type: PacketType = PacketType.TM
    seq_count: int = 0
    seq_flags: SeqFlags = SeqFlags.UNSEGMENTED
    sec_header_flag: bool = False
    secondary_header: bytes = b""

    def __post_init__(self) -> None:
        check_range("spp", "apid", self.apid, 0, MAX_APID)
        check_range("spp", "seq_count", self.seq_count, 0, SEQ_COUNT_MODULO - 1)
        if self.packet_type not in (0, 1):
            raise EncodeError(
                "spp", "packet_type", f"must be TM (0) or TC (1), got {self.packet_type!r}"
            )
        if self.seq_flags not in (0, 1, 2, 3):
            raise EncodeError("spp", "seq_flags", f"must be 0..3, got {self.seq_flags!r}")
        if self.secondary_header and not self.sec_header_flag:
            raise EncodeError(
                "spp", "sec_header_flag", "a secondary header is given but the flag is not set"
            )
        n = len(self.secondary_header) + len(self.data)
        if not MIN_DATA_LEN <= n <= MAX_DATA_LEN:
            raise EncodeError(
                "spp",
                "data",
                f"packet data field must hold {MIN_DATA_LEN}..{MAX_DATA_LEN} octets, got {n}",
            )

    # -- properties ---------------------------------------------------------
    @property
    def length(self) -> int:
        """Total octets on the wire."""
        return PRIMARY_HEADER_LEN + len(self.secondary_header) + len(self.data)

    @property
    def is_idle(self) -> bool:
        return self.apid == IDLE_APID

    # -- codec --------------------------------------------------------------
    def pack(self) -> bytes:
        data_len = len(self.secondary_header) + len(self.data)
        header = _HEADER.pack(
            (self.packet_type << 12) | (self.sec_header_flag << 11) | self.apid,
            (self.seq_flags << 14) | self.seq_count,
            data_len - 1,
        )
        return header + self.secondary_header + self.data

    @classmethod
    def unpack_from(
        cls,
        buf: bytes | bytearray | memoryview,
        offset: int = 0,
        secondary_header: SecondaryHeaderSpec = 0,
    ) -> tuple[SpacePacket, int]:
        """Decode the packet at ``offset``; return it and the offset just past it."""
        h = parse_primary_header(buf, offset)
        start = offset + PRIMARY_HEADER_LEN
        end = start + h.data_length_field + 1
        if end > len(buf):
            raise TruncatedError(
                "spp",
                "data_length",
                f"header announces {h.data_length_field + 1} data octets, "
                f"{len(buf) - start} remain",
            )
        field = bytes(buf[start:end])
        sec = b""
        if h.sec_header_flag and secondary_header:
            n = _secondary_header_len(secondary_header, field)
            sec, field = field[:n], field[n:]  # one may be empty, not both (length >= 1)
        pkt = cls(
            h.apid,
            field,
            PacketType(h.packet_type),
            h.seq_count,
            SeqFlags(h.seq_flags),
            h.sec_header_flag,
            sec,
        )
        return pkt, end

    @classmethod
    def unpack(
        cls, buf: bytes | bytearray | memoryview, secondary_header: SecondaryHeaderSpec = 0
    ) -> SpacePacket:
        """Decode a buffer that holds exactly one packet."""
        pkt, end = cls.unpack_from(buf, 0, secondary_header)
        if end != len(buf):
            raise DecodeError(
                "spp",
                "data_length",
                f"header announces a {end}-octet packet but the buffer holds {len(buf)} octets",
            )
        return pkt

    # -- time-tagged packets ------------------------------------------------
    @classmethod
    def timed(
        cls,
        apid: int,
        data: bytes,
        t_s: float,
        cuc: CucFormat | None = None,
        *,
        packet_type: PacketType = PacketType.TM,
        seq_count: int = 0,
        seq_flags: SeqFlags = SeqFlags.UNSEGMENTED,
    ) -> SpacePacket:
        """A packet whose secondary header is the CUC time code of ``t_s``."""
        cuc = cuc or CucFormat()
        return cls(
            apid,
            data,
            packet_type=packet_type,
            seq_count=seq_count,
            seq_flags=seq_flags,
            sec_header_flag=True,
            secondary_header=cuc.encode(t_s),
        )

    def time_s(self, cuc: CucFormat | None = None) -> float:
        """Decode the secondary header as a CUC time code (seconds since the format's epoch)."""
        if not self.sec_header_flag:
            raise DecodeError("spp", "sec_header_flag", "packet has no secondary header")
        cuc = cuc or CucFormat()
        source = self.secondary_header or self.data
        t_s, _ = cuc.decode(source)
        return t_s


def idle_packet(length: int, seq_count: int = 0, packet_type: PacketType = PacketType.TM) -> bytes:
    """Packed idle packet (APID 2047) of exactly ``length`` octets, for fill."""
    check_range("spp", "idle_length", length, MIN_PACKET_LEN, MAX_PACKET_LEN)
    n = length - PRIMARY_HEADER_LEN
    header = _HEADER.pack(
        (packet_type << 12) | IDLE_APID, (SeqFlags.UNSEGMENTED << 14) | seq_count, n - 1
    )
    return header + bytes([IDLE_FILL]) * n


class SequenceCounter:
    """Per-APID 14-bit source sequence counters that wrap from 16383 to 0."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def next(self, apid: int) -> int:
        n = self._next.get(apid, 0)
        self._next[apid] = (n + 1) % SEQ_COUNT_MODULO
        return n

    def peek(self, apid: int) -> int:
        return self._next.get(apid, 0)

    def set(self, apid: int, value: int) -> None:
        self._next[apid] = check_range("spp", "seq_count", value, 0, SEQ_COUNT_MODULO - 1)


def segment(
    payload: bytes,
    apid: int,
    counter: SequenceCounter,
    max_data_len: int = MAX_DATA_LEN,
    packet_type: PacketType = PacketType.TM,
) -> list[SpacePacket]:
    """Split ``payload`` into one unsegmented packet, or first/continuation/last packets
    of at most ``max_data_len`` data octets, numbered from ``counter``."""
    check_range("spp", "max_data_len", max_data_len, MIN_DATA_LEN, MAX_DATA_LEN)
    if not payload:
        raise EncodeError("spp", "payload", "an empty payload cannot be carried in a packet")
    if len(payload) <= max_data_len:
        return [SpacePacket(apid, bytes(payload), packet_type, counter.next(apid))]
    chunks = [payload[i : i + max_data_len] for i in range(0, len(payload), max_data_len)]
    last = len(chunks) - 1
    out = []
    for i, chunk in enumerate(chunks):
        flags = SeqFlags.FIRST if i == 0 else SeqFlags.LAST if i == last else SeqFlags.CONTINUATION
        out.append(SpacePacket(apid, bytes(chunk), packet_type, counter.next(apid), flags))
    return out


class DropReason:
    """Why the reassembler threw a partial payload or a segment away (keys of ``stats``)."""

    SEQ_GAP = "seq_gap"  # a sequence count was skipped inside a segmented payload
    INTERRUPTED = "interrupted"  # a new first/unsegmented packet arrived mid-payload
    ORPHAN = "orphan_segment"  # continuation/last segment with no first segment
    TOO_LARGE = "too_large"  # the payload grew past max_payload_len


class Reassembler:
    """Joins first/continuation/last packets back into payloads, per APID.

    A payload is delivered only if every one of its segments arrived, in
    sequence-count order with no gap; anything else is dropped and counted in
    ``stats`` under a :class:`DropReason`. ``stats["delivered"]`` counts payloads,
    ``stats["missing_packets"]`` the packets a sequence gap says were lost.
    """

    def __init__(self, max_payload_len: int = 16 << 20) -> None:
        self.max_payload_len = max_payload_len
        self.stats: Counter[str] = Counter()
        self._expected: dict[int, int] = {}
        self._partial: dict[int, bytearray] = {}  # the payload so far, per APID

    def in_progress(self, apid: int) -> bool:
        return apid in self._partial

    def _drop(self, apid: int, reason: str) -> None:
        if self._partial.pop(apid, None) is not None:
            self.stats[reason] += 1
            self.stats["dropped_payloads"] += 1

    def push(self, packet: SpacePacket) -> bytes | None:
        """Take the next packet of an APID; return a complete payload or None."""
        apid = packet.apid
        expected = self._expected.get(apid)
        self._expected[apid] = (packet.seq_count + 1) % SEQ_COUNT_MODULO
        if expected is not None and packet.seq_count != expected:
            self.stats["missing_packets"] += (packet.seq_count - expected) % SEQ_COUNT_MODULO
            self._drop(apid, DropReason.SEQ_GAP)

        flags = packet.seq_flags
        if flags == SeqFlags.UNSEGMENTED:
            self._drop(apid, DropReason.INTERRUPTED)
            self.stats["delivered"] += 1
            return packet.data
        if flags == SeqFlags.FIRST:
            self._drop(apid, DropReason.INTERRUPTED)
            self._partial[apid] = bytearray(packet.data)
            return None
        partial = self._partial.get(apid)
        if partial is None:
            self.stats[DropReason.ORPHAN] += 1
            return None
        partial += packet.data
        if len(partial) > self.max_payload_len:
            self._drop(apid, DropReason.TOO_LARGE)
            return None
        if flags == SeqFlags.LAST:
            del self._partial[apid]
            self.stats["delivered"] += 1
            return bytes(partial)
        return None


def split_packets(buf: bytes | bytearray | memoryview) -> list[bytes]:
    """Cut a buffer that holds whole packets back to back into packed packets.

    Refuses a bad version or a buffer that ends inside a packet.
    """
    out = []
    pos, n = 0, len(buf)
    while pos < n:
        h = parse_primary_header(buf, pos)
        end = pos + h.packet_length
        if end > n:
            raise TruncatedError(
                "spp",
                "data_length",
                f"packet at offset {pos} announces {h.packet_length} octets, {n - pos} remain",
            )
        out.append(bytes(buf[pos:end]))
        pos = end
    return out


class PacketStreamParser:
    """Cuts a byte stream (fed in arbitrary pieces) into packed packets.

    ``feed()`` data, then call ``next_packet()`` until it returns None (more data
    needed). A malformed header raises :class:`DecodeError` from ``next_packet()``
    after every packet before it has been handed out, so nothing already
    accepted is lost; the parser then stays stopped at the bad octet until
    ``reset()`` or ``skip()``, since a packet stream has no marker to resync on.
    """

    def __init__(self, max_packet_len: int = MAX_PACKET_LEN) -> None:
        self.max_packet_len = max_packet_len
        self._buf = bytearray()
        self._pos = 0
        self.packets = 0

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_packet(self) -> bytes | None:
        if len(self._buf) - self._pos < PRIMARY_HEADER_LEN:
            return None
        h = parse_primary_header(self._buf, self._pos)
        if h.packet_length > self.max_packet_len:
            raise DecodeError(
                "spp",
                "data_length",
                f"packet of {h.packet_length} octets exceeds the limit of {self.max_packet_len}",
            )
        end = self._pos + h.packet_length
        if end > len(self._buf):
            return None
        pkt = bytes(self._buf[self._pos : end])
        self._pos = end
        self.packets += 1
        return pkt

    def __iter__(self) -> Iterator[bytes]:
        while (pkt := self.next_packet()) is not None:
            yield pkt

    def skip(self, n: int) -> None:
        """Throw away ``n`` buffered octets (after a DecodeError, to move past garbage)."""
        self._pos = min(self._pos + n, len(self._buf))

    def reset(self) -> None:
        self._buf.clear()
        self._pos = 0
