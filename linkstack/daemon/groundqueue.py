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

Plain :mod:`sqlite3` in WAL mode with ``synchronous=FULL``: a committed row
survives the process being killed and the machine losing power; readers (a status
page, a test) do not block the daemon. Every method commits before it returns.
One :class:`GroundQueue` per process and thread.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linkstack.errors import ConfigError

STATES = ("received", "submitted", "answered", "published")
SCHEMA_VERSION = 2  # 2: the answer as published (body), beside the answer as it came down

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
    """The SQLite queue (see the module docstring). ``path`` ":memory:" for tests."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, SCHEMA_VERSION):
                raise ConfigError(
                    "groundqueue",
                    "schema",
                    f"{self.path} has schema version {version}, this linkstack reads "
                    f"1 and {SCHEMA_VERSION}",
                )
            if version == 1:
                self._db.execute("ALTER TABLE queries ADD COLUMN body BLOB")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise ConfigError("groundqueue", "path", f"{self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

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
        self._db.execute(
            "UPDATE queries SET state = 'published' WHERE id = ? AND state = 'answered'",
            (query_id,),
        )

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
