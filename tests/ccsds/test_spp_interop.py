"""Space Packets cross-checked against spacepackets-py, an independent implementation."""

from hypothesis import given
from hypothesis import strategies as st
from spacepackets.ccsds.spacepacket import PacketType as SpPacketType
from spacepackets.ccsds.spacepacket import SequenceFlags, SpacePacketHeader
from spacepackets.ccsds.spacepacket import SpacePacket as SpSpacePacket

from linkstack.ccsds.spp import PacketType, SeqFlags, SpacePacket, parse_primary_header

headers = st.fixed_dictionaries(
    {
        "apid": st.integers(0, 2047),
        "seq_count": st.integers(0, 16383),
        "flags": st.integers(0, 3),
        "tc": st.booleans(),
        "sec": st.booleans(),
        "data": st.binary(min_size=1, max_size=300),
    }
)


@given(headers)
def test_ours_decode_with_spacepackets(h):
    ours = SpacePacket(
        h["apid"],
        h["data"],
        PacketType.TC if h["tc"] else PacketType.TM,
        h["seq_count"],
        SeqFlags(h["flags"]),
        h["sec"],
    ).pack()
    theirs = SpacePacketHeader.unpack(ours)
    assert theirs.apid == h["apid"]
    assert theirs.seq_count == h["seq_count"]
    assert int(theirs.seq_flags) == h["flags"]
    assert theirs.packet_type == (SpPacketType.TC if h["tc"] else SpPacketType.TM)
    assert theirs.sec_header_flag == h["sec"]
    assert theirs.data_len == len(h["data"]) - 1
    assert theirs.ccsds_version == 0
    assert theirs.packet_len == len(ours)


@given(headers)
def test_theirs_decode_with_ours(h):
    header = SpacePacketHeader(
        packet_type=SpPacketType.TC if h["tc"] else SpPacketType.TM,
        apid=h["apid"],
        seq_count=h["seq_count"],
        data_len=len(h["data"]) - 1,
        sec_header_flag=h["sec"],
        seq_flags=SequenceFlags(h["flags"]),
    )
    if h["sec"]:  # spacepackets wants the secondary header apart from the user data
        k = min(2, len(h["data"]))
        sp = SpSpacePacket(header, h["data"][:k], h["data"][k:] or None)
    else:
        sp = SpSpacePacket(header, None, h["data"])
    raw = bytes(sp.pack())
    pkt = SpacePacket.unpack(raw)
    assert (pkt.apid, pkt.seq_count, int(pkt.seq_flags)) == (h["apid"], h["seq_count"], h["flags"])
    assert pkt.packet_type == (PacketType.TC if h["tc"] else PacketType.TM)
    assert pkt.sec_header_flag == h["sec"]
    assert pkt.data == h["data"]
    assert parse_primary_header(raw).data_length_field == header.data_len
    assert pkt.pack() == raw
