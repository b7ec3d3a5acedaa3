"""The trace: hops found by link and octets, the key learnt from the hop, and memory
given back when a query is forgotten."""

from __future__ import annotations

from linkstack.runtime.trace import Trace

UP = ("up", "CS-01")
ISL = ("isl", "CS-01", "CS-02")
DOWN = ("down", "CS-01")


def test_a_hop_ends_by_its_link_and_octets_and_tells_its_key():
    trace = Trace()
    first = trace.start(("q", "a"), UP, "uplink", "ground:X", "sat:CS-01", 1.0, b"query a")
    trace.start(("q", "b"), UP, "uplink", "ground:X", "sat:CS-01", 1.5, b"query b")
    again = trace.start(("q", "a"), UP, "uplink", "ground:X", "sat:CS-01", 2.0, b"query a")
    assert trace.end(ISL, b"query a", 3.0) is None  # another link
    assert trace.end(UP, b"query z", 3.0) is None  # octets nobody sent
    hop = trace.end(UP, b"query a", 3.0)
    assert hop is first and hop.key == ("q", "a") and hop.end_t_s == 3.0
    assert trace.end(UP, b"query a", 4.0) is again  # the copies in the order they left
    assert trace.start(None, UP, "uplink", "g", "s", 5.0, b"an ack") is None


def test_a_forgotten_query_leaves_nothing_behind():
    trace = Trace()
    trace.start(("q", "a"), UP, "uplink", "ground:X", "sat:CS-01", 1.0, b"query a")
    trace.end(UP, b"query a", 1.5)
    trace.start(("q", "a"), ISL, "isl", "sat:CS-01", "sat:CS-02", 1.6, b"query a")  # lost
    trace.count_copy(("a", "a"))
    trace.start(("q", "b"), UP, "uplink", "ground:X", "sat:CS-01", 2.0, b"query b")
    trace.forget(("q", "a"), ("a", "a"))
    assert ("q", "a") not in trace.hops and ("a", "a") not in trace.copies
    assert trace.end(ISL, b"query a", 3.0) is None  # its open hop went too
    assert trace.end(UP, b"query b", 3.0) is not None  # the others stay


def test_a_trace_that_keeps_nothing_records_nothing():
    trace = Trace(keep=False)
    assert trace.start(("q", "a"), UP, "uplink", "g", "s", 1.0, b"query a") is None
    trace.count_copy(("a", "a"))
    assert not trace.hops and not trace.copies and trace.end(UP, b"query a", 2.0) is None


def test_the_late_copies_of_a_forgotten_answer_are_not_recorded_again():
    trace = Trace()
    trace.start(("a", "a"), DOWN, "downlink", "sat:CS-01", "ground:X", 1.0, b"answer a")
    trace.end(DOWN, b"answer a", 1.5)
    trace.forget(("q", "a"), ("a", "a"))
    # the satellite repeats the answer until it has the ground's ack
    trace.count_copy(("a", "a"))
    assert trace.start(("a", "a"), DOWN, "downlink", "sat:CS-01", "g", 2.0, b"answer a") is None
    assert trace.held() == {"messages": 0, "open_hops": 0, "copies": 0, "forgotten": 2}


def test_a_trace_remembers_a_bounded_number_of_forgotten_keys():
    trace = Trace(remembered=3)
    for n in range(10):
        key = ("a", f"q{n}")
        trace.start(key, DOWN, "downlink", "sat:CS-01", "ground:X", n, f"answer {n}".encode())
        trace.forget(key)
    assert trace.held() == {"messages": 0, "open_hops": 0, "copies": 0, "forgotten": 3}
    # the oldest forgotten may be recorded again, the last three may not
    assert trace.start(("a", "q0"), DOWN, "downlink", "s", "g", 20.0, b"answer 0") is not None
    assert trace.start(("a", "q9"), DOWN, "downlink", "s", "g", 20.0, b"answer 9") is None
