"""linkstack.daemon.groundqueue: the SQLite queue of the ground daemon."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from linkstack.daemon.groundqueue import STATES, GroundQueue
from linkstack.errors import ConfigError

SCHEMA_1 = """
CREATE TABLE queries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, prompt TEXT NOT NULL,
    params TEXT NOT NULL, stream INTEGER NOT NULL, target TEXT, client TEXT,
    state TEXT NOT NULL, received_t_s REAL NOT NULL, submits INTEGER NOT NULL DEFAULT 0,
    kind TEXT, answer BLOB, answer_t_s REAL, timeline TEXT
);
"""
PARAMS = {"max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0, "thinking": False, "seed": 1}


def test_a_query_goes_through_its_states_once(tmp_path):
    with GroundQueue(tmp_path / "q.sqlite") as q:
        assert q.add("a", "prompt a", PARAMS, stream=True, target="CS-01", client="me", t_s=5.0)
        assert not q.add("a", "other", PARAMS)  # the same id again: kept as it was
        rec = q.get("a")
        assert rec is not None
        assert (rec.state, rec.prompt, rec.params, rec.stream, rec.target, rec.client) == (
            "received",
            "prompt a",
            PARAMS,
            True,
            "CS-01",
            "me",
        )
        assert rec.received_t_s == 5.0 and rec.submits == 0
        q.mark_submitted("a")
        q.mark_submitted("a")  # submitted again (a restart)
        assert q.get("a").state == "submitted" and q.get("a").submits == 2
        assert q.record_answer("a", "answer", b"\xa1cbor", 9.5, {"total_s": 4.5})
        assert not q.record_answer("a", "answer", b"second", 10.0)  # the first one stays
        rec = q.get("a")
        assert (rec.state, rec.kind, rec.answer, rec.answer_t_s, rec.timeline) == (
            "answered",
            "answer",
            b"\xa1cbor",
            9.5,
            {"total_s": 4.5},
        )
        q.mark_submitted("a")  # too late: an answered query is not submitted again
        assert q.get("a").state == "answered"
        assert [r.id for r in q.unpublished()] == ["a"]
        q.mark_published("a")
        assert q.get("a").state == "published" and q.unpublished() == []
        assert not q.record_answer("nobody", "error", b"x", 1.0)
        assert q.get("nobody") is None


def test_unanswered_and_counts_keep_the_order_of_arrival():
    with GroundQueue(":memory:") as q:
        for i in "cab":
            q.add(i, f"p{i}", PARAMS)
        q.mark_submitted("a")
        q.record_answer("b", "error", b"e", 1.0)
        assert [r.id for r in q.unanswered()] == ["c", "a"]
        assert q.counts() == {"received": 1, "submitted": 1, "answered": 1, "published": 0}
        assert set(q.counts()) == set(STATES)
        assert [r.id for r in q.all()] == ["c", "a", "b"]
        with pytest.raises(ConfigError, match="kind"):
            q.record_answer("c", "maybe", b"", 0.0)


def test_rows_survive_a_killed_process(tmp_path):
    """A process that stores a query and is killed at once (no close): the row is there."""
    path = tmp_path / "q.sqlite"
    code = (
        "import os, signal\n"
        "from linkstack.daemon.groundqueue import GroundQueue\n"
        f"q = GroundQueue({str(path)!r})\n"
        "q.add('k1', 'p', {}, t_s=1.0)\n"
        "q.mark_submitted('k1')\n"
        "q.add('k2', 'p', {}, t_s=2.0)\n"
        "q.record_answer('k2', 'answer', b'A', 3.0)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    assert proc.returncode == -9
    with GroundQueue(path) as q:
        assert q.get("k1").state == "submitted"
        assert q.get("k2").state == "answered" and q.get("k2").answer == b"A"


def test_wal_mode_lets_a_reader_look_while_the_daemon_writes(tmp_path):
    path = tmp_path / "q.sqlite"
    with GroundQueue(path) as q:
        q.add("a", "p", PARAMS)
        reader = sqlite3.connect(path)
        try:
            assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            reader.execute("BEGIN")
            assert reader.execute("SELECT state FROM queries").fetchall() == [("received",)]
            q.mark_submitted("a")  # not blocked by the open read transaction
            reader.execute("COMMIT")
            assert reader.execute("SELECT state FROM queries").fetchall() == [("submitted",)]
        finally:
            reader.close()


def test_a_file_that_is_not_a_queue_is_refused(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(ConfigError, match="groundqueue: path"):
        GroundQueue(bad)
    newer = tmp_path / "newer.sqlite"
    con = sqlite3.connect(newer)
    con.execute("PRAGMA user_version=99")
    con.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        GroundQueue(newer)


def test_a_queue_of_schema_1_is_read_and_its_answers_kept(tmp_path):
    """A queue written by a linkstack before schema 2 (no published body) opens, keeps
    its rows, and takes bodies from then on."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)  # the table as schema 1 had it: no body column
    db.executescript(SCHEMA_1)
    db.execute(
        "INSERT INTO queries (id, prompt, params, stream, state, received_t_s, kind, answer, "
        "answer_t_s, timeline) VALUES ('a', 'prompt a', '{}', 0, 'answered', 1.0, 'answer', "
        "X'a1617601', 2.0, '{\"total_s\": 1.0}')"
    )
    db.execute(
        "INSERT INTO queries (id, prompt, params, stream, state, received_t_s) "
        "VALUES ('b', 'prompt b', '{}', 0, 'submitted', 3.0)"
    )
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with GroundQueue(path) as q:
        old = q.get("a")
        assert old is not None and old.answer == b"\xa1\x61v\x01" and old.body is None
        assert q.record_answer("b", "error", b"cbor", 4.0, None, body=b'{"type":"error"}')
        new = q.get("b")
        assert new is not None and new.body == b'{"type":"error"}'
        assert [r.id for r in q.unpublished()] == ["a", "b"]
