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


def test_concurrency_auto_fills_the_accelerators_memory_with_kv_caches():
    """reference-744 (64 GB) running Qwen3-8B in int8: the weights, then KV caches of
    4,096 tokens at 36 layers x 8 KV heads x 128 x 2 (K and V) x 2 octets each."""
    text = '[model]\nconcurrency = "auto"\naccelerator = "reference-744"\nprofile = "qwen3-8b"\n'
    s = loads(text + 'precision = "int8"\n').emulation.service
    timing = s.timing
    kv_per_token = 36 * 8 * 128 * 2 * 2
    free = 64e9 - timing.model.weight_bytes("int8")
    assert timing.max_batch(4096) == int(free // (4096 * kv_per_token)) == 92
    assert s.concurrency == 64  # at most 64
    small = loads(text + 'precision = "int8"\ncontext_tokens = 32768\n').emulation.service
    assert small.concurrency == timing.max_batch(32768) == int(free // (32768 * kv_per_token))
    for bad, rule in (
        ('[model]\nconcurrency = "auto"\n', "needs model.accelerator"),
        (text.replace("qwen3-8b", "qwen3-32b").replace("reference-744", "jetson-agx-orin-64gb")
         + 'precision = "bf16"\n', "do not fit"),
    ):  # fmt: skip
        with pytest.raises(ScenarioError) as err:
            loads(bad)
        assert err.value.key == "model.concurrency" and rule in str(err.value)
