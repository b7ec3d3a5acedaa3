"""Benchmarks behind ``linkstack bench``. Speed is measured here, never asserted in tests."""
