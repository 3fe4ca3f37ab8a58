"""The environment that points every executor at an emulator."""

from __future__ import annotations


def client_env(url: str, key: str = "emulator-key") -> dict[str, str]:
    """Keys and base URLs for all five executors, aimed at the emulator serving `url`."""
    return {
        "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": key,
        "OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_KEY": key,
        "GOOGLE_GEMINI_BASE_URL": url, "GOOGLE_API_KEY": key,
        "OLLAMA_HOST": url,
        "LLM_EXEC_CUSTOM_ENDPOINT": f"{url}/custom", "LLM_EXEC_CUSTOM_API_KEY": key,
    }
