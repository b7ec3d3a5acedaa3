"""The link header: the 4 octets in front of each unit between linkstack's daemons.

The daemons carry every link of a scenario on a few UDP ports (the port plan,
:mod:`linkstack.daemon.wire`), so a datagram names its link itself::

    octet 0      0x4C ("L"): a link header, format 1 (another format takes another value)
    octets 1-3   the link's index k in the scenario's port plan, unsigned, big-endian
    octets 4-    the unit: a CLTU (uplink), a TM CADU (downlink), an AOS CADU (laser link)

It is here, below the daemons, because the capture reader, replay and conform read
it in captures of the daemons' traffic (``tshark -i lo``) as the daemons do on the
wire. Sans-I/O: octets in, octets out.
"""

from __future__ import annotations

from linkstack.errors import DecodeError

LINK_HEADER_MAGIC = 0x4C  # "L"; the format is the magic: version 2 would take another octet
LINK_HEADER_LEN = 4
MAX_LINK_INDEX = (1 << 24) - 1
_MAGIC_OCTET = bytes([LINK_HEADER_MAGIC])


def link_header(index: int) -> bytes:
    """The header of a datagram on link ``index``."""
    if not 0 <= index <= MAX_LINK_INDEX:
        raise ValueError(f"link index {index} is outside 0..{MAX_LINK_INDEX}")
    return _MAGIC_OCTET + index.to_bytes(3, "big")


def link_of(datagram: bytes | memoryview) -> int | None:
    """The link index of a datagram that starts with a link header, or None when it
    does not (too short for a header and one octet of unit, or another first octet).
    For the hot path: no exception."""
    if len(datagram) <= LINK_HEADER_LEN or datagram[0] != LINK_HEADER_MAGIC:
        return None
    return int.from_bytes(datagram[1:LINK_HEADER_LEN], "big")


def split(datagram: bytes) -> tuple[int, bytes]:
    """(link index, unit) of a datagram; :class:`DecodeError` names what is wrong."""
    if len(datagram) <= LINK_HEADER_LEN:
        raise DecodeError(
            "link_header",
            "length",
            f"a header of {LINK_HEADER_LEN} octets and a unit, got {len(datagram)} octets",
        )
    if datagram[0] != LINK_HEADER_MAGIC:
        raise DecodeError(
            "link_header", "magic", f"must be {LINK_HEADER_MAGIC:#04x}, got {datagram[0]:#04x}"
        )
    return int.from_bytes(datagram[1:LINK_HEADER_LEN], "big"), datagram[LINK_HEADER_LEN:]
