"""linkstack.capture.mission_profile: the built-in profile against the code, and refusals."""

from __future__ import annotations

import pytest

from linkstack.capture.mission_profile import describe, sdls_links
from linkstack.capture.pcap import PORTS
from linkstack.ccsds import aos
from linkstack.ccsds.coding.chains import CaduCoding
from linkstack.errors import ConfigError
from linkstack.runtime.emulation import EmulationConfig
from linkstack.runtime.mission_profile import IdSet, load_profile
from linkstack.runtime.routing import RELAY_APID
from linkstack.runtime.site import AOS_FRAME_LEN, ground_node, sat_node
from linkstack.runtime.uplink_config import UplinkConfig
from payloads.messages import ANSWER_APID, QUERY_APID


def _code_says() -> dict[str, object]:
    """What linkstack.toml must say because the emulation does it (profile key -> the
    value the code configures)."""
    up = UplinkConfig()
    tc, tm, cltu = up.tc_config(), up.tm_config(), up.cltu_coding
    laser = aos.AosConfig(frame_length=AOS_FRAME_LEN)
    scids = IdSet(((EmulationConfig().scid_base, aos.MAX_SCID),))  # SCIDs fit 8 bits (AOS)
    out: dict[str, object] = {
        **{f"ports.{layer}": (port,) for layer, port in PORTS.items()},
        "nodes.ground": (ground_node("*"),),
        "nodes.space": (sat_node("*"),),
        "tc.scids": scids,
        "tc.vcids": IdSet(((up.vcid, up.vcid),)),
        "tc.max_frame_length": up.tc_max_frame_length,  # on air (SDLS's header in it)
        "tc.fecf": tc.fecf,
        "tc.segment_header": tc.segment_header,
        "tc.randomize": cltu.randomize,
        "tc.cltu_mode": cltu.mode.value,
        "tm.scids": scids,
        "tm.idle_vcid": tm.idle_vcid,
        "tm.frame_length": up.tm_frame_length,
        "tm.fecf": tm.fecf,
        "tm.ocf": "clcw" if tm.ocf else "none",
        "tm.secondary_header_len": tm.secondary_header_len,
        "aos.scids": scids,
        "aos.idle_vcid": aos.IDLE_VCID,
        "aos.frame_length": laser.frame_length,
        "aos.fecf": laser.fecf,
        "aos.ocf": "clcw" if laser.ocf else "none",
        "aos.insert_zone_len": laser.insert_zone_len,
        "aos.count_cycle": laser.count_cycle,
    }
    # the TM downlink codes as the uplink configures it; the laser links keep the defaults
    for section, coding in (("tm", up.cadu_coding), ("aos", CaduCoding())):
        out |= {
            f"{section}.rs_e": coding.rs_e or 0,
            f"{section}.rs_depth": coding.rs_depth,
            f"{section}.dual_basis": coding.dual_basis,
            f"{section}.randomize": coding.randomize,
            f"{section}.asm": coding.asm,
        }
    return out


def test_the_linkstack_profile_says_what_the_code_configures():
    profile = load_profile("linkstack")
    differ = []
    for key, want in _code_says().items():
        got = profile
        for part in key.split("."):
            got = got[part] if isinstance(got, dict) else getattr(got, part)
        if got != want:
            differ.append(f"{key}: linkstack.toml says {got!r}, the code {want!r}")
    assert not differ, "linkstack.toml differs from the code:\n" + "\n".join(differ)
    for section in (profile.tm, profile.aos):  # the idle VC is an expected one
        assert section.idle_vcid in section.vcids


BAD = [
    # (profile text, the key the error names, words of the reason)
    ("[tm]\nframe_lenght = 892", "tm.frame_lenght", "unknown key (did you mean 'frame_length'?)"),
    ("[tm]\nframe_length = 'long'", "tm.frame_length", "must be an integer, got a string"),
    ("[tm]\nframe_length = 892\nrs_e = 16", "tm.frame_length", "multiple of 5 up to 1115, got 892"),
    ("[tm]\nocf = 'yes'", "tm.ocf", "unknown OCF content 'yes'; known: 'clcw', 'other', 'none'"),
    ("[tm]\nasm = 'xyz'", "tm.asm", "must be hexadecimal"),
    ("[tm]\nscids = ['9-3']", "tm.scids", "not a range lo <= hi"),
    ("[tm]\nfecf = 1", "tm.fecf", "must be true or false, got a number (1)"),
    ("[spp]\ntime_code = 'gps'", "spp.time_code", "unknown time code 'gps'"),
    ("[nodes]\nground = ['ground:*', 3]", "nodes.ground", "got an array with a number (3)"),
    ("[cop1]\nack_latency_s = -1", "cop1.ack_latency_s", "must be >= 0"),
    ("[cop1]\nack_latency_s = nan", "cop1.ack_latency_s", "must be a finite number"),
    ("[ports]\ncltu = 0", "ports.cltu", "must be in 1..65535, got 0"),
    ("[ports]\ncltx = 1", "ports.cltx", "unknown layer (did you mean 'cltu'?)"),
    ("[ports]\ncltu = 47002", "ports", "cltu and tm_cadu share port 47002"),
    ('[ports]\ncltu = [47001, "47100-47103", "47102"]', "ports", "share port 47102"),
    ('[ports]\ntm_cadu = ["47400-47447", 47001]', "ports", "cltu and tm_cadu share port 47001"),
    ('[ports]\ncltu = ["0-3"]', "ports.cltu", "must list ports in 1..65535"),
    ("[ports]\ncltu = []", "ports.cltu", "must list ports in 1..65535"),
    ('[ports]\ncltu = ["x"]', "ports.cltu", "is not a number or 'lo-hi'"),
    ("tm = 3", "tm", "must be a table, got a number (3)"),
    ("nmae = 'x'", "nmae", "unknown key (did you mean 'name'?)"),
    ("extends = 3", "extends", "must be a name or a path, got a number (3)"),
    ("[tm\n", "(syntax)", "not valid TOML"),
    ("[[sdls.tc]]\nservice = 'aead'", "sdls.tc[0].spi", "every security association needs its SPI"),
    ("[[sdls.tc]]\nspi = 0", "sdls.tc[0].spi", "must be in 1..65534, got 0"),
    ("[[sdls.tm]]\nspi = 2\nservice = 'gcm'", "sdls.tm[0].service", "unknown service 'gcm'"),
    ("[[sdls.tm]]\nspi = 2\niv_len = 8", "sdls.tm[0].iv_len", "AES-GCM's IV is 12 octets"),
    ("[[sdls.tm]]\nspi = 2\nservice = 'auth'", "sdls.tm[0].sn_len", "needs a sequence number"),
    ("[[sdls.tm]]\nspi = 2\nservice = 'clear'\nmac_len = 8", "sdls.tm[0].mac_len", "no MAC"),
    ("[[sdls.aos]]\nspi = 3\nkey = 3", "sdls.aos[0].key", "did you mean 'key_id'?"),
    ("[[sdls.aos]]\nspi = 3\nvcid = 64", "sdls.aos[0].vcid", "must be in 0..63, got 64"),
    ("[[sdls.tc]]\nspi = 1\n[[sdls.tc]]\nspi = 1", "sdls.tc", "an SPI is given twice: [1, 1]"),
    ("[[sdls.tx]]\nspi = 1", "sdls.tx", "unknown key"),
    ("[sdls]\ntc = 1", "sdls.tc", "must be an array of tables ([[sdls.tc]])"),
    ("[mission]\ndownlink = 'uslp'", "mission.downlink", "USLP recordings are not read yet"),
    ("[mission]\nraw_unit = 'bits'", "mission.raw_unit", "unknown raw unit 'bits'"),
    ("[mission]\nlinkstack_apids = [4096]", "mission.linkstack_apids", "APIDs are 0..2047"),
    ("[mission]\nlinkstack_apids = 256", "mission.linkstack_apids", "must be a list"),
    ("[mission]\npacket_counter = 'one'", "mission.packet_counter", "unknown packet counter"),
    ("[mission]\nraw_units = 'cadu'", "mission.raw_units", "did you mean 'raw_unit'?"),
]


@pytest.mark.parametrize(("text", "key", "words"), BAD, ids=[b[1] for b in BAD])
def test_a_bad_profile_is_refused_by_its_key(text, key, words, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    err = info.value
    assert err.field == key, str(err)
    assert words in err.rule, str(err)
    assert str(err).startswith(f"profile {path}: {key}: ")


def test_extends_names_a_built_in_profile_or_a_file_beside(tmp_path):
    (tmp_path / "base.toml").write_text(
        'extends = "linkstack"\n[tm]\nframe_length = 892\nrs_e = 0\n'
    )
    (tmp_path / "mine.toml").write_text('name = "mine"\nextends = "base.toml"\n')
    profile = load_profile(tmp_path / "mine.toml")
    assert (profile.name, profile.tm.frame_length, profile.tm.rs_e) == ("mine", 892, 0)
    assert profile.tm.ocf == "clcw"  # from linkstack.toml, two levels up
    (tmp_path / "base.toml").write_text('extends = "mine.toml"\n')
    with pytest.raises(ConfigError, match=r"extends: a cycle: .*mine\.toml -> .*base\.toml"):
        load_profile(tmp_path / "mine.toml")
    with pytest.raises(ConfigError, match="no built-in profile"):
        load_profile("nope")


def test_sdls_gives_each_kind_of_link_its_associations(tmp_path):
    path = tmp_path / "sdls.toml"
    path.write_text(
        'extends = "linkstack"\n[tc]\nsegment_header = false\n[aos]\ninsert_zone_len = 4\n'
        "[[sdls.tc]]\nspi = 1\nvcid = 0\n"
        "[[sdls.tm]]\nspi = 2\nservice = 'auth'\nauth = 'HMAC_SHA256'\nsn_len = 4\n"
        "mac_len = 32\nkey_id = 9\nabm = 'none'\n"
        "[[sdls.tm]]\nspi = 5\nservice = 'clear'\n"
    )
    profile = load_profile(path)
    (tc,), (tm, clear) = profile.sdls.tc, profile.sdls.tm
    assert (tc.spi, tc.service, tc.ecs, tc.ekid, tc.vcid, tc.iv_len, tc.mac_len) == (
        1,
        "aead",
        "AES256_GCM",
        1,
        0,
        12,
        16,
    )
    assert (tm.acs, tm.akid, tm.iv_len, tm.sn_len, tm.mac_len, tm.abm, tm.vcid) == (
        "HMAC_SHA256",
        9,
        0,
        4,
        32,
        "none",
        None,
    )
    assert (clear.service, clear.iv_len, clear.mac_len) == ("clear", 0, 0)
    links = sdls_links(profile)
    assert set(links) == {"tc", "tm"}  # no [[sdls.aos]]: AOS frames are clear
    assert links["tc"].segment_header is False and links["tm"].sas == (tm, clear)
    assert not load_profile("linkstack").sdls.any and not sdls_links(load_profile("linkstack"))


def test_a_frame_length_without_a_named_code_means_frames_alone(tmp_path):
    """A profile that names no Reed-Solomon code and whose frame length fits none (a
    recording of frames alone, issue 20) is not held to the RS limit; naming one is."""
    path = tmp_path / "frames.toml"
    path.write_text("[tm]\nframe_length = 1113\n")
    profile = load_profile(path)
    assert (profile.tm.frame_length, profile.tm.rs_e) == (1113, 0)
    assert "frames alone, no Reed-Solomon" in "\n".join(describe(profile))
    path.write_text("[tm]\nframe_length = 1113\nrs_depth = 5\n")
    with pytest.raises(ConfigError, match=r"RS\(255,223\) at depth 5 needs a multiple of 5"):
        load_profile(path)


def test_the_mission_section_and_the_shipped_missions():
    own = load_profile("linkstack").mission
    assert own.linkstack_apids == {QUERY_APID, ANSWER_APID, RELAY_APID}
    assert not own.foreign
    meteor, mars = load_profile("meteor-m2-lrpt"), load_profile("mars2020")
    assert meteor.mission.foreign and mars.mission.foreign
    assert (meteor.downlink.frame_length, meteor.aos.insert_zone_len) == (892, 2)
    assert (meteor.aos.rs_depth, meteor.aos.dual_basis, meteor.aos.fecf) == (4, False, False)
    assert meteor.mission.packet_counter == "shared"
    assert (mars.downlink.frame_length, mars.aos.rs_e, mars.aos.fecf) == (1115, 0, True)
    assert mars.mission.raw_unit == "frame"
