"""``linkstack calibrate``: measure this machine running random-weight Qwen3 models of
the real shapes, fit the timing model's efficiency factors, and print measured
against modelled.

Random weights time the same as trained ones (the same matrix products on the same
shapes; only the text is noise). Each model is transformers' own
``Qwen3ForCausalLM`` built from a ``Qwen3Config`` of the profile's shape
(:mod:`payloads.model_profiles`), randomly initialised from a fixed seed, on the CPU
(or ``--device cuda``). For each prompt length it times a greedy generation of one
token (the time to first token: the prefill and its token) and one of ``--new-tokens``
tokens right after it, whose difference over the tokens after the first is the time
per output token (through the KV cache); medians of ``--repeats`` runs.

The machine's peaks are measured too (the roofline's ceilings): a large matrix
product for the compute rate, a large copy for the memory bandwidth. The efficiency
factors are then what the model reached of them: compute efficiency the median over
prompt lengths of (prefill operations / TTFT) / peak, bandwidth efficiency the median
of (octets one decode step reads / TPOT) / bandwidth. With them the timing model
(:mod:`payloads.timing`) predicts each measurement; the table shows both, and the
``[model]`` keys that make a scenario's inference legs this machine's.

By default the shapes are small (``mini``: Qwen3's architecture at a few million
parameters, seconds on two cores); ``--models 0.6b,1.7b`` runs the real shapes.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from linkstack.errors import ConfigError
from payloads.accelerators import GIGA, PRECISIONS, PRESETS, TERA, Accelerator
from payloads.model_profiles import PROFILES, ModelProfile
from payloads.timing import (
    DEFAULT_BANDWIDTH_EFFICIENCY,
    DEFAULT_COMPUTE_EFFICIENCY,
    InferenceTiming,
)

# Qwen3's architecture at calibration-test sizes (not published models): the same
# layer types and head layout, a smaller vocabulary.
SMALL: dict[str, ModelProfile] = {
    "tiny": ModelProfile("tiny", "(calibration)", 2, 64, 192, 4, 2, 16, 512, True),
    "mini": ModelProfile("mini", "(calibration)", 4, 256, 768, 8, 4, 32, 8192, True),
    "small": ModelProfile("small", "(calibration)", 8, 512, 1536, 8, 4, 64, 32768, True),
}
DTYPES = {"fp32": 4, "bf16": 2}


@dataclass(frozen=True)
class Measurement:
    model: str
    prompt_tokens: int
    ttft_s: float
    tpot_s: float
    new_tokens: int


@dataclass(frozen=True)
class HostPeaks:
    ops_per_s: float  # a large matrix product, in the run's dtype
    bandwidth_bytes_per_s: float  # a large copy: octets read and written


def shape(name: str) -> ModelProfile:
    """A calibration shape (``tiny``, ``mini``, ``small``) or a Qwen3 profile, by its
    full name or its size (``0.6b`` for ``qwen3-0.6b``)."""
    key = name.strip().lower()
    for candidate in (key, f"qwen3-{key}"):
        if candidate in SMALL:
            return SMALL[candidate]
        if candidate in PROFILES and PROFILES[candidate].hf_id.startswith("Qwen/"):
            return PROFILES[candidate]
    known = ", ".join(
        [*SMALL, *(n.removeprefix("qwen3-") for n in PROFILES if n.startswith("qwen3"))]
    )
    raise ConfigError("calibrate", "models", f"no model shape {name!r}; known: {known}")


def qwen3_config(profile: ModelProfile) -> Any:
    """transformers' ``Qwen3Config`` (or ``Qwen3MoeConfig``) of a profile's shape."""
    common: dict[str, Any] = {
        "vocab_size": profile.vocab,
        "hidden_size": profile.hidden,
        "intermediate_size": profile.intermediate,
        "num_hidden_layers": profile.layers,
        "num_attention_heads": profile.heads,
        "num_key_value_heads": profile.kv_heads,
        "head_dim": profile.head_dim,
        "tie_word_embeddings": profile.tied_embeddings,
        "max_position_embeddings": 40960,
        "rope_theta": 1_000_000.0,
        "rms_norm_eps": 1e-6,
    }
    if profile.moe:
        from transformers import Qwen3MoeConfig

        return Qwen3MoeConfig(
            **common,
            num_experts=profile.experts,
            num_experts_per_tok=profile.active_experts,
            moe_intermediate_size=profile.expert_intermediate,
        )
    from transformers import Qwen3Config

    return Qwen3Config(**common)


def build_model(profile: ModelProfile, dtype: str, device: str, seed: int = 0) -> Any:
    """A random-weight model of the profile's shape (transformers' own classes)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = qwen3_config(profile)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(
            config, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32
        )
    return model.to(device).eval()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def measure_peaks(dtype: str, device: str, repeats: int = 3) -> HostPeaks:
    """The ceilings: a 2048-square matrix product, and a copy of 256 MiB."""
    import torch

    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    n = 2048
    a = torch.randn(n, n, dtype=torch_dtype, device=device)
    b = torch.randn(n, n, dtype=torch_dtype, device=device)
    src = torch.empty(256 * 2**20 // DTYPES[dtype], dtype=torch_dtype, device=device)
    dst = torch.empty_like(src)

    def best(fn: Callable[[], object]) -> float:
        fn()
        _sync(device)
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            _sync(device)
            runs.append(time.perf_counter() - t0)
        return min(runs)  # a ceiling: the best the machine did

    mm_s = best(lambda: torch.mm(a, b))
    copy_s = best(lambda: dst.copy_(src))
    return HostPeaks(2.0 * n**3 / mm_s, 2.0 * src.numel() * src.element_size() / copy_s)


def _timed_generate(model: Any, ids: Any, n: int, kwargs: dict[str, Any], device: str) -> float:
    """Seconds a greedy generation of exactly ``n`` tokens takes."""
    _sync(device)
    t0 = time.perf_counter()
    model.generate(ids, max_new_tokens=n, min_new_tokens=n, **kwargs)
    _sync(device)
    return time.perf_counter() - t0


def measure(
    profile: ModelProfile,
    prompt_lengths: Sequence[int],
    new_tokens: int,
    dtype: str,
    device: str,
    repeats: int,
    progress: Callable[[str], None],
) -> list[Measurement]:
    """TTFT and TPOT of a random-weight model of ``profile`` at each prompt length."""
    import torch

    progress(f"  building {profile.name} ({profile.params / 1e9:.3g} B parameters, {dtype}) ...")
    model = build_model(profile, dtype, device)
    gen = torch.Generator().manual_seed(1)
    out = []
    for p in prompt_lengths:
        ids = torch.randint(0, profile.vocab, (1, p), generator=gen).to(device)
        mask = torch.ones_like(ids)
        kwargs: dict[str, Any] = {
            "attention_mask": mask,
            "do_sample": False,
            "pad_token_id": 0,
            "eos_token_id": None,
        }
        with torch.inference_mode():
            _timed_generate(model, ids, 2, kwargs, device)  # warm-up: one-time costs
            # the first token: a generation of one (the prefill and its token); the rest:
            # what N tokens take more than one, in the same run (the same load)
            firsts, steps = [], []
            # a repeat whose N tokens took no longer than one (a tiny model under a
            # moving load) says nothing of the decode: tried again, up to 5 times over
            for _ in range(5 * repeats):
                first_s = _timed_generate(model, ids, 1, kwargs, device)
                all_s = _timed_generate(model, ids, new_tokens, kwargs, device)
                firsts.append(first_s)
                if all_s > first_s:
                    steps.append((all_s - first_s) / (new_tokens - 1))
                if len(steps) == repeats:
                    break
        if not steps:
            raise ConfigError(
                "calibrate",
                "measurement",
                f"{profile.name}, prompt {p}: {new_tokens} tokens never took longer than one "
                "(the machine's load moved too much): use more --new-tokens or --repeats",
            )
        ttft, tpot = statistics.median(firsts), statistics.median(steps)
        progress(f"    prompt {p:5d}: first token {ttft * 1e3:9.2f} ms, {1 / tpot:8.1f} tokens/s")
        out.append(Measurement(profile.name, p, ttft, tpot, new_tokens))
    del model
    gc.collect()
    return out


def host_accelerator(peaks: HostPeaks, memory_bytes: float = 64 * GIGA) -> Accelerator:
    """This machine as an accelerator: its measured ceilings as its peaks."""
    return Accelerator(
        "host",
        "this machine, as linkstack calibrate measured it",
        int8_ops_per_s=peaks.ops_per_s,
        fp16_flops_per_s=peaks.ops_per_s,
        memory_bandwidth_bytes_per_s=peaks.bandwidth_bytes_per_s,
        memory_bytes=memory_bytes,
        power_load_w=1.0,
        power_idle_w=0.0,
    )


def _timing(
    profile: ModelProfile, acc: Accelerator, dtype: str, ce: float, be: float
) -> InferenceTiming:
    precision = "fp32" if dtype == "fp32" else "bf16"
    return InferenceTiming(acc, profile, precision, ce, be, kv_bytes_per_value=DTYPES[dtype])


def reached(
    profile: ModelProfile, m: Measurement, acc: Accelerator, dtype: str
) -> tuple[float, float]:
    """What one run reached of the ceilings: (prefill operations / TTFT / peak, a decode
    step's octets / TPOT / bandwidth)."""
    precision = "fp32" if dtype == "fp32" else "bf16"
    compute = profile.prefill_ops(m.prompt_tokens) / m.ttft_s / acc.fp16_flops_per_s
    context = m.prompt_tokens + m.new_tokens // 2  # the middle of the run's contexts
    octets = profile.weight_bytes_read_per_step(precision) + context * profile.kv_bytes_per_token(
        DTYPES[dtype]
    )
    bandwidth = octets / m.tpot_s / acc.memory_bandwidth_bytes_per_s if m.tpot_s else 1.0
    return compute, bandwidth


def fit(
    profiles: dict[str, ModelProfile], runs: list[Measurement], acc: Accelerator, dtype: str
) -> tuple[float, float]:
    """(compute efficiency, bandwidth efficiency): the medians of what the runs reached
    of the ceilings (compute: each model's longest prompt, the most compute-bound),
    each at most 1."""
    longest = {m.model: m.prompt_tokens for m in runs}
    for m in runs:
        longest[m.model] = max(longest[m.model], m.prompt_tokens)
    pairs = [(m, reached(profiles[m.model], m, acc, dtype)) for m in runs]
    compute = [c for m, (c, _) in pairs if m.prompt_tokens == longest[m.model]]
    bandwidth = [b for _, (_, b) in pairs]
    return min(statistics.median(compute), 1.0), min(statistics.median(bandwidth), 1.0)


def report(
    profiles: dict[str, ModelProfile],
    runs: list[Measurement],
    acc: Accelerator,
    dtype: str,
    ce: float,
    be: float,
    out: TextIO,
) -> None:
    print(
        f"\n{'model':<12} {'prompt':>6}  {'TTFT ms':>10} {'modelled':>10}  "
        f"{'tokens/s':>9} {'modelled':>9}  {'reached: compute':>16} {'bandwidth':>9}",
        file=out,
    )
    for m in runs:
        t = _timing(profiles[m.model], acc, dtype, ce, be)
        context = m.prompt_tokens + m.new_tokens // 2
        compute, bandwidth = reached(profiles[m.model], m, acc, dtype)
        print(
            f"{m.model:<12} {m.prompt_tokens:>6}  {m.ttft_s * 1e3:>10.2f} "
            f"{t.ttft_s(m.prompt_tokens) * 1e3:>10.2f}  {1 / m.tpot_s:>9.1f} "
            f"{1 / t.tpot_s(context):>9.1f}  {compute:>16.3f} {bandwidth:>9.3f}",
            file=out,
        )


def run(
    models: Sequence[str],
    prompt_lengths: Sequence[int],
    new_tokens: int,
    dtype: str,
    device: str,
    repeats: int,
    out: TextIO = sys.stdout,
) -> tuple[float, float, Accelerator, list[Measurement]]:
    """Measure, fit and print; returns the efficiencies, the host and the runs."""
    import torch

    if dtype not in DTYPES:
        raise ConfigError(
            "calibrate", "dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}"
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("calibrate", "device", "cuda asked for but torch sees no GPU here")
    if not prompt_lengths or min(prompt_lengths) < 1 or new_tokens < 2 or repeats < 1:
        raise ConfigError(
            "calibrate", "lengths", "prompt lengths >= 1, --new-tokens >= 2, --repeats >= 1"
        )
    profiles = {p.name: p for p in (shape(m) for m in models)}
    where = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    threads = torch.get_num_threads()

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    say(f"linkstack calibrate: random-weight Qwen3 models on this machine ({where}, "
        f"{threads} torch threads, {dtype})")  # fmt: skip
    peaks = measure_peaks(dtype, device)
    say(
        f"  ceilings: matrix product {peaks.ops_per_s / TERA:.3f} T op/s, copy "
        f"{peaks.bandwidth_bytes_per_s / GIGA:.1f} GB/s"
    )
    runs: list[Measurement] = []
    for p in profiles.values():
        runs += measure(p, prompt_lengths, new_tokens, dtype, device, repeats, say)
    # the ceilings again: on a shared machine the load moves, and a ceiling is the best
    # the machine did, before or after
    again = measure_peaks(dtype, device)
    peaks = HostPeaks(
        max(peaks.ops_per_s, again.ops_per_s),
        max(peaks.bandwidth_bytes_per_s, again.bandwidth_bytes_per_s),
    )
    say(
        f"  ceilings after: matrix product {again.ops_per_s / TERA:.3f} T op/s, copy "
        f"{again.bandwidth_bytes_per_s / GIGA:.1f} GB/s (the higher of each is kept)"
    )
    acc = host_accelerator(peaks)
    ce, be = fit(profiles, runs, acc, dtype)
    say(f"  fitted: compute efficiency {ce:.3g}, bandwidth efficiency {be:.3g}")
    if ce >= 1.0 or be >= 1.0:
        say(
            "  note: the models reached more than a ceiling measured here (efficiency "
            "clamped to 1): the machine's load changed between the measurements; "
            "calibrate on an idle machine"
        )
    report(profiles, runs, acc, dtype, ce, be, out)
    say("\nthis machine as a scenario's onboard accelerator ([model] keys):")
    say('  accelerator = "host"')
    say(f"  int8_tops = {peaks.ops_per_s / TERA:.4g}")
    say(f"  fp16_tflops = {peaks.ops_per_s / TERA:.4g}")
    say(f"  memory_bandwidth_gb_s = {peaks.bandwidth_bytes_per_s / GIGA:.4g}")
    say(f"  compute_efficiency = {ce:.3g}")
    say(f"  bandwidth_efficiency = {be:.3g}")
    return ce, be, acc, runs


def profiles_table(
    prompt_tokens: int, completion_tokens: int, precisions: Sequence[str], out: TextIO
) -> None:
    """The timing model's figures for every preset accelerator and model profile (default
    efficiencies): time to first token, decode rate at the middle of the answer, the
    whole generation, and whether the weights and KV cache fit the memory."""
    print(
        f"modelled: a {prompt_tokens}-token prompt, {completion_tokens} tokens out, batch 1, "
        f"efficiencies {DEFAULT_COMPUTE_EFFICIENCY} (compute) and {DEFAULT_BANDWIDTH_EFFICIENCY} "
        "(bandwidth)",
        file=out,
    )
    print(
        f"{'accelerator':<22} {'model':<14} {'prec':<5} {'TTFT ms':>9} {'tokens/s':>9} "
        f"{'answer s':>9}  fits",
        file=out,
    )
    context = prompt_tokens + completion_tokens // 2
    for acc in PRESETS.values():
        for model in PROFILES.values():
            for precision in precisions:
                t = InferenceTiming(acc, model, precision)
                _, total_s = t.generation_s(prompt_tokens, completion_tokens)
                fits = "yes" if t.fits(prompt_tokens + completion_tokens) else "NO"
                print(
                    f"{acc.name:<22} {model.name:<14} {precision:<5} "
                    f"{t.ttft_s(prompt_tokens) * 1e3:>9.1f} {1 / t.tpot_s(context):>9.1f} "
                    f"{total_s:>9.2f}  {fits}",
                    file=out,
                )


def _cmd(args: argparse.Namespace) -> int:
    if args.profiles:
        precisions = [p for p in args.precisions.split(",") if p.strip()]
        bad = [p for p in precisions if p not in PRECISIONS]
        if bad or args.prompt_tokens < 1 or args.completion_tokens < 1:
            print(
                f"linkstack calibrate --profiles: precisions among {', '.join(PRECISIONS)}, "
                "--prompt-tokens and --completion-tokens >= 1",
                file=sys.stderr,
            )
            return 2
        profiles_table(args.prompt_tokens, args.completion_tokens, precisions, sys.stdout)
        return 0
    try:
        if args.threads < 0:
            raise ConfigError("calibrate", "threads", f"must be >= 0, got {args.threads}")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        models = [m for m in args.models.split(",") if m.strip()]
        lengths = [int(x) for x in args.prompt_lengths.split(",") if x.strip()]
        run(models, lengths, args.new_tokens, args.dtype, args.device, args.repeats)
    except (ConfigError, ValueError) as exc:
        print(f"linkstack calibrate: {exc}", file=sys.stderr)
        return 2
    return 0


def add_calibrate_parser(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure this machine running random-weight Qwen3 models; fit the timing model",
        description="Time random-weight Qwen3 models of the real shapes (transformers, torch) "
        "at a few prompt lengths: time to first token and tokens/s. Measure the machine's "
        "ceilings (a matrix product, a copy), fit the timing model's compute and bandwidth "
        "efficiencies, and print measured against modelled, and the [model] keys that make a "
        "scenario's inference legs this machine's. Default: small shapes (seconds); "
        "--models 0.6b,1.7b for the real ones (minutes on a CPU).",
    )
    p.add_argument(
        "--models",
        default="mini",
        help="comma-separated: tiny, mini, small (Qwen3's architecture, small) or Qwen3 "
        "sizes 0.6b, 1.7b, 4b, 8b, 14b, 32b, 30b-a3b (default mini)",
    )
    p.add_argument(
        "--prompt-lengths", default="16,128,512", help="prompt tokens (default 16,128,512)"
    )
    p.add_argument("--new-tokens", type=int, default=16, help="tokens decoded a run (default 16)")
    p.add_argument("--repeats", type=int, default=3, help="runs a measurement, median (default 3)")
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPES), help="default fp32 (CPU)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)"
    )
    p.add_argument(
        "--profiles",
        action="store_true",
        help="measure nothing: print the timing model's figures for every preset "
        "accelerator and model profile",
    )
    p.add_argument("--prompt-tokens", type=int, default=256, help="--profiles: (default 256)")
    p.add_argument("--completion-tokens", type=int, default=256, help="--profiles: (default 256)")
    p.add_argument(
        "--precisions", default="bf16,int8,int4", help="--profiles: (default bf16,int8,int4)"
    )
    p.set_defaults(func=_cmd)


__all__ = ["SMALL", "add_calibrate_parser", "fit", "measure", "profiles_table", "run", "shape"]
