"""COP-1 over USLP: FDUs (TC frames as FOP-1 and FARM-1 know them) in USLP frames and
back. Known answers built bit by bit from 732.1-B-2's field layout, round trips both
ways over random FDUs and random frames, every refusal named, and the CLTU that
carries a USLP frame cut at the USLP length field."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.ccsds.coding.chains import CltuCoding, CltuReceiver, CltuTransmitter
from linkstack.ccsds.coding.cltu import decode_cltu, encode_cltu
from linkstack.ccsds.cop1.commands import SetVr, Unlock
from linkstack.ccsds.cop1.farm import Farm
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import SeqFlags, SpacePacket
from linkstack.ccsds.tc import TcConfig, TcFrame, TcFrameType, TcVirtualChannel
from linkstack.ccsds.uslp import Rule, Upid, UslpFrame
from linkstack.ccsds.uslp_cop1 import FDU_SCID, UslpCop1Codec, UslpCop1Receiver, frame_vcid
from linkstack.errors import ConfigError, DecodeError, EncodeError

SCID = 0xABCD
CODEC = UslpCop1Codec(SCID)


def bits(*fields: tuple[int, int]) -> bytes:
    """Octets from (value, width in bits) fields, most significant bit first."""
    text = "".join(format(value, f"0{width}b") for value, width in fields)
    assert len(text) % 8 == 0
    return int(text, 2).to_bytes(len(text) // 8, "big")


def by_hand(
    *,
    vcid: int,
    map_id: int,
    bypass: int,
    control: int,
    count: int,
    rule: int,
    upid: int,
    data: bytes,
    scid: int = SCID,
    fecf: bool = True,
) -> bytes:
    """A variable-length uplink frame from the standard's fields: 4-bit version 1100,
    16-bit SCID, destination flag 1, VCID, MAP id, not truncated; the 16-bit length
    (octets - 1), bypass, protocol control command, 2 spare, OCF flag 0, count length
    001; the 1-octet count; the TFDF header (rule, UPID); the data; the FECF."""
    n = 7 + 1 + 1 + len(data) + (2 if fecf else 0)
    head = bits(
        (0b1100, 4),
        (scid, 16),
        (1, 1),
        (vcid, 6),
        (map_id, 4),
        (0, 1),
        (n - 1, 16),
        (bypass, 1),
        (control, 1),
        (0, 2),
        (0, 1),
        (1, 3),
        (count, 8),
        (rule, 3),
        (upid, 5),
    )
    frame = head + data
    return frame + crc16_ccitt(frame).to_bytes(2, "big") if fecf else frame


def test_known_answers_of_each_frame_type():
    data = SpacePacket(0x100, b"query").pack()
    ad = TcFrame(FDU_SCID, 5, data, TcFrameType.AD, 0x2A, 3, SeqFlags.UNSEGMENTED)
    want = by_hand(vcid=5, map_id=3, bypass=0, control=0, count=0x2A, rule=0b111, upid=0, data=data)
    assert CODEC.pack(ad) == want
    assert want[:4].hex() == "cabcd8a6"  # 1100, ABCD, 1, 000101, 0011, 0
    assert CODEC.unpack(want) == ad

    bd = replace(ad, frame_type=TcFrameType.BD, seq=0, map_id=7)
    want = by_hand(vcid=5, map_id=7, bypass=1, control=0, count=0, rule=0b111, upid=0, data=data)
    assert CODEC.pack(bd) == want and CODEC.unpack(want) == bd

    for command in (Unlock().pack(), SetVr(200).pack()):
        bc = TcFrame(FDU_SCID, 5, command, TcFrameType.BC, 0)
        want = by_hand(
            vcid=5, map_id=0, bypass=1, control=1, count=0, rule=0b111, upid=1, data=command
        )
        assert CODEC.pack(bc) == want and CODEC.unpack(want) == bc
        assert want[6] == 0b1100_0001  # bypass, control command, count length 1


@pytest.mark.parametrize(
    ("flags", "rule"),
    [
        (SeqFlags.FIRST, 0b100),
        (SeqFlags.CONTINUATION, 0b101),
        (SeqFlags.LAST, 0b110),
        (SeqFlags.UNSEGMENTED, 0b111),
    ],
)
def test_the_sequence_flags_are_the_construction_rule(flags, rule):
    fdu = TcFrame(FDU_SCID, 0, b"\x55" * 9, TcFrameType.AD, 255, 15, flags)
    want = by_hand(
        vcid=0, map_id=15, bypass=0, control=0, count=255, rule=rule, upid=0, data=b"\x55" * 9
    )
    assert CODEC.pack(fdu) == want and CODEC.unpack(want) == fdu


def test_a_channel_without_segment_headers_and_without_fecf():
    codec = UslpCop1Codec(7, fecf=False, segment_header=False)
    fdu = TcFrame(FDU_SCID, 1, b"\x01\x02", TcFrameType.AD, 9)  # no MAP id
    want = by_hand(
        scid=7, vcid=1, map_id=0, bypass=0, control=0, count=9, rule=0b111, upid=0,
        data=b"\x01\x02", fecf=False,
    )  # fmt: skip
    assert codec.pack(fdu) == want and codec.unpack(want) == fdu
    with pytest.raises(EncodeError) as err:
        codec.pack(replace(fdu, map_id=0))
    assert err.value.field == "map_id"
    segment = by_hand(
        scid=7, vcid=1, map_id=0, bypass=0, control=0, count=9, rule=0b100, upid=0,
        data=b"\x01\x02", fecf=False,
    )  # fmt: skip
    with pytest.raises(DecodeError) as err:
        codec.unpack(segment)
    assert err.value.field == "rule"


def test_the_fdus_fit_the_longest_frame():
    """The TC channel the codec gives builds FDUs whose USLP frames are at most
    ``max_frame_length``, the longest exactly that."""
    for segment_header in (True, False):
        codec = UslpCop1Codec(SCID, max_frame_length=300, segment_header=segment_header)
        tc = codec.tc_config()
        assert tc.scid == FDU_SCID
        vc = TcVirtualChannel(tc, 2)
        sizes = (10, 283, 100, 900) if segment_header else (10, 283, 100)  # 283: room exactly
        packets = [SpacePacket(0x100, bytes(k * 37 % 256 for k in range(n))).pack()
                   for n in sizes]  # fmt: skip
        frames = [codec.pack(f) for f in vc.frames(packets, 0)]
        assert max(len(f) for f in frames) == 300
        assert sum(len(f) == 300 for f in frames) == (4 if segment_header else 1)
    with pytest.raises(ConfigError):
        UslpCop1Codec(SCID, max_frame_length=11)
    with pytest.raises(ConfigError):
        UslpCop1Codec(SCID, max_frame_length=1028)  # the FDU would pass TC's 1024
    too_long = TcFrame(FDU_SCID, 0, bytes(290), TcFrameType.AD, 0, 0)
    with pytest.raises(EncodeError) as err:
        UslpCop1Codec(SCID, max_frame_length=300).pack(too_long)
    assert err.value.field == "frame_length"


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (UslpFrame(SCID + 1, 0, 0, b"x", vc_count_len=1, dest=True), "scid"),
        (UslpFrame(SCID, 0, 0, b"x", vc_count_len=1), "scid"),  # source, not destination
        (UslpFrame(SCID, 0, 0, b"x", vc_count_len=2, dest=True), "vc_count_len"),
        (UslpFrame(SCID, 0, 0, b"x", vc_count_len=1, dest=True, ocf=bytes(4)), "header"),
        (
            UslpFrame(SCID, 0, 0, b"x", vc_count_len=1, dest=True, protocol_command=True),
            "protocol_command",
        ),
        (UslpFrame(SCID, 0, 0, b"x", vc_count_len=1, dest=True, upid=Upid.OCTET_STREAM), "upid"),
        (UslpFrame(SCID, 0, 0, b"x", rule=Rule.OCTET_STREAM, vc_count_len=1, dest=True), "rule"),
        (
            UslpFrame(
                SCID, 0, 0, b"x", rule=Rule.PACKETS_SPANNING, pointer=0, vc_count_len=1, dest=True
            ),
            "rule",
        ),
        (
            UslpFrame(
                SCID,
                0,
                1,
                b"\0",
                upid=Upid.COP1_COMMANDS,
                vc_count_len=1,
                dest=True,
                bypass=True,
                protocol_command=True,
            ),
            "map_id",
        ),
        (
            UslpFrame(
                SCID, 0, 0, b"\0", vc_count_len=1, dest=True, bypass=True, protocol_command=True
            ),
            "upid",
        ),
        (UslpFrame(SCID, 63, 0, b"x", upid=Upid.IDLE, vc_count_len=1, dest=True), "vcid"),
    ],
)
def test_refusals_name_their_field(frame, field):
    raw = frame.pack()
    with pytest.raises(DecodeError) as err:
        CODEC.unpack(raw)
    assert err.value.field == field
    rx = UslpCop1Receiver(CODEC)
    assert rx.validate(raw) is None
    assert rx.stats["wrong_scid" if field == "scid" else f"bad_{field}"] == 1
    assert rx.stats["frames_dropped"] == 1


def test_damage_is_a_dropped_frame_never_an_exception():
    raw = CODEC.pack(TcFrame(FDU_SCID, 0, b"abc", TcFrameType.AD, 1, 0))
    rx = UslpCop1Receiver(CODEC)
    assert rx.validate(raw[:-1] + bytes([raw[-1] ^ 1])) is None
    assert rx.stats["bad_fecf"] == 1
    assert rx.validate(raw[:3]) is None and rx.validate(b"") is None
    assert rx.validate(raw) is not None and rx.stats["frames"] == 1
    assert frame_vcid(raw) == 0


fdus = st.one_of(
    st.builds(
        TcFrame,
        st.just(FDU_SCID),
        st.integers(0, 62),
        st.binary(min_size=1, max_size=200),
        st.sampled_from([TcFrameType.AD, TcFrameType.BD]),
        st.integers(0, 255),
        st.integers(0, 15),
        st.sampled_from(list(SeqFlags)),
    ),
    st.builds(
        TcFrame,
        st.just(FDU_SCID),
        st.integers(0, 62),
        st.binary(min_size=1, max_size=20),
        st.just(TcFrameType.BC),
        st.integers(0, 255),
    ),
)


@settings(max_examples=300)
@given(fdus, st.integers(0, 0xFFFF), st.booleans())
def test_fdu_to_frame_to_fdu(fdu, scid, fecf):
    codec = UslpCop1Codec(scid, fecf=fecf)
    raw = codec.pack(fdu)
    assert codec.unpack(raw) == fdu
    frame = UslpFrame.unpack(raw, fecf=fecf)  # the frame codec reads what the mapping says
    assert (frame.scid, frame.vcid, frame.dest, frame.vc_count) == (scid, fdu.vcid, True, fdu.seq)
    assert (frame.bypass, frame.protocol_command) == tuple(map(bool, fdu.frame_type.value))
    assert frame.data == fdu.data


@settings(max_examples=300)
@given(
    st.integers(0, 62),
    st.integers(0, 15),
    st.sampled_from(
        [(0, 0, 0b100), (0, 0, 0b101), (0, 0, 0b110), (0, 0, 0b111), (1, 0, 0b111), (1, 1, 0b111)]
    ),
    st.integers(0, 255),
    st.binary(min_size=1, max_size=200),
)
def test_frame_to_fdu_to_frame(vcid, map_id, kind, count, data):
    bypass, control, rule = kind
    frame = UslpFrame(
        SCID,
        vcid,
        0 if control else map_id,
        data,
        rule=rule,
        upid=Upid.COP1_COMMANDS if control else Upid.SPACE_PACKETS,
        vc_count=count,
        vc_count_len=1,
        dest=True,
        bypass=bool(bypass),
        protocol_command=bool(control),
    )
    raw = frame.pack()
    assert CODEC.pack(CODEC.unpack(raw)) == raw


@settings(max_examples=300)
@given(st.binary(max_size=60))
def test_any_octets_decode_or_are_refused_and_re_encode_exactly(raw):
    try:
        fdu = CODEC.unpack(raw)
    except DecodeError:
        return
    assert CODEC.pack(fdu) == raw


@pytest.mark.parametrize("randomize", [False, True])
def test_a_cltu_carries_a_uslp_frame_and_is_cut_at_its_length_field(randomize):
    raw = CODEC.pack(TcFrame(FDU_SCID, 0, bytes(range(40)), TcFrameType.AD, 3, 0))
    cltu = encode_cltu(raw, randomize)
    decoded = decode_cltu(cltu, randomize=randomize)
    assert len(decoded.data) > len(raw) and decoded.frame() == raw  # fill cut off
    coding = CltuCoding(randomize=randomize)
    assert CltuReceiver(coding).receive(CltuTransmitter(coding).cltu(raw)) == raw


def test_farm_takes_fdus_that_came_through_uslp():
    """Frames of a sending virtual channel, through the codec both ways, are FARM-1's
    in-sequence frames: accepted in order, packets out whole."""
    codec = UslpCop1Codec(SCID, max_frame_length=64)
    vc = TcVirtualChannel(codec.tc_config(), 0)
    packet = SpacePacket(0x100, bytes(150)).pack()
    fdus = vc.frames([packet], 0)
    assert len(fdus) > 1  # segmented
    farm, rx = Farm(0), UslpCop1Receiver(codec)
    out = []
    for fdu in fdus:
        frame = rx.validate(codec.pack(fdu))
        assert frame is not None
        farm.receive(frame)
        for accepted in farm.take():
            out += [p.packet for p in rx.reassembler.push(accepted)]
    assert out == [packet] and farm.clcw().report_value == len(fdus)


def test_tc_config_of_the_codec_is_a_valid_tc_channel():
    assert UslpCop1Codec(SCID).tc_config() == TcConfig(FDU_SCID, 1021, True, True)
    assert UslpCop1Codec(SCID, segment_header=False).tc_config() == TcConfig(
        FDU_SCID, 1020, True, False
    )
