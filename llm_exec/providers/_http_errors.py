"""HTTP status -> our error, shared by every provider's mapping boundary.

Providers extract (status, message, headers, body) from their SDK's exception and call
`error_from_status`; provider quirks (Gemini's 400 API_KEY_INVALID, Anthropic's `event: error`
inside a 200 stream) are handled in the provider module before falling back to this table.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from ..errors import (
    AuthenticationError,
    ConnectionError,
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


def body_message(body: Any, fallback: str) -> str:
    """A readable message from a provider's error body, whatever its shape."""
    message: Any = None
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping):
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        message = message or body.get("message")
    elif isinstance(body, str) and body.strip():
        message = _squash(body)
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


def error_from_status(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    retry_after: float | None = None,
    request_id: str | None = None,
) -> LlmError:
    """The one status table (documented in the README's exit-code section)."""
    kwargs: dict[str, Any] = {
        "status_code": status,
        "retry_after": retry_after if retry_after is not None else parse_retry_after(headers),
        "request_id": request_id,
    }
    error: LlmError
    if status in (401, 403):
        error = AuthenticationError(message, **kwargs)
    elif status == 404:
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
