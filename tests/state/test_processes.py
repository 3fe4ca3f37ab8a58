"""Protection that holds across processes (SQLite) and machines (Redis): executor processes
started all at once against the emulator, the state checked in the store itself."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from llm_exec.emulator import Emulator
from llm_exec.state import open_store
from tests.conftest import BIN_DIR, emulator_env, run_executor, subprocess_env
from tests.state.conftest import RedisServer

PROCESSES = 100


def run_many(executor: str, specs: list[dict[str, Any]], envs: list[dict[str, str]]) -> list[tuple[int, dict]]:
    """Start every process first, then collect: they really run at the same time."""
    procs = []
    for spec, env in zip(specs, envs, strict=True):
        proc = subprocess.Popen([str(BIN_DIR / f"llm-exec-{executor}")], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(spec).encode())
        proc.stdin.close()
        proc.stdin = None
        procs.append(proc)

    def finish(proc: subprocess.Popen[bytes]) -> tuple[int, dict]:
        out, err = proc.communicate(timeout=300)
        assert b"Traceback" not in err, err.decode()
        return proc.returncode, json.loads(out.decode().strip().split("\n")[-1])

    with ThreadPoolExecutor(max_workers=len(procs)) as pool:
        return list(pool.map(finish, procs))


def backend_env(backend: str, tmp_path: Path, request: pytest.FixtureRequest, group: int = 0) -> dict[str, str]:
    """One state location per group: its own SQLite dir, or (Redis) its own dir but the shared server."""
    env = {"LLM_EXEC_STATE_DIR": str(tmp_path / f"state-{group}")}
    if backend == "redis":
        env["LLM_EXEC_STATE_URL"] = request.getfixturevalue("redis_url")
    return env


def store_for(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return open_store()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_breaker_opens_across_processes(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    groups = 3 if backend == "redis" else 1  # three "machines" sharing one Redis
    with Emulator() as emu:
        emu.script([{"status": 500, "times": 10_000}])
        envs = [{**subprocess_env(), **emulator_env(emu.url), **backend_env(backend, tmp_path, request, i % groups)}
                for i in range(PROCESSES)]
        specs = [{"task_id": f"b{i}", "prompt": "hello", "max_tokens": 10} for i in range(PROCESSES)]
        results = run_many("llama", specs, envs)
        arrivals = [r["time"] for r in emu.requests()]
    store = store_for(envs[0], monkeypatch)
    breakers = [r for r in _breaker_docs(store, backend, envs[0])]
    assert len(breakers) == 1, breakers
    breaker = breakers[0]
    assert breaker["state"] == "open"
    types = [result["error"]["type"] for _, result in results]
    assert all(code == 1 for code, _ in results)
    assert types.count("circuit_open") > 0
    threshold, probes = 5, 0  # no probe: the 30 s cooldown outlasts the test
    after_open = [t for t in arrivals if t > breaker["opened_at"]]
    assert len(after_open) <= threshold + probes, (len(after_open), len(arrivals))
    # No lost ledger rows: one per process.
    assert len(store.ledger_rows()) == PROCESSES
    store.close()


def _breaker_docs(store: Any, backend: str, env: dict[str, str]) -> list[dict]:
    if backend == "sqlite":
        import sqlite3

        db = sqlite3.connect(Path(env["LLM_EXEC_STATE_DIR"]) / "state.db")
        return [json.loads(v) for (k, v) in db.execute("SELECT key, value FROM kv") if k.startswith("breaker:")]
    import redis

    client = redis.Redis.from_url(env["LLM_EXEC_STATE_URL"])
    return [json.loads(client.get(k)) for k in client.scan_iter("llm-exec:breaker:*")]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_budget_cap_holds_under_concurrency(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cap = 0.0004  # USD; each task is estimated at ~$0.0000276 (gpt-4o-mini, 5-token prompt + 40 max)
    groups = 3 if backend == "redis" else 1  # three "machines" sharing one Redis
    with Emulator() as emu:
        envs = [{**subprocess_env(), **emulator_env(emu.url), **backend_env(backend, tmp_path, request, i % groups),
                 "LLM_EXEC_BUDGETS": json.dumps([{"scope": "agent:budget-test", "daily_usd": cap}])}
                for i in range(PROCESSES)]
        specs = [{"task_id": f"c{i}", "prompt": "one two three", "model": "gpt-4o-mini", "max_tokens": 40}
                 for i in range(PROCESSES)]
        results = run_many("gpt", specs, envs)
    outcomes = [(code, (result.get("error") or {}).get("type")) for code, result in results]
    assert {o for o in outcomes} <= {(0, None), (2, "budget_exceeded")}, outcomes
    assert outcomes.count((2, "budget_exceeded")) > 0
    store = store_for(envs[0], monkeypatch)
    rows = store.ledger_rows()
    assert len(rows) == PROCESSES  # no lost rows
    spent = sum(r["cost_usd"] or 0 for r in rows)
    assert 0 < spent <= cap
    store.close()


def test_redis_going_away_mid_run(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.flush()
    with Emulator(latency_ms=200) as emu:
        env = {**subprocess_env(), **emulator_env(emu.url), "LLM_EXEC_STATE_URL": redis_server.url}
        first = run_executor("llama", {"prompt": "before"}, env=env)
        assert first.code == 0 and first.result["state"] == "ok"
        redis_server.stop()
        try:
            results = run_many("llama", [{"task_id": f"r{i}", "prompt": "after"} for i in range(10)], [env] * 10)
        finally:
            redis_server.start()  # the session fixture's other users get it back
    for code, result in results:
        assert code == 0 and result["status"] == "success"
        assert result["state"] == "unavailable"


def test_state_off_disables_everything(tmp_path: Path) -> None:
    with Emulator() as emu:
        run = run_executor("llama", {"prompt": "x"}, url=emu.url, env={"LLM_EXEC_STATE": "off"})
    assert run.code == 0 and run.result["state"] == "off"
    assert not (tmp_path / "llm-exec-state" / "state.db").exists()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_record_then_replay_without_network(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    spec = {"task_id": "rr", "prompt": "record me", "model": "gpt-4o-mini", "max_tokens": 30}
    env = backend_env(backend, tmp_path, request)
    with Emulator() as emu:
        recorded = run_executor("gpt", spec, url=emu.url, env={**env, "LLM_EXEC_CACHE": "record"})
        url = emu.url
    assert recorded.code == 0 and recorded.result["cached"] is False
    # The emulator is gone: replay must not touch the network, and needs no key.
    replayed = run_executor("gpt", spec, url=url, env={**env, "LLM_EXEC_CACHE": "replay"})
    assert replayed.code == 0, replayed.result
    result = replayed.result
    assert result["cached"] is True and result["cost_usd"] == 0
    assert result["output"] == recorded.result["output"]
    assert result["original_usage"]["prompt_tokens"] == recorded.result["prompt_tokens"]
    assert result["prompt_tokens"] == 0
    streamed = run_executor("gpt", {**spec, "stream": True}, url=url, env={**env, "LLM_EXEC_CACHE": "replay"})
    assert streamed.code == 0 and "".join(streamed.deltas) == recorded.result["output"]
    miss = run_executor("gpt", {**spec, "prompt": "never recorded"}, url=url, env={**env, "LLM_EXEC_CACHE": "replay"})
    assert miss.code == 2 and miss.result["error"]["type"] == "replay_miss"
    assert "cache key" in miss.result["error"]["message"]


def test_cache_key_covers_parameters_and_endpoint(tmp_path: Path) -> None:
    spec = {"prompt": "same prompt", "model": "gpt-4o-mini", "max_tokens": 30, "cache": "read-write"}
    with Emulator() as emu:
        assert run_executor("gpt", spec, url=emu.url).result["cached"] is False
        assert run_executor("gpt", spec, url=emu.url).result["cached"] is True
        assert run_executor("gpt", {**spec, "temperature": 0.5}, url=emu.url).result["cached"] is False
        assert len(emu.requests()) == 2
        with Emulator() as other:
            assert run_executor("gpt", spec, url=other.url).result["cached"] is False


def test_local_rate_limit_waits_then_fails_past_deadline() -> None:
    with Emulator() as emu:
        env = {"LLM_EXEC_RPM": "1"}
        first = run_executor("llama", {"prompt": "a", "timeout_seconds": 5}, url=emu.url, env=env)
        second = run_executor("llama", {"prompt": "b", "timeout_seconds": 5}, url=emu.url, env=env)
    assert first.code == 0
    assert second.code == 1 and second.result["error"]["type"] == "rate_limited_locally"
    assert 50 < second.result["error"]["retry_after_seconds"] <= 60
    assert second.elapsed < 5


def test_stats_summarises_the_ledger() -> None:
    with Emulator() as emu:
        for i in range(3):
            run_executor("llama", {"task_id": f"s{i}", "agent": "local", "prompt": "x"}, url=emu.url)
        emu.script([{"status": 500, "times": 5}])
        run_executor("llama", {"task_id": "s-err", "agent": "local", "prompt": "x", "max_retries": 0}, url=emu.url)
    out = subprocess.run([str(BIN_DIR / "llm-exec"), "stats", "--json"], capture_output=True, check=True,
                         env=subprocess_env())
    report = json.loads(out.stdout)
    assert report["calls"] == 4
    (group,) = report["groups"]
    assert (group["agent"], group["calls"], group["errors"]) == ("local", 4, 1)
    assert group["p50_latency_seconds"] is not None and group["p95_latency_seconds"] >= group["p50_latency_seconds"]
    text = subprocess.run([str(BIN_DIR / "llm-exec"), "stats"], capture_output=True, check=True, env=subprocess_env())
    assert b"local" in text.stdout and b"25.0%" in text.stdout


def test_ledger_keeps_no_text_unless_asked() -> None:
    with Emulator() as emu:
        run_executor("llama", {"prompt": "secret plans"}, url=emu.url)
        run_executor("llama", {"prompt": "public plans"}, url=emu.url, env={"LLM_EXEC_LEDGER_TEXT": "1"})
    rows = open_store().ledger_rows()
    assert "prompt" not in rows[0] and "output" not in rows[0]
    assert rows[1]["prompt"] == "public plans" and rows[1]["output"]
    assert time.time() - rows[0]["ts"] < 60
