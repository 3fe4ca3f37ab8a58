"""Prometheus metrics (issue 11): what is counted, the textfile shared by concurrent processes, the
Pushgateway's totals in the state store, `llm-exec metrics [--serve]` from the ledger, and what
metrics cost (imports, a dead Pushgateway). Executors run as real subprocesses against the emulator;
exposition text is always read with prometheus_client's own parser.

The tier with real Prometheus and Pushgateway servers is test_metrics_prometheus.py.
"""

from __future__ import annotations

import json
import math
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_exec.emulator import Emulator
from llm_exec.providers.registry import get_provider
from llm_exec.state import open_store
from llm_exec.telemetry import _metrics_model as model
from llm_exec.telemetry import _metrics_push as push
from llm_exec.telemetry import _metrics_text as text
from llm_exec.telemetry.metrics import EXPORTED_METRICS, EXPORTED_SERIES
from tests.conftest import BIN_DIR, EXECUTORS, TEST_KEYS, emulator_env, subprocess_env
from tests.state.conftest import RedisServer
from tests.telemetry.metrics_servers import (
    METRICS_ENV,
    Finished,
    MetricsEndpoint,
    Sample,
    finish,
    free_port,
    label_values,
    run_all,
    samples,
    start_executor,
    total,
)


@pytest.fixture(autouse=True)
def _no_inherited_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own metrics or tracing settings must not reach the executors under test.
    for name in METRICS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def metrics_redis() -> Iterator[RedisServer]:
    server = RedisServer(free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def env_for(emulator: Emulator, **extra: str) -> dict[str, str]:
    return {**subprocess_env(), **emulator_env(emulator.url), **extra}


def gen_ai_name(executor: str) -> str:
    cls = get_provider(executor)
    return cls.gen_ai_provider or cls.name


def spec(n: int, **fields: Any) -> dict[str, Any]:
    return {"task_id": f"t{n}", "prompt": f"say hello number {n} " + "word " * (n % 7), "agent": "tester", **fields}


def read(path: Path) -> list[Sample]:
    return samples(path.read_text())


# -- the metric families ----------------------------------------------------------------------------


def test_exported_metrics_are_the_issues_names_and_types() -> None:
    assert EXPORTED_METRICS == {
        "gen_ai_client_token_usage": "histogram",
        "gen_ai_client_operation_duration_seconds": "histogram",
        "llm_exec_cost_usd_total": "counter",
        "llm_exec_requests_total": "counter",
        "llm_exec_retries_total": "counter",
        "llm_exec_circuit_open": "gauge",
    }
    assert "gen_ai_client_token_usage_bucket" in EXPORTED_SERIES and "llm_exec_requests_total" in EXPORTED_SERIES
    assert len(EXPORTED_SERIES) == 2 * 3 + 4
    labels = {family.name: family.labels for family in model.FAMILIES}
    assert labels["gen_ai_client_token_usage"] == ("gen_ai_operation_name", "gen_ai_provider_name",
                                                   "gen_ai_request_model", "gen_ai_token_type")
    assert labels["gen_ai_client_operation_duration_seconds"][-1] == "error_type"
    assert labels["llm_exec_requests_total"] == ("provider", "model", "agent", "status", "error_type")
    assert labels["llm_exec_circuit_open"] == ("provider", "model", "breaker_key")
    # The semantic conventions' advice: powers of 4 up to 4^13 tokens, 10 ms doubling up to 81.92 s.
    assert tuple(4 ** i for i in range(14)) == model.TOKEN_BUCKETS
    assert tuple(round(0.01 * 2 ** i, 2) for i in range(14)) == model.DURATION_BUCKETS


def random_totals(rng: random.Random) -> model.Totals:
    totals = model.Totals()
    odd = ['plain', 'quo"te', "back\\slash", "new\nline", "ünï cödé", "", "a,b=c}"]
    for _ in range(40):
        family = rng.choice(model.FAMILIES)
        labels = tuple(rng.choice(odd) for _ in family.labels)
        if family.kind == "histogram":
            top = family.buckets[-1] * 1.5
            for _ in range(rng.randint(1, 4)):
                totals.observe(family.name, labels, rng.choice([0, 1, top, rng.uniform(0, top), *family.buckets]))
        elif family.kind == "gauge":
            totals.set(family.name, labels, rng.choice([0, 1]))
        else:
            totals.add(family.name, labels, rng.choice([1, 0.000123, 7.5, 1e-9]))
    return totals


def test_text_is_byte_for_byte_what_prometheus_client_writes() -> None:
    # The executor writes the textfile without importing prometheus_client (start-up): its text
    # must be the library's, label escaping and float formatting included.
    from prometheus_client import CollectorRegistry, generate_latest

    from llm_exec.telemetry._metrics_ledger import metric_families

    for seed in range(20):
        totals = random_totals(random.Random(seed))

        class Collector:
            def collect(self, totals: model.Totals = totals) -> Any:
                return metric_families(totals)

        registry = CollectorRegistry(auto_describe=False)
        registry.register(Collector())  # type: ignore[arg-type]
        assert text.render(totals) == generate_latest(registry).decode()


def test_merging_lines_adds_up_like_the_totals() -> None:
    def as_dict(parsed: list[Sample]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return {(name, frozenset(labels.items())): value for name, labels, value in parsed}

    for seed in range(20):
        rng = random.Random(seed)
        first, second = random_totals(rng), random_totals(rng)
        merged_lines = text.read(text.render(first))
        text.merge(merged_lines, text.lines(second))
        expected = model.Totals()
        expected.merge(first)
        expected.merge(second)
        got, want = as_dict(samples(text.text(merged_lines))), as_dict(samples(text.render(expected)))
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert math.isclose(got[key], value, rel_tol=1e-12, abs_tol=1e-15), key


def test_a_file_that_is_not_ours_is_rejected_not_misread() -> None:
    for foreign in ("node_cpu_seconds_total 3\n", 'llm_exec_requests_total{a="b"} 1 1700000000\n',
                    "llm_exec_requests_total 1\n"):
        with pytest.raises(ValueError):
            text.read(foreign)


# -- textfile: what one call reports ----------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_textfile_reports_each_executors_call(executor: str, emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "llm.prom"
    env = env_for(emulator, LLM_EXEC_PROM_TEXTFILE=str(path))
    done = finish(start_executor(executor, spec(3), env))
    assert done.code == 0, done.stderr
    result = done.result
    parsed = read(path)
    cls = get_provider(executor)
    gen_ai = {"gen_ai_provider_name": gen_ai_name(executor), "gen_ai_operation_name": cls.gen_ai_operation,
              "gen_ai_request_model": result["model"]}
    assert total(parsed, "gen_ai_client_token_usage_sum", gen_ai_token_type="input",
                 **gen_ai) == result["prompt_tokens"]
    assert total(parsed, "gen_ai_client_token_usage_sum", gen_ai_token_type="output",
                 **gen_ai) == result["completion_tokens"]
    assert total(parsed, "gen_ai_client_token_usage_count", **gen_ai) == 2
    assert total(parsed, "gen_ai_client_operation_duration_seconds_count", error_type="", **gen_ai) == 1
    duration = total(parsed, "gen_ai_client_operation_duration_seconds_sum", **gen_ai)
    assert 0 < duration < result["execution_time_seconds"]  # the call itself, not the process start-up
    who = {"provider": result["provider"], "model": result["model"], "agent": "tester"}
    assert total(parsed, "llm_exec_requests_total", status="success", error_type="", **who) == 1
    assert total(parsed, "llm_exec_retries_total", **who) == 0
    if result["cost_usd"] is None:
        assert "llm_exec_cost_usd_total" not in {name for name, _, _ in parsed}
    else:
        assert result["cost_usd"] > 0
        assert math.isclose(total(parsed, "llm_exec_cost_usd_total", **who), result["cost_usd"])
    assert total(parsed, "llm_exec_circuit_open", provider=result["provider"]) == 0
    assert not list(tmp_path.glob("*.tmp"))


def test_fifty_concurrent_executors_lose_no_increment_and_tear_no_file(emulator: Emulator, tmp_path: Path) -> None:
    # Every executor a few times, the cheap-to-start ones for the rest; a reader parses the file
    # the whole time, as node-exporter would.
    path = tmp_path / "llm.prom"
    env = env_for(emulator, LLM_EXEC_PROM_TEXTFILE=str(path))
    executors = [*EXECUTORS, *EXECUTORS] + [("llama", "custom")[i % 2] for i in range(40)]
    reads: list[float] = []
    problems: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                content = path.read_text()
            except FileNotFoundError:
                continue
            try:
                requests = total(samples(content), "llm_exec_requests_total")
            except Exception as exc:  # a torn or malformed file: what this test is about
                problems.append(f"{type(exc).__name__}: {exc}")
                continue
            if reads and requests < reads[-1]:
                problems.append(f"requests went down: {reads[-1]} -> {requests}")
            reads.append(requests)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        runs = run_all([(executor, spec(n), env) for n, executor in enumerate(executors)])
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert [run.code for run in runs] == [0] * 50, [run.stderr for run in runs if run.code]
    assert not problems, problems[:5]
    assert len(reads) > 10
    parsed = read(path)
    results = [run.result for run in runs]
    assert total(parsed, "llm_exec_requests_total") == 50
    assert total(parsed, "llm_exec_requests_total", status="success") == 50
    assert total(parsed, "gen_ai_client_operation_duration_seconds_count") == 50
    assert total(parsed, "gen_ai_client_token_usage_count") == 100
    assert total(parsed, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == sum(
        r["prompt_tokens"] for r in results)
    assert total(parsed, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == sum(
        r["completion_tokens"] for r in results)
    assert math.isclose(total(parsed, "llm_exec_cost_usd_total"), sum(r["cost_usd"] or 0 for r in results))
    for executor in EXECUTORS:
        assert total(parsed, "llm_exec_requests_total", provider=get_provider(executor).name) == executors.count(
            executor)
    assert label_values(parsed, "gen_ai_client_token_usage_sum", "gen_ai_provider_name") == {
        gen_ai_name(executor) for executor in EXECUTORS}
    assert not list(tmp_path.glob("*.tmp"))


def test_retries_failures_and_the_circuit_breaker(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "llm.prom"
    env = env_for(emulator, LLM_EXEC_PROM_TEXTFILE=str(path), LLM_EXEC_BREAKER_THRESHOLD="2")
    emulator.script([{"status": 500}])  # one failure, then the retry succeeds
    retried = finish(start_executor("llama", spec(1), env))
    assert retried.code == 0 and retried.result["attempts"] == 2
    emulator.script([{"status": 500}, {"status": 500}])  # a second streak of 2: the circuit opens
    failed = finish(start_executor("llama", spec(2, max_retries=1), env))
    assert failed.code == 1 and failed.result["error"]["type"] == "server_error"
    refused = finish(start_executor("llama", spec(3), env))
    assert refused.result["error"]["type"] == "circuit_open"

    parsed = read(path)
    who = {"provider": retried.result["provider"], "model": retried.result["model"]}
    assert total(parsed, "llm_exec_retries_total", **who) == 1 + 1 + 0
    assert total(parsed, "llm_exec_requests_total", status="success", **who) == 1
    assert total(parsed, "llm_exec_requests_total", status="error", error_type="server_error", **who) == 1
    assert total(parsed, "llm_exec_requests_total", status="error", error_type="circuit_open", **who) == 1
    # The refused call made no request: no duration, no tokens.
    assert total(parsed, "gen_ai_client_operation_duration_seconds_count", error_type="") == 1
    assert total(parsed, "gen_ai_client_operation_duration_seconds_count", error_type="server_error") == 1
    assert total(parsed, "gen_ai_client_operation_duration_seconds_count", error_type="circuit_open") == 0
    assert total(parsed, "gen_ai_client_token_usage_count") == 2
    keys = label_values(parsed, "llm_exec_circuit_open", "breaker_key")
    assert len(keys) == 1 and next(iter(keys)).startswith("breaker:")
    assert total(parsed, "llm_exec_circuit_open", **who) == 1

    # The ledger view agrees, breaker included (read from the store's breaker documents).
    ledger = samples(llm_exec_metrics(env).stdout)
    for name in ("llm_exec_requests_total", "llm_exec_retries_total", "gen_ai_client_token_usage_sum",
                 "gen_ai_client_operation_duration_seconds_count"):
        assert total(ledger, name) == total(parsed, name), name
    assert label_values(ledger, "llm_exec_circuit_open", "breaker_key") == keys
    assert total(ledger, "llm_exec_circuit_open", **who) == 1


def test_batch_counts_every_line_and_writes_once(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "llm.prom"
    env = env_for(emulator, LLM_EXEC_PROM_TEXTFILE=str(path))
    lines = "".join(json.dumps(spec(n)) + "\n" for n in range(5)) + "not json\n"
    proc = subprocess.run([str(BIN_DIR / "llm-exec-llama"), "--batch"], input=lines.encode(), env=env,
                          capture_output=True, timeout=120, check=False)
    results = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(results) == 6
    parsed = read(path)
    assert total(parsed, "llm_exec_requests_total", status="success") == 5
    assert total(parsed, "llm_exec_requests_total", error_type="task_spec_error") == 1
    assert total(parsed, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == sum(
        r["prompt_tokens"] for r in results[:5])


def test_labels_never_carry_a_key(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "llm.prom"
    key = TEST_KEYS["OPENAI_API_KEY"]
    env = env_for(emulator, LLM_EXEC_PROM_TEXTFILE=str(path))
    done = finish(start_executor("gpt", spec(1, agent=f"agent-{key}"), env))
    assert done.code == 0
    content = path.read_text()
    assert key not in content
    assert label_values(samples(content), "llm_exec_requests_total", "agent") == {"agent-[REDACTED]"}
    assert key not in llm_exec_metrics(env).stdout


def test_a_foreign_textfile_is_replaced_with_a_warning(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "llm.prom"
    path.write_text("something_else 1\n")
    done = finish(start_executor("llama", spec(1), env_for(emulator, LLM_EXEC_PROM_TEXTFILE=str(path))))
    assert done.code == 0
    assert "is not llm-exec's textfile" in done.stderr
    assert total(read(path), "llm_exec_requests_total") == 1


def test_an_unwritable_textfile_warns_and_changes_no_result(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "llm.prom"
    done = finish(start_executor("llama", spec(1), env_for(emulator, LLM_EXEC_PROM_TEXTFILE=str(path))))
    assert done.code == 0 and done.result["status"] == "success"
    assert "cannot write LLM_EXEC_PROM_TEXTFILE" in done.stderr


# -- what metrics cost ------------------------------------------------------------------------------


def imported_modules(env: dict[str, str]) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", str(BIN_DIR / "llm-exec-llama")],
                          input=json.dumps(spec(1)).encode(), env=env, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines() if "|" in line}


def test_metrics_off_imports_none_of_it_and_on_no_prometheus_client(emulator: Emulator, tmp_path: Path) -> None:
    off = imported_modules(env_for(emulator))
    assert not {name for name in off if "metrics" in name or name.startswith("prometheus_client")}
    on = imported_modules(env_for(emulator, LLM_EXEC_PROM_TEXTFILE=str(tmp_path / "llm.prom")))
    assert "llm_exec.telemetry.metrics" in on
    assert not {name for name in on if name.startswith("prometheus_client")}


def timed(executor: str, env: dict[str, str]) -> tuple[float, Finished]:
    started = time.monotonic()
    done = finish(start_executor(executor, spec(1), env))
    return time.monotonic() - started, done


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("execution_time_seconds", "timestamp")}


def test_a_dead_pushgateway_neither_delays_nor_changes_the_result(emulator: Emulator) -> None:
    baseline = [timed("llama", env_for(emulator)) for _ in range(3)]
    usual = statistics.median(seconds for seconds, _ in baseline)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: refused at once
    with socket.socket() as blackhole:  # accepts connections (the backlog) and never answers
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)
        silent = f"http://user:pa55word@127.0.0.1:{blackhole.getsockname()[1]}"
        for url in (closed, silent):
            seconds, done = timed("llama", env_for(emulator, LLM_EXEC_PUSHGATEWAY=url))
            assert comparable(done.result) == comparable(baseline[0][1].result)
            assert done.code == 0
            assert seconds - usual < 1.2, (url, seconds, usual)
            assert "push to http://127.0.0.1:" in done.stderr and done.stderr.count("metrics:") == 1, done.stderr
            assert "pa55word" not in done.stderr


def test_pushgateway_needs_the_state_store_and_says_so(emulator: Emulator) -> None:
    done = finish(start_executor("llama", spec(1), env_for(emulator, LLM_EXEC_STATE="off",
                                                           LLM_EXEC_PUSHGATEWAY=f"http://127.0.0.1:{free_port()}")))
    assert done.code == 0
    assert "LLM_EXEC_STATE is off: not pushed" in done.stderr


# -- the Pushgateway's totals in the state store -----------------------------------------------------


class RecordingGateway:
    """A stand-in Pushgateway that keeps every PUT (path, body); the real one is in the tier."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.puts: list[tuple[str, str]] = []
        puts = self.puts

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                puts.append((self.path, body.decode()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def one_request(provider: str = "p") -> model.Totals:
    totals = model.Totals()
    totals.add(model.REQUESTS, (provider, "m", "a", "success", ""), 1)
    return totals


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_pushes_add_up_across_processes(backend: str, request: pytest.FixtureRequest,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "redis":
        server = request.getfixturevalue("metrics_redis")
        server.flush()
        monkeypatch.setenv("LLM_EXEC_STATE_URL", server.url)
    gateway = RecordingGateway()
    warnings: list[str] = []
    env = {"LLM_EXEC_PUSHGATEWAY": gateway.url, "LLM_EXEC_PUSHGATEWAY_INSTANCE": "host/1"}
    try:
        for _ in range(3):
            push.push(one_request(), env, warnings.append)
    finally:
        gateway.close()
    assert not warnings
    assert [path for path, _ in gateway.puts] == ["/metrics/job/llm-exec/instance@base64/aG9zdC8x"] * 3
    assert [total(samples(body), "llm_exec_requests_total") for _, body in gateway.puts] == [1, 2, 3]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_process_finding_the_lease_taken_leaves_its_counts_to_the_holder(
        backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "redis":
        server = request.getfixturevalue("metrics_redis")
        server.flush()
        monkeypatch.setenv("LLM_EXEC_STATE_URL", server.url)
    store = open_store()
    key, now = "metrics:pushgateway:test", time.time()
    holder = store.transact([key], push._add(key, one_request("first"), "holder", now))
    assert holder is not None and holder[1] == 1
    # Another process while the holder pushes: adds, does not push.
    assert store.transact([key], push._add(key, one_request("second"), "other", now)) is None
    # The holder, its push done, finds a newer sequence number: it keeps the lease and pushes again.
    again = store.transact([key], push._after_push(key, "holder", holder[1], True, now))
    assert again is not None and again[1] == 2
    assert total(samples(text.render(model.Totals.from_doc(again[0]))), "llm_exec_requests_total") == 2
    assert store.transact([key], push._after_push(key, "holder", again[1], True, now)) is None
    assert store.get(key)["lease"] is None  # released: the next process pushes
    # A lease whose holder died runs out.
    store.transact([key], push._add(key, one_request(), "dead", now))
    taken = store.transact([key], push._add(key, one_request(), "late", now + push.LEASE_SECONDS + 1))
    assert taken is not None and taken[1] == 4
    store.close()


# -- llm-exec metrics [--serve]: the ledger view ------------------------------------------------------


def llm_exec_metrics(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN_DIR / "llm-exec"), "metrics", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_the_ledger_view_counts_what_the_textfile_counts(backend: str, emulator: Emulator, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    path = tmp_path / "llm.prom"
    env = env_for(emulator, LLM_EXEC_PROM_TEXTFILE=str(path))
    if backend == "redis":
        server = request.getfixturevalue("metrics_redis")
        server.flush()
        env["LLM_EXEC_STATE_URL"] = server.url
    emulator.script([{"status": 503}])
    runs = run_all([(executor, spec(n), env) for n, executor in enumerate([*EXECUTORS, "llama", "gpt"])])
    assert all(run.code == 0 for run in runs)
    textfile, ledger = read(path), samples(llm_exec_metrics(env).stdout)
    for name in ("llm_exec_requests_total", "llm_exec_retries_total", "gen_ai_client_token_usage_count",
                 "gen_ai_client_token_usage_sum", "gen_ai_client_token_usage_bucket",
                 "gen_ai_client_operation_duration_seconds_count"):
        assert total(ledger, name) == total(textfile, name), name
    assert total(ledger, "llm_exec_retries_total") == 1
    assert math.isclose(total(ledger, "llm_exec_cost_usd_total"), total(textfile, "llm_exec_cost_usd_total"))
    assert label_values(ledger, "gen_ai_client_token_usage_sum", "gen_ai_provider_name") == label_values(
        textfile, "gen_ai_client_token_usage_sum", "gen_ai_provider_name")
    # The same calls timed from two clocks (the ledger's includes the breaker's bookkeeping).
    assert math.isclose(total(ledger, "gen_ai_client_operation_duration_seconds_sum"),
                        total(textfile, "gen_ai_client_operation_duration_seconds_sum"), rel_tol=0.2, abs_tol=0.05)


def test_the_ledger_view_of_rows_older_than_operation_seconds(tmp_path: Path) -> None:
    store = open_store()
    base = {"provider": "p", "model": "m", "agent": None, "status": "success", "attempts": 1, "prompt_tokens": 5,
            "completion_tokens": 2, "cost_usd": None, "latency_seconds": 1.5, "error_type": None}
    store.append_ledger(base)  # written before the ledger had operation_seconds
    store.append_ledger({**base, "operation_seconds": 0.25})
    store.append_ledger({**base, "operation_seconds": None, "cached": True})
    store.close()
    parsed = samples(llm_exec_metrics(subprocess_env()).stdout)
    assert total(parsed, "gen_ai_client_operation_duration_seconds_sum") == 1.75
    assert total(parsed, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 10
    assert total(parsed, "llm_exec_requests_total", provider="p", agent="") == 3


def test_serve_follows_the_ledger_and_stops_on_sigterm(emulator: Emulator) -> None:
    env = env_for(emulator)
    first = run_all([("llama", spec(n), env) for n in range(3)])
    endpoint = MetricsEndpoint(env).start()
    try:
        assert total(endpoint.scrape(), "llm_exec_requests_total") == 3
        second = run_all([("gpt", spec(n), env) for n in range(2)])
        scraped = endpoint.scrape()
        assert total(scraped, "llm_exec_requests_total") == 5
        assert total(scraped, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == sum(
            run.result["completion_tokens"] for run in [*first, *second])
        assert total(endpoint.scrape(), "llm_exec_requests_total") == 5  # nothing counted twice
        assert endpoint.process is not None
        endpoint.process.send_signal(signal.SIGTERM)
        assert endpoint.process.wait(timeout=10) == 0
        stderr = endpoint.process.stderr.read().decode() if endpoint.process.stderr else ""
        assert re.search(r"serving http://127\.0\.0\.1:\d+/metrics from sqlite:", stderr), stderr
    finally:
        endpoint.stop()


def test_serve_without_a_store_is_exit_2_naming_it() -> None:
    env = {**subprocess_env(), "LLM_EXEC_STATE_URL": f"redis://127.0.0.1:{free_port()}/0"}
    proc = subprocess.run([str(BIN_DIR / "llm-exec"), "metrics", "--serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    assert "state store unavailable" in proc.stderr and "Traceback" not in proc.stderr


def test_metrics_help_shows_examples() -> None:
    proc = llm_exec_metrics(subprocess_env(), "--help")
    assert "Examples:" in proc.stdout and "llm-exec metrics --serve" in proc.stdout
    assert "--port" in proc.stdout and "9464" in proc.stdout and "--host" in proc.stdout


def test_ledger_after_follows_appends_and_notices_a_reset(tmp_path: Path, metrics_redis: RedisServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    metrics_redis.flush()
    for url in (None, metrics_redis.url):
        if url:
            monkeypatch.setenv("LLM_EXEC_STATE_URL", url)
        store = open_store()
        store.append_ledger({"n": 1})
        store.append_ledger({"n": 2})
        rows, cursor, restarted = store.ledger_after(0)
        assert [r["n"] for r in rows] == [1, 2] and not restarted
        store.append_ledger({"n": 3})
        rows, cursor, restarted = store.ledger_after(cursor)
        assert [r["n"] for r in rows] == [3] and not restarted
        assert store.ledger_after(cursor)[0] == []
        rows, _, restarted = store.ledger_after(cursor + 10)
        assert restarted and [r["n"] for r in rows] == [1, 2, 3]
        store.transact(["breaker:x", "breakers"], lambda docs: ({"breaker:x": {"state": "open"},
                                                                 "breakers": {"state": "no"}}, None))
        assert store.scan("breaker:") == {"breaker:x": {"state": "open"}}
        store.close()
