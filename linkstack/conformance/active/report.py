"""What ``linkstack conform --target ...`` prints, and its JUnit XML: the layout of the
passive report (:mod:`linkstack.conformance.reporting` holds what both share), one line
or block per case."""

from __future__ import annotations

import os
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from linkstack.conformance.active.runner import (
    ERROR,
    FAIL,
    NA,
    PASS,
    ActiveReport,
    Case,
    CaseResult,
)
from linkstack.conformance.reporting import (
    STATUS_LABEL,
    catalogue_text,
    indented_tree,
    junit_document,
    result_line,
    write_tree,
)


def summary(report: ActiveReport) -> str:
    return result_line(
        report.count(FAIL),
        report.count(ERROR),
        report.exit_code,
        (["no contact"] if report.error else [])
        + [f"{report.count(PASS)} passed", f"{report.count(NA)} not applicable"],
        f"{len(report.results)} cases",
    )


def evidence_lines(r: CaseResult) -> list[str]:
    e = r.verdict.evidence
    if e is None:
        return []
    out = [f"sent:     {e.sent}", f"expected: {e.expected}", f"found:    {e.found}"]
    if e.note:
        out.append(f"note:     {e.note}")
    return out


def format_text(report: ActiveReport, width: int = 100) -> str:
    lines = [
        f"linkstack conform: active, role {report.role}, target {report.target}, "
        f"listening on {report.listen}",
    ]
    lines += [f"setup: {note}" for note in report.config.notes]
    lines += [f"learnt: {fact}" for fact in report.facts]
    lines.append(f"units: {report.units_out:,} sent, {report.units_in:,} received")
    if report.error:
        lines.append(report.error)
    if not report.results:
        lines.append(f"{summary(report)}; {report.seconds:.2f} s")
        return "\n".join(lines) + "\n"
    lines += [summary(report), ""]
    indent = " " * 6
    sub = indent + " " * 10
    for r in report.results:
        case = r.case
        head = f"{STATUS_LABEL[r.status]:<5} {case.id:<21} "
        if r.status in (FAIL, ERROR):
            lines.append(head + case.reference)
            lines += textwrap.wrap(
                case.statement, width, initial_indent=indent, subsequent_indent=indent
            )
            if r.status == ERROR:
                lines += textwrap.wrap(
                    f"the case could not be judged: {r.verdict.detail}",
                    width,
                    initial_indent=indent,
                    subsequent_indent=indent,
                )
            else:
                for line in evidence_lines(r):
                    lines += textwrap.wrap(
                        line, width, initial_indent=indent, subsequent_indent=sub
                    )
            lines.append("")
        else:  # pass: what was seen; n/a: why
            lines.append(head + f"{r.verdict.detail}  [{case.reference}]")
    lines.append("")
    lines.append(f"{summary(report)}; {report.seconds:.2f} s")
    return "\n".join(lines) + "\n"


def list_cases_text(cases: Iterable[Case], width: int = 100) -> str:
    return catalogue_text(
        ((c.id, c.reference, f"{c.role}, {c.layer}", c.statement) for c in cases), 21, width
    )


def _failure_message(r: CaseResult) -> str:
    e = r.verdict.evidence
    if e is None:
        return "failed"
    note = f" ({e.note})" if e.note else ""
    return f"sent {e.sent}: expected {e.expected}; found {e.found}{note}"


def junit_tree(report: ActiveReport) -> ET.ElementTree:
    """One testsuite, one testcase per case: failure (what was sent, expected, found),
    skipped (not applicable, with why), error (the case could not be judged); no
    contact with the endpoint is one more testcase, in error."""
    extra = 1 if report.error else 0
    root, suite = junit_document(
        f"linkstack conform {report.role} {report.target}",
        (
            len(report.results) + extra,
            report.count(FAIL),
            report.count(ERROR) + extra,
            report.count(NA),
        ),
        report.seconds,
        (
            ("role", report.role),
            ("target", report.target),
            ("listen", report.listen),
            *(("setup", note) for note in report.config.notes),
            *(("learnt", fact) for fact in report.facts),
        ),
    )
    for r in report.results:
        case = r.case
        el = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"conform.active.{case.role}.{case.layer}",
                "name": f"{case.id} {case.statement}",
                "time": f"{r.seconds:.3f}",
            },
        )
        if r.status == FAIL:
            failure = ET.SubElement(
                el, "failure", {"message": _failure_message(r), "type": case.id}
            )
            failure.text = "\n".join([case.reference, case.statement, *evidence_lines(r)])
        elif r.status == ERROR:
            ET.SubElement(el, "error", {"message": r.verdict.detail, "type": "CaseError"})
        elif r.status == NA:
            ET.SubElement(el, "skipped", {"message": r.verdict.detail})
        else:
            ET.SubElement(el, "system-out").text = r.verdict.detail
    if report.error:
        el = ET.SubElement(
            suite, "testcase", {"classname": "conform.active", "name": "contact", "time": "0"}
        )
        ET.SubElement(el, "error", {"message": report.error, "type": "NoContact"})
    return indented_tree(root)


def write_junit(report: ActiveReport, path: str | os.PathLike[str]) -> None:
    write_tree(junit_tree(report), path)
