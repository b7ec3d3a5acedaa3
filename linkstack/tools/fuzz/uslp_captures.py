"""Fuzz targets: captures of USLP runs (``frames.protocol = "uslp"``) through the
conformance checker and the replay.

The inputs are windows of the good USLP session of
:mod:`linkstack.conformance.passive.broken_uslp` (CLTUs and CADUs with the USLP frames
inside them, the frames on their port, packets), damaged: ``check_capture`` must never
raise and no rule nor the analysis may break (``conformance.check_capture_uslp``); the
replay's receivers must take every unit without an internal error (``replay.uslp``).
"""

from __future__ import annotations

import io
import random

from linkstack.capture.pcap import PcapCapture, PcapReader
from linkstack.capture.replay import Replayer
from linkstack.ccsds.coding.chains import CaduTransmitter
from linkstack.ccsds.coding.cltu import encode_cltu
from linkstack.conformance.passive import broken_uslp
from linkstack.conformance.passive.checker import check_capture
from linkstack.errors import DecodeError
from linkstack.runtime.mission_profile import load_profile
from linkstack.tools.fuzz.capture import PCAP_EPOCH, fix_pcap_checksums
from linkstack.tools.fuzz.engine import FuzzCheckError, Target

_Unit = tuple[str, float, str, str, bytes]  # layer, t_s, src, dst, data
_SESSION: list[list[_Unit]] = []


def _session() -> list[list[_Unit]]:
    """The USLP session's units, grouped as they are sent (carrier and frame, or a packet)."""
    if not _SESSION:
        cadu = CaduTransmitter(broken_uslp.FRAME_LEN)
        for r in broken_uslp.build():
            if r.kind == broken_uslp.PKT:
                _SESSION.append([("space_packet", r.t_s, r.src, r.dst, r.data)])
                continue
            up = r.kind == broken_uslp.UP
            carrier = encode_cltu(r.data, True) if up else cadu.cadu(r.data)
            layer = "cltu" if up else "tm_cadu" if r.dst.startswith("ground") else "aos_cadu"
            _SESSION.append(
                [
                    (layer, r.t_s, r.src, r.dst, carrier),
                    (broken_uslp.FRAME_LAYER, r.t_s, r.src, r.dst, r.data),
                ]
            )
    return _SESSION


def _valid_pcap(rng: random.Random) -> bytes:
    """A few consecutive units of the session, small ones mostly, sometimes a random
    payload among them."""
    session = _session()
    buf = io.BytesIO()
    start = rng.randrange(len(session))
    with PcapCapture(buf, PCAP_EPOCH, frames="uslp") as cap:
        for group in session[start : start + rng.randrange(1, 4)]:
            for layer, t_s, src, dst, data in group:
                if len(data) > 600 and rng.random() < 0.7:
                    continue  # keep most inputs small: the cost is per octet
                payload = rng.randbytes(rng.randrange(1, 300)) if rng.random() < 0.1 else data
                cap.unit(layer, t_s, src, dst, payload)
    return buf.getvalue()


def _checker(buf: bytes) -> object:
    """check_capture never raises on a USLP capture, and no rule or analysis step breaks."""
    report = check_capture(buf, load_profile("linkstack"))
    broken = [f"{r.rule.id}: {r.error}" for r in report.results if r.status == "error"]
    if broken or report.internal_errors:
        raise FuzzCheckError(f"the conformance check broke: {(broken + report.internal_errors)[0]}")
    return report


def _replay(buf: bytes) -> object:
    """The replay's receivers take every unit of a USLP capture, never with a bug."""
    replayer = Replayer()
    try:
        for unit in PcapReader(io.BytesIO(buf)):
            replayer.feed(unit)
    except DecodeError:  # the pcap file itself is damaged past here: the reader's to refuse
        pass
    replayer.finish()
    if replayer.stats["internal_errors"]:
        raise FuzzCheckError("the replay hit an internal error on a USLP capture")
    return replayer


TARGETS: list[Target] = [
    Target(
        "conformance.check_capture_uslp",
        _valid_pcap,
        lambda: _checker,
        strict=False,
        max_random_len=300,
        fix=fix_pcap_checksums,
    ),
    Target(
        "replay.uslp",
        _valid_pcap,
        lambda: _replay,
        strict=False,
        max_random_len=300,
        fix=fix_pcap_checksums,
    ),
]
