"""``linkstack bench fec``: Reed-Solomon throughput against reedsolo, in one run.

Operations, for RS(255,223) in the dual basis: encode; decode of error-free
codeblocks; decode with 16 symbol errors in every codeword (the most the code
corrects). linkstack runs on batches of 1115-octet frames (interleaving depth
5) and also one frame per call; reedsolo, on its fastest backend available
(the compiled ``creedsolo`` when its wheel is installed), one 255-octet codeword
per call. MB/s counts information octets (223 per codeword) over the median of
N runs after a warm-up run (N = 11, 5 with ``--quick``), with the spread of the N
runs (the slowest and the fastest against the median).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from linkstack.ccsds.coding.rs import TO_CONV, ReedSolomon
from linkstack.tools.bench.timing import SPREAD_NOTE, Result, format_spread, time_runs


@dataclass
class FecRow:
    operation: str
    ours: Result
    ref: Result | None  # reedsolo, where it has the operation

    @property
    def ratio(self) -> float | None:
        """linkstack's median MB/s over reedsolo's."""
        return self.ours.mb_per_s / self.ref.mb_per_s if self.ref is not None else None


def reference_backend() -> tuple[str, ModuleType]:
    """(name, module) of reedsolo's fastest importable backend."""
    for name in ("creedsolo", "reedsolo"):
        try:
            return name, importlib.import_module(name)
        except ImportError:
            continue
    raise RuntimeError("reedsolo is not installed")


def _inject(codec: ReedSolomon, blocks: np.ndarray, per_codeword: int, seed: int) -> np.ndarray:
    """Copy of ``blocks`` with ``per_codeword`` symbol errors in every codeword."""
    rng = np.random.default_rng(seed)
    bad = blocks.copy()
    n_cw = codec.k + 2 * codec.e
    for n in range(bad.shape[0]):
        for j in range(codec.depth):
            for p in rng.choice(n_cw, per_codeword, replace=False):
                if p < codec.k:
                    idx = p * codec.depth + j
                else:
                    idx = codec.frame_length + (p - codec.k) * codec.depth + j
                bad[n, idx] ^= rng.integers(1, 256)
    return bad


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    # warm-up: compilation, page faults on the tables, caches
    return time_runs(fn, repeat, warmup=1)


def run(quick: bool = False) -> tuple[str, list[FecRow]]:
    repeat = 5 if quick else 11  # the median of many: this class of VM is noisy
    n_frames = 100 if quick else 1000
    codec = ReedSolomon(16, 5)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (n_frames, codec.frame_length), dtype=np.uint8)
    blocks = codec.encode_batch(frames)
    bad = _inject(codec, blocks, 16, 2)
    n_cw = n_frames * codec.depth  # codewords a run
    info = frames.size

    def ours(op: str, fn: Callable[[], object]) -> Result:
        return Result(op, n_cw, info, _timed(fn, repeat))

    batch = [
        ours("encode", lambda: codec.encode_batch(frames)),
        ours("decode, no errors", lambda: codec.decode_batch(blocks)),
        ours("decode, 16 errors/codeword", lambda: codec.decode_batch(bad)),
    ]
    some = min(n_frames, 200)
    frame_bytes = [f.tobytes() for f in frames[:some]]
    block_bytes = [b.tobytes() for b in blocks[:some]]
    some_info = some * codec.frame_length
    single = [
        Result(
            "encode, one frame per call",
            some * codec.depth,
            some_info,
            _timed(lambda: [codec.encode(f) for f in frame_bytes], repeat),
        ),
        Result(
            "decode, one frame per call",
            some * codec.depth,
            some_info,
            _timed(lambda: [codec.decode(b) for b in block_bytes], repeat),
        ),
    ]

    name, mod = reference_backend()
    ref = mod.RSCodec(32, nsize=255, fcr=112, prim=0x187, generator=0xAD, c_exp=8)
    n_ref = 20 if quick else (400 if name == "creedsolo" else 40)
    # reedsolo works in the conventional basis: give it the same codewords converted
    one = ReedSolomon(16, 1)
    ref_frames = rng.integers(0, 256, (n_ref, 223), dtype=np.uint8)
    ref_blocks = one.encode_batch(ref_frames)
    ref_bad = _inject(one, ref_blocks, 16, 3)
    msgs = [bytearray(TO_CONV[f].tobytes()) for f in ref_frames]
    clean = [bytearray(TO_CONV[b].tobytes()) for b in ref_blocks]
    noisy = [bytearray(TO_CONV[b].tobytes()) for b in ref_bad]

    def theirs(op: str, fn: Callable[[], object]) -> Result:
        return Result(op, n_ref, n_ref * 223, _timed(fn, repeat))

    reference = [
        theirs("encode", lambda: [ref.encode(m) for m in msgs]),
        theirs("decode, no errors", lambda: [ref.decode(c) for c in clean]),
        theirs("decode, 16 errors/codeword", lambda: [ref.decode(bytearray(c)) for c in noisy]),
    ]
    rows = [FecRow(o.case, o, r) for o, r in zip(batch, reference, strict=True)]
    rows += [FecRow(o.case, o, None) for o in single]
    return name, rows


def print_report(backend: str, rows: list[FecRow]) -> None:
    runs = rows[0].ours.runs
    print("linkstack bench fec: RS(255,223), dual basis; linkstack batches of I=5 frames")
    print(f"  ({SPREAD_NOTE}; N = {runs}, after a warm-up run)")
    head = f"reedsolo ({backend}) MB/s"
    print(
        f"  {'operation':<30}{'linkstack MB/s':>16}{'spread':>15}{head:>28}{'spread':>15}"
        f"{'ratio':>9}"
    )
    for r in rows:
        ours = f"{r.ours.mb_per_s:>16.1f}{format_spread(r.ours.run_s):>15}"
        if r.ref is not None:
            theirs = f"{r.ref.mb_per_s:>28.2f}{format_spread(r.ref.run_s):>15}"
        else:
            theirs = f"{'-':>28}{'':>15}"
        ratio = f"{r.ratio:>8.0f}x" if r.ratio is not None else f"{'':>9}"
        print(f"  {r.operation:<30}{ours}{theirs}{ratio}")


def main(quick: bool = False) -> None:
    t0 = time.perf_counter()
    backend, rows = run(quick)
    print_report(backend, rows)
    print(f"# {time.perf_counter() - t0:.0f} s")
