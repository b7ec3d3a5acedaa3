"""A satellite's electrical power, sans-I/O: solar array, battery and loads, stepped
through sunlight and eclipse, and the question the onboard scheduler asks before an
inference: can the battery carry it now, and if not, when? (:meth:`PowerModel.schedule`
answers it and books the inference.)

Why here (``payloads/``), not in ``channels/``: the one who asks is the onboard
endpoint (``payloads/service.py``), and ``payloads/`` may import nothing of the
project but the base. The model needs no geometry: the sunlight comes in as plain
spans (start, stop, fraction of the Sun's disc seen), which the layer above makes
from :func:`channels.contacts.sunlight_intervals`, and the accelerator's power as
plain numbers (the accelerator profiles' ``power_load_w`` and ``power_idle_w``).

The model, and what it assumes:

- Solar array: P = S x area x cell efficiency x array-to-bus efficiency x cos(Sun
  angle) x the fraction of the Sun's disc seen. S, the solar constant, is taken at
  1 AU all year (the real flux swings +/-3.4 % with the Earth's distance). The
  default attitude is Sun-tracking arrays (``array_sun_factor`` = 1); for arrays
  fixed on the body give the mean cosine of the Sun angle over the sunlit arc,
  which the mission's attitude sets. Temperature, radiation ageing and the array's
  own voltage limits are left out (take them into the efficiencies).
- Battery: a store of ``battery_capacity_wh`` with a state of charge in Wh. What
  goes in is the surplus times ``charge_efficiency``; what comes out to cover a
  deficit D costs D / ``discharge_efficiency``; no charge-rate limit. Full, the
  surplus is shunted; empty, the load not served is counted (``unserved_wh``: a
  brownout the real bus would prevent by shedding load). The depth-of-discharge
  limit is a floor, ``floor_wh`` = capacity x (1 - ``dod_limit``), that an
  inference must not take the battery below (:meth:`PowerModel.can_sustain`).
- Loads: the bus (platform, radios, heaters: constant, ``bus_load_w``) and the
  accelerator, idle or working: at ``accelerator_busy_w`` flat out, or in between
  at the utilisation the timing model gives (:meth:`PowerParams.accelerator_w`).

Between two events (an edge of sunlight, the start or end of an inference) every
power is constant, so the state of charge is piecewise linear and each step is
exact: :class:`EnergyLedger` accounts for every watt-hour (generated = served +
shunted + lost in charge and discharge + the change stored).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import NamedTuple

from linkstack.errors import ConfigError

SOLAR_CONSTANT_W_M2 = 1361.0  # total solar irradiance at 1 AU (Kopp and Lean 2011)
_S_PER_H = 3600.0
_BISECT_TOLERANCE_S = 1e-3


@dataclass(frozen=True)
class PowerParams:
    """One satellite's power system. Defaults are a stated assumption for a ~100 kg
    computing satellite (see the README's "Power" section for the reasoning), not
    any operator's published figures: override them."""

    array_area_m2: float = 1.2
    cell_efficiency: float = 0.30  # triple-junction GaAs cells, beginning of life
    array_to_bus_efficiency: float = 0.85  # packing, wiring, regulation (MPPT)
    array_sun_factor: float = 1.0  # cos(Sun angle) on the array: 1 for Sun-tracking arrays
    solar_constant_w_m2: float = SOLAR_CONSTANT_W_M2
    battery_capacity_wh: float = 600.0
    dod_limit: float = 0.30  # an inference may not take the battery below 70 %
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    bus_load_w: float = 120.0
    accelerator_busy_w: float = 60.0  # a Jetson AGX Orin's top power mode
    accelerator_idle_w: float = 15.0

    def __post_init__(self) -> None:
        limits = {
            "cell_efficiency": (0.0, 1.0),
            "array_to_bus_efficiency": (0.0, 1.0),
            "array_sun_factor": (0.0, 1.0),
            "dod_limit": (0.0, 1.0),
            "charge_efficiency": (1e-3, 1.0),
            "discharge_efficiency": (1e-3, 1.0),
            "battery_capacity_wh": (1e-3, 1e9),
        }
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = limits.get(f.name, (0.0, 1e9))
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError("power", f.name, f"must be a number, got {value!r}")
            if not math.isfinite(value) or not lo <= value <= hi:
                raise ConfigError("power", f.name, f"must be in {lo:g}..{hi:g}, got {value!r}")

    @property
    def array_power_w(self) -> float:
        """What the array delivers to the bus in full sunlight."""
        return (
            self.solar_constant_w_m2
            * self.array_area_m2
            * self.cell_efficiency
            * self.array_to_bus_efficiency
            * self.array_sun_factor
        )

    def accelerator_w(self, utilisation: float = 1.0) -> float:
        """The accelerator's draw while it works at ``utilisation`` (0..1, from the
        timing model: :meth:`payloads.timing.InferenceTiming.utilisation`): its idle
        power plus that share of the span to its busy power."""
        if not 0.0 <= utilisation <= 1.0:
            raise ConfigError("power", "utilisation", f"must be in 0..1, got {utilisation!r}")
        idle = self.accelerator_idle_w
        return idle + (max(self.accelerator_busy_w, idle) - idle) * utilisation

    @property
    def floor_wh(self) -> float:
        """The lowest state of charge an inference may leave: the DoD limit."""
        return self.battery_capacity_wh * (1.0 - self.dod_limit)


class LightSpan(NamedTuple):
    """A time over which the satellite sees ``fraction`` of the Sun's disc (1
    sunlit, 0 umbra, the penumbra's mean in between)."""

    start_t_s: float
    stop_t_s: float
    fraction: float


@dataclass
class EnergyLedger:
    """Every watt-hour since the model started, by where it went."""

    generated_wh: float = 0.0  # the array's output at the bus
    served_wh: float = 0.0  # consumed by the loads
    shunted_wh: float = 0.0  # surplus with the battery full
    charge_loss_wh: float = 0.0
    discharge_loss_wh: float = 0.0
    unserved_wh: float = 0.0  # load not served: the battery was empty

    def add(self, other: EnergyLedger) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class _Step(NamedTuple):
    soc_wh: float
    min_soc_wh: float


class PowerModel:
    """The state of charge of one satellite's battery, moved forward in time.

    ``sunlight``: spans that tile the time the model will be asked about, in order
    (:class:`LightSpan`, or any (start, stop, fraction) triples); ``t_s``, ``soc_wh``:
    where it starts (full by default). Asking about a time outside the spans is an
    error (a :class:`ConfigError` naming it)."""

    def __init__(
        self,
        params: PowerParams,
        sunlight: Iterable[tuple[float, float, float]],
        *,
        t_s: float | None = None,
        soc_wh: float | None = None,
    ) -> None:
        self.params = params
        spans = [LightSpan(float(a), float(b), float(f)) for a, b, f in sunlight]
        if not spans:
            raise ConfigError("power", "sunlight", "no spans given")
        for prev, span in itertools.pairwise(spans):
            if span.start_t_s != prev.stop_t_s:
                raise ConfigError(
                    "power", "sunlight", f"spans must tile time: a gap or overlap at {span}"
                )
        for span in spans:
            if not span.stop_t_s > span.start_t_s or not 0.0 <= span.fraction <= 1.0:
                raise ConfigError("power", "sunlight", f"bad span {span}")
        self.spans = tuple(spans)
        self._starts = [s.start_t_s for s in spans]
        self.t_s = spans[0].start_t_s if t_s is None else float(t_s)
        self._check_time(self.t_s)
        cap = params.battery_capacity_wh
        self.soc_wh = cap if soc_wh is None else float(soc_wh)
        if not 0.0 <= self.soc_wh <= cap:
            raise ConfigError("power", "soc_wh", f"must be in 0..{cap:g}, got {soc_wh!r}")
        self.ledger = EnergyLedger()
        self.min_soc_wh = self.soc_wh

    @property
    def end_t_s(self) -> float:
        return self.spans[-1].stop_t_s

    def extend(self, sunlight: Iterable[tuple[float, float, float]]) -> None:
        """More sunlight, continuing the spans known (the next begins where they end),
        as the contact plan grows; the spans wholly before the model's time are let go
        (a daemon runs for ever)."""
        more = [LightSpan(float(a), float(b), float(f)) for a, b, f in sunlight]
        for prev, span in itertools.pairwise([self.spans[-1], *more]):
            if span.start_t_s != prev.stop_t_s:
                raise ConfigError(
                    "power", "sunlight", f"spans must tile time: a gap or overlap at {span}"
                )
            if not span.stop_t_s > span.start_t_s or not 0.0 <= span.fraction <= 1.0:
                raise ConfigError("power", "sunlight", f"bad span {span}")
        keep = [s for s in self.spans if s.stop_t_s > self.t_s] or [self.spans[-1]]
        self.spans = (*keep, *more)
        self._starts = [s.start_t_s for s in self.spans]

    def _check_time(self, t_s: float) -> None:
        if not self.spans[0].start_t_s <= t_s <= self.end_t_s:
            raise ConfigError(
                "power",
                "t_s",
                f"{t_s:g} is outside the sunlight known "
                f"({self.spans[0].start_t_s:g}..{self.end_t_s:g})",
            )

    def observe(self, t_s: float, soc_wh: float) -> bool:
        """The charge ``soc_wh`` the satellite reported for ``t_s`` (a ground's copy of
        its model, corrected by each report); a report older than the model's time is
        ignored. Whether it was taken. The ledger does not follow a correction."""
        if t_s < self.t_s:
            return False
        self._check_time(t_s)
        cap = self.params.battery_capacity_wh
        self.t_s, self.soc_wh = float(t_s), min(max(float(soc_wh), 0.0), cap)
        self.min_soc_wh = min(self.min_soc_wh, self.soc_wh)
        return True

    def load_w(self, busy: bool) -> float:
        p = self.params
        return p.bus_load_w + (p.accelerator_busy_w if busy else p.accelerator_idle_w)

    # --- stepping ---------------------------------------------------------------------

    def advance(
        self, t_s: float, *, busy: bool = False, accelerator_w: float | None = None
    ) -> None:
        """Move to ``t_s`` with the accelerator busy or idle over the whole step
        (``accelerator_w``: its draw, in place of the profile's busy or idle figure)."""
        if t_s < self.t_s:
            raise ConfigError("power", "t_s", f"cannot go back from {self.t_s:g} to {t_s:g}")
        self._check_time(t_s)
        load = (
            self.load_w(busy)
            if accelerator_w is None
            else self.params.bus_load_w + float(accelerator_w)
        )
        step = self._run(self.soc_wh, self.t_s, t_s, load, self.ledger)
        self.t_s, self.soc_wh = t_s, step.soc_wh
        self.min_soc_wh = min(self.min_soc_wh, step.min_soc_wh)

    def _run(
        self, soc: float, t0: float, t1: float, load_w: float, ledger: EnergyLedger | None
    ) -> _Step:
        """The state of charge after [t0, t1] at a constant load, exactly (piecewise
        linear), and its lowest point on the way."""
        p = self.params
        cap, eta_c, eta_d = p.battery_capacity_wh, p.charge_efficiency, p.discharge_efficiency
        low = soc
        i = max(0, bisect.bisect_right(self._starts, t0) - 1)
        t = t0
        while t < t1:
            span = self.spans[i]
            end = min(span.stop_t_s, t1)
            dt_h = (end - t) / _S_PER_H
            gen_w = p.array_power_w * span.fraction
            net_w = gen_w - load_w
            if ledger is not None:
                ledger.generated_wh += gen_w * dt_h
            if net_w >= 0.0:
                to_full_h = (cap - soc) / (eta_c * net_w) if net_w > 0 else math.inf
                charging_h = min(dt_h, to_full_h)
                stored = eta_c * net_w * charging_h
                if ledger is not None:
                    ledger.served_wh += load_w * dt_h
                    ledger.charge_loss_wh += (1.0 - eta_c) * net_w * charging_h
                    ledger.shunted_wh += net_w * (dt_h - charging_h)
                soc = cap if charging_h == to_full_h else soc + stored
            else:
                deficit_w = -net_w
                to_empty_h = soc * eta_d / deficit_w
                drawing_h = min(dt_h, to_empty_h)
                if ledger is not None:
                    ledger.served_wh += load_w * dt_h - deficit_w * (dt_h - drawing_h)
                    ledger.unserved_wh += deficit_w * (dt_h - drawing_h)
                    ledger.discharge_loss_wh += deficit_w * drawing_h * (1.0 / eta_d - 1.0)
                soc = 0.0 if drawing_h == to_empty_h else soc - deficit_w * drawing_h / eta_d
                low = min(low, soc)
            t = end
            i += 1
        return _Step(soc, low)

    # --- the scheduler's question ------------------------------------------------------

    def can_sustain(
        self, power_w: float, duration_s: float, *, at_t_s: float | None = None
    ) -> bool:
        """Can the accelerator draw ``power_w`` (in place of its idle power) for
        ``duration_s`` from now (or from ``at_t_s``, idle until then) without the
        battery going under the DoD limit during it?"""
        return self._min_during(power_w, duration_s, self.t_s if at_t_s is None else at_t_s) >= (
            self.params.floor_wh - 1e-9
        )

    def _min_during(self, power_w: float, duration_s: float, start_t_s: float) -> float:
        if not duration_s >= 0.0 or not math.isfinite(duration_s):
            raise ConfigError("power", "duration_s", f"must be >= 0, got {duration_s!r}")
        if start_t_s < self.t_s:
            raise ConfigError("power", "at_t_s", f"is before now ({self.t_s:g})")
        self._check_time(start_t_s + duration_s)
        soc = self.soc_wh
        if start_t_s > self.t_s:
            soc = self._run(soc, self.t_s, start_t_s, self.load_w(False), None).soc_wh
        busy = self.params.bus_load_w + float(power_w)
        return self._run(soc, start_t_s, start_t_s + duration_s, busy, None).min_soc_wh

    def earliest_start(
        self, power_w: float, duration_s: float, *, step_s: float = 10.0
    ) -> float | None:
        """The earliest instant from now at which an inference drawing ``power_w``
        for ``duration_s`` keeps the battery above the DoD limit (now, if it can start
        now), the accelerator idle until then; None if no start within the sunlight
        known does. The starts tried are now, every ``step_s``, and the instants where
        the sunlight changes under the start or the end of the inference; the first
        that works is brought earlier by bisection to 1 ms. (A start that works only
        for less than ``step_s`` between two that do not can be missed: the answer
        is then later than it could be, never one that drains the battery.)"""
        now = self.t_s
        last = self.end_t_s - duration_s
        if last < now:
            return None
        if self.can_sustain(power_w, duration_s):
            return now
        edges = [s.stop_t_s for s in self.spans]
        candidates = {now + k * step_s for k in range(1, int((last - now) // step_s) + 1)}
        candidates.update(e for e in edges if now < e <= last)
        candidates.update(e - duration_s for e in edges if now < e - duration_s <= last)
        candidates.add(last)
        before = now
        for c in sorted(candidates):
            if self.can_sustain(power_w, duration_s, at_t_s=c):
                lo, hi = before, c
                while hi - lo > _BISECT_TOLERANCE_S:
                    mid = 0.5 * (lo + hi)
                    if self.can_sustain(power_w, duration_s, at_t_s=mid):
                        hi = mid
                    else:
                        lo = mid
                return hi
            before = c
        return None

    def schedule(self, t_s: float, power_w: float, duration_s: float) -> float | None:
        """An inference asked for at ``t_s``: the accelerator idle until the earliest
        start that keeps the battery above the DoD limit (:meth:`earliest_start`),
        then busy at ``power_w`` for ``duration_s``; the model is moved to its end and
        the start returned (start - ``t_s`` is the query's ``power_wait``). Asked for
        while a previous one is still running (``t_s`` before the model's time), it
        queues behind it. None, and the model left at ``t_s``, if no start within the
        sunlight known can carry it."""
        if t_s > self.t_s:
            self.advance(t_s)
        start = self.earliest_start(power_w, duration_s)
        if start is None:
            return None
        self.advance(start)
        self.advance(start + duration_s, accelerator_w=power_w)
        return start
