"""Deterministic token counting and reply generation for the emulator.

Tests across the project need to predict exactly what the emulator answers, so
the "model" here is a pure function of the request: no randomness, no
tokenizer. A "token" is a whitespace-separated word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# One piece = the whitespace before a word plus the word. Keeping the leading
# whitespace lets stream deltas concatenate back to the exact reply text.
_PIECE = re.compile(r"\s*\S+")

PROVIDERS = ("openai", "anthropic", "gemini", "ollama", "custom")


def count_tokens(text: str) -> int:
    """Number of whitespace-separated words; at least 1 for any non-empty text."""
    if not text:
        return 0
    return max(1, len(text.split()))


def split_words(text: str) -> list[str]:
    """Split text into stream deltas whose concatenation is exactly ``text``."""
    pieces = _PIECE.findall(text)
    tail = text[sum(len(p) for p in pieces):]
    if tail:
        # Trailing (or whitespace-only) text rides on the last delta so nothing is lost.
        if pieces:
            pieces[-1] += tail
        else:
            pieces = [tail]
    return pieces


def normalize_stop(stop: object) -> list[str]:
    """Providers accept a single string or a list; empty strings never match."""
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, Iterable):
        return [s for s in stop if isinstance(s, str) and s]
    return []


def shape_reply(
    text: str, max_tokens: int | None = None, stop: object = None
) -> tuple[str, str, str | None]:
    """Apply stop sequences then the token budget, like a model would.

    Returns ``(text, finish, matched_stop)`` where finish is ``"stop"`` or
    ``"length"`` and matched_stop is the stop sequence that cut the text (only
    when finish is ``"stop"``); Anthropic needs it for ``stop_sequence``.
    """
    matched: str | None = None
    cut = len(text)
    for seq in normalize_stop(stop):
        pos = text.find(seq)
        if pos != -1 and pos < cut:
            cut, matched = pos, seq
    text = text[:cut]
    if max_tokens is not None:
        pieces = _PIECE.findall(text)
        if len(pieces) > max_tokens:
            return "".join(pieces[: max(max_tokens, 0)]), "length", None
    return text, "stop", matched


def default_reply(provider: str, last_user_text: str) -> str:
    return f"Emulated {provider} reply to: {last_user_text}"


def expected_reply(
    provider: str,
    last_user_text: str,
    max_tokens: int | None = None,
    stop: str | list[str] | None = None,
) -> tuple[str, str]:
    """What the emulator answers by default: ``(text, finish)``, finish in {"stop", "length"}."""
    text, finish, _ = shape_reply(default_reply(provider, last_user_text), max_tokens, stop)
    return text, finish
