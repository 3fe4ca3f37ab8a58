"""The metrics tier: a real Prometheus server (1 s scrape interval, temporary config and storage, on
loopback) scraping `llm-exec metrics --serve` and a real Pushgateway, while executors run tasks
against the emulator; the expected token and cost totals are read back through Prometheus' HTTP
API. The binaries come from PATH (`make test` puts them there); a missing one fails, naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_exec.emulator import Emulator
from llm_exec.providers.registry import get_provider
from tests.conftest import EXECUTORS, emulator_env, subprocess_env
from tests.state.conftest import RedisServer
from tests.telemetry.metrics_servers import (
    METRICS_ENV,
    Finished,
    MetricsEndpoint,
    Prometheus,
    Pushgateway,
    free_port,
    pushgateway_binary,
    run_all,
    total,
)

pytestmark = pytest.mark.prometheus


@pytest.fixture(autouse=True)
def _no_inherited_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in METRICS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pushgateway() -> Iterator[Pushgateway]:
    gateway = Pushgateway().start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def gateway(pushgateway: Pushgateway) -> Pushgateway:
    pushgateway.wipe()  # each test its own groups
    return pushgateway


# The scrape jobs: the ledger endpoint's series get job="llm-exec-ledger"; the Pushgateway's, with
# honor_labels, keep the job and instance of their grouping key (job="llm-exec" by default).
LEDGER, PUSHED = "llm-exec-ledger", "llm-exec"


def watch(tmp_path: Path, endpoint: MetricsEndpoint, gateway: Pushgateway) -> Prometheus:
    return Prometheus(tmp_path / "prometheus", {
        LEDGER: (f"127.0.0.1:{endpoint.port}", False),
        "pushgateway": (f"127.0.0.1:{gateway.port}", True),
    }).start()


def tasks(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"task_id": f"t{n}", "prompt": f"tell me about number {n} " + "more " * (n % 5), "agent": f"a{n % 2}"}
            for n in range(start, start + count)]


def expected(runs: list[Finished]) -> dict[str, float]:
    assert [run.code for run in runs] == [0] * len(runs), [run.stderr for run in runs if run.code]
    results = [run.result for run in runs]
    return {"requests": len(results), "input": sum(r["prompt_tokens"] for r in results),
            "output": sum(r["completion_tokens"] for r in results), "cost": sum(r["cost_usd"] or 0 for r in results)}


def assert_totals(prometheus: Prometheus, job: str, want: dict[str, float], extra: str = "") -> None:
    where = f'job="{job}"{extra}'
    prometheus.wait_for(f"sum(llm_exec_requests_total{{{where}}})", want["requests"])
    prometheus.wait_for(f'sum(gen_ai_client_token_usage_sum{{{where},gen_ai_token_type="input"}})', want["input"])
    prometheus.wait_for(f'sum(gen_ai_client_token_usage_sum{{{where},gen_ai_token_type="output"}})', want["output"])
    prometheus.wait_for(f"sum(gen_ai_client_token_usage_count{{{where}}})", 2 * want["requests"])
    prometheus.wait_for(f"sum(gen_ai_client_operation_duration_seconds_count{{{where}}})", want["requests"])
    prometheus.wait_for(f"sum(llm_exec_cost_usd_total{{{where}}})", want["cost"], tolerance=1e-9)


def test_prometheus_reads_the_ledger_endpoint_and_the_pushgateway(emulator: Emulator, gateway: Pushgateway,
                                                                 tmp_path: Path) -> None:
    env = {**subprocess_env(), **emulator_env(emulator.url), "LLM_EXEC_PUSHGATEWAY": gateway.url,
           "LLM_EXEC_PUSHGATEWAY_INSTANCE": "machine-a"}
    endpoint = MetricsEndpoint(env).start()
    prometheus: Prometheus | None = None
    try:
        prometheus = watch(tmp_path, endpoint, gateway)
        # Every executor twice and ten more at once: the pushes of concurrent processes add up.
        executors = [*EXECUTORS, *EXECUTORS, *(["llama", "custom"] * 5)]
        first = run_all([(executor, task, env) for executor, task in zip(executors, tasks(20), strict=True)])
        want = expected(first)
        assert want["cost"] > 0
        for job in (LEDGER, PUSHED):
            assert_totals(prometheus, job, want)
        names = {row["metric"]["gen_ai_provider_name"] for row in prometheus.query(
            'sum by (gen_ai_provider_name) (gen_ai_client_token_usage_count{job="llm-exec-ledger"})')}
        assert names == {get_provider(e).gen_ai_provider or get_provider(e).name for e in EXECUTORS}
        pushed = prometheus.query('llm_exec_requests_total{job="llm-exec"}')
        assert {row["metric"]["instance"] for row in pushed} == {"machine-a"}
        # A second wave: counters keep growing in both, nothing is replaced.
        second = run_all([(executor, task, env) for executor, task in zip(EXECUTORS, tasks(5, 20), strict=True)])
        both = expected([*first, *second])
        for job in (LEDGER, PUSHED):
            assert_totals(prometheus, job, both)
        assert prometheus.value('histogram_quantile(0.5, sum by (le) '
                                '(gen_ai_client_token_usage_bucket{job="llm-exec"}))') is not None
    finally:
        if prometheus is not None:
            prometheus.stop()
        endpoint.stop()


def test_a_fleet_sharing_redis_is_one_view(emulator: Emulator, gateway: Pushgateway, tmp_path: Path) -> None:
    redis = RedisServer(free_port()).start()
    try:
        shared = {**subprocess_env(), **emulator_env(emulator.url), "LLM_EXEC_STATE_URL": redis.url,
                  "LLM_EXEC_PUSHGATEWAY": gateway.url}
        # Two machines: their own state directories, one Redis, their own Pushgateway groups.
        machines = {name: {**shared, "LLM_EXEC_STATE_DIR": str(tmp_path / name), "LLM_EXEC_PUSHGATEWAY_INSTANCE": name}
                    for name in ("machine-a", "machine-b")}
        endpoint = MetricsEndpoint(shared).start()
        prometheus: Prometheus | None = None
        try:
            prometheus = watch(tmp_path, endpoint, gateway)
            jobs = [("llama" if n % 3 else "gpt", task, machines["machine-a" if n < 6 else "machine-b"])
                    for n, task in enumerate(tasks(10))]
            runs = run_all(jobs)
            want = expected(runs)
            assert_totals(prometheus, LEDGER, want)
            assert_totals(prometheus, PUSHED, want)
            for name, count in (("machine-a", 6), ("machine-b", 4)):
                prometheus.wait_for(f'sum(llm_exec_requests_total{{job="{PUSHED}",instance="{name}"}})', count)
            assert_totals(prometheus, PUSHED, expected(runs[:6]), ',instance="machine-a"')
            assert total(gateway.metrics(), "llm_exec_requests_total") == 10
        finally:
            if prometheus is not None:
                prometheus.stop()
            endpoint.stop()
    finally:
        redis.stop()


def test_a_missing_binary_fails_naming_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="make test"):
        pushgateway_binary()
    with pytest.raises(pytest.fail.Exception, match="make test"):
        Prometheus(Path("/nonexistent"), {}).start()
