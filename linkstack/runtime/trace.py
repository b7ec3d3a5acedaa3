"""The trace: each hop of each query and answer, as the nodes report them."""

from __future__ import annotations

import functools
from collections import Counter, defaultdict, deque
from dataclasses import dataclass

from linkstack.errors import DecodeError
from payloads.messages import Answer, ErrorMessage, Query, decode

# -- what happened to each message ----------------------------------------------------------


@dataclass(slots=True)
class HopRecord:
    key: tuple[str, str]
    kind: str  # "uplink", "isl", "downlink"
    src: str
    dst: str
    t_start: float
    t_end: float | None = None
    frames: int = 0  # uplink: CLTUs of the message sent, retransmissions included
    retransmissions: int = 0


class Trace:
    """Each hop of each query and answer, as the nodes report them (an observer that
    only the emulator has; the messages themselves carry the onboard instants)."""

    def __init__(self) -> None:
        self.hops: dict[tuple[str, str], list[HopRecord]] = defaultdict(list)
        self.copies: Counter[tuple[str, str]] = Counter()
        self._open: dict[tuple, deque[HopRecord]] = defaultdict(deque)

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def key(message: bytes) -> tuple[str, str] | None:
        """("q", id) for a query, ("a", id) for an answer or an error, else None."""
        try:
            msg = decode(message)
        except DecodeError:
            return None
        if isinstance(msg, Query):
            return ("q", msg.id)
        if isinstance(msg, Answer | ErrorMessage):
            return ("a", msg.id)
        return None

    def start(
        self, key: tuple[str, str] | None, link: tuple, kind: str, src: str, dst: str, t_s: float
    ) -> HopRecord | None:
        if key is None:
            return None
        record = HopRecord(key, kind, src, dst, t_s)
        self.hops[key].append(record)
        self._open[(key, link)].append(record)
        return record

    def end(self, key: tuple[str, str] | None, link: tuple, t_s: float) -> HopRecord | None:
        if key is None:
            return None
        pending = self._open.get((key, link))
        if not pending:
            return None
        record = pending.popleft()
        record.t_end = t_s
        return record

    def chain(self, key: tuple[str, str], last: HopRecord, first_src_kind: str) -> list[HopRecord]:
        """``last`` and the hops that brought the same message to its source, back to a
        hop whose source is of kind ``first_src_kind`` ("ground" or "sat:NAME")."""
        chain = [last]
        done = [h for h in self.hops[key] if h.t_end is not None]
        while not chain[0].src.startswith(first_src_kind):
            head = chain[0]
            before = [h for h in done if h.dst == head.src and h.t_end <= head.t_start + 1e-9]
            if not before:
                break
            chain.insert(0, max(before, key=lambda h: h.t_end))
        return chain
