"""The ``linkstack`` command line."""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linkstack import __version__
from linkstack.errors import DecodeError, LinkstackError

if TYPE_CHECKING:
    from linkstack.runtime.scenario import ScenarioFile


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"linkstack {__version__} (Python {platform.python_version()})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.link_only:
        from linkstack.tools import framing_demo

        return 0 if framing_demo.run(seed=args.seed) else 1
    from linkstack.tools import demo

    prompts = demo.read_prompts(args.prompts) if args.prompts else demo.PROMPTS
    if args.queries is None:  # one a prompt of a prompts file, 8 of the demo's own
        args.queries = len(prompts) if args.prompts else 8
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
        scenario=args.scenario,
        prompts=prompts,
        queries=args.queries,
        hours=args.hours,
        start_hours=args.start_hours,
        out_dir=args.out,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        capture=not args.no_capture,
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    from linkstack.tools.bench import framing
    from linkstack.tools.bench.timing import describe_machine, pin_one_core, print_table

    if args.what == "daemon":  # processes of its own, each placed on a core by the bench
        from linkstack.tools.bench import daemon

        runs = args.runs if args.runs is not None else (1 if args.quick else 3)
        if runs < 1:
            print("linkstack bench: --runs must be at least 1", file=sys.stderr)
            return 2
        return daemon.main(quick=args.quick, runs=runs)
    if args.what == "soak":  # the daemons for an hour, real time: their memory
        from linkstack.tools.bench import soak

        if not (args.minutes > 0 and args.rate > 0 and args.sample_s > 0):
            print(
                "linkstack bench soak: --minutes, --rate, --sample-s must be > 0", file=sys.stderr
            )
            return 2
        return soak.main(
            args.minutes,
            args.rate,
            separate=args.separate,
            sample_s=args.sample_s,
            target=args.target,
            start_t_s=args.start_t_s,
        )
    if args.what == "sweep":  # every core, by Ray: not pinned
        from linkstack.tools.bench import sweep

        runs = args.runs if args.runs is not None else (1 if args.quick else 3)
        if runs < 1:
            print("linkstack bench: --runs must be at least 1", file=sys.stderr)
            return 2
        print(f"# {describe_machine()}")
        return sweep.main(quick=args.quick, runs=runs)
    pinned = "not pinned (--no-pin)" if args.no_pin else pin_one_core()
    print(f"# {describe_machine()}; {pinned}")
    if args.what == "scale":  # each case in a fresh process (pinned as this one)
        from linkstack.tools.bench import scale

        if (
            any(not 1 <= n <= 2800 for n in args.satellites or ())
            or (args.queries is not None and args.queries < 1)
            or (args.hours is not None and args.hours <= 0)
        ):
            print(
                "linkstack bench scale: --satellites in 1..2800, --queries >= 1, --hours > 0",
                file=sys.stderr,
            )
            return 2
        sizes = tuple(args.satellites) if args.satellites else None
        return scale.main(args.quick, sizes, args.queries, args.hours)
    if args.what in ("framing", "all"):
        print("# running framing benchmarks" + (" (quick)" if args.quick else "") + " ...")
        results = framing.run(quick=args.quick)
        print_table("linkstack bench framing", results, "packets")
    if args.what in ("coding", "all"):
        from linkstack.tools.bench import coding

        print("# running coding benchmarks" + (" (quick)" if args.quick else "") + " ...")
        print_table("linkstack bench coding", coding.run(quick=args.quick), "units")
    if args.what in ("channel", "all"):
        from linkstack.tools.bench import channel

        print("# running channel-model benchmarks" + (" (quick)" if args.quick else "") + " ...")
        print_table("linkstack bench channel", channel.run(quick=args.quick), "units")
    if args.what in ("contacts", "all"):
        from linkstack.tools.bench import contacts

        print("# running the contact-plan benchmark (2,800 satellites) ...", flush=True)
        contacts.print_results(contacts.run(quick=args.quick))
    if args.what in ("cop1", "all"):
        from linkstack.tools.bench import cop1

        print("# running COP-1 over lossy links ...", flush=True)
        print_table("linkstack bench cop1", cop1.run(quick=args.quick), "queries")
    if args.what in ("capture", "all"):
        from linkstack.tools.bench import capture

        print("# running the pcap capture benchmark ...", flush=True)
        print_table("linkstack bench capture", capture.run(quick=args.quick), "units")
    if args.what in ("backends", "all"):
        from linkstack.tools.bench import backends

        print("# running the model-backend benchmark (tiny Qwen3, random weights) ...", flush=True)
        backends.print_results(backends.run(quick=args.quick))
    if args.what in ("roundtrip", "all"):
        from linkstack.tools.bench import roundtrip

        print("# running round trips through the default scenario (tiny model) ...", flush=True)
        roundtrip.print_results(roundtrip.run(quick=args.quick))
    if args.what in ("fec", "all"):
        from linkstack.tools.bench import fec

        print("# running FEC benchmarks (first run compiles the kernels) ...", flush=True)
        fec.main(quick=args.quick)
    if args.what in ("sdls", "all"):
        from linkstack.tools.bench import sdls

        print("# running SDLS on TM frames (AES-256-GCM, AES-CMAC) ...", flush=True)
        sdls.print_results(sdls.run(quick=args.quick))
    return 0


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from linkstack.tools import fuzz

    return fuzz.main(args.iterations, args.seed, args.target)


def _sdls_lengths(text: str) -> object:
    from linkstack.tools.sdls_decode import spi_lengths

    return spi_lengths(text)


def _octets(text: str) -> int:
    """A count of octets (argparse type): a non-negative integer."""
    try:
        n = int(text, 0)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: want a number of octets, 0 or more")
    return n


def _cmd_decode(args: argparse.Namespace) -> int:
    from linkstack.ccsds import aos, cuc, spp, tc, tm

    text = sys.stdin.read() if args.hex == "-" else args.hex
    try:
        data = bytes.fromhex("".join(text.split()).replace(":", ""))
    except ValueError as exc:
        print(f"linkstack decode: not hexadecimal: {exc}", file=sys.stderr)
        return 2
    fecf = not args.no_fecf
    if args.profile is not None or args.layer == "cadu":
        from linkstack.tools import profile_decode

        if args.profile is None:
            print("linkstack decode: cadu needs --profile (its coding)", file=sys.stderr)
            return 2
        hand = profile_decode.HandFlags(
            fecf=False if args.no_fecf else None,
            ocf=True if args.ocf else None,
            insert_zone_len=args.insert_zone,
            segment_header=False if args.no_segment_header else None,
        )
        return profile_decode.main(args.layer, data, args.profile, hand)
    insert_zone = args.insert_zone or 0
    if args.layer == "uslp":
        from linkstack.tools.uslp_decode import print_uslp

        return print_uslp(data, insert_zone_len=insert_zone, fecf=fecf)
    if args.layer.startswith("sdls-"):
        from linkstack.tools.sdls_decode import print_security_header

        return print_security_header(
            args.layer.removeprefix("sdls-"),
            data,
            args.spi_lengths or [],
            fecf=fecf,
            segment_header=not args.no_segment_header,
            ocf=args.ocf,
            insert_zone_len=insert_zone,
        )
    obj: spp.SpacePacket | tm.TmFrame | tc.TcFrame | aos.AosFrame | cuc.CucValue
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
    "sdls",
    "daemon",  # real processes in real time: not part of "all"
    "soak",  # the daemons for an hour (--minutes): not part of "all"
    "scale",  # planned-2800 for 24 emulated hours, each size in its process: not in "all"
    "sweep",  # 16 sweep variants serially and on Ray, every core: not in "all"
    "all",
]


def _cmd_contacts(args: argparse.Namespace) -> int:
    import time

    from channels.contacts import DtnLinks, contact_plan, format_table, to_hdtn, to_ion
    from channels.scenarios import scenario_by_name
    from linkstack.runtime import scenario as scenario_file
    from linkstack.runtime.config import EmulationConfig

    if not 0 < args.hours <= 24 * 30:
        print("linkstack contacts: --hours must be in (0, 720]", file=sys.stderr)
        return 2
    if args.scenario_file and args.scenario:
        print(
            "linkstack contacts: give a scenario name or --scenario FILE, not both", file=sys.stderr
        )
        return 2
    named = args.scenario or "default"
    path = args.scenario_file or (named if named.endswith(".toml") else None)
    if path:  # a scenario file: its constellation, stations and links
        sf = scenario_file.load(path)
        scenario, config = sf.scenario, sf.emulation
    else:  # a built-in scenario or a TLE file, with the links of the default scenario file
        scenario, config = scenario_by_name(named), EmulationConfig()
    links = DtnLinks(
        uplink_rate_bps=config.uplink_rf.rate_bps,
        downlink_rate_bps=config.downlink_rf.rate_bps,
        isl_rate_bps=config.laser.rate_bps,
        uplink_acquisition_s=config.uplink_rf.receiver.acquisition_s,
        downlink_acquisition_s=config.downlink_rf.receiver.acquisition_s,
        isl_pat_s=config.laser.pat_s,
    )
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
        isl_max_range_m=config.laser.max_range_m,
        sunlight=args.format in ("table", "json") and not args.no_sunlight,
        sunlight_step_s=args.step,
    )
    if args.format == "table":
        text = format_table(plan)
    elif args.format == "ion":
        text = to_ion(plan, links)
    elif args.format == "hdtn":
        text = to_hdtn(plan, links, times=args.hdtn_times)
    else:
        text = plan.to_json()
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    print(
        f"# {len(plan.ground)} ground passes, {len(plan.isl)} laser-link windows, "
        f"{len(plan.sunlight)} sunlight intervals in {time.perf_counter() - t0:.1f} s"
        + (f"; written to {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    if args.format == "hdtn":  # the JSON has no room for them
        nodes = ", ".join(f"{n} {name}" for name, n in plan.nodes.items())
        print(f"# HDTN node numbers: {nodes}", file=sys.stderr)
    return 0


def _load_scenario(path: str | None) -> ScenarioFile:
    from linkstack.runtime import scenario

    return scenario.load(path) if path else scenario.load_default()


def _cmd_scenario(args: argparse.Namespace) -> int:
    from linkstack.runtime import scenario
    from linkstack.runtime.interface_settings import end_count

    if args.action == "show":
        if args.file in scenario.SHIPPED and not Path(args.file).exists():
            sys.stdout.write(scenario.shipped_text(args.file))  # a shipped one, by name
        elif args.file:
            sys.stdout.write(Path(args.file).read_text("utf-8"))
        else:
            sys.stdout.write(scenario.default_text())
        return 0
    if not args.file:
        print("linkstack scenario check: give the file to check", file=sys.stderr)
        return 2
    sf = scenario.load(args.file)
    sc = sf.scenario
    cfg = sf.emulation
    d = sf.daemon
    links = 2 * len(sc.satellites) + 2 * len(sc.isl_pairs)
    print(f"{args.file}: ok")
    print(f"  {sf.name}: {sf.description or '-'}")
    print(f"  epoch {sc.epoch:%Y-%m-%dT%H:%M:%SZ}; {len(sc.satellites)} satellites", end="")
    computing = "all" if cfg.computing is None else len(cfg.computing)
    print(f" ({computing} computing), {len(sc.isl_pairs)} laser pairs")
    print(f"  stations: {', '.join(s.name for s in sc.stations)}")
    print(
        f"  uplink {cfg.uplink_rf.name} {cfg.uplink_rf.rate_bps:g} bit/s, "
        f"downlink {cfg.downlink_rf.name} {cfg.downlink_rf.rate_bps:g} bit/s, "
        f"laser {cfg.laser.name}"
    )
    print(f"  model {cfg.backend}; ground {sf.ground.name}, queue {sf.queue_path}")
    print(f"  inference legs: {cfg.service.timing_source}")
    mqtt = f"{sf.mqtt.host}:{sf.mqtt.port}" if sf.mqtt.enabled else "off"
    print(f"  mqtt {mqtt}, topics {sf.mqtt.prefix}/{sf.ground.name}/...")
    ends = end_count(len(sc.satellites), d.sat_ports)
    print(
        f"  ports: channel {d.channel_port}..{d.channel_port + ends - 1}, "
        f"nodes {d.node_port}..{d.node_port + ends - 1} ({links} links on {ends} ends: "
        f"the ground, {ends - 1} of satellites), http {d.http_port or 'off'}"
    )
    return 0


def _cmd_daemon(args: argparse.Namespace) -> int:
    from linkstack import daemon

    settings = _load_scenario(args.scenario)
    opts = daemon.Options(
        role=args.role,
        names=tuple(args.name or ()),
        start=args.start,
        anchor=args.anchor,
        out_dir=args.out,
        runs_dir=args.runs_dir,
        queue=args.queue,
        queue_recover=args.queue_recover,
        http_port=args.http_port,
        capture=not args.no_capture,
        log_level=args.log_level,
        log_format=args.log_format,
    )
    return daemon.main(settings, opts)


def _cmd_ask(args: argparse.Namespace) -> int:
    import asyncio
    from dataclasses import replace

    from linkstack.daemon import ask, mqtt
    from payloads.messages import Params

    if args.count < 1 or not args.interval >= 0 or not args.timeout > 0:
        print("linkstack ask: --count >= 1, --interval >= 0, --timeout > 0", file=sys.stderr)
        return 2
    settings = _load_scenario(args.scenario)
    broker = settings.mqtt
    if args.host:
        broker = replace(broker, host=args.host)
    if args.port:
        broker = replace(broker, port=args.port)
    if args.username:  # this client's own name and password, not the scenario's
        broker = replace(broker, username=args.username, password="", password_env="")
        broker = replace(broker, password_file=args.password_file or "")
    elif args.password_file:
        print("linkstack ask: --password-file needs --username", file=sys.stderr)
        return 2
    id_len = mqtt.max_id_len(broker.username or None)  # a user name shares the ground's key
    if args.id is not None and not all(
        mqtt.valid_id(i, id_len) for i in ask.batch_ids(args.id, args.count)
    ):
        print(
            f"linkstack ask: --id {args.id!r} is not a usable id (1..{id_len} printable "
            "characters without '/', '+', '#' or spaces)",
            file=sys.stderr,
        )
        return 2
    params = Params(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        thinking=args.thinking,
        seed=args.seed,
    )
    request = mqtt.Request(args.prompt, args.id, args.target, args.stream, params, "linkstack-ask")
    ground = args.ground or settings.ground.name
    return asyncio.run(
        ask.ask(
            broker,
            ground,
            request,
            timeout_s=args.timeout,
            count=args.count,
            interval_s=args.interval,
            json_lines=args.json,
        )
    )


def _beside(module: str, function: str) -> Callable[[Any], object]:
    """Adds a subcommand that lives beside the code it drives: ``module.function(sub)``,
    the module imported only then."""

    def add(sub: Any) -> object:
        return getattr(importlib.import_module(module), function)(sub)

    return add


def _add_replay(sub: Any) -> object:
    from linkstack.capture import replay_cli
    from linkstack.conformance.portplan import plan_ports

    return replay_cli.add_replay_parser(sub, port_plan=plan_ports)  # the daemons' port plan


# Their modules pull in numba, aiohttp, matplotlib...: a command imports only its own.
BESIDE: dict[str, Callable[[Any], object]] = {
    "replay": _add_replay,
    "capture-samples": _beside("linkstack.capture.samples", "add_samples_parser"),
    "conform": _beside("linkstack.conformance", "add_conform_parser"),
    "wireshark": _beside("linkstack.tools.wireshark", "add_wireshark_parser"),
    "settings": _beside("linkstack.tools.link_settings", "add_settings_parser"),
    "packets": _beside("linkstack.tools.packet_timelines", "add_packets_parser"),
    "broker": _beside("linkstack.daemon.broker_config", "add_broker_parser"),
    "calibrate": _beside("linkstack.tools.calibrate", "add_calibrate_parser"),
    "roundtrip-study": _beside("linkstack.tools.roundtrip_study", "add_roundtrip_study_parser"),
    "sweep": _beside("linkstack.tools.sweep", "add_sweep_parser"),
    "view": _beside("linkstack.tools.view_cmd", "add_view_parser"),
    "report": _beside("linkstack.tools.report_cmd", "add_report_parser"),
}


def _command_in(argv: Sequence[str] | None) -> str | None:
    """The subcommand ``argv`` names (its first word that is not an option), or None."""
    words = sys.argv[1:] if argv is None else argv
    return next((w for w in words if not w.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
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
        description="Queries from the ground to the computing satellites of a scenario (the "
        "shipped default: 12 in one plane, 5 stations) and back over the CCSDS stack, in "
        "emulated time; each answer with its route and timeline, the run's percentiles, a "
        "JSON report, a chart and a capture.",
    )
    p.add_argument(
        "--model",
        default=None,
        help="backend spec: tiny (random weights), hf:Qwen/Qwen3-0.6B, hf:/local/dir, "
        "openai:http://host:port/v1 (default: the scenario's model; tiny for the default)",
    )
    p.add_argument(
        "--scenario",
        metavar="FILE",
        help="scenario file (TOML, as for the daemons), or a shipped one by name: "
        "planned-2800 (2,800 satellites, USLP); default: the shipped default",
    )
    p.add_argument(
        "--prompts",
        metavar="FILE",
        help="prompts file: one prompt a line (UTF-8; blank lines and lines that begin "
        "with # are skipped), taken in turn (default: the demo's own)",
    )
    p.add_argument(
        "--queries",
        type=int,
        default=None,
        help="how many queries (default 8, or one a prompt of --prompts)",
    )
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
    p.add_argument(
        "--runs",
        type=int,
        default=None,
        help="daemon, sweep: runs of each case, reported by their medians (default 3; "
        "1 with --quick)",
    )
    p.add_argument(
        "--satellites",
        type=int,
        nargs="+",
        metavar="N",
        help="scale only: constellation sizes (12: the default scenario; more: parts of "
        "planned-2800; default 12 192 700 2800)",
    )
    p.add_argument(
        "--queries", type=int, default=None, help="scale only: queries a case (default 10000)"
    )
    p.add_argument(
        "--hours", type=float, default=None, help="scale only: emulated span (default 24)"
    )
    p.add_argument("--minutes", type=float, default=60.0, help="soak only: how long (default 60)")
    p.add_argument(
        "--rate", type=float, default=0.5, help="soak only: queries a second (default 0.5)"
    )
    p.add_argument(
        "--sample-s",
        type=float,
        default=60.0,
        help="soak only: seconds between two RSS samples (default 60)",
    )
    p.add_argument(
        "--separate",
        action="store_true",
        help="soak only: the channel, sat and ground daemons instead of 'daemon all'",
    )
    p.add_argument(
        "--target", default=None, help="soak only: every query for this satellite (default: any)"
    )
    p.add_argument(
        "--start-t-s",
        type=float,
        default=10_765.0,
        help="soak only: the scenario instant the daemons start from, in seconds after the "
        "epoch (default 10765: the passes over Mohe and Sanya overlap from there)",
    )
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "contacts",
        help="the contact plan of a scenario: passes and laser-link windows",
        description="Ground passes (AOS, LOS, max elevation) and laser-link windows of a "
        "scenario, with each satellite's sunlit and eclipse (penumbra, umbra) intervals "
        "beside them, as a table, JSON, or the contact plan of a DTN bundle agent: NASA ION's "
        "ionadmin commands (absolute UTC times, bytes/s) or NASA HDTN's JSON (bit/s). The "
        "DTN plans take the rates and acquisition times of the scenario file's links (of "
        "the default scenario file for a built-in scenario or a TLE file).",
    )
    p.add_argument(
        "scenario",
        nargs="?",
        help="'default' (12 SSO satellites, the default), 'planned-2800', a TLE file, or a "
        "scenario file (*.toml)",
    )
    p.add_argument(
        "--scenario",
        dest="scenario_file",
        metavar="FILE",
        help="a scenario file (TOML): its constellation, stations and links",
    )
    p.add_argument("--hours", type=float, default=24.0, help="span in hours (default 24)")
    p.add_argument("--start-hours", type=float, default=0.0, help="start after the epoch")
    p.add_argument(
        "--step",
        type=float,
        default=10.0,
        help="sampling step in s of passes and sunlight (default 10)",
    )
    p.add_argument("--format", choices=["table", "json", "ion", "hdtn"], default="table")
    p.add_argument(
        "--hdtn-times",
        choices=["unix", "relative"],
        default="unix",
        help="hdtn: 'unix' POSIX seconds (run HDTN's router with --use-unix-timestamp; the "
        "default) or 'relative' seconds after the plan's start (HDTN loads it then)",
    )
    p.add_argument("--samples", action="store_true", help="JSON: include sampled geometry")
    p.add_argument("--no-isl", action="store_true", help="skip the laser-link windows")
    p.add_argument(
        "--no-sunlight",
        action="store_true",
        help="skip each satellite's sunlit/penumbra/umbra intervals (table and JSON show them)",
    )
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.set_defaults(func=_cmd_contacts)

    p = sub.add_parser(
        "daemon",
        help="run one role of a scenario as a daemon (ground, sat, channel, all)",
        description="Run the emulator as long-lived processes with real sockets: 'channel' "
        "(the links and their physics), 'ground' (mission control, COP-1, the SQLite query "
        "queue, MQTT), 'sat' (satellites and their model), or 'all' in one process. Units "
        "travel as UDP datagrams on loopback, behind a link header, on a few ports (a pair "
        "per end: the ground, blocks of satellites). Stops on SIGINT/SIGTERM "
        "(captures closed, report.json written by the ground).",
    )
    p.add_argument("role", choices=["ground", "sat", "channel", "all"])
    p.add_argument("--scenario", help="scenario file (TOML; default: the shipped default)")
    p.add_argument(
        "--name",
        action="append",
        metavar="SAT",
        help="sat role: run only this satellite (repeatable; default: all of them)",
    )
    p.add_argument(
        "--start",
        default="now",
        help="the scenario instant at the anchor: 'now' (the real UTC time, the default), "
        "+SECONDS after the scenario epoch, or an ISO instant like 2026-01-01T02:59:20Z",
    )
    p.add_argument(
        "--anchor",
        help="the wall-clock instant (Unix seconds or ISO) at which the scenario is at "
        "--start (default: when this daemon starts); give every daemon of a run the same",
    )
    p.add_argument("--out", type=Path, help="output folder (default: daemon.out_dir)")
    p.add_argument(
        "--runs-dir",
        type=Path,
        help="ground, all: each run's report goes to a new folder under this one "
        "(default: daemon.runs_dir, runs/ in the current directory)",
    )
    p.add_argument("--queue", type=Path, help="ground: the SQLite queue file")
    p.add_argument(
        "--queue-recover",
        action="store_true",
        help="ground: if the queue file is damaged, copy every row that can still be read "
        "into a new one (the damaged file kept beside it as FILE.damaged-N) and say how "
        "many rows were kept and lost, instead of refusing to start",
    )
    p.add_argument("--http-port", type=int, help="HTTP status port (0: none)")
    p.add_argument("--no-capture", action="store_true", help="write no pcap")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="json", choices=["json", "text"])
    p.set_defaults(func=_cmd_daemon)

    p = sub.add_parser(
        "scenario",
        help="scenario files: show the default, check one",
        description="'show' prints the shipped default scenario (or FILE); 'check FILE' "
        "reads and checks a scenario file and summarises it. FILE may name a shipped "
        "scenario: planned-2800.",
    )
    p.add_argument("action", choices=["show", "check"])
    p.add_argument("file", nargs="?")
    p.set_defaults(func=_cmd_scenario)

    p = sub.add_parser(
        "ask",
        help="ask the ground daemon a question over MQTT; print the answer and its timeline",
        description="Publish a query to the ground daemon over MQTT and print the answer, its "
        "route and the legs of its round trip; --count N asks N times, --interval S apart, "
        "and ends with p50/p95/p99 of the round trip and of each leg. Fails at once when the "
        "broker cannot be reached (exit 4) or the ground is not online (exit 5). Exit: 0 "
        "answered, 1 refused, 2 the broker refused us, 3 no answer in time.",
    )
    p.add_argument("prompt")
    p.add_argument("--scenario", help="scenario file (for the broker and the ground's name)")
    p.add_argument("--target", help="a satellite name (default: any)")
    p.add_argument("--stream", action="store_true", help="stream the answer as it is made")
    p.add_argument("--id", help="the query id (default: a fresh one); with --count, ID-1 ... ID-N")
    p.add_argument("--ground", help="the ground segment's name (default: the scenario's)")
    p.add_argument("--host", help="the broker (default: the scenario's mqtt.host)")
    p.add_argument("--port", type=int, help="the broker's port (default: mqtt.port)")
    p.add_argument(
        "--username",
        help="ask as this MQTT user, on its own topics (default: the scenario's mqtt.username)",
    )
    p.add_argument("--password-file", help="its password: the first line of this file (mode 600)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--thinking", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds each query may wait for its answer (default 1800: a pass can be a "
        "quarter of an hour away)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="JSON lines on stdout: one object a query (id, outcome, answer, timeline, "
        "client_round_trip_s), then the batch's summary",
    )
    p.add_argument("--count", type=int, default=1, help="queries to ask (default 1)")
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between two queries of --count (default 1)",
    )
    p.set_defaults(func=_cmd_ask)

    p = sub.add_parser("fuzz", help="fuzz every decoder with random and damaged units")
    p.add_argument("--iterations", type=int, default=100_000, help="inputs per target")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--target", action="append", help="only targets whose name starts with this (repeatable)"
    )
    p.set_defaults(func=_cmd_fuzz)

    p = sub.add_parser("decode", help="decode one unit given in hex and print its fields")
    p.add_argument(
        "layer",
        choices=[
            *("spp", "tm", "tc", "aos", "uslp", "cuc", "cadu"),
            *("sdls-tc", "sdls-tm", "sdls-aos", "sdls-uslp"),
        ],
        help="the unit's layer; cadu: a CADU of the profile's downlink (needs --profile)",
    )
    p.add_argument(
        "hex", help="the unit, in hexadecimal (spaces and colons allowed); - reads it from stdin"
    )
    p.add_argument("--no-fecf", action="store_true", help="the frame has no FECF")
    p.add_argument(
        "--insert-zone",
        type=_octets,
        default=None,
        metavar="N",
        help="uslp, sdls-uslp: the channel's insert zone is N octets (default 0)",
    )
    p.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help="tm, aos, tc, cadu: take FECF, OCF, insert zone, frame length (and a CADU's "
        "ASM, randomization, Reed-Solomon) from this mission profile (built-in: "
        "linkstack, meteor-m2-lrpt, mars2020; see replay --profile); a hand flag that "
        "contradicts it is an error",
    )
    p.add_argument("--no-segment-header", action="store_true", help="TC frame without one")
    p.add_argument("--ocf", action="store_true", help="AOS frame carries an OCF")
    p.add_argument("--cuc", action="store_true", help="packet secondary header is a CUC code")
    p.add_argument(
        "--spi-lengths",
        action="append",
        type=_sdls_lengths,
        metavar="SPI:IV:SN:PAD:MAC",
        help="sdls-*: an SPI's security header field and MAC lengths, octets (repeatable; "
        "default 12:0:0:16 for any SPI)",
    )
    p.set_defaults(func=_cmd_decode)
    # the subcommands beside their code: the one named, none for a built-in one, all of
    # them for the help or a word that names no command (so that argparse lists them)
    command = _command_in(argv)
    if command in BESIDE:
        BESIDE[command](sub)
    elif command not in sub.choices:
        for add in BESIDE.values():
            add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
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
