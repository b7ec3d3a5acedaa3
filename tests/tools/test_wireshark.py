"""``linkstack wireshark`` and what the dissector makes of its scenario files, of units
on any port (the heuristic) and of linkstack's CBOR messages, checked with the real
tshark (tests/capture/test_wireshark.py says how, and why a missing tshark fails).

The expected values come from linkstack's own encoders and decoders (the daemons'
port plan, the CADU chains, ``payloads.messages``): the Lua dissector is an
independent implementation of the same formats. The live traffic of the daemons is
checked in tests/daemon/test_wireshark_live.py.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from linkstack.capture.link_header import link_header
from linkstack.capture.pcap import PcapCapture
from linkstack.ccsds.aos import AosConfig, AosMasterChannel
from linkstack.ccsds.coding.chains import (
    CaduCoding,
    CaduTransmitter,
    CltuCoding,
    CltuTransmitter,
)
from linkstack.ccsds.spp import PacketType, SequenceCounter, SpacePacket, segment
from linkstack.ccsds.tc import TcConfig, TcVirtualChannel
from linkstack.ccsds.tm import TmConfig, TmMasterChannel
from linkstack.daemon.wire import PortPlan, unit_shape_fault
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.routing import RELAY_APID, RelayHeader
from linkstack.runtime.site import MAX_PACKET_DATA
from linkstack.tools import wireshark
from linkstack.tools.cli import main as linkstack_main
from payloads import messages
from payloads.messages import (
    ANSWER_APID,
    QUERY_APID,
    Ack,
    Answer,
    AnswerChunk,
    ErrorMessage,
    OnboardTimes,
    Params,
    Query,
)
from tests.capture.test_wireshark import LUA, json_fields, tshark
from tests.channels.test_orbit import ISS_TLE, TLE_00005

EPOCH = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
ODD_NAMES = ('ISS "Zarya" \\ ]] été', "VALLADO-5 ✓")  # quotes, a backslash, a Lua ]], UTF-8


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tshark-home")


def _scenario(folder: Path, extra: str = "") -> scenario_file.ScenarioFile:
    """Two TLE satellites with odd names, a laser pair, non-default coding and ports."""
    tle = folder / "sats.tle"
    tle.write_text(f"{ODD_NAMES[0]}\n{ISS_TLE.split(chr(10), 1)[1]}{ODD_NAMES[1]}\n{TLE_00005}")
    path = folder / "odd.toml"
    path.write_text(
        'name = "odd one"\n'
        "[constellation]\n"
        'tle = "sats.tle"\n'
        f"isl = [{json.dumps(list(ODD_NAMES))}]\n"  # JSON strings are TOML strings
        "[frames]\nscid_base = 100\ntm_frame_length = 478\n"
        "[coding]\nrs_e = 8\nrs_depth = 2\nrandomize = false\ncltu_randomize = false\n"
        "[daemon]\nchannel_port = 47700\nnode_port = 47706\n" + extra
    )
    return scenario_file.load(path)


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> scenario_file.ScenarioFile:
    # clear frames: these tests read the plain coding (SDLS's table: its own tests)
    return _scenario(tmp_path_factory.mktemp("odd"), "[sdls]\nenabled = false\n")


# -- the scenario file, in Python --------------------------------------------------------------


def test_the_scenario_table_is_the_daemons_port_plan_and_coding(odd):
    table = wireshark.scenario_table(odd)
    sc = odd.scenario
    assert sc.satellite_names == ODD_NAMES
    plan = PortPlan.of(sc, odd.daemon)
    keys = ("index", "kind", "name", "src", "dst", "channel_port", "node_port", "source_port")
    assert [tuple(row[k] for k in keys) for row in table["links"]] == [
        (s.index, s.kind, s.name, s.src, s.dst, s.channel_port, s.node_port, s.source_port)
        for s in plan.links
    ]
    assert [row["delivered_from"] for row in table["links"]] == [
        s.delivered_from for s in plan.links
    ]
    # the ground's end and one a satellite: the ports every datagram goes to
    assert [(e["index"], e["name"], e["channel_port"], e["node_port"]) for e in table["ends"]] == [
        (0, "ground", 47700, 47706),
        (1, f"satellite {ODD_NAMES[0]}", 47701, 47707),
        (2, f"satellite {ODD_NAMES[1]}", 47702, 47708),
    ]
    assert [row["kind"] for row in table["links"]] == ["uplink", "downlink"] * 2 + ["isl"] * 2
    assert table["nodes"] == {0: "ground", 1: ODD_NAMES[0], 2: ODD_NAMES[1]}
    assert table["scids"] == {100: ODD_NAMES[0], 101: ODD_NAMES[1]}
    # the coding as the daemons' chains make the units: lengths of real CADUs, and the
    # channel's own shape check passes them
    uplink = odd.emulation.uplink
    tm = CaduTransmitter(478, uplink.cadu_coding).cadu(bytes(478))
    assert table["coding"]["downlink"] == {
        "unit": "tm_cadu",
        "frame_length": 478,
        "cadu_length": len(tm),
        "rs_check": 32,
        "randomized": False,
        "frames": "tm-tc-aos",
    }
    assert unit_shape_fault("downlink", uplink.cadu_coding, 478)(tm) is None
    aos = CaduTransmitter(1115).cadu(bytes(1115))
    assert table["coding"]["isl"]["cadu_length"] == len(aos) == 1279
    assert table["coding"]["uplink"] == {
        "unit": "cltu",
        "randomized": False,
        "frames": "tm-tc-aos",
    }
    assert wireshark.capture_filter(odd) == (
        "udp and (portrange 47700-47702 or portrange 47706-47708)"
    )
    assert table["sdls"] == {"enabled": False}


def test_the_scenario_table_carries_the_sdls_associations_and_no_key(tmp_path):
    settings = _scenario(
        tmp_path,
        '[sdls]\nenabled = true\n[sdls.uplink]\nservice = "auth"\nsn_len = 4\nspi = 11\n'
        '[sdls.laser]\nservice = "clear"\n',
    )
    sdls = settings.emulation.uplink.sdls
    table = wireshark.scenario_table(settings)["sdls"]
    assert table == {
        "enabled": True,
        "uplink": {
            "vcid": 0,  # linkstack's own TC virtual channel: the others are not its to protect
            "sas": [
                {
                    "spi": 11,
                    "service": "auth",
                    "iv_len": 0,
                    "sn_len": 4,
                    "pad_len": 0,
                    "mac_len": 16,
                }
            ],
        },
        "downlink": {
            "sas": [
                {
                    "spi": 2,
                    "service": "aead",
                    "iv_len": 12,
                    "sn_len": 0,
                    "pad_len": 0,
                    "mac_len": 16,
                }
            ]
        },
        "isl": {
            "sas": [
                {"spi": 3, "service": "clear", "iv_len": 0, "sn_len": 0, "pad_len": 0, "mac_len": 0}
            ]
        },
    }
    # the lengths are the runtime's: each SA's overhead, as the frames shrink by it
    for kind, sa in (("uplink", sdls.uplink), ("downlink", sdls.downlink), ("isl", sdls.laser)):
        row = table[kind]["sas"][0]
        assert 2 + row["iv_len"] + row["sn_len"] + row["pad_len"] + row["mac_len"] == sa.overhead
    text = wireshark.scenario_lua(settings)
    assert "format = 3," in text and "key" not in text.split("local scenario = ")[1]


def test_capture_filters_and_file_names():
    default = scenario_file.load_default()
    assert wireshark.port_ranges(default) == [(47100, 47112), (47400, 47412)]
    assert wireshark.capture_filter(default) == (
        "udp and (portrange 47100-47112 or portrange 47400-47412)"
    )
    assert wireshark.scenario_file_name(default) == "linkstack-scenario-default.lua"


def test_lua_literals_escape_everything_but_plain_ascii():
    assert wireshark.lua_string('a"b\\c\n') == '"a\\034b\\092c\\010"'
    assert wireshark.lua_string("é") == '"\\195\\169"'
    table = wireshark.lua_value({"end": 1, "ok": True, 3: "x"})
    assert table == '{ ["end"] = 1, ok = true, [3] = "x" }'


# -- the command ----------------------------------------------------------------------------


def test_the_command_prints_installs_and_refuses_clearly(odd, tmp_path, capsys):
    source = odd.source
    assert linkstack_main(["wireshark", "--scenario", source]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("-- linkstack scenario 'odd one' for Wireshark: 6 links")
    assert "local scenario = {" in printed and "linkstack_add_scenario" in printed
    assert linkstack_main(["wireshark", "--scenario", source, "--capture-filter"]) == 0
    assert capsys.readouterr().out == "udp and (portrange 47700-47702 or portrange 47706-47708)\n"

    folder = tmp_path / "plugins" / "deep"
    assert linkstack_main(["wireshark", "--scenario", source, "--install", str(folder)]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == [
        "linkstack-scenario-odd_one.lua",
        "linkstack.lua",
    ]
    assert (folder / "linkstack.lua").read_bytes() == LUA.read_bytes()
    assert (folder / "linkstack-scenario-odd_one.lua").read_text() == wireshark.scenario_lua(
        odd, folder / "linkstack.lua"
    )
    assert f"wrote {folder / 'linkstack.lua'}" in out and "-f 'udp and (portrange" in out

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert linkstack_main(["wireshark", "--scenario", source, "--install", str(a_file)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert linkstack_main(["wireshark", "--scenario", str(tmp_path / "none.toml")]) == 2
    assert "none.toml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        linkstack_main(["wireshark", "--install", "--capture-filter"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        linkstack_main(["wireshark", "--help"])
    assert "--install [FOLDER]" in capsys.readouterr().out


# -- units on the scenario's ports, in either load order --------------------------------------


def _datagrams(path: Path, items: list[tuple[int, int, bytes]]) -> None:
    """A pcap of UDP datagrams on loopback: (source port, destination port, payload)."""
    packets = []
    for i, (sport, dport, payload) in enumerate(items):
        p = Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=sport, dport=dport)
        p = p / payload
        p.time = 1_767_225_600 + i * 0.001
        packets.append(p)
    wrpcap(str(path), packets)


def _tm_frame(cfg: TmConfig, packets: list[bytes]) -> bytes:
    mc = TmMasterChannel(cfg)
    for p in packets:
        mc.push(0, p)
    mc.flush()
    frame = mc.next_data_frame()
    assert frame is not None
    return frame


def _aos_frame(cfg: AosConfig, packets: list[bytes]) -> bytes:
    mc = AosMasterChannel(cfg)
    for p in packets:
        mc.push(0, p)
    mc.flush()
    frame = mc.next_data_frame()
    assert frame is not None
    return frame


def _packet(apid: int, data: bytes, kind: PacketType = PacketType.TM) -> bytes:
    return SpacePacket(apid, data, kind, 7).pack()


UNIT_FIELDS = [
    "_ws.col.Protocol",
    "linkstack.link.name",
    "linkstack.link.index",
    "linkstack.link.from",
    "linkstack.link.to",
    "linkstack.tc.spacecraft",
    "linkstack.tc.fecf.status",
    "linkstack.tm.spacecraft",
    "linkstack.tm.fecf.status",
    "linkstack.cadu.rs_check_octets",
    "linkstack.aos.spacecraft",
    "linkstack.aos.fecf.status",
    "linkstack.msg.type",
    "linkstack.msg.id",
    "linkstack.relay.src_name",
    "linkstack.relay.dst_name",
    "_ws.expert.message",
]


@pytest.mark.parametrize("scenario_first", [True, False], ids=["scenario-first", "dissector-first"])
def test_a_scenario_file_names_the_links_nodes_and_spacecraft(odd, tmp_path, home, scenario_first):
    table = wireshark.scenario_table(odd)
    up0, _, _, down1, isl01, _ = table["links"]
    uplink = odd.emulation.uplink
    query = messages.encode(Query("q-odd", "Wer?"))
    answer = messages.encode(
        Answer("q-odd", "Ja", 3, 1, "stop", "tiny", "m", True, satellite=ODD_NAMES[1])
    )
    tc = TcVirtualChannel(TcConfig(scid=100), 0).frames(
        [_packet(QUERY_APID, query, PacketType.TC)]
    )[0]
    cltu = CltuTransmitter(CltuCoding(randomize=False)).cltu(tc.pack())
    tm = CaduTransmitter(478, uplink.cadu_coding).cadu(
        _tm_frame(TmConfig(scid=101, frame_length=478), [_packet(ANSWER_APID, answer)])
    )
    relayed = RelayHeader(2, 0).wrap(answer)
    aos = CaduTransmitter(1115).cadu(
        _aos_frame(AosConfig(scid=100), [_packet(RELAY_APID, relayed)])
    )
    pcap = tmp_path / "on-the-ports.pcap"
    _datagrams(
        pcap,
        [
            (up0["source_port"], up0["channel_port"], link_header(up0["index"]) + cltu),
            (up0["delivered_from"], up0["node_port"], link_header(up0["index"]) + cltu),
            (down1["source_port"], down1["channel_port"], link_header(down1["index"]) + tm),
            (isl01["source_port"], isl01["channel_port"], link_header(isl01["index"]) + aos),
            # on a port of the daemons: no link header, or a link the scenario lacks
            (up0["source_port"], up0["channel_port"], cltu),
            (up0["source_port"], up0["channel_port"], link_header(99) + cltu),
        ],
    )
    script = tmp_path / wireshark.scenario_file_name(odd)
    script.write_text(wireshark.scenario_lua(odd))
    scripts = [f"lua_script:{script}", f"lua_script:{LUA}"]
    if not scenario_first:
        scripts.reverse()
    got = json_fields(pcap, UNIT_FIELDS, "-X", scripts[0], "-X", scripts[1], home=home)
    assert [f["_ws.col.Protocol"] for f in got.values()] == [
        ["CLTU"],
        ["CLTU"],
        ["TM CADU"],
        ["AOS CADU"],
        ["linkstack"],
        ["CLTU"],
    ]
    sent_up, delivered_up, tm_f, aos_f, bare, unknown = got.values()
    assert sent_up["linkstack.link.name"] == [f"uplink {ODD_NAMES[0]}"]
    assert sent_up["linkstack.link.index"] == [str(up0["index"])]  # from its header
    assert tm_f["linkstack.link.index"] == [str(down1["index"])]
    assert bare["linkstack.link.name"] == [] and bare["linkstack.msg.type"] == []
    # a link the scenario does not name: its number, and the unit found by its content
    assert unknown["linkstack.link.index"] == ["99"] and unknown["linkstack.link.name"] == []
    assert unknown["linkstack.tc.spacecraft"] == [ODD_NAMES[0]]
    assert (sent_up["linkstack.link.from"], sent_up["linkstack.link.to"]) == (
        ["ground"],
        ["channel"],
    )
    assert (delivered_up["linkstack.link.from"], delivered_up["linkstack.link.to"]) == (
        ["channel"],
        [ODD_NAMES[0]],
    )
    assert sent_up["linkstack.tc.spacecraft"] == [ODD_NAMES[0]]
    assert sent_up["linkstack.tc.fecf.status"] == ["1"]  # not derandomized: the scenario's
    assert sent_up["linkstack.msg.type"] == ["q"] and sent_up["linkstack.msg.id"] == ["q-odd"]
    assert tm_f["linkstack.tm.spacecraft"] == [ODD_NAMES[1]]
    assert tm_f["linkstack.cadu.rs_check_octets"] == ["32"]  # RS(255,239) x 2
    assert tm_f["linkstack.tm.fecf.status"] == ["1"]
    assert tm_f["linkstack.msg.type"] == ["a"] and tm_f["linkstack.msg.id"] == ["q-odd"]
    assert aos_f["linkstack.link.name"] == [f"isl {ODD_NAMES[0]}->{ODD_NAMES[1]}"]
    assert aos_f["linkstack.aos.spacecraft"] == [ODD_NAMES[0]]
    assert aos_f["linkstack.relay.src_name"] == [ODD_NAMES[1]]
    assert aos_f["linkstack.relay.dst_name"] == ["ground"]
    assert aos_f["linkstack.msg.type"] == ["a"]
    assert [f["_ws.expert.message"] for f in got.values()][:5] == [[]] * 5
    # the same TC frame a third time: FARM-1's reading, not the link header's
    assert "N(S) out of sequence" in unknown["_ws.expert.message"][0]


def test_the_heuristic_skips_a_link_header_and_a_scenario_names_its_link(odd, tmp_path, home):
    """Units behind the daemons' link header on ports no scenario claims: the heuristic
    finds them past the header and shows the link's number; with the scenario loaded,
    a link of that number and kind is named (not one of another kind)."""
    tc = TcVirtualChannel(TcConfig(scid=100), 0).frames([_packet(0x57, bytes(30), PacketType.TC)])
    cltu = CltuTransmitter(CltuCoding(randomize=False)).cltu(tc[0].pack())
    pcap = tmp_path / "headed.pcap"
    # link 0 is the odd scenario's first uplink; link 1 a downlink, so no CLTU's
    _datagrams(pcap, [(41000, 41001, link_header(0) + cltu), (41000, 41001, link_header(1) + cltu)])
    fields = ["_ws.col.Protocol", "linkstack.link.index", "linkstack.link.name"]
    alone = json_fields(pcap, fields, "-X", f"lua_script:{LUA}", home=home)
    assert [f["_ws.col.Protocol"] for f in alone.values()] == [["CLTU"], ["CLTU"]]
    assert [f["linkstack.link.index"] for f in alone.values()] == [["0"], ["1"]]
    assert all(f["linkstack.link.name"] == [] for f in alone.values())
    script = tmp_path / "odd.lua"
    script.write_text(wireshark.scenario_lua(odd))
    named = json_fields(
        pcap, fields, "-X", f"lua_script:{LUA}", "-X", f"lua_script:{script}", home=home
    )
    assert [f["linkstack.link.name"] for f in named.values()] == [[f"uplink {ODD_NAMES[0]}"], []]


def test_a_scenario_file_of_another_format_is_refused_by_name(odd, tmp_path, home):
    script = tmp_path / "old.lua"
    script.write_text(wireshark.scenario_lua(odd).replace("format = 3,", "format = 99,", 1))
    pcap = tmp_path / "empty.pcap"
    _datagrams(pcap, [(1, 2, b"x")])
    exe = shutil.which("tshark")
    assert exe is not None, "tshark is needed (see tests/capture/test_wireshark.py)"
    proc = subprocess.run(
        [exe, "-r", str(pcap), "-X", f"lua_script:{LUA}", "-X", f"lua_script:{script}"],
        capture_output=True,
        text=True,
        env=dict(os.environ, HOME=str(home)),
        timeout=120,
        check=False,
    )
    assert "reads scenario files of formats 1 to 3; this one is of format 99" in proc.stderr


# -- the heuristic: linkstack's units on any port, nothing else ----------------------------------


def test_the_heuristic_finds_cltus_and_cadus_on_any_port_and_nothing_else(tmp_path, home):
    rng = random.Random(14)
    tm = CaduTransmitter(1115).cadu(_tm_frame(TmConfig(scid=64), [_packet(ANSWER_APID, b"x")]))
    aos = CaduTransmitter(1115).cadu(_aos_frame(AosConfig(scid=70), [_packet(0x55, bytes(40))]))
    tm_rs8 = CaduTransmitter(478, CaduCoding(rs_e=8, rs_depth=2)).cadu(
        _tm_frame(TmConfig(scid=65, frame_length=478), [_packet(0x56, bytes(20))])
    )
    tc = TcVirtualChannel(TcConfig(scid=64), 0).frames([_packet(0x57, bytes(30), PacketType.TC)])
    cltu = CltuTransmitter().cltu(tc[0].pack())
    not_ours = [
        rng.randbytes(60),
        b"\xeb\x90" + rng.randbytes(24),  # the start sequence, wrong parity, no tail
        b"\x1a\xcf\xfc\x1d" + bytes(6),  # an ASM and too little after it
        b"\x1a\xcf\xfc\x1c" + tm[4:],  # one bit off the ASM (the heuristic wants it whole)
        cltu[:-3],  # codeblocks cut
    ]
    ours = [("TM CADU", tm), ("AOS CADU", aos), ("TM CADU", tm_rs8), ("CLTU", cltu)]
    ours.append(("CLTU", cltu[:-8]))  # no tail, but whole codeblocks and a right parity
    items = [(40001 + i, 47100 + i, u) for i, (_, u) in enumerate(ours)]
    items += [(40101 + i, 47200 + i, u) for i, u in enumerate(not_ours)]
    pcap = tmp_path / "anywhere.pcap"
    _datagrams(pcap, items)
    claimed = {
        int(c[1])
        for c in (line.split("\t") for line in tshark("-G", "decodes", home=home).splitlines())
        if len(c) > 1 and c[0] == "udp.port" and c[1].isdigit()
    }
    assert not claimed & set(range(47100, 47448)), "the default scenario's ports are free"
    got = json_fields(
        pcap,
        ["_ws.col.Protocol", "linkstack.tm.fecf.status", "linkstack.aos.fecf.status"],
        "-X",
        f"lua_script:{LUA}",
        home=home,
    )
    protocols = [f["_ws.col.Protocol"][0] for f in got.values()]
    assert protocols[: len(ours)] == [kind for kind, _ in ours]
    assert not {"CLTU", "TM CADU", "AOS CADU"} & set(protocols[len(ours) :]), protocols
    frames = list(got.values())
    assert frames[0]["linkstack.tm.fecf.status"] == ["1"]
    assert frames[1]["linkstack.aos.fecf.status"] == ["1"]
    assert frames[2]["linkstack.tm.fecf.status"] == ["1"]  # RS(255,239) x 2 found


# -- messages: what payloads.messages encodes, as it decodes it ----------------------------------


def _text(rng: random.Random, longest: int) -> str:
    alphabet = 'abc XYZ 019 \n\t"\\{}[]é☃𝄞\x00'
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(longest + 1)))


def _t_s(rng: random.Random) -> float | None:
    return rng.choice([None, 0.0, 0.5, -2.25, 1e-7, 10771.523046875, rng.uniform(0, 1e6)])


def _messages(rng: random.Random, n: int) -> list[messages.Message]:
    out: list[messages.Message] = []
    for i in range(n):
        qid = f"id-{i}-" + _text(rng, 5).replace("\x00", "")
        qid = qid[: messages.MAX_ID_LEN]
        kind = i % 5
        if kind == 0:
            params = Params(rng.randrange(1, 5000), rng.choice([0.0, 0.7]), 0.95, i % 2 == 0, i)
            out.append(Query(qid, _text(rng, 80), params, i % 3 == 0, _t_s(rng)))
        elif kind == 1:
            times = OnboardTimes(
                query_complete_t_s=_t_s(rng),
                ttft_s=0.025,
                tokens_per_s=402.5,
                power_asked_t_s=12.5 if i % 2 else None,  # version 2 when given
            )
            timing = "modelled: reference-744/qwen3-8b/int8" if i % 3 == 0 else ""  # version 3
            battery_wh = 152.25 if i % 4 == 1 else None  # version 3 too
            out.append(
                Answer(qid, _text(rng, 200), 43, rng.randrange(2**20), "length", "tiny",
                       "tiny-qwen3", True, f"CS-{i % 12 + 1:02d}", times, timing, battery_wh)
            )  # fmt: skip
        elif kind == 2:
            out.append(AnswerChunk(qid, rng.randrange(70000), _text(rng, 30), _t_s(rng)))
        elif kind == 3:
            code = rng.choice(messages.ERROR_CODES)
            out.append(ErrorMessage(qid, code, _text(rng, 40), "", _t_s(rng)))
        else:
            out.append(Ack(tuple(f"{qid}-{k}" for k in range(rng.randrange(0, 4)))))
    # long enough to be segmented over several Space Packets
    out.append(Query("q-long", "Lorem ipsum é " * 900, Params(), False, 5.0))
    out.append(Answer("a-long", "☃" * 6000, 1, 2, "stop", "hf", "Qwen", False, "CS-02"))
    return out


MSG_FIELDS = [
    "linkstack.msg.type",
    "linkstack.msg.version",
    "linkstack.msg.id",
    "linkstack.msg.prompt",
    "linkstack.msg.text",
    "linkstack.msg.stream",
    "linkstack.msg.t_s",
    "linkstack.msg.prompt_tokens",
    "linkstack.msg.completion_tokens",
    "linkstack.msg.satellite",
    "linkstack.msg.timing_source",
    "linkstack.msg.battery_wh",
    "linkstack.msg.seq",
    "linkstack.msg.code",
    "linkstack.msg.detail",
    "linkstack.msg.ack_id",
    "linkstack.msg.param",
    "linkstack.msg.onboard_time",
    "linkstack.msg.segments",
    "linkstack.relay.src",
    "linkstack.relay.dst",
    "linkstack.relay.hop_limit",
    "_ws.expert.message",
]


def _shown(text: str) -> str:
    """A string as a Wireshark field shows it: its strings end at a NUL, so the
    dissector shows a NUL as U+2400."""
    return text.replace("\x00", "\u2400")


def _expected(msg: messages.Message) -> dict[str, list[str]]:
    """The fields tshark must show for ``msg``, from payloads' own decoding of it."""
    got = messages.decode(messages.encode(msg))
    assert got == msg
    v: dict[str, list[str]] = {"linkstack.msg.version": [str(messages.version_of(got))]}
    if isinstance(got, Query):
        v |= {"linkstack.msg.type": ["q"], "linkstack.msg.id": [_shown(got.id)]}
        v["linkstack.msg.prompt"] = [_shown(got.prompt)]
        v["linkstack.msg.stream"] = ["1" if got.stream else "0"]
        p = got.params
        v["linkstack.msg.param"] = [
            f"max_new_tokens = {p.max_new_tokens}",
            f"temperature = {p.temperature:.10g}",
            f"top_p = {p.top_p:.10g}",
            f"thinking = {str(p.thinking).lower()}",
            f"seed = {p.seed}",
        ]
    elif isinstance(got, Answer):
        v |= {"linkstack.msg.type": ["a"], "linkstack.msg.id": [_shown(got.id)]}
        v["linkstack.msg.text"] = [_shown(got.text)]
        v["linkstack.msg.prompt_tokens"] = [str(got.prompt_tokens)]
        v["linkstack.msg.completion_tokens"] = [str(got.completion_tokens)]
        v["linkstack.msg.satellite"] = [got.satellite]
        v["linkstack.msg.timing_source"] = [got.timing_source] if got.timing_source else []
        v["linkstack.msg.battery_wh"] = [] if got.battery_wh is None else [f"{got.battery_wh:g}"]
    elif isinstance(got, AnswerChunk):
        v |= {"linkstack.msg.type": ["c"], "linkstack.msg.id": [_shown(got.id)]}
        v |= {"linkstack.msg.seq": [str(got.seq)], "linkstack.msg.text": [_shown(got.text)]}
    elif isinstance(got, ErrorMessage):
        v |= {"linkstack.msg.type": ["e"], "linkstack.msg.id": [_shown(got.id)]}
        v |= {"linkstack.msg.code": [got.code], "linkstack.msg.detail": [_shown(got.detail)]}
    else:
        v |= {"linkstack.msg.type": ["k"], "linkstack.msg.ack_id": list(got.ids)}
    return v


def _t_s_of(msg: messages.Message) -> float | None:
    if isinstance(msg, Query):
        return msg.submit_t_s
    if isinstance(msg, AnswerChunk | ErrorMessage):
        return msg.t_s
    return None


@pytest.fixture(scope="module")
def message_capture(tmp_path_factory) -> tuple[Path, list[tuple[int, messages.Message, bool]]]:
    """Every kind of message in Space Packets on port 47020, bare or relayed, whole or
    segmented; (the frame that completes it, the message, relayed)."""
    rng = random.Random(2026)
    path = tmp_path_factory.mktemp("msg") / "messages.pcap"
    expects = []
    counter = SequenceCounter()
    with PcapCapture(path, EPOCH) as cap:
        for i, msg in enumerate(_messages(rng, 60)):
            relayed = i % 4 == 3
            raw = messages.encode(msg)
            apid = QUERY_APID if isinstance(msg, Query | Ack) else ANSWER_APID
            if relayed:
                raw, apid = RelayHeader(0, 1 + i % 12, 9).wrap(raw), RELAY_APID
            for packet in segment(raw, apid, counter, MAX_PACKET_DATA):
                cap.unit("space_packet", i + 0.001 * len(expects), "ground", "sat:CS-01",
                         packet.pack())  # fmt: skip
            expects.append((cap.stats["frames"], msg, relayed))
    return path, expects


@pytest.mark.parametrize("passes", [[], ["-2"]], ids=["one-pass", "two-pass"])
def test_messages_decode_field_by_field_as_payloads_decodes_them(message_capture, home, passes):
    path, expects = message_capture
    got = json_fields(path, MSG_FIELDS, *passes, "-X", f"lua_script:{LUA}", home=home)
    segmented = 0
    for frame, msg, relayed in expects:
        seen = got[frame]
        assert seen["_ws.expert.message"] == [], (frame, seen)
        for name, want in _expected(msg).items():
            if name == "linkstack.msg.param":  # in the map's order on the wire (canonical)
                assert sorted(seen[name]) == sorted(want), (frame, seen[name], want)
            else:
                assert seen[name] == want, (frame, name, seen[name], want)
        if isinstance(msg, Answer) and msg.times.power_asked_t_s is not None:
            assert "power_asked_t_s = 12.5" in seen["linkstack.msg.onboard_time"], seen
        t_s = _t_s_of(msg)
        if t_s is not None:
            assert math.isclose(float(seen["linkstack.msg.t_s"][0]), t_s, rel_tol=1e-15)
        elif isinstance(msg, Query | AnswerChunk | ErrorMessage):
            assert seen["linkstack.msg.t_s"] == []  # null: not known
        if relayed:
            assert seen["linkstack.relay.src"] == ["0"]
            assert seen["linkstack.relay.hop_limit"] == ["9"]
        else:
            assert seen["linkstack.relay.src"] == []
        if seen["linkstack.msg.segments"]:
            segmented += 1
            assert int(seen["linkstack.msg.segments"][0]) >= 2
    assert segmented == 2  # the two long ones, reassembled
    # a frame that holds a first or middle segment shows no message
    completing = {frame for frame, _, _ in expects}
    assert any(not f["linkstack.msg.type"] for n, f in got.items() if n not in completing)


def test_damaged_messages_are_flagged_and_never_break_the_dissector(tmp_path, home):
    rng = random.Random(7)
    good = [messages.encode(m) for m in _messages(rng, 40)[:40]]
    # (APID, octets, what the dissector must say of them)
    damaged: list[tuple[int, bytes, str | None]] = []
    for i, message in enumerate(good):
        apid = (QUERY_APID, ANSWER_APID, RELAY_APID)[i % 3]
        raw = RelayHeader(1, 0).wrap(message) if apid == RELAY_APID else message
        cut = rng.randrange(1, len(raw))
        prefix = "an envelope holds" if apid == RELAY_APID and cut <= 6 else "not CBOR"
        damaged.append((apid, raw[:cut], prefix))  # a proper prefix ends inside an item
        flipped = bytearray(raw)
        for _ in range(rng.randrange(1, 6)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        damaged.append((apid, bytes(flipped), None))
        damaged.append((apid, rng.randbytes(rng.randrange(1, 200)), None))
    damaged += [
        (QUERY_APID, b"\x81" * 200 + b"\x00", "nested more than 16 deep"),
        (QUERY_APID, b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff", "not CBOR"),  # too long
        (ANSWER_APID, b"\xbf\x61t\x61q\xff", "indefinite length"),
        (ANSWER_APID, b"\xa2\x61t\x61z\x61v\x01", "unknown message type z"),
        (QUERY_APID, b"\xa1\x01\x02", "a key must be text"),
        (QUERY_APID, b"\xa2\x61t\x61q\x61v\xf9\x7c\x00", "Version (v) must not be float"),
        (QUERY_APID, b"\xa1\x62pt\x1b" + b"\xff" * 8, "Prompt tokens (pt) is out of range"),
        (ANSWER_APID, b"\x83\x01\x02\x03", "a message is a CBOR map, not array"),
        (ANSWER_APID, good[0] + b"\x00", "octets after the message's map"),
        (RELAY_APID, b"\x02\x10\x00\x01\x00\x00" + good[0], "envelope version 2 is not 1"),
        (RELAY_APID, b"\x01\x10\x00\x03\x00\x03" + good[0], "the same node"),
        (RELAY_APID, b"\x01\x10\x00\x03\x00\x00", "an envelope holds a 6-octet header"),
    ]
    path = tmp_path / "damaged.pcap"
    counter = SequenceCounter()
    with PcapCapture(path, EPOCH) as cap:
        for i, (apid, raw, _) in enumerate(damaged):
            packet = SpacePacket(apid, raw, PacketType.TM, counter.next(apid)).pack()
            cap.unit("space_packet", i * 0.001, "ground", "sat:CS-01", packet)
    got = json_fields(path, ["_ws.expert.message"], "-X", f"lua_script:{LUA}", home=home)
    assert len(got) == len(damaged)
    for (_, raw, must_say), frame in zip(damaged, got.values(), strict=True):
        said = frame["_ws.expert.message"]
        assert not [m for m in said if "Lua" in m], (raw.hex(), said)
        if must_say is not None:
            assert any(must_say in m for m in said), (raw.hex(), must_say, said)


def test_junk_on_a_scenarios_ports_and_anywhere_never_breaks_the_dissector(odd, tmp_path, home):
    rng = random.Random(41)
    tm = CaduTransmitter(1115).cadu(_tm_frame(TmConfig(scid=64), [_packet(ANSWER_APID, b"x")]))
    tc = TcVirtualChannel(TcConfig(scid=64), 0).frames([_packet(QUERY_APID, b"\xa0")])
    units = [tm, CltuTransmitter().cltu(tc[0].pack())]
    table = wireshark.scenario_table(odd)
    ports = [p for row in table["ends"] for p in (row["channel_port"], row["node_port"])]
    items = []
    for i in range(600):
        unit = bytearray(rng.choice(units))
        how = i % 5
        if how == 0:
            unit = bytearray(rng.randbytes(rng.randrange(0, 40)))
        elif how == 1:
            del unit[rng.randrange(0, len(unit)) :]
        elif how == 2:
            for _ in range(rng.randrange(1, 40)):
                unit[rng.randrange(len(unit))] ^= 1 << rng.randrange(8)
        elif how == 3:
            unit[4:] = rng.randbytes(len(unit) - 4)  # a sync pattern and noise
        head = rng.choice([b"", b"L", link_header(rng.randrange(8)), link_header(0)[:3]])
        items.append((40000 + i, rng.choice([*ports, 47150, 47350]), head + bytes(unit)))
    pcap = tmp_path / "junk-on-ports.pcap"
    _datagrams(pcap, items)
    script = tmp_path / "odd.lua"
    script.write_text(wireshark.scenario_lua(odd))
    got = json_fields(
        pcap,
        ["_ws.expert.message"],
        *("-X", f"lua_script:{LUA}", "-X", f"lua_script:{script}"),
        home=home,
    )
    assert len(got) == len(items)
    said = [m for f in got.values() for m in f["_ws.expert.message"]]
    assert not [m for m in said if "Lua" in m], "the Lua dissector raised errors"
    assert "FECF does not match the frame" in said  # damage was seen
