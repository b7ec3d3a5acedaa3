"""``linkstack decode --profile`` (issue 20): one unit decoded with the frame parameters
of a mission profile, checked on a CADU and a frame cut from the real Meteor-M2 and
Mars 2020 recordings (../shared/realdata, skipped when absent) against the project's
classes configured by hand."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from linkstack.ccsds.aos import AosConfig, AosFrame
from linkstack.ccsds.coding.chains import CaduCoding, CaduReceiver
from linkstack.ccsds.tm import TmConfig, TmFrame, TmMasterChannel
from linkstack.errors import ConfigError, DecodeError
from linkstack.runtime.mission_profile import load_profile
from linkstack.tools import cli
from linkstack.tools.profile_decode import HandFlags, decode_cadu, decode_frame, parameters

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
EXE = shutil.which("linkstack") or str(Path(sys.executable).parent / "linkstack")


def _cut(name: str, start: int, length: int) -> bytes:
    path = REALDATA / name
    if not path.is_file():
        pytest.skip(f"the real recording {path} is absent (CI has ../shared/realdata)")
    with path.open("rb") as f:
        f.seek(start)
        return f.read(length)


def _meteor_cadu(index: int = 0) -> bytes:
    return _cut("meteor_m2.cadu", 1024 * index, 1024)


def test_a_meteor_cadu_decodes_as_by_hand():
    """The profile's RS(255,223) x 4 in the conventional basis, no derandomization, then
    an AOS frame of 892 octets with a 2-octet insert zone and no FECF."""
    cadu = _meteor_cadu(3)
    profile = load_profile("meteor-m2-lrpt")
    frame, how = decode_cadu(cadu, profile)
    assert how == (
        "cadu: ASM 1acffc1d, RS(255,223) x 4, conventional basis, 0 symbols corrected, "
        "not randomized"
    )
    coding = CaduCoding(rs_e=16, rs_depth=4, dual_basis=False, randomize=False)
    by_hand = CaduReceiver(892, coding).receive_cadu(cadu)
    assert by_hand is not None and frame == by_hand.frame
    got = decode_frame("cadu", frame, parameters("cadu", profile, HandFlags()))
    config = AosConfig(frame_length=892, insert_zone_len=2, fecf=False, count_cycle=False)
    assert got == AosFrame.unpack(frame, config)
    assert isinstance(got, AosFrame) and (got.scid, got.vcid, len(got.insert_zone)) == (0, 5, 2)


def test_a_damaged_meteor_cadu_is_corrected_or_refused():
    cadu = bytearray(_meteor_cadu(5))
    profile = load_profile("meteor-m2-lrpt")
    for i in range(6):  # 6 symbols of codeword 0 (depth 4: every 4th octet of the block)
        cadu[4 + 4 * i] ^= 0x5A
    frame, how = decode_cadu(bytes(cadu), profile)
    assert "6 symbols corrected" in how and frame == decode_cadu(_meteor_cadu(5), profile)[0]
    for i in range(6, 17):  # 17 in all: past E = 16
        cadu[4 + 4 * i] ^= 0x5A
    with pytest.raises(DecodeError, match="Reed-Solomon uncorrectable"):
        decode_cadu(bytes(cadu), profile)
    with pytest.raises(DecodeError, match=r"1023 octets; profile meteor-m2-lrpt .*CADU is 1024"):
        decode_cadu(bytes(cadu[:-1]), profile)


def test_a_mars2020_frame_decodes_as_by_hand_and_its_fecf_checks():
    frame = _cut("mars2020_frames.u8", 1115 * 7, 1115)
    params = parameters("aos", load_profile("mars2020"), HandFlags())
    assert (params.fecf, params.ocf, params.insert_zone_len) == (True, False, 0)
    got = decode_frame("aos", frame, params)
    assert got == AosFrame.unpack(frame, AosConfig(frame_length=1115, count_cycle=False))
    assert isinstance(got, AosFrame) and (got.scid, got.vcid) == (168, 0)
    damaged = frame[:100] + bytes([frame[100] ^ 1]) + frame[101:]
    with pytest.raises(DecodeError, match=r"FECF|CRC|fecf"):
        decode_frame("aos", damaged, params)
    with pytest.raises(DecodeError, match=r"1114 octets; profile mars2020.*frame_length is 1115"):
        decode_frame("aos", frame[:-1], params)


def test_linkstacks_tm_frame_under_its_own_profile():
    mc = TmMasterChannel(TmConfig(ocf=True))
    frame = mc.idle_frame()
    got = decode_frame("tm", frame, parameters("tm", load_profile("linkstack"), HandFlags()))
    assert got == TmFrame.unpack(frame, True)


@pytest.mark.parametrize(
    ("layer", "name", "hand", "message"),
    [
        ("aos", "mars2020", HandFlags(fecf=False), r"--no-fecf: .*mars2020.*\[aos\] fecf = true"),
        ("cadu", "meteor-m2-lrpt", HandFlags(ocf=True), r"--ocf: .*\[aos\] ocf = \"none\""),
        ("aos", "meteor-m2-lrpt", HandFlags(insert_zone_len=0), r"--insert-zone 0: .*= 2"),
        ("tc", "linkstack", HandFlags(segment_header=False), r"\[tc\] segment_header = true"),
        ("uslp", "linkstack", HandFlags(), "not USLP: give --insert-zone and --no-fecf"),
        ("spp", "linkstack", HandFlags(), "applies to tm, aos, tc, cadu, not spp"),
    ],
)
def test_a_flag_that_contradicts_the_profile_is_refused_naming_both(layer, name, hand, message):
    with pytest.raises(ConfigError, match=message):
        parameters(layer, load_profile(name), hand)


def test_flags_that_agree_with_the_profile_are_accepted():
    hand = HandFlags(fecf=False, insert_zone_len=2)
    assert parameters("aos", load_profile("meteor-m2-lrpt"), hand).insert_zone_len == 2


def test_the_command_line(capsys):
    """One real process for the installed command; the refusals through main()."""
    cadu = _meteor_cadu(0).hex()
    proc = subprocess.run(
        [EXE, "decode", "cadu", cadu, "--profile", "meteor-m2-lrpt"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("cadu: ASM 1acffc1d, RS(255,223) x 4, conventional basis")
    assert "AosFrame(scid=0, vcid=5" in proc.stdout
    assert cli.main(["decode", "cadu", cadu]) == 2
    assert "cadu needs --profile" in capsys.readouterr().err
    assert cli.main(["decode", "cadu", cadu, "--profile", "meteor-m2-lrpt", "--ocf"]) == 2
    err = capsys.readouterr().err
    assert "--ocf: contradicts profile meteor-m2-lrpt (built-in)" in err
    assert cli.main(["decode", "aos", cadu, "--profile", "mars2020"]) == 1
    assert "refused: aos: length: the frame is 1024 octets" in capsys.readouterr().out
