"""Protocol conformance: check a capture against the rules of the CCSDS standards.

``linkstack conform FILE.pcap --profile PROFILE`` reads a capture (linkstack's own,
or any pcap of UDP datagrams on the layer ports, see :mod:`linkstack.capture`) and
judges every unit against a catalogue of rules (:mod:`.rules`), each citing the
standard and the section it comes from; a profile (:mod:`.profile`) gives the
managed parameters a capture does not carry. The report says which rules passed,
which failed (the first offending unit: its index, time, layer, field, what was
expected and what was found, and how many units failed), and which did not apply and
why; ``--junit FILE`` writes the same as JUnit XML for CI systems.

Modules: :mod:`.rules` (the catalogue), :mod:`.profile` (profiles, TOML),
:mod:`.checker` (units -> observations -> verdicts), :mod:`.report` (text, JUnit),
:mod:`.broken` (the deliberately broken captures under ``tests/conformance``).

This module stays light: ``linkstack --help`` imports it to add the subcommand; the
work is imported when the subcommand runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

RULES_HELP = "comma-separated rule identifiers to run (patterns like 'TM-*' allowed)"


def add_conform_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``conform`` to the ``linkstack`` command line (``subparsers`` of its parser)."""
    p = subparsers.add_parser(
        "conform",
        help="check a capture against the CCSDS rules (conformance report, JUnit XML)",
        description="Check a pcap capture (linkstack's, or any capture of UDP datagrams on "
        "the layer ports) against the rules of the CCSDS standards, each citing its "
        "standard and section. Exit status: 0 every applicable rule passed, 1 a rule "
        "failed, 2 the audit is incomplete (unreadable capture, bad profile or options).",
    )
    p.add_argument("capture", nargs="?", type=Path, metavar="FILE.pcap", help="the capture")
    p.add_argument(
        "--profile",
        default="linkstack",
        help="a built-in profile name or a TOML file of the channel's managed parameters "
        "(default: linkstack, the emulator's own channels)",
    )
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here")
    p.add_argument("--rules", metavar="ID,ID", help=RULES_HELP)
    p.add_argument("--list-rules", action="store_true", help="print the rule catalogue and exit")
    p.set_defaults(func=run_conform)
    return p


def run_conform(args: argparse.Namespace) -> int:
    # imported here so that `linkstack --help`, which imports this package, stays fast
    from linkstack.conformance.checker import check_capture, select_rules  # noqa: PLC0415
    from linkstack.conformance.profile import load_profile  # noqa: PLC0415
    from linkstack.conformance.report import (  # noqa: PLC0415
        format_text,
        list_rules_text,
        write_junit,
    )

    rules = select_rules(args.rules)
    if args.list_rules:
        sys.stdout.write(list_rules_text(rules))
        return 0
    if args.capture is None:
        print("linkstack conform: give a capture (FILE.pcap), or --list-rules", file=sys.stderr)
        return 2
    profile = load_profile(args.profile)
    if not args.capture.is_file():
        print(f"linkstack conform: no such file: {args.capture}", file=sys.stderr)
        return 2
    report = check_capture(args.capture, profile, rules)
    sys.stdout.write(format_text(report))
    if args.junit is not None:
        write_junit(report, args.junit)
    return report.exit_code
