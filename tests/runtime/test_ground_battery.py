"""The ground daemon sees the batteries through the answers: each answer reports the
battery's charge at its inference's end (messages version 3, ``bw``), and the ground
that cannot see the satellites' power models (``observes_space`` False, as in the
ground daemon) keeps its own copy of each, corrected by those reports, for the
"earliest_completion" dispatch. Built as the ground daemon builds its mission control
(``linkstack.daemon.parts``), with no satellite in the process; the case is
test_dispatch_completion's (CS-06 in view at 10,950 s, its small battery under its
floor after the umbra)."""

from __future__ import annotations

import pytest

from channels.scenarios import default_scenario
from linkstack.runtime import clock as clk
from linkstack.runtime.config import DispatchConfig, EmulationConfig
from linkstack.runtime.mission_control import MissionControl
from linkstack.runtime.power_settings import PowerSettings
from linkstack.runtime.site import Site
from payloads.power import PowerModel
from payloads.service import ServiceConfig
from payloads.timeline import Timeline
from tests.runtime.test_dispatch_completion import PARAMS, SUBMIT_T_S, TIMING

REPORT_T_S = SUBMIT_T_S - 50.0


def ground_expectations(reports):
    """What a daemon's ground expects of CS-06 at SUBMIT_T_S after the answers
    ``reports`` ((battery_wh, inference end) each) came down from it."""
    config = EmulationConfig(
        service=ServiceConfig(inline=True, timing=TIMING),
        computing=("CS-06", "CS-08"),
        power=PowerSettings(enabled=True, params=PARAMS),
        dispatch=DispatchConfig(policy="earliest_completion"),
    )

    async def main():
        clock = clk.make_clock(True)
        site = Site(clock, config, default_scenario())
        mcc = MissionControl(site, {}, observes_space=False)
        await clock.sleep_until(SUBMIT_T_S)
        for i, (charge_wh, end_t_s) in enumerate(reports):
            timeline = Timeline(f"q{i}", end_t_s - 60.0, satellite="CS-06")
            timeline.inference_start_t_s, timeline.inference_end_t_s = end_t_s - 1.0, end_t_s
            timeline.battery_wh = charge_wh
            mcc.annotate(timeline)
        route = site.contacts.uplink_route("CS-06", SUBMIT_T_S)
        assert route is not None and route.path == ("CS-06",)  # in view
        return mcc.expect.completion_t_s(route, 0, now_t_s=SUBMIT_T_S), site

    return clk.run(main)


def test_the_ground_daemon_weighs_the_charge_each_answer_reports():
    # no answer yet: the ground's copy stepped idle from the start, through the umbra:
    # under its floor at submit, so the query waits there (as in process)
    prior_t_s, site = ground_expectations([])
    assert prior_t_s > SUBMIT_T_S + 100.0
    # an answer reported a full battery 50 s before: no wait (1 s of compute learnt)
    full_t_s, _ = ground_expectations([(PARAMS.battery_capacity_wh, REPORT_T_S)])
    assert full_t_s == pytest.approx(SUBMIT_T_S + 1.0, abs=0.01)
    # one reported an empty battery: longer than the idle copy, by hand from the report
    empty_t_s, _ = ground_expectations([(0.0, REPORT_T_S), (150.0, REPORT_T_S - 900.0)])
    spans = [
        (a, b, f)
        for a, b, f in site.power("CS-06").model.spans
        if b > REPORT_T_S  # what the ground's copy held from the report on
    ]
    by_hand = PowerModel(PARAMS, spans, t_s=REPORT_T_S, soc_wh=0.0)
    by_hand.advance(SUBMIT_T_S)
    start_t_s = by_hand.earliest_start(PARAMS.accelerator_busy_w, 1.0)
    assert start_t_s is not None and empty_t_s == pytest.approx(start_t_s + 1.0, abs=0.01)
    assert empty_t_s > prior_t_s + 100.0  # the older report (150 Wh) came later: ignored
