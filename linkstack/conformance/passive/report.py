"""What ``linkstack conform`` prints, and the JUnit XML it writes for CI systems.

A rule that cannot be judged (the capture lacks what its verdict rests on) is neither
passed nor failed: the text says CANNOT JUDGE and why, the JUnit XML makes it a
skipped test case with the reason, and it does not change the exit status.
"""

from __future__ import annotations

import os
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from linkstack.conformance.passive.rules import Rule
from linkstack.conformance.passive.verdicts import Report, RuleResult
from linkstack.conformance.reporting import (
    STATUS_LABEL,
    catalogue_text,
    indented_tree,
    junit_document,
    result_line,
    write_tree,
)

_ORDER = {"fail": 0, "error": 1, "cannot judge": 2, "pass": 3, "n/a": 4}
_LAYER_ORDER = (
    "cltu",
    "tc_frame",
    "tm_cadu",
    "tm_frame",
    "aos_cadu",
    "aos_frame",
    "uslp_frame",
    "space_packet",
)


def _units_line(report: Report) -> str:
    total = sum(report.units.values())
    parts = [f"{layer} {report.units[layer]:,}" for layer in _LAYER_ORDER if report.units[layer]]
    line = f"units: {total:,}" + (f" ({', '.join(parts)})" if parts else "")
    skipped = report.reader.get("other_ports", 0) + report.reader.get("not_udp", 0)
    skipped += report.reader.get("not_ip", 0)
    if skipped:
        line += f"; {skipped:,} other records skipped (not UDP on the profile's ports)"
    other_view = report.reader.get("other_view", 0)
    if other_view:
        line += f"; {other_view:,} units of the other view skipped (--view)"
    return line


def summary(report: Report) -> str:
    return result_line(
        report.count("fail"),
        report.count("error"),
        report.exit_code,
        [
            f"{report.count('pass')} passed",
            *([f"{n} cannot judge"] if (n := report.count("cannot judge")) else []),
            f"{report.count('n/a')} not applicable",
        ],
        f"{len(report.results)} rules",
    )


def finding_lines(report: Report, r: RuleResult) -> list[str]:
    f = r.first
    if f is None:
        return []
    out = [
        f"first offending unit: {f.unit.describe()}",
        f"  {report.time_of(f.unit)}",
        f"  field {f.field}: expected {f.expected}, found {f.found}"
        + (f" ({f.note})" if f.note else ""),
    ]
    if f.also:
        out.append("  also in " + ", ".join(f"#{u.index} ({u.layer})" for u in f.also))
    out.append(f"failed by {r.failed:,} unit(s); {r.checked:,} checked")
    return out


def format_text(report: Report, width: int = 100) -> str:
    lines = [
        f"linkstack conform: {report.capture}",
        f"profile: {report.profile.source}",
        *([f"ports: {report.ports_text}"] if report.ports_text else []),
        *([f"sdls: {report.sdls_text}"] if report.sdls_text else []),
        _units_line(report),
    ]
    if report.read_error:
        lines.append(f"capture: NOT READ TO ITS END: {report.read_error}")
    if report.empty:
        lines.append(f"capture: NOTHING TO AUDIT: {report.empty}")
    for err in report.internal_errors[:5]:
        lines.append(f"internal error: {err}")
    if len(report.internal_errors) > 5:
        lines.append(f"internal error: ... and {len(report.internal_errors) - 5} more")
    lines += [summary(report), ""]
    indent = " " * 6
    for r in sorted(report.results, key=lambda r: _ORDER[r.status]):
        rule = r.rule
        head = f"{STATUS_LABEL[r.status]:<5} {rule.id:<13} "
        if r.status in ("fail", "error"):
            lines.append(head + rule.reference)
            lines += textwrap.wrap(
                rule.statement, width, initial_indent=indent, subsequent_indent=indent
            )
            if r.status == "error":
                lines.append(indent + f"the rule itself broke (a bug to report): {r.error}")
            lines += [indent + line for line in finding_lines(report, r)]
            lines.append("")
        elif r.status == "pass":
            lines.append(head + f"{r.checked:>7,} checked  {rule.reference}")
        elif r.status == "cannot judge":
            lines.append(f"CANNOT JUDGE {rule.id}: {r.reason}  [{rule.reference}]")
        else:
            lines.append(head + f"{r.reason}  [{rule.reference}]")
    lines.append("")
    lines.append(f"{summary(report)}; {report.seconds:.2f} s")
    return "\n".join(lines) + "\n"


def list_rules_text(rules: Iterable[Rule], width: int = 100) -> str:
    return catalogue_text(
        ((rule.id, rule.reference, rule.layer, rule.statement) for rule in rules), 14, width
    )


def _failure_message(report: Report, r: RuleResult) -> str:
    f = r.first
    if f is None:
        return f"{r.failed} unit(s) failed"
    note = f" ({f.note})" if f.note else ""
    return (
        f"unit #{f.unit.index} (pcap frame {f.unit.record}, {f.unit.layer}, "
        f"t = {f.unit.t_s:.6f} s): {f.field}: expected {f.expected}, found {f.found}{note}; "
        f"{r.failed} of {r.checked} units failed"
    )


def junit_tree(report: Report) -> ET.ElementTree:
    """One testsuite, one testcase per rule: failure (the first offending unit and the
    count), skipped (not applicable, or cannot be judged on this capture, with why),
    error (the rule itself broke)."""
    problem = report.read_error or report.empty
    extra = 1 if problem or report.internal_errors else 0
    profile = report.profile
    root, suite = junit_document(
        f"linkstack conform {os.path.basename(report.capture)}",
        (
            len(report.results) + extra,
            report.count("fail"),
            report.count("error") + extra,
            report.count("n/a") + report.count("cannot judge"),
        ),
        report.seconds,
        (
            ("capture", report.capture),
            (
                "profile",
                profile.source
                if profile.source.startswith(profile.name)
                else f"{profile.name} ({profile.source})",
            ),
            ("units", str(sum(report.units.values()))),
        ),
    )
    for r in report.results:
        rule = r.rule
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"conform.{rule.layer}",
                "name": f"{rule.id} {rule.statement}",
                "time": "0",
            },
        )
        if r.status == "fail":
            el = ET.SubElement(
                case, "failure", {"message": _failure_message(report, r), "type": rule.id}
            )
            el.text = "\n".join([rule.reference, rule.statement, *finding_lines(report, r)])
        elif r.status == "error":
            ET.SubElement(case, "error", {"message": r.error or "error", "type": "RuleError"})
        elif r.status == "n/a":
            ET.SubElement(case, "skipped", {"message": r.reason})
        elif r.status == "cannot judge":
            ET.SubElement(case, "skipped", {"message": f"cannot judge: {r.reason}"})
        else:
            ET.SubElement(case, "system-out").text = f"{r.checked} checked"
    if problem or report.internal_errors:
        case = ET.SubElement(
            suite, "testcase", {"classname": "conform.capture", "name": "capture read", "time": "0"}
        )
        message = problem or report.internal_errors[0]
        el = ET.SubElement(case, "error", {"message": message, "type": "CaptureError"})
        el.text = "\n".join(filter(None, [problem, *report.internal_errors]))
    return indented_tree(root)


def write_junit(report: Report, path: str | os.PathLike[str]) -> None:
    write_tree(junit_tree(report), path)
