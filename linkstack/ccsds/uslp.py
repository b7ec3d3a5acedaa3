"""Unified Space Data Link Protocol (USLP), CCSDS 732.1-B-2: the transfer frame.

A frame, field by field (most significant bit first):

- the primary header: transfer frame version number ``1100`` (4 bits), spacecraft
  id (16 bits), source-or-destination flag (1: the SCID names the destination), VC
  id (6 bits), MAP id (4 bits), end-of-frame-primary-header flag (1: a truncated
  frame, whose header stops here, 4 octets); then the frame length (16 bits, octets
  minus one), the bypass/sequence control flag (1: expedited, 0: sequence
  controlled), the protocol control command flag, 2 spare bits ``00``, the OCF
  flag, the VC frame count length (3 bits, octets) and the VC frame count itself
  (0..7 octets);
- the insert zone, whose length is a managed parameter of the physical channel;
- the transfer frame data field: its header (the 3-bit TFDZ construction rule, the
  5-bit USLP protocol id (UPID), and for the fixed-length-TFDZ rules 000, 001 and
  010 a 16-bit first header pointer or last valid octet pointer) and the data zone;
- the operational control field (4 octets, when the OCF flag says so: a CLCW of
  :mod:`linkstack.ccsds.cop1.clcw`) and the frame error control field (CRC-16 of
  :mod:`linkstack.ccsds.crc`, a managed parameter).

A truncated frame has the 4-octet header, the insert zone, a 1-octet data field
header (so none of the pointer's rules), the data zone and the FECF, as the
channel's managed parameters say; it has no OCF and no VC frame count. Only Idle
Data (OID) frames travel on VCID 63 and carry idle data (UPID 31).

:class:`UslpFrame` packs and unpacks one frame and checks every rule of its headers.
The channels (MAP and VC multiplexing, packets in and out, the receivers' drop
counters) are in :mod:`linkstack.ccsds.uslp_channels`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from linkstack.ccsds.cop1.clcw import Clcw, is_clcw
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.errors import ChecksumError, DecodeError, EncodeError, TruncatedError, check_range

VERSION = 0b1100
ID_LEN = 4  # the identification fields: the whole header of a truncated frame
PRIMARY_HEADER_LEN = 7  # a full header without its VC frame count
TRUNCATED_HEADER_LEN = ID_LEN
MAX_VC_COUNT_LEN = 7
OCF_LEN = 4
FECF_LEN = 2
MAX_FRAME_LEN = 1 << 16  # the frame length field counts octets minus one in 16 bits
MAX_SCID = 0xFFFF
MAX_VCID = 0x3F
MAX_MAP_ID = 0x0F
OID_VCID = 0x3F  # Only Idle Data frames
POINTER_NONE = 0xFFFF  # FHP: no packet header starts in the zone; LVOP: the SDU goes on
IDLE_DATA = 0x55  # the idle pattern is mission-defined (as TM's and AOS's here)

_ID = struct.Struct(">I")
_LEN_FLAGS = struct.Struct(">HB")
_POINTER = struct.Struct(">H")


class Rule(IntEnum):
    """The TFDZ construction rules (3 bits)."""

    PACKETS_SPANNING = 0b000  # packets spanning fixed-length zones, first header pointer
    MAPA_START = 0b001  # the start of a MAPA_SDU or VCA_SDU, last valid octet pointer
    MAPA_CONTINUING = 0b010  # a continuing portion of one, last valid octet pointer
    OCTET_STREAM = 0b011
    STARTING_SEGMENT = 0b100  # variable-length zones: the first segment of an SDU
    CONTINUING_SEGMENT = 0b101
    LAST_SEGMENT = 0b110
    NO_SEGMENTATION = 0b111  # one or more whole SDUs (or packets)


POINTER_RULES = frozenset({Rule.PACKETS_SPANNING, Rule.MAPA_START, Rule.MAPA_CONTINUING})
"""The rules of fixed-length data zones, whose data field header carries the pointer."""


class Upid(IntEnum):
    """USLP protocol identifiers (SANA's registry) of the data in the zone."""

    SPACE_PACKETS = 0b00000  # Space Packets or Encapsulation Packets
    COP1_COMMANDS = 0b00001  # COP-1 control commands (Unlock, Set V(R))
    COPP_COMMANDS = 0b00010  # COP-P control commands
    SDLS_COMMANDS = 0b00011  # SDLS control commands
    OCTET_STREAM = 0b00100  # user-defined octet stream
    MAPA_SDU = 0b00101  # mission-specific information-1 (MAPA_SDU)
    PROXIMITY1_SPDUS = 0b00111
    IDLE = 0b11111  # idle data


def frame_ids(frame: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """(SCID, VCID, MAP id) of a frame, read from its first 4 octets only."""
    if len(frame) < ID_LEN:
        raise TruncatedError("uslp", "primary_header", f"needs {ID_LEN} octets, got {len(frame)}")
    (w,) = _ID.unpack_from(frame)
    if w >> 28 != VERSION:
        raise DecodeError("uslp", "version", f"must be 1100, got {w >> 28:04b}")
    return (w >> 12) & MAX_SCID, (w >> 5) & MAX_VCID, (w >> 1) & MAX_MAP_ID


def id_word(scid: int, vcid: int, map_id: int, dest: bool, truncated: bool = False) -> int:
    """The first 32 bits of a frame's primary header."""
    return (VERSION << 28) | (scid << 12) | (dest << 11) | (vcid << 5) | (map_id << 1) | truncated


def header_len(vc_count_len: int, truncated: bool = False) -> int:
    """Octets of a primary header."""
    return TRUNCATED_HEADER_LEN if truncated else PRIMARY_HEADER_LEN + vc_count_len


def tfdf_header_len(rule: int, truncated: bool = False) -> int:
    """Octets of a transfer frame data field header: 3 with the pointer, else 1."""
    return 3 if rule in POINTER_RULES and not truncated else 1


@dataclass(frozen=True, slots=True)
class UslpFrame:
    """One USLP transfer frame. ``data`` is the transfer frame data zone; ``pointer``
    the first header / last valid octet pointer, present (an int) exactly when the
    rule has one and the frame is not truncated. ``dest``: the SCID names the
    destination. ``bypass``: expedited (1) or sequence controlled (0).
    ``vc_count_len`` octets of VC frame count carry ``vc_count``."""

    scid: int
    vcid: int
    map_id: int
    data: bytes
    rule: int = Rule.NO_SEGMENTATION
    upid: int = Upid.SPACE_PACKETS
    pointer: int | None = None
    vc_count: int = 0
    vc_count_len: int = 0
    dest: bool = False
    bypass: bool = False
    protocol_command: bool = False
    ocf: bytes | None = None
    insert_zone: bytes = b""
    truncated: bool = False

    def __post_init__(self) -> None:
        check_range("uslp", "scid", self.scid, 0, MAX_SCID)
        check_range("uslp", "vcid", self.vcid, 0, MAX_VCID)
        check_range("uslp", "map_id", self.map_id, 0, MAX_MAP_ID)
        check_range("uslp", "rule", self.rule, 0, 7)
        check_range("uslp", "upid", self.upid, 0, 31)
        check_range("uslp", "vc_count_len", self.vc_count_len, 0, MAX_VC_COUNT_LEN)
        check_range("uslp", "vc_count", self.vc_count, 0, (1 << (8 * self.vc_count_len)) - 1)
        for name in ("dest", "bypass", "protocol_command", "truncated"):
            check_range("uslp", name, getattr(self, name), 0, 1)
        if not self.data:
            raise EncodeError("uslp", "data", "the transfer frame data zone must not be empty")
        if self.vcid == OID_VCID and self.upid != Upid.IDLE:
            raise EncodeError(
                "uslp",
                "upid",
                f"an OID frame (VCID 63) carries idle data (UPID 31), not {self.upid}",
            )
        if self.ocf is not None and len(self.ocf) != OCF_LEN:
            raise EncodeError("uslp", "ocf", f"must be {OCF_LEN} octets, got {len(self.ocf)}")
        if self.truncated and (
            self.ocf is not None or self.vc_count_len or self.bypass or self.protocol_command
        ):
            raise EncodeError(
                "uslp",
                "truncated",
                "a truncated frame has no OCF, VC frame count, bypass or protocol command flag",
            )
        if self.truncated and self.rule in POINTER_RULES:
            raise EncodeError(
                "uslp", "rule", f"a truncated frame has no pointer for rule {self.rule:03b}"
            )
        wants_pointer = self.rule in POINTER_RULES and not self.truncated
        if wants_pointer != (self.pointer is not None):
            raise EncodeError(
                "uslp",
                "pointer",
                f"rule {self.rule:03b} {'needs' if wants_pointer else 'has no'} pointer"
                + (" in a truncated frame" if self.truncated else ""),
            )
        if self.pointer is not None:
            check_range("uslp", "pointer", self.pointer, 0, POINTER_NONE)
            if self.pointer != POINTER_NONE and self.pointer >= len(self.data):
                raise EncodeError(
                    "uslp",
                    "pointer",
                    f"points at octet {self.pointer} of a {len(self.data)}-octet data zone",
                )

    @property
    def is_oid(self) -> bool:
        """An Only Idle Data frame."""
        return self.vcid == OID_VCID

    def clcw(self) -> Clcw | None:
        """The CLCW in the OCF, or None when the frame carries no OCF or another report."""
        if self.ocf is None or not is_clcw(self.ocf):
            return None
        return Clcw.unpack(self.ocf)

    def length(self, fecf: bool = True) -> int:
        """Octets of the packed frame."""
        return (
            header_len(self.vc_count_len, self.truncated)
            + len(self.insert_zone)
            + tfdf_header_len(self.rule, self.truncated)
            + len(self.data)
            + (OCF_LEN if self.ocf is not None else 0)
            + (FECF_LEN if fecf else 0)
        )

    def pack(self, fecf: bool = True) -> bytes:
        n = self.length(fecf)
        if n > MAX_FRAME_LEN:
            raise EncodeError("uslp", "frame_length", f"{n} octets, at most {MAX_FRAME_LEN}")
        parts = [_ID.pack(id_word(self.scid, self.vcid, self.map_id, self.dest, self.truncated))]
        if not self.truncated:
            flags = (
                (self.bypass << 7)
                | (self.protocol_command << 6)
                | ((self.ocf is not None) << 3)
                | self.vc_count_len
            )
            parts.append(_LEN_FLAGS.pack(n - 1, flags))
            parts.append(self.vc_count.to_bytes(self.vc_count_len, "big"))
        parts.append(self.insert_zone)
        parts.append(bytes([(self.rule << 5) | self.upid]))
        if self.pointer is not None:
            parts.append(_POINTER.pack(self.pointer))
        parts.append(self.data)
        if self.ocf is not None:
            parts.append(self.ocf)
        frame = b"".join(parts)
        if fecf:
            frame += crc16_ccitt(frame).to_bytes(2, "big")
        return frame

    @classmethod
    def unpack(
        cls,
        buf: bytes | bytearray | memoryview,
        *,
        insert_zone_len: int = 0,
        fecf: bool = True,
        frame_length: int | None = None,
    ) -> UslpFrame:
        """Decode one frame with the channel's managed parameters: the insert zone's
        length, whether frames end in a FECF, and (fixed-length frames) their length."""
        n = len(buf)
        if frame_length is not None and n != frame_length:
            raise DecodeError(
                "uslp", "frame_length", f"the channel's frames are {frame_length} octets, got {n}"
            )
        if n > MAX_FRAME_LEN:
            raise DecodeError("uslp", "frame_length", f"at most {MAX_FRAME_LEN} octets, got {n}")
        if n < ID_LEN:
            raise TruncatedError("uslp", "primary_header", f"needs {ID_LEN} octets, got {n}")
        (w,) = _ID.unpack_from(buf)
        if w >> 28 != VERSION:
            raise DecodeError("uslp", "version", f"must be 1100, got {w >> 28:04b}")
        truncated = bool(w & 1)
        flags = count = count_len = 0
        if truncated:
            pos = TRUNCATED_HEADER_LEN
        else:
            if n < PRIMARY_HEADER_LEN:
                raise TruncatedError(
                    "uslp", "primary_header", f"needs {PRIMARY_HEADER_LEN} octets, got {n}"
                )
            length_field, flags = _LEN_FLAGS.unpack_from(buf, ID_LEN)
            if length_field + 1 != n:
                raise DecodeError(
                    "uslp",
                    "frame_length",
                    f"the header says {length_field + 1} octets, the frame has {n}",
                )
            if flags & 0x30:
                raise DecodeError("uslp", "spare", f"must be 00, got {(flags >> 4) & 3:02b}")
            count_len = flags & 0x07
            pos = PRIMARY_HEADER_LEN + count_len
            count = int.from_bytes(buf[PRIMARY_HEADER_LEN:pos], "big")
        has_ocf = bool(flags & 0x08)
        minimum = (
            pos + insert_zone_len + 1 + (OCF_LEN if has_ocf else 0) + (FECF_LEN if fecf else 0)
        )
        if n < minimum:
            raise TruncatedError(
                "uslp", "data_field", f"the frame's fields need at least {minimum} octets, got {n}"
            )
        if fecf:
            if crc16_ccitt(buf) != 0:
                got = int.from_bytes(buf[-2:], "big")
                want = crc16_ccitt(buf[:-2])
                raise ChecksumError(
                    "uslp", "fecf", f"CRC mismatch: frame carries {got:#06x}, computed {want:#06x}"
                )
            n -= FECF_LEN
        ocf = None
        if has_ocf:
            n -= OCF_LEN
            ocf = bytes(buf[n : n + OCF_LEN])
        insert_zone = bytes(buf[pos : pos + insert_zone_len])
        pos += insert_zone_len
        head = buf[pos]
        rule, upid = head >> 5, head & 0x1F
        pos += 1
        pointer = None
        if truncated and rule in POINTER_RULES:
            raise DecodeError(
                "uslp",
                "tfdf_header.rule",
                f"a truncated frame has no pointer, so no rule {rule:03b}",
            )
        if rule in POINTER_RULES:
            if n - pos < 2:
                raise TruncatedError(
                    "uslp", "tfdf_header.pointer", f"rule {rule:03b} needs a 2-octet pointer"
                )
            (pointer,) = _POINTER.unpack_from(buf, pos)
            pos += 2
        data = bytes(buf[pos:n])
        if not data:
            raise TruncatedError("uslp", "tfdz", "the transfer frame data zone is empty")
        if pointer is not None and pointer != POINTER_NONE and pointer >= len(data):
            raise DecodeError(
                "uslp",
                "tfdf_header.pointer",
                f"pointer {pointer} lies outside the {len(data)}-octet data zone",
            )
        vcid = (w >> 5) & MAX_VCID
        if vcid == OID_VCID and upid != Upid.IDLE:
            raise DecodeError(
                "uslp", "tfdf_header.upid", f"an OID frame (VCID 63) carries UPID 31, got {upid}"
            )
        return cls(
            scid=(w >> 12) & MAX_SCID,
            vcid=vcid,
            map_id=(w >> 1) & MAX_MAP_ID,
            data=data,
            rule=Rule(rule),
            upid=upid,
            pointer=pointer,
            vc_count=count,
            vc_count_len=count_len,
            dest=bool(w & 0x800),
            bypass=bool(flags & 0x80),
            protocol_command=bool(flags & 0x40),
            ocf=ocf,
            insert_zone=insert_zone,
            truncated=truncated,
        )
