"""Batch mode (`--batch`): JSONL through one real executor process, against the emulator."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llm_exec.batch import batch_exit_code
from llm_exec.emulator import Emulator

from .conftest import BIN_DIR, EXECUTORS, PROVIDER_OF, emulator_env, result_validator, subprocess_env


@dataclass
class BatchRun:
    code: int
    results: list[dict[str, Any]]
    stderr: str
    elapsed: float


def batch_input(lines: list[Any]) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


def child_env(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**subprocess_env(), **emulator_env(url), **(extra or {})}


def check(stdout: bytes) -> list[dict[str, Any]]:
    """Every output line is one complete result object, valid against the result schema."""
    results = [json.loads(line) for line in stdout.decode().splitlines()]
    for result in results:
        errors = sorted(result_validator().iter_errors(result), key=str)
        assert not errors, f"{errors[0].message}\n{result}"
    return results


def run_batch(executor: str, lines: list[Any], url: str, *args: str, env: dict[str, str] | None = None,
              timeout: float = 60) -> BatchRun:
    started = time.monotonic()
    proc = subprocess.run([str(BIN_DIR / f"llm-exec-{executor}"), "--batch", *args], input=batch_input(lines),
                          capture_output=True, env=child_env(url, env), timeout=timeout, check=False)
    elapsed = time.monotonic() - started
    stderr = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    return BatchRun(proc.returncode, check(proc.stdout), stderr, elapsed)


def tasks(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [{"task_id": f"t{i}", "prompt": f"question number {i}", "max_tokens": 20, **fields} for i in range(count)]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_executor_runs_a_batch_with_a_bad_line(executor: str, emulator: Emulator) -> None:
    lines = [*tasks(2), b"{not json", *tasks(1, task_id="last")]
    run = run_batch(executor, lines, emulator.url)
    assert [r["task_id"] for r in run.results] == ["t0", "t1", None, "last"]
    assert [r["exit_code"] for r in run.results] == [0, 0, 3, 0]
    assert {r["provider"] for r in run.results} == {PROVIDER_OF[executor]}
    assert run.results[2]["error"]["type"] == "task_spec_error"
    assert run.code == 3, "every failed line has exit code 3, so the batch does"
    assert "line 3: task_spec_error" in run.stderr
    assert len(emulator.requests()) == 3


def test_order_is_kept_when_later_lines_finish_first(emulator: Emulator) -> None:
    # Requests arrive in line order; each earlier one is answered later than the next.
    emulator.script([{"delay_ms": 600 - 60 * i} for i in range(10)])
    run = run_batch("gpt", tasks(10), emulator.url, "--concurrency", "10")
    assert [r["task_id"] for r in run.results] == [f"t{i}" for i in range(10)]
    assert all(r["status"] == "success" for r in run.results) and run.code == 0
    assert [r["output"] for r in run.results] == [f"Emulated openai reply to: question number {i}" for i in range(10)]
    finished = [r["timestamp"] for r in run.results]
    assert finished != sorted(finished), "the later lines did finish first"
    assert run.elapsed < 5


def test_mixed_failures_exit_1_and_the_rules_for_the_code() -> None:
    assert batch_exit_code([0, 0]) == 0
    assert batch_exit_code([]) == 0
    assert batch_exit_code([0, 3, 3]) == 3
    assert batch_exit_code([2, 0]) == 2
    assert batch_exit_code([0, 2, 3]) == 1
    assert batch_exit_code([0, 0], cancelled=True) == 1


def test_mixed_outcomes_through_the_executor(emulator: Emulator) -> None:
    lines = [*tasks(1), {"prompt": "x", "api_key_env": "LLM_EXEC_TEST_UNSET_KEY"}, {"prompt": "y", "temperature": 9},
             b"[1, 2]"]
    run = run_batch("gpt", lines, emulator.url)
    assert [r["exit_code"] for r in run.results] == [0, 2, 3, 3]
    assert run.results[1]["error"]["type"] == "missing_api_key"
    assert run.results[2]["error"]["field"] == "temperature"
    assert run.code == 1


def test_concurrency_limit_is_honoured_and_used() -> None:
    latency = 0.3
    with Emulator(latency_ms=latency * 1000) as emu:
        run = run_batch("gpt", tasks(12), emu.url, "--concurrency", "3")
        arrivals = sorted(r["time"] for r in emu.requests())
    assert run.code == 0 and len(arrivals) == 12
    # A request can only start when one of the three before it has been answered: never more than
    # three arrive within less than one latency of each other...
    window = latency - 0.1
    most = max(sum(1 for t in arrivals if start <= t < start + window) for start in arrivals)
    assert most == 3, arrivals
    # ...and the batch took four rounds of the latency, not twelve.
    assert 4 * latency <= run.elapsed < 12 * latency


def test_one_sdk_client_and_connection_pool_for_all_lines(emulator: Emulator) -> None:
    peers: set[tuple[str, int]] = set()
    server = emulator._server
    assert server is not None
    track = server.track

    def counting(conn: Any) -> None:
        peers.add(conn.getpeername())
        track(conn)

    server.track = counting  # type: ignore[method-assign]
    emulator.latency_ms = 100
    run = run_batch("gpt", tasks(24), emulator.url, "--concurrency", "4")
    assert run.code == 0 and len(run.results) == 24
    # Per-task clients would open 24 connections; one shared pool keeps at most 4 busy at once.
    assert 1 <= len(peers) <= 4, peers


def test_each_line_deadline_counts_from_its_own_start() -> None:
    # One at a time, 0.4 s each: the third line starts ~0.8 s in, past a deadline counted from the
    # process start, but well inside its own 1 s.
    with Emulator(latency_ms=400) as emu:
        run = run_batch("gpt", tasks(3, timeout_seconds=1.0), emu.url, "--concurrency", "1")
    assert [r["status"] for r in run.results] == ["success"] * 3, run.stderr
    assert all(r["execution_time_seconds"] < 1.0 for r in run.results)


def test_sigterm_mid_batch_gives_one_result_per_line() -> None:
    with Emulator(latency_ms=400) as emu:
        proc = subprocess.Popen([str(BIN_DIR / "llm-exec-gpt"), "--batch", "--concurrency", "2"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=child_env(emu.url))
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(batch_input([*tasks(9), b"{bad"]))
        proc.stdin.close()
        first = proc.stdout.readline()  # the first line is done; the next two are in flight
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        proc.wait(timeout=10)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert time.monotonic() - sent < 2.0
    results = check(first + rest)
    assert len(results) == 10, stderr
    assert [r["task_id"] for r in results[:9]] == [f"t{i}" for i in range(9)]
    statuses = [r["status"] for r in results]
    assert statuses[0] == "success"
    assert statuses[-1] == "error" and results[-1]["exit_code"] == 3  # a bad line stays a bad line
    assert set(statuses[1:9]) <= {"success", "cancelled"} and statuses.count("cancelled") >= 6
    assert all("SIGTERM" in r["error"]["message"] for r in results if r["status"] == "cancelled")
    assert proc.returncode == 1
    assert "Traceback" not in stderr


def test_blank_lines_are_skipped_and_oversized_lines_fail_alone(emulator: Emulator) -> None:
    huge = {"task_id": "huge", "prompt": "x" * 400}
    lines = [b"", *tasks(1), b"   ", huge, *tasks(1, task_id="after"), b"\r"]
    run = run_batch("gpt", lines, emulator.url, env={"LLM_EXEC_MAX_SPEC_BYTES": "300"})
    assert [r["task_id"] for r in run.results] == ["t0", None, "after"]
    assert [r["exit_code"] for r in run.results] == [0, 3, 0]
    assert "larger than the limit" in run.results[1]["error"]["message"]
    assert "line 4:" in run.stderr  # messages name the physical line


def test_empty_input_is_an_empty_successful_batch(emulator: Emulator) -> None:
    run = run_batch("gpt", [], emulator.url)
    assert (run.code, run.results) == (0, [])


def test_dry_run_batch_and_file_input_output(emulator: Emulator, tmp_path: Path) -> None:
    source, sink = tmp_path / "tasks.jsonl", tmp_path / "results.jsonl"
    source.write_bytes(batch_input(tasks(3)))
    proc = subprocess.run([str(BIN_DIR / "llm-exec-claude"), "--batch", "--dry-run", "--input", str(source),
                           "--output", str(sink)], capture_output=True, env=child_env(emulator.url), timeout=60,
                          check=False)
    assert proc.returncode == 0 and proc.stdout == b""
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [line["request"]["body"]["messages"][0]["content"] for line in lines] == [
        f"question number {i}" for i in range(3)]
    assert emulator.requests() == []


@pytest.mark.parametrize("args", [("--stream",), ("--pretty",)])
def test_flags_that_do_not_fit_a_batch_are_usage_errors(args: tuple[str, ...], emulator: Emulator) -> None:
    run = run_batch("gpt", tasks(1), emulator.url, *args)
    assert run.code == 2 and len(run.results) == 1
    assert run.results[0]["error"]["type"] == "usage_error"
    assert emulator.requests() == []


def test_concurrency_without_batch_is_a_usage_error(emulator: Emulator) -> None:
    proc = subprocess.run([str(BIN_DIR / "llm-exec-gpt"), "--concurrency", "4"], input=b'{"prompt": "x"}',
                          capture_output=True, env=child_env(emulator.url), timeout=60, check=False)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["type"] == "usage_error"


def test_stream_in_a_spec_is_ignored_and_the_ledger_has_every_line(emulator: Emulator) -> None:
    run = run_batch("gpt", tasks(5, stream=True), emulator.url, "--concurrency", "5")
    assert run.code == 0 and all("type" not in r for r in run.results)
    assert all(request["body"].get("stream") is not True for request in emulator.requests())
    database = Path(os.environ["LLM_EXEC_STATE_DIR"]) / "state.db"
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM ledger").fetchone()[0] == 5


def test_an_unreachable_store_warns_once_per_batch(emulator: Emulator) -> None:
    run = run_batch("gpt", tasks(6), emulator.url, "--concurrency", "3",
                    env={"LLM_EXEC_STATE_URL": "redis://127.0.0.1:1/0"})
    assert run.code == 0 and {r["state"] for r in run.results} == {"unavailable"}
    assert run.stderr.count("state store unavailable") == 1, run.stderr


def test_progress_line_on_a_terminal(emulator: Emulator) -> None:
    main, secondary = pty.openpty()
    try:
        proc = subprocess.run([str(BIN_DIR / "llm-exec-gpt"), "--batch"], input=batch_input(tasks(3)),
                              stdout=subprocess.PIPE, stderr=secondary, env=child_env(emulator.url), timeout=60,
                              check=False)
        os.close(secondary)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the terminal's other end is closed and drained
            while chunk := os.read(main, 65536):
                shown += chunk
    finally:
        os.close(main)
    assert proc.returncode == 0 and len(check(proc.stdout)) == 3
    assert b"3/3 done" in shown and b"0 errors" in shown and b"\r" in shown


def test_a_reader_that_goes_away_stops_the_calls() -> None:
    # `llm-exec-gpt --batch < tasks | head -1`: once nobody reads, no further call is made.
    with Emulator(latency_ms=300) as emu:
        proc = subprocess.Popen([str(BIN_DIR / "llm-exec-gpt"), "--batch", "--concurrency", "2"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=child_env(emu.url))
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(batch_input(tasks(20)))
        proc.stdin.close()
        proc.stdout.readline()
        proc.stdout.close()
        proc.wait(timeout=10)
        stderr = proc.stderr.read().decode()
        calls = len(emu.requests())
    assert proc.returncode == 1 and "Traceback" not in stderr, stderr
    assert calls <= 6, f"{calls} calls made for a reader that had gone"
