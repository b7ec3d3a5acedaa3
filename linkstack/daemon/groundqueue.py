"""The ground daemon's memory of queries: one SQLite row per query, from receipt to answer.

A query is written here as soon as the ground daemon receives it (before the MQTT
broker is acknowledged), so that nothing submitted is lost when the daemon stops,
crashes or is killed; its answer is written here as soon as it comes down (before
the satellite is acknowledged), so that a restarted daemon neither loses it nor
asks for it again; and it is marked published once the broker has it.

States of a row (:data:`STATES`), in order:

- ``received``: taken from MQTT, not yet handed to mission control;
- ``submitted``: handed to mission control (queued for a pass, or on its way);
- ``answered``: the answer (or the satellite's refusal) is here, not yet on MQTT;
- ``published``: the answer went out on MQTT.

On restart the daemon hands every ``received`` or ``submitted`` row to mission
control again with the same id (:meth:`GroundQueue.unanswered`): the onboard service
runs an id once and re-sends an answer it has not had acknowledged, and the ground
keeps the first answer of each id (:meth:`GroundQueue.record_answer` refuses a
second), so a query is answered exactly once. ``answered`` rows are published
again (:meth:`GroundQueue.unpublished`).

A row's ``id`` is the ground's key of the query: the id the client gave on the
un-scoped query topic, or ``<user>/<id>`` for a query on a client's own topic
(:func:`linkstack.daemon.mqtt.scoped_id`; an un-scoped id never holds '/'), so that
two clients' ids never meet in the one ``UNIQUE`` column. The schema is the same.

Plain :mod:`sqlite3` in WAL mode with ``synchronous=FULL``: a committed row
survives the process being killed and the machine losing power; readers (a status
page, a test) do not block the daemon. Every method commits before it returns.
One :class:`GroundQueue` per process and thread.

**Never lost without a word.** Opening a queue file (:class:`GroundQueue`):

1. takes the file's lock (:class:`QueueLock`: ``flock`` on ``FILE.lock`` beside it,
   held until the queue is closed or the process ends, ``SIGKILL`` included), so
   that a second ground daemon on the same file is refused;
2. checks the file (:func:`inspect`): a zero-length file, a file that is not an
   SQLite database, a torn write-ahead log, a file shorter than its header says, a
   file that fails ``PRAGMA integrity_check``, a database of another application or
   of a newer schema, a table that is not the queue's. Each is a
   :class:`~linkstack.errors.ConfigError` (``ground.queue: FILE: what is wrong;
   how to go on``): the daemon refuses to start rather than start empty over a
   file it cannot read (a zero-length file exists: it is refused too);
3. with ``recover=True`` (``linkstack daemon --queue-recover``), a damaged file is
   salvaged instead (:func:`salvage`): the file (and its ``-wal``, ``-shm``) is
   copied aside as ``FILE.damaged-N``, every row SQLite can still read is copied,
   row by row, into a new file that replaces it, and :class:`Recovery` says how
   many rows were kept and which were lost (the ids of lost rows when the id index
   still has them). A file of another application or a newer schema is never
   replaced;
4. a new queue is made whole in ``FILE.new`` and renamed into place, so that a
   zero-length or half-made file at ``FILE`` is never one of ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linkstack.errors import ConfigError

STATES = ("received", "submitted", "answered", "published")
SCHEMA_VERSION = 2  # 2: the answer as published (body), beside the answer as it came down
APPLICATION_ID = 0x4C4B5351  # "LKSQ" in the SQLite header: a linkstack ground queue
KEY = "ground.queue"  # the scenario key (and --queue) that names the file, in errors

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    prompt       TEXT NOT NULL,
    params       TEXT NOT NULL,          -- JSON: max_new_tokens, temperature, ...
    stream       INTEGER NOT NULL,
    target       TEXT,                   -- a satellite name, or NULL: any
    client       TEXT,                   -- who asked (free text from the request)
    state        TEXT NOT NULL CHECK (state IN ('received','submitted','answered','published')),
    received_t_s REAL NOT NULL,          -- scenario seconds when the daemon took it
    submits      INTEGER NOT NULL DEFAULT 0,
    kind         TEXT,                   -- 'answer' or 'error', once answered
    answer       BLOB,                   -- the message as it came down (CBOR)
    answer_t_s   REAL,
    timeline     TEXT,                   -- JSON of the timeline, once answered
    body         BLOB                    -- the answer as published (JSON), once answered
);
CREATE INDEX IF NOT EXISTS queries_state ON queries (state, seq);
"""


@dataclass(frozen=True)
class QueryRecord:
    """One row."""

    id: str
    prompt: str
    params: dict[str, Any]
    stream: bool
    target: str | None
    client: str | None
    state: str
    received_t_s: float
    submits: int = 0
    kind: str | None = None
    answer: bytes | None = None
    answer_t_s: float | None = None
    timeline: dict[str, Any] | None = None
    body: bytes | None = None
    seq: int = 0


class GroundQueue:
    """The SQLite queue (see the module docstring). ``path`` ":memory:" for tests.

    ``recover``: salvage a damaged file instead of refusing it (:attr:`recovery`
    then says what was kept and lost)."""

    def __init__(self, path: str | Path, *, recover: bool = False) -> None:
        self.path = str(path)
        self.recovery: Recovery | None = None
        self._lock: QueueLock | None = None
        if self.path == ":memory:":
            self._db = _configure(sqlite3.connect(self.path, isolation_level=None), self.path)
            return
        file = Path(self.path)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(KEY, self.path, f"cannot make its folder: {exc}") from None
        self._lock = QueueLock(file)
        try:
            problem = inspect(file)
            if problem is not None:
                if not (recover and problem.recoverable):
                    raise problem.error(file, recover)
                self.recovery = salvage(file, problem)
            if not file.exists():
                _create(file)
            db = sqlite3.connect(self.path, isolation_level=None)
            try:
                self._db = _configure(db, self.path)
            except BaseException:
                db.close()
                raise
        except OSError as exc:  # a folder not writable, a full disk
            self._lock.release()
            raise ConfigError(KEY, self.path, f"cannot read or write it: {exc}") from None
        except BaseException:
            self._lock.release()
            raise

    def close(self) -> None:
        """Close the database, then give the lock back (the process's end does too)."""
        self._db.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> GroundQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------
    def add(
        self,
        query_id: str,
        prompt: str,
        params: dict[str, Any],
        *,
        stream: bool = False,
        target: str | None = None,
        client: str | None = None,
        t_s: float = 0.0,
    ) -> bool:
        """Store a new query (state ``received``); False if the id is already here
        (a repeated request: the row is left as it is)."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO queries (id, prompt, params, stream, target, client, state, "
            "received_t_s) VALUES (?, ?, ?, ?, ?, ?, 'received', ?)",
            (query_id, prompt, json.dumps(params), int(stream), target, client, t_s),
        )
        return cur.rowcount == 1

    def mark_submitted(self, query_id: str) -> None:
        """Handed to mission control (again): ``received`` or ``submitted`` -> ``submitted``."""
        self._db.execute(
            "UPDATE queries SET state = 'submitted', submits = submits + 1 "
            "WHERE id = ? AND state IN ('received', 'submitted')",
            (query_id,),
        )

    def record_answer(
        self,
        query_id: str,
        kind: str,
        answer: bytes,
        t_s: float,
        timeline: dict[str, Any] | None = None,
        body: bytes | None = None,
    ) -> bool:
        """Keep the first answer of a query (``kind`` "answer" or "error"): ``answer``
        as it came down, ``body`` as it is to be published; False if it already has
        one, or if the id is unknown."""
        if kind not in ("answer", "error"):
            raise ConfigError("groundqueue", "kind", f"must be 'answer' or 'error', got {kind!r}")
        cur = self._db.execute(
            "UPDATE queries SET state = 'answered', kind = ?, answer = ?, answer_t_s = ?, "
            "timeline = ?, body = ? WHERE id = ? AND state IN ('received', 'submitted')",
            (
                kind,
                answer,
                t_s,
                json.dumps(timeline) if timeline is not None else None,
                body,
                query_id,
            ),
        )
        return cur.rowcount == 1

    def mark_published(self, query_id: str) -> None:
        """The broker has the answer (its PUBACK came): ``answered`` -> ``published``."""
        self._db.execute(
            "UPDATE queries SET state = 'published' WHERE id = ? AND state = 'answered'",
            (query_id,),
        )

    def mark_for_publication(self, query_id: str) -> bool:
        """Publish a published answer once more (a client asked for it again):
        ``published`` -> ``answered``; False if the row is not published."""
        cur = self._db.execute(
            "UPDATE queries SET state = 'answered' WHERE id = ? AND state = 'published'",
            (query_id,),
        )
        return cur.rowcount == 1

    # -- reading ---------------------------------------------------------------------------
    def get(self, query_id: str) -> QueryRecord | None:
        row = self._db.execute("SELECT * FROM queries WHERE id = ?", (query_id,)).fetchone()
        return None if row is None else _record(row)

    def unanswered(self) -> list[QueryRecord]:
        """``received`` and ``submitted`` rows, oldest first: what to (re)submit."""
        return self._where("state IN ('received', 'submitted')")

    def unpublished(self) -> list[QueryRecord]:
        """``answered`` rows, oldest first: what to publish."""
        return self._where("state = 'answered'")

    def timelines_answered_since(self, t_s: float) -> list[dict[str, Any]]:
        """The timeline of every row answered at or after ``t_s``, in the order the
        answers came (the report of a run)."""
        rows = self._db.execute(
            "SELECT timeline FROM queries WHERE answer_t_s >= ? AND timeline IS NOT NULL "
            "ORDER BY answer_t_s, seq",
            (t_s,),
        )
        return [json.loads(timeline) for (timeline,) in rows]

    def all(self) -> list[QueryRecord]:
        return self._where("1")

    def counts(self) -> dict[str, int]:
        """Rows per state (every state present, 0 when none)."""
        out = dict.fromkeys(STATES, 0)
        for state, n in self._db.execute("SELECT state, COUNT(*) FROM queries GROUP BY state"):
            out[state] = n
        return out

    def _where(self, condition: str) -> list[QueryRecord]:
        rows = self._db.execute(f"SELECT * FROM queries WHERE {condition} ORDER BY seq")
        return [_record(r) for r in rows]


def _record(row: sqlite3.Row) -> QueryRecord:
    return QueryRecord(
        id=row["id"],
        prompt=row["prompt"],
        params=json.loads(row["params"]),
        stream=bool(row["stream"]),
        target=row["target"],
        client=row["client"],
        state=row["state"],
        received_t_s=row["received_t_s"],
        submits=row["submits"],
        kind=row["kind"],
        answer=bytes(row["answer"]) if row["answer"] is not None else None,
        answer_t_s=row["answer_t_s"],
        timeline=json.loads(row["timeline"]) if row["timeline"] is not None else None,
        body=bytes(row["body"]) if row["body"] is not None else None,
        seq=row["seq"],
    )


# -- opening a file ------------------------------------------------------------------------

COLUMNS = (
    "seq",
    "id",
    "prompt",
    "params",
    "stream",
    "target",
    "client",
    "state",
    "received_t_s",
    "submits",
    "kind",
    "answer",
    "answer_t_s",
    "timeline",
    "body",
)
COLUMNS_1 = COLUMNS[:-1]  # schema 1: no body
_SQLITE_MAGIC = b"SQLite format 3\x00"
_WAL_MAGICS = (0x377F0682, 0x377F0683)  # little-endian, big-endian checksums
_WAL_VERSION = 3007000
_PROBE_BEYOND = 1000  # salvage: rows looked for past the last seq known


def _configure(db: sqlite3.Connection, path: str) -> sqlite3.Connection:
    """The daemon's connection: WAL, ``synchronous=FULL``, the schema (a schema-1 queue
    gains its body column, in one transaction)."""
    db.row_factory = sqlite3.Row
    try:
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise _newer(version).error(Path(path), recover=False)
        db.execute("BEGIN IMMEDIATE")
        columns = {r[1] for r in db.execute("PRAGMA table_info(queries)")}
        if columns and "body" not in columns:
            db.execute("ALTER TABLE queries ADD COLUMN body BLOB")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise ConfigError(KEY, path, f"SQLite cannot use it: {exc}") from None
    return db


def _create(file: Path) -> None:
    """A new, empty queue at ``file``: made whole beside it, then renamed into place."""
    tmp = file.with_name(file.name + ".new")
    for leftover in (tmp, *_sidecars(tmp)):
        leftover.unlink(missing_ok=True)
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    finally:
        db.close()
    _fsync(tmp)
    os.replace(tmp, file)
    _fsync(file.parent)


def _sidecars(file: Path) -> tuple[Path, Path]:
    """SQLite's write-ahead log and its index, beside ``file``."""
    return file.with_name(file.name + "-wal"), file.with_name(file.name + "-shm")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class QueueLock:
    """One ground daemon per queue file: an exclusive ``flock`` on ``FILE.lock``.

    ``flock`` rather than SQLite's ``locking_mode=EXCLUSIVE``: the kernel drops it when
    the process ends however it ends (``SIGKILL`` included: no stale lock to clear by
    hand), a second daemon is told at once (not after a busy timeout, as "database is
    locked"), and readers of the queue (a status script, the tests, ``sqlite3``) are
    not locked out as an exclusive SQLite lock would. A file of its own, beside the
    queue, so that it never meets SQLite's POSIX locks on the queue file (closing any
    descriptor of that file would drop those). The lock file holds the pid of its
    holder, for the message; it is left in place (removing it would let two daemons
    lock two different files)."""

    def __init__(self, file: Path) -> None:
        self.path = file.with_name(file.name + ".lock")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(
                KEY, str(file), f"cannot open its lock file {self.path}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "a process"
            os.close(fd)
            if isinstance(exc, BlockingIOError):
                raise ConfigError(
                    KEY,
                    str(file),
                    f"in use by another ground daemon ({holder} holds {self.path}): one "
                    "ground daemon per queue file; give this one its own --queue (or "
                    "ground.queue), or stop the other first",
                ) from None
            raise ConfigError(KEY, str(file), f"cannot lock {self.path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with the last descriptor
            self._fd = None


@dataclass(frozen=True)
class Problem:
    """What is wrong with a queue file; ``recoverable``: :func:`salvage` may replace it
    (otherwise ``how`` says what to do)."""

    what: str
    recoverable: bool = True
    how: str = ""

    def error(self, file: Path, recover: bool) -> ConfigError:
        if self.recoverable:
            how = (
                f"nothing was changed. To go on, move it aside (with its -wal and -shm "
                f"files, if any): the ground then starts a new, empty queue; or start the "
                f"ground with --queue-recover: it copies every row it can still read into a "
                f"new {file.name}, keeps this one beside it as {file.name}.damaged-N, and "
                f"says how many rows it kept and lost"
            )
        else:
            how = f"nothing was changed{' (--queue-recover does not replace it)' * recover}. "
            how += self.how
        return ConfigError(KEY, str(file), f"{self.what}; {how}")


def _newer(version: int) -> Problem:
    return Problem(
        f"written by a newer linkstack (queue schema {version}; this one reads 1 to "
        f"{SCHEMA_VERSION})",
        recoverable=False,
        how="Run the linkstack that wrote it, or give this one another --queue",
    )


_NOT_OURS = "Check --queue (or ground.queue): it must name a ground queue, or a new file"


def inspect(file: Path) -> Problem | None:
    """What is wrong with the queue file ``file`` (None: nothing; a missing file is a
    new queue). Reads only: the file and its ``-wal`` are left as found (SQLite may
    rebuild its ``-shm``, the index of the log, as any reader does)."""
    wal, shm = _sidecars(file)
    wal_size = wal.stat().st_size if wal.exists() else 0
    if not file.exists():
        if wal_size:
            return Problem(
                f"there is no queue file, yet its write-ahead log {wal.name} ({wal_size} "
                "octets) is there: the file was moved or deleted without it",
                recoverable=False,
                how=f"Put the queue file back, or move {wal.name} and {shm.name} aside to "
                "start a new queue",
            )
        return None
    if not file.is_file():
        return Problem("not a regular file", recoverable=False, how=_NOT_OURS)
    size = file.stat().st_size
    if size == 0:
        return Problem(
            "an empty file (0 octets): a queue on disk is never empty, so either its "
            "rows were lost (a truncation, a failed copy) or it is not a queue"
        )
    with open(file, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        return Problem(f"not an SQLite database ({size} octets beginning {header[:16]!r})")
    page_size = struct.unpack_from(">H", header, 16)[0]
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return Problem(f"its SQLite header is damaged (page size {page_size})")
    (user_version,) = struct.unpack_from(">i", header, 60)
    (application_id,) = struct.unpack_from(">I", header, 68)
    if application_id not in (0, APPLICATION_ID):
        return Problem(
            f"an SQLite database of another application (application_id "
            f"0x{application_id:08x}), not a ground queue",
            recoverable=False,
            how=_NOT_OURS,
        )
    if user_version > SCHEMA_VERSION:
        return _newer(user_version)
    if wal_size:
        damage = _wal_damage(wal, page_size)
        if damage:
            return Problem(
                f"its write-ahead log {wal.name} is damaged ({damage}): SQLite would drop "
                "every row written since its last checkpoint without a word"
            )
    else:  # without a log, the file holds every page its header counts
        if size % page_size:
            return Problem(
                f"truncated or damaged: {size} octets is not a whole number of "
                f"{page_size}-octet pages"
            )
        change, pages = struct.unpack_from(">II", header, 24)
        (valid_for,) = struct.unpack_from(">I", header, 92)
        if pages and change == valid_for and size < pages * page_size:
            return Problem(
                f"truncated: {size} octets, where its header counts {pages} pages of "
                f"{page_size} ({pages * page_size} octets)"
            )
    return _sqlite_problem(file)


def _sqlite_problem(file: Path) -> Problem | None:
    """SQLite's own look (read-only: no checkpoint, the log stays): integrity, schema
    version, the queue's table and columns."""
    # without a log, immutable: SQLite then makes no -wal or -shm beside the file
    mode = "mode=ro" if _sidecars(file)[0].exists() else "immutable=1"
    try:
        db = sqlite3.connect(f"file:{_uri_path(file)}?{mode}", uri=True)
    except sqlite3.DatabaseError as exc:
        return Problem(f"SQLite cannot open it ({exc})")
    try:
        result = [str(r[0]) for r in db.execute("PRAGMA integrity_check(5)")]
        if result != ["ok"]:
            return Problem(f"it fails SQLite's integrity check: {'; '.join(result[:3])}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            return _newer(version)
        tables = sorted(
            r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        )
        if "queries" not in tables:
            has = f"its tables: {', '.join(tables)}" if tables else "it has no tables"
            return Problem(
                f"an SQLite database without the queue's table 'queries' ({has}): not a "
                "ground queue",
                recoverable=False,
                how=_NOT_OURS,
            )
        columns = tuple(r[1] for r in db.execute("PRAGMA table_info(queries)"))
        if set(columns) not in (set(COLUMNS), set(COLUMNS_1)):
            return Problem(
                f"its table 'queries' has other columns ({', '.join(columns)}): not a "
                "ground queue of linkstack",
                recoverable=False,
                how=_NOT_OURS,
            )
    except sqlite3.DatabaseError as exc:
        return Problem(f"SQLite cannot read it ({exc})")
    finally:
        db.close()
    return None


def _uri_path(file: Path) -> str:
    from urllib.parse import quote  # noqa: PLC0415

    return quote(str(file.resolve()))


def _wal_damage(wal: Path, page_size: int) -> str | None:
    """What is wrong with the header of a write-ahead log (None: nothing). SQLite
    ignores a log whose header does not check, and every transaction in it."""
    with open(wal, "rb") as f:
        header = f.read(32)
    if len(header) < 32:
        return f"{len(header)} octets, less than its 32-octet header"
    magic, version, wal_page_size, _, _, _, sum1, sum2 = struct.unpack(">8I", header)
    if magic not in _WAL_MAGICS:
        return f"magic number 0x{magic:08x}"
    if version != _WAL_VERSION:
        return f"format {version}"
    if wal_page_size != page_size:
        return f"pages of {wal_page_size} octets in a database of {page_size}"
    words = struct.unpack((">" if magic & 1 else "<") + "6I", header[:24])
    s1 = s2 = 0
    for i in range(0, 6, 2):
        s1 = (s1 + words[i] + s2) & 0xFFFFFFFF
        s2 = (s2 + words[i + 1] + s1) & 0xFFFFFFFF
    if (s1, s2) != (sum1, sum2):
        return "its header checksum does not match"
    return None


# -- salvage -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """What :func:`salvage` did: ``kept`` rows copied into the new file; ``lost``: rows
    known to have been in the damaged file (by their seq, which the queue never
    reuses nor deletes) that could not be read, with ``lost_ids`` the ids of those
    the id index still named; ``readable`` False: SQLite could not read the file at
    all (how many rows it held is unknown)."""

    problem: str
    original: Path  # the damaged file, kept (with -wal and -shm copies if it had them)
    kept: int
    lost: int
    lost_ids: tuple[str, ...] = ()
    readable: bool = True
    states: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        lost = f"{self.lost} lost" if self.readable else "how many were lost is unknown"
        return f"kept {self.kept} rows, {lost}; the damaged file is {self.original}"


def salvage(file: Path, problem: Problem) -> Recovery:
    """Copy every row that can be read from the damaged queue ``file`` into a new
    file that replaces it; the damaged one is kept as ``FILE.damaged-N``."""
    original = _free_name(file)
    for src, dst in zip((file, *_sidecars(file)), (original, *_sidecars(original)), strict=True):
        if src.exists():
            shutil.copy2(src, dst)
            _fsync(dst)
    with tempfile.TemporaryDirectory(prefix=f".{file.name}.salvage-", dir=file.parent) as tmp:
        work = Path(tmp) / "work.sqlite"
        for src, dst in zip((file, _sidecars(file)[0]), (work, _sidecars(work)[0]), strict=True):
            if src.exists():
                shutil.copyfile(src, dst)
        found = _read_rows(work)
    new = file.with_name(file.name + ".new")
    kept = _write_rows(new, found)
    for sidecar in _sidecars(file):  # a stale log must never meet the new file
        sidecar.unlink(missing_ok=True)
    os.replace(new, file)
    _fsync(file.parent)
    lost_seqs = [s for s in range(1, found.max_seq + 1) if s not in kept]
    states: dict[str, int] = dict.fromkeys(STATES, 0)
    for seq in kept:
        states[found.rows[seq]["state"]] += 1
    return Recovery(
        problem=problem.what,
        original=original,
        kept=len(kept),
        lost=len(lost_seqs),
        lost_ids=tuple(found.ids[s] for s in lost_seqs if s in found.ids),
        readable=found.readable,
        states=states,
    )


def _free_name(file: Path) -> Path:
    """``FILE.damaged-N``, the first N free."""
    n = 1
    while file.with_name(f"{file.name}.damaged-{n}").exists():
        n += 1
    return file.with_name(f"{file.name}.damaged-{n}")


@dataclass
class _Found:
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> a valid row
    ids: dict[int, str] = field(default_factory=dict)  # seq -> id, from the id index
    max_seq: int = 0  # the highest seq known to have been used
    readable: bool = False


def _read_rows(work: Path) -> _Found:
    """Every valid row SQLite can read from ``work``: a scan in seq order, then, past
    a damaged page, each seq one by one (a lookup by rowid goes round damaged leaves)."""
    found = _Found()
    try:
        db = sqlite3.connect(work, isolation_level=None)
    except sqlite3.DatabaseError:
        return found
    db.row_factory = sqlite3.Row
    try:
        with _quiet():  # a file shorter than its header says: read the pages it has
            db.execute("PRAGMA writable_schema=ON")
        with _quiet():
            columns = [r[1] for r in db.execute("PRAGMA table_info(queries)")]
            found.readable = bool(columns)
        if not found.readable:
            return found
        complete = False
        with _quiet():
            for row in db.execute("SELECT * FROM queries ORDER BY seq"):
                _keep(found, dict(row))
            complete = True
        for sql in (
            "SELECT seq FROM sqlite_sequence WHERE name = 'queries'",
            "SELECT max(seq) FROM queries",
        ):
            with _quiet():
                value = db.execute(sql).fetchone()
                if value is not None and isinstance(value[0], int):
                    found.max_seq = max(found.max_seq, value[0])
        for order in ("ASC", "DESC"):  # both ends, round a damaged page of the index
            with _quiet():
                for seq, query_id in db.execute(
                    "SELECT seq, id FROM queries INDEXED BY sqlite_autoindex_queries_1 "
                    f"ORDER BY id {order}"
                ):
                    if isinstance(seq, int) and isinstance(query_id, str):
                        found.ids[seq] = query_id
        found.max_seq = max(found.max_seq, *found.rows, *found.ids, 0)
        if not complete:
            for seq in range(1, found.max_seq + _PROBE_BEYOND + 1):
                if seq in found.rows:
                    continue
                with _quiet():
                    row = db.execute("SELECT * FROM queries WHERE seq = ?", (seq,)).fetchone()
                    if row is not None:
                        _keep(found, dict(row))
            found.max_seq = max(found.max_seq, *found.rows, 0)
    finally:
        db.close()
    return found


def _quiet() -> contextlib.suppress:
    """What a damaged page stops, and no more."""
    return contextlib.suppress(sqlite3.DatabaseError)


def _keep(found: _Found, row: dict[str, Any]) -> None:
    if _valid(row):
        found.rows[row["seq"]] = row
        found.ids[row["seq"]] = row["id"]


def _valid(row: dict[str, Any]) -> bool:
    """A row as the queue writes it (a damaged page can hand back anything)."""
    try:
        ok = (
            isinstance(row["seq"], int)
            and isinstance(row["id"], str)
            and bool(row["id"])
            and isinstance(row["prompt"], str)
            and isinstance(json.loads(row["params"]), dict)
            and row["stream"] in (0, 1)
            and row["state"] in STATES
            and isinstance(row["received_t_s"], int | float)
            and isinstance(row["submits"], int)
            and row["kind"] in (None, "answer", "error")
            and (row["answer"] is None or isinstance(row["answer"], bytes))
            and (row["timeline"] is None or isinstance(json.loads(row["timeline"]), dict))
            and (row.get("body") is None or isinstance(row.get("body"), bytes))
        )
    except (KeyError, TypeError, ValueError):
        return False
    if ok and row["state"] in ("answered", "published"):
        ok = row["kind"] is not None and row["answer"] is not None
    return ok


def _write_rows(new: Path, found: _Found) -> set[int]:
    """A new queue file holding ``found``'s rows; the seqs written."""
    for leftover in (new, *_sidecars(new)):
        leftover.unlink(missing_ok=True)
    db = sqlite3.connect(new, isolation_level=None)
    written: set[int] = set()
    try:
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute("BEGIN")
        for seq in sorted(found.rows):
            row = found.rows[seq]
            values = [row.get(c) for c in COLUMNS]
            cur = db.execute(
                f"INSERT OR IGNORE INTO queries ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(COLUMNS))})",
                values,
            )
            if cur.rowcount == 1:
                written.add(seq)
        if found.max_seq:  # seqs of lost rows are not handed out again
            db.execute("DELETE FROM sqlite_sequence WHERE name = 'queries'")
            db.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('queries', ?)", (found.max_seq,)
            )
        db.execute("COMMIT")
    finally:
        db.close()
    _fsync(new)
    return written
