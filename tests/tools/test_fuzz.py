"""Every decoder against random and damaged input (see linkstack/tools/fuzz/ for the rules).

The default run uses 2,000 inputs per decoder (59 decoders, whole-capture checkers
among them: 20,000 each took two minutes of the suite's CPU, 5,000 a quarter of
that); `make test-slow` runs the full 100,000 (also `make fuzz` / `linkstack fuzz`).
"""

import pytest

from linkstack.tools.fuzz import TARGETS, fuzz_target

REDUCED = 2_000
FULL = 100_000


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_decoder_survives_fuzzing(target):
    report = fuzz_target(target, REDUCED, seed=1)
    assert report.failures == []
    assert report.inputs == REDUCED
    if target.strict:  # both outcomes must have been exercised, or the fuzzer is blind
        assert report.accepted > REDUCED // 100 and report.refused > REDUCED // 100


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_decoder_survives_full_fuzzing(target):
    report = fuzz_target(target, FULL, seed=2)
    assert report.failures == []
    assert report.inputs == FULL


def test_the_fuzzer_catches_a_decoder_that_raises_the_wrong_error():
    from dataclasses import replace

    def broken(buf: bytes) -> object:
        return buf[10]  # IndexError on short input: exactly what must never happen

    target = replace(TARGETS[0], make=lambda: broken)
    report = fuzz_target(target, 500)
    assert report.failures and "IndexError" in report.failures[0]
