"""The shared status table and the retry-wait parsing every provider uses."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest

from llm_exec.errors import ContextLengthExceededError, InvalidRequestError
from llm_exec.providers._http_errors import (
    body_kind,
    body_message,
    error_from_status,
    google_retry_delay,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "error_type", "exit_code", "retryable"),
    [
        (400, "invalid_request", 3, False),
        (401, "authentication_error", 2, False),
        (403, "authentication_error", 2, False),
        (404, "model_not_found", 2, False),
        (408, "timeout", 1, True),
        (409, "server_error", 1, True),
        (413, "invalid_request", 3, False),
        (422, "invalid_request", 3, False),
        (429, "rate_limited", 1, True),
        (500, "server_error", 1, True),
        (502, "server_error", 1, True),
        (503, "server_error", 1, True),
        (529, "overloaded", 1, True),
    ],
)
def test_status_table(status: int, error_type: str, exit_code: int, retryable: bool) -> None:
    error = error_from_status(status, "msg")
    assert (error.type, error.exit_code, error.retryable, error.status_code) == (
        error_type, exit_code, retryable, status)


def test_x_should_retry_overrides_both_ways() -> None:
    assert error_from_status(500, "m", headers={"x-should-retry": "false"}).retryable is False
    assert error_from_status(400, "m", headers={"X-Should-Retry": "true"}).retryable is True


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after": "20", "retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after({"retry-after": when}) <= 31


def test_gemini_retry_info_in_body() -> None:
    body = {"error": {"code": 429, "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "48s"},
    ]}}
    assert google_retry_delay(body) == 48.0
    assert google_retry_delay({"error": {}}) is None


def test_body_message_shapes() -> None:
    assert body_message({"error": {"message": "bad"}}, "x") == "bad"
    assert body_message({"error": "model 'x' not found"}, "x") == "model 'x' not found"
    assert body_message("<html><body><h1>502 Bad Gateway</h1></body></html>", "x") == "502 Bad Gateway"
    assert body_message(None, "fallback") == "fallback"


def test_body_message_unwraps_a_gateway_s_nested_error() -> None:
    # Ollama around llama-server: the upstream's error as JSON text inside "error".
    nested = {"error": '{"error":{"code":400,"message":"request (2622 tokens) exceeds the available context size '
                       '(512 tokens), try increasing it","type":"exceed_context_size_error"}}'}
    assert body_message(nested, "x") == ("request (2622 tokens) exceeds the available context size (512 tokens), "
                                         "try increasing it")
    # LiteLLM v1.61: the message is an object; Gemini's OpenAI-compatible endpoint: a one-item list.
    assert body_message({"message": {"error": "/chat/completions: Invalid model name passed in model=x."}}, "f") == (
        "/chat/completions: Invalid model name passed in model=x.")
    assert body_message([{"error": {"code": 400, "message": "API key not valid."}}], "f") == "API key not valid."
    # Text that only looks like JSON stays as it is (LiteLLM's str() of a dict).
    looks_like_json = "{'error': 'Invalid model name'}"
    assert body_message({"error": {"message": looks_like_json}}, "f") == looks_like_json


# Real error bodies, as each SDK hands them to our boundary (openai/anthropic: the `error` object;
# google-genai and requests: the whole body), with where the wording was confirmed.
CONTEXT_BODIES = [
    # OpenAI Chat Completions (issue threads quoting the API: chatbot-ui#102, crewAI-examples#121).
    pytest.param(400, {"message": "This model's maximum context length is 8192 tokens. However, your messages "
                                  "resulted in 8227 tokens. Please reduce the length of the messages.",
                       "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"},
                 id="openai"),
    # OpenAI's newer wording: the code alone is enough.
    pytest.param(400, {"message": "Your input exceeds the context window of this model. Please adjust your input "
                                  "and try again.", "type": "invalid_request_error", "code": "context_length_exceeded"},
                 id="openai-context-window"),
    # Anthropic Messages (claude-code#59696, sourcebot#911).
    pytest.param(400, {"type": "invalid_request_error",
                       "message": "prompt is too long: 208656 tokens > 200000 maximum"}, id="anthropic"),
    pytest.param(400, {"type": "invalid_request_error",
                       "message": "input length and `max_tokens` exceed context limit: 190000 + 16000 > 200000, "
                                  "decrease input length or `max_tokens` and try again"},
                 id="anthropic-with-max-tokens"),
    # Gemini API, 400 INVALID_ARGUMENT (gemini-cli#4118, #6678; python-genai's ClientError text).
    pytest.param(400, {"error": {"code": 400, "message": "The input token count (132478) exceeds the maximum number of "
                                                         "tokens allowed (131072).", "status": "INVALID_ARGUMENT"}},
                 id="gemini"),
    # llama.cpp llama-server (llama.cpp PR #15780; oobabooga/textgen#7257), 400 and the older 500.
    pytest.param(400, {"error": {"code": 400, "message": "the request exceeds the available context size, try "
                                                         "increasing it", "type": "exceed_context_size_error",
                                 "n_prompt_tokens": 14429, "n_ctx": 8192}}, id="llama-cpp"),
    pytest.param(500, {"error": {"code": 500, "message": "the request exceeds the available context size. try "
                                                         "increasing the context size or enable context shift",
                                 "type": "exceed_context_size_error", "n_prompt_tokens": 1407, "n_ctx": 256}},
                 id="llama-cpp-500"),
    # llama-cpp-python's server (llama_cpp/server/errors.py, the local-model tier's server).
    pytest.param(400, {"message": "This model's maximum context length is 2048 tokens. However, you requested 3010 "
                                  "tokens (2978 in the messages, 32 in the completion). Please reduce the length of "
                                  "the messages or completion.", "type": "invalid_request_error", "param": "messages",
                       "code": "context_length_exceeded"}, id="llama-cpp-python"),
    # Ollama with truncate: false, and newer Ollama relaying llama-server's error as text.
    pytest.param(400, {"error": "the input length exceeds the context length"}, id="ollama"),
    pytest.param(400, {"error": '{"error":{"code":400,"message":"request (2622 tokens) exceeds the available context '
                                'size (512 tokens), try increasing it","type":"exceed_context_size_error",'
                                '"n_prompt_tokens":2622,"n_ctx":512}}'}, id="ollama-relaying-llama-server"),
    # Hugging Face TGI's validation error (router/src/validation.rs), 422.
    pytest.param(422, {"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. Given: "
                                "1218 `inputs` tokens and 1500 `max_new_tokens`", "error_type": "validation"},
                 id="tgi"),
    # A gateway relaying Gemini's error as text inside its own message (continue#10290 shape).
    pytest.param(400, {"message": '{\n  "error": {\n    "code": 400,\n    "message": "The input token count (1054016) '
                                  'exceeds the maximum number of tokens allowed (1048576).",\n    "status": '
                                  '"INVALID_ARGUMENT"\n  }\n}\n', "code": 400}, id="gateway-relaying-gemini"),
]


@pytest.mark.parametrize(("status", "body"), CONTEXT_BODIES)
def test_context_length_bodies(status: int, body: Any) -> None:
    error = error_from_status(status, body_message(body, "fallback"), body=body)
    assert isinstance(error, ContextLengthExceededError) and isinstance(error, InvalidRequestError)
    assert (error.type, error.exit_code, error.retryable, error.status_code) == (
        "context_length_exceeded", 3, False, status)


CONFIGURATION_BODIES = [
    # LiteLLM proxy, unknown model (litellm/proxy/route_llm_request.py ProxyModelNotFoundError), in the
    # shapes its versions rendered: type invalid_request_error, type "None" with the detail's str(),
    # and the detail as an object (litellm#8821).
    pytest.param({"message": "/chat/completions: Invalid model name passed in model=gpt-x. Call `/v1/models` to view "
                             "available models for your key.", "type": "invalid_request_error", "param": "model",
                  "code": "400"}, "model_not_found", id="litellm-invalid-model"),
    pytest.param({"message": "{'error': '/chat/completions: Invalid model name passed in model=None. Call "
                             "`/v1/models` to view available models for your key.'}",
                  "type": "None", "param": "None", "code": "400"}, "model_not_found",
                 id="litellm-invalid-model-type-none"),
    pytest.param({"message": {"error": "/chat/completions: Invalid model name passed in model=DeepSeek-R1x. Call "
                                       "`/v1/models` to view available models for your key."},
                  "type": "None", "param": "None", "code": "400"}, "model_not_found", id="litellm-invalid-model-dict"),
    # Anthropic's 400 for a malformed model id (claude-code#3008, #4725).
    pytest.param({"type": "invalid_request_error", "message": "system: Invalid model name"}, "model_not_found",
                 id="anthropic-invalid-model-name"),
    # Unknown-model wording of OpenAI, Ollama and Gemini, should a gateway send it as a 400.
    pytest.param({"message": "The model `gpt-4.1-nano-x` does not exist or you do not have access to it.",
                  "type": "invalid_request_error", "code": "model_not_found"}, "model_not_found", id="openai-model"),
    pytest.param({"error": 'model "llama9" not found, try pulling it first'}, "model_not_found", id="ollama-model"),
    pytest.param({"error": {"code": 400, "message": "models/gemini-9 is not found for API version v1beta, or is not "
                                                    "supported for generateContent.", "status": "NOT_FOUND"}},
                 "model_not_found", id="gemini-model"),
    # LiteLLM proxy without a database, given a key that is not its master key (litellm's own tests:
    # ProxyException(message="No connected db.", type="no_db_connection", code=400); litellm#4880 has the older
    # "Authentication Error, No connected db.", there sent as 401).
    pytest.param({"message": "No connected db.", "type": "no_db_connection", "param": None, "code": "400"},
                 "authentication_error", id="litellm-no-db"),
    pytest.param({"message": "Authentication Error, No connected db.", "type": "auth_error", "param": "None",
                  "code": 400}, "authentication_error", id="litellm-auth-error"),
    # Gemini's bad key: 400 INVALID_ARGUMENT with reason API_KEY_INVALID (fixtures/gemini/error-400-api-key-invalid).
    pytest.param({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                            "status": "INVALID_ARGUMENT",
                            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                         "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}},
                 "authentication_error", id="gemini-api-key-invalid"),
    pytest.param({"error": {"code": 400, "message": "API key expired. Please renew the API key.",
                            "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}},
                 "authentication_error", id="gemini-reason-only"),
    # Gemini's OpenAI-compatible endpoint wraps the same error in a list.
    pytest.param([{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                             "status": "INVALID_ARGUMENT"}}], "authentication_error", id="gemini-openai-compat"),
    pytest.param({"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"},
                 "authentication_error", id="invalid-api-key"),
]


@pytest.mark.parametrize(("body", "error_type"), CONFIGURATION_BODIES)
def test_400_bodies_that_are_configuration_errors(body: Any, error_type: str) -> None:
    error = error_from_status(400, body_message(body, "fallback"), body=body)
    assert (error.type, error.exit_code, error.retryable, error.status_code) == (error_type, 2, False, 400)
    assert error.field == ("model" if error_type == "model_not_found" else None)


@pytest.mark.parametrize("body", [
    {"message": "Invalid value for 'temperature': must be between 0 and 2", "type": "invalid_request_error",
     "param": "temperature", "code": None},
    {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' "
                "instead.", "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"},
    {"type": "invalid_request_error", "message": "max_tokens: 100000 > 64000, which is the maximum allowed number of "
                                                 "output tokens for claude-sonnet-4-6"},
    # Ollama 0.34 relaying a llama-server 400 that is not about the window.
    {"error": '{"error":{"code":400,"message":"Multimodal data provided, but model does not support multimodal '
              'requests.","type":"invalid_request_error"}}'},
    {"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}},
    # LiteLLM's other 400s stay task errors.
    {"message": "/chat/completions: Missing required parameter: 'messages'.", "type": "invalid_request_error",
     "param": "messages", "code": "400"},
    None,
    "<html><body>400 Bad Request</body></html>",
], ids=["openai-param", "openai-unsupported", "anthropic-max-tokens", "ollama-multimodal", "gemini-invalid-argument",
        "litellm-missing-param", "no-body", "html"])
def test_other_400s_stay_invalid_request(body: Any) -> None:
    error = error_from_status(400, body_message(body, "Bad Request"), body=body)
    assert (type(error), error.type, error.exit_code) == (InvalidRequestError, "invalid_request", 3)


def test_the_body_is_read_only_where_the_status_leaves_room() -> None:
    auth = {"message": "Invalid API key", "code": "invalid_api_key"}
    # An auth or model wording does not turn a 5xx, 429 or 422 into a configuration error...
    assert error_from_status(500, "Invalid API key", body=auth).type == "server_error"
    assert error_from_status(429, "Invalid model name", body={"message": "Invalid model name"}).type == "rate_limited"
    assert error_from_status(422, "Invalid API key", body=auth).type == "invalid_request"
    # ...but a context overflow is one whatever it came with, and is not retried.
    error = error_from_status(500, "prompt is too long: 9 tokens > 8 maximum")
    assert (error.type, error.exit_code, error.retryable) == ("context_length_exceeded", 3, False)
    # The server's x-should-retry still wins.
    assert error_from_status(400, "prompt is too long", headers={"x-should-retry": "true"}).retryable is True
    # Fields that are not about the error (an echoed request) are not read.
    echoed = {"error": {"message": "bad value", "type": "invalid_request_error"},
              "request": {"messages": [{"content": "prompt is too long? Invalid API key?"}]}}
    assert body_kind(400, "bad value", echoed) is None
