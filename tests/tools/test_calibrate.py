"""``linkstack calibrate`` at tiny shapes: it measures, fits and prints, and what it
prints is a scenario's [model] table. No assertion on how fast anything runs."""

import io
import re

import pytest

from linkstack.errors import ConfigError
from linkstack.runtime.scenario import loads
from linkstack.tools import calibrate, cli
from payloads.model_profiles import PROFILES


def test_calibrate_measures_fits_and_prints_measured_against_modelled():
    out = io.StringIO()
    ce, be, host, runs = calibrate.run(["tiny"], [4, 12], 8, "fp32", "cpu", 2, out)
    text = out.getvalue()
    assert 0 < ce <= 1 and 0 < be <= 1 and host.name == "host"
    assert [(m.model, m.prompt_tokens) for m in runs] == [("tiny", 4), ("tiny", 12)]
    assert all(m.ttft_s > 0 and m.tpot_s > 0 for m in runs)
    rows = [line.split() for line in text.splitlines() if line.startswith("tiny ")]
    assert len(rows) == 2 and all(len(row) == 8 for row in rows)  # measured | modelled
    # the keys it prints make a scenario's legs this machine's
    keys = "\n".join(line.strip() for line in text.split("([model] keys):")[1].splitlines())
    service = loads(f"[model]\nprecision = 'fp32'\n{keys}\n", source="calibrated").emulation.service
    assert service.timing_source == "modelled: host/qwen3-0.6b/fp32"
    assert service.timing.compute_efficiency == pytest.approx(ce, rel=1e-2)


def test_shapes_by_size_and_the_random_model_has_the_profiles_parameters():
    assert calibrate.shape("0.6b") is PROFILES["qwen3-0.6b"]
    assert calibrate.shape("qwen3-30b-a3b") is PROFILES["qwen3-30b-a3b"]
    with pytest.raises(ConfigError, match="known: tiny, mini"):
        calibrate.shape("gemma-3-1b")  # calibrate builds Qwen3 models only
    tiny = calibrate.SMALL["tiny"]
    model = calibrate.build_model(tiny, "fp32", "cpu")
    assert sum(p.numel() for p in model.parameters()) == tiny.params


def test_the_command_line_refuses_bad_options(capsys):
    assert cli.main(["calibrate", "--models", "70b"]) == 2
    assert re.search(r"no model shape '70b'", capsys.readouterr().err)
    assert cli.main(["calibrate", "--models", "tiny", "--new-tokens", "1"]) == 2
    assert "--new-tokens >= 2" in capsys.readouterr().err


def test_profiles_prints_the_timing_models_figures_for_every_preset(capsys):
    from payloads.accelerators import PRESETS
    from payloads.timing import make_timing

    assert (
        cli.main(["calibrate", "--profiles", "--precisions", "int8", "--prompt-tokens", "100"]) == 0
    )
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert len(rows) == len(PRESETS) * len(PROFILES)
    row = next(r for r in rows if r[:3] == ["reference-744", "qwen3-8b", "int8"])
    t = make_timing("reference-744", "qwen3-8b", "int8")
    assert float(row[3]) == pytest.approx(t.ttft_s(100) * 1e3, abs=0.05)
    assert float(row[5]) == pytest.approx(t.generation_s(100, 256)[1], abs=0.005)
    assert cli.main(["calibrate", "--profiles", "--precisions", "fp8"]) == 2
