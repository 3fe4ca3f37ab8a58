"""`llm-exec-custom`: any HTTP endpoint that takes a JSON prompt and answers with JSON.

The endpoint (`api_endpoint` or LLM_EXEC_CUSTOM_ENDPOINT) is the full URL, POSTed to as-is.
A key (LLM_EXEC_CUSTOM_API_KEY, or the variable named by `api_key_env`) is optional and sent as
`Authorization: Bearer <key>` only when set: self-hosted services often need none.

Default contract (the seed's):

    request   {"model": ..., "prompt": ..., "max_tokens": ..., "temperature": ...}
              (temperature omitted when unset)
    response  {"output": "...", "usage": {"prompt_tokens": n, "completion_tokens": m}}
              (usage optional: missing counts are reported as null, never 0)

`prompt` is the text of the only message when the request is a single user turn. Otherwise the
conversation is flattened into one transcript, one labelled block per message, blank-line
separated and in order:

    System: <system text>

    User: <question>

    Assistant: <earlier answer>

    User: <follow-up>

The spec's `custom` object (validated by the task schema) adapts both sides to other servers:

* `request_template`: the JSON body. A string value that is exactly `{prompt}`, `{model}`,
  `{max_tokens}`, `{temperature}`, `{system}` or `{messages}` (a list of {role, content}) becomes
  that typed value, at any depth; an object member whose placeholder has no value (temperature or
  system unset) is left out. Other strings have those placeholders substituted as text; any other
  braces are left alone.
* `output_path`, `prompt_tokens_path`, `completion_tokens_path`, `model_path`,
  `finish_reason_path`: dotted paths into the answer; integer segments index lists
  (`choices.0.message.content`, `0.generated_text`).

The custom executor has no streaming contract (`can_stream = False`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ResponseError
from ..request import LlmRequest
from ..response import FinishReason, LlmResponse, Usage
from ._cancellable_requests import post_json
from .base import BaseLlm

DEFAULT_OUTPUT_PATH = "output"
DEFAULT_PROMPT_TOKENS_PATH = "usage.prompt_tokens"
DEFAULT_COMPLETION_TOKENS_PATH = "usage.completion_tokens"
DEFAULT_MODEL_PATH = "model"

_PLACEHOLDER_RE = re.compile(r"\{(prompt|model|max_tokens|temperature|system|messages)\}")
_ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}

# Finish reasons of the common servers (OpenAI/vLLM, TGI, llama.cpp, Anthropic-style), lower-cased.
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "eos_token": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_length": "length",
}

_MISSING = object()


class CustomLlm(BaseLlm):
    name = "custom"
    default_model = "default"
    key_env_vars = ("LLM_EXEC_CUSTOM_API_KEY",)
    requires_key = False
    base_url_env_vars = ("LLM_EXEC_CUSTOM_ENDPOINT",)
    default_base_url = None
    can_stream = False
    pricing_provider = None
    option_fields = ("custom",)
    executable = "llm-exec-custom"
    emulator_path = "/custom"

    def _mapping(self, request: LlmRequest) -> Mapping[str, Any]:
        return request.options.get("custom") or self.options.get("custom") or {}

    def _url(self) -> str:
        self.require_base_url()  # a missing endpoint is a configuration error
        return self.base_url  # type: ignore[return-value]  # as given: it is the full URL, not a base

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def request_body(self, request: LlmRequest) -> Any:
        values = placeholder_values(request)
        template = self._mapping(request).get("request_template")
        if template is None:
            body = {name: values[name] for name in ("model", "prompt", "max_tokens", "temperature")}
            return {k: v for k, v in body.items() if v is not None}
        return fill_template(template, values)

    def describe(self, request: LlmRequest) -> dict[str, Any]:
        return self.json_post_preview(self._url(), self.request_body(request))

    async def _generate(self, request: LlmRequest) -> LlmResponse:
        reply = await post_json(self._url(), self.request_body(request), self._headers(), self.timeout)
        if not reply.ok:
            raise reply.error()
        return self.parse_answer(request, reply.json(), request_id=reply.request_id)

    def parse_answer(self, request: LlmRequest, answer: Any, *, request_id: str | None = None) -> LlmResponse:
        mapping = self._mapping(request)
        output_path = mapping.get("output_path", DEFAULT_OUTPUT_PATH)
        output = lookup(answer, output_path)
        if output is _MISSING or output is None:
            raise ResponseError(
                f"the endpoint's answer has no text at output_path {output_path!r}: {_preview(answer)}"
            )
        if not isinstance(output, str):
            raise ResponseError(
                f"output_path {output_path!r} holds a {type(output).__name__}, not text: {_preview(output)}"
            )
        usage = Usage(
            prompt_tokens=_count(lookup(answer, mapping.get("prompt_tokens_path", DEFAULT_PROMPT_TOKENS_PATH))),
            completion_tokens=_count(
                lookup(answer, mapping.get("completion_tokens_path", DEFAULT_COMPLETION_TOKENS_PATH))
            ),
        )
        model = lookup(answer, mapping.get("model_path", DEFAULT_MODEL_PATH))
        finish_path = mapping.get("finish_reason_path")
        return LlmResponse(
            content=output,
            usage=usage,
            model=model if isinstance(model, str) and model else None,
            finish_reason=finish_reason(lookup(answer, finish_path)) if finish_path else None,
            request_id=request_id,
            usage_note=None if usage.reported else "the endpoint reported no usage",
        )


def flatten_prompt(request: LlmRequest) -> str:
    """The single user turn's text, or the labelled transcript of the whole conversation."""
    messages = request.messages
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].content
    return "\n\n".join(f"{_ROLE_LABELS.get(m.role, m.role.title())}: {m.content}" for m in messages)


def placeholder_values(request: LlmRequest) -> dict[str, Any]:
    system, _ = request.split_system()
    return {
        "prompt": flatten_prompt(request),
        "model": request.model,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "system": system,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
    }


def fill_template(template: Any, values: Mapping[str, Any]) -> Any:
    """A copy of `template` with the placeholders replaced (see the module docstring)."""
    if isinstance(template, Mapping):
        filled: dict[str, Any] = {}
        for key, item in template.items():
            # An unset typed value (temperature, system) is left out rather than sent as null:
            # servers reject `"temperature": null` more often than a missing field.
            name = _exact_placeholder(item)
            if name is not None and values[name] is None:
                continue
            filled[key] = fill_template(item, values)
        return filled
    if isinstance(template, list):
        return [fill_template(item, values) for item in template]
    if isinstance(template, str):
        name = _exact_placeholder(template)
        if name is not None:
            return values[name]
        return _PLACEHOLDER_RE.sub(lambda m: _as_text(values[m.group(1)]), template)
    return template


def _exact_placeholder(value: Any) -> str | None:
    if isinstance(value, str):
        match = _PLACEHOLDER_RE.fullmatch(value)
        if match:
            return match.group(1)
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path (integer segments index lists), or _MISSING."""
    current = data
    for segment in path.split("."):
        if isinstance(current, Mapping):
            if segment not in current:
                return _MISSING
            current = current[segment]
        elif isinstance(current, list):
            try:
                current = current[int(segment)]
            except (ValueError, IndexError):
                return _MISSING
        else:
            return _MISSING
    return current


def finish_reason(value: Any) -> FinishReason | None:
    if value is _MISSING or value is None or value == "":
        return None
    return _FINISH.get(str(value).lower(), "other")


def _count(value: Any) -> int | None:
    """A token count, or None when absent or not a count (never a made-up 0)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text[:200]
