"""The sample captures in ``pcaps/``: made by the emulator, small, and the same every time.

``linkstack capture-samples [--out pcaps/]`` runs four short scenes of the default
scenario in emulated time, in this process, with a :class:`~linkstack.capture.pcap.PcapCapture`
on every link, and writes ``<name>.pcap`` and ``<name>.pcap.nodes.json`` for each:

- ``demo-roundtrip``: two queries to the satellite in view (CS-06 over Mohe),
  answered directly: CLTUs up, TM CADUs down with the CLCW, the acks going up;
- ``lossy-cop1``: one long query (four TC frames) over an uplink that loses 30 % of
  its CLTUs: FARM-1 sees a gap, the CLCW raises its retransmit flag, FOP-1 goes back
  and sends the frames again, T1 expires and sends one a third time, so N(S) values
  repeat in the capture;
- ``laser-relay``: a query for CS-09, out of view: up to CS-06, relayed over three
  laser links (AOS CADUs) in a relay envelope, answered by CS-09, and the answer
  relayed back to CS-06 and sent down;
- ``uslp-relay``: the same relay with ``frames.protocol = "uslp"`` and SCIDs from
  3000: USLP frames inside the CLTUs and CADUs of every link, on the USLP frame port.

Everything that could vary from one run to the next is fixed: the scenes start and
stop at fixed emulated instants, every random choice has a fixed seed, pcap time
stamps are the scenario epoch (2026-01-01T00:00:00Z) plus emulated time, and the
satellites answer with a :class:`ScriptedBackend`: canned text and fixed compute
times instead of a model, whose stopwatch (and, with torch, floating-point kernels)
would change from one machine to the next. The model runs inline (no worker
thread), so that the virtual-time loop never moves while waiting for it. The
files are therefore byte-identical from one run to the next, whatever the hash seed
(``tests/capture/test_samples.py`` checks them against the committed ones; the orbit and
link-budget arithmetic is floating point, so a different CPU or library version
could in principle move a time stamp by a microsecond, and that test would say so).

The heavy modules (the emulation, the clock) are imported when a sample is made, so
that registering the subcommand costs the command line little.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from linkstack.errors import ConfigError
from payloads.backends import Backend, Generation, GenerationParams

if TYPE_CHECKING:
    from linkstack.runtime.security import SdlsSettings

DEFAULT_OUT = Path("pcaps")
NODES_SUFFIX = ".nodes.json"


# -- what the satellites answer with --------------------------------------------------------


class ScriptedBackend(Backend):
    """A stand-in for the model: the answer to each prompt is given, and so are its
    times (``ttft_s`` and ``generate_s`` follow from the token count), so that a run
    does not depend on the machine. Prompts it has no answer for get a fixed sentence."""

    name = "scripted"
    model = "linkstack-samples (canned answers, no model)"
    random_weights = False

    TTFT_S = 0.040
    PER_TOKEN_S = 0.012

    def __init__(self, answers: dict[str, str] | None = None) -> None:
        self.answers = dict(answers or {})

    def load(self) -> float:
        return 0.0

    def count_tokens(self, prompt: str, thinking: bool = False) -> int:
        return len(prompt.encode("utf-8")) // 4 + 9  # roughly, chat template included

    @property
    def max_prompt_tokens(self) -> int:
        return 8192

    def generate(
        self,
        prompt: str,
        params: GenerationParams,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        words = self.answers.get(prompt, "This is a scripted sample answer.").split(" ")
        n = min(len(words), params.max_new_tokens)
        text = " ".join(words[:n])
        if on_text is not None:
            for i, word in enumerate(words[:n]):
                on_text(word if i == 0 else " " + word)
        generate_s = round(self.TTFT_S + self.PER_TOKEN_S * (n - 1), 6)
        return Generation(
            text=text,
            prompt_tokens=self.count_tokens(prompt, params.thinking),
            completion_tokens=n,
            finish_reason="stop" if n == len(words) else "length",
            ttft_s=self.TTFT_S,
            generate_s=generate_s,
            tokens_per_s=round((n - 1) / (generate_s - self.TTFT_S), 3) if n > 1 else 0.0,
            backend=self.name,
            model=self.model,
            random_weights=False,
        )

    def close(self) -> None:
        pass


# -- the scenes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleQuery:
    t_s: float  # emulated seconds since the scenario epoch
    prompt: str
    answer: str
    target: str | None = None  # None: whichever satellite is in view
    max_new_tokens: int = 32


@dataclass(frozen=True)
class Sample:
    name: str
    title: str
    shows: str
    start_t_s: float  # the emulation starts here (nothing happens before)
    stop_t_s: float  # and is closed here
    queries: tuple[SampleQuery, ...]
    seed: int = 0  # EmulationConfig.seed
    uplink_loss: float = 0.0  # EmulationConfig.uplink_loss
    layers: tuple[str, ...] | None = None  # None: every layer
    # SDLS on every link (keys made for the run: a capture that is not the same twice);
    # None: off, as in the committed samples
    sdls: SdlsSettings | None = None
    frames: str = "tm-tc-aos"  # frames.protocol: "uslp" puts USLP frames on every link
    scid_base: int | None = None  # EmulationConfig.scid_base (None: its default)

    @property
    def filename(self) -> str:
        return f"{self.name}.pcap"


def _telemetry_report() -> str:
    """A long prompt (3.8 kB, four TC frames): a made-up housekeeping log."""
    lines = []
    for k in range(52):
        lines.append(
            f"t+{10 * k:03d}s bus {28.0 + (k % 7) * 0.05:.2f} V, battery {92 - k // 8} %, "
            f"panel {21.5 + (k % 5) * 0.4:.1f} C, wheel {3000 + 15 * (k % 9)} rpm, "
            f"laser {'up' if k % 13 else 'acq'}"
        )
    return "Summarise this housekeeping log for the operator:\n" + "\n".join(lines)


# the uslp-relay sample is this scene with USLP frames
_LASER_RELAY = Sample(
    name="laser-relay",
    title="a query relayed over laser links, and its answer coming back",
    shows="The query is for CS-09, out of view: it goes up to CS-06 in a relay "
    "envelope (APID 0x102, source node 0, destination 9), across the laser links "
    "CS-06 -> CS-07 -> CS-08 -> CS-09 in AOS frames (the last hop bare, on APID "
    "0x100); CS-09 answers, the answer travels CS-09 -> CS-08 -> CS-07 -> CS-06 in "
    "envelopes and comes down to Mohe in TM frames; the ack follows the query's path.",
    start_t_s=5305.0,
    stop_t_s=5315.0,
    queries=(
        SampleQuery(
            5310.0,
            "Is a ship visible in the last image tile? Answer yes or no.",
            "No.",
            target="CS-09",
        ),
    ),
    seed=1,
)

SAMPLES: tuple[Sample, ...] = (
    Sample(
        name="demo-roundtrip",
        title="a round trip: two queries answered by the satellite in view",
        shows="CS-06 is in view of Mohe. A query goes up in a CLTU (TC frame N(S) 0, APID "
        "0x100), CS-06 answers in a TM frame (APID 0x101; every TM frame's OCF carries the "
        "CLCW, whose N(R) acknowledges the TC frames), the ground's ack goes up (N(S) 1); "
        "then the same for a second query (N(S) 2 and 3).",
        start_t_s=5295.0,
        stop_t_s=5305.0,
        queries=(
            SampleQuery(
                5300.0,
                "What is the orbital period of a satellite at 500 km altitude?",
                "About 94.6 minutes: 2 pi sqrt(a^3 / mu) with a = 6,878 km.",
            ),
            SampleQuery(
                5300.5,
                "How long does light take to cross 3,560 km?",
                "About 11.9 milliseconds.",
            ),
        ),
        seed=1,
    ),
    Sample(
        name="lossy-cop1",
        title="COP-1 at work: an uplink that loses 30 % of its CLTUs",
        shows="A 3.9 kB query is one Space Packet segmented over four TC frames (N(S) 0-3). "
        "The uplink loses N(S) 2 (the capture shows units as sent, lost ones included): "
        "FARM-1 discards N(S) 3 and its CLCW (in the TM OCF) reports N(R) 2 with the "
        "retransmit flag; FOP-1 goes back and sends N(S) 2 and 3 again; N(S) 3 is lost "
        "again, and T1 (2 s) expires and sends it a third time. The answer comes down, the "
        "ack goes up (N(S) 4).",
        start_t_s=5295.0,
        stop_t_s=5310.0,
        queries=(
            SampleQuery(
                5300.0,
                _telemetry_report(),
                "All values nominal: bus 28.0-28.3 V, battery down to 88 %, the laser "
                "terminal reacquired three times.",
                max_new_tokens=48,
            ),
        ),
        seed=13,
        uplink_loss=0.3,
    ),
    _LASER_RELAY,
    replace(
        _LASER_RELAY,
        name="uslp-relay",
        title="the laser relay with USLP frames on every link, SCIDs from 3000",
        shows='The laser-relay scene with frames.protocol = "uslp" and SCIDs from 3000 '
        "(past TC's and TM's 10 bits): the query goes up to CS-06 in a variable-length USLP "
        "frame inside a CLTU (COP-1's FDU: VC frame count N(S), rule 111 on MAP 0, the "
        "destination SCID), across the laser links and down in fixed-length USLP frames "
        "(rule 000 with the first header pointer, the sender's SCID, a 2-octet VC frame "
        "count; the downlink's with the CLCW in their OCF, Only Idle Data frames on VC 63 "
        "between them) inside CADUs; the frames on port 47014.",
        frames="uslp",
        scid_base=3000,
    ),
)


def sample_by_name(name: str) -> Sample:
    for sample in SAMPLES:
        if sample.name == name:
            return sample
    names = ", ".join(s.name for s in SAMPLES)
    raise ConfigError("samples", "name", f"no sample named {name!r} (samples: {names})")


# -- making them ----------------------------------------------------------------------------


def make_sample(sample: Sample, out_dir: Path) -> Path:
    """Run one scene and write its capture (and side file) into ``out_dir``."""
    # the emulation imports numpy, numba and the orbit code: only when a sample is made
    import asyncio  # noqa: PLC0415

    from channels.scenarios import scenario_by_name  # noqa: PLC0415
    from linkstack.capture.pcap import PcapCapture  # noqa: PLC0415
    from linkstack.runtime import clock as clk  # noqa: PLC0415
    from linkstack.runtime.emulation import Emulation, EmulationConfig  # noqa: PLC0415
    from payloads.messages import Params  # noqa: PLC0415
    from payloads.service import ServiceConfig  # noqa: PLC0415

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / sample.filename
    scenario = scenario_by_name("default")
    backend = ScriptedBackend({q.prompt: q.answer for q in sample.queries})
    layers = set(sample.layers) if sample.layers is not None else None

    async def main() -> None:
        clock = clk.make_clock(True, scenario.epoch, sample.start_t_s)
        # the model runs inline: emulated time cannot move while it computes
        config = EmulationConfig(
            scenario=scenario,
            service=ServiceConfig(inline=True),
            seed=sample.seed,
            uplink_loss=sample.uplink_loss,
        )
        if sample.scid_base is not None:
            config = replace(config, scid_base=sample.scid_base)
        # the committed samples are clear (SDLS's keys are made for each run: a
        # protected capture is never the same twice)
        from linkstack.runtime.security import SdlsSettings  # noqa: PLC0415 - as above

        sdls = sample.sdls if sample.sdls is not None else SdlsSettings(enabled=False)
        config = replace(config, uplink=replace(config.uplink, sdls=sdls, protocol=sample.frames))
        capture = PcapCapture(path, scenario.epoch, layers, frames=sample.frames)
        try:
            emu = Emulation(clock, config, backend=backend, capture=capture)
            async with emu:

                async def ask(q: SampleQuery) -> None:
                    await clock.sleep_until(q.t_s)
                    params = Params(max_new_tokens=q.max_new_tokens, seed=0)
                    await emu.client.ask(q.prompt, params, target=q.target)

                tasks = [asyncio.ensure_future(ask(q)) for q in sample.queries]
                await clock.sleep_until(sample.stop_t_s)
                unanswered = [q for q, t in zip(sample.queries, tasks, strict=True) if not t.done()]
                for task in tasks:
                    task.cancel()
                failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
                if unanswered or failed:
                    raise ConfigError(
                        "samples",
                        sample.name,
                        f"{len(unanswered)} queries unanswered and {len(failed)} failed by "
                        f"t = {sample.stop_t_s} s: the scene no longer works",
                    )
        finally:
            capture.close()

    clk.run(main, emulated=True)
    return path


def generate(
    out_dir: Path = DEFAULT_OUT,
    names: Sequence[str] | None = None,
    say: Callable[[str], None] = print,
) -> list[Path]:
    """Make the samples (all, or those named) in ``out_dir``; the pcap paths."""
    chosen = [sample_by_name(n) for n in names] if names else list(SAMPLES)
    out = []
    for sample in chosen:
        path = make_sample(sample, Path(out_dir))
        side = Path(str(path) + NODES_SUFFIX)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        say(
            f"  {path}  {path.stat().st_size:>7,} octets  sha256 {digest}...  "
            f"(+ {side.name})  {sample.title}"
        )
        out.append(path)
    return out


# -- the command line ---------------------------------------------------------------------------


def _cmd_capture_samples(args: argparse.Namespace) -> int:
    print(
        f"linkstack capture-samples: writing {len(args.only or SAMPLES)} capture(s) to {args.out}"
    )
    generate(args.out, args.only)
    return 0


def add_samples_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``linkstack capture-samples`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "capture-samples",
        help="regenerate the sample captures of pcaps/ (deterministic)",
        description="Run the sample scenes (a round trip, a lossy uplink with COP-1 "
        "retransmissions, a laser relay, the relay over USLP) in emulated time and write "
        "their captures, byte-identical from one run to the next.",
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where to write them (default pcaps/)"
    )
    p.add_argument(
        "--only",
        action="append",
        choices=[s.name for s in SAMPLES],
        help="only this sample (repeatable)",
    )
    p.set_defaults(func=_cmd_capture_samples)
    return p


if __name__ == "__main__":  # pragma: no cover - python -m linkstack.capture.samples
    parser = argparse.ArgumentParser(prog="linkstack")
    add_samples_parser(parser.add_subparsers(dest="command"))
    arguments = parser.parse_args(["capture-samples", *sys.argv[1:]])
    sys.exit(arguments.func(arguments))
