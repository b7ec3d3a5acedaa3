"""TAI and UTC, for time codes whose epoch is a TAI instant.

CCSDS time codes count TAI seconds (no leap seconds) from their epoch; the
CCSDS epoch is 1958-01-01T00:00:00 TAI. Python datetimes and Unix time are UTC
without leap seconds. Going from one to the other adds TAI-UTC, an integer
number of seconds since 1972-01-01, taken here from the IERS table of leap
seconds. Times before 1972 (when TAI-UTC was not an integer) are refused.

The table ends with the leap second of 2016-12-31 (TAI-UTC = 37 s); IERS
Bulletin C announces new ones six months ahead. Add a row when one is announced.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta

from linkstack.errors import EncodeError

# (first UTC day on which the offset holds, TAI-UTC in seconds)
_LEAP_TABLE: tuple[tuple[datetime, int], ...] = tuple(
    (datetime(y, m, 1, tzinfo=UTC), off)
    for y, m, off in (
        (1972, 1, 10), (1972, 7, 11), (1973, 1, 12), (1974, 1, 13), (1975, 1, 14),
        (1976, 1, 15), (1977, 1, 16), (1978, 1, 17), (1979, 1, 18), (1980, 1, 19),
        (1981, 7, 20), (1982, 7, 21), (1983, 7, 22), (1985, 7, 23), (1988, 1, 24),
        (1990, 1, 25), (1991, 1, 26), (1992, 7, 27), (1993, 7, 28), (1994, 7, 29),
        (1996, 1, 30), (1997, 7, 31), (1999, 1, 32), (2006, 1, 33), (2009, 1, 34),
        (2012, 7, 35), (2015, 7, 36), (2017, 1, 37),
    )
)  # fmt: skip
_LEAP_STARTS = [row[0] for row in _LEAP_TABLE]

CCSDS_EPOCH = datetime(1958, 1, 1, tzinfo=UTC)
"""1958-01-01T00:00:00, read as a TAI calendar instant (not UTC)."""


def _require_aware(dt: datetime, what: str) -> datetime:
    if dt.tzinfo is None:
        raise EncodeError("timescale", what, "needs a timezone-aware datetime (UTC)")
    return dt.astimezone(UTC)


def tai_minus_utc_s(utc: datetime) -> int:
    """TAI-UTC in seconds at the UTC instant ``utc`` (1972 onwards)."""
    utc = _require_aware(utc, "utc")
    i = bisect.bisect_right(_LEAP_STARTS, utc) - 1
    if i < 0:
        raise EncodeError("timescale", "utc", "TAI-UTC is not an integer before 1972-01-01")
    return _LEAP_TABLE[i][1]


def utc_to_tai(utc: datetime) -> datetime:
    """The TAI calendar reading (as a datetime labelled UTC) of the UTC instant ``utc``."""
    return _require_aware(utc, "utc") + timedelta(seconds=tai_minus_utc_s(utc))


def tai_to_utc(tai: datetime) -> datetime:
    """Inverse of :func:`utc_to_tai` (a TAI reading inside a leap second maps to its end)."""
    tai = _require_aware(tai, "tai")
    guess = tai - timedelta(seconds=tai_minus_utc_s(tai - timedelta(seconds=37)))
    # The offset can differ by one between the guess and the answer near a leap second.
    for off in (tai_minus_utc_s(guess), tai_minus_utc_s(guess) - 1):
        utc = tai - timedelta(seconds=off)
        if tai_minus_utc_s(utc) == off:
            return utc
    return guess


def tai_seconds_since(epoch_tai: datetime, utc: datetime) -> float:
    """Seconds of TAI elapsed from the TAI instant ``epoch_tai`` to the UTC instant ``utc``."""
    return (utc_to_tai(utc) - _require_aware(epoch_tai, "epoch")).total_seconds()


def utc_from_tai_seconds(epoch_tai: datetime, t_s: float) -> datetime:
    """The UTC instant that is ``t_s`` TAI seconds after the TAI instant ``epoch_tai``."""
    return tai_to_utc(_require_aware(epoch_tai, "epoch") + timedelta(seconds=t_s))
