"""OpenAI Chat Completions wire format (also Ollama's OpenAI-compatible route).

Shapes mirror ``fixtures/openai/chat-basic-gpt4o-mini.json`` and
``stream-text-include-usage.json``: chunks carry ``usage: null`` only when
``stream_options.include_usage`` is set, the usage chunk has ``choices: []``
and the stream ends with ``data: [DONE]``.
"""

from __future__ import annotations

from typing import Any

from .tokens import normalize_stop
from .wire_base import (
    SSE_CT,
    Call,
    Incoming,
    Reply,
    Response,
    Step,
    Wire,
    as_int,
    conversation,
    json_response,
    new_id,
    now,
    overflow_tokens,
    phrase,
    sse_event,
    stream_response,
)

# status -> (type, code, message); the 429 type "requests" is what the real API sends.
_INVALID = "invalid_request_error"
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: (_INVALID, None, "Invalid request (emulated)."),
    401: (_INVALID, "invalid_api_key", "Incorrect API key provided. You can find your API key at "
          "https://platform.openai.com/account/api-keys."),
    403: (_INVALID, "unsupported_country_region_territory", "Country, region, or territory not supported"),
    404: (_INVALID, "model_not_found", "The model `{model}` does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for {model} on requests per min (RPM): "
          "Limit 3, Used 3, Requested 1. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_USAGE_DETAILS = {
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.total_tokens,
        **_USAGE_DETAILS,
    }


class OpenAIWire(Wire):
    provider = "openai"

    def parse(self, req: Incoming) -> Call:
        body = req.body
        texts, last_user = conversation(body.get("messages"))
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        stream_opts = body.get("stream_options") or {}
        return Call(
            self.provider,
            str(body.get("model") or "gpt-emulated"),
            bool(body.get("stream")),
            texts,
            last_user,
            as_int(limit),
            normalize_stop(body.get("stop")),
            {"include_usage": bool(isinstance(stream_opts, dict) and stream_opts.get("include_usage"))},
        )

    def headers(self) -> dict[str, str]:
        return {
            "x-request-id": new_id("req_", 32),
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "10000000",
            "x-ratelimit-remaining-tokens": "9999990",
            "x-ratelimit-reset-tokens": "0s",
        }

    def render(self, call: Call, reply: Reply, variant: str | None = None) -> Response:
        cid, created = new_id("chatcmpl-emu", 20), now()
        if not call.stream:
            return json_response(200, {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": call.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": reply.finish,
                }],
                "usage": usage(reply),
                "service_tier": "default",
                "system_fingerprint": "fp_emulator",
            }, self.headers(), indent=2)
        with_usage = call.options.get("include_usage") or variant == "usage_not_last"

        def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
            obj: dict[str, Any] = {
                "id": cid, "object": "chat.completion.chunk", "created": created,
                "model": call.model, "service_tier": "default", "system_fingerprint": "fp_emulator",
                "choices": [] if delta is None else [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if with_usage:
                obj["usage"] = None
            obj.update(extra)
            return sse_event(obj)

        words = reply.words
        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if variant == "stream_error":
            # The SDK raises APIError on a data payload with an "error" key.
            chunks += [chunk({"content": w}) for w in words[: max(1, len(words) // 2)]]
            err_type, _, message = _ERRORS[500]
            chunks.append(sse_event({"error": {"message": message, "type": err_type, "param": None, "code": None}}))
            return stream_response(200, chunks, SSE_CT, self.headers(), "sse")
        chunks += [chunk({"content": w}) for w in words]
        chunks.append(chunk({}, reply.finish))
        if with_usage:
            chunks.append(chunk(None, usage=usage(reply)))
        if variant == "usage_not_last":
            # Like the gpt-5 moderation recording: one more chunk after the usage chunk.
            chunks.append(chunk(None, moderation={"input": {
                "type": "moderation_results", "model": "omni-moderation-latest",
                "results": [{"type": "moderation_result", "model": "omni-moderation-latest", "flagged": False}],
            }}))
        chunks.append(sse_event(b"[DONE]"))
        return stream_response(200, chunks, SSE_CT, self.headers(), "sse")

    def error(self, call: Call | None, status: int, message: str | None = None, step: Step | None = None) -> Response:
        fallback = ("server_error" if status >= 500 else _INVALID, None, phrase(status))
        err_type, code, text = _ERRORS.get(status, fallback)
        model = call.model if call else "gpt-emulated"
        text = message or text.format(model=model)
        body = {"error": {"message": text, "type": err_type, "param": None, "code": code}}
        return json_response(status, body, self.headers(), "application/json; charset=utf-8", indent=4, trailer=b"\n")

    def context_error(self, call: Call | None, status: int | None = None) -> Response:
        # The Chat Completions wording, with code context_length_exceeded and param messages.
        prompt, window = overflow_tokens(call)
        body = {"error": {
            "message": f"This model's maximum context length is {window} tokens. However, your messages resulted "
                       f"in {prompt} tokens. Please reduce the length of the messages.",
            "type": _INVALID, "param": "messages", "code": "context_length_exceeded",
        }}
        return json_response(status or 400, body, self.headers(), "application/json; charset=utf-8", indent=4,
                             trailer=b"\n")

    def auth_error(self, call: Call | None) -> Response:
        return self.error(call, 401, (
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from "
            "https://platform.openai.com/account/api-keys."
        ))

    def key_error(self, call: Call | None, key: str, status: int) -> Response:
        return self.error(call, status, f"Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys.")
