"""``[frames] profile``: the ground link runs a mission profile (linkstack/runtime/link_profile.py),
the same one ``linkstack conform --profile`` judges its capture by and ``linkstack replay
--profile`` decodes it by; ``--scenario`` takes it for both."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pytest

from channels.scenarios import scenario_by_name
from linkstack.capture.pcap import PcapCapture
from linkstack.ccsds.coding.chains import CaduCoding, CaduReceiver, CaduTransmitter
from linkstack.runtime import clock as clk
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.emulation import Emulation
from linkstack.tools import cli
from tests.capture.foreign import on_port_plan
from tests.runtime.test_roundtrip import params

# a TM downlink other than linkstack's: RS(255,223) at depth 4 (892-octet frames), not
# randomized, in the conventional basis; shorter TC frames, CLTUs not randomized
OTHER = """\
name = "other-tm"
extends = "linkstack"
[tm]
frame_length = 892
rs_depth = 4
randomize = false
dual_basis = false
[tc]
max_frame_length = 512
randomize = false
"""


def _without_scenario(f: scenario_file.ScenarioFile) -> object:
    """The built config less the Scenario object (built afresh each time, never equal)."""
    return replace(f.emulation, scenario="-")


def test_the_linkstack_profile_builds_exactly_the_default_config():
    plain = scenario_file.loads("")
    named = scenario_file.loads('[frames]\nprofile = "linkstack"')
    assert _without_scenario(named) == _without_scenario(plain)
    assert named.gateway == plain.gateway and named.radio == plain.radio


def _other(tmp_path: Path) -> Path:
    path = tmp_path / "other-tm.toml"
    path.write_text(OTHER)
    return path


def test_a_profile_sets_the_downlink_and_uplink_frames_and_coding(tmp_path):
    _other(tmp_path)
    scenario = tmp_path / "s.toml"
    scenario.write_text('[frames]\nprofile = "other-tm.toml"\n')  # beside the scenario
    up = scenario_file.load(scenario).emulation.uplink
    assert up.tm_frame_length == 892 and up.tc_max_frame_length == 512
    assert up.cadu_coding == CaduCoding(rs_e=16, rs_depth=4, dual_basis=False, randomize=False)
    assert not up.cltu_coding.randomize
    # a frame goes through the coding as configured and comes back
    frame = bytes(range(256)) * 3 + bytes(892 - 768)
    cadu = CaduTransmitter(up.tm_frame_length, up.cadu_coding).cadu(frame)
    assert len(cadu) == 4 + 892 + 2 * 16 * 4
    assert cadu[4 : 4 + 892] == frame  # not randomized: the frame is in the clear
    decoded = CaduReceiver(up.tm_frame_length, up.cadu_coding).receive_cadu(cadu)
    assert decoded is not None and decoded.frame == frame


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("meteor-m2-lrpt", "its downlink is AOS"),
        ("mars2020", "its downlink is AOS"),
    ],
)
def test_the_shipped_foreign_missions_are_refused_with_why(name, words):
    with pytest.raises(scenario_file.ScenarioError) as err:
        scenario_file.loads(f'[frames]\nprofile = "{name}"')
    text = str(err.value)
    assert "frames.profile" in text and name in text and words in text
    assert "COP-1 needs FARM-1's CLCW" in text  # their frames carry no CLCW


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("[tm]\nocf = 'other'", "an OCF that is not a CLCW"),
        ("[tm]\nfecf = false", "end with an FECF"),
        ("[tm]\nframe_length = 1000", "no virtual fill"),
        ("[tm]\nasm = '1a'", "cannot take its ASM"),
        ("[tm]\nscids = [1]", "SCIDs 64..75"),
        ("[mission]\nlinkstack_apids = []", "linkstack_apids"),
    ],
)
def test_a_profile_the_link_cannot_run_is_refused(tmp_path, extra, words):
    path = tmp_path / "p.toml"
    path.write_text(f'extends = "linkstack"\n{extra}\n')
    with pytest.raises(scenario_file.ScenarioError) as err:
        scenario_file.loads(f'[frames]\nprofile = "{path}"')
    assert "frames.profile" in str(err.value) and words in str(err.value)


def test_a_key_beside_the_profile_must_agree_with_it(tmp_path):
    other = _other(tmp_path)
    with pytest.raises(scenario_file.ScenarioError) as err:
        scenario_file.loads(f'[frames]\nprofile = "{other}"\n[coding]\nrs_depth = 5')
    text = str(err.value)
    assert "coding.rs_depth" in text and "frames.profile" in text and "[tm] rs_depth is 4" in text
    with pytest.raises(scenario_file.ScenarioError, match=r"frames\.tc_max_frame_length"):
        scenario_file.loads(f'[frames]\nprofile = "{other}"\ntc_max_frame_length = 1024')
    with pytest.raises(scenario_file.ScenarioError, match=r"frames\.protocol.*frames\.profile"):
        scenario_file.loads('[frames]\nprofile = "linkstack"\nprotocol = "uslp"\nscid_base = 64')
    # the same value beside it is no contradiction
    same = scenario_file.loads(f'[frames]\nprofile = "{other}"\n[coding]\nrs_depth = 4')
    assert same.emulation.uplink.cadu_coding.rs_depth == 4
    with pytest.raises(scenario_file.ScenarioError, match=r"frames\.profile: .*No such file"):
        scenario_file.loads('[frames]\nprofile = "nowhere.toml"')


class ProfileRun(NamedTuple):
    """A run of a scenario file that names a test-written profile, and its capture."""

    profile: Path  # other-tm.toml
    scenario: Path  # s.toml beside it: [frames] profile = "other-tm.toml"
    pcap: Path


@pytest.fixture(scope="module")
def profile_run(tmp_path_factory, tiny) -> ProfileRun:
    """One query answered over the profile's link, captured (one run for the module)."""
    folder = tmp_path_factory.mktemp("profile-run")
    other = _other(folder)
    scenario = folder / "s.toml"
    # the profile by a path relative to the scenario file; SDLS off, so that conform
    # reads every frame's packets without keys
    scenario.write_text(f'[frames]\nprofile = "{other.name}"\n[sdls]\nenabled = false\n')
    config = scenario_file.load(scenario).emulation
    pcap = folder / "run.pcap"
    capture = PcapCapture(pcap, scenario_by_name("default").epoch)

    async def main() -> None:
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=tiny, capture=capture)
        async with emu:
            await clock.sleep_until(5300.0)  # CS-06 in view
            answer, timeline = await emu.client.ask("Cloud cover?", params(0))
            assert timeline.complete and answer.text

    clk.run(main)
    capture.close()
    return ProfileRun(other, scenario, pcap)


def _conform(capsys, *args: str) -> tuple[int, str, str]:
    """``linkstack conform ARGS``: its exit status, stdout and stderr."""
    capsys.readouterr()
    code = cli.main(["conform", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _failed(out: str) -> set[str]:
    return {line.split()[1] for line in out.splitlines() if line[:5] == "FAIL "}


def _verdicts(out: str) -> list[str]:
    """The report's verdict lines (each rule's, and the result less its time)."""
    return [
        line.split(";")[0] if line.startswith("result:") else line
        for line in out.splitlines()
        if line.startswith(("PASS ", "FAIL ", "N/A ", "CANNOT ", "ERROR ", "result:"))
    ]


def test_a_run_on_a_profile_passes_conform_under_that_profile(profile_run, capsys):
    """One notion end to end: the emulation runs the profile's link, and conform
    judges the capture by the same file; under linkstack's profile it does not pass."""
    pcap = str(profile_run.pcap)
    code, passed, _ = _conform(capsys, pcap, "--profile", str(profile_run.profile))
    assert code == 0, passed
    # the answer's CADUs and the satellite's TM around it (how many depends on when the
    # in-process run stops after the answer): checked, none refused
    cadus = re.search(r"tm_cadu (\d+)", passed)
    assert cadus is not None and int(cadus.group(1)) >= 2, passed
    assert "cannot judge" not in passed, passed
    # linkstack's own profile finds exactly the profile's differences wrong
    code, failed, _ = _conform(capsys, pcap, "--profile", "linkstack")
    assert code == 1
    assert _failed(failed) == {"TM-LEN-01", "CADU-LEN-01", "TC-RAND-01"}, failed


def test_conform_with_the_scenario_judges_by_its_frames_profile(profile_run, capsys):
    """``conform --scenario S`` judges by S's ``[frames] profile``, rule for rule as
    ``--profile`` of that file, and says where the profile came from."""
    pcap, scenario = str(profile_run.pcap), str(profile_run.scenario)
    code, by_scenario, err = _conform(capsys, pcap, "--scenario", scenario)
    assert code == 0, by_scenario + err
    header = by_scenario.splitlines()[1]
    assert header.startswith("profile: ") and str(profile_run.profile) in header, header
    assert f"[frames] profile of --scenario {scenario}" in header, header
    assert "ports: port plan of" in by_scenario  # the scenario's port plan, as before
    _, by_profile, _ = _conform(capsys, pcap, "--profile", str(profile_run.profile))
    assert _verdicts(by_scenario) == _verdicts(by_profile)
    assert any(line.startswith("PASS  TM-LEN-01") for line in _verdicts(by_scenario))


def test_conform_with_a_scenario_without_a_profile_still_takes_linkstacks(profile_run, capsys):
    plain = profile_run.scenario.with_name("plain.toml")
    plain.write_text("[sdls]\nenabled = false\n")
    code, out, _ = _conform(capsys, str(profile_run.pcap), "--scenario", str(plain))
    assert code == 1 and "profile: linkstack (built-in)" in out, out
    assert _failed(out) == {"TM-LEN-01", "CADU-LEN-01", "TC-RAND-01"}, out


def test_conform_refuses_a_profile_that_contradicts_the_scenarios(profile_run, capsys):
    pcap, scenario = str(profile_run.pcap), str(profile_run.scenario)
    code, out, err = _conform(capsys, pcap, "--scenario", scenario, "--profile", "linkstack")
    assert code == 2 and not out, out
    assert "--profile: linkstack (built-in) contradicts" in err, err
    assert f"--scenario {scenario}, whose [frames] profile is 'other-tm'" in err, err
    assert "differ in [tc], [tm]" in err, err  # what the profile changes, nothing else


def test_conform_takes_a_profile_that_agrees_with_the_scenarios(profile_run, capsys):
    """The same profile given both ways, or the same parameters under another name
    and file, is no contradiction."""
    pcap, scenario = str(profile_run.pcap), str(profile_run.scenario)
    copy = profile_run.scenario.with_name("copy.toml")
    copy.write_text(OTHER.replace('name = "other-tm"', 'name = "a-copy"'))
    for given in (profile_run.profile, copy):
        code, out, err = _conform(capsys, pcap, "--scenario", scenario, "--profile", str(given))
        assert code == 0, out + err
        assert f"profile: {given}" in out, out  # --profile's, as the user named it


# -- replay --scenario: the capture decoded by the scenario's [frames] profile ---------------


def _replay(capsys, *args: str) -> tuple[int, str, str]:
    """``linkstack replay ARGS``: its exit status, stdout and stderr."""
    capsys.readouterr()
    code = cli.main(["replay", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _body(out: str) -> list[str]:
    """A profile replay's report from its frames line on (less the head that says
    what was read, where the profile and the ports came from)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  TM frames of "))
    return lines[start:]


def _figures(out: str) -> list[str]:
    """A profile replay's counts that do not depend on which layers the capture holds:
    frames per VC, packets per APID, messages."""
    keep = ("  VC ", "  APID ", "  packets ", "  messages ", "  clcws ")
    return [line for line in out.splitlines() if line.startswith(keep)]


def test_replay_with_the_scenario_decodes_by_its_frames_profile(profile_run, capsys):
    """``replay --scenario S`` decodes by S's ``[frames] profile`` exactly as ``replay
    --profile`` of that file: the same report, every unit decoded (by linkstack's own
    coding the CADUs are refused); the head says where the profile came from."""
    pcap, scenario = str(profile_run.pcap), str(profile_run.scenario)
    code, by_scenario, err = _replay(capsys, pcap, "--scenario", scenario)
    assert code == 0, by_scenario + err
    head = by_scenario.splitlines()[:3]
    assert head[0].endswith(
        "--profile other-tm (capture (pcap/pcapng) on the profile's ports and the port plan)"
    ), head
    assert head[1] == f"  profile: {profile_run.profile}, [frames] profile of --scenario {scenario}"
    assert head[2].startswith(f"  ports: port plan of {scenario}: ") and "view sent" in head[2]
    _, by_profile, _ = _replay(capsys, pcap, "--profile", str(profile_run.profile))
    assert _body(by_scenario) == _body(by_profile)
    assert "RS(255,223) x 4 conventional basis, not randomized" in _body(by_scenario)[0]
    assert re.search(r"cadus +[2-9]\d* read, [2-9]\d* decoded", by_scenario), by_scenario
    # each TM frame is in the capture twice, in its CADU and as a frame record beside
    # it: decoded once (the run's one answer, no frame count gap), the record checked
    assert "Answer 1" in by_scenario and "0 refused;" in by_scenario, by_scenario
    assert "VC 0      1 frames (0 idle); frame count gaps 0" in by_scenario, by_scenario
    assert re.search(r"records +tm_frame beside its CADU: equal [1-9]", by_scenario), by_scenario
    assert "  refused   " not in by_scenario, by_scenario  # no unit refused
    # --json, a profile replay's, is there for the scenario's profile too
    code, doc, err = _replay(capsys, pcap, "--scenario", scenario, "--json")
    assert code == 0 and '"profile": "other-tm"' in doc, doc + err
    got = json.loads(doc)
    assert got["frame_records"] == {"equal": got["units"]["tm_cadu"]}, doc
    assert got["linkstack_messages"] == {"Answer": 1}, doc


@pytest.mark.parametrize("frames", ["", '[frames]\nprofile = "linkstack"\n'])
def test_replay_with_a_scenario_on_linkstacks_profile_is_the_general_one(
    profile_run, capsys, frames
):
    """A scenario that names no profile, or linkstack's own, keeps the general replay
    (uplinks, COP-1, SDLS): by linkstack's coding this run's CADUs do not decode."""
    plain = profile_run.scenario.with_name("plain.toml")
    plain.write_text(f"{frames}[sdls]\nenabled = false\n")
    code, out, _ = _replay(capsys, str(profile_run.pcap), "--scenario", str(plain))
    assert code == 1 and "decoding uplink from cltu" in out, out
    assert "refused: tm_cadu: coding" in out, out


def test_replay_refuses_a_profile_that_contradicts_the_scenarios(profile_run, capsys):
    pcap, scenario = str(profile_run.pcap), str(profile_run.scenario)
    code, out, err = _replay(capsys, pcap, "--scenario", scenario, "--profile", "linkstack")
    assert code == 2 and not out, out
    assert (
        err.startswith("linkstack replay: ")
        and "--profile: linkstack (built-in) contradicts" in err
    ), err
    assert f"--scenario {scenario}, whose [frames] profile is 'other-tm'" in err, err
    assert "differ in [tc], [tm]" in err and "to decode by the scenario's" in err, err
    # the same parameters under another name and file agree
    copy = profile_run.scenario.with_name("copy.toml")
    copy.write_text(OTHER.replace('name = "other-tm"', 'name = "a-copy"'))
    code, out, err = _replay(capsys, pcap, "--scenario", scenario, "--profile", str(copy))
    assert code == 0 and "--profile a-copy (" in out.splitlines()[0], out + err
    assert f"  profile: {copy}" in out, out


def test_replay_with_the_scenario_reads_its_daemons_capture_on_the_port_plan(
    profile_run, capsys, tmp_path
):
    """What ``tshark -i lo`` sees of the daemons run under the profile (the run's CLTU
    and CADUs behind their links' headers on the scenario's port plan, each sent and
    delivered): ``--scenario`` reads one view of it by the profile; ``--profile``
    alone finds nothing on its ports."""
    lo = on_port_plan(
        profile_run.pcap, tmp_path / "lo.pcapng", scenario_file.load(profile_run.scenario)
    )
    pcap, scenario = str(lo), str(profile_run.scenario)
    for view in ("sent", "delivered"):
        code, out, err = _replay(capsys, pcap, "--scenario", scenario, "--view", view)
        assert code == 0, out + err
        assert f"view {view}" in out.splitlines()[2], out
        # one view: each unit once (the run's one answer, in one CADU of two or more:
        # how many idle CADUs the daemons send before it stops depends on the host's
        # load), and no frame record beside its CADU to count its frame twice
        cadus = re.search(r"cadus +(\d+) read, (\d+) decoded", out)
        assert cadus and cadus[1] == cadus[2] and int(cadus[1]) >= 2, out
        assert "Answer 1" in out, out
        assert "VC 0      1 frames (0 idle); frame count gaps 0" in out, out
        # the same figures as the run's own capture, whose frame records are paired
        _, own, _ = _replay(capsys, str(profile_run.pcap), "--profile", str(profile_run.profile))
        assert _figures(out) == _figures(own), own
    code, out, _ = _replay(capsys, pcap, "--profile", str(profile_run.profile))
    assert code == 1 and "cadus " not in out, out


def test_replay_with_a_scenario_under_sdls_says_the_profile_replay_reads_none(profile_run, capsys):
    on = profile_run.scenario.with_name("sdls-on.toml")
    on.write_text(f'[frames]\nprofile = "{profile_run.profile.name}"\n')  # [sdls] on by default
    code, out, err = _replay(capsys, str(profile_run.pcap), "--scenario", str(on))
    assert code == 0, out + err  # this run's frames are clear: they decode all the same
    assert f"  sdls: on in --scenario {on}, not read by a profile's replay" in out, out
