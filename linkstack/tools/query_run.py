"""Queries through the in-process emulation, answered by a scripted backend whose
inference legs are the accelerator's timing model: what ``roundtrip-study`` and
``linkstack sweep`` run, so that the figures do not depend on the host."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from linkstack.runtime import clock as clk
from linkstack.runtime.config import EmulationConfig
from linkstack.runtime.emulation import Emulation
from linkstack.runtime.report import Timeline
from linkstack.tools.roundtrip_study import PROMPT, ScriptedBackend
from payloads.client import QueryRefusedError
from payloads.messages import Params


@dataclass(frozen=True)
class QueryRun:
    """One run: the timelines in submit order (a query refused keeps its timeline,
    incomplete), the emulated instant it ended at, and each computing satellite's
    figures (:meth:`Emulation.onboard_figures`: inferences, busy time, energy)."""

    timelines: list[Timeline]
    end_t_s: float
    onboard: dict[str, dict[str, Any]]


def run_queries(
    config: EmulationConfig,
    times: Sequence[float],
    *,
    max_new_tokens: int,
    prompts: Sequence[str] = (PROMPT,),
) -> QueryRun:
    """Queries submitted at ``times`` (emulated seconds after the epoch) for any
    computing satellite through the emulation of ``config``; query ``k`` asks
    ``prompts[k % len(prompts)]``."""
    backend = ScriptedBackend()

    async def main() -> QueryRun:
        clock = clk.make_clock(True)
        emu = Emulation(clock, config, backend=backend)

        async def one(k: int, t_s: float) -> None:
            await clock.sleep_until(t_s)
            params = Params(max_new_tokens=max_new_tokens, temperature=0.7, seed=k)
            with contextlib.suppress(QueryRefusedError):  # its timeline says why
                await emu.client.ask(prompts[k % len(prompts)], params)

        async with emu:
            await asyncio.gather(*(one(k, t) for k, t in enumerate(times)))
            end_t_s = clock.now()
            onboard = emu.onboard_figures(end_t_s)
        timelines = sorted(emu.client.timelines, key=lambda t: t.submit_t_s)
        return QueryRun(timelines, end_t_s, onboard)

    return clk.run(main, emulated=True)
