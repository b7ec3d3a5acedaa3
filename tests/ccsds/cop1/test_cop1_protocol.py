"""FOP-1 and FARM-1 together, sans-I/O: exactly-once delivery under loss, and the ways
out of Lockout (232.1-B-2). A small loop plays the channel: frames and CLCWs are
lost at will, time moves in steps, T1 fires when due."""

import random
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.commands import Unlock
from linkstack.ccsds.cop1.farm import Farm, FarmState
from linkstack.ccsds.cop1.fop import (
    Alert,
    AlertCode,
    Directive,
    DirectiveResponse,
    Fop,
    FopConfig,
    FopState,
    Response,
    Transmit,
)
from linkstack.ccsds.tc import TcFrame, TcFrameType

SCID, VC = 9, 1
D = Directive


def fdu(i: int) -> TcFrame:
    return TcFrame(SCID, VC, i.to_bytes(2, "big"), TcFrameType.AD, 0, 0)


class Channel:
    """FOP-1 -> (lossy) -> FARM-1, FARM-1's CLCW -> (lossy) -> FOP-1."""

    def __init__(self, fop: Fop, farm: Farm, seed: int = 0, up_loss=0.0, down_loss=0.0):
        self.fop, self.farm = fop, farm
        self.rng = random.Random(seed)
        self.up_loss, self.down_loss = up_loss, down_loss
        self.t = 0.0
        self.delivered: list[bytes] = []
        self.alerts: list[AlertCode] = []
        self.directive_responses: list[DirectiveResponse] = []
        self.backlog: deque[TcFrame] = deque()

    def run(self, actions) -> None:
        todo = deque(actions)
        while todo or self._offer(todo):
            action = todo.popleft()
            if isinstance(action, Transmit):
                if self.rng.random() >= self.up_loss:
                    self.farm.receive(action.frame)
                    self.delivered += [f.data for f in self.farm.take()]
                todo.extend(self.fop.transmit_accepted(action.frame.frame_type, self.t))
            elif isinstance(action, Alert):
                self.alerts.append(action.code)
            elif isinstance(action, DirectiveResponse):
                self.directive_responses.append(action)

    def _offer(self, todo: deque) -> bool:
        """The higher procedures: the next FDU as soon as the Wait Queue is free."""
        fop = self.fop
        if self.backlog and fop.wait_queue is None and fop.state <= FopState.RETRANSMIT_WITH_WAIT:
            todo.extend(fop.request_ad(self.backlog.popleft(), self.t))
            return True
        return False

    def directive(self, directive, value=None):
        self.run(self.fop.directive(directive, self.t, value))

    def step(self, dt: float = 0.1) -> None:
        self.t += dt
        if self.rng.random() >= self.down_loss:
            self.run(self.fop.clcw(self.farm.clcw().pack(), self.t))
        expiry = self.fop.timer_expiry_t_s
        if expiry is not None and self.t >= expiry:
            self.run(self.fop.timer_expired(self.t))
        self.run([])


@settings(max_examples=60)
@given(
    st.integers(0, 2**32),
    st.sampled_from([0.0, 0.05, 0.2, 0.4]),
    st.sampled_from([0.0, 0.2, 0.5]),
    st.integers(1, 16),
)
def test_every_fdu_delivered_once_in_order_whatever_is_lost(seed, up_loss, down_loss, k):
    fop = Fop(FopConfig(SCID, VC, window_width=k, t1_initial_s=0.5, transmission_limit=1000))
    farm = Farm(VC, 32)
    chan = Channel(fop, farm, seed, up_loss, down_loss)
    chan.directive(D.INITIATE_AD_WITHOUT_CLCW)
    sent = [fdu(i) for i in range(300)]  # more than 256: N(S) wraps
    chan.backlog.extend(sent)
    chan.run([])
    for _ in range(20_000):
        if len(chan.delivered) == len(sent) and not fop.sent_queue:
            break
        chan.step()
    assert chan.delivered == [f.data for f in sent]
    assert chan.alerts == [] and fop.state is FopState.ACTIVE


def test_lockout_then_initiate_with_unlock_recovers():
    fop, farm = Fop(FopConfig(SCID, VC)), Farm(VC, 16)
    chan = Channel(fop, farm)
    chan.directive(D.INITIATE_AD_WITHOUT_CLCW)
    chan.backlog.extend(fdu(i) for i in range(3))
    chan.run([])
    chan.step()
    assert len(chan.delivered) == 3 and fop.outstanding == 0
    # a rogue frame far outside both windows: FARM-1 locks out and says so
    farm.receive(TcFrame(SCID, VC, b"rogue", TcFrameType.AD, 100, 0))
    assert farm.state is FarmState.LOCKOUT and farm.clcw().lockout
    chan.step()
    assert chan.alerts == [AlertCode.LOCKOUT] and fop.state is FopState.INITIAL
    # the operator unlocks: a Type-BC Unlock, then the CLCW with N(R) = V(S) confirms
    chan.directive(D.INITIATE_AD_WITH_UNLOCK)
    assert fop.state is FopState.INITIALISING_WITH_BC
    chan.step()
    assert farm.state is FarmState.OPEN and fop.state is FopState.ACTIVE
    assert chan.directive_responses[-1].response is Response.POSITIVE_CONFIRM
    chan.backlog.extend(fdu(i) for i in range(3, 6))
    chan.run([])
    chan.step()
    assert chan.delivered == [fdu(i).data for i in range(6)]


def test_lockout_with_frames_lost_set_vs_then_unlock():
    """When FARM-1 locked out before frames arrived, V(S) is ahead of V(R): set V(S) to
    the N(R) the CLCW reports, then unlock; the lost frames are the caller's to resend."""
    fop, farm = Fop(FopConfig(SCID, VC)), Farm(VC, 16)
    chan = Channel(fop, farm)
    chan.directive(D.INITIATE_AD_WITHOUT_CLCW)
    farm.receive(TcFrame(SCID, VC, b"rogue", TcFrameType.AD, 100, 0))  # locked out first
    chan.backlog.extend(fdu(i) for i in range(3))
    chan.run([])  # three frames discarded by the locked FARM
    chan.step()
    assert chan.alerts == [AlertCode.LOCKOUT] and fop.vs == 3 and farm.vr == 0
    chan.directive(D.SET_VS, farm.clcw().report_value)
    chan.directive(D.INITIATE_AD_WITH_UNLOCK)
    chan.step()
    assert fop.state is FopState.ACTIVE and (fop.vs, farm.vr) == (0, 0)
    chan.backlog.extend(fdu(i) for i in range(3))
    chan.run([])
    chan.step()
    assert chan.delivered == [fdu(i).data for i in range(3)]


def test_bc_unlock_alone_clears_farm_lockout():
    farm = Farm(VC, 16)
    farm.receive(TcFrame(SCID, VC, b"rogue", TcFrameType.AD, 100, 0))
    assert farm.clcw().lockout
    farm.receive(TcFrame(SCID, VC, Unlock().pack(), TcFrameType.BC))
    assert not farm.clcw().lockout and farm.state is FarmState.OPEN


def test_initiate_with_set_vr_resynchronises_both_ends():
    fop, farm = Fop(FopConfig(SCID, VC)), Farm(VC, 16)
    farm.vr = 77  # the spacecraft rebooted, or another ground station used the channel
    chan = Channel(fop, farm)
    chan.directive(D.INITIATE_AD_WITH_SET_VR, 200)
    chan.step()
    assert fop.state is FopState.ACTIVE and (fop.vs, farm.vr) == (200, 200)
    chan.backlog.extend(fdu(i) for i in range(60))  # across the wrap
    chan.run([])
    for _ in range(50):
        chan.step()
    assert chan.delivered == [fdu(i).data for i in range(60)]


def test_initiate_with_clcw_check_confirms_on_the_first_matching_clcw():
    fop, farm = Fop(FopConfig(SCID, VC)), Farm(VC, 16)
    chan = Channel(fop, farm)
    chan.directive(D.INITIATE_AD_WITH_CLCW)
    assert fop.state is FopState.INITIALISING_WITHOUT_BC
    chan.step()
    assert fop.state is FopState.ACTIVE
    assert [r.response for r in chan.directive_responses] == [
        Response.ACCEPT,
        Response.POSITIVE_CONFIRM,
    ]
    # a CLCW whose N(R) is not V(S) is an invalid N(R) in S4
    fop2 = Fop(FopConfig(SCID, VC))
    fop2.directive(D.INITIATE_AD_WITH_CLCW, 0.0)
    alerts = [a for a in fop2.clcw(Clcw(VC, 5), 0.1) if isinstance(a, Alert)]
    assert alerts[0].code is AlertCode.NNR
