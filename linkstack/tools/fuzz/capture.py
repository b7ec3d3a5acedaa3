"""Fuzz targets: pcap captures, the reader behind replay and ``linkstack conform``, and
the daemons' link header in front of each unit.

The damaged captures have their IPv4 header checksums recomputed, so that the damage
reaches the fragment reassembly and the UDP checks behind them.
"""

from __future__ import annotations

import io
import random
import struct
from datetime import UTC, datetime

from linkstack.capture.link_header import LINK_HEADER_LEN, link_header, link_of, split
from linkstack.capture.pcap import LAYERS, MAX_UNIT_LEN, PcapCapture, PcapReader, ipv4_checksum
from linkstack.errors import DecodeError
from linkstack.tools.fuzz.engine import FuzzCheckError, Target

PCAP_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
_PCAP_NODES = ("ground:Svalbard", "sat:CS-01", "sat:CS-02", "client")
_PCAP_LAYERS = sorted(LAYERS)


def _valid_pcap(rng: random.Random) -> bytes:
    """A small capture: a few units of any layer, some cut into IPv4 fragments."""
    buf = io.BytesIO()
    mtu = rng.choice([68, 128, 1500])
    with PcapCapture(buf, PCAP_EPOCH, mtu=mtu, nanoseconds=rng.random() < 0.3) as cap:
        for _ in range(rng.randrange(1, 4)):
            src, dst = rng.sample(_PCAP_NODES, 2)
            data = rng.randbytes(rng.randrange(1, 400))
            cap.unit(rng.choice(_PCAP_LAYERS), rng.random() * 1e5, src, dst, data)
    return buf.getvalue()


def fix_pcap_checksums(buf: bytes) -> bytes:
    """Recompute the IPv4 header checksum of every record (little-endian Ethernet
    pcap, as the writer makes), so that damage reaches the fragment and UDP checks."""
    out = bytearray(buf)
    pos = 24
    while pos + 16 <= len(out):
        incl = struct.unpack_from("<I", out, pos + 8)[0]
        frame = pos + 16
        ip = frame + 14
        if incl > len(out) - frame:
            break
        if incl >= 34 and out[frame + 12 : frame + 14] == b"\x08\x00":
            ihl = 4 * (out[ip] & 0x0F)
            if ihl >= 20 and ip + ihl <= frame + incl:
                out[ip + 10 : ip + 12] = b"\0\0"
                out[ip + 10 : ip + 12] = ipv4_checksum(out[ip : ip + ihl]).to_bytes(2, "big")
        pos = frame + incl
    return bytes(out)


def _pcap_decoder(buf: bytes) -> object:
    """The reader refuses with DecodeError or yields units that are whole: a known
    layer, 1..65,507 octets, and they come back unchanged through the writer."""
    units = list(PcapReader(buf, epoch=PCAP_EPOCH))
    out = io.BytesIO()
    with PcapCapture(out, PCAP_EPOCH, nanoseconds=True) as cap:
        for u in units:
            if u.layer not in LAYERS or not 1 <= len(u.data) <= MAX_UNIT_LEN:
                raise FuzzCheckError(f"read a {len(u.data)}-octet unit of layer {u.layer!r}")
            cap.unit(u.layer, u.t_s, u.src, u.dst, u.data)
    again = list(PcapReader(out.getvalue(), epoch=PCAP_EPOCH, registry=cap.registry))
    if [(u.layer, u.src, u.dst, u.data) for u in again] != [
        (u.layer, u.src, u.dst, u.data) for u in units
    ]:
        raise FuzzCheckError("the units read do not survive a write and a read")
    if any(abs(a.t_s - b.t_s) > 1e-6 for a, b in zip(again, units, strict=True)):
        raise FuzzCheckError("the time stamps read do not survive a write and a read")
    return units


def _valid_datagram(rng: random.Random) -> bytes:
    """A datagram between daemons: a link header and a unit."""
    return link_header(rng.randrange(1 << 24)) + rng.randbytes(rng.randrange(1, 300))


def _datagram_decoder(buf: bytes) -> object:
    """What split() accepts, the daemons' hot-path reading (link_of) agrees with, and
    the header it read writes the datagram back; what it refuses, link_of refuses."""
    try:
        index, unit = split(buf)
    except DecodeError:
        if link_of(buf) is not None:
            raise FuzzCheckError("split() refused a datagram that link_of() read") from None
        raise
    if link_of(buf) != index or len(unit) != len(buf) - LINK_HEADER_LEN:
        raise FuzzCheckError("split() and link_of() read the datagram differently")
    if link_header(index) + unit != buf:
        raise FuzzCheckError("the header read does not write the datagram back")
    return index


TARGETS: list[Target] = [
    Target(
        "capture.read_units",
        _valid_pcap,
        lambda: _pcap_decoder,
        strict=True,
        max_random_len=300,
        fix=fix_pcap_checksums,
    ),
    Target("capture.link_header", _valid_datagram, lambda: _datagram_decoder, strict=True),
]
