"""The active suite's SDLS cases (``SDLS-ACT-*``): the tester protects its TC frames with
the channel's security association and key, and sends what an attacker would.

In process (a simulated clock): the project's spacecraft with SDLS on its TC channel
(its guard, as a satellite builds it) passes every sat case, with each service; the
same spacecraft without SDLS, and the stub that accepts everything, fail every SDLS
case but the baseline; a tester with the wrong key, or counters the spacecraft will
not take, fails the baseline and judges nothing else.

Over UDP, through the command line: a ``linkstack daemon sat`` with ``[sdls] enabled =
true`` passes every case (and counts each refusal by its reason in ``/counters``); a
sat daemon with SDLS off, tested with the same association, and the stub fail
``SDLS-ACT-02`` to ``SDLS-ACT-07``.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from linkstack.ccsds.coding.chains import CltuTransmitter
from linkstack.ccsds.sdls import SaCounters
from linkstack.ccsds.sdls_keys import Keyring
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.conformance.active.cases import SAT_CASES
from linkstack.conformance.active.report import format_text
from linkstack.conformance.active.runner import ActiveConfig
from linkstack.conformance.active.sdls import TcSecurity, first_counters
from linkstack.conformance.active.stub import AcceptAllSat
from linkstack.daemon.wire import PortPlan
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.cop1_link import Spacecraft
from linkstack.runtime.security import BOOT_EPOCH_S, Guards, SaSettings, SdlsSettings, boot_stamp
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.tools.cli import main as cli_main
from tests.conformance.test_active import (
    ACT_IDS,
    HANG_S,
    SATELLITE,
    SCID,
    SDLS_OFF,
    Daemons,
    InProcessSat,
    _Clock,
    _Downlink,
    conform,
    run_in_process,
    statuses,
)
from tests.ports import free_block

SDLS_IDS = [c.id for c in SAT_CASES if c.id.startswith("SDLS-")]
ATTACKS = set(SDLS_IDS) - {"SDLS-ACT-01"}  # what an endpoint without SDLS must fail
LINK = 6  # CS-06's link number, as linkstack's ground counts it
GROUND_BOOT = boot_stamp(BOOT_EPOCH_S + 1_000_000)  # when "the ground" started
TESTER_BOOT = boot_stamp(BOOT_EPOCH_S + 2_000_000)  # when the tester starts: later


def sdls_settings(service: str = "aead", **sa) -> SdlsSettings:
    up = SaSettings(spi=1, key_id=1, service=service, **sa)
    return SdlsSettings(enabled=True, uplink=up)


class SdlsSat(InProcessSat):
    """The project's spacecraft with SDLS on its TC channel, its guard made as a
    satellite makes it, and frames already taken from its ground (whose counters
    started at ``GROUND_BOOT``)."""

    def __init__(self, settings: SdlsSettings, keys: Keyring, ground_frames: int = 2) -> None:
        config = UplinkConfig(scid=SCID, sdls=settings)
        lengths = (config.tc_max_frame_length, config.tc_segment_header, config.tm_frame_length)
        guards = Guards(settings, keys, now=lambda: 0.0, boot=GROUND_BOOT)
        guard = guards.spacecraft("CS-06", LINK, *lengths, config.vcid)
        self.guard = guard
        self.down = _Downlink()
        self.spacecraft = Spacecraft(config, _Clock(), self.down, guard=guard)
        ground = guards.ground("CS-06", LINK, *lengths)
        cltu = CltuTransmitter(config.cltu_coding)
        for _ in range(ground_frames):  # its ground's Type-BD frames, taken
            plain = TcFrame(SCID, 0, b"\x00", TcFrameType.BD, 0, 0).pack(True)
            self.receive(cltu.cltu(ground.protect(plain)))
        assert guard.stats["verified"] == ground_frames


def config_with_sdls(settings: SdlsSettings, keys: Keyring, **more) -> ActiveConfig:
    sa = settings.uplink.association()
    first = more.pop("first", None) or first_counters(sa, LINK, TESTER_BOOT)
    security = TcSecurity(sa, keys, first, known_spis=(2, 3))
    return ActiveConfig(timeout_s=2.0, sdls=security, **more)


def keys_for(settings: SdlsSettings) -> Keyring:
    return Keyring.generate(settings.key_ids())


# -- in process -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        sdls_settings("aead"),
        sdls_settings("auth", sn_len=8),
        sdls_settings("auth", auth="HMAC_SHA256", sn_len=12, mac_len=32),
    ],
    ids=["aes-gcm", "aes-cmac", "hmac-sha256"],
)
def test_a_spacecraft_with_sdls_passes_every_case(settings):
    keys = keys_for(settings)
    sat = SdlsSat(settings, keys)
    report = run_in_process(sat, config_with_sdls(settings, keys), rules="*")
    assert statuses(report) == dict.fromkeys(ACT_IDS + SDLS_IDS, "pass"), format_text(report)
    assert report.exit_code == 0
    # the SDLS cases alone: each refusal SDLS's own, for its reason
    sat = SdlsSat(settings, keys)
    report = run_in_process(sat, config_with_sdls(settings, keys), rules="SDLS-*")
    assert report.exit_code == 0, format_text(report)
    refused = {k: v for k, v in sat.guard.stats.items() if k.startswith("refused_")}
    assert refused == {
        "refused_mac": 7,  # MAC and data bits flipped (3), another key (2), forged commands (2)
        "refused_replay": 3,  # a Type-BD frame, a Type-AD frame, a Set V(R)
        "refused_spi_unknown": 5,  # an unknown SPI (2), frames without SDLS (3)
        "refused_length": 1,  # an Unlock without SDLS: too short for a security header
    }


def test_an_encryption_only_association_cannot_refuse_what_needs_a_mac():
    settings = sdls_settings("enc")
    keys = keys_for(settings)
    report = run_in_process(
        SdlsSat(settings, keys), config_with_sdls(settings, keys), rules="SDLS-*"
    )
    got = statuses(report)
    assert got["SDLS-ACT-02"] == got["SDLS-ACT-05"] == "n/a", format_text(report)
    assert {got[c] for c in SDLS_IDS if c not in ("SDLS-ACT-02", "SDLS-ACT-05")} == {"pass"}
    assert "without a MAC" in format_text(report)


def test_without_sdls_the_project_spacecraft_fails_every_attack():
    """The project's spacecraft with SDLS off takes the tester's protected Type-AD and
    Type-BD frames as plain ones (the baseline passes: their headers are clear) and
    everything an attacker sends. (Its COP-1 cases fail too: a protected control
    command is no command to it.)"""
    settings = sdls_settings()
    config = config_with_sdls(settings, keys_for(settings))
    report = run_in_process(InProcessSat(), config, rules="SDLS-*")
    got = statuses(report)
    assert got == {"ACT-CLCW-01": "pass", "SDLS-ACT-01": "pass"} | dict.fromkeys(ATTACKS, "fail")
    text = format_text(report)
    assert "FAIL  SDLS-ACT-06" in text and "Type-BC Set V(R)" in text and "without SDLS" in text


def test_the_stub_fails_every_attack():
    settings = sdls_settings()
    stub = AcceptAllSat(SCID)
    report = run_in_process(stub, config_with_sdls(settings, keys_for(settings)), rules="SDLS-*")
    got = statuses(report)
    assert got == {"ACT-CLCW-01": "pass", "SDLS-ACT-01": "pass"} | dict.fromkeys(ATTACKS, "fail")
    assert report.exit_code == 1
    # the evidence names the frame and the CLCW field that moved
    text = format_text(report)
    block = text.split("FAIL  SDLS-ACT-02")[1].split("\n\n")[0]
    assert "a bit of its MAC flipped" in block and "N(R)" in block


def test_a_wrong_key_or_stale_counters_fail_the_baseline_and_judge_nothing_else():
    settings = sdls_settings()
    keys = keys_for(settings)
    for config in (
        config_with_sdls(settings, keys_for(settings)),  # other keys than the spacecraft's
        config_with_sdls(settings, keys, first=SaCounters(iv=1)),  # below what its ground sent
    ):
        report = run_in_process(SdlsSat(settings, keys), config, rules="SDLS-*")
        got = statuses(report)
        assert got["SDLS-ACT-01"] == "fail", format_text(report)
        assert {got[c] for c in ATTACKS} == {"n/a"}
        assert "did not take frames protected" in format_text(report)
        assert report.exit_code == 1


def test_without_an_association_the_sdls_cases_do_not_apply():
    report = run_in_process(InProcessSat(), rules="SDLS-*")
    assert statuses(report) == {"ACT-CLCW-01": "pass"} | dict.fromkeys(SDLS_IDS, "n/a")
    assert "no SDLS security association given" in format_text(report)
    assert report.exit_code == 0


def test_the_tester_starts_above_its_grounds_counters_and_below_the_next_links():
    sa = sdls_settings().uplink.association()
    ground = first_counters(sa, LINK, GROUND_BOOT)
    mine = first_counters(sa, LINK, TESTER_BOOT)
    assert ground.iv < mine.iv < first_counters(sa, LINK + 1, 0).iv


# -- over UDP, through the command line -------------------------------------------------------


def verdicts(stdout: str) -> dict[str, str]:
    return {
        m.group(2): m.group(1)
        for m in re.finditer(r"^(PASS|FAIL|N/A|ERROR)\s+((?:SDLS-)?ACT-\S+)", stdout, re.M)
    }


def with_sdls(scenario: Path, keys: Path) -> Path:
    """A copy of a :class:`Daemons` scenario (same ports) with SDLS on, its keys in
    ``keys``."""
    out = scenario.with_name(f"{scenario.stem}-sdls-{keys.stem}.toml")
    text = scenario.read_text()
    assert SDLS_OFF in text
    out.write_text(text.replace(SDLS_OFF, f'[sdls]\nenabled = true\nkey_file = "{keys}"\n'))
    return out


@pytest.fixture(scope="module")
def sdls_sat(tmp_path_factory):
    """A sat daemon (CS-06 only) with SDLS on, its HTTP port open; it writes the keys."""
    d = Daemons(tmp_path_factory.mktemp("active-sdls"))
    http = free_block(0, 3)  # clear of the daemon's blocks, drawn but not yet bound
    text = d.scenario.read_text()
    text = text.replace("http_port = 0", f"http_port = {http}")
    d.scenario.write_text(f"{text}check_source = false\n")  # [daemon]: a tester without
    # the scenario (a profile's association) sends from a port of its own
    d.scenario = with_sdls(d.scenario, d.folder / "keys.json")
    d.http_sat = f"http://127.0.0.1:{http + 2}"
    d.start("sat", "--name", SATELLITE)
    try:
        d.ready("sat")
        yield d
    finally:
        codes = d.stop_all()
    assert codes == {"sat": 0}, d.log("sat")[-3000:]


def counters(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/counters", timeout=5) as r:
        return json.load(r)


def test_the_sat_daemon_with_sdls_passes_every_case(sdls_sat):
    before = counters(sdls_sat.http_sat)["sdls"]
    out = conform(
        "--role", "sat", "--scenario", str(sdls_sat.scenario), "--satellite", SATELLITE,
        "--timeout", "10",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert verdicts(out.stdout) == dict.fromkeys(ACT_IDS + SDLS_IDS, "PASS"), out.stdout
    # the association and keys came from the scenario: the keys the daemon wrote
    assert f"keys from {sdls_sat.folder / 'keys.json'}" in out.stdout
    assert "SDLS SA 1 (aead, key 1); the tester's first IV 0x" in out.stdout
    # each refusal SDLS's, counted by its reason where the operator sees it
    after = counters(sdls_sat.http_sat)["sdls"]
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in after if k.startswith("refused_")}
    assert moved["refused_replay"] == 3, moved
    assert moved["refused_mac"] >= 7 and moved["refused_spi_unknown"] >= 5, moved
    assert sdls_sat.alive("sat")
    log = sdls_sat.log("sat")
    assert "SDLS refused a frame" in log and "Traceback" not in log, log[-3000:]
    # run again: its counters start afresh (later), above those the daemon took
    out = conform(
        "--role", "sat", "--scenario", str(sdls_sat.scenario), "--satellite", SATELLITE,
        "--keys", str(sdls_sat.folder / "keys.json"), "--rules", "SDLS-*", "--timeout", "10",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    # and a start below them is not taken: the baseline fails, the rest is not judged
    out = conform(
        "--role", "sat", "--scenario", str(sdls_sat.scenario), "--satellite", SATELLITE,
        "--sdls-counter", "5", "--rules", "SDLS-ACT-01,SDLS-ACT-02", "--timeout", "2",
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert verdicts(out.stdout) == {
        "ACT-CLCW-01": "PASS", "SDLS-ACT-01": "FAIL", "SDLS-ACT-02": "N/A"
    }, out.stdout  # fmt: skip
    assert "counters at or below those it took (--sdls-counter)" in out.stdout


def test_the_sat_daemon_with_sdls_passes_with_a_profiles_association(sdls_sat, tmp_path):
    """Without the scenario: the association from a profile, the ports given, and the
    counters' start given (the daemon's ground would start now on link 6)."""
    keys = sdls_sat.folder / "keys.json"
    profile = tmp_path / "profile.toml"
    profile.write_text(f'name = "sdls"\nextends = "linkstack"\n{PROFILE_SDLS}')
    settings = scenario_file.load(sdls_sat.scenario)
    d = settings.daemon
    plan = PortPlan.of(settings.scenario, d)
    sa = settings.emulation.uplink.sdls.uplink.association()
    start = first_counters(sa, LINK, boot_stamp(time.time())).iv
    up, down = plan.uplink(SATELLITE), plan.downlink(SATELLITE)
    out = conform(
        "--role", "sat", "--profile", str(profile), "--keys", str(keys),
        "--target", f"udp://127.0.0.1:{up.node_port}",
        "--listen", str(down.channel_port), "--sdls-counter", str(start),
        "--link-header", f"{up.index}:{down.index}",  # the daemons' own framing
        "--rules", "SDLS-*", "--timeout", "10",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert verdicts(out.stdout) == {"ACT-CLCW-01": "PASS"} | dict.fromkeys(SDLS_IDS, "PASS")
    assert f"the tester's first IV {start:#x}, from profile {profile}" in out.stdout


def test_a_sat_daemon_without_sdls_fails_every_attack(tmp_path):
    """The same tester against a sat daemon whose scenario has SDLS off."""
    d = Daemons(tmp_path)
    keys = tmp_path / "keys.json"
    Keyring.generate([1, 2, 3]).write(keys)
    d.start("sat", "--name", SATELLITE)
    try:
        d.ready("sat")
        out = conform(
            "--role", "sat", "--scenario", str(with_sdls(d.scenario, keys)),
            "--satellite", SATELLITE, "--rules", "SDLS-*", "--timeout", "10",
        )  # fmt: skip
    finally:
        codes = d.stop_all()
    assert codes == {"sat": 0}, d.log("sat")[-3000:]
    assert out.returncode == 1, out.stdout + out.stderr
    got = verdicts(out.stdout)
    assert got == {"ACT-CLCW-01": "PASS", "SDLS-ACT-01": "PASS"} | dict.fromkeys(ATTACKS, "FAIL")
    assert f"result: FAIL: {len(ATTACKS)} failed" in out.stdout


PROFILE_SDLS = """
[[sdls.tc]]
spi = 1
service = "aead"
key_id = 1
vcid = 0
"""


def test_the_stub_fails_every_attack_over_udp(tmp_path):
    """The association from a profile this time: no scenario at all."""
    base = free_block(2)
    keys = tmp_path / "keys.json"
    Keyring.generate([1]).write(keys)
    profile = tmp_path / "profile.toml"
    profile.write_text(f'name = "sdls"\nextends = "linkstack"\n{PROFILE_SDLS}')
    stub = subprocess.Popen(
        [
            sys.executable, "-m", "linkstack.conformance.active.stub", "--scid", hex(SCID),
            "--listen", f"127.0.0.1:{base}", "--send", f"127.0.0.1:{base + 1}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out = conform(
            "--role", "sat", "--profile", str(profile), "--keys", str(keys),
            "--target", f"udp://127.0.0.1:{base}", "--listen", str(base + 1),
            "--rules", "SDLS-*", "--timeout", "10",
        )  # fmt: skip
    finally:
        stub.send_signal(signal.SIGTERM)
        stub.communicate(timeout=HANG_S)
    assert out.returncode == 1, out.stdout + out.stderr
    setup = f"SDLS SA 1 (aead, key 1); the tester's first IV 0x1, from profile {profile}"
    assert setup in out.stdout
    got = verdicts(out.stdout)
    assert got == {"ACT-CLCW-01": "PASS", "SDLS-ACT-01": "PASS"} | dict.fromkeys(ATTACKS, "FAIL")
    block = out.stdout.split("FAIL  SDLS-ACT-05")[1].split("\n\n")[0]
    assert "with another key" in block and "N(R)" in block


def test_sdls_options_without_an_association_are_refused(tmp_path, capsys):
    keys = tmp_path / "keys.json"
    Keyring.generate([1, 2, 3]).write(keys)
    plain = Daemons(tmp_path).scenario
    missing = with_sdls(plain, tmp_path / "none.json")
    profile = tmp_path / "profile.toml"
    profile.write_text(f'name = "sdls"\n{PROFILE_SDLS}')
    for args, words in (
        (["--role", "sat", "--target", "udp://127.0.0.1:9", "--listen", "9",
          "--profile", str(profile)], "--keys: give the key file"),
        (["--role", "sat", "--target", "udp://127.0.0.1:9", "--listen", "9", "--keys", str(keys)],
         "--keys: no SDLS security association"),
        (["--role", "sat", "--scenario", str(plain), "--sdls-counter", "5"],
         "[sdls] has enabled = true"),
        (["--role", "sat", "--scenario", str(missing)], "cannot open it"),
        (["--role", "ground", "--scenario", str(with_sdls(plain, keys))],
         "the ground role does not"),
    ):  # fmt: skip
        assert cli_main(["conform", *args]) == 2, args
        err = capsys.readouterr().err
        assert words in err, (args, err)
