"""What each end of the packet bridge saw of each packet, one JSON line a packet.

A packet of the user's APIDs crosses two processes: the ground daemon's gateway and
a satellite's radio in the sat daemon. Neither sees the whole trip, so each writes
what it saw to ``<out_dir>/<name>-packets.jsonl`` (``name``: the ground's, or
``sat-...``) as the packet passes, and ``linkstack packets`` joins the two files into
one timeline per packet (:mod:`linkstack.tools.packet_timelines`). Instants are
scenario seconds (``t_s``) of the daemons' one clock, so the ends' files line up.

A record: ``{"at": "ground"|"sat", "way": "up"|"down", "satellite", "apid", "seq",
"octets", "crc32"}`` and the instants of that end:

- ground, up: ``received_s`` (the gateway took it), ``radiated_s`` (its first frame
  began to radiate), ``acknowledged_s`` (FOP-1 saw its last frame acknowledged in a
  CLCW; null with ``"failed": true`` if COP-1 gave it up), ``frames``,
  ``retransmissions``;
- sat, up: ``onboard_s`` (FARM-1 delivered it and the radio handed it on);
- sat, down: ``from_flight_s`` (the radio took it from the flight software);
- ground, down: ``on_ground_s`` (the ground extracted it) and ``handed_out_s``.

The packet's key, the same at both ends: satellite, way, APID, sequence count and
CRC-32 of its octets (the sequence count alone wraps at 16,384).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path
from typing import IO, Any

from linkstack.ccsds.spp import SpacePacket


def packet_key(raw: bytes) -> dict[str, int]:
    """The fields that name a packet in a record: APID, sequence count, length, CRC-32."""
    packet = SpacePacket.unpack(raw)
    return {
        "apid": packet.apid,
        "seq": packet.seq_count,
        "octets": len(raw),
        "crc32": zlib.crc32(raw),
    }


class PacketLog:
    """Appends the records of one end (``at``) to ``path``, a line as each packet
    passes (flushed, so a crash loses nothing written); without a path it only counts."""

    def __init__(self, at: str, path: Path | None = None) -> None:
        self.at = at
        self.path = path
        self.stats: Counter[str] = Counter()
        self._file: IO[str] | None = None

    def record(self, way: str, satellite: str, raw: bytes, **instants: Any) -> None:
        self.stats[f"records_{way}"] += 1
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        line = {"at": self.at, "way": way, "satellite": satellite, **packet_key(raw), **instants}
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
