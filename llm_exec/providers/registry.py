"""Provider name -> BaseLlm class. Built-ins and plugins resolve the same way.

Modules are imported only when asked for: importing a provider module is cheap, but we still
never import the four providers a one-shot executor does not use. Third-party packages can add
providers through the `llm_exec.providers` entry-point group (`name = "pkg.module:Class"`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .base import BaseLlm

BUILTIN: dict[str, str] = {
    "claude": "llm_exec.providers.anthropic:AnthropicLlm",
    "gpt": "llm_exec.providers.openai:OpenAiLlm",
    "gemini": "llm_exec.providers.gemini:GeminiLlm",
    "custom": "llm_exec.providers.custom:CustomLlm",
    "llama": "llm_exec.providers.llama:LlamaLlm",
}
ALIASES: dict[str, str] = {"anthropic": "claude", "openai": "gpt", "google": "gemini", "ollama": "llama"}

ENTRY_POINT_GROUP = "llm_exec.providers"


def _load(target: str) -> type[BaseLlm]:
    module_name, _, attr = target.partition(":")
    return getattr(import_module(module_name), attr)


def get_provider(name: str) -> type[BaseLlm]:
    """The provider class registered under `name` (an executor name such as "claude", or a
    provider id such as "anthropic")."""
    key = ALIASES.get(name, name)
    if key in BUILTIN:
        return _load(BUILTIN[key])
    from importlib.metadata import entry_points  # scanning installed metadata costs ~10 ms

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            return entry.load()
    raise ConfigurationError(f"unknown provider {name!r}; known: {', '.join(available())}")


def available() -> list[str]:
    return sorted(BUILTIN)
