"""Mistral AI chat completions wire format, served at ``/mistral/v1/chat/completions``.

OpenAI-shaped (same path, bearer key, SSE ending in ``data: [DONE]``), with what a client must do
differently, per Mistral's API reference and its official SDK (``ChatCompletionRequest``):

* the request schema is closed: a field Mistral does not know (OpenAI's ``max_completion_tokens``,
  ``seed``, ``stream_options``...) is a 422 ``extra_forbidden``, as the real API answers, so a
  client that sends the OpenAI shape fails here as it would there;
* the seed is ``random_seed``; the limit is ``max_tokens``;
* every stream carries ``usage`` in its last chunk (the one with ``finish_reason``) unasked;
* usage has the three counts only, and errors are a flat ``{"object": "error", ...}``.

The example plugin ``examples/llm-exec-mistral`` is tested against it.
"""

from __future__ import annotations

from typing import Any

from .openai_wire import OpenAIWire
from .wire_base import (
    SSE_CT,
    Call,
    Incoming,
    Reply,
    Response,
    Step,
    json_response,
    new_id,
    now,
    phrase,
    sse_event,
    stream_response,
)

# Mistral's chat completion request fields (SDK ChatCompletionRequest / ChatCompletionStreamRequest).
REQUEST_FIELDS = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "metadata",
    "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "n", "prediction",
    "parallel_tool_calls", "reasoning_effort", "prompt_mode", "guardrails", "prompt_cache_key", "service_tier",
    "safe_prompt",
})


class MistralWire(OpenAIWire):
    provider = "mistral"

    def parse(self, req: Incoming) -> Call:
        call = super().parse(req)
        call.options["extra_fields"] = sorted(k for k in req.body if k not in REQUEST_FIELDS)
        return call

    def headers(self) -> dict[str, str]:
        return {"mistral-correlation-id": new_id("", 32)}

    def render(self, call: Call, reply: Reply, variant: str | None = None) -> Response:
        extra = call.options.get("extra_fields")
        if extra:
            return self._extra_forbidden(extra)
        if variant is not None:  # scripted stream faults: the OpenAI shapes do
            return super().render(call, reply, variant)
        cid, created = new_id("", 32), now()
        usage = {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                 "total_tokens": reply.total_tokens}
        if not call.stream:
            return json_response(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": call.model,
                "choices": [{"index": 0, "finish_reason": reply.finish,
                             "message": {"role": "assistant", "content": reply.text, "tool_calls": None}}],
                "usage": usage,
            }, self.headers())

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra_fields: Any) -> bytes:
            return sse_event({"id": cid, "object": "chat.completion.chunk", "created": created, "model": call.model,
                              "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra_fields})

        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": word}) for word in reply.words]
        chunks.append(chunk({"content": ""}, reply.finish, usage=usage))
        chunks.append(sse_event(b"[DONE]"))
        return stream_response(200, chunks, SSE_CT, self.headers(), "sse")

    def error(self, call: Call | None, status: int, message: str | None = None, step: Step | None = None) -> Response:
        kind = "invalid_request_error" if status < 500 else "internal_server_error"
        body = {"object": "error", "message": message or phrase(status), "type": kind, "param": None, "code": None}
        return json_response(status, body, self.headers())

    def auth_error(self, call: Call | None) -> Response:
        return self.error(call, 401, "Unauthorized")

    def _extra_forbidden(self, fields: list[str]) -> Response:
        detail = [{"type": "extra_forbidden", "loc": ["body", name], "msg": "Extra inputs are not permitted"}
                  for name in fields]
        body = {"object": "error", "message": {"detail": detail}, "type": "invalid_request_error", "param": None,
                "code": None}
        return json_response(422, body, self.headers())
