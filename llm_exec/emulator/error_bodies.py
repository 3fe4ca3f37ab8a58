"""Scripted error bodies: ``{"error_body": NAME}`` (with an optional ``status``).

* ``context_length``: the wire's own provider refusing an over-long prompt (``Wire.context_error``):
  OpenAI ``context_length_exceeded``, Anthropic ``prompt is too long``, Gemini's input token count,
  Ollama ``the input length exceeds the context length``, and on the custom route Hugging Face TGI's
  422 validation error.
* ``llama_cpp_context_length``: llama.cpp ``llama-server`` refusing one (``exceed_context_size_error``),
  on whatever route was called: it serves the OpenAI routes.
* ``litellm_invalid_model`` / ``litellm_no_db``: a LiteLLM proxy's 400 for a model it does not serve,
  and for a key that is not its master key when it has no database to look virtual keys up in. The
  proxy answers every route (OpenAI, Anthropic, Gemini pass-through) in this one OpenAI-style shape.
"""

from __future__ import annotations

from typing import Any

from .wire_base import Call, Response, Wire, json_response, overflow_tokens

JSON_CT = "application/json"


def _litellm(status: int, message: str, error_type: str, param: str | None) -> Response:
    # ProxyException.to_dict: the code is the status as a string.
    body: dict[str, Any] = {"error": {"message": message, "type": error_type, "param": param, "code": str(status)}}
    return json_response(status, body, {}, JSON_CT)


def error_body_response(wire: Wire, call: Call | None, path: str, name: str, status: int | None) -> Response:
    """The named body (see the module docstring); ``status`` overrides the server's own."""
    if name == "context_length":
        return wire.context_error(call, status)
    if name == "llama_cpp_context_length":
        prompt, window = overflow_tokens(call)
        code = status or 400
        return json_response(code, {"error": {
            "code": code,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": prompt,
            "n_ctx": window,
        }}, {}, "application/json; charset=utf-8")
    if name == "litellm_invalid_model":
        model = call.model if call is not None else None
        message = (f"{path}: Invalid model name passed in model={model}. "
                   "Call `/v1/models` to view available models for your key.")
        return _litellm(status or 400, message, "invalid_request_error", "model")
    if name == "litellm_no_db":
        return _litellm(status or 400, "No connected db.", "no_db_connection", None)
    raise ValueError(f"unknown error_body {name!r}")
