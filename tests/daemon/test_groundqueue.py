"""linkstack.daemon.groundqueue: the SQLite queue of the ground daemon."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from dataclasses import astuple
from pathlib import Path

import pytest

from linkstack.daemon.groundqueue import APPLICATION_ID, STATES, GroundQueue, inspect
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


def test_the_timelines_answered_since_an_instant_come_in_the_order_of_the_answers():
    with GroundQueue(":memory:") as q:
        for i in "abcd":
            q.add(i, f"p{i}", PARAMS)
        q.record_answer("c", "answer", b"c", 5.0, {"query_id": "c"})
        q.record_answer("a", "error", b"a", 12.0, {"query_id": "a"})
        q.record_answer("b", "answer", b"b", 11.0, {"query_id": "b"})
        q.record_answer("d", "answer", b"d", 15.0)  # a row of schema 1: no timeline
        assert q.timelines_answered_since(10.0) == [{"query_id": "b"}, {"query_id": "a"}]
        assert [t["query_id"] for t in q.timelines_answered_since(0.0)] == ["c", "b", "a"]


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


def test_an_answered_row_is_published_once_more_only_when_asked(tmp_path):
    with GroundQueue(tmp_path / "q.sqlite") as q:
        q.add("a", "p", PARAMS)
        assert not q.mark_for_publication("a")  # not answered: nothing to publish again
        q.record_answer("a", "answer", b"A", 1.0)
        assert not q.mark_for_publication("a")  # answered: already waiting for the outbox
        q.mark_published("a")
        assert q.mark_for_publication("a") and q.get("a").state == "answered"
        assert [r.id for r in q.unpublished()] == ["a"]


# -- the file: lock, checks, salvage -----------------------------------------------------------

ROWS = 120  # about 30 pages of 4 KiB: damage in one place leaves most of them


def make_queue(path: Path, rows: int = ROWS) -> dict[str, tuple]:
    """A closed queue of ``rows`` rows in every state; its rows as tuples, by id."""
    with GroundQueue(path) as q:
        for i in range(rows):
            qid = f"q{i:03d}"
            q.add(qid, f"prompt {i} " + "x" * 800, PARAMS, target="CS-01", t_s=float(i))
            if i % 4 >= 1:
                q.mark_submitted(qid)
            if i % 4 >= 2:
                q.record_answer(qid, "answer", b"\xa1cbor", i + 0.5, {"total_s": 0.5}, b"{}")
            if i % 4 == 3:
                q.mark_published(qid)
        return {r.id: astuple(r) for r in q.all()}


def garbage(where: str):
    """8 KiB of garbage over the file: in its middle, or over its last pages."""

    def damage(path: Path) -> None:
        size = path.stat().st_size
        at = (size // 2) // 4096 * 4096 if where == "middle" else size - 8192
        with open(path, "r+b") as f:
            f.seek(at)
            f.write(random.Random(7).randbytes(8192))

    return damage


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 3 * 4096)


def empty(path: Path) -> None:
    path.write_bytes(b"")


def text(path: Path) -> None:
    path.write_text("not a queue\n" * 100)


def newer_schema(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=9")
    db.commit()
    db.close()


def other_application(path: Path) -> None:
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (text)")
    db.commit()
    db.close()


def other_columns(path: Path) -> None:
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE queries (id, prompt)")
    db.commit()
    db.close()


def foreign_id(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id=1234")
    db.commit()
    db.close()


# damage -> what the refusal says; True: --queue-recover may replace the file
DAMAGES = {
    "zero-length": (empty, "an empty file (0 octets)", True),
    "garbage-middle": (garbage("middle"), "SQLite", True),
    "garbage-last-page": (garbage("end"), "SQLite", True),
    "truncated": (truncate, "truncated: ", True),
    "not-sqlite": (text, "not an SQLite database", True),
    "newer-schema": (newer_schema, "newer linkstack (queue schema 9", False),
    "other-tables": (other_application, "without the queue's table 'queries'", False),
    "other-columns": (other_columns, "other columns (id, prompt)", False),
    "other-application": (foreign_id, "application_id 0x000004d2", False),
}


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix != ".lock"}


@pytest.mark.parametrize("case", list(DAMAGES))
def test_a_damaged_queue_is_refused_and_left_as_it_was(tmp_path, case):
    damage, what, recoverable = DAMAGES[case]
    path = tmp_path / "q.sqlite"
    make_queue(path)
    damage(path)
    before = listing(tmp_path)
    with pytest.raises(ConfigError) as info:
        GroundQueue(path)
    message = str(info.value)
    assert message.startswith(f"ground.queue: {path}: ") and what in message, message
    assert ("--queue-recover" in message) is recoverable, message
    assert listing(tmp_path) == before  # nothing written, no -wal or -shm made
    if not recoverable:
        with pytest.raises(ConfigError, match="--queue-recover does not replace it"):
            GroundQueue(path, recover=True)
        assert listing(tmp_path) == before


@pytest.mark.parametrize("case", ["garbage-middle", "garbage-last-page", "truncated"])
def test_recover_keeps_every_row_it_can_read_and_names_the_lost(tmp_path, case):
    damage = DAMAGES[case][0]
    path = tmp_path / "q.sqlite"
    rows = make_queue(path)
    damage(path)
    damaged = path.read_bytes()
    with GroundQueue(path, recover=True) as q:
        rec = q.recovery
        assert rec is not None and rec.readable
        kept = {r.id: astuple(r) for r in q.all()}
        assert q.add("new", "p", PARAMS)
        assert q.get("new").seq == ROWS + 1  # a lost row's seq is not handed out again
    assert kept and all(rows[i] == row for i, row in kept.items())  # each as it was
    assert rec.kept == len(kept) and rec.kept + rec.lost == ROWS
    assert 0 < rec.lost < ROWS // 4
    assert set(rec.lost_ids) <= set(rows) - set(kept)
    assert rec.states == {s: sum(1 for r in kept.values() if r[6] == s) for s in STATES}
    assert rec.original == tmp_path / "q.sqlite.damaged-1"
    assert rec.original.read_bytes() == damaged
    assert inspect(path) is None  # the new file is sound


@pytest.mark.parametrize("case", ["zero-length", "not-sqlite"])
def test_recover_from_a_file_sqlite_cannot_read_keeps_it_and_says_so(tmp_path, case):
    path = tmp_path / "q.sqlite"
    make_queue(path, 3)
    DAMAGES[case][0](path)
    damaged = path.read_bytes()
    with GroundQueue(path, recover=True) as q:
        assert q.all() == []
        rec = q.recovery
    assert rec is not None and (rec.kept, rec.readable) == (0, False)
    assert "how many were lost is unknown" in rec.summary()
    assert rec.original.read_bytes() == damaged
    with GroundQueue(path, recover=True) as q:  # sound now: nothing more to do
        assert q.recovery is None


def test_recover_reads_the_rows_still_in_the_log_of_a_killed_process(tmp_path):
    """A daemon killed leaves rows in the -wal; damage in the file: they are kept."""
    path = tmp_path / "q.sqlite"
    rows = make_queue(path)
    code = (
        "import os, signal\n"
        "from linkstack.daemon.groundqueue import GroundQueue\n"
        f"q = GroundQueue({str(path)!r})\n"
        "q.add('late', 'p', {}, t_s=1.0)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == -9
    assert Path(f"{path}-wal").stat().st_size > 0
    garbage("middle")(path)
    with pytest.raises(ConfigError, match="SQLite"):
        GroundQueue(path)
    with GroundQueue(path, recover=True) as q:
        assert q.get("late") is not None
        assert q.recovery.kept + q.recovery.lost == len(rows) + 1
    assert Path(f"{q.recovery.original}-wal").exists()  # the log kept beside the copy


def test_a_damaged_log_is_refused(tmp_path):
    path = tmp_path / "q.sqlite"
    code = (
        "import os, signal\n"
        "from linkstack.daemon.groundqueue import GroundQueue\n"
        f"q = GroundQueue({str(path)!r})\n"
        "q.add('in-the-log', 'p', {}, t_s=1.0)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == -9
    wal = Path(f"{path}-wal")
    with open(wal, "r+b") as f:
        f.seek(16)  # the salts: the header's checksum no longer holds
        f.write(b"\xff" * 8)
    with pytest.raises(ConfigError, match=r"write-ahead log q\.sqlite-wal is damaged"):
        GroundQueue(path)
    path.rename(tmp_path / "moved.sqlite")
    with pytest.raises(ConfigError, match="there is no queue file, yet its write-ahead log"):
        GroundQueue(path)  # a log without its file: never a new queue over it


def test_one_queue_per_file_and_the_lock_goes_with_the_process(tmp_path):
    path = tmp_path / "q.sqlite"
    first = GroundQueue(path)
    with pytest.raises(ConfigError, match=rf"in use by another ground daemon \(pid {os.getpid()}"):
        GroundQueue(path)
    first.close()
    GroundQueue(path).close()  # closed: free again
    code = (
        "import os, signal, sys\n"
        "from linkstack.daemon.groundqueue import GroundQueue\n"
        f"q = GroundQueue({str(path)!r})\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(ConfigError, match=f"pid {holder.pid} holds"):
            GroundQueue(path)
    finally:
        holder.kill()  # SIGKILL: no clean-up of its own
        holder.wait()
    GroundQueue(path).close()


def test_a_new_queue_is_made_whole_before_it_has_its_name(tmp_path):
    path = tmp_path / "new" / "q.sqlite"
    with GroundQueue(path) as q:
        assert q.all() == []
    header = path.read_bytes()[:100]
    assert header[68:72] == APPLICATION_ID.to_bytes(4, "big")
    assert sorted(p.name for p in path.parent.iterdir()) == ["q.sqlite", "q.sqlite.lock"]


def test_a_queue_where_none_can_be_is_a_config_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match=r"ground\.queue: .*cannot make its folder"):
        GroundQueue(tmp_path / "a-file" / "q.sqlite")
    (tmp_path / "folder.sqlite").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        GroundQueue(tmp_path / "folder.sqlite")
