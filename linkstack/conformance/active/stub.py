"""A spacecraft endpoint that accepts everything: the counter-example of the active suite.

It decodes nothing strictly: from each datagram it takes the information octets of the
codeblocks (no BCH check, no start sequence check), stops at the tail sequence if it
finds one, derandomizes, and reads the TC header without checking the version, the
SCID, the VCID, the length or the FECF. A Type-BC frame that holds an Unlock or a Set
V(R) is executed and counted; a Type-BD frame is counted; anything else, whatever
its N(S), or a datagram too short to hold a header, advances V(R) by one. It never
goes to Lockout, never sets Retransmit or Wait. Its CLCW goes down in the OCF of an
idle TM frame, in a proper CADU, every ``interval_s``.

So against it ``linkstack conform --role sat`` passes the cases that only need a
working FARM-1 (the CLCW, Unlock and Set V(R), frames in sequence, BD frames, and the
frame with one bit error per codeblock, which it does not even look at) and fails
those that need a refusal (wrong SCID or VCID, bad FECF, bad BCH codeblocks,
malformed units, the positive and negative windows, Lockout).

``python -m linkstack.conformance.active.stub --listen 127.0.0.1:PORT --send 127.0.0.1:PORT2
--scid 0x45`` runs it on UDP: CLTUs in on ``--listen``, TM CADUs out to ``--send``.
:func:`serve` runs it in an asyncio loop of the caller's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys

from linkstack.ccsds.coding.chains import CaduTransmitter
from linkstack.ccsds.coding.cltu import CODEBLOCK_LEN, INFO_LEN, TAIL_SEQUENCE
from linkstack.ccsds.coding.randomizer import tc_randomize
from linkstack.ccsds.cop1.clcw import Clcw
from linkstack.ccsds.cop1.commands import SET_VR_CODE, UNLOCK_CODE
from linkstack.ccsds.tm import TmConfig, TmMasterChannel


class AcceptAllSat:
    """The stub's sans-I/O core: :meth:`receive` a unit, :meth:`emit` TM CADUs."""

    def __init__(
        self,
        scid: int,
        vcid: int = 0,
        frame_length: int = 1115,
        randomize: bool = True,
        segment_header: bool = True,
    ) -> None:
        self.vcid = vcid
        self.randomize = randomize
        self.segment_header = segment_header
        self.vr = 0
        self.farm_b_counter = 0
        self.received = 0
        self.mc = TmMasterChannel(TmConfig(frame_length=frame_length, scid=scid, ocf=True))
        self.tx = CaduTransmitter(frame_length)

    def clcw(self) -> Clcw:
        return Clcw(self.vcid, self.vr, farm_b_counter=self.farm_b_counter % 4)

    def receive(self, unit: bytes) -> None:
        self.received += 1
        data = bytearray()
        for at in range(2, len(unit) - CODEBLOCK_LEN + 1, CODEBLOCK_LEN):
            block = unit[at : at + CODEBLOCK_LEN]
            if block == TAIL_SEQUENCE:
                break
            data += block[:INFO_LEN]
        raw = tc_randomize(bytes(data)) if self.randomize and data else bytes(data)
        if len(raw) < 6:
            self.vr = (self.vr + 1) % 256  # accepted, whatever it was
            return
        bypass, control = raw[0] >> 5 & 1, raw[0] >> 4 & 1
        body = raw[5:]
        if bypass and control:
            if body[:1] == bytes([UNLOCK_CODE]):
                self.farm_b_counter += 1
                return
            if body[:2] == bytes([SET_VR_CODE, 0]) and len(body) >= 3:
                self.farm_b_counter += 1
                self.vr = body[2]
                return
        elif bypass:
            self.farm_b_counter += 1
            return
        self.vr = (self.vr + 1) % 256

    def emit(self) -> list[bytes]:
        self.mc.ocf = self.clcw().pack()
        return [self.tx.cadu(self.mc.idle_frame())]


class _Rx(asyncio.DatagramProtocol):
    def __init__(self, sat: AcceptAllSat) -> None:
        self.sat = sat

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.sat.receive(data)

    def error_received(self, exc: Exception) -> None:
        pass


async def serve(
    sat: AcceptAllSat,
    listen: tuple[str, int],
    send_to: tuple[str, int],
    interval_s: float = 0.05,
    started: asyncio.Event | None = None,
) -> None:
    """Run ``sat`` on UDP until cancelled."""
    loop = asyncio.get_running_loop()
    rx, _ = await loop.create_datagram_endpoint(
        lambda: _Rx(sat), local_addr=listen, family=socket.AF_INET
    )
    tx, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, family=socket.AF_INET)
    if started is not None:
        started.set()
    try:
        while True:
            for unit in sat.emit():
                tx.sendto(unit, send_to)
            await asyncio.sleep(interval_s)
    finally:
        rx.close()
        tx.close()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m linkstack.conformance.active.stub",
        description="A spacecraft endpoint that accepts every CLTU (for testing the "
        "active conformance suite: it must fail it).",
    )
    p.add_argument("--listen", required=True, help="HOST:PORT where CLTUs arrive")
    p.add_argument("--send", required=True, help="HOST:PORT where TM CADUs go")
    p.add_argument("--scid", type=lambda s: int(s, 0), default=0x40, help="default 0x40")
    p.add_argument("--interval", type=float, default=0.05, help="seconds between TM frames")
    args = p.parse_args(argv)
    sat = AcceptAllSat(args.scid)

    async def run() -> None:
        task = asyncio.ensure_future(
            serve(sat, _address(args.listen), _address(args.send), args.interval)
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    print(f"stub: {sat.received} units received, V(R) {sat.vr}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
