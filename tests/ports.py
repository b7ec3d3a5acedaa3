"""Free ports on 127.0.0.1 for the tests that start daemons: blocks of consecutive
ports, found by trying to bind them (the daemons need whole ranges, so asking the
kernel for one ephemeral port at a time would not do)."""

from __future__ import annotations

import os
import random
import socket


def free(port: int, kind: int = socket.SOCK_DGRAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Below Linux's ephemeral range (32768 and up: the kernel's choice for a port 0, which
# the broker fixture and every client connection take), and split between the
# pytest-xdist workers, so that two tests running at once never pick the same block
# between checking it and binding it.
LOW, HIGH = 20_000, 32_768


def _worker_range() -> tuple[int, int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, ...
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    k = int(worker[2:]) if worker[2:].isdigit() else 0
    width = (HIGH - LOW) // count
    return LOW + k * width, LOW + (k + 1) * width


# The blocks handed out last: free when drawn, but perhaps not bound yet by the daemon
# they are for (a fixture draws for two daemons before either starts), so never drawn
# again while they may still be waiting; older ones are bound or given back.
_RECENT = 16
_handed: list[range] = []


def free_block(n_udp: int, n_tcp: int = 0) -> int:
    """The first of ``n_udp`` consecutive free UDP ports, followed by ``n_tcp`` free
    TCP ports, in this worker's range, clear of the blocks this process handed out last."""
    rng = random.Random()
    lo, hi = _worker_range()
    n = n_udp + n_tcp
    for _ in range(200):
        base = rng.randrange(lo, hi - n)
        block = range(base, base + n)
        if any(block.start < r.stop and r.start < block.stop for r in _handed):
            continue
        udp, tcp = range(base, base + n_udp), range(base + n_udp, base + n)
        if all(free(p) for p in udp) and all(free(p, socket.SOCK_STREAM) for p in tcp):
            _handed.append(block)
            del _handed[:-_RECENT]
            return base
    raise AssertionError("no free block of ports found")
