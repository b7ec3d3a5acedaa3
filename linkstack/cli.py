"""The ``linkstack`` command line."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from linkstack import __version__
from linkstack.errors import DecodeError, LinkstackError


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"linkstack {__version__} (Python {platform.python_version()})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from linkstack import framing_demo

    return 0 if framing_demo.run(seed=args.seed) else 1


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkstack",
        description="A space-to-ground link and CCSDS protocol stack emulator.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser("demo", help="run the main demo (for now: a framing-layer round trip)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("bench", help="measure throughput (one core)")
    p.add_argument("what", choices=["framing", "coding", "fec", "all"], help="which benchmark")
    p.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    p.set_defaults(func=_cmd_bench)

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
