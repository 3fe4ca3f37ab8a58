"""OpenTelemetry traces (issue 11): GenAI client spans per call, attempt spans per HTTP attempt, the
caller's trace context, llm-route's spans, batch and daemon modes, and the guarantees around them:
off means nothing imported, a dead or slow collector costs at most the 1 s flush budget and changes
no result, content only on request, never a key.

In-process calls are checked with the SDK's in-memory exporter; the executables export over
OTLP/HTTP to a receiver on 127.0.0.1 that decodes the protobuf (otlp_receiver.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llm_exec.emulator import Emulator
from llm_exec.runner import RunOptions, run
from llm_exec.telemetry import tracing

from ..conftest import BIN_DIR, EXECUTORS, TEST_KEYS, Run, emulator_env, run_executor, subprocess_env
from .otlp_receiver import ReceivedSpan, Receiver, closed_port

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
CALLER = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
OTHER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER_SPAN = "00f067aa0ba902b7"
OTHER = f"00-{OTHER_TRACE}-{OTHER_SPAN}-01"
SPEC = {"task_id": "trace-1", "prompt": "Name three primes please", "max_tokens": 40, "temperature": 0.2}
# What the conventions name each executor's provider and operation.
GEN_AI = {"claude": ("anthropic", "chat"), "gpt": ("openai", "chat"), "gemini": ("gcp.gemini", "generate_content"),
          "custom": ("custom", "chat"), "llama": ("ollama", "chat")}
DEFAULT_MODEL = {"claude": "claude-sonnet-4-6", "gpt": "gpt-5.4-mini", "gemini": "gemini-2.5-flash",
                 "custom": "default", "llama": "llama3.2"}
VOLATILE = ("timestamp", "execution_time_seconds", "request_id")
# The slack a loaded 2-core machine needs on top of a bound measured from outside a process.
SLACK_SECONDS = 0.5


@pytest.fixture(autouse=True)
def _no_inherited_tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OTEL_* or trace context from the developer's shell; no exporter left over for other tests."""
    for name in list(os.environ):
        if name.startswith("OTEL_") or name in ("TRACEPARENT", "TRACESTATE"):
            monkeypatch.delenv(name)
    yield
    tracing.set_exporter(None)
    tracing.flush()  # nothing recorded by one test is exported by the next


def stable(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in VOLATILE}


def by_name(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


# -- in-process, the SDK's in-memory exporter ----------------------------------------------------------


def run_in_process(executor: str, spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str,
                   env: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[ReadableSpan]]:
    for name, value in {**emulator_env(url), "OTEL_TRACES_EXPORTER": "otlp", **(env or {})}.items():
        monkeypatch.setenv(name, value)
    memory = InMemorySpanExporter()
    tracing.set_exporter(memory)
    source, sink = tmp_path / "task.json", tmp_path / "result.json"
    source.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    code = run(RunOptions(executor=executor, program=f"llm-exec-{executor}", input_path=str(source),
                          output_path=str(sink)))
    result = json.loads(sink.read_text().splitlines()[-1])
    assert result["exit_code"] == code
    return result, list(memory.get_finished_spans())


@pytest.mark.parametrize("executor", EXECUTORS)
def test_call_span_follows_the_genai_conventions(executor: str, emulator: Emulator, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    result, spans = run_in_process(executor, SPEC, tmp_path, monkeypatch, emulator.url)
    assert result["status"] == "success", result
    call = next(s for s in spans if s.parent is None)
    provider, operation = GEN_AI[executor]
    model = DEFAULT_MODEL[executor]
    assert call.name == f"{operation} {model}"
    assert call.kind is SpanKind.CLIENT
    assert call.status.status_code is StatusCode.UNSET
    attributes = dict(call.attributes or {})
    expected = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": result["response_model"],
        "gen_ai.usage.input_tokens": result["prompt_tokens"],
        "gen_ai.usage.output_tokens": result["completion_tokens"],
        # The custom contract has no finish reason: none is made up.
        "gen_ai.response.finish_reasons": (result["finish_reason"],) if result["finish_reason"] else None,
        "gen_ai.request.max_tokens": 40,
        "gen_ai.request.temperature": 0.2,
        "server.address": "127.0.0.1",
        "server.port": emulator.port,
        "llm_exec.attempts": 1,
        "llm_exec.task_id": "trace-1",
        "llm_exec.exit_code": 0,
    }
    assert {k: attributes.get(k) for k in expected} == expected
    if result["request_id"] is not None:
        assert attributes["gen_ai.response.id"] == result["request_id"]
    if result["cost_usd"] is not None:
        assert attributes["llm_exec.cost_usd"] == result["cost_usd"]
    else:  # an unknown price is left out, never a made-up 0
        assert "llm_exec.cost_usd" not in attributes
    assert not [k for k in attributes if k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system"))]
    # One attempt, its child, inside the call's time.
    (attempt,) = [s for s in spans if s.parent is not None]
    assert attempt.name == "attempt 1" and attempt.kind is SpanKind.CLIENT
    assert attempt.parent.span_id == call.context.span_id and attempt.context.trace_id == call.context.trace_id
    assert call.start_time <= attempt.start_time < attempt.end_time <= call.end_time
    assert dict(attempt.attributes or {}) == {"llm_exec.attempt": 1, "server.address": "127.0.0.1",
                                              "server.port": emulator.port}
    # The call span runs from the task's start to its result: the result's own execution time.
    assert abs((call.end_time - call.start_time) / 1e9 - result["execution_time_seconds"]) < 0.05


def test_a_streamed_call_says_so(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, spans = run_in_process("gpt", {**SPEC, "stream": True}, tmp_path, monkeypatch, emulator.url)
    assert result["status"] == "success"
    call = next(s for s in spans if s.parent is None)
    assert call.attributes["gen_ai.request.stream"] is True
    assert call.attributes["gen_ai.usage.output_tokens"] == result["completion_tokens"]
    assert [s.name for s in spans if s.parent is not None] == ["attempt 1"]


def test_invalid_spec_still_gets_a_span(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, spans = run_in_process("gpt", '{"prompt": "hi", "max_tokens": "many"}', tmp_path, monkeypatch,
                                   emulator.url)
    assert result["exit_code"] == 3
    (call,) = spans
    assert call.name == "chat"  # no model was chosen
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes["error.type"] == "task_spec_error"
    assert call.attributes["gen_ai.provider.name"] == "openai"
    assert call.attributes["gen_ai.response.finish_reasons"] == ("error",)


def test_unsampled_caller_records_nothing(emulator: Emulator, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    result, spans = run_in_process("gpt", SPEC, tmp_path, monkeypatch, emulator.url,
                                   {"TRACEPARENT": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"})
    assert result["status"] == "success"
    assert spans == []


def test_content_is_recorded_only_when_asked(emulator: Emulator, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {**SPEC, "system": "Answer tersely."}
    _, spans = run_in_process("claude", spec, tmp_path, monkeypatch, emulator.url)
    assert not [k for s in spans for k in (s.attributes or {}) if "messages" in k or "instructions" in k]
    result, spans = run_in_process("claude", spec, tmp_path, monkeypatch, emulator.url,
                                   {tracing.CAPTURE_CONTENT_VARIABLE: "true"})
    call = next(s for s in spans if s.parent is None)
    assert json.loads(call.attributes["gen_ai.system_instructions"]) == [{"type": "text", "content": "Answer tersely."}]
    assert json.loads(call.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": SPEC["prompt"]}]}]
    assert json.loads(call.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": result["output"]}],
         "finish_reason": result["finish_reason"]}]


def test_batch_records_one_span_per_line_and_exports_once(emulator: Emulator, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_exec.batch import BatchOptions, run_batch

    for name, value in {**emulator_env(emulator.url), "OTEL_TRACES_EXPORTER": "otlp"}.items():
        monkeypatch.setenv(name, value)
    exports: list[int] = []

    class Counting(InMemorySpanExporter):
        def export(self, spans: Any) -> Any:
            exports.append(len(spans))
            return super().export(spans)

    memory = Counting()
    tracing.set_exporter(memory)
    lines = [{"task_id": f"b-{i}", "prompt": f"line {i}", "max_tokens": 8} for i in range(6)]
    source, sink = tmp_path / "tasks.jsonl", tmp_path / "results.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert run_batch(BatchOptions(executor="gpt", program="llm-exec-gpt", input_path=str(source),
                                  output_path=str(sink), concurrency=3)) == 0
    calls = [s for s in memory.get_finished_spans() if s.parent is None]
    assert sorted(s.attributes["llm_exec.task_id"] for s in calls) == [f"b-{i}" for i in range(6)]
    assert exports == [12]  # six calls and their six attempts, in one export at the end


# -- the pure parts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    CALLER.upper(),  # hex digits must be lowercase
    f"00-{'0' * 32}-{CALLER_SPAN}-01",  # all-zero trace id
    f"00-{CALLER_TRACE}-{'0' * 16}-01",  # all-zero parent id
    f"ff-{CALLER_TRACE}-{CALLER_SPAN}-01",  # forbidden version
    f"{CALLER}-extra",  # version 00 has exactly four fields
    f"00-{CALLER_TRACE[:-1]}-{CALLER_SPAN}-01",
    "", None, 42,
])
def test_invalid_traceparent_is_ignored(value: Any) -> None:
    assert tracing.parse_traceparent(value) is None


def test_traceparent_round_trip() -> None:
    parsed = tracing.parse_traceparent(f" {CALLER} ", "congo=t61rcWkgMzE")
    assert parsed == tracing.TraceParent(int(CALLER_TRACE, 16), int(CALLER_SPAN, 16), 1, "congo=t61rcWkgMzE")
    assert parsed.header == CALLER
    assert tracing.parse_traceparent(f"01-{CALLER_TRACE}-{CALLER_SPAN}-01-future") is not None  # a later version


def test_environment_wins_and_metadata_becomes_a_link() -> None:
    env_only = tracing.caller_context({"TRACEPARENT": CALLER}, None)
    spec_only = tracing.caller_context({}, {"traceparent": OTHER, "tracestate": "a=b"})
    both = tracing.caller_context({"TRACEPARENT": CALLER}, {"traceparent": OTHER})
    same_trace = tracing.caller_context({"TRACEPARENT": CALLER}, {"traceparent": f"00-{CALLER_TRACE}-{OTHER_SPAN}-01"})
    invalid_env = tracing.caller_context({"TRACEPARENT": "garbage"}, {"traceparent": OTHER})
    assert env_only == (tracing.parse_traceparent(CALLER), None)
    assert spec_only == (tracing.parse_traceparent(OTHER, "a=b"), None)
    assert both == (tracing.parse_traceparent(CALLER), tracing.parse_traceparent(OTHER))
    assert same_trace == (tracing.parse_traceparent(CALLER), None)  # an ancestor in the same trace: no link
    assert invalid_env == (tracing.parse_traceparent(OTHER), None)


# -- the flush budget, timed in-process ------------------------------------------------------------------


def _one_pending_span() -> None:
    now = time.time_ns()
    tracing._pending.append(tracing.SpanData("chat m", now - 1000, now, {"gen_ai.operation.name": "chat"}))


@pytest.mark.parametrize("collector", ["dead", "slow"])
def test_flush_is_bounded_by_one_second(collector: str, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    receiver = Receiver(delay=5.0)
    with receiver.running():
        port = closed_port() if collector == "dead" else receiver.port
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "30")  # capped by the budget all the same
        _one_pending_span()
        started = time.monotonic()
        tracing.flush()
        elapsed = time.monotonic() - started
    assert elapsed <= tracing.FLUSH_BUDGET_SECONDS + 0.1, elapsed
    out, err = capsys.readouterr()
    assert out == ""
    (warning,) = err.splitlines()
    assert warning.startswith("llm-exec: telemetry: 1 span(s) not exported: OTLP/HTTP ") and f":{port}/v1/traces" \
        in warning, warning


def test_grpc_without_its_exporter_is_one_warning(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import opentelemetry.exporter.otlp.proto.grpc  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("opentelemetry-exporter-otlp-proto-grpc is installed here")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    _one_pending_span()
    tracing.flush()
    out, err = capsys.readouterr()
    assert out == "" and err == ("llm-exec: telemetry: OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs "
                                 "opentelemetry-exporter-otlp-proto-grpc (not installed): no spans exported\n")


# -- through the executables, OTLP/HTTP to a local receiver ----------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


def traced(receiver: Receiver, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **extra}


def test_executable_exports_its_spans_into_the_callers_trace(emulator: Emulator, receiver: Receiver) -> None:
    run = run_executor("gpt", SPEC, url=emulator.url, env=traced(
        receiver, TRACEPARENT=CALLER, TRACESTATE="congo=t61rcWkgMzE",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=test"))
    assert run.code == 0, run.stderr
    assert len(receiver.requests) == 1  # one export, before the process exits
    spans = receiver.spans()
    call, attempt = by_name(spans, "chat gpt-5.4-mini"), by_name(spans, "attempt 1")
    assert (call.trace_id, call.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
    assert (attempt.trace_id, attempt.parent_span_id) == (CALLER_TRACE, call.span_id)
    assert call.kind == attempt.kind == "client"
    assert call.scope == "llm_exec"
    assert call.resource["service.name"] == "llm-exec-gpt"
    assert call.resource["deployment.environment.name"] == "test"
    result = run.result
    assert call.attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-5.4-mini", "gen_ai.response.model": result["response_model"],
        "gen_ai.response.id": result["request_id"],
        "gen_ai.usage.input_tokens": result["prompt_tokens"], "gen_ai.usage.output_tokens": result["completion_tokens"],
        "gen_ai.usage.cache_read.input_tokens": result["cached_tokens"],
        "gen_ai.usage.reasoning.output_tokens": result["reasoning_tokens"],
        "gen_ai.response.finish_reasons": ["stop"], "gen_ai.request.max_tokens": 40,
        "gen_ai.request.temperature": 0.2, "server.address": "127.0.0.1", "server.port": emulator.port,
        "llm_exec.cost_usd": result["cost_usd"], "llm_exec.attempts": 1, "llm_exec.task_id": "trace-1",
        "llm_exec.exit_code": 0,
    }


def test_retries_show_as_attempt_spans(emulator: Emulator, receiver: Receiver) -> None:
    emulator.script([{"status": 500}])
    run = run_executor("claude", SPEC, url=emulator.url, env=traced(receiver))
    assert run.code == 0 and run.result["attempts"] == 2, run.stderr
    spans = receiver.spans()
    call = by_name(spans, "chat claude-sonnet-4-6")
    first, second = by_name(spans, "attempt 1"), by_name(spans, "attempt 2")
    assert call.attributes["llm_exec.attempts"] == 2 and call.status == "unset"
    assert first.parent_span_id == second.parent_span_id == call.span_id
    assert (first.status, first.attributes["error.type"]) == ("error", "server_error")
    assert second.status == "unset" and "error.type" not in second.attributes
    assert second.attributes["http.request.resend_count"] == 1
    assert first.end_ns <= second.start_ns  # the backoff wait lies between them


def test_a_failed_call_is_an_error_span(emulator: Emulator, receiver: Receiver) -> None:
    emulator.script([{"status": 401}])
    run = run_executor("gpt", SPEC, url=emulator.url, env=traced(receiver))
    assert run.code == 2
    call = by_name(receiver.spans(), "chat gpt-5.4-mini")
    assert call.status == "error" and call.status_message == run.result["error"]["message"]
    assert call.attributes["error.type"] == "authentication_error"
    assert call.attributes["llm_exec.exit_code"] == 2
    assert call.attributes["gen_ai.response.finish_reasons"] == ["error"]
    assert by_name(receiver.spans(), "attempt 1").attributes["error.type"] == "authentication_error"


def test_metadata_traceparent_when_the_environment_has_none(emulator: Emulator, receiver: Receiver) -> None:
    spec = {**SPEC, "metadata": {"traceparent": OTHER, "ticket": "T-1"}}
    run = run_executor("llama", spec, url=emulator.url, env=traced(receiver, OTEL_SERVICE_NAME="billing"))
    assert run.code == 0 and run.result["metadata"] == spec["metadata"]  # echoed unchanged
    call = by_name(receiver.spans(), "chat llama3.2")
    assert (call.trace_id, call.parent_span_id, call.links) == (OTHER_TRACE, OTHER_SPAN, [])
    assert call.resource["service.name"] == "billing"
    # Both: the environment (the process that started us) is the parent, the spec's trace a link.
    receiver.requests.clear()
    run_executor("llama", spec, url=emulator.url, env=traced(receiver, TRACEPARENT=CALLER))
    call = by_name(receiver.spans(), "chat llama3.2")
    assert (call.trace_id, call.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
    assert call.links == [(OTHER_TRACE, OTHER_SPAN)]


@pytest.mark.parametrize("collector", ["dead", "slow"])
def test_a_dead_or_slow_collector_changes_no_result(collector: str, emulator: Emulator, tmp_path: Path) -> None:
    baseline = run_executor("llama", SPEC, url=emulator.url)
    with Receiver(delay=5.0).running() as slow:
        port = closed_port() if collector == "dead" else slow.port
        run = run_executor("llama", SPEC, url=emulator.url,
                           env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
        if collector == "slow":
            assert slow.bodies, "the slow collector was not even reached"
    assert stable(run.result) == stable(baseline.result)
    assert run.stdout.count("\n") == 1
    added = run.elapsed - baseline.elapsed
    # The flush budget (1 s, import of the SDK included) plus what a loaded machine adds around it.
    assert added <= tracing.FLUSH_BUDGET_SECONDS + SLACK_SECONDS, added
    warnings = [line for line in run.stderr.splitlines() if "telemetry" in line]
    assert len(warnings) == 1 and "not exported" in warnings[0], run.stderr


def test_content_only_with_the_flag_and_never_a_key(emulator: Emulator, receiver: Receiver) -> None:
    key = TEST_KEYS["OPENAI_API_KEY"]
    spec = {**SPEC, "prompt": f"Repeat after me: my key is {key}"}
    run_executor("gpt", spec, url=emulator.url, env=traced(receiver))
    assert b"Repeat after me" not in receiver.raw and b"Emulated" not in receiver.raw
    receiver.bodies.clear()
    receiver.requests.clear()
    capture = {tracing.CAPTURE_CONTENT_VARIABLE: "true"}
    run = run_executor("gpt", spec, url=emulator.url, env=traced(receiver, **capture))
    call = by_name(receiver.spans(), "chat gpt-5.4-mini")
    (message,) = json.loads(call.attributes["gen_ai.input.messages"])
    assert message["parts"][0]["content"] == "Repeat after me: my key is [REDACTED]"
    assert json.loads(call.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == run.result["output"]
    # A provider that echoes the key in its error, every key variable set: none is ever exported.
    emulator.script([{"fault": "echo_key", "status": 401}])
    run_executor("claude", spec, url=emulator.url, env=traced(receiver, **capture))
    assert by_name(receiver.spans(), "chat claude-sonnet-4-6").status == "error"
    for value in TEST_KEYS.values():
        assert value.encode() not in receiver.raw, value


def test_console_exporter_never_writes_to_stdout(emulator: Emulator) -> None:
    run = run_executor("gpt", SPEC, url=emulator.url, env={"OTEL_TRACES_EXPORTER": "console"})
    assert run.code == 0 and len(run.lines) == 1  # stdout: the result line only
    assert '"name": "chat gpt-5.4-mini"' in run.stderr


def test_batch_of_n_lines_exports_n_call_spans_once(emulator: Emulator, receiver: Receiver, tmp_path: Path) -> None:
    lines = [{"task_id": f"b-{i}", "prompt": f"line {i}", "max_tokens": 8,
              "metadata": {"traceparent": f"00-{CALLER_TRACE}-{i + 1:016x}-01"}} for i in range(5)]
    proc = subprocess.run([str(BIN_DIR / "llm-exec-gpt"), "--batch", "--concurrency", "2"],
                          input="".join(json.dumps(line) + "\n" for line in lines).encode(), capture_output=True,
                          env={**subprocess_env(), **emulator_env(emulator.url), **traced(receiver)}, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(receiver.requests) == 1  # flushed once, at the end
    calls = [s for s in receiver.spans() if s.name == "chat gpt-5.4-mini"]
    assert sorted((s.attributes["llm_exec.task_id"], s.parent_span_id) for s in calls) == [
        (f"b-{i}", f"{i + 1:016x}") for i in range(5)]  # each line under its own caller span


def test_extra_not_installed_is_one_warning_and_the_same_result(emulator: Emulator, receiver: Receiver) -> None:
    baseline = run_executor("gpt", SPEC, url=emulator.url)
    # The SDK made unimportable in this interpreter only, as when the otel extra is not installed.
    code = "import sys; sys.modules['opentelemetry.sdk'] = None; from llm_exec._entry import gpt; gpt()"
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(SPEC).encode(), capture_output=True,
                          env={**subprocess_env(), **emulator_env(emulator.url), **traced(receiver)}, timeout=60,
                          check=False)
    assert proc.returncode == 0
    assert stable(json.loads(proc.stdout)) == stable(baseline.result)
    (warning,) = proc.stderr.decode().splitlines()
    assert warning.startswith("llm-exec: telemetry: OTEL_* variables ask for traces, but OpenTelemetry is not "
                              "installed") and "llm-exec[otel]" in warning
    assert receiver.requests == []


def _imported(executor: str, url: str, env: Mapping[str, str]) -> set[str]:
    """The modules an executor run imports (python -X importtime, through its console entry point)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"from llm_exec._entry import {executor}; "
                           f"{executor}()"], input=json.dumps(SPEC).encode(), capture_output=True, timeout=60,
                          env={**subprocess_env(), **emulator_env(url), **env}, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize("executor", ["gpt", "claude"])
def test_off_means_nothing_of_opentelemetry_is_imported(executor: str, emulator: Emulator, receiver: Receiver) -> None:
    def ours(modules: set[str]) -> set[str]:
        # The anthropic SDK imports opentelemetry-api (a dependency of its own, for its own optional
        # spans): the SDK, the exporters and our tracing module are what tracing would add.
        return {m for m in modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter",
                                                    "google.protobuf", "llm_exec.telemetry.tracing"))}

    assert ours(_imported(executor, emulator.url, {})) == set()
    on = ours(_imported(executor, emulator.url, traced(receiver)))
    assert {"opentelemetry.sdk.trace", "llm_exec.telemetry.tracing"} <= on  # the check above can fail


# -- llm-route -------------------------------------------------------------------------------------------

PAIR = """
version: 1
agents:
  - name: local
    type: meta-llama
    model: llama3.2
    capabilities: [code]
    price_per_mtok: {input: 0, output: 0}
  - name: gpt
    type: openai-gpt
    model: gpt-5.4-mini
    capabilities: [code]
"""


def run_route(spec: Any, registry: Path, env: Mapping[str, str], tmp_path: Path) -> Run:
    child = {**subprocess_env(), "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
             **env}
    started = time.monotonic()
    proc = subprocess.run([str(BIN_DIR / "llm-route"), "--registry", str(registry)], input=json.dumps(spec).encode(),
                          capture_output=True, env=child, timeout=60, check=False)
    stdout = proc.stdout.decode()
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return Run(proc.returncode, stdout, proc.stderr.decode(errors="replace"), lines, time.monotonic() - started)


def test_route_and_its_executors_form_one_trace(emulator: Emulator, receiver: Receiver, tmp_path: Path) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text(textwrap.dedent(PAIR).lstrip())
    emulator.script([{"status": 500}])  # the first agent (local llama) fails, then llm-route fails over to gpt
    spec = {"task_id": "route-1", "prompt": "Say hello", "max_tokens": 20, "max_retries": 0,
            "required_capabilities": ["code"]}
    run = run_route(spec, registry, {**emulator_env(emulator.url), **traced(receiver, TRACEPARENT=CALLER)}, tmp_path)
    assert run.code == 0 and run.result["agent"] == "gpt", run.stderr
    assert len(receiver.requests) == 3  # each executor's, then llm-route's own
    spans = receiver.spans()
    assert {s.trace_id for s in spans} == {CALLER_TRACE}
    route, local, gpt = by_name(spans, "llm-route"), by_name(spans, "agent local"), by_name(spans, "agent gpt")
    assert route.parent_span_id == CALLER_SPAN and route.kind == "internal"
    assert route.resource["service.name"] == "llm-route"
    assert route.attributes["llm_exec.route.chosen"] == "local"
    assert route.attributes["llm_exec.route.candidates"] == ["local", "gpt"]
    assert route.attributes["llm_exec.route.reason"] == "cheapest first"
    assert route.attributes["llm_exec.route.tried"] == ["local", "gpt"]
    assert route.attributes["llm_exec.agent"] == "gpt" and route.attributes["llm_exec.task_id"] == "route-1"
    assert route.status == "unset"
    assert local.parent_span_id == gpt.parent_span_id == route.span_id
    assert (local.status, local.attributes["error.type"], local.attributes["llm_exec.exit_code"]) == (
        "error", "server_error", 1)
    assert gpt.status == "unset" and gpt.attributes["llm_exec.exit_code"] == 0
    assert route.start_ns <= local.start_ns < local.end_ns <= gpt.start_ns < gpt.end_ns <= route.end_ns
    # Each executor's call span is the child of its agent's span: TRACEPARENT passed on spawn.
    llama_call, gpt_call = by_name(spans, "chat llama3.2"), by_name(spans, "chat gpt-5.4-mini")
    assert llama_call.parent_span_id == local.span_id and llama_call.status == "error"
    assert gpt_call.parent_span_id == gpt.span_id and gpt_call.attributes["llm_exec.agent"] == "gpt"


# -- llm-exec-daemon -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_task_served_by_the_daemon_exports_its_span(emulator: Emulator, receiver: Receiver, tmp_path: Path) -> None:
    from ..test_daemon import Daemon, daemon_env

    daemon = Daemon(tmp_path, daemon_env())
    try:
        run = run_executor("gpt", SPEC, url=emulator.url, env=traced(receiver, TRACEPARENT=CALLER,
                                                                      LLM_EXEC_DAEMON=daemon.socket))
        assert run.code == 0 and run.result["status"] == "success", run.stderr
        assert daemon.served() == 1  # it did go through the daemon
        call = by_name(receiver.spans(), "chat gpt-5.4-mini")
        assert (call.trace_id, call.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
        assert call.resource["service.name"] == "llm-exec-gpt"  # the caller's program, not the daemon's
    finally:
        assert daemon.stop() == 0
    log = daemon.log.read_text()
    assert "Traceback" not in log and "still runs after the warm-up" not in log, log
