"""`llm-exec run`: the same contract as the dedicated executors, for any provider, and the task-spec
edges issue 13 closed (lone surrogates, dry runs without a key)."""

from __future__ import annotations

import json
import subprocess

import pytest

from llm_exec.emulator import Emulator

from .conftest import BIN_DIR, EXECUTORS, TEST_KEYS, emulator_env, run_executor, subprocess_env

SPEC = {"task_id": "u-1", "agent": "a", "prompt": "Name three primes please", "max_tokens": 50,
        "metadata": {"ticket": "T-1"}}
# Fields that differ between two runs of the same task.
VOLATILE = ("execution_time_seconds", "timestamp", "request_id")


def same_result(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in VOLATILE}


def umbrella(*args: str) -> tuple[str, ...]:
    return (str(BIN_DIR / "llm-exec"), "run", *args)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_run_with_provider_equals_the_dedicated_executor(executor: str, emulator: Emulator) -> None:
    direct = run_executor(executor, SPEC, url=emulator.url)
    via_flag = run_executor(executor, SPEC, url=emulator.url, command=umbrella("--provider", executor))
    via_env = run_executor(executor, SPEC, url=emulator.url, command=umbrella(),
                           env={"LLM_EXEC_PROVIDER": executor})
    via_task = run_executor(executor, {**SPEC, "provider": executor}, url=emulator.url, command=umbrella())
    assert direct.code == 0, direct.stderr
    for run in (via_flag, via_env, via_task):
        assert run.code == 0, run.stderr
        assert same_result(run.result) == same_result(direct.result)


@pytest.mark.parametrize("executor", ("claude", "gpt", "gemini", "llama"))
def test_run_streams_like_the_dedicated_executor(executor: str, emulator: Emulator) -> None:
    direct = run_executor(executor, SPEC, url=emulator.url, args=("--stream",))
    run = run_executor(executor, SPEC, url=emulator.url, args=("--stream",), command=umbrella("--provider", executor))
    assert run.code == 0 and run.deltas == direct.deltas and len(run.deltas) > 1
    assert same_result(run.result) == same_result(direct.result)


def run_batch(emulator: Emulator, data: bytes, *args: str, env: dict[str, str] | None = None) -> tuple[int, list]:
    proc = subprocess.run([*umbrella(*args), "--batch"], input=data, capture_output=True, timeout=60, check=False,
                          env={**subprocess_env(), **emulator_env(emulator.url), **(env or {})})
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def test_batch_through_run(emulator: Emulator) -> None:
    lines = b"\n".join(f'{{"task_id": "b{i}", "prompt": "hi {i}"}}'.encode() for i in range(3))
    code, results = run_batch(emulator, lines, "--provider=gpt")
    assert code == 0 and [r["task_id"] for r in results] == ["b0", "b1", "b2"]
    assert {r["provider"] for r in results} == {"openai"}


def test_batch_needs_the_provider_up_front(emulator: Emulator) -> None:
    code, results = run_batch(emulator, b'{"provider": "gpt", "prompt": "x"}')
    assert code == 2 and results[-1]["error"]["type"] == "usage_error"


def test_no_provider_anywhere_is_a_configuration_error(emulator: Emulator) -> None:
    run = run_executor("gpt", SPEC, url=emulator.url, command=umbrella())
    assert run.code == 2 and run.result["error"]["type"] == "missing_provider"
    assert run.result["error"]["field"] == "provider" and run.result["provider"] is None
    assert emulator.requests() == []


def test_an_unknown_provider_suggests_the_close_one(emulator: Emulator) -> None:
    run = run_executor("gpt", SPEC, url=emulator.url, command=umbrella("--provider", "gtp"))
    assert run.code == 2 and run.result["error"]["type"] == "unknown_provider"
    assert "did you mean 'gpt'" in run.result["error"]["message"]


def test_a_spec_error_before_the_provider_is_known_is_exit_3(emulator: Emulator) -> None:
    run = run_executor("gpt", None, url=emulator.url, raw_input=b'{"provider": "gpt", "promt": "x"}',
                       command=umbrella())
    assert run.code == 3 and run.result["error"]["field"] == "promt"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_lone_surrogate_is_a_spec_error_before_any_request(executor: str, emulator: Emulator) -> None:
    run = run_executor(executor, None, url=emulator.url,
                       raw_input=b'{"prompt": "fine \\ud83d\\ude00", "description": "bad \\ud800 here"}')
    assert run.code == 3, run.result
    assert run.result["error"]["type"] == "task_spec_error"
    assert run.result["error"]["field"] == "description"
    assert emulator.requests() == []


@pytest.mark.parametrize("executor", EXECUTORS)
def test_dry_run_needs_no_key(executor: str, emulator: Emulator) -> None:
    keyless = dict.fromkeys(TEST_KEYS)  # None: removed from the child's environment
    run = run_executor(executor, SPEC, url=emulator.url, env=keyless, args=("--dry-run",))
    assert run.code == 0, run.stderr
    assert run.lines[0]["api_key"] in ("missing", "not required")
    assert emulator.requests() == []
    with_key = run_executor(executor, SPEC, url=emulator.url, args=("--dry-run",))
    assert with_key.lines[0]["api_key"] in ("set", "not required")
