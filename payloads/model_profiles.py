"""Model profiles: the shapes of the real Qwen3 family (and one Gemma), and what they
cost an accelerator.

A profile is a published configuration (the ``config.json`` of each checkpoint:
layers, hidden size, intermediate size, attention heads, KV heads, head dimension,
vocabulary, tied embeddings, experts) and what follows from it:

- **parameters**, counted from the shapes as transformers builds the model (tests
  build small random-weight models with transformers and count theirs, and compare
  the full shapes with the totals the model cards publish);
- **weight bytes** per precision: bf16 2 octets a parameter, int8 1, int4 0.5 (the
  quantisation scales, a few per cent, are left out);
- **KV-cache bytes per token**: 2 (K and V) x layers x KV heads x head dim x the KV
  cache's octets per value (2: bf16, whatever the weights' precision);
- **operations per token**: a matrix product of a token by a weight matrix of n
  entries is 2n operations (a multiply and an add), so a token costs twice the
  parameters of every matrix it goes through (the embedding is a lookup, not a
  product; the output head is a product, tied or not; a mixture-of-experts layer's
  token goes through its router and its active experts only), plus attention: at
  context c, QK^T and AV cost 2 x 2 x layers x heads x head dim x c. Prefill of P
  tokens is P tokens of the first kind plus the attention of a causal P x P block
  (c = 1..P); decoding a token at context c is one token at c.

Plain data; imports nothing but the base.
"""

from __future__ import annotations

from dataclasses import dataclass

from linkstack.errors import ConfigError
from payloads.accelerators import check_precision

BYTES_PER_PARAM = {"bf16": 2.0, "int8": 1.0, "int4": 0.5, "fp32": 4.0}
KV_BYTES_PER_VALUE = 2.0  # bf16 KV cache


@dataclass(frozen=True)
class ModelProfile:
    """One checkpoint's shape (its config.json), with what the timing model needs."""

    name: str
    hf_id: str  # where the shape is published
    layers: int
    hidden: int
    intermediate: int  # the dense MLP's width (unused by an all-MoE model)
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    experts: int = 0  # 0: dense
    active_experts: int = 0
    expert_intermediate: int = 0
    published_params: float = 0.0  # the model card's total
    published_non_embedding_params: float = 0.0  # the model card's, where it gives one
    published_active_params: float = 0.0  # a mixture of experts: the card's activated
    norms_per_layer: int = 2  # RMSNorms of width hidden per layer (Gemma 3 has 4)

    @property
    def moe(self) -> bool:
        return self.experts > 0

    # -- parameters --------------------------------------------------------------------
    @property
    def attention_params_per_layer(self) -> int:
        q_out = self.heads * self.head_dim
        kv_out = self.kv_heads * self.head_dim
        # q, k, v and o projections (no biases in Qwen3 or Gemma 3), then q/k RMSNorms
        return (
            self.hidden * q_out + 2 * self.hidden * kv_out + q_out * self.hidden + 2 * self.head_dim
        )

    @property
    def expert_params(self) -> int:
        return 3 * self.hidden * self.expert_intermediate  # gate, up, down

    @property
    def mlp_params_per_layer(self) -> int:
        if self.moe:
            return self.hidden * self.experts + self.experts * self.expert_params  # router
        return 3 * self.hidden * self.intermediate

    @property
    def active_mlp_params_per_layer(self) -> int:
        if self.moe:
            return self.hidden * self.experts + self.active_experts * self.expert_params
        return self.mlp_params_per_layer

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def head_params(self) -> int:
        """The output head's own parameters: none when tied to the embedding."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    @property
    def params(self) -> int:
        """Every parameter, as transformers counts them (a tied head counted once)."""
        per_layer = (
            self.attention_params_per_layer
            + self.mlp_params_per_layer
            + self.norms_per_layer * self.hidden
        )
        return self.layers * per_layer + self.hidden + self.embedding_params + self.head_params

    @property
    def non_embedding_params(self) -> int:
        """Without the embedding and the output head, as the Qwen3 model cards count."""
        return self.params - self.embedding_params - self.head_params

    @property
    def active_params(self) -> int:
        """The parameters one token goes through (all of them for a dense model)."""
        return self.params - self.layers * (
            self.mlp_params_per_layer - self.active_mlp_params_per_layer
        )

    @property
    def matmul_params_per_token(self) -> int:
        """Weights a token is multiplied by: attention, the active MLP, the head (which
        is the embedding matrix when tied); norms left out (not products)."""
        per_layer = self.attention_params_per_layer - 2 * self.head_dim
        per_layer += self.active_mlp_params_per_layer
        return self.layers * per_layer + self.vocab * self.hidden

    # -- bytes -------------------------------------------------------------------------
    def weight_bytes(self, precision: str) -> float:
        return self.params * BYTES_PER_PARAM[check_precision(precision)]

    def kv_bytes_per_token(self, kv_bytes_per_value: float = KV_BYTES_PER_VALUE) -> float:
        return 2 * self.layers * self.kv_heads * self.head_dim * kv_bytes_per_value

    def weight_bytes_read_per_step(self, precision: str, batch: int = 1) -> float:
        """Weight octets one decode step reads: every matrix a token goes through, read
        once for the whole batch; a mixture of experts reads the experts the batch's
        tokens chose (at most ``batch x active`` of them, all of them at most)."""
        width = BYTES_PER_PARAM[check_precision(precision)]
        read = self.matmul_params_per_token
        if self.moe:
            chosen = min(self.experts, batch * self.active_experts)
            read += self.layers * (chosen - self.active_experts) * self.expert_params
        return read * width

    # -- operations ----------------------------------------------------------------------
    @property
    def attention_ops_per_context_token(self) -> int:
        """QK^T and AV: 2 x 2 x layers x heads x head dim, per token of context."""
        return 4 * self.layers * self.heads * self.head_dim

    def decode_ops(self, context_tokens: int) -> float:
        """Operations to decode one token whose context (itself included) is
        ``context_tokens`` long."""
        return 2.0 * self.matmul_params_per_token + self.attention_ops_per_context_token * max(
            context_tokens, 1
        )

    def prefill_ops(self, prompt_tokens: int) -> float:
        """Operations to process a prompt of ``prompt_tokens`` (causal attention:
        token i attends to i tokens)."""
        p = max(prompt_tokens, 0)
        return 2.0 * self.matmul_params_per_token * p + self.attention_ops_per_context_token * (
            p * (p + 1) / 2
        )


def _qwen3(name: str, hf: str, layers: int, hidden: int, inter: int, heads: int, kv: int,
           tied: bool, total: float, non_emb: float) -> ModelProfile:  # fmt: skip
    return ModelProfile(
        name, hf, layers, hidden, inter, heads, kv, 128, 151936, tied,
        published_params=total, published_non_embedding_params=non_emb,
    )  # fmt: skip


# The shapes are each checkpoint's config.json on the Hugging Face hub (hf_id); the
# totals are their model cards' ("Number of Parameters: 8.2B, Non-Embedding 6.95B").
PROFILES: dict[str, ModelProfile] = {
    p.name: p
    for p in (
        _qwen3("qwen3-0.6b", "Qwen/Qwen3-0.6B", 28, 1024, 3072, 16, 8, True, 0.6e9, 0.44e9),
        _qwen3("qwen3-1.7b", "Qwen/Qwen3-1.7B", 28, 2048, 6144, 16, 8, True, 1.7e9, 1.4e9),
        _qwen3("qwen3-4b", "Qwen/Qwen3-4B", 36, 2560, 9728, 32, 8, True, 4.0e9, 3.6e9),
        _qwen3("qwen3-8b", "Qwen/Qwen3-8B", 36, 4096, 12288, 32, 8, False, 8.2e9, 6.95e9),
        _qwen3("qwen3-14b", "Qwen/Qwen3-14B", 40, 5120, 17408, 40, 8, False, 14.8e9, 13.2e9),
        _qwen3("qwen3-32b", "Qwen/Qwen3-32B", 64, 5120, 25600, 64, 8, False, 32.8e9, 31.2e9),
        ModelProfile(
            name="qwen3-30b-a3b",
            hf_id="Qwen/Qwen3-30B-A3B",
            layers=48,
            hidden=2048,
            intermediate=6144,
            heads=32,
            kv_heads=4,
            head_dim=128,
            vocab=151936,
            tied_embeddings=False,
            experts=128,
            active_experts=8,
            expert_intermediate=768,
            published_params=30.5e9,
            published_non_embedding_params=29.9e9,
            published_active_params=3.3e9,
        ),
        # Google's Gemma 3 1B (text only; 1 global layer in 6, the others a 512-token
        # sliding window: the KV cache here counts every layer as global, an upper bound)
        ModelProfile(
            name="gemma-3-1b",
            hf_id="google/gemma-3-1b-it",
            layers=26,
            hidden=1152,
            intermediate=6912,
            heads=4,
            kv_heads=1,
            head_dim=256,
            vocab=262144,
            tied_embeddings=True,
            published_params=1.0e9,
            norms_per_layer=4,
        ),
    )
}


def profile(name: str) -> ModelProfile:
    """The profile called ``name``; a ConfigError names the profiles otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            "model", "profile", f"no model profile {name!r}; profiles: {', '.join(PROFILES)}"
        ) from None
