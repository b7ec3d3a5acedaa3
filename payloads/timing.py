"""How long an onboard accelerator takes to answer: a roofline timing model.

For a model profile (:mod:`payloads.model_profiles`) in a precision on an accelerator
(:mod:`payloads.accelerators`):

- **time to first token** (prefill): the prompt's operations at the peak times the
  compute efficiency, or the weights' and the prompt's KV octets at the bandwidth
  times the bandwidth efficiency, whichever is longer (prefill is compute-bound but
  for the shortest prompts):
  ``ttft = max(batch x prefill_ops(P) / (peak x eff_c),
  (weights read + batch x P x kv_per_token) / (bw x eff_bw))``;
- **time per output token** (decode): every weight matrix and the whole KV cache are
  read once a step, so it is bandwidth-bound, unless the batch's operations take
  longer: ``tpot(c) = max((weights read + batch x c x kv_per_token) / (bw x eff_bw),
  batch x decode_ops(c) / (peak x eff_c))`` at context c;
- a generation of N tokens after a prompt of P: the first token at ``ttft``, token k
  (k = 2..N) ``tpot(P + k - 1)`` after the one before.

**Utilisation and power.** An accelerator draws its idle power plus a share of the
span to its power at load (the profile's ``power_idle_w`` and ``power_load_w``) that
follows how hard it works: :meth:`InferenceTiming.utilisation` is, over the whole
generation, ``memory_power_share`` x the time the memory is busy + (1 -
``memory_power_share``) x the time the compute units are busy, over the generation's
time (each step's memory time is its octets at the usable bandwidth, its compute time
its operations at the usable peak; the longer one is the step). A batch of one,
bandwidth-bound, keeps the memory busy and the compute units mostly idle (half of the
span to full load with the default share of 0.5); a batch reads the weights once for
all, so the compute share, the draw and the time grow with it while the energy of
each query falls. The share is a stated assumption, not a measurement (memory
traffic and arithmetic each cost a comparable part of a GPU's dynamic power in LLM
serving); a parameter.

The efficiency factors are what a real software stack reaches of the peaks (fitted on
the host by ``linkstack calibrate``; the defaults are the usual order for a tuned
stack: 50 % of peak compute in prefill, 70 % of peak bandwidth in decode).

Sans-I/O: numbers in, numbers out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from linkstack.errors import ConfigError
from payloads.accelerators import Accelerator, accelerator, check_precision
from payloads.model_profiles import KV_BYTES_PER_VALUE, ModelProfile, profile

DEFAULT_COMPUTE_EFFICIENCY = 0.5
DEFAULT_BANDWIDTH_EFFICIENCY = 0.7
DEFAULT_MEMORY_POWER_SHARE = 0.5  # of the dynamic power, when the memory is busy


@dataclass(frozen=True)
class InferenceTiming:
    """The compute time of a generation on an accelerator (see the module docstring)."""

    accelerator: Accelerator
    model: ModelProfile
    precision: str = "bf16"
    compute_efficiency: float = DEFAULT_COMPUTE_EFFICIENCY
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY
    batch: int = 1  # sequences decoded together (each as long as this one)
    kv_bytes_per_value: float = KV_BYTES_PER_VALUE
    memory_power_share: float = DEFAULT_MEMORY_POWER_SHARE

    def __post_init__(self) -> None:
        where = "InferenceTiming"
        check_precision(self.precision)
        for name in ("compute_efficiency", "bandwidth_efficiency"):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not 0 < value <= 1
            ):
                raise ConfigError(where, name, f"must be in (0, 1], got {value!r}")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise ConfigError(where, "batch", f"must be an integer >= 1, got {self.batch!r}")
        if not self.kv_bytes_per_value > 0:
            raise ConfigError(where, "kv_bytes_per_value", "must be positive")
        share = self.memory_power_share
        if not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise ConfigError(where, "memory_power_share", f"must be in [0, 1], got {share!r}")

    @property
    def label(self) -> str:
        """What the answer's inference legs are: ``modelled: ACCELERATOR/MODEL/PRECISION``."""
        return f"modelled: {self.accelerator.name}/{self.model.name}/{self.precision}"

    @property
    def _compute_rate(self) -> float:
        return self.accelerator.peak_ops_per_s(self.precision) * self.compute_efficiency

    @property
    def _bandwidth(self) -> float:
        return self.accelerator.memory_bandwidth_bytes_per_s * self.bandwidth_efficiency

    def fits(self, context_tokens: int) -> bool:
        """Whether the weights and the batch's KV cache fit the accelerator's memory."""
        kv = self.batch * context_tokens * self._kv_per_token
        return self.model.weight_bytes(self.precision) + kv <= self.accelerator.memory_bytes

    def max_batch(self, context_tokens: int) -> int:
        """The most sequences of ``context_tokens`` whose KV cache fits the
        accelerator's memory after the weights (0: the weights alone do not fit): how
        many inferences the endpoint can run at once."""
        free = self.accelerator.memory_bytes - self.model.weight_bytes(self.precision)
        if free < 0:
            return 0
        return int(free // (max(int(context_tokens), 1) * self._kv_per_token))

    @property
    def _kv_per_token(self) -> float:
        return self.model.kv_bytes_per_token(self.kv_bytes_per_value)

    @property
    def _weights_read(self) -> float:
        return self.model.weight_bytes_read_per_step(self.precision, self.batch)

    def _prefill_s(self, prompt_tokens: int) -> tuple[float, float]:
        """(compute time, memory time) of the prefill of ``prompt_tokens`` for the batch."""
        p = max(int(prompt_tokens), 1)
        compute_s = self.batch * self.model.prefill_ops(p) / self._compute_rate
        memory_s = (self._weights_read + self.batch * p * self._kv_per_token) / self._bandwidth
        return compute_s, memory_s

    def _decode_s(self, context_tokens: int) -> tuple[float, float]:
        """(compute time, memory time) of one decode step at ``context_tokens``."""
        c = max(int(context_tokens), 1)
        memory_s = (self._weights_read + self.batch * c * self._kv_per_token) / self._bandwidth
        compute_s = self.batch * self.model.decode_ops(c) / self._compute_rate
        return compute_s, memory_s

    def ttft_s(self, prompt_tokens: int) -> float:
        """Time to first token: the prefill of ``prompt_tokens`` for the batch."""
        return max(self._prefill_s(prompt_tokens))

    def tpot_s(self, context_tokens: int) -> float:
        """Time per output token, decoding at ``context_tokens`` (itself included)."""
        return max(self._decode_s(context_tokens))

    def utilisation(self, prompt_tokens: int, completion_tokens: int) -> float:
        """How hard the accelerator works over a generation, 0..1, for its power (see
        the module docstring): ``memory_power_share`` x the memory's busy time + the
        rest x the compute units' busy time, over the generation's time."""
        p = max(int(prompt_tokens), 1)
        steps = [self._prefill_s(p)]
        steps += [self._decode_s(p + k - 1) for k in range(2, int(completion_tokens) + 1)]
        compute_s = sum(c for c, _ in steps)
        memory_s = sum(m for _, m in steps)
        total_s = sum(max(step) for step in steps)
        share = self.memory_power_share
        return (share * memory_s + (1 - share) * compute_s) / total_s

    def iter_token_offsets_s(self, prompt_tokens: int) -> Iterator[float]:
        """The instant (from the start) each generated token is ready, for ever: the
        first at the TTFT, token k one TPOT at context P + k - 1 after token k - 1."""
        p = max(int(prompt_tokens), 1)
        t_s = self.ttft_s(p)
        yield t_s
        for k in itertools.count(2):
            t_s += self.tpot_s(p + k - 1)
            yield t_s

    def token_offsets_s(self, prompt_tokens: int, completion_tokens: int) -> list[float]:
        """The first ``completion_tokens`` of :meth:`iter_token_offsets_s`."""
        return list(itertools.islice(self.iter_token_offsets_s(prompt_tokens), completion_tokens))

    def generation_s(self, prompt_tokens: int, completion_tokens: int) -> tuple[float, float]:
        """(time to first token, whole generation) for a prompt and a completion; a
        completion of no token still costs the prefill."""
        offsets = self.token_offsets_s(prompt_tokens, completion_tokens)
        if not offsets:
            ttft = self.ttft_s(prompt_tokens)
            return ttft, ttft
        return offsets[0], offsets[-1]


def make_timing(
    accelerator_name: str,
    profile_name: str,
    precision: str = "bf16",
    *,
    compute_efficiency: float = DEFAULT_COMPUTE_EFFICIENCY,
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY,
    batch: int = 1,
    **figures: float,
) -> InferenceTiming:
    """The timing of a preset model on a preset accelerator, some of whose figures
    (``memory_bandwidth_bytes_per_s``...) may be replaced."""
    acc = accelerator(accelerator_name).with_figures(**figures)
    return InferenceTiming(
        acc, profile(profile_name), precision, compute_efficiency, bandwidth_efficiency, batch
    )
