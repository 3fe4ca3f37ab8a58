"""Google Gemini (AI Studio) ``generateContent`` / ``streamGenerateContent``.

Mirrors ``fixtures/gemini/generate-basic-2.0-flash.json`` (2-space indented
JSON), ``stream-sse-basic-2.0-flash.json`` (``data: {...}\\r\\n\\r\\n`` with
running usageMetadata in every chunk, finishReason only on the last) and
``stream-json-array-2.5-flash.json`` (no ``alt=sse``: one JSON array).
Like proto3 JSON, zero counts are omitted.
"""

from __future__ import annotations

import re
from typing import Any

from .tokens import normalize_stop
from .wire_base import (
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
    new_id,
    overflow_tokens,
    phrase,
    sse_event,
    stream_response,
    texts_of,
)

GEMINI_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):(generateContent|streamGenerateContent)$")
JSON_CT = "application/json; charset=UTF-8"

_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). "
          "Please use API Key or other form of API consumer identity to call this API."),
    404: ("NOT_FOUND", "models/{model} is not found for API version v1beta, or is not supported for generateContent."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}

_KEY_INVALID = "API key not valid. Please pass a valid API key."


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"promptTokenCount": prompt}
    if completion:
        meta["candidatesTokenCount"] = completion
    meta["totalTokenCount"] = prompt + completion
    meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return meta


class GeminiWire(Wire):
    provider = "gemini"
    overload_status = 503

    def is_stream(self, req: Incoming) -> bool:
        return req.path.endswith(":streamGenerateContent")

    def parse(self, req: Incoming) -> Call:
        body = req.body
        match = GEMINI_PATH.match(req.path)
        texts, last_user = conversation(body.get("contents"), "parts", default_role="user")
        texts = texts_of(body.get("systemInstruction")) + texts
        config = body.get("generationConfig") or {}
        return Call(
            self.provider,
            match.group(2) if match else "gemini-emulated",
            self.is_stream(req),
            texts,
            last_user,
            as_int(config.get("maxOutputTokens")),
            normalize_stop(config.get("stopSequences")),
            {"sse": req.query.get("alt") == "sse"},
        )

    def render(self, call: Call, reply: Reply, variant: str | None = None) -> Response:
        rid = new_id("emu", 20)

        def payload(text: str, done: bool, completion: int) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
            if done:
                candidate["finishReason"] = "MAX_TOKENS" if reply.finish == "length" else "STOP"
            candidate["index"] = 0
            return {
                "candidates": [candidate],
                "usageMetadata": _usage(reply.prompt_tokens, completion),
                "modelVersion": call.model,
                "responseId": rid,
            }

        if not call.stream:
            body = payload(reply.text, True, reply.completion_tokens)
            return json_response(200, body, {}, JSON_CT, indent=2, trailer=b"\n")
        words = reply.words or [""]
        objs = [payload(w, i == len(words) - 1, i + 1 if reply.text else 0) for i, w in enumerate(words)]
        if variant == "stream_error":
            objs = objs[: max(1, len(objs) // 2)]
            objs[-1]["candidates"][0].pop("finishReason", None)
            objs.append({"error": {"code": 503, "message": _STATUS[503][1], "status": "UNAVAILABLE"}})
        if call.options.get("sse"):
            chunks = [sse_event(o, sep=b"\r\n\r\n", separators=(",", ": ")) for o in objs]
            return stream_response(200, chunks, "text/event-stream", {}, "sse")
        # Without alt=sse the API streams one pretty-printed JSON array.
        chunks = [(b"[" if i == 0 else b",\r\n") + dumps(o, indent=2) + b"\n" for i, o in enumerate(objs)]
        chunks.append(b"]")
        return stream_response(200, chunks, JSON_CT, {}, "json")

    def error(self, call: Call | None, status: int, message: str | None = None, step: Step | None = None) -> Response:
        step = step or {}
        fallback = ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION", phrase(status))
        code_name, text = _STATUS.get(status, fallback)
        model = call.model if call else "gemini-emulated"
        err: dict[str, Any] = {"code": status, "message": message or text.format(model=model), "status": code_name}
        if step.get("gemini_api_key_invalid"):
            # Real shape of an invalid key: 400, not 401 (fixtures/gemini/error-400-api-key-invalid.json).
            err = {"code": 400, "message": message or _KEY_INVALID, "status": "INVALID_ARGUMENT", "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
                {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                 "message": message or _KEY_INVALID},
            ]}
        elif step.get("retry_delay"):
            # The retry hint is only in the body; the real 429 has no Retry-After header.
            delay = str(step["retry_delay"])
            err["message"] = f"{err['message']} Please retry in {delay}."
            err["details"] = [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"model": model, "location": "global"},
                    "quotaValue": "10",
                }]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
            ]
        return json_response(err["code"], {"error": err}, {}, JSON_CT, indent=2, trailer=b"\n")

    def context_error(self, call: Call | None, status: int | None = None) -> Response:
        # A plain 400 INVALID_ARGUMENT: only the message says what is wrong.
        prompt, window = overflow_tokens(call)
        message = f"The input token count ({prompt}) exceeds the maximum number of tokens allowed ({window})."
        return self.error(call, status or 400, message)

    def auth_error(self, call: Call | None) -> Response:
        return self.error(call, 403)

    def key_error(self, call: Call | None, key: str, status: int) -> Response:
        return self.error(call, status, f"API key not valid: {key}. Please pass a valid API key.")
