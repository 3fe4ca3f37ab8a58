"""Replay every real provider recording in ../shared/fixtures through our providers.

Each recording (see ../shared/fixtures/INDEX.md) whose endpoint a provider calls is served verbatim
by the emulator (a scripted `fixture` step), and the provider is driven in-process. The expected
values are computed here, independently of the provider code, straight from the recorded body and
headers, following the project's token/finish-reason/error contract:

* success: content (answer text only), prompt/completion/cached/reasoning tokens, finish_reason and
  model must equal what the recording says; for streams the str deltas must concatenate to content;
* error (status >= 400): `generate` is called once and must raise the documented error type, exit
  code, retryability, status code and retry-after.

Recordings of endpoints we never call are listed in EXCLUDED with the reason, and
`test_every_fixture_is_covered_or_excluded` fails when a new fixture is neither.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from llm_exec.emulator import Emulator
from llm_exec.errors import LlmError
from llm_exec.providers.anthropic import AnthropicLlm
from llm_exec.providers.base import BaseLlm
from llm_exec.providers.gemini import GeminiLlm
from llm_exec.providers.llama import OllamaLlm, OpenAiCompatibleLlm
from llm_exec.providers.openai import OpenAiLlm
from llm_exec.request import LlmRequest, Message
from llm_exec.response import LlmResponse

from .conftest import shared_fixtures

# Fails the module clearly (never skips) when the recordings are missing.
FIXTURES_DIR: Path = shared_fixtures()

# -- what we do not replay, and why ---------------------------------------------------------------

EXCLUDED: dict[str, str] = {
    "ollama/generate-nonstream-llama3.json": "Ollama POST /api/generate: OllamaLlm only calls /api/chat",
    "ollama/generate-stream-ndjson-llama3.json": "Ollama POST /api/generate: OllamaLlm only calls /api/chat",
    "ollama/generate-stream-ndjson-gemma3.json": "Ollama POST /api/generate: OllamaLlm only calls /api/chat",
    "gemini/vertex-generate-2.5-pro.json": (
        "Vertex AI path /v1/projects/.../publishers/google/models/...:generateContent with $alt=json;"
        "enum-encoding=int (integer enums): GeminiLlm uses the Gemini Developer API (/v1beta/models, API key)"
    ),
    "gemini/error-400-vertex-invalid-argument.json": (
        "Vertex AI path /v1/projects/.../publishers/google/models/...: GeminiLlm never calls Vertex AI"
    ),
    "gemini/stream-json-array-2.5-flash.json": (
        ":streamGenerateContent without alt=sse (one JSON array): google-genai always streams with ?alt=sse"
    ),
    "openai/error-500-server-error.json": (
        "GET /v1/vector_stores/{id}/file_batches/{id}/files (ruby-openai): not chat completions; "
        "OpenAiLlm only POSTs /v1/chat/completions"
    ),
}

# -- classification: which provider calls a recording's endpoint ------------------------------------

_GEMINI_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$")


@dataclass(frozen=True)
class Case:
    name: str  # path relative to the fixtures dir, e.g. "openai/chat-basic-gpt4o-mini.json"
    provider: str  # "openai" | "anthropic" | "gemini" | "ollama" | "openai-compatible"
    stream: bool  # the recorded request streamed (SSE / NDJSON response)
    status: int
    model: str  # model to ask for (the recorded request's), so the path we send looks like the recorded one
    path: str  # the path our provider POSTs for the recorded call (query string excluded)

    def call_matches(self, path: str, query: Mapping[str, str], stream: bool) -> bool:
        """Whether a request our provider sent (called with `stream`) is the recorded call."""
        if self.provider != "gemini":
            return path == self.path
        # google-genai 3.x calls /v1 (GOOGLE_AI_API_DEFAULT_VERSION); the recordings were made on
        # /v1beta. Same method and wire format; streams must ask for SSE framing.
        method = "streamGenerateContent" if stream else "generateContent"
        version = path.split("/")[1] if path.count("/") >= 2 else ""
        return (version in ("v1", "v1beta") and path == f"/{version}/models/{self.model}:{method}"
                and (query.get("alt") == "sse") == stream)

    @property
    def data(self) -> dict[str, Any]:
        return load(self.name)

    @property
    def body(self) -> str:
        return self.data["response"]["body"]

    @property
    def headers(self) -> dict[str, str]:
        return {k.lower(): str(v) for k, v in (self.data["response"].get("headers") or {}).items()}


_LOADED: dict[str, dict[str, Any]] = {}


def load(name: str) -> dict[str, Any]:
    if name not in _LOADED:
        _LOADED[name] = json.loads((FIXTURES_DIR / name).read_text(encoding="utf-8"))
    return _LOADED[name]


def all_fixture_names() -> list[str]:
    return sorted(p.relative_to(FIXTURES_DIR).as_posix() for p in FIXTURES_DIR.rglob("*.json"))


def classify(name: str) -> Case | None:
    """The provider call that would receive this recording, or None if none of ours can."""
    data = load(name)
    request, response = data["request"], data["response"]
    family = name.split("/", 1)[0]
    raw_path, _, query_string = str(request["path"]).partition("?")
    query = dict(parse_qsl(query_string, keep_blank_values=True))
    body = request.get("body") if isinstance(request.get("body"), dict) else {}
    model = str(body.get("model") or "m")
    status = int(response["status"])
    if request["method"] != "POST":
        return None
    provider: str | None = None
    stream = body.get("stream") is True
    path = raw_path
    if family == "openai" and raw_path == "/v1/chat/completions":
        provider = "openai"
    elif family == "anthropic" and raw_path == "/v1/messages":
        provider = "anthropic"  # ?beta=true (beta SDK client) is the same endpoint and response schema
    elif family == "gemini" and (match := _GEMINI_PATH.match(raw_path)):
        model = match["model"]
        if match["method"] == "generateContent":
            # The 403 recording's query ($alt=json;enum-encoding=int, from the Go SDK) only changes how
            # enums of a success body are encoded; its error body is what our SDK call would get.
            provider, stream = "gemini", False
        elif query.get("alt") == "sse":
            provider, stream = "gemini", True
    elif family == "ollama" and raw_path == "/api/chat":
        provider, stream = "ollama", body.get("stream", True) is not False  # Ollama streams by default
    elif family == "ollama" and raw_path.replace("<OLLAMA_API_BASE>", "/v1") == "/v1/chat/completions":
        provider, path = "openai-compatible", "/v1/chat/completions"
    if provider is None:
        return None
    return Case(name, provider, stream, status, model, path)


CASES: list[Case] = [c for c in map(classify, all_fixture_names()) if c is not None]
SUCCESS = [c for c in CASES if c.status < 400]
ERRORS = [c for c in CASES if c.status >= 400]

# Fixtures whose replay exposes a bug in our code: name -> reason (xfail strict, so a fix shows up).
KNOWN_BUGS: dict[str, str] = {}


def params(cases: list[Case]) -> list[Any]:
    out = []
    for case in cases:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case.name])] if case.name in KNOWN_BUGS else []
        out.append(pytest.param(case, id=case.name, marks=marks))
    return out


# -- expected values, computed from the recording ----------------------------------------------------


@dataclass(frozen=True)
class Expected:
    content: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    reasoning_tokens: int | None
    finish_reason: str | None
    model: str | None


def sse_data(body: str) -> list[Any]:
    """JSON of every SSE event's data (multi-line data joined), `[DONE]` dropped."""
    out = []
    for block in re.split(r"\n\n", body.replace("\r\n", "\n")):
        lines = [line[len("data:"):] for line in block.split("\n") if line.startswith("data:")]
        data = "\n".join(lines).strip()
        if data and data != "[DONE]":
            out.append(json.loads(data))  # json.loads ignores Anthropic's whitespace padding
    return out


def ndjson(body: str) -> list[Any]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


_OPENAI_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                  "function_call": "tool_calls", "content_filter": "content_filter"}
_ANTHROPIC_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                     "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "other"}
_GEMINI_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}


def _mapped(table: Mapping[str, str], value: str | None) -> str | None:
    return None if value is None else table.get(value, "other")


def expected_openai(case: Case) -> Expected:
    if case.stream:
        chunks = sse_data(case.body)
        parts: list[str] = []
        usage = model = finish = None
        for chunk in chunks:
            model = chunk.get("model") or model
            if chunk.get("usage") is not None:
                usage = chunk["usage"]
            for choice in chunk.get("choices") or ():
                parts.append((choice.get("delta") or {}).get("content") or "")
                finish = choice.get("finish_reason") or finish
        content = "".join(parts)
    else:
        data = json.loads(case.body)
        choice = (data.get("choices") or [{}])[0]
        content = (choice.get("message") or {}).get("content") or ""
        usage, model, finish = data.get("usage"), data.get("model"), choice.get("finish_reason")
    usage = usage or {}
    prompt_details, completion_details = usage.get("prompt_tokens_details"), usage.get("completion_tokens_details")
    return Expected(
        content=content,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        cached_tokens=None if prompt_details is None else prompt_details.get("cached_tokens"),
        reasoning_tokens=None if completion_details is None else completion_details.get("reasoning_tokens"),
        finish_reason=_mapped(_OPENAI_FINISH, finish),
        model=model,
    )


_ANTHROPIC_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                           "cache_creation_input_tokens", "output_tokens_details")


def expected_anthropic(case: Case) -> Expected:
    usage: dict[str, Any] = {}

    def take(source: Mapping[str, Any] | None) -> None:  # the last usage that has a field wins
        for field in _ANTHROPIC_USAGE_FIELDS:
            if source and source.get(field) is not None:
                usage[field] = source[field]

    if case.stream:
        parts: list[str] = []
        model = stop = None
        for event in sse_data(case.body):
            kind = event.get("type")
            if kind == "message_start":
                model = event["message"].get("model")
                take(event["message"].get("usage"))
            elif kind == "content_block_delta" and event["delta"].get("type") == "text_delta":
                parts.append(event["delta"].get("text") or "")
            elif kind == "message_delta":
                stop = event["delta"].get("stop_reason") or stop
                take(event.get("usage"))
        content = "".join(parts)
    else:
        data = json.loads(case.body)
        content = "".join(b.get("text") or "" for b in data.get("content") or () if b.get("type") == "text")
        model, stop = data.get("model"), data.get("stop_reason")
        take(data.get("usage"))
    uncached = usage.get("input_tokens")
    read, written = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    return Expected(
        content=content,
        prompt_tokens=None if uncached is None else uncached + (read or 0) + (written or 0),
        completion_tokens=usage.get("output_tokens"),
        cached_tokens=read or 0,
        reasoning_tokens=(usage.get("output_tokens_details") or {}).get("thinking_tokens"),
        finish_reason=_mapped(_ANTHROPIC_FINISH, stop),
        model=model,
    )


def expected_gemini(case: Case) -> Expected:
    chunks = sse_data(case.body) if case.stream else [json.loads(case.body)]
    parts: list[str] = []
    meta: Mapping[str, Any] | None = None
    model = finish = None
    has_call = False
    for chunk in chunks:
        candidates = chunk.get("candidates") or []
        if candidates:
            candidate = candidates[0]
            for part in (candidate.get("content") or {}).get("parts") or ():
                if isinstance(part.get("text"), str) and part.get("thought") is not True:
                    parts.append(part["text"])
                has_call = has_call or "functionCall" in part
            finish = candidate.get("finishReason") or finish
        meta = chunk.get("usageMetadata") or meta
        model = chunk.get("modelVersion") or model
    meta = meta or {}
    candidates_count, thoughts = meta.get("candidatesTokenCount"), meta.get("thoughtsTokenCount")
    if finish is None:
        reason = None
    elif finish == "STOP":
        reason = "tool_calls" if has_call else "stop"
    elif finish == "MAX_TOKENS":
        reason = "length"
    else:
        reason = "content_filter" if finish in _GEMINI_FILTERED else "other"
    return Expected(
        content="".join(parts),
        # Tool-use prompt tokens (code execution, search) are input processed and billed too.
        prompt_tokens=(None if meta.get("promptTokenCount") is None
                       else meta["promptTokenCount"] + meta.get("toolUsePromptTokenCount", 0)),
        completion_tokens=(None if candidates_count is None and thoughts is None
                           else (candidates_count or 0) + (thoughts or 0)),
        cached_tokens=meta.get("cachedContentTokenCount") or 0,
        reasoning_tokens=thoughts,
        finish_reason=reason,
        model=model,
    )


def expected_ollama(case: Case) -> Expected:
    lines = ndjson(case.body) if case.stream else [json.loads(case.body)]
    parts: list[str] = []
    tool_calls = False
    final: Mapping[str, Any] = {}
    for line in lines:
        message = line.get("message") or {}
        parts.append(message.get("content") or "")  # message.thinking is not answer text
        tool_calls = tool_calls or bool(message.get("tool_calls"))
        if line.get("done"):
            final = line
            break
    done_reason = final.get("done_reason")
    return Expected(
        content="".join(parts),
        prompt_tokens=final.get("prompt_eval_count"),
        completion_tokens=final.get("eval_count"),
        cached_tokens=None,
        reasoning_tokens=None,
        finish_reason="tool_calls" if tool_calls else _mapped({"stop": "stop", "length": "length"}, done_reason),
        model=final.get("model"),
    )


def expected_success(case: Case) -> Expected:
    if case.provider in ("openai", "openai-compatible"):
        return expected_openai(case)
    return {"anthropic": expected_anthropic, "gemini": expected_gemini, "ollama": expected_ollama}[case.provider](case)


@dataclass(frozen=True)
class ExpectedError:
    type: str
    exit_code: int
    retryable: bool
    status_code: int
    retry_after: float | None
    message: str | None  # the recorded error message, which ours must contain


def _google_retry_delay(body: Any) -> float | None:
    error = body.get("error") if isinstance(body, dict) else None
    for detail in (error or {}).get("details") or ():
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return float(str(detail["retryDelay"]).removesuffix("s"))
    return None


def _recorded_message(body: Any, text: str) -> str | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return error.get("message")
        if isinstance(error, str):
            return error
        return None
    return " ".join(text.split()) or None


def expected_error(case: Case) -> ExpectedError:
    status, headers, text = case.status, case.headers, case.body
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    reasons = {d.get("reason") for d in (error.get("details") or ())} if isinstance(error, dict) else set()
    recorded = _recorded_message(body, text) or ""
    # The recorded over-long prompts: Anthropic's "prompt is too long", OpenAI's context_length_exceeded.
    overflow = status == 400 and ("prompt is too long" in recorded
                                  or (isinstance(error, dict) and error.get("code") == "context_length_exceeded"))
    if overflow:
        kind, exit_code, retryable = "context_length_exceeded", 3, False
    elif status in (401, 403) or (case.provider == "gemini" and status == 400 and "API_KEY_INVALID" in reasons):
        kind, exit_code, retryable = "authentication_error", 2, False
    elif status == 404:
        kind, exit_code, retryable = "model_not_found", 2, False
    elif status == 429:
        kind, exit_code, retryable = "rate_limited", 1, True
    elif status == 529:
        kind, exit_code, retryable = "overloaded", 1, True
    elif status >= 500:
        kind, exit_code, retryable = "server_error", 1, True
    else:
        kind, exit_code, retryable = "invalid_request", 3, False
    should_retry = headers.get("x-should-retry", "").strip().lower()
    if should_retry in ("true", "false"):
        retryable = should_retry == "true"
    retry_after: float | None = None
    if case.provider == "gemini":
        retry_after = _google_retry_delay(body)
    if retry_after is None and headers.get("retry-after-ms"):
        retry_after = float(headers["retry-after-ms"]) / 1000
    if retry_after is None and headers.get("retry-after"):
        retry_after = float(headers["retry-after"])
    return ExpectedError(kind, exit_code, retryable, status, retry_after, _recorded_message(body, text))


# -- driving a provider against the emulator -----------------------------------------------------------


def make_llm(provider: str, url: str) -> BaseLlm:
    if provider == "openai":
        return OpenAiLlm(api_key="sk-test-123456", base_url=url + "/v1", timeout=30)
    if provider == "openai-compatible":
        return OpenAiCompatibleLlm(api_key="sk-test-123456", base_url=url + "/v1", timeout=30)
    if provider == "anthropic":
        return AnthropicLlm(api_key="sk-ant-test-123456", base_url=url, timeout=30)
    if provider == "gemini":
        return GeminiLlm(api_key="AIza-test-123456", base_url=url, timeout=30)
    if provider == "ollama":
        return OllamaLlm(base_url=url, timeout=30)
    raise AssertionError(f"unknown provider {provider}")


def request_for(case: Case, *, stream: bool) -> LlmRequest:
    return LlmRequest(messages=(Message("user", "hi"),), model=case.model, max_tokens=100, stream=stream)


async def _run(llm: BaseLlm, request: LlmRequest) -> list[str | LlmResponse]:
    try:
        if request.stream:
            return [item async for item in llm.stream(request)]
        return [await llm.generate(request)]
    finally:
        await llm.aclose()


def replay(emu: Emulator, case: Case, *, stream: bool) -> list[str | LlmResponse]:
    emu.script([{"fixture": case.name}])
    try:
        return asyncio.run(_run(make_llm(case.provider, emu.url), request_for(case, stream=stream)))
    finally:
        # The recording was served to the endpoint our provider really calls, exactly once.
        calls = emu.requests()
        assert len(calls) == 1, calls
        assert calls[0]["method"] == "POST", calls
        assert case.call_matches(calls[0]["path"], calls[0]["query"], stream), (calls[0]["path"], calls[0]["query"])


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    emulator = Emulator(fixtures_dir=FIXTURES_DIR).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(autouse=True)
def _fresh_emulator(emu: Emulator) -> None:
    emu.reset()


# -- the tests ---------------------------------------------------------------------------------------------


def test_every_fixture_is_covered_or_excluded() -> None:
    names = all_fixture_names()
    assert len(names) >= 68, f"expected the 68 recordings of INDEX.md, found {len(names)} in {FIXTURES_DIR}"
    covered = {c.name for c in CASES}
    unknown = [n for n in names if n not in covered and n not in EXCLUDED]
    assert not unknown, f"fixtures neither replayed nor in EXCLUDED (add a provider case or a reason): {unknown}"
    both = sorted(covered & EXCLUDED.keys())
    assert not both, f"excluded fixtures that a provider does call: {both}"
    stale = sorted(set(EXCLUDED) - set(names))
    assert not stale, f"EXCLUDED names fixtures that do not exist: {stale}"
    stale_bugs = sorted(set(KNOWN_BUGS) - covered)
    assert not stale_bugs, f"KNOWN_BUGS names fixtures that are not replayed: {stale_bugs}"
    providers = {c.provider for c in CASES}
    assert providers == {"openai", "anthropic", "gemini", "ollama", "openai-compatible"}, providers


def test_stream_flag_matches_recorded_framing() -> None:
    """Sanity check of the classifier: streamed recordings are SSE/NDJSON, the rest one JSON body."""
    for case in SUCCESS:
        head = case.body.lstrip()
        framed = head.startswith(("data:", "event:")) or (case.provider == "ollama" and len(ndjson(case.body)) > 1)
        assert framed == case.stream, case.name


def test_expected_values_spot_checks() -> None:
    """The independent parsers above agree with values read by hand from INDEX.md / the files."""
    by_name = {c.name: c for c in SUCCESS}
    cached = expected_success(by_name["openai/chat-cached-tokens-gpt4o.json"])
    assert (cached.cached_tokens, cached.finish_reason) == (1152, "length")
    assert expected_success(by_name["openai/stream-exclude-usage.json"]).prompt_tokens is None
    web = expected_success(by_name["anthropic/stream-web-search-opus41.json"])
    assert (web.prompt_tokens, web.completion_tokens, web.finish_reason) == (10423, 341, "stop")
    gem = expected_success(by_name["gemini/stream-sse-basic-2.0-flash.json"])
    assert (gem.prompt_tokens, gem.completion_tokens, gem.model) == (14, 33, "gemini-2.0-flash")
    assert gem.content.startswith("Whiskers twitched.")
    tool = expected_success(by_name["ollama/chat-tool-call-thinking-qwen3.6.json"])
    assert (tool.finish_reason, tool.content, tool.prompt_tokens) == ("tool_calls", "", 292)
    thinking = expected_success(by_name["anthropic/messages-thinking-haiku45.json"])
    assert thinking.reasoning_tokens and thinking.reasoning_tokens > 0
    rate = expected_error(next(c for c in ERRORS if c.name == "gemini/error-429-resource-exhausted.json"))
    assert rate.retry_after == 48.0


@pytest.mark.parametrize("case", params(SUCCESS))
def test_success_fixture_parses_to_recorded_values(emu: Emulator, case: Case) -> None:
    expected = expected_success(case)
    items = replay(emu, case, stream=case.stream)
    *deltas, response = items
    assert isinstance(response, LlmResponse), items
    if case.stream:
        assert all(isinstance(d, str) for d in deltas), deltas
        assert "".join(deltas) == response.content
    else:
        assert deltas == []
    got = Expected(
        content=response.content,
        prompt_tokens=response.usage.prompt_tokens,
        completion_tokens=response.usage.completion_tokens,
        cached_tokens=response.usage.cached_tokens,
        reasoning_tokens=response.usage.reasoning_tokens,
        finish_reason=response.finish_reason,
        model=response.model,
    )
    assert got == expected


@pytest.mark.parametrize("case", params(ERRORS))
def test_error_fixture_maps_to_documented_error(emu: Emulator, case: Case) -> None:
    expected = expected_error(case)
    with pytest.raises(LlmError) as info:
        replay(emu, case, stream=False)
    err = info.value
    got = ExpectedError(
        type=err.type,
        exit_code=err.exit_code,
        retryable=err.retryable,
        status_code=err.status_code,  # type: ignore[arg-type]
        retry_after=err.retry_after,
        message=expected.message,
    )
    assert got == expected, f"{type(err).__name__}: {err.message}"
    if expected.message:
        assert expected.message in err.message


@pytest.mark.parametrize("case", params(ERRORS))
def test_error_fixture_maps_the_same_when_streaming(emu: Emulator, case: Case) -> None:
    expected = expected_error(case)
    with pytest.raises(LlmError) as info:
        replay(emu, case, stream=True)
    err = info.value
    assert (err.type, err.exit_code, err.retryable, err.status_code, err.retry_after) == (
        expected.type, expected.exit_code, expected.retryable, expected.status_code, expected.retry_after,
    ), f"{type(err).__name__}: {err.message}"


# One replayed call per (provider, stream): enough to compare describe() with what was really sent.
_DESCRIBE_CASES = list({(c.provider, c.stream): c for c in reversed(SUCCESS)}.values())


@pytest.mark.parametrize("case", [
    pytest.param(c, id=f"{c.provider}-{'stream' if c.stream else 'generate'}")
    for c in sorted(_DESCRIBE_CASES, key=lambda c: (c.provider, c.stream))
])
def test_describe_matches_the_request_sent(emu: Emulator, case: Case) -> None:
    """--dry-run's describe() must name the path, query and JSON body the provider really sends."""
    replay(emu, case, stream=case.stream)
    sent = emu.requests()[0]
    described = make_llm(case.provider, emu.url).describe(request_for(case, stream=case.stream))
    url = urlsplit(described["url"])
    assert described["method"] == sent["method"]
    assert (url.path, dict(parse_qsl(url.query))) == (sent["path"], sent["query"])
    assert described["body"] == sent["body"]
