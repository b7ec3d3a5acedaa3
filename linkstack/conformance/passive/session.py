"""The good session behind the conformance captures: a short scripted exchange over
linkstack's channels (the ``linkstack`` profile), and the writer of a capture of it.

:func:`build` makes the session with the project's own codecs and a real FARM-1, as
:class:`Record` s in the order they are sent:

- ground:Svalbard -> sat:CS-01 (SCID 0x40): a Set V(R) to 250, then Type-AD frames in
  CLTUs (TC randomizer, BCH): two packets blocked in one frame, a packet segmented
  over two frames, N(S) wrapping 255 -> 0; one frame lost on the way (FARM-1 reports
  Retransmit) and the unacknowledged frames retransmitted; a Type-BD frame carrying a
  housekeeping packet time-stamped with a CUC (301.0-B-4) in its secondary header; a
  Lockout (caused by a frame that is not in the capture), an Unlock after it, and
  Type-AD frames again once FARM-1 reports it cleared;
- sat:CS-01 -> ground: TM frames every few hundred ms with FARM-1's CLCW in the OCF,
  answers in packets that span frames and end in an idle packet, idle frames on VC 7,
  the master, virtual and idle channel counts wrapping; CADUs with RS(255,223) I=5,
  randomized, behind the ASM;
- sat:CS-01 -> sat:CS-02: AOS frames of relayed packets (the VC count passing 2^24,
  into the count cycle) and an idle frame on VC 63;
- every Space Packet also on the packet port when it is handed to the framing layer.

``build(sdls=True)`` makes the same session under SDLS (355.0-B-2; the ``sdls.toml``
profile of the broken captures, :data:`SDLS_SAS` with the public test keys
:data:`SDLS_KEYS`): the frames are built shorter by each association's overhead and
protected as they are sent (every retransmission afresh), TC authenticated-encrypted
on VC 0 (AES-256-GCM, the IV its counter), TM authenticated only (AES-CMAC, a sequence
number and a pad length field), AOS authenticated-encrypted.

:func:`write` puts records in a capture, each frame after its carrier (a CLTU or a
CADU encoded from it, unless the record brings its own). :mod:`.broken` makes the
deliberately broken captures from the session; ``linkstack fuzz`` feeds the checker
damaged windows of it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from linkstack.capture.pcap import PcapCapture
from linkstack.ccsds.aos import AosConfig, AosMasterChannel
from linkstack.ccsds.coding.chains import CaduTransmitter
from linkstack.ccsds.coding.cltu import encode_cltu
from linkstack.ccsds.cop1.commands import SetVr, Unlock
from linkstack.ccsds.cop1.farm import Farm
from linkstack.ccsds.cuc import CucFormat
from linkstack.ccsds.sdls import FrameSecurity, Keyring, SaCounters, SecurityAssociation
from linkstack.ccsds.spp import PacketType, SequenceCounter, SpacePacket, segment
from linkstack.ccsds.tc import TcConfig, TcFrame, TcFrameType, TcVirtualChannel
from linkstack.ccsds.tm import TmConfig, TmMasterChannel

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
GROUND = "ground:Svalbard"
SAT = "sat:CS-01"
PEER = "sat:CS-02"
SCID = 0x40
FRAME_LEN = 1115
QUERY_APID, ANSWER_APID, RELAY_APID, HK_APID, EXTRA_APID = 0x100, 0x101, 0x102, 0x0F0, 0x0F1
NO_CARRIER = b""  # a Record's carrier: the frame is captured alone, on its frame port
TC_MAX_LEN = 1024

# SDLS: public test keys (this session's only: never a link's) and the associations
SDLS_KEYS = {kid: bytes(range(kid, kid + 32)) for kid in (1, 2, 3)}
SDLS_SAS = {
    "tc": SecurityAssociation(1, "aead", ecs="AES256_GCM", ekid=1, vcid=0),
    "tm": SecurityAssociation(2, "auth", acs="CMAC_AES256", akid=2, iv_len=0, sn_len=4, pad_len=1),
    "aos": SecurityAssociation(3, "aead", ecs="AES256_GCM", ekid=3),
}
SDLS_START = 0x5EED  # where every sender's counter starts

_CARRIER = {"tc": "cltu", "tm": "tm_cadu", "aos": "aos_cadu"}
_FRAME = {"tc": "tc_frame", "tm": "tm_frame", "aos": "aos_frame"}


@dataclass
class Record:
    """One unit of the session: a frame (written with its carrier, encoded from it
    unless ``carrier`` is given; :data:`NO_CARRIER`: alone) or a packet (``kind``
    "pkt")."""

    kind: str  # "tc", "tm", "aos", "pkt"
    t_s: float
    src: str
    dst: str
    data: bytes
    tag: str = ""
    carrier: bytes | None = None


@dataclass(frozen=True)
class Tweaks:
    """Faults that must be made before the packets are framed (they reach both the
    packet port and the frames)."""

    skip_seq_before: str | None = None  # the APID's counter skips a value before this packet
    packet: str | None = None  # the packet that ``edit`` rewrites
    edit: Callable[[bytes], bytes] | None = None


NO_TWEAKS = Tweaks()  # the good session itself


def payload(tag: str, n: int) -> bytes:
    return random.Random(f"linkstack-conformance:{tag}").randbytes(n)


def build(tweaks: Tweaks = NO_TWEAKS, *, sdls: bool = False) -> list[Record]:
    """The good session (with ``tweaks`` applied while it is built); ``sdls``: under
    SDLS (see the module docstring)."""
    recs: list[Record] = []
    farm = Farm(vcid=0, window_width=64)
    less = {k: sa.overhead if sdls else 0 for k, sa in SDLS_SAS.items()}
    tc_vc = TcVirtualChannel(TcConfig(scid=SCID, max_frame_length=TC_MAX_LEN - less["tc"]), 0)
    tm_config = TmConfig(frame_length=FRAME_LEN - less["tm"], scid=SCID, ocf=True)
    tm = TmMasterChannel(tm_config, vcids=(0,))
    tm.mc_count, tm.idle_vc_count = 250, 254
    tm.mux.vc(0).vc_count = 253
    aos_config = AosConfig(frame_length=FRAME_LEN - less["aos"], scid=SCID)
    aos = AosMasterChannel(aos_config, vcids=(0,))
    aos.mux.vc(0).vc_count = (1 << 24) - 2
    counters = {GROUND: SequenceCounter(), SAT: SequenceCounter(), PEER: SequenceCounter()}
    counters[GROUND].set(QUERY_APID, 16382)
    cuc = CucFormat()  # level 1 (TAI since 1958), 4 + 2 octets, with its P-field

    def packets(
        tag: str, apid: int, n: int, src: str, dst: str, t: float, time_stamp: bool = False
    ) -> list[bytes]:
        ptype = PacketType.TC if src == GROUND else PacketType.TM
        counter = counters[src] if dst != PEER else counters[PEER]
        out = []
        if time_stamp:
            stamp = cuc.encode_utc(EPOCH + timedelta(seconds=t))
            chunks = [SpacePacket(apid, payload(tag, n), ptype, 0, sec_header_flag=True,
                                  secondary_header=stamp)]  # fmt: skip
        else:
            chunks = segment(payload(tag, n), apid, SequenceCounter(), 1024, ptype)
        for i, chunk in enumerate(chunks):
            name = f"{tag}.{i}" if len(chunks) > 1 else tag
            if tweaks.skip_seq_before == name:
                counter.next(apid)
            raw = replace(chunk, seq_count=counter.next(apid)).pack()
            if tweaks.packet == name and tweaks.edit is not None:
                raw = tweaks.edit(raw)
            recs.append(Record("pkt", t, src, dst, raw, f"pkt:{name}"))
            out.append(raw)
        return out

    sent: dict[int, bytes] = {}  # the Type-AD frames sent, by N(S)

    def uplink(t: float, frame: TcFrame, tag: str, deliver: bool = True) -> bytes:
        raw = frame.pack()
        if frame.frame_type is TcFrameType.AD:
            sent[frame.seq] = raw
        recs.append(Record("tc", t, GROUND, SAT, raw, tag))
        if deliver:
            farm.receive(TcFrame.unpack(raw))
            farm.take()
        return raw

    def ad(t: float, pkts: list[bytes], tag: str, lost: tuple[int, ...] = ()) -> None:
        for i, frame in enumerate(tc_vc.frames(pkts, 0)):
            uplink(t + 0.01 * i, frame, f"{tag}#{i}", deliver=i not in lost)

    def downlink(t: float, tag: str, pkts: Sequence[bytes] = ()) -> None:
        tm.ocf = farm.clcw().pack()
        for p in pkts:
            tm.push(0, p)
        tm.flush()
        frames = tm.drain() or [tm.idle_frame()]
        for i, frame in enumerate(frames):
            recs.append(Record("tm", t + 0.001 * i, SAT, GROUND, frame, f"{tag}#{i}"))

    def relay(t: float, tag: str, pkts: list[bytes]) -> None:
        for p in pkts:
            aos.push(0, p)
        aos.flush()
        for i, frame in enumerate(aos.drain()):
            recs.append(Record("aos", t + 0.001 * i, SAT, PEER, frame, f"{tag}#{i}"))

    downlink(0.0, "tm:idle-a")
    uplink(0.05, TcFrame(SCID, 0, SetVr(250).pack(), TcFrameType.BC), "tc:set-vr")
    tc_vc.next_seq = 250
    downlink(0.2, "tm:idle-b")
    p1 = packets("P1", QUERY_APID, 200, GROUND, SAT, 0.3)
    p2 = packets("P2", QUERY_APID, 300, GROUND, SAT, 0.3)
    ad(0.3, p1 + p2, "tc:P1P2")  # N(S) 250: two packets blocked in one frame
    # N(S) 251..253: two packets, the first segmented over two frames; 252 is lost
    ad(0.32, packets("P3", QUERY_APID, 1500, GROUND, SAT, 0.32), "tc:P3", lost=(1,))
    ad(0.36, packets("P4", QUERY_APID, 100, GROUND, SAT, 0.36), "tc:P4")  # 254; FARM: E3
    downlink(0.4, "tm:retransmit")  # N(R) 252, Retransmit
    ns, k = farm.vr, 0
    while ns != tc_vc.next_seq:  # go-back-N: every unacknowledged frame again
        recs.append(Record("tc", 0.5 + 0.01 * k, GROUND, SAT, sent[ns], f"tc:rtx-{ns}"))
        farm.receive(TcFrame.unpack(sent[ns]))
        farm.take()
        ns, k = (ns + 1) % 256, k + 1
    ad(0.6, packets("P5", QUERY_APID, 120, GROUND, SAT, 0.6), "tc:P5")  # 255
    ad(0.62, packets("P6", QUERY_APID, 130, GROUND, SAT, 0.62), "tc:P6")  # 0
    ad(0.64, packets("P7", QUERY_APID, 140, GROUND, SAT, 0.64), "tc:P7")  # 1
    downlink(0.8, "tm:A1", packets("A1", ANSWER_APID, 3000, SAT, GROUND, 0.8))
    relay(1.0, "aos:M1", packets("M1", RELAY_APID, 2500, SAT, PEER, 1.0))
    downlink(1.2, "tm:idle-c")
    hk = packets("P8", HK_APID, 50, GROUND, SAT, 1.3, time_stamp=True)
    uplink(1.3, tc_vc.frames(hk, 0, TcFrameType.BD)[0], "tc:P8-bd")
    downlink(1.4, "tm:idle-d")
    relay(1.5, "aos:M2", packets("M2", RELAY_APID, 800, SAT, PEER, 1.5))
    recs.append(Record("aos", 1.6, SAT, PEER, aos.idle_frame(), "aos:idle"))
    farm.receive(TcFrame(SCID, 0, b"\x00", TcFrameType.AD, (farm.vr + 100) % 256))  # not captured
    downlink(2.2, "tm:lockout-a")
    downlink(2.6, "tm:lockout-b")
    uplink(3.5, TcFrame(SCID, 0, Unlock().pack(), TcFrameType.BC), "tc:unlock")
    downlink(3.7, "tm:cleared")
    tc_vc.next_seq = farm.vr
    ad(4.0, packets("P9", QUERY_APID, 150, GROUND, SAT, 4.0), "tc:P9")
    downlink(4.3, "tm:A2", packets("A2", ANSWER_APID, 700, SAT, GROUND, 4.3))
    downlink(4.5, "tm:idle-e")
    return protect(recs) if sdls else recs


def sdls_keys() -> Keyring:
    return Keyring.from_mapping(SDLS_KEYS)


def protect(records: list[Record]) -> list[Record]:
    """Every frame of ``records`` protected as its sender does, in the order sent (each
    of the three links has one sender, its counter counting from :data:`SDLS_START`)."""
    keys = sdls_keys()
    layouts: dict[str, dict[str, bool]] = {
        "tc": {"segment_header": True},
        "tm": {"ocf": True},
        "aos": {},
    }
    senders = {}
    for kind, sa in SDLS_SAS.items():
        senders[kind] = FrameSecurity(kind, [sa], keys, fecf=True, **layouts[kind])
        iv, sn = (SDLS_START if n else 0 for n in (sa.iv_len, sa.sn_len))
        senders[kind].set_send_counters(sa.spi, SaCounters(iv=iv, sn=sn))
    for r in records:
        if r.kind in senders:
            r.data = senders[r.kind].apply(r.data, SDLS_SAS[r.kind].spi)
    return records


# -- writing ---------------------------------------------------------------------------------------


def write(records: list[Record], path: str | Path | BinaryIO) -> list[tuple[str, str]]:
    """The records as a capture (and its side file, when ``path`` is a path), each frame
    after its carrier. Returns (tag, layer) of every unit written, in order: unit ``#i``
    of a report is entry ``i - 1``."""
    cadu = CaduTransmitter(FRAME_LEN)
    units: list[tuple[str, str]] = []
    target = path if hasattr(path, "write") else Path(path)
    with PcapCapture(target, EPOCH) as cap:
        for r in records:
            if r.kind == "pkt":
                cap.unit("space_packet", r.t_s, r.src, r.dst, r.data)
                units.append((r.tag, "space_packet"))
                continue
            carrier = r.carrier
            if carrier is None and r.kind == "tc":
                carrier = encode_cltu(r.data, randomize=True)
            elif carrier is None:
                carrier = cadu.cadu(r.data)
            if carrier != NO_CARRIER:
                cap.unit(_CARRIER[r.kind], r.t_s, r.src, r.dst, carrier)
                units.append((r.tag, _CARRIER[r.kind]))
            cap.unit(_FRAME[r.kind], r.t_s, r.src, r.dst, r.data)
            units.append((r.tag, _FRAME[r.kind]))
    return units
