import fastcrc
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.crc import append_fecf, crc16_ccitt, fecf_ok


def bitwise_crc16_ccitt(data: bytes) -> int:
    """A slow, obviously-correct reference: shift register, MSB first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def test_check_value_from_the_vectors(kat):
    vec = kat["crc16_ccitt_false"]
    assert crc16_ccitt(vec["input_ascii"].encode()) == int(vec["check"], 16) == 0x29B1


def test_fecf_of_the_known_answer_tc_frame(kat):
    frame = bytes.fromhex(kat["cltu_01"]["tc_frame"])
    assert fecf_ok(frame)
    assert append_fecf(frame[:-2]) == frame


@given(st.binary(max_size=2048))
def test_agrees_with_a_bitwise_reference_and_with_fastcrc(data):
    assert crc16_ccitt(data) == bitwise_crc16_ccitt(data) == fastcrc.crc16.ibm_3740(data)


@given(st.binary(min_size=1, max_size=300), st.integers(0, 10_000), st.integers(0, 7))
def test_any_single_bit_flip_is_detected(data, pos, bit):
    unit = bytearray(append_fecf(data))
    unit[pos % len(unit)] ^= 1 << bit
    assert not fecf_ok(unit)


def test_fecf_ok_refuses_units_shorter_than_the_fecf():
    assert not fecf_ok(b"")
    assert not fecf_ok(b"\x00")
