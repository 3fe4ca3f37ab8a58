"""GPT through the official `openai` SDK, Chat Completions API (async client).

Also the base of OpenAI-compatible local servers (llama.cpp server, vLLM, LM Studio, Ollama's
/v1), which differ only in configuration: see `OpenAiCompatibleLlm` in llama.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from ..errors import LlmError, ResponseError, ServiceUnavailableError
from ..request import LlmRequest
from ..response import FinishReason, LlmResponse, Usage
from ._http_errors import body_message
from ._stainless_sdk_errors import translate_sdk_error
from .base import BaseLlm, StreamItem, incomplete_stream, mapped_errors

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def finish_reason(value: str | None, table: Mapping[str, FinishReason] = _FINISH) -> FinishReason | None:
    return None if value is None else table.get(value, "other")


def usage_from(usage: Any) -> Usage:
    """OpenAI usage -> ours. Details are optional: compatible servers often omit them (-> None)."""
    if usage is None:
        return Usage()
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=getattr(prompt_details, "cached_tokens", None),
        reasoning_tokens=getattr(completion_details, "reasoning_tokens", None),
    )


class OpenAiLlm(BaseLlm):
    name = "openai"
    default_model = "gpt-5.4-mini"
    key_env_vars = ("OPENAI_API_KEY",)
    base_url_env_vars = ("OPENAI_BASE_URL",)
    default_base_url = "https://api.openai.com/v1"
    pricing_provider = "openai"
    agent_types = ("openai-gpt",)
    provider_aliases = ("openai",)
    executable = "llm-exec-gpt"
    emulator_path = "/v1"
    gen_ai_provider = "openai"
    #: OpenAI deprecated max_tokens (reasoning models reject it); compatible servers know only it.
    max_tokens_param: ClassVar[str] = "max_completion_tokens"
    #: The API's finish reasons -> ours (anything else is "other"); OpenAI-shaped APIs add their own.
    finish_reasons: ClassVar[Mapping[str, FinishReason]] = _FINISH

    _client_instance: Any = None

    def _client(self) -> Any:
        if self._client_instance is None:
            from openai import AsyncOpenAI  # the SDK import is the largest start-up cost: defer

            self._client_instance = AsyncOpenAI(
                # Compatible servers may need no key; the SDK insists on a non-empty string.
                api_key=self.api_key or "no-key",
                base_url=self.base_url,
                max_retries=0,  # one retry policy, ours (llm_exec.retry)
                timeout=self.timeout,
            )
        return self._client_instance

    def request_body(self, request: LlmRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            self.max_tokens_param: request.max_tokens,
        }
        for name in ("temperature", "top_p", "seed"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.stop:
            body["stop"] = list(request.stop)
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def describe(self, request: LlmRequest) -> dict[str, Any]:
        return {
            "method": "POST",
            "url": f"{(self.base_url or '').rstrip('/')}/chat/completions",
            "headers": self.auth_header_preview(),
            "body": self.request_body(request),
        }

    async def _generate(self, request: LlmRequest) -> LlmResponse:
        body = self.request_body(request)
        body.pop("stream", None)
        body.pop("stream_options", None)
        with mapped_errors(translate_error):
            completion = await self._client().chat.completions.create(**body)
        if not hasattr(completion, "choices"):
            raise ResponseError(f"unexpected response body: {str(completion)[:200]!r}")
        choice = completion.choices[0] if completion.choices else None
        message = getattr(choice, "message", None)
        return LlmResponse(
            content=(getattr(message, "content", None) or ""),
            usage=usage_from(completion.usage),
            model=completion.model,
            finish_reason=finish_reason(getattr(choice, "finish_reason", None), self.finish_reasons),
            request_id=getattr(completion, "_request_id", None) or completion.id,
        )

    async def _stream(self, request: LlmRequest) -> AsyncIterator[StreamItem]:
        body = self.request_body(request)
        parts: list[str] = []
        usage: Any = None
        model = request_id = None
        finish: str | None = None
        events = 0
        with mapped_errors(translate_error):
            stream = await self._client().chat.completions.create(**body)
            request_id = stream.response.headers.get("x-request-id")
            async for chunk in stream:
                events += 1
                model = chunk.model or model
                # Without an x-request-id header (compatible servers, gateways), the completion id
                # that every chunk carries identifies the call, as completion.id does unstreamed.
                request_id = request_id or getattr(chunk, "id", None) or None
                # The usage chunk is not always the last one (e.g. a moderation chunk follows it
                # on gpt-5): keep the last non-null usage seen.
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices or ():
                    text = getattr(choice.delta, "content", None) if choice.delta else None
                    if text:
                        parts.append(text)
                        yield text
                    finish = choice.finish_reason or finish
        if finish is None:
            raise incomplete_stream(events, "a chunk with finish_reason")
        yield LlmResponse(
            content="".join(parts),
            usage=usage_from(usage),
            model=model,
            finish_reason=finish_reason(finish, self.finish_reasons),
            request_id=request_id,
            usage_note=None if usage is not None else "the stream carried no usage chunk",
        )

    async def aclose(self) -> None:
        if self._client_instance is not None:
            await self._client_instance.close()


def translate_error(exc: BaseException) -> LlmError | None:
    import openai

    mapped = translate_sdk_error(exc, openai)
    if mapped is None and isinstance(exc, openai.APIError):
        # Raised for an `error` object inside a 200 stream.
        return ServiceUnavailableError(body_message(exc.body, exc.message), error_type="stream_error")
    return mapped
