"""``[frames] profile``: the ground link runs a mission profile (linkstack/runtime/link_profile.py),
the same one ``linkstack conform --profile`` judges its capture by."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from channels.scenarios import scenario_by_name
from linkstack.capture.pcap import PcapCapture
from linkstack.ccsds.coding.chains import CaduCoding, CaduReceiver, CaduTransmitter
from linkstack.runtime import clock as clk
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.emulation import Emulation
from linkstack.tools import cli
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


def test_a_run_on_a_profile_passes_conform_under_that_profile(tmp_path, tiny, capsys):
    """One notion end to end: the emulation runs the profile's link, and conform
    judges the capture by the same file; under linkstack's profile it does not pass."""
    other = _other(tmp_path)
    # SDLS off, so that conform reads every frame's packets without keys
    text = f'[frames]\nprofile = "{other}"\n[sdls]\nenabled = false'
    config = scenario_file.loads(text).emulation
    pcap = tmp_path / "run.pcap"
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
    capsys.readouterr()
    assert cli.main(["conform", str(pcap), "--profile", str(other)]) == 0
    passed = capsys.readouterr().out
    # the answer's CADUs and the satellite's TM around it (how many depends on when the
    # in-process run stops after the answer): checked, none refused
    cadus = re.search(r"tm_cadu (\d+)", passed)
    assert cadus is not None and int(cadus.group(1)) >= 2, passed
    assert "cannot judge" not in passed, passed
    # linkstack's own profile finds exactly the profile's differences wrong
    assert cli.main(["conform", str(pcap), "--profile", "linkstack"]) != 0
    failed = {
        line.split()[1] for line in capsys.readouterr().out.splitlines() if line[:5] == "FAIL "
    }
    assert failed == {"TM-LEN-01", "CADU-LEN-01", "TC-RAND-01"}, failed
