"""``linkstack bench coding``: randomizer, frame synchronization and CLTU throughput.

Cases:
- TM randomize: XOR of 1115-octet codeblocks with the TM/AOS sequence;
- frame sync: a :class:`FrameSynchronizer` fed a locked stream of 1119-octet
  CADUs (ASM + 1115 octets) one CADU per push, as datagrams arrive, byte-aligned
  and then shifted by 3 bits (every frame body must be realigned);
- frame sync search: the same synchronizer searching random data (acquisition);
- find_frame: one CADU shifted by 3 bits, located and realigned on its own;
- CLTU encode / decode: a 1024-octet TC frame into 147 BCH(63,56) codeblocks and
  back (single-error-correcting mode);
- TM chain: frames to CADUs (RS encode, randomize, ASM) in a batch, and CADUs
  back to frames one at a time (find ASM, derandomize, RS decode), with a fifth
  of them carrying 16 symbol errors.
MB/s counts the octets handed in (CADUs, frames, CLTU input frames) over the
time of the whole case, in the median of 5 runs.
"""

from __future__ import annotations

import random

from linkstack.ccsds.coding.chains import CaduReceiver, CaduTransmitter
from linkstack.ccsds.coding.cltu import CltuEnd, DecodeMode, decode_cltu, encode_cltu
from linkstack.ccsds.coding.randomizer import tm_randomize
from linkstack.ccsds.coding.sync import FrameSynchronizer, attach_asm, find_frame
from linkstack.tools.bench.timing import Result, time_runs

FRAME_LEN = 1115  # TM frame, RS(255,223) interleaved by 5
CADU_LEN = 4 + FRAME_LEN
TC_FRAME_LEN = 1024


def _shifted(data: bytes, bits: int) -> bytes:
    """``data`` delayed by ``bits`` zero bits, padded with zeros to whole octets."""
    n_bits = 8 * len(data) + bits
    pad = -n_bits % 8
    return (int.from_bytes(data, "big") << pad).to_bytes((n_bits + pad) // 8, "big")


def bench_randomize(count: int, repeat: int) -> Result:
    rng = random.Random(1)
    units = [rng.randbytes(FRAME_LEN) for _ in range(count)]

    def run() -> None:
        for u in units:
            tm_randomize(u)

    return Result(f"TM randomize {FRAME_LEN} B", count, count * FRAME_LEN, time_runs(run, repeat))


def bench_sync(count: int, repeat: int, shift_bits: int) -> Result:
    rng = random.Random(2)
    frames = [rng.randbytes(FRAME_LEN) for _ in range(count)]
    stream = _shifted(b"".join(attach_asm(f) for f in frames), shift_bits)
    pushes = [stream[i : i + CADU_LEN] for i in range(0, len(stream), CADU_LEN)]

    def run() -> None:
        sync = FrameSynchronizer(FRAME_LEN)
        got = 0
        for p in pushes:
            got += len(sync.push(p))
        if got != count:
            raise RuntimeError(f"frame sync bench lost frames: {got} of {count}")

    name = "aligned" if shift_bits == 0 else f"shifted {shift_bits} bits"
    return Result(
        f"frame sync {CADU_LEN} B CADUs, {name}", count, len(stream), time_runs(run, repeat)
    )


def bench_search(octets: int, repeat: int) -> Result:
    noise = random.Random(3).randbytes(octets)
    pushes = [noise[i : i + CADU_LEN] for i in range(0, octets, CADU_LEN)]

    def run() -> None:
        sync = FrameSynchronizer(FRAME_LEN)
        for p in pushes:
            sync.push(p)

    return Result("frame sync search, random data", len(pushes), octets, time_runs(run, repeat))


def bench_find_frame(count: int, repeat: int) -> Result:
    rng = random.Random(4)
    units = [_shifted(attach_asm(rng.randbytes(FRAME_LEN)), 3) for _ in range(count)]

    def run() -> None:
        for u in units:
            if find_frame(u, FRAME_LEN) is None:
                raise RuntimeError("find_frame bench lost a frame")

    return Result(
        "find_frame one CADU shifted 3 bits", count, count * len(units[0]), time_runs(run, repeat)
    )


def bench_cltu(count: int, repeat: int) -> list[Result]:
    rng = random.Random(5)
    frames = [rng.randbytes(TC_FRAME_LEN) for _ in range(count)]
    cltus = [encode_cltu(f) for f in frames]

    def encode() -> None:
        for f in frames:
            encode_cltu(f)

    def decode() -> None:
        for c in cltus:
            if decode_cltu(c, DecodeMode.CORRECT).end is not CltuEnd.TAIL:
                raise RuntimeError("CLTU bench: decoding did not reach the tail")

    octets = count * TC_FRAME_LEN
    return [
        Result(f"CLTU encode {TC_FRAME_LEN} B frame", count, octets, time_runs(encode, repeat)),
        Result(
            f"CLTU decode {TC_FRAME_LEN} B frame (correcting)",
            count,
            octets,
            time_runs(decode, repeat),
        ),
    ]


def bench_tm_chain(count: int, repeat: int) -> list[Result]:
    """The whole TM chain: frames -> CADUs (RS(255,223) x 5, randomized) and back, one
    CADU per unit on receive, as datagrams arrive; every 5th CADU carries 16 symbol
    errors in one codeword for the decoder to correct."""
    rng = random.Random(5)
    frames = [rng.randbytes(FRAME_LEN) for _ in range(count)]
    tx, rx = CaduTransmitter(FRAME_LEN), CaduReceiver(FRAME_LEN)
    cadus = tx.cadus(frames)
    damaged = []
    for i, cadu in enumerate(cadus):
        buf = bytearray(cadu)
        if i % 5 == 0:
            for p in rng.sample(range(4, len(buf), 5), 16):  # codeword 0 of the block
                buf[p] ^= rng.randrange(1, 256)
        damaged.append(bytes(buf))

    def receive() -> None:
        got = sum(rx.receive_cadu(c) is not None for c in damaged)
        if got != count:
            raise RuntimeError(f"TM chain bench lost frames: {got} of {count}")

    octets = count * FRAME_LEN
    return [
        Result(
            "TM chain transmit (batch)", count, octets, time_runs(lambda: tx.cadus(frames), repeat)
        ),
        # warm-up: the first call loads the compiled decoder kernels
        Result("TM chain receive (per CADU)", count, octets, time_runs(receive, repeat, 1)),
    ]


def run(quick: bool = False) -> list[Result]:
    repeat = 5  # runs a case; the median is reported
    count = 1_000 if quick else 10_000
    return [
        bench_randomize(count, repeat),
        bench_sync(count, repeat, 0),
        bench_sync(count, repeat, 3),
        bench_search(count * CADU_LEN // 10, repeat),
        bench_find_frame(count, repeat),
        *bench_cltu(count // 2, repeat),
        *bench_tm_chain(count // 2, repeat),
    ]
