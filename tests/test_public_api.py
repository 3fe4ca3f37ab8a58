"""The curated public API (llm_exec/__init__.py), pinned: adding or removing a name is a decision,
made here as well as there (encode/httpx's tests/test_exported_members.py habit)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import llm_exec

PUBLIC = [
    "AuthenticationError",
    "BaseLlm",
    "ConfigurationError",
    "ConnectionError",
    "ContentFilterError",
    "InvalidRequestError",
    "LlmError",
    "LlmRequest",
    "LlmResponse",
    "Message",
    "RateLimitError",
    "RetryPolicy",
    "ServiceUnavailableError",
    "TaskSpec",
    "TaskSpecError",
    "TimeoutError",
    "Usage",
    "__version__",
    "get_provider",
    "parse_task",
]


def test_the_public_names_are_exactly_these() -> None:
    assert sorted(llm_exec.__all__) == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(llm_exec, name)
    assert value is not None
    if name.endswith("Error"):
        assert issubclass(value, llm_exec.LlmError) or value is llm_exec.LlmError


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        llm_exec.no_such_thing  # noqa: B018


def test_the_errors_keep_their_exit_codes() -> None:
    assert (llm_exec.LlmError.exit_code, llm_exec.ConfigurationError.exit_code,
            llm_exec.TaskSpecError.exit_code) == (1, 2, 3)


def test_get_provider_serves_the_builtins_and_their_aliases() -> None:
    assert llm_exec.get_provider("gpt") is llm_exec.get_provider("openai")
    assert issubclass(llm_exec.get_provider("claude"), llm_exec.BaseLlm)
    with pytest.raises(llm_exec.ConfigurationError):
        llm_exec.get_provider("no-such-provider")


def test_importing_the_package_loads_almost_nothing() -> None:
    """Every executor imports the package first: it must not pull in the library behind it."""
    code = "import sys, llm_exec; print(sorted(m for m in sys.modules if m.startswith('llm_exec')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['llm_exec']"
