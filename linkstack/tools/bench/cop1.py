"""COP-1 under loss: N queries over an emulated uplink, and what it took to deliver them.

:func:`run_queries` sends queries (Space Packets of random sizes, most spanning
several TC frames) from the ground through FOP-1, CLTUs, an uplink that corrupts
bits and loses whole units, FARM-1 and reassembly; CLCWs come back in TM frames
over a downlink that does the same. It runs in emulated time and returns a
:class:`QueryRun`: what was sent and delivered, when, and the counters of every
layer. :meth:`QueryRun.report` formats the figures (frames sent, retransmitted,
latency percentiles) for a test log, the README or ``linkstack bench``;
:func:`run` is the benchmark entry (wall time per case, the median of 5 runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TypedDict

from channels.errors import IndependentErrors
from channels.link import Conditions, FixedConditions, LinkModel
from linkstack.ccsds.spp import PacketType, SpacePacket
from linkstack.runtime import clock as clk
from linkstack.runtime.cop1_link import Cop1Link
from linkstack.runtime.security import SdlsSettings
from linkstack.runtime.uplink_config import UplinkConfig
from linkstack.tools.bench.timing import Result

UPLINK_RATE_BPS = 256_000.0  # S-band telecommand
DOWNLINK_RATE_BPS = 10e6
DELAY_S = 0.005  # about 1,500 km of slant range


class LossyModel:
    """A link model that loses whole units: each with probability ``loss``, and all
    of them inside the ``gaps`` ([start, stop) in seconds, "no_contact")."""

    def __init__(
        self,
        base: LinkModel,
        loss: float = 0.0,
        seed: int = 0,
        gaps: tuple[tuple[float, float], ...] = (),
    ) -> None:
        self.base = base
        self.loss = loss
        self.gaps = gaps
        self._rng = random.Random(seed)

    def conditions(self, t_s: float) -> Conditions:
        cond = self.base.conditions(t_s)
        if any(a <= t_s < b for a, b in self.gaps):
            return replace(cond, up=False, reason="no_contact")
        if self.loss and self._rng.random() < self.loss:
            return replace(cond, up=False, reason="frame_loss")
        return cond


def random_queries(count: int, seed: int, max_data: int = 3000) -> list[bytes]:
    """Telecommand Space Packets of 1..``max_data`` data octets (most span several frames)."""
    rng = random.Random(seed)
    return [
        SpacePacket(
            0x100 + i % 16,
            rng.randbytes(rng.randint(1, max_data)),
            packet_type=PacketType.TC,
            seq_count=i % 16384,
        ).pack()
        for i in range(count)
    ]


@dataclass
class QueryRun:
    """One run of :func:`run_queries`."""

    label: str
    sent: list[bytes]
    sent_t_s: list[float]
    delivered: list[tuple[float, bytes]]
    emulated_s: float
    wall_s: float
    stats: Counter[str] = field(default_factory=Counter)
    alerts: list[str] = field(default_factory=list)

    @property
    def exactly_once_in_order(self) -> bool:
        return [p for _, p in self.delivered] == self.sent

    @property
    def latencies_s(self) -> list[float]:
        """Submission to delivery on board, per query (when delivery was exact)."""
        if not self.exactly_once_in_order:
            return []
        return [t - t0 for (t, _), t0 in zip(self.delivered, self.sent_t_s, strict=True)]

    def summary(self) -> dict[str, float]:
        s = self.stats
        lat = sorted(self.latencies_s)
        first = s["AD_sent"]
        out = {
            "queries": len(self.sent),
            "delivered": len(self.delivered),
            "octets": sum(map(len, self.sent)),
            "ad_frames": first,
            "ad_retransmissions": s["AD_retransmitted"],
            "retransmission_ratio": s["AD_retransmitted"] / first if first else 0.0,
            "cltus_lost": s["uplink_dropped"],
            "cltus_corrupted": s["uplink_corrupted"],
            "tm_frames": s["tm_frames"],
            "tm_frames_lost": s["downlink_dropped"],
            "clcws_read": s["clcws"],
            "t1_expired": s["t1_expired"],
            "t1_held": s["t1_held_out_of_contact"],
            "suspends": s["suspends"],
            "alerts": len(self.alerts),
            "farm_discarded": s["farm_discarded"],
            "emulated_s": self.emulated_s,
            "wall_s": self.wall_s,
        }
        if lat:
            out |= {
                "latency_mean_s": sum(lat) / len(lat),
                "latency_p50_s": _percentile(lat, 50),
                "latency_p90_s": _percentile(lat, 90),
                "latency_p99_s": _percentile(lat, 99),
                "latency_max_s": lat[-1],
            }
        return out

    def report(self) -> str:
        s = self.summary()
        lines = [
            f"{self.label}: {s['delivered']}/{s['queries']} queries ({s['octets']:,} octets) "
            f"delivered {'exactly once, in order' if self.exactly_once_in_order else 'WRONGLY'} "
            f"in {s['emulated_s']:.1f} s emulated, {s['wall_s']:.2f} s wall",
            f"  AD frames {s['ad_frames']:,}, retransmitted {s['ad_retransmissions']:,} "
            f"({100 * s['retransmission_ratio']:.1f} %); CLTUs lost {s['cltus_lost']:,}, "
            f"with bit errors {s['cltus_corrupted']:,}; FARM-1 discarded {s['farm_discarded']:,}",
            f"  TM frames {s['tm_frames']:,} (lost {s['tm_frames_lost']:,}), CLCWs read "
            f"{s['clcws_read']:,}; T1 expired {s['t1_expired']:,}, held out of contact "
            f"{s['t1_held']:,}; suspends {s['suspends']}, alerts {s['alerts']}",
        ]
        if "latency_p50_s" in s:
            lines.append(
                f"  latency (submit -> on board) mean {s['latency_mean_s']:.2f} s, "
                f"p50 {s['latency_p50_s']:.2f}, p90 {s['latency_p90_s']:.2f}, "
                f"p99 {s['latency_p99_s']:.2f}, max {s['latency_max_s']:.2f} s"
            )
        return "\n".join(lines)


def _percentile(sorted_values: list[float], pct: float) -> float:
    k = max(0, math.ceil(pct / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


def run_queries(
    count: int = 1000,
    *,
    uplink_loss: float = 0.0,
    downlink_loss: float = 0.0,
    ber: float = 0.0,
    gap: tuple[float, float] | None = None,
    mean_interval_s: float = 1.0,
    max_data: int = 3000,
    seed: int = 0,
    config: UplinkConfig | None = None,
    deadline_s: float = 20_000.0,
) -> QueryRun:
    """Send ``count`` queries, submitted at exponential intervals of mean
    ``mean_interval_s``, and run until all are delivered (or ``deadline_s`` of
    emulated time passes). ``gap`` drops every unit on both links in [start, stop)."""
    queries = random_queries(count, seed, max_data)
    gaps = (gap,) if gap else ()
    label = (
        f"{count} queries, uplink loss {uplink_loss:.0%}, downlink loss {downlink_loss:.0%}, "
        f"BER {ber:g}" + (f", contact gap {gap[0]:g}-{gap[1]:g} s" if gap else "")
    )

    async def main() -> QueryRun:
        clock = clk.make_clock(True)
        up = LossyModel(FixedConditions(UPLINK_RATE_BPS, DELAY_S, ber), uplink_loss, seed + 1, gaps)
        down = LossyModel(
            FixedConditions(DOWNLINK_RATE_BPS, DELAY_S, ber), downlink_loss, seed + 2, gaps
        )
        link = Cop1Link(
            clock,
            up,
            down,
            config,
            IndependentErrors(seed=seed + 3),
            IndependentErrors(seed=seed + 4),
        )
        rng = random.Random(seed + 5)
        sent_t: list[float] = []
        wall0 = time.perf_counter()
        async with link:

            async def submit() -> None:
                t = clock.now()
                for packet in queries:
                    t += rng.expovariate(1 / mean_interval_s)
                    await clock.sleep_until(t)
                    sent_t.append(clock.now())
                    link.ground.send(packet)

            feeder = asyncio.get_running_loop().create_task(submit())
            try:
                with contextlib.suppress(TimeoutError):  # the caller sees what got through
                    await asyncio.wait_for(link.spacecraft.wait_delivered(count), deadline_s)
            finally:
                feeder.cancel()
            emulated = clock.now()
        wall = time.perf_counter() - wall0
        stats: Counter[str] = Counter(link.ground.stats)
        stats["tm_frames"] = link.spacecraft.stats["tm_frames"]
        stats["uplink_dropped"] = link.uplink.stats["dropped"]
        stats["uplink_corrupted"] = link.uplink.stats["corrupted"]
        stats["downlink_dropped"] = link.downlink.stats["dropped"]
        stats["farm_discarded"] = link.spacecraft.farm.stats["discarded"]
        for key, value in link.spacecraft.farm.stats.items():
            stats[f"farm_{key}"] = value
        alerts = [f"{t:.1f} s {a.code.name}: {a.reason}" for t, a in link.ground.alerts]
        return QueryRun(
            label, queries, sent_t, list(link.spacecraft.delivered), emulated, wall, stats, alerts
        )

    return clk.run(main, emulated=True)


class _Losses(TypedDict, total=False):
    """What a case of :func:`run` passes to :func:`run_queries`."""

    uplink_loss: float
    downlink_loss: float
    ber: float
    gap: tuple[float, float]
    config: UplinkConfig


# the default associations (authenticated encryption, AES-256-GCM) on both links
SDLS_ON = UplinkConfig(sdls=SdlsSettings(enabled=True))


def run(quick: bool = False, repeat: int = 5) -> list[Result]:
    """``linkstack bench``-style cases: wall time to deliver N queries through COP-1,
    ``repeat`` runs a case (the same seed: the same emulated run each time; its
    figures are printed once)."""
    count = 200 if quick else 1000
    cases: list[tuple[str, _Losses]] = [
        ("no loss", {}),
        ("1 % loss each way, BER 1e-5", {"uplink_loss": 0.01, "downlink_loss": 0.01, "ber": 1e-5}),
        ("10 % loss each way", {"uplink_loss": 0.1, "downlink_loss": 0.1}),
        ("30 % loss each way", {"uplink_loss": 0.3, "downlink_loss": 0.3}),
        ("10 % loss, 10-minute contact gap", {"uplink_loss": 0.1, "gap": (60.0, 660.0)}),
        (
            "30 % loss each way, SDLS AES-256-GCM both ways",
            {"uplink_loss": 0.3, "downlink_loss": 0.3, "config": SDLS_ON},
        ),
    ]
    print(
        f"# {count} queries a case, {repeat} runs a case; the figures printed are each case's "
        "first run (same seed: every run is the same emulated run, only the wall time differs)",
        flush=True,
    )
    results = []
    for name, kwargs in cases:
        runs = [run_queries(count, seed=1, **kwargs) for _ in range(repeat)]
        print(runs[0].report(), flush=True)
        if any(r.delivered != runs[0].delivered for r in runs[1:]):
            raise RuntimeError(f"COP-1 bench: {name}: runs of the same seed differ")
        octets = sum(map(len, runs[0].sent))
        results.append(
            Result(f"COP-1 {count} queries, {name}", count, octets, [r.wall_s for r in runs])
        )
    return results
