"""``linkstack bench channel``: the channel models' cost per unit.

Cases, on 1115-octet units (a TM frame):
- errors: independent bit errors at BER 1e-12 .. 1e-1, the BER given per unit as the
  link passes it; Gilbert-Elliott bursts (mean burst 100 bits, mean gap 10^5 bits);
- rf: one full `rf_state` (budget, Doppler, lock, delay) per unit;
- optical: one `OpticalTerminal.unit` per unit;
- emulated link: a Link in emulated time carrying one unit a second for hours over the
  X-band downlink of the default scenario (orbit, pass tracking, budget, lock, bit
  errors, delay, delivery), reported with how much faster than real time it runs.
MB/s counts unit octets over the time of the whole case, in the median of 5 runs (3
for the emulated day).
"""

from __future__ import annotations

import random
import statistics

from channels.errors import GilbertElliott, GilbertElliottErrors, IndependentErrors
from channels.link import Delivery, Link
from channels.models import RfLinkModel
from channels.optical import OPTICAL_ISL_100G
from channels.orbit import StationView
from channels.rf import X_BAND_DOWNLINK, rf_state
from channels.scenarios import default_scenario
from linkstack.runtime import clock as clk
from linkstack.tools.bench.timing import Result, time_runs

UNIT_OCTETS = 1115
BERS = (1e-12, 1e-5, 1e-3, 1e-2, 1e-1)


def bench_independent(ber: float, count: int, repeat: int) -> Result:
    unit = random.Random(1).randbytes(UNIT_OCTETS)
    inj = IndependentErrors(seed=1)

    def run() -> None:
        inject = inj.inject
        for _ in range(count):
            inject(unit, ber)

    return Result(f"bit errors, BER {ber:g}", count, count * UNIT_OCTETS, time_runs(run, repeat))


def bench_gilbert_elliott(count: int, repeat: int) -> Result:
    unit = random.Random(2).randbytes(UNIT_OCTETS)
    inj = GilbertElliottErrors(GilbertElliott(100, 100_000, 0.5, 1e-6), seed=2)

    def run() -> None:
        inject = inj.inject
        for _ in range(count):
            inject(unit)

    name = "Gilbert-Elliott, mean BER 5e-4"
    return Result(name, count, count * UNIT_OCTETS, time_runs(run, repeat))


def bench_rf_state(count: int, repeat: int) -> Result:
    def run() -> None:
        for i in range(count):
            rf_state(X_BAND_DOWNLINK, 60.0, 1_500e3 + i, -5_000.0, 50.0, 15.0)

    return Result("rf_state per unit", count, count * UNIT_OCTETS, time_runs(run, repeat))


def bench_optical(count: int, repeat: int) -> Result:
    rng = random.Random(3)

    def run() -> None:
        unit = OPTICAL_ISL_100G.unit
        for i in range(count):
            unit(60.0, 2_000e3 + i, True, rng)

    return Result("optical unit()", count, count * UNIT_OCTETS, time_runs(run, repeat))


def bench_emulated_link(hours: float, repeat: int) -> Result:
    scenario = default_scenario()
    station, sat = scenario.stations[0], scenario.satellites[0]
    span_s = hours * 3600.0

    async def main() -> int:
        clock = clk.make_clock(True, scenario.epoch)
        model = RfLinkModel(StationView(station, sat, scenario.epoch), X_BAND_DOWNLINK)
        delivered = 0

        def count(_delivery: Delivery) -> None:
            nonlocal delivered
            delivered += 1

        async with Link("down", clock, model, IndependentErrors(seed=1), on_delivery=count) as link:
            t = 0.0
            while t < span_s:
                await clock.sleep_until(t)
                link.send(bytes(UNIT_OCTETS))
                t += 1.0
            await link.drain()
        return delivered

    run_s = time_runs(lambda: clk.run(main, emulated=True), repeat)
    wall = statistics.median(run_s)
    return Result(
        f"emulated link, {hours:g} h in {wall:.1f} s ({span_s / wall:,.0f}x real time)",
        int(span_s),
        int(span_s) * UNIT_OCTETS,
        run_s,
    )


def run(quick: bool = False) -> list[Result]:
    repeat = 5  # runs a case; the median is reported
    count = 2_000 if quick else 20_000
    results = [bench_independent(ber, count, repeat) for ber in BERS]
    results.append(bench_gilbert_elliott(count, repeat))
    results.append(bench_rf_state(count, repeat))
    results.append(bench_optical(count, repeat))
    # a day of emulated link takes seconds a run: 3 runs
    results.append(bench_emulated_link(1.0, 5) if quick else bench_emulated_link(24.0, 3))
    return results
