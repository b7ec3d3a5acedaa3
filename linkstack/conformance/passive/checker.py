"""Running the rules over a capture: units in, observations, rule verdicts, a report.

Three stages, all sans-I/O and streaming (:meth:`Checker.feed` one unit at a time,
:meth:`Checker.finish` at the end):

1. :mod:`.decoding` reads each unit, layer by layer, into observations
   (:mod:`.observations`): a CADU with what its coding showed, a CLTU with its
   codeblocks, a frame with its header fields, a Space Packet, a CLCW;
2. :mod:`.analysis` follows what spans units (carriers paired with their frames,
   packets through the zones of a virtual channel, TC segments, COP-1 in both
   directions) and completes the observations with it;
3. :mod:`.verdicts` has each :class:`~linkstack.conformance.passive.rules.Rule` judge
   the observations of the kinds it names, and gives every rule its result.

:func:`check_capture` reads a pcap or pcapng file through the checker into a
:class:`Report`, its units on the profile's layer ports or, for a capture of running
daemons, on their port plan (:mod:`linkstack.conformance.portplan`: each port one link
and view); :func:`select_rules` picks rules from the catalogue. Neither the analysis nor a rule
ends the audit when it breaks: the report says what broke.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import io
import os
import time
import traceback
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

from linkstack.capture.mission_profile import sdls_links
from linkstack.capture.pcap import LAYERS, CapturedUnit, PcapReader
from linkstack.capture.raw_units import is_pcap, read_raw
from linkstack.capture.reader import LinkPorts, PortRole
from linkstack.conformance.passive.analysis import Analyzer
from linkstack.conformance.passive.observations import Unit
from linkstack.conformance.passive.rules import CATALOGUE, Rule
from linkstack.conformance.passive.verdicts import Finding, Report, RuleResult, Verdicts
from linkstack.errors import ConfigError, LinkstackError
from linkstack.runtime.mission_profile import Profile, load_profile

if TYPE_CHECKING:
    from linkstack.capture.sdls_view import LinkSecurity, SdlsView
    from linkstack.ccsds.sdls import SecurityAssociation
    from linkstack.ccsds.sdls_keys import Keyring

__all__ = [
    "Checker",
    "Finding",
    "Report",
    "RuleResult",
    "Unit",
    "check_capture",
    "select_rules",
]


class Checker:
    """The rules over a stream of units: ``feed`` each, then ``finish`` for the results."""

    def __init__(
        self, profile: Profile, rules: Iterable[Rule] | None = None, sdls: SdlsView | None = None
    ) -> None:
        self.profile = profile
        self.verdicts = Verdicts(profile, rules)
        self.units: Counter[str] = Counter()
        self.internal_errors: list[str] = []
        self.analyzer = Analyzer(profile, self.verdicts.judge, sdls=sdls)
        self._count = 0

    def feed(self, unit: Unit) -> None:
        self.units[unit.layer] += 1
        try:
            self.analyzer.feed(unit)
        except Exception as exc:  # the analysis must not end the audit either
            line = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.internal_errors.append(f"analysing unit {unit.describe()}: {line}")

    def feed_captured(self, captured: CapturedUnit, record: int = 0) -> Unit:
        """Feed a :class:`~linkstack.capture.pcap.CapturedUnit` (numbered in arrival order)."""
        self._count += 1
        unit = Unit(
            self._count,
            record or self._count,
            captured.t_s,
            captured.layer,
            captured.src,
            captured.dst,
            captured.data,
        )
        self.feed(unit)
        return unit

    def finish(self) -> list[RuleResult]:
        try:
            self.analyzer.finish()
        except Exception as exc:
            line = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.internal_errors.append(f"analysing the last unit: {line}")
        return self.verdicts.results(self.units)


# -- reading a capture -----------------------------------------------------------------------------


def select_rules(spec: str | None) -> list[Rule]:
    """Rules by comma-separated identifiers (``*`` patterns allowed); all for None."""
    if not spec:
        return list(CATALOGUE)
    wanted = [s.strip().upper() for s in spec.split(",") if s.strip()]
    out: list[Rule] = []
    for pattern in wanted:
        hits = [r for r in CATALOGUE if fnmatch.fnmatchcase(r.id, pattern)]
        if not hits:
            raise ConfigError(
                "conform", "--rules", f"no rule {pattern!r}; see `linkstack conform --list-rules`"
            )
        out.extend(r for r in hits if r not in out)
    return out


def check_capture(
    source: str | os.PathLike[str] | BinaryIO | bytes,
    profile: Profile | str | None = None,
    rules: Iterable[Rule] | None = None,
    *,
    links: Mapping[int, PortRole | LinkPorts] | None = None,
    views: Collection[str] | None = None,
    ports_text: str = "",
    keys: Keyring | None = None,
    sdls_source: str = "",
) -> Report:
    """Check a pcap or pcapng file (a path, a binary file or its bytes) against
    ``profile``. ``links``: the ports of a daemons' port plan (links by link header,
    :func:`~linkstack.conformance.portplan.plan_ports`), besides the profile's layer
    ports; of those, only the units of ``views`` are read (None: all); ``ports_text``
    says where they came from in the report. Frames under SDLS (the profile's
    ``[sdls]``, ``sdls_source`` saying where it came from; without one, the associations
    the capture's side file records) are opened with ``keys`` when given
    (:func:`sdls_view`).

    Never raises on what the capture holds: a file that cannot be read to its end is
    reported (``read_error``) with the rules judged over the units read before.
    """
    t0 = time.perf_counter()
    if not isinstance(profile, Profile):
        profile = load_profile(profile or "linkstack")
    capture = source if isinstance(source, str | os.PathLike) else None
    sdls = sdls_view(profile, keys, source=sdls_source, capture=capture)
    if sdls is not None and not profile.sdls.any:  # the side file's: the rules see them too
        profile = with_scenario_sdls(profile, sdls.links)
    checker = Checker(profile, rules, sdls)
    name = (
        os.fspath(source)
        if isinstance(source, str | os.PathLike)
        else "<bytes>"
        if isinstance(source, bytes | bytearray)
        else getattr(source, "name", "<stream>")
    )
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(bytes(source))
    read_error = None
    reader: PcapReader | None = None
    if isinstance(source, str | os.PathLike) and _raw(source):
        return _check_raw(source, profile, checker, t0)
    try:
        ports: dict[int, str | PortRole | LinkPorts] = {**profile.layer_by_port, **(links or {})}
        reader = PcapReader(source, ports=ports, views=views)
        for captured in reader:
            if captured.layer not in LAYERS:  # pragma: no cover - the port table is checked
                continue
            checker.feed_captured(captured, reader.stats["records"])
    except (LinkstackError, OSError) as exc:
        records = reader.stats["records"] if reader is not None else 0
        read_error = f"stopped after {records} pcap records: {exc}"
    results = checker.finish()
    epoch = reader.epoch if reader is not None else datetime(1970, 1, 1, tzinfo=UTC)
    return Report(
        name,
        profile,
        results,
        checker.units,
        reader.stats if reader is not None else Counter(),
        epoch,
        read_error,
        checker.internal_errors,
        time.perf_counter() - t0,
        ports_text,
        sdls.describe() if sdls is not None else "",
    )


def _raw(path: str | os.PathLike[str]) -> bool:
    """A file that is not a pcap or pcapng: a raw recording (its profile's ``[mission]``)."""
    try:
        return not is_pcap(path)
    except OSError:
        return False  # the pcap reader says why it cannot be read


def _check_raw(
    path: str | os.PathLike[str], profile: Profile, checker: Checker, t0: float
) -> Report:
    """A raw recording of CADUs, frames or a bit stream, cut into units as the
    profile's ``[mission] raw_unit`` says (:mod:`linkstack.capture.raw_units`)."""
    read_error = None
    try:
        for unit in read_raw(path, profile):
            checker.feed_captured(unit)
    except ConfigError as exc:
        read_error = str(exc)
    results = checker.finish()
    return Report(
        os.fspath(path),
        profile,
        results,
        checker.units,
        Counter({"records": sum(checker.units.values())}),
        datetime(1970, 1, 1, tzinfo=UTC),
        read_error,
        checker.internal_errors,
        time.perf_counter() - t0,
        f"a raw file of {profile.mission.raw_unit}s ([mission] raw_unit)",
        "",
    )


def sdls_view(
    profile: Profile,
    keys: Keyring | None = None,
    *,
    source: str = "",
    capture: str | os.PathLike[str] | None = None,
) -> SdlsView | None:
    """The SDLS of the profile's links (``source``: where its ``[sdls]`` came from), or,
    when it has none, of those the side file of ``capture`` records (None: every frame
    clear), with ``keys``; a key file beside the capture is named, never read.
    ConfigError for keys without associations, or a side file whose are wrong."""
    links = sdls_links(profile)
    source = source or f"the profile {profile.name}"
    if not links and capture is not None:
        from linkstack.capture.sdls_view import capture_links  # noqa: PLC0415 - SDLS

        links, source = capture_links(capture) or {}, "the capture's side file"
    if not links:
        if keys is not None:
            raise ConfigError(
                "conform",
                "--keys",
                "the keys need the links' security associations: a profile with [sdls], "
                "--scenario FILE whose [sdls] is enabled, or a capture whose side file "
                "records them",
            )
        return None
    from linkstack.capture.sdls_view import SdlsView, keys_beside  # noqa: PLC0415 - SDLS

    hint = keys_beside(capture) if capture is not None and keys is None else None
    return SdlsView(links, keys, source=source, keys_hint=hint)


def with_scenario_sdls(profile: Profile, links: Mapping[str, LinkSecurity] | None) -> Profile:
    """``profile`` with a scenario's security associations (its ``[sdls]``, as
    :func:`~linkstack.capture.sdls_view.from_uplink` gives them) instead of its own;
    unchanged when the scenario's SDLS is off."""
    if links is None:
        return profile
    from linkstack.runtime.mission_profile import SdlsProfile  # noqa: PLC0415

    def sas(kind: str) -> tuple[SecurityAssociation, ...]:
        link = links.get(kind)
        return link.sas if link is not None else ()

    unkeyed = frozenset((kind, spi) for kind, link in links.items() for spi in link.unkeyed)
    sdls = SdlsProfile(tc=sas("tc"), tm=sas("tm"), aos=sas("aos"), unkeyed=unkeyed)
    return dataclasses.replace(profile, sdls=sdls)
