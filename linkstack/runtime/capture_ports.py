"""The UDP port of each layer in linkstack's captures and on the daemons' wires.

Here, below the capture layer, because a mission profile (:mod:`linkstack.runtime.mission_profile`)
starts from this table and the scenario reads profiles; :mod:`linkstack.capture.network`
serves it to the writer and the reader.
"""

from __future__ import annotations

PORTS: dict[str, int] = {
    "cltu": 47001,
    "tm_cadu": 47002,
    "aos_cadu": 47003,
    "tc_frame": 47011,
    "tm_frame": 47012,
    "aos_frame": 47013,
    "uslp_frame": 47014,  # USLP frames of every link kind (frames.protocol = "uslp")
    "space_packet": 47020,
}
