"""The hf backend: the tiny model saved as a checkpoint and loaded back through the
real transformers loading path; refusal when hub weights are not available."""

from __future__ import annotations

import socket
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from linkstack.errors import ConfigError  # noqa: E402
from payloads.backends import GenerationParams, make_backend  # noqa: E402

PROMPTS = ["Is the laser link to plane 3 up?", "", "ünïcödé 🛰 \x07"]
PARAMS = [
    GenerationParams(),
    GenerationParams(max_new_tokens=20, temperature=1.0, seed=11),
    GenerationParams(temperature=0.7, top_p=0.8, seed=3),
    GenerationParams(max_new_tokens=10, thinking=True),
]


@pytest.fixture(scope="module")
def tiny():
    backend = make_backend("tiny")
    backend.load()
    return backend


@pytest.fixture(scope="module")
def checkpoint(tiny, tmp_path_factory) -> str:
    return tiny.save(tmp_path_factory.mktemp("tiny-checkpoint"))


@pytest.fixture(scope="module")
def hf(checkpoint):
    backend = make_backend(f"hf:{checkpoint}", dtype="fp32", device="cpu")
    backend.load()
    return backend


def test_checkpoint_files(checkpoint) -> None:
    from pathlib import Path

    names = {p.name for p in Path(checkpoint).iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert "linkstack_random_weights" in (Path(checkpoint) / "config.json").read_text()


def test_hf_loads_the_saved_tiny_model(hf, checkpoint) -> None:
    assert type(hf.torch_model).__name__ == "Qwen3ForCausalLM"
    assert hf.torch_model.dtype == torch.float32
    assert hf.model == checkpoint
    assert hf.random_weights is True  # the checkpoint says so, and so does every output
    assert hf.load() == hf.load()


@pytest.mark.parametrize("prompt", PROMPTS)
def test_hf_gives_the_tiny_backends_text(tiny, hf, prompt) -> None:
    for params in PARAMS:
        a = tiny.generate(prompt, params)
        pieces: list[str] = []
        b = hf.generate(prompt, params, on_text=pieces.append)
        assert b.text == a.text, params
        assert "".join(pieces) == b.text
        assert (b.prompt_tokens, b.completion_tokens, b.finish_reason) == (
            a.prompt_tokens,
            a.completion_tokens,
            a.finish_reason,
        )
        assert (b.backend, b.random_weights) == ("hf", True)
        assert hf.count_tokens(prompt, params.thinking) == tiny.count_tokens(
            prompt, params.thinking
        )


def test_hf_sampling_is_reproducible(hf) -> None:
    p = GenerationParams(temperature=1.0, seed=21)
    assert hf.generate("x", p).text == hf.generate("x", p).text
    assert hf.generate("x", p).text != hf.generate("x", GenerationParams(temperature=1.0)).text


def test_hf_bf16(checkpoint) -> None:
    b = make_backend(f"hf:{checkpoint}", dtype="bf16", device="cpu")
    b.load()
    assert b.torch_model.dtype == torch.bfloat16
    pieces: list[str] = []
    g = b.generate("hello", GenerationParams(max_new_tokens=12), on_text=pieces.append)
    assert g.completion_tokens == 12 and "".join(pieces) == g.text
    b.close()


def test_hf_default_dtype_on_cpu_is_fp32(checkpoint) -> None:
    b = make_backend(f"hf:{checkpoint}", device="auto")
    b.load()
    if b.torch_model.device.type == "cpu":
        assert b.torch_model.dtype == torch.float32
    else:
        assert b.torch_model.dtype == torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_hf_cuda_without_gpu(checkpoint) -> None:
    with pytest.raises(ConfigError) as info:
        make_backend(f"hf:{checkpoint}", device="cuda").load()
    assert info.value.field == "device"


def test_hf_directory_without_a_model(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        make_backend(f"hf:{tmp_path}").load()
    assert info.value.where == "hf"
    assert str(tmp_path) in info.value.rule


def test_hf_hub_id_offline_fails_at_once(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = make_backend("hf:Qwen/Qwen3-0.6B", cache_dir=tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        backend.load()
    elapsed = time.perf_counter() - t0
    rule = info.value.rule
    assert "not available here" in rule
    assert "hf:/path/to/DIR" in rule
    assert "HF_HUB_OFFLINE" in rule
    assert elapsed < 30  # a generous bound against a hang, not a speed test


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hf_hub_id_unreachable_hub(monkeypatch, tmp_path) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(ConfigError) as info:
        make_backend("hf:Qwen/Qwen3-0.6B", cache_dir=tmp_path).load()
    assert "cannot be reached" in info.value.rule
    assert "hf:/path/to/DIR" in info.value.rule


def test_hf_hub_id_found_in_the_cache(monkeypatch, tmp_path, checkpoint) -> None:
    """A hub id whose snapshot is in the local cache loads without the network."""
    import shutil
    from pathlib import Path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "models--linkstack--tiny-qwen3"
    commit = "0" * 40
    shutil.copytree(checkpoint, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    b = make_backend("hf:linkstack/tiny-qwen3", cache_dir=tmp_path)
    b.load()
    assert Path(b.torch_model.name_or_path).name == commit
    assert b.generate("x", GenerationParams(max_new_tokens=3)).completion_tokens == 3
