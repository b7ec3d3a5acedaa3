"""A raw recording's units: CADUs or frames back to back, or a bit stream of CADUs.

Ground stations and public archives keep a downlink as a plain file, not a pcap: the
CADUs one after the other (ASM and codeblock), the transfer frames one after the other
(after a turbo or LDPC decoder, no ASM), or the demodulator's bit stream, which may
start anywhere and be inverted. :func:`raw_units` cuts such a file into
:class:`~linkstack.capture.reader.CapturedUnit` as a pcap's would be, on the layer of
the profile's downlink (``tm_cadu``, ``aos_cadu``, ``tm_frame`` or ``aos_frame``), so
that replay and conform read it as they read a capture. A bit stream goes through
the frame synchronizer (:class:`~linkstack.ccsds.coding.sync.FrameSynchronizer`:
the ASM at any bit offset, either polarity) and comes out as whole CADUs.

A raw file has no time stamps: unit ``i`` is given ``t_s = i * UNIT_SPACING_S``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from linkstack.capture.reader import CapturedUnit
from linkstack.errors import ConfigError

if TYPE_CHECKING:
    from linkstack.runtime.mission_profile import Profile

UNIT_SPACING_S = 0.001  # a raw file has no times: units 1 ms apart, in file order
SPACECRAFT, STATION = "sat:spacecraft", "ground:station"  # the ends of a raw file's units
PCAP_MAGICS = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",  # pcapng's section header block
)
_STREAM_CHUNK = 1 << 16


# a file named so is meant as a capture: one that does not start as a pcap is a damaged
# capture, refused by the pcap reader ("not a pcap file"), not a raw recording
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")


def is_pcap(path: str | os.PathLike[str]) -> bool:
    """Whether the file is read as a capture: it starts as a pcap or a pcapng does, or
    its name says it is one (:data:`CAPTURE_SUFFIXES`); otherwise it is a raw file."""
    if os.fspath(path).lower().endswith(CAPTURE_SUFFIXES):
        return True
    with open(path, "rb") as f:
        return f.read(4) in PCAP_MAGICS


def unit_layer(profile: Profile) -> str:
    """The layer of a raw file's units: the downlink's CADUs or frames."""
    kind = profile.mission.downlink
    return f"{kind}_frame" if profile.mission.raw_unit == "frame" else f"{kind}_cadu"


def unit_length(profile: Profile) -> int:
    """Octets of one unit of a raw file of fixed-length units."""
    ch = profile.downlink
    return ch.frame_length if profile.mission.raw_unit == "frame" else ch.cadu_length


def raw_units(data: bytes, profile: Profile) -> Iterator[CapturedUnit]:
    """The units of a raw recording, as ``profile``'s ``[mission] raw_unit`` says it
    holds them. A fixed-length file whose size is not a whole number of units ends
    with a short unit (the receivers refuse it, by its length)."""
    layer = unit_layer(profile)
    if profile.mission.raw_unit == "stream":
        yield from _stream(data, profile, layer)
        return
    n = unit_length(profile)
    for i, start in enumerate(range(0, len(data), n)):
        yield CapturedUnit(layer, i * UNIT_SPACING_S, SPACECRAFT, STATION, data[start : start + n])


def _stream(data: bytes, profile: Profile, layer: str) -> Iterator[CapturedUnit]:
    from linkstack.ccsds.coding.sync import FrameSynchronizer  # noqa: PLC0415 - numpy, when used

    ch = profile.downlink
    sync = FrameSynchronizer(ch.codeblock_length, ch.asm)
    i = 0
    for start in range(0, len(data), _STREAM_CHUNK):
        for block in sync.push(data[start : start + _STREAM_CHUNK]):
            yield CapturedUnit(layer, i * UNIT_SPACING_S, SPACECRAFT, STATION, ch.asm + block)
            i += 1


def read_raw(path: str | os.PathLike[str], profile: Profile) -> list[CapturedUnit]:
    """:func:`raw_units` of a file; ConfigError naming it when it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError("replay", str(path), f"cannot read it: {exc.strerror or exc}") from None
    return list(raw_units(data, profile))
