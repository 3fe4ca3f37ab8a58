"""CustomLlm against a real local HTTP server (no mocking of our code)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest

from llm_exec.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    RateLimitError,
    ResponseError,
    ServiceUnavailableError,
)
from llm_exec.providers._cancellable_requests import post_json
from llm_exec.providers.custom import CustomLlm
from llm_exec.request import LlmRequest, Message
from llm_exec.response import LlmResponse
from tests.providers.scripted_server import Server, closed_port, fixture, generate, reply, request_maker, stall

request = request_maker("Say this is a test", model="my-model", max_tokens=64)


# -- default contract ------------------------------------------------------------------------------


def test_default_contract(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_EXEC_CUSTOM_ENDPOINT", f"{server.url}/v1/generate")
    server.actions.append(
        reply(200, {"output": "It is a test.", "usage": {"prompt_tokens": 7, "completion_tokens": 4}, "model": "m-1"},
              headers={"X-Request-Id": "req-42"})
    )
    provider = CustomLlm.from_env()
    result = generate(provider, request())

    assert result.content == "It is a test."
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 4)
    assert result.model == "m-1"
    assert result.request_id == "req-42"
    assert result.usage_note is None
    assert result.latency_seconds is not None
    sent = server.log[0]
    assert sent["path"] == "/v1/generate"  # the endpoint is the full URL
    assert sent["body"] == {"model": "my-model", "prompt": "Say this is a test", "max_tokens": 64}
    assert "authorization" not in sent["headers"]  # no key, no header


def test_default_contract_sends_temperature_and_key(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_EXEC_CUSTOM_API_KEY", "secret-key-123")
    server.actions.append(reply(200, {"output": "ok"}))
    provider = CustomLlm.from_env(api_endpoint=server.url)
    generate(provider, request(temperature=0.2))

    sent = server.log[0]
    assert sent["body"]["temperature"] == 0.2
    assert sent["headers"]["authorization"] == "Bearer secret-key-123"


def test_conversation_is_flattened_into_a_transcript(server: Server) -> None:
    server.actions.append(reply(200, {"output": "4"}))
    req = LlmRequest(
        messages=(
            Message("system", "Be brief."),
            Message("user", "2+2?"),
            Message("assistant", "4"),
            Message("user", "And 3+1?"),
        ),
        model="m",
    )
    generate(CustomLlm(base_url=server.url), req)
    assert server.log[0]["body"]["prompt"] == "System: Be brief.\n\nUser: 2+2?\n\nAssistant: 4\n\nUser: And 3+1?"


def test_missing_usage_is_none_not_zero(server: Server) -> None:
    server.actions.append(reply(200, {"output": "hello"}))
    result = generate(CustomLlm(base_url=server.url), request())
    assert result.content == "hello"
    assert result.usage.prompt_tokens is None and result.usage.completion_tokens is None
    assert result.usage_note == "the endpoint reported no usage"
    assert result.model is None and result.finish_reason is None


# -- configurable mappings -----------------------------------------------------------------------


def test_openai_shaped_mapping_replays_recorded_answer(server: Server) -> None:
    recorded = fixture("openai/chat-basic-gpt4o-mini.json")["response"]
    server.actions.append(reply(200, recorded["body"]))
    options = {
        "custom": {
            "request_template": {
                "model": "{model}",
                "messages": "{messages}",
                "max_tokens": "{max_tokens}",
                "temperature": "{temperature}",
                "stream": False,
            },
            "output_path": "choices.0.message.content",
            "finish_reason_path": "choices.0.finish_reason",
        }
    }
    req = LlmRequest(
        messages=(Message("system", "You are terse."), Message("user", "Say this is a test")),
        model="gpt-4o-mini",
        max_tokens=50,
        options=options,
    )
    result = generate(CustomLlm(base_url=f"{server.url}/v1/chat/completions"), req)

    answer = json.loads(recorded["body"])
    assert result.content == answer["choices"][0]["message"]["content"]
    assert result.usage.prompt_tokens == answer["usage"]["prompt_tokens"]
    assert result.usage.completion_tokens == answer["usage"]["completion_tokens"]
    assert result.model == answer["model"]
    assert result.finish_reason == "stop"
    # Typed values, not strings; an unset temperature is left out.
    assert server.log[0]["body"] == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say this is a test"},
        ],
        "max_tokens": 50,
        "stream": False,
    }


def test_tgi_shaped_mapping(server: Server) -> None:
    server.actions.append(reply(200, [{"generated_text": "Paris."}]))
    options = {
        "custom": {
            "request_template": {
                "inputs": "Question: {prompt}\nAnswer:",
                "parameters": {"max_new_tokens": "{max_tokens}", "temperature": "{temperature}",
                               "stop": ["{prompt}", "literal {braces} stay"]},
            },
            "output_path": "0.generated_text",
        }
    }
    result = generate(
        CustomLlm(base_url=f"{server.url}/generate"),
        request("Capital of France?", temperature=0.5, options=options),
    )

    assert result.content == "Paris."
    assert result.usage.prompt_tokens is None and result.usage.completion_tokens is None
    assert result.usage_note == "the endpoint reported no usage"
    assert server.log[0]["body"] == {
        "inputs": "Question: Capital of France?\nAnswer:",
        "parameters": {"max_new_tokens": 64, "temperature": 0.5,
                       "stop": ["Capital of France?", "literal {braces} stay"]},
    }


def test_finish_reason_mapping(server: Server) -> None:
    options = {"custom": {"finish_reason_path": "why"}}
    expected = {"eos": "stop", "end_turn": "stop", "length": "length", "max_tokens": "length", "abort": "other"}
    for value in expected:
        server.actions.append(reply(200, {"output": "x", "why": value}))
    provider = CustomLlm(base_url=server.url)
    got = {value: generate(provider, request(options=options)).finish_reason for value in expected}
    assert got == expected


def test_missing_output_path_is_a_response_error(server: Server) -> None:
    server.actions.append(reply(200, {"choices": []}))
    options = {"custom": {"output_path": "choices.0.message.content"}}
    with pytest.raises(ResponseError, match=r"choices\.0\.message\.content"):
        generate(CustomLlm(base_url=server.url), request(options=options))


def test_non_json_answer_is_a_response_error(server: Server) -> None:
    server.actions.append(reply(200, "<html>gateway</html>"))
    with pytest.raises(ResponseError, match="not valid JSON"):
        generate(CustomLlm(base_url=server.url), request())


# -- errors ----------------------------------------------------------------------------------------


def test_401_is_an_authentication_error(server: Server) -> None:
    server.actions.append(reply(401, {"error": "unauthorized"}))
    with pytest.raises(AuthenticationError) as info:
        generate(CustomLlm(base_url=server.url, api_key="wrong-key"), request())
    assert info.value.status_code == 401
    assert info.value.message == "unauthorized"
    assert info.value.exit_code == 2


def test_500_is_retryable(server: Server) -> None:
    server.actions.append(reply(500, {"error": {"message": "boom"}}))
    with pytest.raises(ServiceUnavailableError) as info:
        generate(CustomLlm(base_url=server.url), request())
    assert info.value.retryable
    assert info.value.status_code == 500
    assert info.value.message == "boom"


def test_429_carries_retry_after(server: Server) -> None:
    server.actions.append(reply(429, {"error": "slow down"}, headers={"Retry-After": "3"}))
    with pytest.raises(RateLimitError) as info:
        generate(CustomLlm(base_url=server.url), request())
    assert info.value.retry_after == 3.0


def test_connection_refused_is_a_connection_error() -> None:
    port = closed_port()  # nothing listens there
    with pytest.raises(ConnectionError) as info:
        generate(CustomLlm(base_url=f"http://127.0.0.1:{port}/x"), request())
    assert info.value.retryable
    assert info.value.type == "connection_error"


def test_missing_endpoint_is_a_configuration_error() -> None:
    provider = CustomLlm.from_env()
    with pytest.raises(ConfigurationError) as info:
        generate(provider, request())
    assert info.value.field == "api_endpoint"
    assert info.value.exit_code == 2


def test_unusable_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        asyncio.run(post_json("ftp://example.invalid/x", {}, {}, 5.0))
    assert info.value.type == "invalid_endpoint"
    assert info.value.field == "api_endpoint"


def test_deadline_cancels_a_stalled_call_promptly(server: Server) -> None:
    server.actions.append(stall)
    provider = CustomLlm(base_url=server.url, timeout=600.0)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(provider.generate(request()), 0.5))
    assert time.monotonic() - started < 2.0
    # The worker thread was unblocked (its socket shut down), not left waiting for the server.
    deadline = time.monotonic() + 2.0
    while any(t.name == "llm-exec-http" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.name == "llm-exec-http" for t in threading.enumerate())


# -- no streaming contract, dry run ---------------------------------------------------------------


def test_stream_yields_only_the_final_response(server: Server) -> None:
    server.actions.append(reply(200, {"output": "whole"}))

    async def collect() -> list[Any]:
        return [item async for item in CustomLlm(base_url=server.url).stream(request(stream=True))]

    items = asyncio.run(collect())
    assert len(items) == 1 and isinstance(items[0], LlmResponse)
    assert items[0].content == "whole"


def test_describe_redacts_the_key() -> None:
    provider = CustomLlm(base_url="http://svc.local/generate", api_key="secret-key-123")
    described = provider.describe(request(temperature=0.1))
    assert described == {
        "method": "POST",
        "url": "http://svc.local/generate",
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer [REDACTED]"},
        "body": {"model": "my-model", "prompt": "Say this is a test", "max_tokens": 64, "temperature": 0.1},
    }
    assert "secret-key-123" not in json.dumps(described)
