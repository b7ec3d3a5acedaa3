"""What the benches that run daemons as processes share: free ports on loopback, and
stopping a process."""

from __future__ import annotations

import random
import socket
import subprocess


def free_ports(udp: int, tcp: int = 0, first: int = 30_000) -> int:
    """The first port of ``udp`` consecutive UDP ports followed by ``tcp`` TCP ports,
    all free on 127.0.0.1 (bound and released to check), from ``first`` on; the search
    starts at a random block, so that two benches started at once rarely try the same."""
    step = udp + tcp + 10
    blocks = list(range(first, 60_000 - step, step))
    at = random.randrange(len(blocks))
    for base in blocks[at:] + blocks[:at]:
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + udp + tcp):
                kind = socket.SOCK_DGRAM if port < base + udp else socket.SOCK_STREAM
                s = socket.socket(socket.AF_INET, kind)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {udp} free UDP ports and {tcp} TCP ports after them on loopback")


def stop(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)
