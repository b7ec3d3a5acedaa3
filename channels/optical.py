"""Laser links: inter-satellite links (ISL) and an optional optical ground link.

The same shape as `channels.rf`: the geometry (line of sight, range, elevation) comes
in as inputs, and `OpticalTerminal.unit` says whether one unit gets through, and if not
why, with the BER to inject when it does and the one-way delay.

Model of a terminal:
- a link carries data only after pointing, acquisition and tracking (PAT), ``pat_s``
  after the far terminal came into view (line of sight and range within reach);
  the caller measures that time from the start of the current visibility interval;
- it is up only while ``line_of_sight`` holds and ``range_m <= max_range_m``;
- pointing jitter makes short fades: each unit is lost independently with probability
  ``jitter_outage_prob`` (per unit, not per second: for units much shorter than a fade,
  as here — a 1119-octet CADU lasts 90 ns at 100 Gbps against fades of milliseconds — it
  is the fraction of time the link spends faded);
- the bits that do arrive carry a constant residual BER ``ber`` (default 1e-12): optical
  ISLs run with strong FEC and are error-free or down, not in between.

Defaults: 100 Gbps is the ISL rate reported for the reference 12-satellite computing
constellation (2025); 10 and 1 Gbps are the classes of the commercial LEO terminals.
PAT of tens of seconds is the order reported for LEO terminals (faster with good
ephemerides). The 5,000 km reach and the outage probability are modelling choices,
not reported figures.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from channels.rf import _between, _non_negative, _positive, propagation_delay_s
from linkstack.errors import ConfigError


class UniformSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1): `random.Random`, numpy's Generator."""

    def random(self) -> float: ...


class OpticalStatus(StrEnum):
    """Whether a unit gets through the laser link, and if not, why."""

    DELIVERED = "delivered"
    NO_LOS = "no_los"  # the Earth (or its atmosphere) is in the way
    OUT_OF_RANGE = "out_of_range"  # farther than the terminal reaches
    LOW_ELEVATION = "low_elevation"  # ground link: below the station's elevation mask
    CLOUDS = "clouds"  # ground link: this pass is clouded out
    ACQUIRING = "acquiring"  # pointing, acquisition and tracking under way
    POINTING_JITTER = "pointing_jitter"  # a short fade lost this unit

    @property
    def delivered(self) -> bool:
        return self is OpticalStatus.DELIVERED


@dataclass(frozen=True)
class OpticalState:
    """What the link does to one unit: status, the BER to inject, the one-way delay."""

    status: OpticalStatus
    ber: float
    delay_s: float

    @property
    def delivered(self) -> bool:
        return self.status.delivered


@dataclass(frozen=True)
class OpticalTerminal:
    """A laser terminal pair (both ends alike)."""

    name: str = "laser ISL 100 Gbps"
    rate_bps: float = 100e9
    pat_s: float = 30.0
    max_range_m: float = 5_000e3
    jitter_outage_prob: float = 1e-5
    ber: float = 1e-12

    def __post_init__(self) -> None:
        where = "optical.OpticalTerminal"
        _positive(where, "rate_bps", self.rate_bps)
        _non_negative(where, "pat_s", self.pat_s)
        _positive(where, "max_range_m", self.max_range_m)
        _between(where, "jitter_outage_prob", self.jitter_outage_prob, 0.0, 1.0)
        _between(where, "ber", self.ber, 0.0, 0.5)

    def status(
        self, t_since_view_s: float, range_m: float, line_of_sight: bool, rng: UniformSource
    ) -> OpticalStatus:
        """Why a unit sent now does not get through, or DELIVERED. Draws from ``rng``
        only when the link is up, so a link that is down consumes no random numbers."""
        if not line_of_sight:
            return OpticalStatus.NO_LOS
        if not range_m <= self.max_range_m:
            return OpticalStatus.OUT_OF_RANGE
        if not t_since_view_s >= 0.0:
            raise ConfigError("optical.OpticalTerminal.status", "t_since_view_s", "must be >= 0")
        if t_since_view_s < self.pat_s:
            return OpticalStatus.ACQUIRING
        if self.jitter_outage_prob > 0.0 and rng.random() < self.jitter_outage_prob:
            return OpticalStatus.POINTING_JITTER
        return OpticalStatus.DELIVERED

    def unit(
        self, t_since_view_s: float, range_m: float, line_of_sight: bool, rng: UniformSource
    ) -> OpticalState:
        """Status, BER and delay for one unit emitted now (counterpart of `rf.rf_state`)."""
        return OpticalState(
            self.status(t_since_view_s, range_m, line_of_sight, rng),
            self.ber,
            propagation_delay_s(range_m),
        )


OPTICAL_ISL_100G = OpticalTerminal()
OPTICAL_ISL_10G = OpticalTerminal(name="laser ISL 10 Gbps", rate_bps=10e9)
OPTICAL_ISL_1G = OpticalTerminal(name="laser ISL 1 Gbps", rate_bps=1e9)


@functools.lru_cache(maxsize=4096)
def _cloud_draw(seed: int, pass_index: int) -> float:
    # A string seed is hashed with SHA-512 by random.Random: stable across runs and
    # platforms, and independent of the order in which passes are asked about.
    return random.Random(f"optical-clouds:{seed}:{pass_index}").random()


@dataclass(frozen=True)
class OpticalGroundLink:
    """A laser link between a satellite and an optical ground station.

    Clouds block a whole pass with probability ``cloud_block_prob``, drawn per pass from
    ``seed`` and the pass index (reproducible, whatever order passes are evaluated in).
    Default 0.5: about two thirds of the Earth is cloud-covered at any time (ISCCP,
    MODIS climatologies); optical stations are sited where it is clearer. Below
    ``min_elevation_deg`` the path through the atmosphere is too long and turbulent.
    """

    terminal: OpticalTerminal = OpticalTerminal(
        name="optical ground link 10 Gbps", rate_bps=10e9, max_range_m=2_500e3
    )
    min_elevation_deg: float = 20.0
    cloud_block_prob: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        where = "optical.OpticalGroundLink"
        if not isinstance(self.terminal, OpticalTerminal):
            raise ConfigError(where, "terminal", "must be an OpticalTerminal")
        _between(where, "min_elevation_deg", self.min_elevation_deg, 0.0, 90.0)
        _between(where, "cloud_block_prob", self.cloud_block_prob, 0.0, 1.0)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(where, "seed", f"must be an integer, got {self.seed!r}")

    def clouds_block(self, pass_index: int) -> bool:
        """Whether clouds block pass number ``pass_index`` (the same answer every time)."""
        return _cloud_draw(self.seed, pass_index) < self.cloud_block_prob

    def status(
        self,
        t_since_view_s: float,
        range_m: float,
        elevation_deg: float,
        pass_index: int,
        rng: UniformSource,
    ) -> OpticalStatus:
        if not elevation_deg >= self.min_elevation_deg:
            return OpticalStatus.LOW_ELEVATION
        if self.clouds_block(pass_index):
            return OpticalStatus.CLOUDS
        return self.terminal.status(t_since_view_s, range_m, True, rng)

    def unit(
        self,
        t_since_view_s: float,
        range_m: float,
        elevation_deg: float,
        pass_index: int,
        rng: UniformSource,
    ) -> OpticalState:
        """Status, BER and delay for one unit; ``t_since_view_s`` counts from the moment
        the satellite rose above ``min_elevation_deg`` in this pass."""
        return OpticalState(
            self.status(t_since_view_s, range_m, elevation_deg, pass_index, rng),
            self.terminal.ber,
            propagation_delay_s(range_m),
        )


OPTICAL_GROUND_10G = OpticalGroundLink()
