"""RF link model: closed-form checks, the presets' budgets, Doppler, receiver lock."""

from __future__ import annotations

import math

import pytest

from channels import rf
from channels.constants import (
    BOLTZMANN_DBW_PER_K_HZ,
    EARTH_EQUATORIAL_RADIUS_M,
    EARTH_MU_M3_S2,
    SPEED_OF_LIGHT_M_S,
)
from channels.rf import (
    S_BAND_UPLINK,
    X_BAND_DOWNLINK,
    Atmosphere,
    Band,
    LockStatus,
    Modulation,
    ReceiverModel,
    ReceiverTracker,
    RfLinkConfig,
    ber_from_ebn0,
    doppler_hz,
    doppler_rate_hz_s,
    ebn0_for_ber,
    fspl_db,
    link_budget,
    pll_max_doppler_rate_hz_s,
    propagation_delay_s,
    rf_state,
    s_band_uplink,
    x_band_downlink,
)
from linkstack.errors import ConfigError

R_E = EARTH_EQUATORIAL_RADIUS_M


def slant_range_m(altitude_m: float, elevation_deg: float) -> float:
    """Range from a station on a spherical Earth to a satellite at this altitude."""
    r = R_E + altitude_m
    e = math.radians(elevation_deg)
    return math.sqrt(r * r - (R_E * math.cos(e)) ** 2) - R_E * math.sin(e)


def circular_speed_m_s(altitude_m: float) -> float:
    return math.sqrt(EARTH_MU_M3_S2 / (R_E + altitude_m))


# ------------------------------------------------------------------- closed form


def test_fspl_at_2000_km_and_2_2_ghz_is_165_3_db():
    # 20 log10(4 pi 2e6 2.2e9 / c) = 165.32 dB; tolerance 0.1 dB.
    assert fspl_db(2_000e3, 2.2e9) == pytest.approx(165.3, abs=0.1)


def test_fspl_grows_20_db_per_decade_of_range_and_of_frequency():
    assert fspl_db(10_000e3, 2e9) - fspl_db(1_000e3, 2e9) == pytest.approx(20.0, abs=1e-9)
    assert fspl_db(1_000e3, 20e9) - fspl_db(1_000e3, 2e9) == pytest.approx(20.0, abs=1e-9)


def test_propagation_delay_is_range_over_c():
    assert propagation_delay_s(SPEED_OF_LIGHT_M_S) == pytest.approx(1.0)
    assert propagation_delay_s(1_000e3) == pytest.approx(3.3356e-3, rel=1e-4)
    assert propagation_delay_s(0.0) == 0.0


def test_boltzmann_constant_in_db():
    assert pytest.approx(-228.6, abs=0.01) == BOLTZMANN_DBW_PER_K_HZ


def test_range_rate_at_the_horizon_is_v_times_re_over_r():
    # The derivation the Doppler check rests on, verified numerically: a station in the
    # orbit plane at (R_E, 0), a circular orbit, Earth rotation neglected. At the horizon
    # the line of sight is tangent to the Earth, so it makes with the velocity an angle
    # whose cosine is R_E / (R_E + h): |range rate| = v R_E / (R_E + h).
    h = 500e3
    r, v = R_E + h, circular_speed_m_s(h)
    w = v / r
    theta_horizon = math.acos(R_E / r)  # satellite's angle from the station's zenith

    def rng(t: float) -> float:
        a = theta_horizon - w * t
        return math.hypot(r * math.cos(a) - R_E, r * math.sin(a))

    dt = 1e-3
    numeric = (rng(dt) - rng(-dt)) / (2 * dt)  # rising: the range shrinks
    assert numeric == pytest.approx(-v * R_E / r, rel=1e-6)


@pytest.mark.parametrize(("freq_hz", "expected_hz"), [(2.2e9, 52e3), (8.2e9, 193e3)])
def test_maximum_doppler_at_500_km(freq_hz, expected_hz):
    # Station in the orbit plane, circular orbit at 500 km, Earth rotation neglected:
    # v = sqrt(mu / r) = 7,613 m/s, range rate at the horizon v R_E / r = 7,059 m/s;
    # -f v_r / c = 51.8 kHz at 2.2 GHz and 193.1 kHz at 8.2 GHz. Tolerance 1 %.
    v_r = circular_speed_m_s(500e3) * R_E / (R_E + 500e3)
    assert doppler_hz(freq_hz, -v_r) == pytest.approx(expected_hz, rel=0.01)  # rising
    assert doppler_hz(freq_hz, v_r) == pytest.approx(-expected_hz, rel=0.01)  # setting


def test_doppler_rate_sign_and_scale():
    # Overhead at 500 km the range accelerates at v^2/h - g(r) ~ +107 m/s^2 (the Doppler
    # falls through zero): about -2.9 kHz/s at 8.2 GHz.
    h = 500e3
    accel = circular_speed_m_s(h) ** 2 / h - EARTH_MU_M3_S2 / (R_E + h) ** 2
    assert doppler_rate_hz_s(8.2e9, accel) == pytest.approx(-2.94e3, rel=0.01)
    assert doppler_rate_hz_s(2e9, 0.0) == 0.0


def test_uncoded_bpsk_ber_known_points():
    assert ber_from_ebn0(0.0) == pytest.approx(0.5 * math.erfc(1.0))
    assert ber_from_ebn0(9.59) == pytest.approx(1e-5, rel=0.02)  # the textbook 9.6 dB
    assert ber_from_ebn0(10.53) == pytest.approx(1e-6, rel=0.02)
    assert ber_from_ebn0(-40.0) == pytest.approx(0.5, abs=1e-2)
    assert ber_from_ebn0(50.0) == 0.0
    assert ber_from_ebn0(7.0, Modulation.QPSK) == ber_from_ebn0(7.0, Modulation.BPSK)


@pytest.mark.parametrize("ber", [1e-2, 1e-4, 1e-6, 1e-9, 1e-12])
def test_ebn0_for_ber_inverts_the_curve(ber):
    assert ber_from_ebn0(ebn0_for_ber(ber)) == pytest.approx(ber, rel=1e-6)


def test_pll_doppler_rate_limit():
    # B_L = 100 Hz, zeta = 0.707: wn = 188.6 rad/s; 30 deg of phase error at wn^2/12 Hz/s.
    assert pll_max_doppler_rate_hz_s(100.0) == pytest.approx(2963, rel=1e-3)
    assert pll_max_doppler_rate_hz_s(200.0) == pytest.approx(4 * 2963, rel=1e-3)


# --------------------------------------------------------------------- atmosphere


def test_atmosphere_cosecant_law_with_a_floor():
    atm = Atmosphere(0.3, min_elevation_deg=5.0)
    assert atm.loss_db(90.0) == pytest.approx(0.3)
    assert atm.loss_db(30.0) == pytest.approx(0.6)
    assert atm.loss_db(10.0) == pytest.approx(0.3 / math.sin(math.radians(10.0)))
    floor = atm.loss_db(5.0)
    assert atm.loss_db(2.0) == floor
    assert atm.loss_db(-3.0) == floor
    losses = [atm.loss_db(e) for e in range(5, 91)]
    assert losses == sorted(losses, reverse=True)


# --------------------------------------------------------------------- the budget


@pytest.mark.parametrize("config", [S_BAND_UPLINK, X_BAND_DOWNLINK], ids=lambda c: c.name)
@pytest.mark.parametrize("altitude_m", [500e3, 550e3])
def test_presets_close_at_10_degrees(config, altitude_m):
    budget = link_budget(config, slant_range_m(altitude_m, 10.0), 10.0)
    assert budget.closes
    assert budget.margin_db >= 3.0  # a sensible margin over BER 1e-6 uncoded
    assert budget.ber < 1e-6


@pytest.mark.parametrize("config", [S_BAND_UPLINK, X_BAND_DOWNLINK], ids=lambda c: c.name)
def test_presets_do_not_close_at_an_absurd_range(config):
    budget = link_budget(config, 40_000e3, 10.0)  # a geostationary distance
    assert not budget.closes
    assert budget.ber > 1e-3


def test_budget_terms_add_up():
    b = link_budget(X_BAND_DOWNLINK, 1_500e3, 20.0)
    cn0 = b.eirp_dbw - b.fspl_db - b.atm_loss_db - b.other_losses_db + b.gt_db_per_k
    assert b.cn0_dbhz == pytest.approx(cn0 - BOLTZMANN_DBW_PER_K_HZ)
    assert b.ebn0_db == pytest.approx(b.cn0_dbhz - 10 * math.log10(b.rate_bps))
    assert b.margin_db == pytest.approx(b.ebn0_db - b.required_ebn0_db)
    assert b.ber == ber_from_ebn0(b.ebn0_db)
    assert b.fspl_db == fspl_db(1_500e3, X_BAND_DOWNLINK.freq_hz)
    rows = dict((name, value) for name, value, _ in b.rows())
    assert rows["Eb/N0"] == b.ebn0_db
    assert "Eb/N0" in b.summary()
    assert "margin" in b.summary()


def test_ebn0_falls_as_20_log10_of_range():
    near = link_budget(S_BAND_UPLINK, 1_000e3, 30.0)
    for factor in (2.0, 3.7, 10.0):
        far = link_budget(S_BAND_UPLINK, 1_000e3 * factor, 30.0)
        assert near.ebn0_db - far.ebn0_db == pytest.approx(20 * math.log10(factor), abs=1e-9)


def test_ebn0_falls_3_db_when_the_rate_doubles():
    a = link_budget(x_band_downlink(rate_bps=100e6), 1_000e3, 30.0)
    b = link_budget(x_band_downlink(rate_bps=200e6), 1_000e3, 30.0)
    assert a.ebn0_db - b.ebn0_db == pytest.approx(10 * math.log10(2))
    assert a.cn0_dbhz == pytest.approx(b.cn0_dbhz)


def test_lower_elevation_costs_range_and_atmosphere():
    ebn0 = [link_budget(X_BAND_DOWNLINK, slant_range_m(500e3, e), e).ebn0_db for e in (5, 10, 45)]
    assert ebn0 == sorted(ebn0)


def test_presets_frequencies_and_rates():
    assert S_BAND_UPLINK.freq_hz == 2_067.5e6
    assert S_BAND_UPLINK.band.contains(S_BAND_UPLINK.freq_hz)
    assert 64e3 <= S_BAND_UPLINK.rate_bps <= 2e6
    assert X_BAND_DOWNLINK.freq_hz == 8_212.5e6
    assert 50e6 <= X_BAND_DOWNLINK.rate_bps <= 300e6
    assert s_band_uplink(rate_bps=1e6).rate_bps == 1e6
    assert x_band_downlink(eirp_dbw=23.0).eirp_dbw == 23.0
    assert rf.PRESETS["x_band_downlink"] is X_BAND_DOWNLINK


# ---------------------------------------------------------------------- receiver


def test_receiver_acquires_then_locks():
    rx = ReceiverModel(acquisition_s=3.0, max_doppler_rate_hz_s=1e3, lock_threshold_ebn0_db=3.0)
    assert rx.status(0.0, 0.0, 20.0) is LockStatus.ACQUIRING
    assert rx.status(2.99, 0.0, 20.0) is LockStatus.ACQUIRING
    assert rx.status(3.0, 0.0, 20.0) is LockStatus.LOCKED
    assert rx.status(3.0, 0.0, 20.0).locked
    assert not rx.status(1.0, 0.0, 20.0).locked


def test_receiver_loses_lock_above_the_doppler_rate_limit():
    rx = ReceiverModel(acquisition_s=3.0, max_doppler_rate_hz_s=1e3)
    assert rx.status(60.0, 999.0, 20.0) is LockStatus.LOCKED
    assert rx.status(60.0, 1001.0, 20.0) is LockStatus.DOPPLER_RATE
    assert rx.status(60.0, -1001.0, 20.0) is LockStatus.DOPPLER_RATE


def test_receiver_loses_lock_at_low_ebn0_and_says_so_first():
    rx = ReceiverModel(acquisition_s=3.0, max_doppler_rate_hz_s=1e3, lock_threshold_ebn0_db=3.0)
    assert rx.status(60.0, 0.0, 2.9) is LockStatus.LOW_EBN0
    assert rx.status(60.0, 0.0, math.nan) is LockStatus.LOW_EBN0
    assert rx.status(0.0, 5e3, 2.0) is LockStatus.LOW_EBN0  # the weakest link first
    assert rx.status(0.0, 5e3, 20.0) is LockStatus.DOPPLER_RATE
    assert str(LockStatus.DOPPLER_RATE) == "doppler_rate"


def test_presets_track_an_overhead_pass_at_500_km():
    h = 500e3
    accel = circular_speed_m_s(h) ** 2 / h - EARTH_MU_M3_S2 / (R_E + h) ** 2
    for config in (S_BAND_UPLINK, X_BAND_DOWNLINK):
        rate = doppler_rate_hz_s(config.freq_hz, accel)
        assert config.receiver.status(60.0, rate, 20.0) is LockStatus.LOCKED


def test_tracker_reacquires_after_a_loss_of_lock():
    tr = ReceiverTracker(ReceiverModel(acquisition_s=3.0, max_doppler_rate_hz_s=1e3))
    tr.start_pass(100.0)
    assert tr.update(101.0, 0.0, 20.0) is LockStatus.ACQUIRING
    assert tr.update(103.5, 0.0, 20.0) is LockStatus.LOCKED
    assert tr.update(150.0, 2e3, 20.0) is LockStatus.DOPPLER_RATE
    assert tr.update(151.0, 0.0, 20.0) is LockStatus.ACQUIRING  # must acquire again
    assert tr.update(153.9, 0.0, 20.0) is LockStatus.ACQUIRING
    assert tr.update(154.0, 0.0, 20.0) is LockStatus.LOCKED
    assert tr.update(200.0, 0.0, -5.0) is LockStatus.LOW_EBN0


def test_rf_state_for_one_unit():
    d = slant_range_m(500e3, 10.0)
    early = rf_state(X_BAND_DOWNLINK, 1.0, d, -6_000.0, 10.0, 10.0)
    assert early.status is LockStatus.ACQUIRING
    assert not early.delivered
    later = rf_state(X_BAND_DOWNLINK, 30.0, d, -6_000.0, 10.0, 10.0)
    assert later.delivered
    assert later.delay_s == pytest.approx(d / SPEED_OF_LIGHT_M_S)
    assert later.doppler_hz == pytest.approx(6_000.0 * X_BAND_DOWNLINK.freq_hz / SPEED_OF_LIGHT_M_S)
    assert later.doppler_rate_hz_s < 0
    assert later.ber == later.budget().ber < 1e-6
    assert later.ebn0_db == later.budget().ebn0_db == rf.ebn0_db(X_BAND_DOWNLINK, d, 10.0)
    far = rf_state(X_BAND_DOWNLINK, 30.0, 40_000e3, 0.0, 0.0, 10.0)
    assert far.status is LockStatus.LOW_EBN0


# ----------------------------------------------------------------- bad parameters


def _field(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.field


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: s_band_uplink(rate_bps=-1.0), "rate_bps"),
        (lambda: s_band_uplink(rate_bps=10e6), "rate_bps"),  # above the preset's range
        (lambda: x_band_downlink(rate_bps=10e6), "rate_bps"),
        (lambda: s_band_uplink(freq_hz=2_200e6), "freq_hz"),  # outside the allocation
        (lambda: x_band_downlink(freq_hz=8_450e6), "freq_hz"),
        (lambda: x_band_downlink(eirp_dbw=math.nan), "eirp_dbw"),
        (lambda: x_band_downlink(other_losses_db=-1.0), "other_losses_db"),
        (lambda: x_band_downlink(modulation="8psk"), "modulation"),
        (lambda: x_band_downlink(atmosphere=0.3), "atmosphere"),
        (lambda: Band("x", 2e9, 1e9, 0.1), "high_hz"),
        (lambda: Atmosphere(-0.1), "zenith_loss_db"),
        (lambda: Atmosphere(0.1, min_elevation_deg=0.0), "min_elevation_deg"),
        (lambda: ReceiverModel(acquisition_s=-1.0), "acquisition_s"),
        (lambda: ReceiverModel(max_doppler_rate_hz_s=0.0), "max_doppler_rate_hz_s"),
        (lambda: fspl_db(-1.0, 2e9), "range_m"),
        (lambda: fspl_db(1e6, 0.0), "freq_hz"),
        (lambda: propagation_delay_s(-1.0), "range_m"),
        (lambda: ebn0_for_ber(0.7), "ber"),
        (lambda: Atmosphere(0.1).loss_db(95.0), "elevation_deg"),
        (lambda: ReceiverModel().status(-1.0, 0.0, 20.0), "t_since_aos_s"),
        (lambda: pll_max_doppler_rate_hz_s(-5.0), "loop_bandwidth_hz"),
    ],
)
def test_bad_parameters_raise_config_error_naming_the_field(make, field):
    with pytest.raises(ConfigError) as excinfo:
        make()
    assert _field(excinfo) == field


def test_config_without_preset_checks_only_the_allocation():
    cfg = RfLinkConfig("custom", rf.S_BAND_DOWN, 2_250e6, 4e6, 10.0, 20.0)
    assert cfg.atmosphere == Atmosphere(0.1)
    assert cfg.modulation is Modulation.BPSK
    assert link_budget(cfg, 1_000e3, 45.0).closes


# ------------------------------------------- thresholds met exactly, presets pinned (issue 21)


def test_lock_thresholds_are_met_exactly_at_their_values():
    rx = ReceiverModel(acquisition_s=3.0, max_doppler_rate_hz_s=1e3, lock_threshold_ebn0_db=3.0)
    assert rx.fault(0.0, 3.0) is None  # Eb/N0 at the threshold holds lock
    assert rx.fault(0.0, math.nextafter(3.0, 0.0)) is LockStatus.LOW_EBN0
    assert rx.fault(1e3, 20.0) is None  # the Doppler rate at the limit is followed
    assert rx.fault(-1e3, 20.0) is None
    assert rx.fault(math.nextafter(1e3, 2e3), 20.0) is LockStatus.DOPPLER_RATE
    assert rx.status(3.0, 1e3, 3.0) is LockStatus.LOCKED  # all three exactly at the edge
    assert rx.status(0.0, 0.0, 20.0) is LockStatus.ACQUIRING  # AOS itself is a valid time
    assert rx.status(math.nextafter(3.0, 0.0), 0.0, 20.0) is LockStatus.ACQUIRING
    tr = ReceiverTracker(rx)
    tr.start_pass(10.0)
    assert tr.update(10.0, 0.0, 3.0) is LockStatus.ACQUIRING
    assert tr.update(13.0, 1e3, 3.0) is LockStatus.LOCKED


def test_elevation_limits_and_the_atmosphere_floor_are_inclusive():
    atm = Atmosphere(0.3, min_elevation_deg=5.0)
    assert atm.loss_db(90.0) == pytest.approx(0.3)
    assert atm.loss_db(-90.0) == atm.loss_db(5.0)  # below the floor: held at it
    assert atm.loss_db(5.0) == pytest.approx(0.3 / math.sin(math.radians(5.0)))
    assert atm.loss_db(math.nextafter(5.0, 0.0)) == atm.loss_db(5.0)
    assert atm.loss_db(math.nextafter(5.0, 90.0)) < atm.loss_db(5.0)
    for bad in (math.nextafter(90.0, 91.0), math.nextafter(-90.0, -91.0)):
        with pytest.raises(ConfigError, match="elevation_deg"):
            atm.loss_db(bad)
    assert Atmosphere(0.0, min_elevation_deg=0.5).loss_db(0.0) == 0.0
    assert Atmosphere(0.1, min_elevation_deg=90.0).loss_db(10.0) == pytest.approx(0.1)
    for bad in (0.49, 90.01):
        with pytest.raises(ConfigError, match="min_elevation_deg"):
            Atmosphere(0.1, min_elevation_deg=bad)


def test_band_edges_and_preset_rate_ranges_are_inclusive():
    assert S_BAND_UPLINK.band.contains(2025e6) and S_BAND_UPLINK.band.contains(2110e6)
    assert not S_BAND_UPLINK.band.contains(2024.999e6)
    assert not S_BAND_UPLINK.band.contains(2110.001e6)
    assert s_band_uplink(freq_hz=2025e6).freq_hz == 2025e6
    for rate in (64e3, 2e6):
        assert s_band_uplink(rate_bps=rate).rate_bps == rate
    for rate in (50e6, 300e6):
        assert x_band_downlink(rate_bps=rate).rate_bps == rate
    for make, rate in ((s_band_uplink, 63.9e3), (s_band_uplink, 2.01e6), (x_band_downlink, 49e6)):
        with pytest.raises(ConfigError, match="rate_bps"):
            make(rate_bps=rate)
    with pytest.raises(ConfigError, match="rate_bps"):
        s_band_uplink(rate_bps=0.0)
    assert x_band_downlink(other_losses_db=0.0).other_losses_db == 0.0  # >= 0 admits 0
    assert Band("edge", 1e9, 1e9 + 1.0, 0.0).zenith_loss_db == 0.0


def test_a_budget_with_zero_margin_closes():
    b = link_budget(S_BAND_UPLINK, 1_000e3, 90.0)
    at_edge = link_budget(s_band_uplink(required_ebn0_db=b.ebn0_db), 1_000e3, 90.0)
    assert at_edge.margin_db == 0.0 and at_edge.closes
    above = link_budget(s_band_uplink(required_ebn0_db=b.ebn0_db + 1e-9), 1_000e3, 90.0)
    assert not above.closes


# The presets' budgets worked by hand, to 0.01 dB, from the figures their comments give
# (channels/rf.py), with c = 299,792,458 m/s and k = 1.380649e-23 J/K (10 log10 k =
# -228.60 dBW/K/Hz):
#
# S-band uplink, 1,000 km straight up (elevation 90 deg), 2,067.5 MHz, 256 kbps:
#   FSPL = 20 log10(4 pi 1.0e6 m 2.0675e9 Hz / c) = 20 log10(8.6663e7)   = 158.76 dB
#   atmosphere = 0.10 dB / sin 90 deg                                     =   0.10 dB
#   C/N0 = 40.00 (EIRP) - 158.76 - 0.10 - 3.00 (other) - 28.00 (G/T) + 228.60 = 78.74 dBHz
#   Eb/N0 = 78.74 - 10 log10(256,000) = 78.74 - 54.08                      =  24.66 dB
#
# X-band downlink, 1,000 km at elevation 30 deg, 8,212.5 MHz, 150 Mbps:
#   FSPL = 20 log10(4 pi 1.0e6 m 8.2125e9 Hz / c) = 20 log10(3.4424e8)   = 170.74 dB
#   atmosphere = 0.30 dB / sin 30 deg                                     =   0.60 dB
#   C/N0 = 20.00 - 170.74 - 0.60 - 3.00 + 28.00 + 228.60                  = 102.26 dBHz
#   Eb/N0 = 102.26 - 10 log10(1.5e8) = 102.26 - 81.76                     =  20.50 dB
HAND_BUDGETS = {
    "S-band uplink": (S_BAND_UPLINK, 1_000e3, 90.0, 158.76, 0.10, 78.74, 24.66),
    "X-band downlink": (X_BAND_DOWNLINK, 1_000e3, 30.0, 170.74, 0.60, 102.26, 20.50),
}


@pytest.mark.parametrize("name", HAND_BUDGETS)
def test_each_preset_budget_matches_the_hand_computation(name):
    config, range_m, elevation_deg, fspl, atm, cn0, ebn0 = HAND_BUDGETS[name]
    b = link_budget(config, range_m, elevation_deg)
    assert b.name == name
    assert b.fspl_db == pytest.approx(fspl, abs=0.01)
    assert b.atm_loss_db == pytest.approx(atm, abs=0.01)
    assert b.cn0_dbhz == pytest.approx(cn0, abs=0.01)
    assert b.ebn0_db == pytest.approx(ebn0, abs=0.01)


def test_each_preset_states_the_figures_of_its_budget():
    s, x = S_BAND_UPLINK, X_BAND_DOWNLINK
    assert (s.eirp_dbw, s.gt_db_per_k, s.other_losses_db, s.rate_bps) == (40.0, -28.0, 3.0, 256e3)
    assert (x.eirp_dbw, x.gt_db_per_k, x.other_losses_db, x.rate_bps) == (20.0, 28.0, 3.0, 150e6)
    assert (s.modulation, x.modulation) == (Modulation.BPSK, Modulation.QPSK)
    assert s.atmosphere == Atmosphere(0.1, 5.0) and x.atmosphere == Atmosphere(0.3, 5.0)
    assert s.required_ebn0_db == x.required_ebn0_db == pytest.approx(10.53, abs=0.01)
    # receivers: 3 s to acquire; loops of B_L 100 Hz (S) and 200 Hz (X), 2,963 Hz/s x 1, x 4
    assert s.receiver.acquisition_s == x.receiver.acquisition_s == 3.0
    assert s.receiver.max_doppler_rate_hz_s == pytest.approx(2963, rel=1e-3)
    assert x.receiver.max_doppler_rate_hz_s == pytest.approx(4 * 2963, rel=1e-3)
    assert s.receiver.lock_threshold_ebn0_db == x.receiver.lock_threshold_ebn0_db == 3.0
    # the allocations (ITU Radio Regulations, Article 5)
    assert (rf.S_BAND_UP.low_hz, rf.S_BAND_UP.high_hz) == (2025e6, 2110e6)
    assert (rf.S_BAND_DOWN.low_hz, rf.S_BAND_DOWN.high_hz) == (2200e6, 2290e6)
    assert (rf.X_BAND_DOWN.low_hz, rf.X_BAND_DOWN.high_hz) == (8025e6, 8400e6)
    assert {"s_band_uplink": s, "x_band_downlink": x} == rf.PRESETS


def test_unknown_modulations_and_impossible_bers_are_refused():
    with pytest.raises(ConfigError, match="unknown modulation"):
        ber_from_ebn0(5.0, "8psk")
    for ber in (0.0, 0.5):
        with pytest.raises(ConfigError, match="ber"):
            ebn0_for_ber(ber)


def test_the_receiver_defaults_and_the_allocation_message():
    rx = ReceiverModel()
    assert (rx.acquisition_s, rx.lock_threshold_ebn0_db) == (3.0, 3.0)
    assert rx.max_doppler_rate_hz_s == pll_max_doppler_rate_hz_s(100.0)
    with pytest.raises(ConfigError, match=r"2200\.000 MHz is outside .* 2025-2110 MHz"):
        s_band_uplink(freq_hz=2_200e6)


def test_the_budget_table_and_status_line_show_each_term_in_its_unit():
    """What `linkstack` prints of a budget: the range in km, the data rate as its
    -10 log10 term, and every other row the term itself."""
    b = link_budget(X_BAND_DOWNLINK, 1_500e3, 20.0)
    rows = {name: (value, unit) for name, value, unit in b.rows()}
    assert rows["slant range"] == (pytest.approx(1_500.0), "km")
    assert rows["data rate"] == (pytest.approx(-10 * math.log10(b.rate_bps)), "dB(bps)")
    assert b.summary().startswith(f"{b.name}: 1500 km el 20.0 deg ")


def test_a_negative_zenith_loss_and_a_receiver_of_another_type_are_refused():
    with pytest.raises(ConfigError, match="zenith_loss_db"):
        Band("x", 8.0e9, 8.5e9, -0.1)
    with pytest.raises(ConfigError, match="receiver"):
        x_band_downlink(receiver="a dish")


# ------------------------------ survivors of a full mutation run (issue 21, 92.3 %)


@pytest.mark.parametrize("bad", [True, "3.0", math.nan, math.inf])
def test_a_bool_a_string_or_a_non_finite_number_is_refused_naming_the_field(bad):
    with pytest.raises(ConfigError) as excinfo:
        ReceiverModel(lock_threshold_ebn0_db=bad)
    assert _field(excinfo) == "lock_threshold_ebn0_db"


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Band("x", -1e9, 2e9, 0.1), "low_hz"),
        (lambda: Band("x", 2e9, 2e9, 0.1), "high_hz"),  # an empty band
        (lambda: RfLinkConfig("c", "S-band", 2_067.5e6, 256e3, 40.0, -28.0), "band"),  # type: ignore[arg-type]
        (lambda: RfLinkConfig("c", rf.S_BAND_UP, "2067.5e6", 256e3, 40.0, -28.0), "freq_hz"),  # type: ignore[arg-type]
        (lambda: RfLinkConfig("c", rf.S_BAND_UP, 2_067.5e6, 0.0, 40.0, -28.0), "rate_bps"),
        (lambda: RfLinkConfig("c", rf.S_BAND_UP, 2_067.5e6, -1e3, 40.0, -28.0), "rate_bps"),
        (lambda: RfLinkConfig("c", rf.S_BAND_UP, 2_067.5e6, 256e3, 40.0, math.nan), "gt_db_per_k"),
        (
            lambda: RfLinkConfig(
                "c", rf.S_BAND_UP, 2_067.5e6, 256e3, 40.0, -28.0, required_ebn0_db=math.nan
            ),
            "required_ebn0_db",
        ),
    ],
)
def test_a_band_or_link_config_that_cannot_be_is_refused_naming_the_field(make, field):
    with pytest.raises(ConfigError) as excinfo:
        make()
    assert _field(excinfo) == field


def test_ber_is_zero_above_30_db_however_large_and_erfc_already_gives_zero_at_30():
    # 0.5 erfc(sqrt(1000)) ~ e^-1000 / 56: below the smallest double, so 0.0 already.
    assert ber_from_ebn0(30.0) == 0.5 * math.erfc(math.sqrt(1e3)) == 0.0
    assert ber_from_ebn0(math.nextafter(30.0, math.inf)) == 0.0
    assert ber_from_ebn0(4_000.0) == 0.0  # 10 ** 400 would overflow


def test_ebn0_for_ber_answers_up_to_the_ber_at_minus_30_db_and_refuses_above():
    top = ber_from_ebn0(-30.0)  # 0.5 erfc(sqrt(1e-3)) = 0.4822
    assert top == pytest.approx(0.4822, abs=1e-4)
    assert ebn0_for_ber(top) == -30.0
    assert ber_from_ebn0(ebn0_for_ber(0.48)) == pytest.approx(0.48, rel=1e-12)
    for ber in (0.483, 0.49, math.nextafter(top, 1.0)):  # roots below -30 dB
        with pytest.raises(ConfigError) as excinfo:
            ebn0_for_ber(ber)
        assert _field(excinfo) == "ber"


def test_the_pll_phase_error_limit_is_0_to_90_degrees_inclusive():
    assert pll_max_doppler_rate_hz_s(100.0, max_phase_error_deg=0.0) == 0.0
    # Linear in the phase error: 90 degrees allows three times the default 30.
    assert pll_max_doppler_rate_hz_s(100.0, max_phase_error_deg=90.0) == pytest.approx(
        3 * pll_max_doppler_rate_hz_s(100.0), rel=1e-12
    )
    for bad in (90.0000001, -1e-9):
        with pytest.raises(ConfigError) as excinfo:
            pll_max_doppler_rate_hz_s(100.0, max_phase_error_deg=bad)
        assert _field(excinfo) == "max_phase_error_deg"


def test_a_new_tracker_acquires_from_its_first_usable_update_without_start_pass():
    tracker = ReceiverTracker(ReceiverModel(acquisition_s=3.0))
    assert tracker.update(100.0, 0.0, 20.0) is LockStatus.ACQUIRING
    assert tracker.update(102.9, 0.0, 20.0) is LockStatus.ACQUIRING
    assert tracker.update(103.0, 0.0, 20.0) is LockStatus.LOCKED


def test_a_config_defaults_to_3_db_of_other_losses_shown_in_the_budget_table():
    cfg = RfLinkConfig("custom", rf.S_BAND_UP, 2_067.5e6, 256e3, 40.0, -28.0)
    rows = {name: (value, unit) for name, value, unit in link_budget(cfg, 1e6, 45.0).rows()}
    assert cfg.other_losses_db == 3.0
    assert rows["other losses"] == (-3.0, "dB")
    assert rows["frequency"] == (2_067.5, "MHz")  # 2067.5e6 / 1e6, exact in binary


def test_a_modulation_given_as_its_name_is_stored_as_the_enum():
    cfg = RfLinkConfig("custom", rf.S_BAND_UP, 2_067.5e6, 256e3, 40.0, -28.0, modulation="qpsk")
    assert cfg.modulation is Modulation.QPSK
    assert cfg.modulation.name == "QPSK"


def test_the_preset_rate_tables_are_the_documented_ones_with_edges_exact():
    # S-band uplink 64 kbps-2 Mbps, X-band downlink 50-300 Mbps (the presets' comments).
    assert rf.S_BAND_UPLINK_RATES_BPS == (64e3, 2e6)
    assert rf.X_BAND_DOWNLINK_RATES_BPS == (50e6, 300e6)
    for make, rate in ((s_band_uplink, 2e6 + 1.0), (x_band_downlink, 300e6 + 1.0)):
        with pytest.raises(ConfigError) as excinfo:
            make(rate_bps=rate)
        assert _field(excinfo) == "rate_bps"
