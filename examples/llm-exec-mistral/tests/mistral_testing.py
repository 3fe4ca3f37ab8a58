"""Helpers for the plugin's tests: llm-exec's commands run as real subprocesses of the installed console
scripts, so the plugin is exercised exactly as a user runs it, and a private llm-exec-daemon.

Nothing of llm-exec's is patched: the plugin is found through its installed entry point, and every
call crosses real HTTP to the emulator's Mistral wire.

(A module of its own rather than conftest.py: the tests import it by name, which works whichever
directory pytest is started from.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from llm_exec.emulator import Emulator

from llm_exec_mistral import MistralLlm

BIN_DIR = Path(sys.executable).parent
LLM_EXEC = str(BIN_DIR / "llm-exec")
LLM_ROUTE = str(BIN_DIR / "llm-route")
DAEMON_BIN = str(BIN_DIR / "llm-exec-daemon")

# Long enough to be redacted, distinctive enough to grep for.
TEST_KEY = "mistral-canary-0123456789abcdef"

# Variables that would point a test at a real service or change behaviour if inherited.
SCRUBBED_ENV = (
    "MISTRAL_API_KEY", "MISTRAL_BASE_URL", "LLM_EXEC_PROVIDER", "LLM_EXEC_REGISTRY", "LLM_EXEC_RAISE",
    "LLM_EXEC_STATE", "LLM_EXEC_STATE_URL", "LLM_EXEC_CACHE", "LLM_EXEC_RPM", "LLM_EXEC_TPM", "LLM_EXEC_BUDGETS",
    "LLM_EXEC_BUDGET_DAILY_USD", "LLM_EXEC_BUDGET_MONTHLY_USD", "LLM_EXEC_BREAKER_THRESHOLD",
    "LLM_EXEC_BREAKER_COOLDOWN", "OPENAI_API_KEY", "OPENAI_BASE_URL",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
)


@cache
def result_validator() -> Any:
    from jsonschema import Draft202012Validator, FormatChecker
    from llm_exec.task import load_schema

    return Draft202012Validator(load_schema("result"), format_checker=FormatChecker())


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


def check_result(result: dict[str, Any]) -> None:
    errors = sorted(result_validator().iter_errors(result), key=str)
    assert not errors, f"result does not match the schema: {errors[0].message}\n{result}"


def run(command: list[str], stdin: str, env: Mapping[str, str | None] | None = None, timeout: float = 60) -> Run:
    """Run a command with `stdin` and check llm-exec's output contract: stdout is JSON lines only,
    every result line validates against the result schema, and the last one's exit_code is the
    process's exit code."""
    child_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    started = time.monotonic()
    proc = subprocess.run(command, input=stdin.encode(), capture_output=True, env=child_env, timeout=timeout,
                          check=False)
    elapsed = time.monotonic() - started
    stdout, stderr = proc.stdout.decode(), proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stdout + stderr, stdout + stderr
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    outcome = Run(proc.returncode, stdout, stderr, lines, elapsed)
    if "--dry-run" not in command:
        assert lines, f"no output; stderr:\n{stderr}"
        for line in lines:
            if line.get("type") != "delta":
                check_result(line)
        if "--batch" not in command:
            assert outcome.result["exit_code"] == proc.returncode, (outcome.result, stderr)
    return outcome


def run_mistral(spec: Any, *flags: str, env: Mapping[str, str | None] | None = None, timeout: float = 60) -> Run:
    """`llm-exec run --provider mistral [flags]` with `spec` (a dict, or JSONL text) on stdin."""
    stdin = spec if isinstance(spec, str) else json.dumps(spec)
    return run([LLM_EXEC, "run", "--provider", "mistral", *flags], stdin, env, timeout)


def mistral_env(emulator: Emulator) -> dict[str, str]:
    """The plugin's own variables, aimed at the emulator's Mistral wire."""
    return {"MISTRAL_API_KEY": TEST_KEY, "MISTRAL_BASE_URL": emulator.url + MistralLlm.emulator_path}


def calls(emulator: Emulator) -> list[dict[str, Any]]:
    """The generation requests the emulator received (admin and metadata routes left out)."""
    return [r for r in emulator.requests() if r["method"] == "POST" and r["path"].endswith("/chat/completions")]


class Daemon:
    """An llm-exec-daemon in the foreground on a private socket, logging to a file."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        from llm_exec.daemon.lifecycle import answering_pid

        self.socket = str(directory / "daemon.sock")
        self.log = directory / "daemon.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([DAEMON_BIN, "--foreground", "--socket", self.socket], env=env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 90
        while answering_pid(self.socket) != self.process.pid:
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the daemon did not start within 90 s"
            time.sleep(0.05)

    def served(self) -> int:
        """Tasks the daemon has run to their end: one log line each, written when it reaps the task."""
        return sum(" exit " in line for line in self.log.read_text().splitlines())

    def wait_served(self, count: int, within: float = 10.0) -> bool:
        # The caller exits as soon as its task reports; the daemon reaps and logs the task a moment later.
        deadline = time.monotonic() + within
        while self.served() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=30)
