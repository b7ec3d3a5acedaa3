"""What the passive and the active reports share: the status labels, the ``result:``
line, the catalogue listing and the skeleton of the JUnit XML.

The passive report (:mod:`.passive.report`, rules over a capture) and the active one
(:mod:`.active.report`, cases against a live endpoint) fill these in with their own
results, so that both read alike and CI systems see the same document.
"""

from __future__ import annotations

import os
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime

STATUS_LABEL = {
    "fail": "FAIL",
    "error": "ERROR",
    "cannot judge": "CANNOT JUDGE",
    "pass": "PASS",
    "n/a": "N/A",
}


def result_line(fails: int, errors: int, exit_code: int, rest: list[str], total: str) -> str:
    """The ``result:`` line of both reports: the verdict, the failures and errors, then
    ``rest`` (the other counts) and ``total`` in brackets."""
    verdict = "FAIL" if fails else "INCOMPLETE" if exit_code else "PASS"
    parts = [f"{fails} failed"] if fails else []
    if errors:
        parts.append(f"{errors} could not be judged (error)")
    return f"result: {verdict}: {', '.join(parts + rest)} ({total})"


def catalogue_text(entries: Iterable[tuple[str, str, str, str]], id_width: int, width: int) -> str:
    """A catalogue listing, one block per (id, reference, tags, statement): the id in a
    column ``id_width`` wide, the reference and [tags], then the statement wrapped."""
    lines = []
    indent = " " * (id_width + 1)
    for ident, reference, tags, statement in entries:
        lines.append(f"{ident:<{id_width}} {reference}  [{tags}]")
        lines += textwrap.wrap(statement, width, initial_indent=indent, subsequent_indent=indent)
    return "\n".join(lines) + "\n"


def junit_document(
    name: str,
    counts: tuple[int, int, int, int],
    seconds: float,
    properties: Iterable[tuple[str, str]],
    stamp: str | None = None,
) -> tuple[ET.Element, ET.Element]:
    """The skeleton of both reports' JUnit XML: ``testsuites`` and its one ``testsuite``
    (called ``name``) with ``counts`` (tests, failures, errors, skipped), the time, the
    timestamp (``stamp``, or now) and the ``properties``. Returns (root, suite)."""
    if stamp is None:
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    tests, failures, errors, skipped = counts
    attrs = {
        "name": "linkstack conform",
        "tests": str(tests),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": f"{seconds:.3f}",
    }
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", {**attrs, "timestamp": stamp, "hostname": "linkstack"})
    suite.set("name", name)
    props = ET.SubElement(suite, "properties")
    for prop, value in properties:
        ET.SubElement(props, "property", {"name": prop, "value": value})
    return root, suite


def indented_tree(root: ET.Element) -> ET.ElementTree:
    ET.indent(root)
    return ET.ElementTree(root)


def write_tree(tree: ET.ElementTree, path: str | os.PathLike[str]) -> None:
    tree.write(path, encoding="utf-8", xml_declaration=True)
