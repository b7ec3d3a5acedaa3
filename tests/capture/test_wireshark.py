"""Captures of real linkstack units, decoded by the real tshark.

Two decoders are checked against what linkstack encoded:
- Wireshark's own ``ccsds`` dissector on the Space Packet port
  (``-d udp.port==47020,ccsds``): APIDs, sequence counts, lengths, time stamps;
- the Lua dissector ``wireshark/linkstack.lua`` (``-X lua_script:``) on CLTUs,
  TM/AOS CADUs and TC/TM/AOS frames: every header field, the CLCW, the FECF and
  BCH checks (on good and on damaged units), and the Space Packets it hands to
  ``ccsds``, reassembled across frames.

These tests need tshark. Without it they FAIL and say how to install it (`make
test` installs it when it runs as root): a skipped check would look like a pass.
Each tshark run costs about a second, so the units are batched into a few
captures, one tshark run each (module-scoped fixtures).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from linkstack.capture.pcap import PcapCapture, read_units
from linkstack.ccsds.aos import AosConfig, AosFrame, AosMasterChannel, AosReceiver, mpdu_unpack
from linkstack.ccsds.coding.chains import CaduCoding, CaduTransmitter, CltuTransmitter
from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.commands import SetVr, Unlock
from linkstack.ccsds.spp import IDLE_APID, SequenceCounter, SpacePacket, parse_primary_header
from linkstack.ccsds.tc import TcConfig, TcFrame, TcFrameType, TcReceiver, TcVirtualChannel
from linkstack.ccsds.tm import TmConfig, TmFrame, TmMasterChannel, TmReceiver

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT / "wireshark" / "linkstack.lua"
EPOCH = datetime(2025, 6, 1, 8, 30, 0, tzinfo=UTC)
GROUND, SAT, SAT2 = "ground:Svalbard", "sat:CS-01", "sat:CS-02"

INSTALL_HINT = (
    "tshark (Wireshark's command-line dissector) is not installed, and these checks run "
    "it. Install it: `sudo apt-get install tshark` on Debian/Ubuntu (`make test` does it "
    "by itself when run as root), `dnf install wireshark-cli` on Fedora, `brew install "
    "wireshark` on macOS; then run the tests again."
)


def tshark(*args: str, home: Path) -> str:
    """Run tshark with a clean personal configuration (no plugins or preferences of
    the user's); fail loudly if it is missing, errs, or the Lua script errs."""
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    proc = subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert proc.returncode == 0, f"tshark {' '.join(args)} failed:\n{proc.stderr}"
    assert "Lua" not in proc.stderr or "Error" not in proc.stderr, proc.stderr
    return proc.stdout


def fields(pcap: Path, names: list[str], *options: str, home: Path) -> dict[int, dict]:
    """{frame number: {field: [values]}} for every frame of ``pcap``."""
    args = ["-r", str(pcap), *options, "-T", "fields", "-E", "occurrence=a"]
    args += ["-E", "aggregator=|", "-e", "frame.number"]
    for name in names:
        args += ["-e", name]
    out = {}
    for line in tshark(*args, home=home).splitlines():
        cols = line.split("\t")
        out[int(cols[0])] = {
            name: (col.split("|") if col else []) for name, col in zip(names, cols[1:], strict=True)
        }
    return out


def json_fields(pcap: Path, names: list[str], *options: str, home: Path) -> dict[int, dict]:
    """As :func:`fields`, read from tshark's JSON: a field's value may hold new lines
    (a message's text), which would break the lines of ``-T fields``."""
    args = ["-r", str(pcap), *options, "-T", "json", "-e", "frame.number"]
    for name in names:
        args += ["-e", name]
    out = {}
    for packet in json.loads(tshark(*args, home=home)):
        layers = packet["_source"]["layers"]
        out[int(layers["frame.number"][0])] = {name: layers.get(name, []) for name in names}
    return out


@dataclass
class Expect:
    """What one unit must decode to: its frame number (the last fragment's) and the
    values of fields, as tshark prints them (lists: every occurrence, in order)."""

    what: str
    frame: int = 0
    values: dict[str, list[str]] = field(default_factory=dict)
    # (apid, sequence count, data length field) of the non-idle packets; None: not checked
    packets: list[tuple[int, int, int]] | None = field(default_factory=list)


class Scenario:
    """A capture being written, and what each of its units must decode to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cap = PcapCapture(path, EPOCH)
        self.expects: list[Expect] = []
        self.t_s = 0.0

    def add(self, layer: str, src: str, dst: str, data: bytes, expect: Expect) -> None:
        self.t_s += 0.001
        self.cap.unit(layer, self.t_s, src, dst, data)
        expect.frame = self.cap.stats["frames"]  # the frame that completes the unit
        self.expects.append(expect)

    def close(self) -> None:
        self.cap.close()


def _s(*values: object) -> list[str]:
    return [str(int(v)) for v in values]


def _packets_of(raw_packets: list[bytes]) -> list[tuple[int, int, int]]:
    out = []
    for p in raw_packets:
        h = parse_primary_header(p)
        out.append((h.apid, h.seq_count, h.data_length_field))
    return out


# linkstack's message APIDs (queries, answers, relay envelopes): the Lua dissector reads
# their packets as CBOR messages, and flags random octets there as malformed
MESSAGE_APIDS = (0x100, 0x101, 0x102)


def _apid(rng: random.Random) -> int:
    """An APID that Wireshark's ccsds dissector keeps (it hands APID 0 to its AMP
    dissector and 2045 to CFDP, which take random octets for malformed units), and
    that is not one of linkstack's message APIDs."""
    return rng.choice([a for a in range(1, 2047) if a != 2045 and a not in MESSAGE_APIDS])


def _random_packets(rng: random.Random, counter: SequenceCounter, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        apid = _apid(rng)
        size = rng.choice([10, 40, 300, 900, 1500, 2600])
        out.append(SpacePacket(apid, rng.randbytes(size), seq_count=counter.next(apid)).pack())
    return out


# -- expected values, from linkstack's own decoders -------------------------------------


def _tm_expect(what: str, raw: bytes, rx: TmReceiver) -> Expect:
    f = TmFrame.unpack(raw)
    got = rx.receive(raw)
    v = {
        "linkstack.tm.version": ["0"],
        "linkstack.tm.scid": _s(f.scid),
        "linkstack.tm.vcid": _s(f.vcid),
        "linkstack.tm.ocf_flag": _s(f.ocf is not None),
        "linkstack.tm.mc_count": _s(f.mc_count),
        "linkstack.tm.vc_count": _s(f.vc_count),
        "linkstack.tm.sec_hdr_flag": _s(f.secondary_header is not None),
        "linkstack.tm.sync_flag": ["0"],
        "linkstack.tm.fhp": _s(f.fhp),
        "linkstack.tm.fecf.status": ["1"],
    }
    if f.secondary_header is not None:
        v["linkstack.tm.sec.length"] = _s(len(f.secondary_header))
        v["linkstack.tm.sec.data"] = [f.secondary_header.hex()]
    if f.ocf is not None:
        c = Clcw.unpack(f.ocf)
        v["linkstack.clcw.report_value"] = _s(c.report_value)
        v["linkstack.clcw.vcid"] = _s(c.vcid)
        v["linkstack.clcw.retransmit"] = _s(c.retransmit)
        v["linkstack.clcw.lockout"] = _s(c.lockout)
        v["linkstack.clcw.wait"] = _s(c.wait)
        v["linkstack.clcw.farm_b"] = _s(c.farm_b_counter)
        v["linkstack.clcw.cop"] = ["1"]
    assert got is not None
    return Expect(what, values=v, packets=_packets_of(got.packets))


def _aos_expect(what: str, raw: bytes, cfg: AosConfig, rx: AosReceiver) -> Expect:
    f = AosFrame.unpack(raw, cfg)
    got = rx.receive(raw)
    v = {
        "linkstack.aos.version": ["1"],
        "linkstack.aos.scid": _s(f.scid),
        "linkstack.aos.vcid": _s(f.vcid),
        "linkstack.aos.vc_count": _s(f.vc_count),
        "linkstack.aos.replay": _s(f.replay),
        "linkstack.aos.count_usage": _s(f.count_cycle is not None),
        "linkstack.aos.count_cycle": _s(f.count_cycle or 0),
        "linkstack.aos.fecf.status": ["1"],
    }
    if f.vcid != 63:
        v["linkstack.aos.mpdu.fhp"] = _s(mpdu_unpack(f.data)[0])
    else:
        v["linkstack.aos.mpdu.fhp"] = []
    if cfg.insert_zone_len:
        v["linkstack.aos.insert_zone"] = [f.insert_zone.hex()]
    if f.ocf is not None:
        c = Clcw.unpack(f.ocf)
        v["linkstack.clcw.report_value"] = _s(c.report_value)
        v["linkstack.clcw.vcid"] = _s(c.vcid)
    assert got is not None
    return Expect(what, values=v, packets=_packets_of(got.packets))


def _tc_expect(what: str, raw: bytes, rx: TcReceiver, in_sequence: bool = True) -> Expect:
    f = TcFrame.unpack(raw)
    v = {
        "linkstack.tc.version": ["0"],
        "linkstack.tc.bypass": _s(f.frame_type.bypass),
        "linkstack.tc.control_command": _s(f.frame_type.control_command),
        "linkstack.tc.scid": _s(f.scid),
        "linkstack.tc.vcid": _s(f.vcid),
        "linkstack.tc.length": _s(len(raw) - 1),
        "linkstack.tc.ns": _s(f.seq),
        "linkstack.tc.type": [f.frame_type.name],
        "linkstack.tc.fecf.status": ["1"],
    }
    if f.frame_type is TcFrameType.BC:
        v["linkstack.tc.cc.code"] = ["0x82" if f.data[0] == 0x82 else "0x00"]
        v["linkstack.tc.cc.vr"] = _s(f.data[2]) if f.data[0] == 0x82 else []
        v["linkstack.tc.seg.map_id"] = []
    else:
        v["linkstack.tc.seg.map_id"] = _s(f.map_id)
        v["linkstack.tc.seg.seq_flags"] = _s(f.seq_flags)
        v["linkstack.tc.in_sequence"] = _s(in_sequence)
    packets = [p.packet for p in rx.receive(raw)]
    return Expect(what, values=v, packets=_packets_of(packets))


def _cltu_expect(tc: Expect, frame_len: int) -> Expect:
    blocks = -(-frame_len // 7)
    v = dict(tc.values)
    v["linkstack.cltu.start"] = ["0xeb90"]
    v["linkstack.cltu.codeblocks"] = _s(blocks)
    v["linkstack.cltu.bch_errors"] = ["0"]
    v["linkstack.cltu.refused"] = ["0"]
    v["linkstack.cltu.codeblock.parity_ok"] = ["1"] * blocks
    v["linkstack.cltu.codeblock.status"] = ["0"] * blocks
    v["linkstack.cltu.tail"] = ["c5c5c5c5c5c5c579"]
    return Expect("CLTU of " + tc.what, values=v, packets=tc.packets)


def _cadu_expect(inner: Expect, frame_len: int, check: int) -> Expect:
    v = dict(inner.values)
    v["linkstack.cadu.asm"] = ["0x1acffc1d"]
    v["linkstack.cadu.asm_errors"] = ["0"]
    v["linkstack.cadu.frame_length"] = _s(frame_len)
    v["linkstack.cadu.rs_check_octets"] = _s(check)
    return Expect("CADU of " + inner.what, values=v, packets=inner.packets)


# -- the scenarios ---------------------------------------------------------------------------


def _tm_frames(rng: random.Random, cfg: TmConfig, vcids: tuple[int, ...], n: int) -> list[bytes]:
    mc = TmMasterChannel(cfg, vcids=vcids)
    counter = SequenceCounter()
    for pkt in _random_packets(rng, counter, n):
        mc.push(rng.choice(vcids), pkt)
    mc.flush()
    frames = []
    for k in range(1000):
        if cfg.ocf:
            mc.ocf = Clcw(
                vcid=k % 64,
                report_value=(37 * k) % 256,
                retransmit=k % 2 == 1,
                wait=k % 5 == 0,
                lockout=k % 7 == 3,
                farm_b_counter=k % 4,
            ).pack()
        if cfg.secondary_header_len:
            mc.secondary_header = bytes([k % 256, 0xA5, 0x5A, 0x01])
        frame = mc.next_data_frame()
        if frame is None:
            break
        frames.append(frame)
    frames.append(mc.idle_frame())
    return frames


def _aos_frames(rng: random.Random, cfg: AosConfig, vcids: tuple[int, ...], n: int) -> list[bytes]:
    mc = AosMasterChannel(cfg, vcids=vcids)
    counter = SequenceCounter()
    for pkt in _random_packets(rng, counter, n):
        mc.push(rng.choice(vcids), pkt)
    mc.flush()
    frames = []
    for k in range(1000):
        if cfg.ocf:
            mc.ocf = Clcw(vcid=3, report_value=(11 * k) % 256).pack()
        if cfg.insert_zone_len:
            mc.insert_zone = bytes([k % 256, 0xEE])
        frame = mc.next_data_frame()
        if frame is None:
            break
        frames.append(frame)
    frames.append(mc.idle_frame())
    return frames


def _tc_frames(rng: random.Random, cfg: TcConfig) -> list[tuple[bytes, bool]]:
    """(frame, in sequence) of AD frames (blocked, segmented, unsegmented), BD frames,
    BC control commands, and an AD retransmission."""
    counter = SequenceCounter()

    def pkt(size: int) -> bytes:
        apid = _apid(rng)
        return SpacePacket(apid, rng.randbytes(size), seq_count=counter.next(apid)).pack()

    vc1, vc2 = TcVirtualChannel(cfg, 1), TcVirtualChannel(cfg, 2)
    ad = vc1.frames([pkt(20), pkt(30), pkt(40)], map_id=0)  # blocked into one frame
    ad += vc1.frames([pkt(2500)], map_id=5)  # first, continuation, last
    ad += vc1.frames([pkt(100)], map_id=2)
    ad += vc1.frames([pkt(1500), pkt(12)], map_id=5)  # a packet segmented, then one whole
    bd = vc2.frames([pkt(60), pkt(1200)], map_id=1, frame_type=TcFrameType.BD)
    bc = [
        TcFrame(cfg.scid, 3, Unlock().pack(), TcFrameType.BC),
        TcFrame(cfg.scid, 3, SetVr(200).pack(), TcFrameType.BC),
    ]
    out = [(f.pack(), True) for f in [*ad, *bd, *bc]]
    out.append((ad[0].pack(), False))  # COP-1 retransmits N(S) 0: out of sequence now
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tshark-home")


@pytest.fixture(scope="module")
def linked(tmp_path_factory) -> Scenario:
    """Good units of every layer, default managed parameters (capture A)."""
    rng = random.Random(2025)
    sc = Scenario(tmp_path_factory.mktemp("ws") / "linked.pcap")
    # TM frames with a secondary header and a CLCW, on their own and in CADUs
    cfg = TmConfig(scid=42, ocf=True, secondary_header_len=4)
    frames = _tm_frames(rng, cfg, (0, 1, 3), 30)
    rx = TmReceiver(cfg)
    tm = [_tm_expect(f"TM frame {i}", fr, rx) for i, fr in enumerate(frames)]
    for fr, ex in zip(frames, tm, strict=True):
        sc.add("tm_frame", SAT, GROUND, fr, ex)
    for cadu, ex in zip(CaduTransmitter(cfg.frame_length).cadus(frames), tm, strict=True):
        sc.add("tm_cadu", SAT, GROUND, cadu, _cadu_expect(ex, cfg.frame_length, 160))
    # CADUs of other codes: the dissector finds the frame length from the FECF
    for scid, length, coding, check in [
        (43, 478, CaduCoding(rs_e=8, rs_depth=2), 32),
        (44, 300, CaduCoding(rs_e=None), 0),
        (45, 223, CaduCoding(rs_e=16, rs_depth=1), 32),
    ]:
        cfg = TmConfig(scid=scid, frame_length=length)
        frames = _tm_frames(rng, cfg, (2,), 4)
        rx = TmReceiver(cfg)
        tx = CaduTransmitter(length, coding)
        for i, fr in enumerate(frames):
            ex = _tm_expect(f"TM frame {i} of SCID {scid}", fr, rx)
            sc.add("tm_cadu", SAT2, GROUND, tx.cadu(fr), _cadu_expect(ex, length, check))
    # TC frames, on their own and in CLTUs (TC randomizer on, as by default)
    cfg = TcConfig(scid=0x2F6)
    rx, rx_cltu = TcReceiver(cfg), TcReceiver(cfg)
    tc_frames = _tc_frames(rng, cfg)
    for i, (fr, in_seq) in enumerate(tc_frames):
        sc.add("tc_frame", GROUND, SAT, fr, _tc_expect(f"TC frame {i}", fr, rx, in_seq))
    cltu = CltuTransmitter()
    for i, (fr, in_seq) in enumerate(tc_frames):
        ex = _tc_expect(f"TC frame {i}", fr, rx_cltu, in_seq)
        sc.add("cltu", GROUND, SAT, cltu.cltu(fr), _cltu_expect(ex, len(fr)))
    # AOS frames (laser link), on their own and in CADUs
    cfg = AosConfig(scid=9)
    frames = _aos_frames(rng, cfg, (2, 5), 25)
    rx = AosReceiver(cfg)
    aos = [_aos_expect(f"AOS frame {i}", fr, cfg, rx) for i, fr in enumerate(frames)]
    for fr, ex in zip(frames, aos, strict=True):
        sc.add("aos_frame", SAT, SAT2, fr, ex)
    for cadu, ex in zip(CaduTransmitter(cfg.frame_length).cadus(frames), aos, strict=True):
        sc.add("aos_cadu", SAT, SAT2, cadu, _cadu_expect(ex, cfg.frame_length, 160))
    sc.close()
    return sc


ALL_FIELDS = sorted(
    {
        "linkstack.tm.version",
        "linkstack.tm.scid",
        "linkstack.tm.vcid",
        "linkstack.tm.ocf_flag",
        "linkstack.tm.mc_count",
        "linkstack.tm.vc_count",
        "linkstack.tm.sec_hdr_flag",
        "linkstack.tm.sync_flag",
        "linkstack.tm.fhp",
        "linkstack.tm.sec.length",
        "linkstack.tm.sec.data",
        "linkstack.tm.fecf.status",
        "linkstack.clcw.report_value",
        "linkstack.clcw.vcid",
        "linkstack.clcw.retransmit",
        "linkstack.clcw.lockout",
        "linkstack.clcw.wait",
        "linkstack.clcw.farm_b",
        "linkstack.clcw.cop",
        "linkstack.aos.version",
        "linkstack.aos.scid",
        "linkstack.aos.vcid",
        "linkstack.aos.vc_count",
        "linkstack.aos.replay",
        "linkstack.aos.count_usage",
        "linkstack.aos.count_cycle",
        "linkstack.aos.mpdu.fhp",
        "linkstack.aos.insert_zone",
        "linkstack.aos.fecf.status",
        "linkstack.tc.version",
        "linkstack.tc.bypass",
        "linkstack.tc.control_command",
        "linkstack.tc.scid",
        "linkstack.tc.vcid",
        "linkstack.tc.length",
        "linkstack.tc.ns",
        "linkstack.tc.type",
        "linkstack.tc.seg.map_id",
        "linkstack.tc.seg.seq_flags",
        "linkstack.tc.in_sequence",
        "linkstack.tc.cc.code",
        "linkstack.tc.cc.vr",
        "linkstack.tc.fecf.status",
        "linkstack.cltu.start",
        "linkstack.cltu.codeblocks",
        "linkstack.cltu.bch_errors",
        "linkstack.cltu.refused",
        "linkstack.cltu.codeblock.parity_ok",
        "linkstack.cltu.codeblock.status",
        "linkstack.cltu.tail",
        "linkstack.cadu.asm",
        "linkstack.cadu.asm_errors",
        "linkstack.cadu.frame_length",
        "linkstack.cadu.rs_check_octets",
    }
)
PACKET_FIELDS = ["ccsds.apid", "ccsds.seqnum", "ccsds.length", "_ws.expert.message"]


def _check(sc: Scenario, decoded: dict[int, dict]) -> None:
    problems = []
    for ex in sc.expects:
        got = decoded[ex.frame]
        for name, want in ex.values.items():
            if got[name] != want:
                problems.append(f"{ex.what} (frame {ex.frame}): {name} = {got[name]}, want {want}")
        packets = [
            (int(a), int(s), int(n))
            for a, s, n in zip(
                got["ccsds.apid"], got["ccsds.seqnum"], got["ccsds.length"], strict=True
            )
            if int(a) != IDLE_APID
        ]
        if ex.packets is not None and packets != ex.packets:
            problems.append(f"{ex.what} (frame {ex.frame}): packets {packets}, want {ex.packets}")
    assert not problems, "\n".join(problems[:40])


@pytest.mark.parametrize("passes", [[], ["-2"]], ids=["one-pass", "two-pass"])
def test_lua_dissector_decodes_every_field_of_good_units(linked, home, passes):
    # two passes, as the Wireshark GUI does: the second reads the reassembly state
    # that the first one kept, frame by frame
    decoded = fields(
        linked.path, ALL_FIELDS + PACKET_FIELDS, *passes, "-X", f"lua_script:{LUA}", home=home
    )
    assert len(decoded) == linked.cap.stats["frames"]
    _check(linked, decoded)
    kinds = {ex.what.split(" ")[0] for ex in linked.expects}
    assert kinds == {"TM", "CADU", "TC", "CLTU", "AOS"}
    # the scenario exercised what it means to: packets across frames, TC segments,
    # every TC frame type, retransmissions, idle frames
    assert sum(len(ex.packets) for ex in linked.expects) > 100
    tc_types = {v for ex in linked.expects for v in ex.values.get("linkstack.tc.type", [])}
    assert tc_types == {"AD", "BD", "BC"}
    assert any(ex.values.get("linkstack.tc.in_sequence") == ["0"] for ex in linked.expects)
    assert any(ex.values.get("linkstack.tc.seg.seq_flags") == ["0"] for ex in linked.expects)
    assert any(ex.values.get("linkstack.tm.fhp") == ["2047"] for ex in linked.expects)
    assert any(ex.values.get("linkstack.aos.vcid") == ["63"] for ex in linked.expects)
    # nothing was refused or went wrong on good units; the retransmissions are noted
    retransmissions = {
        ex.frame for ex in linked.expects if ex.values.get("linkstack.tc.in_sequence") == ["0"]
    }
    for number, frame in decoded.items():
        want = (
            [
                "N(S) out of sequence (a retransmission, or frames missing before it): "
                "not taken into reassembly"
            ]
            if number in retransmissions
            else []
        )
        assert frame["_ws.expert.message"] == want, number


# -- damaged units, and AOS with an OCF and an insert zone (capture B) --------------------------


def _flip(unit: bytes, *bits: int) -> bytes:
    buf = bytearray(unit)
    for b in bits:
        buf[b // 8] ^= 0x80 >> (b % 8)
    return bytes(buf)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Scenario:
    rng = random.Random(7)
    sc = Scenario(tmp_path_factory.mktemp("ws") / "damaged.pcap")
    cfg = AosConfig(scid=200, ocf=True, insert_zone_len=2)
    frames = _aos_frames(rng, cfg, (1,), 8)
    rx = AosReceiver(cfg)
    for i, fr in enumerate(frames):
        sc.add("aos_frame", SAT, SAT2, fr, _aos_expect(f"AOS+OCF frame {i}", fr, cfg, rx))
    bad_aos = _flip(frames[0], 8 * 100 + 3)
    sc.add(
        "aos_frame",
        SAT,
        SAT2,
        bad_aos,
        Expect(
            "AOS frame, one bit flipped", packets=None, values={"linkstack.aos.fecf.status": ["0"]}
        ),
    )

    tm_cfg = TmConfig(scid=77, ocf=True)
    tm = _tm_frames(rng, tm_cfg, (0,), 6)
    sc.add(
        "tm_frame",
        SAT,
        GROUND,
        _flip(tm[1], 8 * 500),
        Expect(
            "TM frame, one bit flipped", packets=None, values={"linkstack.tm.fecf.status": ["0"]}
        ),
    )
    cadus = CaduTransmitter(1115).cadus(tm)
    sc.add(
        "tm_cadu",
        SAT,
        GROUND,
        _flip(cadus[2], 32 + 8 * 300 + 1),  # in the frame: no code length makes the FECF match
        Expect(
            "TM CADU, one bit flipped in the frame",
            packets=None,
            values={
                "linkstack.tm.fecf.status": ["0"],
                "linkstack.cadu.frame_length": ["1115"],
                "linkstack.tm.scid": ["77"],
            },
        ),
    )
    sc.add(
        "tm_cadu",
        SAT,
        GROUND,
        _flip(cadus[3], 0, 9, 31),
        Expect(
            "TM CADU, three ASM bits flipped",
            packets=None,
            values={"linkstack.cadu.asm_errors": ["3"], "linkstack.tm.fecf.status": ["1"]},
        ),
    )

    tc = TcFrame(0x2F6, 4, bytes(range(60)), TcFrameType.BD, 0, 1).pack()  # 68 octets
    blocks = 10
    sc.add(
        "tc_frame",
        GROUND,
        SAT,
        _flip(tc, 8 * 20 + 5),
        Expect(
            "TC frame, one bit flipped", packets=None, values={"linkstack.tc.fecf.status": ["0"]}
        ),
    )
    cltu = CltuTransmitter().cltu(tc)

    def block_bit(block: int, bit: int) -> int:  # a bit of codeblock `block` (0-based)
        return 16 + 64 * block + bit

    cases = [
        ("one information bit wrong in codeblock 3", [block_bit(2, 13)], 2, "1", "0", "1"),
        ("a parity bit wrong in codeblock 5", [block_bit(4, 60)], 4, "1", "0", "1"),
        ("the filler bit set in codeblock 2", [block_bit(1, 63)], 1, "1", "1", "1"),
        ("two bits wrong in codeblock 4", [block_bit(3, 2), block_bit(3, 40)], 3, "2", "0", "0"),
    ]
    for what, bits, index, status, parity_ok, fecf_ok in cases:
        statuses = ["0"] * blocks
        statuses[index] = status
        oks = ["1"] * blocks
        oks[index] = parity_ok
        sc.add(
            "cltu",
            GROUND,
            SAT,
            _flip(cltu, *bits),
            Expect(
                "CLTU, " + what,
                packets=None,
                values={
                    "linkstack.cltu.codeblocks": [str(blocks)],
                    "linkstack.cltu.codeblock.status": statuses,
                    "linkstack.cltu.codeblock.parity_ok": oks,
                    "linkstack.cltu.bch_errors": ["1" if parity_ok == "0" else "0"],
                    "linkstack.cltu.refused": ["1" if status == "2" else "0"],
                    "linkstack.tc.fecf.status": [fecf_ok],
                    "linkstack.tc.vcid": ["4"],
                },
            ),
        )
    sc.close()
    return sc


def test_lua_dissector_flags_damaged_units_and_reads_aos_ocf(damaged, home):
    decoded = fields(
        damaged.path,
        ALL_FIELDS + PACKET_FIELDS,
        "-X",
        f"lua_script:{LUA}",
        "-o",
        "linkstack.aos.ocf:TRUE",
        "-o",
        "linkstack.aos.insert_zone:2",
        home=home,
    )
    bad = [ex for ex in damaged.expects if ex.packets is None]
    _check(damaged, decoded)
    messages = {
        ex.what: decoded[ex.frame]["_ws.expert.message"] for ex in damaged.expects if ex in bad
    }
    assert "FECF does not match the frame" in messages["AOS frame, one bit flipped"]
    assert "FECF does not match the frame" in messages["TM frame, one bit flipped"]
    assert "ASM differs from 1ACFFC1D" in messages["TM CADU, three ASM bits flipped"]
    refused = messages["CLTU, two bits wrong in codeblock 4"]
    assert "BCH codeblock refused" in refused and "FECF does not match the frame" in refused
    corrected = messages["CLTU, one information bit wrong in codeblock 3"]
    assert corrected == ["BCH codeblock with one wrong bit (corrected)"]
    good = [ex for ex in damaged.expects if ex not in bad]
    assert len(good) >= 5 and all(decoded[ex.frame]["_ws.expert.message"] == [] for ex in good)


# -- Space Packets, decoded by Wireshark's own ccsds dissector (capture C) ----------------------


@pytest.fixture(scope="module")
def packets(tmp_path_factory) -> tuple[Path, list[tuple[float, SpacePacket]]]:
    rng = random.Random(11)
    path = tmp_path_factory.mktemp("ws") / "packets.pcap"
    counter = SequenceCounter()
    sent = []
    sizes = [10, 11, 100, 1000, 1465, 1466, 4000, 10_000, 30_000, 65_501]
    with PcapCapture(path, EPOCH) as cap:
        for i, size in enumerate(sizes * 2):
            apid = _apid(rng)
            pkt = SpacePacket(apid, rng.randbytes(size), seq_count=counter.next(apid))
            t_s = 1000.0 + i * 0.123457 + rng.random() * 1e-3
            src, dst = (GROUND, SAT) if i % 2 else (SAT, GROUND)
            cap.unit("space_packet", t_s, src, dst, pkt.pack())
            sent.append((t_s, pkt))
        timed = SpacePacket.timed(0x321, b"time-tagged payload", 1.5e9, seq_count=5)
        cap.unit("space_packet", 2000.0, SAT, GROUND, timed.pack())
        sent.append((2000.0, timed))
    return path, sent


def test_ccsds_dissector_decodes_space_packets(packets, home):
    path, sent = packets
    out = tshark(
        "-r",
        str(path),
        "-d",
        "udp.port==47020,ccsds",
        "-Y",
        "ccsds",
        "-T",
        "fields",
        "-e",
        "ccsds.apid",
        "-e",
        "ccsds.seqnum",
        "-e",
        "ccsds.length",
        "-e",
        "ccsds.secheader",
        "-e",
        "frame.time_epoch",
        "-e",
        "ip.src",
        home=home,
    )
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(sent)  # every packet, the 65,507-octet one too, reassembled
    names = {v: k for k, v in _ips(path).items()}
    for row, (t_s, pkt) in zip(rows, sent, strict=True):
        apid, seq, length, sec, epoch_s, src = row
        assert (int(apid), int(seq), int(length)) == (pkt.apid, pkt.seq_count, pkt.length - 7)
        assert sec in (("1", "True") if pkt.sec_header_flag else ("0", "False"))
        want = EPOCH.timestamp() + round(t_s * 1e6) / 1e6
        assert abs(float(epoch_s) - want) < 5e-7, (epoch_s, want)  # to the microsecond
        assert names[src] in (GROUND, SAT)
    # the reader gets the same packets back
    assert [u.data for u in read_units(path)] == [p.pack() for _, p in sent]


def _ips(path: Path) -> dict[str, str]:
    doc = json.loads(Path(str(path) + ".nodes.json").read_text())
    return {n["name"]: n["ip"] for n in doc["nodes"]}


def test_lua_script_registers_the_space_packet_port(packets, home):
    path, sent = packets
    out = tshark(
        "-r", str(path), "-X", f"lua_script:{LUA}", "-T", "fields", "-e", "ccsds.apid", home=home
    )
    apids = [int(line) for line in out.splitlines() if line]
    assert apids == [p.apid for _, p in sent]


# -- junk: the dissector must refuse, never break (capture D) ------------------------------------


@pytest.fixture(scope="module")
def junk(tmp_path_factory, linked) -> Path:
    """Damaged and random units on every port, real units on the wrong ports."""
    rng = random.Random(99)
    good = list(read_units(linked.path))
    path = tmp_path_factory.mktemp("ws") / "junk.pcap"
    layers = sorted({u.layer for u in good} | {"space_packet"})
    with PcapCapture(path, EPOCH) as cap:
        for i in range(2500):
            unit = bytearray(rng.choice(good).data)
            how = rng.randrange(6)
            if how == 0:
                unit = bytearray(rng.randbytes(rng.randrange(1, 80)))
            elif how == 1:
                for _ in range(rng.randrange(1, 9)):
                    unit[rng.randrange(len(unit))] ^= 1 << rng.randrange(8)
            elif how == 2:
                del unit[rng.randrange(1, len(unit) + 1) :]
            elif how == 3:
                for k in range(min(len(unit), 12)):
                    if rng.random() < 0.5:
                        unit[k] = rng.randrange(256)
            elif how == 4:
                unit += rng.randbytes(rng.randrange(1, 30))
            cap.unit(rng.choice(layers), i * 0.001, SAT, GROUND, bytes(unit))
    return path


@pytest.mark.parametrize(
    "options",
    [
        [],
        [
            *("-o", "linkstack.tm.fecf:FALSE", "-o", "linkstack.tc.fecf:FALSE"),
            *("-o", "linkstack.tc.segment_header:FALSE", "-o", "linkstack.aos.ocf:TRUE"),
            *("-o", "linkstack.aos.insert_zone:700", "-o", "linkstack.cadu.rs_check:256"),
            *("-o", "linkstack.cadu.randomized:FALSE", "-o", "linkstack.cltu.randomized:FALSE"),
        ],
    ],
    ids=["default-preferences", "other-preferences"],
)
def test_lua_dissector_survives_junk(junk, home, options):
    decoded = fields(junk, ["_ws.expert.message"], "-X", f"lua_script:{LUA}", *options, home=home)
    messages = [m for frame in decoded.values() for m in frame["_ws.expert.message"]]
    assert not [m for m in messages if "Lua" in m], "the Lua dissector raised errors"
    assert "FECF does not match the frame" in messages or options  # damage was seen
    assert "BCH codeblock refused" in messages
