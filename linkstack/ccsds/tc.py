"""TC Space Data Link Protocol, CCSDS 232.0-B-4.

Variable-length frames of at most 1024 octets: a 5-octet header (version 00,
bypass flag, control command flag, 2 spare bits, 10-bit SCID, 6-bit VCID, 10-bit
frame length minus one, 8-bit frame sequence number N(S)), an optional 1-octet
segment header (sequence flags and MAP ID), the data, an optional FECF.

The two flags make the frame type: Type-AD (0, 0) goes through COP-1's
acceptance checks, Type-BD (1, 0) bypasses them, Type-BC (1, 1) carries a COP-1
control command; (0, 1) is not allowed.

:class:`TcFrame` is the codec; :func:`map_data_fields` blocks and segments
packets into frame data fields; :class:`TcReassembler` does the reverse on the
receiving side, per virtual channel and MAP.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import SeqFlags, split_packets
from linkstack.errors import ChecksumError, DecodeError, EncodeError, TruncatedError, check_range

HEADER_LEN = 5
SEGMENT_HEADER_LEN = 1
FECF_LEN = 2
MAX_FRAME_LEN = 1024
MAX_SCID = 0x3FF
MAX_VCID = 0x3F
MAX_MAP_ID = 0x3F

_HDR = struct.Struct(">HHB")


class TcFrameType(Enum):
    """(bypass flag, control command flag) of each frame type."""

    AD = (0, 0)
    BD = (1, 0)
    BC = (1, 1)

    @property
    def bypass(self) -> int:
        return self.value[0]

    @property
    def control_command(self) -> int:
        return self.value[1]


_TYPE_BY_FLAGS = {t.value: t for t in TcFrameType}


@dataclass(frozen=True, slots=True)
class TcConfig:
    """Managed parameters of a TC physical channel and its virtual channels."""

    scid: int = 0
    max_frame_length: int = MAX_FRAME_LEN
    fecf: bool = True
    segment_header: bool = True  # MAP service: every AD/BD frame has a segment header

    def __post_init__(self) -> None:
        check_range("tc", "scid", self.scid, 0, MAX_SCID)
        minimum = HEADER_LEN + self.segment_header + 1 + (FECF_LEN if self.fecf else 0)
        check_range("tc", "max_frame_length", self.max_frame_length, minimum, MAX_FRAME_LEN)

    @property
    def max_data_field_len(self) -> int:
        """Octets available after the header (segment header included) in a frame."""
        return self.max_frame_length - HEADER_LEN - (FECF_LEN if self.fecf else 0)


@dataclass(frozen=True, slots=True)
class TcFrame:
    """One TC Transfer Frame. ``data`` is what follows the segment header (if any);
    ``map_id`` is None when the frame has no segment header."""

    scid: int
    vcid: int
    data: bytes
    frame_type: TcFrameType = TcFrameType.AD
    seq: int = 0  # frame sequence number N(S)
    map_id: int | None = None
    seq_flags: SeqFlags = SeqFlags.UNSEGMENTED

    def __post_init__(self) -> None:
        check_range("tc", "scid", self.scid, 0, MAX_SCID)
        check_range("tc", "vcid", self.vcid, 0, MAX_VCID)
        check_range("tc", "seq", self.seq, 0, 255)
        if not isinstance(self.frame_type, TcFrameType):
            raise EncodeError("tc", "frame_type", f"must be a TcFrameType, got {self.frame_type!r}")
        if self.map_id is not None:
            check_range("tc", "map_id", self.map_id, 0, MAX_MAP_ID)
            if self.frame_type is TcFrameType.BC:
                raise EncodeError(
                    "tc", "map_id", "control command (BC) frames have no segment header"
                )
        if self.seq_flags not in (0, 1, 2, 3):
            raise EncodeError("tc", "seq_flags", f"must be 0..3, got {self.seq_flags!r}")
        if not self.data:
            raise EncodeError("tc", "data", "the frame data field must not be empty")

    @property
    def is_control(self) -> bool:
        return self.frame_type is TcFrameType.BC

    def length(self, fecf: bool = True) -> int:
        return HEADER_LEN + (self.map_id is not None) + len(self.data) + (FECF_LEN if fecf else 0)

    def pack(self, fecf: bool = True) -> bytes:
        total = self.length(fecf)
        if total > MAX_FRAME_LEN:
            raise EncodeError(
                "tc", "frame_length", f"frame of {total} octets exceeds {MAX_FRAME_LEN}"
            )
        bypass, cc = self.frame_type.value
        head = _HDR.pack(
            (bypass << 13) | (cc << 12) | self.scid,
            (self.vcid << 10) | (total - 1),
            self.seq,
        )
        if self.map_id is not None:
            head += bytes([(self.seq_flags << 6) | self.map_id])
        frame = head + self.data
        if fecf:
            frame += crc16_ccitt(frame).to_bytes(2, "big")
        return frame

    @classmethod
    def unpack(
        cls, buf: bytes | bytearray | memoryview, fecf: bool = True, segment_header: bool = True
    ) -> TcFrame:
        """Decode one frame; ``fecf`` and ``segment_header`` are managed parameters.

        The buffer must hold exactly the frame its length field announces (see
        :func:`frame_length` to cut a frame out of a longer buffer).
        """
        n = len(buf)
        minimum = HEADER_LEN + 1 + (FECF_LEN if fecf else 0)
        if n < minimum:
            raise TruncatedError("tc", "header", f"needs at least {minimum} octets, got {n}")
        w0, w1, seq = _HDR.unpack_from(buf)
        version = w0 >> 14
        if version != 0:
            raise DecodeError(
                "tc", "version", f"transfer frame version must be 00, got {version:02b}"
            )
        flags = ((w0 >> 13) & 1, (w0 >> 12) & 1)
        frame_type = _TYPE_BY_FLAGS.get(flags)
        if frame_type is None:
            raise DecodeError(
                "tc", "control_command_flag", "bypass 0 with control command 1 is not a valid type"
            )
        spare = (w0 >> 10) & 0b11
        if spare:
            raise DecodeError("tc", "spare", f"spare bits must be 00, got {spare:02b}")
        length = (w1 & 0x3FF) + 1
        if length != n:
            raise DecodeError(
                "tc", "frame_length", f"length field says {length} octets, the frame has {n}"
            )
        if fecf:
            if crc16_ccitt(buf) != 0:
                got = int.from_bytes(buf[-2:], "big")
                want = crc16_ccitt(buf[:-2])
                raise ChecksumError(
                    "tc", "fecf", f"CRC mismatch: frame carries {got:#06x}, computed {want:#06x}"
                )
            n -= FECF_LEN
        pos = HEADER_LEN
        map_id, seq_flags = None, SeqFlags.UNSEGMENTED
        if segment_header and frame_type is not TcFrameType.BC:
            if n - pos < SEGMENT_HEADER_LEN + 1:
                raise TruncatedError("tc", "segment_header", "no data after the segment header")
            sh = buf[pos]
            seq_flags, map_id = SeqFlags(sh >> 6), sh & MAX_MAP_ID
            pos += 1
        return cls(
            w0 & MAX_SCID,
            w1 >> 10,
            bytes(buf[pos:n]),
            frame_type,
            seq,
            map_id,
            seq_flags,
        )


def frame_vcid(buf: bytes | bytearray | memoryview) -> int:
    """The virtual channel of a TC frame, read from its header without decoding it
    (``buf`` holds at least the first 3 octets)."""
    return (buf[2] >> 2) & MAX_VCID


def frame_length(buf: bytes | bytearray | memoryview) -> int:
    """Total length of the TC frame at the start of ``buf``, from its header."""
    if len(buf) < HEADER_LEN:
        raise TruncatedError("tc", "header", f"needs {HEADER_LEN} octets, got {len(buf)}")
    return ((buf[2] << 8 | buf[3]) & 0x3FF) + 1


def map_data_fields(packets: list[bytes], max_data_len: int) -> list[tuple[SeqFlags, bytes]]:
    """Block and segment packets into frame data fields of one MAP.

    Consecutive packets that fit together go into one unsegmented data field
    (blocking); a packet larger than ``max_data_len`` is cut into first,
    continuation and last segments on its own. Returns (sequence flags, data).
    """
    check_range("tc", "max_data_len", max_data_len, 1, MAX_FRAME_LEN)
    out: list[tuple[SeqFlags, bytes]] = []
    block: list[bytes] = []
    size = 0
    for pkt in packets:
        if not pkt:
            raise EncodeError("tc", "packet", "an empty packet cannot be carried")
        if len(pkt) > max_data_len:
            if block:
                out.append((SeqFlags.UNSEGMENTED, b"".join(block)))
                block, size = [], 0
            chunks = [pkt[i : i + max_data_len] for i in range(0, len(pkt), max_data_len)]
            for i, chunk in enumerate(chunks):
                flags = (
                    SeqFlags.FIRST
                    if i == 0
                    else SeqFlags.LAST
                    if i == len(chunks) - 1
                    else SeqFlags.CONTINUATION
                )
                out.append((flags, bytes(chunk)))
            continue
        if size + len(pkt) > max_data_len:
            out.append((SeqFlags.UNSEGMENTED, b"".join(block)))
            block, size = [], 0
        block.append(bytes(pkt))
        size += len(pkt)
    if block:
        out.append((SeqFlags.UNSEGMENTED, b"".join(block)))
    return out


class TcVirtualChannel:
    """Builds the frames of one TC virtual channel from packets.

    Type-AD frames are numbered here with N(S) modulo 256 (COP-1's FOP-1 takes
    this job over when it runs); Type-BD frames carry N(S) = 0.
    """

    def __init__(self, config: TcConfig, vcid: int) -> None:
        self.config = config
        self.vcid = check_range("tc", "vcid", vcid, 0, MAX_VCID)
        self.next_seq = 0

    def frames(
        self,
        packets: list[bytes],
        map_id: int = 0,
        frame_type: TcFrameType = TcFrameType.AD,
    ) -> list[TcFrame]:
        if frame_type is TcFrameType.BC:
            raise EncodeError("tc", "frame_type", "packets travel in AD or BD frames, not BC")
        cfg = self.config
        room = cfg.max_data_field_len - (SEGMENT_HEADER_LEN if cfg.segment_header else 0)
        out = []
        if cfg.segment_header:
            fields = map_data_fields(packets, room)
        else:
            fields = []
            for flags, data in map_data_fields(packets, room):
                if flags != SeqFlags.UNSEGMENTED:
                    raise EncodeError(
                        "tc",
                        "packet",
                        f"a packet longer than {room} octets needs segment headers",
                    )
                fields.append((flags, data))
        for flags, data in fields:
            seq = 0
            if frame_type is TcFrameType.AD:
                seq, self.next_seq = self.next_seq, (self.next_seq + 1) & 0xFF
            out.append(
                TcFrame(
                    cfg.scid,
                    self.vcid,
                    data,
                    frame_type,
                    seq,
                    map_id if cfg.segment_header else None,
                    flags,
                )
            )
        return out


class TcPacketOut(NamedTuple):
    vcid: int
    map_id: int | None
    packet: bytes


class TcReassembler:
    """Joins segments back into packets, per (VCID, MAP ID), and splits blocked
    data fields into packets. Drops are counted in ``stats``: ``orphan_segment``
    (continuation or last with no first), ``interrupted`` (a new first or
    unsegmented data field arrived mid-packet), ``bad_packets`` (the joined data
    is not a whole number of valid Space Packets), ``too_large``."""

    def __init__(self, max_packet_len: int = 65542) -> None:
        self.max_packet_len = max_packet_len
        self.stats: Counter[str] = Counter()
        self._parts: dict[tuple[int, int | None], bytearray] = {}  # the packet so far

    def _drop(self, key: tuple[int, int | None], reason: str) -> None:
        if self._parts.pop(key, None) is not None:
            self.stats[reason] += 1

    def _deliver(self, frame: TcFrame, data: bytes) -> list[TcPacketOut]:
        try:
            packets = split_packets(data)
        except DecodeError:
            self.stats["bad_packets"] += 1
            return []
        self.stats["packets"] += len(packets)
        return [TcPacketOut(frame.vcid, frame.map_id, p) for p in packets]

    def push(self, frame: TcFrame) -> list[TcPacketOut]:
        """Take an accepted AD or BD frame; return the packets it completes."""
        if frame.is_control:
            return []
        key = (frame.vcid, frame.map_id)
        flags = frame.seq_flags
        if flags == SeqFlags.UNSEGMENTED:
            self._drop(key, "interrupted")
            return self._deliver(frame, frame.data)
        if flags == SeqFlags.FIRST:
            self._drop(key, "interrupted")
            self._parts[key] = bytearray(frame.data)
            return []
        parts = self._parts.get(key)
        if parts is None:
            self.stats["orphan_segment"] += 1
            return []
        parts += frame.data
        if len(parts) > self.max_packet_len:
            self._drop(key, "too_large")
            return []
        if flags == SeqFlags.LAST:
            del self._parts[key]
            return self._deliver(frame, bytes(parts))
        return []


class FduReceiver(ABC):
    """What a receiver of COP-1's frames does with the valid ones, whatever frames carry
    them (TC here, USLP in :mod:`linkstack.ccsds.uslp_cop1`): a subclass's
    :meth:`validate` gives the FDU, :meth:`receive` the packets it completes; drops are
    counted in ``stats``, the last refusal kept in ``last_error``."""

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self.reassembler = TcReassembler()
        self.last_error: DecodeError | None = None

    @abstractmethod
    def validate(self, buf: bytes) -> TcFrame | None:
        """The FDU in ``buf``, or None when it is refused (counted in ``stats``)."""

    def receive(self, buf: bytes) -> list[TcPacketOut]:
        frame = self.validate(buf)
        if frame is None:
            return []
        return self.reassembler.push(frame)

    def all_stats(self) -> Counter[str]:
        total = Counter(self.stats)
        total.update(self.reassembler.stats)
        return total


class TcReceiver(FduReceiver):
    """Frame validation and packet extraction for the Type-B (bypass) path.

    Never raises on received data: a frame that fails a check is dropped and
    counted in ``stats`` under ``<field>`` of its :class:`DecodeError` (or
    ``wrong_scid``). COP-1's FARM-1 will sit between validation and the
    reassembler for Type-AD frames.
    """

    def __init__(self, config: TcConfig | None = None, check_scid: bool = True) -> None:
        super().__init__()
        self.config = config or TcConfig()
        self.check_scid = check_scid

    def validate(self, buf: bytes) -> TcFrame | None:
        cfg = self.config
        try:
            frame = TcFrame.unpack(buf, cfg.fecf, cfg.segment_header)
        except DecodeError as exc:
            self.last_error = exc
            self.stats[f"bad_{exc.field}"] += 1
            self.stats["frames_dropped"] += 1
            return None
        if self.check_scid and frame.scid != cfg.scid:
            self.stats["wrong_scid"] += 1
            self.stats["frames_dropped"] += 1
            return None
        self.stats["frames"] += 1
        return frame
