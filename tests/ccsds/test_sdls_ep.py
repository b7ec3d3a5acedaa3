"""SDLS extended-procedure PDUs (CCSDS 355.1-B-1, linkstack/ccsds/sdls_ep.py): the PDUs
of NASA CryptoLib's unit tests (tests/vectors/sdls/cryptolib_ep_pdus.json, see its
PROVENANCE.md), OTAR against CryptoLib's sealed keys, round trips of every PDU, and
the refusals of the reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.ccsds import sdls_ep as ep
from linkstack.ccsds.sdls_suites import MacError, make_cipher
from linkstack.errors import DecodeError, EncodeError, TruncatedError

DOC = json.loads(
    (Path(__file__).parents[1] / "vectors" / "sdls" / "cryptolib_ep_pdus.json").read_text()
)
MASTER_KEY_0 = bytes.fromhex(DOC["master_key_0"])


def pdu_of(name: str) -> bytes:
    """The PDU of CryptoLib's record ``name``: its tag, its length field and the octets
    that length reaches in the frame (counting its bits, as 355.1 does)."""
    (record,) = [r for r in DOC["records"] if r["name"] == name]
    frame, at = bytes.fromhex(record["frame"]), record["pdu_at"]
    bits = int.from_bytes(frame[at + 1 : at + 3], "big")
    return frame[at : at + 3 + (bits + 7) // 8]


def after_tag(name: str) -> bytes:
    """CryptoLib's record ``name`` from the PDU's tag to the end of the frame."""
    (record,) = [r for r in DOC["records"] if r["name"] == name]
    return bytes.fromhex(record["frame"])[record["pdu_at"] :]


def standard(tag: int, value: bytes) -> bytes:
    """A PDU with 355.1's length (bits) over ``value``."""
    return bytes((tag,)) + (8 * len(value)).to_bytes(2, "big") + value


# -- CryptoLib's PDUs --------------------------------------------------------------------------


def test_the_tags_are_cryptolibs():
    """Every procedure's tag octet as CryptoLib's PDUs carry it, and its name."""
    assert ep.StartSa.tag().octet == pdu_of("EP_SA_MGMT.SA_START_6/buffer_START_TC_h")[0] == 0x1B
    assert ep.StopSa.tag().octet == pdu_of("EP_SA_MGMT.SA_STOP_6/buffer_STOP_h")[0] == 0x1E
    assert ep.ExpireSa.tag().octet == pdu_of("EP_SA_MGMT.SA_EXPIRE_6/buffer_EXPIRE_h")[0] == 0x19
    assert ep.RekeySa.tag().octet == pdu_of("EP_SA_MGMT.SA_6_REKEY_133/buffer_REKEY_h")[0] == 0x16
    assert ep.SetArsn.tag().octet == pdu_of("EP_SA_MGMT.SA_6_SET_ARSN/buffer_SET_h")[0] == 0x1A
    assert ep.ReadArsn.tag().octet == pdu_of("EP_SA_MGMT.SA_4_READ_ARSN/buffer_READ_h")[0] == 0x10
    status = pdu_of("EP_SA_MGMT.SA_6_STATUS/buffer_STATUS_h")
    assert ep.SaStatusRequest.tag().octet == status[0] == 0x1F
    assert ep.Otar.tag().octet == pdu_of("EP_KEY_MGMT.OTAR_0_140_142/buffer_OTAR_h")[0] == 0x01
    activate = pdu_of("EP_KEY_MGMT.ACTIVATE_141_142/buffer_ACTIVATE_h")
    assert ep.KeyActivation.tag().octet == activate[0] == 0x02
    deactivate = pdu_of("EP_KEY_MGMT.DEACTIVATE_142/buffer_DEACTIVATE_h")
    assert ep.KeyDeactivation.tag().octet == deactivate[0] == 0x03
    # replies: the same procedure with the type bit set
    assert ep.SaStatusReply.tag().octet == 0x80 | ep.SaStatusRequest.tag().octet
    assert ep.ReadArsnReply.tag().octet == 0x80 | ep.ReadArsn.tag().octet


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("EP_SA_MGMT.SA_4_READ_ARSN/buffer_READ_h", ep.ReadArsn(4)),
        ("EP_SA_MGMT.SA_6_STATUS/buffer_STATUS_h", ep.SaStatusRequest(6)),
        (
            "EP_SA_MGMT.SA_6_REKEY_133/buffer_REKEY_h",  # SA 6 to key 133; 16 octets of ARSN
            ep.RekeySa(6, 133, bytes(12) + bytes.fromhex("da959fc8")),
        ),
        (
            "EP_SA_MGMT.SA_6_SET_ARSN/buffer_SET_h",
            ep.SetArsn(6, bytes.fromhex("00000000000000000000006413b5983e")),
        ),
        ("EP_KEY_MGMT.DEACTIVATE_142_NO_PUS/buffer_DEACTIVATE_h", ep.KeyDeactivation((142,))),
        (
            "EP_KEY_MGMT.TLV_KEY_DEACTIVATE_TESTS/buffer_TLV_ONE_KEY_h",
            ep.KeyDeactivation((142,)),
        ),
        (
            "EP_KEY_MGMT.TLV_KEY_DEACTIVATE_TESTS/buffer_TLV_TEN_KEYS_h",
            ep.KeyDeactivation(tuple(range(128, 138))),
        ),
        (
            "EP_KEY_MGMT.TLV_KEY_DEACTIVATE_TESTS/buffer_TLV_MAX_h",
            ep.KeyDeactivation(tuple(range(128, 144))),
        ),
    ],
)
def test_cryptolibs_pdus_with_a_length_in_bits_read_and_pack_back(name, expected):
    octets = pdu_of(name)
    pdu = ep.unpack(octets)
    assert pdu == expected
    assert pdu.pack() == octets


def test_cryptolibs_longest_start_sa_reads_its_124_gvcids():
    octets = pdu_of("EP_SA_MGMT.SA_START_6/buffer_START_MAX_h")
    pdu = ep.unpack(octets)
    assert isinstance(pdu, ep.StartSa) and pdu.spi == 6 and len(pdu.gvcids) == 124
    assert pdu.gvcids[0] == ep.Gvcid(1, 3, 1, 1)
    # 123 of spacecraft 3's channels, then the 4 octets that end CryptoLib's test frames
    assert all(g.tfvn == 1 and g.scid == 3 and g.vcid == 1 for g in pdu.gvcids[:-1])
    assert pdu.gvcids[-1].pack() == bytes.fromhex("f6f7a61a")
    assert pdu.pack() == octets


@pytest.mark.parametrize(
    ("name", "gvcid"),
    [  # the test's comments: TFVN, SCID, VCID, MAP ID
        ("EP_SA_MGMT.SA_START_6/buffer_START_TC_h", ep.Gvcid(0, 3, 0, 0)),
        ("EP_SA_MGMT.SA_START_6/buffer_START_MAP_h", ep.Gvcid(0, 3, 0, 1)),
        ("EP_SA_MGMT.SA_START_6/buffer_START_TM_h", ep.Gvcid(0, 3, 1, 2)),
        ("EP_SA_MGMT.SA_START_6/buffer_START_AOS_h", ep.Gvcid(1, 3, 1, 3)),
    ],
)
def test_cryptolibs_start_sa_counts_octets_refused_its_fields_read_with_355_1s_length(name, gvcid):
    with pytest.raises(DecodeError):  # its length is no count of bits of its value
        ep.unpack(pdu_of(name))
    octets = after_tag(name)
    value = octets[3:9]  # SPI and one GVCID
    pdu = ep.unpack(standard(octets[0], value))
    assert pdu == ep.StartSa(6, (gvcid,))
    assert pdu.pack() == standard(octets[0], value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("EP_SA_MGMT.SA_STOP_6/buffer_STOP_h", ep.StopSa(6)),
        ("EP_SA_MGMT.SA_EXPIRE_6/buffer_EXPIRE_h", ep.ExpireSa(6)),
        ("EP_KEY_MGMT.ACTIVATE_141_142/buffer_ACTIVATE_h", ep.KeyActivation((141, 142))),
        ("EP_KEY_MGMT.DEACTIVATE_142/buffer_DEACTIVATE_h", ep.KeyDeactivation((142,))),
    ],
)
def test_cryptolibs_pdus_with_extra_octets_or_octet_lengths_are_refused_by_name(name, expected):
    with pytest.raises(DecodeError) as info:
        ep.unpack(pdu_of(name))
    assert info.value.where == "sdls-ep" and info.value.field in (expected.NAME, "length")
    octets = after_tag(name)
    value = expected.value()
    assert octets[3 : 3 + len(value)] == value  # the fields, where 355.1 puts them
    assert ep.unpack(standard(octets[0], value)) == expected


@pytest.mark.parametrize(
    "name",
    [
        "EP_KEY_MGMT.TLV_KEY_DEACTIVATE_TESTS/buffer_TLV_OVERRUN_h",
        "EP_KEY_MGMT.TLV_KEY_DEACTIVATE_TESTS/buffer_TLV_MAX_BAD_LEN_h",
        "EP_KEY_MGMT.TLV_KEY_DEACTIVATE_TESTS/buffer_TLV_ONE_BIT_LEN_h",
        "EP_KEY_MGMT.TLV_KEY_DEACTIVATE_TESTS/buffer_TLV_ZERO_h",
    ],
)
def test_the_bad_lengths_cryptolib_refuses_are_refused(name):
    (record,) = [r for r in DOC["records"] if r["name"] == name]
    with pytest.raises(DecodeError):
        ep.unpack(pdu_of(name))
    # CryptoLib takes a key list of no key as doing nothing; linkstack refuses it
    assert (record["cryptolib_verdict"] == "CRYPTO_LIB_SUCCESS") == name.endswith("ZERO_h")


def test_cryptolibs_otar_opens_under_its_master_key_and_seals_back_to_its_octets():
    octets = pdu_of("EP_KEY_MGMT.OTAR_0_140_142/buffer_OTAR_h")
    with pytest.raises(DecodeError, match="34-octet key blocks"):
        ep.unpack(octets)  # 4 octets past the tag within its length (PROVENANCE.md)
    value = octets[3 : 3 + 2 + 12 + 3 * 34 + 16]  # master key id, IV, 3 key blocks, tag
    otar = ep.unpack(standard(octets[0], value))
    assert isinstance(otar, ep.Otar)
    assert otar.master_key_id == 0 and otar.key_count == 3
    assert otar.iv == bytes.fromhex("344892bbc54f5395297d4c37")
    master = make_cipher("AES256_GCM", MASTER_KEY_0)
    keys = otar.open(master)  # the GCM tag verifies: the layout is CryptoLib's
    assert list(keys) == [141, 140, 142]  # the test's name: keys 140..142
    again = ep.Otar.seal(0, otar.iv, keys, master)
    assert again == otar and again.pack() == standard(octets[0], value)
    with pytest.raises(MacError):
        otar.open(make_cipher("AES256_GCM", bytes(32)))  # another master key
    tampered = ep.Otar(0, otar.iv, bytes([otar.sealed[0] ^ 1]) + otar.sealed[1:], otar.mac)
    with pytest.raises(MacError):
        tampered.open(master)


# -- round trips ---------------------------------------------------------------------------------

spis = st.integers(0, 0xFFFF)
kids = st.integers(0, 0xFFFF)
arsns = st.binary(max_size=ep.MAX_ARSN_LEN)
gvcids = st.builds(
    ep.Gvcid, st.integers(0, 15), st.integers(0, 0xFFFF), st.integers(0, 63), st.integers(0, 63)
)
pdus = st.one_of(
    st.builds(ep.StartSa, spis, st.lists(gvcids, min_size=1, max_size=8).map(tuple)),
    st.builds(ep.StopSa, spis),
    st.builds(ep.ExpireSa, spis),
    st.builds(ep.RekeySa, spis, kids, arsns),
    st.builds(ep.SetArsn, spis, arsns),
    st.builds(ep.ReadArsn, spis),
    st.builds(ep.ReadArsnReply, spis, arsns),
    st.builds(ep.SaStatusRequest, spis),
    st.builds(ep.SaStatusReply, spis, st.integers(0, 255)),
    st.builds(ep.KeyActivation, st.lists(kids, min_size=1, max_size=8).map(tuple)),
    st.builds(ep.KeyDeactivation, st.lists(kids, min_size=1, max_size=8).map(tuple)),
    st.builds(ep.KeyDestruction, st.lists(kids, min_size=1, max_size=8).map(tuple)),
    st.builds(
        ep.Otar,
        kids,
        st.binary(min_size=12, max_size=12),
        st.integers(1, 4).flatmap(lambda n: st.binary(min_size=34 * n, max_size=34 * n)),
        st.binary(min_size=16, max_size=16),
    ),
    st.builds(ep.ProcedureResult, st.integers(0, 255), st.sampled_from(ep.EpStatus), kids),
)


@given(pdus)
def test_every_pdu_packs_and_reads_back(pdu):
    octets = pdu.pack()
    assert ep.unpack(octets) == pdu
    tag, length = ep.read_header(octets)
    assert tag.octet == octets[0] and length == len(octets) - 3
    assert (octets[1] << 8 | octets[2]) == 8 * length  # the length counts bits


@given(pdus, st.data())
def test_a_pdu_cut_short_or_run_long_is_refused(pdu, data):
    octets = pdu.pack()
    cut = data.draw(st.integers(0, len(octets) - 1))
    with pytest.raises(TruncatedError):
        ep.unpack(octets[:cut])
    with pytest.raises(DecodeError, match="follow"):
        ep.unpack(octets + data.draw(st.binary(min_size=1, max_size=4)))


def test_the_status_reply_says_the_state_its_last_transition_left():
    tag = {cls: cls.tag().octet for cls in (ep.RekeySa, ep.StartSa, ep.StopSa, ep.ExpireSa)}
    assert ep.SaStatusReply(1, tag[ep.RekeySa]).state == "keyed"
    assert ep.SaStatusReply(1, tag[ep.StartSa]).state == "operational"
    assert ep.SaStatusReply(1, tag[ep.StopSa]).state == "keyed"
    assert ep.SaStatusReply(1, tag[ep.ExpireSa]).state == "unkeyed"
    assert ep.SaStatusReply(1, ep.SetArsn.tag().octet).state is None
    assert ep.SaStatusReply(1, 0x80 | tag[ep.StartSa]).state is None  # a reply's tag


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("octets", "field", "words"),
    [
        (b"\x1e\x00", "header", "3 octets"),
        (b"\x1e\x00\x0f\x00\x06", "length", "not a whole number of octets"),
        (b"\x1e\x00\x10\x00", "value", "2 octets, 1 follow"),
        (b"\x1e\x00\x10\x00\x06\x00", "value", "2 octets, 3 follow"),
        (b"\x15\x00\x18\x00\x06\x09", "tag", "procedure 0101"),  # Set ARSNW: not read here
        (b"\x5e\x00\x10\x00\x06", "tag", "user-defined command"),
        (b"\x1e\x00\x18\x00\x06\x00", "stop_sa", "an SPI (2 octets)"),
        (b"\x1b\x00\x28\x00\x06\x00\x00\x30", "start_sa", "4-octet GVCIDs"),
        (b"\x1b\x00\x10\x00\x06", "start_sa", "4-octet GVCIDs"),
        (b"\x16\x00\x18\x00\x06\x00", "rekey_sa", "a key id"),
        (b"\x16\x00\xa8" + bytes(21), "rekey_sa", "0..16 octets of ARSN"),
        (b"\x02\x00\x18\x00\x01\x02", "key_activation", "2 octets each"),
        (b"\x01\x00\x10\x00\x00", "otar", "34-octet key blocks"),
        (b"\xff\x00\x20\x16\x63\x00\x04", "procedure_result", "unknown status 99"),
        (b"\x9f\x00\x10\x00\x06", "sa_status_reply", "an SPI and one octet"),
    ],
)
def test_a_bad_pdu_is_refused_naming_the_field(octets, field, words):
    with pytest.raises(DecodeError) as info:
        ep.unpack(octets)
    assert info.value.field == field and words in info.value.rule


@given(st.binary(max_size=200))
def test_random_octets_are_read_or_refused_with_a_decode_error_only(octets):
    try:
        pdu = ep.unpack(octets)
    except DecodeError:
        return
    assert pdu.pack() == octets


@pytest.mark.parametrize(
    "make",
    [
        lambda: ep.StopSa(0x10000),
        lambda: ep.RekeySa(1, 70000, b""),
        lambda: ep.RekeySa(1, 2, bytes(17)),
        lambda: ep.StartSa(1, ()),
        lambda: ep.Gvcid(16, 0, 0, 0),
        lambda: ep.Gvcid(0, 0, 64, 0),
        lambda: ep.KeyActivation(()),
        lambda: ep.Otar(0, bytes(11), bytes(34), bytes(16)),
        lambda: ep.Otar(0, bytes(12), bytes(33), bytes(16)),
        lambda: ep.Otar.seal(0, bytes(12), {}, make_cipher("AES256_GCM", bytes(32))),
        lambda: ep.Otar.seal(0, bytes(12), {5: bytes(31)}, make_cipher("AES256_GCM", bytes(32))),
        lambda: ep.ProcedureResult(256, ep.EpStatus.DONE),
    ],
)
def test_a_value_that_does_not_fit_is_refused_when_the_pdu_is_made(make):
    with pytest.raises(EncodeError):
        make()
