"""The scenario's [model] timing keys: the onboard accelerator whose compute time the
inference legs take."""

import pytest

from linkstack.runtime.scenario import ScenarioError, loads
from payloads.service import HOST_STOPWATCH


def service(text):
    return loads(text, source="test.toml").emulation.service


def test_without_an_accelerator_the_legs_are_the_hosts():
    assert service("").timing is None
    assert service("[model]\nbackend = 'tiny'\n").timing_source == HOST_STOPWATCH


def test_an_accelerator_a_profile_and_a_precision():
    s = service(
        "[model]\naccelerator = 'reference-744'\nprofile = 'qwen3-8b'\nprecision = 'int8'\n"
        "compute_efficiency = 0.4\nbandwidth_efficiency = 0.6\nbatch = 2\n"
    )
    t = s.timing
    assert s.timing_source == "modelled: reference-744/qwen3-8b/int8"
    assert (t.compute_efficiency, t.bandwidth_efficiency, t.batch) == (0.4, 0.6, 2)
    assert t.accelerator.int8_ops_per_s == 744e12
    # the assumed bandwidth, replaced
    s = service("[model]\naccelerator = 'reference-744'\nmemory_bandwidth_gb_s = 800\n")
    assert s.timing.accelerator.memory_bandwidth_bytes_per_s == 800e9
    assert s.timing.model.name == "qwen3-0.6b" and s.timing.precision == "bf16"


def test_the_host_as_calibrate_measured_it():
    s = service(
        "[model]\naccelerator = 'host'\nint8_tops = 0.5\nfp16_tflops = 0.5\n"
        "memory_bandwidth_gb_s = 20\nprecision = 'fp32'\n"
    )
    assert s.timing_source == "modelled: host/qwen3-0.6b/fp32"
    assert s.timing.accelerator.fp16_flops_per_s == 0.5e12


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("profile = 'qwen3-8b'", "model.profile: needs model.accelerator"),
        ("accelerator = 'orin'", "unknown accelerator 'orin'"),
        ("accelerator = 'reference-744'\nprofile = 'qwen3-9b'", "unknown model profile"),
        ("accelerator = 'reference-744'\nprecision = 'fp8'", "unknown precision"),
        ("accelerator = 'reference-744'\ncompute_efficiency = 1.5", "compute_efficiency"),
        ("accelerator = 'host'\nint8_tops = 1", "needs its figures"),
        ("accelerator = 'reference-744'\nbatchsize = 2", "batchsize"),
    ],
)
def test_bad_keys_are_refused_by_name(text, says):
    with pytest.raises(ScenarioError, match=says):
        service(f"[model]\n{text}\n")


def test_scenario_check_says_whose_the_inference_legs_are(tmp_path, capsys):
    from linkstack.tools.cli import main

    path = tmp_path / "orbit.toml"
    path.write_text("[model]\naccelerator = 'h100-sxm'\nprofile = 'gemma-3-1b'\n")
    assert main(["scenario", "check", str(path)]) == 0
    assert "inference legs: modelled: h100-sxm/gemma-3-1b/bf16" in capsys.readouterr().out
