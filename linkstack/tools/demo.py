"""``linkstack demo``: queries up, inference in orbit, answers down, measured leg by leg.

One process, no broker, emulated time, the default scenario (12 computing
satellites in one sun-synchronous plane with a laser ring, 5 ground stations) or a
scenario file (``--scenario``). A handful of queries are submitted over a few hours
of emulated time: some while a satellite is in view of a station, some while none
is (they wait in the ground queue for the next pass), some for a named satellite
out of view (they are relayed over the laser links, and so are their answers), one
streamed. Each answer is printed with its route and its timeline (the lines
``linkstack ask`` prints too: :func:`linkstack.runtime.report.timeline_lines`);
then the run's table and percentiles, and where the JSON report, the chart and the
capture were written.

The prompts are the demo's own, or those of a prompts file (``--prompts``: one
prompt a line; blank lines and lines that begin with ``#`` are skipped; UTF-8),
taken in turn. The model is the scenario's (the tiny Qwen3 with random weights,
for the default) unless ``--model`` names another (``hf:Qwen/Qwen3-0.6B``, a local
directory, ``openai:http://...``): with random weights its text is noise, and the
output says so.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from linkstack.runtime import scenario as scenario_files
from linkstack.runtime.emulation import Emulation
from linkstack.runtime.report import (
    REFERENCE_S,
    Timeline,
    format_table,
    satellites_text,
    timeline_lines,
    write_reports,
)
from linkstack.runtime.routing import ContactState
from linkstack.runtime.site import CaptureSink
from linkstack.text import escape
from linkstack.timebase import Clock
from payloads.backends import Backend, GenerationParams, make_backend
from payloads.client import Pending, QueryRefusedError
from payloads.messages import Answer, ErrorMessage, Params

if TYPE_CHECKING:
    from linkstack.runtime.uplink_config import UplinkConfig

DEFAULT_OUT = Path("out/demo")

PROMPTS = (
    "In two sentences: why does a sun-synchronous orbit keep the same local time?",
    "Estimate the cloud cover over 45N 7E from the last image, in one word.",
    "Summarise the last pass's telemetry anomalies for the operator.",
    "What is the orbital period of a satellite at 500 km altitude?",
    "Translate to French: the laser link to the next satellite is up.",
    "Name three uses of inference on board a satellite.",
    "Is a ship visible in the last image tile? Answer yes or no, then why.",
    "Write a haiku about a ground station at night.",
    "List the stations that saw this satellite today.",
    "How long does light take to cross 3,560 km?",
)


MAX_PROMPTS_FILE_BYTES = 16 << 20  # a prompts file larger than this is a mistake


def read_prompts(path: str | Path) -> list[str]:
    """The prompts of a prompts file: one a line, blank lines and lines that begin with
    ``#`` skipped; :class:`ConfigError` if it cannot be read or has none."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_PROMPTS_FILE_BYTES:
            raise ConfigError(
                "demo", "--prompts", f"{path}: larger than {MAX_PROMPTS_FILE_BYTES >> 20} MiB"
            )
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError("demo", "--prompts", f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError("demo", "--prompts", f"{path}: a directory, not a file") from None
    except OSError as exc:
        raise ConfigError("demo", "--prompts", f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("demo", "--prompts", f"{path}: not UTF-8 text ({exc})") from None
    prompts = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not prompts:
        raise ConfigError(
            "demo",
            "--prompts",
            f"{path}: no prompt in it (one a line; blank lines and # comments are skipped)",
        )
    return prompts


@dataclass
class Planned:
    """One query of the demo: when, for whom, and why it was chosen."""

    submit_t_s: float
    target: str | None
    stream: bool
    why: str
    prompt: str
    params: Params
    user: str = ""  # the ground station whose user asks (the stations in turn)


def plan_queries(
    emu: Emulation,
    count: int,
    start_t_s: float,
    span_s: float,
    seed: int,
    max_new_tokens: int,
    prompts: Sequence[str] = PROMPTS,
) -> list[Planned]:
    """Spread ``count`` queries over [start_t_s, start_t_s + span_s]: alternately while a
    satellite is in view and while none is, some for a satellite that needs a relay;
    ``prompts`` taken in turn, asked by the users at the scenario's stations in turn
    (mission control sends each from whichever station reaches a satellite)."""
    contacts = emu.contacts
    computing = emu.config.computing
    names = [n for n in contacts.satellites if computing is None or n in computing]
    users = [s.name for s in emu.scenario.stations]
    shell_of = emu.scenario.shell_of
    shells = sorted({shell_of[n] for n in names})  # several: relays to each in turn
    relays = 0
    kinds = [
        (True, "any", False),  # in view, whichever satellite
        (True, "relay", False),  # in view, for a satellite out of view: laser relay
        (False, "any", False),  # out of contact: waits for the next pass
        (True, "any", True),  # in view, streamed
        (False, "relay", False),  # out of contact, for a named satellite
        (True, "first", False),  # in view, named: the one in view
        (True, "relay", True),  # relayed and streamed
        (False, "any", False),
        (True, "relay", False),
        (True, "any", False),
    ]
    step_s = span_s / count
    out = []
    for k in range(count):
        want_view, policy, stream = kinds[k % len(kinds)]
        t = _find(contacts, start_t_s + (k + 0.5) * step_s, step_s / 2, want_view)
        route = contacts.uplink_route(None, t)
        target: str | None = None
        if policy == "first" and route is not None and route.first in names:
            target = route.first
            why = f"in view: named, {target} is the satellite in view"
        elif policy == "relay" and len(shells) > 1:  # each shell in turn, nearest relay
            shell = shells[relays % len(shells)]
            relays += 1
            target = _relayed_in(contacts, [n for n in names if shell_of[n] == shell], t)
            relayed = contacts.uplink_route(target, t)
            hops = len(relayed.path) - 1 if relayed is not None else 0
            why = f"{target} ({shell}) out of view: relayed over {hops} laser hop(s)"
        elif policy == "relay":
            base = route.first if route is not None and route.first in names else names[0]
            target = _out_of_view(contacts, names, names.index(base) + 3, t)
            relayed = contacts.uplink_route(target, t)
            if relayed is not None and route is not None:
                hops = len(relayed.path) - 1
                why = f"{target} out of view: relayed over {hops} laser hop(s)"
            else:
                why = f"no satellite in view: waits, then relayed to {target}"
        elif route is not None and not any(contacts.usable_pass(n, t) for n in names):
            why = f"{route.first} in view does not compute: relayed"
        else:
            why = "a satellite in view" if route is not None else "no satellite in view: waits"
        if stream:
            why += ", streamed"
        params = Params(max_new_tokens=max_new_tokens, temperature=0.7, top_p=0.9, seed=seed + k)
        user = users[k % len(users)]
        out.append(Planned(t, target, stream, why, prompts[k % len(prompts)], params, user))
    return sorted(out, key=lambda p: p.submit_t_s)


def _relayed_in(contacts: ContactState, pool: list[str], t_s: float) -> str:
    """Of ``pool``, the satellite out of view that the fewest laser hops reach at
    ``t_s`` (the first out of view if none can be reached now)."""
    routes = contacts.uplink_routes(pool, t_s)
    relayed = [(len(r.path), pool.index(n)) for n, r in routes.items() if len(r.path) > 1]
    return pool[min(relayed)[1]] if relayed else _out_of_view(contacts, pool, 0, t_s)


def _out_of_view(contacts: ContactState, names: list[str], first: int, t_s: float) -> str:
    """The first of ``names`` from index ``first`` on (round the list) with no usable
    pass at ``t_s``, one a relay must reach (a large constellation has many in view);
    ``names[first]`` if every one has."""
    usable = contacts.usable_passes(t_s)
    for k in range(len(names)):
        name = names[(first + k) % len(names)]
        if name not in usable:
            return name
    return names[first % len(names)]


def _find(contacts: ContactState, around_t_s: float, radius_s: float, want_view: bool) -> float:
    """The instant nearest ``around_t_s`` (within ``radius_s``, 30 s steps) whose "a
    satellite is in view" state is ``want_view``; ``around_t_s`` itself if there is none."""
    n = max(1, int(radius_s // 30.0))
    for i in range(n + 1):
        for t in (around_t_s + 30.0 * i, around_t_s - 30.0 * i):
            if (contacts.uplink_route(None, t) is not None) == want_view:
                return round(t)
    return round(around_t_s)


def _hms(t_s: float) -> str:
    return str(timedelta(seconds=round(t_s)))


class Progress:
    """A one-line progress bar on stderr (a line per event when stderr is no terminal)."""

    def __init__(self, total: int, clock: Clock, out: TextIO = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.clock = clock
        self.out = out
        self.tty = out.isatty()
        self.wall0_s = time.perf_counter()

    def update(self, note: str = "", final: bool = False) -> None:
        width = 24
        fill = round(width * self.done / max(self.total, 1))
        line = (
            f"[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} answered, "
            f"emulated {_hms(self.clock.now())}, wall {time.perf_counter() - self.wall0_s:.1f} s"
        )
        if note:
            line += f"  {note}"
        if self.tty:
            self.out.write("\r" + line + "\033[K")
        elif final:
            self.out.write(line + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


DEMO_KEYS = "demo.pcap.keys.json"  # the run's SDLS keys, beside its capture, when SDLS is on


def open_capture(
    path: Path, epoch: datetime, uplink: UplinkConfig | None = None
) -> tuple[CaptureSink | None, str]:
    """A PcapCapture on ``path`` if linkstack.capture.pcap offers one, and what to say;
    with SDLS on in ``uplink``, its side file records the run's associations (no key)."""
    if importlib.util.find_spec("linkstack.capture.pcap") is None:
        return None, "capture: not available yet"
    module = importlib.import_module("linkstack.capture.pcap")
    maker = getattr(module, "PcapCapture", None)
    if maker is None:
        return None, "capture: not available yet"
    if uplink is None or not uplink.sdls.enabled:
        return maker(path, epoch), f"capture: {path}"
    from linkstack.capture.sdls_view import from_uplink  # noqa: PLC0415 - the codec, when on

    return maker(path, epoch, sdls=from_uplink(uplink)), f"capture: {path}"


Results = dict[str, tuple[Planned, Answer | ErrorMessage | None, Timeline | None]]
"""The demo's queries by id: the plan, the answer (or error) once it came, the timeline."""


def run(
    *,
    model: str | None = None,
    scenario: str | Path | None = None,
    prompts: Sequence[str] = PROMPTS,
    queries: int = 8,
    hours: float = 3.0,
    start_hours: float = 1.0,
    out_dir: Path = DEFAULT_OUT,
    seed: int = 1,
    max_new_tokens: int = 48,
    capture: bool = True,
    backend: Backend | None = None,
    say: Callable[[str], None] = print,
    progress_out: TextIO | None = None,
) -> int:
    """Run the demo; 0 when every query got its answer.

    ``scenario``: a scenario file (None: the shipped default); ``model``: a backend
    spec (None: the scenario's); ``prompts``: taken in turn."""
    wall0_s = time.perf_counter()
    if not prompts:
        raise ConfigError("demo", "prompts", "at least one prompt is needed")
    settings = scenario_files.load(scenario) if scenario else scenario_files.load_default()
    config = replace(settings.emulation, seed=seed)
    model = model or config.backend
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say("linkstack demo: inference queries to a computing constellation, round trip measured")
    if backend is None:
        say(f"  loading the model ({model}) ...")
        backend = make_backend(model)
    load_s = backend.load()
    # One short generation first, as a model on board would be warm: the first call of
    # a process pays one-time costs (allocations, kernel selection) that are not inference.
    backend.generate("warm-up", GenerationParams(max_new_tokens=2))
    noise = " (RANDOM WEIGHTS: its answers are noise)" if backend.random_weights else ""
    say(f"  model    {backend.name}: {backend.model}{noise}, loaded in {load_s:.1f} s")
    say(f"  inference legs: {config.service.timing_source}")  # the accelerator's, or this host's
    sink_note = "capture: off"
    results: Results = {}

    async def main() -> list[Timeline]:
        nonlocal sink_note
        clock = clk.make_clock(True)
        sky = settings.scenario
        sink = None
        if capture:
            sink, sink_note = open_capture(out_dir / "demo.pcap", sky.epoch, config.uplink)
        emu = Emulation(clock, config, backend=backend, capture=sink)
        say(f"  scenario {settings.name}: {settings.description or sky.description}")
        if scenario:
            say(f"           from {settings.source}")
        stations = ", ".join(s.name for s in sky.stations)
        say(f"           stations {stations}; epoch {sky.epoch:%Y-%m-%d %H:%M} UTC")
        plan = plan_queries(
            emu, queries, start_hours * 3600.0, hours * 3600.0, seed, max_new_tokens, prompts
        )
        say(
            f"  {len(plan)} queries over {hours:g} h of emulated time from "
            f"+{_hms(start_hours * 3600.0)} (emulated time runs as fast as the CPU allows; "
            "the model runs for real)"
        )
        sdls = config.uplink.sdls
        if sdls.enabled:  # said, since it changes every frame on air and the capture
            say(
                f"  SDLS on: TC {sdls.uplink.service} (SPI {sdls.uplink.spi}), TM "
                f"{sdls.downlink.service} (SPI {sdls.downlink.spi}), laser "
                f"{sdls.laser.service} (SPI {sdls.laser.spi}); keys made for this run"
            )
            if sink is not None and emu.site.guards is not None:
                # the run's keys beside its capture (mode 0600), for replay and conform
                # --keys; the last run's go with the capture they opened
                keys_path = out_dir / DEMO_KEYS
                keys_path.unlink(missing_ok=True)
                emu.site.guards.keys.write(keys_path)
                sink_note += f" (SDLS keys of this run: {keys_path})"
        say("")
        progress = Progress(len(plan), clock, progress_out or sys.stderr)
        try:
            async with emu:
                tasks = [
                    asyncio.get_running_loop().create_task(_one(emu, p, results, say, progress))
                    for p in plan
                ]
                await asyncio.gather(*tasks)
        finally:
            progress.finish()
            if sink is not None:
                sink.close()
        onboard.update(emu.onboard_figures(clock.now()))
        if emu.site.guards is not None:
            sdls_counts.update(emu.site.guards.counters())
        return [timeline for _, _, timeline in results.values() if timeline is not None]

    async def _one(
        emu: Emulation,
        p: Planned,
        results: Results,
        say: Callable[[str], None],
        progress: Progress,
    ) -> None:
        clock = emu.clock
        await clock.sleep_until(p.submit_t_s)
        pending = emu.client.submit(p.prompt, p.params, stream=p.stream, target=p.target)
        results[pending.id] = (p, None, pending.timeline)
        progress.update(f"{pending.id} submitted")
        try:
            answer, timeline = await pending.result()
            msg: Answer | ErrorMessage = answer
        except QueryRefusedError as exc:
            msg, timeline = exc.error, exc.timeline
        results[pending.id] = (p, msg, timeline)
        progress.done += 1
        progress.update(f"{pending.id} answered", final=True)
        _print_answer(say, progress, pending, p, msg, timeline)

    sdls_counts: Counter[str] = Counter()  # what SDLS did, when it is on
    onboard: dict[str, dict] = {}  # each computing satellite's load and energy
    timelines = clk.run(main, emulated=True)
    wall_s = time.perf_counter() - wall0_s
    say("")
    shell_of = settings.scenario.shell_of  # round trips by shell, where it has several
    say(format_table(timelines, shell_of=shell_of))
    meta = {
        "scenario": settings.name,
        "scenario_source": settings.source,
        "model": backend.model,
        "backend": backend.name,
        "random_weights": backend.random_weights,
        "inference_timing": config.service.timing_source,
        "seed": seed,
        "queries": queries,
        "start_hours": start_hours,
        "hours": hours,
        "max_new_tokens": max_new_tokens,
        "wall_s": round(wall_s, 2),
        "queries_detail": [
            {
                "id": qid,
                "submit_t_s": p.submit_t_s,
                "target": p.target or "any",
                "stream": p.stream,
                "why": p.why,
                "user_station": p.user,
                "prompt": p.prompt,
                "text": msg.text if isinstance(msg, Answer) else None,
                "completion_tokens": msg.completion_tokens if isinstance(msg, Answer) else None,
                "error": msg.code if isinstance(msg, ErrorMessage) else None,
            }
            for qid, (p, msg, _) in results.items()
        ],
    }
    paths = write_reports(timelines, out_dir, meta, shell_of, onboard)
    say("")
    say(f"  on board ({'power model on' if config.power.enabled else 'no power model'}):")
    say(satellites_text(onboard))
    answered = sum(1 for t in timelines if t.complete)
    say("")
    say(f"  report   {paths['json']}")
    say(f"  chart    {paths['chart']}")
    say(f"  page     {paths['html']}  (the chart and the tables; linkstack report redraws them)")
    say(f"  {sink_note}")
    if sdls_counts:
        refused = sum(v for k, v in sdls_counts.items() if k.startswith("refused_"))
        say(
            f"  SDLS: {sdls_counts['protected']} frames protected, "
            f"{sdls_counts['verified']} verified, {refused} refused"
        )
    say(
        f"  {answered}/{len(timelines)} answered; the reference: under {REFERENCE_S:g} s "
        "from query up to answer down"
    )
    say(f"  wall time {time.perf_counter() - wall0_s:.1f} s (model load {load_s:.1f} s)")
    return 0 if answered == len(timelines) == queries else 1


def _print_answer(
    say: Callable[[str], None],
    progress: Progress,
    pending: Pending,
    p: Planned,
    msg: Answer | ErrorMessage,
    t: Timeline,
) -> None:
    if progress.tty:  # the answer goes above the progress line
        progress.out.write("\r\033[K")
    say(
        f"[{progress.done}/{progress.total}] {pending.id}  submitted +{_hms(p.submit_t_s)}"
        f"{f' by a user at {p.user}' if p.user else ''}, for {p.target or 'any satellite'} "
        f"({p.why})"
    )
    say(f'    prompt "{escape(p.prompt)}"')
    if isinstance(msg, ErrorMessage):
        say(f"    refused by {msg.satellite}: {msg.code}: {escape(msg.detail)}")
    else:
        label = "random weights, noise" if msg.random_weights else msg.model
        say(
            f"    answer from {msg.satellite} ({msg.completion_tokens} tokens, "
            f"{msg.finish_reason}; {label}):"
        )
        say(f'      "{escape(msg.text)}"')
        if pending.chunks_seen:
            say(f"    streamed in {len(pending.chunks_seen)} chunk(s) before the answer")
    for line in timeline_lines(t):
        say(f"    {line}")
    if progress.tty:
        progress.update()
