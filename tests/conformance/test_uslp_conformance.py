"""``linkstack conform`` on USLP captures (732.1-B-2, ``frames.protocol = "uslp"``): the
good USLP session of ``tests/conformance/broken/uslp_good.pcap`` passes every USLP rule
and COP-1's over USLP, each broken one fails exactly its rule and names the frame, and
the sample ``pcaps/uslp-relay.pcap`` (a run of the emulator) passes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from linkstack.capture.pcap import PcapCapture
from linkstack.capture.sdls_view import scenario_links
from linkstack.ccsds.sdls_keys import Keyring
from linkstack.conformance.passive import broken_uslp
from linkstack.conformance.passive.checker import Report, check_capture, with_scenario_sdls
from linkstack.conformance.passive.report import format_text
from linkstack.conformance.passive.rules import CATALOGUE
from linkstack.conformance.passive.session import EPOCH
from linkstack.runtime.mission_profile import load_profile
from tests.capture.test_replay_uslp import run_uslp_under_sdls

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "tests" / "conformance" / "broken"
USLP_RULES = {r.id for r in CATALOGUE if r.id.startswith("USLP-")}


def status(report: Report) -> dict[str, str]:
    return {r.rule.id: r.status for r in report.results}


def test_the_uslp_rules_are_a_handful_each_with_its_source():
    assert {
        "USLP-VER-01",
        "USLP-LEN-01",
        "USLP-HDR-01",
        "USLP-VC-01",
        "USLP-FHP-01",
        "USLP-SEG-01",
        "USLP-FECF-01",
    } == USLP_RULES
    for r in CATALOGUE:
        if r.id in USLP_RULES:
            assert r.standard == "CCSDS 732.1-B-2" and r.section.startswith("§4.1.")


def test_the_good_uslp_session_passes_every_uslp_rule_and_cop_1():
    report = check_capture(FOLDER / "uslp_good.pcap")
    got = status(report)
    assert report.exit_code == 0 and report.ok, format_text(report)
    assert {k for k in USLP_RULES if got[k] == "pass"} == USLP_RULES, format_text(report)
    # COP-1 over USLP: N(S) of the FDUs, and the CLCW in the downlink frames' OCF held
    # against them; the CLTUs and CADUs around the frames
    for rule in ("COP-NS-01", "COP-NR-01", "CLCW-01", "CLTU-BCH-01", "RS-01", "SPP-SEQ-01"):
        assert got[rule] == "pass", rule
    # of TC's rules, those of the FDUs' data fields and the CLTU's randomizer hold over USLP
    over_uslp = {"TC-DATA-01", "TC-FILL-01", "TC-RAND-01"}
    assert all(got[k] == "pass" for k in over_uslp)
    assert not [
        k
        for k, v in got.items()
        if k.startswith(("TM-", "TC-", "AOS-")) and k not in over_uslp and v != "n/a"
    ]


@pytest.mark.parametrize("name", sorted(broken_uslp.BROKEN))
def test_each_broken_uslp_capture_fails_exactly_its_rule_naming_the_frame(name):
    spec = broken_uslp.BROKEN[name]
    units = broken_uslp.write(spec.records(), io.BytesIO(), spec.carriers)
    report = check_capture(FOLDER / f"{name}.pcap")
    failed = {r.rule.id for r in report.results if r.status == "fail"}
    assert failed == spec.fails, format_text(report)
    assert report.exit_code == 1 and not report.internal_errors
    for r in report.results:
        if r.status == "fail":
            assert r.first is not None
            assert units[r.first.unit.index - 1] == (spec.blame, "uslp_frame")
            assert r.first.expected != r.first.found


@pytest.mark.parametrize("name", sorted(broken_uslp.BROKEN))
def test_each_broken_uslp_capture_without_its_fault_passes(name, tmp_path):
    spec = broken_uslp.BROKEN[name]
    twin = broken_uslp.Broken("twin", frozenset(), kinds=spec.kinds, carriers=spec.carriers)
    broken_uslp.write(twin.records(), tmp_path / "twin.pcap", spec.carriers)
    report = check_capture(tmp_path / "twin.pcap")
    assert report.exit_code == 0, format_text(report)
    assert not {r.rule.id for r in report.results if r.status == "fail"}


@pytest.fixture(scope="module")
def sdls_run(tmp_path_factory):
    return run_uslp_under_sdls(tmp_path_factory.mktemp("uslp-sdls"))


def test_a_uslp_run_under_sdls_passes_with_its_keys_and_hides_its_data_without(sdls_run):
    path, scenario, keys, _ = sdls_run
    profile = with_scenario_sdls(load_profile("linkstack"), scenario_links(scenario))
    report = check_capture(path, profile, keys=Keyring.from_file(keys))
    got = status(report)
    assert report.exit_code == 0 and not report.internal_errors, format_text(report)
    sdls = {"SDLS-SPI-01", "SDLS-SEQ-01", "SDLS-MAC-01"}
    for rule in sorted(sdls | {"USLP-FHP-01", "USLP-SEG-01", "COP-NR-01", "SPP-SEQ-01"}):
        assert got[rule] == "pass", (rule, format_text(report))
    # without the keys: the encrypted uplink and laser frames' data cannot be judged
    blind = check_capture(path, profile)
    hidden = status(blind)
    assert blind.exit_code == 0 and not blind.internal_errors, format_text(blind)
    assert hidden["USLP-SEG-01"] == "cannot judge" and hidden["USLP-FHP-01"] == "cannot judge"
    assert hidden["USLP-VER-01"] == "pass" and hidden["COP-NS-01"] == "pass"


def test_the_uslp_sample_of_the_emulator_passes():
    report = check_capture(ROOT / "pcaps" / "uslp-relay.pcap")
    got = status(report)
    assert report.exit_code == 0, format_text(report)
    assert {"USLP-VER-01", "USLP-VC-01", "USLP-FHP-01", "USLP-SEG-01", "COP-NR-01"} <= {
        k for k, v in got.items() if v == "pass"
    }


def test_uslp_frames_need_a_spacecraft_at_one_end(tmp_path):
    good = check_capture(FOLDER / "uslp_good.pcap")
    assert status(good)["LINK-DIR-01"] == "pass"
    path = tmp_path / "ground-to-ground.pcap"
    with PcapCapture(path, EPOCH) as cap:
        for r in broken_uslp.build():
            if r.kind == broken_uslp.DOWN:
                cap.unit("uslp_frame", r.t_s, "ground:Svalbard", "ground:Kiruna", r.data)
    report = check_capture(path)
    fail = next(r for r in report.results if r.rule.id == "LINK-DIR-01")
    assert fail.status == "fail" and fail.first is not None
    assert fail.first.field == "ends" and fail.first.unit.layer == "uslp_frame"
