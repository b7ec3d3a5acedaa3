"""USLP channels: packets through virtual channels and MAPs, in fixed- and
variable-length frames, with and without losses; the receiver's drop counters."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.spp import SpacePacket, split_packets
from linkstack.ccsds.uslp import OID_VCID, Rule, Upid, UslpFrame, frame_ids
from linkstack.ccsds.uslp_channels import UslpConfig, UslpMasterChannel, UslpReceiver
from linkstack.errors import ConfigError, EncodeError

VCIDS = (1, 2)
MAPS = (0, 5)


def _packet(rng: random.Random, size: int) -> bytes:
    return SpacePacket(rng.randrange(2047), rng.randbytes(size)).pack()


@st.composite
def configs(draw: st.DrawFn) -> UslpConfig:
    fixed = draw(st.booleans())
    return UslpConfig(
        scid=draw(st.integers(0, 0xFFFF)),
        fixed=fixed,
        frame_length=draw(st.integers(40, 400)),
        vc_count_len=draw(st.integers(1, 3)),
        insert_zone_len=draw(st.integers(0, 4)),
        ocf=draw(st.booleans()),
        fecf=draw(st.booleans()),
        dest=draw(st.booleans()),
    )


def _send(cfg: UslpConfig, sizes: list[int], seed: int):
    """Packets of ``sizes`` onto random VCs and MAPs; (frames, packets sent by
    (vcid, map id) in order)."""
    rng = random.Random(seed)
    mc = UslpMasterChannel(cfg, VCIDS, MAPS)
    sent: dict[tuple[int, int], list[bytes]] = {}
    frames = []
    for size in sizes:
        key = (rng.choice(VCIDS), rng.choice(MAPS))
        packet = _packet(rng, size)
        mc.push(*key, packet)
        sent.setdefault(key, []).append(packet)
        if rng.random() < 0.3:  # frames go out while packets still come in
            frames += mc.drain()
        if rng.random() < 0.1:
            frames.append(mc.idle_frame())
    mc.flush()
    frames += mc.drain()
    assert mc.frames_ready == 0
    return frames, sent


def _receive(cfg: UslpConfig, frames: list[bytes]):
    rx = UslpReceiver(cfg)
    got: dict[tuple[int, int], list[bytes]] = {}
    for frame in frames:
        result = rx.receive(frame)
        assert result is not None, rx.stats
        if result.vcid != OID_VCID:
            got.setdefault((result.vcid, result.map_id), []).extend(result.packets)
    return rx, {k: v for k, v in got.items() if v}


@settings(max_examples=60)
@given(configs(), st.lists(st.integers(1, 1500), min_size=1, max_size=30), st.integers(0, 1 << 32))
def test_packets_come_out_identical_and_in_order(cfg, sizes, seed):
    frames, sent = _send(cfg, sizes, seed)
    for frame in frames:
        if cfg.fixed:
            assert len(frame) == cfg.frame_length
        else:
            assert len(frame) <= cfg.frame_length
        assert frame_ids(frame)[0] == cfg.scid
        UslpFrame.unpack(frame, insert_zone_len=cfg.insert_zone_len, fecf=cfg.fecf)
    rx, got = _receive(cfg, frames)
    assert got == sent
    stats = rx.all_stats()
    assert stats["frames_dropped"] == 0 and stats["packets_dropped"] == 0
    assert stats["packets"] == len(sizes)


def _spans(cfg: UslpConfig, frames: list[bytes]) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """For each MAP, each packet's first and last frame, as indices into its VC's
    frames: read from the frames with the codec and the packets' own lengths."""
    vc_frames: dict[int, int] = {}
    per_map: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (VC index, data zone)
    for frame in frames:
        f = UslpFrame.unpack(frame, insert_zone_len=cfg.insert_zone_len, fecf=cfg.fecf)
        if f.is_oid:
            continue
        index = vc_frames.get(f.vcid, 0)
        vc_frames[f.vcid] = index + 1
        per_map.setdefault((f.vcid, f.map_id), []).append((index, f.rule, f.data))
    spans: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for key, zones in per_map.items():
        out = spans[key] = []
        if cfg.fixed:  # one stream of packets cut into zones of equal length
            stream = b"".join(data for _, _, data in zones)
            zone_len = len(zones[0][2])
            pos = 0
            for packet in split_packets(stream):
                first, last = pos // zone_len, (pos + len(packet) - 1) // zone_len
                if (packet[0] & 7, packet[1]) != (7, 0xFF):  # not the idle fill
                    out.append((zones[first][0], zones[last][0]))
                pos += len(packet)
            continue
        start = None
        for index, rule, data in zones:
            if rule == Rule.NO_SEGMENTATION:
                out += [(index, index)] * len(split_packets(data))
            elif rule == Rule.STARTING_SEGMENT:
                start = index
            elif rule == Rule.LAST_SEGMENT:
                out.append((start, index))
    return spans


@settings(max_examples=60)
@given(
    configs(),
    st.lists(st.integers(1, 1200), min_size=1, max_size=30),
    st.integers(0, 1 << 32),
    st.floats(0.0, 0.5),
)
def test_a_packet_is_delivered_iff_every_frame_it_spans_arrived(cfg, sizes, seed, loss):
    frames, sent = _send(cfg, sizes, seed)
    spans = _spans(cfg, frames)
    rng = random.Random(seed + 1)
    lost = {i for i in range(len(frames)) if rng.random() < loss}
    arrived_by_vc: dict[int, set[int]] = {}
    vc_index: dict[int, int] = {}
    for i, frame in enumerate(frames):
        _, vcid, _ = frame_ids(frame)
        if vcid == OID_VCID:
            continue
        index = vc_index.get(vcid, 0)
        vc_index[vcid] = index + 1
        if i not in lost:
            arrived_by_vc.setdefault(vcid, set()).add(index)
    rx, got = _receive(cfg, [f for i, f in enumerate(frames) if i not in lost])
    for key, packets in sent.items():
        assert len(spans[key]) == len(packets)
        arrived = arrived_by_vc.get(key[0], set())
        want = [
            p
            for p, (first, last) in zip(packets, spans[key], strict=True)
            if all(i in arrived for i in range(first, last + 1))
        ]
        assert got.get(key, []) == want, (key, rx.all_stats())


def test_a_lost_frame_of_one_map_drops_the_packet_another_map_was_reassembling():
    cfg = UslpConfig(fixed=False, frame_length=100)
    mc = UslpMasterChannel(cfg, (3,), (0, 1))
    rng = random.Random(7)
    big, small = _packet(rng, 200), _packet(rng, 20)
    mc.push(3, 0, big)  # segmented: MAP 0 sends three frames
    mc.push(3, 1, small)
    frames = mc.drain()
    maps = [frame_ids(f)[2] for f in frames]
    assert maps == [0, 1, 0, 0]
    rx = UslpReceiver(cfg)
    out = [rx.receive(f) for i, f in enumerate(frames) if i != 1]  # MAP 1's frame is lost
    assert [p for r in out if r for p in r.packets] == []
    stats = rx.all_stats()
    assert stats["vc_frames_lost"] == 1 and stats["segment_gap"] == 1
    assert stats["packets_dropped"] == 1


def test_segments_and_whole_packets_in_variable_frames():
    cfg = UslpConfig(fixed=False, frame_length=64, vc_count_len=1, fecf=False)
    mc = UslpMasterChannel(cfg, (0,))
    rng = random.Random(1)
    small = [_packet(rng, 5) for _ in range(4)]  # 11 octets each: 4 fit in a 55-octet zone
    big = _packet(rng, 120)  # 126 octets: 55 + 55 + 16
    for p in small:
        mc.push(0, 0, p)
    mc.push(0, 0, big)
    frames = mc.drain()
    parsed = [UslpFrame.unpack(f, fecf=False) for f in frames]
    assert [f.rule for f in parsed] == [
        Rule.NO_SEGMENTATION,
        Rule.STARTING_SEGMENT,
        Rule.CONTINUING_SEGMENT,
        Rule.LAST_SEGMENT,
    ]
    assert parsed[0].data == b"".join(small) and len(frames[1]) == 64
    assert b"".join(f.data for f in parsed[1:]) == big
    assert [f.vc_count for f in parsed] == [0, 1, 2, 3]
    assert all(f.bypass and f.upid == Upid.SPACE_PACKETS for f in parsed)
    _, got = _receive(cfg, frames)
    assert got == {(0, 0): [*small, big]}


def test_fixed_frames_carry_the_fhp_idle_fill_and_oid_frames():
    cfg = UslpConfig(scid=2800, frame_length=60, vc_count_len=1, ocf=True, insert_zone_len=2)
    mc = UslpMasterChannel(cfg, (4,), (2,))
    mc.ocf = Clcw(4, 17).pack()
    mc.insert_zone = b"\xab\xcd"
    rng = random.Random(2)
    packets = [_packet(rng, 30), _packet(rng, 30)]  # 36 octets each, zones of 41
    for p in packets:
        mc.push(4, 2, p)
    assert mc.frames_ready == 1
    mc.flush()
    frames = [*mc.drain(), mc.next_frame()]
    parsed = [UslpFrame.unpack(f, insert_zone_len=2, frame_length=60) for f in frames]
    assert [(f.vcid, f.map_id, f.pointer) for f in parsed[:2]] == [(4, 2, 0), (4, 2, 31)]
    assert parsed[0].data == packets[0] + packets[1][:5]
    assert parsed[1].data[31:] == b"\x07\xff\xc0\x00\x00\x03" + b"\x55" * 4  # idle fill
    oid = parsed[2]
    assert (oid.vcid, oid.map_id, oid.rule, oid.upid, oid.pointer, oid.bypass) == (
        OID_VCID,
        0,
        Rule.PACKETS_SPANNING,  # a fixed-length zone of idle data, no packet starts in it
        Upid.IDLE,
        0xFFFF,
        True,
    )
    assert oid.data == b"\x55" * len(oid.data) and oid.insert_zone == b"\xab\xcd"
    assert all(f.clcw() == Clcw(4, 17) for f in parsed)
    rx = UslpReceiver(cfg)
    results = [rx.receive(f) for f in frames]
    assert [p for r in results if r for p in r.packets] == packets
    assert results[2] is not None and Clcw.unpack(results[2].ocf) == Clcw(4, 17)
    assert rx.all_stats()["idle_frames"] == 1 and rx.all_stats()["idle_packets"] == 1


def _fixed_frame() -> tuple[UslpConfig, bytes]:
    cfg = UslpConfig(scid=77, frame_length=80, vc_count_len=1)
    mc = UslpMasterChannel(cfg)
    mc.push(0, 0, SpacePacket(5, bytes(60)).pack())
    mc.flush()
    return cfg, mc.drain()[0]


def _with_crc(raw: bytearray) -> bytes:
    from linkstack.ccsds.crc import append_fecf

    return append_fecf(raw[:-2])


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: f[:-1], "bad_length"),
        (lambda f: f[:-1] + bytes([f[-1] ^ 1]), "bad_fecf"),
        (lambda f: _with_crc(bytearray([0x40]) + f[1:]), "bad_version"),
        (lambda f: _with_crc(f[:2] + bytes([f[2] ^ 0x10]) + f[3:]), "wrong_scid"),
        (lambda f: _with_crc(f[:2] + bytes([f[2] ^ 0x08]) + f[3:]), "wrong_scid"),
        (lambda f: _with_crc(f[:6] + bytes([f[6] | 0x20]) + f[7:]), "bad_header"),
        (lambda f: _with_crc(f[:6] + bytes([f[6] + 1]) + f[7:]), "bad_header"),
        (lambda f: _with_crc(f[:6] + bytes([f[6] | 0x08]) + f[7:]), "bad_ocf_flag"),
        (lambda f: _with_crc(f[:8] + bytes([f[8] | 1]) + f[9:]), "not_packets"),
        (lambda f: _with_crc(f[:8] + bytes([0b111 << 5]) + f[9:]), "bad_rule"),
        (lambda f: _with_crc(f[:3] + bytes([f[3] | 1]) + f[4:]), "truncated_frame"),
    ],
)
def test_each_dropped_frame_is_counted_under_its_reason(damage, reason):
    cfg, frame = _fixed_frame()
    rx = UslpReceiver(cfg)
    assert rx.receive(bytes(damage(bytearray(frame)))) is None
    assert rx.stats[reason] == 1 and rx.stats["frames_dropped"] == 1
    assert rx.receive(frame) is not None and rx.stats["frames"] == 1


def test_truncated_frames_of_the_configured_length_carry_whole_packets():
    cfg = UslpConfig(fixed=False, frame_length=100, truncated_frame_length=20)
    packet = SpacePacket(9, bytes(7)).pack()  # 13 octets
    raw = UslpFrame(cfg.scid, 6, 1, packet, truncated=True).pack()
    assert len(raw) == 20
    result = UslpReceiver(cfg).receive(raw)
    assert result is not None and result.packets == [packet] and result.vc_count is None


@settings(max_examples=300)
@given(st.binary(max_size=120), st.booleans(), st.booleans())
def test_the_receiver_never_raises(raw, fixed, fecf):
    length = len(raw) if fixed and len(raw) >= 16 else 120
    cfg = UslpConfig(fixed=fixed, frame_length=length, fecf=fecf, vc_count_len=0)
    rx = UslpReceiver(cfg, check_scid=False)
    result = rx.receive(raw)
    if result is not None:
        for p in result.packets:
            assert split_packets(p) == [p]


def test_bad_configurations_are_refused_by_name():
    for kwargs, field in [
        ({"scid": 1 << 16}, "scid"),
        ({"vc_count_len": 8}, "vc_count_len"),
        ({"frame_length": 10}, "frame_length"),
        ({"frame_length": 70000}, "frame_length"),
        ({"truncated_frame_length": 20}, "truncated_frame_length"),  # fixed-length channel
        ({"insert_zone_len": -1}, "insert_zone_len"),
    ]:
        with pytest.raises(ConfigError) as err:
            UslpConfig(**kwargs)
        assert err.value.field == field
    mc = UslpMasterChannel(UslpConfig(), (0,))
    with pytest.raises(EncodeError, match="vcid"):
        mc.add_vc(OID_VCID)
    with pytest.raises(EncodeError, match="map_id"):
        mc.push(0, 3, SpacePacket(1, b"x").pack())
    with pytest.raises(EncodeError, match="packet"):
        mc.push(0, 0, b"\x00\x01")
    with pytest.raises(EncodeError, match="length"):
        mc.idle_frame(50)
    variable = UslpMasterChannel(UslpConfig(fixed=False, frame_length=100, vc_count_len=0))
    oid = UslpFrame.unpack(variable.idle_frame())
    assert (oid.vcid, oid.rule, oid.upid, len(oid.data)) == (63, Rule.NO_SEGMENTATION, 31, 1)
    assert len(variable.idle_frame(100)) == 100
    with pytest.raises(EncodeError, match="length"):
        variable.idle_frame(101)
