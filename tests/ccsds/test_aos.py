import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.aos import (
    IDLE_VCID,
    AosConfig,
    AosFrame,
    AosMasterChannel,
    AosReceiver,
    mpdu_pack,
    mpdu_unpack,
)
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import SpacePacket
from linkstack.errors import ChecksumError, DecodeError, EncodeError, TruncatedError
from tests.helpers import with_octet


@st.composite
def aos_frames(draw):
    iz = draw(st.integers(0, 8))
    ocf = draw(st.booleans())
    fecf = draw(st.booleans())
    data = draw(st.binary(min_size=3, max_size=1000))
    cfg = AosConfig(
        frame_length=6 + iz + len(data) + 4 * ocf + 2 * fecf, insert_zone_len=iz, ocf=ocf, fecf=fecf
    )
    frame = AosFrame(
        scid=draw(st.integers(0, 255)),
        vcid=draw(st.integers(0, 63)),
        vc_count=draw(st.integers(0, 2**24 - 1)),
        data=data,
        replay=draw(st.booleans()),
        count_cycle=draw(st.one_of(st.none(), st.integers(0, 15))),
        insert_zone=draw(st.binary(min_size=iz, max_size=iz)),
        ocf=draw(st.binary(min_size=4, max_size=4)) if ocf else None,
    )
    return cfg, frame


@given(aos_frames())
def test_frame_round_trip(cfg_frame):
    cfg, frame = cfg_frame
    raw = frame.pack(cfg.fecf)
    assert len(raw) == cfg.frame_length
    assert AosFrame.unpack(raw, cfg) == frame


def test_known_header_bits():
    frame = AosFrame(scid=0xAB, vcid=5, vc_count=0x123456, data=b"\x07\xff\x00", count_cycle=9)
    raw = frame.pack(fecf=False)
    # 01 | 1010_1011 | 00_0101 -> 0x6AC5; count 12 34 56; signaling 0 1 00 1001
    assert raw[:6].hex() == "6ac5123456" + "49"
    assert frame.full_count == (9 << 24) | 0x123456


@pytest.mark.parametrize(
    "index, value, field",
    [
        (0, 0x00, "version"),
        (5, 0x70, "signaling.spare"),
        (5, 0x05, "signaling.count_cycle"),  # cycle set with usage flag 0
    ],
)
def test_malformed_headers_are_refused_naming_the_field(index, value, field):
    cfg = AosConfig(frame_length=20)
    raw = AosFrame(1, 1, 0, bytes(12)).pack()
    with pytest.raises(DecodeError) as err:
        AosFrame.unpack(with_octet(raw, index, value), cfg)
    assert (err.value.layer, err.value.field) == ("aos", field)


def test_length_and_crc_rules():
    cfg = AosConfig(frame_length=20)
    raw = AosFrame(1, 1, 0, bytes(12)).pack()
    with pytest.raises(DecodeError, match="frame_length"):
        AosFrame.unpack(raw[:-1], cfg)
    with pytest.raises(ChecksumError):
        AosFrame.unpack(raw[:-1] + bytes([raw[-1] ^ 1]), cfg)


def test_mpdu_header():
    assert mpdu_pack(0x7FF, b"abc") == b"\x07\xffabc"
    assert mpdu_unpack(b"\x00\x02abc") == (2, b"abc")
    with pytest.raises(DecodeError, match=r"mpdu_header\.spare"):
        mpdu_unpack(b"\x08\x00abc")
    with pytest.raises(DecodeError, match=r"mpdu_header\.fhp"):
        mpdu_unpack(b"\x00\x03abc")
    with pytest.raises(TruncatedError):
        mpdu_unpack(b"\x00\x00")
    assert mpdu_unpack(b"\x00\x00z") == (0, b"z")  # the shortest M_PDU: a one-octet zone


@pytest.mark.parametrize(
    "kwargs",
    [dict(scid=256), dict(vcid=64), dict(vc_count=2**24), dict(count_cycle=16), dict(data=b"")],
)
def test_encode_refuses_out_of_range_fields(kwargs):
    with pytest.raises(EncodeError):
        AosFrame(**{**dict(scid=1, vcid=1, vc_count=0, data=b"abc"), **kwargs})


@given(st.lists(st.integers(7, 3000), min_size=1, max_size=40), st.integers(0, 2**32))
def test_packets_of_random_sizes_come_out_identical_and_in_order(sizes, seed):
    rng = random.Random(seed)
    pkts = [SpacePacket(rng.randrange(2047), rng.randbytes(s - 6)).pack() for s in sizes]
    cfg = AosConfig(
        frame_length=rng.choice([64, 892, 1115, 2048]),
        insert_zone_len=rng.randrange(4),
        ocf=rng.random() < 0.5,
        fecf=rng.random() < 0.5,
        count_cycle=rng.random() < 0.5,
    )
    mc, rx = AosMasterChannel(cfg, vcids=(0, 9)), AosReceiver(cfg)
    for i, p in enumerate(pkts):
        mc.push(9 * (i % 2), p)
    mc.flush()
    got = {0: [], 9: []}
    for f in mc.drain():
        r = rx.receive(f)
        got[r.vcid].extend(r.packets)
    assert got == {0: pkts[0::2], 9: pkts[1::2]}
    assert rx.all_stats()["frames_dropped"] == 0


def test_count_cycle_extends_the_frame_count_to_28_bits():
    cfg = AosConfig(frame_length=40)
    mc, rx = AosMasterChannel(cfg), AosReceiver(cfg)
    vc = mc.mux.vc(0)
    vc.vc_count = 2**24 - 2
    for _ in range(4):
        mc.push(0, SpacePacket(1, bytes(26)).pack())
    frames = mc.drain()
    decoded = [AosFrame.unpack(f, cfg) for f in frames]
    assert [d.full_count for d in decoded] == [2**24 - 2, 2**24 - 1, 2**24, 2**24 + 1]
    assert decoded[2].count_cycle == 1 and decoded[2].vc_count == 0
    for f in frames:
        rx.receive(f)
    assert rx.all_stats()["vc_frames_lost"] == 0


def test_without_the_cycle_the_count_wraps_at_24_bits():
    cfg = AosConfig(frame_length=40, count_cycle=False)
    mc = AosMasterChannel(cfg)
    mc.mux.vc(0).vc_count = 2**24 - 1
    for _ in range(2):
        mc.push(0, SpacePacket(1, bytes(26)).pack())
    counts = [AosFrame.unpack(f, cfg) for f in mc.drain()]
    assert [(c.vc_count, c.count_cycle) for c in counts] == [(2**24 - 1, None), (0, None)]


def test_idle_frames_on_vc_63_with_insert_zone_and_ocf():
    cfg = AosConfig(insert_zone_len=4, ocf=True)
    mc, rx = AosMasterChannel(cfg), AosReceiver(cfg)
    mc.insert_zone, mc.ocf = b"IZIZ", b"CLCW"
    idle = AosFrame.unpack(mc.next_frame(), cfg)
    assert idle.vcid == IDLE_VCID and idle.insert_zone == b"IZIZ" and idle.ocf == b"CLCW"
    r = rx.receive(mc.next_frame())
    assert r.packets == [] and r.ocf == b"CLCW"
    with pytest.raises(EncodeError):
        mc.add_vc(IDLE_VCID)


def test_receiver_drops_and_counts_bad_frames():
    cfg = AosConfig(scid=3, frame_length=100)
    mc, rx = AosMasterChannel(cfg), AosReceiver(cfg)
    mc.push(0, SpacePacket(1, bytes(300)).pack())
    good = mc.drain()[0]
    assert rx.receive(good[:-1]) is None
    assert rx.receive(good[:-1] + bytes([good[-1] ^ 1])) is None
    assert rx.receive(with_octet(good, 0, good[0] & 0x3F)) is None
    assert rx.receive(AosMasterChannel(AosConfig(scid=4, frame_length=100)).idle_frame()) is None
    assert rx.receive(with_octet(good, 5, good[5] | 0x20)) is None
    assert rx.receive(with_octet(good, 6, good[6] | 0x80)) is None
    stats = rx.all_stats()
    for reason in (
        "bad_length",
        "bad_fecf",
        "bad_version",
        "wrong_scid",
        "bad_signaling",
        "bad_mpdu_header",
    ):
        assert stats[reason] == 1, reason
    assert stats["frames_dropped"] == 6 and stats["frames"] == 0


def test_the_shortest_frame_holds_the_header_the_mpdu_header_and_one_octet():
    overhead = AosConfig().overhead  # header and FECF
    shortest = overhead + 2 + 1
    assert AosConfig(frame_length=shortest).frame_length == shortest
    with pytest.raises(EncodeError, match="frame_length"):
        AosConfig(frame_length=shortest - 1)


def test_an_ocf_of_the_wrong_length_and_a_pointer_past_11_bits_are_refused():
    with pytest.raises(EncodeError, match="ocf"):
        AosFrame(scid=1, vcid=1, vc_count=0, data=b"abc", ocf=b"abc")
    with pytest.raises(EncodeError, match="fhp"):
        mpdu_pack(0x800, b"abc")


def test_the_receiver_counts_idle_and_data_frames_and_packets():
    cfg = AosConfig(frame_length=200)
    mc, rx = AosMasterChannel(cfg), AosReceiver(cfg)
    rx.receive(mc.idle_frame())
    mc.push(0, SpacePacket(1, bytes(50)).pack())
    mc.push(0, SpacePacket(2, bytes(20)).pack())
    mc.flush()
    got = [p for f in mc.drain() for p in rx.receive(f).packets]
    assert len(got) == 2
    assert rx.stats["frames"] == 2 and rx.stats["idle_frames"] == 1
    assert rx.stats["packets"] == 2


def test_with_the_cycle_the_count_wraps_at_28_bits_and_every_frame_is_received():
    cfg = AosConfig(frame_length=40)
    mc, rx = AosMasterChannel(cfg), AosReceiver(cfg)
    mc.mux.vc(0).vc_count = 2**28 - 2
    for _ in range(3):
        mc.push(0, SpacePacket(1, bytes(26)).pack())
    frames = mc.drain()
    decoded = [AosFrame.unpack(f, cfg) for f in frames]
    assert [(d.count_cycle, d.vc_count) for d in decoded] == [
        (15, 2**24 - 2),
        (15, 2**24 - 1),
        (0, 0),
    ]
    for f in frames:
        rx.receive(f)
    stats = rx.all_stats()
    assert stats["frames"] == 3 and stats["frames_dropped"] == 0 and stats["vc_frames_lost"] == 0


@pytest.mark.parametrize("cycle_bits, usage, dropped", [(0, 1, False), (1, 1, False), (1, 0, True)])
def test_a_receiver_with_the_cycle_drops_a_frame_whose_usage_flag_is_0(cycle_bits, usage, dropped):
    """Cycle bits set but the usage flag 0 is a malformed signaling field, not a cycle."""
    cfg = AosConfig(frame_length=40)
    mc = AosMasterChannel(cfg)
    mc.push(0, SpacePacket(1, bytes(26)).pack())
    (good,) = mc.drain()
    raw = bytearray(good[:-2])  # the signaling octet rewritten, the FECF recomputed
    raw[5] = (raw[5] & 0x80) | (usage << 6) | cycle_bits
    rx = AosReceiver(cfg)
    got = rx.receive(bytes(raw) + crc16_ccitt(bytes(raw)).to_bytes(2, "big"))
    assert (got is None) == dropped
    assert rx.stats["bad_signaling"] == dropped


def test_the_largest_frame_is_2048_octets():
    assert AosConfig(frame_length=2048).frame_length == 2048
    with pytest.raises(EncodeError, match="frame_length"):
        AosConfig(frame_length=2049)
    frame = AosFrame(scid=1, vcid=1, vc_count=0, data=bytes(2048 - 6 - 2))
    assert len(frame.pack()) == 2048
    with pytest.raises(EncodeError, match="frame exceeds 2048 octets"):
        AosFrame(scid=1, vcid=1, vc_count=0, data=bytes(2048 - 6 - 1)).pack()


def test_an_mpdu_pointer_is_0_to_2047():
    assert mpdu_pack(0, b"z") == b"\x00\x00z" and mpdu_pack(0x7FF, b"z") == b"\x07\xffz"
    with pytest.raises(EncodeError, match="fhp"):
        mpdu_pack(-1, b"z")


# -- limits, defaults, messages and counters, each pinned ---------------------------------


def test_the_config_defaults_are_the_documented_ones():
    assert AosConfig() == AosConfig(
        frame_length=1115, scid=0, insert_zone_len=0, ocf=False, fecf=True, count_cycle=True
    )


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(scid=-1), "scid"),
        (dict(scid=256), "scid"),
        (dict(insert_zone_len=-1), "insert_zone_len"),
    ],
)
def test_config_fields_out_of_range_are_refused_naming_them(kwargs, field):
    with pytest.raises(EncodeError) as err:
        AosConfig(**kwargs)
    assert err.value.layer == "aos" and err.value.field == field


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(scid=-1), "scid"),
        (dict(vcid=-1), "vcid"),
        (dict(vc_count=-1), "vc_count"),
        (dict(count_cycle=-1), "count_cycle"),
    ],
)
def test_negative_frame_fields_are_refused_naming_them(kwargs, field):
    with pytest.raises(EncodeError) as err:
        AosFrame(**{"scid": 1, "vcid": 1, "vc_count": 0, "data": b"abc", **kwargs})
    assert err.value.field == field


def test_without_the_cycle_the_full_count_is_the_24_bit_count():
    assert AosFrame(scid=1, vcid=1, vc_count=77, data=b"abc").full_count == 77
    assert (
        AosFrame(scid=1, vcid=1, vc_count=77, data=b"abc", count_cycle=2).full_count
        == (2 << 24) | 77
    )


def test_without_fecf_a_frame_of_2048_octets_packs_and_one_more_is_refused():
    assert len(AosFrame(scid=1, vcid=1, vc_count=0, data=bytes(2042)).pack(fecf=False)) == 2048
    with pytest.raises(EncodeError, match="frame exceeds 2048 octets"):
        AosFrame(scid=1, vcid=1, vc_count=0, data=bytes(2043)).pack(fecf=False)


@pytest.mark.parametrize("spare", [1, 2, 3])
def test_set_spare_signaling_bits_are_refused_naming_their_value(spare):
    cfg = AosConfig(frame_length=40)
    raw = bytearray(AosFrame(scid=1, vcid=1, vc_count=0, data=bytes(32)).pack(fecf=False))
    raw[5] |= spare << 4
    with pytest.raises(DecodeError, match=f"spare bits must be 00, got {spare:02b}"):
        AosFrame.unpack(bytes(raw) + crc16_ccitt(bytes(raw)).to_bytes(2, "big"), cfg)


def test_a_crc_mismatch_names_the_crc_carried_and_the_one_computed():
    cfg = AosConfig(frame_length=40)
    raw = AosFrame(scid=1, vcid=1, vc_count=0, data=bytes(range(1, 33))).pack()
    bad = raw[:-2] + bytes([raw[-2] ^ 0xFF, raw[-1]])
    carried, computed = int.from_bytes(bad[-2:], "big"), crc16_ccitt(raw[:-2])
    with pytest.raises(ChecksumError, match=f"carries {carried:#06x}, computed {computed:#06x}"):
        AosFrame.unpack(bad, cfg)


@pytest.mark.parametrize("spare", [0b00001, 0b10000, 0b11111])
def test_set_spare_mpdu_bits_are_refused_naming_their_value(spare):
    with pytest.raises(DecodeError, match=f"spare bits must be 0, got {spare:05b}"):
        mpdu_unpack(((spare << 11) | 0).to_bytes(2, "big") + b"abc")


def test_an_idle_only_pointer_needs_no_room_in_the_zone():
    assert mpdu_unpack(b"\x07\xfe" + b"\x55") == (0x7FE, b"\x55")
    with pytest.raises(DecodeError, match="first header pointer 1 lies outside the 1-octet zone"):
        mpdu_unpack(b"\x00\x01" + b"\x55")


def test_the_master_channel_refuses_a_vcid_past_63_as_an_aos_error():
    with pytest.raises(EncodeError) as err:
        AosMasterChannel(AosConfig(frame_length=40)).add_vc(64)
    assert err.value.layer == "aos" and err.value.field == "vcid"


@pytest.mark.parametrize("count_cycle, modulo", [(True, 2**28), (False, 2**24)])
def test_idle_frames_count_from_0_wrap_at_the_count_modulo_and_carry_0x55(count_cycle, modulo):
    cfg = AosConfig(frame_length=40, count_cycle=count_cycle)
    mc = AosMasterChannel(cfg)
    first = AosFrame.unpack(mc.idle_frame(), cfg)
    assert first.full_count == 0 and first.data == b"\x55" * cfg.data_field_len
    mc.idle_count = modulo - 1
    counts = [AosFrame.unpack(mc.idle_frame(), cfg).full_count for _ in range(2)]
    assert counts == [modulo - 1, 0]
    assert mc.idle_frames == 3 and mc.frames == 3


def test_the_master_channel_counts_data_frames_and_refuses_a_wrong_insert_zone_or_ocf():
    cfg = AosConfig(frame_length=60, insert_zone_len=2, ocf=True)
    mc = AosMasterChannel(cfg)
    mc.push(0, SpacePacket(1, bytes(80)).pack())
    mc.flush()
    drained = mc.drain()
    assert len(drained) >= 2 and mc.frames == len(drained) and mc.idle_frames == 0
    mc.insert_zone = b"abc"
    with pytest.raises(EncodeError, match="insert_zone"):
        mc.idle_frame()
    mc.insert_zone, mc.ocf = b"ab", b"abc"
    with pytest.raises(EncodeError, match="ocf"):
        mc.idle_frame()


def test_without_the_cycle_counts_run_past_2_to_the_23_and_wrap_at_2_to_the_24_unlost():
    cfg = AosConfig(frame_length=40, count_cycle=False)
    mc, rx = AosMasterChannel(cfg), AosReceiver(cfg)
    frames = []
    for start in (2**23 - 2, 2**24 - 2):
        mc.mux.vc(0).vc_count = start
        for _ in range(3):
            mc.push(0, SpacePacket(1, bytes(26)).pack())
        frames += mc.drain()
    counts = [AosFrame.unpack(f, cfg).vc_count for f in frames]
    assert counts == [2**23 - 2, 2**23 - 1, 2**23, 2**24 - 2, 2**24 - 1, 0]
    for f in frames[3:]:
        rx.receive(f)
    assert rx.all_stats()["vc_frames_lost"] == 0 and rx.stats["frames"] == 3


@pytest.mark.parametrize("signaling, dropped", [(0x00, False), (0x01, True), (0x08, True)])
def test_a_receiver_without_the_cycle_drops_cycle_bits_set_under_a_usage_flag_of_0(
    signaling, dropped
):
    cfg = AosConfig(frame_length=40, count_cycle=False)
    mc = AosMasterChannel(cfg)
    mc.push(0, SpacePacket(1, bytes(26)).pack())
    (good,) = mc.drain()
    raw = bytearray(good[:-2])
    raw[5] = signaling
    rx = AosReceiver(cfg)
    assert (rx.receive(bytes(raw) + crc16_ccitt(bytes(raw)).to_bytes(2, "big")) is None) == dropped
    assert rx.stats["bad_signaling"] == dropped


def test_the_receiver_drops_an_mpdu_header_with_only_its_lowest_spare_bit_set():
    cfg = AosConfig(frame_length=40)
    mc = AosMasterChannel(cfg)
    mc.push(0, SpacePacket(1, bytes(26)).pack())
    (good,) = mc.drain()
    raw = bytearray(good[:-2])
    raw[6] |= 0x08  # the M_PDU header's fifth spare bit
    rx = AosReceiver(cfg)
    assert rx.receive(bytes(raw) + crc16_ccitt(bytes(raw)).to_bytes(2, "big")) is None
    assert rx.stats["bad_mpdu_header"] == 1
