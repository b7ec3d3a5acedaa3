"""``linkstack decode uslp``: a frame's fields from hex or stdin, refusals named."""

from __future__ import annotations

import io

from linkstack.ccsds.spp import SpacePacket
from linkstack.ccsds.uslp_channels import UslpConfig, UslpMasterChannel
from linkstack.tools.cli import main
from tests.ccsds.test_uslp import full_frame_bits


def test_a_full_frame_shows_every_field(capsys):
    assert main(["decode", "uslp", full_frame_bits().hex(), "--insert-zone", "2"]) == 0
    out = capsys.readouterr().out
    for line in (
        "uslp frame of 30 octets",
        "scid 2800 (source), vcid 5, map 3",
        "expedited, vc frame count 4660 (2 octets)",
        "insert zone a1a2",
        "rule 000 (packets_spanning), upid 0 (space_packets)",
        "first header pointer 4",
        "data zone 10 octets",
        "report_value=42, lockout=True",
        "fecf 9cee (ok)",
    ):
        assert line in out


def test_whole_packets_are_listed_and_the_frame_can_come_on_stdin(capsys, monkeypatch):
    mc = UslpMasterChannel(UslpConfig(scid=2799, fixed=False, frame_length=200, fecf=False))
    mc.push(0, 0, SpacePacket(256, b"hello").pack())
    mc.push(0, 0, SpacePacket(257, b"abc").pack())
    frame = mc.drain()[0]
    monkeypatch.setattr("sys.stdin", io.StringIO(frame.hex(" ") + "\n"))
    assert main(["decode", "uslp", "-", "--no-fecf"]) == 0
    out = capsys.readouterr().out
    assert "scid 2799" in out and "rule 111 (no_segmentation)" in out
    assert "packet apid 256, 11 octets" in out and "packet apid 257, 9 octets" in out
    assert "fecf" not in out


def test_bad_frames_and_bad_input_are_refused_clearly(capsys):
    raw = bytearray(full_frame_bits())
    raw[-1] ^= 1
    assert main(["decode", "uslp", raw.hex(), "--insert-zone", "2"]) == 1
    assert "refused: uslp: fecf: CRC mismatch" in capsys.readouterr().out
    # the channel's insert zone not given: the data zone starts 2 octets early, and
    # its first octets read as another rule: still a frame, but not the same one
    assert main(["decode", "uslp", full_frame_bits().hex()]) == 0
    assert "insert zone" not in capsys.readouterr().out
    assert main(["decode", "uslp", "c0af00"]) == 1
    assert "refused: uslp: primary_header" in capsys.readouterr().out
    assert main(["decode", "uslp", "nothex"]) == 2
    assert "not hexadecimal" in capsys.readouterr().err
