from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.cuc import CucFormat, CucValue
from linkstack.ccsds.timescale import (
    CCSDS_EPOCH,
    tai_minus_utc_s,
    tai_seconds_since,
    tai_to_utc,
    utc_from_tai_seconds,
    utc_to_tai,
)
from linkstack.errors import DecodeError, EncodeError, TruncatedError


@st.composite
def formats(draw, max_coarse=7, max_fine=10):
    return CucFormat(
        draw(st.integers(1, max_coarse)), draw(st.integers(0, max_fine)), draw(st.booleans())
    )


def test_pfield_values_of_common_formats():
    # 0 | 001 (level 1) | coarse-1 | fine
    assert CucFormat(4, 2).pfield_bytes() == bytes([0b0_001_11_10])
    assert CucFormat(4, 3).pfield_bytes() == b"\x1f"
    agency = CucFormat(4, 3, epoch=datetime(2000, 1, 1, tzinfo=UTC))
    assert agency.pfield_bytes() == b"\x2f"  # level 2
    assert CucFormat(1, 0).pfield_bytes() == bytes([0b0_001_00_00])


def test_known_encoding():
    # 1.5 s after the epoch, 4+2 octets with P-field
    assert CucFormat(4, 2).encode(1.5).hex() == "1e" + "00000001" + "8000"
    assert CucFormat(4, 2, pfield=False).encode(0x01020304 + 0.25).hex() == "01020304" + "4000"


def test_extended_pfield_for_more_than_four_plus_three_octets():
    fmt = CucFormat(6, 5)
    p = fmt.pfield_bytes()
    assert p[0] & 0x80 and len(p) == 2
    assert (p[1] >> 5) & 3 == 2 and (p[1] >> 2) & 7 == 2
    assert fmt.length == 2 + 6 + 5


@given(formats(), st.data())
def test_ticks_round_trip_over_the_whole_range(fmt, data):
    coarse = data.draw(st.integers(0, (1 << (8 * fmt.coarse_octets)) - 1))
    fine = data.draw(st.integers(0, (1 << (8 * fmt.fine_octets)) - 1))
    raw = fmt.encode_ticks(coarse, fine)
    assert len(raw) == fmt.length
    value, n = fmt.unpack(raw + b"tail")
    assert n == fmt.length
    assert (value.coarse, value.fine) == (coarse, fine)
    assert (value.coarse_octets, value.fine_octets) == (fmt.coarse_octets, fmt.fine_octets)


@given(formats(max_coarse=4, max_fine=3), st.floats(0, 1))
def test_seconds_round_trip_within_half_a_tick(fmt, frac):
    t_s = frac * ((1 << (8 * fmt.coarse_octets)) - 1)
    decoded, _ = fmt.decode(fmt.encode(t_s))
    # half a fine tick of rounding, plus float64 error on the large counts
    assert abs(decoded - t_s) <= fmt.resolution_s / 2 + 1e-9 * max(t_s, 1)


def test_rounding_that_reaches_a_whole_second_carries():
    fmt = CucFormat(4, 1, pfield=False)
    assert fmt.encode(9.9999) == (10).to_bytes(4, "big") + b"\x00"


def test_pfield_describes_the_code_to_a_decoder_configured_otherwise():
    raw = CucFormat(2, 3).encode(300.125)
    t_s, n = CucFormat(4, 0).decode(raw)
    assert (t_s, n) == (300.125, 6)


def test_level_one_code_is_moved_to_an_agency_epoch():
    agency_epoch = datetime(2000, 1, 1, tzinfo=UTC)
    offset = (agency_epoch - CCSDS_EPOCH).total_seconds()
    raw = CucFormat(4, 2).encode(offset + 10.5)  # level 1, counted from 1958
    t_s, _ = CucFormat(4, 2, epoch=agency_epoch).decode(raw)
    assert t_s == 10.5


def test_level_two_code_without_an_agency_epoch_is_refused():
    raw = CucFormat(4, 2, epoch=datetime(2000, 1, 1, tzinfo=UTC)).encode(5)
    with pytest.raises(DecodeError, match="time_code_id"):
        CucFormat(4, 2).decode(raw)


@pytest.mark.parametrize(
    "raw, field",
    [
        (b"", "pfield"),
        (bytes([0b0_100_11_10]) + bytes(6), "pfield.time_code_id"),  # CDS id, not CUC
        (bytes([0b0_001_11_10]) + bytes(5), "t_field"),  # one octet short
        (bytes([0x9E]), "pfield"),  # extension flag, no second octet
        (bytes([0x9E, 0x80]) + bytes(10), "pfield.extension"),
    ],
)
def test_malformed_codes_are_refused_naming_the_field(raw, field):
    with pytest.raises(DecodeError) as err:
        CucFormat().unpack(raw)
    assert err.value.layer == "cuc" and err.value.field == field


def test_truncation_is_a_truncated_error():
    with pytest.raises(TruncatedError):
        CucFormat(pfield=False).unpack(b"\x00\x00")


@pytest.mark.parametrize("t_s", [-1.0, float("nan"), float("inf"), 2.0**32])
def test_times_outside_the_code_are_refused(t_s):
    with pytest.raises(EncodeError):
        CucFormat(4, 2).encode(t_s)


@pytest.mark.parametrize("coarse, fine", [(0, 0), (8, 0), (4, 11)])
def test_impossible_formats_are_refused(coarse, fine):
    with pytest.raises(EncodeError):
        CucFormat(coarse, fine)


def test_value_seconds():
    assert CucValue(10, 0x80, 4, 1, 1).t_s == 10.5


# -- TAI / UTC ----------------------------------------------------------------


def test_tai_minus_utc_table():
    assert tai_minus_utc_s(datetime(1972, 1, 1, tzinfo=UTC)) == 10
    assert tai_minus_utc_s(datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)) == 36
    assert tai_minus_utc_s(datetime(2017, 1, 1, tzinfo=UTC)) == 37
    assert tai_minus_utc_s(datetime(2026, 11, 22, tzinfo=UTC)) == 37
    with pytest.raises(EncodeError):
        tai_minus_utc_s(datetime(1971, 12, 31, tzinfo=UTC))
    with pytest.raises(EncodeError):
        tai_minus_utc_s(datetime(2020, 1, 1))  # naive: refused, not guessed


def test_gps_epoch_is_19_seconds_behind_tai():
    gps_epoch_utc = datetime(1980, 1, 6, tzinfo=UTC)
    assert utc_to_tai(gps_epoch_utc) == gps_epoch_utc + timedelta(seconds=19)
    days = (datetime(1980, 1, 6, tzinfo=UTC) - CCSDS_EPOCH).days
    assert tai_seconds_since(CCSDS_EPOCH, gps_epoch_utc) == days * 86400 + 19


@given(st.datetimes(min_value=datetime(1972, 1, 2), max_value=datetime(2100, 1, 1)))
def test_utc_tai_round_trip(naive):
    utc = naive.replace(tzinfo=UTC)
    assert tai_to_utc(utc_to_tai(utc)) == utc
    assert utc_from_tai_seconds(CCSDS_EPOCH, tai_seconds_since(CCSDS_EPOCH, utc)) == utc


def test_utc_time_codes():
    fmt = CucFormat(4, 3)
    utc = datetime(2026, 11, 22, 12, 0, 0, 500000, tzinfo=UTC)
    decoded, _ = fmt.decode_utc(fmt.encode_utc(utc))
    assert abs((decoded - utc).total_seconds()) < 1e-6
