"""Accelerator profiles: what an onboard computer can do for a language model.

A language model's time to first token is bound by compute (peak operations per
second) and its time per output token by memory bandwidth (the weights and the KV
cache are read once per decoded token), so an accelerator is described by those two
figures, at each precision the model may run in, with its memory size (does the
model fit?) and its power at load and at idle (for the power budget).

Figures are **dense** (no 2:4 structured sparsity): a language model's weights are
not pruned to the 2:4 pattern, so the sparse figures that datasheets headline are
twice what a Qwen3 model can use. The presets and their sources are in the README
("Accelerator and model profiles"); where a figure is not published, the preset says
what it assumes (``assumptions``) and every figure can be overridden
(:meth:`Accelerator.with_figures`, or the scenario's ``[model]`` keys).

Plain data; imports nothing but the base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from linkstack.errors import ConfigError

TERA = 1e12
GIGA = 1e9

# The precision a model runs in, and the peak it computes at: weights and activations
# in int8 (W8A8) use the int8 tensor peak; bf16 the fp16/bf16 peak; int4 weights are
# dequantised to fp16 in the matrix kernels (W4A16, as AWQ/GPTQ kernels and llama.cpp's
# Q4 run), so they compute at the fp16 peak while reading half an int8's bytes. fp32 is
# for the host that ``linkstack calibrate`` measures on its CPU: it computes at the
# ``fp16_flops_per_s`` figure, which for the host is its measured fp32 rate.
PRECISIONS = ("bf16", "int8", "int4", "fp32")


@dataclass(frozen=True)
class Accelerator:
    """One onboard computer's figures for language-model inference (dense peaks)."""

    name: str
    description: str
    int8_ops_per_s: float  # dense INT8 tensor peak
    fp16_flops_per_s: float  # dense FP16/BF16 tensor peak
    memory_bandwidth_bytes_per_s: float
    memory_bytes: float
    power_load_w: float
    power_idle_w: float
    assumptions: tuple[str, ...] = field(default=())  # figures not published, assumed

    def __post_init__(self) -> None:
        where = f"accelerator {self.name!r}"
        for name in (
            "int8_ops_per_s",
            "fp16_flops_per_s",
            "memory_bandwidth_bytes_per_s",
            "memory_bytes",
            "power_load_w",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(where, name, f"must be a positive number, got {value!r}")
        if not 0 <= self.power_idle_w <= self.power_load_w:
            raise ConfigError(
                where,
                "power_idle_w",
                f"must be in 0..power_load_w ({self.power_load_w}), got {self.power_idle_w!r}",
            )

    def peak_ops_per_s(self, precision: str) -> float:
        """The dense peak the model's matrix products run at in ``precision``."""
        check_precision(precision)
        return self.int8_ops_per_s if precision == "int8" else self.fp16_flops_per_s

    def with_figures(self, **figures: float) -> Accelerator:
        """The same accelerator with some figures replaced (e.g. an assumed bandwidth
        measured or chosen otherwise); the name says it was changed."""
        unknown = sorted(set(figures) - _FIGURES)
        if unknown:
            raise ConfigError(
                f"accelerator {self.name!r}",
                unknown[0],
                f"not a figure of an accelerator (figures: {', '.join(sorted(_FIGURES))})",
            )
        changes: dict[str, Any] = {"name": f"{self.name}*", **figures}
        return replace(self, **changes) if figures else self


_FIGURES = {
    "int8_ops_per_s",
    "fp16_flops_per_s",
    "memory_bandwidth_bytes_per_s",
    "memory_bytes",
    "power_load_w",
    "power_idle_w",
}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(
            "precision", "precision", f"must be one of {PRECISIONS}, got {precision!r}"
        )
    return precision


# -- the presets (sources: README, "Accelerator and model profiles") ------------------

REFERENCE_744 = Accelerator(
    name="reference-744",
    description="a computing satellite of the reference constellation: 744 TOPS INT8 at most",
    int8_ops_per_s=744 * TERA,
    fp16_flops_per_s=372 * TERA,
    memory_bandwidth_bytes_per_s=400 * GIGA,
    memory_bytes=64 * GIGA,
    power_load_w=300.0,
    power_idle_w=60.0,
    assumptions=(
        "744 TOPS INT8 is the operator's figure per satellite, taken as dense",
        "FP16/BF16: half the INT8 peak (the ratio of NVIDIA's tensor cores)",
        "memory bandwidth 400 GB/s: none is published; between a Jetson AGX Orin "
        "(204.8 GB/s) and two of them, a parameter (memory_bandwidth_gb_s)",
        "memory 64 GB, power 300 W at load and 60 W idle: none published",
    ),
)

JETSON_AGX_ORIN_64GB = Accelerator(
    name="jetson-agx-orin-64gb",
    description="NVIDIA Jetson AGX Orin 64 GB module, MAXN (60 W)",
    # 275 TOPS is INT8 *sparse*, GPU (170) + two DLAs (105); the GPU's dense INT8 is 85
    # TOPS and its dense FP16 tensor peak half that. A language model runs on the GPU.
    int8_ops_per_s=85 * TERA,
    fp16_flops_per_s=42.5 * TERA,
    memory_bandwidth_bytes_per_s=204.8 * GIGA,
    memory_bytes=64 * GIGA,
    power_load_w=60.0,
    power_idle_w=15.0,
    assumptions=("idle power: the module's lowest power mode (15 W), an upper bound",),
)

JETSON_AGX_THOR = Accelerator(
    name="jetson-agx-thor",
    description="NVIDIA Jetson AGX Thor (T5000), Blackwell GPU, 40-130 W",
    # 2070 TFLOPS is FP4 *sparse*; dense FP8 is a quarter of it and dense FP16 an eighth
    # (each halving of the width doubles the tensor rate); INT8 is taken at the FP8 rate.
    int8_ops_per_s=517 * TERA,
    fp16_flops_per_s=259 * TERA,
    memory_bandwidth_bytes_per_s=273 * GIGA,
    memory_bytes=128 * GIGA,
    power_load_w=130.0,
    power_idle_w=40.0,
    assumptions=(
        "INT8 and FP16 dense peaks derived from the published 2070 TFLOPS FP4 sparse",
        "idle power: the lowest power mode (40 W), an upper bound",
    ),
)

H100_SXM = Accelerator(
    name="h100-sxm",
    description="NVIDIA H100 SXM5 80 GB, the data-centre comparison (Starcloud-1 flew an H100)",
    int8_ops_per_s=1979 * TERA,
    fp16_flops_per_s=989.4 * TERA,
    memory_bandwidth_bytes_per_s=3350 * GIGA,
    memory_bytes=80 * GIGA,
    power_load_w=700.0,
    power_idle_w=70.0,
    assumptions=("idle power 70 W: a typical reading of an idle H100, not a datasheet figure",),
)

PRESETS: dict[str, Accelerator] = {
    a.name: a for a in (REFERENCE_744, JETSON_AGX_ORIN_64GB, JETSON_AGX_THOR, H100_SXM)
}
"""The accelerators by name. ``host`` is not a preset: ``linkstack calibrate`` measures
it (its efficiency against a peak it estimates), see :mod:`linkstack.tools.calibrate`."""


def accelerator(name: str) -> Accelerator:
    """The preset called ``name``; a ConfigError names the presets otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            "accelerator", "name", f"no accelerator {name!r}; presets: {', '.join(PRESETS)}"
        ) from None
