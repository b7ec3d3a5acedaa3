"""Query/answer messages: round trips, and strict refusal of malformed input naming the
field; a newer version's keys ignored."""

import dataclasses

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
onboard = st.builds(m.OnboardTimes, *[times] * 9)  # version 2's power_asked_t_s too
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
        st.text(max_size=40),  # version 3's timing source ("" left out)
        st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),  # and battery charge
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
        (_raw(v=0), "v"),
        (_raw(v=-1), "v"),
        (_raw(v=True), "v"),
        (_raw(v=...), "v"),
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


def _canonical(msg, **changes):
    """The canonical octets of ``msg`` with changes to its map (``...`` deletes a key;
    a dict value for ``pa``/``ti`` is merged into theirs)."""
    body = cbor2.loads(m.encode(msg))
    for k, v in changes.items():
        if v is ...:
            del body[k]
        elif isinstance(v, dict) and isinstance(body.get(k), dict):
            body[k] = {**body[k], **v}
        else:
            body[k] = v
    return cbor2.dumps(body, canonical=True)


QUERY = m.Query("q1", "hello", m.Params(64, 0.5, 0.9), True, 12.25)
ANSWER = m.Answer("q1", "4", 3, 1, "stop", "tiny", "t", False, "CS-01", m.OnboardTimes(ttft_s=0.5))
CHUNK = m.AnswerChunk("q1", 0, "4", 13.0)
ERROR = m.ErrorMessage("q1", "busy", "later", "CS-01", 14.5)


@pytest.mark.parametrize(
    "raw, field, rule",
    [
        # no octet after the map
        (m.encode(QUERY) + b"\x00", "length", "1 octets after"),
        (m.encode(m.Ack(("a",))) + m.encode(m.Ack(("b",))), "length", "octets after"),
        # no unknown key, at the top level or in the nested maps
        (_canonical(QUERY, zz=1), "zz", "unknown key"),
        (_canonical(QUERY, pa={"k": 40}), "pa.k", "unknown key"),
        (_canonical(ANSWER, ti={"xx": 1.5}), "ti.xx", "unknown key"),
        (_canonical(m.Ack(("a",)), id="a"), "id", "unknown key"),
        # no key left out: the encoder always writes ts (null when not known)
        (_canonical(QUERY, ts=...), "ts", "missing"),
        (_canonical(CHUNK, ts=...), "ts", "missing"),
        (_canonical(ERROR, ts=...), "ts", "missing"),
        (_canonical(ANSWER, sa=...), "sa", "missing"),
        (_canonical(ERROR, de=...), "de", "missing"),
        # an onboard time not known is left out, never null
        (_canonical(ANSWER, ti={"qc": None}), "ti.qc", "left out"),
        # the canonical encoding: shortest floats and integers, sorted keys
        (_canonical(QUERY, ts=12), "ts", "canonical"),  # an int time
        (_canonical(ANSWER, ti={"ttft": 1}), "ti.ttft", "canonical"),
        (_canonical(QUERY, pa={"T": 0}), "pa.T", "canonical"),
        (cbor2.dumps(cbor2.loads(m.encode(QUERY))), "pa.T", "f93800 is written"),  # float64
        (m.encode(ANSWER).replace(b"bpt\x03", b"bpt\x18\x03"), "pt", "1803 where 03"),
        (b"\xb8\x07" + m.encode(QUERY)[1:], "cbor", "map's length"),
        (m.encode(QUERY).replace(b"bpa\xa5", b"bpa\xb8\x05"), "pa", "map's length"),
        (m.encode(QUERY).replace(b"bpr", b"\x78\x02pr"), "pr", "key's length"),
        (cbor2.dumps(dict(sorted(cbor2.loads(m.encode(QUERY)).items()))), "id", "comes before"),
        (b"\xd8\x1c" + m.encode(QUERY), "cbor", "a tag before the map"),
        (m.encode(CHUNK).replace(b"bsq\x00", b"bsq\xc2\x41\x00"), "sq", "canonical"),  # bignum
        # well-formed CBOR only: no duplicate key, no indefinite length, text keys
        (b"\xa2av\x01av\x01", "cbor", "Duplicate"),
        (b"\xbfav\x01\xff", "cbor", "indefinite"),
        (b"\xa1\x01\x01", "cbor", "text string"),
        # the same rules in a newer version's fields
        (_canonical(QUERY, v=m.VERSION + 1, ts=...), "ts", "missing"),
        (_canonical(ANSWER, v=m.VERSION + 1, ti={"qc": None}), "ti.qc", "left out"),
        (_canonical(QUERY, v=m.VERSION + 1, pa={"n": 0}), "pa.n", "must be in"),
        (_canonical(QUERY, v=m.VERSION + 1, t="x"), "t", "unknown message type"),
        (_canonical(QUERY, v=m.VERSION + 1) + b"\x00", "length", "octets after"),
    ],
)
def test_strict_decoding_names_the_field(raw, field, rule):
    with pytest.raises(DecodeError) as err:
        m.decode(raw)
    assert (err.value.layer, err.value.field) == ("msg", field)
    assert rule in err.value.rule


@given(messages, st.binary(min_size=1, max_size=8))
def test_octets_after_a_message_are_refused(msg, extra):
    with pytest.raises(DecodeError) as err:
        m.decode(m.encode(msg) + extra)
    assert err.value.field == "length"


@given(messages)
def test_a_non_canonical_encoding_is_refused_or_is_the_canonical_one(msg):
    # cbor2 without canonical: float64 floats, keys in the order given (reversed here)
    body = cbor2.loads(m.encode(msg))
    for raw in (cbor2.dumps(body), cbor2.dumps(dict(reversed(body.items())))):
        if raw == m.encode(msg):
            assert m.decode(raw) == msg
        else:
            with pytest.raises(DecodeError):
                m.decode(raw)


@given(messages, st.integers(m.VERSION + 1, 1000))
def test_a_newer_version_may_add_keys_which_are_ignored(msg, version):
    body = cbor2.loads(m.encode(msg))
    body |= {"v": version, "zz": [1, {"x": None}], "new": "text"}
    for nested in ("pa", "ti"):
        if nested in body:
            body[nested]["top_k"] = 40
    for raw in (cbor2.dumps(body, canonical=True), cbor2.dumps(body)):  # canonical or not
        assert m.decode(raw) == msg
        # re-encoded, it is the message of our version that was understood (in the
        # lowest version that carries it)
        assert cbor2.loads(m.encode(m.decode(raw)))["v"] == m.version_of(msg)


def test_a_newer_version_reads_numbers_as_numbers():
    # an int where our version writes a float: refused in ours (not canonical), read
    # as the number it is in a newer one
    assert m.decode(_canonical(QUERY, v=m.VERSION + 1, ts=12, pa={"T": 0})) == m.Query(
        "q1", "hello", m.Params(64, 0.0, 0.9), True, 12.0
    )


def test_encode_writes_times_and_parameters_as_floats():
    # so that an int handed to the encoder still reads back to the same octets
    msg = m.Query("q1", "hi", m.Params(64, 0, 1), False, 5)
    raw = m.encode(msg)
    body = cbor2.loads(raw)
    assert [type(x) for x in (body["ts"], body["pa"]["T"], body["pa"]["p"])] == [float] * 3
    assert m.encode(m.decode(raw)) == raw
    answer = m.Answer("a", "x", 1, 1, "stop", "b", "m", False, times=m.OnboardTimes(ttft_s=2))
    raw = m.encode(answer)
    assert cbor2.loads(raw)["ti"] == {"ttft": 2.0} and m.encode(m.decode(raw)) == raw


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda kids: (
            st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_any_cbor_is_decoded_or_refused_cleanly(value):
    raw = cbor2.dumps(value)
    try:
        msg = m.decode(raw)
    except DecodeError:
        return
    assert m.encode(msg) == raw


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


# -- version 2: the power model's instant --------------------------------------------------

POWERED = m.Answer(
    "q1", "4", 3, 1, "stop", "tiny", "t", False, "CS-01",
    m.OnboardTimes(query_complete_t_s=10.0, inference_start_t_s=70.5, power_asked_t_s=10.25),
)  # fmt: skip


def test_an_answer_with_a_power_wait_is_version_2_and_without_one_stays_version_1():
    assert cbor2.loads(m.encode(ANSWER))["v"] == 1  # today's octets, unchanged
    body = cbor2.loads(m.encode(POWERED))
    assert body["v"] == 2 and body["ti"]["pw"] == 10.25
    assert m.decode(m.encode(POWERED)) == POWERED


def test_a_version_1_peer_reads_a_version_2_answer_without_its_power_instant(monkeypatch):
    raw = m.encode(POWERED)
    monkeypatch.setattr(m, "VERSION", 1)  # this decoder as version 1 had it
    old_view = m.decode(raw)  # a newer version: pw is a key it does not know, ignored
    assert old_view.times.power_asked_t_s is None
    assert old_view == dataclasses.replace(
        POWERED, times=dataclasses.replace(POWERED.times, power_asked_t_s=None)
    )
    with pytest.raises(DecodeError) as err:  # but in a message that says version 1, refused
        m.decode(_canonical(POWERED, v=1))
    assert err.value.field == "ti.pw" and "unknown key in a version-1" in err.value.rule


@pytest.mark.parametrize(
    "raw, field, rule",
    [
        (_canonical(POWERED, v=0), "v", "not supported"),
        # version 2 written for what version 1 carries: not what encode writes
        (_canonical(ANSWER, v=2), "v", "canonical"),
        (_canonical(POWERED, ti={"pw": None}), "ti.pw", "left out"),
    ],
)
def test_versions_are_decoded_exactly(raw, field, rule):
    with pytest.raises(DecodeError) as err:
        m.decode(raw)
    assert err.value.field == field and rule in err.value.rule


# -- version 3: what timed the inference legs ------------------------------------------------

MODELLED = dataclasses.replace(POWERED, timing_source="modelled: reference-744/qwen3-8b/int8")


def test_an_answer_with_a_timing_source_is_version_3_and_says_it():
    body = cbor2.loads(m.encode(MODELLED))
    assert body["v"] == 3 and body["tm"] == "modelled: reference-744/qwen3-8b/int8"
    assert m.decode(m.encode(MODELLED)) == MODELLED
    assert MODELLED.inference_timing == "modelled: reference-744/qwen3-8b/int8"
    # the host's stopwatch is said by leaving it out: the octets of versions 1 and 2
    assert "tm" not in cbor2.loads(m.encode(POWERED)) and cbor2.loads(m.encode(ANSWER))["v"] == 1
    assert ANSWER.inference_timing == m.HOST_TIMING == "host stopwatch"


def test_a_version_2_peer_reads_a_version_3_answer_without_its_timing_source(monkeypatch):
    raw = m.encode(MODELLED)
    monkeypatch.setattr(m, "VERSION", 2)  # this decoder as version 2 had it
    assert m.decode(raw) == POWERED  # tm: a key it does not know, ignored; pw still read
    with pytest.raises(DecodeError) as err:  # but in a message that says version 2, refused
        m.decode(_canonical(MODELLED, v=2))
    assert err.value.field == "tm" and "unknown key in a version-2" in err.value.rule


@pytest.mark.parametrize(
    "raw, field, rule",
    [
        # version 3 written for what version 2 carries: not what encode writes
        (_canonical(POWERED, v=3), "v", "canonical"),
        (_canonical(MODELLED, tm=""), "tm", "1..200"),
        (_canonical(MODELLED, tm=7), "tm", "expected str"),
        (_canonical(MODELLED, tm="x" * 201), "tm", "1..200"),
    ],
)
def test_version_3_is_decoded_exactly(raw, field, rule):
    with pytest.raises(DecodeError) as err:
        m.decode(raw)
    assert err.value.field == field and rule in err.value.rule


def test_a_timing_source_too_long_is_refused_when_encoding():
    with pytest.raises(EncodeError, match="timing_source"):
        m.encode(dataclasses.replace(MODELLED, timing_source="x" * 201))


def test_an_answer_with_a_battery_charge_is_version_3():
    charged = dataclasses.replace(POWERED, battery_wh=152.25)
    body = cbor2.loads(m.encode(charged))
    assert body["v"] == 3 and body["bw"] == 152.25 and "tm" not in body
    assert m.decode(m.encode(charged)) == charged
    both = dataclasses.replace(MODELLED, battery_wh=0.0)  # an empty battery is said
    assert cbor2.loads(m.encode(both))["bw"] == 0.0 and m.decode(m.encode(both)) == both
    for raw, rule in (
        (_canonical(charged, bw=None), "left out"),
        (_canonical(charged, bw="full"), "expected int/float"),
    ):
        with pytest.raises(DecodeError) as err:
            m.decode(raw)
        assert err.value.field == "bw" and rule in err.value.rule
