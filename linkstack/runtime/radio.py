"""The physical links of a scenario, and the capture of what they emit.

:class:`PhysicalLinks` builds every link of a scenario with its physics, in one fixed
order (so that its random seeds are the same wherever it is built): for each
satellite its S-band uplink and X-band downlink, through the station that its
:class:`~linkstack.runtime.routing.StationSwitch` picks at each emission
(:class:`SwitchedRfModel`), then both directions of each laser pair. The in-process
emulation connects their far ends to the nodes; the channel daemon connects them to
UDP ports.

:func:`capture_emissions` reports each unit to a capture sink when it starts to
radiate, with the frame inside it (a USLP frame, on any kind of link, on the
``uslp_frame`` layer: its version number says so); the ends of an RF unit come from
the station its conditions name (``Conditions.via``), so nobody asks the model
afterwards.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TypedDict

from channels.errors import IndependentErrors
from channels.link import Conditions, Link, LinkEvent, LinkModel
from channels.models import LaserLinkModel, RfLinkModel, SampledModel
from channels.orbit import IslView, StationView
from channels.rf import RfLinkConfig
from linkstack.ccsds.coding.chains import CaduCoding, CltuCoding, CltuReceiver
from linkstack.ccsds.coding.randomizer import tm_derandomize
from linkstack.ccsds.uslp import VERSION as USLP_VERSION
from linkstack.runtime.routing import StationSwitch
from linkstack.runtime.site import CaptureSink, Site, ground_node, sat_node

USLP_FRAME_LAYER = "uslp_frame"  # the capture layer of USLP frames, whatever the link

# A unit's (source, destination) node names, from the conditions it was emitted in
# a link in real time asks its physics once a millisecond (channels.models.SampledModel)
REALTIME_STEP_S = 1e-3
# ... and queues no more than this much of its own transmitter time
REALTIME_BACKLOG_S = 0.5


class _RealTime(TypedDict, total=False):
    realtime: bool
    max_backlog_s: float
    rate_bps: float


Ends = Callable[[Conditions | None], tuple[str, str]]


class SwitchedRfModel:
    """One RF direction of a satellite: the link model of the station tracking it now.

    ``loss`` (a probability per unit) and ``ber_floor`` inject extra frame losses
    and bit errors on top of the link budget (tests, what-if runs)."""

    def __init__(
        self,
        switch: StationSwitch,
        models: Mapping[str, LinkModel],
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

    def conditions(self, t_s: float) -> Conditions:
        station = self.switch.station_at(t_s)
        if station is None:
            return Conditions(False, self.rate_bps, 0.0, 0.0, "no_contact")
        cond = self.models[station].conditions(t_s)
        if cond.up and self.loss and self._rng.random() < self.loss:
            return replace(cond, up=False, reason="injected_loss")
        if cond.up and cond.ber < self.ber_floor:
            return replace(cond, ber=self.ber_floor)
        return cond


class PhysicalLinks:
    """Every link of the site's scenario with its physics (see the module docstring).

    ``uplinks[sat]``, ``downlinks[sat]``, ``isls[(src, dst)]``; ``all`` in the order
    they were built. Their far ends are connected by whoever uses them."""

    def __init__(self, site: Site, *, realtime: bool = False) -> None:
        cfg = site.config
        step = REALTIME_STEP_S if realtime else None

        def bound(rate_bps: float) -> _RealTime:
            if not realtime:
                return {}
            return {"realtime": True, "max_backlog_s": REALTIME_BACKLOG_S, "rate_bps": rate_bps}

        scenario = site.scenario
        clock = site.clock
        seeds = random.Random(cfg.seed)
        self.uplinks: dict[str, Link] = {}
        self.downlinks: dict[str, Link] = {}
        self.isls: dict[tuple[str, str], Link] = {}
        self.all: list[Link] = []
        for sat in scenario.satellites:
            views = [StationView(st, sat, scenario.epoch) for st in scenario.stations]
            switch = site.switches[sat.name]

            # the seeds are drawn in this order: both models, then both error sources
            up_model = _switched(
                site, switch, views, cfg.uplink_rf, cfg.uplink_loss, cfg.uplink_ber, seeds, step
            )
            down_model = _switched(
                site,
                switch,
                views,
                cfg.downlink_rf,
                cfg.downlink_loss,
                cfg.downlink_ber,
                seeds,
                step,
            )
            up_errors = IndependentErrors(seed=seeds.getrandbits(32))
            up = Link(
                f"uplink {sat.name}", clock, up_model, up_errors, **bound(cfg.uplink_rf.rate_bps)
            )
            down_errors = IndependentErrors(seed=seeds.getrandbits(32))
            down = Link(
                f"downlink {sat.name}",
                clock,
                down_model,
                down_errors,
                **bound(cfg.downlink_rf.rate_bps),
            )
            self.uplinks[sat.name], self.downlinks[sat.name] = up, down
            self.all += [up, down]
        names = scenario.satellite_names
        for a, b in scenario.isl_pairs:
            for src, dst in ((names[a], names[b]), (names[b], names[a])):
                view = IslView(scenario.satellite(src), scenario.satellite(dst), scenario.epoch)
                window = functools.partial(site.contacts.window_start, src, dst)
                seed = seeds.getrandbits(32)
                laser: LinkModel = LaserLinkModel(view, cfg.laser, seed, window_start=window)
                if step is not None:
                    laser = SampledModel(laser, step)
                errors = IndependentErrors(seed=seeds.getrandbits(32))
                link = Link(f"isl {src}->{dst}", clock, laser, errors, **bound(cfg.laser.rate_bps))
                self.isls[(src, dst)] = link
                self.all.append(link)


def _switched(
    site: Site,
    switch: StationSwitch,
    views: list[StationView],
    rf: RfLinkConfig,
    loss: float,
    ber: float,
    seeds: random.Random,
    step_s: float | None,
) -> SwitchedRfModel:
    sat = switch.satellite
    models: dict[str, LinkModel] = {}
    for view in views:
        station = view.station.name
        start = functools.partial(site.contacts.pass_start, sat, station)
        model: LinkModel = RfLinkModel(view, rf, pass_start=start)
        models[station] = model if step_s is None else SampledModel(model, step_s)
    return SwitchedRfModel(
        switch, models, rf.rate_bps, loss=loss, ber_floor=ber, seed=seeds.getrandbits(32)
    )


# -- what a capture sees of a link -----------------------------------------------------------


def uplink_ends(satellite: str) -> Ends:
    """A CLTU's ends: the station its conditions name, to the satellite."""
    return lambda cond: (ground_node(_via(cond)), sat_node(satellite))


def downlink_ends(satellite: str) -> Ends:
    return lambda cond: (sat_node(satellite), ground_node(_via(cond)))


def fixed_ends(src: str, dst: str) -> Ends:
    ends = (src, dst)
    return lambda cond: ends


def _via(cond: Conditions | None) -> str:
    return cond.via if cond is not None else ""


def cadu_frame_of(frame_len: int, coding: CaduCoding) -> Callable[[bytes], bytes | None]:
    """The transfer frame inside a CADU (the capture's frame layer)."""
    asm = len(coding.asm)

    def frame_of(unit: bytes) -> bytes | None:
        block = unit[asm:]
        if coding.randomize:
            block = tm_derandomize(block)
        return bytes(block[:frame_len])

    return frame_of


def cltu_frame_of(coding: CltuCoding) -> Callable[[bytes], bytes | None]:
    """The TC frame inside a CLTU (None if it does not decode)."""
    return CltuReceiver(coding).receive


def capture_emissions(
    link: Link,
    sink: CaptureSink,
    layers: tuple[str, str],
    ends: Ends,
    frame_of: Callable[[bytes], bytes | None],
) -> None:
    """Report each unit ``link`` emits to ``sink`` when it starts to radiate (layer
    ``layers[0]``), and the frame inside it (``layers[1]``; a USLP frame, version 1100,
    on ``uslp_frame`` whatever the link's TC, TM or AOS layer would be)."""
    unit_layer, frame_layer = layers

    def capture(event: LinkEvent) -> None:
        if event.kind != "sent":
            return
        src, dst = ends(event.conditions)
        sink.unit(unit_layer, event.t_s, src, dst, event.unit)
        frame = frame_of(event.unit)
        if frame is not None:
            uslp = len(frame) > 0 and frame[0] >> 4 == USLP_VERSION
            sink.unit(USLP_FRAME_LAYER if uslp else frame_layer, event.t_s, src, dst, frame)

    link.add_listener(capture)
