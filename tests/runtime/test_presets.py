"""The shipped presets of issue 17: the reference constellation and Starcloud-1, read
by name as ``--scenario reference`` reads them, hold what the README says of them."""

from __future__ import annotations

import math

import numpy as np

from channels.geometry import EARTH_RADIUS_M
from linkstack.runtime import scenario as scenario_files

# a box round China (the reference's stations must all be in it)
CHINA_LAT_DEG = (18.0, 54.0)
CHINA_LON_DEG = (73.0, 135.0)


def _altitudes_km(sf: scenario_files.ScenarioFile) -> np.ndarray:
    r_m = sf.scenario.fleet.ecef(0.0)[0][:, 0, :]
    return (np.linalg.norm(r_m, axis=-1) - EARTH_RADIUS_M) / 1e3


def test_reference_preset() -> None:
    sf = scenario_files.load("reference")
    sc = sf.scenario
    assert sf.name == "reference"
    assert len(sc.satellites) == 12
    assert all(s.role == "compute" for s in sc.satellites)
    inclinations = {round(math.degrees(s.satrec.inclo), 2) for s in sc.satellites}
    assert len(inclinations) == 1 and 97.0 < inclinations.pop() < 98.0  # sun-synchronous
    assert np.all(np.abs(_altitudes_km(sf) - 500.0) < 25.0)  # about 500 km (Earth's flattening)
    assert len(sc.isl_pairs) == 12  # the ring
    assert sf.emulation.laser.rate_bps == 100e9
    assert sc.stations
    for st in sc.stations:
        assert CHINA_LAT_DEG[0] <= st.lat_deg <= CHINA_LAT_DEG[1], st.name
        assert CHINA_LON_DEG[0] <= st.lon_deg <= CHINA_LON_DEG[1], st.name
    timing = sf.emulation.service.timing
    assert timing is not None
    assert timing.accelerator.name == "reference-744"
    assert timing.accelerator.int8_ops_per_s == 744e12
    assert timing.model.name == "qwen3-8b" and timing.precision == "int8"


def test_starcloud_preset() -> None:
    sf = scenario_files.load("starcloud-1")
    sc = sf.scenario
    assert len(sc.satellites) == 1 and not sc.isl_pairs
    assert math.isclose(math.degrees(sc.satellites[0].satrec.inclo), 45.0, abs_tol=0.01)
    assert np.all(np.abs(_altitudes_km(sf) - 325.0) < 25.0)
    timing = sf.emulation.service.timing
    assert timing is not None
    assert timing.accelerator.name == "h100-sxm"
    assert timing.model.name == "gemma-3-1b"


def test_presets_listed_and_checked_by_cli(capsys) -> None:
    from linkstack.tools.cli import main

    for name in ("reference", "starcloud-1"):
        assert name in scenario_files.SHIPPED
        assert main(["scenario", "check", name]) == 0
        out = capsys.readouterr().out
        assert "modelled" in out
