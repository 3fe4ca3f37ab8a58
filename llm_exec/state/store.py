"""The state store interface: a few atomic primitives shared by every process (and machine).

Policies (circuit breaker, rate limits, budgets) are written once, in Python, on top of one
primitive: `transact(keys, fn)` runs `fn` on the current JSON documents of `keys` and writes back
what it returns, atomically with respect to every other process using the same store. SQLite does
this with `BEGIN IMMEDIATE` (one writer at a time, WAL so readers never wait); Redis with
WATCH/MULTI/EXEC (optimistic, retried on conflict). Neither backend knows any policy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

Doc = dict[str, Any]
Docs = Mapping[str, Doc | None]
# fn(current documents) -> (documents to write, keyed like the input; None deletes; value to return)
Transaction = Callable[[Docs], tuple[Mapping[str, Doc | None], T]]


class StateUnavailable(Exception):
    """The store cannot be reached or used; work goes on without protection."""


class StateStore(ABC):
    #: Shown in messages ("sqlite:/path/state.db", "redis://host:6379/0").
    location: str

    @abstractmethod
    def transact(self, keys: list[str], fn: Transaction[T]) -> T: ...

    @abstractmethod
    def get(self, key: str) -> Doc | None: ...

    @abstractmethod
    def append_ledger(self, row: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def ledger_rows(self, since: float | None = None) -> list[dict[str, Any]]: ...

    def ledger_after(self, cursor: int) -> tuple[list[dict[str, Any]], int, bool]:
        """(rows appended after `cursor`, the cursor to pass next, whether the ledger was reset).
        The ledger only grows, so a reader (`llm-exec metrics --serve`) follows it without reading
        it again; a ledger shorter than `cursor` was reset: its rows are then read from the start.
        This default reads the whole ledger; the backends read only the new rows."""
        rows = self.ledger_rows()
        if cursor > len(rows):
            return rows, len(rows), True
        return rows[cursor:], len(rows), False

    def scan(self, prefix: str) -> dict[str, Doc]:
        """Every document whose key starts with `prefix` (e.g. "breaker:"), read-only."""
        raise NotImplementedError

    @abstractmethod
    def cache_get(self, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def cache_put(self, key: str, value: Mapping[str, Any]) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional
        """Release the connection."""
