"""The local SQLite spool: every batch is written here, with its idempotency key and its
exact payload, before it is first sent, so a crash at any point resends the same request.

States of a batch (column `state`):

- `pending`: durable, not sent yet or waiting for a retry after a retryable failure.
- `sending`: an invoke is in flight. A process that finds `sending` rows when it opens the
  spool resends them with the same key and payload: the service answers a repeat with the
  first result (`replayed: true`), so a send that did land is not billed twice.
- `sent`: the service gave its final answer and nothing is left to bill (`ok: true`, or a
  hold it declined, which carries no usage).
- `refused`: `insufficient_tokens` or `customer_not_found`; kept with its payload until
  `retry_refused()` makes it `pending` again (after a top-up).
- `invalid`: `invalid_request`; never retried, kept for a human to read.
- `failed`: any other final refusal (`idempotency_key_reused`, a payload Lambda rejects);
  never retried, kept for a human to read.

Lines recorded by the CLI wait in `pending_lines` until a flush cuts them into batches.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from .actions import add_exact

logger = logging.getLogger("token_meter")

SCHEMA_VERSION = "1"
BUSY_TIMEOUT_S = 10.0
DETAIL_LIMIT = 100  # refused/invalid/failed batches listed by status(), newest first

LineKey = tuple[str, str | None]  # (action, vm_id)


class State(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    REFUSED = "refused"
    INVALID = "invalid"
    FAILED = "failed"


UNFINISHED = (State.PENDING, State.SENDING)
KEPT = (State.REFUSED, State.INVALID, State.FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL,
    action TEXT NOT NULL,
    quantity TEXT NOT NULL,
    vm_id TEXT,
    recorded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    op TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    line_count INTEGER NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'sending', 'sent', 'refused', 'invalid', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_error TEXT,
    reply TEXT
);
CREATE INDEX IF NOT EXISTS batches_by_state ON batches (state, seq);
"""


@dataclass(frozen=True, slots=True)
class NewBatch:
    """A batch about to be spooled: its key, its op and the exact payload to send."""

    key: str
    op: str
    customer_id: str
    payload: Mapping[str, Any]
    line_count: int

    def payload_text(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Batch:
    """A spooled batch as stored: the payload text is sent byte for byte on every attempt."""

    seq: int
    key: str
    op: str
    customer_id: str
    payload_text: str
    line_count: int
    state: State
    attempts: int
    created_at: float
    updated_at: float
    last_error: str | None
    reply_text: str | None

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.payload_text)
        return payload

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for status output."""
        return {
            "key": self.key,
            "op": self.op,
            "customer_id": self.customer_id,
            "state": self.state.value,
            "attempts": self.attempts,
            "line_count": self.line_count,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "last_error": self.last_error,
            "payload": self.payload,
            "reply": json.loads(self.reply_text) if self.reply_text else None,
        }


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    """What the spool holds: counts per state and the batches that need a human or a top-up."""

    counts: dict[str, int]
    pending_lines: int
    buffered_lines: int = 0
    refused: list[Batch] = field(default_factory=list)
    invalid: list[Batch] = field(default_factory=list)
    failed: list[Batch] = field(default_factory=list)

    @property
    def unfinished(self) -> int:
        return sum(self.counts.get(state.value, 0) for state in UNFINISHED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "pending_lines": self.pending_lines,
            "buffered_lines": self.buffered_lines,
            "refused": [batch.to_dict() for batch in self.refused],
            "invalid": [batch.to_dict() for batch in self.invalid],
            "failed": [batch.to_dict() for batch in self.failed],
        }


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")


def _batch(row: sqlite3.Row) -> Batch:
    return Batch(
        seq=row["seq"],
        key=row["key"],
        op=row["op"],
        customer_id=row["customer_id"],
        payload_text=row["payload"],
        line_count=row["line_count"],
        state=State(row["state"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_error=row["last_error"],
        reply_text=row["reply"],
    )


class Spool:
    """One SQLite file (WAL, synchronous=FULL): a committed write survives a crash or power
    loss. One connection shared by a process's threads behind a lock; several processes
    may open the same file (SQLite serializes their writes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,  # autocommit; writes use explicit BEGIN IMMEDIATE
            check_same_thread=False,  # shared by the meter's threads, under self._lock
        )
        self._conn.row_factory = sqlite3.Row
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            logger.warning("spool %s: journal_mode is %s, not wal", self.path, mode)
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        self._create_schema()

    def _create_schema(self) -> None:
        with self._lock:
            # executescript commits on its own; every statement is IF NOT EXISTS.
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', ?)",
                (SCHEMA_VERSION,),
            )

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue, not deadlock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ---- writes ------------------------------------------------------------------------

    def add_line(self, customer_id: str, action: str, quantity: Decimal, vm_id: str | None) -> None:
        """One usage line, durable when this returns (the CLI's `record`)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO pending_lines (customer_id, action, quantity, vm_id, recorded_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (customer_id, action, str(quantity), vm_id, time.time()),
            )

    def cut(
        self,
        customer_id: str,
        buffered: Mapping[LineKey, Decimal],
        build: Callable[[dict[LineKey, Decimal]], Sequence[NewBatch]],
    ) -> list[str]:
        """Spool `buffered` plus the customer's pending lines as batches, in one transaction.

        `build` turns the summed lines into batches (keys and payloads). Returns their keys.
        """
        if not buffered:
            with self._lock:  # the common idle case: no write transaction at all
                waiting = self._conn.execute(
                    "SELECT 1 FROM pending_lines WHERE customer_id = ? LIMIT 1", (customer_id,)
                ).fetchone()
            if waiting is None:
                return []
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, action, quantity, vm_id FROM pending_lines"
                " WHERE customer_id = ? ORDER BY id",
                (customer_id,),
            ).fetchall()
            if not rows and not buffered:
                return []
            lines: dict[LineKey, Decimal] = {}
            for row in rows:
                line_key = (row["action"], row["vm_id"])
                lines[line_key] = add_exact(lines.get(line_key), Decimal(row["quantity"]))
            for line_key, quantity in buffered.items():
                lines[line_key] = add_exact(lines.get(line_key), quantity)
            batches = build(lines)
            self._insert(conn, batches)
            if rows:
                conn.execute(
                    "DELETE FROM pending_lines WHERE customer_id = ? AND id <= ?",
                    (customer_id, rows[-1]["id"]),
                )
            return [batch.key for batch in batches]

    def add(self, batch: NewBatch) -> None:
        """Spool one batch (a hold, renew, settle or release) before it is first sent."""
        with self._write() as conn:
            self._insert(conn, [batch])

    @staticmethod
    def _insert(conn: sqlite3.Connection, batches: Sequence[NewBatch]) -> None:
        now = time.time()
        conn.executemany(
            "INSERT INTO batches (key, op, customer_id, payload, line_count, state,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            [
                (b.key, b.op, b.customer_id, b.payload_text(), b.line_count, now, now)
                for b in batches
            ],
        )

    def claim(self, key: str) -> bool:
        """pending -> sending, counting the attempt; False when someone else took it."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE batches SET state = 'sending', attempts = attempts + 1, updated_at = ?"
                " WHERE key = ? AND state = 'pending'",
                (time.time(), key),
            )
            return cursor.rowcount == 1

    def retry_later(self, key: str, error: str) -> None:
        """sending -> pending after a retryable failure; the payload is untouched."""
        with self._write() as conn:
            conn.execute(
                "UPDATE batches SET state = 'pending', last_error = ?, updated_at = ?"
                " WHERE key = ? AND state = 'sending'",
                (error[:2000], time.time(), key),
            )

    def finish(
        self,
        key: str,
        state: State,
        *,
        reply: Mapping[str, Any] | None,
        error: str | None,
        follow_up: NewBatch | None = None,
    ) -> None:
        """A final answer: store it, and spool `follow_up` (if any) in the same transaction.

        A batch another process already marked sent stays sent."""
        assert state not in UNFINISHED
        reply_text = json.dumps(reply, separators=(",", ":")) if reply is not None else None
        with self._write() as conn:
            conn.execute(
                "UPDATE batches SET state = ?, reply = ?, last_error = ?, updated_at = ?"
                " WHERE key = ? AND state != 'sent'",
                (state.value, reply_text, error[:2000] if error else None, time.time(), key),
            )
            if follow_up is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO batches (key, op, customer_id, payload, line_count,"
                    " state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (
                        follow_up.key,
                        follow_up.op,
                        follow_up.customer_id,
                        follow_up.payload_text(),
                        follow_up.line_count,
                        time.time(),
                        time.time(),
                    ),
                )

    def reclaim_sending(self) -> int:
        """sending -> pending: a send a crashed process never saw the answer to."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE batches SET state = 'pending', updated_at = ? WHERE state = 'sending'",
                (time.time(),),
            )
            return cursor.rowcount

    def retry_refused(self) -> int:
        """refused -> pending (same key, same payload), e.g. after a top-up."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE batches SET state = 'pending', updated_at = ? WHERE state = 'refused'",
                (time.time(),),
            )
            return cursor.rowcount

    def prune_sent(self, older_than_s: float) -> int:
        """Forget sent batches older than `older_than_s`: the spool must not grow forever."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM batches WHERE state = 'sent' AND updated_at < ?",
                (time.time() - older_than_s,),
            )
            return cursor.rowcount

    # ---- reads -------------------------------------------------------------------------

    def next_pending(self) -> Batch | None:
        """The oldest pending batch: batches go out in the order they were spooled, so a
        renew never overtakes the hold it renews."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM batches WHERE state = 'pending' ORDER BY seq LIMIT 1"
            ).fetchone()
        return _batch(row) if row is not None else None

    def unfinished_count(self) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM batches WHERE state IN ('pending', 'sending')"
            ).fetchone()
        return int(row[0])

    def batches(self, state: State | None = None, limit: int = 10_000) -> list[Batch]:
        """Batches in spool order, optionally in one state."""
        with self._lock:
            if state is None:
                rows = self._conn.execute(
                    "SELECT * FROM batches ORDER BY seq LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT * FROM batches WHERE state = ? ORDER BY seq LIMIT ?",
                    (state.value, limit),
                ).fetchall()
        return [_batch(row) for row in rows]

    def status(self) -> SpoolStatus:
        with self._lock:
            counts = {state.value: 0 for state in State}
            for row in self._conn.execute("SELECT state, COUNT(*) FROM batches GROUP BY state"):
                counts[row[0]] = int(row[1])
            pending_lines = int(
                self._conn.execute("SELECT COUNT(*) FROM pending_lines").fetchone()[0]
            )
            kept: dict[State, list[Batch]] = {}
            for state in KEPT:
                rows = self._conn.execute(
                    "SELECT * FROM batches WHERE state = ? ORDER BY seq DESC LIMIT ?",
                    (state.value, DETAIL_LIMIT),
                ).fetchall()
                kept[state] = [_batch(row) for row in rows]
        return SpoolStatus(
            counts=counts,
            pending_lines=pending_lines,
            refused=kept[State.REFUSED],
            invalid=kept[State.INVALID],
            failed=kept[State.FAILED],
        )
