"""The shared-state policies on both backends, driven with an explicit clock."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from llm_exec.state import StateStore, StateUnavailable, open_store
from llm_exec.state.policies import (
    BreakerConfig,
    BudgetCap,
    breaker_check,
    breaker_record,
    budget_reserve,
    budget_settle,
    rate_acquire,
    rate_correct,
)
from llm_exec.state.redis_store import RedisStore
from llm_exec.state.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        backend: StateStore = SqliteStore(tmp_path / "state.db")
    else:
        backend = RedisStore(request.getfixturevalue("redis_url"))
    yield backend
    backend.close()


CONFIG = BreakerConfig(threshold=3, cooldown=30)
KEY = "breaker:test"


def check(store: StateStore, now: float) -> Any:
    return store.transact([KEY], breaker_check(KEY, CONFIG, now))


def record(store: StateStore, now: float, failed: bool) -> str:
    return store.transact([KEY], breaker_record(KEY, CONFIG, now, failed=failed, label="test"))


def test_breaker_opens_after_threshold_then_probes_once(store: StateStore) -> None:
    assert check(store, 0).allowed
    assert record(store, 1, True) == "closed"
    assert record(store, 2, True) == "closed"
    assert record(store, 3, True) == "open"
    refused = check(store, 10)
    assert not refused.allowed and refused.retry_after == pytest.approx(23)
    probe = check(store, 33.5)
    assert probe.allowed and probe.probe
    assert not check(store, 34).allowed  # one probe at a time
    assert record(store, 35, False) == "closed"
    assert check(store, 36).allowed and not check(store, 36).probe


def test_failed_probe_reopens(store: StateStore) -> None:
    for t in range(3):
        record(store, t, True)
    assert check(store, 40).probe
    assert record(store, 41, True) == "open"
    assert not check(store, 50).allowed and check(store, 72).probe


def test_success_resets_the_streak(store: StateStore) -> None:
    record(store, 0, True)
    record(store, 1, True)
    record(store, 2, False)
    record(store, 3, True)
    assert record(store, 4, True) == "closed"


def test_token_bucket(store: StateStore) -> None:
    key = "rate:test"
    assert store.transact([key], rate_acquire(key, 2, 1000, 400, now=0)) == 0
    assert store.transact([key], rate_acquire(key, 2, 1000, 400, now=0)) == 0
    # requests exhausted: one comes back after 30 s at 2 rpm
    assert store.transact([key], rate_acquire(key, 2, 1000, 100, now=0)) == pytest.approx(30)
    assert store.transact([key], rate_acquire(key, 2, 1000, 100, now=30)) == 0
    # tokens: 1000 - 800 - 100 + refill(30 s at 1000/min = 500, capped at 1000) ... too few for 900 now
    wait = store.transact([key], rate_acquire(key, None, 1000, 900, now=30))
    assert wait > 0
    store.transact([key], rate_correct(key, -300))  # the call used 300 tokens fewer than reserved
    assert store.transact([key], rate_acquire(key, None, 1000, 900, now=30 + wait)) == 0


def test_budget_reserves_and_settles(store: StateStore) -> None:
    caps = [BudgetCap("agent:a", "daily", 1.0), BudgetCap("registry:r", "monthly", 1.5)]
    first = store.transact([c.key(0) for c in caps], budget_reserve(caps, 0.6, 0, ttl=60))
    assert first.reservation
    refused = store.transact([c.key(0) for c in caps], budget_reserve(caps, 0.6, 1, ttl=60))
    assert refused.reservation is None and refused.refused_by == caps[0]
    store.transact([c.key(0) for c in caps], budget_settle(caps, first.reservation, 0.1, 0, 2))
    assert store.transact([c.key(2) for c in caps], budget_reserve(caps, 0.6, 2, ttl=60)).reservation
    # A reservation whose process died expires after its ttl instead of blocking forever.
    assert store.transact([c.key(100) for c in caps], budget_reserve(caps, 0.8, 100, ttl=60)).reservation


def _reserve_many(args: tuple[str, int]) -> int:
    location, n = args
    os.environ.pop("LLM_EXEC_STATE_URL", None)
    if location.startswith("redis://"):
        os.environ["LLM_EXEC_STATE_URL"] = location
    else:
        os.environ["LLM_EXEC_STATE_DIR"] = location
    store = open_store()
    cap = [BudgetCap("agent:race", "daily", 1.0)]
    granted = 0
    for _ in range(n):
        verdict = store.transact([cap[0].key(0)], budget_reserve(cap, 0.01, 0, ttl=3600))
        if verdict.reservation:
            store.transact([cap[0].key(0)], budget_settle(cap, verdict.reservation, 0.01, 0, 0))
            granted += 1
    store.close()
    return granted


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_budget_holds_across_processes(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    location = str(tmp_path) if backend == "sqlite" else request.getfixturevalue("redis_url")
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        granted = sum(pool.map(_reserve_many, [(location, 40)] * 8))
    assert granted == 100  # exactly $1.00 of $0.01 calls, of 320 attempted: no lost update


def test_ledger_and_cache_round_trip(store: StateStore) -> None:
    store.append_ledger({"ts": 1.0, "task_id": "a"})
    store.append_ledger({"ts": 5.0, "task_id": "b"})
    assert [r["task_id"] for r in store.ledger_rows()] == ["a", "b"]
    assert [r["task_id"] for r in store.ledger_rows(since=2.0)] == ["b"]
    assert store.cache_get("k") is None
    store.cache_put("k", {"content": "x"})
    assert store.cache_get("k") == {"content": "x"}
    assert json.loads(json.dumps(store.get("missing"))) is None


def test_unreachable_redis_is_unavailable_fast() -> None:
    import time

    started = time.monotonic()
    with pytest.raises(StateUnavailable):
        RedisStore("redis://127.0.0.1:9/0")
    assert time.monotonic() - started < 2
