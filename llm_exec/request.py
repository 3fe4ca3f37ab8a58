"""The provider-neutral request a `BaseLlm` turns into one SDK call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class LlmRequest:
    """What to ask, independent of the provider.

    `messages` may contain system messages; providers with a separate system parameter
    (Anthropic, Gemini) take them out with `split_system()`.
    """

    messages: tuple[Message, ...]
    model: str
    max_tokens: int = 4000
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    stream: bool = False
    # Provider-specific options from the spec (api_style, custom mapping); read only by providers.
    options: Mapping[str, Any] = field(default_factory=dict)

    def split_system(self) -> tuple[str | None, list[Message]]:
        """System text (all system messages joined, in order) and the remaining turns."""
        system = [m.content for m in self.messages if m.role == "system"]
        turns = [m for m in self.messages if m.role != "system"]
        return ("\n\n".join(system) if system else None), turns

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""
