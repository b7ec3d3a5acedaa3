"""A computing satellite's power system in a run: its :class:`payloads.power.PowerModel`
fed with its sunlight from the contact plan, and the question its onboard endpoint
asks before each inference (:meth:`OnboardPower.inference_start`).

The runtime is the layer that holds both the contact plan (``channels``) and the
endpoint (``payloads``), so it hands one to the other: the plan's sunlight spans of
the satellite (:meth:`ContactState.take_sunlight`, searched with each chunk of the
plan only when ``[power]`` is on) go into the model as the plan grows. The draw of
an inference is the accelerator's at the utilisation its endpoint gives
(``PowerParams.accelerator_w``: the busy power when the timing is the host's
stopwatch, less for a bandwidth-bound batch of one under a timing profile).
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from payloads.power import EnergyLedger, PowerModel

if TYPE_CHECKING:
    from linkstack.runtime.power_settings import PowerSettings
    from linkstack.runtime.routing import ContactState

# how far past an inference's end the sunlight is known before the model is asked (an
# eclipse and the recharge after it), and how far ahead a start is looked for at most
AHEAD_S = 4 * 3600.0
LOOKAHEAD_S = 2 * 86_400.0


class OnboardPower:
    """One satellite's battery through a run (see the module docstring)."""

    def __init__(
        self, contacts: ContactState, satellite: str, settings: PowerSettings, t_s: float
    ) -> None:
        self.contacts = contacts
        self.satellite = satellite
        self.params = params = settings.params
        spans = contacts.take_sunlight(satellite)
        self.model = PowerModel(
            params, spans, t_s=t_s, soc_wh=settings.initial_charge * params.battery_capacity_wh
        )
        self.start_t_s = t_s
        self.soc0_wh = self.model.soc_wh
        self.inferences = 0
        self.busy_s = 0.0
        self.power_wait_s = 0.0
        self.accelerator_wh = 0.0  # what the inferences drew, above the idle power

    def _cover(self, t_s: float) -> None:
        """Make the model's sunlight reach ``t_s``."""
        while self.model.end_t_s < t_s:
            self.contacts.extend(t_s)
            more = self.contacts.take_sunlight(self.satellite)
            if not more:
                break
            self.model.extend(more)

    def inference_start(
        self, t_s: float, duration_s: float, utilisation: float = 1.0
    ) -> float | None:
        """An inference of ``duration_s`` asked for at ``t_s``, the accelerator at
        ``utilisation`` (its draw ``PowerParams.accelerator_w``): when the battery lets
        it start (``t_s`` if it can now), booked on the model; None if no start within
        :data:`LOOKAHEAD_S` can carry it (a draw above what the array gives). One asked
        for while another runs (concurrency > 1) runs beside it, the accelerator busy
        until the later end, if the battery carries what it adds; else it queues
        behind (``busy_s``: the time the accelerator was busy, overlaps counted once).
        The part that overlaps the one running keeps that one's draw (already booked);
        the joiner's own utilisation, timed as one of the batch, sets the draw past it."""
        draw_w = self.params.accelerator_w(utilisation)
        extra_w = draw_w - self.params.accelerator_idle_w
        ahead_s = AHEAD_S
        running_until_t_s = self.model.t_s
        if t_s < running_until_t_s:  # joins an inference running (concurrency > 1)
            self._cover(t_s + duration_s + ahead_s)
            # the accelerator already draws its busy power until then: only what runs
            # past it costs more, and if the battery carries that it starts at once
            past_s = max(t_s + duration_s - running_until_t_s, 0.0)
            if self.model.can_sustain(draw_w, past_s):
                self.model.advance(running_until_t_s + past_s, accelerator_w=draw_w)
                self.inferences += 1
                self.busy_s += past_s
                self.accelerator_wh += extra_w * past_s / 3600.0
                return t_s
        while True:
            self._cover(max(t_s, self.model.t_s) + duration_s + ahead_s)
            free_t_s = max(t_s, self.model.t_s)  # after one still booked, if any
            start = self.model.schedule(t_s, draw_w, duration_s)
            if start is not None:
                self.inferences += 1
                self.busy_s += duration_s
                self.power_wait_s += start - free_t_s
                self.accelerator_wh += extra_w * duration_s / 3600.0
                return start
            if ahead_s >= LOOKAHEAD_S:
                return None
            ahead_s = min(2 * ahead_s, LOOKAHEAD_S)

    def probe_start(self, t_s: float, duration_s: float) -> float | None:
        """When an inference of ``duration_s`` asked for at ``t_s`` could start, as
        :meth:`inference_start` would answer now, without booking it (for the ground's
        choice of a satellite); None if the sunlight known cannot carry it."""
        self._cover(max(t_s, self.model.t_s) + duration_s + AHEAD_S)
        probe = copy.copy(self.model)  # its spans are shared and never changed by stepping
        probe.ledger = EnergyLedger()
        return probe.schedule(max(t_s, probe.t_s), self.params.accelerator_busy_w, duration_s)

    def soc_wh_at(self, t_s: float) -> float:
        """The state of charge at ``t_s`` if nothing runs until then, found on a copy of
        the model (as :meth:`probe_start`): asking moves nothing, so an inference asked
        for afterwards is booked as if nobody had asked."""
        if t_s <= self.model.t_s:
            return self.model.soc_wh
        self._cover(t_s)
        probe = copy.copy(self.model)
        probe.ledger = EnergyLedger()
        probe.advance(min(t_s, probe.end_t_s))
        return probe.soc_wh

    def observe(self, t_s: float, soc_wh: float) -> bool:
        """A ground's copy of the satellite's battery (the ground daemon, which cannot
        see the satellite's model): the charge an answer reported for ``t_s`` replaces
        what the copy assumed; until the next report it steps idle from there, so the
        inferences booked since are not in it. Whether it was taken (not an older one)."""
        self._cover(t_s)
        return self.model.observe(t_s, soc_wh)

    def figures(self, t_s: float) -> dict[str, Any]:
        """The battery and its energy from the start of the run to ``t_s`` (the model
        moved there, idle, if nothing ran since): the ledger closes,
        ``generated_wh`` = ``served_wh`` + ``shunted_wh`` + the charge and discharge
        losses + (``soc_wh`` - ``soc0_wh``)."""
        if t_s > self.model.t_s:
            self._cover(t_s)
            self.model.advance(min(t_s, self.model.end_t_s))
        span_s = self.model.t_s - self.start_t_s
        return {
            "inferences": self.inferences,
            "busy_s": self.busy_s,
            "utilisation": self.busy_s / span_s if span_s > 0 else 0.0,
            "power_wait_s": self.power_wait_s,
            # above the idle draw, for the inferences' work: energy per query follows it
            "accelerator_wh": self.accelerator_wh,
            "accelerator_wh_per_inference": (
                self.accelerator_wh / self.inferences if self.inferences else 0.0
            ),
            "soc0_wh": self.soc0_wh,
            "soc_wh": self.model.soc_wh,
            "min_soc_wh": self.model.min_soc_wh,
            "floor_wh": self.params.floor_wh,
            "until_t_s": self.model.t_s,
            **asdict(self.model.ledger),
        }
