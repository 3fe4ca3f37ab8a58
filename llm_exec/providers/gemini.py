"""Gemini through the official `google-genai` SDK (client.aio.models.generate_content[_stream])."""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from ..errors import LlmError, ResponseError
from ..request import LlmRequest
from ..response import FinishReason, LlmResponse, Usage
from ._http_errors import body_message, error_from_status, google_retry_delay, translate_httpx_error
from .base import BaseLlm, StreamItem, incomplete_stream, mapped_errors

API_VERSION = "v1beta"
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
_FINISH: dict[str, FinishReason] = {"STOP": "stop", "MAX_TOKENS": "length"}


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def finish_reason(value: Any, *, has_function_call: bool = False) -> FinishReason | None:
    name = _enum_name(value)
    if name is None:
        return None
    if name in _FILTERED:
        return "content_filter"
    if has_function_call and name == "STOP":
        return "tool_calls"
    return _FINISH.get(name, "other")


def usage_from(meta: Any) -> Usage:
    """promptTokenCount (+ toolUsePromptTokenCount) already includes cached content;
    candidatesTokenCount excludes thoughts, which are billed as output: completion = candidates + thoughts."""
    if meta is None:
        return Usage()
    # Tool-use prompt tokens (code execution, search results) are input processed and billed too;
    # with them, tokens_used equals the API's totalTokenCount.
    prompt = meta.prompt_token_count
    if prompt is not None and meta.tool_use_prompt_token_count:
        prompt += meta.tool_use_prompt_token_count
    candidates = meta.candidates_token_count
    thoughts = meta.thoughts_token_count
    completion = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=meta.cached_content_token_count or (0 if prompt is not None else None),
        reasoning_tokens=thoughts,
    )


def _answer_parts(response: Any) -> tuple[str, Any, bool]:
    """(answer text, finish reason, has function call) of the first candidate; thoughts excluded."""
    candidates = response.candidates or []
    if not candidates:
        return "", None, False
    candidate = candidates[0]
    parts = (candidate.content.parts if candidate.content else None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    has_call = any(p.function_call is not None for p in parts)
    return text, candidate.finish_reason, has_call


# How deep into GenerateContentResponse the warm-up builds models one by one (see _response_models).
_WARM_DEPTH = 3
# Event-loop turns the warm-up leaves to other work before each model: connecting, writing the
# request or passing a chunk on is a chain of callbacks, one turn each, that then runs first.
_TURNS_BETWEEN_MODELS = 8


def _nested_models(annotation: Any) -> Iterator[Any]:
    """The pydantic model classes an annotation names (through Optional, list, Union, ...)."""
    import pydantic

    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        # A field typed plain pydantic.BaseModel (GenerateContentResponse.parsed) is no model to build.
        if annotation is not pydantic.BaseModel:
            yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _nested_models(arg)


def _response_models() -> list[Any]:
    """GenerateContentResponse and the models nested in it down to _WARM_DEPTH levels (Candidate,
    Content, UsageMetadata, GroundingMetadata, ...), each after the models it contains.

    Built in this order, each model reuses the schemas of those it contains, where pydantic's lazy
    build in the SDK's first parse generates the deeper levels' schemas twice and more. Deeper
    models are small: their schemas are generated within their parents', and building each on its
    own would only add pydantic's per-model cost (measured: the SDK's first parse ~13 ms; these ~20
    models ~7 ms; all ~60, children first, ~12 ms).
    """
    from google.genai import types

    order: list[Any] = []
    seen: set[Any] = set()

    def visit(model: Any, depth: int) -> None:
        if model in seen:
            return
        seen.add(model)
        if depth < _WARM_DEPTH:
            for field in model.model_fields.values():
                for nested in _nested_models(field.annotation):
                    visit(nested, depth + 1)
        order.append(model)

    visit(types.GenerateContentResponse, 0)
    return order


async def _build_response_models() -> None:
    """Build the SDK's response models one at a time, each after the loop's other ready work.

    google-genai declares its models with `defer_build`: pydantic builds GenerateContentResponse
    and the models nested in it when the first response is parsed, ~13 ms by which a stream's
    first delta would be late. Built here, while the request waits for the server, the work
    overlaps that wait: each model takes under ~1 ms, and what the loop has to do meanwhile
    (the request, a chunk that arrives) goes first.
    """
    from google.genai import types

    if types.GenerateContentResponse.__pydantic_complete__:
        return  # built by an earlier call (or in the warm daemon this task was forked from)
    for model in _response_models():
        if not model.__pydantic_complete__:
            for _ in range(_TURNS_BETWEEN_MODELS):
                await asyncio.sleep(0)
            model.model_rebuild(raise_errors=False)


@asynccontextmanager
async def _response_models_built_meanwhile() -> AsyncIterator[None]:
    """Run _build_response_models alongside the request made inside; what it has not built when
    the block ends, the SDK builds on its own first parse, as without it."""
    warming = asyncio.ensure_future(_build_response_models())
    try:
        yield
    finally:
        if not warming.cancel() and not warming.cancelled():
            warming.result()  # a warm-up that failed is a bug: raised, never dropped


class GeminiLlm(BaseLlm):
    name = "gemini"
    default_model = "gemini-2.5-flash"
    # GOOGLE_API_KEY first, as the SDK itself prefers it.
    key_env_vars = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_API_KEY")
    base_url_env_vars = ("GOOGLE_GEMINI_BASE_URL",)
    default_base_url = "https://generativelanguage.googleapis.com"
    pricing_provider = "google"
    agent_types = ("google-gemini",)
    provider_aliases = ("google",)
    executable = "llm-exec-gemini"
    gen_ai_provider = "gcp.gemini"
    gen_ai_operation = "generate_content"

    _client_instance: Any = None

    def _client(self) -> Any:
        if self._client_instance is None:
            from google import genai  # deferred: the SDK import dominates start-up

            self._client_instance = genai.Client(
                api_key=self.api_key,
                # google-genai does not retry unless retry_options is set: ours is the one policy.
                # v1beta, as the API's own docs and the recorded traffic use (the SDK defaults to v1).
                http_options={"base_url": self.base_url, "api_version": API_VERSION,
                              "timeout": int(self.timeout * 1000)},
            )
        return self._client_instance

    def request_parts(self, request: LlmRequest) -> dict[str, Any]:
        system, turns = request.split_system()
        config: dict[str, Any] = {"max_output_tokens": request.max_tokens}
        if system:
            config["system_instruction"] = system
        for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("seed", "seed")):
            value = getattr(request, ours)
            if value is not None:
                config[theirs] = value
        if request.stop:
            config["stop_sequences"] = list(request.stop)
        contents = [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in turns
        ]
        return {"model": request.model, "contents": contents, "config": config}

    def describe(self, request: LlmRequest) -> dict[str, Any]:
        parts = self.request_parts(request)
        config = parts["config"]
        generation = {
            "maxOutputTokens": config.get("max_output_tokens"),
            "temperature": config.get("temperature"),
            "topP": config.get("top_p"),
            "seed": config.get("seed"),
            "stopSequences": config.get("stop_sequences"),
        }
        body: dict[str, Any] = {
            "contents": parts["contents"],
            "generationConfig": {k: v for k, v in generation.items() if v is not None},
        }
        if "system_instruction" in config:
            body["systemInstruction"] = {"parts": [{"text": config["system_instruction"]}]}
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        return {
            "method": "POST",
            "url": f"{(self.base_url or '').rstrip('/')}/{API_VERSION}/models/{request.model}:{method}",
            "headers": {"x-goog-api-key": "[REDACTED]"},
            "body": body,
        }

    async def _generate(self, request: LlmRequest) -> LlmResponse:
        with mapped_errors(translate_error):
            client = self._client()
            async with _response_models_built_meanwhile():
                response = await client.aio.models.generate_content(**self.request_parts(request))
        if not hasattr(response, "candidates"):
            raise ResponseError(f"unexpected response body: {str(response)[:200]!r}")
        text, finish, has_call = _answer_parts(response)
        blocked = response.prompt_feedback is not None and response.prompt_feedback.block_reason
        return LlmResponse(
            content=text,
            usage=usage_from(response.usage_metadata),
            model=response.model_version,
            finish_reason="content_filter" if blocked else finish_reason(finish, has_function_call=has_call),
            request_id=response.response_id,
        )

    async def _stream(self, request: LlmRequest) -> AsyncIterator[StreamItem]:
        pieces: list[str] = []
        usage_meta: Any = None
        model = request_id = finish = None
        any_call = blocked = False
        events = 0
        with mapped_errors(translate_error):
            client = self._client()
            async with _response_models_built_meanwhile():
                stream = await client.aio.models.generate_content_stream(**self.request_parts(request))
                async for chunk in stream:
                    events += 1
                    # Every chunk repeats running usage totals, and early chunks can disagree with
                    # the final one: the last chunk's usage is the one that counts.
                    usage_meta = chunk.usage_metadata or usage_meta
                    model = chunk.model_version or model
                    request_id = chunk.response_id or request_id
                    blocked = blocked or bool(chunk.prompt_feedback and chunk.prompt_feedback.block_reason)
                    text, chunk_finish, has_call = _answer_parts(chunk)
                    finish = chunk_finish or finish
                    any_call = any_call or has_call
                    if text:
                        pieces.append(text)
                        yield text
        # The last candidate chunk carries finishReason; a blocked prompt ends with feedback instead.
        if finish is None and not blocked:
            raise incomplete_stream(events, "a chunk with finishReason")
        yield LlmResponse(
            content="".join(pieces),
            usage=usage_from(usage_meta),
            model=model,
            finish_reason="content_filter" if blocked else finish_reason(finish, has_function_call=any_call),
            request_id=request_id,
            usage_note=None if usage_meta is not None else "the stream carried no usageMetadata",
        )

    async def aclose(self) -> None:
        if self._client_instance is not None:
            await self._client_instance.aio.aclose()


def translate_error(exc: BaseException) -> LlmError | None:
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        headers = getattr(exc.response, "headers", None)
        message = body_message(exc.details, exc.message or str(exc.status or exc.code))
        # The body decides what a 400 is: a bad key (reason API_KEY_INVALID, exit 2), an over-long
        # prompt ("The input token count (N) exceeds ..."), or a bad request (_http_errors.body_kind).
        return error_from_status(
            int(exc.code or 500), message, headers=headers, retry_after=google_retry_delay(exc.details),
            body=exc.details,
        )
    if isinstance(exc, errors.UnknownApiResponseError | json.JSONDecodeError):
        # google-genai cannot parse the body (not JSON, or SSE it does not understand).
        return ResponseError(f"response body could not be parsed: {str(exc)[:300]}")
    return translate_httpx_error(exc)

