"""FOP-1's Sent_Queue holds Type-AD frames or one Type-BC frame, never both, whatever
arrives in whatever order (232.1-B-2 §5): a BC frame is only sent by an Initiate AD
directive in S6, after Initialise purged the queue, into S5, where AD requests are
refused; it leaves the queue (released on E1 or purged by an alert) before any state
that sends AD frames. Remove Acknowledged Frames relies on it: it only runs in S1-S3,
where the queue holds AD frames alone, so looking at the queue's first or last frame
decides the same (an equivalent mutant in `make mutate`'s reviewed list).

Checked over every state FOP-1 reaches in a few inputs, breadth first, from a small
alphabet of inputs that covers each kind of event: a random walk seldom reaches the
suspended state with frames outstanding and then meets the right directive."""

import copy
from collections.abc import Callable

from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.fop import Directive, Fop, FopConfig, FopState
from linkstack.ccsds.tc import TcFrame, TcFrameType

SCID, VC = 5, 2
AD, BC, BD = TcFrameType.AD, TcFrameType.BC, TcFrameType.BD
DEPTH = 8

Input = Callable[[Fop, float], object]


def _clcw(offset_from: str, offset: int, **flags: bool) -> Input:
    """A CLCW whose N(R) is NN(R) or V(S) plus ``offset`` at the time it arrives."""

    def send(fop: Fop, t_s: float) -> object:
        base = fop.nnr if offset_from == "nnr" else fop.vs
        return fop.clcw(Clcw(VC, (base + offset) % 256, **flags), t_s)

    return send


def _directive(directive: Directive, value: object = None) -> Input:
    return lambda fop, t_s: fop.directive(directive, t_s, value)


def _timer(fop: Fop, t_s: float) -> object:
    expiry = fop.timer_expiry_t_s
    return fop.timer_expired(expiry if expiry is not None else t_s)


INPUTS: dict[str, Input] = {
    "AD request": lambda fop, t_s: fop.request_ad(TcFrame(SCID, VC, b"\x01", AD), t_s),
    "BD request": lambda fop, t_s: fop.request_bd(TcFrame(SCID, VC, b"\x02", BD), t_s),
    "AD accepted": lambda fop, t_s: fop.transmit_accepted(AD, t_s),
    "BC accepted": lambda fop, t_s: fop.transmit_accepted(BC, t_s),
    "AD rejected": lambda fop, t_s: fop.transmit_rejected(AD, t_s),
    "T1 expiry": _timer,
    "CLCW N(R)=NN(R)": _clcw("nnr", 0),
    "CLCW N(R)=NN(R)+1": _clcw("nnr", 1),
    "CLCW N(R)=V(S)": _clcw("vs", 0),
    "CLCW N(R)=NN(R), retransmit": _clcw("nnr", 0, retransmit=True),
    "CLCW N(R)=NN(R)+1, retransmit": _clcw("nnr", 1, retransmit=True),
    "CLCW N(R)=NN(R), wait": _clcw("nnr", 0, wait=True),
    "CLCW lockout": _clcw("vs", 0, lockout=True),
    "initiate without CLCW check": _directive(Directive.INITIATE_AD_WITHOUT_CLCW),
    "initiate with CLCW check": _directive(Directive.INITIATE_AD_WITH_CLCW),
    "initiate with Unlock": _directive(Directive.INITIATE_AD_WITH_UNLOCK),
    "initiate with Set V(R)": _directive(Directive.INITIATE_AD_WITH_SET_VR, 0),
    "resume": _directive(Directive.RESUME_AD),
    "terminate": _directive(Directive.TERMINATE_AD),
    "set V(S)": _directive(Directive.SET_VS, 0),
}


def _signature(fop: Fop) -> tuple:
    """What decides FOP-1's future behaviour (time aside): states that agree on it
    need not be explored twice."""
    queue = tuple((f.frame_type.name, f.seq) for f in fop.sent_queue)
    return (
        fop.state,
        fop.vs,
        fop.nnr,
        queue,
        fop.wait_queue is not None,
        fop.transmission_count,
        fop.suspend_state,
        fop.ad_out_ready,
        fop.bc_out_ready,
        fop.bd_out_ready,
        fop.timer_expiry_t_s is not None,
    )


def _reachable(timeout_type: int):
    """Each state reached in up to DEPTH inputs, with the inputs that reach it."""
    cfg = FopConfig(SCID, VC, 2, t1_initial_s=1.0, transmission_limit=2, timeout_type=timeout_type)
    start = Fop(cfg)
    seen = {_signature(start)}
    frontier: list[tuple[Fop, tuple[str, ...]]] = [(start, ())]
    for depth in range(DEPTH):
        following = []
        for fop, path in frontier:
            for name, send in INPUTS.items():
                nxt = copy.deepcopy(fop)
                send(nxt, float(depth + 1))
                signature = _signature(nxt)
                if signature not in seen:
                    seen.add(signature)
                    following.append((nxt, (*path, name)))
                    yield nxt, (*path, name)
        frontier = following


def test_sent_queue_never_mixes_ad_and_bc_frames():
    reached = {"AD frames": 0, "a BC frame": 0, "suspended with AD frames": 0}
    # timeout type 0 alerts at the limit, 1 suspends (with its frames kept)
    for fop, path in (*_reachable(0), *_reachable(1)):
        types = [f.frame_type for f in fop.sent_queue]
        assert BD not in types, path
        assert not (AD in types and BC in types), path
        if BC in types:
            # the BC frame waits for its CLCW in S5, alone
            assert types == [BC] and fop.state is FopState.INITIALISING_WITH_BC, path
            reached["a BC frame"] += 1
        elif types:
            reached["AD frames"] += 1
            reached["suspended with AD frames"] += fop.state is FopState.INITIAL
    # the walk reached the states that could break the rule
    assert all(reached.values()), reached
