"""Reed-Solomon: known answers, and bit-for-bit agreement with reedsolo."""

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.coding import rs as rsmod
from linkstack.ccsds.coding.rs import (
    GF_EXP,
    TO_CONV,
    TO_DUAL,
    UNCORRECTABLE,
    ReedSolomon,
    gf_mul,
    gf_mul_arrays,
)
from linkstack.errors import EncodeError, TruncatedError

try:  # reedsolo's compiled backend when the wheel has it; the pure one otherwise
    import creedsolo as reference
except ImportError:  # pragma: no cover
    import reedsolo as reference


def reference_codec(e: int):
    return reference.RSCodec(2 * e, nsize=255, fcr=128 - e, prim=0x187, generator=0xAD, c_exp=8)


def conv(a) -> bytes:
    return bytes(TO_CONV[np.frombuffer(bytes(a), np.uint8)])


def dual(a) -> bytes:
    return bytes(TO_DUAL[np.frombuffer(bytes(a), np.uint8)])


def codewords(codec: ReedSolomon, block: bytes) -> list[bytes]:
    """De-interleave a codeblock into its I codewords (data symbols, then check symbols)."""
    i, L = codec.depth, codec.frame_length
    return [block[j:L:i] + block[L + j :: i] for j in range(i)]


# -- known answers and the code's definition ------------------------------------------------


def test_known_answer_dual_basis(kat):
    """The standard's codeblock is what we encode, and what we decode as error-free;
    a symbol spoiled in the data and one in the check symbols are both found."""
    vec = kat["rs_255_223_dual_basis"]
    data = bytes.fromhex(vec["data"])
    codec = ReedSolomon(16, 1)
    block = codec.encode(data)
    assert block[:223] == data and block[223:].hex() == vec["parity"]
    assert codec.decode(block) == rsmod.RsDecodeResult(data, (0,))
    bad = bytearray(block)
    bad[0] ^= 0x01  # degree 254: the first data symbol
    bad[254] ^= 0xA5  # degree 0: the last check symbol
    assert codec.decode(bytes(bad)) == rsmod.RsDecodeResult(data, (2,))


def test_field_multiplication_known_answers_and_the_vectorised_product():
    """x * x^7 = x^8 reduces by the field polynomial; 0 absorbs and 1 is neutral; the
    vectorised product the tables are built with agrees with gf_mul on every pair."""
    assert gf_mul(0x02, 0x80) == 0x87  # x^8 = x^7 + x^2 + x + 1 (mod 0x187)
    assert gf_mul(0xAD, 0) == gf_mul(0, 0xAD) == 0
    assert gf_mul(0xAD, 1) == gf_mul(1, 0xAD) == 0xAD
    every = np.arange(256, dtype=np.uint8)
    table = gf_mul_arrays(every[:, None], every[None, :])
    assert table.tolist() == [[gf_mul(a, b) for b in range(256)] for a in range(256)]


def _evaluate(poly: list[int], x: int) -> int:
    """The polynomial (coefficients highest degree first) at ``x``."""
    value = 0
    for c in poly:  # Horner, highest degree first
        value = gf_mul(value, x) ^ c
    return value


def test_generator_polynomial_has_the_ccsds_roots():
    for e in (16, 8):
        g = [int(c) for c in rsmod._generator(e)]
        assert len(g) == 2 * e + 1 and g[0] == 1
        beta = int(GF_EXP[11])
        assert beta == 0xAD  # alpha^11 as a field element
        for j in range(2 * e):
            root = int(GF_EXP[(11 * (128 - e + j)) % 255])
            assert _evaluate(g, root) == 0


def test_generator_is_symmetric_as_ccsds_chose_it():
    # the roots are symmetric around beta^127.5, so g(x) is palindromic
    for e in (16, 8):
        g = list(rsmod._generator(e))
        assert g == g[::-1]


def test_basis_conversion_is_a_bijection_and_linear():
    assert sorted(TO_DUAL.tolist()) == list(range(256))
    assert sorted(TO_CONV.tolist()) == list(range(256))
    assert all(TO_CONV[TO_DUAL[v]] == v for v in range(256))
    rng = random.Random(0)
    for _ in range(200):
        a, b = rng.randrange(256), rng.randrange(256)
        assert TO_DUAL[a ^ b] == TO_DUAL[a] ^ TO_DUAL[b]
    assert TO_DUAL[0x80] == 0x8D  # the first row of T-alpha


# -- agreement with reedsolo ----------------------------------------------------------------------


@pytest.mark.parametrize("e", [16, 8])
@pytest.mark.parametrize("dual_basis", [True, False])
def test_encoding_agrees_with_reedsolo_on_random_codewords(e, dual_basis):
    rng = np.random.default_rng(e + dual_basis)
    ref = reference_codec(e)
    for depth in (1, 2, 3, 4, 5, 8):
        k = int(rng.integers(1, 256 - 2 * e))
        codec = ReedSolomon(e, depth, k * depth, dual_basis)
        frames = rng.integers(0, 256, (60, codec.frame_length), dtype=np.uint8)
        blocks = codec.encode_batch(frames)
        for frame, block in zip(frames, blocks, strict=True):
            assert block[: codec.frame_length].tobytes() == frame.tobytes()
            for cw in codewords(codec, block.tobytes()):
                data, check = cw[:k], cw[k:]
                if dual_basis:
                    assert dual(ref.encode(bytearray(conv(data)))[k:]) == check
                else:
                    assert bytes(ref.encode(bytearray(data))[k:]) == check


@pytest.mark.parametrize("e", [16, 8])
@pytest.mark.parametrize("dual_basis", [True, False])
def test_decoding_agrees_with_reedsolo_up_to_and_beyond_e_errors(e, dual_basis):
    rng = random.Random(100 + e + dual_basis)
    ref = reference_codec(e)
    codec = ReedSolomon(e, 1, dual_basis=dual_basis)
    k = codec.k
    stats = {"corrected": 0, "refused": 0, "miscorrected": 0}
    for _ in range(1500):
        data = rng.randbytes(k)
        block = codec.encode(data)
        n_err = rng.choice([0, rng.randrange(1, e + 1), e, e + 1, rng.randrange(e + 1, 3 * e)])
        bad = bytearray(block)
        for pos in rng.sample(range(255), n_err):
            bad[pos] ^= rng.randrange(1, 256)
        got = codec.decode(bytes(bad))
        received = conv(bad) if dual_basis else bytes(bad)
        try:
            ref_data = bytes(ref.decode(bytearray(received))[0])
        except reference.ReedSolomonError:
            ref_data = None
        if n_err <= e:
            assert got.frame == data and got.corrected == (n_err,)
            stats["corrected"] += 1
        elif got.frame is None:
            assert got.corrected == (UNCORRECTABLE,)
            stats["refused"] += 1
        else:  # a decoding to another codeword: rare, and reedsolo must agree with it
            mine = conv(got.frame) if dual_basis else got.frame
            assert ref_data == mine
            stats["miscorrected"] += 1
    assert stats["corrected"] > 400 and stats["refused"] > 400


def test_corrections_are_always_to_a_codeword_within_e_symbols():
    """Whatever the decoder returns as corrected is the nearest codeword: at most
    E symbols from what was received, and it re-encodes to itself."""
    rng = random.Random(7)
    codec = ReedSolomon(8, 1)
    for _ in range(3000):
        block = bytearray(codec.encode(rng.randbytes(codec.k)))
        for pos in rng.sample(range(255), rng.randrange(9, 40)):
            block[pos] ^= rng.randrange(1, 256)
        got = codec.decode(bytes(block))
        if got.frame is not None:
            fixed = codec.encode(got.frame)
            distance = sum(a != b for a, b in zip(fixed, block, strict=True))
            assert distance == got.corrected[0] <= 8


def _poly_with_roots(exponents: list[int]) -> list[int]:
    """prod (x + beta^i) over ``exponents``, coefficients highest degree first."""
    poly = [1]
    for i in exponents:
        root = int(GF_EXP[(11 * i) % 255])
        poly = [a ^ gf_mul(b, root) for a, b in zip([*poly, 0], [0, *poly], strict=True)]
    return poly


@pytest.mark.parametrize("e", [16, 8])
def test_a_codeword_with_nonzero_syndromes_is_never_reported_clean(e):
    """Error patterns chosen so that most syndromes are zero: only S_0..S_7 (the
    first word the decoder packs them in) left, or only S_0 = 1. Not all are zero,
    so the decoder must correct or refuse, never call the codeword error-free."""
    b = 128 - e
    codec = ReedSolomon(e, 1, dual_basis=False)  # syndromes of the octets as they are
    only_first_word = _poly_with_roots([b + j for j in range(8, 2 * e)])
    only_s0 = _poly_with_roots([b + j for j in range(1, 2 * e)])
    s0 = _evaluate(only_s0, int(GF_EXP[(11 * b) % 255]))
    scale = int(GF_EXP[(255 - rsmod.GF_LOG[s0]) % 255])  # so that S_0 = 1
    only_s0 = [gf_mul(c, scale) for c in only_s0]
    for error in (only_first_word, only_s0):
        received = bytes(255 - len(error)) + bytes(error)  # the zero codeword + error
        assert codec.encode(received[: codec.k]) == bytes(255)
        assert codec.decode(received).corrected[0] != 0


@pytest.mark.parametrize("e", [16, 8])
def test_three_errors_whose_locators_multiply_to_one_are_corrected_at_every_degree(e):
    """Degrees m, m+85, -2m-85 (mod 255): the locator's x^3 coefficient is then 1 (log
    0), and Forney's derivative adds it at log (t-1)(-11m), which takes every value
    0..254 as m does: the edges of the kernel's wrapped log arithmetic."""
    rng = random.Random(e)
    codec = ReedSolomon(e, 1)
    for m in range(255):
        degrees = {m, (m + 85) % 255, (-2 * m - 85) % 255}
        assert len(degrees) == 3
        data = rng.randbytes(codec.k)
        bad = bytearray(codec.encode(data))
        for degree in degrees:
            bad[254 - degree] ^= rng.randrange(1, 256)
        assert codec.decode(bytes(bad)) == rsmod.RsDecodeResult(data, (3,))


# -- interleaving, shortening, the batch API -----------------------------------------------------


@given(
    st.sampled_from([16, 8]),
    st.sampled_from([1, 2, 3, 4, 5, 8]),
    st.integers(1, 239),
    st.integers(0, 2**32),
)
def test_round_trip_with_errors_below_the_limit_for_any_shortening(e, depth, k, seed):
    k = min(k, 255 - 2 * e)
    codec = ReedSolomon(e, depth, k * depth)
    rng = random.Random(seed)
    frame = rng.randbytes(codec.frame_length)
    block = bytearray(codec.encode(frame))
    n_cw = k + 2 * e
    want = []
    for j in range(depth):  # up to E errors in each codeword, data or check symbols
        n_err = rng.randrange(e + 1)
        want.append(n_err)
        for p in rng.sample(range(n_cw), n_err):
            idx = p * depth + j if p < k else codec.frame_length + (p - k) * depth + j
            block[idx] ^= rng.randrange(1, 256)
    got = codec.decode(bytes(block))
    assert got.ok and got.frame == frame and list(got.corrected) == want
    assert got.symbols_corrected == sum(want)


def test_one_uncorrectable_codeword_loses_the_whole_frame():
    codec = ReedSolomon(16, 5)
    rng = random.Random(3)
    block = bytearray(codec.encode(rng.randbytes(codec.frame_length)))
    for p in rng.sample(range(223), 40):  # all in codeword 2
        block[p * 5 + 2] ^= 0x5A
    got = codec.decode(bytes(block))
    assert not got.ok and got.frame is None
    assert got.corrected[2] == UNCORRECTABLE and got.corrected[0] == 0


def test_batch_decoding_reports_per_codeword():
    codec = ReedSolomon(16, 2, 100)
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (3, 100), dtype=np.uint8)
    blocks = codec.encode_batch(frames)
    blocks[1, 0] ^= 1  # codeword 0 of block 1: one error
    blocks[2, 1::2][:20] ^= 0xFF  # codeword 1 of block 2: twenty errors
    out, counts = codec.decode_batch(blocks)
    assert counts.tolist() == [[0, 0], [1, 0], [0, UNCORRECTABLE]]
    assert (out[:2] == frames[:2]).all()


def test_configuration_and_size_errors():
    with pytest.raises(EncodeError, match="E = 16 or E = 8"):
        ReedSolomon(10)
    with pytest.raises(EncodeError, match="interleaving depth"):
        ReedSolomon(16, 6)
    with pytest.raises(EncodeError, match="multiple of I=5 from 5 to 1115, got 1114"):
        ReedSolomon(16, 5, 1114)
    with pytest.raises(EncodeError):
        ReedSolomon(16, 1, 224)
    codec = ReedSolomon(16, 1)
    with pytest.raises(EncodeError):
        codec.encode(bytes(10))
    with pytest.raises(EncodeError, match="frames"):
        codec.encode_batch(np.zeros(223, np.uint8))  # one frame, not a batch of them
    with pytest.raises(EncodeError, match="frames"):
        codec.encode_batch(np.zeros((2, 222), np.uint8))
    with pytest.raises(TruncatedError):
        codec.decode(bytes(254))
    with pytest.raises(TruncatedError):
        codec.decode_batch(np.zeros((2, 10), np.uint8))


def test_random_codeblocks_are_refused_not_corrected():
    codec = ReedSolomon(16, 5)
    rng = random.Random(11)
    results = [codec.decode(rng.randbytes(codec.codeblock_length)) for _ in range(300)]
    assert all(r.frame is None for r in results)  # P(random word decodable) ~ 1e-14


def test_batches_may_be_any_array_like_of_octets():
    """Nested lists (what a caller without numpy has) code as their arrays do."""
    codec = ReedSolomon(8, 2, 2 * 50)
    frames = np.random.default_rng(9).integers(0, 256, (2, 100), dtype=np.uint8)
    blocks = codec.encode_batch(frames)
    assert (codec.encode_batch(frames.tolist()) == blocks).all()
    blocks[0, 7] ^= 0x10
    out, counts = codec.decode_batch(blocks.tolist())
    assert (out == frames).all() and counts.tolist() == [[0, 1], [0, 0]]


def test_the_default_is_the_ccsds_recommended_rs_255_223_at_depth_5():
    codec = ReedSolomon()
    assert (codec.e, codec.depth, codec.frame_length) == (16, 5, 1115)
    assert codec.dual_basis and codec.codeblock_length == 1275


def test_repr_and_dimensions():
    codec = ReedSolomon(8, 4, 4 * 200)
    assert codec.codeblock_length == 800 + 64 and codec.virtual_fill == 39
    assert "RS(255,239)" in repr(codec) and "I=4" in repr(codec)
