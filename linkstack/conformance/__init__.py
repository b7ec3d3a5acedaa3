"""Protocol conformance: check a capture against the rules of the CCSDS standards.

``linkstack conform FILE --profile PROFILE`` reads a capture (pcap or pcapng:
linkstack's own, or any capture of UDP datagrams on the layer ports, see
:mod:`linkstack.capture.pcap`, or with ``--scenario FILE`` on the daemons' port plan,
:mod:`.portplan`) and
judges every unit against a catalogue of rules (:mod:`.rules`), each citing the
standard and the section it comes from; a profile
(:mod:`linkstack.capture.mission_profile`) gives the managed parameters a capture
does not carry (without ``--profile``, the ``[frames] profile`` a ``--scenario`` names:
:mod:`linkstack.runtime.scenario_profile`; the profile's ``[sdls]``, or ``--scenario``'s,
the security associations of
frames under SDLS, else those linkstack recorded in the capture's side file; ``--keys``
verifies and decrypts them). The
report says which rules passed,
which failed (the first offending unit: its index, time, layer, field, what was
expected and what was found, and how many units failed), and which did not apply and
why; ``--junit FILE`` writes the same as JUnit XML for CI systems.

Modules of the passive suite (:mod:`.passive`): :mod:`.passive.rules` (the catalogue),
:mod:`linkstack.capture.mission_profile` (profiles, TOML; both suites and replay read
them), :mod:`.passive.checker` (units ->
observations -> verdicts, over :mod:`.passive.observations`, :mod:`.passive.decoding`,
:mod:`.passive.analysis` and :mod:`.passive.verdicts`), :mod:`.passive.report` (text,
JUnit), :mod:`.passive.session` (a scripted good session) and :mod:`.passive.broken`
(the deliberately broken captures made from it under ``tests/conformance``).

The active suite (:mod:`.active`): ``linkstack conform --target udp://HOST:PORT --role
sat|ground`` (or ``--role ... --scenario FILE --satellite NAME``, which takes the ports
from the scenario's port plan) sends crafted units to a live endpoint and judges what
comes back, case by case (``ACT-...``), with the same report and exit statuses:
:mod:`.active.runner` (the sans-I/O machinery), :mod:`.active.cases` (the cases),
:mod:`.active.udp` (options, the UDP driver, the run), :mod:`.active.report` (text,
JUnit), :mod:`.active.stub` (a spacecraft that accepts everything, which must fail it),
:mod:`.active.sdls` (with ``--keys``: the tester's SDLS, for a spacecraft that runs it).

What both reports share (status labels, the result line, the catalogue listing, the
JUnit skeleton) is in :mod:`.reporting`.

This module stays light: ``linkstack --help`` imports it to add the subcommand; the
work is imported when the subcommand runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

VIEWS = ("sent", "delivered")  # linkstack.conformance.portplan's, kept light here
DEFAULT_VIEW = "sent"
RULES_HELP = "comma-separated rule identifiers to run (patterns like 'TM-*' allowed)"


def add_conform_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``conform`` to the ``linkstack`` command line (``subparsers`` of its parser)."""
    p = subparsers.add_parser(
        "conform",
        help="check a capture against the CCSDS rules, or test a live endpoint (--target)",
        description="Check a pcap capture (linkstack's, or any capture of UDP datagrams on "
        "the layer ports) against the rules of the CCSDS standards, each citing its "
        "standard and section; or, with --target/--role, test a live endpoint: send it "
        "crafted units (valid, out of window, wrong SCID, bad FECF, bad BCH, garbage) and "
        "judge what comes back (its CLCWs, its CLTUs). Exit status: 0 every applicable "
        "rule passed, 1 a rule failed, 2 the audit is incomplete (unreadable capture, no "
        "contact with the endpoint, bad profile or options).",
    )
    p.add_argument(
        "capture",
        nargs="?",
        type=Path,
        metavar="FILE",
        help="the capture (pcap or pcapng, e.g. tshark's)",
    )
    p.add_argument(
        "--profile",
        help="a built-in profile name or a TOML file of the channel's managed parameters "
        "(default: the --scenario's [frames] profile when it names one, else linkstack, the "
        "emulator's own channels; given beside such a scenario, it must be the same profile)",
    )
    p.add_argument(
        "--view",
        choices=VIEWS,
        default=DEFAULT_VIEW,
        help="with --scenario and a capture of the daemons: judge the units as their "
        "senders emitted them (sent, the default: into the channel) or as the channel "
        "delivered them (delivered: after bit errors and losses)",
    )
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here")
    p.add_argument("--rules", metavar="ID,ID", help=RULES_HELP)
    p.add_argument(
        "--list-rules",
        action="store_true",
        help="print the rule catalogue (with --role: the active cases) and exit",
    )
    a = p.add_argument_group("active tests against a live endpoint")
    a.add_argument(
        "--target",
        metavar="udp://HOST:PORT",
        help="where to send: the spacecraft's uplink port (sat) or the ground's downlink "
        "port (ground)",
    )
    a.add_argument("--role", choices=["sat", "ground"], help="what the target is (default sat)")
    a.add_argument(
        "--listen",
        metavar="[HOST:]PORT",
        help="where the endpoint sends: its TM CADUs (sat) or its CLTUs (ground)",
    )
    a.add_argument(
        "--scenario",
        help="a scenario file. With a capture: its daemons' port plan tells each UDP "
        "datagram's link and layer (a capture of running daemons, tshark -i lo: a few ports, "
        "each datagram's link header naming its link); its [frames] profile, when it names "
        "one, is the profile the capture is judged by, its [sdls] the frames' SDLS. "
        "With --role: the ports, SCID, FARM window and coding of --satellite",
    )
    a.add_argument("--satellite", metavar="NAME", help="the satellite (default: the first)")
    a.add_argument("--scid", type=integer, help="the spacecraft identifier (e.g. 0x45)")
    a.add_argument("--vcid", type=integer, help="the COP-1 virtual channel (default 0)")
    a.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to wait for each expected response (default 10)",
    )
    a.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        help="the SDLS key file (linkstack's JSON, mode 0600). With a capture: every MAC "
        "verified and every encrypted data field read, for the frames under SDLS (the "
        "profile's [sdls], --scenario's, or else the capture's side file's; a key file beside "
        "the capture is never read unless given); without it they cannot be judged. --role sat "
        "with a scenario whose [sdls] is enabled: the tester protects its TC frames as the "
        "ground does and runs the SDLS cases (SDLS-ACT-*); default: the scenario's key_file",
    )
    a.add_argument(
        "--sdls-counter",
        type=integer,
        metavar="N",
        help="the IV or sequence number of the tester's first protected frame (default: "
        "where the satellite's ground would start now, above what the endpoint took)",
    )
    a.add_argument(
        "--link-header",
        metavar="SENT:TAKEN",
        help="without --scenario, against linkstack's daemons: put the link header of link "
        "SENT in front of each unit sent, and take only the units behind that of link TAKEN "
        "(the link indices of the daemons' port plan; --scenario sets them)",
    )
    a.add_argument(
        "--interval",
        type=float,
        help="ground role: seconds between the TM frames the tester sends (default: the "
        "scenario's CLCW interval, or 0.2)",
    )
    p.set_defaults(func=run_conform)
    return p


def integer(text: str) -> int:
    """A number in decimal or with a base prefix (0x45)."""
    return int(text, 0)


def run_conform(args: argparse.Namespace) -> int:
    if getattr(args, "target", None) or getattr(args, "role", None):
        return _run_active(args)
    # imported here so that `linkstack --help`, which imports this package, stays fast
    from linkstack.conformance.passive.checker import check_capture, select_rules  # noqa: PLC0415
    from linkstack.conformance.passive.report import (  # noqa: PLC0415
        format_text,
        list_rules_text,
        write_junit,
    )
    from linkstack.runtime.scenario_profile import choose_profile  # noqa: PLC0415

    rules = select_rules(args.rules)
    if args.list_rules:
        sys.stdout.write(list_rules_text(rules))
        return 0
    if args.capture is None:
        print("linkstack conform: give a capture (FILE), or --list-rules", file=sys.stderr)
        return 2
    settings = None
    if args.scenario is not None:
        from linkstack.runtime import scenario as scenario_file  # noqa: PLC0415

        settings = scenario_file.load(args.scenario)
    # the scenario's [frames] profile, unless --profile differs (an error)
    named = settings.link_profile if settings is not None else None
    profile = choose_profile(args.profile, named, args.scenario)
    if not args.capture.is_file():
        print(f"linkstack conform: no such file: {args.capture}", file=sys.stderr)
        return 2
    links, ports_text, sdls_source = None, "", ""
    if settings is not None:
        from linkstack.capture.sdls_view import from_uplink  # noqa: PLC0415
        from linkstack.conformance.passive.checker import with_scenario_sdls  # noqa: PLC0415
        from linkstack.conformance.portplan import plan_ports  # noqa: PLC0415

        plan = plan_ports(args.scenario)
        links, ports_text = plan.ports, f"{plan.text}; view {args.view}"
        scenario_sas = from_uplink(settings.emulation.uplink)
        profile = with_scenario_sdls(profile, scenario_sas)
        sdls_source = f"--scenario {args.scenario}" if scenario_sas is not None else ""
    keys = None
    if args.keys is not None:
        from linkstack.ccsds.sdls_keys import Keyring  # noqa: PLC0415

        keys = Keyring.from_file(args.keys)
    report = check_capture(
        args.capture,
        profile,
        rules,
        links=links,
        views=(args.view,),
        ports_text=ports_text,
        keys=keys,
        sdls_source=sdls_source,
    )
    sys.stdout.write(format_text(report))
    if args.junit is not None:
        write_junit(report, args.junit)
    return report.exit_code


def _run_active(args: argparse.Namespace) -> int:
    from linkstack.conformance.active.cases import select_cases  # noqa: PLC0415
    from linkstack.conformance.active.report import list_cases_text  # noqa: PLC0415
    from linkstack.conformance.active.udp import run_active  # noqa: PLC0415

    if args.list_rules:
        sys.stdout.write(list_cases_text(select_cases(args.role or "sat", args.rules)))
        return 0
    if args.capture is not None:
        print(
            "linkstack conform: give a capture or --target/--role (an endpoint), not both",
            file=sys.stderr,
        )
        return 2
    if not args.timeout > 0:
        print("linkstack conform: --timeout must be positive", file=sys.stderr)
        return 2
    if args.interval is not None and not args.interval > 0:
        print("linkstack conform: --interval must be positive", file=sys.stderr)
        return 2
    return run_active(args)
