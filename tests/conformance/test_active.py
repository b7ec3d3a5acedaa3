"""The active conformance suite: ``linkstack conform --target udp://HOST:PORT --role ...``.

In process (no sockets, a simulated clock): the sat-role cases against the project's
own spacecraft (:class:`linkstack.runtime.cop1_link.Spacecraft`), against variants of it broken in
one way each, and against the stub that accepts everything.

Over UDP, through the real command line in a subprocess: against a ``linkstack daemon
sat`` process (the tiny model, one satellite in a pass: CS-06 over Mohe from 02:59:31,
``t_s`` 10771, until 03:06:57; the daemons start at ``+10800``), which must pass every
case; against the stub, which must fail exactly the cases that need a refusal; against
nothing, which is a clear error and exit status 2. The ground role against a ``linkstack
daemon ground`` process: a few cases by default, all of them (T1 must expire, and
every negative case waits for a silence) in a test marked slow.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from linkstack.ccsds.coding.chains import CltuCoding
from linkstack.ccsds.coding.cltu import DecodeMode
from linkstack.ccsds.cop1.farm import TABLE as FARM_TABLE
from linkstack.ccsds.cop1.farm import Farm, FarmEvent
from linkstack.conformance.active.cases import GROUND_CASES, SAT_CASES, select_cases
from linkstack.conformance.active.report import format_text
from linkstack.conformance.active.runner import (
    ActiveConfig,
    ActiveReport,
    LoopbackDriver,
    SatCtx,
    run_suite,
)
from linkstack.conformance.active.stub import AcceptAllSat
from linkstack.daemon.wire import arrival
from linkstack.runtime.cop1_link import Spacecraft
from linkstack.runtime.security import SdlsSettings
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.tools.cli import main as cli_main
from tests.ports import free_block

START = "+10800"  # CS-06 in view of Mohe (AOS 10771.4 s), until 11217 s
SATELLITE = "CS-06"
SCID = 0x45  # CS-06: the sixth satellite from 0x40
LINKS = 48  # the default scenario's: 12 uplinks, 12 downlinks, 24 laser directions
HANG_S = 60.0  # against hangs only

SDLS_OFF = "[sdls]\nenabled = false\n"  # whatever the default: SDLS is test_active_sdls.py's
SAT_IDS = [c.id for c in SAT_CASES]
ACT_IDS = [i for i in SAT_IDS if i.startswith("ACT-")]  # SDLS-ACT-*: test_active_sdls.py
GROUND_IDS = [c.id for c in GROUND_CASES]
# what an endpoint that accepts everything must fail: every case that needs a refusal
REFUSALS = {
    "ACT-TC-SCID-01",
    "ACT-TC-VCID-01",
    "ACT-TC-FECF-01",
    "ACT-CLTU-BCH-01",
    "ACT-TC-MALFORMED-01",
    "ACT-TC-WINDOW-01",
    "ACT-TC-WINDOW-02",
    "ACT-COP-LOCKOUT-01",
}


# -- in process -----------------------------------------------------------------------------


class _Clock:
    def now(self) -> float:
        return 0.0


class _Downlink:
    def __init__(self) -> None:
        self.units: list[bytes] = []

    def send(self, unit: bytes) -> int:
        self.units.append(unit)
        return len(self.units)


class InProcessSat:
    """The project's spacecraft end (CLTU decoding, TC validation, FARM-1, TM with the
    CLCW) as the loopback driver wants it."""

    def __init__(self, config: UplinkConfig | None = None, farm: Farm | None = None) -> None:
        self.down = _Downlink()
        config = config or UplinkConfig(scid=SCID, sdls=SdlsSettings(enabled=False))
        self.spacecraft = Spacecraft(config, _Clock(), self.down)
        if farm is not None:
            self.spacecraft.farm = farm

    def receive(self, unit: bytes) -> None:
        self.spacecraft.on_uplink(arrival(unit, 0.0))

    def emit(self) -> list[bytes]:
        self.spacecraft.emit_tm()
        out, self.down.units = self.down.units, []
        return out


def run_in_process(endpoint, config: ActiveConfig | None = None, rules="ACT-*") -> ActiveReport:
    """The suite (by default the cases without SDLS) against an in-process endpoint."""
    config = config or ActiveConfig(timeout_s=2.0)
    ctx = SatCtx(config)
    report = ActiveReport("in-process", "in-process", "sat", config)
    cases = select_cases("sat", rules)
    asyncio.run(run_suite(ctx, LoopbackDriver(ctx, endpoint), cases, report))
    return report


def statuses(report: ActiveReport) -> dict[str, str]:
    return {r.case.id: r.status for r in report.results}


def failing(report: ActiveReport) -> set[str]:
    return {i for i, s in statuses(report).items() if s != "pass"}


def test_the_project_spacecraft_passes_every_case_in_process():
    report = run_in_process(InProcessSat())
    assert statuses(report) == dict.fromkeys(ACT_IDS, "pass"), format_text(report)
    assert report.exit_code == 0
    assert "spacecraft 0x45, from its TM frames" in report.facts


def test_in_the_error_detecting_mode_a_single_bit_error_loses_the_frame():
    detect = UplinkConfig(
        scid=SCID,
        cltu_coding=CltuCoding(mode=DecodeMode.DETECT),
        sdls=SdlsSettings(enabled=False),
    )
    config = ActiveConfig(timeout_s=2.0, cltu_mode=DecodeMode.DETECT)
    assert failing(run_in_process(InProcessSat(detect), config)) == set()
    # the tester told "correct" while the spacecraft detects: BCH-02 fails, nothing else
    report = run_in_process(InProcessSat(detect))
    assert failing(report) == {"ACT-CLTU-BCH-02"}
    (result,) = [r for r in report.results if r.case.id == "ACT-CLTU-BCH-02"]
    assert "one bit error in each of its" in result.verdict.evidence.sent


def _farm_taking(event: FarmEvent, for_event: FarmEvent) -> Farm:
    """FARM-1 that does for ``event`` what the table says for ``for_event``."""
    return Farm(0, table={**FARM_TABLE, event: FARM_TABLE[for_event]})


def test_a_spacecraft_broken_in_one_way_fails_that_case_only():
    # forgets to set Retransmit on a frame in the positive window
    no_retransmit = _farm_taking(FarmEvent.E3, FarmEvent.E4)
    assert failing(run_in_process(InProcessSat(farm=no_retransmit))) == {"ACT-TC-WINDOW-01"}
    # takes the lockout area for the negative window
    no_lockout = _farm_taking(FarmEvent.E5, FarmEvent.E4)
    assert failing(run_in_process(InProcessSat(farm=no_lockout))) == {"ACT-COP-LOCKOUT-01"}
    blind = InProcessSat()
    blind.spacecraft.tc_rx.check_scid = False
    report = run_in_process(blind)
    assert failing(report) == {"ACT-TC-SCID-01"}
    text = format_text(report)
    assert "FAIL  ACT-TC-SCID-01" in text and "with SCID 0x44 (the target's is 0x45)" in text


def test_the_stub_fails_the_refusals_in_process():
    report = run_in_process(AcceptAllSat(SCID))
    assert failing(report) == REFUSALS, format_text(report)
    assert all(r.status == "fail" for r in report.results if r.case.id in REFUSALS)
    assert report.exit_code == 1


def test_a_chosen_case_runs_after_the_first_one_without_the_rest():
    report = run_in_process(AcceptAllSat(SCID), rules="ACT-TC-FECF-01,act-tc-window-*")
    assert statuses(report) == {
        "ACT-CLCW-01": "pass",
        "ACT-TC-FECF-01": "fail",
        "ACT-TC-WINDOW-01": "fail",
        "ACT-TC-WINDOW-02": "fail",
    }
    # no fence (ACT-COP-BD-01 did not run): judged after three CLCWs, and still right
    assert failing(run_in_process(InProcessSat(), rules="ACT-TC-FECF-01")) == set()


def test_a_silent_endpoint_is_no_contact():
    class Silent(InProcessSat):
        def emit(self) -> list[bytes]:
            return []

    report = run_in_process(Silent(), ActiveConfig(timeout_s=0.5))
    assert report.error and not report.results and report.exit_code == 2


# -- over UDP, through the command line -------------------------------------------------------


def conform(*args: str, timeout: float = HANG_S) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "linkstack", "conform", *args]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)


def verdicts(stdout: str) -> dict[str, str]:
    return dict(
        (m.group(2), m.group(1))
        for m in re.finditer(r"^(PASS|FAIL|N/A|ERROR)\s+(ACT-\S+)", stdout, re.MULTILINE)
    )


class Daemons:
    """``linkstack daemon`` processes on a scenario of their own (free ports, no MQTT,
    no capture, no SDLS, a CLCW every 50 ms, T1 half a second; test_active_sdls.py
    turns SDLS on)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        base = free_block(2 * LINKS)
        self.scenario = folder / "scenario.toml"
        self.scenario.write_text(
            f"{SDLS_OFF}"
            "[cop1]\n"
            "clcw_interval_s = 0.05\n"
            "t1_s = 0.5\n"
            "[mqtt]\n"
            "enabled = false\n"
            "[capture]\n"
            "enabled = false\n"
            "[daemon]\n"
            f"channel_port = {base}\n"
            f"node_port = {base + LINKS}\n"
            "http_port = 0\n"
            f'out_dir = "{folder / "out"}"\n'
            f'runs_dir = "{folder / "runs"}"\n'
            "report_charts = false\n"
        )
        self.procs: dict[str, tuple[subprocess.Popen, Path]] = {}

    def start(self, role: str, *extra: str) -> None:
        log = self.folder / f"{role}.log"
        cmd = [sys.executable, "-m", "linkstack", "daemon", "--scenario", str(self.scenario)]
        cmd += ["--start", START, "--no-capture", *extra, role]
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        self.procs[role] = (proc, log)

    def log(self, role: str) -> str:
        return self.procs[role][1].read_text(errors="replace")

    def ready(self, role: str) -> None:
        proc, _ = self.procs[role]
        deadline = time.monotonic() + HANG_S
        while '"msg":"ready"' not in self.log(role):
            assert proc.poll() is None, f"the {role} daemon exited:\n{self.log(role)[-3000:]}"
            assert time.monotonic() < deadline, f"the {role} daemon is not ready"
            time.sleep(0.05)

    def alive(self, role: str) -> bool:
        return self.procs[role][0].poll() is None

    def stop_all(self) -> dict[str, int | None]:
        codes = {}
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for role, (proc, _) in self.procs.items():
            try:
                codes[role] = proc.wait(HANG_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                codes[role] = None
        return codes


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    """A sat daemon (CS-06 only) and a ground daemon, started together."""
    d = Daemons(tmp_path_factory.mktemp("active"))
    d.start("sat", "--name", SATELLITE)
    d.start("ground")
    try:
        d.ready("ground")
        d.ready("sat")
        yield d
    finally:
        codes = d.stop_all()
    assert codes == {"sat": 0, "ground": 0}, d.log("sat")[-3000:] + d.log("ground")[-3000:]


def test_the_sat_daemon_passes_every_case(daemons, tmp_path):
    junit = tmp_path / "active.xml"
    out = conform(
        "--role", "sat", "--scenario", str(daemons.scenario), "--satellite", SATELLITE,
        "--junit", str(junit), "--timeout", "10",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert verdicts(out.stdout) == dict.fromkeys(ACT_IDS, "PASS"), out.stdout
    assert f"satellite {SATELLITE} (SCID {SCID:#x})" in out.stdout
    # the SDLS cases do not apply: the scenario's [sdls] is off
    sdls = len(SAT_IDS) - len(ACT_IDS)
    assert f"result: PASS: 14 passed, {sdls} not applicable" in out.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == str(len(SAT_IDS)) and suite.get("failures") == "0"
    assert [c.get("name").split()[0] for c in suite.iter("testcase")] == SAT_IDS
    # it took all of that without a crash or an exception in a handler
    assert daemons.alive("sat")
    log = daemons.log("sat")
    assert "Traceback" not in log and "handling a unit" not in log, log[-3000:]


def test_the_stub_fails_exactly_the_refusals(tmp_path):
    base = free_block(2)
    stub = subprocess.Popen(
        [
            sys.executable, "-m", "linkstack.conformance.active.stub", "--scid", hex(SCID),
            "--listen", f"127.0.0.1:{base}", "--send", f"127.0.0.1:{base + 1}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        junit = tmp_path / "stub.xml"
        out = conform(
            "--target", f"udp://127.0.0.1:{base}", "--listen", str(base + 1), "--role", "sat",
            "--junit", str(junit), "--timeout", "10",
        )  # fmt: skip
    finally:
        stub.send_signal(signal.SIGTERM)
        _, err = stub.communicate(timeout=HANG_S)
    assert out.returncode == 1, out.stdout + out.stderr
    got = verdicts(out.stdout)
    assert {i for i, v in got.items() if v == "FAIL"} == REFUSALS, out.stdout
    assert {i for i, v in got.items() if v == "PASS"} == set(ACT_IDS) - REFUSALS, out.stdout
    assert "learnt: spacecraft 0x45, from its TM frames" in out.stdout
    assert f"result: FAIL: {len(REFUSALS)} failed" in out.stdout
    # the evidence: what was sent, what was expected, what came back
    block = out.stdout.split("FAIL  ACT-TC-SCID-01")[1].split("\n\n")[0]
    assert "sent:     Type-AD frame N(S)" in block and "SCID 0x44" in block
    assert "expected: both discarded" in block and "found:    TM unit #" in block
    failures = {f.get("type") for f in ET.parse(junit).getroot().iter("failure")}
    assert failures == REFUSALS
    assert b"units received" in err


def test_nothing_listening_is_a_clear_error_and_exit_2():
    base = free_block(2)
    t0 = time.monotonic()
    out = conform(
        "--target", f"udp://127.0.0.1:{base}", "--listen", f"127.0.0.1:{base + 1}",
        "--role", "sat", "--timeout", "3",
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert f"no contact: nothing listens on udp://127.0.0.1:{base}" in out.stderr
    assert "result: INCOMPLETE" in out.stdout
    assert time.monotonic() - t0 < 10


def test_bad_options_are_refused_with_exit_2(tmp_path, capsys):
    for args, words in (
        (["--target", "tcp://127.0.0.1:9", "--listen", "9"], "udp://HOST:PORT"),
        (["--target", "udp://127.0.0.1:9"], "--listen"),
        (["--role", "ground", "--target", "udp://127.0.0.1:9", "--listen", "10"], "--scid"),
        (["--role", "sat", "--satellite", "CS-99"], "CS-99"),
        ([str(tmp_path / "x.pcap"), "--target", "udp://127.0.0.1:9"], "not both"),
        (["--role", "sat", "--rules", "ACT-NOPE-*"], "no sat case"),
    ):
        assert cli_main(["conform", *args]) == 2, args
        err = capsys.readouterr().err
        assert words in err, (args, err)


def test_the_cases_are_listed_by_role(capsys):
    assert cli_main(["conform", "--list-rules", "--role", "sat"]) == 0
    out = capsys.readouterr().out
    assert re.findall(r"^((?:SDLS-)?ACT-\S+)", out, re.MULTILINE) == SAT_IDS
    assert "CCSDS 232.1-B-2 §6" in out
    assert cli_main(["conform", "--list-rules", "--role", "ground", "--rules", "ACT-GND-*"]) == 0
    assert re.findall(r"^(ACT-\S+)", capsys.readouterr().out, re.MULTILINE) == GROUND_IDS


GROUND_QUICK = ["ACT-GND-CLCW-01", "ACT-GND-SCID-01", "ACT-GND-FECF-01", "ACT-GND-CLTU-01"]


def ground_run(d: Daemons, *extra: str) -> subprocess.CompletedProcess:
    out = conform(
        "--role", "ground", "--scenario", str(d.scenario), "--satellite", SATELLITE,
        "--timeout", "10", *extra,
    )  # fmt: skip
    assert d.alive("ground")
    log = d.log("ground")
    assert "Traceback" not in log and "handling a unit" not in log, log[-3000:]
    return out


def test_the_ground_daemon_reads_the_clcw_and_ignores_what_it_must(daemons):
    out = ground_run(daemons, "--rules", ",".join(GROUND_QUICK))
    assert out.returncode == 0, out.stdout + out.stderr
    assert verdicts(out.stdout) == dict.fromkeys(GROUND_QUICK, "PASS"), out.stdout
    assert "Unlock" in out.stdout


@pytest.mark.slow
def test_the_ground_daemon_passes_every_case(daemons):
    out = ground_run(daemons)
    assert out.returncode == 0, out.stdout + out.stderr
    assert verdicts(out.stdout) == dict.fromkeys(GROUND_IDS, "PASS"), out.stdout
    assert "Type-BC Unlock" in out.stdout and "again after" in out.stdout
