"""TM Space Data Link Protocol, CCSDS 132.0-B-3.

Fixed-length frames: a 6-octet primary header (version 00, 10-bit SCID, 3-bit
VCID, OCF flag, 8-bit master and virtual channel frame counts, data field
status with the 11-bit First Header Pointer), an optional secondary header, the
data field, an optional 4-octet Operational Control Field and an optional
2-octet Frame Error Control Field (CRC-16-CCITT).

:class:`TmFrame` packs and unpacks one frame and checks every rule of the
header. :class:`TmMasterChannel` (with its virtual channels) turns Space Packets
into frames, :class:`TmReceiver` turns frames back into packets and counts
every frame or packet it has to drop. The generator and the receiver build and
read bytes directly (struct, crcmod); they are the hot path of the emulator.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.packet_zone import (
    FHP_IDLE_ONLY,
    FHP_NO_HEADER,
    PacketFrameReceiver,
    PacketMasterChannel,
    ReceivedFrame,
    VcMultiplexer,
)
from linkstack.errors import ChecksumError, DecodeError, EncodeError, TruncatedError, check_range

PRIMARY_HEADER_LEN = 6
OCF_LEN = 4
FECF_LEN = 2
MAX_FRAME_LEN = 2048
DEFAULT_FRAME_LEN = 1115  # RS(255,223) with interleaving depth 5: 5 * 223
MAX_SCID = 0x3FF
MAX_VCID = 7
MAX_SECONDARY_HEADER_DATA = 63
IDLE_VCID = 7  # virtual channel used for idle (OID) frames by default
IDLE_DATA = 0x55

_HDR = struct.Struct(">HBBH")


@dataclass(frozen=True, slots=True)
class TmConfig:
    """Managed parameters of a TM physical and master channel."""

    frame_length: int = DEFAULT_FRAME_LEN
    scid: int = 0
    fecf: bool = True
    ocf: bool = False
    secondary_header_len: int = 0  # octets of secondary header data (0 = none, else 1..63)
    idle_vcid: int = IDLE_VCID

    def __post_init__(self) -> None:
        check_range("tm", "scid", self.scid, 0, MAX_SCID)
        check_range("tm", "idle_vcid", self.idle_vcid, 0, MAX_VCID)
        check_range("tm", "secondary_header_len", self.secondary_header_len, 0, 63)
        check_range("tm", "frame_length", self.frame_length, self.overhead + 1, MAX_FRAME_LEN)

    @property
    def overhead(self) -> int:
        """Octets of every frame that are not data field."""
        sec = 1 + self.secondary_header_len if self.secondary_header_len else 0
        return (
            PRIMARY_HEADER_LEN + sec + (OCF_LEN if self.ocf else 0) + (FECF_LEN if self.fecf else 0)
        )

    @property
    def data_field_len(self) -> int:
        return self.frame_length - self.overhead


@dataclass(frozen=True, slots=True)
class TmFrame:
    """One TM Transfer Frame, field by field."""

    scid: int
    vcid: int
    mc_count: int
    vc_count: int
    data: bytes
    fhp: int = FHP_NO_HEADER
    ocf: bytes | None = None
    secondary_header: bytes | None = None  # secondary header data, without its ID octet
    sync_flag: bool = False
    packet_order_flag: bool = False
    segment_length_id: int = 0b11

    def __post_init__(self) -> None:
        check_range("tm", "scid", self.scid, 0, MAX_SCID)
        check_range("tm", "vcid", self.vcid, 0, MAX_VCID)
        check_range("tm", "mc_count", self.mc_count, 0, 255)
        check_range("tm", "vc_count", self.vc_count, 0, 255)
        check_range("tm", "fhp", self.fhp, 0, 0x7FF)
        check_range("tm", "segment_length_id", self.segment_length_id, 0, 3)
        if self.ocf is not None and len(self.ocf) != OCF_LEN:
            raise EncodeError("tm", "ocf", f"must be {OCF_LEN} octets, got {len(self.ocf)}")
        if self.secondary_header is not None and not (
            1 <= len(self.secondary_header) <= MAX_SECONDARY_HEADER_DATA
        ):
            raise EncodeError(
                "tm",
                "secondary_header",
                f"data must be 1..{MAX_SECONDARY_HEADER_DATA} octets, "
                f"got {len(self.secondary_header)}",
            )
        if not self.sync_flag and (self.packet_order_flag or self.segment_length_id != 0b11):
            raise EncodeError(
                "tm",
                "data_field_status",
                "with the sync flag 0, the packet order flag must be 0 and the segment "
                "length id 11",
            )
        if (
            not self.sync_flag
            and self.fhp not in (FHP_NO_HEADER, FHP_IDLE_ONLY)
            and self.fhp >= len(self.data)
        ):
            raise EncodeError(
                "tm", "fhp", f"points at octet {self.fhp} of a {len(self.data)}-octet data field"
            )

    def pack(self, fecf: bool = True) -> bytes:
        sec = self.secondary_header
        dfs = (
            ((sec is not None) << 15)
            | (self.sync_flag << 14)
            | (self.packet_order_flag << 13)
            | (self.segment_length_id << 11)
            | self.fhp
        )
        parts = [
            _HDR.pack(
                (self.scid << 4) | (self.vcid << 1) | (self.ocf is not None),
                self.mc_count,
                self.vc_count,
                dfs,
            )
        ]
        if sec is not None:
            parts.append(bytes([len(sec)]))  # version 00, length = total length - 1
            parts.append(sec)
        parts.append(self.data)
        if self.ocf is not None:
            parts.append(self.ocf)
        frame = b"".join(parts)
        if len(frame) + (FECF_LEN if fecf else 0) > MAX_FRAME_LEN:
            raise EncodeError("tm", "frame_length", f"frame exceeds {MAX_FRAME_LEN} octets")
        if fecf:
            frame += crc16_ccitt(frame).to_bytes(2, "big")
        return frame

    @classmethod
    def unpack(
        cls, buf: bytes | bytearray | memoryview, fecf: bool = True, frame_length: int | None = None
    ) -> TmFrame:
        """Decode one frame; ``fecf`` and ``frame_length`` are the channel's managed parameters."""
        n = len(buf)
        if frame_length is not None and n != frame_length:
            raise DecodeError(
                "tm", "frame_length", f"the channel's frames are {frame_length} octets, got {n}"
            )
        if n > MAX_FRAME_LEN:
            raise DecodeError("tm", "frame_length", f"at most {MAX_FRAME_LEN} octets, got {n}")
        minimum = PRIMARY_HEADER_LEN + (FECF_LEN if fecf else 0)
        if n < minimum:
            raise TruncatedError(
                "tm", "primary_header", f"needs at least {minimum} octets, got {n}"
            )
        w0, mc, vc, dfs = _HDR.unpack_from(buf)
        version = w0 >> 14
        if version != 0:
            raise DecodeError(
                "tm", "version", f"transfer frame version must be 00, got {version:02b}"
            )
        if fecf:
            if crc16_ccitt(buf) != 0:
                got = int.from_bytes(buf[-2:], "big")
                want = crc16_ccitt(buf[:-2])
                raise ChecksumError(
                    "tm", "fecf", f"CRC mismatch: frame carries {got:#06x}, computed {want:#06x}"
                )
            n -= FECF_LEN
        has_ocf = bool(w0 & 1)
        end = n - (OCF_LEN if has_ocf else 0)
        pos = PRIMARY_HEADER_LEN
        sec = None
        if dfs & 0x8000:
            if pos >= end:
                raise TruncatedError("tm", "secondary_header", "no room for the secondary header")
            ident = buf[pos]
            if ident >> 6:
                raise DecodeError(
                    "tm",
                    "secondary_header.version",
                    f"secondary header version must be 00, got {ident >> 6:02b}",
                )
            sec_len = ident & 0x3F
            if sec_len == 0:
                raise DecodeError(
                    "tm", "secondary_header.length", "secondary header must carry at least 1 octet"
                )
            sec = bytes(buf[pos + 1 : pos + 1 + sec_len])
            pos += 1 + sec_len
        if end <= pos:
            raise TruncatedError(
                "tm", "data_field", f"frame of {len(buf)} octets has no data field"
            )
        sync_flag = bool(dfs & 0x4000)
        order_flag = bool(dfs & 0x2000)
        seg_id = (dfs >> 11) & 0b11
        fhp = dfs & 0x7FF
        if not sync_flag:
            if order_flag:
                raise DecodeError(
                    "tm", "packet_order_flag", "must be 0 when the synchronization flag is 0"
                )
            if seg_id != 0b11:
                raise DecodeError(
                    "tm",
                    "segment_length_id",
                    f"must be 11 when the synchronization flag is 0, got {seg_id:02b}",
                )
            if fhp < FHP_IDLE_ONLY and fhp >= end - pos:
                raise DecodeError(
                    "tm",
                    "fhp",
                    f"first header pointer {fhp} lies outside the {end - pos}-octet data field",
                )
        return cls(
            (w0 >> 4) & MAX_SCID,
            (w0 >> 1) & MAX_VCID,
            mc,
            vc,
            bytes(buf[pos:end]),
            fhp,
            bytes(buf[end : end + OCF_LEN]) if has_ocf else None,
            sec,
            sync_flag,
            order_flag,
            seg_id,
        )


class TmMasterChannel(PacketMasterChannel):
    """Master channel generation: multiplexes up to 8 virtual channels (round robin
    over those with a full frame) and emits an idle frame when none has one.

    ``ocf`` (when the configuration carries an OCF) and ``secondary_header`` are
    the values put into the next frames; the runtime sets ``ocf`` to the CLCW.
    """

    layer = "tm"
    max_vcid = MAX_VCID

    def __init__(self, config: TmConfig | None = None, vcids: tuple[int, ...] = (0,)) -> None:
        self.config = cfg = config or TmConfig()
        super().__init__(VcMultiplexer("tm", cfg.data_field_len, 256, cfg.idle_vcid), vcids)
        self.mc_count = 0
        self.idle_vc_count = 0
        self.ocf: bytes = bytes(OCF_LEN)
        self.secondary_header: bytes = bytes(cfg.secondary_header_len)

    def _build(self, vcid: int, vc_count: int, zone: bytes, fhp: int) -> bytes:
        cfg = self.config
        has_sec = cfg.secondary_header_len != 0
        w0 = (cfg.scid << 4) | (vcid << 1) | cfg.ocf
        dfs = (has_sec << 15) | (0b11 << 11) | fhp
        head = _HDR.pack(w0, self.mc_count, vc_count, dfs)
        if has_sec:
            if len(self.secondary_header) != cfg.secondary_header_len:
                raise EncodeError(
                    "tm",
                    "secondary_header",
                    f"must be {cfg.secondary_header_len} octets, got {len(self.secondary_header)}",
                )
            head += bytes([cfg.secondary_header_len]) + self.secondary_header
        if cfg.ocf:
            if len(self.ocf) != OCF_LEN:
                raise EncodeError("tm", "ocf", f"must be {OCF_LEN} octets, got {len(self.ocf)}")
            frame = head + zone + self.ocf
        else:
            frame = head + zone
        self.mc_count = (self.mc_count + 1) & 0xFF
        self.frames += 1
        if cfg.fecf:
            return frame + crc16_ccitt(frame).to_bytes(2, "big")
        return frame

    def next_data_frame(self) -> bytes | None:
        """The next frame that carries packets, or None when no VC has a full frame."""
        got = self.mux.pull()
        if got is None:
            return None
        vc, count, zone, fhp = got
        return self._build(vc.vcid, count, zone, fhp)

    def multiplex(self, frame: bytes, keep_ocf: bool = False) -> bytes:
        """A frame that a virtual channel of someone else's generated (flight software
        with a TM framer of its own), made a frame of this master channel, as the master
        channel generation function does: this channel's frame count, the current
        ``ocf`` (unless ``keep_ocf``: the frame's own, its FARM's CLCW), a new FECF.
        It must already be one of this channel's shape: its length, version, SCID, the
        OCF flag as configured, and a virtual channel not multiplexed here."""
        cfg = self.config
        if len(frame) != cfg.frame_length:
            raise EncodeError(
                "tm", "frame_length", f"must be {cfg.frame_length} octets, got {len(frame)}"
            )
        w0 = _HDR.unpack_from(frame)[0]
        if w0 >> 14:
            raise EncodeError("tm", "version", f"must be 0 (TM), got {w0 >> 14}")
        if (w0 >> 4) & MAX_SCID != cfg.scid:
            raise EncodeError(
                "tm", "scid", f"must be this channel's {cfg.scid}, got {(w0 >> 4) & MAX_SCID}"
            )
        vcid = (w0 >> 1) & MAX_VCID
        if vcid in self.mux.vcs or vcid == cfg.idle_vcid:
            raise EncodeError("tm", "vcid", f"virtual channel {vcid} is generated here")
        if bool(w0 & 1) != cfg.ocf:
            raise EncodeError("tm", "ocf_flag", f"must be {int(cfg.ocf)} on this channel")
        end = len(frame) - (FECF_LEN if cfg.fecf else 0)
        body = bytearray(frame[:end])
        body[2] = self.mc_count
        if cfg.ocf and not keep_ocf:
            body[end - OCF_LEN : end] = self.ocf
        self.mc_count = (self.mc_count + 1) & 0xFF
        self.frames += 1
        if cfg.fecf:
            body += crc16_ccitt(bytes(body)).to_bytes(2, "big")
        return bytes(body)

    def idle_frame(self) -> bytes:
        """An Only-Idle-Data frame (FHP 0x7FE) on the idle virtual channel."""
        count = self.idle_vc_count
        self.idle_vc_count = (count + 1) & 0xFF
        self.idle_frames += 1
        zone = bytes([IDLE_DATA]) * self.config.data_field_len
        return self._build(self.config.idle_vcid, count, zone, FHP_IDLE_ONLY)


class TmReceiver(PacketFrameReceiver):
    """Receives the frames of one master channel and extracts their packets.

    Never raises on received data: a frame that fails a check is dropped and
    counted in ``stats`` under its reason (``bad_length``, ``bad_fecf``,
    ``bad_version``, ``wrong_scid``, ``sync_flag_set``, ``bad_data_field_status``,
    ``bad_secondary_header``). Master and virtual channel count gaps are counted
    as lost frames; a packet cut by a loss is dropped and counted by the VC
    extractors. :meth:`all_stats` merges every counter.
    """

    def __init__(self, config: TmConfig | None = None, check_scid: bool = True) -> None:
        self.config = config or TmConfig()
        self.check_scid = check_scid
        super().__init__(256)
        self._next_mc: int | None = None

    def receive(self, frame: bytes, fecf_checked: bool = False) -> ReceivedFrame | None:
        """One frame in; ``fecf_checked``: its FECF was checked already (SDLS checks
        the protected frame's and hands the plain frame on without one computed)."""
        cfg = self.config
        n = len(frame)
        if n != cfg.frame_length:
            self._drop("bad_length")
            return None
        if cfg.fecf:
            if not fecf_checked and crc16_ccitt(frame):
                self._drop("bad_fecf")
                return None
            n -= FECF_LEN
        w0, mc, vc_count, dfs = _HDR.unpack_from(frame)
        if w0 >> 14:
            self._drop("bad_version")
            return None
        if self.check_scid and (w0 >> 4) & MAX_SCID != cfg.scid:
            self._drop("wrong_scid")
            return None
        vcid = (w0 >> 1) & MAX_VCID
        ocf = None
        if w0 & 1:
            n -= OCF_LEN
            ocf = frame[n : n + OCF_LEN]
        pos = PRIMARY_HEADER_LEN
        if dfs & 0x8000:
            ident = frame[pos]
            sec_len = ident & 0x3F
            if ident >> 6 or sec_len == 0:
                self._drop("bad_secondary_header")
                return None
            pos += 1 + sec_len
        if dfs & 0x4000:
            self._drop("sync_flag_set")  # VCA service frames: not carried by this receiver
            return None
        if pos >= n or (dfs & 0x3800) != 0x1800:  # order flag 0, segment length id 11
            self._drop("bad_data_field_status")
            return None

        self.stats["frames"] += 1
        if self._next_mc is not None and mc != self._next_mc:
            self.stats["mc_frames_lost"] += (mc - self._next_mc) & 0xFF
        self._next_mc = (mc + 1) & 0xFF
        fhp = dfs & 0x7FF
        if fhp == FHP_IDLE_ONLY and vcid == cfg.idle_vcid:
            self.stats["idle_frames"] += 1
            return ReceivedFrame(vcid, vc_count, [], ocf)
        packets = self.demux.push(vcid, vc_count, frame[pos:n], fhp)
        self.stats["packets"] += len(packets)
        return ReceivedFrame(vcid, vc_count, packets, ocf)
