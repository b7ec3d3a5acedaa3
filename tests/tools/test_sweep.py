"""linkstack sweep: sweep files refused naming the key, resume, and the same rows
serially, on a local Ray, and on a real two-process Ray cluster (a head and a worker
started by ``ray start``), through which a worker killed mid-sweep loses nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from linkstack.tools import cli, sweep_exec, sweep_file, sweep_report
from linkstack.tools.sweep_file import SweepError

RAY = str(Path(sys.executable).parent / "ray")

# tiny variants: 3 queries over 12 emulated minutes (~0.1-2 s each), 2 x 2 variants
SWEEP = """
[sweep]
base = "reference"
seeds = [1, 2]
out = "out"
[load]
queries = 3
hours = 0.2
max_new_tokens = 16
[[axes]]
key = "model.profile"
values = ["qwen3-0.6b", "qwen3-8b"]
[[axes]]
key = "stations"
values = [["Miyun", "Kashgar"], ["Sanya"]]
"""


def _bare(rows):
    """Rows without what may differ between hosts and runs (the wall time)."""
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


@pytest.fixture(scope="module")
def serial_rows(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serial")
    sweep = sweep_file.loads(SWEEP, here=folder)
    out = sweep_exec.run_sweep(sweep.specs, sweep_exec.Store(folder / "done"), serial=True)
    assert not out.failures
    assert len(out.rows) == 8
    return sweep, out.rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A Ray head and one worker, each its own `ray start` (1 CPU each); the worker
    in a process group of its own (--block), so that a test can kill that node."""
    temp = tempfile.mkdtemp(prefix="lsr", dir="/tmp")  # short: Ray's socket paths
    port = _free_port()
    # Ray 2.60 authenticates by token: the nodes and this driver share one
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus=1", "--disable-usage-stats", "--block"]

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [RAY, "start", *args, *common], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    head = start(
        "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}",
        f"--dashboard-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
    )  # fmt: skip
    address = f"{socket.gethostbyname(socket.gethostname())}:{port}"
    worker = start(
        f"--address={address}", f"--dashboard-agent-listen-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
    )  # fmt: skip
    try:
        import ray

        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        deadline = time.monotonic() + 60
        while sum(1 for n in ray.nodes() if n["Alive"]) < 2:
            assert time.monotonic() < deadline, "the worker never joined"
            time.sleep(0.2)
        yield address, worker
    finally:
        import ray

        ray.shutdown()
        for node in (worker, head):  # ray start --block stops its node's processes
            if node.poll() is None:
                node.terminate()
                try:
                    node.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(node.pid, signal.SIGKILL)
                    node.wait()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(temp, ignore_errors=True)


def test_cluster_rows_equal_serial_and_a_killed_worker_loses_nothing(
    cluster, serial_rows, tmp_path
):

    import ray

    address, worker = cluster
    sweep, all_expected = serial_rows
    specs, expected = sweep.specs[:4], all_expected[:4]  # 2 variants x 2 seeds: short
    nodes: set[str] = set()
    out = sweep_exec.run_sweep(
        specs, sweep_exec.Store(tmp_path / "a"), address=address, progress=None,
        on_row=lambda _, where: nodes.add(where),
    )  # fmt: skip
    assert not out.failures
    assert _bare(out.rows) == _bare(expected)
    assert len(nodes) == 2  # both nodes ran some

    # again, all 8 runs; the worker node is killed when the first run comes back from
    # the head: the worker then holds one in flight, which Ray runs again on the head
    head_id = ray.get_runtime_context().get_node_id()  # this driver is on the head
    where_after: list[str] = []

    def kill_worker(row, where):
        if where_after or where == head_id:
            if not where_after:
                os.killpg(worker.pid, signal.SIGKILL)
            where_after.append(where)

    out = sweep_exec.run_sweep(
        sweep.specs, sweep_exec.Store(tmp_path / "b"), address=address, progress=None,
        on_row=kill_worker,
    )  # fmt: skip
    assert not out.failures
    assert _bare(out.rows) == _bare(all_expected)
    assert where_after[0] == head_id
    assert worker.wait(timeout=10) == -signal.SIGKILL  # that node was killed


@pytest.mark.slow
def test_local_ray_rows_equal_serial(serial_rows, tmp_path):
    """The default, a Ray of this machine's own started by the sweep: the same tasks as
    through ``--address`` (make test runs those on a real head and worker), but its
    start costs ~9 s, so this runs in ``make test-slow`` (and ``bench sweep`` uses it)."""
    import ray

    sweep, expected = serial_rows
    if ray.is_initialized():  # another test's cluster in this process: a local one here
        ray.shutdown()
    try:
        out = sweep_exec.run_sweep(
            sweep.specs[:4], sweep_exec.Store(tmp_path), num_cpus=2, progress=None
        )
    finally:
        ray.shutdown()
    assert not out.failures
    assert _bare(out.rows) == _bare(expected[:4])


def test_resume_runs_only_what_is_missing(serial_rows, tmp_path):
    sweep, expected = serial_rows
    store = sweep_exec.Store(tmp_path)
    first = sweep_exec.run_sweep(sweep.specs[:3], store, serial=True, progress=None)
    assert first.resumed == 0
    ran = []
    again = sweep_exec.run_sweep(
        sweep.specs, store, serial=True, progress=None, on_row=lambda r, _: ran.append(r["key"])
    )
    assert again.resumed == 3
    assert ran == [s.key for s in sweep.specs[3:]]
    assert _bare(again.rows) == _bare(expected)


def test_cli_writes_parquet_csv_and_charts(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(SWEEP.replace('["Sanya"]', '["Sanya", "Mohe"]'))
    (tmp_path / "prompts.txt").write_text("one\n\ntwo\n")
    text = (
        (tmp_path / "s.toml")
        .read_text()
        .replace(
            "max_new_tokens = 16",
            'max_new_tokens = 16\narrival = "poisson"\nprompts = "prompts.txt"',
        )
    )
    (tmp_path / "s.toml").write_text(text.replace("seeds = [1, 2]", "seeds = 1"))
    assert cli.main(["sweep", str(tmp_path / "s.toml"), "--serial"]) == 0
    out = tmp_path / "out"
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert len(rows) == 4
    assert {r["stations"] for r in rows} == {"Miyun+Kashgar", "Sanya+Mohe"}
    assert all(r["answered"] + r["refused"] <= r["queries"] == 3 for r in rows)
    assert (out / "results.csv").read_text().splitlines()[0].startswith('"variant","name",')
    trips = pq.read_table(out / "roundtrips.parquet").to_pylist()
    assert len(trips) == sum(r["answered"] for r in rows)
    for png in ("roundtrips.png", "rt_p95_s_vs_model_profile.png", "rt_p95_s_vs_stations.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # what linkstack report draws a sweep from (tests/tools/test_report_cmd.py draws one)
    summary = sweep_report.check_doc(json.loads((out / "sweep.json").read_text()))
    assert summary["kind"] == "linkstack-sweep" and len(summary["rows"]) == 4
    assert [a["key"] for a in summary["axes"]] == ["model.profile", "stations"]
    assert sum(len(r["round_trips_s"]) for r in summary["rows"]) == len(trips)
    assert "model.profile=qwen3-8b, stations=Sanya+Mohe" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (('"qwen3-8b"]', '"qwen3-9b"]'), "model.profile", "qwen3-9b"),
        (('key = "stations"', 'key = "stationz"'), "stationz", "unknown"),
        (("hours = 0.2", "hours = -1"), "load.hours", "must be"),
        (("seeds = [1, 2]", "seeds = [1, 1]"), "sweep.seeds", "distinct"),
        (('out = "out"', 'out = "out"\nmetric = "p95"'), "sweep.metric", "rt_p95_s"),
        (('["Sanya"]', '["Atlantis"]'), "stations", "Atlantis"),
    ],
)
def test_a_bad_value_is_refused_naming_variant_and_key(change, key, words):
    with pytest.raises(SweepError) as caught:
        sweep_file.loads(SWEEP.replace(*change))
    assert caught.value.field.startswith(key), caught.value
    assert words in str(caught.value)


def test_the_bench_sweeps_16_variants():
    from linkstack.tools.bench import sweep as bench_sweep

    sweep = sweep_file.loads(bench_sweep.sweep_text(quick=False))
    assert len(sweep.specs) == 16 and len({s.key for s in sweep.specs}) == 16
    assert len(sweep_file.loads(bench_sweep.sweep_text(quick=True)).specs) == 4


def test_a_failing_run_is_reported_and_the_others_go_on(serial_rows, tmp_path):
    sweep, expected = serial_rows
    bad = dataclasses.replace(
        sweep.specs[1], scenario={"format": 1, "stations": [{"name": "Atlantis"}]}
    )
    specs = [sweep.specs[0], bad, sweep.specs[2]]
    out = sweep_exec.run_sweep(specs, sweep_exec.Store(tmp_path), serial=True, progress=None)
    assert [s for s, _ in out.failures] == [bad]
    assert "stations" in out.failures[0][1]
    assert _bare(out.rows) == _bare([expected[0], expected[2]])


def test_energy_is_reported_where_power_is_on(tmp_path):
    text = SWEEP.replace('key = "stations"', 'key = "power.enabled"').replace(
        'values = [["Miyun", "Kashgar"], ["Sanya"]]', "values = [false, true]"
    )
    sweep = sweep_file.loads(text.replace("seeds = [1, 2]", "seeds = 1"), here=tmp_path)
    specs = [s for s in sweep.specs if s.axes[0][1] == "qwen3-8b"]
    out = sweep_exec.run_sweep(specs, sweep_exec.Store(tmp_path), serial=True, progress=None)
    off, on = out.rows
    assert off["power.enabled"] is False and off["energy_wh"] is None
    assert on["power.enabled"] is True and on["energy_wh"] > 0
