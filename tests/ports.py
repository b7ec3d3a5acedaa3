"""Free ports on 127.0.0.1 for the tests that start daemons: blocks of consecutive
ports, found by trying to bind them (the daemons need whole ranges, so asking the
kernel for one ephemeral port at a time would not do)."""

from __future__ import annotations

import random
import socket


def free(port: int, kind: int = socket.SOCK_DGRAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_block(n_udp: int, n_tcp: int = 0) -> int:
    """The first of ``n_udp`` consecutive free UDP ports, followed by ``n_tcp`` free
    TCP ports."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 60_000 - n_udp - n_tcp)
        udp, tcp = range(base, base + n_udp), range(base + n_udp, base + n_udp + n_tcp)
        if all(free(p) for p in udp) and all(free(p, socket.SOCK_STREAM) for p in tcp):
            return base
    raise AssertionError("no free block of ports found")
