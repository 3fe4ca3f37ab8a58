"""URL path → provider wire. One shared instance per provider (they are stateless)."""

from __future__ import annotations

from .anthropic_wire import AnthropicWire
from .custom_wire import CustomWire
from .gemini_wire import GEMINI_PATH, GeminiWire
from .mistral_wire import MistralWire
from .ollama_wire import OllamaWire
from .openai_wire import OpenAIWire
from .wire_base import Wire

OPENAI, ANTHROPIC, GEMINI, OLLAMA, CUSTOM = OpenAIWire(), AnthropicWire(), GeminiWire(), OllamaWire(), CustomWire()
MISTRAL = MistralWire()  # for the example plugin examples/llm-exec-mistral

_EXACT: dict[str, Wire] = {
    "/v1/chat/completions": OPENAI,
    "/chat/completions": OPENAI,
    "/v1/messages": ANTHROPIC,
    "/api/chat": OLLAMA,
    "/api/generate": OLLAMA,
    "/custom": CUSTOM,
    "/mistral/v1/chat/completions": MISTRAL,
}


def resolve(path: str) -> Wire | None:
    """The wire for a POST generation path (query string already stripped)."""
    if path in _EXACT:
        return _EXACT[path]
    if path.startswith("/custom/"):
        return CUSTOM
    if GEMINI_PATH.match(path):
        return GEMINI
    return None


def without_model(path: str) -> str:
    """Gemini path with model name and API version wildcarded (replay fallback).

    The version is ignored too: google-genai 3.x calls ``/v1`` while most
    recordings were made on ``/v1beta``; the wire shape is the same.
    """
    return GEMINI_PATH.sub(lambda m: f"/*/models/*:{m.group(3)}", path)
