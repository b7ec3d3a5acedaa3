"""Power on board, in emulated time over the default scenario: a computing satellite
in the umbra with its battery under the depth-of-discharge floor holds a query until
sunlight has charged the battery back to the floor (the start computed here by hand
from its sunlight), the answer's timeline has the power_wait leg, and the battery's
energy ledger closes over the run. The inference legs are an accelerator's (the
modelled Jetson AGX Orin running Qwen3-0.6B), so the run does not follow this
machine's load."""

from __future__ import annotations

import json

import pytest

from channels.contacts import sunlight_intervals
from channels.scenarios import default_scenario
from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from linkstack.runtime.config import EmulationConfig
from linkstack.runtime.emulation import Emulation
from linkstack.runtime.onboard_power import OnboardPower
from linkstack.runtime.power_settings import PowerSettings, with_accelerator
from linkstack.runtime.report import satellites_text, to_json
from linkstack.runtime.routing import ContactState
from linkstack.runtime.scenario import ScenarioError, loads
from payloads.messages import Params
from payloads.power import PowerParams
from payloads.qwen_tokenizer import count_chat_tokens
from payloads.service import ServiceConfig
from payloads.timing import make_timing

TARGET = "CS-06"  # in the umbra from 8,318.5 s to 10,381.9 s, out of view until ~10,800 s
SUBMIT_T_S = 10_000.0  # up through CS-08 (in view), two laser hops to CS-06
TIMING = make_timing("jetson-agx-orin-64gb", "qwen3-0.6b", "bf16")
# a small battery: full at the umbra's start, under its floor (140 Wh) ~1,500 s into it
PARAMS = with_accelerator(PowerParams(battery_capacity_wh=200.0), TIMING)


@pytest.fixture(scope="module")
def run(tiny):
    config = EmulationConfig(
        service=ServiceConfig(inline=True, timing=TIMING),
        computing=(TARGET,),
        power=PowerSettings(enabled=True, params=PARAMS),
    )

    async def main():
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=tiny)
        async with emu:
            await clock.sleep_until(SUBMIT_T_S)
            pending = emu.client.submit(
                "Is tile 7 cloudy?", Params(max_new_tokens=8), target=TARGET
            )
            answer, timeline = await pending.result()
            end_t_s = clock.now()
            figures = emu.onboard_figures(end_t_s)
        return emu, answer, timeline, figures, end_t_s

    return clk.run(main)


def _soc_by_hand(spans, p: PowerParams, soc_wh: float, t0_s: float, t1_s: float) -> float:
    """The state of charge at t1 from t0, idle, stepped through the spans by hand."""
    load_w = p.bus_load_w + p.accelerator_idle_w
    for a, b, fraction in spans:
        lo, hi = max(a, t0_s), min(b, t1_s)
        if hi <= lo:
            continue
        net_w = p.array_power_w * fraction - load_w
        dt_h = (hi - lo) / 3600.0
        if net_w >= 0:
            soc_wh = min(p.battery_capacity_wh, soc_wh + p.charge_efficiency * net_w * dt_h)
        else:
            soc_wh = soc_wh + net_w * dt_h / p.discharge_efficiency
    return soc_wh


def test_a_satellite_in_the_umbra_with_a_low_battery_waits_for_sunlight(run):
    emu, answer, timeline, _, _ = run
    times = answer.times
    scenario = default_scenario()
    ivs = [
        (iv.start_t_s, iv.stop_t_s, iv.mean_fraction)
        for iv in sunlight_intervals(scenario.fleet, duration_s=6 * 3600.0)
        if iv.satellite == TARGET
    ]
    umbra_end_t_s, sunrise_t_s = next((a, b) for a, b, f in ivs if 0 < f < 1 and a > 10_000)
    p = PARAMS
    # asked in the umbra, with the battery already under its floor
    asked = times.power_asked_t_s
    assert asked is not None and 8_318.5 < asked < umbra_end_t_s
    assert _soc_by_hand(ivs, p, p.battery_capacity_wh, 0.0, asked) < p.floor_wh
    # by hand: idle to sunrise, then charging at eta_c x (array - idle load); the
    # inference (bus + 60 W) still charges it in the sunlight, so its lowest point is
    # its start: the instant the battery is back at the floor
    soc_sunrise = _soc_by_hand(ivs, p, p.battery_capacity_wh, 0.0, sunrise_t_s)
    rise_wh_per_s = p.charge_efficiency * (p.array_power_w - p.bus_load_w - 15.0) / 3600.0
    expected_start_t_s = sunrise_t_s + (p.floor_wh - soc_sunrise) / rise_wh_per_s
    assert p.accelerator_busy_w == 60.0 and p.array_power_w > p.bus_load_w + 60.0
    assert times.inference_start_t_s == pytest.approx(expected_start_t_s, abs=2e-3)
    # the answer's timeline: the power wait between the onboard queue and the first token
    legs = timeline.leg_durations_s()
    assert legs["power_wait"] == pytest.approx(expected_start_t_s - asked, abs=2e-3)
    assert legs["power_wait"] > 300.0
    assert list(legs)[3:6] == ["onboard_queue", "power_wait", "inference_ttft"]
    assert sum(legs.values()) == pytest.approx(timeline.total_s)
    assert emu.stats()["services"]["power_waits"] == 1


def test_the_battery_ledger_closes_over_the_run_and_the_figures_are_reported(run):
    _, answer, _, figures, end_t_s = run
    assert set(figures) == {TARGET}  # the computing satellites only
    f = figures[TARGET]
    out_wh = f["served_wh"] + f["shunted_wh"] + f["charge_loss_wh"] + f["discharge_loss_wh"]
    stored_wh = f["soc_wh"] - f["soc0_wh"]
    assert f["generated_wh"] > 0 and f["until_t_s"] == end_t_s
    assert abs(f["generated_wh"] - out_wh - stored_wh) < 1e-9 * f["generated_wh"]
    assert f["unserved_wh"] == 0.0
    assert f["inferences"] == 1
    assert f["busy_s"] == pytest.approx(answer.times.generate_s)
    assert f["utilisation"] == pytest.approx(f["busy_s"] / end_t_s)
    assert f["power_wait_s"] == pytest.approx(
        answer.times.inference_start_t_s - answer.times.power_asked_t_s
    )
    # the bus and the idle accelerator served all run, the inference on top at the draw
    # of the timing model's utilisation (a batch of one: about half the span to 60 W)
    utilisation = TIMING.utilisation(
        count_chat_tokens("Is tile 7 cloudy?"), answer.completion_tokens
    )
    assert 0.4 < utilisation < 0.6
    idle_wh = (PARAMS.bus_load_w + PARAMS.accelerator_idle_w) * end_t_s / 3600
    extra_wh = (PARAMS.accelerator_w(utilisation) - PARAMS.accelerator_idle_w) * f["busy_s"] / 3600
    assert f["accelerator_wh"] == pytest.approx(extra_wh, rel=1e-9)
    assert f["accelerator_wh_per_inference"] == f["accelerator_wh"]
    assert f["served_wh"] == pytest.approx(idle_wh + extra_wh, rel=1e-9)
    # the answer reports the charge at its end (messages version 3): from the floor at its
    # start, charging in full sunlight at the array's surplus over the bus and the draw
    surplus_w = PARAMS.array_power_w - PARAMS.bus_load_w - PARAMS.accelerator_w(utilisation)
    rise_wh = PARAMS.charge_efficiency * surplus_w * answer.times.generate_s / 3600
    assert answer.battery_wh == pytest.approx(PARAMS.floor_wh + rise_wh, abs=1e-3)


def test_power_is_off_by_default_and_read_from_the_power_table():
    assert EmulationConfig().power.enabled is False and loads("").emulation.power.enabled is False
    model = '[model]\naccelerator = "jetson-agx-orin-64gb"\n'
    s = loads(model + "[power]\nenabled = true\nbattery_wh = 200.0\n").emulation.power
    assert s.enabled and s.params.battery_capacity_wh == 200.0 and s.params.floor_wh == 140.0
    # the accelerator's own power by default; its keys replace it
    assert (s.params.accelerator_busy_w, s.params.accelerator_idle_w) == (60.0, 15.0)
    reference = '[model]\naccelerator = "reference-744"\n'
    r = loads(reference + "[power]\naccelerator_idle_w = 50.0\n").emulation.power
    assert (r.params.accelerator_busy_w, r.params.accelerator_idle_w) == (300.0, 50.0)
    for bad, key in (
        ("battery_wh = 0", "power.battery_wh"),
        ("dod_limit = 1.5", "power.dod_limit"),
        ("enable = true", "power.enable"),
    ):
        with pytest.raises(ScenarioError) as err:
            loads(f"[power]\n{bad}\n")
        assert err.value.key == key, str(err.value)


def test_the_report_carries_each_satellites_load_and_energy(run):
    _, _, timeline, figures, _ = run
    doc = json.loads(to_json([timeline], {"scenario": "default"}, satellites=figures))
    sat = doc["satellites"][TARGET]
    assert sat["inferences"] == 1 and sat["generated_wh"] == pytest.approx(
        figures[TARGET]["generated_wh"]
    )
    assert doc["queries"][0]["legs_s"]["power_wait"] == pytest.approx(
        timeline.leg_durations_s()["power_wait"]
    )
    assert doc["summary"]["all"]["legs"]["power_wait"]["max_s"] > 300.0
    text = satellites_text(figures)
    f = figures[TARGET]
    assert text.startswith(f"  {TARGET}: 1 inferences, busy {f['utilisation']:.2%}; power wait ")
    assert f"floor {PARAMS.floor_wh:.0f})" in text
    assert "satellites" not in json.loads(to_json([timeline]))  # not given: not there


def test_the_draw_follows_the_utilisation_and_the_ledger_closes():
    """Two inferences of 50 s, one flat out (the host's stopwatch: utilisation 1) and
    one at 0.25: each draws idle + that share of the span to busy power."""
    contacts = ContactState(default_scenario(), sunlight_of=(TARGET,))
    power = OnboardPower(contacts, TARGET, PowerSettings(True, PARAMS), 0.0)
    assert power.inference_start(100.0, 50.0) == 100.0
    assert power.inference_start(300.0, 50.0, utilisation=0.25) == 300.0
    span_w = PARAMS.accelerator_busy_w - PARAMS.accelerator_idle_w
    assert PARAMS.accelerator_w(0.25) == PARAMS.accelerator_idle_w + 0.25 * span_w
    f = power.figures(400.0)
    assert f["accelerator_wh"] == pytest.approx(span_w * 1.25 * 50.0 / 3600, rel=1e-12)
    idle_wh = (PARAMS.bus_load_w + PARAMS.accelerator_idle_w) * 400.0 / 3600
    assert f["served_wh"] == pytest.approx(idle_wh + f["accelerator_wh"], rel=1e-12)
    out_wh = f["served_wh"] + f["shunted_wh"] + f["charge_loss_wh"] + f["discharge_loss_wh"]
    assert f["generated_wh"] == pytest.approx(out_wh + f["soc_wh"] - f["soc0_wh"], rel=1e-12)
    with pytest.raises(ConfigError, match="utilisation"):
        power.inference_start(500.0, 1.0, utilisation=1.5)


def test_an_inference_beside_a_running_one_costs_only_what_runs_past_it():
    """Concurrency > 1: the accelerator is already busy; a second inference asked for
    while the first runs starts at once when the battery carries what it adds, and
    the busy time counts the overlap once; the ledger still closes."""
    contacts = ContactState(default_scenario(), sunlight_of=(TARGET,))
    power = OnboardPower(contacts, TARGET, PowerSettings(True, PARAMS), 0.0)
    assert power.inference_start(100.0, 50.0) == 100.0  # sunlit, full
    assert power.inference_start(120.0, 50.0) == 120.0  # beside it, until 170
    assert power.model.t_s == 170.0 and power.busy_s == 70.0
    f = power.figures(200.0)
    out_wh = f["served_wh"] + f["shunted_wh"] + f["charge_loss_wh"] + f["discharge_loss_wh"]
    assert f["generated_wh"] == pytest.approx(out_wh + f["soc_wh"] - f["soc0_wh"], rel=1e-12)
    # served: the bus and the idle accelerator all along, busy for 70 s
    busy_extra_wh = (PARAMS.accelerator_busy_w - PARAMS.accelerator_idle_w) * 70.0 / 3600
    idle_wh = (PARAMS.bus_load_w + PARAMS.accelerator_idle_w) * 200.0 / 3600
    assert f["served_wh"] == pytest.approx(idle_wh + busy_extra_wh, rel=1e-12)


def test_the_charge_now_is_read_from_a_copy_and_moves_nothing():
    """``soc_wh_at`` (the daemons' status and /metrics) is the idle charge the hand
    stepping gives, and leaves the model where it was: an inference asked for after
    is booked as on a satellite nobody asked about."""
    contacts = ContactState(default_scenario(), sunlight_of=(TARGET,))
    asked = OnboardPower(contacts, TARGET, PowerSettings(True, PARAMS), 8_000.0)
    t_s = 9_500.0  # ~1,200 s into the umbra: under full charge
    soc_wh = asked.soc_wh_at(t_s)
    by_hand = _soc_by_hand(asked.model.spans, PARAMS, asked.soc0_wh, 8_000.0, t_s)
    assert soc_wh == pytest.approx(by_hand, rel=1e-9) and soc_wh < asked.soc0_wh
    assert asked.model.t_s == 8_000.0 and asked.model.soc_wh == asked.soc0_wh  # unmoved
    fresh = OnboardPower(
        ContactState(default_scenario(), sunlight_of=(TARGET,)),
        TARGET,
        PowerSettings(True, PARAMS),
        8_000.0,
    )
    assert asked.inference_start(9_000.0, 30.0) == fresh.inference_start(9_000.0, 30.0)
    assert asked.soc_wh_at(8_500.0) == asked.model.soc_wh  # before the model's time: as it is
