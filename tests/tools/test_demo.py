"""``linkstack demo`` and ``linkstack bench roundtrip``, run in-process (torch is imported once)."""

import json

from linkstack.text import escape
from linkstack.tools import cli


def test_demo_answers_prints_timelines_and_writes_the_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--queries", "3", "--hours", "1", "--start-hours", "1.3"]
    rc = cli.main([*args, "--max-new-tokens", "8", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "RANDOM WEIGHTS" in text and "random weights, noise" in text
    assert text.count("    route  ground:") == 3 and text.count("    legs   wait") == 3
    assert "in view:" in text and "under 120 s" in text
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["all"]["answered"] == 3
    assert report["meta"]["random_weights"] is True
    assert {q["target"] for q in report["meta"]["queries_detail"]} >= {"any"}
    kinds = {h["kind"] for q in report["queries"] for h in q["hops"]}
    assert {"uplink", "isl", "downlink"} <= kinds  # one query was relayed
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if "capture: not available yet" not in text:
        assert (out / "demo.pcap").stat().st_size > 0


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
