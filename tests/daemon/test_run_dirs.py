"""Each ground run's report in a folder of its own: never overwritten, even when two
runs end in the same second; its absolute path logged and printed; the JSON with the
percentiles, the PNG chart and the HTML page beside it.

Two real ground daemons (no broker, no satellites: the cheapest ground there is),
started and stopped together with one runs folder; then the folder naming itself,
with the instant given, for runs that end in the same second for certain.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from linkstack.daemon.run_dir import new_run_dir, run_dir_name
from tests.daemon.test_queue_faults import HANG_S, records, scenario, wait_for_record
from tests.tools.test_report_cmd import check_png_and_page


def test_two_ground_runs_leave_two_run_folders_with_their_reports(tmp_path):
    runs = tmp_path / "runs"
    procs = []
    for name in ("mcc", "gs2"):  # grounds of their own names, ports and queues
        folder = tmp_path / name
        path = scenario(folder, ground=name)
        if name == "mcc":  # one draws its charts (a second of matplotlib), one does not
            text = path.read_text()
            path.write_text(text.replace("report_charts = false", "report_charts = true"))
        log = folder / "ground.log"
        cmd = [sys.executable, "-m", "linkstack", "daemon", "--scenario", str(path)]
        cmd += ["--start", "+10765", "--runs-dir", str(runs), "ground"]
        with open(log, "wb") as err, open(folder / "ground.out", "wb") as out:
            procs.append((subprocess.Popen(cmd, stdout=out, stderr=err), folder, log))
    try:
        for proc, _, log in procs:
            wait_for_record(proc, log, "ready")
        for proc, _, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _, log in procs:
            assert proc.wait(HANG_S) == 0, log.read_text()[-3000:]
    finally:
        for proc, _, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    dirs = sorted(runs.iterdir())
    assert len(dirs) == 2, dirs
    for _, folder, log in procs:
        written = next(r for r in records(log) if r["msg"] == "report written")
        run_dir = Path(written["path"])
        assert run_dir.is_absolute() and run_dir in dirs, (run_dir, dirs)
        assert run_dir.name.endswith("-ground") or run_dir.name.endswith("-ground-2")
        charts = ["report.html", "report.png"] if folder.name == "mcc" else []
        assert written["files"] == sorted(["report.json", *charts])
        assert set(written["round_trip_s"]) == {"p50_s", "p95_s", "p99_s"}
        printed = (folder / "ground.out").read_text()
        assert f"linkstack daemon ground: report in {run_dir}\n" in printed
        doc = json.loads((run_dir / "report.json").read_text())
        assert doc["kind"] == "linkstack-roundtrips" and doc["queries"] == []
        assert doc["meta"]["ground"] == folder.name  # each run its own report
        assert {"p50_s", "p95_s", "p99_s"} <= set(doc["summary"]["all"]["legs"]["uplink"])
        if charts:
            page = check_png_and_page(run_dir / "report.png", run_dir / "report.html")
            assert f"ground {folder.name}" in page and "0/0 answered" in page
        else:
            assert sorted(p.name for p in run_dir.iterdir()) == ["report.json"]


def test_runs_ending_in_the_same_second_get_folders_of_their_own(tmp_path):
    ended = datetime(2026, 12, 7, 1, 23, 45, 600_000, tzinfo=UTC)
    assert run_dir_name(ended, "ground") == "2026-12-07T01-23-45Z-ground"
    first = new_run_dir(tmp_path / "runs", "ground", ended)
    (first / "report.json").write_text("{}")
    made = [new_run_dir(tmp_path / "runs", "ground", ended) for _ in range(2)]
    other = new_run_dir(tmp_path / "runs", "all", ended)
    assert [p.name for p in (first, *made, other)] == [
        "2026-12-07T01-23-45Z-ground",
        "2026-12-07T01-23-45Z-ground-2",
        "2026-12-07T01-23-45Z-ground-3",
        "2026-12-07T01-23-45Z-all",
    ]
    assert (first / "report.json").read_text() == "{}"  # the first run's, untouched
    assert all(p.is_absolute() and not any(p.iterdir()) for p in (*made, other))
