"""The project's minimal custom HTTP contract: POST ``/custom`` (or ``/custom/...``).

Request ``{model, prompt, max_tokens, temperature}`` → response
``{"output": "...", "usage": {"prompt_tokens": n, "completion_tokens": m}, "model": model}``.
Errors are ``{"error": "<string>"}``; a missing credential gets 401 ``unauthorized``.
"""

from __future__ import annotations

from .tokens import normalize_stop
from .wire_base import (
    Call,
    Incoming,
    Reply,
    Response,
    Step,
    Wire,
    as_int,
    json_response,
    overflow_tokens,
    phrase,
    texts_of,
)


class CustomWire(Wire):
    provider = "custom"

    def is_stream(self, req: Incoming) -> bool:
        return False

    def parse(self, req: Incoming) -> Call:
        body = req.body
        prompt = body.get("prompt")
        prompt_text = prompt if isinstance(prompt, str) else "\n".join(texts_of(prompt))
        return Call(
            self.provider,
            str(body.get("model") or "custom-emulated"),
            False,
            [*texts_of(body.get("system") or ""), prompt_text],
            prompt_text,
            as_int(body.get("max_tokens")),
            normalize_stop(body.get("stop")),
        )

    def render(self, call: Call, reply: Reply, variant: str | None = None) -> Response:
        usage = {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens}
        return json_response(200, {"output": reply.text, "usage": usage, "model": call.model})

    def error(self, call: Call | None, status: int, message: str | None = None, step: Step | None = None) -> Response:
        text = message or ("unauthorized" if status == 401 else phrase(status).lower())
        return json_response(status, {"error": text})

    def context_error(self, call: Call | None, status: int | None = None) -> Response:
        # A self-hosted server behind the custom contract: Hugging Face TGI's 422 validation error.
        prompt, window = overflow_tokens(call)
        new_tokens = call.max_tokens if call is not None and call.max_tokens is not None else 0
        message = (f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= {window}. "
                   f"Given: {prompt} `inputs` tokens and {new_tokens} `max_new_tokens`")
        return json_response(status or 422, {"error": message, "error_type": "validation"})

