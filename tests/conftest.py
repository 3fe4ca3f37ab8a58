"""Shared test plumbing: the emulator on loopback, and executors run as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from llm_exec.emulator import Emulator
from llm_exec.providers.registry import BUILTIN, get_provider

# Every key variable the built-in providers declare.
KNOWN_KEY_VARS = tuple(dict.fromkeys(v for name in BUILTIN for v in get_provider(name).key_env_vars))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"
BIN_DIR = Path(sys.executable).parent

EXECUTORS = ("claude", "gpt", "gemini", "custom", "llama")

# What each executor reports as `provider`, and the emulator's name for its wire format.
PROVIDER_OF = {"claude": "anthropic", "gpt": "openai", "gemini": "gemini", "custom": "custom", "llama": "ollama"}

# Test keys: long enough to be redacted, distinctive enough to grep for in outputs.
TEST_KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-canary-0123456789abcdef",
    "OPENAI_API_KEY": "sk-canary-0123456789abcdef",
    "GOOGLE_API_KEY": "AIzaSy-canary-0123456789abcdef",
    "LLM_EXEC_CUSTOM_API_KEY": "custom-canary-0123456789abcdef",
}

# Variables that would point a test at a real service, or change behaviour, if inherited.
SCRUBBED_ENV = (
    *KNOWN_KEY_VARS, "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "OLLAMA_HOST",
    "LLM_EXEC_CUSTOM_ENDPOINT", "LLM_EXEC_LLAMA_API_STYLE", "LLM_EXEC_LLAMA_BASE_URL", "LLM_EXEC_RAISE",
    "LLM_EXEC_STATE", "LLM_EXEC_STATE_URL", "LLM_EXEC_STATE_DIR", "LLM_EXEC_CACHE", "LLM_EXEC_RPM", "LLM_EXEC_TPM",
    "LLM_EXEC_BUDGETS", "LLM_EXEC_BUDGET_DAILY_USD", "LLM_EXEC_BUDGET_MONTHLY_USD", "LLM_EXEC_LEDGER_TEXT",
    "LLM_EXEC_BREAKER_THRESHOLD", "LLM_EXEC_BREAKER_COOLDOWN",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
)


def shared_fixtures() -> Path:
    """The recorded-traffic fixtures beside the repo. Missing is a failure, never a skip."""
    if not (SHARED_FIXTURES / "INDEX.md").is_file():
        pytest.fail(
            f"recorded fixtures not found at {SHARED_FIXTURES} (expected ../shared/fixtures beside the repo root)",
            pytrace=False,
        )
    return SHARED_FIXTURES


@cache
def result_validator() -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json.loads((REPO_ROOT / "schemas" / "result.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def emulator_env(url: str) -> dict[str, str]:
    """Point every provider at the emulator, with test keys."""
    return {
        **TEST_KEYS,
        "ANTHROPIC_BASE_URL": url,
        "OPENAI_BASE_URL": f"{url}/v1",
        "GOOGLE_GEMINI_BASE_URL": url,
        "OLLAMA_HOST": url,
        "LLM_EXEC_CUSTOM_ENDPOINT": f"{url}/custom",
    }


def subprocess_env() -> dict[str, str]:
    """The environment for an executor subprocess: this test's (already scrubbed by the autouse
    fixture, with its own state dir), minus the switch that makes our code re-raise."""
    return {k: v for k, v in os.environ.items() if k != "LLM_EXEC_RAISE"}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    lines: list[dict[str, Any]]
    elapsed: float
    result: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.result = self.lines[-1] if self.lines else {}

    @property
    def deltas(self) -> list[str]:
        return [line["text"] for line in self.lines[:-1] if line.get("type") == "delta"]


def run_executor(
    executor: str,
    spec: Any,
    *,
    url: str | None = None,
    env: Mapping[str, str | None] | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 60,
    raw_input: bytes | None = None,
    command: tuple[str, ...] | None = None,
) -> Run:
    """Run `llm-exec-<executor>` (or `command`) as a subprocess of its console script and check the contract:
    stdout is only JSON lines, the last one a result that validates against the result schema,
    and the exit code equals the result's exit_code."""
    child_env = subprocess_env()
    if url is not None:
        child_env.update(emulator_env(url))
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    data = raw_input if raw_input is not None else json.dumps(spec).encode()
    started = time.monotonic()
    proc = subprocess.run(
        [*(command or (str(BIN_DIR / f"llm-exec-{executor}"),)), *args],
        input=data, capture_output=True, env=child_env, timeout=timeout, check=False,
    )
    elapsed = time.monotonic() - started
    stdout = proc.stdout.decode("utf-8")
    stderr = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stdout, stdout
    if "--output" in args:  # the result went to a file instead of stdout
        assert stdout == "", stdout
        stdout = Path(args[args.index("--output") + 1]).read_text()
    lines = [json.loads(line) for line in stdout.split("\n") if line.strip()]
    run = Run(proc.returncode, stdout, stderr, lines, elapsed)
    if "--dry-run" not in args:
        assert lines, f"no output; stderr:\n{stderr}"
        errors = sorted(result_validator().iter_errors(run.result), key=str)
        assert not errors, f"result does not match the schema: {errors[0].message}\n{run.result}"
        assert run.result["exit_code"] == proc.returncode, (run.result, stderr)
        for line in lines[:-1]:
            assert line.get("type") == "delta" and isinstance(line.get("text"), str), line
    return run


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(autouse=True)
def _raise_errors_in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # In-process calls re-raise our own bugs instead of wrapping them (simonw/llm's habit).
    monkeypatch.setenv("LLM_EXEC_RAISE", "1")
    for name in SCRUBBED_ENV:
        if name != "LLM_EXEC_RAISE":
            monkeypatch.delenv(name, raising=False)
    # Each test gets its own shared-state store (breaker, ledger, cache): no test sees another's.
    monkeypatch.setenv("LLM_EXEC_STATE_DIR", str(tmp_path / "llm-exec-state"))
    # Executors run in-process: a developer's running llm-exec-daemon must not serve the suite.
    # tests/test_daemon.py opts in by pointing LLM_EXEC_DAEMON at a daemon of its own.
    monkeypatch.setenv("LLM_EXEC_DAEMON", "off")
