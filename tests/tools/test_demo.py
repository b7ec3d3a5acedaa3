"""``linkstack demo`` and ``linkstack bench roundtrip``, run in-process (torch is imported once)."""

import json

from linkstack.text import escape
from linkstack.tools import cli
from tests.tools.test_report_cmd import check_png_and_page


def test_demo_answers_prints_timelines_and_writes_the_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--queries", "3", "--hours", "1", "--start-hours", "1.3"]
    rc = cli.main([*args, "--max-new-tokens", "8", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "RANDOM WEIGHTS" in text and "random weights, noise" in text
    assert text.count("    route  ground:") == 3 and text.count("    legs   contact_wait") == 3
    assert "in view:" in text and "under 120 s" in text
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["all"]["answered"] == 3
    assert report["meta"]["random_weights"] is True
    # no accelerator in the scenario: the inference legs are this host's compute time
    assert "inference legs: host stopwatch" in text
    assert report["meta"]["inference_timing"] == "host stopwatch"
    # and each answer says so (an answer without a timing source: version 1's octets)
    assert [q["inference_timing"] for q in report["queries"]] == ["host stopwatch"] * 3
    assert text.count("inference legs: host stopwatch)") == 3  # on each answer's legs line
    assert {q["target"] for q in report["meta"]["queries_detail"]} >= {"any"}
    kinds = {h["kind"] for q in report["queries"] for h in q["hops"]}
    assert {"uplink", "isl", "downlink"} <= kinds  # one query was relayed
    for q in report["queries"]:  # the flags say what the route shows
        if q["in_view_at_submit"] or q["relayed_at_submit"]:
            straight = q["hops"][0]["dst"] == f"sat:{q['satellite']}"
            assert straight == q["in_view_at_submit"] and q["legs_s"]["contact_wait"] < 1.0, q
    # the chart and its page, as linkstack report draws them (tests/tools/test_report_cmd.py)
    page = check_png_and_page(out / "report.png", out / "report.html")
    assert "scenario default · model tiny-qwen3" in page and "profile host stopwatch" in page
    # each answer under its prompt; the links' legs in milliseconds, not 0.00 s
    assert text.count('    prompt "') == 3
    assert all(f'prompt "{escape(q["prompt"])}"' in text for q in report["meta"]["queries_detail"])
    assert text.count(" ms, relay_up ") == 3 and "uplink 0.0" not in text
    if "capture: not available yet" not in text:
        assert (out / "demo.pcap").stat().st_size > 0


SIX_OF_TWELVE = """\
name = "six"
description = "six of the twelve satellites compute"
[constellation]
computing = ["CS-01", "CS-03", "CS-05", "CS-07", "CS-09", "CS-11"]
"""


def test_demo_runs_a_scenario_file_with_a_prompts_file(tmp_path, capsys):
    scenario = tmp_path / "six.toml"
    scenario.write_text(SIX_OF_TWELVE)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# my questions\n\nFirst question?\n  Second question?  \n")
    out = tmp_path / "demo"
    args = ["demo", "--scenario", str(scenario), "--prompts", str(prompts), "--hours", "1"]
    rc = cli.main([*args, "--start-hours", "1.3", "--max-new-tokens", "4", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "scenario six: six of the twelve satellites compute" in text
    report = json.loads((out / "report.json").read_text())
    detail = report["meta"]["queries_detail"]
    assert report["meta"]["scenario"] == "six" and len(detail) == 2  # one a prompt
    assert sorted(q["prompt"] for q in detail) == ["First question?", "Second question?"]
    computing = {"CS-01", "CS-03", "CS-05", "CS-07", "CS-09", "CS-11"}
    assert {q["satellite"] for q in report["queries"]} <= computing
    assert {q["target"] for q in detail} <= computing | {"any"}
    for q in report["queries"]:  # the flags say what the route shows
        straight = q["hops"][0]["dst"] == f"sat:{q['satellite']}"
        if q["in_view_at_submit"] or q["relayed_at_submit"]:
            assert q["legs_s"]["contact_wait"] < 1.0
            assert straight == q["in_view_at_submit"], q


def test_demo_refuses_a_prompts_file_it_cannot_use(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing but a comment\n\n   \n")
    assert cli.main(["demo", "--prompts", str(empty)]) == 2
    assert "no prompt in it" in capsys.readouterr().err
    assert cli.main(["demo", "--prompts", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: no such file" in capsys.readouterr().err
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9?\n")
    assert cli.main(["demo", "--prompts", str(tmp_path / "latin1.txt")]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_the_link_layer_demo_is_still_there(capsys):
    assert cli.main(["demo", "--link-only"]) == 0
    assert "link-layer round trip" in capsys.readouterr().out


def test_demo_refuses_bad_options(capsys):
    assert cli.main(["demo", "--queries", "0"]) == 2


def test_bench_roundtrip_quick_runs(capsys):
    assert cli.main(["bench", "roundtrip", "--quick", "--no-pin"]) == 0
    out = capsys.readouterr().out
    assert "trips/wall-s" in out and "wall s/emul. h" in out and "answered" in out


def test_escape_keeps_text_and_shows_control_characters():
    assert escape("héllo wörld, 你好") == "héllo wörld, 你好"
    assert escape("a\nb\tc\x00\x1b[2J\u202e") == "a\\nb\\tc\\x00\\x1b[2J\\u202e"
    assert escape("x" * 300, limit=10) == "x" * 9 + "…"
