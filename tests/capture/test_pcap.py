"""The pcap writer (linkstack/capture/pcap.py) and the reader on pcap files, cross-checked
with scapy; pcapng and reading past damage are in test_reader.py."""

from __future__ import annotations

import io
import json
import math
import random
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, defragment
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from linkstack.capture.pcap import (
    HOSTS_PER_NETWORK,
    LAYERS,
    MAX_UNIT_LEN,
    PORTS,
    NodeRegistry,
    PcapCapture,
    PcapReader,
    ipv4_checksum,
    read_units,
)
from linkstack.errors import ConfigError, DecodeError, EncodeError, TruncatedError

EPOCH = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
NODES = ["ground:Svalbard", "sat:CS-01", "sat:CS-02", "relay"]


def _units(rng: random.Random, count: int) -> list[tuple[str, float, str, str, bytes]]:
    layers = sorted(LAYERS)
    out = []
    for i in range(count):
        size = rng.choice([1, 7, 64, 1115, 1279, 1472, 1473, 3000, 10_006])
        src, dst = rng.sample(NODES, 2)
        t_s = round(i * 0.25 + rng.random(), 6)
        out.append((rng.choice(layers), t_s, src, dst, rng.randbytes(size)))
    return out


def _write(path, units, **kw) -> PcapCapture:
    with PcapCapture(path, EPOCH, **kw) as cap:
        for u in units:
            cap.unit(*u)
    return cap


def test_port_table_is_the_documented_one():
    assert PORTS == {
        "cltu": 47001,
        "tm_cadu": 47002,
        "aos_cadu": 47003,
        "tc_frame": 47011,
        "tm_frame": 47012,
        "aos_frame": 47013,
        "uslp_frame": 47014,
        "space_packet": 47020,
    }
    from linkstack.capture import pcap as capture

    for layer, port in PORTS.items():  # the module docstring carries the same table
        assert f"{layer:<14} {port}" in capture.__doc__


def test_a_uslp_frame_makes_the_side_file_say_uslp(tmp_path):
    path = tmp_path / "u.pcap"
    _write(path, [("uslp_frame", 1.0, "sat:CS-01", "ground:Sanya", b"\xc0" * 20)], layers={"cltu"})
    doc = json.loads((tmp_path / "u.pcap.nodes.json").read_text())
    assert doc["frames"] == "uslp"  # learnt from the unit, though the filter left it out
    assert set(doc["ports"]) == {"cltu", "tm_cadu", "aos_cadu", "uslp_frame", "space_packet"}
    told = _write(tmp_path / "t.pcap", [], frames="uslp")
    assert told.nodes_document()["frames"] == "uslp"
    with pytest.raises(ConfigError, match="frames"):
        PcapCapture(io.BytesIO(), EPOCH, frames="ax25")


def test_units_read_back_with_names_and_times(tmp_path):
    units = _units(random.Random(1), 60)
    path = tmp_path / "link.pcap"
    cap = _write(path, units)
    assert cap.stats["units"] == 60 and cap.stats["fragmented_units"] > 0
    got = list(read_units(path))
    assert [(u.layer, u.src, u.dst, u.data) for u in got] == [
        (layer, src, dst, data) for layer, _, src, dst, data in units
    ]
    for u, (_, t_s, *_rest) in zip(got, units, strict=True):
        assert round(u.t_s * 1e6) == round(t_s * 1e6)  # right to the microsecond


def test_nanosecond_timestamps(tmp_path):
    path = tmp_path / "ns.pcap"
    t_s = 1234.567891234
    _write(path, [("tm_frame", t_s, "sat:A", "ground:B", b"x" * 10)], nanoseconds=True)
    assert path.read_bytes()[:4] == struct.pack("<I", 0xA1B23C4D)
    (u,) = read_units(path)
    assert round(u.t_s * 1e9) == round(t_s * 1e9)
    sec, frac = struct.unpack_from("<II", path.read_bytes(), 24)
    epoch_s = int(EPOCH.timestamp())
    assert (sec - epoch_s) * 10**9 + frac == 1234_567891234


def test_timestamps_are_epoch_plus_t_s_to_the_microsecond(tmp_path):
    path = tmp_path / "t.pcap"
    times = [0.0, 0.000001, 0.4999995, 86399.999999, 3.25e6]
    _write(path, [("cltu", t, "a", "b", b"\x01") for t in times])
    frames = rdpcap(str(path))
    for pkt, t_s in zip(frames, times, strict=True):
        want = EPOCH + timedelta(microseconds=round(t_s * 1e6))
        got = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            seconds=int(pkt.time), microseconds=round((pkt.time - int(pkt.time)) * 1e6)
        )
        assert got == want


def test_naive_epoch_is_utc(tmp_path):
    a, b = io.BytesIO(), io.BytesIO()
    for buf, epoch in ((a, EPOCH), (b, EPOCH.replace(tzinfo=None))):
        with PcapCapture(buf, epoch) as cap:
            cap.unit("tm_frame", 1.5, "x", "y", b"abc")
    assert a.getvalue() == b.getvalue()


def test_frames_parse_with_scapy(tmp_path):
    path = tmp_path / "s.pcap"
    units = [
        ("tm_cadu", 0.5, "sat:CS-01", "ground:Svalbard", bytes(range(256)) * 5),
        ("space_packet", 1.0, "ground:Svalbard", "sat:CS-01", b"\x07" * 100),
        ("tc_frame", 2.0, "ground:Svalbard", "sat:CS-02", b"\x22" * 1024),
    ]
    cap = _write(path, units)
    frames = rdpcap(str(path))
    assert len(frames) == cap.stats["frames"]
    for pkt in frames:
        eth, ip = pkt[Ether], pkt[IP]
        assert eth.type == 0x0800
        assert eth.src == "02:00:" + ":".join(f"{int(o):02x}" for o in ip.src.split("."))
        assert eth.dst == "02:00:" + ":".join(f"{int(o):02x}" for o in ip.dst.split("."))
        assert ip.version == 4 and ip.ihl == 5 and ip.ttl == 64 and ip.proto == 17
        assert ip.len == len(bytes(ip))
        raw = bytes(ip)[:20]
        assert ipv4_checksum(raw) == 0
        rebuilt = ip.copy()
        del rebuilt.chksum
        assert IP(bytes(rebuilt)).chksum == ip.chksum  # scapy computes the same checksum
    # the small unit is one frame; the others are fragments that scapy reassembles
    whole = defragment(frames)
    udps = [p for p in whole if UDP in p]
    assert len(udps) == 3
    for pkt, (layer, _, src, dst, data) in zip(udps, units, strict=True):
        assert pkt[UDP].sport == pkt[UDP].dport == PORTS[layer]
        assert pkt[UDP].len == 8 + len(data) and pkt[UDP].chksum == 0
        assert bytes(pkt[UDP].payload) == data
        assert pkt[IP].src == cap.registry.ip(src) and pkt[IP].dst == cap.registry.ip(dst)


def test_fragments_respect_the_mtu(tmp_path):
    path = tmp_path / "f.pcap"
    data = random.Random(3).randbytes(10_000)
    cap = _write(path, [("space_packet", 0.0, "a", "b", data)], mtu=576)
    frames = rdpcap(str(path))
    assert len(frames) == cap.stats["frames"] == -(-(10_008) // 552)
    offsets = []
    for pkt in frames:
        assert len(bytes(pkt[IP])) <= 576
        offsets.append(pkt[IP].frag * 8)
        assert pkt[IP].id == frames[0][IP].id
    assert offsets == list(range(0, 10_008, 552))
    assert [bool(p[IP].flags.MF) for p in frames] == [True] * (len(frames) - 1) + [False]
    (u,) = read_units(path)
    assert u.data == data


def test_largest_datagram_and_beyond(caplog):
    buf = io.BytesIO()
    with PcapCapture(buf, EPOCH) as cap:
        cap.unit("space_packet", 0.0, "a", "b", b"\x01" * MAX_UNIT_LEN)
        cap.unit("space_packet", 1.0, "a", "b", b"\x02" * (MAX_UNIT_LEN + 1))
    assert cap.stats["units"] == 1 and cap.stats["dropped_too_large"] == 1
    assert "not captured" in caplog.text
    (u,) = read_units(buf.getvalue())
    assert u.data == b"\x01" * MAX_UNIT_LEN


def test_layer_filter_and_unknown_layers():
    buf = io.BytesIO()
    with PcapCapture(buf, EPOCH, layers={"cltu", "space_packet"}) as cap:
        cap.unit("cltu", 0.0, "a", "b", b"c")
        cap.unit("tm_frame", 0.0, "a", "b", b"t")
        cap.unit("space_packet", 0.0, "a", "b", b"s")
        with pytest.raises(ConfigError, match="unknown layer 'tm'"):
            cap.unit("tm", 0.0, "a", "b", b"?")
    assert cap.stats["filtered"] == 1
    assert [u.layer for u in read_units(buf.getvalue())] == ["cltu", "space_packet"]
    with pytest.raises(ConfigError, match="unknown layer"):
        PcapCapture(io.BytesIO(), EPOCH, layers={"cltu", "frames"})


def test_bad_times_and_parameters():
    cap = PcapCapture(io.BytesIO(), EPOCH)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(EncodeError, match="t_s"):
            cap.unit("cltu", bad, "a", "b", b"x")
    with pytest.raises(EncodeError, match="1970"):
        cap.unit("cltu", -EPOCH.timestamp() - 1, "a", "b", b"x")
    with pytest.raises(ConfigError, match="node"):
        cap.unit("cltu", 0.0, None, "b", b"x")  # type: ignore[arg-type]
    cap.unit("cltu", 0.0, "", "b", b"x")  # an unnamed end is still an address
    assert cap.registry.ip("").startswith("10.3.")
    cap.close()
    cap.close()  # twice is fine
    with pytest.raises(ConfigError, match="closed"):
        cap.unit("cltu", 0.0, "a", "b", b"x")
    with pytest.raises(ConfigError, match="mtu"):
        PcapCapture(io.BytesIO(), EPOCH, mtu=40)
    with pytest.raises(ConfigError, match="epoch"):
        PcapCapture(io.BytesIO(), "2025-01-01")  # type: ignore[arg-type]


# -- addresses ----------------------------------------------------------------------------


def test_addresses_are_stable_and_classed():
    a, b = NodeRegistry(), NodeRegistry()
    for name in ["sat:CS-07", "ground:Kiruna", "sat:CS-01", "client"]:
        a.addresses(name)
    for name in ["client", "sat:CS-01", "ground:Kiruna", "sat:CS-07"]:
        b.addresses(name)
    for name in ["sat:CS-07", "ground:Kiruna", "sat:CS-01", "client"]:
        assert a.ip(name) == b.ip(name)  # from the name, not from the order
        assert a.mac(name) == "02:00:" + ":".join(f"{int(o):02x}" for o in a.ip(name).split("."))
        assert a.name_of(a.ip(name)) == name
    assert a.ip("ground:Kiruna").startswith("10.1.")
    assert a.ip("sat:CS-01").startswith("10.2.")
    assert a.ip("client").startswith("10.3.")
    assert a.name_of("10.9.9.9") is None and a.name_of("not an address") is None


def _host_octets(host: int) -> bytes:
    return bytes((host // 254, host % 254 + 1))


def test_thousands_of_nodes_never_collide():
    reg = NodeRegistry()
    names = [f"sat:S{i:04d}" for i in range(2800)] + [f"ground:G{i}" for i in range(300)]
    ips = {reg.ip(n) for n in names}
    assert len(ips) == len(names) == len(reg)
    for ip in ips:
        last = int(ip.rsplit(".", 1)[1])
        assert 1 <= last <= 254
    # the names that collided moved to the next free host; all others sit where they hash
    moved = sum(reg.addresses(n)[0][2:] != _host_octets(reg.preferred_host(n)) for n in names)
    assert moved < len(names) * 0.05


def test_collisions_go_to_the_next_free_host():
    reg = NodeRegistry()
    first = reg.addresses("x")[0]
    host = NodeRegistry.preferred_host("x")
    # find another name with the same preferred host, by brute force over a small space
    other = next(f"y{i}" for i in range(10**6) if NodeRegistry.preferred_host(f"y{i}") == host)
    second = reg.addresses(other)[0]
    nxt = (host + 1) % HOSTS_PER_NETWORK
    assert first != second and second == bytes((10, 3, nxt // 254, nxt % 254 + 1))


def test_side_file_maps_addresses_back(tmp_path):
    path = tmp_path / "n.pcap"
    cap = _write(path, [("tm_frame", 1.0, "sat:CS-01", "ground:Sanya", b"f" * 20)])
    doc = json.loads((tmp_path / "n.pcap.nodes.json").read_text())
    assert doc["format"] == "linkstack-capture-nodes" and "frames" not in doc
    # the ports of the default frames protocol's layers: USLP's is not among them
    assert doc["ports"] == {k: v for k, v in PORTS.items() if k != "uslp_frame"}
    assert datetime.fromisoformat(doc["epoch"]) == EPOCH
    assert {n["name"]: n["ip"] for n in doc["nodes"]} == {
        "sat:CS-01": cap.registry.ip("sat:CS-01"),
        "ground:Sanya": cap.registry.ip("ground:Sanya"),
    }
    (u,) = read_units(path)
    assert (u.src, u.dst, u.t_s) == ("sat:CS-01", "ground:Sanya", 1.0)
    # without the side file: addresses, and time from 1970 unless an epoch is given
    (tmp_path / "n.pcap.nodes.json").unlink()
    (u,) = read_units(path)
    assert u.src == cap.registry.ip("sat:CS-01") and u.t_s == EPOCH.timestamp() + 1.0
    (u,) = read_units(path, epoch=EPOCH)
    assert u.t_s == 1.0
    (tmp_path / "n.pcap.nodes.json").write_text("{not json")
    with pytest.raises(DecodeError, match="nodes"):
        list(read_units(path))


# -- the reader on other pcaps ---------------------------------------------------------------


def _pcap(linktype: int, frames: list[bytes], order: str = "<", magic: int = 0xA1B2C3D4) -> bytes:
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for i, frame in enumerate(frames):
        out += struct.pack(order + "IIII", 1_700_000_000 + i, 500_000, len(frame), len(frame))
        out += frame
    return out


def _ipv4_udp(payload: bytes, port: int, src=b"\x7f\x00\x00\x01", dst=b"\x7f\x00\x00\x01"):
    udp = struct.pack(">HHHH", 50000, port, 8 + len(payload), 0x1234) + payload
    head = bytearray(
        struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 7, 0x4000, 64, 17, 0, src, dst)
    )
    head[10:12] = ipv4_checksum(head).to_bytes(2, "big")
    return bytes(head) + udp


def test_reader_takes_other_link_types_and_byte_orders():
    unit = b"\x1a\xcf\xfc\x1d" + bytes(100)
    ip = _ipv4_udp(unit, 47002)
    other = _ipv4_udp(b"dns?", 53)
    eth = b"\x00" * 12 + b"\x08\x00"
    vlan = b"\x00" * 12 + b"\x81\x00\x00\x05\x08\x00"
    sll = b"\x00" * 14 + b"\x08\x00"
    sll2 = b"\x08\x00" + b"\x00" * 18
    null = struct.pack("<I", 2)
    ipv6 = (
        struct.pack(">IHBB", 0x60000000, 8 + len(unit), 17, 64)
        + bytes(15)
        + b"\x01"
        + bytes(15)
        + b"\x01"
        + struct.pack(">HHHH", 1, 47002, 8 + len(unit), 0)
        + unit
    )
    cases = [
        (1, [eth + ip, eth + other], "<"),
        (1, [vlan + ip], ">"),
        (101, [ip], "<"),
        (228, [ip], "<"),
        (113, [sll + ip], "<"),
        (276, [sll2 + ip], ">"),
        (0, [null + ip], "<"),
        (101, [ipv6], "<"),
    ]
    for linktype, frames, order in cases:
        reader = PcapReader(_pcap(linktype, frames, order))
        got = list(reader)
        assert [(u.layer, u.data) for u in got] == [("tm_cadu", unit)], linktype
        assert got[0].t_s == 1_700_000_000.5
    assert next(iter(read_units(_pcap(1, [eth + ip])))).src == "127.0.0.1"
    reader = PcapReader(_pcap(1, [eth + other, b"\x00" * 12 + b"\x08\x06" + bytes(28)]))
    assert list(reader) == []
    assert reader.stats["other_ports"] == 1 and reader.stats["not_ip"] == 1


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b[:10], "header"),
        (lambda b: b"\x00" * 24, "magic"),
        (lambda b: b[:4] + struct.pack("<H", 3) + b[6:], "version"),
        (lambda b: b[:20] + struct.pack("<I", 147) + b[24:], "linktype"),
        (lambda b: b[:30], "record"),
        (lambda b: b[:-1], "record"),
        (lambda b: b[:28] + struct.pack("<I", 2_000_000) + b[32:], "timestamp"),
        (lambda b: b[:32] + struct.pack("<I", 300_000) + b[36:], "incl_len"),
        (lambda b: b[:36] + struct.pack("<I", 10) + b[40:], "incl_len"),
        (lambda b: b[: 40 + 14 + 11] + b"\x99" + b[40 + 14 + 12 :], "ipv4.checksum"),
    ],
)
def test_reader_refuses_malformed_pcaps(mutate, field):
    good = io.BytesIO()
    with PcapCapture(good, EPOCH) as cap:
        cap.unit("tc_frame", 0.0, "a", "b", b"\x20" * 50)
    raw = good.getvalue()
    assert len(list(read_units(raw))) == 1
    with pytest.raises(DecodeError) as info:
        list(read_units(mutate(raw)))
    assert info.value.layer == "pcap" and info.value.field == field


def _fragments(payload: bytes, port: int, pieces: list[tuple[int, int, bool]]) -> list[bytes]:
    """Ethernet frames of fragments (offset, length, more) of one UDP datagram."""
    udp = struct.pack(">HHHH", port, port, 8 + len(payload), 0) + payload
    out = []
    for off, n, more in pieces:
        chunk = udp[off : off + n]
        head = bytearray(
            struct.pack(
                ">BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(chunk),
                99,
                (more << 13) | off // 8,
                64,
                17,
                0,
                b"\x0a\x00\x00\x01",
                b"\x0a\x00\x00\x02",
            )
        )
        head[10:12] = ipv4_checksum(head).to_bytes(2, "big")
        out.append(b"\x00" * 12 + b"\x08\x00" + bytes(head) + chunk)
    return out


def test_reader_reassembles_fragments_in_any_order():
    payload = random.Random(5).randbytes(3000)
    frames = _fragments(payload, 47013, [(1600, 1408, False), (0, 800, True), (800, 800, True)])
    (u,) = read_units(_pcap(1, frames))
    assert u.layer == "aos_frame" and u.data == payload
    # duplicates that agree are fine; an incomplete datagram is counted
    frames = _fragments(payload, 47013, [(0, 800, True), (0, 800, True), (1600, 1408, False)])
    reader = PcapReader(_pcap(1, frames))
    assert list(reader) == [] and reader.stats["incomplete_datagrams"] == 1


def test_reader_refuses_inconsistent_fragments():
    payload = bytes(3000)
    frames = _fragments(payload, 47013, [(0, 800, True), (800, 1600, False)])
    frames.insert(1, _fragments(b"\x01" * 3000, 47013, [(400, 800, True)])[0])
    with pytest.raises(DecodeError, match="overlapping fragments disagree"):
        list(read_units(_pcap(1, frames)))
    frames = _fragments(payload, 47013, [(0, 804, True)])
    with pytest.raises(DecodeError, match="multiple of 8"):
        list(read_units(_pcap(1, frames)))
    frames = _fragments(payload, 47013, [(0, 800, True), (0, 1600, True)])
    with pytest.raises(DecodeError, match="differ"):
        list(read_units(_pcap(1, frames)))


def test_reader_refuses_a_unit_cut_by_the_snap_length():
    good = io.BytesIO()
    with PcapCapture(good, EPOCH) as cap:
        cap.unit("tm_frame", 0.0, "a", "b", b"\x20" * 500)
    raw = bytearray(good.getvalue())
    # keep 100 octets of the frame, as a capture with a small snap length would
    struct.pack_into("<I", raw, 32, 100)
    with pytest.raises(TruncatedError, match="snap length"):
        list(read_units(bytes(raw[: 40 + 100])))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(LAYERS)),
            st.floats(0, 1e7, allow_nan=False),
            st.sampled_from(NODES),
            st.sampled_from(NODES),
            st.binary(min_size=1, max_size=4000),
        ),
        max_size=8,
    ),
    st.integers(68, 9000),
    st.booleans(),
)
@settings(max_examples=60)
def test_any_units_round_trip(units, mtu, ns):
    buf = io.BytesIO()
    with PcapCapture(buf, EPOCH, mtu=mtu, nanoseconds=ns) as cap:
        for u in units:
            cap.unit(*u)
    got = list(PcapReader(buf.getvalue(), epoch=EPOCH, registry=cap.registry))
    assert [(u.layer, u.src, u.dst, u.data) for u in got] == [
        (layer, src, dst, data) for layer, _, src, dst, data in units
    ]
    scale = 1e9 if ns else 1e6
    for u, (_, t_s, *_rest) in zip(got, units, strict=True):
        # half a tick, plus what a float of this size can hold
        assert abs(u.t_s - t_s) <= 0.5 / scale + 4 * math.ulp(max(t_s, 1.0))


def test_the_side_file_says_what_the_time_stamps_are(tmp_path):
    """A daemon's capture in wall time: ``epoch`` is the wall instant of t_s = 0, the
    side file names the base and keeps the scenario's epoch; units read back keep
    their scenario t_s."""
    scenario_epoch = datetime(2026, 1, 1, tzinfo=UTC)
    wall_epoch = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    path = tmp_path / "wall.pcap"
    with PcapCapture(path, wall_epoch, time_base="wall", scenario_epoch=scenario_epoch) as cap:
        cap.unit("space_packet", 10_765.25, "ground", "sat:CS-08", b"\x00" * 8)
    side = json.loads(Path(f"{path}.nodes.json").read_text())
    assert side["time_base"] == "wall"
    assert side["epoch"] == wall_epoch.isoformat()
    assert side["scenario_epoch"] == scenario_epoch.isoformat()
    (unit,) = read_units(path)
    assert unit.t_s == pytest.approx(10_765.25)
    with pytest.raises(ConfigError, match="time"):
        PcapCapture(tmp_path / "x.pcap", wall_epoch, time_base="gps")
