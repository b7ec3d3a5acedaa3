"""The passive conformance suite: a capture judged against the rules of the standards.

:mod:`.rules` the catalogue (its managed parameters from :mod:`linkstack.capture.mission_profile`),
:mod:`.checker` the entry (units -> observations -> verdicts -> report) over
:mod:`.observations` (what the rules judge), :mod:`.decoding` (one unit, layer by
layer), :mod:`.analysis` (what spans units: pairs, zones, segments, COP-1) and
:mod:`.verdicts` (rules applied, results, the report), :mod:`.report` text and JUnit,
:mod:`.session` the scripted good session and its capture writer, :mod:`.broken` the
generator of the deliberately broken captures (faults in that session) under
``tests/conformance/broken``."""
