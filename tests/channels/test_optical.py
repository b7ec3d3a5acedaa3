"""Laser links: PAT, line of sight, reach, pointing-jitter outages, clouds."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from channels.constants import SPEED_OF_LIGHT_M_S
from channels.optical import (
    OPTICAL_GROUND_10G,
    OPTICAL_ISL_1G,
    OPTICAL_ISL_10G,
    OPTICAL_ISL_100G,
    OpticalGroundLink,
    OpticalStatus,
    OpticalTerminal,
)
from linkstack.errors import ConfigError

Z999 = 3.2905  # two-sided 99.9 % normal quantile


def wilson(successes: int, n: int, z: float = Z999) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_presets():
    assert OPTICAL_ISL_100G.rate_bps == 100e9
    assert OPTICAL_ISL_10G.rate_bps == 10e9
    assert OPTICAL_ISL_1G.rate_bps == 1e9
    assert OPTICAL_ISL_100G.pat_s >= 10.0  # tens of seconds
    assert OPTICAL_ISL_100G.ber == 1e-12


def test_no_data_before_pat_then_delivered():
    term = OpticalTerminal(pat_s=30.0, jitter_outage_prob=0.0)
    rng = random.Random(1)
    assert term.status(0.0, 1_000e3, True, rng) is OpticalStatus.ACQUIRING
    assert term.status(29.9, 1_000e3, True, rng) is OpticalStatus.ACQUIRING
    assert term.status(30.0, 1_000e3, True, rng) is OpticalStatus.DELIVERED
    assert term.status(30.0, 1_000e3, True, rng).delivered


def test_line_of_sight_and_reach():
    term = OpticalTerminal(max_range_m=5_000e3, jitter_outage_prob=0.0)
    rng = random.Random(1)
    assert term.status(100.0, 1_000e3, False, rng) is OpticalStatus.NO_LOS
    assert term.status(100.0, 5_000e3, True, rng) is OpticalStatus.DELIVERED
    assert term.status(100.0, 5_001e3, True, rng) is OpticalStatus.OUT_OF_RANGE
    assert term.status(100.0, math.nan, True, rng) is OpticalStatus.OUT_OF_RANGE


def test_a_link_that_is_down_draws_no_random_numbers():
    rng = random.Random(5)
    before = rng.getstate()
    OPTICAL_ISL_100G.status(100.0, 1_000e3, False, rng)
    OPTICAL_ISL_100G.status(1.0, 1_000e3, True, rng)
    assert rng.getstate() == before


@pytest.mark.parametrize("prob", [0.3, 0.01])
def test_pointing_jitter_loses_units_at_the_configured_rate(prob):
    term = OpticalTerminal(pat_s=0.0, jitter_outage_prob=prob)
    rng = random.Random(11)
    n = 200_000
    lost = sum(
        term.status(1.0, 1_000e3, True, rng) is OpticalStatus.POINTING_JITTER for _ in range(n)
    )
    lo, hi = wilson(lost, n)
    assert lo <= prob <= hi


def test_jitter_is_reproducible_and_takes_numpy_generators():
    term = OpticalTerminal(pat_s=0.0, jitter_outage_prob=0.2)
    r1, r2 = random.Random(3), random.Random(3)
    seq1 = [term.status(1.0, 1e6, True, r1) for _ in range(500)]
    seq2 = [term.status(1.0, 1e6, True, r2) for _ in range(500)]
    assert seq1 == seq2
    g = np.random.default_rng(4)
    assert {term.status(1.0, 1e6, True, g) for _ in range(200)} == {
        OpticalStatus.DELIVERED,
        OpticalStatus.POINTING_JITTER,
    }


def test_unit_gives_ber_and_delay():
    state = OPTICAL_ISL_100G.unit(100.0, 3_000e3, True, random.Random(1))
    assert state.ber == 1e-12
    assert state.delay_s == pytest.approx(3_000e3 / SPEED_OF_LIGHT_M_S)
    assert OPTICAL_ISL_100G.unit(1.0, 3_000e3, True, random.Random(1)).status == "acquiring"


# ------------------------------------------------------------------- ground link


def test_clouds_block_whole_passes_reproducibly_in_any_order():
    link = OpticalGroundLink(cloud_block_prob=0.5, seed=42)
    forward = [link.clouds_block(i) for i in range(300)]
    backward = [link.clouds_block(i) for i in reversed(range(300))][::-1]
    again = [OpticalGroundLink(cloud_block_prob=0.5, seed=42).clouds_block(i) for i in range(300)]
    other = [OpticalGroundLink(cloud_block_prob=0.5, seed=43).clouds_block(i) for i in range(300)]
    assert forward == backward == again
    assert forward != other


def test_cloud_block_probability():
    link = OpticalGroundLink(cloud_block_prob=0.3, seed=7)
    n = 20_000
    blocked = sum(link.clouds_block(i) for i in range(n))
    lo, hi = wilson(blocked, n)
    assert lo <= 0.3 <= hi
    assert not any(OpticalGroundLink(cloud_block_prob=0.0).clouds_block(i) for i in range(100))
    assert all(OpticalGroundLink(cloud_block_prob=1.0).clouds_block(i) for i in range(100))


def test_ground_link_status():
    link = OpticalGroundLink(
        terminal=OpticalTerminal(pat_s=10.0, jitter_outage_prob=0.0),
        min_elevation_deg=20.0,
        cloud_block_prob=0.5,
        seed=1,
    )
    clear = next(i for i in range(100) if not link.clouds_block(i))
    cloudy = next(i for i in range(100) if link.clouds_block(i))
    rng = random.Random(0)
    assert link.status(60.0, 1_000e3, 10.0, clear, rng) is OpticalStatus.LOW_ELEVATION
    assert link.status(60.0, 1_000e3, 40.0, cloudy, rng) is OpticalStatus.CLOUDS
    assert link.status(5.0, 1_000e3, 40.0, clear, rng) is OpticalStatus.ACQUIRING
    assert link.status(60.0, 1_000e3, 40.0, clear, rng) is OpticalStatus.DELIVERED
    state = link.unit(60.0, 1_000e3, 40.0, clear, rng)
    assert state.delivered
    assert state.ber == link.terminal.ber
    assert OPTICAL_GROUND_10G.terminal.rate_bps == 10e9


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: OpticalTerminal(rate_bps=0.0), "rate_bps"),
        (lambda: OpticalTerminal(pat_s=-1.0), "pat_s"),
        (lambda: OpticalTerminal(max_range_m=-1.0), "max_range_m"),
        (lambda: OpticalTerminal(jitter_outage_prob=1.5), "jitter_outage_prob"),
        (lambda: OpticalTerminal(ber=0.6), "ber"),
        (lambda: OpticalTerminal(ber=math.nan), "ber"),
        (lambda: OpticalGroundLink(cloud_block_prob=-0.1), "cloud_block_prob"),
        (lambda: OpticalGroundLink(min_elevation_deg=91.0), "min_elevation_deg"),
        (lambda: OpticalGroundLink(seed=1.5), "seed"),
        (lambda: OpticalGroundLink(terminal=None), "terminal"),
        (lambda: OPTICAL_ISL_100G.status(-1.0, 1e6, True, random.Random()), "t_since_view_s"),
    ],
)
def test_bad_parameters_raise_config_error_naming_the_field(make, field):
    with pytest.raises(ConfigError) as excinfo:
        make()
    assert excinfo.value.field == field
