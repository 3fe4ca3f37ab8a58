"""`llm-exec schema`, `emulator`, `completion` and the help of every command, through the real binary."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from llm_exec.cli.completion_command import programs
from llm_exec.cli.tool import main as tool_group
from llm_exec.task import load_schema
from tests.cli.conftest import TOOL, run_tool
from tests.conftest import BIN_DIR, subprocess_env


@pytest.mark.parametrize("name", ["task", "result", "registry"])
def test_schema_prints_the_bundled_schema(name: str) -> None:
    run = run_tool("schema", name)
    assert run.code == 0 and run.json() == load_schema(name)


def test_schema_unknown_name_is_a_usage_error() -> None:
    run = run_tool("schema", "nope")
    assert run.code == 2 and "'nope' is not one of" in run.stderr


def test_emulator_serves_with_the_emulators_flags(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    proc = subprocess.Popen([TOOL, "emulator", "--port", "0", "--port-file", str(port_file), "--latency-ms", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())
    try:
        assert proc.stdout is not None
        started = json.loads(proc.stdout.readline())
        assert started["pid"] == proc.pid
        assert started["url"].endswith(f":{int(port_file.read_text())}")
        with urllib.request.urlopen(f"{started['url']}/_emulator/requests", timeout=10) as answer:
            assert answer.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_emulator_bad_flag_is_the_emulators_usage_error() -> None:
    run = run_tool("emulator", "--no-such-flag")
    assert run.code == 2 and "unrecognized arguments: --no-such-flag" in run.stderr


def test_every_command_and_the_group_has_an_example_in_its_help() -> None:
    for command in ["", *tool_group.commands]:
        run = run_tool(*([command] if command else []), "--help")
        assert run.code == 0, (command, run.stderr)
        assert "Example" in run.stdout, f"`llm-exec {command} --help` has no example"
    emulator_help = run_tool("emulator", "--help").stdout
    assert "--port-file FILE" in emulator_help and "--replay DIR" in emulator_help and "--help" in emulator_help


# The programs the issue names, and the shells click supports.
PROGRAMS = ("llm-exec", "llm-exec-gpt", "llm-route")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize("program", PROGRAMS)
def test_completion_script_generates(shell: str, program: str) -> None:
    args = ("completion", shell) if program == "llm-exec" else ("completion", shell, program)
    run = run_tool(*args)
    assert run.code == 0, run.stderr
    var = "_{}_COMPLETE".format(program.replace("-", "_").upper())
    assert f"{var}={shell}_complete" in run.stdout
    # It is what the program itself prints for the `_source` request (click's own mechanism).
    own = subprocess.run([str(BIN_DIR / program)], env={**subprocess_env(), var: f"{shell}_source"},
                         capture_output=True, stdin=subprocess.DEVNULL, timeout=60, check=False)
    assert own.returncode == 0 and own.stdout.decode() == run.stdout
    if shell == "bash" and shutil.which("bash"):
        subprocess.run(["bash", "-n"], input=run.stdout.encode(), check=True)  # the script parses


def _complete(program: str, words: str) -> subprocess.CompletedProcess[bytes]:
    """What the bash script asks the program at <Tab>: `words` typed so far, the last one incomplete."""
    env = {**subprocess_env(), "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1),
           "_{}_COMPLETE".format(program.replace("-", "_").upper()): "bash_complete"}
    return subprocess.run([str(BIN_DIR / program)], env=env, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=60, check=False)


@pytest.mark.parametrize(("program", "words", "expected"), [
    ("llm-exec", "llm-exec prov", "plain,providers"),
    ("llm-exec", "llm-exec completion bash llm-r", "plain,llm-route"),
    ("llm-exec-gpt", "llm-exec-gpt --str", "plain,--stream"),
    ("llm-route", "llm-route --expl", "plain,--explain"),
])
def test_programs_answer_completion_requests(program: str, words: str, expected: str) -> None:
    """An executor asked for completions answers them (no task is run: no result object)."""
    done = _complete(program, words)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == [expected]


def test_every_executor_answers_completion_requests() -> None:
    for program in programs():
        done = _complete(program, f"{program} --vers")
        assert done.returncode == 0 and done.stdout.decode().splitlines() == ["plain,--version"], program


def test_completion_for_an_unknown_program_is_a_usage_error() -> None:
    run = run_tool("completion", "bash", "ls")
    assert run.code == 2 and "'ls' is not one of" in run.stderr and "llm-route" in run.stderr
