"""The scenario's onboard power: its ``[power]`` table.

    [power]
    enabled = false                  # on: each computing satellite's battery gates its inferences
    array_area_m2 = 1.2
    cell_efficiency = 0.30
    array_to_bus_efficiency = 0.85
    array_sun_factor = 1.0           # mean cos(Sun angle) on the array: 1 Sun-tracking
    battery_wh = 600.0
    dod_limit = 0.30                 # an inference may not take the battery below 70 %
    charge_efficiency = 0.95
    discharge_efficiency = 0.95
    bus_load_w = 120.0
    initial_charge = 1.0             # of the battery's capacity, when the run starts
    accelerator_busy_w = 60.0        # default: the [model] accelerator's power at load
    accelerator_idle_w = 15.0        # and at idle (payloads.accelerators)

Off by default, so that a run is what it was without a power model (and the contact
plan's sunlight, which only the power model needs, is not searched). On, the runtime
builds a :class:`payloads.power.PowerModel` per computing satellite from its sunlight
(:class:`linkstack.runtime.onboard_power.OnboardPower`) and the onboard endpoint asks
it before each inference. The accelerator's draw is the ``[model]`` accelerator's
(``power_load_w``, ``power_idle_w``) when one is named, else :class:`PowerParams`'
defaults (a Jetson AGX Orin's); the two keys replace either.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from linkstack.tomlcheck import Table
from payloads.power import PowerParams
from payloads.timing import InferenceTiming

# key in the file -> PowerParams field
_PARAM_KEYS = {
    "array_area_m2": "array_area_m2",
    "cell_efficiency": "cell_efficiency",
    "array_to_bus_efficiency": "array_to_bus_efficiency",
    "array_sun_factor": "array_sun_factor",
    "battery_wh": "battery_capacity_wh",
    "dod_limit": "dod_limit",
    "charge_efficiency": "charge_efficiency",
    "discharge_efficiency": "discharge_efficiency",
    "bus_load_w": "bus_load_w",
    "accelerator_busy_w": "accelerator_busy_w",
    "accelerator_idle_w": "accelerator_idle_w",
}
_UNIT_KEYS = {  # fractions
    "cell_efficiency",
    "array_to_bus_efficiency",
    "array_sun_factor",
    "dod_limit",
    "charge_efficiency",
    "discharge_efficiency",
}


@dataclass(frozen=True)
class PowerSettings:
    """Whether the computing satellites' batteries gate their inferences, and their
    power systems (one :class:`PowerParams` for all)."""

    enabled: bool = False
    params: PowerParams = field(default_factory=PowerParams)
    initial_charge: float = 1.0  # state of charge at the start, of the capacity


def with_accelerator(params: PowerParams, timing: InferenceTiming | None) -> PowerParams:
    """``params`` with the accelerator's power at load and idle, when one is modelled."""
    if timing is None:
        return params
    acc = timing.accelerator
    return replace(params, accelerator_busy_w=acc.power_load_w, accelerator_idle_w=acc.power_idle_w)


def read_power(t: Table, timing: InferenceTiming | None) -> PowerSettings:
    """The ``[power]`` table (``timing``: the ``[model]`` table's, whose accelerator's
    power is the default draw); refuses unknown keys."""
    base = PowerSettings()
    enabled = t.boolean("enabled", base.enabled)
    params = with_accelerator(base.params, timing)
    values = {}
    for key, name in _PARAM_KEYS.items():
        default = getattr(params, name)
        if key in _UNIT_KEYS:
            values[name] = t.number(key, default, 0.0, 1.0, lo_open=key.endswith("efficiency"))
        else:
            values[name] = t.number(key, default, 0.0, 1e9, lo_open=key == "battery_wh")
    initial = t.number("initial_charge", base.initial_charge, 0.0, 1.0)
    t.done()
    with t.wrapping({name: key for key, name in _PARAM_KEYS.items()}):
        return PowerSettings(enabled, replace(params, **values), initial)
