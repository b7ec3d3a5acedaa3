"""linkstack roundtrip-study at --quick size: the files it writes, and numbers that
hold together (legs that tile each round trip, fractions that are fractions, the
inference legs the timing model's, a larger dense model never faster)."""

from __future__ import annotations

import json
import math

import pytest

from linkstack.tools import cli
from linkstack.tools.roundtrip_study import (
    GROUPS,
    PROMPT,
    QUICK,
    ScriptedBackend,
    leg_groups_s,
)
from payloads.backends import GenerationParams
from payloads.modelled import timing_prompt_tokens
from payloads.timeline import Hop, Timeline
from payloads.timing import make_timing

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    assert cli.main(["roundtrip-study", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "study.json").read_text())


def test_files_written(study):
    out, doc = study
    for name in ("roundtrip_by_size.png", "variants.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    md = (out / "study.md").read_text()
    for size in QUICK.sizes:
        assert f"| {size} |" in md
    assert "| laser ground links |" in md and "not evaluated" in md
    assert [s["model"] for s in doc["sizes"]] == list(QUICK.sizes)
    names = [v["variant"] for v in doc["variants"]]
    assert {"20 stations", "3 planes", "smaller model", "power on"} <= set(names)


def _runs(doc):
    return doc["sizes"] + doc["variants"]


def test_every_query_answered_and_fractions_are_fractions(study):
    _, doc = study
    for run in _runs(doc):
        assert run["all"]["queries"] == QUICK.queries
        assert run["all"]["answered"] == QUICK.queries, run["variant"]
        assert 0.0 <= run["in_view_fraction"] <= 1.0
        split = run["in_view"]["queries"] + run["not_in_view"]["queries"]
        assert split == run["all"]["queries"]
        for key in ("all", "in_view", "not_in_view"):
            frac = run[key]["fraction_under_reference"]
            assert frac is None or 0.0 <= frac <= 1.0
            total = run[key]["total"]
            if total["p50_s"] is not None:
                assert 0 <= total["p50_s"] <= total["p95_s"] <= total["p99_s"] <= total["max_s"]


def test_legs_tile_each_round_trip(study):
    _, doc = study
    for run in _runs(doc):
        queries = doc["timelines"][run["variant"]]
        assert len(queries) == QUICK.queries
        for q in queries:
            legs = q["study_legs_s"]
            assert set(legs) == set(GROUPS)
            assert all(v >= 0.0 for v in legs.values()), legs
            assert math.isclose(sum(legs.values()), q["total_s"], rel_tol=1e-9, abs_tol=1e-6)
        # the run's mean legs add up to its mean round trip
        a = run["all"]
        mean_legs = sum(a["legs"][g]["mean_s"] for g in GROUPS)
        assert math.isclose(mean_legs, a["total"]["mean_s"], rel_tol=1e-9, abs_tol=1e-6)


def test_inference_legs_are_the_timing_model_and_grow_with_the_model(study):
    _, doc = study
    prompt_tokens = timing_prompt_tokens(ScriptedBackend(), PROMPT, False)
    by_size = {}
    for run in doc["sizes"]:
        timing = make_timing("reference-744", run["model"], "int8")
        _, generate_s = timing.generation_s(prompt_tokens, QUICK.max_new_tokens)
        legs = [q["study_legs_s"]["inference"] for q in doc["timelines"][run["variant"]]]
        for leg in legs:
            assert math.isclose(leg, generate_s, rel_tol=1e-6, abs_tol=1e-6)
        by_size[run["model"]] = legs
    # QUICK's sizes are dense and listed smallest first: never faster query by query
    for small, large in zip(QUICK.sizes, QUICK.sizes[1:], strict=False):
        assert all(a <= b for a, b in zip(by_size[small], by_size[large], strict=True))


def test_answers_relay_hops_move_from_the_wait_to_the_relay():
    t = Timeline("q", submit_t_s=0.0, satellite="CS-04", in_view_at_submit=True)
    t.first_uplink_t_s, t.query_on_first_sat_t_s, t.query_on_board_t_s = 0.0, 0.1, 0.3
    t.inference_start_t_s, t.first_token_t_s, t.inference_end_t_s = 0.3, 0.5, 2.0
    t.first_downlink_t_s, t.answer_on_ground_t_s = 50.0, 50.2
    t.hops = [
        Hop("uplink", "ground", "CS-03", 0.0, 0.1),
        Hop("isl", "CS-03", "CS-04", 0.1, 0.3),
        Hop("isl", "CS-04", "CS-05", 2.0, 2.25),  # the answer's way to a station
        Hop("downlink", "CS-05", "ground", 50.0, 50.2),
    ]
    legs = leg_groups_s(t)
    assert legs["relay"] == pytest.approx(0.2 + 0.25)
    assert legs["pass_wait"] == pytest.approx(48.0 - 0.25)
    assert legs["inference"] == pytest.approx(1.7)
    assert sum(legs.values()) == pytest.approx(t.total_s)


def test_scripted_backend_answers_the_tokens_asked():
    pieces = []
    gen = ScriptedBackend().generate("hello", GenerationParams(max_new_tokens=5), pieces.append)
    assert gen.completion_tokens == 5 and "".join(pieces) == gen.text
    assert gen.finish_reason == "length"


def test_bad_sizes_refused(capsys):
    assert cli.main(["roundtrip-study", "--quick", "--sizes", "qwen3-9b"]) == 2
    assert "qwen3-9b" in capsys.readouterr().err


def test_starcloud_preset_without_variants(tmp_path):
    args = ["roundtrip-study", "--scenario", "starcloud-1", "--sizes", "gemma-3-1b"]
    opts = ["--no-variants", "--queries", "4", "--hours", "2", "--out", str(tmp_path)]
    assert cli.main([*args, *opts]) == 0
    doc = json.loads((tmp_path / "study.json").read_text())
    assert doc["meta"]["accelerator"] == "h100-sxm" and not doc["variants"]
    assert [s["model"] for s in doc["sizes"]] == ["gemma-3-1b"]
    assert doc["sizes"][0]["all"]["answered"] == 4
    assert (tmp_path / "roundtrip_by_size.png").exists()
    assert not (tmp_path / "variants.png").exists()


def test_a_scenario_without_an_accelerator_is_refused(tmp_path, capsys):
    args = ["roundtrip-study", "--scenario", "default", "--out", str(tmp_path)]
    assert cli.main(args) == 2
    assert "accelerator" in capsys.readouterr().err
