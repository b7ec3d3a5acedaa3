"""Link models: orbital geometry plus link physics, as the conditions a Link asks for.

:class:`RfLinkModel` is one RF direction between a ground station and a
satellite (an S-band uplink, an X-band downlink): at each emission time it
takes the look angles from :class:`channels.orbit.StationView`, says whether the
satellite is above the station's mask, how long ago the pass began (the
receiver acquires the carrier at the start of every pass, and again after any
loss of lock), and computes Eb/N0, the bit error rate, the Doppler shift and
rate, and the propagation delay, all at that instant.

:class:`LaserLinkModel` is one direction of an inter-satellite laser link: line
of sight clear of the Earth and its atmosphere, range under the terminal's
reach, pointing-acquisition time after the link comes into view, pointing
jitter outages.

When a pass or a window began comes from the contact plan when the model is given
it (``pass_start``, ``window_start``: the emulation and the daemons give theirs,
so that the links and the routes see the same passes, computed once); a model on
its own finds it from the geometry (:class:`VisibilityTracker`).

Both give :class:`channels.link.Conditions`; their ``reason`` when a unit is
lost is one of ``no_contact`` (below the mask), ``acquiring``,
``doppler_rate``, ``low_ebn0`` (RF), or the optical statuses (``no_los``,
``out_of_range``, ``acquiring``, ``pointing_jitter``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace

from channels.link import Conditions, LinkModel
from channels.optical import OpticalStatus, OpticalTerminal
from channels.orbit import IslView, StationView
from channels.rf import (
    LockStatus,
    ReceiverTracker,
    RfLinkConfig,
    ber_from_ebn0,
    doppler_hz,
    doppler_rate_hz_s,
    ebn0_db,
    propagation_delay_s,
)
from linkstack.errors import ConfigError

# When the period of visibility that contains an instant began (the AOS of a pass,
# the start of a laser window), or None if the instant is in none.
StartOf = Callable[[float], float | None]


class VisibilityTracker:
    """When did the current period of visibility begin?

    ``visible(t_s)`` is the geometry's verdict at one instant. Asked about a
    visible instant, :meth:`start_of` returns the moment visibility began,
    found by stepping back ``step_s`` at a time and bisecting to ``tol_s``, and
    remembered while the calls stay inside the same period (links ask at
    non-decreasing times). Calls further apart than ``same_period_s`` search
    again; a search that finds the period reaching back to the last call is the
    same period. A period longer than ``max_lookback_s`` starts, as far as this
    tracker knows, ``max_lookback_s`` ago (a laser link that was always in view).
    """

    def __init__(
        self,
        visible: Callable[[float], bool],
        step_s: float = 10.0,
        tol_s: float = 1e-3,
        max_lookback_s: float = 6 * 3600.0,
        same_period_s: float = 60.0,
    ) -> None:
        self.visible = visible
        self.step_s = step_s
        self.tol_s = tol_s
        self.max_lookback_s = max_lookback_s
        self.same_period_s = same_period_s
        self.periods = 0  # how many periods of visibility began (passes seen)
        self._start: float | None = None
        self._last: float | None = None

    def start_of(self, t_s: float) -> tuple[float, bool]:
        """(start of the visibility period that contains ``t_s``, is it new)."""
        last = self._last
        if (
            self._start is not None
            and last is not None
            and last <= t_s <= last + self.same_period_s
        ):
            self._last = t_s
            return self._start, False
        start = self._search(t_s)
        if self._start is not None and last is not None and start - self.tol_s <= last:
            # asked again after a while: visible all the way back to the last call's
            # instant, so the same period as then (with the start found then)
            self._last = t_s
            return self._start, False
        self._start, self._last = start, t_s
        self.periods += 1
        return start, True

    def _search(self, t_s: float) -> float:
        hi = t_s  # visible
        lo = t_s - self.step_s
        while self.visible(lo):
            hi = lo
            lo -= self.step_s
            if t_s - lo > self.max_lookback_s:
                return t_s - self.max_lookback_s
        while hi - lo > self.tol_s:
            mid = 0.5 * (lo + hi)
            if self.visible(mid):
                hi = mid
            else:
                lo = mid
        return hi


class RfLinkModel:
    """One RF direction between a ground station and a satellite (see the module doc).

    ``pass_start``: when the pass in progress at an instant began (None: in none),
    from the contact plan that the routes use too; without it the model finds the
    start of each pass itself, from the geometry."""

    def __init__(
        self,
        view: StationView,
        config: RfLinkConfig,
        mask_deg: float | None = None,
        *,
        pass_start: StartOf | None = None,
    ) -> None:
        self.view = view
        self.config = config
        self.station = view.station.name
        self.mask_deg = view.station.min_elevation_deg if mask_deg is None else mask_deg
        if not 0.0 <= self.mask_deg <= 90.0:
            raise ConfigError("RfLinkModel", "mask_deg", f"must be in 0..90, got {self.mask_deg}")
        self.pass_start = pass_start or self._tracked_start()
        self.receiver = ReceiverTracker(config.receiver)
        self._aos_s: float | None = None

    def _tracked_start(self) -> StartOf:
        passes = VisibilityTracker(lambda t: self.view.at(t).elevation_deg >= self.mask_deg)
        return lambda t_s: passes.start_of(t_s)[0]

    def conditions(self, t_s: float) -> Conditions:
        cfg = self.config
        look = self.view.at(t_s)
        delay_s = propagation_delay_s(look.range_m)
        fd = doppler_hz(cfg.freq_hz, look.range_rate_mps)
        aos_s = self.pass_start(t_s) if look.elevation_deg >= self.mask_deg else None
        if aos_s is None:
            return Conditions(
                False, cfg.rate_bps, delay_s, 0.0, "no_contact",
                look.range_m, look.range_rate_mps, look.elevation_deg, fd, via=self.station,
            )  # fmt: skip
        if aos_s != self._aos_s:  # a new pass: the receiver acquires the carrier
            self._aos_s = aos_s
            self.receiver.start_pass(aos_s)
        ebn0 = ebn0_db(cfg, look.range_m, look.elevation_deg)
        status = self.receiver.update(
            t_s, doppler_rate_hz_s(cfg.freq_hz, look.range_accel_mps2), ebn0
        )
        locked = status is LockStatus.LOCKED
        return Conditions(
            locked,
            cfg.rate_bps,
            delay_s,
            ber_from_ebn0(ebn0, cfg.modulation) if locked else 0.0,
            "" if locked else status.value,
            look.range_m,
            look.range_rate_mps,
            look.elevation_deg,
            fd,
            ebn0,
            self.station,
        )


class LaserLinkModel:
    """One direction of an inter-satellite laser link (see the module doc).

    ``seed`` makes the pointing-jitter outages reproducible. ``window_start``: when
    the window in view at an instant began (minus infinity: before anyone looked;
    None: in none), from the contact plan that the routes use too; without it the
    model finds it itself, from the geometry.
    """

    def __init__(
        self,
        view: IslView,
        terminal: OpticalTerminal,
        seed: int = 0,
        *,
        window_start: StartOf | None = None,
    ) -> None:
        self.view = view
        self.terminal = terminal
        self.rng = random.Random(seed)
        self.window_start = window_start or self._tracked_start()

    def _tracked_start(self) -> StartOf:
        periods = VisibilityTracker(self._in_view, step_s=30.0)
        return lambda t_s: periods.start_of(t_s)[0]

    def _in_view(self, t_s: float) -> bool:
        look = self.view.at(t_s)
        return look.clear and look.range_m <= self.terminal.max_range_m

    def conditions(self, t_s: float) -> Conditions:
        term = self.terminal
        look = self.view.at(t_s)
        delay_s = propagation_delay_s(look.range_m)
        start_s = (
            self.window_start(t_s) if look.clear and look.range_m <= term.max_range_m else None
        )
        since_s = 0.0 if start_s is None else t_s - start_s
        status = term.status(since_s, look.range_m, look.clear, self.rng)
        up = status is OpticalStatus.DELIVERED
        return Conditions(
            up,
            term.rate_bps,
            delay_s,
            term.ber if up else 0.0,
            "" if up else status.value,
            look.range_m,
            look.range_rate_mps,
        )


class SampledModel:
    """A link model asked once every ``step_s`` of emission time instead of once a unit,
    for a link that runs in real time at thousands of units a second (the channel
    daemon): a unit gets the conditions at the start of its step, with the larger of
    the propagation delays at the step's two ends, so that it is never early (it is
    late by at most the range's change over one step: 25 ns for 1 ms at 7.5 km/s). A
    change of state (a loss of lock, LOS) takes effect at a step boundary. Times must
    not go back, as for the models it wraps."""

    def __init__(self, model: LinkModel, step_s: float = 1e-3) -> None:
        if not step_s > 0:
            raise ConfigError("SampledModel", "step_s", f"must be positive, got {step_s}")
        self.model = model
        self.step_s = step_s
        self._start_s = math.inf  # the step the cached conditions hold for
        self._cond: Conditions | None = None
        self._next: tuple[float, Conditions] | None = None  # the model at the step's end

    def conditions(self, t_s: float) -> Conditions:
        cond = self._cond
        if cond is not None and self._start_s <= t_s < self._start_s + self.step_s:
            return cond
        step = self.step_s
        start_s = math.floor(t_s / step) * step
        nxt = self._next
        first = nxt[1] if nxt is not None and nxt[0] == start_s else self.model.conditions(start_s)
        last = self.model.conditions(start_s + step)
        self._next = (start_s + step, last)
        if last.delay_s > first.delay_s:
            first = replace(first, delay_s=last.delay_s)
        self._start_s, self._cond = start_s, first
        return first
