"""The channel coding of a replay's units, found from the units themselves, sans-I/O.

A foreign capture does not say how its CLTUs and CADUs were coded, so the replay
(:mod:`linkstack.capture.replay`) finds out from a link's first units, as the Wireshark
dissector does: :func:`cltu_randomized` tries the TC randomizer on and off until the
CLTU gives a frame that unpacks; :class:`CaduDetector` tries the Reed-Solomon codes,
depths and randomization until the CADU gives a frame of the right version whose FECF
checks. The codec chains pull numpy and numba in, so :func:`heavy` imports them on
first use, not when the command line registers ``linkstack replay``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from linkstack.capture.replay_uslp import is_uslp
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.tc import TcFrame
from linkstack.errors import DecodeError

if TYPE_CHECKING:  # imported when first used (heavy)
    from linkstack.ccsds.coding.chains import CaduCoding, CaduReceiver, CltuCoding, CltuReceiver
    from linkstack.ccsds.coding.cltu import CltuDecoded, DecodeMode
    from linkstack.runtime.routing import RelayHeader

_MIN_FRAME_LEN = 8  # shorter than any frame's header and FECF


@dataclass(frozen=True, slots=True)
class Heavy:
    """What replay uses of the modules that pull numpy, numba or the orbit code in."""

    decode_cltu: Callable[[bytes, DecodeMode, bool, int], CltuDecoded]
    INTERLEAVING_DEPTHS: tuple[int, ...]
    ASM: bytes
    CaduCoding: type[CaduCoding]
    CaduReceiver: type[CaduReceiver]
    CltuCoding: type[CltuCoding]
    CltuReceiver: type[CltuReceiver]
    RELAY_APID: int
    RelayHeader: type[RelayHeader]


@functools.cache
def heavy() -> Heavy:
    """The modules that pull numpy, numba or the orbit code in, imported on first use."""
    from linkstack.ccsds.coding.chains import (  # noqa: PLC0415
        CaduCoding,
        CaduReceiver,
        CltuCoding,
        CltuReceiver,
    )
    from linkstack.ccsds.coding.cltu import decode_cltu  # noqa: PLC0415
    from linkstack.ccsds.coding.rs import INTERLEAVING_DEPTHS  # noqa: PLC0415
    from linkstack.ccsds.coding.sync import ASM  # noqa: PLC0415
    from linkstack.runtime.routing import RELAY_APID, RelayHeader  # noqa: PLC0415

    return Heavy(
        decode_cltu=decode_cltu,
        INTERLEAVING_DEPTHS=INTERLEAVING_DEPTHS,
        ASM=ASM,
        CaduCoding=CaduCoding,
        CaduReceiver=CaduReceiver,
        CltuCoding=CltuCoding,
        CltuReceiver=CltuReceiver,
        RELAY_APID=RELAY_APID,
        RelayHeader=RelayHeader,
    )


def cltu_randomized(data: bytes) -> bool | None:
    """Whether this CLTU's frame was randomized: the first setting (linkstack's, on,
    then off: foreign CLTUs may not be) that gives a TC or USLP frame that unpacks;
    None when neither does."""
    h = heavy()
    for randomize in (True, False):
        frame = h.CltuReceiver(h.CltuCoding(randomize=randomize)).receive(data)
        if frame is None:
            continue
        try:
            if not is_uslp(frame):
                TcFrame.unpack(frame)
        except DecodeError:
            continue
        return randomize
    return None


class CaduDetector:
    """Finds a CADU's coding; the receivers it tries with are kept for the next CADU."""

    def __init__(self) -> None:
        self._probes: dict[tuple[int | None, int, bool, int], CaduReceiver] = {}

    def _probe(self, e: int | None, depth: int, randomize: bool, frame_len: int) -> CaduReceiver:
        key = (e, depth, randomize, frame_len)
        rx = self._probes.get(key)
        if rx is None:
            h = heavy()
            coding = h.CaduCoding(rs_e=e, rs_depth=depth, randomize=randomize)
            rx = self._probes[key] = h.CaduReceiver(frame_len, coding)
        return rx

    def detect(self, data: bytes, version: int) -> tuple[CaduCoding, int, str] | None:
        """The coding that turns this CADU into a frame of the right version (or a USLP
        frame) whose FECF checks, trying linkstack's first (RS(255,223) x 5,
        randomized): (coding, frame length, its name), or None when none does."""
        h = heavy()
        block = len(data) - len(h.ASM)
        candidates: list[tuple[int | None, int, bool]] = [(16, 5, True)]
        for randomize in (True, False):
            for rs_e in (16, 8):
                candidates += [(rs_e, d, randomize) for d in h.INTERLEAVING_DEPTHS]
            candidates.append((None, 1, randomize))
        seen = set()
        for e, depth, randomize in candidates:
            if (e, depth, randomize) in seen:
                continue
            seen.add((e, depth, randomize))
            frame_len = block - (2 * e * depth if e else 0)
            if e is not None:
                if not depth <= frame_len <= (255 - 2 * e) * depth or frame_len % depth:
                    continue
            elif frame_len < _MIN_FRAME_LEN:
                continue
            rx = self._probe(e, depth, randomize, frame_len)
            got = rx.receive_cadu(data)
            if got is None or crc16_ccitt(got.frame):
                continue
            if got.frame[0] >> 6 != version and not is_uslp(got.frame):
                continue
            code = f"RS(255,{255 - 2 * e}) x {depth}" if e else "no Reed-Solomon"
            name = f"{code}, {'randomized' if randomize else 'not randomized'}"
            return rx.coding, frame_len, f"{name}, {frame_len}-octet frames"
        return None
