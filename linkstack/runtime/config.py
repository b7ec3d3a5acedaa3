"""What to emulate: the configuration of a run, in process or as daemons."""

from __future__ import annotations

from dataclasses import dataclass, field

from channels.optical import OPTICAL_ISL_100G, OpticalTerminal
from channels.rf import S_BAND_UPLINK, X_BAND_DOWNLINK, RfLinkConfig
from channels.scenarios import Scenario
from linkstack.runtime.cop1_link import UplinkConfig
from payloads.client import ClientConfig
from payloads.service import ServiceConfig


@dataclass(frozen=True)
class EmulationConfig:
    """What to emulate. Losses and BER floors are injected on top of the physics."""

    scenario: str | Scenario = "default"
    backend: str = "tiny"  # a make_backend spec (ignored when a Backend is passed)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
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
