"""`llm-exec-llama`: local Llama-family models, through one of two APIs.

* `api_style: "ollama"` (the default): Ollama's native `POST /api/chat` (`OllamaLlm`), with NDJSON
  streaming. Base URL from OLLAMA_HOST, as the ollama CLI reads it (`host:port`, no scheme needed).
* `api_style: "openai"`: any OpenAI-compatible server (llama.cpp `llama-server`, vLLM, LM Studio,
  Ollama's `/v1`) through the openai SDK (`OpenAiCompatibleLlm`).

The spec's `api_style` wins over LLM_EXEC_LLAMA_API_STYLE; `LlamaLlm.for_options` picks the class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any
from urllib.parse import urlsplit

from ..config import check_endpoint, environ
from ..errors import ConfigurationError, ResponseError, ServiceUnavailableError
from ..request import LlmRequest
from ..response import FinishReason, LlmResponse, Usage
from ._cancellable_requests import parse_json, post_json, post_lines
from ._http_errors import body_message
from .base import BaseLlm, StreamItem, incomplete_stream
from .openai import OpenAiLlm

API_STYLE_ENV = "LLM_EXEC_LLAMA_API_STYLE"
API_STYLES = ("ollama", "openai")

OLLAMA_HOST_ENV = "OLLAMA_HOST"
OLLAMA_DEFAULT_PORT = 11434

_DONE_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


class OllamaLlm(BaseLlm):
    """Ollama's native chat API."""

    name = "ollama"
    default_model = "llama3.2"
    key_env_vars = ("OLLAMA_API_KEY",)
    requires_key = False  # a local Ollama needs none; ollama.com and auth proxies take a bearer key
    base_url_env_vars = (OLLAMA_HOST_ENV,)
    default_base_url = f"http://localhost:{OLLAMA_DEFAULT_PORT}"
    pricing_provider = None
    option_fields = ("api_style",)
    gen_ai_provider = "ollama"

    @classmethod
    def resolve_base_url(cls, api_endpoint: str | None) -> str | None:
        if api_endpoint:
            return check_endpoint(api_endpoint, source="api_endpoint")
        host = environ().get(OLLAMA_HOST_ENV, "").strip()
        if host:
            return check_endpoint(ollama_host_url(host), source=OLLAMA_HOST_ENV)
        return cls.default_base_url

    def request_body(self, request: LlmRequest, *, stream: bool | None = None) -> dict[str, Any]:
        options = {
            "num_predict": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stop": list(request.stop) or None,
            "seed": request.seed,
        }
        return {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            # Always explicit: Ollama streams when the field is absent.
            "stream": request.stream if stream is None else stream,
            "options": {k: v for k, v in options.items() if v is not None},
        }

    def _url(self) -> str:
        return f"{self.require_base_url()}/api/chat"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def describe(self, request: LlmRequest) -> dict[str, Any]:
        return self.json_post_preview(self._url(), self.request_body(request))

    async def _generate(self, request: LlmRequest) -> LlmResponse:
        reply = await post_json(self._url(), self.request_body(request, stream=False), self._headers(), self.timeout)
        if not reply.ok:
            raise reply.error()
        data = _chunk(reply.json(), error_type="server_error")
        message = data.get("message")
        if not isinstance(message, Mapping):
            raise ResponseError(f"Ollama answer has no message: {reply.text[:200]!r}")
        return _response(data, message.get("content") or "", tool_calls=bool(message.get("tool_calls")))

    async def _stream(self, request: LlmRequest) -> AsyncIterator[StreamItem]:
        body = self.request_body(request, stream=True)
        parts: list[str] = []
        tool_calls = False
        final: Mapping[str, Any] | None = None
        events = 0
        async with aclosing(post_lines(self._url(), body, self._headers(), self.timeout)) as lines:
            async for line in lines:
                events += 1
                data = _chunk(parse_json(line), error_type="stream_error")
                message = data.get("message")
                if isinstance(message, Mapping):
                    # message.thinking (reasoning models) is deliberately not part of the output.
                    text = message.get("content")
                    if text:
                        parts.append(text)
                        yield text
                    tool_calls = tool_calls or bool(message.get("tool_calls"))
                if data.get("done"):
                    final = data
                    break
        if final is None:
            raise incomplete_stream(events, "the done line")
        yield _response(final, "".join(parts), tool_calls=tool_calls)


class OpenAiCompatibleLlm(OpenAiLlm):
    """An OpenAI-compatible local server: the OpenAI provider with local configuration."""

    name = "openai-compatible"
    default_model = "llama3.2"
    key_env_vars = ()  # a bearer key only when the spec's api_key_env names one
    requires_key = False
    base_url_env_vars = ("LLM_EXEC_LLAMA_BASE_URL",)
    default_base_url = "http://localhost:8080/v1"  # llama.cpp llama-server's default port
    pricing_provider = None
    max_tokens_param = "max_tokens"  # compatible servers know max_tokens, not max_completion_tokens
    gen_ai_provider = None  # not OpenAI's service: reported by its own name


class LlamaLlm(OllamaLlm):
    """The `llm-exec-llama` entry point: serves as Ollama unless the API style says otherwise."""

    agent_types = ("meta-llama",)
    provider_aliases = ("ollama",)
    executable = "llm-exec-llama"

    @classmethod
    def for_options(cls, options: Mapping[str, Any]) -> type[BaseLlm]:
        return OpenAiCompatibleLlm if api_style(options) == "openai" else OllamaLlm


def api_style(options: Mapping[str, Any]) -> str:
    """The spec's `api_style`, else LLM_EXEC_LLAMA_API_STYLE, else "ollama"."""
    style = options.get("api_style")
    if style:
        if style not in API_STYLES:
            raise ConfigurationError(
                f"api_style {style!r} is not one of {', '.join(API_STYLES)}", field="api_style"
            )
        return str(style)
    value = environ().get(API_STYLE_ENV, "").strip().lower()
    if not value:
        return "ollama"
    if value not in API_STYLES:
        raise ConfigurationError(
            f"{API_STYLE_ENV}={value!r} is not one of {', '.join(API_STYLES)}", field=API_STYLE_ENV
        )
    return value


def ollama_host_url(value: str) -> str:
    """OLLAMA_HOST as Ollama itself reads it -> a base URL.

    Ollama accepts `host`, `host:port`, `:port` and `scheme://host[:port][/path]`; without a scheme
    it means http on port 11434. A bind-all address (0.0.0.0, ::, empty) is where the server
    listens, not where to connect: use loopback.
    """
    scheme, sep, rest = value.strip().partition("://")
    if not sep:
        scheme, rest = "http", value.strip()
        default_port = OLLAMA_DEFAULT_PORT
    else:
        default_port = 443 if scheme.lower() == "https" else 80
    hostport, slash, path = rest.partition("/")
    try:
        parts = urlsplit(f"//{hostport}")
        port = parts.port or default_port
    except ValueError as exc:
        raise ConfigurationError(
            f"{OLLAMA_HOST_ENV}={value!r} is not a valid host: {exc}", field=OLLAMA_HOST_ENV,
            error_type="invalid_endpoint",
        ) from None
    host = parts.hostname or ""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}" + (f"/{path.rstrip('/')}" if slash and path.strip("/") else "")


def _chunk(data: Any, *, error_type: str) -> Mapping[str, Any]:
    """One Ollama JSON object; an `{"error": ...}` object in a 200 answer is a server failure."""
    if not isinstance(data, Mapping):
        raise ResponseError(f"Ollama sent a JSON {type(data).__name__}, expected an object")
    if data.get("error"):
        raise ServiceUnavailableError(body_message(data, "Ollama reported an error"), error_type=error_type)
    return data


def _response(final: Mapping[str, Any], content: str, *, tool_calls: bool) -> LlmResponse:
    """The answer from Ollama's final (`done: true`) object, which alone carries the counts."""
    usage = Usage(
        prompt_tokens=_count(final.get("prompt_eval_count")),
        completion_tokens=_count(final.get("eval_count")),
    )
    model = final.get("model")
    return LlmResponse(
        content=content,
        usage=usage,
        model=model if isinstance(model, str) and model else None,
        finish_reason="tool_calls" if tool_calls else _done_reason(final.get("done_reason")),
        request_id=None,  # Ollama sends no request id
        usage_note=None if usage.reported else "Ollama reported no token counts",
    )


def _done_reason(value: Any) -> FinishReason | None:
    if not value:
        return None
    return _DONE_REASONS.get(str(value), "other")


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
