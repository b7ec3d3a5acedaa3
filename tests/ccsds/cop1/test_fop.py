"""FOP-1 (232.1-B-2 §5): every cell of its state table (table 5-1 with the E101..E104
of Technical Corrigendum 1), then the directives' refusals, T1, the window K.

The expected outcome of each (event, state) cell is written below from the
standard, independently of the implementation's table: a name that a check
function turns into assertions on the actions FOP-1 returns and on its variables.
Each cell is reached through ordinary inputs where the state allows the event;
where it cannot arise (noted "n/a", or an event the state's invariants exclude),
the event is forced into the machine and the cell's outcome checked all the same.
"""

from collections import Counter, deque

import pytest

from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.fop import (
    TABLE,
    Action,
    Alert,
    AlertCode,
    CancelTimer,
    Directive,
    DirectiveResponse,
    Fop,
    FopConfig,
    FopEvent,
    FopState,
    Response,
    StartTimer,
    Suspend,
    TransferResponse,
    Transition,
    Transmit,
    _Input,
)
from linkstack.ccsds.tc import MAX_SCID, MAX_VCID, TcFrame, TcFrameType
from linkstack.errors import ConfigError, EncodeError, FieldError

SCID, VC = 7, 3
CFG = FopConfig(SCID, VC, window_width=8, t1_initial_s=2.0, transmission_limit=5, timeout_type=1)
T0 = 100.0
S1, S2, S3, S4, S5, S6 = FopState
E = FopEvent
D = Directive
AD, BC, BD = TcFrameType.AD, TcFrameType.BC, TcFrameType.BD


def fdu(i: int) -> TcFrame:
    return TcFrame(SCID, VC, bytes([i]) * 8, AD, 0, 0)


def bd_frame() -> TcFrame:
    return TcFrame(SCID, VC, b"bd", BD, 0, 0)


def clcw(nr: int, **flags) -> Clcw:
    return Clcw(VC, nr, **flags)


def lower(fop: Fop, actions: list[Action], accept: bool = True) -> list[Action]:
    """Play the lower procedures: answer each transmit request at once (accept or
    not); return every action, those caused by the answers included, in order."""
    out: list[Action] = []
    todo = deque(actions)
    while todo:
        action = todo.popleft()
        out.append(action)
        if isinstance(action, Transmit) and accept:
            todo.extend(fop.transmit_accepted(action.frame.frame_type, T0))
    return out


def fire_timer(fop: Fop) -> list[Action]:
    assert fop.timer_expiry_t_s is not None
    return lower(fop, fop.timer_expired(fop.timer_expiry_t_s))


# -- getting FOP-1 into each state ------------------------------------------------------------


def active(n: int = 3) -> Fop:
    """S1 with frames N(S) = 0..n-1 outstanding (V(S) = n, NN(R) = 0)."""
    fop = Fop(CFG)
    lower(fop, fop.directive(D.INITIATE_AD_WITHOUT_CLCW, T0))
    for i in range(n):
        lower(fop, fop.request_ad(fdu(i), T0, tag=i))
    assert (fop.state, fop.vs, fop.nnr, len(fop.sent_queue)) == (S1, n, 0, n)
    return fop


def with_count(fop: Fop, count: int) -> Fop:
    """Raise the transmission count by timer expiries in S1 (each retransmits)."""
    while fop.transmission_count < count:
        fire_timer(fop)
    return fop


def in_state(state: FopState, count: int = 1) -> Fop:
    if state is S1:
        return with_count(active(), count)
    if state is S2:  # E10 from S1: retransmission without wait (count + 1)
        fop = with_count(active(), count - 1) if count > 1 else active()
        lower(fop, fop.clcw(clcw(0, retransmit=True), T0))
    elif state is S3:  # E11 from S1: retransmission with wait
        fop = with_count(active(), count)
        lower(fop, fop.clcw(clcw(0, retransmit=True, wait=True), T0))
    elif state is S4:
        fop = Fop(CFG)
        fop.directive(D.INITIATE_AD_WITH_CLCW, T0)
    elif state is S5:
        fop = Fop(CFG)
        lower(fop, fop.directive(D.INITIATE_AD_WITH_UNLOCK, T0))
    else:
        fop = Fop(CFG)
    assert fop.state is state
    return fop


def suspended(count: int = 1, limit_after: int | None = None) -> Fop:
    """S6 entered by a suspension from S1 (E18) with three frames still outstanding."""
    fop = with_count(active(), count)
    fop.directive(D.SET_TRANSMISSION_LIMIT, T0, count)
    actions = fire_timer(fop)
    assert any(isinstance(a, Suspend) for a in actions) and fop.state is S6
    if limit_after is not None:
        fop.directive(D.SET_TRANSMISSION_LIMIT, T0, limit_after)
    return fop


# Each CLCW event: the CLCW (from V(S) and NN(R) now), and how to reach S6 with frames
# outstanding (the arguments of suspended(); None: a fresh S6, where NN(R) = V(S)).
CLCW_CASES = {
    E.E1: (lambda f: clcw(f.vs), None),
    E.E2: (lambda f: clcw(f.vs), {}),
    E.E3: (lambda f: clcw(f.vs, wait=True), {}),
    E.E4: (lambda f: clcw(f.vs, retransmit=True), {}),
    E.E5: (lambda f: clcw(f.nnr), {}),
    E.E6: (lambda f: clcw(f.nnr + 1), {}),
    E.E7: (lambda f: clcw(f.nnr + 1, wait=True), {}),
    E.E101: (lambda f: clcw(f.nnr + 1, retransmit=True), {"count": 1}),
    E.E102: (lambda f: clcw(f.nnr, retransmit=True), {"count": 1}),
    E.E8: (lambda f: clcw(f.nnr + 1, retransmit=True), {"count": 1, "limit_after": 5}),
    E.E9: (lambda f: clcw(f.nnr + 1, retransmit=True, wait=True), {"count": 1, "limit_after": 5}),
    E.E10: (lambda f: clcw(f.nnr, retransmit=True), {"count": 1, "limit_after": 5}),
    E.E11: (lambda f: clcw(f.nnr, retransmit=True, wait=True), {"count": 1, "limit_after": 5}),
    E.E12: (lambda f: clcw(f.nnr, retransmit=True), {"count": 2}),
    E.E103: (lambda f: clcw(f.nnr, retransmit=True, wait=True), {"count": 2}),
    E.E13: (lambda f: clcw((f.vs + 100) % 256), {}),
    E.E14: (lambda f: clcw(f.nnr, lockout=True), {}),
}
INVALID_CLCW = bytes([0x21, VC << 2, 0, 0])  # version 01
COUNT_AT_LIMIT = {E.E12: 2, E.E103: 2}
LIMIT_ONE = {E.E101, E.E102}


RESUMES = {E.E31: S1, E.E32: S2, E.E33: S3, E.E34: S4}


def suspend_now(fop: Fop) -> Fop:
    """Suspend (timeout type 1) by a T1 expiry with the limit reached (E18, or E104 in S4)."""
    state = fop.state
    if state is not S4:
        fop.directive(D.SET_TRANSMISSION_LIMIT, T0, fop.transmission_count)
    (suspend,) = of(fire_timer(fop), Suspend)
    assert suspend.suspend_state == state and fop.state is S6
    return fop


def suspended_from(state: FopState) -> Fop:
    return suspend_now(in_state(state))


def arrange(event: FopEvent, state: FopState) -> Fop:
    """A FOP-1 in ``state`` from which ``event`` can arise through ordinary inputs."""
    if event in CLCW_CASES and state is S6:
        kwargs = CLCW_CASES[event][1]
        return Fop(CFG) if kwargs is None else suspended(**kwargs)
    if event is E.E1 and state is S1:
        return active(0)
    if event in COUNT_AT_LIMIT and state in (S1, S2, S3):
        fop = in_state(state, count=2)
        fop.directive(D.SET_TRANSMISSION_LIMIT, T0, 2)
        return fop
    if event in RESUMES and state is S6:
        return suspended_from(RESUMES[event])
    if event is E.E20 and state is S6:  # suspended in S3 with an FDU in the Wait Queue
        fop = in_state(S3)
        fop.request_ad(fdu(8), T0, tag="first")
        return suspend_now(fop)
    fop = in_state(state)
    if event in (E.E26, E.E28):  # a BC frame still with the lower procedures
        fop.bc_out_ready = False
    if event in LIMIT_ONE:
        fop.directive(D.SET_TRANSMISSION_LIMIT, T0, 1)
    if event in (E.E16, E.E17):
        fop.directive(D.SET_TIMEOUT_TYPE, T0, 0)
    if event in (E.E17, E.E18):
        fop.directive(D.SET_TRANSMISSION_LIMIT, T0, fop.transmission_count)
    return fop


def trigger(event: FopEvent, fop: Fop) -> list[Action] | None:
    """The input that is ``event`` for this FOP-1 (None: it cannot arise here)."""
    if event in CLCW_CASES:
        got = CLCW_CASES[event][0](fop)
        return fop.clcw(got, T0) if fop.classify_clcw(got) is event else None
    if event is E.E15:
        return fop.clcw(INVALID_CLCW, T0)
    if event in (E.E16, E.E104, E.E17, E.E18):
        return None if fop.timer_expiry_t_s is None else fop.timer_expired(fop.timer_expiry_t_s)
    if event is E.E19:
        return fop.request_ad(fdu(9), T0, tag="new")
    if event is E.E20:  # fill the Wait Queue first, holding the lower procedures' answer
        if fop.wait_queue is None:
            if fop.state not in (S1, S2, S3):
                return None
            if fop.state in (S1, S2):
                fop.ad_out_ready = False
            fop.request_ad(fdu(8), T0, tag="first")
        return fop.request_ad(fdu(9), T0, tag="new")
    if event is E.E21:
        return fop.request_bd(bd_frame(), T0, tag="bd")
    if event is E.E22:
        fop.request_bd(bd_frame(), T0, tag="bd")  # not answered: BD_Out stays not ready
        return fop.request_bd(bd_frame(), T0, tag="bd2")
    if event in DIRECTIVES:
        directive, value, needs = DIRECTIVES[event]
        if needs and not needs(fop):
            return None
        return fop.directive(directive, T0, value, tag="d")
    if event in (E.E41, E.E42, E.E43, E.E44, E.E45, E.E46):
        frame_type = {E.E41: AD, E.E42: AD, E.E43: BC, E.E44: BC, E.E45: BD, E.E46: BD}[event]
        if frame_type is BD:
            fop.request_bd(bd_frame(), T0, tag="bd")  # a BD frame with the lower procedures
        if event is E.E41:
            fop.ad_out_ready = False
        if event is E.E43:
            fop.bc_out_ready = False
        accepted = event in (E.E41, E.E43, E.E45)
        method = fop.transmit_accepted if accepted else fop.transmit_rejected
        return method(frame_type, T0)
    raise AssertionError(event)


DIRECTIVES = {
    E.E23: (D.INITIATE_AD_WITHOUT_CLCW, None, None),
    E.E24: (D.INITIATE_AD_WITH_CLCW, None, None),
    E.E25: (D.INITIATE_AD_WITH_UNLOCK, None, lambda f: f.bc_out_ready),
    E.E26: (D.INITIATE_AD_WITH_UNLOCK, None, lambda f: not f.bc_out_ready),
    E.E27: (D.INITIATE_AD_WITH_SET_VR, 200, lambda f: f.bc_out_ready),
    E.E28: (D.INITIATE_AD_WITH_SET_VR, 200, lambda f: not f.bc_out_ready),
    E.E29: (D.TERMINATE_AD, None, None),
    E.E30: (D.RESUME_AD, None, lambda f: f.suspend_state == 0),
    E.E31: (D.RESUME_AD, None, lambda f: f.suspend_state == 1),
    E.E32: (D.RESUME_AD, None, lambda f: f.suspend_state == 2),
    E.E33: (D.RESUME_AD, None, lambda f: f.suspend_state == 3),
    E.E34: (D.RESUME_AD, None, lambda f: f.suspend_state == 4),
    E.E35: (D.SET_VS, 77, None),
    E.E36: (D.SET_SLIDING_WINDOW, 5, None),
    E.E37: (D.SET_T1_INITIAL, 7.5, None),
    E.E38: (D.SET_TRANSMISSION_LIMIT, 9, None),
    E.E39: (D.SET_TIMEOUT_TYPE, 0, None),
    E.E40: ("set the moon", None, None),
}


def force(event: FopEvent, fop: Fop) -> list[Action]:
    """Put an event into FOP-1 that its state's invariants keep from arising."""
    inp = _Input(T0, clcw=clcw(fop.vs))
    if event in DIRECTIVES:
        inp.directive, inp.value = DIRECTIVES[event][0], DIRECTIVES[event][1]
    elif event in (E.E19, E.E20):
        inp.frame = fdu(9)
    return fop._apply(event, inp)


# -- the expected outcomes (232.1-B-2 table 5-1) ---------------------------------------------
# Names of the checks below; "alert X": alert X and go to S6 with both queues purged.

REJ, IGN, NA = "reject", "ignore", "n/a"
A = {code: f"alert {code}" for code in ("SYNCH", "CLCW", "NNR", "LOCKOUT", "LIMIT", "T1", "LLIF")}
IN_S6_ONLY = (REJ, REJ, REJ, REJ, REJ)

EXPECTED = {
    E.E1: (IGN, A["SYNCH"], A["SYNCH"], "confirm initiation", "release BC and confirm", IGN),
    E.E2: ("ack all", "ack all", "ack all", NA, NA, IGN),
    E.E3: (*(A["CLCW"],) * 5, IGN),
    E.E4: (*(A["SYNCH"],) * 4, IGN, IGN),
    E.E5: (IGN, A["SYNCH"], A["SYNCH"], NA, NA, IGN),
    E.E6: ("ack some", "ack some", "ack some", NA, NA, IGN),
    E.E7: (A["CLCW"], A["CLCW"], A["CLCW"], NA, NA, IGN),
    E.E101: ("ack then alert LIMIT",) * 3 + (NA, NA, IGN),
    E.E102: (A["LIMIT"],) * 3 + (NA, NA, IGN),
    E.E8: ("ack and retransmit",) * 3 + (NA, NA, IGN),
    E.E9: ("ack and wait",) * 3 + (NA, NA, IGN),
    E.E10: ("retransmit, to S2", IGN, "retransmit, to S2", NA, NA, IGN),
    E.E11: ("to S3", "to S3", IGN, NA, NA, IGN),
    E.E12: ("to S2", IGN, "to S2", NA, NA, IGN),
    E.E103: ("to S3", "to S3", IGN, NA, NA, IGN),
    E.E13: (*(A["NNR"],) * 4, IGN, IGN),
    E.E14: (*(A["LOCKOUT"],) * 4, IGN, IGN),
    E.E15: (*(A["CLCW"],) * 5, IGN),
    E.E16: ("retransmit", "retransmit", IGN, A["T1"], "retransmit BC", NA),
    E.E104: ("retransmit", "retransmit", IGN, "suspend", "retransmit BC", NA),
    E.E17: (*(A["T1"],) * 5, NA),
    E.E18: ("suspend",) * 4 + (A["T1"], NA),
    E.E19: ("queue and send", "queue and send", "queue", REJ, REJ, REJ),
    E.E20: (REJ,) * 6,
    E.E21: ("send BD",) * 6,
    E.E22: (REJ,) * 6,
    E.E23: (*IN_S6_ONLY, "initiate, to S1"),
    E.E24: (*IN_S6_ONLY, "initiate, to S4"),
    E.E25: (*IN_S6_ONLY, "initiate with Unlock"),
    E.E26: (REJ,) * 6,
    E.E27: (*IN_S6_ONLY, "initiate with Set V(R)"),
    E.E28: (REJ,) * 6,
    E.E29: ("terminate",) * 5 + ("terminate in S6",),
    E.E30: (REJ,) * 6,
    E.E31: (*IN_S6_ONLY, "resume to S1"),
    E.E32: (*IN_S6_ONLY, "resume to S2"),
    E.E33: (*IN_S6_ONLY, "resume to S3"),
    E.E34: (*IN_S6_ONLY, "resume to S4"),
    E.E35: (*IN_S6_ONLY, "set V(S)"),
    E.E36: ("set parameter",) * 6,
    E.E37: ("set parameter",) * 6,
    E.E38: ("set parameter",) * 6,
    E.E39: ("set parameter",) * 6,
    E.E40: (REJ,) * 6,
    E.E41: ("AD ready, look", "AD ready, look") + ("AD ready",) * 4,
    E.E42: (A["LLIF"],) * 6,
    E.E43: ("BC ready",) * 4 + ("BC ready, look", "BC ready"),
    E.E44: (A["LLIF"],) * 6,
    E.E45: ("BD ready, confirm",) * 6,
    E.E46: ("BD negative confirm, alert LLIF",) * 6,
}


def snapshot(fop: Fop) -> tuple:
    return (
        fop.state,
        fop.vs,
        fop.nnr,
        fop.transmission_count,
        fop.sent_queue,
        fop.wait_queue,
        fop.suspend_state,
        fop.ad_out_ready,
        fop.bc_out_ready,
        fop.bd_out_ready,
        fop.timer_expiry_t_s,
        (fop.window_width, fop.t1_initial_s, fop.transmission_limit, fop.timeout_type),
    )


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def responses(actions, response):
    return [a for a in actions if getattr(a, "response", None) is response]


def check_alert(code, fop, actions, before):
    (alert,) = of(actions, Alert)
    assert alert.code is AlertCode[code]
    assert fop.state is S6 and not fop.sent_queue and fop.wait_queue is None
    assert fop.timer_expiry_t_s is None and of(actions, CancelTimer)
    purged = before[4]
    negative = of(responses(actions, Response.NEGATIVE_CONFIRM), TransferResponse)
    assert [r.seq for r in negative if r.frame_type is AD] == [
        f.seq for f in purged if f.frame_type is AD
    ]


TIMER_EVENTS = (E.E16, E.E104, E.E17, E.E18)


def check(name: str, fop: Fop, actions: list[Action], before: tuple, state: FopState) -> None:
    old_vs, old_count, old_sent = before[1], before[3], before[4]
    transmits = of(actions, Transmit)
    if name == IGN:
        assert actions == [Transition(actions[0].event, state, state, "ignore")]
        assert snapshot(fop) == before
    elif name == REJ:
        rejects = responses(actions, Response.REJECT)
        assert len(rejects) == 1 and rejects[0].reason
        assert not transmits and fop.state is state
    elif name.startswith("alert "):
        check_alert(name.split()[1], fop, actions, before)
    elif name == "ack all":
        assert [r.seq for r in responses(actions, Response.POSITIVE_CONFIRM)] == [0, 1, 2]
        assert of(actions, CancelTimer) and fop.timer_expiry_t_s is None
        assert (fop.state, fop.nnr, fop.transmission_count, fop.sent_queue) == (S1, 3, 1, ())
    elif name == "ack some":
        assert [r.seq for r in responses(actions, Response.POSITIVE_CONFIRM)] == [0]
        assert not of(actions, CancelTimer)
        assert (fop.state, fop.nnr, fop.transmission_count, len(fop.sent_queue)) == (S1, 1, 1, 2)
    elif name == "ack then alert LIMIT":
        assert [r.seq for r in responses(actions, Response.POSITIVE_CONFIRM)] == [0]
        assert [r.seq for r in responses(actions, Response.NEGATIVE_CONFIRM)] == [1, 2]
        assert of(actions, Alert)[0].code is AlertCode.LIMIT and fop.state is S6
    elif name == "ack and retransmit":
        assert [r.seq for r in responses(actions, Response.POSITIVE_CONFIRM)] == [0]
        assert fop.state is S2 and fop.nnr == 1 and fop.transmission_count == 2
        assert of(actions, StartTimer)
        assert [(t.frame.seq, t.retransmission) for t in transmits] == [(1, True)]
    elif name == "ack and wait":
        assert [r.seq for r in responses(actions, Response.POSITIVE_CONFIRM)] == [0]
        assert fop.state is S3 and fop.nnr == 1 and not transmits
    elif name in ("retransmit, to S2", "retransmit"):
        assert fop.state is (S2 if name.endswith("S2") else state)
        assert fop.transmission_count == old_count + 1 and of(actions, StartTimer)
        assert fop.timer_expiry_t_s == of(actions, StartTimer)[0].expiry_t_s
        if before[7]:  # AD_Out ready: the first outstanding frame goes again now
            assert [(t.frame.seq, t.retransmission) for t in transmits] == [(fop.nnr, True)]
    elif name.startswith("to S"):
        assert actions == [Transition(actions[0].event, state, FopState(int(name[-1])), "do")]
        assert snapshot(fop)[1:] == before[1:]
    elif name == "confirm initiation":
        (confirm,) = responses(actions, Response.POSITIVE_CONFIRM)
        assert confirm.directive is D.INITIATE_AD_WITH_CLCW
        assert of(actions, CancelTimer) and fop.state is S1
    elif name == "release BC and confirm":
        (confirm,) = responses(actions, Response.POSITIVE_CONFIRM)
        assert confirm.directive is D.INITIATE_AD_WITH_UNLOCK
        assert of(actions, CancelTimer) and fop.state is S1 and fop.sent_queue == ()
    elif name == "retransmit BC":
        assert fop.transmission_count == old_count + 1 and of(actions, StartTimer)
        assert [(t.frame.frame_type, t.retransmission) for t in transmits] == [(BC, True)]
        assert fop.state is S5
    elif name == "suspend":
        (suspend,) = of(actions, Suspend)
        assert suspend.suspend_state == state and fop.suspend_state == state
        assert fop.state is S6 and fop.sent_queue == old_sent and not of(actions, Alert)
    elif name == "queue and send":
        (accept,) = responses(actions, Response.ACCEPT)
        assert accept.tag == "new"
        assert transmits[-1].frame.seq == old_vs and not transmits[-1].retransmission
        assert fop.vs == (old_vs + 1) % 256 and fop.wait_queue is None
    elif name == "queue":
        assert not transmits and not responses(actions, Response.ACCEPT)
        assert fop.wait_queue == fdu(9)
    elif name == "send BD":
        (accept,) = responses(actions, Response.ACCEPT)
        assert accept.frame_type is BD and [t.frame for t in transmits] == [bd_frame()]
        assert not fop.bd_out_ready and fop.state is state
    elif name.startswith("initiate"):
        assert responses(actions, Response.ACCEPT)
        target = {"S1": S1, "S4": S4}.get(name[-2:], S5)
        assert fop.state is target and fop.suspend_state == 0 and fop.transmission_count == 1
        assert not fop.sent_queue or fop.sent_queue[0].frame_type is BC
        assert bool(responses(actions, Response.POSITIVE_CONFIRM)) == (target is S1)
        if target is S4:
            assert of(actions, StartTimer) and not transmits
        if target is S5:
            (bc,) = transmits
            expected = b"\x00" if "Unlock" in name else b"\x82\x00\xc8"
            assert bc.frame.frame_type is BC and bc.frame.data == expected
            assert of(actions, StartTimer)
        if "Set V(R)" in name:
            assert fop.vs == fop.nnr == 200
    elif name == "terminate":
        assert responses(actions, Response.ACCEPT) and responses(actions, Response.POSITIVE_CONFIRM)
        check_alert("TERM", fop, actions, before)
    elif name == "terminate in S6":
        assert [r.response for r in of(actions, DirectiveResponse)] == [
            Response.ACCEPT,
            Response.POSITIVE_CONFIRM,
        ]
        assert fop.state is S6 and not of(actions, Alert)
    elif name.startswith("resume to S"):
        assert fop.state is FopState(int(name[-1])) and fop.suspend_state == 0
        assert of(actions, StartTimer) and responses(actions, Response.POSITIVE_CONFIRM)
        assert fop.sent_queue == old_sent
    elif name == "set V(S)":
        assert responses(actions, Response.POSITIVE_CONFIRM) and fop.vs == fop.nnr == 77
    elif name == "set parameter":
        assert responses(actions, Response.POSITIVE_CONFIRM)
        assert (fop.window_width, fop.t1_initial_s, fop.transmission_limit, fop.timeout_type) in (
            (5, *before[11][1:]),
            (before[11][0], 7.5, *before[11][2:]),
            (*before[11][:2], 9, before[11][3]),
            (*before[11][:3], 0),
        )
    elif name == "AD ready, look":
        assert fop.ad_out_ready or transmits  # a frame waiting for the link went out
    elif name == "AD ready":
        assert fop.ad_out_ready and not transmits
    elif name == "BC ready, look":
        assert fop.bc_out_ready or transmits
    elif name == "BC ready":
        assert fop.bc_out_ready and not transmits
    elif name == "BD ready, confirm":
        (confirm,) = responses(actions, Response.POSITIVE_CONFIRM)
        assert confirm.frame_type is BD and fop.bd_out_ready and fop.state is state
    elif name == "BD negative confirm, alert LLIF":
        negative = of(responses(actions, Response.NEGATIVE_CONFIRM), TransferResponse)
        assert negative[0].frame_type is BD
        assert of(actions, Alert)[0].code is AlertCode.LLIF and fop.state is S6
    else:
        raise AssertionError(f"no check for {name!r}")


CELLS = [(event, state) for event in E for state in FopState]


def test_the_expected_table_covers_every_event():
    assert set(EXPECTED) == set(E) and all(len(row) == 6 for row in EXPECTED.values())


def test_the_state_table_has_one_cell_per_state_for_every_event():
    """The cells are looked up by state number: a row one cell longer or shorter
    would be a table out of step with the standard's six states."""
    assert set(TABLE) == set(E)
    assert {event: len(row) for event, row in TABLE.items()} == {event: 6 for event in E}


@pytest.mark.parametrize(("event", "state"), CELLS, ids=[f"{e.name}/S{s}" for e, s in CELLS])
def test_state_table_cell(event, state):
    expected = EXPECTED[event][state - 1]
    fop = arrange(event, state)
    before = snapshot(fop)
    counted = Counter(fop.stats)
    actions = trigger(event, fop)
    if event in TIMER_EVENTS:  # an expiry consumes the timer, whatever the cell does
        before = (*before[:10], None, before[11])
    if actions is None:  # this state's invariants keep the event from arising: force it
        if expected == NA:
            assert state in (S4, S5, S6)  # only where NN(R) = V(S) or the timer is off
        before = snapshot(fop)
        counted = Counter(fop.stats)
        actions = force(event, fop)
    # the counters the status report reads: one per event, one per rejection
    assert fop.stats[event.name] - counted[event.name] == 1
    rejected = fop.stats["rejected"] - counted["rejected"]
    assert rejected == (1 if expected == REJ else rejected)
    assert rejected in (0, 1)
    not_applicable = fop.stats["not_applicable"] - counted["not_applicable"]
    assert not_applicable == (1 if expected == NA else 0)  # counted in n/a cells only
    if expected == NA:
        assert actions == [Transition(event, state, state, "n/a")]
        assert snapshot(fop) == before
        if event in TIMER_EVENTS:  # no timer runs in S6: a late expiry is stale, no event
            assert fop.timer_expired(T0 + 1e6) == []
        return
    transition = actions[0]
    assert isinstance(transition, Transition)
    assert (transition.event, transition.old_state) == (event, state)
    if expected in (IGN, REJ):
        assert transition.kind == expected
    check(expected, fop, actions, before, state)


def test_not_applicable_cells_are_where_nn_r_equals_v_s():
    """The n/a CLCW cells of S4 and S5 need NN(R) <= N(R) < V(S): never there."""
    for state in (S4, S5):
        fop = in_state(state)
        assert fop.nnr == fop.vs
        for nr in range(256):
            for flags in ({}, {"retransmit": True}, {"wait": True}):
                event = fop.classify_clcw(clcw(nr, **flags))
                assert EXPECTED[event][state - 1] != NA, (nr, flags, event)


FORCED = {
    # S2 and S3 always have a frame outstanding, so N(R) = V(S) = NN(R) cannot happen
    (E.E1, S2),
    (E.E1, S3),
    # every way into S4 and S5 purges the Wait Queue
    (E.E20, S4),
    (E.E20, S5),
    # SS is 0 outside S6
    *((e, s) for e in RESUMES for s in (S1, S2, S3, S4, S5)),
    # NN(R) = V(S) in S4 and S5; no timer runs in S6
    *((e, s) for e in E for s in FopState if EXPECTED[e][s - 1] == NA),
}


def test_only_unreachable_cells_are_forced():
    forced = {(e, s) for e, s in CELLS if trigger(e, arrange(e, s)) is None}
    assert forced == FORCED


# -- directives refused, with the reason ------------------------------------------------------


def reason_of(actions):
    (reject,) = responses(actions, Response.REJECT)
    return reject.reason


@pytest.mark.parametrize(
    ("setup", "directive", "value", "words"),
    [
        (active, D.INITIATE_AD_WITHOUT_CLCW, None, ["not allowed in state S1", "allowed in S6"]),
        (active, D.INITIATE_AD_WITH_SET_VR, 4, ["not allowed in state S1"]),
        (active, D.RESUME_AD, None, ["not suspended"]),
        (active, D.SET_VS, 4, ["not allowed in state S1"]),
        (lambda: Fop(CFG), D.RESUME_AD, None, ["not suspended"]),
        (suspended, D.SET_VS, 4, ["suspended", "SS = 1"]),
        (lambda: Fop(CFG), D.SET_SLIDING_WINDOW, 0, ["window_width", "1..255"]),
        (lambda: Fop(CFG), D.SET_SLIDING_WINDOW, 256, ["window_width"]),
        (lambda: Fop(CFG), D.SET_SLIDING_WINDOW, True, ["window_width", "integer"]),
        (lambda: Fop(CFG), D.SET_SLIDING_WINDOW, 4.0, ["window_width", "integer"]),
        (lambda: Fop(CFG), D.SET_TRANSMISSION_LIMIT, True, ["transmission_limit"]),
        (lambda: Fop(CFG), D.SET_TIMEOUT_TYPE, 2, ["timeout_type", "0 or 1"]),
        (lambda: Fop(CFG), D.SET_T1_INITIAL, 0, ["t1_initial_s", "positive"]),
        (lambda: Fop(CFG), D.SET_T1_INITIAL, float("inf"), ["t1_initial_s"]),
        (lambda: Fop(CFG), D.SET_TRANSMISSION_LIMIT, 0, ["transmission_limit", ">= 1"]),
        (lambda: Fop(CFG), D.SET_VS, 300, ["vs"]),
        (lambda: Fop(CFG), D.SET_VS, -1, ["vs", "0..255"]),
        (lambda: Fop(CFG), D.INITIATE_AD_WITH_SET_VR, -1, ["vr", "0..255"]),
        (lambda: Fop(CFG), D.INITIATE_AD_WITH_SET_VR, None, ["vr"]),
        (lambda: Fop(CFG), "warp drive", None, ["unknown directive"]),
    ],
)
def test_directive_refused_with_a_clear_reason(setup, directive, value, words):
    fop = setup()
    before = snapshot(fop)
    actions = fop.directive(directive, T0, value, tag="t")
    reason = reason_of(actions)
    assert all(w in reason for w in words), reason
    assert snapshot(fop) == before


def test_fdu_request_refused_while_the_service_is_not_active():
    fop = Fop(CFG)
    assert "allowed in S1, S2, S3" in reason_of(fop.request_ad(fdu(0), T0))
    fop.directive(D.INITIATE_AD_WITH_CLCW, T0)
    assert "state S4" in reason_of(fop.request_ad(fdu(0), T0))


def test_a_wrong_frame_is_a_caller_error():
    fop = active(0)
    with pytest.raises(EncodeError):
        fop.request_ad(bd_frame(), T0)
    with pytest.raises(EncodeError):
        fop.request_ad(TcFrame(SCID, VC + 1, b"x", AD, 0, 0), T0)
    with pytest.raises(EncodeError):
        fop.request_bd(fdu(0), T0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_width": 0},
        {"transmission_limit": 0},
        {"timeout_type": 3},
        {"t1_initial_s": -1.0},
        {"window_width": True},  # a bool is not a count, though Python calls it an int
        {"window_width": 8.0},
    ],
)
def test_impossible_configuration(kwargs):
    with pytest.raises(ConfigError):
        FopConfig(**kwargs)


@pytest.mark.parametrize(
    ("name", "value"), [("scid", -1), ("scid", MAX_SCID + 1), ("vcid", -1), ("vcid", MAX_VCID + 1)]
)
def test_ids_that_do_not_fit_their_frame_header_fields_are_refused(name, value):
    with pytest.raises(FieldError) as refused:
        FopConfig(**{name: value})
    assert (refused.value.where, refused.value.field) == ("fop", name)


def test_the_highest_spacecraft_and_virtual_channel_ids_are_valid():
    cfg = FopConfig(MAX_SCID, MAX_VCID)
    assert (cfg.scid, cfg.vcid) == (MAX_SCID, MAX_VCID)


def test_a_default_fop_1_serves_scid_0_vc_0_with_k_16_t1_2_s_and_16_transmissions():
    """FopConfig()'s defaults, which Fop() takes: spacecraft 0, VC 0, a window of 16
    frames, T1 of 2 s, 16 transmissions of a frame (15 retransmissions), and timeout
    type 1: at the limit the AD service is suspended, not alerted."""
    fop = Fop()
    lower(fop, fop.directive(D.INITIATE_AD_WITHOUT_CLCW, T0))
    frames = [TcFrame(0, 0, bytes([i]), AD, 0, 0) for i in range(17)]
    sent = [lower(fop, fop.request_ad(f, T0, tag=i)) for i, f in enumerate(frames)]
    assert of(sent[0], StartTimer) == [StartTimer(T0 + 2.0)]
    assert [t.frame.seq for a in sent for t in of(a, Transmit)] == list(range(16))
    assert fop.wait_queue == frames[16]  # the window of 16 is full
    assert lower(fop, fop.clcw(Clcw(0, 0), T0))  # VC 0's CLCW is this FOP-1's (E5)
    assert fop.stats["E5"] == 1
    retransmissions = 0
    for _ in range(20):
        actions = fire_timer(fop)
        if not of(actions, Transmit):
            break
        retransmissions += 1
    assert retransmissions == 15
    assert of(actions, Suspend) == [Suspend(1)] and of(actions, Alert) == []
    assert fop.state is S6


def test_the_window_width_limits_are_inclusive():
    """K is 1..255 (an 8-bit count), both ends accepted, 256 refused."""
    assert FopConfig(SCID, VC, window_width=255).window_width == 255
    assert FopConfig(SCID, VC, window_width=1).window_width == 1
    with pytest.raises(ConfigError, match="window_width"):
        FopConfig(SCID, VC, window_width=256)


# -- T1, the window, CLCWs that are not for this FOP-1 ---------------------------------------


def test_timer_started_at_t_plus_t1_and_stale_expiries_ignored():
    fop = active(0)
    actions = lower(fop, fop.request_ad(fdu(0), 50.0))
    assert of(actions, StartTimer) == [StartTimer(52.0)]
    assert fop.timer_expired(51.0) == []  # before the expiry: stale
    lower(fop, fop.request_ad(fdu(1), 51.5))  # restarts T1 for 53.5
    assert fop.timer_expired(52.0) == []
    assert of(fop.timer_expired(53.5), Transition)[0].event is E.E104
    assert fop.timer_expired(53.5) == []  # an expiry fires once
    assert fop.stats["timer_stale"] == 3


def test_an_expiry_reported_up_to_a_nanosecond_early_still_fires():
    """The runtime hands back the time it armed, which float rounding may leave a
    hair early: up to 1 ns before T1's expiry it counts, earlier it is stale."""
    fop = active(1)
    armed = fop.timer_expiry_t_s
    assert fop.timer_expired(armed - 2e-9) == []
    assert of(fop.timer_expired(armed - 1e-9), Transition)[0].event is E.E104


def test_a_bd_answer_with_no_bd_frame_outstanding_is_confirmed_without_a_tag():
    """E45/E46 apply in every state: an answer of the lower procedures about a BD
    frame that this FOP-1 did not send (e.g. one sent before a restart) confirms
    with no tag, and does not break FOP-1."""
    fop = Fop(CFG)
    assert TransferResponse(Response.POSITIVE_CONFIRM, None, BD) in fop.transmit_accepted(BD, T0)
    (negative,) = of(Fop(CFG).transmit_rejected(BD, T0), TransferResponse)
    assert (negative.response, negative.tag) == (Response.NEGATIVE_CONFIRM, None)


def test_sliding_window_k_bounds_frames_in_flight():
    fop = Fop(FopConfig(SCID, VC, window_width=2))
    lower(fop, fop.directive(D.INITIATE_AD_WITHOUT_CLCW, T0))
    lower(fop, fop.request_ad(fdu(0), T0))
    lower(fop, fop.request_ad(fdu(1), T0))
    actions = lower(fop, fop.request_ad(fdu(2), T0, tag=2))
    assert not of(actions, Transmit) and fop.wait_queue == fdu(2)  # V(S) = NN(R) + K
    assert "Wait Queue" in reason_of(fop.request_ad(fdu(3), T0))  # flow control
    actions = lower(fop, fop.clcw(clcw(1), T0))  # frame 0 acknowledged: room for one
    assert [t.frame.seq for t in of(actions, Transmit)] == [2]
    assert responses(actions, Response.ACCEPT)[0].tag == 2


def test_clcws_for_another_channel_or_not_clcws_are_not_events():
    fop = active()
    before = snapshot(fop)
    assert fop.clcw(Clcw(VC + 1, 0, lockout=True), T0) == []
    assert fop.clcw(b"\x80\x00\x00\x00", T0) == []  # control word type 1: another report
    assert fop.clcw(bytes([0x21, (VC + 1) << 2, 0, 0]), T0) == []  # broken, another VC
    assert snapshot(fop) == before
    (alert,) = of(fop.clcw(Clcw(VC, 0, cop_in_effect=2), T0), Alert)
    assert alert.code is AlertCode.CLCW and "COP-1" in alert.reason


def test_ocfs_that_are_not_this_channels_clcws_are_counted_by_why():
    """An OCF holding another report type is "not_a_clcw", even where its bits would
    read as this VC; a CLCW of another VC is "clcw_other_vc", as octets (valid or
    not) or as a Clcw. None of them is an event."""
    fop = active()
    before, stats_before = snapshot(fop), Counter(fop.stats)
    assert fop.clcw(bytes([0x80, VC << 2, 0, 0]), T0) == []  # control word type 1
    assert fop.clcw(bytes([0x01, (VC + 1) << 2, 0, 0]), T0) == []
    assert fop.clcw(bytes([0x21, (VC + 1) << 2, 0, 0]), T0) == []  # version 01: broken
    assert fop.clcw(Clcw(VC + 1, 0), T0) == []
    assert snapshot(fop) == before
    assert fop.stats - stats_before == Counter(not_a_clcw=1, clcw_other_vc=3)


def test_an_ocf_of_the_wrong_length_is_an_invalid_clcw():
    fop = active()
    (alert,) = of(fop.clcw(bytes([0x01, VC << 2, 0, 0, 0]), T0), Alert)
    assert alert.code is AlertCode.CLCW and fop.state is S6


def test_a_clcw_reporting_n_r_equal_to_v_s_acknowledges_every_frame():
    """N(R) = V(S) is the top of NN(R)..V(S), valid (E1/E2), not E13; one past it is."""
    fop = active(3)
    assert of(fop.clcw(clcw(4), T0), Transition)[0].event is E.E13
    fop = active(3)
    actions = fop.clcw(clcw(3), T0)
    assert of(actions, Transition)[0].event is E.E2
    assert [r.seq for r in responses(actions, Response.POSITIVE_CONFIRM)] == [0, 1, 2]


def test_lockout_reported_in_the_clcw_raises_the_lockout_alert():
    fop = active()
    actions = fop.clcw(clcw(1, lockout=True), T0)
    assert of(actions, Alert) == [Alert(AlertCode.LOCKOUT, AlertCode.LOCKOUT.value)]
    assert [r.seq for r in responses(actions, Response.NEGATIVE_CONFIRM)] == [0, 1, 2]
    assert fop.state is S6


def test_initiate_with_clcw_check_waits_for_the_clcw_and_times_out():
    fop = Fop(CFG)
    fop.directive(D.SET_TIMEOUT_TYPE, T0, 0)
    fop.directive(D.INITIATE_AD_WITH_CLCW, T0, tag="init")
    actions = fire_timer(fop)
    assert of(actions, Alert)[0].code is AlertCode.T1
    (negative,) = of(actions, DirectiveResponse)
    assert negative.response is Response.NEGATIVE_CONFIRM and negative.tag == "init"


def test_ad_accept_lets_the_waiting_fdu_go_except_in_s3():
    fop = active(0)
    fop.request_ad(fdu(0), T0, tag=0)  # transmitted, not yet accepted by the lower procedures
    assert of(fop.request_ad(fdu(1), T0, tag=1), Transmit) == []  # waits: AD_Out not ready
    actions = fop.transmit_accepted(AD, T0)  # E41 in S1: ready, look for FDU
    assert [t.frame.seq for t in of(actions, Transmit)] == [1]
    assert responses(actions, Response.ACCEPT)[0].tag == 1
    fop = in_state(S3)
    fop.ad_out_ready = False
    fop.request_ad(fdu(5), T0)
    assert of(fop.transmit_accepted(AD, T0), Transmit) == [] and fop.wait_queue == fdu(5)


def test_bc_retransmission_waits_for_bc_out_ready():
    fop = Fop(CFG)
    (bc,) = of(fop.directive(D.INITIATE_AD_WITH_UNLOCK, T0), Transmit)  # not yet accepted
    actions = fop.timer_expired(T0 + CFG.t1_initial_s)  # E104 in S5: BC marked, BC_Out busy
    assert of(actions, Transmit) == [] and fop.transmission_count == 2
    actions = fop.transmit_accepted(BC, T0 + 2.5)  # E43 in S5: ready, look for directive
    assert of(actions, Transmit) == [Transmit(bc.frame, retransmission=True)]


def test_transmit_carries_the_tag_its_frame_was_requested_with():
    """AD frames carry their FDU's tag, first time and on retransmission; BD frames
    the BD request's; BC frames None (no request of the higher procedures made them)."""
    fop = Fop(CFG)
    (unlock,) = of(lower(fop, fop.directive(D.INITIATE_AD_WITH_UNLOCK, T0, tag="i")), Transmit)
    assert unlock.frame.frame_type is BC and unlock.tag is None
    (again,) = of(fire_timer(fop), Transmit)  # E104 in S5: the BC frame again
    assert again.retransmission and again.frame == unlock.frame and again.tag is None
    lower(fop, fop.clcw(clcw(0), T0))  # E1 in S5: the Unlock took, S1
    assert fop.state is S1
    first = of(lower(fop, fop.request_ad(fdu(0), T0, tag="fdu-0")), Transmit)
    first += of(lower(fop, fop.request_ad(fdu(1), T0, tag=("fdu", 1))), Transmit)
    assert [(t.frame.seq, t.retransmission, t.tag) for t in first] == [
        (0, False, "fdu-0"),
        (1, False, ("fdu", 1)),
    ]
    retransmitted = of(lower(fop, fop.clcw(clcw(0, retransmit=True), T0)), Transmit)  # E10
    assert [(t.frame.seq, t.retransmission, t.tag) for t in retransmitted] == [
        (0, True, "fdu-0"),
        (1, True, ("fdu", 1)),
    ]
    (bd,) = of(fop.request_bd(bd_frame(), T0, tag="bd-7"), Transmit)
    assert bd.frame.frame_type is BD and bd.tag == "bd-7" and not bd.retransmission
    # an FDU that waited in the Wait Queue goes out with its own tag too
    fop = Fop(FopConfig(SCID, VC, window_width=1))
    lower(fop, fop.directive(D.INITIATE_AD_WITHOUT_CLCW, T0))
    lower(fop, fop.request_ad(fdu(0), T0, tag="a"))
    assert of(lower(fop, fop.request_ad(fdu(1), T0, tag="b")), Transmit) == []
    (waited,) = of(lower(fop, fop.clcw(clcw(1), T0)), Transmit)
    assert (waited.frame.seq, waited.tag) == (1, "b")


def test_bd_frames_go_out_at_once_and_are_counted():
    fop = active(1)
    frame = bd_frame()
    actions = fop.request_bd(frame, T0, tag="bd")
    assert Transmit(frame, tag="bd") in actions
    assert fop.stats["bd_frames"] == 1


def test_the_transmission_count_is_one_for_a_first_frame_and_after_initiating_again():
    """Transmission_Count (5.2.4, 5.2.14): an AD frame sent onto an empty sent queue
    has been transmitted once; a count raised by retransmissions starts again at 1
    when the AD service is initiated anew."""
    fop = Fop(CFG)
    lower(fop, fop.directive(D.INITIATE_AD_WITHOUT_CLCW, T0))
    lower(fop, fop.request_ad(fdu(0), T0))
    assert fop.transmission_count == 1
    with_count(fop, 3)
    assert fop.transmission_count == 3
    lower(fop, fop.directive(D.TERMINATE_AD, T0))
    lower(fop, fop.directive(D.INITIATE_AD_WITHOUT_CLCW, T0))
    assert fop.state is S1 and fop.transmission_count == 1


def test_a_bc_retransmission_holds_bc_out_ready_until_the_layer_below_accepts_it():
    """5.2.9: Look for Directive sends the BC frame again and clears BC_Out_Flag, so
    that nothing more goes down until the layer below has taken it."""
    fop = Fop(CFG)
    lower(fop, fop.directive(D.INITIATE_AD_WITH_UNLOCK, T0))
    assert fop.bc_out_ready
    (again,) = of(fop.timer_expired(fop.timer_expiry_t_s), Transmit)  # not yet accepted
    assert again.retransmission and not fop.bc_out_ready
    fop.transmit_accepted(BC, T0)
    assert fop.bc_out_ready


def test_an_alert_rejects_the_waiting_fdu_and_leaves_nothing_outstanding():
    """5.2.15 purges both queues: the frames in flight are negatively confirmed, the
    FDU waiting for the window is rejected and gone, and V(S) - NN(R) is 0, so the AD
    service initiated again has its whole window."""
    fop = active(8)  # K = 8: the window is full
    assert of(fop.request_ad(fdu(8), T0, tag="waiting"), Transmit) == []
    assert fop.wait_queue is not None
    actions = lower(fop, fop.clcw(clcw(0, lockout=True), T0))
    (rejected,) = of(responses(actions, Response.REJECT), TransferResponse)
    assert rejected.tag == "waiting" and rejected.frame_type is AD
    assert fop.wait_queue is None and fop.outstanding == 0
    assert fop.stats["alert_LOCKOUT"] == 1
    lower(fop, fop.directive(D.INITIATE_AD_WITHOUT_CLCW, T0))
    sent = [of(lower(fop, fop.request_ad(fdu(i), T0)), Transmit) for i in range(8)]
    assert all(len(t) == 1 for t in sent)


def test_initiating_after_a_suspension_purges_both_queues_and_clears_the_suspension():
    """A suspension (5.2.16) cancels T1 and keeps the queues for a resume; initiating
    anew instead (5.2.14) purges both and sets SS to 0, so V(S) can be set again once
    the service is terminated."""
    fop = active(8)
    fop.request_ad(fdu(8), T0, tag="waiting")
    fop.directive(D.SET_TRANSMISSION_LIMIT, T0, 1)
    suspending = fire_timer(fop)
    assert of(suspending, Suspend) and of(suspending, CancelTimer)
    assert fop.timer_expiry_t_s is None and fop.stats["suspends"] == 1
    assert fop.suspend_state == 1 and len(fop.sent_queue) == 8 and fop.wait_queue is not None
    actions = lower(fop, fop.directive(D.INITIATE_AD_WITHOUT_CLCW, T0))
    negative = of(responses(actions, Response.NEGATIVE_CONFIRM), TransferResponse)
    assert [r.seq for r in negative] == list(range(8))
    assert [r.tag for r in of(responses(actions, Response.REJECT), TransferResponse)] == ["waiting"]
    assert fop.suspend_state == 0 and fop.wait_queue is None
    lower(fop, fop.directive(D.TERMINATE_AD, T0))
    answers = of(fop.directive(D.SET_VS, T0, 5, tag="vs"), DirectiveResponse)
    assert [a.response for a in answers] == [Response.ACCEPT, Response.POSITIVE_CONFIRM]
    assert fop.vs == 5


def test_a_confirmed_initiation_is_not_negatively_confirmed_by_a_later_alert():
    fop = Fop(CFG)
    fop.directive(D.INITIATE_AD_WITH_CLCW, T0, tag="init")
    confirmed = of(fop.clcw(clcw(0), T0), DirectiveResponse)
    assert [(a.response, a.tag) for a in confirmed] == [(Response.POSITIVE_CONFIRM, "init")]
    alerted = fop.clcw(clcw(0, lockout=True), T0)
    assert of(alerted, Alert) and of(alerted, DirectiveResponse) == []


def test_a_bd_frame_is_confirmed_with_the_tag_it_was_requested_with():
    fop = active(1)
    fop.request_bd(bd_frame(), T0, tag="bd")
    (confirm,) = of(fop.transmit_accepted(BD, T0), TransferResponse)
    assert (confirm.response, confirm.tag, confirm.frame_type) == (
        Response.POSITIVE_CONFIRM,
        "bd",
        BD,
    )


def test_bc_frames_and_their_retransmissions_are_counted():
    fop = Fop(CFG)
    lower(fop, fop.directive(D.INITIATE_AD_WITH_UNLOCK, T0))
    assert fop.stats["bc_frames"] == 1 and fop.stats["bc_retransmissions"] == 0
    fire_timer(fop)
    assert fop.stats["bc_frames"] == 1 and fop.stats["bc_retransmissions"] == 1


def test_the_first_ad_frame_after_a_retransmitted_unlock_has_been_sent_once():
    """5.2.4: an AD frame sent onto a Sent_Queue with no AD frame starts the count at
    1, though the Unlock before it was sent twice (the count it left is 2)."""
    fop = Fop(CFG)
    lower(fop, fop.directive(D.INITIATE_AD_WITH_UNLOCK, T0))
    fire_timer(fop)  # the Unlock again: count 2
    assert fop.transmission_count == 2
    lower(fop, fop.clcw(clcw(0), T0))  # FARM-1 unlocked: S1
    assert fop.state is S1
    lower(fop, fop.request_ad(fdu(0), T0))
    assert fop.transmission_count == 1


def test_an_initiation_abandoned_by_an_alert_is_answered_once():
    fop = Fop(CFG)
    fop.directive(D.INITIATE_AD_WITH_CLCW, T0, tag="init")
    first = of(fop.clcw(clcw(0, lockout=True), T0), DirectiveResponse)
    assert [(a.response, a.tag) for a in first] == [(Response.NEGATIVE_CONFIRM, "init")]
    lower(fop, fop.directive(D.INITIATE_AD_WITHOUT_CLCW, T0))
    again = fop.clcw(clcw(0, lockout=True), T0)
    assert of(again, Alert) and of(again, DirectiveResponse) == []
