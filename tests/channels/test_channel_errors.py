"""Bit error injection: wire bit order, statistics, bursts, reproducibility.

The statistical checks are seeded, so they are deterministic; each asserts that the
configured value lies in a 99.9 % confidence interval of the measurement.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from channels.errors import (
    GilbertElliott,
    GilbertElliottErrors,
    IndependentErrors,
    Injected,
    flip_bits,
)
from linkstack.errors import ConfigError

Z999 = 3.2905  # two-sided 99.9 % normal quantile
T999_39 = 3.558  # two-sided 99.9 % Student t quantile, 39 degrees of freedom
UNIT = bytes(range(256)) * 4 + bytes(91)  # 1115 octets, a TM frame


def wilson(successes: int, n: int, z: float = Z999) -> tuple[float, float]:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def diff_positions(a: bytes, b: bytes) -> np.ndarray:
    """Bit positions where a and b differ, bit 0 = MSB of octet 0."""
    x = np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)
    return np.flatnonzero(np.unpackbits(x))


# ---------------------------------------------------------------------- bit order


def test_bit_zero_is_the_msb_of_octet_zero():
    data = bytes(4)
    assert flip_bits(data, np.array([0])) == b"\x80\x00\x00\x00"
    assert flip_bits(data, np.array([7])) == b"\x01\x00\x00\x00"
    assert flip_bits(data, np.array([8, 31])) == b"\x00\x80\x00\x01"
    assert flip_bits(b"\xff", np.array([1])) == b"\xbf"


def test_both_flip_paths_agree():
    rng = np.random.default_rng(0)
    data = rng.bytes(1115)
    for count in (1, 5, 24, 25, 200, 4000):
        pos = np.sort(rng.choice(len(data) * 8, size=count, replace=False))
        out = flip_bits(data, pos)
        assert np.array_equal(diff_positions(data, out), pos)


def test_flip_bits_refuses_positions_outside_the_unit():
    with pytest.raises(ConfigError) as excinfo:
        flip_bits(bytes(2), np.array([16]))
    assert excinfo.value.field == "positions"


@pytest.mark.parametrize("ber", [1e-5, 1e-3, 1e-2, 0.2, 0.5])
def test_positions_are_the_bits_that_changed(ber):
    inj = IndependentErrors(ber, seed=3)
    for _ in range(50):
        res = inj.inject(UNIT)
        assert isinstance(res, Injected)
        data, flipped = res  # the (bytes, count) pair channels.link expects
        assert flipped == res.flipped == len(res.positions)
        assert np.array_equal(diff_positions(UNIT, data), res.positions)


def test_input_is_not_modified_and_any_buffer_is_accepted():
    buf = bytearray(UNIT)
    inj = IndependentErrors(0.1, seed=1)
    out = inj.inject(buf)
    assert buf == UNIT
    assert isinstance(out.data, bytes)
    assert len(inj.inject(memoryview(UNIT)).data) == len(UNIT)


# ------------------------------------------------------------- independent errors


def test_ber_zero_flips_nothing():
    inj = IndependentErrors(0.0, seed=1)
    for _ in range(100):
        res = inj.inject(UNIT)
        assert res.flipped == 0
        assert res.data == UNIT


def test_ber_half_flips_about_half():
    inj = IndependentErrors(0.5, seed=2)
    n = 200
    flipped = sum(inj.inject(UNIT).flipped for _ in range(n))
    lo, hi = wilson(flipped, n * len(UNIT) * 8)
    assert lo <= 0.5 <= hi


@pytest.mark.parametrize(
    ("ber", "units"), [(1e-2, 150), (1e-3, 1_500), (1e-4, 15_000), (1e-5, 120_000)]
)
def test_measured_ber_matches_the_configured_ber(ber, units):
    # About 10,000 errors each: the 99.9 % interval is about +-3.3 %.
    inj = IndependentErrors(ber, seed=int(-math.log10(ber)))
    flipped = sum(inj.inject(UNIT).flipped for _ in range(units))
    lo, hi = wilson(flipped, units * len(UNIT) * 8)
    assert lo <= ber <= hi
    assert hi / lo < 1.08


def test_errors_are_independent_across_units_and_octet_positions():
    ber, units, n_bits = 1e-3, 3_000, len(UNIT) * 8
    inj = IndependentErrors(ber, seed=9)
    counts, stream = [], []
    for u in range(units):
        res = inj.inject(UNIT)
        counts.append(res.flipped)
        stream.append(res.positions + u * n_bits)
    counts = np.array(counts)
    # Counts per unit are binomial: the variance is n p (1 - p) (dispersion ~ 1).
    dispersion = counts.var(ddof=1) / (n_bits * ber * (1 - ber))
    assert abs(dispersion - 1) < Z999 * math.sqrt(2 / (units - 1))
    # The gaps across the whole stream are geometric: P(gap <= m) = 1 - (1 - p)^m.
    gaps = np.diff(np.concatenate(stream))
    for m in (100, 693, 2_000):
        below = int((gaps <= m).sum())
        lo, hi = wilson(below, len(gaps))
        assert lo <= 1 - (1 - ber) ** m <= hi
    # Every bit of an octet is equally likely (no MSB/LSB bias): chi-square, 7 dof.
    by_bit = np.bincount(np.concatenate(stream) % 8, minlength=8)
    expected = by_bit.sum() / 8
    chi2 = float(((by_bit - expected) ** 2 / expected).sum())
    assert chi2 < 24.32  # 99.9 % point of chi-square with 7 dof


def test_ber_given_per_unit():
    inj = IndependentErrors(seed=4)
    hits = {1e-2: 0, 1e-4: 0}
    units = 6_000
    for i in range(units):
        ber = 1e-2 if i % 2 else 1e-4
        hits[ber] += inj.inject(UNIT, ber).flipped
    for ber, flipped in hits.items():
        lo, hi = wilson(flipped, units // 2 * len(UNIT) * 8)
        assert lo <= ber <= hi


def test_tiny_ber_is_cheap_and_safe():
    inj = IndependentErrors(1e-12, seed=5)
    assert sum(inj.inject(UNIT).flipped for _ in range(10_000)) == 0
    inj = IndependentErrors(seed=5)
    assert inj.inject(UNIT, 7e-42).flipped == 0  # geometric saturates; no overflow
    assert inj.inject(UNIT, 5e-324).flipped == 0


def test_same_seed_same_positions_other_seed_other_positions():
    def run(seed):
        inj = IndependentErrors(1e-3, seed=seed)
        return [inj.inject(UNIT, 1e-3 if i % 3 else 2e-3).positions.tolist() for i in range(300)]

    assert run(17) == run(17)
    assert run(17) != run(18)


@pytest.mark.parametrize("ber", [-0.1, 0.51, 1.0, math.nan, "1e-3", True])
def test_ber_outside_0_to_half_is_refused(ber):
    with pytest.raises(ConfigError) as excinfo:
        IndependentErrors(ber)
    assert excinfo.value.field == "ber"
    with pytest.raises(ConfigError):
        IndependentErrors().inject(UNIT, ber)


# --------------------------------------------------------------- Gilbert-Elliott


def test_gilbert_elliott_parameters():
    ge = GilbertElliott(mean_burst_bits=50, mean_gap_bits=4_950, ber_bad=0.5, ber_good=1e-6)
    assert ge.p_bg == pytest.approx(0.02)
    assert ge.p_gb == pytest.approx(1 / 4_950)
    assert ge.bad_fraction == pytest.approx(0.01)
    assert ge.mean_ber == pytest.approx(0.01 * 0.5 + 0.99 * 1e-6)
    assert GilbertElliott.from_transitions(p_gb=1 / 4_950, p_bg=0.02, ber_good=1e-6) == ge


def _run_ge(model, seed, units, record=False):
    inj = GilbertElliottErrors(model, seed=seed, record_bursts=record)
    results = [inj.inject(UNIT) for _ in range(units)]
    return inj, results


def test_gilbert_elliott_sojourns_and_long_run_ber_as_configured():
    model = GilbertElliott(mean_burst_bits=64, mean_gap_bits=6_000, ber_bad=0.5, ber_good=0.0)
    units = 3_000  # 26.8 Mbit, about 4,400 bursts
    inj, results = _run_ge(model, 21, units)
    s = inj.stats
    # Sojourns are geometric with mean L and standard deviation sqrt(L (L - 1)).
    for state, mean in (("bad", model.mean_burst_bits), ("good", model.mean_gap_bits)):
        runs = s[f"{state}_runs"]
        measured = s[f"{state}_run_bits"] / runs
        assert abs(measured - mean) <= Z999 * math.sqrt(mean * (mean - 1) / runs)
    # Long-run BER: errors are clustered, so use batch means over 40 batches.
    flips = np.array([r.flipped for r in results]).reshape(40, -1).sum(axis=1)
    batch_ber = flips / (units // 40 * len(UNIT) * 8)
    half = T999_39 * batch_ber.std(ddof=1) / math.sqrt(40)
    assert abs(batch_ber.mean() - model.mean_ber) <= half
    assert s["bits"] == s["bad_bits"] + s["good_bits"] == units * len(UNIT) * 8


def test_gilbert_elliott_errors_fall_in_bursts_at_the_bad_ber():
    model = GilbertElliott(mean_burst_bits=200, mean_gap_bits=20_000, ber_bad=0.3, ber_good=0.0)
    units = 400
    inj, results = _run_ge(model, 5, units, record=True)
    n_bits = len(UNIT) * 8
    errors = np.concatenate([r.positions + u * n_bits for u, r in enumerate(results)])
    starts = np.array([b[0] for b in inj.bursts])
    ends = np.array([b[0] + b[1] for b in inj.bursts])
    idx = np.searchsorted(starts, errors, side="right") - 1
    assert (idx >= 0).all()
    assert (errors < ends[idx]).all()  # every error inside a Bad sojourn
    bad_bits = inj.stats["bad_bits"]
    lo, hi = wilson(len(errors), bad_bits)
    assert lo <= model.ber_bad <= hi
    crossing = [(a, n) for a, n in inj.bursts if a // n_bits != (a + n - 1) // n_bits]
    assert crossing  # bursts run across unit boundaries: the state carries over


def test_gilbert_elliott_ber_argument_replaces_the_good_state_ber():
    model = GilbertElliott(mean_burst_bits=10, mean_gap_bits=1e12, ber_bad=0.5)
    inj = GilbertElliottErrors(model, seed=8)
    units = 1_500
    flipped = sum(inj.inject(UNIT, 1e-3).flipped for _ in range(units))
    lo, hi = wilson(flipped, units * len(UNIT) * 8)
    assert lo <= 1e-3 <= hi


def test_gilbert_elliott_is_reproducible():
    model = GilbertElliott(mean_burst_bits=30, mean_gap_bits=3_000)

    def run(seed):
        _, results = _run_ge(model, seed, 100)
        return [r.positions.tolist() for r in results]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_gilbert_elliott_positions_are_the_bits_that_changed():
    inj = GilbertElliottErrors(GilbertElliott(100, 1_000, 0.5, 1e-4), seed=3)
    for _ in range(100):
        res = inj.inject(UNIT)
        assert np.array_equal(diff_positions(UNIT, res.data), res.positions)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: GilbertElliott(0.5, 100), "mean_burst_bits"),
        (lambda: GilbertElliott(10, math.inf), "mean_gap_bits"),
        (lambda: GilbertElliott(10, 100, ber_bad=0.7), "ber_bad"),
        (lambda: GilbertElliott(10, 100, ber_good=-1e-9), "ber_good"),
        (lambda: GilbertElliott.from_transitions(0.0, 0.5), "p_gb"),
        (lambda: GilbertElliott.from_transitions(0.1, 1.5), "p_bg"),
        (lambda: GilbertElliottErrors(None), "model"),
        (lambda: GilbertElliottErrors(GilbertElliott(10, 100)).inject(UNIT, 0.9), "ber"),
    ],
)
def test_bad_burst_parameters_raise_config_error_naming_the_field(make, field):
    with pytest.raises(ConfigError) as excinfo:
        make()
    assert excinfo.value.field == field
