"""``linkstack bench daemon``: the channel daemon in real time, as real processes.

Three processes on loopback: a sender (:mod:`.daemon_peers`) that hands CADUs to
the channel daemon's ingress ports of the satellites' ends at a fixed rate, each behind
its downlink's link header, ``linkstack daemon channel`` itself, and a receiver on the
ground's port. The scenario puts a
ground station under each satellite at the middle of the run, so that every
downlink is up and locked the whole time and the only losses are the daemon's.

For each unit, with the instants from the kernel (the sender's transmit stamp, the
receiver's ``SO_TIMESTAMPNS``), in seconds from the run's anchor:

    lateness = arrival - (emission start + serialisation + light time at emission)

where the emission start is the later of the unit's sending and the end of the
unit before it on the same link (the transmitter is busy), and the light time comes
from :class:`channels.orbit.StationView`, independently of the daemon. A unit is
never early (a negative lateness beyond the clocks' resolution is reported), and
lost units are counted.

Cases: the highest rate of a ladder held for ``hold_s`` (10 s) with nothing lost and
p99 lateness at most 2 ms, on one 300 Mbit/s downlink and on 8 at once; 150 Mbit/s
X-band (14,660 CADUs/s) and 300 Mbit/s (29,300/s) on one link for 60 s; 150 Mbit/s
on 8 downlinks at once for 30 s (``--quick``: 5 s and 10 s). Each case runs
``--runs`` times (3) and is reported by its medians; it holds only if every run does.
The channel daemon runs on one core (the last), the sender and the receiver on the
other.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from channels.geometry import C_MPS, ecef_to_geodetic
from channels.orbit import StationView
from channels.scenarios import default_scenario
from linkstack.daemon.wire import GROUND, PortPlan
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.clock import new_wall_loop
from linkstack.tools.bench.processes import free_ports
from linkstack.tools.bench.timing import describe_machine

CADU_OCTETS = 1279
START_T_S = 10_765.0  # the scenario instant the runs begin at
RATES_BPS = {"150 Mbit/s": 150e6, "300 Mbit/s": 300e6}
LATE_P99_S = 2e-3
EARLY_TOLERANCE_S = 20e-6  # the two processes' clock reads


@dataclass
class DaemonRun:
    case: str
    links: int
    rate_per_s: float  # CADUs a second on each link
    seconds: float
    sent: int
    received: int
    late_s: np.ndarray  # every received unit's lateness
    cpu_s: float  # the channel daemon's CPU time (user + system) during the run

    @property
    def lost(self) -> int:
        return self.sent - self.received

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.late_s, q)) * 1e3 if self.late_s.size else math.nan

    @property
    def min_ms(self) -> float:
        return float(self.late_s.min()) * 1e3 if self.late_s.size else math.nan

    @property
    def max_ms(self) -> float:
        return float(self.late_s.max()) * 1e3 if self.late_s.size else math.nan

    @property
    def early(self) -> int:
        return int((self.late_s < -EARLY_TOLERANCE_S).sum())

    @property
    def holds(self) -> bool:
        return self.lost == 0 and self.early == 0 and self.percentile_ms(99) <= LATE_P99_S * 1e3


def scenario_text(n_links: int, rate_bps: float, ports: tuple[int, int], mid_t_s: float) -> str:
    """The default constellation with a station under each of the first ``n_links``
    satellites at ``mid_t_s``; daemons quiet (no capture, MQTT or HTTP)."""
    sc = default_scenario()
    r_m, _ = sc.fleet.ecef(np.array([mid_t_s]), range(n_links))
    lat, lon, _ = ecef_to_geodetic(r_m[:, 0, :])
    stations = "\n".join(
        f'[[stations]]\nname = "B{i + 1}"\nlat_deg = {lat[i]:.4f}\nlon_deg = {lon[i]:.4f}\n'
        "alt_m = 0.0\nelevation_mask_deg = 10.0\n"
        for i in range(n_links)
    )
    return (
        f'format = 1\nname = "bench-daemon"\n{stations}\n'
        f"[links.downlink]\nrate_bps = {rate_bps!r}\n"
        "[capture]\nenabled = false\n[mqtt]\nenabled = false\n"
        f"[daemon]\nchannel_port = {ports[0]}\nnode_port = {ports[1]}\nhttp_port = 0\n"
        "status_interval_s = 3600.0\n"
    )


def _pinned(cpu: int) -> list[str]:
    """A command prefix that runs a process on one CPU (when the machine has it)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return []
    return ["taskset", "-c", str(cpus[cpu])]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_case(
    case: str, n_links: int, rate_bps: float, rate_per_s: float, seconds: float, work: Path
) -> DaemonRun:
    """``rate_per_s`` CADUs a second offered to each of ``n_links`` downlinks of
    ``rate_bps`` for ``seconds``."""
    mid_t_s = START_T_S + seconds / 2
    sc_path = work / f"{case.replace(' ', '_').replace('/', '')}.toml"
    channel_port = free_ports(128)
    node_port = channel_port + 64
    sc_path.write_text(scenario_text(n_links, rate_bps, (channel_port, node_port), mid_t_s))
    settings = scenario_file.load(sc_path)
    plan = PortPlan.of(settings.scenario, settings.daemon)
    names = list(settings.scenario.satellite_names[:n_links])
    downs = [plan.downlink(name) for name in names]  # each from an end of its own
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    py = [sys.executable]
    anchor_unix_s = time.time() + 4.0  # the scenario is at START_T_S then
    channel = subprocess.Popen(
        [*_pinned(-1), *py, "-m", "linkstack", "daemon", "--scenario", str(sc_path),
         "--start", f"+{START_T_S}", "--anchor", f"{anchor_unix_s:.6f}",
         "--log-level", "warning", "channel"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    recv_out, sent_out = work / "received.npy", work / "sent.npy"
    receiver = subprocess.Popen(
        [*_pinned(0), *py, "-m", "linkstack.tools.bench.daemon_peers", "receive",
         str(recv_out), str(plan.end_of(GROUND).node_port)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert receiver.stdout is not None
        receiver.stdout.readline()  # "ready"
        time.sleep(max(0.0, anchor_unix_s - time.time()))
        cpu0 = _cpu_s(channel.pid)
        subprocess.run(
            [*_pinned(0), *py, "-m", "linkstack.tools.bench.daemon_peers", "send",
             str(sent_out), f"{rate_per_s!r}", f"{seconds!r}",
             *(f"{d.channel_port}:{d.source_port}:{d.index}" for d in downs)],
            check=True, env=env,
        )  # fmt: skip
        time.sleep(0.5)  # the last units in flight
        cpu_s = _cpu_s(channel.pid) - cpu0
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(30)
        channel.send_signal(signal.SIGTERM)
        _, err = channel.communicate(timeout=30)
    if channel.returncode != 0:
        raise RuntimeError(f"bench daemon: the channel daemon exited {channel.returncode}:\n{err}")
    sent_at = np.load(sent_out)
    got = np.load(recv_out)
    # the receiver names each unit's link by its index in the plan: here, by its place
    got[:, 0] = np.searchsorted([d.index for d in downs], got[:, 0])
    late = lateness(settings.scenario, names, sent_at, got, rate_bps, anchor_unix_s)
    return DaemonRun(case, n_links, rate_per_s, seconds, sent_at.size, len(got), late, cpu_s)


def lateness(
    scenario: object, names: list[str], sent_at: np.ndarray, got: np.ndarray,
    rate_bps: float, anchor_unix_s: float,
) -> np.ndarray:  # fmt: skip
    """Each received unit's lateness (see the module docstring)."""
    from channels.scenarios import Scenario  # noqa: PLC0415

    assert isinstance(scenario, Scenario)
    serial_s = 8 * CADU_OCTETS / rate_bps
    out = []
    for link, name in enumerate(names):
        # seconds from the anchor, not Unix time: at 1.8e9 s a float64 steps by 0.24 us,
        # and a chain of 146,000 starts each rounded on adding 68.2 us drifted by a
        # millisecond, which read as lateness the daemon never had
        sends = sent_at[link] - anchor_unix_s
        start = np.empty_like(sends)  # emission start: after the unit ahead has left
        free = -math.inf
        for k, s in enumerate(sends):
            start[k] = max(s, free)
            free = start[k] + serial_s
        view = StationView(
            scenario.station(f"B{link + 1}"), scenario.satellite(name), scenario.epoch
        )
        t_first, t_last = float(start[0]), float(start[-1])
        grid = np.arange(t_first, t_last + 0.2, 0.1)
        light = np.array([view.at(START_T_S + t).range_m / C_MPS for t in grid])
        rows = got[got[:, 0] == link]
        seq = rows[:, 1].astype(int)
        due = start[seq] + serial_s + np.interp(start[seq], grid, light)
        out.append((rows[:, 2] - anchor_unix_s) - due)
    return np.concatenate(out) if out else np.zeros(0)


LADDER_PER_S = (2_000, 5_000, 8_000, 11_000, 14_660, 20_000, 25_000, 29_300)
LADDER_8_PER_S = (1_000, 2_000, 3_000, 4_000, 5_000)  # each of 8 links: 8x the total


@dataclass
class Case:
    """The runs of one case, reported by their medians."""

    runs: list[DaemonRun]

    @property
    def first(self) -> DaemonRun:
        return self.runs[0]

    def median(self, value: Callable[[DaemonRun], float]) -> float:
        return float(np.median([value(r) for r in self.runs]))

    @property
    def holds(self) -> bool:  # in every run, not in the best one
        return all(r.holds for r in self.runs)

    @property
    def early(self) -> int | None:
        """Early units over the runs that lost nothing (a unit lost before the
        daemon read it is not in the daemon's chain of emissions, so after a loss the
        bench's chain puts the next starts too late); None when every run lost."""
        whole = [r for r in self.runs if r.lost == 0]
        return sum(r.early for r in whole) if whole else None


def run_case_n(
    case: str, n_links: int, rate_bps: float, rate_per_s: float, seconds: float, work: Path,
    runs: int,
) -> Case:  # fmt: skip
    out = []
    for k in range(runs):
        print(f"#   {case}: run {k + 1} of {runs} ...", file=sys.stderr, flush=True)
        out.append(run_case(case, n_links, rate_bps, rate_per_s, seconds, work))
    return Case(out)


def run(quick: bool = False, runs: int = 3) -> list[Case]:
    """The ladders (each rate held for ``hold_s``, up to the first that does not hold
    in every run), then the full rates held for ``long_s``; each case ``runs`` times."""
    hold_s = 5.0 if quick else 10.0
    long_s = 10.0 if quick else 60.0
    results = []
    with tempfile.TemporaryDirectory(prefix="linkstack-bench-daemon-") as tmp:
        work = Path(tmp)
        top = RATES_BPS["300 Mbit/s"]  # the ladders run on 300 Mbit/s downlinks
        for n_links, ladder in ((1, LADDER_PER_S), (8, LADDER_8_PER_S)):
            for per_s in ladder:
                label = f"ladder {per_s:,}/s" + (f" x {n_links}" if n_links > 1 else "")
                r = run_case_n(label, n_links, top, per_s, hold_s, work, runs)
                results.append(r)
                if not r.holds:
                    break
        for label, rate in RATES_BPS.items():
            full = rate / (8 * CADU_OCTETS)
            results.append(run_case_n(f"1 link, {label}", 1, rate, full, long_s, work, runs))
        x_band = RATES_BPS["150 Mbit/s"]
        full = x_band / (8 * CADU_OCTETS)
        results.append(
            run_case_n("8 links, 150 Mbit/s each", 8, x_band, full, long_s / 2, work, runs)
        )
    return results


def print_results(results: list[Case], out: TextIO = sys.stdout) -> None:
    runs = max((len(c.runs) for c in results), default=0)
    print(
        "linkstack bench daemon (sender -> channel daemon -> receiver, UDP on loopback; "
        "lateness = arrival - (emission start + serialisation + light time)); "
        f"medians of {runs} runs (min: the least of all), lost as median (most), "
        "holds in every run",
        file=out,
    )
    print(
        f"  {'case':<28}{'links':>6}{'CADUs/s':>10}{'s':>5}{'sent':>11}{'lost':>20}"
        f"{'min ms':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'early':>7}{'CPU %':>7}  holds",
        file=out,
    )
    for c in results:
        r = c.first
        cpu = 100 * c.median(lambda x: x.cpu_s) / r.seconds if r.seconds else math.nan
        lost_med, lost_max = int(c.median(lambda x: x.lost)), max(x.lost for x in c.runs)
        lost = f"{lost_med:,}" + (f" ({lost_max:,})" if lost_max != lost_med else "")
        early = "-" if c.early is None else str(c.early)
        print(
            f"  {r.case:<28}{r.links:>6}{r.rate_per_s:>10,.0f}{r.seconds:>5.0f}"
            f"{int(c.median(lambda x: x.sent)):>11,}{lost:>20}"
            f"{min(x.min_ms for x in c.runs):>9.3f}"
            f"{c.median(lambda x: x.percentile_ms(50)):>9.3f}"
            f"{c.median(lambda x: x.percentile_ms(99)):>9.3f}"
            f"{c.median(lambda x: x.max_ms):>9.2f}{early:>7}{cpu:>7.0f}  "
            f"{sum(x.holds for x in c.runs)}/{len(c.runs)}",
            file=out,
        )
    for n_links in (1, 8):
        held = [
            c for c in results
            if c.first.case.startswith("ladder") and c.first.links == n_links and c.holds
        ]  # fmt: skip
        best = f"{held[-1].first.rate_per_s:,.0f} CADUs/s" if held else "none of the ladder"
        each = "" if n_links == 1 else f" on each of {n_links} links at once"
        print(
            f"  highest rate held in every run (nothing lost, p99 <= 2 ms){each}: {best}", file=out
        )


def timer_lateness_us(
    new_loop: Callable[[], asyncio.AbstractEventLoop], n: int = 2_000
) -> tuple[float, float]:
    """p50 and p99 of how late ``n`` timers at random delays of 50 us to 1 ms run on a
    loop (what a link's transmitter waits on), in microseconds."""
    rng = random.Random(1)

    async def trial() -> list[float]:
        loop = asyncio.get_running_loop()
        late = []
        for _ in range(n):
            fired: asyncio.Future[float] = loop.create_future()
            delay_s = rng.uniform(50e-6, 1e-3)
            # the process's own clock, not loop.time(): uvloop's moves in milliseconds
            due = time.perf_counter() + delay_s
            loop.call_later(delay_s, fired.set_result, 0.0)
            await fired
            late.append(time.perf_counter() - due)
        return late

    loop = new_loop()
    try:
        late = np.array(loop.run_until_complete(trial())) * 1e6
    finally:
        loop.close()
    return float(np.percentile(late, 50)), float(np.percentile(late, 99))


def print_timers(out: TextIO = sys.stdout) -> None:
    """The event loops a daemon could wait on, each timed 3 times: why select()."""
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "select() + 1 us slack (the daemons')": lambda: new_wall_loop(fine_timers=True),
        "asyncio's default (epoll)": lambda: new_wall_loop(fine_timers=False),
    }
    try:
        import uvloop  # type: ignore[import-not-found]  # noqa: PLC0415

        loops[f"uvloop {uvloop.__version__}"] = uvloop.new_event_loop
    except ImportError:
        pass
    print(
        "event loop timers, 2,000 at random delays of 50 us to 1 ms; lateness p50/p99 us:", file=out
    )
    for name, new_loop in loops.items():
        p50_p99 = (timer_lateness_us(new_loop) for _ in range(3))
        runs = "  ".join(f"{p50:.0f}/{p99:.0f}" for p50, p99 in p50_p99)
        print(f"  {name:<38}{runs}", file=out)
    if "uvloop" not in " ".join(loops):
        print("  (uvloop is not installed: pip install uvloop to time it too)", file=out)


def main(quick: bool = False, runs: int = 3) -> int:
    print(f"# {describe_machine()}; channel daemon on one core, sender and receiver on the other")
    print_timers()
    print(
        "# running the channel daemon in real time"
        + (" (quick)" if quick else "")
        + f", each case {runs} times ...",
        flush=True,
    )
    print_results(run(quick, runs))
    return 0
