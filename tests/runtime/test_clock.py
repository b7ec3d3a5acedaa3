"""The emulated clock far from its loop's start: past 2**24 s of loop time (194 days)
asyncio's 1 ns resolution is less than half a float step, and a timer due exactly at
the loop's time used to spin the loop at that instant for ever."""

import asyncio
import threading

import pytest

from linkstack.runtime import clock as clk

FAR_T_S = 2.0**24  # the first loop time whose float step (3.7 ns) is over twice 1 ns
WATCHDOG_S = 60.0  # a hang is stopped from outside, and fails the test instead


def run_watched(main):
    """clk.run's emulated loop, stopped from another thread if it hangs."""
    loop = clk.new_emulated_loop()
    asyncio.set_event_loop(loop)
    watchdog = threading.Timer(WATCHDOG_S, loop.call_soon_threadsafe, (loop.stop,))
    watchdog.start()
    try:
        return loop.run_until_complete(main())
    except RuntimeError as exc:  # "Event loop stopped before Future completed."
        pytest.fail(f"the emulated loop hung: {exc}")
    finally:
        watchdog.cancel()
        asyncio.set_event_loop(None)
        loop.close()


@pytest.mark.parametrize("far_t_s", [FAR_T_S - 100.0, FAR_T_S + 7.0, 1e8, 2.0**30])
def test_sleeps_and_timers_are_kept_far_into_a_run(far_t_s):
    """Sleep to far_t_s (jumps of a day at most, as asyncio's select timeout has it),
    then sleep and fire timers at exact instants and at sub-microsecond offsets."""

    async def main():
        clock = clk.make_clock(True, start_t_s=86_400.0)  # the scenario's instant: any
        loop = asyncio.get_running_loop()
        await clock.sleep_until(86_400.0 + far_t_s)
        assert loop.time() == far_t_s
        fired = []
        for k in range(50):
            due = loop.time() + (0.0 if k % 2 else 3.3e-7 * k)
            handle = loop.call_at(due, fired.append, k)
            await asyncio.sleep(1e-3)
            assert not handle.cancelled() and fired[-1] == k
            await clock.sleep_until(clock.now() + 0.25)
        return clock.now() - 86_400.0 - far_t_s

    elapsed_s = run_watched(main)
    assert elapsed_s == pytest.approx(50 * (1e-3 + 0.25), abs=1e-3)


def test_the_loop_resolution_is_asyncios_near_the_start():
    """Below 2**24 s the resolution is asyncio's own: runs near the start (every run of
    days) schedule exactly as before."""

    async def main():
        loop = asyncio.get_running_loop()
        return loop._clock_resolution

    assert clk.run(main, emulated=True) == clk.CLOCK_RESOLUTION_S == 1e-9
