"""The trace: each hop of each query and answer, as the nodes report them.

An observer that only the emulator has (the messages themselves carry the onboard
instants). A hop starts when a node sends a message on a link, with the message's
key (:data:`payloads.messages.MessageKey`, which the node was handed with the
message: nobody decodes a message to follow it), and ends when the far end has the
whole message again; the far end finds the hop by the link and the message's
octets, and learns the key from it, so that a relay passes the key on.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Hashable
from dataclasses import dataclass

from payloads.messages import MessageKey

LinkId = tuple[str, ...]  # ("up", sat), ("down", sat), ("isl", src, dst)

# the keys last forgotten, whose late hops (an answer repeated until the satellite has
# the ground's ack) are not recorded again: minutes of queries at any sensible rate
FORGOTTEN_REMEMBERED = 4096


@dataclass(slots=True, eq=False)  # one record is one hop: identity, not equality
class HopRecord:
    key: MessageKey
    kind: str  # "uplink", "isl", "downlink"
    src: str
    dst: str
    start_t_s: float
    end_t_s: float | None = None
    frames: int = 0  # uplink: CLTUs of the message sent, retransmissions included
    retransmissions: int = 0
    slot: tuple[LinkId, Hashable] | None = None  # where it waits for its end, while open


class Trace:
    """Each hop of each query and answer (see the module docstring).

    A trace keeps what it is told until :meth:`forget` (the ground forgets a query
    once its timeline is filled, so that a long run does not grow); a message
    forgotten is not recorded again while it is among the last ``remembered``
    forgotten (its late copies would otherwise stay for ever). With ``keep`` False it
    keeps nothing (a process where nobody reads it: a satellite daemon)."""

    def __init__(self, keep: bool = True, remembered: int = FORGOTTEN_REMEMBERED) -> None:
        self.keep = keep
        self.remembered = remembered
        self.hops: dict[MessageKey, list[HopRecord]] = defaultdict(list)
        self.copies: Counter[MessageKey] = Counter()
        self._open: dict[tuple[LinkId, Hashable], deque[HopRecord]] = defaultdict(deque)
        self._forgotten: OrderedDict[MessageKey, None] = OrderedDict()

    def start(
        self,
        key: MessageKey | None,
        link: LinkId,
        kind: str,
        src: str,
        dst: str,
        t_s: float,
        message: bytes,
    ) -> HopRecord | None:
        """``message`` (whose key is ``key``; None: not followed) leaves on ``link``."""
        if key is None or not self.keep or key in self._forgotten:
            return None
        slot = (link, message)
        record = HopRecord(key, kind, src, dst, t_s, slot=slot)
        self.hops[key].append(record)
        self._open[slot].append(record)
        return record

    def end(self, link: LinkId, message: bytes, t_s: float) -> HopRecord | None:
        """``message`` is whole at the far end of ``link``: the hop it ends (the oldest
        open one of the same octets on that link), or None if it was not followed."""
        pending = self._open.get((link, message))
        if not pending:
            return None
        record = pending.popleft()
        if not pending:
            del self._open[(link, message)]
        record.end_t_s = t_s
        record.slot = None
        return record

    def count_copy(self, key: MessageKey) -> None:
        """One more copy of an answer left its satellite."""
        if self.keep and key not in self._forgotten:
            self.copies[key] += 1

    def forget(self, *keys: MessageKey) -> None:
        """Drop every hop of these messages, those still open included, and record
        none of theirs from now on (see the class docstring)."""
        for key in keys:
            if self.keep:
                self._forgotten[key] = None
                self._forgotten.move_to_end(key)
                while len(self._forgotten) > self.remembered:
                    self._forgotten.popitem(last=False)
            for record in self.hops.pop(key, ()):
                if record.slot is not None:
                    pending = self._open.get(record.slot)
                    if pending is not None:
                        pending.remove(record)
                        if not pending:
                            del self._open[record.slot]
            self.copies.pop(key, None)

    def held(self) -> dict[str, int]:
        """How much it holds (what must stay bounded in a process that runs for ever)."""
        return {
            "messages": len(self.hops),
            "open_hops": sum(len(pending) for pending in self._open.values()),
            "copies": len(self.copies),
            "forgotten": len(self._forgotten),
        }

    def chain(self, key: MessageKey, last: HopRecord, first_src_kind: str) -> list[HopRecord]:
        """``last`` and the hops that brought the same message to its source, back to a
        hop whose source is of kind ``first_src_kind`` ("ground" or "sat:NAME")."""
        chain = [last]
        done = [(h, h.end_t_s) for h in self.hops[key] if h.end_t_s is not None]
        while not chain[0].src.startswith(first_src_kind):
            head = chain[0]
            before = [
                (h, end) for h, end in done if h.dst == head.src and end <= head.start_t_s + 1e-9
            ]
            if not before:
                break
            chain.insert(0, max(before, key=lambda pair: pair[1])[0])
        return chain
