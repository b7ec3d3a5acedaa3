"""Fuzz target: orbital elements, the TLE sets behind a scenario's fleet.

A damaged TLE must be refused with ConfigError; checksums catch most damage, so the
damaged sets have their checksums recomputed to reach the parser behind them.
"""

from __future__ import annotations

from channels.orbit import parse_tles
from linkstack.errors import ConfigError
from linkstack.tools.fuzz.engine import FuzzCheckError, Target

_ISS_TLE = (
    "ISS (ZARYA)\n"
    "1 25544U 98067A   24001.50000000  .00016717  00000-0  10270-3 0  9005\n"
    "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.50377579432925"
)


def _fix_tle_checksums(buf: bytes) -> bytes:
    """Recompute the modulo-10 checksum of every line that looks like TLE line 1 or 2."""
    lines = buf.decode("latin-1").split("\n")
    for i, line in enumerate(lines):
        if line[:2] in ("1 ", "2 ") and len(line) >= 69:
            total = sum(int(c) if c in "0123456789" else c == "-" for c in line[:68])
            lines[i] = line[:68] + str(total % 10) + line[69:]
    return "\n".join(lines).encode("latin-1")


def _tle_decoder(buf: bytes) -> object:
    """TLE text in, satellites out: a damaged TLE must be refused with ConfigError
    (checksums catch most damage), never with another exception."""
    sats = parse_tles(buf.decode("latin-1"))
    for sat in sats:
        if not sat.name or sat.satrec.no_kozai <= 0:
            raise FuzzCheckError(f"accepted a satellite without a name or mean motion: {sat}")
    return sats


TARGETS: list[Target] = [
    Target(
        "orbit.parse_tles",
        lambda rng: _fix_tle_checksums(_ISS_TLE.encode()),
        lambda: _tle_decoder,
        strict=True,
        max_random_len=200,
        refusal=ConfigError,
        fix=_fix_tle_checksums,
    ),
]
