"""``bench backends``: what the tiny onboard model costs (load, time to first token, tokens/s).

Cases (the tiny random-weights Qwen3, on the CPU; the median of N runs, 11 or 5 with
``--quick``, 3 or 1 for the import, with the spread of the N runs):
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
from typing import TextIO

from linkstack.tools.bench.timing import SPREAD_NOTE, Result, format_spread, time_runs
from payloads.backends import GenerationParams, make_backend

PROMPT = "Satellite 7, report the cloud cover over 45N 7E at the next pass, briefly."  # 74 B
PROMPT_64 = PROMPT[:64]


def bench_import(repeat: int) -> Result:
    code = "import torch; from transformers import Qwen3Config, Qwen3ForCausalLM"
    run_s = time_runs(lambda: subprocess.run([sys.executable, "-c", code], check=True), repeat)
    return Result("import torch + transformers (fresh interpreter)", 1, 0, run_s)


def bench_load(repeat: int) -> Result:
    run_s = []
    for i in range(repeat + 1):  # the first, untimed, pays the imports
        backend = make_backend("tiny")
        seconds = backend.load()
        backend.close()
        if i:
            run_s.append(seconds)
    return Result("tiny load (tokenizer + model from seed)", 1, 0, run_s)


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
        # Sampled answers may end early on a stop token: time the longest answers only
        # (all runs, when none stops early), so that every run counted did the same work.
        n = max(g.completion_tokens for g in gens)
        full = [g for g in gens if g.completion_tokens == n]
        if label == "greedy":
            ttft = [g.ttft_s for g in gens]
            results.append(Result("tiny time to first token (64-octet prompt)", 1, 0, ttft))
            results.append(
                Result(
                    f"tiny decode, {n - 1} tokens after the first",
                    n - 1,
                    0,
                    [g.generate_s - g.ttft_s for g in full],
                )
            )
        octets = len(full[0].text.encode("utf-8"))
        case = f"tiny generate {n} tokens, {label.split(',')[0]}"
        results.append(Result(case, n, octets, [g.generate_s for g in full]))
    backend.close()
    return results


def run(quick: bool = False) -> list[Result]:
    repeat = 5 if quick else 11
    results = [bench_import(1 if quick else 3)]  # seconds a run
    results.append(bench_load(repeat))
    results.extend(bench_generation(repeat, quick))
    return results


def print_results(results: list[Result], out: TextIO = sys.stdout) -> None:
    width = max(len(r.case) for r in results) + 2
    print("linkstack bench backends (tiny random-weights Qwen3, CPU)", file=out)
    print(f"  ({SPREAD_NOTE})", file=out)
    print(f"  {'case':<{width}}{'N':>4}{'ms':>10}{'tokens/s':>12}{'spread':>15}", file=out)
    for r in results:
        rate = f"{r.units_per_s:,.0f}" if r.units > 1 else ""
        print(
            f"  {r.case:<{width}}{r.runs:>4}{r.median_s * 1e3:>10.1f}{rate:>12}"
            f"{format_spread(r.run_s):>15}",
            file=out,
        )


def main(argv: list[str] | None = None) -> int:
    from linkstack.tools.bench.timing import describe_machine, pin_one_core  # noqa: PLC0415

    argv = sys.argv[1:] if argv is None else argv
    pinned = "not pinned (--no-pin)" if "--no-pin" in argv else pin_one_core()
    print(f"# {describe_machine()}; {pinned}", flush=True)
    print_results(run(quick="--quick" in argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
