"""Mistral AI for llm-exec, as a provider plugin (entry point `mistral` in group `llm_exec.providers`)."""

from ._provider import MistralLlm

__all__ = ["MistralLlm"]
__version__ = "0.1.0"
