"""Packets in fixed-size zones with a First Header Pointer.

The TM frame data field (132.0-B-3 §4.1.4) and the AOS M_PDU packet zone
(732.0-B-4 §4.1.4.2) carry Space Packets the same way: packets back to back,
spanning zone boundaries, with an 11-bit First Header Pointer (FHP) per zone that
gives the offset of the first packet header that starts in the zone, 0x7FF if
none does, 0x7FE if the zone holds only idle data. The packer and extractor here
are shared by :mod:`linkstack.ccsds.tm` and :mod:`linkstack.ccsds.aos`.

This is a hot path (every byte of every frame goes through it), so it works on
one bytearray per direction with read offsets instead of per-packet objects.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections import Counter, deque
from typing import NamedTuple

from linkstack.ccsds.spp import (
    IDLE_APID,
    MIN_PACKET_LEN,
    PRIMARY_HEADER_LEN,
    PacketType,
    idle_packet,
)
from linkstack.errors import EncodeError

FHP_NO_HEADER = 0x7FF  # no packet header starts in this zone
FHP_IDLE_ONLY = 0x7FE  # the zone holds only idle data
MAX_ZONE_LEN = 0x7FE  # FHP values from 0x7FE up are reserved, so zones are shorter

_HEADER = struct.Struct(">HHH")
_COMPACT_AT = 1 << 16


class PacketZonePacker:
    """Packs packed Space Packets back to back into zones of ``zone_len`` octets.

    ``no_header`` is the FHP of a zone where no packet starts and ``max_zone_len``
    the longest zone the pointer can address: TM's and AOS's 11-bit defaults, or
    USLP's 16-bit ones (:mod:`linkstack.ccsds.uslp_channels`).
    """

    def __init__(
        self,
        zone_len: int,
        packet_type: PacketType = PacketType.TM,
        *,
        no_header: int = FHP_NO_HEADER,
        max_zone_len: int = MAX_ZONE_LEN,
    ) -> None:
        if not 1 <= zone_len <= max_zone_len:
            raise EncodeError(
                "packet_zone", "zone_len", f"must be 1..{max_zone_len}, got {zone_len}"
            )
        self.zone_len = zone_len
        self.packet_type = packet_type
        self.no_header = no_header
        self._buf = bytearray()
        self._rd = 0  # read offset into _buf
        self._base = 0  # stream offset of _buf[0]
        self._starts: deque[int] = deque()  # stream offsets where packets start
        self._idle_seq = 0

    @property
    def buffered(self) -> int:
        """Octets waiting to be put into zones."""
        return len(self._buf) - self._rd

    @property
    def zones_ready(self) -> int:
        return self.buffered // self.zone_len

    def push(self, packet: bytes | bytearray | memoryview) -> None:
        """Queue one packed packet (the caller has built or checked it)."""
        self._starts.append(self._base + len(self._buf))
        self._buf += packet

    def flush(self) -> int:
        """Complete a partly filled zone with an idle packet; return the fill octets.

        When fewer octets than a minimal idle packet (7) remain, the idle packet
        is made whole zones longer, so that it still ends on a zone boundary.
        """
        rem = self.buffered % self.zone_len
        if rem == 0:
            return 0
        fill = self.zone_len - rem
        while fill < MIN_PACKET_LEN:
            fill += self.zone_len
        self.push(idle_packet(fill, self._idle_seq, self.packet_type))
        self._idle_seq = (self._idle_seq + 1) & 0x3FFF
        return fill

    def pull(self) -> tuple[bytes, int] | None:
        """The next full zone and its FHP, or None when less than a zone is queued."""
        rd, zl = self._rd, self.zone_len
        if len(self._buf) - rd < zl:
            return None
        start = self._base + rd
        end = start + zl
        starts = self._starts
        fhp = self.no_header
        if starts and starts[0] < end:
            fhp = starts.popleft() - start
            while starts and starts[0] < end:
                starts.popleft()
        zone = bytes(self._buf[rd : rd + zl])
        rd += zl
        if rd >= _COMPACT_AT and rd * 2 >= len(self._buf):
            del self._buf[:rd]
            self._base += rd
            rd = 0
        self._rd = rd
        return zone, fhp


class PacketZoneExtractor:
    """Takes zones in order and hands out the whole packets they carry.

    ``push(zone, fhp, continuous)``: ``continuous`` is False when the frame
    counters say zones were lost since the previous one; a packet cut by the
    loss is dropped and the extractor resynchronises on the FHP of this zone.
    Packets are returned packed; idle packets are counted, not returned. Every
    drop is counted in ``stats`` with its reason; nothing here raises on bad data.
    ``no_header`` and ``idle_only`` are the FHP's two special values (USLP has no
    idle-only value: pass -1).
    """

    def __init__(self, no_header: int = FHP_NO_HEADER, idle_only: int = FHP_IDLE_ONLY) -> None:
        self.no_header = no_header
        self.idle_only = idle_only
        self.stats: Counter[str] = Counter()
        self._pending = bytearray()  # start of a packet that continues in the next zone
        # total length of the pending packet, 0 while its header is incomplete; set
        # wherever _pending is filled, and read only while _pending holds something
        self._need = 0
        self._synced = False

    def _lose_sync(self, reason: str) -> None:
        if self._pending:
            self.stats["packets_dropped"] += 1
            self._pending = bytearray()
        self._synced = False
        self.stats[reason] += 1

    def push(self, zone: bytes, fhp: int, continuous: bool = True) -> list[bytes]:
        if type(zone) is not bytes:
            zone = bytes(zone)
        out: list[bytes] = []
        zl = len(zone)
        no_header = self.no_header
        if fhp == self.idle_only:
            if self._pending:
                self._lose_sync("idle_zone_mid_packet")
            self.stats["idle_zones"] += 1
            return out
        if fhp != no_header and fhp >= zl:
            self._lose_sync("fhp_out_of_zone")
            return out
        if not continuous and self._synced:
            self._lose_sync("zone_gap")

        if self._synced and self._pending:
            pos = self._continue_pending(zone, fhp, out)
            if pos < 0:
                if self._synced or fhp == no_header:
                    return out  # the zone was all continuation, or it is useless
                pos = fhp  # resynchronise on this zone's first header
                self._synced = True
        elif self._synced:
            # The previous zone ended on a packet boundary: a header must start at 0.
            pos = 0
            if fhp != 0:
                self._lose_sync("fhp_mismatch")
                if fhp == no_header:
                    return out
                pos = fhp
                self._synced = True
        else:
            if fhp == no_header:
                self.stats["zones_skipped_unsynced"] += 1
                return out
            pos = fhp
            self._synced = True
        self._parse(zone, pos, out)
        return out

    def _continue_pending(self, zone: bytes, fhp: int, out: list[bytes]) -> int:
        """Feed the start of ``zone`` to the pending packet.

        Returns the offset just past the pending packet when it completed where
        the FHP says the next header starts; -1 when the whole zone went into
        the pending packet (still synchronised) or when sync was lost.
        """
        limit = len(zone) if fhp == self.no_header else fhp
        pending = self._pending
        pos = 0
        if not self._need:  # the header itself was cut; complete it first
            pos = min(PRIMARY_HEADER_LEN - len(pending), limit)
            pending += zone[:pos]
            if len(pending) < PRIMARY_HEADER_LEN:
                if fhp == self.no_header:
                    return -1
                self._lose_sync("fhp_mismatch")
                return -1
            w0, _, ln = _HEADER.unpack_from(pending)
            if w0 >> 13:
                self._lose_sync("bad_packet_version")
                return -1
            self._need = ln + 1 + PRIMARY_HEADER_LEN
        rest = self._need - len(pending)
        if pos + rest > limit:
            if fhp == self.no_header:
                pending += zone[pos:]
                return -1
            self._lose_sync("fhp_mismatch")
            return -1
        pending += zone[pos : pos + rest]
        pos += rest
        if pos != limit:  # the packet ends where no header is announced
            self._lose_sync("fhp_mismatch")
            return -1
        if ((pending[0] << 8) | pending[1]) & 0x7FF == IDLE_APID:
            self.stats["idle_packets"] += 1
        else:
            out.append(bytes(pending))
        self._pending = bytearray()
        self._need = 0
        return pos

    def _parse(self, zone: bytes, pos: int, out: list[bytes]) -> None:
        """Hand out the packets from ``pos`` on; keep a cut last one as pending."""
        zl = len(zone)
        unpack_from = _HEADER.unpack_from
        stats = self.stats
        while pos < zl:
            if zl - pos < PRIMARY_HEADER_LEN:
                self._pending = bytearray(zone[pos:])
                self._need = 0
                return
            w0, _, ln = unpack_from(zone, pos)
            if w0 >> 13:
                self._lose_sync("bad_packet_version")
                return
            end = pos + ln + 1 + PRIMARY_HEADER_LEN
            if end > zl:
                self._pending = bytearray(zone[pos:])
                self._need = end - pos
                return
            if (w0 & 0x7FF) == IDLE_APID:
                stats["idle_packets"] += 1
            else:
                out.append(zone[pos:end])
            pos = end


class ReceivedFrame(NamedTuple):
    """What a receiver got out of one good frame (TM or AOS)."""

    vcid: int
    vc_count: int
    packets: list[bytes]
    ocf: bytes | None


class PacketVirtualChannel:
    """One virtual channel of packets: a packer and the VC frame counter."""

    def __init__(self, vcid: int, zone_len: int, count_modulo: int) -> None:
        self.vcid = vcid
        self.packer = PacketZonePacker(zone_len)
        self.count_modulo = count_modulo
        self.vc_count = 0
        self.packets = 0

    def push(self, packet: bytes) -> None:
        """Queue one packed Space Packet (see :meth:`linkstack.ccsds.spp.SpacePacket.pack`)."""
        self.packer.push(packet)
        self.packets += 1

    def flush(self) -> int:
        """Fill a partly built zone with an idle packet so that it can go out now."""
        return self.packer.flush()

    @property
    def frames_ready(self) -> int:
        return self.packer.zones_ready

    def take_count(self) -> int:
        count = self.vc_count
        self.vc_count = (count + 1) % self.count_modulo
        return count


class VcMultiplexer:
    """Virtual channel multiplexing: round robin over the VCs that have a full zone."""

    def __init__(self, layer: str, zone_len: int, count_modulo: int, reserved: int) -> None:
        self.layer = layer
        self.zone_len = zone_len
        self.count_modulo = count_modulo
        self.reserved = reserved  # the idle VC, which carries no packets
        self.vcs: dict[int, PacketVirtualChannel] = {}
        self._order: list[PacketVirtualChannel] = []
        self._next = 0

    def add(self, vcid: int) -> PacketVirtualChannel:
        if vcid in self.vcs:
            raise EncodeError(self.layer, "vcid", f"virtual channel {vcid} exists already")
        if vcid == self.reserved:
            raise EncodeError(self.layer, "vcid", f"virtual channel {vcid} is the idle VC")
        vc = PacketVirtualChannel(vcid, self.zone_len, self.count_modulo)
        self.vcs[vcid] = vc
        self._order.append(vc)
        return vc

    def vc(self, vcid: int) -> PacketVirtualChannel:
        try:
            return self.vcs[vcid]
        except KeyError:
            raise EncodeError(self.layer, "vcid", f"no virtual channel {vcid}") from None

    def flush(self, vcid: int | None = None) -> None:
        for vc in self._order if vcid is None else (self.vc(vcid),):
            vc.flush()

    @property
    def frames_ready(self) -> int:
        return sum(vc.frames_ready for vc in self._order)

    def pull(self) -> tuple[PacketVirtualChannel, int, bytes, int] | None:
        """(vc, vc_count, zone, fhp) of the next VC in turn with a full zone, or None."""
        order = self._order
        n = len(order)
        for i in range(n):
            k = (self._next + i) % n
            got = order[k].packer.pull()
            if got is not None:
                self._next = (k + 1) % n
                vc = order[k]
                return vc, vc.take_count(), got[0], got[1]
        return None


class FrameSource(ABC):
    """A master channel's frames, one at a time, as the physical channel takes them:
    data frames while a VC has one, idle frames between them. Subclasses build the
    frames (:meth:`next_data_frame`, :meth:`idle_frame`): TM's and AOS's here, USLP's in
    :mod:`linkstack.ccsds.uslp_channels`."""

    @abstractmethod
    def next_data_frame(self) -> bytes | None:
        """The next data frame of a VC that has one, or None."""

    @abstractmethod
    def idle_frame(self) -> bytes:
        """An idle frame, for when no VC has a data frame."""

    def next_frame(self) -> bytes:
        """The next frame of the physical channel: data if any VC has some, else idle."""
        frame = self.next_data_frame()
        return frame if frame is not None else self.idle_frame()

    def drain(self) -> list[bytes]:
        """Every frame that is ready now (no idle frames)."""
        out = []
        while (frame := self.next_data_frame()) is not None:
            out.append(frame)
        return out


class PacketMasterChannel(FrameSource):
    """What TM and AOS master channel generation share: virtual channels of packets
    multiplexed round robin, and an idle frame when none has a full one. Subclasses
    build the frames (:meth:`next_data_frame`, :meth:`idle_frame`)."""

    layer: str  # each subclass names its layer (for errors) and its highest VCID
    max_vcid: int

    def __init__(self, mux: VcMultiplexer, vcids: tuple[int, ...]) -> None:
        self.mux = mux
        for vcid in vcids:
            self.add_vc(vcid)
        self.frames = 0
        self.idle_frames = 0

    def add_vc(self, vcid: int) -> PacketVirtualChannel:
        if isinstance(vcid, bool) or not isinstance(vcid, int) or not 0 <= vcid <= self.max_vcid:
            raise EncodeError(self.layer, "vcid", f"must be in 0..{self.max_vcid}, got {vcid!r}")
        return self.mux.add(vcid)

    def push(self, vcid: int, packet: bytes) -> None:
        """Queue one packed Space Packet on virtual channel ``vcid``."""
        self.mux.vc(vcid).push(packet)

    def flush(self, vcid: int | None = None) -> None:
        """Complete partly filled frames with idle packets so that they can go out."""
        self.mux.flush(vcid)

    @property
    def frames_ready(self) -> int:
        return self.mux.frames_ready


class PacketFrameReceiver:
    """What TM and AOS receivers share: the drop counters and the per-VC extraction."""

    def __init__(self, count_modulo: int) -> None:
        self.stats: Counter[str] = Counter()
        self.demux = VcDemultiplexer(count_modulo)

    def all_stats(self) -> Counter[str]:
        """Every counter: the receiver's own and the VC extractors'."""
        total = Counter(self.stats)
        total.update(self.demux.stats())
        return total

    def _drop(self, reason: str) -> None:
        self.stats[reason] += 1
        self.stats["frames_dropped"] += 1


class VcDemultiplexer:
    """Receive side of the virtual channels: follows each VC's frame count, and
    feeds each VC's zones to its own extractor, telling it when zones were lost."""

    def __init__(self, count_modulo: int) -> None:
        self.count_modulo = count_modulo
        self.extractors: dict[int, PacketZoneExtractor] = {}
        self.frames_lost = 0
        self._next: dict[int, int] = {}

    def push(self, vcid: int, count: int, zone: bytes, fhp: int) -> list[bytes]:
        expected = self._next.get(vcid, count)  # a VC's first frame follows no gap
        lost = (count - expected) % self.count_modulo
        self.frames_lost += lost
        self._next[vcid] = (count + 1) % self.count_modulo
        ex = self.extractors.get(vcid)
        if ex is None:
            ex = self.extractors[vcid] = PacketZoneExtractor()
        return ex.push(zone, fhp, lost == 0)

    def stats(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for ex in self.extractors.values():
            total.update(ex.stats)
        if self.frames_lost:
            total["vc_frames_lost"] = self.frames_lost
        return total
