"""``linkstack bench framing``: Space Packet and transfer frame throughput.

Cases, for 64-octet and 1 KiB (1024-octet) packets:
- spp: build SpacePacket objects, pack them, unpack them again;
- tm: TM virtual channel packing into 1115-octet frames with FECF and master
  channel frame building, then receiver-side frame checks and packet extraction;
- aos: the same through AOS frames.
MB/s counts packet octets (headers included) over the time of the whole case, in
the median of 5 runs.
"""

from __future__ import annotations

import random

from linkstack.ccsds.aos import AosMasterChannel, AosReceiver
from linkstack.ccsds.spp import SpacePacket
from linkstack.ccsds.tm import TmMasterChannel, TmReceiver
from linkstack.tools.bench.timing import Result, time_runs

SIZES = (64, 1024)


def _packets(size: int, count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [
        SpacePacket(rng.randrange(2047), rng.randbytes(size - 6), seq_count=i & 0x3FFF).pack()
        for i in range(count)
    ]


def bench_spp(size: int, count: int, repeat: int) -> Result:
    rng = random.Random(size)
    payloads = [(rng.randrange(2047), rng.randbytes(size - 6)) for _ in range(count)]

    def run() -> None:
        for i, (apid, data) in enumerate(payloads):
            raw = SpacePacket(apid, data, seq_count=i & 0x3FFF).pack()
            SpacePacket.unpack(raw)

    return Result(f"spp encode+decode {size} B", count, count * size, time_runs(run, repeat))


def _bench_frames(
    name: str,
    mc_cls: type[TmMasterChannel | AosMasterChannel],
    rx_cls: type[TmReceiver | AosReceiver],
    size: int,
    count: int,
    repeat: int,
) -> Result:
    packets = _packets(size, count)

    def run() -> None:
        mc, rx = mc_cls(), rx_cls()
        for p in packets:
            mc.push(0, p)
        mc.flush()
        got = 0
        receive = rx.receive
        for frame in mc.drain():
            received = receive(frame)
            got += len(received.packets) if received is not None else 0
        if got != count:
            raise RuntimeError(f"{name} bench lost packets: {got} of {count}")

    return Result(f"{name} pack+extract {size} B", count, count * size, time_runs(run, repeat))


def run(quick: bool = False) -> list[Result]:
    repeat = 5  # runs a case; the median is reported
    results = []
    for size in SIZES:
        count = (2_000 if quick else 20_000) if size == 64 else (1_000 if quick else 10_000)
        results.append(bench_spp(size, count, repeat))
        results.append(_bench_frames("tm", TmMasterChannel, TmReceiver, size, count, repeat))
        results.append(_bench_frames("aos", AosMasterChannel, AosReceiver, size, count, repeat))
    return results
