import random
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spacepackets.ccsds.tm_frame import (
    MasterChannelId,
    TmFramePrimaryHeader,
    TmTransferFrame,
    TransferFrameDataFieldStatus,
)

from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.packet_zone import FHP_IDLE_ONLY, FHP_NO_HEADER
from linkstack.ccsds.spp import IDLE_APID, SpacePacket
from linkstack.ccsds.tm import TmConfig, TmFrame, TmMasterChannel, TmReceiver
from linkstack.errors import ChecksumError, DecodeError, EncodeError, TruncatedError
from tests.helpers import with_octet


@st.composite
def tm_frames(draw):
    data = draw(st.binary(min_size=1, max_size=1500))
    fhp = draw(
        st.one_of(st.sampled_from([FHP_NO_HEADER, FHP_IDLE_ONLY]), st.integers(0, len(data) - 1))
    )
    sync = draw(st.booleans())
    return TmFrame(
        scid=draw(st.integers(0, 1023)),
        vcid=draw(st.integers(0, 7)),
        mc_count=draw(st.integers(0, 255)),
        vc_count=draw(st.integers(0, 255)),
        data=data,
        fhp=draw(st.integers(0, 2047)) if sync else fhp,
        ocf=draw(st.one_of(st.none(), st.binary(min_size=4, max_size=4))),
        secondary_header=draw(st.one_of(st.none(), st.binary(min_size=1, max_size=63))),
        sync_flag=sync,
        packet_order_flag=draw(st.booleans()) if sync else False,
        segment_length_id=draw(st.integers(0, 3)) if sync else 3,
    )


@given(tm_frames(), st.booleans())
def test_frame_round_trip(frame, fecf):
    raw = frame.pack(fecf)
    assert TmFrame.unpack(raw, fecf, len(raw)) == frame


@given(tm_frames())
def test_primary_header_agrees_with_spacepackets(frame):
    raw = frame.pack()
    theirs = TmFramePrimaryHeader.unpack(raw)
    assert theirs.master_channel_id.transfer_frame_version == 0
    assert theirs.master_channel_id.spacecraft_id == frame.scid
    assert theirs.vc_id == frame.vcid
    assert theirs.ocf_flag == (frame.ocf is not None)
    assert theirs.master_ch_frame_count == frame.mc_count
    assert theirs.vc_frame_count == frame.vc_count
    dfs = theirs.frame_datafield_status
    assert dfs.secondary_header_flag == (frame.secondary_header is not None)
    assert dfs.sync_flag == frame.sync_flag
    assert dfs.packet_order_flag == frame.packet_order_flag
    assert dfs.segment_len_id == frame.segment_length_id
    assert dfs.first_header_pointer == frame.fhp
    assert theirs.pack() == raw[:6]


def _good_frame(**kw) -> bytes:
    return TmFrame(scid=5, vcid=1, mc_count=0, vc_count=0, data=bytes(20), fhp=0, **kw).pack()


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: with_octet(r, 0, r[0] | 0x40), "version"),
        (lambda r: with_octet(r, 4, r[4] | 0x20), "packet_order_flag"),
        (lambda r: with_octet(r, 4, r[4] & ~0x08), "segment_length_id"),
        (lambda r: with_octet(r, 5, 200), "fhp"),
        (lambda r: r[:-1] + bytes([r[-1] ^ 1]), "fecf"),
    ],
)
def test_malformed_frames_are_refused_naming_the_field(mutate, field):
    with pytest.raises(DecodeError) as err:
        TmFrame.unpack(mutate(_good_frame()))
    assert err.value.layer == "tm" and err.value.field == field


def test_bad_crc_is_a_checksum_error():
    raw = _good_frame()
    with pytest.raises(ChecksumError, match="CRC mismatch"):
        TmFrame.unpack(raw[:-1] + bytes([raw[-1] ^ 0xFF]))


def test_secondary_header_rules():
    raw = _good_frame(secondary_header=b"\x01\x02")
    with pytest.raises(DecodeError, match=r"secondary_header\.version"):
        TmFrame.unpack(with_octet(raw, 6, raw[6] | 0x40))
    with pytest.raises(DecodeError, match=r"secondary_header\.length"):
        TmFrame.unpack(with_octet(raw, 6, 0))
    with pytest.raises(EncodeError):
        TmFrame(1, 1, 0, 0, b"x", secondary_header=bytes(64))


def test_length_rules():
    raw = _good_frame()
    with pytest.raises(DecodeError, match="frame_length"):
        TmFrame.unpack(raw, frame_length=len(raw) + 1)
    with pytest.raises(TruncatedError):
        TmFrame.unpack(raw[:7])


@pytest.mark.parametrize(
    "kwargs",
    [dict(scid=1024), dict(vcid=8), dict(mc_count=256), dict(fhp=2048), dict(ocf=b"abc")],
)
def test_encode_refuses_out_of_range_fields(kwargs):
    base = dict(scid=1, vcid=1, mc_count=0, vc_count=0, data=b"xyz", fhp=0)
    with pytest.raises(EncodeError):
        TmFrame(**{**base, **kwargs})


def test_config_derives_the_data_field():
    assert TmConfig().data_field_len == 1115 - 6 - 2
    cfg = TmConfig(ocf=True, secondary_header_len=3)
    assert cfg.data_field_len == 1115 - 6 - 4 - 4 - 2
    with pytest.raises(EncodeError):
        TmConfig(frame_length=2049)


# -- virtual channels, master channel, receiver ----------------------------------------


def _packets(rng: random.Random, n: int, max_len: int = 3000) -> list[bytes]:
    return [
        SpacePacket(
            rng.randrange(2047), rng.randbytes(rng.randrange(1, max_len)), seq_count=i % 16384
        ).pack()
        for i in range(n)
    ]


@given(st.lists(st.integers(1, 2500), min_size=1, max_size=40), st.integers(0, 2**32))
def test_packets_of_random_sizes_come_out_identical_and_in_order(sizes, seed):
    rng = random.Random(seed)
    pkts = [SpacePacket(rng.randrange(2047), rng.randbytes(s)).pack() for s in sizes]
    cfg = TmConfig(frame_length=rng.choice([64, 223, 1115, 2048]), ocf=rng.random() < 0.5)
    mc, rx = TmMasterChannel(cfg), TmReceiver(cfg)
    for p in pkts:
        mc.push(0, p)
    mc.flush()
    out = [p for f in mc.drain() for p in rx.receive(f).packets]
    assert out == pkts
    assert rx.all_stats()["frames_dropped"] == 0


def test_fhp_points_at_the_first_packet_that_starts_in_each_frame():
    rng = random.Random(5)
    pkts = _packets(rng, 200, 700)
    cfg = TmConfig(fecf=False)
    mc = TmMasterChannel(cfg)
    starts, pos = [], 0
    for p in pkts:
        mc.push(0, p)
        starts.append(pos)
        pos += len(p)
    mc.flush()
    frames = mc.drain()
    zl = cfg.data_field_len
    for i, raw in enumerate(frames):
        inside = [s - i * zl for s in starts if i * zl <= s < (i + 1) * zl]
        fhp = TmFrame.unpack(raw, fecf=False).fhp
        if inside:
            assert fhp == inside[0]
        else:
            # only the idle packet that closes the stream may start where no packet does
            assert fhp in (FHP_NO_HEADER, pos - i * zl)


def test_flush_fills_with_an_idle_packet_even_when_only_a_few_octets_remain():
    cfg = TmConfig(fecf=False)
    zl = cfg.data_field_len
    for room in range(0, 10):
        mc = TmMasterChannel(cfg)
        mc.push(0, SpacePacket(1, bytes(zl - room - 6 + (zl if room == 0 else 0))).pack())
        mc.flush()
        frames = mc.drain()
        rx = TmReceiver(cfg)
        got = [p for f in frames for p in rx.receive(f).packets]
        assert len(got) == 1
        # the fill is a real idle packet, parsed and counted by the receiver
        assert rx.all_stats()["idle_packets"] == (1 if room else 0)
        assert rx.all_stats()["frames_dropped"] == 0
        assert len(frames) == (1 if room >= 7 else 2)  # short fill spills one frame over


@given(st.integers(0, 2**32), st.floats(0.0, 0.5))
def test_a_packet_arrives_if_and_only_if_every_frame_it_spans_arrived(seed, loss):
    rng = random.Random(seed)
    pkts = _packets(rng, 60, 2500)
    cfg = TmConfig()
    zl = cfg.data_field_len
    mc = TmMasterChannel(cfg)
    spans, pos = [], 0
    for p in pkts:
        mc.push(0, p)
        spans.append(range(pos // zl, (pos + len(p) - 1) // zl + 1))
        pos += len(p)
    mc.flush()
    frames = mc.drain()
    lost = {i for i in range(len(frames)) if rng.random() < loss}
    rx = TmReceiver(cfg)
    out = [p for i, f in enumerate(frames) if i not in lost for p in rx.receive(f).packets]
    expected = [p for p, span in zip(pkts, spans, strict=True) if not lost.intersection(span)]
    assert out == expected
    received = [i for i in range(len(frames)) if i not in lost]
    # a loss shows as a count gap only between two received frames
    detectable = [i for i in lost if received and received[0] < i < received[-1]]
    assert rx.all_stats()["vc_frames_lost"] == len(detectable)


def test_corrupted_frames_are_dropped_counted_and_the_rest_delivered():
    rng = random.Random(9)
    pkts = _packets(rng, 40, 400)
    mc, rx = TmMasterChannel(), TmReceiver()
    for p in pkts:
        mc.push(0, p)
    mc.flush()
    frames = mc.drain()
    damaged = bytearray(frames[3])
    damaged[100] ^= 0x10
    frames[3] = bytes(damaged)
    out = [p for f in frames if (r := rx.receive(f)) is not None for p in r.packets]
    stats = rx.all_stats()
    assert stats["bad_fecf"] == 1 and stats["vc_frames_lost"] == 1
    assert set(out) <= set(pkts) and len(out) < len(pkts)
    assert out == [p for p in pkts if p in set(out)]  # in order, none damaged


def test_virtual_channels_are_multiplexed_and_kept_apart():
    rng = random.Random(1)
    cfg = TmConfig(ocf=True)
    mc, rx = TmMasterChannel(cfg, vcids=(0, 3, 5)), TmReceiver(cfg)
    sent = {v: _packets(rng, 30, 1500) for v in (0, 3, 5)}
    for i in range(30):
        for v in (0, 3, 5):
            mc.push(v, sent[v][i])
    mc.flush()
    got = {0: [], 3: [], 5: []}
    vcids = []
    for f in mc.drain():
        r = rx.receive(f)
        vcids.append(r.vcid)
        got[r.vcid].extend(r.packets)
    assert got == sent
    assert vcids[:3] == [0, 3, 5]  # round robin


def test_counters_wrap_and_mc_gaps_are_counted():
    cfg = TmConfig(frame_length=40)
    mc, rx = TmMasterChannel(cfg), TmReceiver(cfg)
    for i in range(300):
        mc.push(0, SpacePacket(1, bytes(25), seq_count=i).pack())
    frames = mc.drain()
    assert len(frames) > 256
    counts = [TmFrame.unpack(f).mc_count for f in frames]
    assert counts[:3] == [0, 1, 2] and counts[256] == 0
    kept = [f for i, f in enumerate(frames) if i not in (10, 11, 12)]
    for f in kept:
        rx.receive(f)
    stats = rx.all_stats()
    assert stats["mc_frames_lost"] == 3 and stats["vc_frames_lost"] == 3


def test_idle_frames_when_nothing_is_queued():
    cfg = TmConfig(ocf=True)
    mc, rx = TmMasterChannel(cfg), TmReceiver(cfg)
    mc.ocf = b"\x01\x02\x03\x04"
    frame = TmFrame.unpack(mc.next_frame())
    assert frame.fhp == FHP_IDLE_ONLY and frame.vcid == cfg.idle_vcid
    assert frame.ocf == b"\x01\x02\x03\x04"
    r = rx.receive(mc.next_frame())
    assert r.packets == [] and r.ocf == b"\x01\x02\x03\x04"
    assert rx.all_stats()["idle_frames"] == 1


def test_receiver_drops_and_counts_every_kind_of_bad_frame():
    cfg = TmConfig(scid=7)
    rx = TmReceiver(cfg)
    mc = TmMasterChannel(cfg)
    mc.push(0, SpacePacket(1, bytes(2000)).pack())
    good = mc.drain()[0]
    assert rx.receive(good[:-1]) is None
    assert rx.receive(TmMasterChannel(TmConfig(scid=8)).idle_frame()) is None
    assert rx.receive(with_octet(good, 0, good[0] | 0x80)) is None
    assert rx.receive(with_octet(good, 4, good[4] | 0x40)) is None
    stats = rx.all_stats()
    for reason in ("bad_length", "wrong_scid", "bad_version", "sync_flag_set"):
        assert stats[reason] == 1, reason
    assert stats["frames_dropped"] == 4


def test_secondary_header_and_ocf_in_generated_frames():
    cfg = TmConfig(ocf=True, secondary_header_len=4)
    mc = TmMasterChannel(cfg)
    mc.secondary_header = b"\xde\xad\xbe\xef"
    mc.push(0, SpacePacket(IDLE_APID - 1, bytes(50)).pack())
    mc.flush()
    frame = TmFrame.unpack(mc.drain()[0])
    assert frame.secondary_header == b"\xde\xad\xbe\xef" and frame.ocf == bytes(4)
    mc.secondary_header = b"\x00"
    mc.push(0, SpacePacket(1, bytes(50)).pack())
    mc.flush()
    with pytest.raises(EncodeError, match="secondary_header"):
        mc.drain()


def test_unknown_virtual_channel_is_refused():
    mc = TmMasterChannel()
    with pytest.raises(EncodeError, match="no virtual channel 4"):
        mc.push(4, SpacePacket(1, b"x").pack())
    with pytest.raises(EncodeError, match="idle"):
        mc.add_vc(7)


# -- frames from someone else's virtual channel (flight software with its own framer) ------


def test_a_frame_made_elsewhere_is_multiplexed_with_this_channels_count_clcw_and_fecf():
    cfg = TmConfig(frame_length=64, scid=71, ocf=True)
    mc = TmMasterChannel(cfg)
    mc.ocf = bytes.fromhex("01020304")
    mc.push(0, SpacePacket(0x10, b"ours").pack())
    mc.flush()
    ours = mc.drain()

    def theirs(vc_count: int, ocf: bytes = bytes.fromhex("0104a000")) -> bytes:
        # spacepackets' TM framer (independent of ours), as flight software would use it
        header = TmFramePrimaryHeader(
            MasterChannelId(0, 71),
            1,
            True,
            0,  # its own master frame count: the master channel sets it
            vc_count,
            TransferFrameDataFieldStatus(False, False, False, 0b11, 0x7FE),
        )
        body = header.pack() + bytes(64 - 6 - 4 - 2) + ocf
        return TmTransferFrame(
            64, header, None, bytes(52), ocf, crc16_ccitt(body).to_bytes(2, "big")
        ).pack()

    frame = mc.multiplex(theirs(9))
    kept = mc.multiplex(theirs(10), keep_ocf=True)
    rx = TmReceiver(cfg)
    got = [rx.receive(f) for f in [*ours, frame, kept]]
    assert all(g is not None for g in got)
    assert rx.stats["mc_frames_lost"] == 0  # one master count through both producers
    assert [g.vcid for g in got] == [0, 1, 1]
    assert got[1].ocf == mc.ocf and got[2].ocf == bytes.fromhex("0104a000")
    assert frame[3] == 9  # its virtual channel count is its own
    for bad, words in [
        (theirs(1)[:-1], "frame_length"),
        (bytes([theirs(1)[0] | 0x40]) + theirs(1)[1:], "version"),
        (theirs(1)[:1] + bytes([theirs(1)[1] & 0xF1]) + theirs(1)[2:], "vcid"),  # VC 0: ours
        (theirs(1)[:1] + bytes([theirs(1)[1] & 0xFE]) + theirs(1)[2:], "ocf_flag"),
    ]:
        with pytest.raises(EncodeError) as err:
            mc.multiplex(bad)
        assert words in str(err.value)
    other = TmMasterChannel(replace(cfg, scid=72))
    with pytest.raises(EncodeError, match="scid"):
        other.multiplex(theirs(1))


def test_a_receiver_told_the_fecf_was_checked_does_not_check_it_again():
    """SDLS checks the protected frame's FECF and hands the plain frame on with its
    FECF octets zero (FrameSecurity.process(plain_fecf=False)): the receiver takes it
    only when told so; otherwise a zero FECF is damage."""
    cfg = TmConfig(frame_length=64, scid=5, ocf=True)
    mc = TmMasterChannel(cfg)
    mc.ocf = bytes(4)
    mc.push(0, SpacePacket(0x20, b"x" * 20).pack())
    mc.flush()
    (frame,) = mc.drain()
    bare = frame[:-2] + b"\x00\x00"
    rx = TmReceiver(cfg)
    assert rx.receive(bare) is None and rx.stats["bad_fecf"] == 1
    got = TmReceiver(cfg).receive(bare, fecf_checked=True)
    assert got is not None and got.packets == [SpacePacket(0x20, b"x" * 20).pack()]


def test_negative_and_too_large_fields_are_refused_naming_them():
    for kwargs, field in ((dict(scid=-1), "scid"), (dict(scid=1024), "scid")):
        with pytest.raises(EncodeError, match=field):
            TmConfig(**kwargs)
    with pytest.raises(EncodeError, match="mc_count"):
        TmFrame(1, 1, -1, 0, b"xyz", fhp=0)


def test_a_buffer_longer_than_any_tm_frame_is_refused():
    with pytest.raises(DecodeError, match="at most 2048"):  # 132.0-B-3 §4.1.1
        TmFrame.unpack(bytes(2049), fecf=False)


def test_a_secondary_header_flag_with_no_room_after_the_header_is_a_truncation():
    header_only = bytes([0x00, 0x10, 0, 0, 0x98, 0x00])  # SCID 1, secondary header flag
    with pytest.raises(TruncatedError, match="secondary_header"):
        TmFrame.unpack(header_only, fecf=False)


def test_the_master_channel_and_the_receiver_count_frames_and_packets():
    cfg = TmConfig(frame_length=200, scid=7)
    mc = TmMasterChannel(cfg)
    for n in (50, 300, 20):
        mc.push(0, SpacePacket(1, bytes(n)).pack())
    mc.flush()
    frames = mc.drain()
    assert mc.frames == len(frames) == 3
    rx = TmReceiver(cfg)
    got = [p for f in frames for p in rx.receive(f).packets]
    assert len(got) == 3  # the idle packet that filled the last frame is not one
    assert rx.stats["frames"] == 3 and rx.stats["packets"] == 3


def test_the_receiver_drops_a_zero_length_secondary_header_and_a_set_order_flag():
    cfg = TmConfig(frame_length=64, scid=7, fecf=False, secondary_header_len=2)
    mc = TmMasterChannel(cfg)
    mc.secondary_header = b"\x01\x02"
    good = mc.idle_frame()
    rx = TmReceiver(cfg)
    assert rx.receive(with_octet(good, 6, 0x00)) is None  # length 0: not a header
    assert rx.receive(with_octet(good, 4, good[4] | 0x20)) is None  # packet order flag
    assert rx.receive(with_octet(good, 6, 0x01)) is not None  # 2 octets: its length, 1 + 1
    stats = rx.all_stats()
    assert stats["bad_secondary_header"] == 1 and stats["bad_data_field_status"] == 1


def test_frames_of_a_spacecraft_id_above_511_are_multiplexed():
    cfg = TmConfig(frame_length=64, scid=700)
    source = TmMasterChannel(cfg, vcids=(1,))
    source.push(1, SpacePacket(1, b"x").pack())
    source.flush()
    (frame,) = source.drain()
    assert len(TmMasterChannel(cfg).multiplex(frame)) == 64


# -- limits, messages and counters, each pinned at both ends ------------------------------


def test_the_config_defaults_are_the_documented_ones():
    assert TmConfig() == TmConfig(
        frame_length=1115, scid=0, fecf=True, ocf=False, secondary_header_len=0, idle_vcid=7
    )


@pytest.mark.parametrize(
    "base, field, lo, hi",
    [
        ({}, "scid", 0, 1023),
        ({}, "idle_vcid", 0, 7),
        ({}, "secondary_header_len", 0, 63),
        ({}, "frame_length", 9, 2048),  # header 6 + FECF 2 + one octet of data
        (dict(ocf=True, secondary_header_len=3), "frame_length", 17, 2048),
        (dict(fecf=False), "frame_length", 7, 2048),
    ],
)
def test_config_fields_accept_their_limits_and_refuse_one_beyond(base, field, lo, hi):
    for good in (lo, hi):
        assert getattr(TmConfig(**base, **{field: good}), field) == good
    for bad in (lo - 1, hi + 1):
        with pytest.raises(EncodeError) as err:
            TmConfig(**base, **{field: bad})
        assert err.value.layer == "tm" and err.value.field == field
        assert err.value.rule == f"must be in {lo}..{hi}, got {bad}"


@pytest.mark.parametrize(
    "field, lo, hi",
    [
        ("scid", 0, 1023),
        ("vcid", 0, 7),
        ("mc_count", 0, 255),
        ("vc_count", 0, 255),
        ("fhp", 0, 2047),
        ("segment_length_id", 0, 3),
    ],
)
def test_frame_fields_accept_their_limits_and_refuse_one_beyond(field, lo, hi):
    # the sync flag set, so that no rule but the field's own range applies
    base = dict(scid=1, vcid=1, mc_count=0, vc_count=0, data=b"xyz", fhp=0, sync_flag=True)
    for good in (lo, hi):
        assert getattr(TmFrame(**{**base, field: good}), field) == good
    for bad in (lo - 1, hi + 1):
        with pytest.raises(EncodeError) as err:
            TmFrame(**{**base, field: bad})
        assert err.value.field == field and err.value.rule == f"must be in {lo}..{hi}, got {bad}"


@pytest.mark.parametrize("length, ok", [(0, False), (1, True), (32, True), (63, True), (64, False)])
def test_a_frames_secondary_header_carries_1_to_63_octets(length, ok):
    sec = bytes(range(length))
    if ok:
        frame = TmFrame(1, 1, 0, 0, b"xyz", fhp=0, secondary_header=sec)
        raw = frame.pack()
        assert raw[6] == length  # ident: version 00, length - 1 of the whole header
        assert TmFrame.unpack(raw).secondary_header == sec
    else:
        with pytest.raises(EncodeError) as err:
            TmFrame(1, 1, 0, 0, b"xyz", fhp=0, secondary_header=sec)
        assert err.value.field == "secondary_header"
        assert err.value.rule == f"data must be 1..63 octets, got {length}"


@pytest.mark.parametrize(
    "sync, order, seg_id, ok",
    [
        (False, False, 0b11, True),
        (False, True, 0b11, False),
        (False, False, 0b10, False),
        (False, False, 0b00, False),
        (True, True, 0b00, True),
    ],
)
def test_with_the_sync_flag_0_the_order_flag_must_be_0_and_the_segment_id_11(
    sync, order, seg_id, ok
):
    kw = dict(sync_flag=sync, packet_order_flag=order, segment_length_id=seg_id)
    if ok:
        assert TmFrame(1, 1, 0, 0, b"xyz", fhp=0, **kw).packet_order_flag == order
    else:
        with pytest.raises(EncodeError) as err:
            TmFrame(1, 1, 0, 0, b"xyz", fhp=0, **kw)
        assert err.value.field == "data_field_status"


@pytest.mark.parametrize(
    "fhp, sync, ok",
    [(2, False, True), (3, False, False), (FHP_IDLE_ONLY, False, True), (3, True, True)],
)
def test_a_first_header_pointer_must_point_inside_the_data_field(fhp, sync, ok):
    if ok:
        assert TmFrame(1, 1, 0, 0, b"xyz", fhp=fhp, sync_flag=sync).fhp == fhp
    else:
        with pytest.raises(EncodeError) as err:
            TmFrame(1, 1, 0, 0, b"xyz", fhp=fhp, sync_flag=sync)
        assert err.value.field == "fhp"
        assert err.value.rule == "points at octet 3 of a 3-octet data field"


@pytest.mark.parametrize(
    "data_len, fecf, ok",
    [(2040, True, True), (2041, True, False), (2042, False, True), (2043, False, False)],
)
def test_a_frame_of_exactly_2048_octets_packs_and_unpacks_and_one_more_is_refused(
    data_len, fecf, ok
):
    frame = TmFrame(1, 1, 0, 0, bytes(data_len), fhp=0)
    if ok:
        raw = frame.pack(fecf)
        assert len(raw) == 2048
        assert TmFrame.unpack(raw, fecf, 2048) == frame
    else:
        with pytest.raises(EncodeError) as err:
            frame.pack(fecf)
        assert err.value.field == "frame_length"
        assert err.value.rule == "frame exceeds 2048 octets"


@pytest.mark.parametrize("fecf, minimum", [(False, 6), (True, 8)])
def test_a_buffer_shorter_than_the_primary_header_and_fecf_is_a_truncation(fecf, minimum):
    with pytest.raises(TruncatedError) as err:
        TmFrame.unpack(bytes(minimum - 1), fecf=fecf)
    assert err.value.field == "primary_header"
    assert err.value.rule == f"needs at least {minimum} octets, got {minimum - 1}"


def test_a_crc_mismatch_reports_the_crc_carried_and_the_one_computed():
    # the last data octet is not zero, so that a CRC read one octet too wide shows
    raw = TmFrame(scid=5, vcid=1, mc_count=0, vc_count=0, data=bytes(range(1, 21)), fhp=0).pack()
    assert raw[-3:] == bytes.fromhex("14c6c4")
    with pytest.raises(ChecksumError) as err:
        TmFrame.unpack(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    assert err.value.rule == "CRC mismatch: frame carries 0xc63b, computed 0xc6c4"


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_secondary_header_version_other_than_00_is_refused_naming_it(version):
    raw = _good_frame(secondary_header=b"\x01\x02")
    with pytest.raises(DecodeError) as err:
        TmFrame.unpack(with_octet(raw, 6, (version << 6) | 1))
    assert err.value.field == "secondary_header.version"
    assert err.value.rule == f"secondary header version must be 00, got {version:02b}"


@pytest.mark.parametrize("fecf", [False, True])
def test_a_secondary_header_that_fills_the_whole_frame_leaves_no_data_field(fecf):
    raw = TmFrame(1, 1, 0, 0, b"", fhp=FHP_NO_HEADER, secondary_header=b"\x01\x02").pack(fecf)
    with pytest.raises(TruncatedError) as err:
        TmFrame.unpack(raw, fecf)
    assert err.value.field == "data_field"
    assert err.value.rule == f"frame of {len(raw)} octets has no data field"


@pytest.mark.parametrize("kw", [{}, dict(ocf=b"\x01\x02\x03\x04", secondary_header=b"\x01\x02")])
def test_a_received_fhp_equal_to_the_data_length_is_refused_and_one_less_accepted(kw):
    raw = _good_frame(**kw)  # a 20-octet data field
    fhp_octet = 5
    assert TmFrame.unpack(with_octet(raw, fhp_octet, 19)).fhp == 19
    with pytest.raises(DecodeError) as err:
        TmFrame.unpack(with_octet(raw, fhp_octet, 20))
    assert err.value.field == "fhp"
    assert err.value.rule == "first header pointer 20 lies outside the 20-octet data field"


def test_idle_frames_count_0_to_255_and_wrap_and_carry_only_idle_data():
    cfg = TmConfig(frame_length=16, fecf=False)
    mc = TmMasterChannel(cfg)
    frames = [TmFrame.unpack(mc.idle_frame(), fecf=False) for _ in range(257)]
    assert [f.vc_count for f in frames] == [*range(256), 0]
    assert mc.idle_frames == 257
    assert all(f.data == b"\x55" * 10 and f.vcid == 7 for f in frames)


def test_a_master_channel_puts_a_zero_secondary_header_until_one_is_set():
    mc = TmMasterChannel(TmConfig(secondary_header_len=3))
    assert mc.secondary_header == bytes(3)
    assert TmFrame.unpack(mc.idle_frame()).secondary_header == bytes(3)


def test_a_master_channel_refuses_an_ocf_that_is_not_4_octets():
    mc = TmMasterChannel(TmConfig(ocf=True))
    mc.ocf = b"abc"
    with pytest.raises(EncodeError) as err:
        mc.idle_frame()
    assert err.value.layer == "tm" and err.value.field == "ocf"
    assert err.value.rule == "must be 4 octets, got 3"


@pytest.mark.parametrize("vcid", [-1, 8])
def test_a_master_channel_refuses_a_vcid_outside_0_to_7_as_a_tm_error(vcid):
    with pytest.raises(EncodeError) as err:
        TmMasterChannel().add_vc(vcid)
    assert err.value.layer == "tm" and err.value.field == "vcid"
    assert err.value.rule == f"must be in 0..7, got {vcid}"


# -- multiplexing frames made elsewhere, fixed-size checks ------------------------------------

_FOREIGN_CFG = TmConfig(frame_length=64, scid=71, fecf=False, ocf=True)


def _foreign(vc_count: int = 0, scid: int = 71) -> bytes:
    return TmFrame(scid, 1, 0, vc_count, bytes(range(54)), fhp=0, ocf=b"\x0a\x0b\x0c\x0d").pack(
        fecf=False
    )


def test_multiplex_without_fecf_keeps_the_frames_length_and_octets_but_count_and_clcw():
    mc = TmMasterChannel(_FOREIGN_CFG)
    mc.ocf = b"\x01\x02\x03\x04"
    mc.next_frame()  # master count 0 goes to an idle frame
    frame = _foreign(9)
    out = mc.multiplex(frame)
    assert len(out) == 64
    assert out == frame[:2] + bytes([1]) + frame[3:60] + b"\x01\x02\x03\x04"
    assert mc.multiplex(frame, keep_ocf=True) == frame[:2] + bytes([2]) + frame[3:]


def test_multiplexed_frames_take_master_counts_0_to_255_and_wrap_and_are_counted():
    mc = TmMasterChannel(_FOREIGN_CFG)
    frame = _foreign()
    counts = [mc.multiplex(frame)[2] for _ in range(257)]
    assert counts == [*range(256), 0]
    assert mc.frames == 257


@pytest.mark.parametrize("version", [1, 2, 3])
def test_multiplex_refuses_a_frame_of_another_version_reporting_it(version):
    frame = _foreign()
    with pytest.raises(EncodeError) as err:
        TmMasterChannel(_FOREIGN_CFG).multiplex(bytes([frame[0] | version << 6]) + frame[1:])
    assert err.value.field == "version" and err.value.rule == f"must be 0 (TM), got {version}"


@pytest.mark.parametrize("theirs, ours", [(71, 72), (1023, 71), (0, 71)])
def test_multiplex_refuses_a_frame_of_another_spacecraft_reporting_both_ids(theirs, ours):
    with pytest.raises(EncodeError) as err:
        TmMasterChannel(replace(_FOREIGN_CFG, scid=ours)).multiplex(_foreign(scid=theirs))
    assert err.value.field == "scid"
    assert err.value.rule == f"must be this channel's {ours}, got {theirs}"


# -- the receiver's drops and counters at their limits ------------------------------------


@pytest.mark.parametrize("version", [1, 2, 3])
def test_the_receiver_drops_frames_of_version_01_10_11_and_takes_scid_1023(version):
    cfg = TmConfig(frame_length=64, scid=1023)
    good = TmMasterChannel(cfg).idle_frame()
    rx = TmReceiver(cfg)
    assert rx.receive(with_octet(good, 0, good[0] | version << 6)) is None
    assert rx.receive(good) is not None
    stats = rx.all_stats()
    assert stats["bad_version"] == 1 and stats["frames_dropped"] == 1
    assert stats["frames"] == 1 and stats["idle_frames"] == 1


@pytest.mark.parametrize("version", [1, 2, 3])
def test_the_receiver_drops_a_secondary_header_of_version_01_10_11_and_takes_63_octets(
    version,
):
    cfg = TmConfig(frame_length=128, secondary_header_len=63)
    mc = TmMasterChannel(cfg)
    mc.secondary_header = bytes(range(63))
    good = mc.idle_frame()
    assert good[6] == 0x3F
    rx = TmReceiver(cfg)
    assert rx.receive(good) is not None
    assert rx.receive(with_octet(good, 6, version << 6 | 0x3F)) is None
    stats = rx.all_stats()
    assert stats["bad_secondary_header"] == 1 and stats["idle_frames"] == 1


def test_the_receiver_drops_a_frame_whose_secondary_header_fills_the_data_field():
    cfg = TmConfig(frame_length=64, secondary_header_len=2)
    good = TmMasterChannel(cfg).idle_frame()
    rx = TmReceiver(cfg)
    fills_it = 64 - 6 - 1 - 2  # octets between the ident and the FECF
    assert rx.receive(with_octet(good, 6, fills_it)) is None
    assert rx.receive(with_octet(good, 6, fills_it - 1)) is not None  # one octet of data left
    stats = rx.all_stats()
    assert stats["bad_data_field_status"] == 1 and stats["frames_dropped"] == 1


def test_idle_frames_are_counted_once_and_an_idle_zone_on_a_data_vc_goes_to_its_extractor():
    cfg = TmConfig(frame_length=64, fecf=False)
    rx = TmReceiver(cfg)
    idle = TmMasterChannel(cfg).idle_frame()
    idle_zone_on_vc0 = TmFrame(0, 0, 1, 0, bytes(58), fhp=FHP_IDLE_ONLY).pack(fecf=False)
    got = [rx.receive(idle), rx.receive(idle_zone_on_vc0)]
    assert [(g.vcid, g.vc_count, g.packets) for g in got] == [(7, 0, []), (0, 0, [])]
    stats = rx.all_stats()
    assert stats["frames"] == 2 and stats["idle_frames"] == 1 and stats["idle_zones"] == 1
