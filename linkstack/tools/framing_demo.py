"""The link-layer round trip that ``linkstack demo`` runs until the orbital demo exists.

A query goes up as time-tagged Space Packets in TC frames carried by CLTUs with
bit errors that the BCH code corrects; two answers come down in TM frames
carried by Reed-Solomon coded, randomized CADUs with bit errors. One CADU is hit
by more errors than Reed-Solomon corrects: its frame is lost, the receiver
notices the gap and throws away the cut answer instead of delivering it
damaged. No orbit, no timing and no model yet.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from linkstack.ccsds.coding.chains import (
    CaduReceiver,
    CaduTransmitter,
    CltuReceiver,
    CltuTransmitter,
)
from linkstack.ccsds.cuc import CucFormat
from linkstack.ccsds.spp import PacketType, Reassembler, SequenceCounter, SpacePacket, segment
from linkstack.ccsds.tc import TcConfig, TcFrameType, TcReceiver, TcVirtualChannel
from linkstack.ccsds.tm import TmConfig, TmMasterChannel, TmReceiver

QUERY_APID = 0x100
ANSWER_APID = 0x101
SCID = 0x2A


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _flip_bits(rng: random.Random, unit: bytes, count: int, start: int = 0) -> bytes:
    buf = bytearray(unit)
    for pos in rng.sample(range(8 * start, 8 * len(buf)), count):
        buf[pos // 8] ^= 0x80 >> (pos % 8)
    return bytes(buf)


def run(say: Callable[[str], None] = print, seed: int = 1) -> bool:
    rng = random.Random(seed)
    cuc = CucFormat()
    say("linkstack demo: link-layer round trip. The full orbital demo with the onboard Qwen3")
    say("model arrives with later work; this run exercises the CCSDS framing and coding only.")

    # -- uplink: query -> Space Packets -> TC frames -> CLTUs -> spacecraft ----
    query = b"What is the orbital period at 500 km altitude? " * 30
    counter = SequenceCounter()
    up_packets = segment(query, QUERY_APID, counter, max_data_len=4096, packet_type=PacketType.TC)
    tc_cfg = TcConfig(scid=SCID)
    vc = TcVirtualChannel(tc_cfg, vcid=1)
    tc_frames = [f.pack() for f in vc.frames([p.pack() for p in up_packets], 0, TcFrameType.BD)]
    up_tx, up_rx = CltuTransmitter(), CltuReceiver()
    sat_rx, sat_reasm = TcReceiver(tc_cfg), Reassembler()
    got_query = None
    cltu_octets = 0
    for frame in tc_frames:
        cltu = up_tx.cltu(frame)
        cltu_octets += len(cltu)
        # one bit error in each of five codeblocks: the BCH code corrects each
        damaged = bytearray(cltu)
        for block in rng.sample(range((len(cltu) - 10) // 8), 5):
            damaged[2 + 8 * block + rng.randrange(8)] ^= 1 << rng.randrange(8)
        decoded = up_rx.receive(bytes(damaged))
        for out in sat_rx.receive(decoded) if decoded else ():
            got_query = sat_reasm.push(SpacePacket.unpack(out.packet)) or got_query
    say(
        f"  uplink   {len(query)} B query -> {_n(len(up_packets), 'Space Packet')} -> "
        f"{len(tc_frames)} TC frames -> CLTUs ({cltu_octets} B)"
    )
    say(
        f"           {up_rx.stats['bits_corrected']} bit errors corrected by BCH -> "
        f"{'query delivered intact' if got_query == query else 'query NOT delivered'}"
    )

    # -- downlink: two answers in coded CADUs, one CADU beyond Reed-Solomon -----
    tm_cfg = TmConfig(scid=SCID, ocf=True)
    mc = TmMasterChannel(tm_cfg)
    answers = [rng.randbytes(3000), b"A circular orbit at 500 km takes about 94.6 minutes."]
    for answer in answers:
        for pkt in segment(answer, ANSWER_APID, counter, max_data_len=1000):
            timed = SpacePacket.timed(
                pkt.apid, pkt.data, 2.1e9, cuc, seq_count=pkt.seq_count, seq_flags=pkt.seq_flags
            )
            mc.push(0, timed.pack())
        mc.flush()
    frames = mc.drain()
    down_tx, down_rx = CaduTransmitter(tm_cfg.frame_length), CaduReceiver(tm_cfg.frame_length)
    ground_rx, ground_reasm = TmReceiver(tm_cfg), Reassembler()
    delivered = []
    doomed = 1  # the second CADU of the first answer takes a burst of errors
    for i, cadu in enumerate(down_tx.cadus(frames)):
        # 30 scattered bit errors (about 6 symbols a codeword) are corrected; 2000 are not
        hits = 2000 if i == doomed else 30
        got = down_rx.receive_cadu(_flip_bits(rng, cadu, hits, start=4))
        if got is None:
            continue
        received = ground_rx.receive(got.frame)
        if received is None:
            continue
        for raw in received.packets:
            pkt = SpacePacket.unpack(raw, cuc)
            if (payload := ground_reasm.push(pkt)) is not None:
                delivered.append(payload)
    stats = down_rx.stats + ground_rx.all_stats() + ground_reasm.stats
    say(
        f"  downlink {len(answers)} answers -> {len(frames)} TM frames -> "
        f"{len(frames)} CADUs of {down_tx.cadu_length} B (RS(255,223) x 5, randomized)"
    )
    say(
        f"           {stats['rs_symbols_corrected']} symbol errors corrected by Reed-Solomon; "
        f"CADU {doomed} had too many: {stats['rs_uncorrectable']} frame lost"
    )
    say(
        f"           receiver: {stats['vc_frames_lost']} frame gap seen, "
        f"{stats['packets_dropped']} cut packet dropped, "
        f"{stats['dropped_payloads']} incomplete answer dropped, "
        f"{stats['delivered']} answer delivered"
    )
    ok = got_query == query and delivered == answers[1:]
    if ok:
        say("  result   OK: the damaged answer was refused, the other arrived byte for byte.")
    else:
        say(
            f"  result   FAILED: query {'ok' if got_query == query else 'lost'}, "
            f"{len(delivered)} answers delivered where 1 was expected"
        )
    return ok
