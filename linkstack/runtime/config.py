"""What to emulate: the configuration of a run, in process or as daemons."""

from __future__ import annotations

from dataclasses import dataclass, field

from channels.optical import OPTICAL_ISL_100G, OpticalTerminal
from channels.rf import S_BAND_UPLINK, X_BAND_DOWNLINK, RfLinkConfig
from channels.scenarios import Scenario
from linkstack.errors import ConfigError
from linkstack.runtime.power_settings import PowerSettings
from linkstack.runtime.uplink_config import UplinkConfig
from payloads.client import ClientConfig
from payloads.service import ServiceConfig

DISPATCH_POLICIES = ("load", "earliest_completion")


@dataclass(frozen=True)
class DispatchConfig:
    """How the mission control hands queries to the satellites
    (:class:`~linkstack.runtime.mission_control.MissionControl`)."""

    # queries waiting on the ground (not yet uplinked); one more is refused ground_queue_full
    max_waiting: int = 100_000
    # queries in flight (uplinked, not yet answered) per computing satellite; None: what
    # its service holds, ServiceConfig.concurrency + ServiceConfig.max_queued
    capacity: int | None = None
    # a satellite that refused a query busy gets nothing new for this long, doubled for
    # each busy in a row (up to max_busy_hold_s) until one of its answers comes down
    busy_hold_s: float = 2.0
    max_busy_hold_s: float = 120.0
    # while queries wait for room, look again at least this often (a satellite may
    # come into reach); an answer coming down makes room at once
    recheck_s: float = 10.0
    # a query that left the ground is sent again (same id) once its answer is this much
    # later than the round trip its route, the contact plan and the target's recent
    # compute times make expected (MissionControl.answer_due_t_s): laser links and the
    # relays have no retransmission of their own
    answer_margin_s: float = 30.0
    # which computing satellite an "any" query goes to: "load" (the fewest in flight,
    # then routing.spread_rank) or "earliest_completion" (the earliest expected answer
    # on the ground: Expectations.completion_t_s, then the same rank)
    policy: str = "load"

    def __post_init__(self) -> None:
        where = "DispatchConfig"
        if self.policy not in DISPATCH_POLICIES:
            raise ConfigError(where, "policy", f"one of {DISPATCH_POLICIES}, got {self.policy!r}")
        if not isinstance(self.max_waiting, int) or self.max_waiting < 0:
            raise ConfigError(where, "max_waiting", f"must be >= 0, got {self.max_waiting!r}")
        if self.capacity is not None and (not isinstance(self.capacity, int) or self.capacity < 1):
            raise ConfigError(where, "capacity", f"must be >= 1 or None, got {self.capacity!r}")
        for name in ("busy_hold_s", "max_busy_hold_s", "recheck_s", "answer_margin_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(where, name, f"must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class EmulationConfig:
    """What to emulate. Losses and BER floors are injected on top of the physics."""

    scenario: str | Scenario = "default"
    backend: str = "tiny"  # a make_backend spec (ignored when a Backend is passed)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    uplink: UplinkConfig = field(default_factory=UplinkConfig)  # scid set per satellite
    uplink_rf: RfLinkConfig = S_BAND_UPLINK
    downlink_rf: RfLinkConfig = X_BAND_DOWNLINK
    laser: OpticalTerminal = OPTICAL_ISL_100G
    linger_s: float = 2.0  # TM keeps coming this long after the last traffic of a pass
    uplink_loss: float = 0.0
    downlink_loss: float = 0.0
    uplink_ber: float = 0.0  # a floor under the link budget's BER
    downlink_ber: float = 0.0
    scid_base: int = 0x40
    seed: int = 0
    computing: tuple[str, ...] | None = None  # satellites with a model (None: all)
    # each computing satellite's battery gates its inferences (off: no power model)
    power: PowerSettings = field(default_factory=PowerSettings)
