"""The framing-layer round trip that ``linkstack demo`` runs until the full demo exists.

A query goes up as time-tagged Space Packets in TC frames, an answer comes down
in TM frames; one downlink frame is dropped on purpose to show that the
receiver notices the gap and throws away the cut message instead of
delivering it damaged. No channel coding, orbit or model yet.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from linkstack.cuc import CucFormat
from linkstack.spp import PacketType, Reassembler, SequenceCounter, SpacePacket, segment
from linkstack.tc import TcConfig, TcFrameType, TcReceiver, TcVirtualChannel
from linkstack.tm import TmConfig, TmMasterChannel, TmReceiver

QUERY_APID = 0x100
ANSWER_APID = 0x101
SCID = 0x2A


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def run(say: Callable[[str], None] = print, seed: int = 1) -> bool:
    rng = random.Random(seed)
    cuc = CucFormat()
    say("linkstack demo: framing-layer round trip (the full orbital demo with the onboard")
    say("Qwen3 model arrives with later work; this run exercises the CCSDS framing only).")

    # -- uplink: query -> Space Packets -> TC frames -> spacecraft ------------
    query = b"What is the orbital period at 500 km altitude? " * 30
    counter = SequenceCounter()
    up_packets = segment(query, QUERY_APID, counter, max_data_len=4096, packet_type=PacketType.TC)
    tc_cfg = TcConfig(scid=SCID)
    vc = TcVirtualChannel(tc_cfg, vcid=1)
    tc_frames = [f.pack() for f in vc.frames([p.pack() for p in up_packets], 0, TcFrameType.BD)]
    sat_rx = TcReceiver(tc_cfg)
    sat_reasm = Reassembler()
    got_query = None
    for frame in tc_frames:
        for out in sat_rx.receive(frame):
            got_query = sat_reasm.push(SpacePacket.unpack(out.packet)) or got_query
    say(
        f"  uplink   {len(query)} B query -> {_n(len(up_packets), 'Space Packet')} -> "
        f"{len(tc_frames)} TC frames (segmented, {sum(map(len, tc_frames))} B) -> "
        f"{'delivered intact' if got_query == query else 'NOT delivered'}"
    )

    # -- downlink: two answers, one frame of the first one lost ---------------
    tm_cfg = TmConfig(scid=SCID, ocf=True)
    mc = TmMasterChannel(tm_cfg)
    answers = [rng.randbytes(3000), b"A circular orbit at 500 km takes about 94.6 minutes."]
    n_frames = []
    for answer in answers:
        for pkt in segment(answer, ANSWER_APID, counter, max_data_len=1000):
            timed = SpacePacket.timed(
                pkt.apid, pkt.data, 2.1e9, cuc, seq_count=pkt.seq_count, seq_flags=pkt.seq_flags
            )
            mc.push(0, timed.pack())
        mc.flush()
        n_frames.append(mc.frames_ready)
    frames = mc.drain()
    lost = 1  # the second frame of the first answer never arrives
    ground_rx, ground_reasm = TmReceiver(tm_cfg), Reassembler()
    delivered = []
    for i, frame in enumerate(frames):
        if i == lost:
            continue
        got = ground_rx.receive(frame)
        for raw in got.packets if got else ():
            pkt = SpacePacket.unpack(raw, cuc)
            if (payload := ground_reasm.push(pkt)) is not None:
                delivered.append(payload)
    stats = ground_rx.all_stats() + ground_reasm.stats
    say(
        f"  downlink {len(answers)} answers -> {len(frames)} TM frames of "
        f"{tm_cfg.frame_length} B, frame {lost} dropped on purpose"
    )
    say(
        f"           receiver: {stats['vc_frames_lost']} frame lost, "
        f"{stats['packets_dropped']} cut packet dropped, "
        f"{stats['dropped_payloads']} incomplete answer dropped, "
        f"{stats['delivered']} answer delivered"
    )
    ok = got_query == query and delivered == answers[1:]
    say(f"  result   {'OK' if ok else 'FAILED'}: the damaged answer was refused, the other arrived")
    say("           byte for byte.")
    return ok
