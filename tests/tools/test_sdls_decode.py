"""``linkstack decode sdls-*``: the SDLS fields of CryptoLib's frames, read without a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
