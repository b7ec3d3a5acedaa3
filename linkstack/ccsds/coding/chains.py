"""The coded transmit and receive chains, composed from the codecs.

TM and AOS (CCSDS 131.0-B-4), per transfer frame:

    transmit  frame -> Reed-Solomon encode -> randomize the codeblock -> ASM + codeblock (a CADU)
    receive   bits -> find the ASM (any bit offset, either polarity) -> derandomize
              -> Reed-Solomon decode -> frame, or "lost" when a codeword is uncorrectable

The randomizer covers the whole codeblock (frame and check symbols) and starts
at its first bit, after the ASM; the receiver therefore derandomizes before it
decodes. TC (231.0-B-4), per frame: frame -> (TC randomizer) -> BCH codeblocks
-> CLTU, and back.

Every object here is sans-I/O: bytes in, bytes out, counters in ``stats``. The
receivers never raise on received data; a unit they cannot use is counted under
its reason and dropped (``no_asm``, ``rs_uncorrectable``, ``bad_start``,
``frame_incomplete``), so that a lost frame is a counted frame, never a wrong one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from linkstack.ccsds.coding.cltu import DecodeMode, decode_cltu, encode_cltu
from linkstack.ccsds.coding.randomizer import tm_randomize, tm_sequence
from linkstack.ccsds.coding.rs import INTERLEAVING_DEPTHS, ReedSolomon
from linkstack.ccsds.coding.sync import ASM, FrameSynchronizer, find_frame
from linkstack.ccsds.tc import HEADER_LEN as TC_HEADER_LEN
from linkstack.errors import DecodeError, EncodeError, check_range

TC_MIN_FRAME_LEN = TC_HEADER_LEN + 1


@dataclass(frozen=True, slots=True)
class CaduCoding:
    """Managed parameters of the TM/AOS synchronization and channel coding sublayer."""

    rs_e: int | None = 16  # 16 -> RS(255,223), 8 -> RS(255,239), None -> no Reed-Solomon
    rs_depth: int = 5
    dual_basis: bool = True
    randomize: bool = True
    asm: bytes = ASM
    max_asm_errors: int = 4

    def __post_init__(self) -> None:
        if self.rs_e not in (None, 8, 16):
            raise EncodeError("coding", "rs_e", f"must be 16, 8 or None, got {self.rs_e!r}")
        if self.rs_depth not in INTERLEAVING_DEPTHS:
            raise EncodeError(
                "coding", "rs_depth", f"must be one of {INTERLEAVING_DEPTHS}, got {self.rs_depth}"
            )
        check_range("coding", "max_asm_errors", self.max_asm_errors, 0, 8 * len(self.asm) // 2 - 1)

    def codeblock_length(self, frame_length: int) -> int:
        return frame_length + (2 * self.rs_e * self.rs_depth if self.rs_e else 0)


class DecodedFrame(NamedTuple):
    frame: bytes
    symbols_corrected: int  # by Reed-Solomon, over all the codewords of the frame


class _CaduChain:
    def __init__(self, frame_length: int, coding: CaduCoding | None = None) -> None:
        self.coding = coding or CaduCoding()
        self.frame_length = frame_length
        c = self.coding
        self.rs = ReedSolomon(c.rs_e, c.rs_depth, frame_length, c.dual_basis) if c.rs_e else None
        self.codeblock_length = c.codeblock_length(frame_length)
        self.cadu_length = len(c.asm) + self.codeblock_length
        pn = np.frombuffer(tm_sequence(self.codeblock_length), np.uint8)
        self._pn = pn if c.randomize else None

    def _randomize(self, block: bytes) -> bytes:
        """XOR with the TM/AOS sequence (its own inverse) when randomization is on."""
        return tm_randomize(block) if self._pn is not None else block


class CaduTransmitter(_CaduChain):
    """Frames of one physical channel -> CADUs (ASM + randomized RS codeblock)."""

    def cadu(self, frame: bytes) -> bytes:
        if len(frame) != self.frame_length:
            raise EncodeError(
                "coding", "frame_length", f"expected {self.frame_length} octets, got {len(frame)}"
            )
        block = self.rs.encode(frame) if self.rs else bytes(frame)
        return self.coding.asm + self._randomize(block)

    def cadus(self, frames: list[bytes]) -> list[bytes]:
        """Many frames at once (one vectorised RS pass): the fast path. No frames: a
        batch of none, no CADU."""
        joined = b"".join(frames)
        if len(joined) != len(frames) * self.frame_length:
            raise EncodeError(
                "coding", "frame_length", f"every frame must be {self.frame_length} octets"
            )
        arr = np.frombuffer(joined, np.uint8).reshape(len(frames), self.frame_length)
        blocks = self.rs.encode_batch(arr) if self.rs else arr.copy()
        if self._pn is not None:
            blocks ^= self._pn
        asm_len = len(self.coding.asm)
        out = np.empty((len(frames), self.cadu_length), np.uint8)
        out[:, :asm_len] = np.frombuffer(self.coding.asm, np.uint8)
        out[:, asm_len:] = blocks
        raw = out.tobytes()
        n = self.cadu_length
        return [raw[i : i + n] for i in range(0, len(raw), n)]


class CaduReceiver(_CaduChain):
    """CADUs (one per unit, or a continuous bit stream) -> frames.

    ``stats``: ``cadus`` units examined, ``no_asm`` units without a usable ASM,
    ``frames`` delivered, ``rs_frames_corrected`` frames that needed correction,
    ``rs_symbols_corrected``, ``rs_uncorrectable`` frames lost to Reed-Solomon;
    per codeword ``rs_codewords`` decoded, ``rs_codewords_corrected`` and
    ``rs_codewords_uncorrectable``.
    The stream path adds the frame synchronizer's counters (``sync`` prefix).
    """

    def __init__(self, frame_length: int, coding: CaduCoding | None = None) -> None:
        super().__init__(frame_length, coding)
        self.stats: Counter[str] = Counter()
        c = self.coding
        self.synchronizer = FrameSynchronizer(self.codeblock_length, c.asm, c.max_asm_errors)

    def _decode(self, block: bytes) -> DecodedFrame | None:
        block = self._randomize(block)
        if self.rs is None:
            self.stats["frames"] += 1
            return DecodedFrame(block, 0)
        result = self.rs.decode(block)
        # per codeword too: what a mission's ground station reports
        self.stats["rs_codewords"] += len(result.corrected)
        fixed = sum(1 for c in result.corrected if c > 0)
        if fixed:
            self.stats["rs_codewords_corrected"] += fixed
        if result.frame is None:
            self.stats["rs_uncorrectable"] += 1
            self.stats["rs_codewords_uncorrectable"] += sum(1 for c in result.corrected if c < 0)
            return None
        n = result.symbols_corrected
        if n:
            self.stats["rs_frames_corrected"] += 1
            self.stats["rs_symbols_corrected"] += n
        self.stats["frames"] += 1
        return DecodedFrame(result.frame, n)

    def receive_cadu(self, unit: bytes) -> DecodedFrame | None:
        """One received unit that should hold one CADU, perhaps shifted by some bits."""
        self.stats["cadus"] += 1
        c = self.coding
        block = find_frame(unit, self.codeblock_length, c.asm, c.max_asm_errors)
        if block is None:
            self.stats["no_asm"] += 1
            return None
        return self._decode(block)

    def receive_stream(self, data: bytes) -> list[DecodedFrame]:
        """The next octets of a continuous bit stream of CADUs."""
        out = []
        for block in self.synchronizer.push(data):
            self.stats["cadus"] += 1
            got = self._decode(block)
            if got is not None:
                out.append(got)
        return out

    def all_stats(self) -> Counter[str]:
        total = Counter(self.stats)
        for k, v in self.synchronizer.stats.items():
            total[f"sync_{k}"] = v
        return total


@dataclass(frozen=True, slots=True)
class CltuCoding:
    """Managed parameters of the TC synchronization and channel coding sublayer."""

    randomize: bool = True
    mode: DecodeMode = DecodeMode.CORRECT
    max_start_errors: int = 0


class CltuTransmitter:
    def __init__(self, coding: CltuCoding | None = None) -> None:
        self.coding = coding or CltuCoding()

    def cltu(self, frame: bytes) -> bytes:
        return encode_cltu(frame, self.coding.randomize)


class CltuReceiver:
    """CLTUs -> TC frames (cut at their length field; the TC layer checks the rest).

    ``stats``: ``cltus``, ``frames``, ``bits_corrected``, ``bad_start`` (no start
    sequence: not a CLTU), ``frame_incomplete`` (decoding stopped at a refused
    codeblock before the frame was complete: the frame is lost),
    ``bad_frame_length`` (the length field announces less than a header and one
    octet of data).
    """

    def __init__(self, coding: CltuCoding | None = None) -> None:
        self.coding = coding or CltuCoding()
        self.stats: Counter[str] = Counter()

    def receive(self, unit: bytes) -> bytes | None:
        c = self.coding
        self.stats["cltus"] += 1
        try:
            decoded = decode_cltu(unit, c.mode, c.randomize, c.max_start_errors)
            frame = decoded.frame()
        except DecodeError as exc:
            self.stats["bad_start" if exc.field == "start_sequence" else "frame_incomplete"] += 1
            return None
        self.stats["bits_corrected"] += decoded.corrected_bits
        if len(frame) < TC_MIN_FRAME_LEN:  # a damaged length field can cut it that short
            self.stats["bad_frame_length"] += 1
            return None
        self.stats["frames"] += 1
        return frame
