"""COP-1 over USLP (CCSDS 732.1-B-2 with 232.1-B-2): FOP-1's and FARM-1's frames in
USLP transfer frames, sans-I/O.

COP-1's machines (:mod:`linkstack.ccsds.cop1`) keep their FDU, the
:class:`~linkstack.ccsds.tc.TcFrame`: its frame type, N(S), MAP id and sequence flags
are what they number, acknowledge and reassemble, and they stay the same whatever
carries them. :class:`UslpCop1Codec` maps one FDU to one USLP frame and back:

- the frame type to the bypass/sequence control flag and the protocol control
  command flag: Type-AD (0, 0), Type-BD (1, 0), Type-BC (1, 1); a BC frame's data
  zone holds its control command (Unlock, Set V(R)) under UPID 1 (COP-1 control
  commands), the others Space Packets under UPID 0;
- N(S) to a 1-octet VC frame count (COP-1 counts modulo 256);
- the TC segment header to the MAP id and the construction rule: unsegmented 111,
  first segment 100, continuation 101, last segment 110 (variable-length data
  zones, 732.1 4.1.4.2.2). USLP's MAP id has 4 bits, so MAPs 0..15 only. A channel
  without segment headers (``segment_header=False``) carries FDUs with no MAP id as
  MAP 0, unsegmented; a BC frame goes on MAP 0, rule 111;
- the spacecraft id to the frame's 16-bit SCID, with the source-or-destination flag
  set (an uplink: the SCID names the destination). The FDU's own 10-bit SCID field
  does not travel: FDUs of this codec carry :data:`FDU_SCID` (0), and the FOP-1
  that numbers them is configured with it, so FOP-1's check that an FDU is its
  channel's compares VCIDs only in effect; the codec checks the 16-bit SCID.

Frames are variable-length, at most ``max_frame_length`` octets, without insert
zone or OCF (the CLCW comes back in the OCF of the downlink's frames), with a FECF
unless ``fecf`` is off. :meth:`UslpCop1Codec.tc_config` is the
:class:`~linkstack.ccsds.tc.TcConfig` whose FDUs fit such frames (shorter by the
difference of the two headers). :class:`UslpCop1Receiver` is the receiving side in
the shape of :class:`~linkstack.ccsds.tc.TcReceiver`: frames checked, FDUs out, drops
counted, a :class:`~linkstack.ccsds.tc.TcReassembler` for the packets.
"""

from __future__ import annotations

from dataclasses import dataclass

from linkstack.ccsds.spp import SeqFlags
from linkstack.ccsds.tc import FECF_LEN as TC_FECF_LEN
from linkstack.ccsds.tc import HEADER_LEN as TC_HEADER_LEN
from linkstack.ccsds.tc import MAX_FRAME_LEN as TC_MAX_FRAME_LEN
from linkstack.ccsds.tc import (
    SEGMENT_HEADER_LEN,
    FduReceiver,
    TcConfig,
    TcFrame,
    TcFrameType,
)
from linkstack.ccsds.uslp import (
    FECF_LEN,
    MAX_MAP_ID,
    MAX_SCID,
    OID_VCID,
    PRIMARY_HEADER_LEN,
    Rule,
    Upid,
    UslpFrame,
    frame_ids,
)
from linkstack.errors import ConfigError, DecodeError, EncodeError, check_range

FDU_SCID = 0  # the SCID field of the FDUs: unused, the USLP header carries the 16-bit one
VC_COUNT_LEN = 1  # N(S)
TFDF_HEADER_LEN = 1  # rules 100..111 have no pointer
LAYER = "uslp_cop1"

_RULE_OF_FLAGS = {
    SeqFlags.UNSEGMENTED: Rule.NO_SEGMENTATION,
    SeqFlags.FIRST: Rule.STARTING_SEGMENT,
    SeqFlags.CONTINUATION: Rule.CONTINUING_SEGMENT,
    SeqFlags.LAST: Rule.LAST_SEGMENT,
}
_FLAGS_OF_RULE = {rule: flags for flags, rule in _RULE_OF_FLAGS.items()}
_TYPE_OF_FLAGS = {t.value: t for t in TcFrameType}  # (bypass, control command)


def frame_vcid(buf: bytes | bytearray | memoryview) -> int:
    """The virtual channel of a USLP frame, from its first 4 octets."""
    return frame_ids(buf)[1]


@dataclass(frozen=True, slots=True)
class UslpCop1Codec:
    """One uplink's managed parameters: the spacecraft's 16-bit ``scid``, the longest
    frame, the FECF, and whether FDUs carry a MAP id (TC's segment header)."""

    scid: int
    max_frame_length: int = TC_MAX_FRAME_LEN
    fecf: bool = True
    segment_header: bool = True

    def __post_init__(self) -> None:
        check_range(LAYER, "scid", self.scid, 0, MAX_SCID)
        least = self.overhead + 1
        if not least <= self.max_frame_length <= TC_MAX_FRAME_LEN + self.extra_len:
            raise ConfigError(
                LAYER,
                "max_frame_length",
                f"must be in {least}..{TC_MAX_FRAME_LEN + self.extra_len} octets (a TC "
                f"frame's room for data, {TC_MAX_FRAME_LEN} octets in all, in USLP), "
                f"got {self.max_frame_length}",
            )

    @property
    def overhead(self) -> int:
        """Octets of a frame that are not data zone."""
        fecf = FECF_LEN if self.fecf else 0
        return PRIMARY_HEADER_LEN + VC_COUNT_LEN + TFDF_HEADER_LEN + fecf

    @property
    def extra_len(self) -> int:
        """How much longer a USLP frame is than the TC frame of the same FDU."""
        tc = TC_HEADER_LEN + (SEGMENT_HEADER_LEN if self.segment_header else 0)
        return self.overhead - (TC_FECF_LEN if self.fecf else 0) - tc

    def tc_config(self) -> TcConfig:
        """The TC channel whose FDUs become frames of at most ``max_frame_length``."""
        return TcConfig(
            scid=FDU_SCID,
            max_frame_length=self.max_frame_length - self.extra_len,
            fecf=self.fecf,
            segment_header=self.segment_header,
        )

    def pack(self, fdu: TcFrame) -> bytes:
        """The USLP frame of one FDU (its SCID field is not read)."""
        bypass, control = fdu.frame_type.value
        if control:
            rule, upid, map_id = Rule.NO_SEGMENTATION, Upid.COP1_COMMANDS, 0
        else:
            upid = Upid.SPACE_PACKETS
            if fdu.map_id is None:
                if fdu.seq_flags != SeqFlags.UNSEGMENTED:
                    raise EncodeError(LAYER, "seq_flags", "a segment needs a MAP id")
                rule, map_id = Rule.NO_SEGMENTATION, 0
            else:
                if not self.segment_header:
                    raise EncodeError(
                        LAYER, "map_id", "this channel's FDUs have no MAP id (segment header)"
                    )
                if fdu.map_id > MAX_MAP_ID:
                    raise EncodeError(
                        LAYER, "map_id", f"USLP MAP ids are 0..{MAX_MAP_ID}, got {fdu.map_id}"
                    )
                rule, map_id = _RULE_OF_FLAGS[SeqFlags(fdu.seq_flags)], fdu.map_id
        if fdu.vcid == OID_VCID:
            raise EncodeError(LAYER, "vcid", f"VC {OID_VCID} is for idle data only")
        frame = UslpFrame(
            scid=self.scid,
            vcid=fdu.vcid,
            map_id=map_id,
            data=fdu.data,
            rule=rule,
            upid=upid,
            vc_count=fdu.seq,
            vc_count_len=VC_COUNT_LEN,
            dest=True,
            bypass=bool(bypass),
            protocol_command=bool(control),
        )
        n = frame.length(self.fecf)
        if n > self.max_frame_length:
            raise EncodeError(
                LAYER, "frame_length", f"{n} octets exceeds this channel's {self.max_frame_length}"
            )
        return frame.pack(self.fecf)

    def unpack(self, buf: bytes | bytearray | memoryview) -> TcFrame:
        """The FDU of one USLP frame of this uplink; :class:`DecodeError` names what
        is wrong (``scid`` for another spacecraft's frame)."""
        if len(buf) > self.max_frame_length:
            raise DecodeError(
                LAYER,
                "frame_length",
                f"{len(buf)} octets exceeds this channel's {self.max_frame_length}",
            )
        frame = UslpFrame.unpack(buf, fecf=self.fecf)
        if frame.scid != self.scid or not frame.dest:
            raise DecodeError(
                LAYER,
                "scid",
                f"frame for SCID {frame.scid} (destination flag {int(frame.dest)}), "
                f"this uplink's is {self.scid} (destination flag 1)",
            )
        if frame.truncated or frame.ocf is not None or frame.insert_zone:
            raise DecodeError(
                LAYER, "header", "uplink frames are neither truncated nor carry an OCF"
            )
        if frame.vc_count_len != VC_COUNT_LEN:
            raise DecodeError(
                LAYER,
                "vc_count_len",
                f"N(S) is a {VC_COUNT_LEN}-octet VC frame count, got {frame.vc_count_len}",
            )
        if frame.is_oid:
            raise DecodeError(LAYER, "vcid", f"VC {OID_VCID} carries idle data, not COP-1 FDUs")
        frame_type = _TYPE_OF_FLAGS.get((int(frame.bypass), int(frame.protocol_command)))
        if frame_type is None:
            raise DecodeError(
                LAYER,
                "protocol_command",
                "a sequence-controlled frame carrying a control command is no COP-1 frame type",
            )
        if frame_type is TcFrameType.BC:
            if frame.upid != Upid.COP1_COMMANDS or frame.rule != Rule.NO_SEGMENTATION:
                raise DecodeError(LAYER, "upid", "a control command frame carries UPID 1, rule 111")
            if frame.map_id:
                raise DecodeError(LAYER, "map_id", "a control command frame is on MAP 0")
            return TcFrame(FDU_SCID, frame.vcid, frame.data, frame_type, frame.vc_count)
        if frame.upid != Upid.SPACE_PACKETS:
            raise DecodeError(
                LAYER, "upid", f"AD and BD frames carry packets (UPID 0), got {frame.upid}"
            )
        flags = _FLAGS_OF_RULE.get(Rule(frame.rule))
        if flags is None:
            raise DecodeError(
                LAYER, "rule", f"construction rule {frame.rule:03b} is not one of 100..111"
            )
        map_id: int | None = frame.map_id
        if not self.segment_header:
            if flags != SeqFlags.UNSEGMENTED or frame.map_id:
                raise DecodeError(
                    LAYER, "rule", "a channel without segment headers has MAP 0, rule 111 only"
                )
            map_id = None
        return TcFrame(FDU_SCID, frame.vcid, frame.data, frame_type, frame.vc_count, map_id, flags)


class UslpCop1Receiver(FduReceiver):
    """Frame validation for COP-1 over USLP, in :class:`~linkstack.ccsds.tc.TcReceiver`'s
    shape. Never raises on received data: a frame that fails a check is dropped and
    counted in ``stats`` under ``bad_<field>`` of its :class:`DecodeError`
    (``wrong_scid`` for another spacecraft's)."""

    def __init__(self, codec: UslpCop1Codec) -> None:
        super().__init__()
        self.codec = codec

    def validate(self, buf: bytes) -> TcFrame | None:
        try:
            frame = self.codec.unpack(buf)
        except DecodeError as exc:
            self.last_error = exc
            self.stats["wrong_scid" if exc.field == "scid" else f"bad_{exc.field}"] += 1
            self.stats["frames_dropped"] += 1
            return None
        self.stats["frames"] += 1
        return frame
