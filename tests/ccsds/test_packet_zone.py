import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.packet_zone import (
    FHP_IDLE_ONLY,
    FHP_NO_HEADER,
    FrameSource,
    PacketZoneExtractor,
    PacketZonePacker,
    VcDemultiplexer,
    VcMultiplexer,
)
from linkstack.ccsds.spp import IDLE_APID, PacketType, SpacePacket, parse_primary_header
from linkstack.ccsds.tm import TmConfig, TmFrame, TmMasterChannel
from linkstack.errors import EncodeError


def pkt(n: int, apid: int = 1) -> bytes:
    return SpacePacket(apid, bytes([apid & 0xFF]) * (n - 6)).pack()


def zones_of(packets: list[bytes], zone_len: int) -> list[tuple[bytes, int]]:
    packer = PacketZonePacker(zone_len)
    for p in packets:
        packer.push(p)
    packer.flush()
    out = []
    while (z := packer.pull()) is not None:
        out.append(z)
    return out


@given(
    st.lists(st.integers(7, 300), min_size=1, max_size=40),
    st.integers(1, 120),
    st.sets(st.integers(0, 400)),
    st.integers(0, 2**32),
)
def test_packets_arrive_iff_every_zone_they_span_arrived(sizes, zone_len, lost, seed):
    rng = random.Random(seed)
    packets = [pkt(s, rng.randrange(1, 2047)) for s in sizes]
    spans, pos = [], 0
    for p in packets:
        spans.append(range(pos // zone_len, (pos + len(p) - 1) // zone_len + 1))
        pos += len(p)
    zones = zones_of(packets, zone_len)
    ex = PacketZoneExtractor()
    out, previous = [], -1
    for i, (zone, fhp) in enumerate(zones):
        if i in lost:
            continue
        out.extend(ex.push(zone, fhp, continuous=previous == i - 1))
        previous = i
    expected = [p for p, s in zip(packets, spans, strict=True) if not lost.intersection(s)]
    assert out == expected


def test_header_split_across_zones():
    zones = zones_of([pkt(10), pkt(20, 2)], 13)  # second header starts at octet 10 of 13
    assert zones[0][1] == 0 and zones[1][1] == FHP_NO_HEADER
    ex = PacketZoneExtractor()
    got = [p for z, f in zones for p in ex.push(z, f)]
    assert got == [pkt(10), pkt(20, 2)]


def test_loss_mid_packet_resynchronises_on_the_next_first_header_pointer():
    zones = zones_of([pkt(30), pkt(30, 2), pkt(30, 3)], 25)
    ex = PacketZoneExtractor()
    ex.push(*zones[0])
    got = ex.push(*zones[2], continuous=False)  # zone 1 lost
    got += [p for z, f in zones[3:] for p in ex.push(z, f)]
    assert got == [pkt(30, 3)]
    assert ex.stats["zone_gap"] == 1 and ex.stats["packets_dropped"] == 1


def test_fhp_that_disagrees_with_the_pending_packet_wins():
    ex = PacketZoneExtractor()
    first = pkt(40)
    assert ex.push(first[:20], 0) == []
    # The next zone claims a header at octet 5, but the pending packet needs 20 more.
    other = pkt(15, 9)
    assert ex.push(bytes(5) + other, 5) == [other]
    assert ex.stats["fhp_mismatch"] == 1 and ex.stats["packets_dropped"] == 1


def test_packet_ending_where_no_header_is_announced_is_refused():
    ex = PacketZoneExtractor()
    first = pkt(30)
    ex.push(first[:20], 0)
    # Rest of the packet plus 5 stray octets, FHP says no header starts: inconsistent.
    assert ex.push(first[20:] + bytes(5), FHP_NO_HEADER) == []
    assert ex.stats["fhp_mismatch"] == 1


def test_zone_without_header_while_unsynchronised_is_skipped():
    ex = PacketZoneExtractor()
    assert ex.push(bytes(20), FHP_NO_HEADER) == []
    assert ex.stats["zones_skipped_unsynced"] == 1


def test_synchronised_boundary_must_be_followed_by_a_header_at_zero():
    ex = PacketZoneExtractor()
    assert ex.push(pkt(20), 0) == [pkt(20)]
    assert ex.push(bytes(3) + pkt(17, 4), 3) == [pkt(17, 4)]  # resynchronised at 3
    assert ex.stats["fhp_mismatch"] == 1


def test_idle_zone_mid_packet_and_fhp_out_of_zone():
    ex = PacketZoneExtractor()
    ex.push(pkt(40)[:20], 0)
    assert ex.push(bytes(20), FHP_IDLE_ONLY) == []
    assert ex.stats["idle_zone_mid_packet"] == 1 and ex.stats["idle_zones"] == 1
    assert ex.push(bytes(20), 25) == []
    assert ex.stats["fhp_out_of_zone"] == 1


def test_bad_packet_version_loses_sync_until_the_next_pointer():
    ex = PacketZoneExtractor()
    bad = bytearray(pkt(10))
    bad[0] |= 0x20
    assert ex.push(bytes(bad) + bytes(10), 0) == []
    assert ex.stats["bad_packet_version"] == 1
    assert ex.push(bytes(10), FHP_NO_HEADER) == []  # still lost
    assert ex.push(pkt(10), 0) == [pkt(10)]


def test_packet_spanning_many_zones():
    big = pkt(500)
    zones = zones_of([big], 37)
    assert all(f == FHP_NO_HEADER for _, f in zones[1:-1])
    ex = PacketZoneExtractor()
    assert [p for z, f in zones for p in ex.push(z, f)] == [big]


def test_idle_packets_are_counted_not_returned():
    packer = PacketZonePacker(50)
    packer.push(pkt(20))
    assert packer.flush() == 30
    zone, fhp = packer.pull()
    ex = PacketZoneExtractor()
    assert ex.push(zone, fhp) == [pkt(20)]
    assert ex.stats["idle_packets"] == 1


def test_packer_compacts_its_buffer_and_keeps_fhp_right():
    packer = PacketZonePacker(1000)
    ex = PacketZoneExtractor()
    sent, got = [], []
    for i in range(300):  # pushes well past the compaction threshold
        p = pkt(700 + i % 50, 1 + i % 100)
        sent.append(p)
        packer.push(p)
        while (z := packer.pull()) is not None:
            got.extend(ex.push(*z))
    packer.flush()
    while (z := packer.pull()) is not None:
        got.extend(ex.push(*z))
    assert got == sent


def test_zone_length_limits():
    with pytest.raises(EncodeError):
        PacketZonePacker(0)
    with pytest.raises(EncodeError):
        PacketZonePacker(0x7FF)


# -- resynchronisation across zones, idle packets, the reserved pointers (issue 21) -------

# The First Header Pointer's two reserved values, from the standards, not from the module:
# all ones when no packet header starts in the zone, all ones minus one when the zone
# holds only idle data (the M_PDU header of CCSDS 732.0-B, AOS, and the data field
# status of 132.0-B, TM).
STANDARD_FHP_NO_HEADER = 0b111_1111_1111
STANDARD_FHP_IDLE_ONLY = 0b111_1111_1110


def test_after_a_lost_zone_a_packet_spanning_the_next_zones_arrives():
    # zones of 20: p1 0-29, p2 30-59, p3 60-104 (three zones), p4 105-114, idle after
    packets = [pkt(30), pkt(30, 2), pkt(45, 3), pkt(10, 4)]
    zones = zones_of(packets, 20)
    assert [f for _, f in zones[:6]] == [0, 10, FHP_NO_HEADER, 0, FHP_NO_HEADER, 5]
    ex = PacketZoneExtractor()
    got = ex.push(*zones[0])
    got += ex.push(*zones[2], continuous=False)  # zone 1 lost: p1 and p2 cut
    got += [p for z, f in zones[3:] for p in ex.push(z, f)]
    assert got == [pkt(45, 3), pkt(10, 4)]
    assert ex.stats["zone_gap"] == 1 and ex.stats["packets_dropped"] == 1
    assert ex.stats["zones_skipped_unsynced"] == 1


def test_a_pointer_that_contradicts_the_pending_packet_resynchronises_across_zones():
    ex = PacketZoneExtractor()
    assert ex.push(pkt(40)[:20], 0) == []
    other = pkt(45, 9)  # starts at octet 5 of the next zone and spans two more
    assert ex.push(bytes(5) + other[:15], 5) == []
    assert ex.push(other[15:35], FHP_NO_HEADER) == []
    assert ex.push(other[35:] + pkt(10, 5), 10) == [other, pkt(10, 5)]
    assert ex.stats["fhp_mismatch"] == 1 and ex.stats["packets_dropped"] == 1


def test_a_pointer_off_a_packet_boundary_resynchronises_across_zones():
    ex = PacketZoneExtractor()
    assert ex.push(pkt(20), 0) == [pkt(20)]
    other = pkt(40, 4)  # the pointer says 3 where 0 was due; the packet spans three zones
    assert ex.push(bytes(3) + other[:17], 3) == []
    assert ex.push(other[17:37], FHP_NO_HEADER) == []
    assert ex.push(other[37:] + pkt(17, 6), 3) == [other, pkt(17, 6)]
    assert ex.stats["fhp_mismatch"] == 1


def test_idle_packets_are_numbered_one_after_another():
    packer = PacketZonePacker(20)
    counts = []
    for _ in range(4):
        packer.push(pkt(10))
        assert packer.flush() == 10
        zone, _ = packer.pull()
        idle = parse_primary_header(zone, 10)
        assert idle.apid == IDLE_APID
        counts.append(idle.seq_count)
    assert counts == [0, 1, 2, 3]
    assert packer.flush() == 0  # nothing partly filled: no idle packet


def test_the_reserved_pointer_values_are_the_standards():
    assert (FHP_NO_HEADER, FHP_IDLE_ONLY) == (STANDARD_FHP_NO_HEADER, STANDARD_FHP_IDLE_ONLY)
    # what goes on the wire: a TM Only-Idle-Data frame
    frame = TmFrame.unpack(TmMasterChannel(TmConfig()).next_frame())
    assert frame.fhp == STANDARD_FHP_IDLE_ONLY
    # and what the receiving side makes of the standard's values
    ex = PacketZoneExtractor()
    assert ex.push(bytes(20), STANDARD_FHP_IDLE_ONLY) == []
    assert ex.stats == {"idle_zones": 1}
    assert ex.push(bytes(20), STANDARD_FHP_NO_HEADER) == []
    assert ex.stats["zones_skipped_unsynced"] == 1
    # a packer's zone where no header starts carries all ones
    zones = zones_of([pkt(50)], 20)
    assert zones[1][1] == STANDARD_FHP_NO_HEADER


def test_zone_length_limits_are_inclusive():
    assert PacketZonePacker(1).zone_len == 1
    assert PacketZonePacker(0x7FE - 1 + 1).zone_len == 0x7FE
    assert PacketZonePacker(5, max_zone_len=5).zone_len == 5
    with pytest.raises(EncodeError, match="zone_len"):
        PacketZonePacker(6, max_zone_len=5)


def test_a_zone_skipped_unsynchronised_leaves_the_extractor_unsynchronised():
    ex = PacketZoneExtractor()
    assert ex.push(bytes(20), FHP_NO_HEADER) == []
    # the first header it can hold on to is at 3: no mismatch, nothing was expected
    assert ex.push(bytes(3) + pkt(17, 4), 3) == [pkt(17, 4)]
    assert ex.stats == {"zones_skipped_unsynced": 1}


def test_a_bad_header_in_the_last_six_octets_of_a_zone_is_seen_in_that_zone():
    bad = bytearray(pkt(10))
    bad[0] |= 0x20  # version 1
    ex = PacketZoneExtractor()
    assert ex.push(pkt(14) + bytes(bad[:6]), 0) == [pkt(14)]
    assert ex.stats["bad_packet_version"] == 1
    # a good header cut there completes in the next zone
    ex = PacketZoneExtractor()
    assert ex.push(pkt(14) + pkt(10, 3)[:6], 0) == [pkt(14)]
    assert ex.push(pkt(10, 3)[6:] + pkt(16, 5), 4) == [pkt(10, 3), pkt(16, 5)]


def test_virtual_channel_frame_counts_start_at_zero_and_wrap():
    mux = VcMultiplexer("tm", 10, 4, reserved=7)
    vc = mux.add(1)
    for _ in range(5):
        vc.push(pkt(10))
    assert [mux.pull()[1] for _ in range(5)] == [0, 1, 2, 3, 0]
    assert mux.pull() is None


def test_a_packet_completed_from_the_last_zone_leaves_nothing_pending():
    """A packet that continues into a zone and ends there, then packets that end on the
    zone's own end: the next zone starts clean, with no sync loss or drop counted."""
    a, b, c = pkt(30), pkt(10, 2), pkt(20, 3)
    zones = zones_of([a, b, c], 20)
    assert [f for _, f in zones] == [0, 10, 0]  # b ends on the second zone's last octet
    ex = PacketZoneExtractor()
    assert [p for z, f in zones for p in ex.push(z, f)] == [a, b, c]
    assert ex.stats == {}


def test_the_multiplexer_counts_the_full_zones_of_every_channel():
    """``frames_ready`` (what a satellite checks before it sends out of a pass): the full
    zones waiting over all the virtual channels."""
    mux = VcMultiplexer("tm", 10, 4, reserved=7)
    one, two = mux.add(1), mux.add(2)
    assert mux.frames_ready == 0
    for _ in range(3):
        one.push(pkt(10))
    two.push(pkt(25, 2))  # two full zones, and a half one that stays
    assert mux.frames_ready == 5
    mux.pull()
    assert mux.frames_ready == 4


# -- survivors of a full mutation run (85.6 %, issue 21) -----------------------------------


def bad_version(n: int) -> bytes:
    bad = bytearray(pkt(n))
    bad[0] |= 0x20  # version 1
    return bytes(bad)


def test_the_packer_says_how_many_octets_wait_for_a_zone():
    packer = PacketZonePacker(10)
    assert (packer.buffered, packer.zones_ready) == (0, 0)
    packer.push(pkt(25))
    assert (packer.buffered, packer.zones_ready) == (25, 2)
    packer.pull()
    assert (packer.buffered, packer.zones_ready) == (15, 1)
    # the half zone left after the pull is what flush completes (5 octets, too few for
    # an idle packet, so one zone more)
    assert packer.flush() == 15
    assert (packer.buffered, packer.zones_ready) == (30, 3)


def test_packets_come_out_as_bytes_whatever_the_zone_was_given_as():
    a, b = pkt(12), pkt(8, 2)
    for zone in (bytearray(a + b), memoryview(a + b)):
        got = PacketZoneExtractor().push(zone, 0)
        assert got == [a, b]
        assert [type(p) for p in got] == [bytes, bytes]


def test_a_pointer_one_past_the_zone_is_out_of_the_zone_and_sync_is_not_taken():
    ex = PacketZoneExtractor()
    assert ex.push(bytes(20), 20) == []
    # still unsynchronised: a zone without a header is skipped, no mismatch counted
    assert ex.push(bytes(20), FHP_NO_HEADER) == []
    assert ex.stats == {"fhp_out_of_zone": 1, "zones_skipped_unsynced": 1}


def test_losing_sync_forgets_the_pending_packet():
    ex = PacketZoneExtractor()
    assert ex.push(pkt(40)[:20], 0) == []
    assert ex.push(bytes(20), FHP_IDLE_ONLY) == []
    assert ex.push(pkt(20), 0) == [pkt(20)]
    assert ex.push(pkt(20, 2), 0) == [pkt(20, 2)]
    assert ex.stats == {"idle_zone_mid_packet": 1, "packets_dropped": 1, "idle_zones": 1}


def test_a_header_cut_after_a_lost_zone_is_completed_from_the_next_zone():
    """The packet cut by the loss had its header read; the header cut at the end of the
    zone the extractor resynchronised on is read afresh, not taken for that one's."""
    ex = PacketZoneExtractor()
    assert ex.push(pkt(40)[:20], 0) == []
    cut = pkt(10, 3)
    assert ex.push(pkt(17, 2) + cut[:3], 0, continuous=False) == [pkt(17, 2)]
    assert ex.push(cut[3:] + pkt(13, 4), 7) == [cut, pkt(13, 4)]
    assert ex.stats == {"zone_gap": 1, "packets_dropped": 1}


def test_a_packet_ending_before_the_pointer_resynchronises_on_the_pointer():
    ex = PacketZoneExtractor()
    first = pkt(25)
    assert ex.push(first[:20], 0) == []
    # the packet ends at octet 5, but the pointer says the next header is at 8
    assert ex.push(first[20:] + bytes(3) + pkt(12, 7), 8) == [pkt(12, 7)]
    assert ex.stats == {"fhp_mismatch": 1, "packets_dropped": 1}


def test_a_packet_ending_where_no_header_is_announced_leaves_the_extractor_unsynchronised():
    ex = PacketZoneExtractor()
    first = pkt(30)
    ex.push(first[:20], 0)
    assert ex.push(first[20:] + bytes(5), FHP_NO_HEADER) == []
    assert ex.push(bytes(20), FHP_NO_HEADER) == []  # skipped: nothing to hold on to
    assert ex.push(pkt(20, 2), 0) == [pkt(20, 2)]
    assert ex.stats == {"fhp_mismatch": 1, "packets_dropped": 1, "zones_skipped_unsynced": 1}


def test_no_header_where_one_was_due_leaves_the_extractor_unsynchronised():
    ex = PacketZoneExtractor()
    assert ex.push(pkt(20), 0) == [pkt(20)]
    assert ex.push(bytes(20), FHP_NO_HEADER) == []
    assert ex.push(bytes(20), FHP_NO_HEADER) == []
    assert ex.stats == {"fhp_mismatch": 1, "zones_skipped_unsynced": 1}


def test_a_cut_header_that_the_pointer_cuts_short_resynchronises_on_the_pointer():
    ex = PacketZoneExtractor()
    assert ex.push(pkt(17) + pkt(10, 2)[:3], 0) == [pkt(17)]
    # three header octets are missing, but the pointer says a header starts at 2
    assert ex.push(bytes(2) + pkt(18, 3), 2) == [pkt(18, 3)]
    assert ex.stats == {"fhp_mismatch": 1, "packets_dropped": 1}


def test_a_cut_header_with_a_bad_version_is_refused_when_completed():
    ex = PacketZoneExtractor()
    bad = bad_version(10)
    assert ex.push(pkt(17) + bad[:3], 0) == [pkt(17)]
    assert ex.push(bad[3:] + pkt(13, 5), 7) == [pkt(13, 5)]
    assert ex.stats == {"bad_packet_version": 1, "packets_dropped": 1}


def test_a_cut_telecommand_packet_header_is_completed():
    """The packet type bit (TC) is next to the version: only the version is checked."""
    tc = SpacePacket(5, bytes(4), packet_type=PacketType.TC).pack()
    ex = PacketZoneExtractor()
    assert ex.push(pkt(17) + tc[:3], 0) == [pkt(17)]
    assert ex.push(tc[3:] + pkt(13, 5), 7) == [tc, pkt(13, 5)]
    assert ex.stats == {}


def test_a_virtual_channel_counts_the_packets_queued_on_it():
    mux = VcMultiplexer("tm", 10, 4, reserved=7)
    vc = mux.add(1)
    assert vc.packets == 0
    for _ in range(3):
        vc.push(pkt(10))
    assert vc.packets == 3
    vc.flush()
    assert vc.packets == 3  # the idle fill is no packet of the channel's


def test_a_virtual_channel_is_added_once():
    mux = VcMultiplexer("tm", 10, 4, reserved=7)
    vc = mux.add(1)
    with pytest.raises(EncodeError, match="virtual channel 1 exists already"):
        mux.add(1)
    assert mux.vc(1) is vc
    with pytest.raises(EncodeError, match="virtual channel 7 is the idle VC"):
        mux.add(7)


def test_the_multiplexer_takes_the_channels_in_turn_skipping_empty_ones():
    mux = VcMultiplexer("tm", 10, 4, reserved=7)
    one, _, three = mux.add(1), mux.add(2), mux.add(3)
    one.push(pkt(20))  # two zones
    three.push(pkt(10, 3))  # one zone
    assert [mux.pull()[0].vcid for _ in range(3)] == [1, 3, 1]
    assert mux.pull() is None


def test_a_frame_source_must_build_its_frames():
    with pytest.raises(TypeError, match="abstract"):
        FrameSource()


def test_the_master_channel_counts_the_frames_ready_over_its_channels():
    mc = TmMasterChannel(TmConfig(), vcids=(0, 1))
    zone_len = TmConfig().data_field_len
    assert mc.frames_ready == 0
    mc.push(0, pkt(zone_len))
    mc.push(1, pkt(zone_len + 10, 2))
    assert mc.frames_ready == 2
    mc.flush(1)
    assert mc.frames_ready == 3
    assert len(mc.drain()) == 3 and mc.frames_ready == 0


def test_the_demultiplexer_counts_the_frames_lost_on_each_channel():
    demux = VcDemultiplexer(8)
    assert demux.push(1, 6, pkt(20), 0) == [pkt(20)]  # a channel's first frame: no loss
    assert demux.push(2, 0, pkt(20, 2), 0) == [pkt(20, 2)]
    assert demux.push(1, 7, pkt(20, 3), 0) == [pkt(20, 3)]
    assert demux.push(1, 2, pkt(20, 4), 0) == [pkt(20, 4)]  # 0 and 1 lost, across the wrap
    assert demux.frames_lost == 2
    assert demux.stats() == {"zone_gap": 1, "vc_frames_lost": 2}
