"""llm-exec-llama (OpenAI-compatible mode) against a real llama.cpp server and a real model.

Gemma 3 270M is a base model: replies are continuations, so these tests assert shapes, counts
and limits, not wording. Decoding is greedy (temperature 0) so that a repeated prompt gives the
same continuation. The Ollama-native side has no real server here: it stays tested against the
emulator and the recorded traffic.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import run_executor
from tests.local_model.helpers import check_run, local_task, spawn_llama
from tests.local_model.llama_server import MODEL_ALIAS, LlamaServer

pytestmark = pytest.mark.local_model

# A prompt the base model continues for as long as it is allowed to.
LONG_PROMPT = "Count from 1 to 1000, one number per line, and do not stop: 1, 2, 3, 4, 5,"


def test_short_prompt(llama_server: LlamaServer) -> None:
    run = run_executor("llama", local_task(llama_server, "The capital of France is"))

    result = run.result
    assert run.code == 0, run.stderr
    assert result["status"] == "success"
    assert isinstance(result["output"], str) and result["output"].strip()
    assert result["provider"] == "openai-compatible"
    assert result["model"] == MODEL_ALIAS
    assert result["prompt_tokens"] > 0 and result["completion_tokens"] > 0
    assert result["tokens_used"] == result["prompt_tokens"] + result["completion_tokens"]
    assert result["completion_tokens"] <= 32
    assert result["finish_reason"] in ("stop", "length")
    assert result["cost_usd"] is None  # a local model has no price
    assert "usage_note" not in result
    assert result["attempts"] == 1


def test_settings_from_environment(llama_server: LlamaServer) -> None:
    """The README's other way: LLM_EXEC_LLAMA_API_STYLE + LLM_EXEC_LLAMA_BASE_URL, no spec fields."""
    spec = local_task(llama_server, "The capital of France is")
    del spec["api_style"], spec["api_endpoint"]
    env = {"LLM_EXEC_LLAMA_API_STYLE": "openai", "LLM_EXEC_LLAMA_BASE_URL": llama_server.base_url}

    run = run_executor("llama", spec, env=env)

    assert run.code == 0, run.stderr
    assert run.result["provider"] == "openai-compatible"
    assert run.result["output"].strip() and run.result["completion_tokens"] > 0


@pytest.mark.parametrize("max_tokens", [1, 5])
def test_max_tokens_honoured(llama_server: LlamaServer, max_tokens: int) -> None:
    run = run_executor("llama", local_task(llama_server, LONG_PROMPT, max_tokens=max_tokens))

    assert run.code == 0, run.stderr
    assert 0 < run.result["completion_tokens"] <= max_tokens
    assert run.result["finish_reason"] == "length"


def test_stream_deltas_concatenate_to_output(llama_server: LlamaServer) -> None:
    run = run_executor("llama", local_task(llama_server, LONG_PROMPT, max_tokens=24), args=("--stream",))

    result = run.result
    assert run.code == 0, run.stderr
    assert len(run.deltas) > 1, run.stdout
    assert "".join(run.deltas) == result["output"]
    assert result["output"].strip()
    assert result["finish_reason"] == "length"
    # llama-cpp-python's stream carries no usage, even with stream_options.include_usage: the
    # counts must be null with the reason stated, never invented.
    if result["prompt_tokens"] is None or result["completion_tokens"] is None:
        assert result["usage_note"]
        assert result["tokens_used"] is None
    else:
        assert result["completion_tokens"] <= 24
    assert result["cost_usd"] is None


def test_stream_and_non_stream_agree(llama_server: LlamaServer) -> None:
    spec = local_task(llama_server, LONG_PROMPT, max_tokens=16)
    plain = run_executor("llama", spec)
    streamed = run_executor("llama", spec, args=("--stream",))

    assert plain.code == streamed.code == 0
    assert streamed.result["output"] == plain.result["output"]


def test_stop_sequence_honoured(llama_server: LlamaServer) -> None:
    # Find a stop sequence inside the continuation the model gives without one, then ask again
    # with it: the answer must end right before it.
    spec = local_task(llama_server, LONG_PROMPT, max_tokens=24)
    free = run_executor("llama", spec)
    assert free.code == 0, free.stderr
    text = free.result["output"]
    stop = next((token for token in text.split() if len(token) >= 2 and text.index(token) >= 4), None)
    assert stop is not None, f"no stop candidate in {text!r}"

    run = run_executor("llama", {**spec, "stop": [stop]})

    assert run.code == 0, run.stderr
    assert stop not in run.result["output"]
    assert run.result["output"] == text[: text.index(stop)]
    assert run.result["finish_reason"] == "stop"
    assert run.result["completion_tokens"] < free.result["completion_tokens"]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_deadline_honoured_on_long_generation(llama_server: LlamaServer, stream: bool) -> None:
    timeout = 4.0  # process start included: leaves room for the first deltas on a busy machine
    # Non-streaming: llama-cpp-python keeps generating after the client hangs up (it cannot see
    # the disconnect until the end), so keep that one short enough not to hold up later tests.
    max_tokens = 1500 if stream else 300
    spec = local_task(llama_server, LONG_PROMPT, max_tokens=max_tokens, timeout_seconds=timeout, stream=stream)

    run = run_executor("llama", spec, timeout=timeout + 30)

    result = run.result
    assert run.code == 1, run.stdout
    assert result["status"] == "error"
    assert result["error"]["type"] in ("timeout", "read_timeout"), result["error"]
    assert run.elapsed <= timeout + 1.0, run.elapsed
    assert result["execution_time_seconds"] <= timeout + 1.0
    if stream:
        # What was streamed before the deadline is reported, and nothing else.
        assert run.deltas, "no delta before the deadline"
        assert result["output"] == "".join(run.deltas)
    # Without a stream the server only notices the hang-up when its generation ends: wait for it.
    llama_server.warm_up()


def test_prompt_over_context_window_is_a_task_error(llama_server: LlamaServer) -> None:
    prompt = "word " * 3000  # ~3000 tokens against n_ctx 2048
    run = run_executor("llama", local_task(llama_server, prompt))

    result = run.result
    assert run.code == 3, run.stdout
    # llama-cpp-python answers 400 with code context_length_exceeded ("This model's maximum context length is").
    assert result["error"]["type"] == "context_length_exceeded"
    assert result["error"]["status_code"] == 400
    assert "context length" in result["error"]["message"]
    assert result["error"]["retryable"] is False
    assert result["attempts"] == 1


def test_prompt_over_context_window_streaming(llama_server: LlamaServer) -> None:
    """Streamed, the same prompt gets 200 and an empty event stream (llama-cpp-python raises inside
    its generator after the headers went out): one valid error result, never a success."""
    prompt = "word " * 3000
    run = run_executor("llama", local_task(llama_server, prompt), args=("--stream",))

    assert run.code == 1, run.stdout
    assert run.result["status"] == "error"
    assert run.result["error"]["type"] in ("invalid_response", "truncated_stream", "stream_error")
    assert not run.deltas
    assert run.result["output"] is None


def test_stream_cut_by_next_request_is_an_error(llama_server: LlamaServer, tmp_path: Path) -> None:
    """llama-cpp-python (interrupt_requests, on by default) ends a running stream with [DONE] and
    no finish_reason when another request arrives: the cut answer must not pass for a success."""
    started = time.monotonic()
    proc = spawn_llama(local_task(llama_server, LONG_PROMPT, max_tokens=1500, timeout_seconds=60), tmp_path, "--stream")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert json.loads(first)["type"] == "delta", first

    other = run_executor("llama", local_task(llama_server, "Hello", max_tokens=2))
    rest, stderr = proc.communicate(timeout=30)

    assert other.code == 0, other.stderr
    run = check_run(proc, first + rest, stderr, started)
    assert run.code == 1, run.result
    assert run.result["error"]["type"] == "truncated_stream", run.result["error"]
    assert run.result["output"] == "".join(run.deltas)
    assert run.result["finish_reason"] is None


def test_server_killed_mid_stream(private_server: LlamaServer, tmp_path: Path) -> None:
    spec = local_task(private_server, LONG_PROMPT, max_tokens=1500, timeout_seconds=60)
    started = time.monotonic()
    proc = spawn_llama(spec, tmp_path, "--stream")
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    assert json.loads(first)["type"] == "delta", first

    private_server.kill()
    rest, stderr = proc.communicate(timeout=30)

    run = check_run(proc, first + rest, stderr, started)
    result = run.result
    assert run.code == 1, (result, run.stderr)
    assert result["status"] == "error"
    assert result["error"]["type"] in ("connection_error", "stream_error", "truncated_stream"), result["error"]
    assert result["attempts"] == 1  # deltas were written: no retry
    assert result["output"] == "".join(run.deltas)
    assert result["output"]
