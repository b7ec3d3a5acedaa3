"""A mission profile guessed from a recording (``linkstack replay --detect FILE``), sans-I/O.

Step by step, each found from the data and none assumed to be linkstack's:

1. **the units**: CADUs back to back (the ASM ``1ACFFC1D`` at a fixed period), a bit
   stream (the ASM at some bit offset, or inverted), or frames back to back (a header
   that repeats at a period, its frame count going up by one);
2. **the coding** of CADUs: randomized or not, Reed-Solomon E = 16 or 8 at depth 1-5 or 8
   in the dual or the conventional basis, or none: the first choice under which every
   codeword of the first CADUs decodes (a random block does not: an FECF is not needed);
3. **the frames**: TM or AOS by the version number; FECF when it checks on most frames;
   for AOS the insert zone and the OCF, the lengths under which the packet zones chain
   into packets best; the SCIDs and VCIDs seen;
4. **the packets**: one sequence counter per APID or one shared, whichever has fewer gaps.

The result (:class:`Detected`) prints as a profile (:meth:`Detected.toml`) to edit and
give back with ``--profile``. A pcap's units (CADUs or frames on linkstack's ports) are
detected the same way, from their data.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from linkstack.ccsds.aos import AosConfig, AosReceiver
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import IDLE_APID, SEQ_COUNT_MODULO, SpacePacket
from linkstack.ccsds.tm import TmConfig, TmReceiver
from linkstack.errors import ConfigError, DecodeError

ASM = bytes.fromhex("1acffc1d")
SAMPLE_UNITS = 64  # units looked at for the frames' parameters
CODING_UNITS = 4  # CADUs that must all decode under a coding
MAX_INSERT_ZONE = 32


@dataclass
class Detected:
    raw_unit: str = "cadu"
    downlink: str = "aos"
    frame_length: int = 0
    insert_zone_len: int = 0
    fecf: bool = False
    ocf: str = "none"
    secondary_header_len: int = 0
    count_cycle: bool = False
    rs_e: int = 0
    rs_depth: int = 1
    dual_basis: bool = True
    randomize: bool = False
    scids: list[int] = field(default_factory=list)
    vcids: list[int] = field(default_factory=list)
    packet_counter: str = "per_apid"
    evidence: list[str] = field(default_factory=list)

    def toml(self, name: str = "detected") -> str:
        b = "true" if self.fecf else "false"
        lines = [f"# linkstack replay --detect: {e}" for e in self.evidence]
        lines += [
            f'name = "{name}"',
            'description = "guessed by linkstack replay --detect: check before use"',
            "",
            "[mission]",
            f'downlink = "{self.downlink}"',
            f'raw_unit = "{self.raw_unit}"',
            "linkstack_apids = []  # another mission's: no packet read as a linkstack message",
            f'packet_counter = "{self.packet_counter}"',
            "",
            f"[{self.downlink}]",
            f"scids = {self.scids}",
            f"vcids = {self.vcids}",
            f"frame_length = {self.frame_length}",
            f"fecf = {b}",
            f'ocf = "{self.ocf}"',
        ]
        if self.downlink == "aos":
            lines.append(f"insert_zone_len = {self.insert_zone_len}")
            lines.append(f"count_cycle = {'true' if self.count_cycle else 'false'}")
        else:
            lines.append(f"secondary_header_len = {self.secondary_header_len}")
        lines += [
            f"rs_e = {self.rs_e}  # 0: no Reed-Solomon",
            f"rs_depth = {self.rs_depth}",
            f"dual_basis = {'true' if self.dual_basis else 'false'}",
            f"randomize = {'true' if self.randomize else 'false'}",
            f'asm = "{ASM.hex()}"',
        ]
        return "\n".join(lines) + "\n"


def detect_file(path: str | Path) -> Detected:
    from linkstack.capture.raw_units import is_pcap  # noqa: PLC0415

    path = Path(path)
    try:
        if is_pcap(path):
            return detect_units(_pcap_units(path))
        return detect(path.read_bytes())
    except OSError as exc:
        raise ConfigError("replay", str(path), f"cannot read it: {exc.strerror or exc}") from None


def _pcap_units(path: Path) -> list[bytes]:
    from linkstack.capture.reader import PcapReader  # noqa: PLC0415

    units = []
    for unit in PcapReader(path):
        if unit.layer in ("tm_cadu", "aos_cadu", "tm_frame", "aos_frame"):
            units.append(unit.data)
        if len(units) >= SAMPLE_UNITS * 4:
            break
    return units


def detect_units(units: list[bytes]) -> Detected:
    """From a capture's units (each one CADU or one frame)."""
    if not units:
        raise ConfigError("replay", "--detect", "no CADU or frame units on linkstack's ports")
    if all(u[:4] == ASM for u in units[:8]):
        return _from_cadus(units, "cadu", ["units with the ASM at their start: CADUs"])
    return _from_frames(units, "frame", ["units without the ASM: frames"])


def detect(data: bytes) -> Detected:
    """From a raw recording's octets."""
    period = _asm_period(data)
    if period:
        cadus = [data[i : i + period] for i in range(0, len(data) - period + 1, period)]
        return _from_cadus(cadus, "cadu", [f"the ASM every {period} octets: CADUs back to back"])
    stream = _stream_cadus(data)
    if stream is not None:
        cadus, how = stream
        return _from_cadus(cadus, "stream", [f"the ASM {how}: a bit stream of CADUs"])
    length = _frame_period(data)
    if length is None:
        raise ConfigError(
            "replay",
            "--detect",
            "found no ASM (at any bit offset, either polarity) and no frame header that "
            "repeats at a fixed length",
        )
    frames = [data[i : i + length] for i in range(0, len(data) - length + 1, length)]
    return _from_frames(frames, "frame", [f"a frame header every {length} octets, no ASM"])


def _asm_period(data: bytes) -> int | None:
    if data[:4] != ASM:
        return None
    period = data.find(ASM, 4)
    if period <= 4:
        return None
    starts = range(0, min(len(data), period * 8), period)
    return period if all(data[s : s + 4] == ASM for s in starts) else None


def _stream_cadus(data: bytes) -> tuple[list[bytes], str] | None:
    """The CADUs of a bit stream: the ASM found at a fixed period at some bit offset and
    polarity (the stream realigned and, if need be, inverted)."""
    bits = 8 * len(data)
    number = int.from_bytes(data, "big")
    for inverted in (False, True):
        value = number ^ ((1 << bits) - 1) if inverted else number
        for shift in range(1, 8) if not inverted else range(8):
            aligned = ((value << shift) & ((1 << bits) - 1)).to_bytes(len(data), "big")
            start = aligned.find(ASM)
            period = _asm_period(aligned[start:]) if start >= 0 else None
            if period:
                body = aligned[start:]
                cadus = [body[i : i + period] for i in range(0, len(body) - period + 1, period)]
                how = f"{shift} bits into the octets{', inverted' if inverted else ''}"
                return cadus, how
    return None


def _frame_period(data: bytes) -> int | None:
    best: tuple[int, int] | None = None
    for length in range(8, 2049):
        n = len(data) // length
        if n < 3 or data[length : length + 2] != data[:2]:
            continue
        heads = [data[i * length : i * length + 2] for i in range(min(n, 16))]
        if any(h != heads[0] for h in heads):
            continue
        counts = [data[i * length + 2 : i * length + 5] for i in range(min(n, SAMPLE_UNITS))]
        steps = sum(
            int.from_bytes(b, "big") - int.from_bytes(a, "big") == 1
            for a, b in itertools.pairwise(counts)
        )
        if best is None or steps > best[1]:
            best = (length, steps)
    return best[0] if best else None


def _from_cadus(cadus: list[bytes], raw_unit: str, evidence: list[str]) -> Detected:
    from linkstack.ccsds.coding.chains import CaduCoding, CaduReceiver  # noqa: PLC0415
    from linkstack.ccsds.coding.rs import INTERLEAVING_DEPTHS  # noqa: PLC0415

    block = len(cadus[0]) - len(ASM)
    probe = cadus[:CODING_UNITS]
    for randomize in (False, True):
        for e in (16, 8):
            for depth in INTERLEAVING_DEPTHS:  # those CCSDS 131.0-B-4 allows (no 6, 7)
                frame_len = block - 2 * e * depth
                if frame_len < depth or frame_len % depth or frame_len > (255 - 2 * e) * depth:
                    continue
                for dual in (True, False):
                    coding = CaduCoding(
                        rs_e=e, rs_depth=depth, dual_basis=dual, randomize=randomize
                    )
                    rx = CaduReceiver(frame_len, coding)
                    got = [rx.receive_cadu(c) for c in probe]
                    if all(g is not None and g.frame[0] >> 6 in (0, 1) for g in got):
                        frames = [
                            g.frame for c in cadus[:SAMPLE_UNITS] if (g := rx.receive_cadu(c))
                        ]
                        basis = "dual" if dual else "conventional"
                        evidence.append(
                            f"every codeword of the first {len(probe)} CADUs decodes as "
                            f"RS(255,{255 - 2 * e}) x {depth}, {basis} basis, "
                            f"{'randomized' if randomize else 'not randomized'}"
                        )
                        found = _from_frames(frames, raw_unit, evidence)
                        found.rs_e, found.rs_depth, found.dual_basis = e, depth, dual
                        found.randomize = randomize
                        return found
    for randomize in (False, True):  # no Reed-Solomon: the FECF must check
        rx = CaduReceiver(block, CaduCoding(rs_e=None, rs_depth=1, randomize=randomize))
        frames = [g.frame for c in cadus[:SAMPLE_UNITS] if (g := rx.receive_cadu(c))]
        if frames and sum(crc16_ccitt(f) == 0 for f in frames) > len(frames) // 2:
            evidence.append("no Reed-Solomon code decodes; the frames' FECF checks without one")
            found = _from_frames(frames, raw_unit, evidence)
            found.randomize = randomize
            return found
    raise ConfigError(
        "replay",
        "--detect",
        f"CADUs of {len(cadus[0])} octets, but no coding (RS E=16 or 8, depth 1-5 or 8, dual or "
        "conventional basis, or none with an FECF; randomized or not) decodes them",
    )


def _from_frames(frames: list[bytes], raw_unit: str, evidence: list[str]) -> Detected:
    frames = frames[:SAMPLE_UNITS]
    length = len(frames[0])
    versions = Counter(f[0] >> 6 for f in frames)
    version = versions.most_common(1)[0][0]
    if version not in (0, 1):
        raise ConfigError("replay", "--detect", f"frames of version {version + 1}: not TM or AOS")
    found = Detected(raw_unit=raw_unit, downlink="aos" if version else "tm", frame_length=length)
    found.fecf = sum(crc16_ccitt(f) == 0 for f in frames) > len(frames) // 2
    found.evidence = evidence
    evidence.append(
        f"{'AOS' if version else 'TM'} frames of {length} octets (version {version + 1}); "
        f"FECF {'checks' if found.fecf else 'does not check: none'}"
    )
    w0 = [f[0] << 8 | f[1] for f in frames]
    if version:
        found.scids = sorted({(w >> 6) & 0xFF for w in w0})
        found.vcids = sorted({w & 0x3F for w in w0})
        found.count_cycle = sum(bool(f[5] & 0x40) for f in frames) > len(frames) // 2
        _aos_zone(frames, found)
    else:
        found.scids = sorted({(w >> 4) & 0x3FF for w in w0})
        found.vcids = sorted({(w >> 1) & 7 for w in w0})
        found.ocf = "clcw" if sum(w & 1 for w in w0) > len(w0) // 2 else "none"
        sec = [f[4] >> 7 for f in frames]
        if sum(sec) > len(sec) // 2:
            found.secondary_header_len = frames[0][6] & 0x3F  # the length field: octets - 1
        _tm_packets(frames, found)
    return found


def _aos_zone(frames: list[bytes], found: Detected) -> None:
    """The insert zone and OCF under which the packet zones chain best."""
    best: tuple[int, int, bool, list[bytes]] | None = None
    for ocf in (False, True):
        for iz in range(MAX_INSERT_ZONE + 1):
            try:
                config = AosConfig(
                    frame_length=found.frame_length,
                    insert_zone_len=iz,
                    ocf=ocf,
                    fecf=found.fecf,
                    count_cycle=found.count_cycle,
                )
            except DecodeError:
                continue
            rx = AosReceiver(config, check_scid=False)
            packets = [p for f in frames if (got := rx.receive(f)) for p in got.packets]
            stats = rx.all_stats()
            bad = sum(v for k, v in stats.items() if k in ("bad_mpdu_header", "zone_gap"))
            score = stats["packets"] + stats["idle_packets"] - 4 * bad
            if best is None or score > best[0]:
                best = (score, iz, ocf, packets)
    if best is None:
        return
    _, found.insert_zone_len, ocf, packets = best
    found.ocf = "other" if ocf else "none"
    found.evidence.append(
        f"the packet zones chain best with an insert zone of {found.insert_zone_len} octets"
        f"{' and an OCF' if ocf else ', no OCF'} ({len(packets)} packets in "
        f"{len(frames)} frames)"
    )
    _counter(packets, found)


def _tm_packets(frames: list[bytes], found: Detected) -> None:
    config = TmConfig(
        frame_length=found.frame_length,
        fecf=found.fecf,
        ocf=found.ocf != "none",
        secondary_header_len=found.secondary_header_len,
    )
    rx = TmReceiver(config, check_scid=False)
    _counter([p for f in frames if (got := rx.receive(f)) for p in got.packets], found)


def _counter(packets: list[bytes], found: Detected) -> None:
    """Per-APID sequence counts or one shared: whichever has fewer gaps."""
    seqs = []
    for raw in packets:
        try:
            pk = SpacePacket.unpack(raw)
        except DecodeError:
            continue
        if pk.apid != IDLE_APID:
            seqs.append((pk.apid, pk.seq_count))
    per: dict[int, int] = {}
    per_gaps = shared_gaps = 0
    last = None
    for apid, seq in seqs:
        if apid in per and (per[apid] + 1) % SEQ_COUNT_MODULO != seq:
            per_gaps += 1
        per[apid] = seq
        if last is not None and (last + 1) % SEQ_COUNT_MODULO != seq:
            shared_gaps += 1
        last = seq
    if len(per) > 1 and shared_gaps < per_gaps:
        found.packet_counter = "shared"
        found.evidence.append(
            f"one sequence count runs across APIDs {sorted(per)} ({shared_gaps} gaps shared, "
            f"{per_gaps} per APID)"
        )
