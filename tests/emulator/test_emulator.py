"""End-to-end tests of llm_exec.emulator driven by the REAL provider SDKs.

Self-contained (no conftest needed). Fixture-replay tests use the shared
recordings in ``/work/shared/fixtures`` and are skipped if they are absent.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anthropic
import openai
import pytest
import requests
from google import genai
from google.genai import errors as genai_errors

from llm_exec.emulator import Emulator, count_tokens, expected_reply

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = (ROOT / ".." / "shared" / "fixtures").resolve()
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not available")

MSGS = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello to the tests"}]
X = [{"role": "user", "content": "x"}]
PROMPT_TOKENS = count_tokens("You are terse.") + count_tokens("Say hello to the tests")


@pytest.fixture(scope="module")
def emu():
    with Emulator(fixtures_dir=FIXTURES) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(emu):
    emu.reset()
    yield
    emu.reset()


def oai(emu: Emulator, **kw) -> openai.OpenAI:
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 5)
    return openai.OpenAI(base_url=emu.url + "/v1", api_key="sk-test-key", **kw)


def claude(emu: Emulator, **kw) -> anthropic.Anthropic:
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 5)
    return anthropic.Anthropic(base_url=emu.url, api_key="sk-ant-test", **kw)


_GENAI_CLIENTS: list[genai.Client] = []


def gemini(emu: Emulator) -> genai.Client:
    # genai closes its HTTP client when the Client object is collected, which can happen
    # mid-call in `gemini(emu).models.generate_content(...)`; keep a reference.
    client = genai.Client(api_key="AIza-test", http_options={"base_url": emu.url, "timeout": 5000})
    _GENAI_CLIENTS.append(client)
    return client


# -- pure helpers -------------------------------------------------------------

def test_count_tokens_and_expected_reply():
    assert count_tokens("") == 0
    assert count_tokens("   ") == 1
    assert count_tokens("a  b\nc") == 3
    assert expected_reply("openai", "hi there") == ("Emulated openai reply to: hi there", "stop")
    assert expected_reply("gemini", "hi there", max_tokens=3) == ("Emulated gemini reply", "length")
    assert expected_reply("ollama", "hi there", stop=["reply"]) == ("Emulated ollama ", "stop")
    assert expected_reply("custom", "x", max_tokens=99, stop="zzz") == ("Emulated custom reply to: x", "stop")


# -- OpenAI -------------------------------------------------------------------

def test_openai_non_stream(emu):
    resp = oai(emu).chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    text, finish = expected_reply("openai", "Say hello to the tests")
    assert resp.choices[0].message.content == text
    assert resp.choices[0].finish_reason == finish
    assert resp.object == "chat.completion" and resp.model == "gpt-4o-mini"
    assert resp.usage.prompt_tokens == PROMPT_TOKENS
    assert resp.usage.completion_tokens == count_tokens(text)
    assert resp.usage.total_tokens == PROMPT_TOKENS + count_tokens(text)
    assert resp.usage.prompt_tokens_details.cached_tokens == 0
    assert resp.usage.completion_tokens_details.reasoning_tokens == 0


def test_openai_stream_with_usage_and_limits(emu):
    stream = oai(emu).chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, stream=True, stream_options={"include_usage": True}, max_completion_tokens=4
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (text, "length") == expected_reply("openai", "Say hello to the tests", max_tokens=4)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    assert chunks[-1].usage.prompt_tokens == PROMPT_TOKENS


def test_openai_stream_without_usage_and_stop(emu):
    raw = requests.post(
        emu.url + "/chat/completions",
        json={"model": "m", "messages": MSGS, "stream": True, "stop": "hello"},
        headers={"Authorization": "Bearer k"},
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-request-id"].startswith("req_")
    events = [line[6:] for line in raw.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    payloads = [json.loads(e) for e in events[:-1]]
    assert all("usage" not in p for p in payloads)  # only with include_usage
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads)
    assert (text, payloads[-1]["choices"][0]["finish_reason"]) == expected_reply("openai", "Say hello to the tests",
                                                                                 stop="hello")


# -- Anthropic ------------------------------------------------------------------

def test_anthropic_non_stream_stop_sequence(emu):
    msg = claude(emu).messages.create(
        model="claude-haiku-4-5", max_tokens=100, system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": "What is up"}], stop_sequences=["to:"],
        extra_body={"temperature": 0.3, "top_p": 0.9},
    )
    assert msg.content[0].text == "Emulated anthropic reply "
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "to:"
    assert msg.usage.input_tokens == 2 + 3
    assert msg.usage.output_tokens == 3
    assert msg.usage.cache_read_input_tokens == 0 and msg.usage.cache_creation_input_tokens == 0
    assert emu.requests()[-1]["body"]["temperature"] == 0.3


def test_anthropic_stream_and_bearer_auth(emu):
    client = anthropic.Anthropic(base_url=emu.url, auth_token="tok", max_retries=0)
    with client.messages.stream(model="claude-x", max_tokens=3, messages=[{"role": "user", "content": "hey"}]) as st:
        text = "".join(st.text_stream)
        final = st.get_final_message()
    assert (text, "length") == expected_reply("anthropic", "hey", max_tokens=3)
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 3
    assert emu.requests()[-1]["auth_scheme"] == "bearer"


def test_anthropic_sse_event_sequence(emu):
    body = {"model": "c", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "a b"}]}
    raw = requests.post(emu.url + "/v1/messages", headers={"x-api-key": "k"}, json=body)
    assert raw.headers["request-id"]
    names = [line[7:] for line in raw.text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}


# -- Gemini ---------------------------------------------------------------------

def test_gemini_non_stream(emu):
    resp = gemini(emu).models.generate_content(
        model="gemini-2.0-flash", contents="Tell me a story",
        config={"system_instruction": "Be kind", "max_output_tokens": 5, "temperature": 0.1, "seed": 7},
    )
    assert (resp.text, "length") == expected_reply("gemini", "Tell me a story", max_tokens=5)
    assert resp.candidates[0].finish_reason.value == "MAX_TOKENS"
    assert resp.usage_metadata.prompt_token_count == 2 + 4
    assert resp.usage_metadata.candidates_token_count == 5
    assert resp.usage_metadata.total_token_count == 11
    assert resp.model_version == "gemini-2.0-flash" and resp.response_id
    log = emu.requests()[-1]
    assert log["auth_scheme"] == "x-goog-api-key" and log["path"].endswith(":generateContent")


def test_gemini_stream_sse(emu):
    chunks = list(gemini(emu).models.generate_content_stream(model="gemini-2.0-flash", contents="Tell me a story"))
    assert "".join(c.text for c in chunks) == expected_reply("gemini", "Tell me a story")[0]
    assert [c.usage_metadata.candidates_token_count for c in chunks] == list(range(1, len(chunks) + 1))
    assert chunks[-1].candidates[0].finish_reason.value == "STOP"
    assert emu.requests()[-1]["query"] == {"alt": "sse"}


def test_gemini_stream_json_array_and_query_key(emu):
    raw = requests.post(emu.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=SECRET",
                        json={"contents": [{"role": "user", "parts": [{"text": "one two"}]}]})
    arr = json.loads(raw.text)
    assert isinstance(arr, list) and "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in arr) == (
        "Emulated gemini reply to: one two")
    log = emu.requests()[-1]
    assert log["auth_scheme"] == "query" and log["query"]["key"] == "<redacted>"
    assert "SECRET" not in json.dumps(log)


# -- Ollama / custom ----------------------------------------------------------------

def test_ollama_chat_streams_by_default(emu):
    raw = requests.post(emu.url + "/api/chat", json={"model": "llama3", "messages": [{"role": "user", "content": "yo"}],
                                                      "options": {"num_predict": 3}})
    assert raw.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in raw.text.splitlines()]
    assert "".join(line["message"]["content"] for line in lines) == "Emulated ollama reply"
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "length"
    assert final["eval_count"] == 3 and final["prompt_eval_count"] == 1
    assert all(k in final for k in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"))
    assert all("eval_count" not in line for line in lines[:-1])
    assert emu.requests()[-1]["auth_scheme"] is None


def test_ollama_generate_non_stream_and_meta(emu):
    body = requests.post(emu.url + "/api/generate",
                         json={"model": "llama3", "prompt": "why sky", "system": "be short", "stream": False}).json()
    assert body["response"] == "Emulated ollama reply to: why sky" and body["done"] is True
    assert body["prompt_eval_count"] == 4 and body["eval_count"] == 6 and body["context"]
    assert requests.get(emu.url + "/api/tags").json()["models"]
    assert "version" in requests.get(emu.url + "/api/version").json()


def test_custom_contract(emu):
    resp = requests.post(emu.url + "/custom/v1/run", headers={"x-api-key": "k"},
                         json={"model": "my-model", "prompt": "sum this up", "max_tokens": 10, "temperature": 0})
    assert resp.json() == {"output": "Emulated custom reply to: sum this up",
                           "usage": {"prompt_tokens": 3, "completion_tokens": 7}, "model": "my-model"}


# -- auth -----------------------------------------------------------------------------

def test_auth_errors_without_credentials(emu):
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5}
    r = requests.post(emu.url + "/v1/chat/completions", json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = requests.post(emu.url + "/v1/messages", json=body)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = requests.post(emu.url + "/v1beta/models/g:generateContent", json={"contents": []})
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    r = requests.post(emu.url + "/custom", json={"prompt": "x"}, headers={"Authorization": "Bearer "})
    assert r.status_code == 401 and r.json() == {"error": "unauthorized"}
    with pytest.raises(openai.AuthenticationError):
        oai(emu).chat.completions.create(model="m", messages=MSGS, extra_headers={"Authorization": ""})


# -- scripting & faults ---------------------------------------------------------------------

def test_429_with_retry_after_then_success(emu):
    emu.script([{"status": 429, "headers": {"retry-after": "1"}}])
    resp = oai(emu, max_retries=1).chat.completions.create(model="m", messages=MSGS)
    assert resp.choices[0].message.content.startswith("Emulated openai")
    log = emu.requests()
    assert len(log) == 2 and log[1]["time"] - log[0]["time"] >= 0.9


def test_anthropic_overloaded_times_then_success(emu):
    emu.script([{"status": 529, "times": 2, "headers": {"retry-after-ms": "20"}}])
    msg = claude(emu, max_retries=2).messages.create(model="c", max_tokens=9, messages=X)
    assert msg.content[0].text == "Emulated anthropic reply to: x"
    assert len(emu.requests()) == 3


def test_scripted_errors_are_provider_shaped(emu):
    emu.script([{"status": 529}, {"status": 429, "retry_delay": "2s"}, {"status": 400, "gemini_api_key_invalid": True},
                {"status": 503, "body": "upstream connect error"}])
    with pytest.raises(anthropic.OverloadedError) as exc:
        claude(emu).messages.create(model="c", max_tokens=5, messages=X)
    assert exc.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(genai_errors.ClientError) as gexc:
        gemini(emu).models.generate_content(model="gemini-2.0-flash", contents="x")
    assert gexc.value.code == 429
    assert gexc.value.details["error"]["details"][-1]["retryDelay"] == "2s"
    with pytest.raises(genai_errors.ClientError) as gexc:
        gemini(emu).models.generate_content(model="gemini-2.0-flash", contents="x")
    assert gexc.value.code == 400 and gexc.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    r = requests.post(emu.url + "/api/chat", json={"model": "x", "stream": False})
    assert r.status_code == 503 and r.text == "upstream connect error"


def test_reset(emu):
    emu.script([{"fault": "reset"}])
    with pytest.raises(openai.APIConnectionError):
        oai(emu).chat.completions.create(model="m", messages=MSGS)


def test_reset_mid_body(emu):
    emu.script([{"fault": "reset_mid_body"}])
    with pytest.raises(requests.exceptions.RequestException):
        body = {"model": "m", "prompt": "a b c d e f g h", "stream": False}
        requests.post(emu.url + "/api/generate", json=body).json()


def test_stall_client_timeout(emu):
    emu.script([{"fault": "stall", "seconds": 5}])
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        oai(emu, timeout=0.5).chat.completions.create(model="m", messages=MSGS)
    assert time.monotonic() - started < 2


def test_truncate_stream_and_non_stream(emu):
    emu.script([{"fault": "truncate"}, {"fault": "truncate"}])
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai(emu).chat.completions.create(model="m", messages=MSGS, stream=True):
            got.append(chunk.choices[0].delta.content or "")
    assert got and "".join(got) != expected_reply("openai", "Say hello to the tests")[0]
    with pytest.raises(anthropic.APIConnectionError):
        claude(emu).messages.create(model="c", max_tokens=50, messages=X)


def test_malformed_and_html(emu):
    emu.script([{"fault": "malformed"}, {"fault": "html"}])
    r = requests.post(emu.url + "/custom", json={"prompt": "x"}, headers={"x-api-key": "k"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(r.text)
    with pytest.raises(openai.InternalServerError) as exc:
        oai(emu).chat.completions.create(model="m", messages=MSGS)
    assert exc.value.status_code == 502 and "nginx" in exc.value.response.text


def test_stream_error_each_provider(emu):
    emu.script([{"fault": "stream_error"}] * 4)
    abc = [{"role": "user", "content": "a b c"}]
    # The error event arrives mid-iteration, after some text deltas.
    with pytest.raises(anthropic.APIStatusError) as exc, claude(emu).messages.stream(
        model="c", max_tokens=50, messages=abc
    ) as st:
        for _ in st.text_stream:
            pass
    assert "overloaded_error" in str(exc.value)
    with pytest.raises(openai.APIError):
        list(oai(emu).chat.completions.create(model="m", messages=MSGS, stream=True))
    with pytest.raises(genai_errors.ServerError):
        list(gemini(emu).models.generate_content_stream(model="gemini-2.0-flash", contents="a b c"))
    lines = requests.post(emu.url + "/api/chat", json={"messages": [{"role": "user", "content": "a b c"}]}).text
    assert "error" in json.loads(lines.splitlines()[-1])


def test_empty_usage_not_last_echo_key_reply_override(emu):
    emu.script([{"fault": "empty"}, {"fault": "usage_not_last"}, {"fault": "echo_key"}, {"reply": "custom words here"}])
    resp = oai(emu).chat.completions.create(model="m", messages=MSGS)
    assert resp.choices[0].message.content == "" and resp.usage.completion_tokens == 0
    chunks = list(oai(emu).chat.completions.create(model="m", messages=MSGS, stream=True))
    assert chunks[-2].usage is not None and chunks[-1].usage is None and chunks[-1].choices == []
    with pytest.raises(openai.AuthenticationError) as exc:
        oai(emu).chat.completions.create(model="m", messages=MSGS)
    assert "sk-test-key" in str(exc.value)
    assert oai(emu).chat.completions.create(model="m", messages=MSGS).choices[0].message.content == "custom words here"


def test_trickle_and_latency(emu):
    emu.script([{"fault": "trickle", "interval_ms": 20, "seconds": 0.3}])
    started = time.monotonic()
    resp = oai(emu, timeout=0.2).chat.completions.create(model="m", messages=MSGS)  # read timeout never fires
    assert time.monotonic() - started >= 0.3
    assert resp.choices[0].message.content.startswith("Emulated")
    emu.latency_ms = 200
    try:
        started = time.monotonic()
        requests.post(emu.url + "/api/chat", json={"stream": False, "messages": []})
        assert time.monotonic() - started >= 0.2
    finally:
        emu.latency_ms = 0
    emu.chunk_delay_ms = 20
    try:
        started = time.monotonic()
        lines = requests.post(emu.url + "/api/chat", json={"messages": [{"role": "user", "content": "a b"}]}).text
        # 6 word lines + the final line → 6 gaps between chunks.
        assert len(lines.splitlines()) == 7 and time.monotonic() - started >= 0.12
    finally:
        emu.chunk_delay_ms = 0


# -- fixtures & replay ---------------------------------------------------------------------

@needs_fixtures
def test_fixture_steps_per_provider(emu):
    emu.script([{"fixture": name} for name in (
        "openai/chat-basic-gpt4o-mini.json", "openai/stream-text-include-usage.json",
        "anthropic/messages-basic-haiku45.json", "anthropic/stream-text-opus46.json",
        "gemini/stream-sse-basic-2.0-flash.json", "ollama/chat-stream-ndjson-llama3.json",
        "anthropic/error-529-overloaded.json",
    )])
    resp = oai(emu).chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert resp.choices[0].message.content == "This is a test. How can I assist you further?"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (12, 12)
    chunks = list(oai(emu).chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("This is a test")
    assert chunks[-1].usage is not None
    msg = claude(emu).messages.create(model="c", max_tokens=5, messages=X)
    assert msg.content[0].text == "2 + 2 = 4" and (msg.usage.input_tokens, msg.usage.output_tokens) == (20, 13)
    with claude(emu).messages.stream(model="c", max_tokens=5, messages=X) as st:
        assert "".join(st.text_stream) == "1. **Captain Scoop**\n2. **Gullet**"
        assert st.get_final_message().usage.output_tokens == 20
    chunks = list(gemini(emu).models.generate_content_stream(model="gemini-2.0-flash", contents="x"))
    assert "".join(c.text for c in chunks).startswith("Whiskers twitched.")
    assert chunks[-1].usage_metadata.candidates_token_count == 33
    lines = requests.post(emu.url + "/api/chat", json={"model": "llama3", "messages": []}).text.splitlines()
    assert json.loads(lines[-1])["eval_count"] == 50
    raw = requests.post(emu.url + "/v1/messages", json={}, headers={"x-api-key": "k"})
    assert raw.status_code == 529 and raw.headers["x-should-retry"] == "true"


@needs_fixtures
def test_bad_steps_rejected(emu):
    with pytest.raises(ValueError):
        emu.script([{"fault": "explode"}])
    with pytest.raises(ValueError):
        emu.script([{"fixture": "../../etc/passwd"}])
    r = requests.post(emu.url + "/_emulator/script", json={"steps": [{"statuz": 500}]})
    assert r.status_code == 400
    with pytest.raises(ValueError, match="unknown error_body"):
        emu.script([{"error_body": "context_lenght"}])


def test_context_length_bodies_are_each_provider_s(emu):
    emu.script([{"error_body": "context_length"}] * 5)
    with pytest.raises(openai.BadRequestError) as oexc:
        oai(emu).chat.completions.create(model="m", messages=MSGS)
    assert oexc.value.body["code"] == "context_length_exceeded" and oexc.value.body["param"] == "messages"
    assert oexc.value.body["message"].startswith("This model's maximum context length is 4096 tokens. However, your "
                                                 f"messages resulted in {4096 + PROMPT_TOKENS} tokens.")
    with pytest.raises(anthropic.BadRequestError) as aexc:
        claude(emu).messages.create(model="c", max_tokens=5, messages=X)
    assert aexc.value.body["error"] == {"type": "invalid_request_error",
                                        "message": "prompt is too long: 4097 tokens > 4096 maximum"}
    with pytest.raises(genai_errors.ClientError) as gexc:
        gemini(emu).models.generate_content(model="gemini-2.0-flash", contents="x")
    assert gexc.value.code == 400 and gexc.value.status == "INVALID_ARGUMENT"
    assert gexc.value.message == "The input token count (4097) exceeds the maximum number of tokens allowed (4096)."
    r = requests.post(emu.url + "/api/chat", json={"model": "x", "messages": X, "stream": False})
    assert r.status_code == 400 and r.json() == {"error": "the input length exceeds the context length"}
    r = requests.post(emu.url + "/custom", json={"prompt": "x", "max_tokens": 7})
    assert r.status_code == 422 and r.json() == {
        "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4097 `inputs` "
                 "tokens and 7 `max_new_tokens`", "error_type": "validation"}


def test_gateway_and_llama_cpp_bodies_on_any_route(emu):
    emu.script([{"error_body": "litellm_invalid_model"}, {"error_body": "litellm_no_db"},
                {"error_body": "llama_cpp_context_length", "status": 500}])
    with pytest.raises(anthropic.BadRequestError) as aexc:
        claude(emu).messages.create(model="claude-x", max_tokens=5, messages=X)
    assert aexc.value.body["error"] == {"message": "/v1/messages: Invalid model name passed in model=claude-x. Call "
                                                   "`/v1/models` to view available models for your key.",
                                        "type": "invalid_request_error", "param": "model", "code": "400"}
    with pytest.raises(openai.BadRequestError) as oexc:
        oai(emu).chat.completions.create(model="m", messages=MSGS)
    assert oexc.value.body == {"message": "No connected db.", "type": "no_db_connection", "param": None, "code": "400"}
    r = requests.post(emu.url + "/v1/chat/completions", json={"model": "m", "messages": X})
    assert r.status_code == 500 and r.json()["error"] == {
        "code": 500, "message": "the request exceeds the available context size, try increasing it",
        "type": "exceed_context_size_error", "n_prompt_tokens": 4097, "n_ctx": 4096}


@needs_fixtures
def test_replay_mode(tmp_path):
    for name in ("openai/chat-basic-gpt4o-mini.json", "openai/error-404-model-not-found.json",
                 "gemini/stream-sse-basic-2.0-flash.json", "ollama/generate-nonstream-llama3.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / name, tmp_path / name)
    with Emulator(replay_dir=tmp_path) as emu:
        resp = oai(emu).chat.completions.create(model="anything", messages=MSGS)
        assert resp.choices[0].message.content == "This is a test. How can I assist you further?"  # 200 preferred
        # Gemini: model name ignored when no exact path matches.
        chunks = list(gemini(emu).models.generate_content_stream(model="gemini-9-ultra", contents="x"))
        assert chunks[-1].usage_metadata.candidates_token_count == 33
        assert requests.post(emu.url + "/api/generate", json={"stream": False}).json()["eval_count"] == 63
        with pytest.raises(openai.NotFoundError):  # stream flag must match: no recording
            list(oai(emu).chat.completions.create(model="m", messages=MSGS, stream=True))


# -- admin API, request log, lifecycle ---------------------------------------------------------

def test_admin_http_api_and_request_log(emu):
    base = emu.url + "/_emulator"
    assert requests.get(base + "/health").json() == {"ok": True}
    assert requests.post(base + "/script", json={"steps": [{"status": 500}]}).json()["ok"] is True
    before = time.time()
    headers = {"x-api-key": "sk-ant-SECRET", "anthropic-version": "2023-06-01"}
    r = requests.post(emu.url + "/v1/messages", headers=headers,
                      json={"model": "c", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 500 and r.json()["error"]["type"] == "api_error"
    log = requests.get(base + "/requests").json()
    assert len(log) == 1  # admin calls are not logged
    entry = log[0]
    assert entry["method"] == "POST" and entry["path"] == "/v1/messages" and entry["query"] == {}
    assert entry["auth_scheme"] == "x-api-key" and entry["body"]["max_tokens"] == 1
    assert entry["headers"]["x-api-key"] == "<redacted>" and entry["headers"]["anthropic-version"] == "2023-06-01"
    assert before <= entry["time"] <= time.time()
    assert "SECRET" not in json.dumps(log)
    requests.post(base + "/script", json={"steps": [{"status": 500}]})
    requests.post(base + "/reset")
    assert requests.get(base + "/requests").json() == []
    r = requests.post(emu.url + "/custom", json={"prompt": "x"}, headers={"x-api-key": "k"})
    assert r.status_code == 200  # queue was cleared too


def test_stop_is_prompt_during_stall():
    emu = Emulator().start()
    emu.script([{"fault": "stall"}])
    errors: list[Exception] = []

    def call() -> None:
        try:
            requests.post(emu.url + "/api/chat", json={"stream": False}, timeout=30)
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 2
    worker.join(5)
    assert not worker.is_alive() and errors


def test_cli_runs_and_exits_cleanly(tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_exec.emulator", "--port-file", str(port_file), "--latency-ms", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert info["pid"] == proc.pid and info["url"].startswith("http://127.0.0.1:")
        assert port_file.read_text().strip() == info["url"].rsplit(":", 1)[1]
        assert requests.get(info["url"] + "/_emulator/health").json() == {"ok": True}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err
    refused = subprocess.run([sys.executable, "-m", "llm_exec.emulator", "--host", "10.1.2.3"], cwd=ROOT,
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=10)
    assert refused.returncode == 2 and "allow-remote" in refused.stderr
