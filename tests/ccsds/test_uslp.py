"""The USLP transfer frame codec: known answers built bit by bit from 732.1-B-2's
field layout, round trips both ways with spacepackets-py's USLP classes (an
independent implementation), and every refusal a DecodeError naming its field."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacepackets.uslp import frame as sp_frame
from spacepackets.uslp import header as sp_header

from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.uslp import (
    OID_VCID,
    POINTER_NONE,
    POINTER_RULES,
    Rule,
    Upid,
    UslpFrame,
    frame_ids,
    header_len,
    tfdf_header_len,
)
from linkstack.errors import ChecksumError, DecodeError, EncodeError, TruncatedError


def bits(*fields: tuple[int, int]) -> bytes:
    """Octets from (value, width in bits) fields, most significant bit first."""
    text = "".join(format(value, f"0{width}b") for value, width in fields)
    assert len(text) % 8 == 0
    for value, width in fields:
        assert 0 <= value < 1 << width
    return int(text, 2).to_bytes(len(text) // 8, "big")


def crc16(data: bytes) -> int:
    """CRC-16-CCITT (poly 0x1021, init 0xFFFF), bit by bit: the FECF, written apart
    from the codec's table-driven one."""
    crc = 0xFFFF
    for octet in data:
        for i in range(7, -1, -1):
            top = (crc >> 15) ^ ((octet >> i) & 1)
            crc = (crc << 1) & 0xFFFF
            if top:
                crc ^= 0x1021
    return crc


# -- known answers ---------------------------------------------------------------------------------

CLCW_BITS = bits(
    (0, 1),  # control word type
    (0, 2),  # CLCW version
    (0, 3),  # status
    (1, 2),  # COP in effect: COP-1
    (7, 6),  # VCID
    (0, 2),  # spare
    (0, 1),  # no RF available
    (0, 1),  # no bit lock
    (1, 1),  # lockout
    (0, 1),  # wait
    (1, 1),  # retransmit
    (2, 2),  # FARM-B counter
    (0, 1),  # spare
    (0x2A, 8),  # N(R)
)
DATA = bytes(range(0x10, 0x1A))


def full_frame_bits() -> bytes:
    """SCID 2800 (the planned constellation's last), destination flag 0, VCID 5, MAP
    3, a 2-octet VC count, a 2-octet insert zone, rule 000 with FHP 4, an OCF (a
    CLCW) and a FECF: 9 + 2 + 3 + 10 + 4 + 2 = 30 octets."""
    body = (
        bits(
            (0b1100, 4),  # transfer frame version number
            (2800, 16),  # spacecraft id
            (0, 1),  # source-or-destination: the SCID is the source
            (5, 6),  # VCID
            (3, 4),  # MAP id
            (0, 1),  # end of frame primary header: no, a full header
            (29, 16),  # frame length: 30 octets minus one
            (1, 1),  # bypass/sequence control: expedited
            (0, 1),  # protocol control command: user data
            (0, 2),  # spare
            (1, 1),  # OCF flag
            (2, 3),  # VC frame count length, octets
            (0x1234, 16),  # VC frame count
        )
        + b"\xa1\xa2"  # insert zone
        + bits((0b000, 3), (0b00000, 5), (4, 16))  # rule 000, UPID 0, FHP 4
        + DATA
        + CLCW_BITS
    )
    return body + crc16(body).to_bytes(2, "big")


def test_a_full_frame_known_answer():
    frame = UslpFrame(
        scid=2800,
        vcid=5,
        map_id=3,
        data=DATA,
        rule=Rule.PACKETS_SPANNING,
        upid=Upid.SPACE_PACKETS,
        pointer=4,
        vc_count=0x1234,
        vc_count_len=2,
        bypass=True,
        ocf=Clcw(7, 0x2A, lockout=True, retransmit=True, farm_b_counter=2).pack(),
        insert_zone=b"\xa1\xa2",
    )
    raw = full_frame_bits()
    assert frame.pack() == raw
    assert UslpFrame.unpack(raw, insert_zone_len=2, frame_length=30) == frame
    assert frame_ids(raw) == (2800, 5, 3)
    assert frame.clcw() == Clcw(7, 0x2A, lockout=True, retransmit=True, farm_b_counter=2)


def test_a_truncated_frame_known_answer():
    raw = (
        bits(
            (0b1100, 4),
            (0xFFFF, 16),  # the largest SCID
            (1, 1),  # the SCID is the destination
            (62, 6),
            (15, 4),
            (1, 1),  # end of frame primary header: a truncated frame, 4 octets
            (0b111, 3),  # no segmentation
            (0b00101, 5),  # a MAPA_SDU
        )
        + b"\x01\x02\x03\x04\x05\x06"
    )
    frame = UslpFrame(
        scid=0xFFFF,
        vcid=62,
        map_id=15,
        data=b"\x01\x02\x03\x04\x05\x06",
        upid=Upid.MAPA_SDU,
        dest=True,
        truncated=True,
    )
    assert frame.pack(fecf=False) == raw
    assert UslpFrame.unpack(raw, fecf=False) == frame
    with_fecf = raw + crc16(raw).to_bytes(2, "big")
    assert frame.pack() == with_fecf and UslpFrame.unpack(with_fecf) == frame


def test_a_variable_frame_with_no_count_and_a_last_segment():
    raw = (
        bits(
            (0b1100, 4),
            (1, 16),
            (0, 1),
            (0, 6),
            (0, 4),
            (0, 1),
            (10, 16),  # 11 octets
            (0, 1),  # sequence controlled
            (1, 1),  # protocol control command
            (0, 2),
            (0, 1),
            (0, 3),  # no VC frame count
            (0b110, 3),  # last segment: no pointer
            (0b00001, 5),  # COP-1 control commands
        )
        + b"\xee\xff\x00"
    )
    frame = UslpFrame.unpack(raw, fecf=False)
    assert frame == UslpFrame(
        1, 0, 0, b"\xee\xff\x00", Rule.LAST_SEGMENT, Upid.COP1_COMMANDS, protocol_command=True
    )
    assert frame.pack(fecf=False) == raw and frame.clcw() is None


def test_only_idle_data_frames_sit_on_vcid_63_with_the_idle_upid():
    raw = UslpFrame(9, OID_VCID, 0, b"\x55" * 5, upid=Upid.IDLE).pack(fecf=False)
    assert raw[7] == (0b111 << 5) | 31 and UslpFrame.unpack(raw, fecf=False).is_oid
    with pytest.raises(EncodeError, match="upid"):
        UslpFrame(9, OID_VCID, 0, b"\x55", upid=Upid.SPACE_PACKETS)
    bad = bytearray(raw)
    bad[7] = 0b111 << 5
    with pytest.raises(DecodeError) as err:
        UslpFrame.unpack(bytes(bad), fecf=False)
    assert err.value.field == "tfdf_header.upid"


# -- spacepackets-py, both ways --------------------------------------------------------------------


@st.composite
def frames(draw: st.DrawFn) -> tuple[UslpFrame, bool, int, bool]:
    """(frame, fixed, insert zone length, fecf) over random headers."""
    truncated = draw(st.booleans()) and draw(st.booleans())
    fixed = not truncated and draw(st.booleans())
    rules = sorted(POINTER_RULES) if fixed else [r for r in Rule if r not in POINTER_RULES]
    rule = draw(st.sampled_from(rules))
    data = draw(st.binary(min_size=1, max_size=300))
    pointer = None
    if rule in POINTER_RULES and not truncated:
        pointer = draw(st.one_of(st.just(POINTER_NONE), st.integers(0, len(data) - 1)))
    vcid = draw(st.integers(0, 63))
    upid = 31 if vcid == OID_VCID else draw(st.integers(0, 31))
    count_len = 0 if truncated else draw(st.integers(0, 7))
    iz = draw(st.integers(0, 6))
    frame = UslpFrame(
        scid=draw(st.integers(0, 0xFFFF)),
        vcid=vcid,
        map_id=draw(st.integers(0, 15)),
        data=data,
        rule=rule,
        upid=upid,
        pointer=pointer,
        vc_count=draw(st.integers(0, (1 << (8 * count_len)) - 1)),
        vc_count_len=count_len,
        dest=draw(st.booleans()),
        bypass=not truncated and draw(st.booleans()),
        protocol_command=not truncated and draw(st.booleans()),
        ocf=None
        if truncated or not draw(st.booleans())
        else draw(st.binary(min_size=4, max_size=4)),
        insert_zone=draw(st.binary(min_size=iz, max_size=iz)),
        truncated=truncated,
    )
    return frame, fixed, iz, draw(st.booleans())


def _properties(fixed: bool, iz: int, fecf: bool, length: int) -> sp_frame.FramePropertiesT:
    if fixed:
        return sp_frame.FixedFrameProperties(length, iz > 0, fecf, iz or None)
    return sp_frame.VarFrameProperties(iz > 0, fecf, length, iz or None)


def _frame_type(fixed: bool) -> sp_frame.FrameType:
    return sp_frame.FrameType.FIXED if fixed else sp_frame.FrameType.VARIABLE


def _theirs(frame: UslpFrame, fixed: bool, fecf: bool) -> sp_frame.TransferFrame:
    src_dest = sp_header.SourceOrDestField(int(frame.dest))
    if frame.truncated:
        head: sp_frame.FrameHeaderT = sp_header.TruncatedPrimaryHeader(
            frame.scid, src_dest, frame.vcid, frame.map_id
        )
    else:
        head = sp_header.PrimaryHeader(
            scid=frame.scid,
            src_dest=src_dest,
            vcid=frame.vcid,
            map_id=frame.map_id,
            frame_len=0,
            bypass_seq_ctrl_flag=sp_header.BypassSequenceControlFlag(int(frame.bypass)),
            prot_ctrl_cmd_flag=sp_header.ProtocolCommandFlag(int(frame.protocol_command)),
            op_ctrl_flag=frame.ocf is not None,
            vcf_count_len=frame.vc_count_len,
            vcf_count=frame.vc_count if frame.vc_count_len else None,
        )
    tfdf = sp_frame.TransferFrameDataField(
        sp_frame.TfdzConstructionRules(frame.rule), frame.upid, frame.data, frame.pointer
    )
    theirs = sp_frame.TransferFrame(head, tfdf, frame.insert_zone or None, frame.ocf, has_fecf=fecf)
    theirs.set_frame_len_in_header()
    return theirs


@settings(max_examples=300)
@given(frames())
def test_spacepackets_reads_our_frames(case):
    frame, fixed, iz, fecf = case
    raw = frame.pack(fecf)
    theirs = sp_frame.TransferFrame.unpack(
        raw, _frame_type(fixed), _properties(fixed, iz, fecf, len(raw))
    )
    head = theirs.header
    assert (head.scid, head.vcid, head.map_id, int(head.src_dest)) == (
        frame.scid,
        frame.vcid,
        frame.map_id,
        frame.dest,
    )
    assert head.truncated() == frame.truncated
    if not frame.truncated:
        assert isinstance(head, sp_header.PrimaryHeader)
        assert head.frame_len == len(raw) - 1
        assert (int(head.bypass_seq_ctrl_flag), int(head.prot_ctrl_cmd_flag)) == (
            frame.bypass,
            frame.protocol_command,
        )
        assert head.vcf_count_len == frame.vc_count_len
        assert (head.vcf_count or 0) == frame.vc_count
        assert bytes(theirs.op_ctrl_field or b"") == (frame.ocf or b"")
    assert bytes(theirs.insert_zone or b"") == frame.insert_zone
    tfdf = theirs.tfdf
    assert (tfdf.tfdz_contr_rules, tfdf.uslp_ident) == (frame.rule, frame.upid)
    assert tfdf.fhp_or_lvop == frame.pointer
    assert bytes(tfdf.tfdz) == frame.data


@settings(max_examples=300)
@given(frames())
def test_we_read_spacepackets_frames(case):
    frame, fixed, iz, fecf = case
    raw = bytes(_theirs(frame, fixed, fecf).pack(frame.truncated, _frame_type(fixed)))
    assert raw == frame.pack(fecf)
    got = UslpFrame.unpack(
        raw, insert_zone_len=iz, fecf=fecf, frame_length=len(raw) if fixed else None
    )
    assert got == frame


# -- refusals --------------------------------------------------------------------------------------

FIELDS = {
    "frame_length",
    "primary_header",
    "version",
    "spare",
    "data_field",
    "fecf",
    "tfdf_header.pointer",
    "tfdf_header.upid",
    "tfdf_header.rule",
    "tfdz",
}


def _refusal(raw: bytes, **managed) -> DecodeError | None:
    try:
        UslpFrame.unpack(raw, **managed)
    except DecodeError as exc:
        assert exc.layer == "uslp" and exc.field in FIELDS, exc
        return exc
    return None


@pytest.mark.parametrize(
    ("raw", "managed", "field", "kind"),
    [
        (b"\xc0\x00", {}, "primary_header", TruncatedError),
        (b"\xc0\x00\x00\x00\x00", {}, "primary_header", TruncatedError),
        (bits((0b0000, 4), (0, 28)) + b"\x00" * 8, {}, "version", DecodeError),
        (full_frame_bits()[:-1], {"insert_zone_len": 2}, "frame_length", DecodeError),
        (
            full_frame_bits(),
            {"insert_zone_len": 2, "frame_length": 31},
            "frame_length",
            DecodeError,
        ),
        (full_frame_bits()[:-1] + b"\x00", {"insert_zone_len": 2}, "fecf", ChecksumError),
        (full_frame_bits(), {"insert_zone_len": 20}, "data_field", TruncatedError),
        (full_frame_bits(), {"insert_zone_len": 12}, "tfdz", TruncatedError),
        (full_frame_bits(), {"insert_zone_len": 13}, "tfdf_header.pointer", TruncatedError),
        # exactly the fields' minimum, with and without a FECF: past that check
        (full_frame_bits(), {"insert_zone_len": 14}, "tfdf_header.pointer", TruncatedError),
        (
            full_frame_bits(),
            {"insert_zone_len": 16, "fecf": False},
            "tfdf_header.pointer",
            TruncatedError,
        ),
    ],
)
def test_each_refusal_names_its_field(raw, managed, field, kind):
    exc = _refusal(raw, **managed)
    assert isinstance(exc, kind) and exc.field == field


def test_spare_bits_and_a_pointer_past_the_zone_are_refused():
    raw = bytearray(full_frame_bits())
    raw[6] |= 0x20
    raw[-2:] = crc16(bytes(raw[:-2])).to_bytes(2, "big")
    assert _refusal(bytes(raw), insert_zone_len=2).field == "spare"
    raw = bytearray(full_frame_bits())
    raw[12:14] = (10).to_bytes(2, "big")  # the FHP: octet 10 of a 10-octet zone
    raw[-2:] = crc16(bytes(raw[:-2])).to_bytes(2, "big")
    assert _refusal(bytes(raw), insert_zone_len=2).field == "tfdf_header.pointer"


@settings(max_examples=500)
@given(st.binary(max_size=80), st.integers(0, 4), st.booleans())
def test_any_octets_decode_or_are_refused_by_field(raw, iz, fecf):
    if _refusal(raw, insert_zone_len=iz, fecf=fecf) is None:
        frame = UslpFrame.unpack(raw, insert_zone_len=iz, fecf=fecf)
        assert frame.pack(fecf) == raw  # what is accepted re-encodes to the same octets


@given(frames(), st.data())
def test_damaged_frames_decode_or_are_refused_by_field(case, data):
    frame, _, iz, fecf = case
    raw = bytearray(frame.pack(fecf))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    if _refusal(bytes(raw), insert_zone_len=iz, fecf=fecf) is None:
        assert UslpFrame.unpack(bytes(raw), insert_zone_len=iz, fecf=fecf).pack(fecf) == raw


def test_encoder_refuses_inconsistent_frames():
    with pytest.raises(EncodeError, match="pointer"):
        UslpFrame(1, 1, 1, b"x", rule=Rule.PACKETS_SPANNING)
    with pytest.raises(EncodeError, match="pointer"):
        UslpFrame(1, 1, 1, b"x", rule=Rule.NO_SEGMENTATION, pointer=0)
    with pytest.raises(EncodeError, match="pointer"):
        UslpFrame(1, 1, 1, b"xy", rule=Rule.MAPA_START, pointer=2)
    with pytest.raises(EncodeError, match="truncated"):
        UslpFrame(1, 1, 1, b"x", truncated=True, ocf=bytes(4))
    with pytest.raises(EncodeError, match="rule"):
        UslpFrame(1, 1, 1, b"x", truncated=True, rule=Rule.MAPA_START)
    with pytest.raises(EncodeError, match="vc_count"):
        UslpFrame(1, 1, 1, b"x", vc_count=256, vc_count_len=1)
    with pytest.raises(EncodeError, match="scid"):
        UslpFrame(1 << 16, 1, 1, b"x")
    with pytest.raises(EncodeError, match="data"):
        UslpFrame(1, 1, 1, b"")
    with pytest.raises(EncodeError, match="frame_length"):
        UslpFrame(1, 1, 1, bytes(65530), vc_count_len=1).pack()
    with pytest.raises(DecodeError, match="version"):
        frame_ids(b"\x00\x00\x00\x00")
    with pytest.raises(TruncatedError):
        frame_ids(b"\xc0")


def test_the_protocol_identifiers_are_sanas_as_spacepackets_has_them():
    theirs = {u.value for u in sp_frame.UslpProtocolIdentifier}
    assert {u.value for u in Upid} <= theirs
    assert Upid.SDLS_COMMANDS == sp_frame.UslpProtocolIdentifier.SDLS_CTRL_COMMANDS == 3
    assert Upid.COP1_COMMANDS == 1 and Upid.IDLE == 31


def test_a_frame_names_its_source_unless_asked_and_the_fields_keep_their_ranges():
    (word,) = struct.unpack(">I", UslpFrame(1, 2, 3, b"x").pack()[:4])
    assert word == (0b1100 << 28) | (1 << 12) | (2 << 5) | (3 << 1)  # source: bit 11 clear
    (dest,) = struct.unpack(">I", UslpFrame(1, 2, 3, b"x", dest=True).pack()[:4])
    assert dest == word | (1 << 11)
    for field, value in (("upid", 32), ("upid", -1), ("vc_count_len", -1), ("vc_count_len", 8)):
        with pytest.raises(EncodeError, match=field):
            UslpFrame(1, 2, 3, b"x", **{field: value})


def test_a_frame_of_exactly_the_longest_length_packs_and_unpacks():
    overhead = len(UslpFrame(1, 2, 3, b"x").pack()) - 1
    longest = UslpFrame(1, 2, 3, bytes(65_536 - overhead))
    raw = longest.pack()
    assert len(raw) == 65_536
    assert UslpFrame.unpack(raw).data == longest.data
    with pytest.raises(EncodeError, match="frame_length"):
        UslpFrame(1, 2, 3, bytes(65_537 - overhead)).pack()


def test_the_errors_name_the_spare_bits_and_the_fecf_the_frame_carries():
    raw = bytearray(UslpFrame(1, 2, 3, b"xyz").pack())
    spare = bytearray(raw)
    spare[6] |= 0x10  # the two spare bits of the flags octet now read 01
    with pytest.raises(DecodeError, match="got 01"):
        UslpFrame.unpack(bytes(spare), fecf=False)
    raw[-1] ^= 0xFF
    carried = int.from_bytes(raw[-2:], "big")
    with pytest.raises(ChecksumError, match=f"carries {carried:#06x}"):
        UslpFrame.unpack(bytes(raw))


def test_the_protocol_identifiers_are_the_registrys():
    assert {u.name: u.value for u in Upid} == {
        "SPACE_PACKETS": 0,
        "COP1_COMMANDS": 1,
        "COPP_COMMANDS": 2,
        "SDLS_COMMANDS": 3,
        "OCTET_STREAM": 4,
        "MAPA_SDU": 5,
        "PROXIMITY1_SPDUS": 7,
        "IDLE": 31,
    }


def test_a_data_field_header_is_3_octets_with_a_pointer_unless_truncated():
    assert tfdf_header_len(Rule.PACKETS_SPANNING) == 3
    assert tfdf_header_len(Rule.PACKETS_SPANNING, truncated=True) == 1
    assert tfdf_header_len(Rule.NO_SEGMENTATION) == 1


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(vcid=-1), "vcid"),
        (dict(vcid=64), "vcid"),
        (dict(scid=-1), "scid"),
        (dict(map_id=-1), "map_id"),
        (dict(map_id=16), "map_id"),
        (dict(rule=-1), "rule"),
        (dict(rule=8), "rule"),
        (dict(dest=-1), "dest"),
        (dict(bypass=2), "bypass"),
        (dict(rule=Rule.PACKETS_SPANNING, pointer=-1), "pointer"),
        (dict(rule=Rule.PACKETS_SPANNING, pointer=0x10000), "pointer"),
        (dict(ocf=bytes(3)), "ocf"),
        (dict(vc_count=-1, vc_count_len=1), "vc_count"),
        (dict(vc_count=256, vc_count_len=1), "vc_count"),
    ],
)
def test_a_vcid_or_vc_count_out_of_range_is_refused_naming_it(kwargs, field):
    with pytest.raises(EncodeError) as err:
        UslpFrame(**{"scid": 1, "vcid": 1, "map_id": 0, "data": b"x", **kwargs})
    assert err.value.field == field


def test_four_octets_of_a_non_truncated_frame_are_short_of_its_primary_header():
    raw = UslpFrame(1, 1, 0, b"x").pack()
    with pytest.raises(TruncatedError, match="needs 7 octets, got 4"):
        UslpFrame.unpack(raw[:4])


def test_a_crc_mismatch_names_the_crc_carried_and_the_one_computed():
    raw = UslpFrame(1, 1, 0, b"abc").pack()
    bad = raw[:-2] + bytes([raw[-2] ^ 0xFF, raw[-1]])
    carried, computed = int.from_bytes(bad[-2:], "big"), crc16_ccitt(raw[:-2])
    with pytest.raises(ChecksumError, match=f"carries {carried:#06x}, computed {computed:#06x}"):
        UslpFrame.unpack(bad)


def test_the_construction_rules_are_the_standards():
    """CCSDS 732.1-B-2 table 4-3: the TFDZ construction rules, 3 bits each."""
    assert {r.name: r.value for r in Rule} == {
        "PACKETS_SPANNING": 0b000,
        "MAPA_START": 0b001,
        "MAPA_CONTINUING": 0b010,
        "OCTET_STREAM": 0b011,
        "STARTING_SEGMENT": 0b100,
        "CONTINUING_SEGMENT": 0b101,
        "LAST_SEGMENT": 0b110,
        "NO_SEGMENTATION": 0b111,
    }


def test_a_wrong_version_is_named_in_four_bits():
    raw = bytearray(UslpFrame(1, 1, 0, b"x").pack())
    raw[0] = (0b0010 << 4) | (raw[0] & 0x0F)
    with pytest.raises(DecodeError, match=r"must be 1100, got 0010$"):
        frame_ids(raw)
    with pytest.raises(DecodeError, match=r"must be 1100, got 0010$"):
        UslpFrame.unpack(bytes(raw), fecf=False)


def test_the_defaults_a_full_header_and_a_fecf_counted():
    assert header_len(3) == 7 + 3
    frame = UslpFrame(1, 1, 0, b"abc", ocf=bytes(4))
    assert frame.length() == len(frame.pack()) == 7 + 1 + 3 + 4 + 2


def test_a_frame_longer_than_65536_octets_is_refused_before_its_header_is_read():
    with pytest.raises(DecodeError, match="at most 65536 octets, got 65537") as err:
        UslpFrame.unpack(bytes(65537))
    assert err.value.field == "frame_length"


def test_a_length_field_that_disagrees_names_both_lengths():
    raw = bytearray(UslpFrame(1, 1, 0, bytes(92)).pack())  # 7 + 1 + 92 + 2 = 102
    raw[4:6] = (100 - 1).to_bytes(2, "big")
    with pytest.raises(DecodeError, match=r"the header says 100 octets, the frame has 102$"):
        UslpFrame.unpack(bytes(raw))


def _bare(insert_zone_len: int, ocf: bool, fecf: bool, drop: int) -> bytes:
    """A full-header frame with every field but the data, less its last ``drop``
    octets before the FECF; its length field and FECF fit what is left."""
    body = bytearray((0xC << 28 | 1 << 12 | 1 << 5).to_bytes(4, "big"))
    body += b"\x00\x00" + bytes([0x08 if ocf else 0])  # length (set below), flags
    body += bytes(insert_zone_len) + bytes([Rule.NO_SEGMENTATION << 5])
    body += bytes(4) if ocf else b""
    body = body[: len(body) - drop]
    n = len(body) + (2 if fecf else 0)
    body[4:6] = (n - 1).to_bytes(2, "big")
    return bytes(body) + (crc16_ccitt(body).to_bytes(2, "big") if fecf else b"")


@pytest.mark.parametrize("ocf", [False, True])
@pytest.mark.parametrize("fecf", [False, True])
@pytest.mark.parametrize("insert_zone_len", [0, 3])
def test_the_shortest_frame_counts_every_field_and_the_data_zone_is_checked_after(
    insert_zone_len, ocf, fecf
):
    """Header (7), insert zone, data field header (1), OCF, FECF: one octet fewer is
    refused at the data field, naming the minimum; exactly that many holds an empty
    data zone, refused as such."""
    minimum = 7 + insert_zone_len + 1 + (4 if ocf else 0) + (2 if fecf else 0)
    exact = _bare(insert_zone_len, ocf, fecf, drop=0)
    assert len(exact) == minimum
    with pytest.raises(TruncatedError) as err:
        UslpFrame.unpack(exact, insert_zone_len=insert_zone_len, fecf=fecf)
    assert err.value.field == "tfdz"
    short = _bare(insert_zone_len, ocf, fecf, drop=1)
    with pytest.raises(
        TruncatedError, match=f"need at least {minimum} octets, got {minimum - 1}$"
    ) as err:
        UslpFrame.unpack(short, insert_zone_len=insert_zone_len, fecf=fecf)
    assert err.value.field == "data_field"


def test_seven_octets_hold_a_whole_primary_header_so_the_data_field_is_what_is_short():
    header = (0xC << 28 | 1 << 12 | 1 << 5).to_bytes(4, "big") + (6).to_bytes(2, "big") + b"\x00"
    with pytest.raises(TruncatedError) as err:
        UslpFrame.unpack(header, fecf=False)
    assert err.value.field == "data_field"


def test_a_truncated_frame_with_a_pointer_rule_is_refused_as_received():
    raw = bytearray(UslpFrame(1, 1, 0, b"xyz", truncated=True).pack(fecf=False))
    raw[4] = (Rule.PACKETS_SPANNING << 5) | Upid.SPACE_PACKETS  # the data field header
    with pytest.raises(DecodeError) as err:
        UslpFrame.unpack(bytes(raw), fecf=False)
    assert err.value.field == "tfdf_header.rule"
