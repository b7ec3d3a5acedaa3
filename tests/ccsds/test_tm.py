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
