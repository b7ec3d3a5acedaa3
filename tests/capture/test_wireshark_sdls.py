"""SDLS in the Wireshark dissector, checked with the real tshark: the security header
and trailer of every protected frame of a capture, read as linkstack reads them.

The captures are made by linkstack itself: the ``laser-relay`` sample scene (a query
up to CS-06, relayed over three laser links to CS-09, the answer back the same way
and down) run in emulated time with ``[sdls]`` on, every link protected, keys made for
the run. Each frame record and each CLTU or CADU (whose frame the dissector digs out)
must show the SPI, IV, sequence number, pad length and MAC that linkstack's own
:func:`~linkstack.ccsds.sdls_layout.parse_security_header` reads; the data of a clear
or authentication-only association must give the Space Packets that linkstack's own
packet extractor finds in it, and encrypted data must give none. The associations
come from the scenario file (``linkstack wireshark``) or, for a capture without one,
from the preference ``linkstack.sdls.spi_lengths``; both are checked.

Frames built here with linkstack's SDLS codec check the rest: an SPI that no SA of the
link has (an expert warning), a frame too short for its SA, a TC virtual channel that
SDLS does not cover, a Type-BC frame, the preference's virtual channels and its
refusal of an entry it cannot read, and a scenario file of format 1 (before SDLS).
tshark is needed: see tests/capture/test_wireshark.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from linkstack.capture.pcap import PcapCapture, read_units
from linkstack.capture.samples import make_sample, sample_by_name
from linkstack.ccsds.coding.chains import CaduCoding
from linkstack.ccsds.cop1.commands import SetVr
from linkstack.ccsds.crc import append_fecf
from linkstack.ccsds.packet_zone import PacketZoneExtractor
from linkstack.ccsds.sdls import FrameSecurity, Keyring, SecurityAssociation
from linkstack.ccsds.sdls_layout import parse_security_header
from linkstack.ccsds.spp import IDLE_APID, PacketType, SpacePacket, parse_primary_header
from linkstack.ccsds.tc import TcConfig, TcFrame, TcFrameType, TcVirtualChannel
from linkstack.ccsds.tm import TmConfig, TmMasterChannel
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.radio import cadu_frame_of, cltu_frame_of
from linkstack.runtime.site import AOS_FRAME_LEN
from linkstack.tools import wireshark
from tests.capture.test_wireshark import EPOCH, LUA, fields

SDLS_FIELDS = ["spi", "iv", "sn", "pad", "mac", "service", "encrypted"]
FIELDS = [
    *(f"linkstack.sdls.{name}" for name in SDLS_FIELDS),
    "linkstack.tc.data",
    "linkstack.tm.data",
    "linkstack.aos.data",
    "ccsds.apid",
    "ccsds.seqnum",
    "linkstack.msg.type",
    "linkstack.tc.fecf.status",
    "linkstack.tm.fecf.status",
    "linkstack.aos.fecf.status",
    "linkstack.tc.cc.vr",
    "_ws.expert.message",
]
FRAME_KINDS = {
    "cltu": "tc",
    "tc_frame": "tc",
    "tm_cadu": "tm",
    "tm_frame": "tm",
    "aos_cadu": "aos",
    "aos_frame": "aos",
}
ENCRYPTS = ("enc", "aead")

# [sdls] of each run: every service on every kind of link, one or another
CONFIGS = {
    "aead": "",
    "auth-clear-enc": '[sdls.uplink]\nservice = "auth"\nsn_len = 4\n'
    '[sdls.downlink]\nservice = "clear"\n[sdls.laser]\nservice = "enc"\n',
    "enc-auth-clear": '[sdls.uplink]\nservice = "enc"\n'
    '[sdls.downlink]\nservice = "auth"\nauth = "HMAC_SHA256"\nsn_len = 8\nmac_len = 32\n'
    '[sdls.laser]\nservice = "clear"\n',
}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tshark-home")


def _settings(sdls: str) -> scenario_file.ScenarioFile:
    return scenario_file.loads("[sdls]\nenabled = true\n" + sdls)


def _associations(settings: scenario_file.ScenarioFile) -> dict[str, SecurityAssociation]:
    """The SA of each kind of frame, as the runtime makes it."""
    sdls = settings.emulation.uplink.sdls
    return {
        "tc": sdls.uplink.association(),
        "tm": sdls.downlink.association(),
        "aos": sdls.laser.association(),
    }


def _preference(sas: list[SecurityAssociation]) -> str:
    return ",".join(
        f"{sa.spi}:{sa.iv_len}:{sa.sn_len}:{sa.pad_len}:{sa.mac_len}:{sa.service}" for sa in sas
    )


@dataclass
class SdlsCapture:
    path: Path
    settings: scenario_file.ScenarioFile
    script: Path  # the scenario file for Wireshark


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def sdls_capture(request, tmp_path_factory) -> SdlsCapture:
    folder = tmp_path_factory.mktemp(f"sdls-{request.param}")
    settings = _settings(CONFIGS[request.param])
    sample = replace(sample_by_name("laser-relay"), sdls=settings.emulation.uplink.sdls)
    path = make_sample(sample, folder)
    script = folder / wireshark.scenario_file_name(settings)
    script.write_text(wireshark.scenario_lua(settings))
    return SdlsCapture(path, settings, script)


def _frame_readers(
    settings: scenario_file.ScenarioFile,
) -> dict[str, Callable[[bytes], bytes | None]]:
    """The transfer frame inside each layer's unit (as the capture's frame records)."""
    up = settings.emulation.uplink
    return {
        "cltu": cltu_frame_of(up.cltu_coding),
        "tm_cadu": cadu_frame_of(up.tm_frame_length, up.cadu_coding),
        "aos_cadu": cadu_frame_of(AOS_FRAME_LEN, CaduCoding()),
    }


def _packets(raw: list[bytes]) -> list[tuple[int, int]]:
    out = []
    for packet in raw:
        h = parse_primary_header(packet)
        if h.apid != IDLE_APID:
            out.append((h.apid, h.seq_count))
    return out


def _clear_packets(
    kind: str, frame: bytes, data: bytes, extractor: PacketZoneExtractor
) -> list[tuple[int, int]]:
    """The Space Packets linkstack finds in a frame's data field ``data`` (in the clear)."""
    if kind == "tc":  # linkstack's TC frames carry whole packets, unsegmented
        assert frame[5] >> 6 == 3
        return _packets(PacketZoneExtractor().push(data, 0))
    if kind == "tm":
        return _packets(extractor.push(data, (frame[4] << 8 | frame[5]) & 0x7FF))
    if frame[1] & 0x3F == 63:  # an idle AOS frame
        return []
    return _packets(extractor.push(data[2:], (data[0] << 8 | data[1]) & 0x7FF))


@pytest.mark.parametrize("source", ["scenario-file", "preference"])
def test_every_protected_frame_shows_its_security_header_as_linkstack_reads_it(
    sdls_capture, home, source
):
    settings = sdls_capture.settings
    sas = _associations(settings)
    if source == "scenario-file":
        options = ["-X", f"lua_script:{sdls_capture.script}"]
        sa_from = f"scenario {settings.name}"
    else:  # a capture without a scenario file: the SAs' lengths and services by hand
        options = ["-o", f"linkstack.sdls.spi_lengths:{_preference(list(sas.values()))}"]
        sa_from = "preference linkstack.sdls.spi_lengths"
    decoded = fields(
        sdls_capture.path,
        [*FIELDS, "linkstack.sdls.sa_from"],
        "-X",
        f"lua_script:{LUA}",
        *options,
        home=home,
    )
    readers = _frame_readers(settings)
    extractors: dict[tuple[str, str, str, int], PacketZoneExtractor] = {}
    problems, protected, clear_packets, messages, kinds = [], 0, 0, 0, set()
    for number, unit in enumerate(read_units(sdls_capture.path), start=1):
        got = decoded[number]
        assert got["_ws.expert.message"] == [], (number, got["_ws.expert.message"])
        kind = FRAME_KINDS.get(unit.layer)
        if kind is None:  # a Space Packet record: no frame
            assert got["linkstack.sdls.spi"] == []
            continue
        reader = readers.get(unit.layer)
        frame = reader(unit.data) if reader is not None else unit.data
        assert frame is not None
        sa = sas[kind]
        read = parse_security_header(
            frame, kind, {sa.spi: sa}, fecf=True, segment_header=kind == "tc", ocf=kind == "tm"
        )
        want = {f"linkstack.sdls.{k}": [read[k]] if read[k] else [] for k in ("iv", "sn", "pad")}
        want["linkstack.sdls.spi"] = [str(read["spi"])]
        want["linkstack.sdls.mac"] = [read["mac"]] if read["mac"] else []
        want["linkstack.sdls.service"] = [sa.service]
        want["linkstack.sdls.sa_from"] = [sa_from]
        want[f"linkstack.{kind}.fecf.status"] = ["1"]
        data = frame[read["data_offset"] : read["mac_offset"]]
        if sa.service in ENCRYPTS:  # shown as such, never as a data field to read
            want["linkstack.sdls.encrypted"] = [data.hex()]
            want[f"linkstack.{kind}.data"] = []
            packets: list[tuple[int, int]] = []
        else:  # the data field is exactly what lies between header and trailer
            want["linkstack.sdls.encrypted"] = []
            want[f"linkstack.{kind}.data"] = [data.hex()]
            vcid = frame[1] & 0x3F if kind == "aos" else (frame[1] >> 1) & 7
            key = (unit.layer, unit.src, unit.dst, vcid)
            packets = _clear_packets(
                kind, frame, data, extractors.setdefault(key, PacketZoneExtractor())
            )
            clear_packets += len(packets)
            messages += len(got["linkstack.msg.type"])
        got_packets = [
            (int(a), int(s))
            for a, s in zip(got["ccsds.apid"], got["ccsds.seqnum"], strict=True)
            if int(a) != IDLE_APID
        ]
        for name, value in want.items():
            if got[name] != value:
                problems.append(f"{unit.layer} #{number}: {name} = {got[name]}, want {value}")
        if got_packets != packets:
            problems.append(f"{unit.layer} #{number}: packets {got_packets}, want {packets}")
        if sa.service in ENCRYPTS and got["linkstack.msg.type"]:
            problems.append(f"{unit.layer} #{number}: a message read out of ciphertext")
        protected += 1
        kinds.add((kind, sa.service))
    assert not problems, "\n".join(problems[:30])
    # the scene went through every kind of link, and packets (linkstack's messages, all
    # of them) came out of the clear ones
    assert {k for k, _ in kinds} == {"tc", "tm", "aos"} and protected >= 40
    if any(service not in ENCRYPTS for _, service in kinds):
        assert clear_packets > 0 and messages > 0


# -- frames made here: what is not protected, what cannot be read -----------------------------

KEYS = Keyring.from_mapping({1: bytes(range(32)), 2: bytes(range(1, 33)), 7: bytes(32)})
UPLINK_SA = SecurityAssociation(1, "auth", acs="CMAC_AES256", akid=1, iv_len=0, sn_len=4, window=64)
DOWNLINK_SA = SecurityAssociation(2, "aead", ecs="AES256_GCM", ekid=2)
STRANGER_SA = SecurityAssociation(7, "clear", iv_len=0, mac_len=0)  # no SA of the scenario's
CRAFTED_SDLS = '[sdls.uplink]\nservice = "auth"\nsn_len = 4\n'
GROUND, SAT = "ground:Mohe", "sat:CS-06"


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> tuple[Path, Path, dict[str, int]]:
    """Frames of CS-06 (SCID 69) made with linkstack's codecs, some protected."""
    folder = tmp_path_factory.mktemp("sdls-crafted")
    settings = _settings(CRAFTED_SDLS)
    assert _associations(settings)["tc"] == UPLINK_SA
    script = folder / "scenario.lua"
    script.write_text(wireshark.scenario_lua(settings))
    tc_sec = FrameSecurity("tc", [UPLINK_SA], KEYS, fecf=True, segment_header=True)
    tm_stranger = FrameSecurity("tm", [STRANGER_SA], KEYS, fecf=True, ocf=True)
    packet = SpacePacket(0x2A, bytes(range(40)), PacketType.TC, 3).pack()
    tc_cfg = TcConfig(scid=69, max_frame_length=1024 - UPLINK_SA.overhead)
    vc0, vc1 = TcVirtualChannel(tc_cfg, 0), TcVirtualChannel(tc_cfg, 1)
    tm = TmMasterChannel(TmConfig(scid=69, frame_length=1115 - STRANGER_SA.overhead, ocf=True))
    tm.push(0, SpacePacket(0x2B, bytes(60), seq_count=5).pack())
    tm.flush()
    tm_frame = tm.next_data_frame()
    assert tm_frame is not None
    short_tm = append_fecf(bytes([0x04, 0x51, 0, 0, 0, 0, 0, 2]) + bytes(10) + bytes(4))
    units = {
        "ad protected": tc_sec.apply(vc0.frames([packet], map_id=0)[0].pack(), 1),
        "bc protected": tc_sec.apply(TcFrame(69, 0, SetVr(9).pack(), TcFrameType.BC).pack(), 1),
        "vc 1 plain": vc1.frames([packet], map_id=0)[0].pack(),
        "tm unknown spi": tm_stranger.apply(tm_frame, 7),
        "tm too short": short_tm,
    }
    numbers = {}
    path = folder / "crafted.pcap"
    with PcapCapture(path, EPOCH) as cap:
        for i, (what, data) in enumerate(units.items()):
            kind = "tc_frame" if what.split()[0] in ("ad", "bc", "vc") else "tm_frame"
            src, dst = (GROUND, SAT) if kind == "tc_frame" else (SAT, GROUND)
            cap.unit(kind, 0.001 * (i + 1), src, dst, data)
            numbers[what] = cap.stats["frames"]
    return path, script, numbers


CRAFTED_PREFERENCE = [
    "-o",
    f"linkstack.sdls.spi_lengths:{_preference([UPLINK_SA, DOWNLINK_SA])}",
    "-o",
    "linkstack.sdls.vcids:0",
]


@pytest.mark.parametrize("source", ["scenario-file", "preference"])
def test_unknown_spis_short_frames_and_channels_without_sdls(crafted, home, source):
    path, script, at = crafted
    options = ["-X", f"lua_script:{script}"] if source == "scenario-file" else CRAFTED_PREFERENCE
    got = fields(path, FIELDS, "-X", f"lua_script:{LUA}", *options, home=home)
    ad, bc, plain = got[at["ad protected"]], got[at["bc protected"]], got[at["vc 1 plain"]]
    stranger, short = got[at["tm unknown spi"]], got[at["tm too short"]]
    # an AD frame under the uplink's auth SA: its fields, and its packet read
    assert ad["linkstack.sdls.spi"] == ["1"] and ad["linkstack.sdls.sn"] == ["00000000"]
    assert len(ad["linkstack.sdls.mac"][0]) == 32 and ad["linkstack.sdls.iv"] == []
    assert ad["ccsds.apid"] == ["42"] and ad["_ws.expert.message"] == []
    # a Type-BC frame: the security header after the primary header, Set V(R) read
    assert bc["linkstack.sdls.sn"] == ["00000001"] and bc["linkstack.tc.cc.vr"] == ["9"]
    assert bc["_ws.expert.message"] == []
    # VC 1 is not linkstack's: no SDLS there, the frame reads as it always did
    assert plain["linkstack.sdls.spi"] == [] and plain["ccsds.apid"] == ["42"]
    assert plain["_ws.expert.message"] == [] and plain["linkstack.tc.fecf.status"] == ["1"]
    # an SPI no SA of the link has: a warning, and nothing read past it
    assert stranger["linkstack.sdls.spi"] == ["7"]
    assert stranger["ccsds.apid"] == [] and stranger["linkstack.sdls.mac"] == []
    sas = (
        "scenario default: SPI 2"
        if source == "scenario-file"
        else ("preference linkstack.sdls.spi_lengths: SPI 1, 2")
    )
    assert stranger["_ws.expert.message"] == [
        f"SPI 7 is not one of this TM frame's SAs ({sas}): the rest is not read"
    ]
    # a frame too short for its SA's header and trailer: malformed, nothing read
    assert short["linkstack.sdls.spi"] == ["2"] and short["ccsds.apid"] == []
    # (24 octets: 6 of header, 12 to the OCF, 4 of OCF, 2 of FECF)
    assert short["_ws.expert.message"] == [
        "12 octets left for SPI 2's 14-octet security header and 16-octet MAC"
    ]


def test_a_bad_preference_entry_is_said_and_the_good_ones_are_used(crafted, home):
    path, _, at = crafted
    entries = f"{_preference([UPLINK_SA])},1:2:3,9:0:0:0:0:rot13"
    got = fields(
        path,
        FIELDS,
        "-X",
        f"lua_script:{LUA}",
        "-o",
        f"linkstack.sdls.spi_lengths:{entries}",
        home=home,
    )
    ad = got[at["ad protected"]]
    assert ad["linkstack.sdls.spi"] == ["1"] and ad["ccsds.apid"] == ["42"]
    said = (
        "preference linkstack.sdls.spi_lengths: not SPI:IV:SN:PAD:MAC[:SERVICE] (SERVICE "
        "clear, auth, enc or aead; lengths 0-64): 1:2:3, 9:0:0:0:0:rot13"
    )
    assert all(said in frame["_ws.expert.message"] for frame in got.values())


def test_a_scenario_file_of_format_1_says_nothing_of_sdls(crafted, home, tmp_path):
    """A table made before SDLS (format 1, no "sdls") still loads; it does not say that
    frames are protected, so they read as plain ones unless the preference says so."""
    path, script, at = crafted
    old = re.sub(r"\n    sdls = \{\n.*?\n    \},", "", script.read_text(), count=1, flags=re.S)
    assert "sdls" not in old.split("local scenario = ")[1]
    old = old.replace("format = 2,", "format = 1,", 1)
    old_script = tmp_path / "old-scenario.lua"
    old_script.write_text(old)
    got = fields(
        path, FIELDS, "-X", f"lua_script:{LUA}", "-X", f"lua_script:{old_script}", home=home
    )
    assert all(frame["linkstack.sdls.spi"] == [] for frame in got.values())
    assert got[at["vc 1 plain"]]["ccsds.apid"] == ["42"]
    got = fields(
        path,
        FIELDS,
        "-X",
        f"lua_script:{LUA}",
        "-X",
        f"lua_script:{old_script}",
        *CRAFTED_PREFERENCE,
        home=home,
    )
    assert got[at["ad protected"]]["linkstack.sdls.spi"] == ["1"]
