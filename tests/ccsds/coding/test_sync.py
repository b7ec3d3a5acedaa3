import random
from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.ccsds.coding.sync import (
    ASM,
    AsmMatch,
    FrameSynchronizer,
    SyncState,
    attach_asm,
    find_asm,
    find_asms,
    find_frame,
)
from linkstack.errors import EncodeError

N = 223  # frame_len for most tests: short, so that they stay fast
CADU_BITS = 8 * (4 + N)


def bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def octets(b: np.ndarray) -> bytes:
    """Bits to octets, zero-padded at the end to a whole octet."""
    return np.packbits(b).tobytes()


def make_frames(rng: random.Random, count: int, n: int = N) -> list[bytes]:
    return [rng.randbytes(n) for _ in range(count)]


def stream_bits(rng: random.Random, frames: list[bytes], junk_bits: int = 0) -> np.ndarray:
    junk = bits(rng.randbytes(junk_bits // 8 + 1))[:junk_bits]
    return np.concatenate([junk, bits(b"".join(attach_asm(f) for f in frames))])


def flip(b: np.ndarray, positions) -> np.ndarray:
    b = b.copy()
    for p in positions:
        b[p] ^= 1
    return b


def feed(sync: FrameSynchronizer, data: bytes, chunks: list[int] | None = None) -> list[bytes]:
    out, i = [], 0
    for size in [*(chunks or []), len(data)]:
        out += sync.push(data[i : i + size])
        i += size
        assert sync.buffered <= sync.max_buffered
    return out


def reference_matches(unit: bytes, frame_len: int = 0, asm: bytes = ASM, max_errors: int = 4):
    """Every match, bit by bit over sliding windows of the unpacked bits: an independent
    count of what find_asms must list."""
    b, a = bits(unit), bits(asm)
    last = len(b) - 8 * frame_len - len(a)  # the last position with room after the ASM
    if last < 0:
        return []
    errors = (np.lib.stride_tricks.sliding_window_view(b, len(a))[: last + 1] != a).sum(axis=1)
    out = []
    for p in np.flatnonzero((errors <= max_errors) | (len(a) - errors <= max_errors)).tolist():
        e = int(errors[p])
        out.append(AsmMatch(p, e, False) if e <= max_errors else AsmMatch(p, len(a) - e, True))
    return out


def plant(b: np.ndarray, at: int, errors: int, inverted: bool, rng: random.Random) -> None:
    """The ASM (complemented if asked) written into the bits at ``at``, with ``errors``
    of its bits flipped."""
    word = bits(ASM) ^ (1 if inverted else 0)
    b[at : at + 32] = flip(word, rng.sample(range(32), errors))


def test_asm_and_cadu(kat):
    assert ASM.hex() == kat["asm"]["tm_32bit"]
    assert attach_asm(b"\x01\x02") == ASM + b"\x01\x02"
    assert attach_asm(bytearray(b"x"), asm=b"\xaa") == b"\xaax"


@pytest.mark.parametrize("junk_bits", [*range(8), 13, 100, 8 * 37 + 5, 4000, 8 * 150_000 + 3])
def test_stream_at_any_bit_offset(junk_bits):
    rng = random.Random(junk_bits)
    frames = make_frames(rng, 6)
    data = octets(stream_bits(rng, frames, junk_bits))
    sync = FrameSynchronizer(N)
    assert feed(sync, data) == frames  # the first frame is not lost to acquisition
    assert sync.state is SyncState.LOCK
    assert sync.stats["acquisitions"] == 1
    assert sync.stats["octets_discarded"] == junk_bits // 8


@pytest.mark.parametrize("junk_bits", [*range(8), 13, 100, 8 * 37 + 5, 8 * 70_000 + 6])
def test_find_frame_at_any_bit_offset(junk_bits):
    rng = random.Random(junk_bits)
    frame = make_frames(rng, 1)[0]
    unit = octets(stream_bits(rng, [frame], junk_bits))
    assert find_frame(unit, N) == frame
    assert find_asm(unit, N) == AsmMatch(junk_bits, 0, False)
    short = find_frame(unit[:-1], N)  # no room left for the frame after the true ASM
    if junk_bits < 1000:
        assert short is None
    else:  # 70,000 octets of junk hold false ASMs (about one per 50,000 bits)
        assert short != frame


@pytest.mark.parametrize("errors", range(9))
def test_asm_bit_errors_tolerated_up_to_four(errors):
    rng = random.Random(errors)
    frame = make_frames(rng, 1)[0]
    unit_bits = flip(stream_bits(rng, [frame], 3), rng.sample(range(3, 35), errors))
    unit = octets(unit_bits)
    if errors <= 4:
        assert find_asm(unit, N) == AsmMatch(3, errors, False)
        assert find_frame(unit, N) == frame
    else:
        assert find_frame(unit, N) is None
    assert find_frame(unit, N, max_asm_errors=8) == frame
    assert find_frame(unit, N, max_asm_errors=0) == (frame if errors == 0 else None)


@pytest.mark.parametrize("errors", [0, 4, 5, 8])
def test_asm_errors_in_the_stream(errors):
    rng = random.Random(errors)
    frames = make_frames(rng, 8)
    b = stream_bits(rng, frames, 5)
    # the first ASM (acquisition) and the sixth (in lock) both damaged
    b = flip(b, [5 + i for i in rng.sample(range(32), errors)])
    b = flip(b, [5 + 5 * CADU_BITS + i for i in rng.sample(range(32), errors)])
    sync = FrameSynchronizer(N)
    got = feed(sync, octets(b))
    if errors <= 4:
        assert got == frames
        assert sync.stats["asm_bit_errors"] == 2 * errors
        assert sync.stats["frames_flywheel"] == 0
    else:  # not acquired on the first; the sixth frame comes by flywheel
        assert got == frames[1:]
        assert sync.stats["frames_flywheel"] == 1
    assert sync.stats["sync_losses"] == 0


def test_inverted_stream():
    rng = random.Random(1)
    frames = make_frames(rng, 5)
    data = octets(1 - stream_bits(rng, frames, 11))
    sync = FrameSynchronizer(N)
    assert feed(sync, data) == frames
    assert sync.inverted
    assert sync.stats["inversions"] == 1
    assert sync.stats["frames_inverted"] == 5
    unit = octets(1 - stream_bits(rng, frames[:1], 6))
    assert find_frame(unit, N) == frames[0]
    assert find_asm(unit, N) == AsmMatch(6, 0, True)


def test_polarity_flip_in_lock_loses_nothing():
    rng = random.Random(2)
    frames = make_frames(rng, 8)
    b = stream_bits(rng, frames, 3)
    cut = 3 + 4 * CADU_BITS  # from the fifth CADU on, inverted
    b[cut:] ^= 1
    sync = FrameSynchronizer(N)
    assert feed(sync, octets(b)) == frames
    assert sync.stats["inversions"] == 1
    assert sync.stats["frames_inverted"] == 4


@pytest.mark.parametrize("slip", [-3, -2, -1, 1, 2, 3])
def test_small_bit_slip_recovered_at_the_next_asm(slip):
    rng = random.Random(slip)
    frames = make_frames(rng, 10)
    b = stream_bits(rng, frames, 7)
    at = 7 + 4 * CADU_BITS + 100  # inside the fifth frame
    if slip > 0:  # bits inserted
        b = np.concatenate([b[:at], np.ones(slip, dtype=np.uint8), b[at:]])
    else:  # bits lost
        b = np.concatenate([b[:at], b[at - slip :]])
    sync = FrameSynchronizer(N)
    got = feed(sync, octets(b), [rng.randrange(1, 900) for _ in range(8)])
    assert len(got) == 10
    assert got[:4] == frames[:4] and got[5:] == frames[5:]
    assert got[4] != frames[4]  # the frame with the slip is delivered damaged
    assert sync.stats["slips"] == 1
    assert sync.stats["sync_losses"] == 0


@pytest.mark.parametrize("slip", [-16, -5, 4, 13, 8 * 40 + 1])
def test_large_bit_slip_recovered_by_searching_again(slip):
    rng = random.Random(slip)
    frames = make_frames(rng, 14)
    b = stream_bits(rng, frames, 2)
    at = 2 + 4 * CADU_BITS + 100  # inside the fifth frame
    if slip > 0:
        extra = np.array([rng.getrandbits(1) for _ in range(slip)], dtype=np.uint8)
        b = np.concatenate([b[:at], extra, b[at:]])
    else:
        b = np.concatenate([b[:at], b[at - slip :]])
    sync = FrameSynchronizer(N)
    got = feed(sync, octets(b))
    assert sync.stats["sync_losses"] == 1
    assert got[:4] == frames[:4]
    # three frames by flywheel at the old alignment, then the search finds the new
    # one again from the last good ASM: every frame after the slip is recovered
    assert sync.stats["frames_flywheel"] == 3
    assert got[-9:] == frames[5:]
    assert len(got) == 4 + 1 + 3 + 9


@pytest.mark.parametrize("missed", [1, 2, 3, 4])
def test_flywheel(missed):
    rng = random.Random(missed)
    frames = make_frames(rng, 10)
    b = stream_bits(rng, frames, 0)
    for j in range(3, 3 + missed):  # ASMs of frames 3.. hit by 8 errors each
        b = flip(b, [j * CADU_BITS + i for i in range(0, 32, 4)])
    sync = FrameSynchronizer(N, flywheel_frames=3)
    got = feed(sync, octets(b))
    if missed <= 3:
        assert got == frames  # the frames themselves were not hit
        assert sync.stats["frames_flywheel"] == missed
        assert sync.stats["sync_losses"] == 0
    else:  # the fourth miss loses sync; the search finds frame 7 and goes on
        assert got == frames[:6] + frames[7:]
        assert sync.stats["sync_losses"] == 1
        assert sync.stats["acquisitions"] == 2
    assert sync.state is SyncState.LOCK


def test_flywheel_zero_loses_sync_at_the_first_miss():
    rng = random.Random(5)
    frames = make_frames(rng, 6)
    b = flip(stream_bits(rng, frames), [2 * CADU_BITS + i for i in range(0, 32, 4)])
    sync = FrameSynchronizer(N, flywheel_frames=0)
    assert feed(sync, octets(b)) == frames[:2] + frames[3:]
    assert sync.stats["sync_losses"] == 1


@pytest.mark.parametrize("check_frames", [0, 1, 2, 3])
def test_check_frames(check_frames):
    rng = random.Random(check_frames)
    frames = make_frames(rng, 6)
    data = octets(stream_bits(rng, frames, 9))
    sync = FrameSynchronizer(N, check_frames=check_frames)
    # CADU by CADU: a frame is held until check_frames more ASMs confirm it
    cadus = [data[i : i + 4 + N] for i in range(0, len(data), 4 + N)]
    pushed = [sync.push(c) for c in cadus]
    assert [f for got in pushed for f in got] == frames  # the held frames, in order
    got_after = [len(got) for got in pushed]
    first = next(i for i, n in enumerate(got_after) if n)
    if check_frames:  # the CADU that brings the last confirming ASM releases them all
        assert (first, got_after[first]) == (check_frames, check_frames)
    else:  # delivered as soon as the frame is whole
        assert (first, got_after[first]) == (1, 1)


def test_false_asm_in_junk_is_not_delivered():
    rng = random.Random(3)
    frames = make_frames(rng, 3)
    junk = rng.randbytes(50) + ASM + rng.randbytes(80)  # a perfect ASM, nothing after
    sync = FrameSynchronizer(N)
    assert feed(sync, junk + b"".join(attach_asm(f) for f in frames)) == frames
    assert sync.stats["check_failures"] >= 1
    assert sync.stats["octets_discarded"] == len(junk)


@given(
    st.integers(0, 2**32),
    st.integers(0, 300),
    st.lists(st.integers(1, 700), max_size=12),
    st.booleans(),
)
@settings(max_examples=40)
def test_any_chunking_gives_the_same_frames(seed, junk_bits, chunks, inverted):
    rng = random.Random(seed)
    frames = make_frames(rng, 5)
    b = stream_bits(rng, frames, junk_bits)
    data = octets(1 - b if inverted else b)
    whole = FrameSynchronizer(N)
    pieces = FrameSynchronizer(N)
    assert feed(whole, data) == feed(pieces, data, chunks) == frames
    assert whole.stats == pieces.stats


@given(st.binary(max_size=3000), st.lists(st.integers(0, 500), max_size=10))
@settings(max_examples=60)
def test_garbage_never_raises_and_memory_stays_bounded(data, chunks):
    sync = FrameSynchronizer(N, check_frames=1, flywheel_frames=2)
    for frame in feed(sync, data, chunks):
        assert len(frame) == N


def test_endless_garbage_stays_bounded():
    rng = random.Random(9)
    frames = make_frames(rng, 3, 1115)
    sync = FrameSynchronizer(1115)
    for i in range(300):
        chunk = rng.randbytes(rng.randrange(1, 5000))
        if i % 50 == 0:  # some real CADUs now and then, then garbage again
            chunk += b"".join(attach_asm(f) for f in frames)
        for frame in sync.push(chunk):
            assert len(frame) == 1115
        assert sync.buffered <= sync.max_buffered
    assert sync.stats["acquisitions"] >= 5
    sync.reset()
    assert sync.buffered == 0 and sync.state is SyncState.SEARCH


@given(st.binary(min_size=4, max_size=200), st.integers(0, 6))
def test_find_asm_is_the_best_match_anywhere(data, max_errors):
    asm_bits = bits(ASM)
    b = bits(data)
    scores = []
    for p in range(len(b) - 31):
        e = int((b[p : p + 32] ^ asm_bits).sum())
        if e <= max_errors:
            scores.append((e, p, False))
        elif 32 - e <= max_errors:
            scores.append((32 - e, p, True))
    got = find_asm(data, 0, max_asm_errors=max_errors)
    if not scores:
        assert got is None
    else:
        e, p, inv = min(scores)
        assert got == AsmMatch(p, e, inv)


@given(st.binary(max_size=400), st.integers(0, 50))
def test_find_frame_never_raises(data, frame_len):
    out = find_frame(data, frame_len)
    assert out is None or len(out) == frame_len


def test_longer_asm():
    asm = bytes.fromhex("034776c7272895b0")  # the 64-bit ASM of rate-1/2 turbo codes
    rng = random.Random(4)
    frames = make_frames(rng, 4)
    b = np.concatenate([bits(rng.randbytes(3))[:21], bits(b"".join(asm + f for f in frames))])
    sync = FrameSynchronizer(N, asm=asm, max_asm_errors=6)
    assert feed(sync, octets(b)) == frames
    assert find_asm(octets(b[: 21 + 64 + 8 * N]), N, asm=asm) == AsmMatch(21, 0, False)


def test_configuration_errors():
    with pytest.raises(EncodeError):
        FrameSynchronizer(0)
    with pytest.raises(EncodeError):
        FrameSynchronizer(N, max_asm_errors=16)  # both polarities could match
    with pytest.raises(EncodeError):
        FrameSynchronizer(N, asm=b"")
    with pytest.raises(EncodeError):
        FrameSynchronizer(N, max_slip_bits=9)


def test_after_a_false_alarm_the_search_resumes_at_the_very_next_bit():
    """A candidate that fails its check is a false alarm: the search goes on from the
    bit after it, so a true ASM one bit later is still found (here an all-ones ASM,
    which a one-bit early candidate matches too) and no frame is lost."""
    frame_len = 4
    frames = [bytes([0xA0 + k]) + b"\xaa" * (frame_len - 1) for k in (1, 2, 3, 4)]
    stream = b"\x01" + b"".join(b"\xff\xff" + f for f in frames)  # the false ASM at bit 7
    sync = FrameSynchronizer(frame_len, asm=b"\xff\xff", max_asm_errors=0)
    assert sync.push(stream) == frames
    assert sync.stats["check_failures"] == 1 and sync.stats["acquisitions"] == 1


@pytest.mark.parametrize("late_bits", [1, 3])
def test_find_asm_ignores_an_asm_with_fewer_than_frame_len_octets_after_it(late_bits):
    """An ASM a few bits too late to have ``frame_len`` whole octets after it is no
    match (the bit-by-bit scan of a long unit stops at the last position that fits),
    while the same ASM at that last position is."""
    frame_len, length = 4, 20
    last_fit = 8 * (length - frame_len) - 32  # the last bit position with room after it

    def unit_with_asm_at(p: int) -> bytes:
        return (int.from_bytes(ASM, "big") << (8 * length - 32 - p)).to_bytes(length, "big")

    assert find_asm(unit_with_asm_at(last_fit), frame_len) == AsmMatch(last_fit, 0, False)
    assert find_asm(unit_with_asm_at(last_fit + late_bits), frame_len) is None


def test_without_confirmation_a_lost_sync_searches_on_from_past_the_last_good_asm():
    """With check_frames=0 a match is delivered at once, so the search after a loss of
    sync must start past the last ASM that matched, or it would find that one again."""
    rng = random.Random(4)
    frames = make_frames(rng, 10)
    b = stream_bits(rng, frames, 0)
    for j in range(3, 7):  # four ASMs missed: three by flywheel, then the loss
        b = flip(b, [j * CADU_BITS + i for i in range(0, 32, 4)])
    sync = FrameSynchronizer(N, check_frames=0, flywheel_frames=3)
    got = feed(sync, octets(b))
    assert got == frames[:6] + frames[7:]
    assert sync.stats["sync_losses"] == 1 and sync.stats["frames"] == 9


@given(
    st.integers(0, 2**32),
    st.one_of(st.integers(5, 3000), st.sampled_from([5, 6, 10, 2050, 2051, 2052, 2053])),
    st.integers(0, 3),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 4), st.booleans()), max_size=5),
)
@settings(max_examples=80, deadline=None)
def test_find_asms_lists_every_match_a_bit_by_bit_count_finds(seed, length, frame_len, planted):
    """Planted ASMs, with 0 to 4 errors, either polarity, anywhere (the last position
    with room for the frame included), in units short enough for the scan of the 8
    phases at once and long enough for the scan phase by phase."""
    rng = random.Random(seed)
    b = bits(rng.randbytes(length))
    last = 8 * (length - frame_len) - 32
    if last < 0:
        assert find_asms(octets(b), frame_len) == []
        return
    for where, errors, inverted in [*planted, (1.0, rng.randrange(5), rng.random() < 0.5)]:
        plant(b, round(where * last), errors, inverted, rng)
    unit = octets(b)
    assert find_asms(unit, frame_len) == reference_matches(unit, frame_len)


def test_find_asms_across_the_scan_blocks_of_a_long_unit():
    """A unit of over 65,536 octets is scanned in blocks of that many octet positions:
    an ASM that starts just before a block's end and ends in the next is found, and so
    are those around the boundary."""
    rng = random.Random(7)
    length = 2 * 65536 + 100
    b = bits(rng.randbytes(length))
    boundary = 8 * 65536
    for at, errors, inverted in [
        (boundary - 70, 0, False),
        (boundary - 35, 2, True),
        (boundary - 3, 4, False),  # straddles the boundary
        (boundary + 40, 1, True),
        (2 * boundary - 17, 3, False),
        (8 * length - 32, 0, True),
    ]:
        plant(b, at, errors, inverted, rng)
    unit = octets(b)
    found = find_asms(unit)
    assert found == reference_matches(unit)
    assert AsmMatch(boundary - 3, 4, False) in found and AsmMatch(8 * length - 32, 0, True) in found


def test_a_check_completes_as_soon_as_the_confirming_asm_is_whole():
    """The CADU and the next ASM, nothing more: the check has all it needs and the
    frame is delivered at once, not after one more push."""
    frame = make_frames(random.Random(11), 1)[0]
    sync = FrameSynchronizer(N)
    assert sync.push(attach_asm(frame) + ASM) == [frame]
    assert sync.state is SyncState.LOCK


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_a_slip_that_brings_the_asm_onto_an_octet_boundary_is_a_slip(offset):
    """Frames ``offset`` bits off the octet boundary, then ``offset`` bits lost: the
    next ASM starts on an octet boundary, ``offset`` bits before it was expected. It is
    found there as a slip, and the frames after it come out whole."""
    rng = random.Random(20 + offset)
    frames = make_frames(rng, 8)
    b = stream_bits(rng, frames, offset)
    at = offset + 3 * CADU_BITS + 100  # inside the fourth frame
    b = np.concatenate([b[:at], b[at + offset :]])
    sync = FrameSynchronizer(N)
    got = feed(sync, octets(b))
    assert len(got) == 8 and got[:3] == frames[:3] and got[4:] == frames[4:]
    assert sync.stats["slips"] == 1 and sync.stats["sync_losses"] == 0


def test_octets_discarded_counts_the_junk_between_two_runs_of_frames():
    """Four CADUs, junk, four CADUs: three CADUs' worth of junk go out by flywheel, the
    fourth miss loses sync, and what the search then passes over is discarded."""
    rng = random.Random(12)
    before, after = make_frames(rng, 4), make_frames(rng, 4)
    junk = rng.randbytes(4 * (4 + N) + 57)
    stream = b"".join(map(attach_asm, before)) + junk + b"".join(map(attach_asm, after))
    sync = FrameSynchronizer(N)
    got = feed(sync, stream)
    assert len(got) == 11 and got[:4] == before and got[-4:] == after
    assert sync.stats["frames_flywheel"] == 3 and sync.stats["sync_losses"] == 1
    assert sync.stats["octets_discarded"] == (4 + N) + 57


@pytest.mark.parametrize(
    ("changes", "refused_field"),
    [
        ({"frame_len": 1}, None),
        ({"frame_len": 1 << 20}, None),
        ({"frame_len": 0}, "frame_len"),
        ({"frame_len": (1 << 20) + 1}, "frame_len"),
        ({"asm": b"\xb7", "max_asm_errors": 3}, None),  # one octet
        ({"asm": bytes(range(31))}, None),
        ({"asm": b""}, "asm"),
        ({"asm": bytes(range(32))}, "asm"),
        ({"asm": list(ASM)}, "asm"),  # not bytes, though bytes() would take it
        ({"asm": ASM.hex()}, "asm"),
        ({"max_asm_errors": 0}, None),
        ({"max_asm_errors": 15}, None),  # below half of 32 bits
        ({"max_asm_errors": -1}, "max_asm_errors"),
        ({"max_asm_errors": 16}, "max_asm_errors"),
        ({"asm": b"\xb7", "max_asm_errors": 4}, "max_asm_errors"),  # half of 8 bits
        ({"check_frames": 0}, None),
        ({"check_frames": 16}, None),
        ({"check_frames": -1}, "check_frames"),
        ({"check_frames": 17}, "check_frames"),
        ({"flywheel_frames": 0}, None),
        ({"flywheel_frames": 64}, None),
        ({"flywheel_frames": -1}, "flywheel_frames"),
        ({"flywheel_frames": 65}, "flywheel_frames"),
        ({"max_slip_bits": 0}, None),
        ({"max_slip_bits": 8}, None),
        ({"max_slip_bits": -1}, "max_slip_bits"),
        ({"max_slip_bits": 9}, "max_slip_bits"),
    ],
)
def test_each_setting_is_accepted_at_its_limits_and_refused_one_past(changes, refused_field):
    if refused_field is None:
        sync = FrameSynchronizer(**{"frame_len": N, **changes})
        assert sync.state is SyncState.SEARCH
    else:
        with pytest.raises(EncodeError) as err:
            FrameSynchronizer(**{"frame_len": N, **changes})
        assert err.value.field == refused_field


@pytest.mark.parametrize("function", [find_asm, find_asms])
@pytest.mark.parametrize(
    ("frame_len", "accepted"), [(0, True), (1 << 20, True), (-1, False), ((1 << 20) + 1, False)]
)
def test_find_asm_takes_frame_lengths_from_0_to_1_mib(function, frame_len, accepted):
    unit = ASM + bytes(max(frame_len, 0))  # a clean ASM at bit 0, with room for the frame
    if accepted:
        found = function(unit, frame_len)
        assert found == (AsmMatch(0, 0, False) if function is find_asm else [AsmMatch(0, 0, False)])
    else:
        with pytest.raises(EncodeError) as err:
            function(unit, frame_len)
        assert err.value.field == "frame_len"


@pytest.mark.parametrize(("errors", "found"), [(4, True), (5, False)])
def test_find_asm_by_default_wants_no_frame_after_the_asm_and_tolerates_four_errors(errors, found):
    word = int.from_bytes(ASM, "big") ^ (1 << errors) - 1  # the last ``errors`` bits flipped
    unit = bytes(3) + word.to_bytes(4, "big")  # zeros match neither polarity
    assert find_asm(unit) == (AsmMatch(24, errors, False) if found else None)


@pytest.mark.parametrize(
    "asm",
    [
        b"\xb7",
        ASM[:2],
        ASM[:3],
        ASM + b"\x5a",
        bytes.fromhex("034776c7272895b0"),
        bytes(range(100, 131)),
    ],
    ids=lambda a: f"{len(a)}-octets",
)
@pytest.mark.parametrize("length", [40, 2100, 6], ids=["8-phases", "phase-by-phase", "python-ints"])
def test_find_asms_finds_asms_of_any_length_as_a_bit_by_bit_count_does(asm, length):
    """ASMs of 1 to 31 octets (scanned in chunks of up to 4 octets), planted clean on
    an octet boundary, with errors, inverted, with one octet wholly wrong, and at the
    last position; in units scanned by each of the three paths."""
    max_errors = min(4, (8 * len(asm) - 1) // 2)
    rng = random.Random(len(asm) * length)
    unit_octets = len(asm) + length
    b = bits(rng.randbytes(unit_octets))
    a = bits(asm)
    last = len(b) - len(a)
    damaged = a.copy()
    damaged[-8:] ^= 1  # the last octet complemented: 8 errors, no match
    at = 8  # then 11 bits apart, through the bit phases, as many as fit before ``last``
    for word in [a, flip(a, [0, len(a) - 1][:max_errors]), 1 - a, damaged]:
        if at + len(a) > last:
            break
        b[at : at + len(a)] = word
        at += len(a) + 11
    b[last:] = a
    unit = octets(b)
    found = find_asms(unit, 0, asm, max_errors)
    assert found == reference_matches(unit, 0, asm, max_errors)
    assert AsmMatch(last, 0, False) in found
    assert (AsmMatch(8, 0, False) in found) is (8 + len(a) <= last)


def _words(octets_: bytes) -> array:
    words = array("H")
    words.frombytes(octets_)
    return words


@pytest.mark.parametrize(
    "words",
    [array("H", [0x1A, 0xCF, 0xFC, 0x1D]), _words(bytes(2) + ASM + bytes(2))],
    ids=["items-equal-to-the-asm-octets", "asm-in-the-octets"],
)
def test_a_unit_in_a_buffer_of_wider_items_is_read_as_its_octets(words):
    """A memoryview of 16-bit words: what counts is the octets it holds (as bytes()
    gives them), not its items."""
    unit = memoryview(words)
    assert find_asms(unit) == find_asms(bytes(unit))
    assert find_asm(unit) == find_asm(bytes(unit))
    assert find_asms(_words(bytes(2) + ASM + bytes(2))) == [AsmMatch(16, 0, False)]


@pytest.mark.parametrize(
    ("junk_bits", "inverted"), [(0, False), (8 * 9 + 3, False), (8 * 30 + 6, True)]
)
def test_a_stream_fed_one_octet_at_a_time_gives_what_one_push_gives(junk_bits, inverted):
    """Every push then adds 8 positions to scan, so the search runs on short stretches
    in the middle of what is held."""
    rng = random.Random(junk_bits)
    frames = make_frames(rng, 4)
    b = stream_bits(rng, frames, junk_bits)
    data = octets(1 - b if inverted else b)
    whole, by_octet = FrameSynchronizer(N), FrameSynchronizer(N)
    assert feed(whole, data) == frames
    assert feed(by_octet, data, [1] * len(data)) == frames
    assert by_octet.stats == whole.stats
    assert by_octet.stats["asm_bit_errors"] == 0


def test_in_search_only_the_octets_that_could_still_begin_an_asm_are_held():
    """With no ASM in sight the synchronizer keeps the last 4 octets (an ASM may
    start in them) and counts the rest discarded, once each, however the junk
    comes; the frames after it are then found."""
    rng = random.Random(13)
    frames = make_frames(rng, 3)
    sync = FrameSynchronizer(N)
    pushed = 0
    for size in [100, 1, 1, 1, 5, 50]:  # zeros: 19 bits from the ASM, 13 from its complement
        assert sync.push(bytes(size)) == []
        pushed += size
        assert (sync.state, sync.buffered) == (SyncState.SEARCH, 4)
        assert sync.stats["octets_discarded"] == pushed - 4
    assert sync.push(b"".join(map(attach_asm, frames))) == frames
    assert sync.stats["octets_discarded"] == pushed


def test_a_clean_aligned_stream_counts_only_frames_and_one_acquisition():
    frames = make_frames(random.Random(14), 3)
    sync = FrameSynchronizer(N)
    assert sync.push(b"".join(map(attach_asm, frames))) == frames
    assert dict(sync.stats) == {"frames": 3, "acquisitions": 1, "asm_bit_errors": 0}


def test_without_confirmation_a_lone_cadu_is_delivered_as_soon_as_it_is_whole():
    """check_frames=0: the ASM is taken at once; the junk before it is dropped
    (all but the octet that holds the max_slip_bits bits before it) and counted
    discarded when the frame is delivered."""
    frame = make_frames(random.Random(15), 1)[0]
    sync = FrameSynchronizer(N, check_frames=0, max_slip_bits=3)
    cadu = attach_asm(frame)
    assert sync.push(bytes(10) + cadu[:100]) == []
    assert sync.state is SyncState.LOCK
    assert sync.buffered == 1 + 100  # from bit 77: octet 9 on
    assert sync.push(cadu[100:]) == [frame]
    assert sync.stats["octets_discarded"] == 10 and sync.stats["acquisitions"] == 1


def _slipped(
    rng: random.Random, frames: list[bytes], junk_bits: int, shift: int
) -> tuple[np.ndarray, int]:
    """The stream with ``shift`` bits inserted (or, if negative, lost) inside frame 3;
    returns it and where ASM 4 now starts."""
    b = stream_bits(rng, frames, junk_bits)
    at = junk_bits + 3 * CADU_BITS + 100
    if shift > 0:
        extra = np.array([rng.getrandbits(1) for _ in range(shift)], dtype=np.uint8)
        b = np.concatenate([b[:at], extra, b[at:]])
    else:
        b = np.concatenate([b[:at], b[at - shift :]])
    return b, junk_bits + 4 * CADU_BITS + shift


@pytest.mark.parametrize(
    ("shift", "errors", "inverted", "is_slip"),
    [
        (1, 0, False, True),
        (1, 2, False, True),  # max_asm_errors // 2: the most a shifted ASM may have
        (1, 3, False, False),
        (-2, 2, True, True),
        (-1, 3, True, False),
        (3, 1, True, True),
    ],
)
def test_a_shifted_asm_is_a_slip_with_at_most_half_the_errors_allowed(
    shift, errors, inverted, is_slip
):
    """A slip delivers the frame behind the shifted ASM (its errors counted); a shifted
    ASM with more errors is not one: its frame comes by flywheel from the old
    alignment, and the next (clean) ASM is the slip."""
    rng = random.Random(30 + 10 * shift + errors)
    frames = make_frames(rng, 8)
    b, asm4 = _slipped(rng, frames, 5, shift)
    b = flip(b, [asm4 + i for i in rng.sample(range(32), errors)])
    sync = FrameSynchronizer(N)
    got = feed(sync, octets(1 - b if inverted else b))
    assert len(got) == 8 and got[:3] == frames[:3] and got[5:] == frames[5:]
    assert (got[4] == frames[4]) is is_slip
    assert sync.inverted is inverted and sync.stats["slips"] == 1
    assert sync.stats["frames_flywheel"] == (0 if is_slip else 1)
    assert sync.stats["asm_bit_errors"] == (errors if is_slip else 0)


@pytest.mark.parametrize(("extra_bits", "frames_at_once"), [(0, 4), (1, 4), (2, 4), (3, 5)])
def test_a_missed_asm_waits_for_max_slip_bits_past_its_cadu(extra_bits, frames_at_once):
    """ASM 4 comes 1 bit late. It is looked for once the CADU expected there and
    max_slip_bits (3) more bits are in: a push that ends ``extra_bits`` past that CADU
    delivers frames 0-3 only, until the 3 bits are there, and then frame 4 whole."""
    rng = random.Random(40 + extra_bits)
    frames = make_frames(rng, 7)
    junk_bits = -extra_bits % 8  # so that the first push ends on an octet boundary
    b, asm4 = _slipped(rng, frames, junk_bits, 1)
    data = octets(b)
    sync = FrameSynchronizer(N, max_slip_bits=3)
    cut = (asm4 - 1 + CADU_BITS + extra_bits) // 8  # the expected CADU and extra_bits
    first = sync.push(data[:cut])
    assert len(first) == frames_at_once and first[:3] == frames[:3]
    got = first + sync.push(data[cut:])
    assert len(got) == 7 and got[4:] == frames[4:]
    assert sync.stats["slips"] == 1 and sync.stats["frames_flywheel"] == 0


@pytest.mark.parametrize(
    ("flips", "best", "best_errors"),
    [
        ([], -1, 0),  # a tie: the first tried (1 bit early) wins
        ([-1], 2, 0),
        ([24], -1, 0),
        ([-1, 24, 25], -1, 1),
    ],
)
def test_of_several_shifted_asms_the_one_with_fewest_errors_is_taken(flips, best, best_errors):
    """An ASM with period 3 (110 repeated) written 1 bit early, with 3 more bits of the
    pattern after it, also matches 2 bits late: the slip goes to the one with fewer
    errors, the earlier-tried one on a tie (1 bit early before 2 late)."""
    asm, frame_len = bytes.fromhex("db6db6"), 16
    cadu_bits = 8 * (3 + frame_len)
    rng = random.Random(50 + len(flips))
    # frames start with 001 so that no ASM shifted by 3 bits into them is close
    frames = [bytes([0x20 | rng.getrandbits(5)]) + rng.randbytes(frame_len - 1) for _ in range(6)]
    b = bits(b"".join(asm + f for f in frames))
    p = 3 * cadu_bits  # where ASM 3 is expected
    b[p - 1 : p + 26] = np.tile([1, 1, 0], 9)
    b = flip(b, [p + i for i in flips])
    sync = FrameSynchronizer(frame_len, asm=asm, max_asm_errors=4, max_slip_bits=3)
    got = feed(sync, octets(b))
    q = p + best
    assert got[:2] == frames[:2] and got[4:] == frames[4:]  # frame 2 ends in the pattern
    assert got[3] == octets(b[q + 24 : q + 24 + 8 * frame_len])
    assert sync.stats["slips"] == 2  # and back at ASM 4
    assert sync.stats["asm_bit_errors"] == best_errors


@pytest.mark.parametrize(("errors", "flipped_at_once"), [(4, True), (5, False)])
def test_a_polarity_flip_in_lock_is_taken_with_up_to_max_asm_errors(errors, flipped_at_once):
    rng = random.Random(60 + errors)
    frames = make_frames(rng, 7)
    b = stream_bits(rng, frames, 3)
    cut = 3 + 3 * CADU_BITS  # from CADU 3 on, inverted; its ASM with ``errors`` errors
    b[cut:] ^= 1
    b = flip(b, [cut + i for i in rng.sample(range(32), errors)])
    sync = FrameSynchronizer(N)
    got = feed(sync, octets(b))
    assert len(got) == 7 and got[:3] == frames[:3] and got[4:] == frames[4:]
    assert (got[3] == frames[3]) is flipped_at_once
    assert sync.stats["inversions"] == 1 and sync.inverted
    assert sync.stats["frames_flywheel"] == (0 if flipped_at_once else 1)
    assert sync.stats["asm_bit_errors"] == (errors if flipped_at_once else 0)


def test_after_a_missed_asm_the_state_is_flywheel_until_one_matches():
    rng = random.Random(16)
    frames = make_frames(rng, 6)
    b = flip(stream_bits(rng, frames), [3 * CADU_BITS + i for i in range(0, 32, 4)])
    data = octets(b)
    sync = FrameSynchronizer(N, max_slip_bits=3)
    cut = 4 * (4 + N) + 1  # CADU 3 and 3 bits more: its ASM is found missing
    assert sync.push(data[:cut]) == frames[:4]
    assert sync.state is SyncState.FLYWHEEL and sync.stats["frames_flywheel"] == 1
    assert sync.push(data[cut:]) == frames[4:]
    assert sync.state is SyncState.LOCK


def test_after_a_sync_loss_the_search_resumes_one_bit_after_the_last_good_asm():
    """With the all-ones ASM and a frame that starts with a 1, the last good ASM also
    matches one bit later: after the loss that match is the first candidate tried
    (a false alarm here)."""
    asm = b"\xff\xff"
    frames = [b"\x80\x55\x55\x54", b"\x80\x55\x55\x14"]  # no other run of 16 equal bits
    sync = FrameSynchronizer(4, asm=asm, max_asm_errors=0, flywheel_frames=0, max_slip_bits=0)
    assert sync.push(b"".join(asm + f for f in frames) + b"\x55" * 20) == frames
    assert sync.stats["sync_losses"] == 1
    assert sync.stats["check_failures"] == 1


@pytest.mark.parametrize(
    ("frame_len", "asm", "changes", "octets_bound"),
    [
        (N, ASM, {}, 5 * (4 + N) + 2),  # 1 check frame, 3 flywheel: 5 CADUs
        (N, ASM, {"check_frames": 6, "flywheel_frames": 0, "max_slip_bits": 0}, 7 * (4 + N) + 2),
        (
            N,
            ASM,
            {"check_frames": 1, "flywheel_frames": 0, "max_slip_bits": 8},
            2 * (4 + N) + 1 + 2,
        ),
        (1, b"\xb7", {"check_frames": 0, "flywheel_frames": 0, "max_asm_errors": 3}, 4 + 2),
    ],
)
def test_max_buffered_is_max_of_check_frames_plus_1_and_flywheel_frames_plus_2_cadus(
    frame_len, asm, changes, octets_bound
):
    """The documented bound: that many CADUs and max_slip_bits, in octets, plus 2."""
    assert FrameSynchronizer(frame_len, asm=asm, **changes).max_buffered == octets_bound


@pytest.mark.parametrize(("flywheel_frames", "max_slip_bits"), [(0, 3), (3, 3), (2, 7)])
def test_the_synchronizer_comes_within_an_octet_of_max_buffered_when_flywheeling(
    flywheel_frames, max_slip_bits
):
    """The worst case: the last good ASM on the last bit of an octet, every flywheel
    frame used, and the next expected CADU in all but its last max_slip_bits bits."""
    rng = random.Random(70 + flywheel_frames)
    frames = make_frames(rng, flywheel_frames + 5)
    junk_bits = 7
    b = stream_bits(rng, frames, junk_bits)
    for j in range(3, 4 + flywheel_frames):  # ASMs 3.. missed
        b = flip(b, [junk_bits + j * CADU_BITS + i for i in range(0, 32, 4)])
    last_good = junk_bits + 2 * CADU_BITS
    end_bits = last_good + (flywheel_frames + 2) * CADU_BITS + max_slip_bits - 1
    sync = FrameSynchronizer(
        N, check_frames=1, flywheel_frames=flywheel_frames, max_slip_bits=max_slip_bits
    )
    got = sync.push(octets(b)[: end_bits // 8])
    assert len(got) == 3 + flywheel_frames
    assert sync.max_buffered - 1 <= sync.buffered <= sync.max_buffered


@pytest.mark.parametrize("check_frames", [2, 5])
def test_a_check_holds_check_frames_cadus_and_an_asm_within_max_buffered(check_frames):
    """The worst case in CHECK: the candidate on the last bit of an octet and the
    confirming ASM in all but its last bit."""
    rng = random.Random(80 + check_frames)
    frames = make_frames(rng, check_frames + 1)
    junk_bits = 7
    end_bits = junk_bits + check_frames * CADU_BITS + 32 - 1
    sync = FrameSynchronizer(N, check_frames=check_frames, flywheel_frames=0)
    assert sync.push(octets(stream_bits(rng, frames, junk_bits))[: end_bits // 8]) == []
    assert sync.state is SyncState.CHECK
    assert sync.buffered == check_frames * (4 + N) + 4 <= sync.max_buffered


@pytest.mark.parametrize(("check_frames", "state"), [(0, SyncState.LOCK), (1, SyncState.CHECK)])
def test_an_asm_that_ends_with_the_last_octet_pushed_is_found_at_once(check_frames, state):
    sync = FrameSynchronizer(N, check_frames=check_frames)
    assert sync.push(bytes(8) + ASM) == []
    assert sync.state is state


@pytest.mark.parametrize(
    ("frame_len", "before", "gap_bits", "first", "chunk"),
    [
        (1, [1, 0, 1], 1, 0, 1),
        (1, [1, 0, 1], 1, 0, 2),
        (1, [1, 0, 1], 1, 0, 3),
        (1, [1, 0, 1], 1, 0, 5),
        (3, [], 18, 10, 1),  # the stretch starts 7 octets into what is held
    ],
)
def test_an_asm_just_after_a_false_alarm_is_found_when_the_stream_comes_in_small_pushes(
    frame_len, before, gap_bits, first, chunk
):
    """A false ASM, then ``gap_bits`` zeros, then CADUs of short frames, pushed as
    ``first`` octets and then ``chunk`` at a time: the check of the false ASM fails
    once a few more octets are in, and the search goes on over a short stretch that
    starts octets into what is held, with the true first ASM in it."""
    rng = random.Random(90 + chunk + frame_len)
    frames = make_frames(rng, 5, frame_len)
    cadus = bits(b"".join(map(attach_asm, frames)))
    b = np.concatenate([before, bits(ASM), np.zeros(gap_bits), cadus]).astype(np.uint8)
    data = octets(b)
    sync = FrameSynchronizer(frame_len)
    assert feed(sync, data, [first] + [chunk] * (len(data) // chunk)) == frames
    assert sync.stats["check_failures"] == 1 and sync.stats["asm_bit_errors"] == 0


def test_a_candidate_whose_asm_began_in_the_previous_push_is_taken_without_confirmation():
    """check_frames=0, an ASM whose first bit ended the previous push: the search had
    kept only the octet that bit is in, and the synchronizer keeps it still (it
    cannot go back past it) until the frame is whole."""
    frame = make_frames(random.Random(17), 1)[0]
    b = np.concatenate([bits(bytes(10))[: 80 - 31], bits(attach_asm(frame))])
    data = octets(b)
    sync = FrameSynchronizer(N, check_frames=0, max_slip_bits=3)
    assert sync.push(data[:10]) == [] and sync.buffered == 4
    assert sync.push(data[10:50]) == [] and sync.state is SyncState.LOCK
    assert sync.buffered == 4 + 40
    assert sync.push(data[50:]) == [frame]
