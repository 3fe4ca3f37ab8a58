"""HTTP status (and error body) -> our error, shared by every provider's mapping boundary.

Providers extract (status, message, headers, body) from their SDK's exception and call
`error_from_status`; provider quirks (Anthropic's `event: error` inside a 200 stream) are handled
in the provider module before falling back to this table.

The status alone does not say everything: a gateway (LiteLLM proxy) answers an unknown model or a
rejected key with 400, Gemini a bad key with 400 INVALID_ARGUMENT, and every provider an over-long
prompt with its own 400 wording. `body_kind` reads the body for those cases (`_BODY_PATTERNS`, one
list per kind, each entry naming whose wording it is); the README's exit-code section lists them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from functools import cache
from typing import Any

from ..errors import (
    AuthenticationError,
    ConnectionError,
    ContextLengthExceededError,
    InvalidRequestError,
    LlmError,
    ModelNotFoundError,
    RateLimitError,
    ResponseError,
    ServiceUnavailableError,
    TimeoutError,
)

_MAX_MESSAGE = 2000


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The wait the server asked for: retry-after-ms wins over retry-after (as in the SDKs)."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # deferred: an HTTP-date Retry-After is rare, the import costs ~1.5 ms per start

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def should_retry_header(headers: Mapping[str, str] | None) -> bool | None:
    """x-should-retry: true/false overrides our own judgement, as the SDKs do."""
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "x-should-retry":
            if value.strip().lower() == "true":
                return True
            if value.strip().lower() == "false":
                return False
    return None


_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)s\s*$")


def google_retry_delay(body: Any) -> float | None:
    """Gemini puts the wait in the body: error.details[@type=...RetryInfo].retryDelay = "48s"."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, Mapping) else None
    for detail in details or ():
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = _DURATION_RE.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def body_message(body: Any, fallback: str, _depth: int = 0) -> str:
    """A readable message from a provider's error body, whatever its shape. A gateway's message
    that is itself the upstream's error (an object, or its JSON text: Ollama around llama-server,
    proxies around Gemini) gives the upstream's message."""
    message: Any = None
    if isinstance(body, list) and len(body) == 1:
        body = body[0]  # Gemini's OpenAI-compatible endpoint answers [{"error": {...}}]
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping):
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        message = message or body.get("message")
    elif isinstance(body, str) and body.strip():
        message = _squash(body)
    if _depth < 3:
        inner: Any = message
        if isinstance(message, str) and message.lstrip().startswith(("{", "[")):
            inner = parse_body(message)
        if isinstance(inner, Mapping | list):
            message = body_message(inner, "", _depth + 1) or (
                message if isinstance(message, str) else json.dumps(message, default=str))
    text = str(message) if message else fallback
    return text[:_MAX_MESSAGE]


def _squash(text: str) -> str:
    # HTML error pages from proxies: keep the words, drop the markup.
    if "<" in text and ">" in text:
        text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())


def parse_body(raw: str | bytes | None) -> Any:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        return json.loads(raw)
    except ValueError:
        return raw


# What an error body can say beyond its status. Matched case-insensitively against the message
# and the body's message/type/code/reason fields (nested ones too, see `_body_signals`).
_BODY_PATTERNS: dict[str, tuple[str, ...]] = {
    "context_length_exceeded": (
        r"\bcontext_length_exceeded\b",  # OpenAI's code (llama-cpp-python's server sends it too)
        r"maximum context length",  # OpenAI, vLLM, llama-cpp-python: "This model's maximum context length is N"
        r"\bprompt is too long\b",  # Anthropic: "prompt is too long: N tokens > M maximum"
        r"exceeds? (?:the )?(?:maximum )?context (?:length|window|limit)",
        # ^ Ollama "the input length exceeds the context length"; OpenAI "Your input exceeds the context
        #   window of this model"; Anthropic "input length and `max_tokens` exceed context limit: a + b > c"
        r"input token count\b.{0,40}\bexceeds the maximum number of tokens",  # Gemini (400 INVALID_ARGUMENT)
        r"\bexceed_context_size_error\b",  # llama.cpp server's error type
        r"exceeds? the available context size",  # llama.cpp server: "the request exceeds the available context size"
        r"`inputs` tokens \+ `max_new_tokens` must be <=",  # Hugging Face TGI (422)
        r"\bcontextwindowexceedederror\b",  # LiteLLM's exception name, in messages it relays
    ),
    "authentication_error": (
        r"\bapi_key_invalid\b",  # Gemini: 400 INVALID_ARGUMENT, ErrorInfo reason API_KEY_INVALID
        r"\bapi key not valid\b",  # Gemini's message for it
        r"\b(?:invalid|incorrect) (?:api key|x-api-key)\b",  # OpenAI, Anthropic, LiteLLM wording
        r"\bauthentication error\b",  # LiteLLM proxy: "Authentication Error, ..."
        r"\bno connected db\b",  # LiteLLM proxy with no database, given a key that is not the master key
        r"\b(?:auth_error|authentication_error|no_db_connection|invalid_api_key)\b",  # error types / codes
    ),
    "model_not_found": (
        r"\binvalid model name\b",  # LiteLLM proxy: "Invalid model name passed in model=x"
        r"\bmodel_not_found\b",  # OpenAI's code
        r"\bmodels?\b.{0,120}?\bnot found\b",  # Ollama `model "x" not found`, Gemini "models/x is not found"
        r"\bmodels?\b.{0,120}?\bdoes not exist\b",  # OpenAI / vLLM "The model `x` does not exist"
        r"\bunknown model\b",
        r"\bunexpected model name format\b",  # Gemini
    ),
}
# Statuses whose body is read, per kind: a context overflow also comes as 413/422 (TGI) or 500
# (older llama.cpp servers and Ollama runners); an unknown model or bad key beyond 404/401/403 only
# as 400 (gateways, Gemini).
_BODY_STATUSES = {
    "context_length_exceeded": frozenset({400, 413, 422, 500}),
    "authentication_error": frozenset({400}),
    "model_not_found": frozenset({400}),
}
_SIGNAL_KEYS = frozenset({"message", "error", "detail", "type", "code", "reason", "status", "error_type"})
_MAX_SIGNAL_TEXT = 20000


@cache
def _compiled_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    # Compiled on the first error only: a successful run never pays for these.
    return tuple((kind, re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE))
                 for kind, patterns in _BODY_PATTERNS.items())


def _body_signals(body: Any, depth: int = 0) -> list[str]:
    """The texts of an error body that say what went wrong: message, type, code, reason... at any
    depth (a gateway nests the upstream's error), never other fields (an echoed request)."""
    if depth > 6:
        return []
    if isinstance(body, str):
        return [body]
    out: list[str] = []
    if isinstance(body, Mapping):
        for key, value in body.items():
            if isinstance(value, Mapping | list):
                out.extend(_body_signals(value, depth + 1))
            elif isinstance(value, str | int) and not isinstance(value, bool) and str(key).lower() in _SIGNAL_KEYS:
                out.append(str(value))
    elif isinstance(body, list):
        for item in body[:20]:
            out.extend(_body_signals(item, depth + 1))
    return out


def body_kind(status: int, message: str, body: Any = None) -> str | None:
    """What the error body says beyond the status: "context_length_exceeded",
    "authentication_error", "model_not_found", or None (the status decides)."""
    if not any(status in statuses for statuses in _BODY_STATUSES.values()):
        return None
    text = "\n".join([message, *_body_signals(body)])[:_MAX_SIGNAL_TEXT]
    for kind, pattern in _compiled_patterns():  # in order: a context overflow is never a key problem
        if status in _BODY_STATUSES[kind] and pattern.search(text):
            return kind
    return None


def error_from_status(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    retry_after: float | None = None,
    request_id: str | None = None,
    body: Any = None,
) -> LlmError:
    """The one status table (documented in the README's exit-code section). `body` is the parsed
    error body (or its text), read for what the status alone does not say (`body_kind`)."""
    kwargs: dict[str, Any] = {
        "status_code": status,
        "retry_after": retry_after if retry_after is not None else parse_retry_after(headers),
        "request_id": request_id,
    }
    kind = body_kind(status, message, body)
    error: LlmError
    if kind == "context_length_exceeded":
        error = ContextLengthExceededError(message, **kwargs)
    elif status in (401, 403) or kind == "authentication_error":
        error = AuthenticationError(message, **kwargs)
    elif status == 404 or kind == "model_not_found":
        error = ModelNotFoundError(message, field="model", **kwargs)
    elif status == 408:
        error = TimeoutError(message, **kwargs)
    elif status == 429:
        error = RateLimitError(message, **kwargs)
    elif status == 529:
        error = ServiceUnavailableError(message, error_type="overloaded", **kwargs)
    elif status == 409 or status >= 500:
        error = ServiceUnavailableError(message, **kwargs)
    elif 400 <= status < 500:
        error = InvalidRequestError(message, **kwargs)
    else:
        error = ResponseError(f"unexpected HTTP status {status}: {message}", **kwargs)
    override = should_retry_header(headers)
    if override is not None:
        error.retryable = override
    return error


def translate_httpx_error(exc: BaseException) -> LlmError | None:
    """The SDKs talk HTTP through httpx2; errors while reading a stream surface from it unwrapped."""
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return TimeoutError("request timed out", error_type="read_timeout")
    if isinstance(exc, httpx2.TransportError):
        # Connect/read errors and protocol errors (a body or chunked stream cut short).
        return ConnectionError(f"connection failed: {type(exc).__name__}: {exc}")
    return None
