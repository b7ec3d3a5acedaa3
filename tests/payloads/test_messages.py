"""Query/answer messages: round trips, and refusal of malformed input naming the field."""

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.errors import DecodeError, EncodeError
from payloads import messages as m

ids = st.text(min_size=1, max_size=64)
times = st.one_of(st.none(), st.floats(0, 1e9, allow_nan=False))
params = st.builds(
    m.Params,
    st.integers(1, 4096),
    st.floats(0, 2),
    st.floats(0.01, 1),
    st.booleans(),
    st.integers(0, 2**63 - 1),
)
onboard = st.builds(m.OnboardTimes, times, times, times, times, times, times, times, times)
messages = st.one_of(
    st.builds(m.Query, ids, st.text(max_size=500), params, st.booleans(), times),
    st.builds(
        m.Answer,
        ids,
        st.text(max_size=500),
        st.integers(0, 10_000),
        st.integers(0, 10_000),
        st.sampled_from(m.FINISH_REASONS),
        st.text(max_size=20),
        st.text(max_size=40),
        st.booleans(),
        st.text(max_size=10),
        onboard,
    ),
    st.builds(m.AnswerChunk, ids, st.integers(0, 10_000), st.text(max_size=100), times),
    st.builds(
        m.ErrorMessage,
        ids,
        st.sampled_from(m.ERROR_CODES),
        st.text(max_size=80),
        st.text(max_size=10),
        times,
    ),
    st.builds(m.Ack, st.lists(ids, max_size=20).map(tuple)),
)


@given(messages)
def test_every_message_round_trips(msg):
    assert m.decode(m.encode(msg)) == msg


def test_messages_are_compact():
    q = m.Query("q-0001", "What is the orbital period at 500 km?", m.Params(64), False, 1234.5)
    # short keys and the shortest exact floats: about 60 octets around the prompt
    assert len(m.encode(q)) - len(q.prompt) < 64


def _raw(**changes):
    body = cbor2.loads(m.encode(m.Query("id1", "hello")))
    for k, v in changes.items():
        if v is ...:
            del body[k]
        else:
            body[k] = v
    return cbor2.dumps(body)


@pytest.mark.parametrize(
    "raw, field",
    [
        (b"\xff\x00", "cbor"),
        (cbor2.dumps([1, 2]), "cbor"),
        (_raw(v=2), "v"),
        (_raw(t="z"), "t"),
        (_raw(pr=...), "pr"),
        (_raw(pr=5), "pr"),
        (_raw(id=""), "id"),
        (_raw(st=1), "st"),  # an int is not a flag
        (
            _raw(pa={"n": True, "T": 0.0, "p": 1.0, "th": False, "s": 0}),
            "pa.n",
        ),  # bool is not a count
        (_raw(pa={"n": 0, "T": 0.0, "p": 1.0, "th": False, "s": 0}), "pa.n"),
        (_raw(pa={"n": 8, "T": 0.0, "p": 1.0, "th": False}), "pa.s"),
        (_raw(pa={"n": 8, "T": 99.0, "p": 1.0, "th": False, "s": 0}), "pa"),
        (_raw(ts=float("nan")), "ts"),
    ],
)
def test_malformed_messages_are_refused_naming_the_field(raw, field):
    with pytest.raises(DecodeError) as err:
        m.decode(raw)
    assert err.value.layer == "msg" and err.value.field == field


def test_size_limits():
    with pytest.raises(DecodeError, match="exceed"):
        m.decode(bytes(m.MAX_MESSAGE_LEN + 1))
    with pytest.raises(EncodeError, match="exceed"):
        m.encode(m.Query("x", "a" * m.MAX_MESSAGE_LEN))


def test_encode_refuses_bad_values():
    with pytest.raises(EncodeError, match="id"):
        m.encode(m.Query("", "prompt"))
    with pytest.raises(EncodeError, match="code"):
        m.encode(m.ErrorMessage("x", "exploded"))
    with pytest.raises(EncodeError, match="not a message"):
        m.encode("a string")


def test_as_dict_for_reports():
    d = m.as_dict(m.Answer("a1", "hi", 3, 1, "stop", "tiny", "qwen3-tiny", True))
    assert d["type"] == "Answer" and d["times"]["ttft_s"] is None
