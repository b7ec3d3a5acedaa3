"""``bench backends``: what the tiny onboard model costs (load, time to first token, tokens/s).

Cases (the tiny random-weights Qwen3, on the CPU, best of N runs):
- import: ``import torch`` and transformers' Qwen3 classes in a fresh interpreter, the
  one-time cost that the first ``load()`` of a process pays;
- load: build the tokenizer and the model from its seed (imports already done);
- TTFT: chat template, tokenization, prefill of a 64-octet prompt and the first token;
- decode: the tokens after the first of a 64-token greedy answer, per second;
- generate: a whole 64-token answer, greedy and sampled (T=1, top-p 0.95);
- generate 256: a longer answer (not with --quick).
Times come from the backend's own perf_counter stopwatch (``Generation.ttft_s``,
``generate_s``), the figures the service reports per query.
"""

from __future__ import annotations

import subprocess
import sys
import time

from linkstack.tools.bench.timing import Result
from payloads.backends import GenerationParams, make_backend

PROMPT = "Satellite 7, report the cloud cover over 45N 7E at the next pass, briefly."  # 74 B
PROMPT_64 = PROMPT[:64]


def bench_import() -> Result:
    code = "import torch; from transformers import Qwen3Config, Qwen3ForCausalLM"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return Result("import torch + transformers (fresh interpreter)", 1, 0, time.perf_counter() - t0)


def bench_load(repeat: int) -> Result:
    best = float("inf")
    for _ in range(repeat):
        backend = make_backend("tiny")
        best = min(best, backend.load())
        backend.close()
    return Result("tiny load (tokenizer + model from seed)", 1, 0, best)


def bench_generation(repeat: int, quick: bool) -> list[Result]:
    backend = make_backend("tiny")
    backend.load()
    backend.generate(PROMPT_64, GenerationParams(max_new_tokens=8))  # warm-up
    results = []
    runs = [
        ("greedy", GenerationParams(max_new_tokens=64)),
        ("sampled", GenerationParams(max_new_tokens=64, temperature=1.0, top_p=0.95)),
    ]
    if not quick:
        runs.append(("greedy, 256 tokens", GenerationParams(max_new_tokens=256)))
    for label, params in runs:
        gens = []
        for i in range(repeat):
            gens.append(
                backend.generate(PROMPT_64, GenerationParams(**{**vars(params), "seed": i}))
            )
        if label == "greedy":
            ttft = min(g.ttft_s for g in gens)
            results.append(Result("tiny time to first token (64-octet prompt)", 1, 0, ttft))
            best = min(gens, key=lambda g: g.generate_s - g.ttft_s)
            n = best.completion_tokens - 1
            results.append(
                Result(
                    f"tiny decode, {n} tokens after the first", n, 0, best.generate_s - best.ttft_s
                )
            )
        # Sampled answers may end early on a stop token: compare whole answers only.
        full = [g for g in gens if g.finish_reason == "length"] or gens
        best = min(full, key=lambda g: g.generate_s / max(g.completion_tokens, 1))
        octets = len(best.text.encode("utf-8"))
        case = f"tiny generate {best.completion_tokens} tokens, {label.split(',')[0]}"
        results.append(Result(case, best.completion_tokens, octets, best.generate_s))
    backend.close()
    return results


def run(quick: bool = False) -> list[Result]:
    repeat = 3 if quick else 10
    results = [bench_import()]
    results.append(bench_load(repeat))
    results.extend(bench_generation(repeat, quick))
    return results


def print_results(results: list[Result], out=sys.stdout) -> None:
    width = max(len(r.case) for r in results) + 2
    print("linkstack bench backends (tiny random-weights Qwen3, CPU)", file=out)
    print(f"  {'case':<{width}}{'ms':>10}{'tokens/s':>12}", file=out)
    for r in results:
        rate = f"{r.units_per_s:,.0f}" if r.units > 1 else ""
        print(f"  {r.case:<{width}}{r.seconds * 1e3:>10.1f}{rate:>12}", file=out)


def main(argv: list[str] | None = None) -> int:
    from linkstack.tools.bench.timing import describe_machine, pin_one_core  # noqa: PLC0415

    argv = sys.argv[1:] if argv is None else argv
    pinned = "not pinned (--no-pin)" if "--no-pin" in argv else pin_one_core()
    print(f"# {describe_machine()}; {pinned}", flush=True)
    print_results(run(quick="--quick" in argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
