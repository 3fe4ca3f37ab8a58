"""Local HTTP emulator of the OpenAI, Anthropic, Gemini, Ollama and custom LLM wire formats.

Stdlib only, so importing it (and starting it) is fast.
"""

from .server import Emulator
from .tokens import count_tokens, expected_reply

__all__ = ["Emulator", "count_tokens", "expected_reply"]
