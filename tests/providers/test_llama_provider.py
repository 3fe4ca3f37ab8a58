"""llm-exec-llama (Ollama native and OpenAI-compatible) against a real local HTTP server.

Recorded Ollama traffic from /work/shared/fixtures/ollama is replayed byte for byte; nothing of
ours is mocked.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import pytest

from llm_exec.errors import ConfigurationError, ConnectionError, ModelNotFoundError, ServiceUnavailableError
from llm_exec.providers.llama import LlamaLlm, OllamaLlm, OpenAiCompatibleLlm, ollama_host_url
from llm_exec.request import LlmRequest, Message
from llm_exec.response import LlmResponse
from tests.conftest import REPO_ROOT
from tests.providers.scripted_server import (
    Server,
    chunked,
    closed_port,
    fixture,
    generate,
    ndjson_pieces,
    no_worker_threads_left,
    reply,
    request_maker,
    stall,
    stream,
)

# What Ollama itself sends with a JSON answer.
OLLAMA_JSON = "application/json; charset=utf-8"

request = request_maker("Why is the sky blue?", model="llama3", max_tokens=100)


def recorded_lines(body: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


# -- recorded Ollama traffic ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["chat-nonstream-llama3.json", "chat-thinking-qwen3.6.json", "chat-tool-calls-llama3.1.json"]
)
def test_replay_nonstream(server: Server, name: str) -> None:
    recorded = fixture(f"ollama/{name}")
    server.actions.append(reply(200, recorded["response"]["body"], content_type=OLLAMA_JSON))
    answer = json.loads(recorded["response"]["body"])
    result = generate(OllamaLlm(base_url=server.url), request(model=recorded["request"]["body"]["model"]))

    assert result.content == answer["message"]["content"]
    assert "thinking" not in answer["message"] or answer["message"]["thinking"] not in result.content
    assert result.usage.prompt_tokens == answer["prompt_eval_count"]
    assert result.usage.completion_tokens == answer["eval_count"]
    assert result.usage.cached_tokens is None and result.usage.reasoning_tokens is None
    assert result.model == answer["model"]
    assert result.finish_reason == "stop"
    assert result.request_id is None
    sent = server.log[0]
    assert sent["path"] == "/api/chat"
    assert sent["body"]["stream"] is False


@pytest.mark.parametrize(
    "name",
    ["chat-stream-ndjson-llama3.json", "chat-stream-ndjson-gemma3-raw.json", "chat-stream-thinking-qwen3.6.json"],
)
def test_replay_stream(server: Server, name: str) -> None:
    recorded = fixture(f"ollama/{name}")
    body = recorded["response"]["body"]
    server.actions.append(chunked(ndjson_pieces(body)))
    lines = recorded_lines(body)
    expected_text = "".join(line["message"]["content"] for line in lines)
    final_line = lines[-1]
    assert final_line["done"] is True

    deltas, final = stream(OllamaLlm(base_url=server.url), request(stream=True))

    assert "".join(deltas) == expected_text == final.content
    assert all(deltas)  # empty content lines (thinking, the done line) yield nothing
    thinking = "".join(line["message"].get("thinking", "") for line in lines)
    assert not thinking or thinking not in final.content
    assert final.usage.prompt_tokens == final_line["prompt_eval_count"]
    assert final.usage.completion_tokens == final_line["eval_count"]
    assert final.finish_reason == "stop"
    assert final.model == final_line["model"]
    assert server.log[0]["body"]["stream"] is True


def test_tool_calls_finish_reason(server: Server) -> None:
    recorded = fixture("ollama/chat-tool-call-thinking-qwen3.6.json")
    server.actions.append(reply(200, recorded["response"]["body"], content_type=OLLAMA_JSON))
    answer = json.loads(recorded["response"]["body"])
    result = generate(OllamaLlm(base_url=server.url), request())
    assert result.finish_reason == "tool_calls"
    assert result.content == answer["message"]["content"] == ""
    assert result.usage.prompt_tokens == answer["prompt_eval_count"]


def test_recorded_404_is_model_not_found(server: Server) -> None:
    recorded = fixture("ollama/error-404-model-not-found.json")
    server.actions.append(reply(404, recorded["response"]["body"], content_type=OLLAMA_JSON))
    with pytest.raises(ModelNotFoundError) as info:
        generate(OllamaLlm(base_url=server.url), request(model="nonexistent-model:latest"))
    assert info.value.message == "model 'nonexistent-model:latest' not found"
    assert info.value.exit_code == 2


# -- request shape -------------------------------------------------------------------------------


def test_request_body_and_bearer_key(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", server.url.removeprefix("http://"))  # host:port, as Ollama takes it
    monkeypatch.setenv("OLLAMA_API_KEY", "ollama-key-123")
    recorded = fixture("ollama/chat-nonstream-llama3.json")
    server.actions.append(reply(200, recorded["response"]["body"], content_type=OLLAMA_JSON))
    provider = LlamaLlm.from_env()
    assert type(provider) is OllamaLlm
    req = LlmRequest(
        messages=(Message("system", "Be terse."), Message("user", "Hi")),
        model="llama3",
        max_tokens=32,
        temperature=0.0,
        top_p=0.9,
        stop=("\n\n",),
        seed=42,
    )
    generate(provider, req)
    sent = server.log[0]
    assert sent["headers"]["authorization"] == "Bearer ollama-key-123"
    assert sent["body"] == {
        "model": "llama3",
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
        "stream": False,
        "options": {"num_predict": 32, "temperature": 0.0, "top_p": 0.9, "stop": ["\n\n"], "seed": 42},
    }


def test_no_key_no_header_and_unset_options_omitted(server: Server) -> None:
    recorded = fixture("ollama/chat-nonstream-llama3.json")
    server.actions.append(reply(200, recorded["response"]["body"], content_type=OLLAMA_JSON))
    generate(OllamaLlm.from_env(api_endpoint=server.url), request())
    sent = server.log[0]
    assert "authorization" not in sent["headers"]
    assert sent["body"]["options"] == {"num_predict": 100}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:8000", "http://127.0.0.1:8000"),
        (":11500", "http://127.0.0.1:11500"),
        ("gpu-box", "http://gpu-box:11434"),
        ("gpu-box:9999", "http://gpu-box:9999"),
        ("http://gpu-box", "http://gpu-box:80"),
        ("https://ollama.example.com/proxy/", "https://ollama.example.com:443/proxy"),
        ("[::]:11434", "http://[::1]:11434"),
    ],
)
def test_ollama_host_normalisation(value: str, expected: str) -> None:
    assert ollama_host_url(value) == expected


def test_ollama_host_bad_port_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "localhost:notaport")
    with pytest.raises(ConfigurationError) as info:
        OllamaLlm.from_env()
    assert info.value.field == "OLLAMA_HOST"


def test_default_base_url() -> None:
    assert OllamaLlm.from_env().base_url == "http://localhost:11434"
    assert OpenAiCompatibleLlm.from_env().base_url == "http://localhost:8080/v1"


def test_describe_redacts_the_key() -> None:
    provider = OllamaLlm(base_url="http://127.0.0.1:11434", api_key="ollama-key-123")
    described = provider.describe(request(stream=True))
    assert described["url"] == "http://127.0.0.1:11434/api/chat"
    assert described["headers"]["Authorization"] == "Bearer [REDACTED]"
    assert described["body"]["stream"] is True
    assert "ollama-key-123" not in json.dumps(described)


# -- API style selection -------------------------------------------------------------------------


def test_api_style_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LlamaLlm.for_options({}) is OllamaLlm
    assert LlamaLlm.for_options({"api_style": "openai"}) is OpenAiCompatibleLlm
    monkeypatch.setenv("LLM_EXEC_LLAMA_API_STYLE", "openai")
    assert LlamaLlm.for_options({}) is OpenAiCompatibleLlm
    assert LlamaLlm.for_options({"api_style": "ollama"}) is OllamaLlm  # the spec wins
    monkeypatch.setenv("LLM_EXEC_LLAMA_API_STYLE", "vllm")
    with pytest.raises(ConfigurationError) as info:
        LlamaLlm.for_options({})
    assert info.value.field == "LLM_EXEC_LLAMA_API_STYLE"


def test_openai_compatible_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-local")
    monkeypatch.setenv("LLM_EXEC_LLAMA_BASE_URL", "http://gpu-box:8000/v1")
    provider = LlamaLlm.from_env(options={"api_style": "openai"})
    assert type(provider) is OpenAiCompatibleLlm
    assert provider.api_key is None  # never OPENAI_API_KEY
    assert provider.base_url == "http://gpu-box:8000/v1"
    assert OpenAiCompatibleLlm.pricing_provider is None and OllamaLlm.pricing_provider is None
    assert provider.describe(request())["body"]["max_tokens"] == 100


# -- OpenAI-compatible mode, recorded Ollama /v1 traffic -----------------------------------------


def test_openai_compatible_replay_nonstream(server: Server) -> None:
    recorded = fixture("ollama/openai-compat-chat-qwen3.json")
    server.actions.append(reply(200, recorded["response"]["body"], content_type="application/json"))
    answer = json.loads(recorded["response"]["body"])
    provider = OpenAiCompatibleLlm.from_env(api_endpoint=f"{server.url}/v1")

    result = generate(provider, request("What's 2 + 2?", model="qwen3"))

    assert result.content == answer["choices"][0]["message"]["content"]
    assert result.usage.prompt_tokens == answer["usage"]["prompt_tokens"]
    assert result.usage.completion_tokens == answer["usage"]["completion_tokens"]
    assert result.finish_reason == "stop"
    sent = server.log[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["max_tokens"] == 100 and "max_completion_tokens" not in sent["body"]


def test_openai_compatible_replay_stream(server: Server) -> None:
    recorded = fixture("ollama/openai-compat-stream-qwen3.json")
    body = recorded["response"]["body"]
    server.actions.append(chunked([body.encode()], content_type="text/event-stream"))
    chunks = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    expected_text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    usage = next(c["usage"] for c in chunks if c.get("usage"))
    provider = OpenAiCompatibleLlm.from_env(api_endpoint=f"{server.url}/v1")

    deltas, final = stream(provider, request("Count from 1 to 3", model="qwen3", stream=True))

    assert "".join(deltas) == expected_text == final.content
    assert final.usage.prompt_tokens == usage["prompt_tokens"]
    assert final.usage.completion_tokens == usage["completion_tokens"]
    # The recorded server sent no x-request-id: the chunks' completion id names the call, as
    # completion.id does for the same answer unstreamed.
    assert final.request_id == chunks[0]["id"] and final.request_id


# -- stream failures and latency -----------------------------------------------------------------


def test_truncated_stream_is_retryable(server: Server) -> None:
    lines = ndjson_pieces(fixture("ollama/chat-stream-ndjson-llama3.json")["response"]["body"])
    server.actions.append(chunked(lines[:5]))  # ends cleanly, but without the done:true line
    with pytest.raises(ConnectionError) as info:
        stream(OllamaLlm(base_url=server.url), request(stream=True))
    assert info.value.type == "truncated_stream"
    assert info.value.retryable


def test_connection_reset_mid_body_is_retryable(server: Server) -> None:
    lines = ndjson_pieces(fixture("ollama/chat-stream-ndjson-llama3.json")["response"]["body"])
    server.actions.append(chunked(lines[:3], end="reset"))
    with pytest.raises(ConnectionError) as info:
        stream(OllamaLlm(base_url=server.url), request(stream=True))
    assert info.value.retryable


def test_error_line_mid_stream(server: Server) -> None:
    lines = ndjson_pieces(fixture("ollama/chat-stream-ndjson-llama3.json")["response"]["body"])
    server.actions.append(chunked([*lines[:2], b'{"error":"an error was encountered while running the model"}\n']))
    with pytest.raises(ServiceUnavailableError) as info:
        stream(OllamaLlm(base_url=server.url), request(stream=True))
    assert info.value.type == "stream_error"
    assert info.value.retryable
    assert "while running the model" in info.value.message


def test_500_before_stream_is_retryable(server: Server) -> None:
    server.actions.append(reply(500, '{"error":"llama runner process has terminated"}', content_type=OLLAMA_JSON))
    with pytest.raises(ServiceUnavailableError) as info:
        stream(OllamaLlm(base_url=server.url), request(stream=True))
    assert info.value.status_code == 500 and info.value.retryable
    assert info.value.message == "llama runner process has terminated"


def test_connection_refused() -> None:
    port = closed_port()
    with pytest.raises(ConnectionError):
        generate(OllamaLlm(base_url=f"http://127.0.0.1:{port}"), request())
    with pytest.raises(ConnectionError):
        stream(OllamaLlm(base_url=f"http://127.0.0.1:{port}"), request(stream=True))


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_delta_arrives_before_the_rest_of_the_stream(server: Server, framing: str) -> None:
    """The first NDJSON line is delivered while the server still holds the rest back."""
    lines = ndjson_pieces(fixture("ollama/chat-stream-ndjson-llama3.json")["response"]["body"])
    server.actions.append(chunked(lines, wait_after=1, framing=framing))
    first_text = json.loads(lines[0])["message"]["content"]

    async def run() -> tuple[str, float, LlmResponse]:
        items = OllamaLlm(base_url=server.url).stream(request(stream=True))
        started = time.monotonic()
        first = await asyncio.wait_for(items.__anext__(), 5.0)
        latency = time.monotonic() - started
        assert not server.release.is_set()
        server.release.set()
        rest = [item async for item in items]
        return first, latency, rest[-1]

    first, latency, final = asyncio.run(run())
    assert first == first_text
    assert latency < 1.0
    assert final.usage.completion_tokens == json.loads(lines[-1])["eval_count"]


def test_deadline_cancels_a_stalled_request(server: Server) -> None:
    server.actions.append(stall)  # never sends headers
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(OllamaLlm(base_url=server.url, timeout=600.0).generate(request()), 0.5))
    assert time.monotonic() - started < 2.0
    assert no_worker_threads_left()


def test_deadline_cancels_a_stalled_stream(server: Server) -> None:
    lines = ndjson_pieces(fixture("ollama/chat-stream-ndjson-llama3.json")["response"]["body"])
    server.actions.append(chunked(lines[:3], end="stall"))
    deltas: list[str] = []

    async def consume() -> None:
        async for item in OllamaLlm(base_url=server.url, timeout=600.0).stream(request(stream=True)):
            deltas.append(item)  # type: ignore[arg-type]

    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(consume(), 0.5))
    assert time.monotonic() - started < 2.0
    assert len(deltas) == 3
    assert no_worker_threads_left()


def test_process_exits_promptly_after_a_deadline(server: Server) -> None:
    """The worker is a daemon thread: a blocked request does not hold the interpreter at exit."""
    server.actions.append(stall)
    code = (
        "import asyncio\n"
        "from llm_exec.providers.llama import OllamaLlm\n"
        "from llm_exec.request import LlmRequest, Message\n"
        "req = LlmRequest(messages=(Message('user', 'hi'),), model='m')\n"
        f"llm = OllamaLlm(base_url={server.url!r}, timeout=600.0)\n"
        "try:\n"
        "    asyncio.run(asyncio.wait_for(llm.generate(req), 0.3))\n"
        "except TimeoutError:\n"
        "    print('deadline')\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20)
    assert done.stdout.strip() == "deadline", done.stderr
    assert time.monotonic() - started < 10.0
