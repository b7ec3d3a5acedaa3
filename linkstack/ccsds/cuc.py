"""CCSDS Unsegmented Time Code (CUC), CCSDS 301.0-B-4 section 3.2.

A CUC T-field is a binary count of seconds (1 to 7 "coarse" octets) followed by
a binary fraction of a second (0 to 10 "fine" octets), optionally preceded by a
P-field that describes it. Level 1 codes (time code id 001) count TAI seconds
from the CCSDS epoch 1958-01-01 TAI; level 2 codes (id 010) from an epoch the
mission chooses. See :mod:`linkstack.ccsds.timescale` for the TAI/UTC conversion.

Encoding takes seconds since the format's epoch; decoding gives them back,
converted to the format's epoch when a P-field says the code is level 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from linkstack.ccsds.timescale import CCSDS_EPOCH, tai_seconds_since, utc_from_tai_seconds
from linkstack.errors import DecodeError, EncodeError, TruncatedError, check_range

LEVEL1_ID = 0b001  # CCSDS epoch
LEVEL2_ID = 0b010  # agency-defined epoch
_MAX_COARSE = 7
_MAX_FINE = 10


class CucValue(NamedTuple):
    """A decoded T-field: integer seconds and fraction, as counted on the wire."""

    coarse: int
    fine: int
    coarse_octets: int
    fine_octets: int
    level: int  # 1 (CCSDS epoch) or 2 (agency epoch); 0 when there was no P-field

    @property
    def t_s(self) -> float:
        """Seconds since the code's own epoch."""
        return self.coarse + self.fine / (1 << (8 * self.fine_octets))


@dataclass(frozen=True, slots=True)
class CucFormat:
    """Managed parameters of a CUC time code.

    ``epoch`` is a TAI instant (written as a timezone-aware datetime whose
    reading is TAI). With the default CCSDS epoch the P-field says level 1,
    with any other epoch level 2.
    """

    coarse_octets: int = 4
    fine_octets: int = 2
    pfield: bool = True
    epoch: datetime = CCSDS_EPOCH

    def __post_init__(self) -> None:
        check_range("cuc", "coarse_octets", self.coarse_octets, 1, _MAX_COARSE)
        check_range("cuc", "fine_octets", self.fine_octets, 0, _MAX_FINE)
        if self.epoch.tzinfo is None:
            raise EncodeError("cuc", "epoch", "needs a timezone-aware datetime (TAI reading)")

    @property
    def level(self) -> int:
        return 1 if self.epoch == CCSDS_EPOCH else 2

    @property
    def extended(self) -> bool:
        """True when the P-field needs its second octet (more than 4+3 octets)."""
        return self.coarse_octets > 4 or self.fine_octets > 3

    @property
    def length(self) -> int:
        """Octets of the whole code (P-field included when present)."""
        p_len = (2 if self.extended else 1) if self.pfield else 0
        return p_len + self.coarse_octets + self.fine_octets

    @property
    def resolution_s(self) -> float:
        return 1.0 / (1 << (8 * self.fine_octets))

    def pfield_bytes(self) -> bytes:
        code_id = LEVEL1_ID if self.level == 1 else LEVEL2_ID
        c1, f1 = min(self.coarse_octets, 4), min(self.fine_octets, 3)
        first = (int(self.extended) << 7) | (code_id << 4) | ((c1 - 1) << 2) | f1
        if not self.extended:
            return bytes([first])
        second = ((self.coarse_octets - c1) << 5) | ((self.fine_octets - f1) << 2)
        return bytes([first, second])

    # -- encoding -----------------------------------------------------------
    def encode_ticks(self, coarse: int, fine: int) -> bytes:
        """Encode an exact count: ``coarse`` seconds and ``fine`` / 256**fine_octets."""
        check_range("cuc", "coarse", coarse, 0, (1 << (8 * self.coarse_octets)) - 1)
        check_range("cuc", "fine", fine, 0, (1 << (8 * self.fine_octets)) - 1)
        t_field = coarse.to_bytes(self.coarse_octets, "big")
        if self.fine_octets:
            t_field += fine.to_bytes(self.fine_octets, "big")
        return self.pfield_bytes() + t_field if self.pfield else t_field

    def ticks(self, t_s: float) -> tuple[int, int]:
        """Split seconds into (coarse, fine), rounding to the nearest fine tick."""
        if not math.isfinite(t_s) or t_s < 0:
            raise EncodeError(
                "cuc", "t_s", f"must be a finite time at or after the epoch, got {t_s}"
            )
        coarse = math.floor(t_s)
        scale = 1 << (8 * self.fine_octets)
        fine = round((t_s - coarse) * scale)
        if fine == scale:  # the fraction rounded up to a whole second
            coarse, fine = coarse + 1, 0
        return coarse, fine

    def encode(self, t_s: float) -> bytes:
        """Encode ``t_s`` seconds since this format's epoch."""
        return self.encode_ticks(*self.ticks(t_s))

    def encode_utc(self, utc: datetime) -> bytes:
        """Encode a UTC instant (leap seconds applied, see :mod:`linkstack.ccsds.timescale`)."""
        return self.encode(tai_seconds_since(self.epoch, utc))

    # -- decoding -----------------------------------------------------------
    def unpack(self, data: bytes | bytearray | memoryview) -> tuple[CucValue, int]:
        """Decode the code at the start of ``data``; return it and the octets it took."""
        pos, level = 0, 0
        coarse_n, fine_n = self.coarse_octets, self.fine_octets
        if self.pfield:
            if len(data) < 1:
                raise TruncatedError("cuc", "pfield", "no octet left for the P-field")
            p1 = data[0]
            code_id = (p1 >> 4) & 0b111
            if code_id not in (LEVEL1_ID, LEVEL2_ID):
                raise DecodeError(
                    "cuc", "pfield.time_code_id",
                    f"expected 001 (level 1) or 010 (level 2) for CUC, got {code_id:03b}",
                )  # fmt: skip
            level = 1 if code_id == LEVEL1_ID else 2
            coarse_n, fine_n = ((p1 >> 2) & 0b11) + 1, p1 & 0b11
            pos = 1
            if p1 & 0x80:
                if len(data) < 2:
                    raise TruncatedError("cuc", "pfield", "extension flag set but no second octet")
                p2 = data[1]
                if p2 & 0x80:
                    raise DecodeError(
                        "cuc", "pfield.extension", "a third P-field octet is not defined for CUC"
                    )
                coarse_n += (p2 >> 5) & 0b11
                fine_n += (p2 >> 2) & 0b111
                pos = 2
        end = pos + coarse_n + fine_n
        if len(data) < end:
            raise TruncatedError(
                "cuc", "t_field", f"needs {coarse_n}+{fine_n} octets, {len(data) - pos} remain"
            )
        raw = bytes(data[pos:end])
        coarse = int.from_bytes(raw[:coarse_n], "big")
        fine = int.from_bytes(raw[coarse_n:], "big")
        return CucValue(coarse, fine, coarse_n, fine_n, level), end

    def decode(self, data: bytes | bytearray | memoryview) -> tuple[float, int]:
        """Decode to seconds since this format's epoch; return them and the octets taken."""
        value, n = self.unpack(data)
        t_s = value.t_s
        if value.level == 1 and self.level == 2:
            # A level 1 code counts from 1958 TAI; move it to our epoch.
            t_s -= (self.epoch - CCSDS_EPOCH).total_seconds()
        elif value.level == 2 and self.level == 1:
            raise DecodeError(
                "cuc", "pfield.time_code_id",
                "level 2 (agency epoch) code received but this format has no agency epoch",
            )  # fmt: skip
        return t_s, n

    def decode_utc(self, data: bytes | bytearray | memoryview) -> tuple[datetime, int]:
        t_s, n = self.decode(data)
        return utc_from_tai_seconds(self.epoch, t_s), n
