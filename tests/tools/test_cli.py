"""The installed `linkstack` command, run as a user would."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from linkstack import __version__
from linkstack.tools import cli

EXE = shutil.which("linkstack") or str(Path(sys.executable).parent / "linkstack")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"linkstack {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def test_help_lists_the_subcommands():
    out = run("--help").stdout
    for cmd in ("version", "demo", "bench", "fuzz", "decode", *cli.BESIDE):
        assert cmd in out


@pytest.mark.parametrize("command", ["version", "decode", "daemon", "conform"])
def test_a_command_imports_only_what_it_needs(command):
    """The subcommands beside their code are imported only when named: a short command
    does not pay for numba, aiohttp or matplotlib (most tests start several)."""
    code = (
        "import sys; from linkstack.tools.cli import build_parser; "
        f"build_parser([{command!r}]); "
        "heavy = {'numba', 'aiohttp', 'matplotlib', 'numpy'}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", sorted(cli.BESIDE))
def test_each_command_beside_its_code_has_its_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: linkstack {command} ")


def test_no_command_prints_help_and_fails():
    proc = run(check=False)
    assert proc.returncode == 2 and "usage" in proc.stdout


def test_version():
    assert run("version").stdout.startswith(f"linkstack {__version__}")


def test_demo_link_only_runs_the_link_layer_round_trip():
    out = run("demo", "--link-only").stdout
    assert "link-layer round trip" in out and "result   OK" in out
    assert "corrected by Reed-Solomon" in out and "corrected by BCH" in out


def test_decode_prints_fields_of_the_known_answer_tc_frame(kat):
    out = run("decode", "tc", kat["cltu_01"]["tc_frame"]).stdout
    assert "scid=758" in out and "TcFrameType.BD" in out and "map_id=2" in out


def test_decode_refuses_a_damaged_unit_with_the_reason():
    proc = run("decode", "spp", "e0010000000000", check=False)
    assert proc.returncode == 1 and "spp: version" in proc.stdout


def test_decode_refuses_non_hex():
    proc = run("decode", "tm", "zz", check=False)
    assert proc.returncode == 2 and "not hexadecimal" in proc.stderr


def test_bench_framing_quick_prints_every_case():
    out = run("bench", "framing", "--quick").stdout
    for case in ("spp encode+decode 64 B", "tm pack+extract 1024 B", "aos pack+extract 64 B"):
        assert case in out
    assert "MB/s" in out


def test_bench_fec_and_coding_quick_print_their_tables():
    out = run("bench", "fec", "--quick").stdout
    assert "decode, 16 errors/codeword" in out and "reedsolo" in out and "x" in out
    out = run("bench", "coding", "--quick").stdout
    assert "TM chain receive (per CADU)" in out and "CLTU" in out


def test_fuzz_command_reports_each_target():
    out = run("fuzz", "--iterations", "200", "--target", "tc").stdout
    assert "tc.unpack" in out and "tm.unpack" not in out and "FAILURES" not in out


@pytest.mark.parametrize(
    "args",
    [["fuzz", "--target", "nope"], ["bench", "nothing"], ["bench", "sweep", "--runs", "0"]],
)
def test_bad_arguments_are_refused(args):
    proc = run(*args, check=False)
    assert proc.returncode == 2 and proc.stderr and not proc.stdout


def test_contacts_table_json_and_ion():
    import json

    table = run("contacts", "default", "--hours", "6").stdout
    assert "AOS (UTC)" in table and "passes over 5 stations in 6 h" in table
    plan = json.loads(run("contacts", "--hours", "3", "--format", "json").stdout)
    assert plan["ground_windows"] and plan["isl_windows"]
    assert all(w["los_t_s"] > w["aos_t_s"] for w in plan["ground_windows"])
    ion = run("contacts", "--hours", "3", "--format", "ion").stdout.splitlines()
    contacts = [line.split() for line in ion if line.startswith("a contact")]
    ranges = [line.split() for line in ion if line.startswith("a range")]
    assert contacts and ranges
    # absolute UTC times (yyyy/mm/dd-hh:mm:ss sort as they run); read strictly in
    # tests/channels/test_contacts_dtn.py
    assert all(len(c) == 7 and c[2].startswith("2026/01/01-") and c[3] > c[2] for c in contacts)


def test_contacts_shows_sunlight_and_eclipses():
    """The table's eclipse list and per-satellite summary, the JSON's intervals (the
    default plane, LTAN 22:30 at 500 km: 34:42 in shadow an orbit), and none with
    --no-sunlight."""
    import itertools
    import json

    table = run("contacts", "default", "--hours", "3").stdout
    assert "penumbra in (UTC)" in table and "in shadow" in table
    eclipses = [line for line in table.splitlines() if line.startswith("CS-01 ")]
    assert any(line.rstrip().endswith("34:42") for line in eclipses)
    plan = json.loads(run("contacts", "--hours", "3", "--format", "json").stdout)
    assert plan["sunlight_step_s"] == 10.0
    cs01 = [iv for iv in plan["sunlight_intervals"] if iv["satellite"] == "CS-01"]
    assert cs01[0]["start_t_s"] == 0.0 and cs01[-1]["stop_t_s"] == 10_800.0
    assert {iv["state"] for iv in cs01} == {"sunlit", "penumbra", "umbra"}
    assert all(a["stop_t_s"] == b["start_t_s"] for a, b in itertools.pairwise(cs01))
    # the sunlight is searched at --step, as the passes are
    fine = run("contacts", "--hours", "0.0125", "--step", "5", "--no-isl", "--format", "json")
    assert json.loads(fine.stdout)["sunlight_step_s"] == 5.0
    bare = json.loads(run("contacts", "--hours", "1", "--format", "json", "--no-sunlight").stdout)
    assert "sunlight_intervals" not in bare
    assert "penumbra in" not in run("contacts", "--hours", "1", "--no-sunlight").stdout


def test_contacts_refuses_an_unknown_scenario_and_a_bad_span():
    proc = run("contacts", "nowhere", check=False)
    assert proc.returncode == 2 and "unknown scenario 'nowhere'" in proc.stderr
    assert run("contacts", "--hours", "-1", check=False).returncode == 2
