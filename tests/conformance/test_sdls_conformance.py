"""``linkstack conform`` on captures of links under SDLS (355.0-B-2) made by the emulator.

``linkstack demo`` runs a scenario with ``[sdls]`` on (TC and laser frames
authenticated-encrypted, TM frames authenticated only) and writes its capture and the
run's keys: conform with ``--scenario`` (the associations) and ``--keys`` passes every
applicable rule, the SDLS ones included; without the keys the rules that read
encrypted data fields cannot judge and the SPI and counter rules pass; a frame whose
MAC was changed fails SDLS-MAC-01 with the key, and cannot be judged without. A
profile's ``[sdls]`` (for captures of other tools) does what the scenario does; with
neither, the associations the demo recorded in the capture's side file do it (only
``--keys``), and a side file without them reads the frames as clear, as before.
"""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime

import pytest

from linkstack.capture.network import nodes_path
from linkstack.capture.pcap import PcapCapture, read_units
from linkstack.capture.samples import ScriptedBackend
from linkstack.capture.sdls_view import scenario_links
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.sdls_keys import Keyring
from linkstack.conformance.passive.checker import check_capture, with_scenario_sdls
from linkstack.conformance.passive.report import format_text
from linkstack.conformance.passive.rules import CATALOGUE
from linkstack.runtime.mission_profile import load_profile
from linkstack.tools import cli, demo

SCENARIO = """\
[sdls]
enabled = true
[sdls.downlink]
service = "auth"
sn_len = 8
"""
PROFILE = """\
# the scenario's associations, as a profile gives them for another tool's capture
extends = "linkstack"
[[sdls.tc]]
spi = 1
service = "aead"
vcid = 0
[[sdls.tm]]
spi = 2
service = "auth"
sn_len = 8
[[sdls.aos]]
spi = 3
"""
SDLS_LINE = (
    "sdls: TC SPI 1 aead (VC 0), SPI 4 aead (VC 0, spare: its key unknown); TM SPI 2 auth; "
    "AOS SPI 3 aead; keys 1, 2, 3"
)
DATA_RULES = {r.id for r in CATALOGUE if set(r.hidden_by) & {"sealed_tc", "sealed_aos"}}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdls-demo")
    scenario = folder / "sdls.toml"
    scenario.write_text(SCENARIO, "utf-8")
    rc = demo.run(
        backend=ScriptedBackend(),
        scenario=scenario,
        queries=3,
        hours=1,
        start_hours=1.3,
        max_new_tokens=8,
        out_dir=folder,
        say=lambda line: None,
        progress_out=io.StringIO(),
    )
    assert rc == 0
    return folder / "demo.pcap", scenario, folder / demo.DEMO_KEYS


def _status(report):
    return {r.rule.id: r.status for r in report.results}


def _without_side_sdls(pcap, folder):
    """A copy of the capture whose side file records no associations (an older one)."""
    copy = folder / "old.pcap"
    shutil.copyfile(pcap, copy)
    doc = json.loads(nodes_path(pcap).read_text())
    del doc["sdls"]
    nodes_path(copy).write_text(json.dumps(doc))
    return copy


def test_with_the_scenario_and_its_keys_every_applicable_rule_passes(demo_run, capsys):
    pcap, scenario, keys = demo_run
    rc = cli.main(["conform", str(pcap), "--scenario", str(scenario), "--keys", str(keys)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert SDLS_LINE in out
    for rule_id in ("SDLS-SPI-01", "SDLS-SEQ-01", "SDLS-MAC-01"):
        assert f"PASS  {rule_id}" in out
    assert "N/A   SDLS-PAD-01" in out  # linkstack's associations have no pad length field
    assert "CANNOT JUDGE" not in out
    for rule_id in ("TC-DATA-01", "AOS-FILL-01", "SPP-SEQ-01", "TM-FILL-01", "COP-NR-01"):
        assert f"PASS  {rule_id}" in out


def test_without_the_keys_the_encrypted_data_cannot_be_judged(demo_run):
    pcap, scenario, _ = demo_run
    profile = with_scenario_sdls(load_profile("linkstack"), scenario_links(scenario))
    report = check_capture(pcap, profile)
    assert report.exit_code == 0, format_text(report)
    status = _status(report)
    cannot = {rule_id for rule_id, s in status.items() if s == "cannot judge"}
    assert cannot == (DATA_RULES - {"CUC-01"}) | {"SDLS-MAC-01"}
    assert status["SDLS-SPI-01"] == status["SDLS-SEQ-01"] == "pass"
    assert status["TM-FILL-01"] == status["CLCW-01"] == "pass"  # TM: authenticated only
    # no USLP frame in the capture: the USLP rules do not apply, whatever else is sealed
    assert status["USLP-FHP-01"] == status["USLP-SEG-01"] == status["USLP-VER-01"]
    assert status["USLP-VER-01"] not in ("cannot judge", "pass", "fail")
    text = format_text(report)
    assert "SDLS encrypted, and no key was given (--keys KEYFILE)" in text


def test_the_same_associations_from_a_profile(demo_run, tmp_path):
    pcap, _, keys = demo_run
    path = tmp_path / "mine.toml"
    path.write_text(PROFILE, "utf-8")
    report = check_capture(pcap, load_profile(path), keys=Keyring.from_file(keys))
    assert report.exit_code == 0, format_text(report)
    assert _status(report)["SDLS-MAC-01"] == "pass"
    # without [sdls] (and a side file that records none) the protected frames are read
    # as clear: the rules fail falsely
    assert check_capture(_without_side_sdls(pcap, tmp_path)).exit_code == 1


def test_a_changed_mac_fails_with_the_key_and_cannot_be_judged_without(demo_run, tmp_path):
    pcap, scenario, keys = demo_run
    units = [u for u in read_units(pcap) if u.layer in ("tm_frame", "tc_frame", "aos_frame")]
    i = next(i for i, u in enumerate(units) if u.layer == "tm_frame")
    frame = bytearray(units[i].data)
    frame[-6 - 16] ^= 0x01  # the MAC's first octet (before the OCF and the FECF)
    frame[-2:] = crc16_ccitt(bytes(frame[:-2])).to_bytes(2, "big")
    units[i] = units[i]._replace(data=bytes(frame))
    changed = tmp_path / "changed.pcap"
    with PcapCapture(changed, datetime(2026, 1, 1, tzinfo=UTC)) as cap:
        for u in units:
            cap.unit(*u)
    profile = with_scenario_sdls(load_profile("linkstack"), scenario_links(scenario))
    report = check_capture(changed, profile, keys=Keyring.from_file(keys))
    failed = {r.rule.id for r in report.results if r.status == "fail"}
    assert failed == {"SDLS-MAC-01"}, format_text(report)
    mac = next(r for r in report.results if r.rule.id == "SDLS-MAC-01")
    assert mac.failed == 1 and mac.first is not None and mac.first.unit.index == i + 1
    assert "mac: expected a MAC that verifies with key 2, found one that does not" in (
        format_text(report)
    )
    blind = check_capture(changed, profile)
    assert _status(blind)["SDLS-MAC-01"] == "cannot judge" and blind.exit_code == 0


def test_keys_without_associations_are_refused(demo_run, tmp_path, capsys):
    pcap, _, keys = demo_run
    assert cli.main(["conform", str(_without_side_sdls(pcap, tmp_path)), "--keys", str(keys)]) == 2
    assert "--keys: the keys need the links' security associations" in capsys.readouterr().err


def test_the_side_file_gives_the_associations_when_nothing_else_does(demo_run, tmp_path, capsys):
    """No --scenario, no [sdls] in the profile: the demo's side file says which SAs
    protect its frames; the verdicts are those --scenario gives, with and without keys."""
    pcap, scenario, keys = demo_run
    assert cli.main(["conform", str(pcap), "--keys", str(keys)]) == 0
    out = capsys.readouterr().out
    assert SDLS_LINE + "; from the capture's side file" in out
    assert "CANNOT JUDGE" not in out
    explicit = with_scenario_sdls(load_profile("linkstack"), scenario_links(scenario))
    ring = Keyring.from_file(keys)
    for given in (ring, None):
        alone = check_capture(pcap, keys=given)
        told = check_capture(pcap, explicit, keys=given, sdls_source="--scenario x")
        assert _status(alone) == _status(told), format_text(alone)
        assert alone.exit_code == told.exit_code == 0
        assert [(r.rule.id, r.failed, r.checked) for r in alone.results] == [
            (r.rule.id, r.failed, r.checked) for r in told.results
        ]
        assert told.sdls_text.endswith("from --scenario x")
    # the key file beside the capture is named, never read: without --keys the
    # encrypted data cannot be judged, and the report says what to pass
    blind = check_capture(pcap)
    assert "cannot judge" in _status(blind).values()
    assert blind.sdls_text == (
        f"{SDLS_LINE.removeprefix('sdls: ').removesuffix('; keys 1, 2, 3')}; no keys "
        f"(to read the encrypted frames: pass --keys {keys}); from the capture's side file"
    )
    # an explicit source wins over the side file: a profile's own [sdls]
    path = tmp_path / "mine.toml"
    path.write_text(PROFILE, "utf-8")
    mine = load_profile(path)
    text = check_capture(pcap, mine).sdls_text
    assert text.startswith("TC SPI 1 aead (VC 0); TM") and "SPI 4" not in text
    assert text.endswith(f"from the profile {mine.name}")
