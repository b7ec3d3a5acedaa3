"""The passive conformance suite, ``linkstack conform``: the rule catalogue, the
deliberately broken captures of ``tests/conformance/broken``, the project's own captures,
garbage, the report, JUnit XML and the exit status.

The captures of ``tests/conformance/broken`` are made by
``python -m linkstack.conformance.passive.broken``; the first test makes them again and
compares them byte for byte. If a change to the codecs or to the generator changes them
on purpose, regenerate them with that command and commit them.
"""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.capture.pcap import PORTS, ipv4_checksum
from linkstack.ccsds.coding.chains import CaduTransmitter
from linkstack.ccsds.sdls_keys import Keyring
from linkstack.conformance.passive import broken, broken_uslp, session
from linkstack.conformance.passive.checker import Report, check_capture, select_rules
from linkstack.conformance.passive.report import format_text, junit_tree, write_junit
from linkstack.conformance.passive.rules import CATALOGUE
from linkstack.errors import ConfigError
from linkstack.runtime.mission_profile import load_profile
from linkstack.tools import cli

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "tests" / "conformance" / "broken"
PCAPS = ROOT / "pcaps"
CASES = {**broken.GOODS, **broken.BROKEN}
PASSIVE = [r for r in CATALOGUE if r.mode == "passive"]
STANDARDS = (
    "133.0-B-2",
    "132.0-B-3",
    "232.0-B-4",
    "732.0-B-4",
    "131.0-B-4",
    "231.0-B-4",
    "232.1-B-2",
    "301.0-B-4",
    "355.0-B-2",
    "732.1-B-2",
)
REGENERATE = "python -m linkstack.conformance.passive.broken"
TM_FRAMES = sum(1 for r in session.build() if r.kind == "tm")


def profile_of(spec: broken.Broken):
    return load_profile(FOLDER / spec.profile if spec.profile else "linkstack")


def keys_of(spec: broken.Broken):
    """The keys a capture is judged with: the SDLS session's public test keys."""
    return session.sdls_keys() if spec.sdls else None


def failed_ids(report: Report) -> set[str]:
    return {r.rule.id for r in report.results if r.status == "fail"}


def assert_judged(report: Report) -> None:
    """The audit went through: the capture was read to its end and no rule broke."""
    errors = [f"{r.rule.id}: {r.error}" for r in report.results if r.status == "error"]
    assert not errors and not report.internal_errors and report.read_error is None, (
        errors,
        report.internal_errors,
        report.read_error,
    )


@pytest.fixture(scope="module")
def checked() -> dict[str, tuple[Report, list[tuple[str, str]]]]:
    """Each committed capture checked under its profile, with the (tag, layer) of its
    units in order (as the generator wrote them)."""
    out = {}
    for name, spec in CASES.items():
        units = session.write(spec.records(), io.BytesIO())
        path = FOLDER / f"{name}.pcap"
        out[name] = (check_capture(path, profile_of(spec), keys=keys_of(spec)), units)
    return out


# -- the captures of tests/conformance -------------------------------------------------------------


def test_the_committed_captures_are_what_the_generator_makes(tmp_path):
    broken.write_all(tmp_path)
    made = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in FOLDER.iterdir())
    assert made == committed, f"tests/conformance/broken is out of date: run `{REGENERATE}`"
    for name in made:
        assert (tmp_path / name).read_bytes() == (FOLDER / name).read_bytes(), (
            f"tests/conformance/broken/{name} is no longer what the generator makes: if the change "
            f"is meant, run `{REGENERATE}` and commit the files"
        )
    names = [*CASES, *broken_uslp.CASES]
    expected = {f"{name}.pcap" for name in names} | {f"{name}.pcap.nodes.json" for name in names}
    assert expected | set(broken.PROFILES) | {"README.md", broken.SDLS_KEY_FILE} == set(made)


def test_the_captures_stay_small():
    total = sum(p.stat().st_size for p in FOLDER.iterdir())
    assert total < 600_000, f"{total:,} octets in tests/conformance/broken"
    assert max(p.stat().st_size for p in FOLDER.glob("*.pcap")) < 80_000


def test_the_good_capture_passes_every_applicable_rule(checked):
    report, _ = checked["good"]
    assert_judged(report)
    assert report.exit_code == 0 and report.ok, format_text(report)
    status = {r.rule.id: r.status for r in report.results}
    na = {r.id for r in PASSIVE if status[r.id] == "n/a"}
    # the session shows every passive rule at work but CUC-01 (the linkstack profile has
    # no time code), AOS-FHP-02 (linkstack never marks a packet zone 0x7FE) and SDLS's
    # (the linkstack profile has no [sdls]: good_sdls.pcap is the session under SDLS)
    # and USLP's (uslp_good.pcap is the session over USLP frames)
    sdls = {r.id for r in PASSIVE if r.id.startswith("SDLS-")}
    uslp = {r.id for r in PASSIVE if r.id.startswith("USLP-")}
    assert na == {"CUC-01", "AOS-FHP-02"} | sdls | uslp and len(sdls) == 4, na
    assert all(status[r.id] == "pass" for r in PASSIVE if r.id not in na)


def test_the_good_capture_under_sdls_passes_every_applicable_rule_with_its_keys(checked):
    report, _ = checked["good_sdls"]
    assert_judged(report)
    assert report.exit_code == 0, format_text(report)
    status = {r.rule.id: r.status for r in report.results}
    na = {r.id for r in PASSIVE if status[r.id] == "n/a"}
    uslp = {r.id for r in PASSIVE if r.id.startswith("USLP-")}  # the USLP session's
    assert na == {"CUC-01", "AOS-FHP-02"} | uslp, na  # SDLS's four at work, every other rule too
    assert "sdls: TC SPI 1 aead (VC 0); TM SPI 2 auth; AOS SPI 3 aead; keys 1, 2, 3" in (
        format_text(report)
    )


def test_the_good_capture_under_sdls_without_its_keys_cannot_judge_the_data(checked):
    """Without the keys: the encrypted data fields (TC, AOS) are not read, so what is
    in them cannot be judged, nor any MAC; the TM data (authenticated only) and every
    header are, and SDLS's SPI, counter and pad rules pass."""
    report = check_capture(FOLDER / "good_sdls.pcap", profile_of(broken.GOOD_SDLS))
    assert_judged(report)
    assert report.exit_code == 0, format_text(report)
    status = {r.rule.id: r.status for r in report.results}
    cannot = {rule_id for rule_id, st_ in status.items() if st_ == "cannot judge"}
    data_rules = {r.id for r in PASSIVE if set(r.hidden_by) & {"sealed_tc", "sealed_aos"}}
    assert cannot == (data_rules - {"CUC-01"}) | {"SDLS-MAC-01"}  # CUC-01: off in the profile
    assert {"TM-FHP-01", "TM-FILL-01", "TC-SEG-01", "COP-NS-01", "COP-NR-01"} <= {
        rule_id for rule_id, st_ in status.items() if st_ == "pass"
    }
    for rule_id in ("SDLS-SPI-01", "SDLS-SEQ-01", "SDLS-PAD-01"):
        assert status[rule_id] == "pass"
    text = format_text(report)
    assert "CANNOT JUDGE TC-DATA-01: 15 frame(s) hold a data field that SDLS encrypted" in text
    assert "CANNOT JUDGE SDLS-MAC-01: 33 frame(s) carry a MAC and no key was given" in text


def test_the_sdls_profile_says_what_the_session_does():
    profile = load_profile(FOLDER / broken.SDLS_PROFILE)
    assert profile.sdls.tc == (session.SDLS_SAS["tc"],)
    assert profile.sdls.tm == (session.SDLS_SAS["tm"],)
    assert profile.sdls.aos == (session.SDLS_SAS["aos"],)


def test_the_good_capture_passes_under_the_cuc_profile_too():
    report = check_capture(FOLDER / "good.pcap", load_profile(FOLDER / broken.CUC_PROFILE))
    assert_judged(report)
    assert report.exit_code == 0, format_text(report)
    cuc = next(r for r in report.results if r.rule.id == "CUC-01")
    assert cuc.status == "pass" and cuc.checked == 2  # the HK packet: on its port, in its frame


@pytest.mark.parametrize("name", sorted(broken.BROKEN))
def test_each_broken_capture_fails_exactly_its_rules_naming_the_unit(name, checked):
    spec = broken.BROKEN[name]
    report, units = checked[name]
    assert_judged(report)
    assert failed_ids(report) == spec.fails, format_text(report)
    assert report.exit_code == 1
    text = format_text(report)
    assert "result: FAIL: " in text
    for r in report.results:
        if r.status != "fail":
            continue
        first = r.first
        assert first is not None and r.failed >= 1 and r.checked >= r.failed
        tag, layer = units[first.unit.index - 1]
        assert tag == spec.blame, f"{r.rule.id} blames {tag}, not {spec.blame}"
        assert first.unit.layer == layer
        assert first.field and first.expected and first.found and first.expected != first.found
        # the text report names the rule and the unit: index, time, field, expected, found
        assert f"FAIL  {r.rule.id}" in text and r.rule.reference in text
        assert f"first offending unit: #{first.unit.index} (pcap frame {first.unit.record})" in text
        assert f"t = {first.unit.t_s:.6f} s (2025-01-01T00:00:0" in text
        assert f"field {first.field}: expected {first.expected}, found {first.found}" in text


@pytest.mark.parametrize("name", sorted(broken.BROKEN))
def test_each_broken_capture_without_its_fault_passes(name, tmp_path):
    """The same units of the good session, in the same window: the fault, and nothing
    about the cut, is what fails."""
    spec = broken.BROKEN[name]
    good = {r.tag: r for r in session.build(sdls=spec.sdls)}
    twin = [good[r.tag] for r in spec.records() if r.tag in good]
    assert len(twin) >= 2
    session.write(twin, tmp_path / "twin.pcap")
    report = check_capture(tmp_path / "twin.pcap", profile_of(spec), keys=keys_of(spec))
    assert_judged(report)
    assert report.exit_code == 0, format_text(report)


def test_every_passive_rule_is_broken_by_some_capture():
    covered = set().union(*(spec.fails for spec in broken.BROKEN.values()))
    covered |= set().union(*(spec.fails for spec in broken_uslp.BROKEN.values()))
    assert covered == {r.id for r in PASSIVE}
    assert all(spec.blame and spec.what for spec in broken.BROKEN.values())


def test_the_catalogue_cites_every_standard_and_says_what_each_rule_checks():
    ids = [r.id for r in CATALOGUE]
    assert len(ids) == len(set(ids))
    for standard in STANDARDS:
        assert any(standard in r.standard for r in PASSIVE), standard
    for r in PASSIVE:
        assert r.standard.startswith("CCSDS ") and r.section and r.statement.endswith(".")
        assert r.on and r.subject and r.layer


def test_rules_are_selected_by_identifier_and_pattern():
    assert [r.id for r in select_rules("tm-fhp-01")] == ["TM-FHP-01"]
    assert {r.id for r in select_rules("COP-*")} == {
        "COP-NS-01",
        "COP-RTX-01",
        "COP-RTX-02",
        "COP-NR-01",
        "COP-LOCK-01",
    }
    report = check_capture(FOLDER / "tm_fhp_wrong.pcap", rules=select_rules("TM-*,RS-01"))
    selected = {r.rule.id for r in report.results}
    assert selected == {r.id for r in PASSIVE if r.id.startswith("TM-")} | {"RS-01"}
    assert failed_ids(report) == {"TM-FHP-01"}
    with pytest.raises(ConfigError):
        select_rules("NOPE-01")


# -- the project's own captures --------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(PCAPS.glob("*.pcap")), ids=lambda p: p.name)
def test_the_sample_captures_pass(path):
    report = check_capture(path)
    assert_judged(report)
    assert report.exit_code == 0, format_text(report)
    assert report.count("pass") >= 20


def test_a_fresh_demo_capture_passes(tmp_path):
    from linkstack.capture.samples import ScriptedBackend
    from linkstack.tools import demo

    # the demo as `linkstack demo` runs it, with canned answers instead of the model
    rc = demo.run(
        backend=ScriptedBackend(),
        queries=3,
        hours=1,
        start_hours=1.3,
        max_new_tokens=8,
        out_dir=tmp_path,
        say=lambda line: None,
        progress_out=io.StringIO(),
    )
    assert rc == 0
    # SDLS is on by default: the capture names its associations, the demo wrote its keys
    keys = Keyring.from_file(tmp_path / "demo.pcap.keys.json")
    report = check_capture(tmp_path / "demo.pcap", keys=keys)
    assert_judged(report)
    assert report.exit_code == 0, format_text(report)
    assert report.units["aos_frame"] and report.units["cltu"] and report.units["tm_cadu"]
    assert report.count("pass") >= 40
    sealed = check_capture(tmp_path / "demo.pcap")  # without the keys: judged, never failed
    assert sealed.exit_code == 0 and sealed.count("cannot judge") > 0, format_text(sealed)


# -- garbage ---------------------------------------------------------------------------------------


def _raw_pcap(datagrams: list[tuple[int, int, bytes]]) -> bytes:
    """A pcap of Ethernet/IPv4/UDP frames with any ports: (source port, destination port,
    payload) each."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, (sport, dport, payload) in enumerate(datagrams):
        udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
        ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                                   bytes([10, 1, 0, 1]), bytes([10, 2, 0, 1])))  # fmt: skip
        ip[10:12] = ipv4_checksum(ip).to_bytes(2, "big")
        frame = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + bytes(ip) + udp
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame
    return bytes(out)


def random_udp_pcap(seed: int, n: int = 120) -> bytes:
    """Random payloads, of the lengths units have and others, on every layer port and on
    ports of no layer."""
    rng = random.Random(seed)
    ports = sorted(PORTS.values())
    datagrams = []
    for _ in range(n):
        length = rng.choice((1, 6, 9, 64, 1115, 1279, rng.randrange(1, 1500)))
        port = rng.choice(ports) if rng.random() < 0.8 else rng.randrange(1, 65536)
        datagrams.append((rng.randrange(1024, 65536), port, rng.randbytes(length)))
    return _raw_pcap(datagrams)


@pytest.mark.parametrize("seed", range(3))
def test_random_udp_payloads_give_a_report_not_a_traceback(seed):
    report = check_capture(random_udp_pcap(seed))
    assert_judged(report)
    assert report.exit_code == 1 and sum(report.units.values()) > 50
    assert report.reader["other_ports"] > 0
    text = format_text(report)
    assert "result: FAIL" in text and "first offending unit" in text
    ET.fromstring(ET.tostring(junit_tree(report).getroot()))


def test_a_capture_cut_short_is_an_incomplete_audit():
    data = (FOLDER / "good.pcap").read_bytes()
    report = check_capture(data[: len(data) // 2])
    assert report.read_error is not None and "stopped after" in report.read_error
    assert report.exit_code == 2
    assert any(r.status == "pass" for r in report.results)  # judged up to where it stopped
    assert "NOT READ TO ITS END" in format_text(report)
    assert check_capture(b"not a pcap at all").exit_code == 2


@settings(max_examples=40)
@given(frame=st.integers(0, TM_FRAMES - 1), bit=st.integers(0, 8 * session.FRAME_LEN - 1))
def test_any_single_bit_flip_in_a_tm_frame_fails_its_fecf(frame, bit):
    """The TM frame (on its port) damaged, its CADU left as sent: TM-FECF-01 fails on
    that frame, and the audit goes through whatever else the damage upsets."""
    records = session.build()
    record = [r for r in records if r.kind == "tm"][frame]
    record.carrier = CaduTransmitter(session.FRAME_LEN).cadu(record.data)
    damaged = bytearray(record.data)
    damaged[bit // 8] ^= 0x80 >> (bit % 8)
    record.data = bytes(damaged)
    buf = io.BytesIO()
    units = session.write(records, buf)
    report = check_capture(buf.getvalue())
    assert_judged(report)
    fecf = next(r for r in report.results if r.rule.id == "TM-FECF-01")
    assert fecf.status == "fail" and fecf.failed == 1
    assert units[fecf.first.unit.index - 1] == (record.tag, "tm_frame")
    assert report.exit_code == 1


@settings(max_examples=40)
@given(data=st.data())
def test_damage_anywhere_in_a_capture_gives_a_report(data):
    """Any octets of good.pcap overwritten (pcap headers, IP, UDP, units): a report."""
    raw = bytearray((FOLDER / "good.pcap").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    report = check_capture(bytes(raw))
    errors = [r.rule.id for r in report.results if r.status == "error"]
    assert not errors and not report.internal_errors
    assert report.exit_code in (0, 1, 2)
    format_text(report)


# -- the report: JUnit XML, and the command line ---------------------------------------------------


def test_junit_has_one_testcase_per_rule_and_the_failures(checked, tmp_path):
    report, _ = checked["cop1_lockout_ad"]
    path = tmp_path / "junit.xml"
    write_junit(report, path)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(report.results) == int(suite.get("tests"))
    names = [c.get("name").split(" ", 1)[0] for c in cases]
    assert names == [r.rule.id for r in report.results]
    failures = {c.get("name").split(" ", 1)[0]: c.find("failure") for c in cases}
    failed = {rule_id for rule_id, f in failures.items() if f is not None}
    assert failed == {"COP-LOCK-01"} and suite.get("failures") == "1"
    failure = failures["COP-LOCK-01"]
    first = next(r.first for r in report.results if r.rule.id == "COP-LOCK-01")
    assert f"unit #{first.unit.index} " in failure.get("message")
    assert "frame_type: expected BC (Unlock) or BD" in failure.get("message")
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(skipped) == report.count("n/a") == int(suite.get("skipped"))


def test_the_command_line_exit_status_and_junit(tmp_path):
    """0 pass, 1 a rule failed, 2 an incomplete audit; run as a user would (the four
    commands at once: each pays the interpreter's start-up)."""
    garbage = tmp_path / "random.pcap"
    garbage.write_bytes(random_udp_pcap(7))
    not_pcap = tmp_path / "notes.pcap"
    not_pcap.write_text("this is not a capture\n")
    runs = {
        "good": [str(FOLDER / "good.pcap"), "--junit", str(tmp_path / "good.xml")],
        "broken": [str(FOLDER / "tm_fhp_wrong.pcap"), "--junit", str(tmp_path / "broken.xml")],
        "random": [str(garbage)],
        "not_pcap": [str(not_pcap), "--profile", "linkstack"],
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "linkstack", "conform", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in runs.items()
    }
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        done[name] = (proc.returncode, out, err)
    for name, (_, out, err) in done.items():
        assert "Traceback" not in out + err, (name, err)
    rc, out, _ = done["good"]
    assert rc == 0 and "result: PASS" in out
    rc, out, _ = done["broken"]
    assert rc == 1 and "FAIL  TM-FHP-01" in out and "first offending unit: #4" in out
    rc, out, _ = done["random"]
    assert rc == 1 and "result: FAIL" in out
    rc, out, _ = done["not_pcap"]
    assert rc == 2 and "NOT READ TO ITS END" in out and "not a pcap file" in out
    for name, failures in (("good", set()), ("broken", {"TM-FHP-01"})):
        suite = ET.parse(tmp_path / f"{name}.xml").getroot().find("testsuite")
        cases = suite.findall("testcase")
        assert len(cases) == len(CATALOGUE)
        got = {c.get("name").split(" ", 1)[0] for c in cases if c.find("failure") is not None}
        assert got == failures


def test_the_command_refuses_what_it_cannot_audit(tmp_path, capsys):
    assert cli.main(["conform", str(tmp_path / "missing.pcap")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["conform", str(FOLDER / "good.pcap"), "--profile", "nope"]) == 2
    assert "no built-in profile" in capsys.readouterr().err
    assert cli.main(["conform", str(FOLDER / "good.pcap"), "--rules", "XX-*"]) == 2
    assert cli.main(["conform"]) == 2
    capsys.readouterr()
    assert cli.main(["conform", "--list-rules"]) == 0
    listing = capsys.readouterr().out
    assert all(r.id in listing for r in PASSIVE) and "CCSDS 232.1-B-2" in listing


def test_a_broken_capture_fails_under_its_profile_through_the_command(capsys):
    path = str(FOLDER / "cuc_pfield.pcap")
    assert cli.main(["conform", path]) == 0  # the linkstack profile has no time code
    assert "N/A   CUC-01" in capsys.readouterr().out
    assert cli.main(["conform", path, "--profile", str(FOLDER / broken.CUC_PROFILE)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  CUC-01" in out and "pfield.time_code_id: expected 001 or 010, found 100" in out


def test_the_writer_of_the_captures_can_write_to_a_stream():
    buf = io.BytesIO()
    units = session.write(broken.GOOD.records(), buf)
    assert buf.getvalue() == (FOLDER / "good.pcap").read_bytes()
    assert len(units) == sum(check_capture(buf.getvalue()).units.values())


def test_a_pcap_with_nothing_on_the_layer_ports_is_an_incomplete_audit(tmp_path):
    """Not a pass: a capture on other ports (another port table) has nothing to audit."""
    report = check_capture(_raw_pcap([(5000, 5001, b"hello"), (53, 40000, b"\0" * 40)]))
    assert_judged(report)
    assert report.exit_code == 2 and not report.ok
    assert report.count("pass") == 0 and all(r.status == "n/a" for r in report.results)
    assert report.reader["other_ports"] == 2
    assert "NOTHING TO AUDIT" in format_text(report)
    error = junit_tree(report).getroot().find("testsuite/testcase/error")
    assert error is not None and "profile's ports" in error.get("message")
