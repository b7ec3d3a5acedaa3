"""AOS Space Data Link Protocol, CCSDS 732.0-B-4.

The frame of the inter-satellite laser links and of high-rate downlinks.
Fixed-length frames: a 6-octet primary header (version 01, 8-bit SCID, 6-bit
VCID, 24-bit VC frame count, signaling field: replay flag, VC frame count usage
flag, 2 spare bits, 4-bit VC frame count cycle), an optional insert zone, the
data field, an optional OCF and an optional FECF. Insert zone, OCF and FECF are
managed parameters of the physical channel: unlike TM, no header flag says
whether they are there. The optional Frame Header Error Control (RS(10,6) over
the header) is not implemented.

For packets, the data field is an M_PDU: a 2-octet header (5 spare bits, then
the 11-bit First Header Pointer) and the packet zone (:mod:`linkstack.ccsds.packet_zone`).
Idle frames travel on VCID 63.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.packet_zone import (
    FHP_IDLE_ONLY,
    PacketFrameReceiver,
    PacketMasterChannel,
    ReceivedFrame,
    VcMultiplexer,
)
from linkstack.errors import ChecksumError, DecodeError, EncodeError, TruncatedError, check_range

PRIMARY_HEADER_LEN = 6
MPDU_HEADER_LEN = 2
OCF_LEN = 4
FECF_LEN = 2
MAX_FRAME_LEN = 2048
DEFAULT_FRAME_LEN = 1115
VERSION = 0b01
MAX_SCID = 0xFF
MAX_VCID = 0x3F
IDLE_VCID = 0x3F
MAX_VC_COUNT = (1 << 24) - 1
IDLE_DATA = 0x55

_HDR = struct.Struct(">HHBB")  # version/SCID/VCID, count high 16 bits, count low 8, signaling


@dataclass(frozen=True, slots=True)
class AosConfig:
    """Managed parameters of an AOS physical channel."""

    frame_length: int = DEFAULT_FRAME_LEN
    scid: int = 0
    insert_zone_len: int = 0
    ocf: bool = False
    fecf: bool = True
    count_cycle: bool = True  # extend the 24-bit VC frame count with the 4-bit cycle

    def __post_init__(self) -> None:
        check_range("aos", "scid", self.scid, 0, MAX_SCID)
        check_range("aos", "insert_zone_len", self.insert_zone_len, 0, MAX_FRAME_LEN)
        check_range(
            "aos",
            "frame_length",
            self.frame_length,
            self.overhead + MPDU_HEADER_LEN + 1,
            MAX_FRAME_LEN,
        )

    @property
    def overhead(self) -> int:
        return (
            PRIMARY_HEADER_LEN
            + self.insert_zone_len
            + (OCF_LEN if self.ocf else 0)
            + (FECF_LEN if self.fecf else 0)
        )

    @property
    def data_field_len(self) -> int:
        return self.frame_length - self.overhead

    @property
    def packet_zone_len(self) -> int:
        return self.data_field_len - MPDU_HEADER_LEN

    @property
    def count_modulo(self) -> int:
        return 1 << (28 if self.count_cycle else 24)


@dataclass(frozen=True, slots=True)
class AosFrame:
    """One AOS Transfer Frame. ``data`` is the whole data field (an M_PDU for
    packet service: see :func:`mpdu_pack` / :func:`mpdu_unpack`). ``vc_count`` is
    the 24-bit count; ``count_cycle`` the 4-bit cycle, or None when the VC frame
    count usage flag is 0."""

    scid: int
    vcid: int
    vc_count: int
    data: bytes
    replay: bool = False
    count_cycle: int | None = None
    insert_zone: bytes = b""
    ocf: bytes | None = None

    def __post_init__(self) -> None:
        check_range("aos", "scid", self.scid, 0, MAX_SCID)
        check_range("aos", "vcid", self.vcid, 0, MAX_VCID)
        check_range("aos", "vc_count", self.vc_count, 0, MAX_VC_COUNT)
        if self.count_cycle is not None:
            check_range("aos", "count_cycle", self.count_cycle, 0, 15)
        if self.ocf is not None and len(self.ocf) != OCF_LEN:
            raise EncodeError("aos", "ocf", f"must be {OCF_LEN} octets, got {len(self.ocf)}")
        if not self.data:
            raise EncodeError("aos", "data", "the data field must not be empty")

    @property
    def full_count(self) -> int:
        """The VC frame count extended by the cycle (28 bits) when the cycle is in use."""
        if self.count_cycle is None:
            return self.vc_count
        return (self.count_cycle << 24) | self.vc_count

    def pack(self, fecf: bool = True) -> bytes:
        usage = self.count_cycle is not None
        signaling = (self.replay << 7) | (usage << 6) | (self.count_cycle or 0)
        frame = (
            _HDR.pack(
                (VERSION << 14) | (self.scid << 6) | self.vcid,
                self.vc_count >> 8,
                self.vc_count & 0xFF,
                signaling,
            )
            + self.insert_zone
            + self.data
            + (self.ocf or b"")
        )
        if len(frame) + (FECF_LEN if fecf else 0) > MAX_FRAME_LEN:
            raise EncodeError("aos", "frame_length", f"frame exceeds {MAX_FRAME_LEN} octets")
        if fecf:
            frame += crc16_ccitt(frame).to_bytes(2, "big")
        return frame

    @classmethod
    def unpack(
        cls, buf: bytes | bytearray | memoryview, config: AosConfig | None = None
    ) -> AosFrame:
        """Decode one frame with the managed parameters of ``config``."""
        cfg = config or AosConfig()
        n = len(buf)
        if n != cfg.frame_length:
            raise DecodeError(
                "aos",
                "frame_length",
                f"the channel's frames are {cfg.frame_length} octets, got {n}",
            )
        # n is the config's frame length, which is at least a header and an M_PDU header
        w0, count_hi, count_lo, signaling = _HDR.unpack_from(buf)
        version = w0 >> 14
        if version != VERSION:
            raise DecodeError(
                "aos", "version", f"transfer frame version must be 01, got {version:02b}"
            )
        if signaling & 0x30:
            raise DecodeError(
                "aos", "signaling.spare", f"spare bits must be 00, got {(signaling >> 4) & 3:02b}"
            )
        usage = bool(signaling & 0x40)
        cycle = signaling & 0x0F
        if not usage and cycle:
            raise DecodeError(
                "aos", "signaling.count_cycle", "must be 0000 when the count usage flag is 0"
            )
        if cfg.fecf:
            if crc16_ccitt(buf) != 0:
                got = int.from_bytes(buf[-2:], "big")
                want = crc16_ccitt(buf[:-2])
                raise ChecksumError(
                    "aos", "fecf", f"CRC mismatch: frame carries {got:#06x}, computed {want:#06x}"
                )
            n -= FECF_LEN
        ocf = None
        if cfg.ocf:
            n -= OCF_LEN
            ocf = bytes(buf[n : n + OCF_LEN])
        pos = PRIMARY_HEADER_LEN + cfg.insert_zone_len
        return cls(
            (w0 >> 6) & MAX_SCID,
            w0 & MAX_VCID,
            (count_hi << 8) | count_lo,
            bytes(buf[pos:n]),
            bool(signaling & 0x80),
            cycle if usage else None,
            bytes(buf[PRIMARY_HEADER_LEN:pos]),
            ocf,
        )


def mpdu_pack(fhp: int, zone: bytes) -> bytes:
    """An M_PDU: 5 spare bits (0), the 11-bit First Header Pointer, the packet zone."""
    check_range("aos", "fhp", fhp, 0, 0x7FF)
    return fhp.to_bytes(2, "big") + zone


def mpdu_unpack(data: bytes | bytearray | memoryview) -> tuple[int, bytes]:
    """Split an M_PDU into (first header pointer, packet zone); check its header."""
    if len(data) < MPDU_HEADER_LEN + 1:
        raise TruncatedError("aos", "mpdu_header", f"an M_PDU needs 3 octets, got {len(data)}")
    head = (data[0] << 8) | data[1]
    if head >> 11:
        raise DecodeError("aos", "mpdu_header.spare", f"spare bits must be 0, got {head >> 11:05b}")
    fhp = head & 0x7FF
    zone = bytes(data[MPDU_HEADER_LEN:])
    if fhp < FHP_IDLE_ONLY and fhp >= len(zone):
        raise DecodeError(
            "aos",
            "mpdu_header.fhp",
            f"first header pointer {fhp} lies outside the {len(zone)}-octet zone",
        )
    return fhp, zone


class AosMasterChannel(PacketMasterChannel):
    """Multiplexes virtual channels of packets into AOS frames (round robin over
    the VCs with a full frame) and emits idle frames on VCID 63 when none has one.
    ``ocf`` and ``insert_zone`` are the values put into the next frames."""

    layer = "aos"
    max_vcid = MAX_VCID

    def __init__(self, config: AosConfig | None = None, vcids: tuple[int, ...] = (0,)) -> None:
        self.config = cfg = config or AosConfig()
        mux = VcMultiplexer("aos", cfg.packet_zone_len, cfg.count_modulo, IDLE_VCID)
        super().__init__(mux, vcids)
        self.idle_count = 0
        self.ocf: bytes = bytes(OCF_LEN)
        self.insert_zone: bytes = bytes(cfg.insert_zone_len)

    def _build(self, vcid: int, count: int, data_field: bytes) -> bytes:
        cfg = self.config
        signaling = (0x40 | (count >> 24)) if cfg.count_cycle else 0
        c24 = count & MAX_VC_COUNT
        frame = _HDR.pack((VERSION << 14) | (cfg.scid << 6) | vcid, c24 >> 8, c24 & 0xFF, signaling)
        if cfg.insert_zone_len:
            if len(self.insert_zone) != cfg.insert_zone_len:
                raise EncodeError(
                    "aos",
                    "insert_zone",
                    f"must be {cfg.insert_zone_len} octets, got {len(self.insert_zone)}",
                )
            frame += self.insert_zone
        frame += data_field
        if cfg.ocf:
            if len(self.ocf) != OCF_LEN:
                raise EncodeError("aos", "ocf", f"must be {OCF_LEN} octets, got {len(self.ocf)}")
            frame += self.ocf
        self.frames += 1
        if cfg.fecf:
            return frame + crc16_ccitt(frame).to_bytes(2, "big")
        return frame

    def next_data_frame(self) -> bytes | None:
        got = self.mux.pull()
        if got is None:
            return None
        vc, count, zone, fhp = got
        return self._build(vc.vcid, count, fhp.to_bytes(2, "big") + zone)

    def idle_frame(self) -> bytes:
        count = self.idle_count
        self.idle_count = (count + 1) % self.config.count_modulo
        self.idle_frames += 1
        return self._build(IDLE_VCID, count, bytes([IDLE_DATA]) * self.config.data_field_len)


class AosReceiver(PacketFrameReceiver):
    """Receives the AOS frames of one physical channel and extracts their packets.

    Never raises on received data: bad frames are dropped and counted in
    ``stats`` (``bad_length``, ``bad_fecf``, ``bad_version``, ``wrong_scid``,
    ``bad_signaling``, ``bad_mpdu_header``); VC count gaps are lost frames;
    :meth:`all_stats` merges the VC extractors' counters.
    """

    def __init__(self, config: AosConfig | None = None, check_scid: bool = True) -> None:
        self.config = cfg = config or AosConfig()
        self.check_scid = check_scid
        super().__init__(cfg.count_modulo)
        self._zone_start = PRIMARY_HEADER_LEN + cfg.insert_zone_len + MPDU_HEADER_LEN
        self._zone_end = (
            cfg.frame_length - (OCF_LEN if cfg.ocf else 0) - (FECF_LEN if cfg.fecf else 0)
        )

    def receive(self, frame: bytes, fecf_checked: bool = False) -> ReceivedFrame | None:
        """One frame in; ``fecf_checked``: as :meth:`TmReceiver.receive`'s."""
        cfg = self.config
        if len(frame) != cfg.frame_length:
            self._drop("bad_length")
            return None
        if cfg.fecf and not fecf_checked and crc16_ccitt(frame):
            self._drop("bad_fecf")
            return None
        w0, count_hi, count_lo, signaling = _HDR.unpack_from(frame)
        if w0 >> 14 != VERSION:
            self._drop("bad_version")
            return None
        if self.check_scid and (w0 >> 6) & MAX_SCID != cfg.scid:
            self._drop("wrong_scid")
            return None
        usage = bool(signaling & 0x40)
        if signaling & 0x30 or usage != cfg.count_cycle or (not usage and signaling & 0x0F):
            self._drop("bad_signaling")
            return None
        vcid = w0 & MAX_VCID
        count = ((signaling & 0x0F) << 24) | (count_hi << 8) | count_lo
        end = self._zone_end
        ocf = frame[end : end + OCF_LEN] if cfg.ocf else None
        if vcid == IDLE_VCID:
            self.stats["frames"] += 1
            self.stats["idle_frames"] += 1
            return ReceivedFrame(vcid, count, [], ocf)
        start = self._zone_start
        head = (frame[start - 2] << 8) | frame[start - 1]
        if head >> 11:
            self._drop("bad_mpdu_header")
            return None
        self.stats["frames"] += 1
        packets = self.demux.push(vcid, count, frame[start:end], head & 0x7FF)
        self.stats["packets"] += len(packets)
        return ReceivedFrame(vcid, count, packets, ocf)
