"""Fuzz target: the conformance checker over captures of random and damaged units.

The inputs are windows of the good session of
:mod:`linkstack.conformance.passive.session` (frames with their carriers, packets),
damaged: ``check_capture`` must never raise, and no rule nor the analysis may break.
``conformance.check_capture_sdls`` does the same with the session under SDLS, its
associations and its keys: every protected frame opened, verified and decrypted.
"""

from __future__ import annotations

import dataclasses
import io
import random

from linkstack.capture.pcap import PcapCapture
from linkstack.ccsds.coding.chains import CaduTransmitter
from linkstack.ccsds.coding.cltu import encode_cltu
from linkstack.conformance.passive.checker import check_capture as _check_capture
from linkstack.conformance.passive.session import SDLS_SAS, sdls_keys
from linkstack.conformance.passive.session import build as _conform_build
from linkstack.runtime.mission_profile import Profile, SdlsProfile
from linkstack.runtime.mission_profile import load_profile as _load_profile
from linkstack.tools.fuzz.capture import PCAP_EPOCH, fix_pcap_checksums
from linkstack.tools.fuzz.engine import FuzzCheckError, Target

_CONFORM_LAYERS = {
    "tc": ("cltu", "tc_frame"),
    "tm": ("tm_cadu", "tm_frame"),
    "aos": ("aos_cadu", "aos_frame"),
}
_Unit = tuple[str, float, str, str, bytes]  # layer, t_s, src, dst, data
_CONFORM_SESSION: dict[bool, tuple[Profile, list[list[_Unit]]]] = {}


def _conform_session(sdls: bool = False) -> tuple[Profile, list[list[_Unit]]]:
    """The linkstack profile, and the units (carrier and frame, or a packet) of the
    good session of linkstack.conformance.passive.session, grouped as they are sent;
    ``sdls``: the session under SDLS, the profile with its associations."""
    if sdls not in _CONFORM_SESSION:
        cadu = CaduTransmitter(1115)
        units: list[list[_Unit]] = []
        for r in _conform_build(sdls=sdls):
            if r.kind == "pkt":
                units.append([("space_packet", r.t_s, r.src, r.dst, r.data)])
                continue
            carrier = encode_cltu(r.data, True) if r.kind == "tc" else cadu.cadu(r.data)
            first, second = _CONFORM_LAYERS[r.kind]
            units.append(
                [(first, r.t_s, r.src, r.dst, carrier), (second, r.t_s, r.src, r.dst, r.data)]
            )
        profile = _load_profile("linkstack")
        if sdls:
            profile = dataclasses.replace(
                profile,
                sdls=SdlsProfile(
                    tc=(SDLS_SAS["tc"],), tm=(SDLS_SAS["tm"],), aos=(SDLS_SAS["aos"],)
                ),
            )
        _CONFORM_SESSION[sdls] = (profile, units)
    return _CONFORM_SESSION[sdls]


def _valid_conform_pcap(rng: random.Random, sdls: bool = False) -> bytes:
    """A few consecutive units of the conformance suite's good session (frames with their
    carriers, packets), small ones mostly, sometimes with random payloads among them."""
    _, session = _conform_session(sdls)
    buf = io.BytesIO()
    start = rng.randrange(len(session))
    with PcapCapture(buf, PCAP_EPOCH) as cap:
        for group in session[start : start + rng.randrange(1, 4)]:
            for layer, t_s, src, dst, data in group:
                if len(data) > 600 and rng.random() < 0.7:
                    continue  # keep most inputs small: the checker's cost is per octet
                payload = rng.randbytes(rng.randrange(1, 300)) if rng.random() < 0.1 else data
                cap.unit(layer, t_s, src, dst, payload)
    return buf.getvalue()


def _conform_checker(buf: bytes, sdls: bool = False) -> object:
    """check_capture never raises on a capture, and no rule or analysis step breaks on one."""
    profile, _ = _conform_session(sdls)
    report = _check_capture(buf, profile, keys=sdls_keys() if sdls else None)
    broken = [f"{r.rule.id}: {r.error}" for r in report.results if r.status == "error"]
    if broken or report.internal_errors:
        raise FuzzCheckError(f"the conformance check broke: {(broken + report.internal_errors)[0]}")
    return report


TARGETS: list[Target] = [
    Target(
        "conformance.check_capture",
        _valid_conform_pcap,
        lambda: _conform_checker,
        strict=False,
        max_random_len=300,
        fix=fix_pcap_checksums,
    ),
    Target(
        "conformance.check_capture_sdls",
        lambda rng: _valid_conform_pcap(rng, sdls=True),
        lambda: lambda buf: _conform_checker(buf, sdls=True),
        strict=False,
        max_random_len=300,
        fix=fix_pcap_checksums,
    ),
]
