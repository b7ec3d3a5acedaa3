"""The ground client on its own: a fake ground segment, emulated time."""

import pytest

from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from payloads.client import Client, ClientConfig, GroundQueueFullError, QueryRefusedError
from payloads.messages import (
    Ack,
    Answer,
    AnswerChunk,
    ErrorMessage,
    OnboardTimes,
    Params,
    Query,
    decode,
    encode,
)


class FakeGround:
    """Records what the client submits; says whether queries are still on the ground."""

    def __init__(self, view: bool = True) -> None:
        self.view = view
        self.sent: list[tuple[float, object, str | None]] = []
        self.held: set[str] = set()
        self.annotated: list[str] = []
        self.busy: list[tuple[str, str, float | None]] = []
        self.settled_ids: list[tuple[str, str]] = []
        self.full = False
        self.clock = None
        self.due: dict[str, float] = {}  # query id -> when its answer is due

    def submit(self, message, *, target, query_id):
        if self.full and query_id is not None:
            raise GroundQueueFullError("3 queries already wait")
        self.sent.append((self.clock.now(), decode(message), target))

    def refused_busy(self, query_id, satellite, t_s):
        self.busy.append((query_id, satellite, t_s))

    def settled(self, query_id, satellite):
        self.settled_ids.append((query_id, satellite))

    def in_view(self, target):
        return self.view

    def relayed(self, target):
        return False

    def on_ground(self, query_id):
        return query_id in self.held

    def answer_due_t_s(self, query_id):
        return self.due.get(query_id)

    def annotate(self, timeline):
        self.annotated.append(timeline.query_id)
        timeline.first_uplink_t_s = timeline.submit_t_s + 1.0

    def queries(self):
        return [(t, m, tg) for t, m, tg in self.sent if isinstance(m, Query)]

    def acks(self):
        return [(t, m, tg) for t, m, tg in self.sent if isinstance(m, Ack)]


def answer(qid: str, text: str = "42", sat: str = "CS-03") -> bytes:
    times = OnboardTimes(10.0, 11.0, 11.5, 13.0, 13.0, 0.5, 2.0, 10.0)
    return encode(Answer(qid, text, 5, 3, "stop", "fake", "m", False, sat, times))


def run(script, config=None, view=True):
    async def main():
        clock = clk.make_clock(True)
        ground = FakeGround(view)
        ground.clock = clock
        client = Client(ground, clock, config, seed=3)
        try:
            return await script(client, ground, clock)
        finally:
            client.close()

    return clk.run(main)


def test_ask_queues_a_query_and_returns_the_first_answer_with_its_timeline():
    async def script(client, ground, clock):
        await clock.sleep_until(5.0)
        pending = client.submit("hi", Params(max_new_tokens=3), target="CS-03")
        _, query, target = ground.queries()[0]
        assert query.prompt == "hi" and query.submit_t_s == 5.0 and target == "CS-03"
        assert query.params.max_new_tokens == 3
        await clock.sleep_until(20.0)
        client.on_message(answer(pending.id), 20.0, "CS-02")
        await clock.sleep_until(25.0)
        client.on_message(answer(pending.id, "second copy"), 25.0, "CS-02")
        got, timeline = await pending.result()
        await clock.sleep_until(30.0)
        return got, timeline, ground, client

    got, t, ground, client = run(script)
    assert got.text == "42"  # the first copy; the second is dropped
    assert t.submit_t_s == 5.0 and t.answer_on_ground_t_s == 20.0 and t.total_s == 15.0
    assert t.satellite == "CS-03" and t.in_view_at_submit
    assert (
        t.query_on_board_t_s,
        t.inference_start_t_s,
        t.first_token_t_s,
        t.inference_end_t_s,
    ) == (
        10.0,
        11.0,
        11.5,
        13.0,
    )
    assert t.first_uplink_t_s == 6.0 and ground.annotated == [t.query_id]  # the ground's part
    # both copies acknowledged, to the satellite that computed, in batches
    acks = ground.acks()
    assert [tg for _, _, tg in acks] == ["CS-03", "CS-03"]
    assert all(m.ids == (t.query_id,) for _, m, _ in acks)
    assert acks[0][0] == pytest.approx(20.2)
    assert client.stats["answers"] == 1 and client.stats["duplicates"] == 1


def test_acks_are_batched_per_satellite():
    async def script(client, ground, clock):
        ps = [client.submit(f"q{i}") for i in range(3)]
        client.on_message(answer(ps[0].id, sat="CS-01"), 1.0)
        client.on_message(answer(ps[1].id, sat="CS-01"), 1.0)
        client.on_message(answer(ps[2].id, sat="CS-02"), 1.0)
        await clock.sleep_until(5.0)
        return ps, ground

    ps, ground = run(script)
    got = {tg: m.ids for _, m, tg in ground.acks()}
    assert got == {"CS-01": (ps[0].id, ps[1].id), "CS-02": (ps[2].id,)}


def test_an_error_answer_raises_and_is_acknowledged():
    async def script(client, ground, clock):
        pending = client.submit("too long")
        client.on_message(encode(ErrorMessage(pending.id, "prompt_too_long", "9 > 8", "CS-05")), 3)
        with pytest.raises(QueryRefusedError) as err:
            await pending.result()
        await clock.sleep_until(5.0)
        return err.value, ground

    err, ground = run(script)
    assert err.error.code == "prompt_too_long" and err.timeline.error == "prompt_too_long"
    assert not err.timeline.complete
    assert [tg for _, _, tg in ground.acks()] == ["CS-05"]


def test_chunks_arrive_once_and_in_the_iterator_until_the_answer():
    seen = []

    async def script(client, ground, clock):
        pending = client.submit("stream it", stream=True, on_chunk=seen.append)
        for seq in (0, 1, 1, 0, 2):
            client.on_message(encode(AnswerChunk(pending.id, seq, f"c{seq}")), 1.0)
        client.on_message(answer(pending.id, "c0c1c2"), 2.0)
        client.on_message(encode(AnswerChunk(pending.id, 3, "late")), 3.0)
        return [c async for c in pending.chunks()], await pending.result()

    chunks, (got, _) = run(script)
    assert [c.seq for c in chunks] == [0, 1, 2] == [c.seq for c in seen]
    assert got.text == "c0c1c2"


def test_answers_to_no_query_are_kept_apart_and_acknowledged():
    async def script(client, ground, clock):
        client.on_message(encode(ErrorMessage("malformed-CS-01-1", "malformed", "x", "CS-01")), 1)
        client.on_message(b"\xffgarbage", 1.0)
        await clock.sleep_until(2.0)
        return client, ground

    client, ground = run(script)
    assert [e.code for e in client.unsolicited] == ["malformed"]
    assert client.stats["malformed"] == 1
    assert [m.ids for _, m, _ in ground.acks()] == [("malformed-CS-01-1",)]


def test_a_query_that_left_the_ground_and_got_no_answer_is_sent_again():
    config = ClientConfig(retry_after_s=100.0, max_retries=2)

    async def script(client, ground, clock):
        pending = client.submit("lost on a laser link")
        ground.held.add(pending.id)  # still waiting for a pass: no retry
        await clock.sleep_until(150.0)
        assert len(ground.queries()) == 1
        ground.held.clear()
        await clock.sleep_until(10_000.0)
        return [t for t, _, _ in ground.queries()], {m.id for _, m, _ in ground.queries()}

    times, ids = run(script, config)
    assert times == [0.0, 200.0, 400.0] and len(ids) == 1  # doubled interval, then gave up


def test_a_query_whose_answer_is_overdue_is_sent_again_then_not_before_its_new_due():
    """The ground says when the answer is due (at each dispatch, and again when asked);
    the client sends the query again only once that has passed with the query off the
    ground, and says so first (on_send_again)."""
    config = ClientConfig(retry_after_s=1000.0, max_retries=2)
    again = []

    async def script(client, ground, clock):
        client.on_send_again = lambda qid, why: again.append((clock.now(), qid, why))
        pending = client.submit("lost on a laser link")
        ground.held.add(pending.id)  # COP-1 still has it when the answer is due: not lost
        client.answer_due(pending.id, 40.0)
        await clock.sleep_until(50.0)
        ground.held.clear()
        ground.due[pending.id] = 60.0  # it left later than dispatch: due later
        await clock.sleep_until(75.0)  # looked at 70 (40 + 30): past 60, sent again
        client.answer_due(pending.id, 200.0)  # dispatched again, due at 200
        ground.due[pending.id] = 200.0
        await clock.sleep_until(150.0)
        client.on_message(answer(pending.id), 150.0)
        await clock.sleep_until(3000.0)
        return [t for t, _, _ in ground.queries()], pending.id

    times, qid = run(script, config)
    assert times == [0.0, 70.0] and again == [(70.0, qid, "overdue")]


def test_without_the_grounds_estimate_the_flat_retry_stands():
    config = ClientConfig(retry_after_s=100.0, max_retries=1)

    async def script(client, ground, clock):
        pending = client.submit("no estimate")
        client.answer_due(pending.id, 10.0)  # looked at 10: no due known, nothing sent
        await clock.sleep_until(1000.0)
        return [t for t, _, _ in ground.queries()], client.stats

    times, stats = run(script, config)
    assert times == [0.0, 100.0] and stats["resent_overdue"] == 0 and stats["retries"] == 1


def test_a_generation_params_object_is_accepted_and_ids_are_unique():
    from payloads.backends import GenerationParams

    async def script(client, ground, clock):
        a = client.submit("x", GenerationParams(max_new_tokens=7, temperature=0.5, seed=9))
        b = client.submit("y")
        return a, b, ground

    a, b, _ = run(script)
    assert a.id != b.id and a.query.params == Params(7, 0.5, 1.0, False, 9)


def test_the_finished_query_is_handed_over_once_with_the_answer_as_it_came_down():
    """on_result gets each query once, when its first answer (or error) is in, with
    the decoded message and the octets as received: a caller needs no second decode."""
    finished = []

    async def script(client, ground, clock):
        client.on_result = finished.append
        pending = client.submit("hi")
        first = answer(pending.id)
        client.on_message(first, 20.0, "CS-03")
        client.on_message(answer(pending.id, "again"), 25.0, "CS-03")
        client.on_message(answer("not ours"), 26.0, "CS-03")
        return pending, first

    pending, first = run(script)
    assert finished == [pending]
    assert pending.result_message.text == "42" and pending.result_data == first


def test_busy_is_acknowledged_and_handed_back_to_the_ground_and_the_real_answer_is_kept():
    """A busy refusal is not an answer: the client acknowledges it, tells the ground
    (which queues the query again), and keeps waiting; the first real answer, later
    and from another satellite, is the query's answer."""
    finished = []

    async def script(client, ground, clock):
        client.on_result = finished.append
        pending = client.submit("hi")
        client.on_message(encode(ErrorMessage(pending.id, "busy", "16 wait", "CS-01", 2.0)), 3)
        client.on_message(encode(ErrorMessage(pending.id, "busy", "16 wait", "CS-01", 2.0)), 9)
        await clock.sleep_until(10.0)
        assert not pending.done and finished == []
        client.on_message(answer(pending.id, sat="CS-02"), 20.0)
        client.on_message(encode(ErrorMessage(pending.id, "busy", "late", "CS-03", 21.0)), 22)
        got, timeline = await pending.result()
        await clock.sleep_until(30.0)
        return got, timeline, pending, ground, client

    got, timeline, pending, ground, client = run(script)
    assert got.text == "42" and timeline.satellite == "CS-02" and not timeline.error
    assert ground.busy == [(pending.id, "CS-01", 2.0)] * 2  # the ground sorts out copies
    assert ground.settled_ids == [(pending.id, "CS-02")] and finished == [pending]
    assert client.stats["busy"] == 2 and client.stats["answers"] == 1
    assert client.stats["errors"] == 0 and client.stats["duplicates"] == 1
    acked = {(tg, i) for _, m, tg in ground.acks() for i in m.ids}
    assert acked == {("CS-01", pending.id), ("CS-02", pending.id), ("CS-03", pending.id)}


def test_a_query_with_no_answer_by_its_deadline_is_refused_by_the_ground():
    finished = []

    async def script(client, ground, clock):
        client.on_result = finished.append
        waits = client.submit("waits on the ground")
        ground.held.add(waits.id)
        lost = client.submit("left, never answered")
        answered = client.submit("answered in time")
        client.on_message(answer(answered.id), 50.0)
        await clock.sleep_until(99.0)
        assert not waits.done and not lost.done
        await clock.sleep_until(101.0)
        errors = []
        for p in (waits, lost):
            with pytest.raises(QueryRefusedError) as err:
                await p.result()
            errors.append(err.value)
        client.on_message(answer(lost.id), 150.0)  # too late: a duplicate
        return errors, (waits, lost, answered), ground, client

    config = ClientConfig(deadline_s=100.0, retry_after_s=1000.0)
    errors, (waits, lost, answered), ground, client = run(script, config)
    assert [e.error.code for e in errors] == ["deadline_exceeded"] * 2
    assert all(e.error.satellite == "" and e.error.t_s == 100.0 for e in errors)
    assert "still waiting on the ground" in errors[0].error.detail
    assert "left the ground" in errors[1].error.detail
    assert "refused by the ground: deadline_exceeded" in str(errors[0])
    assert errors[0].timeline.error == "deadline_exceeded" and not errors[0].timeline.complete
    assert ground.settled_ids == [(answered.id, "CS-03"), (waits.id, ""), (lost.id, "")]
    assert client.stats["deadline_exceeded"] == 2 and client.stats["duplicates"] == 1
    assert decode(lost.result_data) == lost.result_message  # handed over as octets too


def test_a_full_ground_queue_refuses_a_new_query_on_the_next_turn():
    finished = []

    async def script(client, ground, clock):
        client.on_result = finished.append
        ground.full = True
        pending = client.submit("one too many")
        assert not pending.done and finished == []  # the caller gets its Pending first
        with pytest.raises(QueryRefusedError) as err:
            await pending.result()
        await clock.sleep_until(5.0)
        return err.value, pending, ground, client

    err, pending, ground, client = run(script)
    assert err.error.code == "ground_queue_full" and err.error.satellite == ""
    assert "3 queries already wait" in err.error.detail and finished == [pending]
    assert ground.queries() == [] and ground.acks() == []  # nothing to acknowledge
    assert client.stats["ground_queue_full"] == 1


def test_a_bounded_client_lets_settled_queries_go_and_keeps_their_last_ids():
    """A client that runs for ever (keep_settled): as many queries as it likes, it holds
    those on their way and the ids of the last few settled; a late copy of a remembered
    answer is a duplicate, one of a forgotten answer is acknowledged and counted
    unsolicited, never handed over again."""

    async def script(client, ground, clock):
        handed = []
        client.on_result = lambda p: handed.append(p.id)
        ids = []
        for k in range(50):
            pending = client.submit(f"q{k}")
            ids.append(pending.id)
            client.on_message(answer(pending.id), clock.now(), "CS-03")
            await clock.sleep(1.0)
        on_its_way = client.submit("one more")
        held = client.held()
        with pytest.raises(ConfigError, match="already in use"):  # a remembered id
            client.submit("again", query_id=ids[-1])
        client.on_message(answer(ids[-1]), clock.now(), "CS-03")  # remembered
        client.on_message(answer(ids[0]), clock.now(), "CS-03")  # forgotten
        await clock.sleep(1.0)
        assert not on_its_way.done
        return client, ground, handed, ids, held

    async def bounded(client, ground, clock):
        small = Client(ground, clock, seed=4, keep_settled=3)
        try:
            return await script(small, ground, clock)
        finally:
            small.close()

    client, ground, handed, ids, held = run(bounded)
    assert held == {"pending": 1, "settled_ids": 3, "timelines": 0, "unsolicited": 0}
    assert handed == ids  # each once
    assert client.stats["duplicates"] == 1 and client.stats["unsolicited"] == 1
    assert client.held() == {"pending": 1, "settled_ids": 3, "timelines": 0, "unsolicited": 1}
    assert ids[0] in ground.acks()[-1][1].ids  # the forgotten one's copy is acknowledged


def test_a_client_remembers_every_query_by_default():
    async def script(client, ground, clock):
        for k in range(20):
            pending = client.submit(f"q{k}")
            client.on_message(answer(pending.id), clock.now(), "CS-03")
        await clock.sleep(1.0)
        return client.held()

    assert run(script) == {"pending": 20, "settled_ids": 0, "timelines": 20, "unsolicited": 0}
