"""Promises users rely on when they run executors unattended: signals, hard deadlines, secrets,
and many processes at once. All through real subprocesses against the emulator."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from llm_exec.emulator import Emulator

from .conftest import BIN_DIR, EXECUTORS, KNOWN_KEY_VARS, emulator_env, result_validator, run_executor, subprocess_env

STREAMING = ("claude", "gpt", "gemini", "llama")
SPEC = {"task_id": "h-1", "prompt": "one two three four five six seven eight", "max_tokens": 100}


def child_env(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**subprocess_env(), **emulator_env(url), **(extra or {})}


def spawn(executor: str, spec: dict[str, Any], env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([str(BIN_DIR / f"llm-exec-{executor}")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(spec).encode())
    proc.stdin.close()
    proc.stdin = None  # already sent: communicate() must not touch it again
    return proc


def wait_for_request(emu: Emulator, count: int = 1, within: float = 15) -> None:
    """Until the executor's request reached the server (its SDK import can take a second)."""
    end = time.monotonic() + within
    while len(emu.requests()) < count:
        assert time.monotonic() < end, "the executor never sent its request"
        time.sleep(0.02)


def read_lines(proc: subprocess.Popen[bytes]) -> tuple[list[dict[str, Any]], str]:
    out, err = proc.communicate(timeout=10)
    lines = [json.loads(line) for line in out.decode().split("\n") if line.strip()]
    return lines, err.decode()


# -- signals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("executor", EXECUTORS)
def test_signal_during_a_request_cancels_within_2s(executor: str, signum: int, emulator: Emulator) -> None:
    emulator.script([{"fault": "stall", "seconds": 60}])
    proc = spawn(executor, SPEC, child_env(emulator.url))
    wait_for_request(emulator)
    sent = time.monotonic()
    proc.send_signal(signum)
    lines, err = read_lines(proc)
    assert time.monotonic() - sent < 2.0
    result = lines[-1]
    assert len(lines) == 1 and not list(result_validator().iter_errors(result))
    assert (proc.returncode, result["status"], result["error"]["type"]) == (1, "cancelled", "cancelled")
    assert signal.Signals(signum).name in result["error"]["message"]
    assert "Traceback" not in err


@pytest.mark.parametrize("executor", STREAMING)
def test_signal_while_streaming_keeps_ndjson_valid(executor: str) -> None:
    with Emulator(chunk_delay_ms=300) as emu:
        proc = spawn(executor, {**SPEC, "stream": True}, child_env(emu.url))
        wait_for_request(emu)
        time.sleep(1.0)  # let a few deltas out
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        lines, err = read_lines(proc)
    assert time.monotonic() - sent < 2.0
    *deltas, result = lines
    assert deltas and all(line["type"] == "delta" for line in deltas)
    assert result["status"] == "cancelled" and proc.returncode == 1
    assert result["output"] == "".join(d["text"] for d in deltas)
    assert "Traceback" not in err


# -- hard deadlines ---------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("fault", ["stall", "trickle"])
def test_deadline_holds_against_stalls_and_trickles(executor: str, fault: str, emulator: Emulator) -> None:
    emulator.script([{"fault": fault, "seconds": 60, "interval_ms": 200, "times": 5}])
    run = run_executor(executor, {**SPEC, "timeout_seconds": 2.5}, url=emulator.url)
    assert run.code == 1
    assert run.elapsed < 2.5 + 1.0, run.elapsed


@pytest.mark.parametrize("executor", STREAMING)
def test_deadline_holds_when_a_stream_stops_midway(executor: str) -> None:
    with Emulator(chunk_delay_ms=30_000) as emu:  # first chunk, then nothing for 30 s
        run = run_executor(executor, {**SPEC, "stream": True, "timeout_seconds": 3}, url=emu.url)
    assert run.code == 1 and run.result["error"]["type"] in ("timeout", "read_timeout")
    assert run.elapsed < 3 + 1.0, run.elapsed


# -- secrets ----------------------------------------------------------------------------------

CANARIES = {
    "ANTHROPIC_API_KEY": "sk-ant-canary-a1b2c3d4e5f6",
    "ANTHROPIC_AUTH_TOKEN": "sk-ant-token-canary-a1b2c3",
    "OPENAI_API_KEY": "sk-canary-a1b2c3d4e5f6g7h8",
    "GOOGLE_API_KEY": "AIzaSyCanary-a1b2c3d4e5f6",
    "GEMINI_API_KEY": "AIzaSyCanaryGemini-a1b2c3",
    "GOOGLE_GENAI_API_KEY": "AIzaSyCanaryGenai-a1b2c3",
    "OLLAMA_API_KEY": "ollama-canary-a1b2c3d4e5",
    "LLM_EXEC_CUSTOM_API_KEY": "custom-canary-a1b2c3d4e5",
    "TEAM_KEY": "team-canary-a1b2c3d4e5f6",
}
assert set(KNOWN_KEY_VARS) <= set(CANARIES), "every known key variable gets a canary"

FAILURES = {
    "echo-key-401": [{"fault": "echo_key", "status": 401}],
    "echo-key-400": [{"fault": "echo_key", "status": 400}],
    "echo-key-500": [{"fault": "echo_key", "status": 500, "times": 5}],
    "echo-key-429": [{"fault": "echo_key", "status": 429, "times": 5}],
    "html": [{"fault": "html", "times": 5}],
    "malformed": [{"fault": "malformed"}],
    "reset": [{"fault": "reset", "times": 5}],
    "ok": [],
}


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        for name, value in CANARIES.items():
            assert value not in text, f"{name} leaked"


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("executor", EXECUTORS)
def test_keys_never_appear_in_any_output(executor: str, failure: str, emulator: Emulator, tmp_path: Any) -> None:
    emulator.script(FAILURES[failure])
    spec = {**SPEC, "max_retries": 1}
    if executor == "llama":
        spec["api_key_env"] = "TEAM_KEY"  # the llama executor sends a key only when one is named
    out_file = tmp_path / "result.json"
    run = run_executor(executor, spec, url=emulator.url, env=CANARIES, args=("--output", str(out_file)))
    assert_no_canary(run.stdout, run.stderr, out_file.read_text())
    if failure.startswith("echo-key"):
        # The emulator really echoed a key back: redaction, not luck, kept it out.
        assert "[REDACTED]" in out_file.read_text()


@pytest.mark.parametrize("executor", EXECUTORS)
def test_dry_run_shows_no_key(executor: str) -> None:
    spec = {**SPEC, "api_key_env": "TEAM_KEY"} if executor == "llama" else SPEC
    dry = run_executor(executor, spec, url="http://127.0.0.1:9", env=CANARIES, args=("--dry-run",))
    assert dry.code == 0
    assert_no_canary(dry.stdout, dry.stderr)
    assert "[REDACTED]" in dry.stdout


def test_a_key_inside_the_spec_is_rejected() -> None:
    run = run_executor("gpt", {**SPEC, "api_key": "sk-should-never-be-here"}, env=CANARIES)
    assert run.code == 3 and run.result["error"]["field"] == "api_key"
    assert "sk-should-never-be-here" not in run.stdout


# -- concurrency ------------------------------------------------------------------------------


def test_fifty_executors_at_once(emulator: Emulator) -> None:
    env = child_env(emulator.url)
    procs = []
    for i in range(50):
        executor = EXECUTORS[i % len(EXECUTORS)]
        procs.append((f"task-{i}", spawn(executor, {**SPEC, "task_id": f"task-{i}", "prompt": f"number {i}"}, env)))

    def finish(item: tuple[str, subprocess.Popen[bytes]]) -> tuple[str, int, dict[str, Any]]:
        task_id, proc = item
        out, _ = proc.communicate(timeout=180)
        return task_id, proc.returncode, json.loads(out)

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(finish, procs))
    for task_id, code, result in results:
        assert code == 0, result
        assert result["task_id"] == task_id
        assert result["output"].endswith(f"number {task_id.split('-')[1]}")
    assert len(emulator.requests()) == 50
