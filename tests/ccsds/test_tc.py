import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import SeqFlags, SpacePacket, parse_primary_header
from linkstack.ccsds.tc import (
    HEADER_LEN,
    TcConfig,
    TcFrame,
    TcFrameType,
    TcReassembler,
    TcReceiver,
    TcVirtualChannel,
    frame_length,
    map_data_fields,
)
from linkstack.errors import ChecksumError, DecodeError, EncodeError, TruncatedError
from tests.helpers import with_octet


def test_known_answer_frame(kat):
    raw = bytes.fromhex(kat["cltu_01"]["tc_frame"])
    frame = TcFrame.unpack(raw)
    assert frame.frame_type is TcFrameType.BD
    assert (frame.scid, frame.vcid, frame.seq) == (0x2F6, 0, 0)
    assert len(raw) == frame_length(raw) == 256
    assert (frame.map_id, frame.seq_flags) == (2, SeqFlags.FIRST)
    # the data is the first segment of a 276-octet TC Space Packet
    h = parse_primary_header(frame.data)
    assert (h.packet_type, h.apid, h.packet_length) == (1, 0x28C, 276)
    assert frame.pack() == raw


@st.composite
def tc_frames(draw):
    ftype = draw(st.sampled_from(TcFrameType))
    seg = ftype is not TcFrameType.BC and draw(st.booleans())
    return TcFrame(
        scid=draw(st.integers(0, 1023)),
        vcid=draw(st.integers(0, 63)),
        data=draw(st.binary(min_size=1, max_size=1016 if seg else 1017)),
        frame_type=ftype,
        seq=draw(st.integers(0, 255)),
        map_id=draw(st.integers(0, 63)) if seg else None,
        seq_flags=draw(st.sampled_from(SeqFlags)) if seg else SeqFlags.UNSEGMENTED,
    )


@given(tc_frames(), st.booleans())
def test_frame_round_trip(frame, fecf):
    raw = frame.pack(fecf)
    assert len(raw) <= 1024 + (0 if fecf else 2)
    assert TcFrame.unpack(raw, fecf, segment_header=frame.map_id is not None) == frame


def test_frame_type_flags():
    for ftype, first in ((TcFrameType.AD, 0x00), (TcFrameType.BD, 0x20), (TcFrameType.BC, 0x30)):
        assert TcFrame(0, 0, b"\x00", ftype).pack()[0] & 0x30 == first


def test_control_command_frames_never_have_a_segment_header():
    raw = TcFrame(3, 1, b"\x82\x00\x05", TcFrameType.BC).pack()
    frame = TcFrame.unpack(raw, segment_header=True)
    assert frame.is_control and frame.map_id is None and frame.data == b"\x82\x00\x05"
    with pytest.raises(EncodeError):
        TcFrame(3, 1, b"\x00", TcFrameType.BC, map_id=1)


@pytest.mark.parametrize(
    "index, value, field",
    [
        (0, 0x40, "version"),
        (0, 0x10, "control_command_flag"),  # bypass 0, control command 1
        (0, 0x04, "spare"),
    ],
)
def test_malformed_headers_are_refused_naming_the_field(index, value, field):
    raw = TcFrame(1, 1, b"abc", map_id=0).pack()
    with pytest.raises(DecodeError) as err:
        TcFrame.unpack(with_octet(raw, index, raw[index] | value))
    assert (err.value.layer, err.value.field) == ("tc", field)


def test_length_field_must_match_the_frame():
    raw = TcFrame(1, 1, b"abcdef", map_id=0).pack()
    with pytest.raises(DecodeError, match="frame_length"):
        TcFrame.unpack(raw + b"\x55")
    with pytest.raises(DecodeError, match="frame_length"):
        TcFrame.unpack(raw[:-1])
    with pytest.raises(TruncatedError):
        TcFrame.unpack(raw[:4])
    with pytest.raises(TruncatedError):
        frame_length(raw[:4])


def test_bad_crc_and_missing_data_after_segment_header():
    raw = TcFrame(1, 1, b"abc", map_id=0).pack()
    carried, computed = int.from_bytes(raw[-2:]) ^ 4, crc16_ccitt(raw[:-2])
    with pytest.raises(ChecksumError, match=f"carries {carried:#06x}, computed {computed:#06x}"):
        TcFrame.unpack(raw[:-1] + bytes([raw[-1] ^ 4]))
    only_sh = TcFrame(1, 1, b"\x03").pack()  # one data octet, read as a segment header
    with pytest.raises(TruncatedError, match="segment_header"):
        TcFrame.unpack(only_sh, segment_header=True)


def test_frames_longer_than_1024_octets_are_refused():
    with pytest.raises(EncodeError, match="1024"):
        TcFrame(1, 1, bytes(1018)).pack()


@pytest.mark.parametrize(
    "kwargs", [dict(scid=1024), dict(vcid=64), dict(seq=256), dict(map_id=64), dict(data=b"")]
)
def test_encode_refuses_out_of_range_fields(kwargs):
    with pytest.raises(EncodeError):
        TcFrame(**{**dict(scid=1, vcid=1, data=b"x"), **kwargs})


# -- segmentation, blocking, reassembly ------------------------------------------------


def test_blocking_and_segmentation_of_data_fields():
    small = [bytes([i]) * 100 for i in range(5)]
    big = bytes(range(256)) * 10
    fields = map_data_fields([*small, big, small[0]], 300)
    assert [f for f, _ in fields] == [
        SeqFlags.UNSEGMENTED, SeqFlags.UNSEGMENTED,  # 3 + 2 small ones blocked
        SeqFlags.FIRST, *[SeqFlags.CONTINUATION] * 7, SeqFlags.LAST,
        SeqFlags.UNSEGMENTED,
    ]  # fmt: skip
    assert all(len(d) <= 300 for _, d in fields)
    assert b"".join(d for _, d in fields) == b"".join([*small, big, small[0]])


@given(
    st.lists(st.integers(7, 5000), min_size=1, max_size=15), st.integers(0, 2**32), st.booleans()
)
def test_packets_of_random_sizes_come_out_identical_and_in_order(sizes, seed, fecf):
    rng = random.Random(seed)
    pkts = [SpacePacket(rng.randrange(2047), rng.randbytes(s - 6)).pack() for s in sizes]
    cfg = TcConfig(scid=0x2F6, fecf=fecf, max_frame_length=rng.choice([64, 256, 1024]))
    vc = TcVirtualChannel(cfg, vcid=3)
    frames = vc.frames(
        pkts, map_id=rng.randrange(64), frame_type=rng.choice([TcFrameType.AD, TcFrameType.BD])
    )
    assert all(len(f.pack(fecf)) <= cfg.max_frame_length for f in frames)
    rx = TcReceiver(cfg)
    out = [o.packet for f in frames for o in rx.receive(f.pack(fecf))]
    assert out == pkts
    assert rx.all_stats()["frames_dropped"] == 0


def test_ad_frames_are_numbered_modulo_256_and_bd_frames_carry_zero():
    vc = TcVirtualChannel(TcConfig(), 0)
    seqs = [f.seq for _ in range(300) for f in vc.frames([SpacePacket(1, b"x").pack()])]
    assert seqs[:3] == [0, 1, 2] and seqs[256] == 0
    bd = vc.frames([SpacePacket(1, bytes(3000)).pack()], frame_type=TcFrameType.BD)
    assert len(bd) == 3 and {f.seq for f in bd} == {0}


def test_a_lost_segment_drops_the_packet_and_counts_why():
    cfg = TcConfig()
    vc = TcVirtualChannel(cfg, 0)
    big = SpacePacket(5, bytes(3000)).pack()
    frames = vc.frames([big, SpacePacket(6, b"after").pack()])
    rx = TcReceiver(cfg)
    out = [o.packet for i, f in enumerate(frames) if i != 1 for o in rx.receive(f.pack())]
    assert out == [SpacePacket(6, b"after").pack()]
    # First and last segment join into less than the packet header announces, so the
    # joined data is refused as a bad packet instead of being handed out damaged.
    assert len(frames) == 4 and frames[1].seq_flags == SeqFlags.CONTINUATION
    assert rx.all_stats()["bad_packets"] == 1


def test_a_first_segment_lost_makes_the_rest_orphans():
    cfg = TcConfig()
    frames = TcVirtualChannel(cfg, 0).frames([SpacePacket(5, bytes(3000)).pack()])
    rx = TcReceiver(cfg)
    assert [o for f in frames[1:] for o in rx.receive(f.pack())] == []
    assert rx.all_stats()["orphan_segment"] == len(frames) - 1


def test_receiver_counts_bad_frames_by_field():
    cfg = TcConfig(scid=9)
    rx = TcReceiver(cfg)
    good = TcFrame(9, 0, b"x" * 7, map_id=0).pack()
    assert rx.receive(good[:-1] + b"\x00") == []
    assert rx.receive(TcFrame(8, 0, b"x" * 7, map_id=0).pack()) == []
    assert rx.receive(b"\x00\x01") == []
    stats = rx.all_stats()
    assert stats["bad_fecf"] == 1 and stats["wrong_scid"] == 1 and stats["bad_header"] == 1
    assert stats["frames_dropped"] == 3 and stats["frames"] == 0
    assert rx.receive(good) == [] and rx.all_stats()["frames"] == 1  # valid, no whole packet
    assert rx.last_error is not None and rx.last_error.layer == "tc"


def test_without_segment_headers_large_packets_are_refused():
    vc = TcVirtualChannel(TcConfig(segment_header=False), 0)
    with pytest.raises(EncodeError, match="segment headers"):
        vc.frames([SpacePacket(1, bytes(1100)).pack()])
    frames = vc.frames([SpacePacket(1, bytes(100)).pack()] * 3)
    assert len(frames) == 1 and frames[0].map_id is None


# -- limits filled exactly, counters, refusals (issue 21: what mutation testing found) ------


def packets_of_total(total: int, n: int) -> list[bytes]:
    """``n`` Space Packets (7 octets at least each) that add up to ``total`` octets."""
    sizes = [total // n] * n
    sizes[-1] += total - sum(sizes)
    return [SpacePacket(i + 1, bytes(s - 6)).pack() for i, s in enumerate(sizes)]


@pytest.mark.parametrize("fecf", [True, False])
@pytest.mark.parametrize("segment_header", [True, False])
def test_a_data_field_filled_exactly_makes_one_frame_of_max_frame_length(fecf, segment_header):
    cfg = TcConfig(max_frame_length=100, fecf=fecf, segment_header=segment_header)
    room = 100 - 5 - (2 if fecf else 0) - (1 if segment_header else 0)
    vc = TcVirtualChannel(cfg, 0)
    frames = vc.frames(packets_of_total(room, 3))
    assert len(frames) == 1
    assert len(frames[0].pack(fecf)) == 100
    # one octet more does not fit: two frames, none over the limit
    frames = vc.frames(packets_of_total(room + 1, 3))
    assert len(frames) == 2
    assert all(len(f.pack(fecf)) <= 100 for f in frames)


def test_a_single_packet_filling_the_frame_without_segment_headers_is_carried_whole():
    cfg = TcConfig(max_frame_length=64, fecf=True, segment_header=False)
    vc = TcVirtualChannel(cfg, 0)
    (frame,) = vc.frames([SpacePacket(1, bytes(64 - 5 - 2 - 6)).pack()])
    assert len(frame.pack()) == 64 and frame.map_id is None
    with pytest.raises(EncodeError, match="57 octets needs segment headers"):
        vc.frames([SpacePacket(1, bytes(64 - 5 - 2 - 6 + 1)).pack()])


def test_blocking_after_a_segmented_packet_fills_a_data_field_exactly():
    room = 50
    small = SpacePacket(1, bytes(4)).pack()  # blocked before the big one, then flushed
    big = SpacePacket(2, bytes(120)).pack()  # segmented: 50 + 50 + 26
    exact = packets_of_total(room, 2)  # after it, two packets of exactly one data field
    fields = map_data_fields([small, big, *exact], room)
    assert [f for f, _ in fields] == [
        SeqFlags.UNSEGMENTED,
        SeqFlags.FIRST,
        SeqFlags.CONTINUATION,
        SeqFlags.LAST,
        SeqFlags.UNSEGMENTED,
    ]
    assert fields[-1][1] == b"".join(exact)
    # and blocking right after a segmented packet with nothing before it
    fields = map_data_fields([big, *exact], room)
    assert len(fields) == 4 and fields[-1] == (SeqFlags.UNSEGMENTED, b"".join(exact))
    # one octet more than a data field, after a segmented packet: split in two
    fields = map_data_fields([small, big, *packets_of_total(room + 1, 2)], room)
    assert len(fields) == 6 and all(len(d) <= room for _, d in fields)


def test_a_new_block_after_a_full_one_starts_empty():
    room = 50
    a, b = SpacePacket(1, bytes(24)).pack(), SpacePacket(2, bytes(24)).pack()  # 30 each
    c = SpacePacket(3, bytes(15)).pack()  # 21: with b, one octet over the data field
    fields = map_data_fields([a, b, c], room)
    assert [d for _, d in fields] == [a, b, c]
    fields = map_data_fields([a, b, c[:20]], room)  # 30 + 20: exactly full
    assert [d for _, d in fields] == [a, b + c[:20]]


def test_map_data_fields_refuses_data_lengths_out_of_range():
    assert map_data_fields([b"\x01"], 1) == [(SeqFlags.UNSEGMENTED, b"\x01")]
    assert len(map_data_fields([bytes(1024)], 1024)) == 1
    for bad in (0, 1025):
        with pytest.raises(EncodeError, match="max_data_len"):
            map_data_fields([b"\x01"], bad)
    with pytest.raises(EncodeError, match="empty packet"):
        map_data_fields([b""], 10)


def test_bc_frames_cannot_carry_packets():
    vc = TcVirtualChannel(TcConfig(), 0)
    with pytest.raises(EncodeError, match="not BC"):
        vc.frames([SpacePacket(1, b"x").pack()], frame_type=TcFrameType.BC)
    assert vc.next_seq == 0


def test_negative_and_too_large_scids_are_refused_and_the_limits_accepted():
    for scid in (-1, 1024):
        with pytest.raises(EncodeError, match="scid"):
            TcConfig(scid=scid)
        with pytest.raises(EncodeError, match="scid"):
            TcFrame(scid, 0, b"x")
    assert TcConfig(scid=0).scid == 0 and TcConfig(scid=1023).scid == 1023
    for bad in (dict(vcid=-1), dict(seq=-1), dict(map_id=-1)):
        with pytest.raises(EncodeError):
            TcFrame(**{**dict(scid=1, vcid=1, data=b"x"), **bad})


@pytest.mark.parametrize(
    ("fecf", "segment_header", "minimum"),
    [(True, True, 9), (True, False, 8), (False, True, 7), (False, False, 6)],
)
def test_the_shortest_frame_length_counts_the_fecf_and_the_segment_header(
    fecf, segment_header, minimum
):
    # 5-octet header + segment header + 1 data octet + 2-octet FECF (232.0-B-4 §4.1)
    TcConfig(max_frame_length=minimum, fecf=fecf, segment_header=segment_header)
    with pytest.raises(EncodeError, match="max_frame_length"):
        TcConfig(max_frame_length=minimum - 1, fecf=fecf, segment_header=segment_header)
    TcConfig(max_frame_length=1024, fecf=fecf, segment_header=segment_header)
    with pytest.raises(EncodeError, match="max_frame_length"):
        TcConfig(max_frame_length=1025, fecf=fecf, segment_header=segment_header)
    cfg = TcConfig(max_frame_length=minimum, fecf=fecf, segment_header=segment_header)
    (frame,) = TcVirtualChannel(cfg, 0).frames([b"\x07"])
    assert len(frame.pack(fecf)) == minimum


@pytest.mark.parametrize("flags", [0b00, 0b11])  # AD, BC
def test_a_frame_of_header_and_fecf_alone_is_too_short(flags):
    """Seven octets whose length field and FECF agree still hold no data field: the
    decoder refuses the header (it needs 8 with a FECF), and the receiver counts it,
    never raising (a data field built empty would raise EncodeError)."""
    header = bytes([flags << 4, 9, 0, 6, 0])  # SCID 9, VC 0, length 7 - 1, N(S) 0
    raw = header + crc16_ccitt(header).to_bytes(2, "big")
    with pytest.raises(TruncatedError, match="at least 8"):
        TcFrame.unpack(raw, fecf=True)
    rx = TcReceiver(TcConfig(scid=9))
    assert rx.receive(raw) == [] and rx.all_stats()["bad_header"] == 1


def test_the_reassembler_counts_packets_interruptions_and_oversize_drops():
    def seg(flags: SeqFlags, data: bytes, map_id: int = 0) -> TcFrame:
        return TcFrame(1, 0, data, TcFrameType.AD, 0, map_id, flags)

    pkt = SpacePacket(3, bytes(40)).pack()  # 46 octets
    rx = TcReassembler(max_packet_len=46)
    assert rx.push(seg(SeqFlags.FIRST, pkt[:20])) == []
    assert [o.packet for o in rx.push(seg(SeqFlags.LAST, pkt[20:]))] == [pkt]  # 46: fits
    assert rx.stats == {"packets": 1}
    # a first segment, then a new first: the one in progress is interrupted
    rx.push(seg(SeqFlags.FIRST, pkt[:20]))
    rx.push(seg(SeqFlags.FIRST, pkt[:20]))
    assert rx.stats["interrupted"] == 1
    # and an unsegmented data field interrupts too, and is delivered
    two = SpacePacket(4, b"ab").pack() * 2
    assert len(rx.push(seg(SeqFlags.UNSEGMENTED, two))) == 2
    assert rx.stats["interrupted"] == 2 and rx.stats["packets"] == 3
    # one octet over max_packet_len: dropped as too large, the rest are orphans
    rx.push(seg(SeqFlags.FIRST, pkt[:20]))
    assert rx.push(seg(SeqFlags.CONTINUATION, pkt[20:] + b"\x00")) == []
    assert rx.stats["too_large"] == 1
    assert rx.push(seg(SeqFlags.LAST, b"\x00")) == []
    assert rx.stats == {"packets": 3, "interrupted": 2, "too_large": 1, "orphan_segment": 1}
    # control frames carry no packets
    assert rx.push(TcFrame(1, 0, b"\x00", TcFrameType.BC)) == []
    # per (VCID, MAP ID): a first segment on another MAP interrupts nothing
    rx.push(seg(SeqFlags.FIRST, pkt[:20], map_id=1))
    rx.push(seg(SeqFlags.FIRST, pkt[:20], map_id=2))
    assert rx.stats["interrupted"] == 2


def test_frames_built_with_the_defaults_carry_n_s_zero_and_map_id_zero():
    """What the defaults put on the wire: a frame built without ``seq`` (the FOP's BC
    control commands) carries N(S) = 0 in octet 4, like every Type-B frame, and
    packets given no ``map_id`` travel on MAP 0 (the segment header's low six bits)."""
    bc = TcFrame(0x2F6, 1, bytes(3), TcFrameType.BC)
    assert bc.seq == 0 and bc.pack()[4] == 0
    frame = TcVirtualChannel(TcConfig(), 1).frames([SpacePacket(1, b"x").pack()])[0]
    assert frame.map_id == 0 and frame.pack()[HEADER_LEN] & 0x3F == 0


def test_the_defaults_scid_0_a_fecf_and_the_largest_space_packet():
    assert TcConfig().scid == 0
    frame = TcFrame(5, 1, b"abc")
    assert frame.length() == HEADER_LEN + 3 + 2 == len(frame.pack())  # the FECF counted
    # a Space Packet's largest: a 6-octet header and 65,536 octets of data
    assert TcReassembler().max_packet_len == 6 + 65536


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"frame_type": "AD"}, "frame_type"),
        ({"seq_flags": 4}, "seq_flags"),
        ({"seq_flags": -1}, "seq_flags"),
    ],
)
def test_a_frame_type_that_is_no_tc_frame_type_and_seq_flags_past_3_are_refused(kwargs, field):
    with pytest.raises(EncodeError, match=f"^tc: {field}: must be") as exc:
        TcFrame(5, 1, b"abc", **kwargs)
    assert exc.value.field == field


@pytest.mark.parametrize(("fecf", "minimum"), [(False, 6), (True, 8)])
def test_a_frame_one_octet_short_of_the_minimum_is_a_truncated_header(fecf, minimum):
    """A header alone (5 octets, its length field saying 5) has no data field: the
    decoder refuses it before reading it, naming the minimum, FECF counted or not."""
    header = bytes([0, 9, 0, minimum - 2, 0])  # SCID 9, VC 0, length field one short
    raw = header + (crc16_ccitt(header).to_bytes(2, "big") if fecf else b"")
    with pytest.raises(TruncatedError, match=f"needs at least {minimum} octets, got {minimum - 1}"):
        TcFrame.unpack(raw, fecf=fecf)


@pytest.mark.parametrize("vcid", [-1, 64])
def test_a_virtual_channel_outside_0_63_is_refused(vcid):
    with pytest.raises(EncodeError, match="vcid"):
        TcVirtualChannel(TcConfig(), vcid)
    assert TcVirtualChannel(TcConfig(), 0).vcid == 0


def test_a_last_segment_over_max_packet_len_is_dropped_without_raising():
    rx = TcReassembler(max_packet_len=10)
    first = TcFrame(1, 0, bytes(6), map_id=0, seq_flags=SeqFlags.FIRST)
    assert rx.push(first) == []
    assert rx.push(TcFrame(1, 0, bytes(5), map_id=0, seq_flags=SeqFlags.LAST)) == []
    assert rx.stats == {"too_large": 1}


def test_a_control_frame_reaches_no_counter_of_the_reassembler():
    """A BC frame's data is a control command, not packets: pushed, it neither counts
    as bad packets nor interrupts what is being joined on its (VCID, no MAP)."""
    rx = TcReassembler()
    first = TcFrame(1, 0, SpacePacket(3, bytes(40)).pack()[:20], seq_flags=SeqFlags.FIRST)
    rx.push(first)
    assert rx.push(TcFrame(1, 0, b"\x82\x00\x07", TcFrameType.BC)) == []
    assert rx.stats == {}


def test_a_receiver_has_no_refusal_before_its_first_frame():
    rx = TcReceiver(TcConfig(scid=9))
    assert rx.last_error is None
    rx.receive(b"\x00")
    assert isinstance(rx.last_error, DecodeError)
