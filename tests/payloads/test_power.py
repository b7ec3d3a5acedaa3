"""The power model: the energy balance closed over an orbit of the default plane
(its sunlight from channels.contacts), states of charge by hand, the path against a
brute-force integration, and the scheduler's question (can it run now; if not, when)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.contacts import sunlight_intervals
from channels.scenarios import default_scenario
from linkstack.errors import ConfigError
from payloads.power import EnergyLedger, LightSpan, PowerModel, PowerParams

ORBIT_S = 5680.0  # one orbit of the default plane at 500 km (94.6 min), in 10 s steps


def _balance(model: PowerModel, soc0_wh: float) -> float:
    """generated - (served + shunted + losses + stored change): zero when closed."""
    led = model.ledger
    out = led.served_wh + led.shunted_wh + led.charge_loss_wh + led.discharge_loss_wh
    return led.generated_wh - out - (model.soc_wh - soc0_wh)


def test_energy_balance_closes_over_an_orbit_of_the_default_plane():
    scenario = default_scenario()
    ivs = sunlight_intervals(scenario.fleet, duration_s=ORBIT_S, block_sats=1)
    spans = [(iv.start_t_s, iv.stop_t_s, iv.mean_fraction) for iv in ivs if iv.satellite == "CS-01"]
    params = PowerParams(battery_capacity_wh=300.0)  # small enough to fill and to drain
    model = PowerModel(params, spans, soc_wh=250.0)
    # busy for 5 minutes of every 15, through sunlight and eclipse
    t = 0.0
    while t < ORBIT_S:
        model.advance(min(t + 300.0, ORBIT_S), busy=True)
        model.advance(min(t + 900.0, ORBIT_S), busy=False)
        t += 900.0
    led = model.ledger
    assert led.shunted_wh > 0 and led.charge_loss_wh > 0 and led.discharge_loss_wh > 0
    assert led.unserved_wh == 0.0
    assert abs(_balance(model, 250.0)) < 1e-9 * led.generated_wh
    # what the loads drew is their power times the time, to the watt-second
    busy_s = sum(min(300.0, ORBIT_S - t0) for t0 in range(0, int(ORBIT_S), 900))
    expected = (
        params.bus_load_w * ORBIT_S / 3600
        + (params.accelerator_busy_w * busy_s + params.accelerator_idle_w * (ORBIT_S - busy_s))
        / 3600
    )
    assert led.served_wh == pytest.approx(expected, rel=1e-12)
    # the array: its full power over the sunlit time and the penumbra's share
    lit_s = sum((b - a) * f for a, b, f in spans)
    assert led.generated_wh == pytest.approx(params.array_power_w * lit_s / 3600, rel=1e-12)


def test_states_of_charge_by_hand():
    p = PowerParams()
    assert p.array_power_w == pytest.approx(1361 * 1.2 * 0.30 * 0.85)  # 416.466 W
    model = PowerModel(p, [(0, 3600, 1.0), (3600, 5400, 0.0)], soc_wh=300.0)
    model.advance(3600.0)
    idle_w = p.bus_load_w + p.accelerator_idle_w  # 135 W
    assert model.soc_wh == pytest.approx(300.0 + 0.95 * (p.array_power_w - idle_w))
    model.advance(5400.0, busy=True)
    assert model.soc_wh == pytest.approx(
        300.0 + 0.95 * (p.array_power_w - idle_w) - 0.5 * (p.bus_load_w + 60.0) / 0.95
    )
    # full: the surplus is shunted; empty: the load not served is counted
    full = PowerModel(p, [(0, 3600, 1.0)])
    full.advance(3600.0)
    assert full.soc_wh == p.battery_capacity_wh
    assert full.ledger.shunted_wh == pytest.approx(p.array_power_w - idle_w)
    empty = PowerModel(p, [(0, 36_000, 0.0)], soc_wh=10.0)
    empty.advance(36_000.0)
    assert empty.soc_wh == 0.0
    assert empty.ledger.unserved_wh == pytest.approx(10 * idle_w - 10.0 * 0.95)
    assert abs(_balance(empty, 10.0)) < 1e-9


spans_strategy = st.lists(
    st.tuples(st.floats(10.0, 2000.0), st.sampled_from([0.0, 0.3, 1.0])), min_size=1, max_size=6
)


@settings(max_examples=40, deadline=None)
@given(
    spans_strategy,
    st.floats(0.0, 400.0),
    st.lists(st.tuples(st.floats(1.0, 900.0), st.booleans()), min_size=1, max_size=8),
)
def test_the_path_matches_a_brute_force_integration(lengths, soc0, plan):
    """The exact stepping against a 1 s Euler integration of the same rules."""
    spans, t = [], 0.0
    for length, fraction in lengths:
        spans.append(LightSpan(t, t + length, fraction))
        t += length
    p = PowerParams(battery_capacity_wh=400.0)
    model = PowerModel(p, spans, soc_wh=soc0)
    soc, clock = soc0, 0.0
    for length, busy in plan:
        stop = min(clock + length, t)
        model.advance(stop, busy=busy)
        while clock < stop - 1e-9:
            dt = min(1.0, stop - clock)
            frac = next(s.fraction for s in spans if s.start_t_s <= clock < s.stop_t_s)
            net = p.array_power_w * frac - model.load_w(busy)
            soc += (0.95 * net if net > 0 else net / 0.95) * dt / 3600
            soc = min(max(soc, 0.0), 400.0)
            clock += dt
        assert model.soc_wh == pytest.approx(soc, abs=0.2)
    assert abs(_balance(model, soc0)) < 1e-9 * max(1.0, model.ledger.generated_wh)


def test_can_it_run_now_and_if_not_when():
    """In the umbra with the battery near the DoD floor (70 % of 600 Wh = 420 Wh):
    an inference cannot start now, nor before sunrise; in sunlight it can once the
    battery has charged back to the floor (the battery only rises while it runs)."""
    p = PowerParams()
    model = PowerModel(p, [(0, 600, 0.0), (600, 6000, 1.0)], soc_wh=430.0)
    assert model.can_sustain(60.0, 30.0)  # 180 W for 30 s costs 1.6 Wh
    assert not model.can_sustain(60.0, 600.0)
    idle_w = p.bus_load_w + p.accelerator_idle_w
    soc_at_sunrise = 430.0 - idle_w * (600 / 3600) / 0.95
    rise_w = 0.95 * (p.array_power_w - idle_w)
    expected = 600.0 + (p.floor_wh - soc_at_sunrise) / rise_w * 3600
    start = model.earliest_start(60.0, 600.0)
    assert start == pytest.approx(expected, abs=2e-3)
    assert model.can_sustain(60.0, 600.0, at_t_s=start)
    assert not model.can_sustain(60.0, 600.0, at_t_s=start - 2e-3)
    assert model.earliest_start(60.0, 30.0) == model.t_s  # now
    # more than the battery and array can ever carry: never
    assert model.earliest_start(5000.0, 3600.0) is None
    # asking changes nothing
    assert model.soc_wh == 430.0 and model.t_s == 0.0


def test_a_start_that_must_wait_for_the_next_sunlight():
    """Sunlit now, the battery under the floor, an eclipse ahead: started as soon as
    the battery is back at the floor, the inference would run into the eclipse and
    end under it (starting later in the sunlight only shortens the charge before
    the eclipse); started in the eclipse it goes under too. So it waits for the next
    sunlight and for the battery to charge back to the floor there."""
    p = PowerParams()
    spans = [(0, 1000, 1.0), (1000, 3100, 0.0), (3100, 9000, 1.0)]
    model = PowerModel(p, spans, soc_wh=380.0)
    idle_w = p.bus_load_w + p.accelerator_idle_w
    rise_wh_per_s = 0.95 * (p.array_power_w - idle_w) / 3600
    fall_wh_per_s = idle_w / 0.95 / 3600
    soc_at_sunrise = 380.0 + 1000 * rise_wh_per_s - 2100 * fall_wh_per_s
    expected = 3100.0 + (p.floor_wh - soc_at_sunrise) / rise_wh_per_s
    start = model.earliest_start(60.0, 2000.0)
    assert start == pytest.approx(expected, abs=2e-3)
    back_at_floor = (p.floor_wh - 380.0) / rise_wh_per_s  # in the first sunlight
    assert 0 < back_at_floor < 1000
    assert not model.can_sustain(60.0, 2000.0, at_t_s=back_at_floor)
    assert not model.can_sustain(60.0, 2000.0, at_t_s=2000.0)  # in the eclipse


def test_schedule_books_inferences_one_after_another_and_waits_for_power():
    """Two inferences asked for at once in the umbra with a low battery: the first
    waits for sunlight and the floor (as earliest_start says), the second queues
    behind it; the model ends where the second ends, its energy balance closed."""
    p = PowerParams()
    spans = [(0, 600, 0.0), (600, 20_000, 1.0)]
    model = PowerModel(p, spans, soc_wh=430.0)
    expected_first = PowerModel(p, spans, soc_wh=430.0).earliest_start(300.0, 600.0)
    first = model.schedule(0.0, 300.0, 600.0)
    assert first == expected_first and first > 600.0
    second = model.schedule(0.0, 300.0, 600.0)  # asked while the first runs
    assert second is not None and second >= first + 600.0
    assert model.t_s == second + 600.0
    assert model.min_soc_wh < p.floor_wh  # the idle bus drained it in the umbra: not an inference
    assert abs(_balance(model, 430.0)) < 1e-9 * model.ledger.generated_wh
    # one that can never be carried: None, and the model stays where it was asked
    assert model.schedule(model.t_s + 100.0, 5000.0, 3600.0) is None
    assert model.t_s == second + 700.0


def test_bad_parameters_and_times_are_refused():
    with pytest.raises(ConfigError, match="dod_limit"):
        PowerParams(dod_limit=1.5)
    with pytest.raises(ConfigError, match="bus_load_w"):
        PowerParams(bus_load_w=math.nan)
    with pytest.raises(ConfigError, match="sunlight"):
        PowerModel(PowerParams(), [(0, 10, 1.0), (20, 30, 0.0)])
    with pytest.raises(ConfigError, match="sunlight"):
        PowerModel(PowerParams(), [(0, 10, 1.5)])
    model = PowerModel(PowerParams(), [(0, 10, 1.0)])
    with pytest.raises(ConfigError, match="outside the sunlight known"):
        model.advance(20.0)
    model.advance(5.0)
    with pytest.raises(ConfigError, match="cannot go back"):
        model.advance(1.0)
    with pytest.raises(ConfigError, match="soc_wh"):
        PowerModel(PowerParams(), [(0, 10, 1.0)], soc_wh=-1.0)
    assert EnergyLedger().generated_wh == 0.0


def test_extend_continues_the_sunlight_and_lets_go_of_what_is_behind():
    """Fed in two parts, as the runtime feeds it from the contact plan's chunks, the
    model steps as one built whole; the spans wholly behind it are dropped; a gap is
    refused."""
    p = PowerParams()
    spans = [(0, 600, 0.0), (600, 610, 0.5), (610, 4000, 1.0), (4000, 6000, 0.0)]
    whole = PowerModel(p, spans, soc_wh=500.0)
    fed = PowerModel(p, spans[:2], soc_wh=500.0)
    fed.advance(605.0)
    fed.extend(spans[2:])
    assert [s.start_t_s for s in fed.spans] == [600, 610, 4000]  # (0, 600) let go
    starts = [model.schedule(605.0, 60.0, 3000.0) for model in (whole, fed)]
    assert starts[0] is not None and starts[0] == pytest.approx(starts[1], abs=1e-9)
    assert fed.soc_wh == pytest.approx(whole.soc_wh, abs=1e-9)
    assert fed.ledger.generated_wh == pytest.approx(whole.ledger.generated_wh, rel=1e-12)
    assert fed.ledger.served_wh == pytest.approx(whole.ledger.served_wh, rel=1e-12)
    with pytest.raises(ConfigError, match="tile"):
        fed.extend([(6001, 7000, 1.0)])
