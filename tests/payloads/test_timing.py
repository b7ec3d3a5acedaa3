"""The timing model's figures, computed by hand for one profile."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.errors import ConfigError
from payloads.accelerators import JETSON_AGX_ORIN_64GB, PRESETS, accelerator
from payloads.model_profiles import PROFILES, profile
from payloads.timing import InferenceTiming, make_timing

# Qwen3-0.6B in bf16 on a Jetson AGX Orin 64 GB (42.5 TFLOPS dense fp16, 204.8 GB/s),
# 50 % of the compute peak, 70 % of the bandwidth
WEIGHTS = 595_984_384  # matrix parameters a token goes through (test_model_profiles)
KV = 2 * 28 * 8 * 128 * 2  # octets per token of context
ATTENTION = 4 * 28 * 16 * 128  # operations per token of context
COMPUTE = 42.5e12 * 0.5
BANDWIDTH = 204.8e9 * 0.7


def orin():
    return make_timing("jetson-agx-orin-64gb", "qwen3-0.6b", "bf16")


def test_decode_is_bandwidth_bound_by_hand():
    # at context 100: the weights and 100 tokens of KV, read once
    memory_s = (2 * WEIGHTS + 100 * KV) / BANDWIDTH
    compute_s = (2 * WEIGHTS + ATTENTION * 100) / COMPUTE
    assert memory_s == pytest.approx(8.39455e-3, rel=1e-5) and compute_s < memory_s / 100
    assert orin().tpot_s(100) == pytest.approx(memory_s, rel=1e-12)


def test_prefill_is_compute_bound_by_hand():
    ops = 2 * WEIGHTS * 500 + ATTENTION * 500 * 501 / 2
    compute_s = ops / COMPUTE
    memory_s = (2 * WEIGHTS + 500 * KV) / BANDWIDTH
    assert compute_s == pytest.approx(29.3983e-3, rel=1e-5) and memory_s < compute_s
    assert orin().ttft_s(500) == pytest.approx(compute_s, rel=1e-12)
    # a prompt of one token reads every weight for almost nothing: bandwidth-bound
    assert orin().ttft_s(1) == pytest.approx((2 * WEIGHTS + KV) / BANDWIDTH, rel=1e-12)


def test_a_generation_adds_a_token_at_a_growing_context():
    t = orin()
    ttft_s, total_s = t.generation_s(500, 4)
    assert ttft_s == t.ttft_s(500)
    assert total_s == pytest.approx(ttft_s + t.tpot_s(501) + t.tpot_s(502) + t.tpot_s(503))
    assert t.token_offsets_s(500, 4)[-1] == pytest.approx(total_s)
    assert t.generation_s(500, 0) == (ttft_s, ttft_s)  # nothing decoded: the prefill only


def test_a_batch_shares_the_weights_read_and_multiplies_the_rest():
    one = orin()
    eight = InferenceTiming(one.accelerator, one.model, "bf16", batch=8)
    assert eight.tpot_s(100) == pytest.approx((2 * WEIGHTS + 8 * 100 * KV) / BANDWIDTH)
    assert eight.ttft_s(500) == pytest.approx(8 * one.ttft_s(500))


def test_precision_sets_the_peak_and_the_octets():
    t8 = make_timing("reference-744", "qwen3-8b", "int8")
    t16 = make_timing("reference-744", "qwen3-8b", "bf16")
    weights = profile("qwen3-8b").matmul_params_per_token
    assert t8.tpot_s(1) == pytest.approx((weights + 147_456) / (400e9 * 0.7))
    assert t16.tpot_s(1) == pytest.approx((2 * weights + 147_456) / (400e9 * 0.7))
    long = 4000
    assert t8.ttft_s(long) == pytest.approx(profile("qwen3-8b").prefill_ops(long) / (744e12 * 0.5))
    assert t16.ttft_s(long) == pytest.approx(2 * t8.ttft_s(long))
    assert t8.label == "modelled: reference-744/qwen3-8b/int8"


def test_an_assumed_figure_can_be_replaced():
    fast = make_timing("reference-744", "qwen3-8b", "int8", memory_bandwidth_bytes_per_s=800e9)
    slow = make_timing("reference-744", "qwen3-8b", "int8")
    assert fast.tpot_s(10) == pytest.approx(slow.tpot_s(10) / 2)
    assert fast.accelerator.name == "reference-744*"  # says it is not the preset


def test_memory_fit():
    assert make_timing("jetson-agx-orin-64gb", "qwen3-32b", "int8").fits(4096)
    assert not make_timing("jetson-agx-orin-64gb", "qwen3-32b", "bf16").fits(4096)


def test_presets_are_dense_and_say_what_they_assume():
    assert JETSON_AGX_ORIN_64GB.int8_ops_per_s == 85e12  # 275 TOPS is sparse, GPU + DLAs
    assert accelerator("reference-744").int8_ops_per_s == 744e12
    assert any("bandwidth" in a for a in accelerator("reference-744").assumptions)
    for acc in PRESETS.values():
        assert acc.power_idle_w <= acc.power_load_w


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ConfigError, match="compute_efficiency"):
        make_timing("reference-744", "qwen3-8b", compute_efficiency=0)
    with pytest.raises(ConfigError, match="precision"):
        make_timing("reference-744", "qwen3-8b", "fp8")
    with pytest.raises(ConfigError, match="jetson-agx-orin-64gb"):
        accelerator("orin")
    with pytest.raises(ConfigError, match="memory_bytes_per_s"):
        make_timing("reference-744", "qwen3-8b", memory_bytes_per_s=1.0)


# Published measurements, the second check (README, "Accelerator and model profiles"):
# TensorRT Edge-LLM on a Jetson AGX Thor developer kit, batch 1, INT4 AWQ/GPTQ
# (nvidia.github.io/TensorRT-Edge-LLM, performance benchmarks): model, prompt tokens,
# prefill ms, generated tokens/s
THOR_PUBLISHED = [
    ("qwen3-0.6b", 366, 21.0, 270.2),
    ("qwen3-4b", 364, 116.2, 76.4),
    ("qwen3-30b-a3b", 370, 125.3, 81.3),
]


@pytest.mark.parametrize(("model", "prompt", "prefill_ms", "tokens_per_s"), THOR_PUBLISHED)
def test_decode_rates_are_within_a_factor_of_published_ones(
    model, prompt, prefill_ms, tokens_per_s
):
    """With the default efficiencies the model is optimistic, as a roofline is: the
    decode rate at most 2.1 times the published one (the smallest model, where fixed
    per-token costs weigh most) and never below it; prefill is 5 to 7 times faster
    than the INT4 kernels' (a compute efficiency near 0.08 fits those)."""
    t = make_timing("jetson-agx-thor", model, "int4")
    modelled = 1 / t.tpot_s(prompt + 64)
    assert tokens_per_s <= modelled <= 2.1 * tokens_per_s
    fitted = make_timing("jetson-agx-thor", model, "int4", compute_efficiency=0.08)
    assert fitted.ttft_s(prompt) * 1e3 == pytest.approx(prefill_ms, rel=0.3)


@settings(max_examples=200, deadline=None)
@given(
    acc=st.sampled_from(sorted(PRESETS)),
    model=st.sampled_from(sorted(PROFILES)),
    precision=st.sampled_from(["bf16", "int8", "int4"]),
    prompt=st.integers(1, 32_000),
    more=st.integers(1, 4000),
    batch=st.integers(1, 64),
)
def test_longer_work_never_takes_less_time(acc, model, precision, prompt, more, batch):
    t = make_timing(acc, model, precision, batch=batch)
    assert 0 < t.ttft_s(prompt) <= t.ttft_s(prompt + more)
    assert 0 < t.tpot_s(prompt) <= t.tpot_s(prompt + more)
    # a faster memory never makes it slower, and at most proportionally faster
    fast = make_timing(
        acc,
        model,
        precision,
        batch=batch,
        memory_bandwidth_bytes_per_s=2 * accelerator(acc).memory_bandwidth_bytes_per_s,
    )
    assert (
        t.tpot_s(prompt) / 2 <= fast.tpot_s(prompt) * (1 + 1e-12) <= t.tpot_s(prompt) * (1 + 1e-12)
    )
    ttft_s, total_s = t.generation_s(prompt, 3)
    assert total_s == pytest.approx(ttft_s + t.tpot_s(prompt + 1) + t.tpot_s(prompt + 2))


def test_utilisation_by_hand_and_power_growing_with_the_batch():
    t = orin()
    # a prompt of 500 (compute-bound) and 3 tokens decoded at 501, 502 (bandwidth-bound)
    prefill = (
        (2 * WEIGHTS * 500 + ATTENTION * 500 * 501 / 2) / COMPUTE,
        (2 * WEIGHTS + 500 * KV) / BANDWIDTH,
    )
    decodes = [
        ((2 * WEIGHTS + ATTENTION * c) / COMPUTE, (2 * WEIGHTS + c * KV) / BANDWIDTH)
        for c in (501, 502)
    ]
    steps = [prefill, *decodes]
    busy = sum(0.5 * m + 0.5 * c for c, m in steps)
    assert t.utilisation(500, 3) == pytest.approx(busy / sum(max(s) for s in steps), rel=1e-12)
    # a batch of one decoding: the memory busy, the compute units nearly idle
    assert t.utilisation(20, 200) == pytest.approx(0.5, abs=0.01)
    # the batch raises the draw (Orin: 15 W idle, 60 W at load) and the time a little,
    # while the energy of each query falls
    idle_w, load_w = t.accelerator.power_idle_w, t.accelerator.power_load_w
    figures = []
    for batch in (1, 8, 64):
        b = InferenceTiming(t.accelerator, t.model, "bf16", batch=batch)
        draw_w = idle_w + (load_w - idle_w) * b.utilisation(20, 200)
        figures.append((draw_w, draw_w * b.generation_s(20, 200)[1] / batch))
    assert figures[0][0] < figures[1][0] < figures[2][0] <= load_w
    assert figures[0][1] > figures[1][1] > figures[2][1]
    # all memory or all compute: the share decides
    assert (
        InferenceTiming(t.accelerator, t.model, memory_power_share=0.0).utilisation(20, 200) < 0.01
    )
    with pytest.raises(ConfigError, match="memory_power_share"):
        InferenceTiming(t.accelerator, t.model, memory_power_share=1.5)
