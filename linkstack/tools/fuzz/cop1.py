"""Fuzz targets: COP-1, the CLCW and control command decoders, FARM-1 and FOP-1 fed at random.

FARM-1 and FOP-1 are kept across inputs, their invariants checked after each one.
"""

from __future__ import annotations

import random

from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.commands import SetVr, Unlock, unpack_control_command
from linkstack.ccsds.cop1.farm import Farm, FarmEvent, FarmState
from linkstack.ccsds.cop1.fop import Action, Directive, Fop, FopConfig, FopState, Transmit
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.errors import DecodeError
from linkstack.tools.fuzz.engine import Decoder, FuzzCheckError, Target, strict
from linkstack.tools.fuzz.framing import TC


def _valid_clcw(rng: random.Random) -> bytes:
    return Clcw(
        vcid=rng.randrange(64),
        report_value=rng.randrange(256),
        lockout=rng.random() < 0.5,
        wait=rng.random() < 0.5,
        retransmit=rng.random() < 0.5,
        farm_b_counter=rng.randrange(4),
        no_rf_available=rng.random() < 0.5,
        no_bit_lock=rng.random() < 0.5,
        status=rng.randrange(8),
    ).pack()


def _valid_control_command(rng: random.Random) -> bytes:
    return Unlock().pack() if rng.random() < 0.4 else SetVr(rng.randrange(256)).pack()


class _Cop1Fuzz:
    """The state machine a stateful COP-1 target is feeding, so that the generator of
    valid inputs can aim near its sequence numbers (else nearly every frame would
    fall in the lockout area, and nearly every N(R) would be invalid)."""

    farm: Farm | None = None
    fop: Fop | None = None


_COP1 = _Cop1Fuzz()
_COP1_VC = 5


def _valid_farm_frame(rng: random.Random) -> bytes:
    vr = _COP1.farm.vr if _COP1.farm is not None else 0
    pick = rng.random()
    if pick < 0.08:
        frame = TcFrame(TC.scid, _COP1_VC, Unlock().pack(), TcFrameType.BC)
    elif pick < 0.12:
        frame = TcFrame(TC.scid, _COP1_VC, SetVr(rng.randrange(256)).pack(), TcFrameType.BC)
    elif pick < 0.2:
        frame = TcFrame(TC.scid, _COP1_VC, rng.randbytes(20), TcFrameType.BD, 0, 0)
    else:
        offset = rng.choice([0, 0, 0, 0, 1, 2, 7, 8, -1, -8, -9, rng.randrange(256)])
        seq = (vr + offset) % 256
        frame = TcFrame(TC.scid, _COP1_VC, rng.randbytes(20), TcFrameType.AD, seq, 0)
    return frame.pack()


def _farm_receiver() -> Decoder:
    """FARM-1 behind the TC frame validation: never raises, accepts a Type-AD frame
    only when it is the next in sequence in the Open state, and moves V(R) only by
    such an acceptance or by a Set V(R) it may execute."""
    farm = _COP1.farm = Farm(_COP1_VC, 16, buffer_frames=3)

    def decode(buf: bytes) -> object:
        try:
            frame: TcFrame | None = TcFrame.unpack(buf, True, True)
        except DecodeError:
            frame = None
        vr, state = farm.vr, farm.state
        result = farm.receive(frame)
        accepted = result.accepted
        if accepted is not None and accepted.frame_type is TcFrameType.AD:
            if accepted.seq != vr or state is not FarmState.OPEN:
                raise FuzzCheckError(f"accepted N(S) {accepted.seq} with V(R) {vr} in {state}")
            if farm.vr != (vr + 1) % 256:
                raise FuzzCheckError("V(R) did not advance by one on an acceptance")
        elif farm.vr != vr and not (
            result.event is FarmEvent.E8 and state is not FarmState.LOCKOUT
        ):
            raise FuzzCheckError(f"V(R) moved from {vr} to {farm.vr} on {result.event.name}")
        Clcw.unpack(farm.clcw().pack())  # the report is always a valid COP-1 CLCW
        if farm.state is FarmState.WAIT or len(farm.buffer) > 6:  # read once FARM-1 waits
            farm.take()
            farm.buffer_release()
        return result

    return decode


def _valid_fop_clcw(rng: random.Random) -> bytes:
    fop = _COP1.fop
    vs, nnr = (fop.vs, fop.nnr) if fop is not None else (0, 0)
    span = (vs - nnr) % 256 + 2
    nr = rng.choice([vs, nnr, (nnr + rng.randrange(span)) % 256, rng.randrange(256)])
    lockout, wait, retransmit = (rng.random() < p for p in (0.05, 0.2, 0.3))
    return Clcw(_COP1_VC, nr, lockout, wait, retransmit, rng.randrange(4)).pack()


def _fop_clcw_reader() -> Decoder:
    """FOP-1 with frames outstanding fed CLCWs (good, damaged or random octets) and T1
    expiries: never raises; V(S) - NN(R) never exceeds K and is what the Sent Queue
    holds; after an alert or a suspension it is started again."""
    fop = _COP1.fop = Fop(FopConfig(TC.scid, _COP1_VC, 4, 1.0, 4, 0))
    clock = [0.0]
    counter = [0]
    fdu = TcFrame(TC.scid, _COP1_VC, b"fdu", TcFrameType.AD, 0, 0)

    def run(actions: list[Action]) -> None:
        todo = list(actions)
        while todo:
            action = todo.pop(0)
            if isinstance(action, Transmit):  # the lower procedures take it at once
                todo += fop.transmit_accepted(action.frame.frame_type, clock[0])

    def decode(buf: bytes) -> object:
        clock[0] += 0.3
        if fop.state is FopState.INITIAL:
            counter[0] += 1
            fop.directive(Directive.SET_TIMEOUT_TYPE, clock[0], counter[0] % 2)
            run(fop.directive(Directive.INITIATE_AD_WITHOUT_CLCW, clock[0]))
        while fop.wait_queue is None and fop.outstanding < 3 and fop.state <= 2:
            run(fop.request_ad(fdu, clock[0]))
        out = fop.clcw(buf, clock[0])
        run(out)
        if fop.timer_expiry_t_s is not None and clock[0] >= fop.timer_expiry_t_s:
            run(fop.timer_expired(clock[0]))
        ads = [f for f in fop.sent_queue if f.frame_type is TcFrameType.AD]
        if fop.outstanding > fop.window_width:
            raise FuzzCheckError(f"{fop.outstanding} frames in flight with K = {fop.window_width}")
        if fop.state <= 3 and len(ads) != fop.outstanding:
            raise FuzzCheckError(f"Sent Queue holds {len(ads)}, V(S) - NN(R) = {fop.outstanding}")
        if [f.seq for f in ads] != [(fop.nnr + i) % 256 for i in range(len(ads))]:
            raise FuzzCheckError("the Sent Queue is not NN(R), NN(R) + 1, ...")
        return out

    return decode


TARGETS: list[Target] = [
    Target(
        "clcw.unpack",
        _valid_clcw,
        lambda: strict(Clcw.unpack, lambda c: c.pack()),
        strict=True,
        max_random_len=8,
    ),
    Target(
        "cop1.control_command",
        _valid_control_command,
        lambda: strict(unpack_control_command, lambda c: c.pack()),
        strict=True,
        max_random_len=6,
    ),
    Target("farm.receiver", _valid_farm_frame, _farm_receiver, strict=False, has_fecf=True),
    Target("fop.clcw", _valid_fop_clcw, _fop_clcw_reader, strict=False, max_random_len=8),
]
