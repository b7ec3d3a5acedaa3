"""Fuzzing of every decoder: ``linkstack fuzz``.

Each target feeds a decoder random byte strings and mutated valid units (bit
flips, truncation, extra octets, corruption with the FECF recomputed so that it
passes the CRC, random headers on valid bodies). What must hold:

- strict decoders (``unpack``) raise only :class:`DecodeError`; whatever they
  accept re-encodes to exactly the input octets (so nothing was misread);
- receivers (stateful, kept across inputs) never raise, and every packet they
  hand out is a well-formed Space Packet whose length field matches its size.

Any other outcome is a failure, reported with the input in hex to reproduce it.

:mod:`.engine` is the loop, the shared checks and the table ``linkstack fuzz``
prints; the targets come by family: :mod:`.framing` (Space Packets, CUC, TM, TC and AOS
frames, packet zones), :mod:`.uslp` (USLP frames and receivers), :mod:`.coding` (CLTUs,
frame synchronization), :mod:`.orbit` (TLE sets), :mod:`.fec` (Reed-Solomon, the coded
chains), :mod:`.cop1` (CLCWs, control commands, FARM-1, FOP-1), :mod:`.capture` (the
pcap reader), :mod:`.conformance` (the conformance checker), :mod:`.config` (scenario
files, MQTT requests), :mod:`.messages` (the query and answer messages),
:mod:`.interfaces` (what outside software hands the daemons: streams of units, TM frames
to multiplex), :mod:`.sdls` (Space Data Link Security on TC, TM and AOS frames),
:mod:`.sdls_ep` (its extended procedures' PDUs and the SA manager on board),
:mod:`.mission` (real downlinks read as a mission profile says: the replay chain, raw
recordings, ``--detect``, the profile loader).
"""

from __future__ import annotations

from linkstack.tools.fuzz import (
    capture,
    coding,
    config,
    conformance,
    cop1,
    engine,
    fec,
    framing,
    interfaces,
    messages,
    mission,
    orbit,
    sdls,
    sdls_ep,
    uslp,
    uslp_captures,
)
from linkstack.tools.fuzz.engine import FuzzCheckError, Report, Target, fuzz_target

__all__ = ["TARGETS", "FuzzCheckError", "Report", "Target", "fuzz_target", "main"]

# in the order of the table `linkstack fuzz` prints
TARGETS: list[Target] = [
    *framing.TARGETS,
    *uslp.TARGETS,
    *interfaces.TARGETS,
    *sdls.TARGETS,
    *sdls_ep.TARGETS,
    *coding.TARGETS,
    *orbit.TARGETS,
    *fec.TARGETS,
    *cop1.TARGETS,
    *capture.TARGETS,
    *conformance.TARGETS,
    *uslp_captures.TARGETS,
    *config.TARGETS,
    *messages.TARGETS,
    *mission.TARGETS,
]


def main(iterations: int, seed: int = 0, only: list[str] | None = None) -> int:
    """``linkstack fuzz``: every target (or those whose name starts with one of ``only``)."""
    return engine.main(TARGETS, iterations, seed, only)
