"""FARM-1 (232.1-B-2 §6): every cell of its state table (table 6-1), the windows,
Lockout and its way out, the Wait flag and the buffer release, the CLCW it reports.

The expected outcomes below are written from the standard's table, independently
of the implementation's code: for each event E1..E10 and state S1 Open, S2 Wait,
S3 Lockout, the next state, whether the frame is accepted, and the variables the
CLCW reports (V(R), Retransmit, Wait, Lockout, FARM-B counter).
"""

from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.commands import SetVr, Unlock
from linkstack.ccsds.cop1.farm import Cell as TableCell
from linkstack.ccsds.cop1.farm import Farm, FarmEvent, FarmState
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.errors import ConfigError, EncodeError

SCID, VC, W = 5, 2, 16  # PW = NW = 8
VR0 = 250  # start near the wrap of the 8-bit sequence numbers on purpose
S1, S2, S3 = FarmState.OPEN, FarmState.WAIT, FarmState.LOCKOUT
E = FarmEvent


def ad(seq: int, data: bytes = b"ad") -> TcFrame:
    return TcFrame(SCID, VC, data, TcFrameType.AD, seq % 256, 0)


def bd() -> TcFrame:
    return TcFrame(SCID, VC, b"bd", TcFrameType.BD, 0, 0)


def bc(data: bytes) -> TcFrame:
    return TcFrame(SCID, VC, data, TcFrameType.BC)


def farm_in(state: FarmState, full: bool = False) -> Farm:
    """A FARM-1 (W = 16, room for two AD frames) in ``state``; ``full``: its buffer
    full (in S3: Lockout entered from Wait, so with the Wait flag still set)."""
    farm = Farm(VC, W, buffer_frames=2)
    assert farm.receive(bc(SetVr(VR0).pack())).event is E.E8
    if full or state is S2:
        farm.receive(ad(farm.vr))
        farm.receive(ad(farm.vr))
        assert not farm.buffer_space and farm.state is S1
    if state is S2 or (full and state is S3):
        assert farm.receive(ad(farm.vr)).new_state is S2
    if state is S3:
        assert farm.receive(ad(farm.vr + 100)).new_state is S3
    assert farm.state is state
    return farm


def view(farm: Farm) -> dict:
    return {
        "state": farm.state,
        "vr": farm.vr,
        "R": farm.retransmit,
        "W": farm.wait,
        "L": farm.lockout,
        "B": farm.farm_b_counter,
    }


# The frame (or signal) of each event, given the FARM it goes to.
TRIGGERS = {
    E.E1: lambda f: f.receive(ad(f.vr)),
    E.E2: lambda f: f.receive(ad(f.vr)),
    E.E3: lambda f: f.receive(ad(f.vr + 1)),
    E.E4: lambda f: f.receive(ad(f.vr - 1)),
    E.E5: lambda f: f.receive(ad(f.vr + 8)),
    E.E6: lambda f: f.receive(bd()),
    E.E7: lambda f: f.receive(bc(Unlock().pack())),
    E.E8: lambda f: f.receive(bc(SetVr(17).pack())),
    E.E9: lambda f: f.receive(None),
    E.E10: lambda f: f.buffer_release(),
}


@dataclass(frozen=True)
class Cell:
    to: FarmState | None  # None: not applicable
    accepted: bool = False
    changes: tuple = ()  # (variable, new value); "vr+1" for the increment


NA = Cell(None)
DISCARD = Cell(S1), Cell(S2), Cell(S3)  # discard, stay

# 232.1-B-2 table 6-1, row by row (S1, S2, S3).
EXPECTED = {
    E.E1: (Cell(S1, True, (("vr+1", 1), ("R", False))), NA, DISCARD[2]),
    E.E2: (Cell(S2, False, (("R", True), ("W", True))), DISCARD[1], DISCARD[2]),
    E.E3: (Cell(S1, False, (("R", True),)), DISCARD[1], DISCARD[2]),
    E.E4: DISCARD,
    E.E5: (Cell(S3, False, (("L", True),)), Cell(S3, False, (("L", True),)), DISCARD[2]),
    E.E6: tuple(Cell(s, True, (("B+1", 1),)) for s in (S1, S2, S3)),
    E.E7: (
        Cell(S1, False, (("B+1", 1), ("R", False))),
        Cell(S1, False, (("B+1", 1), ("R", False), ("W", False))),
        Cell(S1, False, (("B+1", 1), ("R", False), ("W", False), ("L", False))),
    ),
    E.E8: (
        Cell(S1, False, (("B+1", 1), ("R", False), ("vr", 17))),
        Cell(S1, False, (("B+1", 1), ("R", False), ("W", False), ("vr", 17))),
        Cell(S3, False, (("B+1", 1),)),  # not executed in Lockout, but counted
    ),
    E.E9: DISCARD,
    E.E10: (Cell(S1), Cell(S1, False, (("W", False),)), Cell(S3, False, (("W", False),))),
}

CELLS = [(ev, st_) for ev in E for st_ in (S1, S2, S3)]


def _arrange(event: FarmEvent, state: FarmState) -> Farm:
    # E2 needs a full buffer; so does the Wait flag E10 clears in S3 (reached from S2)
    full = event is E.E2 or (event is E.E10 and state is S3)
    farm = farm_in(state, full)
    if full and state is S3:
        assert farm.wait  # Lockout entered from Wait keeps the Wait flag
    return farm


@pytest.mark.parametrize(("event", "state"), CELLS, ids=[f"{e.name}/S{s}" for e, s in CELLS])
def test_state_table_cell(event, state):
    cell = EXPECTED[event][state - 1]
    farm = _arrange(event, state)
    if cell.to is None:  # E1 in Wait: in sequence with space freed but not yet released
        farm.take()
        assert farm.classify(ad(farm.vr))[0] is E.E2  # ... is still "no buffer space"
        return
    before = view(farm)
    buffered = len(farm.buffer)
    counted = Counter(farm.stats)
    result = TRIGGERS[event](farm)
    assert result.event is event and result.old_state is state
    # the counters: the event, and what became of the frame (E10 brings none)
    counted[event.name] += 1
    if cell.accepted:
        counted["accepted"] += 1
    elif event in (E.E7, E.E8):
        counted["control_commands"] += 1  # executed or not
    elif event is not E.E10:
        counted["discarded"] += 1
    assert farm.stats == counted
    expected = dict(before, state=cell.to)
    for name, value in cell.changes:
        if name == "vr+1":
            expected["vr"] = (before["vr"] + 1) % 256
        elif name == "B+1":
            expected["B"] = before["B"] + 1
        else:
            expected[name] = value
    assert view(farm) == expected
    assert result.new_state is cell.to
    assert (result.accepted is not None) is cell.accepted
    assert len(farm.buffer) == buffered + cell.accepted
    # whatever happened, the CLCW reports it
    clcw = farm.clcw()
    assert (clcw.report_value, clcw.retransmit, clcw.wait, clcw.lockout) == (
        farm.vr,
        farm.retransmit,
        farm.wait,
        farm.lockout,
    )
    assert clcw.farm_b_counter == farm.farm_b_counter % 4


@pytest.mark.parametrize(
    "frame",
    [None, bc(b"\x07"), bc(b"\x82\x01\x00"), TcFrame(SCID, VC + 1, b"x", TcFrameType.AD, VR0, 0)],
    ids=["failed validation", "unknown control command", "bad Set V(R)", "another VC"],
)
def test_invalid_frames_are_e9_and_change_nothing(frame):
    farm = farm_in(S1)
    before = view(farm)
    assert farm.receive(frame).event is E.E9
    assert view(farm) == before and not farm.buffer


# -- another table -------------------------------------------------------------------------


def test_a_farm_runs_the_table_it_is_given():
    """A table that discards everything in every state: nothing is accepted, no flag
    moves, and the counters say so (the cells below are the test's own)."""
    deaf = {event: (TableCell(),) * 3 for event in E}
    farm = Farm(VC, W, table=deaf)
    for frame in (ad(0), ad(1), ad(100), bd(), bc(Unlock().pack()), bc(SetVr(9).pack())):
        result = farm.receive(frame)
        assert result.accepted is None and result.new_state is S1
    assert view(farm) == view(Farm(VC, W)) and not farm.buffer
    assert farm.stats["discarded"] == 6 and farm.stats["E5"] == 1


def test_a_frame_that_reaches_a_not_applicable_cell_is_discarded_and_counted():
    """A cell the table marks "n/a" (the event cannot occur in that state) still has an
    outcome if a frame reaches it: discarded, and counted with the discards."""
    never = {event: (TableCell(kind="n/a"),) * 3 for event in E}
    farm = Farm(VC, W, table=never)
    for frame in (ad(0), bd(), bc(Unlock().pack())):
        assert farm.receive(frame).accepted is None
    assert not farm.buffer
    assert farm.stats["discarded"] == 3 and "accepted" not in farm.stats
    assert "control_commands" not in farm.stats


@pytest.mark.parametrize(
    "table",
    [
        {},
        {event: (TableCell(),) * 2 for event in E},
        {event: (TableCell(("explode",)),) * 3 for event in E},
        {event: (TableCell(("set:vr",)),) * 3 for event in E},
        {event: (TableCell(("advance_vr:twice",)),) * 3 for event in E},
        {event: (TableCell(kind="maybe"),) * 3 for event in E},
    ],
    ids=["no rows", "two cells", "unknown step", "not a flag", "stray argument", "unknown kind"],
)
def test_a_malformed_table_is_refused_when_the_farm_is_built(table):
    with pytest.raises(ConfigError, match="table"):
        Farm(VC, W, table=table)


# -- the windows ------------------------------------------------------------------------------


def reference_event(ns: int, vr: int, w: int) -> FarmEvent:
    """The window rules of 232.1-B-2 §6.1.8, by brute force over the sequence circle."""
    pw = nw = w // 2
    if ns == vr:
        return E.E1
    if ns in {(vr + k) % 256 for k in range(1, pw)}:
        return E.E3
    if ns in {(vr - k) % 256 for k in range(1, nw + 1)}:
        return E.E4
    return E.E5


@given(st.integers(0, 255), st.integers(0, 255), st.integers(1, 127).map(lambda k: 2 * k))
def test_window_classification_matches_the_rules(ns, vr, w):
    farm = Farm(VC, w)
    farm.vr = vr
    assert farm.classify(ad(ns))[0] is reference_event(ns, vr, w)


def test_window_edges():
    farm = Farm(VC, 16)
    farm.vr = 4
    assert farm.classify(ad(4 + 7))[0] is E.E3  # V(R) + PW - 1
    assert farm.classify(ad(4 + 8))[0] is E.E5  # V(R) + PW
    assert farm.classify(ad(4 - 8))[0] is E.E4  # V(R) - NW, across the wrap
    assert farm.classify(ad(4 - 9))[0] is E.E5  # V(R) - NW - 1


@pytest.mark.parametrize("w", [0, 1, 3, 256, 300, -2])
def test_window_width_must_be_even_2_to_254(w):
    with pytest.raises(ConfigError):
        Farm(VC, w)


# -- lockout, unlock, wait ------------------------------------------------------------------


def test_a_frame_outside_both_windows_locks_out_and_the_clcw_says_so():
    farm = Farm(VC, 16)
    farm.receive(ad(0))
    assert farm.receive(ad(100)).event is E.E5
    assert farm.state is S3
    clcw = Clcw.unpack(farm.clcw().pack())
    assert clcw.lockout and clcw.report_value == 1 and clcw.vcid == VC
    # locked out: even the expected frame is discarded, and Set V(R) is not executed
    assert farm.receive(ad(1)).accepted is None
    farm.receive(bc(SetVr(50).pack()))
    assert farm.vr == 1 and farm.state is S3
    # a BC Unlock recovers; the next frame in sequence is accepted
    assert farm.receive(bc(Unlock().pack())).new_state is S1
    assert not farm.clcw().lockout
    assert farm.receive(ad(1)).accepted is not None
    assert farm.vr == 2


def test_wait_flag_until_the_buffer_is_released():
    farm = Farm(VC, 16, buffer_frames=1)
    farm.receive(ad(0))
    assert farm.receive(ad(1)).event is E.E2
    assert farm.clcw().wait and farm.clcw().retransmit and farm.state is S2
    assert [f.seq for f in farm.take()] == [0]
    assert farm.receive(ad(1)).event is E.E2  # space freed, but not yet signalled
    farm.buffer_release()
    assert farm.state is S1 and not farm.clcw().wait
    assert farm.receive(ad(1)).event is E.E1
    assert not farm.clcw().retransmit


def test_bd_frames_are_accepted_even_with_a_full_buffer_and_counted():
    farm = Farm(VC, 16, buffer_frames=1)
    farm.receive(ad(0))
    for i in range(5):
        assert farm.receive(bd()).accepted is not None
        assert farm.clcw().farm_b_counter == (i + 1) % 4
    assert len(farm.take()) == 6


def test_the_clcw_carries_status_and_physical_flags():
    farm = Farm(63, 254, status=5)
    farm.no_rf_available = True
    farm.no_bit_lock = True
    clcw = farm.clcw()
    assert (clcw.vcid, clcw.status, clcw.no_rf_available, clcw.no_bit_lock) == (63, 5, True, True)


@given(st.lists(st.integers(0, 255), max_size=300))
def test_frames_are_accepted_only_in_sequence(seqs):
    """Whatever order frames arrive in, what is accepted is 0, 1, 2, ... (mod 256)."""
    farm = Farm(VC, 64)
    for ns in seqs:
        farm.receive(ad(ns))
        if farm.state is S3:
            farm.receive(bc(Unlock().pack()))
    accepted = [f.seq for f in farm.take()]
    assert accepted == [i % 256 for i in range(len(accepted))]


# -- configuration, counters, the wrap of V(R) (issue 21) ---------------------------------


@pytest.mark.parametrize("buffer_frames", [0, -1])
def test_buffer_frames_below_one_is_refused(buffer_frames):
    with pytest.raises(ConfigError, match="buffer_frames"):
        Farm(VC, 16, buffer_frames=buffer_frames)
    assert Farm(VC, 16, buffer_frames=1).buffer_frames == 1
    assert Farm(VC, 2).window_width == 2 and Farm(VC, 254).window_width == 254


def test_the_counters_the_reports_read():
    farm = Farm(VC, 16, buffer_frames=1)
    farm.receive(ad(0))  # accepted
    farm.receive(bd())  # accepted (BD)
    farm.receive(ad(1))  # E2: no buffer space, discarded
    farm.receive(ad(0))  # E4 (negative window): discarded
    farm.receive(None)  # E9: discarded
    farm.receive(bc(Unlock().pack()))  # a control command
    farm.receive(bc(SetVr(1).pack()))  # another
    farm.buffer_release()  # a signal: no frame, no counter
    assert farm.stats == Counter(
        accepted=2, discarded=3, control_commands=2, E1=1, E6=1, E2=1, E4=1, E9=1, E7=1,
        E8=1, E10=1,
    )  # fmt: skip


def test_vr_wraps_from_255_to_0_and_the_windows_follow():
    farm = Farm(VC, 16)
    farm.receive(bc(SetVr(254).pack()))
    for ns in (254, 255, 0, 1):
        assert farm.receive(ad(ns)).event is E.E1
    assert farm.vr == 2
    assert [f.seq for f in farm.take()] == [254, 255, 0, 1]
    assert Clcw.unpack(farm.clcw().pack()).report_value == 2
    # the windows reach back and forth across the wrap
    farm.receive(bc(SetVr(255).pack()))
    assert farm.classify(ad(0))[0] is E.E3
    assert farm.classify(ad(255 + 7))[0] is E.E3  # V(R) + PW - 1 = 6
    assert farm.classify(ad(255 + 8))[0] is E.E5
    assert farm.receive(ad(255)).event is E.E1 and farm.vr == 0
    assert farm.classify(ad(255))[0] is E.E4
    assert farm.classify(ad(0 - 8))[0] is E.E4
    assert farm.classify(ad(0 - 9))[0] is E.E5


@pytest.mark.parametrize("width", [0, 1, 3, 255, 256])
def test_a_window_width_outside_the_even_2_to_254_is_refused_saying_so(width):
    with pytest.raises(ConfigError, match=f"must be even, 2..254, got {width}"):
        Farm(VC, width)


def test_the_status_field_is_0_by_default_and_the_clcw_limits_are_checked():
    assert Farm(VC, 16).status == 0 and Farm(VC, 16).clcw().status == 0
    assert Farm(VC, 16, status=7).clcw().status == 7
    for bad in (dict(vcid=64), dict(vcid=VC, status=8)):
        with pytest.raises(EncodeError):
            Farm(window_width=16, **bad)


def test_taking_the_buffer_frees_exactly_its_frames():
    farm = Farm(VC, 16, buffer_frames=2)
    for seq in range(2):
        assert farm.receive(ad(seq)).event is E.E1
    assert len(farm.take()) == 2
    for seq in range(2, 4):
        assert farm.receive(ad(seq)).event is E.E1
    assert farm.receive(ad(4)).event is E.E2 and not farm.buffer_space
