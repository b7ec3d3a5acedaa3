"""Communications Link Control Word (CLCW), CCSDS 232.1-B-2 §4.2.

The CLCW is FARM-1's report to FOP-1: the spacecraft puts it in the 4-octet
Operational Control Field of its TM (or AOS) frames, the ground reads it back.
Its 32 bits, most significant first:

====== =========================================================
bits   field
====== =========================================================
0      control word type: 0 (a CLCW; 1 would be another report)
1-2    CLCW version number: 00
3-5    status field (mission-specific)
6-7    COP in effect: 01 for COP-1
8-13   virtual channel identifier of the TC channel reported on
14-15  reserved spare: 00
16     No RF Available flag
17     No Bit Lock flag
18     Lockout flag
19     Wait flag
20     Retransmit flag
21-22  FARM-B counter (its two least significant bits)
23     reserved spare: 0
24-31  report value N(R): the next expected frame sequence number
====== =========================================================

:class:`Clcw` packs and unpacks one word and checks every rule.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from linkstack.errors import DecodeError, TruncatedError, check_range

CLCW_LEN = 4
COP_1 = 0b01  # the "COP in effect" value of COP-1
MAX_VCID = 0x3F

_WORD = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Clcw:
    """One CLCW. ``farm_b_counter`` holds the 2 bits carried (the FARM counts further)."""

    vcid: int
    report_value: int  # N(R)
    lockout: bool = False
    wait: bool = False
    retransmit: bool = False
    farm_b_counter: int = 0
    no_rf_available: bool = False
    no_bit_lock: bool = False
    status: int = 0
    cop_in_effect: int = COP_1

    def __post_init__(self) -> None:
        check_range("clcw", "vcid", self.vcid, 0, MAX_VCID)
        check_range("clcw", "report_value", self.report_value, 0, 255)
        check_range("clcw", "farm_b_counter", self.farm_b_counter, 0, 3)
        check_range("clcw", "status", self.status, 0, 7)
        check_range("clcw", "cop_in_effect", self.cop_in_effect, 0, 3)
        for name in ("lockout", "wait", "retransmit", "no_rf_available", "no_bit_lock"):
            check_range("clcw", name, getattr(self, name), 0, 1)

    def pack(self) -> bytes:
        word = (
            (self.status << 26)
            | (self.cop_in_effect << 24)
            | (self.vcid << 18)
            | (self.no_rf_available << 15)
            | (self.no_bit_lock << 14)
            | (self.lockout << 13)
            | (self.wait << 12)
            | (self.retransmit << 11)
            | (self.farm_b_counter << 9)
            | self.report_value
        )
        return _WORD.pack(word)

    @classmethod
    def unpack(cls, buf: bytes | bytearray | memoryview, cop1: bool = True) -> Clcw:
        """Decode one CLCW (exactly 4 octets). With ``cop1`` (the default) a COP in
        effect other than COP-1 is refused, since only COP-1 can read the rest."""
        n = len(buf)
        if n < CLCW_LEN:
            raise TruncatedError("clcw", "length", f"a CLCW is {CLCW_LEN} octets, got {n}")
        if n > CLCW_LEN:
            raise DecodeError("clcw", "length", f"a CLCW is {CLCW_LEN} octets, got {n}")
        (word,) = _WORD.unpack_from(buf)
        if word >> 31:
            raise DecodeError(
                "clcw", "control_word_type", "must be 0 (a CLCW), got 1 (another report type)"
            )
        version = (word >> 29) & 0b11
        if version:
            raise DecodeError("clcw", "version", f"CLCW version must be 00, got {version:02b}")
        cop = (word >> 24) & 0b11
        if cop1 and cop != COP_1:
            raise DecodeError("clcw", "cop_in_effect", f"must be 01 (COP-1), got {cop:02b}")
        spare = (word >> 16) & 0b11
        if spare:
            raise DecodeError("clcw", "spare", f"bits 14-15 must be 00, got {spare:02b}")
        if word & 0x100:
            raise DecodeError("clcw", "spare", "bit 23 must be 0, got 1")
        return cls(
            vcid=(word >> 18) & MAX_VCID,
            report_value=word & 0xFF,
            lockout=bool(word & 0x2000),
            wait=bool(word & 0x1000),
            retransmit=bool(word & 0x800),
            farm_b_counter=(word >> 9) & 0b11,
            no_rf_available=bool(word & 0x8000),
            no_bit_lock=bool(word & 0x4000),
            status=(word >> 26) & 0b111,
            cop_in_effect=cop,
        )


def is_clcw(ocf: bytes | bytearray | memoryview) -> bool:
    """Whether an Operational Control Field says it holds a CLCW (control word type 0)."""
    return len(ocf) == CLCW_LEN and not ocf[0] & 0x80
