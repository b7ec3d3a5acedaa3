"""Queries through the in-process emulation, answered by a scripted backend whose
inference legs are the accelerator's timing model: what ``roundtrip-study`` and
``linkstack sweep`` run, so that the figures do not depend on the host."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from linkstack.runtime import clock as clk
from linkstack.runtime.config import EmulationConfig
from linkstack.runtime.emulation import Emulation
from linkstack.runtime.report import Timeline
from payloads.backends import Backend, Generation, GenerationParams
from payloads.client import QueryRefusedError
from payloads.messages import Params

PROMPT = "Describe the cloud cover and any ships in the last image tile over 31N 122E."
ANSWER_WORD = "word "  # one token of the scripted answer: ~4 octets, as Qwen3's average


class ScriptedBackend(Backend):
    """A model that answers at once with ``max_new_tokens`` tokens of fixed text: the
    study's inference legs are the timing model's, so nothing needs to run here."""

    name = "scripted"
    model = "scripted answer (the inference legs are the accelerator's)"
    random_weights = False

    def load(self) -> float:
        return 0.0

    def count_tokens(self, prompt: str, thinking: bool = False) -> int:
        return max(1, len(prompt.encode("utf-8")) // 4)

    @property
    def max_prompt_tokens(self) -> int:
        return 32768

    def generate(
        self,
        prompt: str,
        params: GenerationParams,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        n = params.max_new_tokens
        if on_text is not None:
            for _ in range(n):
                on_text(ANSWER_WORD)
        return Generation(
            ANSWER_WORD * n, self.count_tokens(prompt), n, "length", 0.0, 0.0, 0.0,
            self.name, self.model, False,
        )  # fmt: skip

    def close(self) -> None:
        pass


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
