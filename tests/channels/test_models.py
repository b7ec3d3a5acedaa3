"""Link models over a real pass of the default scenario, carried by a Link in emulated time."""

import math
import random
from dataclasses import replace

import pytest

from channels.contacts import ground_windows
from channels.errors import IndependentErrors
from channels.link import Conditions, Link
from channels.models import LaserLinkModel, RfLinkModel, SampledModel, VisibilityTracker
from channels.optical import OPTICAL_ISL_100G
from channels.orbit import IslLook, IslView, StationView
from channels.rf import X_BAND_DOWNLINK, x_band_downlink
from channels.scenarios import default_scenario
from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk

C_MPS = 299_792_458.0


@pytest.fixture(scope="module")
def scenario():
    return default_scenario()


@pytest.fixture(scope="module")
def best_pass(scenario):
    station, sat = scenario.stations[0], scenario.satellites[0]
    windows = [
        w
        for w in ground_windows(scenario.fleet, [station], duration_s=86_400, samples=False)
        if w.satellite == sat.name
    ]
    return station, sat, max(windows, key=lambda w: w.max_elevation_deg)


def _run_pass(scenario, station, sat, window, config, every_s=0.5, margin_s=30.0, pass_start=None):
    async def main():
        clock = clk.make_clock(True, scenario.epoch)
        view = StationView(station, sat, scenario.epoch)
        model = RfLinkModel(view, config, pass_start=pass_start)
        got, events = [], []
        async with Link(
            "down", clock, model, IndependentErrors(seed=1), on_delivery=got.append
        ) as link:
            link.add_listener(events.append)
            t = window.aos_t_s - margin_s
            while t < window.los_t_s + margin_s:
                await clock.sleep_until(t)
                link.send(bytes(1279))
                t += every_s
            await link.drain()
        return got, events, link.stats, model

    return clk.run(main, emulated=True)


@pytest.mark.parametrize("source", ["geometry", "plan"])
def test_a_downlink_pass_follows_the_geometry(scenario, best_pass, source):
    station, sat, window = best_pass

    def from_plan(t_s):  # what the emulation gives: the contact plan's pass
        return window.aos_t_s if window.aos_t_s <= t_s < window.los_t_s else None

    plan = from_plan if source == "plan" else None
    got, events, stats, model = _run_pass(
        scenario, station, sat, window, X_BAND_DOWNLINK, pass_start=plan
    )
    # the pass start the model found by bisection (or was given) is the contact plan's AOS
    assert model.pass_start(window.aos_t_s + 30.0) == pytest.approx(window.aos_t_s, abs=0.01)
    # nothing before AOS, then 3 s of carrier acquisition, then every unit until LOS
    dropped = [e for e in events if e.kind == "dropped"]
    assert {e.reason for e in dropped} == {"no_contact", "acquiring"}
    acq = [e.t_s - window.aos_t_s for e in dropped if e.reason == "acquiring"]
    assert acq and min(acq) >= 0 and max(acq) < 3.0
    assert got[0].sent_t_s - window.aos_t_s == pytest.approx(3.0, abs=0.5)
    assert got[-1].sent_t_s <= window.los_t_s
    # delay = range / c at the emission time, for every unit
    view = StationView(station, sat, scenario.epoch)
    for d in got[:: max(1, len(got) // 50)]:
        look = view.at(d.sent_t_s)
        serial_s = 8 * 1279 / X_BAND_DOWNLINK.rate_bps
        # (absolute tolerance: at t ~ 7e4 s a double resolves ~1.5e-11 s)
        expected_s = serial_s + look.range_m / C_MPS
        assert d.arrival_t_s - d.sent_t_s == pytest.approx(expected_s, abs=1e-9)
        assert d.conditions.elevation_deg >= station.min_elevation_deg
    # Doppler within the closed-form bound at 500 km, and both signs seen
    dopplers = [d.conditions.doppler_hz for d in got]
    assert 150e3 < max(dopplers) < 200e3 and -200e3 < min(dopplers) < -150e3
    assert stats["delivered"] + stats["corrupted"] == len(got)


def test_a_budget_that_does_not_close_loses_units_for_low_ebn0(scenario, best_pass):
    station, sat, window = best_pass
    weak = x_band_downlink(eirp_dbw=-15.0)  # 35 dB less power: the loops cannot hold
    got, _, stats, _ = _run_pass(scenario, station, sat, window, weak, every_s=5.0)
    assert got == [] and stats["dropped_low_ebn0"] > 0


def test_visibility_tracker_bisects_to_the_edge():
    tracker = VisibilityTracker(lambda t: 100.0 <= t <= 700.0, step_s=10.0, tol_s=1e-3)
    start, new = tracker.start_of(400.0)
    assert new and start == pytest.approx(100.0, abs=1e-3)
    assert tracker.start_of(420.0) == (start, False)
    later = VisibilityTracker(lambda t: True, max_lookback_s=3600.0)
    assert later.start_of(5000.0)[0] == pytest.approx(1400.0, abs=10.0)


def test_visibility_tracker_counts_periods_and_looks_back_six_hours_by_default():
    always = VisibilityTracker(lambda t: True)
    assert always.periods == 0
    assert always.start_of(100_000.0) == (100_000.0 - 6 * 3600.0, True)
    assert always.start_of(100_030.0) == (100_000.0 - 6 * 3600.0, False)
    assert always.periods == 1
    passes = VisibilityTracker(lambda t: (t % 1000.0) < 500.0)
    passes.start_of(100.0)
    passes.start_of(1100.0)
    assert passes.periods == 2


def test_visibility_tracker_keeps_one_period_however_sparse_the_calls():
    """Calls at the same instant, exactly a same_period_s apart, or minutes apart
    inside one period all get the start first found, and count one period."""
    tracker = VisibilityTracker(lambda t: 100.0 <= t <= 5000.0)
    start, new = tracker.start_of(400.0)
    assert new and start == pytest.approx(100.0, abs=1e-3)
    for t in (400.0, 460.0, 700.0, 1000.0, 4000.0):
        assert tracker.start_of(t) == (start, False), t
    assert tracker.periods == 1
    always = VisibilityTracker(lambda t: True)
    first = always.start_of(100_000.0)[0]
    assert always.start_of(103_000.0) == (first, False) and always.periods == 1


def test_visibility_tracker_asks_the_geometry_only_when_a_call_comes_a_minute_late():
    """The geometry (SGP4) is the cost: calls within same_period_s (60 s) of the last
    one are answered from memory; one later searches again and finds the same period."""
    asked: list[float] = []

    def visible(t_s: float) -> bool:
        asked.append(t_s)
        return 100.0 <= t_s <= 5000.0

    tracker = VisibilityTracker(visible)
    start, _ = tracker.start_of(400.0)
    searched = len(asked)
    for t in (400.0, 440.0, 480.0, 540.0):  # each within 60 s of the one before
        assert tracker.start_of(t) == (start, False)
    assert len(asked) == searched
    assert tracker.start_of(600.5) == (start, False) and len(asked) > searched
    searched = len(asked)
    assert tracker.start_of(650.0) == (start, False) and len(asked) == searched
    assert tracker.periods == 1


def test_visibility_tracker_keeps_the_period_of_a_call_just_after_its_edge():
    tracker = VisibilityTracker(lambda t: t >= 100.0)
    start, _ = tracker.start_of(100.0005)
    assert tracker.start_of(300.0) == (start, False) and tracker.periods == 1


def test_visibility_tracker_finds_the_start_of_a_period_about_to_end():
    tracker = VisibilityTracker(lambda t: 100.0 <= t <= 405.0)
    assert tracker.start_of(400.0)[0] == pytest.approx(100.0, abs=1e-3)


def test_visibility_tracker_steps_back_10_s_by_default_and_sees_a_gap_it_lands_on():
    tracker = VisibilityTracker(lambda t: t >= 0.0 and not 389.5 <= t < 390.5)
    assert tracker.start_of(400.0)[0] == pytest.approx(390.5, abs=1e-3)


def test_visibility_tracker_finds_a_period_that_began_just_inside_the_look_back():
    """Begun 21,598 s before the call, inside the default 6 h: found, not clamped."""
    tracker = VisibilityTracker(lambda t: t >= 12.0)
    assert tracker.start_of(21_610.0)[0] == pytest.approx(12.0, abs=1e-3)


def test_the_receiver_acquires_again_after_the_signal_was_too_weak(scenario, best_pass):
    """A budget that closes only above some elevation: at the rising edge the units are
    lost for low Eb/N0, then for acquisition, counted from when the signal became
    usable, not from AOS (which was long before)."""
    station, sat, window = best_pass
    marginal = x_band_downlink(eirp_dbw=5.0)
    _, events, _, _ = _run_pass(scenario, station, sat, window, marginal, every_s=1.0)
    events = sorted((e for e in events if e.kind != "sent"), key=lambda e: e.t_s)
    first_ok = next(i for i, e in enumerate(events) if e.kind != "dropped")
    reasons = [e.reason for e in events[:first_ok]]
    last_weak = max(i for i, r in enumerate(reasons) if r == "low_ebn0")
    assert reasons[last_weak + 1 :] and set(reasons[last_weak + 1 :]) == {"acquiring"}


def _jittery_runs(**seed):
    jittery = replace(OPTICAL_ISL_100G, jitter_outage_prob=0.5)
    model = LaserLinkModel(_AtTheEdgeView(), jittery, **seed)
    return [model.conditions(3600.0 + k).up for k in range(64)]


def test_a_laser_link_without_a_seed_is_seed_0():
    """Pointing-jitter outages are drawn from a seeded generator: a scenario that names
    no seed replays as seed 0, the same every run."""
    assert _jittery_runs() == _jittery_runs(seed=0) != _jittery_runs(seed=1)


class _BlinkView:
    """Clear of the Earth except for one second, 30 s before t = 3600 s."""

    def at(self, t_s):
        return IslLook(2.0e6, 0.0, 0.0, -1.0 if 3569.5 <= t_s < 3570.5 else 1.0)


def test_a_laser_link_steps_back_30_s_and_acquires_again_after_a_gap_it_lands_on():
    """The laser window's start is searched 30 s at a time: a loss of view it lands
    on, 30 s back, started a new window, and the terminal is still acquiring."""
    cond = LaserLinkModel(_BlinkView(), OPTICAL_ISL_100G).conditions(3600.0)
    assert not cond.up and cond.reason == "acquiring"


def test_laser_link_between_neighbours_and_antipodes(scenario):
    a, b, far = scenario.satellites[0], scenario.satellites[1], scenario.satellites[6]

    async def main(pair):
        clock = clk.make_clock(True, scenario.epoch)
        model = LaserLinkModel(IslView(*pair, scenario.epoch), OPTICAL_ISL_100G, seed=3)
        got, events = [], []
        async with Link("isl", clock, model, on_delivery=got.append) as link:
            link.add_listener(events.append)
            for t in range(0, 120, 2):
                await clock.sleep_until(1000.0 + t)
                link.send(bytes(1279))
            await link.drain()
        return got, events

    # Neighbours 30 degrees apart in one plane are always in view: the link was
    # acquired before the run began, so only pointing jitter could lose a unit.
    got, events = clk.run(lambda: main((a, b)), emulated=True)
    assert {e.reason for e in events if e.kind == "dropped"} <= {"pointing_jitter"}
    assert len(got) >= 59
    rng_m = got[0].conditions.range_m
    assert 3.4e6 < rng_m < 3.7e6  # chord of 30 degrees at 6878 km: 3.56e6 m
    serial_s = 8 * 1279 / OPTICAL_ISL_100G.rate_bps
    assert got[0].arrival_t_s - got[0].sent_t_s == pytest.approx(serial_s + rng_m / C_MPS, abs=1e-9)
    # Antipodal satellites: the Earth is in the way.
    got, events = clk.run(lambda: main((a, far)), emulated=True)
    assert got == [] and {e.reason for e in events if e.kind == "dropped"} == {"no_los"}


class _RisingView:
    """A laser view that clears the Earth from t = 50 s on."""

    def at(self, t_s):
        return IslLook(2.0e6, 0.0, 0.0, 1.0 if t_s >= 50.0 else -1.0)


def test_laser_link_needs_its_acquisition_time_after_coming_into_view():
    async def main():
        clock = clk.make_clock(True)
        model = LaserLinkModel(_RisingView(), OPTICAL_ISL_100G)
        events = []
        async with Link("isl", clock, model) as link:
            link.add_listener(events.append)
            for t in range(0, 150):
                await clock.sleep_until(t)
                link.send(b"x" * 100)
            await link.drain()
        return events

    events = clk.run(main, emulated=True)
    first_ok = min(e.t_s for e in events if e.kind == "delivered")
    assert first_ok == pytest.approx(50.0 + OPTICAL_ISL_100G.pat_s, abs=1.0)
    before = {e.reason for e in events if e.kind == "dropped" and e.t_s < 50}
    during = {e.reason for e in events if e.kind == "dropped" and 50 <= e.t_s < first_ok}
    assert before == {"no_los"} and during == {"acquiring"}


class _AtTheEdgeView:
    """A laser view held at exactly the terminal's maximum range, clear of the Earth."""

    def at(self, t_s):
        return IslLook(OPTICAL_ISL_100G.max_range_m, 0.0, 0.0, 1.0)


def test_a_laser_link_at_exactly_its_maximum_range_is_in_view():
    """The maximum range is in range: the view has been in since before the look-back
    began, so an hour in the terminal has long acquired and delivers."""
    steady = replace(OPTICAL_ISL_100G, jitter_outage_prob=0.0)
    cond = LaserLinkModel(_AtTheEdgeView(), steady).conditions(3600.0)
    assert cond.up and cond.reason == ""


def test_impossible_mask_is_refused(scenario):
    view = StationView(scenario.stations[0], scenario.satellites[0], scenario.epoch)
    for mask in (-0.1, 90.1, 95.0):
        with pytest.raises(ConfigError, match="mask_deg"):
            RfLinkModel(view, X_BAND_DOWNLINK, mask_deg=mask)
    for mask in (0.0, 90.0):  # the horizon and the zenith themselves are masks
        assert RfLinkModel(view, X_BAND_DOWNLINK, mask_deg=mask).mask_deg == mask
    assert math.isfinite(RfLinkModel(view, X_BAND_DOWNLINK).conditions(0.0).range_m)


def test_a_model_first_asked_in_mid_pass_counts_acquisition_from_aos(scenario, best_pass):
    """The receiver acquired the carrier at AOS, not when the model was first asked: a
    model first asked in the middle of a pass (a daemon started then) is locked at once."""
    station, sat, window = best_pass
    model = RfLinkModel(StationView(station, sat, scenario.epoch), X_BAND_DOWNLINK)
    cond = model.conditions(0.5 * (window.aos_t_s + window.los_t_s))
    assert cond.up and cond.reason == ""


def test_a_sampled_model_is_never_early_and_close_to_the_exact_one(scenario, best_pass):
    """The real-time engine's physics, asked once a millisecond: over a whole pass, at
    random emission times, the delay is never shorter than the exact model's (a unit
    is never early) and at most tens of nanoseconds longer; the link is up or down as
    the exact model says, except within one step of a change."""
    station, sat, window = best_pass
    step = 1e-3
    exact = RfLinkModel(StationView(station, sat, scenario.epoch), X_BAND_DOWNLINK)
    sampled = SampledModel(
        RfLinkModel(StationView(station, sat, scenario.epoch), X_BAND_DOWNLINK), step
    )
    rng = random.Random(5)
    t = window.aos_t_s - 5.0
    changes, disagree = [], 0
    last_up = None
    while t < window.los_t_s + 5.0:
        a, b = exact.conditions(t), sampled.conditions(t)
        if a.up != last_up:
            changes.append(t)
            last_up = a.up
        if a.up != b.up:
            disagree += 1
            assert any(abs(t - c) <= 2 * step for c in changes), t
        else:
            assert 0.0 <= b.delay_s - a.delay_s < 50e-9
        t += rng.uniform(0.0, 0.02)
    assert len(changes) >= 2 and disagree <= 4


def test_a_sampled_model_steps_a_millisecond_by_default_and_needs_a_positive_step():
    """By default a step is 1 ms, from its start (included) to its end (not): the
    model is asked at a step's two ends once, however often the step is asked."""
    asked: list[float] = []

    class Steady:
        def conditions(self, t_s: float) -> Conditions:
            asked.append(t_s)
            return Conditions(True, 8000.0, 0.01)

    sampled = SampledModel(Steady())
    for t in (0.0, 0.0, 0.0009):
        sampled.conditions(t)
    assert asked == [0.0, 0.001]
    sampled.conditions(0.001)  # the next step: its start is the last one's end
    assert asked == [0.0, 0.001, 0.002]
    for step in (0.0, -1e-3):
        with pytest.raises(ConfigError, match="step_s"):
            SampledModel(Steady(), step)


def test_a_sampled_model_asks_the_model_once_a_step_boundary():
    """Steps one after another reuse the conditions at the end of the last step for the
    start of the next: the model is asked once a boundary (the cost the real-time engine
    pays per step), and the delay is still the larger of the step's two ends."""
    asked: list[float] = []

    class Receding:
        def conditions(self, t_s: float) -> Conditions:
            asked.append(t_s)
            return Conditions(True, 8000.0, 1.0 + t_s)

    sampled = SampledModel(Receding(), 0.5)
    delays = [sampled.conditions(t).delay_s for t in (0.1, 0.3, 0.6, 1.2, 1.4, 3.1)]
    assert delays == [1.5, 1.5, 2.0, 2.5, 2.5, 4.5]
    # 0.0 and 0.5 for the first step; 1.0 for the second, 1.5 for the third; then a jump
    assert asked == [0.0, 0.5, 1.0, 1.5, 3.0, 3.5]
