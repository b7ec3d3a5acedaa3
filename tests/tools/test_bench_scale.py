"""``bench scale``: its parts of planned-2800, its growth fit, and a small run that
answers every query (no timing is checked: the figures are the bench's to report)."""

from __future__ import annotations

import io
import math
from collections import Counter

import pytest

from linkstack.runtime import scenario as scenario_files
from linkstack.tools.bench import scale
from linkstack.tools.cli import main as cli_main


def test_a_part_of_planned_2800_takes_each_shell_in_proportion():
    part, config = scale.planned_part(192)
    whole = scenario_files.load("planned-2800").scenario
    assert len(part.satellites) == 192
    shares = Counter(part.shells)
    assert sum(shares.values()) == 192
    for shell, n in Counter(whole.shells).items():
        assert abs(shares[shell] - 192 * n / 2800) < 1  # rounded, adding up
    # its first satellites plane by plane, with every laser link between two of them
    names = set(part.satellite_names)
    kept = {
        frozenset((part.satellite_names[a], part.satellite_names[b])) for a, b in part.isl_pairs
    }
    w = whole.satellite_names
    assert kept == {
        frozenset((w[a], w[b])) for a, b in whole.isl_pairs if w[a] in names and w[b] in names
    }
    assert "DD500-P01-001" in names and "DD500-P02-001" not in names  # 41 of the first plane
    assert config.scenario is part and config.uplink.protocol == "uslp"
    assert config.computing == tuple(s.name for s in part.satellites if s.role == "inference")
    assert part.stations == whole.stations
    default, cfg12 = scale.planned_part(12)
    assert default.name == "default" and cfg12.computing is None
    with pytest.raises(ValueError, match="satellites"):
        scale.planned_part(2801)


def test_growth_exponents_are_the_log_log_slopes():
    assert scale.slope([10, 100, 1000], [2.0, 20.0, 200.0]) == pytest.approx(1.0)
    assert scale.slope([10, 100], [5.0, 5.0]) == pytest.approx(0.0)
    assert scale.slope([1, 4, 16], [1.0, 2.0, 4.0]) == pytest.approx(0.5)
    assert math.isnan(scale.slope([10, 10], [1.0, 2.0]))


def test_the_cases_of_each_mode():
    quick = scale.plan_cases(True, None, None, None)
    assert quick == [(12, 12, 1.0), (40, 12, 1.0), (40, 3, 1.0), (40, 6, 1.0)]
    full = scale.plan_cases(False, None, None, None)
    assert full[:4] == [(n, 10_000, 24.0) for n in (12, 192, 700, 2800)]
    assert full[4:] == [(2800, 2_500, 24.0), (2800, 5_000, 24.0)]
    assert scale.plan_cases(False, (12, 50), 100, 2.0)[2:] == [(50, 25, 2.0), (50, 50, 2.0)]


def test_a_small_run_answers_every_query_and_says_so():
    """40 satellites of planned-2800 (USLP, its 20 stations), 12 Poisson queries over an
    hour: every one answered; the table names the sizes and the growth."""
    case = scale.run_case(40, 12, 1.0)
    assert case.satellites == 40 and case.stations == 20 and case.laser_links > 0
    assert case.answered == case.queries == 12 and case.unanswered == {}
    assert case.emulated_s >= 0.0 and case.peak_rss_mib > 0.0 and case.wall_s > 0.0
    small = scale.run_case(12, 4, 1.0)
    assert small.answered == 4 and small.satellites == 12 and small.stations == 5
    out = io.StringIO()
    scale.print_results([small, case], out)
    text = out.getvalue()
    assert "NOT ANSWERED" not in text and "wall time ~ satellites^" in text
    lost = scale.ScaleCase(**{**vars(case), "answered": 10, "unanswered": {"no answer": 2}})
    out = io.StringIO()
    scale.print_results([lost], out)
    assert "NOT ANSWERED: no answer 2" in out.getvalue()


def test_a_case_in_its_own_process_and_the_command_line(capsys):
    case = scale.run_isolated(12, 3, 0.5)  # the JSON of a fresh process, read back
    assert case.satellites == 12 and case.answered == 3 and case.peak_rss_mib > 0.0
    assert cli_main(["bench", "scale", "--no-pin", "--satellites", "2801"]) == 2
    assert "--satellites in 1..2800" in capsys.readouterr().err
    assert cli_main(["bench", "scale", "--no-pin", "--queries", "0"]) == 2
