"""SQLite backend: the embedded default, one file shared by every process on a machine."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .store import Doc, StateStore, StateUnavailable, T, Transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, row TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_ts ON ledger (ts);
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL);
"""

# How long a writer waits for the lock before the store counts as unavailable. 100 processes
# updating at once each hold it for well under a millisecond.
BUSY_TIMEOUT_SECONDS = 10.0


class SqliteStore(StateStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = f"sqlite:{path}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so a transaction is exactly one transact().
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
            if not _has_schema(self._db):
                self._db.executescript(_SCHEMA)
            if os.name == "posix":
                os.chmod(path, 0o600)  # the ledger says who spent what
        except (sqlite3.Error, OSError) as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc

    def transact(self, keys: list[str], fn: Transaction[T]) -> T:
        try:
            self._db.execute("BEGIN IMMEDIATE")  # take the write lock now: no read-modify-write race
            try:
                current: dict[str, Doc | None] = {key: None for key in keys}
                marks = ",".join("?" * len(keys))
                for key, value in self._db.execute(f"SELECT key, value FROM kv WHERE key IN ({marks})", keys):
                    current[key] = json.loads(value)
                writes, result = fn(current)
                for key, doc in writes.items():
                    if doc is None:
                        self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
                    else:
                        self._db.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) "
                                         "DO UPDATE SET value = excluded.value", (key, json.dumps(doc)))
                self._db.execute("COMMIT")
                return result
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc

    def get(self, key: str) -> Doc | None:
        try:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc
        return json.loads(row[0]) if row else None

    def append_ledger(self, row: Mapping[str, Any]) -> None:
        try:
            self._db.execute("INSERT INTO ledger (ts, row) VALUES (?, ?)",
                             (row.get("ts", time.time()), json.dumps(row)))
        except sqlite3.Error as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc

    def ledger_rows(self, since: float | None = None) -> list[dict[str, Any]]:
        try:
            cursor = self._db.execute("SELECT row FROM ledger WHERE ts >= ? ORDER BY id", (since or 0.0,))
            return [json.loads(row) for (row,) in cursor]
        except sqlite3.Error as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc

    def ledger_after(self, cursor: int) -> tuple[list[dict[str, Any]], int, bool]:
        # One writer at a time appends with increasing ids, so no row can appear below a seen id.
        try:
            last = self._db.execute("SELECT coalesce(max(id), 0) FROM ledger").fetchone()[0]
            restarted = last < cursor
            cursor = 0 if restarted else cursor
            rows = self._db.execute("SELECT id, row FROM ledger WHERE id > ? ORDER BY id", (cursor,)).fetchall()
        except sqlite3.Error as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc
        return [json.loads(row) for _, row in rows], (rows[-1][0] if rows else cursor), restarted

    def scan(self, prefix: str) -> dict[str, Doc]:
        try:
            # A range on the primary key, not LIKE (whose wildcards a key may contain).
            found = self._db.execute("SELECT key, value FROM kv WHERE key >= ? AND key < ?",
                                     (prefix, prefix + "\U0010ffff")).fetchall()
        except sqlite3.Error as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc
        return {key: json.loads(value) for key, value in found}

    def cache_get(self, key: str) -> dict[str, Any] | None:
        try:
            row = self._db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc
        return json.loads(row[0]) if row else None

    def cache_put(self, key: str, value: Mapping[str, Any]) -> None:
        try:
            self._db.execute("INSERT INTO cache (key, value, created) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                             "SET value = excluded.value, created = excluded.created",
                             (key, json.dumps(value), time.time()))
        except sqlite3.Error as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc

    def close(self) -> None:
        self._db.close()


def _has_schema(db: sqlite3.Connection) -> bool:
    # Skip the DDL (which takes the write lock) when another process already created the tables.
    count = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('kv', 'ledger', 'cache')")
    return count.fetchone()[0] == 3
