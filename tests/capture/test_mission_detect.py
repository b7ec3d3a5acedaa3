"""``linkstack replay --detect`` on synthetic recordings (the real ones are in
test_real_downlinks.py): crashes the fuzzer found (linkstack/tools/fuzz/mission.py)."""

from __future__ import annotations

import random

import pytest

from linkstack.capture.mission_detect import ASM, detect
from linkstack.capture.mission_profile import loads_profile
from linkstack.errors import ConfigError


def test_cadus_that_only_an_interleaving_of_6_would_fit_are_refused_cleanly():
    """792-octet codeblocks: RS E=16 at depth 6 would leave 600-octet frames, but CCSDS
    allows no depth 6; detect tried it and CaduCoding raised EncodeError (fuzz find)."""
    rng = random.Random(6)
    data = b"".join(ASM + rng.randbytes(792) for _ in range(4))
    with pytest.raises(ConfigError, match="no coding"):
        detect(data)


def test_detects_toml_loads_back_as_a_profile():
    """What --detect prints is a profile loads_profile reads (the fuzz target's check)."""
    frame = bytes.fromhex("0a40") + bytes(62)  # TM, SCID 164, VC 0, no FECF
    frames = b"".join(frame[:2] + bytes([i]) + frame[3:] for i in range(5))
    profile = loads_profile(detect(frames).toml(), "--detect")
    assert profile.mission.downlink == "tm" and profile.tm.frame_length == 64
