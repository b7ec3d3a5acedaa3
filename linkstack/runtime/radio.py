"""Radio links: which station tracks a satellite, the physics of its RF links and of
the laser links, and what a link reports when it emits (for captures)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from channels.link import Conditions, Delivery, Link, LinkEvent
from channels.models import LaserLinkModel, RfLinkModel
from channels.orbit import IslView, StationView
from channels.scenarios import Scenario
from linkstack.ccsds.coding.chains import CaduCoding, CltuReceiver
from linkstack.ccsds.coding.randomizer import tm_derandomize
from linkstack.runtime.routing import ContactState
from linkstack.runtime.site import CaptureSink, ground_node, sat_node

if TYPE_CHECKING:
    from linkstack.runtime.emulation import EmulationConfig


def rf_ends(model: Any, satellite: str, *, uplink: bool) -> Callable[[], tuple[str, str]]:
    """The capture's (source, destination) of a unit on a satellite's RF link: the
    station is the one the link's model last emitted through (``last_station``)."""

    def ends() -> tuple[str, str]:
        ground, sat = ground_node(model.last_station), sat_node(satellite)
        return (ground, sat) if uplink else (sat, ground)

    return ends


# -- links that know their station, and report what they emit -----------------------------


class StationSwitch:
    """Which station tracks one satellite at a time; shared by its uplink and downlink."""

    def __init__(self, contacts: ContactState, satellite: str) -> None:
        self.contacts = contacts
        self.satellite = satellite
        self._current: Any = None

    def station_at(self, t_s: float) -> str | None:
        cur = self._current
        if cur is not None and cur.aos <= t_s < cur.los:
            return cur.station
        passes = self.contacts.passes(self.satellite, t_s)
        if not passes:
            return None
        self._current = max(passes, key=lambda p: p.los)
        return self._current.station


class SwitchedRfModel:
    """One RF direction of a satellite: the link model of the station tracking it now.

    ``loss`` (a probability per unit) and ``ber_floor`` inject extra frame losses
    and bit errors on top of the link budget (tests, what-if runs)."""

    def __init__(
        self,
        switch: StationSwitch,
        models: dict[str, RfLinkModel],
        rate_bps: float,
        *,
        loss: float = 0.0,
        ber_floor: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.switch = switch
        self.models = models
        self.rate_bps = rate_bps
        self.loss = loss
        self.ber_floor = ber_floor
        self._rng = random.Random(seed)
        self.last_station = ""

    def conditions(self, t_s: float) -> Conditions:
        station = self.switch.station_at(t_s)
        if station is None:
            self.last_station = ""
            return Conditions(False, self.rate_bps, 0.0, 0.0, "no_contact")
        self.last_station = station
        cond = self.models[station].conditions(t_s)
        if cond.up and self.loss and self._rng.random() < self.loss:
            return replace(cond, up=False, reason="injected_loss")
        if cond.up and cond.ber < self.ber_floor:
            return replace(cond, ber=self.ber_floor)
        return cond


class RadioLink(Link):
    """A :class:`Link` that remembers the id of the unit it was last handed and, with
    a capture sink, reports each unit (and the frame inside it) when it is emitted."""

    def __init__(
        self,
        name: str,
        clock: Any,
        model: Any,
        errors: Any = None,
        on_delivery: Callable[[Delivery], object] | None = None,
        *,
        sink: CaptureSink | None = None,
        layers: tuple[str, str] = ("", ""),
        ends: Callable[[], tuple[str, str]] | None = None,
        frame_of: Callable[[bytes], bytes | None] | None = None,
    ) -> None:
        super().__init__(name, clock, model, errors, on_delivery=on_delivery)
        self.last_unit_id: int | None = None
        self.sink = sink
        self.layers = layers
        self.ends = ends
        self.frame_of = frame_of
        self._held: dict[int, bytes] = {}
        if sink is not None:
            self.add_listener(self._capture)

    def send(self, unit: bytes) -> int | None:
        unit_id = super().send(unit)
        self.last_unit_id = unit_id
        if self.sink is not None and unit_id is not None:
            self._held[unit_id] = bytes(unit)
        return unit_id

    def _capture(self, event: LinkEvent) -> None:
        if event.kind != "sent":
            return
        unit = self._held.pop(event.unit_id, None)
        if unit is None or self.sink is None:
            return
        src, dst = self.ends() if self.ends is not None else ("", "")
        unit_layer, frame_layer = self.layers
        self.sink.unit(unit_layer, event.t_s, src, dst, unit)
        frame = self.frame_of(unit) if self.frame_of is not None else None
        if frame is not None:
            self.sink.unit(frame_layer, event.t_s, src, dst, frame)


def cadu_frame_of(frame_len: int, coding: CaduCoding) -> Callable[[bytes], bytes | None]:
    asm = len(coding.asm)

    def frame_of(unit: bytes) -> bytes | None:
        block = unit[asm:]
        if coding.randomize:
            block = tm_derandomize(block)
        return bytes(block[:frame_len])

    return frame_of


def cltu_frame_of(coding: Any) -> Callable[[bytes], bytes | None]:
    rx = CltuReceiver(coding)
    return rx.receive


def rf_models(
    scenario: Scenario,
    cfg: EmulationConfig,
    switch: StationSwitch,
    satellite: Any,
    seeds: random.Random,
) -> tuple[SwitchedRfModel, SwitchedRfModel]:
    """The physics of one satellite's uplink and downlink (through the station its
    switch picks), with the configured injected losses and BER floors."""
    views = {st.name: StationView(st, satellite, scenario.epoch) for st in scenario.stations}
    up = SwitchedRfModel(
        switch,
        {s: RfLinkModel(v, cfg.uplink_rf) for s, v in views.items()},
        cfg.uplink_rf.rate_bps,
        loss=cfg.uplink_loss,
        ber_floor=cfg.uplink_ber,
        seed=seeds.getrandbits(32),
    )
    down = SwitchedRfModel(
        switch,
        {s: RfLinkModel(v, cfg.downlink_rf) for s, v in views.items()},
        cfg.downlink_rf.rate_bps,
        loss=cfg.downlink_loss,
        ber_floor=cfg.downlink_ber,
        seed=seeds.getrandbits(32),
    )
    return up, down


def laser_model(
    scenario: Scenario, cfg: EmulationConfig, src: str, dst: str, seeds: random.Random
) -> LaserLinkModel:
    """The physics of the laser link from ``src`` to ``dst``."""
    return LaserLinkModel(
        IslView(scenario.satellite(src), scenario.satellite(dst), scenario.epoch),
        cfg.laser,
        seed=seeds.getrandbits(32),
    )
