"""llm-route run as a real subprocess of its console script, with a registry written per test."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from ..conftest import BIN_DIR, Run, emulator_env, result_validator, subprocess_env

ROUTE = str(BIN_DIR / "llm-route")
MISSING_KEY_VAR = "LLM_ROUTE_TEST_UNSET_KEY"


def route_env(url: str | None, tmp_path: Path, env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    # The test's scrubbed environment (with its own state dir), minus the registry-related variables.
    child = {k: v for k, v in subprocess_env().items() if k not in ("LLM_EXEC_REGISTRY", MISSING_KEY_VAR)}
    # No registry from the developer's machine, and no writes to their cache.
    child["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    child["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    if url is not None:
        child.update(emulator_env(url))
    for key, value in (env or {}).items():
        if value is None:
            child.pop(key, None)
        else:
            child[key] = value
    return child


def run_route(
    spec: Any,
    *,
    registry: Path | None,
    tmp_path: Path,
    url: str | None = None,
    args: tuple[str, ...] = (),
    env: Mapping[str, str | None] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    check_result: bool = True,
) -> Run:
    """Run llm-route and check the contract: stdout is JSON lines only, the last one a result that
    validates against the result schema, with exit_code equal to the process's."""
    argv = [ROUTE, *(("--registry", str(registry)) if registry else ()), *args]
    data = spec if isinstance(spec, bytes) else json.dumps(spec).encode()
    started = time.monotonic()
    proc = subprocess.run(argv, input=data, capture_output=True, env=route_env(url, tmp_path, env), cwd=cwd,
                          timeout=timeout, check=False)
    elapsed = time.monotonic() - started
    stdout = proc.stdout.decode()
    stderr = proc.stderr.decode(errors="replace")
    assert "Traceback" not in stdout + stderr, stderr
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    run = Run(proc.returncode, stdout, stderr, lines, elapsed)
    if check_result:
        assert lines, f"no output; stderr:\n{stderr}"
        errors = sorted(result_validator().iter_errors(run.result), key=str)
        assert not errors, f"result does not match the schema: {errors[0].message}\n{run.result}"
        assert run.result["exit_code"] == proc.returncode, (run.result, stderr)
        for line in lines[:-1]:
            assert line.get("type") == "delta", line
    return run


@pytest.fixture
def write_registry(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "registry.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


# Two cheap agents with known order under "cheapest first": a local llama stated at $0, then gpt.
PAIR = """
version: 1
agents:
  - name: local
    type: meta-llama
    model: llama3.2
    capabilities: [code]
    max_tokens: 64
    temperature: 0.3
    price_per_mtok: {input: 0, output: 0}
  - name: gpt
    type: openai-gpt
    model: gpt-5.4-mini
    capabilities: [code, testing]
    max_tokens: 64
"""
