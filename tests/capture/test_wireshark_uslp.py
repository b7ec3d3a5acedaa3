"""The Lua dissector on USLP captures (``frames.protocol = "uslp"``), with the real tshark:
every frame of ``pcaps/uslp-relay.pcap`` on the USLP frame port and inside its CLTU or
CADU shows the fields linkstack's codec reads from it (primary header, data field header,
the Space Packets inside, the CLCW in the OCF, the FECF); a run under SDLS shows each
frame's security header; damaged and random USLP units never make the dissector fail."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from linkstack.capture.pcap import PcapCapture, read_units
from linkstack.capture.samples import make_sample, sample_by_name
from linkstack.ccsds.sdls_layout import FrameLayout
from linkstack.ccsds.uslp import UslpFrame
from linkstack.runtime import scenario as scenario_file
from linkstack.tools import wireshark
from tests.capture.foreign import clear_default_text, on_port_plan
from tests.capture.test_wireshark import EPOCH, LUA, fields

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pcaps" / "uslp-relay.pcap"
LUA_OPT = ("-X", f"lua_script:{LUA}")
HEADER = [
    "linkstack.uslp.version",
    "linkstack.uslp.scid",
    "linkstack.uslp.dest",
    "linkstack.uslp.vcid",
    "linkstack.uslp.map_id",
    "linkstack.uslp.length",
    "linkstack.uslp.vc_count",
    "linkstack.uslp.tfdf.rule",
    "linkstack.uslp.tfdf.upid",
    "linkstack.uslp.tfdf.fhp",
    "linkstack.uslp.fecf.status",
    "linkstack.clcw.report_value",
    "linkstack.uslp.ns",
    "ccsds.apid",
    "_ws.expert.message",
]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tshark-home")


def _expected(frame: bytes) -> dict[str, list[str]]:
    ours = UslpFrame.unpack(frame)
    want = {
        "linkstack.uslp.version": ["12"],
        "linkstack.uslp.scid": [str(ours.scid)],
        "linkstack.uslp.dest": [str(int(ours.dest))],
        "linkstack.uslp.vcid": [str(ours.vcid)],
        "linkstack.uslp.map_id": [str(ours.map_id)],
        "linkstack.uslp.length": [str(len(frame) - 1)],
        "linkstack.uslp.vc_count": [str(ours.vc_count)],
        "linkstack.uslp.tfdf.rule": [str(ours.rule)],
        "linkstack.uslp.tfdf.upid": [str(ours.upid)],
        "linkstack.uslp.tfdf.fhp": [] if ours.pointer is None else [str(ours.pointer)],
        "linkstack.uslp.fecf.status": ["1"],
        "linkstack.uslp.ns": [str(ours.vc_count)] if ours.dest else [],
    }
    clcw = ours.clcw()
    want["linkstack.clcw.report_value"] = [] if clcw is None else [str(clcw.report_value)]
    return want


def test_every_uslp_frame_shows_the_fields_the_codec_reads(home):
    units = list(read_units(SAMPLE))
    got = fields(SAMPLE, HEADER, *LUA_OPT, home=home)
    frames = [(i + 1, u) for i, u in enumerate(units) if u.layer == "uslp_frame"]
    assert len(frames) == 25
    seen = {"up": 0, "down": 0, "laser": 0, "idle": 0, "clcw": 0}
    for number, unit in frames:
        row = got[number]
        for name, want in _expected(unit.data).items():
            assert row[name] == want, (number, name, row[name], want)
        assert not row["_ws.expert.message"], (number, row["_ws.expert.message"])
        ours = UslpFrame.unpack(unit.data)
        if ours.vcid == 63:
            seen["idle"] += 1
            assert not row["ccsds.apid"]
        else:  # the packets inside, handed to Wireshark's ccsds: a message's, and idle fill
            apids = set(row["ccsds.apid"]) - {"2047"}
            assert len(apids) == 1 and apids <= {"256", "257", "258"}, row["ccsds.apid"]
        seen["up" if ours.dest else "laser" if unit.dst.startswith("sat:") else "down"] += 1
        seen["clcw"] += ours.ocf is not None
    assert seen == {"up": 2, "down": 14, "laser": 9, "idle": 13, "clcw": 14}, seen


def test_the_frames_inside_cltus_and_cadus_read_as_on_the_frame_port(home):
    units = list(read_units(SAMPLE))
    got = fields(SAMPLE, HEADER, *LUA_OPT, home=home)
    carried = [
        (i + 1, u) for i, u in enumerate(units) if u.layer in ("cltu", "tm_cadu", "aos_cadu")
    ]
    assert len(carried) == 25
    for number, unit in carried:
        beside = units[number]  # linkstack writes the frame unit right after its carrier
        assert beside.layer == "uslp_frame" and beside.t_s == unit.t_s
        for name, want in _expected(beside.data).items():
            assert got[number][name] == want, (unit.layer, number, name)


def test_a_uslp_run_under_sdls_shows_each_security_header(tmp_path, home):
    settings = scenario_file.loads('[frames]\nprotocol = "uslp"\nscid_base = 3000\n')
    sdls = settings.emulation.uplink.sdls
    assert sdls.enabled
    sas = [sdls.uplink.association(), sdls.downlink.association(), sdls.laser.association()]
    path = make_sample(replace(sample_by_name("uslp-relay"), sdls=sdls), tmp_path)
    pref = ",".join(
        f"{sa.spi}:{sa.iv_len}:{sa.sn_len}:{sa.pad_len}:{sa.mac_len}:{sa.service}" for sa in sas
    )
    names = ["linkstack.uslp.scid", "linkstack.sdls.spi", "linkstack.sdls.mac"]
    got = fields(path, names, *LUA_OPT, "-o", f"linkstack.sdls.spi_lengths:{pref}", home=home)
    units = list(read_units(path))
    by_spi = {sa.spi: sa for sa in sas}
    checked = 0
    for i, unit in enumerate(units):
        if unit.layer != "uslp_frame":
            continue
        row = got[i + 1]
        frame = unit.data
        ocf = bool(frame[6] & 8)
        layout = FrameLayout("uslp", fecf=True, ocf=ocf, fixed=not frame[2] & 0x08)
        at = layout.header_len(frame)  # the security header follows the primary header
        spi = int.from_bytes(frame[at : at + 2], "big")
        assert row["linkstack.sdls.spi"] == [str(spi)], (i, row)
        end = len(frame) - 2 - (4 if ocf else 0)  # the MAC ends where the OCF, or FECF, begins
        mac = frame[end - by_spi[spi].mac_len : end]
        assert bytes.fromhex(row["linkstack.sdls.mac"][0].replace(":", "")) == mac
        checked += 1
    assert checked == 25


@pytest.fixture(scope="module")
def junk(tmp_path_factory) -> Path:
    """The sample's USLP units damaged, cut, grown and random, on every port."""
    rng = random.Random(732)
    good = list(read_units(SAMPLE))
    path = tmp_path_factory.mktemp("ws-uslp") / "junk.pcap"
    layers = ["cltu", "tm_cadu", "aos_cadu", "uslp_frame", "tm_frame", "space_packet"]
    with PcapCapture(path, EPOCH) as cap:
        for i in range(1500):
            unit = bytearray(rng.choice(good).data)
            how = rng.randrange(5)
            if how == 0:
                unit = bytearray(b"\xc0" + rng.randbytes(rng.randrange(0, 80)))
            elif how == 1:
                for _ in range(rng.randrange(1, 9)):
                    unit[rng.randrange(len(unit))] ^= 1 << rng.randrange(8)
            elif how == 2:
                del unit[rng.randrange(1, len(unit) + 1) :]
            elif how == 3:
                for k in range(min(len(unit), 12)):
                    if rng.random() < 0.5:
                        unit[k] = rng.randrange(256)
            else:
                unit += rng.randbytes(rng.randrange(1, 30))
            cap.unit(rng.choice(layers), i * 0.001, "sat:CS-06", "ground:Mohe", bytes(unit))
    return path


@pytest.mark.parametrize(
    "options",
    [(), ("-o", "linkstack.uslp.fecf:FALSE", "-o", "linkstack.uslp.insert_zone:900")],
    ids=["default-preferences", "other-preferences"],
)
def test_the_dissector_survives_uslp_junk(junk, home, options):
    got = fields(junk, ["_ws.expert.message", "linkstack.uslp.scid"], *LUA_OPT, *options, home=home)
    messages = [m for row in got.values() for m in row["_ws.expert.message"]]
    assert not [m for m in messages if "Lua" in m], "the Lua dissector raised errors"
    assert sum(1 for row in got.values() if row["linkstack.uslp.scid"]) > 300  # USLP was read
    assert "FECF does not match the frame" in messages or options


def test_a_lossy_uslp_uplink_shows_repeats_and_reassembles_the_segmented_query(tmp_path, home):
    """COP-1 over USLP losing 30 % of its CLTUs: each uplink frame's N(S) and whether it
    was in sequence (a repeat is not), and the 3.9 kB query, segmented over four frames
    (rules 100, 101, 101, 110), reassembled once, in the frame that completes it."""
    lossy = sample_by_name("lossy-cop1")
    path = make_sample(replace(lossy, name="uslp-lossy", frames="uslp"), tmp_path)
    names = ["linkstack.uslp.ns", "linkstack.uslp.in_sequence", "linkstack.uslp.tfdf.rule"]
    names += ["ccsds.apid", "ccsds.length"]
    got = fields(path, names, *LUA_OPT, "-Y", "udp.port == 47014", home=home)
    units = [u for u in read_units(path) if u.layer == "uslp_frame" and u.src.startswith("ground")]
    rows = [got[k] for k in sorted(got) if got[k]["linkstack.uslp.ns"]]
    assert len(rows) == len(units) >= 6
    vr, repeats = None, 0
    for unit, row in zip(units, rows, strict=True):
        ns = UslpFrame.unpack(unit.data).vc_count
        assert row["linkstack.uslp.ns"] == [str(ns)]
        in_sequence = vr is None or ns == vr
        assert row["linkstack.uslp.in_sequence"] == ["1" if in_sequence else "0"], (ns, vr)
        if in_sequence:
            vr = (ns + 1) % 256
        else:
            repeats += 1
    assert repeats > 0  # COP-1 sent frames again
    rules = [r["linkstack.uslp.tfdf.rule"][0] for r in rows]
    assert {"4", "5", "6"} <= set(rules)  # the query's segments
    query = [u.data for u in read_units(path) if u.layer == "space_packet" and len(u.data) > 3000]
    assert len(query) == 1
    whole = [r for r in rows if len(r["ccsds.length"]) and r["linkstack.uslp.tfdf.rule"] == ["6"]]
    completed = [r for r in whole if r["linkstack.uslp.in_sequence"] == ["1"]]
    assert len(whole) == len(completed) == 1 and completed[0]["ccsds.apid"] == ["256"]
    assert completed[0]["ccsds.length"] == [str(len(query[0]) - 7)]


@pytest.mark.parametrize("with_scenario", [True, False], ids=["scenario-file", "heuristic"])
def test_the_daemons_uslp_traffic_decodes_on_their_ports(tmp_path, home, with_scenario):
    """The sample's CLTUs and CADUs as they travel between daemons of a USLP scenario,
    behind their link headers on the ends' ports: with the scenario file each datagram's
    link is named and its USLP frame read with that link's kind; with the dissector alone
    the heuristic finds the same frames."""
    scenario = tmp_path / "uslp.toml"
    text = clear_default_text().replace('protocol = "tm-tc-aos"', 'protocol = "uslp"')
    scenario.write_text(text.replace("scid_base = 64", "scid_base = 3000"))
    settings = scenario_file.load(scenario)
    pcapng = on_port_plan(SAMPLE, tmp_path / "lo.pcapng", settings)
    options = [*LUA_OPT]
    if with_scenario:
        script = tmp_path / wireshark.scenario_file_name(settings)
        script.write_text(wireshark.scenario_lua(settings))
        options += ["-X", f"lua_script:{script}"]
    names = ["linkstack.uslp.scid", "linkstack.uslp.vcid", "linkstack.link.kind", "ccsds.apid"]
    got = fields(pcapng, [*names, "_ws.expert.message"], *options, home=home)
    units = [u for u in read_units(SAMPLE) if u.layer in ("cltu", "tm_cadu", "aos_cadu")]
    assert len(got) == 2 * len(units)  # each unit into the channel and out of it
    rows = [got[k] for k in sorted(got)]
    assert all(r["linkstack.uslp.scid"] for r in rows), "a datagram without its USLP frame"
    assert not [m for r in rows for m in r["_ws.expert.message"]]
    scids = {int(r["linkstack.uslp.scid"][0]) for r in rows}
    assert scids == {3005, 3006, 3007, 3008}
    kinds = {r["linkstack.link.kind"][0] for r in rows if r["linkstack.link.kind"]}
    assert kinds == ({"uplink", "downlink", "isl"} if with_scenario else set())
    apids = {a for r in rows for a in r["ccsds.apid"]} - {"2047"}
    assert apids == {"256", "257", "258"}
