import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.cuc import CucFormat
from linkstack.ccsds.spp import (
    IDLE_APID,
    MAX_DATA_LEN,
    DropReason,
    PacketStreamParser,
    PacketType,
    Reassembler,
    SecondaryHeaderSpec,
    SeqFlags,
    SequenceCounter,
    SpacePacket,
    idle_packet,
    parse_primary_header,
    segment,
    split_packets,
)
from linkstack.errors import DecodeError, EncodeError, TruncatedError


@st.composite
def packets(draw, max_data=512):
    return SpacePacket(
        apid=draw(st.integers(0, 2047)),
        data=draw(st.binary(min_size=1, max_size=max_data)),
        packet_type=draw(st.sampled_from(PacketType)),
        seq_count=draw(st.integers(0, 16383)),
        seq_flags=draw(st.sampled_from(SeqFlags)),
    )


def test_known_header_bits():
    pkt = SpacePacket(0x123, b"\xaa\xbb", PacketType.TC, 0x1FFF, SeqFlags.FIRST)
    # 000 1 0 001_0010_0011 | 01 01_1111_1111_1111 | length-1 = 1
    assert pkt.pack() == bytes.fromhex("1123 5fff 0001 aabb".replace(" ", ""))
    assert SpacePacket.unpack(pkt.pack()) == pkt


def test_secondary_header_flag_bit():
    pkt = SpacePacket(5, b"x", sec_header_flag=True)
    assert pkt.pack()[0] == 0b0000_1000


@given(packets())
def test_round_trip(pkt):
    raw = pkt.pack()
    assert len(raw) == pkt.length
    assert SpacePacket.unpack(raw) == pkt
    h = parse_primary_header(raw)
    assert h.data_length_field == len(pkt.data) - 1 and h.packet_length == len(raw)


def test_largest_and_smallest_data_fields():
    for n in (1, MAX_DATA_LEN):
        pkt = SpacePacket(1, bytes(n))
        raw = pkt.pack()
        assert raw[4:6] == (n - 1).to_bytes(2, "big")
        assert SpacePacket.unpack(raw) == pkt


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(apid=2048, data=b"x"), "apid"),
        (dict(apid=-1, data=b"x"), "apid"),
        (dict(apid=1, data=b""), "data"),
        (dict(apid=1, data=bytes(MAX_DATA_LEN + 1)), "data"),
        (dict(apid=1, data=b"x", seq_count=16384), "seq_count"),
        (dict(apid=1, data=b"x", secondary_header=b"t"), "sec_header_flag"),
    ],
)
def test_encode_refuses_out_of_range_fields(kwargs, field):
    with pytest.raises(EncodeError) as err:
        SpacePacket(**kwargs)
    assert err.value.field == field


def test_decode_refuses_wrong_version_naming_the_field():
    raw = bytearray(SpacePacket(1, b"abc").pack())
    raw[0] |= 0b0010_0000
    with pytest.raises(DecodeError) as err:
        SpacePacket.unpack(bytes(raw))
    assert (err.value.layer, err.value.field) == ("spp", "version")


@pytest.mark.parametrize("cut", [0, 3, 5, 6, 8])
def test_decode_refuses_truncated_packets(cut):
    raw = SpacePacket(1, b"abcdef").pack()[:cut]
    with pytest.raises(TruncatedError):
        SpacePacket.unpack(raw)


def test_decode_refuses_trailing_octets():
    with pytest.raises(DecodeError, match="data_length"):
        SpacePacket.unpack(SpacePacket(1, b"abc").pack() + b"\x00")


# -- idle packets ---------------------------------------------------------------


@pytest.mark.parametrize("length", [7, 100, 65542])
def test_idle_packets(length):
    raw = idle_packet(length)
    pkt = SpacePacket.unpack(raw)
    assert len(raw) == length and pkt.is_idle and pkt.apid == IDLE_APID == 2047


def test_idle_packet_too_short_is_refused():
    with pytest.raises(EncodeError):
        idle_packet(6)


# -- time-tagged packets ----------------------------------------------------------


@given(
    st.integers(1, 4), st.integers(0, 3), st.booleans(), st.floats(0, 1e6), st.binary(max_size=40)
)
def test_time_tagged_packet_round_trip(coarse, fine, pfield, t_s, data):
    cuc = CucFormat(coarse, fine, pfield)
    t_s = min(t_s, (1 << (8 * coarse)) - 1)
    pkt = SpacePacket.timed(42, data, t_s, cuc)
    back = SpacePacket.unpack(pkt.pack(), cuc)
    assert back == pkt
    assert abs(back.time_s(cuc) - t_s) <= cuc.resolution_s
    # a decoder that was not told about the secondary header keeps it in the data
    raw_view = SpacePacket.unpack(pkt.pack())
    assert raw_view.sec_header_flag and raw_view.data == pkt.secondary_header + data


def test_secondary_header_of_fixed_length():
    pkt = SpacePacket(7, b"user", sec_header_flag=True, secondary_header=b"\x01\x02")
    assert SpacePacket.unpack(pkt.pack(), secondary_header=2) == pkt
    with pytest.raises(TruncatedError, match="secondary_header"):
        SpacePacket.unpack(pkt.pack(), secondary_header=10)


def test_time_of_a_packet_without_secondary_header_is_refused():
    with pytest.raises(DecodeError, match="sec_header_flag"):
        SpacePacket(1, b"x").time_s()


# -- sequence counts, segmentation and reassembly ---------------------------------


def test_sequence_count_wraps_per_apid():
    c = SequenceCounter()
    c.set(5, 16382)
    assert [c.next(5) for _ in range(4)] == [16382, 16383, 0, 1]
    assert c.next(6) == 0


def test_small_payload_is_one_unsegmented_packet():
    (pkt,) = segment(b"hello", 9, SequenceCounter(), max_data_len=100)
    assert pkt.seq_flags == SeqFlags.UNSEGMENTED and pkt.data == b"hello"


@given(st.binary(min_size=1, max_size=5000), st.integers(1, 700), st.integers(0, 16383))
def test_segmentation_round_trip_across_count_wrap(payload, max_len, start):
    counter = SequenceCounter()
    counter.set(3, start)
    pkts = segment(payload, 3, counter, max_data_len=max_len)
    assert all(len(p.data) <= max_len for p in pkts)
    if len(pkts) > 1:
        flags = [p.seq_flags for p in pkts]
        assert flags[0] == SeqFlags.FIRST and flags[-1] == SeqFlags.LAST
        assert set(flags[1:-1]) <= {SeqFlags.CONTINUATION}
    r = Reassembler()
    outs = [r.push(SpacePacket.unpack(p.pack())) for p in pkts]
    assert outs[-1] == payload and all(o is None for o in outs[:-1])
    assert r.stats["delivered"] == 1 and r.stats["dropped_payloads"] == 0


@given(st.binary(min_size=30, max_size=3000), st.integers(5, 200), st.data())
def test_a_missing_segment_drops_the_payload_and_never_delivers_it(payload, max_len, data):
    counter = SequenceCounter()
    pkts = segment(payload, 3, counter, max_data_len=max_len)
    if len(pkts) < 2:
        return
    lost = data.draw(st.integers(0, len(pkts) - 1))
    follow = segment(b"next message", 3, counter)
    r = Reassembler()
    outs = [r.push(p) for i, p in enumerate(pkts + follow) if i != lost]
    delivered = [o for o in outs if o is not None]
    assert delivered == [b"next message"]  # the cut payload never comes out
    if lost == 0:  # nothing came before it, so no gap to see: the rest are orphans
        assert r.stats[DropReason.ORPHAN] == len(pkts) - 1
    else:
        assert r.stats["missing_packets"] == 1 and r.stats["dropped_payloads"] == 1


def test_drop_reasons_are_counted():
    r = Reassembler(max_payload_len=10)
    assert r.push(SpacePacket(1, b"cont", seq_flags=SeqFlags.CONTINUATION)) is None
    assert r.stats[DropReason.ORPHAN] == 1
    r.push(SpacePacket(1, b"first", seq_count=1, seq_flags=SeqFlags.FIRST))
    r.push(SpacePacket(1, b"whole", seq_count=2))
    assert r.stats[DropReason.INTERRUPTED] == 1
    r.push(SpacePacket(1, b"first", seq_count=3, seq_flags=SeqFlags.FIRST))
    r.push(SpacePacket(1, b"0123456789", seq_count=4, seq_flags=SeqFlags.CONTINUATION))
    assert r.stats[DropReason.TOO_LARGE] == 1
    assert r.stats["delivered"] == 1


def test_reassembly_is_per_apid():
    c = SequenceCounter()
    a = segment(b"A" * 50, 1, c, max_data_len=20)
    b = segment(b"B" * 50, 2, c, max_data_len=20)
    r = Reassembler()
    interleaved = [p for pair in zip(a, b, strict=True) for p in pair]
    out = [x for p in interleaved if (x := r.push(p)) is not None]
    assert out == [b"A" * 50, b"B" * 50]


# -- byte streams ---------------------------------------------------------------------


@given(st.lists(packets(max_data=300), min_size=1, max_size=20), st.randoms())
def test_stream_parser_with_arbitrary_chunking(pkts, rnd):
    stream = b"".join(p.pack() for p in pkts)
    parser = PacketStreamParser()
    got, pos = [], 0
    while pos < len(stream):
        step = rnd.randint(1, 200)
        parser.feed(stream[pos : pos + step])
        pos += step
        got.extend(parser)
    assert [SpacePacket.unpack(g) for g in got] == pkts
    assert parser.buffered == 0


def test_stream_parser_hands_out_good_packets_before_refusing_a_bad_header():
    good = [SpacePacket(i, bytes([i]) * 10).pack() for i in range(3)]
    bad = bytearray(SpacePacket(9, b"zz").pack())
    bad[0] |= 0xE0
    parser = PacketStreamParser()
    parser.feed(b"".join(good) + bytes(bad))
    got = []
    with pytest.raises(DecodeError) as err:
        for pkt in parser:
            got.append(pkt)
    assert got == good and err.value.field == "version"
    with pytest.raises(DecodeError):  # it stays stopped at the bad octet ...
        parser.next_packet()
    parser.skip(len(bad))  # ... until told to move on
    parser.feed(good[0])
    assert list(parser) == [good[0]]


def test_stream_parser_length_limit():
    parser = PacketStreamParser(max_packet_len=100)
    parser.feed(SpacePacket(1, bytes(200)).pack())
    with pytest.raises(DecodeError, match="limit"):
        parser.next_packet()


def test_split_packets():
    pkts = [SpacePacket(i, bytes(i + 1)).pack() for i in range(5)]
    assert split_packets(b"".join(pkts)) == pkts
    with pytest.raises(TruncatedError):
        split_packets(b"".join(pkts)[:-1])
    assert split_packets(b"") == []


def test_many_random_segmented_payloads_interleaved_over_apids():
    rng = random.Random(3)
    counter = SequenceCounter()
    sent = {apid: [rng.randbytes(rng.randrange(1, 4000)) for _ in range(20)] for apid in (1, 2, 3)}
    streams = {
        apid: [p for m in msgs for p in segment(m, apid, counter, 333)]
        for apid, msgs in sent.items()
    }
    r = Reassembler()
    got = {1: [], 2: [], 3: []}
    while any(streams.values()):
        apid = rng.choice([a for a, s in streams.items() if s])
        out = r.push(streams[apid].pop(0))
        if out is not None:
            got[apid].append(out)
    assert got == sent


def test_a_short_header_says_how_many_octets_remain():
    with pytest.raises(TruncatedError, match="needs 6 octets, 2 remain"):
        parse_primary_header(bytes(5), offset=3)
    with pytest.raises(TruncatedError, match="needs 6 octets, 0 remain"):
        parse_primary_header(bytes(5), offset=9)


def test_a_truncated_packet_says_how_many_data_octets_its_header_announces():
    raw = SpacePacket(1, bytes(10)).pack()
    with pytest.raises(TruncatedError, match="announces 10 data octets, 4 remain"):
        SpacePacket.unpack(raw[:10])


def test_a_packet_without_the_flag_keeps_its_whole_data_field_whatever_the_spec():
    raw = SpacePacket(1, b"abcdef").pack()
    got = SpacePacket.unpack(raw, secondary_header=2)
    assert got.data == b"abcdef" and got.secondary_header == b""


def test_refusals_of_a_negative_count_and_an_empty_payload():
    with pytest.raises(EncodeError, match="seq_count"):
        SequenceCounter().set(1, -1)
    with pytest.raises(EncodeError, match="payload"):
        segment(b"", 1, SequenceCounter())


def test_the_reassembler_takes_16_mib_by_default_and_refuses_a_last_segment_over():
    c = SequenceCounter()
    whole = bytes(16 << 20)
    r = Reassembler()
    out = [x for p in segment(whole, 1, c) if (x := r.push(p)) is not None]
    assert out == [whole]
    over = segment(whole + b"x", 1, c)
    assert [r.push(p) for p in over] == [None] * len(over)  # the last one goes over
    assert r.stats[DropReason.TOO_LARGE] == 1 and r.stats["delivered"] == 1


def test_the_stream_parser_counts_packets_and_starts_afresh_after_reset():
    parser = PacketStreamParser()
    parser.feed(SpacePacket(1, b"ab").pack() + SpacePacket(2, b"cd").pack()[:3])
    assert len(list(parser)) == 1 and parser.packets == 1
    parser.reset()
    assert parser.buffered == 0 and parser.next_packet() is None
    parser.feed(SpacePacket(3, b"ef").pack())
    assert [SpacePacket.unpack(p).apid for p in parser] == [3] and parser.packets == 2


# -- defaults, limits and messages, each pinned ------------------------------------------


def test_a_packets_defaults_are_an_unsegmented_tm_packet_numbered_0():
    pkt = SpacePacket(5, b"x")
    assert (pkt.packet_type, pkt.seq_count, pkt.seq_flags) == (
        PacketType.TM,
        0,
        SeqFlags.UNSEGMENTED,
    )
    assert pkt.pack()[:4] == bytes([0x00, 0x05, 0xC0, 0x00])
    timed = SpacePacket.timed(5, b"x", 12.5)
    assert timed.seq_count == 0 and timed.seq_flags is SeqFlags.UNSEGMENTED
    assert timed.time_s() == 12.5  # the default CUC format both ways


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(seq_count=-1), "seq_count"),
        (dict(seq_count=16384), "seq_count"),
        (dict(apid=-1), "apid"),
        (dict(packet_type=2), "packet_type"),
        (dict(packet_type=-1), "packet_type"),
        (dict(seq_flags=4), "seq_flags"),
        (dict(seq_flags=-1), "seq_flags"),
    ],
)
def test_fields_out_of_range_are_refused_naming_them(kwargs, field):
    with pytest.raises(EncodeError) as err:
        SpacePacket(**{"apid": 1, "data": b"x", **kwargs})
    assert err.value.field == field


def test_unpack_from_reads_at_offset_0_and_splits_no_secondary_header_by_default():
    pkt = SpacePacket(3, b"ab", sec_header_flag=True)
    raw = pkt.pack()
    assert SpacePacket.unpack_from(raw + b"tail") == (pkt, len(raw))
    assert SpacePacket.unpack_from(b"zz" + raw, 2) == (pkt, 2 + len(raw))


def test_a_secondary_header_may_fill_the_whole_data_field():
    raw = SpacePacket(3, b"abcd", sec_header_flag=True).pack()
    got = SpacePacket.unpack(raw, secondary_header=4)
    assert got.secondary_header == b"abcd" and got.data == b""
    with pytest.raises(TruncatedError, match="expected 5 octets, the packet data field has 4"):
        SpacePacket.unpack(raw, secondary_header=5)


@pytest.mark.parametrize("packet_type", [PacketType.TM, PacketType.TC])
def test_an_idle_packet_is_numbered_0_by_default_and_carries_its_type(packet_type):
    h = parse_primary_header(idle_packet(10, packet_type=packet_type))
    assert (h.packet_type, h.apid, h.seq_flags, h.seq_count) == (packet_type, IDLE_APID, 3, 0)
    assert parse_primary_header(idle_packet(10, 77)).seq_count == 77


def test_a_sequence_counter_peeks_without_counting_and_is_set_within_14_bits():
    c = SequenceCounter()
    assert c.peek(4) == 0
    assert [c.next(4), c.next(4)] == [0, 1]
    assert c.peek(4) == 2 and c.peek(4) == 2 and c.peek(5) == 0
    c.set(4, 16383)
    assert [c.next(4), c.next(4)] == [16383, 0]
    with pytest.raises(EncodeError, match="seq_count"):
        c.set(4, 16384)


@pytest.mark.parametrize("max_data_len", [0, MAX_DATA_LEN + 1])
def test_segment_refuses_a_data_length_limit_outside_1_to_65536(max_data_len):
    with pytest.raises(EncodeError) as err:
        segment(b"abc", 1, SequenceCounter(), max_data_len=max_data_len)
    assert err.value.field == "max_data_len"
    assert [p.data for p in segment(b"abc", 1, SequenceCounter(), max_data_len=1)] == [
        b"a",
        b"b",
        b"c",
    ]


def test_an_unsegmented_packet_in_the_middle_of_a_payload_interrupts_it():
    r = Reassembler()
    assert r.push(SpacePacket(1, b"first", seq_count=0, seq_flags=SeqFlags.FIRST)) is None
    assert r.in_progress(1) and not r.in_progress(2)
    assert r.push(SpacePacket(1, b"whole", seq_count=1)) == b"whole"
    assert not r.in_progress(1)
    assert r.stats[DropReason.INTERRUPTED] == 1 and r.stats["dropped_payloads"] == 1
    # what would have ended the interrupted payload is now an orphan
    assert r.push(SpacePacket(1, b"last", seq_count=2, seq_flags=SeqFlags.LAST)) is None
    assert r.stats[DropReason.ORPHAN] == 1 and r.stats["delivered"] == 1


def test_split_packets_says_where_a_packet_is_cut_and_how_much_remains():
    pkts = SpacePacket(1, b"abc").pack() + SpacePacket(2, bytes(20)).pack()
    with pytest.raises(TruncatedError, match="packet at offset 9 announces 26 octets, 20 remain"):
        split_packets(pkts[:-6])


def test_a_new_stream_parser_holds_nothing():
    parser = PacketStreamParser()
    assert parser.buffered == 0 and parser.next_packet() is None and parser.packets == 0


def test_the_stream_parser_refuses_an_oversized_packet_as_soon_as_its_header_is_in():
    parser = PacketStreamParser(max_packet_len=100)
    parser.feed(SpacePacket(1, bytes(95)).pack()[:6])  # 101 octets announced
    with pytest.raises(DecodeError, match="packet of 101 octets exceeds the limit of 100"):
        parser.next_packet()


def test_the_stream_parser_takes_a_packet_of_exactly_its_limit():
    parser = PacketStreamParser(max_packet_len=100)
    pkt = SpacePacket(1, bytes(94)).pack()
    parser.feed(pkt)
    assert parser.next_packet() == pkt and parser.buffered == 0


def test_a_secondary_header_spec_is_an_octet_count_or_a_cuc_format():
    assert isinstance(4, SecondaryHeaderSpec) and isinstance(CucFormat(), SecondaryHeaderSpec)
    assert not isinstance(b"\x04", SecondaryHeaderSpec)


def test_a_first_segment_in_the_middle_of_a_payload_interrupts_it_and_starts_anew():
    r = Reassembler()
    r.push(SpacePacket(1, b"old", seq_count=0, seq_flags=SeqFlags.FIRST))
    assert r.push(SpacePacket(1, b"new", seq_count=1, seq_flags=SeqFlags.FIRST)) is None
    assert r.stats[DropReason.INTERRUPTED] == 1 and r.stats["dropped_payloads"] == 1
    assert r.push(SpacePacket(1, b"-end", seq_count=2, seq_flags=SeqFlags.LAST)) == b"new-end"
