"""``linkstack report FILE.json``: any run's report as a PNG chart and an HTML page.

What it reads, by the document's ``kind`` (a report without one is taken by its keys):

- ``linkstack-roundtrips``: a round-trip report, ``report.json`` of ``linkstack
  demo`` or of a daemon's run directory (:func:`linkstack.runtime.report.to_json`);
  drawn by :func:`linkstack.runtime.report.write_report_pages`;
- ``linkstack-sweep``: a sweep's ``sweep.json`` (written beside its Parquet and CSV
  files, :func:`linkstack.tools.sweep_report.summary_doc`); drawn by
  :func:`linkstack.tools.sweep_report.write_pages`.

It writes ``STEM.png`` and ``STEM.html`` (STEM: the input's name without ``.json``)
into ``-o OUT`` (default: the input's folder). A file that is not JSON, of another
kind, or without a key the chart needs is refused with a
:class:`~linkstack.errors.DecodeError` naming the file and the key.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from linkstack.errors import DecodeError

ROUNDTRIPS = "linkstack-roundtrips"
SWEEP = "linkstack-sweep"
KINDS = (ROUNDTRIPS, SWEEP)


def load(path: Path) -> tuple[str, dict[str, Any]]:
    """The kind of the report at ``path`` and its document."""
    where = str(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise DecodeError(where, "file", "no such file") from None
    except UnicodeDecodeError:
        raise DecodeError(where, "file", "not UTF-8 text (a report is JSON)") from None
    except OSError as exc:
        raise DecodeError(where, "file", exc.strerror or str(exc)) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(
            where, "json", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(doc, dict):
        raise DecodeError(where, "document", "a JSON object is needed (a report)")
    kind = doc.get("kind")
    if kind is None:  # reports written before they said their kind
        if "queries" in doc or "summary" in doc:
            return ROUNDTRIPS, doc
        raise DecodeError(
            where,
            "kind",
            f"missing, and the keys are none of a known report (known: {', '.join(KINDS)})",
        )
    if kind not in KINDS:
        raise DecodeError(where, "kind", f"unknown report kind {kind!r}; known: {', '.join(KINDS)}")
    return str(kind), doc


def render(path: Path, out_dir: Path | None = None) -> dict[str, Path]:
    """Draw the report at ``path``: its PNG and HTML paths by ``chart`` and ``html``."""
    kind, doc = load(path)
    out_dir = out_dir if out_dir is not None else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / path.name.removesuffix(".json")
    if kind == SWEEP:
        from linkstack.tools import sweep_report  # noqa: PLC0415  (pyarrow: only here)

        return sweep_report.write_pages(doc, stem, source=str(path))
    from linkstack.runtime.report import write_report_pages  # noqa: PLC0415

    return write_report_pages(doc, stem, source=str(path))


def _cmd(args: argparse.Namespace) -> int:
    paths = render(Path(args.file), Path(args.out) if args.out else None)
    for what, p in paths.items():
        print(f"  {what:<6}{p.resolve()}")
    return 0


def add_report_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="draw a run's report (demo, daemon run, sweep) as PNG and a self-contained HTML page",
        description="Read FILE.json: report.json of linkstack demo or of a daemon's run "
        "directory, or sweep.json of linkstack sweep; write FILE.png (the chart) and "
        "FILE.html (the chart inline and the tables: percentiles, groups, queries or "
        "variants; nothing fetched) into OUT. Exit 2 if the file is not such a report.",
    )
    p.add_argument("file", help="the report (JSON)")
    p.add_argument("-o", "--out", help="the folder to write into (default: the file's folder)")
    p.set_defaults(func=_cmd)
