"""The view's sky (linkstack.runtime.sky): the whole fleet's positions against the
per-unit SGP4 path, the footprint against its closed form, tracks and shadow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from channels.geometry import ecef_to_geodetic
from channels.orbit import state_ecef
from channels.sun import SunEcef, shadow_state
from linkstack.runtime import scenario as scenarios
from linkstack.runtime.sky import TRACK_BEFORE_S, TRACK_STEP_S, Sky, footprint_deg

SCENARIO = scenarios.load("default").scenario


def test_footprints_of_the_closed_form():
    r_m = 6_378_137.0
    # mask 0: the horizon, arccos(R / (R + h)); at h = R that is 60 deg
    assert footprint_deg(np.array([r_m]), 0.0)[0] == pytest.approx(60.0)
    assert footprint_deg(np.array([0.0]), 10.0)[0] == pytest.approx(0.0, abs=1e-9)
    # 500 km, mask 10 deg: ~16 deg less than the horizon's 21.9
    h = 500e3
    expect = math.degrees(
        math.acos(r_m / (r_m + h) * math.cos(math.radians(10))) - math.radians(10)
    )
    assert footprint_deg(np.array([h]), 10.0)[0] == pytest.approx(expect)


@pytest.mark.parametrize("t_s", [0.0, 10_771.0, 86_000.5])
def test_positions_match_the_per_unit_path(t_s):
    sky = Sky(SCENARIO)
    got = sky.positions(t_s)
    for i, sat in enumerate(SCENARIO.satellites):
        r = np.array(state_ecef(sat, SCENARIO.epoch, t_s)[:3])
        lat, lon, alt = ecef_to_geodetic(r)
        assert got["lat"][i] == pytest.approx(float(lat), abs=0.006)
        assert got["lon"][i] == pytest.approx(float(lon), abs=0.006)
        assert got["alt_km"][i] == pytest.approx(float(alt) / 1e3, abs=0.6)
    assert got["shadow"] == [None] * len(SCENARIO.satellites)  # none asked


def test_shadow_for_the_satellites_asked_and_tracks_through_now():
    sky = Sky(SCENARIO)
    t_s = 5_000.0
    names = list(sky.names[:4])
    got = sky.positions(t_s, names)
    r = np.array([state_ecef(s, SCENARIO.epoch, t_s)[:3] for s in SCENARIO.satellites[:4]])
    expect = shadow_state(r, np.reshape(SunEcef(SCENARIO.epoch).at(t_s), 3)).tolist()
    assert got["shadow"][:4] == expect and got["shadow"][4:] == [None] * 8
    tracks = sky.tracks(t_s, ["CS-03", "nobody"])
    assert [t[0] for t in tracks] == [2]
    now = int(TRACK_BEFORE_S / TRACK_STEP_S)  # the point at t_s
    assert tracks[0][1][now] == got["lat"][2] and tracks[0][2][now] == got["lon"][2]
    assert sky.meta()["stations"][0] == ["Svalbard", 78.23, 15.4]
