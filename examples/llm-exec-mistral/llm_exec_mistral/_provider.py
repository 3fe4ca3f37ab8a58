"""Mistral AI's chat completions (La Plateforme, `https://api.mistral.ai/v1`) through the openai SDK.

Mistral's API is OpenAI-shaped: `POST /v1/chat/completions` with a bearer key, the same message,
choice and usage objects, SSE chunks ending in `data: [DONE]`. So this provider is llm-exec's OpenAI
provider with Mistral's configuration (declared below) and the request-body differences, each of which
Mistral answers with a 422 `extra_forbidden` when sent the OpenAI way:

* the output limit is `max_tokens` (OpenAI's `max_completion_tokens` is unknown to Mistral);
* the seed is `random_seed`;
* no `stream_options`: Mistral puts `usage` in the last chunk of every stream unasked.

Responses need no translation: `prompt_tokens`/`completion_tokens` mean what they mean for OpenAI
(Mistral sends no token details, so cached and reasoning tokens are null), and the SDK errors are the
OpenAI provider's. Retries, deadline, shared state, pricing, streaming, batch and the daemon are the core's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from llm_exec.providers.openai import OpenAiLlm
from llm_exec.request import LlmRequest
from llm_exec.response import FinishReason


class MistralLlm(OpenAiLlm):
    """Mistral AI chat completions (MISTRAL_API_KEY; MISTRAL_BASE_URL overrides https://api.mistral.ai/v1)."""

    name = "mistral"
    # Priced by genai-prices; a task's `model` picks another (mistral-large-latest, codestral-latest...).
    default_model = "mistral-small-latest"
    key_env_vars = ("MISTRAL_API_KEY",)  # the variable Mistral's docs and SDK examples use
    base_url_env_vars = ("MISTRAL_BASE_URL",)
    default_base_url = "https://api.mistral.ai/v1"
    pricing_provider = "mistral"  # genai-prices' provider id
    # Registry `type:` values besides the entry-point name `mistral`; OpenAI's own are not inherited.
    agent_types = ("mistral-ai",)
    provider_aliases = ()
    executable = None  # runs as `llm-exec run --provider mistral`
    emulator_path = "/mistral/v1"  # the bundled emulator's Mistral wire (llm_exec/emulator/mistral_wire.py)
    gen_ai_provider = "mistral_ai"  # the OpenTelemetry GenAI well-known value
    max_tokens_param = "max_tokens"
    # Mistral ends a reply cut by the model's context with `model_length`, one cut by max_tokens with
    # `length`; `error` marks a generation the server aborted.
    finish_reasons: ClassVar[Mapping[str, FinishReason]] = {**OpenAiLlm.finish_reasons, "model_length": "length"}

    def request_body(self, request: LlmRequest) -> dict[str, Any]:
        body = super().request_body(request)
        body.pop("stream_options", None)
        seed = body.pop("seed", None)
        if seed is not None:
            # Not a parameter of the openai SDK's create(): extra_body puts it into the JSON as is.
            body["extra_body"] = {"random_seed": seed}
        return body

    def describe(self, request: LlmRequest) -> dict[str, Any]:
        described = super().describe(request)
        body = described["body"]
        body.update(body.pop("extra_body", {}))  # --dry-run shows the JSON that goes on the wire
        return described
