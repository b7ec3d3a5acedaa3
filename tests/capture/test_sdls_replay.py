"""Captures of links under SDLS (355.0-B-2): what ``linkstack replay`` makes of them.

A run of the emulator with ``[sdls]`` on (TC authenticated-encrypted on linkstack's
VC 0, TM authenticated only with a sequence number, AOS authenticated-encrypted; 30 %
of the CLTUs lost, so COP-1 retransmits with fresh IVs; a query relayed over laser
links) is captured; replaying it with the scenario's associations and the run's keys
decodes exactly the Space Packets each receiver of the run got, link by link, and the
messages the ground got. Without the keys, the TM data (authentication only) is read
and the encrypted frames are counted, not read. A frame changed on the way, or sent
twice, is refused as a receiver refuses it. The demo's capture records the run's
associations in its side file (no key): it replays with ``--keys`` alone as with
``--scenario``; a side file without them reads as before. :mod:`linkstack.capture.sdls_view`
itself: frames protected by the codec with every service, opened with and without the key;
the side file's entry read back, and refused where it is wrong.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.capture.network import nodes_path
from linkstack.capture.pcap import PcapCapture, read_units
from linkstack.capture.replay_cli import replay_file, sdls_of
from linkstack.capture.replay_link import DOWNLINK, LASER, UPLINK
from linkstack.capture.samples import ScriptedBackend
from linkstack.capture.sdls_view import (
    FrameGate,
    LinkSecurity,
    ReplayCheck,
    SdlsView,
    capture_links,
    from_uplink,
    links_document,
    links_from_document,
)
from linkstack.ccsds.crc import crc16_ccitt
from linkstack.ccsds.sdls import FrameSecurity, SecurityAssociation
from linkstack.ccsds.sdls_keys import Keyring
from linkstack.ccsds.tc import TcConfig, TcFrame, TcFrameType
from linkstack.ccsds.tm import TmConfig, TmMasterChannel
from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from linkstack.runtime import scenario as scenario_file
from linkstack.runtime.emulation import Emulation
from linkstack.tools import cli, demo
from payloads.messages import Params, decode
from payloads.service import ServiceConfig

SCENARIO = """\
# the default scenario with SDLS on every link: TC and laser AES-256-GCM (the
# defaults), TM authenticated only (AES-CMAC) with an 8-octet sequence number
[sdls]
enabled = true
[sdls.downlink]
service = "auth"
sn_len = 8
"""
SDLS_LINE = (
    "sdls: TC SPI 1 aead (VC 0), SPI 4 aead (VC 0, spare: its key unknown); TM SPI 2 auth; "
    "AOS SPI 3 aead; keys 1, 2, 3"
)
KEYS = Keyring.from_mapping({1: bytes(range(32)), 2: bytes(range(1, 33)), 3: bytes(range(2, 34))})


def run_replay(path, **kw):
    lines: list[str] = []
    result = replay_file(path, say=lines.append, **kw)
    return result, lines


@pytest.fixture(scope="module")
def sdls_run(tmp_path_factory):
    """The capture, its scenario and key files, what each receiver delivered per link,
    and the messages the ground got."""
    folder = tmp_path_factory.mktemp("sdls")
    scenario_path = folder / "sdls.toml"
    scenario_path.write_text(SCENARIO, "utf-8")
    settings_ = scenario_file.load(scenario_path)
    path = folder / "run.pcap"
    delivered: dict[tuple, list[bytes]] = defaultdict(list)
    ground_messages: list[bytes] = []
    counters: dict[str, int] = {}

    async def main():
        scenario = settings_.scenario
        clock = clk.make_clock(True, scenario.epoch, 5295.0)
        config = replace(
            settings_.emulation, service=ServiceConfig(inline=True), seed=13, uplink_loss=0.3
        )
        capture = PcapCapture(path, scenario.epoch)
        emu = Emulation(clock, config, backend=ScriptedBackend(), capture=capture)
        for node in emu.satellites.values():

            def on_packet(ingress, t_s, raw, node=node):
                if ingress == "up":
                    delivered[(UPLINK, (node.node,))].append(bytes(raw))
                else:
                    delivered[(LASER, (f"sat:{ingress}", node.node))].append(bytes(raw))

            node.packet_listeners.append(on_packet)
        for name, channel in emu.mcc.channels.items():

            def on_down(t_s, raw, name=name, orig=channel.on_packet):
                delivered[(DOWNLINK, (f"sat:{name}",))].append(bytes(raw))
                return orig(t_s, raw)

            channel.on_packet = on_down
        deliver = emu.mcc.deliver

        def to_client(message, t_s, sat):
            ground_messages.append(bytes(message))
            return deliver(message, t_s, sat)

        emu.mcc.deliver = to_client
        async with emu:

            async def ask(t, target, prompt):
                await clock.sleep_until(t)
                return await emu.client.ask(prompt, Params(max_new_tokens=12), target=target)

            await asyncio.gather(
                ask(5300.0, None, "Summarise the pass: " + "bus nominal, " * 150),
                ask(5310.0, "CS-09", "Is a ship in tile 12?"),
            )
            await clock.sleep_until(5325.0)
        capture.close()
        assert emu.site.guards is not None
        counters.update(emu.site.guards.counters())
        emu.site.guards.keys.write(folder / "keys.json")

    clk.run(main)
    return path, scenario_path, folder / "keys.json", delivered, ground_messages, counters


def test_with_the_keys_the_replay_decodes_what_every_receiver_delivered(sdls_run):
    path, scenario, keys, delivered, ground_messages, counters = sdls_run
    result, lines = run_replay(path, sdls=sdls_of(scenario, keys))
    r = result.replayer
    assert result.exit_status == 0, "\n".join(lines)
    decoded: dict[tuple, list[bytes]] = defaultdict(list)
    for p in r.packets:
        decoded[(p.family, p.link)].append(p.raw)
    assert {k[0] for k in delivered} == {UPLINK, DOWNLINK, LASER}
    assert decoded == delivered  # every link, every packet, in order
    down = [m.message for m in r.messages if m.family == DOWNLINK]
    assert down == [decode(m) for m in ground_messages]
    assert not r.refused and not r.drops
    # every protected frame opened and verified: the receivers verified those delivered
    sdls = Counter()
    for stages in r.counters().values():
        sdls.update(stages.get("sdls", {}))
    frames = sum(r.units_by_layer[f] for f in ("tc_frame", "tm_frame", "aos_frame"))
    assert sdls["frames"] == sdls["opened"] == sdls["verified"] == frames
    assert counters["protected"] == frames  # every frame sent is in the capture
    assert counters["verified"] < frames  # the CLTUs the uplink lost were never verified
    assert r.checks["space_packet:equal"] == r.checks["space_packet:recorded"] == len(r.packets)
    assert (
        f"{frames} protected frames: {frames} opened ({frames} MAC or tag verified)"
        in "\n".join(lines)
    )
    # retransmitted TC frames: the same N(S), each copy under its own IV
    tc = [u for u in read_units(path) if u.layer == "tc_frame"]
    ns = Counter(u.data[4] for u in tc if not u.data[0] & 0x30)
    assert max(ns.values()) > 1
    assert len({u.data[8:20] for u in tc}) == len(tc)  # after the SPI: the IV


def test_without_the_keys_what_is_not_encrypted_is_read(sdls_run):
    path, scenario, _, delivered, _, _ = sdls_run
    result, lines = run_replay(path, sdls=sdls_of(scenario, None))
    r = result.replayer
    text = "\n".join(lines)
    assert result.exit_status == 0, text
    decoded: dict[tuple, list[bytes]] = defaultdict(list)
    for p in r.packets:
        decoded[(p.family, p.link)].append(p.raw)
    # TM is authenticated only: its packets read as they stand; TC and AOS encrypted
    assert {k for k in decoded} == {k for k in delivered if k[0] == DOWNLINK}
    assert all(decoded[k] == delivered[k] for k in decoded)
    sealed = r.units_by_layer["tc_frame"] + r.units_by_layer["aos_frame"]
    assert r.stats["sdls_sealed"] == sealed
    assert r.stats["clcws"] > 0  # the OCF is outside SDLS: COP-1's CLCW read all the same
    assert f"{sealed:,} encrypted and not read (no key: --keys KEYFILE)" in text
    assert "encrypted frames not decrypted (give the keys: --keys KEYFILE)" in text
    assert "not checked: their links' frames are encrypted" in text
    assert "encrypted, not read (no key for it)" in text  # each TC frame says so


def test_without_the_associations_the_frames_make_no_sense(sdls_run):
    """The reason the replay needs --scenario when the side file records no
    associations (this capture's writer was given none): the security header read as
    data."""
    path, *_ = sdls_run
    assert "sdls" not in json.loads(nodes_path(path).read_text())
    assert capture_links(path) is None and sdls_of(None, None, path) is None
    r = run_replay(path)[0].replayer
    assert not any(p.family == UPLINK for p in r.packets)


def _rewrite(src: Path, dst: Path, change) -> Path:
    units = list(read_units(src))
    with PcapCapture(dst, datetime(1970, 1, 1, tzinfo=UTC)) as cap:
        for u in change(units):
            cap.unit(*u)
    return dst


def test_a_changed_frame_is_refused_for_its_mac_and_a_replayed_one_for_its_counter(
    sdls_run, tmp_path
):
    path, scenario, keys, *_ = sdls_run
    view = sdls_of(scenario, keys)

    def frames_only(units):  # the frame layers alone: no carrier to pair with
        return [u for u in units if u.layer.endswith("_frame")]

    def tamper(units):
        units = frames_only(units)
        i = next(i for i, u in enumerate(units) if u.layer == "tm_frame")
        data = bytearray(units[i].data)
        data[40] ^= 0x01  # in the data field: the FECF is made to match, the MAC is not
        body = bytes(data[:-2])
        units[i] = units[i]._replace(data=body + crc16_ccitt(body).to_bytes(2, "big"))
        return units

    def replayed(units):
        units = frames_only(units)
        first = next(u for u in units if u.layer == "tc_frame")
        return [*units, first._replace(t_s=units[-1].t_s + 1)]

    result, lines = run_replay(_rewrite(path, tmp_path / "mac.pcap", tamper), sdls=view)
    assert result.exit_status == 1
    assert result.replayer.refused == Counter({"sdls: mac": 1}), "\n".join(lines)
    assert any("refused: sdls: mac:" in line for line in lines)
    result, lines = run_replay(_rewrite(path, tmp_path / "again.pcap", replayed), sdls=view)
    assert result.exit_status == 1
    assert result.replayer.refused == Counter({"sdls: replay": 1}), "\n".join(lines)
    assert any("is not ahead of the last one's" in line for line in lines)


def test_the_command_line(sdls_run, tmp_path, capsys):
    path, scenario, keys, *_ = sdls_run
    rc = cli.main(["replay", str(path), "--scenario", str(scenario), "--keys", str(keys)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert SDLS_LINE in out
    assert "result    every unit decoded, every check passed" in out
    assert cli.main(["replay", str(path), "--keys", str(keys)]) == 2
    assert "--keys: the keys need the links' security associations" in capsys.readouterr().err
    loose = tmp_path / "loose.json"
    loose.write_bytes(keys.read_bytes())
    os.chmod(loose, 0o644)
    assert cli.main(["replay", str(path), "--scenario", str(scenario), "--keys", str(loose)]) == 2
    assert "others may read it" in capsys.readouterr().err


# -- the view itself, on frames the codec protected -----------------------------------------------

SAS = {
    "clear": SecurityAssociation(10, "clear", iv_len=0, mac_len=0),
    "auth": SecurityAssociation(11, "auth", acs="CMAC_AES256", akid=2, iv_len=0, sn_len=4),
    "hmac": SecurityAssociation(
        12, "auth", acs="HMAC_SHA256", akid=1, iv_len=0, sn_len=2, pad_len=1, mac_len=32
    ),
    "enc": SecurityAssociation(13, "enc", ecs="AES256_GCM", ekid=3, mac_len=0),
    "aead": SecurityAssociation(14, "aead", ecs="AES256_GCM", ekid=1, sn_len=4),
}


def _tm_plain(length: int, seed: int) -> bytes:
    mc = TmMasterChannel(TmConfig(frame_length=length, scid=0x45, ocf=True), vcids=(0,))
    mc.ocf = seed.to_bytes(4, "big")
    mc.push(0, bytes([0x08, 0x45, 0xC0, 0, 0, 9]) + bytes([seed % 256]) * 10)
    mc.flush()
    return mc.drain()[0]


@pytest.mark.parametrize("name", sorted(SAS))
def test_each_service_opens_to_the_plain_frame(name):
    sa = SAS[name]
    sender = FrameSecurity("tm", [sa], KEYS, fecf=True, ocf=True)
    plains = [_tm_plain(1115 - sa.overhead, k) for k in range(3)]
    frames = [sender.apply(p, sa.spi) for p in plains]
    with_keys = SdlsView({"tm": LinkSecurity((sa,))}, KEYS)
    without = SdlsView({"tm": LinkSecurity((sa,))})
    check = ReplayCheck()
    for k, (plain, frame) in enumerate(zip(plains, frames, strict=True)):
        opened = with_keys.open("tm", frame)
        assert (opened.spi, opened.sa, opened.refusal) == (sa.spi, sa, "")
        assert opened.plain == plain
        assert opened.verified is (True if sa.mac_len else None)
        assert opened.ocf == k.to_bytes(4, "big")
        assert opened.counter == (None if name == "clear" else k)
        assert check.check(("tm",), opened) is None
        blind = without.open("tm", frame)
        assert blind.counter == opened.counter and blind.verified is None
        if name in ("clear", "auth", "hmac"):  # readable as it stands: the same octets
            assert blind.plain == plain and not blind.sealed
        else:
            assert blind.plain is None and blind.sealed and blind.key_missing
    if name != "clear":  # the first frame again: its counter is not ahead
        assert "is not ahead" in (check.check(("tm",), with_keys.open("tm", frames[0])) or "")


def test_what_is_refused_and_why():
    aead, hmac = SAS["aead"], SAS["hmac"]
    tc_sa = replace(SAS["aead"], vcid=0)
    sender = FrameSecurity("tc", [tc_sa], KEYS, fecf=True, segment_header=True)
    plain = TcFrame(0x45, 0, b"\x01\x02\x03" * 20, TcFrameType.AD, 7, map_id=0).pack()
    frame = sender.apply(plain, tc_sa.spi)
    view = SdlsView({"tc": LinkSecurity((tc_sa,), segment_header=True)}, KEYS)
    assert view.protects("tc", frame)
    other_vc = bytearray(frame)
    other_vc[2] = (other_vc[2] & 0x03) | (3 << 2)
    assert not view.protects("tc", bytes(other_vc))  # VC 3 is clear
    assert not view.protects("tm", frame)  # no TM association: clear
    assert view.open("tc", frame).plain == plain
    # an unknown SPI, a changed octet, another key
    spi = bytearray(frame)
    spi[7] ^= 0x40
    assert view.open("tc", bytes(spi)).refusal == "spi_unknown"
    flipped = bytearray(frame)
    flipped[30] ^= 0x01
    opened = view.open("tc", bytes(flipped))  # the FECF is wrong too: the MAC decides
    assert (opened.refusal, opened.verified, opened.plain) == ("mac", False, None)
    other = SdlsView(view.links, Keyring.from_mapping({1: bytes(32)}))
    assert other.open("tc", frame).refusal == "mac"
    assert SdlsView(view.links, Keyring()).open("tc", frame).key_missing
    # a pad length field that is not zero, under an SA that has one (the MAC made to match)
    sender = FrameSecurity("tm", [hmac], KEYS, fecf=True, ocf=True)
    frame = bytearray(sender.apply(_tm_plain(1115 - hmac.overhead, 1), hmac.spi))
    pad_at = 6 + 2 + hmac.sn_len
    frame[pad_at] = 3
    mac_at = 1115 - 6 - hmac.mac_len
    suite = KEYS.authenticator(1, "HMAC_SHA256")
    frame[mac_at : mac_at + hmac.mac_len] = suite.mac(bytes(frame[:mac_at]), hmac.mac_len)
    frame[-2:] = crc16_ccitt(bytes(frame[:-2])).to_bytes(2, "big")
    opened = SdlsView({"tm": LinkSecurity((hmac, aead))}, KEYS).open("tm", bytes(frame))
    assert opened.refusal == "pad" and opened.pad == b"\x03"
    assert opened.plain is not None  # authentication only: its data is there to read


@given(st.binary(max_size=1200))
@settings(max_examples=200, deadline=None)
def test_any_octets_are_opened_or_refused_never_raise(data):
    view = SdlsView(
        {
            "tc": LinkSecurity((replace(SAS["aead"], vcid=0),), segment_header=True),
            "tm": LinkSecurity((SAS["auth"], SAS["hmac"], SAS["clear"])),
            "aos": LinkSecurity((SAS["enc"],)),
        },
        KEYS,
    )
    gate = FrameGate(view)
    for kind in ("tc", "tm", "aos"):
        opened = gate.admit(kind, ("x",), data)
        if opened is not None:
            assert opened.refusal or opened.plain is not None or opened.sealed


def test_a_scenario_with_sdls_off_or_a_missing_key_file(tmp_path):
    plain = tmp_path / "plain.toml"
    plain.write_text("[sdls]\nenabled = false\n", "utf-8")
    assert sdls_of(str(plain), None) is None
    with pytest.raises(ConfigError, match="--keys"):
        sdls_of(str(plain), tmp_path / "keys.json")
    on = tmp_path / "on.toml"
    on.write_text(SCENARIO, "utf-8")
    with pytest.raises(ConfigError, match="cannot open it"):
        sdls_of(str(on), tmp_path / "missing.json")
    view = sdls_of(str(on), None)
    assert view is not None and view.keys is None
    assert view.links["tc"].sas[0].vcid == 0 and view.links["tm"].sas[0].vcid is None
    assert view.links["tc"].segment_header is TcConfig().segment_header is True


def test_the_demo_writes_its_keys_beside_its_capture(tmp_path, capsys):
    scenario = tmp_path / "sdls.toml"
    scenario.write_text(SCENARIO, "utf-8")
    lines: list[str] = []
    for _ in range(2):  # a second run replaces the first run's capture and keys
        rc = demo.run(
            backend=ScriptedBackend(),
            scenario=scenario,
            queries=3,
            hours=1,
            start_hours=1.3,
            max_new_tokens=8,
            out_dir=tmp_path,
            say=lines.append,
            progress_out=io.StringIO(),
        )
        assert rc == 0
    keys = tmp_path / demo.DEMO_KEYS
    assert keys.stat().st_mode & 0o777 == 0o600
    assert f"SDLS keys of this run: {keys}" in "\n".join(lines)
    pcap = tmp_path / "demo.pcap"
    result, out = run_replay(pcap, sdls=sdls_of(str(scenario), keys))
    assert result.exit_status == 0, "\n".join(out)
    r = result.replayer
    assert r.stats["messages_Answer"] >= 3 and not r.refused
    assert "result    every unit decoded, every check passed" in out
    # the capture says by itself which SAs protect it: the side file records the run's,
    # with the managed parameters that place them, and no key
    side_text = nodes_path(pcap).read_text()
    up = scenario_file.load(scenario).emulation.uplink
    assert capture_links(pcap) == from_uplink(up)
    assert json.loads(side_text)["sdls"] == json.loads(json.dumps(links_document(from_uplink(up))))
    ring = json.loads(keys.read_text())["keys"]
    assert len(ring) == 3 and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in ring.values())
    assert not re.findall(r"[0-9a-fA-F]{64}", side_text)  # no key, nor anything like one
    assert not any(k in side_text.lower() for k in ring.values())
    # replayed with --keys alone: what --scenario gives, counts, packets and messages
    alone, lines = run_replay(pcap, sdls=sdls_of(None, keys, pcap))
    assert alone.exit_status == 0, "\n".join(lines)
    a = alone.replayer
    assert a.stats == r.stats and a.counters() == r.counters() and a.checks == r.checks
    assert [p.raw for p in a.packets] == [p.raw for p in r.packets]
    assert [m.message for m in a.messages] == [m.message for m in r.messages]
    assert any(
        line.startswith("  sdls: TC SPI 1 aead (VC 0)")
        and line.endswith("; keys 1, 2, 3; from the capture's side file")
        for line in lines
    )
    assert any(line.endswith(f"; from --scenario {scenario}") for line in out)
    # the command line: no --scenario; the key file beside the capture is named, never
    # read unless given
    assert cli.main(["replay", str(pcap), "--keys", str(keys)]) == 0
    text = capsys.readouterr().out
    assert "keys 1, 2, 3; from the capture's side file" in text
    assert "result    every unit decoded, every check passed" in text
    assert cli.main(["replay", str(pcap)]) == 0
    text = capsys.readouterr().out
    blind = run_replay(pcap, sdls=sdls_of(str(scenario), None))[0].replayer
    sealed = blind.stats["sdls_sealed"]
    assert sealed > 0
    assert f"no keys (to read the encrypted frames: pass --keys {keys})" in text
    assert f"{sealed:,} encrypted and not read (no key: --keys {keys})" in text
    assert f"encrypted frames not decrypted (give the keys: --keys {keys})" in text
    # an older side file, without the entry: as before (no associations; --keys refused)
    doc = json.loads(side_text)
    del doc["sdls"]
    nodes_path(pcap).write_text(json.dumps(doc))
    assert sdls_of(None, None, pcap) is None
    with pytest.raises(ConfigError, match="--keys"):
        sdls_of(None, keys, pcap)
    # an explicit --scenario wins over the side file's (here one with SDLS off: clear)
    nodes_path(pcap).write_text(side_text)
    off = tmp_path / "off.toml"
    off.write_text("[sdls]\nenabled = false\n", "utf-8")
    assert sdls_of(str(off), None, pcap) is None


@functools.cache
def _links() -> dict[str, LinkSecurity]:
    up = scenario_file.load_default().emulation.uplink
    links = from_uplink(replace(up, sdls=replace(up.sdls, enabled=True)))
    assert links is not None
    return links


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _places(node: object) -> list[tuple[object, object]]:
    """Every (container, key or index) of a JSON document."""
    out: list[tuple[object, object]] = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        out.append((node, key))
        out.extend(_places(value))
    return out


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_any_change_to_the_side_file_entry_is_read_or_refused_never_raises(data):
    """The side file's reader fuzzed at the level of its values (byte flips would mostly
    stop at the JSON parser): a value replaced by any JSON, deleted, or one added; the
    entry is refused with a ConfigError, or read into associations that read back."""
    doc = json.loads(json.dumps(links_document(_links())))
    if data.draw(st.integers(0, 9)) == 0:
        doc = data.draw(JSON_VALUES)
    else:
        container, key = data.draw(st.sampled_from(_places(doc)))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            container[key] = data.draw(JSON_VALUES)  # type: ignore[index]
        elif action == "delete":
            del container[key]  # type: ignore[attr-defined]
        elif isinstance(container, dict):
            container[data.draw(st.text(max_size=6))] = data.draw(JSON_VALUES)
        else:
            container.append(data.draw(JSON_VALUES))  # type: ignore[attr-defined]
    try:
        links = links_from_document(doc)
    except ConfigError:
        return
    assert links_from_document(json.loads(json.dumps(links_document(links)))) == links


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(xx={}), "sdls: unknown entries ['xx']"),
        (lambda d: d["tc"].update(fecf=1), "sdls.tc.fecf: has the wrong type"),
        (lambda d: d["tm"].update(key="00" * 32), "sdls.tm: unknown entries ['key']"),
        (lambda d: d["tm"]["sas"][0].update(key="00" * 32), "sdls.tm.sas[0]: unknown entries"),
        (lambda d: d["tm"]["sas"][0].update(spi=True), "sdls.tm.sas[0].spi: must be an integer"),
        (lambda d: d["aos"]["sas"][0].update(iv_len=8), "sdls.aos.sas[0]: iv_len: AES-GCM"),
        (lambda d: d["aos"].update(sas=[]), "sdls.aos.sas: must be a list of one or more"),
        (lambda d: d["tm"].update(segment_header=True), "sdls.tm: segment_header"),
        (lambda d: d["tc"].update(unkeyed="4"), "sdls.tc.unkeyed: must be a list"),
    ],
)
def test_a_wrong_side_file_entry_is_refused_by_name(change, field, tmp_path):
    links = _links()
    doc = json.loads(json.dumps(links_document(links)))
    assert links_from_document(doc) == links  # as written, read back
    change(doc)
    with pytest.raises(ConfigError, match=re.escape(field)):
        links_from_document(doc)
    # through the command line: exit status 2, the side file named
    pcap = tmp_path / "x.pcap"
    with PcapCapture(pcap, datetime(2026, 1, 1, tzinfo=UTC)):
        pass
    side = json.loads(nodes_path(pcap).read_text())
    nodes_path(pcap).write_text(json.dumps({**side, "sdls": doc}))
    assert cli.main(["replay", str(pcap)]) == 2


def test_a_spare_sa_of_the_scenario_is_known_and_its_key_is_not(tmp_path):
    """[sdls.management] spare_spis: the SAs a key rotation starts during a run. A frame
    under one is on a known SPI (no refusal), read as without a key, even with keys: the
    rotation gave it a key these tools do not follow."""
    on = tmp_path / "on.toml"
    on.write_text(SCENARIO + "[sdls.management]\nspare_spis = [7]\n", "utf-8")
    view = sdls_of(str(on), None)
    assert view is not None
    tc = view.links["tc"]
    assert [sa.spi for sa in tc.sas] == [1, 7] and tc.unkeyed == {7}
    spare = tc.sas[1]
    sender = FrameSecurity("tc", [spare], KEYS, fecf=True, segment_header=True)
    frame = sender.apply(TcFrame(0x45, 0, b"\x07" * 40, TcFrameType.AD, 3, map_id=0).pack(), 7)
    opened = SdlsView(view.links, KEYS).open("tc", frame)
    assert (opened.spi, opened.refusal, opened.key_missing, opened.sealed) == (7, "", True, True)
    off = tmp_path / "off.toml"
    off.write_text(SCENARIO + "[sdls.management]\nenabled = false\n", "utf-8")
    view = sdls_of(str(off), None)
    assert view is not None and [sa.spi for sa in view.links["tc"].sas] == [1]
