"""The active test cases: for a spacecraft endpoint (``SAT_CASES``) and a ground
endpoint (``GROUND_CASES``), in the order they run.

Each case is a generator over a :class:`~linkstack.conformance.active.runner.Ctx` (see
:mod:`linkstack.conformance.active.runner`): it yields :class:`Send`, :class:`Wait` and
:class:`Sleep` actions and returns a :class:`Verdict`. Cases are written against the
state the endpoint reports, never against an assumed one: each starts from the last
CLCW judged (``ctx.state``), so that one failure does not make the next cases fail.

Sat role. A negative case ("this must not be accepted") sends its units, then
*settles*: it sends a Type-BD frame (the fence, once ``ACT-COP-BD-01`` has shown that
BD frames advance the FARM-B counter) and waits for the CLCW that counts it, and one
more; without a fence it waits for three CLCWs. The settled CLCW must then show
exactly the state before plus the fence: N(R), Lockout, Wait, Retransmit and the
FARM-B counter. A positive case waits (up to the timeout) for the CLCW that shows the
expected state. Every Type-AD frame a negative case sends carries N(S) = V(R), so
that wrongly accepting it would show in N(R).

Ground role. The tester's FARM-1 (:class:`~linkstack.conformance.active.runner.GroundCtx`)
answers the ground's frames like a spacecraft. The probe (``ACT-GND-CLCW-01``) puts it
in Lockout and expects the ground to send an Unlock; a negative case sends, between
the regular TM frames, a frame the ground must not use (wrong SCID, bad FECF, ...)
whose CLCW reports Lockout, and expects no Type-BC frame (no Unlock, no Set V(R)) to
come up in reply. If the ground does not answer the probe, a refusal cannot be told
from indifference and the negative cases are not applicable. The ground should be idle
(no queries going up): the cases wait for its silence before they begin, though a
busy ground's Type-AD frames do not count against it.

Section references follow :mod:`linkstack.conformance.passive.rules`: numbered where the
clause is known, otherwise the section and, in brackets, the part of it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from linkstack.ccsds.coding.cltu import DecodeMode
from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.commands import SetVr, Unlock
from linkstack.ccsds.tc import TcFrameType
from linkstack.conformance.active.runner import (
    ERROR,
    SAT,
    SET_VR_START,
    Case,
    Ctx,
    Downlink,
    GroundCtx,
    Observation,
    SatCtx,
    Send,
    Sent,
    Sleep,
    Steps,
    Uplink,
    Verdict,
    Wait,
    clcw_diff,
    clcw_text,
    codeblock_count,
    codeblock_offset,
    failed,
    flip_bits,
    garbage,
    not_applicable,
    other_scid,
    passed,
    same_cop_state,
    with_fecf,
)

if TYPE_CHECKING:
    from linkstack.conformance.active.sdls import TcProtector

TM = "CCSDS 132.0-B-3"
TC = "CCSDS 232.0-B-4"
COP1 = "CCSDS 232.1-B-2"
TM_CODING = "CCSDS 131.0-B-4"
TC_CODING = "CCSDS 231.0-B-4"
SDLS = "CCSDS 355.0-B-2"

SAT_CASES: list[Case] = []
GROUND_CASES: list[Case] = []

C = TypeVar("C", SatCtx, GroundCtx)
CaseFn = Callable[[C], "Steps[Verdict] | Verdict"]
"""A case as written: a function of the context of its role."""


def case(
    case_id: str, kind: type[C], standard: str, section: str, statement: str, layer: str
) -> Callable[[CaseFn[C]], CaseFn[C]]:
    """Register a case that runs on a ``kind`` context (:class:`SatCtx` or
    :class:`GroundCtx`): a case of that role."""

    def register(run: CaseFn[C]) -> CaseFn[C]:
        def start(ctx: Ctx) -> Steps[Verdict] | Verdict:
            if not isinstance(ctx, kind):
                raise TypeError(f"{case_id} is a {kind.role} case, not one of role {ctx.role}")
            return run(ctx)

        (SAT_CASES if kind.role == SAT else GROUND_CASES).append(
            Case(case_id, kind.role, standard, section, statement, layer, start)
        )
        return run

    return register


# -- sat role: the steps cases are made of ---------------------------------------------------------


def _send(*units: Sent) -> Steps[str]:
    yield Send(tuple(units))
    return "; ".join(u.what for u in units)


def _counter(c: Clcw, plus: int) -> int:
    return (c.farm_b_counter + plus) % 4


def _expect(ctx: SatCtx, sent: str, expected: Clcw, what: str) -> Steps[Verdict | None]:
    """Wait for the CLCW that shows ``expected``; None, or the failing verdict."""
    timeout = ctx.config.timeout_s
    t0 = ctx.t_s
    o = yield Wait(lambda o: ctx.good(o) and same_cop_state(o.clcw, expected), timeout)
    if ctx.good(o):  # it came (else o is None: the time ran out)
        ctx.state = o.clcw
        ctx.rtt_s = max(ctx.rtt_s, o.t_s - t0)
        return None
    last = ctx.last_good()
    if last is None:
        return failed(sent, f"{what}: {clcw_text(expected)}", "no CLCW at all")
    ctx.state = last.clcw
    return failed(
        sent,
        f"{what}: {clcw_text(expected)}, within {timeout:g} s",
        f"{last.describe()} (the last CLCW)",
        "; ".join(clcw_diff(expected, last.clcw)),
    )


def _settle(ctx: SatCtx, expected: Clcw) -> Steps[tuple[Observation | None, Clcw]]:
    """Until everything sent so far has been processed: the CLCW that shows it (None if
    none came), and ``expected`` with the fence counted."""
    if ctx.fence:
        yield Send((ctx.craft.fence(),))
        expected = replace(expected, farm_b_counter=_counter(expected, 1))
        want = expected.farm_b_counter
        yield Wait(lambda o: ctx.good(o) and o.clcw.farm_b_counter == want, ctx.short_wait_s)
        last = yield Wait(ctx.good, ctx.config.timeout_s)
    else:
        last = yield Wait(ctx.good, ctx.config.timeout_s, count=3)
    if ctx.good(last):  # else None: none came
        ctx.state = last.clcw
    return last, expected


def _unchanged(ctx: SatCtx, sent: str, expected: Clcw, what: str) -> Steps[Verdict | None]:
    """Settle, then the settled CLCW must show ``expected``; None, or the failing verdict."""
    last, expected = yield from _settle(ctx, expected)
    fence = " (plus the fence)" if ctx.fence else ""
    want = f"{what}{fence}: {clcw_text(expected)}"
    if not ctx.good(last):  # None: no CLCW came
        return failed(
            sent, want, f"no CLCW within {ctx.config.timeout_s:g} s: the endpoint stopped answering"
        )
    diff = clcw_diff(expected, last.clcw)
    if diff:
        return failed(sent, want, last.describe(), "; ".join(diff))
    return None


def _prepare(ctx: SatCtx) -> Steps[Verdict | None]:
    """FARM-1 Open and without Retransmit, whatever an earlier case left; None, or an
    error verdict (the case cannot be run)."""
    s = ctx.farm_state
    if s.lockout:
        sent = yield from _send(ctx.craft.unlock())
        want = replace(
            s, lockout=False, wait=False, retransmit=False, farm_b_counter=_counter(s, 1)
        )
        bad = yield from _expect(ctx, sent, want, "FARM-1 unlocked")
        if bad is not None:
            return _cannot("unlock FARM-1 before the case", bad)
        s = ctx.farm_state
    if s.retransmit:
        v = s.report_value
        sent = yield from _send(ctx.craft.ad(v))
        want = replace(s, report_value=(v + 1) % 256, retransmit=False)
        bad = yield from _expect(ctx, sent, want, "the frame accepted, Retransmit cleared")
        if bad is not None:
            return _cannot("clear Retransmit before the case", bad)
    return None


def _cannot(what: str, bad: Verdict) -> Verdict:
    e = bad.evidence
    assert e is not None
    return Verdict(
        ERROR,
        f"could not {what}: sent {e.sent}; expected {e.expected}; found {e.found}"
        + (f" ({e.note})" if e.note else ""),
        e,
    )


def _start(ctx: SatCtx) -> Steps[Clcw | Verdict]:
    """The case's starting state (FARM-1 Open, Retransmit 0), or an error verdict."""
    bad = yield from _prepare(ctx)
    if bad is not None:
        return bad
    return ctx.farm_state


# -- sat role: the cases ---------------------------------------------------------------------------


@case(
    "ACT-CLCW-01",
    SatCtx,
    COP1,
    "§4.2 (CLCW), with 132.0-B-3 §4.1.5 (operational control field)",
    "The spacecraft's TM CADUs decode (ASM, derandomizer, Reed-Solomon, TM frame and FECF), "
    "carry its SCID, and every frame's OCF holds a valid CLCW (COP-1) for the TC virtual "
    "channel.",
    "cop1",
)
def _clcw(ctx: SatCtx) -> Steps[Verdict]:
    cfg = ctx.config
    yield Wait(lambda o: True, cfg.timeout_s, count=4)
    units = [o for o in ctx.seen if isinstance(o, Downlink)]
    good = [o for o in units if ctx.good(o)]
    if not good:
        ctx.halt = "no CLCW of the TC virtual channel came back: nothing to judge by"
        first = units[0] if units else None
        return failed(
            "nothing (listening only)",
            f"TM frames of spacecraft {_scid(ctx)} with a CLCW of VC {cfg.vcid} in the OCF",
            first.describe() if first else "no TM unit",
            f"{len(units)} TM unit(s) received, none usable",
        )
    ctx.state = good[-1].clcw
    if len(good) >= 2:
        ctx.interval_s = (good[-1].t_s - good[0].t_s) / (len(good) - 1)
        ctx.facts.append(f"a CLCW every {ctx.interval_s:.3f} s")
    ctx.facts.append(f"first CLCW: {clcw_text(good[0].clcw)}")
    for o in units:
        if ctx.good(o):
            continue
        if o.clcw is not None and o.scid != ctx.scid:
            why = f"a TM frame of SCID {o.scid:#x}"
        elif o.clcw is not None:
            why = f"a CLCW of VC {o.clcw.vcid}"
        else:
            why = o.problem
        return failed(
            "nothing (listening only)",
            f"every TM unit: a frame of spacecraft {_scid(ctx)} with a CLCW of VC {cfg.vcid}",
            o.describe(),
            why,
        )
    return passed(f"{len(units)} TM units, each with a CLCW")


def _scid(ctx: SatCtx) -> str:
    return f"{ctx.scid:#x}" if ctx.scid is not None else "(unknown)"


@case(
    "ACT-COP-SETVR-01",
    SatCtx,
    COP1,
    "§6 (FARM-1 state table: E7 Unlock, E8 Set V(R))",
    "A Type-BC Unlock then a Type-BC Set V(R) are executed: Lockout, Wait and Retransmit "
    "are clear, N(R) becomes V*(R), and the FARM-B counter advances by one for each.",
    "cop1",
)
def _set_vr(ctx: SatCtx) -> Steps[Verdict]:
    s = ctx.farm_state
    sent = yield from _send(ctx.craft.unlock(), ctx.craft.set_vr(SET_VR_START))
    want = replace(
        s,
        report_value=SET_VR_START,
        lockout=False,
        wait=False,
        retransmit=False,
        farm_b_counter=_counter(s, 2),
    )
    bad = yield from _expect(ctx, sent, want, "both executed")
    return bad or passed(f"N(R) {s.report_value} -> {SET_VR_START}, FARM-B counter +2")


@case(
    "ACT-TC-VALID-01",
    SatCtx,
    COP1,
    "§6 (FARM-1: E1, N(S) = V(R)), with 232.0-B-4 §4.1.2.9 (frame sequence number, modulo 256)",
    "Type-AD frames in sequence (N(S) = V(R)) are accepted: V(R) advances by one for each, "
    "modulo 256, and Retransmit stays clear.",
    "cop1",
)
def _valid(ctx: SatCtx) -> Steps[Verdict]:
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    v = s.report_value
    sent = yield from _send(*(ctx.craft.ad(v + k) for k in range(3)))
    want = replace(s, report_value=(v + 3) % 256)
    bad = yield from _expect(ctx, sent, want, "all three accepted")
    return bad or passed(f"N(R) {v} -> {(v + 3) % 256}")


@case(
    "ACT-COP-BD-01",
    SatCtx,
    COP1,
    "§6 (FARM-1: E6, Type-BD frame)",
    "A Type-BD frame is accepted whatever FARM-1's state: the FARM-B counter advances by "
    "one and V(R) does not change.",
    "cop1",
)
def _bd(ctx: SatCtx) -> Steps[Verdict]:
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    sent = yield from _send(ctx.craft.bd())
    want = replace(s, farm_b_counter=_counter(s, 1))
    bad = yield from _expect(ctx, sent, want, "the BD frame counted")
    if bad:
        ctx.facts.append("no fence: negative cases wait for three CLCWs instead")
        return bad
    ctx.fence = True
    return passed(f"FARM-B counter {s.farm_b_counter} -> {want.farm_b_counter}")


@case(
    "ACT-TC-SCID-01",
    SatCtx,
    TC,
    "§4.1.2.6 (spacecraft identifier), with 232.1-B-2 §6 (E9: invalid frame)",
    "Frames of another spacecraft (another SCID) are not accepted: a Type-AD frame with "
    "N(S) = V(R) and a Type-BD frame leave V(R), the flags and the FARM-B counter as they "
    "were.",
    "tc",
)
def _scid_case(ctx: SatCtx) -> Steps[Verdict]:
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    craft = ctx.craft
    other = other_scid(craft.scid)
    note = f"with SCID {other:#x} (the target's is {craft.scid:#x})"
    sent = yield from _send(craft.ad(s.report_value, note, scid=other), craft.bd(note, scid=other))
    bad = yield from _unchanged(ctx, sent, s, "both discarded, nothing changed")
    return bad or passed(f"2 frames of SCID {other:#x} ignored")


@case(
    "ACT-TC-VCID-01",
    SatCtx,
    TC,
    "§4.1.2.7 (virtual channel identifier), with 232.1-B-2 §6 (one FARM-1 per VC)",
    "Frames of another virtual channel do not touch this channel's FARM-1: a Type-AD frame "
    "with N(S) = V(R) and a Type-BD frame on another VC leave its CLCW as it was.",
    "tc",
)
def _vcid_case(ctx: SatCtx) -> Steps[Verdict]:
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    other = (ctx.config.vcid + 1) % 64
    note = f"on VC {other} (COP-1 under test runs on VC {ctx.config.vcid})"
    sent = yield from _send(
        ctx.craft.ad(s.report_value, note, vcid=other), ctx.craft.bd(note, vcid=other)
    )
    bad = yield from _unchanged(ctx, sent, s, f"VC {ctx.config.vcid} unchanged")
    return bad or passed(f"2 frames of VC {other} left VC {ctx.config.vcid} alone")


@case(
    "ACT-TC-FECF-01",
    SatCtx,
    TC,
    "§4.1.4 (frame error control field), with 232.1-B-2 §6 (E9: invalid frame)",
    "A frame whose FECF does not match is discarded: a Type-AD frame with N(S) = V(R) and "
    "a Type-BD frame, each with one FECF bit flipped, change nothing.",
    "tc",
)
def _fecf_case(ctx: SatCtx) -> Steps[Verdict]:
    if not ctx.config.tc_fecf:
        return not_applicable("the profile's TC frames carry no FECF")
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    craft = ctx.craft
    ad = flip_bits(craft.frame(seq=s.report_value), [(-1, 0)])
    bd = flip_bits(craft.frame(TcFrameType.BD), [(-1, 0)])
    note = "with a bad FECF"
    sent = yield from _send(
        Sent(f"Type-AD frame N(S) {s.report_value} {note}", craft.cltu(ad)),
        Sent(f"Type-BD frame {note}", craft.cltu(bd)),
    )
    bad = yield from _unchanged(ctx, sent, s, "both discarded, nothing changed")
    return bad or passed("2 frames with a bad FECF discarded")


@case(
    "ACT-CLTU-BCH-01",
    SatCtx,
    TC_CODING,
    "(BCH decoding: a codeblock the mode cannot accept ends the CLTU; the frame is lost)",
    "A CLTU with two bit errors in one codeblock loses its frame (in both decoding modes): "
    "Type-AD frames with N(S) = V(R), damaged in their first or their last codeblock, "
    "change nothing.",
    "cltu",
)
def _bch_bad(ctx: SatCtx) -> Steps[Verdict]:
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    craft = ctx.craft
    v = s.report_value
    first = craft.cltu(craft.frame(seq=v))
    last = craft.cltu(craft.frame(seq=v))
    k = codeblock_count(last) - 1
    sent = yield from _send(
        Sent(
            f"Type-AD frame N(S) {v}, two bit errors in codeblock 0",
            flip_bits(first, [(codeblock_offset(0), 7), (codeblock_offset(0) + 3, 2)]),
        ),
        Sent(
            f"Type-AD frame N(S) {v}, two bit errors in codeblock {k} (the last)",
            flip_bits(last, [(codeblock_offset(k) + 1, 0), (codeblock_offset(k) + 5, 6)]),
        ),
    )
    bad = yield from _unchanged(ctx, sent, s, "both frames lost, nothing changed")
    return bad or passed("2 CLTUs with an uncorrectable codeblock dropped")


@case(
    "ACT-CLTU-BCH-02",
    SatCtx,
    TC_CODING,
    "(BCH decoding modes: error-correcting, one bit per codeblock; error-detecting)",
    "A CLTU with one bit error in every codeblock: in the error-correcting mode the errors "
    "are corrected and the frame (N(S) = V(R)) is accepted; in the error-detecting mode "
    "the frame is lost.",
    "cltu",
)
def _bch_single(ctx: SatCtx) -> Steps[Verdict]:
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    craft = ctx.craft
    v = s.report_value
    cltu = craft.cltu(craft.frame(seq=v))
    n = codeblock_count(cltu)
    damaged = flip_bits(cltu, [(codeblock_offset(i) + i % 7, i % 8) for i in range(n)])
    sent = yield from _send(
        Sent(f"Type-AD frame N(S) {v}, one bit error in each of its {n} codeblocks", damaged)
    )
    if ctx.config.cltu_mode is DecodeMode.CORRECT:
        want = replace(s, report_value=(v + 1) % 256)
        bad = yield from _expect(ctx, sent, want, "corrected and accepted (error-correcting mode)")
        return bad or passed(f"{n} single-bit errors corrected, N(R) {v} -> {(v + 1) % 256}")
    bad = yield from _unchanged(ctx, sent, s, "lost (error-detecting mode), nothing changed")
    return bad or passed("refused in the error-detecting mode")


def _malformed_units(ctx: SatCtx, v: int) -> list[Sent]:
    craft = ctx.craft
    rng = random.Random(0x1C5)  # the same garbage every run
    frame = craft.frame(seq=v)
    cltu = craft.cltu(frame)
    units = [
        Sent("an empty datagram", b""),
        Sent("an acquisition sequence alone (16 octets 55)", b"\x55" * 16),
        Sent("64 random octets", garbage(rng, 64, b"\xeb\x90")),
        Sent(
            f"a CLTU of Type-AD frame N(S) {v} with a complemented start sequence (146f)",
            b"\x14\x6f" + cltu[2:],
        ),
        Sent(
            f"the start sequence and the first codeblock only of Type-AD frame N(S) {v}",
            cltu[: codeblock_offset(1)],
        ),
        Sent("a start sequence followed by 200 random octets", b"\xeb\x90" + garbage(rng, 200)),
    ]
    broken: list[tuple[str, Callable[[bytes], bytes]]] = [
        ("version 01", lambda b: bytes([b[0] | 0x40]) + b[1:]),
        ("bypass flag 0 with control command flag 1", lambda b: bytes([b[0] | 0x10]) + b[1:]),
        ("a frame length field 3 octets too long", _longer),
    ]
    for what, change in broken:
        raw = with_fecf(change(frame)) if ctx.config.tc_fecf else change(frame)
        units.append(Sent(f"Type-AD frame N(S) {v} with {what}", craft.cltu(raw)))
    for what, data in (
        ("an unknown control command (42)", b"\x42"),
        ("a 4-octet Set V(R) (82 00 05 00)", b"\x82\x00\x05\x00"),
    ):
        raw = craft.frame(TcFrameType.BC, data=data)
        units.append(Sent(f"Type-BC frame with {what}", craft.cltu(raw)))
    return units


def _longer(frame: bytes) -> bytes:
    length = ((frame[2] << 8 | frame[3]) & 0x3FF) + 3
    return frame[:2] + bytes([(frame[2] & 0xFC) | (length >> 8), length & 0xFF]) + frame[4:]


@case(
    "ACT-TC-MALFORMED-01",
    SatCtx,
    TC,
    "§4.1.2 (frame header rules) and 231.0-B-4 (CLTU), with 232.1-B-2 §6 (E9: invalid frame)",
    "Units that are not valid CLTUs or not valid frames are dropped, and the endpoint "
    "carries on: an empty datagram, an acquisition sequence, random octets, a CLTU without "
    "its start sequence or cut after one codeblock, frames of version 01, of the invalid "
    "type (bypass 0, control 1), with a wrong length field, Type-BC frames without a valid "
    "control command: V(R), the flags and the FARM-B counter do not change.",
    "tc",
)
def _malformed(ctx: SatCtx) -> Steps[Verdict]:
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    units = _malformed_units(ctx, s.report_value)
    sent = yield from _send(*units)
    bad = yield from _unchanged(ctx, sent, s, "all dropped, nothing changed")
    return bad or passed(f"{len(units)} malformed units dropped")


@case(
    "ACT-TC-WINDOW-01",
    SatCtx,
    COP1,
    "§6 (FARM-1: E3, N(S) in the positive window; E1 clears Retransmit)",
    "A Type-AD frame with N(S) = V(R) + 1 (a frame was lost) is discarded and sets "
    "Retransmit, V(R) unchanged; the frame in sequence that follows is accepted and clears "
    "Retransmit.",
    "cop1",
)
def _window_positive(ctx: SatCtx) -> Steps[Verdict]:
    if ctx.config.farm_window // 2 < 2:
        return not_applicable(f"FARM-1's window W = {ctx.config.farm_window}: no positive window")
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    v = s.report_value
    sent = yield from _send(ctx.craft.ad(v + 1, "(V(R) + 1)"))
    bad = yield from _unchanged(ctx, sent, replace(s, retransmit=True), "discarded, Retransmit set")
    if bad:
        return bad
    s = ctx.farm_state
    sent = yield from _send(ctx.craft.ad(v))
    bad = yield from _expect(
        ctx,
        sent,
        replace(s, report_value=(v + 1) % 256, retransmit=False),
        "accepted, Retransmit cleared",
    )
    return bad or passed(f"N(S) {(v + 1) % 256} discarded with Retransmit; N(S) {v} accepted")


@case(
    "ACT-TC-WINDOW-02",
    SatCtx,
    COP1,
    "§6 (FARM-1: E4, N(S) in the negative window)",
    "A Type-AD frame with N(S) = V(R) - 1 (a repeat of an accepted frame) is discarded: "
    "no Lockout, no Retransmit, V(R) unchanged.",
    "cop1",
)
def _window_negative(ctx: SatCtx) -> Steps[Verdict]:
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    v = s.report_value
    sent = yield from _send(ctx.craft.ad(v - 1, "(V(R) - 1)"))
    bad = yield from _unchanged(ctx, sent, s, "discarded, nothing changed")
    return bad or passed(f"N(S) {(v - 1) % 256} discarded")


@case(
    "ACT-COP-LOCKOUT-01",
    SatCtx,
    COP1,
    "§6 (FARM-1: E5 lockout area; E1 and E8 in Lockout; E7 Unlock)",
    "A Type-AD frame with N(S) = V(R) + 128 (the lockout area) sets Lockout; in Lockout a "
    "frame in sequence is discarded and Set V(R) changes only the FARM-B counter; Unlock "
    "clears Lockout, after which the frame in sequence is accepted.",
    "cop1",
)
def _lockout(ctx: SatCtx) -> Steps[Verdict]:
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    craft = ctx.craft
    v = s.report_value
    sent = yield from _send(craft.ad(v + 128, "(V(R) + 128: the lockout area)"))
    bad = yield from _unchanged(ctx, sent, replace(s, lockout=True), "discarded, Lockout set")
    if bad:
        return bad
    s = ctx.farm_state
    sent = yield from _send(craft.ad(v, "(in sequence, during Lockout)"))
    bad = yield from _unchanged(ctx, sent, s, "discarded in Lockout, nothing changed")
    if bad:
        return bad
    s = ctx.farm_state
    sent = yield from _send(craft.set_vr(v + 5))
    bad = yield from _unchanged(
        ctx,
        sent,
        replace(s, farm_b_counter=_counter(s, 1)),
        "not executed in Lockout: only the FARM-B counter advances",
    )
    if bad:
        return bad
    s = ctx.farm_state
    sent = yield from _send(craft.unlock())
    want = replace(s, lockout=False, wait=False, retransmit=False, farm_b_counter=_counter(s, 1))
    bad = yield from _expect(ctx, sent, want, "Lockout cleared")
    if bad:
        return bad
    s = ctx.farm_state
    sent = yield from _send(craft.ad(v))
    bad = yield from _expect(ctx, sent, replace(s, report_value=(v + 1) % 256), "accepted")
    return bad or passed(f"Lockout at N(S) {(v + 128) % 256}, held, cleared by Unlock")


# -- sat role: SDLS on the TC channel (given its security association and key) -------------------


def _sdls(
    ctx: SatCtx, *, needs_mac: bool = False, needs_counter: bool = False
) -> TcProtector | Verdict:
    """The tester's SDLS, or why the case does not apply."""
    sdls = ctx.craft.sdls
    if sdls is None:
        return not_applicable(
            "no SDLS security association given (--keys, with a scenario's or a profile's [sdls])"
        )
    if ctx.sdls_accepted is False:
        return not_applicable(
            "the endpoint did not take frames protected with the given association and key "
            "(SDLS-ACT-01): its refusals would say nothing"
        )
    sa = sdls.sa
    if needs_mac and not sdls.security.has_mac:
        return not_applicable(
            f"SA {sa.spi} is {sa.service!r}: without a MAC a damaged or wrongly keyed frame "
            "cannot be told from a good one"
        )
    if needs_counter and not sdls.security.counts:
        return not_applicable(f"SA {sa.spi} is 'clear': no anti-replay")
    return sdls


def _made(
    ctx: SatCtx,
    what: str,
    make: Callable[[bytes], bytes],
    kind: TcFrameType = TcFrameType.AD,
    seq: int = 0,
    data: bytes | None = None,
) -> Sent:
    """The CLTU of a plain frame of the channel under test passed through ``make``."""
    craft = ctx.craft
    return Sent(what, craft.cltu(make(craft.plain_frame(kind, seq, data=data))))


def _plain(raw: bytes) -> bytes:
    return raw


@case(
    "SDLS-ACT-01",
    SatCtx,
    SDLS,
    "(ProcessSecurity: a frame whose security header, MAC and counter verify is passed on), "
    "with 232.1-B-2 §6 (E1, E6)",
    "Frames protected under the TC channel's security association, with its key and fresh "
    "counters, are taken: two Type-AD frames in sequence advance V(R) by two and a Type-BD "
    "frame the FARM-B counter by one. The baseline of the SDLS cases: the endpoint takes "
    "the tester's protected frames.",
    "sdls",
)
def _sdls_good(ctx: SatCtx) -> Steps[Verdict]:
    sdls = _sdls(ctx)
    if isinstance(sdls, Verdict):
        return sdls
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        ctx.sdls_accepted = False  # its protected Unlock or frame in sequence was not taken
        return s
    v = s.report_value
    sent = yield from _send(
        _made(ctx, f"Type-AD frame N(S) {v}, protected", sdls.protect, seq=v),
        _made(ctx, f"Type-AD frame N(S) {(v + 1) % 256}, protected", sdls.protect, seq=v + 1),
        _made(ctx, "Type-BD frame, protected", sdls.protect, TcFrameType.BD),
    )
    want = replace(s, report_value=(v + 2) % 256, farm_b_counter=_counter(s, 1))
    bad = yield from _expect(ctx, sent, want, "all three verified and taken")
    ctx.sdls_accepted = bad is None
    if bad is not None and bad.evidence is not None:
        why = (
            "not taken: another key or association on the endpoint, or counters at or below "
            "those it took (--sdls-counter)"
        )
        e = bad.evidence
        return replace(bad, evidence=replace(e, note=f"{e.note}; {why}" if e.note else why))
    return passed(f"3 protected frames taken: N(R) {v} -> {(v + 2) % 256}, FARM-B +1")


@case(
    "SDLS-ACT-02",
    SatCtx,
    SDLS,
    "(ProcessSecurity: MAC verification; a frame that fails it is discarded)",
    "A protected frame with one bit flipped after protection (the FECF made valid again) is "
    "refused: a Type-AD frame with N(S) = V(R) with a bit of its MAC flipped, another with "
    "a bit of its (encrypted) data flipped, and a Type-BD frame with a bit of its MAC "
    "flipped leave V(R), the flags and the FARM-B counter as they were.",
    "sdls",
)
def _sdls_bad_mac(ctx: SatCtx) -> Steps[Verdict]:
    sdls = _sdls(ctx, needs_mac=True)
    if isinstance(sdls, Verdict):
        return sdls
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    v = s.report_value
    data = "ciphertext" if sdls.sa.service == "aead" else "data"
    mac, in_data = "a bit of its MAC flipped", f"a bit of its {data} flipped"
    note = "(protected, then damaged; the FECF valid)"
    sent = yield from _send(
        _made(ctx, f"Type-AD frame N(S) {v}, {mac} {note}", sdls.with_bad_mac, seq=v),
        _made(ctx, f"Type-AD frame N(S) {v}, {in_data} {note}", sdls.with_bad_data, seq=v),
        _made(ctx, f"Type-BD frame, {mac} {note}", sdls.with_bad_mac, TcFrameType.BD),
    )
    bad = yield from _unchanged(ctx, sent, s, "all refused, nothing changed")
    return bad or passed("3 frames with a flipped MAC or data bit refused")


@case(
    "SDLS-ACT-03",
    SatCtx,
    SDLS,
    "(ProcessSecurity: anti-replay; a sequence number or IV at or below the last accepted "
    "is refused), with 232.1-B-2 §6 (E6, E8)",
    "A protected frame the endpoint took is refused when sent again: a Type-BD frame (the "
    "FARM-B counter does not move); a Type-AD frame after a protected Set V(R) has put "
    "V(R) back to its N(S), where FARM-1 alone would take it (V(R) does not move); and that "
    "Set V(R) once V(R) has moved on (V(R) and the FARM-B counter do not move).",
    "sdls",
)
def _sdls_replay(ctx: SatCtx) -> Steps[Verdict]:
    sdls = _sdls(ctx, needs_counter=True)
    if isinstance(sdls, Verdict):
        return sdls
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    # a Type-BD frame taken, then sent again
    bd = _made(ctx, "Type-BD frame, protected", sdls.protect, TcFrameType.BD)
    sent = yield from _send(bd)
    bad = yield from _expect(ctx, sent, replace(s, farm_b_counter=_counter(s, 1)), "taken")
    if bad:
        return _cannot("have a protected Type-BD frame taken", bad)
    sent = yield from _send(replace(bd, what="the same Type-BD frame again (a replay)"))
    bad = yield from _unchanged(ctx, sent, ctx.farm_state, "refused, nothing changed")
    if bad:
        return bad
    # a Type-AD frame taken; a protected Set V(R) back to its N(S); the frame again
    s = ctx.farm_state
    v = s.report_value
    ad = _made(ctx, f"Type-AD frame N(S) {v}, protected", sdls.protect, seq=v)
    sent = yield from _send(ad)
    bad = yield from _expect(ctx, sent, replace(s, report_value=(v + 1) % 256), "taken")
    if bad:
        return _cannot(f"have a protected Type-AD frame N(S) {v} taken", bad)
    s = ctx.farm_state
    set_vr = _made(
        ctx, f"Type-BC Set V(R) {v}, protected", sdls.protect, TcFrameType.BC, data=SetVr(v).pack()
    )
    sent = yield from _send(set_vr)
    want = replace(s, report_value=v, farm_b_counter=_counter(s, 1))
    bad = yield from _expect(ctx, sent, want, "executed")
    if bad:
        return _cannot(f"have a protected Set V(R) {v} executed", bad)
    again = f"the Type-AD frame N(S) {v} again (a replay, with V(R) = {v})"
    sent = yield from _send(replace(ad, what=again))
    bad = yield from _unchanged(ctx, sent, ctx.farm_state, "refused, V(R) unchanged")
    if bad:
        return bad
    # V(R) moves on, and the Set V(R) comes again
    s = ctx.farm_state
    sent = yield from _send(_made(ctx, f"Type-AD frame N(S) {v}, protected", sdls.protect, seq=v))
    bad = yield from _expect(ctx, sent, replace(s, report_value=(v + 1) % 256), "taken")
    if bad:
        return _cannot(f"have a fresh protected Type-AD frame N(S) {v} taken", bad)
    sent = yield from _send(replace(set_vr, what=f"the Type-BC Set V(R) {v} again (a replay)"))
    bad = yield from _unchanged(ctx, sent, ctx.farm_state, "refused, nothing changed")
    return bad or passed("a Type-BD frame, a Type-AD frame and a Set V(R) refused when sent again")


@case(
    "SDLS-ACT-04",
    SatCtx,
    SDLS,
    "(ProcessSecurity: a frame whose SPI names no security association is discarded)",
    "Frames protected with the right key and fresh counters under an SPI the endpoint does "
    "not know are refused: a Type-AD frame with N(S) = V(R) and a Type-BD frame leave V(R), "
    "the flags and the FARM-B counter as they were.",
    "sdls",
)
def _sdls_unknown_spi(ctx: SatCtx) -> Steps[Verdict]:
    sdls = _sdls(ctx)
    if isinstance(sdls, Verdict):
        return sdls
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    v = s.report_value
    spi = sdls.security.unknown_spi
    note = f"protected under SPI {spi} (unknown; the channel's is {sdls.sa.spi})"
    sent = yield from _send(
        _made(ctx, f"Type-AD frame N(S) {v}, {note}", sdls.with_unknown_spi, seq=v),
        _made(ctx, f"Type-BD frame, {note}", sdls.with_unknown_spi, TcFrameType.BD),
    )
    bad = yield from _unchanged(ctx, sent, s, "both refused, nothing changed")
    return bad or passed(f"2 frames under SPI {spi} refused")


@case(
    "SDLS-ACT-05",
    SatCtx,
    SDLS,
    "(ProcessSecurity: MAC verification with the association's key)",
    "Frames protected under the right SPI with fresh counters but another key are refused: "
    "a Type-AD frame with N(S) = V(R) and a Type-BD frame leave V(R), the flags and the "
    "FARM-B counter as they were.",
    "sdls",
)
def _sdls_wrong_key(ctx: SatCtx) -> Steps[Verdict]:
    sdls = _sdls(ctx, needs_mac=True)
    if isinstance(sdls, Verdict):
        return sdls
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    v = s.report_value
    note = f"protected under SPI {sdls.sa.spi} with another key"
    sent = yield from _send(
        _made(ctx, f"Type-AD frame N(S) {v}, {note}", sdls.with_wrong_key, seq=v),
        _made(ctx, f"Type-BD frame, {note}", sdls.with_wrong_key, TcFrameType.BD),
    )
    bad = yield from _unchanged(ctx, sent, s, "both refused, nothing changed")
    return bad or passed("2 frames under another key refused")


@case(
    "SDLS-ACT-06",
    SatCtx,
    SDLS,
    "(ProcessSecurity on Type-BC frames), with 232.1-B-2 §6 (E7 Unlock, E8 Set V(R))",
    "Forged COP-1 control commands are refused: a Set V(R) that would move V(R), without "
    "SDLS (and, where the association has a MAC, under another key), leaves V(R) and the "
    "FARM-B counter as they were; in Lockout (set by a protected frame in the lockout "
    "area), a forged Unlock leaves FARM-1 in Lockout.",
    "sdls",
)
def _sdls_forged_control(ctx: SatCtx) -> Steps[Verdict]:
    sdls = _sdls(ctx)
    if isinstance(sdls, Verdict):
        return sdls
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    craft = ctx.craft
    v = s.report_value
    keyed = sdls.security.has_mac
    set_vr = [
        _made(ctx, f"Type-BC Set V(R) {(v + 5) % 256} without SDLS", _plain, TcFrameType.BC,
              data=SetVr((v + 5) % 256).pack()),
    ]  # fmt: skip
    unlock = [_made(ctx, "Type-BC Unlock without SDLS", _plain, TcFrameType.BC)]
    if keyed:
        set_vr.append(
            _made(ctx, f"Type-BC Set V(R) {(v + 9) % 256} under another key",
                  sdls.with_wrong_key, TcFrameType.BC, data=SetVr((v + 9) % 256).pack())
        )  # fmt: skip
        unlock.append(
            _made(ctx, "Type-BC Unlock under another key", sdls.with_wrong_key, TcFrameType.BC)
        )
    sent = yield from _send(*set_vr)
    bad = yield from _unchanged(ctx, sent, s, "refused: V(R) and the FARM-B counter unchanged")
    if bad:
        return bad
    s = ctx.farm_state
    sent = yield from _send(craft.ad(v + 128, "(V(R) + 128: the lockout area), protected"))
    bad = yield from _unchanged(ctx, sent, replace(s, lockout=True), "Lockout set")
    if bad:
        return _cannot("put FARM-1 in Lockout with a protected frame", bad)
    sent = yield from _send(*unlock)
    bad = yield from _unchanged(ctx, sent, ctx.farm_state, "refused: still in Lockout")
    return bad or passed(f"{len(set_vr)} forged Set V(R) and {len(unlock)} forged Unlock refused")


@case(
    "SDLS-ACT-07",
    SatCtx,
    SDLS,
    "(ProcessSecurity: a frame of a virtual channel under SDLS without a valid security "
    "header is discarded)",
    "Frames without SDLS on the channel under SDLS are refused: a plain Type-AD frame with "
    "N(S) = V(R) and a plain Type-BD frame leave V(R), the flags and the FARM-B counter as "
    "they were.",
    "sdls",
)
def _sdls_plain(ctx: SatCtx) -> Steps[Verdict]:
    sdls = _sdls(ctx)
    if isinstance(sdls, Verdict):
        return sdls
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    v = s.report_value
    sent = yield from _send(
        _made(ctx, f"Type-AD frame N(S) {v} without SDLS", _plain, seq=v),
        _made(ctx, "Type-BD frame without SDLS", _plain, TcFrameType.BD),
    )
    bad = yield from _unchanged(ctx, sent, s, "both refused, nothing changed")
    return bad or passed("2 plain frames refused")


@case(
    "ACT-ALIVE-01",
    SatCtx,
    COP1,
    "§6 (FARM-1: E1), after everything above",
    "After all of the above the endpoint still answers: CLCWs keep coming and a Type-AD "
    "frame in sequence is accepted.",
    "cop1",
)
def _alive(ctx: SatCtx) -> Steps[Verdict]:
    s = yield from _start(ctx)
    if isinstance(s, Verdict):
        return s
    v = s.report_value
    sent = yield from _send(ctx.craft.ad(v))
    bad = yield from _expect(ctx, sent, replace(s, report_value=(v + 1) % 256), "accepted")
    if bad:
        return bad
    more = yield Wait(ctx.good, ctx.config.timeout_s, count=3)
    if more is None:
        return failed(sent, "CLCWs still coming", "fewer than 3 CLCWs since")
    return passed(f"N(R) {v} -> {(v + 1) % 256}; {len(ctx.seen)} TM units in all")


# -- ground role --------------------------------------------------------------------------------


def _quiet(ctx: GroundCtx) -> Steps[list[Uplink] | None]:
    """Until the ground has sent nothing for ``quiet_s``; the CLTUs that came meanwhile
    (None if it did not go quiet within the timeout)."""
    cfg = ctx.config
    mark = len(ctx.seen)
    ups = ctx.uplinks_since(0)
    last = ups[-1].t_s if ups else 0.0
    if ctx.t_s - last >= cfg.quiet_s and ctx.t_s >= cfg.quiet_s:
        return []  # quiet already
    until = ctx.t_s + cfg.timeout_s + cfg.quiet_s
    while ctx.t_s < until:
        got = yield Wait(lambda o: isinstance(o, Uplink), cfg.quiet_s)
        if got is None:
            return ctx.uplinks_since(mark)
    return None


def _is_unlock(o: object) -> bool:
    return isinstance(o, Uplink) and isinstance(o.command, Unlock)


def _is_control(o: object) -> bool:
    """A Type-BC frame: what a ground sends to recover from a Lockout it believes in."""
    return isinstance(o, Uplink) and o.frame is not None and o.frame.frame_type is TcFrameType.BC


def _answered_lockout(ctx: GroundCtx, what: str) -> Steps[Verdict]:
    """Put the tester's FARM-1 in Lockout and wait for the ground's Unlock; the verdict."""
    cfg = ctx.config
    yield from _quiet(ctx)  # a ground still initiating finishes (a busy one never is quiet)
    mark = len(ctx.seen)
    t_lock = ctx.t_s
    ctx.lockout()
    sent = f"TM frames whose CLCW reports Lockout ({clcw_text(ctx.farm.clcw())})"
    unlock = yield Wait(_is_unlock, cfg.timeout_s)
    came = ctx.uplinks_since(mark)
    if unlock is None:
        return failed(
            sent,
            f"a Type-BC Unlock within {cfg.timeout_s:g} s ({what})",
            came[0].describe() if came else "nothing",
            f"{len(came)} CLTU(s) in all" if came else "",
        )
    yield from _quiet(ctx)  # the ground completes its initiation on the next CLCW
    if ctx.farm.lockout:
        return failed(
            sent,
            "FARM-1 out of Lockout once the Unlock is executed",
            clcw_text(ctx.farm.clcw()),
            "the Unlock did not reach the tester's FARM-1",
        )
    return passed(f"Unlock {max(0.0, unlock.t_s - t_lock):.3f} s after the Lockout")


@case(
    "ACT-GND-CLCW-01",
    GroundCtx,
    COP1,
    "§5 (FOP-1: E14, a CLCW reporting Lockout), §4.2 (CLCW)",
    "The ground reads the CLCW in the OCF of its spacecraft's TM frames: when FARM-1 "
    "reports Lockout, the AD service stops (E14) and the ground, recovering, sends a "
    "Type-BC Unlock.",
    "cop1",
)
def _g_probe(ctx: GroundCtx) -> Steps[Verdict]:
    verdict = yield from _answered_lockout(ctx, "a ground that recovers from Lockout")
    if verdict.status == "pass":
        ctx.reacts = True
    return verdict


@case(
    "ACT-GND-T1-01",
    GroundCtx,
    COP1,
    "§5 (FOP-1: T1 expiry, E16/E104: the unconfirmed frame is transmitted again)",
    "A Type-BC frame that no CLCW confirms (the spacecraft did not get it) is transmitted "
    "again when T1 expires.",
    "cop1",
)
def _g_t1(ctx: GroundCtx) -> Steps[Verdict]:
    if not ctx.reacts:
        return not_applicable("the ground sent no Unlock to a Lockout (ACT-GND-CLCW-01)")
    cfg = ctx.config
    yield from _quiet(ctx)
    mark = len(ctx.seen)
    ctx.deaf = 1  # the next frame is "lost on the uplink"
    ctx.lockout()
    sent = "TM frames whose CLCW reports Lockout; the ground's first answer is lost"
    first = yield Wait(lambda o: _is_unlock(o) and not o.problem, cfg.timeout_s)
    if not isinstance(first, Uplink):  # None: no Unlock came
        ctx.deaf = 0
        return failed(sent, "a Type-BC Unlock", "nothing")
    again = yield Wait(lambda o: isinstance(o, Uplink) and o.frame == first.frame, cfg.timeout_s)
    ctx.deaf = 0
    yield from _quiet(ctx)
    if again is None:
        came = ctx.uplinks_since(mark)
        return failed(
            sent,
            f"{first.what()} transmitted again within {cfg.timeout_s:g} s",
            "; ".join(o.describe() for o in came[:3]),
            f"{len(came)} CLTU(s) in all",
        )
    return passed(f"{first.what()} again after {again.t_s - first.t_s:.3f} s")


def _ignored(
    ctx: GroundCtx, sent: str, make: Callable[[], list[Sent]], rounds: int = 3
) -> Steps[Verdict]:
    """Send ``make()`` units ``rounds`` times between the regular TM frames: no Type-BC
    frame (no Unlock, no Set V(R)) may come up in reply. The verdict."""
    if not ctx.reacts:
        return not_applicable(
            "the ground sent no Unlock to a valid Lockout (ACT-GND-CLCW-01): a refusal "
            "cannot be told from indifference"
        )
    cfg = ctx.config
    yield from _quiet(ctx)
    mark = len(ctx.seen)
    for _ in range(rounds):
        yield Send(tuple(make()))
        yield Sleep(cfg.interval_s)
    yield Sleep(cfg.quiet_s)
    came = [o for o in ctx.uplinks_since(mark) if _is_control(o)]
    if came:
        return failed(
            sent,
            f"no Type-BC frame in reply (within {cfg.quiet_s:g} s)",
            came[0].describe(),
            f"{len(came)} in reply",
        )
    return passed(f"{rounds} rounds ignored")


def _lockout_clcw(ctx: GroundCtx, vcid: int | None = None) -> Clcw:
    return ctx.clcw(lockout=True, vcid=vcid)


@case(
    "ACT-GND-SCID-01",
    GroundCtx,
    TM,
    "§4.1.2.2 (spacecraft identifier), with 232.1-B-2 §4.2 (the CLCW of one spacecraft)",
    "TM frames of another spacecraft are not the ground's: a CLCW in them that reports "
    "Lockout changes nothing, no Type-BC frame is sent in reply.",
    "tm",
)
def _g_scid(ctx: GroundCtx) -> Steps[Verdict]:
    other = other_scid(ctx.scid)

    def make() -> list[Sent]:
        frame = ctx.tm_frame(_lockout_clcw(ctx), other=True)
        return [Sent(f"TM frame of SCID {other:#x} with a Lockout CLCW", ctx.cadu(frame))]

    verdict = yield from _ignored(
        ctx, f"TM frames of SCID {other:#x} whose CLCW reports Lockout", make
    )
    return verdict


@case(
    "ACT-GND-CLCW-VC-01",
    GroundCtx,
    COP1,
    "§4.2 (CLCW: virtual channel identifier), §5 (one FOP-1 per virtual channel)",
    "A CLCW that reports on another TC virtual channel does not act on this one: a Lockout "
    "reported for another VC changes nothing, no Type-BC frame is sent in reply.",
    "cop1",
)
def _g_vc(ctx: GroundCtx) -> Steps[Verdict]:
    other = (ctx.config.vcid + 1) % 64

    def make() -> list[Sent]:
        frame = ctx.tm_frame(_lockout_clcw(ctx, vcid=other))
        return [Sent(f"TM frame with a Lockout CLCW of VC {other}", ctx.cadu(frame))]

    verdict = yield from _ignored(ctx, f"TM frames whose CLCW reports Lockout on VC {other}", make)
    return verdict


@case(
    "ACT-GND-FECF-01",
    GroundCtx,
    TM,
    "§4.1.6 (frame error control field)",
    "A TM frame whose FECF does not match is not used (its Reed-Solomon codewords are "
    "valid): the Lockout its CLCW reports changes nothing.",
    "tm",
)
def _g_fecf(ctx: GroundCtx) -> Steps[Verdict]:
    if not ctx.config.tm_fecf:
        return not_applicable("the profile's TM frames carry no FECF")

    def make() -> list[Sent]:
        frame = flip_bits(ctx.tm_frame(_lockout_clcw(ctx)), [(-1, 0)])
        return [Sent("TM frame with a bad FECF and a Lockout CLCW", ctx.cadu(frame))]

    verdict = yield from _ignored(ctx, "TM frames with a bad FECF whose CLCW reports Lockout", make)
    return verdict


def _rs_broken(ctx: GroundCtx, frame: bytes) -> bytes:
    """The CADU of ``frame`` with every check symbol damaged (the frame's own octets
    intact): more errors than any codeword corrects; checked with the project's decoder."""
    cadu = ctx.cadu(frame)
    head = len(ctx.config.cadu.asm) + ctx.config.tm_frame_length
    for mask in (0xFF, 0xA5, 0x5A, 0x3C):
        broken = cadu[:head] + bytes(b ^ mask for b in cadu[head:])
        if ctx.rx.receive_cadu(broken) is None:
            return broken
    raise RuntimeError("could not make an uncorrectable CADU")


@case(
    "ACT-GND-RS-01",
    GroundCtx,
    TM_CODING,
    "§4 (Reed-Solomon: a codeword that cannot be corrected loses its frame)",
    "A CADU whose Reed-Solomon codewords cannot be corrected is not used: the Lockout "
    "reported by the CLCW in its (intact) frame changes nothing.",
    "cadu",
)
def _g_rs(ctx: GroundCtx) -> Steps[Verdict]:
    if not ctx.config.cadu.rs_e:
        return not_applicable("the profile's TM CADUs have no Reed-Solomon code")

    def make() -> list[Sent]:
        frame = ctx.tm_frame(_lockout_clcw(ctx))
        return [
            Sent(
                "CADU with every check symbol damaged, its frame with a Lockout CLCW",
                _rs_broken(ctx, frame),
            )
        ]

    verdict = yield from _ignored(
        ctx, "CADUs beyond Reed-Solomon correction whose CLCW reports Lockout", make
    )
    return verdict


@case(
    "ACT-GND-MALFORMED-01",
    GroundCtx,
    TM_CODING,
    "§9 (attached sync marker), §4 (codeblock), with 132.0-B-3 §4.1.2.2 (version)",
    "Units that are not valid CADUs or TM frames are dropped, and the ground carries on: "
    "an empty datagram, random octets, an ASM alone, a CADU cut in half, a random codeblock, "
    "a frame of version 01 (FECF and codewords valid) whose CLCW reports Lockout.",
    "cadu",
)
def _g_malformed(ctx: GroundCtx) -> Steps[Verdict]:
    rng = random.Random(0xCAD)
    asm = ctx.config.cadu.asm
    length = len(asm) + ctx.config.cadu.codeblock_length(ctx.config.tm_frame_length)

    def make() -> list[Sent]:
        locked = ctx.tm_frame(_lockout_clcw(ctx))
        version = bytes([locked[0] | 0x40]) + locked[1:]
        if ctx.config.tm_fecf:
            version = with_fecf(version)
        return [
            Sent("an empty datagram", b""),
            Sent(f"{length} random octets", garbage(rng, length, asm)),
            Sent("an ASM alone", asm),
            Sent("the first half of a CADU with a Lockout CLCW", ctx.cadu(locked)[: length // 2]),
            Sent("an ASM and a random codeblock", asm + garbage(rng, length - len(asm))),
            Sent("TM frame of version 01 with a Lockout CLCW", ctx.cadu(version)),
        ]

    verdict = yield from _ignored(ctx, "malformed CADUs and TM frames", make)
    return verdict


@case(
    "ACT-GND-ALIVE-01",
    GroundCtx,
    COP1,
    "§5 (FOP-1: E14), after everything above",
    "After all of the above the ground still reads the CLCW: a Lockout is answered with an "
    "Unlock again.",
    "cop1",
)
def _g_alive(ctx: GroundCtx) -> Steps[Verdict]:
    if not ctx.reacts:
        return not_applicable("the ground sent no Unlock to a Lockout (ACT-GND-CLCW-01)")
    verdict = yield from _answered_lockout(ctx, "as in ACT-GND-CLCW-01")
    return verdict


@case(
    "ACT-GND-CLTU-01",
    GroundCtx,
    TC_CODING,
    "(CLTU: start sequence, BCH codeblocks, tail sequence), with 232.0-B-4 §4.1 (TC frame)",
    "Every CLTU the ground sent during the run is well formed: the start sequence, "
    "codeblocks without a bit error, the tail sequence, and a TC frame with a valid header "
    "and FECF, the spacecraft's SCID and the COP-1 virtual channel.",
    "cltu",
)
def _g_cltu(ctx: GroundCtx) -> Verdict:
    ups = [o for o in ctx.seen if isinstance(o, Uplink)]
    if not ups:
        return not_applicable("the ground sent no CLTU during the run")
    bad = [o for o in ups if o.problem]
    if bad:
        return failed(
            "(everything above)",
            "well-formed CLTUs only",
            bad[0].describe(),
            f"{len(bad)} of {len(ups)} CLTUs",
        )
    kinds = sorted({o.what().split(",")[0] for o in ups})
    return passed(f"{len(ups)} CLTUs: {', '.join(kinds)}")


def select_cases(role: str, spec: str | None = None) -> list[Case]:
    """The cases of ``role``, all or those whose identifiers match ``spec``
    (comma-separated, ``*`` patterns allowed), in the suite's order. The first case of
    a role always runs: the others build on what it learns (the spacecraft's CLCW, or
    whether the ground answers a Lockout)."""
    import fnmatch  # noqa: PLC0415

    from linkstack.errors import ConfigError  # noqa: PLC0415

    cases = SAT_CASES if role == SAT else GROUND_CASES
    if not spec:
        return list(cases)
    wanted = {cases[0].id}
    for pattern in (s.strip().upper() for s in spec.split(",") if s.strip()):
        hits = [c.id for c in cases if fnmatch.fnmatchcase(c.id, pattern)]
        if not hits:
            raise ConfigError(
                "active",
                "--rules",
                f"no {role} case {pattern!r}; see `linkstack conform --list-rules --role {role}`",
            )
        wanted.update(hits)
    return [c for c in cases if c.id in wanted]
