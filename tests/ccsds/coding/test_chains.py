"""The coded chains end to end: packets -> frames -> coding -> damage -> decoding -> packets."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.ccsds.aos import AosConfig, AosMasterChannel, AosReceiver
from linkstack.ccsds.coding.chains import (
    CaduCoding,
    CaduReceiver,
    CaduTransmitter,
    CltuCoding,
    CltuReceiver,
    CltuTransmitter,
)
from linkstack.ccsds.coding.cltu import DecodeMode
from linkstack.ccsds.coding.randomizer import tm_randomize
from linkstack.ccsds.coding.sync import ASM
from linkstack.ccsds.spp import SpacePacket
from linkstack.ccsds.tc import TcConfig, TcFrameType, TcReceiver, TcVirtualChannel
from linkstack.ccsds.tm import TmConfig, TmMasterChannel, TmReceiver
from linkstack.errors import EncodeError


def _packets(rng: random.Random, n: int, max_len: int = 2500) -> list[bytes]:
    return [
        SpacePacket(rng.randrange(2047), rng.randbytes(rng.randrange(1, max_len))).pack()
        for _ in range(n)
    ]


def _tm_frames(pkts: list[bytes], cfg: TmConfig) -> tuple[list[bytes], list[range]]:
    """Frames of the packets, and the frames each packet spans."""
    mc = TmMasterChannel(cfg)
    zl, pos, spans = cfg.data_field_len, 0, []
    for p in pkts:
        mc.push(0, p)
        spans.append(range(pos // zl, (pos + len(p) - 1) // zl + 1))
        pos += len(p)
    mc.flush()
    return mc.drain(), spans


def _symbol_errors(
    rng: random.Random, cadu: bytes, coding: CaduCoding, per_codeword: list[int]
) -> bytes:
    """Damage ``per_codeword[j]`` distinct symbols of codeword j (data or check), with
    random bit patterns, through the randomizer (errors hit the line, not the frame)."""
    asm = len(coding.asm)
    buf = bytearray(cadu)
    depth, n_block = coding.rs_depth, len(cadu) - asm
    for j, count in enumerate(per_codeword):
        positions = range(j, n_block, depth)
        for idx in rng.sample(positions, count):
            buf[asm + idx] ^= rng.randrange(1, 256)
    return bytes(buf)


@given(st.integers(0, 2**32), st.sampled_from([16, 8]), st.sampled_from([1, 3, 5]), st.booleans())
@settings(max_examples=25)
def test_errors_below_the_rs_limit_are_all_corrected(seed, e, depth, dual):
    rng = random.Random(seed)
    cfg = TmConfig(frame_length=(255 - 2 * e) * depth)
    coding = CaduCoding(rs_e=e, rs_depth=depth, dual_basis=dual)
    pkts = _packets(rng, 30)
    frames, _ = _tm_frames(pkts, cfg)
    tx, crx, rx = (
        CaduTransmitter(cfg.frame_length, coding),
        CaduReceiver(cfg.frame_length, coding),
        TmReceiver(cfg),
    )
    out = []
    for cadu in tx.cadus(frames):
        bad = _symbol_errors(rng, cadu, coding, [rng.randrange(e + 1) for _ in range(depth)])
        got = crx.receive_cadu(bad)
        assert got is not None
        out.extend(rx.receive(got.frame).packets)
    assert out == pkts
    assert crx.stats["rs_uncorrectable"] == 0 and crx.stats["frames"] == len(frames)


@given(st.integers(0, 2**32), st.floats(0.05, 0.5))
@settings(max_examples=25)
def test_frames_beyond_the_rs_limit_are_lost_and_never_delivered_wrong(seed, share):
    rng = random.Random(seed)
    cfg = TmConfig()
    coding = CaduCoding()
    pkts = _packets(rng, 40)
    frames, spans = _tm_frames(pkts, cfg)
    tx, crx, rx = CaduTransmitter(1115, coding), CaduReceiver(1115, coding), TmReceiver(cfg)
    doomed = {i for i in range(len(frames)) if rng.random() < share}
    out = []
    for i, cadu in enumerate(tx.cadus(frames)):
        counts = [rng.randrange(17) for _ in range(5)]
        if i in doomed:  # one codeword well past what the code corrects
            counts[rng.randrange(5)] = rng.randrange(40, 120)
        got = crx.receive_cadu(_symbol_errors(rng, cadu, coding, counts))
        if got is not None:
            out.extend(rx.receive(got.frame).packets)
    lost = set(doomed)
    assert crx.stats["rs_uncorrectable"] == len(lost)
    expected = [p for p, span in zip(pkts, spans, strict=True) if not lost.intersection(span)]
    assert out == expected
    assert rx.all_stats()["bad_fecf"] == 0


def test_cadu_layout_follows_the_standard():
    coding = CaduCoding()
    tx = CaduTransmitter(1115, coding)
    frame = bytes(range(256)) * 4 + bytes(91)
    cadu = tx.cadu(frame)
    assert len(cadu) == 4 + 1115 + 160 == tx.cadu_length
    assert cadu[:4] == ASM
    block = tm_randomize(cadu[4:])  # the randomizer covers frame and check symbols
    assert block[:1115] == frame and block == tx.rs.encode(frame)


@pytest.mark.parametrize("shift", [0, 1, 3, 7, 13])
def test_stream_with_a_bit_offset_and_bit_errors(shift):
    rng = random.Random(shift)
    cfg = AosConfig()
    mc = AosMasterChannel(cfg)
    pkts = _packets(rng, 60)
    for p in pkts:
        mc.push(0, p)
    mc.flush()
    frames = mc.drain()
    tx, crx, rx = CaduTransmitter(1115), CaduReceiver(1115), AosReceiver(cfg)
    stream = rng.randbytes(37) + b"".join(tx.cadus(frames))
    bits = int.from_bytes(stream, "big") << shift
    line = bytearray(bits.to_bytes(len(stream) + 2, "big"))
    for _ in range(len(line) // 200):  # about 6e-4 bit error rate
        line[rng.randrange(len(line))] ^= 1 << rng.randrange(8)
    out = []
    for i in range(0, len(line), 999):
        for got in crx.receive_stream(bytes(line[i : i + 999])):
            out.extend(rx.receive(got.frame).packets)
    assert out == pkts
    assert crx.all_stats()["sync_frames"] == len(frames)


def test_uncoded_and_unrandomized_chains():
    coding = CaduCoding(rs_e=None, randomize=False)
    tx, crx = CaduTransmitter(100, coding), CaduReceiver(100, coding)
    cadu = tx.cadu(bytes(range(100)))
    assert cadu == ASM + bytes(range(100))
    assert crx.receive_cadu(cadu).frame == bytes(range(100))
    assert tx.cadus([bytes(100)] * 2) == [ASM + bytes(100)] * 2


def test_units_without_an_asm_are_counted():
    crx = CaduReceiver(1115)
    assert crx.receive_cadu(bytes(1119)) is None
    assert crx.receive_cadu(b"") is None
    assert crx.stats["no_asm"] == 2 and crx.stats["cadus"] == 2


def test_configuration_errors():
    with pytest.raises(EncodeError):
        CaduCoding(rs_e=4)
    with pytest.raises(EncodeError):
        CaduCoding(rs_depth=7)
    with pytest.raises(EncodeError):
        CaduTransmitter(1115).cadu(bytes(10))
    with pytest.raises(EncodeError):
        CaduTransmitter(1115).cadus([bytes(10)])


# -- TC: CLTUs ---------------------------------------------------------------------------------


@given(st.integers(0, 2**32), st.booleans())
@settings(max_examples=30)
def test_tc_packets_through_cltus_with_single_bit_errors_per_codeblock(seed, randomize):
    rng = random.Random(seed)
    cfg = TcConfig(scid=0x2F6)
    vc = TcVirtualChannel(cfg, 1)
    pkts = _packets(rng, 8, 3000)
    frames = [f.pack() for f in vc.frames(pkts, 0, TcFrameType.AD)]
    coding = CltuCoding(randomize=randomize)
    tx, crx, rx = CltuTransmitter(coding), CltuReceiver(coding), TcReceiver(cfg)
    out = []
    for frame in frames:
        cltu = bytearray(tx.cltu(frame))
        for block in range(2, len(cltu) - 8, 8):  # one wrong bit in half of the codeblocks
            if rng.random() < 0.5:
                cltu[block + rng.randrange(8)] ^= 1 << rng.randrange(8)
        got = crx.receive(bytes(cltu))
        assert got == frame
        out.extend(o.packet for o in rx.receive(got))
    assert out == pkts
    assert crx.stats["frames"] == len(frames)


def test_tc_double_error_loses_the_frame_in_correcting_mode_and_one_in_detecting_mode():
    frame = TcVirtualChannel(TcConfig(), 0).frames([SpacePacket(1, bytes(300)).pack()])[0].pack()
    cltu = bytearray(CltuTransmitter().cltu(frame))
    cltu[2 + 8 * 5] ^= 0b0000_0011  # two errors in codeblock 5
    assert CltuReceiver().receive(bytes(cltu)) is None
    one = bytearray(CltuTransmitter().cltu(frame))
    one[2 + 8 * 5] ^= 0b0000_0001
    detect = CltuReceiver(CltuCoding(mode=DecodeMode.DETECT))
    assert detect.receive(bytes(one)) is None
    assert CltuReceiver().receive(bytes(one)) == frame
    assert detect.stats["frame_incomplete"] == 1


def test_tc_units_that_are_not_cltus_are_counted():
    crx = CltuReceiver()
    assert crx.receive(b"\x00" * 40) is None
    assert crx.receive(b"\xeb") is None
    assert crx.stats["bad_start"] == 2


def test_known_answer_cltu_through_the_receiver(kat):
    rx = CltuReceiver(CltuCoding(randomize=False))
    assert rx.receive(bytes.fromhex(kat["cltu_01"]["cltu"])) == bytes.fromhex(
        kat["cltu_01"]["tc_frame"]
    )


def test_a_length_field_shorter_than_a_header_is_refused():
    # found by the fuzzer: a damaged CLTU whose frame length field says 1 octet
    rx = CltuReceiver()
    assert rx.receive(bytes.fromhex("eb90cdcf9e5afee9dbe26a55555555555538c5c5c5c5c5c5c579")) is None
    assert rx.stats["bad_frame_length"] == 1


def test_every_counter_of_the_cadu_receiver():
    """The receiver's counters, which the status and conformance reports read, for one
    unit of each fate: clean, corrected (3 + 2 symbols in two codewords), lost (17
    symbols in codeword 1, more than RS(255,223) corrects, beside 2 in codeword 3), and
    no ASM; then an uncoded chain, whose frames count without Reed-Solomon."""
    rng = random.Random(7)
    coding = CaduCoding()
    tx, crx = CaduTransmitter(1115, coding), CaduReceiver(1115, coding)
    frame = rng.randbytes(1115)
    cadu = tx.cadu(frame)
    assert crx.receive_cadu(cadu) == (frame, 0)
    assert crx.receive_cadu(_symbol_errors(rng, cadu, coding, [3, 0, 2, 0, 0])) == (frame, 5)
    assert crx.receive_cadu(_symbol_errors(rng, cadu, coding, [0, 17, 0, 2, 0])) is None
    assert crx.receive_cadu(bytes(len(cadu))) is None
    expected = {
        "cadus": 4,
        "no_asm": 1,
        "frames": 2,
        "rs_codewords": 15,
        "rs_codewords_corrected": 3,  # two in the frame delivered, one in the frame lost
        "rs_frames_corrected": 1,
        "rs_symbols_corrected": 5,
        "rs_uncorrectable": 1,
        "rs_codewords_uncorrectable": 1,
    }
    assert crx.stats == expected and crx.all_stats() == expected  # no stream: no sync_
    plain = CaduCoding(rs_e=None)
    uncoded = CaduReceiver(100, plain)
    for _ in range(3):
        uncoded.receive_cadu(CaduTransmitter(100, plain).cadu(bytes(100)))
    assert uncoded.stats == {"cadus": 3, "frames": 3}


def test_the_asm_tolerance_and_its_bounds():
    """By default a unit whose ASM has 4 wrong bits of its 32 is still found, one with 5
    is not; a tolerance of half the ASM's bits or more is refused (any pattern would
    then match the ASM or its inverse)."""
    tx = CaduTransmitter(1115)
    cadu = tx.cadu(bytes(1115))
    four = (int.from_bytes(cadu[:4], "big") ^ 0x8421_0000).to_bytes(4, "big") + cadu[4:]
    five = (int.from_bytes(cadu[:4], "big") ^ 0x8421_0008).to_bytes(4, "big") + cadu[4:]
    assert CaduReceiver(1115).receive_cadu(four) == (bytes(1115), 0)
    assert CaduReceiver(1115).receive_cadu(five) is None
    assert CaduCoding(max_asm_errors=15).max_asm_errors == 15
    with pytest.raises(EncodeError, match="max_asm_errors"):
        CaduCoding(max_asm_errors=16)


def test_every_counter_of_the_cltu_receiver():
    frame = TcVirtualChannel(TcConfig(), 0).frames([SpacePacket(1, bytes(300)).pack()])[0].pack()
    good = CltuTransmitter().cltu(frame)
    one = bytearray(good)
    one[2 + 8 * 5] ^= 0b0000_0001  # corrected
    two = bytearray(good)
    two[2 + 8 * 5] ^= 0b0000_0011  # refused: the frame stops short
    crx = CltuReceiver()
    assert crx.receive(good) == frame and crx.receive(bytes(one)) == frame
    assert crx.receive(bytes(two)) is None and crx.receive(b"\x00" * 40) is None
    assert crx.stats == {
        "cltus": 4,
        "frames": 2,
        "bits_corrected": 1,
        "frame_incomplete": 1,
        "bad_start": 1,
    }


def test_a_codeword_with_one_symbol_corrected_counts_as_corrected():
    rng = random.Random(3)
    coding = CaduCoding()
    tx, crx = CaduTransmitter(1115, coding), CaduReceiver(1115, coding)
    frame = rng.randbytes(1115)
    damaged = _symbol_errors(rng, tx.cadu(frame), coding, [1, 0, 0, 0, 0])
    assert crx.receive_cadu(damaged) == (frame, 1)
    assert crx.stats["rs_codewords_corrected"] == 1 and crx.stats["rs_symbols_corrected"] == 1


def test_an_uncoded_chain_checks_the_frame_length_and_reports_no_corrections():
    """Without Reed-Solomon nothing else would notice a frame of the wrong length, and
    every frame comes through with 0 symbols corrected; no frames, no CADUs."""
    plain = CaduCoding(rs_e=None)
    tx = CaduTransmitter(100, plain)
    with pytest.raises(EncodeError, match="frame_length"):
        tx.cadu(bytes(10))
    assert tx.cadus([]) == []
    assert CaduTransmitter(1115).cadus([]) == []  # coded and randomized: none either
    got = CaduReceiver(100, plain).receive_cadu(tx.cadu(bytes(range(100))))
    assert got is not None and got.symbols_corrected == 0


def test_the_stream_receiver_counts_each_cadu_it_finds():
    coding = CaduCoding()
    tx, crx = CaduTransmitter(1115, coding), CaduReceiver(1115, coding)
    stream = b"".join(tx.cadu(bytes([k]) * 1115) for k in range(3))
    assert [f.frame[0] for f in crx.receive_stream(stream[:-100])] == [0, 1]
    assert crx.stats["cadus"] == 2 and crx.stats["frames"] == 2
    assert [f.frame[0] for f in crx.receive_stream(stream[-100:])] == [2]
    assert crx.stats["cadus"] == 3 and crx.stats["frames"] == 3


def test_the_asm_tolerance_may_be_zero_and_not_negative():
    assert CaduCoding(max_asm_errors=0).max_asm_errors == 0
    with pytest.raises(EncodeError, match="max_asm_errors"):
        CaduCoding(max_asm_errors=-1)


def test_a_cltu_whose_start_sequence_has_one_wrong_bit_is_refused_by_default():
    """231.0-B-4 allows a receiver to tolerate one bit error in the start sequence; ours
    does only when asked (max_start_errors=1)."""
    frame = TcVirtualChannel(TcConfig(), 0).frames([SpacePacket(1, bytes(30)).pack()])[0].pack()
    cltu = bytearray(CltuTransmitter().cltu(frame))
    cltu[0] ^= 0x01
    strict = CltuReceiver()
    assert strict.receive(bytes(cltu)) is None and strict.stats["bad_start"] == 1
    assert CltuReceiver(CltuCoding(max_start_errors=1)).receive(bytes(cltu)) == frame


def test_the_shortest_tc_frame_a_cltu_may_carry_is_a_header_and_one_octet():
    """The length field cuts the frame: 6 octets (header and one data octet, 232.0-B-4
    §4.1) come through; 5 (a header alone) are refused as bad_frame_length."""
    shortest = bytes([0x00, 0x09, 0x00, 0x05, 0x00, 0xAB])  # SCID 9, length 6 - 1
    header_only = bytes([0x00, 0x09, 0x00, 0x04, 0x00])  # length 5 - 1
    rx = CltuReceiver()
    assert rx.receive(CltuTransmitter().cltu(shortest)) == shortest
    assert rx.receive(CltuTransmitter().cltu(header_only)) is None
    assert rx.stats["bad_frame_length"] == 1 and rx.stats["frames"] == 1
