"""USLP channels (CCSDS 732.1-B-2): Space Packets through MAPs and virtual channels.

Sending: :class:`UslpVirtualChannel` is one virtual channel with its MAPs (the MAP
Packet service); each MAP queues packets and the VC multiplexes the MAPs round robin
into frames, numbered by the VC frame count of the configured length.
:class:`UslpMasterChannel` multiplexes virtual channels and makes the Only Idle Data
frames (VCID 63) that fill a fixed-length channel when no VC has a frame.

- Fixed-length frames (``UslpConfig.fixed``) use construction rule 000: packets back
  to back, spanning frames, with the 16-bit first header pointer; a partly filled
  zone is completed with an idle packet on :meth:`flush` (the packer of
  :mod:`linkstack.ccsds.packet_zone`, shared with TM and AOS).
- Variable-length frames carry whole packets (rule 111, as many as fit in the
  longest frame); a packet longer than the longest data zone is segmented, rule 100
  for its first segment, 101 for the next ones and 110 for its last, one segment a
  frame on its MAP. Segmenting rather than refusing keeps every Space Packet (up to
  65,542 octets) sendable on any channel.

Receiving: :class:`UslpReceiver` checks each frame, follows each virtual channel's
frame count (one count per VC and per bypass flag, as the standard keeps them),
demultiplexes the MAPs and gives back whole packets. It never raises on received
data: what it drops it counts in ``stats``. A gap in a VC's frame count may have
taken a frame of any of its MAPs, since the count is the VC's, so every MAP of that
VC drops the packet it was reassembling: a packet comes out if and only if every
frame of its VC from the one that starts it to the one that ends it arrived (given a
VC frame count, and fewer frames lost in a row than it counts).
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from dataclasses import dataclass
from typing import NamedTuple

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.packet_zone import FrameSource, PacketZoneExtractor, PacketZonePacker
from linkstack.ccsds.spp import IDLE_APID, MAX_PACKET_LEN, MIN_PACKET_LEN
from linkstack.ccsds.spp import PRIMARY_HEADER_LEN as PACKET_HEADER_LEN
from linkstack.ccsds.uslp import (
    FECF_LEN,
    ID_LEN,
    IDLE_DATA,
    MAX_FRAME_LEN,
    MAX_MAP_ID,
    MAX_SCID,
    MAX_VC_COUNT_LEN,
    MAX_VCID,
    OCF_LEN,
    OID_VCID,
    POINTER_NONE,
    PRIMARY_HEADER_LEN,
    TRUNCATED_HEADER_LEN,
    VERSION,
    Rule,
    Upid,
    id_word,
)
from linkstack.errors import ConfigError, EncodeError

DEFAULT_FRAME_LEN = 1115  # RS(255,223) with interleaving depth 5, as TM and AOS here

_ID = struct.Struct(">I")
_LEN_FLAGS = struct.Struct(">HB")
_PACKET = struct.Struct(">HHH")
_PACKETS_HEAD = bytes([(Rule.PACKETS_SPANNING << 5) | Upid.SPACE_PACKETS])
_WHOLE_HEAD = bytes([(Rule.NO_SEGMENTATION << 5) | Upid.SPACE_PACKETS])
_SEGMENT_HEADS = {
    rule: bytes([(rule << 5) | Upid.SPACE_PACKETS])
    for rule in (Rule.STARTING_SEGMENT, Rule.CONTINUING_SEGMENT, Rule.LAST_SEGMENT)
}
# OID frames: a fixed-length zone all idle data (rule 000, no packet starts in it) in
# fixed-length frames, as SANA's UPID 31 reads; one undivided unit (rule 111) otherwise
_OID_FIXED_HEAD = bytes([(Rule.PACKETS_SPANNING << 5) | Upid.IDLE]) + POINTER_NONE.to_bytes(
    2, "big"
)
_OID_VARIABLE_HEAD = bytes([(Rule.NO_SEGMENTATION << 5) | Upid.IDLE])


def _need(ok: bool, field: str, rule: str) -> None:
    if not ok:
        raise ConfigError("uslp", field, rule)


@dataclass(frozen=True, slots=True)
class UslpConfig:
    """Managed parameters of a USLP physical and master channel.

    ``frame_length`` is every frame's length when ``fixed``, else the longest frame.
    ``dest``: the SCID names the destination (an uplink) rather than the source.
    ``vc_count_len``: octets of VC frame count in every frame (0: no count, and no
    loss detection but the pointers' consistency). ``truncated_frame_length``: the
    receiver also takes truncated frames of that length (whole packets, rule 111).
    """

    scid: int = 0
    fixed: bool = True
    frame_length: int = DEFAULT_FRAME_LEN
    vc_count_len: int = 2
    insert_zone_len: int = 0
    ocf: bool = False
    fecf: bool = True
    dest: bool = False
    truncated_frame_length: int | None = None

    def __post_init__(self) -> None:
        _need(0 <= self.scid <= MAX_SCID, "scid", f"must be in 0..{MAX_SCID}, got {self.scid}")
        _need(
            0 <= self.vc_count_len <= MAX_VC_COUNT_LEN,
            "vc_count_len",
            f"must be in 0..{MAX_VC_COUNT_LEN} octets, got {self.vc_count_len}",
        )
        _need(self.insert_zone_len >= 0, "insert_zone_len", "must not be negative")
        least = self.overhead(pointer=self.fixed) + 1
        _need(
            least <= self.frame_length <= MAX_FRAME_LEN,
            "frame_length",
            f"must be in {least}..{MAX_FRAME_LEN} octets with these fields, "
            f"got {self.frame_length}",
        )
        if self.fixed:
            _need(
                self.zone_len < POINTER_NONE,
                "frame_length",
                f"a fixed-length zone is under {POINTER_NONE} octets, got {self.zone_len}",
            )
        if self.truncated_frame_length is not None:
            least = TRUNCATED_HEADER_LEN + self.insert_zone_len + 1 + MIN_PACKET_LEN
            least += FECF_LEN if self.fecf else 0
            _need(
                not self.fixed and least <= self.truncated_frame_length <= self.frame_length,
                "truncated_frame_length",
                f"variable-length channels only, {least}..{self.frame_length} octets, "
                f"got {self.truncated_frame_length}",
            )

    def overhead(self, pointer: bool) -> int:
        """Octets of a frame that are not data zone."""
        return (
            PRIMARY_HEADER_LEN
            + self.vc_count_len
            + self.insert_zone_len
            + (3 if pointer else 1)
            + (OCF_LEN if self.ocf else 0)
            + (FECF_LEN if self.fecf else 0)
        )

    @property
    def zone_len(self) -> int:
        """Octets of data zone: a fixed-length frame's, or the longest variable one's."""
        return self.frame_length - self.overhead(pointer=self.fixed)

    @property
    def count_modulo(self) -> int:
        return 1 << (8 * self.vc_count_len)


class _MapQueue:
    """One MAP's packets waiting to go."""

    __slots__ = ("map_id", "packer", "packets", "queue", "segment")

    def __init__(self, map_id: int, config: UslpConfig) -> None:
        self.map_id = map_id
        self.packer = (
            PacketZonePacker(config.zone_len, no_header=POINTER_NONE, max_zone_len=POINTER_NONE)
            if config.fixed
            else None
        )
        self.queue: deque[bytes] = deque()  # variable-length frames: whole packets
        self.segment: memoryview | None = None  # the rest of a packet being segmented
        self.packets = 0

    def ready(self) -> bool:
        if self.packer is not None:
            return self.packer.zones_ready > 0
        return bool(self.queue) or self.segment is not None


class UslpVirtualChannel:
    """The sending side of one virtual channel and its MAPs.

    ``bypass``: its frames are expedited (True) or sequence controlled, each with
    its own VC frame count. ``ocf`` and ``insert_zone`` go into the next frames
    unless :meth:`next_data_frame` is handed others (the master channel's).
    """

    def __init__(
        self,
        config: UslpConfig,
        vcid: int,
        maps: tuple[int, ...] = (0,),
        bypass: bool = True,
    ) -> None:
        if isinstance(vcid, bool) or not 0 <= vcid < OID_VCID:
            raise EncodeError("uslp", "vcid", f"must be in 0..{OID_VCID - 1}, got {vcid!r}")
        if not maps:
            raise EncodeError("uslp", "maps", "a virtual channel needs at least one MAP")
        self.config = config
        self.vcid = vcid
        self.bypass = bypass
        self.vc_count = 0
        self.frames = 0
        self.ocf: bytes = bytes(OCF_LEN)
        self.insert_zone: bytes = bytes(config.insert_zone_len)
        self._maps: dict[int, _MapQueue] = {}
        self._order: list[_MapQueue] = []
        self._next = 0
        self._flags = (bypass << 7) | (config.ocf << 3) | config.vc_count_len
        self._ids: dict[int, bytes] = {}
        for map_id in maps:
            self.add_map(map_id)

    def add_map(self, map_id: int) -> None:
        if isinstance(map_id, bool) or not 0 <= map_id <= MAX_MAP_ID:
            raise EncodeError("uslp", "map_id", f"must be in 0..{MAX_MAP_ID}, got {map_id!r}")
        if map_id in self._maps:
            raise EncodeError("uslp", "map_id", f"MAP {map_id} of VC {self.vcid} exists already")
        queue = self._maps[map_id] = _MapQueue(map_id, self.config)
        self._order.append(queue)
        cfg = self.config
        self._ids[map_id] = _ID.pack(id_word(cfg.scid, self.vcid, map_id, cfg.dest))

    @property
    def maps(self) -> tuple[int, ...]:
        return tuple(self._maps)

    def _map(self, map_id: int) -> _MapQueue:
        try:
            return self._maps[map_id]
        except KeyError:
            raise EncodeError("uslp", "map_id", f"no MAP {map_id} on VC {self.vcid}") from None

    def push(self, map_id: int, packet: bytes) -> None:
        """Queue one packed Space Packet on a MAP (the caller built or checked it)."""
        if not MIN_PACKET_LEN <= len(packet) <= MAX_PACKET_LEN:
            raise EncodeError(
                "uslp", "packet", f"a Space Packet is {MIN_PACKET_LEN}..{MAX_PACKET_LEN} octets"
            )
        queue = self._map(map_id)
        if queue.packer is not None:
            queue.packer.push(packet)
        else:
            queue.queue.append(bytes(packet))
        queue.packets += 1

    def flush(self, map_id: int | None = None) -> int:
        """Fixed-length frames: complete partly filled zones with an idle packet so
        that they can go out now; the fill octets. (Variable-length frames are never
        held back: nothing to do.)"""
        fill = 0
        for queue in self._order if map_id is None else (self._map(map_id),):
            if queue.packer is not None:
                fill += queue.packer.flush()
        return fill

    @property
    def frames_ready(self) -> int:
        """Frames that can go now: exact for fixed-length frames; for variable-length
        ones, the MAPs with something queued (each has at least one frame)."""
        n = 0
        for queue in self._order:
            if queue.packer is not None:
                n += queue.packer.zones_ready
            elif queue.ready():
                n += 1
        return n

    def next_data_frame(
        self, ocf: bytes | None = None, insert_zone: bytes | None = None
    ) -> bytes | None:
        """The next frame of the MAP in turn that has one, or None."""
        order = self._order
        n = len(order)
        for i in range(n):
            k = (self._next + i) % n
            queue = order[k]
            if queue.ready():
                self._next = (k + 1) % n
                return self._frame(queue.map_id, self._tfdf(queue), ocf, insert_zone)
        return None

    def drain(self) -> list[bytes]:
        """Every frame ready now."""
        out = []
        while (frame := self.next_data_frame()) is not None:
            out.append(frame)
        return out

    def _tfdf(self, queue: _MapQueue) -> bytes:
        """The data field of the MAP's next frame (the MAP has one)."""
        if queue.packer is not None:
            got = queue.packer.pull()
            assert got is not None
            zone, fhp = got
            return _PACKETS_HEAD + fhp.to_bytes(2, "big") + zone
        room = self.config.zone_len
        seg = queue.segment
        if seg is not None:
            if len(seg) > room:
                queue.segment = seg[room:]
                return _SEGMENT_HEADS[Rule.CONTINUING_SEGMENT] + seg[:room]
            queue.segment = None
            return _SEGMENT_HEADS[Rule.LAST_SEGMENT] + seg
        head = queue.queue.popleft()
        if len(head) > room:
            queue.segment = memoryview(head)[room:]
            return _SEGMENT_HEADS[Rule.STARTING_SEGMENT] + head[:room]
        parts = [_WHOLE_HEAD, head]
        used = len(head)
        waiting = queue.queue
        while waiting and used + len(waiting[0]) <= room:
            packet = waiting.popleft()
            parts.append(packet)
            used += len(packet)
        return b"".join(parts)

    def _frame(
        self, map_id: int, tfdf: bytes, ocf: bytes | None, insert_zone: bytes | None
    ) -> bytes:
        cfg = self.config
        count = self.vc_count
        self.vc_count = (count + 1) % cfg.count_modulo
        self.frames += 1
        return build_frame(
            cfg,
            self._ids[map_id],
            self._flags,
            count,
            tfdf,
            self.ocf if ocf is None else ocf,
            self.insert_zone if insert_zone is None else insert_zone,
        )


def build_frame(
    config: UslpConfig,
    id_octets: bytes,
    flags: int,
    count: int,
    tfdf: bytes,
    ocf: bytes,
    insert_zone: bytes,
) -> bytes:
    """A frame of the channel: its header (``id_octets``, the flags octet, the count),
    the insert zone, the data field ``tfdf``, the OCF and the FECF as configured."""
    if len(insert_zone) != config.insert_zone_len:
        raise EncodeError(
            "uslp",
            "insert_zone",
            f"must be {config.insert_zone_len} octets, got {len(insert_zone)}",
        )
    cl = config.vc_count_len
    n = PRIMARY_HEADER_LEN + cl + len(insert_zone) + len(tfdf)
    n += (OCF_LEN if config.ocf else 0) + (FECF_LEN if config.fecf else 0)
    parts = [id_octets, _LEN_FLAGS.pack(n - 1, flags), count.to_bytes(cl, "big"), insert_zone, tfdf]
    if config.ocf:
        if len(ocf) != OCF_LEN:
            raise EncodeError("uslp", "ocf", f"must be {OCF_LEN} octets, got {len(ocf)}")
        parts.append(ocf)
    frame = b"".join(parts)
    if config.fecf:
        return frame + crc16_ccitt(frame).to_bytes(2, "big")
    return frame


class UslpMasterChannel(FrameSource):
    """Virtual channels multiplexed round robin (over those with a frame ready), and
    Only Idle Data frames when none has one. ``ocf`` and ``insert_zone`` go into
    every next frame (the runtime sets ``ocf`` to the CLCW)."""

    def __init__(
        self,
        config: UslpConfig | None = None,
        vcids: tuple[int, ...] = (0,),
        maps: tuple[int, ...] = (0,),
    ) -> None:
        self.config = cfg = config or UslpConfig()
        self.vcs: dict[int, UslpVirtualChannel] = {}
        self._order: list[UslpVirtualChannel] = []
        self._next = 0
        self.ocf: bytes = bytes(OCF_LEN)
        self.insert_zone: bytes = bytes(cfg.insert_zone_len)
        self.idle_count = 0
        self.idle_frames = 0
        self._idle_id = _ID.pack(id_word(cfg.scid, OID_VCID, 0, cfg.dest))
        self._idle_flags = 0x80 | (cfg.ocf << 3) | cfg.vc_count_len  # expedited
        for vcid in vcids:
            self.add_vc(vcid, maps)

    def add_vc(
        self, vcid: int, maps: tuple[int, ...] = (0,), bypass: bool = True
    ) -> UslpVirtualChannel:
        if vcid in self.vcs:
            raise EncodeError("uslp", "vcid", f"virtual channel {vcid} exists already")
        vc = self.vcs[vcid] = UslpVirtualChannel(self.config, vcid, maps, bypass)
        self._order.append(vc)
        return vc

    def vc(self, vcid: int) -> UslpVirtualChannel:
        try:
            return self.vcs[vcid]
        except KeyError:
            raise EncodeError("uslp", "vcid", f"no virtual channel {vcid}") from None

    def push(self, vcid: int, map_id: int, packet: bytes) -> None:
        """Queue one packed Space Packet on a VC's MAP."""
        self.vc(vcid).push(map_id, packet)

    def flush(self, vcid: int | None = None) -> int:
        return sum(vc.flush() for vc in (self._order if vcid is None else (self.vc(vcid),)))

    @property
    def frames(self) -> int:
        return sum(vc.frames for vc in self._order)

    @property
    def frames_ready(self) -> int:
        return sum(vc.frames_ready for vc in self._order)

    def next_data_frame(self) -> bytes | None:
        order = self._order
        n = len(order)
        for i in range(n):
            k = (self._next + i) % n
            frame = order[k].next_data_frame(self.ocf, self.insert_zone)
            if frame is not None:
                self._next = (k + 1) % n
                return frame
        return None

    def idle_frame(self, length: int | None = None) -> bytes:
        """An OID frame: VCID 63, MAP 0, expedited, UPID 31 (idle data), its zone all
        idle pattern, with the OCF (the CLCW keeps flowing when there is nothing to
        send). Fixed-length channels: the frame length, rule 000 with no packet
        header in the zone (pointer all ones); variable-length: ``length`` octets
        (default the shortest frame), rule 111."""
        cfg = self.config
        if cfg.fixed:
            if length is not None and length != cfg.frame_length:
                raise EncodeError(
                    "uslp", "length", f"the channel's frames are {cfg.frame_length} octets"
                )
            tfdf = _OID_FIXED_HEAD + bytes([IDLE_DATA]) * cfg.zone_len
        else:
            least = cfg.overhead(pointer=False) + 1
            length = least if length is None else length
            if not least <= length <= cfg.frame_length:
                raise EncodeError("uslp", "length", f"must be in {least}..{cfg.frame_length}")
            tfdf = _OID_VARIABLE_HEAD + bytes([IDLE_DATA]) * (length - least + 1)
        count = self.idle_count
        self.idle_count = (count + 1) % cfg.count_modulo
        self.idle_frames += 1
        return build_frame(
            cfg, self._idle_id, self._idle_flags, count, tfdf, self.ocf, self.insert_zone
        )


class UslpReceived(NamedTuple):
    """What the receiver took out of one good frame."""

    vcid: int
    map_id: int
    vc_count: int | None  # None: the frame has no count (length 0, or truncated)
    packets: list[bytes]
    ocf: bytes | None


class _MapRx:
    """One MAP's receiving state: the zone extractor (fixed-length frames) or the
    segments of a packet being reassembled (variable-length frames)."""

    __slots__ = ("epoch", "extractor", "segments", "size")

    def __init__(self, fixed: bool, epoch: int) -> None:
        self.extractor = (
            PacketZoneExtractor(no_header=POINTER_NONE, idle_only=-1) if fixed else None
        )
        self.segments: list[bytes] | None = None
        self.size = 0
        self.epoch = epoch  # the VC's gap epoch this MAP has seen


class UslpReceiver:
    """Receives the frames of one USLP physical channel and gives back packets.

    Never raises on received data; every frame dropped is counted in ``stats`` under its
    reason (``bad_length``, ``bad_fecf``, ``bad_version``, ``wrong_scid``: another SCID
    or source-or-destination flag than the channel's, ``bad_header``: spare bits, a VC
    count length not the channel's, ``bad_ocf_flag``, ``bad_tfdf``: no room for the data
    field header, ``not_packets``: another UPID, ``bad_rule``: a construction rule the
    channel does not use, ``bad_packets``: whole packets that do not fill their zone,
    ``truncated_frame``: one of a length not configured) and ``frames_dropped``; packets
    lost to gaps and damage are counted per reason too (``vc_frames_lost``,
    ``packets_dropped`` ...). :meth:`all_stats` merges the MAP extractors' counters.
    """

    def __init__(self, config: UslpConfig | None = None, check_scid: bool = True) -> None:
        self.config = cfg = config or UslpConfig()
        self.check_scid = check_scid
        self.stats: Counter[str] = Counter()
        self._maps: dict[tuple[int, int], _MapRx] = {}
        self._next_count: dict[int, int] = {}  # by (vcid << 1) | bypass
        self._epoch: dict[int, int] = {}  # by vcid: bumped at each count gap
        self._fecf_len = FECF_LEN if cfg.fecf else 0
        self._header_len = PRIMARY_HEADER_LEN + cfg.vc_count_len
        self._tfdf_at = self._header_len + cfg.insert_zone_len
        self._id_mask = 0xFFFFF800 if check_scid else 0xF0000800
        self._id_want = id_word(cfg.scid, 0, 0, cfg.dest) & self._id_mask
        self._least = cfg.overhead(pointer=cfg.fixed) + 1 - (OCF_LEN if cfg.ocf else 0)

    def all_stats(self) -> Counter[str]:
        total = Counter(self.stats)
        for rx in self._maps.values():
            if rx.extractor is not None:
                total.update(rx.extractor.stats)
        return total

    def _drop(self, reason: str) -> None:
        self.stats[reason] += 1
        self.stats["frames_dropped"] += 1

    def receive(self, frame: bytes, fecf_checked: bool = False) -> UslpReceived | None:
        """One frame in; ``fecf_checked``: its FECF was checked already (SDLS)."""
        cfg = self.config
        n = len(frame)
        if n < ID_LEN or n > cfg.frame_length or (cfg.fixed and n != cfg.frame_length):
            self._drop("bad_length")
            return None
        if self._fecf_len and not fecf_checked and crc16_ccitt(frame):
            self._drop("bad_fecf")
            return None
        (w,) = _ID.unpack_from(frame)
        if w >> 28 != VERSION:
            self._drop("bad_version")
            return None
        if w & self._id_mask != self._id_want:
            self._drop("wrong_scid")
            return None
        vcid = (w >> 5) & MAX_VCID
        map_id = (w >> 1) & MAX_MAP_ID
        if w & 1:
            return self._truncated(frame, vcid, map_id)
        if n < self._least:
            self._drop("bad_length")
            return None
        length_field, flags = _LEN_FLAGS.unpack_from(frame, ID_LEN)
        if length_field + 1 != n:
            self._drop("bad_length")
            return None
        if flags & 0x30 or flags & 0x07 != cfg.vc_count_len:
            self._drop("bad_header")
            return None
        end = n - self._fecf_len
        ocf = None
        if flags & 0x08:
            if cfg.fixed and not cfg.ocf:
                self._drop("bad_ocf_flag")
                return None
            end -= OCF_LEN
            ocf = frame[end : end + OCF_LEN]
        elif cfg.fixed and cfg.ocf:
            self._drop("bad_ocf_flag")
            return None
        pos = self._tfdf_at
        if pos >= end:
            self._drop("bad_tfdf")
            return None
        count = None
        if cfg.vc_count_len:
            count = int.from_bytes(frame[PRIMARY_HEADER_LEN : self._header_len], "big")
        if vcid == OID_VCID:
            self.stats["frames"] += 1
            self.stats["idle_frames"] += 1
            return UslpReceived(vcid, map_id, count, [], ocf)
        if count is not None:  # every frame of the VC counts, whatever it carries
            self._follow_count(vcid, bool(flags & 0x80), count)
        head = frame[pos]
        if head & 0x1F != Upid.SPACE_PACKETS:
            self._drop("not_packets")
            return None
        rule = head >> 5
        rx = self._map_rx(vcid, map_id)
        continuous = rx.epoch == self._epoch[vcid]
        rx.epoch = self._epoch[vcid]
        if cfg.fixed:
            if rule != Rule.PACKETS_SPANNING or end - pos < 4:
                self._drop("bad_rule")
                return None
            fhp = (frame[pos + 1] << 8) | frame[pos + 2]
            assert rx.extractor is not None
            packets = rx.extractor.push(frame[pos + 3 : end], fhp, continuous)
        else:
            if not continuous:
                self._lose_segments(rx, "segment_gap")
            got = self._variable(rx, rule, frame, pos + 1, end)
            if got is None:
                return None
            packets = got
        self.stats["frames"] += 1
        self.stats["packets"] += len(packets)
        return UslpReceived(vcid, map_id, count, packets, ocf)

    def _follow_count(self, vcid: int, bypass: bool, count: int) -> None:
        key = (vcid << 1) | bypass
        expected = self._next_count.get(key)
        self._next_count[key] = (count + 1) % self.config.count_modulo
        if expected is not None and count != expected:
            self.stats["vc_frames_lost"] += (count - expected) % self.config.count_modulo
            self._epoch[vcid] = self._epoch.get(vcid, 0) + 1

    def _map_rx(self, vcid: int, map_id: int) -> _MapRx:
        rx = self._maps.get((vcid, map_id))
        if rx is None:
            epoch = self._epoch.setdefault(vcid, 0)
            rx = self._maps[(vcid, map_id)] = _MapRx(self.config.fixed, epoch)
        return rx

    def _lose_segments(self, rx: _MapRx, reason: str) -> None:
        if rx.segments is not None:
            rx.segments = None
            rx.size = 0
            self.stats[reason] += 1
            self.stats["packets_dropped"] += 1

    def _variable(
        self, rx: _MapRx, rule: int, frame: bytes, pos: int, end: int
    ) -> list[bytes] | None:
        """The packets of a variable-length frame's zone ``frame[pos:end]``; None
        when the frame is dropped."""
        if pos >= end:
            self._drop("bad_tfdf")
            return None
        if rule == Rule.NO_SEGMENTATION:
            packets = self._whole_packets(frame, pos, end)
            if packets is not None:
                self._lose_segments(rx, "segment_interrupted")
            return packets
        if rule == Rule.STARTING_SEGMENT:
            self._lose_segments(rx, "segment_interrupted")
            rx.segments = [frame[pos:end]]
            rx.size = end - pos
            return []
        if rule not in (Rule.CONTINUING_SEGMENT, Rule.LAST_SEGMENT):
            self._drop("bad_rule")
            return None
        if rx.segments is None:
            self.stats["segment_without_start"] += 1
            return []
        rx.segments.append(frame[pos:end])
        rx.size += end - pos
        if rx.size > MAX_PACKET_LEN:
            self._lose_segments(rx, "segment_too_long")
            return []
        if rule == Rule.CONTINUING_SEGMENT:
            return []
        packet = b"".join(rx.segments)
        rx.segments = None
        rx.size = 0
        whole = self._whole_packets(packet, 0, len(packet))
        if whole is None or len(whole) != 1:
            self.stats["packets_dropped"] += 1
            return []
        return whole

    def _whole_packets(self, buf: bytes, pos: int, end: int) -> list[bytes] | None:
        """Whole packets back to back that exactly fill ``buf[pos:end]``; None (and
        the frame counted as dropped) when they do not."""
        out = []
        unpack_from = _PACKET.unpack_from
        while pos < end:
            if end - pos < PACKET_HEADER_LEN:
                self._drop("bad_packets")
                return None
            w0, _, ln = unpack_from(buf, pos)
            stop = pos + ln + 1 + PACKET_HEADER_LEN
            if w0 >> 13 or stop > end:
                self._drop("bad_packets")
                return None
            if w0 & 0x7FF == IDLE_APID:
                self.stats["idle_packets"] += 1
            else:
                out.append(buf[pos:stop])
            pos = stop
        return out

    def _truncated(self, frame: bytes, vcid: int, map_id: int) -> UslpReceived | None:
        """A truncated frame: whole packets (rule 111) if its length is the channel's."""
        if len(frame) != self.config.truncated_frame_length:
            self._drop("truncated_frame")
            return None
        pos = TRUNCATED_HEADER_LEN + self.config.insert_zone_len
        end = len(frame) - self._fecf_len
        head = frame[pos]
        if head & 0x1F != Upid.SPACE_PACKETS:
            self._drop("not_packets")
            return None
        if head >> 5 != Rule.NO_SEGMENTATION:
            self._drop("bad_rule")
            return None
        packets = self._whole_packets(frame, pos + 1, end)
        if packets is None:
            return None
        self.stats["frames"] += 1
        self.stats["packets"] += len(packets)
        return UslpReceived(vcid, map_id, None, packets, None)
