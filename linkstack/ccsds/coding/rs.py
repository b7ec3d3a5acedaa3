"""Reed-Solomon coding of CCSDS 131.0-B-4 section 4: RS(255,223) and RS(255,239).

The code: GF(2^8) built on the field polynomial x^8+x^7+x^2+x+1 (0x187) with
alpha = x; the generator polynomial has the 2E roots beta^(b+j), j = 0..2E-1,
where beta = alpha^11 (the field element 0xAD) and b = 128 - E (112 for E=16,
120 for E=8). Symbols are in Berlekamp's dual basis by default (the CCSDS
representation); the conventional basis is an option. Codewords are interleaved
symbol by symbol to depth I, and shortened by virtual fill for frames shorter
than I * (255 - 2E).

Why not reedsolo: it is the reference the tests check against, bit for bit,
but even its compiled backend, creedsolo (reedsolo 2.1.1b1, one 255-octet
codeword per call), is slower than the line rates emulated here need: measured
with ``linkstack bench fec --quick`` (medians of 5 runs; Python 3.11.7 on x86_64,
on a 2-CPU VM, one core pinned), this codec on batches of I=5 frames encodes 11x
faster (386 against 34 MB/s of information octets), decodes error-free
codeblocks 79x faster (296 against 3.7 MB/s: creedsolo's 30 Mbit/s would not
keep up with a 150-300 Mbit/s X-band downlink) and codewords with 16 errors 42x
faster (36 against 0.86 MB/s). ``linkstack bench fec`` prints today's figures on
the machine at hand. This codec is table-driven and batch-oriented, with the
loops compiled by numba:

- encoding XORs one precomputed 2E-octet row per data symbol (the remainder of
  x^(m+2E) mod g(x) times the symbol, for each degree m and symbol value, with
  the basis conversions folded in);
- decoding first computes the syndromes the same way (one 2E-octet row per
  received symbol) and stops there when they are all zero, which is the common
  case; only the codewords with errors go through Berlekamp-Massey, a Chien
  search over the codeword's real positions, and Forney's formula.

A codeword with more errors than the code corrects is reported uncorrectable
(-1), never "corrected" into something the decoder cannot vouch for: the
locator must have exactly as many roots, all inside the (shortened) codeword,
as its degree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numba
import numpy as np

from linkstack.errors import EncodeError, TruncatedError

FIELD_POLY = 0x187
BETA_LOG = 11  # beta = alpha^11 = 0xAD
INTERLEAVING_DEPTHS = (1, 2, 3, 4, 5, 8)
UNCORRECTABLE = -1

# Rows of Berlekamp's T-alpha matrix (conventional -> dual basis), CCSDS 131.0-B
# annex F, most significant input bit first.
_T_ALPHA_ROWS = (0x8D, 0xEF, 0xEC, 0x86, 0xFA, 0x99, 0xAF, 0x7B)


# -- the field ------------------------------------------------------------------


def _field_tables() -> tuple[np.ndarray, np.ndarray]:
    """exp (doubled, 512 entries, so that sums of two logs need no modulo) and log."""
    exp = np.zeros(512, np.int32)
    log = np.zeros(256, np.int32)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= FIELD_POLY
    exp[255:510] = exp[:255]
    return exp, log


GF_EXP, GF_LOG = _field_tables()


def gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return int(GF_EXP[GF_LOG[a] + GF_LOG[b]])


def _basis_tables() -> tuple[np.ndarray, np.ndarray]:
    """TO_DUAL[conventional] and TO_CONV[dual] for every octet value."""
    to_dual = np.zeros(256, np.uint8)
    for value in range(256):
        out = 0
        for k in range(8):  # input bit k (LSB = 0) selects row 7 - k
            if value >> k & 1:
                out ^= _T_ALPHA_ROWS[7 - k]
        to_dual[value] = out
    to_conv = np.zeros(256, np.uint8)
    to_conv[to_dual] = np.arange(256, dtype=np.uint8)
    return to_dual, to_conv


TO_DUAL, TO_CONV = _basis_tables()
_IDENTITY = np.arange(256, dtype=np.uint8)


def gf_mul_arrays(a: np.ndarray, b: np.ndarray | np.uint8) -> np.ndarray:
    """Element-wise GF product of two broadcastable uint8 arrays."""
    a32 = a.astype(np.int32)
    b32 = b.astype(np.int32)
    prod = GF_EXP[GF_LOG[a32] + GF_LOG[b32]]
    return np.where((a32 == 0) | (b32 == 0), 0, prod).astype(np.uint8)


# -- code tables ----------------------------------------------------------------


@cache
def _generator(e: int) -> np.ndarray:
    """g(x) coefficients, highest degree first (monic, 2E+1 terms)."""
    first_root = 128 - e
    g = np.array([1], np.uint8)
    for j in range(2 * e):
        root = int(GF_EXP[(BETA_LOG * (first_root + j)) % 255])
        # g(x) * (x + root)
        nxt = np.zeros(len(g) + 1, np.uint8)
        nxt[:-1] = g
        nxt[1:] ^= gf_mul_arrays(g, np.uint8(root))
        g = nxt
    return g


@cache
def _tables(e: int, dual: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(encode table [223|239, 256, 4], syndrome table [255, 256, 4], out_basis[256]).

    encode[m, v] = the check symbols that data symbol v contributes at degree
    m + 2E, in the output basis; syndrome[m, v, j] = v * beta^((b+j) m) in the
    conventional basis, for a received symbol v (input basis) at degree m.
    """
    n_check = 2 * e
    k_max = 255 - n_check
    to_conv = TO_CONV if dual else _IDENTITY
    to_out = TO_DUAL if dual else _IDENTITY
    g = _generator(e)

    # remainders of x^(m + 2E) mod g(x), m = 0..k_max-1, as 2E coefficients (high first)
    rem = np.zeros((k_max, n_check), np.uint8)
    r = g[1:].copy()  # x^(2E) mod g = g's lower terms (g monic, char 2)
    rem[0] = r
    for m in range(1, k_max):
        top = r[0]
        r = np.concatenate([r[1:], np.zeros(1, np.uint8)])
        if top:
            r ^= gf_mul_arrays(g[1:], np.uint8(top))
        rem[m] = r

    values = to_conv[np.arange(256)]  # every input symbol, in the conventional basis
    enc = gf_mul_arrays(values[None, :, None], rem[:, None, :])  # (k_max, 256, 2E)
    enc = to_out[enc]

    first_root = 128 - e
    degree = np.arange(255)[:, None]
    j = np.arange(n_check)[None, :]
    root_pow_log = (BETA_LOG * (first_root + j) * degree) % 255  # log of beta^((b+j) m)
    root_pow = GF_EXP[root_pow_log].astype(np.uint8)  # (255, 2E)
    syn = gf_mul_arrays(values[None, :, None], root_pow[:, None, :])  # (255, 256, 2E)
    return _as_words(enc), _as_words(syn), to_out.copy()


def _as_words(table: np.ndarray) -> np.ndarray:
    """Rows of up to 32 octets as four native uint64 (little-endian packing, so that
    octet q is bits 8(q%8).. of word q//8 on any machine); E=8 rows are zero-padded."""
    padded = np.zeros((*table.shape[:-1], 32), np.uint8)
    padded[..., : table.shape[-1]] = table
    return np.ascontiguousarray(padded.view("<u8").astype(np.uint64))


@cache
def _chien_steps(e: int, n_cw: int) -> np.ndarray:
    """steps[t, m] = log of beta^(-m t): the Chien search becomes independent gathers."""
    t = np.arange(e + 1)[:, None]
    m = np.arange(n_cw)[None, :]
    return np.ascontiguousarray((-(BETA_LOG * t * m)) % 255, dtype=np.int32)


# -- compiled kernels -------------------------------------------------------------

_jit = numba.jit(nopython=True, cache=True, nogil=True)


@_jit
def _encode_kernel(
    frames: np.ndarray, out: np.ndarray, depth: int, k: int, n_check: int, enc64: np.ndarray
) -> None:  # pragma: no cover - compiled
    # Four 64-bit accumulators hold the 2E <= 32 check symbols of one codeword in
    # registers; each data symbol XORs in one table row.
    base = k * depth
    for f in range(frames.shape[0]):
        for j in range(depth):
            a0 = np.uint64(0)
            a1 = np.uint64(0)
            a2 = np.uint64(0)
            a3 = np.uint64(0)
            for p in range(k):
                row = enc64[k - 1 - p, frames[f, p * depth + j]]
                a0 ^= row[0]
                a1 ^= row[1]
                a2 ^= row[2]
                a3 ^= row[3]
            for q in range(n_check):
                word = q >> 3
                a = a0 if word == 0 else a1 if word == 1 else a2 if word == 2 else a3
                out[f, base + q * depth + j] = (a >> np.uint64(8 * (q & 7))) & np.uint64(0xFF)


@_jit
def _correct(
    syn: np.ndarray,
    n_cw: int,
    e: int,
    gf_exp: np.ndarray,
    gf_log: np.ndarray,
    roots: np.ndarray,
    mags: np.ndarray,
    scratch: np.ndarray,
    chien: np.ndarray,
    steps: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Berlekamp-Massey, Chien, Forney on one codeword's syndromes (conventional
    basis). Fills roots (degrees) and mags (conventional values); returns the
    number of errors, or -1 when the codeword is uncorrectable. ``scratch`` is a
    (3, 2E+1) int32 work array, ``chien`` an n_cw one, ``steps[t, m]`` the log of
    beta^(-m t). Logs stay in 0..254 by conditional subtraction: integer division
    is the slowest thing in these loops."""
    n_check = 2 * e
    first_root = 128 - e
    lam = scratch[0]
    prev = scratch[1]
    tmp = scratch[2]
    lam[:] = 0
    prev[:] = 0
    lam[0] = 1
    prev[0] = 1
    deg = 0
    # prev_top: the length of the LFSR prev was, so prev's degree is at most prev_top
    # and the update writes lam[shift .. prev_top + shift], an index at most n + 1 - deg
    # <= 2E (Massey's bound): lam's degree never exceeds deg, nor 2E
    prev_top = 0
    shift = 1
    prev_d = 1
    for n in range(n_check):
        d = syn[n]
        for i in range(1, deg + 1):
            if lam[i] and syn[n - i]:
                d ^= gf_exp[gf_log[lam[i]] + gf_log[syn[n - i]]]
        if d == 0:
            shift += 1
            continue
        coef_log = gf_log[d] - gf_log[prev_d]
        if coef_log < 0:
            coef_log += 255
        grow = 2 * deg <= n
        if grow:
            tmp[:] = lam
        for i in range(prev_top + 1):
            if prev[i]:
                lam[i + shift] ^= gf_exp[gf_log[prev[i]] + coef_log]
        if grow:
            prev_top = deg  # lam's degree before this update
            deg = n + 1 - deg
            prev[:] = tmp
            prev_d = d
            shift = 1
        else:
            shift += 1
    if deg > e:
        return -1

    # Chien search over the real (non-fill) degrees 0..n_cw-1: lambda(beta^-m) == 0.
    # Term by term over all degrees at once: no loop-carried dependency, so the
    # gathers overlap (the doubled exp table absorbs the sum of two logs).
    chien[:] = lam[0]
    for t in range(1, deg + 1):
        if lam[t]:
            lt = gf_log[lam[t]]
            st = steps[t]
            for m in range(n_cw):
                chien[m] ^= gf_exp[lt + st[m]]
    # lam (lam[0] = 1, degree <= deg) has at most deg roots, and the beta^-m are
    # distinct, so found never passes deg (nor roots' length, E)
    found = 0
    for m in range(n_cw):
        if chien[m] == 0:
            roots[found] = m
            found += 1
    if found != deg:
        return -1

    # Forney: e = X^(1-b) * omega(X^-1) / lambda'(X^-1), X = beta^m. Neither is 0:
    # lam's deg roots are simple (so its derivative is not 0 at them), and a zero
    # magnitude would mean fewer errors give these syndromes, an LFSR shorter than
    # the minimal one Berlekamp-Massey found.
    omega = tmp
    for i in range(deg):
        v = 0
        for t in range(i + 1):
            if lam[t] and syn[i - t]:
                v ^= gf_exp[gf_log[lam[t]] + gf_log[syn[i - t]]]
        omega[i] = v
    for r in range(found):
        x_log = (BETA_LOG * roots[r]) % 255
        xinv_log = (255 - x_log) % 255
        num = 0
        step = 0  # log of X^-i
        for i in range(deg):
            if omega[i]:
                num ^= gf_exp[gf_log[omega[i]] + step]
            step += xinv_log
            if step >= 255:
                step -= 255
        den = 0
        step = 0  # log of X^-(t-1) for odd t
        sq = 2 * xinv_log
        if sq >= 255:
            sq -= 255
        for t in range(1, deg + 1, 2):
            if lam[t]:
                den ^= gf_exp[gf_log[lam[t]] + step]
            step += sq
            if step >= 255:
                step -= 255
        mag_log = (x_log * (1 - first_root)) % 255 + gf_log[num] - gf_log[den]
        mags[r] = gf_exp[mag_log % 255]
    return found


@_jit
def _decode_kernel(
    blocks: np.ndarray,
    out: np.ndarray,
    counts: np.ndarray,
    depth: int,
    k: int,
    e: int,
    syn64: np.ndarray,
    to_out: np.ndarray,
    gf_exp: np.ndarray,
    gf_log: np.ndarray,
    steps: np.ndarray,
) -> None:  # pragma: no cover - compiled
    n_check = 2 * e
    n_cw = k + n_check
    frame_len = k * depth
    syn = np.zeros(n_check, np.int32)
    roots = np.zeros(e, np.int32)
    mags = np.zeros(e, np.int32)
    scratch = np.zeros((3, n_check + 1), np.int32)
    chien = np.zeros(n_cw, np.int32)
    for f in range(blocks.shape[0]):
        for j in range(depth):
            # syndromes: one table row per received symbol, data then check symbols
            a0 = np.uint64(0)
            a1 = np.uint64(0)
            a2 = np.uint64(0)
            a3 = np.uint64(0)
            for p in range(k):
                row = syn64[n_cw - 1 - p, blocks[f, p * depth + j]]
                a0 ^= row[0]
                a1 ^= row[1]
                a2 ^= row[2]
                a3 ^= row[3]
            for q in range(n_check):
                row = syn64[n_check - 1 - q, blocks[f, frame_len + q * depth + j]]
                a0 ^= row[0]
                a1 ^= row[1]
                a2 ^= row[2]
                a3 ^= row[3]
            if (a0 | a1 | a2 | a3) == 0:  # the common case: no error
                counts[f, j] = 0
                continue
            for q in range(n_check):
                word = q >> 3
                a = a0 if word == 0 else a1 if word == 1 else a2 if word == 2 else a3
                syn[q] = (a >> np.uint64(8 * (q & 7))) & np.uint64(0xFF)
            n_err = _correct(syn, n_cw, e, gf_exp, gf_log, roots, mags, scratch, chien, steps)
            counts[f, j] = n_err
            for r in range(n_err):  # none when uncorrectable (-1): the row stays as received
                p = n_cw - 1 - roots[r]
                if p < k:  # errors in the check symbols need no repair in the frame
                    out[f, p * depth + j] ^= to_out[mags[r]]


# -- the public codec ---------------------------------------------------------------


@dataclass(frozen=True)
class RsDecodeResult:
    """What decoding one codeblock gave: the frame, or None if any codeword was
    uncorrectable; and per codeword the number of symbols corrected (-1 =
    uncorrectable)."""

    frame: bytes | None
    corrected: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return self.frame is not None

    @property
    def symbols_corrected(self) -> int:
        return sum(c for c in self.corrected if c > 0)


class ReedSolomon:
    """CCSDS Reed-Solomon codec for one channel configuration.

    ``e`` is the error-correction capability (16 or 8), ``depth`` the
    interleaving depth I, ``frame_length`` the transfer frame length (default
    the unshortened I * (255 - 2E)); it must be a multiple of I, as 131.0-B-4
    shortens every codeword by the same virtual fill. The codeblock is the frame
    followed by the 2E * I interleaved check symbols.
    """

    def __init__(
        self,
        e: int = 16,
        depth: int = 5,
        frame_length: int | None = None,
        dual_basis: bool = True,
    ) -> None:
        if e not in (8, 16):
            raise EncodeError("rs", "e", f"CCSDS defines E = 16 or E = 8, got {e}")
        if depth not in INTERLEAVING_DEPTHS:
            raise EncodeError(
                "rs",
                "depth",
                f"interleaving depth must be one of {INTERLEAVING_DEPTHS}, got {depth}",
            )
        k_max = 255 - 2 * e
        if frame_length is None:
            frame_length = k_max * depth
        if not depth <= frame_length <= k_max * depth or frame_length % depth:
            raise EncodeError(
                "rs",
                "frame_length",
                f"must be a multiple of I={depth} from {depth} to {k_max * depth}, "
                f"got {frame_length}",
            )
        self.e = e
        self.depth = depth
        self.frame_length = frame_length
        self.dual_basis = dual_basis
        self.k = frame_length // depth  # data symbols per codeword
        self.virtual_fill = k_max - self.k
        self.check_length = 2 * e * depth
        self.codeblock_length = frame_length + self.check_length
        self._enc64, self._syn64, to_out = _tables(e, dual_basis)
        self._to_out = to_out.astype(np.int32)
        self._steps = _chien_steps(e, self.k + 2 * e)
        self._unit_block = np.zeros((1, self.codeblock_length), np.uint8)
        self._unit_frame = np.zeros((1, frame_length), np.uint8)
        self._unit_counts = np.zeros((1, depth), np.int32)

    def __repr__(self) -> str:
        basis = "dual" if self.dual_basis else "conventional"
        return (
            f"ReedSolomon(RS(255,{255 - 2 * self.e}), I={self.depth}, "
            f"frame_length={self.frame_length}, {basis} basis)"
        )

    # -- batches (the fast path) ------------------------------------------------
    def encode_batch(self, frames: np.ndarray) -> np.ndarray:
        """(N, frame_length) uint8 frames -> (N, codeblock_length) codeblocks."""
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        if frames.ndim != 2 or frames.shape[1] != self.frame_length:
            raise EncodeError(
                "rs",
                "frame_length",
                f"expected (N, {self.frame_length}) frames, got {frames.shape}",
            )
        out = np.empty((frames.shape[0], self.codeblock_length), np.uint8)
        out[:, : self.frame_length] = frames
        _encode_kernel(frames, out, self.depth, self.k, 2 * self.e, self._enc64)
        return out

    def decode_batch(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, codeblock_length) -> (frames (N, frame_length), corrected (N, I)).

        ``corrected[n, j]`` is the number of symbols corrected in codeword j of
        block n, or -1 when it is uncorrectable (the frame row is then not to be
        used: it holds the received, uncorrected octets).
        """
        blocks = np.ascontiguousarray(blocks, dtype=np.uint8)
        if blocks.ndim != 2 or blocks.shape[1] != self.codeblock_length:
            raise TruncatedError(
                "rs",
                "codeblock_length",
                f"expected (N, {self.codeblock_length}) codeblocks, got {blocks.shape}",
            )
        frames = blocks[:, : self.frame_length].copy()
        counts = np.empty((blocks.shape[0], self.depth), np.int32)
        _decode_kernel(
            blocks,
            frames,
            counts,
            self.depth,
            self.k,
            self.e,
            self._syn64,
            self._to_out,
            GF_EXP,
            GF_LOG,
            self._steps,
        )
        return frames, counts

    # -- one unit at a time ------------------------------------------------------------
    # These reuse per-codec buffers (a codec belongs to one chain, one thread) so
    # that a call costs one copy in, the kernel, and one copy out.
    def encode(self, frame: bytes | bytearray | memoryview) -> bytes:
        """The codeblock (frame + interleaved check symbols) of one frame."""
        if len(frame) != self.frame_length:
            raise EncodeError(
                "rs",
                "frame_length",
                f"expected a {self.frame_length}-octet frame, got {len(frame)}",
            )
        buf = self._unit_block
        buf[0, : self.frame_length] = np.frombuffer(frame, np.uint8)
        _encode_kernel(buf, buf, self.depth, self.k, 2 * self.e, self._enc64)
        return buf.tobytes()

    def decode(self, codeblock: bytes | bytearray | memoryview) -> RsDecodeResult:
        """Correct one codeblock; the frame is None when any codeword is uncorrectable."""
        if len(codeblock) != self.codeblock_length:
            raise TruncatedError(
                "rs",
                "codeblock_length",
                f"expected a {self.codeblock_length}-octet codeblock, got {len(codeblock)}",
            )
        block, out, counts = self._unit_block, self._unit_frame, self._unit_counts
        block[0] = np.frombuffer(codeblock, np.uint8)
        out[0] = block[0, : self.frame_length]
        _decode_kernel(
            block,
            out,
            counts,
            self.depth,
            self.k,
            self.e,
            self._syn64,
            self._to_out,
            GF_EXP,
            GF_LOG,
            self._steps,
        )
        corrected = tuple(counts[0].tolist())
        if UNCORRECTABLE in corrected:
            return RsDecodeResult(None, corrected)
        return RsDecodeResult(out.tobytes(), corrected)
