"""The two ends of ``linkstack bench daemon``, each a process of its own.

``send``: CADUs to the channel daemon's ingress ports, each link at a given rate, for
a given time, each behind its link's header and from the port the link's real sender
uses (the daemon takes an end's units from its peer only; each link here has an end of
its own); every datagram's sequence number and the instant
it reached the channel are written to a file: the kernel's transmit stamp
(``SO_TIMESTAMPING``, software; on loopback it is taken as the datagram is handed to
the receiving socket, a microsecond or two before the channel daemon's own stamp),
or where the kernel gives none, the wall clock read just before ``sendto``. Not the
wall clock alone: this process may be preempted between reading it and the call,
and on a link loaded to its full rate a unit that really left late delays every
unit after it (the transmitter cannot catch up), which is not the daemon's doing.

``receive``: the channel's deliveries on the receivers' ports until told to stop
(SIGTERM); every datagram's link (the index in its link header), sequence number and
the kernel's arrival stamp
(``SO_TIMESTAMPNS``, so that this process's own scheduling does not count) are
written to a file. Both files are numpy arrays.

    python -m linkstack.tools.bench.daemon_peers send OUT RATE SECONDS PORT:FROM:LINK [...]
    python -m linkstack.tools.bench.daemon_peers receive OUT PORT [PORT ...]
"""

from __future__ import annotations

import selectors
import signal
import socket
import struct
import sys
import time
from pathlib import Path

import numpy as np

from linkstack.capture.link_header import LINK_HEADER_LEN, link_header, link_of
from linkstack.ccsds.coding.chains import CaduTransmitter
from linkstack.ccsds.tm import TmConfig, TmMasterChannel
from linkstack.runtime.clock import TIMER_SLACK_NS, set_timer_slack

HOST = "127.0.0.1"
SEQ = struct.Struct(">I")
SEQ_AT = 4  # the sequence number overwrites the first octets after the ASM
_TIMESTAMP = struct.Struct("qq")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # 35 on Linux; the stubs lack it
SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)
# software transmit stamps, an id per datagram (0, 1, ... per socket), no payload back
TX_STAMP_FLAGS = (1 << 1) | (1 << 4) | (1 << 7) | (1 << 11)
_SCM_TIMESTAMPING = struct.Struct("qqqqqq")  # software, (deprecated), hardware
_EXTENDED_ERR = struct.Struct("IBBBBII")  # errno, origin, type, code, pad, info, data
SO_EE_ORIGIN_TIMESTAMPING = 4


def cadu_template() -> bytes:
    """A real CADU (ASM, randomized RS codeblock of an idle TM frame), 1,279 octets."""
    mc = TmMasterChannel(TmConfig(scid=0x40))
    return CaduTransmitter(1115).cadu(mc.idle_frame())


def send(out: Path, rate_per_s: float, seconds: float, ports: list[tuple[int, int, int]]) -> None:
    template = bytearray(cadu_template())
    if len({source for _, source, _ in ports}) < len(ports):
        raise SystemExit("daemon_peers send: each link needs a source port of its own")
    headers = [link_header(link) for _, _, link in ports]
    socks = []
    for _, source, _ in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)  # room for the stamps
        sock.bind((HOST, source))
        socks.append(sock)
    addrs = [(HOST, port) for port, _, _ in ports]
    n = int(rate_per_s * seconds)
    interval = 1.0 / rate_per_s
    sent_at = np.zeros((len(ports), n))
    stamped = [_stamp_transmissions(sock) for sock in socks]
    stamps = 0
    t0 = time.time() + 0.05
    # each link's k-th unit is due at t0 + k * interval; what is due goes at once
    for k in range(n):
        due = t0 + k * interval
        ahead = due - time.time()
        if ahead > 100e-6:
            for i, sock in enumerate(socks):
                if stamped[i]:
                    stamps += _read_stamps(sock, sent_at[i])
            ahead = due - time.time()
            if ahead > 100e-6:
                time.sleep(ahead - 50e-6)
        SEQ.pack_into(template, SEQ_AT, k)
        unit = bytes(template)
        for i, addr in enumerate(addrs):
            # the instant before the call, kept where the kernel gives no stamp: a
            # unit is never counted as sent later than it was
            sent_at[i, k] = time.time()
            socks[i].sendmsg([headers[i], unit], [], 0, addr)
    time.sleep(0.01)
    for i, sock in enumerate(socks):
        if stamped[i]:
            stamps += _read_stamps(sock, sent_at[i])
    np.save(out, sent_at)
    # the kernel keeps a bounded number of stamps: say how many units have one
    print(f"stamped {stamps} of {sent_at.size}", file=sys.stderr)


def _stamp_transmissions(sock: socket.socket) -> bool:
    """Ask the kernel for a software transmit stamp of every datagram sent on ``sock``
    (False where it cannot)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, TX_STAMP_FLAGS)
    except OSError:
        return False
    return True


def _read_stamps(sock: socket.socket, sent_at: np.ndarray) -> int:
    """Put the transmit stamps waiting on ``sock``'s error queue in ``sent_at`` (by
    the datagram's id, its index on this socket), in place of the wall clock's; how
    many."""
    count = 0
    while True:
        try:
            _, ancillary, _, _ = sock.recvmsg(0, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return count
        stamp = ident = None
        for level, kind, blob in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                sec, nsec = _SCM_TIMESTAMPING.unpack_from(blob)[:2]
                stamp = sec + nsec * 1e-9
            elif level == socket.SOL_IP:
                err = _EXTENDED_ERR.unpack_from(blob)
                if err[1] == SO_EE_ORIGIN_TIMESTAMPING:
                    ident = err[6]
        if stamp and ident is not None and ident < sent_at.size:
            sent_at[ident] = stamp
            count += 1


def receive(out: Path, ports: list[int]) -> None:
    """Every delivery on ``ports``: (link index, sequence number, arrival stamp)."""
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    sel = selectors.SelectSelector()
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((HOST, port))
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
    rows: list[tuple[int, int, float]] = []
    print("ready", flush=True)
    while not stop:
        for key, _ in sel.select(0.05):
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            sock = ready
            while True:
                try:
                    data, anc, _, _ = sock.recvmsg(65_535, 64)
                except BlockingIOError:
                    break
                stamp = time.time()
                for level, kind, blob in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = _TIMESTAMP.unpack(blob[: _TIMESTAMP.size])
                        stamp = sec + nsec * 1e-9
                link = link_of(data)
                if link is None:  # not the channel's: no unit of the bench
                    continue
                rows.append((link, SEQ.unpack_from(data, LINK_HEADER_LEN + SEQ_AT)[0], stamp))
    np.save(out, np.array(rows, dtype=float).reshape(-1, 3))


def main(argv: list[str]) -> int:
    role, out = argv[0], Path(argv[1])
    set_timer_slack(TIMER_SLACK_NS)  # sleeps to tens of microseconds
    if role == "send":
        triples = [tuple(int(x) for x in p.split(":")) for p in argv[4:]]
        send(out, float(argv[2]), float(argv[3]), [(a, b, c) for a, b, c in triples])
    elif role == "receive":
        receive(out, [int(p) for p in argv[2:]])
    else:
        print(f"daemon_peers: unknown role {role!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
