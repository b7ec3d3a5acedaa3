"""``linkstack decode sdls-tc|sdls-tm|sdls-aos|sdls-uslp HEX``: the SDLS fields of a
protected frame.

No key is needed: the security header and trailer are read with the field lengths of
each SPI (``--spi-lengths SPI:IV:SN:PAD:MAC``, repeatable; an SPI not listed is read
with an SA's defaults, 12-octet IV and 16-octet MAC, and the output says so). The
command line (:mod:`linkstack.tools.cli`) hands over the frame and the channel's flags.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

from linkstack.ccsds.sdls import SecurityAssociation, parse_security_header
from linkstack.errors import DecodeError

_DEFAULT = SecurityAssociation(1, "aead", ecs="AES256_GCM", ekid=0)


class SpiLengths(NamedTuple):
    """One SPI's field lengths, octets."""

    spi: int
    iv_len: int
    sn_len: int
    pad_len: int
    mac_len: int


def spi_lengths(text: str) -> SpiLengths:
    """``SPI:IV:SN:PAD:MAC`` (argparse type), e.g. ``4:12:0:0:16``."""
    parts = text.split(":")
    try:
        values = [int(p, 0) for p in parts]
    except ValueError:
        values = []
    if len(values) != 5 or min(values) < 0 or not 0 < values[0] < 0xFFFF:
        raise argparse.ArgumentTypeError(
            f"{text!r}: want SPI:IV:SN:PAD:MAC, five integers (SPI 1..65534), e.g. 4:12:0:0:16"
        )
    return SpiLengths(*values)


def print_security_header(
    kind: str,
    frame: bytes,
    lengths: list[SpiLengths],
    *,
    fecf: bool,
    segment_header: bool,
    ocf: bool,
    insert_zone_len: int = 0,
) -> int:
    """Print the fields (0), or why they cannot be read (1). ``insert_zone_len``: a
    USLP channel's insert zone."""
    given = {entry.spi: entry for entry in lengths}
    if kind == "tm" and len(frame) > 1:
        ocf = bool(frame[1] & 1)  # a TM frame says itself whether it carries an OCF
    if kind == "uslp" and len(frame) > 6:
        ocf = bool(frame[6] & 0x08)  # so does a USLP frame
    try:
        fields = parse_security_header(
            frame,
            kind,
            lambda spi: given.get(spi, _DEFAULT),
            fecf=fecf,
            segment_header=segment_header and kind == "tc",
            ocf=ocf and kind != "tc",
            insert_zone_len=insert_zone_len if kind == "uslp" else 0,
        )
    except DecodeError as exc:
        print(f"refused: {exc}")
        return 1
    spi = fields["spi"]
    assumed = "" if spi in given else " (lengths not given: IV 12, SN 0, pad 0, MAC 16 assumed)"
    print(f"sdls {kind} frame of {len(frame)} octets, SPI {spi}{assumed}")
    print(f"  security header at octet {fields['security_header_offset']}")
    for name in ("iv", "sn", "pad"):
        print(f"  {name:<4}{fields[name] or '-'}")
    print(f"  data {fields['data_length']} octets at octet {fields['data_offset']}")
    print(f"  mac {fields['mac'] or '-'} at octet {fields['mac_offset']}")
    if "ocf" in fields:
        print(f"  ocf {fields['ocf']}")
    if "fecf" in fields:
        print(f"  fecf {fields['fecf']} ({'ok' if fields['fecf_ok'] else 'WRONG'})")
    return 0
