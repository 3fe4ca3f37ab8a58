"""Fixtures shared by the provider tests: the scripted HTTP server and a clean provider environment."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.providers.scripted_server import Server

# Variables that configure the custom and llama providers; none may leak in from the caller.
_PROVIDER_ENV = (
    "LLM_EXEC_CUSTOM_API_KEY", "LLM_EXEC_CUSTOM_ENDPOINT",
    "OLLAMA_HOST", "OLLAMA_API_KEY", "LLM_EXEC_LLAMA_API_STYLE", "LLM_EXEC_LLAMA_BASE_URL",
    "OPENAI_API_KEY", "OPENAI_BASE_URL",
)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
