"""``linkstack conform`` of captures it did not write, and of part of a link.

- Frame records written when another tool decoded the unit, 10 ms after its CLTU or
  CADU (or 10 ms before it): every good and broken capture so re-timed gets the very
  verdicts of the original, rule by rule, with the same counts. Before, each late
  frame record was judged a second time: 14 false failures over the four good
  captures (SPP-SEQ-01, TM-MC-01, TM-VC-01, AOS-VC-01).
- A capture that lacks the direction a rule's verdict rests on: a satellite's own
  (no uplink) cannot judge COP-NR-01 and COP-LOCK-01, the ground's (no CLCW) cannot
  judge COP-RTX-02: "cannot judge", with why, in the text and as a skipped JUnit test
  case, never a pass or a failure (the satellite's own good.pcap failed COP-NR-01:
  the Set V(R) that moved N(R) back went up, out of its sight).
- ``tshark -i lo`` of the daemons (tests/capture/foreign.py: a sample's units on the
  port plan of a scenario, a pcapng): ``--scenario`` judges one view of each link as
  a linkstack capture of the same units is judged.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from linkstack.capture.pcap import PORTS, PcapCapture, PcapReader
from linkstack.capture.reader import LinkPorts
from linkstack.conformance.passive import broken
from linkstack.conformance.passive.checker import Report, check_capture
from linkstack.conformance.passive.report import format_text, junit_tree
from linkstack.conformance.portplan import plan_ports
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.mission_profile import load_profile
from linkstack.tools import cli
from tests.capture.foreign import frames_late, laser_relay_on_plan, port_per_link

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "tests" / "conformance" / "broken"
CASES = {"good": broken.GOOD, **broken.BROKEN}
SAMPLES = sorted((ROOT / "pcaps").glob("*.pcap"))


def verdicts(report: Report) -> dict[str, tuple[str, int, int]]:
    """Each rule's status and counts (checked, failed)."""
    assert not report.internal_errors and report.read_error is None
    return {r.rule.id: (r.status, r.checked, r.failed) for r in report.results}


def profile_of(name: str):
    spec = CASES[name]
    return load_profile(FOLDER / spec.profile if spec.profile else "linkstack")


@pytest.mark.parametrize("delay_s", [0.010, -0.010])
@pytest.mark.parametrize("name", sorted(CASES))
def test_frame_records_away_from_their_units_get_the_same_verdicts(name, delay_s, tmp_path):
    path = FOLDER / f"{name}.pcap"
    want = check_capture(path, profile_of(name))
    got = check_capture(frames_late(path, tmp_path / "late.pcap", delay_s), profile_of(name))
    assert verdicts(got) == verdicts(want), format_text(got)
    assert got.exit_code == want.exit_code


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_the_samples_with_frame_records_500_ms_late_pass(path, tmp_path):
    want = check_capture(path)
    got = check_capture(frames_late(path, tmp_path / "late.pcap", 0.5))
    assert got.exit_code == 0 and got.count("fail") == 0, format_text(got)
    assert verdicts(got) == verdicts(want)


# -- a capture of one side ----------------------------------------------------------------------


def one_side(src: Path, dst: Path, prefix: str) -> Path:
    """What the nodes named ``prefix...`` sent: their own capture."""
    reader = PcapReader(src)
    with PcapCapture(dst, reader.epoch) as cap:
        for u in reader:
            if u.src.startswith(prefix):
                cap.unit(*u)
    return dst


def test_a_satellites_own_capture_cannot_judge_what_rests_on_the_uplink(tmp_path):
    path = one_side(FOLDER / "good.pcap", tmp_path / "sat.pcap", "sat:")
    report = check_capture(path)
    status = {r.rule.id: r for r in report.results}
    assert {k for k, r in status.items() if r.status == "cannot judge"} == {
        "COP-NR-01",
        "COP-LOCK-01",
    }
    assert status["COP-NR-01"].checked > 0  # it saw CLCWs; they prove nothing either way
    assert "no TC frame (no uplink)" in status["COP-NR-01"].reason
    assert report.count("fail") == 0 and report.exit_code == 0
    text = format_text(report)
    assert "CANNOT JUDGE COP-NR-01: the capture holds no TC frame (no uplink)" in text
    assert "2 cannot judge" in text.splitlines()[-1] and "result: PASS" in text
    suite = junit_tree(report).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name").split(" ", 1)[0]: c for c in suite.findall("testcase")}
    skipped = cases["COP-NR-01"].find("skipped")
    assert skipped is not None and skipped.get("message").startswith("cannot judge: ")
    assert cases["COP-NR-01"].find("system-out") is None  # no "N checked" of a pass
    n_skipped = report.count("n/a") + report.count("cannot judge")
    assert (
        int(suite.get("skipped"))
        == n_skipped
        == sum(c.find("skipped") is not None for c in cases.values())
    )
    # the whole capture judges them: the uplink is there
    full = {r.rule.id: r.status for r in check_capture(FOLDER / "good.pcap").results}
    assert full["COP-NR-01"] == full["COP-LOCK-01"] == "pass"


def test_the_grounds_own_capture_cannot_judge_retransmissions_against_clcws(tmp_path):
    path = one_side(ROOT / "pcaps" / "lossy-cop1.pcap", tmp_path / "ground.pcap", "ground:")
    status = {r.rule.id: r for r in check_capture(path).results}
    assert status["COP-RTX-01"].status == "pass"  # the copies are the same frame: no CLCW needed
    assert status["COP-RTX-02"].status == "cannot judge"
    assert "no CLCW (no downlink)" in status["COP-RTX-02"].reason
    assert status["COP-NR-01"].status == "n/a"  # nothing to judge, rather than unjudgeable


def test_a_broken_clcw_still_fails_where_the_uplink_is_there():
    report = check_capture(FOLDER / "clcw_nr_ahead.pcap")
    assert {r.rule.id for r in report.results if r.status == "fail"} == {"COP-NR-01"}


# -- the daemons' port plan -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def on_plan(tmp_path_factory) -> tuple[Path, Path, Path]:
    return laser_relay_on_plan(tmp_path_factory.mktemp("plan"))


@pytest.mark.parametrize("view", ["sent", "delivered"])
def test_the_port_plan_is_judged_as_the_same_units_on_the_layer_ports(on_plan, view):
    pcapng, scenario, units = on_plan
    plan = plan_ports(scenario)
    got = check_capture(pcapng, links=plan.ports, views=(view,), ports_text=plan.text)
    want = check_capture(units)
    assert verdicts(got) == verdicts(want), format_text(got)
    assert got.exit_code == 0 and got.count("pass") >= 30
    assert sum(got.units.values()) == got.reader["other_view"] == sum(want.units.values())
    text = format_text(got)
    assert f"ports: {plan.text}" in text and "units of the other view skipped (--view)" in text


def test_a_profile_takes_a_port_per_link(tmp_path):
    """A profile's port lists decode a capture with a port per link as one with every
    link of a layer on its one port: the same verdicts, the same units."""
    sample = ROOT / "pcaps" / "laser-relay.pcap"
    per_link = port_per_link(
        sample, tmp_path / "links.pcapng", {"cltu": 47100, "tm_cadu": 47200, "aos_cadu": 47300}
    )
    assert len(per_link["aos_cadu"]) == 6, per_link  # the relay's six laser links
    listed = "".join(f"{layer} = {ports}\n" for layer, ports in per_link.items())
    (tmp_path / "links.toml").write_text(f'extends = "linkstack"\n[ports]\n{listed}')
    got = check_capture(tmp_path / "links.pcapng", profile=load_profile(tmp_path / "links.toml"))
    # the same units, every link of a layer on linkstack's one port of the layer
    layers = {k: PORTS[k] for k in per_link}
    port_per_link(sample, tmp_path / "layers.pcapng", layers, one_port=True)
    want = check_capture(tmp_path / "layers.pcapng")
    assert verdicts(got) == verdicts(want), format_text(got)
    assert got.units == want.units == {"cltu": 2, "tm_cadu": 14, "aos_cadu": 9}


def test_the_port_plan_names_every_link_and_view():
    settings = scenario_file.load_default()
    plan = plan_ports(None)
    d, names = settings.daemon, settings.scenario.satellite_names
    links = 2 * len(names) + 2 * len(settings.scenario.isl_pairs)
    ends = 1 + len(names)  # the ground's, and one a satellite (12 < daemon.sat_ports)
    assert set(plan.ports) == set(range(d.channel_port, d.channel_port + ends)) | set(
        range(d.node_port, d.node_port + ends)
    )
    assert all(isinstance(r, LinkPorts) for r in plan.ports.values())
    # every link twice: as sent, on its sender's end, and as delivered, on its receiver's
    roles = [(k, r) for p in plan.ports.values() for k, r in p.links.items()]
    assert len(roles) == 2 * links and len({k for k, _ in roles}) == links
    first, second = names[0], names[1]
    ground_in, ground_out = plan.ports[d.channel_port].links, plan.ports[d.node_port].links
    assert ground_in[0] == ("cltu", "ground:mcc", f"sat:{first}", "sent")  # link 0
    assert ground_in[2][:3] == ("cltu", "ground:mcc", f"sat:{second}")
    assert ground_out[1] == ("tm_cadu", f"sat:{first}", "ground:mcc", "delivered")
    first_in, first_out = plan.ports[d.node_port + 1].links, plan.ports[d.channel_port + 1].links
    assert first_in[0] == ("cltu", "ground:mcc", f"sat:{first}", "delivered")
    assert first_out[1] == ("tm_cadu", f"sat:{first}", "ground:mcc", "sent")
    assert {r.layer for _, r in roles} == {"cltu", "tm_cadu", "aos_cadu"}
    assert f"{links} links on {ends} ends" in plan.text


def test_the_gateways_frames_are_frame_records_of_their_links(tmp_path):
    scenario = tmp_path / "gw.toml"
    scenario.write_text('[gateway]\nenabled = true\nsatellites = ["CS-03"]\n')
    settings = scenario_file.load(scenario)
    plan = plan_ports(scenario)
    gw, k = settings.gateway, list(settings.scenario.satellite_names).index("CS-03")
    assert plan.ports[gw.port_of(k)] == ("tc_frame", "ground:mcc", "sat:CS-03", "")
    assert plan.ports[gw.peer_port_of(k)] == ("tm_frame", "sat:CS-03", "ground:mcc", "")
    assert "gateway TC frames in" in plan.text


def test_the_port_plan_through_the_command_line(on_plan, tmp_path, capsys):
    pcapng, scenario, _ = on_plan
    junit = tmp_path / "plan.xml"
    assert cli.main(["conform", str(pcapng)]) == 2  # nothing on the layer ports
    assert "--scenario for a capture of the daemons" in capsys.readouterr().out
    args = ["conform", str(pcapng), "--scenario", str(scenario), "--junit", str(junit)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "result: PASS" in out and "port plan of " in out and "view sent" in out
    assert cli.main([*args, "--view", "delivered"]) == 0
    assert "view delivered" in capsys.readouterr().out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
