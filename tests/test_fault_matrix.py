"""The full fault matrix: every executor, streaming and not, against every fault the emulator can
inject. Each case checks status, exit code, error.type, retryable, attempts, and the waits the
retry policy asked for (recorded by an injected sleep: no test waits for real).

Runs the executor's runner in-process (same code as the console scripts, minus process start-up)
so that 150+ cases stay fast; tests/test_executors.py covers the same paths through subprocesses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from llm_exec.emulator import Emulator
from llm_exec.runner import RunOptions, run

from .conftest import EXECUTORS, emulator_env, result_validator

STREAMING = {"claude", "gpt", "gemini", "llama"}


@dataclass(frozen=True)
class Expect:
    code: int
    error_type: str | None = None
    retryable: bool | None = None
    attempts: int = 1
    sleeps: tuple[float, ...] | None = None  # exact waits, when the server dictated them
    retry_after: float | None = None


@dataclass(frozen=True)
class Fault:
    name: str
    steps: list[dict[str, Any]]
    expect: Expect
    # Overrides for streaming runs (a stream cut after deltas is not retried).
    expect_stream: Expect | None = None
    executors: frozenset[str] = frozenset(EXECUTORS)
    spec: dict[str, Any] = field(default_factory=dict)
    # Per (executor, stream) exceptions, each with its reason in a comment where it is listed.
    special: dict[tuple[str, bool], Expect] = field(default_factory=dict)


MANY = 10  # repeat a failing step more often than any retry budget

FAULTS = [
    Fault("429-retry-after", [{"status": 429, "headers": {"retry-after": "1"}, "times": MANY}],
          Expect(1, "rate_limited", True, attempts=3, sleeps=(1.0, 1.0), retry_after=1.0)),
    Fault("429-retry-after-ms-wins", [{"status": 429, "headers": {"retry-after": "20", "retry-after-ms": "1500"},
                                       "times": MANY}],
          Expect(1, "rate_limited", True, attempts=3, sleeps=(1.5, 1.5), retry_after=1.5)),
    Fault("429-then-ok", [{"status": 429, "headers": {"retry-after-ms": "250"}}],
          Expect(0, attempts=2, sleeps=(0.25,))),
    Fault("429-wait-past-deadline", [{"status": 429, "headers": {"retry-after": "3600"}, "times": MANY}],
          Expect(1, "rate_limited", True, attempts=1, sleeps=(), retry_after=3600.0)),
    Fault("500", [{"status": 500, "times": MANY}], Expect(1, "server_error", True, attempts=3)),
    Fault("503", [{"status": 503, "times": MANY}], Expect(1, "server_error", True, attempts=3)),
    Fault("529-overloaded", [{"status": 529, "times": MANY}], Expect(1, "overloaded", True, attempts=3)),
    Fault("500-x-should-retry-false", [{"status": 500, "headers": {"x-should-retry": "false"}, "times": MANY}],
          Expect(1, "server_error", False, attempts=1, sleeps=())),
    Fault("400-x-should-retry-true-then-ok", [{"status": 400, "headers": {"x-should-retry": "true"}}],
          Expect(0, attempts=2)),
    Fault("reset-before-response", [{"fault": "reset", "times": MANY}],
          Expect(1, "connection_error", True, attempts=3)),
    Fault("reset-mid-body", [{"fault": "reset_mid_body", "times": MANY}],
          Expect(1, "connection_error", True, attempts=3),
          # The first part of the stream already reached stdout as deltas: no retry.
          expect_stream=Expect(1, "connection_error", True, attempts=1)),
    Fault("read-timeout", [{"fault": "stall", "seconds": 30, "times": MANY}],
          Expect(1, "timeout", False, attempts=1), spec={"timeout_seconds": 1.5}),
    Fault("trickle", [{"fault": "trickle", "interval_ms": 100, "seconds": 30, "times": MANY}],
          Expect(1, "timeout", False, attempts=1), spec={"timeout_seconds": 1.5},
          # The trickle is SSE comment lines (": ..."), which google-genai cannot parse: it fails at
          # once instead of waiting for the deadline.
          special={("gemini", True): Expect(1, "invalid_response", False, attempts=1)}),
    Fault("truncated", [{"fault": "truncate", "times": MANY}],
          Expect(1, "connection_error", True, attempts=3),
          expect_stream=Expect(1, "connection_error", True, attempts=1)),
    Fault("malformed-json", [{"fault": "malformed", "times": MANY}],
          Expect(1, "invalid_response", False, attempts=1)),
    Fault("html-proxy-page", [{"fault": "html", "status": 502, "times": MANY}],
          Expect(1, "server_error", True, attempts=3)),
    Fault("empty-completion", [{"fault": "empty"}], Expect(0, attempts=1)),
    Fault("error-inside-200-stream", [{"fault": "stream_error", "times": MANY}],
          Expect(1, "overloaded", True, attempts=3),
          expect_stream=Expect(1, "overloaded", True, attempts=1),
          executors=frozenset({"claude"})),
    Fault("usage-chunk-not-last", [{"fault": "usage_not_last"}], Expect(0, attempts=1),
          executors=frozenset({"gpt"})),
    # Each provider's own refusal of an over-long prompt (custom: TGI's 422): exit 3, never retried.
    Fault("context-length", [{"error_body": "context_length", "times": MANY}],
          Expect(3, "context_length_exceeded", False, attempts=1, sleeps=())),
    # A gateway (LiteLLM proxy) in front of any provider: 400s that are the agent's configuration.
    Fault("gateway-400-invalid-model", [{"error_body": "litellm_invalid_model", "times": MANY}],
          Expect(2, "model_not_found", False, attempts=1, sleeps=())),
    Fault("gateway-400-no-db", [{"error_body": "litellm_no_db", "times": MANY}],
          Expect(2, "authentication_error", False, attempts=1, sleeps=())),
    # llama.cpp's refusal through any route; older servers sent it as a 500, which is not retried either.
    Fault("llama-cpp-context-size", [{"error_body": "llama_cpp_context_length", "times": MANY}],
          Expect(3, "context_length_exceeded", False, attempts=1, sleeps=())),
    Fault("llama-cpp-context-size-500", [{"error_body": "llama_cpp_context_length", "status": 500, "times": MANY}],
          Expect(3, "context_length_exceeded", False, attempts=1, sleeps=()), executors=frozenset({"llama"})),
]


def cases() -> list[Any]:
    out = []
    for fault in FAULTS:
        for executor in EXECUTORS:
            if executor not in fault.executors:
                continue
            for stream in (False, True):
                if stream and executor not in STREAMING:
                    continue
                out.append(pytest.param(fault, executor, stream,
                                        id=f"{fault.name}-{executor}-{'stream' if stream else 'plain'}"))
    return out


@pytest.fixture(scope="module")
def emu() -> Any:
    with Emulator() as emulator:
        yield emulator


@pytest.mark.parametrize(("fault", "executor", "stream"), cases())
def test_fault(fault: Fault, executor: str, stream: bool, emu: Emulator, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> None:
    emu.reset()
    for name, value in emulator_env(emu.url).items():
        monkeypatch.setenv(name, value)
    emu.script(fault.steps)
    spec = {"task_id": f"{fault.name}-{executor}", "prompt": "four words of prompt", "max_tokens": 30,
            "stream": stream, "timeout_seconds": 60, **fault.spec}
    (tmp_path / "task.json").write_text(json.dumps(spec))
    sleeps: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    code = run(RunOptions(executor=executor, program=f"llm-exec-{executor}", input_path=str(tmp_path / "task.json"),
                          output_path=str(tmp_path / "out.jsonl"), sleep=recording_sleep))
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    result = lines[-1]
    assert not list(result_validator().iter_errors(result)), result
    expect = fault.expect_stream if stream and fault.expect_stream else fault.expect
    expect = fault.special.get((executor, stream), expect)
    error = result.get("error") or {}
    got = (code, result["exit_code"], error.get("type"), error.get("retryable"), result["attempts"])
    want = (expect.code, expect.code, expect.error_type, expect.retryable, expect.attempts)
    assert got == want, (result, lines[:-1])
    if expect.code == 0:
        assert result["status"] == "success"
    if expect.sleeps is not None:
        assert tuple(sleeps) == expect.sleeps
    else:
        assert len(sleeps) == expect.attempts - 1  # backoff waits, jittered
    if expect.retry_after is not None:
        assert error["retry_after_seconds"] == expect.retry_after
    # Streaming: every line before the result is a delta, and they add up to the output.
    deltas = [line["text"] for line in lines[:-1]]
    assert all(line.get("type") == "delta" for line in lines[:-1])
    if stream and deltas:
        assert "".join(deltas) == result["output"]


def test_usage_chunk_not_last_still_counts(emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenAI's usage chunk can be followed by another chunk: the usage must not be lost."""
    emu.reset()
    for name, value in emulator_env(emu.url).items():
        monkeypatch.setenv(name, value)
    emu.script([{"fault": "usage_not_last"}])
    (tmp_path / "task.json").write_text(json.dumps({"prompt": "count these four words", "stream": True}))
    assert run(RunOptions(executor="gpt", program="llm-exec-gpt", input_path=str(tmp_path / "task.json"),
                          output_path=str(tmp_path / "out.jsonl"))) == 0
    result = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[-1])
    assert result["prompt_tokens"] == 4 and result["completion_tokens"] > 0


def test_empty_completion_is_success_with_empty_output(emu: Emulator, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    emu.reset()
    for name, value in emulator_env(emu.url).items():
        monkeypatch.setenv(name, value)
    emu.script([{"fault": "empty"}])
    (tmp_path / "task.json").write_text(json.dumps({"prompt": "say nothing"}))
    assert run(RunOptions(executor="claude", program="llm-exec-claude", input_path=str(tmp_path / "task.json"),
                          output_path=str(tmp_path / "out.jsonl"))) == 0
    result = json.loads((tmp_path / "out.jsonl").read_text())
    assert result["output"] == "" and result["completion_tokens"] == 0


# A stream that ends cleanly (terminator sent) but before its terminal event: never a success.
CUT_STREAMS = {
    "gpt": ('data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
            '"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n', "text/event-stream"),
    "claude": ('event: message_start\ndata: {"type":"message_start","message":{"id":"m1","type":"message",'
               '"role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,'
               '"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
               'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
               '"content_block":{"type":"text","text":""}}\n\n'
               'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
               '"delta":{"type":"text_delta","text":"Hel"}}\n\n', "text/event-stream"),
    "gemini": ('data: {"candidates": [{"content": {"parts": [{"text": "Hel"}],"role": "model"},"index": 0}],'
               '"usageMetadata": {"promptTokenCount": 3,"totalTokenCount": 3},"modelVersion": "m"}\r\n\r\n',
               "text/event-stream"),
    "llama": ('{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"Hel"},'
              '"done":false}\n', "application/x-ndjson"),
}


@pytest.mark.parametrize("executor", sorted(CUT_STREAMS))
def test_stream_cut_before_its_terminal_event_is_an_error(executor: str, emu: Emulator, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    emu.reset()
    for name, value in emulator_env(emu.url).items():
        monkeypatch.setenv(name, value)
    body, content_type = CUT_STREAMS[executor]
    emu.script([{"status": 200, "body": body, "headers": {"content-type": content_type}}])
    (tmp_path / "task.json").write_text(json.dumps({"prompt": "hello", "stream": True}))
    code = run(RunOptions(executor=executor, program=f"llm-exec-{executor}", input_path=str(tmp_path / "task.json"),
                          output_path=str(tmp_path / "out.jsonl")))
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    result = lines[-1]
    assert code == 1, result
    assert result["error"]["type"] == "truncated_stream" and result["error"]["retryable"] is True
    assert [line["text"] for line in lines[:-1]] == ["Hel"] and result["output"] == "Hel"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("status", [400, 500])
def test_llama_cpp_server_context_overflow(status: int, stream: bool, emu: Emulator, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """llm-exec-llama in OpenAI-compatible mode, as against llama-server: its exceed_context_size_error
    (400; older servers 500) is context_length_exceeded, exit 3, one attempt."""
    emu.reset()
    for name, value in emulator_env(emu.url).items():
        monkeypatch.setenv(name, value)
    emu.script([{"error_body": "llama_cpp_context_length", "status": status, "times": MANY}])
    spec = {"prompt": "four words of prompt", "max_tokens": 30, "stream": stream, "api_style": "openai",
            "api_endpoint": f"{emu.url}/v1"}
    (tmp_path / "task.json").write_text(json.dumps(spec))
    code = run(RunOptions(executor="llama", program="llm-exec-llama", input_path=str(tmp_path / "task.json"),
                          output_path=str(tmp_path / "out.jsonl")))
    result = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[-1])
    assert not list(result_validator().iter_errors(result)), result
    assert (code, result["provider"], result["attempts"]) == (3, "openai-compatible", 1), result
    assert result["error"] == {
        "type": "context_length_exceeded", "retryable": False, "status_code": status, "retry_after_seconds": None,
        "field": None, "message": "the request exceeds the available context size, try increasing it"}
    assert [r["path"] for r in emu.requests()] == ["/v1/chat/completions"]
