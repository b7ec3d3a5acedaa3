import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.coding.randomizer import (
    PERIOD,
    lfsr_sequence,
    tc_derandomize,
    tc_randomize,
    tc_sequence,
    tm_derandomize,
    tm_randomize,
    tm_sequence,
)


def test_known_answer_sequences(kat):
    assert tm_sequence(10).hex() == kat["tm_randomizer"]["sequence_start"]
    assert tc_sequence(10).hex() == kat["tc_randomizer"]["sequence_start"]


@pytest.mark.parametrize("sequence", [tm_sequence, tc_sequence])
def test_period_is_255_octets_and_not_shorter(sequence):
    # 131.0-B-4 §10 and 231.0-B-4 §6: the sequence repeats after 255 bits, so
    # after 255 octets (255 is odd): the standard's figure, not the module's constant
    assert PERIOD == 255
    seq = sequence(3 * 255 + 17)
    assert seq[255:510] == seq[:255] == seq[510:765]
    # the bit sequence has period 255 exactly (a maximal-length LFSR)
    bits = np.unpackbits(np.frombuffer(seq, dtype=np.uint8))
    for p in (1, 3, 5, 15, 17, 51, 85):  # the proper divisors of 255
        assert not np.array_equal(bits[p : p + 255], bits[:255])


def test_sequence_of_any_length():
    assert tm_sequence(0) == b""
    long = tm_sequence(50_000)  # beyond the precomputed octets
    assert len(long) == 50_000
    assert long[40_000 : 40_000 + PERIOD] == tm_sequence()[40_000 % PERIOD :] + tm_sequence(
        40_000 % PERIOD
    )


def test_a_long_sequence_costs_memory_in_proportion_to_its_length():
    """The periods are repeated as many times as the length needs, and no more."""
    tracemalloc.start()
    try:
        tm_sequence(20_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * 20_000


def test_lfsr_sequence_is_balanced():
    # a maximal-length sequence has 128 ones and 127 zeros per period
    bits = np.unpackbits(np.frombuffer(lfsr_sequence((0, 3, 5, 7), PERIOD), dtype=np.uint8))
    assert bits[:255].sum() == 128


@pytest.mark.parametrize("n", [0, 1, 7, 255, 511, 512, 1115, 2048, 12_000])
def test_randomize_is_xor_with_the_sequence(n):
    data = bytes(range(256)) * (n // 256 + 1)
    data = data[:n]
    expected = bytes(a ^ b for a, b in zip(data, tm_sequence(n), strict=True))
    assert tm_randomize(data) == expected
    assert tm_randomize(bytearray(data)) == expected
    assert tm_randomize(memoryview(data)) == expected
    assert tc_randomize(bytes(n)) == tc_sequence(n)


@given(st.binary(max_size=3000))
def test_randomizers_are_their_own_inverse(data):
    assert tm_derandomize(tm_randomize(data)) == data
    assert tc_derandomize(tc_randomize(data)) == data
    if len(data) > 8:
        assert tm_randomize(data) != tc_randomize(data)
