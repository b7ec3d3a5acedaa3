"""Model profiles: parameter counts from the shapes against transformers' own models
and the model cards' totals; bytes and operations per token."""

import pytest

from linkstack.errors import ConfigError
from payloads.model_profiles import PROFILES, ModelProfile, profile

# the model cards' rounding: "0.6B" is 0.55..0.65e9; the totals are given to 2-3
# significant figures, so 2 % is the tolerance
REL = 0.02


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_parameter_counts_match_the_published_totals(name):
    p = PROFILES[name]
    assert p.params == pytest.approx(p.published_params, rel=REL)
    if p.published_non_embedding_params:
        assert p.non_embedding_params == pytest.approx(p.published_non_embedding_params, rel=REL)
    if p.published_active_params:
        assert p.active_params == pytest.approx(p.published_active_params, rel=REL)
    else:
        assert p.active_params == p.params


def test_the_qwen3_shapes_are_the_published_configs():
    # the 0.6B's config.json, key by key, and the family's shared constants
    small = profile("qwen3-0.6b")
    assert (small.layers, small.hidden, small.intermediate) == (28, 1024, 3072)
    assert (small.heads, small.kv_heads, small.head_dim, small.vocab) == (16, 8, 128, 151936)
    assert small.tied_embeddings and not profile("qwen3-8b").tied_embeddings
    moe = profile("qwen3-30b-a3b")
    assert (moe.experts, moe.active_experts, moe.expert_intermediate) == (128, 8, 768)


def test_the_moe_shape_is_transformers_qwen3moe_default_but_for_its_depth():
    from transformers import Qwen3MoeConfig

    c, moe = Qwen3MoeConfig(), profile("qwen3-30b-a3b")
    assert (c.hidden_size, c.moe_intermediate_size, c.num_experts) == (2048, 768, 128)
    assert (c.num_experts_per_tok, c.num_attention_heads, c.num_key_value_heads) == (8, 32, 4)
    assert (moe.hidden, moe.heads, moe.kv_heads, moe.vocab) == (
        c.hidden_size,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.vocab_size,
    )


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("tied", [True, False])
def test_the_formula_counts_what_transformers_builds_dense(tied):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    shape = dict(layers=3, hidden=64, intermediate=96, heads=4, kv_heads=2, head_dim=24, vocab=300)
    config = Qwen3Config(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=24,
        tie_word_embeddings=tied,
    )
    mine = ModelProfile("x", "x", tied_embeddings=tied, **shape)
    assert mine.params == _count(Qwen3ForCausalLM(config))


def test_the_formula_counts_what_transformers_builds_moe_and_gemma():
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        Qwen3MoeConfig,
        Qwen3MoeForCausalLM,
    )

    moe = Qwen3MoeConfig(
        vocab_size=300,
        hidden_size=64,
        moe_intermediate_size=40,
        num_experts=6,
        num_experts_per_tok=2,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=24,
    )
    mine = ModelProfile(
        "x", "x", 3, 64, 96, 4, 2, 24, 300, False, experts=6, active_experts=2,
        expert_intermediate=40,
    )  # fmt: skip
    assert mine.params == _count(Qwen3MoeForCausalLM(moe))
    gemma = Gemma3TextConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=32,
    )
    mine = ModelProfile("x", "x", 3, 64, 96, 4, 1, 32, 300, True, norms_per_layer=4)
    assert mine.params == _count(Gemma3ForCausalLM(gemma))


def test_bytes_per_precision_and_kv_cache_by_hand():
    p = profile("qwen3-8b")
    assert p.weight_bytes("bf16") == 2 * p.params
    assert p.weight_bytes("int8") == p.params
    assert p.weight_bytes("int4") == p.params / 2
    # 2 (K, V) x 36 layers x 8 KV heads x 128 x 2 octets = 147,456 octets (144 KiB)
    assert p.kv_bytes_per_token() == 147_456
    assert profile("qwen3-0.6b").kv_bytes_per_token() == 2 * 28 * 8 * 128 * 2


def test_operations_per_token_by_hand():
    p = profile("qwen3-0.6b")
    # per layer: q 1024x2048, k and v 1024x1024, o 2048x1024, MLP 3 x 1024x3072;
    # then the (tied) head 151936 x 1024
    per_layer = 1024 * 2048 + 2 * 1024 * 1024 + 2048 * 1024 + 3 * 1024 * 3072
    weights = 28 * per_layer + 151936 * 1024
    assert p.matmul_params_per_token == weights == 595_984_384
    attention = 4 * 28 * 16 * 128  # QK^T and AV, per token of context
    assert p.decode_ops(100) == 2 * weights + attention * 100
    assert p.prefill_ops(500) == 2 * weights * 500 + attention * 500 * 501 / 2


def test_a_mixture_of_experts_reads_the_experts_its_batch_chose():
    p = profile("qwen3-30b-a3b")
    one = p.weight_bytes_read_per_step("bf16", batch=1)
    assert one == 2 * p.matmul_params_per_token  # 8 of 128 experts a layer
    expert = 3 * 2048 * 768 * 2  # octets of one expert
    assert p.weight_bytes_read_per_step("bf16", batch=2) == one + 48 * 8 * expert
    everything = p.weight_bytes_read_per_step("bf16", batch=1000)
    assert everything == one + 48 * 120 * expert  # at most all 128


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(ConfigError, match="qwen3-8b"):
        profile("qwen3-9b")
