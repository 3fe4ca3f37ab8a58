"""Redis backend (redis-py): shared by every machine that points at one server.

Atomicity comes from WATCH/MULTI/EXEC: the transaction is retried when another client changed a
watched key in between, so the policy code stays in Python, identical to the SQLite backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from .store import Doc, StateStore, StateUnavailable, T, Transaction

PREFIX = "llm-exec:"
LEDGER_KEY = PREFIX + "ledger"
# An unreachable server must not hold up the task it was meant to protect.
CONNECT_TIMEOUT_SECONDS = 0.5
SOCKET_TIMEOUT_SECONDS = 2.0
MAX_CONFLICT_RETRIES = 200


class RedisStore(StateStore):
    def __init__(self, url: str) -> None:
        import redis  # deferred: only processes configured for Redis pay for the import

        self._redis_errors = (redis.RedisError, OSError)
        self._watch_error = redis.WatchError
        self.location = _without_password(url)
        try:
            self._client = redis.Redis.from_url(
                url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=SOCKET_TIMEOUT_SECONDS,
                retry_on_timeout=False,
            )
            self._client.ping()
        except self._redis_errors as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc

    def transact(self, keys: list[str], fn: Transaction[T]) -> T:
        names = [PREFIX + key for key in keys]
        try:
            for _ in range(MAX_CONFLICT_RETRIES):
                with self._client.pipeline() as pipe:
                    try:
                        pipe.watch(*names)
                        raw = pipe.mget(names)
                        current = {key: (json.loads(value) if value else None)
                                   for key, value in zip(keys, raw, strict=True)}
                        writes, result = fn(current)
                        pipe.multi()
                        for key, doc in writes.items():
                            if doc is None:
                                pipe.delete(PREFIX + key)
                            else:
                                pipe.set(PREFIX + key, json.dumps(doc))
                        pipe.execute()
                        return result
                    except self._watch_error:
                        continue  # another client won the race: read again and re-decide
            raise StateUnavailable(f"{self.location}: too much contention on {keys}")
        except self._redis_errors as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc

    def get(self, key: str) -> Doc | None:
        try:
            value = self._client.get(PREFIX + key)
        except self._redis_errors as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc
        return json.loads(value) if value else None

    def append_ledger(self, row: Mapping[str, Any]) -> None:
        try:
            self._client.rpush(LEDGER_KEY, json.dumps({"ts": time.time(), **row}))
        except self._redis_errors as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc

    def ledger_rows(self, since: float | None = None) -> list[dict[str, Any]]:
        try:
            rows = [json.loads(raw) for raw in self._client.lrange(LEDGER_KEY, 0, -1)]
        except self._redis_errors as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc
        return [row for row in rows if row.get("ts", 0) >= (since or 0)]

    def ledger_after(self, cursor: int) -> tuple[list[dict[str, Any]], int, bool]:
        try:
            length = self._client.llen(LEDGER_KEY)
            restarted = length < cursor
            start = 0 if restarted else cursor
            raw = self._client.lrange(LEDGER_KEY, start, -1) if length > start else []
        except self._redis_errors as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc
        return [json.loads(item) for item in raw], start + len(raw), restarted

    def scan(self, prefix: str) -> dict[str, Doc]:
        pattern = PREFIX + "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
        try:
            names = sorted(self._client.scan_iter(match=pattern, count=500))
            values = self._client.mget(names) if names else []
        except self._redis_errors as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc
        return {name.decode()[len(PREFIX):]: json.loads(value) for name, value in zip(names, values, strict=True)
                if value}

    def cache_get(self, key: str) -> dict[str, Any] | None:
        try:
            value = self._client.get(PREFIX + "cache:" + key)
        except self._redis_errors as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc
        return json.loads(value) if value else None

    def cache_put(self, key: str, value: Mapping[str, Any]) -> None:
        try:
            self._client.set(PREFIX + "cache:" + key, json.dumps(value))
        except self._redis_errors as exc:
            raise StateUnavailable(f"{self.location}: {exc}") from exc

    def close(self) -> None:
        self._client.close()


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
