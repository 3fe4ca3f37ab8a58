"""Claude through the official `anthropic` SDK, Messages API (async client)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from functools import cache
from typing import Any

from ..errors import LlmError, ResponseError
from ..request import LlmRequest
from ..response import FinishReason, LlmResponse, Usage
from ._stainless_sdk_errors import translate_sdk_error
from .base import BaseLlm, StreamItem, incomplete_stream, mapped_errors

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Error types Anthropic sends inside a 200 SSE stream (`event: error`), as HTTP statuses, so the
# shared status table decides retryability the same way it does for real statuses.
_STREAM_ERROR_STATUS = {
    "overloaded_error": 529,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
}


def finish_reason(value: str | None) -> FinishReason | None:
    return None if value is None else _FINISH.get(value, "other")


def _count(usage: Any, name: str) -> int | None:
    value = getattr(usage, name, None)
    return value if isinstance(value, int) else None


def usage_from(usage: Any) -> Usage:
    """Anthropic reports uncached input, cache reads and cache writes separately; our
    prompt_tokens is their sum (all input processed), cached_tokens the reads."""
    if usage is None:
        return Usage()
    uncached = _count(usage, "input_tokens")
    read = _count(usage, "cache_read_input_tokens")
    written = _count(usage, "cache_creation_input_tokens")
    prompt = None if uncached is None else uncached + (read or 0) + (written or 0)
    details = getattr(usage, "output_tokens_details", None)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=_count(usage, "output_tokens"),
        cached_tokens=read if read is not None else (0 if prompt is not None else None),
        cache_write_tokens=written,
        # Only some responses carry output_tokens_details.thinking_tokens: None otherwise.
        reasoning_tokens=_count(details, "thinking_tokens"),
    )


def _merge_usage(start: Any, delta: Any) -> dict[str, Any]:
    """message_delta usage is cumulative and may update the input counts of message_start
    (server tools add input): the later value wins, field by field."""
    merged: dict[str, Any] = {}
    for source in (start, delta):
        if source is None:
            continue
        for name in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                     "cache_creation_input_tokens", "output_tokens_details"):
            value = getattr(source, name, None)
            if value is not None:
                merged[name] = value
    return merged


class _Counts:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


@cache
def sdk_deprecations() -> dict[str, tuple[str | None, str | None]]:
    """The installed SDK's own table of deprecated models (anthropic/_data/deprecated_models.py,
    which it warns with), end-of-life dates as ISO dates; it names no replacements."""
    return {model: (_iso_date(when), None) for model, when in _sdk_deprecated_models().items()}


def _sdk_deprecated_models() -> Mapping[str, str]:
    import sys

    loaded = sys.modules.get("anthropic._data.deprecated_models")
    if loaded is not None:
        return loaded.DEPRECATED_MODELS
    # Importing the table the ordinary way imports the whole SDK first (~1.3 s), so when the SDK is
    # not loaded yet its file is read as data: a literal dict, evaluated without running any code.
    import ast
    import os
    from importlib.util import find_spec

    try:
        spec = find_spec("anthropic")  # a top-level package is found without being imported
        if spec is None or spec.origin is None:
            return {}
        path = os.path.join(os.path.dirname(spec.origin), "_data", "deprecated_models.py")
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, ValueError, SyntaxError):
        return {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Assign):
            targets = node.targets
        else:
            continue
        if node.value is not None and any(isinstance(t, ast.Name) and t.id == "DEPRECATED_MODELS" for t in targets):
            try:
                table = ast.literal_eval(node.value)
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in table.items()} if isinstance(table, dict) else {}
    return {}


_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")


def _iso_date(text: str) -> str | None:
    """ "January 22nd, 2027" (the SDK's style) or "2027-01-22" -> "2027-01-22"; None if neither.
    Parsed by hand: strptime's %B depends on the locale, and importing _strptime costs ~4 ms."""
    import re
    from datetime import date

    match = re.fullmatch(r"\s*([A-Za-z]+)\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\s*", text)
    try:
        if match is None:
            return date.fromisoformat(text.strip()).isoformat()
        month = _MONTHS.index(match[1].lower()) + 1
        return date(int(match[3]), month, int(match[2])).isoformat()
    except ValueError:  # not a month name, not a calendar date
        return None


class AnthropicLlm(BaseLlm):
    name = "anthropic"
    default_model = "claude-sonnet-4-6"
    key_env_vars = ("ANTHROPIC_API_KEY",)
    base_url_env_vars = ("ANTHROPIC_BASE_URL",)
    default_base_url = "https://api.anthropic.com"
    pricing_provider = "anthropic"
    agent_types = ("anthropic-claude",)
    provider_aliases = ("anthropic",)
    executable = "llm-exec-claude"
    gen_ai_provider = "anthropic"

    _client_instance: Any = None

    @classmethod
    def model_deprecations(cls) -> Mapping[str, tuple[str | None, str | None]]:
        return sdk_deprecations()

    def _client(self) -> Any:
        if self._client_instance is None:
            from anthropic import AsyncAnthropic  # ~1.3 s import: only when a call is made

            self._client_instance = AsyncAnthropic(
                api_key=self.api_key,
                base_url=self.base_url,
                max_retries=0,  # one retry policy, ours (llm_exec.retry)
                timeout=self.timeout,
            )
        return self._client_instance

    def request_body(self, request: LlmRequest) -> dict[str, Any]:
        system, turns = request.split_system()
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in turns],
        }
        if system:
            body["system"] = system
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        # anthropic 2.14 removed temperature/top_p from create()'s signature; the API still
        # takes them, so they travel in the JSON body (extra_body). Claude has no seed.
        extra = {k: v for k, v in (("temperature", request.temperature),
                                    ("top_p", request.top_p)) if v is not None}
        if extra:
            body["extra_body"] = extra
        return body

    def describe(self, request: LlmRequest) -> dict[str, Any]:
        body = self.request_body(request)
        body.update(body.pop("extra_body", {}))
        if request.stream:
            body["stream"] = True
        return {
            "method": "POST",
            "url": f"{(self.base_url or '').rstrip('/')}/v1/messages",
            "headers": {"x-api-key": "[REDACTED]", "anthropic-version": "2023-06-01"},
            "body": body,
        }

    async def _generate(self, request: LlmRequest) -> LlmResponse:
        with mapped_errors(translate_error):
            message = await self._client().messages.create(**self.request_body(request))
        if not hasattr(message, "content"):
            raise ResponseError(f"unexpected response body: {str(message)[:200]!r}")
        text = "".join(block.text for block in message.content or () if block.type == "text")
        return LlmResponse(
            content=text,
            usage=usage_from(message.usage),
            model=message.model,
            finish_reason=finish_reason(message.stop_reason),
            request_id=getattr(message, "_request_id", None) or message.id,
        )

    async def _stream(self, request: LlmRequest) -> AsyncIterator[StreamItem]:
        parts: list[str] = []
        start_usage: Any = None
        delta_usage: Any = None
        model = request_id = stop_reason = None
        events = 0
        stopped = False
        with mapped_errors(translate_error):
            stream = await self._client().messages.create(stream=True, **self.request_body(request))
            request_id = stream.response.headers.get("request-id")
            async for event in stream:
                events += 1
                if event.type == "message_start":
                    model = event.message.model
                    start_usage = event.message.usage
                elif event.type == "content_block_delta":
                    # Only text_delta is answer text; thinking/signature/json deltas are not.
                    if event.delta.type == "text_delta" and event.delta.text:
                        parts.append(event.delta.text)
                        yield event.delta.text
                elif event.type == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    delta_usage = event.usage
                elif event.type == "message_stop":
                    stopped = True
        if not stopped:
            raise incomplete_stream(events, "message_stop")
        merged = _merge_usage(start_usage, delta_usage)
        yield LlmResponse(
            content="".join(parts),
            usage=usage_from(_Counts(merged)) if merged else Usage(),
            model=model,
            finish_reason=finish_reason(stop_reason),
            request_id=request_id,
            usage_note=None if merged else "the stream carried no usage",
        )

    async def aclose(self) -> None:
        if self._client_instance is not None:
            await self._client_instance.close()


def translate_error(exc: BaseException) -> LlmError | None:
    import anthropic

    if isinstance(exc, anthropic.APIStatusError) and exc.status_code < 400:
        # `event: error` inside a 200 stream: classify it by the error's type.
        error = exc.body.get("error") if isinstance(exc.body, Mapping) else None
        error_type = str(error.get("type")) if isinstance(error, Mapping) else ""
        mapped = translate_sdk_error(exc, anthropic, status=_STREAM_ERROR_STATUS.get(error_type, 500))
        if mapped is not None:
            mapped.status_code = None  # nothing failed at the HTTP level
            mapped.type = "stream_error" if mapped.type == "server_error" else mapped.type
        return mapped
    return translate_sdk_error(exc, anthropic)
