"""The one reader (linkstack/capture/reader.py): pcapng read directly, giving the same
units as the pcap it was converted from, and damaged files read as far as they go.

The conversions are made by the real ``editcap`` (Wireshark's). Without it these
tests FAIL and say how to install it, as the tshark checks do: a skipped check would
look like a pass.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.capture.link_header import MAX_LINK_INDEX, link_header, link_of, split
from linkstack.capture.network import LAYERS, ipv4_checksum, nodes_path
from linkstack.capture.pcap import PcapCapture
from linkstack.capture.reader import (
    CapturedUnit,
    LinkPorts,
    PcapReader,
    PortRole,
    ReadProblem,
    read_units,
)
from linkstack.errors import DecodeError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "pcaps").glob("*.pcap"))
BROKEN = [
    ROOT / "tests" / "conformance" / "broken" / f"{name}.pcap"
    for name in ("good", "cltu_bch_parity", "tm_mc_count_gap", "aos_count_gap")
]
EPOCH = datetime(2025, 6, 1, tzinfo=UTC)
T_S = 1_700_000_000  # seconds since 1970 of the hand-made captures

EDITCAP_HINT = (
    "editcap (Wireshark's capture-file converter) is not installed, and these checks run "
    "it to make pcapng files. It comes with tshark: `sudo apt-get install tshark` on "
    "Debian/Ubuntu (`make test` does it by itself when run as root), `dnf install "
    "wireshark-cli` on Fedora, `brew install wireshark` on macOS; then run the tests again."
)


def editcap_pcapng(src: Path, dst: Path) -> None:
    """``src`` converted to pcapng by the real editcap, its side file copied along."""
    exe = shutil.which("editcap")
    if exe is None:
        pytest.fail(EDITCAP_HINT, pytrace=False)
    proc = subprocess.run(
        [exe, "-F", "pcapng", str(src), str(dst)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"editcap failed:\n{proc.stderr}"
    assert dst.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    if nodes_path(src).exists():
        shutil.copy(nodes_path(src), nodes_path(dst))


# -- the same units from a pcap and its pcapng ----------------------------------------------


@pytest.mark.parametrize("path", [*SAMPLES, *BROKEN], ids=lambda p: p.name)
def test_a_pcap_and_its_pcapng_conversion_give_the_same_units(tmp_path, path):
    assert len(SAMPLES) >= 3
    pcapng = tmp_path / (path.stem + ".pcapng")
    editcap_pcapng(path, pcapng)
    want = PcapReader(path)
    units = list(want)
    assert units and want.format == "pcap"
    got = PcapReader(pcapng)
    assert list(got) == units  # layers, names, octets, and the times to the last bit
    assert got.format == "pcapng" and got.epoch == want.epoch
    assert got.stats == want.stats


@pytest.mark.parametrize("nanoseconds", [False, True])
def test_fragments_and_time_stamps_survive_the_conversion(tmp_path, nanoseconds):
    rng = random.Random(3)
    path = tmp_path / "w.pcap"
    with PcapCapture(path, EPOCH, nanoseconds=nanoseconds, mtu=576) as cap:
        for i in range(40):
            data = rng.randbytes(rng.randrange(1, 5000))
            cap.unit(rng.choice(sorted(LAYERS)), i * 0.123456789, "ground:A", "sat:B", data)
    pcapng = tmp_path / "w.pcapng"
    editcap_pcapng(path, pcapng)
    want = PcapReader(path)
    assert list(PcapReader(pcapng)) == list(want)
    assert want.stats["reassembled"] > 10


# -- pcapng, block by block ----------------------------------------------------------------


def _block(btype: int, body: bytes, order: str = "<") -> bytes:
    body += bytes(-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _shb(order: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def _idb(linktype: int = 1, order: str = "<", tsresol=None, tsoffset=None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += struct.pack(order + "HHB3x", 9, 1, tsresol)
    if tsoffset is not None:
        opts += struct.pack(order + "HHq", 14, 8, tsoffset)
    if opts:
        opts += struct.pack(order + "HH", 0, 0)
    return _block(1, struct.pack(order + "HHI", linktype, 0, 0) + opts, order)


def _epb(frame: bytes, ticks: int, iface: int = 0, order: str = "<") -> bytes:
    head = struct.pack(
        order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)
    )
    return _block(6, head + frame, order)


def _spb(frame: bytes, order: str = "<") -> bytes:
    return _block(3, struct.pack(order + "I", len(frame)) + frame, order)


def _pb(frame: bytes, ticks: int, order: str = "<") -> bytes:
    head = struct.pack(
        order + "HHIIII", 0, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)
    )
    return _block(2, head + frame, order)


def _frame(payload: bytes, port: int = 47012) -> bytes:
    """An Ethernet frame of one IPv4/UDP datagram."""
    udp = struct.pack(">HHHH", port, port, 8 + len(payload), 0) + payload
    head = bytearray(
        struct.pack(
            ">BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            1,
            0,
            64,
            17,
            0,
            b"\x0a\x02\0\1",
            b"\x0a\x01\0\1",
        )
    )
    head[10:12] = ipv4_checksum(head).to_bytes(2, "big")
    return bytes(12) + b"\x08\x00" + bytes(head) + udp


def _pcap(frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", T_S + i, 0, len(frame), len(frame)) + frame
    return out


def _pcapng(frames: list[bytes]) -> bytes:
    return _shb() + _idb() + b"".join(_epb(f, (T_S + i) * 10**6) for i, f in enumerate(frames))


FRAMES = [_frame(bytes([k]) * 40) for k in range(5)]


def test_sections_byte_orders_resolutions_and_block_kinds():
    a, b, c, d = FRAMES[:4]
    data = (
        _shb()
        + _idb()
        + _idb(tsresol=9)
        + _block(4, bytes(4))  # a name resolution block: nothing to read in it
        + _epb(a, T_S * 10**6 + 250_000)
        + _epb(b, T_S * 10**9 + 1, iface=1)
        + _shb(">")  # a second section, big-endian: its own interfaces
        + _idb(order=">", tsresol=0x80 | 10, tsoffset=-100)
        + _spb(c, ">")  # no time stamp: 0, then the offset, not below 1970
        + _pb(d, T_S * 1024 + 512, ">")  # the obsolete Packet Block
    )
    reader = PcapReader(data)
    got = list(reader)
    assert reader.format == "pcapng" and reader.stats["records"] == 4
    assert [u.data for u in got] == [bytes([k]) * 40 for k in range(4)]
    assert [u.t_s for u in got] == [T_S + 0.25, (T_S * 10**9 + 1) / 10**9, 0.0, T_S - 99.5]
    assert {(u.layer, u.src, u.dst) for u in got} == {("tm_frame", "10.2.0.1", "10.1.0.1")}


def test_interfaces_of_different_link_types_read_together(tmp_path):
    """``tshark -i any -i lo`` writes one interface per link type (Linux cooked and
    Ethernet): the real mergecap makes such a pcapng of an Ethernet and a raw-IP pcap."""
    exe = shutil.which("mergecap")
    if exe is None:
        pytest.fail(EDITCAP_HINT.replace("editcap", "mergecap"), pytrace=False)
    ether, raw = tmp_path / "ether.pcap", tmp_path / "raw.pcap"
    ether.write_bytes(_pcap(FRAMES[:2]))
    raw_ip = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)  # LINKTYPE_RAW
    for i, frame in enumerate(FRAMES[2:4]):
        ip = frame[14:]  # the Ethernet header off
        raw_ip += struct.pack("<IIII", T_S + 2 + i, 0, len(ip), len(ip)) + ip
    raw.write_bytes(raw_ip)
    merged = tmp_path / "both.pcapng"
    proc = subprocess.run(
        [exe, "-F", "pcapng", "-w", str(merged), str(ether), str(raw)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    reader = PcapReader(merged)
    got = list(reader)
    assert reader.format == "pcapng"
    assert [u.data for u in got] == [bytes([k]) * 40 for k in range(4)]
    assert [u.t_s for u in got] == [T_S + k for k in range(4)]


F = FRAMES[0]
T = T_S * 10**6


@pytest.mark.parametrize(
    ("data", "layer", "field"),
    [
        (_shb(), "pcapng", "interfaces"),
        (_shb()[:8] + b"\x01\x02\x03\x04" + _shb()[12:], "pcapng", "byte_order_magic"),
        (_pcapng(FRAMES)[:-3], "pcapng", "block_length"),  # cut inside the last block
        (_pcapng(FRAMES) + bytes(5), "pcapng", "block"),  # 5 octets where a block starts
        (_pcapng(FRAMES) + struct.pack("<II", 6, 30) + bytes(24), "pcapng", "block_length"),
        (_shb() + _idb() + _epb(F, T)[:-4] + struct.pack("<I", 99), "pcapng", "block_length"),
        (_shb() + _idb() + _epb(F, T, iface=1), "pcapng", "interface_id"),
        (_shb() + _epb(F, T), "pcapng", "interface_id"),
        (_shb() + _spb(F), "pcapng", "spb"),
        (_shb() + _block(1, b"\x01\x00"), "pcapng", "idb"),
        (_shb() + _idb() + _block(6, bytes(8)), "pcapng", "epb"),
        (
            _shb() + _idb() + _block(6, struct.pack("<IIIII", 0, 0, 0, len(F) + 40, len(F)) + F),
            "pcapng",
            "captured_length",
        ),
        (_shb() + _idb() + _epb(F, (2**32 + 1) * 10**6), "pcapng", "timestamp"),
        (_shb() + _idb(147), "pcap", "linktype"),
        (_shb() + _idb() + _idb(147) + _epb(F, T), "pcap", "linktype"),
        (_shb() + _idb(101) + _epb(bytes(300_000), T), "pcap", "incl_len"),
        (_pcapng([F[:24] + b"\x99" + F[25:]]), "pcap", "ipv4.checksum"),
    ],
)
def test_pcapng_refusals_name_the_layer_the_field_and_the_rule(data, layer, field):
    with pytest.raises(DecodeError) as info:
        list(read_units(data))
    assert (info.value.layer, info.value.field) == (layer, field)


def test_refusals_say_which_block_or_record():
    with pytest.raises(DecodeError, match=r"^pcapng: interface_id: block 4 at octet 64: no"):
        list(read_units(_shb() + _idb() + _block(4, bytes(4)) + _epb(F, T, iface=2)))
    with pytest.raises(DecodeError, match=r"^pcap: ipv4.checksum: record 2: header checksum"):
        list(read_units(_pcapng([F, F[:24] + b"\x99" + F[25:]])))


def test_an_interface_option_cut_by_its_block_is_ignored():
    body = struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 1)  # if_tsresol, no value
    (u,) = read_units(_shb() + _block(1, body) + _epb(F, T + 500_000))
    assert u.t_s == T_S + 0.5  # microseconds, the default


# -- reading past damage ----------------------------------------------------------------------


@pytest.mark.parametrize("make", [_pcap, _pcapng], ids=["pcap", "pcapng"])
def test_damaged_records_are_skipped_and_the_reading_stops_where_the_file_breaks(make):
    frames = list(FRAMES)
    frames[1] = frames[1][:24] + b"\x99" + frames[1][25:]  # the IPv4 checksum of record 2
    data = make(frames)
    with pytest.raises(DecodeError, match=r"ipv4\.checksum"):
        list(read_units(data))
    reader = PcapReader(data)
    items = list(reader.read(resume=True))
    assert [type(i) for i in items] == [CapturedUnit, ReadProblem, *[CapturedUnit] * 3]
    assert items[1].record == 2 and not items[1].fatal
    assert items[1].error.field == "ipv4.checksum" and "record 2:" in items[1].error.rule
    assert [i.data[0] for i in items if isinstance(i, CapturedUnit)] == [0, 2, 3, 4]
    assert reader.stats["records"] == 5 and reader.stats["units"] == 4
    # cut inside the last record: what came before, then where it stops (4 records read)
    items = list(PcapReader(data[:-7]).read(resume=True))
    *_, last = items
    assert isinstance(last, ReadProblem) and last.fatal and last.record == 4
    assert last.error.field == ("record" if make is _pcap else "block_length")
    assert sum(isinstance(i, CapturedUnit) for i in items) == 3
    # a file that is no capture at all is refused, not read past
    with pytest.raises(DecodeError, match=r"version|byte_order_magic"):
        list(PcapReader(data[:4] + bytes(24)).read(resume=True))


GOOD_PCAPNG = (
    _shb()
    + _idb(tsresol=9)
    + _idb(tsoffset=5)
    + _idb(101)  # raw IP beside Ethernet
    + b"".join(_epb(f, T + i, iface=i % 2) for i, f in enumerate(FRAMES))
    + _epb(FRAMES[0][14:], T, iface=2)
    + _spb(_frame(bytes(3000), 47002)[:1600])
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD_PCAPNG) - 1), st.integers(0, 255)), max_size=6),
    st.integers(0, len(GOOD_PCAPNG)),
)
def test_a_damaged_pcapng_gives_units_or_decode_errors_only(changes, cut):
    data = bytearray(GOOD_PCAPNG)
    for at, value in changes:
        data[at] = value
    data = bytes(data[:cut])
    with contextlib.suppress(DecodeError):
        list(read_units(data))
    try:
        items = list(PcapReader(data).read(resume=True))
    except DecodeError:
        return  # no capture at all
    assert all(isinstance(i, CapturedUnit | ReadProblem) for i in items)
    fatal = [i for i in items if isinstance(i, ReadProblem) and i.fatal]
    assert not fatal or fatal == items[-1:]


def test_a_port_of_the_daemons_plan_reads_each_datagrams_link_from_its_header():
    """A port that carries several links (the daemons' port plan): each datagram's link
    header picks its role, the unit is what follows it; a datagram without a header or
    of a link the port does not carry is skipped and counted, as is another view."""
    cltu, cadu = b"\xeb\x90" + bytes(8), b"\x1a\xcf\xfc\x1d" + bytes(8)
    up = PortRole("cltu", "ground:mcc", "sat:CS-01", "sent")
    down = PortRole("tm_cadu", "sat:CS-01", "ground:mcc", "delivered")
    ports = {47100: LinkPorts({0: up, 3: down})}
    frames = [
        _frame(link_header(0) + cltu, 47100),
        _frame(cltu, 47100),  # no header
        _frame(link_header(5) + cltu, 47100),  # a link the port does not carry
        _frame(bytes([0x4C, 0, 0, 3]), 47100),  # a header and no unit
        _frame(link_header(3) + cadu, 47100),
    ]
    reader = PcapReader(_pcap(frames), ports=ports)
    got = [(u.layer, u.src, u.dst, u.data) for u in reader]
    assert got == [("cltu", *up[1:3], cltu), ("tm_cadu", *down[1:3], cadu)]
    assert reader.stats["no_link_header"] == 2 and reader.stats["other_links"] == 1
    sent_only = PcapReader(_pcap(frames), ports=ports, views=["sent"])
    assert [u.layer for u in sent_only] == ["cltu"] and sent_only.stats["other_view"] == 1


@given(st.binary(max_size=12))
def test_the_link_header_reads_back_what_it_wrote_and_names_what_is_wrong(tail):
    for k in (0, 1, 0xABCDEF, MAX_LINK_INDEX):
        assert split(link_header(k) + b"\x01" + tail) == (k, b"\x01" + tail)
        assert link_of(link_header(k) + b"\x01" + tail) == k
    with pytest.raises(DecodeError, match=r"link_header.*length"):
        split(link_header(1))
    with pytest.raises(DecodeError, match=r"link_header.*magic.*0x4c"):
        split(b"\xeb\x90\0\0" + tail + b"\0")
    with pytest.raises(ValueError, match="outside"):
        link_header(MAX_LINK_INDEX + 1)
