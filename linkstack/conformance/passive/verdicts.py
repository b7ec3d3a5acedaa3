"""Rules applied to observations: each rule's verdicts over a capture, its result, the report.

:class:`Verdicts` hands every observation to the rules that judge its kind, one
:class:`RuleRun` per rule (the units it checked, those that failed, the first
:class:`Finding`). At the end each rule has its :class:`RuleResult`: it passed, failed,
broke (``error``: the rule itself raised; reported, never fatal), cannot be judged
(``cannot judge``: the capture lacks the direction or layer its verdict rests on, the
rule's ``needs``, so that whatever it saw proves nothing either way: COP-1's N(R) in
a satellite's own capture, which holds no uplink; or frames hid what it reads, its
``hidden_by``: data fields under SDLS and no key, unless it failed on what it read),
or did not apply, with why (the
profile rules it out, the capture holds nothing it needs, or nothing it applies to).
A :class:`Report` is the results of one capture with what was read.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from linkstack.conformance.passive.observations import Observation, Unit
from linkstack.conformance.passive.rules import CATALOGUE, SKIP, Rule, RuleContext
from linkstack.runtime.mission_profile import Profile


@dataclass(frozen=True, slots=True)
class Finding:
    """The first unit that broke a rule, and how."""

    unit: Unit
    field: str
    expected: str
    found: str
    note: str = ""
    also: tuple[Unit, ...] = ()  # the other units of the observation (its carrier)


class RuleRun:
    """One rule over one capture: its context, and its verdicts so far."""

    __slots__ = ("checked", "ctx", "error", "errors", "failed", "first", "rule")

    def __init__(self, rule: Rule, profile: Profile) -> None:
        self.rule = rule
        self.ctx = RuleContext(profile)
        self.checked = 0
        self.failed: set[int] = set()
        self.first: Finding | None = None
        self.errors = 0
        self.error: str | None = None

    def judge(self, obs: Observation) -> None:
        try:
            result = self.rule.judge(obs, self.ctx)
        except Exception as exc:  # a bug in a rule must not end the audit; it is reported
            self.errors += 1
            if self.error is None:
                where = obs.units[0].describe() if obs.units else "?"
                line = traceback.format_exception_only(type(exc), exc)[-1].strip()
                self.error = f"{line} (judging unit {where})"
            return
        if result is SKIP:
            return
        self.checked += 1
        if result is None:
            return
        for fault in result if isinstance(result, list) else (result,):
            unit = fault.unit if fault.unit is not None else obs.units[0]
            self.failed.add(unit.index)
            if self.first is None:
                also = tuple(u for u in obs.units if u is not unit)
                self.first = Finding(
                    unit, fault.field, fault.expected, fault.found, fault.note, also
                )


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: Rule
    status: str  # "pass", "fail", "cannot judge", "n/a", "error"
    checked: int = 0
    failed: int = 0
    first: Finding | None = None
    reason: str = ""  # why not applicable
    error: str | None = None


@dataclass
class Report:
    capture: str
    profile: Profile
    results: list[RuleResult]
    units: Counter[str]
    reader: Counter[str]
    epoch: datetime
    read_error: str | None = None
    internal_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    ports_text: str = ""  # where the ports came from, when not the profile's alone
    sdls_text: str = ""  # the links' SDLS associations and keys, when there are any

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def empty(self) -> str | None:
        """Why there was nothing to audit (a capture read to its end without one unit on
        the profile's ports), or None."""
        if sum(self.units.values()) or self.read_error:
            return None
        records = self.reader.get("records", 0)
        other_view = self.reader.get("other_view", 0)
        if other_view:
            return (
                f"the {other_view} unit(s) on the port plan are all of the other view (see --view)"
            )
        return (
            f"no UDP datagram on the profile's ports in {records} pcap record(s) "
            "(another port table? see --profile and [ports], or --scenario for a capture "
            "of the daemons)"
        )

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def exit_code(self) -> int:
        """0: every applicable rule passed; 1: a rule failed; 2: the audit is incomplete
        (the capture could not be read to its end or held nothing to audit, or a rule or
        the analysis broke)."""
        if any(r.status == "fail" for r in self.results):
            return 1
        broken = any(r.status == "error" for r in self.results)
        if self.read_error or self.internal_errors or broken or self.empty:
            return 2
        return 0

    def time_of(self, unit: Unit) -> str:
        try:
            when = (self.epoch + timedelta(seconds=unit.t_s)).isoformat().replace("+00:00", "Z")
        except (OverflowError, ValueError):
            when = "?"
        return f"t = {unit.t_s:.6f} s ({when})"


_SUBJECT_KINDS = {
    "unit": ("cltu", "tc_frame", "tm_cadu", "tm_frame", "aos_cadu", "aos_frame", "uslp_frame"),
}


def _held(kinds: Mapping[str, int], need: str) -> bool:
    """Whether the capture holds what ``need`` names: a kind, or kinds joined by "|" of
    which one will do (COP-1's frames sent: "tc_frame|uslp_fdu")."""
    return any(kinds.get(k) for k in need.split("|"))


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a checker of these rules under this profile needs before the first unit."""

    rules: tuple[Rule, ...]
    disabled: tuple[RuleResult | None, ...]  # the result of a rule the profile rules out
    by_kind: dict[str, tuple[int, ...]]  # observation kind -> the rules that judge it
    subjects: tuple[tuple[str, ...], ...]  # the kinds (or layers) each rule needs
    absent: tuple[RuleResult, ...]  # n/a: what the rule needs is not in the capture
    unused: tuple[RuleResult, ...]  # n/a: it is there, but nothing the rule applies to


_PLANS: dict[tuple[int, tuple[str, ...] | None], tuple[Profile, _Plan]] = {}


def _plan(profile: Profile, rules: tuple[Rule, ...] | None) -> _Plan:
    key = (id(profile), None if rules is None else tuple(r.id for r in rules))
    got = _PLANS.get(key)
    if got is not None and got[0] is profile:
        return got[1]
    rules = tuple(CATALOGUE) if rules is None else rules
    reasons = [r.disabled_by(profile) for r in rules]
    by_kind: dict[str, list[int]] = {}
    for i, r in enumerate(rules):
        if reasons[i] is None:
            for kind in r.on:
                by_kind.setdefault(kind, []).append(i)
    plan = _Plan(
        rules,
        tuple(
            None if why is None else RuleResult(r, "n/a", reason=why)
            for r, why in zip(rules, reasons, strict=True)
        ),
        {k: tuple(v) for k, v in by_kind.items()},
        tuple(tuple(k for kind in r.on for k in _SUBJECT_KINDS.get(kind, (kind,))) for r in rules),
        tuple(RuleResult(r, "n/a", reason=f"no {r.subject} in the capture") for r in rules),
        tuple(
            RuleResult(r, "n/a", reason=r.na or f"nothing in the capture that {r.id} applies to")
            for r in rules
        ),
    )
    if len(_PLANS) > 16:
        _PLANS.clear()
    _PLANS[key] = (profile, plan)
    return plan


class Verdicts:
    """The rules over a stream of observations: ``judge`` each, then ``results``."""

    def __init__(self, profile: Profile, rules: Iterable[Rule] | None = None) -> None:
        self.profile = profile
        self.plan = _plan(profile, None if rules is None else tuple(rules))
        self.rules = list(self.plan.rules)
        self.runs: list[RuleRun | None] = [None] * len(self.rules)  # made when first needed
        self.kinds: Counter[str] = Counter()

    def judge(self, obs: Observation) -> None:
        self.kinds[obs.kind] += 1
        runs = self.runs
        for i in self.plan.by_kind.get(obs.kind, ()):
            run = runs[i]
            if run is None:
                run = runs[i] = RuleRun(self.rules[i], self.profile)
            run.judge(obs)

    def results(self, units: Counter[str]) -> list[RuleResult]:
        """Every rule's result. ``units`` counts the capture's units by layer: a rule that
        judged nothing is n/a because its subject was absent from them and from the
        observations, or because nothing there was what it applies to."""
        return [self._result(i, units) for i in range(len(self.rules))]

    def _result(self, i: int, units: Counter[str]) -> RuleResult:
        plan = self.plan
        disabled = plan.disabled[i]
        if disabled is not None:
            return disabled
        rule = self.rules[i]
        run = self.runs[i]
        kinds = self.kinds
        hidden = sum(kinds.get(k, 0) for k in rule.hidden_by)
        if hidden and (run is None or not (run.failed or run.errors)):
            why = rule.hidden.format(n=hidden)
            return RuleResult(rule, "cannot judge", run.checked if run else 0, reason=why)
        if run is not None:
            if run.errors:
                failed = len(run.failed)
                return RuleResult(rule, "error", run.checked, failed, run.first, error=run.error)
            if (run.failed or run.checked) and not all(_held(kinds, k) for k in rule.needs):
                missing = ", ".join(k for k in rule.needs if not _held(kinds, k))
                why = rule.cannot or f"the capture holds no {missing}"
                return RuleResult(rule, "cannot judge", run.checked, reason=why)
            if run.failed:
                return RuleResult(rule, "fail", run.checked, len(run.failed), run.first)
            if run.checked:
                return RuleResult(rule, "pass", run.checked)
        if any(kinds.get(k) or units.get(k) for k in plan.subjects[i]):
            return plan.unused[i]
        return plan.absent[i]
