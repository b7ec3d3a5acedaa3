"""What the fuzzer of the mission replay chain found (linkstack/tools/fuzz/mission.py),
on synthetic input (the real recordings are in test_real_downlinks.py)."""

from __future__ import annotations

import random
import re

import pytest

from linkstack.capture.mission_detect import ASM, detect
from linkstack.errors import ConfigError
from linkstack.runtime.mission_profile import loads_profile


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


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("[aos]\nframe_length = 8\nrs_e = 0\n", "8 octets cannot hold the AOS frame's fields"),
        ("[aos]\nframe_length = 20\nrs_e = 0\ninsert_zone_len = 12\n", "must be in 23..2048"),
        (
            "[tm]\nframe_length = 12\nrs_e = 0\nsecondary_header_len = 10\n",
            "12 octets cannot hold the TM frame's fields",
        ),
    ],
)
def test_a_frame_too_short_for_its_fields_is_refused_by_the_loader(text, rule):
    """The loader took any length of 8..2048 and MissionReplay's receivers then raised
    EncodeError (fuzz find): the loader refuses it, naming the key."""
    with pytest.raises(ConfigError, match=rf"frame_length: .*{re.escape(rule)}"):
        loads_profile(text, "fuzz")
