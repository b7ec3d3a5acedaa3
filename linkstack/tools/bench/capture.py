"""``linkstack bench capture``: how fast the pcap writer (and reader) keeps up.

Cases, each writing to a file in a temporary directory (buffered, on disk):
- TM CADUs of 1,279 octets (a 1115-octet frame, RS(255,223) x 5, ASM): one
  Ethernet frame each;
- CLTUs of 1,186 octets (a 1024-octet TC frame);
- 64-octet Space Packets (the per-unit cost dominates);
- 10,006-octet Space Packets, each cut into 7 IPv4 fragments;
- the reader on the CADU capture (replay).
Units alternate between a few source/destination pairs, as on a real link.
MB/s counts unit octets (the UDP payloads) over the time of the whole case, in
the median of 5 runs; compare with the link rates the emulator models (X-band
downlink 150 Mbit/s = 18.75 MB/s, S-band uplink 256 kbit/s, laser links 1-100
Gbit/s).
"""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from linkstack.capture.pcap import PcapCapture, PcapReader
from linkstack.tools.bench.timing import Result, time_runs

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
PAIRS = [
    ("sat:CS-01", "ground:Svalbard"),
    ("sat:CS-02", "ground:Kiruna"),
    ("sat:CS-03", "sat:CS-04"),
]


def _bench_write(
    directory: Path, name: str, layer: str, size: int, count: int, repeat: int
) -> Result:
    rng = random.Random(size)
    units = [rng.randbytes(size) for _ in range(16)]
    path = directory / f"{layer}-{size}.pcap"

    def run() -> None:
        with PcapCapture(path, EPOCH) as cap:
            write = cap.unit
            for i in range(count):
                src, dst = PAIRS[i % 3]
                write(layer, i * 1e-4, src, dst, units[i & 15])

    return Result(name, count, count * size, time_runs(run, repeat))


def _bench_read(directory: Path, count: int, repeat: int) -> Result:
    path = directory / "read.pcap"
    rng = random.Random(9)
    unit = rng.randbytes(1279)
    with PcapCapture(path, EPOCH) as cap:
        for i in range(count):
            cap.unit("tm_cadu", i * 1e-4, *PAIRS[i % 3], unit)

    def run() -> None:
        got = sum(1 for _ in PcapReader(path))
        if got != count:
            raise RuntimeError(f"capture bench: read {got} units of {count}")

    return Result("read back 1279 B TM CADUs", count, count * 1279, time_runs(run, repeat))


def run(quick: bool = False) -> list[Result]:
    repeat = 5  # runs a case; the median is reported
    count = 5_000 if quick else 50_000
    with tempfile.TemporaryDirectory(prefix="linkstack-bench-") as tmp:
        d = Path(tmp)
        return [
            _bench_write(d, "write 1279 B TM CADUs", "tm_cadu", 1279, count, repeat),
            _bench_write(d, "write 1186 B CLTUs", "cltu", 1186, count, repeat),
            _bench_write(d, "write 64 B Space Packets", "space_packet", 64, count, repeat),
            _bench_write(
                d,
                "write 10006 B Space Packets (7 fragments)",
                "space_packet",
                10_006,
                count // 10,
                repeat,
            ),
            _bench_read(d, count, repeat),
        ]


if __name__ == "__main__":  # until `linkstack bench capture` is wired into the CLI
    from linkstack.tools.bench.timing import describe_machine, pin_one_core, print_table

    print(f"# {describe_machine()}; {pin_one_core()}")
    print_table("linkstack bench capture", run(), "units")
