"""The ``linkstack`` command line."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from linkstack import __version__
from linkstack.errors import DecodeError, LinkstackError


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"linkstack {__version__} (Python {platform.python_version()})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.link_only:
        from linkstack import framing_demo

        return 0 if framing_demo.run(seed=args.seed) else 1
    from linkstack import demo

    if (
        args.queries < 1
        or not 0 < args.hours <= 48
        or args.start_hours < 0
        or args.max_new_tokens < 1
    ):
        print(
            "linkstack demo: --queries >= 1, --hours in (0, 48], --start-hours >= 0, "
            "--max-new-tokens >= 1",
            file=sys.stderr,
        )
        return 2
    return demo.run(
        model=args.model,
        queries=args.queries,
        hours=args.hours,
        start_hours=args.start_hours,
        out_dir=args.out,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        capture=not args.no_capture,
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    from linkstack.bench import framing
    from linkstack.bench.timing import describe_machine, pin_one_core, print_table

    pinned = "not pinned (--no-pin)" if args.no_pin else pin_one_core()
    print(f"# {describe_machine()}; {pinned}")
    if args.what in ("framing", "all"):
        print("# running framing benchmarks" + (" (quick)" if args.quick else "") + " ...")
        results = framing.run(quick=args.quick)
        print_table("linkstack bench framing", results, "packets")
    if args.what in ("coding", "all"):
        from linkstack.bench import coding

        print("# running coding benchmarks" + (" (quick)" if args.quick else "") + " ...")
        print_table("linkstack bench coding", coding.run(quick=args.quick), "units")
    if args.what in ("channel", "all"):
        from linkstack.bench import channel

        print("# running channel-model benchmarks" + (" (quick)" if args.quick else "") + " ...")
        print_table("linkstack bench channel", channel.run(quick=args.quick), "units")
    if args.what in ("contacts", "all"):
        from linkstack.bench import contacts

        print("# running the contact-plan benchmark (2,800 satellites) ...", flush=True)
        contacts.print_results(contacts.run(quick=args.quick))
    if args.what in ("cop1", "all"):
        from linkstack.bench import cop1

        print("# running COP-1 over lossy links (1,000 queries each) ...", flush=True)
        print_table("linkstack bench cop1", cop1.run(quick=args.quick), "queries")
    if args.what in ("capture", "all"):
        from linkstack.bench import capture

        print("# running the pcap capture benchmark ...", flush=True)
        print_table("linkstack bench capture", capture.run(quick=args.quick), "units")
    if args.what in ("backends", "all"):
        from linkstack.bench import backends

        print("# running the model-backend benchmark (tiny Qwen3, random weights) ...", flush=True)
        backends.print_results(backends.run(quick=args.quick))
    if args.what in ("roundtrip", "all"):
        from linkstack.bench import roundtrip

        print("# running round trips through the default scenario (tiny model) ...", flush=True)
        roundtrip.print_results(roundtrip.run(quick=args.quick))
    if args.what in ("fec", "all"):
        from linkstack.bench import fec

        print("# running FEC benchmarks (first run compiles the kernels) ...", flush=True)
        fec.main(quick=args.quick)
    return 0


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from linkstack import fuzz

    names = [t.name for t in fuzz.TARGETS]
    for prefix in args.target or ():
        if not any(n.startswith(prefix) for n in names):
            print(f"linkstack fuzz: no target starts with {prefix!r}; targets: {', '.join(names)}")
            return 2
    print(f"# fuzzing {args.iterations:,} inputs per target, seed {args.seed}")
    print(f"  {'target':<24}{'inputs':>10}{'accepted':>10}{'refused':>10}{'seconds':>9}  result")

    def progress(r: fuzz.Report) -> None:
        verdict = "ok" if not r.failures else f"{len(r.failures)} FAILURES"
        print(
            f"  {r.target:<24}{r.inputs:>10,}{r.accepted:>10,}{r.refused:>10,}"
            f"{r.seconds:>9.1f}  {verdict}",
            flush=True,
        )

    reports = fuzz.run(args.iterations, args.seed, args.target, progress)
    failed = [r for r in reports if r.failures]
    for r in failed:
        print(f"\n{r.target}:")
        for f in r.failures:
            print(f"  {f}")
    return 1 if failed else 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from linkstack import aos, cuc, spp, tc, tm

    try:
        data = bytes.fromhex(args.hex.replace(" ", "").replace(":", ""))
    except ValueError as exc:
        print(f"linkstack decode: not hexadecimal: {exc}", file=sys.stderr)
        return 2
    fecf = not args.no_fecf
    try:
        if args.layer == "spp":
            obj = spp.SpacePacket.unpack(data, cuc.CucFormat() if args.cuc else 0)
        elif args.layer == "tm":
            obj = tm.TmFrame.unpack(data, fecf)
        elif args.layer == "tc":
            obj = tc.TcFrame.unpack(data, fecf, not args.no_segment_header)
        elif args.layer == "aos":
            cfg = aos.AosConfig(frame_length=len(data), fecf=fecf, ocf=args.ocf)
            obj = aos.AosFrame.unpack(data, cfg)
        else:
            obj = cuc.CucFormat().unpack(data)[0]
    except DecodeError as exc:
        print(f"refused: {exc}")
        return 1
    print(obj)
    return 0


BENCHMARKS = [
    "framing",
    "coding",
    "fec",
    "channel",
    "contacts",
    "cop1",
    "backends",
    "capture",
    "roundtrip",
    "all",
]


def _cmd_contacts(args: argparse.Namespace) -> int:
    import time

    from channels.contacts import contact_plan, format_table, to_ion
    from channels.scenarios import scenario_by_name

    if not 0 < args.hours <= 24 * 30:
        print("linkstack contacts: --hours must be in (0, 720]", file=sys.stderr)
        return 2
    scenario = scenario_by_name(args.scenario)
    t0 = time.perf_counter()
    print(
        f"# {scenario.name}: {len(scenario.satellites)} satellites, "
        f"{len(scenario.stations)} stations, {len(scenario.isl_pairs)} laser links; "
        f"computing {args.hours:g} h at {args.step:g} s steps ...",
        file=sys.stderr,
        flush=True,
    )
    plan = contact_plan(
        scenario,
        duration_s=args.hours * 3600.0,
        start_t_s=args.start_hours * 3600.0,
        step_s=args.step,
        samples=args.samples,
        isl=not args.no_isl,
    )
    if args.format == "table":
        text = format_table(plan)
    elif args.format == "ion":
        text = to_ion(plan)
    else:
        text = plan.to_json()
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    print(
        f"# {len(plan.ground)} ground passes, {len(plan.isl)} laser-link windows "
        f"in {time.perf_counter() - t0:.1f} s"
        + (f"; written to {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkstack",
        description="A space-to-ground link and CCSDS protocol stack emulator.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser(
        "demo",
        help="the main demo: queries to the onboard model and back, round trips measured",
        description="Queries from the ground to the 12 computing satellites of the default "
        "scenario and back over the CCSDS stack, in emulated time; each answer with its "
        "route and timeline, the run's percentiles, a JSON report, a chart and a capture.",
    )
    p.add_argument(
        "--model",
        default="tiny",
        help="backend spec: tiny (default, random weights), hf:Qwen/Qwen3-0.6B, "
        "hf:/local/dir, openai:http://host:port/v1",
    )
    p.add_argument("--queries", type=int, default=8, help="how many queries (default 8)")
    p.add_argument("--hours", type=float, default=3.0, help="emulated span (default 3)")
    p.add_argument(
        "--start-hours",
        type=float,
        default=1.0,
        help="first query this long after the epoch (default 1)",
    )
    p.add_argument("--max-new-tokens", type=int, default=48, help="per answer (default 48)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out/demo"),
        help="where report.json, report.png and demo.pcap go (default out/demo)",
    )
    p.add_argument("--no-capture", action="store_true", help="do not write demo.pcap")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument(
        "--link-only",
        action="store_true",
        help="the old link-layer round trip (framing and coding only)",
    )
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("bench", help="measure throughput (one core)")
    p.add_argument("what", choices=BENCHMARKS, help="which benchmark")
    p.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "contacts",
        help="the contact plan of a scenario: passes and laser-link windows",
        description="Ground passes (AOS, LOS, max elevation) and laser-link windows of a "
        "scenario, as a table, JSON, or NASA ION contact-plan lines.",
    )
    p.add_argument(
        "scenario",
        nargs="?",
        default="default",
        help="'default' (12 SSO satellites), 'planned-2800', or a TLE file (default: default)",
    )
    p.add_argument("--hours", type=float, default=24.0, help="span in hours (default 24)")
    p.add_argument("--start-hours", type=float, default=0.0, help="start after the epoch")
    p.add_argument("--step", type=float, default=10.0, help="sampling step in s (default 10)")
    p.add_argument("--format", choices=["table", "json", "ion"], default="table")
    p.add_argument("--samples", action="store_true", help="JSON: include sampled geometry")
    p.add_argument("--no-isl", action="store_true", help="skip the laser-link windows")
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.set_defaults(func=_cmd_contacts)

    p = sub.add_parser("fuzz", help="fuzz every decoder with random and damaged units")
    p.add_argument("--iterations", type=int, default=100_000, help="inputs per target")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--target", action="append", help="only targets whose name starts with this (repeatable)"
    )
    p.set_defaults(func=_cmd_fuzz)

    p = sub.add_parser("decode", help="decode one unit given in hex and print its fields")
    p.add_argument("layer", choices=["spp", "tm", "tc", "aos", "cuc"])
    p.add_argument("hex", help="the unit, in hexadecimal (spaces and colons allowed)")
    p.add_argument("--no-fecf", action="store_true", help="the frame has no FECF")
    p.add_argument("--no-segment-header", action="store_true", help="TC frame without one")
    p.add_argument("--ocf", action="store_true", help="AOS frame carries an OCF")
    p.add_argument("--cuc", action="store_true", help="packet secondary header is a CUC code")
    p.set_defaults(func=_cmd_decode)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except LinkstackError as exc:
        print(f"linkstack {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
