import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.coding.cltu import (
    FILL,
    START_SEQUENCE,
    TAIL_SEQUENCE,
    CltuDecoded,
    CltuEnd,
    DecodeMode,
    bch_encode,
    decode_cltu,
    encode_cltu,
    transfer_frame_length,
)
from linkstack.ccsds.coding.randomizer import tc_randomize
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.ccsds.uslp import Rule, UslpFrame
from linkstack.errors import DecodeError, EncodeError, TruncatedError

CORRECT, DETECT = DecodeMode.CORRECT, DecodeMode.DETECT


def flip_bit(buf: bytes, bit: int) -> bytes:
    out = bytearray(buf)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def test_known_answer_codeblocks(kat):
    for hexblock in kat["bch_63_56_codeblocks"]["codeblocks"]:
        block = bytes.fromhex(hexblock)
        assert bch_encode(block[:7]) == block


def test_known_answer_cltu(kat):
    frame = bytes.fromhex(kat["cltu_01"]["tc_frame"])
    cltu = bytes.fromhex(kat["cltu_01"]["cltu"])
    assert START_SEQUENCE.hex() == kat["asm"]["cltu_start_sequence"]
    assert TAIL_SEQUENCE.hex() == kat["asm"]["cltu_tail_sequence"]
    assert encode_cltu(frame) == cltu
    for mode in DecodeMode:
        got = decode_cltu(cltu, mode)
        assert got == CltuDecoded(frame + bytes([FILL]) * 3, 37, 0, CltuEnd.TAIL)
        assert got.frame() == frame
        assert TcFrame.unpack(got.frame()).frame_type is TcFrameType.BD


def test_every_single_bit_error_in_a_codeblock(kat):
    """All 64 bits of a codeblock, the filler bit included: corrected in CORRECT
    mode, refused (ending the CLTU there) in DETECT mode."""
    frame = bytes.fromhex(kat["cltu_01"]["tc_frame"])
    cltu = bytes.fromhex(kat["cltu_01"]["cltu"])
    block = 5  # the sixth codeblock
    for bit in range(64):
        damaged = flip_bit(cltu, 8 * (2 + 8 * block) + bit)
        got = decode_cltu(damaged, CORRECT)
        assert (got.frame(), got.corrected_bits, got.end) == (frame, 1, CltuEnd.TAIL)
        got = decode_cltu(damaged, DETECT)
        assert (got.data, got.codeblocks, got.end) == (frame[:35], 5, CltuEnd.UNCORRECTABLE)


def test_double_errors_are_never_accepted():
    """Every pair of bit errors in one codeblock (filler included) is refused by
    both modes: the code's distance is 4, and the filler counts as a 64th bit."""
    block = bch_encode(bytes.fromhex("0123456789abcd"))
    cltu = START_SEQUENCE + block + TAIL_SEQUENCE
    for a, b in itertools.combinations(range(64), 2):
        damaged = flip_bit(flip_bit(cltu, 16 + a), 16 + b)
        for mode in DecodeMode:
            got = decode_cltu(damaged, mode)
            assert (got.data, got.codeblocks, got.end) == (b"", 0, CltuEnd.UNCORRECTABLE)


def test_triple_errors_are_detected_in_detect_mode():
    rng = random.Random(3)
    block = bch_encode(bytes(rng.randbytes(7)))
    cltu = START_SEQUENCE + block + TAIL_SEQUENCE
    for _ in range(2000):
        damaged = cltu
        for bit in rng.sample(range(64), 3):
            damaged = flip_bit(damaged, 16 + bit)
        assert decode_cltu(damaged, DETECT).codeblocks == 0


def test_the_tail_is_never_accepted():
    # with one bit error too: it stays at least 2 bits from any codeword
    for bit in [None, *range(64)]:
        tail = TAIL_SEQUENCE if bit is None else flip_bit(TAIL_SEQUENCE, bit)
        for mode in DecodeMode:
            assert decode_cltu(START_SEQUENCE + tail, mode).codeblocks == 0


@given(st.binary(min_size=1, max_size=1100), st.booleans())
def test_round_trip(frame, randomize):
    cltu = encode_cltu(frame, randomize)
    blocks = -(-len(frame) // 7)
    assert len(cltu) == 2 + 8 * blocks + 8
    for mode in DecodeMode:
        got = decode_cltu(cltu, mode, randomize)
        assert (got.codeblocks, got.corrected_bits, got.end) == (blocks, 0, CltuEnd.TAIL)
        assert got.data[: len(frame)] == frame
        if not randomize:
            assert got.data[len(frame) :] == bytes([FILL]) * (7 * blocks - len(frame))


@given(st.binary(min_size=1, max_size=300), st.randoms(use_true_random=False))
def test_round_trip_with_one_error_per_codeblock(frame, rnd):
    cltu = bytearray(encode_cltu(frame, randomize=True))
    blocks = -(-len(frame) // 7)
    hit = [b for b in range(blocks) if rnd.random() < 0.5]
    for b in hit:
        cltu[2 + 8 * b + rnd.randrange(8)] ^= 1 << rnd.randrange(8)
    got = decode_cltu(bytes(cltu), CORRECT, randomize=True)
    assert (got.data[: len(frame)], got.corrected_bits, got.end) == (frame, len(hit), CltuEnd.TAIL)
    got = decode_cltu(bytes(cltu), DETECT, randomize=True)
    first = min(hit, default=blocks)
    assert got.codeblocks == first
    assert got.end is (CltuEnd.TAIL if not hit else CltuEnd.UNCORRECTABLE)


def test_randomized_cltu_differs_and_needs_derandomizing(kat):
    frame = bytes.fromhex(kat["cltu_01"]["tc_frame"])
    cltu = encode_cltu(frame, randomize=True)
    assert cltu != encode_cltu(frame)
    assert cltu == encode_cltu(tc_randomize(frame))
    assert decode_cltu(cltu, randomize=True).frame() == frame
    assert decode_cltu(cltu).data[:256] == tc_randomize(frame)


def test_truncated_and_missing_tail(kat):
    cltu = bytes.fromhex(kat["cltu_01"]["cltu"])
    frame = bytes.fromhex(kat["cltu_01"]["tc_frame"])
    no_tail = cltu[:-8]
    got = decode_cltu(no_tail)
    assert (got.codeblocks, got.end, got.frame()) == (37, CltuEnd.TRUNCATED, frame)
    got = decode_cltu(cltu[:-12])  # the last codeblock cut in half
    assert (got.codeblocks, got.end) == (36, CltuEnd.TRUNCATED)
    with pytest.raises(TruncatedError) as exc:
        got.frame()  # 252 octets of a 256-octet frame
    assert (exc.value.layer, exc.value.field) == ("cltu", "codeblocks")
    got = decode_cltu(cltu + b"\x55\xaa" * 20)  # idle after the tail is ignored
    assert (got.codeblocks, got.end) == (37, CltuEnd.TAIL)


@pytest.mark.parametrize(
    ("unit", "field"),
    [
        (b"", "start_sequence"),
        (b"\xeb", "start_sequence"),
        (b"\xeb\x91" + bytes(20), "start_sequence"),
        (b"\x90\xeb" + bytes(20), "start_sequence"),
        (b"\xeb\x90", "codeblocks"),
        (b"\xeb\x90" + bytes(7), "codeblocks"),
    ],
)
def test_malformed_cltu_is_refused(unit, field):
    with pytest.raises(DecodeError) as exc:
        decode_cltu(unit)
    assert (exc.value.layer, exc.value.field) == ("cltu", field)


def test_start_sequence_tolerance():
    cltu = encode_cltu(b"hello")
    one_off = flip_bit(cltu, 3)
    with pytest.raises(DecodeError):
        decode_cltu(one_off)
    assert decode_cltu(one_off, max_start_errors=1).data[:5] == b"hello"
    with pytest.raises(DecodeError):
        decode_cltu(flip_bit(one_off, 9), max_start_errors=1)
    with pytest.raises(EncodeError):
        decode_cltu(cltu, max_start_errors=2)


def test_frame_needs_a_header():
    got = decode_cltu(START_SEQUENCE + TAIL_SEQUENCE)
    assert (got.data, got.codeblocks, got.end) == (b"", 0, CltuEnd.TAIL)
    with pytest.raises(TruncatedError):
        got.frame()


def test_encoder_refusals():
    with pytest.raises(EncodeError):
        encode_cltu(b"")
    with pytest.raises(EncodeError):
        bch_encode(b"123456")
    with pytest.raises(EncodeError):
        decode_cltu(encode_cltu(b"x"), mode="correct")


@given(st.binary(max_size=400), st.sampled_from(DecodeMode), st.booleans())
def test_random_units_give_decode_error_or_a_clean_result(unit, mode, randomize):
    for candidate in (unit, START_SEQUENCE + unit):
        try:
            got = decode_cltu(candidate, mode, randomize)
        except DecodeError:
            continue
        assert len(got.data) == 7 * got.codeblocks
        assert isinstance(got.end, CltuEnd)
        assert got.corrected_bits <= got.codeblocks
        if mode is DETECT:
            assert got.corrected_bits == 0


def test_a_uslp_header_of_exactly_six_octets_gives_the_frame_length():
    # version 12 (USLP) in the top nibble, not truncated, frame length field 99
    assert transfer_frame_length(bytes([0xC0, 0, 0, 0, 0x00, 0x63])) == 100


@pytest.mark.parametrize("max_start_errors", [-1, 2])
def test_max_start_errors_outside_0_1_is_refused(max_start_errors):
    with pytest.raises(EncodeError, match="max_start_errors"):
        decode_cltu(encode_cltu(b"hello"), max_start_errors=max_start_errors)


def test_a_cltu_without_a_whole_codeblock_says_how_many_octets_follow_the_start():
    for after in (0, 5, 7):
        with pytest.raises(TruncatedError, match=f"got {after}$"):
            decode_cltu(START_SEQUENCE + bytes(after))


def test_five_octets_of_a_uslp_header_are_too_few_for_its_length_field():
    """The USLP length field ends at octet 6: five octets that start like a USLP frame
    are read as a TC header (whose length field they hold), not indexed past their end."""
    five = bytes([0xC0, 0x00, 0x00, 0x00, 0x00])
    assert transfer_frame_length(five) == 1  # the TC length field's 0, plus one
    six = bytes([0xC0, 0x00, 0x00, 0x00, 0x00, 0x0A])
    assert transfer_frame_length(six) == 11  # the USLP length field's 10, plus one


def test_a_uslp_frame_longer_than_256_octets_comes_back_whole_from_its_cltu():
    """The USLP length field's high octet (octet 4) and the ids in octet 3 (VCID, MAP
    id) both matter: a frame over 256 octets on VC 37, MAP 9 is cut at its own end."""
    frame = UslpFrame(
        scid=0xABCD, vcid=37, map_id=9, rule=Rule.OCTET_STREAM, data=bytes(range(256)) * 2
    ).pack()
    assert len(frame) > 512 and frame[3] & 1 == 0 and frame[3] >> 1
    unit = encode_cltu(frame + b"\x00" * 40)  # octets after the frame: the cut matters
    got = decode_cltu(unit).frame()
    assert got == frame
    assert transfer_frame_length(frame) == len(frame)


def test_a_truncated_uslp_frame_has_no_length_field_to_cut_at():
    truncated = UslpFrame(
        scid=5, vcid=1, map_id=2, rule=Rule.OCTET_STREAM, data=b"\x42", truncated=True
    ).pack(fecf=False)
    with pytest.raises(DecodeError, match="truncated USLP frame has no length field"):
        transfer_frame_length(truncated + bytes(8))
    with pytest.raises(DecodeError, match="truncated USLP frame"):
        decode_cltu(encode_cltu(truncated + bytes(8))).frame()


@pytest.mark.parametrize("unit", [b"", b"\xeb"])
def test_fewer_than_two_octets_are_a_truncated_start_sequence(unit):
    with pytest.raises(TruncatedError, match=f"needs 2 octets, got {len(unit)}$"):
        decode_cltu(unit)
