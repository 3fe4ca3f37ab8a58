"""Ollama native API: ``/api/chat``, ``/api/generate`` (+ GET ``/api/tags``, ``/api/version``).

Mirrors ``fixtures/ollama/chat-stream-ndjson-llama3.json`` and friends:
``stream`` defaults to TRUE when absent; NDJSON lines; counts and nanosecond
durations only on the final ``done: true`` line; ``/api/generate`` also returns
a ``context`` token array. Errors are ``{"error": "<string>"}``.
"""

from __future__ import annotations

import time
from typing import Any

from .tokens import normalize_stop
from .wire_base import (
    NDJSON_CT,
    Call,
    Incoming,
    Reply,
    Response,
    Step,
    Wire,
    as_int,
    conversation,
    dumps,
    json_response,
    phrase,
    stream_response,
    texts_of,
)

JSON_CT = "application/json; charset=utf-8"
VERSION = "0.12.6"
MODELS = ("llama3.2:latest", "qwen3:0.6b", "gemma3:1b")

_STREAM_ERROR = "an error was encountered while running the model: unexpected EOF"
_ERRORS = {
    400: "invalid request",
    404: "model '{model}' not found",
    429: "too many requests",
    500: "internal server error",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


def _created_at() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def meta_response(path: str) -> Response | None:
    """GET /api/tags and /api/version (model discovery / health checks)."""
    if path == "/api/version":
        return json_response(200, {"version": VERSION}, {}, JSON_CT)
    if path == "/api/tags":
        models = [{
            "name": name, "model": name, "modified_at": "2025-01-01T00:00:00Z", "size": 1_000_000_000,
            "digest": f"{i:064x}",
            "details": {"parent_model": "", "format": "gguf", "family": name.split(":")[0],
                        "families": [name.split(":")[0]], "parameter_size": "1B", "quantization_level": "Q4_K_M"},
        } for i, name in enumerate(MODELS, 1)]
        return json_response(200, {"models": models}, {}, JSON_CT)
    return None


class OllamaWire(Wire):
    provider = "ollama"
    needs_auth = False

    def is_stream(self, req: Incoming) -> bool:
        # Ollama streams unless told otherwise.
        return not isinstance(req.body, dict) or req.body.get("stream", True) is not False

    def parse(self, req: Incoming) -> Call:
        body = req.body
        route = "generate" if req.path == "/api/generate" else "chat"
        if route == "generate":
            texts = texts_of(body.get("system") or "") + texts_of(body.get("prompt") or "")
            last_user = str(body.get("prompt") or "")
        else:
            texts, last_user = conversation(body.get("messages"))
        options = body.get("options") or {}
        limit = as_int(options.get("num_predict"))
        return Call(
            self.provider,
            str(body.get("model") or "llama3.2"),
            self.is_stream(req),
            [t for t in texts if t],
            last_user,
            None if limit is None or limit < 0 else limit,  # -1 / -2 mean "no limit"
            normalize_stop(options.get("stop")),
            {"route": route},
        )

    def _line(self, call: Call, text: str) -> dict[str, Any]:
        if call.options.get("route") == "generate":
            return {"model": call.model, "created_at": _created_at(), "response": text, "done": False}
        message = {"role": "assistant", "content": text}
        return {"model": call.model, "created_at": _created_at(), "message": message, "done": False}

    def _final(self, call: Call, reply: Reply, text: str) -> dict[str, Any]:
        # Deterministic fake timings: 1 ms per prompt token, 10 ms per generated token.
        prompt_ns, eval_ns, load_ns = 10**6 * max(reply.prompt_tokens, 1), 10**7 * reply.completion_tokens, 10**6
        line = self._line(call, text)
        line.update(done=True, done_reason="length" if reply.finish == "length" else "stop")
        if call.options.get("route") == "generate":
            line["context"] = list(range(1, reply.total_tokens + 1))
        line.update(
            total_duration=load_ns + prompt_ns + eval_ns, load_duration=load_ns,
            prompt_eval_count=reply.prompt_tokens, prompt_eval_duration=prompt_ns,
            eval_count=reply.completion_tokens, eval_duration=eval_ns,
        )
        return line

    def render(self, call: Call, reply: Reply, variant: str | None = None) -> Response:
        if not call.stream:
            return json_response(200, self._final(call, reply, reply.text), {}, JSON_CT)
        lines = [self._line(call, w) for w in reply.words]
        if variant == "stream_error":
            lines = [*lines[: max(1, len(lines) // 2)], {"error": _STREAM_ERROR}]
        else:
            lines.append(self._final(call, reply, ""))
        return stream_response(200, [dumps(line) + b"\n" for line in lines], NDJSON_CT, {}, "ndjson")

    def context_error(self, call: Call | None, status: int | None = None) -> Response:
        # Ollama's refusal when it may not truncate (`truncate: false`); it gives no counts.
        return self.error(call, status or 400, "the input length exceeds the context length")

    def error(self, call: Call | None, status: int, message: str | None = None, step: Step | None = None) -> Response:
        model = call.model if call else "llama3.2"
        text = message or _ERRORS.get(status, phrase(status).lower()).format(model=model)
        return json_response(status, {"error": text}, {}, JSON_CT)

