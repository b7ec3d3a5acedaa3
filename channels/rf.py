"""RF link model: link budget, Doppler, receiver lock and propagation delay.

The geometry (slant range, range rate, range acceleration, elevation at a given
time) comes from the orbit and contact models; every function here takes those
values as inputs and is pure. The link budget gives, per unit sent, the Eb/N0 and
the uncoded bit error rate that `channels.errors` then applies to the real bytes;
the receiver model says whether the receiver is locked at all.

``rate_bps`` is the rate of the bits on the wire (the coded CADU or CLTU bits):
Reed-Solomon and BCH run in `linkstack`, so the bit error rate computed here is the
raw channel BER that the decoders must correct.

Link budget, per unit, all in dB:
    C/N0 [dBHz] = EIRP - FSPL - L_atm(elevation) - L_other + G/T - k
    Eb/N0 [dB]  = C/N0 - 10 log10(rate_bps)
    BER         = 0.5 erfc(sqrt(Eb/N0))   (coherent BPSK, or Gray-coded QPSK per bit,
                                           AWGN, uncoded)
(Standard forms: e.g. Sklar, *Digital Communications*, ch. 5 and 4; Wertz & Larson,
*Space Mission Analysis and Design*, ch. 13.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from numbers import Real

from channels.constants import BOLTZMANN_DBW_PER_K_HZ, SPEED_OF_LIGHT_M_S
from linkstack.errors import ConfigError

# ----------------------------------------------------------------------------- checks


def _finite(where: str, name: str, value: float) -> float:
    # Any real number (numpy scalars too) but not a bool; float first, it is the usual case.
    if (type(value) is not float and (isinstance(value, bool) or not isinstance(value, Real))) or (
        not math.isfinite(value)
    ):
        raise ConfigError(where, name, f"must be a finite number, got {value!r}")
    return float(value)


def _positive(where: str, name: str, value: float) -> float:
    if _finite(where, name, value) <= 0:
        raise ConfigError(where, name, f"must be > 0, got {value!r}")
    return float(value)


def _non_negative(where: str, name: str, value: float) -> float:
    if _finite(where, name, value) < 0:
        raise ConfigError(where, name, f"must be >= 0, got {value!r}")
    return float(value)


def _between(where: str, name: str, value: float, lo: float, hi: float) -> float:
    if not lo <= _finite(where, name, value) <= hi:
        raise ConfigError(where, name, f"must be in {lo:g}..{hi:g}, got {value!r}")
    return float(value)


# ------------------------------------------------------------------ closed-form terms


def fspl_db(range_m: float, freq_hz: float) -> float:
    """Free-space path loss 20 log10(4 pi d f / c), in dB (the spreading of the wave)."""
    _positive("rf.fspl_db", "range_m", range_m)
    _positive("rf.fspl_db", "freq_hz", freq_hz)
    return 20.0 * math.log10(4.0 * math.pi * range_m * freq_hz / SPEED_OF_LIGHT_M_S)


def propagation_delay_s(range_m: float) -> float:
    """One-way light time range / c; evaluate it at the unit's emission time."""
    return _non_negative("rf.propagation_delay_s", "range_m", range_m) / SPEED_OF_LIGHT_M_S


def doppler_hz(freq_hz: float, range_rate_m_s: float) -> float:
    """First-order Doppler shift -f v_r / c: positive while the range shrinks (v_r < 0)."""
    return -freq_hz * range_rate_m_s / SPEED_OF_LIGHT_M_S


def doppler_rate_hz_s(freq_hz: float, range_accel_m_s2: float) -> float:
    """Rate of change of the Doppler shift, -f a_r / c: what the carrier loop must follow."""
    return -freq_hz * range_accel_m_s2 / SPEED_OF_LIGHT_M_S


class Modulation(StrEnum):
    """Coherent PSK on an AWGN channel, uncoded. Gray-coded QPSK has the BER of BPSK per
    bit at the same Eb/N0 (two BPSK channels in quadrature)."""

    BPSK = "bpsk"
    QPSK = "qpsk"


def ber_from_ebn0(ebn0_db: float, modulation: Modulation = Modulation.BPSK) -> float:
    """Bit error rate 0.5 erfc(sqrt(Eb/N0)) of coherent BPSK / Gray QPSK (both the same)."""
    if modulation not in (Modulation.BPSK, Modulation.QPSK):
        raise ConfigError("rf.ber_from_ebn0", "modulation", f"unknown modulation {modulation!r}")
    if ebn0_db > 30.0:  # 0.0 from 28.7 dB (erfc underflows); 10 ** (x / 10) overflows past 3080
        return 0.0
    return 0.5 * math.erfc(math.sqrt(10.0 ** (ebn0_db / 10.0)))


# Where ebn0_for_ber looks: from a BER of 0.482 to past erfc's underflow (28.7 dB).
_EBN0_BRACKET_DB = (-30.0, 30.0)


def ebn0_for_ber(ber: float, modulation: Modulation = Modulation.BPSK) -> float:
    """The Eb/N0 (dB) at which the uncoded BER equals ``ber`` (bisection of the monotone
    curve), e.g. 10.53 dB for 1e-6: the usual closing threshold of a link budget. The
    curve nears 0.5 only as Eb/N0 falls without end, so ``ber`` is refused above its value
    at the bracket's low edge (0.482 at -30 dB) rather than answered with that edge."""
    lo, hi = _EBN0_BRACKET_DB
    top = ber_from_ebn0(lo, modulation)  # a BER above this has its root below the bracket
    if not 0.0 < _finite("rf.ebn0_for_ber", "ber", ber) <= top:
        raise ConfigError("rf.ebn0_for_ber", "ber", f"must be in (0, {top:.6g}], got {ber!r}")
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if ber_from_ebn0(mid, modulation) > ber:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


REQUIRED_EBN0_DB_BER_1E6 = ebn0_for_ber(1e-6)


def pll_max_doppler_rate_hz_s(
    loop_bandwidth_hz: float, max_phase_error_deg: float = 30.0, damping: float = 0.707
) -> float:
    """The largest frequency ramp (Hz/s) a type-2, second-order carrier loop follows with a
    steady-state phase error below ``max_phase_error_deg``.

    Standard PLL theory (Gardner, *Phaselock Techniques*): a ramp of R Hz/s leaves a
    phase error 2 pi R / wn^2 rad, with wn = 8 zeta B_L / (4 zeta^2 + 1) for the
    one-sided noise bandwidth B_L. This is where the receivers' default limits come from.
    """
    where = "rf.pll_max_doppler_rate_hz_s"
    b_l = _positive(where, "loop_bandwidth_hz", loop_bandwidth_hz)
    theta = math.radians(_between(where, "max_phase_error_deg", max_phase_error_deg, 0.0, 90.0))
    zeta = _positive(where, "damping", damping)
    wn = 8.0 * zeta * b_l / (4.0 * zeta * zeta + 1.0)
    return theta * wn * wn / (2.0 * math.pi)


# ------------------------------------------------------------------ atmosphere, bands


@dataclass(frozen=True)
class Atmosphere:
    """Gaseous and cloud loss: a zenith loss scaled by the cosecant of the elevation.

    ITU-R P.676 (Annex 2) gives slant-path gaseous attenuation as the zenith value over
    sin(elevation) for elevations from 5 to 90 degrees; below the floor
    ``min_elevation_deg`` the loss is held at its floor value instead of growing without
    bound (the flat-layer model breaks down near the horizon). Zenith values: from 2 to
    8 GHz dry-air and water-vapour absorption at sea level is a few hundredths of a dB
    (P.676); 0.1 dB (S) and 0.3 dB (X) add light cloud (P.840) and scintillation, the
    round figures small-satellite budgets use.
    """

    zenith_loss_db: float
    min_elevation_deg: float = 5.0

    def __post_init__(self) -> None:
        _non_negative("rf.Atmosphere", "zenith_loss_db", self.zenith_loss_db)
        _between("rf.Atmosphere", "min_elevation_deg", self.min_elevation_deg, 0.5, 90.0)

    def loss_db(self, elevation_deg: float) -> float:
        """Loss along the slant path at this elevation (dB)."""
        _between("rf.Atmosphere.loss_db", "elevation_deg", elevation_deg, -90.0, 90.0)
        elev = max(elevation_deg, self.min_elevation_deg)
        return self.zenith_loss_db / math.sin(math.radians(elev))


@dataclass(frozen=True)
class Band:
    """A frequency allocation (ITU Radio Regulations, Article 5) and its zenith loss."""

    name: str
    low_hz: float
    high_hz: float
    zenith_loss_db: float

    def __post_init__(self) -> None:
        _positive("rf.Band", "low_hz", self.low_hz)
        if _positive("rf.Band", "high_hz", self.high_hz) <= self.low_hz:
            raise ConfigError("rf.Band", "high_hz", f"must be above low_hz {self.low_hz:g}")
        _non_negative("rf.Band", "zenith_loss_db", self.zenith_loss_db)

    def contains(self, freq_hz: float) -> bool:
        return self.low_hz <= freq_hz <= self.high_hz


# Space research / space operation, Earth-to-space: the usual TC uplink of LEO missions.
S_BAND_UP = Band("S-band Earth-to-space (SRS/SOS)", 2025e6, 2110e6, 0.1)
# Space research / space operation, space-to-Earth: S-band telemetry.
S_BAND_DOWN = Band("S-band space-to-Earth (SRS/SOS)", 2200e6, 2290e6, 0.1)
# Earth exploration-satellite, space-to-Earth: the payload data downlink of LEO satellites.
X_BAND_DOWN = Band("X-band space-to-Earth (EESS)", 8025e6, 8400e6, 0.3)


# ---------------------------------------------------------------------------- receiver


class LockStatus(StrEnum):
    """Whether the receiver delivers units, and if not, why."""

    LOCKED = "locked"
    ACQUIRING = "acquiring"  # carrier and symbol acquisition at the start of a pass
    DOPPLER_RATE = "doppler_rate"  # the carrier loop cannot follow the Doppler ramp
    LOW_EBN0 = "low_ebn0"  # too little signal for the loops to hold

    @property
    def locked(self) -> bool:
        return self is LockStatus.LOCKED


@dataclass(frozen=True)
class ReceiverModel:
    """Carrier acquisition time, Doppler-rate tracking limit and lock threshold.

    Defaults: a few seconds to sweep and acquire the carrier and the symbol clock is
    what ground modems and onboard transponders of LEO missions take (2-5 s); the
    Doppler-rate limit is that of a second-order loop of B_L = 100 Hz allowing a 30
    degree phase error (`pll_max_doppler_rate_hz_s(100)` ~ 3 kHz/s); suppressed-carrier
    BPSK/QPSK demodulators hold lock down to an Eb/N0 of a few dB, where the uncoded BER
    (2e-2 at 3 dB) is past what Reed-Solomon corrects anyway.
    """

    acquisition_s: float = 3.0
    max_doppler_rate_hz_s: float = pll_max_doppler_rate_hz_s(100.0)
    lock_threshold_ebn0_db: float = 3.0

    def __post_init__(self) -> None:
        _non_negative("rf.ReceiverModel", "acquisition_s", self.acquisition_s)
        _positive("rf.ReceiverModel", "max_doppler_rate_hz_s", self.max_doppler_rate_hz_s)
        _finite("rf.ReceiverModel", "lock_threshold_ebn0_db", self.lock_threshold_ebn0_db)

    def fault(self, doppler_rate_hz_s: float, ebn0_db: float) -> LockStatus | None:
        """Why the signal itself cannot be held (low Eb/N0 first, then the Doppler rate),
        or None when it can."""
        if not ebn0_db >= self.lock_threshold_ebn0_db:  # NaN counts as no signal
            return LockStatus.LOW_EBN0
        if not abs(doppler_rate_hz_s) <= self.max_doppler_rate_hz_s:
            return LockStatus.DOPPLER_RATE
        return None

    def status(self, t_since_aos_s: float, doppler_rate_hz_s: float, ebn0_db: float) -> LockStatus:
        """Lock state ``t_since_aos_s`` after the signal appeared (acquisition of signal)."""
        if not t_since_aos_s >= 0.0:
            raise ConfigError("rf.ReceiverModel.status", "t_since_aos_s", "must be >= 0")
        fault = self.fault(doppler_rate_hz_s, ebn0_db)
        if fault is not None:
            return fault
        if t_since_aos_s < self.acquisition_s:
            return LockStatus.ACQUIRING
        return LockStatus.LOCKED


class ReceiverTracker:
    """A receiver through time: after any loss of lock it must acquire again.

    `ReceiverModel.status` knows only the time since AOS; this keeps the time since the
    signal last became usable. Call `start_pass(aos_t_s)` at each AOS, then `update()`
    with non-decreasing times. Between two calls the state is not observed, so a
    re-acquisition starts at the first call that finds the signal usable again (a
    conservative estimate when calls are sparse).
    """

    def __init__(self, model: ReceiverModel) -> None:
        self.model = model
        self._usable_since_s: float | None = None

    def start_pass(self, aos_t_s: float) -> None:
        self._usable_since_s = _finite("rf.ReceiverTracker", "aos_t_s", aos_t_s)

    def update(self, t_s: float, doppler_rate_hz_s: float, ebn0_db: float) -> LockStatus:
        fault = self.model.fault(doppler_rate_hz_s, ebn0_db)
        if fault is not None:
            self._usable_since_s = None
            return fault
        if self._usable_since_s is None:
            self._usable_since_s = t_s
        return self.model.status(t_s - self._usable_since_s, doppler_rate_hz_s, ebn0_db)


# --------------------------------------------------------------------------- the link


@dataclass(frozen=True)
class RfLinkConfig:
    """One RF link direction. ``eirp_dbw`` is the transmitter's EIRP (power + antenna gain -
    line losses), ``gt_db_per_k`` the receiver's figure of merit, ``other_losses_db`` one
    lump for rain, pointing, polarisation and implementation losses, ``required_ebn0_db``
    the Eb/N0 at which the budget is said to close (default: uncoded BER 1e-6)."""

    name: str
    band: Band
    freq_hz: float
    rate_bps: float
    eirp_dbw: float
    gt_db_per_k: float
    other_losses_db: float = 3.0
    modulation: Modulation = Modulation.BPSK
    required_ebn0_db: float = REQUIRED_EBN0_DB_BER_1E6
    atmosphere: Atmosphere | None = None  # None: the band's zenith loss, default floor
    receiver: ReceiverModel = field(default_factory=ReceiverModel)

    def __post_init__(self) -> None:
        where = "rf.RfLinkConfig"
        if not isinstance(self.band, Band):
            raise ConfigError(where, "band", f"must be a Band, got {self.band!r}")
        _positive(where, "freq_hz", self.freq_hz)
        if not self.band.contains(self.freq_hz):
            raise ConfigError(
                where,
                "freq_hz",
                f"{self.freq_hz / 1e6:.3f} MHz is outside the {self.band.name} allocation "
                f"{self.band.low_hz / 1e6:g}-{self.band.high_hz / 1e6:g} MHz",
            )
        _positive(where, "rate_bps", self.rate_bps)
        _finite(where, "eirp_dbw", self.eirp_dbw)
        _finite(where, "gt_db_per_k", self.gt_db_per_k)
        _non_negative(where, "other_losses_db", self.other_losses_db)
        _finite(where, "required_ebn0_db", self.required_ebn0_db)
        try:
            modulation = Modulation(self.modulation)
        except ValueError:
            raise ConfigError(where, "modulation", f"unknown {self.modulation!r}") from None
        object.__setattr__(self, "modulation", modulation)
        if self.atmosphere is None:
            object.__setattr__(self, "atmosphere", Atmosphere(self.band.zenith_loss_db))
        elif not isinstance(self.atmosphere, Atmosphere):
            raise ConfigError(
                where, "atmosphere", f"must be an Atmosphere, got {self.atmosphere!r}"
            )
        if not isinstance(self.receiver, ReceiverModel):
            raise ConfigError(where, "receiver", f"must be a ReceiverModel, got {self.receiver!r}")


@dataclass(frozen=True, slots=True)
class LinkBudget:
    """Every term of one evaluation of the budget, so that logs can print it."""

    name: str
    range_m: float
    elevation_deg: float
    freq_hz: float
    rate_bps: float
    eirp_dbw: float
    fspl_db: float
    atm_loss_db: float
    other_losses_db: float
    gt_db_per_k: float
    boltzmann_dbw_per_k_hz: float
    cn0_dbhz: float
    ebn0_db: float
    required_ebn0_db: float
    ber: float

    @property
    def margin_db(self) -> float:
        """Eb/N0 above the required value; the link closes when it is >= 0."""
        return self.ebn0_db - self.required_ebn0_db

    @property
    def closes(self) -> bool:
        return self.margin_db >= 0.0

    def summary(self) -> str:
        """One status line."""
        return (
            f"{self.name}: {self.range_m / 1e3:.0f} km el {self.elevation_deg:.1f} deg "
            f"C/N0 {self.cn0_dbhz:.1f} dBHz Eb/N0 {self.ebn0_db:.2f} dB "
            f"margin {self.margin_db:+.2f} dB BER {self.ber:.2e}"
        )

    def rows(self) -> list[tuple[str, float, str]]:
        """(term, value, unit) in budget order, for a table."""
        return [
            ("frequency", self.freq_hz / 1e6, "MHz"),
            ("slant range", self.range_m / 1e3, "km"),
            ("elevation", self.elevation_deg, "deg"),
            ("EIRP", self.eirp_dbw, "dBW"),
            ("free-space loss", -self.fspl_db, "dB"),
            ("atmospheric loss", -self.atm_loss_db, "dB"),
            ("other losses", -self.other_losses_db, "dB"),
            ("receiver G/T", self.gt_db_per_k, "dB/K"),
            ("Boltzmann (-k)", -self.boltzmann_dbw_per_k_hz, "dBW/K/Hz"),
            ("C/N0", self.cn0_dbhz, "dBHz"),
            ("data rate", -10.0 * math.log10(self.rate_bps), "dB(bps)"),
            ("Eb/N0", self.ebn0_db, "dB"),
            ("required Eb/N0", self.required_ebn0_db, "dB"),
            ("margin", self.margin_db, "dB"),
            ("BER (uncoded)", self.ber, ""),
        ]


def _terms(
    config: RfLinkConfig, range_m: float, elevation_deg: float
) -> tuple[float, float, float, float]:
    """(free-space loss, atmospheric loss, C/N0, Eb/N0)."""
    fspl = fspl_db(range_m, config.freq_hz)
    atmosphere = config.atmosphere
    assert atmosphere is not None  # RfLinkConfig.__post_init__ sets the band's default
    atm = atmosphere.loss_db(elevation_deg)
    cn0 = (
        config.eirp_dbw
        - fspl
        - atm
        - config.other_losses_db
        + config.gt_db_per_k
        - BOLTZMANN_DBW_PER_K_HZ
    )
    return fspl, atm, cn0, cn0 - 10.0 * math.log10(config.rate_bps)


def ebn0_db(config: RfLinkConfig, range_m: float, elevation_deg: float) -> float:
    """Eb/N0 alone, without building a `LinkBudget` (for per-unit loops)."""
    return _terms(config, range_m, elevation_deg)[3]


def link_budget(config: RfLinkConfig, range_m: float, elevation_deg: float) -> LinkBudget:
    """Evaluate the budget at this slant range and elevation, with every term."""
    fspl, atm, cn0, ebn0 = _terms(config, range_m, elevation_deg)
    return LinkBudget(
        name=config.name,
        range_m=float(range_m),
        elevation_deg=float(elevation_deg),
        freq_hz=config.freq_hz,
        rate_bps=config.rate_bps,
        eirp_dbw=config.eirp_dbw,
        fspl_db=fspl,
        atm_loss_db=atm,
        other_losses_db=config.other_losses_db,
        gt_db_per_k=config.gt_db_per_k,
        boltzmann_dbw_per_k_hz=BOLTZMANN_DBW_PER_K_HZ,
        cn0_dbhz=cn0,
        ebn0_db=ebn0,
        required_ebn0_db=config.required_ebn0_db,
        ber=ber_from_ebn0(ebn0, config.modulation),
    )


@dataclass(frozen=True, slots=True)
class RfState:
    """What the link does to a unit emitted now: whether it gets through and why not,
    the BER to inject if it does, the Doppler and the one-way delay. ``budget()``
    gives every term of the budget (computed on demand: per-unit loops skip it)."""

    status: LockStatus
    ber: float
    ebn0_db: float
    doppler_hz: float
    doppler_rate_hz_s: float
    delay_s: float
    config: RfLinkConfig
    range_m: float
    elevation_deg: float

    @property
    def delivered(self) -> bool:
        return self.status is LockStatus.LOCKED

    def budget(self) -> LinkBudget:
        return link_budget(self.config, self.range_m, self.elevation_deg)


def rf_state(
    config: RfLinkConfig,
    t_since_aos_s: float,
    range_m: float,
    range_rate_m_s: float,
    range_accel_m_s2: float,
    elevation_deg: float,
) -> RfState:
    """Eb/N0, BER, Doppler, lock and delay for a unit emitted ``t_since_aos_s`` after AOS.

    The counterpart of `channels.optical.OpticalTerminal.unit`; for re-acquisition after
    a loss of lock within a pass use a `ReceiverTracker` with the returned Doppler rate
    and Eb/N0 instead of ``status``."""
    ebn0 = _terms(config, range_m, elevation_deg)[3]
    rate = doppler_rate_hz_s(config.freq_hz, range_accel_m_s2)
    return RfState(
        config.receiver.status(t_since_aos_s, rate, ebn0),
        ber_from_ebn0(ebn0, config.modulation),
        ebn0,
        doppler_hz(config.freq_hz, range_rate_m_s),
        rate,
        propagation_delay_s(range_m),
        config,
        range_m,
        elevation_deg,
    )


# ----------------------------------------------------------------------------- presets

# S-band TC uplink. Ground: a 3 m-class dish (33.7 dBi at 2.07 GHz, 55 % efficiency)
# driven by a 5 W amplifier (7 dBW), 1 dB of feed and line loss: EIRP 40 dBW.
# Satellite: a low-gain patch, ~0 dBi over the hemisphere it must cover (the satellite
# need not point at the station), system noise ~600 K (Earth in view, LNA NF ~2.5 dB):
# G/T = 0 - 27.8 = -28 dB/K. BPSK at 64 kbps-2 Mbps, default 256 kbps.
S_BAND_UPLINK_RATES_BPS = (64e3, 2e6)
# X-band payload downlink. Satellite: a few-watt smallsat transmitter (4 W, 6 dBW) into
# a small horn or patch array (15 dBi), 1 dB line loss: EIRP 20 dBW. Ground: a 5-6 m
# dish (about 51 dBi at 8.2 GHz) with a cooled-LNA system noise near 180 K at low
# elevation: G/T 28 dB/K, inside the 20-30 dB/K range of 3-7 m X-band stations.
# QPSK at 50-300 Mbps, default 150 Mbps. Receiver loop B_L 200 Hz (~12 kHz/s) for the
# ~3 kHz/s Doppler rate of an overhead pass at 500 km (~5 kHz/s at 300 km).
X_BAND_DOWNLINK_RATES_BPS = (50e6, 300e6)


def _check_rate(where: str, rate_bps: float, rates: tuple[float, float]) -> None:
    lo, hi = rates
    if not lo <= _positive(where, "rate_bps", rate_bps) <= hi:
        raise ConfigError(
            where, "rate_bps", f"must be in {lo:g}..{hi:g} bps for this preset, got {rate_bps!r}"
        )


def s_band_uplink(
    *, freq_hz: float = 2_067.5e6, rate_bps: float = 256e3, **changes: object
) -> RfLinkConfig:
    """The S-band uplink preset; other `RfLinkConfig` fields may be overridden by name."""
    _check_rate("rf.s_band_uplink", rate_bps, S_BAND_UPLINK_RATES_BPS)
    base = RfLinkConfig(
        name="S-band uplink",
        band=S_BAND_UP,
        freq_hz=freq_hz,
        rate_bps=rate_bps,
        eirp_dbw=40.0,
        gt_db_per_k=-28.0,
        other_losses_db=3.0,
        modulation=Modulation.BPSK,
        receiver=ReceiverModel(acquisition_s=3.0),
    )
    return replace(base, **changes) if changes else base  # type: ignore[arg-type]


def x_band_downlink(
    *, freq_hz: float = 8_212.5e6, rate_bps: float = 150e6, **changes: object
) -> RfLinkConfig:
    """The X-band downlink preset; other `RfLinkConfig` fields may be overridden by name."""
    _check_rate("rf.x_band_downlink", rate_bps, X_BAND_DOWNLINK_RATES_BPS)
    base = RfLinkConfig(
        name="X-band downlink",
        band=X_BAND_DOWN,
        freq_hz=freq_hz,
        rate_bps=rate_bps,
        eirp_dbw=20.0,
        gt_db_per_k=28.0,
        other_losses_db=3.0,
        modulation=Modulation.QPSK,
        receiver=ReceiverModel(
            acquisition_s=3.0, max_doppler_rate_hz_s=pll_max_doppler_rate_hz_s(200.0)
        ),
    )
    return replace(base, **changes) if changes else base  # type: ignore[arg-type]


S_BAND_UPLINK = s_band_uplink()
X_BAND_DOWNLINK = x_band_downlink()
PRESETS: dict[str, RfLinkConfig] = {
    "s_band_uplink": S_BAND_UPLINK,
    "x_band_downlink": X_BAND_DOWNLINK,
}
