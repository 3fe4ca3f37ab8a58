"""The structured answer every provider returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]


@dataclass(frozen=True)
class Usage:
    """Token counts with one meaning for every provider (they follow how tokens are billed).

    prompt_tokens: all input tokens processed, cache reads and writes included.
    cached_tokens: the part of prompt_tokens read from cache.
    cache_write_tokens: the part of prompt_tokens written to cache (Anthropic).
    completion_tokens: all output tokens billed, reasoning included.
    reasoning_tokens: the reasoning/thinking part of completion_tokens; None when not reported.
    A count the provider did not report is None, never a made-up 0.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens

    @property
    def reported(self) -> bool:
        return self.prompt_tokens is not None or self.completion_tokens is not None


@dataclass(frozen=True)
class LlmResponse:
    content: str
    usage: Usage = field(default_factory=Usage)
    model: str | None = None  # as reported by the API
    finish_reason: FinishReason | None = None
    request_id: str | None = None
    latency_seconds: float | None = None
    # Why usage is missing, when it is (e.g. a stream that carried no usage).
    usage_note: str | None = None
