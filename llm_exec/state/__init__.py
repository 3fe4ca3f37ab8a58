"""Shared state across processes and machines: circuit breaker, rate limits, budgets, usage
ledger and response cache, on SQLite (default) or Redis (`LLM_EXEC_STATE_URL`).

`open_store()` picks the backend from the environment; `Guard` (guard.py) applies the policies
around one call. A store that cannot be reached never stops work: the caller warns and goes on
without protection, and the result says `state: "unavailable"`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .store import StateStore, StateUnavailable

__all__ = ["StateStore", "StateUnavailable", "default_db_path", "open_store", "state_enabled"]


def state_enabled() -> bool:
    return os.environ.get("LLM_EXEC_STATE", "on").strip().lower() not in ("off", "0", "false", "no")


def default_db_path() -> Path:
    directory = os.environ.get("LLM_EXEC_STATE_DIR")
    if directory:
        return Path(directory) / "state.db"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "llm-exec" / "state.db"


def open_store() -> StateStore:
    """The configured store; raises StateUnavailable when it cannot be opened."""
    url = os.environ.get("LLM_EXEC_STATE_URL")
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise StateUnavailable(f"LLM_EXEC_STATE_URL must be a redis:// URL, not {url.split('://')[0]}://")
        from .redis_store import RedisStore

        return RedisStore(url)
    from .sqlite import SqliteStore

    return SqliteStore(default_db_path())
