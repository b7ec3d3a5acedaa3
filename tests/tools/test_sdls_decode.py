"""``linkstack decode sdls-*``: the SDLS fields of CryptoLib's frames, read without a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linkstack.ccsds.sdls import FrameSecurity, Keyring, SecurityAssociation
from linkstack.ccsds.uslp import UslpFrame
from linkstack.tools.cli import main

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "sdls" / "cryptolib_apply_vectors.json").read_text()
)["vectors"]
BY_ID = {v["id"]: v for v in VECTORS}


def test_a_tm_frame_shows_cryptolibs_fields(capsys):
    record = BY_ID["tm_gcm_spi6_apply_ahead"]
    assert main(["decode", "sdls-tm", record["output_hex"], "--spi-lengths", "6:12:2:0:16"]) == 0
    out = capsys.readouterr().out
    fields = record["fields"]
    assert "SPI 6\n" in out and "assumed" not in out
    for value in (fields["iv"], fields["sn"], fields["mac"], fields["ocf"]):
        assert value in out
    assert "data 1071 octets at octet 22" in out and f"fecf {fields['fecf']} (ok)" in out


def test_a_tc_frame_with_a_segment_header_and_the_default_lengths(capsys):
    record = BY_ID["tc_gcm_spi4_seg_3"]  # CryptoLib's GCM SA: the defaults, 12 and 16
    assert main(["decode", "sdls-tc", record["output_hex"]]) == 0
    out = capsys.readouterr().out
    assert "SPI 4 (lengths not given" in out and "security header at octet 6" in out
    assert record["fields"]["iv"] in out and record["fields"]["mac"] in out
    record = BY_ID["tc_cmac_spi3_noseg_2"]
    hex_frame = record["output_hex"]
    args = ["decode", "sdls-tc", hex_frame, "--no-segment-header", "--spi-lengths", "3:0:2:0:16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "security header at octet 5" in out and f"sn  {record['fields']['sn']}" in out


def test_a_frame_too_short_for_its_lengths_is_refused_and_bad_lengths_named(capsys):
    record = BY_ID["tc_clear_spi1_noseg_1"]
    args = ["decode", "sdls-tc", record["output_hex"], "--no-segment-header"]
    assert main([*args, "--spi-lengths", "1:12:0:0:64"]) == 1
    assert "refused: sdls: length" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*args, "--spi-lengths", "1:12:0"])
    assert "SPI:IV:SN:PAD:MAC" in capsys.readouterr().err


def test_a_uslp_frame_with_its_insert_zone_and_ocf(capsys):
    sa = SecurityAssociation(7, "aead", ecs="AES256_GCM", ekid=1, sn_len=2)
    fs = FrameSecurity(
        "uslp", [sa], Keyring.from_mapping({1: bytes(32)}), fecf=True, ocf=True,
        frame_length=120, insert_zone_len=3,
    )  # fmt: skip
    plain = UslpFrame(
        3000, 1, 0, bytes(fs.plain_length(7) - 7 - 2 - 3 - 1 - 4 - 2),
        vc_count_len=2, ocf=b"OCF!", insert_zone=b"IZ!",
    ).pack()  # fmt: skip
    protected = fs.apply(plain, 7)
    args = ["decode", "sdls-uslp", protected.hex(), "--insert-zone", "3"]
    assert main([*args, "--spi-lengths", "7:12:2:0:16"]) == 0
    out = capsys.readouterr().out
    assert "sdls uslp frame of 120 octets, SPI 7\n" in out
    assert "security header at octet 12" in out  # 7 + the 2-octet count + 3
    assert f"ocf {b'OCF!'.hex()}" in out and "(ok)" in out
