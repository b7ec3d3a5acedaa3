"""Fixtures shared by the runtime tests."""

import pytest

from payloads.backends import GenerationParams, make_backend


@pytest.fixture(scope="module")
def tiny():
    """The tiny backend, loaded and warmed up once a module (its first generation
    compiles), for the tests that run queries through it."""
    b = make_backend("tiny")
    b.load()
    b.generate("warm up", GenerationParams(2))
    return b
