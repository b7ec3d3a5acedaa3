"""A profile replay (linkstack/capture/mission_replay.py) of a capture holding each TM
frame twice, in its CADU and as a frame record beside it (linkstack's own capture): each
frame decoded once, the record checked against its CADU's frame; a record with no CADU
near it decoded on its own, as in a recording of frames alone."""

from __future__ import annotations

import pytest

from linkstack.capture.mission_replay import MissionReplay
from linkstack.capture.reader import PAIR_WINDOW_S, CapturedUnit
from linkstack.ccsds.coding.chains import CaduReceiver
from linkstack.runtime.mission_profile import load_profile
from tests.capture.test_replay import _answer, _tm_units

PROFILE = load_profile("linkstack")
SAT, GROUND = "sat", "ground"
STEP_S = 0.1  # between CADUs: ten of them within the pairing window
N = 6


def _cadus_and_frames() -> tuple[list[bytes], list[bytes]]:
    """N linkstack answers, each ending its TM frame: the CADUs and their frames."""
    cadus = _tm_units([_answer(k) for k in range(N)])
    rx = CaduReceiver(PROFILE.downlink.frame_length, PROFILE.downlink.cadu_coding())
    frames = []
    for cadu in cadus:
        got = rx.receive_cadu(cadu)
        assert got is not None
        frames.append(got.frame)
    return cadus, frames


CADUS, FRAMES = _cadus_and_frames()


def _replay(units: list[CapturedUnit]) -> MissionReplay:
    replay = MissionReplay(PROFILE)
    for unit in sorted(units, key=lambda u: u.t_s):  # a capture's order
        replay.feed(unit)
    replay.finish()
    return replay


def _cadu(i: int, data: bytes | None = None) -> CapturedUnit:
    return CapturedUnit("tm_cadu", i * STEP_S, SAT, GROUND, CADUS[i] if data is None else data)


def _record(i: int, offset_s: float, data: bytes | None = None, src: str = SAT) -> CapturedUnit:
    frame = FRAMES[i] if data is None else data
    return CapturedUnit("tm_frame", i * STEP_S + offset_s, src, GROUND, frame)


def _figures(replay: MissionReplay) -> dict:
    """What the downlink decoded to, less the units fed (and their numbers), the CADU
    receiver's counters and the records' pairing."""
    doc = replay.counts.as_dict()
    del doc["units"], doc["frame_records"], doc["cadu"]
    packets = [(p.vcid, p.vc_count, p.apid, p.seq_count, p.raw) for p in replay.packets]
    return {**doc, "packets": packets}


ALONE = _replay([_cadu(i) for i in range(N)])  # the CADUs alone: what each frame gives


def test_the_cadus_alone_decode_every_answer_without_a_gap():
    assert ALONE.counts.messages == {"Answer": N}
    assert ALONE.counts.vcs[0].frames == N and ALONE.counts.vcs[0].gaps == 0
    assert not ALONE.counts.frame_records and not ALONE.refusals


@pytest.mark.parametrize(
    "offset_s",
    [0.0, 0.03, -0.03, 0.9 * PAIR_WINDOW_S, -0.9 * PAIR_WINDOW_S],
    ids=["same-instant", "after", "before", "late", "early"],
)
def test_frame_records_beside_their_cadus_are_checked_not_decoded_again(offset_s):
    """Records at the CADU's instant (linkstack's capture), or after or before it within
    the window (other tools): each frame counted once, each record equal."""
    units = [_cadu(i) for i in range(N)] + [_record(i, offset_s) for i in range(N)]
    replay = _replay(units)
    assert _figures(replay) == _figures(ALONE)
    assert replay.counts.frame_records == {"equal": N}
    assert replay.counts.units == {"tm_cadu": N, "tm_frame": N}


@pytest.mark.parametrize("offset_s", [0.0, 0.03, -0.03], ids=["same-instant", "after", "before"])
def test_a_frame_record_other_than_its_cadus_frame_counts_as_different(offset_s):
    """The record of frame 2 has one octet changed: it goes with CADU 2 all the same
    (the one near it left without a record), counted different and not decoded."""
    bad = bytearray(FRAMES[2])
    bad[20] ^= 0xFF
    records = [_record(i, offset_s, bytes(bad) if i == 2 else None) for i in range(N)]
    replay = _replay([_cadu(i) for i in range(N)] + records)
    assert replay.counts.frame_records == {"equal": N - 1, "different": 1}
    assert _figures(replay) == _figures(ALONE)


def test_a_record_whose_cadu_was_refused_is_counted_so_and_not_decoded():
    """CADU 3 without its ASM: refused; its record goes with it (cadu_refused), so its
    frame is missing from the counts as the CADU's is."""
    broken = bytes(4) + CADUS[3][4:]
    units = [_cadu(i, broken if i == 3 else None) for i in range(N)]
    replay = _replay(units + [_record(i, 0.0) for i in range(N)])
    assert replay.counts.frame_records == {"equal": N - 1, "cadu_refused": 1}
    assert replay.counts.messages == {"Answer": N - 1}
    assert replay.counts.vcs[0].gaps == 1 and replay.counts.vcs[0].lost == 1
    assert replay.refusals == ["CADU 6: no ASM"]  # the 7th unit of the capture


def test_frame_records_alone_decode_as_the_cadus_would():
    """A recording of frames only (as Mars 2020's): each decoded, in order, the same
    counts as the CADUs'; the last ones wait for a CADU until finish()."""
    replay = MissionReplay(PROFILE)
    for i in range(N):
        replay.feed(_record(i, 0.0))
    assert replay.counts.messages == {}  # all within the window of the last: waiting
    replay.finish()
    assert replay.counts.frame_records == {"alone": N}
    assert _figures(replay) == _figures(ALONE)
    assert [p.unit for p in replay.packets] == list(range(N))  # the record's number


def test_a_record_far_from_every_cadu_or_from_another_source_is_decoded_alone():
    """Frame 5 only as a record, two windows after the CADUs; frame 4's record from
    another source beside CADU 4 (whose own record is missing): neither is paired."""
    units = [_cadu(i) for i in range(5)] + [_record(i, 0.0) for i in range(4)]
    units.append(_record(4, 0.0, src="elsewhere"))
    units.append(_record(5, 2 * PAIR_WINDOW_S))
    replay = _replay(units)
    assert replay.counts.frame_records == {"equal": 4, "alone": 2}
    # frame 4 decoded twice (its CADU and the stranger's record): a frame count gap
    assert replay.counts.messages == {"Answer": N + 1}
    assert replay.counts.vcs[0].frames == N + 1
