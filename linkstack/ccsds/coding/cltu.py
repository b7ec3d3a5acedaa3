"""TC synchronization and channel coding, CCSDS 231.0-B-4: BCH codeblocks, CLTUs.

A Communications Link Transmission Unit (CLTU) carries one TC transfer frame
on the uplink: the 16-bit start sequence EB90, the frame cut into 7-octet
pieces each encoded as a BCH(63,56) codeblock, the last piece completed with
fill octets 0x55 (alternating bits starting with 0), and the 8-octet tail
sequence C5C5C5C5C5C5C579, built to be a codeblock that no decoder accepts.

Codeblock (8 octets): the 56 information bits, then the 7 parity bits of the
(63,56) code with generator g(x) = x^7 + x^6 + x^2 + 1 *complemented* (so that
the coded stream keeps transitions), then one filler bit 0. g(x) is
(x + 1)(x^6 + x + 1): a Hamming code with an overall parity, minimum distance 4.

Decoding modes (the standard's two):

- ``DETECT`` (error-detecting, "triple error detection"): a codeblock with any
  error is refused; up to 3 bit errors are always noticed.
- ``CORRECT`` (single-error-correcting): one bit error is corrected, two are
  noticed and the codeblock refused; three or more may be miscorrected, as the
  standard accepts for this mode.

The filler bit is outside the code but known to be 0, so it is read as a 64th
bit of the codeblock: a filler bit of 1 is one bit error like any other. In
``DETECT`` mode it refuses the codeblock; in ``CORRECT`` mode it is the single
correctable error when the syndrome is zero (the data is intact; it is counted
in ``corrected_bits``), and a syndrome of one error *plus* a set filler bit is
two errors and refuses the codeblock. The rule for both modes is thus "at most
0 (DETECT) or 1 (CORRECT) wrong bits among the 64".

Decoding goes on codeblock by codeblock until one is refused, which ends the
CLTU: normally the tail sequence, otherwise a codeblock damaged beyond the
mode. Everything accepted before it is handed up, fill octets included (the TC
frame's length field says where the frame ends: :meth:`CltuDecoded.frame`).
When the frame was randomized before encoding (TC randomizer, 231.0-B-4 §6),
the decoded data is derandomized as a whole.

A unit that is not a CLTU at all (too short, or no start sequence at its first
octet) raises :class:`~linkstack.errors.DecodeError`; nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from linkstack.ccsds.coding.randomizer import tc_randomize
from linkstack.ccsds.tc import frame_length
from linkstack.ccsds.uslp import VERSION as USLP_VERSION
from linkstack.errors import DecodeError, EncodeError, TruncatedError, check_range

START_SEQUENCE = bytes.fromhex("eb90")
TAIL_SEQUENCE = bytes.fromhex("c5c5c5c5c5c5c579")
FILL = 0x55
INFO_LEN = 7  # information octets per codeblock
CODEBLOCK_LEN = 8
MIN_CLTU_LEN = len(START_SEQUENCE) + CODEBLOCK_LEN
USLP_LENGTH_END = 6  # a USLP frame's length field ends at octet 6

_GENERATOR = 0b1100_0101  # x^7 + x^6 + x^2 + 1
_POLY_MSB_ALIGNED = (_GENERATOR << 1) & 0xFF  # g(x) without x^7, in the top 7 bits


def _crc7_table() -> list[int]:
    """Octet-at-a-time division by g(x) with the 7-bit remainder kept in the top
    7 bits of an octet: next = table[remainder ^ data octet]."""
    table = []
    for octet in range(256):
        x = octet
        for _ in range(8):
            x = ((x << 1) ^ _POLY_MSB_ALIGNED) & 0xFF if x & 0x80 else (x << 1) & 0xFF
        table.append(x)
    return table


_CRC7 = _crc7_table()
_CRC7_NP = np.array(_CRC7, dtype=np.uint8)


def _parity_octet(remainder: int) -> int:
    """The last octet of a codeblock: the complemented parity bits, filler 0."""
    return ~remainder & 0xFE


def bch_encode(info: bytes | bytearray | memoryview) -> bytes:
    """One codeblock from exactly 7 information octets."""
    if len(info) != INFO_LEN:
        raise EncodeError("cltu", "codeblock", f"needs {INFO_LEN} octets, got {len(info)}")
    r = 0
    for b in info:
        r = _CRC7[r ^ b]
    return bytes(info) + bytes([_parity_octet(r)])


def _encode_blocks(info: bytes) -> np.ndarray:
    """Codeblocks (n x 8) of ``info`` (a multiple of 7 octets), all at once."""
    blocks = np.frombuffer(info, dtype=np.uint8).reshape(-1, INFO_LEN)
    r = np.zeros(len(blocks), dtype=np.uint8)
    for j in range(INFO_LEN):
        r = _CRC7_NP[r ^ blocks[:, j]]
    out = np.empty((len(blocks), CODEBLOCK_LEN), dtype=np.uint8)
    out[:, :INFO_LEN] = blocks
    out[:, INFO_LEN] = ~r & 0xFE
    return out


def _syndromes(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(7-bit syndrome, filler bit) of each received codeblock (n x 8)."""
    r = np.zeros(len(blocks), dtype=np.uint8)
    for j in range(INFO_LEN):
        r = _CRC7_NP[r ^ blocks[:, j]]
    last = blocks[:, INFO_LEN]
    return ((~r & 0xFE) ^ last) >> 1, last & 1


def _single_error_table() -> tuple[np.ndarray, np.ndarray]:
    """For each syndrome of one bit error among the 63 code bits: the octet and
    the bit mask to flip back (mask 0: not a single-error syndrome)."""
    octet = np.zeros(128, dtype=np.intp)
    mask = np.zeros(128, dtype=np.uint8)
    zero = _encode_blocks(bytes(INFO_LEN))[0]
    for o in range(CODEBLOCK_LEN):
        for bit in range(8):
            if o == INFO_LEN and bit == 0:
                continue  # the filler bit is not a code bit
            damaged = zero.copy()
            damaged[o] ^= 1 << bit
            syn = int(_syndromes(damaged[None, :])[0][0])
            octet[syn], mask[syn] = o, 1 << bit  # 63 distinct syndromes: the tests
    return octet, mask


_ERR_OCTET, _ERR_MASK = _single_error_table()


class DecodeMode(Enum):
    DETECT = "detect"  # refuse a codeblock with any error
    CORRECT = "correct"  # correct one wrong bit per codeblock


class CltuEnd(Enum):
    """Why decoding stopped."""

    TAIL = "tail"  # the tail sequence, exactly
    UNCORRECTABLE = "uncorrectable"  # a refused codeblock that is not the tail
    TRUNCATED = "truncated"  # the unit ended first (no whole codeblock left)


@dataclass(frozen=True, slots=True)
class CltuDecoded:
    """What a CLTU gave: ``data`` from ``codeblocks`` accepted codeblocks (7 octets
    each, fill included, derandomized if asked), ``corrected_bits`` bit errors
    corrected in them (filler bits included), and how decoding ended."""

    data: bytes
    codeblocks: int
    corrected_bits: int
    end: CltuEnd

    def frame(self) -> bytes:
        """The transfer frame at the start of ``data``, cut at its length field: a TC
        frame's, or a USLP frame's (version 1100; 231.0-B-4 carries either)."""
        n = transfer_frame_length(self.data)
        if n > len(self.data):
            raise TruncatedError(
                "cltu",
                "codeblocks",
                f"the frame length field says {n} octets, the CLTU delivered {len(self.data)}",
            )
        return self.data[:n]


def transfer_frame_length(data: bytes) -> int:
    """The length of the TC or USLP frame at the start of ``data``, from its header."""
    if len(data) >= USLP_LENGTH_END and data[0] >> 4 == USLP_VERSION:
        if data[3] & 1:
            raise DecodeError("cltu", "frame", "a truncated USLP frame has no length field")
        return (data[4] << 8 | data[5]) + 1
    return frame_length(data)


def encode_cltu(frame: bytes | bytearray | memoryview, randomize: bool = False) -> bytes:
    """The CLTU of one TC transfer frame (or any data unit), optionally with the
    TC randomizer applied to the frame first."""
    if not frame:
        raise EncodeError("cltu", "frame", "there must be data to encode")
    data = tc_randomize(frame) if randomize else bytes(frame)
    data += bytes([FILL]) * (-len(data) % INFO_LEN)
    return START_SEQUENCE + _encode_blocks(data).tobytes() + TAIL_SEQUENCE


def decode_cltu(
    cltu: bytes | bytearray | memoryview,
    mode: DecodeMode = DecodeMode.CORRECT,
    randomize: bool = False,
    max_start_errors: int = 0,
) -> CltuDecoded:
    """Decode one CLTU that starts at the first octet of ``cltu``.

    ``max_start_errors`` (0 or 1) lets the start sequence differ from EB90 in
    that many bits, as a receiver in the correcting mode may allow. Octets after
    the codeblock that ends decoding are ignored (idle or the next unit).
    """
    check_range("cltu", "max_start_errors", max_start_errors, 0, 1)
    if not isinstance(mode, DecodeMode):
        raise EncodeError("cltu", "mode", f"must be a DecodeMode, got {mode!r}")
    n = len(cltu)
    if n < len(START_SEQUENCE):
        raise TruncatedError("cltu", "start_sequence", f"needs 2 octets, got {n}")
    start = int.from_bytes(cltu[:2], "big")
    errors = (start ^ 0xEB90).bit_count()
    if errors > max_start_errors:
        raise DecodeError(
            "cltu",
            "start_sequence",
            f"must be eb90 (at most {max_start_errors} bit errors), got {start:04x}",
        )
    if n < MIN_CLTU_LEN:
        raise TruncatedError(
            "cltu", "codeblocks", f"needs at least one codeblock of 8 octets, got {n - 2}"
        )
    count = (n - 2) // CODEBLOCK_LEN
    blocks = np.frombuffer(cltu, dtype=np.uint8, count=count * CODEBLOCK_LEN, offset=2)
    blocks = blocks.reshape(count, CODEBLOCK_LEN)
    syn, filler = _syndromes(blocks)
    if mode is DecodeMode.DETECT:
        ok = (syn == 0) & (filler == 0)
    else:  # at most one wrong bit among the 64: a code bit or the filler bit
        ok = (syn == 0) | ((_ERR_MASK[syn] != 0) & (filler == 0))
    refused = np.flatnonzero(~ok)
    accepted = int(refused[0]) if refused.size else count
    data = blocks[:accepted, :INFO_LEN].copy()
    corrected = 0
    if mode is DecodeMode.CORRECT:  # (DETECT accepts only codeblocks without errors)
        syn, filler = syn[:accepted], filler[:accepted]
        rows = np.flatnonzero(syn)
        corrected = int(rows.size) + int(filler.sum())
        if rows.size:
            octets, masks = _ERR_OCTET[syn[rows]], _ERR_MASK[syn[rows]]
            in_info = octets < INFO_LEN  # parity bits are checked, not handed up
            data[rows[in_info], octets[in_info]] ^= masks[in_info]
    if accepted == count:
        end = CltuEnd.TRUNCATED
    else:
        at = 2 + accepted * CODEBLOCK_LEN
        tail = bytes(cltu[at : at + CODEBLOCK_LEN]) == TAIL_SEQUENCE
        end = CltuEnd.TAIL if tail else CltuEnd.UNCORRECTABLE
    out = data.tobytes()
    if randomize and out:
        out = tc_randomize(out)
    return CltuDecoded(out, accepted, corrected, end)
