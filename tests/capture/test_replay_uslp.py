"""``linkstack replay`` of USLP captures (``frames.protocol = "uslp"``): the sample
``pcaps/uslp-relay.pcap`` decoded from its CLTUs and CADUs through the USLP chains
(COP-1's FDUs into FARM-1 up, fixed-length frames with the CLCW down, packets over the
laser links) to the same messages as its TC/TM/AOS twin ``laser-relay``; its frames
alone; a lossy USLP uplink where FARM-1 discards repeats and the CLCW asks for a
retransmission; damaged frames refused by field; and every captured USLP frame read by
spacepackets-py's USLP classes, an implementation that is not ours."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from spacepackets.uslp import frame as sp_frame

from linkstack.capture import samples
from linkstack.capture.network import load_nodes, nodes_path
from linkstack.capture.pcap import PcapCapture, PcapReader
from linkstack.capture.replay_cli import replay_file, sdls_of
from linkstack.capture.replay_link import DOWNLINK, LASER, UPLINK
from linkstack.capture.samples import ScriptedBackend
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import SpacePacket
from linkstack.ccsds.uslp import OID_VCID, UslpFrame
from linkstack.conformance.passive.checker import check_capture
from linkstack.conformance.portplan import plan_ports
from linkstack.runtime import clock as clk
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.emulation import Emulation
from payloads.messages import Params, Query
from payloads.service import ServiceConfig
from tests.capture.foreign import clear_default_text, on_port_plan, units_only

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pcaps" / "uslp-relay.pcap"
TWIN = ROOT / "pcaps" / "laser-relay.pcap"


def replay(path: Path, **kw: object):
    lines: list[str] = []
    result = replay_file(path, say=lines.append, **kw)  # type: ignore[arg-type]
    return result, "\n".join(lines)


def copy(src: Path, dst: Path, keep) -> Path:
    """The units of ``src`` that ``keep(unit)`` (and a bit of damage where it says)."""
    reader = PcapReader(src)
    with PcapCapture(dst, reader.epoch) as cap:
        for u in reader:
            data = keep(u)
            if data is not None:
                cap.unit(u.layer, u.t_s, u.src, u.dst, data)
    return dst


def messages(result) -> list[tuple[str, tuple[str, ...], str, str]]:
    r = result.replayer
    return [(m.family, m.link, type(m.message).__name__, repr(m.message)) for m in r.messages]


def test_the_sample_says_its_frames_protocol_and_ports():
    side = load_nodes(nodes_path(SAMPLE))
    assert side[0].name_of("10.1.218.80") == "ground:Mohe"
    doc = __import__("json").loads(nodes_path(SAMPLE).read_text())
    assert doc["frames"] == "uslp" and doc["ports"]["uslp_frame"] == 47014
    assert "tc_frame" not in doc["ports"] and "tm_frame" not in doc["ports"]
    layers = Counter(u.layer for u in PcapReader(SAMPLE))
    assert set(layers) == {"cltu", "tm_cadu", "aos_cadu", "uslp_frame", "space_packet"}
    assert layers["uslp_frame"] == layers["cltu"] + layers["tm_cadu"] + layers["aos_cadu"]


def test_replay_of_the_uslp_relay_decodes_what_its_tm_tc_aos_twin_does():
    got, text = replay(SAMPLE)
    r = got.replayer
    assert got.exit_status == 0 and not r.refused and not r.drops, text
    twin, _ = replay(TWIN)
    assert messages(got) == messages(twin)  # the same messages on the same links, in order
    kinds = Counter((m.family, type(m.message).__name__) for m in r.messages)
    assert kinds[(UPLINK, "Query")] == 1 and kinds[(DOWNLINK, "Answer")] == 1
    assert kinds[(LASER, "Query")] == 3 and kinds[(LASER, "Ack")] == 3
    # COP-1 over USLP: FARM-1 took the FDUs; the CLCW in the downlink frames' OCF says so
    assert "USLP AD frame N(S) 0 (SCID 3005, VC 0, MAP 0" in text and "accepted (E1)" in text
    assert "CLCW VC 0: N(R) 2" in text
    counters = r.counters()
    assert counters[UPLINK]["farm-1"]["E1"] == 2
    assert counters[DOWNLINK]["uslp"]["idle_frames"] > 0  # OID frames between the answers
    # every frame unit equals the frame decoded from its CLTU or CADU
    assert r.checks["uslp_frame:equal"] == r.units_by_layer["uslp_frame"] == 25
    assert r.checks["space_packet:equal"] == r.checks["space_packet:recorded"] > 0
    assert "uslp_frame 25/25 equal to the frame decoded from its unit" in text


def test_the_frames_alone_replay_to_the_same_messages(tmp_path):
    frames = copy(
        SAMPLE, tmp_path / "frames.pcap", lambda u: u.data if u.layer == "uslp_frame" else None
    )
    got, text = replay(frames)
    assert got.exit_status == 0 and not got.replayer.refused, text
    want, _ = replay(SAMPLE)
    assert messages(got) == messages(want)
    assert {fam: set(st) for fam, st in got.replayer.counters().items()} == {
        UPLINK: {"farm-1", "uslp", "spp"},
        DOWNLINK: {"uslp", "spp"},
        LASER: {"uslp", "spp"},
    }


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("ends", "at", "field"),
    [
        (("ground:", "sat:"), 10, "uslp: fecf"),  # a bit of an uplink frame's data
        (("sat:", "ground:"), 500, "uslp: fecf"),  # of a downlink frame's (the first)
        (("sat:", "sat:"), 2, "uslp: fecf"),  # of a laser frame's header
    ],
)
def test_damaged_frames_are_refused_by_field(tmp_path, ends, at, field):
    done = []

    def keep(u):
        if u.layer != "uslp_frame":
            return None
        if not done and u.src.startswith(ends[0]) and u.dst.startswith(ends[1]):
            done.append(u)
            return _flip(u.data, at)
        return u.data

    got, text = replay(copy(SAMPLE, tmp_path / "bad.pcap", keep))
    assert done and got.exit_status == 1
    assert got.replayer.refused == {field: 1}, text


def test_a_lossy_uslp_uplink_shows_farm_1_discarding_repeats(tmp_path):
    lossy = samples.sample_by_name("lossy-cop1")
    scene = samples.Sample(**{**lossy.__dict__, "name": "uslp-lossy", "frames": "uslp"})
    path = samples.make_sample(scene, tmp_path)
    got, text = replay(path)
    r = got.replayer
    assert got.exit_status == 0 and not r.refused, text
    farm = r.counters()[UPLINK]["farm-1"]
    assert farm["E4"] > 0 and farm["E1"] >= 5, farm  # repeats discarded, each FDU once
    assert "[retransmit]" in text  # the CLCW in the USLP OCF asked for it
    queries = [m.message for m in r.messages if isinstance(m.message, Query)]
    assert len(queries) == 1 and len(queries[0].prompt) > 3000  # delivered once, whole


# -- spacepackets-py reads the captured frames ----------------------------------------------


def test_spacepackets_reads_every_captured_uslp_frame():
    reader = PcapReader(SAMPLE)
    units = list(reader)
    recorded = {u.data for u in units if u.layer == "space_packet"}
    seen: Counter[str] = Counter()
    for u in units:
        if u.layer != "uslp_frame":
            continue
        raw = u.data
        up = u.src.startswith("ground:")
        if up:  # COP-1's FDUs: variable-length frames
            kind, props = (
                sp_frame.FrameType.VARIABLE,
                sp_frame.VarFrameProperties(False, True, len(raw), None),
            )
        else:
            kind, props = (
                sp_frame.FrameType.FIXED,
                sp_frame.FixedFrameProperties(len(raw), False, True, None),
            )
        theirs = sp_frame.TransferFrame.unpack(raw, kind, props)
        ours = UslpFrame.unpack(raw, frame_length=None if up else len(raw))
        head = theirs.header
        assert (head.scid, head.vcid, head.map_id, int(head.src_dest)) == (
            ours.scid,
            ours.vcid,
            ours.map_id,
            int(ours.dest),
        )
        assert head.frame_len == len(raw) - 1 and head.vcf_count == ours.vc_count
        assert bytes(theirs.op_ctrl_field or b"") == (ours.ocf or b"")
        tfdf = theirs.tfdf
        assert (tfdf.tfdz_contr_rules, tfdf.uslp_ident) == (ours.rule, ours.upid)
        assert tfdf.fhp_or_lvop == ours.pointer and bytes(tfdf.tfdz) == ours.data
        assert crc16_ccitt(raw) == 0
        if up:  # the FDU's data is one whole packet, the one the capture recorded
            assert bytes(tfdf.tfdz) in recorded
            seen["up"] += 1
        elif ours.vcid == OID_VCID:
            seen["idle"] += 1
        else:  # the first packet header the pointer points at: a packet the capture recorded
            start = bytes(tfdf.tfdz)[tfdf.fhp_or_lvop :]
            packet = SpacePacket.unpack(start[: 6 + int.from_bytes(start[4:6], "big") + 1])
            assert packet.pack() in recorded
            seen["laser" if u.dst.startswith("sat:") else "down"] += 1
    assert seen.keys() == {"up", "down", "idle", "laser"}, seen


# -- SDLS on USLP frames: opened with the run's keys, read as far as can be without -------------

SDLS_SCENARIO = """\
# USLP frames on every link under SDLS: TC and laser AES-256-GCM (the defaults), TM
# authenticated only (AES-CMAC) with an 8-octet sequence number
[frames]
protocol = "uslp"
scid_base = 3000

[sdls]
enabled = true

[sdls.downlink]
service = "auth"
sn_len = 8
"""


@pytest.fixture(scope="module")
def sdls_run(tmp_path_factory):
    return run_uslp_under_sdls(tmp_path_factory.mktemp("uslp-sdls"))


def run_uslp_under_sdls(folder: Path) -> tuple[Path, Path, Path, list[str]]:
    """A USLP run under SDLS (a query up and answered, one relayed over laser links),
    captured in ``folder``; its scenario and the run's keys; the answers' texts."""
    scenario_path = folder / "uslp-sdls.toml"
    scenario_path.write_text(SDLS_SCENARIO, "utf-8")
    settings = scenario_file.load(scenario_path)
    path = folder / "run.pcap"
    answers: list[str] = []

    async def main():
        scenario = settings.scenario
        clock = clk.make_clock(True, scenario.epoch, 5295.0)
        config = replace(settings.emulation, service=ServiceConfig(inline=True), seed=13)
        capture = PcapCapture(path, scenario.epoch, frames="uslp")
        emu = Emulation(clock, config, backend=ScriptedBackend(), capture=capture)
        async with emu:

            async def ask(t, target, prompt):
                await clock.sleep_until(t)
                got = await emu.client.ask(prompt, Params(max_new_tokens=12), target=target)
                answers.append(got[0].text)

            await asyncio.gather(
                ask(5300.0, None, "Summarise the pass: " + "bus nominal, " * 150),
                ask(5310.0, "CS-09", "Is a ship in tile 12?"),
            )
            await clock.sleep_until(5320.0)
        capture.close()
        assert emu.site.guards is not None
        emu.site.guards.keys.write(folder / "keys.json")

    clk.run(main)
    return path, scenario_path, folder / "keys.json", answers


def test_with_the_keys_every_uslp_frame_is_opened_and_read(sdls_run):
    path, scenario, keys, answers = sdls_run
    got, text = replay(path, sdls=sdls_of(str(scenario), keys))
    r = got.replayer
    assert got.exit_status == 0 and not r.refused and not r.drops, text
    counters = r.counters()
    for family in (UPLINK, DOWNLINK, LASER):
        sdls = counters[family]["sdls"]
        assert sdls["frames"] == sdls["opened"] == sdls["verified"] > 0, (family, sdls)
    kinds = Counter((m.family, type(m.message).__name__) for m in r.messages)
    assert kinds[(UPLINK, "Query")] == 2 and kinds[(DOWNLINK, "Answer")] == 2, kinds
    assert kinds[(LASER, "Query")] == 3, kinds  # the relayed query, over three laser links
    replayed = sorted(m.message.text for m in r.messages if m.family == DOWNLINK and
                      type(m.message).__name__ == "Answer")  # fmt: skip
    assert replayed == sorted(answers)
    assert "CLCW VC 0: N(R)" in text and "USLP AD frame N(S) 0" in text


def test_without_the_keys_the_encrypted_uslp_frames_are_counted_not_read(sdls_run):
    path, scenario, _, _ = sdls_run
    got, text = replay(path, sdls=sdls_of(str(scenario), None))
    r = got.replayer
    counters = r.counters()
    assert counters[UPLINK]["sdls"]["sealed"] == counters[UPLINK]["sdls"]["frames"] > 0
    assert counters[LASER]["sdls"]["sealed"] == counters[LASER]["sdls"]["frames"] > 0
    down = counters[DOWNLINK]["sdls"]  # authenticated only: read, not verified
    assert down["opened"] == down["frames"] > 0 and not down["verified"]
    answers = [m for m in r.messages if m.family == DOWNLINK]
    assert len(answers) == 2 and not [m for m in r.messages if m.family == UPLINK]
    assert "CLCW VC 0: N(R)" in text  # the OCF is outside SDLS's reach
    assert not r.refused, text


# -- the daemons' port plan: USLP units behind link headers -------------------------------------


def test_the_uslp_relay_on_the_daemons_port_plan_replays_and_conforms(tmp_path):
    """The sample's CLTUs and CADUs as tshark sees them between daemons of a USLP
    scenario (each behind its link header, seen as sent and as delivered): replay
    decodes the same packets link by link, and conform passes the USLP rules."""
    scenario = tmp_path / "uslp.toml"
    text = clear_default_text().replace('protocol = "tm-tc-aos"', 'protocol = "uslp"')
    text = text.replace("scid_base = 64", "scid_base = 3000")
    assert 'protocol = "uslp"' in text and "scid_base = 3000" in text
    scenario.write_text(text)
    pcapng = on_port_plan(SAMPLE, tmp_path / "lo.pcapng", scenario_file.load(scenario))
    units = units_only(SAMPLE, tmp_path / "units.pcap")
    plan = plan_ports(scenario)
    got, text = replay(pcapng, links=plan.ports, view="sent", ports_text=plan.text)
    want, _ = replay(units)
    assert got.exit_status == 0, text
    g, w = got.replayer, want.replayer
    assert Counter((p.family, p.link[-1], p.raw) for p in g.packets) == Counter(
        (p.family, p.link[-1], p.raw) for p in w.packets
    )
    assert len(g.packets) == 12 and [m.message for m in g.messages] == [
        m.message for m in w.messages
    ]
    report = check_capture(pcapng, links=plan.ports, views=("sent",), ports_text=plan.text)
    status = {r.rule.id: r.status for r in report.results}
    assert report.exit_code == 0, status
    assert {"USLP-VER-01", "USLP-VC-01", "USLP-FECF-01", "COP-NS-01"} <= {
        k for k, v in status.items() if v == "pass"
    }
