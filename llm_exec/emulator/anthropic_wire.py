"""Anthropic Messages wire format.

Mirrors ``fixtures/anthropic/messages-basic-haiku45.json`` and
``stream-text-opus46.json``: SSE ``event:``/``data:`` pairs message_start,
content_block_start, ping, content_block_delta (text_delta)...,
content_block_stop, message_delta (stop_reason + final usage), message_stop.
Error bodies carry a top-level ``request_id`` like post-2025 recordings.
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
    overflow_tokens,
    phrase,
    sse_event,
    stream_response,
    texts_of,
)

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (emulated)."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit "
          "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. "
          "Please try again later."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}

_OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def _event(kind: str, **fields: Any) -> bytes:
    """Anthropic SSE: the event name repeats as the payload's "type"."""
    return sse_event({"type": kind, **fields}, kind)


def _usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


class AnthropicWire(Wire):
    provider = "anthropic"
    overload_status = 529

    def parse(self, req: Incoming) -> Call:
        body = req.body
        texts, last_user = conversation(body.get("messages"))
        texts = texts_of(body.get("system")) + texts
        return Call(
            self.provider,
            str(body.get("model") or "claude-emulated"),
            bool(body.get("stream")),
            texts,
            last_user,
            as_int(body.get("max_tokens")),
            normalize_stop(body.get("stop_sequences")),
        )

    def headers(self) -> dict[str, str]:
        return {
            "request-id": new_id("req_011CEmu", 16),
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": "3999",
            "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:00Z",
        }

    @staticmethod
    def _stop(reply: Reply) -> tuple[str, str | None]:
        if reply.finish == "length":
            return "max_tokens", None
        if reply.stop_sequence is not None:
            return "stop_sequence", reply.stop_sequence
        return "end_turn", None

    def render(self, call: Call, reply: Reply, variant: str | None = None) -> Response:
        mid = new_id("msg_01Emu", 16)
        stop_reason, stop_seq = self._stop(reply)
        if not call.stream:
            return json_response(200, {
                "model": call.model,
                "id": mid,
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": reply.text}],
                "stop_reason": stop_reason,
                "stop_sequence": stop_seq,
                "usage": _usage(reply, reply.completion_tokens),
            }, self.headers())
        start = {
            "model": call.model, "id": mid, "type": "message", "role": "assistant", "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": _usage(reply, 1),
        }
        words = reply.words
        if variant == "stream_error":
            words = words[: max(1, len(words) // 2)]
        chunks = [
            _event("message_start", message=start),
            _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            _event("ping"),
        ]
        chunks += [_event("content_block_delta", index=0, delta={"type": "text_delta", "text": w}) for w in words]
        if variant == "stream_error":
            # What the API sends when it overloads mid-stream; the SDK raises on it.
            chunks.append(sse_event(_OVERLOADED, "error"))
            return stream_response(200, chunks, SSE_CT, self.headers(), "sse")
        final_usage = _usage(reply, reply.completion_tokens)
        del final_usage["cache_creation"], final_usage["service_tier"]
        chunks += [
            _event("content_block_stop", index=0),
            _event("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": stop_seq}, usage=final_usage),
            _event("message_stop"),
        ]
        return stream_response(200, chunks, SSE_CT, self.headers(), "sse")

    def error(self, call: Call | None, status: int, message: str | None = None, step: Step | None = None) -> Response:
        fallback = ("api_error" if status >= 500 else "invalid_request_error", phrase(status))
        err_type, text = _ERRORS.get(status, fallback)
        headers = self.headers()
        # Same defaults the SDK applies, sent explicitly like the real API does.
        headers["x-should-retry"] = "true" if status in (408, 409, 429) or status >= 500 else "false"
        model = call.model if call else "claude-emulated"
        body = {
            "type": "error",
            "error": {"type": err_type, "message": message or text.format(model=model)},
            "request_id": headers["request-id"],
        }
        resp = json_response(status, body, headers)
        if status == 529:
            resp.reason = ""  # the real 529 has an empty reason phrase
        return resp

    def context_error(self, call: Call | None, status: int | None = None) -> Response:
        prompt, window = overflow_tokens(call)
        return self.error(call, status or 400, f"prompt is too long: {prompt} tokens > {window} maximum")

    def auth_error(self, call: Call | None) -> Response:
        return self.error(call, 401, "x-api-key header is required")

    def key_error(self, call: Call | None, key: str, status: int) -> Response:
        return self.error(call, status, f"invalid x-api-key: {key}")
