"""The CLCW (232.1-B-2 §4.2) and the COP-1 control commands (Unlock, Set V(R))."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.cop1.clcw import Clcw, is_clcw
from linkstack.ccsds.cop1.commands import SetVr, Unlock, seq_distance, unpack_control_command
from linkstack.errors import DecodeError, EncodeError, TruncatedError

COP1_BITS = 0b01 << 24  # the "COP in effect" field of every COP-1 CLCW

clcws = st.builds(
    Clcw,
    vcid=st.integers(0, 63),
    report_value=st.integers(0, 255),
    lockout=st.booleans(),
    wait=st.booleans(),
    retransmit=st.booleans(),
    farm_b_counter=st.integers(0, 3),
    no_rf_available=st.booleans(),
    no_bit_lock=st.booleans(),
    status=st.integers(0, 7),
)


def test_every_field_is_where_the_standard_puts_it():
    # 0 | 00 | 101 | 01 || 010101 | 00 || 0 1 1 0 1 10 0 || 10100111, worked out by hand
    clcw = Clcw(
        vcid=0b010101,
        report_value=0xA7,
        lockout=True,
        retransmit=True,
        farm_b_counter=2,
        no_bit_lock=True,
        status=0b101,
    )
    assert clcw.pack() == bytes([0b00010101, 0b01010100, 0b01101100, 0xA7])
    assert Clcw.unpack(clcw.pack()) == clcw


@pytest.mark.parametrize(
    ("flag", "bit"),
    [
        ("no_rf_available", 16),
        ("no_bit_lock", 17),
        ("lockout", 18),
        ("wait", 19),
        ("retransmit", 20),
    ],
)
def test_each_flag_is_one_bit(flag, bit):
    word = int.from_bytes(Clcw(0, 0, **{flag: True}).pack(), "big")
    assert word == (COP1_BITS | 1 << (31 - bit))


@given(clcws)
def test_round_trip(clcw):
    raw = clcw.pack()
    assert len(raw) == 4 and is_clcw(raw)
    assert Clcw.unpack(raw) == clcw


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (bytes([0x81, 0, 0, 0]), "control_word_type"),
        (bytes([0x21, 0, 0, 0]), "version"),
        (bytes([0x41, 0, 0, 0]), "version"),
        (bytes([0x00, 0, 0, 0]), "cop_in_effect"),  # no COP
        (bytes([0x02, 0, 0, 0]), "cop_in_effect"),
        (bytes([0x03, 0, 0, 0]), "cop_in_effect"),
        (bytes([0x01, 0x01, 0, 0]), "spare"),  # bit 15
        (bytes([0x01, 0x02, 0, 0]), "spare"),  # bit 14
        (bytes([0x01, 0, 0x01, 0]), "spare"),  # bit 23
        (bytes([0x01, 0, 0]), "length"),
        (b"", "length"),
        (bytes([0x01, 0, 0, 0, 0]), "length"),
    ],
)
def test_malformed_clcws_are_refused_with_the_field(raw, field):
    with pytest.raises(DecodeError) as err:
        Clcw.unpack(raw)
    assert err.value.layer == "clcw" and err.value.field == field
    assert err.value.rule


def test_short_clcw_is_a_truncation():
    with pytest.raises(TruncatedError):
        Clcw.unpack(b"\x01\x00")


def test_other_cop_accepted_only_when_not_expecting_cop1():
    raw = bytes([0x02, 0x04, 0x00, 0x05])  # COP in effect 10, VC 1, N(R) 5
    got = Clcw.unpack(raw, cop1=False)
    assert (got.cop_in_effect, got.vcid, got.report_value) == (2, 1, 5)
    assert got.pack() == raw


def test_is_clcw_reads_only_the_type_bit_and_length():
    assert is_clcw(bytes(4)) and not is_clcw(b"\x80\x00\x00\x00") and not is_clcw(b"\x00")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vcid", 64),
        ("vcid", -1),
        ("report_value", 256),
        ("report_value", -1),
        ("farm_b_counter", 4),
        ("farm_b_counter", -1),
        ("status", 8),
        ("status", -1),
        ("lockout", 2),
        *((flag, -1) for flag in ("lockout", "wait", "retransmit", "no_rf_available")),
        ("no_bit_lock", -1),
    ],
)
def test_out_of_range_fields_cannot_be_encoded(field, value):
    kwargs = {"vcid": 0, "report_value": 0, field: value}
    with pytest.raises(EncodeError, match=field):
        Clcw(**kwargs)


# -- control commands ---------------------------------------------------------------------


def test_control_commands_encode_as_the_standard_says():
    assert Unlock().pack() == b"\x00"
    assert SetVr(0xC8).pack() == b"\x82\x00\xc8"
    assert unpack_control_command(b"\x00") == Unlock()
    assert unpack_control_command(b"\x82\x00\x07") == SetVr(7)


@given(st.integers(0, 255))
def test_set_vr_round_trip(vr):
    assert unpack_control_command(SetVr(vr).pack()) == SetVr(vr)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "control_command"),
        (b"\x01", "control_command"),
        (b"\xff\x00\x00", "control_command"),
        (b"\x81\x00\x05", "control_command"),
        (b"\x00\x00", "length"),  # Unlock with a trailing octet
        (b"\x82\x00", "length"),
        (b"\x82", "length"),
        (b"\x82\x00\x05\x00", "length"),
        (b"\x82\x01\x05", "control_command"),
    ],
)
def test_malformed_control_commands_are_refused(raw, field):
    with pytest.raises(DecodeError) as err:
        unpack_control_command(raw)
    assert err.value.layer == "cop1" and err.value.field == field


def test_set_vr_value_is_checked():
    with pytest.raises(EncodeError):
        SetVr(256)


def test_sequence_distance_wraps_at_256():
    assert seq_distance(3, 250) == 9 and seq_distance(250, 3) == 247 and seq_distance(7, 7) == 0


def test_cop_in_effect_is_two_bits_and_never_negative():
    assert Clcw(1, 0, cop_in_effect=0).cop_in_effect == 0
    assert Clcw(1, 0, cop_in_effect=3).cop_in_effect == 3
    for bad in (-1, 4):
        with pytest.raises(EncodeError, match="cop_in_effect"):
            Clcw(1, 0, cop_in_effect=bad)
