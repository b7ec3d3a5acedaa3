"""Bit errors in the real bytes of each unit: independent errors and Gilbert-Elliott bursts.

Bit order is the wire order: bit 0 is the most significant bit of octet 0, bit 8 the
MSB of octet 1. Error positions depend only on the seed and the sequence of calls, so
a scenario replays bit for bit.

Independent errors form a Bernoulli process over the stream of bits; the gaps between
errors are geometric, so the injector draws one gap per error instead of one random
number per bit, and a unit with no error costs a subtraction. The stream continues
across units: the gap drawn past the end of one unit carries into the next (exact for
a constant BER; when the BER changes, the memoryless gap is drawn again).

Gilbert-Elliott (Gilbert 1960, Elliott 1963): a two-state Markov chain over bits,
Good and Bad, each with its own BER. The parameters are the mean sojourn in Bad (the
mean burst length, in bits) and in Good (the mean gap between bursts, in bits): per bit
the chain leaves Bad with probability p_bg = 1 / mean_burst_bits and Good with
p_gb = 1 / mean_gap_bits, so sojourns are geometric and are drawn whole. A burst of
fading measured in seconds becomes bits by multiplying by the rate. The state carries
across units.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from numbers import Real
from typing import NamedTuple

import numpy as np

from linkstack.errors import ConfigError

_NO_POSITIONS = np.zeros(0, dtype=np.int64)
_NO_POSITIONS.setflags(write=False)
_LOOP_FLIP_MAX = 24  # up to this many flips a Python loop beats building a bit mask


def _check_ber(where: str, name: str, ber: float) -> float:
    if (type(ber) is not float and (isinstance(ber, bool) or not isinstance(ber, Real))) or not (
        0.0 <= ber <= 0.5
    ):
        raise ConfigError(where, name, f"must be a probability in 0..0.5, got {ber!r}")
    return float(ber)


class _Pair(NamedTuple):
    data: bytes
    flipped: int


class Injected(_Pair):
    """The damaged unit and how many bits were flipped, a ``(data, flipped)`` pair (the
    shape `channels.link.BitErrorSource` expects); ``positions`` holds the flipped bits
    (sorted, wire order)."""

    positions: np.ndarray

    def __new__(cls, data: bytes, positions: np.ndarray) -> Injected:
        self = super().__new__(cls, data, len(positions))
        self.positions = positions
        return self


def flip_bits(data: bytes | bytearray | memoryview, positions: np.ndarray) -> bytes:
    """``data`` with the bits at ``positions`` (distinct, bit 0 = MSB of octet 0) inverted."""
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) == 0:
        return bytes(data)
    n_bits = len(data) * 8
    if int(positions.min()) < 0 or int(positions.max()) >= n_bits:
        raise ConfigError("errors.flip_bits", "positions", f"must be in 0..{n_bits - 1}")
    if len(positions) <= _LOOP_FLIP_MAX:
        return _flip_few(data, positions.tolist())
    return _flip_many(data, positions)


def _flip_few(data: bytes | bytearray | memoryview, positions: list[int]) -> bytes:
    buf = bytearray(data)
    for pos in positions:
        buf[pos >> 3] ^= 0x80 >> (pos & 7)
    return bytes(buf)


def _flip_many(data: bytes | bytearray | memoryview, positions: np.ndarray) -> bytes:
    bits = np.zeros(len(data) * 8, dtype=np.uint8)
    bits[positions] = 1
    mask = np.packbits(bits)  # bitorder "big": element 0 is the MSB, the wire order
    return (np.frombuffer(data, dtype=np.uint8) ^ mask).tobytes()


def _damage(data: bytes | bytearray | memoryview, positions: list[int] | np.ndarray) -> Injected:
    """Flip positions known to be distinct, sorted and inside the unit."""
    if len(positions) <= _LOOP_FLIP_MAX:
        if isinstance(positions, np.ndarray):
            return Injected(_flip_few(data, positions.tolist()), positions)
        return Injected(_flip_few(data, positions), np.array(positions, dtype=np.int64))
    positions = np.asarray(positions, dtype=np.int64)
    return Injected(_flip_many(data, positions), positions)


def _positions(
    rng: np.random.Generator, first: int, n_bits: int, ber: float
) -> tuple[list[int] | np.ndarray, int]:
    """Error positions in [0, n_bits) of a Bernoulli(ber) process whose next error is at
    ``first`` (a list when few, an array when many), and the offset past ``n_bits`` of
    the error after them."""
    if first >= n_bits:
        return [], first - n_bits
    expected = (n_bits - first) * ber
    if expected < _LOOP_FLIP_MAX:
        # Few errors: Python integers (no overflow, even for gaps saturated at 2**63 - 1)
        # and no array arithmetic, whose per-call cost dominates here.
        found = [first]
        pos = first
        while True:
            k = int(expected + 4.0 * math.sqrt(expected) + 4.0)
            for gap in rng.geometric(ber, size=k).tolist():
                pos += gap
                if pos >= n_bits:
                    return found, pos - n_bits
                found.append(pos)
            expected = (n_bits - pos) * ber
    parts = [np.array([first], dtype=np.int64)]
    pos = first
    while True:
        expected = (n_bits - pos) * ber
        k = int(expected + 4.0 * math.sqrt(expected) + 4.0)  # rarely needs a second round
        gaps = rng.geometric(ber, size=k)  # saturates at 2**63 - 1 for tiny BER
        # Clipping at n_bits keeps the sum from overflowing and moves no error inside the
        # unit; the gap that leaves the unit is taken unclipped below.
        ends = pos + np.cumsum(np.minimum(gaps, n_bits))
        cut = int(np.searchsorted(ends, n_bits))
        if cut < k:
            parts.append(ends[:cut])
            prev = pos if cut == 0 else int(ends[cut - 1])
            return np.concatenate(parts), prev + int(gaps[cut]) - n_bits
        parts.append(ends)
        pos = int(ends[-1])


class IndependentErrors:
    """Independent bit errors at a BER (0..0.5), fixed or given per unit.

    ``inject(data)`` uses the configured BER; ``inject(data, ber)`` the BER of this unit
    (the link budget's, which changes along a pass).
    """

    def __init__(self, ber: float = 0.0, seed: int | None = None) -> None:
        self.ber = _check_ber("errors.IndependentErrors", "ber", ber)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._next_ber = -1.0  # the BER the pending gap was drawn with
        self._next_bits = 0  # offset of the next error from the start of the next unit
        self.stats: Counter[str] = Counter()

    def inject(self, data: bytes | bytearray | memoryview, ber: float | None = None) -> Injected:
        if ber is None:
            ber = self.ber
        elif ber != self._next_ber:
            ber = _check_ber("errors.IndependentErrors.inject", "ber", ber)
        n_bits = len(data) * 8
        self.stats["units"] += 1
        self.stats["bits"] += n_bits
        if ber == 0.0:
            self._next_ber = 0.0
            return Injected(bytes(data), _NO_POSITIONS)
        if ber != self._next_ber:
            self._next_ber = ber
            self._next_bits = int(self._rng.geometric(ber)) - 1
        if self._next_bits >= n_bits:  # the common case at low BER: nothing to do
            self._next_bits -= n_bits
            return Injected(bytes(data), _NO_POSITIONS)
        positions, self._next_bits = _positions(self._rng, self._next_bits, n_bits, ber)
        self.stats["errors"] += len(positions)
        return _damage(data, positions)


@dataclass(frozen=True)
class GilbertElliott:
    """Two-state burst model: mean sojourns in Bad and Good (bits) and the BER in each."""

    mean_burst_bits: float
    mean_gap_bits: float
    ber_bad: float = 0.5
    ber_good: float = 0.0

    def __post_init__(self) -> None:
        where = "errors.GilbertElliott"
        for name in ("mean_burst_bits", "mean_gap_bits"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (1.0 <= value < math.inf)
            ):
                raise ConfigError(where, name, f"must be a number of bits >= 1, got {value!r}")
        _check_ber(where, "ber_bad", self.ber_bad)
        _check_ber(where, "ber_good", self.ber_good)

    @classmethod
    def from_transitions(
        cls, p_gb: float, p_bg: float, ber_bad: float = 0.5, ber_good: float = 0.0
    ) -> GilbertElliott:
        """From the per-bit transition probabilities Good->Bad and Bad->Good (0 < p <= 1)."""
        for name, p in (("p_gb", p_gb), ("p_bg", p_bg)):
            if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 < p <= 1.0:
                raise ConfigError("errors.GilbertElliott", name, f"must be in (0, 1], got {p!r}")
        return cls(1.0 / p_bg, 1.0 / p_gb, ber_bad, ber_good)

    @property
    def p_gb(self) -> float:
        """Per-bit probability of going from Good to Bad."""
        return 1.0 / self.mean_gap_bits

    @property
    def p_bg(self) -> float:
        """Per-bit probability of going from Bad to Good."""
        return 1.0 / self.mean_burst_bits

    @property
    def bad_fraction(self) -> float:
        """Long-run share of bits in the Bad state."""
        return self.mean_burst_bits / (self.mean_burst_bits + self.mean_gap_bits)

    @property
    def mean_ber(self) -> float:
        """Long-run bit error rate."""
        bad = self.bad_fraction
        return bad * self.ber_bad + (1.0 - bad) * self.ber_good


class GilbertElliottErrors:
    """Bursty bit errors from a `GilbertElliott` model, stateful across units.

    The first state is drawn from the stationary distribution. ``stats`` counts bits,
    errors, bits per state and completed sojourns (``bad_runs``/``bad_run_bits`` give
    the measured mean burst length). With ``record_bursts`` every Bad sojourn is kept
    in ``bursts`` as (first bit, length) in stream bit positions (for tests and plots).
    """

    def __init__(
        self, model: GilbertElliott, seed: int | None = None, record_bursts: bool = False
    ) -> None:
        if not isinstance(model, GilbertElliott):
            raise ConfigError("errors.GilbertElliottErrors", "model", "must be a GilbertElliott")
        self.model = model
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.stats: Counter[str] = Counter()
        self.bursts: list[tuple[int, int]] | None = [] if record_bursts else None
        self._stream_bits = 0
        self._bad = bool(self._rng.random() < model.bad_fraction)
        self._enter(0)

    def _enter(self, at_bit: int) -> None:
        p_leave = self.model.p_bg if self._bad else self.model.p_gb
        self._run_bits = int(self._rng.geometric(p_leave))
        self._left = self._run_bits
        if self._bad and self.bursts is not None:
            self.bursts.append((at_bit, self._run_bits))

    @property
    def in_burst(self) -> bool:
        """Whether the next bit is in the Bad state."""
        return self._bad

    def inject(self, data: bytes | bytearray | memoryview, ber: float | None = None) -> Injected:
        """Errors for the next unit. ``ber``, when given (the link budget's BER, as
        `channels.link` passes it), replaces ``ber_good``: fades on top of thermal noise."""
        n_bits = len(data) * 8
        rng, model, stats = self._rng, self.model, self.stats
        ber_good = model.ber_good
        if ber is not None:
            ber_good = _check_ber("errors.GilbertElliottErrors.inject", "ber", ber)
        found: list[int] = []
        pos = 0
        while pos < n_bits:
            seg = min(self._left, n_bits - pos)
            p = model.ber_bad if self._bad else ber_good
            if p > 0.0:
                first = int(rng.geometric(p)) - 1
                if first < seg:
                    found.extend((np.asarray(_positions(rng, first, seg, p)[0]) + pos).tolist())
            stats["bad_bits" if self._bad else "good_bits"] += seg
            pos += seg
            self._left -= seg
            if self._left == 0:
                state = "bad" if self._bad else "good"
                stats[f"{state}_runs"] += 1
                stats[f"{state}_run_bits"] += self._run_bits
                self._bad = not self._bad
                self._enter(self._stream_bits + pos)
        self._stream_bits += n_bits
        stats["units"] += 1
        stats["bits"] += n_bits
        if not found:
            return Injected(bytes(data), _NO_POSITIONS)
        stats["errors"] += len(found)
        return _damage(data, found)
