"""Attached Sync Marker and frame synchronization, CCSDS 131.0-B-4 §9.

On a TM or AOS downlink every (randomized) codeblock travels behind the 32-bit
Attached Sync Marker 1ACFFC1D; codeblock and ASM together are a CADU. The
receiver sees a bit stream in which the CADUs may start at any bit (nothing
keeps octet boundaries across a demodulator), bits may be corrupted, inserted
or lost (bit slips), and the whole stream may be inverted (the phase ambiguity
of BPSK/QPSK demodulation). This module finds the CADUs again.

- :func:`attach_asm` builds a CADU.
- :class:`FrameSynchronizer` follows an endless bit stream fed in octets of any
  size, as a ground receiver's frame synchronizer does (states below).
- :func:`find_frame` / :func:`find_asm` handle one unit on its own (and
  :func:`find_asms` lists every match in it): in the emulator each CADU usually
  arrives alone in its own datagram, perhaps shifted by a few bits, and there is
  no stream to follow.

Bit positions count from the first bit of the stream (or unit), MSB first.
An ASM "matches" at a position when the 32 bits there differ from the ASM in at
most ``max_asm_errors`` bits; it matches inverted when they differ from its
complement in at most that many bits, and the frame that follows is then
complemented back. ``max_asm_errors`` must stay below half the ASM length so
that the two cannot both match.

Synchronizer states and delivery policy:

SEARCH
    looks for a matching ASM, either polarity, at every bit position (numpy:
    each of the 8 bit phases of 40-bit windows, XOR with the ASM, popcount).
CHECK
    a candidate was found; ``check_frames`` further ASMs must match, with the
    same polarity, exactly one CADU apart. If one does not, the candidate was a
    false alarm and SEARCH resumes one bit after it. Frames found in SEARCH
    and CHECK are *held, not lost*: when the check succeeds the frames from the
    candidate on are delivered (so acquisition costs no frame, only latency);
    when it fails nothing is delivered. A frame is therefore never delivered
    on the word of a single unconfirmed ASM (about one false alarm per 50,000
    bit positions of random data with 4 errors tolerated, both polarities).
LOCK
    delivers the frame behind each ASM found at the expected position (errors
    counted under ``asm_bit_errors``). At the expected position it also accepts
    the complemented ASM (the polarity flipped: ``inversions``), and, if neither
    matches, an ASM up to ``max_slip_bits`` bits early or late (``slips``): a
    bit slip moves the stream by a bit or a few, and the shifted ASM is found
    at once, losing only the frame in which the slip happened (which is
    delivered damaged; the RS decoder rejects it). The ASM's autocorrelation
    keeps its copies shifted by 1 to 7 bits at least 11 bits away from it; a
    shifted ASM is accepted with at most ``max_asm_errors // 2`` errors so that
    an ASM hit by many errors is not taken for a slipped one.
FLYWHEEL
    the expected ASM was not found (not even slipped): the frame at the expected
    position is still delivered (``frames_flywheel``; it is probably right if
    only the ASM was hit by noise) for up to ``flywheel_frames`` consecutive
    misses. A match returns to LOCK; one more miss is a ``sync_losses`` and
    SEARCH restarts *one bit after the last ASM that matched*, so that a slip
    larger than ``max_slip_bits`` (or a polarity flip hidden in noise) is
    found again in the data already received instead of frames later.

Never raises on received data. After each :meth:`FrameSynchronizer.push` the
synchronizer holds at most :attr:`FrameSynchronizer.max_buffered` octets
(about ``max(check_frames + 1, flywheel_frames + 2)`` CADUs), whatever it was fed.
"""

from __future__ import annotations

from collections import Counter, deque
from enum import Enum
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from linkstack.errors import EncodeError, check_range

ASM = bytes.fromhex("1acffc1d")

_INVERT = bytes(255 - i for i in range(256))  # bytes.translate table: complement
_U64_8 = np.uint64(8)
_SCAN_FIRST_BLOCK = 2048  # octets scanned first; doubles up to _SCAN_MAX_BLOCK
_SCAN_MAX_BLOCK = 65536  # octets; bounds the numpy temporaries (8 bytes an octet)
_SCAN_2D_MAX = 2048  # octets; up to this, all 8 bit phases in one 2-D array
_SMALL_SCAN = 48  # positions; fewer are scanned with Python ints (numpy costs ~12 µs)


def attach_asm(codeblock: bytes | bytearray | memoryview, asm: bytes = ASM) -> bytes:
    """The CADU: the ASM followed by the (randomized) codeblock."""
    return asm + bytes(codeblock)


class SyncState(Enum):
    SEARCH = "search"
    CHECK = "check"
    LOCK = "lock"
    FLYWHEEL = "flywheel"


class AsmMatch(NamedTuple):
    """An ASM found at bit ``bit_offset``; ``errors`` counts the bits that differ
    from the ASM (from its complement when ``inverted``)."""

    bit_offset: int
    errors: int
    inverted: bool


# the set bits of each element; numpy >= 2.0 (pyproject) has the ufunc
_popcount = np.bitwise_count


class _Marker:
    """An ASM and its error tolerance, with the bit-level matching primitives."""

    def __init__(self, asm: bytes, max_errors: int) -> None:
        if not isinstance(asm, bytes | bytearray) or not 1 <= len(asm) <= 31:
            raise EncodeError("sync", "asm", f"must be 1..31 octets, got {asm!r}")
        self.asm = bytes(asm)
        self.octets = len(asm)
        self.bits = 8 * len(asm)
        self.value = int.from_bytes(asm, "big")
        self.mask = (1 << self.bits) - 1
        # below half the length, so that a position matches one polarity at most
        self.max_errors = check_range("sync", "max_asm_errors", max_errors, 0, (self.bits - 1) // 2)
        # numpy scan: the ASM in chunks of at most 32 bits: (octet offset, octets,
        # value, the right shifts of the 40-bit window for bit phases 0..7 as a column)
        self.chunks = []
        for o in range(0, len(asm), 4):
            part = asm[o : o + 4]
            top = 40 - 8 * len(part)
            shifts = np.arange(top, top - 8, -1, dtype=np.uint64)[:, None]
            self.chunks.append((o, len(part), np.uint64(int.from_bytes(part, "big")), shifts))

    def errors_at(self, buf: bytes | bytearray, bit: int) -> int:
        """Bits that differ from the ASM at bit ``bit`` of ``buf`` (the whole ASM must
        be inside ``buf``)."""
        i, k = divmod(bit, 8)
        if k == 0:
            w = int.from_bytes(buf[i : i + self.octets], "big")
        else:
            w = (int.from_bytes(buf[i : i + self.octets + 1], "big") >> (8 - k)) & self.mask
        return (w ^ self.value).bit_count()

    def scan(self, buf: bytes | bytearray, start: int, stop: int) -> list[AsmMatch]:
        """Every match, either polarity, at bit positions ``start <= p < stop`` of
        ``buf``, in order. The ASM must fit at ``stop - 1``."""
        if stop - start <= _SMALL_SCAN:
            return self._scan_small(buf, start, stop)
        out = []
        for lo in range(start, stop, 8 * _SCAN_MAX_BLOCK):  # bounded numpy temporaries
            out += self._scan_block(buf, lo, min(stop, lo + 8 * _SCAN_MAX_BLOCK))
        return out

    def _scan_block(self, buf: bytes | bytearray, start: int, stop: int) -> list[AsmMatch]:
        i0 = start // 8
        n = (stop - 1) // 8 - i0 + 1  # octet positions whose 8 bit phases are examined
        # the 40-bit windows starting at each octet: the last position examined ends in
        # octet n + octets - 1, and the views below read 3 octets past it (zeros)
        seg = bytes(buf[i0 : i0 + n + self.octets]).ljust(n + self.octets + 3, b"\0")
        width = n + self.octets - 1
        v32 = np.ndarray((width,), dtype=">u4", buffer=seg, strides=(1,)).astype(np.uint64)
        v40 = (v32 << _U64_8) | np.frombuffer(seg, dtype=np.uint8, count=width, offset=4)
        lo, hi = self.max_errors, self.bits - self.max_errors
        if n <= _SCAN_2D_MAX:
            # the 8 phases at once: fewer numpy calls, which is what costs on short data
            errors = None
            for offset, octets, value, shifts in self.chunks:
                w = (v40[None, offset : offset + n] >> shifts) & np.uint64((1 << 8 * octets) - 1)
                counts = _popcount(w ^ value)
                errors = counts if errors is None else errors + counts
            assert errors is not None
            k, idx = np.nonzero((errors <= lo) | (errors >= hi))
            pos, err = (idx + i0) * 8 + k, errors[k, idx]
        else:  # phase by phase in preallocated arrays: faster once they outgrow the cache
            phase_errors = np.empty(n, dtype=np.uint8)
            window = np.empty(n, dtype=np.uint64)
            counts = np.empty(n, dtype=np.uint8)
            hits_pos, hits_err = [], []
            for phase in range(8):
                phase_errors.fill(0)
                for offset, octets, value, shifts in self.chunks:
                    np.right_shift(v40[offset : offset + n], shifts[phase, 0], out=window)
                    np.bitwise_and(window, np.uint64((1 << 8 * octets) - 1), out=window)
                    np.bitwise_xor(window, value, out=window)
                    _popcount(window, out=counts)
                    phase_errors += counts
                idx = np.flatnonzero((phase_errors <= lo) | (phase_errors >= hi))
                hits_pos.append((idx + i0) * 8 + phase)
                hits_err.append(phase_errors[idx])
            pos, err = np.concatenate(hits_pos), np.concatenate(hits_err)
        order = np.argsort(pos, kind="stable")
        out = []
        for p, e in zip(pos[order].tolist(), err[order].tolist(), strict=True):
            if start <= p < stop:
                out.append(AsmMatch(p, e, False) if e <= lo else AsmMatch(p, self.bits - e, True))
        return out

    def _scan_small(self, buf: bytes | bytearray, start: int, stop: int) -> list[AsmMatch]:
        i0 = start // 8
        end_octet = (stop - 1 + self.bits + 7) // 8
        v = int.from_bytes(buf[i0:end_octet], "big")
        total = 8 * (end_octet - i0)
        mask, value, lo, hi = self.mask, self.value, self.max_errors, self.bits - self.max_errors
        out = []
        for p in range(start, stop):
            e = (((v >> (total - (p - 8 * i0) - self.bits)) & mask) ^ value).bit_count()
            if e <= lo:
                out.append(AsmMatch(p, e, False))
            elif e >= hi:
                out.append(AsmMatch(p, self.bits - e, True))
        return out


@lru_cache(maxsize=16)
def _cached_marker(asm: bytes, max_errors: int) -> _Marker:
    return _Marker(asm, max_errors)


def _body(buf: bytes | bytearray, bit: int, octets: int, inverted: bool) -> bytes:
    """``octets`` octets starting at bit ``bit`` of ``buf``, complemented if asked."""
    i, k = divmod(bit, 8)
    if k == 0:
        out = bytes(buf[i : i + octets])
        return out.translate(_INVERT) if inverted else out
    mask = (1 << 8 * octets) - 1
    v = (int.from_bytes(buf[i : i + octets + 1], "big") >> (8 - k)) & mask
    if inverted:
        v ^= mask
    return v.to_bytes(octets, "big")


def find_asms(
    unit: bytes | bytearray | memoryview,
    frame_len: int = 0,
    asm: bytes = ASM,
    max_asm_errors: int = 4,
) -> list[AsmMatch]:
    """Every ASM match in ``unit``, either polarity, that has ``frame_len`` octets
    after it, in the order of their bit offsets."""
    check_range("sync", "frame_len", frame_len, 0, 1 << 20)
    marker = _cached_marker(bytes(asm), max_asm_errors)
    unit = bytes(unit)
    stop = 8 * (len(unit) - frame_len) - marker.bits + 1
    return marker.scan(unit, 0, stop) if stop > 0 else []


def find_asm(
    unit: bytes | bytearray | memoryview,
    frame_len: int = 0,
    asm: bytes = ASM,
    max_asm_errors: int = 4,
) -> AsmMatch | None:
    """The best ASM match in ``unit`` that has ``frame_len`` octets after it.

    Every bit position and both polarities are examined; the match with the
    fewest errors wins, the earliest among equals. None when there is none.
    """
    check_range("sync", "frame_len", frame_len, 0, 1 << 20)
    marker = _cached_marker(bytes(asm), max_asm_errors)
    unit = bytes(unit)
    if unit[: marker.octets] == marker.asm and len(unit) >= marker.octets + frame_len:
        return AsmMatch(0, 0, False)  # the usual case: aligned and clean, nothing can beat it
    found = find_asms(unit, frame_len, asm, max_asm_errors)
    return min(found, key=lambda m: m.errors) if found else None


def find_frame(
    unit: bytes | bytearray | memoryview,
    frame_len: int,
    asm: bytes = ASM,
    max_asm_errors: int = 4,
) -> bytes | None:
    """The ``frame_len`` octets after the best ASM match in one received unit
    (see :func:`find_asm`), aligned and with the polarity corrected; None if no
    ASM within tolerance has a whole frame after it. Never raises on the unit."""
    match = find_asm(unit, frame_len, asm, max_asm_errors)
    if match is None:
        return None
    return _body(bytes(unit), match.bit_offset + 8 * len(asm), frame_len, match.inverted)


class FrameSynchronizer:
    """Frame synchronizer for a continuous bit stream (see the module docstring).

    ``frame_len`` is the number of octets after each ASM (the randomized RS
    codeblock: 1115 for TM frames coded with RS(255,223) interleaved by 5).
    :meth:`push` takes the next octets of the stream (MSB first) and returns the
    frame bodies it completes: each exactly ``frame_len`` octets, aligned, with
    the polarity corrected. Counters in ``stats``: ``frames``,
    ``frames_flywheel``, ``frames_inverted``, ``asm_bit_errors``,
    ``acquisitions``, ``check_failures``, ``sync_losses``, ``slips``,
    ``inversions``, ``octets_discarded`` (octets dropped in SEARCH that were not
    part of a delivered frame).
    """

    def __init__(
        self,
        frame_len: int,
        asm: bytes = ASM,
        max_asm_errors: int = 4,
        check_frames: int = 1,
        flywheel_frames: int = 3,
        max_slip_bits: int = 3,
    ) -> None:
        self.frame_len = check_range("sync", "frame_len", frame_len, 1, 1 << 20)
        self._marker = _Marker(asm, max_asm_errors)
        self.check_frames = check_range("sync", "check_frames", check_frames, 0, 16)
        self.flywheel_frames = check_range("sync", "flywheel_frames", flywheel_frames, 0, 64)
        self.max_slip_bits = check_range("sync", "max_slip_bits", max_slip_bits, 0, 8)
        self.cadu_bits = self._marker.bits + 8 * frame_len
        self.stats: Counter[str] = Counter()
        self.reset()

    @property
    def max_buffered(self) -> int:
        """Octets the synchronizer may hold between two pushes, at most."""
        frames = max(self.check_frames + 1, self.flywheel_frames + 2)
        return (frames * self.cadu_bits + self.max_slip_bits) // 8 + 2

    @property
    def buffered(self) -> int:
        """Octets held now (received, not yet delivered or discarded)."""
        return len(self._buf)

    @property
    def state(self) -> SyncState:
        return self._state

    @property
    def inverted(self) -> bool:
        """True while the stream is taken as inverted."""
        return self._inverted

    def reset(self) -> None:
        """Forget the stream (end of a pass): back to SEARCH with nothing held.
        ``stats`` are kept."""
        self._buf = bytearray()
        self._base = 0  # stream bit position of _buf[0]; a multiple of 8
        self._state = SyncState.SEARCH
        self._pos = 0  # SEARCH: next position to consider; otherwise the expected ASM
        self._inverted = False
        self._cands: deque[AsmMatch] = deque()  # SEARCH: matches found but not tried
        self._scanned_to = 0  # SEARCH: positions below this were scanned
        self._cand: AsmMatch | None = None  # CHECK: the candidate being confirmed
        self._check_errors: list[int] = []  # CHECK: errors of the confirming ASMs
        self._misses = 0  # FLYWHEEL: consecutive ASMs not found
        self._last_good = 0  # LOCK/FLYWHEEL: the last ASM that matched
        self._counted_to = 0  # stream bits below this were delivered or counted discarded
        self._discarded_bits = 0

    def push(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Feed the next octets of the stream; return the frames they complete."""
        self._buf += data
        out: list[bytes] = []
        while self._step(out):
            pass
        self._trim()
        return out

    # -- the state machine -----------------------------------------------------

    def _step(self, out: list[bytes]) -> bool:
        """One transition; False when more data is needed to make the next one."""
        if self._state is SyncState.SEARCH:
            return self._search(out)
        if self._state is SyncState.CHECK:
            return self._check(out)
        return self._track(out)

    def _search(self, out: list[bytes]) -> bool:
        cand = self._next_candidate()
        if cand is None:
            return False
        self._cand, self._check_errors = cand, []
        self._state, self._pos = SyncState.CHECK, cand.bit_offset
        if self.check_frames == 0:
            self._acquire(out)
        return True

    def _next_candidate(self) -> AsmMatch | None:
        cands, marker = self._cands, self._marker
        block = _SCAN_FIRST_BLOCK
        while True:
            # no queued match lies before _pos: a failed check resumes one bit after its
            # candidate (the queue holds only later ones), and a sync loss clears the queue
            if cands:
                return cands.popleft()
            start = max(self._pos, self._scanned_to)
            stop = self._base + 8 * len(self._buf) - marker.bits + 1  # whole ASM fits
            if start >= stop:
                return None
            stop = min(stop, start + 8 * block)
            block = min(2 * block, _SCAN_MAX_BLOCK)
            base = self._base
            found = marker.scan(self._buf, start - base, stop - base)
            cands.extend(AsmMatch(m.bit_offset + base, m.errors, m.inverted) for m in found)
            self._scanned_to = stop

    def _check(self, out: list[bytes]) -> bool:
        cand, marker = self._cand, self._marker
        assert cand is not None
        nxt = self._pos + self.cadu_bits
        if self._base + 8 * len(self._buf) < nxt + marker.bits:
            return False
        e = marker.errors_at(self._buf, nxt - self._base)
        if cand.inverted:
            e = marker.bits - e
        if e > marker.max_errors:  # a false alarm: search on from the bit after it
            self.stats["check_failures"] += 1
            self._state, self._pos = SyncState.SEARCH, cand.bit_offset + 1
            return True
        self._check_errors.append(e)
        self._pos = nxt
        if len(self._check_errors) >= self.check_frames:
            self._acquire(out)
        return True

    def _acquire(self, out: list[bytes]) -> None:
        """The check succeeded (or check_frames is 0): deliver the held frames, lock."""
        cand = self._cand
        assert cand is not None
        self.stats["acquisitions"] += 1
        self._last_good = cand.bit_offset
        if cand.inverted != self._inverted:
            self.stats["inversions"] += 1
            self._inverted = cand.inverted
        errors = [cand.errors, *self._check_errors[:-1]]
        for i, e in enumerate(errors[: self.check_frames]):
            self._deliver(out, cand.bit_offset + i * self.cadu_bits, e, flywheel=False)
        self._state, self._misses = SyncState.LOCK, 0
        self._pos = cand.bit_offset + self.check_frames * self.cadu_bits
        self._cand = None

    def _track(self, out: list[bytes]) -> bool:
        """LOCK and FLYWHEEL: the ASM is expected at ``_pos``."""
        marker, buf, base = self._marker, self._buf, self._base
        p = self._pos
        end = base + 8 * len(buf)
        if end < p + self.cadu_bits:
            return False
        rel = p - base
        if rel & 7 == 0 and buf[rel >> 3 : (rel >> 3) + marker.octets] == marker.asm:
            e = 0  # the fast path: aligned and clean
        else:
            e = marker.errors_at(buf, rel)
        if self._inverted:
            e = marker.bits - e
        if e <= marker.max_errors:
            self._deliver(out, p, e, flywheel=False)
            return True
        if marker.bits - e <= marker.max_errors:  # the polarity flipped
            self._inverted = not self._inverted
            self.stats["inversions"] += 1
            self._deliver(out, p, marker.bits - e, flywheel=False)
            return True
        if end < p + self.cadu_bits + self.max_slip_bits:
            return False  # wait: a late ASM needs its frame whole too
        # stricter than at the expected position: a heavily hit ASM must not look
        # like a shifted one (shifted copies of the ASM are >= 11 bits away from it)
        slip_errors = marker.max_errors // 2
        best: tuple[int, int] | None = None  # (errors, position)
        for s in range(1, self.max_slip_bits + 1):
            for q in (p - s, p + s):  # q >= base: _trim keeps max_slip_bits before _pos
                e = marker.errors_at(buf, q - base)
                if self._inverted:
                    e = marker.bits - e
                if e <= slip_errors and (best is None or e < best[0]):
                    best = (e, q)
        if best is not None:
            self.stats["slips"] += 1
            self._deliver(out, best[1], best[0], flywheel=False)
            return True
        self._misses += 1
        if self._misses > self.flywheel_frames:
            self.stats["sync_losses"] += 1
            self._state = SyncState.SEARCH
            self._pos = self._scanned_to = self._last_good + 1
            self._cands.clear()
            return True
        self._state = SyncState.FLYWHEEL
        self._deliver(out, p, None, flywheel=True)
        return True

    def _deliver(self, out: list[bytes], p: int, errors: int | None, flywheel: bool) -> None:
        """Hand out the frame behind the ASM at ``p`` and expect the next ASM after it."""
        marker = self._marker
        out.append(_body(self._buf, p - self._base + marker.bits, self.frame_len, self._inverted))
        self.stats["frames"] += 1
        if self._inverted:
            self.stats["frames_inverted"] += 1
        if flywheel:
            self.stats["frames_flywheel"] += 1
        else:
            self.stats["asm_bit_errors"] += errors or 0
            self._state, self._misses, self._last_good = SyncState.LOCK, 0, p
        self._discard_to(p)
        self._pos = p + self.cadu_bits
        self._counted_to = max(self._counted_to, self._pos)

    def _discard_to(self, bit: int) -> None:
        if bit > self._counted_to:
            self._discarded_bits += bit - self._counted_to
            self._counted_to = bit
            self.stats["octets_discarded"] = self._discarded_bits // 8

    def _trim(self) -> None:
        """Drop the octets no state can come back to."""
        state = self._state
        if state is SyncState.SEARCH:  # push stops in SEARCH only with no candidate queued
            keep = max(self._pos, self._scanned_to)
        elif state is SyncState.CHECK:
            assert self._cand is not None
            keep = self._cand.bit_offset
        else:  # a sync loss resumes the search after the last matching ASM
            keep = min(self._last_good, self._pos - self.max_slip_bits)
        drop = (keep - self._base) // 8
        if drop <= 0:
            return
        if state is SyncState.SEARCH:  # the search has moved past these for good
            self._discard_to(self._base + 8 * drop)
        del self._buf[:drop]
        self._base += 8 * drop
