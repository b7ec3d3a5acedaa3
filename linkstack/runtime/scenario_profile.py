"""The profile a capture is read by: ``--profile``'s, or the one the ``--scenario``'s
ground link runs (its ``[frames] profile``, :mod:`linkstack.runtime.link_profile`), or
linkstack's own. ``linkstack conform`` judges by it, ``linkstack replay`` decodes by it.

A scenario that names a profile ran its link's frames, FECF, OCF and coding by it, so its
capture is read by that profile, exactly as ``--profile`` of the same file would. Both
given must be the same profile (the same parameters, wherever each was read from):
which one to believe is not the command's to guess. It lives in the runtime, below
both capture (replay) and conformance, so that the two commands choose alike.
"""

from __future__ import annotations

import dataclasses

from linkstack.errors import ConfigError
from linkstack.runtime.mission_profile import DEFAULT_PROFILE, Profile, load_profile

# what says where a profile came from, not how it reads a capture
_IDENTITY = frozenset({"name", "description", "source"})


def choose_profile(
    given: str | None,
    named: Profile | None,
    scenario: str | None,
    command: str = "conform",
) -> Profile:
    """``given`` (``--profile``, None when left out) or ``named`` (the ``[frames] profile``
    of the file ``scenario``, None when it names none), else linkstack's. A
    :class:`~linkstack.errors.ConfigError` of ``command`` naming both when they differ."""
    if named is None:
        return load_profile(given or DEFAULT_PROFILE)
    if given is None:
        return from_scenario(named, scenario)
    explicit = load_profile(given)
    differ = differences(explicit, named)
    if differ:
        use = "judge" if command == "conform" else "decode"
        raise ConfigError(
            command,
            "--profile",
            f"{explicit.source} contradicts --scenario {scenario}, whose "
            f"[frames] profile is {named.name!r} ({named.source}): they differ in "
            f"{', '.join(differ)}; leave --profile out to {use} by the scenario's, "
            "or give the same profile",
        )
    return explicit


def from_scenario(named: Profile, scenario: str | None) -> Profile:
    """``named`` with its source saying it is the scenario's ``[frames] profile``."""
    return dataclasses.replace(
        named, source=f"{named.source}, [frames] profile of --scenario {scenario}"
    )


def differences(a: Profile, b: Profile) -> list[str]:
    """The sections (``[tm]``, ``[tc]``...) in which two profiles read a capture
    differently; empty when they are the same profile, whatever their names and files."""
    return [
        f"[{f.name}]" if f.name != "uncoded" else "their frames-alone coding"
        for f in dataclasses.fields(Profile)
        if f.name not in _IDENTITY and getattr(a, f.name) != getattr(b, f.name)
    ]
