"""The scenario's onboard accelerator: the timing keys of its ``[model]`` table.

    [model]
    backend = "tiny"                  # where the text comes from
    accelerator = "reference-744"     # whose compute time the inference legs take
    profile = "qwen3-8b"              # the model it runs (payloads.model_profiles)
    precision = "int8"                # bf16 | int8 | int4
    compute_efficiency = 0.5          # of the peak, in prefill
    bandwidth_efficiency = 0.7        # of the memory bandwidth, in decode
    batch = 1
    memory_bandwidth_gb_s = 400.0     # replaces the preset's (an assumed figure)
    int8_tops = 744.0                 # replaces the preset's peaks
    fp16_tflops = 372.0

``concurrency = "auto"`` (with an accelerator): the endpoint runs as many inferences
at once as the KV cache of ``context_tokens`` (default 4096) each fits in the
accelerator's memory after the weights (:meth:`InferenceTiming.max_batch`), at most
64; each is then timed as one of a batch of the inferences running when it starts.

``accelerator`` absent: no timing model, the inference legs are the host's stopwatch
(and none of the other keys may be given). ``accelerator = "host"`` takes its figures
from the keys, all three required (what ``linkstack calibrate`` prints for this host).
"""

from __future__ import annotations

from linkstack.tomlcheck import Table
from payloads.accelerators import GIGA, PRECISIONS, PRESETS, TERA, Accelerator
from payloads.model_profiles import PROFILES
from payloads.timing import (
    DEFAULT_BANDWIDTH_EFFICIENCY,
    DEFAULT_COMPUTE_EFFICIENCY,
    InferenceTiming,
)

TIMING_KEYS = (
    "accelerator",
    "profile",
    "precision",
    "compute_efficiency",
    "bandwidth_efficiency",
    "batch",
    "memory_bandwidth_gb_s",
    "int8_tops",
    "fp16_tflops",
)
HOST = "host"
# key -> (the Accelerator figure, its unit in the file)
_FIGURE_KEYS = {
    "memory_bandwidth_gb_s": ("memory_bandwidth_bytes_per_s", GIGA),
    "int8_tops": ("int8_ops_per_s", TERA),
    "fp16_tflops": ("fp16_flops_per_s", TERA),
}


AUTO = "auto"
MAX_CONCURRENCY = 64
DEFAULT_CONTEXT_TOKENS = 4096


def wants_auto_concurrency(t: Table) -> bool:
    """Whether ``concurrency = "auto"`` (the caller reads an integer otherwise)."""
    return t.raw("concurrency") == AUTO


def auto_concurrency(t: Table, timing: InferenceTiming | None) -> int:
    """``concurrency = "auto"``: the inferences whose KV cache of ``context_tokens``
    fits the accelerator's memory after the weights (1..64)."""
    if timing is None:
        raise t.error("concurrency", '"auto" needs model.accelerator (whose memory it fills)')
    context = t.integer("context_tokens", DEFAULT_CONTEXT_TOKENS, 1, 1 << 20)
    fits = timing.max_batch(context)
    if fits < 1:
        raise t.error(
            "concurrency",
            f'"auto": {timing.model.name} in {timing.precision} and one KV cache of {context} '
            f"tokens do not fit the {timing.accelerator.memory_bytes / 1e9:g} GB of "
            f"{timing.accelerator.name}",
        )
    return min(fits, MAX_CONCURRENCY)


def read_timing(t: Table) -> InferenceTiming | None:
    """The ``[model]`` table's timing model, or None without ``accelerator``. Marks
    its keys as known (the caller's ``done()`` refuses the others)."""
    if not t.has("accelerator"):
        for key in TIMING_KEYS:
            if t.has(key):
                raise t.error(key, "needs model.accelerator (the accelerator it describes)")
        return None
    name = t.choice("accelerator", "", (*PRESETS, HOST), "accelerator")
    model = PROFILES[t.choice("profile", "qwen3-0.6b", tuple(PROFILES), "model profile")]
    precision = t.choice("precision", "bf16", PRECISIONS, "precision")
    compute = t.number("compute_efficiency", DEFAULT_COMPUTE_EFFICIENCY, 0.0, 1.0, lo_open=True)
    bandwidth = t.number(
        "bandwidth_efficiency", DEFAULT_BANDWIDTH_EFFICIENCY, 0.0, 1.0, lo_open=True
    )
    batch = t.integer("batch", 1, 1, 4096)
    figures = {
        field: t.number(key, 0.0, 0.0, lo_open=True) * unit
        for key, (field, unit) in _FIGURE_KEYS.items()
        if t.has(key)
    }
    if name == HOST:
        missing = [key for key, (field, _) in _FIGURE_KEYS.items() if field not in figures]
        if missing:
            raise t.error(
                missing[0],
                'accelerator = "host" needs its figures: memory_bandwidth_gb_s, int8_tops '
                "and fp16_tflops (linkstack calibrate prints them for this machine)",
            )
        acc = Accelerator(
            HOST,
            "this host, as linkstack calibrate measured it",
            int8_ops_per_s=figures["int8_ops_per_s"],
            fp16_flops_per_s=figures["fp16_flops_per_s"],
            memory_bandwidth_bytes_per_s=figures["memory_bandwidth_bytes_per_s"],
            memory_bytes=64 * GIGA,  # not a limit the host's timing checks
            power_load_w=1.0,  # the host's power is not modelled
            power_idle_w=0.0,
        )
    else:
        acc = PRESETS[name].with_figures(**figures)
    with t.wrapping():
        return InferenceTiming(acc, model, precision, compute, bandwidth, batch)
