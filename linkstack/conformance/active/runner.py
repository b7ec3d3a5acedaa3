"""Active conformance: crafted units sent to a live endpoint, judged by what comes back.

``linkstack conform --target udp://HOST:PORT --role sat|ground`` plays the other end
of a link against a running endpoint and checks how it reacts:

- ``--role sat``: the tester is the ground and the channel. It sends CLTUs (valid,
  out of window, in the lockout area, with another SCID or VCID, a bad FECF, bad BCH
  codeblocks, plain garbage) to the spacecraft's uplink port, and reads the TM CADUs
  the spacecraft sends back (ASM, derandomizer, Reed-Solomon, TM frame, its OCF): each
  case is judged from FARM-1's CLCW (N(R), Lockout, Wait, Retransmit, FARM-B counter).
- ``--role ground``: the tester is the spacecraft. It runs a FARM-1 of its own (the
  project's :class:`linkstack.ccsds.cop1.farm.Farm`) fed by the CLTUs the ground sends, reports
  it in the OCF of a TM frame every ``interval_s``, and checks that the ground reads
  the CLCW (a Lockout is answered), retransmits an unconfirmed frame on T1, ignores
  TM it must not use (another SCID, a bad FECF, an uncorrectable Reed-Solomon
  codeword, a CLCW of another virtual channel, garbage), and sends only well-formed
  CLTUs.

What the ground role does not check, and why: all it can observe is the CLTUs the
ground sends, and an idle ground sends only control frames (its initiation, Unlocks).
The reactions that need Type-AD frames in flight (retransmission after a CLCW with
Retransmit set, E8-E12; N(R) acknowledging the Sent Queue; the window K) would need
queries going up, which come through the ground's own application interfaces (MQTT,
its queue), not through the link; the passive rules (``COP-NS-01``, ``COP-RTX-01``,
``COP-RTX-02``, ``COP-LOCK-01``) judge them on a capture of a busy ground. T1 is
checked on a Type-BC frame instead (``ACT-GND-T1-01``). Nor can the tester see what
the ground does with the packets of the TM frames it sends.

The cases (:mod:`.active_cases`) are sans-I/O: each is a generator that yields
actions (:class:`Send`, :class:`Wait`, :class:`Sleep`) and gets back what they
produced (the observation a :class:`Wait` was waiting for, or None when its time ran
out); it ends by returning a :class:`Verdict`. A driver carries the actions out:
:class:`LoopbackDriver` (here) against an in-process endpoint on a simulated clock,
:class:`linkstack.conformance.active.udp.UdpDriver` against a live one over UDP.
The driver hands every unit that comes back to the context (:meth:`Ctx.observe`),
which decodes it into an observation (:class:`Downlink`, :class:`Uplink`) and keeps
it in :attr:`Ctx.seen`; a ground-role context also makes the TM frame the driver
sends every ``interval_s`` (:meth:`Ctx.tick`).
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Protocol, TypeGuard, TypeVar

from linkstack.ccsds.coding.chains import CaduCoding, CaduReceiver, CaduTransmitter
from linkstack.ccsds.coding.cltu import (
    CODEBLOCK_LEN,
    TAIL_SEQUENCE,
    CltuEnd,
    DecodeMode,
    decode_cltu,
    encode_cltu,
)
from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.commands import SetVr, Unlock, unpack_control_command
from linkstack.ccsds.cop1.farm import Farm
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.spp import PacketType, SpacePacket
from linkstack.ccsds.tc import TcFrame, TcFrameType
from linkstack.ccsds.tm import TmConfig, TmFrame, TmMasterChannel
from linkstack.errors import DecodeError

if TYPE_CHECKING:  # SDLS is loaded only when the run has an association (cryptography)
    from linkstack.conformance.active.sdls import TcProtector, TcSecurity

SAT: Final = "sat"
GROUND: Final = "ground"
ROLES = (SAT, GROUND)

TEST_APID = 0x7F0  # the packets the tester sends: an APID the emulator does not serve
SET_VR_START = 254  # V*(R) of the first Set V(R): the frames that follow wrap past 255

PASS, FAIL, NA, ERROR = "pass", "fail", "n/a", "error"


# -- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveConfig:
    """What the tester must know of the link (the managed parameters of both ends)."""

    role: str = SAT
    scid: int | None = None  # None: learnt from the first TM frame (sat role only)
    vcid: int = 0  # the TC virtual channel (COP-1) under test
    map_id: int = 0
    farm_window: int = 64  # W; only W/2 >= 2 matters (the cases stay near V(R) or at +128)
    tc_fecf: bool = True
    tc_segment_header: bool = True
    tc_randomize: bool = True
    cltu_mode: DecodeMode = DecodeMode.CORRECT
    tm_frame_length: int = 1115
    tm_fecf: bool = True
    tm_idle_vcid: int = 7
    cadu: CaduCoding = field(default_factory=CaduCoding)
    timeout_s: float = 10.0  # the longest wait for one expected response
    interval_s: float = 0.2  # ground role: one TM frame (with the CLCW) this often
    quiet_s: float = 0.6  # ground role: this long without a CLTU counts as silence
    notes: tuple[str, ...] = ()  # where the values came from, for the report
    # the port to send from, as the endpoint's real peer does (a scenario's port plan:
    # the daemons take a link's units only from its peer); None: any
    source_port: int | None = None
    # the daemons' link header (a scenario's port plan): the link index of the units it
    # sends, and of those it takes (others on the port are not its); None: bare units
    links: tuple[int, int] | None = None
    # sat role: SDLS on the TC channel under test (its SA and keys); None: frames plain
    sdls: TcSecurity | None = None


# -- actions (what a case asks the driver to do) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """One crafted unit and what it is, in words."""

    what: str
    unit: bytes


@dataclass(frozen=True, slots=True)
class Send:
    units: tuple[Sent, ...]


@dataclass(frozen=True, slots=True)
class Wait:
    """Until the ``count``-th observation, among those that arrive from now on, that
    ``match`` accepts; the driver answers with it, or None after ``timeout_s``."""

    match: Callable[[Observation], bool]
    timeout_s: float
    count: int = 1


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


Action = Send | Wait | Sleep


# -- verdicts ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """The first failing step of a case: what was sent, expected, and what came back."""

    sent: str
    expected: str
    found: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str  # PASS, FAIL, NA, ERROR
    detail: str = ""  # pass: what was seen; n/a: why; error: what broke
    evidence: Evidence | None = None


def passed(detail: str = "") -> Verdict:
    return Verdict(PASS, detail)


def failed(sent: str, expected: str, found: str, note: str = "") -> Verdict:
    return Verdict(FAIL, evidence=Evidence(sent, expected, found, note))


def not_applicable(reason: str) -> Verdict:
    return Verdict(NA, reason)


T = TypeVar("T")
Steps = Generator[Action, "Observation | None", T]
"""What a case (or a step of one) is: it yields actions and gets back what each produced
(the observation a :class:`Wait` was waiting for, None otherwise); it returns a ``T``."""

CaseRun = Callable[["Ctx"], "Steps[Verdict] | Verdict"]
"""A case run on a context: its steps, or its verdict at once (a case that needs no action)."""


@dataclass(frozen=True)
class Case:
    """One active test case: its identifier, the standard and section it checks, and
    the generator that runs it."""

    id: str
    role: str
    standard: str
    section: str
    statement: str
    layer: str
    run: CaseRun = field(repr=False, compare=False)

    @property
    def reference(self) -> str:
        return f"{self.standard} {self.section}"


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    verdict: Verdict
    sent: int  # units sent during the case
    seconds: float

    @property
    def status(self) -> str:
        return self.verdict.status


# -- observations ---------------------------------------------------------------------------------


def clcw_text(c: Clcw) -> str:
    """The fields of a CLCW that COP-1 acts on, in one line."""
    return (
        f"N(R) {c.report_value}, Lockout {int(c.lockout)}, Wait {int(c.wait)}, "
        f"Retransmit {int(c.retransmit)}, FARM-B counter {c.farm_b_counter}"
    )


COP_FIELDS = ("report_value", "lockout", "wait", "retransmit", "farm_b_counter")
_FIELD_NAMES = {
    "report_value": "N(R)",
    "lockout": "Lockout",
    "wait": "Wait",
    "retransmit": "Retransmit",
    "farm_b_counter": "FARM-B counter",
}


def clcw_diff(expected: Clcw, found: Clcw) -> list[str]:
    """The COP-1 fields in which ``found`` differs from ``expected``."""
    out = []
    for name in COP_FIELDS:
        a, b = getattr(expected, name), getattr(found, name)
        if a != b:
            out.append(f"{_FIELD_NAMES[name]} {int(b)} (expected {int(a)})")
    return out


def same_cop_state(a: Clcw, b: Clcw) -> bool:
    return all(getattr(a, n) == getattr(b, n) for n in COP_FIELDS)


@dataclass(frozen=True, slots=True)
class Downlink:
    """A TM CADU from the spacecraft (sat role), decoded down to its CLCW."""

    index: int
    t_s: float
    size: int
    clcw: Clcw | None = None
    scid: int | None = None
    tm_vcid: int | None = None
    symbols_corrected: int = 0
    problem: str = ""  # why there is no CLCW ("" when there is one)

    def describe(self) -> str:
        head = f"TM unit #{self.index} at {self.t_s:.3f} s"
        if self.clcw is None:
            return f"{head}: {self.problem}"
        return f"{head}: {clcw_text(self.clcw)} (SCID {self.scid:#x}, CLCW of VC {self.clcw.vcid})"


@dataclass(frozen=True, slots=True)
class Uplink:
    """A CLTU from the ground (ground role), decoded strictly."""

    index: int
    t_s: float
    size: int
    frame: TcFrame | None = None
    command: Unlock | SetVr | None = None
    problem: str = ""  # what is wrong with the unit ("" when nothing is)

    def what(self) -> str:
        f = self.frame
        if f is None:
            return "an undecodable unit"
        if f.frame_type is TcFrameType.BC:
            if isinstance(self.command, Unlock):
                name = "Type-BC Unlock"
            elif isinstance(self.command, SetVr):
                name = f"Type-BC Set V(R) {self.command.vr}"
            else:
                name = "Type-BC frame (no valid control command)"
        elif f.frame_type is TcFrameType.BD:
            name = "Type-BD frame"
        else:
            name = f"Type-AD frame N(S) {f.seq}"
        return f"{name}, SCID {f.scid:#x}, VC {f.vcid}"

    def describe(self) -> str:
        text = f"CLTU #{self.index} at {self.t_s:.3f} s ({self.size} octets): {self.what()}"
        return f"{text}; {self.problem}" if self.problem else text


Observation = Downlink | Uplink
"""What a context makes of a unit that comes back (a sat-role context: Downlinks only;
a ground-role one: Uplinks only)."""


class GoodDownlink(Protocol):
    """A :class:`Downlink` that :meth:`SatCtx.good` accepts: it has its CLCW."""

    @property
    def t_s(self) -> float: ...

    @property
    def clcw(self) -> Clcw: ...

    def describe(self) -> str: ...


# -- crafting ------------------------------------------------------------------------------------


def with_fecf(frame: bytes) -> bytes:
    """``frame`` (FECF included) with its FECF made valid again."""
    return frame[:-2] + crc16_ccitt(frame[:-2]).to_bytes(2, "big")


def flip_bits(unit: bytes, positions: Sequence[tuple[int, int]]) -> bytes:
    """``unit`` with bit ``bit`` (0 = least significant) of octet ``index`` flipped, for
    each (index, bit)."""
    buf = bytearray(unit)
    for index, bit in positions:
        buf[index] ^= 1 << bit
    return bytes(buf)


class TcCrafter:
    """TC frames and their CLTUs, valid or broken on purpose, built with the project's
    own encoders (:class:`TcFrame`, :func:`encode_cltu`)."""

    def __init__(self, config: ActiveConfig, scid: int) -> None:
        self.config = config
        self.scid = scid
        self._count = 0
        # SDLS: every frame of the channel under test protected, unless asked plain
        self.sdls: TcProtector | None = None
        if config.sdls is not None:
            from linkstack.conformance.active.sdls import TcProtector  # noqa: PLC0415

            self.sdls = TcProtector(
                config.sdls, fecf=config.tc_fecf, segment_header=config.tc_segment_header
            )

    def packet(self) -> bytes:
        """A small Space Packet on :data:`TEST_APID`, each with the next sequence count."""
        n = self._count
        self._count = (n + 1) % 16384
        return SpacePacket(
            TEST_APID, b"linkstack conform %05d" % n, PacketType.TC, seq_count=n
        ).pack()

    def frame(
        self,
        kind: TcFrameType = TcFrameType.AD,
        seq: int = 0,
        *,
        scid: int | None = None,
        vcid: int | None = None,
        data: bytes | None = None,
        plain: bool = False,
    ) -> bytes:
        """A TC frame; with SDLS, protected when it is on the channel under test and
        not asked ``plain``."""
        raw = self.plain_frame(kind, seq, scid=scid, vcid=vcid, data=data)
        if self.sdls is None or plain or (vcid is not None and vcid != self.config.vcid):
            return raw
        return self.sdls.protect(raw)

    def plain_frame(
        self,
        kind: TcFrameType = TcFrameType.AD,
        seq: int = 0,
        *,
        scid: int | None = None,
        vcid: int | None = None,
        data: bytes | None = None,
    ) -> bytes:
        """A TC frame without SDLS."""
        cfg = self.config
        if kind is TcFrameType.BC:
            map_id = None
            data = data if data is not None else Unlock().pack()
        else:
            map_id = cfg.map_id if cfg.tc_segment_header else None
            data = data if data is not None else self.packet()
        frame = TcFrame(
            self.scid if scid is None else scid,
            cfg.vcid if vcid is None else vcid,
            data,
            kind,
            seq % 256,
            map_id,
        )
        return frame.pack(cfg.tc_fecf)

    def cltu(self, frame: bytes) -> bytes:
        return encode_cltu(frame, self.config.tc_randomize)

    # the units a case sends, each with its description
    def ad(
        self, seq: int, note: str = "", *, scid: int | None = None, vcid: int | None = None
    ) -> Sent:
        frame = self.frame(seq=seq, scid=scid, vcid=vcid)
        return Sent(_join(f"Type-AD frame N(S) {seq % 256}", note), self.cltu(frame))

    def bd(self, note: str = "", *, scid: int | None = None, vcid: int | None = None) -> Sent:
        frame = self.frame(TcFrameType.BD, scid=scid, vcid=vcid)
        return Sent(_join("Type-BD frame", note), self.cltu(frame))

    def unlock(self) -> Sent:
        return Sent("Type-BC Unlock", self.cltu(self.frame(TcFrameType.BC)))

    def set_vr(self, vr: int) -> Sent:
        data = SetVr(vr % 256).pack()
        return Sent(
            f"Type-BC Set V(R) {vr % 256}", self.cltu(self.frame(TcFrameType.BC, data=data))
        )

    def fence(self) -> Sent:
        return self.bd("(fence: its FARM-B count shows that what came before was processed)")


def _join(what: str, note: str) -> str:
    return f"{what} {note}" if note else what


def codeblock_offset(index: int) -> int:
    """Octet offset of codeblock ``index`` in a CLTU (after the 2-octet start sequence)."""
    return 2 + CODEBLOCK_LEN * index


def codeblock_count(cltu: bytes) -> int:
    """Codeblocks of a CLTU made by :func:`encode_cltu`, the tail excluded."""
    return (len(cltu) - 2 - len(TAIL_SEQUENCE)) // CODEBLOCK_LEN


# -- the sans-I/O context: observations and, for the ground role, the emulated spacecraft ---------


class Ctx:
    """What the cases share: the configuration, every observation so far, and what the
    run has learnt. A driver feeds it (:meth:`observe`) and asks it for the next
    beacon unit (:meth:`tick`, ground role)."""

    role = ""

    def __init__(self, config: ActiveConfig) -> None:
        self.config = config
        self.seen: list[Observation] = []
        self.halt: str | None = None  # why the remaining cases cannot be judged
        self.facts: list[str] = []  # what the run learnt, for the report header
        self.t_s = 0.0  # the driver's clock: seconds since the run started

    def observe(self, unit: bytes, t_s: float) -> Observation:
        raise NotImplementedError

    def tick(self) -> bytes | None:
        """The unit to send now, every ``interval_s`` (None: none)."""
        return None

    @property
    def beacon_interval_s(self) -> float | None:
        return None


class SatCtx(Ctx):
    """Sat role: TM CADUs in, decoded to CLCWs; the state of FARM-1 as last seen."""

    role = SAT

    def __init__(self, config: ActiveConfig) -> None:
        super().__init__(config)
        self.rx = CaduReceiver(config.tm_frame_length, config.cadu)
        self.scid: int | None = config.scid
        self._craft: TcCrafter | None = None
        self.state: Clcw | None = None  # FARM-1's state, as the last judged CLCW showed it
        self.fence = False  # BD frames advance the FARM-B counter: usable as a fence
        # SDLS-ACT-01's verdict: whether the endpoint takes frames protected as the tester
        # protects them (None: not tried)
        self.sdls_accepted: bool | None = None
        self.interval_s: float | None = None  # how often CLCWs come (measured)
        self.rtt_s = 0.0  # the longest time from a send to the CLCW that showed it

    @property
    def craft(self) -> TcCrafter:
        if self._craft is None:
            if self.scid is None:
                raise RuntimeError("the spacecraft identifier is not known yet")
            self._craft = TcCrafter(self.config, self.scid)
        return self._craft

    def observe(self, unit: bytes, t_s: float) -> Downlink:
        o = self._decode(len(self.seen), unit, t_s)
        if self.scid is None and o.scid is not None and o.clcw is not None:
            self.scid = o.scid
            self.facts.append(f"spacecraft {o.scid:#x}, from its TM frames")
        self.seen.append(o)
        return o

    def _decode(self, index: int, unit: bytes, t_s: float) -> Downlink:
        cfg = self.config
        stats = self.rx.stats
        no_asm = stats["no_asm"]
        got = self.rx.receive_cadu(unit)
        if got is None:
            if stats["no_asm"] > no_asm:
                why = "no attached sync marker (or no whole codeblock after it)"
            else:
                why = "a Reed-Solomon codeword could not be corrected"
            return Downlink(index, t_s, len(unit), problem=why)
        try:
            frame = TmFrame.unpack(got.frame, cfg.tm_fecf, cfg.tm_frame_length)
        except DecodeError as exc:
            return Downlink(index, t_s, len(unit), problem=f"TM frame refused: {exc}")
        base = Downlink(
            index,
            t_s,
            len(unit),
            scid=frame.scid,
            tm_vcid=frame.vcid,
            symbols_corrected=got.symbols_corrected,
        )
        if frame.ocf is None:
            return replace(base, problem="TM frame without an OCF")
        try:
            clcw = Clcw.unpack(frame.ocf)
        except DecodeError as exc:
            return replace(base, problem=f"OCF {frame.ocf.hex()} is not a valid CLCW: {exc}")
        return replace(base, clcw=clcw)

    @property
    def farm_state(self) -> Clcw:
        """:attr:`state`, once known: every case after ``ACT-CLCW-01`` (which halts the run
        when no CLCW comes) starts from it."""
        if self.state is None:
            raise RuntimeError("FARM-1's state is not known yet (no CLCW judged)")
        return self.state

    def good(self, o: Observation | None) -> TypeGuard[GoodDownlink]:
        """A CLCW of the spacecraft under test about the virtual channel under test."""
        return (
            isinstance(o, Downlink)
            and o.clcw is not None
            and o.scid == self.scid
            and o.clcw.vcid == self.config.vcid
        )

    def last_good(self) -> GoodDownlink | None:
        for o in reversed(self.seen):
            if self.good(o):
                return o
        return None

    @property
    def short_wait_s(self) -> float:
        """How long to wait for a fence: ten CLCW intervals or four round trips (as
        measured), at least half a second, at most the timeout. Only an endpoint that
        miscounts makes it run out."""
        interval = self.interval_s or 0.2
        return min(self.config.timeout_s, max(0.5, 10 * interval, 4 * self.rtt_s))


class GroundCtx(Ctx):
    """Ground role: the emulated spacecraft. A FARM-1 (the project's) takes the frames
    the ground sends; its CLCW goes down in every TM frame; the cases can make it
    deaf to the next frames, or put it in Lockout."""

    role = GROUND

    def __init__(self, config: ActiveConfig) -> None:
        super().__init__(config)
        if config.scid is None:
            raise ValueError("the ground role needs the spacecraft identifier")
        self.scid = config.scid
        self.farm = Farm(config.vcid, config.farm_window)
        tm = TmConfig(
            frame_length=config.tm_frame_length,
            scid=config.scid,
            fecf=config.tm_fecf,
            ocf=True,
            idle_vcid=config.tm_idle_vcid,
        )
        self.mc = TmMasterChannel(tm)
        self.other_mc = TmMasterChannel(replace(tm, scid=other_scid(config.scid)))
        self.tx = CaduTransmitter(config.tm_frame_length, config.cadu)
        self.rx = CaduReceiver(config.tm_frame_length, config.cadu)
        self.deaf = 0  # how many of the next valid frames FARM-1 does not get (lost uplink)
        self.ignored: list[Uplink] = []
        self.reacts = False  # the ground answered a Lockout: refusals can be told apart
        self.beacon = True

    @property
    def beacon_interval_s(self) -> float | None:
        return self.config.interval_s

    # -- the downlink -----------------------------------------------------------------------------
    def clcw(self, *, lockout: bool | None = None, vcid: int | None = None) -> Clcw:
        """FARM-1's CLCW, with Lockout and the virtual channel changed where given."""
        c = self.farm.clcw()
        return replace(
            c,
            lockout=c.lockout if lockout is None else lockout,
            vcid=c.vcid if vcid is None else vcid,
        )

    def tm_frame(self, clcw: Clcw | None = None, *, other: bool = False) -> bytes:
        """The next idle TM frame, with ``clcw`` (default: FARM-1's) in its OCF."""
        mc = self.other_mc if other else self.mc
        mc.ocf = (clcw or self.farm.clcw()).pack()
        return mc.idle_frame()

    def cadu(self, frame: bytes) -> bytes:
        return self.tx.cadu(frame)

    def tick(self) -> bytes | None:
        return self.cadu(self.tm_frame()) if self.beacon else None

    def lockout(self) -> None:
        """Put FARM-1 in Lockout, as a Type-AD frame in its lockout area does (E5)."""
        seq = (self.farm.vr + 128) % 256
        map_id = self.config.map_id if self.config.tc_segment_header else None
        self.farm.receive(
            TcFrame(self.scid, self.config.vcid, b"\x00", TcFrameType.AD, seq, map_id)
        )

    # -- the uplink ---------------------------------------------------------------------------
    def observe(self, unit: bytes, t_s: float) -> Uplink:
        o = self._decode(len(self.seen), unit, t_s)
        self.seen.append(o)
        if o.frame is not None and not o.problem:
            if self.deaf > 0:
                self.deaf -= 1
                self.ignored.append(o)
            else:
                self.farm.receive(o.frame)
                self.farm.take()
        return o

    def _decode(self, index: int, unit: bytes, t_s: float) -> Uplink:
        cfg = self.config
        n = len(unit)
        try:
            decoded = decode_cltu(unit, DecodeMode.DETECT, cfg.tc_randomize)
        except DecodeError as exc:
            return Uplink(index, t_s, n, problem=f"not a CLTU: {exc}")
        problems = []
        if decoded.end is not CltuEnd.TAIL:
            at = decoded.codeblocks
            problems.append(
                "no tail sequence"
                if decoded.end is CltuEnd.TRUNCATED
                else f"codeblock {at} has bit errors (or is not the tail sequence)"
            )
        else:
            after = n - codeblock_offset(decoded.codeblocks) - len(TAIL_SEQUENCE)
            if after:
                problems.append(f"{after} octets after the tail sequence")
        try:
            raw = decoded.frame()
            frame = TcFrame.unpack(raw, cfg.tc_fecf, cfg.tc_segment_header)
        except DecodeError as exc:
            return Uplink(index, t_s, n, problem="; ".join([*problems, f"TC frame refused: {exc}"]))
        command = None
        if frame.frame_type is TcFrameType.BC:
            try:
                command = unpack_control_command(frame.data)
            except DecodeError as exc:
                problems.append(f"control command refused: {exc}")
        if frame.scid != self.scid:
            problems.append(f"SCID {frame.scid:#x}, the spacecraft's is {self.scid:#x}")
        if frame.vcid != cfg.vcid:
            problems.append(f"VC {frame.vcid}, COP-1 runs on VC {cfg.vcid}")
        return Uplink(index, t_s, n, frame, command, "; ".join(problems))

    def uplinks_since(self, mark: int) -> list[Uplink]:
        return [o for o in self.seen[mark:] if isinstance(o, Uplink)]


def other_scid(scid: int) -> int:
    """Another spacecraft's identifier (differs in its lowest bit)."""
    return scid ^ 1


def make_ctx(config: ActiveConfig) -> Ctx:
    return SatCtx(config) if config.role == SAT else GroundCtx(config)


# -- garbage ----------------------------------------------------------------------------------


def garbage(rng: random.Random, n: int, avoid: bytes = b"") -> bytes:
    """``n`` random octets that do not start with ``avoid``."""
    while True:
        out = bytes(rng.getrandbits(8) for _ in range(n))
        if not avoid or not out.startswith(avoid):
            return out


# -- an in-process driver -----------------------------------------------------------------------


class Endpoint(Protocol):
    """An in-process sat endpoint, as :class:`LoopbackDriver` drives it."""

    def receive(self, unit: bytes, /) -> None:
        """Take one uplink unit."""

    def emit(self) -> list[bytes]:
        """The downlink units the endpoint sends at one CLCW interval."""


class Driver(Protocol):
    """What carries a case's actions out (:class:`LoopbackDriver`,
    :class:`linkstack.conformance.active.udp.UdpDriver`)."""

    sent: int  # units sent so far

    async def contact(self) -> str | None:
        """None once the endpoint is heard from; else why there is no contact."""

    async def perform(self, action: Action) -> Observation | None:
        """Carry ``action`` out: the observation a :class:`Wait` waited for, else None."""


class LoopbackDriver:
    """Carries the actions out against an in-process sat endpoint, on a simulated clock.

    ``endpoint.receive(unit)`` takes one uplink unit; ``endpoint.emit()`` returns the
    downlink units the endpoint sends at one CLCW interval (``interval_s`` of simulated
    time). Waits advance the simulated clock one interval at a time; nothing sleeps.
    """

    def __init__(self, ctx: Ctx, endpoint: Endpoint, interval_s: float = 0.1) -> None:
        self.ctx = ctx
        self.endpoint = endpoint
        self.interval_s = interval_s
        self.t_s = 0.0
        self.sent = 0

    def _emit(self) -> list[Observation]:
        self.t_s += self.interval_s
        self.ctx.t_s = self.t_s
        return [self.ctx.observe(unit, self.t_s) for unit in self.endpoint.emit()]

    async def contact(self) -> str | None:
        got = await self.perform(Wait(lambda o: True, self.ctx.config.timeout_s))
        return None if got is not None else "the endpoint sent nothing"

    async def perform(self, action: Action) -> Observation | None:
        if isinstance(action, Send):
            for s in action.units:
                self.sent += 1
                self.endpoint.receive(s.unit)
            return None
        if isinstance(action, Wait):
            hits = 0
            steps = max(1, int(action.timeout_s / self.interval_s + 0.5))
            for _ in range(steps):
                for o in self._emit():
                    if action.match(o):
                        hits += 1
                        if hits == action.count:
                            return o
            return None
        if isinstance(action, Sleep):
            for _ in range(max(0, int(action.seconds / self.interval_s + 0.5))):
                self._emit()
            return None
        raise TypeError(f"not an action: {action!r}")


# -- running a suite ----------------------------------------------------------------------------


@dataclass
class ActiveReport:
    """What a run of the active suite found."""

    target: str
    listen: str
    role: str
    config: ActiveConfig
    results: list[CaseResult] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    error: str | None = None  # the run could not start or was cut short
    seconds: float = 0.0
    units_in: int = 0
    units_out: int = 0

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def exit_code(self) -> int:
        """0: every applicable case passed; 1: a case failed; 2: the run is incomplete
        (no contact with the endpoint, or a case could not be judged)."""
        if any(r.status == FAIL for r in self.results):
            return 1
        if self.error or any(r.status == ERROR for r in self.results):
            return 2
        return 0


async def run_suite(ctx: Ctx, driver: Driver, cases: Sequence[Case], report: ActiveReport) -> None:
    """Run ``cases`` in order through ``driver`` (which has ``contact()`` and
    ``perform(action)``, and counts ``sent``); fills ``report``."""
    import time  # noqa: PLC0415 - the one clock read of a run: its duration

    t0 = time.perf_counter()
    try:
        problem = await driver.contact()
        if problem is not None:
            report.error = problem
            return
        for case in cases:
            report.results.append(await _run_case(ctx, driver, case))
    finally:
        report.facts = list(ctx.facts)
        report.units_in = len(ctx.seen)
        report.units_out = driver.sent + getattr(driver, "beacons", 0)
        report.seconds = time.perf_counter() - t0


async def _run_case(ctx: Ctx, driver: Driver, case: Case) -> CaseResult:
    t0 = time.perf_counter()
    sent0 = driver.sent
    if ctx.halt is not None:
        verdict = not_applicable(ctx.halt)
    else:
        steps = case.run(ctx)
        value: Observation | None = None
        try:
            if isinstance(steps, Verdict):  # a case that needs no action
                raise StopIteration(steps)
            while True:
                action = steps.send(value)
                value = await driver.perform(action)
        except StopIteration as stop:
            verdict = (
                stop.value
                if isinstance(stop.value, Verdict)
                else Verdict(ERROR, f"the case returned {stop.value!r}, not a verdict")
            )
        except Exception as exc:  # a bug in a case must not end the run; it is reported
            line = traceback.format_exception_only(type(exc), exc)[-1].strip()
            verdict = Verdict(ERROR, f"the case broke: {line}")
    return CaseResult(case, verdict, driver.sent - sent0, time.perf_counter() - t0)
