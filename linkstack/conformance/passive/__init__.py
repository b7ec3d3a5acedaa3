"""The passive conformance suite: a capture judged against the rules of the standards.
:mod:`.rules` the catalogue, :mod:`.profile` the TOML profiles, :mod:`.checker` units ->
observations -> verdicts, :mod:`.report` text and JUnit, :mod:`.broken` the generator of
the deliberately broken captures under ``tests/conformance/broken``."""
